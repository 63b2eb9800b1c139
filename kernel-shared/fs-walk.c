// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/inode-ref.h"
#include "kernel-shared/disk-io.h"

/* Deepest directory nesting we follow before calling the tree corrupt. */
#define MAX_PATH_DEPTH 4096

int inode_lookup(struct fs_info *fs, const struct root_ref *root, u64 ino,
		 struct btrfs_inode_item *out)
{
	struct btrfs_key key = { ino, BTRFS_INODE_ITEM_KEY, 0 };
	u32 size;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = lookup_item(fs, root, &key, out, sizeof(*out), &size);
	if (ret)
		return ret;
	if (size < sizeof(*out))
		return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: item too small (%u bytes)",
			      (unsigned long long)ino, (unsigned long long)root->objectid, size);
	return 0;
}

int subvol_root_dir(struct fs_info *fs, u64 tree_id, u64 *dirid)
{
	struct btrfs_root_item ri;
	int ret = read_root_item(fs, tree_id, &ri, NULL);

	if (ret == -ENOENT)
		return 1;
	if (ret)
		return ret;
	*dirid = le64_to_cpu(ri.root_dirid);
	return 0;
}

int inode_path(struct fs_info *fs, const struct name_codec *nc, const struct root_ref *root,
	       u64 ino, char *buf, size_t len)
{
	u64 top, cur = ino;
	char name[NAME_SHOW_SIZE], shown[NAME_SHOW_SIZE];
	size_t pos = len - 1;
	int ret, depth = 0;

	if (len < 2)
		return fs_err(fs, -ENAMETOOLONG, "no room for the path of inode %llu",
			      (unsigned long long)ino);
	ret = subvol_root_dir(fs, root->objectid, &top);
	if (ret)
		top = BTRFS_FIRST_FREE_OBJECTID;
	buf[pos] = 0;
	while (cur != top) {
		u64 parent = 0;
		u16 nlen = 0;

		if (++depth > MAX_PATH_DEPTH)
			return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: parent chain loops",
				      (unsigned long long)ino, (unsigned long long)root->objectid);
		ret = inode_ref_first(fs, root, cur, &parent, name, &nlen);
		if (ret)
			return ret;
		if (parent == cur)
			return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: is its own parent",
				      (unsigned long long)cur, (unsigned long long)root->objectid);
		if (nc) {
			ret = nc->show(nc, root, parent, (const u8 *)name, nlen, shown);
			if (ret < 0)
				return ret;
			nlen = ret;
			memcpy(name, shown, nlen);
		}
		if ((size_t)nlen + 1 > pos)
			return fs_err(fs, -ENAMETOOLONG,
				      "inode %llu in tree %llu: path longer than %zu bytes",
				      (unsigned long long)ino,
				      (unsigned long long)root->objectid, len - 1);
		pos -= nlen;
		memcpy(buf + pos, name, nlen);
		buf[--pos] = '/';
		cur = parent;
	}
	if (pos == len - 1)
		buf[--pos] = '/';
	memmove(buf, buf + pos, len - pos);
	return 0;
}

int path_lookup_from(struct fs_info *fs, const struct name_codec *nc,
		     const struct root_ref *start, u64 dir, const char *path,
		     struct root_ref *root_out, u64 *ino_out)
{
	struct root_ref root = *start;
	u64 ino = dir;
	int ret;

	while (*path) {
		const char *end;
		struct btrfs_key loc;
		u8 type;

		while (*path == '/')
			path++;
		if (!*path)
			break;
		end = strchrnul(path, '/');
		if (end - path == 1 && *path == '.') {
			path = end;	/* "." names the directory itself (no such item on disk) */
			continue;
		}
		if (end - path > BTRFS_NAME_LEN)
			return 1;
		if (nc)
			ret = nc->lookup(nc, &root, ino, path, end - path, &loc);
		else
			ret = dir_lookup(fs, &root, ino, path, end - path, &loc, &type);
		if (ret)
			return ret;
		if (loc.type == BTRFS_ROOT_ITEM_KEY) {
			ret = find_root(fs, loc.objectid, &root);
			if (ret)
				return ret == -ENOENT ? 1 : ret;
			ret = subvol_root_dir(fs, root.objectid, &ino);
			if (ret)
				return ret;
		} else {
			ino = loc.objectid;
		}
		path = end;
	}
	*root_out = root;
	*ino_out = ino;
	return 0;
}

int path_lookup(struct fs_info *fs, const struct name_codec *nc, const char *path,
		struct root_ref *root_out, u64 *ino_out)
{
	struct root_ref root;
	u64 dir;
	int ret;

	ret = find_root(fs, BTRFS_FS_TREE_OBJECTID, &root);
	if (ret == -ENOENT)
		return fs_err(fs, -EUCLEAN, "the root tree has no FS tree root item");
	if (ret)
		return ret;
	ret = subvol_root_dir(fs, root.objectid, &dir);
	if (ret)
		return ret < 0 ? ret : fs_err(fs, -EUCLEAN, "FS tree has no root item");
	return path_lookup_from(fs, nc, &root, dir, path, root_out, ino_out);
}

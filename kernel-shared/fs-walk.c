// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/hash.h"
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

/* First parent reference of ino: parent inode and the name. */
static int first_ref(struct fs_info *fs, const struct root_ref *root, u64 ino,
		     u64 *parent, char *name, u16 *name_len)
{
	struct btrfs_key key = { ino, BTRFS_INODE_REF_KEY, 0 };
	struct btrfs_path p;
	struct btrfs_key k;
	int ret;

	ret = search_slot(fs, root, &key, &p);
	if (ret < 0)
		return ret;
	ret = 1;
	if (!path_item_valid(&p))
		goto out;
	path_key(&p, &k);
	if (k.objectid != ino)
		goto out;
	if (k.type == BTRFS_INODE_REF_KEY) {
		const struct btrfs_inode_ref *r = (const void *)path_ptr(&p);
		u16 len;

		if (path_size(&p) < sizeof(*r))
			goto corrupt;
		len = le16_to_cpu(r->name_len);
		if (sizeof(*r) + len > path_size(&p))
			goto corrupt;
		if (len > BTRFS_NAME_LEN)
			goto too_long;
		*parent = k.offset;
		memcpy(name, r + 1, len);
		*name_len = len;
		ret = 0;
	} else if (k.type == BTRFS_INODE_EXTREF_KEY) {
		const struct btrfs_inode_extref *r = (const void *)path_ptr(&p);
		u16 len;

		if (path_size(&p) < sizeof(*r))
			goto corrupt;
		len = le16_to_cpu(r->name_len);
		if (sizeof(*r) + len > path_size(&p))
			goto corrupt;
		if (len > BTRFS_NAME_LEN)
			goto too_long;
		*parent = le64_to_cpu(r->parent_objectid);
		memcpy(name, r + 1, len);
		*name_len = len;
		ret = 0;
	}
out:
	path_release(fs, &p);
	return ret;
corrupt:
	path_release(fs, &p);
	return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: truncated inode ref",
		      (unsigned long long)ino, (unsigned long long)root->objectid);
too_long:
	/* The tree-checker bounds a ref's name by its item only: name holds 256 bytes. */
	path_release(fs, &p);
	return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: inode ref name longer than 255 bytes",
		      (unsigned long long)ino, (unsigned long long)root->objectid);
}

int inode_path(struct fs_info *fs, const struct root_ref *root, u64 ino,
	       char *buf, size_t len)
{
	u64 top, cur = ino;
	char name[256];
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
		ret = first_ref(fs, root, cur, &parent, name, &nlen);
		if (ret)
			return ret;
		if (parent == cur)
			return fs_err(fs, -EUCLEAN, "inode %llu in tree %llu: is its own parent",
				      (unsigned long long)cur, (unsigned long long)root->objectid);
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

int path_lookup_from(struct fs_info *fs, const struct root_ref *start, u64 dir,
		     const char *path, struct root_ref *root_out, u64 *ino_out)
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
		if (end - path > BTRFS_NAME_LEN)
			return 1;
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

int path_lookup(struct fs_info *fs, const char *path, struct root_ref *root_out,
		u64 *ino_out)
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
	return path_lookup_from(fs, &root, dir, path, root_out, ino_out);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Directories in re-encryption: each entry name is encrypted or decrypted
 * and its DIR_ITEM, DIR_INDEX and back reference (INODE_REF, INODE_EXTREF
 * or ROOT_REF/ROOT_BACKREF) rewritten in the same transaction.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "reencrypt/internal.h"
#include "kernel-shared/dir-item.h"
#include "kernel-shared/hash.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/inode-ref.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "crypto/fname.h"
#include "common/containers.h"
#include "common/utils.h"

/* ---- directories ------------------------------------------------------------ */

struct dir_entry {
	u64 index;
	struct btrfs_dir_item di;	/* location, transid, data_len, name_len, type */
	u8 name[BTRFS_NAME_LEN];
	u8 new_name[FNAME_MAX_LEN];
	u32 new_len;
};

static int collect_entries(struct reenc *c, struct trans_root *root, u64 dir,
			   struct dir_entry **out, size_t *nr)
{
	struct key_iter it;
	size_t cap = 0;
	int ret;

	*out = NULL;
	*nr = 0;
	for (ret = key_iter_type(&it, c->fs, &root->ref, dir, BTRFS_DIR_INDEX_KEY, 0); ret == 0;
	     ret = key_iter_next(&it)) {
		const struct btrfs_dir_item *di = (const void *)it.ptr;
		struct dir_entry *e;
		u32 nl;

		nl = it.size >= sizeof(*di) ? le16_to_cpu(di->name_len) : 0;
		if (!nl || nl > BTRFS_NAME_LEN || sizeof(*di) + nl > it.size) {
			ret = fs_err(c->fs, -EUCLEAN, "dir %llu: bad dir index %llu", dir,
				     it.key.offset);
			break;
		}
		{
			struct dir_entry *n = array_grow(*out, &cap, *nr, sizeof(*n));

			if (!n) {
				ret = fs_err(c->fs, -ENOMEM, "out of memory");
				break;
			}
			*out = n;
		}
		e = &(*out)[(*nr)++];
		e->index = it.key.offset;
		memcpy(&e->di, di, sizeof(*di));
		memcpy(e->name, di + 1, nl);
	}
	key_iter_release(&it);
	return ret < 0 ? ret : 0;
}

/*
 * Remove the entry named name from the (possibly shared) DIR_ITEM of dir.
 * An orphan directory (unlinked, waiting for the kernel's orphan cleanup)
 * may have lost its DIR_ITEMs already and keep only its DIR_INDEX items, as
 * btrfs check accepts: then, and only then, a missing item returns 1.
 */
static int remove_dir_item_entry(struct reenc *c, struct trans_root *root, u64 dir,
				 const u8 *name, u32 nl, bool orphan)
{
	int ret = dir_item_remove(c->t, root, dir, name, nl);

	if (ret == 1 && orphan)
		return 1;
	if (ret == 1)
		return fs_err(c->fs, -EUCLEAN, "dir %llu: missing dir item for an entry", dir);
	if (ret == DIR_ITEM_NO_ENTRY)
		return fs_err(c->fs, -EUCLEAN,
			      "dir %llu: dir item does not hold an entry of its index", dir);
	return ret;
}

/* A subvolume entry: ROOT_REF and ROOT_BACKREF in the root tree hold the name. */
static int rename_root_refs(struct reenc *c, struct trans_root *root, const struct btrfs_key *loc,
			    const struct dir_entry *e)
{
	struct trans_root *rt = trans_get_root(c->t, BTRFS_ROOT_TREE_OBJECTID);
	struct btrfs_key keys[2] = {
		{ root->ref.objectid, BTRFS_ROOT_REF_KEY, loc->objectid },
		{ loc->objectid, BTRFS_ROOT_BACKREF_KEY, root->ref.objectid },
	};
	int ret;

	for (int i = 0; i < 2; i++) {
		u8 buf[sizeof(struct btrfs_root_ref) + BTRFS_NAME_LEN];
		struct btrfs_root_ref *rr = (void *)buf;
		u32 size;

		ret = trans_lookup(c->t, rt, &keys[i], buf, sizeof(buf), &size);
		/*
		 * No ROOT_REF from this tree: the entry was copied into a
		 * snapshot and names no subvolume here (the kernel shows an
		 * empty directory), so there is no back reference to rename.
		 */
		if (ret > 0 && i == 0)
			return 0;
		if (ret)
			return ret > 0 ? fs_err(c->fs, -EUCLEAN, "subvolume %llu: missing root backref",
						loc->objectid) : ret;
		rr->name_len = cpu_to_le16(e->new_len);
		memcpy(rr + 1, e->new_name, e->new_len);
		ret = trans_delete_item(c->t, rt, &keys[i]);
		if (!ret)
			ret = insert_item(c->t, rt, &keys[i], buf, sizeof(*rr) + e->new_len);
		if (ret)
			return ret > 0 ? -EUCLEAN : ret;
	}
	return 0;
}

/*
 * Replace the name of the back reference with this index (INODE_REF / EXTREF
 * / ROOT refs).  In an orphan directory the entry's inode may have lost its
 * ref already (the orphan cleanup had begun): then there is nothing to rename.
 */
static int rename_backref(struct reenc *c, struct trans_root *root, u64 dir,
			  const struct dir_entry *e, bool orphan)
{
	struct btrfs_key loc, key;
	struct btrfs_path p;
	u32 old_nl = le16_to_cpu(e->di.name_len), pos, len;
	int ret;

	btrfs_disk_key_to_cpu(&loc, &e->di.location);
	if (loc.type == BTRFS_ROOT_ITEM_KEY)
		return rename_root_refs(c, root, &loc, e);
	key = (struct btrfs_key){ loc.objectid, BTRFS_INODE_REF_KEY, dir };
	{
		u32 cur = 0;

		/* If the grown item could not fit any leaf, do not ask for room: spill. */
		if (trans_lookup(c->t, root, &key, NULL, 0, &cur) == 0 &&
		    cur - old_nl + e->new_len > max_item_size(c->fs))
			ret = search_slot_mod(c->t, root, &key, &p, 0);
		else
			ret = search_slot_mod(c->t, root, &key, &p,
					      e->new_len > old_nl ? e->new_len - old_nl : 0);
	}
	if (ret == 0 && inode_ref_find_index(path_ptr(&p), path_size(&p), e->index, &pos, &len) == 0) {
		u8 *ptr = path_ptr_mut(&p);
		u32 size = path_size(&p), nl = len - sizeof(struct btrfs_inode_ref);
		u32 nsize = size - nl + e->new_len;
		struct btrfs_inode_ref *r;

		if (nsize > max_item_size(c->fs) &&
		    (c->fs->incompat & BTRFS_FEATURE_INCOMPAT_EXTENDED_IREF) && size > len) {
			/*
			 * The renamed ref would make the item larger than any
			 * leaf holds: move it to an INODE_EXTREF, as the kernel
			 * does when an INODE_REF cannot grow.
			 */
			memmove(ptr + pos, ptr + pos + len, size - pos - len);
			ret = resize_item(c->t, root, &p, size - len);
			path_release(c->fs, &p);
			return ret ? ret : inode_extref_insert(c->t, root, loc.objectid, dir, e->index,
							       e->new_name, e->new_len);
		}
		if (nsize > size) {
			ret = resize_item(c->t, root, &p, nsize);
			ptr = path_ptr_mut(&p);
		}
		if (!ret) {
			r = (void *)(ptr + pos);
			memmove(ptr + pos + sizeof(*r) + e->new_len, ptr + pos + len,
				size - pos - len);
			memcpy(r + 1, e->new_name, e->new_len);
			r->name_len = cpu_to_le16(e->new_len);
			if (nsize < size)
				ret = resize_item(c->t, root, &p, nsize);
			path_release(c->fs, &p);
			return ret;
		}
	}
	path_release(c->fs, &p);
	if (ret < 0)
		return ret;
	/* Not in the INODE_REF: an INODE_EXTREF keyed by the name's hash. */
	ret = inode_extref_remove(c->t, root, loc.objectid, dir, e->name, old_nl);
	if (ret > 0 && orphan)
		return 0;
	if (ret)
		return ret > 0 ? fs_err(c->fs, -EUCLEAN, "inode %llu: no ref for index %llu",
					loc.objectid, e->index) : ret;
	return inode_extref_insert(c->t, root, loc.objectid, dir, e->index, e->new_name,
				   e->new_len);
}

/*
 * An encrypted directory may only name an encrypted subvolume root, and a
 * plain one only a plain root: nested subvolumes are converted first on
 * encrypt and last on decrypt, so this holds unless the selection split them.
 */
static int check_subvol_entry(struct reenc *c, const struct dir_entry *e)
{
	struct btrfs_key loc;
	struct trans_root *sub;
	struct btrfs_inode_item ii;
	u64 top;
	int ret;

	btrfs_disk_key_to_cpu(&loc, &e->di.location);
	if (loc.type != BTRFS_ROOT_ITEM_KEY || !c->ops->dst_encrypted)
		return 0;
	{
		struct btrfs_key rk = { c->cur_tree, BTRFS_ROOT_REF_KEY, loc.objectid };

		if (trans_lookup(c->t, trans_get_root(c->t, BTRFS_ROOT_TREE_OBJECTID), &rk,
				 NULL, 0, NULL) > 0)
			return 0;	/* a snapshot's placeholder, not a link */
	}
	sub = trans_get_root(c->t, loc.objectid);
	if (!sub)
		return 0;	/* a dangling entry: nothing to protect */
	ret = subvol_root_dir(c->fs, loc.objectid, &top);
	if (!ret)
		ret = trans_inode_read(c->t, sub, top, &ii);
	if (ret)
		return ret < 0 ? ret : 0;
	if (!(le64_to_cpu(ii.flags) & BTRFS_INODE_ENCRYPT))
		return fs_err(c->fs, -EOPNOTSUPP,
			      "a selected directory contains subvolume %llu, which is not being encrypted; select it too (--subvol %llu)",
			      loc.objectid, loc.objectid);
	return 0;
}

/*
 * Write the converted names of a directory's entries (e->new_name): the
 * DIR_ITEM (its hash changes with the name), the DIR_INDEX and the inode's
 * back reference.  orphan: see remove_dir_item_entry().
 */
static int rewrite_entries(struct reenc *c, struct trans_root *root, u64 dir,
			   struct dir_entry *ents, size_t nr, bool orphan)
{
	int ret = 0;

	for (size_t i = 0; !ret && i < nr; i++) {
		struct dir_entry *e = &ents[i];
		u32 nl = le16_to_cpu(e->di.name_len);
		u8 entry[sizeof(struct btrfs_dir_item) + FNAME_MAX_LEN];
		struct btrfs_dir_item *di = (void *)entry;
		struct btrfs_key k = { dir, BTRFS_DIR_INDEX_KEY, e->index };

		memcpy(di, &e->di, sizeof(*di));
		di->name_len = cpu_to_le16(e->new_len);
		di->data_len = 0;
		di->type = c->ops->dst_encrypted ? (u8)(e->di.type | BTRFS_FT_ENCRYPTED)
						 : (u8)(e->di.type & ~BTRFS_FT_ENCRYPTED);
		memcpy(di + 1, e->new_name, e->new_len);
		ret = remove_dir_item_entry(c, root, dir, e->name, nl, orphan);
		if (!ret)
			ret = dir_item_insert(c->t, root, dir, e->new_name, e->new_len, entry,
					      sizeof(*di) + e->new_len);
		else if (ret == 1)
			ret = 0;	/* an orphan's entry without DIR_ITEM stays without one */
		if (!ret)
			ret = trans_delete_item(c->t, root, &k);
		if (!ret)
			ret = dir_index_insert(c->t, root, dir, e->index, entry,
					       sizeof(*di) + e->new_len);
		if (!ret)
			ret = rename_backref(c, root, dir, e, orphan);
		c->sv->names++;
	}
	return ret;
}

/* Whether directory ino is an orphan: no link left, deleted at the next mount. */
static int is_orphan(struct reenc *c, struct trans_root *root, u64 ino, bool *orphan)
{
	struct btrfs_inode_item ii;
	int ret = trans_inode_read(c->t, root, ino, &ii);

	*orphan = !ret && le32_to_cpu(ii.nlink) == 0;
	return ret < 0 ? ret : 0;
}

/*
 * The file key of directory dir under context x and master key mk, in key,
 * and when it has entries (nr) its names cipher (enc: for encrypting); 0,
 * or an error with the message set.
 */
static int names_cipher(struct reenc *c, u64 dir, const struct fscrypt_master_key *mk,
			const struct fscrypt_context_v2 *x, int enc, size_t nr, u8 *key,
			struct fname_cipher **fc)
{
	int ret = fscrypt_derive_file_key(mk, x->nonce, x->filenames_mode, key, NULL);

	if (!ret && nr && !(*fc = fname_cipher_new(x->filenames_mode, key, enc, &ret)))
		ret = ret == -ENOMEM ? fs_err(c->fs, ret, "out of memory") :
				       fs_err(c->fs, ret, "dir %llu: cannot %s its names",
					      (unsigned long long)dir, enc ? "encrypt" : "decrypt");
	return ret;
}

/*
 * The new names of the entries (e->new_name): decrypted under old (if the
 * directory is encrypted now), then encrypted under new (if it ends
 * encrypted).  Between the two a name lies in c->plain.  *dsize: the new
 * directory size.
 */
static int convert_names(struct reenc *c, u64 dir, struct dir_entry *ents, size_t nr,
			 const struct fscrypt_context_v2 *old, const struct fscrypt_context_v2 *new,
			 u64 *dsize)
{
	u8 okey[FSCRYPT_MAX_MODE_KEY_SIZE], nkey[FSCRYPT_MAX_MODE_KEY_SIZE];
	struct fname_cipher *ofc = NULL, *nfc = NULL;
	int ret = 0;

	*dsize = 0;
	/* One key schedule for the directory's names (fname_decrypt() makes one per name). */
	if (old)
		ret = names_cipher(c, dir, c->src_mk, old, 0, nr, okey, &ofc);
	if (!ret && new)
		ret = names_cipher(c, dir, c->dst_mk, new, 1, nr, nkey, &nfc);
	for (size_t i = 0; !ret && i < nr; i++) {
		struct dir_entry *e = &ents[i];
		int n = le16_to_cpu(e->di.name_len);

		if (old)
			n = fname_decrypt_with(ofc, e->name, n, c->plain);
		else
			memcpy(c->plain, e->name, n);
		if (n >= 0 && new)
			n = fname_encrypt_with(nfc, new->flags, c->plain, n, e->new_name);
		else if (n >= 0)
			memcpy(e->new_name, c->plain, n);
		if (n < 0) {
			ret = n == -EBADMSG ? fs_err(c->fs, -EKEYREJECTED,
						     "dir %llu: entry %llu does not decrypt to a valid name",
						     dir, e->index)
					    : fs_err(c->fs, n, "dir %llu: cannot convert entry %llu", dir,
						     e->index);
			break;
		}
		e->new_len = n;
		*dsize += 2 * (u64)n;
		ret = check_subvol_entry(c, e);
	}
	fname_cipher_free(ofc);
	fname_cipher_free(nfc);
	explicit_bzero(okey, sizeof(okey));
	explicit_bzero(nkey, sizeof(nkey));
	explicit_bzero(c->plain, PLAIN_SCRATCH);
	return ret;
}

int reencrypt_dir(struct reenc *c, struct trans_root *root, const struct inode_info *ii)
{
	struct fscrypt_context_v2 old, new;
	const struct fscrypt_context_v2 *oldp = c->ops->src_encrypted ? &old : NULL;
	const struct fscrypt_context_v2 *newp = c->ops->dst_encrypted ? &new : NULL;
	struct dir_entry *ents = NULL;
	size_t nr = 0;
	u64 dsize = 0;
	bool orphan, todo;
	int ret;

	ret = reenc_begin(c);
	if (!ret)
		ret = reenc_inode_todo(c, root, ii, &old, &todo);
	if (ret || !todo)
		return ret;	/* not to do, or done already (resume), with the key verified */
	ret = is_orphan(c, root, ii->ino, &orphan);
	if (!ret && newp)
		ret = reenc_new_inode_ctx(c, root, ii->ino, oldp, &new);
	if (!ret)
		ret = collect_entries(c, root, ii->ino, &ents, &nr);
	if (!ret)
		ret = convert_names(c, ii->ino, ents, nr, oldp, newp, &dsize);
	if (!ret)
		ret = rewrite_entries(c, root, ii->ino, ents, nr, orphan);
	if (!ret && !newp)
		ret = reenc_clear_inode_ctx(c, root, ii->ino);
	if (!ret) {
		struct btrfs_inode_item di;

		ret = trans_inode_read(c->t, root, ii->ino, &di);
		if (!ret) {
			/* An orphan's size is left as the kernel left it: it is not checked. */
			if (!orphan)
				di.size = cpu_to_le64(dsize);
			di.transid = cpu_to_le64(c->t->transid);
			ret = trans_inode_write(c->t, root, ii->ino, &di);
		}
	}
	free(ents);
	if (ret)
		return ret > 0 ? -EUCLEAN : ret;
	c->sv->inodes++;
	c->sv->dirs++;
	c->st->inodes++;
	/* Directory work is metadata only: commit every few thousand names. */
	c->since_commit += 4096 * (nr + 1);
	if (c->since_commit >= c->batch)
		return reenc_commit(c);
	return 0;
}

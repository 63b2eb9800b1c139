// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/fault.h"
#include "kernel-shared/data-write.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/fscrypt-item.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "crypto/csum.h"

int data_insert_hole(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 len)
{
	struct btrfs_file_extent_item fe = { 0 };

	fe.generation = cpu_to_le64(t->transid);
	fe.ram_bytes = cpu_to_le64(len);
	fe.type = BTRFS_FILE_EXTENT_REG;
	fe.num_bytes = cpu_to_le64(len);
	return file_extent_insert_with_ctx(t, root, ino, off, &fe, sizeof(fe), NULL, 0);
}

int data_extent_insert(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 bytenr,
		       u64 len, const struct fscrypt_extent_context *ectx)
{
	struct btrfs_file_extent_item fe = { 0 };
	struct ref_change rc = { 0 };
	int ret;

	fe.generation = cpu_to_le64(t->transid);
	fe.ram_bytes = cpu_to_le64(len);
	fe.type = BTRFS_FILE_EXTENT_REG;
	fe.encryption = ectx ? BTRFS_ENCRYPTION_FSCRYPT : BTRFS_ENCRYPTION_NONE;
	fe.disk_bytenr = cpu_to_le64(bytenr);
	fe.disk_num_bytes = cpu_to_le64(len);
	fe.num_bytes = cpu_to_le64(len);
	ret = file_extent_insert_with_ctx(t, root, ino, off, &fe, sizeof(fe), ectx, sizeof(*ectx));
	if (ret)
		return ret;
	rc.bytenr = bytenr;
	rc.num_bytes = len;
	rc.kind = REF_DATA;
	rc.root = root->ref.objectid;
	rc.objectid = ino;
	rc.offset = off;
	rc.delta = 1;
	rc.new_extent = true;
	rc.generation = t->transid;
	return queue_ref(t, &rc);
}

int data_write_new_extent(struct trans *t, struct trans_root *root, u64 ino, u64 off,
			  const u8 *data, u64 len)
{
	struct fs_info *fs = t->fs;
	u64 alen = (len + fs->sectorsize - 1) / fs->sectorsize * fs->sectorsize;
	u64 nsec = alen / fs->sectorsize, bytenr;
	struct btrfs_inode_item ii;
	u8 *buf = NULL, *sums = NULL;
	bool datasum;
	int ret;

	ret = trans_inode_read(t, root, ino, &ii);
	if (ret)
		return ret < 0 ? ret : fs_err(fs, -ENOENT, "inode %llu not found", ino);
	datasum = !(le64_to_cpu(ii.flags) & BTRFS_INODE_NODATASUM);
	ret = alloc_data_extent(t, alen, &bytenr);
	if (ret)
		return ret;
	if (!find_chunk(fs, bytenr))
		return fs_err(fs, -EUCLEAN, "data extent %llu is not mapped by any chunk", bytenr);
	buf = fault_calloc(1, alen);
	sums = fault_calloc(nsec, fs->csum_size);
	if (!buf || !sums) {
		ret = fs_err(fs, -ENOMEM, "out of memory");
		goto out;
	}
	memcpy(buf, data, len);
	ret = write_logical(fs, bytenr, buf, alen);
	if (ret) {
		fs_err(fs, ret, "writing data at %llu failed: %s", bytenr, strerror(-ret));
		goto out;
	}
	if (datasum) {
		csum_batch(fs->csum_type, buf, fs->sectorsize, nsec, sums);
		ret = csum_insert(t, bytenr, sums, nsec);
		if (ret)
			goto out;
	}
	ret = data_extent_insert(t, root, ino, off, bytenr, alen, NULL);
out:
	free(buf);
	free(sums);
	return ret;
}

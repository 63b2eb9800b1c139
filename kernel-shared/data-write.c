// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kernel-shared/data-write.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/file-item.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/volumes.h"
#include "crypto/extent-io.h"
#include "crypto/csum.h"

int sector_sums_process(struct extent_io *io, const uint8_t *buf, uint64_t logical,
			uint32_t len, void *priv)
{
	struct sector_sums *s = priv;
	u8 digest[CSUM_MAX_SIZE];

	if (!s)
		return 0;
	for (u32 off = 0; off < len; off += s->unit) {
		u64 idx = (logical + off - s->logical) / s->unit;

		if (idx >= s->count)
			return -ERANGE;
		if (!s->present[idx])
			continue;
		if (s->verify) {
			csum_compute(s->type, buf + off, s->unit, digest);
			if (memcmp(digest, s->sums + idx * s->csum_size, s->csum_size))
				return -EBADMSG;
		} else {
			csum_compute(s->type, buf + off, s->unit, digest);
			memcpy(s->sums + idx * s->csum_size, digest, s->csum_size);
		}
	}
	return 0;
}

int data_csum_process(struct extent_io *io, const uint8_t *buf, uint64_t logical, uint32_t len,
		      void *priv)
{
	return priv ? extent_io_csum_process(io, buf, logical, len, priv) : 0;
}

int data_insert_hole(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 len)
{
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, off };
	struct btrfs_file_extent_item fe = { 0 };

	fe.generation = cpu_to_le64(t->transid);
	fe.ram_bytes = cpu_to_le64(len);
	fe.type = BTRFS_FILE_EXTENT_REG;
	fe.num_bytes = cpu_to_le64(len);
	return insert_item(t, root, &key, &fe, sizeof(fe));
}

int data_write_new_extent(struct trans *t, struct trans_root *root, u64 ino, u64 off,
			  const u8 *data, u64 len)
{
	return data_write_extent(t, NULL, root, ino, off, data, len, NULL);
}

int data_extent_insert(struct trans *t, struct trans_root *root, u64 ino, u64 off, u64 bytenr,
		       u64 len, const struct fscrypt_extent_context *ectx)
{
	struct btrfs_key key = { ino, BTRFS_EXTENT_DATA_KEY, off };
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
	ret = insert_item(t, root, &key, &fe, sizeof(fe));
	if (!ret && ectx) {
		struct btrfs_key ck = { ino, BTRFS_FSCRYPT_CTX_KEY, off };

		ret = insert_item(t, root, &ck, ectx, sizeof(*ectx));
	}
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

int data_write_extent(struct trans *t, struct extent_io *caller_io, struct trans_root *root,
		      u64 ino, u64 off, const u8 *data, u64 len,
		      const struct fscrypt_extent_context *ectx)
{
	struct fs_info *fs = t->fs;
	u64 alen = (len + fs->sectorsize - 1) / fs->sectorsize * fs->sectorsize;
	u64 nsec = alen / fs->sectorsize, bytenr;
	struct btrfs_inode_item ii;
	struct extent_io_params params = { 0 };
	struct sector_sums csums = { 0 };
	u8 *present = NULL;
	struct extent_io_job jobs[2];
	struct extent_io *io = NULL;
	const struct chunk_map *m;
	bool datasum;
	u8 *buf = NULL, *sums = NULL;
	int ret;

	ret = trans_inode_read(t, root, ino, &ii);
	if (ret)
		return ret < 0 ? ret : -ENOENT;
	datasum = !(le64_to_cpu(ii.flags) & BTRFS_INODE_NODATASUM);
	ret = alloc_data_extent(t, alen, &bytenr);
	if (ret)
		return ret;
	m = find_chunk(fs, bytenr);
	buf = calloc(1, alen);
	sums = calloc(nsec, fs->csum_size);
	present = malloc(nsec);
	if (!m || !buf || !sums || !present) {
		ret = m ? fs_err(fs, -ENOMEM, "out of memory") : -EUCLEAN;
		goto out;
	}
	memcpy(buf, data, len);
	memset(present, 1, nsec);
	csums = (struct sector_sums){ fs->csum_type, fs->csum_size, fs->sectorsize, bytenr, nsec,
				      sums, present, false };
	params.fd = fs->fd;
	params.dst_fd = -1;
	params.unit_size = fs->sectorsize;
	params.threads = 1;
	params.process = sector_sums_process;
	params.pwrite_fn = fault_pwrite;
	if (caller_io) {
		io = caller_io;
	} else if ((ret = extent_io_new(&io, &params))) {
		fs_err(fs, ret, "cannot start the data pipeline");
		goto out;
	}
	/* One job per stripe (DUP data has two copies). */
	for (u16 s = 0; s < m->num_stripes && s < 2; s++) {
		memset(&jobs[s], 0, sizeof(jobs[s]));
		jobs[s].len = alen;
		jobs[s].flags = EXTENT_IO_WRITE;
		jobs[s].dst.physical = m->physical[s] + (bytenr - m->logical);
		jobs[s].dst.logical = bytenr;
		jobs[s].dst.priv = datasum ? &csums : NULL;
		jobs[s].dst.nonce = ectx ? ectx->nonce : NULL;
		jobs[s].mem = buf;
	}
	ret = extent_io_run(io, jobs, m->num_stripes < 2 ? m->num_stripes : 2);
	if (ret) {
		fs_err(fs, ret, "writing data at %llu failed: %s", bytenr, strerror(-ret));
		goto out;
	}
	if (datasum && (ret = csum_insert(t, bytenr, sums, nsec)))
		goto out;
	ret = data_extent_insert(t, root, ino, off, bytenr, alen, ectx);
out:
	if (io != caller_io)
		extent_io_free(io);
	free(buf);
	free(sums);
	free(present);
	return ret;
}

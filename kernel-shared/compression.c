// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <lzo/lzo1x.h>
#include "kernel-shared/compression.h"
#include "common/fault.h"

static long zlib_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	z_stream zs;
	long produced;
	int ret;

	memset(&zs, 0, sizeof(zs));
	/* zlib and zstd allocate their own state: the injector fails it here. */
	if (fault_alloc_fails() || inflateInit(&zs) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = in_len;
	zs.next_out = out;
	zs.avail_out = out_len;
	ret = inflate(&zs, Z_FINISH);
	produced = out_len - zs.avail_out;
	inflateEnd(&zs);
	/* A stream longer than ram_bytes is cut there, as the kernel does. */
	if (ret != Z_STREAM_END && ret != Z_OK && !(ret == Z_BUF_ERROR && !zs.avail_out))
		return -EUCLEAN;
	return produced;
}

static long zstd_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len)
{
	ZSTD_DStream *ds = fault_alloc_fails() ? NULL : ZSTD_createDStream();
	ZSTD_inBuffer ib = { in, in_len, 0 };
	ZSTD_outBuffer ob = { out, out_len, 0 };
	size_t ret;

	if (!ds)
		return -ENOMEM;
	ZSTD_initDStream(ds);
	do {
		ret = ZSTD_decompressStream(ds, &ob, &ib);
	} while (!ZSTD_isError(ret) && ret && ib.pos < ib.size && ob.pos < ob.size);
	ZSTD_freeDStream(ds);
	if (ZSTD_isError(ret))
		return -EUCLEAN;
	return ob.pos;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * btrfs lzo: le32 total length, then segments {le32 len; lzo1x data} each
 * decompressing to at most one sector; a segment header never straddles a
 * sector boundary (the rest of the sector is padding then).
 */
static long lzo_decompress(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_len,
			   uint32_t sectorsize)
{
	size_t pos = 4, total, done = 0;

	if (lzo_init() != LZO_E_OK || in_len < 4)
		return -EUCLEAN;
	total = get_le32(in);
	if (total > in_len || total < 4)
		return -EUCLEAN;
	while (pos < total && done < out_len) {
		lzo_uint dst_len = sectorsize;
		uint8_t seg[65536];
		uint32_t seg_len;

		if (sectorsize - pos % sectorsize < 4)
			pos += sectorsize - pos % sectorsize;	/* padding to the next sector */
		if (pos + 4 > total)
			break;
		seg_len = get_le32(in + pos);
		pos += 4;
		if (!seg_len || seg_len > total - pos || sectorsize > sizeof(seg))
			return -EUCLEAN;
		if (lzo1x_decompress_safe(in + pos, seg_len, seg, &dst_len, NULL) != LZO_E_OK)
			return -EUCLEAN;
		if (dst_len > out_len - done)
			dst_len = out_len - done;
		memcpy(out + done, seg, dst_len);
		done += dst_len;
		pos += seg_len;
	}
	return done;
}

long btrfs_decompress(int type, const uint8_t *in, size_t in_len, uint8_t *out,
		      size_t out_len, uint32_t sectorsize)
{
	switch (type) {
	case 1: return zlib_decompress(in, in_len, out, out_len);
	case 2: return lzo_decompress(in, in_len, out, out_len, sectorsize);
	case 3: return zstd_decompress(in, in_len, out, out_len);
	default: return -EINVAL;
	}
}

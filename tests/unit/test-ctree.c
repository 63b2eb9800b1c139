// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of kernel-shared/: on-disk layout, key order, superblock
 * offsets, decompression of the btrfs stream formats.  Expected values come
 * from Documentation/format.rst section 2 (offsets) or from the libraries' own encoders.
 */
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <lzo/lzo1x.h>
#include "tests/unit/unit.h"
#include "kernel-shared/ondisk.h"
#include "kernel-shared/compression.h"

UNIT_TEST(ondisk_offsets_match_format_md)
{
	/* Documentation/format.rst 2.1, 2.3, 2.6, 2.7 */
	CHECK(offsetof(struct btrfs_super_block, generation) == 0x48);
	CHECK(offsetof(struct btrfs_super_block, incompat_flags) == 0xbc);
	CHECK(offsetof(struct btrfs_super_block, csum_type) == 0xc4);
	CHECK(offsetof(struct btrfs_super_block, dev_item) == 0xc9);
	CHECK(offsetof(struct btrfs_super_block, metadata_uuid) == 0x23b);
	CHECK(offsetof(struct btrfs_super_block, super_roots) == 0xb2b);
	CHECK(offsetof(struct btrfs_header, nritems) == 0x60);
	CHECK(offsetof(struct btrfs_header, level) == 0x64);
	CHECK(offsetof(struct btrfs_inode_item, flags) == 0x40);
	CHECK(offsetof(struct btrfs_inode_item, atime) == 0x70);
	CHECK(offsetof(struct btrfs_dir_item, type) == 0x1d);
	CHECK(offsetof(struct btrfs_file_extent_item, encryption) == 0x11);
	CHECK(offsetof(struct btrfs_file_extent_item, disk_bytenr) == 0x15);
	CHECK(offsetof(struct btrfs_root_item, bytenr) == 176);
	CHECK(offsetof(struct btrfs_root_item, level) == 238);
	CHECK(BTRFS_ROOT_ITEM_V0_SIZE == 239);
}

UNIT_TEST(key_order_is_unsigned_lexicographic)
{
	struct btrfs_key a = { 256, BTRFS_INODE_ITEM_KEY, 0 };
	struct btrfs_key b = { 256, BTRFS_FSCRYPT_CTX_KEY, 4096 };
	struct btrfs_key c = { 256, BTRFS_EXTENT_DATA_KEY, 0 };
	struct btrfs_key d = { (u64)-10, BTRFS_EXTENT_CSUM_KEY, 0 };

	CHECK(btrfs_comp_keys(&a, &b) < 0);
	/* ctx items (42) sort before EXTENT_DATA (108) of the same inode (Documentation/format.rst 5.3) */
	CHECK(btrfs_comp_keys(&b, &c) < 0);
	CHECK(btrfs_comp_keys(&c, &d) < 0);
	CHECK(btrfs_comp_keys(&d, &d) == 0);
}

UNIT_TEST(superblock_mirror_offsets)
{
	CHECK(btrfs_sb_offset(0) == 0x10000);
	CHECK(btrfs_sb_offset(1) == 0x4000000);
	CHECK(btrfs_sb_offset(2) == 0x4000000000ULL);
}

static const char sample[] =
	"btrfs compresses extents with zlib, lzo or zstd; this line repeats. "
	"btrfs compresses extents with zlib, lzo or zstd; this line repeats. "
	"btrfs compresses extents with zlib, lzo or zstd; this line repeats.";

UNIT_TEST(decompress_zlib_and_zstd)
{
	u8 comp[1024], out[sizeof(sample)];
	uLongf clen = sizeof(comp);
	size_t zlen;

	CHECK(compress2(comp, &clen, (const Bytef *)sample, sizeof(sample), 6) == Z_OK);
	CHECK(btrfs_decompress(1, comp, clen, out, sizeof(sample), 4096) == (long)sizeof(sample));
	CHECK(!memcmp(out, sample, sizeof(sample)));
	zlen = ZSTD_compress(comp, sizeof(comp), sample, sizeof(sample), 3);
	CHECK(!ZSTD_isError(zlen));
	memset(out, 0, sizeof(out));
	CHECK(btrfs_decompress(3, comp, zlen, out, sizeof(sample), 4096) == (long)sizeof(sample));
	CHECK(!memcmp(out, sample, sizeof(sample)));
	/* Garbage is an error, not a crash. */
	memset(comp, 0xa5, 64);
	CHECK(btrfs_decompress(1, comp, 64, out, sizeof(out), 4096) < 0);
	CHECK(btrfs_decompress(3, comp, 64, out, sizeof(out), 4096) < 0);
	CHECK(btrfs_decompress(9, comp, 64, out, sizeof(out), 4096) < 0);
}

UNIT_TEST(decompress_lzo_btrfs_segments)
{
	/* Build the btrfs layout: le32 total, then one le32-prefixed lzo1x segment. */
	u8 wrk[LZO1X_1_MEM_COMPRESS], seg[1024], img[1100], out[sizeof(sample)];
	lzo_uint slen = sizeof(seg);
	u32 total;

	CHECK(lzo_init() == LZO_E_OK);
	CHECK(lzo1x_1_compress((const u8 *)sample, sizeof(sample), seg, &slen, wrk) == LZO_E_OK);
	total = 8 + slen;
	img[0] = total; img[1] = total >> 8; img[2] = total >> 16; img[3] = total >> 24;
	img[4] = slen; img[5] = slen >> 8; img[6] = slen >> 16; img[7] = slen >> 24;
	memcpy(img + 8, seg, slen);
	CHECK(btrfs_decompress(2, img, total, out, sizeof(sample), 4096) == (long)sizeof(sample));
	CHECK(!memcmp(out, sample, sizeof(sample)));
	/* A total length beyond the buffer is corrupt. */
	img[0] = 0xff; img[1] = 0xff;
	CHECK(btrfs_decompress(2, img, total, out, sizeof(sample), 4096) < 0);
}

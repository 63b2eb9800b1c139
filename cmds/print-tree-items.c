// SPDX-License-Identifier: GPL-2.0
/* The tree printer's text form of each item type (dump-tree); blocks and names are in print-tree.c. */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>
#include "cmds/print-tree-internal.h"
#include "common/messages.h"
#include "common/utils.h"
#include "kernel-shared/hash.h"
#include "crypto/csum.h"

/* ------------------------------------------------------------------ */
/* Item bodies.  p is the offset of the item data inside the block.     */

static void print_inode_item(const struct blk *c, size_t p)
{
	char flags[256];
	u64 f = R64(c, p + 64);

	pt_inode_flags_str(f, flags);
	pt_out_str("\t\tgeneration ");
	pt_out_u64(R64(c, p));
	pt_out_str(" transid ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" size ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" nbytes ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str("\n\t\tblock group ");
	pt_out_u64(R64(c, p + 32));
	pt_out_printf(" mode %o links %u uid %u gid %u rdev ", R32(c, p + 52),
		      R32(c, p + 40), R32(c, p + 44), R32(c, p + 48));
	pt_out_u64(R64(c, p + 56));
	pt_out_str("\n\t\tsequence ");
	pt_out_u64(R64(c, p + 72));
	pt_out_printf(" flags 0x%llx(%s)\n", (unsigned long long)f, flags);
	pt_print_timespec_at(c, p + 112, "\t\tatime ");
	pt_print_timespec_at(c, p + 124, "\t\tctime ");
	pt_print_timespec_at(c, p + 136, "\t\tmtime ");
	pt_print_timespec_at(c, p + 148, "\t\totime ");
}

/* The " name: ..." tail of an inode ref or extref line, cut at BTRFS_NAME_LEN. */
static void print_ref_name(const struct blk *c, size_t off, u32 name_len)
{
	if (c->o->hide_names) {
		pt_out_str(" name: HIDDEN\n");
		return;
	}
	pt_out_str(" name: ");
	pt_out_escaped(c, off, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
	pt_out_chr('\n');
}

static void print_inode_ref(const struct blk *c, size_t p, u32 size)
{
	u32 cur = 0;

	while (cur < size) {
		u64 index = R64(c, p + cur);
		u32 name_len = R16(c, p + cur + 8);

		pt_out_str("\t\tindex ");
		pt_out_u64(index);
		pt_out_str(" namelen ");
		pt_out_u64(name_len);
		print_ref_name(c, p + cur + 10, name_len);
		cur += 10 + name_len;
	}
}

static void print_inode_extref(const struct blk *c, size_t p, u32 size)
{
	u32 cur = 0;

	while (cur < size) {
		u64 parent = R64(c, p + cur);
		u64 index = R64(c, p + cur + 8);
		u32 name_len = R16(c, p + cur + 16);

		pt_out_str("\t\tindex ");
		pt_out_u64(index);
		pt_out_str(" parent ");
		pt_out_u64(parent);
		pt_out_str(" namelen ");
		pt_out_u64(name_len);
		print_ref_name(c, p + cur + 18, name_len);
		cur += 18 + name_len;
	}
}

static void print_dir_item(const struct blk *c, size_t p, u32 size)
{
	u32 cur = 0;
	char tbuf[24];

	while (cur < size) {
		size_t di = p + cur;
		u32 name_len = R16(c, di + 27);
		u32 data_len = R16(c, di + 25);

		pt_out_str("\t\tlocation ");
		pt_print_key_at(c, di);
		pt_out_str(" type ");
		pt_out_str(pt_dir_type_str(R8(c, di + 29), tbuf));
		pt_out_chr('\n');
		if ((u64)cur + name_len + data_len > size) {
			/* btrfs-progs 6.14 stops here too (with an error on stderr) */
			warning("invalid dir item length, cur=%u name_len=%u data_len=%u size=%u",
				cur, name_len, data_len, size);
			break;
		}
		pt_out_str("\t\ttransid ");
		pt_out_u64(R64(c, di + 17));
		pt_out_str(" data_len ");
		pt_out_u64(data_len);
		pt_out_str(" name_len ");
		pt_out_u64(name_len);
		pt_out_chr('\n');
		if (c->o->hide_names) {
			pt_out_str("\t\tname: HIDDEN\n");
		} else {
			pt_out_str("\t\tname: ");
			pt_out_escaped(c, di + 30, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
			pt_out_chr('\n');
		}
		if (data_len) {
			if (c->o->hide_names) {
				pt_out_str("\t\tdata HIDDEN\n");
			} else {
				pt_out_str("\t\tdata ");
				pt_out_escaped(c, di + 30 + name_len,
					 data_len < BTRFS_NAME_LEN ? data_len : BTRFS_NAME_LEN);
				pt_out_chr('\n');
			}
		}
		cur += 30 + name_len + data_len;
	}
}

static void print_root_item(const struct blk *c, size_t p, u32 size)
{
	/* progs copies min(size, struct) bytes into a zeroed struct ... */
	u8 ri[sizeof(struct btrfs_root_item)];
	struct blk r = { ri, sizeof(ri), c->o };
	u64 flags, gen, gen2;

	memset(ri, 0, sizeof(ri));
	pt_rd_bytes(c, p, ri, size < sizeof(ri) ? size : sizeof(ri));
	flags = R64(&r, 208);
	gen = R64(&r, 160);
	gen2 = R64(&r, 239);

	pt_out_str("\t\tgeneration ");
	pt_out_u64(gen);
	pt_out_str(" root_dirid ");
	pt_out_u64(R64(&r, 168));
	pt_out_str(" bytenr ");
	pt_out_u64(R64(&r, 176));
	pt_out_str(" byte_limit ");
	pt_out_u64(R64(&r, 184));
	pt_out_str(" bytes_used ");
	pt_out_u64(R64(&r, 192));
	pt_out_str("\n\t\tlast_snapshot ");
	pt_out_u64(R64(&r, 200));
	pt_out_printf(" flags 0x%llx(%s) refs %u\n", (unsigned long long)flags,
		      (flags & BTRFS_ROOT_SUBVOL_RDONLY) ? "RDONLY" : "none",
		      R32(&r, 216));
	pt_out_str("\t\tdrop_progress ");
	pt_print_key_at(&r, 220);
	pt_out_str(" drop_level ");
	pt_out_u64(R8(&r, 237));
	pt_out_str("\n\t\tlevel ");
	pt_out_u64(R8(&r, 238));
	pt_out_str(" generation_v2 ");
	pt_out_u64(gen2);
	pt_out_chr('\n');
	if (gen != gen2)
		return;
	pt_out_str("\t\tuuid ");
	pt_out_uuid(ri + 247);
	pt_out_str("\n\t\tparent_uuid ");
	pt_out_uuid(ri + 263);
	pt_out_str("\n\t\treceived_uuid ");
	pt_out_uuid(ri + 279);
	pt_out_str("\n\t\tctransid ");
	pt_out_u64(R64(&r, 295));
	pt_out_str(" otransid ");
	pt_out_u64(R64(&r, 303));
	pt_out_str(" stransid ");
	pt_out_u64(R64(&r, 311));
	pt_out_str(" rtransid ");
	pt_out_u64(R64(&r, 319));
	pt_out_chr('\n');
	/* ... but reads the times from the leaf itself. */
	pt_print_timespec_at(c, p + 327, "\t\tctime ");
	pt_print_timespec_at(c, p + 339, "\t\totime ");
	pt_print_timespec_at(c, p + 351, "\t\tstime ");
	pt_print_timespec_at(c, p + 363, "\t\trtime ");
}

static void print_root_ref(const struct blk *c, size_t p, const char *tag)
{
	u32 name_len = R16(c, p + 16);

	pt_out_printf("\t\troot %s key dirid ", tag);
	pt_out_u64(R64(c, p));
	pt_out_str(" sequence ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" name ");
	pt_out_text_or_escaped(c, p + 18, name_len < BTRFS_NAME_LEN ? name_len : BTRFS_NAME_LEN);
	pt_out_chr('\n');
}

static void print_file_extent(const struct blk *c, size_t p, u32 size)
{
	u8 type = R8(c, p + 20);
	u8 comp = R8(c, p + 16);
	u8 enc = R8(c, p + 17);
	char cbuf[24];
	const char *cs = pt_compress_str(comp, cbuf);

	pt_out_str("\t\tgeneration ");
	pt_out_u64(R64(c, p));
	pt_out_printf(" type %hhu (%s)\n", type, pt_file_extent_type_str(type));
	if (type == BTRFS_FILE_EXTENT_INLINE) {
		pt_out_str("\t\tinline extent data size ");
		pt_out_u64((u32)(size - BTRFS_FILE_EXTENT_INLINE_DATA_START));
		pt_out_str(" ram_bytes ");
		pt_out_u64(R64(c, p + 8));
		pt_out_printf(" compression %hhu (%s) encryption %hhu\n", comp, cs, enc);
		return;
	}
	if (type == BTRFS_FILE_EXTENT_PREALLOC) {
		pt_out_str("\t\tprealloc data disk byte ");
		pt_out_u64(R64(c, p + 21));
		pt_out_str(" nr ");
		pt_out_u64(R64(c, p + 29));
		pt_out_str("\n\t\tprealloc data offset ");
		pt_out_u64(R64(c, p + 37));
		pt_out_str(" nr ");
		pt_out_u64(R64(c, p + 45));
		pt_out_chr('\n');
		return;
	}
	pt_out_str("\t\textent data disk byte ");
	pt_out_u64(R64(c, p + 21));
	pt_out_str(" nr ");
	pt_out_u64(R64(c, p + 29));
	pt_out_str("\n\t\textent data offset ");
	pt_out_u64(R64(c, p + 37));
	pt_out_str(" nr ");
	pt_out_u64(R64(c, p + 45));
	pt_out_str(" ram ");
	pt_out_u64(R64(c, p + 8));
	pt_out_printf("\n\t\textent compression %hhu (%s)\n", comp, cs);
	pt_out_printf("\t\textent encryption %hhu\n", enc);
}

static void print_extent_item(const struct blk *c, size_t p, u32 size,
			      const struct btrfs_key *key, bool metadata)
{
	char flags_str[48];
	u64 flags;
	size_t ptr, end;

	if (size < sizeof(struct btrfs_extent_item))
		return;
	flags = R64(c, p + 16);
	pt_extent_flags_str(flags, flags_str);
	pt_out_str("\t\trefs ");
	pt_out_u64(R64(c, p));
	pt_out_str(" gen ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" flags ");
	pt_out_str(flags_str);
	pt_out_chr('\n');

	ptr = p + sizeof(struct btrfs_extent_item);
	if ((flags & BTRFS_EXTENT_FLAG_TREE_BLOCK) && !metadata) {
		pt_out_str("\t\ttree block ");
		pt_print_key_at(c, ptr);
		pt_out_printf(" level %d\n", R8(c, ptr + 17));
		ptr += sizeof(struct btrfs_tree_block_info);
	} else if (metadata) {
		pt_out_printf("\t\ttree block skinny level %d\n", (int)key->offset);
	}

	end = p + size;
	while (ptr < end) {
		u8 type = R8(c, ptr);
		u64 offset = R64(c, ptr + 1);
		u64 seq = offset;

		/*
		 * btrfs-progs 6.14 puts "(type sequence) " before every inline
		 * ref; its owner ref line has one tab and reads "textent" (sic).
		 */
		if (type == BTRFS_EXTENT_DATA_REF_KEY)
			seq = btrfs_extent_data_ref_hash(offset, R64(c, ptr + 9), R64(c, ptr + 17));
		if (backref_inline_size(type))
			pt_out_printf("%s(%u 0x%llx) ", type == BTRFS_EXTENT_OWNER_REF_KEY ?
				      "\t" : "\t\t", type, (unsigned long long)seq);
		switch (type) {
		case BTRFS_TREE_BLOCK_REF_KEY:
			pt_out_str("tree block backref root ");
			pt_print_objectid(offset, 0);
			pt_out_chr('\n');
			break;
		case BTRFS_SHARED_BLOCK_REF_KEY:
			pt_out_str("shared block backref parent ");
			pt_out_u64(offset);
			pt_out_chr('\n');
			break;
		case BTRFS_EXTENT_DATA_REF_KEY:
			pt_out_str("extent data backref root ");
			pt_print_objectid(offset, 0);
			pt_out_str(" objectid ");
			pt_out_u64(R64(c, ptr + 9));
			pt_out_str(" offset ");
			pt_out_u64(R64(c, ptr + 17));
			pt_out_str(" count ");
			pt_out_u64(R32(c, ptr + 25));
			pt_out_chr('\n');
			break;
		case BTRFS_SHARED_DATA_REF_KEY:
			pt_out_str("shared data backref parent ");
			pt_out_u64(offset);
			pt_out_str(" count ");
			pt_out_u64(R32(c, ptr + 9));
			pt_out_chr('\n');
			break;
		case BTRFS_EXTENT_OWNER_REF_KEY:
			pt_out_str("textent owner root ");
			pt_out_u64(offset);
			pt_out_chr('\n');
			break;
		default:
			return;
		}
		ptr += backref_inline_size(type);
	}
}

static void print_extent_csum(const struct blk *c, size_t p, u32 size, u64 start)
{
	const struct print_opts *o = c->o;
	u32 csum_size = o->csum_size ? o->csum_size : 4;
	u32 len = (size / csum_size) * o->sectorsize;
	int one_line, curline;
	size_t cp = p;

	pt_out_str("\t\trange start ");
	pt_out_u64(start);
	pt_out_str(" end ");
	pt_out_u64(start + len);
	pt_out_str(" length ");
	pt_out_u64(len);
	pt_out_chr('\n');
	if (!o->csum_items)
		return;
	one_line = (int)(BTRFS_CSUM_SIZE / csum_size / 2);
	if (one_line < 1)
		one_line = 1;
	curline = one_line;
	while (len > 0) {
		u8 cs[BTRFS_CSUM_SIZE];

		if (curline == one_line) {
			pt_out_str("\t\t");
		} else if (curline == 0) {
			curline = one_line;
			pt_out_str("\n\t\t");
		} else {
			pt_out_chr(' ');
		}
		pt_out_chr('[');
		pt_out_u64(start);
		pt_out_str("] 0x");
		pt_rd_bytes(c, cp, cs, csum_size);
		pt_out_hex(cs, csum_size);
		cp += csum_size;
		start += o->sectorsize;
		len -= o->sectorsize;
		curline--;
	}
	pt_out_chr('\n');
}

static void print_chunk_body(const struct blk *c, size_t p)
{
	u16 num_stripes = R16(c, p + 44);
	char flags[FLAG_STR_LEN];
	u32 i;

	if (num_stripes < 1) {
		pt_out_printf("invalid num_stripes: %u\n", num_stripes);
		return;
	}
	if (p + 48 + (size_t)num_stripes * 32 > c->len) {
		pt_out_str("\t\tchunk item invalid\n");
		return;
	}
	pt_bg_flags_str(R64(c, p + 24), flags);
	pt_out_str("\t\tlength ");
	pt_out_u64(R64(c, p));
	pt_out_str(" owner ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" stripe_len ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" type ");
	pt_out_str(flags);
	pt_out_printf("\n\t\tio_align %u io_width %u sector_size %u\n",
		      R32(c, p + 32), R32(c, p + 36), R32(c, p + 40));
	pt_out_printf("\t\tnum_stripes %hu sub_stripes %hu\n", num_stripes,
		      R16(c, p + 46));
	for (i = 0; i < num_stripes; i++) {
		size_t s = p + 48 + (size_t)i * 32;

		pt_out_printf("\t\t\tstripe %u devid ", i);
		pt_out_u64(R64(c, s));
		pt_out_str(" offset ");
		pt_out_u64(R64(c, s + 8));
		pt_out_str("\n\t\t\tdev_uuid ");
		pt_out_uuid_at(c, s + 16);
		pt_out_chr('\n');
	}
}

void pt_print_chunk(const u8 *base, u32 limit, u32 off)
{
	struct print_opts o = { 0 };
	struct blk c = { base, limit, &o };

	print_chunk_body(&c, off);
}

static void print_dev_item(const struct blk *c, size_t p)
{
	pt_out_str("\t\tdevid ");
	pt_out_u64(R64(c, p));
	pt_out_str(" total_bytes ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" bytes_used ");
	pt_out_u64(R64(c, p + 16));
	pt_out_printf("\n\t\tio_align %u io_width %u sector_size %u type ",
		      R32(c, p + 24), R32(c, p + 28), R32(c, p + 32));
	pt_out_u64(R64(c, p + 36));
	pt_out_str("\n\t\tgeneration ");
	pt_out_u64(R64(c, p + 44));
	pt_out_str(" start_offset ");
	pt_out_u64(R64(c, p + 52));
	pt_out_printf(" dev_group %u\n\t\tseek_speed %hhu bandwidth %hhu\n\t\tuuid ",
		      R32(c, p + 60), R8(c, p + 64), R8(c, p + 65));
	pt_out_uuid_at(c, p + 66);
	pt_out_str("\n\t\tfsid ");
	pt_out_uuid_at(c, p + 82);
	pt_out_chr('\n');
}

static void print_dev_extent(const struct blk *c, size_t p)
{
	pt_out_str("\t\tdev extent chunk_tree ");
	pt_out_u64(R64(c, p));
	pt_out_str("\n\t\tchunk_objectid ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" chunk_offset ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" length ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str("\n\t\tchunk_tree_uuid ");
	pt_out_uuid_at(c, p + 32);
	pt_out_chr('\n');
}

static void print_qgroup_status(const struct blk *c, size_t p)
{
	u64 flags = R64(c, p + 16);

	pt_out_str("\t\tversion ");
	pt_out_u64(R64(c, p));
	pt_out_str(" generation ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" flags ");
	pt_out_str((flags & QGROUP_STATUS_FLAG_ON) ? "ON" : "OFF");
	if (flags & QGROUP_STATUS_FLAG_SIMPLE_MODE)
		pt_out_str("|SIMPLE_MODE");
	if (flags & QGROUP_STATUS_FLAG_RESCAN)
		pt_out_str("|SCANNING");
	if (flags & QGROUP_STATUS_FLAG_INCONSISTENT)
		pt_out_str("|INCONSISTENT");
	if (flags & ~QGROUP_STATUS_FLAGS_KNOWN)
		pt_out_printf("|UNKNOWN(0x%llx)",
			      (unsigned long long)(flags & ~QGROUP_STATUS_FLAGS_KNOWN));
	pt_out_str(" scan ");
	pt_out_u64(R64(c, p + 24));
	if (c->o->simple_quota) {
		pt_out_str(" enable_gen ");
		pt_out_u64(R64(c, p + 32));
	}
	pt_out_chr('\n');
}

static void print_qgroup_info(const struct blk *c, size_t p)
{
	pt_out_str("\t\tgeneration ");
	pt_out_u64(R64(c, p));
	pt_out_str("\n\t\treferenced ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" referenced_compressed ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str("\n\t\texclusive ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str(" exclusive_compressed ");
	pt_out_u64(R64(c, p + 32));
	pt_out_chr('\n');
}

static void print_qgroup_limit(const struct blk *c, size_t p)
{
	pt_out_printf("\t\tflags %llx\n\t\tmax_referenced %lld max_exclusive %lld\n"
		      "\t\trsv_referenced %lld rsv_exclusive %lld\n",
		      (unsigned long long)R64(c, p), (long long)R64(c, p + 8),
		      (long long)R64(c, p + 16), (long long)R64(c, p + 24),
		      (long long)R64(c, p + 32));
}

static void print_dev_stats(const struct blk *c, size_t p, u32 size)
{
	u32 known = DEV_STAT_VALUES_MAX * 8;
	u32 i;

	pt_out_str("\t\tdevice stats\n\t\twrite_errs ");
	pt_out_u64(R64(c, p));
	pt_out_str(" read_errs ");
	pt_out_u64(R64(c, p + 8));
	pt_out_str(" flush_errs ");
	pt_out_u64(R64(c, p + 16));
	pt_out_str(" corruption_errs ");
	pt_out_u64(R64(c, p + 24));
	pt_out_str(" generation ");
	pt_out_u64(R64(c, p + 32));
	pt_out_chr('\n');
	if (known < size) {
		/* sic: no newline after the byte count */
		pt_out_printf("\t\tunknown stats item bytes %u", size - known);
		for (i = DEV_STAT_VALUES_MAX; (u64)i * 8 < size; i++) {
			pt_out_printf("\t\tunknown item %u offset %u value ", i, i * 8);
			pt_out_u64(R64(c, p + (size_t)i * 8));
			pt_out_chr('\n');
		}
	}
}

static void print_balance_args(const struct blk *c, size_t a)
{
	pt_out_str("\t\tprofiles ");
	pt_out_u64(R64(c, a));
	pt_out_str(" devid ");
	pt_out_u64(R64(c, a + 16));
	pt_out_str(" target ");
	pt_out_u64(R64(c, a + 56));
	pt_out_str(" flags ");
	pt_out_u64(R64(c, a + 64));
	pt_out_printf("\n\t\tusage_min %u usage_max %u pstart ", R32(c, a + 8),
		      R32(c, a + 12));
	pt_out_u64(R64(c, a + 24));
	pt_out_str(" pend ");
	pt_out_u64(R64(c, a + 32));
	pt_out_str("\n\t\tvstart ");
	pt_out_u64(R64(c, a + 40));
	pt_out_str(" vend ");
	pt_out_u64(R64(c, a + 48));
	pt_out_printf(" limit_min %u limit_max %u\n", R32(c, a + 72), R32(c, a + 76));
	pt_out_printf("\t\tstripes_min %u stripes_max %u\n", R32(c, a + 80),
		      R32(c, a + 84));
}

static void print_balance_item(const struct blk *c, size_t p)
{
	const size_t args = sizeof(struct btrfs_balance_args);

	pt_out_str("\t\tbalance status flags ");
	pt_out_u64(R64(c, p));
	pt_out_str("\n\t\tDATA\n");
	print_balance_args(c, p + 8);
	pt_out_str("\t\tMETADATA\n");
	print_balance_args(c, p + 8 + args);
	pt_out_str("\t\tSYSTEM\n");
	print_balance_args(c, p + 8 + 2 * args);
}

static void print_uuid_item(const struct blk *c, size_t p, u32 size)
{
	if (size & 7) {
		pt_out_printf("btrfs: uuid item with illegal size %lu!\n",
			      (unsigned long)size);
		return;
	}
	while (size) {
		pt_out_str("\t\tsubvol_id ");
		pt_out_u64(R64(c, p));
		pt_out_chr('\n');
		size -= 8;
		p += 8;
	}
}

static void print_free_space_header(const struct blk *c, size_t p)
{
	pt_out_str("\t\tlocation ");
	pt_print_key_at(c, p);
	pt_out_str("\n\t\tcache generation ");
	pt_out_u64(R64(c, p + 17));
	pt_out_str(" entries ");
	pt_out_u64(R64(c, p + 25));
	pt_out_str(" bitmaps ");
	pt_out_u64(R64(c, p + 33));
	pt_out_chr('\n');
}

static void print_fscrypt_ctx(const struct blk *c, size_t p, u32 size)
{
	size_t n = size;

	if (p > c->len)
		n = 0;
	else if (n > c->len - p)
		n = c->len - p;
	pt_out_str("\t\tvalue: ");
	pt_out_hex(c->b + p, n);
	pt_out_chr('\n');
}

/* Block group, free space, chunk, device, qgroup, uuid and other items. */
static void print_item_body_other(const struct blk *c, const struct btrfs_key *key,
				  size_t p, u32 size)
{
	switch (key->type) {
	case BTRFS_BLOCK_GROUP_ITEM_KEY: {
		char flags[FLAG_STR_LEN];

		pt_bg_flags_str(R64(c, p + 16), flags);
		pt_out_str("\t\tblock group used ");
		pt_out_u64(R64(c, p));
		pt_out_str(" chunk_objectid ");
		pt_out_u64(R64(c, p + 8));
		pt_out_str(" flags ");
		pt_out_str(flags);
		pt_out_chr('\n');
		break;
	}
	case BTRFS_FREE_SPACE_INFO_KEY:
		pt_out_str("\t\tfree space info extent count ");
		pt_out_u64(R32(c, p));
		pt_out_str(" flags ");
		pt_out_u64(R32(c, p + 4));
		pt_out_chr('\n');
		break;
	case BTRFS_FREE_SPACE_EXTENT_KEY:
		pt_out_str("\t\tfree space extent\n");
		break;
	case BTRFS_FREE_SPACE_BITMAP_KEY:
		pt_out_str("\t\tfree space bitmap\n");
		break;
	case BTRFS_CHUNK_ITEM_KEY:
		print_chunk_body(c, p);
		break;
	case BTRFS_DEV_ITEM_KEY:
		print_dev_item(c, p);
		break;
	case BTRFS_DEV_EXTENT_KEY:
		print_dev_extent(c, p);
		break;
	case BTRFS_QGROUP_STATUS_KEY:
		print_qgroup_status(c, p);
		break;
	case BTRFS_QGROUP_RELATION_KEY:
		break;
	case BTRFS_QGROUP_INFO_KEY:
		print_qgroup_info(c, p);
		break;
	case BTRFS_QGROUP_LIMIT_KEY:
		print_qgroup_limit(c, p);
		break;
	case BTRFS_UUID_KEY_SUBVOL:
	case BTRFS_UUID_KEY_RECEIVED_SUBVOL:
		print_uuid_item(c, p, size);
		break;
	case BTRFS_STRING_ITEM_KEY:
		pt_out_str("\t\titem data ");
		pt_out_text_or_escaped(c, p, size);
		pt_out_chr('\n');
		break;
	case BTRFS_PERSISTENT_ITEM_KEY:
		pt_out_str("\t\tpersistent item objectid ");
		pt_print_objectid(key->objectid, BTRFS_PERSISTENT_ITEM_KEY);
		pt_out_str(" offset ");
		pt_out_u64(key->offset);
		pt_out_chr('\n');
		if (key->objectid == BTRFS_DEV_STATS_OBJECTID)
			print_dev_stats(c, p, size);
		else
			pt_out_printf("\t\tunknown persistent item objectid %llu\n",
				      (unsigned long long)key->objectid);
		break;
	case BTRFS_TEMPORARY_ITEM_KEY:
		pt_out_str("\t\ttemporary item objectid ");
		pt_print_objectid(key->objectid, BTRFS_TEMPORARY_ITEM_KEY);
		pt_out_str(" offset ");
		pt_out_u64(key->offset);
		pt_out_chr('\n');
		if (key->objectid == BTRFS_BALANCE_OBJECTID)
			print_balance_item(c, p);
		else
			pt_out_printf("\t\tunknown temporary item objectid %llu\n",
				      (unsigned long long)key->objectid);
		break;
	}
}

/* Extent tree, csum and file extent items. */
static void print_item_body_extent(const struct blk *c, const struct btrfs_key *key,
				  size_t p, u32 size)
{
	switch (key->type) {
	case BTRFS_EXTENT_ITEM_KEY:
		print_extent_item(c, p, size, key, false);
		break;
	case BTRFS_METADATA_ITEM_KEY:
		print_extent_item(c, p, size, key, true);
		break;
	case BTRFS_TREE_BLOCK_REF_KEY:
		pt_out_str("\t\ttree block backref\n");
		break;
	case BTRFS_SHARED_BLOCK_REF_KEY:
		pt_out_str("\t\tshared block backref\n");
		break;
	case BTRFS_EXTENT_DATA_REF_KEY:
		pt_out_str("\t\textent data backref root ");
		pt_print_objectid(R64(c, p), 0);
		pt_out_str(" objectid ");
		pt_out_u64(R64(c, p + 8));
		pt_out_str(" offset ");
		pt_out_u64(R64(c, p + 16));
		pt_out_str(" count ");
		pt_out_u64(R32(c, p + 24));
		pt_out_chr('\n');
		break;
	case BTRFS_SHARED_DATA_REF_KEY:
		pt_out_str("\t\tshared data backref count ");
		pt_out_u64(R32(c, p));
		pt_out_chr('\n');
		break;
	case KEY_EXTENT_REF_V0:
		pt_out_str("\t\textent ref v0 (deprecated)\n");
		break;
	case KEY_CSUM_ITEM:
		pt_out_str("\t\tcsum item\n");
		break;
	case BTRFS_EXTENT_CSUM_KEY:
		print_extent_csum(c, p, size, key->offset);
		break;
	case BTRFS_EXTENT_DATA_KEY:
		print_file_extent(c, p, size);
		break;
	default:
		print_item_body_other(c, key, p, size);
		break;
	}
}

void pt_print_item_body(const struct blk *c, const struct btrfs_key *key,
			    size_t p, u32 size)
{
	if (key->type == 0 && key->objectid == BTRFS_FREE_SPACE_OBJECTID)
		print_free_space_header(c, p);

	switch (key->type) {
	case BTRFS_INODE_ITEM_KEY:
		print_inode_item(c, p);
		break;
	case BTRFS_INODE_REF_KEY:
		print_inode_ref(c, p, size);
		break;
	case BTRFS_INODE_EXTREF_KEY:
		print_inode_extref(c, p, size);
		break;
	case BTRFS_DIR_ITEM_KEY:
	case BTRFS_DIR_INDEX_KEY:
	case BTRFS_XATTR_ITEM_KEY:
		print_dir_item(c, p, size);
		break;
	case BTRFS_DIR_LOG_INDEX_KEY:
	case BTRFS_DIR_LOG_ITEM_KEY:
		pt_out_str("\t\tdir log end ");
		pt_out_u64(R64(c, p));
		pt_out_chr('\n');
		break;
	case BTRFS_ORPHAN_ITEM_KEY:
		pt_out_str("\t\torphan item\n");
		break;
	case BTRFS_FSCRYPT_INODE_CTX_KEY:
	case BTRFS_FSCRYPT_CTX_KEY:
		print_fscrypt_ctx(c, p, size);
		break;
	case BTRFS_ROOT_ITEM_KEY:
		print_root_item(c, p, size);
		break;
	case BTRFS_ROOT_REF_KEY:
		print_root_ref(c, p, "ref");
		break;
	case BTRFS_ROOT_BACKREF_KEY:
		print_root_ref(c, p, "backref");
		break;
	default:
		print_item_body_extent(c, key, p, size);
		break;
	}
}


// SPDX-License-Identifier: GPL-2.0
/*
 * inspect dump-super: the text of btrfs-progs 6.14 `inspect-internal
 * dump-super`, or one JSON document with `--format json`.
 *
 * The superblock is read raw (no engine verification) so that a damaged copy
 * can still be shown, as btrfs-progs does.  A copy with a bad magic or a
 * checksum mismatch additionally gets one ERROR line on stderr and makes the
 * command exit 3; stdout stays what btrfs-progs prints.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uuid/uuid.h>
#include "cmds/commands.h"
#include "cmds/print-tree.h"
#include "common/messages.h"
#include "common/output.h"
#include "crypto/csum.h"
#include "kernel-shared/ondisk.h"

const char *const cmd_inspect_dump_super_usage[] = {
	"btrfs-extcrypt inspect dump-super [options] <image>",
	"Dump a superblock of an image in textual form",
	"",
	"The text is that of btrfs-progs' inspect-internal dump-super.",
	"",
	OPTLINE("-f|--full", "print full superblock information, backup roots etc."),
	OPTLINE("-a|--all", "print information about all superblocks"),
	OPTLINE("-s|--super <N>", "specify which copy to print out (values: 0, 1, 2)"),
	OPTLINE("-F|--force", "attempt to dump superblocks with bad magic"),
	OPTLINE("--bytenr <offset>", "specify alternate superblock offset"),
	NULL
};


struct flag_name {
	u64 bit;
	const char *name;
};

/*
 * Names, order and "supported" masks of btrfs-progs 6.14 (non-experimental
 * build), as its dump-super prints them.  It has no name for the compat_ro
 * VERITY bit nor for incompat bit 15 (ENCRYPT, Documentation/format.rst 12): both print as
 * unknown flags.
 */
static const struct flag_name super_flag_names[] = {
	{ BTRFS_HEADER_FLAG_WRITTEN, "WRITTEN" },
	{ BTRFS_HEADER_FLAG_RELOC, "RELOC" },
	{ BTRFS_SUPER_FLAG_CHANGING_FSID, "CHANGING_FSID" },
	{ BTRFS_SUPER_FLAG_CHANGING_FSID_V2, "CHANGING_FSID_V2" },
	{ BTRFS_SUPER_FLAG_SEEDING, "SEEDING" },
	{ BTRFS_SUPER_FLAG_METADUMP, "METADUMP" },
	{ BTRFS_SUPER_FLAG_METADUMP_V2, "METADUMP_V2" },
	{ BTRFS_SUPER_FLAG_CHANGING_BG_TREE, "CHANGING_BG_TREE" },
	{ BTRFS_SUPER_FLAG_CHANGING_DATA_CSUM, "CHANGING_DATA_CSUM" },
	{ BTRFS_SUPER_FLAG_CHANGING_META_CSUM, "CHANGING_META_CSUM" },
	{ 0, NULL }
};
#define SUPER_FLAGS_KNOWN                                                           \
	(BTRFS_HEADER_FLAG_WRITTEN | BTRFS_HEADER_FLAG_RELOC | BTRFS_SUPER_FLAG_CHANGING_FSID | \
	 BTRFS_SUPER_FLAG_CHANGING_FSID_V2 | BTRFS_SUPER_FLAG_SEEDING | BTRFS_SUPER_FLAG_METADUMP |     \
	 BTRFS_SUPER_FLAG_METADUMP_V2 | BTRFS_SUPER_FLAG_CHANGING_BG_TREE |                      \
	 BTRFS_SUPER_FLAG_CHANGING_DATA_CSUM | BTRFS_SUPER_FLAG_CHANGING_META_CSUM)

static const struct flag_name compat_ro_names[] = {
	{ BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE, "FREE_SPACE_TREE" },
	{ BTRFS_FEATURE_COMPAT_RO_FREE_SPACE_TREE_VALID, "FREE_SPACE_TREE_VALID" },
	{ BTRFS_FEATURE_COMPAT_RO_BLOCK_GROUP_TREE, "BLOCK_GROUP_TREE" },
	{ 0, NULL }
};
#define COMPAT_RO_KNOWN 0xbULL

static const struct flag_name incompat_names[] = {
	{ BTRFS_FEATURE_INCOMPAT_MIXED_BACKREF, "MIXED_BACKREF" },
	{ BTRFS_FEATURE_INCOMPAT_DEFAULT_SUBVOL, "DEFAULT_SUBVOL" },
	{ BTRFS_FEATURE_INCOMPAT_MIXED_GROUPS, "MIXED_GROUPS" },
	{ BTRFS_FEATURE_INCOMPAT_COMPRESS_LZO, "COMPRESS_LZO" },
	{ BTRFS_FEATURE_INCOMPAT_COMPRESS_ZSTD, "COMPRESS_ZSTD" },
	{ BTRFS_FEATURE_INCOMPAT_BIG_METADATA, "BIG_METADATA" },
	{ BTRFS_FEATURE_INCOMPAT_EXTENDED_IREF, "EXTENDED_IREF" },
	{ BTRFS_FEATURE_INCOMPAT_RAID56, "RAID56" },
	{ BTRFS_FEATURE_INCOMPAT_SKINNY_METADATA, "SKINNY_METADATA" },
	{ BTRFS_FEATURE_INCOMPAT_NO_HOLES, "NO_HOLES" },
	{ BTRFS_FEATURE_INCOMPAT_METADATA_UUID, "METADATA_UUID" },
	{ BTRFS_FEATURE_INCOMPAT_RAID1C34, "RAID1C34" },
	{ BTRFS_FEATURE_INCOMPAT_ZONED, "ZONED" },
	{ BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2, "EXTENT_TREE_V2" },
	{ BTRFS_FEATURE_INCOMPAT_RAID_STRIPE_TREE, "RAID_STRIPE_TREE" },
	{ BTRFS_FEATURE_INCOMPAT_SIMPLE_QUOTA, "SIMPLE_QUOTA" },
	{ 0, NULL }
};
#define INCOMPAT_KNOWN 0x17fffULL

/*
 * "\t\t\t( NAME |\n\t\t\t  NAME |\n\t\t\t  unknown flag: 0x.. )": names are
 * listed only when some known bit is set, unknown bits are grouped.
 */
static void print_readable_flags(u64 flags, const struct flag_name *names, u64 known)
{
	bool first = true;
	int i;

	if (!flags)
		return;
	pt_out_str("\t\t\t( ");
	for (i = 0; names[i].name; i++) {
		if (!(flags & known) || !(flags & names[i].bit))
			continue;
		if (!first)
			pt_out_str("|\n\t\t\t  ");
		pt_out_str(names[i].name);
		pt_out_chr(' ');
		first = false;
	}
	flags &= ~known;
	if (flags) {
		if (!first)
			pt_out_str("|\n\t\t\t  ");
		pt_out_printf("unknown flag: 0x%llx ", (unsigned long long)flags);
	}
	pt_out_str(")\n");
}

static void out_uuid(const u8 *u)
{
	char s[37];

	uuid_unparse(u, s);
	pt_out_str(s);
}

static void out_kv_u64(const char *label, u64 v)
{
	pt_out_str(label);
	pt_out_u64(v);
	pt_out_chr('\n');
}

/* The names btrfs-progs 6.14 prints ("xxhash64" where crypto/csum.h says "xxhash"). */
static const char *csum_name_progs(u16 type)
{
	static const char *const names[] = { "crc32c", "xxhash64", "sha256", "blake2b" };

	return type < 4 ? names[type] : NULL;
}

static bool csum_matches(const u8 *raw, u16 type, u32 size)
{
	u8 out[CSUM_MAX_SIZE];

	csum_compute(type, raw + BTRFS_CSUM_SIZE, BTRFS_SUPER_INFO_SIZE - BTRFS_CSUM_SIZE, out);
	return memcmp(out, raw, size) == 0;
}

static void print_sys_chunk_array(const u8 *raw)
{
	const struct btrfs_super_block *sb = (const void *)raw;
	u32 array_size = le32_to_cpu(sb->sys_chunk_array_size);
	u32 base = offsetof(struct btrfs_super_block, sys_chunk_array);
	u32 cur = 0, len = 0;
	int item = 0;

	if (array_size > BTRFS_SYSTEM_CHUNK_ARRAY_SIZE) {
		pt_out_flush();
		error("sys_array_size %u shouldn't exceed %u bytes", array_size,
		      BTRFS_SYSTEM_CHUNK_ARRAY_SIZE);
		return;
	}
	while (cur < array_size) {
		struct btrfs_key key;
		u16 num_stripes;

		len = sizeof(struct btrfs_disk_key);
		if (cur + len > array_size)
			goto short_read;
		btrfs_disk_key_to_cpu(&key, (const void *)(raw + base + cur));
		cur += len;
		pt_out_printf("\titem %d ", item);
		pt_print_key(&key);
		pt_out_chr('\n');
		if (key.type != BTRFS_CHUNK_ITEM_KEY) {
			pt_out_flush();
			error("unexpected item type %u in sys_array at offset %u",
			      (u32)key.type, cur);
			return;
		}
		len = sizeof(struct btrfs_chunk);
		if (cur + len > array_size)
			goto short_read;
		num_stripes = (u16)pt_get_le(raw, BTRFS_SUPER_INFO_SIZE, base + cur + 44, 2);
		if (!num_stripes) {
			pt_out_flush();
			error("invalid number of stripes %u in sys_array at offset %u",
			      num_stripes, cur);
			return;
		}
		len = 48 + 32 * (u32)num_stripes;
		if (cur + len > array_size)
			goto short_read;
		pt_print_chunk(raw, BTRFS_SUPER_INFO_SIZE, base + cur);
		cur += len;
		item++;
	}
	return;
short_read:
	pt_out_flush();
	error("sys_array too short to read %u bytes at offset %u", len, cur);
}

static void print_backup_roots(const struct btrfs_super_block *sb)
{
	bool v2 = le64_to_cpu(sb->incompat_flags) & BTRFS_FEATURE_INCOMPAT_EXTENT_TREE_V2;
	int i;

	for (i = 0; i < BTRFS_NUM_BACKUP_ROOTS; i++) {
		const struct btrfs_root_backup *b = &sb->super_roots[i];

		if (!b->tree_root && !b->tree_root_gen)
			continue;
		pt_out_printf("\tbackup %d:\n", i);
		pt_out_printf("\t\tbackup_tree_root:\t%llu\tgen: %llu\tlevel: %d\n",
			      (unsigned long long)le64_to_cpu(b->tree_root), (unsigned long long)le64_to_cpu(b->tree_root_gen),
			      b->tree_root_level);
		pt_out_printf("\t\tbackup_chunk_root:\t%llu\tgen: %llu\tlevel: %d\n",
			      (unsigned long long)le64_to_cpu(b->chunk_root), (unsigned long long)le64_to_cpu(b->chunk_root_gen),
			      b->chunk_root_level);
		pt_out_printf("\t\t%s:\t%llu\tgen: %llu\tlevel: %d\n",
			      v2 ? "backup_block_group_root" : "backup_extent_root",
			      (unsigned long long)le64_to_cpu(b->extent_root), (unsigned long long)le64_to_cpu(b->extent_root_gen),
			      b->extent_root_level);
		pt_out_printf("\t\tbackup_fs_root:\t\t%llu\tgen: %llu\tlevel: %d\n",
			      (unsigned long long)le64_to_cpu(b->fs_root), (unsigned long long)le64_to_cpu(b->fs_root_gen),
			      b->fs_root_level);
		pt_out_printf("\t\tbackup_dev_root:\t%llu\tgen: %llu\tlevel: %d\n",
			      (unsigned long long)le64_to_cpu(b->dev_root), (unsigned long long)le64_to_cpu(b->dev_root_gen),
			      b->dev_root_level);
		pt_out_printf("\t\tcsum_root:\t%llu\tgen: %llu\tlevel: %d\n",
			      (unsigned long long)le64_to_cpu(b->csum_root), (unsigned long long)le64_to_cpu(b->csum_root_gen),
			      b->csum_root_level);
		out_kv_u64("\t\tbackup_total_bytes:\t", (unsigned long long)le64_to_cpu(b->total_bytes));
		out_kv_u64("\t\tbackup_bytes_used:\t", (unsigned long long)le64_to_cpu(b->bytes_used));
		out_kv_u64("\t\tbackup_num_devices:\t", (unsigned long long)le64_to_cpu(b->num_devices));
		pt_out_chr('\n');
	}
}

static void print_printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; i < max && s[i]; i++)
		pt_out_chr(isprint((unsigned char)s[i]) ? s[i] : '.');
}

/* Returns true if the checksum matches. */
static bool print_super_text(const u8 *raw, bool full)
{
	const struct btrfs_super_block *sb = (const void *)raw;
	u16 csum_type = le16_to_cpu(sb->csum_type);
	const char *csum_name = csum_name_progs(csum_type);
	u32 csum_size = csum_name ? csum_type_size(csum_type) : BTRFS_CSUM_SIZE;
	u64 incompat = le64_to_cpu(sb->incompat_flags);
	bool has_muuid = incompat & BTRFS_FEATURE_INCOMPAT_METADATA_UUID;
	const struct btrfs_dev_item *dev = &sb->dev_item;
	bool match = false;
	char hex[2 * BTRFS_CSUM_SIZE + 1];

	pt_out_printf("csum_type\t\t%hu (%s)\n", csum_type, csum_name ? csum_name : "INVALID");
	out_kv_u64("csum_size\t\t", csum_size);
	hex_encode(sb->csum, csum_size, hex);
	pt_out_str("csum\t\t\t0x");
	pt_out_str(hex);
	if (!csum_name) {
		pt_out_str(" [UNKNOWN CSUM TYPE OR SIZE]\n");
	} else {
		match = csum_matches(raw, csum_type, csum_size);
		pt_out_str(match ? " [match]\n" : " [DON'T MATCH]\n");
	}
	out_kv_u64("bytenr\t\t\t", le64_to_cpu(sb->bytenr));
	pt_out_printf("flags\t\t\t0x%llx\n", (unsigned long long)le64_to_cpu(sb->flags));
	print_readable_flags(le64_to_cpu(sb->flags), super_flag_names, SUPER_FLAGS_KNOWN);
	pt_out_str("magic\t\t\t");
	{
		const char *m = (const char *)&sb->magic;
		int i;

		for (i = 0; i < 8; i++)
			pt_out_chr(isprint((unsigned char)m[i]) ? m[i] : '.');
	}
	pt_out_str(le64_to_cpu(sb->magic) == BTRFS_MAGIC ? " [match]\n" : " [DON'T MATCH]\n");
	pt_out_str("fsid\t\t\t");
	out_uuid(sb->fsid);
	/* 6.14 prints the field as stored: zeroes without METADATA_UUID */
	pt_out_str("\nmetadata_uuid\t\t");
	out_uuid(sb->metadata_uuid);
	pt_out_str("\nlabel\t\t\t");
	print_printable(sb->label, BTRFS_LABEL_SIZE);
	pt_out_chr('\n');
	out_kv_u64("generation\t\t", le64_to_cpu(sb->generation));
	out_kv_u64("root\t\t\t", le64_to_cpu(sb->root));
	out_kv_u64("sys_array_size\t\t", le32_to_cpu(sb->sys_chunk_array_size));
	out_kv_u64("chunk_root_generation\t", le64_to_cpu(sb->chunk_root_generation));
	out_kv_u64("root_level\t\t", sb->root_level);
	out_kv_u64("chunk_root\t\t", le64_to_cpu(sb->chunk_root));
	out_kv_u64("chunk_root_level\t", sb->chunk_root_level);
	out_kv_u64("log_root\t\t", le64_to_cpu(sb->log_root));
	out_kv_u64("log_root_transid (deprecated)\t", le64_to_cpu(sb->__unused_log_root_transid));
	out_kv_u64("log_root_level\t\t", sb->log_root_level);
	out_kv_u64("total_bytes\t\t", le64_to_cpu(sb->total_bytes));
	out_kv_u64("bytes_used\t\t", le64_to_cpu(sb->bytes_used));
	out_kv_u64("sectorsize\t\t", le32_to_cpu(sb->sectorsize));
	out_kv_u64("nodesize\t\t", le32_to_cpu(sb->nodesize));
	out_kv_u64("leafsize (deprecated)\t", le32_to_cpu(sb->__unused_leafsize));
	out_kv_u64("stripesize\t\t", le32_to_cpu(sb->stripesize));
	out_kv_u64("root_dir\t\t", le64_to_cpu(sb->root_dir_objectid));
	out_kv_u64("num_devices\t\t", le64_to_cpu(sb->num_devices));
	pt_out_printf("compat_flags\t\t0x%llx\n", (unsigned long long)le64_to_cpu(sb->compat_flags));
	pt_out_printf("compat_ro_flags\t\t0x%llx\n",
		      (unsigned long long)le64_to_cpu(sb->compat_ro_flags));
	print_readable_flags(le64_to_cpu(sb->compat_ro_flags), compat_ro_names, COMPAT_RO_KNOWN);
	pt_out_printf("incompat_flags\t\t0x%llx\n", (unsigned long long)incompat);
	print_readable_flags(incompat, incompat_names, INCOMPAT_KNOWN);
	out_kv_u64("cache_generation\t", le64_to_cpu(sb->cache_generation));
	out_kv_u64("uuid_tree_generation\t", le64_to_cpu(sb->uuid_tree_generation));
	pt_out_str("dev_item.uuid\t\t");
	out_uuid(dev->uuid);
	pt_out_str("\ndev_item.fsid\t\t");
	out_uuid(dev->fsid);
	pt_out_str(memcmp(dev->fsid, has_muuid ? sb->metadata_uuid : sb->fsid,
			  BTRFS_FSID_SIZE) == 0 ? " [match]\n" : " [DON'T MATCH]\n");
	out_kv_u64("dev_item.type\t\t", le64_to_cpu(dev->type));
	out_kv_u64("dev_item.total_bytes\t", le64_to_cpu(dev->total_bytes));
	out_kv_u64("dev_item.bytes_used\t", le64_to_cpu(dev->bytes_used));
	out_kv_u64("dev_item.io_align\t", le32_to_cpu(dev->io_align));
	out_kv_u64("dev_item.io_width\t", le32_to_cpu(dev->io_width));
	out_kv_u64("dev_item.sector_size\t", le32_to_cpu(dev->sector_size));
	out_kv_u64("dev_item.devid\t\t", le64_to_cpu(dev->devid));
	out_kv_u64("dev_item.dev_group\t", le32_to_cpu(dev->dev_group));
	out_kv_u64("dev_item.seek_speed\t", dev->seek_speed);
	out_kv_u64("dev_item.bandwidth\t", dev->bandwidth);
	out_kv_u64("dev_item.generation\t", le64_to_cpu(dev->generation));
	if (full) {
		pt_out_printf("sys_chunk_array[%d]:\n", BTRFS_SYSTEM_CHUNK_ARRAY_SIZE);
		print_sys_chunk_array(raw);
		pt_out_printf("backup_roots[%d]:\n", BTRFS_NUM_BACKUP_ROOTS);
		print_backup_roots(sb);
	}
	return match;
}

static struct json_object *flags_json(u64 flags, const struct flag_name *names)
{
	struct json_object *arr = json_object_new_array();
	int i;

	for (i = 0; names[i].name; i++)
		if (flags & names[i].bit)
			json_object_array_add(arr, json_object_new_string(names[i].name));
	return arr;
}

#define JADD(o, k, v) json_object_object_add((o), (k), (v))

static struct json_object *dev_item_json(const struct btrfs_dev_item *dev)
{
	struct json_object *d = json_object_new_object();

	JADD(d, "uuid", json_uuid(dev->uuid));
	JADD(d, "fsid", json_uuid(dev->fsid));
	JADD(d, "type", json_u64(le64_to_cpu(dev->type)));
	JADD(d, "total-bytes", json_u64(le64_to_cpu(dev->total_bytes)));
	JADD(d, "bytes-used", json_u64(le64_to_cpu(dev->bytes_used)));
	JADD(d, "io-align", json_u64(le32_to_cpu(dev->io_align)));
	JADD(d, "io-width", json_u64(le32_to_cpu(dev->io_width)));
	JADD(d, "sector-size", json_u64(le32_to_cpu(dev->sector_size)));
	JADD(d, "devid", json_u64(le64_to_cpu(dev->devid)));
	JADD(d, "dev-group", json_u64(le32_to_cpu(dev->dev_group)));
	JADD(d, "seek-speed", json_u64(dev->seek_speed));
	JADD(d, "bandwidth", json_u64(dev->bandwidth));
	JADD(d, "generation", json_u64(le64_to_cpu(dev->generation)));
	return d;
}

static struct json_object *backup_roots_json(const struct btrfs_super_block *sb)
{
	struct json_object *arr = json_object_new_array();
	int i;

	for (i = 0; i < BTRFS_NUM_BACKUP_ROOTS; i++) {
		const struct btrfs_root_backup *b = &sb->super_roots[i];
		struct json_object *bo;

		if (!b->tree_root && !b->tree_root_gen)
			continue;
		bo = json_object_new_object();
		JADD(bo, "slot", json_object_new_int(i));
		JADD(bo, "tree-root", json_u64((unsigned long long)le64_to_cpu(b->tree_root)));
		JADD(bo, "tree-root-gen", json_u64((unsigned long long)le64_to_cpu(b->tree_root_gen)));
		JADD(bo, "tree-root-level", json_u64(b->tree_root_level));
		JADD(bo, "chunk-root", json_u64((unsigned long long)le64_to_cpu(b->chunk_root)));
		JADD(bo, "chunk-root-gen", json_u64((unsigned long long)le64_to_cpu(b->chunk_root_gen)));
		JADD(bo, "chunk-root-level", json_u64(b->chunk_root_level));
		JADD(bo, "extent-root", json_u64((unsigned long long)le64_to_cpu(b->extent_root)));
		JADD(bo, "extent-root-gen", json_u64((unsigned long long)le64_to_cpu(b->extent_root_gen)));
		JADD(bo, "extent-root-level", json_u64(b->extent_root_level));
		JADD(bo, "fs-root", json_u64((unsigned long long)le64_to_cpu(b->fs_root)));
		JADD(bo, "fs-root-gen", json_u64((unsigned long long)le64_to_cpu(b->fs_root_gen)));
		JADD(bo, "fs-root-level", json_u64(b->fs_root_level));
		JADD(bo, "dev-root", json_u64((unsigned long long)le64_to_cpu(b->dev_root)));
		JADD(bo, "dev-root-gen", json_u64((unsigned long long)le64_to_cpu(b->dev_root_gen)));
		JADD(bo, "dev-root-level", json_u64(b->dev_root_level));
		JADD(bo, "csum-root", json_u64((unsigned long long)le64_to_cpu(b->csum_root)));
		JADD(bo, "csum-root-gen", json_u64((unsigned long long)le64_to_cpu(b->csum_root_gen)));
		JADD(bo, "csum-root-level", json_u64(b->csum_root_level));
		JADD(bo, "total-bytes", json_u64((unsigned long long)le64_to_cpu(b->total_bytes)));
		JADD(bo, "bytes-used", json_u64((unsigned long long)le64_to_cpu(b->bytes_used)));
		JADD(bo, "num-devices", json_u64((unsigned long long)le64_to_cpu(b->num_devices)));
		json_object_array_add(arr, bo);
	}
	return arr;
}

static struct json_object *super_json(const u8 *raw, u64 bytenr, const char *path,
				      bool full, bool *match)
{
	const struct btrfs_super_block *sb = (const void *)raw;
	struct json_object *o = json_object_new_object();
	u16 csum_type = le16_to_cpu(sb->csum_type);
	const char *csum_name = csum_name_progs(csum_type);
	u32 csum_size = csum_name ? csum_type_size(csum_type) : BTRFS_CSUM_SIZE;
	char label[BTRFS_LABEL_SIZE + 1];
	int i;

	*match = csum_name && csum_matches(raw, csum_type, csum_size);
	JADD(o, "super-bytenr", json_u64(bytenr));
	JADD(o, "device", json_object_new_string(path));
	JADD(o, "csum-type", json_object_new_int(csum_type));
	JADD(o, "csum-type-name", json_object_new_string(csum_name ? csum_name : "INVALID"));
	JADD(o, "csum-size", json_u64(csum_size));
	JADD(o, "csum", json_hex(sb->csum, csum_size));
	JADD(o, "csum-match", json_object_new_boolean(*match));
	JADD(o, "bytenr", json_u64(le64_to_cpu(sb->bytenr)));
	JADD(o, "flags", json_u64(le64_to_cpu(sb->flags)));
	JADD(o, "flags-names", flags_json(le64_to_cpu(sb->flags), super_flag_names));
	JADD(o, "magic-match", json_object_new_boolean(le64_to_cpu(sb->magic) == BTRFS_MAGIC));
	JADD(o, "fsid", json_uuid(sb->fsid));
	JADD(o, "metadata-uuid", json_uuid(
		(le64_to_cpu(sb->incompat_flags) & BTRFS_FEATURE_INCOMPAT_METADATA_UUID) ?
		sb->metadata_uuid : sb->fsid));
	memcpy(label, sb->label, BTRFS_LABEL_SIZE);
	label[BTRFS_LABEL_SIZE] = 0;
	for (i = 0; label[i]; i++)
		if (!isprint((unsigned char)label[i]))
			label[i] = '.';
	JADD(o, "label", json_object_new_string(label));
	JADD(o, "generation", json_u64(le64_to_cpu(sb->generation)));
	JADD(o, "root", json_u64(le64_to_cpu(sb->root)));
	JADD(o, "sys-array-size", json_u64(le32_to_cpu(sb->sys_chunk_array_size)));
	JADD(o, "chunk-root-generation", json_u64(le64_to_cpu(sb->chunk_root_generation)));
	JADD(o, "root-level", json_u64(sb->root_level));
	JADD(o, "chunk-root", json_u64(le64_to_cpu(sb->chunk_root)));
	JADD(o, "chunk-root-level", json_u64(sb->chunk_root_level));
	JADD(o, "log-root", json_u64(le64_to_cpu(sb->log_root)));
	JADD(o, "log-root-level", json_u64(sb->log_root_level));
	JADD(o, "total-bytes", json_u64(le64_to_cpu(sb->total_bytes)));
	JADD(o, "bytes-used", json_u64(le64_to_cpu(sb->bytes_used)));
	JADD(o, "sectorsize", json_u64(le32_to_cpu(sb->sectorsize)));
	JADD(o, "nodesize", json_u64(le32_to_cpu(sb->nodesize)));
	JADD(o, "stripesize", json_u64(le32_to_cpu(sb->stripesize)));
	JADD(o, "root-dir", json_u64(le64_to_cpu(sb->root_dir_objectid)));
	JADD(o, "num-devices", json_u64(le64_to_cpu(sb->num_devices)));
	JADD(o, "compat-flags", json_u64(le64_to_cpu(sb->compat_flags)));
	JADD(o, "compat-ro-flags", json_u64(le64_to_cpu(sb->compat_ro_flags)));
	JADD(o, "compat-ro-flags-names", flags_json(le64_to_cpu(sb->compat_ro_flags), compat_ro_names));
	JADD(o, "incompat-flags", json_u64(le64_to_cpu(sb->incompat_flags)));
	JADD(o, "incompat-flags-names", flags_json(le64_to_cpu(sb->incompat_flags), incompat_names));
	JADD(o, "cache-generation", json_u64(le64_to_cpu(sb->cache_generation)));
	JADD(o, "uuid-tree-generation", json_u64(le64_to_cpu(sb->uuid_tree_generation)));
	JADD(o, "dev-item", dev_item_json(&sb->dev_item));
	if (full) {
		JADD(o, "backup-roots", backup_roots_json(sb));
		JADD(o, "sys-chunk-array-hex",
		     json_hex(sb->sys_chunk_array,
			      le32_to_cpu(sb->sys_chunk_array_size) <= BTRFS_SYSTEM_CHUNK_ARRAY_SIZE ?
			      le32_to_cpu(sb->sys_chunk_array_size) : BTRFS_SYSTEM_CHUNK_ARRAY_SIZE));
	}
	return o;
}
/*
 * Dump the copy at bytenr.  Returns 0 if it was dumped and is valid, 1 if it
 * was dumped but is damaged, 2 if it has a bad magic and was not dumped
 * (btrfs-progs then stops), 3 if it lies beyond the end of the image (nothing
 * printed), -1 on a read error.
 */
static int dump_one(int fd, const char *path, u64 bytenr, bool full, bool force,
		    struct json_object *arr)
{
	u8 raw[BTRFS_SUPER_INFO_SIZE];
	const struct btrfs_super_block *sb = (const void *)raw;
	ssize_t n;
	bool match;

	n = pread(fd, raw, sizeof(raw), (off_t)bytenr);
	if (n == 0)
		return 3;
	if (n != (ssize_t)sizeof(raw)) {
		pt_out_flush();
		if (n < 0)
			error("failed to read the superblock on %s at %llu: %m", path,
			      (unsigned long long)bytenr);
		else
			error("failed to read the superblock on %s at %llu: short read",
			      path, (unsigned long long)bytenr);
		return -1;
	}
	if (arr) {
		if (le64_to_cpu(sb->magic) != BTRFS_MAGIC && !force) {
			error("bad magic on superblock on %s at %llu", path,
			      (unsigned long long)bytenr);
			return 2;
		}
		json_object_array_add(arr, super_json(raw, bytenr, path, full, &match));
	} else {
		pt_out_printf("superblock: bytenr=%llu, device=%s\n",
			      (unsigned long long)bytenr, path);
		pt_out_str("---------------------------------------------------------\n");
		if (le64_to_cpu(sb->magic) != BTRFS_MAGIC && !force) {
			pt_out_flush();
			error("bad magic on superblock on %s at %llu (use --force to dump it anyway)",
			      path, (unsigned long long)bytenr);
			return 2;
		}
		match = print_super_text(raw, full);
	}
	if (le64_to_cpu(sb->magic) != BTRFS_MAGIC) {
		pt_out_flush();
		error("bad magic on superblock on %s at %llu", path, (unsigned long long)bytenr);
		return 1;
	}
	if (!match) {
		pt_out_flush();
		error("superblock on %s at %llu: checksum mismatch", path,
		      (unsigned long long)bytenr);
		return 1;
	}
	return 0;
}

enum { OPT_BYTENR = 0x100 };

static int parse_u64(const char *s, u64 *out)
{
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return -1;
	*out = strtoull(s, &end, 0);
	return (errno || *end) ? -1 : 0;
}

struct dump_super_opts {
	bool all, full, force;
	u64 bytenr;
	const char *path;
};

/* -s/-i N and --bytenr; returns CMD_PARSE_OK or the exit code. */
static int dump_super_copy_opt(struct cmd_context *ctx, int c, const char *optval)
{
	struct dump_super_opts *o = ctx->opts;
	u64 arg;

	if (parse_u64(optval, &arg))
		return usage_error(ctx->cmd, c == OPT_BYTENR ? "invalid offset: %s" :
				   "invalid superblock copy: %s", optval);
	o->all = false;
	if (c == OPT_BYTENR || arg < BTRFS_SUPER_MIRROR_MAX) {
		o->bytenr = c == OPT_BYTENR ? arg : btrfs_sb_offset((int)arg);
		return CMD_PARSE_OK;
	}
	if (c == 'i')
		return usage_error(ctx->cmd, "super mirror too big: %llu >= %d",
				   (unsigned long long)arg, BTRFS_SUPER_MIRROR_MAX);
	warning("deprecated use of -s <bytenr> with %llu, assuming --bytenr",
		(unsigned long long)arg);
	o->bytenr = arg;
	return CMD_PARSE_OK;
}

/*
 * No image flag: dump-super reads the raw superblock copies itself, so that
 * a copy the engine would refuse is still printed.
 */
static int inspect_dump_super_parse(struct cmd_context *ctx, int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "bytenr", required_argument, NULL, OPT_BYTENR },
		{ "full", no_argument, NULL, 'f' },
		{ "force", no_argument, NULL, 'F' },
		{ "super", required_argument, NULL, 's' },
		GETOPT_HELP_OPTION,
		{ NULL, 0, NULL, 0 }
	};
	struct dump_super_opts *o = ctx->opts;
	int c, ret;

	o->bytenr = btrfs_sb_offset(0);
	while ((c = getopt_long(argc, argv, "fFai:s:", long_options, NULL)) != -1) {
		switch (c) {
		case 'a':
			o->all = true;
			break;
		case 'f':
			o->full = true;
			break;
		case 'F':
			o->force = true;
			break;
		case 'i':
		case 's':
		case OPT_BYTENR:
			ret = dump_super_copy_opt(ctx, c, optarg);
			if (ret != CMD_PARSE_OK)
				return ret;
			break;
		default:
			return cmd_parse_common(ctx, c, optarg);
		}
	}
	ret = check_argc_exact(ctx->cmd, argc - optind, 1);
	if (ret)
		return ret;
	o->path = argv[optind];
	return CMD_PARSE_OK;
}

/* --all: every copy, until one cannot be read or has a bad magic. */
static int dump_all_copies(int fd, const struct dump_super_opts *o, struct json_object *arr)
{
	int ret = EXIT_OK;

	for (int i = 0; i < BTRFS_SUPER_MIRROR_MAX; i++) {
		int r = dump_one(fd, o->path, btrfs_sb_offset(i), o->full, o->force, arr);

		if (r == 3)		/* this copy and the next lie beyond the end */
			break;
		if (r)
			ret = exit_code(r < 0 ? -EIO : -EUCLEAN, ERR_AT_RUN);
		if (r < 0 || r == 2)
			break;
		if (!arr)
			pt_out_chr('\n');
	}
	return ret;
}

static int dump_selected_copy(int fd, const struct dump_super_opts *o, struct json_object *arr)
{
	struct stat st;
	int r;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (u64)st.st_size < o->bytenr + BTRFS_SUPER_INFO_SIZE) {
		/* btrfs-progs 6.14 prints nothing for a copy beyond the end */
		pt_out_flush();
		error("superblock copy at %llu lies beyond the end of %s",
		      (unsigned long long)o->bytenr, o->path);
		return exit_code(-EUCLEAN, ERR_AT_RUN);
	}
	r = dump_one(fd, o->path, o->bytenr, o->full, o->force, arr);
	if (!arr && r != 2 && r != 3)
		pt_out_chr('\n');
	if (r == 3)
		r = 1;
	return r ? exit_code(r < 0 ? -EIO : -EUCLEAN, ERR_AT_RUN) : EXIT_OK;
}

static int inspect_dump_super_run(struct cmd_context *ctx)
{
	const struct dump_super_opts *o = ctx->opts;
	struct json_object *doc = NULL, *arr = NULL;
	int fd, ret;

	fd = open(o->path, O_RDONLY);
	if (fd < 0) {
		ret = -errno;
		error("cannot open %s: %m", o->path);
		return exit_code(ret, ERR_AT_OPEN_RO);
	}
	pt_out_init();
	if (g_format == FORMAT_JSON) {
		doc = json_doc_new();
		arr = json_object_new_array();
		json_object_object_add(doc, "superblocks", arr);
	}
	if (o->all)
		ret = dump_all_copies(fd, o, arr);
	else
		ret = dump_selected_copy(fd, o, arr);
	close(fd);
	if (doc && ret)
		json_add_error(doc, ret);
	if (doc)
		json_doc_print(doc);
	pt_out_flush();
	if (ferror(stdout)) {
		error("cannot write to stdout");
		return ret ? ret : EXIT_PROBLEMS;
	}
	return ret;
}

DEFINE_COMMAND(inspect_dump_super, "dump-super", 0, struct dump_super_opts);

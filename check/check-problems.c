// SPDX-License-Identifier: GPL-2.0
/*
 * The problem table of `check`: one row per finding the checker can make,
 * in the manner of e2fsck's problem.c.  Each row is
 *
 *   code       a stable identifier, printed in brackets in text output and
 *              as "code" in JSON; scripts and tests match on it, so a code
 *              is never renamed or reused for another meaning
 *   severity   error (makes the exit code 1), warning or note (exit 0)
 *   rule       the Documentation/format.rst section 11 rule (C1..C14) a finding breaks, or
 *              a structural category: tree, extent, space, csum, inode, dir,
 *              data, security, key
 *   template   printf format of the message, filled from the arguments the
 *              reporting site passes; the same text goes to both outputs
 *
 * Locations (root, inode, offset, bytenr) are separate fields, not part of
 * the template, so the text line is
 *   ERROR: [CODE] root R inode I offset O bytenr B: message
 * with the fields that do not apply left out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "common/fault.h"
#include "check/check.h"
#include "common/messages.h"
#include "common/output.h"

#define E SEV_ERROR
#define W SEV_WARNING
#define N SEV_NOTE

const struct check_problem_def check_problems[PR_MAX] = {
	/* tree structure */
	[PR_TREE_BLOCK_BAD] = { "TREE_BLOCK_BAD", E, "tree",
		"tree %s: unreadable tree block: %s" },
	[PR_TREE_ROOT_BAD] = { "TREE_ROOT_BAD", E, "tree",
		"root item of tree %s is invalid: %s" },
	[PR_TREE_BLOCK_SHARED] = { "TREE_BLOCK_SHARED", E, "tree",
		"tree block at level %u is referenced twice inside tree %s" },
	[PR_LOG_TREE_IGNORED] = { "LOG_TREE_IGNORED", N, "tree",
		"the image has an unreplayed log tree at %llu; it is not checked" },
	[PR_METADUMP_DATA_NOT_CHECKED] = { "METADUMP_DATA_NOT_CHECKED", N, "C13",
		"the image is a metadata dump (btrfs-image): it holds no file data, so data checksums are not verified" },
	[PR_TREE_CHECKER] = { "TREE_CHECKER", E, "tree",
		"%s slot %d%s: %s (the kernel's tree-checker refuses this block)" },
	[PR_TREE_BLOCK_OWNER] = { "TREE_BLOCK_OWNER", E, "tree", "%s" },
	[PR_TREE_BLOCK_HEADER] = { "TREE_BLOCK_HEADER", E, "tree", "%s" },
	[PR_TREE_KEY_RANGE] = { "TREE_KEY_RANGE", E, "tree",
		"tree %s block %llu: its last key (%llu %u %llu) is not below (%llu %u %llu), the key of the next pointer in its parent" },
	[PR_TREE_BLOCK_BAD_COPY] = { "TREE_BLOCK_BAD_COPY", W, "tree",
		"mirror %d of the tree block (device %llu physical %llu) is bad, mirror %d is good: %s" },
	/* chunks and devices */
	[PR_SYS_CHUNK_BAD] = { "SYS_CHUNK_BAD", E, "device",
		"system chunk array entry for chunk %llu: %s" },
	[PR_DEV_EXTENT_MISSING] = { "DEV_EXTENT_MISSING", E, "device",
		"a stripe of chunk %llu on device %llu at %llu (%llu bytes) has no dev extent" },
	[PR_DEV_EXTENT_MISMATCH] = { "DEV_EXTENT_MISMATCH", E, "device",
		"dev extent of device %llu at %llu: %s" },
	[PR_DEV_EXTENT_ORPHAN] = { "DEV_EXTENT_ORPHAN", E, "device",
		"dev extent of device %llu at %llu (%llu bytes, chunk %llu) belongs to no chunk stripe" },
	[PR_DEV_EXTENT_BEYOND] = { "DEV_EXTENT_BEYOND", E, "device",
		"dev extent of device %llu at %llu (%llu bytes) ends beyond the device size %llu" },
	[PR_DEV_EXTENT_OVERLAP] = { "DEV_EXTENT_OVERLAP", E, "device",
		"dev extents of device %llu overlap: [%llu, %llu) and the one at %llu" },
	[PR_DEV_BYTES_USED] = { "DEV_BYTES_USED", E, "device",
		"device %llu: bytes_used %llu, its dev extents add up to %llu" },
	[PR_DEVICE_MISSING] = { "DEVICE_MISSING", E, "device",
		"device %llu (used by chunk %llu) has no device item" },
	[PR_DEVICE_COUNT] = { "DEVICE_COUNT", E, "device",
		"the superblock says %llu devices, the chunk tree has %llu device items" },
	[PR_DEVICE_SIZE_UNALIGNED] = { "DEVICE_SIZE_UNALIGNED", W, "device",
		"device %llu: %s" },
	[PR_DEVICE_ITEM_MISMATCH] = { "DEVICE_ITEM_MISMATCH", E, "device",
		"device %llu: %s" },
	[PR_SUPER_TOTAL_BYTES] = { "SUPER_TOTAL_BYTES", E, "device",
		"superblock total_bytes %llu is smaller than its devices' sizes, %llu" },
	[PR_SUPER_FLAGS] = { "SUPER_FLAGS", E, "device",
		"superblock flags 0x%llx: %s" },
	[PR_SUPER_FEATURES] = { "SUPER_FEATURES", E, "device",
		"superblock compat_ro flags 0x%llx: %s" },
	/* extent tree */
	[PR_EXTENT_ITEM_MISSING] = { "EXTENT_ITEM_MISSING", E, "extent",
		"%s extent of %llu bytes is in use (%llu references) but has no extent item" },
	[PR_EXTENT_ITEM_UNUSED] = { "EXTENT_ITEM_UNUSED", E, "extent",
		"extent item of %llu bytes has %llu refs but nothing references it" },
	[PR_EXTENT_ITEM_BAD] = { "EXTENT_ITEM_BAD", E, "extent",
		"malformed extent tree item (%llu %u %llu): %s" },
	[PR_EXTENT_ITEM_OVERLAP] = { "EXTENT_ITEM_OVERLAP", E, "extent",
		"extent [%llu, %llu) overlaps the extent at %llu" },
	[PR_EXTENT_REFS_MISMATCH] = { "EXTENT_REFS_MISMATCH", E, "extent",
		"extent item says %llu refs, its backrefs count %llu, references found %llu" },
	[PR_EXTENT_BACKREF_MISSING] = { "EXTENT_BACKREF_MISSING", E, "extent",
		"no backref for %s (count %u found)" },
	[PR_EXTENT_BACKREF_UNUSED] = { "EXTENT_BACKREF_UNUSED", E, "extent",
		"backref %s (count %u) matches no reference" },
	[PR_EXTENT_BACKREF_COUNT] = { "EXTENT_BACKREF_COUNT", E, "extent",
		"backref %s has count %u, references found %u" },
	[PR_EXTENT_SIZE_MISMATCH] = { "EXTENT_SIZE_MISMATCH", E, "extent",
		"file extent says the disk extent has %llu bytes, the extent item %llu" },
	[PR_EXTENT_CHUNK_TYPE] = { "EXTENT_CHUNK_TYPE", E, "extent",
		"%s extent [%llu, %llu) lies in a chunk of type 0x%llx" },
	[PR_EXTENT_GENERATION] = { "EXTENT_GENERATION", E, "extent",
		"extent item generation %llu is beyond the filesystem generation %llu" },
	[PR_BLOCK_GROUP_USED] = { "BLOCK_GROUP_USED", E, "extent",
		"block group [%llu, %llu) says used %llu, its extent items add up to %llu" },
	[PR_BLOCK_GROUP_CHUNK] = { "BLOCK_GROUP_CHUNK", E, "extent",
		"%s" },
	[PR_SUPER_BYTES_USED] = { "SUPER_BYTES_USED", E, "extent",
		"superblock bytes_used %llu, extent items add up to %llu" },
	/* quota groups */
	[PR_QGROUP_COUNT_MISMATCH] = { "QGROUP_COUNT_MISMATCH", E, "space",
		"qgroup %llu/%llu: referenced %llu, exclusive %llu; its info item says "
		"referenced %llu, exclusive %llu" },
	[PR_QGROUP_NOT_VERIFIED] = { "QGROUP_NOT_VERIFIED", N, "space",
		"qgroup counts are not verified: %s" },
	/* free space tree */
	[PR_FREE_SPACE_MISMATCH] = { "FREE_SPACE_MISMATCH", E, "space",
		"block group [%llu, %llu): free space tree %s [%llu, %llu) %s" },
	[PR_FREE_SPACE_COUNT] = { "FREE_SPACE_COUNT", E, "space",
		"block group [%llu, %llu): free space info extent_count %u, the tree holds %llu free extents" },
	[PR_FREE_SPACE_INFO_MISSING] = { "FREE_SPACE_INFO_MISSING", E, "space",
		"block group [%llu, %llu) has no free space info item" },
	[PR_FREE_SPACE_ORPHAN] = { "FREE_SPACE_ORPHAN", E, "space",
		"free space tree item (%llu %u %llu) belongs to no block group" },
	[PR_FREE_SPACE_LEFTOVER] = { "FREE_SPACE_LEFTOVER", W, "space",
		"free space tree item (%llu %u %llu) lies before the first block group (left over by mkfs); harmless" },
	[PR_FREE_SPACE_ITEM_BAD] = { "FREE_SPACE_ITEM_BAD", E, "space",
		"malformed free space tree item (%llu %u %llu): %s" },
	/* csums */
	[PR_CSUM_MISSING] = { "CSUM_MISSING", E, "csum",
		"%llu of %llu bytes of the data extent at %llu have no csum" },
	[PR_CSUM_ORPHAN] = { "CSUM_ORPHAN", E, "csum",
		"csums for [%llu, %llu) cover no data extent" },
	[PR_CSUM_OVERLAP] = { "CSUM_OVERLAP", E, "csum",
		"csum item at %llu overlaps the previous item ending at %llu" },
	[PR_CSUM_ITEM_BAD] = { "CSUM_ITEM_BAD", E, "csum",
		"malformed csum item (%llu %u %llu): %s" },
	[PR_CSUM_NODATASUM] = { "CSUM_NODATASUM", E, "csum",
		"the inode is NODATASUM but %llu bytes of its extent at %llu have csums" },
	[PR_CSUM_PREALLOC] = { "CSUM_PREALLOC", E, "csum",
		"%llu bytes of the data extent at %llu have csums, but every file extent item of it is prealloc (never written)" },
	[PR_DATA_CSUM_MISMATCH] = { "DATA_CSUM_MISMATCH", E, "C13",
		"data csum mismatch at logical %llu mirror %u%s%s: have %s expected %s" },
	[PR_DATA_BAD_COPY] = { "DATA_BAD_COPY", W, "C13",
		"data csum mismatch at logical %llu mirror %u (device %llu physical %llu)%s%s: have %s expected %s; another copy is good" },
	[PR_PARITY_MISMATCH] = { "PARITY_MISMATCH", W, "C13",
		"%s of the RAID5/6 row at logical %llu (device %llu physical %llu) does not match the row's data in %u of its %u sectors; readers use the data" },
	[PR_DATA_READ_ERROR] = { "DATA_READ_ERROR", E, "data",
		"cannot read data: %s" },
	/* inodes and names */
	[PR_INODE_ITEM_MISSING] = { "INODE_ITEM_MISSING", E, "inode",
		"inode has %s but no inode item" },
	[PR_INODE_ITEM_BAD] = { "INODE_ITEM_BAD", E, "inode",
		"malformed inode item: %s" },
	[PR_INODE_NBYTES] = { "INODE_NBYTES", E, "inode",
		"nbytes is %llu, its extents add up to %llu" },
	[PR_INODE_SIZE] = { "INODE_SIZE", E, "inode",
		"%s size is %llu, expected %llu" },
	[PR_INODE_NLINK] = { "INODE_NLINK", E, "inode",
		"link count is %u, %u directory entries point to it" },
	[PR_INODE_NO_ORPHAN_ITEM] = { "INODE_NO_ORPHAN_ITEM", E, "inode",
		"link count is 0 but there is no orphan item" },
	[PR_INODE_FLAGS] = { "INODE_FLAGS", E, "inode",
		"odd inode flags 0x%llx: %s" },
	[PR_INODE_MODE] = { "INODE_MODE", E, "inode",
		"invalid inode mode 0%o" },
	[PR_INODE_GENERATION] = { "INODE_GENERATION", E, "inode",
		"inode generation %llu / transid %llu beyond the filesystem generation %llu" },
	[PR_FILE_EXTENT_BAD] = { "FILE_EXTENT_BAD", E, "inode",
		"invalid file extent item: %s" },
	[PR_FILE_EXTENT_OVERLAP] = { "FILE_EXTENT_OVERLAP", E, "inode",
		"file extent overlaps the previous one ending at %llu" },
	[PR_FILE_EXTENT_GAP] = { "FILE_EXTENT_GAP", E, "inode",
		"file extents leave [%llu, %llu) uncovered without the NO_HOLES feature" },
	[PR_INLINE_EXTENT_BAD] = { "INLINE_EXTENT_BAD", E, "inode",
		"inline extent: %s" },
	[PR_DIR_INDEX_MISSING] = { "DIR_INDEX_MISSING", E, "dir",
		"entry '%s' of directory %llu (to inode %llu) has no DIR_INDEX" },
	[PR_DIR_ITEM_MISSING] = { "DIR_ITEM_MISSING", E, "dir",
		"entry '%s' of directory %llu (to inode %llu) has no DIR_ITEM" },
	[PR_INODE_REF_MISSING] = { "INODE_REF_MISSING", E, "dir",
		"entry '%s' of directory %llu index %llu has no inode ref in inode %llu" },
	[PR_DIR_ENTRY_MISMATCH] = { "DIR_ENTRY_MISMATCH", E, "dir",
		"entry '%s' of directory %llu: %s" },
	[PR_DIR_ITEM_HASH] = { "DIR_ITEM_HASH", E, "dir",
		"DIR_ITEM name '%s' hashes to 0x%llx, key offset is 0x%llx" },
	[PR_DIR_ITEM_BAD] = { "DIR_ITEM_BAD", E, "dir",
		"malformed %s item: %s" },
	[PR_ROOT_DIR_BAD] = { "ROOT_DIR_BAD", E, "dir",
		"subvolume root directory: %s" },
	[PR_ROOT_GENERATION] = { "ROOT_GENERATION", E, "tree",
		"root item generation %llu is beyond the filesystem generation %llu" },
	/* encryption */
	[PR_ENCRYPT_INCOMPAT_MISSING] = { "ENCRYPT_INCOMPAT_MISSING", E, "C1",
		"encrypted items exist (first: %s) but incompat bit 15 (ENCRYPT) is clear" },
	[PR_INODE_CTX_MISSING] = { "INODE_CTX_MISSING", E, "C2",
		"inode has the ENCRYPT flag but no FSCRYPT_INODE_CTX item" },
	[PR_INODE_CTX_ORPHAN] = { "INODE_CTX_ORPHAN", E, "C2",
		"FSCRYPT_INODE_CTX item on an inode without the ENCRYPT flag" },
	[PR_INODE_CTX_INVALID] = { "INODE_CTX_INVALID", E, "C2",
		"invalid inode encryption context: %s" },
	[PR_INODE_CTX_WRONG_TYPE] = { "INODE_CTX_WRONG_TYPE", E, "C2",
		"encryption context on an inode of mode 0%o (only files, directories and symlinks)" },
	[PR_EXTENT_ENCRYPTION_INVALID] = { "EXTENT_ENCRYPTION_INVALID", E, "C3",
		"file extent encryption %u is not 0 or 1" },
	[PR_EXTENT_ENCRYPTION_UNEXPECTED] = { "EXTENT_ENCRYPTION_UNEXPECTED", E, "C3",
		"encryption 1 on %s" },
	[PR_EXTENT_PLAINTEXT] = { "EXTENT_PLAINTEXT", E, "C4",
		"%s extent of an encrypted file has encryption 0" },
	[PR_INLINE_IN_ENCRYPTED_FILE] = { "INLINE_IN_ENCRYPTED_FILE", E, "C4",
		"inline extent of %llu bytes in an encrypted regular file" },
	[PR_EXTENT_CTX_MISSING] = { "EXTENT_CTX_MISSING", E, "C5",
		"encrypted file extent (disk bytenr %llu) has no FSCRYPT_CTX item at its offset" },
	[PR_EXTENT_CTX_STALE] = { "EXTENT_CTX_STALE", E, "C6",
		"FSCRYPT_CTX item has no encrypted file extent at its offset" },
	[PR_EXTENT_CTX_INVALID] = { "EXTENT_CTX_INVALID", E, "C7",
		"invalid extent encryption context: %s" },
	[PR_EXTENT_CTX_SIZE] = { "EXTENT_CTX_SIZE", W, "C7",
		"extent encryption context is %u bytes (34 expected; the rest is ignored)" },
	[PR_EXTENT_CTX_KEY_MISMATCH] = { "EXTENT_CTX_KEY_MISMATCH", E, "C7",
		"extent context key identifier %s differs from the inode's %s" },
	[PR_EXTENT_CTX_MODE_MISMATCH] = { "EXTENT_CTX_MODE_MISMATCH", E, "C7",
		"extent context mode %u differs from the inode's contents mode %u" },
	[PR_SHARED_EXTENT_MISMATCH] = { "SHARED_EXTENT_MISMATCH", E, "C8",
		"references to the disk extent at %llu disagree: %s (other: root %llu inode %llu offset %llu)" },
	[PR_DIR_ENTRY_FT_ENCRYPTED] = { "DIR_ENTRY_FT_ENCRYPTED", E, "C9",
		"%s entry '%s' of a%s directory %s the FT_ENCRYPTED bit (type 0x%x)" },
	[PR_POLICY_MISMATCH] = { "POLICY_MISMATCH", E, "C2",
		"entry '%s' of encrypted directory %llu: inode %llu has another encryption policy than the directory (the kernel refuses to open it: EPERM)" },
	[PR_NOT_ENCRYPTED] = { "NOT_ENCRYPTED", E, "security",
		"not encrypted (mode 0%o), and --require-encryption covers %s" },
	[PR_REQUIRED_SUBVOL_MISSING] = { "REQUIRED_SUBVOL_MISSING", E, "security",
		"subvolume %llu, named by --require-encryption, does not exist" },
	[PR_REQUIRED_PATH_MISSING] = { "REQUIRED_PATH_MISSING", E, "security",
		"path %s, named by --require-encryption, %s" },
	[PR_PLAIN_INODE_IN_ENCRYPTED_DIR] = { "PLAIN_INODE_IN_ENCRYPTED_DIR", E, "C9",
		"entry '%s' of encrypted directory %llu points to unencrypted inode %llu (mode 0%o)" },
	[PR_ENCRYPTED_NAME_HASH] = { "ENCRYPTED_NAME_HASH", E, "C9",
		"DIR_ITEM of an encrypted directory: stored name hashes to 0x%llx, key offset is 0x%llx" },
	[PR_ENCRYPTED_NAME_LENGTH] = { "ENCRYPTED_NAME_LENGTH", W, "C10",
		"encrypted name of %u bytes in a %s item: %s" },
	[PR_SYMLINK_DATA_BAD] = { "SYMLINK_DATA_BAD", E, "C11",
		"encrypted symlink data: %s" },
	[PR_SYMLINK_DATA_LONG] = { "SYMLINK_DATA_LONG", W, "C11",
		"encrypted symlink data of %u bytes exceeds sectorsize - 1 (%u)" },
	[PR_NONCE_REUSE] = { "NONCE_REUSE", E, "security",
		"nonce %s is used by %s and by %s" },
	[PR_LEGACY_EXTENT_CTX] = { "LEGACY_EXTENT_CTX", E, "C3",
		"encrypted file extent item of %u bytes (legacy v5 layout or corrupt; v7 uses 53)" },
	/* with a key */
	[PR_KEY_NOT_USED] = { "KEY_NOT_USED", N, "C12",
		"%llu encryption contexts use other master keys (for example %s); their inodes were not decrypted" },
	[PR_REKEY_IN_PROGRESS] = { "REKEY_IN_PROGRESS", N, "C12",
		"rekey in progress: %llu encryption contexts under key %s, %llu under key %s; %llu entries name an inode under the other key than their directory's (the kernel refuses them): finish the rekey before mounting" },
	[PR_NAME_DECRYPT_BAD] = { "NAME_DECRYPT_BAD", E, "C12",
		"%s name of %u bytes in directory %llu does not decrypt to a valid name: %s" },
	[PR_SYMLINK_DECRYPT_BAD] = { "SYMLINK_DECRYPT_BAD", E, "C12",
		"symlink target does not decrypt: %s" },
	[PR_COMPRESSED_DECODE_BAD] = { "COMPRESSED_DECODE_BAD", E, "C12",
		"compressed encrypted extent at %llu does not decompress: %s" },
};

#undef E
#undef W
#undef N

static const char *const sev_names[] = { "error", "warning", "note" };

/* Most problems ever kept: past this only the counts go on. */
#define MAX_PROBLEMS 200000

void check_report(struct check_ctx *c, enum check_problem code, struct check_loc loc, ...)
{
	struct check_problem_rec *p;
	va_list ap;
	char *msg = NULL;
	void *np;
	int n;

	c->nr_by_sev[check_problems[code].severity]++;
	if (c->nr_problems >= MAX_PROBLEMS)
		return;
	/* A problem dropped for want of memory would go unreported. */
	np = array_grow(c->problems, &c->cap_problems, c->nr_problems, sizeof(*c->problems));
	if (!np)
		die_oom();
	c->problems = np;
	va_start(ap, loc);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = fault_alloc_fails() ? -1 : vasprintf(&msg, check_problems[code].fmt, ap);
#pragma GCC diagnostic pop
	va_end(ap);
	if (n < 0)
		die_oom();
	p = &c->problems[c->nr_problems++];
	p->code = code;
	p->loc = loc;
	p->message = msg;
	if (c->print_now)
		check_print_problem(c, p);
}

void check_format_problem(const struct check_problem_rec *p, char *buf, size_t len)
{
	size_t pos = 0;
	char name[32];

	pos += snprintf(buf + pos, len - pos, "[%s]", check_problems[p->code].code);
	if (p->loc.root != NOLOC && pos < len)
		pos += snprintf(buf + pos, len - pos, " root %s",
				check_root_name(p->loc.root, name, sizeof(name)));
	if (p->loc.ino != NOLOC && pos < len)
		pos += snprintf(buf + pos, len - pos, " inode %llu", p->loc.ino);
	if (p->loc.offset != NOLOC && pos < len)
		pos += snprintf(buf + pos, len - pos, " offset %llu", p->loc.offset);
	if (p->loc.bytenr != NOLOC && pos < len)
		pos += snprintf(buf + pos, len - pos, " bytenr %llu", p->loc.bytenr);
	if (pos < len)
		snprintf(buf + pos, len - pos, ": %s", p->message ? p->message : "(no memory)");
}

void check_print_problem(const struct check_ctx *c, const struct check_problem_rec *p)
{
	char line[2048];

	check_format_problem(p, line, sizeof(line));
	switch (check_problems[p->code].severity) {
	case SEV_ERROR:
		error("%s", line);
		break;
	case SEV_WARNING:
		warning("%s", line);
		break;
	default:
		note("%s", line);
		break;
	}
}

static void json_add_loc(struct json_object *o, const char *name, u64 v)
{
	json_object_object_add(o, name, v == NOLOC ? NULL : json_u64(v));
}

struct json_object *check_problems_json(const struct check_ctx *c)
{
	struct json_object *arr = json_object_new_array();

	for (size_t i = 0; i < c->nr_problems; i++) {
		const struct check_problem_rec *p = &c->problems[i];
		const struct check_problem_def *d = &check_problems[p->code];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "code", json_object_new_string(d->code));
		json_object_object_add(o, "severity",
				       json_object_new_string(sev_names[d->severity]));
		json_object_object_add(o, "rule", json_object_new_string(d->rule));
		json_add_loc(o, "root", p->loc.root);
		json_add_loc(o, "inode", p->loc.ino);
		json_add_loc(o, "offset", p->loc.offset);
		json_add_loc(o, "bytenr", p->loc.bytenr);
		json_object_object_add(o, "message",
				       json_object_new_string(p->message ? p->message : ""));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* ---- small shared helpers ---------------------------------------------- */

void *vec_push_or_die(struct vec *v)
{
	void *p = vec_push(v);

	if (!p) {
		die_oom();
	}
	return p;
}

/*
 * Bytes of records each store of check holds in memory before it sorts them
 * to a file: 8 MiB (four stores at most are filling at once).  Test builds
 * take EXTCRYPT_SPILL_BYTES instead, so that small images go through the
 * runs on disk too (tests/test_spill.py).
 */
size_t check_spill_budget(void)
{
#ifdef EXTCRYPT_FAULT_INJECTION
	const char *env = getenv("EXTCRYPT_SPILL_BYTES");

	if (env)
		return strtoull(env, NULL, 0);
#endif
	return 8u << 20;
}

static void __attribute__((noreturn)) die_spill(int err)
{
	if (err == -ENOMEM)
		die_oom();
	error("cannot sort the records of the check in a temporary file in %s: %s",
	      spill_tmpdir(), strerror(-err));
	exit(exit_code(-ENOMEM, ERR_AT_RUN));
}

void spill_add_or_die(struct spill *s, const void *rec, u32 len)
{
	int ret = spill_add(s, rec, len);

	if (ret)
		die_spill(ret);
}

void spill_finish_or_die(struct spill *s)
{
	int ret = spill_finish(s);

	if (ret)
		die_spill(ret);
}

void spill_rewind_or_die(struct spill *s)
{
	int ret = spill_rewind(s);

	if (ret)
		die_spill(ret);
}

const void *spill_next_or_die(struct spill *s, u32 *len)
{
	int err;
	const void *r = spill_next(s, len, &err);

	if (err)
		die_spill(err);
	return r;
}

size_t bytes_append(u8 **buf, size_t *len, size_t *cap, const void *data, size_t n)
{
	size_t off = *len, need = *len + n < 65536 ? 65536 : *len + n;
	u8 *nb = array_reserve(*buf, cap, need, 1);

	if (!nb) {
		die_oom();
	}
	*buf = nb;
	memcpy(*buf + off, data, n);
	*len += n;
	return off;
}

void check_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	const char *p = base;
	size_t i = 1;

	while (i < n && cmp(p + (i - 1) * size, p + i * size) <= 0)
		i++;
	if (i < n)
		qsort(base, n, size, cmp);
}

const char *check_root_name(u64 objectid, char *buf, size_t len)
{
	switch (objectid) {
	case BTRFS_TREE_RELOC_OBJECTID:
		return "TREE_RELOC";
	case BTRFS_DATA_RELOC_TREE_OBJECTID:
		return "DATA_RELOC";
	case BTRFS_TREE_LOG_OBJECTID:
		return "TREE_LOG";
	default:
		snprintf(buf, len, "%llu", objectid);
		return buf;
	}
}

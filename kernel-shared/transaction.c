// SPDX-License-Identifier: GPL-2.0
/*
 * Transactions: opening for write, the root table, dirty blocks, commit.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "common/fault.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/extent-tree.h"
#include "kernel-shared/space-map.h"
#include "kernel-shared/chunk-alloc.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/ctree-mod.h"
#include "kernel-shared/qgroup.h"
#include "crypto/csum.h"
#include "common/containers.h"
#include "common/utils.h"

/* ---- writes and fault injection -------------------------------------- */

#ifdef EXTCRYPT_FAULT_INJECTION
static unsigned long long write_count;
static long long fail_at;
static int write_log_fd = -1;
static pthread_mutex_t write_log_lock = PTHREAD_MUTEX_INITIALIZER;

static void read_fail_at(void)
{
	const char *s = getenv("EXTCRYPT_FAIL_AT");
	const char *log = getenv("EXTCRYPT_WRITE_LOG");

	fail_at = s ? atoll(s) : 0;
	if (log)
		write_log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/*
 * EXTCRYPT_WRITE_LOG=FILE: append every image write to FILE as a record
 * {le64 offset; le64 length; the bytes} (length 0 and no bytes: a hole
 * punched or zeros written, offset only), so that tests can search what
 * the command wrote.  Test builds only.
 */
static void log_write(const void *buf, size_t count, off_t offset)
{
	u64 hdr[2] = { cpu_to_le64((u64)offset), cpu_to_le64(buf ? count : 0) };

	if (write_log_fd < 0)
		return;
	pthread_mutex_lock(&write_log_lock);
	if (write(write_log_fd, hdr, sizeof(hdr)) != sizeof(hdr) ||
	    (buf && write(write_log_fd, buf, count) != (ssize_t)count))
		abort();	/* a test build that cannot log must not pass */
	pthread_mutex_unlock(&write_log_lock);
}

/*
 * EXTCRYPT_FAIL_AT=N: the Nth image write is not done and the process exits.
 * Pipeline workers write too: the counter is atomic, the variable read once.
 */
static void fault_point(const void *buf, size_t count, off_t offset)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned long long n;

	pthread_once(&once, read_fail_at);
	n = __atomic_add_fetch(&write_count, 1, __ATOMIC_SEQ_CST);
	if (fail_at > 0 && n == (unsigned long long)fail_at) {
		fprintf(stderr, "ERROR: fault injection: write %llu failed\n", n);
		_exit(1);
	}
	log_write(buf, count, offset);
}
#else
static inline void fault_point(const void *buf, size_t count, off_t offset) { }
#endif

ssize_t fault_pwrite(int fd, const void *buf, size_t count, off_t offset)
{
	fault_point(buf, count, offset);
	return pwrite(fd, buf, count, offset);
}

int dev_pwrite(struct fs_info *fs, int dev, const void *buf, size_t len, u64 offset)
{
	const u8 *p = buf;
	int fd = dev >= 0 && (u32)dev < fs->nr_devs ? fs->devs[dev].fd : -1;

	if (!fs->writable)
		return fs_err(fs, -EROFS, "image is open read-only");
	if (fd < 0)
		return fs_err(fs, -ENODEV, "writing a missing device");
	fault_point(buf, len, offset);
	while (len) {
		ssize_t n = pwrite(fd, p, len, offset);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fs_err(fs, -errno, "write error at offset %llu of %s: %s", offset,
				      fs->devs[dev].path, strerror(errno));
		}
		p += n;
		len -= n;
		offset += n;
	}
	return 0;
}

int image_pwrite(struct fs_info *fs, const void *buf, size_t len, u64 offset)
{
	return dev_pwrite(fs, 0, buf, len, offset);
}

/*
 * The bytes from logical that lie contiguously in every copy (at most len),
 * and how many copies there are.  0 or -ENOENT (not mapped), -ENODEV (a
 * copy on a missing device), with fs_errmsg(fs) set.
 */
static int copies_run(struct fs_info *fs, u64 logical, u64 len, int *ncopies, u64 *run)
{
	int n = num_copies(fs, logical);

	*run = len;
	for (int c = 0; c < n; c++) {
		struct copy_loc loc;
		u64 r;

		if (map_copy_run(fs, logical, *run, c, &loc, &r))
			break;
		if (loc.fd < 0)
			return fs_err(fs, -ENODEV, "logical %llu: device devid %llu is missing",
				      logical, (unsigned long long)loc.devid);
		*run = r;
	}
	if (!n)
		return fs_err(fs, -ENOENT, "logical %llu is not mapped by any chunk", logical);
	*ncopies = n;
	return 0;
}

/*
 * fn on every copy of every run of [logical, logical + len) (copies_run()):
 * the copy's location, the run's offset in the range and its length.
 * Stops at the first error.
 */
static int each_copy_run(struct fs_info *fs, u64 logical, u64 len,
			 int (*fn)(struct fs_info *fs, const struct copy_loc *loc, u64 off, u64 n,
				   void *arg),
			 void *arg)
{
	for (u64 off = 0; off < len;) {
		u64 n, r;
		int copies = 0, ret = copies_run(fs, logical + off, len - off, &copies, &n);

		for (int c = 0; !ret && c < copies; c++) {
			struct copy_loc loc;

			ret = map_copy_run(fs, logical + off, n, c, &loc, &r) ?
			      fs_err(fs, -ENOENT, "logical %llu: copy %d is not mapped", logical + off, c) :
			      fn(fs, &loc, off, n, arg);
		}
		if (ret)
			return ret;
		off += n;
	}
	return 0;
}

static int write_copy(struct fs_info *fs, const struct copy_loc *loc, u64 off, u64 n, void *buf)
{
	return dev_pwrite(fs, loc->dev, (const u8 *)buf + off, n, loc->physical);
}

int write_logical(struct fs_info *fs, u64 logical, const void *buf, u64 len)
{
	return each_copy_run(fs, logical, len, write_copy, (void *)buf);
}

static int wipe_run(struct fs_info *fs, int dev, u64 phys, u64 n)
{
	static const u8 zero[65536];
	int fd = fs->devs[dev].fd;

	fault_point(NULL, n, phys);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, phys, n) == 0)
		return 0;
	/* A device or a filesystem without hole punching: write zeros. */
	for (u64 off = 0; off < n; off += sizeof(zero)) {
		u64 w = n - off < sizeof(zero) ? n - off : sizeof(zero);

		if (pwrite(fd, zero, w, phys + off) != (ssize_t)w)
			return fs_err(fs, -errno, "wiping %llu of %s failed: %s", phys + off,
				      fs->devs[dev].path, strerror(errno));
	}
	return 0;
}

int wipe_physical(struct fs_info *fs, u32 dev, u64 phys, u64 n)
{
	/* Around the superblock copies: a removed chunk may have covered one. */
	for (int m = 0; m < BTRFS_SUPER_MIRROR_MAX && n; m++) {
		u64 sb = btrfs_sb_offset(m), end = phys + n;
		int ret;

		if (sb + BTRFS_SUPER_INFO_SIZE <= phys || sb >= end)
			continue;
		if (sb > phys && (ret = wipe_run(fs, dev, phys, sb - phys)))
			return ret;
		phys = sb + BTRFS_SUPER_INFO_SIZE < end ? sb + BTRFS_SUPER_INFO_SIZE : end;
		n = end - phys;
	}
	return n ? wipe_run(fs, dev, phys, n) : 0;
}

static int wipe_copy(struct fs_info *fs, const struct copy_loc *loc, u64 off, u64 n, void *arg)
{
	return wipe_run(fs, loc->dev, loc->physical, n);
}

int wipe_logical(struct fs_info *fs, u64 logical, u64 len)
{
	return each_copy_run(fs, logical, len, wipe_copy, NULL);
}

/* ---- opening for write ------------------------------------------------ */

/*
 * Is block device maj:min a device of a mounted btrfs?  The kernel lists
 * every device of a mounted filesystem, not only the one mountinfo names,
 * as /sys/fs/btrfs/<fsid>/devices/<kernel name>, from mount to unmount.
 */
static bool dev_in_mounted_btrfs(unsigned int maj, unsigned int min)
{
	char p[PATH_MAX + 512], link[PATH_MAX];	/* p: a d_name and link's tail */
	const char *name;
	struct dirent *de;
	bool found = false;
	ssize_t n;
	DIR *d;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", maj, min);
	n = readlink(p, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	link[n] = 0;
	name = strrchr(link, '/');
	name = name ? name + 1 : link;
	d = opendir("/sys/fs/btrfs");
	if (!d)
		return false;
	while (!found && (de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/fs/btrfs/%s/devices/%s", de->d_name, name);
		found = !lstat(p, &st);
	}
	closedir(d);
	return found;
}

/*
 * Is the device mounted according to /proc/self/mountinfo?  btrfs reports
 * an anonymous device number there, so the mount source (after " - fstype ")
 * is compared too; and the mount source is only one of the devices of a
 * filesystem of several, so btrfs's own list is asked as well.
 */
static bool dev_is_mounted(unsigned int maj, unsigned int min, const char *devpath)
{
	FILE *f;
	char line[4096];
	bool found = dev_in_mounted_btrfs(maj, min);

	f = found ? NULL : fopen("/proc/self/mountinfo", "re");
	if (!f)
		return found;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned int a, b;
		char *sep = strstr(line, " - "), fstype[64], source[PATH_MAX];

		if (sscanf(line, "%*u %*u %u:%u", &a, &b) == 2 && a == maj && b == min)
			found = true;
		if (!found && sep && devpath &&
		    sscanf(sep + 3, "%63s %4095s", fstype, source) == 2 && !strcmp(source, devpath))
			found = true;
	}
	fclose(f);
	return found;
}

int image_check_not_mounted(int fd, const char *path, char *why, size_t len)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (fstat(fd, &st) < 0)
		return 0;
	if (S_ISBLK(st.st_mode)) {
		char real[PATH_MAX];

		if (dev_is_mounted(major(st.st_rdev), minor(st.st_rdev),
				   realpath(path, real) ? real : path)) {
			snprintf(why, len, "%s is mounted", path);
			return -EBUSY;
		}
		return 0;
	}
	d = opendir("/sys/block");
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		char p[PATH_MAX], backing[PATH_MAX];
		struct stat bst;
		unsigned int maj, min;
		FILE *f;

		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(p, sizeof(p), "/sys/block/%s/loop/backing_file", de->d_name);
		f = fopen(p, "re");
		if (!f)
			continue;
		if (!fgets(backing, sizeof(backing), f)) {
			fclose(f);
			continue;
		}
		fclose(f);
		backing[strcspn(backing, "\n")] = 0;
		if (stat(backing, &bst) || bst.st_dev != st.st_dev || bst.st_ino != st.st_ino)
			continue;
		snprintf(p, sizeof(p), "/sys/block/%s/dev", de->d_name);
		f = fopen(p, "re");
		snprintf(backing, sizeof(backing), "/dev/%s", de->d_name);
		if (f && fscanf(f, "%u:%u", &maj, &min) == 2 && dev_is_mounted(maj, min, backing)) {
			snprintf(why, len, "%s is mounted through /dev/%s", path, de->d_name);
			ret = -EBUSY;
		}
		if (f)
			fclose(f);
	}
	closedir(d);
	return ret;
}

/*
 * Every device of an image opened for writing: present (a write goes to
 * every copy), locked, not mounted.  0 or a negative errno with errbuf set.
 */
static int claim_devices(struct fs_info *fs, char *errbuf)
{
	for (u32 i = 0; i < fs->nr_devs; i++) {
		const struct fs_device *d = &fs->devs[i];
		int ret;

		if (d->fd < 0) {
			snprintf(errbuf, 512,
				 "device devid %llu of the filesystem is missing (give every device with --device PATH): writes go to every copy, so nothing is written with a device missing",
				 (unsigned long long)d->devid);
			return -EOPNOTSUPP;
		}
		if (flock(d->fd, LOCK_EX | LOCK_NB) < 0) {
			snprintf(errbuf, 512, "%s is locked by another process", d->path);
			return -EBUSY;
		}
		ret = image_check_not_mounted(d->fd, d->path, errbuf, 512);
		if (ret)
			return ret;
	}
	return 0;
}

int open_image_rw(const char *path, struct fs_info **out, char *errbuf)
{
	return open_image_rw_devices(path, NULL, 0, false, out, errbuf);
}

int open_image_rw_devices(const char *path, const char *const *devices, int nr_devices,
			  bool verify_follows, struct fs_info **out, char *errbuf)
{
	struct open_args args = { .super_mirror = -1, .writable = true, .devices = devices,
				  .nr_devices = nr_devices, .verify_follows = verify_follows };
	struct fs_info *fs;
	int ret;

	ret = open_image(path, &args, &fs, errbuf);
	if (ret == -ENODEV) {
		/* A device not given: reads could go on, writes cannot. */
		snprintf(errbuf + strlen(errbuf), 512 - strlen(errbuf), "; nothing is written with a device missing");
		return -EOPNOTSUPP;
	}
	if (ret)
		return ret;
	ret = claim_devices(fs, errbuf);
	if (ret) {
		close_image(fs);
		return ret;
	}
	if (le64_to_cpu(fs->super.log_root)) {
		snprintf(errbuf, 512,
			 "%s has an unreplayed log tree; mount it once or run 'btrfs rescue zero-log'",
			 path);
		close_image(fs);
		return -EBUSY;
	}
	if (fs->incompat & BTRFS_FEATURE_INCOMPAT_SIMPLE_QUOTA) {
		/* Simple quotas: new data extents get owner refs from the first transaction on. */
		struct qgroup_state qs = { 0 };

		ret = qgroup_load(fs, &fs->tree_root, &qs);
		fs->qgroup_mode = qs.mode;
		qgroup_state_free(&qs);
		if (ret) {
			snprintf(errbuf, 512, "%s: cannot read the quota tree: %s", path,
				 fs_errmsg(fs));
			close_image(fs);
			return ret;
		}
	}
	fs->writable = true;
	*out = fs;
	return 0;
}

/* ---- roots ----------------------------------------------------------- */

struct trans_root *trans_get_root(struct trans *t, u64 objectid)
{
	struct fs_info *fs = t->fs;
	struct trans_root *r;

	for (size_t i = 0; i < t->nr_roots; i++)
		if (t->roots[i].ref.objectid == objectid)
			return &t->roots[i];
	if (t->nr_roots == t->cap_roots) {
		/* Pointers into roots[] are handed out: the array never moves. */
		t->root_err = fs_err(fs, -ENOSPC, "too many trees in one transaction");
		return NULL;
	}
	r = &t->roots[t->nr_roots];
	memset(r, 0, sizeof(*r));
	if (objectid == BTRFS_ROOT_TREE_OBJECTID) {
		r->ref = fs->tree_root;
	} else if (objectid == BTRFS_CHUNK_TREE_OBJECTID) {
		r->ref = fs->chunk_root;
	} else {
		struct trans_root *rt = trans_get_root(t, BTRFS_ROOT_TREE_OBJECTID);
		struct btrfs_root_item ri;
		int ret;

		if (!rt)
			return NULL;
		r = &t->roots[t->nr_roots];
		memset(r, 0, sizeof(*r));
		ret = read_root_item_in(fs, &rt->ref, objectid, &ri, NULL);
		if (ret) {
			if (ret == -ENOENT)
				fs_err(fs, ret, "tree %llu does not exist", objectid);
			t->root_err = ret;
			return NULL;
		}
		r->ref.objectid = objectid;
		r->ref.bytenr = le64_to_cpu(ri.bytenr);
		r->ref.generation = le64_to_cpu(ri.generation);
		r->ref.level = ri.level;
		r->last_snapshot = le64_to_cpu(ri.last_snapshot);
	}
	t->nr_roots++;
	return r;
}

/* Write the ROOT_ITEM of every dirty tree other than the root and chunk trees. */
static int update_root_items(struct trans *t, bool *changed)
{
	struct fs_info *fs = t->fs;

	*changed = false;
	for (size_t i = 0; i < t->nr_roots; i++) {
		struct trans_root *r = &t->roots[i];
		struct trans_root *rt;
		struct btrfs_root_item *ri;
		struct btrfs_key key;
		struct btrfs_path p;
		struct btrfs_root_item cur;
		int ret;

		if (!r->dirty || r->ref.objectid == BTRFS_ROOT_TREE_OBJECTID ||
		    r->ref.objectid == BTRFS_CHUNK_TREE_OBJECTID)
			continue;
		rt = trans_get_root(t, BTRFS_ROOT_TREE_OBJECTID);
		if (!rt)
			return trans_root_err(t);
		ret = read_root_item_in(fs, &rt->ref, r->ref.objectid, &cur, &key);
		if (ret)
			return ret;
		ret = search_slot_mod(t, rt, &key, &p, 0);
		if (ret) {
			path_release(fs, &p);
			return ret < 0 ? ret : fs_err(fs, -EUCLEAN, "root item of tree %llu vanished",
						      r->ref.objectid);
		}
		ri = (struct btrfs_root_item *)path_ptr_mut(&p);
		ri->bytenr = cpu_to_le64(r->ref.bytenr);
		ri->level = r->ref.level;
		ri->generation = cpu_to_le64(t->transid);
		if (path_size(&p) >= sizeof(*ri))
			ri->generation_v2 = cpu_to_le64(t->transid);
		path_release(fs, &p);
		/* The root block itself carries this transaction's generation. */
		r->ref.generation = t->transid;
		r->dirty = false;
		*changed = true;
	}
	return 0;
}

/* ---- dirty blocks --------------------------------------------------- */

int trans_add_dirty(struct trans *t, struct tree_block *b)
{
	struct tree_block **n = array_grow(t->dirty, &t->cap_dirty, t->nr_dirty, sizeof(*n));

	if (!n)
		return fs_err(t->fs, -ENOMEM, "out of memory");
	t->dirty = n;
	tree_block_get(b);
	b->dirty = true;
	t->dirty[t->nr_dirty++] = b;
	return 0;
}

/* Forget a dirty block that was freed before commit. */
void trans_drop_dirty(struct trans *t, struct tree_block *b)
{
	for (size_t i = 0; i < t->nr_dirty; i++) {
		if (t->dirty[i] == b) {
			t->dirty[i] = t->dirty[--t->nr_dirty];
			b->dirty = false;
			tree_block_put(t->fs, b);
			return;
		}
	}
}

static int cmp_block(const void *a, const void *b)
{
	const struct tree_block *x = *(struct tree_block *const *)a;
	const struct tree_block *y = *(struct tree_block *const *)b;

	return x->bytenr < y->bytenr ? -1 : x->bytenr > y->bytenr;
}

/*
 * Zero the unused middle of a block: copy-on-write and item moves leave
 * stale bytes there (old names, inline data), which must not reach disk
 * once encrypt has replaced them.
 */
static void zero_unused(const struct fs_info *fs, struct tree_block *b)
{
	u32 n = tb_nritems(b), hdr = sizeof(struct btrfs_header);

	if (tb_level(b)) {
		u32 used = hdr + n * sizeof(struct btrfs_key_ptr);

		memset(b->data + used, 0, fs->nodesize - used);
	} else {
		u32 start = hdr + n * sizeof(struct btrfs_item);
		u32 end = hdr + (n ? tb_item_offset(b, n - 1) : fs->nodesize - hdr);

		if (end > start)
			memset(b->data + start, 0, end - start);
	}
}

static int write_dirty_blocks(struct trans *t)
{
	struct fs_info *fs = t->fs;

	/* In address order: sequential writes, and reproducible write indexes. */
	qsort(t->dirty, t->nr_dirty, sizeof(*t->dirty), cmp_block);
	for (size_t i = 0; i < t->nr_dirty; i++) {
		struct tree_block *b = t->dirty[i];
		struct btrfs_header *h = (struct btrfs_header *)b->data;
		int ret;

		zero_unused(fs, b);
		h->flags = cpu_to_le64(BTRFS_HEADER_FLAG_WRITTEN |
				       ((u64)BTRFS_MIXED_BACKREF_REV << BTRFS_BACKREF_REV_SHIFT));
		fs_csum(fs, b->data + BTRFS_CSUM_SIZE, fs->nodesize - BTRFS_CSUM_SIZE, h->csum);
		ret = write_logical(fs, b->bytenr, b->data, fs->nodesize);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- superblock ------------------------------------------------------ */

static void fill_backup_root(struct fs_info *fs, u64 gen, struct btrfs_root_backup *br)
{
	static const struct {
		u64 id;
		size_t off_root, off_gen, off_level;
	} map[] = {
		{ BTRFS_EXTENT_TREE_OBJECTID, offsetof(struct btrfs_root_backup, extent_root),
		  offsetof(struct btrfs_root_backup, extent_root_gen),
		  offsetof(struct btrfs_root_backup, extent_root_level) },
		{ BTRFS_FS_TREE_OBJECTID, offsetof(struct btrfs_root_backup, fs_root),
		  offsetof(struct btrfs_root_backup, fs_root_gen),
		  offsetof(struct btrfs_root_backup, fs_root_level) },
		{ BTRFS_DEV_TREE_OBJECTID, offsetof(struct btrfs_root_backup, dev_root),
		  offsetof(struct btrfs_root_backup, dev_root_gen),
		  offsetof(struct btrfs_root_backup, dev_root_level) },
		{ BTRFS_CSUM_TREE_OBJECTID, offsetof(struct btrfs_root_backup, csum_root),
		  offsetof(struct btrfs_root_backup, csum_root_gen),
		  offsetof(struct btrfs_root_backup, csum_root_level) },
	};

	memset(br, 0, sizeof(*br));
	br->tree_root = cpu_to_le64(fs->tree_root.bytenr);
	br->tree_root_gen = cpu_to_le64(gen);
	br->tree_root_level = fs->tree_root.level;
	br->chunk_root = fs->super.chunk_root;
	br->chunk_root_gen = fs->super.chunk_root_generation;
	br->chunk_root_level = fs->super.chunk_root_level;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		struct root_ref r;
		u8 *base = (u8 *)br;
		__le64 v;

		if (find_root(fs, map[i].id, &r))
			continue;
		v = cpu_to_le64(r.bytenr);
		memcpy(base + map[i].off_root, &v, 8);
		v = cpu_to_le64(r.generation);
		memcpy(base + map[i].off_gen, &v, 8);
		base[map[i].off_level] = r.level;
	}
	br->total_bytes = fs->super.total_bytes;
	br->bytes_used = fs->super.bytes_used;
	br->num_devices = fs->super.num_devices;
}

/* Index of the backup slot the last commit filled (the newest), or -1. */
static int newest_backup(const struct btrfs_super_block *sb)
{
	int best = -1;
	u64 gen = 0;

	for (int i = 0; i < BTRFS_NUM_BACKUP_ROOTS; i++) {
		u64 g = le64_to_cpu(sb->super_roots[i].tree_root_gen);

		if (g > gen) {
			gen = g;
			best = i;
		}
	}
	return best;
}

static int write_super_copies(struct fs_info *fs);

static int write_supers(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct btrfs_super_block *sb = &fs->super;
	int slot, ret;

	ret = chunk_commit_super(t);
	if (ret)
		return ret;
	sb->generation = cpu_to_le64(t->transid);
	sb->root = cpu_to_le64(fs->tree_root.bytenr);
	sb->root_level = fs->tree_root.level;
	sb->bytes_used = cpu_to_le64(le64_to_cpu(sb->bytes_used) + t->bytes_used_delta);
	/*
	 * v1 space cache: cache_generation is left as it is, so it no longer
	 * matches the generation.  That is what a kernel commit that does not
	 * write the caches leaves (mount -o nospace_cache): the next mount
	 * clears and rebuilds every cache, and btrfs check skips them.  (u64)-1
	 * would not do: btrfs check takes it as "validate every cache".
	 */
	slot = (newest_backup(sb) + 1) % BTRFS_NUM_BACKUP_ROOTS;
	fill_backup_root(fs, t->transid, &sb->super_roots[slot]);
	ret = write_super_copies(fs);
	if (!ret)
		fs->generation = t->transid;
	return ret;
}

int fs_sync_devices(struct fs_info *fs)
{
	for (u32 i = 0; i < fs->nr_devs; i++)
		if (fs->devs[i].fd >= 0 && fdatasync(fs->devs[i].fd) < 0)
			return fs_err(fs, -errno, "fdatasync of %s failed: %s", fs->devs[i].path,
				      strerror(errno));
	return 0;
}

/*
 * The superblock's dev_item for device dev: the image's own is fs->super's
 * (chunk allocation keeps it up to date); another device's is its DEV_ITEM
 * in the chunk tree the superblock names, as the kernel writes it.
 */
static int dev_item_for(struct fs_info *fs, int dev, struct btrfs_dev_item *out)
{
	if (dev == 0) {
		*out = fs->super.dev_item;
		return 0;
	}
	return chunk_tree_dev_item(fs, fs->devs[dev].devid, out);
}

/*
 * Write every superblock copy that fits on one device, primary first and
 * flushed first.
 */
static int write_dev_supers(struct fs_info *fs, int dev)
{
	struct btrfs_super_block copy;
	struct btrfs_dev_item item;
	int ret = dev_item_for(fs, dev, &item);

	for (int mirror = 0; !ret && mirror < BTRFS_SUPER_MIRROR_MAX; mirror++) {
		u64 off = btrfs_sb_offset(mirror);

		if (off + BTRFS_SUPER_INFO_SIZE > fs->devs[dev].size)
			break;
		memcpy(&copy, &fs->super, sizeof(copy));
		copy.dev_item = item;
		copy.bytenr = cpu_to_le64(off);
		fs_csum(fs, (u8 *)&copy + BTRFS_CSUM_SIZE, BTRFS_SUPER_INFO_SIZE - BTRFS_CSUM_SIZE,
			copy.csum);
		ret = dev_pwrite(fs, dev, &copy, BTRFS_SUPER_INFO_SIZE, off);
		/* The primary goes first and is on disk before any mirror. */
		if (!ret && mirror == 0 && fdatasync(fs->devs[dev].fd) < 0)
			ret = fs_err(fs, -errno, "fdatasync failed: %s", strerror(errno));
	}
	if (!ret && fdatasync(fs->devs[dev].fd) < 0)
		ret = fs_err(fs, -errno, "fdatasync failed: %s", strerror(errno));
	return ret;
}

/*
 * Write the superblocks of every device, one device after the other, each
 * with its own dev_item.  Every device was flushed before (trans_commit()):
 * a cut between two devices leaves them a generation apart, and opening
 * takes the newest (kernel-shared/disk-io.c, Documentation/design.rst).
 */
static int write_super_copies(struct fs_info *fs)
{
	int ret = 0;

#ifdef EXTCRYPT_FAULT_INJECTION
	/*
	 * Test builds: after the injected allocation failure the command is
	 * failing, and a failing command writes no superblock.
	 */
	if (fault_alloc_fired()) {
		fprintf(stderr, "ERROR: fault injection: superblock write after the failed allocation\n");
		_exit(1);
	}
#endif
	for (u32 dev = 0; !ret && dev < fs->nr_devs; dev++)
		ret = write_dev_supers(fs, (int)dev);
	return ret;
}

int reset_backup_roots(struct fs_info *fs)
{
	for (int i = 0; i < BTRFS_NUM_BACKUP_ROOTS; i++)
		fill_backup_root(fs, fs->generation, &fs->super.super_roots[i]);
	return write_super_copies(fs);
}

/* ---- begin / commit / abort ------------------------------------------ */

#define MAX_TRANS_ROOTS 4096

int trans_begin(struct fs_info *fs, struct trans **out)
{
	struct trans *t;

	if (!fs->writable)
		return fs_err(fs, -EROFS, "image is open read-only");
	t = fault_calloc(1, sizeof(*t));
	if (!t)
		return fs_err(fs, -ENOMEM, "out of memory");
	t->roots = fault_calloc(MAX_TRANS_ROOTS, sizeof(*t->roots));
	if (!t->roots) {
		free(t);
		return fs_err(fs, -ENOMEM, "out of memory");
	}
	t->cap_roots = MAX_TRANS_ROOTS;
	t->fs = fs;
	t->transid = fs->generation + 1;
	/* Device space of chunks removed by the last commit may be reused from now on. */
	free(fs->freed_dev);
	fs->freed_dev = NULL;
	fs->nr_freed_dev = fs->cap_freed_dev = 0;
	*out = t;
	return 0;
}

static void trans_free(struct trans *t)
{
	for (size_t i = 0; i < t->nr_dirty; i++) {
		t->dirty[i]->dirty = false;
		tree_block_put(t->fs, t->dirty[i]);
	}
	free(t->dirty);
	space_map_free(t->space);
	chunk_state_free(t->chunks);
	ref_queue_free(t->refs);
	free(t->roots);
	free(t);
}

bool trans_is_empty(const struct trans *t)
{
	for (size_t i = 0; i < t->nr_roots; i++)
		if (t->roots[i].dirty)
			return false;
	return t->nr_dirty == 0 && !queue_pending(t);
}

void trans_abort(struct trans *t)
{
	struct fs_info *fs = t->fs;

	/* Blocks built in memory must not be served to later readers. */
	for (size_t i = 0; i < t->nr_dirty; i++) {
		struct tree_block *b = t->dirty[i];
		u64 bytenr = b->bytenr;	/* the put may evict and free b */

		b->dirty = false;
		tree_block_put(fs, b);
		cache_forget(fs, bytenr);
	}
	t->nr_dirty = 0;
	chunk_abort(t);
	fs->tree_root.bytenr = le64_to_cpu(fs->super.root);
	fs->tree_root.level = fs->super.root_level;
	fs->tree_root.generation = fs->generation;
	trans_free(t);
}

int trans_commit(struct trans *t)
{
	struct fs_info *fs = t->fs;
	struct trans_root *rt;
	int ret, rounds = 0;
	bool changed, qgroups_done = false;

	/*
	 * The superblock names the root tree's root with this generation: even a
	 * commit that changed nothing else copies that block, so its header
	 * generation matches.
	 */
	rt = trans_get_root(t, BTRFS_ROOT_TREE_OBJECTID);
	if (!rt) {
		ret = trans_root_err(t);
		goto fail;
	}
	if (rt->ref.generation != t->transid) {
		struct btrfs_key key = { 0, 0, 0 };
		struct btrfs_path p;

		ret = search_slot_mod(t, rt, &key, &p, 0);
		path_release(fs, &p);
		if (ret < 0)
			goto fail;
	}
	/* Subvolume trees: the leaves this transaction wrote, packed (ctree-mod.h). */
	for (size_t i = 0; i < t->nr_roots; i++) {
		if (!is_subvol_tree(t->roots[i].ref.objectid))
			continue;
		ret = tree_pack_new_leaves(t, &t->roots[i]);
		if (ret)
			goto fail;
	}
	do {
		if (++rounds > 64) {
			ret = fs_err(fs, -EUCLEAN, "commit did not converge");
			goto fail;
		}
		/* Chunks allocated so far get their items (chunk-alloc.h). */
		ret = chunk_flush(t);
		if (!ret)
			ret = apply_ref_queue(t);
		if (!ret)
			ret = update_root_items(t, &changed);
		if (!ret && !changed && !queue_pending(t) && !chunk_pending(t))
			ret = space_remove_empty(t, &changed);
		if (ret)
			goto fail;
		/* The extent and fs trees are final: the qgroup counts follow them. */
		if (!changed && !(t->refs && queue_pending(t)) && !chunk_pending(t) &&
		    !qgroups_done) {
			qgroups_done = true;
			ret = qgroup_trans_update(t, &changed);
			if (ret)
				goto fail;
		}
	} while (changed || (t->refs && queue_pending(t)) || chunk_pending(t));
	rt = trans_get_root(t, BTRFS_ROOT_TREE_OBJECTID);
	if (!rt) {
		ret = trans_root_err(t);
		goto fail;
	}
	fs->tree_root = rt->ref;
	fs->tree_root.generation = t->transid;
	ret = chunk_commit_prepare(t);
	if (!ret)
		ret = write_dirty_blocks(t);
	if (!ret)
		ret = fs_sync_devices(fs);	/* every device, before any superblock */
	if (ret)
		goto fail;
	ret = write_supers(t);
	if (ret)
		goto fail;
	chunk_commit_done(t);
	trans_free(t);
	return 0;
fail:
	trans_abort(t);
	return ret;
}

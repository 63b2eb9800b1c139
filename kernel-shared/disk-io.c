// SPDX-License-Identifier: GPL-2.0
/*
 * Opening an image: superblock copies, the system chunk array, the chunk
 * tree, and verified tree-block reads through a size-bounded block cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/mount.h>	/* BLKGETSIZE64; linux/fs.h would clash with fscrypt names */
#include <uuid/uuid.h>
#include "kernel-shared/disk-io.h"
#include "common/fault.h"
#include "kernel-shared/ctree.h"
#include "kernel-shared/volumes.h"
#include "kernel-shared/tree-check-image.h"
#include "crypto/csum.h"

#define DEFAULT_CACHE_BYTES (64ULL << 20)
/*
 * Evicted blocks kept for the next misses.  Reusing them keeps tree blocks
 * out of malloc, whose per-thread arenas would otherwise each hold on to
 * the blocks their thread freed: with several readers the footprint grew
 * by half the cache.
 */
#define CACHE_SPARES 64

/* ---- error texts (struct fs_errors in ctree.h) ------------------------- */

void fs_errors_init(struct fs_errors *e)
{
	pthread_mutex_init(&e->lock, NULL);
	e->first.owner = pthread_self();
	e->head = &e->first;
}

void fs_errors_free(struct fs_errors *e)
{
	struct fs_err_slot *s = e->head;

	while (s && s != &e->first) {
		struct fs_err_slot *next = s->next;

		free(s);
		s = next;
	}
	if (e->head)
		pthread_mutex_destroy(&e->lock);
	e->head = NULL;
}

/* The calling thread's slot, or NULL; lock-free (slots never move). */
static struct fs_err_slot *err_slot_find(const struct fs_errors *e)
{
	pthread_t self = pthread_self();

	for (struct fs_err_slot *s = __atomic_load_n(&e->head, __ATOMIC_ACQUIRE); s;
	     s = s->next)
		if (pthread_equal(s->owner, self))
			return s;
	return NULL;
}

/* The calling thread's text buffer, made if it has none yet. */
static char *err_slot_get(struct fs_errors *e)
{
	struct fs_err_slot *s = err_slot_find(e);

	if (s)
		return s->msg;
	pthread_mutex_lock(&e->lock);
	/* Plain malloc: the allocation-failure injector is for engine paths. */
	s = malloc(sizeof(*s));
	if (s) {
		s->owner = pthread_self();
		s->msg[0] = 0;
		s->next = e->head;
		__atomic_store_n(&e->head, s, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&e->lock);
	return s ? s->msg : e->lost;
}

const char *fs_errmsg(const struct fs_info *fs)
{
	const struct fs_err_slot *s = err_slot_find(&fs->errors);

	return s ? s->msg : fs->errors.lost;
}

void fs_clear_err(struct fs_info *fs)
{
	struct fs_err_slot *s = err_slot_find(&fs->errors);

	if (s)
		s->msg[0] = 0;
	else
		fs->errors.lost[0] = 0;
}

bool fs_is_metadump(const struct fs_info *fs)
{
	return le64_to_cpu(fs->super.flags) &
	       (BTRFS_SUPER_FLAG_METADUMP | BTRFS_SUPER_FLAG_METADUMP_V2);
}

/* Set fs_errmsg(fs) and return err; keeps error paths one line long. */
int fs_err(struct fs_info *fs, int err, const char *fmt, ...)
{
	char *buf = err_slot_get(&fs->errors);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, FS_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
	return err;
}

static bool is_power_of_2(u64 v)
{
	return v && !(v & (v - 1));
}

static const char *csum_name_or_unknown(u16 type)
{
	const char *n = csum_type_name(type);

	return n ? n : "unknown";
}

/* Names of incompat bits we refuse, for the error message. */
static void describe_unsupported(u64 bits, char *out, size_t len)
{
	static const char *const names[64] = {
		[7] = "RAID56", [12] = "ZONED", [13] = "EXTENT_TREE_V2",
		[14] = "RAID_STRIPE_TREE", [17] = "REMAP_TREE",
	};
	size_t pos = 0;

	out[0] = 0;
	for (int i = 0; i < 64 && pos < len; i++) {
		if (!(bits & (1ULL << i)))
			continue;
		pos += snprintf(out + pos, len - pos, "%s%s", pos ? " " : "",
				names[i] ? names[i] : "unknown");
		if (!names[i] && pos < len)
			pos += snprintf(out + pos, len - pos, "(bit %d)", i);
	}
}

int read_super_copy(int fd, u64 image_size, int mirror,
		    struct btrfs_super_block *sb, char *errbuf, size_t errlen)
{
	u64 off = btrfs_sb_offset(mirror);
	u8 csum[CSUM_MAX_SIZE];
	ssize_t ret;
	u16 csum_type;
	u32 sectorsize, nodesize, sys_size;

#define SB_BAD(...) (snprintf(errbuf, errlen, __VA_ARGS__), -EUCLEAN)
	if (mirror < 0 || mirror >= BTRFS_SUPER_MIRROR_MAX)
		return SB_BAD("superblock mirror %d does not exist (0..2)", mirror);
	if (off + BTRFS_SUPER_INFO_SIZE > image_size) {
		snprintf(errbuf, errlen,
			 "superblock copy %d at %llu lies beyond the end of the image (%llu bytes)",
			 mirror, (unsigned long long)off,
			 (unsigned long long)image_size);
		return -ENOENT;
	}
	ret = pread(fd, sb, BTRFS_SUPER_INFO_SIZE, off);
	if (ret != BTRFS_SUPER_INFO_SIZE) {
		snprintf(errbuf, errlen, "cannot read superblock copy %d at %llu: %s",
			 mirror, (unsigned long long)off,
			 ret < 0 ? strerror(errno) : "short read");
		return -EIO;
	}
	if (le64_to_cpu(sb->magic) != BTRFS_MAGIC)
		return SB_BAD("superblock copy %d at %llu: bad magic (not a btrfs image)",
			      mirror, (unsigned long long)off);
	csum_type = le16_to_cpu(sb->csum_type);
	if (!csum_type_size(csum_type))
		return SB_BAD("superblock copy %d: unsupported csum type %u",
			      mirror, csum_type);
	csum_compute(csum_type, (u8 *)sb + BTRFS_CSUM_SIZE,
		     BTRFS_SUPER_INFO_SIZE - BTRFS_CSUM_SIZE, csum);
	if (memcmp(csum, sb->csum, csum_type_size(csum_type)))
		return SB_BAD("superblock copy %d at %llu: checksum mismatch (%s)",
			      mirror, (unsigned long long)off,
			      csum_name_or_unknown(csum_type));
	if (le64_to_cpu(sb->bytenr) != off)
		return SB_BAD("superblock copy %d: bytenr %llu does not match its offset %llu",
			      mirror, (unsigned long long)le64_to_cpu(sb->bytenr),
			      (unsigned long long)off);
	sectorsize = le32_to_cpu(sb->sectorsize);
	nodesize = le32_to_cpu(sb->nodesize);
	if (!is_power_of_2(sectorsize) || sectorsize < 4096 || sectorsize > 65536)
		return SB_BAD("superblock copy %d: invalid sectorsize %u", mirror, sectorsize);
	if (!is_power_of_2(nodesize) || nodesize < sectorsize || nodesize > 65536)
		return SB_BAD("superblock copy %d: invalid nodesize %u", mirror, nodesize);
	sys_size = le32_to_cpu(sb->sys_chunk_array_size);
	if (sys_size > BTRFS_SYSTEM_CHUNK_ARRAY_SIZE ||
	    sys_size < sizeof(struct btrfs_disk_key) + sizeof(struct btrfs_chunk))
		return SB_BAD("superblock copy %d: invalid sys_chunk_array_size %u",
			      mirror, sys_size);
	if (le32_to_cpu(sb->stripesize) != sectorsize)
		return SB_BAD("superblock copy %d: invalid stripesize %u, expected the sectorsize %u",
			      mirror, le32_to_cpu(sb->stripesize), sectorsize);
	if (le64_to_cpu(sb->log_root) % sectorsize)
		return SB_BAD("superblock copy %d: log_root block unaligned: %llu", mirror,
			      (unsigned long long)le64_to_cpu(sb->log_root));
	if (!le64_to_cpu(sb->root) || le64_to_cpu(sb->root) % sectorsize)
		return SB_BAD("superblock copy %d: root tree bytenr %llu is not aligned",
			      mirror, (unsigned long long)le64_to_cpu(sb->root));
	if (!le64_to_cpu(sb->chunk_root) || le64_to_cpu(sb->chunk_root) % sectorsize)
		return SB_BAD("superblock copy %d: chunk root bytenr %llu is not aligned",
			      mirror, (unsigned long long)le64_to_cpu(sb->chunk_root));
	if (sb->root_level >= BTRFS_MAX_LEVEL || sb->chunk_root_level >= BTRFS_MAX_LEVEL ||
	    sb->log_root_level >= BTRFS_MAX_LEVEL)
		return SB_BAD("superblock copy %d: invalid tree level (root %u, chunk %u, log %u)",
			      mirror, sb->root_level, sb->chunk_root_level, sb->log_root_level);
	if (!le64_to_cpu(sb->total_bytes))
		return SB_BAD("superblock copy %d: total_bytes is 0", mirror);
	if (!le64_to_cpu(sb->generation))
		return SB_BAD("superblock copy %d: generation is 0", mirror);
	if (le64_to_cpu(sb->root_dir_objectid) != BTRFS_ROOT_TREE_DIR_OBJECTID)
		return SB_BAD("superblock copy %d: root_dir_objectid is %llu, expected 6",
			      mirror, (unsigned long long)le64_to_cpu(sb->root_dir_objectid));
	{
		const u8 *meta = (le64_to_cpu(sb->incompat_flags) &
				  BTRFS_FEATURE_INCOMPAT_METADATA_UUID) ?
				 sb->metadata_uuid : sb->fsid;

		if (memcmp(sb->dev_item.fsid, meta, BTRFS_FSID_SIZE))
			return SB_BAD("superblock copy %d: dev_item fsid does not match the filesystem's",
				      mirror);
	}
#undef SB_BAD
	return 0;
}

static int get_image_size(int fd, u64 *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		u64 bytes;

		if (ioctl(fd, BLKGETSIZE64, &bytes) < 0)
			return -errno;
		*size = bytes;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = st.st_size;
	return 0;
}

/* ---- block cache ---------------------------------------------------- */

static size_t cache_bucket(const struct block_cache *c, u64 bytenr)
{
	return (size_t)((bytenr >> 12) * 0x9E3779B97F4A7C15ULL >> 20) % c->nbuckets;
}

/*
 * The cache lock is taken only once readers on several threads were
 * announced (cache_set_threaded()): the write engine and most commands run
 * on one thread and need not pay for it on every block reference.
 */
static inline void cache_lock(struct block_cache *c)
{
	if (c->threaded)
		pthread_mutex_lock(&c->lock);
}

static inline void cache_unlock(struct block_cache *c)
{
	if (c->threaded)
		pthread_mutex_unlock(&c->lock);
}

void cache_set_threaded(struct fs_info *fs)
{
	fs->cache.threaded = true;
}

static int cache_init(struct block_cache *c, size_t max_blocks, size_t max_spares)
{
	c->nbuckets = 4096;
	while (c->nbuckets < max_blocks)
		c->nbuckets <<= 1;
	c->buckets = fault_calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets)
		return -ENOMEM;
	c->max_cached = max_blocks;
	c->max_spares = max_spares;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
}

static struct tree_block *cache_find(struct block_cache *c, u64 bytenr)
{
	for (struct tree_block *b = c->buckets[cache_bucket(c, bytenr)]; b; b = b->hash_next)
		if (b->bytenr == bytenr)
			return b;
	return NULL;
}

static void lru_unlink(struct block_cache *c, struct tree_block *b)
{
	if (b->lru_prev)
		b->lru_prev->lru_next = b->lru_next;
	else if (c->lru_head == b)
		c->lru_head = b->lru_next;
	if (b->lru_next)
		b->lru_next->lru_prev = b->lru_prev;
	else if (c->lru_tail == b)
		c->lru_tail = b->lru_prev;
	b->lru_prev = b->lru_next = NULL;
}

static void cache_unhash(struct block_cache *c, struct tree_block *b)
{
	struct tree_block **pp = &c->buckets[cache_bucket(c, b->bytenr)];

	while (*pp && *pp != b)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = b->hash_next;
	lru_unlink(c, b);
	c->nr_cached--;
}

/* Keep a block no longer cached as a spare, or free it. */
static void cache_spare(struct block_cache *c, struct tree_block *b)
{
	if (c->nr_spares < c->max_spares) {
		b->hash_next = c->spares;
		c->spares = b;
		c->nr_spares++;
		return;
	}
	free(b->data);
	free(b);
}

static void cache_remove(struct block_cache *c, struct tree_block *b)
{
	cache_unhash(c, b);
	free(b->data);
	free(b);
}

static void cache_trim(struct block_cache *c)
{
	while (c->nr_cached > c->max_cached && c->lru_tail) {
		struct tree_block *b = c->lru_tail;

		cache_unhash(c, b);
		cache_spare(c, b);
	}
}

/*
 * refs changes under the cache lock, except in tree_block_get(), which only
 * adds to a count its caller keeps above zero: so it is atomic, and the
 * 0 <-> 1 transitions (LRU membership) all happen under the lock.
 */
static int refs_of(const struct tree_block *b)
{
	return __atomic_load_n(&b->refs, __ATOMIC_RELAXED);
}

/* Take a reference on a cached block; the lock is held. */
static void cache_grab(struct block_cache *c, struct tree_block *b)
{
	if (__atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED) == 0)
		lru_unlink(c, b);
}

void tree_block_get(struct tree_block *b)
{
	__atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
}

void tree_block_put(struct fs_info *fs, struct tree_block *b)
{
	struct block_cache *c = &fs->cache;

	if (!b)
		return;
	cache_lock(c);
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_RELAXED) == 0) {
		/* Unreferenced: keep it cached, newest first. */
		b->lru_prev = NULL;
		b->lru_next = c->lru_head;
		if (c->lru_head)
			c->lru_head->lru_prev = b;
		c->lru_head = b;
		if (!c->lru_tail)
			c->lru_tail = b;
		cache_trim(c);
	}
	cache_unlock(c);
}

static void cache_free_all(struct block_cache *c)
{
	for (size_t i = 0; c->buckets && i < c->nbuckets; i++) {
		struct tree_block *b = c->buckets[i];

		while (b) {
			struct tree_block *next = b->hash_next;

			free(b->data);
			free(b);
			b = next;
		}
	}
	while (c->spares) {
		struct tree_block *b = c->spares;

		c->spares = b->hash_next;
		free(b->data);
		free(b);
	}
	if (c->buckets)
		pthread_mutex_destroy(&c->lock);
	free(c->buckets);
	memset(c, 0, sizeof(*c));
}

/* Hash a block in with one reference; the lock is held. */
static void cache_insert(struct block_cache *c, struct tree_block *b)
{
	__atomic_store_n(&b->refs, 1, __ATOMIC_RELAXED);
	b->hash_next = c->buckets[cache_bucket(c, b->bytenr)];
	c->buckets[cache_bucket(c, b->bytenr)] = b;
	c->nr_cached++;
}

int cache_new_block(struct fs_info *fs, u64 bytenr, struct tree_block **out)
{
	struct block_cache *c = &fs->cache;
	struct tree_block *b;

	*out = NULL;
	cache_lock(c);
	b = cache_find(c, bytenr);
	if (b) {
		if (refs_of(b)) {
			cache_unlock(c);
			return fs_err(fs, -EBUSY, "tree block %llu is reused while still referenced",
				      (unsigned long long)bytenr);
		}
		cache_remove(c, b);
	}
	b = fault_calloc(1, sizeof(*b));
	if (!b || !(b->data = fault_calloc(1, fs->nodesize))) {
		cache_unlock(c);
		free(b);
		return fs_err(fs, -ENOMEM, "out of memory");
	}
	b->bytenr = bytenr;
	b->len = fs->nodesize;
	cache_insert(c, b);
	cache_unlock(c);
	*out = b;
	return 0;
}

void cache_forget(struct fs_info *fs, u64 bytenr)
{
	struct tree_block *b;

	cache_lock(&fs->cache);
	b = cache_find(&fs->cache, bytenr);
	if (b && !refs_of(b))
		cache_remove(&fs->cache, b);
	cache_unlock(&fs->cache);
}

/* ---- tree blocks ---------------------------------------------------- */

void fs_csum(const struct fs_info *fs, const void *data, size_t len, u8 *out)
{
	csum_compute(fs->csum_type, data, len, out);
}

int read_logical(struct fs_info *fs, u64 logical, void *buf, u64 len)
{
	u8 *p = buf;

	while (len) {
		struct copy_loc loc;
		u64 n;
		int ret = -ENOENT, n_copies = num_copies(fs, logical);

		if (!n_copies)
			return fs_err(fs, -ENOENT,
				      "logical %llu is not mapped by any chunk",
				      (unsigned long long)logical);
		/* The first copy on a device that was given. */
		for (int c = 0; c < n_copies; c++) {
			ret = map_copy_run(fs, logical, len, c, &loc, &n);
			if (!ret && loc.fd >= 0)
				break;
		}
		if (!ret)
			ret = copy_pread(fs, &loc, p, n, logical);
		if (ret)
			return ret;
		p += n;
		logical += n;
		len -= n;
	}
	return 0;
}

static void key_str(const struct btrfs_key *k, char *buf, size_t len)
{
	snprintf(buf, len, "(%llu %u %llu)", (unsigned long long)k->objectid,
		 k->type, (unsigned long long)k->offset);
}

/* Structural checks of a leaf or node that need nothing but the block. */
static int check_block_layout(struct fs_info *fs, const struct tree_block *b)
{
	u32 nritems = tb_nritems(b);
	u32 data_size = b->len - sizeof(struct btrfs_header);
	struct btrfs_key prev, cur;
	char k1[64], k2[64];

	if (tb_level(b) > 0) {
		if (nritems == 0 || nritems > data_size / sizeof(struct btrfs_key_ptr))
			return fs_err(fs, -EUCLEAN,
				      "tree block %llu: invalid nritems %u for a node",
				      (unsigned long long)b->bytenr, nritems);
		for (u32 i = 0; i < nritems; i++) {
			u64 ptr = tb_node_blockptr(b, i);

			tb_node_key(b, i, &cur);
			if (!ptr || ptr % fs->sectorsize)
				return fs_err(fs, -EUCLEAN,
					      "tree block %llu: slot %u points to invalid block %llu",
					      (unsigned long long)b->bytenr, i,
					      (unsigned long long)ptr);
			if (i && btrfs_comp_keys(&prev, &cur) >= 0) {
				key_str(&prev, k1, sizeof(k1));
				key_str(&cur, k2, sizeof(k2));
				return fs_err(fs, -EUCLEAN,
					      "tree block %llu: bad key order, slot %u %s >= slot %u %s",
					      (unsigned long long)b->bytenr, i - 1, k1, i, k2);
			}
			prev = cur;
		}
		return 0;
	}
	if ((u64)nritems * sizeof(struct btrfs_item) > data_size)
		return fs_err(fs, -EUCLEAN, "tree block %llu: invalid nritems %u for a leaf",
			      (unsigned long long)b->bytenr, nritems);
	for (u32 i = 0; i < nritems; i++) {
		u32 off = tb_item_offset(b, i), size = tb_item_size(b, i);
		u32 expect_end = i ? tb_item_offset(b, i - 1) : data_size;

		tb_item_key(b, i, &cur);
		if ((u64)off + size != expect_end)
			return fs_err(fs, -EUCLEAN,
				      "tree block %llu: slot %u has data [%u, %llu), expected to end at %u",
				      (unsigned long long)b->bytenr, i, off,
				      (unsigned long long)off + size, expect_end);
		if ((u64)off < (u64)(i + 1) * sizeof(struct btrfs_item))
			return fs_err(fs, -EUCLEAN,
				      "tree block %llu: slot %u data overlaps the item headers",
				      (unsigned long long)b->bytenr, i);
		if (i && btrfs_comp_keys(&prev, &cur) >= 0) {
			key_str(&prev, k1, sizeof(k1));
			key_str(&cur, k2, sizeof(k2));
			return fs_err(fs, -EUCLEAN,
				      "tree block %llu: bad key order, slot %u %s >= slot %u %s",
				      (unsigned long long)b->bytenr, i - 1, k1, i, k2);
		}
		prev = cur;
	}
	/* The last item's data must not reach into the item headers either. */
	if (nritems && tb_item_offset(b, nritems - 1) < nritems * sizeof(struct btrfs_item))
		return fs_err(fs, -EUCLEAN, "tree block %llu: item data overlaps item headers",
			      (unsigned long long)b->bytenr);
	return 0;
}

/* Where a tree block may be: sector-aligned, inside a metadata or system chunk. */
static int check_block_address(struct fs_info *fs, u64 bytenr)
{
	const struct chunk_map *m;

	if (bytenr % fs->sectorsize)
		return fs_err(fs, -EUCLEAN, "tree block %llu: not aligned to sectorsize %u",
			      (unsigned long long)bytenr, fs->sectorsize);
	m = find_chunk(fs, bytenr);
	if (!m || bytenr + fs->nodesize > m->logical + m->length)
		return fs_err(fs, -EUCLEAN, "tree block %llu: not inside a chunk",
			      (unsigned long long)bytenr);
	if (!(m->type & (BTRFS_BLOCK_GROUP_METADATA | BTRFS_BLOCK_GROUP_SYSTEM)))
		return fs_err(fs, -EUCLEAN, "tree block %llu: lies in a data chunk",
			      (unsigned long long)bytenr);
	return 0;
}

/* A block just read: checksum, header bytenr, fsid, level, item layout. */
static int verify_block(struct fs_info *fs, struct tree_block *b, u64 bytenr)
{
	u8 csum[CSUM_MAX_SIZE];

	fs_csum(fs, b->data + BTRFS_CSUM_SIZE, fs->nodesize - BTRFS_CSUM_SIZE, csum);
	if (memcmp(csum, tb_header(b)->csum, fs->csum_size))
		return fs_err(fs, -EUCLEAN, "tree block %llu: checksum mismatch",
			      (unsigned long long)bytenr);
	if (le64_to_cpu(tb_header(b)->bytenr) != bytenr)
		return fs_err(fs, -EUCLEAN, "tree block %llu: header bytenr is %llu",
			      (unsigned long long)bytenr,
			      (unsigned long long)le64_to_cpu(tb_header(b)->bytenr));
	if (memcmp(tb_header(b)->fsid, fs->metadata_uuid, BTRFS_FSID_SIZE))
		return fs_err(fs, -EUCLEAN, "tree block %llu: fsid does not match the filesystem",
			      (unsigned long long)bytenr);
	if (tb_level(b) >= BTRFS_MAX_LEVEL)
		return fs_err(fs, -EUCLEAN, "tree block %llu: invalid level %u",
			      (unsigned long long)bytenr, tb_level(b));
	return check_block_layout(fs, b);
}

/* The parent's expectations of a verified block: level, generation, first key, owner. */
static int check_expectations(struct fs_info *fs, const struct tree_block *b, u64 bytenr,
			      const struct block_check *check)
{
	struct btrfs_key first;
	char k1[64], k2[64];

	if (!check)
		return 0;
	if (check->level >= 0 && tb_level(b) != check->level)
		return fs_err(fs, -EUCLEAN, "tree block %llu: level %u, parent expects %d",
			      (unsigned long long)bytenr, tb_level(b), check->level);
	if (check->generation && tb_generation(b) != check->generation)
		return fs_err(fs, -EUCLEAN, "tree block %llu: generation %llu, parent expects %llu",
			      (unsigned long long)bytenr, (unsigned long long)tb_generation(b),
			      (unsigned long long)check->generation);
	if (check->first_key) {
		if (tb_nritems(b) == 0)
			return fs_err(fs, -EUCLEAN, "tree block %llu: empty, parent expects a first key",
				      (unsigned long long)bytenr);
		if (tb_level(b))
			tb_node_key(b, 0, &first);
		else
			tb_item_key(b, 0, &first);
		if (btrfs_comp_keys(&first, check->first_key)) {
			key_str(&first, k1, sizeof(k1));
			key_str(check->first_key, k2, sizeof(k2));
			return fs_err(fs, -EUCLEAN, "tree block %llu: first key %s, parent expects %s",
				      (unsigned long long)bytenr, k1, k2);
		}
	}
	if (check->owner && tb_owner(b) != check->owner)
		return fs_err(fs, -EUCLEAN, "tree block %llu: owner %llu, expected %llu",
			      (unsigned long long)bytenr, (unsigned long long)tb_owner(b),
			      (unsigned long long)check->owner);
	return 0;
}

/*
 * Read copy `copy` of the tree block at bytenr (inside one chunk) into buf.
 * -ENODEV: the copy is on a missing device (not a bad copy).
 */
static int read_block_copy(struct fs_info *fs, u64 bytenr, int copy, u8 *buf)
{
	struct copy_loc loc;

	if (map_copy(fs, bytenr, fs->nodesize, copy, &loc))
		return fs_err(fs, -ENOENT, "tree block %llu is not mapped by one chunk stripe",
			      (unsigned long long)bytenr);
	return copy_pread(fs, &loc, buf, fs->nodesize, bytenr);
}

/*
 * Read the copies of a tree block in turn until one passes every check
 * (checksum, header, layout, the parent's expectations); the bad copies
 * met before it are noted (note_bad_copy()).  None good: the first copy's
 * error, as a single copy would have given.
 */
static int read_good_copy(struct fs_info *fs, struct tree_block *b, u64 bytenr,
			  const struct block_check *check)
{
	char why[MAX_COPIES][160];
	char first[FS_ERRMSG_SIZE] = "";
	bool seen_first = false;
	int n = num_copies(fs, bytenr), first_ret = -EIO;

	for (int i = 0; i < n && i < MAX_COPIES; i++) {
		int ret = read_block_copy(fs, bytenr, i, b->data);

		why[i][0] = 0;
		if (ret == -ENODEV && i + 1 < n)
			continue;	/* a missing device: not a bad copy */
		if (!ret)
			ret = verify_block(fs, b, bytenr);
		if (!ret)
			ret = check_expectations(fs, b, bytenr, check);
		if (!ret) {
			for (int j = 0; j < i; j++)
				if (why[j][0])
					note_bad_copy(fs, bytenr, j, i, why[j]);
			return 0;
		}
		if (ret == -ENOMEM)
			return ret;
		snprintf(why[i], sizeof(why[i]), "%.159s", fs_errmsg(fs));
		if (!seen_first) {
			seen_first = true;
			first_ret = ret;
			snprintf(first, sizeof(first), "%s", fs_errmsg(fs));
		}
	}
	return fs_err(fs, first_ret, "%s", first[0] ? first : "tree block has no copy");
}

/*
 * Read and verify a block (against check, when given).  A miss is read and
 * verified outside the cache lock; if another thread cached the same block
 * meanwhile, its copy wins and ours is dropped.  A cached block was verified
 * when it was read; only the expectations are checked again.
 */
static int load_block(struct fs_info *fs, u64 bytenr, const struct block_check *check,
		      struct tree_block **out)
{
	struct block_cache *c = &fs->cache;
	struct tree_block *b, *other;
	int ret;

	cache_lock(c);
	b = cache_find(c, bytenr);
	if (b) {
		cache_grab(c, b);
		cache_unlock(c);
		ret = check_expectations(fs, b, bytenr, check);
		if (ret) {
			tree_block_put(fs, b);
			return ret;
		}
		*out = b;
		return 0;
	}
	b = c->spares;
	if (b) {
		c->spares = b->hash_next;
		c->nr_spares--;
	}
	cache_unlock(c);
	if (b) {
		u8 *data = b->data;

		memset(b, 0, sizeof(*b));
		b->data = data;
	}
	ret = check_block_address(fs, bytenr);
	if (ret)
		goto fail;
	if (!b) {
		b = fault_calloc(1, sizeof(*b));
		if (!b)
			return fs_err(fs, -ENOMEM, "out of memory");
		b->data = fault_malloc(fs->nodesize);
		if (!b->data) {
			free(b);
			return fs_err(fs, -ENOMEM, "out of memory");
		}
	}
	b->bytenr = bytenr;
	b->len = fs->nodesize;
	ret = read_good_copy(fs, b, bytenr, check);
	if (ret)
		goto fail;
	cache_lock(c);
	other = cache_find(c, bytenr);
	if (other) {
		cache_grab(c, other);
		cache_spare(c, b);
		cache_unlock(c);
		ret = check_expectations(fs, other, bytenr, check);
		if (ret) {
			tree_block_put(fs, other);
			return ret;
		}
		*out = other;
		return 0;
	}
	cache_insert(c, b);
	cache_unlock(c);
	*out = b;
	return 0;
fail:
	if (b) {
		cache_lock(c);
		cache_spare(c, b);
		cache_unlock(c);
	}
	return ret;
}

int read_tree_block(struct fs_info *fs, u64 bytenr,
		    const struct block_check *check, struct tree_block **out)
{
	*out = NULL;
	return load_block(fs, bytenr, check, out);
}

int verify_tree_block_copies(struct fs_info *fs, const struct tree_block *b,
			     const struct block_check *check)
{
	int n = num_copies(fs, b->bytenr), good = -1;
	bool bad[MAX_COPIES] = { false }, rebuilt = copies_rebuilt(fs, b->bytenr);
	char why[MAX_COPIES][160];
	struct tree_block tmp = { .bytenr = b->bytenr, .len = b->len };

	if (n < 2)
		return 0;
	tmp.data = fault_malloc(fs->nodesize);
	if (!tmp.data)
		return fs_err(fs, -ENOMEM, "out of memory");
	for (int i = 0; i < n && i < MAX_COPIES; i++) {
		int ret;

		if (rebuilt && good >= 0)
			break;		/* a sound element: the rebuilt copies are not compared */
		ret = read_block_copy(fs, b->bytenr, i, tmp.data);
		if (ret == -ENODEV)
			continue;	/* a missing device: nothing to compare */
		if (!ret && !memcmp(tmp.data, b->data, fs->nodesize)) {
			if (good < 0)
				good = i;
			continue;
		}
		if (!ret)
			ret = verify_block(fs, &tmp, b->bytenr);
		if (!ret)
			ret = check_expectations(fs, &tmp, b->bytenr, check);
		if (ret == -ENOMEM) {
			free(tmp.data);
			return ret;
		}
		if (ret) {
			bad[i] = true;
			snprintf(why[i], sizeof(why[i]), "%.159s", fs_errmsg(fs));
		}
	}
	free(tmp.data);
	for (int i = 0; i < n && i < MAX_COPIES; i++)
		if (bad[i])
			note_bad_copy(fs, b->bytenr, i, good < 0 ? 0 : good, why[i]);
	fs_clear_err(fs);
	return 0;
}

int read_tree_block_raw(struct fs_info *fs, u64 bytenr, struct tree_block **out)
{
	*out = NULL;
	return load_block(fs, bytenr, NULL, out);
}

/* ---- open / close ----------------------------------------------------- */

static int setup_from_super(struct fs_info *fs)
{
	struct btrfs_super_block *sb = &fs->super;
	u64 unsupported;
	char names[256];

	fs->generation = le64_to_cpu(sb->generation);
	fs->nodesize = le32_to_cpu(sb->nodesize);
	fs->sectorsize = le32_to_cpu(sb->sectorsize);
	fs->csum_type = le16_to_cpu(sb->csum_type);
	fs->csum_size = csum_type_size(fs->csum_type);
	fs->incompat = le64_to_cpu(sb->incompat_flags);
	fs->compat_ro = le64_to_cpu(sb->compat_ro_flags);
	memcpy(fs->fsid, sb->fsid, BTRFS_FSID_SIZE);
	memcpy(fs->metadata_uuid,
	       (fs->incompat & BTRFS_FEATURE_INCOMPAT_METADATA_UUID) ? sb->metadata_uuid : sb->fsid,
	       BTRFS_FSID_SIZE);
	unsupported = fs->incompat & ~EXTCRYPT_INCOMPAT_SUPPORTED;
	if (unsupported) {
		describe_unsupported(unsupported, names, sizeof(names));
		return fs_err(fs, -EOPNOTSUPP, "unsupported incompat features 0x%llx (%s)",
			      (unsigned long long)unsupported, names);
	}
	fs->chunk_root.objectid = BTRFS_CHUNK_TREE_OBJECTID;
	fs->chunk_root.bytenr = le64_to_cpu(sb->chunk_root);
	fs->chunk_root.level = sb->chunk_root_level;
	fs->chunk_root.generation = le64_to_cpu(sb->chunk_root_generation);
	fs->tree_root.objectid = BTRFS_ROOT_TREE_OBJECTID;
	fs->tree_root.bytenr = le64_to_cpu(sb->root);
	fs->tree_root.level = sb->root_level;
	fs->tree_root.generation = fs->generation;
	return 0;
}

/* One more device of the filesystem (--device): same fsid, a devid not seen yet. */
static int open_other_device(struct fs_info *fs, const char *path, int mirror)
{
	struct btrfs_super_block *sb = fault_malloc(sizeof(*sb));
	struct fs_device d = { .path = path };
	char why[FS_ERRMSG_SIZE] = "", fsid[37], want[37];
	int ret, other;

	if (!sb)
		return fs_err(fs, -ENOMEM, "out of memory");
	d.fd = open(path, (fs->writable_open ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (d.fd < 0) {
		ret = fs_err(fs, -errno, "cannot open device %s: %s", path, strerror(errno));
		goto out;
	}
	ret = get_image_size(d.fd, &d.size);
	if (ret) {
		fs_err(fs, ret, "device %s is not a regular file or block device", path);
		goto out;
	}
	ret = read_super_copy(d.fd, d.size, mirror, sb, why, sizeof(why));
	if (ret) {
		fs_err(fs, ret == -ENOENT ? -EUCLEAN : ret, "device %s: %s", path,
		       why[0] ? why : "too small to hold a btrfs superblock");
		ret = ret == -ENOENT ? -EUCLEAN : ret;
		goto out;
	}
	if (memcmp(sb->fsid, fs->fsid, BTRFS_FSID_SIZE)) {
		uuid_unparse(sb->fsid, fsid);
		uuid_unparse(fs->fsid, want);
		ret = fs_err(fs, -EUCLEAN, "device %s belongs to another filesystem (fsid %s, not %s)",
			     path, fsid, want);
		goto out;
	}
	d.devid = le64_to_cpu(sb->dev_item.devid);
	d.generation = le64_to_cpu(sb->generation);
	memcpy(d.uuid, sb->dev_item.uuid, BTRFS_UUID_SIZE);
	other = fs_dev_index(fs, d.devid);
	if (other >= 0) {
		ret = fs_err(fs, -EINVAL, "device %s is devid %llu, given already as %s", path,
			     (unsigned long long)d.devid, fs->devs[other].path);
		goto out;
	}
	/*
	 * Devices may differ by a commit: a crash between two devices'
	 * superblock writes (Documentation/design.rst, "Several devices").
	 * The newest superblock describes the filesystem, as in the kernel;
	 * the trees it names were on every device before any superblock.
	 */
	if (d.generation > fs->generation) {
		struct btrfs_dev_item own = fs->super.dev_item;

		memcpy(&fs->super, sb, sizeof(*sb));
		fs->super.dev_item = own;	/* fs->super describes devs[0] */
		ret = setup_from_super(fs);
		if (ret)
			goto out;
	}
	ret = fs_add_dev(fs, &d) ? fs_err(fs, -ENOMEM, "out of memory") : 0;
	if (!ret)
		d.fd = -1;	/* fs owns it now */
out:
	if (d.fd >= 0)
		close(d.fd);
	free(sb);
	return ret;
}

int chunk_tree_dev_item(struct fs_info *fs, u64 devid, struct btrfs_dev_item *out)
{
	struct root_ref r;
	int ret = find_root(fs, BTRFS_CHUNK_TREE_OBJECTID, &r);

	return ret ? ret : dev_item_in(fs, &r, devid, out);
}

int dev_item_in(struct fs_info *fs, const struct root_ref *chunk_root, u64 devid,
		struct btrfs_dev_item *out)
{
	struct key_iter it;
	int ret = key_iter_type(&it, fs, chunk_root, BTRFS_DEV_ITEMS_OBJECTID, BTRFS_DEV_ITEM_KEY,
				devid);

	if (ret == 0 && (it.key.offset != devid || it.size < sizeof(*out)))
		ret = 1;
	if (ret == 0)
		memcpy(out, it.ptr, sizeof(*out));
	key_iter_release(&it);
	if (ret > 0)
		ret = fs_err(fs, -EUCLEAN, "the chunk tree has no device item for devid %llu",
			     (unsigned long long)devid);
	return ret;
}

/*
 * When the image's own superblock is a commit behind another device's (a
 * cut between the devices' superblock writes), so is its copy of its
 * device item: take the item from the chunk tree the newest superblock
 * names, which is what the next commit writes there (as the kernel does).
 * A missing item is left for check to report.
 */
static int refresh_own_dev_item(struct fs_info *fs)
{
	struct btrfs_dev_item item;
	int ret;

	if (fs->nr_devs < 2 || fs->devs[0].generation >= fs->generation)
		return 0;
	ret = chunk_tree_dev_item(fs, fs->devs[0].devid, &item);
	if (ret == -EUCLEAN) {
		fs_clear_err(fs);
		return 0;
	}
	if (!ret)
		fs->super.dev_item = item;
	return ret;
}

/* devs[0] (the image), then every --device. */
static int open_devices(struct fs_info *fs, const struct open_args *args, int mirror)
{
	struct fs_device d = { .devid = le64_to_cpu(fs->super.dev_item.devid), .fd = fs->fd,
			       .path = fs->path, .size = fs->image_size,
			       .generation = fs->generation };

	memcpy(d.uuid, fs->super.dev_item.uuid, BTRFS_UUID_SIZE);
	if (fs_add_dev(fs, &d))
		return fs_err(fs, -ENOMEM, "out of memory");
	for (int i = 0; args && i < args->nr_devices; i++) {
		int ret = open_other_device(fs, args->devices[i], mirror);

		if (ret)
			return ret;
	}
	return 0;
}

int open_image(const char *path, const struct open_args *args,
	       struct fs_info **out, char *errbuf)
{
	struct fs_info *fs;
	size_t cache_bytes = args && args->cache_bytes ? args->cache_bytes : DEFAULT_CACHE_BYTES;
	size_t spares = CACHE_SPARES;
	int mirror = args && args->super_mirror >= 0 ? args->super_mirror : 0;
	int ret;

	*out = NULL;
	fs = fault_calloc(1, sizeof(*fs));
	if (!fs) {
		if (errbuf)
			snprintf(errbuf, FS_ERRMSG_SIZE, "out of memory");
		return -ENOMEM;
	}
	fs_errors_init(&fs->errors);
	pthread_mutex_init(&fs->bad.lock, NULL);
	u64map_init(&fs->bad.seen, 1);
	fs->path = path;
	fs->writable_open = args && args->writable;
	fs->fd = open(path, (args && args->writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fs->fd < 0) {
		ret = fs_err(fs, -errno, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	ret = get_image_size(fs->fd, &fs->image_size);
	if (ret) {
		fs_err(fs, ret, "%s is not a regular file or block device", path);
		goto fail;
	}
	fs->super_mirror = mirror;
	ret = read_super_copy(fs->fd, fs->image_size, mirror, &fs->super,
			      fs->errors.first.msg, FS_ERRMSG_SIZE);
	if (ret == -ENOENT && mirror == 0)
		fs_err(fs, ret, "%s is too small to hold a btrfs superblock (%llu bytes)",
		       path, (unsigned long long)fs->image_size);
	if (ret)
		goto fail;
	ret = setup_from_super(fs);
	if (!ret)
		ret = open_devices(fs, args, mirror);
	if (ret)
		goto fail;
#ifdef EXTCRYPT_FAULT_INJECTION
	/*
	 * Test builds: EXTCRYPT_CACHE_BYTES sets the cache size, and blocks are
	 * freed when evicted, never kept as spares.  A cache of a few blocks
	 * evicts on nearly every put, so a block used after its last put is
	 * freed memory, which ASan reports (tests/test_tiny_cache.py).
	 */
	const char *cache_env = getenv("EXTCRYPT_CACHE_BYTES");

	if (cache_env) {
		cache_bytes = strtoull(cache_env, NULL, 0);
		spares = 0;
	}
#endif
	ret = cache_init(&fs->cache, cache_bytes / fs->nodesize, spares);
	if (ret) {
		fs_err(fs, ret, "out of memory");
		goto fail;
	}
	ret = load_chunk_map(fs);
	if (!ret)
		ret = check_missing_devices(fs);
	if (!ret)
		ret = check_device_count(fs);
	if (!ret)
		ret = refresh_own_dev_item(fs);
	/* A command that writes builds on nothing the kernel's tree-checker refuses. */
	if (!ret && args && args->writable)
		ret = args->verify_follows ? tree_check_super(fs) : tree_check_image(fs);
	if (ret)
		goto fail;
	*out = fs;
	return 0;
fail:
	if (errbuf)
		snprintf(errbuf, FS_ERRMSG_SIZE, "%s",
			 fs_errmsg(fs)[0] ? fs_errmsg(fs) : strerror(ret < 0 ? -ret : EUCLEAN));
	close_image(fs);
	return ret < 0 ? ret : -EUCLEAN;
}

void close_image(struct fs_info *fs)
{
	if (!fs)
		return;
	cache_free_all(&fs->cache);
	free(fs->chunks);
	free(fs->freed_dev);
	free(fs->emptied_bgs);
	free(fs->drain_bgs);
	if (fs->fd >= 0)
		close(fs->fd);
	for (u32 i = 1; i < fs->nr_devs; i++)
		if (fs->devs[i].fd >= 0)
			close(fs->devs[i].fd);
	free(fs->devs);
	free(fs->dev_fds);
	fs_errors_free(&fs->errors);
	bad_copies_free(fs);
	pthread_mutex_destroy(&fs->bad.lock);
	free(fs);
}

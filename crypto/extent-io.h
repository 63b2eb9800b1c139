/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The data pipeline (Documentation/design.rst section 2): the only code path that reads or
 * writes file data.
 *
 *   read:  pread a run -> process(stored bytes)  (verify csums) -> decrypt -> consumer
 *   write: producer -> encrypt -> process(stored bytes)  (compute csums) -> pwrite
 *
 * A job may do both halves (read an extent, re-encrypt it, write it
 * elsewhere), only the read half (check, decrypt, restore) or only the write
 * half (data from memory or a producer).  "Stored bytes" are what is on
 * disk: the ciphertext of an encrypted extent, the data of a plain one.  Data
 * csums cover stored bytes (Documentation/format.rst section 7), so process always sees
 * them: after encryption on write, before decryption on read.
 *
 * The pipeline knows nothing about btrfs: the caller maps each disk extent to
 * jobs (physical offset in an image fd, logical address, DUN of the first
 * data unit, extent nonce or none) and supplies csums or a csum sink through
 * process and its per-side priv.  extent_io_csum_process() is the process
 * callback for both directions, and the only one in the tree.
 *
 * Work is cut into chunks of at most chunk_size bytes, shared between
 * worker threads.  A chunk is a piece of one job, or several whole jobs that
 * follow each other in the jobs array and on disk (destinations contiguous
 * for writes, else sources); it is written with one pwrite and read with one
 * pread per contiguous run of sources.  Callbacks still see one job's range
 * at a time.  Memory is bounded: one chunk buffer per worker, whatever
 * the amount of data.  Each worker caches the expanded XTS contexts of the
 * last extents it used (nonce -> key schedule), so a key is derived once per
 * extent per worker, not per chunk.
 *
 * Threads: callbacks (process, produce, consume, mismatch) run on worker
 * threads, several at once and in no particular order of chunks, and must
 * be thread-safe; they get disjoint ranges.  The progress callback runs on
 * the thread that called extent_io_run().  One run at a time per extent_io.
 * Data is not fdatasync()ed: durability is the caller's (transaction's) job.
 */
#ifndef EXTCRYPT_EXTENT_IO_H
#define EXTCRYPT_EXTENT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "crypto/fscrypt-keys.h"

struct extent_io;
struct extent_io_job;

/*
 * The process callback, called once per chunk with the stored bytes:
 *   buf, len     the stored bytes of the chunk (len is a multiple of the unit size)
 *   logical      logical address of buf[0] (side's logical + offset in the job)
 *   priv         the side's priv (job->src.priv on read, job->dst.priv on write)
 * Returns 0 to go on; > 0 to drop this chunk (read: not decrypted, consumed
 * or written; write: not written) and carry on with the others, counted in
 * the stats; < 0 (negative errno) to stop the run, which then returns it.
 * A dropped chunk is the whole buffer passed in, which may hold good units
 * too: a caller that wants them (e.g. from another mirror) runs the range
 * again; the callback itself sees and can report each unit.
 */
typedef int (*extent_io_process_fn)(struct extent_io *io, const uint8_t *buf,
				    uint64_t logical, uint32_t len, void *priv);

/*
 * Producer (write half without a read half and without job->mem): fill
 * buf[0..len) with the plaintext at byte off of the job.  Consumer (read
 * half without a write half and without job->mem): take the plaintext at
 * byte off of the job.  Both return 0 or a negative errno (stops the run).
 */
typedef int (*extent_io_produce_fn)(struct extent_io *io, const struct extent_io_job *job,
				    uint64_t off, uint8_t *buf, uint32_t len, void *priv);
typedef int (*extent_io_consume_fn)(struct extent_io *io, const struct extent_io_job *job,
				    uint64_t off, const uint8_t *buf, uint32_t len, void *priv);

/* One side of a job: where stored bytes are read from or written to. */
struct extent_io_loc {
	uint64_t physical;	/* byte offset in the fd */
	uint64_t logical;	/* logical address of the first byte */
	uint64_t dun;		/* DUN of the first data unit ((L - disk_bytenr) / sectorsize) */
	const uint8_t *nonce;	/* extent nonce (FSCRYPT_NONCE_SIZE bytes); NULL: plain */
	void *priv;		/* handed to process for this side */
	/*
	 * Master key of this side's nonce; NULL: key_id, else params.key.  A
	 * rekey job reads under the old key and writes under the new one.
	 */
	const struct fscrypt_master_key *key;
	/*
	 * Without key: the identifier of the master key (the extent context's
	 * FSCRYPT_KEY_IDENTIFIER_SIZE bytes), looked up in params.keys and
	 * params.key, so that each extent is read with the key its context
	 * names (an image cut in the middle of a rekey has extents under two).
	 * NULL: params.key.
	 */
	const uint8_t *key_id;
	/*
	 * Index in params.fds (0 without them: params.fd, and for writes
	 * params.dst_fd when that is set).
	 */
	uint32_t dev;
	/*
	 * Reads only: 0 reads the stored bytes at physical; k > 0 has
	 * params.rebuild produce them (a RAID5/6 copy rebuilt from parity:
	 * kernel-shared/volumes.h), and physical and dev are not used.
	 */
	int rebuild;
};

/* Copies of each written byte a job may have: RAID1C4 (kernel-shared/volumes.h). */
#define EXTENT_IO_MAX_COPIES	4

/* Another destination of a job's writes: the same stored bytes, elsewhere. */
struct extent_io_copy {
	uint64_t physical;
	uint32_t dev;		/* as extent_io_loc.dev */
};

#define EXTENT_IO_READ	(1U << 0)	/* read src: pread, process, decrypt */
#define EXTENT_IO_WRITE	(1U << 1)	/* write dst: encrypt, process, pwrite */

struct extent_io_job {
	uint64_t len;		/* bytes; a non-zero multiple of the unit size */
	unsigned int flags;	/* EXTENT_IO_READ and/or EXTENT_IO_WRITE */
	struct extent_io_loc src;	/* with EXTENT_IO_READ */
	struct extent_io_loc dst;	/* with EXTENT_IO_WRITE */
	/*
	 * Plaintext memory of len bytes: the source when the job has no read
	 * half, the destination when it has no write half.  NULL: use the
	 * producer or consumer; a read-only job with neither only runs process
	 * (verification, no decryption).
	 */
	uint8_t *mem;
	void *priv;		/* handed to produce and consume */
	/*
	 * Writes: the stored bytes also go to these (the other copies of a
	 * DUP, RAID1*, RAID10 range), after dst.  They are computed once
	 * (encryption, process) and written once per copy; process sees dst's
	 * logical.  Each copy must be contiguous for the job's len.
	 */
	struct extent_io_copy more[EXTENT_IO_MAX_COPIES - 1];
	uint32_t nr_more;
};

struct extent_io_params {
	int fd;			/* image: source of reads, and of writes if dst_fd < 0 */
	int dst_fd;		/* destination of writes; -1: fd */
	/*
	 * The devices of a multi-device filesystem (src.dev, dst.dev and
	 * more[].dev index them; fds[0] is normally fd); NULL: every read
	 * is from fd, every write to dst_fd or fd.
	 */
	const int *fds;
	uint32_t nfds;
	uint32_t unit_size;	/* data unit (sectorsize): a power of two, 16..64 KiB */
	unsigned int threads;	/* workers; 0: online CPUs */
	size_t chunk_size;	/* bytes per I/O, rounded down to units; 0: EXTENT_IO_DEFAULT_CHUNK */
	unsigned int key_cache;	/* cached extent keys per worker; 0: EXTENT_IO_DEFAULT_KEY_CACHE */
	/*
	 * Master key for jobs with a nonce whose side names none (NULL: plain
	 * jobs or jobs with their own keys only); not copied, keep it alive.
	 */
	const struct fscrypt_master_key *key;
	/*
	 * The set of master keys a side's key_id is looked up in (nr_keys of
	 * them, besides key); not copied, keep the array and the keys alive.
	 */
	const struct fscrypt_master_key *const *keys;
	size_t nr_keys;
	enum fscrypt_profile profile;	/* which HKDF context derives extent keys */
	int contents_mode;	/* FSCRYPT_MODE_AES_256_XTS (the only one implemented) */
	extent_io_process_fn process;	/* NULL: none */
	extent_io_produce_fn produce;
	extent_io_consume_fn consume;
	/* Called about every 250 ms and once at the end of a run; NULL: none. */
	void (*progress)(uint64_t done, uint64_t total, void *arg);
	void *progress_arg;
	/*
	 * The stored bytes of a side with rebuild k: len bytes at logical
	 * into buf; 0 or a negative errno (stops the run).  NULL: such jobs
	 * are refused.
	 */
	int (*rebuild)(void *arg, uint64_t logical, int k, uint8_t *buf, uint32_t len);
	void *rebuild_arg;
	/* Write function (fault-injection hook); NULL: pwrite(2). */
	ssize_t (*pwrite_fn)(int fd, const void *buf, size_t count, off_t offset);
	/*
	 * After each write, start writing it back to the disk without waiting
	 * (sync_file_range(SYNC_FILE_RANGE_WRITE)): the workers pay for the
	 * writeback while the caller goes on, and its later fdatasync() finds
	 * little left to do.  A hint only: durability stays the caller's.
	 */
	bool start_writeback;
};

#define EXTENT_IO_DEFAULT_CHUNK		(1U << 20)
#define EXTENT_IO_DEFAULT_KEY_CACHE	16

struct extent_io_stats {
	uint64_t bytes_read;		/* stored bytes read */
	uint64_t bytes_written;		/* stored bytes written */
	uint64_t bytes_decrypted;
	uint64_t bytes_encrypted;
	uint64_t chunks_dropped;	/* process returned > 0 */
	uint64_t keys_derived;		/* key cache misses */
};

/*
 * Create a pipeline and start its workers.  Returns 0 and *out, -EINVAL for
 * bad parameters (unit size, mode, chunk smaller than a unit), -ENOMEM, or
 * a negative errno from pthread_create.
 */
int extent_io_new(struct extent_io **out, const struct extent_io_params *params);

/*
 * Stop the workers, wipe the key cache and chunk buffers, free.  NULL is
 * fine.  The chunk buffers, through which plaintext passes, are secret
 * memory (common/key-input.h: locked where the limits allow, not dumped).
 */
void extent_io_free(struct extent_io *io);

/*
 * Run njobs jobs and wait for all of them.  Returns 0 when every chunk went
 * through (chunks dropped by process count as gone through); -EINVAL for a
 * malformed job, -ENOKEY for a side whose key_id names no key given
 * (nothing was done then); -EIO for a short read (the image
 * ends early) or a failed read/write (errno of the call otherwise); the first
 * negative value returned by a callback; or an error from key derivation.
 * After an error no new chunks start, but chunks in flight finish, so some
 * writes may have been done.
 */
int extent_io_run(struct extent_io *io, const struct extent_io_job *jobs, size_t njobs);

/*
 * The same in two halves: extent_io_start() hands the jobs to the workers
 * and returns at once (with a single-thread pipeline it does the work
 * itself); extent_io_wait() waits for them and returns what extent_io_run()
 * would have.  jobs, and everything they point to, must stay valid until
 * then.  Between the two the caller's thread is free, but must not start
 * another run on this extent_io (-EBUSY).  Waiting with no run started
 * returns 0.
 */
int extent_io_start(struct extent_io *io, const struct extent_io_job *jobs, size_t njobs);
int extent_io_wait(struct extent_io *io);

/* Accumulated statistics since extent_io_new(). */
void extent_io_get_stats(struct extent_io *io, struct extent_io_stats *st);
/* The data unit size, the number of workers. */
uint32_t extent_io_unit_size(const struct extent_io *io);
unsigned int extent_io_threads(const struct extent_io *io);

/*
 * Ready-made csums for process (priv = struct extent_io_csums *): covers
 * count units from logical; each chunk passed to it must lie inside.  With
 * expected set it verifies each data unit of the chunk against its csum;
 * otherwise it stores the csums into out.  Several jobs may share one
 * struct when their logical ranges fall inside it.
 */
struct extent_io_csums {
	int type;			/* CSUM_* of crypto/csum.h */
	uint64_t logical;		/* logical address of the first covered unit */
	uint64_t count;			/* number of units covered */
	const uint8_t *expected;	/* verify: count packed digests */
	uint8_t *out;			/* compute: count packed digests */
	/*
	 * Verify only, optional: one byte per unit, 0 for a unit without a
	 * csum (not verified).  Computing fills every unit's digest.
	 */
	const uint8_t *present;
	/*
	 * Verify only: called for every data unit whose csum differs, with
	 * the unit's logical address, serialised across threads.  Return 0 to
	 * go on (the chunk is dropped: nothing of it is decrypted, consumed or
	 * written) or a negative errno to stop the run.  NULL: stop the run
	 * with -EBADMSG at the first mismatch.
	 */
	int (*mismatch)(struct extent_io *io, uint64_t logical, const uint8_t *found,
			const uint8_t *expected, void *arg);
	void *arg;
};

/*
 * The csum process callback, the only one (Documentation/design.rst section
 * 2): restore, check, the encrypt/decrypt engine and data/read.c all use it.
 * priv is a struct extent_io_csums, or NULL for a job without csums
 * (nothing to do).  Returns 0, 1 if some unit mismatched and mismatch
 * returned 0, -EBADMSG (mismatch without a handler), -ERANGE for a chunk
 * outside the covered range (or an unknown csum type), or mismatch's
 * negative return.
 */
int extent_io_csum_process(struct extent_io *io, const uint8_t *buf, uint64_t logical,
			   uint32_t len, void *priv);

#endif

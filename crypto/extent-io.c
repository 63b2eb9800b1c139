// SPDX-License-Identifier: GPL-2.0
/*
 * Worker pool: the workers live as long as the extent_io and pick chunks
 * from a shared cursor over the job list under one mutex; everything else a
 * worker touches (its buffer, its key cache) is its own.  With one thread
 * the caller's thread does the work and no thread is started.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common/fault.h"
#include "crypto/csum.h"
#include "crypto/extent-io.h"
#include "crypto/xts.h"
#include "common/key-input.h"
#include "common/utils.h"

struct key_slot {
	const struct fscrypt_master_key *mk;
	uint8_t nonce[FSCRYPT_NONCE_SIZE];
	struct xts_ctx *xts;	/* NULL: empty slot */
	uint64_t last_use;
};

struct worker {
	struct extent_io *io;
	pthread_t thread;
	bool started;
	uint8_t *buf;		/* chunk_size bytes */
	struct key_slot *slots;
	uint64_t tick;
	uint64_t seen_gen;
	struct extent_io_stats st;
};

struct extent_io {
	struct extent_io_params p;
	size_t chunk;
	unsigned int nworkers;
	struct worker *workers;

	pthread_mutex_t lock;
	pthread_cond_t work_cv;		/* a run starts, or shutdown */
	pthread_cond_t done_cv;		/* a worker finished its part of a run */
	pthread_mutex_t report_lock;	/* serialises mismatch reports */
	bool shutdown;

	/* The current run, under lock. */
	uint64_t gen;
	const struct extent_io_job *jobs;
	size_t njobs;
	size_t next_job;
	uint64_t next_off;
	unsigned int busy;		/* workers still in this run */
	bool running;			/* a run is set up and not yet finished (caller's thread only) */
	int error;
	uint64_t done_bytes;
	uint64_t total_bytes;

	struct extent_io_stats st;	/* folded in from the workers after each run */
};

static int pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pread(fd, buf, len, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno ? -errno : -EIO;
		}
		if (r == 0)
			return -EIO;	/* the image ends inside the extent */
		buf += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int pwrite_full(struct extent_io *io, int fd, const uint8_t *buf, size_t len,
		       uint64_t off)
{
	ssize_t (*wr)(int, const void *, size_t, off_t) = io->p.pwrite_fn ? io->p.pwrite_fn : pwrite;

	while (len) {
		ssize_t r = wr(fd, buf, len, (off_t)off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno ? -errno : -EIO;
		}
		if (r == 0)
			return -EIO;
		buf += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* The worker's XTS context for an extent nonce under mk, deriving it on a miss. */
static int get_xts(struct worker *w, const struct fscrypt_master_key *mk, const uint8_t *nonce,
		   struct xts_ctx **out)
{
	struct extent_io *io = w->io;
	unsigned int n = io->p.key_cache;
	struct key_slot *victim = &w->slots[0];
	uint8_t key[FSCRYPT_MAX_MODE_KEY_SIZE];
	unsigned int key_size;
	int ret;

	w->tick++;
	for (unsigned int i = 0; i < n; i++) {
		struct key_slot *s = &w->slots[i];

		if (s->xts && s->mk == mk && memcmp(s->nonce, nonce, FSCRYPT_NONCE_SIZE) == 0) {
			s->last_use = w->tick;
			*out = s->xts;
			return 0;
		}
		if (!s->xts || (victim->xts && s->last_use < victim->last_use))
			victim = s;
	}

	ret = fscrypt_derive_extent_key(mk, io->p.profile, io->p.contents_mode,
					nonce, key, &key_size);
	if (!ret) {
		if (victim->xts)
			ret = xts_ctx_set_key(victim->xts, key, key_size);
		else
			ret = xts_ctx_new(&victim->xts, key, key_size);
	}
	explicit_bzero(key, sizeof(key));
	if (ret) {
		/* A failed rekey leaves the slot unusable: drop it. */
		xts_ctx_free(victim->xts);
		victim->xts = NULL;
		return ret;
	}
	memcpy(victim->nonce, nonce, FSCRYPT_NONCE_SIZE);
	victim->mk = mk;
	victim->last_use = w->tick;
	w->st.keys_derived++;
	*out = victim->xts;
	return 0;
}

/* The master key of a side: its own, the one its key_id names, or params.key. */
static const struct fscrypt_master_key *loc_key(const struct extent_io_params *p,
						const struct extent_io_loc *loc)
{
	const struct fscrypt_master_key *mk;

	if (loc->key || !loc->key_id)
		return loc->key ? loc->key : p->key;
	mk = fscrypt_key_find(p->keys, p->nr_keys, loc->key_id);
	return mk ? mk : fscrypt_key_find(&p->key, 1, loc->key_id);
}

static int crypt_chunk(struct worker *w, const struct extent_io_loc *loc, uint64_t off,
		       uint8_t *buf, uint32_t len, bool enc)
{
	uint32_t unit = w->io->p.unit_size;
	struct xts_ctx *xts;
	int ret;

	ret = get_xts(w, loc_key(&w->io->p, loc), loc->nonce, &xts);
	if (ret)
		return ret;
	if (enc) {
		ret = xts_encrypt(xts, loc->dun + off / unit, buf, buf, unit, len / unit);
		w->st.bytes_encrypted += len;
	} else {
		ret = xts_decrypt(xts, loc->dun + off / unit, buf, buf, unit, len / unit);
		w->st.bytes_decrypted += len;
	}
	return ret;
}

/*
 * A chunk: one piece of a job, or several whole small jobs that follow each
 * other on disk (destinations contiguous when writing, else sources), read
 * with one system call per contiguous run and written with one.  Small files are
 * most of an image: ganging them saves calls and lock round trips, and
 * leaves large page-cache folios behind.  Crypto and csums stay per job.
 */
#define GANG_MAX 256

struct piece {
	const struct extent_io_job *job;
	uint64_t off;		/* in the job */
	uint32_t len;
	uint32_t pos;		/* in the worker's buffer */
	bool dropped;		/* process said to skip it */
};

/* The middle of a piece, between the read and the write; 0 or a negative errno. */
static int do_piece(struct worker *w, struct piece *pc)
{
	struct extent_io *io = w->io;
	const struct extent_io_params *p = &io->p;
	const struct extent_io_job *job = pc->job;
	bool rd = job->flags & EXTENT_IO_READ, wr = job->flags & EXTENT_IO_WRITE;
	bool want_plain = wr || job->mem || p->consume;
	uint8_t *buf = w->buf + pc->pos;
	int ret;

	if (rd) {
		if (p->process) {
			ret = p->process(io, buf, job->src.logical + pc->off, pc->len, job->src.priv);
			if (ret < 0)
				return ret;
			if (ret > 0) {
				w->st.chunks_dropped++;
				pc->dropped = true;
				return 0;
			}
		}
		if (job->src.nonce && want_plain) {
			ret = crypt_chunk(w, &job->src, pc->off, buf, pc->len, false);
			if (ret)
				return ret;
		}
	} else if (job->mem) {
		memcpy(buf, job->mem + pc->off, pc->len);
	} else {
		ret = p->produce(io, job, pc->off, buf, pc->len, job->priv);
		if (ret)
			return ret;
	}
	if (wr) {
		if (job->dst.nonce) {
			ret = crypt_chunk(w, &job->dst, pc->off, buf, pc->len, true);
			if (ret)
				return ret;
		}
		if (p->process) {
			ret = p->process(io, buf, job->dst.logical + pc->off, pc->len, job->dst.priv);
			if (ret < 0)
				return ret;
			if (ret > 0) {
				w->st.chunks_dropped++;
				pc->dropped = true;
			}
		}
	} else if (job->mem) {
		memcpy(job->mem + pc->off, buf, pc->len);
	} else if (p->consume) {
		ret = p->consume(io, job, pc->off, buf, pc->len, job->priv);
		if (ret)
			return ret;
	}
	return 0;
}

/* Write len bytes of a chunk at `at` of device dev (dst_fd, or params.fds[dev], or fd). */
static int write_run(struct worker *w, uint32_t dev, const uint8_t *buf, uint32_t len,
		     uint64_t at)
{
	const struct extent_io_params *p = &w->io->p;
	int fd = p->dst_fd >= 0 ? p->dst_fd : p->fds ? p->fds[dev] : p->fd;
	int ret = pwrite_full(w->io, fd, buf, len, at);

	if (ret)
		return ret;
	if (p->start_writeback)
		sync_file_range(fd, (off_t)at, (off_t)len, SYNC_FILE_RANGE_WRITE);
	w->st.bytes_written += len;
	return 0;
}

/* One chunk of n pieces: returns 0 or a negative errno. */
static int do_chunk(struct worker *w, struct piece *pcs, unsigned int n)
{
	struct extent_io *io = w->io;
	const struct extent_io_params *p = &io->p;
	int ret;

	/* Read each run of reading pieces whose sources follow each other. */
	for (unsigned int i = 0; i < n;) {
		unsigned int j = i;
		uint32_t len;

		if (!(pcs[i].job->flags & EXTENT_IO_READ)) {
			i++;
			continue;
		}
		if (pcs[i].job->src.rebuild) {
			const struct extent_io_job *job = pcs[i].job;

			ret = p->rebuild(p->rebuild_arg, job->src.logical + pcs[i].off,
					 job->src.rebuild, w->buf + pcs[i].pos, pcs[i].len);
			if (ret)
				return ret;
			w->st.bytes_read += pcs[i].len;
			i++;
			continue;
		}
		while (j + 1 < n && (pcs[j + 1].job->flags & EXTENT_IO_READ) &&
		       !pcs[j + 1].job->src.rebuild &&
		       pcs[j].job->src.dev == pcs[j + 1].job->src.dev &&
		       pcs[j].job->src.physical + pcs[j].off + pcs[j].len ==
		       pcs[j + 1].job->src.physical + pcs[j + 1].off)
			j++;
		len = pcs[j].pos + pcs[j].len - pcs[i].pos;
		ret = pread_full(p->fds ? p->fds[pcs[i].job->src.dev] : p->fd, w->buf + pcs[i].pos, len,
				 pcs[i].job->src.physical + pcs[i].off);
		if (ret)
			return ret;
		w->st.bytes_read += len;
		i = j + 1;
	}
	for (unsigned int i = 0; i < n; i++) {
		ret = do_piece(w, &pcs[i]);
		if (ret)
			return ret;
	}
	if (!(pcs[0].job->flags & EXTENT_IO_WRITE))
		return 0;	/* a gang writes all or nothing (gang_with) */
	/* Write each run of pieces that were not dropped, to every copy. */
	for (unsigned int i = 0; i < n;) {
		const struct extent_io_job *job = pcs[i].job;
		unsigned int j = i;
		uint32_t len;

		if (pcs[i].dropped) {
			i++;
			continue;
		}
		while (j + 1 < n && !pcs[j + 1].dropped)
			j++;
		len = pcs[j].pos + pcs[j].len - pcs[i].pos;
		for (uint32_t k = 0; k <= job->nr_more; k++) {
			uint32_t dev = k ? job->more[k - 1].dev : job->dst.dev;
			uint64_t at = (k ? job->more[k - 1].physical : job->dst.physical) + pcs[i].off;

			ret = write_run(w, dev, w->buf + pcs[i].pos, len, at);
			if (ret)
				return ret;
		}
		i = j + 1;
	}
	return 0;
}

/*
 * Whether whole job b can follow a piece ending at the end of job a in one
 * chunk: writing jobs whose destinations follow each other (what they read,
 * if anything, may lie anywhere: reads go run by run), or reading-only jobs
 * whose sources do.
 */
static bool gang_with(const struct extent_io_job *a, const struct extent_io_job *b)
{
	if ((a->flags & EXTENT_IO_WRITE) != (b->flags & EXTENT_IO_WRITE))
		return false;
	if (a->flags & EXTENT_IO_WRITE) {
		if (a->dst.dev != b->dst.dev || a->nr_more != b->nr_more ||
		    a->dst.physical + a->len != b->dst.physical)
			return false;
		for (uint32_t k = 0; k < a->nr_more; k++)
			if (a->more[k].dev != b->more[k].dev ||
			    a->more[k].physical + a->len != b->more[k].physical)
				return false;
		return true;
	}
	return a->src.dev == b->src.dev && a->src.physical + a->len == b->src.physical;
}

/* Take the next chunk of the current run into pcs; 0 pieces when none is left. Under lock. */
static unsigned int next_chunk(struct extent_io *io, struct piece *pcs)
{
	unsigned int n = 0;
	uint32_t total = 0;

	while (io->next_job < io->njobs && !io->error) {
		const struct extent_io_job *j = &io->jobs[io->next_job];
		uint64_t left = j->len - io->next_off;

		if (!left) {
			io->next_job++;
			io->next_off = 0;
			continue;
		}
		if (n) {
			/* Only whole jobs join, right behind the previous piece on disk. */
			if (n == GANG_MAX || io->next_off || left > io->chunk - total ||
			    !gang_with(pcs[n - 1].job, j))
				break;
		}
		pcs[n] = (struct piece){ j, io->next_off,
					 (uint32_t)(left < io->chunk - total ? left : io->chunk - total),
					 total, false };
		io->next_off += pcs[n].len;
		total += pcs[n].len;
		n++;
		if (io->next_off < j->len)
			break;	/* the chunk is full */
	}
	return n;
}

/* Process chunks of the current run until none is left; the lock is held on entry and exit. */
static void work_run(struct worker *w, double *last_progress)
{
	struct extent_io *io = w->io;
	struct piece pcs[GANG_MAX];
	unsigned int n;

	while ((n = next_chunk(io, pcs))) {
		uint32_t len = pcs[n - 1].pos + pcs[n - 1].len;
		int ret;

		pthread_mutex_unlock(&io->lock);
		ret = do_chunk(w, pcs, n);
		pthread_mutex_lock(&io->lock);
		if (ret && !io->error)
			io->error = ret;
		io->done_bytes += len;
		/* Inline mode: the caller's thread is the worker, report from here. */
		if (last_progress && io->p.progress && mono_secs() - *last_progress >= 0.25) {
			*last_progress = mono_secs();
			io->p.progress(io->done_bytes, io->total_bytes, io->p.progress_arg);
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct extent_io *io = w->io;

	pthread_mutex_lock(&io->lock);
	for (;;) {
		while (!io->shutdown && w->seen_gen == io->gen)
			pthread_cond_wait(&io->work_cv, &io->lock);
		if (io->shutdown)
			break;
		w->seen_gen = io->gen;
		work_run(w, NULL);
		if (--io->busy == 0)
			pthread_cond_signal(&io->done_cv);
	}
	pthread_mutex_unlock(&io->lock);
	return NULL;
}

/* A side with a nonce needs a key: 0, -ENOKEY (its key_id names no key given) or -EINVAL. */
static int side_key(const struct extent_io_params *p, const struct extent_io_loc *loc)
{
	if (!loc->nonce || loc_key(p, loc))
		return 0;
	return loc->key_id ? -ENOKEY : -EINVAL;
}

/* A write destination: a present device of params.fds, or 0 (fd or dst_fd). */
static bool write_dev_ok(const struct extent_io_params *p, uint32_t dev)
{
	if (p->dst_fd >= 0 || !p->fds)
		return dev == 0;
	return dev < p->nfds && p->fds[dev] >= 0;
}

static int validate_job(const struct extent_io *io, const struct extent_io_job *j)
{
	const struct extent_io_params *p = &io->p;
	bool rd = j->flags & EXTENT_IO_READ, wr = j->flags & EXTENT_IO_WRITE;
	int ret;

	if (!j->len || j->len % p->unit_size || !(rd || wr) ||
	    (j->flags & ~(EXTENT_IO_READ | EXTENT_IO_WRITE)))
		return -EINVAL;
	if (!rd && !j->mem && !p->produce)
		return -EINVAL;
	if (rd && (j->src.rebuild ? !p->rebuild || j->src.rebuild < 0 :
		   p->fds ? j->src.dev >= p->nfds || p->fds[j->src.dev] < 0 : j->src.dev != 0))
		return -EINVAL;	/* no rebuild hook; no such device, or a missing one */
	if (wr && (j->nr_more > EXTENT_IO_MAX_COPIES - 1 || !write_dev_ok(p, j->dst.dev)))
		return -EINVAL;
	for (uint32_t k = 0; wr && k < j->nr_more; k++)
		if (!write_dev_ok(p, j->more[k].dev))
			return -EINVAL;
	if ((ret = rd ? side_key(p, &j->src) : 0) || (ret = wr ? side_key(p, &j->dst) : 0))
		return ret;
	/* DUN arithmetic must not wrap. */
	if ((rd && j->src.dun > UINT64_MAX - j->len / p->unit_size) ||
	    (wr && j->dst.dun > UINT64_MAX - j->len / p->unit_size))
		return -EINVAL;
	return 0;
}

static void fold_stats(struct extent_io_stats *to, struct extent_io_stats *from)
{
	to->bytes_read += from->bytes_read;
	to->bytes_written += from->bytes_written;
	to->bytes_decrypted += from->bytes_decrypted;
	to->bytes_encrypted += from->bytes_encrypted;
	to->chunks_dropped += from->chunks_dropped;
	to->keys_derived += from->keys_derived;
	memset(from, 0, sizeof(*from));
}

/* Validate and set up a run under the lock; *total gets its bytes. */
static int run_setup(struct extent_io *io, const struct extent_io_job *jobs, size_t njobs,
		     uint64_t *total)
{
	*total = 0;
	for (size_t i = 0; i < njobs; i++) {
		int ret = validate_job(io, &jobs[i]);

		if (ret)
			return ret;
		*total += jobs[i].len;
	}
	pthread_mutex_lock(&io->lock);
	io->jobs = jobs;
	io->njobs = njobs;
	io->next_job = 0;
	io->next_off = 0;
	io->error = 0;
	io->done_bytes = 0;
	io->total_bytes = *total;
	io->running = true;
	return 0;
}

/* Wait for the workers of a started run (lock held), fold stats, end the run. */
static int run_finish(struct extent_io *io, double last)
{
	int ret;

	while (io->busy) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&io->done_cv, &io->lock, &ts);
		if (io->busy && io->p.progress && mono_secs() - last >= 0.25) {
			last = mono_secs();
			io->p.progress(io->done_bytes, io->total_bytes, io->p.progress_arg);
		}
	}
	ret = io->error;
	for (unsigned int i = 0; i < io->nworkers; i++)
		fold_stats(&io->st, &io->workers[i].st);
	io->jobs = NULL;
	io->njobs = 0;
	io->running = false;
	if (io->p.progress)
		io->p.progress(io->done_bytes, io->total_bytes, io->p.progress_arg);
	pthread_mutex_unlock(&io->lock);
	return ret;
}

static void wake_workers(struct extent_io *io)
{
	io->busy = io->nworkers;
	io->gen++;
	pthread_cond_broadcast(&io->work_cv);
}

/*
 * Set up a run and get it going: on the caller's thread when there is no
 * pool, or (small_inline) when it is at most one chunk, which has no
 * parallelism to gain: the caller runs it as worker 0 instead of waking the
 * pool (whose threads wait for a new generation, so worker 0's thread stays
 * parked); small files are most of what encrypt and restore see.  Otherwise
 * the workers are woken.  Returns with the lock held on success.
 */
static int run_begin(struct extent_io *io, const struct extent_io_job *jobs, size_t njobs,
		     bool small_inline, double *last)
{
	uint64_t total;
	int ret;

	if (io->running)
		return -EBUSY;
	ret = run_setup(io, jobs, njobs, &total);
	if (ret)
		return ret;
	if ((io->nworkers == 1 && !io->workers[0].started) || (small_inline && total <= io->chunk))
		work_run(&io->workers[0], last);
	else
		wake_workers(io);
	return 0;
}

int extent_io_run(struct extent_io *io, const struct extent_io_job *jobs, size_t njobs)
{
	double last = mono_secs();
	int ret = run_begin(io, jobs, njobs, true, &last);

	return ret ? ret : run_finish(io, last);
}

int extent_io_start(struct extent_io *io, const struct extent_io_job *jobs, size_t njobs)
{
	double last = mono_secs();
	int ret = run_begin(io, jobs, njobs, false, &last);

	if (!ret)
		pthread_mutex_unlock(&io->lock);
	return ret;
}

int extent_io_wait(struct extent_io *io)
{
	if (!io->running)
		return 0;
	pthread_mutex_lock(&io->lock);
	return run_finish(io, mono_secs());
}

static void worker_release(struct extent_io *io, struct worker *w)
{
	if (w->slots) {
		for (unsigned int i = 0; i < io->p.key_cache; i++)
			xts_ctx_free(w->slots[i].xts);
		explicit_bzero(w->slots, io->p.key_cache * sizeof(*w->slots));
		free(w->slots);
	}
	secret_free(w->buf, io->chunk);	/* wiped: plaintext passed through it */
}

void extent_io_free(struct extent_io *io)
{
	if (!io)
		return;
	extent_io_wait(io);	/* a started run finishes first */
	pthread_mutex_lock(&io->lock);
	io->shutdown = true;
	pthread_cond_broadcast(&io->work_cv);
	pthread_mutex_unlock(&io->lock);
	/* No workers array when allocating it failed. */
	for (unsigned int i = 0; io->workers && i < io->nworkers; i++)
		if (io->workers[i].started)
			pthread_join(io->workers[i].thread, NULL);
	for (unsigned int i = 0; io->workers && i < io->nworkers; i++)
		worker_release(io, &io->workers[i]);
	free(io->workers);
	pthread_mutex_destroy(&io->lock);
	pthread_mutex_destroy(&io->report_lock);
	pthread_cond_destroy(&io->work_cv);
	pthread_cond_destroy(&io->done_cv);
	free(io);
}

int extent_io_new(struct extent_io **out, const struct extent_io_params *params)
{
	struct extent_io *io;
	long cpus;
	int ret;

	*out = NULL;
	if (params->unit_size < 16 || params->unit_size > (64U << 10) ||
	    (params->unit_size & (params->unit_size - 1)) || params->fd < 0)
		return -EINVAL;
	if ((params->key || params->nr_keys) && (params->contents_mode != FSCRYPT_MODE_AES_256_XTS ||
			    !fscrypt_profile_info(params->profile)))
		return -EINVAL;

	io = fault_calloc(1, sizeof(*io));
	if (!io)
		return -ENOMEM;
	io->p = *params;
	if (!io->p.key_cache)
		io->p.key_cache = EXTENT_IO_DEFAULT_KEY_CACHE;
	io->chunk = io->p.chunk_size ? io->p.chunk_size : EXTENT_IO_DEFAULT_CHUNK;
	io->chunk -= io->chunk % io->p.unit_size;
	if (io->chunk > (1U << 30))
		io->chunk = (1U << 30) - (1U << 30) % io->p.unit_size;
	if (!io->chunk) {
		free(io);
		return -EINVAL;
	}
	io->nworkers = io->p.threads;
	if (!io->nworkers) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		io->nworkers = cpus > 0 ? (unsigned int)cpus : 1;
	}
	if (io->nworkers > 1024)
		io->nworkers = 1024;
	io->p.threads = io->nworkers;
	pthread_mutex_init(&io->lock, NULL);
	pthread_mutex_init(&io->report_lock, NULL);
	pthread_cond_init(&io->work_cv, NULL);
	pthread_cond_init(&io->done_cv, NULL);

	io->workers = fault_calloc(io->nworkers, sizeof(*io->workers));
	if (!io->workers) {
		extent_io_free(io);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < io->nworkers; i++) {
		struct worker *w = &io->workers[i];

		w->io = io;
		w->slots = fault_calloc(io->p.key_cache, sizeof(*w->slots));
		w->buf = w->slots ? secret_alloc(io->chunk) : NULL;
		if (!w->buf) {
			extent_io_free(io);
			return -ENOMEM;
		}
	}
	if (io->nworkers > 1) {
		for (unsigned int i = 0; i < io->nworkers; i++) {
			struct worker *w = &io->workers[i];

			ret = pthread_create(&w->thread, NULL, worker_main, w);
			if (ret) {
				extent_io_free(io);
				return -ret;
			}
			w->started = true;
			/* Named for top -H and perf --comm; a failure changes nothing. */
			pthread_setname_np(w->thread, "extcrypt-io");
		}
	}
	*out = io;
	return 0;
}

void extent_io_get_stats(struct extent_io *io, struct extent_io_stats *st)
{
	pthread_mutex_lock(&io->lock);
	*st = io->st;
	pthread_mutex_unlock(&io->lock);
}

uint32_t extent_io_unit_size(const struct extent_io *io)
{
	return io->p.unit_size;
}

unsigned int extent_io_threads(const struct extent_io *io)
{
	return io->nworkers;
}

int extent_io_csum_process(struct extent_io *io, const uint8_t *buf, uint64_t logical,
			   uint32_t len, void *priv)
{
	struct extent_io_csums *c = priv;
	uint32_t unit = io->p.unit_size;
	unsigned int size = c ? csum_type_size(c->type) : 0;
	uint64_t first, n = len / unit;
	int bad = 0;

	if (!c)
		return 0;	/* a job without csums */
	if (!size || (!c->expected && !c->out) || logical < c->logical || (logical - c->logical) % unit)
		return -ERANGE;
	first = (logical - c->logical) / unit;
	if (first > c->count || n > c->count - first)
		return -ERANGE;

	if (!c->expected) {
		csum_batch(c->type, buf, unit, n, c->out + first * size);
		return 0;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint8_t found[CSUM_MAX_SIZE];
		const uint8_t *want = c->expected + (first + i) * size;

		if (c->present && !c->present[first + i])
			continue;
		csum_compute(c->type, buf + i * unit, unit, found);
		if (memcmp(found, want, size) == 0)
			continue;
		if (!c->mismatch)
			return -EBADMSG;
		pthread_mutex_lock(&io->report_lock);
		bad = c->mismatch(io, c->logical + (first + i) * unit, found, want, c->arg);
		pthread_mutex_unlock(&io->report_lock);
		if (bad < 0)
			return bad;
		bad = 1;
	}
	return bad;
}

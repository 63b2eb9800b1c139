// SPDX-License-Identifier: GPL-2.0
/*
 * restore's containment (see restore.h): names as path components, opening
 * only beneath the output directory, and the tables of inodes met (hard
 * links, directories).
 */
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "common/fault.h"
#include "common/messages.h"
#include "common/utils.h"
#include "restore/internal.h"
#include "kernel-shared/disk-io.h"

/* ---- names ------------------------------------------------------------------- */

/* A name usable as one path component: no '/', no NUL, not "." or "..". */
bool rs_name_ok(const u8 *name, size_t len)
{
	if (!len || memchr(name, '/', len) || memchr(name, 0, len))
		return false;
	return !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* ---- containment ------------------------------------------------------------ */

/* A path of this run relative to the output directory ("." for itself). */
static const char *rel_path(const struct restore *r, const char *path)
{
	const char *rel = path + r->outlen;

	while (*rel == '/')
		rel++;
	return *rel ? rel : ".";
}

/* Without openat2: open rel beneath dirfd one component at a time, following none. */
static int open_walk(int dirfd, const char *rel, int flags)
{
	char buf[PATH_MAX], *c, *save = NULL;
	int fd = -1, next;

	if (strlen(rel) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(buf, rel);
	for (c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		bool last = !save || !*save;

		if (!strcmp(c, "..")) {
			errno = EXDEV;
			break;
		}
		next = openat(fd < 0 ? dirfd : fd, c,
			      last ? flags : O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		fd = next;
		if (fd < 0 || last)
			return fd;
	}
	if (fd >= 0)
		close(fd);
	return -1;
}

/*
 * Open path, one of this run's paths, with flags: only beneath the output
 * directory and through no symlink.  Returns the fd, or -1 with errno set.
 */
static int open_beneath(const struct restore *r, const char *path, int flags)
{
	struct open_how how = {
		.flags = (u64)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	const char *rel = rel_path(r, path);
	int fd;

#ifdef EXTCRYPT_FAULT_INJECTION
	/* Test builds: EXTCRYPT_NO_OPENAT2 takes the path of kernels without it. */
	if (getenv("EXTCRYPT_NO_OPENAT2"))
		goto walk;
#endif
	fd = syscall(SYS_openat2, r->outfd, rel, &how, sizeof(how));
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return fd;
#ifdef EXTCRYPT_FAULT_INJECTION
walk:
#endif
	if (!strcmp(rel, "."))
		return openat(r->outfd, ".", flags | O_CLOEXEC);
	return open_walk(r->outfd, rel, flags | O_NOFOLLOW | O_CLOEXEC);
}

/* Open directory d, if it is still the host directory this run made for it. */
int rs_open_rdir(struct restore *r, const struct rdir *d)
{
	struct stat st;
	int fd = open_beneath(r, d->path, O_RDONLY | O_DIRECTORY);

	if (fd < 0)
		return fs_err(r->fs, -errno, "cannot open %s: %s", d->path, strerror(errno));
	if (fstat(fd, &st) || st.st_dev != d->host_dev || st.st_ino != d->host_ino) {
		close(fd);
		return fs_err(r->fs, -EEXIST, "%s is no longer the directory restore made", d->path);
	}
	return fd;
}

/* The error of a failed mkdirat, openat, symlinkat, mknodat or linkat of path. */
int rs_create_err(struct fs_info *fs, const char *path)
{
	int err = errno;

	if (err == EEXIST)
		return fs_err(fs, -EEXIST,
			      "%s already exists (a duplicate name in the image directory, or a name already in the output directory): skipped",
			      path);
	return fs_err(fs, -err, "cannot create %s: %s", path, strerror(err));
}

/* Link name in dirfd to first, a file this run created (its path). */
int rs_link_beneath(struct restore *r, const char *first, int dirfd, const char *name)
{
	char parent[PATH_MAX];
	const char *base = strrchr(first, '/');
	int pfd, ret;

	if (!base || (size_t)(base - first) >= sizeof(parent)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(parent, first, base - first);
	parent[base - first] = 0;
	pfd = open_beneath(r, parent, O_RDONLY | O_DIRECTORY);
	if (pfd < 0)
		return -1;
	ret = linkat(pfd, base + 1, dirfd, name, 0);
	close(pfd);
	return ret;
}

/* ---- hard links -------------------------------------------------------------- */

/* The map key of (root, ino): several inodes may share one, the entries tell them apart. */
static u64 link_key(u64 root, u64 ino)
{
	return (ino * 0x9E3779B97F4A7C15ULL) ^ (root * 0xC2B2AE3D27D4EB4FULL);
}

/*
 * The entry of (root, ino) in lt, added in state with path if it is not
 * there; the lock is held.  Returns 0 when added, 1 when it was there, or
 * -ENOMEM.
 */
static int link_find_or_add(struct link_table *lt, u64 root, u64 ino, const char *path,
			    int state, struct hardlink **out)
{
	u64 key = link_key(root, ino);
	size_t len = strlen(path) + 1, cursor = 0;
	struct hardlink *h, **slot;

	while ((slot = u64map_next(&lt->map, key, &cursor))) {
		if ((*slot)->ino == ino && (*slot)->root == root) {
			*out = *slot;
			return 1;
		}
	}
	h = fault_malloc(sizeof(*h) + len);
	slot = h ? u64map_insert(&lt->map, key) : NULL;
	if (!slot) {
		free(h);
		return -ENOMEM;
	}
	h->root = root;
	h->ino = ino;
	h->state = state;
	h->err = 0;
	memcpy(h->path, path, len);
	*slot = h;
	*out = h;
	return 0;
}

/*
 * Claim inode (root, ino) for the file at path.  Returns 0 when the caller
 * is the first and must create the file, then settle *claim; 1 when the
 * file exists: *first is the path to link to; or a negative errno (the
 * first link failed, or no memory).
 */
int rs_link_claim(struct restore *r, u64 root, u64 ino, const char *path,
		      struct hardlink **claim, const char **first)
{
	struct link_table *lt = &r->links;
	struct hardlink *h;
	int ret;

	*claim = NULL;
	pthread_mutex_lock(&lt->lock);
	ret = link_find_or_add(lt, root, ino, path, LINK_PENDING, &h);
	if (ret <= 0) {
		pthread_mutex_unlock(&lt->lock);
		if (ret < 0)
			return fs_err(r->fs, -ENOMEM, "out of memory");
		*claim = h;
		return 0;
	}
	/* The creator makes no claim while it holds this one: no cycle. */
	while (h->state == LINK_PENDING)
		pthread_cond_wait(&lt->settled, &lt->lock);
	if (h->state == LINK_DONE) {
		*first = h->path;
		ret = 1;
	} else if (rs_recoverable(h->err)) {
		ret = fs_err(r->fs, h->err, "its first link %s could not be restored", h->path);
	} else {
		ret = h->err;	/* the run is rs_stopping for it */
	}
	pthread_mutex_unlock(&lt->lock);
	return ret;
}

/*
 * Claim directory inode (root, ino), met at path.  A directory has one
 * entry: a second one is a cycle or a crafted link, refused with -ELOOP.
 */
int rs_dir_claim(struct restore *r, u64 root, u64 ino, const char *path)
{
	struct hardlink *h;
	int ret;

	pthread_mutex_lock(&r->dirs.lock);
	ret = link_find_or_add(&r->dirs, root, ino, path, LINK_DONE, &h);
	if (ret > 0)
		ret = fs_err(r->fs, -ELOOP,
			     "directory %llu of tree %llu was already restored at %s (a directory cycle or a second link to a directory): skipped",
			     ino, root, h->path);
	else if (ret < 0)
		ret = fs_err(r->fs, -ENOMEM, "out of memory");
	pthread_mutex_unlock(&r->dirs.lock);
	return ret;
}

void rs_link_settle(struct restore *r, struct hardlink *h, int err)
{
	pthread_mutex_lock(&r->links.lock);
	h->state = err ? LINK_FAILED : LINK_DONE;
	h->err = err;
	pthread_cond_broadcast(&r->links.settled);
	pthread_mutex_unlock(&r->links.lock);
}

void rs_link_table_free(struct link_table *lt)
{
	for (size_t i = 0; i < lt->map.slots; i++) {
		struct hardlink **h = u64map_slot_value(&lt->map, i);

		if (h)
			free(*h);
	}
	u64map_free(&lt->map);
}

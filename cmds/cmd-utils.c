// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include "cmds/cmd-utils.h"
#include "common/messages.h"
#include "common/key-input.h"
#include "crypto/fscrypt-keys.h"
#include "kernel-shared/transaction.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/qgroup.h"

int cmd_open_image(const char *path, int mirror, size_t cache_bytes, bool warn_log,
		   struct fs_info **fs)
{
	struct open_args args = { .super_mirror = mirror, .cache_bytes = cache_bytes };

	return cmd_open_image_args(path, &args, warn_log, fs);
}

int cmd_open_image_args(const char *path, const struct open_args *args, bool warn_log,
			struct fs_info **fs)
{
	char errbuf[512] = "";
	int ret;

	ret = open_image(path, args, fs, errbuf);
	if (ret) {
		error("%s", errbuf[0] ? errbuf : strerror(-ret));
		return exit_code(ret, ERR_AT_OPEN_RO);
	}
	if (warn_log && le64_to_cpu((*fs)->super.log_root))
		warning("%s has an unreplayed log tree; it is ignored", path);
	for (u32 i = 0; i < (*fs)->nr_devs; i++)
		if ((*fs)->devs[i].fd < 0)
			warning("device devid %llu of the filesystem is missing (not given with --device): reading degraded, from the other copies",
				(unsigned long long)(*fs)->devs[i].devid);
	return 0;
}

int cmd_open_image_rw(const char *path, const char *const *devices, int nr_devices,
		      bool verify_follows, struct fs_info **fs)
{
	char errbuf[512] = "";
	int ret;

	ret = open_image_rw_devices(path, devices, nr_devices, verify_follows, fs, errbuf);
	if (ret) {
		*fs = NULL;
		error("%s", errbuf[0] ? errbuf : strerror(-ret));
		return exit_code(ret, ERR_AT_OPEN_RW);
	}
	return 0;
}

int cmd_engine_error(struct fs_info *fs, int err, const char *what)
{
	const char *why = fs && fs_errmsg(fs)[0] ? fs_errmsg(fs) : strerror(-err);

	/* Whoever ran out of memory, and whatever text is left: it says so. */
	if (err == -ENOMEM)
		why = "out of memory";

	if (what)
		error("%s: %s", what, why);
	else
		error("%s", why);
	return exit_code(err, ERR_AT_RUN);
}

int cmd_load_master_key(const struct key_input *ki, struct fscrypt_master_key **mk)
{
	struct key_buf *kb = NULL;
	int ret;

	*mk = NULL;
	ret = key_input_read(ki, &kb);
	if (ret)
		return exit_code(ret, ERR_AT_KEY);
	*mk = secret_alloc(sizeof(**mk));
	ret = *mk ? fscrypt_master_key_init(*mk, kb->data, kb->len) : -ENOMEM;
	key_buf_free(kb);
	if (ret) {
		error("cannot load the master key");
		cmd_free_master_key(*mk);
		*mk = NULL;
		return exit_code(ret, ERR_AT_KEY);
	}
	return 0;
}

void cmd_free_master_key(struct fscrypt_master_key *mk)
{
	if (!mk)
		return;
	fscrypt_master_key_wipe(mk);
	secret_free(mk, sizeof(*mk));
}

void cmd_note_qgroups(const struct fs_info *fs)
{
	const char *why = qgroup_mode_note(fs->qgroup_mode);

	if (why)
		note("%s", why);
}

int cmd_allow_grow(struct fs_info *fs)
{
	struct stat st;

	if (fs->nr_devs > 1) {
		error("--grow: the filesystem has %u devices; only a filesystem of one image file can grow",
		      fs->nr_devs);
		return EXIT_PROBLEMS;
	}
	if (fstat(fs->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		error("--grow: %s is not an image file; a block device cannot grow", fs->path);
		return EXIT_PROBLEMS;
	}
	fs->may_grow = true;
	return 0;
}

void cmd_report_grow(const struct fs_info *fs)
{
	if (fs->grown_bytes)
		note("Grew the image by %llu bytes to %llu bytes", fs->grown_bytes,
		     le64_to_cpu(fs->super.total_bytes));
}

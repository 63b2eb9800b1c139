// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include "cmds/cmd-utils.h"
#include "common/messages.h"

int cmd_open_image(const char *path, int mirror, struct fs_info **fs)
{
	struct open_args args = { .super_mirror = mirror };
	char errbuf[512];
	int ret;

	ret = open_image(path, &args, fs, errbuf);
	if (ret) {
		error("%s", errbuf);
		return EXIT_UNREADABLE;
	}
	if (le64_to_cpu((*fs)->super.log_root))
		warning("%s has an unreplayed log tree; it is ignored", path);
	return 0;
}

int cmd_engine_error(struct fs_info *fs, int err, const char *what)
{
	if (fs && fs->errmsg[0])
		error("%s: %s", what, fs->errmsg);
	else
		error("%s: %s", what, strerror(-err));
	if (err == -ENOENT)
		return EXIT_PROBLEMS;
	return EXIT_UNREADABLE;
}

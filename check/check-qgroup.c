// SPDX-License-Identifier: GPL-2.0
/*
 * Quota groups: the counts of every qgroup info item against the extents
 * its subvolumes reach (kernel-shared/qgroup.h), judged like btrfs check
 * judges them: referenced and exclusive bytes, only while the status item
 * says the counts are exact (ON, not inconsistent, no rescan running), or
 * under simple quotas the bytes of the extents each subvolume owns.
 */
#include <errno.h>
#include "check/check.h"
#include "common/messages.h"
#include "kernel-shared/disk-io.h"
#include "kernel-shared/qgroup.h"

static void report_mismatches(struct check_ctx *c, const struct qgroup_state *qs)
{
	for (size_t i = 0; i < qs->nr_groups; i++) {
		const struct qgroup_count *g = &qs->groups[i];

		if (!qgroup_differs(g))
			continue;
		check_report(c, PR_QGROUP_COUNT_MISMATCH, LOC_NONE,
			     (unsigned long long)qgroup_level(g->id),
			     (unsigned long long)qgroup_subvol(g->id),
			     (unsigned long long)g->rfer, (unsigned long long)g->excl,
			     (unsigned long long)g->disk_rfer, (unsigned long long)g->disk_excl);
	}
}

void check_qgroups(struct check_ctx *c)
{
	struct qgroup_state qs = { 0 };
	const char *why = NULL;
	int ret = qgroup_load(c->fs, &c->fs->tree_root, &qs);

	if (ret == -ENOMEM)
		die_oom();	/* not a problem of the image */
	if (ret) {
		check_report(c, PR_QGROUP_NOT_VERIFIED, LOC_NONE, fs_errmsg(c->fs));
		goto out;
	}
	switch (qs.mode) {
	case QGROUP_NONE:
	case QGROUP_OFF:
		goto out;
	case QGROUP_INCONSISTENT:
		why = "the quota status marks them inconsistent (a rescan rebuilds them)";
		break;
	case QGROUP_RESCAN:
		why = "a quota rescan is in progress";
		break;
	case QGROUP_EXACT:
	case QGROUP_SIMPLE:
		if (!c->extent_tree_ok)
			why = "the extent tree is damaged";
		break;
	}
	if (why) {
		check_report(c, PR_QGROUP_NOT_VERIFIED, LOC_NONE, why);
		goto out;
	}
	ret = qgroup_compute(c->fs, &c->fs->tree_root, &qs);
	if (ret == -ENOMEM)
		die_oom();
	if (ret) {
		check_report(c, PR_QGROUP_NOT_VERIFIED, LOC_NONE, fs_errmsg(c->fs));
		goto out;
	}
	report_mismatches(c, &qs);
out:
	qgroup_state_free(&qs);
}

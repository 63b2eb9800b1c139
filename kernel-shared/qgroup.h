/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Quota group accounting (Documentation/format.rst 2.10): the qgroups of the
 * quota tree, and their referenced and exclusive byte counts computed from
 * the extent tree and the fs trees the way `btrfs check` verifies them.
 *
 * Every extent (data, and tree blocks) is reached by a set of fs trees
 * ("roots"): the roots its backrefs name directly, the roots of the tree
 * blocks its shared backrefs name as parents, and the roots of the tree
 * nodes that point at it (or, for data, at a leaf holding a file extent of
 * it).  The extent's size counts as referenced for the qgroup of every root
 * in the set and as exclusive when the set has exactly one root.  A higher
 * level qgroup counts the extent as referenced if any of its member roots
 * reaches it and as exclusive if all roots of the set are its members.
 *
 * Memory is one record per extent and per shared backref plus the distinct
 * root sets (interned); tree blocks are resolved level by level from the
 * top, so there is no recursion and a loop of parents in a hostile image
 * only leaves a set incomplete.
 */
#ifndef EXTCRYPT_QGROUP_H
#define EXTCRYPT_QGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include "kernel-shared/ondisk.h"

struct fs_info;
struct root_ref;
struct trans;

#define QGROUP_STATUS_ON		(1ULL << 0)
#define QGROUP_STATUS_RESCAN		(1ULL << 1)
#define QGROUP_STATUS_INCONSISTENT	(1ULL << 2)
#define QGROUP_STATUS_SIMPLE		(1ULL << 3)

static inline u64 qgroup_level(u64 id) { return id >> 48; }
static inline u64 qgroup_subvol(u64 id) { return id & ((1ULL << 48) - 1); }

/* One qgroup: its id and its counts, as stored and as computed. */
struct qgroup_count {
	u64 id;
	u64 disk_rfer, disk_rfer_cmpr, disk_excl, disk_excl_cmpr;
	u64 rfer, excl;		/* computed (the _cmpr counts equal these) */
};

/* What the quota tree says about the counts. */
enum qgroup_mode {
	QGROUP_NONE = 0,	/* no quota tree or no status item */
	QGROUP_OFF,		/* status item without the ON flag */
	QGROUP_EXACT,		/* ON: the counts must be exact */
	QGROUP_INCONSISTENT,	/* marked inconsistent: a rescan is needed */
	QGROUP_RESCAN,		/* a rescan is in progress */
	QGROUP_SIMPLE,		/* simple quotas: counted by owner (qgroup_compute()) */
};

struct qgroup_state {
	enum qgroup_mode mode;
	u64 status_flags, status_generation;
	u64 enable_gen;			/* simple quotas: extents older count nowhere */
	struct qgroup_count *groups;	/* sorted by id */
	size_t nr_groups, cap_groups;
	u64 (*rels)[2];			/* (member index, parent index), by member */
	size_t nr_rels;
	bool trusted;			/* backrefs trusted: read only shared leaves */
};

/*
 * Load the status, qgroup info items and relations from the quota tree of
 * the image whose root tree is tree_root.  Returns 0 (mode QGROUP_NONE when
 * there is no quota tree), or a negative errno with fs_errmsg(fs) set.
 */
int qgroup_load(struct fs_info *fs, const struct root_ref *tree_root, struct qgroup_state *qs);

/*
 * Compute rfer and excl of every loaded qgroup from the extent tree and the
 * fs trees under tree_root.  With qs->trusted (an image the write engine
 * checked), leaves whose parents reach exactly the roots of their own
 * backrefs are not read: their file extents' backrefs already name those
 * roots.  Under simple quotas (mode QGROUP_SIMPLE) the owner rules instead:
 * an extent made at or after enable_gen counts for its owner's qgroup and
 * those above it.  Returns 0 or a negative errno with fs_errmsg(fs) set.
 */
int qgroup_compute(struct fs_info *fs, const struct root_ref *tree_root, struct qgroup_state *qs);

/* Whether a qgroup's stored counts differ from the computed ones (as btrfs check judges). */
static inline bool qgroup_differs(const struct qgroup_count *g)
{
	return g->rfer != g->disk_rfer || g->excl != g->disk_excl;
}

void qgroup_state_free(struct qgroup_state *qs);

/*
 * At commit, once the extent tree is final: with quotas ON and consistent,
 * or simple quotas, recompute the counts and rewrite every QGROUP_INFO item
 * that differs (simple quotas: not the compressed counts); with
 * quotas ON, set the status item's generation to the transaction's (the
 * kernel marks the counts inconsistent on a mismatch).  *changed tells
 * whether the quota tree was modified.  The outcome (a mode) is kept in
 * fs->qgroup_mode for the commands' summaries.  Returns 0 or <0.
 */
int qgroup_trans_update(struct trans *t, bool *changed);

/* One line for a command's summary about the qgroups, or NULL when all is well. */
const char *qgroup_mode_note(int mode);

#endif

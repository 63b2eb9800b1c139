// SPDX-License-Identifier: GPL-2.0
/* reflink: share extents of one file range into another, offline. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "common/fault.h"
#include "cmds/commands.h"
#include "cmds/cmd-utils.h"
#include "common/messages.h"
#include "common/output.h"
#include "common/containers.h"
#include "common/utils.h"
#include "kernel-shared/fs-walk.h"
#include "kernel-shared/inode.h"
#include "kernel-shared/reflink.h"
#include "kernel-shared/disk-io.h"
#include "crypto/fname.h"
#include "data/names.h"

const char *const cmd_reflink_usage[] = {
	"btrfs-extcrypt reflink [options] <src> <dst> <image>",
	"btrfs-extcrypt reflink [options] --src-inode <ino> --dst-inode <ino> <image>",
	"btrfs-extcrypt reflink --batch FILE|- [--commit-every N] [--commit-interval S] <image>",
	"Share a range of one file's extents into another file, like FICLONERANGE",
	"",
	"Paths are inside the image, from the top-level subvolume (or from the",
	"subvolume given with --root).  The data is not copied: the destination",
	"references the source's extents, their checksums and, for encrypted",
	"files, their encryption contexts.  Both files must be plain or both",
	"encrypted with the same master key and contents mode; offsets must be",
	"sector aligned, and so must the length unless it reaches the source's",
	"end of file.  The image is changed in one transaction: an interrupted",
	"run leaves it as it was.",
	"",
	"Paths through encrypted directories take plaintext names with the key",
	"(which --create needs to make a file in an encrypted directory) and the",
	"fscrypt no-key names that restore writes with or without it.  A key that",
	"is not the one of an encrypted directory or file named is a key error.",
	"",
	"With --batch, each line of FILE (or standard input) holds the options and",
	"the <src> <dst> of one clone, words split as a shell would (quotes and",
	"backslashes); empty lines and lines starting with # are skipped.  All",
	"clones run in one process and are committed every N clones or S seconds;",
	"a line that is refused is reported and has no effect, and the others go",
	"on.  An interrupted batch leaves the clones of its last commit; running",
	"the same batch again gives the result of an uninterrupted run.",
	"",
	OPTLINE("--root ID", "subvolume the paths (or inode numbers) are in; default: top level"),
	OPTLINE("--src-offset O", "first byte of the source range (default 0)"),
	OPTLINE("--length L", "bytes to clone; 0 (default): to the source's end of file"),
	OPTLINE("--dest-offset D", "where the range goes in the destination (default 0)"),
	OPTLINE("--create", "create the destination as an empty file if it does not exist"),
	OPTLINE("--src-inode INO", "source by inode number (in --root) instead of a path"),
	OPTLINE("--dst-inode INO", "destination by inode number (in --root) instead of a path"),
	OPTLINE("--dry-run", "check everything, change nothing"),
	OPTLINE("--grow", "extend the image file when new metadata needs more room than it has"),
	OPTLINE("--batch FILE|-", "clones listed one per line in FILE ('-': standard input)"),
	OPTLINE("--commit-every N", "with --batch: commit after N clones (default 1000)"),
	OPTLINE("--commit-interval S", "with --batch: commit after S seconds (default 10)"),
	DEVICE_OPTLINE,
	KEY_INPUT_OPTLINES(OPTLINE),
	OPTLINE("--help", "show this help"),
	"",
	MULTI_DEVICE_WRITE_LINES,
	"",
	"Exit status: 0 done, 1 refused or failed (nothing changed; with --batch:",
	"some lines refused), 2 usage error, 3 image unreadable, 4 key error.",
	NULL
};

struct file_spec {
	const char *path;
	unsigned long long ino;
	bool by_ino;
};

/* Resolve a path (or inode) to tree and inode; --create makes a missing destination. */
static int resolve(struct fs_info *fs, const struct name_codec *nc, u64 root_id,
		   const struct file_spec *f, struct root_ref *root, u64 *ino)
{
	u64 dir;
	int ret;

	ret = find_root(fs, root_id, root);
	if (ret == -ENOENT)
		return fs_err(fs, -ENOENT, "no subvolume with id %llu", root_id);
	if (ret)
		return ret;
	if (f->by_ino) {
		*ino = f->ino;
		return 0;
	}
	ret = subvol_root_dir(fs, root_id, &dir);
	if (ret)
		return ret < 0 ? ret : fs_err(fs, -ENOENT, "tree %llu is not a subvolume", root_id);
	ret = path_lookup_from(fs, nc, root, dir, f->path, root, ino);
	if (ret > 0)
		return fs_err(fs, -ENOENT, "no such file in the image: %s", f->path);
	return ret;
}

struct reflink_opts {
	const struct enc_names *names;	/* paths through encrypted directories */
	unsigned long long root_id, soff, len, doff;
	struct file_spec src, dst;
	bool create, dry_run, grow;
	/* --batch */
	const char *batch;
	unsigned long long commit_every, commit_secs;
};

enum { OPT_BATCH = 0x2300, OPT_COMMIT_EVERY, OPT_COMMIT_SECS, OPT_GROW };

static const struct option clone_opts[] = {
	{ "root", required_argument, NULL, 'r' },
	{ "src-offset", required_argument, NULL, 'o' },
	{ "length", required_argument, NULL, 'l' },
	{ "dest-offset", required_argument, NULL, 'd' },
	{ "create", no_argument, NULL, 'c' },
	{ "src-inode", required_argument, NULL, 's' },
	{ "dst-inode", required_argument, NULL, 't' },
	{ "dry-run", no_argument, NULL, 'n' },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "commit-every", required_argument, NULL, OPT_COMMIT_EVERY },
	{ "commit-interval", required_argument, NULL, OPT_COMMIT_SECS },
	{ "grow", no_argument, NULL, OPT_GROW },
	GETOPT_DEVICE_OPTION,
	KEY_INPUT_LONG_OPTIONS,
	GETOPT_HELP_OPTION,
	{ NULL, 0, NULL, 0 }
};

/*
 * One option of a clone (command line or batch line) into o.  Returns 1 when
 * taken, 0 when it is not a clone option, -1 with why set when its value is
 * bad.
 */
static int clone_option(struct reflink_opts *o, int c, const char *arg, char *why, size_t len)
{
	unsigned long long *v = NULL;

	switch (c) {
	case 'r': v = &o->root_id; break;
	case 'o': v = &o->soff; break;
	case 'l': v = &o->len; break;
	case 'd': v = &o->doff; break;
	case 's': v = &o->src.ino; o->src.by_ino = true; break;
	case 't': v = &o->dst.ino; o->dst.by_ino = true; break;
	case 'c': o->create = true; return 1;
	default: return 0;
	}
	if (parse_u64(arg, v)) {
		snprintf(why, len, "invalid number '%s'", arg);
		return -1;
	}
	return 1;
}

/* The positional <src> <dst> of a clone (those not given by inode); NULL or why. */
static const char *clone_positionals(struct reflink_opts *o, int argc, char **argv, int extra)
{
	int need = !o->src.by_ino + !o->dst.by_ino + extra;

	if (argc - optind != need)
		return argc - optind < need ? "not enough arguments" : "too many arguments";
	if (!o->src.by_ino)
		o->src.path = argv[optind++];
	if (!o->dst.by_ino)
		o->dst.path = argv[optind++];
	if (o->create && o->dst.by_ino)
		return "--create needs a destination path";
	return NULL;
}

static int reflink_parse(struct cmd_context *ctx, int argc, char **argv)
{
	struct reflink_opts *o = ctx->opts;
	const char *why;
	char bad[128];
	int c, ret;
	bool clone_given = false;

	o->root_id = BTRFS_FS_TREE_OBJECTID;
	o->commit_every = 1000;
	o->commit_secs = 10;
	while ((c = getopt_long(argc, argv, "", clone_opts, NULL)) != -1) {
		ret = clone_option(o, c, optarg, bad, sizeof(bad));
		if (ret < 0)
			return usage_error(ctx->cmd, "%s", bad);
		if (ret > 0) {
			clone_given |= c != 'r';
			continue;
		}
		switch (c) {
		case 'n':
			o->dry_run = true;
			break;
		case OPT_BATCH:
			o->batch = optarg;
			break;
		case OPT_GROW:
			o->grow = true;
			break;
		case OPT_COMMIT_EVERY:
		case OPT_COMMIT_SECS:
			if (parse_u64(optarg, c == OPT_COMMIT_EVERY ? &o->commit_every :
					  &o->commit_secs) || !o->commit_every)
				return usage_error(ctx->cmd, "invalid number '%s'", optarg);
			break;
		default:
			ret = cmd_parse_common(ctx, c, optarg);
			if (ret != CMD_PARSE_OK)
				return ret;
		}
	}
	if (o->batch) {
		/* Each line gives its own clone; --root is the default of the lines. */
		if (clone_given)
			return usage_error(ctx->cmd, "with --batch, the clone options go in the batch lines");
		if ((ret = check_argc_exact(ctx->cmd, argc - optind, 1)))
			return ret;
		if (!strcmp(o->batch, "-") &&
		    ((ctx->key.path && !strcmp(ctx->key.path, "-")) || ctx->key.fd == 0))
			return usage_error(ctx->cmd, "--batch - and the key cannot both come from standard input");
	} else if ((why = clone_positionals(o, argc, argv, 1))) {
		return usage_error(ctx->cmd, "%s", why);
	}
	ctx->image_path = argv[optind];
	return CMD_PARSE_OK;
}

/*
 * --create: make the missing destination an empty file in its parent
 * directory, with the source's owner and mode.  Returns 0 or a negative errno.
 */
static int create_destination(struct trans *t, const struct reflink_opts *o,
			      const struct root_ref *sroot, struct root_ref *droot,
			      struct clone_args *a, const struct timespec *now)
{
	struct fs_info *fs = t->fs;
	char *copy = fault_strdup(o->dst.path), *copy2 = fault_strdup(o->dst.path);
	struct file_spec parent = { 0 };
	struct btrfs_inode_item si;
	struct fscrypt_context_v2 ctx;
	struct trans_root *tr;
	u8 stored[FNAME_MAX_LEN];
	size_t slen = 0;
	const char *name;
	u64 pdir;
	int ret;

	if (!copy || !copy2) {
		free(copy);
		free(copy2);
		return fs_err(fs, -ENOMEM, "out of memory");
	}
	parent.path = dirname(copy);
	/* "name" alone lives at the top of the subvolume: dirname says ".". */
	if (!strcmp(parent.path, "."))
		parent.path = "/";
	name = basename(copy2);
	fs_clear_err(fs);
	ret = resolve(fs, &o->names->nc, o->root_id, &parent, droot, &pdir);
	if (!ret) {
		/* In an encrypted directory the name is stored encrypted, the inode gets a context. */
		ret = enc_names_new_entry(o->names, droot, pdir, name, strlen(name), stored, &slen, &ctx);
		if (ret > 0)
			ret = 0, slen = 0;
	}
	tr = ret ? NULL : trans_get_root(t, droot->objectid);
	if (!ret && !tr)
		ret = trans_root_err(t);
	if (!ret)
		ret = trans_inode_read(t, trans_get_root(t, sroot->objectid), a->src_ino, &si);
	if (ret > 0)
		ret = fs_err(fs, -ENOENT, "source inode %llu not found", a->src_ino);
	if (!ret)
		ret = inode_create_file(t, tr, pdir, slen ? (const void *)stored : name,
					slen ? slen : strlen(name), slen ? &ctx : NULL,
					le32_to_cpu(si.mode), le32_to_cpu(si.uid),
					le32_to_cpu(si.gid), now->tv_sec, now->tv_nsec,
					&a->dst_ino);
	free(copy);
	free(copy2);
	return ret;
}

/* One clone's result: a JSON line (batch), the JSON document, or a note. */
static struct json_object *result_json(const struct clone_args *a, bool dry_run)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "src-root", json_u64(a->src_root));
	json_object_object_add(o, "src-inode", json_u64(a->src_ino));
	json_object_object_add(o, "src-offset", json_u64(a->src_off));
	json_object_object_add(o, "dst-root", json_u64(a->dst_root));
	json_object_object_add(o, "dst-inode", json_u64(a->dst_ino));
	json_object_object_add(o, "dst-offset", json_u64(a->dst_off));
	json_object_object_add(o, "length", json_u64(a->cloned));
	json_object_object_add(o, "dry-run", json_object_new_boolean(dry_run));
	return o;
}

static void print_result(const struct clone_args *a, bool dry_run, unsigned long line)
{
	if (g_format == FORMAT_JSON && line) {
		struct json_object *o = result_json(a, dry_run);

		json_object_object_add(o, "line", json_u64(line));
		json_object_object_add(o, "result", json_object_new_string("cloned"));
		json_line_print(o);
		return;
	}
	if (g_format == FORMAT_JSON) {
		struct json_object *doc = json_doc_new();

		json_object_object_foreach(result_json(a, dry_run), k, v)
			json_object_object_add(doc, k, json_object_get(v));
		json_doc_print(doc);
		return;
	}
	note("%s%.0lu%s%s: root %llu inode %llu offset %llu -> root %llu inode %llu offset %llu, length %llu%s",
	     line ? "line " : "", line, line ? ": " : "", dry_run ? "Would reflink" : "Reflinked",
	     a->src_root, a->src_ino, a->src_off, a->dst_root, a->dst_ino, a->dst_off, a->cloned,
	     a->len ? "" : " (to the end of the source)");
}

/*
 * Source, destination and the clone in transaction t.  Returns 0, or a
 * negative errno with fs_errmsg(fs) set and *what naming the step.
 */
static int reflink_in(struct trans *t, const struct reflink_opts *o, struct clone_args *a,
		      const char **what)
{
	struct fs_info *fs = t->fs;
	struct root_ref sroot, droot;
	struct timespec now;
	int ret;

	clock_gettime(CLOCK_REALTIME, &now);
	*what = "source";
	ret = resolve(fs, &o->names->nc, o->root_id, &o->src, &sroot, &a->src_ino);
	if (!ret)
		ret = enc_names_check_inode(o->names, &sroot, a->src_ino);
	if (ret)
		return ret;
	*what = "destination";
	ret = resolve(fs, &o->names->nc, o->root_id, &o->dst, &droot, &a->dst_ino);
	if (ret == -ENOENT && o->create)
		ret = create_destination(t, o, &sroot, &droot, a, &now);
	else if (!ret)
		ret = enc_names_check_inode(o->names, &droot, a->dst_ino);
	if (ret)
		return ret;
	a->src_root = sroot.objectid;
	a->dst_root = droot.objectid;
	a->src_off = o->soff;
	a->len = o->len;
	a->dst_off = o->doff;
	a->now_sec = now.tv_sec;
	a->now_nsec = now.tv_nsec;
	*what = "cannot reflink";
	return clone_range(t, a);
}

static int reflink_one(struct cmd_context *ctx, const struct reflink_opts *o)
{
	struct clone_args a = { 0 };
	struct trans *t = NULL;
	const char *what = NULL;
	int ret;

	ret = trans_begin(ctx->fs, &t);
	if (ret)
		return cmd_engine_error(ctx->fs, ret, "cannot start a transaction");
	ret = reflink_in(t, o, &a, &what);
	if (ret)
		ret = cmd_engine_error(ctx->fs, ret, what);
	if (ret || o->dry_run) {
		trans_abort(t);
	} else {
		ret = trans_commit(t);
		if (ret)
			ret = cmd_engine_error(ctx->fs, ret, "commit failed");
	}
	if (!ret)
		print_result(&a, o->dry_run, 0);
	return ret;
}

/* ---- --batch ------------------------------------------------------------------ */

struct batch_line {
	unsigned long lineno;
	int argc;
	char **argv;		/* the line's words, argv[0] = "line" */
	char *words;		/* the one buffer argv[1..] point into */
	struct reflink_opts o;
	struct clone_args a;
	bool bad;		/* the line cannot be parsed: why says why */
	char why[160];
};

struct batch {
	struct batch_line *v;
	size_t nr, cap;
	size_t *pending;	/* lines cloned since the last commit, in order */
	size_t npending;
	unsigned long cloned, refused, commits;
};

/*
 * Split a line into words as sh does for plain words: blanks separate them,
 * single quotes keep everything, double quotes keep all but backslash
 * escapes, a backslash outside quotes escapes the next character.  Returns
 * the number of words ((*out)[0] is "line"; the others point into *words,
 * one buffer), -1 for unbalanced quotes or -ENOMEM.
 */
static int split_words(const char *line, char ***out, char **words)
{
	size_t len = strlen(line), n = 1, cap = 8;
	char **w = fault_malloc(cap * sizeof(*w)), *buf = fault_malloc(len + 1), *p = buf;
	const char *s = line;
	int err = -ENOMEM;

	if (!w || !buf)
		goto fail;
	w[0] = "line";
	while (*s) {
		char q = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (!*s)
			break;
		if (n + 1 >= cap) {
			char **nw = fault_realloc(w, (cap *= 2) * sizeof(*w));

			if (!nw)
				goto fail;	/* -ENOMEM */
			w = nw;
		}
		w[n++] = p;
		for (; *s && (q || (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')); s++) {
			if (!q && (*s == '\'' || *s == '"'))
				q = *s;
			else if (q && *s == q)
				q = 0;
			else if (*s == '\\' && q != '\'' && s[1])
				*p++ = *++s;
			else
				*p++ = *s;
		}
		if (q) {
			err = -1;
			goto fail;
		}
		*p++ = 0;
	}
	w[n] = NULL;
	*out = w;
	*words = buf;
	return (int)n;
fail:
	free(w);
	free(buf);
	return err;
}

static void batch_line_free(struct batch_line *l)
{
	/* Not argv[1]: getopt_long() permutes the words, options first. */
	free(l->words);
	free(l->argv);
}

/* The clone options and <src> <dst> of one line; defaults from the command line. */
static void parse_line(struct batch_line *l, const struct reflink_opts *cmdline)
{
	const char *why;
	int c, ret;

	l->o = (struct reflink_opts){ .root_id = cmdline->root_id, .dry_run = cmdline->dry_run,
				      .names = cmdline->names };
	optind = 0;
	while ((c = getopt_long(l->argc, l->argv, "", clone_opts, NULL)) != -1) {
		ret = clone_option(&l->o, c, optarg, l->why, sizeof(l->why));
		if (ret < 0) {
			l->bad = true;
			return;
		}
		if (!ret) {
			snprintf(l->why, sizeof(l->why), "'%s' is not a clone option",
				 optind > 0 ? l->argv[optind - 1] : "?");
			l->bad = true;
			return;
		}
	}
	why = clone_positionals(&l->o, l->argc, l->argv, 0);
	if (why) {
		snprintf(l->why, sizeof(l->why), "%s", why);
		l->bad = true;
	}
}

/* Read and parse every line of the batch.  Returns 0 or an exit code. */
static int batch_read(struct batch *b, const struct reflink_opts *o)
{
	FILE *f = strcmp(o->batch, "-") ? fopen(o->batch, "re") : stdin;
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;

	if (!f) {
		error("cannot open %s: %m", o->batch);
		return EXIT_PROBLEMS;
	}
	while (getline(&line, &cap, f) >= 0) {
		struct batch_line *l;
		const char *s = line + strspn(line, " \t");

		lineno++;
		if (*s == '#' || *s == '\n' || !*s)
			continue;
		if (b->nr == b->cap) {
			struct batch_line *nv = array_grow(b->v, &b->cap, b->nr, sizeof(*b->v));

			if (!nv)
				die_oom();
			b->v = nv;
		}
		l = &b->v[b->nr++];
		memset(l, 0, sizeof(*l));
		l->lineno = lineno;
		l->argc = split_words(s, &l->argv, &l->words);
		if (l->argc == -ENOMEM)
			die_oom();	/* before the first transaction */
		if (l->argc < 0) {
			l->argv = NULL;
			snprintf(l->why, sizeof(l->why), "unbalanced quotes");
			l->bad = true;
			continue;
		}
		parse_line(l, o);
	}
	free(line);
	if (f != stdin)
		fclose(f);
	b->pending = fault_calloc(b->nr + 1, sizeof(*b->pending));
	if (!b->pending)
		die_oom();
	return 0;
}

static void report_refused(const struct batch_line *l, const char *what, const char *msg, int code)
{
	if (g_format == FORMAT_JSON) {
		struct json_object *o = json_object_new_object(), *e = json_object_new_object();

		json_object_object_add(o, "line", json_u64(l->lineno));
		json_object_object_add(o, "result", json_object_new_string("refused"));
		json_object_object_add(e, "exit-status", json_object_new_int(code));
		json_object_object_add(e, "message", json_object_new_string(msg));
		json_object_object_add(o, "error", e);
		json_line_print(o);
	}
	error("line %lu: %s%s%s", l->lineno, what ? what : "", what ? ": " : "", msg);
}

/* Begin a transaction and clone again what the one just aborted held. */
static int batch_replay(struct fs_info *fs, struct batch *b, struct trans **t)
{
	const char *what;
	int ret = trans_begin(fs, t);

	for (size_t i = 0; !ret && i < b->npending; i++) {
		struct batch_line *l = &b->v[b->pending[i]];

		ret = reflink_in(*t, &l->o, &l->a, &what);
		if (ret)
			fs_err(fs, ret, "line %lu no longer clones: %s", l->lineno, fs_errmsg(fs));
	}
	return ret;
}

/* Commit (not in a dry run, nor with nothing to commit), report the pending clones, begin again. */
static int batch_commit(struct fs_info *fs, struct batch *b, struct trans **t, bool last, bool dry)
{
	int ret = 0;

	if (dry || !b->npending) {
		trans_abort(*t);
	} else {
		ret = trans_commit(*t);
		b->commits++;
	}
	*t = NULL;
	if (ret)
		return ret;
	for (size_t i = 0; i < b->npending; i++) {
		const struct batch_line *l = &b->v[b->pending[i]];

		print_result(&l->a, l->o.dry_run, l->lineno);
	}
	b->cloned += b->npending;
	b->npending = 0;
	return last ? 0 : trans_begin(fs, t);
}

/* A refused line is reported; an error of the image or the machine ends the batch. */
static bool batch_fatal(int err)
{
	return err == -EIO || err == -EUCLEAN || err == -ENOMEM || err == -ENOSPC;
}

static int batch_run_lines(struct fs_info *fs, struct batch *b, const struct reflink_opts *o)
{
	struct timespec start, now;
	struct trans *t = NULL;
	const char *what;
	int ret = trans_begin(fs, &t);

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (size_t i = 0; !ret && i < b->nr; i++) {
		struct batch_line *l = &b->v[i];

		if (l->bad) {
			report_refused(l, NULL, l->why, EXIT_USAGE);
			b->refused++;
			continue;
		}
		fs_clear_err(fs);
		ret = reflink_in(t, &l->o, &l->a, &what);
		if (ret && batch_fatal(ret))
			break;
		if (ret) {
			report_refused(l, what, fs_errmsg(fs), exit_code(ret, ERR_AT_RUN));
			b->refused++;
			/* The refusal may have come after a change: drop the transaction, redo the rest. */
			trans_abort(t);
			ret = batch_replay(fs, b, &t);
			continue;
		}
		b->pending[b->npending++] = i;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!o->dry_run && (b->npending >= o->commit_every ||
				    (unsigned long long)(now.tv_sec - start.tv_sec) >= o->commit_secs)) {
			ret = batch_commit(fs, b, &t, false, false);
			start = now;
		}
	}
	if (!ret)
		return batch_commit(fs, b, &t, true, o->dry_run);
	if (t)
		trans_abort(t);
	return ret;
}

static int reflink_batch(struct cmd_context *ctx, const struct reflink_opts *o)
{
	struct batch b = { 0 };
	int ret = batch_read(&b, o);

	if (!ret) {
		ret = batch_run_lines(ctx->fs, &b, o);
		if (ret)
			ret = cmd_engine_error(ctx->fs, ret, "batch stopped");
		else
			ret = b.refused ? EXIT_PROBLEMS : EXIT_OK;
		if (g_format == FORMAT_JSON) {
			struct json_object *s = json_object_new_object(), *l = json_object_new_object();

			json_object_object_add(s, "lines", json_u64(b.nr));
			json_object_object_add(s, "cloned", json_u64(b.cloned));
			json_object_object_add(s, "refused", json_u64(b.refused));
			json_object_object_add(s, "commits", json_u64(b.commits));
			json_object_object_add(s, "dry-run", json_object_new_boolean(o->dry_run));
			json_object_object_add(l, "summary", s);
			json_line_print(l);
		} else {
			note("%s %lu clones in %lu commits; %lu lines refused", o->dry_run ?
			     "Would reflink" : "Reflinked", b.cloned, b.commits, b.refused);
		}
	}
	for (size_t i = 0; i < b.nr; i++)
		batch_line_free(&b.v[i]);
	free(b.v);
	free(b.pending);
	return ret;
}

static int reflink_run(struct cmd_context *ctx)
{
	struct reflink_opts *o = ctx->opts;
	struct enc_names names;
	int ret = o->grow && !o->dry_run ? cmd_allow_grow(ctx->fs) : 0;

	if (ret)
		return ret;
	enc_names_init(&names, ctx->fs, ctx->mk);
	o->names = &names;
	ret = o->batch ? reflink_batch(ctx, o) : reflink_one(ctx, o);
	cmd_note_qgroups(ctx->fs);
	cmd_report_grow(ctx->fs);
	return ret;
}

DEFINE_COMMAND(reflink, "reflink", CMD_IMAGE_RW | CMD_MULTI_DEVICE | CMD_KEY_OPTIONAL | CMD_VERIFY, struct reflink_opts);

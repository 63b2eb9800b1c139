#!/usr/bin/env bash
# Bench: our `restore` against btrfs-progs' `btrfs restore` of the same
# ~1 GiB image, in the same run (goal: ours <= 0.5x its wall time).
#
#   bench/restore.sh [IMAGE]
#
# Without IMAGE, uses (building once, cached in $BENCH_DIR, default
# /var/tmp/extcrypt-bench) the ~1 GiB, ~50k-file image that
# bench/dump-tree.sh builds with mkfs.btrfs --rootdir.  The binary is
# $EXTCRYPT_BIN, else build/btrfs-extcrypt.  Both tools restore into fresh
# directories on the same filesystem, the page cache warm for the image;
# each runs $REPS times (default 3) and the best wall time counts.  btrfs
# restore runs as `btrfs restore -m -S -x` (metadata, symlinks, xattrs: what
# ours restores too); ours verifies every data csum, which btrfs restore
# does not.  Also prints the peak RSS of both.
#
# The output goes to tmpfs (a fresh directory under $BENCH_OUT, default
# /dev/shm), not next to the image.  On ext4, creating 50k files right
# after `rm -rf` of the previous run's 50k files sends the inode allocator
# scanning its recently-deleted inodes: both tools then spend tens of
# seconds in system time that has nothing to do with either of them, and
# the ratio measures the host filesystem.  tmpfs has no such state, so the
# figures are the tools' own.  Needs about 2x the restored size free there.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}
reps=${REPS:-3}
bench_dir=${BENCH_DIR:-/var/tmp/extcrypt-bench}
timebin=/usr/bin/time

die() { echo "ERROR: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no binary at $bin (build first, or set EXTCRYPT_BIN)"
command -v btrfs >/dev/null || die "btrfs-progs not installed (Debian package btrfs-progs)"
[ -x "$timebin" ] || die "$timebin missing (Debian package time)"

img=${1:-}
if [ -z "$img" ]; then
	img=$bench_dir/dump-tree-50k.img
	[ -s "$img" ] || EXTCRYPT_BIN=$bin REPS=1 "$top/bench/dump-tree.sh" >/dev/null
fi
[ -s "$img" ] || die "no image at $img"
out_top=${BENCH_OUT:-/dev/shm}
[ -d "$out_top" ] || die "no directory $out_top for the restored trees (BENCH_OUT)"
out=$(mktemp -d "$out_top/extcrypt-restore-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
cat "$img" > /dev/null	# warm the page cache for the image

# run_best NAME CMD...: best wall seconds and peak RSS (KiB) of REPS runs.
run_best() {
	local name=$1 best= rss= t r
	shift
	for _ in $(seq "$reps"); do
		rm -rf "$out/$name"
		mkdir -p "$out/$name"
		sync
		"$timebin" -f '%e %M' -o "$out/$name.time" "$@" "$out/$name" >/dev/null 2>"$out/$name.err" ||
			die "$name failed: $(tail -3 "$out/$name.err")"
		read -r t r < "$out/$name.time"
		if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$t
		fi
		rss=$r
	done
	echo "$best $rss"
}

read -r ours ours_rss < <(run_best ours "$bin" -q restore "$img")
read -r theirs theirs_rss < <(run_best theirs btrfs restore -m -S -x "$img")
files=$(find "$out/ours" -type f | wc -l)
bytes=$(du -sb "$out/ours" | cut -f1)
echo "image: $img ($files files, $bytes bytes restored)"
echo "output: $out_top ($(stat -f -c %T "$out_top"))"
echo "btrfs-extcrypt restore:       ${ours} s  peak RSS $((ours_rss / 1024)) MiB"
echo "btrfs restore -m -S -x:       ${theirs} s  peak RSS $((theirs_rss / 1024)) MiB"
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "ratio ours/btrfs-restore: %.3f (goal <= 0.5)\n", a / b }'
diff -r --no-dereference "$out/ours" "$out/theirs" > /dev/null && echo "trees identical" ||
	echo "trees differ (btrfs restore flattens hard links; see diff -r)"
rm -rf "$out"
# The exit status says whether the goal holds.
if awk -v a="$ours" -v b="$theirs" 'BEGIN { exit !(a > 0.5 * b) }'; then
	echo "bench/restore.sh: GOAL MISSED (ratio above 0.5)" >&2
	exit 1
fi

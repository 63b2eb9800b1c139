#!/usr/bin/env bash
# Bench: our full `inspect dump-tree` against btrfs-progs'
# `btrfs inspect-internal dump-tree` on the same image, in the same run.
#
#   bench/dump-tree.sh [IMAGE]
#
# Without IMAGE, builds (once, cached in $BENCH_DIR, default
# /var/tmp/extcrypt-bench) a ~1 GiB, ~50k-file image with mkfs.btrfs
# --rootdir.  The binary is $EXTCRYPT_BIN, else build/btrfs-extcrypt.
# Output goes to /dev/null; the cache is warmed first; each tool runs
# $REPS times (default 3) and the best wall time counts.  Prints the wall
# time ratio ours/progs (goal <= 1.0) and the peak RSS of both.
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
	if [ ! -s "$img" ]; then
		mkdir -p "$bench_dir"
		tree=$bench_dir/tree-50k
		if [ ! -d "$tree" ]; then
			echo "building the bench tree (50000 files, ~1 GiB) in $tree ..." >&2
			/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import fixtures; fixtures.make_bench_tree(sys.argv[2], nfiles=50000, total_mib=1024)' \
				"$top/tests" "$tree.tmp"
			mv "$tree.tmp" "$tree"
		fi
		echo "mkfs.btrfs --rootdir $tree $img ..." >&2
		rm -f "$img.tmp"
		truncate -s 2G "$img.tmp"
		mkfs.btrfs -q -f --rootdir "$tree" "$img.tmp" >/dev/null
		mv "$img.tmp" "$img"
	fi
fi
[ -r "$img" ] || die "cannot read $img"

# run LABEL CMD... : best wall seconds and max RSS (KiB) over $reps runs
run() {
	local label=$1; shift
	local best="" rss=0 i out w m
	for ((i = 0; i < reps; i++)); do
		out=$("$timebin" -f '%e %M' "$@" 2>&1 >/dev/null | tail -1)
		w=${out% *}; m=${out#* }
		if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$w; fi
		[ "$m" -gt "$rss" ] && rss=$m
	done
	printf '%-6s best wall %6.2f s   peak RSS %8d KiB\n' "$label" "$best" "$rss" >&2
	echo "$best $rss"
}

# warm the page cache and check both succeed
cat "$img" >/dev/null
"$bin" inspect dump-tree "$img" >/dev/null || die "our dump-tree failed on $img"
btrfs inspect-internal dump-tree "$img" >/dev/null || die "btrfs dump-tree failed on $img"

read -r ow orss < <(run ours "$bin" inspect dump-tree "$img")
read -r pw prss < <(run progs btrfs inspect-internal dump-tree "$img")
ratio=$(awk -v a="$ow" -v b="$pw" 'BEGIN{ if (b > 0) printf "%.3f", a/b; else print "inf" }')
echo "image: $img ($(du -h --apparent-size "$img" | cut -f1) apparent)"
echo "dump-tree wall time: ours ${ow}s, btrfs-progs ${pw}s, ratio ${ratio} (goal <= 1.0)"
echo "peak RSS: ours ${orss} KiB, btrfs-progs ${prss} KiB"

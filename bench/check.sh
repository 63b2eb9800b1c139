#!/bin/sh
# `btrfs-extcrypt check --check-data-csum` against `btrfs check --check-data-csum`
# on the same plain images, in the same run (design.md section 7).
#
# For each size (default ~1 GiB and ~4 GiB of data) a tree is generated with
# tests/fixtures.py bench-tree and put into an image with mkfs.btrfs
# --rootdir.  The image is read once to warm the page cache, then each tool
# runs BENCH_ROUNDS times in alternation; the best wall time of each is kept
# (other load only ever slows a round down).  Printed per size: both wall
# times, the ratio ours/progs (goal <= 0.5) and the peak RSS of both
# (/usr/bin/time -f %M, KiB).  When the build has the encrypt command, a copy
# of each image is encrypted (test key 00..3f) and checked the same way: the
# ratio to the plain-image run is printed (goal <= 1.1).
#
# usage: bench/check.sh [BINARY]
#   env: EXTCRYPT_BIN (default build/btrfs-extcrypt), BENCH_SIZES_MIB
#        (default "1024 4096"), BENCH_DIR (work dir, default /tmp/extcrypt-bench-check,
#        reused between runs), BENCH_ROUNDS (default 2), BENCH_THREADS (default: nproc)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}}
SIZES=${BENCH_SIZES_MIB:-"1024 4096"}
WORK=${BENCH_DIR:-/tmp/extcrypt-bench-check}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-$(nproc)}
PY=/usr/bin/python3

[ -x "$BIN" ] || { echo "bench/check.sh: binary '$BIN' not found" >&2; exit 2; }
command -v mkfs.btrfs >/dev/null || [ -x /usr/sbin/mkfs.btrfs ] ||
	{ echo "bench/check.sh: mkfs.btrfs not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/check.sh: /usr/bin/time not installed" >&2; exit 2; }
mkdir -p "$WORK"

# run_timed LABEL CMD...: appends "wall rss" of one run to $WORK/LABEL.times
run_timed() {
	label=$1
	shift
	/usr/bin/time -f "%e %M" -o "$WORK/$label.one" "$@" >/dev/null 2>"$WORK/$label.err" || {
		rc=$?
		# check exits 1 on problems: a benchmark image must be clean.
		echo "bench/check.sh: '$*' failed ($rc):" >&2
		tail -5 "$WORK/$label.err" >&2
		exit 1
	}
	tail -1 "$WORK/$label.one" >>"$WORK/$label.times"
}

best_of() {
	sort -n "$1" | head -1
}

for mib in $SIZES; do
	tree=$WORK/tree-$mib
	img=$WORK/plain-$mib.img
	if [ ! -f "$img" ]; then
		files=$((mib * 40))
		echo "generating $mib MiB tree ($files files) and image..." >&2
		rm -rf "$tree"
		$PY "$top/tests/fixtures.py" bench-tree "$tree" --files "$files" --mib "$mib"
		rm -f "$img"
		truncate -s $((mib * 13 / 10 + 512))M "$img"
		mkfs.btrfs -q -f --rootdir "$tree" "$img" >/dev/null
		rm -rf "$tree"
	fi
	cat "$img" >/dev/null	# warm the page cache for both tools alike
	rm -f "$WORK/ours.times" "$WORK/progs.times"
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		run_timed ours "$BIN" check --check-data-csum --threads "$THREADS" "$img"
		run_timed progs btrfs check --check-data-csum "$img"
		i=$((i + 1))
	done
	ours=$(best_of "$WORK/ours.times")
	progs=$(best_of "$WORK/progs.times")
	ours_t=${ours% *}
	ours_rss=$(sort -n -k2 "$WORK/ours.times" | tail -1 | cut -d' ' -f2)
	progs_t=${progs% *}
	progs_rss=$(sort -n -k2 "$WORK/progs.times" | tail -1 | cut -d' ' -f2)
	ratio=$(awk -v a="$ours_t" -v b="$progs_t" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
	echo "size ${mib}MiB: check --check-data-csum ${ours_t}s (peak RSS ${ours_rss} KiB)," \
		"btrfs check --check-data-csum ${progs_t}s (peak RSS ${progs_rss} KiB)," \
		"ratio ${ratio} (goal <= 0.5)"
	if "$BIN" encrypt --help >/dev/null 2>&1; then
		enc=$WORK/enc-$mib.img
		if [ ! -f "$enc" ]; then
			/usr/bin/python3 -c "import sys; sys.stdout.buffer.write(bytes(range(64)))" >"$WORK/key.bin"
			cp --sparse=always "$img" "$enc.tmp"
			"$BIN" encrypt --key-file "$WORK/key.bin" "$enc.tmp" >/dev/null
			mv "$enc.tmp" "$enc"
		fi
		cat "$enc" >/dev/null
		rm -f "$WORK/enc.times"
		i=0
		while [ "$i" -lt "$ROUNDS" ]; do
			run_timed enc "$BIN" check --check-data-csum --threads "$THREADS" "$enc"
			i=$((i + 1))
		done
		enc_best=$(best_of "$WORK/enc.times")
		enc_t=${enc_best% *}
		enc_rss=$(sort -n -k2 "$WORK/enc.times" | tail -1 | cut -d' ' -f2)
		eratio=$(awk -v a="$enc_t" -v b="$ours_t" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
		echo "size ${mib}MiB: encrypted image check --check-data-csum ${enc_t}s (peak RSS ${enc_rss} KiB)," \
			"ratio to the plain image ${eratio} (goal <= 1.1)"
	else
		echo "size ${mib}MiB: encrypted run skipped: no encrypt command in this build"
	fi
done

#!/bin/sh
# Peak memory and time per file against the number of files (issue 16
# "Scale", Documentation/design.rst section 7).
#
# For each count N (default 10,000, 100,000 and 1,000,000) a tree of N files
# of 4 KiB each (one data extent per file, 1,000 files per directory, random
# contents) is put into an image with mkfs.btrfs --rootdir, once, and kept in
# BENCH_DIR.  On a copy of it, in this order:
#   enc      btrfs-extcrypt encrypt
#   check    btrfs-extcrypt check --check-data-csum --key-file
#   restore  btrfs-extcrypt restore --key-file into an empty directory
#   dec      btrfs-extcrypt decrypt
# Each is timed once (/usr/bin/time: wall, peak RSS).  The table gives peak
# RSS in MiB and microseconds per file; at the end, for each command, the
# largest time per file over the smallest.  Goals: peak RSS <= 256 MiB at
# every count, and time per file flat within 1.5x across the counts; a miss
# or a failing command makes the script exit 1.  Not timed: after decrypt,
# `btrfs check --check-data-csum` must pass and the restored tree must equal
# the source tree (diff -r).
#
# usage: bench/scale.sh [BINARY]
#   env: EXTCRYPT_BIN (default build/btrfs-extcrypt), BENCH_COUNTS (default
#        "10000 100000 1000000"), BENCH_DIR (default /tmp/extcrypt-bench-scale,
#        source trees and images kept between runs), BENCH_THREADS (default nproc)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}}
COUNTS=${BENCH_COUNTS:-"10000 100000 1000000"}
WORK=${BENCH_DIR:-/tmp/extcrypt-bench-scale}
THREADS=${BENCH_THREADS:-$(nproc)}
PY=/usr/bin/python3
BENCH_NAME=bench/scale.sh

[ -x "$BIN" ] || { echo "bench/scale.sh: binary '$BIN' not found" >&2; exit 2; }
command -v mkfs.btrfs >/dev/null || { echo "bench/scale.sh: mkfs.btrfs not installed" >&2; exit 2; }
mkdir -p "$WORK"
. "$top/bench/timing.sh"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(64)))" >"$WORK/key.bin"

# make_tree DIR N: N files of 4 KiB, 1,000 per directory
make_tree() {
	$PY - "$1" "$2" <<'EOF'
import os, sys
dest, n = sys.argv[1], int(sys.argv[2])
os.makedirs(dest + ".tmp", exist_ok=True)
for i in range(n):
    d = os.path.join(dest + ".tmp", "d%04d" % (i // 1000))
    if i % 1000 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%07d" % i), "wb") as f:
        f.write(os.urandom(4096))
os.rename(dest + ".tmp", dest)
EOF
}

printf '%-9s %-8s %10s %10s %12s\n' files command "wall s" "RSS MiB" "us/file"
for n in $COUNTS; do
	tree=$WORK/tree-$n img=$WORK/plain-$n.img work=$WORK/work.img out=$WORK/restored
	[ -d "$tree" ] || make_tree "$tree" "$n"
	if [ ! -f "$img" ]; then
		# data x 2.5 (ciphertext beside plaintext until a batch commits) + metadata
		size=$(( n * 4096 * 5 / 2 + n * 2048 + 256 * 1048576 ))
		truncate -s "$size" "$img.tmp"
		mkfs.btrfs -q -f --rootdir "$tree" "$img.tmp" >/dev/null
		mv "$img.tmp" "$img"
	fi
	cp --sparse=always "$img" "$work"
	rm -rf "$out"
	for label in enc check restore dec; do
		rm -f "$WORK/$label.times"
	done
	run_timed enc "$BIN" encrypt --threads "$THREADS" --key-file "$WORK/key.bin" "$work" || true
	run_timed check "$BIN" check --check-data-csum --key-file "$WORK/key.bin" "$work" || true
	run_timed restore "$BIN" restore --key-file "$WORK/key.bin" "$work" "$out" || true
	run_timed dec "$BIN" decrypt --threads "$THREADS" --key-file "$WORK/key.bin" "$work" || true
	for label in enc check restore dec; do
		[ -f "$WORK/$label.times" ] || continue
		t=$(best_t "$WORK/$label.times")
		rss=$(max_rss "$WORK/$label.times")
		us=$(awk -v t="$t" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / n }')
		printf '%-9s %-8s %10s %10.1f %12s\n' "$n" "$label" "$t" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$us"
		echo "$n $us $rss" >>"$WORK/$label.table"
		if [ "$rss" -gt $((256 * 1024)) ]; then
			echo "$BENCH_NAME: $label at $n files: peak RSS $((rss / 1024)) MiB > 256 MiB" >&2
			failed=1
		fi
	done
	btrfs check --check-data-csum "$work" >"$WORK/btrfs-check.out" 2>&1 ||
		{ echo "$BENCH_NAME: btrfs check failed after decrypt at $n files" >&2; failed=1; }
	diff -rq "$tree" "$out" >/dev/null ||
		{ echo "$BENCH_NAME: restored tree differs from the source at $n files" >&2; failed=1; }
	rm -rf "$out" "$work"
done
echo
for label in enc check restore dec; do
	[ -f "$WORK/$label.table" ] || continue
	awk -v l="$label" '{ if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2 }
		END { r = max / min; printf "%-8s time per file, largest / smallest: %.2f%s\n", l, r,
		      (r > 1.5 ? "  (goal <= 1.5: MISSED)" : "") ; exit (r > 1.5) }' "$WORK/$label.table" || failed=1
	rm -f "$WORK/$label.table"
done
exit $failed

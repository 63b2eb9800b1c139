#!/bin/sh
# Two builds of btrfs-extcrypt, back to back on the same machine: encrypt and
# decrypt of the same image, in alternating pairs (issue 12 "Must hold":
# before and after differ by no more than noise).
#
# bench/encrypt.sh keeps the best of a few rounds, and on a host whose
# writeback varies that best swings by 2x between invocations (seen: encrypt
# 1.20 s and 2.30 s for one binary, the difference all in system time).
# Here every pair runs both binaries on fresh copies made the same way
# (cp --sparse=always, then sync), in the order before, after; the table
# gives min, median and max of each, the ratio of the medians, and the
# spread of each side (max - min over the median), which is the noise the
# ratio must be read against.  Wall, user and system seconds come from
# /usr/bin/time.  Not timed: after each decrypt, `btrfs check` of the image
# must be clean (a failure is reported and the script exits 1).
#
# usage: bench/compare.sh BEFORE_BINARY AFTER_BINARY
#   env: BENCH_MIB (default 1024), BENCH_PAIRS (default 8), BENCH_DIR
#        (default /tmp/extcrypt-bench-compare, the image is kept),
#        BENCH_THREADS (default nproc)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
[ $# = 2 ] || { echo "usage: bench/compare.sh BEFORE_BINARY AFTER_BINARY" >&2; exit 2; }
BEFORE=$1
AFTER=$2
MIB=${BENCH_MIB:-1024}
PAIRS=${BENCH_PAIRS:-8}
WORK=${BENCH_DIR:-/tmp/extcrypt-bench-compare}
THREADS=${BENCH_THREADS:-$(nproc)}
PY=/usr/bin/python3
for b in "$BEFORE" "$AFTER"; do
	[ -x "$b" ] || { echo "bench/compare.sh: binary '$b' not found" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench/compare.sh: /usr/bin/time not installed" >&2; exit 2; }
mkdir -p "$WORK"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(64)))" >"$WORK/key.bin"

# The image of bench/encrypt.sh (same tree and mkfs recipe).
img=$WORK/plain-$MIB.img
if [ ! -f "$img" ]; then
	echo "generating $MIB MiB tree ($((MIB * 40)) files) and image..." >&2
	rm -rf "$WORK/tree"
	$PY "$top/tests/lib/fixtures.py" bench-tree "$WORK/tree" --files $((MIB * 40)) --mib "$MIB"
	truncate -s $((MIB * 13 / 10 + 512))M "$img.tmp"
	mkfs.btrfs -q -f --rootdir "$WORK/tree" "$img.tmp" >/dev/null
	mv "$img.tmp" "$img"
	rm -rf "$WORK/tree"
fi
cat "$img" >/dev/null

failed=0
rm -f "$WORK"/*.t
i=0
while [ "$i" -lt "$PAIRS" ]; do
	for side in before after; do
		bin=$BEFORE
		[ $side = after ] && bin=$AFTER
		work=$WORK/work.img
		rm -f "$work"
		cp --sparse=always "$img" "$work"
		sync
		for cmd in encrypt decrypt; do
			if ! /usr/bin/time -f "%e %U %S" -o "$WORK/one" "$bin" "$cmd" --threads "$THREADS" \
				--key-file "$WORK/key.bin" "$work" >/dev/null 2>"$WORK/err"; then
				echo "bench/compare.sh: FAILED: $side $cmd:" >&2
				tail -2 "$WORK/err" >&2
				failed=1
				continue
			fi
			tail -1 "$WORK/one" >>"$WORK/$side-$cmd.t"
		done
		btrfs check "$work" >/dev/null 2>&1 ||
			{ echo "bench/compare.sh: FAILED: btrfs check after the $side round trip" >&2; failed=1; }
	done
	i=$((i + 1))
done
rm -f "$WORK/work.img"

# stats FILE COLUMN: "min median max" of one column
stats() {
	cut -d' ' -f"$2" "$1" | sort -n | awk '{ v[NR] = $1 }
		END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		      printf "%.2f %.2f %.2f", v[1], m, v[NR] }'
}

echo "bench/compare.sh: $PAIRS pairs, $MIB MiB image, threads $THREADS, $(nproc) CPUs, host $(uname -r)"
echo "  before: $BEFORE"
echo "  after:  $AFTER"
for cmd in encrypt decrypt; do
	[ -s "$WORK/before-$cmd.t" ] && [ -s "$WORK/after-$cmd.t" ] || continue
	set -- $(stats "$WORK/before-$cmd.t" 1) $(stats "$WORK/after-$cmd.t" 1)
	awk -v c="$cmd" -v b0="$1" -v bm="$2" -v b1="$3" -v a0="$4" -v am="$5" -v a1="$6" 'BEGIN {
		printf "%s wall: before min %.2f median %.2f max %.2f (spread %.0f%%); after min %.2f median %.2f max %.2f (spread %.0f%%); after/before medians %.2f\n",
			c, b0, bm, b1, 100 * (b1 - b0) / bm, a0, am, a1, 100 * (a1 - a0) / am, am / bm }'
	for col in 2 3; do
		name=user
		[ $col = 3 ] && name=sys
		echo "  $cmd $name median: before $(stats "$WORK/before-$cmd.t" $col | cut -d' ' -f2)," \
			"after $(stats "$WORK/after-$cmd.t" $col | cut -d' ' -f2)"
	done
done
exit $failed

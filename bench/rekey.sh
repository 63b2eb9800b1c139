#!/bin/sh
# `btrfs-extcrypt rekey` against `encrypt` of the same plain image, in the
# same run (issue 18), and, when cryptsetup is installed, against
# `cryptsetup reencrypt` of a LUKS2 file of the same size (a second
# reference: a whole-device key change, which also rewrites every block).
#
# For each size (default ~1 GiB of data) the mixed tree of bench/encrypt.sh
# (tests/lib/fixtures.py bench-tree, 40 files per MiB) is put into an image
# with mkfs.btrfs --rootdir, once, and kept in BENCH_DIR; page cache WARM
# (the source image is read first; drop_caches is not used).  Each round:
#   cp     cp --sparse=always PLAIN WORK
#   enc    btrfs-extcrypt encrypt --key-file A WORK          (timed)
#   rekey  btrfs-extcrypt rekey --key-file A --new-key-file B WORK  (timed)
#   luks   cryptsetup reencrypt --force-offline-reencrypt of a LUKS2 file as
#          large as the data rekey rewrote (pbkdf2 with 1000 iterations, so
#          that key slots cost nothing; timed)
# Not timed: after every rekey `btrfs-extcrypt check --key-file B` must be
# clean and `check --key-file A` a key error (exit 4).  The best wall time of
# BENCH_ROUNDS rounds and the peak RSS are printed, with the ratios
# rekey/encrypt and rekey/luks.
#
# usage: bench/rekey.sh [BINARY]
#   env: EXTCRYPT_BIN, BENCH_SIZES_MIB (default "1024"), BENCH_DIR (default
#        /tmp/extcrypt-bench-rekey), BENCH_ROUNDS (default 2), BENCH_THREADS
#        (default nproc)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}}
SIZES=${BENCH_SIZES_MIB:-"1024"}
WORK=${BENCH_DIR:-/tmp/extcrypt-bench-rekey}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-$(nproc)}
PY=/usr/bin/python3

[ -x "$BIN" ] || { echo "bench/rekey.sh: binary '$BIN' not found" >&2; exit 2; }
"$BIN" rekey --help >/dev/null 2>&1 || { echo "bench/rekey.sh: no rekey command in $BIN" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/rekey.sh: /usr/bin/time not installed" >&2; exit 2; }
CS=$(command -v cryptsetup || true)
mkdir -p "$WORK"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(64)))" >"$WORK/a.key"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(64, 128)))" >"$WORK/b.key"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(32)))" >"$WORK/luks.key"

BENCH_NAME=bench/rekey.sh
. "$top/bench/timing.sh"
json() { $PY -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

echo "bench/rekey.sh: $BIN, threads $THREADS, $ROUNDS rounds, $(nproc) CPUs, host $(uname -r)"
echo "cache: WARM; cryptsetup: ${CS:-not installed (apt-get install cryptsetup-bin)}"
for mib in $SIZES; do
	img=$WORK/plain-$mib.img
	if [ ! -f "$img" ]; then
		tree=$WORK/tree-$mib
		echo "generating $mib MiB tree and image..." >&2
		rm -rf "$tree"
		$PY "$top/tests/lib/fixtures.py" bench-tree "$tree" --files $((mib * 40)) --mib "$mib"
		rm -f "$img.tmp"
		truncate -s $((mib * 13 / 10 + 512))M "$img.tmp"
		mkfs.btrfs -q -f --rootdir "$tree" "$img.tmp" >/dev/null
		mv "$img.tmp" "$img"
		rm -rf "$tree"
	fi
	work=$WORK/work-$mib.img
	cat "$img" >/dev/null
	rm -f "$WORK"/enc.times "$WORK"/rekey.times "$WORK"/luks.times
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		i=$((i + 1))
		rm -f "$work"
		cp --sparse=always "$img" "$work"
		sync -f "$work"
		run_timed enc "$BIN" --format json encrypt --threads "$THREADS" --key-file "$WORK/a.key" "$work" ||
			continue
		run_timed rekey "$BIN" --format json rekey --threads "$THREADS" --key-file "$WORK/a.key" \
			--new-key-file "$WORK/b.key" "$work" || continue
		bytes=$(json "$WORK/rekey.out" bytes)
		commits=$(json "$WORK/rekey.out" commits)
		"$BIN" check --key-file "$WORK/b.key" "$work" >/dev/null 2>&1 ||
			{ echo "bench/rekey.sh: FAILED: check --key-file B after rekey" >&2; failed=1; }
		rc=0
		"$BIN" check --key-file "$WORK/a.key" "$work" >/dev/null 2>&1 || rc=$?
		[ "$rc" = 4 ] || { echo "bench/rekey.sh: FAILED: check --key-file A exit $rc (want 4)" >&2; failed=1; }
		rm -f "$work"
		if [ -n "$CS" ]; then
			luks=$WORK/luks-$mib.img
			rm -f "$luks"
			# LUKS2 header (16 MiB) + as much data as rekey rewrote
			truncate -s $((bytes / 1048576 + 16 + 1))M "$luks"
			"$CS" luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
				--key-file "$WORK/luks.key" "$luks"
			sync -f "$luks"
			run_timed luks "$CS" reencrypt -q --force-offline-reencrypt --key-file "$WORK/luks.key" \
				--pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$luks" || true
			rm -f "$luks"
		fi
	done
	[ -s "$WORK/rekey.times" ] || { echo "size ${mib}MiB: no successful rekey"; continue; }
	enc_t=$(best_t "$WORK/enc.times")
	rk_t=$(best_t "$WORK/rekey.times")
	data_mib=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
	echo "size ${mib}MiB (${data_mib} MiB of data extents rekeyed, ${commits} commits):"
	echo "  encrypt ${enc_t}s, peak RSS $(max_rss "$WORK/enc.times") KiB"
	echo "  rekey   ${rk_t}s ($(awk -v b="$bytes" -v t="$rk_t" 'BEGIN { printf "%.0f", (t > 0 ? b / 1048576 / t : 0) }') MiB/s), peak RSS $(max_rss "$WORK/rekey.times") KiB; rekey/encrypt $(ratio "$rk_t" "$enc_t")"
	if [ -s "$WORK/luks.times" ]; then
		luks_t=$(best_t "$WORK/luks.times")
		echo "  cryptsetup reencrypt (LUKS2 file, offline, ${data_mib} MiB) ${luks_t}s; rekey/luks $(ratio "$rk_t" "$luks_t")"
	fi
done
[ "$failed" = 0 ] || { echo "bench/rekey.sh: some runs FAILED (see above)"; exit 1; }

#!/bin/sh
# `btrfs-extcrypt encrypt` and `decrypt` against durable references on the
# same image, in the same run (issue 16 "Must hold", Documentation/design.rst
# section 7).
#
# For each size (default ~1 GiB and ~4 GiB of data) a mixed tree (skewed file
# sizes, 40 files per MiB: many small files, a few big ones; tests/lib/fixtures.py
# bench-tree) is put into an image with mkfs.btrfs --rootdir, once, and kept
# in BENCH_DIR.  The image is then read once (page cache warm: dropping caches
# is not allowed here, so every number below is WARM for the source image).
# Each round:
#   cp     cp --sparse=always PLAIN WORK
#   sync   sync -f WORK, timed separately: cp leaves its data dirty in the page
#          cache while encrypt/decrypt fdatasync, so the reference is cp+sync,
#          a durable copy
#   enc    btrfs-extcrypt encrypt --threads T WORK  (in place, on the copy)
#   dec    btrfs-extcrypt decrypt --threads T WORK
#   floor  dd of as many MiB as encrypt wrote, from /dev/zero into a new file
#          beside WORK, oflag=direct conv=fsync: how long this disk takes to
#          store that much durably (encrypt's ciphertext is on disk before
#          the superblock that names it)
#   luks   cryptsetup reencrypt --encrypt (LUKS2, offline, 32 MiB header
#          room taken from the end) of another copy of the same image file,
#          made (not timed) as WORK is: what encrypting the whole file in
#          place costs at the block layer
# The best wall time of BENCH_ROUNDS rounds is kept (load only slows a round
# down); peak RSS (/usr/bin/time -f %M, KiB) is the maximum over the rounds.
# Goals, for encrypt and for decrypt: <= 0.9 x cp+sync (converting in place
# costs less than a durable copy), <= 1.0 x the durable floor, <= 0.2 x
# cryptsetup; peak RSS <= 256 MiB; at the end the RSS of the largest size
# over the smallest (goal: independent of size).  Without cryptsetup
# (Debian: cryptsetup-bin) its goal is not judged, and the bench says so.
# Not timed: after every encrypt `btrfs-extcrypt check` must be clean, and
# after every decrypt `btrfs check --check-data-csum`; a failing command or
# check is reported (FAILED), the remaining runs go on, and the script exits 1.
#
# usage: bench/encrypt.sh [BINARY]
#   env: EXTCRYPT_BIN (default build/btrfs-extcrypt), BENCH_SIZES_MIB (default
#        "1024 4096"), BENCH_DIR (default /tmp/extcrypt-bench-encrypt, images
#        kept between runs), BENCH_ROUNDS (default 2), BENCH_THREADS (default nproc),
#        BENCH_MKFS_ARGS (extra mkfs.btrfs options, default none; e.g. "-m single"
#        gives a layout where every chunk has logical == physical),
#        BENCH_FILES_PER_MIB (default 40: the check bench's mix; fewer files
#        mean fewer, bigger extents and less metadata)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}}
SIZES=${BENCH_SIZES_MIB:-"1024 4096"}
WORK=${BENCH_DIR:-/tmp/extcrypt-bench-encrypt}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-$(nproc)}
PY=/usr/bin/python3
MKFS_ARGS=${BENCH_MKFS_ARGS:-}
FPM=${BENCH_FILES_PER_MIB:-40}
tag=$(printf '%s' "$MKFS_ARGS" | tr -c 'a-zA-Z0-9' '_')
[ "$FPM" = 40 ] || tag="$tag-fpm$FPM"

[ -x "$BIN" ] || { echo "bench/encrypt.sh: binary '$BIN' not found" >&2; exit 2; }
"$BIN" encrypt --help >/dev/null 2>&1 || { echo "bench/encrypt.sh: no encrypt command in $BIN" >&2; exit 2; }
command -v mkfs.btrfs >/dev/null || [ -x /usr/sbin/mkfs.btrfs ] ||
	{ echo "bench/encrypt.sh: mkfs.btrfs not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench/encrypt.sh: /usr/bin/time not installed" >&2; exit 2; }
mkdir -p "$WORK"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(64)))" >"$WORK/key.bin"

BENCH_NAME=bench/encrypt.sh
. "$top/bench/timing.sh"
CS=$(command -v cryptsetup || true)
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(32)))" >"$WORK/luks.key"

# goals REF REF_T LIMIT: encrypt and decrypt each at most LIMIT x the
# reference's time, or "<size>:encrypt/REF" (decrypt) joins the missed goals
goals() {
	for side in encrypt decrypt; do
		t=$enc_t
		[ $side = decrypt ] && t=$dec_t
		awk -v a="$(ratio "$t" "$2")" -v b="$3" 'BEGIN { exit !(a > b) }' &&
			missed="$missed ${mib}MiB:$side/$1"
	done
	return 0
}

# the image after encrypt must be clean (not timed); a broken image is reported
check_image() {
	"$BIN" check "$1" >"$WORK/check.out" 2>"$WORK/check.err" || {
		echo "bench/encrypt.sh: FAILED: btrfs-extcrypt check after $2 (exit $?):" \
			"$(grep -c '^ERROR' "$WORK/check.err") errors, first:" >&2
		grep '^ERROR' "$WORK/check.err" | head -2 | cut -c1-200 >&2
		failed=1
	}
}

echo "bench/encrypt.sh: $BIN, threads $THREADS, $ROUNDS rounds, $(nproc) CPUs, host $(uname -r)"
echo "cache: WARM (source image read before the rounds; drop_caches not used); mkfs options: ${MKFS_ARGS:-default}, $FPM files per MiB"
echo "cryptsetup: ${CS:-not installed (apt-get install cryptsetup-bin): its goal is not judged}"
first_rss=""
missed=""
for mib in $SIZES; do
	tree=$WORK/tree-$mib
	img=$WORK/plain-$mib$tag.img
	if [ ! -f "$img" ]; then
		files=$((mib * FPM))
		echo "generating $mib MiB tree ($files files) and image..." >&2
		rm -rf "$tree"
		$PY "$top/tests/lib/fixtures.py" bench-tree "$tree" --files "$files" --mib "$mib"
		rm -f "$img.tmp"
		truncate -s $((mib * 13 / 10 + 512))M "$img.tmp"
		# shellcheck disable=SC2086
		mkfs.btrfs -q -f $MKFS_ARGS --rootdir "$tree" "$img.tmp" >/dev/null
		mv "$img.tmp" "$img"
		rm -rf "$tree"
	fi
	work=$WORK/work-$mib$tag.img
	cat "$img" >/dev/null
	rm -f "$WORK"/cp.times "$WORK"/sync.times "$WORK"/enc.times "$WORK"/dec.times "$WORK"/floor.times \
		"$WORK"/luks.times
	i=0
	while [ "$i" -lt "$ROUNDS" ]; do
		rm -f "$work"
		sync
		run_timed cp cp --sparse=always "$img" "$work"
		run_timed sync sync -f "$work"
		run_timed enc "$BIN" --format json encrypt --threads "$THREADS" --key-file "$WORK/key.bin" "$work" ||
			break
		bytes=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['bytes'])" "$WORK/enc.out")
		commits=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['commits'])" "$WORK/enc.out")
		check_image "$work" "encrypt (${mib} MiB, round $i)"
		run_timed dec "$BIN" --format json decrypt --threads "$THREADS" --key-file "$WORK/key.bin" "$work" ||
			{ i=$((i + 1)); continue; }
		btrfs check --check-data-csum "$work" >/dev/null 2>&1 ||
			{ echo "bench/encrypt.sh: FAILED: btrfs check of the decrypted $mib MiB image" >&2; failed=1; }
		rm -f "$work"
		sync
		run_timed floor dd if=/dev/zero of="$WORK/floor.img" bs=1M \
			count=$(((bytes + 1048575) / 1048576)) oflag=direct conv=fsync status=none || true
		rm -f "$WORK/floor.img"
		if [ -n "$CS" ]; then
			luks=$WORK/luks-$mib$tag.img
			rm -f "$luks"
			cp --sparse=always "$img" "$luks"
			sync -f "$luks"
			run_timed luks "$CS" reencrypt --encrypt -q --type luks2 --reduce-device-size 32M \
				--key-file "$WORK/luks.key" --pbkdf pbkdf2 --pbkdf-force-iterations 1000 "$luks" ||
				true
			rm -f "$luks"
			sync
		fi
		i=$((i + 1))
	done
	[ -s "$WORK/enc.times" ] || { echo "size ${mib}MiB: no successful encrypt"; continue; }
	[ -s "$WORK/dec.times" ] || echo "0 0" >"$WORK/dec.times"
	cp_t=$(best_t "$WORK/cp.times")
	sync_t=$(best_t "$WORK/sync.times")
	cps_t=$(awk -v a="$cp_t" -v b="$sync_t" 'BEGIN { printf "%.2f", a + b }')
	enc_t=$(best_t "$WORK/enc.times")
	dec_t=$(best_t "$WORK/dec.times")
	enc_rss=$(max_rss "$WORK/enc.times")
	goals cp+sync "$cps_t" 0.9
	[ "$enc_rss" -le 262144 ] || missed="$missed ${mib}MiB:rss"
	dec_rss=$(max_rss "$WORK/dec.times")
	imgsz=$(du -kL --apparent-size "$img" | cut -f1)
	used=$(du -kL "$img" | cut -f1)
	data_mib=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
	echo "size ${mib}MiB (image $((imgsz / 1024)) MiB, $((used / 1024)) MiB allocated; ${data_mib} MiB of data extents encrypted, ${commits} commits):"
	echo "  cp ${cp_t}s, sync ${sync_t}s (cp+sync ${cps_t}s)"
	echo "  encrypt ${enc_t}s ($(awk -v b="$bytes" -v t="$enc_t" 'BEGIN { printf "%.0f", (t > 0 ? b / 1048576 / t : 0) }') MiB/s), to cp+sync $(ratio "$enc_t" "$cps_t") (goal <= 0.9), to cp $(ratio "$enc_t" "$cp_t"); peak RSS ${enc_rss} KiB (goal <= 262144)"
	echo "  decrypt ${dec_t}s ($(awk -v b="$bytes" -v t="$dec_t" 'BEGIN { printf "%.0f", (t > 0 ? b / 1048576 / t : 0) }') MiB/s), to cp+sync $(ratio "$dec_t" "$cps_t") (goal <= 0.9), to cp $(ratio "$dec_t" "$cp_t"); peak RSS ${dec_rss} KiB"
	if [ -s "$WORK/floor.times" ]; then
		floor_t=$(best_t "$WORK/floor.times")
		echo "  durable floor: ${data_mib} MiB written with O_DIRECT and fsync (dd) in ${floor_t}s;" \
			"encrypt / floor $(ratio "$enc_t" "$floor_t"), decrypt / floor $(ratio "$dec_t" "$floor_t") (goal <= 1.0)"
		goals floor "$floor_t" 1.0
	fi
	if [ -s "$WORK/luks.times" ]; then
		luks_t=$(best_t "$WORK/luks.times")
		echo "  cryptsetup reencrypt --encrypt of the image file ($((imgsz / 1024)) MiB) ${luks_t}s;" \
			"encrypt / cryptsetup $(ratio "$enc_t" "$luks_t"), decrypt / cryptsetup $(ratio "$dec_t" "$luks_t") (goal <= 0.2)"
		goals cryptsetup "$luks_t" 0.2
	fi
	[ -n "$first_rss" ] || { first_rss=$enc_rss; first_mib=$mib; first_drss=$dec_rss; }
	last_rss=$enc_rss
	last_drss=$dec_rss
	last_mib=$mib
	rm -f "$work"
done
if [ -n "$first_rss" ] && [ "$first_mib" != "$last_mib" ]; then
	echo "peak RSS ${last_mib}MiB / ${first_mib}MiB: encrypt $(ratio "$last_rss" "$first_rss"), decrypt $(ratio "$last_drss" "$first_drss") (goal: ~1, independent of image size)"
fi
[ "$failed" = 0 ] || { echo "bench/encrypt.sh: some runs FAILED (see above); numbers of failed runs are left out"; exit 1; }
# The exit status says whether every goal held.
[ -z "$missed" ] || { echo "bench/encrypt.sh: GOAL MISSED:$missed" >&2; exit 1; }

#!/bin/sh
# Metadata of an image with snapshots, before encrypt, after encrypt and after
# decrypt (issue 16 "Snapshots", Documentation/design.rst section 7).
#
# For each count S (default 0, 10 and 100) the kernel makes an image (loop
# mount, so this needs root): a subvolume `sv` of BENCH_FILES (default
# 20,000) files of 100 B to 12 KiB in 100 directories, then S read-only
# snapshots of it, with 5 files of sv rewritten before each.  Kept in
# BENCH_DIR.  On a copy: encrypt, then decrypt (every subvolume a target).
# Metadata bytes are the `used` of the METADATA block groups as btrfs-progs'
# dump-tree prints them (not our tool).  The table: metadata before, after
# encrypt and after decrypt, the ratios, and the times.  Goals: after
# encrypt <= 1.3 x before, after decrypt <= 1.1 x before.  Not timed: after
# decrypt, `btrfs check --check-data-csum` passes and a kernel mount shows
# every file of every snapshot with its contents as before (sha256 of each).
# A missed goal or a failed command or check makes the script exit 1.
#
# usage: bench/snapshots.sh [BINARY]
#   env: EXTCRYPT_BIN (default build/btrfs-extcrypt), BENCH_SNAPS (default
#        "0 10 100"), BENCH_FILES (default 20000), BENCH_DIR (default
#        /tmp/extcrypt-bench-snapshots)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${1:-${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}}
SNAPS=${BENCH_SNAPS:-"0 10 100"}
FILES=${BENCH_FILES:-20000}
WORK=${BENCH_DIR:-/tmp/extcrypt-bench-snapshots}
PY=/usr/bin/python3
BENCH_NAME=bench/snapshots.sh

[ -x "$BIN" ] || { echo "$BENCH_NAME: binary '$BIN' not found" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$BENCH_NAME: needs root (the kernel makes the snapshots)" >&2; exit 2; }
mkdir -p "$WORK"
. "$top/bench/timing.sh"
$PY -c "import sys; sys.stdout.buffer.write(bytes(range(64)))" >"$WORK/key.bin"
mnt=$WORK/mnt
mkdir -p "$mnt"

# meta_used IMG: bytes used in METADATA block groups, read by the tests'
# own parser of the format (tests/lib/btrfs_ondisk.py), not by our tool:
# btrfs-progs refuses an image with the encryption incompat bit
meta_used() {
	$PY - "$top/tests/lib" "$1" <<'PYEOF'
import struct, sys
sys.path.insert(0, sys.argv[1])
import btrfs_ondisk as bo
METADATA = 1 << 2
with bo.Image(sys.argv[2]) as img:
    roots = img.tree_roots()
    tid = bo.BLOCK_GROUP_TREE if bo.BLOCK_GROUP_TREE in roots else bo.EXTENT_TREE
    used = 0
    for b in img.walk(roots[tid][0], tid):
        if b.level:
            continue
        for it in b.items():
            if it.key.type == bo.BLOCK_GROUP_ITEM:
                u, _chunk, flags = struct.unpack_from("<QQQ", b.item_data(it))
                used += u if flags & METADATA else 0
print(used)
PYEOF
}

# manifest DIR OUT: path, size and sha256 of every file and symlink below DIR
manifest() {
	$PY - "$1" >"$2" <<'EOF'
import hashlib, os, sys
top = sys.argv[1]
for d, dirs, files in os.walk(top):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        if os.path.islink(p):
            print(os.path.relpath(p, top), "->", os.readlink(p))
        else:
            with open(p, "rb") as fh:
                print(os.path.relpath(p, top), os.path.getsize(p),
                      hashlib.sha256(fh.read()).hexdigest())
EOF
}

make_image() {
	img=$1 s=$2
	rm -f "$img.tmp"
	truncate -s 8G "$img.tmp"
	mkfs.btrfs -q -f "$img.tmp" >/dev/null
	mount -o loop "$img.tmp" "$mnt"
	btrfs -q subvolume create "$mnt/sv" >/dev/null
	mkdir "$mnt/snaps"
	$PY - "$mnt/sv" "$FILES" "$s" <<'EOF'
import os, random, subprocess, sys
sv, n, snaps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(16)
paths = []
for i in range(n):
    d = os.path.join(sv, "d%02d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "file-%05d" % i)
    with open(p, "wb") as f:
        f.write(rng.randbytes(rng.choice((100, 700, 3000, 5000, 12000))))
    paths.append(p)
subprocess.run(["sync"], check=True)
for k in range(snaps):
    for p in rng.sample(paths, 5):
        with open(p, "wb") as f:
            f.write(rng.randbytes(rng.choice((100, 3000, 9000))))
    subprocess.run(["btrfs", "-q", "subvolume", "snapshot", "-r", sv,
                    os.path.join(os.path.dirname(sv), "snaps", "s%03d" % k)], check=True)
EOF
	umount "$mnt"
	mv "$img.tmp" "$img"
}

printf '%6s %14s %14s %6s %14s %6s %9s %9s\n' snaps "meta before" "after enc" ratio "after dec" ratio "enc s" "dec s"
for s in $SNAPS; do
	img=$WORK/snaps-$s-$FILES.img work=$WORK/work.img
	[ -f "$img" ] || make_image "$img" "$s"
	if [ ! -f "$img.manifest" ]; then
		mount -o loop,ro "$img" "$mnt"
		manifest "$mnt" "$img.manifest"
		umount "$mnt"
	fi
	cp --sparse=always "$img" "$work"
	before=$(meta_used "$work")
	rm -f "$WORK/enc.times" "$WORK/dec.times"
	run_timed enc "$BIN" encrypt --key-file "$WORK/key.bin" "$work" || true
	after_enc=$(meta_used "$work")
	run_timed dec "$BIN" decrypt --key-file "$WORK/key.bin" "$work" || true
	after_dec=$(meta_used "$work")
	te=$( [ -f "$WORK/enc.times" ] && best_t "$WORK/enc.times" || echo -)
	td=$( [ -f "$WORK/dec.times" ] && best_t "$WORK/dec.times" || echo -)
	re=$(ratio "$after_enc" "$before")
	rd=$(ratio "$after_dec" "$before")
	printf '%6s %14s %14s %6s %14s %6s %9s %9s\n' "$s" "$before" "$after_enc" "$re" "$after_dec" "$rd" "$te" "$td"
	awk -v r="$re" 'BEGIN { exit !(r > 1.3) }' && { echo "$BENCH_NAME: $s snapshots: metadata after encrypt $re x (goal <= 1.3)" >&2; failed=1; }
	awk -v r="$rd" 'BEGIN { exit !(r > 1.1) }' && { echo "$BENCH_NAME: $s snapshots: metadata after decrypt $rd x (goal <= 1.1)" >&2; failed=1; }
	btrfs check --check-data-csum "$work" >"$WORK/btrfs-check.out" 2>&1 ||
		{ echo "$BENCH_NAME: btrfs check failed after decrypt with $s snapshots" >&2; failed=1; }
	mount -o loop,ro "$work" "$mnt"
	manifest "$mnt" "$WORK/after.manifest"
	umount "$mnt"
	cmp -s "$img.manifest" "$WORK/after.manifest" ||
		{ echo "$BENCH_NAME: files differ after the round trip with $s snapshots" >&2; failed=1; }
	rm -f "$work"
done
exit $failed

#!/usr/bin/env bash
# Bench (issue 4): N small offline reflinks against the kernel's FICLONERANGE
# doing the same N clones on a loop mount of a copy of the same image, in the
# same run.
#
#   bench/reflink.sh            (root: both sides; not root: ours only)
#
# Environment: EXTCRYPT_BIN (default build/btrfs-extcrypt), N (default 10000
# clones), PER_N (default 1000 per-process clones), FLOOR_N (default 1000
# invocations for the per-process floors),
# BENCH_DIR (default /var/tmp/extcrypt-bench; a 256 MiB sparse image is
# rebuilt there each run).
#
# The image: mkfs.btrfs --rootdir with a 40 MiB random src.bin (1 MiB
# extents) and ten empty files d0..d9.  Clone i copies one 4 KiB block of
# src.bin (a random permutation of its blocks) to d(i%10) at offset
# (i/10)*4096: append-only, so every clone adds one file extent item and one
# data backref (extents end up with ~256 refs each, most of them keyed).
#
# Ours, batched (the goal, issue 16): all N clones through one
# `reflink --batch` process, committed every 1000 clones (the default), on a
# copy of the starting image.  Goal: at most 2x the kernel's mount + N
# FICLONERANGE + umount; exit 1 when missed.
# Ours, per process (the earlier figure): PER_N (default 1000) clones, one
# `btrfs-extcrypt reflink` process each, from a bash loop; each is a full
# transaction with its commit (fdatasync before and after the superblocks).
# Kernel: mount -o loop (rw) + N ioctls from one python process + umount,
# all inside the timed figure; the ioctl-only time is printed too.
# Floors, to split our per-invocation cost: FLOOR_N runs of `inspect
# dump-super` (process start + image open) and of `reflink --dry-run` (the
# whole clone without writing or syncing).
# Checks: btrfs check on our image; d0..d9 read back through a ro mount of
# ours equal the kernel's.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${EXTCRYPT_BIN:-$top/build/btrfs-extcrypt}
n=${N:-10000}
per_n=${PER_N:-1000}
floor_n=${FLOOR_N:-1000}
bench_dir=${BENCH_DIR:-/var/tmp/extcrypt-bench}
py=/usr/bin/python3

die() { echo "ERROR: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no binary at $bin (build first, or set EXTCRYPT_BIN)"
command -v mkfs.btrfs >/dev/null || die "btrfs-progs not installed (Debian package btrfs-progs)"
root=0
[ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null && root=1

work=$bench_dir/reflink
rm -rf "$work"
mkdir -p "$work/tree"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }

# The image and the clone list (src_offset dest_offset dst, one per line).
$py - "$work" "$n" <<'EOF'
import os, random, sys
work, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(4)
blocks = 40 * 256
assert n <= blocks * 10
with open(os.path.join(work, "tree", "src.bin"), "wb") as f:
    f.write(rng.randbytes(blocks * 4096))
for d in range(10):
    open(os.path.join(work, "tree", "d%d" % d), "wb").close()
perm = list(range(blocks)) * (n // blocks + 1)
rng.shuffle(perm)
with open(os.path.join(work, "ops"), "w") as f:
    for i in range(n):
        f.write("%d %d d%d\n" % (perm[i] * 4096, (i // 10) * 4096, i % 10))
EOF
truncate -s 256M "$work/base.img"
mkfs.btrfs -q -f --rootdir "$work/tree" "$work/base.img" >/dev/null
cp --sparse=always "$work/base.img" "$work/ours.img"
echo "image: $work/base.img (256 MiB sparse, 40 MiB src.bin); $n clones of 4 KiB" >&2

# Ours, batched: one process for all N clones.
awk '{ printf "--src-offset %s --length 4096 --dest-offset %s src.bin %s\n", $1, $2, $3 }' \
	"$work/ops" >"$work/batch"
t0=$(now)
"$bin" -q reflink --batch "$work/batch" "$work/ours.img" || die "reflink --batch failed"
t1=$(now)
ours=$(elapsed "$t0" "$t1")

# Ours, one process per clone, on another copy.
cp --sparse=always "$work/base.img" "$work/per.img"
head -n "$per_n" "$work/ops" >"$work/ops.per"
t0=$(now)
while read -r so do dst; do
	"$bin" -q reflink --src-offset "$so" --length 4096 --dest-offset "$do" src.bin "$dst" \
		"$work/per.img" || die "reflink failed: --src-offset $so --dest-offset $do src.bin $dst"
done <"$work/ops.per"
t1=$(now)
per_proc=$(elapsed "$t0" "$t1")

# Floors (on a copy of the final image, which is as big as it gets).
cp --sparse=always "$work/ours.img" "$work/floor.img"
head -n "$floor_n" "$work/ops" >"$work/ops.floor"
t0=$(now)
while read -r so do dst; do "$bin" inspect dump-super "$work/floor.img" >/dev/null; done <"$work/ops.floor"
t1=$(now)
floor_open=$(elapsed "$t0" "$t1")
t0=$(now)
while read -r so do dst; do
	"$bin" -q reflink --dry-run --src-offset "$so" --length 4096 --dest-offset $((do + 8 * 1048576)) \
		src.bin "$dst" "$work/floor.img" || die "dry run failed"
done <"$work/ops.floor"
t1=$(now)
floor_dry=$(elapsed "$t0" "$t1")

check=$(btrfs check "$work/ours.img" >/dev/null 2>&1 && echo clean || echo ERRORS)

per() { awk -v t="$1" -v n="$2" 'BEGIN{printf "%.3f", t * 1000 / n}'; }
printf 'ours:   reflink --batch of %d clones   %8.2f s   %s ms each   (btrfs check: %s)\n' \
	"$n" "$ours" "$(per "$ours" "$n")" "$check"
printf 'ours:   %d reflink invocations   %8.2f s   %s ms each (one process and commit per clone)\n' \
	"$per_n" "$per_proc" "$(per "$per_proc" "$per_n")"
printf 'floor:  %d x inspect dump-super   %8.2f s   %s ms each (process start + open)\n' \
	"$floor_n" "$floor_open" "$(per "$floor_open" "$floor_n")"
printf 'floor:  %d x reflink --dry-run    %8.2f s   %s ms each (no writes, no sync)\n' \
	"$floor_n" "$floor_dry" "$(per "$floor_dry" "$floor_n")"

if [ "$root" -ne 1 ]; then
	echo "kernel: skipped (needs root and losetup)"
	exit 0
fi

# The kernel, on a copy of the same starting image.
cp --sparse=always "$work/base.img" "$work/kernel.img"
mkdir -p "$work/mk" "$work/mo"
out=$($py - "$work" <<'EOF'
import fcntl, os, struct, subprocess, sys, time
work = sys.argv[1]
mk = os.path.join(work, "mk")
ops = [l.split() for l in open(os.path.join(work, "ops"))]
t0 = time.monotonic()
subprocess.run(["mount", "-o", "loop,noatime", os.path.join(work, "kernel.img"), mk], check=True)
t1 = time.monotonic()
src = os.open(os.path.join(mk, "src.bin"), os.O_RDONLY)
fds = {}
for so, do, dst in ops:
    fd = fds.get(dst)
    if fd is None:
        fd = fds[dst] = os.open(os.path.join(mk, dst), os.O_RDWR)
    fcntl.ioctl(fd, 0x4020940d, struct.pack("qQQQ", src, int(so), 4096, int(do)))
for fd in list(fds.values()) + [src]:
    os.close(fd)
t2 = time.monotonic()
subprocess.run(["umount", mk], check=True)
t3 = time.monotonic()
print("%.3f %.3f" % (t3 - t0, t2 - t1))
EOF
)
kernel=${out% *}
ioctls=${out#* }
printf 'kernel: mount + %d FICLONERANGE + umount   %8.2f s   (ioctls alone %.3f s, %s ms each)\n' \
	"$n" "$kernel" "$ioctls" "$(per "$ioctls" "$n")"
ratio=$(awk -v a="$ours" -v b="$kernel" 'BEGIN{printf "%.2f", a / b}')
printf 'ratio ours --batch / kernel (wall, kernel incl. mount+umount): %s (goal <= 2)\n' "$ratio"
printf 'ratio ours per process / kernel, per clone: %.1f\n' \
	"$(awk -v a="$per_proc" -v pn="$per_n" -v b="$kernel" -v n="$n" 'BEGIN{print (a / pn) / (b / n)}')"
goal_missed=$(awk -v r="$ratio" 'BEGIN{print (r > 2) ? 1 : 0}')

# Same result?
sums() {
	mount -o loop,ro "$1" "$2"
	(cd "$2" && sha256sum d0 d1 d2 d3 d4 d5 d6 d7 d8 d9)
	umount "$2"
}
if [ "$(sums "$work/ours.img" "$work/mo")" = "$(sums "$work/kernel.img" "$work/mk")" ]; then
	echo "contents: d0..d9 equal the kernel's"
else
	echo "contents: DIFFER from the kernel's"
	exit 1
fi
[ "$check" = clean ] || { echo "GOAL MISSED: btrfs check found errors"; exit 1; }
if [ "$goal_missed" -eq 1 ]; then
	echo "GOAL MISSED: reflink --batch / kernel = $ratio > 2"
	exit 1
fi

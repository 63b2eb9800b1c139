"""Test-fixture generation shared by the pytest suites, the demo and the benches.

Nothing in here depends on pytest, so the demo and bench/ scripts can import it
(``sys.path.insert(0, "<repo>/tests/lib")``) or run it as a program::

    /usr/bin/python3 tests/lib/fixtures.py sample-tree DIR [--seed N] [--big-mib N]
    /usr/bin/python3 tests/lib/fixtures.py mkfs IMAGE DIR [--csum C] [--nodesize N]
    /usr/bin/python3 tests/lib/fixtures.py bench-tree DIR --files 50000 --mib 1024

Everything is deterministic for a given seed (names, sizes, contents, times),
so two runs produce the same tree and failures reproduce.

Facts this relies on (Documentation/format.rst section 14): mkfs.btrfs 6.2 ``--rootdir``
makes no holes and no prealloc, stores files of at most 2000 bytes inline and
cuts data extents at 1 MiB; symlink targets are stored with a trailing NUL.
"""

import argparse
import contextlib
import hashlib
import os
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

MiB = 1024 * 1024
INLINE_MAX = 2000            # mkfs --rootdir: files <= 2000 bytes become inline
FIXED_TIME = 1700000000      # a fixed mtime/atime so trees are reproducible

CSUM_TYPES = ("crc32c", "xxhash", "sha256", "blake2")
NODESIZES = (4096, 16384, 65536)

# Names that exercise the name paths of every parser and printer.
NAME_255 = "n" * 251 + ".bin"                                  # 255 bytes, ASCII
NAME_UTF8 = "h\u00e9llo-w\u00f6rld-\u65e5\u672c\u8a9e-\U0001F600.txt"  # mixed 1..4 byte chars
# 255 bytes of UTF-8: 85 three-byte characters.
NAME_UTF8_255 = "\u3042" * 85
assert len(NAME_255.encode()) == 255 and len(NAME_UTF8_255.encode()) == 255


def _rng_bytes(rng, n):
    return rng.randbytes(n)


def _text_bytes(rng, n):
    """Compressible, deterministic text (for compression tests and inline data)."""
    words = [b"btrfs", b"extent", b"fscrypt", b"inode", b"tree", b"leaf",
             b"node", b"csum", b"chunk", b"stripe", b"\n"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _set_times(root):
    """Fixed times for everything below root (symlinks included, not followed)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (FIXED_TIME, FIXED_TIME),
                     follow_symlinks=False)
    os.utime(root, (FIXED_TIME, FIXED_TIME))


def make_sample_tree(dest, seed=1, big_mib=2, dir_entries=300, many_files=0,
                     xattrs=True, fifo=True):
    """Create the varied sample tree in dest (created; must not exist or be empty).

    big_mib:     size of the largest random-data file (a second one is about
                 half that plus an odd tail); 0 leaves the multi-MiB files out.
    dir_entries: number of entries of the big directory ``bigdir/``.
    many_files:  extra empty files in ``many/`` (deepens the fs tree of small
                 nodesizes; the corruption suite uses it to get level-2 nodes).

    Returns a manifest: dict relative path -> kind, for tests that want to
    pick files ("inline", "regular", "big", "symlink", "hardlink", "fifo",
    "dir", "empty").
    """
    rng = random.Random(seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    man = {}

    def f(rel, data, kind):
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        _write(p, data)
        man[rel] = kind

    # Sizes around the inline limit and the sector size.
    f("empty", b"", "empty")
    f("tiny", b"x", "inline")
    f("small.txt", _text_bytes(rng, 100), "inline")
    f("inline-max.txt", _text_bytes(rng, INLINE_MAX), "inline")
    f("not-inline-2001.bin", _rng_bytes(rng, INLINE_MAX + 1), "regular")
    f("not-inline-2100.bin", _rng_bytes(rng, 2100), "regular")
    f("sector-4096.bin", _rng_bytes(rng, 4096), "regular")
    f("sector-plus-1.bin", _rng_bytes(rng, 4097), "regular")
    f("text-64k.txt", _text_bytes(rng, 64 * 1024 + 7), "regular")
    f("zeros-200k.bin", bytes(200 * 1024), "regular")   # fully allocated by mkfs
    if big_mib:
        f("data/random-big.bin", _rng_bytes(rng, big_mib * MiB), "big")
        f("data/random-odd.bin", _rng_bytes(rng, max(1, big_mib // 2) * MiB + 12345),
          "big")
        f("data/one-mib-plus-1.bin", _rng_bytes(rng, MiB + 1), "big")

    # Nested directories.
    deep = Path("nested")
    for i in range(8):
        deep = deep / ("level%d" % i)
    f(str(deep / "leaf.txt"), _text_bytes(rng, 300), "inline")
    f("nested/level0/mid.bin", _rng_bytes(rng, 9000), "regular")
    (dest / "nested/empty-dir").mkdir(parents=True)
    man["nested/empty-dir"] = "dir"

    # One directory with many entries (DIR_ITEM/DIR_INDEX spread over leaves).
    big = dest / "bigdir"
    big.mkdir()
    man["bigdir"] = "dir"
    for i in range(dir_entries):
        size = rng.choice((0, 1, 17, 500, 1999, 2000, 2001, 3000, 4096, 8193))
        data = _rng_bytes(rng, size)
        name = "entry-%04d-%s" % (i, "x" * rng.randrange(0, 40))
        f("bigdir/" + name, data, "inline" if 0 < size <= INLINE_MAX
          else ("empty" if size == 0 else "regular"))

    # Long and non-ASCII names.
    f("names/" + NAME_255, _rng_bytes(rng, 3000), "regular")
    f("names/" + NAME_UTF8, "gr\u00fc\u00dfe\n".encode(), "inline")
    f("names/" + NAME_UTF8_255, _rng_bytes(rng, 10), "inline")
    (dest / "names" / ("d\u00efr-\u00e9")).mkdir()
    f("names/d\u00efr-\u00e9/inner", b"inner\n", "inline")

    # Symlinks: short, long (fits inline even at nodesize 4096), dangling, to dir.
    links = dest / "links"
    links.mkdir()
    os.symlink("../small.txt", links / "short")
    man["links/short"] = "symlink"
    long_target = "/".join(["segment%03d" % i for i in range(250)])[:2500]
    os.symlink(long_target, links / "long")
    man["links/long"] = "symlink"
    os.symlink("does/not/exist", links / "dangling")
    man["links/dangling"] = "symlink"
    os.symlink("../nested", links / "to-dir")
    man["links/to-dir"] = "symlink"
    os.symlink(NAME_UTF8, links / "utf8-target")
    man["links/utf8-target"] = "symlink"

    # Hard links: one inode, three names in two directories (INODE_REF with
    # several entries, or EXTREF).
    f("hardlinks/a", _rng_bytes(rng, 5000), "regular")
    os.link(dest / "hardlinks/a", dest / "hardlinks/b")
    os.link(dest / "hardlinks/a", dest / "nested/level0/c-link")
    man["hardlinks/b"] = "hardlink"
    man["nested/level0/c-link"] = "hardlink"

    # Extended attributes on files and directories.
    if xattrs:
        xf = dest / "xattrs.txt"
        _write(xf, b"has xattrs\n")
        man["xattrs.txt"] = "inline"
        try:
            os.setxattr(xf, "user.small", b"v")
            os.setxattr(xf, "user.empty", b"")
            os.setxattr(xf, "user.binary", _rng_bytes(rng, 64))
            os.setxattr(xf, "user.large", _rng_bytes(rng, 1500))
            os.setxattr(xf, "user." + "k" * 200, b"long name")
            os.setxattr(dest / "nested", "user.dirattr", "\u00e9t\u00e9".encode())
        except OSError:
            pass    # filesystem without user xattrs: keep the file, lose the attrs

    if fifo:
        os.mkfifo(dest / "fifo")
        man["fifo"] = "fifo"

    if many_files:
        many = dest / "many"
        many.mkdir()
        for i in range(many_files):
            (many / ("f%05d" % i)).touch()
        man["many"] = "dir"
        man["many/f%05d" % (many_files - 1)] = "empty"

    _set_times(dest)
    return man


def make_bench_tree(dest, nfiles=50000, total_mib=1024, seed=7):
    """A large tree for benches: nfiles files, about total_mib MiB of data.

    Sizes follow a skewed distribution (most files small, a few large), spread
    over directories of at most 1000 entries. Data is pseudo-random (not
    compressible) but cheap to generate: blocks of one random 1 MiB buffer at
    varying offsets.
    """
    rng = random.Random(seed)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pool = rng.randbytes(2 * MiB)
    budget = total_mib * MiB
    weights = [rng.paretovariate(1.2) for _ in range(nfiles)]
    scale = budget / sum(weights)
    for i, w in enumerate(weights):
        d = dest / ("d%03d" % (i // 1000))
        if i % 1000 == 0:
            d.mkdir(exist_ok=True)
        size = int(w * scale)
        with open(d / ("f%06d" % i), "wb") as fh:
            left = size
            while left:
                n = min(left, MiB)
                off = rng.randrange(0, MiB)
                fh.write(pool[off:off + n])
                left -= n
    return dest


def mkfs(image, rootdir=None, csum="crc32c", nodesize=16384, size_mib=160,
         extra=()):
    """Create a sparse image file and run mkfs.btrfs on it. Returns the path.

    The size is 128..192 MiB by default in tests (small enough to copy, big
    enough that mkfs does not switch to mixed block groups).
    """
    image = Path(image)
    mkfs_bin = shutil.which("mkfs.btrfs") or "/usr/sbin/mkfs.btrfs"
    with open(image, "wb") as fh:
        fh.truncate(size_mib * MiB)
    cmd = [mkfs_bin, "-q", "-f", "--csum", csum, "--nodesize", str(nodesize),
           "--sectorsize", "4096"]
    if rootdir is not None:
        cmd += ["--rootdir", str(rootdir)]
    cmd += list(extra) + [str(image)]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("mkfs.btrfs failed (%d): %s\n%s" %
                           (res.returncode, " ".join(cmd), res.stderr))
    return image


def mkfs_fit(image, rootdir, csum="crc32c", nodesize=16384, extra=()):
    """mkfs.btrfs --rootdir into a new file it sizes itself: every byte of
    the device is allocated to chunks (no unallocated space), as a plain
    `mkfs.btrfs --rootdir DIR new.img` leaves it."""
    image = Path(image)
    if image.exists():
        image.unlink()
    mkfs_bin = shutil.which("mkfs.btrfs") or "/usr/sbin/mkfs.btrfs"
    cmd = [mkfs_bin, "-q", "-f", "--csum", csum, "--nodesize", str(nodesize),
           "--sectorsize", "4096", "--rootdir", str(rootdir), *extra, str(image)]
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=300)
    if res.returncode != 0:
        raise RuntimeError("mkfs.btrfs failed (%d): %s\n%s" %
                           (res.returncode, " ".join(cmd), res.stderr))
    return image


def sparse_copy(src, dst):
    """Copy a sparse file keeping its holes (SEEK_DATA/SEEK_HOLE walk).

    copy_file_range() on ext4 fills holes with zeros, which turns a 128 MiB
    image with 5 MiB of data into 128 MiB of writes; this copies only data.
    """
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        for off, length in data_segments(src):
            end = off + length
            while off < end:
                n = os.copy_file_range(fi.fileno(), fo.fileno(), end - off, off, off)
                if n == 0:
                    break
                off += n
        fo.truncate(os.fstat(fi.fileno()).st_size)
    return dst


def data_segments(path):
    """[(offset, length)] of the data (non-hole) ranges of a file."""
    out = []
    with open(path, "rb") as f:
        fd, pos = f.fileno(), 0
        size = os.fstat(fd).st_size
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:         # ENXIO: only a hole remains
                break
            pos = os.lseek(fd, data, os.SEEK_HOLE)
            out.append((data, pos - data))
    return out


def sparse_digest(path):
    """SHA-256 of a file's size, data ranges and their bytes: equal before and
    after a command only if it wrote nothing (a write into a hole makes a
    data range even of zeros).  Reads the data only: a 16 GiB corpus image
    that holds 4 MiB hashes in milliseconds, not seconds."""
    h = hashlib.sha256(b"%d" % os.path.getsize(path))
    with open(path, "rb") as f:
        for off, length in data_segments(path):
            h.update(b"@%d+%d" % (off, length))
            f.seek(off)
            while length:
                blk = f.read(min(length, 8 << 20))
                if not blk:
                    break
                h.update(blk)
                length -= len(blk)
    return h.hexdigest()


def btrfs_check(image, *args, timeout=300):
    """Run `btrfs check [args] IMAGE` (read-only); returns the CompletedProcess."""
    return subprocess.run(["btrfs", "check", *args, str(image)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="surrogateescape",
                          timeout=timeout)


def dump_tree_progs(image, *args, check=True, timeout=300):
    """stdout of btrfs-progs `btrfs inspect-internal dump-tree [args] IMAGE`.

    With check=True a non-zero exit raises RuntimeError (pristine images);
    check=False returns whatever was printed (corrupt images).
    """
    res = subprocess.run(["btrfs", "inspect-internal", "dump-tree", *args, str(image)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="surrogateescape", timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError("btrfs inspect-internal dump-tree %s failed (%d): %s" %
                           (" ".join(args), res.returncode, res.stderr[-2000:]))
    return res.stdout


def dump_super_progs(image, *args, check=True, timeout=60):
    """stdout of btrfs-progs `btrfs inspect-internal dump-super [args] IMAGE`."""
    res = subprocess.run(["btrfs", "inspect-internal", "dump-super", *args, str(image)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         errors="surrogateescape", timeout=timeout)
    if check and res.returncode != 0:
        raise RuntimeError("btrfs inspect-internal dump-super failed (%d): %s" %
                           (res.returncode, res.stderr[-2000:]))
    return res.stdout


def _sh(*cmd, cwd=None):
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=cwd, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(map(str, cmd)),
                                                    res.returncode, res.stderr))
    return res.stdout


@contextlib.contextmanager
def loop_mount(image, mountpoint, ro=True, options=()):
    """Mount an image through a loop device (root only); unmount on exit.

    A read-only mount leaves the image byte-identical (Documentation/format.rst 14); a
    read-write one changes it.
    """
    opts = ["loop", "ro" if ro else "rw", *options]
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    _sh("mount", "-t", "btrfs", "-o", ",".join(opts), image, mountpoint)
    try:
        yield Path(mountpoint)
    finally:
        res = subprocess.run(["umount", str(mountpoint)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)])
            raise RuntimeError("umount %s failed: %s" % (mountpoint, res.stderr))


# struct file_clone_range { s64 src_fd; u64 src_offset, src_length, dest_offset; }
FICLONERANGE = 0x4020940d


def clone_range(src, src_off, length, dst, dst_off):
    """Reflink [src_off, src_off+length) of src into dst at dst_off (FICLONERANGE)."""
    import fcntl
    with open(src, "rb") as fs, open(dst, "r+b" if os.path.exists(dst) else "w+b") as fd:
        arg = struct.pack("qQQQ", fs.fileno(), src_off, length, dst_off)
        fcntl.ioctl(fd.fileno(), FICLONERANGE, arg)


def populate_kernel_features(mnt, workdir, seed=3):
    """Inside a rw-mounted btrfs at mnt, create what only the kernel makes.

    Holes (sparse copy, punched), prealloc (full, partly written, past EOF),
    zlib/lzo/zstd compressed files (regular and inline), full and partial
    reflinks (FICLONERANGE with a non-zero source offset, which gives the
    wrapped backref offset of Documentation/format.rst 2.8), a subvolume, a snapshot of it
    modified afterwards, and a read-only snapshot of the top level.
    Returns a manifest: relative path -> kind.
    """
    rng = random.Random(seed)
    mnt, workdir = Path(mnt), Path(workdir)
    man = {}

    # Holes.
    (mnt / "holes").mkdir()
    src = workdir / "sparse-src.bin"
    with open(src, "wb") as fh:
        fh.write(rng.randbytes(64 * 1024))
        fh.seek(MiB)
        fh.write(rng.randbytes(64 * 1024))
        fh.seek(3 * MiB + 5)
        fh.write(rng.randbytes(4096))
        fh.truncate(4 * MiB)
    _sh("cp", "--sparse=always", src, mnt / "holes/sparse.bin")
    man["holes/sparse.bin"] = "holes"
    punched = mnt / "holes/punched.bin"
    _write(punched, rng.randbytes(MiB))
    _sh("fallocate", "-p", "-o", str(128 * 1024), "-l", str(256 * 1024), punched)
    _sh("fallocate", "-p", "-o", "700001", "-l", "10000", punched)   # unaligned
    man["holes/punched.bin"] = "holes"
    with open(mnt / "holes/tail-hole.bin", "wb") as fh:     # hole at EOF
        fh.write(rng.randbytes(8192))
        fh.truncate(512 * 1024)
    man["holes/tail-hole.bin"] = "holes"

    # Prealloc.
    (mnt / "prealloc").mkdir()
    _sh("fallocate", "-l", str(MiB), mnt / "prealloc/full.bin")
    man["prealloc/full.bin"] = "prealloc"
    part = mnt / "prealloc/partly-written.bin"
    _sh("fallocate", "-l", str(MiB), part)
    with open(part, "r+b") as fh:
        fh.seek(256 * 1024)
        fh.write(rng.randbytes(64 * 1024))
    man["prealloc/partly-written.bin"] = "prealloc"
    past = mnt / "prealloc/past-eof.bin"
    _write(past, rng.randbytes(10000))
    _sh("fallocate", "-n", "-o", "12288", "-l", str(512 * 1024), past)
    man["prealloc/past-eof.bin"] = "prealloc"

    # Compression, per directory property (inherited by new files).
    (mnt / "compress").mkdir()
    for algo in ("zlib", "lzo", "zstd"):
        d = mnt / "compress" / algo
        d.mkdir()
        _sh("btrfs", "property", "set", d, "compression", algo)
        _write(d / "text-600k.txt", _text_bytes(rng, 600 * 1024 + 11))
        _write(d / "inline-3000.txt", _text_bytes(rng, 3000))
        _write(d / "random-200k.bin", rng.randbytes(200 * 1024))
        mixed = bytearray(_text_bytes(rng, 256 * 1024))
        mixed[100000:164000] = rng.randbytes(64000)
        _write(d / "mixed-256k.bin", mixed)
        for name in ("text-600k.txt", "inline-3000.txt", "random-200k.bin",
                     "mixed-256k.bin"):
            man["compress/%s/%s" % (algo, name)] = "compressed"

    # Reflinks.
    (mnt / "reflink").mkdir()
    base = mnt / "reflink/base.bin"
    _write(base, rng.randbytes(2 * MiB))
    os.sync()
    _sh("cp", "--reflink=always", base, mnt / "reflink/full-copy.bin")
    partial = mnt / "reflink/partial.bin"
    clone_range(base, 64 * 1024, 192 * 1024, partial, 0)
    clone_range(base, MiB, 128 * 1024, partial, MiB)
    clone_range(mnt / "compress/zstd/text-600k.txt", 128 * 1024, 128 * 1024,
                partial, 2 * MiB)
    within = mnt / "reflink/within.bin"
    _write(within, rng.randbytes(512 * 1024))
    os.sync()
    clone_range(within, 0, 128 * 1024, within, 256 * 1024)
    for n in ("base.bin", "full-copy.bin", "partial.bin", "within.bin"):
        man["reflink/" + n] = "reflink"

    # Subvolume, snapshot (then COW-modified), read-only snapshot of the top.
    _sh("btrfs", "subvolume", "create", mnt / "subvol")
    _write(mnt / "subvol/file.bin", rng.randbytes(300 * 1024))
    _write(mnt / "subvol/small.txt", b"in a subvolume\n")
    (mnt / "subvol/dir").mkdir()
    for i in range(40):
        _write(mnt / ("subvol/dir/f%02d" % i), rng.randbytes(rng.randrange(0, 6000)))
    os.sync()
    _sh("btrfs", "subvolume", "snapshot", mnt / "subvol", mnt / "snap")
    with open(mnt / "snap/file.bin", "r+b") as fh:
        fh.seek(100 * 1024)
        fh.write(rng.randbytes(8192))
    _write(mnt / "snap/new-in-snap.txt", b"only in the snapshot\n")
    _sh("btrfs", "subvolume", "snapshot", "-r", mnt, mnt / "snap-top-ro")
    man.update({"subvol": "subvolume", "snap": "snapshot", "snap-top-ro": "snapshot"})
    os.sync()
    return man


def make_kernel_image(image, workdir, csum="crc32c", nodesize=16384, seed=3):
    """mkfs --rootdir a small sample tree, then add kernel-made features
    through a rw loop mount (root only). Verifies the result with
    `btrfs check --check-data-csum`. Returns the manifest of kernel files.
    """
    workdir = Path(workdir)
    tree = workdir / "tree"
    if not tree.exists():
        make_sample_tree(tree, seed=seed, big_mib=1, dir_entries=60)
    mkfs(image, tree, csum=csum, nodesize=nodesize, size_mib=192)
    with loop_mount(image, workdir / "mnt", ro=False) as mnt:
        man = populate_kernel_features(mnt, workdir, seed=seed)
    res = btrfs_check(image, "--check-data-csum")
    if res.returncode != 0:
        raise RuntimeError("btrfs check --check-data-csum failed on kernel image %s:\n%s%s"
                           % (image, res.stdout[-3000:], res.stderr[-3000:]))
    return man


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample-tree", help="create the varied sample tree")
    s.add_argument("dir")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--big-mib", type=int, default=2)
    s.add_argument("--dir-entries", type=int, default=300)
    s.add_argument("--many-files", type=int, default=0)
    m = sub.add_parser("mkfs", help="mkfs.btrfs --rootdir DIR into a sparse IMAGE")
    m.add_argument("image")
    m.add_argument("dir")
    m.add_argument("--csum", default="crc32c", choices=CSUM_TYPES)
    m.add_argument("--nodesize", type=int, default=16384)
    m.add_argument("--size-mib", type=int, default=160)
    b = sub.add_parser("bench-tree", help="create a large tree for benches")
    b.add_argument("dir")
    b.add_argument("--files", type=int, default=50000)
    b.add_argument("--mib", type=int, default=1024)
    args = ap.parse_args(argv)
    if args.cmd == "sample-tree":
        make_sample_tree(args.dir, seed=args.seed, big_mib=args.big_mib,
                         dir_entries=args.dir_entries, many_files=args.many_files)
    elif args.cmd == "mkfs":
        mkfs(args.image, args.dir, csum=args.csum, nodesize=args.nodesize,
             size_mib=args.size_mib)
    else:
        make_bench_tree(args.dir, nfiles=args.files, total_mib=args.mib)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers for the reflink / write-engine suites (issue 4) and bench/reflink.sh.

Nothing in here depends on pytest, so bench scripts can import it too.

  * kernel side: loop mounts, FICLONERANGE, dmesg watching, scrub;
  * oracle parsing of btrfs-progs `inspect-internal dump-tree` output: data
    extent items with their backrefs (inline and keyed), file extent items
    and inode items of one tree;
  * image helpers: sha256, sparse copies, write counting with fault injection.

Facts relied on (Documentation/format.rst 2.7, 2.8, 14): a data extent is
EXTENT_ITEM (bytenr, 168, disk_num_bytes) with inline EXTENT_DATA_REF
{root, objectid, offset, count} / SHARED_DATA_REF {parent, count} refs or keyed
EXTENT_DATA_REF (178) / SHARED_DATA_REF (184) items; `refs` is the sum.
"""

import collections
import contextlib
import errno
import fcntl
import hashlib
import os
import re
import struct
import subprocess
from pathlib import Path

import fixtures

KiB = 1024
MiB = 1024 * 1024
FICLONERANGE = 0x4020940d
FAULT_MSG_RE = re.compile(r"^ERROR: fault injection: write (\d+) failed$", re.M)

# Names btrfs-progs prints for well-known tree ids.
ROOT_NAMES = {"ROOT_TREE": 1, "EXTENT_TREE": 2, "CHUNK_TREE": 3, "DEV_TREE": 4,
              "FS_TREE": 5, "ROOT_TREE_DIR": 6, "CSUM_TREE": 7, "QUOTA_TREE": 8,
              "UUID_TREE": 9, "FREE_SPACE_TREE": 10, "BLOCK_GROUP_TREE": 11,
              "DATA_RELOC_TREE": 2**64 - 9, "TREE_RELOC": 2**64 - 8,
              "TREE_LOG": 2**64 - 7}


def sh(*cmd, check=True, timeout=300, **kw):
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, errors="surrogateescape",
                         timeout=timeout, **kw)
    if check and res.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(map(str, cmd)), res.returncode,
                                                     res.stdout[-2000:], res.stderr[-2000:]))
    return res


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(4 * MiB), b""):
            h.update(blk)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# Kernel side.

def kernel_clone(src, src_off, length, dst, dst_off, create=False):
    """FICLONERANGE src[src_off, +length) -> dst at dst_off.  Returns 0 or the errno.

    With create=True a missing dst is created empty first (our --create).
    Opening the destination for writing is part of the operation: a
    read-only subvolume refuses there with EROFS, a directory with EISDIR.
    """
    sfd = dfd = -1
    try:
        sfd = os.open(src, os.O_RDONLY)
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        dfd = os.open(dst, flags, 0o644)
        fcntl.ioctl(dfd, FICLONERANGE, struct.pack("qQQQ", sfd, src_off, length, dst_off))
        return 0
    except OSError as e:
        return e.errno
    finally:
        for fd in (sfd, dfd):
            if fd >= 0:
                os.close(fd)


def errno_name(e):
    return errno.errorcode.get(e, str(e)) if e else "OK"


def mount_dev(mountpoint):
    """The source device (e.g. /dev/loop3) of a mount point."""
    return sh("findmnt", "-n", "-o", "SOURCE", "--target", str(mountpoint)).stdout.strip()


def dmesg_lines():
    res = sh("dmesg", check=False)
    return res.stdout.splitlines() if res.returncode == 0 else []


_TS_RE = re.compile(r"^\[\s*(\d+\.\d+)\]")


def dmesg_mark():
    """The timestamp of the last kernel log line (lines after it are new)."""
    for line in reversed(dmesg_lines()):
        m = _TS_RE.match(line)
        if m:
            return float(m.group(1))
    return 0.0


_DEV_RE = re.compile(r"\(device ([^)\s]+)\)")


def dmesg_since(since, device):
    """Kernel log lines after `since` that may concern `device`: those about
    it, and those that name no device.  Lines about other devices are left
    out: the two test suites of `make test` mount loop devices side by side."""
    dev = os.path.basename(device)
    out = []
    for line in dmesg_lines():
        m = _TS_RE.match(line)
        tag = _DEV_RE.search(line)
        if m and float(m.group(1)) > since and (not tag or tag.group(1) == dev):
            out.append(line)
    return out


def dmesg_btrfs_problems(since, device):
    """New `BTRFS critical|error|warning (device <dev>)` lines after `since`."""
    pat = re.compile(r"BTRFS (critical|error|warning) \(device %s\b"
                     % re.escape(os.path.basename(device)))
    return [line for line in dmesg_since(since, device) if pat.search(line)]


@contextlib.contextmanager
def mounted(image, mountpoint, ro=True, options=()):
    """fixtures.loop_mount, plus the loop device and the dmesg mark."""
    mark = dmesg_mark()
    with fixtures.loop_mount(image, mountpoint, ro=ro, options=options) as mnt:
        dev = mount_dev(mnt)
        yield mnt, dev, mark


def scrub_ro(mnt):
    """`btrfs scrub start -B -r` on a mount; returns (ok, output)."""
    res = sh("btrfs", "scrub", "start", "-B", "-r", mnt, check=False, timeout=600)
    text = res.stdout + res.stderr
    ok = res.returncode == 0 and re.search(r"Error summary:\s+no errors found", text) is not None
    return ok, text


def subvol_id(path):
    return int(sh("btrfs", "inspect-internal", "rootid", path).stdout.strip())


def file_digest(path):
    """(size, sha256) of a file read through the kernel."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(MiB), b""):
            h.update(blk)
            n += len(blk)
    assert n == os.path.getsize(path)
    return n, h.hexdigest()


def tree_digests(mnt, skip=()):
    """{relative path: (size, sha256)} of every regular file under mnt."""
    out = {}
    mnt = Path(mnt)
    for dirpath, dirnames, filenames in os.walk(mnt):
        rel_dir = Path(dirpath).relative_to(mnt)
        dirnames[:] = [d for d in dirnames if str(rel_dir / d) not in skip]
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_symlink() or not p.is_file():
                continue
            out[str(p.relative_to(mnt))] = file_digest(p)
    return out


# ---------------------------------------------------------------------------
# dump-tree parsing (btrfs-progs output).

_ITEM_RE = re.compile(r"^\s*item \d+ key \((\S+) (\S+) (\S+)\) itemoff \d+ itemsize (\d+)")


def _num(tok):
    if tok in ROOT_NAMES:
        return ROOT_NAMES[tok]
    if tok.startswith("-"):
        return int(tok) % 2**64
    return int(tok)


def _items(text):
    """Yield (objectid, type, offset, [body lines]) of each leaf item."""
    cur = None
    body = []
    for line in text.splitlines():
        m = _ITEM_RE.match(line)
        if m:
            if cur:
                yield cur + (body,)
            cur = (m.group(1), m.group(2), m.group(3))
            body = []
        elif cur is not None:
            if line.startswith(("leaf ", "node ", "\tkey (", "  key (")) or \
               line.lstrip().startswith(("leaf ", "node ")):
                yield cur + (body,)
                cur = None
                body = []
            else:
                body.append(line.strip())
    if cur:
        yield cur + (body,)


_DREF_RE = re.compile(r"extent data backref root (\S+) objectid (\d+) offset (\d+) count (\d+)")
_SREF_RE = re.compile(r"shared data backref parent (\d+) count (\d+)")
_SREF_KEYED_RE = re.compile(r"shared data backref count (\d+)")
_EXT_HDR_RE = re.compile(r"refs (\d+) gen (\d+) flags (\S+)")


class DataExtent:
    __slots__ = ("bytenr", "num_bytes", "refs", "backrefs")

    def __init__(self, bytenr, num_bytes, refs):
        self.bytenr, self.num_bytes, self.refs = bytenr, num_bytes, refs
        self.backrefs = collections.Counter()

    def __repr__(self):
        return "DataExtent(%d+%d refs %d %s)" % (self.bytenr, self.num_bytes, self.refs,
                                                 sorted(self.backrefs.elements()))


def parse_data_extents(text):
    """{bytenr: DataExtent} from `dump-tree -t extent` text (data extents only).

    Backrefs are a Counter of ('data', root, objectid, offset, count) and
    ('shared', parent, count) tuples, inline and keyed alike.
    """
    ext = {}
    for oid, typ, off, body in _items(text):
        if typ == "EXTENT_ITEM":
            if not body:
                continue
            h = _EXT_HDR_RE.match(body[0])
            if not h or "DATA" not in h.group(3).split("|"):
                continue
            e = DataExtent(int(oid), int(off), int(h.group(1)))
            ext[e.bytenr] = e
            for line in body[1:]:
                m = _DREF_RE.search(line)
                if m:
                    e.backrefs[("data", _num(m.group(1)), int(m.group(2)), int(m.group(3)),
                                int(m.group(4)))] += 1
                    continue
                m = _SREF_RE.search(line)
                if m:
                    e.backrefs[("shared", int(m.group(1)), int(m.group(2)))] += 1
        elif typ in ("EXTENT_DATA_REF", "SHARED_DATA_REF"):
            e = ext.get(int(oid))
            if e is None:
                # keyed refs sort after their extent item; a missing item is a bug
                e = ext.setdefault(int(oid), DataExtent(int(oid), -1, -1))
            for line in body:
                m = _DREF_RE.search(line)
                if m:
                    e.backrefs[("data", _num(m.group(1)), int(m.group(2)), int(m.group(3)),
                                int(m.group(4)))] += 1
                m = _SREF_KEYED_RE.search(line)
                if m and typ == "SHARED_DATA_REF":
                    e.backrefs[("shared", int(off), int(m.group(1)))] += 1
    return ext


def data_extents(image):
    return parse_data_extents(fixtures.dump_tree_progs(image, "-t", "extent"))


def refs_sum(e):
    return sum(t[-1] * n for t, n in e.backrefs.items())


_FE_GEN_RE = re.compile(r"generation (\d+) type (\d+)")
_FE_DISK_RE = re.compile(r"(?:extent|prealloc) data disk byte (\d+) nr (\d+)")
_FE_OFF_RE = re.compile(r"(?:extent|prealloc) data offset (\d+) nr (\d+)(?: ram (\d+))?")
_FE_COMP_RE = re.compile(r"extent compression (\d+)")
_FE_INL_RE = re.compile(r"inline extent data size (\d+) ram_bytes (\d+) compression (\d+)")
_INODE_RE = re.compile(r"generation (\d+) transid (\d+) size (\d+) nbytes (\d+)")


class FileInfo:
    """Inode size/nbytes and file extent items of one inode (generation left out)."""
    __slots__ = ("size", "nbytes", "extents")

    def __init__(self):
        self.size = self.nbytes = None
        self.extents = []

    def __repr__(self):
        return "FileInfo(size=%s nbytes=%s extents=%s)" % (self.size, self.nbytes, self.extents)


def parse_fs_tree(text):
    """{ino: FileInfo} from `dump-tree -t <tree>` text.

    File extents are tuples (key offset, type, disk_bytenr, disk_num_bytes,
    offset, num_bytes, ram_bytes, compression); inline ones
    (key offset, 0, 'inline', size, ram_bytes, compression).
    """
    files = collections.defaultdict(FileInfo)
    for oid, typ, off, body in _items(text):
        if typ == "INODE_ITEM":
            m = _INODE_RE.search(" ".join(body))
            if m:
                fi = files[int(oid)]
                fi.size, fi.nbytes = int(m.group(3)), int(m.group(4))
        elif typ == "EXTENT_DATA":
            joined = " ".join(body)
            g = _FE_GEN_RE.search(joined)
            ftype = int(g.group(2)) if g else -1
            m = _FE_INL_RE.search(joined)
            if ftype == 0 and m:
                t = (int(off), 0, "inline", int(m.group(1)), int(m.group(2)), int(m.group(3)))
            else:
                d = _FE_DISK_RE.search(joined)
                o = _FE_OFF_RE.search(joined)
                c = _FE_COMP_RE.search(joined)
                t = (int(off), ftype, int(d.group(1)), int(d.group(2)), int(o.group(1)),
                     int(o.group(2)), int(o.group(3) or 0), int(c.group(1)) if c else 0)
            files[int(oid)].extents.append(t)
    return dict(files)


def fs_tree(image, tree_id):
    return parse_fs_tree(fixtures.dump_tree_progs(image, "-t", str(tree_id)))


def super_field(image, name):
    out = fixtures.dump_super_progs(image)
    m = re.search(r"^%s\s+(\S+)" % re.escape(name), out, re.M)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# Comparisons.

def extent_keys(extents):
    """{(bytenr, num_bytes)} of a parse_data_extents() result."""
    return {(e.bytenr, e.num_bytes) for e in extents.values()}


def compare_data_extents(ref, got, base_keys):
    """Differences between the data extents of two images as readable lines.

    Extents with the same (bytenr, num_bytes) must have equal refs and equal
    backref multisets.  An extent in only one image must be new (not in
    base_keys: data the kernel or we wrote, e.g. an inline extent cloned into
    the middle of a file; space freed by an earlier operation may be reused
    at another address); those are matched by (num_bytes, refs, backrefs) as
    multisets.
    """
    diffs = []
    only_ref = collections.Counter()
    only_got = collections.Counter()
    rk = {(e.bytenr, e.num_bytes): e for e in ref.values()}
    gk = {(e.bytenr, e.num_bytes): e for e in got.values()}
    for k in sorted(set(rk) | set(gk)):
        r, g = rk.get(k), gk.get(k)
        if r is not None and g is not None:
            if r.refs != g.refs or r.backrefs != g.backrefs:
                diffs.append("extent %d+%d: kernel refs %d %s, ours refs %d %s" % (
                    k[0], k[1], r.refs, sorted(r.backrefs.elements()), g.refs,
                    sorted(g.backrefs.elements())))
            continue
        e = r if r is not None else g
        key = (e.num_bytes, e.refs, tuple(sorted(e.backrefs.elements())))
        if k in base_keys:
            diffs.append("extent %d+%d (existed before) is only in %s: %r" % (
                k[0], k[1], "the kernel's image" if r is not None else "ours", e))
        elif r is not None:
            only_ref[key] += 1
        else:
            only_got[key] += 1
    if only_ref != only_got:
        diffs.append("new extents differ: kernel %s, ours %s" % (
            sorted((only_ref - only_got).elements()), sorted((only_got - only_ref).elements())))
    for e in got.values():
        if e.refs != refs_sum(e):
            diffs.append("ours: extent %d refs %d but its backrefs sum to %d"
                         % (e.bytenr, e.refs, refs_sum(e)))
    return diffs


def normalize_extents(extents, base_keys):
    """File extent tuples with the disk_bytenr of newly written extents masked."""
    out = []
    for t in extents:
        if t[2] not in ("inline", 0) and (t[2], t[3]) not in base_keys:
            t = t[:2] + ("new",) + t[3:]
        out.append(t)
    return out


# ---------------------------------------------------------------------------
# Our binary.

def fault_injection_available(run_bin, scratch_image):
    """True when the binary under test was built with fault injection.

    Runs a harmless write command (one xattr on the top directory) with
    EXTCRYPT_FAIL_AT=1 on a scratch copy and looks for the message.
    """
    res = run_bin("debug", "xattrs", "--add", "1", str(scratch_image),
                  env={"EXTCRYPT_FAIL_AT": "1"})
    return res.returncode == 1 and FAULT_MSG_RE.search(res.stderr) is not None


# ---------------------------------------------------------------------------
# The reference image of the kernel matrix.

def _write_chunks(path, chunks, mode="wb"):
    """Write chunks one by one with fsync between: one data extent each."""
    with open(path, mode) as f:
        for c in chunks:
            f.write(c)
            f.flush()
            os.fsync(f.fileno())


def _text(rng, n):
    words = [b"btrfs", b"extent", b"reflink", b"clone", b"range", b"backref", b"\n"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def make_matrix_image(image, workdir, nodesize=16384, csum="crc32c", seed=11, size_mib=160):
    """A plain image with kernel-made content for the reflink matrix (root only).

    mkfs --rootdir (1 MiB extents, inline files), then rw loop mounts add:
    multi-extent files (fsync between chunks), unaligned-EOF files, zstd /
    zlib / lzo compressed files (compress-force), prealloc, holes, one
    destination file with existing data per case, a subvolume with a
    multi-leaf tree, a rw snapshot of it (leaves still shared) and a
    read-only snapshot.  Returns the image path.
    """
    import random
    rng = random.Random(seed)
    workdir = Path(workdir)
    tree = workdir / "tree"
    (tree / "mk").mkdir(parents=True, exist_ok=True)
    (tree / "mk" / "one.bin").write_bytes(rng.randbytes(MiB + 512 * KiB))
    (tree / "mk" / "inline.txt").write_bytes(_text(rng, 300))
    fixtures.mkfs(image, tree, csum=csum, nodesize=nodesize, size_mib=size_mib)
    mnt = workdir / "mnt"
    with fixtures.loop_mount(image, mnt, ro=False, options=("noatime",)) as m:
        (m / "new").mkdir()
        _write_chunks(m / "multi.bin", [rng.randbytes(128 * KiB) for _ in range(8)])
        _write_chunks(m / "multi2.bin", [rng.randbytes(64 * KiB) for _ in range(6)]
                      + [rng.randbytes(5000)])
        _write_chunks(m / "odd.bin", [rng.randbytes(300001)])
        for name in ("within.bin", "within2.bin"):
            _write_chunks(m / name, [rng.randbytes(128 * KiB) for _ in range(4)])
        for i in range(1, 10):
            _write_chunks(m / ("over%d.bin" % i), [rng.randbytes(256 * KiB) for _ in range(4)])
        (m / "tiny.txt").write_bytes(_text(rng, 100))
        (m / "tiny1500.bin").write_bytes(rng.randbytes(1500))
        (m / "inl-dst.bin").write_bytes(rng.randbytes(1800))
        (m / "odd-dst.bin").write_bytes(rng.randbytes(100000))
        # Prealloc: whole, partly written (prealloc / regular / prealloc).
        sh("fallocate", "-l", str(MiB), m / "pre.bin")
        with open(m / "pre.bin", "r+b") as f:
            f.seek(256 * KiB)
            f.write(rng.randbytes(64 * KiB))
            f.flush()
            os.fsync(f.fileno())
        sh("fallocate", "-l", str(512 * KiB), m / "pre-dst.bin")
        # Prealloc past EOF (fallocate --keep-size).
        _write_chunks(m / "pre-past-eof.bin", [rng.randbytes(64 * KiB)])
        sh("fallocate", "-n", "-o", str(64 * KiB), "-l", str(256 * KiB), m / "pre-past-eof.bin")
        # NODATACOW (hence NODATASUM) files: chattr +C while empty.
        for name in ("nocow.bin", "nocow-dst.bin"):
            (m / name).touch()
            sh("chattr", "+C", m / name)
            _write_chunks(m / name, [rng.randbytes(128 * KiB) for _ in range(2)])
        # Holes: sparse (data, hole, data, hole to EOF), punched.
        with open(m / "sparse.bin", "wb") as f:
            f.write(rng.randbytes(64 * KiB))
            f.seek(512 * KiB)
            f.write(rng.randbytes(64 * KiB))
            f.truncate(MiB)
        _write_chunks(m / "punched.bin", [rng.randbytes(256 * KiB) for _ in range(4)])
        sh("fallocate", "-p", "-o", str(128 * KiB), "-l", str(256 * KiB), m / "punched.bin")
        with open(m / "holes-dst.bin", "wb") as f:
            f.write(rng.randbytes(64 * KiB))
            f.seek(768 * KiB)
            f.write(rng.randbytes(64 * KiB))
            f.truncate(MiB)
        # Subvolume with several leaves, then snapshots.
        sh("btrfs", "subvolume", "create", m / "sv")
        _write_chunks(m / "sv" / "f.bin", [rng.randbytes(128 * KiB) for _ in range(4)])
        for name in ("dst.bin", "dst2.bin"):
            _write_chunks(m / "sv" / name, [rng.randbytes(128 * KiB) for _ in range(4)])
        (m / "sv" / "small").mkdir()
        for i in range(60):
            (m / "sv" / "small" / ("s%02d" % i)).write_bytes(rng.randbytes(1000 + i))
        # The last inode: its items are in another leaf than f.bin's.
        _write_chunks(m / "sv" / "late.bin", [rng.randbytes(128 * KiB) for _ in range(4)])
        os.sync()
        sh("btrfs", "subvolume", "snapshot", m / "sv", m / "snap")
        sh("btrfs", "subvolume", "snapshot", "-r", m / "sv", m / "snap-ro")
        os.sync()
    for algo in ("zstd", "zlib", "lzo"):
        with fixtures.loop_mount(image, mnt, ro=False,
                                 options=("noatime", "compress-force=" + algo)) as m:
            _write_chunks(m / ("%s.txt" % algo), [_text(rng, 600 * KiB + 7)])
            _write_chunks(m / ("%s-rand.bin" % algo), [rng.randbytes(256 * KiB)])
            _write_chunks(m / ("%s-inline.txt" % algo), [_text(rng, 3000)])
    return Path(image)


# ---------------------------------------------------------------------------
# Random reflinks with a content model (stress tests and the bench).

SECTOR = 4096


def _up(x, a=SECTOR):
    return (x + a - 1) // a * a


class CloneModel:
    """File contents as bytearrays; clone() applies FICLONERANGE semantics."""

    def __init__(self, files):
        self.files = {k: bytearray(v) for k, v in files.items()}

    def valid(self, src, so, ln, dst, do):
        s, d = self.files[src], self.files[dst]
        ssize, dsize = len(s), len(d)
        if so % SECTOR or do % SECTOR:
            return False
        if ln == 0:
            ln = ssize - so
            if ln <= 0:
                return False
        if so + ln > ssize:
            return False
        at_eof = so + ln == ssize
        if not at_eof and ln % SECTOR:
            return False
        bcount = _up(ssize) - so if at_eof else ln
        if src == dst and do + bcount > so and do < so + bcount:
            return False
        if ln % SECTOR and do + ln < dsize:
            return False            # the EOF block into the middle: EINVAL
        if do > dsize and dsize % SECTOR:
            return False            # offline gap: documented deviation
        return True

    def clone(self, src, so, ln, dst, do):
        s = self.files[src]
        if ln == 0:
            ln = len(s) - so
        data = bytes(s[so:so + ln])
        d = self.files[dst]
        if do > len(d):
            d.extend(bytes(do - len(d)))
        d[do:do + ln] = data


def random_ops(model, rng, n, max_size=4 * MiB, max_len=512 * KiB):
    """n valid random clones (src, so, ln, dst, do), applied to the model."""
    names = sorted(model.files)
    ops = []
    while len(ops) < n:
        src, dst = rng.choice(names), rng.choice(names)
        ssize, dsize = len(model.files[src]), len(model.files[dst])
        if ssize == 0:
            continue
        so = rng.randrange(0, _up(ssize) // SECTOR) * SECTOR
        r = rng.random()
        if r < 0.15:
            ln = 0                                  # to the source's EOF
        elif r < 0.25:
            ln = ssize - so                         # explicit length to EOF
        else:
            ln = rng.randint(1, max(1, min(max_len, ssize - so) // SECTOR)) * SECTOR
        real = ln or ssize - so
        do = rng.randrange(0, max(1, min(_up(dsize) + 256 * KiB, max_size - real)) // SECTOR) \
            * SECTOR
        if do + real > max_size or not model.valid(src, so, ln, dst, do):
            continue
        model.clone(src, so, ln, dst, do)
        ops.append((src, so, ln, dst, do))
    return ops


def make_stress_files(seed=5):
    """{name: bytes}: 10 files of 64 KiB..1.5 MiB (some with unaligned tails),
    text and random, plus two inline-sized ones."""
    import random
    rng = random.Random(seed)
    files = {}
    for i in range(8):
        size = rng.choice((64 * KiB, 300 * KiB, 512 * KiB, MiB, 1536 * KiB)) + \
            rng.choice((0, 0, 1234, 4095))
        files["f%d.bin" % i] = rng.randbytes(size)
    files["text.txt"] = _text(rng, 700 * KiB + 99)
    files["t-inline.txt"] = _text(rng, 300)
    return files


def make_stress_image(image, workdir, files, nodesize=4096, kernel=False, size_mib=128,
                      snapshot=False, csum="crc32c"):
    """mkfs --rootdir the files (1 MiB extents); with kernel=True (root) the
    files are instead written through a rw mount in 64 KiB fsync'd chunks,
    text.txt with compress-force=zstd, so they start with many extents; and
    with snapshot=True a rw snapshot `snap` of the top level is taken (the
    files are then also snap/<name>)."""
    workdir = Path(workdir)
    tree = workdir / "stress-tree"
    tree.mkdir(parents=True, exist_ok=True)
    if not kernel:
        for name, data in files.items():
            (tree / name).write_bytes(data)
        return fixtures.mkfs(image, tree, nodesize=nodesize, size_mib=size_mib, csum=csum)
    fixtures.mkfs(image, tree, nodesize=nodesize, size_mib=size_mib, csum=csum)
    with fixtures.loop_mount(image, workdir / "stress-mnt", ro=False,
                             options=("noatime", "compress-force=zstd")) as m:
        for name, data in files.items():
            if name == "text.txt":
                _write_chunks(m / name, [data])
    with fixtures.loop_mount(image, workdir / "stress-mnt", ro=False,
                             options=("noatime",)) as m:
        for name, data in files.items():
            if name != "text.txt":
                _write_chunks(m / name, [data[i:i + 64 * KiB]
                                         for i in range(0, len(data), 64 * KiB)] or [b""])
        if snapshot:
            # Its leaves are shared with the top level: clones into either
            # COW shared leaves (FULL_BACKREF, SHARED_DATA_REF).
            os.sync()
            sh("btrfs", "subvolume", "snapshot", m, m / "snap")
    return Path(image)


def model_digests(model):
    return {n: (len(d), hashlib.sha256(bytes(d)).hexdigest()) for n, d in model.files.items()}

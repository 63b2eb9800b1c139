"""`encrypt` and `decrypt` (issue 5, "Must hold"), judged by oracles we did not write.

1. Round trip.  mkfs --rootdir images (4 csum types x 3 nodesizes: the
   conftest `mkfs_image` fixtures) and, as root, kernel-made images
   (build_kernel_image: holes, prealloc full / partly written / past EOF,
   zlib/lzo/zstd extents and compressed inline extents, reflinks, a
   subvolume, a modified snapshot of it, a ro snapshot of the top level, a
   subvolume nested in a directory, NODATACOW data, device nodes, a socket,
   xattrs, hard links, symlinks, a 2000-entry
   directory, 255-byte and non-ASCII names; crc32c/16K, blake2/4K, and
   xxhash/16K with every snapshot-shared leaf COWed by the kernel), the
   conftest kernel image, and small kernel images pinning one feature each:
   encrypt, then decrypt.  The decrypted image must pass
   `btrfs check --check-data-csum` (original and lowmem) and our `check`;
   as root, a ro loop mount + `btrfs scrub start -B -r` clean, no BTRFS
   warning in dmesg, and a manifest taken through the kernel (contents,
   size, mode, uid/gid, nlink, xattrs, link targets, listings, dir sizes)
   equal to the manifest of the original image mounted the same way.
   Always, the decrypted image is also compared with the original item by
   item by encrypt_ref's reader (names, refs, xattrs, inode fields, file
   bytes).  Our `check --check-data-csum` and `check --key-file` must be
   clean on the encrypted image.
2. Ciphertext proof.  encrypt_ref.verify_encrypted (written from Documentation/format.rst
   only) recomputes from the original plaintext and the key every encrypted
   extent (sector by sector, XTS with DUN from the extent start; compressed
   extents from the original stored bytes), every DIR_INDEX/DIR_ITEM/
   INODE_REF/EXTREF/ROOT_REF name (CTS, parent directory key, hash of the
   ciphertext), every symlink payload {le16 len; ct}, every inode and extent
   context, every csum over the ciphertext (csum tree read by encrypt_ref's
   own tree walker, chunk map from btrfs-progs' dump-tree of the original
   image), nonce uniqueness, and that nothing lies on a superblock copy.
   Also for --padding 4/16, --path DIR, --subvol, and symlink targets at
   the inline size limit.
3. No plaintext left: unique markers in data (inline and regular), file,
   directory, hardlink, fifo and subvolume names and symlink targets are not
   found anywhere in the image file after `encrypt` (default wipe); mkfs
   images here, kernel-made ones in the round trip.  --no-wipe:
   informational (printed).
4. Nonces: 1100 files of 4 KiB: every inode and extent nonce distinct, and
   the concatenation does not shrink under `xz -9`.
5. Crash sweep: test_encrypt_crash.py.
Refusals and options: wrong key (exit 4, image byte-identical), bad key
input, unsupported and invalid policies, locked image, mounted image (root),
not enough free space (also: the preflight must count inline files that
become extents), --dry-run, resumability after a cut, idempotent re-runs,
--key-fd / stdin / hex keys, progress line on a terminal and summary.

Images are 128-256 MiB sparse files.  Binary: env EXTCRYPT_BIN.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

import encrypt_ref as R
import fixtures
from conftest import root_skip_reason
from reflink_lib import dmesg_btrfs_problems as dmesg_problems, dmesg_mark, scrub_ro, sh
from runner import error_lines

MiB = 1024 * 1024
KiB = 1024
KEY_A = hashlib.sha512(b"btrfs-extcrypt encrypt test key A").digest()
KEY_B = hashlib.sha512(b"btrfs-extcrypt encrypt test key B").digest()
FAULT_RE = re.compile(r"fault injection: write \d+ failed")


# ---------------------------------------------------------------------------
# Helpers shared with test_encrypt_crash.py.

def write_key(path, key):
    path = Path(path)
    path.write_bytes(key)
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return write_key(d / "a.key", KEY_A), write_key(d / "b.key", KEY_B)


def convert(run, cmd, image, keyfile, *extra, env=None, timeout=120):
    """Run encrypt/decrypt with --format json; returns (CompletedProcess, doc or None)."""
    res = run("--format", "json", cmd, "--key-file", keyfile, *extra, image,
              env=env, timeout=timeout)
    doc = None
    if res.returncode == 0:
        doc = json.loads(res.stdout)
    return res, doc


def must(res, what=""):
    assert res.returncode == 0, "%s%s exited %d:\n%s" % (what and what + ": ", " ".join(res.args),
                                                        res.returncode, res.stderr[-3000:])
    assert not error_lines(res.stderr), "exit 0 after ERROR lines:\n" + res.stderr[-2000:]
    return res


def our_check(run, image, *args, expect=0):
    res = run("check", *args, image, timeout=180)
    assert res.returncode == expect, "our check %s %s: exit %d (want %d)\n%s\n%s" % (
        " ".join(args), image, res.returncode, expect, res.stdout[-3000:], res.stderr[-4000:])
    return res


def progs_check(image, lowmem=True):
    for args in (("--check-data-csum",), ("--mode", "lowmem", "--check-data-csum"))[:2 if lowmem else 1]:
        res = fixtures.btrfs_check(image, *args)
        assert res.returncode == 0, "btrfs check %s %s: exit %d\n%s\n%s" % (
            " ".join(args), image, res.returncode, res.stdout[-3000:], res.stderr[-3000:])


def image_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(8 * MiB), b""):
            h.update(blk)
    return h.hexdigest()


def progs_chunks(image):
    return R.chunks_from_progs_text(fixtures.dump_tree_progs(image, "-t", "chunk"))


def incompat(image):
    with R.ImageReader(image, verify=False) as img:
        return img.incompat


def any_encrypted_inode(image):
    with R.ImageReader(image) as img:
        for t in img.fs_tree_ids():
            for key, data in img.tree_items(t):
                if key[1] == R.FSCRYPT_INODE_CTX:
                    return True
                if key[1] == R.INODE_ITEM and R.parse_inode(data).flags & R.INODE_FLAG_ENCRYPT:
                    return True
    return False


def summarize(st):
    return {k: (len(v) if isinstance(v, list) else v) for k, v in st.items()}


def tree_content(base):
    """content callback for verify_encrypted: read the file from a source
    tree or a mount of the original image."""
    def content(tree, ino, path):
        if path is None:
            return None
        with open(os.path.join(os.fsencode(str(base)), path), "rb") as f:
            return f.read()
    return content


def assert_verified(orig, enc, content, key=KEY_A, flags=3, trees=None, json_doc=None):
    t0 = time.time()
    st, problems = R.verify_encrypted(orig, enc, key, content, chunks=progs_chunks(orig),
                                      flags=flags, trees=trees)
    s = summarize(st)
    s["seconds"] = round(time.time() - t0, 2)
    print("ciphertext proof %s: %s" % (Path(enc).name, s))
    assert not problems, "ciphertext proof found %d problems:\n%s" % (len(problems),
                                                                      "\n".join(problems[:40]))
    assert st["extents"] == 0 or st["csums_checked"] > 0
    if json_doc is not None:
        assert json_doc["inodes"] == st["inodes"], (json_doc, s)
        # "extents" is not defined precisely (disk extents or items): shown only
        print("json extents %d; encrypted disk extents %d, encrypted EXTENT_DATA items %d"
              % (json_doc["extents"], st["extents"], st["extent_items"]))
        got = sum(v["inodes"] for v in json_doc["subvolumes"])
        assert got == json_doc["inodes"], json_doc
    return st


def compare_plain(orig, dec, allow_nbytes=True):
    """Item-level equivalence of the decrypted image with the original
    (encrypt_ref reader; no kernel).  Returns a list of differences."""
    diffs = []
    O, D = R.ImageReader(orig), R.ImageReader(dec)
    try:
        if D.incompat & R.INCOMPAT_ENCRYPT:
            diffs.append("incompat bit 15 still set after decrypt")
        if O.fs_tree_ids() != D.fs_tree_ids():
            diffs.append("fs trees %r -> %r" % (O.fs_tree_ids(), D.fs_tree_ids()))
        for t in O.fs_tree_ids():
            ot, dt = R.FsTree(O.tree_items(t)), R.FsTree(D.tree_items(t))
            if ot.inodes() != dt.inodes():
                diffs.append("tree %d: inode set changed" % t)
                continue
            for ino in ot.inodes():
                oi, di = ot.inode(ino), dt.inode(ino)
                for f in ("mode", "uid", "gid", "nlink", "size", "rdev", "flags"):
                    if getattr(oi, f) != getattr(di, f):
                        diffs.append("tree %d ino %d: %s %r -> %r" % (t, ino, f, getattr(oi, f),
                                                                      getattr(di, f)))
                if not allow_nbytes and oi.nbytes != di.nbytes:
                    diffs.append("tree %d ino %d: nbytes %d -> %d" % (t, ino, oi.nbytes, di.nbytes))
                for typ in (R.FSCRYPT_INODE_CTX, R.FSCRYPT_CTX):
                    if dt.get(ino, typ):
                        diffs.append("tree %d ino %d: item %d left" % (t, ino, typ))
                # links: (parent, index) -> name over INODE_REF + INODE_EXTREF
                # (a name may sit in either item type)
                if {k: v[0] for k, v in R._all_refs(ot, ino)[0].items()} != \
                        {k: v[0] for k, v in R._all_refs(dt, ino)[0].items()}:
                    diffs.append("tree %d ino %d: links (INODE_REF/EXTREF) differ" % (t, ino))
                # xattrs; transid is not compared (C14)
                a = sorted((k, [(e.name, e.data, e.type) for e in R.parse_dir_entries(d)])
                           for k, d in ot.get(ino, R.XATTR_ITEM))
                b = sorted((k, [(e.name, e.data, e.type) for e in R.parse_dir_entries(d)])
                           for k, d in dt.get(ino, R.XATTR_ITEM))
                if a != b:
                    diffs.append("tree %d ino %d: xattrs differ" % (t, ino))
                oidx, didx = ot.dir_index(ino), dt.dir_index(ino)
                if {k: (e.name, e.type, e.location) for k, e in oidx.items()} != \
                        {k: (e.name, e.type, e.location) for k, e in didx.items()}:
                    diffs.append("tree %d dir %d: DIR_INDEX entries differ" % (t, ino))
                oit = {h: sorted((e.name, e.type, e.location) for e in es) for h, es in ot.dir_items(ino).items()}
                dit = {h: sorted((e.name, e.type, e.location) for e in es) for h, es in dt.dir_items(ino).items()}
                if oit != dit:
                    diffs.append("tree %d dir %d: DIR_ITEM entries differ" % (t, ino))
                kind = oi.mode & R.S_IFMT
                oext, dext = ot.extents(ino), dt.extents(ino)
                if any(fe.encryption for _k, fe in dext if fe.type != 0) or \
                        any(fe.type == 0 and fe.encryption for _k, fe in dext):
                    diffs.append("tree %d ino %d: extent with encryption 1 left" % (t, ino))
                if kind == R.S_IFLNK:
                    a = oext[0][1].inline[:oi.size] if oext else None
                    b = dext[0][1].inline[:di.size] if dext and dext[0][1].type == 0 else None
                    if a != b:
                        diffs.append("tree %d symlink %d: target %r -> %r" % (t, ino, a, b))
                elif kind == R.S_IFREG:
                    a, b = R.file_plain_bytes(O, ot, ino), R.file_plain_bytes(D, dt, ino)
                    if a is not None and b is not None and a != b:
                        diffs.append("tree %d file %d: contents differ" % (t, ino))
                    oc = sorted((k, fe.type, fe.compression, fe.ram_bytes if fe.compression else 0)
                                for k, fe in oext if fe.compression)
                    dc = sorted((k, fe.type, fe.compression, fe.ram_bytes if fe.compression else 0)
                                for k, fe in dext if fe.compression)
                    if oc != dc and all(fe.type != 0 for _k, fe in oext):
                        diffs.append("tree %d file %d: compressed extents %r -> %r" % (t, ino, oc, dc))
        oref = sorted((k, R.parse_root_ref(d)) for k, d in O.root_tree_items()
                      if k[1] in (R.ROOT_REF, R.ROOT_BACKREF))
        dref = sorted((k, R.parse_root_ref(d)) for k, d in D.root_tree_items()
                      if k[1] in (R.ROOT_REF, R.ROOT_BACKREF))
        if oref != dref:
            diffs.append("ROOT_REF/ROOT_BACKREF changed: %r -> %r" % (oref, dref))
    finally:
        O.close()
        D.close()
    return diffs


# ---------------------------------------------------------------------------
# Kernel side (root).

@contextlib.contextmanager
def ro_mount(image, mountpoint):
    """Read-only loop mount; yields (mountpoint, loop device, dmesg mark)."""
    mark = dmesg_mark()
    Path(mountpoint).mkdir(parents=True, exist_ok=True)
    dev = sh("losetup", "--find", "--show", "--read-only", image).stdout.strip()
    try:
        sh("mount", "-t", "btrfs", "-o", "ro", dev, mountpoint)
        try:
            yield Path(mountpoint), dev, mark
        finally:
            res = sh("umount", mountpoint, check=False)
            if res.returncode:
                sh("umount", "-l", mountpoint, check=False)
    finally:
        sh("losetup", "-d", dev, check=False)


def kernel_manifest(mnt):
    """Everything a user sees through the kernel, per relative path (bytes).
    Returns (strict, info): strict must be equal image to image; info
    (mtime, blocks) is only printed."""
    strict, info = {}, {}
    base = os.fsencode(str(mnt))
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in [b"."] + sorted(dirnames + filenames):
            p = dirpath if name == b"." else os.path.join(dirpath, name)
            rel = os.path.relpath(p, base)
            if name == b"." and dirpath != base:
                continue
            stt = os.lstat(p)
            ent = {"mode": stt.st_mode, "uid": stt.st_uid, "gid": stt.st_gid,
                   "nlink": stt.st_nlink, "size": stt.st_size}
            try:
                ent["xattrs"] = sorted((x, os.getxattr(p, x, follow_symlinks=False))
                                       for x in os.listxattr(p, follow_symlinks=False))
            except OSError as e:
                ent["xattrs"] = "error %d" % e.errno
            if stat.S_ISREG(stt.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for blk in iter(lambda: f.read(4 * MiB), b""):
                        h.update(blk)
                ent["sha256"] = h.hexdigest()
            elif stat.S_ISLNK(stt.st_mode):
                ent["target"] = os.readlink(p)
            elif stat.S_ISDIR(stt.st_mode):
                ent["listing"] = sorted(os.listdir(p))
            strict[rel] = ent
            info[rel] = {"mtime": stt.st_mtime_ns, "blocks": stt.st_blocks}
    return strict, info


def manifest_of(image, mnt):
    with ro_mount(image, mnt) as (m, dev, mark):
        man = kernel_manifest(m)
    return man


def diff_manifests(a, b, limit=30):
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append("%r: %r\n    -> %r" % (k, a.get(k), b.get(k)))
            if len(out) >= limit:
                break
    return out


def kernel_judge(orig, dec, work):
    """ro mount of both, manifests equal, scrub clean, no dmesg problems."""
    man_o, info_o = manifest_of(orig, work / "mnt-orig")
    with ro_mount(dec, work / "mnt-dec") as (m, dev, mark):
        man_d, info_d = kernel_manifest(m)
        ok, text = scrub_ro(m)
        probs = dmesg_problems(mark, dev)
    diffs = diff_manifests(man_o, man_d)
    assert not diffs, "kernel manifest of the decrypted image differs from the original " \
                      "(%d entries):\n%s" % (len(man_o), "\n".join(diffs))
    assert ok, "scrub of the decrypted image not clean:\n" + text[-2000:]
    assert not probs, "BTRFS warnings in dmesg:\n" + "\n".join(probs[:20])
    changed = sum(1 for k in info_o if info_o[k] != info_d.get(k))
    print("kernel manifest: %d entries equal; %d differ only in mtime/blocks (informational)"
          % (len(man_o), changed))
    return man_o


# ---------------------------------------------------------------------------
# Markers (point 3).

def marker(rng, tag):
    return ("MRK%s%sKRM" % (tag, rng.randbytes(6).hex())).encode()


def make_marker_tree(dest, seed=21, extra_names=()):
    """A tree whose data, names and symlink targets carry unique markers.
    Returns {marker bytes: where}."""
    rng = random.Random(seed)
    dest = Path(dest)
    dest.mkdir(parents=True)
    marks = {}

    def m(tag, where):
        x = marker(rng, tag)
        marks[x] = where
        return x

    def wf(rel, data):
        p = os.path.join(os.fsencode(str(dest)), rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    wf(b"inline-small.txt", b"hello " + m("I1", "inline 100 B data") + b" world\n")
    wf(b"inline-2000.bin", rng.randbytes(900) + m("I2", "inline 2000 B data") + rng.randbytes(1076))
    wf(b"exactly-marker", m("I3", "file that is only the marker"))
    big = bytearray(rng.randbytes(300 * 1024))
    for off in (0, 4090, 100000, 300 * 1024 - 30):
        x = m("D%d" % off, "regular data @%d" % off)
        big[off:off + len(x)] = x
    wf(b"regular-300k.bin", bytes(big))
    odd = bytearray(rng.randbytes(1024 * 1024 + 777))
    x = m("DE", "data in the last partial sector")
    odd[-len(x):] = x
    wf(b"data/one-mib-odd.bin", bytes(odd))
    wf(b"name-" + m("N1", "file name") + b".txt", b"named\n")
    d = m("N2", "directory name")
    wf(d + b"/inside-" + m("N3", "name in a marker dir") + b".bin", rng.randbytes(5000))
    long_name = m("N4", "255-byte name")
    long_name = long_name + b"L" * (255 - len(long_name))
    wf(b"names/" + long_name, b"long name\n")
    utf = "\u00e9t\u00e9-".encode() + m("N5", "non-ASCII name")
    wf(b"names/" + utf, b"utf8\n")
    wf(b"hl/orig", rng.randbytes(3000))
    os.link(os.path.join(os.fsencode(str(dest)), b"hl/orig"),
            os.path.join(os.fsencode(str(dest)), b"hl/" + m("N6", "hardlink second name")))
    os.mkfifo(os.path.join(os.fsencode(str(dest)), b"fifo-" + m("N7", "fifo name")))
    os.symlink(b"target-" + m("S1", "short symlink target"),
               os.path.join(os.fsencode(str(dest)), b"link-short"))
    os.symlink(b"/".join([b"seg%02d" % i for i in range(60)]) + b"/" + m("S2", "long symlink target"),
               os.path.join(os.fsencode(str(dest)), b"link-long"))
    os.symlink(b"x", os.path.join(os.fsencode(str(dest)), b"link-" + m("N8", "symlink name")))
    for tag, where in extra_names:
        wf(b"extra-" + m(tag, where), b"x")
    fixtures._set_times(dest)
    return marks


def data_segments(path):
    """(offset, bytes) of every data segment of a sparse file (holes are
    zeros and hold no marker); segments overlap by 64 bytes."""
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            for off in range(start, end, 16 * MiB):
                n = min(16 * MiB + 64, end - off)
                yield off, os.pread(fd, n, off)
            pos = end


def find_markers(image, marks):
    """{marker: (where, [first offsets])} of the markers found in the image file."""
    found = {}
    for off, seg in data_segments(image):
        if b"MRK" not in seg:
            continue
        for x, where in marks.items():
            i = seg.find(x)
            while i >= 0:
                lst = found.setdefault(x, (where, []))[1]
                if off + i not in lst and len(lst) < 5:
                    lst.append(off + i)
                i = seg.find(x, i + 1)
    return found


# ---------------------------------------------------------------------------
# Kernel-made image for the round trip (root).

def _drop_compressed_inline(mnt):
    """Remove the files whose data the kernel stored as compressed inline
    extents (the tool refuses them for now), also in the ro snapshot."""
    removed = []
    for top in (mnt, mnt / "snap-top-ro"):
        ro = top != mnt
        if ro:
            sh("btrfs", "property", "set", "-ts", top, "ro", "false")
        for algo in ("zlib", "lzo", "zstd"):
            p = top / "compress" / algo / "inline-3000.txt"
            if p.exists():
                p.unlink()
                removed.append(str(p.relative_to(mnt)))
        if ro:
            sh("btrfs", "property", "set", "-ts", top, "ro", "true")
    return removed


def build_kernel_image(work, csum="crc32c", nodesize=16384, compressed_inline=True, seed=11,
                       cow_all=False):
    """mkfs --rootdir (2000-entry dir, markers, a spacer file) + kernel
    features through a rw loop mount.  The spacer is deleted through the
    kernel so the data block group has room for encrypt's copies (the tool
    does not allocate chunks).  compressed_inline=False removes the files
    the kernel stored as compressed inline extents; cow_all=True touches
    every inode of every writable subvolume at the end, so that the kernel
    COWs every leaf the snapshots shared (their extents then carry explicit
    and shared-data refs, and the snapshots keep FULL_BACKREF blocks).
    Returns (image, marks, manifest)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "tree"
    fixtures.make_sample_tree(tree, seed=seed, big_mib=1, dir_entries=2000)
    marks = make_marker_tree(tree / "marked", seed=seed)
    with open(tree / "spacer.bin", "wb") as f:
        f.write(b"\xa5" * (72 * MiB))
    image = work / "image.img"
    fixtures.mkfs(image, tree, csum=csum, nodesize=nodesize, size_mib=256)
    rng = random.Random(seed)
    with fixtures.loop_mount(image, work / "mnt", ro=False) as mnt:
        (mnt / "spacer.bin").unlink()
        os.sync()
        man = fixtures.populate_kernel_features(mnt, work, seed=seed)
        # More than populate_kernel_features gives: names, xattrs,
        # hardlinks and markers inside a subvolume, a subvolume nested in a
        # directory (its ROOT_REF name is encrypted with that directory's key).
        sv = mnt / "subvol"
        x = marker(rng, "K1")
        marks[x] = "name inside the kernel subvolume"
        (sv / ("kname-" + x.decode())).write_bytes(b"kernel " + marker_add(marks, rng, "K2", "data in subvolume"))
        (sv / fixtures.NAME_255).write_bytes(rng.randbytes(7000))
        (sv / fixtures.NAME_UTF8).write_bytes(b"utf8 in subvol\n")
        os.setxattr(sv / fixtures.NAME_UTF8, "user.k", b"kernel xattr")
        os.link(sv / "file.bin", sv / "dir" / "hardlink-to-file")
        os.symlink("../" + fixtures.NAME_UTF8, sv / "dir" / "kernel-symlink")
        (mnt / "nest").mkdir()
        sub2 = "sub-" + marker(rng, "K3").decode()
        marks[sub2.encode()[4:]] = "nested subvolume name (ROOT_REF)"
        sh("btrfs", "subvolume", "create", mnt / "nest" / sub2)
        (mnt / "nest" / sub2 / "in-nested.txt").write_bytes(rng.randbytes(6000))
        # compress-force=zstd style extents via a forced property on random data
        zf = mnt / "compress" / "zstd" / "marker-compressed.txt"
        zf.write_bytes((b"compressible text " * 2000) + marker_add(marks, rng, "K4", "zstd data") * 3
                       + b"tail " * 3000)
        # NODATACOW/NODATASUM data, device nodes and a socket
        (mnt / "nocow").mkdir()
        sh("chattr", "+C", mnt / "nocow")
        (mnt / "nocow" / "nocow.bin").write_bytes(rng.randbytes(300 * 1024))
        (mnt / "dev").mkdir()
        os.mknod(mnt / "dev" / "null-like", stat.S_IFCHR | 0o600, os.makedev(1, 3))
        os.mknod(mnt / "dev" / "blk-like", stat.S_IFBLK | 0o600, os.makedev(7, 200))
        import socket
        so = socket.socket(socket.AF_UNIX)
        so.bind(str(mnt / "dev" / "sock"))
        so.close()
        os.sync()
        removed = [] if compressed_inline else _drop_compressed_inline(mnt)
        os.sync()
        if cow_all:
            for top in (mnt, mnt / "subvol", mnt / "snap", mnt / "nest" / sub2):
                _touch_subvolume(top)
            os.sync()
    res = fixtures.btrfs_check(image, "--check-data-csum")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return image, marks, dict(man, removed=removed)


def _touch_subvolume(top):
    """utime every inode of one subvolume (not crossing into others)."""
    dev = os.lstat(top).st_dev
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.lstat(os.path.join(dirpath, d)).st_dev == dev]
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (now, now), follow_symlinks=False)
    os.utime(top, (now, now))


def marker_add(marks, rng, tag, where):
    x = marker(rng, tag)
    marks[x] = where
    return x


def compressed_inline_files(image):
    out = []
    with R.ImageReader(image) as img:
        for t in img.fs_tree_ids():
            fs = R.FsTree(img.tree_items(t))
            for ino in fs.inodes():
                for k, fe in fs.extents(ino):
                    if fe.type == 0 and fe.compression:
                        out.append((t, ino))
    return out


# ===========================================================================
# Tests.

def test_reference_vectors():
    """encrypt_ref reproduces Documentation/format.rst section 13 (the reference itself is right)."""
    m = bytes(range(64))
    assert R.key_identifier(m).hex() == "8699c2c53707405da5aba5ae4d8583c0"
    k9 = R.extent_key(m, bytes(range(16, 32)))
    assert k9.hex().startswith("fc3b851ea05ba37c40077f7f15ef91d0")
    ct = R.xts_encrypt(k9, bytes(8192))
    assert ct[:32].hex() == "e2854601e641cf59697e9b98f4f3243126f5abe1537ccffdd436f198410d3552"
    assert ct[4096:4128].hex() == "ee71073340c8bd04701063e7ab292f9e22f8fc45bcf4c71ca6993c5084ebd887"
    assert R.xts_decrypt(k9, ct) == bytes(8192)
    dk = R.per_file_key(m, bytes(range(32, 48)))
    assert dk.hex() == "d398ccce6ae321a5bec42c33e515e50fd8c627139a780defb57f044bbaa60746"
    c = R.encrypt_name(dk, b"hello", 2)
    assert c.hex() == "07aded59318f6629c6fbde1c654cc8cb" and R.name_hash(c) == 0x10cca503
    c = R.encrypt_name(dk, b"a_longer_filename_123", 2)
    assert c.hex() == "928b4ca7483c2d697c197ef80ccd39ae285773690501479c018b3c559613c416"
    assert R.name_hash(c) == 0x6e48651f
    dk2 = R.per_file_key(m, bytes.fromhex("4c9d8e5fdbf0cceffaa2149fb55fdb80"))
    assert R.encrypt_name(dk2, b"hello", 2).hex() == "dc6929b9b1224463b85d4a73cabc9b1a"
    assert R.encrypt_name(dk2, b"a_longer_filename_123", 2).hex() == \
        "a7bb9a93c8f0f69fd82808314d1547a0427b6834517a70a154a7fc6c1a744305"
    fk = R.derive(m, 2, bytes.fromhex("7ac0cd4afd69d50ee322783ed75f1060"), 64)
    ct = R.xts_encrypt(fk, bytes(8192))
    assert ct[:32].hex() == "2b037bb1169a50831211451686dd21d5d60d1da154176c8b663073d027f0c9cd"
    assert ct[4096:4128].hex() == "d500c75e91908ebf785e755ef9a3bc62e2b2b2ef3f43ae5783f5fb9a011df2cc"
    assert R.crc32c(b"123456789") == 0xe3069283
    assert R.crc32c_raw(0xFFFFFFFF, b"123456789") ^ 0xFFFFFFFF == 0xe3069283
    for n in range(16, 256):
        pt = bytes((i * 7 + n) & 0xFF for i in range(n))
        assert R.cts_decrypt(dk, R.cts_encrypt(dk, pt)) == pt
    for flags, n, want in ((0, 1, 16), (0, 17, 20), (1, 17, 24), (2, 17, 32), (3, 17, 32),
                           (3, 33, 64), (3, 250, 255), (0, 255, 255)):
        assert R.padded_len(n, flags) == want


# ---- 1 + 2: round trip and ciphertext proof, mkfs images -----------------

def test_roundtrip_mkfs(run, mkfs_image, copy_image, keys, tmp_path, is_root):
    """encrypt -> (ciphertext proof, our check) -> decrypt -> btrfs check x2,
    our check, item equality, and (root) the kernel manifest + scrub."""
    ka, _kb = keys
    orig = mkfs_image.path
    img = copy_image(orig, "rt.img")
    t0 = time.time()
    res, doc = convert(run, "encrypt", img, ka, "--threads", "2")
    must(res, "encrypt")
    t_enc = time.time() - t0
    assert doc["operation"] == "encrypt" and doc["dry-run"] is False
    assert incompat(img) & R.INCOMPAT_ENCRYPT
    our_check(run, img, "--check-data-csum")
    our_check(run, img, "--key-file", ka)
    assert_verified(orig, img, tree_content(mkfs_image.tree), json_doc=doc)
    t0 = time.time()
    res, ddoc = convert(run, "decrypt", img, ka, "--threads", "2")
    must(res, "decrypt")
    t_dec = time.time() - t0
    assert ddoc["inodes"] == doc["inodes"], (doc, ddoc)
    assert not incompat(img) & R.INCOMPAT_ENCRYPT, "bit 15 still set after decrypt"
    progs_check(img)
    our_check(run, img, "--check-data-csum")
    diffs = compare_plain(orig, img)
    assert not diffs, "decrypted image differs from the original:\n" + "\n".join(diffs[:40])
    print("%s: encrypt %.2fs, decrypt %.2fs, %d inodes, %d extents"
          % (mkfs_image.id, t_enc, t_dec, doc["inodes"], doc["extents"]))
    if is_root:
        kernel_judge(orig, img, tmp_path)


@pytest.mark.parametrize("padding,flags", [(4, 0), (16, 2)])
def test_padding_option(run, make_mkfs_image, copy_image, keys, padding, flags):
    """--padding N: names and symlink targets padded to N (Documentation/format.rst 8)."""
    ka, _ = keys
    src = make_mkfs_image("crc32c", 16384)
    img = copy_image(src.path, "pad.img")
    res, doc = convert(run, "encrypt", img, ka, "--padding", str(padding))
    must(res)
    our_check(run, img, "--key-file", ka)
    assert_verified(src.path, img, tree_content(src.tree), flags=flags)
    must(convert(run, "decrypt", img, ka)[0])
    assert not compare_plain(src.path, img)


def test_key_inputs(run, make_mkfs_image, copy_image, keys, tmp_path):
    """--key-fd, '-' (stdin) and --key-format hex give the same key id."""
    ka, _ = keys
    src = make_mkfs_image("xxhash", 4096)
    img = copy_image(src.path, "k.img")
    hexkey = tmp_path / "a.hex"
    hexkey.write_text(KEY_A.hex() + "\n")
    res = run("encrypt", "--key-file", hexkey, "--key-format", "hex", img)
    must(res)
    assert_verified(src.path, img, tree_content(src.tree))
    res = run("decrypt", "--key-file", "-", img, input=KEY_A)
    must(res)
    assert not compare_plain(src.path, img)
    r, w = os.pipe()
    os.write(w, KEY_A)
    os.close(w)
    try:
        res = subprocess.run([str(run.bin), "encrypt", "--key-fd", str(r), str(img)],
                             pass_fds=(r,), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=120)
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr
    assert_verified(src.path, img, tree_content(src.tree))


@pytest.mark.parametrize("nodesize,lengths", [(4096, (3900, 3940, 3946)), (16384, (4000, 4064, 4090))])
def test_symlink_targets_near_the_inline_limit(run, keys, tmp_path, nodesize, lengths):
    """Symlink targets whose padded ciphertext would pass the inline limit
    min(sectorsize - 1, nodesize - 147) (Documentation/format.rst 9): encrypt must either
    cap the padding (fscrypt caps at its max_len) and round trip, or refuse
    with exit 1 leaving a consistent image; never write an oversized item."""
    ka, _ = keys
    tree = tmp_path / "tree"
    tree.mkdir()
    for n in lengths:
        os.symlink(("t%d/" % n + "x" * n)[:n], tree / ("link-%d" % n))
    (tree / "f.txt").write_bytes(b"file\n")
    image = fixtures.mkfs(tmp_path / "sl.img", tree, nodesize=nodesize, size_mib=128)
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    res, doc = convert(run, "encrypt", img, ka)
    if res.returncode == 1:
        print("encrypt refused: " + res.stderr.strip())
        our_check(run, img)
        return
    must(res)
    our_check(run, img, "--key-file", ka)
    assert_verified(image, img, tree_content(tree))
    must(convert(run, "decrypt", img, ka)[0])
    progs_check(img)
    assert not compare_plain(image, img)


@pytest.mark.slow  # large image
def test_superblock_copy_area_never_allocated(run, keys, tmp_path):
    """The 64 MiB superblock copy lies inside the first metadata chunk of
    every default mkfs layout (stripe 0 at physical 37 MiB, logical 58720256
    maps to physical 64 MiB).  mkfs leaves that block free; a metadata block
    group filled by mkfs (empty files with 3900-byte xattrs) makes it the
    first free block, and whatever encrypt allocates there is overwritten by
    the mirror superblock write (or overwrites it)."""
    ka, _ = keys
    tree = tmp_path / "tree"
    rng = random.Random(1)
    for d in range(8):
        (tree / ("d%d" % d)).mkdir(parents=True)
        for i in range(900):
            p = tree / ("d%d" % d) / ("f%04d" % i)
            p.write_bytes(b"")
            try:
                os.setxattr(p, "user.big", rng.randbytes(3900))
            except OSError as e:
                pytest.skip("host filesystem without 3900-byte user xattrs: %s" % e)
    image = fixtures.mkfs(tmp_path / "x.img", tree, size_mib=256)
    with R.ImageReader(image) as im:
        assert not R.superblock_overlaps(im)
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    must(convert(run, "encrypt", img, ka)[0])
    with R.ImageReader(img, verify=False) as im:
        try:
            bad = R.superblock_overlaps(im)
        except ValueError as e:         # an unreadable (overwritten) tree block
            bad = [str(e)]
    assert not bad, "encrypt allocated over a superblock copy:\n" + "\n".join(bad[:10])
    our_check(run, img, "--key-file", ka)
    must(convert(run, "decrypt", img, ka)[0])
    progs_check(img, lowmem=False)
    assert not compare_plain(image, img)


def test_hardlinks_overflowing_inode_ref(run, keys, tmp_path):
    """One inode with 150 names of 200 bytes in one directory: the INODE_REF
    item is full and the rest are INODE_EXTREF items.  Encrypted names are
    longer (padded to 32), so the refs no longer fit one item: they must
    spill into EXTREF items as the kernel does (or encrypt must refuse
    before writing)."""
    ka, _ = keys
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "target").write_bytes(random.Random(2).randbytes(5000))
    for i in range(150):
        os.link(tree / "target", tree / ("%03d-" % i + "e" * 196))
    fixtures._set_times(tree)
    image = fixtures.mkfs(tmp_path / "h.img", tree, size_mib=128)
    with R.ImageReader(image) as im:
        fs = R.FsTree(im.tree_items(R.FS_TREE))
        assert any(k[1] == R.INODE_EXTREF for k, _d in fs.items), "no EXTREF in the fixture"
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    before = image_digest(img)
    res, doc = convert(run, "encrypt", img, ka)
    if res.returncode == 1 and image_digest(img) == before:
        pytest.fail("encrypt refused (acceptable only as a stopgap): " + res.stderr.strip())
    must(res, "encrypt")
    our_check(run, img, "--key-file", ka)
    assert_verified(image, img, tree_content(tree), json_doc=doc)
    must(convert(run, "decrypt", img, ka)[0])
    progs_check(img)
    assert not compare_plain(image, img)


def test_reflinks_stay_shared_without_snapshots(run, keys, tmp_path):
    """Extents reflinked between inodes of a never-snapshotted tree stay
    shared, with one context (issue 5 item 1): encrypt forgets an extent
    once its last referencing item is done, and must not forget one that
    other inodes still reference.  verify_encrypted compares which items
    share a disk extent before and after."""
    ka, _ = keys
    rng = random.Random(21)
    tree = tmp_path / "tree"
    tree.mkdir()
    a = rng.randbytes(300000)
    (tree / "a").write_bytes(a)
    for i in range(20):                 # other files between the sharers
        (tree / ("f%02d" % i)).write_bytes(rng.randbytes(9000))
    fixtures._set_times(tree)
    image = fixtures.mkfs(tmp_path / "r.img", tree, size_mib=128)
    must(run("reflink", "--create", "/a", "/z-whole", str(image)), "reflink")
    must(run("reflink", "--create", "--src-offset", "4096", "--length", "8192", "/a", "/z-part",
             str(image)), "reflink")
    must(run("reflink", "--src-offset", "8192", "--length", "4096", "--dest-offset", "0",
             "/a", "/f03", str(image)), "reflink")
    want = {b"a": a, b"z-whole": a, b"z-part": a[4096:12288],
            b"f03": a[8192:12288] + (tree / "f03").read_bytes()[4096:]}

    def content(t, ino, path):
        if path in want:
            return want[path]
        return tree_content(tree)(t, ino, path)
    with R.ImageReader(image) as im:
        assert im.fs_tree_ids() == [R.FS_TREE]
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    res, doc = convert(run, "encrypt", img, ka)
    must(res, "encrypt")
    our_check(run, img, "--check-data-csum")
    st = assert_verified(image, img, content, json_doc=doc)
    assert st["shared_extents"] >= 1, summarize(st)
    must(convert(run, "decrypt", img, ka)[0])
    progs_check(img)
    assert not compare_plain(image, img)


@pytest.mark.slow  # large image
def test_copies_in_several_batches(run, keys, tmp_path):
    """More data than one batch of queued copies (32 MiB): the workers copy
    one batch while the next is queued, and small files share writes.  The
    result is the same as ever (ciphertext proof, checks, round trip)."""
    ka, _ = keys
    rng = random.Random(44)
    tree = tmp_path / "tree"
    for d in range(4):
        sub = tree / ("d%d" % d)
        sub.mkdir(parents=True)
        for i in range(60):
            size = rng.choice([700, 5000, 30000, 200000, 1500000])
            (sub / ("f%03d" % i)).write_bytes(rng.randbytes(size))
    fixtures._set_times(tree)
    image = fixtures.mkfs(tmp_path / "b.img", tree, size_mib=512)
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    res, doc = convert(run, "encrypt", img, ka, "--threads", "2")
    must(res, "encrypt")
    assert doc["bytes"] > 80 * MiB, doc
    our_check(run, img, "--check-data-csum", "--key-file", ka)
    assert_verified(image, img, tree_content(tree), json_doc=doc)
    must(convert(run, "decrypt", img, ka, "--threads", "2")[0], "decrypt")
    progs_check(img)
    assert not compare_plain(image, img)


@pytest.mark.slow  # several seconds: out of `make check`
def test_space_preflight_counts_inline_conversion(run, keys, tmp_path):
    """Inline files become regular 4 KiB extents when encrypted (Documentation/format.rst
    5.3): the free-space preflight must count them.  Either encrypt succeeds,
    or it refuses before writing anything (exit 1, 'not enough free', image
    byte-identical) -- never fail half-way for lack of space."""
    ka, _ = keys
    tree = tmp_path / "tree"
    fixtures.make_sample_tree(tree, seed=2, big_mib=1, dir_entries=3000, many_files=3000)
    image = fixtures.mkfs(tmp_path / "i.img", tree, nodesize=65536, size_mib=256)
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    before = image_digest(img)
    res, doc = convert(run, "encrypt", img, ka)
    if res.returncode == 0:
        our_check(run, img, "--key-file", ka)
        return
    our_check(run, img)
    assert res.returncode == 1 and "not enough free" in res.stderr and image_digest(img) == before, (
        "encrypt failed after writing (exit %d): %s" % (res.returncode, res.stderr.strip()))


def test_progress_line_and_summary(run, make_mkfs_image, copy_image, keys):
    """A progress line on stderr when it is a terminal, none otherwise; a
    one-line summary always (issue 5 Build 3)."""
    import pty
    ka, _ = keys
    src = make_mkfs_image("crc32c", 16384)
    img = copy_image(src.path, "pg.img")
    res = run("encrypt", "--key-file", ka, img)
    must(res)
    assert "\r" not in res.stderr and not re.search(r"\d+ / \d+ MiB", res.stderr), res.stderr
    assert re.search(r"Encrypted \d+ inodes, \d+ extents, \d+ bytes", res.stderr), res.stderr
    master, slave = pty.openpty()
    try:
        p = subprocess.run([str(run.bin), "decrypt", "--key-file", str(ka), str(img)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                           timeout=120 * run.time_scale)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, out
    text = out.decode(errors="replace")
    assert re.search(r"\d+ / \d+ MiB", text), "no progress line on a terminal: %r" % text[-500:]
    assert re.search(r"Decrypted \d+ inodes", text), text[-500:]


# ---- 3: no plaintext left -------------------------------------------------

@pytest.fixture(scope="module")
def marker_image(tmp_path_factory):
    work = tmp_path_factory.mktemp("markers")
    tree = work / "tree"
    marks = make_marker_tree(tree)
    fixtures.make_sample_tree(tree / "sample", seed=4, big_mib=1, dir_entries=50)
    image = fixtures.mkfs(work / "markers.img", tree, nodesize=4096, size_mib=128)
    assert len(find_markers(image, marks)) == len(marks), "markers not all in the plain image"
    return image, tree, marks


def test_no_plaintext_left(run, marker_image, copy_image, keys):
    """After encrypt (default wipe) no marker is anywhere in the image file."""
    ka, _ = keys
    image, tree, marks = marker_image
    img = copy_image(image, "m.img")
    res, doc = convert(run, "encrypt", img, ka)
    must(res)
    print("wiped-bytes %d" % doc["wiped-bytes"])
    assert_verified(image, img, tree_content(tree))
    found, text = marker_report(image, img, marks)
    assert not found, text
    stale = backup_roots_not_live(img)
    assert not stale, "backup roots point at blocks no current tree uses: %s" % stale


def backup_roots_not_live(image):
    """Superblock backup roots (0xb2b, 4 x 168 B) naming tree blocks that are
    not part of the current trees (issue 5: no backup root may point at
    plaintext blocks after encrypt)."""
    out = []
    with R.ImageReader(image) as im:
        live = R.live_tree_blocks(im)
        for i in range(4):
            b = im.sb[0xb2b + 168 * i:0xb2b + 168 * (i + 1)]
            for name, off in (("tree", 0), ("extent", 32), ("fs", 48), ("csum", 80)):
                v = int.from_bytes(b[off:off + 8], "little")
                if v and v not in live:
                    out.append("backup %d %s root %d" % (i, name, v))
    return out


def test_roundtrip_marker_image(run, marker_image, copy_image, keys):
    """The marker image (nodesize 4096, two names of one inode in one
    directory next to many other items): the round trip must give a
    decrypted image that both modes of btrfs check accept (a name moved to
    an INODE_EXTREF while its INODE_REF item had room is rejected by lowmem)."""
    ka, _ = keys
    image, tree, marks = marker_image
    img = copy_image(image, "rtm.img")
    must(convert(run, "encrypt", img, ka)[0])
    must(convert(run, "decrypt", img, ka)[0])
    with R.ImageReader(img) as im, R.ImageReader(image) as om:
        n_ext = sum(1 for k, _d in im.tree_items(R.FS_TREE) if k[1] == R.INODE_EXTREF)
        o_ext = sum(1 for k, _d in om.tree_items(R.FS_TREE) if k[1] == R.INODE_EXTREF)
    print("INODE_EXTREF items: original %d, after the round trip %d" % (o_ext, n_ext))
    assert not compare_plain(image, img)
    progs_check(img)


def test_no_wipe_informational(run, marker_image, copy_image, keys):
    """--no-wipe: report which markers survive in freed space (informational)."""
    ka, _ = keys
    image, tree, marks = marker_image
    img = copy_image(image, "nw.img")
    res, doc = convert(run, "encrypt", img, ka, "--no-wipe")
    must(res)
    assert doc["wiped-bytes"] == 0, doc
    our_check(run, img, "--key-file", ka)
    found, text = marker_report(image, img, marks)
    print("--no-wipe (informational): " + (text or "no marker left"))


# ---- 4: nonces --------------------------------------------------------------

def test_nonces_distinct_and_incompressible(run, keys, tmp_path):
    ka, _ = keys
    rng = random.Random(99)
    tree = tmp_path / "tree"
    for i in range(1100):
        d = tree / ("d%d" % (i // 200))
        d.mkdir(parents=True, exist_ok=True)
        (d / ("f%04d" % i)).write_bytes(rng.randbytes(4096))
    image = fixtures.mkfs(tmp_path / "n.img", tree, nodesize=16384, size_mib=160)
    img = tmp_path / "enc.img"
    fixtures.sparse_copy(image, img)
    res, doc = convert(run, "encrypt", img, ka)
    must(res)
    inode_n, extent_n = [], []
    ctx_per_extent = {}
    with R.ImageReader(img) as im:
        for t in im.fs_tree_ids():
            fs = R.FsTree(im.tree_items(t))
            for ino in fs.inodes():
                c = fs.inode_ctx(ino)
                if c is not None:
                    inode_n.append(R.parse_inode_ctx(c).nonce)
                ctxs = fs.extent_ctxs(ino)
                for k, fe in fs.extents(ino):
                    if fe.encryption and fe.type:
                        ctx_per_extent.setdefault(fe.disk_bytenr, set()).add(ctxs[k])
    for b, s in ctx_per_extent.items():
        assert len(s) == 1, "extent %d has %d different contexts" % (b, len(s))
        extent_n.append(R.parse_extent_ctx(next(iter(s))).nonce)
    assert len(extent_n) >= 1000, "only %d extents" % len(extent_n)
    allnon = inode_n + extent_n
    assert len(set(allnon)) == len(allnon), "%d duplicate nonces" % (len(allnon) - len(set(allnon)))
    blob = b"".join(allnon)
    xz = subprocess.run(["xz", "-9", "-c"], input=blob, stdout=subprocess.PIPE, check=True).stdout
    ones = sum(bin(b).count("1") for b in blob)
    print("nonces: %d inode + %d extent; %d bytes -> xz -9 %d bytes; bit balance %.4f"
          % (len(inode_n), len(extent_n), len(blob), len(xz), ones / (8 * len(blob))))
    assert len(xz) >= len(blob), "nonces compress: %d -> %d" % (len(blob), len(xz))
    assert abs(ones / (8 * len(blob)) - 0.5) < 0.01


# ---- refusals -----------------------------------------------------------------

def _small(make_mkfs_image, copy_image, name="r.img"):
    src = make_mkfs_image("crc32c", 16384)
    return src, copy_image(src.path, name)


def test_wrong_key_refused(run, make_mkfs_image, copy_image, keys):
    ka, kb = keys
    src, img = _small(make_mkfs_image, copy_image)
    must(convert(run, "encrypt", img, ka)[0])
    before = image_digest(img)
    for cmd, extra in (("decrypt", ()), ("encrypt", ()), ("decrypt", ("--dry-run",)),
                       ("encrypt", ("--dry-run",))):
        res, _ = convert(run, cmd, img, kb, *extra)
        assert res.returncode == 4, "%s %s with key B: exit %d\n%s" % (cmd, extra, res.returncode,
                                                                      res.stderr)
        assert len(error_lines(res.stderr)) == 1, res.stderr
        assert image_digest(img) == before, "%s with the wrong key changed the image" % cmd
    our_check(run, img, "--key-file", kb, expect=4)


def test_bad_key_input(run, make_mkfs_image, copy_image, tmp_path):
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    short = write_key(tmp_path / "short.key", b"x" * 8)
    res, _ = convert(run, "encrypt", img, short)
    assert res.returncode == 4, res.stderr
    res, _ = convert(run, "encrypt", img, tmp_path / "missing.key")
    assert res.returncode == 4, res.stderr
    res = run("encrypt", img)
    assert res.returncode == 2, res.stderr
    assert image_digest(img) == before


@pytest.mark.parametrize("policy", ["AES-128-CBC:AES-128-CTS", "SM4-XTS:SM4-CTS",
                                    "ADIANTUM:ADIANTUM"])
def test_unsupported_policy_refused(run, make_mkfs_image, copy_image, keys, policy):
    ka, _ = keys
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    res, _ = convert(run, "encrypt", img, ka, "--policy", policy)
    assert res.returncode in (1, 2), res.stderr
    if res.returncode == 2:
        pytest.fail("--policy %s: exit 2 (usage) instead of 1 (unsupported policy): %s"
                    % (policy, res.stderr.strip()))
    assert "unsupported policy" in res.stderr, res.stderr
    assert image_digest(img) == before


def test_invalid_policy_usage(run, make_mkfs_image, copy_image, keys):
    ka, _ = keys
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    for bad in ("AES-256-XTS", "FOO:BAR", "AES-256-XTS:AES-256-XTS"):
        res, _ = convert(run, "encrypt", img, ka, "--policy", bad)
        assert res.returncode in (1, 2), (bad, res.returncode, res.stderr)
    assert image_digest(img) == before


@pytest.mark.parametrize("sel", ["/nested", "/names"])
def test_path_selection(run, make_mkfs_image, copy_image, keys, sel):
    """--path DIR: DIR and everything below it is encrypted (a hard link
    named inside DIR included: /nested/level0/c-link), nothing else; the
    DIR's own name in its plain parent stays plain; decrypt --path DIR gives
    the original back.  (Before --path was implemented it had to say so and
    exit 1.)"""
    ka, _ = keys
    src = make_mkfs_image("crc32c", 4096)
    img = copy_image(src.path, "p.img")
    before = image_digest(img)
    res, doc = convert(run, "encrypt", img, ka, "--path", sel)
    if res.returncode == 1 and re.search(r"--path .*not (supported|implemented)", res.stderr):
        assert image_digest(img) == before
        pytest.skip("--path not implemented yet (says so, exit 1): " + res.stderr.strip())
    must(res, "encrypt --path " + sel)
    with R.ImageReader(src.path) as O:
        fs = R.FsTree(O.tree_items(R.FS_TREE))
        ino = 256
        for part in sel.strip("/").split("/"):
            ino = next(e.location[0] for e in fs.dir_index(ino).values() if e.name == part.encode())
        only = {(R.FS_TREE, i) for i in R.subtree_inodes(fs, ino)}
    our_check(run, img, "--check-data-csum")
    our_check(run, img, "--key-file", ka)
    st, problems = R.verify_encrypted(src.path, img, KEY_A, tree_content(src.tree),
                                      chunks=progs_chunks(src.path), only=only)
    print("--path %s: %s" % (sel, summarize(st)))
    assert not problems, "\n".join(problems[:30])
    assert st["inodes"] == doc["inodes"] == len([1 for (_t, i) in only]) - st["others"], (doc, st)
    res, ddoc = convert(run, "decrypt", img, ka, "--path", sel)
    must(res, "decrypt --path")
    assert not incompat(img) & R.INCOMPAT_ENCRYPT
    progs_check(img)
    diffs = compare_plain(src.path, img)
    assert not diffs, "\n".join(diffs[:30])


def test_locked_image_refused(run, make_mkfs_image, copy_image, keys):
    ka, _ = keys
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    with open(img, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        res, _ = convert(run, "encrypt", img, ka)
    assert res.returncode == 1, res.stderr
    assert "lock" in res.stderr, res.stderr
    assert image_digest(img) == before


@pytest.mark.kernel
def test_mounted_image_refused(run, make_mkfs_image, copy_image, keys, tmp_path):
    ka, _ = keys
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    with ro_mount(img, tmp_path / "mnt"):
        for cmd in ("encrypt", "decrypt"):
            res, _ = convert(run, cmd, img, ka)
            assert res.returncode == 1, (cmd, res.returncode, res.stderr)
            assert "mounted" in res.stderr, res.stderr
    assert image_digest(img) == before


@pytest.mark.slow  # several seconds: out of `make check`
def test_not_enough_space_refused(run, keys, tmp_path):
    """Full data block groups and no unallocated device space (mkfs sized the
    image to fit): exit 1 'not enough free', unchanged (--grow:
    tests/test_chunk_alloc.py)."""
    ka, _ = keys
    tree = tmp_path / "tree"
    tree.mkdir()
    rng = random.Random(3)
    (tree / "big.bin").write_bytes(rng.randbytes(150 * MiB))
    (tree / "small.txt").write_bytes(b"small\n")
    image = fixtures.mkfs_fit(tmp_path / "full.img", tree)
    before = image_digest(image)
    res, _ = convert(run, "encrypt", image, ka)
    assert res.returncode == 1, "encrypt of a full image: exit %d\n%s" % (res.returncode, res.stderr)
    assert "not enough free" in res.stderr, res.stderr
    assert re.search(r"need \d+", res.stderr), "the message should say how much is needed: " + res.stderr
    assert image_digest(image) == before


def test_dry_run_changes_nothing(run, make_mkfs_image, copy_image, keys):
    ka, _ = keys
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    res, dry = convert(run, "encrypt", img, ka, "--dry-run")
    must(res)
    assert dry["dry-run"] is True
    assert image_digest(img) == before, "encrypt --dry-run changed the image"
    res, doc = convert(run, "encrypt", img, ka)
    must(res)
    for k in ("inodes", "extents", "bytes"):
        assert dry[k] == doc[k], "dry run said %s=%r, the run did %r" % (k, dry[k], doc[k])
    before = image_digest(img)
    res, ddry = convert(run, "decrypt", img, ka, "--dry-run")
    must(res)
    assert image_digest(img) == before, "decrypt --dry-run changed the image"
    assert ddry["inodes"] == doc["inodes"]


def test_rerun_is_noop(run, make_mkfs_image, copy_image, keys):
    """encrypt on an encrypted image (same key) and decrypt on a plain one:
    exit 0 and nothing changes."""
    ka, _ = keys
    src, img = _small(make_mkfs_image, copy_image)
    before = image_digest(img)
    res, doc = convert(run, "decrypt", img, ka)
    must(res, "decrypt of a plain image")
    assert image_digest(img) == before, "decrypt of a plain image changed it"
    must(convert(run, "encrypt", img, ka)[0])
    before = image_digest(img)
    res, doc = convert(run, "encrypt", img, ka)
    must(res, "second encrypt")
    assert doc["inodes"] == 0 and doc["extents"] == 0, doc
    assert image_digest(img) == before, "re-running encrypt on a finished image changed it"


def fault_supported(run, image, cmd, keyfile):
    res = run(cmd, "--key-file", keyfile, image, env={"EXTCRYPT_FAIL_AT": "1"})
    return res.returncode == 1 and FAULT_RE.search(res.stderr) is not None


@pytest.mark.slow  # crash sweep
def test_resume_after_interruption(run, make_mkfs_image, copy_image, keys):
    """Cut encrypt in the middle (fault injection), re-run: complete and
    correct; cut decrypt, re-run: the original back."""
    ka, _ = keys
    src = make_mkfs_image("sha256", 16384)
    scratch = copy_image(src.path, "scratch.img")
    if not fault_supported(run, scratch, "encrypt", ka):
        pytest.skip("binary built without fault injection (--enable-fault-injection)")
    img = copy_image(src.path, "resume.img")
    # count the writes: the first N at which the run is not cut is writes + 1
    def completes(n):
        fixtures.sparse_copy(src.path, scratch)
        return run("encrypt", "--threads", "1", "--key-file", ka, scratch,
                   env={"EXTCRYPT_FAIL_AT": str(n)}).returncode == 0
    hi = 2
    while not completes(hi):
        hi *= 2
    lo = hi // 2            # cut at lo (or lo is 1), completes at hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if completes(mid):
            hi = mid
        else:
            lo = mid
    writes = hi - 1
    assert writes >= 3, "only %d writes" % writes
    cut = max(1, writes * 2 // 3)
    res = run("encrypt", "--threads", "1", "--key-file", ka, img, env={"EXTCRYPT_FAIL_AT": str(cut)})
    assert res.returncode == 1 and FAULT_RE.search(res.stderr), res.stderr
    our_check(run, img)
    must(convert(run, "encrypt", img, ka)[0], "encrypt after a cut")
    our_check(run, img, "--key-file", ka)
    assert_verified(src.path, img, tree_content(src.tree))
    res = run("decrypt", "--threads", "1", "--key-file", ka, img, env={"EXTCRYPT_FAIL_AT": "40"})
    assert res.returncode == 1 and FAULT_RE.search(res.stderr), res.stderr
    our_check(run, img)
    must(convert(run, "decrypt", img, ka)[0], "decrypt after a cut")
    progs_check(img, lowmem=False)
    assert not compare_plain(src.path, img)


# ---- 1 + 2 + 3 on kernel-made images (root) -----------------------------------

@pytest.fixture(scope="module")
def kernel_images(tmp_path_factory):
    reason = root_skip_reason()
    if reason:
        pytest.skip(reason)
    cache = {}

    def get(name):
        if name not in cache:
            work = tmp_path_factory.mktemp("kimg-" + name)
            if name == "full":
                cache[name] = build_kernel_image(work, "crc32c", 16384)
            elif name == "full-blake2-4k":
                cache[name] = build_kernel_image(work, "blake2", 4096, seed=12)
            elif name == "cowed":
                cache[name] = build_kernel_image(work, "xxhash", 16384, seed=13, cow_all=True)
        return cache[name]
    return get


def marker_report(orig, enc, marks):
    """(found dict, text) for markers left in enc, with where they sit and
    whether the original image already had them there."""
    found = find_markers(enc, marks)
    if not found:
        return found, ""
    offs = sorted(o for _w, oo in found.values() for o in oo)
    odata = Path(orig).read_bytes()
    stale = sum(1 for _x, (_w, oo) in found.items() for o in oo if odata[o:o + 3] == b"MRK")
    where = R.classify_offsets(enc, offs)
    text = ("%d of %d markers left (%s); first offsets of each at most 5; %d of %d listed "
            "occurrences were already at that offset in the original image; by place in the "
            "encrypted image: %s" % (len(found), len(marks),
                                     sorted(set(w for w, _o in found.values())),
                                     stale, len(offs), where))
    return found, text


def _kernel_roundtrip(run, kimg, keys, tmp_path):
    ka, _ = keys
    image, marks, man = kimg
    img = tmp_path / "k.img"
    fixtures.sparse_copy(image, img)
    failures = []
    t0 = time.time()
    res, doc = convert(run, "encrypt", img, ka)
    must(res, "encrypt of a kernel-made image")
    t_enc = time.time() - t0
    our_check(run, img, "--check-data-csum")
    our_check(run, img, "--key-file", ka)
    with ro_mount(image, tmp_path / "mnt-src") as (m, _dev, _mark):
        st = assert_verified(image, img, tree_content(m), json_doc=doc)
    print("kernel image: %d compressed, %d shared, %d prealloc items, %d holes, %d inline converted"
          % (st["compressed_extents"], st["shared_extents"], st["prealloc_items"], st["holes"],
             st["inline_converted"]))
    found, text = marker_report(image, img, marks)
    if found:
        failures.append("no plaintext left (point 3): " + text)
    t0 = time.time()
    must(convert(run, "decrypt", img, ka)[0], "decrypt")
    t_dec = time.time() - t0
    progs_check(img)
    our_check(run, img, "--check-data-csum")
    diffs = compare_plain(image, img)
    assert not diffs, "\n".join(diffs[:40])
    kernel_judge(image, img, tmp_path)
    print("encrypt %.2fs decrypt %.2fs: %s" % (t_enc, t_dec, {k: doc[k] for k in
                                                              ("inodes", "extents", "bytes", "commits")}))
    assert not failures, "\n".join(failures)


@pytest.mark.kernel
def test_roundtrip_kernel_full(run, kernel_images, keys, tmp_path):
    """Every kernel feature as the kernel leaves it: holes, prealloc (full,
    partly written, past EOF), zlib/lzo/zstd (also compressed inline),
    reflinks, a subvolume, a modified rw snapshot of it, a ro snapshot of the
    top level (stub entries of nested subvolumes), a subvolume nested in a
    directory, xattrs, hard links, symlinks, a 2000-entry directory, 255-byte
    and non-ASCII names, markers."""
    kimg = kernel_images("full")
    assert compressed_inline_files(kimg[0]), "fixture has no compressed inline extent"
    _kernel_roundtrip(run, kimg, keys, tmp_path)


@pytest.mark.kernel
def test_roundtrip_kernel_full_blake2_4k(run, kernel_images, keys, tmp_path):
    _kernel_roundtrip(run, kernel_images("full-blake2-4k"), keys, tmp_path)


@pytest.mark.kernel
def test_roundtrip_kernel_cowed(run, kernel_images, keys, tmp_path):
    """The same after the kernel COWed every leaf the snapshots shared
    (xxhash): explicit + shared data refs, FULL_BACKREF snapshot blocks."""
    _kernel_roundtrip(run, kernel_images("cowed"), keys, tmp_path)


def _mini_kernel_image(work, tree_fn, mount_fn, size_mib=128, mkfs_extra=()):
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "tree"
    tree.mkdir()
    tree_fn(tree)
    image = fixtures.mkfs(work / "mini.img", tree, size_mib=size_mib, extra=mkfs_extra)
    with fixtures.loop_mount(image, work / "mnt", ro=False) as mnt:
        mount_fn(mnt)
        os.sync()
    res = fixtures.btrfs_check(image, "--check-data-csum")
    assert res.returncode == 0, res.stdout + res.stderr
    return image


def _mini_roundtrip(run, image, keys, tmp_path):
    ka, _ = keys
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    before = image_digest(img)
    res, doc = convert(run, "encrypt", img, ka)
    if res.returncode:
        assert image_digest(img) == before or our_check(run, img)
    must(res, "encrypt")
    our_check(run, img, "--check-data-csum")
    our_check(run, img, "--key-file", ka)
    with ro_mount(image, tmp_path / "mnt-src") as (m, _d, _k):
        assert_verified(image, img, tree_content(m), json_doc=doc)
    must(convert(run, "decrypt", img, ka)[0], "decrypt")
    progs_check(img)
    assert not compare_plain(image, img)
    kernel_judge(image, img, tmp_path)


@pytest.mark.kernel
def test_kernel_snapshot_shared_leaves(run, keys, tmp_path):
    """A rw snapshot of the top level whose fs-tree leaves are still shared
    (extents referenced only through the shared leaf, Documentation/format.rst 2.8)."""
    def tree_fn(tree):
        fixtures.make_sample_tree(tree, seed=11, big_mib=1, dir_entries=50)
        (tree / "spacer.bin").write_bytes(b"\xa5" * (40 * MiB))

    def mount_fn(mnt):
        (mnt / "spacer.bin").unlink()
        os.sync()
        sh("btrfs", "subvolume", "snapshot", mnt, mnt / "snap")
    image = _mini_kernel_image(tmp_path / "w", tree_fn, mount_fn, size_mib=256)
    _mini_roundtrip(run, image, keys, tmp_path)


@pytest.mark.kernel
def test_kernel_snapshot_with_subvolume_stub(run, keys, tmp_path):
    """A snapshot of a subvolume that contains a nested subvolume: the
    snapshot holds a stub entry (location ROOT_ITEM) with no ROOT_REF."""
    def tree_fn(tree):
        (tree / "a.txt").write_bytes(b"hello\n")

    def mount_fn(mnt):
        sh("btrfs", "subvolume", "create", mnt / "sv")
        (mnt / "sv" / "f").write_bytes(b"in sv\n")
        sh("btrfs", "subvolume", "snapshot", mnt, mnt / "snap")
    image = _mini_kernel_image(tmp_path / "w", tree_fn, mount_fn)
    _mini_roundtrip(run, image, keys, tmp_path)


@pytest.mark.kernel
def test_kernel_prealloc_partly_written(run, keys, tmp_path):
    """fallocate, then a write into the middle: one disk extent referenced by
    PREALLOC, REG, PREALLOC items (Documentation/format.rst 6 'Prealloc extents')."""
    def tree_fn(tree):
        (tree / "a.txt").write_bytes(b"hello\n")

    def mount_fn(mnt):
        sh("fallocate", "-l", str(MiB), mnt / "p")
        with open(mnt / "p", "r+b") as f:
            f.seek(256 * 1024)
            f.write(random.Random(1).randbytes(64 * 1024))
    image = _mini_kernel_image(tmp_path / "w", tree_fn, mount_fn)
    _mini_roundtrip(run, image, keys, tmp_path)


@pytest.mark.kernel
def test_kernel_prealloc_cloned_in_file_snapshot(run, keys, tmp_path):
    """Issue 17: one never-written prealloc extent mapped by 34 PREALLOC
    items of one inode (clones within the file, the last of its second half,
    so a backref offset that is no item's key) in a leaf a snapshot shares;
    no NO_HOLES; the layout of btrfs-progs' fsck image
    020-extent-ref-cases/extent_data_ref.img.  Encrypt sees one root's refs,
    decrypt both roots': the extent must come back without csums, also from
    a btrfs-image dump of it (whose copies once all got csums).  Csums over
    it make btrfs check fail ('Missing file extent item ...'); our check
    calls them CSUM_PREALLOC."""
    ka, _ = keys

    def tree_fn(tree):
        # Inline files (no csummed data, so a metadump of it mounts and
        # reads): enough of them that the fs tree has several leaves.
        for i in range(20):
            (tree / ("f%02d" % i)).write_bytes(bytes([i]) * 2048)

    def mount_fn(mnt):
        p = mnt / "p"
        sh("xfs_io", "-f", "-c", "falloc 0 %d" % (64 * KiB), p)
        os.sync()
        for i in range(1, 33):
            fixtures.clone_range(p, 0, 64 * KiB, p, i * 64 * KiB)
        fixtures.clone_range(p, 32 * KiB, 32 * KiB, p, 33 * 64 * KiB)
        os.sync()
        sh("btrfs", "subvolume", "snapshot", mnt, mnt / "snap")
    image = _mini_kernel_image(tmp_path / "w", tree_fn, mount_fn,
                               mkfs_extra=("-O", "^no-holes"))
    extents = fixtures.dump_tree_progs(image, "-t", "extent")
    assert "refs 34 " in extents, "the snapshot does not share the leaf"
    items = [ln for ln in fixtures.dump_tree_progs(image, "-t", "5").splitlines()
             if "prealloc data disk byte" in ln]
    assert len(items) == 34 and len(set(items)) == 1, items
    _mini_roundtrip(run, image, keys, tmp_path)
    our_check(run, tmp_path / "e.img", "--check-data-csum")
    if shutil.which("btrfs-image") is None:
        return
    dump, img = tmp_path / "dump", tmp_path / "md.img"
    sh("btrfs-image", image, dump)
    sh("btrfs-image", "-r", dump, img)
    must(convert(run, "encrypt", img, ka)[0], "encrypt")
    must(convert(run, "decrypt", img, ka)[0], "decrypt")
    progs_check(img)
    our_check(run, img, "--check-data-csum")


@pytest.mark.kernel
def test_kernel_stale_plaintext_in_free_space(run, keys, tmp_path):
    """A kernel rw mount COWs tree blocks and leaves the old copies (with
    plaintext names and inline data) in free metadata space.  After encrypt
    none of that may be left (issue 5 'No plaintext left')."""
    ka, _ = keys
    rng = random.Random(8)
    marks = {}
    name, data = marker(rng, "SN"), marker(rng, "SD")
    marks[name], marks[data] = "name written by the kernel", "inline data written by the kernel"

    def tree_fn(tree):
        (tree / "a.txt").write_bytes(b"hello\n")

    def mount_fn(mnt):
        (mnt / ("f-" + name.decode())).write_bytes(b"x " + data + b"\n")
        os.sync()
        for i in range(3):              # more transactions: more stale copies
            os.utime(mnt / "a.txt", (i, i))
            os.sync()
    image = _mini_kernel_image(tmp_path / "w", tree_fn, mount_fn)
    assert find_markers(image, marks)
    img = tmp_path / "e.img"
    fixtures.sparse_copy(image, img)
    must(convert(run, "encrypt", img, ka)[0])
    found, text = marker_report(image, img, marks)
    assert not found, text


@pytest.mark.kernel
def test_kernel_compressed_inline(run, keys, tmp_path):
    """Small files the kernel stores as compressed inline extents."""
    def tree_fn(tree):
        (tree / "plain.txt").write_bytes(b"plain\n")

    def mount_fn(mnt):
        for algo in ("zlib", "lzo", "zstd"):
            d = mnt / algo
            d.mkdir()
            sh("btrfs", "property", "set", d, "compression", algo)
            (d / "inline.txt").write_bytes(b"compressible inline text " * 100)
    image = _mini_kernel_image(tmp_path / "w", tree_fn, mount_fn)
    assert len(compressed_inline_files(image)) == 3
    _mini_roundtrip(run, image, keys, tmp_path)


@pytest.mark.kernel
def test_conftest_kernel_image(run, make_kernel_image, keys, tmp_path):
    """The shared kernel fixture (192 MiB, full data block groups, free
    device space): encrypt must not be refused for lack of space while the
    device has unallocated room, then must round trip."""
    ka, _ = keys
    src = make_kernel_image("crc32c", 16384)
    img = tmp_path / "ck.img"
    fixtures.sparse_copy(src.path, img)
    before = image_digest(img)
    res, doc = convert(run, "encrypt", img, ka)
    if res.returncode != 0:
        assert image_digest(img) == before, "refused encrypt changed the image"
    must(res, "encrypt of the conftest kernel image")
    must(convert(run, "decrypt", img, ka)[0])
    progs_check(img)
    kernel_judge(src.path, img, tmp_path)


@pytest.mark.kernel
def test_subvol_selection(run, kernel_images, keys, tmp_path):
    """--subvol: only the named subvolume is encrypted; extents it shares
    with the (plain) snapshot are unshared; the rest stays plain; decrypt
    --subvol gives back the original; the plain snapshot is untouched."""
    ka, _ = keys
    image, marks, man = kernel_images("full")
    img = tmp_path / "s.img"
    fixtures.sparse_copy(image, img)
    with R.ImageReader(image) as im:
        sp = R.subvol_paths(im)
    sv = next(t for t, p in sp.items() if p == b"subvol")
    res, doc = convert(run, "encrypt", img, ka, "--subvol", str(sv))
    must(res)
    assert [s["subvolume"] for s in doc["subvolumes"]] == [sv], doc
    our_check(run, img, "--check-data-csum")
    our_check(run, img, "--key-file", ka)
    with ro_mount(image, tmp_path / "mnt-src") as (m, _d, _k):
        assert_verified(image, img, tree_content(m), trees=[sv])
    with R.ImageReader(img) as E, R.ImageReader(image) as O:
        for t in O.fs_tree_ids():
            if t == sv:
                continue
            a = [(k, bytes(d)) for k, d in O.tree_items(t)]
            b = [(k, bytes(d)) for k, d in E.tree_items(t)]
            assert a == b, "tree %d changed by encrypt --subvol %d" % (t, sv)
    must(convert(run, "decrypt", img, ka, "--subvol", "/subvol")[0])
    progs_check(img, lowmem=False)
    assert not compare_plain(image, img)
    kernel_judge(image, img, tmp_path)


def plain_inodes(image, tree):
    """Inode numbers of the plain files, directories and symlinks of a tree, read
    by the tests' own reader (mode at byte 52 of INODE_ITEM, flags at 64)."""
    out = set()
    with R.ImageReader(image) as im:
        for k, d in im.tree_items(tree):
            if k[1] != 1 or k[0] < 256:
                continue
            mode, flags = int.from_bytes(d[52:56], "little"), int.from_bytes(d[64:72], "little")
            if (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)) \
                    and not flags & 0x1000:
                out.add((tree, k[0]))
    return out


@pytest.mark.kernel
def test_check_require_encryption(run, kernel_images, keys, tmp_path):
    """check --require-encryption[=IDs] reports exactly the plain inodes of the
    covered subvolumes (as the tests' reader finds them) after encrypt --subvol."""
    ka, _ = keys
    image, _marks, _man = kernel_images("full")
    img = tmp_path / "r.img"
    fixtures.sparse_copy(image, img)
    with R.ImageReader(image) as im:
        sv = next(t for t, p in R.subvol_paths(im).items() if p == b"subvol")
        trees = im.fs_tree_ids()
    must(convert(run, "encrypt", img, ka, "--subvol", str(sv))[0])

    def reported(*args):
        res = run("--format", "json", "check", *args, str(img), timeout=180)
        doc = json.loads(res.stdout)
        probs = [p for p in doc["problems"] if p["severity"] == "error"]
        return res.returncode, {(p["root"], p["inode"]) for p in probs
                                if p["code"] == "NOT_ENCRYPTED"}, probs

    rc, got, probs = reported("--require-encryption=%d" % sv)
    assert rc == 0 and not probs, probs[:5]
    want_all = set().union(*(plain_inodes(img, t) for t in trees))
    assert len(want_all) >= 10 and not any(t == sv for t, _i in want_all), len(want_all)
    rc, got, probs = reported("--require-encryption")
    assert rc == 1 and got == want_all and len(probs) == len(want_all), (got ^ want_all)
    rc, got, _ = reported("--require-encryption=5,%d" % sv)
    assert rc == 1 and got == plain_inodes(img, 5)
    # Paths: the encrypted subvolume's path is clean; "/" crosses into every
    # subvolume and snapshot below the top level, each plain inode once.
    rc, got, probs = reported("--require-encryption=/subvol")
    assert rc == 0 and not probs, probs[:5]
    rc, got, probs = reported("--require-encryption=/")
    assert rc == 1 and got == want_all and len(probs) == len(want_all), (got ^ want_all)
    # A named subvolume that does not exist is an error of its own.
    rc, got, probs = reported("--require-encryption=%d,%d" % (sv, max(trees) + 100))
    assert rc == 1 and not got and [p["code"] for p in probs] == ["REQUIRED_SUBVOL_MISSING"]
    for bad in ("--require-encryption=", "--require-encryption=4", "--require-encryption=x"):
        assert run("check", bad, str(img)).returncode == 2, bad

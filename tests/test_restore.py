"""restore: the extracted tree equals the original.

The oracle is the running kernel: a read-only loop mount of the ORIGINAL
image gives the manifest (content hash, size, mode, owner, link target,
xattrs, hard-link groups, and for files with holes the allocated blocks);
restore of the image (plain, or encrypted with the key) must reproduce it.
Without root, the sample tree that mkfs copied serves as the oracle for
contents, modes, links and xattrs.  btrfs-progs' own `btrfs restore -m -S -x`
is compared where it is faithful (file contents and symlink targets).
"""

import hashlib
import json
import os
import random
import stat
import subprocess
from pathlib import Path

import pytest

import fixtures
from conftest import root_skip_reason
from fixtures import MiB


def manifest(top):
    """path -> description of everything under top (top itself excluded)."""
    out = {}
    inode_groups = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            # btrfs.* xattrs are btrfs properties: no other filesystem has them.
            xattrs = tuple(sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                  for k in os.listxattr(p, follow_symlinks=False)
                                  if not k.startswith("btrfs.")))
            d = {"mode": st.st_mode, "xattrs": xattrs, "mtime": st.st_mtime_ns}
            if stat.S_ISDIR(st.st_mode) and st.st_ino == 2:
                # The kernel's placeholder for a subvolume inside a snapshot
                # (BTRFS_EMPTY_SUBVOL_DIR_OBJECTID) is stamped at lookup time.
                del d["mtime"]
            if stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                d.update(size=st.st_size, sha=h.hexdigest(), nlink=st.st_nlink)
                inode_groups.setdefault((st.st_dev, st.st_ino), []).append(rel)
                # Holes: a file whose allocation is less than its size has some.
                d["sparse"] = st.st_blocks * 512 < st.st_size
            elif stat.S_ISLNK(st.st_mode):
                d["target"] = os.readlink(p)
                del d["xattrs"]
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
            out[rel] = d
    groups = sorted(sorted(g) for g in inode_groups.values() if len(g) > 1)
    return out, groups


def compare(want, got, ignore=()):
    wm, wg = want
    gm, gg = got
    assert sorted(wm) == sorted(gm), "different entries: %s" % (
        sorted(set(wm) ^ set(gm))[:10])
    bad = []
    for path, d in wm.items():
        g = gm[path]
        for k, v in d.items():
            if k in ignore:
                continue
            if k == "mtime" and "mtime" not in d:
                continue
            if k == "sparse" and v is False:
                continue  # a prealloc range may come back as a hole
            if g.get(k) != v:
                bad.append((path, k, v, g.get(k)))
    assert not bad, bad[:10]
    assert wg == gg, "hard-link groups differ"


def kernel_manifest(image, tmp_path, name):
    mnt = tmp_path / ("mnt-" + name)
    mnt.mkdir()
    with fixtures.loop_mount(image, mnt, ro=True):
        return manifest(mnt)


def restore(run, image, out, *args, key=None, rc=0):
    cmd = ["--format", "json", "restore"] + list(args)
    if key:
        cmd += ["--key-file", str(key)]
    res = run(*cmd, str(image), str(out))
    assert res.returncode == rc, res.stderr
    return json.loads(res.stdout) if res.stdout.strip() else None


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    p = tmp_path_factory.mktemp("restore-key") / "key"
    p.write_bytes(os.urandom(64))
    return p


def test_restore_plain_mkfs_images(mkfs_image, run, tmp_path):
    out = tmp_path / "out"
    doc = restore(run, mkfs_image.path, out)
    assert doc["failed"] == 0 and doc["skipped"] == 0
    if root_skip_reason() is None:
        want = kernel_manifest(mkfs_image.path, tmp_path, "orig")
    else:
        want = manifest(mkfs_image.tree)
    # mtime of directories: restore sets them; the host tree's may differ.
    compare(want, manifest(out), ignore=() if root_skip_reason() is None else ("mtime",))


def test_restore_encrypted_equals_plain(mkfs_image, run, tmp_path, copy_image, key):
    img = copy_image(mkfs_image.path)
    r = run("encrypt", "--key-file", str(key), str(img))
    assert r.returncode == 0, r.stderr
    plain, enc = tmp_path / "plain", tmp_path / "enc"
    restore(run, mkfs_image.path, plain)
    doc = restore(run, img, enc, key=key)
    assert doc["failed"] == 0 and doc["skipped"] == 0
    compare(manifest(plain), manifest(enc))


def test_restore_encrypted_without_key(make_mkfs_image, run, tmp_path, copy_image, key):
    img = copy_image(make_mkfs_image("crc32c", 16384).path)
    assert run("encrypt", "--key-file", str(key), str(img)).returncode == 0
    out = tmp_path / "nokey"
    doc = restore(run, img, out)
    assert doc["files"] == 0 and doc["skipped"] > 0
    names = [p.name for p in out.iterdir()]
    # fscrypt no-key names: base64url, no plaintext names of the sample tree
    assert names and all(set(n) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for n in names)
    raw = tmp_path / "raw"
    doc = restore(run, img, raw, "--raw")
    assert doc["files"] > 0 and doc["skipped"] == 0


def test_restore_kernel_images(kernel_image, run, tmp_path, copy_image, key):
    """Holes, prealloc, compressed (incl. inline), reflinks, snapshots."""
    want = kernel_manifest(kernel_image.path, tmp_path, "orig")
    out = tmp_path / "out"
    doc = restore(run, kernel_image.path, out)
    assert doc["failed"] == 0
    compare(want, manifest(out))
    img = copy_image(kernel_image.path)
    r = run("encrypt", "--key-file", str(key), str(img))
    assert r.returncode == 0, r.stderr
    enc = tmp_path / "enc"
    doc = restore(run, img, enc, key=key)
    assert doc["failed"] == 0 and doc["skipped"] == 0
    compare(want, manifest(enc))


def test_restore_matches_btrfs_restore(make_mkfs_image, run, tmp_path):
    """Where btrfs restore is faithful: file contents and symlink targets."""
    img = make_mkfs_image("xxhash", 16384).path
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    restore(run, img, ours)
    theirs.mkdir()
    res = subprocess.run(["btrfs", "restore", "-m", "-S", "-x", str(img), str(theirs)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 0, res.stderr
    om, _ = manifest(ours)
    tm, _ = manifest(theirs)
    # btrfs restore leaves out special files (the FIFO); everything it has, we have.
    assert set(tm) <= set(om)
    assert {p for p, d in om.items() if "sha" in d or "target" in d} == \
        {p for p, d in tm.items() if "sha" in d or "target" in d}
    for path, d in tm.items():
        for k in ("sha", "size", "target"):
            if k in d:
                assert om[path].get(k) == d[k], (path, k)


def test_restore_corrupt_data_is_reported(make_mkfs_image, run, tmp_path, copy_image):
    """A flipped data byte: that file fails its csum, the others are restored."""
    img = copy_image(make_mkfs_image("crc32c", 16384).path)
    r = run("--format", "json", "inspect", "file", "/data/random-big.bin", str(img))
    assert r.returncode == 0, r.stderr
    ext = [e for e in json.loads(r.stdout)["extents"] if e["type"] == "regular"][0]
    # logical == physical offset in the data chunk of a fresh mkfs image? map it via progs
    m = subprocess.run(["btrfs-map-logical", "-l", str(ext["disk-bytenr"]), str(img)],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    phys = int(m.stdout.split("physical")[1].split()[0])
    with open(img, "r+b") as f:
        f.seek(phys + 100)
        b = f.read(1)
        f.seek(phys + 100)
        f.write(bytes([b[0] ^ 0xff]))
    out = tmp_path / "out"
    res = run("restore", str(img), str(out))
    assert res.returncode == 1
    errs = [l for l in res.stderr.splitlines() if l.startswith("ERROR: ")]
    assert len(errs) == 1 and "random-big.bin" in errs[0] and "checksum" in errs[0]
    assert not (out / "data" / "random-big.bin").exists()
    assert (out / "data").is_dir() and any((out / "data").iterdir())


def test_restore_usage_and_dry_run(make_mkfs_image, run, tmp_path):
    img = make_mkfs_image("crc32c", 16384).path
    assert run("restore", str(img)).returncode == 2
    assert run("restore", "--bogus", str(img), str(tmp_path / "x")).returncode == 2
    out = tmp_path / "dry"
    doc = restore(run, img, out, "--dry-run")
    assert doc["dry-run"] is True and doc["files"] > 0
    assert not out.exists()
    res = run("restore", "--root", "999", str(img), str(tmp_path / "y"))
    assert res.returncode == 1


def _threads_tree(top, as_root):
    """Nested directories, a directory wider than one restore job (128
    entries), hard links across directories (one of them a file bigger than
    a pipeline chunk), a read-only directory, symlinks, xattrs, varied modes,
    owners (as root) and distinct times on every file and directory."""
    rng = random.Random(23)
    dirs = [top / "wide", top / "ro"]
    for b in range(3):
        d = top / "nest" / ("b%d" % b)
        for depth in range(5):
            d = d / ("l%d" % depth)
            dirs.append(d)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    dirs = sorted({p for d in dirs for p in [d, *d.parents] if top in p.parents})
    files = []
    for d in dirs:
        for i in range(300 if d.name == "wide" else 6):
            p = d / ("f%03d" % i)
            p.write_bytes(rng.randbytes(rng.choice((0, 1, 100, 3000, 5000, 70000))))
            os.chmod(p, rng.choice((0o644, 0o600, 0o755, 0o444, 0o640)))
            files.append(p)
    big = top / "nest" / "big.bin"
    big.write_bytes(rng.randbytes(9 * MiB + 12345))
    files.append(big)
    links = []
    for g, first in enumerate([big] + rng.sample(files, 40)):
        for k in range(rng.randint(1, 3)):
            p = rng.choice(dirs) / ("hl-%d-%d" % (g, k))
            os.link(first, p)
            links.append(p)
    syms = []
    for i in range(5):
        syms.append(rng.choice(dirs) / ("sym%d" % i))
        os.symlink("../" * i + "some/target-%d" % i, syms[-1])
    for p in rng.sample(files, 20) + rng.sample(dirs, 4):
        os.setxattr(p, "user.restore-test", rng.randbytes(rng.randint(1, 40)))
    if as_root:
        for i, p in enumerate(rng.sample(files, 30) + rng.sample(dirs, 4)):
            os.chown(p, 1000 + i, 2000 + i)
    # Times last, directories deepest first, so nothing changes them
    # afterwards; whole seconds, as mkfs.btrfs --rootdir drops nanoseconds.
    t0 = 1_500_000_000
    for i, p in enumerate(files + syms):
        os.utime(p, (t0 + i * 7, t0 + i * 3), follow_symlinks=False)
    os.chmod(top / "ro", 0o555)
    for i, d in enumerate(sorted(dirs, key=lambda p: -len(p.parts))):
        os.utime(d, (t0 - i * 5, t0 - i * 11))
    return len(files) + len(links)


def _full_manifest(top):
    """path -> lstat facts (all taken before any content is read, so atimes
    are as restored), content hashes, and the hard-link groups."""
    facts, groups = {}, {}
    for dirpath, dirs, names in os.walk(top):
        for name in dirs + names:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, top)
            st = os.lstat(p)
            d = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid,
                 "mtime": st.st_mtime_ns, "atime": st.st_atime_ns}
            if stat.S_ISLNK(st.st_mode):
                # os.walk resolves symlinks to sort out directories: that
                # reads them, so their atime is the walk's, not restore's.
                del d["atime"]
                d["target"] = os.readlink(p)
            else:
                d["xattrs"] = sorted((k, os.getxattr(p, k)) for k in os.listxattr(p)
                                     if not k.startswith("btrfs."))
            if stat.S_ISREG(st.st_mode):
                d.update(size=st.st_size, nlink=st.st_nlink)
                groups.setdefault(st.st_ino, []).append(rel)
            facts[rel] = d
    for rel, d in facts.items():
        if "size" in d:
            with open(os.path.join(top, rel), "rb") as f:
                d["sha"] = hashlib.sha256(f.read()).hexdigest()
    return facts, sorted(sorted(g) for g in groups.values() if len(g) > 1)


def test_restore_threads_identical(run, tmp_path, is_root):
    """--threads 1 and several threads give the same tree, equal to the source:
    contents, modes, owners, times of files and directories, xattrs, symlinks
    and hard-link groups across directories."""
    src = tmp_path / "src"
    src.mkdir()
    nfiles = _threads_tree(src, is_root)
    want, want_groups = _full_manifest(src)
    img = fixtures.mkfs(tmp_path / "threads.img", rootdir=src)
    outs = {}
    for threads in (1, 4, 16):
        out = tmp_path / ("t%d" % threads)
        doc = restore(run, img, out, "--threads", str(threads))
        assert doc["failed"] == 0 and doc["skipped"] == 0
        assert doc["files"] + doc["hard-links"] + doc["symlinks"] == nfiles + 5
        outs[threads] = (doc, _full_manifest(out))
    (doc1, (m1, g1)) = outs[1]
    for threads in (4, 16):
        doc, (m, g) = outs[threads]
        assert doc == doc1
        assert sorted(m) == sorted(m1)
        bad = [(p, k, v, m[p].get(k)) for p, d in m1.items() for k, v in d.items()
               if m[p].get(k) != v]
        assert not bad, (threads, bad[:10])
        assert g == g1
    assert g1 == want_groups and len(g1) == 41
    assert sorted(m1) == sorted(want)
    ignore = {"atime"} | (set() if is_root else {"uid", "gid"})
    bad = [(p, k, v, m1[p].get(k)) for p, d in want.items() for k, v in d.items()
           if k not in ignore and m1[p].get(k) != v]
    assert not bad, bad[:10]


def test_restore_raw_compressed_encrypted(make_kernel_image, run, copy_image, tmp_path, key):
    """--raw without a key writes compressed encrypted extents as stored.

    The expected bytes are read straight from the image file at the extent's
    physical address, not through the tool.
    """
    import btrfs_ondisk as bo
    img = copy_image(make_kernel_image("crc32c", 16384).path)
    assert run("encrypt", "--key-file", str(key), str(img)).returncode == 0
    doc = json.loads(run("--format", "json", "inspect", "dump-tree", "-t", "fs",
                         str(img)).stdout)
    extents = [it for tree in doc["trees"] for block in tree["blocks"]
               for it in block.get("items", [])
               if it["key"]["type"] == "EXTENT_DATA" and it.get("compression")
               and it.get("encryption") == 1 and it.get("disk-bytenr")]
    assert {it["compression-name"] for it in extents} >= {"zlib", "lzo", "zstd"}, extents[:3]
    out = tmp_path / "raw"
    res = run("restore", "--raw", str(img), str(out))
    assert res.returncode == 0, res.stderr
    assert "does not decompress" not in res.stderr
    files = [p.read_bytes() for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    image = bo.Image(str(img))
    try:
        for it in extents:
            n = min(it["disk-num-bytes"], it["num-bytes"])
            stored = image.read_logical(it["disk-bytenr"], n)
            off = it["key"]["offset"]
            assert any(f[off:off + n] == stored for f in files), it
    finally:
        image.close()


@pytest.mark.kernel
def test_restore_special_files_match_kernel(run, tmp_path):
    """Device numbers (btrfs stores new_encode_dev()), fifos and sockets, against a kernel mount."""
    import socket
    img = fixtures.mkfs(tmp_path / "dev.img", size_mib=128)
    with fixtures.loop_mount(img, tmp_path / "w", ro=False) as src:
        for name, kind, major, minor in (("null", stat.S_IFCHR, 1, 3),
                                         ("sda1", stat.S_IFBLK, 8, 1),
                                         ("big-minor", stat.S_IFCHR, 240, 300000),
                                         ("big-major", stat.S_IFBLK, 4000, 17)):
            os.mknod(src / name, kind | 0o640, os.makedev(major, minor))
        os.mkfifo(src / "fifo")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(src / "sock"))
        sock.close()
    want = kernel_manifest(img, tmp_path, "k")
    assert want[0]["null"]["rdev"] == (1, 3) and want[0]["big-minor"]["rdev"] == (240, 300000)
    out = tmp_path / "out"
    doc = restore(run, img, out)
    assert doc["failed"] == 0 and doc["special-files"] == 6
    compare(want, manifest(out))


def test_restore_super_copy_when_primary_damaged(make_mkfs_image, run, tmp_path, copy_image):
    """--super N opens the image through superblock copy N: with the primary
    damaged, restore without it is an unreadable image (exit 3), and with
    --super 1 it restores the whole tree, as `btrfs restore -u 1` does."""
    src = make_mkfs_image("crc32c", 16384)
    img = copy_image(src.path)
    with open(img, "r+b") as f:     # the primary's magic, at 64 KiB + 64
        f.seek(0x10000 + 0x40)
        f.write(b"XXXXXXXX")
    res = run("restore", str(img), str(tmp_path / "no"))
    assert res.returncode == 3, res.stderr
    assert res.stderr.startswith("ERROR: ")
    out = tmp_path / "out"
    doc = restore(run, img, out, "--super", "1")
    assert doc["failed"] == 0 and doc["skipped"] == 0
    compare(manifest(src.tree), manifest(out), ignore=("mtime",))
    # btrfs-progs reads the same copy to the same regular files (it leaves
    # out symlinks without -S and special files always, and does not
    # restore metadata without -m).
    ref = tmp_path / "progs"
    ref.mkdir()
    r = subprocess.run(["btrfs", "restore", "-u", "1", str(img), str(ref)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    theirs, ours = manifest(ref)[0], manifest(out)[0]
    files = {p: d["sha"] for p, d in theirs.items() if "sha" in d}
    assert len(files) > 100
    assert files == {p: d["sha"] for p, d in ours.items() if "sha" in d}
    for bad in ("3", "x", "-1"):
        r = run("restore", "--super", bad, str(img), str(tmp_path / "bad"))
        assert r.returncode == 2 and "invalid superblock copy" in r.stderr

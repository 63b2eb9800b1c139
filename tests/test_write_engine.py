"""The transactional write engine (issue 4), driven by the hidden
`debug xattrs` command and by `reflink`.

  * xattr stress on nodesize 4K and 16K: thousands of user.t<N> items added
    and removed with a commit every few hundred, so that the fs, extent and
    free-space trees split and merge; `btrfs check` (original and lowmem)
    after every step; the kernel reads every value back (os.getxattr on a
    ro loop mount, root);
  * refusals that must leave the image alone: an image locked by another
    process (flock), a mounted image, an image with an unreplayed log tree,
    ENOSPC (found before the first write);
  * `reflink --dry-run` leaves the image byte-identical;
  * a crash sweep over a multi-commit run: every cut leaves a clean image
    holding exactly the xattrs of the last completed commit.
"""

import fcntl
import os
import re
import shutil
import time
from pathlib import Path

import pytest

import fixtures
import reflink_lib as L
from conftest import root_skip_reason
from runner import error_lines


def value_of(n, size):
    """The value `debug xattrs` stores for user.t<n>: bytes (n + i) & 0xff."""
    return bytes((n + i) & 0xFF for i in range(size))


def need_progs():
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed (Debian package btrfs-progs)" % tool)


def small_image(path, nodesize=16384, files=None, size_mib=128):
    tree = Path(str(path) + ".tree")
    tree.mkdir()
    for name, data in (files or {"a.bin": b"a" * 8192, "small.txt": b"hello\n"}).items():
        (tree / name).write_bytes(data)
    return fixtures.mkfs(path, tree, nodesize=nodesize, size_mib=size_mib)


def check_both(image, what):
    for extra in ((), ("--mode", "lowmem")):
        r = L.sh("btrfs", "check", *extra, image, check=False)
        assert r.returncode == 0, "btrfs check %s failed after %s:\n%s%s" % (
            " ".join(extra), what, r.stdout[-3000:], r.stderr[-3000:])


def xattrs(run, image, *args, ok=True):
    res = run("debug", "xattrs", *[str(a) for a in args], image, timeout=120)
    if ok:
        assert res.returncode == 0 and not error_lines(res.stderr), (
            "btrfs-extcrypt debug xattrs %s IMG: exit %d\n%s"
            % (" ".join(map(str, args)), res.returncode, res.stderr))
    return res


def leaves(image, tree):
    text = fixtures.dump_tree_progs(image, "-t", tree)
    return len(re.findall(r"^leaf \d+ items", text, re.M))


def fst_bitmaps(image):
    """Number of FREE_SPACE_BITMAP items (block groups converted to bitmaps)."""
    return len(re.findall(r"key \(\d+ FREE_SPACE_BITMAP \d+\)",
                          fixtures.dump_tree_progs(image, "-t", "10")))


def xattr_items(image, ino=256, tree="5"):
    """{name: value length} of the user.t* xattrs of ino, from the progs dump."""
    text = fixtures.dump_tree_progs(image, "-t", tree)
    out = {}
    for m in re.finditer(r"key \(%d XATTR_ITEM \d+\) itemoff \d+ itemsize \d+\n"
                         r"(?:.*\n)*?\s+name: (user\.t\d+)\n\s+data " % ino, text):
        out[m.group(1)] = True
    return out


# ---------------------------------------------------------------------------
# xattr stress.

@pytest.mark.slow
@pytest.mark.parametrize("nodesize", [4096, 16384], ids=["4k", "16k"])
def test_xattr_stress(run, tmp_path, nodesize):
    need_progs()
    img = small_image(tmp_path / "x.img", nodesize)
    t0 = time.monotonic()
    fs0 = leaves(img, "fs")
    expect = {}                                      # n -> value size

    def step(what, *args):
        xattrs(run, img, *args)
        check_both(img, what)

    step("adding 3000 xattrs", "--add", 3000, "--commit-every", 300)
    expect.update({n: 40 for n in range(3000)})
    big = 400 if nodesize == 4096 else 900
    step("adding %d 2000-byte xattrs" % big, "--add", big, "--first", 3000,
         "--value-size", 2000, "--commit-every", 100)
    expect.update({n: 2000 for n in range(3000, 3000 + big)})
    fs_full, ext_full, bm_full = leaves(img, "fs"), leaves(img, "extent"), fst_bitmaps(img)
    step("removing 2700 xattrs", "--remove", 2700, "--first", 100, "--commit-every", 250)
    for n in range(100, 2800):
        del expect[n]
    step("removing %d big xattrs" % (big - 50), "--remove", big - 50, "--first", 3000,
         "--commit-every", 100)
    for n in range(3000, 3000 + big - 50):
        del expect[n]
    fs_end, ext_end, bm_end = leaves(img, "fs"), leaves(img, "extent"), fst_bitmaps(img)
    print("nodesize %d: fs leaves %d -> %d -> %d, extent leaves %d -> %d, free-space "
          "bitmaps %d -> %d, %.1fs" % (nodesize, fs0, fs_full, fs_end, ext_full, ext_end,
                                       bm_full, bm_end, time.monotonic() - t0))
    # The metadata block group's free space got fragmented past the kernel's
    # extent-count threshold: the free-space tree went through bitmap form.
    assert bm_full + bm_end > 0, "the free-space tree never used bitmaps"
    assert fs_full > 10 * max(fs0, 1), "the fs tree did not grow (%d -> %d leaves)" % (fs0, fs_full)
    assert fs_end < fs_full // 2, "the fs tree did not shrink (%d -> %d leaves)" % (fs_full,
                                                                                   fs_end)
    # Removing a missing xattr is refused and changes nothing.
    before = L.sha256_file(img)
    res = xattrs(run, img, "--remove", 1, "--first", 500, ok=False)
    assert res.returncode == 1 and len(error_lines(res.stderr)) == 1, res.stderr
    assert L.sha256_file(img) == before
    if root_skip_reason():
        return
    with L.mounted(img, tmp_path / "mnt") as (mnt, dev, mark):
        names = sorted(n for n in os.listxattr(mnt) if n.startswith("user.t"))
        assert names == sorted("user.t%d" % n for n in expect), (
            "the kernel lists %d user.t* xattrs, expected %d" % (len(names), len(expect)))
        bad = [n for n, size in expect.items()
               if os.getxattr(mnt, "user.t%d" % n) != value_of(n, size)]
        assert not bad, "values read by the kernel differ for %s" % bad[:20]
        problems = L.dmesg_btrfs_problems(mark, dev)
    assert not problems, "\n".join(problems)


def test_xattrs_on_file_and_subvolume_inode(run, tmp_path):
    """Another inode than 256, in tree 5; values and check."""
    need_progs()
    img = small_image(tmp_path / "x.img", 4096)
    text = fixtures.dump_tree_progs(img, "-t", "5")
    m = re.search(r"key \((\d+) INODE_REF 256\) itemoff \d+ itemsize \d+\n\s+index \d+ "
                  r"namelen \d+ name: a\.bin", text)
    assert m, "inode of a.bin not found in the progs dump"
    ino = int(m.group(1))
    xattrs(run, img, "--inode", ino, "--add", 500, "--value-size", 300, "--commit-every", 50)
    xattrs(run, img, "--inode", ino, "--remove", 450, "--first", 25, "--commit-every", 200)
    check_both(img, "xattrs on inode %d" % ino)
    if root_skip_reason():
        return
    with L.mounted(img, tmp_path / "mnt") as (mnt, dev, mark):
        names = {n for n in os.listxattr(mnt / "a.bin") if n.startswith("user.t")}
        want = {"user.t%d" % n for n in list(range(25)) + list(range(475, 500))}
        assert names == want
        for n in (0, 24, 475, 499):
            assert os.getxattr(mnt / "a.bin", "user.t%d" % n) == value_of(n, 300)
        assert (mnt / "a.bin").read_bytes() == b"a" * 8192


# ---------------------------------------------------------------------------
# Refusals that leave the image alone.

def test_enospc_found_before_first_write(run, tmp_path):
    need_progs()
    img = small_image(tmp_path / "x.img", 4096)
    before = L.sha256_file(img)
    # 20000 leaves of 4 KiB, DUP: more than the metadata chunk and all the
    # unallocated space of the 128 MiB device (new chunks: chunk-alloc.c).
    res = xattrs(run, img, "--add", 20000, "--value-size", 3900, ok=False)
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, res.stderr
    assert re.search(r"space|ENOSPC", errs[0], re.I), errs[0]
    assert L.sha256_file(img) == before, "a transaction that ran out of space changed the image"
    check_both(img, "a refused transaction")


@pytest.mark.slow  # fills an image
def test_enospc_midway_keeps_committed(run, tmp_path):
    """With --commit-every, the commits before the ENOSPC stay and the image is clean."""
    need_progs()
    img = small_image(tmp_path / "x.img", 4096)
    res = xattrs(run, img, "--add", 20000, "--value-size", 3900, "--commit-every", 500, ok=False)
    assert res.returncode == 1 and len(error_lines(res.stderr)) == 1, res.stderr
    check_both(img, "ENOSPC in the middle of a multi-commit run")
    n = len(xattr_items(img))
    assert n > 0 and n % 500 == 0, "%d xattrs survived, not a whole number of commits" % n


def test_locked_image_refused(run, tmp_path):
    need_progs()
    img = small_image(tmp_path / "x.img")
    before = L.sha256_file(img)
    with open(img, "rb") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        for args in (["reflink", "--length", "4096", "--dest-offset", "8192", "a.bin", "a.bin"],
                     ["debug", "xattrs", "--add", "1"]):
            res = run(*args, img)
            errs = error_lines(res.stderr)
            assert res.returncode == 1 and len(errs) == 1 and "locked" in errs[0], (
                "%s on a locked image: exit %d\n%s" % (args[0], res.returncode, res.stderr))
    assert L.sha256_file(img) == before
    # Released: the same command now works.
    res = run("reflink", "--length", "4096", "--dest-offset", "8192", "a.bin", "a.bin", img)
    assert res.returncode == 0, res.stderr


@pytest.mark.kernel
def test_mounted_image_refused(run, tmp_path):
    need_progs()
    img = small_image(tmp_path / "x.img")
    before = L.sha256_file(img)
    with L.mounted(img, tmp_path / "mnt") as (mnt, dev, mark):
        res = run("reflink", "--length", "4096", "--dest-offset", "8192", "a.bin", "a.bin", img)
        errs = error_lines(res.stderr)
        assert res.returncode == 1 and len(errs) == 1 and "mounted" in errs[0], res.stderr
        # The loop device itself, when the caller names it.
        res = run("debug", "xattrs", "--add", "1", dev)
        errs = error_lines(res.stderr)
        assert res.returncode == 1 and len(errs) == 1 and "mounted" in errs[0], res.stderr
    assert L.sha256_file(img) == before


@pytest.mark.kernel
def test_unreplayed_log_refused(run, tmp_path):
    """Copy the backing file of a rw mount after an fsync that wrote a log
    tree: the copy is a crashed image whose log was never replayed."""
    need_progs()
    img = small_image(tmp_path / "x.img")
    crashed = tmp_path / "crashed.img"
    with fixtures.loop_mount(img, tmp_path / "mnt", ro=False, options=("commit=300",)) as mnt:
        (mnt / "logged.bin").write_bytes(b"x" * 8192)
        os.sync()
        with open(mnt / "logged.bin", "r+b") as f:
            f.seek(8192)
            f.write(b"y" * 4096)
            f.flush()
            os.fsync(f.fileno())
        fixtures.sparse_copy(img, crashed)
    log_root = L.super_field(crashed, "log_root")
    if not log_root or int(log_root) == 0:
        pytest.skip("the kernel committed instead of logging (log_root 0); no crashed image")
    before = L.sha256_file(crashed)
    res = run("reflink", "--length", "4096", "--dest-offset", "8192", "a.bin", "a.bin", crashed)
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1 and "log" in errs[0], res.stderr
    assert L.sha256_file(crashed) == before


def test_dry_run_byte_identical(run, tmp_path):
    need_progs()
    img = small_image(tmp_path / "x.img", files={"a.bin": os.urandom(74 * 4096),
                                                  "b.bin": os.urandom(25 * 4096)})
    before = L.sha256_file(img)
    for args in (["--length", "65536", "--dest-offset", "4096", "a.bin", "b.bin"],
                 ["--create", "a.bin", "/new.bin"],
                 ["--src-offset", "4096", "a.bin", "a.bin", ]):
        args = ["reflink", "--dry-run"] + args
        if "--dest-offset" not in args:
            args[2:2] = ["--dest-offset", "1048576"]
        res = run(*args, img)
        assert res.returncode == 0, "%s: exit %d\n%s" % (args, res.returncode, res.stderr)
        assert L.sha256_file(img) == before, "%s changed the image" % " ".join(args)
    res = run("--format", "json", "reflink", "--dry-run", "--create", "a.bin", "/new2.bin", img)
    assert res.returncode == 0, res.stderr
    import json
    doc = json.loads(res.stdout)
    assert doc.get("dry-run") is True, doc
    assert L.sha256_file(img) == before
    # A refused dry run is refused like a real one.
    res = run("reflink", "--dry-run", "--src-offset", "100", "a.bin", "b.bin", img)
    assert res.returncode == 1 and len(error_lines(res.stderr)) == 1, res.stderr


# ---------------------------------------------------------------------------
# Crash sweep over several commits in one process.

@pytest.mark.slow  # crash sweep
def test_crash_sweep_multi_commit(run, tmp_path):
    need_progs()
    base = small_image(tmp_path / "base.img", 4096)
    probe = fixtures.sparse_copy(base, tmp_path / "probe.img")
    if not L.fault_injection_available(run, probe):
        pytest.skip("EXTCRYPT_BIN has no fault injection (configure --enable-fault-injection)")
    args = ["--add", "45", "--value-size", "1500", "--commit-every", "15"]
    last = 0
    counts = []
    for n in range(1, 2000):
        img = fixtures.sparse_copy(base, tmp_path / "cut.img")
        res = run("debug", "xattrs", *args, img, env={"EXTCRYPT_FAIL_AT": str(n)})
        if res.returncode == 0:
            break
        m = L.FAULT_MSG_RE.search(res.stderr)
        assert res.returncode == 1 and m and int(m.group(1)) == n, res.stderr
        r = L.sh("btrfs", "check", img, check=False)
        assert r.returncode == 0, "btrfs check after a cut at write %d (EXTCRYPT_FAIL_AT=%d " \
            "btrfs-extcrypt debug xattrs %s IMG):\n%s" % (n, n, " ".join(args), r.stdout[-3000:])
        k = len(xattr_items(img))
        assert k % 15 == 0 and k >= last, (
            "cut at write %d: %d xattrs (previous cut %d): not a whole number of commits"
            % (n, k, last))
        last = k
        counts.append(k)
    else:
        pytest.fail("no successful run up to 2000 writes")
    print("multi-commit sweep: %d writes, xattrs seen after cuts: %s"
          % (n - 1, sorted(set(counts))))
    assert set(counts) >= {0, 15, 30}

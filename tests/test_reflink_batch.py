"""reflink --batch: many clones in one process, with periodic commits.

Judges: the kernel doing the same clones with FICLONERANGE on a loop mount
of a copy of the same image (file contents compared through a read-only
mount of ours), and btrfs check on our result.  A refused line is reported
with its number and changes nothing; a batch cut at any write (fault
injection) leaves a consistent image, and running the same batch again
gives the uncut result.
"""
import fcntl
import hashlib
import json
import os
import random
import struct
import subprocess

import pytest

import fixtures

FICLONERANGE = 0x4020940d
BLOCK = 4096
NDST = 6


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    top = tmp_path_factory.mktemp("batch")
    tree = top / "tree"
    (tree / "dir with space").mkdir(parents=True)
    rng = random.Random(12)
    (tree / "src.bin").write_bytes(rng.randbytes(256 * BLOCK))
    for d in range(NDST):
        (tree / ("d%d" % d)).write_bytes(b"")
    img = fixtures.mkfs(top / "base.img", rootdir=tree, size_mib=128)
    return top, img


def clone_ops(n, seed=3):
    """(src_offset, dest_offset, dst) of n 4 KiB clones, appending to each dst."""
    rng = random.Random(seed)
    return [(rng.randrange(256) * BLOCK, (i // NDST) * BLOCK, "d%d" % (i % NDST))
            for i in range(n)]


def batch_text(ops, extra=()):
    lines = ["# clones of the test", ""]
    for so, do, dst in ops:
        lines.append("--src-offset %d --length %d --dest-offset %d /src.bin /%s"
                     % (so, BLOCK, do, dst))
    lines += list(extra)
    return "\n".join(lines) + "\n"


def kernel_result(img, ops, tmp_path):
    """The files after the kernel makes the same clones on a copy of img."""
    copy = tmp_path / "kernel.img"
    fixtures.sparse_copy(str(img), copy)
    with fixtures.loop_mount(copy, tmp_path / "km", ro=False) as mnt:
        src = os.open(mnt / "src.bin", os.O_RDONLY)
        for so, do, dst in ops:
            fd = os.open(mnt / dst, os.O_RDWR)
            fcntl.ioctl(fd, FICLONERANGE, struct.pack("qQQQ", src, so, BLOCK, do))
            os.close(fd)
        os.close(src)
    return digests(copy, tmp_path / "kr")


def digests(img, mnt):
    with fixtures.loop_mount(img, mnt, ro=True) as m:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(m.iterdir()) if p.is_file()}


def btrfs_check_clean(img):
    res = subprocess.run(["btrfs", "check", "--check-data-csum", str(img)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert res.returncode == 0, res.stdout[-3000:]


@pytest.mark.kernel
def test_batch_equals_kernel(base, run, tmp_path):
    top, img0 = base
    ops = clone_ops(300)
    img = tmp_path / "ours.img"
    fixtures.sparse_copy(str(img0), img)
    batch = tmp_path / "batch"
    batch.write_text(batch_text(ops))
    res = run("--format", "json", "reflink", "--batch", str(batch), "--commit-every", "50",
              str(img))
    assert res.returncode == 0, res.stderr[-2000:]
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    summary = docs[-1]["summary"]
    assert summary == {"lines": 300, "cloned": 300, "refused": 0, "commits": 6,
                       "dry-run": False}, summary
    assert sorted(d["line"] for d in docs[:-1]) == list(range(3, 303))
    assert all(d["result"] == "cloned" and d["length"] == BLOCK for d in docs[:-1])
    btrfs_check_clean(img)
    assert run("check", str(img)).returncode == 0
    assert digests(img, tmp_path / "om") == kernel_result(img0, ops, tmp_path)


def test_refused_lines_do_not_stop_the_others(base, run, tmp_path):
    top, img0 = base
    ops = clone_ops(40, seed=5)
    bad = ["--src-offset 100 --length 4096 --dest-offset 0 /src.bin /d0",   # unaligned
           "/no/such/file /d1",                                             # no source
           "--bogus /src.bin /d2",                                          # not an option
           "'/src.bin /d3",                                                 # quotes
           "--create /src.bin '/dir with space/new file'"]                 # fine
    text = batch_text(ops[:20]) + "\n".join(bad) + "\n" + batch_text(ops[20:])
    batch = tmp_path / "batch"
    batch.write_text(text)
    img = tmp_path / "ours.img"
    fixtures.sparse_copy(str(img0), img)
    res = run("--format", "json", "reflink", "--batch", "-", "--commit-every", "7", str(img),
              input=text)
    assert res.returncode == 1, res.stderr[-2000:]
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    refused = {d["line"]: d["error"]["message"] for d in docs if d.get("result") == "refused"}
    first_bad = 2 + 20 + 1
    assert sorted(refused) == [first_bad, first_bad + 1, first_bad + 2, first_bad + 3], refused
    assert "multiples of the sector size" in refused[first_bad]
    assert "no such file" in refused[first_bad + 1]
    assert "--bogus" in refused[first_bad + 2]
    assert "quotes" in refused[first_bad + 3]
    assert docs[-1]["summary"]["cloned"] == 41 and docs[-1]["summary"]["refused"] == 4
    # One ERROR line per refused line, naming it.
    errs = [l for l in res.stderr.splitlines() if l.startswith("ERROR:")]
    assert len(errs) == 4 and all(("line %d:" % n) in " ".join(errs) for n in refused)
    # The same clones made one by one give the same image contents.
    one = tmp_path / "one.img"
    fixtures.sparse_copy(str(img0), one)
    for so, do, dst in ops:
        r = run("reflink", "--src-offset", so, "--length", BLOCK, "--dest-offset", do,
                "/src.bin", "/" + dst, one)
        assert r.returncode == 0, r.stderr
    r = run("reflink", "--create", "/src.bin", "/dir with space/new file", one)
    assert r.returncode == 0, r.stderr
    assert restore_digests(run, img, tmp_path / "r1") == restore_digests(run, one, tmp_path / "r2")
    btrfs_check_clean(img)


def restore_digests(run, img, out):
    assert run("restore", str(img), str(out)).returncode == 0
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def test_dry_run_batch_writes_nothing(base, run, tmp_path):
    top, img0 = base
    img = tmp_path / "ours.img"
    fixtures.sparse_copy(str(img0), img)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    batch = tmp_path / "batch"
    batch.write_text(batch_text(clone_ops(30)))
    res = run("reflink", "--dry-run", "--batch", str(batch), "--commit-every", "4", str(img))
    assert res.returncode == 0 and "Would reflink 30 clones" in res.stderr, res.stderr
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


def test_options_after_the_paths(base, run, tmp_path):
    """getopt_long() moves a line's options before its paths: the words'
    buffer is still freed as allocated (it aborted in free())."""
    top, img0 = base
    img = tmp_path / "ours.img"
    fixtures.sparse_copy(str(img0), img)
    text = "/src.bin /d0 --length 8192\n/src.bin /new --create\n"
    res = run("reflink", "--batch", "-", str(img), input=text)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Reflinked 2 clones" in res.stderr, res.stderr
    for path, size in (("/d0", 8192), ("/new", 256 * BLOCK)):
        out = run("inspect", "file", path, str(img)).stdout
        assert "size: %d\n" % size in out, out
    btrfs_check_clean(img)


@pytest.mark.parametrize("key", [["--key-file", "-"], ["--key-fd", "0"]])
def test_batch_and_key_both_from_stdin_refused(base, run, tmp_path, key):
    """One standard input cannot carry both the batch and the key: a usage
    error (exit 2) before the image is opened, which stays unchanged."""
    top, img0 = base
    img = tmp_path / "ours.img"
    fixtures.sparse_copy(str(img0), img)
    before = hashlib.sha256(img.read_bytes()).hexdigest()
    res = run("reflink", "--batch", "-", *key, str(img), input=batch_text(clone_ops(2)))
    assert res.returncode == 2, res.stderr
    err = [l for l in res.stderr.splitlines() if l.startswith("ERROR:")]
    assert err == ["ERROR: --batch - and the key cannot both come from standard input"], res.stderr
    assert hashlib.sha256(img.read_bytes()).hexdigest() == before


@pytest.mark.slow  # several seconds: out of `make check`
def test_batch_cut_at_every_write(base, run, tmp_path):
    """Cut the batch at every write: consistent, then the re-run completes it."""
    top, img0 = base
    ops = clone_ops(24, seed=9)
    batch = tmp_path / "batch"
    batch.write_text(batch_text(ops))
    args = ("reflink", "--batch", str(batch), "--commit-every", "5")
    want_img = tmp_path / "want.img"
    fixtures.sparse_copy(str(img0), want_img)
    assert run(*args, str(want_img)).returncode == 0
    want = restore_digests(run, want_img, tmp_path / "want")
    img = tmp_path / "cut.img"
    cuts = 0
    for n in range(1, 2000):
        fixtures.sparse_copy(str(img0), img)
        res = run(*args, str(img), env={"EXTCRYPT_FAIL_AT": str(n)})
        if res.returncode == 0:
            break
        cuts += 1
        assert "fault injection" in res.stderr, res.stderr
        chk = run("check", str(img))
        assert chk.returncode == 0, "cut %d: %s" % (n, chk.stderr[-1500:])
        if n % 7 == 0:      # btrfs check is slower: every seventh cut
            btrfs_check_clean(img)
        assert run(*args, str(img)).returncode == 0, "cut %d: re-run failed" % n
        got = restore_digests(run, img, tmp_path / ("got%d" % n))
        assert got == want, "cut %d: the re-run differs from the uncut run" % n
    assert cuts >= 30, "only %d cut points" % cuts

"""Out of memory at every allocation of every command (fault-injection builds).

A fault-injection build (configure --enable-fault-injection) counts the
allocations of the process (EXTCRYPT_COUNT_ALLOC=1 prints the count at
exit) and fails the Nth one (EXTCRYPT_FAIL_ALLOC=N, common/fault.h).  For
each command on a small image, the run is repeated with N = 1 .. count (every
N up to 200, then a stride), and:

  * no crash, hang or sanitizer report (the runner fails the test on those);
  * exit 1 with "out of memory" in the last ERROR line, or exit 0 with
    exactly the output of the run without a failure (a failed allocation
    the command recovers from changes nothing; one it swallowed would show
    as missing output).  Never 3: a clean image has no corruption to find;
  * for the commands that write: the image stays consistent (our check
    clean; `btrfs check --check-data-csum` clean too while incompat bit 15
    is clear, as btrfs-progs 6.2 cannot open encrypted images), and running
    the command again without a failure completes.  The build itself stops
    a superblock write after the failed allocation with an ERROR that is
    not "out of memory", so a commit after a swallowed failure fails here.

Failures are collected over the sweep and reported together.
"""

import os
import random
import shutil
import struct

import pytest

import fixtures
from runner import error_lines

KEY = bytes(range(64))
INCOMPAT_ENCRYPT = 1 << 15
COUNT_PREFIX = "EXTCRYPT_COUNT_ALLOC:"


class Env:
    """The images of the module (read-only) and its scratch directory."""


def small_tree(tree):
    """A regular, an inline and a small file, a symlink and a hard link."""
    files = {"dir/small.txt": b"small file\n", "dir/sub/inline.txt": b"x" * 1500,
             "dir/data.bin": random.Random(7).randbytes(256 * 1024)}
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    os.symlink("small.txt", tree / "dir" / "link")
    os.link(tree / "dir" / "small.txt", tree / "hard.txt")
    fixtures._set_times(tree)
    return tree


@pytest.fixture(scope="module")
def env(tmp_path_factory, run):
    e = Env()
    e.dir = d = tmp_path_factory.mktemp("oom")
    e.plain = fixtures.mkfs(d / "plain.img", small_tree(d / "tree"), size_mib=128)
    e.key = d / "a.key"
    e.key.write_bytes(KEY)
    os.chmod(e.key, 0o600)
    probe = run("inspect", "dump-super", e.plain, env={"EXTCRYPT_COUNT_ALLOC": "1"})
    if COUNT_PREFIX not in probe.stderr:
        pytest.skip("not a fault-injection build (configure --enable-fault-injection)")
    e.enc = d / "enc.img"
    fixtures.sparse_copy(e.plain, e.enc)
    res = run("encrypt", "--key-file", e.key, e.enc, timeout=120)
    assert res.returncode == 0, res.stderr
    out = run("inspect", "file", "/dir/data.bin", e.plain).stdout
    e.data_logical = int(out.split("disk-bytenr ")[1].split()[0])
    return e


def sample(count):
    """Every N up to 200, then about 100 more spread evenly, and the last."""
    ns = list(range(1, min(count, 200) + 1))
    if count > 200:
        step = max(1, (count - 200) // 100)
        ns += list(range(200 + step, count + 1, step))
        if ns[-1] != count:
            ns.append(count)
    return ns


def count_allocations(res):
    lines = [l for l in res.stderr.splitlines() if l.startswith(COUNT_PREFIX)]
    assert lines, res.stderr[-2000:]
    return int(lines[-1][len(COUNT_PREFIX):])


def judge(res, base, n):
    """What is wrong with run n (res) against the run without failure, or None."""
    errs = error_lines(res.stderr)
    if res.returncode == 0:
        if res.stdout != base.stdout:
            return "exit 0 but the output differs from the run without a failure"
        return None
    if res.returncode != 1:
        return "exit %d: %s" % (res.returncode, res.stderr.strip()[-400:])
    if not errs or "out of memory" not in errs[-1]:
        return "exit 1 without 'out of memory' last: %s" % res.stderr.strip()[-400:]
    return None


def incompat(img):
    with open(img, "rb") as f:
        f.seek(0x10000 + 0xbc)
        return struct.unpack("<Q", f.read(8))[0]


def sweep(run, args, fresh=None, after=None):
    """Run args with every sampled allocation failing; fresh() (if given)
    prepares the scratch state before each run, after(n, res) judges what
    a failed run left.  Returns (count, runs, failures)."""
    if fresh:
        fresh()
    base = run(*args, env={"EXTCRYPT_COUNT_ALLOC": "1"}, timeout=120)
    assert base.returncode == 0, base.stderr[-2000:]
    count = count_allocations(base)
    failures = []
    ns = sample(count)
    for n in ns:
        if fresh:
            fresh()
        res = run(*args, env={"EXTCRYPT_FAIL_ALLOC": str(n)}, timeout=120)
        msg = judge(res, base, n)
        if not msg and res.returncode and after:
            msg = after(n, res)
        if msg:
            failures.append("N=%d: %s" % (n, msg))
    return count, len(ns), failures


def report(what, count, runs, failures):
    assert count > 0
    assert not failures, "%s: %d allocations, %d runs, %d failed:\n%s" % (
        what, count, runs, len(failures), "\n".join(failures[:30]))


READ_COMMANDS = {
    "check": lambda e: ["check", e.plain],
    "check-data-csum": lambda e: ["check", "--check-data-csum", e.plain],
    "check-key-file": lambda e: ["check", "--check-data-csum", "--key-file", e.key, e.enc],
    "check-json": lambda e: ["--format", "json", "check", e.enc],
    "dump-tree": lambda e: ["inspect", "dump-tree", e.enc],
    "dump-tree-json": lambda e: ["--format", "json", "inspect", "dump-tree", e.enc],
    "dump-super": lambda e: ["inspect", "dump-super", "--all", e.plain],
    "file": lambda e: ["inspect", "file", "/dir/data.bin", e.plain],
    "file-json": lambda e: ["--format", "json", "inspect", "file", "/dir/sub/inline.txt",
                            e.plain],
    "resolve-logical": lambda e: ["inspect", "resolve-logical", str(e.data_logical), e.plain],
}


@pytest.mark.parametrize("name", sorted(READ_COMMANDS))
def test_read_command_out_of_memory(run, env, name):
    report(name, *sweep(run, READ_COMMANDS[name](env)))


@pytest.mark.parametrize("key", [False, True], ids=["raw", "key"])
def test_restore_out_of_memory(run, env, key):
    out = env.dir / ("restore-%s" % key)

    def fresh():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    args = ["restore"] + (["--key-file", env.key] if key else []) + [env.enc, out]
    report("restore", *sweep(run, args, fresh))
    shutil.rmtree(out, ignore_errors=True)


def write_after(run, img, args):
    """The judge of a failed write: a consistent image, and a re-run completes."""
    def after(n, res):
        chk = run("check", img, timeout=120)
        if chk.returncode != 0:
            return "our check exit %d after it: %s" % (
                chk.returncode, " | ".join(error_lines(chk.stderr))[:600])
        if not incompat(img) & INCOMPAT_ENCRYPT:
            progs = fixtures.btrfs_check(img, "--check-data-csum")
            if progs.returncode != 0:
                return "btrfs check exit %d after it: %s" % (
                    progs.returncode, (progs.stdout + progs.stderr)[-600:])
        again = run(*args, timeout=120)
        if again.returncode != 0:
            return "the re-run exit %d: %s" % (again.returncode, again.stderr.strip()[-400:])
        return None
    return after


WRITE_COMMANDS = {
    "encrypt": ("plain", lambda e, img: ["encrypt", "--key-file", e.key, img]),
    "decrypt": ("enc", lambda e, img: ["decrypt", "--key-file", e.key, img]),
    "reflink": ("plain", lambda e, img: ["reflink", "--create", "/dir/data.bin",
                                         "/dir/clone", img]),
    "reflink-batch": ("plain", lambda e, img: ["reflink", "--batch", e.dir / "batch.txt", img]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WRITE_COMMANDS))
def test_write_command_out_of_memory(run, env, name):
    src, make = WRITE_COMMANDS[name]
    src = getattr(env, src)
    img = env.dir / ("w-%s.img" % name)
    (env.dir / "batch.txt").write_text(
        "/dir/data.bin /dir/c1 --create\n"
        "--src-offset 0 --length 4096 /dir/data.bin /dir/c2 --create\n")
    args = make(env, img)
    report(name, *sweep(run, args, lambda: fixtures.sparse_copy(src, img),
                        write_after(run, img, args)))
    img.unlink()


@pytest.mark.slow
def test_compressed_encrypted_out_of_memory(run, make_kernel_image, tmp_path):
    """check --key-file decodes and restore decompresses compressed encrypted
    extents: a failed allocation there (zlib and zstd state included) is out
    of memory, not a corrupt stream."""
    img = tmp_path / "enc.img"
    fixtures.sparse_copy(make_kernel_image("crc32c", 16384).path, img)
    key = tmp_path / "a.key"
    key.write_bytes(KEY)
    res = run("encrypt", "--key-file", key, img, timeout=300)
    assert res.returncode == 0, res.stderr
    report("check --key-file", *sweep(run, ["check", "--key-file", key, img]))
    out = tmp_path / "out"

    def fresh():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()

    report("restore", *sweep(run, ["restore", "--threads", "1", "--key-file", key, img, out],
                             fresh))

# SPDX-License-Identifier: GPL-2.0
"""Every command with a tree block cache of (almost) nothing.

Test builds (--enable-fault-injection, as CI builds both binaries) read
EXTCRYPT_CACHE_BYTES: the tree block cache gets that size and evicted blocks
are freed instead of kept for reuse.  With one byte, no unreferenced block
stays cached: every last put frees the block.  A block used after its last
put then reads freed memory, which the ASan+UBSan build reports and the
runner turns into a failure.  With the default 64 MiB cache such a use goes
unseen on small images; this is how a use after put in trans_abort() was
found.  The results must also equal those of a normal run: a small cache
only costs re-reads.
"""
import os
import random
import shutil

import pytest

import fixtures
import reflink_lib as L
from fixtures import MiB
from runner import error_lines
from test_restore import compare, manifest, restore
from test_write_engine import need_progs

TINY = {"EXTCRYPT_CACHE_BYTES": "1"}


@pytest.fixture(scope="module")
def tiny(run, tmp_path_factory):
    """Skips unless the binary reads EXTCRYPT_CACHE_BYTES (a test build)."""
    need_progs()
    d = tmp_path_factory.mktemp("tiny-probe")
    probe = fixtures.mkfs(d / "probe.img", size_mib=128)
    if not L.fault_injection_available(run, probe):
        pytest.skip("binary built without --enable-fault-injection (no EXTCRYPT_CACHE_BYTES)")


def _tree(top):
    """Enough files that 4 KiB nodes make trees of three levels and more."""
    rng = random.Random(7)
    for d in range(3):
        sub = top / ("dir%d" % d) / "deeper"
        sub.mkdir(parents=True)
        for i in range(150):
            p = (sub if i % 2 else sub.parent) / ("file-%03d-%s" % (i, "x" * (i % 40)))
            p.write_bytes(rng.randbytes(rng.choice((0, 10, 3000, 5000, 70000))))
            if i % 25 == 0:
                os.setxattr(p, "user.tiny", rng.randbytes(30))
    (top / "big.bin").write_bytes(rng.randbytes(3 * MiB + 4321))
    os.link(top / "big.bin", top / "dir0" / "big-link")
    os.symlink("dir1/deeper/../x", top / "sym")


def ok(res, what):
    assert res.returncode == 0 and not error_lines(res.stderr), (
        "%s: exit %d\n%s" % (what, res.returncode, res.stderr[-3000:]))


def test_round_trip_with_tiny_cache(run, tiny, tmp_path):
    """encrypt, check with the key, restore, dump-tree and decrypt, each with
    no cache: clean, and the same results as with the normal cache."""
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    want = manifest(src)
    img = fixtures.mkfs(tmp_path / "t.img", rootdir=src, nodesize=4096, size_mib=192)
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))

    ok(run("encrypt", "--threads", "2", "--key-file", str(key), str(img), env=TINY),
       "encrypt with a tiny cache")
    ok(run("check", "--check-data-csum", "--key-file", str(key), str(img), env=TINY),
       "check with a tiny cache")
    ok(run("check", "--check-data-csum", "--key-file", str(key), str(img)),
       "check with the normal cache")
    out = tmp_path / "restored"
    doc = restore(run, img, out, "--threads", "3", key=key)
    assert doc["failed"] == 0
    compare(want, manifest(out), ignore={"mtime"})
    shutil.rmtree(out)

    small = run("inspect", "dump-tree", str(img), env=TINY)
    normal = run("inspect", "dump-tree", str(img))
    ok(small, "dump-tree with a tiny cache")
    assert small.stdout == normal.stdout and len(small.stdout) > 100000

    ok(run("decrypt", "--threads", "2", "--key-file", str(key), str(img), env=TINY),
       "decrypt with a tiny cache")
    r = L.sh("btrfs", "check", "--check-data-csum", str(img), check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    tiny_out = tmp_path / "restored-tiny"
    res = run("--format", "json", "restore", "--threads", "3", str(img), str(tiny_out), env=TINY)
    ok(res, "restore with a tiny cache")
    compare(want, manifest(tiny_out), ignore={"mtime"})


def test_aborted_transaction_with_tiny_cache(run, tiny, tmp_path):
    """A transaction that runs out of space is aborted: its dirty blocks are
    put and forgotten.  Nothing of it reaches the image."""
    d = tmp_path / "tree"
    d.mkdir()
    (d / "a.bin").write_bytes(b"a" * 8192)
    img = fixtures.mkfs(tmp_path / "x.img", rootdir=d, nodesize=4096, size_mib=128)
    before = L.sha256_file(img)
    # 20000 leaves of 4 KiB, DUP: more than the metadata chunk and all the
    # unallocated space (new chunks: kernel-shared/chunk-alloc.c).
    res = run("debug", "xattrs", "--add", "20000", "--value-size", "3900", str(img),
              env=TINY, timeout=300)
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, res.stderr[-3000:]
    assert L.sha256_file(img) == before, "an aborted transaction changed the image"
    r = L.sh("btrfs", "check", str(img), check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

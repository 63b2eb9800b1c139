"""Crash sweep of `encrypt` and `decrypt` (issue 5, "Must hold": crash sweep).

A small image (~50 inodes, nodesize 4096 so that the trees have several
levels: inline and regular files, a multi-extent file, symlinks, a hard
link, a fifo, an empty directory, markers in data, names and targets) is
cut at every image write: EXTCRYPT_FAIL_AT=N for N = 1, 2, ... until the
command succeeds (fault-injection builds: the Nth write does not happen and
the process exits 1).  After every cut:

  * our `check` is clean (exit 0);
  * where the incompat bit 15 is still clear (no encrypted inode can
    remain), `btrfs check --check-data-csum` is clean too (btrfs-progs 6.2
    cannot open bit-15 images);
  * re-running the same command (no fault) completes (exit 0), after which
      - encrypt: our check clean with the key; encrypt_ref.verify_encrypted
        recomputes every extent, name, symlink, context and csum from the
        plaintext and the key; no marker is left in the image file;
      - decrypt: bit 15 clear, `btrfs check --check-data-csum` clean, and
        the image equals the original item by item (encrypt_ref reader);
  * root: for every 8th cut and the last, the final content read through a
    read-only kernel mount (after a decrypt for the encrypt sweep) equals the
    original's kernel manifest.

Failures are collected over the whole sweep and reported together (cut
index, what failed), so one run shows every bad cut point.
"""

import os
import time

import pytest

import encrypt_ref as R
import fixtures
from conftest import root_skip_reason
from test_encrypt import (FAULT_RE, KEY_A, compare_plain, diff_manifests, find_markers,
                          kernel_manifest, make_marker_tree, ro_mount, write_key)

pytestmark = pytest.mark.slow  # crash sweeps

MiB = 1024 * 1024
KERNEL_EVERY = 8


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory, bin):
    work = tmp_path_factory.mktemp("crash")
    key = write_key(work / "a.key", KEY_A)
    tree = work / "tree"
    marks = make_marker_tree(tree, seed=31)          # 18 markers, ~20 inodes
    import random
    rng = random.Random(5)
    (tree / "sub" / "deeper").mkdir(parents=True)
    for i in range(20):
        (tree / ("f%02d.bin" % i)).write_bytes(rng.randbytes(rng.choice([10, 500, 1999, 3000, 5000,
                                                                         70000, 300000])))
    for i in range(8):
        (tree / "sub" / ("s%d.txt" % i)).write_bytes(rng.randbytes(rng.choice([100, 4096, 9000])))
    # More directories and names: more tree blocks, so more cut points (the
    # pipeline writes runs of small extents in one go, tree blocks one by one).
    for d in range(6):
        sub = tree / ("dir%d" % d)
        sub.mkdir()
        for i in range(25):
            (sub / ("name-%02d-%s" % (i, "x" * rng.randrange(1, 60)))).write_bytes(
                rng.randbytes(rng.choice([0, 300, 2500, 4096, 12000])))
    (tree / "sub" / "deeper" / "big.bin").write_bytes(rng.randbytes(1300000))
    (tree / "emptydir").mkdir()
    (tree / "empty").write_bytes(b"")
    fixtures._set_times(tree)
    image = fixtures.mkfs(work / "plain.img", tree, nodesize=4096, size_mib=128)
    return work, key, tree, marks, image


def _fault_supported(run, work, image, key):
    scratch = work / "probe.img"
    fixtures.sparse_copy(image, scratch)
    res = run("encrypt", "--key-file", key, scratch, env={"EXTCRYPT_FAIL_AT": "1"})
    return res.returncode == 1 and FAULT_RE.search(res.stderr) is not None


def _check(run, img, *args):
    res = run("check", *args, img, timeout=120)
    return res.returncode, res


def _progs(img):
    res = fixtures.btrfs_check(img, "--check-data-csum")
    return res.returncode, res


def _sweep(run, cmd, base, key, after_rerun, work, max_n=3000):
    """Cut `cmd` at every write of base.  Returns (number of writes, list
    of failures, stats)."""
    failures = []
    stats = {"cuts": 0, "bit15-clear": 0, "progs-checked": 0, "committed-before-cut": 0}
    with R.ImageReader(base, verify=False) as b0:
        gen0 = b0.generation
    img = work / ("sweep-%s.img" % cmd)
    t0 = time.time()
    for n in range(1, max_n):
        fixtures.sparse_copy(base, img)
        res = run(cmd, "--threads", "1", "--key-file", key, img,
                  env={"EXTCRYPT_FAIL_AT": str(n)}, timeout=120)
        if res.returncode == 0:
            stats["seconds"] = round(time.time() - t0, 1)
            return n - 1, failures, stats
        stats["cuts"] += 1
        if res.returncode != 1 or not FAULT_RE.search(res.stderr):
            failures.append("cut %d: exit %d without the fault message: %s"
                            % (n, res.returncode, res.stderr.strip()[-300:]))
            continue
        with R.ImageReader(img, verify=False) as im:
            if im.generation != gen0:
                stats["committed-before-cut"] += 1
            clear = not im.incompat & R.INCOMPAT_ENCRYPT
        rc, r = _check(run, img)
        if rc != 0:
            failures.append("cut %d: our check exit %d after the cut:\n%s" %
                            (n, rc, "\n".join(l for l in r.stderr.splitlines()
                                              if l.startswith("ERROR"))[:1500]))
        if clear:
            stats["bit15-clear"] += 1
            rc, r = _progs(img)
            stats["progs-checked"] += 1
            if rc != 0:
                failures.append("cut %d: btrfs check --check-data-csum exit %d after the cut:\n%s"
                                % (n, rc, (r.stdout + r.stderr)[-1500:]))
        res = run(cmd, "--threads", "1", "--key-file", key, img, timeout=120)
        if res.returncode != 0:
            failures.append("cut %d: re-run exit %d: %s" % (n, res.returncode,
                                                             res.stderr.strip()[-500:]))
            continue
        msg = after_rerun(n, img)
        if msg:
            failures.append("cut %d: after the re-run: %s" % (n, msg))
    pytest.fail("%s never completed within %d writes" % (cmd, max_n))


def _kernel_final(img, work, want, decrypt_first=None):
    if decrypt_first:
        decrypt_first(img)
    with ro_mount(img, work / "mnt-cut") as (m, _dev, _mark):
        got, _info = kernel_manifest(m)
    d = diff_manifests(want, got, limit=5)
    return "kernel manifest differs: " + "\n".join(d) if d else None


@pytest.mark.slow
def test_crash_sweep(run, crash_setup):
    work, key, tree, marks, plain = crash_setup
    if not _fault_supported(run, work, plain, key):
        pytest.skip("binary built without fault injection (configure --enable-fault-injection)")
    root = root_skip_reason() is None
    want = None
    if root:
        with ro_mount(plain, work / "mnt-orig") as (m, _d, _k):
            want, _ = kernel_manifest(m)
    chunks = R.chunks_from_progs_text(fixtures.dump_tree_progs(plain, "-t", "chunk"))

    def content(t, ino, path):
        with open(os.path.join(os.fsencode(str(tree)), path), "rb") as f:
            return f.read()

    kernel_checked = [0]

    def after_encrypt(n, img):
        rc, r = _check(run, img, "--key-file", key)
        if rc:
            return "our check --key-file exit %d: %s" % (rc, r.stderr[-800:])
        st, problems = R.verify_encrypted(plain, img, KEY_A, content, chunks=chunks)
        if problems:
            return "ciphertext proof: " + "; ".join(problems[:5])
        found = find_markers(img, marks)
        if found:
            return "%d markers left: %s" % (len(found), sorted(w for w, _o in found.values()))
        if root and n % KERNEL_EVERY == 0:
            kernel_checked[0] += 1

            def dec(i):
                res = run("decrypt", "--key-file", key, i)
                assert res.returncode == 0, res.stderr
            return _kernel_final(img, work, want, dec)
        return None

    n_enc, fail_enc, st_enc = _sweep(run, "encrypt", plain, key, after_encrypt, work)

    # the decrypt sweep starts from one encrypted image
    enc = work / "encrypted.img"
    fixtures.sparse_copy(plain, enc)
    res = run("encrypt", "--threads", "1", "--key-file", key, enc)
    assert res.returncode == 0, res.stderr

    def after_decrypt(n, img):
        with R.ImageReader(img, verify=False) as im:
            if im.incompat & R.INCOMPAT_ENCRYPT:
                return "bit 15 still set after a complete decrypt"
        rc, r = _progs(img)
        if rc:
            return "btrfs check --check-data-csum exit %d: %s" % (rc, (r.stdout + r.stderr)[-800:])
        diffs = compare_plain(plain, img)
        if diffs:
            return "differs from the original: " + "; ".join(diffs[:5])
        if root and n % KERNEL_EVERY == 0:
            kernel_checked[0] += 1
            return _kernel_final(img, work, want)
        return None

    n_dec, fail_dec, st_dec = _sweep(run, "decrypt", enc, key, after_decrypt, work)
    # the uncut runs, once more through the kernel
    if root:
        img = work / "final.img"
        fixtures.sparse_copy(enc, img)
        res = run("decrypt", "--key-file", key, img)
        assert res.returncode == 0
        msg = _kernel_final(img, work, want)
        assert msg is None, msg
        kernel_checked[0] += 1
    print("crash sweep: encrypt %d writes %s; decrypt %d writes %s; %d cut points; "
          "%d kernel manifests compared"
          % (n_enc, st_enc, n_dec, st_dec, n_enc + n_dec, kernel_checked[0]))
    failures = ["encrypt " + f for f in fail_enc] + ["decrypt " + f for f in fail_dec]
    assert not failures, "%d of %d cut points failed:\n%s\nfirst failures in full:\n%s" % (
        len(failures), n_enc + n_dec, _group(failures), "\n".join(failures[:8]))
    assert n_enc + n_dec >= 200, "only %d cut points (issue 5 wants >= 200)" % (n_enc + n_dec)


def _ranges(ns):
    out, start, prev = [], None, None
    for n in sorted(ns):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append("%d-%d" % (start, prev) if prev > start else str(start))
            start = prev = n
    if start is not None:
        out.append("%d-%d" % (start, prev) if prev > start else str(start))
    return ",".join(out)


def _group(failures):
    """One line per (command, kind of failure): the cut indexes it hit."""
    import re
    groups = {}
    for f in failures:
        m = re.match(r"(\w+) cut (\d+): (.*)", f, re.S)
        cmd, n, msg = m.group(1), int(m.group(2)), m.group(3)
        kind = re.sub(r"\d+", "N", msg.split(":")[0] + ":" + msg.split(":")[1][:40]
                      if ":" in msg else msg[:60])
        groups.setdefault((cmd, kind), []).append(n)
    return "\n".join("  %s, %d cuts [%s]: %s" % (cmd, len(ns), _ranges(ns), kind)
                     for (cmd, kind), ns in sorted(groups.items()))

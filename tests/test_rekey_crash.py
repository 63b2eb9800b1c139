"""Crash sweep of `rekey` and `check` with both keys (issue 18, points 2-3).

A small image (markers in data, names and symlink targets, a hard link
across directories, nested directories, nodesize 4096) is encrypted with key
A, then `rekey` A -> B is cut at every image write (EXTCRYPT_FAIL_AT=N of the
fault-injection build, N = 1, 2, ... until it completes; EXTCRYPT_BATCH_BYTES
makes it commit every few files, so that the cuts fall between many
commits: at least 200 cut points).  After every cut:

  * `check --check-data-csum --key-file A --key-file B` is clean (exit 0):
    every committed state is consistent, each inode wholly under one key;
    where both keys are in use, a REKEY_IN_PROGRESS note is there (counted);
  * re-running the same rekey completes (exit 0), after which our check with
    key B alone is clean and `restore --key-file B` equals the source tree;
    every 16th cut and the last, encrypt_ref.verify_encrypted recomputes the
    image under key B from the plaintext and no context names key A.

Before the sweep, the write log of one uncut run is searched: no marker in
any buffer written (no plaintext on disk at any moment).
"""

import os
import shutil
import time

import pytest

import encrypt_ref as R
import fixtures
from test_encrypt import FAULT_RE, KEY_A, KEY_B, make_marker_tree, write_key
from test_rekey import assert_restore_equals, key_state, read_write_log

pytestmark = pytest.mark.slow  # crash sweep

BATCH = "300000"
PROOF_EVERY = 16
MIN_CUTS = 200


@pytest.fixture(scope="module")
def rk_crash(tmp_path_factory, bin):
    work = tmp_path_factory.mktemp("rkcrash")
    ka, kb = write_key(work / "a.key", KEY_A), write_key(work / "b.key", KEY_B)
    tree = work / "tree"
    marks = make_marker_tree(tree, seed=57)
    import random
    rng = random.Random(9)
    for d in range(5):
        sub = tree / ("dir%d" % d) / ("inner%d" % d)
        sub.mkdir(parents=True)
        for i in range(12):
            (sub.parent / ("f%02d-%s" % (i, "y" * rng.randrange(1, 40)))).write_bytes(
                rng.randbytes(rng.choice([700, 4096, 9000, 30000])))
            (sub / ("g%02d" % i)).write_bytes(rng.randbytes(rng.choice([100, 5000, 70000])))
    os.link(tree / "dir0" / "inner0" / "g00", tree / "dir1" / "hard-g00")
    os.symlink("dir0/inner0/g01", tree / "link-g01")
    fixtures._set_times(tree)
    plain = fixtures.mkfs(work / "plain.img", tree, nodesize=4096, size_mib=128)
    enc = work / "enc.img"
    fixtures.sparse_copy(plain, enc)
    return work, ka, kb, tree, marks, plain, enc


def test_rekey_crash_sweep(run, rk_crash):
    work, ka, kb, tree, marks, plain, enc = rk_crash
    res = run("encrypt", "--threads", "1", "--key-file", ka, enc)
    assert res.returncode == 0, res.stderr
    probe = work / "probe.img"
    fixtures.sparse_copy(enc, probe)
    res = run("rekey", "--key-file", ka, "--new-key-file", kb, probe,
              env={"EXTCRYPT_FAIL_AT": "1"})
    if res.returncode != 1 or not FAULT_RE.search(res.stderr):
        pytest.skip("binary built without fault injection (configure --enable-fault-injection)")
    # one uncut run: what it writes holds no plaintext
    fixtures.sparse_copy(enc, probe)
    log = work / "w.log"
    res = run("rekey", "--threads", "1", "--key-file", ka, "--new-key-file", kb, probe,
              env={"EXTCRYPT_WRITE_LOG": str(log), "EXTCRYPT_BATCH_BYTES": BATCH})
    assert res.returncode == 0, res.stderr
    writes = read_write_log(log)
    hits = [(o, x) for o, b in writes if b for x in marks if x in b]
    assert not hits, "rekey wrote plaintext markers: %r" % hits[:10]
    before = key_state(enc)
    old_nonces = set(before[2]) | set(before[3])
    chunks = None  # rekey may allocate chunks: each image's own map (encrypt_ref's reader)

    def content(t, ino, path):
        with open(os.path.join(os.fsencode(str(tree)), path), "rb") as f:
            return f.read()

    failures, stats = [], {"cuts": 0, "in-progress-notes": 0, "proofs": 0}
    img = work / "cut.img"
    t0 = time.time()
    env_base = {"EXTCRYPT_BATCH_BYTES": BATCH}
    # Under ASan every 4th write is cut: the sanitizers still see cuts between
    # all kinds of writes, the normal build cuts at every one (suite time).
    step = 4 if run.sanitized else 1
    n = 0
    while True:
        n += step
        assert n < 5000, "rekey never completed"
        fixtures.sparse_copy(enc, img)
        res = run("rekey", "--threads", "1", "--key-file", ka, "--new-key-file", kb, img,
                  env=dict(env_base, EXTCRYPT_FAIL_AT=str(n)), timeout=120)
        if res.returncode == 0:
            break
        stats["cuts"] += 1
        if res.returncode != 1 or not FAULT_RE.search(res.stderr):
            failures.append("cut %d: exit %d without the fault message: %s"
                            % (n, res.returncode, res.stderr.strip()[-300:]))
            continue
        r = run("check", "--check-data-csum", "--key-file", ka, "--key-file", kb, img,
                timeout=120)
        if r.returncode != 0:
            failures.append("cut %d: check with both keys exit %d:\n%s" % (
                n, r.returncode, "\n".join(l for l in (r.stdout + r.stderr).splitlines()
                                           if "ERROR" in l)[:1500]))
        stats["in-progress-notes"] += "REKEY_IN_PROGRESS" in r.stdout + r.stderr
        res = run("rekey", "--threads", "1", "--key-file", ka, "--new-key-file", kb, img,
                  env=env_base, timeout=120)
        if res.returncode != 0:
            failures.append("cut %d: re-run exit %d: %s" % (n, res.returncode,
                                                             res.stderr.strip()[-500:]))
            continue
        r = run("check", "--check-data-csum", "--key-file", kb, img, timeout=120)
        if r.returncode != 0:
            failures.append("cut %d: check with key B after the re-run exit %d: %s"
                            % (n, r.returncode, r.stderr[-800:]))
            continue
        out = work / "out"
        if out.exists():
            shutil.rmtree(out)
        try:
            assert_restore_equals(run, img, kb, tree, out)
        except AssertionError as e:
            failures.append("cut %d: %s" % (n, str(e)[:500]))
        if n % PROOF_EVERY == 0:
            stats["proofs"] += 1
            msg = _proof(plain, img, content, chunks, old_nonces)
            if msg:
                failures.append("cut %d: %s" % (n, msg))
        if len(failures) > 30:
            break
    msg = _proof(plain, img, content, chunks, old_nonces)
    if msg:
        failures.append("uncut run: %s" % msg)
    stats["seconds"] = round(time.time() - t0, 1)
    print("rekey crash sweep: %d writes, %s" % (n - 1, stats))
    assert not failures, "%d bad cuts:\n%s" % (len(failures), "\n".join(failures[:30]))
    assert stats["cuts"] >= MIN_CUTS // step, "only %d cut points" % stats["cuts"]
    assert stats["in-progress-notes"] > 0, "no cut showed a rekey in progress"


def _proof(plain, img, content, chunks, old_nonces):
    st, problems = R.verify_encrypted(plain, img, KEY_B, content, chunks=chunks)
    if problems:
        return "ciphertext proof under key B: " + "; ".join(problems[:5])
    ik, ek, inn, en = key_state(img)
    if R.key_identifier(KEY_A) in ik | ek:
        return "a context still names key A"
    if old_nonces & (set(inn) | set(en)):
        return "a nonce of before the rekey is used again"
    return None

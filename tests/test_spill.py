# SPDX-License-Identifier: GPL-2.0
"""check's record stores through their sorted runs on disk (common/spill.h).

Test builds (--enable-fault-injection) read EXTCRYPT_SPILL_BYTES: with 1,
each store of check keeps about 16 KiB of records in memory and sorts the
rest through runs in a temporary file in TMPDIR, which on these images
means dozens of runs.  A check that spills must say exactly what a check in
memory says: the same problems (nonce reuse, names and symlink data that do
not decrypt), the same counters, the same exit code; and the write commands,
whose verification before the first write is that check, must work the same.
A temporary file that cannot be made is one ERROR line, not a crash and not
a clean result.
"""
import json
import os
import struct

import pytest

import btrfs_ondisk as bo
import fixtures
import reflink_lib as L
from leafedit import Editor, FSCRYPT_INODE_CTX
from runner import error_lines

SPILL = {"EXTCRYPT_SPILL_BYTES": "1"}


@pytest.fixture(scope="module")
def enc_many(run, tmp_path_factory):
    """An image of ~3,000 files encrypted by us: ~6,000 nonces, ~9,000 names."""
    d = tmp_path_factory.mktemp("spill")
    tree = d / "tree"
    fixtures.make_sample_tree(tree, big_mib=1, dir_entries=3000)
    probe = fixtures.mkfs(d / "probe.img", size_mib=128)
    if not L.fault_injection_available(run, probe):
        pytest.skip("binary built without --enable-fault-injection (no EXTCRYPT_SPILL_BYTES)")
    img = fixtures.mkfs(d / "many.img", tree, nodesize=4096, size_mib=256)
    key = d / "key"
    key.write_bytes(os.urandom(64))
    res = run("encrypt", "--key-file", str(key), str(img))
    assert res.returncode == 0, res.stderr[-3000:]
    return img, key


def check_doc(run, img, key, env=None):
    res = run("--format", "json", "check", "--check-data-csum", "--key-file", str(key), str(img),
              env=env, timeout=600)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    return res.returncode, json.loads(res.stdout)


def same_result(run, img, key):
    """check in memory and check through runs: the same document."""
    rc, doc = check_doc(run, img, key)
    rc_s, doc_s = check_doc(run, img, key, env=SPILL)
    assert rc_s == rc
    assert doc_s["problems"] == doc["problems"]
    assert doc_s["counters"] == doc["counters"]
    return rc, doc


def test_clean_image_spilled(run, enc_many):
    img, key = enc_many
    rc, doc = same_result(run, img, key)
    errs = [p for p in doc["problems"] if p["severity"] == "error"]
    assert rc == 0 and not errs, errs[:5]
    assert doc["counters"]["names-decrypted"] > 3000


def _contexts(ed):
    return [it.key for _leaf, it in ed.items(bo.FS_TREE, ktype=FSCRYPT_INODE_CTX)]


def test_faults_found_when_spilled(run, enc_many, copy_image):
    """Two inodes with one nonce, far apart in the walk; a name that does not
    decrypt; bad sectors in three files, reported with their files."""
    img0, key = enc_many
    img = copy_image(img0, "faults.img")
    with Editor(img) as ed:
        ctxs = _contexts(ed)
        assert len(ctxs) > 3000
        first, last = tuple(ctxs[1]), tuple(ctxs[-1])
        nonce = ed.data(bo.FS_TREE, first)[24:40]
        ed.patch(bo.FS_TREE, last, 24, nonce)
        # a name of the big directory: one byte of its ciphertext flipped
        d = [it for _l, it in ed.items(bo.FS_TREE, ktype=bo.DIR_INDEX)][1500]
        raw = ed.data(bo.FS_TREE, tuple(d.key))
        ed.patch(bo.FS_TREE, tuple(d.key), 30 + len(raw[30:]) - 1, bytes([raw[-1] ^ 1]))
        # one byte of the ciphertext of three extents, far apart in disk order
        exts = [leaf.item_data(it) for leaf, it in ed.items(bo.FS_TREE, ktype=bo.EXTENT_DATA)]
        regs = sorted({struct.unpack_from("<Q", e, 21)[0] for e in exts
                       if len(e) >= 53 and e[20] == 1 and struct.unpack_from("<Q", e, 21)[0]})
        assert len(regs) > 2000
        for bytenr in (regs[10], regs[len(regs) // 2], regs[-1]):
            b = ed.img.read_logical(bytenr + 100, 1)
            ed.img.write_logical(bytenr + 100, bytes([b[0] ^ 0x55]))
    rc, doc = same_result(run, img, key)
    found = {p["code"] for p in doc["problems"]}
    assert rc == 1 and {"NONCE_REUSE", "NAME_DECRYPT_BAD"} <= found, doc["problems"][:8]
    bad = [p for p in doc["problems"] if p["code"] == "DATA_CSUM_MISMATCH"]
    # each reported with the file it belongs to, through the file extents' runs
    assert len(bad) == 3 and all(p["inode"] and p["inode"] >= 256 for p in bad), bad


def test_decrypt_spilled(run, enc_many, copy_image):
    """decrypt's verification through runs: the image comes out as btrfs check wants it."""
    img0, key = enc_many
    img = copy_image(img0, "dec.img")
    res = run("decrypt", "--key-file", str(key), str(img), env=SPILL)
    assert res.returncode == 0, res.stderr[-3000:]
    r = L.sh("btrfs", "check", "--check-data-csum", str(img), check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


def test_no_temporary_file(run, enc_many, tmp_path):
    """Runs in a TMPDIR that does not exist: one ERROR line, exit 1, nothing
    printed as clean; in memory the same TMPDIR is never needed."""
    img, key = enc_many
    env = dict(SPILL, TMPDIR=str(tmp_path / "missing"))
    res = run("check", "--key-file", str(key), str(img), env=env)
    errs = error_lines(res.stderr)
    assert res.returncode == 1 and len(errs) == 1, res.stderr[-2000:]
    assert "temporary file in %s" % (tmp_path / "missing") in errs[0], errs
    res = run("check", "--key-file", str(key), str(img), env={"TMPDIR": str(tmp_path / "missing")})
    assert res.returncode == 0 and not error_lines(res.stderr), res.stderr[-2000:]

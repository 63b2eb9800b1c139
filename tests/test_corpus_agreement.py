"""Write commands agree with check on btrfs-progs' fsck corpus.

For every corpus image that btrfs check --check-data-csum passes (Debian's,
or 6.14 when EXTCRYPT_PROGS614 names it; on metadata dumps, whose data
blocks and inline data btrfs-image zeroes, it skips the data csums, and so
do we): encrypt, then decrypt, must either complete
with our check and btrfs check clean on the result, or refuse with the
verdict our own check --check-data-csum gives (it also finds the image
wrong).  Where our check is clean, the write commands must not call the
image corrupt.
"""
import json
import os
import subprocess

import pytest

import fixtures

from test_check_corpus import CASES, corpus_images  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
KEY = bytes(range(64))

# Disagreements found and not yet fixed: each must fail (strict xfail), so
# a fix shows up as an unexpected pass and the entry is removed.
KNOWN = {
}


def cases():
    for d, f in CASES:
        why = KNOWN.get("%s/%s" % (d, f))
        marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
        yield pytest.param(d, f, marks=marks, id="%s/%s" % (d, f))


def progs_check(img):
    progs = os.environ.get("EXTCRYPT_PROGS614") or "btrfs"
    res = subprocess.run([progs, "check", "--readonly", "--check-data-csum", str(img)],
                         stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=600)
    return res.returncode, res.stdout


def sha(path):
    # Corpus images restore as sparse files of up to 16 GiB (a full read took
    # 39 s of this module's 147 s).
    return fixtures.sparse_digest(path)


@pytest.mark.parametrize("dname,fname", list(cases()))
def test_write_commands_agree_with_check(run, corpus_images, dname, fname, tmp_path):
    if run.sanitized:
        # About five minutes under ASan for a semantic comparison: the normal
        # build runs it; the sanitizers see the corpus through
        # test_check_corpus.py and the write commands through the fuzz smoke set.
        pytest.skip("agreement is judged on the normal build")
    imgs = corpus_images[(dname, fname)]
    if not imgs:
        pytest.skip("no usable image")
    key = tmp_path / "key"
    key.write_bytes(KEY)
    checked = 0
    for img0 in imgs:
        rc, _out = progs_check(img0)
        if rc != 0:
            continue
        checked += 1
        img = tmp_path / "work.img"
        subprocess.run(["cp", "--sparse=always", str(img0), str(img)], check=True)
        ours = run("check", "--check-data-csum", str(img))
        before = sha(img)
        enc = run("encrypt", "--key-file", str(key), str(img), timeout=600)
        if enc.returncode != 0:
            assert enc.returncode in (1, 3), enc.stderr
            assert sha(img) == before, "encrypt refused but wrote: " + enc.stderr
            if enc.returncode == 3:
                assert ours.returncode != 0, \
                    "check is clean but encrypt calls the image corrupt:\n" + enc.stderr
            continue
        assert ours.returncode == 0 or ours.returncode == 1, ours.stderr
        after = run("check", "--check-data-csum", "--key-file", str(key), str(img))
        assert after.returncode == ours.returncode, \
            "check changed its verdict after encrypt:\n" + after.stderr[-2000:]
        dec = run("decrypt", "--key-file", str(key), str(img), timeout=600)
        assert dec.returncode == 0, dec.stderr
        final = run("check", "--check-data-csum", str(img))
        assert final.returncode == ours.returncode, final.stderr[-2000:]
        rc, out = progs_check(img)
        assert rc == 0, "btrfs check after encrypt + decrypt:\n" + out[-2000:]
    if not checked:
        pytest.skip("btrfs check rejects every image of this case")


def test_metadump_data_csums_not_checked(run, corpus_images, tmp_path):
    """A metadata dump (superblock flag METADUMP_V2) holds no file data: like
    btrfs check and the kernel, check --check-data-csum skips its data csums
    with a note instead of reporting a mismatch on every block, and encrypt
    re-checksums what it rewrites instead of refusing."""
    imgs = corpus_images[("020-extent-ref-cases", "shared_data_ref_only.img")]
    if not imgs:
        pytest.skip("no usable image")
    img = tmp_path / "dump.img"
    subprocess.run(["cp", "--sparse=always", str(imgs[0]), str(img)], check=True)
    with open(img, "rb") as f:
        f.seek(0x10000 + 0x38)
        assert int.from_bytes(f.read(8), "little") & (1 << 34), "not a METADUMP_V2 image"
    rc, out = progs_check(img)
    assert rc == 0, out
    res = run("--format", "json", "check", "--check-data-csum", str(img))
    assert res.returncode == 0, res.stdout + res.stderr
    codes = [p["code"] for p in json.loads(res.stdout)["problems"]]
    assert codes == ["METADUMP_DATA_NOT_CHECKED"], codes
    key = tmp_path / "key"
    key.write_bytes(KEY)
    enc = run("encrypt", "--key-file", str(key), str(img))
    assert enc.returncode == 0, enc.stderr
    assert run("check", "--check-data-csum", "--key-file", str(key), str(img)).returncode == 0

"""Write commands build on nothing check rejects (issue 17 point 3).

Before their first write, encrypt, decrypt, rekey and reflink run every rule
of `check` (its data csum pass aside; decrypt and rekey with their keys), and
refuse an image check finds errors in: exit 3, one ERROR line naming check's
first error (its code, tree, inode and offset), the image bytes unchanged.
The corruptions are those of tests/test_check.py, each of which check and
btrfs check report; what counts as corrupt is what our check reports on the
same image, so the verdicts agree by construction and the test holds the
write commands to it.
"""
import hashlib
import os
import re

import pytest

from leafedit import Editor
from test_check import STRUCTURAL, check_json, codes

KEY = bytes(range(64))
NEW = bytes(range(64, 128))
# Corruptions that need no file name, so they also apply to encrypted images.
NAMELESS = ("bg-used", "fst-extent", "fst-count", "csum-item-deleted", "super-bytes-used")
CASES = [s for s in STRUCTURAL if not s[3]]     # check finds them without --check-data-csum


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("verify-keys")
    (d / "a").write_bytes(KEY)
    (d / "b").write_bytes(NEW)
    for k in ("a", "b"):
        os.chmod(d / k, 0o600)
    return d / "a", d / "b"


def assert_refused(run, img, args, found):
    before = sha(img)
    res = run(*args, img, timeout=300)
    assert res.returncode == 3, (args, res.returncode, res.stderr[-1500:])
    errors = [l for l in res.stderr.splitlines() if l.startswith("ERROR: ")]
    assert len(errors) == 1, res.stderr
    # Refused by check's rules, naming check's first error, or earlier, when
    # the image is opened, by the kernel's tree-checker rules (which check
    # reports too: found is not empty).
    m = re.search(r"the first: \[([A-Z0-9_]+)\]", errors[0])
    if m:
        assert "nothing was written" in errors[0] and m.group(1) in found, (m.group(1), found)
    else:
        assert "the kernel refuses this block" in errors[0] or "checksum mismatch" in errors[0], \
            errors[0]
    assert sha(img) == before, args


@pytest.mark.parametrize("name,corrupt,code,args", CASES, ids=[s[0] for s in CASES])
def test_plain_image_refused(run, make_mkfs_image, copy_image, keys, name, corrupt, code, args):
    img = copy_image(make_mkfs_image("crc32c", 16384), "v-%s.img" % name)
    with Editor(img) as ed:
        corrupt(ed)
    rc, doc = check_json(run, img)
    found = codes(doc, "error")
    assert rc == 1 and code in found, (name, found)
    assert_refused(run, img, ("encrypt", "--key-file", keys[0]), found)
    assert_refused(run, img, ("encrypt", "--dry-run", "--key-file", keys[0]), found)
    assert_refused(run, img, ("reflink", "--length", "4096", "/tiny", "/tiny-copy",
                              "--create"), found)


@pytest.fixture(scope="module")
def encrypted(make_mkfs_image, tmp_path_factory, run, keys):
    d = tmp_path_factory.mktemp("verify-enc")
    img = d / "enc.img"
    import fixtures
    fixtures.sparse_copy(make_mkfs_image("crc32c", 16384), img)
    res = run("encrypt", "--key-file", keys[0], img, timeout=300)
    assert res.returncode == 0, res.stderr
    return img


@pytest.mark.parametrize("name", NAMELESS)
def test_encrypted_image_refused(run, encrypted, copy_image, keys, name):
    corrupt = {s[0]: s[1] for s in STRUCTURAL}[name]
    img = copy_image(encrypted, "e-%s.img" % name)
    with Editor(img) as ed:
        corrupt(ed)
    rc, doc = check_json(run, img, "--key-file", keys[0])
    found = codes(doc, "error")
    assert rc == 1 and found, (name, doc.get("problems"))
    assert_refused(run, img, ("decrypt", "--key-file", keys[0]), found)
    assert_refused(run, img, ("rekey", "--key-file", keys[0], "--new-key-file", keys[1]), found)
    assert_refused(run, img, ("encrypt", "--key-file", keys[0]), found)


def test_clean_image_is_not_refused(run, encrypted, copy_image, keys):
    """Warnings and notes do not stop a write; the verification changes nothing."""
    img = copy_image(encrypted, "clean.img")
    rc, doc = check_json(run, img, "--key-file", keys[0])
    assert rc == 0 and not codes(doc, "error")
    res = run("-v", "rekey", "--key-file", keys[0], "--new-key-file", keys[1], img, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "check:" not in res.stderr
    rc, doc = check_json(run, img, "--key-file", keys[1])
    assert rc == 0, doc.get("problems")


def test_symlink_target_with_nul_refused(run, make_mkfs_image, copy_image, keys):
    """fscrypt ends a symlink target at its first NUL, so a target holding one
    (a metadata dump zeroes them) cannot be encrypted and decrypted back:
    encrypt refuses it before any write (exit 1, the symlink named)."""
    import btrfs_ondisk as bo
    img = copy_image(make_mkfs_image("crc32c", 16384), "nul-link.img")
    with Editor(img) as ed:
        ino = ed.lookup("links/short")
        ed.patch(bo.FS_TREE, (ino, bo.EXTENT_DATA, 0), 21 + 1, b"\0")
    before = sha(img)
    res = run("encrypt", "--key-file", keys[0], img, timeout=300)
    assert res.returncode == 1, res.stderr
    assert ("symlink %d " % ino) in res.stderr and "NUL" in res.stderr, res.stderr
    assert sha(img) == before

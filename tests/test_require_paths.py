"""check --require-encryption with paths inside the image (issue 15 point 3).

An image where /a is encrypted (encrypt --path /a) and /b is not: a path
token covers the inode it names and everything below it.  The plain inodes
expected are found by the tests' own image reader (tests/lib/btrfs_ondisk.py)
and by the source tree given to mkfs, not by our tool.
"""

import json
import stat

import pytest

import encrypt_ref as R
import fixtures
from test_encrypt import KEY_A, KEY_B, must, write_key


@pytest.fixture(scope="module")
def ab_image(tmp_path_factory, bin):
    import subprocess
    work = tmp_path_factory.mktemp("reqpaths")
    key = write_key(work / "a.key", KEY_A)
    wrong = write_key(work / "b.key", KEY_B)
    src = work / "src"
    for d in ("a/sub/deeper", "b/sub", "c"):
        (src / d).mkdir(parents=True)
    (src / "a" / "f.txt").write_bytes(b"secret a\n")
    (src / "a" / "sub" / "g.bin").write_bytes(bytes(5000))
    (src / "a" / "sub" / "deeper" / "h").write_bytes(b"h")
    (src / "a" / "link").symlink_to("f.txt")
    (src / "b" / "plain.txt").write_bytes(b"plain b\n")
    (src / "b" / "sub" / "big.bin").write_bytes(bytes(9000))
    (src / "b" / "lnk").symlink_to("plain.txt")
    (src / "c" / "x").write_bytes(b"x")
    img = fixtures.mkfs(work / "ab.img", src)
    res = subprocess.run([bin, "encrypt", "--key-file", str(key), "--path", "/a", str(img)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 0, res.stderr
    return img, key, wrong


def _inodes(img):
    """(ino -> (mode, encrypted)) and (name path -> ino) of the top-level tree, by our reader."""
    modes, names = {}, {}
    with R.ImageReader(img) as im:
        items = list(im.tree_items(5))
    parent = {}
    for k, d in items:
        if k[1] == 1 and k[0] >= 256:
            modes[k[0]] = (int.from_bytes(d[52:56], "little"),
                           bool(int.from_bytes(d[64:72], "little") & 0x1000))
        elif k[1] == 12 and k[0] != k[2]:          # INODE_REF: (ino, parent)
            parent[k[0]] = k[2]
    return modes, parent


def _below(parent, top):
    """Inodes at and below directory top (walking the parent links up)."""
    out = set()
    for ino in set(parent) | {top}:
        x = ino
        while x != top and x in parent:
            x = parent[x]
        if x == top:
            out.add(ino)
    return out


def _report(run, img, *args):
    res = run("--format", "json", "check", *args, str(img), timeout=180)
    doc = json.loads(res.stdout) if res.stdout.strip() else None
    probs = [p for p in doc["problems"] if p["severity"] == "error"] if doc else []
    return res, probs


def _plain(modes, inos):
    return {i for i in inos if not modes[i][1] and
            (stat.S_ISREG(modes[i][0]) or stat.S_ISDIR(modes[i][0]) or stat.S_ISLNK(modes[i][0]))}


def _top_dir(img, name):
    with R.ImageReader(img) as im:
        for k, d in im.tree_items(5):
            if k[1] == 96 and k[0] == 256:                       # DIR_INDEX of /
                for e in R.parse_dir_entries(d):
                    if e.name == name:
                        return e.location[0]
    raise AssertionError("no /%s" % name.decode())


def test_encrypted_path_is_clean(run, ab_image):
    img, key, _w = ab_image
    res, probs = _report(run, img, "--require-encryption=/a")
    assert res.returncode == 0 and not probs, probs
    # Through the encrypted directory with the key: a plaintext path below /a.
    res, probs = _report(run, img, "--key-file", str(key), "--require-encryption=/a/sub/deeper")
    assert res.returncode == 0 and not probs, probs


def test_plain_path_names_every_plain_inode(run, ab_image):
    img, _k, _w = ab_image
    modes, parent = _inodes(img)
    want = _plain(modes, _below(parent, _top_dir(img, b"b")))
    assert len(want) == 5, want      # b, plain.txt, sub, big.bin, lnk
    res, probs = _report(run, img, "--require-encryption=/b")
    assert res.returncode == 1
    got = {(p["root"], p["inode"]) for p in probs if p["code"] == "NOT_ENCRYPTED"}
    assert got == {(5, i) for i in want} and len(probs) == len(want), probs
    assert all("path /b" in p["message"] for p in probs)
    # Text output: one ERROR line per plain inode, exit 1.
    res = run("check", "--require-encryption=/b/sub", str(img))
    assert res.returncode == 1
    lines = [ln for ln in res.stderr.splitlines() if "[NOT_ENCRYPTED]" in ln]
    assert len(lines) == 2, res.stderr


def test_missing_path(run, ab_image):
    img, _k, _w = ab_image
    res, probs = _report(run, img, "--require-encryption=/nope")
    assert res.returncode == 1
    assert [p["code"] for p in probs] == ["REQUIRED_PATH_MISSING"]
    assert "/nope" in probs[0]["message"] and probs[0]["inode"] is None
    # Without the key a plaintext name below the encrypted /a does not resolve.
    res, probs = _report(run, img, "--require-encryption=/a/sub")
    assert res.returncode == 1 and [p["code"] for p in probs] == ["REQUIRED_PATH_MISSING"]


def test_paths_with_ids_and_overlaps(run, ab_image):
    img, _k, _w = ab_image
    modes, parent = _inodes(img)
    all_plain = _plain(modes, modes)
    # 5 covers the whole tree; the paths add nothing twice.
    res, probs = _report(run, img, "--require-encryption=/b,5,/a,/b/sub")
    got = [(p["root"], p["inode"]) for p in probs if p["code"] == "NOT_ENCRYPTED"]
    assert res.returncode == 1 and sorted(got) == sorted((5, i) for i in all_plain), probs
    # "/" covers everything of the top level too, each inode once.
    res, probs = _report(run, img, "--require-encryption=/,/b,/c")
    got = [(p["root"], p["inode"]) for p in probs if p["code"] == "NOT_ENCRYPTED"]
    assert sorted(got) == sorted((5, i) for i in all_plain), probs
    # Only paths: the subvolume pass covers nothing by itself (/c's inodes are not named).
    res, probs = _report(run, img, "--require-encryption=/a,/b")
    c_dir = _top_dir(img, b"c")
    assert not any(p["inode"] in _below(parent, c_dir) for p in probs)


def test_wrong_key_and_usage(run, ab_image):
    img, _k, wrong = ab_image
    res, _p = _report(run, img, "--key-file", str(wrong), "--require-encryption=/a/sub")
    assert res.returncode == 4, res.stderr
    for bad in ("--require-encryption=", "--require-encryption=,", "--require-encryption=a/b"):
        assert run("check", bad, str(img)).returncode == 2, bad


def test_directory_cycle_terminates(run, ab_image, tmp_path):
    """Hostile image: /b/sub's DIR_INDEX entry for big.bin patched to point at
    /b itself (a directory cycle).  The walk ends, each inode reported once."""
    import btrfs_ondisk as bo
    src, _k, _w = ab_image
    img = tmp_path / "cycle.img"
    fixtures.sparse_copy(src, img)
    modes, parent = _inodes(img)
    b = _top_dir(img, b"b")
    sub = next(i for i, p in parent.items() if p == b and stat.S_ISDIR(modes[i][0]))
    patched = False
    with bo.Image(img, writable=True) as im:
        root, _lvl = im.tree_roots()[5]
        for blk in im.walk(root, 5):
            if blk.level:
                continue
            for it in blk.items():
                if it.key.objectid == sub and it.key.type == 96:
                    o = blk.item_data_offset(it)
                    bo.put(blk.data, o, "<Q", b)       # location objectid
                    bo.put(blk.data, o + 8, "B", 1)    # INODE_ITEM
                    im.write_block(blk)
                    patched = True
    assert patched
    res, probs = _report(run, img, "--require-encryption=/b")
    got = [(p["root"], p["inode"]) for p in probs if p["code"] == "NOT_ENCRYPTED"]
    assert res.returncode == 1 and len(got) == len(set(got))
    want = {(5, i) for i in _plain(modes, _below(parent, b))}
    big = {(5, i) for i, p in parent.items() if p == sub}
    assert set(got) == want - big, (set(got), want)

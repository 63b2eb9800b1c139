"""decrypt is the exact reverse of encrypt for small files (issue 15 point 9).

An encrypted regular file has no inline extents, so encrypt moves the inline
data mkfs.btrfs --rootdir made into regular extents.  decrypt puts it back:
a file whose whole data is one regular extent at offset 0, with i_size above
0, below a sector and within BTRFS_MAX_INLINE_DATA_SIZE (mkfs.btrfs
--rootdir's rule), becomes inline again, and the freed extent goes in the
same transaction (extent item, csums, free space).

Oracles (not our tool): btrfs-progs `dump-tree -t fs` of the original and of
the round trip, normalized (generations, transids, times, bytenrs, item
offsets and the leaf/node boundaries dropped), must be identical item for
item; `btrfs check --check-data-csum` clean; `btrfs restore` of the round
trip equals the source tree.  Symlinks are left out of the tree: mkfs 6.2
stores their targets with a trailing NUL (Documentation/format.rst 14),
which a round trip does not keep.
"""

import filecmp
import os
import re
import subprocess

import pytest

import fixtures
from test_encrypt import KEY_A, must, write_key

SECTOR = 4096


def _sizes(nodesize):
    max_inline = nodesize - 147          # BTRFS_MAX_INLINE_DATA_SIZE
    limit = min(SECTOR - 1, max_inline)  # the largest file mkfs --rootdir stores inline
    return sorted({0, 1, 2, 100, 1000, 2047, 2048, 2049, 3000, limit - 1, limit, limit + 1,
                   SECTOR - 1, SECTOR, SECTOR + 1, 3 * SECTOR + 5})


def _tree(base, nodesize):
    """Many small files (some empty, some at the inline limit, one past it)."""
    import random
    rng = random.Random(nodesize)
    base.mkdir()
    for i, n in enumerate(_sizes(nodesize)):
        (base / ("s%05d.bin" % n)).write_bytes(rng.randbytes(n))
        (base / ("z%05d.bin" % n)).write_bytes(bytes(n))
    sub = base / "many"
    sub.mkdir()
    for i in range(150):
        n = 0 if i % 10 == 0 else rng.randrange(1, 2100)
        (sub / ("f%03d" % i)).write_bytes(rng.randbytes(n))
    deep = sub / "deep" / "er"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_bytes(b"x" * 777)
    for p in [base] + [p for p in base.rglob("*")]:
        os.utime(p, (fixtures.FIXED_TIME, fixtures.FIXED_TIME))
    return base


_DROP = re.compile(r"^(node|leaf|fs uuid|chunk uuid|btrfs-progs|fs tree key)|^\s+key \(.*\) block ")
_SUBS = [
    (re.compile(r"item \d+ key"), "item key"),
    (re.compile(r"itemoff \d+ "), ""),
    (re.compile(r"\b(generation|transid|gen|sequence) \d+"), r"\1 N"),
    (re.compile(r"\b(bytenr|disk byte|byte|block) \d+"), r"\1 N"),
    (re.compile(r"\b([acmo]time) [-\d.]+ \([^)]*\)"), r"\1 T"),
    (re.compile(r"^bytes used \d+"), "bytes used N"),
]


def normalized_fs_tree(image):
    """dump-tree -t fs, item by item, without what a rewrite may change."""
    out = []
    for line in fixtures.dump_tree_progs(image, "-t", "fs").splitlines():
        if _DROP.search(line):
            continue
        for rx, rep in _SUBS:
            line = rx.sub(rep, line)
        out.append(line)
    return out


def inline_count(lines):
    return sum(1 for ln in lines if "type 0 (inline)" in ln)


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b)
    bad = cmp.left_only + cmp.right_only + cmp.funny_files
    _m, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    bad += mismatch + errors
    for d in cmp.common_dirs:
        bad += [os.path.join(d, x) for x in _same_tree(os.path.join(a, d), os.path.join(b, d))]
    return bad


@pytest.mark.parametrize("nodesize", [4096, 16384])
def test_decrypt_restores_inline_layout(run, tmp_path, nodesize):
    key = write_key(tmp_path / "a.key", KEY_A)
    src = _tree(tmp_path / "src", nodesize)
    img = fixtures.mkfs(tmp_path / "r.img", src, nodesize=nodesize)
    orig = normalized_fs_tree(img)
    n_inline = inline_count(orig)
    limit = min(SECTOR - 1, nodesize - 147)
    # The fixture's own premise: mkfs inlined exactly the files 1..limit bytes.
    want = sum(2 for n in _sizes(nodesize) if 0 < n <= limit) + \
        sum(1 for f in (src / "many").iterdir() if f.is_file() and 0 < f.stat().st_size <= limit) + 1
    assert n_inline == want, (n_inline, want)

    must(run("encrypt", "--key-file", key, img), "encrypt")
    assert inline_count(normalized_fs_tree(img)) == 0, "encrypted files kept inline extents"
    must(run("decrypt", "--key-file", key, img), "decrypt")

    back = normalized_fs_tree(img)
    assert inline_count(back) == n_inline
    if back != orig:
        import difflib
        diff = list(difflib.unified_diff(orig, back, "original", "round trip", lineterm="", n=2))
        pytest.fail("dump-tree -t fs differs after the round trip:\n" + "\n".join(diff[:80]))

    res = fixtures.btrfs_check(img, "--check-data-csum")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = tmp_path / "restored"
    out.mkdir()
    res = subprocess.run(["btrfs", "restore", "-x", str(img), str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _same_tree(src, out) == []


def test_shared_small_extent_stays_regular(run, tmp_path):
    """A small extent that another file also references is left regular:
    inlining it would unshare it.  Encrypt, reflink the small file, decrypt:
    both files keep the one shared extent and check stays clean."""
    key = write_key(tmp_path / "a.key", KEY_A)
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_bytes(b"s" * 1500)
    img = fixtures.mkfs(tmp_path / "r.img", src)
    must(run("encrypt", "--key-file", key, img), "encrypt")
    res = run("reflink", "--create", "--key-file", key, "/small", "/copy", img)
    must(res, "reflink")
    must(run("decrypt", "--key-file", key, img), "decrypt")
    lines = fixtures.dump_tree_progs(img, "-t", "fs")
    assert "type 0 (inline)" not in lines, "a shared extent was inlined"
    res = fixtures.btrfs_check(img, "--check-data-csum")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]

"""Mirror fallback on single-device DUP images (issue 14, build point 3).

mkfs.btrfs --rootdir images with DUP metadata and DUP data.  One copy of an
fs-tree leaf, or of a data sector, is damaged (copy 1, then copy 2):

* our `check` exits 0 and names the bad copy (TREE_BLOCK_BAD_COPY or, with
  --check-data-csum, DATA_BAD_COPY: device, physical offset, logical
  address), and `btrfs check` (the system's and 6.14) agrees: exit 0 for a
  tree block; for data it names the same mirror and address (it counts a
  bad data copy as an error, exit 1: a documented difference);
* restore gives back the source tree, dump-tree and encrypt --dry-run work;
* both copies damaged: the block is unreadable as before.

As root: an encrypt + decrypt round trip over an image with one bad leaf
copy leaves nothing for a kernel scrub to fix, and the mounted tree equals
the source.
"""

import hashlib
import json
import os
import re
import subprocess

import pytest

import btrfs_ondisk as bo
import fixtures
import progs614
import reflink_lib as L


def tree_digest(top):
    """relative path -> (mode, size, sha256) of every file, directory, symlink."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            d = [st.st_mode]
            if os.path.islink(p):
                d.append(os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    d += [st.st_size, hashlib.sha256(f.read()).hexdigest()]
            out[os.path.relpath(p, top)] = tuple(d)
    return out


@pytest.fixture(scope="module")
def dup_image(tmp_path_factory, sample_tree):
    d = tmp_path_factory.mktemp("mirror")
    img = fixtures.mkfs(d / "dup.img", rootdir=sample_tree, nodesize=4096, size_mib=256,
                        extra=("-m", "dup", "-d", "dup"))
    return img


def fs_leaf(img):
    """(logical, [physical of each copy]) of an fs-tree leaf that is not the root."""
    with bo.Image(img) as im:
        blocks = im.walk(im.tree_roots()[5][0], 5)
        leaves = [b for b in blocks if b.level == 0]
        assert len(leaves) > 2 and len(blocks) > len(leaves), "the fs tree needs a node"
        leaf = leaves[len(leaves) // 2]
        return leaf.logical, im.phys(leaf.logical)


def data_sector(img):
    """(logical, [physical of each copy]) of the first sector of a regular extent."""
    out = fixtures.dump_tree_progs(img, "-t", "5")
    logical = int(re.findall(r"disk byte (\d+) nr \d+", out)[-1])
    assert logical
    with bo.Image(img) as im:
        return logical, im.phys(logical)


def damage(img, physicals, off=100):
    with open(img, "r+b") as f:
        for p in physicals:
            f.seek(p + off)
            f.write(b"\xa5" * 32)


def check_json(run, img, *args):
    res = run("--format", "json", "check", *args, str(img), timeout=600)
    doc = json.loads(res.stdout) if res.stdout.strip() else {}
    return res.returncode, doc, res


def problems(doc, code):
    return [p for p in doc.get("problems", []) if p["code"] == code]


def progs_checks(img, *args):
    """(system btrfs check, btrfs 6.14 check) CompletedProcesses; 6.14 may skip."""
    sysres = fixtures.btrfs_check(img, *args)
    try:
        p = progs614.path()
    except pytest.skip.Exception:
        return sysres, None
    res = subprocess.run([p, "check", *args, str(img)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=300)
    return sysres, res


def readers_work(run, img, tmp_path, source):
    out = tmp_path / "restored"
    res = run("restore", str(img), str(out), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert tree_digest(out) == tree_digest(source)
    res = run("inspect", "dump-tree", str(img), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))
    res = run("encrypt", "--dry-run", "--key-file", str(key), str(img), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.parametrize("copy", [0, 1], ids=["copy1", "copy2"])
def test_tree_block_one_copy_bad(run, dup_image, copy_image, tmp_path, sample_tree, copy):
    img = copy_image(dup_image)
    logical, phys = fs_leaf(img)
    assert len(phys) == 2
    damage(img, [phys[copy]])
    rc, doc, res = check_json(run, img, "--check-data-csum")
    assert rc == 0, res.stdout[-3000:]
    assert not [p for p in doc["problems"] if p["severity"] == "error"]
    bad = problems(doc, "TREE_BLOCK_BAD_COPY")
    assert len(bad) == 1, doc["problems"]
    assert bad[0]["severity"] == "warning" and bad[0]["bytenr"] == logical
    assert ("mirror %d of the tree block (device 1 physical %d) is bad, mirror %d is good"
            % (copy + 1, phys[copy], 2 - copy)) in bad[0]["message"]
    assert "checksum mismatch" in bad[0]["message"]
    text = run("check", str(img))
    assert text.returncode == 0
    assert "WARNING: [TREE_BLOCK_BAD_COPY] bytenr %d: mirror %d" % (logical, copy + 1) \
        in text.stderr + text.stdout
    for r in progs_checks(img, "--check-data-csum"):
        if r is not None:
            assert r.returncode == 0, r.stderr[-2000:]
    readers_work(run, img, tmp_path, sample_tree)


@pytest.mark.parametrize("copy", [0, 1], ids=["copy1", "copy2"])
def test_data_one_copy_bad(run, dup_image, copy_image, tmp_path, sample_tree, copy):
    img = copy_image(dup_image)
    logical, phys = data_sector(img)
    assert len(phys) == 2
    damage(img, [phys[copy]], off=10)
    rc, doc, res = check_json(run, img)
    assert rc == 0 and not problems(doc, "DATA_BAD_COPY")     # no data scrub without the option
    rc, doc, res = check_json(run, img, "--check-data-csum")
    assert rc == 0, res.stdout[-3000:]
    assert not [p for p in doc["problems"] if p["severity"] == "error"]
    bad = problems(doc, "DATA_BAD_COPY")
    assert len(bad) == 1, doc["problems"]
    assert bad[0]["severity"] == "warning" and bad[0]["bytenr"] == logical
    assert ("at logical %d mirror %d (device 1 physical %d)" % (logical, copy + 1, phys[copy])) \
        in bad[0]["message"]
    # btrfs check names the same copy; it counts it as an error (documented).
    for r in progs_checks(img, "--check-data-csum"):
        if r is not None:
            assert "mirror %d bytenr %d csum" % (copy + 1, logical) in r.stderr + r.stdout
            assert "mirror %d bytenr" % (2 - copy) not in r.stderr + r.stdout
    readers_work(run, img, tmp_path, sample_tree)


def test_both_copies_bad(run, dup_image, copy_image, tmp_path):
    img = copy_image(dup_image)
    logical, phys = fs_leaf(img)
    damage(img, phys)
    rc, doc, res = check_json(run, img)
    assert rc == 1
    bad = problems(doc, "TREE_BLOCK_BAD")
    assert [p["bytenr"] for p in bad] == [logical]
    assert not problems(doc, "TREE_BLOCK_BAD_COPY")
    assert fixtures.btrfs_check(img).returncode != 0
    # Restore skips what hangs below the leaf (1) or stops (3), as before.
    res = run("restore", str(img), str(tmp_path / "out"), timeout=600)
    assert res.returncode in (1, 3) and "checksum mismatch" in res.stderr
    assert run("inspect", "dump-tree", "-t", "5", str(img)).returncode == 3

    img = copy_image(dup_image)
    logical, phys = data_sector(img)
    damage(img, phys, off=10)
    rc, doc, res = check_json(run, img, "--check-data-csum")
    assert rc == 1
    assert [p["bytenr"] for p in problems(doc, "DATA_CSUM_MISMATCH")] == [logical, logical]
    assert not problems(doc, "DATA_BAD_COPY")


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("copy", [0, 1], ids=["copy1", "copy2"])
def test_round_trip_kernel_scrub(run, tmp_path, sample_tree, copy):
    """DUP metadata, SINGLE data (encrypt refuses DUP data): one bad leaf copy."""
    img = fixtures.mkfs(tmp_path / "img", rootdir=sample_tree, nodesize=4096, size_mib=256,
                        extra=("-m", "dup"))
    logical, phys = fs_leaf(img)
    damage(img, [phys[copy]])
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))
    for cmd in ("encrypt", "decrypt"):
        res = run(cmd, "--key-file", str(key), str(img), timeout=900)
        assert res.returncode == 0, res.stderr[-2000:]
    rc, doc, res = check_json(run, img, "--check-data-csum")
    assert rc == 0, res.stdout[-3000:]
    # The leaf was rewritten (copy-on-write, to both copies): no bad copy is left.
    assert not problems(doc, "TREE_BLOCK_BAD_COPY")
    assert fixtures.btrfs_check(img, "--check-data-csum").returncode == 0
    with L.mounted(img, tmp_path / "mnt", ro=False) as (mnt, dev, mark):
        res = L.sh("btrfs", "scrub", "start", "-B", str(mnt), check=False, timeout=600)
        text = res.stdout + res.stderr
        assert res.returncode == 0 and re.search(r"Error summary:\s+no errors found", text), text
        assert tree_digest(mnt) == tree_digest(sample_tree)

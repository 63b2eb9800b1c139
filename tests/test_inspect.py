"""inspect resolve-logical and inspect file against independent ground truth.

Ground truth comes from btrfs-progs (``btrfs inspect-internal dump-tree``) and
from the files of the source tree that mkfs.btrfs --rootdir copied: for a data
address, the bytes stored in the image at that address (mapped through the
chunk items that progs prints, not through our code) must equal the bytes of
the file our tool names, at the offset it names.
"""

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import fixtures  # noqa: E402

BIN = os.environ.get("EXTCRYPT_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="EXTCRYPT_BIN is not set")
SECTOR = 4096


def run(*args, check_rc=None):
    res = subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=120)
    assert res.returncode >= 0, "killed by signal %d: %s" % (-res.returncode, args)
    assert res.returncode < 80, "sanitizer report:\n" + res.stderr.decode(errors="replace")
    if check_rc is not None:
        assert res.returncode == check_rc, (args, res.returncode, res.stderr)
    return res


def progs_dump(img, *args):
    res = subprocess.run(["btrfs", "inspect-internal", "dump-tree", *args, str(img)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, errors="surrogateescape",
                         check=True, timeout=300)
    return res.stdout


def parse_chunks(img):
    """(logical, length, physical) of every chunk, from progs' chunk tree dump."""
    chunks = []
    cur = None
    for line in progs_dump(img, "-t", "chunk").splitlines():
        m = re.search(r"key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)", line)
        if m:
            cur = [int(m.group(1)), None, None]
            continue
        m = re.search(r"^\s+length (\d+) owner", line)
        if m and cur:
            cur[1] = int(m.group(1))
            continue
        m = re.search(r"stripe 0 devid \d+ offset (\d+)", line)
        if m and cur and cur[2] is None:
            cur[2] = int(m.group(1))
            chunks.append(tuple(cur))
            cur = None
    return chunks


def read_logical(img, chunks, logical, length):
    for start, size, phys in chunks:
        if start <= logical < start + size:
            with open(img, "rb") as f:
                f.seek(phys + logical - start)
                return f.read(length)
    raise AssertionError("logical %d not in any chunk" % logical)


def parse_file_extents(img):
    """Regular EXTENT_DATA items of the FS tree, from progs' dump-tree."""
    items = []
    cur = None
    for line in progs_dump(img, "-t", "fs").splitlines():
        m = re.search(r"key \((\d+) EXTENT_DATA (\d+)\)", line)
        if m:
            cur = {"ino": int(m.group(1)), "pos": int(m.group(2))}
            continue
        if cur is None:
            continue
        m = re.search(r"extent data disk byte (\d+) nr (\d+)", line)
        if m:
            cur["disk"], cur["disk_nr"] = int(m.group(1)), int(m.group(2))
            continue
        m = re.search(r"extent data offset (\d+) nr (\d+) ram (\d+)", line)
        if m:
            cur["off"], cur["nr"] = int(m.group(1)), int(m.group(2))
            continue
        m = re.search(r"extent compression (\d+)", line)
        if m and "disk" in cur:
            cur["comp"] = int(m.group(1))
            if cur["disk"]:
                items.append(cur)
            cur = None
    return items


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A sample tree and mkfs images of it: every csum type x nodesize."""
    base = tmp_path_factory.mktemp("inspect")
    tree = base / "tree"
    fixtures.make_sample_tree(tree, seed=3, big_mib=3, dir_entries=40)
    out = []
    for csum in fixtures.CSUM_TYPES:
        for ns in fixtures.NODESIZES:
            img = base / ("%s-%d.img" % (csum, ns))
            fixtures.mkfs(img, tree, csum=csum, nodesize=ns, size_mib=160)
            out.append(img)
    return tree, out


@pytest.mark.slow  # 100 runs against btrfs-progs
def test_resolve_logical_100_random_addresses(images):
    tree, imgs = images
    rng = random.Random(42)
    for img in imgs:
        chunks = parse_chunks(img)
        items = [i for i in parse_file_extents(img) if i["comp"] == 0]
        assert items, "no regular extents in %s" % img
        for _ in range(100):
            it = rng.choice(items)
            delta = rng.randrange(it["nr"])
            logical = it["disk"] + it["off"] + delta
            res = run("--format", "json", "inspect", "resolve-logical", str(logical),
                      str(img), check_rc=0)
            doc = json.loads(res.stdout)
            assert doc["type"] == "data"
            refs = doc["references"]
            want = (it["ino"], it["pos"] + delta)
            got = [(r["inode"], r["offset"]) for r in refs]
            assert want in got, (img, logical, want, got)
            # Content: the stored bytes equal the named file's bytes there.
            for r in refs:
                assert r["root"] == 5 and r["path"], r
                src = tree / r["path"].lstrip("/")
                with open(src, "rb") as f:
                    f.seek(r["offset"])
                    expect = f.read(64)
                stored = read_logical(img, chunks, logical, len(expect))
                assert stored == expect, (img, logical, r)


def test_resolve_logical_text_and_errors(images):
    _, imgs = images
    img = imgs[0]
    it = parse_file_extents(img)[0]
    res = run("inspect", "resolve-logical", str(it["disk"]), str(img), check_rc=0)
    assert re.match(r"root 5 inode %d offset %d path /" % (it["ino"], it["pos"]),
                    res.stdout.decode())
    # Unmapped and unallocated addresses: exit 1 with one ERROR line.
    for logical in ("1", str(2 ** 60)):
        res = run("inspect", "resolve-logical", logical, str(img), check_rc=1)
        err = res.stderr.decode().splitlines()
        assert len([l for l in err if l.startswith("ERROR: ")]) == 1, err
    run("inspect", "resolve-logical", "notanumber", str(img), check_rc=2)


def test_resolve_logical_metadata(images):
    _, imgs = images
    img = imgs[1]
    root_leaf = int(re.search(r"root tree\n(?:node|leaf) (\d+)", progs_dump(img, "-t", "root")).group(1))
    res = run("--format", "json", "inspect", "resolve-logical", str(root_leaf), str(img),
              check_rc=0)
    doc = json.loads(res.stdout)
    assert doc["type"] == "metadata" and doc["owner"] == 1


def test_inspect_file_matches_progs_and_stat(images):
    tree, imgs = images
    for img in (imgs[0], imgs[-1]):
        by_ino = {}
        for it in parse_file_extents(img):
            by_ino.setdefault(it["ino"], []).append(it)
        checked = 0
        for dirpath, _, files in os.walk(tree):
            for name in files:
                src = Path(dirpath) / name
                st = os.lstat(src)
                if not src.is_file() or src.is_symlink():
                    continue
                rel = "/" + str(src.relative_to(tree))
                res = run("--format", "json", "inspect", "file", rel, str(img), check_rc=0)
                doc = json.loads(res.stdout)
                # A hard-linked inode is named by its first reference.
                assert os.path.samefile(tree / doc["path"].lstrip("/"), src), (doc["path"], rel)
                assert doc["size"] == st.st_size
                assert doc["mode"] == st.st_mode
                assert doc["nlink"] == st.st_nlink
                assert doc["encrypted"] is False
                ours = [(e["file-offset"], e["disk-bytenr"], e["num-bytes"])
                        for e in doc["extents"] if e["type"] == "regular"]
                theirs = [(i["pos"], i["disk"], i["nr"]) for i in by_ino.get(doc["inode"], [])]
                assert ours == theirs, rel
                # Same inode through --root/--inode, text form.
                txt = run("inspect", "file", "--root", "5", "--inode", str(doc["inode"]),
                          str(img), check_rc=0).stdout.decode()
                assert "inode: %d\n" % doc["inode"] in txt
                assert txt.count("\nextent: ") + txt.startswith("extent: ") == len(doc["extents"])
                checked += 1
        assert checked >= 10


def test_inspect_file_dangling_entry_is_corruption(images, tmp_path):
    """A path whose directory entries name an inode the tree does not have is
    a corrupt image (exit 3, one ERROR line), not a missing file (exit 1)."""
    import struct
    import btrfs_ondisk as bo
    from leafedit import Editor
    tree, imgs = images
    img = tmp_path / "dangling.img"
    fixtures.sparse_copy(str(imgs[0]), img)
    name = sorted(p.name for p in tree.iterdir() if p.is_file())[0]
    gone = 0x7ffffff0
    with Editor(img) as ed:
        ino = ed.lookup("/" + name)
        for ktype in (bo.DIR_ITEM, bo.DIR_INDEX):
            for leaf, it in ed.items(bo.FS_TREE, 256, ktype):
                raw = leaf.item_data(it)
                if struct.unpack_from("<Q", raw, 0)[0] == ino:
                    ed.patch_fmt(bo.FS_TREE, tuple(it.key), 0, "<Q", gone)
    res = run("inspect", "file", "/" + name, str(img), check_rc=3)
    err = res.stderr.decode()
    assert err.count("ERROR: ") == 1 and str(gone) in err, err
    # Asked for by number, a missing inode is still just not there.
    run("inspect", "file", "--inode", str(gone), str(img), check_rc=1)


def test_inspect_file_errors(images):
    _, imgs = images
    img = str(imgs[0])
    res = run("inspect", "file", "/no/such/file", img, check_rc=1)
    assert res.stderr.decode().startswith("ERROR: ")
    run("inspect", "file", "--root", "5", "--inode", "999999999", img, check_rc=1)
    run("inspect", "file", "--root", "77", "--inode", "256", img, check_rc=1)
    run("inspect", "file", "--root", "5", img, check_rc=2)
    run("inspect", "file", img, check_rc=2)


def test_resolve_logical_kernel_images(kernel_image, run):
    """100 random data addresses per kernel-made image: reflinks and
    snapshots give several references; compressed extents name the item."""
    img = kernel_image.path
    rng = random.Random(7)
    chunks = parse_chunks(img)
    items = [i for i in parse_file_extents(img)]
    assert items
    for _ in range(100):
        it = rng.choice(items)
        if it["comp"]:
            logical, want = it["disk"], (it["ino"], it["pos"])
        else:
            delta = rng.randrange(it["nr"])
            logical, want = it["disk"] + it["off"] + delta, (it["ino"], it["pos"] + delta)
        res = run("--format", "json", "inspect", "resolve-logical", str(logical), str(img))
        assert res.returncode == 0, res.stderr
        refs = json.loads(res.stdout)["references"]
        got = [(r["inode"], r["offset"]) for r in refs if r["root"] == 5]
        # The FS tree item we drew from must be among the references
        # (snapshots and subvolumes add their own).
        assert want in got or any(r["root"] != 5 for r in refs), (logical, want, refs)
        if not it["comp"]:
            stored = read_logical(img, chunks, logical, 16)
            assert len(stored) == 16

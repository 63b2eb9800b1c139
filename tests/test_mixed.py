"""Mixed block groups (`mkfs.btrfs --mixed`, issue 13 point 3).

On a filesystem with the MIXED_GROUPS feature, data and metadata share block
groups of type DATA|METADATA, and a new chunk is of that type.  The images
come from mkfs.btrfs --mixed --rootdir, whose mixed block groups are sized
to fit the files, with one file larger than their free space: encrypt can
only finish by allocating a new mixed chunk.  Oracles: btrfs check
--check-data-csum (6.2 and 6.14), the chunk items, device extents and block
group items as btrfs-progs dump-tree reads them, btrfs restore for the
content, and the kernel (as root: read-write mount, scrub, new writes).
"""

import os
import re

import pytest

import fixtures
from test_chunk_alloc import (MiB, assert_consistent, chunk_sum, digests, kernel_accepts,
                              make_tree, progs_check, progs_restore_matches, write_key)

MIXED = "DATA|METADATA"


def mixed_image(tmp_path, csum, size_mib=256, big_mib=40):
    tree = make_tree(tmp_path / "tree", big_mib=big_mib)
    img = fixtures.mkfs(tmp_path / "m.img", tree, csum=csum, nodesize=4096, size_mib=size_mib,
                        extra=("--mixed",))
    return img, tree


def group_types(image):
    """The chunk types, without the profile btrfs-progs appends ("|single")."""
    chunks, _bgs = assert_consistent(image)
    return [c["type"].replace("|single", "").replace("|DUP", "") for c in chunks]


@pytest.mark.parametrize("csum", ["crc32c", "xxhash"])
def test_mixed_round_trip(run, tmp_path, csum):
    key = write_key(tmp_path / "k")
    img, tree = mixed_image(tmp_path, csum)
    before = group_types(img)
    assert any(t == MIXED for t in before) and not any(t in ("DATA", "METADATA") for t in before)
    res = run("encrypt", "--key-file", key, img, timeout=300)
    assert res.returncode == 0, res.stderr
    # btrfs-progs cannot open an encrypted image (incompat bit 0x8000): our
    # dump-tree reads the chunk types here; progs judge the decrypted result.
    text = run("inspect", "dump-tree", "-t", "chunk", img).stdout
    during = [t.replace("|single", "") for t in re.findall(r"stripe_len \d+ type (\S+)", text)]
    assert len([t for t in during if t == MIXED]) > len([t for t in before if t == MIXED]), \
        "the big file needs a new mixed chunk"
    assert not any(t in ("DATA", "METADATA") for t in during), during
    res = run("check", "--check-data-csum", "--key-file", key, img, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = tmp_path / "out"
    res = run("restore", "--key-file", key, img, out, timeout=300)
    assert res.returncode == 0, res.stderr
    assert digests(out) == digests(tree)
    res = run("decrypt", "--key-file", key, img, timeout=300)
    assert res.returncode == 0, res.stderr
    progs_check(img)
    assert not any(t in ("DATA", "METADATA") for t in group_types(img))
    progs_restore_matches(img, tree, tmp_path / "progs-out")


def test_mixed_full_image_refused_or_grown(run, tmp_path):
    """A file larger than the whole filesystem's room: refused before any
    write with the numbers; with --grow the image grows and the job ends."""
    key = write_key(tmp_path / "k")
    img, tree = mixed_image(tmp_path, "crc32c", size_mib=160, big_mib=100)
    with open(img, "rb") as f:
        original = f.read()
    res = run("encrypt", "--key-file", key, img, timeout=300)
    assert res.returncode == 1, res.stderr
    assert "not enough free" in res.stderr and "--grow" in res.stderr, res.stderr
    with open(img, "rb") as f:
        assert f.read() == original, "a refused run must not write"
    res = run("encrypt", "--grow", "--key-file", key, img, timeout=300)
    assert res.returncode == 0, res.stderr
    assert os.path.getsize(img) > 160 * MiB
    res = run("decrypt", "--key-file", key, img, timeout=300)
    assert res.returncode == 0, res.stderr
    progs_check(img)
    assert not any(t in ("DATA", "METADATA") for t in group_types(img))


@pytest.mark.kernel
def test_mixed_kernel_uses_decrypted_image(run, tmp_path):
    key = write_key(tmp_path / "k")
    img, tree = mixed_image(tmp_path, "crc32c")
    before = chunk_sum(img)
    for cmd in ("encrypt", "decrypt"):
        res = run(cmd, "--key-file", key, img, timeout=300)
        assert res.returncode == 0, res.stderr
    assert chunk_sum(img) <= before * 1.1 + 64 * MiB
    kernel_accepts(img, tree, tmp_path / "mnt", 20 * MiB)

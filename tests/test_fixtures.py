"""The test infrastructure checks itself (no binary needed).

Fixture images must be what the other suites assume: clean for
`btrfs check --check-data-csum`, made with the requested csum type and
nodesize, with the sample tree's special files present; the independent
Python parser (btrfs_ondisk) must verify every checksum of every block for
all four csum types, since the corruption suite relies on it to re-checksum
its edits.
"""

import filecmp
import hashlib
import os

import pytest

import btrfs_ondisk as od
import fixtures


def test_csum_vectors():
    assert od.crc32c(b"123456789") == 0xe3069283
    assert od.csum(od.CSUM_CRC32C, b"123456789")[:4] == bytes.fromhex("839206e3")
    assert od.csum(od.CSUM_XXHASH, b"")[:8] == (0xef46db3751d8e999).to_bytes(8, "little")
    assert od.csum(od.CSUM_SHA256, b"abc") == hashlib.sha256(b"abc").digest()
    # BLAKE2b with digest length 32, not a truncated BLAKE2b-512.
    assert od.csum(od.CSUM_BLAKE2, b"abc").hex().startswith("bddd813c634239723171ef3fee98579b")
    assert od.csum(od.CSUM_BLAKE2, b"abc") != hashlib.blake2b(b"abc").digest()[:32]


def test_sample_tree_contents(sample_tree, sample_manifest):
    kinds = set(sample_manifest.values())
    assert {"empty", "inline", "regular", "big", "symlink", "hardlink", "fifo",
            "dir"} <= kinds
    assert os.path.getsize(sample_tree / "inline-max.txt") == fixtures.INLINE_MAX
    assert os.path.getsize(sample_tree / "not-inline-2001.bin") == fixtures.INLINE_MAX + 1
    assert len(os.listdir(sample_tree / "bigdir")) >= 300
    assert os.path.exists(sample_tree / "names" / fixtures.NAME_255)
    assert os.path.exists(sample_tree / "names" / fixtures.NAME_UTF8_255)
    assert os.stat(sample_tree / "hardlinks/a").st_nlink == 3
    assert len(os.readlink(sample_tree / "links/long")) > 2000


def test_sample_tree_is_deterministic(tmp_path):
    a = fixtures.make_sample_tree(tmp_path / "a", seed=5, big_mib=1, dir_entries=20)
    b = fixtures.make_sample_tree(tmp_path / "b", seed=5, big_mib=1, dir_entries=20)
    assert a == b
    for rel, kind in a.items():
        if kind in ("inline", "regular", "big"):
            assert filecmp.cmp(tmp_path / "a" / rel, tmp_path / "b" / rel, shallow=False)


def test_mkfs_image(mkfs_image, btrfs_check):
    res = btrfs_check(mkfs_image, "--check-data-csum")
    assert res.returncode == 0, res.stdout + res.stderr
    with od.Image(mkfs_image) as img:
        assert img.csum_type == od.CSUM_NAMES[mkfs_image.csum]
        assert img.nodesize == mkfs_image.nodesize
        assert img.super("csum") == od.csum(img.csum_type, img.sb[0x20:0x1000])
        trees = img.all_trees()
        assert {od.ROOT_TREE, od.CHUNK_TREE, od.EXTENT_TREE, od.FS_TREE,
                od.CSUM_TREE} <= set(trees)
        for tid, blocks in trees.items():
            for blk in blocks:
                assert bytes(blk.data[:32]) == img.block_csum(blk.data), (tid, blk)
                assert blk.hdr("bytenr") == blk.logical
                if blk.parent is not None:
                    ptr = blk.parent.ptrs()[blk.parent_slot]
                    assert ptr.generation == blk.generation
                    assert ptr.key == blk.first_key()


def test_sparse_copy(make_mkfs_image, tmp_path):
    src = make_mkfs_image("crc32c", 16384)
    dst = fixtures.sparse_copy(src, tmp_path / "copy.img")
    assert filecmp.cmp(src, dst, shallow=False)
    assert os.stat(dst).st_blocks <= os.stat(src).st_blocks + 64


@pytest.mark.kernel
def test_kernel_image(kernel_image, dump_tree_progs):
    # The fixture already ran btrfs check --check-data-csum; check the features.
    fs = dump_tree_progs(kernel_image, "-t", "fs")
    assert "prealloc data disk byte" in fs
    for algo in (1, 2, 3):
        assert "compression %d" % algo in fs
    roots = dump_tree_progs(kernel_image, "-t", "root")
    assert roots.count("ROOT_ITEM") >= 3 + 6      # subvol, snap, ro snap + globals
    extent = dump_tree_progs(kernel_image, "-t", "extent")
    assert "offset 18446744073709486080" in extent   # FICLONERANGE from 64 KiB

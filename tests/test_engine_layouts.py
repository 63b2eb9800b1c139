"""The write engine on the layouts mkfs does not use by default.

Non-skinny metadata (EXTENT_ITEM + tree_block_info for tree blocks) and the
v1 space cache instead of the free-space tree: many small changes through
the hidden `debug xattrs` command, then btrfs check (both modes) judges,
and the kernel reads the values back through a read-only mount when root.
"""

import os
import subprocess

import pytest

import fixtures
from conftest import root_skip_reason


@pytest.mark.parametrize("features", [["-O", "^skinny-metadata"],
                                      ["-R", "^free-space-tree"]],
                         ids=["no-skinny-metadata", "v1-space-cache"])
def test_engine_on_other_layouts(features, run, tmp_path, sample_tree):
    img = tmp_path / "l.img"
    fixtures.mkfs(img, sample_tree, nodesize=4096, extra=features)
    # 1500 adds in 3 commits, then most removed: splits, merges, allocation.
    res = run("debug", "xattrs", "--add", "1500", "--commit-every", "500", str(img))
    assert res.returncode == 0, res.stderr
    res = run("debug", "xattrs", "--remove", "1400", "--first", "50", str(img))
    assert res.returncode == 0, res.stderr
    for mode in ([], ["--mode", "lowmem"]):
        r = subprocess.run(["btrfs", "check", *mode, str(img)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0, r.stdout[-2000:]
    if "^skinny-metadata" in features:
        dump = subprocess.run(["btrfs", "inspect-internal", "dump-tree", "-t", "extent",
                               str(img)], stdout=subprocess.PIPE, text=True).stdout
        assert "METADATA_ITEM" not in dump and "tree block key" in dump
    if root_skip_reason() is None:
        mnt = tmp_path / "m"
        with fixtures.loop_mount(img, mnt, ro=True):
            names = [n for n in os.listxattr(mnt) if n.startswith("user.t")]
            assert len(names) == 100
            assert os.getxattr(mnt, "user.t1460") == bytes((1460 + i) % 256 for i in range(40))


def _super_generations(img):
    out = subprocess.run(["btrfs", "inspect-internal", "dump-super", str(img)],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    fields = dict(line.split(None, 1) for line in out.splitlines() if line.strip()
                  and len(line.split(None, 1)) == 2)
    return int(fields["generation"]), int(fields["cache_generation"])


@pytest.mark.kernel
def test_v1_space_cache_round_trip(run, tmp_path, sample_tree):
    """A kernel-written v1 space cache is left stale-but-marked by encrypt and
    decrypt: btrfs check skips it instead of validating it, and the kernel
    rebuilds it at the next read-write mount, after which btrfs check
    validates the rebuilt caches."""
    img = tmp_path / "v1.img"
    fixtures.mkfs(img, sample_tree, size_mib=256, extra=["-R", "^free-space-tree"])
    mnt = tmp_path / "m"
    with fixtures.loop_mount(img, mnt, ro=False, options=["space_cache=v1"]):
        (mnt / "more").write_bytes(os.urandom(256 << 10))
    gen, cache_gen = _super_generations(img)
    assert cache_gen == gen, "the kernel did not write a v1 cache"
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))
    for cmd in ("encrypt", "decrypt"):
        res = run(cmd, "--key-file", str(key), str(img))
        assert res.returncode == 0, res.stderr
    gen, cache_gen = _super_generations(img)
    assert cache_gen not in (gen, (1 << 64) - 1)
    for mode in ([], ["--mode", "lowmem"]):
        r = subprocess.run(["btrfs", "check", *mode, str(img)], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0, r.stdout[-2000:]
    with fixtures.loop_mount(img, mnt, ro=False, options=["space_cache=v1"]):
        (mnt / "after").write_bytes(b"x" * 10000)
    gen, cache_gen = _super_generations(img)
    assert cache_gen == gen, "the kernel did not rebuild the v1 cache"
    r = subprocess.run(["btrfs", "check", str(img)], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0 and "will be invalidated" not in r.stdout, r.stdout[-2000:]

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

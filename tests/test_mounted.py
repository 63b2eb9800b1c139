"""A mounted filesystem: the reading commands refuse it as btrfs check and
btrfs restore do (exit 1), and run with --force after a warning; the
writing commands refuse it always."""
import pytest

import fixtures

pytestmark = pytest.mark.kernel


def test_mounted_image_refused_unless_forced(make_mkfs_image, run, tmp_path, copy_image):
    img = copy_image(make_mkfs_image("crc32c", 16384).path)
    key = tmp_path / "key"
    key.write_bytes(bytes(range(64)))
    with fixtures.loop_mount(img, tmp_path / "m", ro=True):
        for cmd in (["check"], ["restore"]):
            args = cmd + [str(img)] + ([str(tmp_path / "out")] if cmd == ["restore"] else [])
            res = run(*args)
            assert res.returncode == 1, res.stderr
            assert "is mounted" in res.stderr and "--force" in res.stderr, res.stderr
            assert res.stderr.count("ERROR:") == 1, res.stderr
            assert not (tmp_path / "out").exists()
            forced = run(*(cmd + ["--force"] + args[1:]))
            assert forced.returncode == 0, forced.stderr
            assert "WARNING:" in forced.stderr and "stale" in forced.stderr
        res = run("encrypt", "--key-file", str(key), str(img))
        assert res.returncode == 1 and "mounted" in res.stderr, res.stderr
    # Unmounted again: no warning, no refusal.
    res = run("check", str(img))
    assert res.returncode == 0 and "WARNING: " not in res.stderr.replace(
        "WARNING: [FREE_SPACE_LEFTOVER]", ""), res.stderr

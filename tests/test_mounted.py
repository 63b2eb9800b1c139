"""A mounted filesystem: the reading commands refuse it as btrfs check and
btrfs restore do (exit 1), and run with --force after a warning; the
writing commands refuse it always."""
import os

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


def test_mounted_member_of_several_devices_refused(run, tmp_path):
    """A RAID1 filesystem of two image files mounted through the first loop
    device: mountinfo names only that one, and the second image (alone, or
    its loop device) is refused all the same, by the readers (exit 1 unless
    --force) and the writers; the kernel's own list of the devices of a
    mounted btrfs (/sys/fs/btrfs/FSID/devices) is the oracle."""
    from multidev import loops, mounted, sh
    files = [tmp_path / ("d%d.img" % i) for i in range(2)]
    for f in files:
        with open(f, "wb") as fh:
            fh.truncate(200 * 1024 * 1024)
    sh("mkfs.btrfs", "-q", "-f", "-d", "raid1", "-m", "raid1", *files)
    key = tmp_path / "key"
    key.write_bytes(bytes(range(64)))
    with loops(files) as devs, mounted(devs, tmp_path / "m", ro=True):
        fsid = sh("btrfs", "inspect-internal", "dump-super", files[0]).stdout.split("\nfsid")[1]
        listed = os.listdir("/sys/fs/btrfs/%s/devices" % fsid.split()[0])
        assert sorted(listed) == sorted(os.path.basename(d) for d in devs), listed
        mountinfo = open("/proc/self/mountinfo").read()
        assert devs[1] not in mountinfo, "the second device is named by mountinfo"
        for target in (str(files[1]), devs[1]):
            res = run("check", target)
            assert res.returncode == 1 and res.stderr.count("ERROR:") == 1, res.stderr
            assert "is mounted" in res.stderr and "--force" in res.stderr, res.stderr
            res = run("restore", target, str(tmp_path / "out"))
            assert res.returncode == 1 and "is mounted" in res.stderr, res.stderr
            assert not (tmp_path / "out").exists()
        res = run("encrypt", "--key-file", str(key), "--device", str(files[0]), str(files[1]))
        assert res.returncode == 1 and "mounted" in res.stderr, res.stderr
    res = run("check", "--device", str(files[0]), str(files[1]))
    assert res.returncode == 0, res.stderr

"""Filesystems of several devices (issue 14): --device, the stripe layer, degraded reads.

Oracles: the kernel makes each filesystem over 2-4 image files on loop
devices (mkfs.btrfs -m P -d P, a mount with -o device= for each, content
with compression, reflinks, subvolumes and snapshots, a large file that
spans many stripe elements), `btrfs check --check-data-csum` runs on the
loop devices, and a read-only kernel mount gives the manifest that our
restore must reproduce.  Our check must be clean on the same files.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import fixtures
from fixtures import MiB
from multidev import loops, mounted, sh
from test_restore import compare, manifest

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

# profile -> devices
PROFILES = {"raid1": 2, "raid0": 2, "raid10": 4, "raid1c3": 3, "raid1c4": 4,
            "raid5": 3, "raid6": 4}


def _populate(mnt, work):
    fixtures.populate_kernel_features(mnt, work, seed=14)
    rng = __import__("random").Random(14)
    with open(mnt / "big.bin", "wb") as f:       # many stripe elements
        f.write(rng.randbytes(9 * MiB + 12345))
    (mnt / "compress" / "zstd" / "big-text.txt").write_bytes(
        b"".join(b"line %d of a compressible file\n" % i for i in range(200000)))
    os.sync()


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(MiB), b""):
            h.update(b)
    return h.hexdigest()


class MultiFs:
    def __init__(self, profile, files, want, progs_check):
        self.profile, self.files, self.want, self.progs_check = profile, files, want, progs_check

    def args(self, drop=()):
        """The image, then --device for the others (devids in drop left out)."""
        keep = [f for i, f in enumerate(self.files) if i + 1 not in drop]
        out = [str(keep[0])]
        for f in keep[1:]:
            out += ["--device", str(f)]
        return out


_CACHE = {}


@pytest.fixture(scope="module")
def make_fs(tmp_path_factory, is_root):
    if not is_root:
        pytest.skip("needs root and loop devices")

    def make(profile):
        if profile in _CACHE:
            return _CACHE[profile]
        work = tmp_path_factory.mktemp("multidev-" + profile)
        files = [work / ("dev%d.img" % i) for i in range(PROFILES[profile])]
        for f in files:
            with open(f, "wb") as fh:
                fh.truncate(320 * MiB)
        with loops(files) as devs:
            res = sh("mkfs.btrfs", "-q", "-f", "-m", profile, "-d", profile, *devs, check=False)
            if res.returncode:
                pytest.skip("mkfs.btrfs -d %s: %s" % (profile, res.stderr.strip()))
            try:
                with mounted(devs, work / "mnt", ro=False) as mnt:
                    _populate(mnt, work)
            except RuntimeError as e:
                pytest.skip("this kernel does not mount %s: %s" % (profile, e))
            with mounted(devs, work / "mnt", ro=True) as mnt:
                want = manifest(mnt)
            progs = sh("btrfs", "check", "--check-data-csum", devs[0], check=False)
        _CACHE[profile] = MultiFs(profile, files, want, progs)
        return _CACHE[profile]
    return make


@pytest.mark.parametrize("profile", list(PROFILES))
def test_check_and_restore(make_fs, run, tmp_path, profile):
    fs = make_fs(profile)
    # The oracle first: btrfs check on the loop devices is clean.
    assert fs.progs_check.returncode == 0, fs.progs_check.stdout[-2000:] + fs.progs_check.stderr
    res = run("--format", "json", "check", "--check-data-csum", *fs.args())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    doc = json.loads(res.stdout)
    assert doc["counters"]["data-bytes-checked"] > 9 * MiB
    out = tmp_path / "out"
    res = run("restore", *fs.args(), str(out))
    assert res.returncode == 0, res.stderr
    compare(fs.want, manifest(out))
    # dump-tree takes the other devices as arguments; its chunk tree lists the profile.
    res = run("inspect", "dump-tree", "-t", "chunk", *[str(f) for f in fs.files])
    assert res.returncode == 0, res.stderr
    assert profile.upper() in res.stdout


def test_device_errors(make_fs, run, tmp_path, copy_image, make_mkfs_image):
    fs = make_fs("raid0")
    other = make_mkfs_image("crc32c", 16384).path
    base = [str(fs.files[0])]
    # A device of another filesystem, named.
    res = run("check", *base, "--device", str(other))
    assert res.returncode == 3 and res.stderr.count("ERROR:") == 1, res.stderr
    assert str(other) in res.stderr and "another filesystem" in res.stderr
    # The same device twice (and the image itself as a --device).
    for dup in (fs.files[1], fs.files[0]):
        res = run("check", *base, "--device", str(fs.files[1]), "--device", str(dup))
        assert res.returncode == 3 and res.stderr.count("ERROR:") == 1, res.stderr
        assert "given already" in res.stderr
    # A missing device of a profile without another copy: named by devid.
    res = run("restore", *base, str(tmp_path / "o"))
    assert res.returncode == 3 and res.stderr.count("ERROR:") == 1, res.stderr
    assert "devid 2 is missing" in res.stderr
    assert not (tmp_path / "o").exists()
    # A file that is no btrfs device at all.
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * (2 * MiB))
    res = run("check", *base, "--device", str(junk))
    assert res.returncode == 3 and str(junk) in res.stderr, res.stderr
    # Commands that write refuse a device missing before writing
    # (tests/test_multidev_write.py writes with every device given).
    img = copy_image(fs.files[0])
    before = digest(img)
    key = tmp_path / "k"
    key.write_bytes(os.urandom(64))
    res = run("encrypt", "--key-file", str(key), str(img))
    assert res.returncode == 1 and res.stderr.count("ERROR:") == 1, res.stderr
    assert "devid 2 is missing" in res.stderr and "nothing is written" in res.stderr
    assert digest(img) == before


@pytest.mark.parametrize("profile,missing", [("raid1", (2,)), ("raid1", (1,)),
                                             ("raid10", (2,)), ("raid10", (4,)),
                                             ("raid1c3", (1, 3)), ("raid1c4", (2, 3, 4))])
def test_degraded(make_fs, run, tmp_path, profile, missing):
    fs = make_fs(profile)
    args = fs.args(drop=missing)
    res = run("check", "--check-data-csum", *args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    for devid in missing:
        assert "devid %d of the filesystem is missing" % devid in res.stderr, res.stderr
    out = tmp_path / "out"
    res = run("restore", *args, str(out))
    assert res.returncode == 0, res.stderr
    assert "devid %d" % missing[0] in res.stderr
    compare(fs.want, manifest(out))


def test_degraded_raid56_refused(make_fs, run):
    fs = make_fs("raid5")
    res = run("check", *fs.args(drop=(2,)))
    assert res.returncode == 3 and res.stderr.count("ERROR:") == 1, res.stderr
    assert "devid 2 is missing" in res.stderr and "raid5" in res.stderr


def test_degraded_write_refused(make_fs, run, copy_image, tmp_path):
    fs = make_fs("raid1")
    img = copy_image(fs.files[0])
    before = digest(img)
    key = tmp_path / "k"
    key.write_bytes(os.urandom(64))
    for cmd in (["encrypt"], ["decrypt"]):
        res = run(*cmd, "--key-file", str(key), str(img))
        assert res.returncode == 1 and res.stderr.count("ERROR:") == 1, res.stderr
        assert "devid 2 of the filesystem is missing" in res.stderr
    assert digest(img) == before

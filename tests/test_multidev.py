"""Filesystems of several devices (issue 14): --device, the stripe layer, degraded reads.

Oracles: the kernel makes each filesystem over 2-4 image files on loop
devices (mkfs.btrfs -m P -d P, a mount with -o device= for each, content
with compression, reflinks, subvolumes and snapshots, a large file that
spans many stripe elements), `btrfs check --check-data-csum` runs on the
loop devices, and a read-only kernel mount gives the manifest that our
restore must reproduce.  Our check must be clean on the same files.

Mirror matrix (RAID1, RAID1C3, RAID1C4, RAID10): one copy of a tree block
or of a data sector damaged, on each device holding one in turn
(btrfs-map-logical maps the mirrors): check names it and exits 0 as btrfs check does, restore
is unchanged, and an encrypt + decrypt round trip leaves nothing for a
kernel scrub to fix.
"""

import hashlib
import json
import os
import re
import shutil

import pytest

import fixtures
from fixtures import MiB
from multidev import devid_of, loops, mounted, sh
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


def device_args(files):
    """The first file as the image, then --device for each of the others."""
    out = [str(files[0])]
    for f in files[1:]:
        out += ["--device", str(f)]
    return out


class MultiFs:
    def __init__(self, profile, files, want, progs_check):
        self.profile, self.files, self.want, self.progs_check = profile, files, want, progs_check

    def args(self, drop=()):
        """The image, then --device for the others (devids in drop left out)."""
        return device_args([f for i, f in enumerate(self.files) if i + 1 not in drop])


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
            check = sh("btrfs", "check", "--check-data-csum", devs[0], check=False)
        _CACHE[profile] = MultiFs(profile, files, want, check)
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
                                             ("raid1c3", (1, 3)), ("raid1c4", (2, 3, 4)),
                                             ("raid5", (1,)), ("raid5", (3,)),
                                             ("raid6", (2,)), ("raid6", (4,)),
                                             ("raid6", (1, 3)), ("raid6", (2, 4)),
                                             ("raid6", (3, 4))])
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


@pytest.mark.parametrize("profile,missing", [("raid5", (2, 3)), ("raid6", (1, 2, 4))])
def test_degraded_beyond_parity_refused(make_fs, run, profile, missing):
    """RAID5 rebuilds a row with one element missing, RAID6 with two; one
    more and the command stops before reading, naming a missing devid."""
    fs = make_fs(profile)
    res = run("check", *fs.args(drop=missing))
    assert res.returncode == 3 and res.stderr.count("ERROR:") == 1, res.stderr
    assert re.search(r"devid [%s] is missing" % "".join(map(str, missing)), res.stderr)
    assert profile in res.stderr and "than its parity rebuilds" in res.stderr


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


# ---- mirror matrix: one bad copy, on each device that holds one --------------

MIRRORED = ["raid1", "raid1c3", "raid1c4", "raid10"]
# RAID5/6: mirror 1 is the data element, mirror 2 the element rebuilt from P,
# mirror 3 (RAID6) from Q; btrfs-map-logical names each by its parity element.
COPIES = {"raid1": 2, "raid1c3": 3, "raid1c4": 4, "raid10": 2, "raid5": 2, "raid6": 3}


def _mirrors(files, logical):
    """[(devid, physical)] of every mirror of `logical`, as btrfs-map-logical
    maps it on loop devices.  progs scans every block device and names the
    device of a devid it met last, which may be another loop device holding
    a copy of this filesystem (the other build's suite runs side by side; a
    detached device's page cache): the devid is read from the superblock of
    the device named, as progs read it."""
    with loops(files) as devs:
        res = sh("btrfs-map-logical", "-l", logical, devs[0], check=False)
        found = re.findall(r"mirror (\d+) logical \d+ physical (\d+) device (\S+)", res.stdout)
        mirrors = [(devid_of(dev), int(phys)) for _m, phys, dev in found]
    assert res.returncode == 0 and found, res.stdout + res.stderr
    return mirrors


def _blocks(files):
    """(an fs-tree leaf, the first sector of big.bin's first extent): logicals."""
    with loops(files) as devs:
        res = sh("btrfs", "inspect-internal", "dump-tree", "-t", "5", devs[0], check=False)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    leaf = int(re.findall(r"^leaf (\d+) items", text, re.M)[-1])
    ino = int(re.search(r"location key \((\d+) INODE_ITEM 0\) type FILE\n[^\n]*\n"
                        r"\s+name: big\.bin\n", text).group(1))
    ext = re.search(r"key \(%d EXTENT_DATA 0\).*?\n.*?\n\s+extent data disk byte (\d+)" % ino,
                    text, re.S)
    return leaf, int(ext.group(1))


def _copy_fs(fs, work):
    work.mkdir()
    return [fixtures.sparse_copy(f, work / f.name) for f in fs.files]


def test_mirrors_ignore_a_copy_attached_elsewhere(make_fs, tmp_path):
    """The harness's own guard: with a copy of the filesystem (same fsid and
    devids) on other loop devices, progs may name the copy's devices; the
    mirrors are still mapped to the right devids and offsets."""
    fs = make_fs("raid1")
    leaf, _sector = _blocks(fs.files)
    want = _mirrors(fs.files, leaf)
    with loops(_copy_fs(fs, tmp_path / "copy")) as others:
        with loops(fs.files) as devs:
            named = re.findall(r"device (\S+)",
                               sh("btrfs-map-logical", "-l", leaf, devs[0]).stdout)
        assert _mirrors(fs.files, leaf) == want
    assert sorted(d for d, _p in want) == [1, 2]
    print("progs named %s; ours %s, the copy's %s" % (named, devs, others))


def _targets(fs):
    """("tree", an fs-tree leaf, offset to damage, its mirrors), then the
    same for "data", the first sector of big.bin."""
    leaf, sector = _blocks(fs.files)
    for what, logical, off in (("tree", leaf, 100), ("data", sector, 10)):
        mirrors = _mirrors(fs.files, logical)
        assert len(mirrors) == COPIES[fs.profile], mirrors
        yield what, logical, off, mirrors


def _damage(files, devid, phys, off):
    with open(files[devid - 1], "r+b") as f:
        f.seek(phys + off)
        f.write(b"\xa5" * 32)


def _restored_equal(run, fs, files, out):
    """restore of the damaged copy equals the kernel's manifest; the copy goes."""
    res = run("restore", *device_args(files), str(out), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    compare(fs.want, manifest(out))
    shutil.rmtree(files[0].parent)


@pytest.mark.parametrize("profile", MIRRORED)
def test_mirror_matrix(make_fs, run, tmp_path, profile):
    """A tree block and a data sector, each with one copy damaged, on each
    device holding a copy in turn: our check exits 0 and names the bad copy
    (devid, physical, logical) at warning level, btrfs check agrees (exit 0
    for the tree block; for data it names the same mirror), restore equals
    the kernel's manifest.  Mirrors are mapped by btrfs-map-logical."""
    fs = make_fs(profile)
    cases = 0
    for what, logical, off, mirrors in _targets(fs):
        for k, (devid, phys) in enumerate(mirrors):
            files = _copy_fs(fs, tmp_path / ("%s-%d" % (what, k)))
            _damage(files, devid, phys, off)
            problems = _check_json(run, files)
            code = "TREE_BLOCK_BAD_COPY" if what == "tree" else "DATA_BAD_COPY"
            bad = [p for p in problems if p["code"] == code]
            assert len(bad) == 1 and bad[0]["bytenr"] == logical, problems
            if what == "tree":
                want = "mirror %d of the tree block (device %d physical %d) is bad" % (
                    k + 1, devid, phys)
            else:
                want = "at logical %d mirror %d (device %d physical %d)" % (
                    logical, k + 1, devid, phys)
            assert want in bad[0]["message"], bad[0]["message"]
            with loops(files) as devs:
                check = sh("btrfs", "check", "--check-data-csum", devs[0], check=False)
            text = check.stdout + check.stderr
            if what == "tree":
                assert check.returncode == 0, text[-2000:]
            else:
                assert "mirror %d bytenr %d csum" % (k + 1, logical) in text, text[-2000:]
            _restored_equal(run, fs, files, tmp_path / ("out-%s-%d" % (what, k)))
            cases += 1
    print("%s: %d damaged copies" % (profile, cases))


def _scrub_ro(files, mnt):
    """A read-only kernel scrub of every device: (errors, uncorrectable)."""
    with loops(files) as devs, mounted(devs, mnt, ro=True) as m:
        res = sh("btrfs", "scrub", "start", "-B", "-r", m, check=False)
    text = res.stdout + res.stderr
    summary = re.search(r"Error summary:\s+(.*)", text)
    assert summary, text
    if "no errors found" in summary.group(1):
        return 0, 0
    errors = sum(int(n) for n in re.findall(r"=(\d+)", summary.group(1)))
    return errors, int(re.search(r"Uncorrectable:\s+(\d+)", text).group(1))


def _check_json(run, files):
    res = run("--format", "json", "check", "--check-data-csum", *device_args(files), timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    doc = json.loads(res.stdout)
    assert not [p for p in doc["problems"] if p["severity"] == "error"], doc["problems"]
    return doc["problems"]


@pytest.mark.parametrize("profile", ["raid5", "raid6"])
def test_parity_matrix(make_fs, run, tmp_path, profile):
    """RAID5/6: a tree block and a data sector, damaged in each of their
    mirrors in turn as btrfs-map-logical maps them (1: the data element;
    2 and 3: P and Q, by which the element is rebuilt).  Damaged data: our
    check names mirror 1 at warning level (the rebuilt copy is good), and
    the kernel's read-only scrub finds errors and none uncorrectable.
    Damaged parity: our check names it (PARITY_MISMATCH, its device and
    physical offset) and nothing else.  Restore equals the kernel's
    manifest every time.  RAID6 with the data element and P both damaged:
    the copy rebuilt from Q is good."""
    fs = make_fs(profile)
    cases = 0
    for what, logical, off, mirrors in _targets(fs):
        code = "TREE_BLOCK_BAD_COPY" if what == "tree" else "DATA_BAD_COPY"
        damage = [[k] for k in range(len(mirrors))] + ([[0, 1]] if profile == "raid6" else [])
        for ks in damage:
            files = _copy_fs(fs, tmp_path / ("%s-%s" % (what, "".join(map(str, ks)))))
            for k in ks:
                _damage(files, *mirrors[k], off)
            problems = _check_json(run, files)
            bad = [p for p in problems if p["code"] == code]
            parity = [p for p in problems if p["code"] == "PARITY_MISMATCH"]
            if ks[0] == 0:
                assert len(bad) == len(ks) and not parity, problems
                for p, k in zip(sorted(bad, key=lambda p: p["message"]), ks):
                    devid, phys = mirrors[k]
                    if what == "tree":
                        want = "mirror %d of the tree block (device %d physical %d) is bad, " \
                               "mirror %d is good" % (k + 1, devid, phys, len(ks) + 1)
                    else:
                        want = "at logical %d mirror %d (device %d physical %d)" % (
                            logical, k + 1, devid, phys)
                    assert p["bytenr"] == logical and want in p["message"], problems
                errors, uncorrectable = _scrub_ro(files, tmp_path / "mnt")
                assert errors > 0 and uncorrectable == 0, (errors, uncorrectable)
            else:
                devid, phys = mirrors[ks[0]]
                assert not bad and len(parity) == 1, problems
                want = "%s of the RAID5/6 row at logical %d (device %d physical %d) " \
                       "does not match the row's data in 1 of" % (
                           "PQ"[ks[0] - 1], parity[0]["bytenr"], devid, phys)
                assert want in parity[0]["message"], parity
            _restored_equal(run, fs, files, tmp_path / ("out-%s-%d" % (what, cases)))
            cases += 1
    print("%s: %d damaged cases" % (profile, cases))


@pytest.mark.parametrize("profile", MIRRORED)
def test_mirror_round_trip_scrub(make_fs, run, tmp_path, profile):
    """The first mirror of a tree block and of a data sector damaged (on the
    device that holds it): encrypt + decrypt read the good copies and
    rewrite both blocks to every copy, so a kernel scrub of all devices
    finds nothing to fix and the mount equals the kernel's manifest."""
    fs = make_fs(profile)
    leaf, sector = _blocks(fs.files)
    files = _copy_fs(fs, tmp_path / "fs")
    for logical, off in ((leaf, 100), (sector, 10)):
        _damage(files, *_mirrors(fs.files, logical)[0], off)
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))
    for cmd in ("encrypt", "decrypt"):
        res = run(cmd, "--key-file", str(key), *device_args(files), timeout=900)
        assert res.returncode == 0, res.stderr[-2000:]
    res = run("--format", "json", "check", "--check-data-csum", *device_args(files), timeout=600)
    assert res.returncode == 0, res.stdout[-3000:]
    left = [p for p in json.loads(res.stdout)["problems"]
            if p["severity"] == "error" or "BAD_COPY" in p["code"]]
    assert not left, left
    with loops(files) as devs:
        check = sh("btrfs", "check", "--check-data-csum", devs[0], check=False)
        assert check.returncode == 0, (check.stdout + check.stderr)[-2000:]
        with mounted(devs, tmp_path / "mnt", ro=False) as mnt:
            res = sh("btrfs", "scrub", "start", "-B", mnt, check=False)
            text = res.stdout + res.stderr
            assert res.returncode == 0 and re.search(r"Error summary:\s+no errors found", text), \
                text
            compare(fs.want, manifest(mnt))

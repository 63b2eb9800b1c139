"""Writes on filesystems of several devices and on DUP data (issue 14 points 2-4).

Oracles: the kernel makes every filesystem (mkfs.btrfs -m P -d P over 2-4
image files on loop devices, content written through a mount with
-o device=; DUP data: mkfs.btrfs -d dup --rootdir), and after our
`encrypt` and `decrypt`:

  * `btrfs check --check-data-csum` of btrfs-progs 6.2 and 6.14 on the loop
    devices is clean (the kernel here cannot open bit-15 images, so the
    plain result of the round trip is what the oracles read);
  * a kernel mount with -o device= for every device, then
    `btrfs scrub start -B` reads and verifies every copy of every block on
    every device: no errors;
  * the manifest read through that mount equals the one the kernel gave
    for the original.

RAID5/6 writes and writes with a device missing are refused with the image
bytes unchanged.  A cut between the two devices' superblock writes leaves
them a generation apart: the filesystem opens (the newest superblock wins,
as in the kernel), and `btrfs check` agrees.  The crash sweep cuts encrypt
on a two-device RAID1 at every write (EXTCRYPT_FAIL_AT, either device).
"""

import hashlib
import os
import random
import re
import struct

import pytest

import fixtures
import progs614
from fixtures import MiB
from multidev import fill_data_chunks, loops, mounted, sh
from test_encrypt import FAULT_RE, KEY_A, write_key
from test_restore import compare, manifest

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

# profile -> devices
PROFILES = {"raid1": 2, "raid1c3": 3, "raid10": 4, "raid0": 2}
SB_OFFSET = 65536


def populate(mnt, seed, big=9 * MiB + 12345, files=60):
    """Inline, small and multi-extent files, names, symlinks, a hard link."""
    rng = random.Random(seed)
    (mnt / "d" / "sub").mkdir(parents=True)
    (mnt / "big.bin").write_bytes(rng.randbytes(big))      # many stripe elements
    for i in range(files):
        (mnt / "d" / ("f%03d-%s" % (i, "x" * rng.randrange(1, 40)))).write_bytes(
            rng.randbytes(rng.choice([0, 100, 1999, 3000, 4096, 70000, 200000])))
    (mnt / "d" / "sub" / "text.txt").write_bytes(b"plain text marker\n" * 500)
    os.symlink("d/sub/text.txt", mnt / "link")
    os.link(mnt / "big.bin", mnt / "d" / "hard.bin")
    os.sync()


def device_args(files):
    out = [str(files[0])]
    for f in files[1:]:
        out += ["--device", str(f)]
    return out


def generation(path):
    """The primary superblock's generation, read directly (format.rst 2.1)."""
    with open(path, "rb") as f:
        f.seek(SB_OFFSET + 0x48)
        return struct.unpack("<Q", f.read(8))[0]


def incompat(path):
    with open(path, "rb") as f:
        f.seek(SB_OFFSET + 0xbc)
        return struct.unpack("<Q", f.read(8))[0]


def digests(files):
    out = []
    for p in files:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for b in iter(lambda: f.read(MiB), b""):
                h.update(b)
        out.append(h.hexdigest())
    return out


class Fs:
    def __init__(self, files, want):
        self.files, self.want = files, want   # device files; the kernel's manifest


_CACHE = {}


@pytest.fixture(scope="module")
def make_fs(tmp_path_factory, is_root):
    if not is_root:
        pytest.skip("needs root and loop devices")

    def make(profile):
        if profile in _CACHE:
            return _CACHE[profile]
        work = tmp_path_factory.mktemp("mdw-" + profile)
        if profile == "dup":
            tree = work / "tree"
            tree.mkdir()
            populate(tree, seed=7)
            files = [fixtures.mkfs(work / "dev0.img", tree, size_mib=256,
                                   extra=("-m", "dup", "-d", "dup"))]
            res = sh("btrfs", "inspect-internal", "dump-tree", "-t", "chunk", files[0])
            assert "DATA|DUP" in res.stdout        # mkfs made DUP data
            with loops(files) as devs, mounted(devs, work / "mnt", ro=True) as mnt:
                want = manifest(mnt)
        else:
            files = [_truncated(work / ("dev%d.img" % i), 256) for i in range(PROFILES[profile])]
            with loops(files) as devs:
                res = sh("mkfs.btrfs", "-q", "-f", "-m", profile, "-d", profile, *devs, check=False)
                if res.returncode:
                    pytest.skip("mkfs.btrfs -d %s: %s" % (profile, res.stderr.strip()))
                with mounted(devs, work / "mnt", ro=False) as mnt:
                    populate(mnt, seed=14)
                with mounted(devs, work / "mnt", ro=True) as mnt:
                    want = manifest(mnt)
        _CACHE[profile] = Fs(files, want)
        return _CACHE[profile]
    return make


def _truncated(path, mib):
    with open(path, "wb") as f:
        f.truncate(mib * MiB)
    return path


def copies(files, where):
    """Sparse copies of the device files into the directory where."""
    where.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(files):
        dst = where / ("dev%d.img" % i)
        fixtures.sparse_copy(str(f), str(dst))
        out.append(dst)
    return out


def progs_checks(devs):
    """btrfs check --check-data-csum of 6.2 and (if present) 6.14 on the loop
    devices, in both modes (original and lowmem)."""
    bad = []
    try:
        progs = [("6.2", "btrfs"), ("6.14", progs614.path())]
    except pytest.skip.Exception:
        progs = [("6.2", "btrfs")]
    for version, binary in progs:
        for mode in ("original", "lowmem"):
            res = sh(binary, "check", "--mode", mode, "--check-data-csum", devs[0], check=False)
            if res.returncode:
                bad.append("btrfs check %s --mode %s: %s%s" % (
                    version, mode, res.stderr[-1500:], res.stdout[-1500:]))
    return bad


def kernel_verdict(files, mnt, want, progs=True, stale_supers=False):
    """progs checks (on the first device), then a mount of every device,
    scrub, and the manifest compared with want (None: not compared); the
    manifest is returned.  stale_supers: a device is a commit behind, and
    scrub counts its superblock copies (super=N) and nothing else."""
    with loops(files) as devs:
        bad = progs_checks(devs) if progs else []
        assert not bad, "\n".join(bad)
        with mounted(devs, mnt, ro=False) as m:
            res = sh("btrfs", "scrub", "start", "-B", m, check=False)
            ok = "no errors found" in res.stdout or (
                stale_supers and re.search(r"Error summary: +super=\d+\n", res.stdout))
            assert res.returncode == 0 and ok, res.stdout + res.stderr
            got = manifest(m)
            if want is not None:
                compare(want, got)
            return got


@pytest.mark.parametrize("profile", list(PROFILES) + ["dup"])
def test_round_trip(make_fs, run, tmp_path, profile):
    fs = make_fs(profile)
    files = copies(fs.files, tmp_path)
    key = write_key(tmp_path / "k", KEY_A)
    args = device_args(files)
    res = run("encrypt", "--key-file", key, *args)
    assert res.returncode == 0, res.stderr
    gens = {generation(f) for f in files}
    assert len(gens) == 1, gens                    # every device: the same commit
    assert all(incompat(f) & (1 << 15) for f in files)
    res = run("check", "--check-data-csum", "--key-file", key, *args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    res = run("decrypt", "--key-file", key, *args)
    assert res.returncode == 0, res.stderr
    assert len({generation(f) for f in files}) == 1
    kernel_verdict(files, tmp_path / "mnt", fs.want)


@pytest.mark.parametrize("profile", ["raid1", "raid10"])
def test_reflink_every_copy(make_fs, run, tmp_path, profile):
    fs = make_fs(profile)
    files = copies(fs.files, tmp_path)
    res = run("reflink", "--create", "/big.bin", "/d/clone.bin", *device_args(files)[1:],
              str(files[0]))
    assert res.returncode == 0, res.stderr
    assert len({generation(f) for f in files}) == 1
    got = kernel_verdict(files, tmp_path / "mnt", None)
    want, have = fs.want[0], got[0]
    assert have.pop("d/clone.bin")["sha"] == want["big.bin"]["sha"]
    assert sorted(have) == sorted(want)
    assert all(have[p].get("sha") == want[p].get("sha") for p in want)


def test_raid56_refused(run, tmp_path, is_root):
    key = write_key(tmp_path / "k", KEY_A)
    for profile, n in (("raid5", 3), ("raid6", 4)):
        files = [_truncated(tmp_path / ("%s-%d.img" % (profile, i)), 160) for i in range(n)]
        res = sh("mkfs.btrfs", "-q", "-f", "-m", profile, "-d", profile, *files, check=False)
        if res.returncode:
            pytest.skip("mkfs.btrfs -d %s: %s" % (profile, res.stderr.strip()))
        before = digests(files)
        for cmd in ("encrypt", "decrypt"):
            res = run(cmd, "--key-file", key, *device_args(files))
            assert res.returncode == 1 and res.stderr.count("ERROR:") == 1, res.stderr
            assert "RAID5/6" in res.stderr and "write hole" in res.stderr, res.stderr
        assert digests(files) == before


def test_missing_device_refused(make_fs, run, tmp_path):
    fs = make_fs("raid1")
    files = copies(fs.files, tmp_path)
    before = digests(files)
    key = write_key(tmp_path / "k", KEY_A)
    for given in ([files[0]], [files[1]]):
        for cmd in ("encrypt", "decrypt"):
            res = run(cmd, "--key-file", key, *device_args(given))
            assert res.returncode == 1 and res.stderr.count("ERROR:") == 1, res.stderr
            assert "is missing" in res.stderr and "--device" in res.stderr, res.stderr
    res = run("reflink", "--create", "/big.bin", "/big2.bin", str(files[0]))
    assert res.returncode == 1 and "is missing" in res.stderr, res.stderr
    assert digests(files) == before


def primary_super_writes(run, cmd, args, key, log):
    """1-based indexes of a whole run's writes of a primary superblock
    (EXTCRYPT_WRITE_LOG records: le64 offset, le64 length, the bytes)."""
    res = run(cmd, "--key-file", key, *args, env={"EXTCRYPT_WRITE_LOG": str(log)})
    assert res.returncode == 0, res.stderr
    out, data, pos, n = [], log.read_bytes(), 0, 0
    while pos < len(data):
        off, ln = struct.unpack_from("<QQ", data, pos)
        pos += 16 + ln
        n += 1
        if off == SB_OFFSET and ln == 4096:
            out.append(n)
    return out


def test_cut_between_device_superblocks(make_fs, run, tmp_path):
    """The second device's primary superblock write is cut: a generation apart."""
    fs = make_fs("raid1")
    key = write_key(tmp_path / "k", KEY_A)
    probe = copies(fs.files, tmp_path / "probe")
    supers = primary_super_writes(run, "encrypt", device_args(probe), key, tmp_path / "log")
    assert len(supers) >= 2 and len(supers) % 2 == 0, supers
    cut = supers[1]                                # devid 2's primary, first commit
    for f in probe:
        f.unlink()
    files = copies(fs.files, tmp_path)
    g0 = generation(files[0])
    res = run("encrypt", "--key-file", key, *device_args(files),
              env={"EXTCRYPT_FAIL_AT": str(cut)})
    assert res.returncode == 1 and FAULT_RE.search(res.stderr), res.stderr
    assert generation(files[0]) == g0 + 1 and generation(files[1]) == g0
    # Either device first: the newest superblock describes the filesystem.
    for order in (files, files[::-1]):
        res = run("check", "--check-data-csum", "--key-file", key, *device_args(order))
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    res = run("encrypt", "--key-file", key, *device_args(files[::-1]))
    assert res.returncode == 0, res.stderr
    assert generation(files[0]) == generation(files[1])
    res = run("decrypt", "--key-file", key, *device_args(files))
    assert res.returncode == 0, res.stderr
    kernel_verdict(files, tmp_path / "mnt", fs.want)


def test_stale_device_oracle(make_fs, run, tmp_path):
    """The same cut on a plain commit: btrfs check reads the pair as we do."""
    fs = make_fs("raid1")
    files = copies(fs.files, tmp_path)
    key = write_key(tmp_path / "k", KEY_A)
    res = run("encrypt", "--key-file", key, *device_args(files))
    assert res.returncode == 0, res.stderr
    saved = copies(files, tmp_path / "saved")
    supers = primary_super_writes(run, "decrypt", device_args(files), key, tmp_path / "log")
    assert len(supers) >= 2 and len(supers) % 2 == 0, supers
    # The last commit of decrypt clears bit 15: cut its second device's superblock.
    cut = supers[-1]
    for s, f in zip(saved, files):
        fixtures.sparse_copy(str(s), str(f))
    res = run("decrypt", "--key-file", key, *device_args(files),
              env={"EXTCRYPT_FAIL_AT": str(cut)})
    assert res.returncode == 1 and FAULT_RE.search(res.stderr), res.stderr
    assert generation(files[0]) == generation(files[1]) + 1
    assert not incompat(files[0]) & (1 << 15) and incompat(files[1]) & (1 << 15)
    res = run("check", "--check-data-csum", *device_args(files[::-1]))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    # btrfs check takes the features of the device it is given (here the
    # newest); the kernel mounts through the stale one and takes the newest.
    kernel_verdict(files[::-1], tmp_path / "mnt", fs.want, progs=False, stale_supers=True)
    with loops(files) as devs:
        bad = progs_checks(devs)
        assert not bad, "\n".join(bad)


# ---- crash sweep ------------------------------------------------------------

def _sweep_image(work, mib, fill):
    files = [_truncated(work / ("dev%d.img" % i), mib) for i in range(2)]
    with loops(files) as devs:
        sh("mkfs.btrfs", "-q", "-f", "-n", "4096", "-m", "raid1", "-d", "raid1", *devs)
        with mounted(devs, work / "mnt", ro=False) as mnt:
            populate(mnt, seed=3, big=1300000, files=260)
            # Data chunks nearly full: encrypt's copies need a new chunk on both devices.
            if fill:
                assert fill_data_chunks(mnt, random.Random(4), MiB, 2 * MiB) < 200
    return files


@pytest.fixture(scope="module")
def sweep_fs(tmp_path_factory, is_root):
    if not is_root:
        pytest.skip("needs root and loop devices")
    return _sweep_image(tmp_path_factory.mktemp("mdw-sweep"), 200, fill=False)


@pytest.fixture(scope="module")
def sweep_fs_chunks(tmp_path_factory, is_root):
    if not is_root:
        pytest.skip("needs root and loop devices")
    return _sweep_image(tmp_path_factory.mktemp("mdw-sweep-chunks"), 128, fill=True)


def chunk_keys(run, files):
    """The logical addresses of the chunks (our dump-tree's CHUNK_ITEM keys)."""
    res = run("inspect", "dump-tree", "-t", "chunk", *map(str, files))
    assert res.returncode == 0, res.stderr
    return set(re.findall(r"CHUNK_ITEM (\d+)\)", res.stdout))


def _check_cut(run, key, files, cut):
    """Failures of one cut image: our check through either device, and
    btrfs check while the encryption bit is not set yet."""
    failures = []
    for order in (files, files[::-1]):
        res = run("check", "--check-data-csum", "--key-file", key, *device_args(order))
        if res.returncode:
            failures.append((cut, "check: " + res.stdout[-500:] + res.stderr[-300:]))
    if not any(incompat(f) & (1 << 15) for f in files):
        with loops(files) as devs:
            failures += [(cut, b) for b in progs_checks(devs)]
    return failures


def _rerun(run, key, files, cut):
    """Re-run through either device (a stale one's superblock: its old device item)."""
    res = run("encrypt", "--key-file", key, *device_args(files if cut % 2 else files[::-1]))
    if res.returncode:
        return [(cut, "re-run: " + res.stderr[-300:])]
    if generation(files[0]) != generation(files[1]):
        return [(cut, "re-run: generations differ")]
    res = run("check", "--check-data-csum", "--key-file", key, *device_args(files))
    return [(cut, "check after re-run: " + res.stdout[-500:])] if res.returncode else []


def _sweep(src, run, tmp_path, step):
    """Cut encrypt at every step-th write of the two devices src; returns
    (the last cut, failures, the completed run's files)."""
    key = write_key(tmp_path / "k", KEY_A)
    files = [tmp_path / "a.img", tmp_path / "b.img"]
    failures, cut, done = [], 0, False
    while not done and cut < 4000:
        cut += step
        for s, f in zip(src, files):
            fixtures.sparse_copy(str(s), str(f))
        res = run("encrypt", "--key-file", key, *device_args(files),
                  env={"EXTCRYPT_FAIL_AT": str(cut)})
        if res.returncode == 0:
            done = True
        elif res.returncode != 1 or not FAULT_RE.search(res.stderr):
            failures.append((cut, "cut run: %d %s" % (res.returncode, res.stderr[-300:])))
            continue
        failures += _check_cut(run, key, files, cut)
        if not done:
            failures += _rerun(run, key, files, cut)
    assert done, "encrypt never completed"
    return cut, failures, files


def test_crash_sweep_raid1(sweep_fs, run, tmp_path):
    # Under ASan every 4th cut (as the other crash sweeps): the normal build cuts at every write.
    cut, failures, _ = _sweep(sweep_fs, run, tmp_path, 4 if run.sanitized else 1)
    assert cut > 200, "only %d cut points" % cut
    assert not failures, "\n".join("cut %d: %s" % f for f in failures[:20])


def test_crash_sweep_raid1_new_chunk(sweep_fs_chunks, run, tmp_path):
    """The same on data chunks nearly full: the run allocates a chunk on
    both devices (and removes emptied ones).  Every 12th write (24th under
    ASan): a full sweep of this image copies 90 MB per cut, 480 times."""
    step = 24 if run.sanitized else 12
    cut, failures, files = _sweep(sweep_fs_chunks, run, tmp_path, step)
    assert cut > 400 // step, "only %d writes" % cut
    # The completed run made a chunk: what the cuts above went through.
    assert chunk_keys(run, files) - chunk_keys(run, sweep_fs_chunks)
    assert not failures, "\n".join("cut %d: %s" % f for f in failures[:20])

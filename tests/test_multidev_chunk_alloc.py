"""New chunks on filesystems of several devices (issue 14 point 2, format.rst 2.11).

Each filesystem is made by mkfs.btrfs on loop devices and filled through a
kernel mount, so that its data block groups are nearly full: encrypt must
allocate new data chunks from the devices' unallocated space.  Judges:

- every new chunk has the profile's stripes, mirrors on distinct devices;
- the devices the first new data chunk takes are the ones the running
  kernel takes for its own next data chunk on a copy of the same image
  (a kernel mount that writes until it allocates one): the kernel's
  device choice, most room first;
- after encrypt, our check (keyed) is clean; after decrypt, btrfs check
  --check-data-csum 6.2 and 6.14, then a kernel mount of every device that
  scrubs clean and gives the original manifest, and takes new writes.
"""
import json
import os
import random

import pytest

from fixtures import MiB
from multidev import fill_data_chunks, loops, mounted, sh
from test_encrypt import KEY_A, write_key
from test_multidev_write import copies, device_args, kernel_verdict
from test_restore import manifest

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

# name -> (mkfs profile options, device sizes in MiB)
CASES = {
    "raid1": (("-m", "raid1", "-d", "raid1"), (512, 512)),
    "raid1-uneven3": (("-m", "raid1", "-d", "raid1"), (384, 640, 896)),
    "raid1c3": (("-m", "raid1c3", "-d", "raid1c3"), (640, 640, 640)),
    "raid10": (("-m", "raid10", "-d", "raid10"), (320, 320, 320, 320)),
    "raid0-uneven": (("-m", "raid1", "-d", "raid0"), (384, 640)),
    "single-data": (("-m", "raid1", "-d", "single"), (384, 640)),
}
# stripes of a data chunk, and whether they are mirrors (on distinct devices)
STRIPES = {"RAID1": (2, True), "RAID1C3": (3, True), "RAID10": (None, True),
           "RAID0": (None, False), "single": (1, False)}


MARKER = b"PLAINTEXT-MARKER-7f3a9c "


def populate(mnt, seed):
    """A marker file, a few small files, then files of 6 MiB (extents well
    below any chunk) until encrypt's copies need new chunks
    (multidev.fill_data_chunks())."""
    rng = random.Random(seed)
    (mnt / "marker.txt").write_bytes(MARKER * 40000)
    for i in range(20):
        (mnt / ("s%02d" % i)).write_bytes(rng.randbytes(rng.randrange(0, 9000)))
    if fill_data_chunks(mnt, rng, 6 * MiB, 12 * MiB, limit=80) == 80:
        pytest.fail("the data block groups of %s never filled up" % mnt)


_CACHE = {}


@pytest.fixture(scope="module")
def make_fs(tmp_path_factory, is_root):
    if not is_root:
        pytest.skip("needs root and loop devices")

    def make(name):
        if name in _CACHE:
            return _CACHE[name]
        opts, sizes = CASES[name]
        work = tmp_path_factory.mktemp("mdc-" + name)
        files = []
        for i, mib in enumerate(sizes):
            files.append(work / ("dev%d.img" % i))
            with open(files[-1], "wb") as f:
                f.truncate(mib * MiB)
        with loops(files) as devs:
            res = sh("mkfs.btrfs", "-q", "-f", *opts, *devs, check=False)
            if res.returncode:
                pytest.skip("mkfs.btrfs %s: %s" % (" ".join(opts), res.stderr.strip()))
            with mounted(devs, work / "mnt", ro=False) as mnt:
                populate(mnt, seed=len(name))
            with mounted(devs, work / "mnt", ro=True) as mnt:
                want = manifest(mnt)
        _CACHE[name] = (files, want)
        return _CACHE[name]
    return make


def chunks(run, files):
    """logical -> chunk item (our dump-tree's JSON) of every chunk."""
    res = run("--format", "json", "inspect", "dump-tree", "-t", "chunk", *map(str, files))
    assert res.returncode == 0, res.stderr
    out = {}
    for tree in json.loads(res.stdout)["trees"]:
        for b in tree["blocks"]:
            for it in b["items"]:
                if it["key"]["type"] == "CHUNK_ITEM":
                    out[it["key"]["offset"]] = it
    return out


def allocated(chunks_):
    """Device bytes of all chunks: length / data stripes x stripes."""
    total = 0
    for c in chunks_.values():
        profile = c["type-names"].split("|")[-1]
        copies_ = {"RAID1": 2, "RAID1C3": 3, "RAID1C4": 4, "RAID10": 2, "DUP": 2}.get(profile, 1)
        total += c["length"] * copies_
    return total


def marker_on(files):
    """The device files holding the marker's plaintext anywhere."""
    out = []
    for f in files:
        with open(f, "rb") as fh:
            tail = b""
            for block in iter(lambda: fh.read(8 * MiB), b""):
                if MARKER in tail + block:
                    out.append(str(f))
                    break
                tail = block[-len(MARKER):]
    return out


def new_data_chunks(before, after):
    return [after[k] for k in sorted(after) if k not in before and "DATA" in after[k]["type-names"]]


def kernel_next_data_chunk(run, files, where):
    """The devids of the data chunk the kernel allocates next on a copy of files."""
    kfiles = copies(files, where)
    before = chunks(run, kfiles)
    with loops(kfiles) as devs, mounted(devs, where / "mnt", ro=False) as mnt:
        rng = random.Random(5)
        for i in range(256):     # until a data chunk is made, at most 256 MiB
            (mnt / ("k%02d" % i)).write_bytes(rng.randbytes(MiB))
            os.sync()
            if new_data_chunks(before, chunks(run, kfiles)):
                break
    made = new_data_chunks(before, chunks(run, kfiles))
    assert made, "the kernel made no data chunk for 256 MiB"
    return sorted(s["devid"] for s in made[0]["stripes"])


# Under ASan+UBSan the layouts whose allocation differs most (three unequal
# devices, four devices, striping over unequal ones); the normal build runs all.
SANITIZED_CASES = ("raid1-uneven3", "raid10", "raid0-uneven")


@pytest.mark.parametrize("name", list(CASES))
def test_new_chunks_round_trip(make_fs, run, tmp_path, name):
    if run.sanitized and name not in SANITIZED_CASES:
        pytest.skip("the sanitized build runs %s; the normal build runs every layout"
                    % ", ".join(SANITIZED_CASES))
    files0, want = make_fs(name)
    files = copies(files0, tmp_path / "ours")
    key = write_key(tmp_path / "k", KEY_A)
    args = device_args(files)
    before = chunks(run, files)
    res = run("encrypt", "--key-file", key, *args)
    assert res.returncode == 0, res.stderr
    after = chunks(run, files)
    made = new_data_chunks(before, after)
    assert made, "encrypt made no data chunk: the case does not test allocation"
    for c in after.values():
        if c["key"]["offset"] in before:
            continue
        profile = c["type-names"].split("|")[-1] if "|" in c["type-names"] else "single"
        want_n, mirrors = STRIPES.get(profile, (None, False))
        devids = [s["devid"] for s in c["stripes"]]
        assert c["num-stripes"] == len(devids)
        if want_n:
            assert len(devids) == want_n, c
        if mirrors:
            # RAID10 pairs consecutive stripes; every other profile mirrors all.
            groups = [devids[i:i + 2] for i in range(0, len(devids), 2)] if profile == "RAID10" else [devids]
            assert all(len(set(g)) == len(g) for g in groups), c
    # The old plaintext is gone from every device: removed chunks and free space wiped.
    assert not marker_on(files), marker_on(files)
    # The kernel, on a copy of the same image, takes the same devices (where
    # there is a choice: devices of different sizes; equal ones are all taken).
    if len(set(CASES[name][1])) > 1:
        assert sorted(s["devid"] for s in made[0]["stripes"]) == \
            kernel_next_data_chunk(run, files0, tmp_path / "kernel")
    res = run("check", "--check-data-csum", "--key-file", key, *args)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    res = run("decrypt", "--key-file", key, *args)
    assert res.returncode == 0, res.stderr
    # Emptied chunks were removed: about as much allocated as before (one new chunk of slack).
    biggest = max(c["length"] * 4 for c in after.values())
    assert allocated(chunks(run, files)) <= 1.1 * allocated(before) + biggest
    assert marker_on(files)                     # the plaintext is back, a sanity check
    kernel_verdict(files, tmp_path / "mnt", want)
    with loops(files) as devs, mounted(devs, tmp_path / "mnt2", ro=False) as mnt:
        (mnt / "new.bin").write_bytes(random.Random(9).randbytes(20 * MiB))
        os.sync()


def test_grow_refused_on_several_devices(make_fs, run, tmp_path):
    files0, _ = make_fs("raid1")
    files = copies(files0, tmp_path)
    key = write_key(tmp_path / "k", KEY_A)
    res = run("encrypt", "--grow", "--key-file", key, *device_args(files))
    assert res.returncode == 1, res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("ERROR:")]
    assert len(errors) == 1 and "only a filesystem of one image file can grow" in errors[0], res.stderr

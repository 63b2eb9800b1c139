"""Multi-device filesystems on loop devices, for the kernel-judged suites
(tests/test_multidev.py reads them, tests/test_multidev_write.py writes them)."""

import contextlib
import os
import re
import subprocess


def sh(*cmd, check=True, env=None):
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=600, env=env)
    if check and res.returncode:
        raise RuntimeError("%s: %s" % (" ".join(map(str, cmd)), res.stderr))
    return res


def devid_of(dev):
    """The devid in the superblock of dev (dev_item.devid, at 64 KiB + 201),
    read as btrfs-progs reads it."""
    with open(dev, "rb") as f:
        f.seek(65536 + 201)
        return int.from_bytes(f.read(8), "little")


@contextlib.contextmanager
def loops(files):
    devs = []
    try:
        for f in files:
            devs.append(sh("losetup", "-f", "--show", f).stdout.strip())
        yield devs
    finally:
        for d in devs:
            sh("losetup", "-d", d, check=False)


@contextlib.contextmanager
def mounted(devs, mnt, ro):
    mnt.mkdir(parents=True, exist_ok=True)
    # Copies share an fsid: the kernel's registry must not remember an
    # earlier copy's devices on these loop devices (nor their generation).
    sh("btrfs", "device", "scan", "--forget", *devs, check=False)
    opts = ["ro" if ro else "rw"] + ["device=" + d for d in devs[1:]]
    res = sh("mount", "-t", "btrfs", "-o", ",".join(opts), devs[0], mnt, check=False)
    if res.returncode and "File exists" in res.stderr:
        # A stale registry entry of another copy (an earlier test's, on a
        # loop device since detached): forget every unmounted device, retry.
        sh("btrfs", "device", "scan", "--forget", check=False)
        res = sh("mount", "-t", "btrfs", "-o", ",".join(opts), devs[0], mnt, check=False)
    if res.returncode:
        raise RuntimeError("mount -o %s %s: %s" % (",".join(opts), devs[0], res.stderr))
    try:
        yield mnt
    finally:
        if sh("umount", mnt, check=False).returncode:
            sh("umount", "-l", mnt, check=False)


def data_usage(mnt):
    """(size, used) of the data block groups, from btrfs filesystem usage."""
    out = sh("btrfs", "filesystem", "usage", "-b", mnt).stdout
    m = re.search(r"^Data,[^:]*: Size:(\d+), Used:(\d+)", out, re.M)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def fill_data_chunks(mnt, rng, piece, margin, limit=200):
    """Write files of `piece` bytes under mnt/fill until the data block
    groups have less room left than the data in them (less margin): the
    kernel allocates ahead, so how much that takes is measured, not
    guessed.  A rewrite of all the data (encrypt's copies) then needs new
    chunks.  Returns the number of files, at most limit (then it failed)."""
    (mnt / "fill").mkdir()
    for i in range(limit):
        (mnt / "fill" / ("f%03d.bin" % i)).write_bytes(rng.randbytes(piece))
        os.sync()
        size, used = data_usage(mnt)
        if size - used + margin < used:
            return i + 1
    return limit

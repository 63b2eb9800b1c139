"""Multi-device filesystems on loop devices, for the kernel-judged suites
(tests/test_multidev.py reads them, tests/test_multidev_write.py writes them)."""

import contextlib
import subprocess


def sh(*cmd, check=True, env=None):
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=600, env=env)
    if check and res.returncode:
        raise RuntimeError("%s: %s" % (" ".join(map(str, cmd)), res.stderr))
    return res


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

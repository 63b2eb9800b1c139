"""The fill sweep of issue 13 (points 5 and 6): near-full images.

Images are filled to 50, 80, 90, 95 and 99% of their device by big files,
or hold 20,000 small files (metadata-bound: most of them inline), made by
mkfs.btrfs --rootdir and, as root, by the kernel (a read-write loop mount,
files written until the fill is reached: more fragmented free space).  The
fill is measured with btrfs-progs (dump-super and dump-tree): the device
bytes that hold neither free data space nor unallocated space, over the
device size.

Each image goes through:

  encrypt            refused before any write (exit 1, the image's bytes
                     identical, needed and available bytes in the message)
                     or completed (our check --check-data-csum with the key
                     clean); --dry-run gives the same verdict;
  decrypt            of the encrypted result: completed, and btrfs check
                     --check-data-csum (btrfs-progs 6.2, and 6.14 when
                     EXTCRYPT_PROGS614 names it) clean;
  cut encrypt        (fault-injection builds: EXTCRYPT_FAIL_AT=N cuts at the
                     Nth image write, with EXTCRYPT_BATCH_BYTES small batches
                     so that commits land before the cut; when small batches
                     make the preflight refuse, with the default batch: "d"
                     in the table), at a third and at two thirds of the
                     writes of the uncut run, then on one
                     copy `encrypt` to finish it and on another `decrypt` to
                     roll it back: both must complete (a cut run passed the
                     preflight, so the space was there).

No run may fail half-way: any other outcome is a problem.  Used by
tests/test_fill_sweep.py and bench/fill-sweep.py (which prints the table).
"""

import os
import random
import re
import shutil
import subprocess
import threading
from pathlib import Path

import fixtures
from reflink_lib import sha256_file as sha

MiB = 1024 * 1024
FILLS = (50, 80, 90, 95, 99)
SMALL_FILES = 20000
CUT_BATCH = 4 * MiB
KEY = bytes(range(64))
FAULT_RE = re.compile(r"fault injection: write \d+ failed")
NEED_RE = re.compile(r"need (\d+) bytes")
AVAIL_RE = re.compile(r"(\d+) (?:bytes )?(?:are|is) (?:free|available)")
SPACE_RE = re.compile(r"Space: the copies need (\d+) bytes of data at their peak, (\d+) are free")


# ---- trees --------------------------------------------------------------------

def big_files(path, nbytes, seed=1):
    """Files of 9 MiB, 3 MiB, 700 kB and 20 kB (random data) up to nbytes."""
    rng = random.Random(seed)
    path.mkdir(parents=True, exist_ok=True)
    i = 0
    while nbytes > 64 * 1024:
        n = min(nbytes, rng.choice([9 * MiB, 3 * MiB, 700000, 20000]))
        try:
            (path / ("b%04d" % i)).write_bytes(rng.randbytes(n))
        except OSError:
            return      # a kernel mount ran out of room: full enough
        nbytes -= n
        i += 1


def small_files(path, nfiles=SMALL_FILES, seed=2):
    """nfiles files of 100 to 6000 bytes in 20 directories (most inline)."""
    rng = random.Random(seed)
    for d in range(20):
        (path / ("d%02d" % d)).mkdir(parents=True, exist_ok=True)
    for i in range(nfiles):
        (path / ("d%02d" % (i % 20)) / ("file-%05d" % i)).write_bytes(
            rng.randbytes(rng.choice([100, 1000, 1800, 3000, 6000])))


# ---- measuring ----------------------------------------------------------------

def _super_field(text, field):
    m = re.search(r"^%s\s+(\d+)$" % re.escape(field), text, re.M)
    return int(m.group(1))


def fill_of(image):
    """Percentage of the device that is neither free data space nor unallocated."""
    sup = fixtures.dump_super_progs(image)
    total = _super_field(sup, "dev_item.total_bytes")
    unalloc = total - _super_field(sup, "dev_item.bytes_used")
    trees = fixtures.dump_tree_progs(image, "-t", "extent") + \
        fixtures.dump_tree_progs(image, "-t", "block-group", check=False)
    data_free = 0
    for m in re.finditer(r"BLOCK_GROUP_ITEM (\d+)\) itemoff \d+ itemsize \d+\n"
                         r"\s+block group used (\d+) chunk_objectid \d+ flags (\S+)", trees):
        if "DATA" in m.group(3) and "METADATA" not in m.group(3):
            data_free += int(m.group(1)) - int(m.group(2))
    return 100.0 * (total - unalloc - data_free) / total


# ---- images -------------------------------------------------------------------

def _mkfs_at_fill(path, tree, fill, used_mib):
    """mkfs --rootdir into the smallest image size (in MiB) whose fill is at
    most `fill`: the size starts from the tree's usage and grows."""
    size = max(64, int(used_mib * 100 / fill))
    best = None
    for _ in range(40):
        try:
            fixtures.mkfs(path, tree, size_mib=size)
        except RuntimeError:
            size += 2      # mkfs: no room for the tree
            continue
        f = fill_of(path)
        if f <= fill + 0.5 or best is not None:
            return path
        best = size
        size = int(size * f / fill) + 1
    return path


def mkfs_images(work, kind, fills=FILLS):
    tree = work / ("tree-" + kind)
    if not tree.exists():
        if kind == "big":
            big_files(tree, 100 * MiB)
        else:
            small_files(tree)
    probe = fixtures.mkfs_fit(work / ("probe-%s.img" % kind), tree)
    used_mib = fill_of(probe) * os.path.getsize(probe) / 100 / MiB
    probe.unlink()
    last = None
    for f in fills:     # one at a time: yielded, then deleted by the caller
        img = work / ("mkfs-%s-%d.img" % (kind, f))
        _mkfs_at_fill(img, tree, f, used_mib)
        # mkfs --rootdir makes a file too small for its estimate bigger: the
        # fills above that of its own size are out of its reach.
        real = round(fill_of(img), 1)
        if real == last:
            img.unlink()
            continue
        last = real
        yield "mkfs", kind, f, img


def kernel_image(path, kind, fill, work):
    """mkfs of a fixed size, then files written through a read-write loop
    mount (the kernel's allocator) until df shows `fill`."""
    # 256 MiB: the chunks of an empty filesystem are well below half of it.
    fixtures.mkfs(path, None, size_mib=256)
    with fixtures.loop_mount(path, work / "mnt", ro=False) as m:
        if kind == "small":
            small_files(m / "s")
        rng = random.Random(fill)
        i = 0
        while True:
            subprocess.run(["sync", "-f", str(m)], check=True)
            st = os.statvfs(m)
            total = st.f_blocks * st.f_frsize
            more = int(total * fill / 100) - (total - st.f_bavail * st.f_frsize)
            if more < 256 * 1024:
                break
            # Mixed sizes, some deleted again: holes between the extents.
            big_files(m / ("f%d" % i), min(more, 24 * MiB), seed=rng.randrange(1 << 30))
            if i % 2 == 0:
                for p in sorted((m / ("f%d" % i)).iterdir())[::3]:
                    p.unlink()
            i += 1
            if i > 60:
                break
    return path


def kernel_images(work, kind, fills=FILLS):
    for f in fills:
        img = work / ("kernel-%s-%d.img" % (kind, f))
        kernel_image(img, kind, f, work)
        yield "kernel", kind, f, img


def can_mount():
    return os.geteuid() == 0 and shutil.which("losetup") is not None and \
        os.environ.get("EXTCRYPT_NO_KERNEL") is None


# ---- runs ---------------------------------------------------------------------

def count_writes(run_fn, args, env):
    """Run with EXTCRYPT_WRITE_LOG on a pipe; returns (result, image writes)."""
    rfd, wfd = os.pipe()
    counter = {"n": 0}

    def reader():
        buf = b""
        with os.fdopen(rfd, "rb", buffering=0) as r:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 16:
                    length = int.from_bytes(buf[8:16], "little")
                    if len(buf) < 16 + length:
                        break
                    buf = buf[16 + length:]
                    counter["n"] += 1

    t = threading.Thread(target=reader)
    t.start()
    env = dict(env or {}, EXTCRYPT_WRITE_LOG="/proc/self/fd/%d" % wfd)
    try:
        res = run_fn(*args, env=env, pass_fds=(wfd,))
    finally:
        os.close(wfd)
        t.join()
    return res, counter["n"]


class Sweep:
    """Runs the sweep over images; rows for the table, problems for the test."""

    def __init__(self, binary, work, progs614=None, log=print):
        self.bin = str(binary)
        self.work = Path(work)
        self.key = self.work / "sweep.key"
        self.key.write_bytes(KEY)
        self.progs614 = progs614
        self.rows = []
        self.problems = []
        self.log = log

    def run(self, *args, env=None, pass_fds=(), timeout=1200):
        e = dict(os.environ)
        e.update(env or {})
        return subprocess.run([self.bin, *map(str, args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, errors="replace", env=e,
                              pass_fds=pass_fds, timeout=timeout, stdin=subprocess.DEVNULL)

    def attempt(self, cmd, img, env=None, counted=False, dry=False, extra=()):
        """One command: ("done"|"refused"|"cut"|"FAILED ...", (need, avail), writes).
        A dry run that passes gives the numbers of its Space: line."""
        h0 = sha(img)
        args = (cmd, "--threads", "1", "--key-file", self.key) + \
            (("--dry-run",) if dry else ()) + tuple(extra) + (img,)
        if counted:
            res, writes = count_writes(self.run, args, env)
        else:
            res, writes = self.run(*args, env=env), None
        err = res.stderr.strip()
        if res.returncode == 0:
            m = SPACE_RE.search(err)
            return "done", (int(m.group(1)), int(m.group(2))) if dry and m else None, writes, err
        if env and "EXTCRYPT_FAIL_AT" in env and FAULT_RE.search(err):
            return "cut", None, writes, err
        need, avail = NEED_RE.search(err), AVAIL_RE.search(err)
        same = sha(img) == h0
        if res.returncode == 1 and need and avail and same and err.count("\n") == 0:
            return "refused", (int(need.group(1)), int(avail.group(1))), writes, err
        return ("FAILED exit %d%s" % (res.returncode, "" if same else ", image changed"),
                None, writes, err)

    def verify(self, img, encrypted):
        if encrypted:
            res = self.run("check", "--check-data-csum", "--key-file", self.key, img)
            return res.returncode == 0, (res.stdout + res.stderr)[-600:]
        res = fixtures.btrfs_check(img, "--check-data-csum")
        if res.returncode:
            return False, "btrfs check 6.2: " + (res.stdout + res.stderr)[-600:]
        if self.progs614:
            r = subprocess.run([self.progs614, "check", "--check-data-csum", str(img)],
                               capture_output=True, text=True, timeout=600)
            if r.returncode:
                return False, "btrfs check 6.14: " + (r.stdout + r.stderr)[-600:]
        return True, ""

    def _problem(self, label, what, err):
        self.problems.append("%s: %s: %s" % (label, what, err[-500:]))

    def _finish(self, label, img, cmd, extra=()):
        """A command that must complete, then the checker of its result."""
        v, _n, _w, err = self.attempt(cmd, img, extra=extra)
        if v != "done":
            self._problem(label, cmd + " " + v, err)
            return v
        ok, out = self.verify(img, cmd == "encrypt")
        if not ok:
            self._problem(label, "check after " + cmd, out)
            return "BADCHECK"
        return v

    def _cuts(self, label, base, img, writes):
        """Encrypt cut at a third and two thirds of its writes; finish / roll back."""
        outs = []
        for third in (1, 2):
            n = max(1, writes * third // 3)
            for then in ("encrypt", "decrypt"):
                fixtures.sparse_copy(base, img)
                env = {"EXTCRYPT_FAIL_AT": str(n), "EXTCRYPT_BATCH_BYTES": str(CUT_BATCH)}
                v, _n, _w, err = self.attempt("encrypt", img, env=env)
                mark = ""
                if v == "refused":
                    # Small batches free space in smaller pieces: a refusal
                    # before any write is a verdict, not a failure; cut the
                    # run with the default batch instead ("d").
                    del env["EXTCRYPT_BATCH_BYTES"]
                    mark = "d"
                    v, _n, _w, err = self.attempt("encrypt", img, env=env)
                if v == "done":
                    outs.append("uncut" + mark)
                    continue
                if v != "cut":
                    self._problem(label, "cut encrypt (write %d) %s" % (n, v), err)
                    outs.append("X")
                    continue
                v2 = self._finish(label + " cut@%d" % n, img, then)
                outs.append("%s:%s%s" % (then[:3], "ok" if v2 == "done" else v2, mark))
        return outs

    def case(self, source, kind, target, base):
        label = "%s %s %d%%" % (source, kind, target)
        fill = fill_of(base)
        img = self.work / "w.img"
        fixtures.sparse_copy(base, img)
        dry, dnums, _w, derr = self.attempt("encrypt", img, dry=True)
        v, nums, writes, err = self.attempt("encrypt", img, counted=True)
        row = {"image": source, "kind": kind, "target": target, "fill": fill, "encrypt": v,
               "nums": nums or dnums, "decrypt": "-", "cuts": []}
        if v.startswith("FAILED"):
            self._problem(label, "encrypt " + v, err)
        if dry != v or (v == "refused" and dnums != nums):
            self._problem(label, "dry run %s %s, run %s %s" % (dry, dnums, v, nums), derr)
        if v == "refused":
            # The way out the message names: --grow completes, decrypt then too.
            fixtures.sparse_copy(base, img)
            g = self._finish(label + " --grow", img, "encrypt", ("--grow",))
            if g == "done":
                g = self._finish(label + " --grow", img, "decrypt")
            row["decrypt"] = "grow:" + ("ok" if g == "done" else g)
        if v == "done":
            ok, out = self.verify(img, True)
            if not ok:
                self._problem(label, "check after encrypt", out)
                row["encrypt"] = "BADCHECK"
            row["decrypt"] = self._finish(label, img, "decrypt")
            row["cuts"] = self._cuts(label, base, img, writes)
        img.unlink()
        self.rows.append(row)
        self.log(self.format_row(row))
        return row

    @staticmethod
    def header():
        return "%-6s %-5s %5s %6s  %-8s %-8s %12s %12s  %s" % (
            "image", "kind", "fill", "real", "encrypt", "decrypt", "needed", "available",
            "cut encrypt, then encrypt / decrypt")

    @staticmethod
    def format_row(r):
        need, avail = r["nums"] or ("-", "-")
        return "%-6s %-5s %4d%% %5.1f%%  %-8s %-8s %12s %12s  %s" % (
            r["image"], r["kind"], r["target"], r["fill"], r["encrypt"], r["decrypt"], need,
            avail, " ".join(r["cuts"]) or "-")

"""Seeds, the per-mutant command runs and their judgement.

For each mutant every command of the tool runs; a run is bad when it crashes
(signal or sanitizer report), hangs (timeout), or exits outside 0-4.  On top
of that the differential rules are applied:

  (a) a plain mutant that our `check` calls clean (exit 0) but that Debian's
      `btrfs check --readonly` (original or lowmem mode) rejects.  A
      `btrfs check` timeout is "no verdict" (6.2 hangs on some inputs).
  (b) a mutant that both checks call clean (for encrypted mutants, which
      `btrfs check` cannot open, our check alone) must stay clean under our
      `check` and, for plain results, `btrfs check` after each write command
      (encrypt, decrypt, reflink) that exits 0.
  (w) a write command that exits non-zero but changed the image must leave an
      image our check still calls clean when it was clean before.

Findings carry a kind ("crash", "hang", "exit", "diff-a", "diff-b",
"write-nonzero") and the mutation class; engine.Result collects the counts.
"""

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

from .mutate import Seed
from .ondisk import bo, fixtures, runner

KEY = bytes(range(7, 7 + 64))
MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# Seeds

class SeedSpec:
    """csum-NNk-plain|enc[-mini]: mini seeds hold a tiny, compressible tree
    (their mutants make small regression images)."""

    def __init__(self, csum, nodesize, encrypted, mini=False):
        self.csum, self.nodesize, self.encrypted = csum, nodesize, encrypted
        self.mini = mini

    @property
    def name(self):
        return "%s-%dk-%s%s" % (self.csum, self.nodesize // 1024,
                                "enc" if self.encrypted else "plain",
                                "-mini" if self.mini else "")

    @classmethod
    def parse(cls, text):
        parts = text.split("-")
        if len(parts) not in (3, 4) or parts[2] not in ("plain", "enc") or \
                parts[3:] not in ([], ["mini"]):
            raise ValueError("bad seed name %r (csum-NNk-plain|enc[-mini])" % text)
        return cls(parts[0], int(parts[1].rstrip("k")) * 1024, parts[2] == "enc",
                   parts[3:] == ["mini"])


def make_mini_tree(dest):
    """A few of each kind of inode, with compressible contents."""
    os.makedirs(os.path.join(dest, "dir", "sub"))
    text = b"".join(b"line %05d of a compressible file\n" % i for i in range(400))

    def w(rel, data):
        with open(os.path.join(dest, rel), "wb") as f:
            f.write(data)
    w("inline.txt", b"small inline file\n")
    w("regular.txt", text)
    w("dir/two-sectors.bin", text[:8192])
    w("dir/sub/tail.txt", text[:4097])
    os.symlink("../regular.txt", os.path.join(dest, "dir", "link"))
    os.link(os.path.join(dest, "regular.txt"), os.path.join(dest, "dir", "hardlink"))
    try:
        os.setxattr(os.path.join(dest, "inline.txt"), "user.attr", b"value")
    except OSError:
        pass
    # Enough entries for several leaves and a node at nodesize 4096.
    os.makedirs(os.path.join(dest, "many"))
    for i in range(48):
        size = (0, 0, 40, 0, 0, 2001)[i % 6]
        w("many/entry-%02d-%s" % (i, "x" * (i % 13)), text[i:i + size])
    for root, dirs, files in os.walk(dest):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (fixtures.FIXED_TIME,) * 2, follow_symlinks=False)


# The smoke set's seeds are stored (seeds/*.img.xz, made by
# `run_fuzz.py --make-seeds`): images made at run time differ from run to run
# (mkfs --rootdir takes the host's inode numbers; encrypt draws nonces), so the
# same mutant indexes would hit other items.
SMOKE_SEEDS = ("crc32c-4k-plain-mini", "xxhash-16k-enc-mini")
SEEDS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
ALL_SEEDS = tuple("%s-%dk-%s" % (c, n, k) for c in fixtures.CSUM_TYPES
                  for n in (4, 16) for k in ("plain", "enc"))


class SeedImage:
    """A built seed: the image, what it contains, its parsed blocks."""

    def __init__(self, spec, path, keyfile):
        self.spec, self.path, self.keyfile = spec, str(path), str(keyfile)
        self.seed = Seed(path, spec.name)
        self.files, self.dirs = [], []
        self.data_addrs, self.meta_addrs = [], []
        self.root_names = []            # (name, inode) in the top directory
        with bo.Image(self.path) as img:
            for blk in img.walk(img.tree_roots()[bo.FS_TREE][0], bo.FS_TREE):
                if blk.level:
                    continue
                for it in blk.items():
                    body = blk.item_data(it)
                    if it.key.type == bo.INODE_ITEM:
                        mode = bo.get(body, 0x34, "<I")
                        kind = mode & 0o170000
                        if kind == 0o100000:
                            self.files.append(it.key.objectid)
                        elif kind == 0o040000:
                            self.dirs.append(it.key.objectid)
                    elif it.key.type == bo.DIR_INDEX and it.key.objectid == 256:
                        nlen = bo.get(body, 27, "<H")
                        self.root_names.append((body[30:30 + nlen], bo.get(body, 0, "<Q")))
                    elif it.key.type == bo.EXTENT_DATA and len(body) >= 53 and body[20]:
                        d = bo.get(body, 21, "<Q")
                        if d:
                            self.data_addrs.append(d)
        self.meta_addrs = [b.logical for b in self.seed.blocks]


def unpack_xz(src, dst):
    """Decompress an .xz image, keeping runs of zeros as holes."""
    import lzma
    with lzma.open(src) as fi, open(dst, "wb") as fo:
        while True:
            chunk = fi.read(MiB)
            if not chunk:
                break
            if chunk.count(0) == len(chunk):
                fo.seek(len(chunk), 1)
            else:
                fo.write(chunk)
        fo.truncate()
    return dst


def build_seeds(specs, workdir, bin_path, stored=False):
    """The seed images in workdir; returns [SeedImage].  With stored=True a
    seed found in SEEDS_DIR is unpacked instead of made."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    keyfile = os.path.join(workdir, "key")
    with open(keyfile, "wb") as f:
        f.write(KEY)
    out = []
    plain = {}
    for text in specs:
        spec = SeedSpec.parse(text)
        packed = os.path.join(SEEDS_DIR, spec.name + ".img.xz")
        if stored and os.path.exists(packed):
            path = unpack_xz(packed, os.path.join(workdir, spec.name + ".img"))
            out.append(SeedImage(spec, path, keyfile))
            continue
        src = os.path.join(workdir, "src-mini" if spec.mini else "src")
        if not os.path.isdir(src):
            if spec.mini:
                make_mini_tree(src)
            else:
                fixtures.make_sample_tree(src, seed=5, big_mib=0, dir_entries=60)
        pkey = (spec.csum, spec.nodesize, spec.mini)
        if pkey not in plain:
            p = os.path.join(workdir, "%s-%dk-plain%s.img" % (
                spec.csum, spec.nodesize // 1024, "-mini" if spec.mini else ""))
            fixtures.mkfs(p, rootdir=src, csum=spec.csum, nodesize=spec.nodesize, size_mib=64)
            plain[pkey] = p
        path = plain[pkey]
        if spec.encrypted:
            path = os.path.join(workdir, spec.name + ".img")
            fixtures.sparse_copy(plain[pkey], path)
            res = subprocess.run([bin_path, "-q", "encrypt", "--key-file", keyfile, path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env=runner.sanitizer_env(), timeout=600)
            if res.returncode != 0:
                raise RuntimeError("encrypting seed %s failed: %s" % (spec.name, res.stderr))
        out.append(SeedImage(spec, path, keyfile))
    return out


# ---------------------------------------------------------------------------
# Running and judging

def image_digest(path):
    """Hash of the image contents (data segments only: the images are sparse)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            f.seek(data)
            left = hole - data
            h.update(data.to_bytes(8, "little"))
            while left:
                chunk = f.read(min(left, 4 * MiB))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            pos = hole
        h.update(size.to_bytes(8, "little"))
    return h.hexdigest()


class Run:
    __slots__ = ("name", "args", "rc", "stderr", "hang", "crash")

    def __init__(self, name, args, rc, stderr, hang=False, crash=None):
        self.name, self.args, self.rc, self.stderr = name, args, rc, stderr
        self.hang, self.crash = hang, crash


PROGS_NOISE = ("[", "Opening filesystem", "Checking filesystem", "UUID:", "found ",
               "total ", "file data blocks", "btree space waste", "cache and super",
               "checksum verify failed")


def progs_reason(stderr):
    """btrfs check's stderr, its first informative lines first."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    good = [ln for ln in lines if not ln.startswith(PROGS_NOISE)]
    return "\n".join(good[:6] + ["--"] + lines[-10:])[:1500]


def crash_reason(rc, stderr):
    if rc < 0:
        try:
            return "signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "signal %d" % -rc
    if rc in runner.SANITIZER_EXITS:
        return runner.SANITIZER_EXITS[rc]
    for marker in runner.SANITIZER_MARKERS:
        if marker in stderr:
            return "sanitizer report (%s)" % marker
    return None


class Engine:
    def __init__(self, bin_path, workdir, timeout=30, progs_timeout=15, progs=True,
                 findings_dir=None, keep_per_class=2, differential=False):
        self.bin = os.path.abspath(bin_path)
        with open(self.bin, "rb") as f:
            self.sanitized = b"__asan_init" in f.read()
        self.timeout = timeout * (4 if self.sanitized else 1)
        self.progs_timeout = progs_timeout
        self.progs = progs and shutil.which("btrfs") is not None
        self.workdir = workdir
        self.env = runner.sanitizer_env()
        self.findings_dir = findings_dir
        self.keep_per_class = keep_per_class
        # Only rule a: our check (without and with --check-data-csum) and
        # btrfs check on the mutants it calls clean; no other command.
        self.differential = differential
        self.saved = {}

    # -- processes ---------------------------------------------------------
    def ours(self, name, *args, cwd=None):
        argv = [self.bin] + [str(a) for a in args]
        try:
            res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, env=self.env, cwd=cwd,
                                 timeout=self.timeout)
        except subprocess.TimeoutExpired as e:
            return Run(name, argv, None, (e.stderr or b"").decode(errors="replace"), hang=True)
        err = res.stderr.decode(errors="replace")
        return Run(name, argv, res.returncode, err, crash=crash_reason(res.returncode, err))

    def progs_check(self, path):
        """'clean', 'reject' or None (no verdict: timeout) from btrfs check, both modes."""
        for mode in ("original", "lowmem"):
            try:
                res = subprocess.run(["btrfs", "check", "--readonly", "--mode", mode, path],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, timeout=self.progs_timeout)
            except subprocess.TimeoutExpired:
                return None, mode + ": timeout"
            if res.returncode != 0:
                err = res.stderr.decode(errors="replace")
                return "reject", "%s: exit %d: %s" % (mode, res.returncode, progs_reason(err))
        return "clean", ""

    # -- one mutant ----------------------------------------------------------
    def run_mutant(self, seed_img, mutation, result, tag):
        d = tempfile.mkdtemp(prefix="m-", dir=self.workdir)
        try:
            self._run_mutant(seed_img, mutation, result, tag, d)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def _fresh(self, seed_img, mutation, d, name):
        p = os.path.join(d, name)
        fixtures.sparse_copy(seed_img.path, p)
        mutation.apply(p)
        return p

    def _run_mutant(self, si, mut, result, tag, d):
        enc = si.spec.encrypted
        key = si.keyfile
        m = self._fresh(si, mut, d, "mutant.img")
        digest0 = image_digest(m)
        runs = []

        def note(run, chain=None):
            runs.append(run)
            return self.judge_run(result, si, mut, m, tag, run, chain)

        chk = note(self.ours("check", "check", m))
        note(self.ours("check --check-data-csum", "check", "--check-data-csum", m))
        if self.differential:
            self.judge_progs(result, si, mut, m, chk, tag)
            result.mutants += 1
            return
        note(self.ours("check --key-file", "check", "--key-file", key, m))
        note(self.ours("dump-super", "inspect", "dump-super", "--all", m))
        note(self.ours("dump-tree", "inspect", "dump-tree", m))
        rng = random.Random(tag)
        addrs = [0]
        if si.data_addrs:
            addrs.append(rng.choice(si.data_addrs))
        addrs.append(rng.choice(si.meta_addrs))
        for a in addrs:
            note(self.ours("resolve-logical", "inspect", "resolve-logical", a, m))
        for ino in (256, rng.choice(si.files)):
            note(self.ours("inspect file", "inspect", "file", "--root", "5", "--inode", ino, m))
        names = [n for n, _ino in si.root_names]
        if names and not enc:
            note(self.ours("inspect file", "inspect", "file", "/" + rng.choice(names).decode(
                errors="surrogateescape"), m))
        out = os.path.join(d, "out")
        rargs = ("--key-file", key) if enc else ()
        note(self.ours("restore", "restore", *rargs, m, out))
        shutil.rmtree(out, ignore_errors=True)
        note(self.ours("restore --raw", "restore", "--raw", m, out))
        shutil.rmtree(out, ignore_errors=True)
        note(self.ours("encrypt --dry-run", "encrypt", "--dry-run", "--key-file", key, m))
        if image_digest(m) != digest0:
            self.finding(result, "readonly-wrote", mut, si, None, runs[-1],
                         "a read-only command changed the image", tag)
            return

        ours_clean = chk.rc == 0
        progs = self.judge_progs(result, si, mut, m, chk, tag)
        both_clean = ours_clean and (enc or progs == "clean")

        # Write commands, each on its own copy of the mutant.
        first, second = ("decrypt", "encrypt") if enc else ("encrypt", "decrypt")
        w = self._fresh(si, mut, d, "w.img")
        r1 = note(self.ours(first, first, "--key-file", key, w))
        self.judge_write(result, si, mut, m, w, [r1], both_clean, tag, digest0, plain_after=enc)
        if r1.rc == 0 and both_clean:
            before = image_digest(w)
            r2 = self.ours(first + "+" + second, second, "--key-file", key, w)
            note(r2, [r1, r2])
            self.judge_write(result, si, mut, m, w, [r1, r2], both_clean, tag, before,
                             plain_after=not enc)
        os.unlink(w)
        w = self._fresh(si, mut, d, "r.img")
        src, dst = rng.sample(si.files, 2) if len(si.files) > 1 else (si.files[0],) * 2
        files = [n for n, ino in si.root_names if ino in si.files]
        if files and not enc and rng.random() < 0.5:
            # By path, into a new file at an aligned offset.
            off = rng.choice((0, 4096, 1 << 20))
            r3 = note(self.ours("reflink", "reflink", "--create", "--dest-offset", off,
                                "/" + rng.choice(files).decode(errors="surrogateescape"),
                                "/fuzz-new", w))
        else:
            r3 = note(self.ours("reflink", "reflink", "--src-inode", src, "--dst-inode", dst, w))
        self.judge_write(result, si, mut, m, w, [r3], both_clean, tag, digest0,
                         plain_after=not enc)
        result.mutants += 1

    def judge_progs(self, result, si, mut, m, chk, tag):
        """Rule a on a plain mutant our check calls clean: btrfs check's
        verdict ('clean', 'reject', None: not asked or no verdict).  Encrypted
        images are left out: btrfs-progs 6.2 and 6.14 refuse the ENCRYPT
        incompat bit, and with it cleared they call every encrypted dir entry
        a filetype mismatch (the 0x80 flag)."""
        if chk.rc != 0 or si.spec.encrypted or not self.progs:
            return None
        progs, why = self.progs_check(m)
        result.progs[progs or "timeout"] += 1
        if progs == "reject":
            self.finding(result, "diff-a", mut, si, m, chk,
                         "our check: clean; btrfs check: " + why, tag)
        return progs

    def judge_run(self, result, si, mut, m, tag, run, chain=None):
        """Count a run; a crash, sanitizer report, hang or exit outside 0-4 is
        a finding (chain: the runs that led to it on the same image)."""
        result.count(run)
        if run.crash or run.hang or (run.rc is not None and not 0 <= run.rc <= 4):
            kind = "crash" if run.crash else "hang" if run.hang else "exit"
            why = run.crash or ("timeout %ds" % self.timeout if run.hang else
                                "exit %d" % run.rc)
            extra = None
            if chain:
                seq = list(chain) + ([] if run is chain[-1] else [run])
                extra = {"commands": [[os.path.basename(r.args[0])] + r.args[1:]
                                      for r in seq]}
            self.finding(result, kind, mut, si, m, run, why, tag, extra)
        return run

    def judge_write(self, result, si, mut, m, w, chain, both_clean, tag, before, plain_after):
        """Rules b and w for the last run of chain (the runs made on w, in order)."""
        run = chain[-1]
        extra = {"commands": [[os.path.basename(r.args[0])] + r.args[1:] for r in chain],
                 "plain_after": plain_after}
        if run.rc is None or run.crash:
            return
        if run.rc == 0:
            if not both_clean:
                return
            after = self.judge_run(result, si, mut, m, tag,
                                   self.ours("check after " + run.name, "check", w), chain)
            if after.rc is None or after.crash:
                return
            if after.rc != 0:
                self.finding(result, "diff-b", mut, si, m, run,
                             "our check after %s: exit %d: %s" % (run.name, after.rc,
                                                                 after.stderr[-1500:]), tag,
                             extra)
                return
            if plain_after and self.progs:
                verdict, why = self.progs_check(w)
                if verdict == "reject":
                    self.finding(result, "diff-b", mut, si, m, run,
                                 "btrfs check after %s: %s" % (run.name, why), tag, extra)
            return
        # Exit 1-4: fine if the image is unchanged (refused before writing) or
        # still clean; judged only when the mutant was clean to begin with.
        if not both_clean or image_digest(w) == before:
            return
        after = self.judge_run(result, si, mut, m, tag,
                               self.ours("check after " + run.name, "check", w), chain)
        if after.rc is not None and not after.crash and after.rc != 0:
            self.finding(result, "write-nonzero", mut, si, m, run,
                         "%s exit %d left an image our check rejects (exit %d): %s"
                         % (run.name, run.rc, after.rc, after.stderr[-1500:]), tag, extra)

    # -- findings --------------------------------------------------------------
    def finding(self, result, kind, mut, si, image, run, why, tag, extra=None):
        cls = mut.cls if kind not in ("diff-b", "write-nonzero") else \
            "%s:%s" % (run.name, mut.cls)
        f = {"kind": kind, "class": cls, "seed": si.spec.name, "mutation": mut.desc,
             "command": [os.path.basename(run.args[0])] + run.args[1:], "rc": run.rc,
             "why": why[-3000:], "stderr": run.stderr[-3000:], "tag": tag}
        f.update(extra or {})
        result.add_finding(f)
        if self.findings_dir and image:
            n = self.saved.get((kind, cls), 0)
            if n < self.keep_per_class:
                self.saved[(kind, cls)] = n + 1
                f["image"] = save_image(image, self.findings_dir, "%s-%s-%s" % (
                    kind, cls.replace("/", "_").replace(":", "_").replace(" ", "_"), tag), f)


def save_image(image, outdir, stem, note):
    os.makedirs(outdir, exist_ok=True)
    dst = os.path.join(outdir, stem + ".img.xz")
    with open(dst, "wb") as out:
        subprocess.run(["xz", "-T1", "-3", "-c", image], stdout=out, check=True)
    with open(os.path.join(outdir, stem + ".json"), "w") as f:
        json.dump(dict(note, image=os.path.basename(dst)), f, indent=1, default=str)
    return dst


class Result:
    """Counts per command and the findings of a set of mutants."""

    def __init__(self):
        self.mutants = 0
        self.runs = {}              # command -> {rc: n}
        self.findings = []
        import collections
        self.progs = collections.Counter()

    def count(self, run):
        rc = "hang" if run.hang else ("crash" if run.crash else run.rc)
        per = self.runs.setdefault(run.name, {})
        per[rc] = per.get(rc, 0) + 1

    def add_finding(self, f):
        self.findings.append(f)

    def merge(self, other):
        self.mutants += other.mutants
        for cmd, per in other.runs.items():
            mine = self.runs.setdefault(cmd, {})
            for rc, n in per.items():
                mine[rc] = mine.get(rc, 0) + n
        self.findings += other.findings
        self.progs.update(other.progs)

    def total_runs(self):
        return sum(sum(p.values()) for p in self.runs.values())

    def to_json(self):
        return {"mutants": self.mutants, "runs": self.runs, "findings": self.findings,
                "progs": dict(self.progs)}

    @classmethod
    def from_json(cls, doc):
        r = cls()
        r.mutants = doc["mutants"]
        r.runs = {c: {(int(k) if str(k).lstrip("-").isdigit() else k): v for k, v in p.items()}
                  for c, p in doc["runs"].items()}
        r.findings = doc["findings"]
        r.progs.update(doc["progs"])
        return r


# ---------------------------------------------------------------------------
# The known-lax allowlist

def load_allowlist(path):
    """{class pattern: reason} from known-lax.txt ('CLASS  reason'; # comments)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                raise ValueError("%s: no reason given for %r" % (path, line))
            out[parts[0]] = parts[1]
    return out


def allowed(cls, allow):
    """The reason for cls in the allowlist, or None.  A class found after a
    write command ("cmd:class") matches only patterns with such a prefix,
    except "decrypt:CLASS" from an encrypted mutant, which stands for CLASS
    (btrfs check cannot open the encrypted mutant itself)."""
    import fnmatch
    names = [cls]
    if cls.startswith("decrypt:"):
        names.append(cls[len("decrypt:"):])
    for name in names:
        for pat, reason in allow.items():
            if (":" in pat) == (":" in name) and fnmatch.fnmatchcase(name, pat):
                return reason
    return None


def run_mutants(engine, seeds, rng_seed, count=None, deadline=None, worker=0, nworkers=1):
    """Mutate and run until count mutants (this worker's share) or the deadline."""
    result = Result()
    i = worker
    while True:
        if count is not None and i >= count:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        si = seeds[i % len(seeds)]
        rng = random.Random("%s:%d" % (rng_seed, i))
        mut = si.seed.mutate(rng)
        engine.run_mutant(si, mut, result, "%s-%d" % (rng_seed, i))
        i += nworkers
    return result

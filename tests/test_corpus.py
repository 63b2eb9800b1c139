"""Real-world corrupted images: btrfs-progs' own fsck test images.

The corpus lives outside the repository, in shared/corpus beside it
(`<repo>/../shared/corpus/btrfs-progs-fsck-tests`; CI puts a copy of shared/
beside its clone), or where env EXTCRYPT_CORPUS points. Its README explains
the formats: *.img metadumps (restored with `btrfs-image -r`), *.xz
compressed raw images or metadumps, *.tar.xz tarballs of images.

Per restored image: `inspect dump-super`, `inspect dump-tree` of everything
(text and JSON), `inspect dump-tree -t ID` of every tree the root tree lists,
and `inspect file --root R --inode N` on its inodes (enumerated from
btrfs-progs' dump-tree and our own JSON dump). Every run must end without
crash, sanitizer report or hang, with either exit 0 and no ERROR line or
exit 3 and exactly one ERROR line.

Against the sanitizer build every tree and up to 1,000 inodes per image are
visited (every inode was about 21,700 runs, 111 s of them on one image of
17,000 inodes in 100 snapshots; 1,000 evenly spread inodes of it still reach
every snapshot). Against the normal build, which the sanitizer run covers,
inodes and trees per image are capped at 100 and 40. Both caps use an even,
deterministic spread that keeps the first and the last.
EXTCRYPT_CORPUS_MAX_INODES=N overrides the inode cap (0 = none).
"""

import json
import lzma
import os
import re
import shutil
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runner import error_lines

pytestmark = pytest.mark.slow  # corpus

MAGIC = b"_BHRfS_M"
CMD_TIMEOUT = 30
NORMAL_BUILD_MAX_INODES = 100
# The sanitized build reads many more inodes of each image, spread evenly;
# every inode of 020/shared_block_ref_only alone took 111 s of CI's
# ASan+UBSan suite (pytest --durations), the suite's longest test.
SANITIZED_MAX_INODES = 1000
MAX_TREES = 40


def corpus_dir():
    """The btrfs-progs-fsck-tests directory, or None."""
    cands = [Path(__file__).resolve().parents[2] / "shared" / "corpus"]
    env = os.environ.get("EXTCRYPT_CORPUS")
    if env:
        cands.insert(0, Path(env))
    for c in cands:
        for d in (c / "btrfs-progs-fsck-tests", c):
            if d.is_dir() and any(d.glob("*/*")):
                return d
    return None


def _has_magic(path):
    try:
        with open(path, "rb") as f:
            f.seek(0x10000 + 0x40)
            return f.read(8) == MAGIC
    except OSError:
        return False


def corpus_entries():
    """(param id, source file, member or None) for every image in the corpus."""
    d = corpus_dir()
    if d is None:
        return []
    out = []
    for f in sorted(p for p in d.rglob("*") if p.is_file() and p.name != "README.md"):
        rel = f.relative_to(d).as_posix()
        if f.name.endswith(".tar.xz"):
            try:
                with tarfile.open(f, "r:xz") as tf:
                    members = [m.name for m in tf.getmembers() if m.isfile()]
            except (tarfile.TarError, lzma.LZMAError, EOFError):
                members = []
            for m in members or [None]:
                out.append(("%s:%s" % (rel, m) if m else rel, f, m))
        else:
            out.append((rel, f, None))
    return out


def pytest_generate_tests(metafunc):
    if "entry" in metafunc.fixturenames:
        entries = corpus_entries()
        if not entries:
            metafunc.parametrize("entry", [pytest.param(None, marks=pytest.mark.skip(
                reason="corpus not found: neither <repo>/../shared/corpus/"
                       "btrfs-progs-fsck-tests nor $EXTCRYPT_CORPUS"))], ids=["no-corpus"])
        else:
            metafunc.parametrize("entry", entries, ids=[e[0] for e in entries])


def _run_quiet(cmd, timeout=300):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


class Restorer:
    """Restores corpus files once per session into a temp dir."""

    def __init__(self, root):
        self.root = root
        self.cache = {}

    def _restore_metadump(self, src, dst):
        """Raw image from a metadump; returns (path, note)."""
        res = _run_quiet(["btrfs-image", "-r", src, dst])
        if res.returncode == 0 and _has_magic(dst):
            return dst, "metadump restored"
        return src, "btrfs-image -r failed (%d: %s); testing the file as is" % (
            res.returncode, res.stderr.decode(errors="replace").strip()[-200:])

    def _as_image(self, path, name):
        if _has_magic(path):
            return path, "raw image"
        return self._restore_metadump(path, self.root / (name + ".restored.img"))

    def get(self, rel, src, member):
        key = (rel, member)
        if key in self.cache:
            return self.cache[key]
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", rel)
        if src.name.endswith(".tar.xz"):
            outdir = self.root / (name + ".d")
            if not outdir.exists():
                outdir.mkdir()
                # GNU tar keeps sparse members sparse (the images are 2 GiB).
                res = _run_quiet(["tar", "-xJf", src, "-C", outdir])
                assert res.returncode == 0, res.stderr
            result = self._as_image(outdir / member, name)
        elif src.name.endswith(".xz"):
            raw = self.root / (name[:-3])
            # xz writes holes for zero runs when the output is a regular file.
            with open(raw, "wb") as out:
                res = subprocess.run(["xz", "-dc", str(src)], stdout=out,
                                     stderr=subprocess.PIPE, timeout=300)
            assert res.returncode == 0, res.stderr
            result = self._as_image(raw, name)
        else:
            result = self._as_image(src, name)
        self.cache[key] = result
        return result


@pytest.fixture(scope="session")
def restorer(tmp_path_factory):
    for tool in ("btrfs-image", "xz", "tar", "btrfs"):
        if shutil.which(tool) is None:
            pytest.skip("%s not installed" % tool)
    return Restorer(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as ex:
        yield ex


_TREE_HDR = re.compile(r"^(?:fs|file) tree key \((\S+) ROOT_ITEM")
_ANY_TREE_HDR = re.compile(r"^\S.* tree key \(|^(?:root|chunk) tree$")
_INODE = re.compile(r"^\s+item \d+ key \((\d+) INODE_ITEM 0\)")
_ROOT_ITEM = re.compile(r"^\s+item \d+ key \((\S+) ROOT_ITEM ")
_NAMED = {"FS_TREE": 5, "ROOT_TREE": 1, "EXTENT_TREE": 2, "CHUNK_TREE": 3, "DEV_TREE": 4,
          "CSUM_TREE": 7, "QUOTA_TREE": 8, "UUID_TREE": 9, "FREE_SPACE_TREE": 10,
          "BLOCK_GROUP_TREE": 11, "DATA_RELOC_TREE": (1 << 64) - 9,
          "TREE_RELOC": (1 << 64) - 8, "TREE_LOG": (1 << 64) - 6}


def _objid(tok):
    if tok in _NAMED:
        return _NAMED[tok]
    try:
        return int(tok)
    except ValueError:
        return None


def progs_inventory(image):
    """(tree ids of ROOT_ITEMs, {(root, ino)}) from btrfs-progs' dump-tree."""
    try:
        res = subprocess.run(["btrfs", "inspect-internal", "dump-tree", str(image)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=120)
        text = res.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode(errors="replace")
    trees, inodes = set(), set()
    cur = None
    in_root_tree = False
    for line in text.splitlines():
        if _ANY_TREE_HDR.match(line):
            m = _TREE_HDR.match(line)
            cur = _objid(m.group(1)) if m else None
            in_root_tree = line.startswith("root tree")
            continue
        if in_root_tree:
            m = _ROOT_ITEM.match(line)
            if m and _objid(m.group(1)) is not None:
                trees.add(_objid(m.group(1)))
        if cur is not None:
            m = _INODE.match(line)
            if m:
                inodes.add((cur, int(m.group(1))))
    return trees, inodes


def our_inventory(run, image):
    """The same from our own JSON dump (when it succeeds), and that run."""
    trees, inodes = set(), set()
    res = run("--format", "json", "inspect", "dump-tree", image, timeout=CMD_TIMEOUT)
    if res.returncode != 0:
        return trees, inodes, res
    try:
        doc = json.loads(res.stdout)
    except ValueError:
        res.stderr += "\nERROR: (test) stdout is not valid JSON"
        return trees, inodes, res
    for tree in doc.get("trees", []):
        tid = tree.get("tree-id")
        for blk in tree.get("blocks", []):
            for it in blk.get("items", []):
                key = it.get("key", {})
                if tid == 1 and key.get("type") == "ROOT_ITEM":
                    trees.add(key.get("objectid"))
                if key.get("type") == "INODE_ITEM" and isinstance(tid, int) and (
                        tid == 5 or 256 <= tid < (1 << 63)):
                    inodes.add((tid, key.get("objectid")))
    return trees, inodes, res


def spread(items, cap):
    """At most cap items, evenly spread, first and last included."""
    items = sorted(items)
    if cap <= 0 or len(items) <= cap:
        return items
    step = (len(items) - 1) / (cap - 1)
    return sorted({items[round(i * step)] for i in range(cap)})


def judge(res):
    """'' if exit 0 without ERROR or exit 3 with one ERROR line, else why not."""
    errs = error_lines(res.stderr)
    if res.returncode == 0 and not errs:
        return ""
    if res.returncode == 3 and len(errs) == 1:
        return ""
    return "%s: exit %d with %d ERROR line(s): %s" % (
        " ".join(res.args[1:-1]), res.returncode, len(errs),
        (errs or [res.stderr.strip()[-300:]])[:3])


def test_corpus_found():
    if corpus_dir() is None:
        pytest.skip("corpus not found (shared/corpus beside the repository or "
                    "$EXTCRYPT_CORPUS)")
    assert len(corpus_entries()) >= 50


def test_corpus_image(entry, run, restorer, pool):
    rel, src, member = entry
    image, note = restorer.get(rel, src, member)
    cmds = [["inspect", "dump-super", image],
            ["inspect", "dump-super", "--all", image],
            ["inspect", "dump-tree", image]]
    # Enumerate trees and inodes (progs is tolerant of damage; ours may stop).
    ptrees, pinodes = progs_inventory(image)
    otrees, oinodes, json_run = our_inventory(run, image)
    trees = {1, 3} | ptrees | otrees
    for tid in spread(trees, 0 if run.sanitized else MAX_TREES):
        cmds.append(["inspect", "dump-tree", "-t", str(tid), image])
    cap = os.environ.get("EXTCRYPT_CORPUS_MAX_INODES")
    cap = int(cap) if cap else (SANITIZED_MAX_INODES if run.sanitized else NORMAL_BUILD_MAX_INODES)
    for root, ino in spread(pinodes | oinodes, cap):
        cmds.append(["inspect", "file", "--root", str(root), "--inode", str(ino), image])
    futures = [pool.submit(run, *args, timeout=CMD_TIMEOUT) for args in cmds]
    results = [json_run] + [f.result() for f in futures]
    problems = [p for p in (judge(r) for r in results) if p]
    assert not problems, "%s (%s):\n%s" % (rel, note, "\n".join(problems))

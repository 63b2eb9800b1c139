"""Offline `reflink` against the kernel's FICLONERANGE (issue 4, "Must hold").

1. Kernel reference matrix (root): a plain image with kernel-made content
   (tests/lib/reflink_lib.make_matrix_image: multi-extent files, zstd/zlib/lzo
   compressed extents, prealloc, holes, inline files, a subvolume with a rw
   snapshot whose leaves are still shared, a ro snapshot) is copied twice.
   On copy K every case runs as FICLONERANGE on a rw loop mount; on copy O
   every case runs as one `btrfs-extcrypt reflink` (--create where the
   destination is new).  Then, for O: `btrfs check --check-data-csum` in
   original and lowmem modes exit 0; a ro mount + `btrfs scrub start -B -r`
   is clean and dmesg has no new BTRFS critical/error/warning line for that
   loop device; every file read through the kernel equals K's (size and
   sha256); data extents have K's refs and backref tuples (multisets per
   bytenr; metadata is allocated differently, so not compared); per case,
   the destination's file extent items, size and nbytes equal K's.
   Refusals: our exit 1 with one ERROR line and the image byte-identical;
   the kernel refuses the same operations (errno recorded in the message).
   Known deviations (the kernel accepts, ours refuses cleanly) are listed
   in DEVIATIONS and checked to stay clean refusals.
2. Stress (nodesize 4K, blake2 csums so the csum tree has many leaves):
   500 random reflinks among 10 multi-extent files (root: plus their copies
   in a snapshot of the top level, leaves shared), one command each, then
   `btrfs check --check-data-csum` (original and lowmem); and 50 runs of 10
   reflinks with `btrfs check` after each run.  Root: the contents read
   through a ro mount equal a Python model of FICLONERANGE, scrub is clean,
   and the kernel replaying the same operations on a copy of the base gives
   the same contents and the same data backrefs.  Each failure writes a
   shell script of all commands so far (repro.sh in the test's tmp dir).
3. Crash sweep: a reflink touching the fs, extent, free-space and root trees
   is cut at every write (EXTCRYPT_FAIL_AT=1..N, fault-injection builds):
   after each cut `btrfs check` is clean and the image is exactly the
   before or the after state (variants: over existing data; --create).
4. Smaller contracts: no-op reflinks, --create at the top level, usage
   errors, --root/--src-inode/--dst-inode equal to paths.

All images are 128-160 MiB sparse files.  The matrix and stress images need
root (CI runs as root); the crash sweep needs a fault-injection build.
"""

import collections
import os
import random
import re
import shutil
import time
from pathlib import Path

import pytest

import fixtures
import reflink_lib as L
from conftest import root_skip_reason
from runner import error_lines

pytestmark = pytest.mark.slow  # kernel oracle, stress runs and crash sweeps

KiB, MiB = L.KiB, L.MiB

# (id, src, dst, src_offset, length, dest_offset, create)
CASES = [
    ("whole", "multi.bin", "new/whole.bin", 0, 0, 0, True),
    # First change of the snapshotted subvolume by its owner: shared leaf,
    # FULL_BACKREF conversion, two extents lose their last explicit ref.
    ("into-origin-shared-leaf", "multi.bin", "sv/late.bin", 0, 256 * KiB, 128 * KiB, False),
    ("whole-mkfs-extents", "mk/one.bin", "new/mk.bin", 0, 0, 0, True),
    ("whole-unaligned-eof", "odd.bin", "new/odd.bin", 0, 0, 0, True),
    ("at-extent-boundaries", "multi.bin", "new/at.bin", 128 * KiB, 256 * KiB, 0, True),
    ("inside-extents", "multi.bin", "new/inside.bin", 192 * KiB, 200 * KiB, 64 * KiB, True),
    ("to-src-eof-append", "multi2.bin", "over8.bin", 256 * KiB, 0, MiB, False),
    ("into-hole", "multi.bin", "holes-dst.bin", 0, 128 * KiB, 256 * KiB, False),
    ("over-data-split-two", "multi.bin", "over1.bin", 128 * KiB, 256 * KiB, 320 * KiB, False),
    ("over-data-inside-one", "multi.bin", "over2.bin", 0, 64 * KiB, 64 * KiB, False),
    ("over-data-whole-extents", "multi.bin", "over3.bin", 0, 512 * KiB, 256 * KiB, False),
    ("past-dst-eof-gap", "multi.bin", "over4.bin", 0, 128 * KiB, 2 * MiB, False),
    ("same-file", "within.bin", "within.bin", 0, 128 * KiB, 256 * KiB, False),
    ("same-file-inside", "within2.bin", "within2.bin", 64 * KiB, 128 * KiB, 320 * KiB, False),
    ("zstd-whole", "zstd.txt", "new/zstd.txt", 0, 0, 0, True),
    ("zlib-partial", "zlib.txt", "new/zlib.bin", 64 * KiB, 128 * KiB, 0, True),
    ("lzo-over-data", "lzo.txt", "over5.bin", 4 * KiB, 8 * KiB, 4 * KiB, False),
    ("zstd-forced-random", "zstd-rand.bin", "new/zstd-rand.bin", 0, 0, 0, True),
    ("prealloc-src-whole", "pre.bin", "new/pre.bin", 0, 0, 0, True),
    ("prealloc-src-partial", "pre.bin", "new/pre-part.bin", 192 * KiB, 256 * KiB, 0, True),
    ("over-prealloc", "multi.bin", "pre-dst.bin", 0, 128 * KiB, 128 * KiB, False),
    ("over-prealloc-past-eof", "multi.bin", "pre-past-eof.bin", 0, 128 * KiB, 64 * KiB, False),
    ("prealloc-past-eof-src", "pre-past-eof.bin", "new/pre-past.bin", 0, 0, 0, True),
    ("nodatacow-to-nodatacow", "nocow.bin", "nocow-dst.bin", 0, 128 * KiB, 64 * KiB, False),
    ("holes-src-whole", "sparse.bin", "new/sparse.bin", 0, 0, 0, True),
    ("punched-src-over-data", "punched.bin", "over6.bin", 0, 0, 0, False),
    ("from-snapshot-shared", "snap/f.bin", "new/from-snap.bin", 0, 0, 0, True),
    ("into-snapshot-shared-leaf", "multi.bin", "snap/dst.bin", 0, 256 * KiB, 128 * KiB, False),
    ("into-snapshot-new-file", "sv/f.bin", "snap/new.bin", 128 * KiB, 256 * KiB, 0, True),
    ("cross-subvol-out", "sv/f.bin", "new/xsub.bin", 0, 256 * KiB, 0, True),
    ("cross-subvol-in", "multi.bin", "sv/dst2.bin", 256 * KiB, 256 * KiB, 128 * KiB, False),
    ("inline-whole-new", "tiny.txt", "new/tiny.txt", 0, 0, 0, True),
    ("inline-append", "tiny1500.bin", "over7.bin", 0, 0, MiB, False),
    ("inline-at-offset-new", "tiny.txt", "new/tiny-8k.txt", 0, 0, 8 * KiB, True),
    ("inline-compressed-whole-new", "zstd-inline.txt", "new/zinl.txt", 0, 0, 0, True),
    ("over-inline-dst", "multi.bin", "inl-dst.bin", 0, 8 * KiB, 0, False),
    ("chain-from-clone", "new/inside.bin", "new/chain.bin", 68 * KiB, 0, 0, True),
    ("count-merge", "multi.bin", "new/whole.bin", 64 * KiB, 64 * KiB, 64 * KiB, False),
    ("zlib-inline-compressed-over-dst", "zlib-inline.txt", "new/zinl.txt", 0, 0, 0, False),
]

# (id, src, dst, src_offset, length, dest_offset): the kernel refuses these too.
REFUSALS = [
    ("unaligned-src-offset", "multi.bin", "over9.bin", 1000, 4096, 0),
    ("unaligned-dst-offset", "multi.bin", "over9.bin", 0, 4096, 100),
    ("unaligned-length", "multi.bin", "over9.bin", 0, 5000, 0),
    ("overlap-same-file", "within.bin", "within.bin", 0, 128 * KiB, 64 * KiB),
    ("dst-in-ro-snapshot", "multi.bin", "snap-ro/dst.bin", 0, 4096, 0),
    ("dir-as-source", "new", "over9.bin", 0, 0, 0),
    ("dir-as-destination", "multi.bin", "new", 0, 4096, 0),
    ("eof-block-into-middle", "odd.bin", "over9.bin", 0, 0, 0),
    ("src-range-past-eof", "multi.bin", "over9.bin", 1020 * KiB, 8192, 0),
    ("nodatasum-to-datasum", "nocow.bin", "over9.bin", 0, 4096, 0),
    ("datasum-to-nodatasum", "multi.bin", "nocow-dst.bin", 0, 4096, 0),
    # Ends beyond the maximum file size (s_maxbytes, 2^63 - 1): EINVAL.
    ("beyond-max-file-size", "multi.bin", "over9.bin", 0, 8192, 2 ** 63 - 4096),
    ("to-eof-beyond-max-file-size", "multi.bin", "over9.bin", 0, 0, 2 ** 63 - 4096),
]

# (id, src, dst, src_offset, length, dest_offset, why): the kernel accepts these,
# our reflink refuses them cleanly (exit 1, one ERROR line, image unchanged).
# Known gaps, reported on issue 4; a case that starts to work moves to CASES.
DEVIATIONS = [
    ("past-unaligned-dst-eof", "multi.bin", "odd-dst.bin", 0, 4096, 128 * KiB,
     "the kernel zeroes the tail of the destination's unaligned last block first"),
    ("inline-compressed-append", "lzo-inline.txt", "over9.bin", 0, 0, MiB,
     "the kernel decompresses the inline extent into the page cache"),
]

TREES = (5, 256, 257, 258)          # top level, sv, snap, snap-ro (make_matrix_image)


def reflink_args(src, dst, image, so=0, length=0, do=0, create=False):
    args = ["reflink", "--src-offset", str(so), "--length", str(length),
            "--dest-offset", str(do)]
    if create:
        args.append("--create")
    return args + [src, dst, str(image)]


def shown(args, bin_name="btrfs-extcrypt"):
    return " ".join([bin_name] + [str(a) for a in args])


# ---------------------------------------------------------------------------
# 1. The kernel matrix: one module-scoped run, judged by many small tests.

class Matrix:
    pass


MATRIX_CONFIGS = [("crc32c", 16384), ("xxhash", 4096)]


@pytest.fixture(scope="module", params=MATRIX_CONFIGS,
                ids=["%s-%dk" % (c, n // 1024) for c, n in MATRIX_CONFIGS])
def matrix(run, tmp_path_factory, request):
    csum, nodesize = request.param
    reason = root_skip_reason()
    if reason:
        pytest.skip(reason)
    for tool in ("mkfs.btrfs", "btrfs", "fallocate", "findmnt"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed" % tool)
    t0 = time.monotonic()
    work = tmp_path_factory.mktemp("reflink-matrix")
    M = Matrix()
    M.work = work
    M.base = L.make_matrix_image(work / "base.img", work, nodesize=nodesize, csum=csum)
    M.base_extents = L.data_extents(M.base)
    M.K = fixtures.sparse_copy(M.base, work / "kernel.img")
    M.O = fixtures.sparse_copy(M.base, work / "ours.img")

    # The kernel: refusals, then the cases, on a rw mount of K.
    M.kernel_refusal = {}
    M.kernel_rc = {}
    M.where = {}                     # case id -> (tree id, inode) of the destination
    with L.mounted(M.K, work / "mk", ro=False, options=("noatime",)) as (mnt, dev, mark):
        for cid, src, dst, so, ln, do in REFUSALS:
            M.kernel_refusal[cid] = L.kernel_clone(mnt / src, so, ln, mnt / dst, do)
        for cid, src, dst, so, ln, do, create in CASES:
            M.kernel_rc[cid] = L.kernel_clone(mnt / src, so, ln, mnt / dst, do, create=create)
            if M.kernel_rc[cid] == 0:
                M.where[cid] = (L.subvol_id(mnt / dst), os.stat(mnt / dst).st_ino)
        os.sync()
        M.kernel_files = L.tree_digests(mnt)
    M.kernel_extents = L.data_extents(M.K)
    M.kernel_trees = {t: L.fs_tree(M.K, t) for t in TREES}

    # Ours: refusals (image must stay byte-identical), then the cases.
    before = L.sha256_file(M.O)
    M.our_refusal = {}
    for cid, src, dst, so, ln, do in REFUSALS:
        M.our_refusal[cid] = run(*reflink_args(src, dst, M.O, so, ln, do))
    M.refusal_sha_same = L.sha256_file(M.O) == before
    M.ours = {}
    for cid, src, dst, so, ln, do, create in CASES:
        M.ours[cid] = run(*reflink_args(src, dst, M.O, so, ln, do, create))
    M.check = L.sh("btrfs", "check", "--check-data-csum", M.O, check=False)
    M.lowmem = L.sh("btrfs", "check", "--check-data-csum", "--mode", "lowmem", M.O, check=False)
    M.mount_error = None
    M.scrub_ok, M.scrub_text, M.our_files, M.dmesg = False, "", {}, []
    try:
        with L.mounted(M.O, work / "mo", ro=True) as (mnt, dev, mark):
            M.scrub_ok, M.scrub_text = L.scrub_ro(mnt)
            M.our_files = L.tree_digests(mnt)
            M.dmesg = L.dmesg_btrfs_problems(mark, dev)
    except RuntimeError as e:         # judged by the tests below, not here
        M.mount_error = "%s\n%s" % (e, "\n".join(L.dmesg_lines()[-15:]))
    M.our_extents = L.data_extents(M.O)
    M.our_trees = {t: L.fs_tree(M.O, t) for t in TREES}
    M.seconds = time.monotonic() - t0
    print("reflink matrix %s/%d: %d cases, %d refusals, %.1fs"
          % (csum, nodesize, len(CASES), len(REFUSALS), M.seconds))
    return M


def _repro(M, cid):
    for c in CASES:
        if c[0] == cid:
            _, src, dst, so, ln, do, create = c
            return ("image: reflink_lib.make_matrix_image(IMG, WORKDIR) "
                    "(tests/lib/reflink_lib.py), then: %s"
                    % shown(reflink_args(src, dst, "IMG", so, ln, do, create)))
    return ""


@pytest.mark.kernel
@pytest.mark.parametrize("cid", [c[0] for c in CASES])
def test_matrix_case(matrix, cid):
    M = matrix
    res = M.ours[cid]
    assert M.kernel_rc[cid] == 0, "the kernel refused %s: %s" % (cid, L.errno_name(M.kernel_rc[cid]))
    assert res.returncode == 0 and not error_lines(res.stderr), (
        "%s: the kernel did it, ours exit %d:\n%s\n%s" % (cid, res.returncode, res.stderr,
                                                           _repro(M, cid)))
    assert M.mount_error is None, "our image does not mount:\n" + M.mount_error
    case = next(c for c in CASES if c[0] == cid)
    dst = case[2]
    assert M.our_files.get(dst) == M.kernel_files.get(dst), (
        "%s: content of %s differs from the kernel's (size, sha256): kernel %s, ours %s\n%s"
        % (cid, dst, M.kernel_files.get(dst), M.our_files.get(dst), _repro(M, cid)))
    tree, ino = M.where[cid]
    k = M.kernel_trees[tree].get(ino)
    o = M.our_trees[tree].get(ino)
    assert o is not None, "%s: no inode %d in tree %d of ours" % (cid, ino, tree)
    base = L.extent_keys(M.base_extents)
    ke, oe = L.normalize_extents(k.extents, base), L.normalize_extents(o.extents, base)
    msg = []
    if (k.size, k.nbytes) != (o.size, o.nbytes):
        msg.append("size/nbytes: kernel %s/%s, ours %s/%s" % (k.size, k.nbytes, o.size, o.nbytes))
    if ke != oe:
        msg.append("file extent items (key off, type, disk bytenr, disk len, off, len, ram, "
                   "compr):\n  kernel %s\n  ours   %s" % (ke, oe))
    assert not msg, "%s (tree %d inode %d):\n%s\n%s" % (cid, tree, ino, "\n".join(msg),
                                                        _repro(M, cid))


@pytest.mark.kernel
@pytest.mark.parametrize("cid", [r[0] for r in REFUSALS])
def test_matrix_refusal(matrix, cid):
    M = matrix
    res = M.our_refusal[cid]
    kerr = M.kernel_refusal[cid]
    errs = error_lines(res.stderr)
    assert kerr != 0, "%s: the kernel accepted it" % cid
    assert res.returncode == 1 and len(errs) == 1, (
        "%s: the kernel refused (%s); ours: exit %d, %d ERROR lines:\n%s"
        % (cid, L.errno_name(kerr), res.returncode, len(errs), res.stderr))


@pytest.mark.kernel
def test_matrix_refusals_leave_image_unchanged(matrix):
    assert matrix.refusal_sha_same, "a refused reflink changed the image"


@pytest.mark.kernel
def test_matrix_check_original(matrix):
    r = matrix.check
    assert r.returncode == 0, "btrfs check --check-data-csum:\n%s%s" % (r.stdout[-4000:],
                                                                        r.stderr[-4000:])


@pytest.mark.kernel
def test_matrix_check_lowmem(matrix):
    r = matrix.lowmem
    assert r.returncode == 0, "btrfs check --mode lowmem:\n%s%s" % (r.stdout[-4000:],
                                                                    r.stderr[-4000:])


@pytest.mark.kernel
def test_matrix_scrub_and_dmesg(matrix):
    assert matrix.mount_error is None, "our image does not mount:\n" + matrix.mount_error
    assert matrix.scrub_ok, matrix.scrub_text
    assert not matrix.dmesg, "kernel log:\n" + "\n".join(matrix.dmesg)


@pytest.mark.kernel
def test_matrix_all_contents_equal(matrix):
    assert matrix.mount_error is None, "our image does not mount:\n" + matrix.mount_error
    k, o = matrix.kernel_files, matrix.our_files
    diff = ["%s: kernel %s, ours %s" % (p, k.get(p), o.get(p))
            for p in sorted(set(k) | set(o)) if k.get(p) != o.get(p)]
    assert not diff, "files that differ from the kernel's:\n" + "\n".join(diff)


@pytest.mark.kernel
def test_matrix_data_backrefs(matrix):
    diffs = L.compare_data_extents(matrix.kernel_extents, matrix.our_extents,
                                   L.extent_keys(matrix.base_extents))
    assert not diffs, "data extent refs differ from the kernel's:\n" + "\n".join(diffs)


@pytest.mark.kernel
def test_matrix_known_deviations(matrix, run, tmp_path):
    """Operations the kernel accepts and ours refuses (documented gaps)."""
    M = matrix
    K = fixtures.sparse_copy(M.base, tmp_path / "kernel.img")
    O = fixtures.sparse_copy(M.base, tmp_path / "ours.img")
    with L.mounted(K, tmp_path / "mnt", ro=False) as (mnt, dev, mark):
        krc = {d[0]: L.kernel_clone(mnt / d[1], d[3], d[4], mnt / d[2], d[5]) for d in DEVIATIONS}
    before = L.sha256_file(O)
    problems = []
    for cid, src, dst, so, ln, do, why in DEVIATIONS:
        res = run(*reflink_args(src, dst, O, so, ln, do))
        errs = error_lines(res.stderr)
        if krc[cid] != 0:
            problems.append("%s: the kernel refuses it too now (%s): move it to REFUSALS"
                            % (cid, L.errno_name(krc[cid])))
        if res.returncode == 0:
            problems.append("%s: ours accepts it now: move it to CASES" % cid)
        elif res.returncode != 1 or len(errs) != 1:
            problems.append("%s: not a clean refusal (exit %d):\n%s"
                            % (cid, res.returncode, res.stderr))
        else:
            print("known deviation %s (%s): kernel OK, ours: %s" % (cid, why, errs[0]))
    assert L.sha256_file(O) == before or any("accepts" in p for p in problems), \
        "a refused reflink changed the image"
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# 2. Stress: nodesize 4K, 500 random reflinks in one run, 50 runs of 10.

STRESS_SEED = 20260701


@pytest.fixture(scope="module")
def stress_base(tmp_path_factory):
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed" % tool)
    work = tmp_path_factory.mktemp("reflink-stress")
    files = L.make_stress_files()
    kernel = root_skip_reason() is None
    # blake2 (32-byte csums): the csum tree has a few dozen 4K leaves, and
    # the extents freed by overwrites split and delete its items.
    image = L.make_stress_image(work / "base.img", work, files, nodesize=4096, kernel=kernel,
                                snapshot=kernel, csum="blake2")
    if kernel:      # the snapshot's files share the top level's leaves and extents
        files.update({"snap/" + k: v for k, v in list(files.items())})
    return image, files, kernel


def tree_shape(image):
    """{tree: (level, leaves)} of the fs, extent and csum trees (progs dump)."""
    out = {}
    for t in ("fs", "extent", "csum"):
        text = fixtures.dump_tree_progs(image, "-t", t)
        levels = [int(m) for m in re.findall(r"^node \d+ level (\d+)", text, re.M)]
        out[t] = (max(levels) if levels else 0, len(re.findall(r"^leaf \d+ items", text, re.M)))
    return out


def write_repro(path, ops, image_name="IMG"):
    with open(path, "w") as f:
        f.write("#!/bin/sh -e\n# base: reflink_lib.make_stress_image(IMG, DIR, "
                "make_stress_files(), nodesize=4096, kernel=<root?>)\nB=${EXTCRYPT_BIN}\n")
        for src, so, ln, dst, do in ops:
            f.write("$B reflink --src-offset %d --length %d --dest-offset %d %s %s %s\n"
                    % (so, ln, do, src, dst, image_name))
    return path


def run_ops(run, image, ops, done, repro):
    """Run each op as one command; fail with a reproducer on the first error."""
    for i, (src, so, ln, dst, do) in enumerate(ops):
        res = run(*reflink_args(src, dst, image, so, ln, do))
        if res.returncode != 0:
            write_repro(repro, done + ops[:i + 1])
            pytest.fail("reflink #%d failed (exit %d): %s\n%s\nall commands so far: %s"
                        % (len(done) + i + 1, res.returncode,
                           shown(reflink_args(src, dst, "IMG", so, ln, do)), res.stderr, repro),
                        pytrace=False)
    done.extend(ops)


def check_clean(image, *extra, what=""):
    r = L.sh("btrfs", "check", *extra, image, check=False)
    assert r.returncode == 0, "btrfs check %s failed %s:\n%s%s" % (
        " ".join(extra), what, r.stdout[-3000:], r.stderr[-3000:])


def verify_against_kernel(run, base, image, ops, model, tmp_path):
    """Root: contents through a ro mount equal the model, scrub clean, no
    kernel warnings; the kernel replaying the same ops gives the same
    contents and the same data backrefs."""
    if root_skip_reason():
        return
    expect = L.model_digests(model)
    with L.mounted(image, tmp_path / "mo", ro=True) as (mnt, dev, mark):
        got = {n: L.file_digest(mnt / n) for n in expect}
        ok, text = L.scrub_ro(mnt)
        problems = L.dmesg_btrfs_problems(mark, dev)
    bad = [n for n in expect if got[n] != expect[n]]
    assert not bad, "contents differ from the model: %s" % bad
    assert ok, text
    assert not problems, "\n".join(problems)
    K = fixtures.sparse_copy(base, tmp_path / "kernel.img")
    with L.mounted(K, tmp_path / "mk", ro=False, options=("noatime",)) as (mnt, dev, mark):
        for i, (src, so, ln, dst, do) in enumerate(ops):
            e = L.kernel_clone(mnt / src, so, ln, mnt / dst, do)
            assert e == 0, "the kernel refused op #%d %s: %s" % (i + 1, (src, so, ln, dst, do),
                                                                 L.errno_name(e))
        kgot = {n: L.file_digest(mnt / n) for n in expect}
    assert kgot == expect, "the kernel's contents differ from the model (test bug)"
    diffs = L.compare_data_extents(L.data_extents(K), L.data_extents(image),
                                   L.extent_keys(L.data_extents(base)))
    assert not diffs, "data backrefs differ from the kernel's after the same %d ops:\n%s" % (
        len(ops), "\n".join(diffs[:40]))


@pytest.mark.slow
def test_stress_500_reflinks_one_run(run, stress_base, tmp_path):
    base, files, _ = stress_base
    image = fixtures.sparse_copy(base, tmp_path / "ours.img")
    model = L.CloneModel(files)
    ops = L.random_ops(model, random.Random(STRESS_SEED), 500)
    shape0 = tree_shape(image)
    t0 = time.monotonic()
    run_ops(run, image, ops, [], tmp_path / "repro.sh")
    dt = time.monotonic() - t0
    print("500 reflinks: %.1fs (%.1f ms each); trees (level, leaves) before %s after %s"
          % (dt, dt * 2, shape0, tree_shape(image)))
    check_clean(image, "--check-data-csum", what="after 500 reflinks")
    check_clean(image, "--check-data-csum", "--mode", "lowmem", what="after 500 reflinks")
    verify_against_kernel(run, base, image, ops, model, tmp_path)


@pytest.mark.slow
def test_stress_50_runs_of_10(run, stress_base, tmp_path):
    base, files, _ = stress_base
    image = fixtures.sparse_copy(base, tmp_path / "ours.img")
    model = L.CloneModel(files)
    rng = random.Random(STRESS_SEED + 1)
    done = []
    t0 = time.monotonic()
    for r in range(50):
        ops = L.random_ops(model, rng, 10)
        run_ops(run, image, ops, done, tmp_path / "repro.sh")
        check_clean(image, what="after run %d (%d reflinks; commands: %s)"
                    % (r + 1, len(done), write_repro(tmp_path / "repro.sh", done)))
    print("50 runs x 10 reflinks + 50 checks: %.1fs; trees %s"
          % (time.monotonic() - t0, tree_shape(image)))
    check_clean(image, "--check-data-csum", "--mode", "lowmem", what="after 50 runs")
    verify_against_kernel(run, base, image, done, model, tmp_path)


# ---------------------------------------------------------------------------
# 3. Crash sweep: cut the Nth write for every N of one reflink.

def root_items(image):
    """{tree id: (bytenr, generation)} from the root tree, plus the root tree itself."""
    text = fixtures.dump_tree_progs(image, "-t", "root")
    out = {}
    for m in re.finditer(r"key \((\S+) ROOT_ITEM \S+\) itemoff \d+ itemsize \d+\n"
                         r"\s+generation (\d+) root_dirid \d+ bytenr (\d+)", text):
        out[L._num(m.group(1))] = (int(m.group(3)), int(m.group(2)))
    sb = fixtures.dump_super_progs(image)
    out[1] = (int(re.search(r"^root\s+(\d+)", sb, re.M).group(1)),
              int(re.search(r"^generation\s+(\d+)", sb, re.M).group(1)))
    return out


@pytest.fixture(scope="module")
def fault_injection(run, tmp_path_factory):
    """Skip unless the binary has fault injection compiled in."""
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed" % tool)
    work = tmp_path_factory.mktemp("reflink-fi")
    img = fixtures.mkfs(work / "probe.img", None, size_mib=128)
    if not L.fault_injection_available(run, img):
        pytest.skip("EXTCRYPT_BIN has no fault injection (configure --enable-fault-injection)")
    return True


CRASH_VARIANTS = {
    # Drops dst's whole second extent (csums and free space change), trims
    # the first, adds four refs: fs, extent, csum, free-space and root trees.
    "over-data": ("big.bin", "dst.bin", 512 * KiB, 2 * MiB, 256 * KiB, False),
    # A new inode and its directory entries too.
    "create": ("big.bin", "d/new.bin", 1 * MiB, 0, 0, True),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(CRASH_VARIANTS))
def test_crash_sweep_every_write(run, fault_injection, tmp_path, variant):
    rng = random.Random(77)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big.bin").write_bytes(rng.randbytes(3 * MiB + 5000))     # 4 extents
    (tree / "dst.bin").write_bytes(rng.randbytes(2 * MiB))            # 2 extents
    (tree / "d").mkdir()
    for i in range(40):                                               # a deeper fs tree
        (tree / "d" / ("f%02d" % i)).write_bytes(rng.randbytes(3000 + i))
    base = fixtures.mkfs(tmp_path / "base.img", tree, nodesize=4096, size_mib=128)
    src, dst, so, ln, do, create = CRASH_VARIANTS[variant]
    args = reflink_args(src, dst, "IMG", so, ln, do, create)
    is_root = root_skip_reason() is None

    def state(image):
        """What a reader sees: file extent items and sizes (and contents when root)."""
        fs = L.fs_tree(image, 5)
        st = {ino: (f.size, f.nbytes, f.extents) for ino, f in fs.items()}
        if is_root:
            with L.mounted(image, tmp_path / "mnt") as (mnt, dev, mark):
                st["contents"] = {n: L.file_digest(mnt / n) if (mnt / n).exists() else None
                                  for n in ("big.bin", "dst.bin", "d/new.bin")}
        return st

    before = state(base)
    after_img = fixtures.sparse_copy(base, tmp_path / "after.img")
    res = run(*args[:-1], after_img)
    assert res.returncode == 0, res.stderr
    after = state(after_img)
    assert before != after
    r0, r1 = root_items(base), root_items(after_img)
    changed = sorted(t for t in r0 if t != 1 and r0[t] != r1.get(t))
    assert len(changed) >= 3 and r0[1] != r1[1], "the reflink changed only trees %s" % changed

    counted = None
    seen = collections.Counter()
    t0 = time.monotonic()
    for n in range(1, 1000):
        img = fixtures.sparse_copy(base, tmp_path / "cut.img")
        res = run(*args[:-1], img, env={"EXTCRYPT_FAIL_AT": str(n)})
        if res.returncode == 0:
            counted = n - 1
            break
        m = L.FAULT_MSG_RE.search(res.stderr)
        assert res.returncode == 1 and m and int(m.group(1)) == n, (
            "cut at write %d: expected exit 1 with the fault-injection ERROR, got exit %d:\n%s"
            % (n, res.returncode, res.stderr))
        chk = L.sh("btrfs", "check", "--check-data-csum", img, check=False)
        assert chk.returncode == 0, (
            "btrfs check after a cut at write %d (EXTCRYPT_FAIL_AT=%d %s):\n%s%s"
            % (n, n, shown(args), chk.stdout[-3000:], chk.stderr[-3000:]))
        st = state(img)
        assert st in (before, after), (
            "cut at write %d left a state that is neither before nor after (EXTCRYPT_FAIL_AT=%d %s)"
            % (n, n, shown(args)))
        seen["before" if st == before else "after"] += 1
    assert counted is not None and counted >= 4, "no successful run up to 1000 writes"
    print("crash sweep: %d writes, trees changed %s, cuts -> %s, %.1fs"
          % (counted, changed, dict(seen), time.monotonic() - t0))
    assert seen["before"] >= 1


# ---------------------------------------------------------------------------
# Smaller contracts.

def _mkfs_tree(tmp_path, files, nodesize=4096):
    tree = tmp_path / "tree"
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    return fixtures.mkfs(tmp_path / "img", tree, nodesize=nodesize, size_mib=128)


def _assert_valid(run, image, what):
    chk = L.sh("btrfs", "check", image, check=False)
    assert chk.returncode == 0, "btrfs check after %s:\n%s%s" % (what, chk.stdout[-2000:],
                                                                 chk.stderr[-2000:])
    res = run("inspect", "dump-tree", "-t", "5", image)
    assert res.returncode == 0, "our dump-tree after %s: exit %d\n%s" % (
        what, res.returncode, res.stderr[-2000:])
    if root_skip_reason() is None:
        with L.mounted(image, Path(str(image) + ".mnt")) as (mnt, dev, mark):
            pass


def test_noop_reflink_keeps_image_valid(run, tmp_path):
    """Nothing to clone (empty source; source offset at EOF with length 0):
    the kernel returns 0 and changes nothing; ours must leave a valid image."""
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed" % tool)
    img = _mkfs_tree(tmp_path, {"empty": b"", "f.bin": os.urandom(8192),
                                "g.bin": os.urandom(8192)})
    for args in (["empty", "f.bin"], ["--src-offset", "8192", "f.bin", "g.bin"]):
        res = run("reflink", *args, img)
        assert res.returncode == 0, res.stderr
        _assert_valid(run, img, "btrfs-extcrypt reflink %s IMG" % " ".join(args))


def test_create_destination_at_top_level(run, tmp_path):
    """--create with a destination directly in the top directory, as a user types it."""
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed" % tool)
    img = _mkfs_tree(tmp_path, {"f.bin": os.urandom(8192), "d/x": b"x"})
    for dst in ("new.bin", "./new2.bin", "/new3.bin", "d/new4.bin"):
        res = run("reflink", "--create", "f.bin", dst, img)
        assert res.returncode == 0, "reflink --create f.bin %s IMG: exit %d\n%s" % (
            dst, res.returncode, res.stderr)
    _assert_valid(run, img, "reflink --create")


def test_usage_errors(run, tmp_path):
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed" % tool)
    img = _mkfs_tree(tmp_path, {"f.bin": os.urandom(8192)})
    before = L.sha256_file(img)
    for args in (["f.bin", img], ["--length", "x", "f.bin", "f.bin", img],
                 ["--create", "--src-inode", "257", "--dst-inode", "258", img],
                 ["--bogus", "f.bin", "f.bin", img]):
        res = run("reflink", *args)
        assert res.returncode == 2, "reflink %s: exit %d (want 2)\n%s" % (args, res.returncode,
                                                                          res.stderr)
    res = run("reflink", "nope", "f.bin", img)
    assert res.returncode == 1 and len(error_lines(res.stderr)) == 1, res.stderr
    res = run("reflink", "f.bin", "f.bin", tmp_path / "missing.img")
    assert res.returncode in (1, 3) and len(error_lines(res.stderr)) == 1, res.stderr
    assert L.sha256_file(img) == before


@pytest.mark.kernel
def test_by_inode_and_root_equal_by_path(matrix, run, tmp_path):
    """--root R with paths, --root R with --src-inode/--dst-inode and the
    top-level path through the subvolume give the same trees."""
    M = matrix
    with L.mounted(M.base, tmp_path / "mnt") as (mnt, dev, mark):
        src_ino = os.stat(mnt / "sv/f.bin").st_ino
        dst_ino = os.stat(mnt / "sv/dst.bin").st_ino
        svid = L.subvol_id(mnt / "sv")
    variants = {
        "top-path": ["sv/f.bin", "sv/dst.bin"],
        "root-path": ["--root", str(svid), "f.bin", "dst.bin"],
        "root-inode": ["--root", str(svid), "--src-inode", str(src_ino),
                       "--dst-inode", str(dst_ino)],
    }
    trees = {}
    for name, args in variants.items():
        img = fixtures.sparse_copy(M.base, tmp_path / (name + ".img"))
        res = run("reflink", "--src-offset", str(128 * KiB), "--length", str(256 * KiB),
                  "--dest-offset", str(64 * KiB), *args, img)
        assert res.returncode == 0, "%s: %s" % (name, res.stderr)
        f = L.fs_tree(img, svid)
        trees[name] = ({i: (x.size, x.nbytes, x.extents) for i, x in f.items()},
                       {k: (e.refs, e.backrefs) for k, e in L.data_extents(img).items()})
    assert trees["top-path"] == trees["root-path"] == trees["root-inode"]

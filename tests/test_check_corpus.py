"""`check` against btrfs-progs' own fsck-tests images (shared/corpus).

For every image: where `btrfs check` (progs 6.2) reports errors in a
structure we check, `check` reports an error too (exit 1, or 3 when the
image cannot be opened at all); where `btrfs check` is clean (the
false-alert regressions), so are we; and `check` never crashes or hangs.

Corpus path: <repo>/../shared/corpus, or env EXTCRYPT_CORPUS.
"""

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import root_skip_reason

pytestmark = pytest.mark.slow  # corpus


def corpus_dir():
    env = os.environ.get("EXTCRYPT_CORPUS")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "corpus"
    return base / "btrfs-progs-fsck-tests"


# Images where progs reports problems only in structures `check` does not
# cover (documented exceptions: we may exit 0 there).
NOT_OUR_STRUCTURES = {
    "039-bad-inode-mode/bad_free_space_cache_imode": "v1 free space cache inodes in the root tree",
}


def _is_btrfs(path):
    try:
        with open(path, "rb") as f:
            f.seek(0x10040)
            return f.read(8) == b"_BHRfS_M"
    except OSError:
        return False


def _restore(src, dst):
    """A metadump goes through btrfs-image -r; a raw image is copied."""
    if _is_btrfs(src):
        # sparse: the images are mostly holes (a plain copy took 7 GB of /tmp)
        subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
        return True
    res = subprocess.run(["btrfs-image", "-r", str(src), str(dst)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=300)
    return res.returncode == 0 and _is_btrfs(dst)


def _cases():
    base = corpus_dir()
    if not base.is_dir():
        return []
    out = []
    for d in sorted(base.iterdir()):
        if d.is_dir():
            for f in sorted(d.iterdir()):
                out.append((d.name, f.name))
    return out


CASES = _cases()


@pytest.fixture(scope="session")
def corpus_images(tmp_path_factory):
    """(case dir, file) -> list of restored image paths (None when unusable)."""
    if not CASES:
        pytest.skip("corpus not found at %s (set EXTCRYPT_CORPUS)" % corpus_dir())
    if shutil.which("btrfs-image") is None:
        pytest.skip("btrfs-image not installed")
    work = tmp_path_factory.mktemp("corpus")
    out = {}
    for dname, fname in CASES:
        src = corpus_dir() / dname / fname
        dst_dir = work / dname / fname.replace(".", "_")
        dst_dir.mkdir(parents=True)
        imgs = []
        if fname.endswith(".tar.xz"):
            with tarfile.open(src) as tf:
                tf.extractall(dst_dir / "tar")
            members = sorted((dst_dir / "tar").rglob("*"))
        elif fname.endswith(".xz"):
            plain = dst_dir / fname[:-3]
            with open(plain, "wb") as fo:
                subprocess.run(["xz", "-dc", str(src)], stdout=fo, check=True)
            members = [plain]
        else:
            members = [src]
        for i, m in enumerate(members):
            if not m.is_file() or m.stat().st_size == 0:
                continue
            dst = dst_dir / ("image%d.raw" % i)
            if _restore(m, dst):
                imgs.append(dst)
        out[(dname, fname)] = imgs
    return out


def kernel_refuses_mount(img, mnt):
    """Whether the running kernel refuses to mount a copy of img read-only
    (root only: without it the test cannot decide and is skipped)."""
    if root_skip_reason() is not None:
        pytest.skip("a finding progs 6.2 does not make needs the kernel to judge: %s"
                    % root_skip_reason())
    copy = img.parent / "mount-copy.raw"
    subprocess.run(["cp", "--sparse=always", str(img), str(copy)], check=True)
    mnt.mkdir(exist_ok=True)
    try:
        res = subprocess.run(["mount", "-t", "btrfs", "-o", "ro,loop", str(copy), str(mnt)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode == 0:
            subprocess.run(["umount", str(mnt)], check=True)
        return res.returncode != 0
    finally:
        copy.unlink()


def _exception(dname, fname):
    for k, why in NOT_OUR_STRUCTURES.items():
        if k == dname or k == "%s/%s" % (dname, fname.split(".")[0]):
            return why
    return None


@pytest.mark.slow
@pytest.mark.parametrize("dname,fname", CASES, ids=["%s/%s" % c for c in CASES])
def test_corpus_image(run, btrfs_check, corpus_images, dname, fname):
    imgs = corpus_images[(dname, fname)]
    if not imgs:
        pytest.skip("no usable image in %s/%s (empty or not restorable)" % (dname, fname))
    for img in imgs:
        progs = btrfs_check(img, timeout=600)
        ours = run("check", str(img), timeout=600)
        assert ours.returncode in (0, 1, 3), (ours.returncode, ours.stderr[-3000:])
        # Never an unstructured failure: every error line carries a code or
        # is the single unreadable-image message.
        for line in ours.stderr.splitlines():
            if line.startswith("ERROR:") and ours.returncode == 1:
                assert line.startswith("ERROR: ["), line
        if progs.returncode == 0 and ours.returncode != 0:
            # Debian's btrfs check 6.2 predates some of the kernel's rules
            # (out-of-order inline refs, data refs of the old inode cache)
            # and only prints others (orphan dev extents): the running
            # kernel decides.  Ours is right only if it refuses to mount.
            assert kernel_refuses_mount(img, img.parent / "mnt"), \
                "false alert on a progs-clean image the kernel mounts:\n" + ours.stderr[-3000:]
        elif progs.returncode != 0 and _exception(dname, fname) is None:
            assert ours.returncode in (1, 3), \
                "progs found errors, we did not:\n" + progs.stderr[-2000:]

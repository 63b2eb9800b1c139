"""Shared pytest fixtures for the btrfs-extcrypt suites.

Binary under test: env EXTCRYPT_BIN (absolute path). Without it every test
that needs the binary skips with a reason. The ASan+UBSan run is the same
suite with EXTCRYPT_BIN pointing at the sanitizer build; the sanitizer
options below make any report exit with a distinctive code, and `run` fails
the test on those codes, on signals (crashes) and on timeouts (hangs).

Fixtures (all images are session-scoped, built once per session under a
pytest temp dir, and must be treated as READ-ONLY: use `copy_image` to get a
writable copy):

  bin              path of the binary
  run              run(*args, input=None, timeout=None, env=None) -> CompletedProcess
                   (text, errors="surrogateescape"); stdout/stderr captured
  is_root          True when running as root with loop devices
  sample_tree      Path of the varied sample tree (tests/lib/fixtures.py)
  sample_manifest  relative path -> kind for sample_tree
  mkfs_image       parametrized over csum x nodesize (12 images); FsImage
  make_mkfs_image  factory make_mkfs_image(csum, nodesize) -> FsImage (cached)
  kernel_image     root only: mkfs image + kernel-made holes, prealloc,
                   compression, reflinks, subvolume and snapshots; FsImage
  copy_image       copy_image(src) -> Path of a sparse, writable copy in tmp_path
  btrfs_check      btrfs_check(img, *args) -> CompletedProcess
  dump_tree_progs  dump_tree_progs(img, *args, check=True) -> stdout
  dump_super_progs dump_super_progs(img, *args, check=True) -> stdout

Markers (registered in tests/pytest.ini): @pytest.mark.kernel skips unless
root with a loop device and mount(8); @pytest.mark.slow keeps a test out of
the fast subset (`make check` runs `pytest -m "not slow"`).  Every kernel
test, and every test that uses a kernel-made image, is marked slow too.
Helpers shared by the suites live in tests/lib/ (see tests/README.md).
"""

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The shared helpers (tests/lib/README.md) are imported by their module names.
sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))

import fixtures  # noqa: E402
from runner import Runner, sanitizer_env  # noqa: E402

CSUMS = fixtures.CSUM_TYPES
NODESIZES = fixtures.NODESIZES


def _size_id(n):
    return "%dk" % (n // 1024)


@dataclass(eq=False)
class FsImage:
    """An image path plus how it was made; usable wherever a path is."""
    path: Path
    csum: str
    nodesize: int
    tree: Path = None              # the source tree given to mkfs --rootdir
    manifest: dict = field(default_factory=dict)
    kernel: bool = False           # True when changed through a rw mount

    def __fspath__(self):
        return str(self.path)

    def __str__(self):
        return str(self.path)

    @property
    def id(self):
        return "%s-%s%s" % (self.csum, _size_id(self.nodesize), "-kernel" if self.kernel else "")


def pytest_configure(config):
    # Also for tests that start the binary without `run`.
    env = sanitizer_env()
    os.environ["ASAN_OPTIONS"] = env["ASAN_OPTIONS"]
    os.environ["UBSAN_OPTIONS"] = env["UBSAN_OPTIONS"]


def root_skip_reason():
    """None when root tests can run here, else why not."""
    if os.geteuid() != 0:
        return "needs root (loop mount)"
    if not os.path.exists("/dev/loop-control") and not os.path.exists("/dev/loop0"):
        return "no loop device"
    for tool in ("mount", "umount", "losetup"):
        if shutil.which(tool) is None:
            return "%s not installed" % tool
    return None


KERNEL_FIXTURES = {"kernel_image", "make_kernel_image"}


def pytest_collection_modifyitems(config, items):
    """Add the implied markers: kernel-made images mean `kernel`, and
    `kernel` means `slow`."""
    for item in items:
        if KERNEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kernel)
        if item.get_closest_marker("kernel") is not None:
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    if item.get_closest_marker("kernel") is not None:
        reason = root_skip_reason()
        if reason:
            pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, for the tmp_path cleanup below."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "_rep_" + rep.when, rep)


@pytest.fixture
def tmp_path(tmp_path, request):
    """pytest's tmp_path, removed as soon as its test has passed.

    pytest keeps every test's directory until the session ends (and the last
    three sessions' after that): the images of the whole suite came to about
    15 GB per build and filled the CI disk.  A failing test keeps its
    directory for the post-mortem, as does every test when
    EXTCRYPT_KEEP_TMP=1.
    """
    yield tmp_path
    rep = getattr(request.node, "_rep_call", None)
    if rep is not None and rep.passed and not os.environ.get("EXTCRYPT_KEEP_TMP"):
        shutil.rmtree(tmp_path, ignore_errors=True)


# ---------------------------------------------------------------------------
# The binary and the runner.

@pytest.fixture(scope="session")
def bin():
    path = os.environ.get("EXTCRYPT_BIN")
    if not path:
        pytest.skip("EXTCRYPT_BIN not set (path of the btrfs-extcrypt binary to test)")
    if not os.path.isabs(path):
        pytest.fail("EXTCRYPT_BIN must be absolute: %r" % path, pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("EXTCRYPT_BIN=%s is not an executable file" % path, pytrace=False)
    return Path(path)


@pytest.fixture(scope="session")
def run(bin):
    return Runner(bin)


@pytest.fixture(scope="session")
def is_root():
    return root_skip_reason() is None


# ---------------------------------------------------------------------------
# Images.

def _need_progs():
    for tool in ("mkfs.btrfs", "btrfs"):
        if shutil.which(tool) is None and not os.path.exists("/usr/sbin/" + tool):
            pytest.skip("%s not installed (Debian package btrfs-progs)" % tool)


@pytest.fixture(scope="session")
def fixture_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fixtures")


@pytest.fixture(scope="session")
def sample_tree_info(fixture_dir):
    path = fixture_dir / "sample-tree"
    manifest = fixtures.make_sample_tree(path)
    return path, manifest


@pytest.fixture(scope="session")
def sample_tree(sample_tree_info):
    return sample_tree_info[0]


@pytest.fixture(scope="session")
def sample_manifest(sample_tree_info):
    return sample_tree_info[1]


@pytest.fixture(scope="session")
def make_mkfs_image(fixture_dir, sample_tree_info):
    """Factory: make_mkfs_image(csum, nodesize) -> FsImage, built once per session."""
    cache = {}
    tree, manifest = sample_tree_info

    def make(csum="crc32c", nodesize=16384):
        key = (csum, nodesize)
        if key not in cache:
            _need_progs()
            path = fixture_dir / ("mkfs-%s-%s.img" % (csum, _size_id(nodesize)))
            fixtures.mkfs(path, tree, csum=csum, nodesize=nodesize, size_mib=160)
            cache[key] = FsImage(path, csum, nodesize, tree, manifest)
        return cache[key]
    return make


@pytest.fixture(scope="session",
                params=[(c, n) for c in CSUMS for n in NODESIZES],
                ids=["%s-%s" % (c, _size_id(n)) for c in CSUMS for n in NODESIZES])
def mkfs_image(request, make_mkfs_image):
    csum, nodesize = request.param
    return make_mkfs_image(csum, nodesize)


KERNEL_PARAMS = [("crc32c", 16384), ("blake2", 4096)]


@pytest.fixture(scope="session")
def make_kernel_image(fixture_dir):
    """Factory (root only): make_kernel_image(csum, nodesize) -> FsImage, cached."""
    cache = {}

    def make(csum="crc32c", nodesize=16384):
        reason = root_skip_reason()
        if reason:
            pytest.skip(reason)
        _need_progs()
        key = (csum, nodesize)
        if key not in cache:
            work = fixture_dir / ("kernel-%s-%s" % (csum, _size_id(nodesize)))
            work.mkdir(exist_ok=True)
            path = work / "image.img"
            manifest = fixtures.make_kernel_image(path, work, csum=csum, nodesize=nodesize)
            cache[key] = FsImage(path, csum, nodesize, work / "tree", manifest, kernel=True)
        return cache[key]
    return make


@pytest.fixture(scope="session", params=KERNEL_PARAMS,
                ids=["%s-%s-kernel" % (c, _size_id(n)) for c, n in KERNEL_PARAMS])
def kernel_image(request, make_kernel_image):
    return make_kernel_image(*request.param)


@pytest.fixture
def copy_image(tmp_path):
    """copy_image(src, name=None) -> Path: a writable sparse copy in tmp_path."""
    def copy(src, name=None):
        dst = tmp_path / (name or Path(os.fspath(src)).name)
        fixtures.sparse_copy(os.fspath(src), dst)
        return dst
    return copy


@pytest.fixture(scope="session")
def btrfs_check():
    _need_progs()
    return fixtures.btrfs_check


@pytest.fixture(scope="session")
def dump_tree_progs():
    _need_progs()
    return fixtures.dump_tree_progs


@pytest.fixture(scope="session")
def dump_super_progs():
    _need_progs()
    return fixtures.dump_super_progs

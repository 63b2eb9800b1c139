"""restore stays inside its output directory, whatever the image says.

Images are made with mkfs.btrfs --rootdir and then edited: DIR_INDEX entries
(the entries restore reads) get duplicate names, invalid names or locations
that make directory cycles, with the leaf checksum recomputed so that the
edit reaches restore.  A canary tree outside the output directory is
compared (names, bytes, mode, owner, mtime) before and after; restore must
report the bad entry, exit 1 and finish within seconds.
"""
import json
import os
import shutil
import stat
import struct
from pathlib import Path

import pytest

import btrfs_ondisk as bo
import fixtures

FS_TREE = 5
ROOT_DIR = 256
DIR_ITEM_HDR = 30           # location key 17, transid 8, data_len 2, name_len 2, type 1
FT_DIR, FT_SYMLINK = 2, 7
RESTORE_TIMEOUT = 30        # seconds; a cycle used to run without end


def snapshot_tree(top):
    """Everything about a host tree that restore could change."""
    top = Path(top)
    out = {}
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        for name in [""] + dirnames + filenames:
            p = Path(dirpath) / name if name else Path(dirpath)
            st = os.lstat(p)
            entry = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                     st.st_gid, st.st_mtime_ns)
            if stat.S_ISREG(st.st_mode):
                entry += (p.read_bytes(),)
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            out[str(p.relative_to(top))] = entry
    return out


def make_canary(tmp_path):
    canary = tmp_path / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / "keep").write_bytes(b"canary\n")
    (canary / "sub" / "deep").write_bytes(b"deep canary\n")
    os.chmod(canary, 0o755)
    return canary


def make_tree(src, canary, is_root):
    """x: a symlink to the canary; y: a directory of the same name length."""
    src.mkdir()
    os.symlink(str(canary), src / "x")
    (src / "y").mkdir()
    (src / "y" / "evil").write_bytes(b"written through the symlink\n")
    (src / "y" / "keep").write_bytes(b"overwritten?\n")
    os.chmod(src / "y", 0o777)
    (src / "f").write_bytes(b"a file\n")
    for d in ("d", "d/e", "d/e/g", "a", "b"):
        (src / d).mkdir()
    (src / "d" / "e" / "g" / "file").write_bytes(b"inside\n")
    (src / "a" / "in-a").write_bytes(b"a\n")
    (src / "b" / "in-b").write_bytes(b"b\n")
    (src / "ab").write_bytes(b"two-letter name\n")
    if is_root:
        os.chown(src / "y", 1234, 1234)


class Dirs:
    """DIR_INDEX entries of an image, editable in place."""

    def __init__(self, path):
        self.img = bo.Image(path, writable=True)
        self.leaves = [b for b in self.img.walk(self.img.tree_roots()[FS_TREE][0], FS_TREE)
                       if b.level == 0]

    def close(self):
        self.img.close()

    def entries(self, dir_ino):
        """[(leaf, item)] of the DIR_INDEX items of dir_ino, in index order."""
        return [(leaf, it) for leaf in self.leaves for it in leaf.items()
                if it.key.objectid == dir_ino and it.key.type == bo.DIR_INDEX]

    @staticmethod
    def name(leaf, it):
        o = leaf.item_data_offset(it)
        nl = struct.unpack_from("<H", leaf.data, o + 27)[0]
        return bytes(leaf.data[o + DIR_ITEM_HDR:o + DIR_ITEM_HDR + nl])

    @staticmethod
    def location(leaf, it):
        return struct.unpack_from("<Q", leaf.data, leaf.item_data_offset(it))[0]

    @staticmethod
    def ftype(leaf, it):
        return leaf.data[leaf.item_data_offset(it) + 29] & 0x7f   # 0x80: encrypted name

    def lookup(self, dir_ino, name):
        for leaf, it in self.entries(dir_ino):
            if self.name(leaf, it) == name:
                return leaf, it
        raise KeyError(name)

    def ino(self, path):
        ino = ROOT_DIR
        for part in path.split("/"):
            ino = self.location(*self.lookup(ino, part.encode()))
        return ino

    def set_body(self, leaf, it, body):
        o = leaf.item_data_offset(it)
        assert len(body) == it.size
        leaf.data[o:o + it.size] = body
        self.img.write_block(leaf)

    def body(self, leaf, it):
        o = leaf.item_data_offset(it)
        return bytes(leaf.data[o:o + it.size])

    def set_name(self, leaf, it, name):
        body = bytearray(self.body(leaf, it))
        assert len(name) == len(body) - DIR_ITEM_HDR
        body[DIR_ITEM_HDR:] = name
        self.set_body(leaf, it, bytes(body))

    def set_location(self, leaf, it, ino):
        body = bytearray(self.body(leaf, it))
        struct.pack_into("<Q", body, 0, ino)
        self.set_body(leaf, it, bytes(body))


def symlink_then(d, dir_ino, kind):
    """Make the first of the two entries a symlink, the second (kind) take its name."""
    ents = d.entries(dir_ino)
    link = next(e for e in ents if d.ftype(*e) == FT_SYMLINK)
    other = next(e for e in ents if d.ftype(*e) == kind and
                 len(d.body(*e)) == len(d.body(*link)))
    first, second = sorted([link, other], key=lambda e: e[1].key.offset)
    link_body, other_body = d.body(*link), d.body(*other)
    # Bodies are swapped when needed so the symlink comes first, then both get its name.
    d.set_body(*first, link_body)
    d.set_body(*second, other_body[:DIR_ITEM_HDR] + link_body[DIR_ITEM_HDR:])


@pytest.fixture(scope="module")
def base(tmp_path_factory, is_root):
    top = tmp_path_factory.mktemp("contain")
    canary = make_canary(top)
    make_tree(top / "src", canary, is_root)
    img = fixtures.mkfs(top / "base.img", rootdir=top / "src", size_mib=128)
    key = top / "key"
    key.write_bytes(bytes(range(64)))
    return img, canary, key


def restore_contained(run, img, tmp_path, canary, *args, rc=1, out=None):
    before = snapshot_tree(canary)
    out = out or tmp_path / "out"
    res = run("restore", *args, str(img), str(out), timeout=RESTORE_TIMEOUT)
    assert snapshot_tree(canary) == before, "restore changed the canary tree"
    assert res.returncode == rc, res.stderr
    assert not (canary / "evil").exists()
    for p in out.rglob("*") if out.exists() else ():
        # Nothing restore made may lead outside: the only symlinks are the image's own.
        if p.is_symlink():
            assert p.parent.resolve().is_relative_to(out.resolve())
    return res


def edited(base, tmp_path, copy_image, edit, encrypt=None, run=None):
    img = copy_image(base[0], "edit.img")
    if encrypt:
        r = run("encrypt", "--key-file", str(base[2]), str(img))
        assert r.returncode == 0, r.stderr
    d = Dirs(img)
    try:
        edit(d)
    finally:
        d.close()
    return img


@pytest.fixture(params=["openat2", "walk"])
def beneath(request, monkeypatch, run):
    """Both ways of reopening directories: openat2, and the component walk
    of kernels without it (forced in test builds by EXTCRYPT_NO_OPENAT2)."""
    if request.param == "walk":
        monkeypatch.setitem(run.env, "EXTCRYPT_NO_OPENAT2", "1")
    return request.param


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_symlink_then_directory(base, run, tmp_path, copy_image, encrypted, beneath):
    img = edited(base, tmp_path, copy_image, lambda d: symlink_then(d, ROOT_DIR, FT_DIR),
                 encrypt=encrypted, run=run)
    args = ("--key-file", str(base[2])) if encrypted else ()
    res = restore_contained(run, img, tmp_path, base[1], *args)
    assert "already exists" in res.stderr and "/x" in res.stderr
    out = tmp_path / "out"
    assert os.path.islink(out / "x")
    assert os.readlink(out / "x") == str(base[1])


def test_symlink_then_file(base, run, tmp_path, copy_image):
    img = edited(base, tmp_path, copy_image, lambda d: symlink_then(d, ROOT_DIR, 1))
    res = restore_contained(run, img, tmp_path, base[1])
    assert "already exists" in res.stderr and "/x" in res.stderr
    # The refused file is counted as failed, not as restored.
    clean = json.loads(run("--format", "json", "restore", "--dry-run", str(base[0]),
                           str(tmp_path / "dry")).stdout)
    doc = json.loads(run("--format", "json", "restore", str(img), str(tmp_path / "o2")).stdout)
    assert doc["failed"] == 1 and doc["files"] == clean["files"] - 1, (doc, clean)


def test_existing_symlink_in_output(base, run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(str(base[1]), out / "y")
    os.symlink(str(base[1]), out / "f")
    res = restore_contained(run, base[0], tmp_path, base[1], out=out)
    assert "/y already exists" in res.stderr and "/f already exists" in res.stderr
    assert os.readlink(out / "y") == str(base[1])


@pytest.mark.parametrize("name", [b"/", b".", b"..", b"\0", b"a/", b"\0b"],
                         ids=["slash", "dot", "dotdot", "nul", "slash2", "nul2"])
def test_invalid_names(base, run, tmp_path, copy_image, name):
    def edit(d):
        target = b"f" if len(name) == 1 else b"ab"
        d.set_name(*d.lookup(ROOT_DIR, target), name)
    img = edited(base, tmp_path, copy_image, edit)
    res = restore_contained(run, img, tmp_path, base[1])
    assert "not a valid file name" in res.stderr
    # The other entries are restored.
    assert (tmp_path / "out" / "d" / "e" / "g" / "file").read_bytes() == b"inside\n"


@pytest.mark.parametrize("case", ["self", "two-level", "reached-twice", "root-loop"])
def test_directory_cycles(base, run, tmp_path, copy_image, case, beneath):
    def edit(d):
        if case == "self":          # d/e is d
            d.set_location(*d.lookup(d.ino("d"), b"e"), d.ino("d"))
        elif case == "two-level":   # d/e/g is d
            d.set_location(*d.lookup(d.ino("d/e"), b"g"), d.ino("d"))
        elif case == "reached-twice":   # b is a
            d.set_location(*d.lookup(ROOT_DIR, b"b"), d.ino("a"))
        else:                       # d/e is the top directory
            d.set_location(*d.lookup(d.ino("d"), b"e"), ROOT_DIR)
    img = edited(base, tmp_path, copy_image, edit)
    res = restore_contained(run, img, tmp_path, base[1])
    assert "already restored" in res.stderr
    # Dry run terminates too and reports the same.
    dry = run("restore", "--dry-run", str(img), str(tmp_path / "dry"), timeout=RESTORE_TIMEOUT)
    assert dry.returncode == 1 and "already restored" in dry.stderr
    assert not (tmp_path / "dry").exists()


def test_clean_image_still_restores(base, run, tmp_path, beneath):
    """The containment rules do not refuse anything in a well-formed image."""
    res = run("restore", str(base[0]), str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    assert os.readlink(out / "x") == str(base[1])
    assert (out / "y" / "evil").read_bytes() == b"written through the symlink\n"
    assert (out / "d" / "e" / "g" / "file").read_bytes() == b"inside\n"
    shutil.rmtree(out)

"""inspect dump-tree against btrfs-progs 6.14 `inspect-internal dump-tree`.

The reference is the bookworm-backports package that tools/progs-6.14
fetches (EXTCRYPT_PROGS614, see tests/lib/progs614.py); without it the
comparisons skip.  The text must equal btrfs-progs' byte for byte once the 2026 encryption
additions (Documentation/format.rst section 12) are dropped from ours: the `extent
encryption N` lines, the ` encryption N` suffix of inline extents, the
`value:` lines of items 41/42 and their names, and the ENCRYPT inode flag
name.  Nothing else is normalised.

Images: the shared mkfs images (4 csums x 3 nodesizes) and kernel images of
conftest.py, plus one image made here (dt_extra_image, root only) with
quotas, a deleted subvolume (orphan item), names with control and non-UTF-8
bytes and enough files for level-2 nodes at nodesize 4096.
"""

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

import btrfs_ondisk as bo
import fixtures
import leafedit
import progs614

TREES = ["root", "chunk", "extent", "fs", "csum", "free_space", "dev", "uuid", "data_reloc"]


# ---------------------------------------------------------------------------
# Helpers (bytes all the way: names may be any bytes).

_ENC_LINE = re.compile(rb"\t\textent encryption \d+")
_VALUE_LINE = re.compile(rb"\t\tvalue: [0-9a-f]*")
_INLINE_ENC = re.compile(rb" encryption \d+$")


_FLAGS = re.compile(rb"^(\t\tsequence \d+ flags 0x[0-9a-f]+)\((.*)\)$")


def _unname_encrypt(line):
    """Inode flags as btrfs-progs 6.14 prints them without the ENCRYPT name:
    bit 0x1000 joins the other unnamed bits in "UNKNOWN: 0x..."."""
    m = _FLAGS.match(line)
    names = [n for n in m.group(2).split(b"|") if n != b"ENCRYPT"]
    unknown = 0x1000
    if names and names[-1].startswith(b"UNKNOWN: "):
        unknown |= int(names.pop()[len(b"UNKNOWN: "):], 16)
    names.append(b"UNKNOWN: 0x%x" % unknown)
    return m.group(1) + b"(" + b"|".join(names) + b")"


_ROOT_REF = re.compile(rb"^(\t\troot (?:ref|backref) key dirid \d+ sequence \d+ name )(.*)$")
_ESC = re.compile(rb"\\([0-7]{3}|.)", re.S)
_UNESC = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13, b"e": 27}


def _plain_text(raw):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in text)


def _raw_root_ref(line):
    """Subvolume names that are not plain text are escaped in ours (an
    addition); 6.14 prints them raw up to the first NUL."""
    m = _ROOT_REF.match(line)
    if not m or b"\\" not in m.group(2):
        return line

    def one(e):
        g = e.group(1)
        return bytes([int(g, 8)]) if len(g) == 3 else bytes([_UNESC.get(g, g[0])])
    raw = _ESC.sub(one, m.group(2))
    if _plain_text(raw):
        return line
    return m.group(1) + raw.split(b"\0")[0]


def normalise(ours):
    """Drop exactly the Documentation/format.rst section 12 additions from our text."""
    out = []
    for line in ours.split(b"\n"):
        if _ENC_LINE.fullmatch(line) or _VALUE_LINE.fullmatch(line):
            continue
        if line.startswith(b"\t\tinline extent data size "):
            line = _INLINE_ENC.sub(b"", line)
        if b"key (" in line:            # item lines and node key pointers
            line = line.replace(b" FSCRYPT_INODE_CTX ", b" UNKNOWN.41 ")
            line = line.replace(b" FSCRYPT_CTX ", b" UNKNOWN.42 ")
        if line.startswith(b"\t\tsequence ") and b"ENCRYPT" in line:
            line = _unname_encrypt(line)
        if line.startswith(b"\t\troot "):
            line = _raw_root_ref(line)
        out.append(line)
    return b"\n".join(out)


def ours(bin, *args, fmt=None, timeout=600):
    cmd = [str(bin)]
    if fmt:
        cmd += ["--format", fmt]
    cmd += ["inspect", "dump-tree", *[str(a) for a in args]]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def progs(*args, timeout=600):
    res = progs614.run("dump-tree", *args, timeout=timeout)
    assert res.returncode == 0, res.stderr.decode(errors="replace")[-2000:]
    return res.stdout


def first_difference(a, b):
    la, lb = a.split(b"\n"), b.split(b"\n")
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return "line %d:\n ours:  %r\n progs: %r" % (i + 1, x, y)
    return "length differs: ours %d lines, progs %d lines" % (len(la), len(lb))


def assert_same_as_progs(bin, img, *args):
    res = ours(bin, *args, img)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert res.stderr == b"", res.stderr.decode(errors="replace")
    want = progs(*args, img)
    got = normalise(res.stdout)
    assert got == want, "dump-tree %s differs from btrfs-progs, %s" % (
        " ".join(map(str, args)), first_difference(got, want))


def subvolume_ids(img):
    """Objectids of every ROOT_ITEM that is a subvolume/snapshot tree."""
    text = progs("-t", "root", img)
    ids = set(int(m) for m in re.findall(rb"\tkey \((\d+) ROOT_ITEM ", text) +
              re.findall(rb"\titem \d+ key \((\d+) ROOT_ITEM ", text))
    return sorted(i for i in ids if i >= 256)


# ---------------------------------------------------------------------------
# The extra image.

NASTY_NAMES = [b"new\nline", b"tab\tname", b"bad-\xff\xfe-bytes", b"ctrl-\x01\x1b",
               b"back\\slash", b"quote\"d", b"sp ace", b"%s%n%d", b"\xc3\xa9t\xc3\xa9"]


def _sh(*cmd):
    res = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(map(str, cmd)), res.stderr.decode()))
    return res.stdout


def build_extra_image(work):
    """mkfs --rootdir (nodesize 4096) with nasty names and many files, then
    quotas, qgroups, a subvolume and a deleted subvolume through a rw mount."""
    work = Path(work)
    tree = work / "tree"
    tree.mkdir(parents=True)
    for i, n in enumerate(NASTY_NAMES):
        p = os.path.join(bytes(tree), n)
        with open(p, "wb") as fh:
            fh.write(b"x" * (i * 700))
        try:
            os.setxattr(p, b"user.v" + bytes([48 + i]), b"a\nb\x00c\xff" * (i + 1))
        except OSError:
            pass
    many = tree / "many"
    many.mkdir()
    for i in range(2500):
        (many / ("file-with-a-longish-name-%05d" % i)).write_bytes(b"%d\n" % i)
    img = work / "extra.img"
    fixtures.mkfs(img, tree, csum="xxhash", nodesize=4096, size_mib=256)
    with fixtures.loop_mount(img, work / "mnt", ro=False) as mnt:
        _sh("btrfs", "quota", "enable", mnt)
        _sh("btrfs", "qgroup", "create", "1/100", mnt)
        _sh("btrfs", "subvolume", "create", mnt / "sv")
        _sh("btrfs", "qgroup", "assign", "0/256", "1/100", mnt)
        _sh("btrfs", "qgroup", "limit", "10M", mnt / "sv")
        for i in range(300):
            (mnt / "sv" / ("f%d" % i)).write_bytes(os.urandom(i * 13))
        _sh("btrfs", "subvolume", "create", mnt / "gone")
        (mnt / "gone" / "x").write_bytes(b"x")
        os.sync()
        _sh("btrfs", "subvolume", "delete", mnt / "gone")
        os.sync()
    return img


@pytest.fixture(scope="session")
def dt_extra_image(tmp_path_factory):
    if os.geteuid() != 0 or not os.path.exists("/dev/loop-control"):
        pytest.skip("needs root and loop devices")
    if shutil.which("btrfs") is None:
        pytest.skip("btrfs-progs not installed")
    return build_extra_image(tmp_path_factory.mktemp("dt-extra"))


# ---------------------------------------------------------------------------
# mkfs images: every tree, every csum x nodesize.

@pytest.mark.parametrize("tree", [None] + TREES)
def test_mkfs_image_trees(bin, mkfs_image, tree):
    args = ("-t", tree) if tree else ()
    assert_same_as_progs(bin, mkfs_image, *args)


@pytest.mark.parametrize("opts", [("--csum-items",), ("--csum-headers",), ("--hide-names",),
                                  ("--dfs",), ("--bfs", "--noscan"), ("-r",), ("-R",),
                                  ("-e",), ("-d",), ("-u",), ("-t", "1"), ("-t", "5"),
                                  ("-t", "BTRFS_FS_TREE_OBJECTID"), ("-t", "checksum"),
                                  ("-t", "CSUM", "--csum-items"), ("-t", "device"),
                                  ("-t", "12345")])
def test_mkfs_image_options(bin, make_mkfs_image, opts):
    for csum, ns in (("crc32c", 4096), ("sha256", 16384), ("xxhash", 65536)):
        assert_same_as_progs(bin, make_mkfs_image(csum, ns), *opts)


def test_block_and_follow(bin, make_mkfs_image):
    img = make_mkfs_image("blake2", 4096)
    text = progs("-t", "fs", img)
    root = re.search(rb"fs tree key \(FS_TREE ROOT_ITEM 0\) \n(?:node|leaf) (\d+)", text)
    assert root
    leaves = [int(x) for x in re.findall(rb"^leaf (\d+) items", text, re.M)]
    blocks = [int(root.group(1))] + leaves[:3]
    assert_same_as_progs(bin, img, "-b", blocks[0])
    assert_same_as_progs(bin, img, "-b", blocks[0], "--follow")
    assert_same_as_progs(bin, img, "-b", blocks[0], "--follow", "--dfs")
    # several -b, given out of order and repeated: printed sorted, once
    args = []
    for b in reversed(blocks + blocks[:1]):
        args += ["-b", b]
    res = ours(bin, *args, img)
    assert res.returncode == 0
    want = progs(*args, img)
    assert normalise(res.stdout) == want


# ---------------------------------------------------------------------------
# Kernel-made images: holes, prealloc, compression, reflinks, snapshots.

@pytest.mark.kernel
@pytest.mark.parametrize("tree", [None] + TREES)
def test_kernel_image_trees(bin, kernel_image, tree):
    args = ("-t", tree) if tree else ()
    assert_same_as_progs(bin, kernel_image, *args)


@pytest.mark.kernel
def test_kernel_image_subvolumes(bin, kernel_image):
    ids = subvolume_ids(kernel_image)
    assert len(ids) >= 3, ids      # subvol, snap, snap-top-ro
    for i in ids:
        assert_same_as_progs(bin, kernel_image, "-t", str(i))


@pytest.mark.kernel
def test_kernel_image_content(bin, make_kernel_image):
    """The kernel image really has what the comparison claims to cover."""
    img = make_kernel_image("crc32c", 16384)
    text = ours(bin, img).stdout
    for needle in (b"type 2 (prealloc)", b"(zlib)", b"(lzo)", b"(zstd)",
                   b"offset 18446744073709486080", b"flags 0x1(RDONLY)",
                   b"extent encryption 0", b"encryption 0\n"):
        assert needle in text, needle


@pytest.mark.kernel
def test_extra_image(bin, dt_extra_image):
    img = dt_extra_image
    assert_same_as_progs(bin, img)
    for t in ("root", "fs", "extent", "quota", "dev", "uuid", "csum"):
        assert_same_as_progs(bin, img, "-t", t)
    for i in subvolume_ids(img):
        assert_same_as_progs(bin, img, "-t", str(i))
    for opts in (("--hide-names",), ("--csum-items", "--csum-headers"), ("--dfs",), ("-R",),
                 ("-e",), ("-d",), ("-u",)):
        assert_same_as_progs(bin, img, *opts)
    text = progs(img)
    for needle in (b"QGROUP_LIMIT", b"QGROUP_RELATION", b"QGROUP_STATUS", b"ORPHAN_ITEM",
                   b"DEV_STATS PERSISTENT_ITEM", b"name: new\\nline", b"bad-\\377\\376-bytes"):
        assert needle in text, needle
    assert re.search(rb"^node \d+ level 2 ", text, re.M), "no level-2 node in the extra image"


@pytest.mark.kernel
def test_simple_quota_image(bin, tmp_path):
    """Simple quotas (enabled with 6.14's own btrfs): owner refs, whose 6.14
    line reads "\t(172 0x..) textent owner root", SIMPLE_MODE, enable_gen."""
    btrfs614 = progs614.path()
    img = fixtures.mkfs(tmp_path / "squota.img", size_mib=256)
    with fixtures.loop_mount(img, tmp_path / "mnt", ro=False) as mnt:
        _sh(btrfs614, "quota", "enable", "--simple", mnt)
        _sh(btrfs614, "subvolume", "create", mnt / "sv")
        for i in range(40):
            (mnt / ("f%d" % i)).write_bytes(os.urandom(i * 3000))
            (mnt / "sv" / ("g%d" % i)).write_bytes(os.urandom(i * 1000))
        os.sync()
    assert_same_as_progs(bin, img)
    for opts in (("-t", "quota"), ("-t", "extent"), ("--dfs",)):
        assert_same_as_progs(bin, img, *opts)
    text = ours(bin, img).stdout
    assert re.search(rb"\n\t\(172 0x[0-9a-f]+\) textent owner root 5\n", text)
    assert re.search(rb"flags ON\|SIMPLE_MODE scan \d+ enable_gen \d+\n", text)


# ---------------------------------------------------------------------------
# JSON.

def _text_items(text):
    return len(re.findall(rb"^\titem \d+ key \(", text, re.M))


def test_json_items(bin, make_mkfs_image):
    img = make_mkfs_image("crc32c", 4096)
    res = ours(bin, img, fmt="json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["__header"]["version"] == "1"
    items = [it for t in doc["trees"] for b in t["blocks"] for it in b.get("items", [])]
    assert len(items) == _text_items(ours(bin, img).stdout)
    for it in items:
        assert {"key", "itemoff", "itemsize"} <= set(it)
    inodes = [it for it in items if it["key"]["type"] == "INODE_ITEM"]
    assert inodes and all("mode" in it and "size" in it for it in inodes)
    fes = [it for it in items if it["key"]["type"] == "EXTENT_DATA"]
    assert fes and all("encryption" in it for it in fes)
    names = {t["name"] for t in doc["trees"]}
    assert {"root tree", "chunk tree", "fs tree", "extent tree"} <= names
    assert doc["total-bytes"] > 0 and doc["uuid"]


def test_json_one_tree(bin, make_mkfs_image):
    img = make_mkfs_image("sha256", 16384)
    res = ours(bin, "-t", "csum", "--csum-items", img, fmt="json")
    doc = json.loads(res.stdout)
    assert [t["name"] for t in doc["trees"]] == ["checksum tree"]
    csums = [it for b in doc["trees"][0]["blocks"] for it in b.get("items", [])]
    assert csums and all(len(c["csums"]) * 4096 == c["length"] for c in csums)
    assert all(len(h) == 64 for c in csums for h in c["csums"])


# ---------------------------------------------------------------------------
# Encryption additions on a hand-made leaf (Documentation/format.rst 12).

def test_fscrypt_items_printed(bin, tmp_path):
    """Rewrite the FS tree leaf of a small image so it holds an item 41, an
    ENCRYPT inode flag and an encryption byte; check our lines for them."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "inline").write_bytes(b"tiny")
    (tree / "regular").write_bytes(os.urandom(10000))
    os.setxattr(tree / "regular", "user.a", b"0123456789012345678901234567890123456789")
    img = tmp_path / "fscrypt.img"
    fixtures.mkfs(img, tree, csum="crc32c", nodesize=16384, size_mib=128)
    with bo.Image(img, writable=True) as im:
        root, level = im.tree_roots()[bo.FS_TREE]
        assert level == 0
        leaf = im.read_block(root, bo.FS_TREE)
        for it in leaf.items():
            body = leaf.item_data_offset(it)
            ip = bo.HEADER_SIZE + it.slot * bo.ITEM_SIZE
            if it.key.type == bo.INODE_ITEM:            # every inode: ENCRYPT flag
                flags = bo.get(leaf.data, body + 64, "<Q")
                bo.put(leaf.data, body + 64, "<Q", flags | 0x1000)
            elif it.key.type == bo.XATTR_ITEM:          # the xattr becomes item 41
                leaf.data[ip + 8] = 41
            elif it.key.type == bo.EXTENT_DATA and leaf.data[body + 20] == 1:
                leaf.data[body + 17] = 1                # encryption byte
        im.write_block(leaf)
    res = ours(bin, "-t", "fs", img)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert re.search(rb"flags 0x1000\(ENCRYPT\)", out)
    assert re.search(rb"key \(\d+ FSCRYPT_INODE_CTX \d+\) itemoff \d+ itemsize 76\n"
                     rb"\t\tvalue: [0-9a-f]{152}\n", out)
    assert b"\t\textent encryption 1\n" in out
    assert re.search(rb"inline extent data size 4 ram_bytes 4 compression 0 \(none\) "
                     rb"encryption 0\n", out)
    # and the normalised text is what stock progs prints for the same leaf
    # once the flag, type and byte are back (checked by the other tests)
    assert b"UNKNOWN.41" in normalise(out)


# ---------------------------------------------------------------------------
# Encrypted images: ours on the image, 6.14 on a copy without incompat bit 15
# (6.14 refuses to open an image with it); equal apart from the additions.

def _encrypted(bin, src, work):
    key = work / "key"
    res = subprocess.run([str(bin), "key", "generate", "--output", str(key)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert res.returncode == 0, res.stderr
    img = work / "enc.img"
    fixtures.sparse_copy(os.fspath(src), img)
    res = subprocess.run([str(bin), "encrypt", "--key-file", str(key), str(img)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    assert res.returncode == 0, res.stderr
    plain = work / "enc-bit-cleared.img"
    fixtures.sparse_copy(img, plain)
    with leafedit.Editor(plain) as ed:
        ed.set_incompat(leafedit.INCOMPAT_ENCRYPT, on=False)
    return img, plain


def assert_encrypted_same(bin, img, plain, *args):
    res = ours(bin, *args, img)
    assert res.returncode == 0 and res.stderr == b"", res.stderr
    want = progs(*args, plain)
    got = normalise(res.stdout)
    assert got == want, "dump-tree %s of the encrypted image: %s" % (
        " ".join(map(str, args)), first_difference(got, want))
    return res.stdout


@pytest.mark.parametrize("csum,nodesize", [("crc32c", 4096), ("sha256", 16384),
                                           ("blake2", 65536)])
def test_encrypted_mkfs_image(bin, make_mkfs_image, tmp_path, csum, nodesize):
    img, plain = _encrypted(bin, make_mkfs_image(csum, nodesize), tmp_path)
    text = assert_encrypted_same(bin, img, plain)
    for t in ("fs", "extent", "root"):
        assert_encrypted_same(bin, img, plain, "-t", t)
    for needle in (b" FSCRYPT_INODE_CTX 0) ", b" FSCRYPT_CTX ", b"\t\textent encryption 1\n",
                   b"(ENCRYPT)", b"\t\tvalue: 0201"):
        assert needle in text, needle
    _assert_safe_text(text)
    # the encrypted entries carry type bit 0x80: printed as the plain type name
    assert b"DIR_ITEM.1" not in text and b"type FILE" in text


@pytest.mark.kernel
def test_encrypted_kernel_image(bin, kernel_image, tmp_path):
    img, plain = _encrypted(bin, kernel_image, tmp_path)
    assert_encrypted_same(bin, img, plain)
    for i in subvolume_ids(plain):
        assert_encrypted_same(bin, img, plain, "-t", str(i))


# ---------------------------------------------------------------------------
# Names with NUL, newline, ESC, invalid UTF-8, 255 bytes: printed whole and
# escaped, as 6.14 does; valid UTF-8 JSON with the exact bytes in "-hex".

NAMES = [b"nul\x00in\x00name", b"new\nline\x1b[31mred\r", b"\xff\xfe invalid \xc3",
         bytes(b for b in range(256) if b != 0x2f),        # 255 bytes, NUL included
         b"tab\there\x7f\\", b"\xed\xa0\x80surrogate", b"caf\xc3\xa9 ok"]
XATTR_VALUE = b"v\x00a\nl\x1bu\xffe" * 40                   # 360 bytes
_NAMED_ESC = {7: b"a", 8: b"b", 9: b"t", 10: b"n", 11: b"v", 12: b"f", 13: b"r", 27: b"e",
              32: b" ", 92: b"\\"}


def escape(name):
    """btrfs-progs 6.14's escaping of names and xattr values (observed)."""
    out = bytearray()
    for ch in name:
        if ch in _NAMED_ESC:
            out += b"\\" + _NAMED_ESC[ch]
        elif 0x20 < ch < 0x7f:
            out.append(ch)
        else:
            out += b"\\%03o" % ch
    return bytes(out)


def _assert_safe_text(text):
    bad = sorted(set(b for b in text if b < 0x20 and b not in (9, 10)))
    assert not bad, "control bytes in the text output: %r" % bad
    text.decode("utf-8")                        # strict: no invalid UTF-8 either


def _rename(ed, dir_ino, ino, old, new):
    """Give the entry old of dir_ino the name new in DIR_ITEM, DIR_INDEX and
    INODE_REF, with the DIR_ITEM key hash recomputed."""
    def renamed(raw, name_off, len_off):
        raw = bytearray(raw)
        struct.pack_into("<H", raw, len_off, len(new))
        return bytes(raw[:name_off]) + new + bytes(raw[name_off + len(old):])

    fs = bo.FS_TREE
    ditem = (dir_ino, bo.DIR_ITEM, bo.name_hash(old))
    raw = ed.data(fs, ditem)
    ed.delete(fs, ditem)
    assert ed.insert(fs, (dir_ino, bo.DIR_ITEM, bo.name_hash(new)), renamed(raw, 30, 27))
    for key, name, child, _type in ed.dir_entries(dir_ino):
        if name == old:
            assert ed.replace(fs, key, renamed(ed.data(fs, key), 30, 27))
    ref = (ino, bo.INODE_REF, dir_ino)
    assert ed.replace(fs, ref, renamed(ed.data(fs, ref), 10, 8))


@pytest.fixture(scope="session")
def names_image(tmp_path_factory):
    work = tmp_path_factory.mktemp("dt-names")
    tree = work / "tree"
    tree.mkdir()
    for i in range(len(NAMES)):
        (tree / ("n%d" % i)).write_bytes(b"x" * i)
    os.setxattr(tree / "n0", b"user.x\x01\xff\x1b", XATTR_VALUE)
    img = work / "names.img"
    fixtures.mkfs(img, tree, csum="crc32c", nodesize=65536, size_mib=160)
    with leafedit.Editor(img) as ed:
        for i, name in enumerate(NAMES):
            old = b"n%d" % i
            _rename(ed, 256, ed.lookup(old.decode()), old, name)
        ed.set_inode_flags(256)
    return img


def test_names_escaped(bin, names_image):
    res = ours(bin, "-t", "fs", names_image)
    assert res.returncode == 0 and res.stderr == b"", res.stderr
    text = res.stdout
    _assert_safe_text(text)
    for name in NAMES:
        esc = escape(name)
        assert text.count(b"\t\tname: " + esc + b"\n") == 2, name       # DIR_ITEM, DIR_INDEX
        assert text.count(b"name: " + esc + b"\n") == 3, name           # and INODE_REF
    assert b"\t\tname: user.x\\001\\377\\e\n" in text
    # the value prints as 6.14 prints it: whole up to 255 bytes (its buffer)
    assert b"\t\tdata " + escape(XATTR_VALUE[:255]) + b"\n" in text
    for args in (("-t", "fs"), ()):
        assert_same_as_progs(bin, names_image, *args)
    hidden = ours(bin, "-t", "fs", "--hide-names", names_image).stdout
    assert hidden.count(b"name: HIDDEN\n") >= 3 * len(NAMES)


def test_names_json(bin, names_image):
    res = ours(bin, "-t", "fs", names_image, fmt="json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout.decode("utf-8"))          # strict UTF-8
    items = [it for t in doc["trees"] for b in t["blocks"] for it in b.get("items", [])]
    seen = {}
    for it in items:
        for d in it.get("entries", []) + it.get("refs", []):
            raw = bytes.fromhex(d["name-hex"]) if "name-hex" in d else d["name"].encode()
            seen[raw] = seen.get(raw, 0) + 1
            if "name-hex" in d:
                assert d["name"] == escape(raw).decode("ascii")
            if "data" in d:
                data = bytes.fromhex(d["data-hex"]) if "data-hex" in d else d["data"].encode()
                assert data == XATTR_VALUE                # whole, not cut at 255
    for name in NAMES:
        assert seen.get(name) == 3, (name, seen.get(name))
    assert b"caf\xc3\xa9 ok" in seen                      # plain UTF-8: "name" only


# ---------------------------------------------------------------------------
# Corrupt input: one ERROR line, exit 3, no crash.

def test_corrupt_leaf_checksum(bin, make_mkfs_image, copy_image):
    src = make_mkfs_image("crc32c", 16384)
    text = progs("-t", "fs", src)
    logical = int(re.search(rb"fs tree key \(FS_TREE ROOT_ITEM 0\) \n(?:node|leaf) (\d+)",
                            text).group(1))
    img = copy_image(src)
    with bo.Image(img) as im:
        copies = im.phys(logical)                       # DUP metadata: two
    for n, phys in enumerate(copies):
        with open(img, "r+b") as fh:
            fh.seek(phys + 200)
            b = fh.read(1)
            fh.seek(phys + 200)
            fh.write(bytes([b[0] ^ 0x40]))
        res = ours(bin, "-t", "fs", img)
        if n + 1 < len(copies):
            # A good copy is left: it is read instead (mirror fallback).
            assert res.returncode == 0 and not res.stderr, res.stderr
    assert res.returncode == 3
    errs = [l for l in res.stderr.split(b"\n") if l.startswith(b"ERROR:")]
    assert len(errs) == 1, res.stderr
    assert str(logical).encode() in errs[0]
    # the whole dump stops at the same block, with the same single line
    res = ours(bin, img)
    assert res.returncode == 3
    assert len([l for l in res.stderr.split(b"\n") if l.startswith(b"ERROR:")]) == 1


def test_usage_errors(bin, make_mkfs_image):
    img = make_mkfs_image("crc32c", 16384)
    assert ours(bin, "-t", "nosuchtree", img).returncode == 2
    assert ours(bin, "-t", "0", img).returncode == 2
    assert ours(bin, "-b", "xyz", img).returncode == 2
    assert ours(bin).returncode == 2
    res = ours(bin, "/nonexistent/image")
    assert res.returncode == 3 and res.stderr.startswith(b"ERROR:")


# ---------------------------------------------------------------------------
# btrfs-progs' own fsck test images (../shared/corpus): never crash or hang;
# a full dump equal to btrfs-progs', or exit 3 with one ERROR line.

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / \
    "btrfs-progs-fsck-tests"


def _restore(src, dst):
    """Raw image from a corpus file (metadump, xz, or raw); None if unusable."""
    data_path = src
    if src.name.endswith(".xz"):
        data_path = dst.with_suffix(".unxz")
        with open(data_path, "wb") as out:
            if subprocess.run(["xz", "-dc", str(src)], stdout=out).returncode:
                return None
    res = subprocess.run(["btrfs-image", "-r", str(data_path), str(dst)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if res.returncode == 0 and dst.exists() and dst.stat().st_size > 65536 + 4096:
        return dst
    if data_path.stat().st_size > 65536 + 4096:
        return data_path
    return None


@pytest.fixture(scope="session")
def dt_corpus_images(tmp_path_factory):
    if not CORPUS.is_dir():
        pytest.skip("no corpus at %s" % CORPUS)
    if shutil.which("btrfs-image") is None or shutil.which("xz") is None:
        pytest.skip("btrfs-image or xz missing")
    out = tmp_path_factory.mktemp("dt-corpus")
    images = []
    for src in sorted(CORPUS.glob("*/*")):
        name = "%s--%s" % (src.parent.name, src.name)
        if src.name.endswith(".tar.xz"):
            d = out / (name + ".d")
            d.mkdir()
            if subprocess.run(["tar", "-xJf", str(src), "-C", str(d)]).returncode:
                continue
            members = [p for p in sorted(d.rglob("*")) if p.is_file()]
        else:
            members = [src]
        for i, m in enumerate(members):
            img = _restore(m, out / ("%s-%d.raw" % (name, i)))
            if img:
                images.append(img)
    if not images:
        pytest.skip("no usable corpus image")
    return images


@pytest.mark.slow  # corpus
def test_corpus_images(bin, dt_corpus_images):
    compared = 0
    for img in dt_corpus_images:
        for args in ((), ("-t", "fs", "--csum-items"), ("-e",), ("--dfs", "--hide-names")):
            res = ours(bin, *args, img, timeout=120)
            errors = [l for l in res.stderr.split(b"\n") if l.startswith(b"ERROR:")]
            if res.returncode == 3:
                assert len(errors) == 1, (img, args, res.stderr[-2000:])
                continue
            assert res.returncode == 0 and not errors, (img, args, res.returncode,
                                                        res.stderr[-2000:])
            p = progs614.run("dump-tree", *args, img, timeout=120)
            # 6.14 exits 0 after "ERROR: unable to open" (having printed the
            # leaf its tree-checker refused): that run dumped nothing to compare
            failed_open = b"ERROR: unable to open" in p.stderr
            if p.returncode == 0 and not failed_open and p.stdout.count(b"\n") > 1:
                got = normalise(res.stdout)
                assert got == p.stdout, "%s %s: %s" % (img.name, args,
                                                       first_difference(got, p.stdout))
                compared += 1
    assert compared >= 40, compared

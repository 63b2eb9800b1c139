"""Corruption suite: several hundred corrupted images, one field or block each.

One pristine image (crc32c, nodesize 4096, so that the FS tree has level-2 and
level-1 nodes and the extent tree has a node) is made per session. Its layout
(superblock, sys_chunk_array, chunk items, every tree block and its parent)
is read by tests/lib/btrfs_ondisk.py, an independent parser, at collection time
so that every corruption is a separate, readable param id.

Each case copies the pristine image (sparse), applies one edit and runs:
  super      inspect dump-super IMG
  super1     inspect dump-super --super 1 IMG          (superblock cases)
  super-all  inspect dump-super --all IMG              (superblock cases)
  tree       inspect dump-tree IMG                     (every tree)
  tree-json  --format json inspect dump-tree IMG      (item-level families)
  block      inspect dump-tree -b BYTENR --follow IMG  (tree-block cases)
  file-*     inspect file on the root directory, a file deep in a big
             directory, and the inode touched by the edit
Every run must end without crash, sanitizer report or hang. Then per command:
  FAIL  exit 3 and exactly one `ERROR: ` line on stderr;
  ANY   exit 0 without ERROR lines, or FAIL (the corruption may legitimately
        not stop this command: a corrupt tree block for dump-super, a
        corrupted mirror, a damaged item body that a printer tolerates);
  OK    exit 0 (e.g. dump-super --super 1 when only the primary is damaged).
Field edits recompute the checksum (superblock: over 0x20..0x1000; tree
blocks: over 0x20..nodesize; every DUP copy is edited) so that the semantic
checks are exercised, not only the checksum check. A FAIL of dump-tree on a
damaged tree block must also name a block in the ERROR line (decimal or hex):
the damaged one, its parent, or one of its children (checked against it).

Reproduce one case outside pytest (prints the commands and expectations):
    /usr/bin/python3 tests/test_corruption.py CASE_ID /tmp/case.img
    /usr/bin/python3 tests/test_corruption.py --list
"""

import atexit
import os
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import btrfs_ondisk as od
import fixtures
from runner import error_lines

FAIL, ANY, OK = "FAIL", "ANY", "OK"
CMD_TIMEOUT = 15            # seconds; x4 for sanitizer builds (runner.py). Cases take ms.
DEEP_FILE = "/many/f%05d"
MANY_FILES = 1500
BIG_FILE = "/data/random-big.bin"
U64 = (1 << 64) - 1
# Families whose damage reaches the item printers, so the JSON printer is
# exercised too (for the others the open fails before anything is printed).
JSON_FAMILIES = {"body", "item", "node", "root-item", "chunk-tree", "super"}


# ---------------------------------------------------------------------------
# Pristine image and its layout (built once, at collection time).

class Layout:
    """What the cases need to know about the pristine image."""

    def __init__(self, path, deep_file=None):
        self.path = Path(path)
        self.deep_file = deep_file or DEEP_FILE % (MANY_FILES - 1)
        with od.Image(path) as img:
            self.size = img.size
            self.nodesize = img.nodesize
            self.sectorsize = img.sectorsize
            self.csum_type = img.csum_type
            self.sb = bytes(img.sb)
            self.chunks = img.chunks
            self.trees = img.all_trees()
            self.root_items = {tid: (blk.logical, it) for tid, (blk, it)
                               in img.root_items().items()}
            self.has_mirror1 = od.SUPER_MIRRORS[1] + od.SUPER_SIZE <= img.size
        self.blocks = {b.logical: b for blocks in self.trees.values() for b in blocks}

    def phys(self, logical):
        for c in self.chunks:
            if c.logical <= logical < c.logical + c.length:
                return [s.offset + logical - c.logical for s in c.stripes]
        raise KeyError(logical)

    def super_field(self, name):
        off, fmt = od.SUPER_FIELDS[name]
        return od.get(self.sb, off, fmt)

    def find_items(self, tree, ktype, pred=None):
        """(block, item) pairs of a tree with key type ktype."""
        out = []
        for blk in self.trees[tree]:
            if blk.level:
                continue
            for it in blk.items():
                if it.key.type == ktype and (pred is None or pred(blk, it)):
                    out.append((blk, it))
        return out

    def max_phys(self):
        """Highest physical byte any reachable tree block occupies."""
        return max(max(self.phys(lg)) + self.nodesize for lg in self.blocks)

    def data_logical(self):
        """The logical address of the largest data extent (random file data,
        for pointers into data)."""
        best = (0, None)
        for blk, it in self.find_items(od.FS_TREE, od.EXTENT_DATA):
            o = blk.item_data_offset(it)
            if blk.data[o + 20] == 1:        # regular
                best = max(best, (od.get(blk.data, o + 29, "<Q"),
                                  od.get(blk.data, o + 21, "<Q")))
        assert best[1] is not None, "no regular extent in the pristine image"
        return best[1]


_PRISTINE = {}


def pristine():
    """(path, Layout, error) of the pristine image, made once per process."""
    if "p" in _PRISTINE:
        return _PRISTINE["p"]
    result = (None, None, None)
    if shutil.which("mkfs.btrfs") is None and not os.path.exists("/usr/sbin/mkfs.btrfs"):
        result = (None, None, "mkfs.btrfs not installed (btrfs-progs)")
    else:
        work = Path(tempfile.mkdtemp(prefix="extcrypt-corruption-"))
        atexit.register(shutil.rmtree, work, True)
        try:
            fixtures.make_sample_tree(work / "tree", seed=11, big_mib=1,
                                      dir_entries=120, many_files=MANY_FILES)
            img = fixtures.mkfs(work / "pristine.img", work / "tree", csum="crc32c",
                                nodesize=4096, size_mib=128)
            shutil.rmtree(work / "tree")
            result = (img, Layout(img), None)
        except Exception as e:          # reported by the baseline test
            result = (None, None, "cannot build the pristine image: %r" % e)
    _PRISTINE["p"] = result
    return result


# ---------------------------------------------------------------------------
# Editing a copy.

class Editor:
    """Raw edits on a copy of the pristine image, using the pristine layout."""

    def __init__(self, path, layout):
        self.path, self.lay = path, layout
        self.f = open(path, "r+b")

    def close(self):
        self.f.close()

    def pread(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def pwrite(self, off, data):
        self.f.seek(off)
        self.f.write(bytes(data))

    # superblock
    def super_buf(self, mirror=0):
        return bytearray(self.pread(od.SUPER_MIRRORS[mirror], od.SUPER_SIZE))

    def put_super(self, buf, mirror=0, recsum=True, csum_type=None):
        buf = bytearray(buf)
        if recsum:
            ct = self.lay.csum_type if csum_type is None else csum_type
            buf[0:32] = od.csum(ct, buf[0x20:od.SUPER_SIZE])
        self.pwrite(od.SUPER_MIRRORS[mirror], buf)

    def set_super(self, name, value, recsum=True, mirror=0):
        buf = self.super_buf(mirror)
        off, fmt = od.SUPER_FIELDS[name]
        od.put(buf, off, fmt, value)
        self.put_super(buf, mirror, recsum)

    # tree blocks
    def block(self, logical):
        return bytearray(self.pread(self.lay.phys(logical)[0], self.lay.nodesize))

    def put_block(self, logical, data, recsum=True):
        data = bytearray(data)
        if recsum:
            data[0:32] = od.csum(self.lay.csum_type, data[0x20:self.lay.nodesize])
        for p in self.lay.phys(logical):
            self.pwrite(p, data)

    def edit_block(self, logical, fn, recsum=True):
        data = self.block(logical)
        fn(data)
        self.put_block(logical, data, recsum)


@dataclass
class Case:
    id: str
    family: str
    edit: object                      # edit(Editor) -> None, or ("truncate", size)
    expect: dict                      # command class -> FAIL/ANY/OK
    block: int = None                 # target tree block (adds the `block` command)
    names: set = None                 # numbers the ERROR line must contain one of
    inodes: list = field(default_factory=list)   # extra (root, ino) for inspect file


def expect(super_=ANY, tree=FAIL, file=ANY, block=None, super1=None, super_all=None):
    e = {"super": super_, "tree": tree, "file": file}
    if block is not None:
        e["block"] = block
    if super1 is not None:
        e["super1"] = super1
    if super_all is not None:
        e["super-all"] = super_all
    return e


# ---------------------------------------------------------------------------
# Families of cases.

def truncation_cases(lay):
    cases = []
    ns = lay.nodesize

    def cut(size):
        """Blocks whose every copy lies (partly) past size."""
        return {lg for lg in lay.blocks if min(lay.phys(lg)) + ns > size}
    everyone = {lay.super_field("chunk_root"), lay.super_field("root"),
                lay.trees[od.FS_TREE][0].logical}

    for name, size in (("empty", 0), ("1-byte", 1), ("4k", 4096), ("before-super", 65535),
                       ("super-start", 65536), ("super-half", 65536 + 2048),
                       ("super-minus-1", 65536 + 4095)):
        cases.append(Case("trunc-%s" % name, "truncate", ("truncate", size),
                          expect(super_=FAIL, tree=FAIL, file=FAIL)))

    def add(cid, size):
        gone = cut(size)
        cases.append(Case(cid, "truncate", ("truncate", size),
                          expect(super_=ANY, tree=FAIL if gone else ANY,
                                 file=FAIL if gone & everyone else ANY)))
    # Cuts at and inside the first copy of important blocks (later copies go too).
    targets = {"chunk-root": lay.super_field("chunk_root"),
               "root-tree": lay.super_field("root")}
    for tid, name in ((od.FS_TREE, "fs-root"), (od.EXTENT_TREE, "extent-root"),
                      (od.CSUM_TREE, "csum-root")):
        targets[name] = lay.trees[tid][0].logical
    fs_leaves = [b for b in lay.trees[od.FS_TREE] if b.level == 0]
    targets["fs-last-leaf"] = fs_leaves[-1].logical
    for name, lg in sorted(targets.items()):
        first = min(lay.phys(lg))
        add("trunc-in-%s-block" % name, first + ns // 2)
        add("trunc-at-%s-block" % name, first)
    add("trunc-after-last-metadata", lay.max_phys())
    add("trunc-half-size", lay.size // 2)
    add("trunc-minus-1", lay.size - 1)
    return cases


def super_cases(lay):
    cases = []
    mirror = lay.has_mirror1
    sfail = dict(super1=OK if mirror else None, super_all=ANY)

    def field_case(cid, fname, value, exp, recsum=True):
        def edit(ed, fname=fname, value=value, recsum=recsum):
            if callable(value):
                value = value(ed)
            ed.set_super(fname, value, recsum=recsum)
        cases.append(Case(cid, "super", edit, exp))

    fatal = expect(super_=FAIL, tree=FAIL, file=FAIL, **sfail)
    semantic = expect(super_=ANY, tree=FAIL, file=FAIL, **sfail)
    benign = expect(super_=ANY, tree=ANY, file=ANY, super_all=ANY)

    def zero(off, n, cid, exp):
        def edit(ed):
            ed.pwrite(od.SUPER_OFFSET + off, bytes(n))
        cases.append(Case(cid, "super", edit, exp))
    zero(0, od.SUPER_SIZE, "super-zeroed", fatal)
    zero(0x20, od.SUPER_SIZE - 0x20, "super-body-zeroed", fatal)
    zero(0, 0x100, "super-head-zeroed", fatal)

    def flip(off, bit, cid, exp, recsum):
        def edit(ed):
            buf = ed.super_buf()
            buf[off] ^= 1 << bit
            ed.put_super(buf, recsum=recsum)
        cases.append(Case(cid, "super", edit, exp))
    flip(0x40, 0, "super-magic-bitflip", fatal, True)
    flip(0x47, 7, "super-magic-bitflip-hi", fatal, True)
    field_case("super-magic-zero", "magic", 0, fatal)
    flip(0x00, 3, "super-csum-bitflip", semantic, False)
    flip(0x500, 2, "super-body-bitflip-no-recsum", semantic, False)
    zero(0, 32, "super-csum-zeroed", semantic)

    def fsid_flip(ed):
        buf = ed.super_buf()
        buf[0x20] ^= 0x80
        ed.put_super(buf)
    cases.append(Case("super-fsid-flip", "super", fsid_flip, semantic))

    gen = lay.super_field("generation")
    field_case("super-generation-plus-1", "generation", gen + 1, semantic)
    field_case("super-generation-minus-1", "generation", gen - 1, semantic)
    ns = lay.nodesize
    for tag, fname in (("root", "root"), ("chunk-root", "chunk_root")):
        v = lay.super_field(fname)
        field_case("super-%s-zero" % tag, fname, 0, semantic)
        field_case("super-%s-unaligned" % tag, fname, v + 1, semantic)
        field_case("super-%s-unmapped" % tag, fname, 1 << 50, semantic)
        field_case("super-%s-max" % tag, fname, U64 - ns + 1, semantic)
        field_case("super-%s-to-data" % tag, fname, lay.data_logical(), semantic)
        # A valid leaf of the FS tree (same level and generation): only its
        # owner tells, and the trees it should lead to are then missing.
        other = lay.trees[od.FS_TREE][-1].logical
        field_case("super-%s-to-fs-leaf" % tag, fname, other,
                   expect(super_=ANY, tree=ANY, file=FAIL, **sfail))
    field_case("super-chunk-root-generation-plus-1", "chunk_root_generation",
               lay.super_field("chunk_root_generation") + 1, semantic)
    for tag, v in (("zero", 0), ("two", 2), ("huge", U64)):
        field_case("super-num-devices-%s" % tag, "num_devices", v, semantic)
    for v in (0, 1, 1000, 2048, 4095, 1 << 17, 0xffffffff):
        field_case("super-sectorsize-%d" % v, "sectorsize", v, semantic)
    field_case("super-sectorsize-8192", "sectorsize", 8192, benign)
    for v in (0, 1000, 2048, 8192, 1 << 17, 0xffffffff):
        field_case("super-nodesize-%d" % v, "nodesize", v, semantic)
    arr = lay.super_field("sys_chunk_array_size")
    for tag, v in (("zero", 0), ("2049", 2049), ("huge", 0xffffffff),
                   ("minus-1", arr - 1), ("plus-1", arr + 1), ("plus-17", arr + 17),
                   ("plus-key-and-chunk", arr + 17 + 48)):
        field_case("super-sys-array-size-%s" % tag, "sys_chunk_array_size", v, semantic)
    inc = lay.super_field("incompat_flags")
    for bit in (18, 31, 40, 63):
        field_case("super-incompat-unknown-bit%d" % bit, "incompat_flags",
                   inc | (1 << bit), semantic)
    for bit, name in ((7, "raid56"), (12, "zoned"), (13, "extent-tree-v2"),
                      (14, "raid-stripe-tree"), (17, "remap-tree")):
        field_case("super-incompat-%s" % name, "incompat_flags", inc | (1 << bit), benign)
    field_case("super-incompat-all-ones", "incompat_flags", U64, semantic)
    field_case("super-compat-ro-unknown-bits", "compat_ro_flags",
               lay.super_field("compat_ro_flags") | (0xffff << 16), benign)
    field_case("super-compat-all-ones", "compat_flags", U64, benign)
    for v in (4, 0xffff):
        field_case("super-csum-type-%d" % v, "csum_type", v, semantic)
    # A known but different csum type, superblock csum recomputed with it:
    # the superblock is consistent, every tree block fails its csum.
    for ct, name in ((1, "xxhash"), (2, "sha256"), (3, "blake2")):
        def edit(ed, ct=ct):
            buf = ed.super_buf()
            od.put(buf, 0xc4, "<H", ct)
            ed.put_super(buf, csum_type=ct)
        cases.append(Case("super-csum-type-%s-consistent" % name, "super", edit, semantic))
    lvl = lay.super_field("root_level")
    for tag, v in (("plus-1", lvl + 1), ("max", od.MAX_LEVEL), ("255", 255)):
        field_case("super-root-level-%s" % tag, "root_level", v, semantic)
    clvl = lay.super_field("chunk_root_level")
    for tag, v in (("plus-1", clvl + 1), ("255", 255)):
        field_case("super-chunk-root-level-%s" % tag, "chunk_root_level", v, semantic)
    field_case("super-log-root-garbage", "log_root", 1 << 50, benign)
    field_case("super-log-root-level-255", "log_root_level", 255, benign)
    field_case("super-bytenr-wrong", "bytenr", 0, benign)
    field_case("super-total-bytes-zero", "total_bytes", 0, benign)
    field_case("super-total-bytes-huge", "total_bytes", U64, benign)
    field_case("super-bytes-used-huge", "bytes_used", U64, benign)
    field_case("super-root-dir-garbage", "root_dir_objectid", U64, benign)
    field_case("super-stripesize-zero", "stripesize", 0, benign)
    field_case("super-label-no-nul", "label", b"\xff" * 256, benign)
    field_case("super-label-utf8-garbage", "label", b"\xc3\x28\xe2\x82" * 64, benign)
    field_case("super-dev-item-devid-7", "dev_item.devid", 7, benign)
    field_case("super-dev-item-fsid-flip", "dev_item.fsid", b"\xee" * 16, benign)
    field_case("super-dev-item-sector-size-0", "dev_item.sector_size", 0, benign)
    field_case("super-metadata-uuid-garbage", "metadata_uuid", b"\x5a" * 16, benign)
    # METADATA_UUID set: tree blocks then carry a different uuid than the
    # stored metadata_uuid unless mkfs wrote metadata_uuid == fsid.
    consistent = lay.super_field("metadata_uuid") == lay.super_field("fsid")
    field_case("super-metadata-uuid-flag-set", "incompat_flags", inc | (1 << 10),
               benign if consistent else semantic)

    def backups_garbage(ed):
        buf = ed.super_buf()
        rng = random.Random(5)
        buf[od.SUPER_ROOTS_OFFSET:od.SUPER_ROOTS_OFFSET + 4 * 168] = rng.randbytes(4 * 168)
        ed.put_super(buf)
    cases.append(Case("super-backup-roots-garbage", "super", backups_garbage, benign))

    if mirror:
        mexp = expect(super_=ANY, tree=ANY, file=ANY, super1=FAIL, super_all=ANY)

        def m_zero(ed):
            ed.pwrite(od.SUPER_MIRRORS[1], bytes(od.SUPER_SIZE))
        cases.append(Case("mirror1-zeroed", "super", m_zero, mexp))

        def m_magic(ed):
            ed.set_super("magic", 0, mirror=1)
        cases.append(Case("mirror1-magic-zero", "super", m_magic, mexp))

        def m_csum(ed):
            buf = ed.super_buf(1)
            buf[0] ^= 1
            ed.put_super(buf, mirror=1, recsum=False)
        cases.append(Case("mirror1-csum-bitflip", "super", m_csum, mexp))

        def m_nodesize(ed):
            ed.set_super("nodesize", 1000, mirror=1)
        # dump-super may print a superblock whose csum is right (semantic damage).
        cases.append(Case("mirror1-nodesize-1000", "super", m_nodesize,
                          dict(mexp, super1=ANY)))

        def both(ed):
            ed.pwrite(od.SUPER_MIRRORS[0], bytes(od.SUPER_SIZE))
            ed.pwrite(od.SUPER_MIRRORS[1], bytes(od.SUPER_SIZE))
        cases.append(Case("super-and-mirror1-zeroed", "super", both,
                          expect(super_=FAIL, tree=FAIL, file=FAIL, super1=FAIL,
                                 super_all=ANY)))
    return cases


def sys_chunk_cases(lay):
    """Edits of the chunk item in the superblock's sys_chunk_array."""
    cases = []
    exp = expect(super_=ANY, tree=FAIL, file=FAIL)
    base = od.SYS_CHUNK_ARRAY_OFFSET
    chunk = base + od.KEY_SIZE        # first (only) SYSTEM chunk
    nstripes = od.get(lay.sb, chunk + 44, "<H")

    def c(cid, fn, e=exp):
        def edit(ed):
            buf = ed.super_buf()
            fn(buf)
            ed.put_super(buf)
        cases.append(Case("sys-chunk-" + cid, "sys-chunk", edit, e))

    def setf(name, value):
        off, fmt = od.CHUNK_FIELDS[name]
        return lambda b: od.put(b, chunk + off, fmt, value)

    def stripes(name, value, which=None):
        off, fmt = od.STRIPE_FIELDS[name]

        def fn(b):
            for i in range(nstripes):
                if which is None or i == which:
                    od.put(b, chunk + od.CHUNK_SIZE + i * od.STRIPE_SIZE + off, fmt, value)
        return fn

    c("num-stripes-0", setf("num_stripes", 0))
    c("num-stripes-huge", setf("num_stripes", 0xffff))
    c("num-stripes-plus-1", setf("num_stripes", nstripes + 1))
    if nstripes > 1:
        c("num-stripes-1", setf("num_stripes", 1))
    c("length-0", setf("length", 0))
    c("length-one-node", setf("length", lay.nodesize))
    c("length-huge", setf("length", U64))
    c("stripe-len-0", setf("stripe_len", 0), expect(super_=ANY, tree=ANY, file=ANY))
    c("sector-size-0", setf("sector_size", 0), expect(super_=ANY, tree=ANY, file=ANY))
    c("stripes-past-image", stripes("offset", 1 << 40))
    c("stripes-straddle-end", stripes("offset", lay.size - lay.nodesize // 2))
    c("stripes-offset-max", stripes("offset", U64 - 100))
    if nstripes > 1:
        c("stripe0-past-image-only", stripes("offset", 1 << 40, which=0),
          expect(super_=ANY, tree=ANY, file=ANY))
    c("stripes-devid-2", stripes("devid", 2))
    ctype = od.get(lay.sb, chunk + 24, "<Q") & ~(od.BG_DUP | 0xff8)
    for prof, name in ((od.BG_RAID0, "raid0"), (od.BG_RAID1, "raid1"),
                       (od.BG_RAID10, "raid10"), (od.BG_RAID5, "raid5"),
                       (od.BG_RAID6, "raid6"), (od.BG_RAID1C3, "raid1c3"),
                       (od.BG_RAID1C4, "raid1c4")):
        # Every profile is read now (volumes.h): a profile whose stripe count
        # fits reads the same bytes as the SINGLE or DUP layout it replaces
        # (one stripe, or two identical ones on the one device), as the
        # kernel would; one whose count does not is refused.  Readers may go
        # on; check reports the array copy that differs from the chunk item.
        c("type-" + name, setf("type", ctype | prof), expect(super_=ANY, tree=ANY, file=ANY))
    c("type-dup-and-raid1", setf("type", ctype | od.BG_DUP | od.BG_RAID1))
    c("key-type-dev-item", lambda b: od.put(b, base + 8, "B", od.DEV_ITEM))
    c("key-type-zero", lambda b: od.put(b, base + 8, "B", 0))
    key_off = od.get(lay.sb, base + 9, "<Q")
    c("key-logical-shifted", lambda b: od.put(b, base + 9, "<Q",
                                              key_off + 16 * 1024 * 1024))
    c("key-logical-max", lambda b: od.put(b, base + 9, "<Q", U64 - 4095))
    return cases


def chunk_tree_cases(lay):
    """Edits of CHUNK_ITEMs inside the chunk tree leaf (csum recomputed)."""
    cases = []
    meta = [c for c in lay.chunks if c.type & od.BG_METADATA and c.where[0] == "tree"]
    data = [c for c in lay.chunks if c.type & od.BG_DATA and c.where[0] == "tree"]

    def item_edit(ch, fn):
        _, leaf, slot = ch.where
        blk = lay.blocks[leaf]
        it = blk.items()[slot]

        def edit(ed):
            def f(d):
                fn(d, od.HEADER_SIZE + it.offset, it)
            ed.edit_block(leaf, f)
        return edit

    def setf(name, value):
        off, fmt = od.CHUNK_FIELDS[name]
        return lambda d, o, it: od.put(d, o + off, fmt, value)

    def stripes(name, value):
        off, fmt = od.STRIPE_FIELDS[name]

        def fn(d, o, it):
            n = od.get(d, o + 44, "<H")
            for i in range(n):
                od.put(d, o + od.CHUNK_SIZE + i * od.STRIPE_SIZE + off, fmt, value)
        return fn

    if meta:
        m = meta[0]
        fail = expect(super_=ANY, tree=FAIL, file=FAIL)
        mods = [("num-stripes-0", setf("num_stripes", 0)),
                ("num-stripes-huge", setf("num_stripes", 0xffff)),
                ("num-stripes-plus-1", setf("num_stripes", len(m.stripes) + 1)),
                ("length-0", setf("length", 0)),
                ("length-one-node", setf("length", lay.nodesize)),
                ("stripes-past-image", stripes("offset", 1 << 40)),
                ("stripes-devid-9", stripes("devid", 9))]
        base_type = m.type & ~(od.BG_DUP | 0xff8)
        for prof, name in ((od.BG_RAID0, "raid0"), (od.BG_RAID10, "raid10"),
                           (od.BG_RAID5, "raid5"), (od.BG_RAID6, "raid6"),
                           (od.BG_RAID1C3, "raid1c3")):
            mods.append(("type-" + name, setf("type", base_type | prof)))
        for name, fn in mods:
            # A profile flip may map the same bytes (see sys_chunk_cases).
            cases.append(Case("chunk-tree-metadata-" + name, "chunk-tree", item_edit(m, fn),
                              expect(super_=ANY, tree=ANY, file=ANY)
                              if name.startswith("type-") else fail))
    if data:
        d0 = data[0]
        anyexp = expect(super_=ANY, tree=ANY, file=ANY)
        for name, fn in (("num-stripes-0", setf("num_stripes", 0)),
                         ("type-raid5", setf("type", od.BG_DATA | od.BG_RAID5)),
                         ("stripes-past-image", stripes("offset", 1 << 40)),
                         ("length-0", setf("length", 0))):
            cases.append(Case("chunk-tree-data-" + name, "chunk-tree",
                              item_edit(d0, fn), anyexp))
    return cases


def _targets(lay):
    """Named tree blocks to damage: (name, Block, needed_by_every_command)."""
    t = []

    def root(tid):
        return lay.trees[tid][0]
    t.append(("root-tree", root(od.ROOT_TREE), True))
    t.append(("chunk-tree", root(od.CHUNK_TREE), True))
    ext = lay.trees[od.EXTENT_TREE]
    t.append(("extent-root", ext[0], False))
    ext_leaves = [b for b in ext if b.level == 0]
    if ext[0].level > 0:
        t.append(("extent-leaf-last", ext_leaves[-1], False))
    t.append(("dev-tree", root(od.DEV_TREE), False))
    fs = lay.trees[od.FS_TREE]
    t.append(("fs-root", fs[0], True))
    l1 = [b for b in fs if b.level == 1 and b.parent is not None]
    if l1:
        t.append(("fs-node-first", l1[0], False))
        if len(l1) > 1:
            t.append(("fs-node-last", l1[-1], False))
    fs_leaves = [b for b in fs if b.level == 0]
    t.append(("fs-leaf-first", fs_leaves[0], True))     # holds the root dir inode
    t.append(("fs-leaf-mid", fs_leaves[len(fs_leaves) // 2], False))
    t.append(("fs-leaf-last", fs_leaves[-1], False))
    for tid, name in ((od.CSUM_TREE, "csum-tree"), (od.UUID_TREE, "uuid-tree"),
                      (od.FREE_SPACE_TREE, "free-space-tree"),
                      (od.DATA_RELOC_TREE, "data-reloc-tree")):
        if tid in lay.trees:
            t.append((name, root(tid), False))
    return t


def _block_names(blk):
    """Blocks an ERROR line may name for damage to blk: the block itself, its
    parent (which holds what blk is checked against) or, when blk's own
    claims are what changed, one of its children (checked against blk)."""
    names = {blk.logical}
    if blk.parent is not None:
        names.add(blk.parent.logical)
    if blk.level > 0:
        names.update(p.blockptr for p in blk.ptrs())
    return names


def header_cases(lay):
    cases = []
    ns = lay.nodesize

    def add(cid, lg, fn, exp, names=None, recsum=True, copies=None):
        def edit(ed):
            data = ed.block(lg)
            fn(data)
            if recsum:
                data[0:32] = od.csum(lay.csum_type, data[0x20:ns])
            for i, p in enumerate(lay.phys(lg)):
                if copies is None or i in copies:
                    ed.pwrite(p, data)
        cases.append(Case(cid, "header", edit, exp, block=lg, names=names))

    def hset(fname, value):
        off, fmt = od.HEADER_FIELDS[fname]
        return lambda d: od.put(d, off, fmt, value)

    def extra_slot(blk):
        """One more item than written, the extra slot zeroed (key 0 0 0)."""
        size = od.ITEM_SIZE if blk.level == 0 else od.KEY_PTR_SIZE
        pos = od.HEADER_SIZE + blk.nritems * size

        def f(d):
            od.put(d, 0x60, "<I", blk.nritems + 1)
            d[pos:pos + size] = bytes(size)
        return f

    def flip(pos, mask):
        def f(d):
            d[pos] ^= mask
        return f

    for name, blk, needed in _targets(lay):
        is_root = blk.parent is None
        lg = blk.logical
        base = expect(super_=ANY, tree=FAIL, file=FAIL if needed else ANY, block=FAIL)
        if name == "fs-leaf-first":
            # Only the root directory's own items are known to live here.
            base = dict(base, file=ANY, **{"file-root": FAIL})
        max_items = (ns - od.HEADER_SIZE) // (od.ITEM_SIZE if blk.level == 0
                                              else od.KEY_PTR_SIZE)
        names = _block_names(blk)
        gen = blk.generation
        add("block-%s-csum-bitflip" % name, lg, flip(0, 0x10), base, names, recsum=False)
        add("block-%s-body-bitflip-no-recsum" % name, lg, flip(ns - 1, 0x01), base, names,
            recsum=False)
        mods = [
            ("bytenr-plus-node", hset("bytenr", lg + ns), {lg + ns}),
            ("bytenr-zero", hset("bytenr", 0), set()),
            ("fsid-flip", hset("fsid", bytes(x ^ 0xff for x in blk.hdr("fsid"))), set()),
            ("level-plus-1", hset("level", blk.level + 1), set()),
            ("level-255", hset("level", 255), set()),
            ("generation-plus-1", hset("generation", gen + 1), set()),
            ("generation-minus-1", hset("generation", gen - 1), set()),
            ("nritems-huge", hset("nritems", 0xffffffff), set()),
            ("nritems-plus-1", extra_slot(blk), set()),
            ("nritems-over-max", hset("nritems", max_items + 1), set()),
        ]
        if blk.level > 0:
            mods.append(("level-minus-1", hset("level", blk.level - 1), set()))
        # Read alone (-b), a block has no parent to be checked against.
        standalone = dict(base, block=ANY)
        for kind, fn, extra in mods:
            add("block-%s-%s" % (name, kind), lg, fn,
                standalone if kind.startswith("generation") else base, names | extra)
        # nritems 0: an empty root leaf is a valid empty tree.
        e0 = dict(base, block=ANY)
        if is_root and blk.level == 0:
            e0 = expect(super_=ANY, tree=ANY, block=ANY,
                        file=FAIL if name in ("chunk-tree", "root-tree") else ANY)
        add("block-%s-nritems-0" % name, lg, hset("nritems", 0), e0, names)

    tolerated = expect(super_=ANY, tree=ANY, file=ANY, block=ANY)
    targets = {n: b for n, b, _ in _targets(lay)}
    # Header fields that readers may ignore: must not crash.
    for name in ("root-tree", "chunk-tree", "fs-leaf-mid"):
        lg = targets[name].logical
        add("block-%s-owner-garbage" % name, lg, hset("owner", 0xdead), tolerated)
        add("block-%s-chunk-tree-uuid-flip" % name, lg,
            hset("chunk_tree_uuid", b"\xaa" * 16), tolerated)
        add("block-%s-flags-garbage" % name, lg, hset("flags", U64), tolerated)
    # One DUP copy damaged: a reader may use the other copy (or refuse).
    for name, copy in (("root-tree", 0), ("fs-root", 0), ("fs-leaf-mid", 0),
                       ("extent-root", 1)):
        lg = targets[name].logical
        if len(lay.phys(lg)) > 1:
            add("block-%s-copy%d-only-csum-bitflip" % (name, copy), lg, flip(0, 0x10),
                tolerated, recsum=False, copies={copy})
            add("block-%s-copy%d-only-level-255" % (name, copy), lg, hset("level", 255),
                tolerated, copies={copy})
    return cases


def _leaf_targets(lay):
    return [(n, b, needed) for n, b, needed in _targets(lay)
            if b.level == 0 and b.nritems >= 3]


def item_cases(lay):
    """Leaf item headers: offsets/sizes outside the block, overlaps, key order."""
    cases = []
    ns = lay.nodesize
    area = ns - od.HEADER_SIZE
    for name, blk, needed in _leaf_targets(lay):
        lg = blk.logical
        items = blk.items()
        n = len(items)
        exp = expect(super_=ANY, tree=FAIL, file=FAIL if needed else ANY, block=FAIL)
        ih = lambda i: od.HEADER_SIZE + i * od.ITEM_SIZE      # noqa: E731

        def set_item(i, off=None, size=None):
            def f(d):
                if off is not None:
                    od.put(d, ih(i) + 17, "<I", off)
                if size is not None:
                    od.put(d, ih(i) + 21, "<I", size)
            return f

        # overlap: item j's data placed on item j-1's (both non-empty)
        j = next((k for k in range(1, n) if items[k].size and items[k - 1].size), None)
        last = n - 1
        lastnz = max(k for k in range(n) if items[k].size) if any(
            i.size for i in items) else last
        mods = [
            ("item0-offset-past-end", set_item(0, off=area)),
            ("item0-offset-plus-1", set_item(0, off=items[0].offset + 1)),
            ("item0-size-plus-1", set_item(0, size=items[0].size + 1)),
            ("item-last-size-huge", set_item(last, size=0xffffffff)),
            ("item-last-offset-huge", set_item(last, off=0xfffffff0)),
            ("item-last-into-headers", set_item(lastnz, off=0)),
            ("item-last-offset-size-wrap", set_item(last, off=0xffffffff, size=2)),
        ]
        if j is not None:
            mods.append(("items-overlap", set_item(j, off=items[j - 1].offset)))

        def swap(i, k):
            def f(d):
                a = bytes(d[ih(i):ih(i) + 17])
                d[ih(i):ih(i) + 17] = d[ih(k):ih(k) + 17]
                d[ih(k):ih(k) + 17] = a
            return f

        def dup_key(i):
            def f(d):
                d[ih(i + 1):ih(i + 1) + 17] = d[ih(i):ih(i) + 17]
            return f

        def zero_key(i):
            def f(d):
                d[ih(i):ih(i) + 17] = bytes(17)
            return f
        mid = n // 2
        mods += [("keys-swapped-0-1", swap(0, 1)),
                 ("keys-swapped-mid", swap(mid - 1, mid + 1) if mid + 1 < n else swap(0, 2)),
                 ("key-duplicate", dup_key(mid - 1 if mid > 0 else 0)),
                 ("key-last-zero", zero_key(last))]
        for kind, fn in mods:
            edit = (lambda f, lg=lg: (lambda ed: ed.edit_block(lg, f)))(fn)
            cases.append(Case("leaf-%s-%s" % (name, kind), "item", edit, exp,
                              block=lg, names=_block_names(blk)))
    return cases


def _key_before(key, lower):
    """A key strictly between lower and key, or None."""
    o, t, off = key
    cand = (o, t, off - 1) if off else ((o, t - 1, U64) if t else (o - 1, 255, U64))
    return od.Key(*cand) if tuple(cand) > tuple(lower) else None


def _key_after(key, upper):
    """A key strictly between key and upper (None: no upper bound), or None."""
    o, t, off = key
    cand = (o, t, off + 1) if off < U64 else ((o, t + 1, 0) if t < 255 else (o + 1, 0, 0))
    return od.Key(*cand) if upper is None or tuple(cand) < tuple(upper) else None


def _last_key(lay, logical):
    """The last key stored in the subtree rooted at the block at logical."""
    blk = lay.blocks[logical]
    while blk.level > 0:
        blk = lay.blocks[blk.ptrs()[-1].blockptr]
    return blk.items()[-1].key


def node_cases(lay):
    """Node key pointers: key/generation mismatch, cycles, bad child addresses."""
    cases = []
    nodes = [(n, b, needed) for n, b, needed in _targets(lay) if b.level > 0]
    data_lg = lay.data_logical()
    for name, blk, needed in nodes:
        other_tree = od.EXTENT_TREE if blk.tree != od.EXTENT_TREE else od.FS_TREE
        other_leaf = [b for b in lay.trees[other_tree] if b.level == 0][0]
        lg = blk.logical
        ptrs = blk.ptrs()
        if len(ptrs) < 2:
            continue
        # Pointer 1 is damaged; lookups through pointer 0 are unaffected.
        exp = expect(super_=ANY, tree=FAIL, file=ANY, block=FAIL)
        pp = lambda i: od.HEADER_SIZE + i * od.KEY_PTR_SIZE     # noqa: E731
        i = 1

        def set_ptr(i, blockptr=None, gen=None, key=None):
            def f(d):
                if key is not None:
                    od.pack_key(d, pp(i), key)
                if blockptr is not None:
                    od.put(d, pp(i) + 17, "<Q", blockptr)
                if gen is not None:
                    od.put(d, pp(i) + 25, "<Q", gen)
            return f
        child = lay.blocks[ptrs[i].blockptr]
        mods = []
        # A key that only pointer i's child disagrees with: strictly above
        # everything under pointer i-1 (else the left sibling's last key is
        # what breaks) and below pointer i+1's key.
        kb = _key_before(ptrs[i].key, _last_key(lay, ptrs[i - 1].blockptr))
        if kb is None:
            kb = _key_after(ptrs[i].key, ptrs[i + 1].key if len(ptrs) > i + 1 else None)
        if kb is not None:
            mods.append(("ptr-key-mismatch", set_ptr(i, key=kb), {lg, child.logical}))
        mods += [
            ("ptr-generation-plus-1", set_ptr(i, gen=ptrs[i].generation + 1),
             {lg, child.logical}),
            ("ptr-to-self", set_ptr(i, blockptr=lg, gen=blk.generation), {lg}),
            ("ptr-zero", set_ptr(i, blockptr=0), {lg}),
            ("ptr-unaligned", set_ptr(i, blockptr=child.logical + 1),
             {lg, child.logical + 1}),
            ("ptr-unmapped", set_ptr(i, blockptr=1 << 50), {lg, 1 << 50}),
            ("ptr-into-data", set_ptr(i, blockptr=data_lg), {lg, data_lg}),
            ("ptr-dup-sibling", set_ptr(i, blockptr=ptrs[i - 1].blockptr,
                                        gen=ptrs[i - 1].generation),
             {lg, ptrs[i - 1].blockptr}),
            ("ptr-to-other-tree", set_ptr(i, blockptr=other_leaf.logical,
                                          gen=other_leaf.generation),
             {lg, other_leaf.logical}),
        ]
        if blk.parent is not None:
            # Cycle to an ancestor: the parent (and the root) point back down here.
            mods.append(("ptr-to-parent", set_ptr(i, blockptr=blk.parent.logical,
                                                  gen=blk.parent.generation),
                         {lg, blk.parent.logical}))
        if blk.level >= 2:
            # Skip a level: point at the grandchild that has the same first key
            # and the same generation, so only the level check can catch it.
            grand = lay.blocks[child.ptrs()[0].blockptr]
            mods.append(("ptr-skips-level", set_ptr(i, blockptr=grand.logical,
                                                    gen=grand.generation),
                         {lg, grand.logical}))
        if len(ptrs) >= 3:
            def swap(d):
                a = bytes(d[pp(1):pp(1) + 17])
                d[pp(1):pp(1) + 17] = d[pp(2):pp(2) + 17]
                d[pp(2):pp(2) + 17] = a
            mods.append(("ptr-keys-swapped", swap, {lg, ptrs[1].blockptr, ptrs[2].blockptr}))
        for kind, fn, names in mods:
            edit = (lambda f, lg=lg: (lambda ed: ed.edit_block(lg, f)))(fn)
            e = exp
            if kind == "ptr-keys-swapped":
                e = dict(exp, file=FAIL if needed else ANY)
            cases.append(Case("node-%s-%s" % (name, kind), "node", edit, e,
                              block=lg, names=names))
    # A stale-looking extra pointer: one slot more in the first level-1 node
    # of the FS tree, pointing at the first leaf of the next level-1 node with
    # its true key and generation. Each block is valid alone; only the tree's
    # key order (keys going back after this node) shows that a leaf is
    # referenced twice.
    fs_l1 = [b for b in lay.trees[od.FS_TREE] if b.level == 1]
    if len(fs_l1) >= 2:
        n1, n2 = fs_l1[0], fs_l1[1]
        tgt = n2.ptrs()[0]

        def stale(d, n1=n1, tgt=tgt):
            pos = od.HEADER_SIZE + n1.nritems * od.KEY_PTR_SIZE
            od.put(d, 0x60, "<I", n1.nritems + 1)
            od.pack_key(d, pos, tgt.key)
            od.put(d, pos + 17, "<Q", tgt.blockptr)
            od.put(d, pos + 25, "<Q", tgt.generation)
        cases.append(Case("node-fs-node-first-extra-ptr-to-next-nodes-leaf", "node",
                          lambda ed, n1=n1: ed.edit_block(n1.logical, stale),
                          expect(super_=ANY, tree=FAIL, file=ANY, block=ANY),
                          block=n1.logical, names={n1.logical, tgt.blockptr, n2.logical}))
    return cases


def root_item_cases(lay):
    """ROOT_ITEMs in the root tree pointing to wrong places."""
    cases = []
    names = {od.EXTENT_TREE: "extent", od.DEV_TREE: "dev", od.FS_TREE: "fs",
             od.CSUM_TREE: "csum", od.UUID_TREE: "uuid", od.FREE_SPACE_TREE: "free-space",
             od.DATA_RELOC_TREE: "data-reloc"}
    other = lay.trees[od.FS_TREE][-1]      # a valid leaf of another tree
    for tid, tname in names.items():
        if tid not in lay.root_items:
            continue
        leaf, it = lay.root_items[tid]
        blk = lay.blocks[leaf]
        o = od.HEADER_SIZE + it.offset
        root_lg = od.get(blk.data, o + 176, "<Q")
        level = od.get(blk.data, o + 238, "B")
        gen = od.get(blk.data, o + 160, "<Q")
        exp = expect(super_=ANY, tree=FAIL, file=FAIL if tid == od.FS_TREE else ANY)

        def fld(fname, value, o=o):
            off, fmt = od.ROOT_ITEM_FIELDS[fname]
            return lambda d: od.put(d, o + off, fmt, value)
        mods = [("bytenr-zero", fld("bytenr", 0)),
                ("bytenr-unaligned", fld("bytenr", root_lg + 1)),
                ("bytenr-unmapped", fld("bytenr", 1 << 50)),
                ("bytenr-into-data", fld("bytenr", lay.data_logical())),
                ("level-plus-1", fld("level", level + 1)),
                ("level-max", fld("level", od.MAX_LEVEL)),
                ("generation-plus-1", fld("generation", gen + 1))]
        for kind, fn in mods:
            edit = (lambda f, leaf=leaf: (lambda ed: ed.edit_block(leaf, f)))(fn)
            cases.append(Case("root-item-%s-%s" % (tname, kind), "root-item", edit, exp))
        if tid != od.FS_TREE and other.level == level:
            def f(d, o=o):
                od.put(d, o + 176, "<Q", other.logical)
                od.put(d, o + 160, "<Q", other.generation)
                od.put(d, o + 239, "<Q", other.generation)
            edit = (lambda f, leaf=leaf: (lambda ed: ed.edit_block(leaf, f)))(f)
            cases.append(Case("root-item-%s-to-fs-leaf" % tname, "root-item", edit,
                              expect(super_=ANY, tree=ANY, file=ANY)))
    return cases


def item_body_cases(lay):
    """Item bodies that printers must parse defensively (lengths, types)."""
    cases = []
    anyexp = expect(super_=ANY, tree=ANY, file=ANY)

    def body(cid, blk, it, fn, inodes=()):
        o = od.HEADER_SIZE + it.offset

        def edit(ed, lg=blk.logical):
            ed.edit_block(lg, lambda d: fn(d, o, it))
        cases.append(Case("body-" + cid, "body", edit, anyexp, block=blk.logical,
                          inodes=[(5, x) for x in inodes]))

    def first(tree, ktype, pred=None):
        r = lay.find_items(tree, ktype, pred)
        return r[0] if r else (None, None)

    def put(off, fmt, value):
        return lambda d, o, it: od.put(d, o + off, fmt, value)

    blk, it = first(od.FS_TREE, od.DIR_ITEM, lambda b, i: i.key.objectid == 256)
    if blk:
        body("dir-item-name-len-huge", blk, it, put(0x1b, "<H", 0xffff), [256])
        body("dir-item-name-len-0", blk, it, put(0x1b, "<H", 0), [256])
        body("dir-item-data-len-huge", blk, it, put(0x19, "<H", 0xffff), [256])
        body("dir-item-type-garbage", blk, it, put(0x1d, "B", 0x7f), [256])
        body("dir-item-location-garbage", blk, it,
             lambda d, o, i: od.pack_key(d, o, od.Key(U64, 255, U64)), [256])
    blk, it = first(od.FS_TREE, od.DIR_INDEX)
    if blk:
        body("dir-index-name-len-plus-1", blk, it,
             lambda d, o, i: od.put(d, o + 0x1b, "<H", od.get(d, o + 0x1b, "<H") + 1),
             [it.key.objectid])
    blk, it = first(od.FS_TREE, od.INODE_REF, lambda b, i: i.key.objectid > 256)
    if blk:
        ino = it.key.objectid
        body("inode-ref-name-len-huge", blk, it, put(8, "<H", 0xffff), [ino])
        body("inode-ref-name-len-plus-1", blk, it,
             lambda d, o, i: od.put(d, o + 8, "<H", od.get(d, o + 8, "<H") + 1), [ino])
    blk, it = first(od.FS_TREE, od.XATTR_ITEM)
    if blk:
        ino = it.key.objectid
        body("xattr-name-len-huge", blk, it, put(0x1b, "<H", 0xffff), [ino])
        body("xattr-data-len-huge", blk, it, put(0x19, "<H", 0xffff), [ino])
    blk, it = first(od.FS_TREE, od.INODE_ITEM, lambda b, i: i.key.objectid > 256)
    if blk:
        ino = it.key.objectid
        body("inode-mode-garbage", blk, it, put(0x34, "<I", 0xffffffff), [ino])
        body("inode-size-huge", blk, it, put(0x10, "<Q", U64), [ino])
        body("inode-flags-all", blk, it, put(0x40, "<Q", U64), [ino])
        body("inode-nsec-huge", blk, it, put(0x70 + 8, "<I", 0xffffffff), [ino])
    regular = lay.find_items(od.FS_TREE, od.EXTENT_DATA,
                             lambda b, i: b.data[od.HEADER_SIZE + i.offset + 20] == 1)
    inline = lay.find_items(od.FS_TREE, od.EXTENT_DATA,
                            lambda b, i: b.data[od.HEADER_SIZE + i.offset + 20] == 0)
    if regular:
        blk, it = regular[0]
        ino = it.key.objectid
        for cid, off, fmt, v in (("type-7", 20, "B", 7), ("compression-9", 16, "B", 9),
                                 ("encryption-5", 17, "B", 5),
                                 ("encryption-1-no-ctx", 17, "B", 1),
                                 ("other-encoding", 18, "<H", 0xffff),
                                 ("disk-bytenr-unmapped", 21, "<Q", 1 << 50),
                                 ("disk-num-bytes-huge", 29, "<Q", U64),
                                 ("offset-huge", 37, "<Q", U64),
                                 ("num-bytes-huge", 45, "<Q", U64),
                                 ("type-inline", 20, "B", 0)):
            body("extent-data-regular-" + cid, blk, it, put(off, fmt, v), [ino])
    if inline:
        blk, it = inline[0]
        ino = it.key.objectid
        body("extent-data-inline-ram-bytes-huge", blk, it, put(8, "<Q", U64), [ino])
        body("extent-data-inline-compression-zstd", blk, it, put(16, "B", 3), [ino])
        body("extent-data-inline-compression-zlib", blk, it, put(16, "B", 1), [ino])
        body("extent-data-inline-as-regular", blk, it, put(20, "B", 1), [ino])
    blk, it = first(od.EXTENT_TREE, od.EXTENT_ITEM)
    if blk:
        body("extent-item-refs-0", blk, it, put(0, "<Q", 0))
        body("extent-item-flags-all", blk, it, put(16, "<Q", U64))
        body("extent-item-inline-ref-type-garbage", blk, it, put(24, "B", 0xff))
        body("extent-item-inline-ref-type-tree-block", blk, it, put(24, "B", 176))
    blk, it = first(od.EXTENT_TREE, od.METADATA_ITEM)
    if blk:
        body("metadata-item-inline-ref-type-garbage", blk, it, put(24, "B", 0x01))
        body("metadata-item-inline-ref-data-ref", blk, it, put(24, "B", 178))
    blk, it = first(od.EXTENT_TREE, od.BLOCK_GROUP_ITEM)
    if blk:
        body("block-group-flags-garbage", blk, it, put(16, "<Q", U64))
    blk, it = first(od.DEV_TREE, od.DEV_EXTENT)
    if blk:
        body("dev-extent-length-huge", blk, it, put(24, "<Q", U64))
    blk, it = first(od.FREE_SPACE_TREE, od.FREE_SPACE_INFO)
    if blk:
        body("free-space-info-count-huge", blk, it, put(0, "<I", 0xffffffff))
        body("free-space-info-bitmaps-flag", blk, it, put(4, "<I", 1))
    blk, it = first(od.CHUNK_TREE, od.DEV_ITEM)
    if blk:
        body("dev-item-total-bytes-0", blk, it, put(8, "<Q", 0))
    blk, it = first(od.ROOT_TREE, od.ROOT_ITEM)
    if blk:
        body("root-item-refs-0", blk, it, put(216, "<I", 0))
        body("root-item-drop-progress-garbage", blk, it,
             lambda d, o, i: od.pack_key(d, o + 220, od.Key(U64, 200, U64)))
    blk, it = first(od.UUID_TREE, od.UUID_SUBVOL)
    if blk:
        body("uuid-item-subvol-huge", blk, it, put(0, "<Q", U64))

    # Seeded random bit flips in item bodies of every leaf kind (csum fixed).
    rng = random.Random(1234)
    leaves = [b for b in lay.blocks.values() if b.level == 0 and b.nritems]
    leaves.sort(key=lambda b: b.logical)
    for n in range(30):
        blk = rng.choice(leaves)
        its = [i for i in blk.items() if i.size]
        if not its:
            continue
        it = rng.choice(its)
        pos = rng.randrange(it.size)
        bit = rng.randrange(8)

        def flip(d, o, i, pos=pos, bit=bit):
            d[o + pos] ^= 1 << bit
        inodes = [it.key.objectid] if blk.tree == od.FS_TREE else []
        body("random-flip-%02d" % n, blk, it, flip, inodes)
    return cases


def build_cases(lay):
    return (truncation_cases(lay) + super_cases(lay) + sys_chunk_cases(lay)
             + chunk_tree_cases(lay) + header_cases(lay) + item_cases(lay)
             + node_cases(lay) + root_item_cases(lay) + item_body_cases(lay))


def all_cases():
    path, lay, err = pristine()
    if lay is None:
        return [], err
    cases = build_cases(lay)
    ids = [c.id for c in cases]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, "duplicate corruption ids: %s" % sorted(dup)
    return cases, None


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        cases, err = all_cases()
        if not cases:
            metafunc.parametrize("case", [pytest.param(None, marks=pytest.mark.skip(
                reason=err or "no cases"))], ids=["unavailable"])
        else:
            metafunc.parametrize("case", cases, ids=[c.id for c in cases])


# ---------------------------------------------------------------------------
# Running a case.

def _commands(case, lay, img):
    deep = lay.deep_file
    cmds = [("super", ["inspect", "dump-super", img]),
            ("tree", ["inspect", "dump-tree", img]),
            ("file-root", ["inspect", "file", "/", img]),
            ("file-deep", ["inspect", "file", deep, img])]
    if case.family in JSON_FAMILIES:
        cmds.append(("tree-json", ["--format", "json", "inspect", "dump-tree", img]))
    if "super1" in case.expect:
        cmds.append(("super1", ["inspect", "dump-super", "--super", "1", img]))
    if "super-all" in case.expect:
        cmds.append(("super-all", ["inspect", "dump-super", "--all", img]))
    if case.block is not None and "block" in case.expect:
        cmds.append(("block", ["inspect", "dump-tree", "-b", str(case.block),
                               "--follow", img]))
    for root, ino in case.inodes:
        cmds.append(("file-%d-%d" % (root, ino), ["inspect", "file", "--root", str(root),
                                                    "--inode", str(ino), img]))
    return cmds


def _class(key):
    if key.startswith("file"):
        return "file"
    if key == "tree-json":
        return "tree"
    return key


def _mentions(line, numbers):
    low = line.lower()
    return any(str(n) in line or ("%x" % n) in low for n in numbers)


def _make_image(case, lay, dst):
    fixtures.sparse_copy(lay.path, dst)
    if isinstance(case.edit, tuple) and case.edit[0] == "truncate":
        os.truncate(dst, case.edit[1])
        return
    ed = Editor(dst, lay)
    try:
        case.edit(ed)
    finally:
        ed.close()


@pytest.fixture(scope="module")
def layout():
    path, lay, err = pristine()
    if lay is None:
        pytest.skip(err)
    return lay


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as ex:
        yield ex


def test_pristine_baseline(run, layout):
    """The pristine image is clean for btrfs check and for every command."""
    img = layout.path
    res = subprocess.run(["btrfs", "check", str(img)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert res.returncode == 0, res.stderr
    for args in (["inspect", "dump-super", img], ["inspect", "dump-tree", img],
                 ["inspect", "dump-super", "--super", "1", img],
                 ["inspect", "file", "/", img],
                 ["inspect", "file", DEEP_FILE % (MANY_FILES - 1), img],
                 ["inspect", "file", BIG_FILE, img]):
        r = run(*args)
        assert r.returncode == 0 and not error_lines(r.stderr), (args, r.returncode,
                                                                  r.stderr[-2000:])


def test_case_count():
    """The suite keeps at least 200 corruptions that must make dump-tree exit 3."""
    cases, err = all_cases()
    if not cases:
        pytest.skip(err)
    failing = [c for c in cases if c.expect.get("tree") == FAIL]
    assert len(failing) >= 200, len(failing)


def test_corruption(case, run, layout, tmp_path, pool):
    run_case(case, layout, run, tmp_path / "corrupt.img", pool)


# A few corruptions again on images of the other csum types: the edits are
# re-checksummed with xxhash64 / sha256 / blake2b-256 by our own helpers, so
# the tool's csum code must reject the damaged copy and accept the re-summed
# structure up to the semantic check.
OTHER_CSUM_CASES = [
    "super-csum-bitflip", "super-generation-plus-1", "super-nodesize-8192",
    "block-root-tree-csum-bitflip", "block-root-tree-level-plus-1",
    "block-chunk-tree-fsid-flip", "block-fs-root-generation-minus-1",
    "leaf-root-tree-keys-swapped-0-1", "leaf-fs-leaf-first-items-overlap",
]


@pytest.mark.parametrize("csum", ["xxhash", "sha256", "blake2"])
def test_corruption_other_csum(csum, run, make_mkfs_image, tmp_path, pool):
    image = make_mkfs_image(csum, 16384)
    lay = Layout(image.path, deep_file="/nested/level0/level1/level2/level3/level4/"
                                       "level5/level6/level7/leaf.txt")
    by_id = {c.id: c for c in build_cases(lay)}
    missing = [cid for cid in OTHER_CSUM_CASES if cid not in by_id]
    assert not missing, "cases not applicable to %s image: %s" % (csum, missing)
    problems = []
    for cid in OTHER_CSUM_CASES:
        try:
            run_case(by_id[cid], lay, run, tmp_path / (cid + ".img"), pool)
        except AssertionError as e:
            problems.append("%s: %s" % (cid, e))
    assert not problems, "\n".join(problems)


def run_case(case, layout, run, img, pool):
    _make_image(case, layout, img)
    cmds = _commands(case, layout, img)
    futures = [(key, args, pool.submit(run, *args, timeout=CMD_TIMEOUT))
               for key, args in cmds]
    problems = []
    for key, args, fut in futures:
        res = fut.result()           # crash / hang / sanitizer: fails here
        want = case.expect.get(key, case.expect.get(_class(key), ANY))
        errs = error_lines(res.stderr)
        shown = "%s: exit %d, %d ERROR line(s): %s" % (
            " ".join(str(a) for a in args[:-1]), res.returncode, len(errs),
            (errs or [res.stderr.strip()[-300:]])[:3])
        if want == OK:
            if res.returncode != 0 or errs:
                problems.append("expected exit 0 -- " + shown)
        elif want == FAIL:
            if res.returncode != 3 or len(errs) != 1:
                problems.append("expected exit 3 + one ERROR line -- " + shown)
            elif (case.names and key in ("tree", "block")
                  and not _mentions(errs[0], case.names)):
                problems.append("ERROR line does not name the block (%s) -- %s" % (
                    " or ".join(str(n) for n in sorted(case.names)), shown))
        else:
            ok = (res.returncode == 0 and not errs) or (res.returncode == 3 and len(errs) == 1)
            if not ok:
                problems.append("expected exit 0 (no ERROR) or 3 (one ERROR line) -- " + shown)
    img.unlink()
    assert not problems, "\n".join(problems)


def main(argv):
    """Reproduce one case outside pytest:
    /usr/bin/python3 tests/test_corruption.py CASE_ID OUT.img   (or --list)"""
    cases, err = all_cases()
    if err:
        print(err)
        return 1
    if argv[:1] == ["--list"]:
        for c in cases:
            print(c.id, c.expect)
        return 0
    if len(argv) != 2:
        print(main.__doc__)
        return 2
    by_id = {c.id: c for c in cases}
    if argv[0] not in by_id:
        print("unknown case id %s (use --list)" % argv[0])
        return 2
    case = by_id[argv[0]]
    _make_image(case, pristine()[1], argv[1])
    for key, args in _commands(case, pristine()[1], argv[1]):
        print("%-10s expect %-4s  btrfs-extcrypt %s" % (
            key, case.expect.get(key, case.expect.get(_class(key), ANY)),
            " ".join(str(a) for a in args)))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))

"""The tests' one reader/patcher of btrfs images, and their one CRC-32C,
name hash and csum.

Written from Documentation/format.rst section 2 only (no code shared with the C engine), so
it can locate superblock fields, chunk items and tree blocks of a *valid*
image and patch them: the corruption suite uses it to edit a field and then
recompute the checksum so that the C side's semantic checks are reached, not
only its checksum check.  The item editor of leafedit.py and the encrypt
reference of encrypt_ref.py are built on it.

It trusts the image it walks (it is only ever pointed at pristine images) and
is not meant to be fast.
"""

import hashlib
import os
import struct
from collections import namedtuple

import crcmod.predefined
import xxhash

SUPER_OFFSET = 0x10000
SUPER_MIRRORS = (0x10000, 0x4000000, 0x4000000000)
SUPER_SIZE = 0x1000
MAGIC = 0x4D5F53665248425F
HEADER_SIZE = 101
ITEM_SIZE = 25
KEY_PTR_SIZE = 33
KEY_SIZE = 17
CHUNK_SIZE = 48
STRIPE_SIZE = 32
MAX_LEVEL = 8

CSUM_CRC32C, CSUM_XXHASH, CSUM_SHA256, CSUM_BLAKE2 = 0, 1, 2, 3
CSUM_NAMES = {"crc32c": 0, "xxhash": 1, "sha256": 2, "blake2": 3}
CSUM_SIZES = {0: 4, 1: 8, 2: 32, 3: 32}

# Key types and tree ids (Documentation/format.rst 2.4).
INODE_ITEM, INODE_REF, INODE_EXTREF, XATTR_ITEM = 1, 12, 13, 24
DIR_ITEM, DIR_INDEX, EXTENT_DATA, EXTENT_CSUM = 84, 96, 108, 128
ROOT_ITEM, ROOT_BACKREF, ROOT_REF = 132, 144, 156
EXTENT_ITEM, METADATA_ITEM, BLOCK_GROUP_ITEM = 168, 169, 192
FREE_SPACE_INFO, FREE_SPACE_EXTENT = 198, 199
DEV_EXTENT, DEV_ITEM, CHUNK_ITEM = 204, 216, 228
UUID_SUBVOL = 251

ROOT_TREE, EXTENT_TREE, CHUNK_TREE, DEV_TREE, FS_TREE = 1, 2, 3, 4, 5
CSUM_TREE, UUID_TREE, FREE_SPACE_TREE, BLOCK_GROUP_TREE = 7, 9, 10, 11
DATA_RELOC_TREE = (1 << 64) - 9
FIRST_CHUNK_TREE_OBJECTID = 256

# Chunk type flags.
BG_DATA, BG_SYSTEM, BG_METADATA = 1, 2, 4
BG_RAID0, BG_RAID1, BG_DUP, BG_RAID10 = 8, 16, 32, 64
BG_RAID5, BG_RAID6, BG_RAID1C3, BG_RAID1C4 = 128, 256, 512, 1024

# Superblock fields: name -> (offset, struct format).
SUPER_FIELDS = {
    "csum": (0x00, "32s"), "fsid": (0x20, "16s"), "bytenr": (0x30, "<Q"),
    "flags": (0x38, "<Q"), "magic": (0x40, "<Q"), "generation": (0x48, "<Q"),
    "root": (0x50, "<Q"), "chunk_root": (0x58, "<Q"), "log_root": (0x60, "<Q"),
    "log_root_transid": (0x68, "<Q"), "total_bytes": (0x70, "<Q"),
    "bytes_used": (0x78, "<Q"), "root_dir_objectid": (0x80, "<Q"),
    "num_devices": (0x88, "<Q"), "sectorsize": (0x90, "<I"),
    "nodesize": (0x94, "<I"), "leafsize": (0x98, "<I"),
    "stripesize": (0x9c, "<I"), "sys_chunk_array_size": (0xa0, "<I"),
    "chunk_root_generation": (0xa4, "<Q"), "compat_flags": (0xac, "<Q"),
    "compat_ro_flags": (0xb4, "<Q"), "incompat_flags": (0xbc, "<Q"),
    "csum_type": (0xc4, "<H"), "root_level": (0xc6, "B"),
    "chunk_root_level": (0xc7, "B"), "log_root_level": (0xc8, "B"),
    "label": (0x12b, "256s"), "cache_generation": (0x22b, "<Q"),
    "uuid_tree_generation": (0x233, "<Q"), "metadata_uuid": (0x23b, "16s"),
    "nr_global_roots": (0x24b, "<Q"),
    # dev_item (0xc9 + field offset)
    "dev_item.devid": (0xc9 + 0, "<Q"), "dev_item.total_bytes": (0xc9 + 8, "<Q"),
    "dev_item.bytes_used": (0xc9 + 16, "<Q"), "dev_item.io_align": (0xc9 + 24, "<I"),
    "dev_item.io_width": (0xc9 + 28, "<I"), "dev_item.sector_size": (0xc9 + 32, "<I"),
    "dev_item.type": (0xc9 + 36, "<Q"), "dev_item.generation": (0xc9 + 44, "<Q"),
    "dev_item.uuid": (0xc9 + 66, "16s"), "dev_item.fsid": (0xc9 + 82, "16s"),
}
SYS_CHUNK_ARRAY_OFFSET = 0x32b
SYS_CHUNK_ARRAY_MAX = 2048
SUPER_ROOTS_OFFSET = 0xb2b

# Tree block header: name -> (offset, format).
HEADER_FIELDS = {
    "csum": (0x00, "32s"), "fsid": (0x20, "16s"), "bytenr": (0x30, "<Q"),
    "flags": (0x38, "<Q"), "chunk_tree_uuid": (0x40, "16s"),
    "generation": (0x50, "<Q"), "owner": (0x58, "<Q"), "nritems": (0x60, "<I"),
    "level": (0x64, "B"),
}

# Chunk item fields (relative to the start of struct btrfs_chunk).
CHUNK_FIELDS = {
    "length": (0, "<Q"), "owner": (8, "<Q"), "stripe_len": (16, "<Q"),
    "type": (24, "<Q"), "io_align": (32, "<I"), "io_width": (36, "<I"),
    "sector_size": (40, "<I"), "num_stripes": (44, "<H"), "sub_stripes": (46, "<H"),
}
STRIPE_FIELDS = {"devid": (0, "<Q"), "offset": (8, "<Q"), "dev_uuid": (16, "16s")}

# Root item fields (Documentation/format.rst 2.6).
ROOT_ITEM_FIELDS = {
    "generation": (160, "<Q"), "root_dirid": (168, "<Q"), "bytenr": (176, "<Q"),
    "byte_limit": (184, "<Q"), "bytes_used": (192, "<Q"), "flags": (208, "<Q"),
    "refs": (216, "<I"), "drop_level": (237, "B"), "level": (238, "B"),
    "generation_v2": (239, "<Q"),
}

_crc32c = crcmod.predefined.mkCrcFun("crc-32c")
_crc32c_reg = crcmod.Crc(0x11EDC6F41, initCrc=0, rev=True, xorOut=0)


def crc32c(data):
    """Standard CRC-32C (check value 0xe3069283 for b"123456789")."""
    return _crc32c(bytes(data))


def crc32c_raw(seed, data):
    """CRC-32C with an explicit register seed and no final inversion
    (Documentation/format.rst 2.2): crc32c(d) == crc32c_raw(0xFFFFFFFF, d) ^ 0xFFFFFFFF."""
    crc = _crc32c_reg.copy()        # the table is built once, at import
    crc.crcValue = seed & 0xFFFFFFFF
    crc.update(bytes(data))
    return crc.crcValue


def name_hash(name):
    """DIR_ITEM / XATTR_ITEM key offset: crc32c_raw((u32)~1, name)."""
    return crc32c_raw(0xFFFFFFFE, name)


def csum_digest(csum_type, data):
    """The csum of data as btrfs stores it, CSUM_SIZES[csum_type] bytes."""
    data = bytes(data)
    if csum_type == CSUM_CRC32C:
        return struct.pack("<I", crc32c(data))
    if csum_type == CSUM_XXHASH:
        return struct.pack("<Q", xxhash.xxh64(data, seed=0).intdigest())
    if csum_type == CSUM_SHA256:
        return hashlib.sha256(data).digest()
    if csum_type == CSUM_BLAKE2:
        return hashlib.blake2b(data, digest_size=32).digest()
    raise ValueError("unknown csum type %r" % csum_type)


def csum(csum_type, data):
    """The 32-byte csum field of a header or superblock (digest, zero-padded)."""
    return csum_digest(csum_type, data).ljust(32, b"\0")


def get(buf, off, fmt):
    v = struct.unpack_from(fmt, buf, off)[0]
    return v


def put(buf, off, fmt, value):
    struct.pack_into(fmt, buf, off, value)


Key = namedtuple("Key", "objectid type offset")
Item = namedtuple("Item", "slot key offset size")          # leaf item header
Ptr = namedtuple("Ptr", "slot key blockptr generation")     # node key pointer
Stripe = namedtuple("Stripe", "devid offset")


def unpack_key(buf, off):
    return Key(*struct.unpack_from("<QBQ", buf, off))


def pack_key(buf, off, key):
    struct.pack_into("<QBQ", buf, off, *key)


class Chunk:
    """One chunk: logical range, type flags, stripes; where its item lives."""

    def __init__(self, logical, length, ctype, stripes, where=None):
        self.logical, self.length, self.type = logical, length, ctype
        self.stripes = stripes
        self.where = where      # ("sys", array offset) or ("tree", leaf logical, slot)

    def __repr__(self):
        return "Chunk(%d+%d type=%#x stripes=%r)" % (self.logical, self.length,
                                                      self.type, self.stripes)


def parse_chunk(buf, off):
    length, owner, stripe_len, ctype = struct.unpack_from("<QQQQ", buf, off)
    num = get(buf, off + 44, "<H")
    stripes = []
    for i in range(num):
        devid, soff = struct.unpack_from("<QQ", buf, off + CHUNK_SIZE + i * STRIPE_SIZE)
        stripes.append(Stripe(devid, soff))
    return length, ctype, stripes


class Block:
    """A tree block as read from the image, with where it was reached from."""

    def __init__(self, image, logical, data, tree, parent=None, parent_slot=None):
        self.image, self.logical, self.tree = image, logical, tree
        self.data = bytearray(data)
        self.parent, self.parent_slot = parent, parent_slot
        self.depth = 0 if parent is None else parent.depth + 1

    def hdr(self, name):
        off, fmt = HEADER_FIELDS[name]
        return get(self.data, off, fmt)

    @property
    def level(self):
        return self.hdr("level")

    @property
    def nritems(self):
        return self.hdr("nritems")

    @property
    def generation(self):
        return self.hdr("generation")

    def items(self):
        assert self.level == 0
        out = []
        for i in range(self.nritems):
            o = HEADER_SIZE + i * ITEM_SIZE
            out.append(Item(i, unpack_key(self.data, o), get(self.data, o + 17, "<I"),
                            get(self.data, o + 21, "<I")))
        return out

    def ptrs(self):
        assert self.level > 0
        out = []
        for i in range(self.nritems):
            o = HEADER_SIZE + i * KEY_PTR_SIZE
            out.append(Ptr(i, unpack_key(self.data, o), get(self.data, o + 17, "<Q"),
                           get(self.data, o + 25, "<Q")))
        return out

    def item_data_offset(self, item):
        """Offset inside the block of the item's data."""
        return HEADER_SIZE + item.offset

    def item_data(self, item):
        o = self.item_data_offset(item)
        return bytes(self.data[o:o + item.size])

    def first_key(self):
        o = HEADER_SIZE
        return unpack_key(self.data, o)

    def __repr__(self):
        return "Block(%d tree=%d level=%d nritems=%d)" % (
            self.logical, self.tree, self.level, self.nritems)


class Image:
    """A btrfs image file: superblock, chunk map, tree walking, patching."""

    def __init__(self, path, writable=False):
        self.path = str(path)
        self.f = open(self.path, "r+b" if writable else "rb")
        self.size = os.fstat(self.f.fileno()).st_size
        self.sb = bytearray(self.pread(SUPER_OFFSET, SUPER_SIZE))
        if self.super("magic") != MAGIC:
            raise ValueError("%s: no btrfs magic" % path)
        self.csum_type = self.super("csum_type")
        self.nodesize = self.super("nodesize")
        self.sectorsize = self.super("sectorsize")
        self.fsid = self.super("fsid")
        self.chunks = []
        self._load_sys_chunks()
        self._load_chunk_tree()

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Raw I/O ------------------------------------------------------------
    def pread(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def pwrite(self, off, data):
        self.f.seek(off)
        self.f.write(bytes(data))
        self.f.flush()

    # Superblock ----------------------------------------------------------
    def super(self, name, buf=None):
        off, fmt = SUPER_FIELDS[name]
        return get(self.sb if buf is None else buf, off, fmt)

    def mirrors(self):
        """Byte offsets of the superblock copies that fit in the image."""
        return [m for m in SUPER_MIRRORS if m + SUPER_SIZE <= self.size]

    def write_super(self, buf, mirror=0, recsum=True, csum_type=None):
        """Write a 4 KiB superblock buffer to copy `mirror` (csum recomputed)."""
        buf = bytearray(buf)
        if recsum:
            ct = self.csum_type if csum_type is None else csum_type
            buf[0:32] = csum(ct, buf[0x20:SUPER_SIZE])
        self.pwrite(SUPER_MIRRORS[mirror], buf)

    def read_super(self, mirror=0):
        return bytearray(self.pread(SUPER_MIRRORS[mirror], SUPER_SIZE))

    # Chunk map -----------------------------------------------------------
    def _load_sys_chunks(self):
        size = self.super("sys_chunk_array_size")
        arr = self.sb[SYS_CHUNK_ARRAY_OFFSET:SYS_CHUNK_ARRAY_OFFSET + size]
        off = 0
        while off < size:
            key = unpack_key(arr, off)
            length, ctype, stripes = parse_chunk(arr, off + KEY_SIZE)
            self.chunks.append(Chunk(key.offset, length, ctype, stripes,
                                     where=("sys", off)))
            off += KEY_SIZE + CHUNK_SIZE + len(stripes) * STRIPE_SIZE

    def _load_chunk_tree(self):
        sys_chunks = list(self.chunks)
        seen = {c.logical for c in sys_chunks}
        for blk in self.walk(self.super("chunk_root"), CHUNK_TREE):
            if blk.level:
                continue
            for it in blk.items():
                if it.key.type != CHUNK_ITEM:
                    continue
                length, ctype, stripes = parse_chunk(blk.data, blk.item_data_offset(it))
                c = Chunk(it.key.offset, length, ctype, stripes,
                          where=("tree", blk.logical, it.slot))
                if it.key.offset in seen:
                    for s in sys_chunks:
                        if s.logical == it.key.offset:
                            s.tree_where = c.where
                    continue
                seen.add(it.key.offset)
                self.chunks.append(c)
        self.chunks.sort(key=lambda c: c.logical)

    def chunk_of(self, logical):
        for c in self.chunks:
            if c.logical <= logical < c.logical + c.length:
                return c
        return None

    def phys(self, logical):
        """All physical offsets of a logical address (SINGLE/DUP: every stripe)."""
        c = self.chunk_of(logical)
        if c is None:
            raise KeyError("logical %d not mapped" % logical)
        return [s.offset + logical - c.logical for s in c.stripes]

    def read_logical(self, logical, n):
        return self.pread(self.phys(logical)[0], n)

    def write_logical(self, logical, data, copies=None):
        """Write data at logical on every copy (or only the listed copy indexes)."""
        for i, p in enumerate(self.phys(logical)):
            if copies is None or i in copies:
                self.pwrite(p, data)

    # Tree blocks ---------------------------------------------------------
    def read_block(self, logical, tree=0, parent=None, parent_slot=None):
        return Block(self, logical, self.read_logical(logical, self.nodesize), tree,
                     parent, parent_slot)

    def block_csum(self, data):
        return csum(self.csum_type, data[0x20:self.nodesize])

    def write_block(self, blk, recsum=True, copies=None):
        """Write a (modified) block back to all its copies, csum recomputed."""
        if recsum:
            blk.data[0:32] = self.block_csum(blk.data)
        self.write_logical(blk.logical, blk.data, copies)

    def walk(self, root_logical, tree):
        """All blocks of a tree, parents before children (pre-order)."""
        out = []
        stack = [self.read_block(root_logical, tree)]
        while stack:
            blk = stack.pop()
            out.append(blk)
            if blk.level > 0:
                for p in reversed(blk.ptrs()):
                    stack.append(self.read_block(p.blockptr, tree, blk, p.slot))
        return out

    def root_items(self):
        """Tree id -> (root-tree leaf Block, Item) for every ROOT_ITEM."""
        out = {}
        for blk in self.walk(self.super("root"), ROOT_TREE):
            if blk.level:
                continue
            for it in blk.items():
                if it.key.type == ROOT_ITEM:
                    out[it.key.objectid] = (blk, it)
        return out

    def tree_roots(self):
        """Tree id -> (root logical, level) for the root, chunk and all other trees."""
        roots = {ROOT_TREE: (self.super("root"), self.super("root_level")),
                 CHUNK_TREE: (self.super("chunk_root"), self.super("chunk_root_level"))}
        for tid, (blk, it) in self.root_items().items():
            o = blk.item_data_offset(it)
            roots[tid] = (get(blk.data, o + 176, "<Q"), get(blk.data, o + 238, "B"))
        return roots

    def all_trees(self):
        """Tree id -> list of blocks (pre-order) for every reachable tree."""
        return {tid: self.walk(root, tid) for tid, (root, _lvl) in self.tree_roots().items()}


def fix_super_csum(path, mirror=0, csum_type=None):
    """Recompute the csum of one superblock copy in place."""
    with open(path, "r+b") as f:
        off = SUPER_MIRRORS[mirror]
        f.seek(off)
        buf = bytearray(f.read(SUPER_SIZE))
        ct = get(buf, 0xc4, "<H") if csum_type is None else csum_type
        buf[0:32] = csum(ct, buf[0x20:SUPER_SIZE])
        f.seek(off)
        f.write(buf)

"""Structure-aware mutations of a btrfs image, checksums recomputed.

A Seed is parsed once from a pristine image: every tree block of every tree
(with its physical copies), the superblock copies and the sys chunk array.
Seed.mutate(rng) returns a Mutation: a description (JSON-able, with the
class used by the differential allowlist) and the patches, a list of
(physical offset, bytes), that turn a copy of the seed into the mutant.
Every changed tree block gets its checksum recomputed and is written to all
its copies (DUP metadata has two); a changed superblock is written to every
mirror that fits in the image, each with its own bytenr and checksum.

Classes are "tree/item type/field" (for example "chunk/CHUNK_ITEM/stripe_len",
"fs/DIR_INDEX/op.extend", "extent/header/owner", "super/num_devices"), so an
allowlist entry covers every mutant of one kind whatever the seed.
"""

import struct

from .ondisk import bo

TREE_NAMES = {
    bo.ROOT_TREE: "root", bo.EXTENT_TREE: "extent", bo.CHUNK_TREE: "chunk",
    bo.DEV_TREE: "dev", bo.FS_TREE: "fs", bo.CSUM_TREE: "csum", 8: "quota",
    bo.UUID_TREE: "uuid", bo.FREE_SPACE_TREE: "free-space",
    bo.BLOCK_GROUP_TREE: "block-group", bo.DATA_RELOC_TREE: "data-reloc",
}

TYPE_NAMES = {
    1: "INODE_ITEM", 12: "INODE_REF", 13: "INODE_EXTREF", 24: "XATTR_ITEM",
    41: "FSCRYPT_INODE_CTX", 42: "FSCRYPT_CTX", 48: "ORPHAN", 84: "DIR_ITEM",
    96: "DIR_INDEX", 108: "EXTENT_DATA", 128: "EXTENT_CSUM", 132: "ROOT_ITEM",
    144: "ROOT_BACKREF", 156: "ROOT_REF", 168: "EXTENT_ITEM", 169: "METADATA_ITEM",
    176: "TREE_BLOCK_REF", 178: "EXTENT_DATA_REF", 182: "SHARED_BLOCK_REF",
    184: "SHARED_DATA_REF", 192: "BLOCK_GROUP_ITEM", 198: "FREE_SPACE_INFO",
    199: "FREE_SPACE_EXTENT", 200: "FREE_SPACE_BITMAP", 204: "DEV_EXTENT",
    216: "DEV_ITEM", 228: "CHUNK_ITEM", 249: "PERSISTENT_ITEM", 251: "UUID_SUBVOL",
    252: "UUID_RECEIVED",
}

FMT_BITS = {"B": 8, "<H": 16, "<I": 32, "<Q": 64}

# Fixed-layout bodies: type -> [(field, offset, struct format)].
INODE_FIELDS = [
    ("generation", 0x00, "<Q"), ("transid", 0x08, "<Q"), ("size", 0x10, "<Q"),
    ("nbytes", 0x18, "<Q"), ("block_group", 0x20, "<Q"), ("nlink", 0x28, "<I"),
    ("uid", 0x2c, "<I"), ("gid", 0x30, "<I"), ("mode", 0x34, "<I"), ("rdev", 0x38, "<Q"),
    ("flags", 0x40, "<Q"), ("sequence", 0x48, "<Q"), ("reserved", 0x50, "B"),
    ("atime.sec", 0x70, "<Q"), ("atime.nsec", 0x78, "<I"), ("ctime.nsec", 0x84, "<I"),
    ("mtime.sec", 0x88, "<Q"), ("otime.nsec", 0x9c, "<I"),
]
DIR_FIELDS = [
    ("location.objectid", 0, "<Q"), ("location.type", 8, "B"), ("location.offset", 9, "<Q"),
    ("transid", 17, "<Q"), ("data_len", 25, "<H"), ("name_len", 27, "<H"), ("type", 29, "B"),
]
FILE_EXTENT_HEAD = [
    ("generation", 0, "<Q"), ("ram_bytes", 8, "<Q"), ("compression", 16, "B"),
    ("encryption", 17, "B"), ("other_encoding", 18, "<H"), ("type", 20, "B"),
]
FILE_EXTENT_REG = [
    ("disk_bytenr", 21, "<Q"), ("disk_num_bytes", 29, "<Q"), ("offset", 37, "<Q"),
    ("num_bytes", 45, "<Q"),
]
ROOT_FIELDS = [(k, off, fmt) for k, (off, fmt) in bo.ROOT_ITEM_FIELDS.items()] + [
    ("inode.mode", 0x34, "<I"), ("inode.flags", 0x40, "<Q"), ("inode.size", 0x10, "<Q"),
    ("last_snapshot", 200, "<Q"), ("drop_progress.objectid", 220, "<Q"),
    ("uuid", 247, "B"), ("ctransid", 295, "<Q"), ("otransid", 303, "<Q"),
]
ROOT_REF_FIELDS = [("dirid", 0, "<Q"), ("sequence", 8, "<Q"), ("name_len", 16, "<H"),
                   ("name", 18, "B")]
BODY_FIELDS = {
    1: INODE_FIELDS,
    13: [("parent", 0, "<Q"), ("index", 8, "<Q"), ("name_len", 16, "<H"), ("name", 18, "B")],
    41: [("version", 0, "B"), ("contents_mode", 1, "B"), ("filenames_mode", 2, "B"),
         ("flags", 3, "B"), ("log2_data_unit_size", 4, "B"), ("reserved", 5, "B"),
         ("key_identifier", 8, "B"), ("nonce", 24, "B")],
    42: [("version", 0, "B"), ("mode", 1, "B"), ("key_identifier", 2, "B"), ("nonce", 18, "B")],
    128: [("csum", 0, "B")],
    132: ROOT_FIELDS,
    144: ROOT_REF_FIELDS,
    156: ROOT_REF_FIELDS,
    176: [],
    178: [("root", 0, "<Q"), ("objectid", 8, "<Q"), ("offset", 16, "<Q"), ("count", 24, "<I")],
    182: [],
    184: [("count", 0, "<I")],
    192: [("used", 0, "<Q"), ("chunk_objectid", 8, "<Q"), ("flags", 16, "<Q")],
    198: [("extent_count", 0, "<I"), ("flags", 4, "<I")],
    199: [],
    200: [("bitmap", 0, "B")],
    204: [("chunk_tree", 0, "<Q"), ("chunk_objectid", 8, "<Q"), ("chunk_offset", 16, "<Q"),
          ("length", 24, "<Q"), ("chunk_tree_uuid", 32, "B")],
    216: [("devid", 0, "<Q"), ("total_bytes", 8, "<Q"), ("bytes_used", 16, "<Q"),
          ("io_align", 24, "<I"), ("io_width", 28, "<I"), ("sector_size", 32, "<I"),
          ("type", 36, "<Q"), ("generation", 44, "<Q"), ("start_offset", 52, "<Q"),
          ("dev_group", 60, "<I"), ("seek_speed", 64, "B"), ("bandwidth", 65, "B"),
          ("uuid", 66, "B"), ("fsid", 82, "B")],
    251: [("subvol_id", 0, "<Q")],
}
HEADER_FIELDS = [("bytenr", 0x30, "<Q"), ("flags", 0x38, "<Q"), ("generation", 0x50, "<Q"),
                 ("owner", 0x58, "<Q"), ("nritems", 0x60, "<I"), ("level", 0x64, "B"),
                 ("fsid", 0x20, "B"), ("chunk_tree_uuid", 0x40, "B")]
SUPER_SKIP = {"csum", "magic", "label", "metadata_uuid", "fsid", "dev_item.uuid",
              "dev_item.fsid", "bytenr"}
CHUNK_FIELDS = [(k, off, fmt) for k, (off, fmt) in bo.CHUNK_FIELDS.items()]


def tree_name(tid):
    if tid in TREE_NAMES:
        return TREE_NAMES[tid]
    return "subvol" if 256 <= tid < (1 << 64) - 256 else "tree%d" % tid


def type_name(t):
    return TYPE_NAMES.get(t, "TYPE%d" % t)


def _inline_ref_fields(data, start):
    """Fields of the inline refs of an extent item body starting at start."""
    out = []
    off = start
    while off < len(data):
        rtype = data[off]
        out.append(("iref.type", off, "B"))
        if rtype == 178:                        # EXTENT_DATA_REF, 29 B
            out += [("iref.root", off + 1, "<Q"), ("iref.objectid", off + 9, "<Q"),
                    ("iref.offset", off + 17, "<Q"), ("iref.count", off + 25, "<I")]
            off += 29
        elif rtype == 184:                      # SHARED_DATA_REF, 13 B
            out += [("iref.parent", off + 1, "<Q"), ("iref.count", off + 9, "<I")]
            off += 13
        elif rtype in (176, 182, 172):          # TREE_BLOCK/SHARED_BLOCK/OWNER, 9 B
            out.append(("iref.offset", off + 1, "<Q"))
            off += 9
        else:
            break
    return out


def body_fields(key, data):
    """[(field, offset, fmt)] of one item body, typed by its key type."""
    t, n = key.type, len(data)
    if t in (bo.DIR_ITEM, bo.DIR_INDEX, bo.XATTR_ITEM):
        out = list(DIR_FIELDS)
        if n > 30:
            out.append(("name", 30, "B"))
        if n >= 30:
            nl, dl = struct.unpack_from("<H", data, 27)[0], struct.unpack_from("<H", data, 25)[0]
            if dl and 30 + nl < n:
                out.append(("data", 30 + nl, "B"))
    elif t == bo.INODE_REF:
        out = [("index", 0, "<Q"), ("name_len", 8, "<H")]
        if n > 10:
            out.append(("name", 10, "B"))
    elif t == bo.EXTENT_DATA:
        out = list(FILE_EXTENT_HEAD)
        if n >= 53 and data[20] != 0:
            out += FILE_EXTENT_REG
        elif n > 21:
            out.append(("inline_data", 21, "B"))
    elif t in (bo.EXTENT_ITEM, bo.METADATA_ITEM):
        out = [("refs", 0, "<Q"), ("generation", 8, "<Q"), ("flags", 16, "<Q")]
        start = 24
        if n >= 24 and t == bo.EXTENT_ITEM and struct.unpack_from("<Q", data, 16)[0] & 2:
            out += [("tree_block_info.key.objectid", 24, "<Q"),
                    ("tree_block_info.level", 41, "B")]
            start = 42
        out += _inline_ref_fields(data, start)
    elif t == bo.CHUNK_ITEM:
        out = list(CHUNK_FIELDS)
        if n >= bo.CHUNK_SIZE:
            nst = struct.unpack_from("<H", data, 44)[0]
            for i in range(nst):
                o = bo.CHUNK_SIZE + i * bo.STRIPE_SIZE
                if o + bo.STRIPE_SIZE <= n:
                    out += [("stripe.devid", o, "<Q"), ("stripe.offset", o + 8, "<Q"),
                            ("stripe.dev_uuid", o + 16, "B")]
    else:
        out = list(BODY_FIELDS.get(t, []))
        if not out and n:
            out = [("byte", 0, "B")]
    return [(f, o, fmt) for f, o, fmt in out if o + struct.calcsize(fmt) <= n]


INTERESTING = (0, 1, 2, 3, 4, 7, 8, 16, 255, 256, 4095, 4096, 4097, 65520, 65536,
               1 << 20, 1 << 30, 1 << 31, 1 << 32)


def new_int(rng, old, bits, sectorsize=4096):
    """A value for an integer field of `bits` bits that differs from old."""
    top = (1 << bits) - 1
    for _ in range(20):
        r = rng.randrange(14)
        if r == 0:
            v = 0
        elif r == 1:
            v = old + 1
        elif r == 2:
            v = old - 1
        elif r == 3:
            v = old ^ (1 << rng.randrange(bits))
        elif r == 4:
            v = top
        elif r == 5:
            v = top - rng.randrange(1, 16)
        elif r == 6:
            v = 1 << (bits - 1)
        elif r == 7:
            v = rng.choice(INTERESTING)
        elif r == 8:
            v = old * 2
        elif r == 9:
            v = old // 2
        elif r == 10:
            v = old + sectorsize * rng.choice((1, -1, 16, -16))
        elif r == 11:
            v = rng.getrandbits(bits)
        elif r == 12:
            v = old + rng.randrange(-8, 9)
        else:
            v = old | (1 << rng.randrange(bits))
        v &= top
        if v != old:
            return v
    return (old + 1) & top


def new_byte_value(rng, old, field):
    if field in ("name", "inline_data"):
        choices = (0, ord("/"), ord("."), 0xff, 0x80, ord("a"), old ^ 1)
    else:
        choices = (0, 1, 2, 0xff, 0x80, old ^ (1 << rng.randrange(8)), rng.randrange(256))
    for _ in range(10):
        v = rng.choice(choices)
        if v != old:
            return v
    return old ^ 1


class SeedBlock:
    def __init__(self, tree, logical, data, phys):
        self.tree, self.logical, self.phys = tree, logical, phys
        self.data = bytes(data)
        self.level = data[0x64]
        self.nritems = struct.unpack_from("<I", data, 0x60)[0]

    def items(self):
        """[(key, item header offset, data offset in block, size)] of a leaf."""
        out = []
        for i in range(self.nritems):
            o = bo.HEADER_SIZE + i * bo.ITEM_SIZE
            key = bo.unpack_key(self.data, o)
            doff, size = struct.unpack_from("<II", self.data, o + 17)
            out.append((key, o, bo.HEADER_SIZE + doff, size))
        return out


class Mutation:
    """What was changed (desc, JSON-able) and the patches that do it."""

    def __init__(self, cls, desc, patches):
        self.cls, self.desc, self.patches = cls, dict(desc, **{"class": cls}), patches

    def apply(self, path):
        with open(path, "r+b") as f:
            for off, data in self.patches:
                f.seek(off)
                f.write(data)


class Seed:
    """A pristine image parsed once; mutate(rng) makes csum-valid mutants."""

    def __init__(self, path, name):
        self.path, self.name = str(path), name
        with bo.Image(self.path) as img:
            self.csum_type, self.nodesize = img.csum_type, img.nodesize
            self.sectorsize = img.sectorsize
            self.size = img.size
            self.blocks = []
            for tid, blocks in sorted(img.all_trees().items()):
                for b in blocks:
                    self.blocks.append(SeedBlock(tid, b.logical, b.data, img.phys(b.logical)))
            self.mirrors = [(m, bytes(img.pread(m, bo.SUPER_SIZE))) for m in img.mirrors()]
            self.sys_array_size = img.super("sys_chunk_array_size")
        self.leaves = [b for b in self.blocks if b.level == 0 and b.nritems]
        self.nodes = [b for b in self.blocks if b.level > 0]
        # Item-weighted leaf choice: trees with many items get more mutants.
        self.leaf_weights = [b.nritems for b in self.leaves]

    # -- writing ---------------------------------------------------------
    def _block_patches(self, blk, data):
        data = bytearray(data)
        data[0:32] = bo.csum(self.csum_type, data[0x20:self.nodesize])
        return [(p, bytes(data)) for p in blk.phys]

    def _super_patches(self, edit):
        """edit(buf) changes a superblock buffer in place; all mirrors."""
        out = []
        for off, raw in self.mirrors:
            buf = bytearray(raw)
            edit(buf)
            buf[0:32] = bo.csum(self.csum_type, buf[0x20:bo.SUPER_SIZE])
            out.append((off, bytes(buf)))
        return out

    # -- mutation kinds ----------------------------------------------------
    def mutate(self, rng):
        kinds = [("body", 40), ("key", 14), ("item", 7), ("leafop", 14), ("header", 8),
                 ("super", 8), ("sysarray", 3)]
        if self.nodes:
            kinds.append(("nodeptr", 6))
        for _ in range(50):
            kind = rng.choices([k for k, _w in kinds], [w for _k, w in kinds])[0]
            m = getattr(self, "_mut_" + kind)(rng)
            if m is not None:
                return m
        raise RuntimeError("no mutation possible on %s" % self.name)

    def _pick_leaf_item(self, rng):
        blk = rng.choices(self.leaves, self.leaf_weights)[0]
        items = blk.items()
        slot = rng.randrange(len(items))
        return blk, items, slot

    def _where(self, blk, slot=None, key=None):
        d = {"tree": blk.tree, "block": blk.logical, "level": blk.level}
        if slot is not None:
            d["slot"] = slot
        if key is not None:
            d["key"] = list(key)
        return d

    def _set_int(self, rng, buf, off, fmt, field):
        old = struct.unpack_from(fmt, buf, off)[0]
        if fmt == "B" and field not in ("level", "type", "location.type", "version",
                                        "compression", "encryption", "seek_speed",
                                        "bandwidth", "iref.type", "drop_level",
                                        "contents_mode", "filenames_mode", "mode",
                                        "tree_block_info.level", "log2_data_unit_size"):
            new = new_byte_value(rng, old, field)
        else:
            new = new_int(rng, old, FMT_BITS[fmt], self.sectorsize)
        struct.pack_into(fmt, buf, off, new)
        return old, new

    def _mut_body(self, rng):
        blk, items, slot = self._pick_leaf_item(rng)
        key, _ho, doff, size = items[slot]
        body = blk.data[doff:doff + size]
        fields = body_fields(key, body)
        if not fields:
            return None
        field, off, fmt = rng.choice(fields)
        data = bytearray(blk.data)
        old, new = self._set_int(rng, data, doff + off, fmt, field)
        cls = "%s/%s/%s" % (tree_name(blk.tree), type_name(key.type), field)
        desc = dict(self._where(blk, slot, key), kind="body", field=field,
                    field_offset=off, old=old, new=new)
        return Mutation(cls, desc, self._block_patches(blk, data))

    def _mut_key(self, rng):
        blk, items, slot = self._pick_leaf_item(rng)
        key, ho, _d, _s = items[slot]
        field, off, fmt = rng.choice((("objectid", 0, "<Q"), ("type", 8, "B"),
                                      ("offset", 9, "<Q")))
        data = bytearray(blk.data)
        old = struct.unpack_from(fmt, data, ho + off)[0]
        if field == "type" and rng.random() < 0.6:
            new = rng.choice([t for t in TYPE_NAMES if t != old])
        else:
            new = new_int(rng, old, FMT_BITS[fmt], self.sectorsize)
        struct.pack_into(fmt, data, ho + off, new)
        cls = "%s/%s/key.%s" % (tree_name(blk.tree), type_name(key.type), field)
        desc = dict(self._where(blk, slot, key), kind="key", field=field, old=old, new=new)
        return Mutation(cls, desc, self._block_patches(blk, data))

    def _mut_item(self, rng):
        blk, items, slot = self._pick_leaf_item(rng)
        key, ho, _d, _s = items[slot]
        field, off = rng.choice((("item.offset", 17), ("item.size", 21)))
        data = bytearray(blk.data)
        old = struct.unpack_from("<I", data, ho + off)[0]
        new = new_int(rng, old, 32, 8)
        struct.pack_into("<I", data, ho + off, new)
        cls = "%s/%s/%s" % (tree_name(blk.tree), type_name(key.type), field)
        desc = dict(self._where(blk, slot, key), kind="item", field=field, old=old, new=new)
        return Mutation(cls, desc, self._block_patches(blk, data))

    def _relayout(self, blk, entries):
        """A leaf holding entries [(key, body)] laid out the usual way, or None."""
        data = bytearray(self.nodesize)
        data[:bo.HEADER_SIZE] = blk.data[:bo.HEADER_SIZE]
        end = self.nodesize - bo.HEADER_SIZE
        for i, (key, body) in enumerate(entries):
            end -= len(body)
            if end < (i + 1) * bo.ITEM_SIZE:
                return None
            o = bo.HEADER_SIZE + i * bo.ITEM_SIZE
            bo.pack_key(data, o, key)
            struct.pack_into("<II", data, o + 17, end, len(body))
            data[bo.HEADER_SIZE + end:bo.HEADER_SIZE + end + len(body)] = body
        struct.pack_into("<I", data, 0x60, len(entries))
        return data

    def _mut_leafop(self, rng):
        blk, items, slot = self._pick_leaf_item(rng)
        entries = [(k, blk.data[d:d + s]) for k, _h, d, s in items]
        key = entries[slot][0]
        ops = ["drop", "dupkey", "dupitem", "truncate", "extend"]
        if len(entries) > 1:
            ops.append("swap")
        op = rng.choice(ops)
        desc = dict(self._where(blk, slot, key), kind="leafop", op=op)
        if op == "swap":
            other = slot + 1 if slot + 1 < len(entries) else slot - 1
            entries[slot], entries[other] = entries[other], entries[slot]
            desc["other_slot"] = other
        elif op == "drop":
            del entries[slot]
        elif op == "dupkey":
            other = slot - 1 if slot > 0 else slot + 1
            if other >= len(entries):
                return None
            entries[slot] = (entries[other][0], entries[slot][1])
            desc["other_slot"] = other
        elif op == "dupitem":
            entries.insert(slot, entries[slot])
        elif op == "truncate":
            body = entries[slot][1]
            if not body:
                return None
            cut = rng.choice((1, len(body) // 2 or 1, len(body), rng.randrange(1, len(body) + 1)))
            entries[slot] = (key, body[:len(body) - cut])
            desc["bytes"] = cut
        else:
            add = rng.choice((1, 2, 8, 16, 64, rng.randrange(1, 200)))
            fill = bytes(add) if rng.random() < 0.5 else rng.randbytes(add)
            entries[slot] = (key, entries[slot][1] + fill)
            desc["bytes"] = add
        data = self._relayout(blk, entries)
        if data is None:
            return None
        cls = "%s/%s/op.%s" % (tree_name(blk.tree), type_name(key.type), op)
        return Mutation(cls, desc, self._block_patches(blk, data))

    def _mut_header(self, rng):
        blk = rng.choice(self.blocks)
        field, off, fmt = rng.choice(HEADER_FIELDS)
        data = bytearray(blk.data)
        old, new = self._set_int(rng, data, off, fmt, field)
        if field == "owner" and rng.random() < 0.5:
            new = rng.choice([t for t in TREE_NAMES if t != old] + [256, 257])
            struct.pack_into(fmt, data, off, new)
        cls = "%s/header/%s" % (tree_name(blk.tree), field)
        desc = dict(self._where(blk), kind="header", field=field, old=old, new=new)
        return Mutation(cls, desc, self._block_patches(blk, data))

    def _mut_nodeptr(self, rng):
        blk = rng.choice(self.nodes)
        slot = rng.randrange(blk.nritems)
        o = bo.HEADER_SIZE + slot * bo.KEY_PTR_SIZE
        field, off, fmt = rng.choice((("key.objectid", 0, "<Q"), ("key.type", 8, "B"),
                                      ("key.offset", 9, "<Q"), ("blockptr", 17, "<Q"),
                                      ("generation", 25, "<Q"), ("swap", 0, "")))
        data = bytearray(blk.data)
        desc = dict(self._where(blk, slot), kind="nodeptr", field=field)
        if field == "swap":
            if blk.nritems < 2:
                return None
            other = slot + 1 if slot + 1 < blk.nritems else slot - 1
            p = bo.HEADER_SIZE + other * bo.KEY_PTR_SIZE
            a, b = data[o:o + 33], data[p:p + 33]
            data[o:o + 33], data[p:p + 33] = b, a
            desc["other_slot"] = other
        else:
            if field == "blockptr" and rng.random() < 0.5:
                # Point at another tree block of the image: a plausible lie.
                old = struct.unpack_from(fmt, data, o + off)[0]
                new = rng.choice(self.blocks).logical
                if new == old:
                    return None
                struct.pack_into(fmt, data, o + off, new)
            else:
                old, new = self._set_int(rng, data, o + off, fmt, field)
            desc.update(old=old, new=new)
        cls = "%s/node/%s" % (tree_name(blk.tree), field)
        return Mutation(cls, desc, self._block_patches(blk, data))

    def _mut_super(self, rng):
        names = [n for n in bo.SUPER_FIELDS if n not in SUPER_SKIP]
        field = rng.choice(names)
        off, fmt = bo.SUPER_FIELDS[field]
        if fmt not in FMT_BITS:
            return None
        old = struct.unpack_from(fmt, self.mirrors[0][1], off)[0]
        new = new_int(rng, old, FMT_BITS[fmt], self.sectorsize)

        def edit(buf):
            struct.pack_into(fmt, buf, off, new)
        desc = {"kind": "super", "field": field, "old": old, "new": new}
        return Mutation("super/%s" % field, desc, self._super_patches(edit))

    def _mut_sysarray(self, rng):
        # The sys chunk array: key fields, then the chunk fields and stripes.
        sb = self.mirrors[0][1]
        arr = sb[bo.SYS_CHUNK_ARRAY_OFFSET:bo.SYS_CHUNK_ARRAY_OFFSET + self.sys_array_size]
        fields = [("key.objectid", 0, "<Q"), ("key.type", 8, "B"), ("key.offset", 9, "<Q")]
        fields += [(f, bo.KEY_SIZE + o, fmt) for f, o, fmt in
                   body_fields(bo.Key(256, bo.CHUNK_ITEM, 0), arr[bo.KEY_SIZE:])]
        field, off, fmt = rng.choice(fields)
        tmp = bytearray(arr)
        old, new = self._set_int(rng, tmp, off, fmt, field)

        def edit(buf):
            struct.pack_into(fmt, buf, bo.SYS_CHUNK_ARRAY_OFFSET + off, new)
        desc = {"kind": "sysarray", "field": field, "old": old, "new": new}
        return Mutation("super/sys_chunk_array/%s" % field, desc, self._super_patches(edit))

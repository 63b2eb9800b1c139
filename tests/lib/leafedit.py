"""Leaf editor for the `check` fault suites (no tests in here).

Edits items of a btrfs image in place, with checksums recomputed so that the
checker's semantic rules are reached, not only its csum check: change bytes
of an item, insert an item into a leaf with free space (item data shifted,
offsets fixed), delete an item, replace an item with a different size.
Parent keys are updated when a leaf's first key changes.  Built on the
tests' one image reader, btrfs_ondisk.py (Documentation/format.rst section 2 only).

Also builds "encrypted-looking" images from a plain mkfs image: incompat bit
15, inode flag 0x1000, item 41 and, per extent, encryption 1 plus item 42 --
everything Documentation/format.rst section 5 asks for except real ciphertext, which
`check` cannot see without a key.
"""

import struct

import btrfs_ondisk as bo

FSCRYPT_INODE_CTX, FSCRYPT_CTX = 41, 42
ORPHAN_ITEM = 48
INODE_ENCRYPT = 1 << 12
INCOMPAT_ENCRYPT = 1 << 15
FT_ENCRYPTED = 0x80
KEY_ID = bytes.fromhex("8699c2c53707405da5aba5ae4d8583c0")   # Documentation/format.rst 13.1
FE_SIZE = 53
S_IFMT, S_IFREG, S_IFDIR, S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000


def inode_ctx(nonce, contents=1, filenames=4, flags=2, key_id=KEY_ID):
    """A 40-byte fscrypt_context_v2 (Documentation/format.rst 3.1)."""
    return bytes([2, contents, filenames, flags, 0, 0, 0, 0]) + key_id + nonce


def extent_ctx(nonce, mode=1, key_id=KEY_ID, version=1):
    """A 34-byte fscrypt_extent_context (Documentation/format.rst 5.2)."""
    return bytes([version, mode]) + key_id + nonce


def nonce_for(*parts):
    """A deterministic, distinct 16-byte nonce per (ino, offset, ...)."""
    import hashlib
    return hashlib.sha256(repr(parts).encode()).digest()[:16]


class Editor:
    """In-place item editor of one image file."""

    def __init__(self, path):
        self.path = str(path)
        self.img = bo.Image(self.path, writable=True)

    def close(self):
        self.img.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- reading -----------------------------------------------------------
    def root_of(self, tid):
        return self.img.tree_roots()[tid][0]

    def blocks(self, tid):
        return self.img.walk(self.root_of(tid), tid)

    def leaves(self, tid):
        return [b for b in self.blocks(tid) if b.level == 0]

    def items(self, tid, objectid=None, ktype=None):
        """[(leaf, item)] in key order, optionally filtered."""
        out = []
        for leaf in self.leaves(tid):
            for it in leaf.items():
                if objectid is not None and it.key.objectid != objectid:
                    continue
                if ktype is not None and it.key.type != ktype:
                    continue
                out.append((leaf, it))
        return out

    def find(self, tid, key):
        for leaf, it in self.items(tid, key[0], key[1]):
            if tuple(it.key) == tuple(key):
                return leaf, it
        raise KeyError("item %r not found in tree %d" % (key, tid))

    def data(self, tid, key):
        leaf, it = self.find(tid, key)
        return leaf.item_data(it)

    # --- writing -----------------------------------------------------------
    def write(self, blk):
        self.img.write_block(blk)

    def patch(self, tid, key, off, data):
        """Overwrite bytes of an item's data at off."""
        leaf, it = self.find(tid, key)
        o = leaf.item_data_offset(it) + off
        leaf.data[o:o + len(data)] = data
        self.write(leaf)

    def patch_fmt(self, tid, key, off, fmt, value):
        self.patch(tid, key, off, struct.pack(fmt, value))

    def set_key(self, tid, key, newkey):
        """Change an item's key in place (caller keeps the order valid)."""
        leaf, it = self.find(tid, key)
        bo.pack_key(leaf.data, bo.HEADER_SIZE + it.slot * bo.ITEM_SIZE, newkey)
        self.write(leaf)
        if it.slot == 0:
            self._fix_parent_keys(leaf)

    def _fix_parent_keys(self, blk):
        """After slot 0 of blk changed: propagate its first key upwards."""
        while blk.parent is not None:
            parent = self.img.read_block(blk.parent.logical, blk.tree, blk.parent.parent,
                                         blk.parent.parent_slot)
            o = bo.HEADER_SIZE + blk.parent_slot * bo.KEY_PTR_SIZE
            bo.pack_key(parent.data, o, blk.first_key())
            self.write(parent)
            if blk.parent_slot != 0:
                break
            blk = parent

    def _leaf_for(self, tid, key):
        """The leaf that holds or would hold key (last leaf with first key <= key)."""
        best = None
        for leaf in self.leaves(tid):
            if leaf.nritems and tuple(leaf.first_key()) <= tuple(key):
                best = leaf
        return best or self.leaves(tid)[0]

    def free_space(self, leaf):
        n = leaf.nritems
        if n == 0:
            return self.img.nodesize - bo.HEADER_SIZE
        low = min(it.offset for it in leaf.items())
        return low - n * bo.ITEM_SIZE

    def insert(self, tid, key, data, leaf=None):
        """Insert an item (into leaf: a neighbour of the one _leaf_for()
        picks, with the caller keeping the key order); returns False when
        the leaf has no room."""
        leaf = leaf or self._leaf_for(tid, key)
        items = leaf.items()
        if self.free_space(leaf) < len(data) + bo.ITEM_SIZE:
            return False
        slot = 0
        while slot < len(items) and tuple(items[slot].key) < tuple(key):
            slot += 1
        if slot < len(items) and tuple(items[slot].key) == tuple(key):
            raise ValueError("key %r exists" % (key,))
        end = (items[slot - 1].offset if slot else self.img.nodesize - bo.HEADER_SIZE)
        low = min([it.offset for it in items] + [end])
        d = leaf.data
        size = len(data)
        # Shift the data of items at and after slot down by size.
        H = bo.HEADER_SIZE
        d[H + low - size:H + end - size] = d[H + low:H + end]
        d[H + end - size:H + end] = data
        # Shift item headers after slot by one.
        hs = H + slot * bo.ITEM_SIZE
        he = H + len(items) * bo.ITEM_SIZE
        d[hs + bo.ITEM_SIZE:he + bo.ITEM_SIZE] = d[hs:he]
        bo.pack_key(d, hs, key)
        struct.pack_into("<II", d, hs + 17, end - size, size)
        for i in range(slot + 1, len(items) + 1):
            o = H + i * bo.ITEM_SIZE + 17
            struct.pack_into("<I", d, o, struct.unpack_from("<I", d, o)[0] - size)
        struct.pack_into("<I", d, 0x60, len(items) + 1)
        self.write(leaf)
        if slot == 0:
            self._fix_parent_keys(leaf)
        return True

    def delete(self, tid, key):
        leaf, it = self.find(tid, key)
        items = leaf.items()
        slot, size = it.slot, it.size
        H = bo.HEADER_SIZE
        low = min(x.offset for x in items)
        d = leaf.data
        # Data of later items moves up by size.
        d[H + low + size:H + it.offset + size] = d[H + low:H + it.offset]
        hs = H + slot * bo.ITEM_SIZE
        he = H + len(items) * bo.ITEM_SIZE
        d[hs:he - bo.ITEM_SIZE] = d[hs + bo.ITEM_SIZE:he]
        d[he - bo.ITEM_SIZE:he] = bytes(bo.ITEM_SIZE)
        for i in range(slot, len(items) - 1):
            o = H + i * bo.ITEM_SIZE + 17
            struct.pack_into("<I", d, o, struct.unpack_from("<I", d, o)[0] + size)
        struct.pack_into("<I", d, 0x60, len(items) - 1)
        self.write(leaf)
        if slot == 0 and len(items) > 1:
            self._fix_parent_keys(leaf)

    def make_room(self, tid, key, need):
        """Move items out of key's leaf until it has need bytes free: those
        after key towards the next leaves, else those before it towards the
        previous ones.  False if it cannot (leaves are not split here)."""
        return any(self._push(tid, key, need, d) for d in (1, -1))

    def _push(self, tid, key, need, direction):
        """_make_room one way: the leaf's last items (direction 1) or first
        items (-1), never key's own, to the neighbour, room made there
        first by pushing on the same way."""
        while True:
            leaves = self.leaves(tid)
            leaf = self._leaf_for(tid, key)
            if self.free_space(leaf) >= need:
                return True
            j = [b.logical for b in leaves].index(leaf.logical) + direction
            it = leaf.items()[-1 if direction > 0 else 0]
            if not 0 <= j < len(leaves) or tuple(it.key) == tuple(key) or \
                    (tuple(it.key) > tuple(key)) != (direction > 0):
                return False
            nb, room = leaves[j], it.size + bo.ITEM_SIZE
            if self.free_space(nb) < room:
                edge = nb.first_key() if direction > 0 else nb.items()[-1].key
                if not self._push(tid, tuple(edge), room, direction):
                    return False
                continue
            mkey, mdata = tuple(it.key), leaf.item_data(it)
            self.delete(tid, mkey)
            nb = [b for b in self.leaves(tid) if b.logical == nb.logical][0]
            assert self.insert(tid, mkey, mdata, leaf=nb)

    def replace(self, tid, key, data):
        old = self.data(tid, key)
        self.delete(tid, key)
        if not self.insert(tid, key, data):
            self.insert(tid, key, old)
            return False
        return True

    # --- superblock ------------------------------------------------------------
    def set_incompat(self, bit, on=True):
        for i, _off in enumerate(self.img.mirrors()):
            buf = self.img.read_super(i)
            v = bo.get(buf, 0xbc, "<Q")
            v = (v | bit) if on else (v & ~bit)
            bo.put(buf, 0xbc, "<Q", v)
            self.img.write_super(buf, i)

    # --- fs tree helpers ---------------------------------------------------------
    def lookup(self, path, tid=bo.FS_TREE):
        """Inode number of a path (from the root dir 256) via DIR_INDEX items."""
        ino = 256
        for comp in [c for c in path.split("/") if c]:
            name = comp.encode()
            found = None
            for leaf, it in self.items(tid, ino, bo.DIR_INDEX):
                raw = leaf.item_data(it)
                nlen = struct.unpack_from("<H", raw, 27)[0]
                if raw[30:30 + nlen] == name:
                    found = struct.unpack_from("<Q", raw, 0)[0]
            if found is None:
                raise KeyError(path)
            ino = found
        return ino

    def inode(self, ino, tid=bo.FS_TREE):
        raw = self.data(tid, (ino, bo.INODE_ITEM, 0))
        return {"size": bo.get(raw, 0x10, "<Q"), "nbytes": bo.get(raw, 0x18, "<Q"),
                "nlink": bo.get(raw, 0x28, "<I"), "mode": bo.get(raw, 0x34, "<I"),
                "flags": bo.get(raw, 0x40, "<Q")}

    def set_inode_flags(self, ino, set_bits=0, clear_bits=0, tid=bo.FS_TREE):
        flags = self.inode(ino, tid)["flags"]
        self.patch_fmt(tid, (ino, bo.INODE_ITEM, 0), 0x40, "<Q",
                       (flags | set_bits) & ~clear_bits)

    def extents(self, ino, tid=bo.FS_TREE):
        """[(key, dict)] of the EXTENT_DATA items of ino."""
        out = []
        for leaf, it in self.items(tid, ino, bo.EXTENT_DATA):
            raw = leaf.item_data(it)
            e = {"type": raw[20], "compression": raw[16], "encryption": raw[17],
                 "ram_bytes": bo.get(raw, 8, "<Q"), "size": it.size}
            if raw[20] != 0:
                e.update(disk_bytenr=bo.get(raw, 21, "<Q"), disk_num_bytes=bo.get(raw, 29, "<Q"),
                         offset=bo.get(raw, 37, "<Q"), num_bytes=bo.get(raw, 45, "<Q"))
            out.append((tuple(it.key), e))
        return out

    def dir_entries(self, dir_ino, ktype=bo.DIR_INDEX, tid=bo.FS_TREE):
        """[(key, name, child, type)] of a directory's DIR_INDEX (or DIR_ITEM) items."""
        out = []
        for leaf, it in self.items(tid, dir_ino, ktype):
            raw = leaf.item_data(it)
            nlen = struct.unpack_from("<H", raw, 27)[0]
            out.append((tuple(it.key), raw[30:30 + nlen], struct.unpack_from("<Q", raw, 0)[0],
                        raw[29]))
        return out

    # --- encryption ------------------------------------------------------------------
    def encrypt_inode(self, ino, tid=bo.FS_TREE, nonce=None, with_extents=True):
        """Make ino look encrypted: flag, item 41 and per extent encryption 1 + item 42.

        Returns False (image unchanged as far as possible) when a leaf is full.
        """
        nonce = nonce or nonce_for("inode", tid, ino)
        if not self.insert(tid, (ino, FSCRYPT_INODE_CTX, 0), inode_ctx(nonce)):
            return False
        self.set_inode_flags(ino, set_bits=INODE_ENCRYPT, tid=tid)
        if not with_extents:
            return True
        for key, e in self.extents(ino, tid):
            if e["type"] == 0 or e.get("disk_bytenr", 0) == 0:
                continue
            self.patch(tid, key, 17, b"\x01")
            ok = self.insert(tid, (ino, FSCRYPT_CTX, key[2]),
                             extent_ctx(nonce_for("extent", e["disk_bytenr"])))
            if not ok:
                return False
        return True


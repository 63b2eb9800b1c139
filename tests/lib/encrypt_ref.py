"""Independent reference for the `encrypt`/`decrypt` tests (issue 5).

Written from docs Documentation/format.rst only, for the encrypt/decrypt suites; it shares no
code with the C tool, and its crypto none with fscrypt_ref, so that a
misreading of the spec in one of them is not silently repeated here.

  * crypto (Documentation/format.rst 4, 6, 8, 9): HKDF-SHA512 built from hmac/hashlib,
    AES-256-XTS per sector with IV = le64(DUN) || 0, AES-256-CTS (CBC-CS3)
    built from AES-CBC plus the final-block swap, filename padding;
  * CRC-32C, name_hash and the four btrfs csums: the tests' one copy, from
    btrfs_ondisk (their check values are asserted in test_encrypt.py);
  * a small read-only image reader (Documentation/format.rst 2): superblock, chunk map (from
    the superblock's sys_chunk_array and the chunk tree, or from the text of
    btrfs-progs `dump-tree -t chunk`), tree walks with tree-block checksum
    verification, item decoding for the items the tests need.

Python: Debian's /usr/bin/python3 with python3-cryptography, crcmod, xxhash.
"""

import hashlib
import hmac
import re
import struct
from collections import namedtuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from btrfs_ondisk import crc32c, crc32c_raw, name_hash  # noqa: F401  (re-exported)
from btrfs_ondisk import csum_digest as csum

CSUM_SIZE = {0: 4, 1: 8, 2: 32, 3: 32}
CSUM_NAME = {0: "crc32c", 1: "xxhash", 2: "sha256", 3: "blake2"}


# ---------------------------------------------------------------------------
# HKDF-SHA512 (Documentation/format.rst 4): unsalted extract, info = "fscrypt\0" || ctx || data.

HKDF_PREFIX = b"fscrypt\0"
CTX_KEY_IDENTIFIER = 1
CTX_PER_FILE = 2
CTX_PER_EXTENT = 9


def hkdf_extract(master):
    return hmac.new(b"\0" * 64, master, hashlib.sha512).digest()


def hkdf_expand(prk, info, length):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha512).digest()
        out += t
        i += 1
    return out[:length]


def derive(master, ctx_byte, data, length):
    return hkdf_expand(hkdf_extract(master), HKDF_PREFIX + bytes([ctx_byte]) + data, length)


def key_identifier(master):
    return derive(master, CTX_KEY_IDENTIFIER, b"", 16)


def per_file_key(master, nonce, length=32):
    """Directory / symlink key (AES-256-CTS: 32 bytes)."""
    return derive(master, CTX_PER_FILE, nonce, length)


def extent_key(master, nonce, length=64):
    """Per-extent key, context byte 9 (v6/v7); 64 bytes for AES-256-XTS."""
    return derive(master, CTX_PER_EXTENT, nonce, length)


class KeyCache:
    """Memoised key derivation for one master key."""

    def __init__(self, master):
        self.master = master
        self.prk = hkdf_extract(master)
        self.id = hkdf_expand(self.prk, HKDF_PREFIX + b"\x01", 16)
        self._ext, self._file = {}, {}

    def extent(self, nonce):
        k = self._ext.get(nonce)
        if k is None:
            k = self._ext[nonce] = hkdf_expand(self.prk, HKDF_PREFIX + b"\x09" + nonce, 64)
        return k

    def file(self, nonce):
        k = self._file.get(nonce)
        if k is None:
            k = self._file[nonce] = hkdf_expand(self.prk, HKDF_PREFIX + b"\x02" + nonce, 32)
        return k


# ---------------------------------------------------------------------------
# Data: AES-256-XTS per sector, DUN counted from the start of the disk extent.

def _xts_tweak(dun):
    return struct.pack("<Q", dun) + b"\0" * 8


def xts_encrypt(key64, data, sectorsize=4096, first_dun=0):
    assert len(key64) == 64 and len(data) % sectorsize == 0
    out = bytearray()
    for i in range(0, len(data), sectorsize):
        enc = Cipher(algorithms.AES(key64), modes.XTS(_xts_tweak(first_dun + i // sectorsize))).encryptor()
        out += enc.update(data[i:i + sectorsize]) + enc.finalize()
    return bytes(out)


def xts_decrypt(key64, data, sectorsize=4096, first_dun=0):
    assert len(key64) == 64 and len(data) % sectorsize == 0
    out = bytearray()
    for i in range(0, len(data), sectorsize):
        dec = Cipher(algorithms.AES(key64), modes.XTS(_xts_tweak(first_dun + i // sectorsize))).decryptor()
        out += dec.update(data[i:i + sectorsize]) + dec.finalize()
    return bytes(out)


# ---------------------------------------------------------------------------
# Names and symlink targets: zero padding + AES-256-CBC-CS3, all-zero IV.

PAD_BYTES = {0: 4, 1: 8, 2: 16, 3: 32}
NAME_MAX = 255


def padded_len(n, flags, max_len=NAME_MAX):
    pad = PAD_BYTES[flags & 3]
    m = max(n, 16)
    return min((m + pad - 1) // pad * pad, max_len)


def _cbc(key, data, encrypt):
    c = Cipher(algorithms.AES(key), modes.CBC(b"\0" * 16))
    ctx = c.encryptor() if encrypt else c.decryptor()
    return ctx.update(data) + ctx.finalize()


def _ecb_dec(key, block):
    d = Cipher(algorithms.AES(key), modes.ECB()).decryptor()
    return d.update(block) + d.finalize()


def cts_encrypt(key, pt):
    """CBC-CS3 (Linux cts(cbc(aes))) with a zero IV; len(pt) >= 16."""
    n = len(pt)
    assert n >= 16
    if n == 16:
        return _cbc(key, pt, True)
    nblocks = (n + 15) // 16
    d = n - 16 * (nblocks - 1)               # bytes in the last block, 1..16
    c = _cbc(key, pt + b"\0" * (16 * nblocks - n), True)
    head = c[:16 * (nblocks - 2)]
    c_prev, c_last = c[16 * (nblocks - 2):16 * (nblocks - 1)], c[16 * (nblocks - 1):]
    return head + c_last + c_prev[:d]        # last two blocks swapped, always


def cts_decrypt(key, ct):
    n = len(ct)
    assert n >= 16
    if n == 16:
        return _cbc(key, ct, False)
    nblocks = (n + 15) // 16
    d = n - 16 * (nblocks - 1)
    head = ct[:16 * (nblocks - 2)]
    c_last = ct[16 * (nblocks - 2):16 * (nblocks - 1)]     # stored first: full block Cn
    c_prev_part = ct[16 * (nblocks - 1):]                  # first d bytes of C(n-1)
    x = _ecb_dec(key, c_last)                              # = C(n-1) xor Pn||0
    c_prev = c_prev_part + x[d:]
    p_last = bytes(a ^ b for a, b in zip(x[:d], c_prev[:d]))
    # Plain CBC decryption of head || C(n-1) gives P1..P(n-1).
    p_head = _cbc(key, head + c_prev, False)
    return p_head + p_last


def encrypt_name(dir_key, name, flags=3, max_len=NAME_MAX):
    L = padded_len(len(name), flags, max_len)
    assert len(name) <= L
    return cts_encrypt(dir_key, name + b"\0" * (L - len(name)))


def decrypt_name(dir_key, ct):
    """Returns (name, padding) where padding is the zero tail removed."""
    pt = cts_decrypt(dir_key, ct)
    name = pt.rstrip(b"\0")
    return name, pt[len(name):]


def symlink_payload(link_key, target, flags=3, max_len=None):
    """{le16 len; ct} as stored in the inline extent (Documentation/format.rst 9)."""
    if max_len is None:
        max_len = 4096
    ct = encrypt_name(link_key, target, flags, max_len=max_len)
    return struct.pack("<H", len(ct)) + ct


# ---------------------------------------------------------------------------
# Contexts (Documentation/format.rst 3.1, 5.2).

InodeCtx = namedtuple("InodeCtx", "version contents filenames flags log2_dus reserved key_id nonce")
ExtentCtx = namedtuple("ExtentCtx", "version mode key_id nonce")


def parse_inode_ctx(data):
    assert len(data) == 40, "inode context of %d bytes" % len(data)
    return InodeCtx(data[0], data[1], data[2], data[3], data[4], data[5:8], data[8:24], data[24:40])


def parse_extent_ctx(data):
    assert 34 <= len(data) <= 40, "extent context of %d bytes" % len(data)
    return ExtentCtx(data[0], data[1], data[2:18], data[18:34])


# ---------------------------------------------------------------------------
# Image reader (Documentation/format.rst 2).

SUPER = 0x10000
SUPER_MIRRORS = (0x10000, 0x4000000, 0x4000000000)
HDR = 101
INODE_ITEM, INODE_REF, INODE_EXTREF, XATTR_ITEM = 1, 12, 13, 24
FSCRYPT_INODE_CTX, FSCRYPT_CTX = 41, 42
DIR_ITEM, DIR_INDEX, EXTENT_DATA, EXTENT_CSUM = 84, 96, 108, 128
ROOT_ITEM, ROOT_BACKREF, ROOT_REF = 132, 144, 156
EXTENT_ITEM, METADATA_ITEM, CHUNK_ITEM = 168, 169, 228
ROOT_TREE, EXTENT_TREE, CHUNK_TREE, FS_TREE, CSUM_TREE = 1, 2, 3, 5, 7
FIRST_FREE = 256
LAST_FREE = (1 << 64) - 256
INODE_FLAG_ENCRYPT = 1 << 12
INCOMPAT_ENCRYPT = 1 << 15
FT_ENCRYPTED = 0x80
FT_REG, FT_DIR, FT_SYMLINK = 1, 2, 7

Inode = namedtuple("Inode", "generation transid size nbytes nlink uid gid mode rdev flags")
FileExtent = namedtuple("FileExtent",
                        "generation ram_bytes compression encryption type "
                        "disk_bytenr disk_num_bytes offset num_bytes inline")
DirEntry = namedtuple("DirEntry", "location transid data_len type name data")


def parse_inode(d):
    gen, transid, size, nbytes, _bg, nlink, uid, gid, mode, rdev, flags = \
        struct.unpack_from("<QQQQQIIIIQQ", d, 0)
    return Inode(gen, transid, size, nbytes, nlink, uid, gid, mode, rdev, flags)


def parse_file_extent(d):
    gen, ram, comp, enc, other, typ = struct.unpack_from("<QQBBHB", d, 0)
    if typ == 0:
        return FileExtent(gen, ram, comp, enc, typ, None, None, None, None, bytes(d[21:]))
    bytenr, dnum, off, num = struct.unpack_from("<QQQQ", d, 21)
    return FileExtent(gen, ram, comp, enc, typ, bytenr, dnum, off, num, None)


def parse_dir_entries(d):
    """All entries of a DIR_ITEM / DIR_INDEX / XATTR_ITEM item."""
    out, pos = [], 0
    while pos < len(d):
        oid, typ, off = struct.unpack_from("<QBQ", d, pos)
        transid, data_len, name_len, ftype = struct.unpack_from("<QHHB", d, pos + 17)
        name = bytes(d[pos + 30:pos + 30 + name_len])
        data = bytes(d[pos + 30 + name_len:pos + 30 + name_len + data_len])
        out.append(DirEntry((oid, typ, off), transid, data_len, ftype, name, data))
        pos += 30 + name_len + data_len
    return out


def parse_inode_refs(d):
    """INODE_REF body: [(index, name)]."""
    out, pos = [], 0
    while pos < len(d):
        index, nlen = struct.unpack_from("<QH", d, pos)
        out.append((index, bytes(d[pos + 10:pos + 10 + nlen])))
        pos += 10 + nlen
    return out


def parse_inode_extrefs(d):
    """INODE_EXTREF body: [(parent, index, name)]."""
    out, pos = [], 0
    while pos < len(d):
        parent, index, nlen = struct.unpack_from("<QQH", d, pos)
        out.append((parent, index, bytes(d[pos + 18:pos + 18 + nlen])))
        pos += 18 + nlen
    return out


def parse_root_ref(d):
    dirid, seq, nlen = struct.unpack_from("<QQH", d, 0)
    return dirid, seq, bytes(d[18:18 + nlen])


Chunk = namedtuple("Chunk", "logical length type physical")   # physical: stripe offsets


def chunks_from_progs_text(text):
    """Chunk map from btrfs-progs `inspect-internal dump-tree -t chunk` text."""
    chunks = []
    cur = None
    for line in text.splitlines():
        m = re.search(r"key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)", line)
        if m:
            cur = [int(m.group(1)), None, None, []]
            chunks.append(cur)
            continue
        if cur is None:
            continue
        m = re.match(r"\s+length (\d+) owner \d+ stripe_len \d+ type (\S+)", line)
        if m:
            cur[1], cur[2] = int(m.group(1)), m.group(2)
            continue
        m = re.match(r"\s+stripe \d+ devid \d+ offset (\d+)", line)
        if m:
            cur[3].append(int(m.group(1)))
    return sorted(Chunk(c[0], c[1], c[2], tuple(c[3])) for c in chunks)


class ImageReader:
    """Read-only access to a single-device SINGLE/DUP btrfs image."""

    def __init__(self, path, chunks=None, verify=True):
        self.path = str(path)
        self.f = open(self.path, "rb")
        self.verify = verify
        sb = self.pread(SUPER, 4096)
        if sb[0x40:0x48] != b"_BHRfS_M":
            raise ValueError("%s: no btrfs superblock" % path)
        self.sb = sb
        (self.generation, self.root, self.chunk_root, self.log_root) = struct.unpack_from("<QQQQ", sb, 0x48)
        self.sectorsize, self.nodesize = struct.unpack_from("<II", sb, 0x90)
        self.sys_array_size, = struct.unpack_from("<I", sb, 0xa0)
        self.compat_ro, self.incompat = struct.unpack_from("<QQ", sb, 0xb4)
        self.csum_type, = struct.unpack_from("<H", sb, 0xc4)
        self.root_level, self.chunk_root_level = sb[0xc6], sb[0xc7]
        self.csum_size = CSUM_SIZE[self.csum_type]
        self.fsid = sb[0x20:0x30]
        self._chunks = []
        self._load_sys_chunks()
        if chunks is not None:
            self._chunks = sorted(chunks)
        else:
            self._chunks = sorted(self._read_chunk_tree())

    # raw I/O
    def pread(self, off, n):
        self.f.seek(off)
        b = self.f.read(n)
        if len(b) < n:
            b += b"\0" * (n - len(b))
        return b

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    @property
    def chunks(self):
        return list(self._chunks)

    def _load_sys_chunks(self):
        arr = self.sb[0x32b:0x32b + self.sys_array_size]
        pos = 0
        while pos < len(arr):
            _oid, _t, logical = struct.unpack_from("<QBQ", arr, pos)
            pos += 17
            length, _own, _sl, ctype = struct.unpack_from("<QQQQ", arr, pos)
            nst, = struct.unpack_from("<H", arr, pos + 44)
            stripes = tuple(struct.unpack_from("<Q", arr, pos + 48 + 32 * i + 8)[0] for i in range(nst))
            self._chunks.append(Chunk(logical, length, ctype, stripes))
            pos += 48 + 32 * nst

    def _read_chunk_tree(self):
        out = []
        for key, data in self.walk(self.chunk_root, tree=CHUNK_TREE):
            if key[1] == CHUNK_ITEM:
                length, _own, _sl, ctype = struct.unpack_from("<QQQQ", data, 0)
                nst, = struct.unpack_from("<H", data, 44)
                stripes = tuple(struct.unpack_from("<Q", data, 48 + 32 * i + 8)[0] for i in range(nst))
                out.append(Chunk(key[2], length, ctype, stripes))
        return out

    def chunk_of(self, logical):
        for c in self._chunks:
            if c.logical <= logical < c.logical + c.length:
                return c
        raise KeyError("logical %d is in no chunk" % logical)

    def physical(self, logical, stripe=0):
        c = self.chunk_of(logical)
        return c.physical[stripe] + (logical - c.logical)

    def read_logical(self, logical, n):
        out = bytearray()
        while n:
            c = self.chunk_of(logical)
            k = min(n, c.logical + c.length - logical)
            out += self.pread(c.physical[0] + logical - c.logical, k)
            logical += k
            n -= k
        return bytes(out)

    # trees
    def read_block(self, logical):
        b = self.read_logical(logical, self.nodesize)
        if self.verify:
            want = csum(self.csum_type, b[0x20:])
            if b[:len(want)] != want:
                raise ValueError("tree block %d: bad checksum" % logical)
            own, = struct.unpack_from("<Q", b, 0x30)
            if own != logical:
                raise ValueError("tree block %d: header bytenr %d" % (logical, own))
        return b

    def walk(self, root_logical, tree=None):
        """Yield (key, data) of every leaf item, in key order."""
        stack = [root_logical]
        while stack:
            b = self.read_block(stack.pop())
            nritems, = struct.unpack_from("<I", b, 0x60)
            level = b[0x64]
            if level:
                ptrs = [struct.unpack_from("<Q", b, HDR + 33 * i + 17)[0] for i in range(nritems)]
                stack.extend(reversed(ptrs))
                continue
            for i in range(nritems):
                oid, typ, off, doff, dsize = struct.unpack_from("<QBQII", b, HDR + 25 * i)
                yield (oid, typ, off), b[HDR + doff:HDR + doff + dsize]

    def root_items(self):
        """{tree id: (bytenr, level, flags, raw root item)} from the root tree."""
        out = {}
        for key, data in self.walk(self.root, tree=ROOT_TREE):
            if key[1] == ROOT_ITEM:
                bytenr, = struct.unpack_from("<Q", data, 176)
                flags, = struct.unpack_from("<Q", data, 208)
                out[key[0]] = (bytenr, data[238], flags, data)
        return out

    def root_tree_items(self):
        return list(self.walk(self.root, tree=ROOT_TREE))

    def fs_tree_ids(self):
        return sorted(t for t in self.root_items() if t == FS_TREE or FIRST_FREE <= t < LAST_FREE)

    def tree_items(self, tree_id):
        bytenr = self.root_items()[tree_id][0]
        return list(self.walk(bytenr, tree=tree_id))

    def csums(self):
        """{logical sector address: csum bytes} of the csum tree."""
        out = {}
        bytenr = self.root_items()[CSUM_TREE][0]
        cs = self.csum_size
        for key, data in self.walk(bytenr, tree=CSUM_TREE):
            if key[1] != EXTENT_CSUM:
                continue
            for i in range(len(data) // cs):
                out[key[2] + i * self.sectorsize] = bytes(data[i * cs:(i + 1) * cs])
        return out


class FsTree:
    """The items of one fs tree, grouped per inode."""

    def __init__(self, items):
        self.items = items
        self.by_ino = {}
        for key, data in items:
            self.by_ino.setdefault(key[0], []).append((key, data))

    def inode(self, ino):
        for key, data in self.by_ino.get(ino, ()):
            if key[1] == INODE_ITEM:
                return parse_inode(data)
        return None

    def get(self, ino, typ):
        return [(k, d) for k, d in self.by_ino.get(ino, ()) if k[1] == typ]

    def one(self, ino, typ, off=0):
        for k, d in self.by_ino.get(ino, ()):
            if k[1] == typ and k[2] == off:
                return d
        return None

    def inodes(self):
        return sorted(ino for ino in self.by_ino if self.inode(ino) is not None)

    def extents(self, ino):
        return [(k[2], parse_file_extent(d)) for k, d in self.get(ino, EXTENT_DATA)]

    def dir_index(self, ino):
        out = {}
        for k, d in self.get(ino, DIR_INDEX):
            (e,) = parse_dir_entries(d)
            out[k[2]] = e
        return out

    def dir_items(self, ino):
        return {k[2]: parse_dir_entries(d) for k, d in self.get(ino, DIR_ITEM)}

    def inode_ctx(self, ino):
        d = self.one(ino, FSCRYPT_INODE_CTX, 0)
        return None if d is None else bytes(d)

    def extent_ctxs(self, ino):
        return {k[2]: bytes(d) for k, d in self.get(ino, FSCRYPT_CTX)}


def file_plain_bytes(img, fs, ino):
    """The contents of a plain, uncompressed file read straight from its
    extents (holes and prealloc read as zeros); None when a compressed or an
    encrypted extent is met."""
    node = fs.inode(ino)
    size = node.size
    out = bytearray(size)
    for k, fe in fs.extents(ino):
        if fe.encryption:
            return None
        if fe.type == 0:
            if fe.compression:
                return None
            data = fe.inline[:max(0, min(len(fe.inline), size - k))]
            out[k:k + len(data)] = data
            continue
        if fe.disk_bytenr == 0 or fe.type == 2:
            continue
        if fe.compression:
            return None
        n = max(0, min(fe.num_bytes, size - k))
        if n:
            out[k:k + n] = img.read_logical(fe.disk_bytenr + fe.offset, n)
    return bytes(out)


def file_decrypted_bytes(img, fs, ino, keys):
    """Contents of an encrypted, uncompressed regular file, decrypted with
    this module's own crypto (keys: KeyCache); None on a compressed extent."""
    node = fs.inode(ino)
    size = node.size
    out = bytearray(size)
    ctxs = fs.extent_ctxs(ino)
    ss = img.sectorsize
    for k, fe in fs.extents(ino):
        if fe.type == 0:
            return None
        if fe.disk_bytenr == 0 or fe.type == 2:
            continue
        if fe.compression:
            return None
        n = max(0, min(fe.num_bytes, size - k))
        if not n:
            continue
        if fe.encryption:
            ec = parse_extent_ctx(ctxs[k])
            first = fe.offset // ss
            last = (fe.offset + n + ss - 1) // ss
            ct = img.read_logical(fe.disk_bytenr + first * ss, (last - first) * ss)
            pt = xts_decrypt(keys.extent(ec.nonce), ct, ss, first)
            skip = fe.offset - first * ss
            out[k:k + n] = pt[skip:skip + n]
        else:
            out[k:k + n] = img.read_logical(fe.disk_bytenr + fe.offset, n)
    return bytes(out)


# ---------------------------------------------------------------------------
# Paths of an image (plain or encrypted: names as stored, bytes).

S_IFMT, S_IFREG, S_IFDIR, S_IFLNK = 0o170000, 0o100000, 0o040000, 0o120000


def subvol_paths(img, root_items=None):
    """{tree id: path bytes from the top level (b"" for tree 5)} via ROOT_BACKREF."""
    backrefs = {}
    for key, data in img.root_tree_items():
        if key[1] == ROOT_BACKREF:
            dirid, _seq, name = parse_root_ref(data)
            backrefs[key[0]] = (key[2], dirid, name)
    trees = {}
    paths = {FS_TREE: b""}

    def path_of(tree):
        if tree in paths:
            return paths[tree]
        if tree not in backrefs:
            return None
        parent, dirid, name = backrefs[tree]
        if parent not in trees:
            trees[parent] = FsTree(img.tree_items(parent))
        pp = path_of(parent)
        if pp is None:
            return None
        d = dir_path(trees[parent], dirid)
        if d is None:
            return None
        paths[tree] = b"/".join(x for x in (pp, d, name) if x)
        return paths[tree]

    for t in img.fs_tree_ids():
        path_of(t)
    return paths


def dir_path(fs, ino):
    """Path (bytes, relative to the subvolume root) of a directory or the
    first link of an inode; None when unreachable."""
    parts = []
    seen = set()
    while ino != 256:
        if ino in seen:
            return None
        seen.add(ino)
        refs = fs.get(ino, INODE_REF)
        if refs:
            key, data = refs[0]
            parent = key[2]
            name = parse_inode_refs(data)[0][1]
        else:
            ext = fs.get(ino, INODE_EXTREF)
            if not ext:
                return None
            parent, _idx, name = parse_inode_extrefs(ext[0][1])[0]
        parts.append(name)
        ino = parent
    return b"/".join(reversed(parts))


def inode_paths(img):
    """{(tree, ino): path bytes from the top level} for every reachable inode
    of every fs tree (first link only)."""
    sp = subvol_paths(img)
    out = {}
    for t in img.fs_tree_ids():
        if t not in sp:
            continue
        fs = FsTree(img.tree_items(t))
        for ino in fs.inodes():
            p = dir_path(fs, ino)
            if p is None:
                continue
            out[(t, ino)] = b"/".join(x for x in (sp[t], p) if x)
    return out


# ---------------------------------------------------------------------------
# Verifying an encrypted image against its original, from first principles.

class Problems(list):
    def add(self, msg):
        if len(self) < 200:
            self.append(msg)
        elif len(self) == 200:
            self.append("... more problems left out")


def _inode_kind(mode):
    return {S_IFREG: "reg", S_IFDIR: "dir", S_IFLNK: "lnk"}.get(mode & S_IFMT, "other")


def subtree_inodes(fs, dir_ino):
    """Inodes of a directory and everything below it in the same tree
    (following DIR_INDEX entries to INODE_ITEMs; subvolumes are not entered)."""
    out, stack = {dir_ino}, [dir_ino]
    while stack:
        d = stack.pop()
        for e in fs.dir_index(d).values():
            oid, typ, _off = e.location
            if typ != INODE_ITEM or oid in out:
                continue
            out.add(oid)
            if (e.type & 0x7F) == FT_DIR:
                stack.append(oid)
    return out


def verify_encrypted(orig_path, enc_path, master, content, chunks=None, flags=3,
                     trees=None, contents_mode=1, filenames_mode=4, only=None):
    """Recompute what `encrypt` must have written and compare with enc_path.

    orig_path: the plain image before encrypt; enc_path: after.
    content(tree, ino, path) -> bytes: the original plaintext of a regular
        file (read from the source tree or a mount of the original).
    chunks: chunk map (list of Chunk) of the original, e.g. from
        chunks_from_progs_text(); None reads it from the images.
    trees: fs tree ids expected encrypted (default: all).
    only: set of (tree, ino) expected encrypted (--path); every other inode
        of those trees must be left as it was (no context, no flag, plain
        names in plain directories).
    Returns (stats dict, Problems).
    """
    P = Problems()
    st = dict(inodes=0, dirs=0, files=0, symlinks=0, others=0, names=0, dir_items=0,
              inode_refs=0, root_refs=0, extents=0, extent_items=0, sectors_recomputed=0,
              sectors_partial=0, sectors_unverified=0, compressed_extents=0,
              prealloc_items=0, holes=0, csums_checked=0, shared_extents=0,
              inode_nonces=[], extent_nonces=[], inline_converted=0)
    keys = KeyCache(master)
    O = ImageReader(orig_path, chunks=chunks)
    E = ImageReader(enc_path, chunks=chunks)
    if chunks is not None:
        # Encrypt may allocate chunks and remove emptied ones (chunk-alloc.c):
        # every chunk of the original that is left must be unchanged, removed
        # ones must not be SYSTEM, new ones must overlap nothing.  The
        # encrypted image is then read with its own map.
        own = ImageReader(enc_path)
        old = {c.logical: c for c in chunks}
        new = {c.logical: c for c in own.chunks}
        for lg, c in old.items():
            if lg in new and (new[lg].length, new[lg].physical) != (c.length, c.physical):
                P.add("chunk %d changed: %r -> %r" % (lg, c, new[lg]))
            if lg not in new and "SYSTEM" in str(c.type):
                P.add("system chunk %d removed" % lg)
        ranges = sorted((p, p + c.length) for c in own.chunks for p in c.physical)
        for (s0, e0), (s1, _e1) in zip(ranges, ranges[1:]):
            if s1 < e0:
                P.add("device ranges overlap: %d..%d and %d" % (s0, e0, s1))
        if set(new) != set(old):
            E.close()
            E = own
        else:
            own.close()
    if not E.incompat & INCOMPAT_ENCRYPT:
        P.add("incompat bit 15 not set after encrypt")
    ss = E.sectorsize
    o_ids, e_ids = O.fs_tree_ids(), E.fs_tree_ids()
    if o_ids != e_ids:
        P.add("fs trees changed: %r -> %r" % (o_ids, e_ids))
    sel = set(trees if trees is not None else e_ids)
    o_paths = inode_paths(O)
    OT = {t: FsTree(O.tree_items(t)) for t in o_ids}
    ET = {t: FsTree(E.tree_items(t)) for t in e_ids}
    sym_cap = min(ss - 1, E.nodesize - 147) - 2
    # disk extent -> {"ctx": bytes, "refs": [(tree, ino, K, fe)]}
    disk = {}
    dir_keys = {}          # (tree, dir ino) -> key
    for t in sorted(sel & set(e_ids)):
        ot, et = OT.get(t), ET[t]
        for ino in et.inodes():
            ei, oi = et.inode(ino), ot.inode(ino) if ot else None
            if oi is None:
                P.add("tree %d ino %d: new inode" % (t, ino))
                continue
            kind = _inode_kind(ei.mode)
            ctx = et.inode_ctx(ino)
            if only is not None and (t, ino) not in only:
                st["left_plain"] = st.get("left_plain", 0) + 1
                if ctx is not None or ei.flags != oi.flags:
                    P.add("tree %d ino %d: outside the selection but got a context or flags 0x%x"
                          % (t, ino, ei.flags))
                if any(fe.encryption for _k, fe in et.extents(ino)) or et.extent_ctxs(ino):
                    P.add("tree %d ino %d: outside the selection but has encrypted extents"
                          % (t, ino))
                if kind == "dir" and {k: (e.name, e.type, e.location) for k, e in ot.dir_index(ino).items()} \
                        != {k: (e.name, e.type, e.location) for k, e in et.dir_index(ino).items()}:
                    P.add("tree %d dir %d: outside the selection but its entries changed" % (t, ino))
                continue
            if kind == "other":
                st["others"] += 1
                if ctx is not None or ei.flags & INODE_FLAG_ENCRYPT:
                    P.add("tree %d ino %d: special inode got a context or ENCRYPT" % (t, ino))
                continue
            st["inodes"] += 1
            st[{"reg": "files", "dir": "dirs", "lnk": "symlinks"}[kind]] += 1
            if not ei.flags & INODE_FLAG_ENCRYPT:
                P.add("tree %d ino %d (%s): no ENCRYPT flag" % (t, ino, kind))
            if ei.flags != oi.flags | INODE_FLAG_ENCRYPT:
                P.add("tree %d ino %d: flags 0x%x -> 0x%x" % (t, ino, oi.flags, ei.flags))
            for f in ("mode", "uid", "gid", "nlink", "rdev"):
                if getattr(ei, f) != getattr(oi, f):
                    P.add("tree %d ino %d: %s %r -> %r" % (t, ino, f, getattr(oi, f), getattr(ei, f)))
            if ctx is None:
                P.add("tree %d ino %d (%s): no FSCRYPT_INODE_CTX" % (t, ino, kind))
                continue
            if len(ctx) != 40:
                P.add("tree %d ino %d: inode ctx of %d bytes" % (t, ino, len(ctx)))
                continue
            c = parse_inode_ctx(ctx)
            want = (2, contents_mode, filenames_mode, flags, 0, b"\0\0\0", keys.id)
            if tuple(c[:7]) != want:
                P.add("tree %d ino %d: inode ctx %s, want prefix %r" % (t, ino, ctx.hex(), want))
            st["inode_nonces"].append(c.nonce)
            if kind == "dir":
                dir_keys[(t, ino)] = keys.file(c.nonce)
    # second pass: names, symlinks, extents
    for t in sorted(sel & set(e_ids)):
        ot, et = OT.get(t), ET[t]
        if ot is None:
            continue
        for ino in et.inodes():
            ei, oi = et.inode(ino), ot.inode(ino)
            if oi is None:
                continue
            kind = _inode_kind(ei.mode)
            if kind == "dir":
                _verify_dir(P, st, t, ino, ot, et, ei, dir_keys, flags)
            # refs of every inode are encrypted with the parent dir's key
            _verify_refs(P, st, t, ino, ot, et, dir_keys, flags)
            if only is not None and (t, ino) not in only:
                continue
            if kind == "lnk":
                ctx = et.inode_ctx(ino)
                if ctx is None:
                    continue
                _verify_symlink(P, st, t, ino, ot, et, ei, oi, keys, parse_inode_ctx(ctx), flags, sym_cap)
            if kind == "reg":
                _collect_file(P, st, t, ino, ot, et, ei, oi, keys, disk)
    # sharing: with every subvolume encrypted (no selection), the items that
    # shared one disk extent share one copy, and only they do (issue 5 item 1)
    if trees is None and only is None:
        before = {}
        for t in sorted(sel & set(o_ids)):
            for ino in OT[t].inodes():
                for k, fe in OT[t].extents(ino):
                    if fe.type != 0 and fe.disk_bytenr:
                        before.setdefault(fe.disk_bytenr, set()).add((t, ino, k))
        want = {frozenset(v) for v in before.values()}
        known = set().union(*want) if want else set()
        # items of inline extents turned regular are new, not shared
        got = {frozenset((r[0], r[1], r[2]) for r in d["refs"]) for d in disk.values()}
        got = {g for g in got if not (len(g) == 1 and not g <= known)}
        for g in sorted(want - got, key=sorted)[:3]:
            P.add("items %r shared an extent; after encrypt they do not" % sorted(g)[:4])
        for g in sorted(got - want, key=sorted)[:3]:
            P.add("items %r share an extent they did not share" % sorted(g)[:4])
        st["sharing_groups"] = len(got)
    # subvolume names in the root tree
    _verify_root_refs(P, st, O, E, dir_keys, flags, sel)
    # data: recompute every encrypted disk extent
    content_cache = {}

    def plain(t, ino):
        if (t, ino) not in content_cache:
            path = o_paths.get((t, ino))
            data = content(t, ino, path)
            if data is None:
                data = file_plain_bytes(O, OT[t], ino)
            content_cache[(t, ino)] = data
            if len(content_cache) > 64:
                content_cache.pop(next(iter(content_cache)))
        return content_cache[(t, ino)]

    for bytenr in sorted(disk):
        _verify_extent(P, st, O, E, OT, bytenr, disk[bytenr], keys, plain)
    # csums over the ciphertext, and the csum tree exactly covering data
    _verify_csums(P, st, E, ET, disk)
    # nothing the image uses may sit on a superblock copy (Documentation/format.rst 2.1)
    for msg in superblock_overlaps(E, ET):
        P.add(msg)
    # nonces
    allnon = st["inode_nonces"] + st["extent_nonces"]
    if len(set(allnon)) != len(allnon):
        P.add("duplicate nonces: %d of %d distinct" % (len(set(allnon)), len(allnon)))
    O.close()
    E.close()
    return st, P


def _verify_dir(P, st, t, ino, ot, et, ei, dir_keys, flags):
    key = dir_keys.get((t, ino))
    if key is None:
        return
    o_idx, e_idx = ot.dir_index(ino), et.dir_index(ino)
    if set(o_idx) != set(e_idx):
        P.add("tree %d dir %d: DIR_INDEX set changed" % (t, ino))
    size = 0
    index_entries = set()
    for idx, ee in e_idx.items():
        oe = o_idx.get(idx)
        size += len(ee.name)
        index_entries.add((ee.name, ee.location, ee.type))
        if oe is None:
            continue
        st["names"] += 1
        want = encrypt_name(key, oe.name, flags)
        if ee.name != want:
            P.add("tree %d dir %d index %d: name %r -> %s, want %s"
                  % (t, ino, idx, oe.name, ee.name.hex(), want.hex()))
        if ee.type != (oe.type | FT_ENCRYPTED):
            P.add("tree %d dir %d index %d: type %d -> %d" % (t, ino, idx, oe.type, ee.type))
        if ee.location != oe.location:
            P.add("tree %d dir %d index %d: location %r -> %r" % (t, ino, idx, oe.location, ee.location))
        if ee.data_len or ee.data:
            P.add("tree %d dir %d index %d: data_len %d" % (t, ino, idx, ee.data_len))
    item_entries = set()
    n_items = 0
    for h, entries in et.dir_items(ino).items():
        for e in entries:
            n_items += 1
            size += len(e.name)
            st["dir_items"] += 1
            item_entries.add((e.name, e.location, e.type))
            if name_hash(e.name) != h:
                P.add("tree %d dir %d: DIR_ITEM key 0x%x != name_hash(stored name) 0x%x"
                      % (t, ino, h, name_hash(e.name)))
    if item_entries != index_entries or n_items != len(e_idx):
        P.add("tree %d dir %d: DIR_ITEM entries (%d) != DIR_INDEX entries (%d)"
              % (t, ino, n_items, len(e_idx)))
    if ei.size != size:
        P.add("tree %d dir %d: size %d, sum of stored name lengths %d" % (t, ino, ei.size, size))


def _all_refs(fs, ino):
    """{(parent, index): (name, 'ref'|'extref')} over INODE_REF and
    INODE_EXTREF items, with hash problems of EXTREF keys."""
    out, bad = {}, []
    for k, d in fs.get(ino, INODE_REF):
        for idx, name in parse_inode_refs(d):
            out[(k[2], idx)] = (name, "ref")
    for k, d in fs.get(ino, INODE_EXTREF):
        for parent, idx, name in parse_inode_extrefs(d):
            out[(parent, idx)] = (name, "extref")
            if crc32c_raw(parent & 0xFFFFFFFF, name) != k[2]:
                bad.append("INODE_EXTREF key 0x%x != hash of stored name (parent %d)" % (k[2], parent))
    return out, bad


def _verify_refs(P, st, t, ino, ot, et, dir_keys, flags):
    """Every (parent, index) link keeps its index, and its name is encrypted
    with the parent's key.  A name may move between INODE_REF and
    INODE_EXTREF (a full INODE_REF item spills into EXTREF items)."""
    o_all, _ = _all_refs(ot, ino)
    e_all, bad = _all_refs(et, ino)
    for b in bad:
        P.add("tree %d ino %d: %s" % (t, ino, b))
    if set(o_all) != set(e_all):
        P.add("tree %d ino %d: links (parent, index) changed: %r -> %r"
              % (t, ino, sorted(set(o_all) - set(e_all))[:5], sorted(set(e_all) - set(o_all))[:5]))
    moved = sum(1 for k in e_all if k in o_all and e_all[k][1] != o_all[k][1])
    if moved:
        st["refs_moved_to_extref"] = st.get("refs_moved_to_extref", 0) + moved
    for (parent, idx), (name, _kind) in e_all.items():
        if (parent, idx) not in o_all:
            continue
        oname = o_all[(parent, idx)][0]
        if ino == 256 and parent == 256:        # the subvolume root's ".."
            if name != oname:
                P.add("tree %d: root dir ref changed %r -> %r" % (t, oname, name))
            continue
        st["inode_refs"] += 1
        key = dir_keys.get((t, parent))
        want = encrypt_name(key, oname, flags) if key else oname
        if name != want:
            P.add("tree %d ino %d: ref (parent %d idx %d) %r -> %s, want %s"
                  % (t, ino, parent, idx, oname, name.hex(), want.hex()))


def _verify_symlink(P, st, t, ino, ot, et, ei, oi, keys, ctx, flags, cap):
    o_ext, e_ext = ot.extents(ino), et.extents(ino)
    if len(o_ext) != 1 or o_ext[0][1].type != 0:
        P.add("tree %d symlink %d: original is not one inline extent" % (t, ino))
        return
    target = o_ext[0][1].inline[:oi.size]
    if len(e_ext) != 1:
        P.add("tree %d symlink %d: %d extents after encrypt" % (t, ino, len(e_ext)))
        return
    k, fe = e_ext[0]
    if k != 0 or fe.type != 0 or fe.compression != 0:
        P.add("tree %d symlink %d: not an uncompressed inline extent at 0: %r" % (t, ino, fe))
        return
    if fe.encryption != 0:
        P.add("tree %d symlink %d: inline encryption byte %d (Documentation/format.rst 9: write 0)" % (t, ino, fe.encryption))
    lkey = keys.file(ctx.nonce)
    ct_len = struct.unpack_from("<H", fe.inline, 0)[0] if len(fe.inline) >= 2 else -1
    want_len = padded_len(len(target), flags, max_len=max(cap, len(target)))
    want = struct.pack("<H", want_len) + cts_encrypt(lkey, target + b"\0" * (want_len - len(target)))
    if fe.inline != want:
        got = ""
        if ct_len >= 16 and len(fe.inline) == 2 + ct_len:
            got = " (decrypts to %r)" % (decrypt_name(lkey, fe.inline[2:])[0][:60],)
        P.add("tree %d symlink %d: payload len %d%s, want len %d for target %r"
              % (t, ino, ct_len, got, want_len, target[:60]))
    n = len(fe.inline)
    if not (fe.ram_bytes == ei.size == ei.nbytes == n):
        P.add("tree %d symlink %d: ram_bytes %d size %d nbytes %d item data %d (all must be 2+len)"
              % (t, ino, fe.ram_bytes, ei.size, ei.nbytes, n))
    st["symlinks_checked"] = st.get("symlinks_checked", 0) + 1


def _collect_file(P, st, t, ino, ot, et, ei, oi, keys, disk):
    if ei.size != oi.size:
        P.add("tree %d ino %d: size %d -> %d" % (t, ino, oi.size, ei.size))
    ctxs = et.extent_ctxs(ino)
    used = set()
    o_inline = any(fe.type == 0 for _k, fe in ot.extents(ino))
    for k, fe in et.extents(ino):
        if fe.type == 0:
            P.add("tree %d ino %d: inline extent left in an encrypted file (C4)" % (t, ino))
            continue
        if fe.type == 1 and fe.disk_bytenr == 0:
            st["holes"] += 1
            if fe.encryption != 0 or k in ctxs:
                P.add("tree %d ino %d @%d: hole with encryption %d / ctx" % (t, ino, k, fe.encryption))
            continue
        if fe.encryption != 1:
            P.add("tree %d ino %d @%d: %s extent with encryption %d"
                  % (t, ino, k, "prealloc" if fe.type == 2 else "regular", fe.encryption))
            continue
        c = ctxs.get(k)
        if c is None:
            P.add("tree %d ino %d @%d: no FSCRYPT_CTX item (C5)" % (t, ino, k))
            continue
        used.add(k)
        if len(c) != 34:
            P.add("tree %d ino %d @%d: ctx of %d bytes (writers: 34)" % (t, ino, k, len(c)))
        ec = parse_extent_ctx(c)
        if (ec.version, ec.mode, ec.key_id) != (1, 1, keys.id):
            P.add("tree %d ino %d @%d: extent ctx %s" % (t, ino, k, c.hex()))
        st["extent_items"] += 1
        if fe.type == 2:
            st["prealloc_items"] += 1
        d = disk.setdefault(fe.disk_bytenr, {"ctx": c, "refs": [], "num": fe.disk_num_bytes,
                                              "type": fe.type})
        if fe.type == 1:
            d["type"] = 1           # a prealloc extent partly written: data to check
        if d["ctx"] != c:
            P.add("extent %d: items disagree on the context (C8): %s vs %s"
                  % (fe.disk_bytenr, d["ctx"].hex(), c.hex()))
        d["refs"].append((t, ino, k, fe))
    if o_inline:
        st["inline_converted"] += 1
    for k in set(ctxs) - used:
        P.add("tree %d ino %d: FSCRYPT_CTX at %d without an encrypted EXTENT_DATA (C6)" % (t, ino, k))


def _orig_item(OT, t, ino, k):
    ot = OT.get(t)
    if ot is None:
        return None
    for kk, fe in ot.extents(ino):
        if kk == k:
            return fe
    return None


def _verify_extent(P, st, O, E, OT, bytenr, d, keys, plain):
    ss = E.sectorsize
    num = d["num"]
    ec = parse_extent_ctx(d["ctx"])
    st["extents"] += 1
    st["extent_nonces"].append(ec.nonce)
    trees_inos = {(r[0], r[1]) for r in d["refs"]}
    if len(d["refs"]) > 1 and len(trees_inos) > 1:
        st["shared_extents"] += 1
    if d["type"] == 2:              # prealloc: context only, data not encrypted
        return
    if num % ss:
        P.add("extent %d: disk_num_bytes %d not sector aligned" % (bytenr, num))
        return
    key = keys.extent(ec.nonce)
    ct = E.read_logical(bytenr, num)
    comp = {r[3].compression for r in d["refs"] if r[3].type == 1}
    if len(comp) != 1:
        P.add("extent %d: items disagree on compression" % bytenr)
        return
    if comp != {0}:
        st["compressed_extents"] += 1
        # compressed extents are encrypted as stored: the plaintext is the
        # original stored (compressed) payload of the same file range
        t, ino, k, fe = d["refs"][0]
        ofe = _orig_item(OT, t, ino, k)
        if ofe is None or ofe.type != 1 or ofe.compression != fe.compression:
            P.add("extent %d: no original compressed item at tree %d ino %d @%d (%r)"
                  % (bytenr, t, ino, k, ofe))
            return
        if ofe.disk_num_bytes != num or ofe.offset != fe.offset or ofe.num_bytes != fe.num_bytes \
                or ofe.ram_bytes != fe.ram_bytes:
            P.add("extent %d: compressed geometry changed %r -> %r" % (bytenr, ofe, fe))
            return
        pt = O.read_logical(ofe.disk_bytenr, num)
        want = xts_encrypt(key, pt, ss)
        st["sectors_recomputed"] += num // ss
        if want != ct:
            got_pt = xts_decrypt(key, ct, ss)
            first = next(i for i in range(num) if got_pt[i] != pt[i])
            P.add("extent %d (compressed %d): ciphertext differs from XTS(original stored bytes);"
                  " decrypted stored bytes first differ at byte %d of %d"
                  % (bytenr, fe.compression, first, num))
        return
    # uncompressed: plaintext from the files that reference it (regular
    # items only: prealloc ranges of the same extent read as zeros)
    known = bytearray(num)
    mask = bytearray(num)
    for t, ino, k, fe in d["refs"]:
        if fe.type != 1:
            continue
        data = plain(t, ino)
        if data is None:
            continue
        size = len(data)
        lo, hi = fe.offset, fe.offset + fe.num_bytes
        if hi > num:
            P.add("extent %d: item tree %d ino %d @%d references past the extent" % (bytenr, t, ino, k))
            hi = num
        seg = data[k:k + (hi - lo)]
        known[lo:lo + len(seg)] = seg
        mask[lo:lo + len(seg)] = b"\1" * len(seg)
        # past EOF inside the last sector: zeros (Documentation/format.rst 6)
        eof = lo + max(0, size - k)
        if eof < hi:
            end = min(num, (eof + ss - 1) // ss * ss)
            known[eof:end] = bytes(end - eof)
            mask[eof:end] = b"\1" * (end - eof)
    # unreferenced sectors: the original stored bytes of the same extent when
    # the geometry is unchanged
    ofill = None
    for t, ino, k, fe in d["refs"]:
        ofe = _orig_item(OT, t, ino, k)
        if fe.type == 1 and ofe is not None and ofe.type == 1 and ofe.disk_bytenr and not ofe.compression \
                and ofe.disk_num_bytes == num and ofe.offset == fe.offset:
            ofill = ofe.disk_bytenr
            break
    for s in range(0, num, ss):
        m = mask[s:s + ss]
        if m.count(1) == ss:
            want = xts_encrypt(key, bytes(known[s:s + ss]), ss, s // ss)
            st["sectors_recomputed"] += 1
            if want != ct[s:s + ss]:
                got = xts_decrypt(key, ct[s:s + ss], ss, s // ss)
                first = next((i for i in range(ss) if got[i] != known[s + i]), None)
                P.add("extent %d sector %d: ciphertext differs (decrypts differently from byte %r; refs %r)"
                      % (bytenr, s // ss, first, [(r[0], r[1], r[2]) for r in d["refs"]][:4]))
        else:
            got = xts_decrypt(key, ct[s:s + ss], ss, s // ss)
            if ofill is not None:
                want_pt = O.read_logical(ofill + s, ss)
                for i in range(ss):
                    if m[i]:
                        want_pt = want_pt[:i] + bytes([known[s + i]]) + want_pt[i + 1:] \
                            if want_pt[i] != known[s + i] else want_pt
                if xts_encrypt(key, want_pt, ss, s // ss) == ct[s:s + ss]:
                    st["sectors_recomputed"] += 1
                    continue
            if m.count(1):
                st["sectors_partial"] += 1
                bad = [i for i in range(ss) if m[i] and got[i] != known[s + i]]
                if bad:
                    P.add("extent %d sector %d: known bytes differ after decryption (first %d)"
                          % (bytenr, s // ss, bad[0]))
            else:
                st["sectors_unverified"] += 1


def _verify_csums(P, st, E, ET, disk):
    ss = E.sectorsize
    cs = E.csums()
    want, allowed = set(), set()
    nosum = set()
    for t, et in ET.items():
        for ino in et.inodes():
            node = et.inode(ino)
            nodatasum = node.flags & 1
            for k, fe in et.extents(ino):
                if fe.type == 0 or not fe.disk_bytenr:
                    continue
                if nodatasum:
                    nosum.update(fe.disk_bytenr + s for s in range(0, fe.disk_num_bytes, ss))
                    continue
                for s in range(0, fe.disk_num_bytes, ss):
                    allowed.add(fe.disk_bytenr + s)
                if fe.type != 1:
                    continue
                if fe.compression:
                    lo, hi = 0, fe.disk_num_bytes
                else:                   # the written (referenced) sectors
                    lo = fe.offset // ss * ss
                    hi = fe.offset + fe.num_bytes
                for s in range(lo, hi, ss):
                    want.add(fe.disk_bytenr + s)
    have = set(cs)
    if want - have:
        P.add("%d data sectors without a csum (first %d)" % (len(want - have), min(want - have)))
    extra = have - allowed
    if extra & nosum:
        P.add("%d csums for extents of NODATASUM inodes (first %d)" % (len(extra & nosum),
                                                                     min(extra & nosum)))
    if extra - nosum:
        P.add("%d csums for sectors no data extent uses (first %d)" % (len(extra - nosum),
                                                                     min(extra - nosum)))
    for bytenr, d in disk.items():
        if d["type"] != 1:
            continue
        ct = E.read_logical(bytenr, d["num"])
        for s in range(0, d["num"], ss):
            c = cs.get(bytenr + s)
            if c is None:
                continue
            st["csums_checked"] += 1
            if c != csum(E.csum_type, ct[s:s + ss]):
                P.add("csum of logical %d does not match the on-disk ciphertext" % (bytenr + s))


def _verify_root_refs(P, st, O, E, dir_keys, flags, sel):
    def refs(img):
        out = {}
        for key, data in img.root_tree_items():
            if key[1] in (ROOT_REF, ROOT_BACKREF):
                out[key] = parse_root_ref(data)
        return out
    o, e = refs(O), refs(E)
    if set(o) != set(e):
        P.add("ROOT_REF/BACKREF keys changed")
    for key, (dirid, seq, name) in e.items():
        if key not in o:
            continue
        parent = key[0] if key[1] == ROOT_REF else key[2]
        odirid, oseq, oname = o[key]
        dkey = dir_keys.get((parent, dirid))
        want = encrypt_name(dkey, oname, flags) if dkey else oname
        st["root_refs"] += 1
        if (dirid, seq, name) != (odirid, oseq, want):
            P.add("root tree %r: %r -> (%d, %d, %s), want name %s"
                  % (key, o[key], dirid, seq, name.hex(), want.hex()))


def live_tree_blocks(img):
    """Logical addresses of every tree block reachable from the superblock
    (root tree, chunk tree, every tree of the root tree)."""
    live = set()
    roots = [img.root, img.chunk_root] + [v[0] for v in img.root_items().values()]
    for r in roots:
        stack = [r]
        while stack:
            b = stack.pop()
            if b in live:
                continue
            live.add(b)
            blk = img.read_block(b)
            if blk[0x64]:
                n, = struct.unpack_from("<I", blk, 0x60)
                stack += [struct.unpack_from("<Q", blk, HDR + 33 * i + 17)[0] for i in range(n)]
    return live


def classify_offsets(path, offsets):
    """For image-file offsets: which are inside a live tree block, inside a
    metadata/system chunk (not live: free space), inside a data chunk, or
    outside any chunk.  Returns {class: count}."""
    with ImageReader(path) as img:
        live = live_tree_blocks(img)
        ns = img.nodesize
        phys_live = []
        for b in live:
            c = img.chunk_of(b)
            phys_live += [s + b - c.logical for s in c.physical]
        phys_live.sort()
        import bisect
        out = {}
        for o in offsets:
            i = bisect.bisect_right(phys_live, o) - 1
            if i >= 0 and phys_live[i] <= o < phys_live[i] + ns:
                k = "live tree block"
            else:
                k = "outside chunks (superblock area, unallocated)"
                for c in img.chunks:
                    if any(s <= o < s + c.length for s in c.physical):
                        t = c.type if isinstance(c.type, int) else 0
                        if isinstance(c.type, str):
                            t = 1 if c.type.startswith("DATA") else 4
                        k = "free space of a data chunk" if t & 1 else "free metadata/system space"
                        break
            out[k] = out.get(k, 0) + 1
        return out


def superblock_overlaps(img, trees=None):
    """Tree blocks (every stripe) and data extents whose physical range
    covers a superblock copy (64 KiB, 64 MiB, 256 GiB)."""
    out = []
    spans = []
    for b in live_tree_blocks(img):
        spans.append(("tree block", b, img.nodesize))
    if trees is None:
        trees = {t: FsTree(img.tree_items(t)) for t in img.fs_tree_ids()}
    seen = set()
    for t, fs in trees.items():
        for ino in fs.inodes():
            for _k, fe in fs.extents(ino):
                if fe.type and fe.disk_bytenr and fe.disk_bytenr not in seen:
                    seen.add(fe.disk_bytenr)
                    spans.append(("data extent", fe.disk_bytenr, fe.disk_num_bytes))
    for what, logical, n in spans:
        try:
            c = img.chunk_of(logical)
        except KeyError:
            out.append("%s %d is in no chunk" % (what, logical))
            continue
        for s in c.physical:
            p = s + logical - c.logical
            for m in SUPER_MIRRORS:
                if p < m + 4096 and m < p + n:
                    out.append("%s at logical %d (physical %d..%d) covers the superblock copy at %d"
                               % (what, logical, p, p + n, m))
    return out

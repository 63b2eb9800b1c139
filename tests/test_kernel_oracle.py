"""The running kernel's ext4 fscrypt as the oracle (Documentation/format.rst 14), issue 3.

On a loop-mounted ext4 made with -O encrypt, a random 64-byte key is added
with `xfs_io add_enckey` and v2 policies (AES-256-XTS / AES-256-CTS) are set
on one directory per filename padding.  After umount, what the kernel wrote is
read back with debugfs and dd, and compared with what our code computes:
  * `btrfs-extcrypt key id` equals the identifier the kernel reported and the
    one stored in every context;
  * our per-file key (HKDF context 2 + inode nonce) and XTS by DUN reproduce
    the raw blocks of a file of 21 data units;
  * our CTS-CBC reproduces the stored names of lengths 1, 15, 16, 17, 31, 32,
    33, 100 and 255 under each padding.
Needs root, a loop device, mkfs.ext4, xfs_io and debugfs; skips otherwise.
"""

import os
import random
import re
import shutil
import struct
import subprocess

import pytest

import fscrypt_ref as ref
from test_crypto import oracle, unit  # noqa: F401  (fixture)

NAME_LENGTHS = (1, 15, 16, 17, 31, 32, 33, 100, 255)
BLOCK = 4096


def sh(*args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 120)
    return subprocess.run([str(a) for a in args], **kw)


def debugfs(img, request):
    res = sh("debugfs", "-R", request, img, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def read_context(img, ino):
    out = debugfs(img, "ea_get -x <%d> c" % ino)
    m = re.search(r"c \(40\) = ([0-9a-f ]+)", out)
    assert m, "no 40-byte context on inode %d: %r" % (ino, out)
    return bytes.fromhex(m.group(1).replace(" ", ""))


def blocks_of(img, ino):
    return [int(b) for b in debugfs(img, "blocks <%d>" % ino).split()]


def dir_entries(img, ino):
    """ext4 linear directory blocks -> {inode: stored name bytes}."""
    entries = {}
    with open(img, "rb") as f:
        for blk in blocks_of(img, ino):
            f.seek(blk * BLOCK)
            data = f.read(BLOCK)
            off = 0
            while off + 8 <= BLOCK:
                child, rec_len, name_len, _ftype = struct.unpack_from("<IHBB", data, off)
                if rec_len < 8:
                    break
                if child and name_len:
                    entries[child] = data[off + 8:off + 8 + name_len]
                off += rec_len
    return entries


def random_name(rnd, length):
    alphabet = bytes(b for b in range(0x21, 0x7F) if b != 0x2F) + bytes(range(0x80, 0x100))
    while True:
        name = bytes(rnd.choice(alphabet) for _ in range(length))
        if name not in (b".", b".."):  # names a directory entry cannot have
            return name


@pytest.mark.kernel
def test_ext4_kernel_oracle(bin, unit, tmp_path):  # noqa: F811
    for tool in ("mkfs.ext4", "xfs_io", "debugfs"):
        if shutil.which(tool) is None:
            pytest.skip("%s not installed (e2fsprogs / xfsprogs)" % tool)
    img = tmp_path / "ext4.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    res = sh("mkfs.ext4", "-q", "-F", "-O", "encrypt", "-b", BLOCK, img)
    assert res.returncode == 0, res.stderr
    res = sh("mount", "-o", "loop", img, mnt)
    if res.returncode != 0:
        pytest.skip("cannot loop-mount ext4 here: %s" % res.stderr.decode(errors="replace"))

    rnd = random.Random()
    key = os.urandom(64)
    dirs = {}       # flags -> (dir ino, {file ino: plaintext name})
    data_file = None
    kernel_id = None
    try:
        res = sh("xfs_io", "-c", "add_enckey", mnt, input=key)
        out = res.stdout.decode()
        m = re.search(r"identifier ([0-9a-f]{32})", out)
        if not m:
            pytest.skip("kernel refused add_enckey (no fscrypt?): %s %s"
                        % (out, res.stderr.decode(errors="replace")))
        kernel_id = m.group(1)
        for flags in range(4):
            d = mnt / ("pad%d" % (4 << flags))
            d.mkdir()
            res = sh("xfs_io", "-c", "set_encpolicy -v 2 -c AES-256-XTS -n AES-256-CTS -f %d %s"
                     % (flags, kernel_id), d)
            assert res.returncode == 0, res.stderr
            names = {}
            for length in NAME_LENGTHS:
                name = random_name(rnd, length)
                p = os.path.join(os.fsencode(d), name)
                with open(p, "wb"):
                    pass
                names[os.stat(p).st_ino] = name
            dirs[flags] = (os.stat(d).st_ino, names)
        # 20 full data units and a partial one.
        plain = os.urandom(20 * BLOCK + 1000)
        p = mnt / "pad16" / "data"
        p.write_bytes(plain)
        data_file = (os.stat(p).st_ino, plain)
        os.sync()
    finally:
        if kernel_id:
            sh("xfs_io", "-c", "rm_enckey %s" % kernel_id, mnt)
        res = sh("umount", mnt)
        assert res.returncode == 0, res.stderr

    # Key identifier: ours, the kernel's, the stored ones.
    keyfile = tmp_path / "key"
    keyfile.write_bytes(key)
    res = sh(bin, "key", "id", "--key-file", keyfile, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "Key identifier: " + kernel_id
    assert ref.key_identifier(key).hex() == kernel_id

    # Names, per padding: our CTS-CBC with the directory's per-file key.
    checked = 0
    for flags, (dino, names) in dirs.items():
        ctx = read_context(img, dino)
        assert ctx[:4] == bytes([2, 1, 4, flags]) and ctx[8:24].hex() == kernel_id
        nonce = ctx[24:40]
        (dkey,) = oracle(unit, "hkdf", ["%s 2 %s 32" % (key.hex(), nonce.hex())])
        stored = dir_entries(img, dino)
        cases, want = [], []
        for ino, name in names.items():
            assert ino in stored, "inode %d missing from directory %d" % (ino, dino)
            cases.append("enc %s 4 %d %s" % (dkey, flags, name.hex()))
            want.append(stored[ino].hex())
        got = [line.split()[0] for line in oracle(unit, "fname", cases)]
        for c, g, w in zip(cases, got, want):
            assert g == w, "padding %d, name length %d: ours %s, kernel %s" % (
                4 << flags, len(bytes.fromhex(c.split()[4])), g, w)
        # Our decryption of the kernel's names too.
        dec = oracle(unit, "fname", ["dec %s 4 %s" % (dkey, w) for w in want])
        assert dec == [names[ino].hex() for ino in names]
        checked += len(cases)
    assert checked == 4 * len(NAME_LENGTHS)

    # Data: our per-file key + XTS by DUN reproduces the raw blocks.
    ino, plain = data_file
    ctx = read_context(img, ino)
    assert ctx[8:24].hex() == kernel_id
    (fkey,) = oracle(unit, "hkdf", ["%s 2 %s 64" % (key.hex(), ctx[24:40].hex())])
    blocks = blocks_of(img, ino)
    assert len(blocks) == 21
    with open(img, "rb") as f:
        raw = b""
        for b in blocks:
            f.seek(b * BLOCK)
            raw += f.read(BLOCK)
    padded = plain + bytes(len(blocks) * BLOCK - len(plain))
    (ours,) = oracle(unit, "xts", ["%s 0 %d enc %s" % (fkey, BLOCK, padded.hex())])
    ours = bytes.fromhex(ours)
    for i in range(20):
        assert ours[i * BLOCK:(i + 1) * BLOCK] == raw[i * BLOCK:(i + 1) * BLOCK], \
            "data unit %d differs" % i
    assert ours[20 * BLOCK:] == raw[20 * BLOCK:], "the partial last unit differs (tail not zero?)"
    # And the reference implementation agrees with both.
    assert ref.xts_units(bytes.fromhex(fkey), 0, padded, BLOCK) == raw

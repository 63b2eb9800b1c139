"""Independent reference of the fscrypt algorithms of Documentation/format.rst sections 4, 6
and 8, written with python3-cryptography / hashlib only (no code of the C
tool), for the crypto tests to compare the C implementation against.  The
CRC-32C, name hash and csums are the tests' one copy, in btrfs_ondisk.py.
"""

import struct

from btrfs_ondisk import name_hash  # noqa: F401  (re-exported)
from btrfs_ondisk import csum_digest as csum  # noqa: F401
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

def hkdf_fscrypt(master, ctx, data, length):
    """HKDF-SHA512, unsalted extract, info = "fscrypt\\0" || ctx || data."""
    info = b"fscrypt\0" + bytes([ctx]) + data
    return HKDF(algorithm=hashes.SHA512(), length=length, salt=None, info=info).derive(master)


def key_identifier(master):
    return hkdf_fscrypt(master, 1, b"", 16)


def xts_units(key, dun, data, unit, encrypt=True):
    """AES-256-XTS per data unit, IV = le64(dun + i) || 8 zero bytes."""
    out = []
    for i in range(0, len(data), unit):
        iv = struct.pack("<Q", dun + i // unit) + bytes(8)
        c = Cipher(algorithms.AES(key), modes.XTS(iv))
        op = c.encryptor() if encrypt else c.decryptor()
        out.append(op.update(data[i:i + unit]) + op.finalize())
    return b"".join(out)


def _cbc(key, data, encrypt=True):
    c = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(data) + op.finalize()


def cts_cs3_encrypt(key, pt):
    """CBC-CS3 with a zero IV: the last two blocks always swapped above 16 bytes."""
    n = len(pt)
    assert n >= 16
    if n == 16:
        return _cbc(key, pt)
    nblocks = (n + 15) // 16
    tail = n - 16 * (nblocks - 1)  # 1..16 bytes in the last block
    c = _cbc(key, pt + bytes(16 * nblocks - n))
    blocks = [c[16 * i:16 * i + 16] for i in range(nblocks)]
    return b"".join(blocks[:-2]) + blocks[-1] + blocks[-2][:tail]


def padded_len(length, flags, max_len=255):
    pad = 4 << (flags & 3)
    n = max(length, 16)
    n = (n + pad - 1) // pad * pad
    return min(n, max_len)


def encrypt_name(key, name, flags):
    n = padded_len(len(name), flags)
    return cts_cs3_encrypt(key, name + bytes(n - len(name)))

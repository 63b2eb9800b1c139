"""Crypto core (issue 3) against independent implementations.

The C side is driven through the unit binary (env EXTCRYPT_UNIT):
`--oracle KIND` answers one case per stdin line, so each suite sends its
10,000 random cases to one process.  The reference side is fscrypt_ref.py
(python3-cryptography, hashlib, xxhash, crcmod).
"""

import os
import random
import subprocess

import pytest

import fscrypt_ref as ref

CASES = 10000


@pytest.fixture(scope="session")
def unit():
    path = os.environ.get("EXTCRYPT_UNIT")
    if not path:
        pytest.skip("EXTCRYPT_UNIT not set (path of tests/unit/unit-tests)")
    if not os.access(path, os.X_OK):
        pytest.fail("EXTCRYPT_UNIT=%s is not executable" % path, pytrace=False)
    return path


def oracle(unit, kind, lines, timeout=600):
    res = subprocess.run([unit, "--oracle", kind], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout.splitlines()
    assert len(out) == len(lines), "%d answers for %d cases\n%s" % (len(out), len(lines),
                                                                   res.stderr[-2000:])
    return out


def test_unit_binary_passes(unit):
    res = subprocess.run([unit], capture_output=True, text=True, timeout=600)
    last = res.stdout.strip().splitlines()[-1]
    assert res.returncode == 0 and last.endswith(" 0 failed"), res.stdout[-4000:]


def test_hkdf_random_contexts_1_2_9(unit):
    rnd = random.Random(0x4b4446)
    cases, want = [], []
    for i in range(CASES):
        master = rnd.randbytes(rnd.randint(16, 64))
        ctx = (1, 2, 9)[i % 3]
        if ctx == 1:
            data, length = b"", 16
        elif ctx == 2:
            data, length = rnd.randbytes(16), rnd.choice((16, 32, 64))
        else:
            data, length = rnd.randbytes(16), 64
        cases.append("%s %d %s %d" % (master.hex(), ctx, data.hex() or "-", length))
        want.append(ref.hkdf_fscrypt(master, ctx, data, length).hex())
    got = oracle(unit, "hkdf", cases)
    bad = [(c, g, w) for c, g, w in zip(cases, got, want) if g != w]
    assert not bad, "%d of %d differ, first: %s" % (len(bad), CASES, bad[0])


@pytest.mark.slow  # thousands of random oracle cases
def test_xts_random_by_dun(unit):
    rnd = random.Random(0x585453)
    cases, want = [], []
    for i in range(CASES):
        key = rnd.randbytes(64)
        while key[:32] == key[32:]:
            key = rnd.randbytes(64)
        unit_size = rnd.choice((16, 32, 48, 512, 4096))
        data = rnd.randbytes(unit_size * rnd.randint(1, 3))
        dun = rnd.choice((0, 1, rnd.getrandbits(16), rnd.getrandbits(32), rnd.getrandbits(63)))
        enc = i % 2 == 0
        cases.append("%s %d %d %s %s" % (key.hex(), dun, unit_size, "enc" if enc else "dec",
                                        data.hex()))
        want.append(ref.xts_units(key, dun, data, unit_size, encrypt=enc).hex())
    got = oracle(unit, "xts", cases)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, "%d of %d differ, first case: %s" % (len(bad), CASES, cases[bad[0]][:200])


def _random_name(rnd, length):
    # Any byte but NUL and '/'.
    alphabet = bytes(b for b in range(1, 256) if b != 0x2F)
    return bytes(rnd.choice(alphabet) for _ in range(length))


def test_cts_cbc_names_random(unit):
    rnd = random.Random(0x435453)
    cases, want, names = [], [], []
    for i in range(CASES):
        key = rnd.randbytes(32)
        flags = rnd.randint(0, 3)
        length = rnd.choice((1, 15, 16, 17, 31, 32, 33, 100, 255, rnd.randint(1, 255)))
        name = _random_name(rnd, length)
        ct = ref.encrypt_name(key, name, flags)
        cases.append("enc %s 4 %d %s" % (key.hex(), flags, name.hex()))
        want.append("%s %08x" % (ct.hex(), ref.name_hash(ct)))
        names.append((key, ct, name))
    got = oracle(unit, "fname", cases)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, "%d of %d differ, first: %s -> %s, want %s" % (
        len(bad), CASES, cases[bad[0]][:200], got[bad[0]], want[bad[0]])
    # And our decryption of the reference ciphertexts gives the names back.
    dec = oracle(unit, "fname", ["dec %s 4 %s" % (k.hex(), ct.hex()) for k, ct, _ in names])
    bad = [i for i, (g, (_, _, n)) in enumerate(zip(dec, names)) if g != n.hex()]
    assert not bad, "%d of %d decryptions differ" % (len(bad), CASES)


def test_cts_cbc_names_aes128_mode6(unit):
    """Mode 6 is the same CS3 construction with a 16-byte key (no kernel oracle here)."""
    rnd = random.Random(0x363636)
    cases, want = [], []
    for i in range(1000):
        key = rnd.randbytes(16)
        flags = rnd.randint(0, 3)
        name = _random_name(rnd, rnd.randint(1, 255))
        cases.append("enc %s 6 %d %s" % (key.hex(), flags, name.hex()))
        want.append(ref.encrypt_name(key, name, flags).hex())
    got = [g.split()[0] for g in oracle(unit, "fname", cases)]
    assert got == want


def test_symlink_targets_random(unit):
    rnd = random.Random(0x53594d)
    cases, want = [], []
    for i in range(2000):
        key = rnd.randbytes(32)
        flags = rnd.randint(0, 3)
        target = bytes(rnd.choice(b"abc/._-XYZ019") for _ in range(rnd.randint(1, 1500)))
        max_data = 4095  # min(sectorsize - 1, BTRFS_MAX_INLINE_DATA_SIZE)
        n = ref.padded_len(len(target), flags, max_data - 2)
        ct = ref.cts_cs3_encrypt(key, target + bytes(n - len(target)))
        cases.append("symenc %s 4 %d %d %s" % (key.hex(), flags, max_data, target.hex()))
        want.append((len(ct).to_bytes(2, "little") + ct).hex())
    got = oracle(unit, "fname", cases)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, "%d symlink targets differ" % len(bad)
    dec = oracle(unit, "fname", ["symdec %s 4 %s" % (c.split()[1], w) for c, w in zip(cases, want)])
    assert dec == [c.split()[5] for c in cases]


@pytest.mark.parametrize("kind,name", [(0, "crc32c"), (1, "xxhash64"), (2, "sha256"),
                                       (3, "blake2b")])
def test_checksums_random_buffers(unit, kind, name):
    rnd = random.Random(0x43530000 + kind)
    cases, want = [], []
    for i in range(CASES):
        length = rnd.choice((0, 1, 3, 4, 7, 8, 31, 32, 63, 64, 65, 127, 128, 129, 4096,
                             rnd.randint(0, 9000)))
        data = rnd.randbytes(length)
        cases.append("%d %s" % (kind, data.hex() or "-"))
        want.append(ref.csum(kind, data).hex())
    got = oracle(unit, "csum", cases)
    bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert not bad, "%s: %d of %d differ, first length %d" % (
        name, len(bad), CASES, len(bytes.fromhex(cases[bad[0]].split()[1].replace("-", ""))))
    # The batch form packs one digest per unit.
    data = rnd.randbytes(4096 * 8)
    (got,) = oracle(unit, "csum", ["batch %d 4096 %s" % (kind, data.hex())])
    assert got == b"".join(ref.csum(kind, data[i:i + 4096])
                           for i in range(0, len(data), 4096)).hex()


def test_format_vectors_through_reference():
    """Documentation/format.rst 13 recomputed by the reference, so the two sides agree on the vectors."""
    master = bytes(range(64))
    assert ref.key_identifier(master).hex() == "8699c2c53707405da5aba5ae4d8583c0"
    key9 = ref.hkdf_fscrypt(master, 9, bytes(range(0x10, 0x20)), 64)
    assert ref.xts_units(key9, 1, bytes(4096), 4096)[:32].hex() == \
        "ee71073340c8bd04701063e7ab292f9e22f8fc45bcf4c71ca6993c5084ebd887"
    assert ref.csum(0, b"123456789") == (0xE3069283).to_bytes(4, "little")


@pytest.mark.slow
def test_pipeline_1gib_round_trip_and_flip(unit, tmp_path):
    """1 GiB producer->encrypt->csum->pwrite, then pread->verify->decrypt->consumer,
    then one flipped ciphertext byte is reported as exactly its data unit."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    size = "1024"
    with open(unit, "rb") as f:
        if b"__asan_init" in f.read():
            size = "256"  # sanitizer builds are several times slower
    for csum in ("0", "3"):
        res = subprocess.run([unit, "--pipeline-selftest", "--size-mib", size, "--csum", csum],
                             capture_output=True, text=True, timeout=900, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "pipeline-selftest: OK" in res.stdout
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("flipped byte")][0]
        # "... (unit logical U): 1 report(s) U"
        unit_logical = line.split("unit logical ")[1].split(")")[0]
        assert line.endswith("1 report(s) " + unit_logical), line

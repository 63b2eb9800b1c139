"""check --key-file: compressed encrypted extents decrypt and decompress (C12).

Kernel-made images hold zlib, lzo and zstd extents; after `encrypt` each is
an encrypted compressed extent.  With the key, check must decode them all
cleanly, and a flipped byte inside three of them must be reported as
COMPRESSED_DECODE_BAD for each (the csum is left matching the flipped
bytes, so only the decode can catch it: csums cover ciphertext).
"""

import json
import os
import btrfs_ondisk as bo


def compressed_encrypted_extents(run, img):
    """disk_bytenr -> compression of the encrypted compressed extents of the FS tree."""
    doc = json.loads(run("--format", "json", "inspect", "dump-tree", "-t", "fs",
                         str(img)).stdout)
    found = {}
    for tree in doc["trees"]:
        for block in tree["blocks"]:
            for it in block.get("items", []):
                if it["key"]["type"] == "EXTENT_DATA" and it.get("compression") and \
                        it.get("encryption") == 1 and it.get("disk-bytenr"):
                    found[it["disk-bytenr"]] = it["compression"]
    return found


def test_compressed_encrypted_extents_decode(make_kernel_image, run, copy_image, tmp_path):
    kimg = make_kernel_image("crc32c", 16384)
    img = copy_image(kimg.path)
    key = tmp_path / "k"
    key.write_bytes(os.urandom(64))
    res = run("encrypt", "--key-file", str(key), str(img))
    assert res.returncode == 0, res.stderr
    res = run("--format", "json", "check", "--key-file", str(key), str(img))
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    decoded = doc["counters"]["compressed-extents-decoded"]
    assert decoded >= 3, doc["counters"]

    # Flip one ciphertext byte in three compressed extents of different
    # algorithms.  Without --check-data-csum only decoding can notice.
    by_alg = {}
    for bytenr, alg in sorted(compressed_encrypted_extents(run, img).items()):
        by_alg.setdefault(alg, bytenr)
    extents = sorted(by_alg.values())
    assert len(extents) == 3, by_alg
    image = bo.Image(str(img))
    for bytenr in extents:
        phys = image.phys(bytenr)[0]     # data is SINGLE: one copy
        with open(img, "r+b") as f:
            f.seek(phys + 5)
            b = f.read(1)
            f.seek(phys + 5)
            f.write(bytes([b[0] ^ 0x5a]))
    image.close()
    res = run("--format", "json", "check", "--key-file", str(key), str(img))
    assert res.returncode == 1, res.stdout + res.stderr
    probs = [p for p in json.loads(res.stdout)["problems"]
             if p["code"] == "COMPRESSED_DECODE_BAD"]
    assert sorted({p["bytenr"] for p in probs}) == extents, probs

"""inspect dump-super against btrfs-progs 6.14 `inspect-internal dump-super`.

stdout must be byte-identical (dump-super has no encryption additions: bit 15
prints as "unknown flag: 0x8000" in both).  A damaged copy (bad magic or csum
mismatch) additionally gives one ERROR line on stderr and exit code 3.  The
reference is the bookworm-backports package that tools/progs-6.14 fetches
(EXTCRYPT_PROGS614, see tests/lib/progs614.py); without it the comparisons
skip.
"""

import json
import struct
import subprocess

import pytest

import progs614

OPTIONS = [(), ("-f",), ("--full",), ("-a",), ("--all", "-f"), ("-s", "0"), ("--super", "1"),
           ("-s", "1", "-f"), ("--bytenr", "65536")]


def ours(bin, *args, fmt=None):
    cmd = [str(bin)]
    if fmt:
        cmd += ["--format", fmt]
    cmd += ["inspect", "dump-super", *[str(a) for a in args]]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def progs(*args):
    return progs614.run("dump-super", *args, timeout=60).stdout


def error_lines(stderr):
    return [l for l in stderr.split(b"\n") if l.startswith(b"ERROR:")]


@pytest.mark.parametrize("opts", OPTIONS, ids=[" ".join(o) or "default" for o in OPTIONS])
def test_mkfs_images(bin, mkfs_image, opts):
    res = ours(bin, *opts, mkfs_image)
    assert res.returncode == 0, res.stderr
    assert res.stderr == b""
    assert res.stdout == progs(*opts, mkfs_image)


@pytest.mark.kernel
@pytest.mark.parametrize("opts", [(), ("-f",), ("-a", "-f")])
def test_kernel_images(bin, kernel_image, opts):
    res = ours(bin, *opts, kernel_image)
    assert res.returncode == 0, res.stderr
    assert res.stdout == progs(*opts, kernel_image)


def test_mirror_beyond_end(bin, make_mkfs_image):
    img = make_mkfs_image("crc32c", 16384)      # 160 MiB: copies 0 and 1 only
    res = ours(bin, "-s", "2", img)
    assert res.stdout == progs("-s", "2", img) == b""
    assert res.returncode == 3 and len(error_lines(res.stderr)) == 1
    res = ours(bin, "--all", img)               # the missing copy is just skipped
    assert res.returncode == 0
    assert res.stdout == progs("--all", img)


def _patch(path, off, data):
    with open(path, "r+b") as fh:
        fh.seek(off)
        fh.write(data)


def test_flags_and_bad_csum(bin, make_mkfs_image, copy_image):
    """Every flag word with known and unknown bits, a label with control
    bytes, an invalid csum type: text as progs, ERROR for the csum."""
    img = copy_image(make_mkfs_image("xxhash", 4096))
    sb = 65536
    _patch(img, sb + 0x38, struct.pack("<Q", 0x11e00000003))
    _patch(img, sb + 0xb4, struct.pack("<Q", 0x3f))
    _patch(img, sb + 0xbc, struct.pack("<Q", 0x3ffff))
    _patch(img, sb + 0x12b, b"lab\x01el\xff\x00")
    for opts in ((), ("-f",)):
        res = ours(bin, *opts, img)
        assert res.stdout == progs(*opts, img)
        assert res.returncode == 3 and len(error_lines(res.stderr)) == 1
    _patch(img, sb + 0xc4, struct.pack("<H", 9))           # unknown csum type
    _patch(img, sb + 0xb4, struct.pack("<Q", 0x30))
    _patch(img, sb + 0xbc, struct.pack("<Q", 0x2000 | 0x8000))
    _patch(img, sb + 0x38, struct.pack("<Q", 1 << 40))
    res = ours(bin, img)
    assert res.stdout == progs(img)
    # 6.14 names EXTENT_TREE_V2 (6.2 did not); the ENCRYPT bit stays unknown
    assert b"\t\t\t( EXTENT_TREE_V2 |\n\t\t\t  unknown flag: 0x8000 )\n" in res.stdout
    assert res.returncode == 3


def test_metadata_uuid_and_sys_array(bin, make_mkfs_image, copy_image):
    img = copy_image(make_mkfs_image("sha256", 65536))
    sb = 65536
    with open(img, "rb") as fh:
        fh.seek(sb + 0xbc)
        incompat = struct.unpack("<Q", fh.read(8))[0]
    _patch(img, sb + 0xbc, struct.pack("<Q", incompat | (1 << 10)))
    _patch(img, sb + 0x23b, bytes(range(16)))
    assert ours(bin, "-f", img).stdout == progs("-f", img)
    # a sys_chunk_array that is too short for its chunk, then too large
    with open(img, "rb") as fh:
        fh.seek(sb + 0xa0)
        size = struct.unpack("<I", fh.read(4))[0]
    _patch(img, sb + 0xa0, struct.pack("<I", size - 7))
    res = ours(bin, "-f", img)
    assert res.stdout == progs("-f", img)
    assert res.returncode == 3
    _patch(img, sb + 0xa0, struct.pack("<I", 4000))
    res = ours(bin, "-f", img)
    assert res.stdout == progs("-f", img)


def test_bad_magic(bin, make_mkfs_image, copy_image):
    img = copy_image(make_mkfs_image("blake2", 16384))
    _patch(img, 65536 + 0x40, b"\0" * 8)
    res = ours(bin, img)
    assert res.stdout == progs(img)
    assert res.returncode == 3 and len(error_lines(res.stderr)) == 1
    res = ours(bin, "-F", img)
    assert res.stdout == progs("-F", img)
    assert res.returncode == 3
    res = ours(bin, "-a", img)                  # copy 1 is fine, still exit 3
    assert res.stdout == progs("-a", img)
    assert res.returncode == 3


def test_truncated_image(bin, tmp_path):
    img = tmp_path / "short.img"
    img.write_bytes(b"\0" * (65536 + 100))
    res = ours(bin, img)
    assert res.returncode == 3 and len(error_lines(res.stderr)) == 1


def test_json(bin, make_mkfs_image):
    img = make_mkfs_image("blake2", 4096)
    res = ours(bin, "--all", "--full", img, fmt="json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["__header"]["version"] == "1"
    sbs = doc["superblocks"]
    assert [s["super-bytenr"] for s in sbs] == [65536, 64 * 1024 * 1024]
    s = sbs[0]
    assert s["csum-type-name"] == "blake2b" and s["csum-match"] is True
    assert s["nodesize"] == 4096 and s["dev-item"]["devid"] == 1
    assert s["backup-roots"] and s["sys-chunk-array-hex"]
    text = ours(bin, img).stdout.decode()
    assert ("generation\t\t%d\n" % s["generation"]) in text


def test_usage(bin, make_mkfs_image):
    img = make_mkfs_image("crc32c", 16384)
    assert ours(bin, "-s", "x", img).returncode == 2
    assert ours(bin).returncode == 2
    assert ours(bin, "/nonexistent").returncode == 3

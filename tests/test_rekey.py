"""`rekey` (issue 18, "Must hold"), judged by oracles we did not write.

1. Round trip.  mkfs --rootdir images (a representative subset of the 4
   csum types x 3 nodesizes; the rest of the matrix is `slow`) and, as root,
   a kernel-made image: `encrypt` with key A, `rekey` A -> B, then
     * our `check --check-data-csum --key-file B` clean; `check --key-file A`
       is a key error (exit 4);
     * `restore --key-file B` equals the source tree;
     * `decrypt --key-file B` gives an image that `btrfs check
       --check-data-csum` (btrfs-progs, both modes) accepts and that equals
       the original item by item (encrypt_ref's reader); as root, a ro loop
       mount + scrub is clean and the kernel manifest equals the original's.
2. Independent proof.  encrypt_ref.verify_encrypted (written from
   Documentation/format.rst only) recomputes from the plaintext and key B
   every extent, name, symlink payload, inode and extent context and csum of
   the rekeyed image; no inode or extent context names key A; every nonce
   after the rekey differs from every nonce before.
3. No plaintext on disk at any moment: the data, names and symlink targets
   of the marker image carry unique markers; every write `rekey` makes is
   recorded (EXTCRYPT_WRITE_LOG of the fault-injection build) and no written
   buffer holds a marker.  After the rekey, no sector of the old ciphertext
   (recorded before) is anywhere in the image file; with --no-wipe some are
   (informational), and the image is consistent either way.
Refusals: the same key twice, no new key, a wrong old key (image
byte-identical), both keys from stdin, --new-key-file on encrypt; --dry-run
changes nothing; a second run is a no-op; --padding gives a new policy.

The crash sweep and `check` with both keys: test_rekey_crash.py.
"""

import hashlib
import json
import os
import stat
import struct
from pathlib import Path

import pytest

import encrypt_ref as R
import fixtures
from conftest import CSUMS, NODESIZES
from test_encrypt import (KEY_A, KEY_B, build_kernel_image, compare_plain, convert,
                          image_digest, kernel_judge, make_marker_tree, must, our_check,
                          progs_check, ro_mount, tree_content, write_key)
from conftest import root_skip_reason

KEY_C = hashlib.sha512(b"btrfs-extcrypt rekey test key C").digest()
FAST = [("crc32c", 16384), ("xxhash", 4096), ("blake2", 65536)]
SLOW = [(c, n) for c in CSUMS for n in NODESIZES if (c, n) not in FAST]


@pytest.fixture(scope="module")
def keys3(tmp_path_factory):
    d = tmp_path_factory.mktemp("rkeys")
    return (write_key(d / "a.key", KEY_A), write_key(d / "b.key", KEY_B),
            write_key(d / "c.key", KEY_C))


# ---- helpers shared with test_rekey_crash.py -------------------------------

def key_state(image):
    """Key identifiers and nonces of every inode and extent context:
    (inode key ids, extent key ids, inode nonces, extent nonces)."""
    ik, ek, inn, en = set(), set(), [], []
    with R.ImageReader(str(image)) as img:
        for t in img.fs_tree_ids():
            fs = R.FsTree(img.tree_items(t))
            for ino in fs.inodes():
                c = fs.inode_ctx(ino)
                if c is not None:
                    ctx = R.parse_inode_ctx(c)
                    ik.add(bytes(ctx.key_id))
                    inn.append(bytes(ctx.nonce))
                for _off, d in fs.extent_ctxs(ino).items():
                    ctx = R.parse_extent_ctx(d)
                    ek.add(bytes(ctx.key_id))
                    en.append(bytes(ctx.nonce))
    return ik, ek, inn, en


def cipher_sectors(image):
    """Every non-zero sector of every encrypted data extent of the image."""
    out = set()
    with R.ImageReader(str(image)) as img:
        ss = img.sectorsize
        done = set()
        for t in img.fs_tree_ids():
            fs = R.FsTree(img.tree_items(t))
            for ino in fs.inodes():
                for _off, fe in fs.extents(ino):
                    if fe.type == 0 or not fe.encryption or not fe.disk_bytenr or \
                            fe.disk_bytenr in done:
                        continue
                    done.add(fe.disk_bytenr)
                    data = img.read_logical(fe.disk_bytenr, fe.disk_num_bytes)
                    for i in range(0, len(data), ss):
                        s = bytes(data[i:i + ss])
                        if s.count(0) != len(s):
                            out.add(s)
    return out, ss


def sectors_found(image, sectors, ss):
    """How many of sectors appear, sector-aligned, in the image file."""
    found = 0
    with open(image, "rb") as f:
        while True:
            blk = f.read(ss * 256)
            if not blk:
                break
            for i in range(0, len(blk), ss):
                if blk[i:i + ss] in sectors:
                    found += 1
    return found


def read_write_log(path):
    """[(offset, bytes or None)] of an EXTCRYPT_WRITE_LOG file."""
    out = []
    data = Path(path).read_bytes() if Path(path).exists() else b""
    pos = 0
    while pos < len(data):
        off, n = struct.unpack_from("<QQ", data, pos)
        pos += 16
        out.append((off, data[pos:pos + n] if n else None))
        pos += n
    return out


def tree_files(base):
    """{relative path: (kind, bytes or target)} of a directory tree."""
    out = {}
    base = os.fsencode(str(base))
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, base)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[rel] = ("file", hashlib.sha256(f.read()).hexdigest())
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None)
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def assert_restore_equals(run, image, keyfile, tree, out):
    res = run("restore", "--key-file", keyfile, image, out, timeout=300)
    must(res, "restore with the new key")
    want, got = tree_files(tree), tree_files(out)
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    assert not diff, "restore differs from the source tree at %d paths: %r" % (len(diff),
                                                                            diff[:20])


def rekey(run, image, old, new, *extra, env=None):
    return convert(run, "rekey", image, old, "--new-key-file", new, *extra, env=env,
                   timeout=300)


def assert_rekeyed(orig, img, content, before):
    """The independent proof under key B, no context under A, fresh nonces."""
    # rekey may allocate chunks: each image's own chunk map (encrypt_ref's reader)
    st, problems = R.verify_encrypted(orig, img, KEY_B, content)
    assert not problems, "ciphertext proof under key B found %d problems:\n%s" % (
        len(problems), "\n".join(problems[:40]))
    assert st["extents"] == 0 or st["csums_checked"] > 0
    ik, ek, inn, en = key_state(img)
    ida, idb = R.key_identifier(KEY_A), R.key_identifier(KEY_B)
    assert ida not in ik and ida not in ek, "a context still names key A"
    assert ik <= {idb} and ek <= {idb}, (ik, ek)
    old = set(before[2]) | set(before[3])
    reused = old & (set(inn) | set(en))
    assert not reused, "%d nonces of before the rekey are used again" % len(reused)
    return st


# ---- 1 + 2: round trip and proof ------------------------------------------

def _roundtrip(run, fsimg, copy_image, keys3, tmp_path, is_root):
    ka, kb, _ = keys3
    orig = fsimg.path
    img = copy_image(orig, "rk.img")
    must(convert(run, "encrypt", img, ka)[0], "encrypt")
    before = key_state(img)
    res, doc = rekey(run, img, ka, kb, "--threads", "2")
    must(res, "rekey")
    assert doc["operation"] == "rekey" and doc["inodes"] > 0 and doc["commits"] >= 1, doc
    our_check(run, img, "--check-data-csum", "--key-file", kb)
    res = our_check(run, img, "--key-file", ka, expect=4)
    assert "wrong key" in res.stderr
    st = assert_rekeyed(orig, img, tree_content(fsimg.tree), before)
    assert doc["inodes"] == st["inodes"], (doc, st)
    assert_restore_equals(run, img, kb, fsimg.tree, tmp_path / "out")
    must(convert(run, "decrypt", img, kb)[0], "decrypt with the new key")
    assert not R.ImageReader(str(img)).incompat & R.INCOMPAT_ENCRYPT
    progs_check(img)
    our_check(run, img, "--check-data-csum")
    diffs = compare_plain(orig, img)
    assert not diffs, "decrypted image differs from the original:\n" + "\n".join(diffs[:40])
    if is_root:
        kernel_judge(orig, img, tmp_path)


@pytest.mark.parametrize("csum,nodesize", FAST, ids=["%s-%d" % p for p in FAST])
def test_rekey_roundtrip_mkfs(run, make_mkfs_image, copy_image, keys3, tmp_path, is_root,
                              csum, nodesize):
    _roundtrip(run, make_mkfs_image(csum, nodesize), copy_image, keys3, tmp_path, is_root)


@pytest.mark.slow  # the rest of the csum x nodesize matrix
@pytest.mark.parametrize("csum,nodesize", SLOW, ids=["%s-%d" % p for p in SLOW])
def test_rekey_roundtrip_mkfs_matrix(run, make_mkfs_image, copy_image, keys3, tmp_path, is_root,
                                     csum, nodesize):
    _roundtrip(run, make_mkfs_image(csum, nodesize), copy_image, keys3, tmp_path, is_root)


@pytest.mark.kernel
def test_rekey_roundtrip_kernel(run, keys3, tmp_path):
    """A kernel-made image (holes, prealloc, zlib/lzo/zstd, reflinks,
    snapshots, nested subvolumes, xattrs, hard links, long names): encrypt,
    rekey, proof under B, check, decrypt with B, btrfs check, kernel
    manifest and scrub equal to the original's."""
    reason = root_skip_reason()
    if reason:
        pytest.skip(reason)
    ka, kb, _ = keys3
    image, marks, _man = build_kernel_image(tmp_path / "k", "crc32c", 16384)
    img = tmp_path / "k.img"
    fixtures.sparse_copy(image, img)
    must(convert(run, "encrypt", img, ka)[0], "encrypt")
    before = key_state(img)
    res, doc = rekey(run, img, ka, kb)
    must(res, "rekey of a kernel-made image")
    our_check(run, img, "--check-data-csum", "--key-file", kb)
    our_check(run, img, "--key-file", ka, expect=4)
    with ro_mount(image, tmp_path / "mnt-src") as (m, _dev, _mark):
        st = assert_rekeyed(image, img, tree_content(m), before)
    print("kernel image rekeyed: %d compressed, %d shared extents; %s"
          % (st["compressed_extents"], st["shared_extents"],
             {k: doc[k] for k in ("inodes", "extents", "bytes", "commits")}))
    assert st["compressed_extents"] > 0 and st["shared_extents"] > 0, st
    must(convert(run, "decrypt", img, kb)[0], "decrypt")
    progs_check(img)
    diffs = compare_plain(image, img)
    assert not diffs, "\n".join(diffs[:40])
    kernel_judge(image, img, tmp_path)


# ---- 3: no plaintext on disk, old ciphertext wiped ------------------------

@pytest.fixture(scope="module")
def rk_marker_image(tmp_path_factory):
    work = tmp_path_factory.mktemp("rkmarkers")
    tree = work / "tree"
    marks = make_marker_tree(tree, seed=41)
    fixtures.make_sample_tree(tree / "sample", seed=5, big_mib=1, dir_entries=50)
    image = fixtures.mkfs(work / "markers.img", tree, nodesize=4096, size_mib=128)
    return image, tree, marks


def test_rekey_writes_no_plaintext_and_wipes_old_ciphertext(run, rk_marker_image, copy_image,
                                                            keys3, tmp_path):
    ka, kb, _ = keys3
    image, tree, marks = rk_marker_image
    img = copy_image(image, "m.img")
    must(convert(run, "encrypt", img, ka)[0], "encrypt")
    old, ss = cipher_sectors(img)
    assert sectors_found(img, old, ss) == len(old)
    log = tmp_path / "writes.log"
    res, doc = rekey(run, img, ka, kb, env={"EXTCRYPT_WRITE_LOG": str(log)})
    must(res, "rekey")
    writes = read_write_log(log)
    data = [(o, b) for o, b in writes if b is not None]
    total = sum(len(b) for _o, b in data)
    assert total >= doc["bytes"], "the write log misses writes (%d bytes logged, %d rekeyed)" % (
        total, doc["bytes"])
    hits = [(o, x) for o, b in data for x in marks if x in b]
    assert not hits, "rekey wrote plaintext markers: %r" % hits[:10]
    left = sectors_found(img, old, ss)
    print("%d writes, %d bytes, %d holes punched; %d old ciphertext sectors, %d left; "
          "wiped-bytes %d" % (len(writes), total, len(writes) - len(data), len(old), left,
                              doc["wiped-bytes"]))
    assert left == 0, "%d of %d old ciphertext sectors are still in the image" % (left, len(old))
    assert_rekeyed(image, img, tree_content(tree), ([], [], [], []))
    our_check(run, img, "--check-data-csum", "--key-file", kb)


def test_rekey_no_wipe(run, rk_marker_image, copy_image, keys3):
    ka, kb, _ = keys3
    image, tree, _marks = rk_marker_image
    img = copy_image(image, "nw.img")
    must(convert(run, "encrypt", img, ka)[0], "encrypt")
    old, ss = cipher_sectors(img)
    res, doc = rekey(run, img, ka, kb, "--no-wipe")
    must(res, "rekey --no-wipe")
    assert doc["wiped-bytes"] == 0
    left = sectors_found(img, old, ss)
    print("--no-wipe: %d of %d old ciphertext sectors left in free space (informational)"
          % (left, len(old)))
    our_check(run, img, "--check-data-csum", "--key-file", kb)
    assert_rekeyed(image, img, tree_content(tree), ([], [], [], []))


# ---- options and refusals -------------------------------------------------

def _encrypted_small(run, make_mkfs_image, copy_image, ka, name="s.img"):
    fsimg = make_mkfs_image("crc32c", 16384)
    img = copy_image(fsimg.path, name)
    must(convert(run, "encrypt", img, ka)[0], "encrypt")
    return fsimg, img


def test_rekey_refusals(run, make_mkfs_image, copy_image, keys3):
    ka, kb, kc = keys3
    _fsimg, img = _encrypted_small(run, make_mkfs_image, copy_image, ka)
    digest = image_digest(img)
    res = run("rekey", "--key-file", ka, "--new-key-file", ka, img)
    assert res.returncode == 4 and "must differ" in res.stderr, res.stderr
    res = run("rekey", "--key-file", ka, img)
    assert res.returncode == 2 and "new key" in res.stderr, res.stderr
    res = run("rekey", "--key-file", kc, "--new-key-file", kb, img)
    assert res.returncode == 4 and "another master key" in res.stderr, res.stderr
    res = run("rekey", "--key-file", "-", "--new-key-file", "-", img, input=KEY_A + KEY_B)
    assert res.returncode == 2 and "standard input" in res.stderr, res.stderr
    res = run("rekey", "--key-file", ka, "--new-key-file", kb, "--new-key-fd", "0", img)
    assert res.returncode == 2
    res = run("encrypt", "--key-file", ka, "--new-key-file", kb, img)
    assert res.returncode == 2 and "--new-key-file" in res.stderr, res.stderr
    assert res.stderr.count("ERROR:") == 1, res.stderr
    assert image_digest(img) == digest, "a refused rekey changed the image"


def test_rekey_dry_run_stdin_and_rerun(run, make_mkfs_image, copy_image, keys3):
    ka, kb, _ = keys3
    _fsimg, img = _encrypted_small(run, make_mkfs_image, copy_image, ka)
    digest = image_digest(img)
    res, doc = rekey(run, img, ka, kb, "--dry-run")
    must(res, "dry run")
    assert doc["dry-run"] and doc["inodes"] > 0 and doc["commits"] == 0, doc
    assert image_digest(img) == digest, "--dry-run changed the image"
    # the new key from standard input, the old from a file
    res = run("--format", "json", "rekey", "--key-file", ka, "--new-key-file", "-", img,
              input=KEY_B, timeout=300)
    must(res, "rekey with the new key on stdin")
    first = json.loads(res.stdout)
    assert first["inodes"] == doc["inodes"], (first, doc)
    res, again = rekey(run, img, ka, kb)
    must(res, "second rekey")
    assert again["inodes"] == 0 and again["commits"] == 0, again
    res, dry = rekey(run, img, ka, kb, "--dry-run")
    must(res)
    assert dry["inodes"] == 0, dry
    our_check(run, img, "--check-data-csum", "--key-file", kb)


def test_rekey_new_padding(run, make_mkfs_image, copy_image, keys3):
    """--padding 4 gives every rekeyed inode the new policy (flags 0)."""
    ka, kb, _ = keys3
    fsimg, img = _encrypted_small(run, make_mkfs_image, copy_image, ka)
    must(rekey(run, img, ka, kb, "--padding", "4")[0], "rekey --padding 4")
    st, problems = R.verify_encrypted(fsimg.path, img, KEY_B, tree_content(fsimg.tree),
                                      flags=0)
    assert not problems, "\n".join(problems[:40])
    our_check(run, img, "--check-data-csum", "--key-file", kb)


def test_check_with_both_keys_midway(run, make_mkfs_image, copy_image, keys3):
    """A rekey cut between commits: `check` with both keys is clean and
    notes REKEY_IN_PROGRESS with counts; with the old key alone the entries
    whose inode is under the other key are POLICY_MISMATCH errors (the
    kernel refuses them); the re-run finishes and check with B is clean."""
    ka, kb, kc = keys3
    fsimg, img = _encrypted_small(run, make_mkfs_image, copy_image, ka)
    env = {"EXTCRYPT_BATCH_BYTES": "200000"}
    res, doc = rekey(run, img, ka, kb, "--dry-run")
    found = False
    for cut in (40, 80, 160, 320):
        trial = copy_image(img, "cut.img")
        res = run("rekey", "--key-file", ka, "--new-key-file", kb, trial,
                  env=dict(env, EXTCRYPT_FAIL_AT=str(cut)))
        if res.returncode == 0:
            break
        assert res.returncode == 1, res.stderr
        ik, _ek, _in, _en = key_state(trial)
        if len(ik) < 2:
            continue
        found = True
        res = run("--format", "json", "check", "--key-file", ka, "--key-file", kb, trial)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        codes = [p["code"] for p in json.loads(res.stdout)["problems"]]
        assert "REKEY_IN_PROGRESS" in codes and "POLICY_MISMATCH" not in codes, codes
        res = run("check", "--key-file", kb, "--key-file", ka, "--key-file", kc, trial)
        assert res.returncode == 0, res.stderr[-2000:]
        res = run("check", "--key-file", ka, trial)
        if "POLICY_MISMATCH" in res.stdout + res.stderr:
            assert res.returncode == 1
        res = run("check", "--key-file", kc, trial)
        assert res.returncode == 4, res.stderr
        must(run("rekey", "--key-file", ka, "--new-key-file", kb, trial, env=env), "re-run")
        our_check(run, trial, "--check-data-csum", "--key-file", kb)
        assert_rekeyed(fsimg.path, trial, tree_content(fsimg.tree), ([], [], [], []))
        break
    assert found, "no cut left the image with inodes under both keys"
    res = run("check", "--key-file", ka, "--key-file", ka, img)
    assert res.returncode == 4 and "must differ" in res.stderr, res.stderr

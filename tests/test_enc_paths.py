"""Paths through encrypted directories (issue 15 point 2).

Every option or argument that names a path inside an image (`inspect file`,
`reflink` SRC/DST and `--create`, `restore --path`, `encrypt`/`decrypt
--path`) goes through encrypted directories: with the key by plaintext
names, with or without it by the kernel's no-key names.  The oracles are
independent of the tool: the expected inode of a plaintext path comes from
decrypting the stored names in Python (tests/lib/encrypt_ref.py), the no-key
names are computed in Python from the stored ciphertext (base64url of eight
zero bytes and the ciphertext, or its first 149 bytes and the SHA-256 of the
rest), and a reflinked file is judged, after `decrypt`, by stock `btrfs
check --check-data-csum` and by reading its bytes with the Python reader.
"""

import base64
import hashlib
import json
import os
import random

import pytest

import encrypt_ref as er
import fixtures

KEY = bytes(range(64))
WRONG = bytes(range(64, 128))
LONG = "L" * 200                     # ciphertext of 224 bytes: the hashed no-key form
UTF = "ünïcødé dir"
TARGETS = ("/a/b/c/f", "/a/b", "/a/" + LONG, "/a/sp ace/" + UTF + "/x y", "/a/f")


def _key(path, data):
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory, run):
    d = tmp_path_factory.mktemp("enc-paths")
    tree = d / "tree"
    (tree / "a" / "b" / "c").mkdir(parents=True)
    (tree / "a" / "sp ace" / UTF).mkdir(parents=True)
    (tree / "a" / "b" / "c" / "f").write_bytes(b"deep\n")
    (tree / "a" / LONG).write_bytes(b"long name\n")
    (tree / "a" / "sp ace" / UTF / "x y").write_bytes(b"spaces\n")
    env = type("Env", (), {})()
    env.data = fixtures._rng_bytes(random.Random(15), 200 * 1024)
    (tree / "a" / "f").write_bytes(env.data)
    fixtures._set_times(tree)
    env.dir = d
    env.plain = fixtures.mkfs(d / "plain.img", tree, size_mib=128)
    env.key = _key(d / "k", KEY)
    env.wrong = _key(d / "wrong", WRONG)
    env.enc = d / "enc.img"
    fixtures.sparse_copy(env.plain, env.enc)
    res = run("encrypt", "--key-file", env.key, env.enc, timeout=120)
    assert res.returncode == 0, res.stderr
    img = er.ImageReader(env.enc)
    env.fs = er.FsTree(img.tree_items(5))
    return env


def _nokey(ct):
    raw = bytes(8) + (ct if len(ct) <= 149 else ct[:149] + hashlib.sha256(ct[149:]).digest())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _walk(fs, path):
    """(inode, no-key path) of a plaintext path, by decrypting stored names in Python."""
    ino, nokey = 256, []
    for comp in path.strip("/").split("/"):
        ctx = er.parse_inode_ctx(fs.inode_ctx(ino))
        dkey = er.per_file_key(KEY, ctx.nonce)
        for e in fs.dir_index(ino).values():
            if er.decrypt_name(dkey, e.name)[0] == comp.encode():
                ino = e.location[0]
                nokey.append(_nokey(e.name))
                break
        else:
            raise AssertionError("%s: no entry %r" % (path, comp))
    return ino, "/" + "/".join(nokey)


def _inspect(run, env, path, *key, image=None):
    res = run("--format", "json", "inspect", "file", *key, path, image or env.enc)
    assert res.returncode == 0, (path, res.stderr)
    return json.loads(res.stdout)


@pytest.mark.parametrize("path", TARGETS)
def test_plaintext_path_with_key(run, env, path):
    doc = _inspect(run, env, path, "--key-file", env.key)
    ino, _ = _walk(env.fs, path)
    assert doc["inode"] == ino and doc["path"] == path, doc


@pytest.mark.parametrize("path", TARGETS)
def test_nokey_path(run, env, path):
    """The no-key form resolves to the same inode, with and without the key."""
    ino, nokey = _walk(env.fs, path)
    doc = _inspect(run, env, nokey)
    assert doc["inode"] == ino and doc["path"] == nokey, doc
    doc = _inspect(run, env, nokey, "--key-file", env.key)
    assert doc["inode"] == ino and doc["path"] == path, doc


def test_restore_prints_the_same_nokey_names(run, env):
    out = env.dir / "out-nokey"
    res = run("restore", env.enc, out, timeout=120)
    assert res.returncode == 0, res.stderr
    for path in ("/a/b/c", "/a/sp ace/" + UTF):
        _, nokey = _walk(env.fs, path)
        assert (out / nokey.lstrip("/")).is_dir(), nokey
    # A skipped file is named by its no-key path in the warning.
    _, nokey = _walk(env.fs, "/a/" + LONG)
    assert nokey in res.stderr


def test_plaintext_path_without_key_not_found(run, env):
    res = run("inspect", "file", "/a/b/c/f", env.enc)
    assert res.returncode == 1 and "no such file" in res.stderr


def test_restore_path_subtree(run, env):
    out = env.dir / "out-sub"
    res = run("restore", "--key-file", env.key, "--path", "/a/b", env.enc, out, timeout=120)
    assert res.returncode == 0, res.stderr
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert got == ["b", "b/c", "b/c/f"], got
    assert (out / "b" / "c" / "f").read_bytes() == b"deep\n"
    # By its no-key path, with the key: the same subtree, plaintext inside.
    _, nokey = _walk(env.fs, "/a/b")
    out2 = env.dir / "out-sub-nokey"
    res = run("restore", "--key-file", env.key, "--path", nokey, env.enc, out2, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (out2 / nokey.rsplit("/", 1)[1] / "c" / "f").read_bytes() == b"deep\n"


def test_reflink_create_in_encrypted_dir(run, env, copy_image, btrfs_check):
    img = copy_image(env.enc, "reflink.img")
    res = run("reflink", "--key-file", env.key, "--create", "/a/f", "/a/g", img)
    assert res.returncode == 0, res.stderr
    res = run("check", "--check-data-csum", "--key-file", env.key, img, timeout=120)
    assert res.returncode == 0 and "Result: clean" in res.stdout, res.stdout + res.stderr
    out = env.dir / "out-reflink"
    res = run("restore", "--key-file", env.key, img, out, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (out / "a" / "g").read_bytes() == (out / "a" / "f").read_bytes() == env.data
    # The new entry is stored as the kernel would: ciphertext name, 0x80, own context.
    fs = er.FsTree(er.ImageReader(img).tree_items(5))
    g, _ = _walk(fs, "/a/g")
    f, _ = _walk(fs, "/a/f")
    gctx, fctx = er.parse_inode_ctx(fs.inode_ctx(g)), er.parse_inode_ctx(fs.inode_ctx(f))
    assert gctx.key_id == fctx.key_id and gctx.nonce != fctx.nonce
    assert fs.inode(g).flags & 0x1000
    # Stock btrfs judges the decrypted image, and both files hold the data.
    res = run("decrypt", "--key-file", env.key, img, timeout=120)
    assert res.returncode == 0, res.stderr
    chk = btrfs_check(img, "--check-data-csum")
    assert chk.returncode == 0, chk.stdout + chk.stderr
    rd = er.ImageReader(img)
    fs = er.FsTree(rd.tree_items(5))
    names = {}
    for ino in fs.inodes():
        p = er.dir_path(fs, ino)
        if p in (b"a/f", b"a/g"):
            names[p] = er.file_plain_bytes(rd, fs, ino)
    assert names == {b"a/f": env.data, b"a/g": env.data}


def test_reflink_nokey_paths(run, env, copy_image):
    """Without the key: an existing destination by its no-key path."""
    img = copy_image(env.enc, "reflink-nokey.img")
    res = run("reflink", "--key-file", env.key, "--create", "/a/f", "/a/h", img)
    assert res.returncode == 0, res.stderr
    fs = er.FsTree(er.ImageReader(img).tree_items(5))
    _, src = _walk(fs, "/a/f")
    h, dst = _walk(fs, "/a/h")
    res = run("--format", "json", "reflink", src, dst, img)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["dst-inode"] == h
    res = run("reflink", "--create", src, "/a/nokey-new", img)
    assert res.returncode == 1 and "no such file" in res.stderr, res.stderr
    res = run("reflink", "--create", src, dst.rsplit("/", 1)[0] + "/new", img)
    assert res.returncode == 4 and "needs its key" in res.stderr, res.stderr


@pytest.mark.parametrize("command", ("inspect", "reflink", "reflink-create", "restore"))
def test_wrong_key_on_paths(run, env, copy_image, command):
    img = copy_image(env.enc, "wrong-%s.img" % command)
    before = img.read_bytes()
    args = {
        "inspect": ["inspect", "file", "/a/b/c/f"],
        "reflink": ["reflink", "/a/f", "/a/b/c/f"],
        "reflink-create": ["reflink", "--create", "/a/f", "/a/z"],
        "restore": ["restore", "--path", "/a/b"],
    }[command]
    tail = [img, env.dir / ("out-wrong-" + command)] if command == "restore" else [img]
    res = run(*args, "--key-file", env.wrong, *tail, timeout=120)
    assert res.returncode == 4, res.stderr
    assert "wrong key" in res.stderr and "clean" not in res.stdout
    assert img.read_bytes() == before


def test_decrypt_path_under_encrypted_parent_refused(run, env, copy_image):
    img = copy_image(env.enc, "dec-path.img")
    before = img.read_bytes()
    res = run("decrypt", "--key-file", env.key, "--path", "/a/b", img, timeout=120)
    assert res.returncode == 1 and "parent directory is encrypted" in res.stderr, res.stderr
    assert img.read_bytes() == before


def test_encrypt_decrypt_path_through_encrypted_parents(run, env, copy_image):
    """encrypt --path /a (plain top), then paths below /a resolve by plaintext
    name for encrypt (already encrypted: nothing to do) and decrypt --path /a
    (plain parent) by its name works and leaves a clean image."""
    img = copy_image(env.plain, "path-sel.img")
    res = run("encrypt", "--key-file", env.key, "--path", "/a", img, timeout=120)
    assert res.returncode == 0, res.stderr
    res = run("encrypt", "--key-file", env.key, "--path", "/a/sp ace/" + UTF, img, timeout=120)
    assert res.returncode == 0 and "Encrypted 0 inodes" in res.stderr, res.stderr
    res = run("decrypt", "--key-file", env.key, "--path", "/a/sp ace", img, timeout=120)
    assert res.returncode == 1 and "parent directory is encrypted" in res.stderr
    res = run("decrypt", "--key-file", env.key, "--path", "/a", img, timeout=120)
    assert res.returncode == 0, res.stderr
    res = run("check", "--check-data-csum", img, timeout=120)
    assert res.returncode == 0, res.stdout

"""Several keys wherever a key is read (issue 18): `restore`, `inspect file`
and `inspect resolve-logical` take `--key-file` up to 8 times, as `check`
does, and read each inode, directory name and data extent with the key its
fscrypt context names.

The image is a `rekey` A -> B cut between two commits (EXTCRYPT_BATCH_BYTES
and a write cut of the fault-injection build, as in
test_rekey.py test_check_with_both_keys_midway): some inodes are under A,
some under B.  The oracles are independent of the tool:
  * the source tree mkfs --rootdir copied (contents, modes, links, xattrs);
  * which inode is under which key: the inode contexts read in Python
    (tests/lib/encrypt_ref.py), key identifiers computed there from the raw
    keys; plaintext paths of the inodes from the original plain image
    (encryption and rekey keep inode numbers).
"""

import hashlib
import json
import os
import stat

import pytest

import encrypt_ref as R
import fixtures
from test_encrypt import FAULT_RE, KEY_A, KEY_B, convert, must, write_key
from test_rekey import KEY_C
from test_restore import compare, manifest

ENV = {"EXTCRYPT_BATCH_BYTES": "200000"}


def _key_of_inodes(image):
    """{ino: key identifier} of the encrypted inodes of tree 5 (Python reader)."""
    out = {}
    with R.ImageReader(str(image)) as img:
        fs = R.FsTree(img.tree_items(5))
        for ino in fs.inodes():
            c = fs.inode_ctx(ino)
            if c is not None:
                out[ino] = bytes(R.parse_inode_ctx(c).key_id)
    return out


@pytest.fixture(scope="module")
def mk(tmp_path_factory, run, make_mkfs_image):
    """A rekey A -> B cut with inodes under both keys, and what the oracles say."""
    d = tmp_path_factory.mktemp("multikey")
    env = type("Env", (), {})()
    env.ka, env.kb, env.kc = (write_key(d / "a.key", KEY_A), write_key(d / "b.key", KEY_B),
                              write_key(d / "c.key", KEY_C))
    env.ida, env.idb = R.key_identifier(KEY_A), R.key_identifier(KEY_B)
    fsimg = make_mkfs_image("crc32c", 16384)
    env.tree = fsimg.tree
    enc = d / "enc.img"
    fixtures.sparse_copy(fsimg.path, enc)
    must(convert(run, "encrypt", enc, env.ka)[0], "encrypt")
    probe = d / "probe.img"
    fixtures.sparse_copy(enc, probe)
    res = run("rekey", "--key-file", env.ka, "--new-key-file", env.kb, probe,
              env=dict(ENV, EXTCRYPT_FAIL_AT="1"))
    if res.returncode != 1 or not FAULT_RE.search(res.stderr):
        pytest.skip("binary built without fault injection (configure --enable-fault-injection)")
    # the cut that leaves the most inodes under the key that has fewer
    env.img, best = None, 0
    for cut in (40, 80, 160, 240, 320):
        trial = d / ("cut%d.img" % cut)
        fixtures.sparse_copy(enc, trial)
        res = run("rekey", "--key-file", env.ka, "--new-key-file", env.kb, trial,
                  env=dict(ENV, EXTCRYPT_FAIL_AT=str(cut)), timeout=300)
        if res.returncode == 0:
            break
        assert res.returncode == 1, res.stderr
        keys = _key_of_inodes(trial)
        n = min(sum(k == env.ida for k in keys.values()), sum(k == env.idb for k in keys.values()))
        if n > best:
            if env.img:
                os.unlink(env.img)
            env.img, env.key_of, best = trial, keys, n
        else:
            os.unlink(trial)
    if env.img is None:
        pytest.fail("no cut left the image with inodes of tree 5 under both keys")
    with R.ImageReader(str(fsimg.path)) as img:
        paths = R.inode_paths(img)
        fs = R.FsTree(img.tree_items(5))
        env.mode = {ino: fs.inode(ino).mode for ino in fs.inodes()}
    # plaintext paths (first link) of tree 5's inodes, and their directories
    env.path = {ino: p for (t, ino), p in paths.items() if t == 5}
    env.dir_of_path = {p: ino for ino, p in env.path.items()
                       if stat.S_ISDIR(env.mode[ino])}
    return env


def _files(env):
    """Regular files of tree 5 reached without crossing a subvolume: (ino, path)."""
    return [(ino, p) for ino, p in sorted(env.path.items())
            if stat.S_ISREG(env.mode[ino])]


def _chain_under(env, path, kid):
    """Whether every directory above path is plain or under key kid."""
    parts = path.split(b"/")[:-1]
    for i in range(len(parts) + 1):
        dino = env.dir_of_path.get(b"/".join(parts[:i])) if i else 256
        if dino is None:
            return False  # a subvolume on the way: not judged here
        if env.key_of.get(dino, kid) != kid:
            return False
    return True


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _restore(run, env, out, *keys, rc=0):
    args = ["--format", "json", "restore"]
    for k in keys:
        args += ["--key-file", k]
    res = run(*args, env.img, out, timeout=180)
    assert res.returncode == rc, res.stderr[-3000:]
    return res, json.loads(res.stdout) if res.stdout.strip() else None


def test_restore_both_keys_equals_source(run, mk, tmp_path):
    out = tmp_path / "both"
    res, doc = _restore(run, mk, out, mk.ka, mk.kb)
    assert doc["failed"] == 0 and doc["skipped"] == 0, doc
    assert "ERROR" not in res.stderr and "not given" not in res.stderr, res.stderr[-2000:]
    compare(manifest(mk.tree), manifest(out), ignore=("mtime",))
    # the keys in the other order: the same tree
    out2 = tmp_path / "both2"
    _restore(run, mk, out2, mk.kb, mk.ka)
    compare(manifest(out), manifest(out2))


@pytest.mark.parametrize("which", ["a", "b"])
def test_restore_one_key_restores_its_part(run, mk, tmp_path, which):
    key, kid, other = (mk.ka, mk.ida, mk.idb) if which == "a" else (mk.kb, mk.idb, mk.ida)
    out = tmp_path / which
    res, doc = _restore(run, mk, out, key)
    assert doc["failed"] == 0 and doc["skipped"] > 0, doc
    assert "under keys that were not given" in res.stderr, res.stderr[-2000:]
    skipped_lines = res.stderr.count("is encrypted and no key for it was given: skipped")
    assert skipped_lines == doc["skipped"], (skipped_lines, doc)
    got = {}
    for dirpath, _dirs, files in os.walk(os.fsencode(str(out))):
        for name in files:
            p = os.path.join(dirpath, name)
            if stat.S_ISREG(os.lstat(p).st_mode):
                got.setdefault(_sha(p), []).append(p)
    src = os.fsencode(str(mk.tree))
    ours = {_sha(os.path.join(src, p)) for ino, p in _files(mk) if mk.key_of.get(ino) == kid}
    judged = mine = theirs = 0
    for ino, p in _files(mk):
        under = mk.key_of.get(ino)
        want = _sha(os.path.join(src, p))
        if under == kid:
            mine += 1
            assert want in got, "%s (under this key) is not restored" % p
        elif under == other:
            theirs += 1
            if want not in ours:
                assert want not in got, "%s (under the other key) was restored" % p
        if _chain_under(mk, p, kid):
            judged += 1
            there = os.path.join(os.fsencode(str(out)), p)
            if under == other:
                assert not os.path.lexists(there), p
            else:
                assert _sha(there) == want, p
    # rekey starts at the top directory: paths are judged for the new key
    assert mine and theirs and (judged or kid == mk.ida), (mine, theirs, judged)


def _inspect(run, env, path, *keys):
    args = ["--format", "json", "inspect", "file"]
    for k in keys:
        args += ["--key-file", k]
    return run(*args, "/" + os.fsdecode(path), env.img)


def _pick(env, kid, mixed):
    """A regular file under kid whose directories are all under kid too, or
    (mixed) one whose directory is under the other key, if there is one."""
    cands = [(ino, p) for ino, p in _files(env) if env.key_of.get(ino) == kid]
    for ino, p in cands:
        parent = env.dir_of_path.get(p.rsplit(b"/", 1)[0]) if b"/" in p else 256
        if mixed and env.key_of.get(parent) not in (None, kid):
            return ino, p
    chained = [(ino, p) for ino, p in cands if _chain_under(env, p, kid)]
    return (chained or cands)[0]


@pytest.mark.parametrize("mixed", [False, True], ids=["any", "mixed"])
def test_inspect_file_both_keys(run, mk, mixed):
    for kid in (mk.ida, mk.idb):
        ino, p = _pick(mk, kid, mixed)
        for keys in ((mk.ka, mk.kb), (mk.kb, mk.ka)):
            res = _inspect(run, mk, p, *keys)
            assert res.returncode == 0, res.stderr
            doc = json.loads(res.stdout)
            assert doc["inode"] == ino and doc["path"] == "/" + p.decode(), doc
            assert doc["context"]["key-id"] == kid.hex(), doc["context"]
            for e in doc["extents"]:
                if e.get("context"):
                    assert e["context"]["key-id"] == kid.hex(), e


def test_inspect_file_key_errors(run, mk):
    """A set of keys none of which opens the inode (or a directory on its
    path) is a key error, as check's rule (no given key matches): a third
    unrelated key alone, or the other key alone; an unrelated key beside the
    right one is not."""
    ino, p = _pick(mk, mk.ida, False)
    for keys in ((mk.kc,), (mk.kb, mk.kc)):
        res = _inspect(run, mk, p, *keys)
        assert res.returncode == 4 and "wrong key" in res.stderr, (keys, res.stderr)
        assert res.stderr.count("ERROR:") == 1, res.stderr
        args = [a for k in keys for a in ("--key-file", k)]
        res = run("inspect", "file", *args, "--inode", ino, mk.img)
        assert res.returncode == 4 and "wrong key" in res.stderr, res.stderr
    res = run("inspect", "file", "--key-file", mk.kc, "--key-file", mk.ka, "--inode", ino,
              mk.img)
    assert res.returncode == 0, res.stderr
    bino, bp = _pick(mk, mk.idb, False)
    assert _chain_under(mk, bp, mk.idb)
    res = _inspect(run, mk, bp, mk.kc, mk.kb)
    assert res.returncode == 0 and json.loads(res.stdout)["inode"] == bino, res.stderr
    # check decides the same way
    assert run("check", "--key-file", mk.kc, mk.img).returncode == 4
    assert run("check", "--key-file", mk.kc, "--key-file", mk.kb, mk.img).returncode != 4


def test_resolve_logical_plaintext_paths(run, mk):
    with R.ImageReader(str(mk.img)) as img:
        fs = R.FsTree(img.tree_items(5))
        want = {}
        for ino, p in _files(mk):
            kid = mk.key_of.get(ino)
            if kid is None or kid in want:
                continue
            for _off, fe in fs.extents(ino):
                if fe.type != 0 and fe.disk_bytenr:
                    want[kid] = (fe.disk_bytenr, ino, p)
                    break
    assert set(want) == {mk.ida, mk.idb}, "no data extent under each key"
    for bytenr, ino, p in want.values():
        res = run("--format", "json", "inspect", "resolve-logical", "--key-file", mk.ka,
                  "--key-file", mk.kb, bytenr, mk.img)
        assert res.returncode == 0, res.stderr
        refs = json.loads(res.stdout)["references"]
        mine = [r for r in refs if r["root"] == 5 and r["inode"] == ino]
        assert mine and all(r["path"] == "/" + p.decode() for r in mine), (p, refs)
        res = run("inspect", "resolve-logical", "--key-file", mk.kb, "--key-file", mk.ka,
                  bytenr, mk.img)
        assert res.returncode == 0 and ("path /%s" % p.decode()) in res.stdout, res.stdout


def test_unrelated_key_alone_is_a_key_error(run, mk, tmp_path):
    res, _doc = _restore(run, mk, tmp_path / "c", mk.kc, rc=4)
    assert "wrong key" in res.stderr and res.stderr.count("ERROR:") == 1, res.stderr
    # beside the right keys it is not (as check: no given key matches is the error)
    res, doc = _restore(run, mk, tmp_path / "abc", mk.kc, mk.ka, mk.kb)
    assert doc["failed"] == 0 and doc["skipped"] == 0, doc


CMDS = {"check": ([], []), "restore": ([], ["OUT"]),
        "inspect-file": (["--inode", "256"], []), "resolve-logical": (["0"], [])}


@pytest.mark.parametrize("name", sorted(CMDS))
def test_same_key_twice_refused(run, mk, tmp_path, name):
    """As check refuses it: exit 4, one ERROR line saying the keys must differ."""
    cmd = name.replace("-", " ").split() if name == "inspect-file" else \
        ["inspect", name] if name == "resolve-logical" else [name]
    before, after = CMDS[name]
    after = [str(tmp_path / "out") if a == "OUT" else a for a in after]
    res = run(*cmd, "--key-file", mk.ka, "--key-file", mk.ka, *before, mk.img, *after)
    assert res.returncode == 4 and "must differ" in res.stderr, res.stderr
    assert res.stderr.count("ERROR:") == 1, res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cmd", ["encrypt", "decrypt", "rekey", "reflink"])
def test_single_key_commands_refuse_two(run, mk, cmd):
    """encrypt, decrypt, rekey and reflink stay single-key: a usage error,
    before the image is opened (a missing image would be exit 3)."""
    extra = {"rekey": ["--new-key-file", mk.kc], "reflink": ["/a", "/b"]}.get(cmd, [])
    res = run(cmd, "--key-file", mk.ka, "--key-file", mk.kb, *extra, "/nonexistent.img")
    assert res.returncode == 2, res.stderr


def test_check_required_path_with_both_keys(run, mk):
    """check's --require-encryption paths and message names go through the
    same codec: with both keys a path crossing directories under A and B
    resolves; with either key alone it is a key error."""
    def parent(p):
        return mk.dir_of_path.get(p.rsplit(b"/", 1)[0]) if b"/" in p else 256
    cands = [p for ino, p in _files(mk) if mk.key_of.get(ino) == mk.ida and
             mk.key_of.get(parent(p)) == mk.ida and b"," not in p]
    assert cands and mk.key_of[256] == mk.idb, "rekey starts at the top directory"
    opt = "--require-encryption=/" + os.fsdecode(cands[0])
    for keys in ((mk.ka, mk.kb), (mk.kb, mk.ka)):
        res = run("check", opt, "--key-file", keys[0], "--key-file", keys[1], mk.img)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    for key in (mk.ka, mk.kb):
        res = run("check", opt, "--key-file", key, mk.img)
        assert res.returncode == 4 and "wrong key" in res.stdout + res.stderr, res.stderr

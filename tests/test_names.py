"""One renderer for names in every output (issue 15 point 1).

An encrypted image whose plaintext names use every byte value 1-255 but
'/', escape sequences, newlines, tabs, malformed UTF-8, 255-byte names and
names whose ciphertext is long enough for the hashed no-key form.  Every
command runs on it with and without the key, in text and JSON:

- no output (stdout or stderr) holds a byte below 0x20 other than newline
  and tab, and every output is strict UTF-8; every JSON document decodes;
- without the key, names in encrypted directories are shown as the kernel's
  no-key names, never as ciphertext; with it, as the plaintext in the
  documented readable form (common/escape.h, Documentation/design.rst
  section 5);
- JSON gives the exact name when it is plain text, else the readable form
  with the exact bytes in a "*-hex" member beside it.

The oracles are independent of the tool: the mapping from plaintext names to
inodes and ciphertext comes from decrypting the stored names in Python
(tests/lib/encrypt_ref.py), no-key names are computed from the stored
ciphertext, and the readable form is derived from Python's own strict UTF-8
decoder and the btrfs-progs escapes.
"""

import base64
import hashlib
import json
import os
import shutil

import pytest

import btrfs_ondisk as bo
import encrypt_ref as er
import fixtures
from leafedit import Editor

KEY = bytes(range(64))
FT_ENCRYPTED = 0x80
SPECIALS = [b"\x1b[31mred\x1b[0m", b"new\nline", b"tab\there", b"\xff\xfe\xc0\x80bad",
            b"N" * 255, bytes(range(0x80, 0x80 + 100)) + "é".encode() * 50, b"\x01" * 255,
            "ünïcødé".encode(), b"back\\slash", b"c1\xc2\x85ctl", b"sp ace"]
NAMES = [bytes([b]) + b"x" + bytes([b]) for b in range(1, 256) if b != ord("/")] + SPECIALS
LINK_TARGET = b"target\x1b\n\xff"


def progs_escape(c):
    letters = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 27: "e",
               32: " ", 92: "\\"}
    if c in letters:
        return "\\" + letters[c]
    return "\\%03o" % c


def readable(name):
    """The readable form: well-formed UTF-8 characters kept but C0, DEL, C1
    and the backslash; every other byte escaped the btrfs-progs way."""
    out, i = [], 0
    while i < len(name):
        c = name[i]
        size = 1 if c < 0x80 else 2 if 0xc0 <= c < 0xe0 else 3 if 0xe0 <= c < 0xf0 else 4
        try:
            ch = name[i:i + size].decode("utf-8")
        except UnicodeDecodeError:
            ch = None
        if ch is not None and ch != "\\" and not (ord(ch) < 0x20 or 0x7f <= ord(ch) < 0xa0):
            out.append(ch)
            i += size
        else:
            out.append(progs_escape(c))
            i += 1
    return "".join(out)


def nokey(ct):
    raw = bytes(8) + (ct if len(ct) <= 149 else ct[:149] + hashlib.sha256(ct[149:]).digest())
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def assert_clean(what, data):
    """Strict UTF-8 and no control byte but newline and tab."""
    raw = data.encode("utf-8", "surrogateescape")
    raw.decode("utf-8", "strict")
    bad = [b for b in raw if b < 0x20 and b not in (9, 10)]
    assert not bad, (what, bad[:5], raw[:300])


def run_clean(run, *args, json_out=False, ok=(0,)):
    res = run(*args, timeout=300)
    assert res.returncode in ok, (args, res.returncode, res.stderr[-2000:])
    assert_clean((args, "stdout"), res.stdout)
    assert_clean((args, "stderr"), res.stderr)
    if json_out:
        json.loads(res.stdout.encode("utf-8", "surrogateescape").decode("utf-8", "strict"))
    return res


@pytest.fixture(scope="module")
def env(tmp_path_factory, run):
    d = tmp_path_factory.mktemp("names")
    tree = os.fsencode(d / "tree")
    os.makedirs(os.path.join(tree, b"d"))
    for n in NAMES:
        with open(os.path.join(tree, b"d", n), "wb") as f:
            f.write(n * (5000 // len(n) + 1))
    os.symlink(LINK_TARGET, os.path.join(tree, b"d", b"link"))
    os.makedirs(os.path.join(tree, b"sub\x1bdir"))
    with open(os.path.join(tree, b"sub\x1bdir", b"f\nx"), "wb") as f:
        f.write(b"inner")
    e = type("Env", (), {})()
    e.dir = d
    e.plain = fixtures.mkfs(d / "plain.img", os.fsdecode(tree), size_mib=200)
    e.key = d / "key"
    e.key.write_bytes(KEY)
    os.chmod(e.key, 0o600)
    e.enc = d / "enc.img"
    fixtures.sparse_copy(e.plain, e.enc)
    res = run("encrypt", "--key-file", e.key, e.enc, timeout=300)
    assert res.returncode == 0, res.stderr
    fs = er.FsTree(er.ImageReader(e.enc).tree_items(5))
    e.entries = {}      # plaintext path (bytes) -> (inode, no-key path)
    _map(fs, 256, b"", "", e.entries)
    e.d_ino = e.entries[b"/d"][0]
    # Every entry of /d loses its FT_ENCRYPTED bit: check reports each by name.
    e.bad = d / "bad.img"
    fixtures.sparse_copy(e.enc, e.bad)
    with Editor(e.bad) as ed:
        for key, _name, _child, t in ed.dir_entries(e.d_ino):
            ed.patch(bo.FS_TREE, key, 29, bytes([t & ~FT_ENCRYPTED]))
    return e


def _map(fs, ino, path, nk, out):
    ctx = er.parse_inode_ctx(fs.inode_ctx(ino))
    dkey = er.per_file_key(KEY, ctx.nonce)
    for ent in fs.dir_index(ino).values():
        name = er.decrypt_name(dkey, ent.name)[0]
        child = ent.location[0]
        out[path + b"/" + name] = (child, nk + "/" + nokey(ent.name))
        if fs.inode(child) and (fs.inode(child).mode & 0o170000) == 0o040000:
            _map(fs, child, path + b"/" + name, nk + "/" + nokey(ent.name), out)


def test_every_name_is_in_the_image(env):
    names = {p[len(b"/d/"):] for p in env.entries if p.startswith(b"/d/")}
    assert names == set(NAMES) | {b"link"}


KEYED = ("key", "nokey")
FORMATS = ("text", "json")


def _args(env, key, fmt, *cmd):
    args = ["--format", fmt] + list(cmd[:-1])
    if key == "key":
        args += ["--key-file", env.key]
    return args + [cmd[-1]]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", KEYED)
def test_check_reports_names_readably(run, env, key, fmt):
    """Every entry of /d is reported; its name is the plaintext's readable
    form with the key, its no-key name without it, never ciphertext."""
    res = run_clean(run, *_args(env, key, fmt, "check", "--check-data-csum", env.bad),
                    json_out=fmt == "json", ok=(1,))
    out = res.stdout + res.stderr
    if fmt == "json":
        out = " ".join(p["message"] for p in json.loads(res.stdout)["problems"])
    for n in NAMES:
        plain_form = readable(n)
        nk = env.entries[b"/d/" + n][1].rsplit("/", 1)[1]
        if key == "key":
            assert plain_form in out, (n, plain_form)
        else:
            assert nk in out, (n, nk)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", KEYED)
@pytest.mark.parametrize("cmd", ("check", "restore", "dump-tree", "dump-super"))
def test_whole_image_commands_are_clean(run, env, tmp_path, key, fmt, cmd):
    if cmd in ("dump-tree", "dump-super"):
        if key == "key":
            pytest.skip("dump-tree and dump-super take no key")
        run_clean(run, "--format", fmt, "inspect", cmd, env.enc, json_out=fmt == "json")
        return
    if cmd == "check":
        run_clean(run, *_args(env, key, fmt, "check", "--check-data-csum", env.enc),
                  json_out=fmt == "json")
        return
    out = tmp_path / "out"
    res = run_clean(run, *(_args(env, key, fmt, "restore", env.enc)[:-1] + [env.enc, out]),
                    json_out=fmt == "json")
    got = set(os.listdir(os.path.join(os.fsencode(out), b"d" if key == "key" else
                                      env.entries[b"/d"][1][1:].encode())))
    if key == "key":
        assert got == set(NAMES) | {b"link"}
        assert os.readlink(os.path.join(os.fsencode(out), b"d", b"link")) == LINK_TARGET
    else:
        # Files are skipped without their key (each named in a warning); the symlink is kept.
        nk = {env.entries[p][1].rsplit("/", 1)[1] for p in env.entries if p.startswith(b"/d/")}
        assert got and got <= {n.encode() for n in nk}
        for n in nk - {g.decode() for g in got}:
            assert n in res.stderr
    shutil.rmtree(out)


def _sample():
    return [b"/d/" + n for n in SPECIALS] + [b"/d/\x1bx\x1b", b"/d/\nx\n", b"/d/link",
                                              b"/sub\x1bdir", b"/sub\x1bdir/f\nx"]


@pytest.mark.parametrize("key", KEYED)
def test_inspect_file_paths(run, env, key):
    for p in _sample():
        ino, nk = env.entries[p]
        text = run_clean(run, *_args(env, key, "text", "inspect", "file", "--root", "5",
                                     "--inode", ino, env.enc)).stdout
        doc = json.loads(run_clean(run, *_args(env, key, "json", "inspect", "file", "--root", "5",
                                               "--inode", ino, env.enc), json_out=True).stdout)
        if key == "key":
            assert "path: %s\n" % readable(p) in text, (p, text[:300])
            _assert_json_name(doc, "path", p)
        else:
            assert "path: %s\n" % nk in text
            assert doc["path"] == nk and "path-hex" not in doc


def _assert_json_name(doc, member, exact):
    try:
        as_text = exact.decode("utf-8")
    except UnicodeDecodeError:
        as_text = None
    if as_text is not None and readable(exact) == as_text:
        assert doc[member] == as_text and member + "-hex" not in doc, (exact, doc)
    else:
        assert doc[member] == readable(exact), (exact, doc[member])
        assert bytes.fromhex(doc[member + "-hex"]) == exact


@pytest.mark.parametrize("key", KEYED)
def test_resolve_logical_paths(run, env, key):
    for p in _sample()[:len(SPECIALS)]:
        ino, nk = env.entries[p]
        doc = json.loads(run_clean(run, "--format", "json", "inspect", "file", "--root", "5",
                                   "--inode", ino, env.enc, json_out=True).stdout)
        logical = [x["disk-bytenr"] for x in doc["extents"] if x.get("disk-bytenr")][0]
        text = run_clean(run, *_args(env, key, "text", "inspect", "resolve-logical",
                                     logical, env.enc)).stdout
        jdoc = json.loads(run_clean(run, *_args(env, key, "json", "inspect", "resolve-logical",
                                                logical, env.enc), json_out=True).stdout)
        (ref,) = [r for r in jdoc["references"] if r["inode"] == ino]
        if key == "key":
            assert text.endswith(" path %s\n" % readable(p)), (p, text)
            _assert_json_name(ref, "path", p)
        else:
            assert text.endswith(" path %s\n" % nk)
            assert ref["path"] == nk


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_commands_are_clean(run, env, tmp_path, fmt):
    img = tmp_path / "w.img"
    fixtures.sparse_copy(env.enc, img)
    src = os.fsdecode(b"/d/" + SPECIALS[0])
    dst = os.fsdecode(b"/d/" + SPECIALS[1])
    run_clean(run, *_args(env, "key", fmt, "reflink", "--length", "4096", src, dst, img),
              json_out=fmt == "json")
    run_clean(run, *_args(env, "key", fmt, "decrypt", img), json_out=fmt == "json")
    run_clean(run, "--format", fmt, "check", "--check-data-csum", img, json_out=fmt == "json")

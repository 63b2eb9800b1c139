"""Every JSON field a command emits is documented in its man page (issue 15
point 10: "the JSON fields documented exactly as emitted").

The pages name fields as **"field"** (or **field** where the page lists the
text output's labels and says JSON uses the same names).  Three pages
document a family of fields by rule instead of one by one; the rule is
checked here the same way:

- check's "counters": "the summary's numbers under dash-separated names":
  each counter is a label of the text summary ("Tree blocks:" for
  "tree-blocks");
- inspect dump-super and dump-tree: "the superblock's fields / decoded
  fields under dash-separated names": each key is a label of the same
  command's text output (dashes for underscores or spaces).

The reverse direction (every documented field is emitted) is checked for
the fields a run of the command can emit on these images.
"""
import json
import os
import re

import pytest

DOC = os.path.join(os.path.dirname(__file__), "..", "Documentation")
KEY = bytes(range(64))


def documented(*pages):
    text = ""
    for page in pages + ("btrfs-extcrypt.rst",):
        with open(os.path.join(DOC, page), encoding="utf-8") as f:
            text += f.read()
    names = set(re.findall(r'\*\*"([a-z0-9_-]+)"(?::[^*]*)?\*\*', text))
    names |= set(re.findall(r'\*\*([a-z][a-z0-9-]+)\*\*', text))
    # Keys written as JSON ("__header": {"version": "1"}, the error document
    # of btrfs-extcrypt(8) in a literal block).
    names |= set(re.findall(r'"([a-z0-9_-]+)":', text))
    return names


def keys(doc, out=None, skip=()):
    """Every object key in doc, at any depth (the values of keys in skip are
    not descended into)."""
    out = set() if out is None else out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(k)
            if k not in skip:
                keys(v, out, skip)
    elif isinstance(doc, list):
        for v in doc:
            keys(v, out, skip)
    return out


def text_labels(text):
    """Labels of text output in the dash form JSON uses: every run of one to
    four consecutive words of a line ("Tree blocks: 9" gives "tree-blocks",
    "backref rev" gives "backref-rev", "csum_type" gives "csum-type")."""
    labels = set()
    for line in text.splitlines():
        words = [w.lower().replace("_", "-")
                 for w in re.findall(r"[A-Za-z][A-Za-z0-9_]*", line)]
        for n in range(1, 5):
            for i in range(len(words) - n + 1):
                labels.add("-".join(words[i:i + n]))
    return labels


@pytest.fixture
def images(run, make_mkfs_image, copy_image, tmp_path):
    plain = copy_image(make_mkfs_image("crc32c", 16384).path, "plain.img")
    key = tmp_path / "key"
    key.write_bytes(KEY)
    enc = copy_image(plain, "enc.img")
    r = run("encrypt", "--key-file", str(key), str(enc))
    assert r.returncode == 0, r.stderr
    return plain, enc, key


def jrun(run, *args, rc=(0,)):
    r = run("--format", "json", *args)
    assert r.returncode in rc, r.stderr
    return json.loads(r.stdout)


def undocumented(doc, pages, skip=()):
    return sorted(keys(doc, skip=skip) - documented(*pages))


def first_file(run, image):
    doc = jrun(run, "inspect", "dump-tree", "-t", "5", str(image))
    for tree in doc["trees"]:
        for block in tree["blocks"]:
            for item in block.get("items", []):
                if item["key"]["type"] == "EXTENT_DATA" and item.get("disk-bytenr"):
                    return item["key"]["objectid"], item["disk-bytenr"]
    raise AssertionError("no regular extent in the fs tree")


def test_check_fields(run, images):
    plain, enc, key = images
    pages = ("btrfs-extcrypt-check.rst",)
    for args in (["--check-data-csum", str(plain)],
                 ["--check-data-csum", "--key-file", str(key), str(enc)]):
        doc = jrun(run, "check", *args, rc=(0, 1))
        bad = undocumented(doc, pages, skip=("counters",))
        assert not bad, bad
        r = run("check", *args)
        labels = text_labels(r.stdout + r.stderr)
        bad = sorted(set(doc["counters"]) - labels - documented(*pages))
        assert not bad, bad
        assert {"image", "result", "errors", "warnings", "notes", "counters",
                "problems"} <= set(doc)
    doc = jrun(run, "check", str(plain) + ".missing", rc=(3,))
    bad = undocumented(doc, pages)
    assert not bad, bad
    assert set(doc) == {"__header", "error"}    # btrfs-extcrypt(8): cannot open


def test_write_command_fields(run, images, copy_image, tmp_path):
    plain, enc, key = images
    work = copy_image(plain, "work.img")
    enc_pages = ("btrfs-extcrypt-encrypt.rst",)
    doc = jrun(run, "encrypt", "--key-file", str(key), str(work))
    bad = undocumented(doc, enc_pages)
    assert not bad, bad
    want = {"operation", "dry-run", "inodes", "extents", "bytes", "commits",
            "wiped-bytes", "seconds", "subvolumes"}
    assert want <= set(doc)
    # decrypt prints "the same summary ... as btrfs-extcrypt-encrypt(8)".
    doc = jrun(run, "decrypt", "--key-file", str(key), str(work))
    bad = undocumented(doc, ("btrfs-extcrypt-decrypt.rst",) + enc_pages)
    assert not bad, bad
    assert doc["operation"] == "decrypt"
    doc = jrun(run, "restore", str(plain), str(tmp_path / "out"))
    bad = undocumented(doc, ("btrfs-extcrypt-restore.rst",))
    assert not bad, bad
    ino, _ = first_file(run, plain)
    doc = jrun(run, "reflink", "--create", "--src-inode", str(ino), "/new-copy", str(work),
               rc=(0, 1))
    bad = undocumented(doc, ("btrfs-extcrypt-reflink.rst",))
    assert not bad, bad


def test_inspect_fields(run, images):
    plain, enc, key = images
    ino, bytenr = first_file(run, plain)
    pages = ("btrfs-extcrypt-inspect-file.rst",)
    for image in (plain, enc):
        doc = jrun(run, "inspect", "file", "--inode", str(ino), str(image))
        bad = undocumented(doc, pages)
        assert not bad, bad
    doc = jrun(run, "inspect", "resolve-logical", str(bytenr), str(plain))
    bad = undocumented(doc, ("btrfs-extcrypt-inspect-resolve-logical.rst",))
    assert not bad, bad
    doc = jrun(run, "key", "id", "--key-file", str(key))
    bad = undocumented(doc, ("btrfs-extcrypt-key-id.rst",))
    assert not bad, bad


@pytest.mark.parametrize("command,page", [
    (["inspect", "dump-super", "-a"], "btrfs-extcrypt-inspect-dump-super.rst"),
    (["inspect", "dump-tree"], "btrfs-extcrypt-inspect-dump-tree.rst"),
])
def test_dump_fields_are_text_labels(run, images, command, page):
    """Documented by rule: the text output's labels under dash-separated names."""
    plain, enc, _key = images
    for image in (plain, enc):
        doc = jrun(run, *command, str(image))
        text = run(*command, str(image)).stdout
        missing = set(keys(doc)) - documented(page) - text_labels(text)
        bad = sorted(missing)
        assert not bad, " ".join(bad)

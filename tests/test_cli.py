"""Command-line frame: help, version, usage errors, prefixes, JSON envelope.

Documentation/design.rst sections 4-5: usage errors exit 2; `--help`/`--version` exit 0;
any unambiguous prefix of a command works and an ambiguous one is a usage
error; `--format json` prints one JSON document whose first member is
"__header": {"version": "1"}, with dash-separated keys.
"""

import json
import re

import pytest

from runner import error_lines

USAGE = 2


@pytest.fixture(scope="module")
def image(make_mkfs_image):
    return make_mkfs_image("crc32c", 16384)


@pytest.fixture(scope="module")
def commands(run):
    """Every command listed by the top-level --help, as a tuple of words
    ("inspect", "dump-super") or ("check",)."""
    res = run("--help")
    assert res.returncode == 0
    cmds = []
    in_list = False
    for line in res.stdout.splitlines():
        if line.strip().lower().startswith("commands"):
            in_list = True
            continue
        m = re.match(r"^\s+([a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)?)\s{2,}\S", line)
        if in_list and m:
            cmds.append(tuple(m.group(1).split()))
    assert ("inspect", "dump-super") in cmds, res.stdout
    return cmds


def assert_usage_error(res):
    assert res.returncode == USAGE, "expected exit 2, got %d: %s\n%s" % (
        res.returncode, " ".join(res.args), res.stderr[-2000:])
    assert res.stderr.strip(), "a usage error must say something on stderr"
    assert not res.stdout.strip(), "usage errors go to stderr, not stdout:\n" + res.stdout


def test_help(run):
    res = run("--help")
    assert res.returncode == 0
    assert "inspect" in res.stdout and "usage" in res.stdout.lower()
    assert not error_lines(res.stderr)


def test_version(run):
    res = run("--version")
    assert res.returncode == 0
    assert re.search(r"\d+\.\d+", res.stdout), res.stdout


def test_no_arguments_is_usage_error(run):
    assert_usage_error(run())


@pytest.mark.parametrize("args", [
    ["frobnicate"],
    ["inspect", "frobnicate"],
    ["--bogus-global-option", "inspect", "dump-super"],
    ["--format"],
    ["--format", "yaml", "inspect", "dump-super", "x.img"],
    ["inspect"],
], ids=["unknown-command", "unknown-subcommand", "unknown-global-option",
        "format-without-value", "format-unknown", "group-without-command"])
def test_usage_errors(run, args):
    assert_usage_error(run(*args))


def test_group_help(run):
    res = run("inspect", "--help")
    assert res.returncode == 0
    for sub in ("dump-super", "dump-tree", "resolve-logical", "file"):
        assert sub in res.stdout


def test_every_command_has_help(run, commands):
    bad = []
    for cmd in commands:
        res = run(*cmd, "--help")
        if res.returncode != 0 or " ".join(cmd) not in res.stdout:
            bad.append("%s --help: exit %d\n%s" % (" ".join(cmd), res.returncode,
                                                 (res.stdout + res.stderr)[-500:]))
    assert not bad, "\n".join(bad)


def test_every_command_rejects_unknown_option(run, commands, image, copy_image):
    img = copy_image(image)        # writing commands must not touch the shared one
    for cmd in commands:
        assert_usage_error(run(*cmd, "--no-such-option-xyz", img))


def test_every_command_requires_arguments(run, commands):
    for cmd in commands:
        assert_usage_error(run(*cmd))


@pytest.mark.parametrize("args", [
    ["inspect", "dump-super"],
    ["inspect", "dump-tree"],
    ["inspect", "resolve-logical"],
    ["inspect", "resolve-logical", "12345"],
    ["inspect", "file"],
    ["inspect", "file", "--root", "5"],
])
def test_missing_image_is_usage_error(run, args):
    assert_usage_error(run(*args))


def test_too_many_arguments(run, image):
    assert_usage_error(run("inspect", "dump-super", image, image))


@pytest.mark.parametrize("args", [
    ["inspect", "dump-super", "--super", "x"],
    ["inspect", "dump-tree", "-b", "not-a-number"],
    ["inspect", "dump-tree", "-t", "no-such-tree"],
    ["inspect", "resolve-logical", "12abc"],
    ["inspect", "file", "--root", "5", "--inode", "x"],
], ids=["super-not-number", "bytenr-not-number",
        "tree-unknown-name", "logical-not-number", "inode-not-number"])
def test_bad_option_values(run, image, args):
    assert_usage_error(run(*args, image))


def test_nonexistent_image_is_unreadable(run, tmp_path):
    res = run("inspect", "dump-super", tmp_path / "does-not-exist.img")
    assert res.returncode == 3 and len(error_lines(res.stderr)) == 1, res.stderr


def test_directory_as_image_is_unreadable(run, tmp_path):
    res = run("inspect", "dump-tree", tmp_path)
    assert res.returncode == 3 and len(error_lines(res.stderr)) == 1, res.stderr


def test_non_btrfs_file_is_unreadable(run, tmp_path):
    img = tmp_path / "zeros.img"
    img.write_bytes(bytes(1 << 20))
    for args in (["inspect", "dump-super"], ["inspect", "dump-tree"],
                 ["inspect", "file", "/"]):
        res = run(*args, img)
        assert res.returncode == 3 and len(error_lines(res.stderr)) == 1, (args, res.stderr)


@pytest.mark.parametrize("prefix", [
    ["insp", "dump-s"], ["i", "dump-su"], ["inspect", "dump-super"], ["inspe", "dump-super"],
])
def test_unambiguous_prefixes(run, image, prefix):
    full = run("inspect", "dump-super", image)
    res = run(*prefix, image)
    assert res.returncode == 0, res.stderr
    assert res.stdout == full.stdout


def test_prefix_of_dump_tree(run, image):
    full = run("inspect", "dump-tree", "-t", "root", image)
    res = run("insp", "dump-t", "-t", "root", image)
    assert res.returncode == 0 and res.stdout == full.stdout


@pytest.mark.parametrize("args", [["inspect", "dump"], ["inspect", "d"], ["insp", "dump-"]])
def test_ambiguous_prefix_is_usage_error(run, image, args):
    res = run(*args, image)
    assert_usage_error(res)
    assert "ambiguous" in res.stderr.lower(), res.stderr


def test_quiet_and_verbose_accepted(run, image):
    for flag in ("-q", "--quiet", "-v", "--verbose"):
        res = run(flag, "inspect", "dump-super", image)
        assert res.returncode == 0, (flag, res.stderr)


def test_format_text_is_default(run, image):
    a = run("inspect", "dump-super", image)
    b = run("--format", "text", "inspect", "dump-super", image)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


# ---------------------------------------------------------------------------
# JSON

def _json_doc(res):
    assert res.returncode == 0, res.stderr
    pairs = json.loads(res.stdout, object_pairs_hook=lambda p: p)
    assert pairs and pairs[0][0] == "__header", "first member is %r" % (pairs[:1],)
    assert dict(pairs[0][1]) == {"version": "1"}, pairs[0][1]
    return json.loads(res.stdout)


def _keys(obj, acc):
    if isinstance(obj, dict):
        for k, v in obj.items():
            acc.add(k)
            _keys(v, acc)
    elif isinstance(obj, list):
        for v in obj:
            _keys(v, acc)
    return acc


def _data_logical(image):
    """The disk_bytenr of a regular extent, from our independent parser."""
    import btrfs_ondisk as od
    with od.Image(image) as img:
        for blk in img.walk(img.tree_roots()[od.FS_TREE][0], od.FS_TREE):
            if blk.level:
                continue
            for it in blk.items():
                o = blk.item_data_offset(it)
                if it.key.type == od.EXTENT_DATA and blk.data[o + 20] == 1:
                    return od.get(blk.data, o + 21, "<Q")
    raise AssertionError("no regular extent")


@pytest.fixture(scope="module")
def json_docs(run, image):
    logical = _data_logical(image)
    cmds = {
        "dump-super": ["inspect", "dump-super", image],
        "dump-super-all": ["inspect", "dump-super", "--all", image],
        "dump-tree-root": ["inspect", "dump-tree", "-t", "root", image],
        "dump-tree-all": ["inspect", "dump-tree", image],
        "file-path": ["inspect", "file", "/data/random-big.bin", image],
        "file-inode": ["inspect", "file", "--root", "5", "--inode", "256", image],
        "resolve-logical": ["inspect", "resolve-logical", str(logical), image],
    }
    return {name: _json_doc(run("--format", "json", *args)) for name, args in cmds.items()}


@pytest.mark.parametrize("name", ["dump-super", "dump-super-all", "dump-tree-root",
                                  "dump-tree-all", "file-path", "file-inode",
                                  "resolve-logical"])
def test_json_header_and_keys(json_docs, name):
    doc = json_docs[name]
    bad = sorted(k for k in _keys(doc, set()) if k != "__header" and
                 not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", k))
    assert not bad, "JSON keys must be lowercase and dash-separated: %s" % bad


def test_json_to_stdout_only(run, image):
    res = run("--format", "json", "inspect", "dump-super", image)
    json.loads(res.stdout)
    assert not error_lines(res.stderr)


def test_json_usage_error_still_exit_2(run, image):
    """In JSON mode a usage error still exits 2 with its ERROR line, and stdout
    holds one document with the error (design: a script always parses something)."""
    res = run("--format", "json", "inspect", "dump-super", "--bogus", image)
    assert res.returncode == USAGE and "ERROR: unrecognized option '--bogus'" in res.stderr
    err = json.loads(res.stdout)["error"]
    assert err == {"code": "usage", "exit-status": 2,
                   "message": "unrecognized option '--bogus'"}, err


def test_verbose_says_what_was_opened(run, image, tmp_path):
    """-v: every command that opens an image says what it opened; check adds per-tree counts."""
    res = run("-v", "check", image)
    assert res.returncode == 0, res.stderr
    opened = [l for l in res.stderr.splitlines() if l.startswith("Opened ")]
    assert len(opened) == 1 and "generation" in opened[0] and "nodesize" in opened[0]
    assert re.search(r"^tree 5: \d+ blocks, \d+ items$", res.stderr, re.M), res.stderr
    quiet = run("check", image)
    assert "Opened " not in quiet.stderr and "tree 5:" not in quiet.stderr
    res = run("-v", "restore", "--dry-run", image, tmp_path / "out")
    assert res.returncode == 0 and "Opened " in res.stderr, res.stderr

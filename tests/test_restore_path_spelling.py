"""restore --path: every spelling of a path names the same entry.

A shell user writes `/a/b/`, `a/b`, `/a//b` or `/a/./b` for the directory
`/a/b`, and `/` or `/.` for the top.  The oracle is the source tree that
mkfs.btrfs --rootdir copied into the image: restore must create exactly the
entry's own name in the output directory (`b`, never a name with slashes
in it), and for the top directory its contents, as without --path.  A path
that does not exist is refused with one ERROR line and exit 1.
"""
import os

import pytest

import fixtures


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    top = tmp_path_factory.mktemp("spelling")
    tree = top / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_bytes(b"contents of f\n")
    (tree / "a" / "g").write_bytes(b"g\n")
    (tree / "top").write_bytes(b"top\n")
    return tree, fixtures.mkfs(top / "img", rootdir=tree, size_mib=128)


def listing(top):
    """Relative path -> file bytes (None for a directory) of everything under top."""
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), top)] = None
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, top)] = fh.read()
    return out


def as_dir_b(tree):
    return {"b": None, **{os.path.join("b", k): v for k, v in listing(tree / "a" / "b").items()}}


def as_file_g(tree):
    return {"g": (tree / "a" / "g").read_bytes()}


# Each spelling, and what restore must produce from the source tree: the
# directory b, the file g, or (the top) everything, as without --path.
SPELLINGS = [(p, as_dir_b) for p in ("/a/b", "/a/b/", "a/b", "/a//b", "/a/./b", "/a/b/.", "//a/b//")] + \
            [(p, as_file_g) for p in ("/a/g", "/a/g/", "a/./g")] + \
            [(p, listing) for p in ("/", "/.", "//")]


@pytest.mark.parametrize("spelling,expected", SPELLINGS, ids=[s for s, _ in SPELLINGS])
def test_spellings(image, run, tmp_path, spelling, expected):
    tree, img = image
    out = tmp_path / "out"
    res = run("restore", "--path", spelling, str(img), str(out))
    assert res.returncode == 0, res.stderr
    assert listing(out) == expected(tree)


@pytest.mark.parametrize("spelling", ["/a/nothere", "/a/b/f/x", "/a/.."])
def test_missing_path_refused(image, run, tmp_path, spelling):
    tree, img = image
    out = tmp_path / "out"
    res = run("restore", "--path", spelling, str(img), str(out))
    assert res.returncode == 1, res.stderr
    errors = [l for l in res.stderr.splitlines() if l.startswith("ERROR:")]
    assert len(errors) == 1 and "no such file in the image" in errors[0], res.stderr
    assert not out.exists() or listing(out) == {}

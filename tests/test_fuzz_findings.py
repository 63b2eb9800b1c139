"""Regression images found by the fuzzer (tests/fuzz/findings/*.img.xz + .json).

Each image is a csum-valid mutant with a JSON note of its mutation and of
what went wrong.  Every image must go through the read-only commands without
a crash, sanitizer report or hang, and then:

  diff-a  our `check` must not call it clean (`btrfs check` rejects it);
  diff-b  the write command either refuses, or leaves an image that our
          `check` (and `btrfs check`, for a plain result) calls clean.

Findings whose class is listed in tests/fuzz/known-lax.txt are expected
failures (non-strict: an XPASS means the laxness is fixed and the class can
leave the list).
"""

import json
import lzma
import shutil
from pathlib import Path

import pytest

import fixtures
from fuzz import engine, run_fuzz

FINDINGS = Path(__file__).parent / "fuzz" / "findings"
NOTES = sorted(FINDINGS.glob("*.json"))
READ_ONLY = (("check",), ("check", "--check-data-csum"), ("inspect", "dump-super", "--all"),
             ("inspect", "dump-tree"))


def unpack(note, tmp_path):
    img = tmp_path / "image.img"
    with lzma.open(FINDINGS / note["image"]) as src, open(img, "wb") as dst:
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            if chunk.count(0) == len(chunk):
                dst.seek(len(chunk), 1)         # keep the image sparse
            else:
                dst.write(chunk)
        dst.truncate()
    key = tmp_path / "key"
    key.write_bytes(engine.KEY)
    return img, key


def known_reason(note):
    return engine.allowed(note["class"], engine.load_allowlist(run_fuzz.ALLOWLIST))


@pytest.mark.parametrize("note_path", NOTES, ids=[p.stem for p in NOTES])
def test_fuzz_finding(note_path, run, tmp_path, request):
    note = json.loads(note_path.read_text())
    img, key = unpack(note, tmp_path)
    for args in READ_ONLY:
        res = run(*args, img)                   # fails the test on crash or hang
        assert 0 <= res.returncode <= 4, (args, res.returncode, res.stderr[-2000:])
    reason = known_reason(note)
    if reason:
        request.applymarker(pytest.mark.xfail(reason="known-lax: " + reason, strict=False))
    ours = run("check", img)
    if note["kind"] == "diff-a":
        assert ours.returncode != 0, "our check calls clean an image btrfs check rejects:\n" + \
            note["why"]
        return
    if note["kind"] != "diff-b" or ours.returncode != 0:
        return
    # The write commands of the note, in order, on this image and key.
    for cmd in note["commands"]:
        cmd = [str(key) if a.endswith("/key") else a for a in cmd[1:-1]] + [str(img)]
        res = run(*cmd)
        if res.returncode != 0:
            return
    after = run("check", img)
    assert after.returncode == 0, "%s exit 0 left an image our check rejects:\n%s" % (
        " ".join(cmd), after.stderr[-2000:])
    if shutil.which("btrfs") and note.get("plain_after"):
        res = fixtures.btrfs_check(img, "--readonly")
        assert res.returncode == 0, "btrfs check after %s:\n%s" % (" ".join(cmd),
                                                                   res.stderr[-2000:])

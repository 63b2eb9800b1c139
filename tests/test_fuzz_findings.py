"""Regression images found by the fuzzer (tests/fuzz/findings/*.img.xz + .json).

Each image is a csum-valid mutant with a JSON note of its mutation and of
what went wrong.  Every image must go through the read-only commands without
a crash, sanitizer report or hang, and then:

  crash, hang, exit
          the command of the note runs without a crash, sanitizer report or
          hang, and exits 0-4;
  diff-a  our `check` must not call it clean (`btrfs check` rejects it);
  diff-b  the write command either refuses, or leaves an image that our
          `check` (and `btrfs check`, for a plain result) calls clean.

Findings whose class is listed in tests/fuzz/known-lax.txt, and notes with an
"xfail" entry (a C bug reported and not fixed yet), are expected failures
(non-strict: an XPASS means the bug is fixed and the entry can go).
"""

import json
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
    img = engine.unpack_xz(FINDINGS / note["image"], tmp_path / "image.img")
    key = tmp_path / "key"
    key.write_bytes(engine.KEY)
    return img, key


def known_reason(note):
    if note.get("xfail"):
        return note["xfail"]
    if note["kind"] in run_fuzz.HARD_KINDS:
        return None
    return engine.allowed(note["class"], engine.load_allowlist(run_fuzz.ALLOWLIST))


def replay_args(cmd, img, key, tmp_path):
    """A noted command line (binary name first) with this test's paths."""
    out = []
    for a in cmd[1:]:
        base = a.rsplit("/", 1)[-1]
        if base in ("mutant.img", "w.img", "r.img"):
            a = str(img)
        elif base == "key" and "/" in a:
            a = str(key)
        elif base == "out" and "/" in a:
            a = str(tmp_path / "out")
        out.append(a)
    return out


@pytest.mark.parametrize("note_path", NOTES, ids=[p.stem for p in NOTES])
def test_fuzz_finding(note_path, run, tmp_path, request):
    note = json.loads(note_path.read_text())
    img, key = unpack(note, tmp_path)
    for args in READ_ONLY:
        res = run(*args, img)                   # fails the test on crash or hang
        assert 0 <= res.returncode <= 4, (args, res.returncode, res.stderr[-2000:])
    reason = known_reason(note)
    if reason:
        request.applymarker(pytest.mark.xfail(reason="known: " + reason, strict=False))
    if note["kind"] in run_fuzz.HARD_KINDS:
        for cmd in note.get("commands") or [note["command"]]:
            res = run(*replay_args(cmd, img, key, tmp_path))
            assert 0 <= res.returncode <= 4, (cmd, res.returncode, res.stderr[-2000:])
        return
    ours = run("check", img)
    if note["kind"] == "diff-a":
        assert ours.returncode != 0, "our check calls clean an image btrfs check rejects:\n" + \
            note["why"]
        return
    if note["kind"] != "diff-b" or ours.returncode != 0:
        return
    # The write commands of the note, in order, on this image and key.
    for cmd in note["commands"]:
        cmd = replay_args(cmd, img, key, tmp_path)
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

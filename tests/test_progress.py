"""Progress of the long jobs: JSON Lines on --progress-fd, a line on a terminal."""
import json
import os
import pty
import re
import subprocess

import pytest

import fixtures


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    top = tmp_path_factory.mktemp("progress")
    tree = top / "tree"
    tree.mkdir()
    for i in range(8):
        (tree / ("f%d" % i)).write_bytes(os.urandom(2 << 20))
    return fixtures.mkfs(top / "p.img", rootdir=tree, size_mib=160)


def run_with_fd(run, *args):
    """Run with --progress-fd on a pipe; returns (result, JSON lines read from it)."""
    r, w = os.pipe()
    try:
        cmd = [run.bin, "--progress-fd", str(w)] + [str(a) for a in args]
        res = subprocess.run(cmd, pass_fds=(w,), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=run.env, text=True, timeout=300 * run.time_scale)
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        lines = [json.loads(line) for line in f.read().splitlines()]
    return res, lines


def test_progress_fd_json_lines(image, run, tmp_path, copy_image):
    out = tmp_path / "out"
    res, lines = run_with_fd(run, "--format", "json", "restore", image, out)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert lines and lines[-1]["final"] is True and all(not l["final"] for l in lines[:-1])
    last = lines[-1]
    assert last["command"] == "restore" and last["unit"] == "bytes"
    assert last["done"] == doc["bytes"] and last["total"] is None and last["eta"] is None
    assert all(a["done"] <= b["done"] for a, b in zip(lines, lines[1:]))
    img = copy_image(image)
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))
    res, lines = run_with_fd(run, "encrypt", "--key-file", key, img)
    assert res.returncode == 0, res.stderr
    last = lines[-1]
    assert last["command"] == "encrypt" and last["final"] and last["done"] == last["total"] > 0


def test_progress_fd_refuses_a_closed_descriptor(run, image):
    res = run("--progress-fd", "77", "check", image)
    assert res.returncode == 2 and "--progress-fd" in res.stderr


@pytest.fixture(scope="module")
def big_image(tmp_path_factory):
    """Enough data that restoring it takes longer than the first progress line (0.2 s)."""
    top = tmp_path_factory.mktemp("progress-big")
    tree = top / "tree"
    tree.mkdir()
    for i in range(6):
        (tree / ("f%d" % i)).write_bytes(os.urandom(32 << 20))
    return fixtures.mkfs(top / "big.img", rootdir=tree, size_mib=512)


def test_check_progress_fd(image, run):
    """check --check-data-csum reports the bytes it verified; the last line equals the counter."""
    res, lines = run_with_fd(run, "--format", "json", "check", "--check-data-csum", image)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert lines and lines[-1]["final"] is True and all(not l["final"] for l in lines[:-1])
    assert all(l["command"] == "check" and l["unit"] == "bytes" for l in lines)
    assert lines[-1]["done"] == doc["counters"]["data-bytes-checked"] >= 16 << 20
    assert all(a["done"] <= b["done"] for a, b in zip(lines, lines[1:]))
    # Without --check-data-csum there is no data pass and no progress.
    res, lines = run_with_fd(run, "check", image)
    assert res.returncode == 0 and lines == []


def test_verbose_batch_lines(image, run, tmp_path, copy_image):
    """-v: encrypt and decrypt print one line per committed batch, adding up to the summary."""
    img = copy_image(image)
    key = tmp_path / "key"
    key.write_bytes(os.urandom(64))
    for cmd in ("encrypt", "decrypt"):
        res = run("-v", "--format", "json", cmd, "--key-file", key, img,
                  env={"EXTCRYPT_BATCH_BYTES": str(4 << 20)})   # fault-injection builds
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        batches = [l for l in res.stderr.splitlines() if l.startswith(cmd + ": commit ")]
        assert len(batches) == doc["commits"] > 1, res.stderr
        per = [re.search(r": (\d+) inodes, (\d+) extents, (\d+) bytes in ", l).groups()
               for l in batches]
        assert sum(int(p[0]) for p in per) == doc["inodes"]
        assert sum(int(p[1]) for p in per) == doc["extents"]
        assert sum(int(p[2]) for p in per) == doc["bytes"]
        gens = [int(re.search(r"generation (\d+):", l).group(1)) for l in batches]
        assert gens == sorted(gens) and len(set(gens)) == len(gens)
        assert re.search(r"of (\d+) bytes done", batches[-1]).group(1) == str(doc["bytes"])
        quiet = run("--format", "json", cmd, "--key-file", key, img) if cmd == "encrypt" else None
        if quiet is not None:
            assert quiet.returncode == 0 and ": commit " not in quiet.stderr


def _pty_run(run, args):
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(run.bin, [run.bin] + args, run.env)
    data = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), data.decode(errors="replace")


def test_check_progress_line_on_a_terminal(big_image, run):
    """On a terminal, check --check-data-csum shows a progress line; with -q nothing."""
    code, text = _pty_run(run, ["check", "--check-data-csum", str(big_image)])
    assert code == 0, text
    assert "\rcheck: " in text and "MiB" in text, text
    code, text = _pty_run(run, ["-q", "check", "--check-data-csum", str(big_image)])
    assert code == 0 and "check: " not in text, text


def test_progress_line_on_a_terminal(big_image, run, tmp_path):
    """On a terminal, restore shows a progress line ended by a newline; with -q nothing."""
    for quiet in (False, True):
        out = tmp_path / ("t%d" % quiet)
        code, text = _pty_run(run, (["-q"] if quiet else []) + ["restore", str(big_image), str(out)])
        assert code == 0, text
        if quiet:
            assert "restore:" not in text, text
        else:
            assert "\rrestore: " in text and "MiB" in text, text

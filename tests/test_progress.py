"""Progress of the long jobs: JSON Lines on --progress-fd, a line on a terminal."""
import json
import os
import pty
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


def test_progress_line_on_a_terminal(big_image, run, tmp_path):
    """On a terminal, restore shows a progress line ended by a newline; with -q nothing."""
    image = big_image
    for quiet in (False, True):
        out = tmp_path / ("t%d" % quiet)
        pid, fd = pty.fork()
        if pid == 0:
            args = [run.bin] + (["-q"] if quiet else []) + ["restore", str(image), str(out)]
            os.execve(run.bin, args, run.env)
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
        assert os.waitstatus_to_exitcode(status) == 0, data
        text = data.decode(errors="replace")
        if quiet:
            assert "restore:" not in text, text
        else:
            assert "\rrestore: " in text and "MiB" in text, text

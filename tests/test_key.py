"""`key id`, `key generate` and key input (issue 3): sources, sizes, formats,
exit codes, and that key material never shows up where it should not."""

import json
import os
import re
import stat
import subprocess
import time

import pytest

import fscrypt_ref as ref
from runner import error_lines

ID_RE = re.compile(r"^Key identifier: ([0-9a-f]{32})$", re.M)

# fscryptctl's vectors (Documentation/format.rst 13.5) and the main test key (13.1).
VECTORS = [
    (b"a" * 32 + b"1" * 32, "912ae510a458723a839a9fad701538ac"),
    (b"abcdefghijklmnopqrstuvwxyz0123456", "1c2d6754b6cc7daacb599875d7faf9bb"),
    (b"abcdefghijklmnop", "7eb80af3f24ef086726a4cea3a154ce0"),
    (bytes(range(64)), "8699c2c53707405da5aba5ae4d8583c0"),
]


def key_id(res):
    m = ID_RE.search(res.stdout)
    assert res.returncode == 0 and m, "exit %d\n%s%s" % (res.returncode, res.stdout, res.stderr)
    return m.group(1)


@pytest.mark.parametrize("raw,want", VECTORS, ids=["a32-1x32", "33-bytes", "16-bytes", "00-3f"])
def test_key_id_vectors_from_file_and_stdin(run, tmp_path, raw, want):
    path = tmp_path / "key"
    path.write_bytes(raw)
    assert key_id(run("key", "id", "--key-file", path)) == want
    assert key_id(run("key", "id", "--key-file", "-", input=raw)) == want
    hexpath = tmp_path / "key.hex"
    hexpath.write_text(raw.hex() + "\n")
    assert key_id(run("key", "id", "--key-file", hexpath, "--key-format", "hex")) == want
    assert key_id(run("key", "id", "--key-format", "hex", "--key-file", "-",
                      input=raw.hex().upper())) == want


def test_key_id_from_fd(bin, tmp_path):
    raw = bytes(range(64))
    r, w = os.pipe()
    os.write(w, raw)
    os.close(w)
    res = subprocess.run([str(bin), "key", "id", "--key-fd", str(r)], pass_fds=(r,),
                         capture_output=True, text=True, timeout=60)
    os.close(r)
    assert key_id(res) == "8699c2c53707405da5aba5ae4d8583c0"


def test_key_id_json(run, tmp_path):
    path = tmp_path / "key"
    path.write_bytes(bytes(range(64)))
    res = run("--format", "json", "key", "id", "--key-file", path)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert list(doc)[0] == "__header"
    assert doc["key-identifier"] == "8699c2c53707405da5aba5ae4d8583c0"


@pytest.mark.parametrize("data,fmt,what", [
    (b"x" * 15, "raw", "15 bytes"),
    (b"x" * 65, "raw", "too long"),
    (b"", "raw", "0 bytes"),
    (b"00" * 15 + b"\n", "hex", "15 bytes"),
    (b"00" * 65, "hex", "65 bytes"),
    (b"00" * 66, "hex", "too long"),
    (b"0g" * 16, "hex", "not valid hex"),
    (b"000", "hex", "not valid hex"),
    (b"00" * 32 + b"\n\n", "hex", "not valid hex"),
])
def test_bad_keys_exit_4(run, tmp_path, data, fmt, what):
    path = tmp_path / "key"
    path.write_bytes(data)
    res = run("key", "id", "--key-file", path, "--key-format", fmt)
    errs = error_lines(res.stderr)
    assert res.returncode == 4 and len(errs) == 1 and what in errs[0], res.stderr
    assert res.stdout == ""


def test_key_source_errors(run, tmp_path):
    res = run("key", "id", "--key-file", tmp_path / "missing")
    assert res.returncode == 4 and "cannot open key file" in res.stderr
    res = run("key", "id", "--key-file", tmp_path)  # a directory
    assert res.returncode == 4 and len(error_lines(res.stderr)) == 1
    res = run("key", "id", "--key-fd", "57")  # not open
    assert res.returncode == 4 and "Bad file descriptor" in res.stderr
    for args in (["key", "id"], ["key", "id", "--key-fd", "x"],
                 ["key", "id", "--key-format", "base64", "--key-file", "-"],
                 ["key", "id", "--key-file", "a", "--key-fd", "0"]):
        res = run(*args)
        assert res.returncode == 2 and error_lines(res.stderr), args


def test_key_never_from_argv_or_environment(run, tmp_path):
    hexkey = bytes(range(64)).hex()
    # No option takes a key value, and a key pasted as an argument is refused.
    for args in (["--key", hexkey], ["--key=" + hexkey], [hexkey], ["-k", hexkey]):
        res = run("key", "id", *args)
        assert res.returncode == 2, args
        assert hexkey not in res.stdout + res.stderr, args
    # Nor from the environment.
    res = run("key", "id", env={"EXTCRYPT_KEY": hexkey, "KEY": hexkey, "FSCRYPT_KEY": hexkey})
    assert res.returncode == 2 and "key is needed" in res.stderr, res.stderr


def _key_fragments(raw):
    """Every 6-byte window of the key, raw and as hex (either case)."""
    frags = set()
    for i in range(len(raw) - 5):
        w = raw[i:i + 6]
        frags.update((w, w.hex().encode(), w.hex().upper().encode()))
    return frags


def test_key_bytes_never_leak(bin, tmp_path):
    """Run key id (text, JSON, errors) with a distinctive key: no 6-byte window of it,
    raw or hex, appears in stdout or stderr, in /proc/PID/cmdline or environ."""
    raw = bytes.fromhex("c0ffee5ecre7".replace("5ecre7", "5ec2e7")) + bytes(
        (0xA5 ^ (i * 37)) & 0xFF for i in range(58))
    assert len(raw) == 64
    frags = _key_fragments(raw)
    path = tmp_path / "key"
    path.write_bytes(raw)
    hexpath = tmp_path / "key.hex"
    hexpath.write_text(raw.hex() + "\n")
    longpath = tmp_path / "key.long"
    longpath.write_bytes(raw + raw[:1])
    badhex = tmp_path / "key.badhex"
    badhex.write_text(raw.hex()[:-1] + "z\n")
    runs = [
        ["key", "id", "--key-file", str(path)],
        ["--format", "json", "key", "id", "--key-file", str(path)],
        ["key", "id", "--key-file", str(hexpath), "--key-format", "hex"],
        ["key", "id", "--key-file", str(longpath)],
        ["key", "id", "--key-file", str(badhex), "--key-format", "hex"],
        ["-v", "key", "id", "--key-file", str(path), "--key-format", "hex"],
    ]
    for args in runs:
        res = subprocess.run([str(bin)] + args, capture_output=True, timeout=60)
        out = res.stdout + res.stderr
        leaked = [f for f in frags if f in out]
        assert not leaked, "key material in the output of %s" % args

    # While the process holds the key (it waits for EOF on the pipe), look at
    # its argv and environment from /proc.
    r, w = os.pipe()
    proc = subprocess.Popen([str(bin), "key", "id", "--key-fd", str(r)], pass_fds=(r,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    try:
        os.write(w, raw)
        time.sleep(0.3)
        for name in ("cmdline", "environ"):
            try:
                with open("/proc/%d/%s" % (proc.pid, name), "rb") as f:
                    data = f.read()
            except PermissionError:
                if name == "environ" and os.geteuid() != 0:
                    continue  # not dumpable while it holds a key: only root may look
                raise
            assert not [f for f in frags if f in data], name
        status = open("/proc/%d/status" % proc.pid).read()
        assert proc.poll() is None, "the process should still be waiting for EOF"
    finally:
        os.close(w)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert not [f for f in frags if f in out + err]
    assert ("Key identifier: " + ref.key_identifier(raw).hex()).encode() in out
    assert status  # the process was alive and inspectable


def test_core_dumps_off_while_key_loaded(bin, tmp_path):
    """While the key is held, the process is not dumpable and RLIMIT_CORE is 0."""
    r, w = os.pipe()
    proc = subprocess.Popen([str(bin), "key", "id", "--key-fd", str(r)], pass_fds=(r,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(r)
    try:
        os.write(w, bytes(range(64)))
        deadline = time.time() + 10
        limits = ""
        while time.time() < deadline:
            limits = open("/proc/%d/limits" % proc.pid).read()
            core = [ln for ln in limits.splitlines() if ln.startswith("Max core file size")]
            if core and core[0].split()[4] == "0":
                break
            time.sleep(0.05)
        core = [ln for ln in limits.splitlines() if ln.startswith("Max core file size")][0]
        assert core.split()[4] == "0", core
        # Not dumpable: /proc/PID files belong to root.
        st = os.stat("/proc/%d/environ" % proc.pid)
        assert st.st_uid == 0
    finally:
        os.close(w)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_generate(run, tmp_path):
    path = tmp_path / "new.key"
    old = os.umask(0)
    try:
        res = run("key", "generate", "--output", path)
    finally:
        os.umask(old)
    assert res.returncode == 0, res.stderr
    raw = path.read_bytes()
    assert len(raw) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    want = ref.key_identifier(raw).hex()
    assert key_id(res) == want
    assert key_id(run("key", "id", "--key-file", path)) == want
    assert raw.hex() not in res.stdout + res.stderr

    # Refuses to overwrite, leaving the file alone; also through a symlink.
    res = run("key", "generate", "--output", path)
    assert res.returncode == 1 and "refusing to overwrite" in res.stderr
    assert path.read_bytes() == raw
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    res = run("key", "generate", "--output", link)
    assert res.returncode == 1 and not (tmp_path / "target").exists()

    other = tmp_path / "other.key"
    assert run("key", "generate", "--output", other).returncode == 0
    assert other.read_bytes() != raw

    hexfile = tmp_path / "hex.key"
    res = run("key", "generate", "--output", hexfile, "--key-format", "hex")
    assert res.returncode == 0
    text = hexfile.read_text()
    assert re.fullmatch(r"[0-9a-f]{128}\n", text)
    assert key_id(res) == ref.key_identifier(bytes.fromhex(text)).hex()

    res = run("key", "generate")
    assert res.returncode == 2
    res = run("key", "generate", "--output", tmp_path / "nodir" / "k")
    assert res.returncode == 1 and len(error_lines(res.stderr)) == 1


def test_help(run):
    for cmd in (["key", "id"], ["key", "generate"]):
        res = run(*cmd, "--help")
        assert res.returncode == 0
        assert "usage: btrfs-extcrypt " + " ".join(cmd) in res.stdout
    res = run("key", "id", "--help")
    for opt in ("--key-file", "--key-fd", "--key-format"):
        assert opt in res.stdout


def test_hex_text_read_as_raw_gets_a_hint(run, tmp_path):
    """A hex key file read with the default raw format: a warning, the key as raw bytes."""
    raw = bytes(range(32))
    path = tmp_path / "key.hex"
    path.write_bytes(raw.hex().encode())            # 64 digits, no newline: a valid raw size
    res = run("key", "id", "--key-file", path)
    assert res.returncode == 0 and not error_lines(res.stderr), res.stderr
    warn = [l for l in res.stderr.splitlines() if l.startswith("WARNING:")]
    assert len(warn) == 1 and "--key-format hex" in warn[0], res.stderr
    # The key used is still the 64 text bytes (fscryptctl's vector a*32 1*32
    # is such a key), not the 32 bytes that --key-format hex reads.
    assert key_id(res) != key_id(run("key", "id", "--key-file", path, "--key-format", "hex"))
    # With a newline the raw size is wrong: one ERROR line carrying the hint.
    path.write_bytes(raw.hex().encode() + b"\n")
    res = run("key", "id", "--key-file", path)
    errs = error_lines(res.stderr)
    assert res.returncode == 4 and len(errs) == 1 and "--key-format hex" in errs[0], res.stderr
    # Random raw keys (not all hex digits) get no warning.
    path.write_bytes(bytes(range(200, 232)))
    res = run("key", "id", "--key-file", path)
    assert res.returncode == 0 and "WARNING" not in res.stderr, res.stderr

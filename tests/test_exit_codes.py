"""Every documented exit code, through every command that can produce it.

The expected codes come from the EXIT STATUS sections of the man pages
(Documentation/btrfs-extcrypt*.rst) and the table in README.md:

    0 success, 1 problems found / refused / failed, 2 usage error,
    3 image unreadable (bad superblock, corrupt tree block, I/O error),
    4 key error (key input, wrong key).

One small image is made once; each case works on its own copy where the
command writes.  A command that fails must print an ERROR line, and one that
succeeds must not (Documentation/design.rst section 5).
"""

import os
import subprocess

import pytest

import btrfs_ondisk as od
import fixtures
from runner import error_lines

KEY_A = bytes(range(64))
KEY_B = bytes(range(64, 128))

# (command words, arguments after the options) of every command that takes an image.
IMAGE_COMMANDS = ("inspect dump-super", "inspect dump-tree", "inspect resolve-logical",
                  "inspect file", "check", "encrypt", "decrypt", "reflink", "restore")


class Env:
    """The images and keys of the module."""


def _write(path, data):
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory, run):
    d = tmp_path_factory.mktemp("exit-codes")
    e = Env()
    e.dir = d
    tree = d / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "dir" / "small.txt").write_bytes(b"small file\n")
    e.data = fixtures._rng_bytes(__import__("random").Random(5), 256 * 1024)
    (tree / "dir" / "data.bin").write_bytes(e.data)
    fixtures._set_times(tree)
    e.plain = fixtures.mkfs(d / "plain.img", tree, size_mib=128)
    e.key_a = _write(d / "a.key", KEY_A)
    e.key_b = _write(d / "b.key", KEY_B)
    e.short_key = _write(d / "short.key", b"0123456789")    # 10 bytes: not a key
    e.enc = d / "enc.img"
    fixtures.sparse_copy(e.plain, e.enc)
    res = run("encrypt", "--key-file", e.key_a, e.enc, timeout=120)
    assert res.returncode == 0, res.stderr

    # Unreadable: no primary superblock.
    e.no_super = d / "no-super.img"
    fixtures.sparse_copy(e.plain, e.no_super)
    with open(e.no_super, "r+b") as f:
        f.seek(od.SUPER_MIRRORS[0])
        f.write(bytes(od.SUPER_SIZE))
    # Unreadable: the root tree's block is garbage (its checksum fails).
    e.bad_root = d / "bad-root.img"
    fixtures.sparse_copy(e.plain, e.bad_root)
    with od.Image(e.bad_root, writable=True) as img:
        root = e.root_logical = img.super("root")
        for c in img.chunks:
            if c.logical <= root < c.logical + c.length:
                for s in c.stripes:
                    img.pwrite(s.offset + root - c.logical + 0x100, b"\xa5" * 256)
    # Problems found by check: one data block of the plain image flipped.
    e.bad_data = d / "bad-data.img"
    fixtures.sparse_copy(e.plain, e.bad_data)
    raw = e.bad_data.read_bytes()
    at = raw.find(e.data[:4096])
    assert at > 0
    with open(e.bad_data, "r+b") as f:
        f.seek(at + 100)
        f.write(bytes([raw[at + 100] ^ 0xff]))
    return e


def copy(env, src, name):
    dst = env.dir / name
    fixtures.sparse_copy(src, dst)
    return dst


def expect(res, code):
    errs = error_lines(res.stderr)
    assert res.returncode == code, ("expected exit %d, got %d: %s\n%s"
                                    % (code, res.returncode, " ".join(res.args),
                                       res.stderr[-2000:]))
    if code == 0:
        assert not errs, res.stderr
    else:
        assert errs or code == 2, "exit %d without an ERROR line:\n%s" % (code, res.stderr)


# ---------------------------------------------------------------------------
# 2: usage errors, for every command.

ALL_COMMANDS = IMAGE_COMMANDS + ("key id", "key generate")


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_usage_unknown_option(run, command):
    expect(run(*command.split(), "--no-such-option", "x"), 2)


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_usage_extra_arguments(run, command):
    if command == "inspect dump-tree":
        # Its arguments are the devices of a filesystem (test_multidev.py):
        # a missing one cannot be opened.
        expect(run(*command.split(), "a", "b", "c", "d", "e"), 3)
        return
    expect(run(*command.split(), "a", "b", "c", "d", "e"), 2)


@pytest.mark.parametrize("command", ("encrypt", "decrypt", "key id"))
def test_usage_key_missing(run, env, command):
    args = [] if command == "key id" else [env.plain]
    expect(run(*command.split(), *args), 2)


# check, restore, inspect file and resolve-logical take several keys (a
# rekey in progress): test_rekey.py, test_multikey.py
@pytest.mark.parametrize("command", ("encrypt", "decrypt", "rekey", "key id"))
def test_usage_two_key_sources(run, env, command):
    args = {"key id": [], "rekey": ["--new-key-file", env.key_b, env.plain]}.get(
        command, [env.plain])
    expect(run(*command.split(), "--key-file", env.key_a, "--key-fd", "0", *args), 2)


@pytest.mark.parametrize("command", ("check", "restore"))
def test_usage_key_format_without_key(run, env, command):
    args = [env.plain, env.dir / "out-3"] if command == "restore" else [env.plain]
    expect(run(*command.split(), "--key-format", "hex", *args), 2)


def test_usage_unknown_command(run):
    expect(run("no-such-command"), 2)


# ---------------------------------------------------------------------------
# 3: image unreadable.

def unreadable_args(env, command, image):
    return {
        "inspect dump-super": [image],
        "inspect dump-tree": [image],
        "inspect resolve-logical": [str(env.root_logical), image],
        "inspect file": ["/dir/small.txt", image],
        "check": [image],
        "encrypt": ["--key-file", env.key_a, image],
        "decrypt": ["--key-file", env.key_a, image],
        "reflink": ["/dir/small.txt", "/dir/copy.txt", image],
        "restore": [image, env.dir / ("out-" + os.path.basename(image))],
    }[command]


@pytest.mark.parametrize("command", IMAGE_COMMANDS)
def test_unreadable_superblock(run, env, command):
    image = copy(env, env.no_super, "ns-%s.img" % command.replace(" ", "-"))
    expect(run(*command.split(), *unreadable_args(env, command, image), timeout=120), 3)


# dump-super reads only the superblocks, which are fine here.
@pytest.mark.parametrize("command", [c for c in IMAGE_COMMANDS if c != "inspect dump-super"])
def test_unreadable_root_tree(run, env, command):
    image = copy(env, env.bad_root, "br-%s.img" % command.replace(" ", "-"))
    expect(run(*command.split(), *unreadable_args(env, command, image), timeout=120), 3)


def test_unreadable_missing_image(run, env):
    expect(run("check", env.dir / "no-such.img"), 3)
    expect(run("inspect", "dump-tree", env.dir / "no-such.img"), 3)


# ---------------------------------------------------------------------------
# 4: key errors.

def test_key_wrong_encrypt(run, env):
    image = copy(env, env.enc, "wk-encrypt.img")
    expect(run("encrypt", "--key-file", env.key_b, image, timeout=120), 4)


def test_key_wrong_decrypt(run, env):
    image = copy(env, env.enc, "wk-decrypt.img")
    expect(run("decrypt", "--key-file", env.key_b, image, timeout=120), 4)


def test_key_wrong_check(run, env):
    import json
    res = run("check", "--key-file", env.key_b, env.enc)
    expect(res, 4)
    assert "Result: key error" in res.stdout and "clean" not in res.stdout, res.stdout
    res = run("--format", "json", "check", "--key-file", env.key_b, env.enc)
    doc = json.loads(res.stdout)
    assert res.returncode == 4 and doc["result"] == "key-error", doc
    assert doc["error"]["code"] == "key", doc


def test_key_wrong_restore(run, env):
    """A key that opens none of the encrypted inodes: exit 4, never a clean result."""
    import json
    res = run("--format", "json", "restore", "--key-file", env.key_b, env.enc,
              env.dir / "out-wrong-key")
    expect(res, 4)
    doc = json.loads(res.stdout)
    assert doc["error"]["code"] == "key" and doc["skipped"] > 0, doc


def test_key_wrong_inspect_file(run, env):
    """inspect file takes the key since issue 15: a wrong one is a key error."""
    res = run("inspect", "file", "--key-file", env.key_b, "/dir/small.txt", env.enc)
    expect(res, 4)


def test_key_wrong_reflink(run, env):
    image = copy(env, env.enc, "wk-reflink.img")
    before = image.read_bytes()
    expect(run("reflink", "--key-file", env.key_b, "--create", "/dir/small.txt",
               "/dir/copy.txt", image), 4)
    assert image.read_bytes() == before


@pytest.mark.parametrize("command", ("encrypt", "decrypt", "check", "restore", "key id",
                                     "inspect file", "reflink"))
def test_key_unreadable(run, env, command):
    image = copy(env, env.enc, "ku-%s.img" % command.replace(" ", "-"))
    args = {"key id": [], "restore": [image, env.dir / "out-ku"],
            "inspect file": ["/dir/small.txt", image],
            "reflink": ["/dir/small.txt", "/dir/data.bin", image]}.get(command, [image])
    expect(run(*command.split(), "--key-file", env.short_key, *args, timeout=120), 4)
    expect(run(*command.split(), "--key-file", env.dir / "no-such.key", *args,
               timeout=120), 4)


# ---------------------------------------------------------------------------
# 1: problems found, refused or failed.

def test_problems_check(run, env):
    expect(run("check", "--check-data-csum", env.bad_data), 1)


@pytest.mark.parametrize("command", ("encrypt", "decrypt"))
def test_failed_convert_path(run, env, command):
    image = copy(env, env.enc if command == "decrypt" else env.plain, "fp-%s.img" % command)
    expect(run(command, "--key-file", env.key_a, "--path", "/no/such/dir", image,
               timeout=120), 1)


def test_failed_reflink(run, env):
    image = copy(env, env.plain, "f-reflink.img")
    expect(run("reflink", "/no-such-file", "/dir/copy.txt", image), 1)


SIMPLE_QUOTA = 1 << 16
SQUOTA_COMMANDS = {
    "encrypt": ("encrypt", "--key-file", "{key}"),
    "encrypt --dry-run": ("encrypt", "--dry-run", "--key-file", "{key}"),
    "decrypt": ("decrypt", "--key-file", "{key}"),
    "reflink": ("reflink", "--create", "/dir/data.bin", "/dir/clone.bin"),
    "reflink --batch": ("reflink", "--batch", "{batch}"),
}


def _squota_kernel(env, is_root):
    """The plain image with simple quotas enabled by the kernel (6.14's btrfs)."""
    import progs614
    if not is_root:
        pytest.skip("needs root and loop devices")
    btrfs614 = progs614.path()
    img = copy(env, env.plain, "squota-kernel.img")
    with fixtures.loop_mount(img, env.dir / "squota-mnt", ro=False) as mnt:
        res = subprocess.run([btrfs614, "quota", "enable", "--simple", str(mnt)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            pytest.skip("this kernel does not enable simple quotas: " + res.stdout[-300:])
        (mnt / "dir" / "after.bin").write_bytes(os.urandom(20000))
        os.sync()
    return img


def _squota_patched(env):
    """The plain image with only the incompat bit set: refused all the same."""
    from leafedit import Editor
    img = copy(env, env.plain, "squota-patched.img")
    with Editor(img) as ed:
        ed.set_incompat(SIMPLE_QUOTA)
    return img


@pytest.mark.parametrize("made", ("kernel", "patched"))
@pytest.mark.parametrize("command", sorted(SQUOTA_COMMANDS))
def test_simple_quota_image_written(run, env, is_root, made, command):
    """Simple quotas (issue 13 point 7): the write commands take such an
    image (exit 0) and keep its counts by the owner rules; with only the
    incompat bit set (no quota tree, as after `btrfs quota disable`) there
    is nothing to count.  A dry run writes nothing.  Our check then finds no
    problem; the counts themselves are judged by btrfs check 6.14 in
    tests/test_qgroup.py."""
    image = _squota_kernel(env, is_root) if made == "kernel" else _squota_patched(env)
    assert od.Image(image).super("incompat_flags") & SIMPLE_QUOTA
    batch = env.dir / "squota.batch"
    batch.write_text("--create /dir/data.bin /dir/clone2.bin\n")
    args = [a.format(key=env.key_a, batch=batch) for a in SQUOTA_COMMANDS[command]]
    if command == "decrypt":
        expect(run("encrypt", "--key-file", env.key_a, image, timeout=120), 0)
    before = image.read_bytes()
    res = run(*args, image, timeout=120)
    expect(res, 0)
    assert error_lines(res.stderr) == [], res.stderr
    if command.endswith("--dry-run"):
        assert image.read_bytes() == before
    res = run("check", "--key-file", env.key_a, image, timeout=120)
    expect(res, 0)


def test_failed_restore(run, env):
    expect(run("restore", "--root", "999", env.plain, env.dir / "out-f"), 1)


def test_failed_inspect_file(run, env):
    expect(run("inspect", "file", "/no-such-file", env.plain), 1)


def test_failed_resolve_logical(run, env):
    expect(run("inspect", "resolve-logical", "0", env.plain), 1)


def test_failed_key_generate(run, env):
    expect(run("key", "generate", "--output", env.key_a), 1)


def test_failed_dump_tree_stdout(run, env):
    with open("/dev/full", "w") as full:
        res = subprocess.run([run.bin, "inspect", "dump-tree", str(env.plain)],
                             stdout=full, stderr=subprocess.PIPE, text=True,
                             env=run.env, timeout=60 * run.time_scale)
    assert res.returncode == 1, res.stderr


# ---------------------------------------------------------------------------
# 0: success.

def test_success(run, env):
    out = env.dir / "out-ok"
    expect(run("inspect", "dump-super", env.enc), 0)
    expect(run("inspect", "dump-tree", env.enc), 0)
    expect(run("inspect", "file", "/dir/small.txt", env.plain), 0)
    expect(run("check", "--check-data-csum", "--key-file", env.key_a, env.enc), 0)
    expect(run("restore", "--key-file", env.key_a, env.enc, out), 0)
    assert (out / "dir" / "data.bin").read_bytes() == env.data
    expect(run("key", "id", "--key-file", env.key_a), 0)
    expect(run("key", "generate", "--output", env.dir / "new.key"), 0)
    image = copy(env, env.plain, "ok.img")
    expect(run("reflink", "--create", "/dir/data.bin", "/dir/copy.bin", image), 0)
    expect(run("encrypt", "--key-file", env.key_a, image, timeout=120), 0)
    expect(run("decrypt", "--key-file", env.key_a, image, timeout=120), 0)
    expect(run("check", image), 0)


def test_success_resolve_logical(run, env):
    expect(run("inspect", "resolve-logical", str(env.root_logical), env.plain), 0)


# ---------------------------------------------------------------------------
# JSON mode: a run that fails before its document still prints one.

JSON_CODES = {1: "failed", 2: "usage", 3: "unreadable", 4: "key"}


def json_failures(env):
    """(arguments, exit status) of failures that happen before a command's document."""
    out = [(command.split() + ["--no-such-option", "x"], 2) for command in ALL_COMMANDS]
    out += [(command.split() + unreadable_args(env, command, copy(
        env, env.no_super, "jns-%s.img" % command.replace(" ", "-"))), 3)
        for command in IMAGE_COMMANDS]
    out += [(["encrypt", "--key-file", env.key_b, copy(env, env.enc, "jk.img")], 4),
            (["check", "--key-file", env.short_key, env.enc], 4),
            (["reflink", "/no/such/file", "/dir/x", copy(env, env.plain, "jf.img")], 1)]
    return out


def test_json_error_documents(run, env):
    import json
    for args, code in json_failures(env):
        res = run("--format", "json", *args, timeout=120)
        assert res.returncode == code, (args, res.returncode, res.stderr[-1000:])
        doc = json.loads(res.stdout.encode("utf-8", "surrogateescape").decode("utf-8"))
        assert doc["__header"] == {"version": "1"}, doc
        assert "error" in doc, (args, doc)
        err = doc["error"]
        assert err["exit-status"] == code and err["code"] == JSON_CODES[code], (args, doc)
        assert error_lines(res.stderr), (args, res.stderr)
        first = error_lines(res.stderr)[0][len("ERROR: "):]
        assert err["message"] == first, (err, first)


# ---------------------------------------------------------------------------
# 1: out of memory.  Fault-injection builds fail the Nth allocation of the
# engine and the containers (EXTCRYPT_FAIL_ALLOC=N, common/fault.h): whatever
# allocation it is, the command says "out of memory" and exits 1, never 3.

OOM_COMMANDS = (("inspect", "dump-tree"), ("encrypt",))


@pytest.mark.parametrize("command", OOM_COMMANDS, ids=" ".join)
def test_out_of_memory_is_exit_1(run, env, command):
    first = run("inspect", "dump-tree", env.plain, env={"EXTCRYPT_FAIL_ALLOC": "1"})
    if first.returncode == 0:
        pytest.skip("not a fault-injection build (configure --enable-fault-injection)")
    failed = 0
    for n in list(range(1, 25)) + [40, 60, 100, 200, 400]:
        image = copy(env, env.plain, "oom.img") if command == ("encrypt",) else env.plain
        key = ["--key-file", env.key_a] if command == ("encrypt",) else []
        res = run(*command, *key, image, env={"EXTCRYPT_FAIL_ALLOC": str(n)}, timeout=120)
        if res.returncode == 0:
            break
        expect(res, 1)
        assert "out of memory" in error_lines(res.stderr)[-1], (n, res.stderr[-2000:])
        assert "unreadable" not in res.stderr
        failed += 1
    assert failed > 0

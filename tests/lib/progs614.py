"""The reference btrfs-progs 6.14 for the dump-tree and dump-super suites.

`tools/progs-6.14` fetches Debian's bookworm-backports package into a cache
and prints the path of its `btrfs`; `./dev.sh test` exports that path as
EXTCRYPT_PROGS614.  Without it (or when it is not 6.14) the comparisons skip
with the reason, so a machine without the Debian mirror still runs the rest.
"""

import os
import subprocess

import pytest

ENV = "EXTCRYPT_PROGS614"
VERSION = b"btrfs-progs v6.14"
_state = {}


def path():
    """The btrfs 6.14 binary; pytest.skip() with the reason when unusable."""
    if "path" not in _state:
        p = os.environ.get(ENV)
        reason = None
        if not p:
            reason = "%s not set (run tools/progs-6.14 and export its output)" % ENV
        elif not os.access(p, os.X_OK):
            reason = "%s=%s is not an executable" % (ENV, p)
        else:
            out = subprocess.run([p, "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT).stdout
            if not out.startswith(VERSION):
                reason = "%s=%s is not %s: %r" % (ENV, p, VERSION.decode(), out[:60])
        _state["path"], _state["reason"] = p, reason
    if _state["reason"]:
        pytest.skip(_state["reason"])
    return _state["path"]


def run(subcmd, *args, timeout=600):
    """`btrfs inspect-internal SUBCMD ARGS...` of 6.14: CompletedProcess (bytes)."""
    return subprocess.run([path(), "inspect-internal", subcmd, *[str(a) for a in args]],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)

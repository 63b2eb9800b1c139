"""Running the binary under test and judging its exit (shared by the suites).

Importable from any test module (pytest puts tests/ on sys.path):

    from runner import assert_unreadable, assert_ok_or_unreadable, error_lines
"""

import os
import signal
import subprocess

import pytest

ASAN_EXIT = 86
UBSAN_EXIT = 87
SANITIZER_EXITS = {ASAN_EXIT: "AddressSanitizer", UBSAN_EXIT: "UndefinedBehaviorSanitizer"}
# Sanitizer reports are also recognised in stderr, in case a report slips
# through with another exit code (e.g. a report inside an atexit handler).
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                     "SUMMARY: AddressSanitizer")

ASAN_OPTIONS = ("exitcode=%d:detect_leaks=0:abort_on_error=0:handle_abort=1:"
                "allocator_may_return_null=1" % ASAN_EXIT)
UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1:exitcode=%d" % UBSAN_EXIT

DEFAULT_TIMEOUT = 60


def sanitizer_env(base=None):
    """The environment for the binary: sanitizer options appended last so
    that ours win (later options override earlier ones) while extra user
    options (e.g. symbolize=0) still apply."""
    env = dict(os.environ if base is None else base)
    for var, ours in (("ASAN_OPTIONS", ASAN_OPTIONS), ("UBSAN_OPTIONS", UBSAN_OPTIONS)):
        user = env.get(var, "")
        env[var] = ours if user in ("", ours) else user + ":" + ours
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


class Runner:
    """Runs the binary; fails the test on crash, hang or sanitizer report.

    Other non-zero exits are returned: the caller asserts on the exit code.
    """

    def __init__(self, binary):
        self.bin = str(binary)
        try:
            with open(self.bin, "rb") as f:
                self.sanitized = b"__asan_init" in f.read()
        except OSError:
            self.sanitized = False
        # Sanitizer builds are several times slower; hang limits scale with them.
        self.time_scale = 4 if self.sanitized else 1
        self.env = sanitizer_env()

    def __call__(self, *args, input=None, timeout=DEFAULT_TIMEOUT, env=None, cwd=None):
        cmd = [self.bin] + [os.fspath(a) if isinstance(a, os.PathLike) else str(a)
                            for a in args]
        if timeout is None:
            timeout = DEFAULT_TIMEOUT
        timeout *= self.time_scale
        if isinstance(input, str):
            input = input.encode()
        full_env = dict(self.env)
        if env:
            full_env.update(env)
        shown = " ".join(cmd)
        try:
            res = subprocess.run(cmd, input=input, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=full_env, cwd=cwd,
                                 timeout=timeout,
                                 stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            err = (e.stderr or b"").decode(errors="replace")[-2000:]
            pytest.fail("HANG: no exit within %ds: %s\nstderr tail:\n%s"
                        % (timeout, shown, err), pytrace=False)
        out = res.stdout.decode(errors="surrogateescape")
        err = res.stderr.decode(errors="surrogateescape")
        res = subprocess.CompletedProcess(cmd, res.returncode, out, err)
        check_no_crash(res)
        return res


def check_no_crash(res):
    """Fail on a signal, a sanitizer exit code or a sanitizer report."""
    shown = " ".join(res.args)
    rc = res.returncode
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        pytest.fail("CRASH: killed by %s: %s\nstderr tail:\n%s" % (name, shown,
                                                                   res.stderr[-3000:]),
                    pytrace=False)
    if rc in SANITIZER_EXITS:
        pytest.fail("%s report (exit %d): %s\n%s" % (SANITIZER_EXITS[rc], rc, shown,
                                                      res.stderr[-6000:]), pytrace=False)
    for marker in SANITIZER_MARKERS:
        if marker in res.stderr:
            pytest.fail("sanitizer report (exit %d): %s\n%s" % (rc, shown, res.stderr[-6000:]),
                        pytrace=False)


# ---------------------------------------------------------------------------
# Assertion helpers shared by the suites.

def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("ERROR: ")]


def assert_unreadable(res, what=""):
    """Exit 3 with exactly one `ERROR: ` line on stderr."""
    errs = error_lines(res.stderr)
    assert res.returncode == 3 and len(errs) == 1, (
        "%sexpected exit 3 with exactly one ERROR line, got exit %d and %d ERROR lines:\n"
        "cmd: %s\nstderr:\n%s" % (what and what + ": ", res.returncode, len(errs),
                                  " ".join(res.args), res.stderr[-3000:]))


def assert_ok_or_unreadable(res, what=""):
    """Exit 0 (no ERROR line) or exit 3 (exactly one ERROR line)."""
    errs = error_lines(res.stderr)
    if res.returncode == 0:
        assert not errs, ("%sexit 0 after printing ERROR lines (Documentation/design.rst 5):\ncmd: %s\n%s"
                          % (what and what + ": ", " ".join(res.args), res.stderr[-3000:]))
    else:
        assert_unreadable(res, what)

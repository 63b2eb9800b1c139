"""The fuzzer's fixed smoke set (tests/fuzz/, `make fuzz-smoke`).

A fixed set of csum-valid mutants of a plain and an encrypted seed image runs
through every command.  Any crash, sanitizer report, hang or exit code outside
0-4 fails, and so does a differential finding (our `check` clean where
`btrfs check` rejects, or an image no longer clean after a write command) of a
class not listed in tests/fuzz/known-lax.txt.  Listed classes are reported as
expected failures by the second test.
"""

import io
import random
import shutil

import pytest

from fuzz import engine, run_fuzz


@pytest.fixture(scope="module")
def smoke(bin, tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz-smoke")
    result = run_fuzz.run(str(bin), engine.SMOKE_SEEDS, run_fuzz.SMOKE_RNG,
                          mutants=run_fuzz.smoke_mutants(str(bin)), workdir=str(work),
                          findings_dir=str(work / "findings"),
                          progs=shutil.which("btrfs") is not None, stored=True)
    fails, known = run_fuzz.judge(result, engine.load_allowlist(run_fuzz.ALLOWLIST))
    out = io.StringIO()
    run_fuzz.summary(result, fails, known, out)
    return result, fails, known, out.getvalue()


@pytest.mark.slow
def test_fuzz_smoke(smoke, bin):
    result, fails, _known, text = smoke
    assert result.mutants == run_fuzz.smoke_mutants(str(bin))
    assert not fails, "fuzz smoke findings (saved images under the pytest tmp dir):\n" + text


@pytest.mark.slow
def test_fuzz_smoke_known_lax(smoke):
    _result, _fails, known, text = smoke
    if known:
        classes = sorted({"%s %s" % (f["kind"], f["class"]) for f in known})
        pytest.xfail("known-lax classes (tests/fuzz/known-lax.txt): " + "; ".join(classes))


@pytest.mark.slow  # several seconds: out of `make check`
def test_engine_flags_crash_hang_and_bad_exit(tmp_path):
    """The judge itself: a stand-in binary that crashes, hangs, exits 7 or
    reports a sanitizer error on some commands must give those findings."""
    fake = tmp_path / "fake-extcrypt"
    fake.write_text("#!/bin/sh\n"
                    "case \"$1 $2\" in\n"
                    "'inspect dump-tree') kill -SEGV $$ ;;\n"
                    "'inspect dump-super') exit 7 ;;\n"
                    "'inspect resolve-logical') sleep 10 ;;\n"
                    "'restore --raw') echo 'ERROR: AddressSanitizer: heap-use-after-free' >&2;"
                    " exit 1 ;;\n"
                    "esac\nexit 0\n")
    fake.chmod(0o755)
    seeds = engine.build_seeds(["crc32c-4k-plain-mini"], tmp_path / "seeds", str(fake),
                               stored=True)
    eng = engine.Engine(str(fake), str(tmp_path), timeout=1, progs=False)
    result = engine.Result()
    mut = seeds[0].seed.mutate(random.Random(1))
    eng.run_mutant(seeds[0], mut, result, "self-test")
    kinds = {(f["kind"], f["command"][1]) for f in result.findings}
    assert {("crash", "inspect"), ("exit", "inspect"), ("hang", "inspect"),
            ("crash", "restore")} <= kinds, kinds
    assert result.runs["dump-tree"] == {"crash": 1}
    assert result.runs["resolve-logical"] == {"hang": 3}


@pytest.mark.skipif(shutil.which("btrfs") is None, reason="needs btrfs-progs (btrfs check)")
def test_differential_mode_runs_only_the_checks(bin, tmp_path):
    """run_fuzz --differential: our check on every mutant, btrfs check on the
    ones it calls clean, no other command, plain seeds only."""
    seed = engine.SMOKE_SEEDS[0]
    assert "-plain" in seed
    result = run_fuzz.run(str(bin), (seed,), "diff-1", mutants=30, workdir=str(tmp_path),
                          findings_dir=str(tmp_path / "findings"), stored=True,
                          differential=True)
    assert result.mutants == 30
    assert set(result.runs) == {"check", "check --check-data-csum"}, sorted(result.runs)
    clean = result.runs["check"].get(0, 0)
    assert clean and sum(result.progs.values()) == clean, (result.runs, result.progs)
    fails, _known = run_fuzz.judge(result, engine.load_allowlist(run_fuzz.ALLOWLIST))
    assert not fails, fails

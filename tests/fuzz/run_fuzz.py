#!/usr/bin/python3
"""Run the structure-aware fuzzer against a btrfs-extcrypt binary.

    run_fuzz.py --bin build/btrfs-extcrypt --smoke            # make fuzz-smoke
    run_fuzz.py --bin build/btrfs-extcrypt --seconds 300      # make fuzz
    run_fuzz.py --bin build-asan/btrfs-extcrypt --mutants 1500 -j 2 --seeds all

Exit status: 0 when no run crashed, hung or exited outside 0-4 and every
differential finding is of a class listed in known-lax.txt; 1 otherwise.
Examples of each finding class are saved (image .xz + JSON note) to
--findings-dir (default /tmp/fuzz-findings).
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import engine  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ALLOWLIST = os.path.join(HERE, "known-lax.txt")
SMOKE_MUTANTS = 200
SMOKE_RNG = "smoke-1"
HARD_KINDS = ("crash", "hang", "exit", "readonly-wrote")


def smoke_mutants(bin_path):
    """The smoke set's size: sanitizer builds, several times slower, run the
    first half of the same set so that the suite stays within its time."""
    with open(bin_path, "rb") as f:
        return SMOKE_MUTANTS // 2 if b"__asan_init" in f.read() else SMOKE_MUTANTS


def _worker(args):
    eng, seeds, rng_seed, count, deadline, w, n = args
    return engine.run_mutants(eng, seeds, rng_seed, count, deadline, w, n).to_json()


def run(bin_path, seeds, rng_seed, mutants=None, seconds=None, jobs=1, workdir=None,
        findings_dir=None, progs=True, stored=False, differential=False):
    """Build the seeds, run the mutants; returns an engine.Result."""
    own = workdir is None
    workdir = workdir or tempfile.mkdtemp(prefix="extcrypt-fuzz-")
    try:
        seed_imgs = engine.build_seeds(seeds, os.path.join(workdir, "seeds"), bin_path, stored)
        eng = engine.Engine(bin_path, workdir, findings_dir=findings_dir, progs=progs,
                            differential=differential)
        deadline = time.monotonic() + seconds if seconds else None
        tasks = [(eng, seed_imgs, rng_seed, mutants, deadline, w, jobs) for w in range(jobs)]
        result = engine.Result()
        if jobs == 1:
            result.merge(engine.Result.from_json(_worker(tasks[0])))
        else:
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                for doc in pool.map(_worker, tasks):
                    result.merge(engine.Result.from_json(doc))
        return result
    finally:
        if own:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)


def make_seeds(bin_path, names, outdir):
    import shutil
    import subprocess
    os.makedirs(outdir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="extcrypt-seeds-")
    try:
        for si in engine.build_seeds(names, work, os.path.abspath(bin_path)):
            dst = os.path.join(outdir, si.spec.name + ".img.xz")
            with open(dst, "wb") as out:
                subprocess.run(["xz", "-T1", "-9", "-c", si.path], stdout=out, check=True)
            print(dst, os.path.getsize(dst))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def judge(result, allow):
    """(failures, known): findings that fail the run, and allowlisted ones."""
    fails, known = [], []
    for f in result.findings:
        if f["kind"] in HARD_KINDS:
            fails.append(f)
            continue
        reason = engine.allowed(f["class"], allow)
        (known if reason else fails).append(dict(f, reason=reason))
    return fails, known


def summary(result, fails, known, out=sys.stdout):
    rcs = ["0", "1", "2", "3", "4", "other", "crash", "hang"]
    w = max([len(c) for c in result.runs] + [20])
    print("mutants: %d, command runs: %d" % (result.mutants, result.total_runs()), file=out)
    print("%-*s %7s " % (w, "command", "runs") + " ".join("%6s" % r for r in rcs), file=out)
    for cmd in sorted(result.runs):
        per = result.runs[cmd]
        row = {r: 0 for r in rcs}
        for rc, n in per.items():
            key = str(rc) if str(rc) in row else "other"
            row[key] += n
        print("%-*s %7d " % (w, cmd, sum(per.values())) +
              " ".join("%6d" % row[r] for r in rcs), file=out)
    if result.progs:
        print("btrfs check on mutants our check calls clean: %s" %
              ", ".join("%s %d" % kv for kv in sorted(result.progs.items())), file=out)
    by = {}
    for f in fails + known:
        k = (f["kind"], f["class"], f.get("reason"))
        by.setdefault(k, []).append(f)
    if by:
        print("\nfindings (kind, class, count, example):", file=out)
    for (kind, cls, reason), fs in sorted(by.items(), key=lambda kv: (kv[0][2] is not None,
                                                                      kv[0][0], kv[0][1])):
        ex = fs[0]
        state = "known-lax" if reason else "FAIL"
        print("  %-9s %-14s %-50s %4d  seed %s tag %s%s" % (
            state, kind, cls, len(fs), ex["seed"], ex["tag"],
            (" -> " + ex["image"]) if ex.get("image") else ""), file=out)
        if not reason:
            print("      %s" % ex["why"].strip().splitlines()[0][:300] if ex["why"].strip()
                  else "", file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--smoke", action="store_true",
                    help="the fixed smoke set (%d mutants of %s)" % (
                        SMOKE_MUTANTS, ", ".join(engine.SMOKE_SEEDS)))
    ap.add_argument("--seeds", default="all",
                    help="comma-separated seed names (csum-NNk-plain|enc) or 'all'")
    ap.add_argument("--mutants", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--rng-seed", default=None)
    ap.add_argument("--workdir")
    ap.add_argument("--findings-dir", default="/tmp/fuzz-findings")
    ap.add_argument("--allowlist", default=ALLOWLIST)
    ap.add_argument("--no-progs", action="store_true", help="skip btrfs check (no rule a)")
    ap.add_argument("--differential", action="store_true",
                    help="rule a only, on the plain seeds: our check and btrfs check, no "
                         "other command (many more mutants per second)")
    ap.add_argument("--json", help="write the result (runs, findings) to this file")
    ap.add_argument("--make-seeds", metavar="DIR",
                    help="only make the --seeds images and store them xz-compressed in DIR")
    a = ap.parse_args(argv)
    if a.make_seeds:
        return make_seeds(a.bin, a.seeds.split(","), a.make_seeds)
    if a.smoke:
        seeds, rng_seed, seconds = engine.SMOKE_SEEDS, SMOKE_RNG, None
        mutants = smoke_mutants(a.bin)
    else:
        seeds = engine.ALL_SEEDS if a.seeds == "all" else tuple(a.seeds.split(","))
        if a.differential:
            seeds = tuple(s for s in seeds if "-plain" in s)
            if not seeds or a.no_progs:
                ap.error("--differential needs plain seeds and btrfs check")
        rng_seed = a.rng_seed or "r%d" % int(time.time())
        mutants, seconds = a.mutants, a.seconds
        if mutants is None and seconds is None:
            seconds = 300
    jobs = max(1, min(a.jobs, 2))
    t0 = time.monotonic()
    result = run(os.path.abspath(a.bin), seeds, rng_seed, mutants, seconds, jobs,
                 a.workdir, a.findings_dir, not a.no_progs, stored=a.smoke,
                 differential=a.differential)
    fails, known = judge(result, engine.load_allowlist(a.allowlist))
    print("fuzz: rng seed %s, seeds %s, %.0f s" % (rng_seed, ",".join(seeds),
                                                   time.monotonic() - t0))
    summary(result, fails, known)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(result.to_json(), failures=fails, known=known), f, indent=1,
                      default=str)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())

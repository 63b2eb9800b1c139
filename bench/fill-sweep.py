#!/usr/bin/python3
"""Print the fill-sweep table of issue 13 (tests/lib/fill_sweep.py says what
each column means and what counts as a problem).

usage: bench/fill-sweep.py [--kinds big,small] [--fills 50,80,90,95,99]
                           [--sources mkfs,kernel] [--work DIR] [BINARY]

BINARY defaults to $EXTCRYPT_BIN, then build/btrfs-extcrypt; it must be a
fault-injection build (./configure --enable-fault-injection) for the cut
runs.  Kernel images need root (a loop mount); EXTCRYPT_PROGS614 names the
btrfs-progs 6.14 binary (tools/progs-6.14) for a second checker.  Exit 1
when any run failed half-way or any check was not clean.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "lib"))
import fill_sweep as S  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default=os.environ.get("EXTCRYPT_BIN",
                                                                "build/btrfs-extcrypt"))
    ap.add_argument("--kinds", default="big,small")
    ap.add_argument("--fills", default=",".join(map(str, S.FILLS)))
    ap.add_argument("--sources", default="mkfs,kernel")
    ap.add_argument("--work")
    a = ap.parse_args()
    fills = [int(x) for x in a.fills.split(",")]
    work = Path(a.work or tempfile.mkdtemp(prefix="fill-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    sweep = S.Sweep(os.path.abspath(a.binary), work, os.environ.get("EXTCRYPT_PROGS614"))
    t0 = time.time()
    print(S.Sweep.header(), flush=True)
    try:
        for kind in a.kinds.split(","):
            for source in a.sources.split(","):
                if source == "kernel" and not S.can_mount():
                    print("(kernel images skipped: not root)")
                    continue
                make = S.mkfs_images if source == "mkfs" else S.kernel_images
                for src, k, f, img in make(work, kind, fills):
                    sweep.case(src, k, f, img)
                    img.unlink()
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    print("%d images, %.0f s" % (len(sweep.rows), time.time() - t0))
    for p in sweep.problems:
        print("PROBLEM " + p)
    return 1 if sweep.problems else 0


if __name__ == "__main__":
    sys.exit(main())

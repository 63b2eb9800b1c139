#!/usr/bin/python3
"""Prepare a working directory for the libFuzzer target (tests/fuzz/libfuzzer.c).

The target fuzzes the metadata of one seed image: its input is the
concatenation of the seed's metadata regions (the superblock, then every tree
block once), and it writes those bytes over an in-memory copy of the seed,
checksums recomputed, every copy of a region written (superblock mirrors, DUP
blocks).  This script writes, into --out:

  seed.img     the seed image (sparse)
  seed.map     one line per region: length, then every physical offset
  key          the fuzzer's fixed master key (for encrypted seeds)
  corpus/      the seed's own dump, plus the dump of every regression image
               of tests/fuzz/findings made from the same seed

--to-image INPUT IMAGE turns a libFuzzer input (a crash-* file) back into the
image the target ran on; --to-finding INPUT NAME --why TEXT stores that image
as a regression case tests/fuzz/findings/crash-libfuzzer-NAME (.img.xz and
its note), replayed by tests/test_fuzz_findings.py.

--seed is a stored seed name (tests/fuzz/seeds, e.g. crc32c-4k-plain-mini) or
the path of any image (.img or .img.xz, e.g. one of btrfs-progs' test images).
"""

import argparse
import json
import lzma
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz import engine, mutate  # noqa: E402
from fuzz.ondisk import bo, fixtures  # noqa: E402

FINDINGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings")


def regions(seed):
    """[(length, [physical offsets])]: the superblock, then each tree block."""
    out = [(4096, [off for off, _raw in seed.mirrors])]
    for b in seed.blocks:
        out.append((len(b.data), list(b.phys)))
    return out


def dump(path, regs):
    """The bytes of an image at the first copy of each region."""
    parts = []
    with open(path, "rb") as f:
        for length, offs in regs:
            f.seek(offs[0])
            parts.append(f.read(length).ljust(length, b"\0"))
    return b"".join(parts)


def to_image(seed_img, regs, csum_type, inp, out):
    """What tests/fuzz/libfuzzer.c make_image() builds from input inp."""
    shutil.copyfile(seed_img, out)
    with open(inp, "rb") as f:
        data = f.read()
    pos = 0
    with open(seed_img, "rb") as fs, open(out, "r+b") as fo:
        for length, offs in regs:
            if pos >= len(data):
                break
            fs.seek(offs[0])
            buf = bytearray(fs.read(length))
            n = min(length, len(data) - pos)
            buf[:n] = data[pos:pos + n]
            pos += n
            buf[0:32] = bo.csum(csum_type, bytes(buf[32:]))
            for o in offs:
                fo.seek(o)
                fo.write(buf)


def save_finding(img, regs, seed, args):
    inp, name = args.to_finding
    stem = "crash-libfuzzer-" + name
    tmp = os.path.join(args.out, stem + ".img")
    to_image(img, regs, seed.csum_type, inp, tmp)
    with open(tmp, "rb") as fi, lzma.open(os.path.join(FINDINGS, stem + ".img.xz"), "wb") as fo:
        shutil.copyfileobj(fi, fo)
    os.unlink(tmp)
    note = {"kind": "crash", "class": "libfuzzer/" + name, "seed": args.seed,
            "mutation": {"kind": "libfuzzer"}, "why": args.why, "tag": "libfuzzer",
            "image": stem + ".img.xz", "commands": [
                ["btrfs-extcrypt", "-q", "inspect", "dump-super", "--all", "mutant.img"],
                ["btrfs-extcrypt", "-q", "inspect", "dump-tree", "mutant.img"],
                ["btrfs-extcrypt", "-q", "check", "--check-data-csum", "mutant.img"]]}
    with open(os.path.join(FINDINGS, stem + ".json"), "w") as f:
        json.dump(note, f, indent=1)
        f.write("\n")


def unpack(src, dst):
    if src.endswith(".xz"):
        return engine.unpack_xz(src, dst)
    fixtures.sparse_copy(src, dst)
    return dst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", default="crc32c-4k-plain-mini")
    ap.add_argument("--out", required=True)
    ap.add_argument("--to-image", nargs=2, metavar=("INPUT", "IMAGE"))
    ap.add_argument("--to-finding", nargs=2, metavar=("INPUT", "NAME"))
    ap.add_argument("--why", default="")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "corpus"), exist_ok=True)
    stored = os.path.join(engine.SEEDS_DIR, args.seed + ".img.xz")
    src = stored if os.path.exists(stored) else args.seed
    img = unpack(src, os.path.join(args.out, "seed.img"))
    seed = mutate.Seed(img, args.seed)
    regs = regions(seed)
    if args.to_image:
        to_image(img, regs, seed.csum_type, *args.to_image)
        return
    if args.to_finding:
        save_finding(img, regs, seed, args)
        return
    with open(os.path.join(args.out, "seed.map"), "w") as f:
        for length, offs in regs:
            f.write("%d %s\n" % (length, " ".join(str(o) for o in offs)))
    with open(os.path.join(args.out, "key"), "wb") as f:
        f.write(engine.KEY)
    os.chmod(os.path.join(args.out, "key"), 0o600)
    corpus = os.path.join(args.out, "corpus")
    with open(os.path.join(corpus, "seed"), "wb") as f:
        f.write(dump(img, regs))
    n = 1
    for name in sorted(os.listdir(FINDINGS)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(FINDINGS, name)) as f:
            note = json.load(f)
        if note.get("seed") != args.seed:
            continue
        tmp = os.path.join(args.out, "finding.img")
        unpack(os.path.join(FINDINGS, note["image"]), tmp)
        with open(os.path.join(corpus, name[:-5]), "wb") as f:
            f.write(dump(tmp, regs))
        os.unlink(tmp)
        n += 1
    print("%s: %d regions, %d bytes of metadata, %d corpus inputs in %s" % (
        args.seed, len(regs), sum(length for length, _o in regs), n, corpus))


if __name__ == "__main__":
    main()

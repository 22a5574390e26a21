#!/usr/bin/env python3
"""Copy prae's calibration traces from ../shared/traces into calibration/traces/.

Deterministic selection (standard library only, no randomness):
  * Bitbrains Rnd (40 VMs): the 20 VMs whose files have the most distinct
    values of "CPU usage [MHZ]" over the whole file (descending; ties by VM
    number). Files copied byte for byte (gzip'd CSV).
  * NAB realAWSCloudwatch: all 17 files plus LICENSE.txt, byte for byte.
  * PlanetLab 20110303 (1052 VMs): file names ordered by the hex SHA-256 of the
    name (UTF-8); the first 30 whose 288 values hold at least 10 distinct
    values. Files copied byte for byte.

Usage (from anywhere):  python3 benches/reference/select_traces.py [--check]
--check only prints the selection and compares it with what is in the repo.
"""
import gzip
import hashlib
import os
import re
import shutil
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "..", "shared", "traces")
DST = os.path.join(ROOT, "calibration", "traces")

N_BITBRAINS = 20
N_PLANETLAB = 30
PLANETLAB_MIN_DISTINCT = 10


def bitbrains_selection():
    d = os.path.join(SRC, "bitbrains-rnd")
    ranked = []
    for f in os.listdir(d):
        m = re.fullmatch(r"2013-7-vm(\d+)\.csv\.gz", f)
        if not m:
            continue
        with gzip.open(os.path.join(d, f), "rt") as fh:
            next(fh)  # header
            distinct = {line.split(";\t")[3] for line in fh if line.strip()}
        ranked.append((-len(distinct), int(m.group(1)), f))
    ranked.sort()
    return [f for _, _, f in ranked[:N_BITBRAINS]]


def nab_selection():
    d = os.path.join(SRC, "nab-aws")
    return sorted(f for f in os.listdir(d) if f.endswith(".csv"))


def planetlab_selection():
    d = os.path.join(SRC, "planetlab", "20110303")
    names = sorted(os.listdir(d), key=lambda f: hashlib.sha256(f.encode()).hexdigest())
    pick = []
    for f in names:
        with open(os.path.join(d, f)) as fh:
            if len(set(fh.read().split())) >= PLANETLAB_MIN_DISTINCT:
                pick.append(f)
        if len(pick) == N_PLANETLAB:
            break
    return pick


def main():
    check = "--check" in sys.argv[1:]
    plan = [("bitbrains-rnd", bitbrains_selection() ),
            ("nab-aws", nab_selection() + ["LICENSE.txt"]),
            (os.path.join("planetlab", "20110303"), planetlab_selection())]
    ok = True
    for sub, files in plan:
        os.makedirs(os.path.join(DST, sub), exist_ok=True)
        for f in files:
            s, t = os.path.join(SRC, sub, f), os.path.join(DST, sub, f)
            if check:
                same = os.path.exists(t) and open(s, "rb").read() == open(t, "rb").read()
                ok &= same
                print(("ok      " if same else "MISSING ") + os.path.join(sub, f))
            else:
                shutil.copyfile(s, t)
        present = set(os.listdir(os.path.join(DST, sub)))
        extra = present - set(files)
        if extra:
            ok = False
            print("extra files in", sub, sorted(extra))
        print(sub, len(files), "files")
    extra = set(os.listdir(os.path.join(DST, "planetlab"))) - {"20110303", "LICENSE-Apache-2.0.txt"}
    if extra:
        ok = False
        print("extra files in planetlab", sorted(extra))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Image builds: a build VM sized by prae against Packer's static default (1 vCPU, 512 MiB).

For each package, two `prae build` runs start at the same moment, on the same base, in the
same lab (so both see the same host load):

- **prae**: the profile prae predicts (`--tier T`, default `low`, the tier the calibration
  measurements in calibration/packages/ used);
- **packer**: Packer's QEMU builder defaults pinned (`--vcpus 1 --memory 512MiB`; Packer sets
  no disk or network limits, and nothing else is pinned).

Both measure only (`--no-image`: the flatten step is the same for both) and use the same build
disk (computed by prae from the package's installed size; Packer's own default is a 40 GiB
disk, which would not change a build that fits). For each run: whether it failed and why (an
out-of-memory kill in the guest is reported as such by prae, from the guest's kernel log), wall
time, install time, peak guest memory, and the reserved memory-seconds: the build's memory
times how long its reservation in prae's capacity ledger was held (from `queue reserved` to
`cleanup released`, i.e. while the VM existed). Wall time is counted from the package's
repository being ready, so the run that prepares (and caches) the repository is not charged
for it.

Not part of CI. Needs the lab (tests/lab/README.md): root, a libvirtd on qemu:///system and
the Debian 12 base. Usage:

    export PRAE_LAB_DEBIAN="$(tests/lab/build-debian.sh | tail -n 1)"
    python3 benches/build_vs_packer.py [--tier low] [--out benches/results/build_vs_packer.md] PKG...

Environment: PRAE_LAB_DEBIAN (the base directory, required), PRAE_LAB_DIR (where the state and
the shared repository cache go; default: the system's temporary directory), PRAE (the prae
binary; default: `cargo build --bin prae` and its output).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

PACKER_MEMORY = "512MiB"
PACKER_VCPUS = "1"


def units_kib(text):
    """'1GiB' / '512MiB' / '16476364KiB' -> KiB."""
    m = re.fullmatch(r"(\d+)(KiB|MiB|GiB|TiB)", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    return int(m.group(1)) * {"KiB": 1, "MiB": 1024, "GiB": 1024**2, "TiB": 1024**3}[m.group(2)]


def prae_binary():
    if os.environ.get("PRAE"):
        return os.environ["PRAE"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--quiet", "--bin", "prae"], cwd=root, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    return os.path.join(target, "debug", "prae")


def run_build(prae, uri, state, pools, package, flags, env):
    """One `prae build --format json`; returns what the table needs."""
    argv = [
        prae, "--uri", uri, "build", "--package", package, "--no-image", "--format", "json",
        "--state-dir", os.path.join(state, "state"), "--builds-pool", pools[0],
        "--images-pool", pools[1],
    ] + flags
    started = time.monotonic()
    p = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall_total = time.monotonic() - started
    events, manifest = [], None
    for line in p.stdout.splitlines():
        v = json.loads(line)
        if "event" in v:
            events.append(v["event"])
        elif "manifest" in v:
            manifest = v["manifest"]

    def at(step, prefix):
        for e in events:
            if e["step"] == step and e["message"].startswith(prefix):
                return e
        return None

    repo_ready = next((e for e in events if e["step"] == "repo" and "deb(s)" in e["message"]),
                      None)
    reserving = at("queue", "reserving ")
    reserved = at("queue", "reserved after")
    released = at("cleanup", "released ")
    end = events[-1]["elapsed_s"] if events else wall_total
    m = re.match(r"reserving (\d+) vCPU\(s\) and (\S+) of", reserving["message"]) if reserving \
        else None
    vcpus = int(m.group(1)) if m else None
    memory_kib = units_kib(m.group(2)) if m else None
    held = (released["elapsed_s"] - reserved["elapsed_s"]) if reserved and released else None
    error = p.stderr.strip().splitlines()[-1] if p.returncode != 0 and p.stderr.strip() else ""
    return {
        "ok": p.returncode == 0 and manifest is not None,
        "error": error,
        "oom": "ran out of memory" in error,
        "vcpus": vcpus,
        "memory_kib": memory_kib,
        "wall_s": end - (repo_ready["elapsed_s"] if repo_ready else 0.0),
        "install_s": manifest["measured"]["install_seconds"] if manifest else None,
        "peak_kib": manifest["measured"]["peak_memory_kib"] if manifest else None,
        "held_s": held,
        "mem_gib_s": held * memory_kib / 1024**2 if held is not None and memory_kib else None,
        "vcpu_s": held * vcpus if held is not None and vcpus else None,
    }


def remove_pools(uri, pools):
    for pool in pools:
        subprocess.run(["virsh", "-q", "-c", uri, "pool-destroy", pool], capture_output=True)
        subprocess.run(["virsh", "-q", "-c", uri, "pool-undefine", pool], capture_output=True)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("packages", nargs="+")
    ap.add_argument("--tier", default="low")
    ap.add_argument("--uri", default="qemu:///system")
    ap.add_argument("--out", default=None, help="Markdown file the table is written to")
    a = ap.parse_args()
    base = os.environ.get("PRAE_LAB_DEBIAN")
    if not base or not os.path.isfile(os.path.join(base, "base.qcow2")):
        sys.exit("set PRAE_LAB_DEBIAN to the directory tests/lab/build-debian.sh printed")
    prae = prae_binary()
    lab_dir = os.environ.get("PRAE_LAB_DIR") or tempfile.gettempdir()
    state = tempfile.mkdtemp(prefix="prae-bench-build.", dir=lab_dir)
    tag = os.path.basename(state).replace(".", "-")
    env = dict(os.environ)
    env.pop("PRAE_DB", None)
    env["PRAE_BASE_DIR"] = base
    # A ledger of its own: the two runs of a pair (1 vCPU each) fit the lab's 2 cores together.
    env["PRAE_LEDGER_DIR"] = os.path.join(state, "ledger")
    env["PRAE_REPO_CACHE"] = os.path.join(lab_dir, "prae-build-repos")
    configs = [
        ("prae", ["--tier", a.tier]),
        ("packer", ["--vcpus", PACKER_VCPUS, "--memory", PACKER_MEMORY]),
    ]
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    try:
        for pkg in a.packages:
            results = {}
            threads = []
            for i, (name, flags) in enumerate(configs):
                pools = (f"{tag}-{name}-builds", f"{tag}-{name}-images")

                def go(name=name, flags=flags, pools=pools):
                    results[name] = run_build(prae, a.uri, state, pools, pkg, flags, env)

                t = threading.Thread(target=go)
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            for name, _ in configs:
                r = results[name]
                rows.append((pkg, name, r))
                print(f"{pkg:24} {name:7} {'ok' if r['ok'] else 'FAILED: ' + r['error']} "
                      f"wall {fmt(r['wall_s'], '.1f')} s, {fmt(r['mem_gib_s'], '.1f')} GiB·s",
                      flush=True)
    finally:
        for name, _ in configs:
            remove_pools(a.uri, (f"{tag}-{name}-builds", f"{tag}-{name}-images"))
        shutil.rmtree(state, ignore_errors=True)
    load_after = os.getloadavg()

    out = []
    out.append("| package | sized by | vCPUs | memory | result | wall (s) | install (s) "
               "| peak guest memory (MiB) | reserved memory (GiB·s) | reserved vCPU·s |")
    out.append("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for pkg, name, r in rows:
        result = "ok" if r["ok"] else ("**out of memory**" if r["oom"] else "failed") \
            + ("" if r["ok"] else f": {r['error'].removeprefix('prae: ')}")
        out.append(
            f"| {pkg} | {name} | {fmt(r['vcpus'], 'd')} | "
            f"{fmt(r['memory_kib'] and r['memory_kib'] // 1024, 'd')} MiB | {result} | "
            f"{fmt(r['wall_s'], '.1f')} | {fmt(r['install_s'], '.1f')} | "
            f"{fmt(r['peak_kib'] and r['peak_kib'] / 1024, '.0f')} | "
            f"{fmt(r['mem_gib_s'], '.1f')} | {fmt(r['vcpu_s'], '.1f')} |")
    out.append("")
    out.append("| sized by | builds ok | failed (out of memory) | total wall (s) "
               "| total reserved memory (GiB·s) | per successful build (GiB·s) |")
    out.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    totals = {}
    for name, _ in configs:
        rs = [r for _, n, r in rows if n == name]
        ok = [r for r in rs if r["ok"]]
        wall = sum(r["wall_s"] for r in rs)
        mem = sum(r["mem_gib_s"] or 0 for r in rs)
        totals[name] = (len(ok), wall, mem)
        per = mem / len(ok) if ok else None
        out.append(f"| {name} | {len(ok)}/{len(rs)} | {len(rs) - len(ok)} "
                   f"({sum(r['oom'] for r in rs)}) | {wall:.1f} | {mem:.1f} | {fmt(per, '.1f')} |")
    (pok, pw, pm), (kok, kw, km) = totals["prae"], totals["packer"]
    out.append("")
    out.append(f"Ratios prae / packer: total wall {pw / kw:.2f}, total reserved memory-seconds "
               f"{pm / km:.2f}; successful builds {pok} vs {kok}.")
    table = "\n".join(out)
    print(table)
    if a.out:
        with open(a.out, "w") as f:
            f.write("# Image builds: prae-sized build VM vs Packer's static default\n\n")
            f.write(f"Run {started}, `python3 benches/build_vs_packer.py --tier {a.tier} "
                    f"{' '.join(a.packages)}` (each package's two builds started together), "
                    f"QEMU TCG on the lab host; load average (1/5/15 min) before "
                    f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
                    f"{'/'.join(f'{x:.1f}' for x in load_after)}. "
                    f"prae: `--tier {a.tier}`; packer: `--vcpus {PACKER_VCPUS} --memory "
                    f"{PACKER_MEMORY}`. Wall time from the repository being ready to the "
                    f"build's end; reserved memory-seconds = the build VM's memory x the time "
                    f"its ledger reservation was held.\n\n")
            f.write(table + "\n")


if __name__ == "__main__":
    main()

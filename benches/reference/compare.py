#!/usr/bin/env python3
"""prae vs statsforecast, side by side in one invocation on the same series and machine.

    benches/reference/compare.py [--repeats N] [--no-write]

1. Builds and runs prae's benchmark (`cargo bench --bench forecast -- --json`, release profile,
   RAYON_NUM_THREADS=1): fit+forecast time per series on one thread, rolling-origin MASE at
   statsforecast's stored origins, forecast_many on rayon pools of 1 and 2 threads.
2. Right after, in a child process pinned to one CPU with every numeric library at one thread,
   times statsforecast's AutoARIMA(season_length=1) fit + predict(h=12, level=[80, 95]) on the
   same 67 series (best of N, as statsforecast_reference.py does), using the tools installed by
   run.sh in ${PRAE_PYREF:-~/.cache/prae/pyref}.
3. Prints the table and writes it to benches/results/forecast.md (unless --no-write), with the
   command, the date and the load average before and after each side.

statsforecast's MASE is the committed fixture (statsforecast_mase.json): it is deterministic
(bit-identical across runs, see README.md), so it is read rather than refitted (5-10 min).
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "forecast")
RESULTS = os.path.join(ROOT, "benches", "results", "forecast.md")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def loadavg():
    return [round(x, 2) for x in os.getloadavg()]


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: %s" % ", ".join(map(str, loadavg()))


def sf_worker(repeats):
    """Child process: time statsforecast on the fixture series; JSON on stdout."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass
    import warnings
    import numpy as np
    from statsforecast import __version__ as sf_version
    from statsforecast.models import AutoARIMA

    ref = json.load(open(os.path.join(FIX, "statsforecast.json")))
    series = []
    for s in ref["series"]:
        with open(os.path.join(FIX, s["series_file"])) as f:
            series.append((s["name"], np.array([float(v) for v in f if v.strip()])))

    def fit_forecast(y):
        m = AutoARIMA(season_length=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(y)
            return m.predict(h=12, level=[80, 95])

    fit_forecast(series[0][1])  # first-call costs, untimed
    rows = []
    for name, y in series:
        walls, cpus = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            fit_forecast(y)
            cpus.append(time.process_time() - c0)
            walls.append(time.perf_counter() - w0)
        rows.append({"name": name, "wall_s": min(walls), "cpu_s": min(cpus)})
    json.dump({"statsforecast": sf_version, "python": platform.python_version(),
               "numpy": np.__version__, "per_series": rows}, sys.stdout)


def summary(xs):
    return {"median": statistics.median(xs), "mean": statistics.fmean(xs), "total": sum(xs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--sf-worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sf_worker:
        return sf_worker(a.repeats)

    command = "benches/reference/compare.py" + ("" if a.repeats == 3 else " --repeats %d" % a.repeats)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    up_start = uptime()

    # prae: build first (untimed), then run
    # the bench profile as release (no debug info), so the release build is reused
    env = dict(os.environ, RAYON_NUM_THREADS="1", CARGO_PROFILE_BENCH_DEBUG="false")
    subprocess.run(["cargo", "bench", "--bench", "forecast", "--no-run"], cwd=ROOT, env=env,
                   check=True, stdout=subprocess.DEVNULL)
    l0 = loadavg()
    p = subprocess.run(["cargo", "bench", "--quiet", "--bench", "forecast", "--", "--json",
                        "--repeats", str(a.repeats)], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.PIPE)
    prae = json.loads(p.stdout)
    l1 = loadavg()

    # statsforecast, back to back
    pyref = os.environ.get("PRAE_PYREF", os.path.expanduser("~/.cache/prae/pyref"))
    senv = dict(os.environ, PYTHONHASHSEED="0",
                PYTHONPATH=pyref + (os.pathsep + os.environ["PYTHONPATH"]
                                    if os.environ.get("PYTHONPATH") else ""))
    senv.update({k: "1" for k in THREAD_VARS})
    q = subprocess.run([sys.executable, os.path.abspath(__file__), "--sf-worker",
                        "--repeats", str(a.repeats)], env=senv, check=True,
                       stdout=subprocess.PIPE)
    sf = json.loads(q.stdout)
    l2 = loadavg()
    up_end = uptime()

    pw = [r["wall_s"] for r in prae["fit_forecast"]["per_series"]]
    pc = [r["cpu_s"] for r in prae["fit_forecast"]["per_series"]]
    sw = [r["wall_s"] for r in sf["per_series"]]
    sc = [r["cpu_s"] for r in sf["per_series"]]
    PW, PC, SW, SC = summary(pw), summary(pc), summary(sw), summary(sc)
    ratios = [s / p for s, p in zip(sw, pw)]
    m = prae["mase"]
    b = prae["batch"]
    b1, b2 = b["runs"][0]["wall_s"], b["runs"][1]["wall_s"]

    def ms(x):
        return "%.2f ms" % (1000 * x)

    def ok(c):
        return "yes" if c else "**no**"

    lines = [
        "# Forecasting benchmark: prae vs statsforecast",
        "",
        "Generated by `%s` on %s (%d CPUs online, %s). Both sides in this one invocation, "
        "back to back, on the %d series of `tests/fixtures/forecast/`."
        % (command, started, os.cpu_count() or 0, platform.machine(), len(pw)),
        "",
        "- prae: `cargo bench --bench forecast -- --json` (release profile), "
        "`RAYON_NUM_THREADS=1`, `AutoArima::new()`, fit + `forecast(12, [80, 95])` on a "
        "one-thread rayon pool, best of %d per series; CPU = the thread's time on CPU." % a.repeats,
        "- statsforecast %s (Python %s, numpy %s): `AutoARIMA(season_length=1)`, fit + "
        "`predict(h=12, level=[80, 95])`, process pinned to one CPU, every numeric library at "
        "one thread, best of %d per series, one untimed warm-up fit."
        % (sf["statsforecast"], sf["python"], sf["numpy"], a.repeats),
        "- Load: `%s` at the start, `%s` at the end; 1/5/15-min load average %s before prae, "
        "%s between prae and statsforecast, %s after. Wall times are inflated by other work on "
        "the machine; CPU times are the steadier number." % (up_start, up_end, l0, l1, l2),
        "",
        "## Fit + forecast time per series (one thread)",
        "",
        "| | prae | statsforecast | statsforecast / prae | target |",
        "| --- | --- | --- | --- | --- |",
        "| median wall | %s | %s | **%.1fx** | >= 20x: %s |"
        % (ms(PW["median"]), ms(SW["median"]), SW["median"] / PW["median"],
           ok(SW["median"] / PW["median"] >= 20)),
        "| mean wall | %s | %s | %.1fx | |" % (ms(PW["mean"]), ms(SW["mean"]), SW["mean"] / PW["mean"]),
        "| total wall | %.2f s | %.2f s | %.1fx | |" % (PW["total"], SW["total"], SW["total"] / PW["total"]),
        "| median CPU | %s | %s | %.1fx | |" % (ms(PC["median"]), ms(SC["median"]), SC["median"] / PC["median"]),
        "| mean CPU | %s | %s | %.1fx | |" % (ms(PC["mean"]), ms(SC["mean"]), SC["mean"] / PC["mean"]),
        "| per-series ratio (wall), median / min | | | %.1fx / %.1fx | |"
        % (statistics.median(ratios), min(ratios)),
        "",
        "## Accuracy: rolling-origin MASE (h = 12, 10 origins, scale = in-sample one-step naive)",
        "",
        "| | prae | statsforecast | target |",
        "| --- | --- | --- | --- |",
        "| median over series | **%.4f** | %.4f | prae no worse: %s |"
        % (m["prae_median"], m["statsforecast_median"],
           ok(m["prae_median"] <= m["statsforecast_median"])),
        "| mean over series | %.4f | %.4f | |" % (m["prae_mean"], m["statsforecast_mean"]),
        "| series where prae's MASE <= statsforecast's | %d of %d | | |"
        % (m["prae_no_worse_series"], m["series"]),
    ]
    if m.get("r_series"):
        lines += [
            "| R's own `auto.arima` (stored, same origins): median / mean | %.4f / %.4f | | |"
            % (m["r_median"], m["r_mean"]),
            "| origins where prae's model (order, mean, drift) is R's | %d of %d | | |"
            % (m["same_model_as_r_origins"], m["r_origins"]),
        ]
    lines += [
        "",
        "prae refits `AutoArima::new()` (R's rules, including R's approximation during the "
        "search) at every origin; statsforecast's numbers are `statsforecast_mase.json` "
        "(AutoARIMA class defaults, which search on the exact likelihood: "
        "`approximation=False`), R's are `r_auto_arima_origins.csv` (`auto.arima` with its "
        "defaults, `benches/reference/r_auto_arima.R`); the same origins and scale rule "
        "(benches/reference/README.md).",
        "",
        "## Batch: `forecast_many` over the %d series" % len(pw),
        "",
        "| rayon threads | wall (best of %d) | busiest worker's CPU | speed-up | target |"
        % a.repeats,
        "| --- | --- | --- | --- | --- |",
        "| 1 | %.3f s | %.3f s | 1.00 | |" % (b1, b["runs"][0]["min_busiest_worker_cpu_s"]),
        "| 2 | %.3f s | %.3f s | **%.2f** | >= 1.8: %s |"
        % (b2, b["runs"][1]["min_busiest_worker_cpu_s"], b1 / b2, ok(b1 / b2 >= 1.8)),
        "",
        "Runs alternate between the pools (1, 2, 1, 2, ...). On two dedicated cores the batch "
        "would take as long as its busiest worker: %.2fx. Control, a pure-arithmetic job of the "
        "same shape run next to each batch: %.3f s on 1 thread, %.3f s on 2, speed-up %.2f; "
        "when it is well below 2, the machine had no second core to give (other work; Linux "
        "autogroup shares CPU per session, not per thread), and the batch's wall-clock speed-up "
        "cannot show more. Load average at the end of the batch runs: %s."
        % (b["speedup_if_dedicated_cores"], b["control"]["runs"][0]["wall_s"],
           b["control"]["runs"][1]["wall_s"], b["control"]["speedup_2_over_1"], b["loadavg"]),
        "",
        "Same forecasts on 1 and 2 threads: %s." % ("yes" if b["same_answers"] else "NO"),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
        with open(RESULTS, "w") as f:
            f.write(text)
        raw = {"prae": prae, "statsforecast": sf, "load": {"before": l0, "between": l1, "after": l2}}
        with open(RESULTS.replace(".md", ".json"), "w") as f:
            json.dump(raw, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())

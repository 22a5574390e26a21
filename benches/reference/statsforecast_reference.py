#!/usr/bin/env python3
"""statsforecast AutoARIMA reference for prae's forecaster.

Builds the benchmark series from calibration/traces/ (rule in README.md beside
this file), writes them to tests/fixtures/forecast/series/<name>.txt, fits
statsforecast's AutoARIMA to each one on one CPU core and writes

  tests/fixtures/forecast/statsforecast.json       models, forecasts, timings,
                                                   plus the R datasets
  tests/fixtures/forecast/statsforecast_mase.json  rolling-origin accuracy

Run it through run.sh (which installs the pinned tools outside the repo), or
with statsforecast importable:  python3 benches/reference/statsforecast_reference.py
Options: --repeats N (timed fits per series, default 3), --skip-mase,
         --only SUBSTRING (restrict to matching series; fixtures are then
         written under a temporary name and not over the committed ones).
"""
import os

# One core, one thread everywhere; must happen before numpy/scipy load.
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
           "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse
import csv
import datetime
import gzip
import json
import math
import platform
import re
import statistics
import sys
import time
import warnings

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRACES = os.path.join(ROOT, "calibration", "traces")
RDATA = os.path.join(ROOT, "tests", "data", "forecast")
OUT = os.path.join(ROOT, "tests", "fixtures", "forecast")

WINDOW = 500          # last WINDOW samples of each trace
MIN_LEN = 200         # shorter series are skipped
STEP_S = 300          # nominal sampling interval of all three trace sets
HORIZON = 12
LEVELS = [80, 95]
N_ORIGINS = 10        # rolling origins for MASE
ORIGIN_STEP = HORIZON
SEASON_LENGTH = 1     # traces: non-seasonal AutoARIMA

# R's published results (forecast::auto.arima).
R_PUBLISHED = {
    "WWWusage": {"order": [1, 1, 1], "seasonal_order": [0, 0, 0, 1],
                 "coefficients": {"ar1": 0.6504, "ma1": 0.5256},
                 "sigma2": 9.995, "loglik": -254.15, "aicc": 514.55},
    "AirPassengers": {"transform": "log", "order": [0, 1, 1], "seasonal_order": [0, 1, 1, 12],
                      "coefficients": {"ma1": -0.4018, "sma1": -0.5569},
                      "aic": -483.3991, "bic": -474.7735, "loglik": 244.6996,
                      "note": "order from forecast::auto.arima(log(AirPassengers)); coefficients "
                              "are stats::arima's full-ML fit of this model (R's ?arima example, "
                              "on log10: MA coefficients do not depend on the log base); aic/bic "
                              "from stats::arima on log(AirPassengers), loglik = (6 - aic) / 2"},
}


def pin_one_core():
    """Restrict this process to the first CPU it may run on; return its id."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


# ---------------------------------------------------------------------------
# Series from the traces
# ---------------------------------------------------------------------------

def regularise(times, values):
    """Carry the previous value forward into missing 5-minute slots.

    For consecutive rows with time step dt, k = round(dt / 300). If k >= 2 the
    previous value is repeated k-1 times before the row (carry forward). Rows
    with k <= 1 (including dt = 0) are kept as one sample each, in file order.
    Returns (values, number of inserted samples as a list of positions).
    """
    out, filled = [values[0]], []
    for i in range(1, len(values)):
        k = int(math.floor((times[i] - times[i - 1]) / STEP_S + 0.5))
        for _ in range(k - 1):
            filled.append(len(out))
            out.append(out[-1])
        out.append(values[i])
    return out, filled


def read_bitbrains(path):
    times, vals = [], []
    with gzip.open(path, "rt") as fh:
        header = next(fh).rstrip("\n").split(";\t")
        col = header.index("CPU usage [MHZ]")
        for line in fh:
            if not line.strip():
                continue
            f = line.rstrip("\n").split(";\t")
            times.append(int(f[0]))
            vals.append(float(f[col]))
    return times, vals, "CPU usage [MHZ]"


def read_nab(path):
    times, vals = [], []
    with open(path, newline="") as fh:
        r = csv.reader(fh)
        next(r)
        for row in r:
            if not row:
                continue
            t = datetime.datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S")
            times.append(t.replace(tzinfo=datetime.timezone.utc).timestamp())
            vals.append(float(row[1]))
    return times, vals, "value"


def read_planetlab(path):
    with open(path) as fh:
        vals = [float(x) for x in fh.read().split()]
    return [i * STEP_S for i in range(len(vals))], vals, "CPU %"


def vm_number(f):
    return int(re.search(r"vm(\d+)", f).group(1))


def trace_files():
    bb = os.path.join(TRACES, "bitbrains-rnd")
    nab = os.path.join(TRACES, "nab-aws")
    pl = os.path.join(TRACES, "planetlab", "20110303")
    out = []
    for f in sorted((f for f in os.listdir(bb) if f.endswith(".csv.gz")), key=vm_number):
        out.append(("bitbrains", "bitbrains-vm%d" % vm_number(f), os.path.join(bb, f), read_bitbrains))
    for f in sorted(f for f in os.listdir(nab) if f.endswith(".csv")):
        out.append(("nab", "nab-" + f[:-4], os.path.join(nab, f), read_nab))
    for f in sorted(os.listdir(pl)):
        out.append(("planetlab", "planetlab-" + f, os.path.join(pl, f), read_planetlab))
    return out


def build_series():
    series, skipped = [], []
    for set_name, name, path, reader in trace_files():
        times, vals, column = reader(path)
        reg, filled = regularise(times, vals)
        n_total = len(reg)
        if n_total < MIN_LEN:
            skipped.append({"name": name, "length": n_total})
            continue
        start = max(0, n_total - WINDOW)
        y = reg[start:]
        series.append({
            "name": name,
            "y": y,
            "source": {
                "set": set_name,
                "file": os.path.relpath(path, ROOT),
                "column": column,
                "rows_in_file": len(vals),
                "length_after_gap_fill": n_total,
                "window_start": start,
                "gaps_filled_in_window": sum(1 for p in filled if p >= start),
                "gaps_filled_in_file": len(filled),
            },
        })
    return series, skipped


def fmt(x):
    """Shortest text that reads back as the same double."""
    return repr(float(x))


def write_series(series):
    d = os.path.join(OUT, "series")
    os.makedirs(d, exist_ok=True)
    for s in series:
        with open(os.path.join(d, s["name"] + ".txt"), "w") as fh:
            fh.write("".join(fmt(v) + "\n" for v in s["y"]))


# ---------------------------------------------------------------------------
# statsforecast
# ---------------------------------------------------------------------------

def model_params(season_length, r_rule=False):
    """AutoARIMA arguments. r_rule=True passes approximation=None, which makes
    statsforecast use R's default rule (approximation when n > 150 or m > 12);
    the AutoARIMA class itself defaults to approximation=False."""
    d = dict(season_length=season_length)
    if r_rule:
        d["approximation"] = None
    return d


def fit_forecast(np, AutoARIMA, y, season_length, h=HORIZON, level=LEVELS, r_rule=False):
    m = AutoARIMA(**model_params(season_length, r_rule))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(np.asarray(y, dtype=np.float64))
        fc = m.predict(h=h, level=level or None)
    return m, fc


def describe(m, fc):
    md = m.model_
    p, q, P, Q, period, d, D = (int(v) for v in md["arma"])
    coef = {("mean" if k == "intercept" else k): float(v) for k, v in md["coef"].items()}
    return {
        "order": [p, d, q],
        "seasonal_order": [P, D, Q, period],
        "constant": "intercept" in md["coef"],
        "drift": "drift" in md["coef"],
        "coefficients": coef,
        "sigma2": float(md["sigma2"]),
        "loglik": float(md["loglik"]),
        "aic": none_if_nan(md["aic"]),
        "aicc": none_if_nan(md["aicc"]),
        "bic": none_if_nan(md["bic"]),
        "nobs": int(md["nobs"]),
    }, {
        "horizon": len(fc["mean"]),
        "mean": [float(v) for v in fc["mean"]],
        "intervals": [{"level": lv,
                       "lower": [float(v) for v in fc["lo-%d" % lv]],
                       "upper": [float(v) for v in fc["hi-%d" % lv]]} for lv in LEVELS],
    }


def css_check(np, model, y):
    """Refit the chosen model with method='CSS' (statsforecast.arima.arima, mean and
    drift as AutoARIMA's myarima adds them) and compare the ARMA coefficients.
    equal=True means the exact-ML stage of CSS-ML left the CSS estimates unchanged."""
    from statsforecast.arima import arima
    p, d, q = model["order"]
    P, D, Q, period = model["seasonal_order"]
    y = np.asarray(y, dtype=np.float64)
    xreg = np.arange(1, len(y) + 1, dtype=np.float64).reshape(-1, 1) if model["drift"] else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = arima(y, order=(p, d, q), seasonal={"order": (P, D, Q), "period": period},
                  xreg=xreg, include_mean=model["constant"] and d + D == 0, method="CSS")
    arma = re.compile(r"s?(ar|ma)\d+$")
    a = {k: v for k, v in model["coefficients"].items() if arma.match(k)}
    b = {k: float(v) for k, v in f["coef"].items() if arma.match(k)}
    if not a:
        return None
    diff = max(abs(a[k] - b.get(k, math.nan)) for k in a)
    return {"coefficients": b, "max_abs_diff": diff, "equal": bool(diff < 1e-9)}


def none_if_nan(x):
    x = float(x)
    return None if (math.isnan(x) or math.isinf(x)) else x


def timed(np, AutoARIMA, y, season_length, repeats, r_rule=False):
    walls, cpus, m, fc = [], [], None, None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        m, fc = fit_forecast(np, AutoARIMA, y, season_length, r_rule=r_rule)
        cpus.append(time.process_time() - c0)
        walls.append(time.perf_counter() - w0)
    return m, fc, walls, cpus


def rolling_mase(np, AutoARIMA, y):
    """MASE of AutoARIMA over N_ORIGINS rolling origins (rule in README.md)."""
    n = len(y)
    origins = [n - HORIZON - ORIGIN_STEP * (N_ORIGINS - 1 - k) for k in range(N_ORIGINS)]
    rows, mases = [], []
    for t in origins:
        train, test = y[:t], y[t:t + HORIZON]
        scale = sum(abs(train[i] - train[i - 1]) for i in range(1, t)) / (t - 1)
        m, fc = fit_forecast(np, AutoARIMA, train, SEASON_LENGTH, level=[])
        mean = [float(v) for v in fc["mean"]]
        mae = sum(abs(a - b) for a, b in zip(mean, test)) / HORIZON
        mase = mae / scale if scale > 0 else None
        if mase is not None:
            mases.append(mase)
        md = m.model_
        p, q, P, Q, period, d, D = (int(v) for v in md["arma"])
        rows.append({"origin": t, "order": [p, d, q],
                     "constant": "intercept" in md["coef"], "drift": "drift" in md["coef"],
                     "mean": mean, "mae": mae, "scale": scale, "mase": mase})
    return {"origins": rows,
            "mase": statistics.fmean(mases) if len(mases) == N_ORIGINS else None,
            "mase_origins_used": len(mases)}


# ---------------------------------------------------------------------------
# JSON output: objects indented, lists of scalars on one line
# ---------------------------------------------------------------------------

def dumps(obj, indent=0):
    pad, pad1 = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [pad1 + json.dumps(k) + ": " + dumps(v, indent + 1) for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (dict, list)) for v in obj):
            return "[" + ", ".join(dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(pad1 + dumps(v, indent + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return "null"
        return repr(obj)
    return json.dumps(obj)


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(dumps(obj) + "\n")
    os.replace(tmp, path)


def summary(xs):
    xs = sorted(xs)
    return {"n": len(xs), "total_s": sum(xs), "median_s": statistics.median(xs),
            "mean_s": statistics.fmean(xs), "min_s": xs[0], "max_s": xs[-1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-mase", action="store_true")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()

    cpu = pin_one_core()
    load_start = os.getloadavg()
    t_import = time.perf_counter()
    import numpy as np
    import scipy
    import statsforecast
    from statsforecast.models import AutoARIMA
    t_import = time.perf_counter() - t_import

    series, skipped = build_series()
    if args.only:
        series = [s for s in series if args.only in s["name"]]
        if not series:
            sys.exit("no series name contains %r" % args.only)
    partial = args.only is not None or args.skip_mase
    suffix = ".partial" if partial else ""
    os.makedirs(OUT, exist_ok=True)
    if not args.only:
        write_series(series)
    print("%d series (%d skipped as shorter than %d); cpu %s" % (len(series), len(skipped), MIN_LEN, cpu), flush=True)

    # Warm-up: one fit+forecast that is not timed (first-call costs: lazy imports, caches).
    w0 = time.perf_counter()
    fit_forecast(np, AutoARIMA, series[0]["y"], SEASON_LENGTH)
    warmup = time.perf_counter() - w0

    out_series, out_mase = [], []
    for i, s in enumerate(series):
        m, fc, walls, cpus = timed(np, AutoARIMA, s["y"], SEASON_LENGTH, args.repeats)
        model, forecast = describe(m, fc)
        model["css_check"] = css_check(np, model, s["y"])
        out_series.append({
            "name": s["name"],
            "series_file": "series/%s.txt" % s["name"],
            "n": len(s["y"]),
            "source": s["source"],
            "model": model,
            "forecast": forecast,
            "timing": {"fit_forecast_s": min(walls), "runs_wall_s": walls, "runs_cpu_s": cpus},
        })
        m2, fc2, walls2, cpus2 = timed(np, AutoARIMA, s["y"], SEASON_LENGTH, 1, r_rule=True)
        model2, forecast2 = describe(m2, fc2)
        out_series[-1]["r_rule_approximation"] = {
            "approximation": len(s["y"]) > 150,
            "model": model2, "forecast": forecast2,
            "timing": {"fit_forecast_s": walls2[0], "runs_cpu_s": cpus2}}
        line = "%2d %-50s n=%3d ARIMA%s c=%d dr=%d %.3fs | R-rule ARIMA%s c=%d dr=%d %.3fs" % (
            i, s["name"], len(s["y"]), tuple(model["order"]), model["constant"], model["drift"], min(walls),
            tuple(model2["order"]), model2["constant"], model2["drift"], walls2[0])
        if not args.skip_mase:
            w0 = time.perf_counter()
            r = rolling_mase(np, AutoARIMA, s["y"])
            r["wall_s"] = time.perf_counter() - w0
            out_mase.append(dict(name=s["name"], n=len(s["y"]), **r))
            line += "  MASE=%s (%.1fs)" % ("%.3f" % r["mase"] if r["mase"] is not None else "n/a", r["wall_s"])
        print(line, flush=True)

    # R datasets
    r_out = []
    for name, fname, m_season, transform in (("WWWusage", "wwwusage.txt", 1, None),
                                            ("AirPassengers", "airpassengers.txt", 12, "log"),
                                            ("lh", "lh.txt", 1, None)):
        y = [float(v) for v in open(os.path.join(RDATA, fname)).read().split()]
        if transform == "log":
            y = [math.log(v) for v in y]
        m, fc, walls, cpus = timed(np, AutoARIMA, y, m_season, args.repeats)
        model, forecast = describe(m, fc)
        model["css_check"] = css_check(np, model, y)
        r_out.append({"name": name, "data_file": "tests/data/forecast/" + fname,
                      "transform": transform, "n": len(y),
                      "parameters": model_params(m_season),
                      "model": model, "forecast": forecast,
                      "timing": {"fit_forecast_s": min(walls), "runs_wall_s": walls, "runs_cpu_s": cpus},
                      "r_published": R_PUBLISHED.get(name)})
        print("%s: ARIMA%s%s %s sigma2=%.4f loglik=%.3f aicc=%.3f" % (
            name, tuple(model["order"]), tuple(model["seasonal_order"]),
            {k: round(v, 4) for k, v in model["coefficients"].items()},
            model["sigma2"], model["loglik"], model["aicc"]), flush=True)

    best = [s["timing"]["fit_forecast_s"] for s in out_series]
    doc = {
        "schema_version": 1,
        "generated_by": "benches/reference/statsforecast_reference.py",
        "generated_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": {"python": platform.python_version(), "statsforecast": statsforecast.__version__,
                     "numpy": np.__version__, "scipy": scipy.__version__,
                     "platform": platform.machine() + " " + platform.system()},
        "parameters": {
            "model": "statsforecast.models.AutoARIMA",
            "arguments": model_params(SEASON_LENGTH),
            "note": "all other AutoARIMA arguments at their statsforecast 2.1.1 defaults "
                    "(mirroring R's auto.arima: d/D chosen by KPSS/seasonal test, max_p=max_q=5, "
                    "max_order=5, start_p=start_q=2, stepwise=True, ic='aicc', "
                    "allowdrift=True, allowmean=True, method=CSS-ML). One difference from R: "
                    "the AutoARIMA class defaults to approximation=False, R to approximation "
                    "when n > 150 or m > 12; 'r_rule_approximation' per series holds the fit "
                    "with approximation=None, which applies R's rule",
            "horizon": HORIZON, "levels": LEVELS,
        },
        "series_rule": {"window": WINDOW, "min_length": MIN_LEN, "step_s": STEP_S,
                        "gap_fill": "carry forward into k-1 slots where k = round(dt/300) >= 2; "
                                    "rows with k <= 1 kept as one sample each",
                        "columns": {"bitbrains": "CPU usage [MHZ]", "nab": "value", "planetlab": "CPU %"},
                        "skipped": skipped},
        "timing": {
            "one_core": cpu is not None, "threads": 1, "repeats": args.repeats,
            "statistic": "fit_forecast_s = minimum wall time over the repeats of AutoARIMA fit + "
                         "predict(h=12, level=[80,95]) on the series",
            "loadavg_start": list(load_start), "loadavg_end": list(os.getloadavg()),
            "cpus_online": os.cpu_count(),
            "warmup_s": warmup, "warmup_series": series[0]["name"],
            "import_s": t_import,
            "summary_best": summary(best),
            "summary_median_of_repeats": summary([statistics.median(s["timing"]["runs_wall_s"]) for s in out_series]),
            "summary_cpu_best": summary([min(s["timing"]["runs_cpu_s"]) for s in out_series]),
        },
        "series": out_series,
        "r_datasets": r_out,
    }
    write_json(os.path.join(OUT, "statsforecast.json" + suffix), doc)
    if not args.skip_mase:
        ms = [r["mase"] for r in out_mase if r["mase"] is not None]
        write_json(os.path.join(OUT, "statsforecast_mase.json" + suffix), {
            "schema_version": 1,
            "generated_by": doc["generated_by"],
            "generated_at": doc["generated_at"],
            "versions": doc["versions"],
            "parameters": doc["parameters"],
            "rule": {"horizon": HORIZON, "origins": N_ORIGINS, "origin_step": ORIGIN_STEP,
                     "origin_k": "t_k = n - %d - %d*(%d-1-k), k = 0..%d: fit on y[0:t_k], forecast y[t_k:t_k+%d]"
                                 % (HORIZON, ORIGIN_STEP, N_ORIGINS, N_ORIGINS - 1, HORIZON),
                     "refit": "order re-selected by AutoARIMA at every origin",
                     "scale": "mean |y[i]-y[i-1]| over the training part y[0:t_k] (non-seasonal naive)",
                     "mase_origin": "mean |forecast - actual| over the 12 steps / scale",
                     "mase": "mean of the 10 per-origin MASE values (null if any scale is 0)"},
            "summary": {"series": len(out_mase), "with_mase": len(ms),
                        "median_mase": statistics.median(ms) if ms else None,
                        "mean_mase": statistics.fmean(ms) if ms else None,
                        "total_wall_s": sum(r["wall_s"] for r in out_mase)},
            "series": out_mase,
        })
    print("timing (best of %d): median %.3fs, total %.1fs over %d series; warm-up %.2fs" % (
        args.repeats, statistics.median(best), sum(best), len(best), warmup))
    if partial:
        print("partial run: wrote *.partial files, committed fixtures untouched")


if __name__ == "__main__":
    main()

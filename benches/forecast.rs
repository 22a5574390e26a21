//! Forecasting benchmark, prae's side (`cargo bench --bench forecast`; harness = false).
//!
//! On the 67 series of `tests/fixtures/forecast/` it measures:
//! - fit + forecast (h = 12, 80/95% intervals) time per series with `AutoArima::new()`, on a
//!   rayon pool of one thread, best of `--repeats` runs (wall clock and the thread's CPU time);
//! - MASE over the rolling origins stored in `statsforecast_mase.json` (same origins, same
//!   scale rule), next to statsforecast's stored values;
//! - `forecast_many` over all series on rayon pools of 1 and 2 threads (runs alternating, best
//!   of `--repeats`), whether both give the same forecasts, the CPU time each worker spent, and
//!   a pure-arithmetic control of the same shape run next to it. The control tells a batch that
//!   does not scale from a machine that has no second core to give: on a loaded Linux host with
//!   autogroup scheduling a session gets its share of the CPUs whatever its thread count, so
//!   the wall-clock speed-up of both drops towards 1. The busiest worker's CPU time gives the
//!   speed-up the batch would have on two dedicated cores.
//!
//! Prints a table, or JSON with `--json` (read by `benches/reference/compare.py`, which runs
//! statsforecast in the same invocation and writes `benches/results/forecast.md`).
//! Options: `--json`, `--repeats N` (default 3), `--skip-mase`, `--only NAME`, `--detail`
//! (per-origin models of both sides on stderr), `--approximation true|false|r` (the search's
//! CSS approximation; `r`, the default, is R's rule).

use prae::forecast::{AutoArima, Forecaster, forecast_many, values};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HORIZON: usize = 12;
const LEVELS: [f64; 2] = [80.0, 95.0];

/// CPU time of the calling thread (Linux `schedstat`, nanoseconds on CPU); `None` elsewhere.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Best-of-N wall time of runs on one pool, with the CPU time each worker spent.
#[derive(Default)]
struct BatchRuns {
    best_wall: f64,
    /// CPU time of the busiest worker, smallest over the runs.
    min_busiest_cpu: f64,
    /// Worker CPU times (seconds) of the run with the best wall time.
    best_workers_cpu: Vec<f64>,
    walls: Vec<f64>,
}

struct Run {
    wall: f64,
    workers_cpu: Vec<f64>,
}

impl BatchRuns {
    fn add(&mut self, r: Run) {
        let busiest = r.workers_cpu.iter().copied().fold(0.0, f64::max);
        if self.walls.is_empty() || r.wall < self.best_wall {
            self.best_wall = r.wall;
            self.best_workers_cpu = r.workers_cpu;
        }
        if self.walls.is_empty() || busiest < self.min_busiest_cpu {
            self.min_busiest_cpu = busiest;
        }
        self.walls.push(r.wall);
    }

    fn json(&self, threads: usize) -> Value {
        json!({"threads": threads, "wall_s": self.best_wall, "runs_wall_s": self.walls,
               "workers_cpu_s": self.best_workers_cpu,
               "min_busiest_worker_cpu_s": self.min_busiest_cpu})
    }
}

/// Runs `f` on pool `p`, timing the wall clock and each worker's CPU.
fn timed_on<R: Send>(p: &rayon::ThreadPool, f: impl FnOnce() -> R + Send) -> (R, Run) {
    let cpu = || {
        p.broadcast(|_| thread_cpu())
            .into_iter()
            .map(|c| c.map_or(f64::NAN, |d| d.as_secs_f64()))
            .collect::<Vec<f64>>()
    };
    let c0 = cpu();
    let t0 = Instant::now();
    let r = p.install(f);
    let wall = t0.elapsed().as_secs_f64();
    let workers_cpu = cpu().iter().zip(&c0).map(|(b, a)| b - a).collect();
    (r, Run { wall, workers_cpu })
}

/// A pure-arithmetic chunk of work (xorshift rounds), for the control of the batch speed-up.
fn spin(seed: u64, rounds: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x)
}

/// Rounds of [`spin`] that take about `seconds` of CPU time on this machine.
fn spin_rounds_for(seconds: f64) -> u64 {
    let rounds = 10_000_000;
    let (c0, t0) = (thread_cpu(), Instant::now());
    spin(1, rounds);
    let elapsed = thread_cpu()
        .zip(c0)
        .map_or(t0.elapsed().as_secs_f64(), |(b, a)| (b - a).as_secs_f64());
    let per_round = elapsed / rounds as f64;
    ((seconds / per_round.max(1e-12)) as u64).max(1000)
}

/// 1, 5 and 15-minute load averages (Linux), empty elsewhere.
fn loadavg() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| {
            s.split_whitespace()
                .take(3)
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// One origin of R's `auto.arima` from `r_auto_arima_origins.csv` (made by
/// `benches/reference/r_auto_arima.R`).
struct ROrigin {
    name: String,
    origin: usize,
    order: [usize; 3],
    mean: bool,
    drift: bool,
    mase: f64,
}

/// R's rows, or none when the file is absent.
fn read_r_origins() -> Vec<ROrigin> {
    let Ok(text) = std::fs::read_to_string(fixtures().join("r_auto_arima_origins.csv")) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim_matches('"').to_string())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("r_auto_arima_origins.csv: no column {name}"))
    };
    let (iname, iorigin, ip, id, iq) = (col("name"), col("origin"), col("p"), col("d"), col("q"));
    let (imean, idrift, imase) = (col("mean"), col("drift"), col("mase"));
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(|v| v.trim_matches('"')).collect();
            let num = |i: usize| -> usize { f[i].parse().expect("an integer") };
            ROrigin {
                name: f[iname].to_string(),
                origin: num(iorigin),
                order: [num(ip), num(id), num(iq)],
                mean: f[imean] == "TRUE",
                drift: f[idrift] == "TRUE",
                mase: f[imase].parse().expect("a number"),
            }
        })
        .collect()
}

/// prae's rolling-origin MASE on one series at statsforecast's stored origins, with how often
/// its model is the one statsforecast and R chose there.
fn mase_row(
    model: &AutoArima,
    name: &str,
    y: &[f64],
    sf: &Value,
    r_rows: &[ROrigin],
    detail: bool,
) -> Value {
    let mut mases = Vec::new();
    let (mut same_order, mut same_as_r) = (0, 0);
    let mut r_mases = Vec::new();
    let origins = sf["origins"].as_array().expect("origins");
    for og in origins {
        let t = og["origin"].as_u64().expect("origin") as usize;
        let train = &y[..t];
        let test = &y[t..t + HORIZON];
        let scale = (1..t).map(|i| (train[i] - train[i - 1]).abs()).sum::<f64>() / (t - 1) as f64;
        let fit = model.fit(&values(train).unwrap()).expect("fit");
        let fc = fit.forecast(HORIZON, &[]).expect("forecast");
        let mae = fc
            .mean
            .iter()
            .zip(test)
            .map(|(a, b)| (a - b).abs())
            .sum::<f64>()
            / HORIZON as f64;
        if scale > 0.0 {
            mases.push(mae / scale);
        }
        let sf_order: Vec<usize> = og["order"]
            .as_array()
            .expect("order")
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        if sf_order == fit.order() {
            same_order += 1;
        }
        let r = r_rows.iter().find(|r| r.name == name && r.origin == t);
        if let Some(r) = r {
            r_mases.push(r.mase);
            if r.order == fit.order()
                && r.mean == (fit.constant() && !fit.drift())
                && r.drift == fit.drift()
            {
                same_as_r += 1;
            }
        }
        if detail {
            let flags = |mean: bool, drift: bool| match (mean, drift) {
                (true, _) => " with mean",
                (_, true) => " with drift",
                _ => "",
            };
            eprintln!(
                "{name} origin {t}: prae {} aicc {:.2} mase {:.4} | statsforecast {:?}{} mase {:.4} \
                 | R {}",
                fit.label(),
                fit.aicc(),
                mae / scale,
                sf_order,
                flags(og["constant"] == true, og["drift"] == true),
                og["mase"].as_f64().unwrap_or(f64::NAN),
                r.map_or("-".to_string(), |r| format!(
                    "{:?}{} mase {:.4}",
                    r.order,
                    flags(r.mean, r.drift),
                    r.mase
                )),
            );
        }
    }
    let prae_mase = (mases.len() == origins.len()).then(|| mean(&mases));
    let r_mase = (r_mases.len() == origins.len()).then(|| mean(&r_mases));
    json!({"name": name, "prae": prae_mase, "statsforecast": sf["mase"], "r": r_mase,
           "origins": origins.len(), "same_order_origins": same_order,
           "same_model_as_r_origins": same_as_r})
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/forecast")
}

fn read_json(name: &str) -> Value {
    let p = fixtures().join(name);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read_series(file: &str) -> Vec<f64> {
    let p = fixtures().join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().expect("a number per line"))
        .collect()
}

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let k = v.len();
    if k % 2 == 1 {
        v[k / 2]
    } else {
        (v[k / 2 - 1] + v[k / 2]) / 2.0
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

struct Opts {
    json: bool,
    repeats: usize,
    skip_mase: bool,
    only: Option<String>,
    approximation: Option<bool>,
    detail: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        json: false,
        repeats: 3,
        skip_mase: false,
        only: None,
        approximation: None,
        detail: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => o.json = true,
            "--skip-mase" => o.skip_mase = true,
            "--repeats" => {
                o.repeats = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .expect("--repeats N (N >= 1)")
            }
            "--only" => o.only = args.next(),
            "--detail" => o.detail = true,
            "--approximation" => {
                o.approximation = match args.next().as_deref() {
                    Some("true") => Some(true),
                    Some("false") => Some(false),
                    Some("r") => None,
                    v => panic!("--approximation true|false|r, not {v:?}"),
                }
            }
            _ => {} // cargo bench passes --bench
        }
    }
    o
}

fn main() {
    let o = opts();
    let reference = read_json("statsforecast.json");
    let mase_ref = read_json("statsforecast_mase.json");
    let mut names = Vec::new();
    let mut data = Vec::new();
    for s in reference["series"].as_array().expect("series") {
        let name = s["name"].as_str().expect("name").to_string();
        if o.only.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        data.push(read_series(s["series_file"].as_str().expect("series_file")));
        names.push(name);
    }
    let series: Vec<Vec<Option<f64>>> = data.iter().map(|y| values(y).expect("finite")).collect();
    let mut model = AutoArima::new();
    model.options.approximation = o.approximation;
    let one = pool(1);
    let two = pool(2);

    // (a) fit + forecast per series on one thread
    let mut per_series = Vec::new();
    one.install(|| {
        let _ = model
            .fit(&series[0])
            .and_then(|f| f.forecast(HORIZON, &LEVELS)); // warm-up
        for (name, y) in names.iter().zip(&series) {
            let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
            let mut label = String::new();
            for _ in 0..o.repeats {
                let (c0, t0) = (thread_cpu(), Instant::now());
                let fit = model.fit(y).expect("fit");
                let fc = fit.forecast(HORIZON, &LEVELS).expect("forecast");
                let w = t0.elapsed().as_secs_f64();
                let c = thread_cpu()
                    .zip(c0)
                    .map_or(f64::NAN, |(a, b)| (a - b).as_secs_f64());
                std::hint::black_box(&fc);
                wall = wall.min(w);
                cpu = cpu.min(c);
                label = fit.label();
            }
            per_series.push(json!({"name": name, "n": y.len(), "model": label,
                                   "wall_s": wall, "cpu_s": cpu}));
        }
    });
    let walls: Vec<f64> = per_series
        .iter()
        .map(|r| r["wall_s"].as_f64().unwrap())
        .collect();
    let cpus: Vec<f64> = per_series
        .iter()
        .map(|r| r["cpu_s"].as_f64().unwrap_or(f64::NAN))
        .collect();

    // (b) rolling-origin MASE at statsforecast's origins, next to R's own auto.arima
    let mut mase_rows = Vec::new();
    if !o.skip_mase {
        let refs: Vec<&Value> = mase_ref["series"]
            .as_array()
            .expect("series")
            .iter()
            .collect();
        let r_rows = read_r_origins();
        let detail = o.detail;
        mase_rows = two.install(|| {
            use rayon::prelude::*;
            names
                .par_iter()
                .zip(&data)
                .map(|(name, y)| {
                    let sf = refs
                        .iter()
                        .find(|r| r["name"] == name.as_str())
                        .expect("series in statsforecast_mase.json");
                    mase_row(&model, name, y, sf, &r_rows, detail)
                })
                .collect()
        });
    }
    let pm: Vec<f64> = mase_rows
        .iter()
        .filter_map(|r| r["prae"].as_f64())
        .collect();
    let sm: Vec<f64> = mase_rows
        .iter()
        .filter_map(|r| r["statsforecast"].as_f64())
        .collect();
    let rm: Vec<f64> = mase_rows.iter().filter_map(|r| r["r"].as_f64()).collect();
    let r_origins: u64 = mase_rows
        .iter()
        .filter(|r| r["r"].is_number())
        .map(|r| r["origins"].as_u64().unwrap())
        .sum();
    let same_as_r: u64 = mase_rows
        .iter()
        .map(|r| r["same_model_as_r_origins"].as_u64().unwrap())
        .sum();
    let prae_better = mase_rows
        .iter()
        .filter(
            |r| match (r["prae"].as_f64(), r["statsforecast"].as_f64()) {
                (Some(a), Some(b)) => a <= b,
                _ => false,
            },
        )
        .count();

    // (c) forecast_many on 1 and 2 threads. The runs alternate (1, 2, 1, 2, ...) so both
    // pool sizes see the same machine; a pure-arithmetic control of the same shape runs next to
    // them and shows how much parallelism the machine gave this process at the time.
    let mut answers: Vec<Vec<Vec<f64>>> = vec![Vec::new(), Vec::new()];
    let mut batch = [BatchRuns::default(), BatchRuns::default()];
    let mut control = [BatchRuns::default(), BatchRuns::default()];
    // the control does as much CPU work as the batch (CPU time, so the load does not inflate it)
    let serial_cpu_s = cpus.iter().filter(|c| c.is_finite()).sum::<f64>();
    let spin_chunks = 64;
    let spin_rounds = spin_rounds_for(serial_cpu_s / spin_chunks as f64);
    for _ in 0..o.repeats {
        for (i, p) in [&one, &two].into_iter().enumerate() {
            let (r, run) = timed_on(p, || forecast_many(&series, &model, HORIZON, &LEVELS));
            answers[i] = r.into_iter().map(|r| r.expect("forecast").mean).collect();
            batch[i].add(run);
            let (sum, run) = timed_on(p, || {
                use rayon::prelude::*;
                (0..spin_chunks)
                    .into_par_iter()
                    .map(|k| spin(k, spin_rounds))
                    .reduce(|| 0, u64::wrapping_add)
            });
            std::hint::black_box(sum);
            control[i].add(run);
        }
    }
    let same_answers = answers[0] == answers[1];
    let speedup = batch[0].best_wall / batch[1].best_wall;
    let control_speedup = control[0].best_wall / control[1].best_wall;
    // if each worker had a core of its own, the batch would take as long as its busiest worker
    let dedicated_speedup = batch[0].min_busiest_cpu / batch[1].min_busiest_cpu;
    let batch_json: Vec<Value> = batch
        .iter()
        .zip([1, 2])
        .map(|(b, threads)| b.json(threads))
        .collect();
    let control_json: Vec<Value> = control
        .iter()
        .zip([1, 2])
        .map(|(b, threads)| b.json(threads))
        .collect();

    let out = json!({
        "series": names.len(),
        "repeats": o.repeats,
        "horizon": HORIZON,
        "levels": LEVELS,
        "rayon_num_threads_env": std::env::var("RAYON_NUM_THREADS").ok(),
        "fit_forecast": {
            "median_wall_s": median(&walls), "mean_wall_s": mean(&walls),
            "total_wall_s": walls.iter().sum::<f64>(),
            "median_cpu_s": median(&cpus), "mean_cpu_s": mean(&cpus),
            "per_series": per_series,
        },
        "mase": {
            "series": mase_rows.len(),
            "prae_median": median(&pm), "statsforecast_median": median(&sm),
            "prae_mean": if pm.is_empty() { Value::Null } else { json!(mean(&pm)) },
            "statsforecast_mean": if sm.is_empty() { Value::Null } else { json!(mean(&sm)) },
            "prae_no_worse_series": prae_better,
            "r_series": rm.len(),
            "r_median": median(&rm),
            "r_mean": if rm.is_empty() { Value::Null } else { json!(mean(&rm)) },
            "r_origins": r_origins,
            "same_model_as_r_origins": same_as_r,
            "per_series": mase_rows,
        },
        "batch": {"runs": batch_json, "speedup_2_over_1": speedup, "same_answers": same_answers,
                  "speedup_if_dedicated_cores": dedicated_speedup,
                  "control": {"what": "pure arithmetic, 64 equal chunks, same total work",
                              "runs": control_json, "speedup_2_over_1": control_speedup},
                  "loadavg": loadavg()},
    });
    if o.json {
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return;
    }
    let f = &out["fit_forecast"];
    println!("prae forecasting benchmark: {} series", names.len());
    println!(
        "fit+forecast per series, 1 thread, best of {}: median {:.4} s, mean {:.4} s wall; \
         median {:.4} s, mean {:.4} s CPU",
        o.repeats, f["median_wall_s"], f["mean_wall_s"], f["median_cpu_s"], f["mean_cpu_s"]
    );
    if !o.skip_mase {
        println!(
            "rolling-origin MASE (h = 12, 10 origins): median prae {:.4}, statsforecast {:.4} \
             (stored); prae no worse on {} of {} series",
            median(&pm),
            median(&sm),
            prae_better,
            mase_rows.len()
        );
        if !rm.is_empty() {
            println!(
                "R's auto.arima (stored): median MASE {:.4} on {} series; prae's model is R's at \
                 {same_as_r} of {r_origins} origins",
                median(&rm),
                rm.len()
            );
        }
    }
    println!(
        "forecast_many, best of {}: serial (1 thread) {:.3} s, parallel (2 threads) {:.3} s, \
         speed-up {speedup:.2} (same answers: {same_answers}); busiest worker's CPU {:.3} s vs \
         {:.3} s, i.e. {dedicated_speedup:.2} on two dedicated cores",
        o.repeats,
        batch[0].best_wall,
        batch[1].best_wall,
        batch[0].min_busiest_cpu,
        batch[1].min_busiest_cpu
    );
    println!(
        "control (pure arithmetic, same shape): 1 thread {:.3} s, 2 threads {:.3} s, speed-up \
         {control_speedup:.2}; load average {:?}",
        control[0].best_wall,
        control[1].best_wall,
        loadavg()
    );
}

//! Forecasting benchmark, prae's side (`cargo bench --bench forecast`; harness = false).
//!
//! On the 67 series of `tests/fixtures/forecast/` it measures:
//! - fit + forecast (h = 12, 80/95% intervals) time per series with `AutoArima::new()`, on a
//!   rayon pool of one thread, best of `--repeats` runs (wall clock and the thread's CPU time);
//! - MASE over the rolling origins stored in `statsforecast_mase.json` (same origins, same
//!   scale rule), next to statsforecast's stored values;
//! - `forecast_many` over all series on rayon pools of 1 and 2 threads (best of `--repeats`),
//!   and whether both give the same forecasts.
//!
//! Prints a table, or JSON with `--json` (read by `benches/reference/compare.py`, which runs
//! statsforecast in the same invocation and writes `benches/results/forecast.md`).
//! Options: `--json`, `--repeats N` (default 3), `--skip-mase`, `--only NAME`.

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
}

fn opts() -> Opts {
    let mut o = Opts {
        json: false,
        repeats: 3,
        skip_mase: false,
        only: None,
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
    let model = AutoArima::new();
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

    // (b) rolling-origin MASE at statsforecast's origins
    let mut mase_rows = Vec::new();
    if !o.skip_mase {
        let refs: Vec<&Value> = mase_ref["series"]
            .as_array()
            .expect("series")
            .iter()
            .collect();
        let rows: Vec<Value> = two.install(|| {
            use rayon::prelude::*;
            names
                .par_iter()
                .zip(&data)
                .map(|(name, y)| {
                    let r = refs
                        .iter()
                        .find(|r| r["name"] == name.as_str())
                        .expect("series in statsforecast_mase.json");
                    let mut mases = Vec::new();
                    let mut same_order = 0;
                    let origins = r["origins"].as_array().expect("origins");
                    for og in origins {
                        let t = og["origin"].as_u64().expect("origin") as usize;
                        let train = &y[..t];
                        let test = &y[t..t + HORIZON];
                        let scale = (1..t).map(|i| (train[i] - train[i - 1]).abs()).sum::<f64>()
                            / (t - 1) as f64;
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
                        if og["order"].as_array().map(|v| {
                            v.iter()
                                .map(|x| x.as_u64().unwrap() as usize)
                                .collect::<Vec<_>>()
                        }) == Some(fit.order().to_vec())
                        {
                            same_order += 1;
                        }
                    }
                    let prae_mase = (mases.len() == origins.len()).then(|| mean(&mases));
                    json!({"name": name, "prae": prae_mase, "statsforecast": r["mase"],
                           "origins": origins.len(), "same_order_origins": same_order})
                })
                .collect()
        });
        mase_rows = rows;
    }
    let pm: Vec<f64> = mase_rows
        .iter()
        .filter_map(|r| r["prae"].as_f64())
        .collect();
    let sm: Vec<f64> = mase_rows
        .iter()
        .filter_map(|r| r["statsforecast"].as_f64())
        .collect();
    let prae_better = mase_rows
        .iter()
        .filter(
            |r| match (r["prae"].as_f64(), r["statsforecast"].as_f64()) {
                (Some(a), Some(b)) => a <= b,
                _ => false,
            },
        )
        .count();

    // (c) forecast_many on 1 and 2 threads
    let mut batch = Vec::new();
    let mut answers = Vec::new();
    for (threads, p) in [(1usize, &one), (2, &two)] {
        let mut best = f64::INFINITY;
        let mut last = Vec::new();
        for _ in 0..o.repeats {
            let t0 = Instant::now();
            let r = p.install(|| forecast_many(&series, &model, HORIZON, &LEVELS));
            best = best.min(t0.elapsed().as_secs_f64());
            last = r;
        }
        answers.push(
            last.into_iter()
                .map(|r| r.expect("forecast").mean)
                .collect::<Vec<_>>(),
        );
        batch.push(json!({"threads": threads, "wall_s": best}));
    }
    let same_answers = answers[0] == answers[1];
    let speedup = batch[0]["wall_s"].as_f64().unwrap() / batch[1]["wall_s"].as_f64().unwrap();

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
            "per_series": mase_rows,
        },
        "batch": {"runs": batch, "speedup_2_over_1": speedup, "same_answers": same_answers},
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
    }
    println!(
        "forecast_many: 1 thread {:.3} s, 2 threads {:.3} s, speed-up {speedup:.2} \
         (same answers: {same_answers})",
        batch[0]["wall_s"], batch[1]["wall_s"]
    );
}

//! Held-out error of the application-profile model (`prae::profile`) per need, against a baseline
//! that predicts the calibration population's median (with the population's 5-95% range as its
//! interval), and against gradient-boosted stumps as the non-linear challenger. Leave-one-out
//! over the embedded calibration set (`calibration/packages/measurements.csv`).
//!
//! Run: `cargo bench --bench profile`. Prints a Markdown table (the one in
//! `benches/results/profile.md`) and the time to train the model once.

use std::time::Instant;

use prae::profile::{Need, ProfileModel, calibration, cross_validate};

fn main() {
    if std::env::args().any(|a| a == "--test") {
        // `cargo test --benches`: check it runs, skip the report
        cross_validate(&calibration().expect("calibration set")).expect("cross-validation");
        return;
    }
    let data = calibration().expect("calibration set");
    let t = Instant::now();
    let scores = cross_validate(&data).expect("cross-validation");
    let cv_time = t.elapsed();
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        std::hint::black_box(ProfileModel::train(&data).expect("model"));
    }
    let train_time = t.elapsed() / rounds;

    println!(
        "Leave-one-out over {} packages (each held out in turn, trained on the rest).",
        data.len()
    );
    println!(
        "MALE: median |ln(1+predicted median) - ln(1+actual)| (0.10 = about 10% off); \
         cov90: share inside the 90% interval (target 0.90); width: median p95/p05.\n"
    );
    println!(
        "| need | model MALE | baseline MALE | stumps MALE | model cov90 | baseline cov90 | model width | baseline width |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for s in &scores {
        let name = match s.need {
            Need::CpuSeconds => "CPU time (s)",
            Need::PeakCpuCores => "peak CPU (cores)",
            Need::PeakMemoryKib => "peak memory (KiB)",
            Need::DiskWriteBytes => "disk writes (bytes)",
            Need::DownloadBytes => "network download (bytes)",
        };
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {:.1}x | {:.1}x |",
            s.model.median_abs_log_error,
            s.baseline.median_abs_log_error,
            s.stumps.median_abs_log_error,
            s.model.coverage90,
            s.baseline.coverage90,
            s.model.median_interval_ratio,
            s.baseline.median_interval_ratio,
        );
    }
    println!(
        "\ncross-validation {:.1} ms; training on all {} packages {:.3} ms",
        cv_time.as_secs_f64() * 1e3,
        data.len(),
        train_time.as_secs_f64() * 1e3
    );
}

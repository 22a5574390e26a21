//! Prediction error of command analysis on held-out commands, per resource, against the
//! baseline that predicts each program's historical mean.
//!
//! Data: the lab-measured table `calibration/commands/commands.tsv` (how it was measured: that
//! directory's README). Protocol: leave-one-out; every run is predicted from all the others by
//! prae's nearest-neighbours model ([`prae::exec::Model`]) and by the baseline
//! ([`prae::exec::analysis::program_mean`]); errors are absolute, summarised as the mean
//! absolute error (MAE) and the median absolute percentage error per resource. Deterministic:
//! no randomness, no timing. Run: `cargo bench --bench exec_analysis`.

use prae::exec::analysis::{Model, Usage, program_mean};
use prae::exec::calibration;

fn main() {
    let obs = calibration::table().expect("calibration/commands/commands.tsv");
    let n = obs.len();
    let mut err_model = vec![Vec::new(); Usage::NAMES.len()];
    let mut err_base = vec![Vec::new(); Usage::NAMES.len()];
    let mut pct_model = vec![Vec::new(); Usage::NAMES.len()];
    let mut pct_base = vec![Vec::new(); Usage::NAMES.len()];
    for i in 0..n {
        let rest: Vec<_> = obs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, o)| o.clone())
            .collect();
        let q = &obs[i];
        let p = Model::new(rest.clone()).predict(&q.features).mean;
        let b = program_mean(&rest, &q.features);
        for (k, errs) in err_model.iter_mut().enumerate() {
            let truth = q.usage.get(k);
            errs.push((p.get(k) - truth).abs());
            err_base[k].push((b.get(k) - truth).abs());
            if truth > 0.0 {
                pct_model[k].push((p.get(k) - truth).abs() / truth * 100.0);
                pct_base[k].push((b.get(k) - truth).abs() / truth * 100.0);
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            f64::NAN
        } else {
            s[s.len() / 2]
        }
    };
    let programs = {
        let mut p: Vec<&str> = obs.iter().map(|o| o.features.program.as_str()).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    println!(
        "command analysis, leave-one-out over {n} lab runs of {programs} programs \
         (calibration/commands/commands.tsv)"
    );
    println!(
        "{:<18} {:>14} {:>14} {:>7}  {:>10} {:>10}",
        "resource", "MAE knn", "MAE baseline", "ratio", "MdAPE knn", "MdAPE base"
    );
    for (k, name) in Usage::NAMES.iter().enumerate() {
        let (m, b) = (mean(&err_model[k]), mean(&err_base[k]));
        println!(
            "{:<18} {:>14.3} {:>14.3} {:>7.2}  {:>9.1}% {:>9.1}%",
            name,
            m,
            b,
            if b > 0.0 { m / b } else { f64::NAN },
            median(&pct_model[k]),
            median(&pct_base[k])
        );
    }
    println!(
        "ratio = MAE of prae's model / MAE of the per-program-mean baseline (< 1: prae is better)"
    );
}

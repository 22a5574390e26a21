//! Evidence from history: from a usage series (what the store holds for a package/OS, a domain
//! or a trace) and a tier, the allocation for the next window of `W` samples. Pure.
//!
//! # Method
//! The tier's quantile `q` is a per-sample coverage target: of the `W` samples the allocation
//! is held for, a share `q` should fit under it. The engine estimates it as
//! `level(now) + Q_q(residuals)`, where `level` is a statistic of the most recent samples and
//! the residuals are what followed that statistic in the recent past: `y[t+k] - level(t)` for
//! every `t` in the lookback and every `k` in `1..=W`. This is an empirical, distribution-free
//! quantile forecast (calibrated in-sample by construction, whatever the tails look like, which
//! ARIMA's normal intervals are not on spiky CPU traces).
//!
//! Several levels compete ([`Level`]): the last value, the mean of the last 3 or 12, the maximum
//! of the last 12, and none (the plain quantile of the recent history). Each covers `q` of the
//! past samples by construction; the engine keeps the one whose allocations would have been
//! smallest on average over the lookback, i.e. the least slack at the same coverage. Smooth
//! series (memory) pick the last value and get tight allocations; noisy ones (CPU) pick a
//! smoothed level or none.
//!
//! With fewer than `W + 8` samples the residuals are too few for a quantile, and the estimate is
//! the largest sample seen. With none, the prior decides alone (with a warning in the
//! evidence); with neither, an error.
//!
//! Only the most recent `lookback` samples count (default 288, one day of 5-minute samples). A
//! short window adapts to a change of regime within a day; a week-long one (2016) kept last
//! week's bursts in every quantile and, on the NAB CPU traces at window 12, allocated more than
//! VPA's curve at the same risk (`benches/results/replay.md`); on Bitbrains CPU and memory the two
//! came out within about three points of slack of each other, with the same verdicts.
//!
//! # History against the prior
//! With `n` samples of history (all of it, not only the lookback) and a prior (a profile-model
//! estimate, the tier table, ...), the history's weight is `n / (n + prior_strength)`: a day of
//! 5-minute samples counts as much as the prior by default, a week almost entirely outweighs it.
//!
//! The tier's headroom multiplies the history's estimate; the prior is already an allocation
//! (the tier table, a profile model's quantile) and is taken as it is:
//! `allocation = w x estimate x (1 + headroom) + (1 - w) x prior`.

use super::tiers::{EvidenceSettings, TierSpec};
use crate::{Error, Result};
use serde::Serialize;

/// A statistic of the most recent samples that the forecast is anchored to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The last sample.
    Last,
    /// The mean of the last 3 samples.
    Mean3,
    /// The mean of the last 12 samples.
    Mean12,
    /// The maximum of the last 12 samples.
    Max12,
    /// No anchor: the quantile of the recent samples themselves.
    Unconditional,
    /// Too few samples for residuals: the largest sample seen.
    Max,
}

impl Level {
    const CANDIDATES: [Level; 5] = [
        Level::Last,
        Level::Mean3,
        Level::Mean12,
        Level::Max12,
        Level::Unconditional,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            Level::Last => "last sample",
            Level::Mean3 => "mean of last 3",
            Level::Mean12 => "mean of last 12",
            Level::Max12 => "max of last 12",
            Level::Unconditional => "recent quantile",
            Level::Max => "largest sample (too few for quantiles)",
        }
    }

    /// Samples the statistic needs before it has a value.
    fn span(self) -> usize {
        match self {
            Level::Last | Level::Unconditional | Level::Max => 1,
            Level::Mean3 => 3,
            Level::Mean12 | Level::Max12 => 12,
        }
    }
}

/// A value to fall back on and blend with history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prior {
    /// Demand at the tier's quantile, in the series' unit.
    pub value: f64,
    /// Where it comes from ("profile model", "tier table", ...).
    pub source: String,
}

/// Why the allocation is what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    /// Samples of history given.
    pub history_count: usize,
    /// Samples used (the most recent, up to the lookback).
    pub history_used: usize,
    /// The anchor chosen, when history was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The history's estimate of the tier quantile over the next window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_estimate: Option<f64>,
    /// The prior, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<Prior>,
    /// The history's weight against the prior (1 without a prior, 0 without history).
    pub history_weight: f64,
    /// The per-sample coverage aimed at.
    pub quantile: f64,
    /// The fraction added on top.
    pub headroom: f64,
    /// Samples the allocation is held for.
    pub window: usize,
    /// Anything the caller should pass on (e.g. "no history: prior only").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Evidence {
    /// One line: `2016 samples, last sample + residual P95 -> 812.4; prior 900 (tier table)
    /// weighted 0.13; +5%`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        match (self.level, self.history_estimate) {
            (Some(l), Some(e)) => parts.push(format!(
                "{} of {} history samples, {} at P{} -> {}",
                self.history_used,
                self.history_count,
                l.describe(),
                fmt_num(self.quantile * 100.0),
                fmt_num(e)
            )),
            _ => parts.push("no history".to_string()),
        }
        if let Some(p) = &self.prior {
            parts.push(format!(
                "prior {} ({}) weighted {:.2}",
                fmt_num(p.value),
                p.source,
                1.0 - self.history_weight
            ));
        }
        if self.headroom > 0.0 && self.history_weight > 0.0 {
            parts.push(format!("+{}% headroom", fmt_num(self.headroom * 100.0)));
        }
        parts.join("; ")
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// An allocation and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// In the series' unit, never negative.
    pub allocation: f64,
    pub evidence: Evidence,
}

/// Decides the allocation for the next `window` samples from `history` (oldest first, finite
/// and non-negative) and the tier.
pub fn decide(
    history: &[f64],
    window: usize,
    spec: &TierSpec,
    settings: &EvidenceSettings,
    prior: Option<&Prior>,
) -> Result<Decision> {
    if window == 0 {
        return Err(Error::Invalid(
            "window 0: an allocation must be held for at least 1 sample".into(),
        ));
    }
    if let Some((i, v)) = first_bad_usage(history) {
        return Err(Error::Invalid(format!(
            "history sample {i} is {v}; usage must be a finite, non-negative number"
        )));
    }
    if let Some(p) = prior
        && (!p.value.is_finite() || p.value < 0.0)
    {
        return Err(Error::Invalid(format!(
            "prior {} ({}) must be a finite, non-negative number",
            p.value, p.source
        )));
    }
    let used = history.len().min(settings.lookback.max(2));
    let recent = &history[history.len() - used..];
    let mut warnings = Vec::new();
    let estimate = estimate(recent, window, spec.quantile);
    let (blend, weight) = match (estimate, prior) {
        (None, None) => {
            return Err(Error::Invalid(
                "no history and no prior: nothing to base an allocation on".into(),
            ));
        }
        (None, Some(p)) => {
            warnings.push(format!("no history: {} alone", p.source));
            (p.value, 0.0)
        }
        (Some((_, e)), None) => (e * (1.0 + spec.headroom), 1.0),
        (Some((_, e)), Some(p)) => {
            let n = history.len() as f64;
            let w = n / (n + settings.prior_strength as f64);
            (w * e * (1.0 + spec.headroom) + (1.0 - w) * p.value, w)
        }
    };
    let allocation = blend.max(0.0);
    Ok(Decision {
        allocation,
        evidence: Evidence {
            history_count: history.len(),
            history_used: used,
            level: estimate.map(|(l, _)| l),
            history_estimate: estimate.map(|(_, e)| e),
            prior: prior.cloned(),
            history_weight: weight,
            quantile: spec.quantile,
            headroom: spec.headroom,
            window,
            warnings,
        },
    })
}

/// The first value that is not a usage (negative, NaN or infinite), with its index.
pub fn first_bad_usage(values: &[f64]) -> Option<(usize, f64)> {
    values
        .iter()
        .copied()
        .enumerate()
        .find(|(_, v)| !v.is_finite() || *v < 0.0)
}

/// The history's estimate of the `q` quantile of the next `window` samples, and the anchor used.
fn estimate(y: &[f64], window: usize, q: f64) -> Option<(Level, f64)> {
    if y.is_empty() {
        return None;
    }
    if y.len() < window + 8 {
        return Some((Level::Max, y.iter().copied().fold(0.0, f64::max)));
    }
    let prefix = prefix_sums(y);
    let mut best: Option<(f64, Level, f64)> = None;
    let mut residuals = Vec::with_capacity(y.len() * window);
    for level in Level::CANDIDATES {
        let span = level.span();
        // Anchor times with a full span and at least one future sample.
        if y.len() < span + window + 4 {
            continue;
        }
        let (first, last) = (span - 1, y.len() - 2);
        residuals.clear();
        let mut level_sum = 0.0;
        let mut count = 0usize;
        for t in first..=last {
            let l = level_at(level, y, &prefix, t);
            let end = (t + window).min(y.len() - 1);
            residuals.extend(y[t + 1..=end].iter().map(|v| v - l));
            level_sum += l;
            count += 1;
        }
        let quant = upper_quantile(&mut residuals, q);
        let score = level_sum / count as f64 + quant;
        let now = level_at(level, y, &prefix, y.len() - 1) + quant;
        if best.is_none_or(|(s, _, _)| score < s) {
            best = Some((score, level, now.max(0.0)));
        }
    }
    best.map(|(_, l, v)| (l, v))
}

fn prefix_sums(y: &[f64]) -> Vec<f64> {
    let mut p = Vec::with_capacity(y.len() + 1);
    let mut s = 0.0;
    p.push(0.0);
    for v in y {
        s += v;
        p.push(s);
    }
    p
}

/// The anchor's value using samples up to and including `t`.
fn level_at(level: Level, y: &[f64], prefix: &[f64], t: usize) -> f64 {
    let mean = |k: usize| (prefix[t + 1] - prefix[t + 1 - k]) / k as f64;
    match level {
        Level::Last => y[t],
        Level::Mean3 => mean(3),
        Level::Mean12 => mean(12),
        Level::Max12 => y[t + 1 - 12..=t].iter().copied().fold(f64::MIN, f64::max),
        Level::Unconditional | Level::Max => 0.0,
    }
}

/// The smallest value with at least a share `q` of the values at or below it (the
/// `ceil(q n)`-th smallest); reorders `v`. `v` must not be empty.
pub fn upper_quantile(v: &mut [f64], q: f64) -> f64 {
    let n = v.len();
    let k = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    let (_, x, _) = v.select_nth_unstable_by(k, f64::total_cmp);
    *x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn spec(q: f64, h: f64) -> TierSpec {
        TierSpec {
            quantile: q,
            headroom: h,
        }
    }

    fn settings() -> EvidenceSettings {
        EvidenceSettings::default()
    }

    #[test]
    fn no_history_and_no_prior_is_a_clear_error() {
        let e = decide(&[], 12, &spec(0.9, 0.0), &settings(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no history and no prior: nothing to base an allocation on"
        );
    }

    #[test]
    fn no_history_falls_back_to_the_prior_with_a_warning() {
        let p = Prior {
            value: 2.0,
            source: "tier table".into(),
        };
        let d = decide(&[], 12, &spec(0.9, 0.5), &settings(), Some(&p)).unwrap();
        assert_eq!(d.allocation, 2.0);
        assert_eq!(d.evidence.history_weight, 0.0);
        assert_eq!(d.evidence.warnings, vec!["no history: tier table alone"]);
        assert!(d.evidence.describe().contains("no history"));
    }

    #[test]
    fn bad_input_is_named() {
        let e = decide(&[1.0], 0, &spec(0.9, 0.0), &settings(), None).unwrap_err();
        assert!(e.to_string().starts_with("window 0"), "{e}");
        let e = decide(&[1.0, f64::NAN], 1, &spec(0.9, 0.0), &settings(), None).unwrap_err();
        assert!(e.to_string().contains("sample 1 is NaN"), "{e}");
        let e = decide(&[1.0, -2.0], 1, &spec(0.9, 0.0), &settings(), None).unwrap_err();
        assert!(e.to_string().contains("sample 1 is -2"), "{e}");
    }

    #[test]
    fn short_history_takes_its_largest_sample() {
        let d = decide(&[1.0, 5.0, 2.0], 12, &spec(0.9, 0.1), &settings(), None).unwrap();
        assert!((d.allocation - 5.5).abs() < 1e-12);
        assert_eq!(d.evidence.level, Some(Level::Max));
    }

    #[test]
    fn the_prior_weight_falls_as_history_grows() {
        let p = Prior {
            value: 100.0,
            source: "profile model".into(),
        };
        let flat = vec![10.0; 288];
        let d = decide(&flat, 12, &spec(0.9, 0.0), &settings(), Some(&p)).unwrap();
        // 288 samples against a prior worth 288: half and half.
        assert!((d.evidence.history_weight - 0.5).abs() < 1e-12);
        assert!((d.allocation - 55.0).abs() < 1e-9, "{}", d.allocation);
        let long = vec![10.0; 2016];
        let d2 = decide(&long, 12, &spec(0.9, 0.0), &settings(), Some(&p)).unwrap();
        assert!(d2.evidence.history_weight > 0.85);
        assert!(d2.allocation < d.allocation);
    }

    #[test]
    fn a_flat_series_gets_exactly_its_value() {
        let d = decide(&[7.0; 500], 12, &spec(0.99, 0.0), &settings(), None).unwrap();
        assert!((d.allocation - 7.0).abs() < 1e-12);
    }

    /// Out of sample, the per-sample coverage is close to the tier's quantile, and a higher tier
    /// covers more.
    #[test]
    fn coverage_follows_the_quantile_on_noise() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let y: Vec<f64> = (0..3000)
            .map(|t| 50.0 + 10.0 * ((t as f64) / 40.0).sin() + rng.random_range(0.0..20.0))
            .collect();
        for q in [0.8, 0.95] {
            let (mut covered, mut total) = (0, 0);
            let mut t = 1000;
            while t + 12 <= y.len() {
                let d = decide(&y[..t], 12, &spec(q, 0.0), &settings(), None).unwrap();
                covered += y[t..t + 12].iter().filter(|v| **v <= d.allocation).count();
                total += 12;
                t += 12;
            }
            let c = covered as f64 / total as f64;
            assert!((c - q).abs() < 0.04, "q {q}: coverage {c}");
        }
    }

    /// A smooth, drifting series is tracked by its last value, far tighter than its spread.
    #[test]
    fn smooth_series_anchor_on_recent_values() {
        let y: Vec<f64> = (0..1000).map(|t| 1000.0 + t as f64).collect();
        let d = decide(&y, 12, &spec(0.95, 0.0), &settings(), None).unwrap();
        assert!(matches!(d.evidence.level, Some(Level::Last | Level::Mean3)));
        // The next 12 samples go up to 2011; the estimate covers them without a day's spread.
        assert!(
            d.allocation >= 2010.0 && d.allocation <= 2013.0,
            "{}",
            d.allocation
        );
    }

    #[test]
    fn lookback_limits_what_counts() {
        let mut y = vec![100.0; 3000];
        y.extend(vec![10.0; 500]);
        let s = EvidenceSettings {
            lookback: 400,
            prior_strength: 0,
        };
        let d = decide(&y, 12, &spec(0.99, 0.0), &s, None).unwrap();
        assert_eq!(d.evidence.history_used, 400);
        assert!((d.allocation - 10.0).abs() < 1e-12);
    }

    #[test]
    fn upper_quantile_is_an_order_statistic() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(upper_quantile(&mut v, 0.5), 3.0);
        assert_eq!(upper_quantile(&mut v, 0.99), 5.0);
        assert_eq!(upper_quantile(&mut v, 0.01), 1.0);
        assert_eq!(upper_quantile(&mut v, 0.8), 4.0);
    }
}

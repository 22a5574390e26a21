//! Trace replay: step through a real usage series, let an allocator decide the allocation for
//! the next `W` samples from what it has seen so far, hold it, and score what happened. Pure:
//! series in, allocations and scores out (reading trace files is `store::replay`'s job).
//!
//! Allocators ([`Policy`]):
//! - **prae**: [`crate::engine::evidence::decide`] with the tier's quantile and headroom.
//! - **static**: sized once from the warm-up (the tier's quantile of it plus headroom), never
//!   changed: what an operator does who measures a day and picks a size.
//! - **VPA**: the Kubernetes Vertical Pod Autoscaler's recommender ([`vpa`]), defaults P90 +15%.
//! - **bound**: perfect foresight, each window allocated its own actual quantile (at 1, its own
//!   peak); no allocator that decides before the window can do better at that risk.
//!
//! Scores ([`Score`]): relative slack = sum over steps of `max(allocation - usage, 0)` over the
//! sum of allocations; violation rate = share of steps where usage exceeds the allocation. Both
//! pool all steps of all series.

pub mod vpa;

use crate::engine::evidence::{decide, first_bad_usage, upper_quantile};
use crate::engine::tiers::{EvidenceSettings, TierSpec};
use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

pub use vpa::VpaParams;

/// The resource a replay sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Cpu,
    Memory,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Resource {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Resource::Cpu),
            "memory" | "mem" => Ok(Resource::Memory),
            _ => Err(Error::Invalid(format!(
                "unknown resource '{s}' (expected cpu or memory)"
            ))),
        }
    }
}

/// One usage series, in the trace's own unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The trace file's name.
    pub name: String,
    pub resource: Resource,
    /// Unix seconds, one per value.
    pub timestamps: Vec<i64>,
    /// Usage per sample, finite and non-negative; index = step.
    pub values: Vec<f64>,
    /// Native units (cores for CPU, bytes for memory) per unit of `values`.
    pub native_per_unit: f64,
}

impl Series {
    /// Checks lengths, values and the unit.
    pub fn new(
        name: String,
        resource: Resource,
        timestamps: Vec<i64>,
        values: Vec<f64>,
        native_per_unit: f64,
    ) -> Result<Series> {
        if timestamps.len() != values.len() {
            return Err(Error::Invalid(format!(
                "{name}: {} timestamps for {} values",
                timestamps.len(),
                values.len()
            )));
        }
        if let Some((i, v)) = first_bad_usage(&values) {
            return Err(Error::Invalid(format!(
                "{name}: usage at step {i} is {v}; expected a finite, non-negative number"
            )));
        }
        if !(native_per_unit.is_finite() && native_per_unit > 0.0) {
            return Err(Error::Invalid(format!(
                "{name}: unit scale {native_per_unit} must be positive"
            )));
        }
        Ok(Series {
            name,
            resource,
            timestamps,
            values,
            native_per_unit,
        })
    }
}

/// An allocator to replay.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    Prae {
        spec: TierSpec,
        settings: EvidenceSettings,
    },
    Static {
        spec: TierSpec,
    },
    Vpa(VpaParams),
    Bound {
        /// Share of each window's samples covered; 1 = the window's peak.
        quantile: f64,
    },
}

impl Policy {
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Prae { .. } => "prae",
            Policy::Static { .. } => "static",
            Policy::Vpa(_) => "vpa",
            Policy::Bound { .. } => "bound",
        }
    }
}

/// Decision window and warm-up, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Samples each decision is held for (at least 1).
    pub window: usize,
    /// Samples seen before the first decision (at least 1); no rows before it.
    pub warmup: usize,
}

/// Default decision window: 12 five-minute samples (hourly).
pub const DEFAULT_WINDOW: usize = 12;
/// Default warm-up: 288 five-minute samples (one day).
pub const DEFAULT_WARMUP: usize = 288;

impl Schedule {
    pub fn new(window: usize, warmup: usize) -> Result<Schedule> {
        if window == 0 {
            return Err(Error::Invalid(
                "window 0: an allocation must be held for at least 1 sample".into(),
            ));
        }
        if warmup == 0 {
            return Err(Error::Invalid(
                "warmup 0: the first decision needs at least 1 sample of history".into(),
            ));
        }
        Ok(Schedule { window, warmup })
    }
}

/// The allocations for steps `warmup..` of `series` (empty when the series is not longer than
/// the warm-up).
pub fn replay(series: &Series, policy: &Policy, s: Schedule) -> Result<Vec<f64>> {
    let y = &series.values;
    let n = y.len();
    if n <= s.warmup {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(n - s.warmup);
    match policy {
        Policy::Prae { spec, settings } => {
            let mut i = s.warmup;
            while i < n {
                let d = decide(&y[..i], s.window, spec, settings, None)?;
                let end = (i + s.window).min(n);
                out.extend(std::iter::repeat_n(d.allocation, end - i));
                i = end;
            }
        }
        Policy::Static { spec } => {
            let mut warm = y[..s.warmup].to_vec();
            let a = upper_quantile(&mut warm, spec.quantile) * (1.0 + spec.headroom);
            out.resize(n - s.warmup, a);
        }
        Policy::Vpa(p) => out = vpa::replay(series, p, s.window, s.warmup),
        Policy::Bound { quantile } => {
            if !(*quantile > 0.0 && *quantile <= 1.0) {
                return Err(Error::Invalid(format!(
                    "bound quantile {quantile} must be in (0, 1]"
                )));
            }
            for chunk in y[s.warmup..].chunks(s.window) {
                let mut c = chunk.to_vec();
                let a = upper_quantile(&mut c, *quantile);
                out.extend(std::iter::repeat_n(a, chunk.len()));
            }
        }
    }
    Ok(out)
}

/// Slack and violations, summed over steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    pub steps: u64,
    pub violations: u64,
    /// Sum of `max(allocation - usage, 0)`.
    pub slack: f64,
    /// Sum of allocations.
    pub allocated: f64,
}

impl Score {
    /// Scores allocations against the usage they were held for (`usage[k]` against
    /// `allocation[k]`).
    pub fn of(usage: &[f64], allocation: &[f64]) -> Score {
        let mut s = Score::default();
        for (u, a) in usage.iter().zip(allocation) {
            s.steps += 1;
            s.allocated += a;
            if u > a {
                s.violations += 1;
            } else {
                s.slack += a - u;
            }
        }
        s
    }

    pub fn merge(&mut self, o: &Score) {
        self.steps += o.steps;
        self.violations += o.violations;
        self.slack += o.slack;
        self.allocated += o.allocated;
    }

    /// Unused share of what was allocated (0 when nothing was).
    pub fn relative_slack(&self) -> f64 {
        if self.allocated > 0.0 {
            self.slack / self.allocated
        } else {
            0.0
        }
    }

    /// Share of steps short of their allocation.
    pub fn violation_rate(&self) -> f64 {
        if self.steps > 0 {
            self.violations as f64 / self.steps as f64
        } else {
            0.0
        }
    }
}

/// Replays every series and pools the scores; also returns each series' allocations.
pub fn replay_all(
    series: &[Series],
    policy: &Policy,
    s: Schedule,
) -> Result<(Score, Vec<Vec<f64>>)> {
    use rayon::prelude::*;
    let per: Vec<Vec<f64>> = series
        .par_iter()
        .map(|x| replay(x, policy, s))
        .collect::<Result<_>>()?;
    let mut total = Score::default();
    for (x, a) in series.iter().zip(&per) {
        if !a.is_empty() {
            total.merge(&Score::of(&x.values[s.warmup..], a));
        }
    }
    Ok((total, per))
}

/// A point of a risk/waste curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub violation: f64,
    pub slack: f64,
}

/// The lower-left envelope of points: sorted by violation rate, each with less slack than all
/// before it.
pub fn frontier(points: &[Point]) -> Vec<Point> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| {
        a.violation
            .total_cmp(&b.violation)
            .then(a.slack.total_cmp(&b.slack))
    });
    let mut out: Vec<Point> = Vec::new();
    for x in p {
        if out.last().is_none_or(|l| x.slack < l.slack) {
            out.push(x);
        }
    }
    out
}

/// The slack of a frontier at violation rate `v`, linear between its points and flat past the
/// last; `None` when `v` is below every point's violation rate (the curve cannot reach that risk).
pub fn curve_at(frontier: &[Point], v: f64) -> Option<f64> {
    let first = frontier.first()?;
    if v < first.violation {
        return None;
    }
    for w in frontier.windows(2) {
        let (a, b) = (w[0], w[1]);
        if v >= a.violation && v < b.violation {
            let f = (v - a.violation) / (b.violation - a.violation);
            return Some(a.slack + f * (b.slack - a.slack));
        }
    }
    frontier.last().map(|l| l.slack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f64>) -> Series {
        let ts = (0..values.len() as i64).map(|i| i * 300).collect();
        Series::new("s".into(), Resource::Cpu, ts, values, 0.01).unwrap()
    }

    fn spec(q: f64, h: f64) -> TierSpec {
        TierSpec {
            quantile: q,
            headroom: h,
        }
    }

    #[test]
    fn schedule_and_resource_errors_are_named() {
        assert!(
            Schedule::new(0, 288)
                .unwrap_err()
                .to_string()
                .starts_with("window 0")
        );
        assert!(
            Schedule::new(12, 0)
                .unwrap_err()
                .to_string()
                .starts_with("warmup 0")
        );
        assert_eq!(
            "disk".parse::<Resource>().unwrap_err().to_string(),
            "unknown resource 'disk' (expected cpu or memory)"
        );
        let e = Series::new("f".into(), Resource::Cpu, vec![0], vec![-1.0], 1.0).unwrap_err();
        assert!(e.to_string().contains("step 0 is -1"), "{e}");
    }

    #[test]
    fn warmup_longer_than_the_trace_gives_no_rows() {
        let s = series(vec![1.0; 10]);
        let p = Policy::Static {
            spec: spec(0.9, 0.0),
        };
        assert!(
            replay(&s, &p, Schedule::new(3, 10).unwrap())
                .unwrap()
                .is_empty()
        );
        assert!(
            replay(&s, &p, Schedule::new(3, 50).unwrap())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn one_row_per_step_after_the_warmup_held_per_window() {
        let v: Vec<f64> = (0..100).map(|i| (i % 7) as f64).collect();
        let s = series(v);
        let sched = Schedule::new(12, 30).unwrap();
        for p in [
            Policy::Prae {
                spec: spec(0.9, 0.0),
                settings: EvidenceSettings::default(),
            },
            Policy::Static {
                spec: spec(0.9, 0.0),
            },
            Policy::Vpa(VpaParams::defaults()),
            Policy::Bound { quantile: 1.0 },
        ] {
            let a = replay(&s, &p, sched).unwrap();
            assert_eq!(a.len(), 70, "{}", p.name());
            // Held within a window: steps 30..42 share one value.
            assert!(a[..12].iter().all(|x| *x == a[0]), "{}", p.name());
        }
    }

    #[test]
    fn the_bound_never_violates_at_its_peak_and_window_one_has_no_slack() {
        let v: Vec<f64> = (0..200).map(|i| ((i * 37) % 11) as f64).collect();
        let s = series(v.clone());
        let sch = Schedule::new(12, 20).unwrap();
        let a = replay(&s, &Policy::Bound { quantile: 1.0 }, sch).unwrap();
        let sc = Score::of(&v[20..], &a);
        assert_eq!(sc.violations, 0);
        assert!(sc.relative_slack() > 0.0);
        let a1 = replay(
            &s,
            &Policy::Bound { quantile: 1.0 },
            Schedule::new(1, 20).unwrap(),
        )
        .unwrap();
        assert_eq!(Score::of(&v[20..], &a1).slack, 0.0);
    }

    #[test]
    fn score_counts_slack_and_violations() {
        let s = Score::of(&[1.0, 3.0, 2.0, 0.0], &[2.0, 2.0, 2.0, 2.0]);
        assert_eq!((s.steps, s.violations), (4, 1));
        assert_eq!(s.slack, 3.0);
        assert_eq!(s.relative_slack(), 3.0 / 8.0);
        assert_eq!(s.violation_rate(), 0.25);
        assert_eq!(Score::default().relative_slack(), 0.0);
    }

    #[test]
    fn curves_interpolate_and_know_their_reach() {
        let pts = [
            Point {
                violation: 0.10,
                slack: 0.2,
            },
            Point {
                violation: 0.01,
                slack: 0.6,
            },
            Point {
                violation: 0.05,
                slack: 0.7,
            }, // dominated
            Point {
                violation: 0.05,
                slack: 0.4,
            },
        ];
        let f = frontier(&pts);
        assert_eq!(f.len(), 3);
        assert_eq!(curve_at(&f, 0.005), None);
        assert!((curve_at(&f, 0.03).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(curve_at(&f, 0.5), Some(0.2));
    }
}

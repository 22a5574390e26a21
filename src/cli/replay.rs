//! `prae replay`: replay real usage traces step by step and write each step's allocation.
//!
//! Output: CSV `series,step,allocation`, one row per step after the warm-up, `series` the trace
//! file's name, `step` the sample's index in that file (from 0), `allocation` in the trace's
//! usage unit. A summary (relative slack, violation rate) goes to stderr.
//!
//! A trace no longer than the warm-up contributes no rows and is named in a warning; when no
//! trace is longer, the command fails.

use crate::engine::tiers::TierConfig;
use crate::model::Tier;
use crate::replay::{self, Policy, Resource, Schedule, Score, Series, VpaParams};
use crate::store::TraceFormat;
use crate::store::replay::read_trace_series;
use crate::{Error, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which allocator `prae replay` replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayPolicy {
    /// prae's engine (evidence from history, the tier's quantile and headroom).
    Prae,
    /// Sized once from the warm-up at the tier's quantile and headroom, never changed.
    Static,
    /// Kubernetes VPA's recommender (defaults: P90 of a 24 h-decaying histogram + 15%).
    Vpa,
    /// Perfect foresight: each window gets its own peak (not an allocator; the bound).
    Bound,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Trace files (one or more).
    #[arg(long, required = true, num_args = 1..)]
    pub trace: Vec<PathBuf>,
    /// Trace format: bitbrains, nab or planetlab.
    #[arg(long, value_parser = parse_format)]
    pub format: TraceFormat,
    /// Resource to size: cpu or memory.
    #[arg(long, value_parser = parse_resource)]
    pub resource: Resource,
    /// Tier: low, medium or high.
    #[arg(long, value_parser = super::prae::parse_tier)]
    pub tier: Tier,
    /// Samples each decision is held for (12 = hourly at 5-minute samples).
    #[arg(long, default_value_t = replay::DEFAULT_WINDOW)]
    pub window: usize,
    /// Samples seen before the first decision (288 = one day).
    #[arg(long, default_value_t = replay::DEFAULT_WARMUP)]
    pub warmup: usize,
    /// CSV file to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Allocator to replay.
    #[arg(long, value_enum, default_value_t = ReplayPolicy::Prae)]
    pub policy: ReplayPolicy,
    /// Tier config (TOML, see engine::tiers); default: the built-in tiers.
    #[arg(long)]
    pub tiers: Option<PathBuf>,
}

fn parse_format(s: &str) -> std::result::Result<TraceFormat, String> {
    s.parse().map_err(|e: Error| e.to_string())
}
fn parse_resource(s: &str) -> std::result::Result<Resource, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Reads a tier config file (the edge; parsing is `TierConfig::from_toml`).
pub fn read_tiers(path: Option<&Path>) -> Result<TierConfig> {
    let Some(p) = path else {
        return Ok(TierConfig::default());
    };
    let shown = p.display().to_string();
    let text = std::fs::read_to_string(p).map_err(|e| Error::io(&shown, e))?;
    TierConfig::from_toml(&text).map_err(|e| Error::Invalid(format!("{shown}: {e}")))
}

/// The policy a flag names, for a tier.
pub fn policy(which: ReplayPolicy, cfg: &TierConfig, tier: Tier) -> Policy {
    let spec = cfg.spec(tier);
    match which {
        ReplayPolicy::Prae => Policy::Prae {
            spec,
            settings: cfg.evidence,
        },
        ReplayPolicy::Static => Policy::Static { spec },
        ReplayPolicy::Vpa => Policy::Vpa(VpaParams::defaults()),
        ReplayPolicy::Bound => Policy::Bound { quantile: 1.0 },
    }
}

/// Runs `prae replay`.
pub fn run(a: &ReplayArgs) -> Result<()> {
    // Flags and config first, so a bad flag never depends on the traces.
    let sched = Schedule::new(a.window, a.warmup)?;
    let cfg = read_tiers(a.tiers.as_deref())?;
    let series: Vec<Series> = a
        .trace
        .iter()
        .map(|p| read_trace_series(a.format, p, a.resource))
        .collect::<Result<_>>()?;
    let short: Vec<&str> = series
        .iter()
        .filter(|s| s.values.len() <= a.warmup)
        .map(|s| s.name.as_str())
        .collect();
    if short.len() == series.len() {
        return Err(Error::Invalid(format!(
            "no trace is longer than the warm-up of {} samples ({})",
            a.warmup,
            short.join(", ")
        )));
    }
    for s in &short {
        eprintln!(
            "prae: warning: {s} is not longer than the warm-up of {} samples; no rows",
            a.warmup
        );
    }
    let p = policy(a.policy, &cfg, a.tier);
    let (score, allocs) = replay::replay_all(&series, &p, sched)?;
    write_csv(&a.output, &series, &allocs, a.warmup)?;
    eprintln!("prae: {}", summary(&p, a.tier, &score));
    Ok(())
}

/// One line: what was replayed and how it scored.
pub fn summary(p: &Policy, tier: Tier, s: &Score) -> String {
    format!(
        "{} (tier {tier}): {} steps, relative slack {:.4}, violation rate {:.4}",
        p.name(),
        s.steps,
        s.relative_slack(),
        s.violation_rate()
    )
}

fn write_csv(path: &Path, series: &[Series], allocs: &[Vec<f64>], warmup: usize) -> Result<()> {
    let shown = path.display().to_string();
    let f = std::fs::File::create(path).map_err(|e| Error::io(&shown, e))?;
    let mut w = std::io::BufWriter::new(f);
    let io = |e| Error::io(&shown, e);
    writeln!(w, "series,step,allocation").map_err(io)?;
    for (s, a) in series.iter().zip(allocs) {
        let name = csv_field(&s.name);
        for (k, v) in a.iter().enumerate() {
            writeln!(w, "{name},{},{v}", warmup + k).map_err(io)?;
        }
    }
    w.flush().map_err(io)
}

/// Quotes a field when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

//! The optimizer: chooses a discrete profile (and, with several hosts, a host) for every pending
//! request at once.
//!
//! Pure: the problem comes in as values ([`Problem`], [`GaOptions`] with its seed), the answer
//! goes out as a value ([`Solution`]). No I/O, no clock, and every random choice comes from a
//! seeded ChaCha8 generator, so a run can be replayed; serial and parallel runs with the same seed
//! give bit-identical answers.
//!
//! # The problem
//! Each [`Request`] has a [`Tier`] and a list of [`Choice`]s: a [`Choice::Level`] picks an amount
//! of one [`Resource`] (vCPUs 1..N, memory steps, bandwidth steps) given the request's [`Demand`]
//! distribution for it; a [`Choice::Option`] picks one of a few [`Alternative`]s (storage class,
//! disk bus), each with what it uses of the host and its own cost. Each [`Host`] has a capacity
//! minus reservations per resource. A [`Solution`] gives every request a host and one option per
//! choice.
//!
//! # The objective (minimised)
//! For a level `a` of resource `r` with demand `D`, on the scale `s_r` = the mean capacity of the
//! hosts for `r` (so a vCPU and a GiB are comparable):
//!
//! `cost = E[max(0, a - D)] / s_r  +  w(tier) * E[max(0, D - a)] / s_r`
//!
//! i.e. reserved-but-unused plus tier-weighted expected shortfall. Without capacity limits the
//! best level is the `w / (1 + w)` quantile of `D` (the newsvendor rule), which is how
//! [`TierWeights::from_quantiles`] turns the design's per-tier quantiles (P50, P90, P99 by default)
//! into weights (1, 9, 99). An [`Alternative`]'s cost is `waste + w(tier) * risk`, both given by
//! the caller in the same normalised units. Every cost is computed once per (request, choice,
//! option) when the problem is compiled: evaluating a solution is a sum of table entries plus a
//! sum of uses per host.
//!
//! # Capacity
//! Capacity is hard. The genetic algorithm *repairs* every individual it creates (moves requests
//! off overloaded hosts to hosts where they fit, then lowers the level whose cost rises least per
//! unit of overload removed) and ranks what repair could not fix below every feasible individual
//! (lexicographic: overload first, then cost). The answer says whether it fits
//! ([`Feasibility`]): when the GA finds no feasible assignment it reports whether one provably
//! does not exist (a request that fits on no host even at its smallest levels, or total minimum
//! use above total free capacity) or was merely not found. [`exact`] decides the question for
//! instances small enough to enumerate.
//!
//! # Parts
//! - [`solve`]: the genetic algorithm (tournament selection, uniform or one-point crossover by
//!   request, mutation, elitism, repair, a greedy seeded individual among random ones, a final
//!   first-improvement local search, stop after `stall_generations` without improvement or
//!   `max_generations`). Each generation's children are built, repaired and evaluated by one pure
//!   function run over the child slots by every thread of the rayon pool, each taking the next
//!   free slot (`rayon::broadcast`; or by the calling thread alone), each child with its own
//!   generator seeded from `(seed, generation, slot)`. The population lives in two flat gene
//!   buffers (this generation's and the next), and each thread reuses one scratch
//!   (loads per host and per request), so building a child allocates nothing. Repair keeps
//!   per-host and per-request running sums and only considers options that use an overloaded
//!   resource; the local search walks each request's option combinations, listed once per solve
//!   cheapest first, and stops at the first that fits.
//!
//! # Use (for the engine)
//! Build a [`Problem`] from the pending requests (each [`Choice::Level`]'s [`Demand`] from the
//! forecast or the profile model's quantiles, e.g. samples of
//! [`crate::profile::NeedEstimate::quantile`]) and the hosts' free capacity, then
//! `solve(&problem, &GaOptions { seed, ..GaOptions::default() })`. The answer's
//! [`Solution::assignments`] index the problem's requests, hosts and options; check
//! [`Solution::feasibility`] before applying it. Run it inside a rayon pool of the size you want
//! (`ThreadPool::install`); `parallel: false` gives the same answer on the calling thread.
//! - [`exact`]: branch and bound over all assignments, for checking the GA.
//! - [`synthetic`]: seeded random instances for tests and benchmarks.

mod demand;
mod exact;
mod ga;
pub mod synthetic;
mod tables;
#[cfg(test)]
mod tests;

pub use demand::Demand;
pub use exact::{DEFAULT_EXACT_NODE_LIMIT, exact};
pub use ga::{Crossover, GaOptions, solve};

use serde::{Deserialize, Serialize};
use std::ops::{Index, IndexMut};

use crate::model::Tier;
use crate::{Error, Result};

/// Number of [`Resource`]s.
pub const RESOURCES: usize = 6;

/// A capacity the hosts have and the requests use. Units follow libvirt's (see [`crate::model`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Vcpus,
    MemoryKib,
    /// Disk throughput, bytes/s.
    DiskBytesPerSec,
    /// Network bandwidth, KiB/s.
    NetKibPerSec,
    /// Space in SSD-backed storage pools, GiB.
    SsdGib,
    /// Space in HDD-backed storage pools, GiB.
    HddGib,
}

impl Resource {
    pub const ALL: [Resource; RESOURCES] = [
        Resource::Vcpus,
        Resource::MemoryKib,
        Resource::DiskBytesPerSec,
        Resource::NetKibPerSec,
        Resource::SsdGib,
        Resource::HddGib,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Vcpus => "vcpus",
            Resource::MemoryKib => "memory_kib",
            Resource::DiskBytesPerSec => "disk_bytes_per_sec",
            Resource::NetKibPerSec => "net_kib_per_sec",
            Resource::SsdGib => "ssd_gib",
            Resource::HddGib => "hdd_gib",
        }
    }
}

/// An amount of every [`Resource`]; unset ones are zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Amounts(pub [f64; RESOURCES]);

impl Amounts {
    pub fn zero() -> Self {
        Amounts::default()
    }
    /// `self` with `r` set to `v`.
    pub fn with(mut self, r: Resource, v: f64) -> Self {
        self[r] = v;
        self
    }
}

impl Index<Resource> for Amounts {
    type Output = f64;
    fn index(&self, r: Resource) -> &f64 {
        &self.0[r.index()]
    }
}

impl IndexMut<Resource> for Amounts {
    fn index_mut(&mut self, r: Resource) -> &mut f64 {
        &mut self.0[r.index()]
    }
}

/// A host requests can be placed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    pub capacity: Amounts,
    /// Already promised (running domains, reservations). Reservations above capacity leave the
    /// resource full, not negative.
    #[serde(default)]
    pub reserved: Amounts,
}

/// One alternative of a [`Choice::Option`] (e.g. storage class `ssd`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub label: String,
    /// What the alternative uses of its host.
    #[serde(default)]
    pub uses: Amounts,
    /// Cost regardless of tier, in the objective's normalised units.
    #[serde(default)]
    pub waste: f64,
    /// Cost multiplied by the request's tier weight (risk of running short or slow).
    #[serde(default)]
    pub risk: f64,
}

/// One decision per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// An amount of `resource`: one of `levels` (each uses that much of its host).
    Level {
        resource: Resource,
        demand: Demand,
        levels: Vec<f64>,
    },
    /// One of a few alternatives.
    Option {
        name: String,
        alternatives: Vec<Alternative>,
    },
}

impl Choice {
    /// Number of options.
    pub fn len(&self) -> usize {
        match self {
            Choice::Level { levels, .. } => levels.len(),
            Choice::Option { alternatives, .. } => alternatives.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn name(&self) -> &str {
        match self {
            Choice::Level { resource, .. } => resource.as_str(),
            Choice::Option { name, .. } => name,
        }
    }

    /// What option `k` uses of its host.
    pub fn uses(&self, k: usize) -> Amounts {
        match self {
            Choice::Level {
                resource, levels, ..
            } => Amounts::zero().with(*resource, levels.get(k).copied().unwrap_or(0.0)),
            Choice::Option { alternatives, .. } => {
                alternatives.get(k).map(|a| a.uses).unwrap_or_default()
            }
        }
    }
}

/// A pending request: what it needs, how much risk its tier accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub name: String,
    pub tier: Tier,
    pub choices: Vec<Choice>,
}

/// Weight of expected shortfall per tier, relative to reserved-but-unused.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TierWeights {
    pub low: f64,
    pub medium: f64,
    pub high: f64,
}

impl Default for TierWeights {
    /// The design's default quantiles: P50, P90, P99 (weights 1, 9, 99).
    fn default() -> Self {
        TierWeights {
            low: 1.0,
            medium: 9.0,
            high: 99.0,
        }
    }
}

impl TierWeights {
    /// Weights whose unconstrained optimum is the given demand quantile per tier: `q / (1 - q)`.
    pub fn from_quantiles(low: f64, medium: f64, high: f64) -> Result<Self> {
        let w = |name: &str, q: f64| {
            if q > 0.0 && q < 1.0 {
                Ok(q / (1.0 - q))
            } else {
                Err(Error::Invalid(format!(
                    "{name} tier quantile must be strictly between 0 and 1, got {q}"
                )))
            }
        };
        Ok(TierWeights {
            low: w("low", low)?,
            medium: w("medium", medium)?,
            high: w("high", high)?,
        })
    }

    pub fn weight(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Low => self.low,
            Tier::Medium => self.medium,
            Tier::High => self.high,
        }
    }
}

/// Everything the optimizer needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub hosts: Vec<Host>,
    pub requests: Vec<Request>,
    #[serde(default)]
    pub weights: TierWeights,
}

/// Where a request goes and what it gets: `options[j]` indexes `choices[j]`'s levels or
/// alternatives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub host: usize,
    pub options: Vec<usize>,
}

/// Whether the answer fits the hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feasibility {
    /// Every host within its free capacity.
    Feasible,
    /// The search found no assignment that fits, but did not prove that none exists.
    NoneFound,
    /// No assignment fits; the reason names the resource and the numbers.
    NoneExists(String),
}

/// Search effort, for reports and benches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchStats {
    /// GA generations run (0 for the exact solver).
    pub generations: u32,
    /// Solutions evaluated (GA) or search nodes visited (exact).
    pub evaluations: u64,
}

/// The optimizer's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// One per request, in the problem's order.
    pub assignments: Vec<Assignment>,
    /// `waste + shortfall`: the objective.
    pub objective: f64,
    /// Reserved-but-unused part of the objective (plus alternatives' `waste`).
    pub waste: f64,
    /// Tier-weighted expected shortfall part of the objective (plus alternatives' weighted `risk`).
    pub shortfall: f64,
    /// Use above free capacity, summed over hosts and resources, each normalised like the
    /// objective; 0 when feasible.
    pub overflow: f64,
    pub feasibility: Feasibility,
    pub stats: SearchStats,
}

impl Solution {
    pub fn is_feasible(&self) -> bool {
        self.feasibility == Feasibility::Feasible
    }
}

impl Problem {
    /// Checks every number; errors name the host, request or choice.
    pub fn validate(&self) -> Result<()> {
        for w in [self.weights.low, self.weights.medium, self.weights.high] {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::Invalid(format!(
                    "tier weight must be a finite non-negative number, got {w}"
                )));
            }
        }
        for h in &self.hosts {
            for r in Resource::ALL {
                for (what, v) in [("capacity", h.capacity[r]), ("reservation", h.reserved[r])] {
                    if !v.is_finite() || v < 0.0 {
                        return Err(Error::Invalid(format!(
                            "host '{}': {} {what} must be a finite non-negative number, got {v}",
                            h.name,
                            r.as_str()
                        )));
                    }
                }
            }
        }
        for q in &self.requests {
            if q.choices.is_empty() {
                return Err(Error::Invalid(format!(
                    "request '{}' has no choices",
                    q.name
                )));
            }
            for c in &q.choices {
                let what = format!("request '{}' {}", q.name, c.name());
                if c.is_empty() {
                    return Err(Error::Invalid(format!("{what} has no options")));
                }
                if c.len() > u32::MAX as usize {
                    return Err(Error::Invalid(format!(
                        "{what} has {} options, more than the optimizer can encode",
                        c.len()
                    )));
                }
                match c {
                    Choice::Level { demand, levels, .. } => {
                        demand.validate(&what)?;
                        if let Some(v) = levels.iter().find(|v| !v.is_finite() || **v < 0.0) {
                            return Err(Error::Invalid(format!(
                                "{what}: level {v} is not a finite non-negative number"
                            )));
                        }
                    }
                    Choice::Option { alternatives, .. } => {
                        for a in alternatives {
                            let bad = [a.waste, a.risk]
                                .into_iter()
                                .chain(a.uses.0)
                                .find(|v| !v.is_finite() || *v < 0.0);
                            if let Some(v) = bad {
                                return Err(Error::Invalid(format!(
                                    "{what}: alternative '{}' has {v}, not a finite non-negative number",
                                    a.label
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// What request `i` uses of its host under `a`.
    pub fn uses(&self, i: usize, a: &Assignment) -> Amounts {
        let mut total = Amounts::zero();
        if let Some(q) = self.requests.get(i) {
            for (c, &k) in q.choices.iter().zip(&a.options) {
                let u = c.uses(k);
                for r in 0..RESOURCES {
                    total.0[r] += u.0[r];
                }
            }
        }
        total
    }
}

//! A prediction with its evidence: the tier table as the prior, usage history of the same
//! package/OS (or domain) blended in by [`super::evidence`], the operator's pinned values over
//! it, and the host's free capacity as a ceiling. Pure: the caller brings history and capacity.
//!
//! Answers for the edge cases:
//! - no history: the tier table, said so in the evidence ("no history");
//! - a prediction above the host's free capacity: cut to it, with a `load cut` note;
//! - a pinned value above the host's free capacity: an error naming both (an operator's
//!   explicit value is never silently changed).

use super::evidence::{Decision, Prior, decide};
use super::tiers::TierConfig;
use super::{DEFAULT_TIER, PredictRequest, predict};
use crate::model::{Allocation, MIN_MEMORY_KIB};
use crate::{Error, Result, units};
use serde::Serialize;

/// Usage history as the store holds it (oldest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Cores busy per sample.
    pub cpu_cores: Vec<f64>,
    /// Memory used per sample, KiB.
    pub memory_kib: Vec<f64>,
}

/// What the host can still give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFree {
    pub cpus: u32,
    pub memory_kib: u64,
}

/// Why one field has its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldEvidence {
    /// `vcpus` or `memory`.
    pub field: &'static str,
    /// The value applied, as shown to people.
    pub value: String,
    /// History and prior, when the engine decided the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Decision>,
    /// Set when the host's free capacity lowered the value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_cut: Option<String>,
    /// The operator pinned the value.
    pub pinned: bool,
}

/// A prediction and the evidence behind each number.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explained {
    /// Serialised flat, so the JSON is the allocation's with an `evidence` key added.
    #[serde(flatten)]
    pub allocation: Allocation,
    pub evidence: Vec<FieldEvidence>,
}

/// Samples a build or VM holds its allocation for, for the evidence's window.
pub const PREDICT_WINDOW: usize = 12;

/// [`predict`], then history and host capacity for the vCPUs and memory it did not get pinned.
pub fn predict_explained(
    req: &PredictRequest,
    history: Option<&History>,
    host: Option<HostFree>,
    cfg: &TierConfig,
) -> Result<Explained> {
    let mut alloc = predict(req)?;
    let tier = alloc.provenance.tier;
    let spec = cfg.spec(tier.unwrap_or(DEFAULT_TIER));
    let pinned_cpu = req.pinned.vcpus.is_some() || req.pinned.max_vcpus.is_some();
    let pinned_mem = req.pinned.memory_kib.is_some() || req.pinned.current_memory_kib.is_some();
    let p = &mut alloc.profile;
    let mut evidence = Vec::new();

    // vCPUs: the prior is the tier table's count.
    if let Some(table) = p.vcpus {
        let mut ev = FieldEvidence {
            field: "vcpus",
            value: String::new(),
            history: None,
            load_cut: None,
            pinned: pinned_cpu,
        };
        let mut v = table;
        if !pinned_cpu && tier.is_some() {
            let h = history.map(|h| h.cpu_cores.as_slice()).unwrap_or(&[]);
            let prior = Prior {
                value: f64::from(table),
                source: "tier table".into(),
            };
            let d = decide(h, PREDICT_WINDOW, &spec, &cfg.evidence, Some(&prior))?;
            v = (d.allocation.ceil() as u32).clamp(1, crate::model::MAX_VCPUS);
            ev.history = Some(d);
        }
        if let Some(host) = host
            && v > host.cpus
        {
            if pinned_cpu {
                return Err(Error::Invalid(format!(
                    "pinned vcpus {v} exceed the host's {} free CPUs",
                    host.cpus
                )));
            }
            ev.load_cut = Some(format!(
                "cut from {v} to the host's {} free CPUs",
                host.cpus
            ));
            v = host.cpus.max(1);
        }
        if !pinned_cpu {
            p.vcpus = Some(v);
            p.max_vcpus = Some(v);
        }
        ev.value = v.to_string();
        evidence.push(ev);
    }

    // Memory: the prior is the tier table's size; rounded up to whole MiB.
    if let Some(table) = p.memory_kib {
        let mut ev = FieldEvidence {
            field: "memory",
            value: String::new(),
            history: None,
            load_cut: None,
            pinned: pinned_mem,
        };
        let mut v = table;
        if !pinned_mem && tier.is_some() {
            let h = history.map(|h| h.memory_kib.as_slice()).unwrap_or(&[]);
            let prior = Prior {
                value: table as f64,
                source: "tier table".into(),
            };
            let d = decide(h, PREDICT_WINDOW, &spec, &cfg.evidence, Some(&prior))?;
            v = ((d.allocation / 1024.0).ceil() as u64 * 1024).max(MIN_MEMORY_KIB);
            ev.history = Some(d);
        }
        if let Some(host) = host
            && v > host.memory_kib
        {
            if pinned_mem {
                return Err(Error::Invalid(format!(
                    "pinned memory {} exceeds the host's free {}",
                    units::format_kib(v),
                    units::format_kib(host.memory_kib)
                )));
            }
            let to = (host.memory_kib / 1024 * 1024).max(MIN_MEMORY_KIB);
            ev.load_cut = Some(format!(
                "cut from {} to the host's free {}",
                units::format_kib(v),
                units::format_kib(to)
            ));
            v = to;
        }
        if !pinned_mem {
            p.memory_kib = Some(v);
            p.current_memory_kib = Some(v);
        }
        ev.value = units::format_kib(v);
        evidence.push(ev);
    }
    p.validate()?;
    for e in &evidence {
        if let Some(d) = &e.history {
            alloc
                .provenance
                .sources
                .push(format!("{}: {}", e.field, d.evidence.describe()));
        }
        if let Some(c) = &e.load_cut {
            alloc
                .provenance
                .sources
                .push(format!("{}: load cut, {c}", e.field));
            alloc
                .provenance
                .reason
                .push_str(&format!("; {} {c}", e.field));
        }
    }
    Ok(Explained {
        allocation: alloc,
        evidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::req;
    use crate::model::Tier;

    const GIB: u64 = 1024 * 1024;

    #[test]
    fn no_history_is_the_tier_table_and_says_so() {
        let e = predict_explained(&req(Tier::Medium), None, None, &TierConfig::default()).unwrap();
        assert_eq!(e.allocation.profile.vcpus, Some(2));
        assert_eq!(e.allocation.profile.memory_kib, Some(2 * GIB));
        let d = e.evidence[1].history.as_ref().unwrap();
        assert_eq!(d.evidence.history_count, 0);
        assert_eq!(d.evidence.warnings, vec!["no history: tier table alone"]);
    }

    #[test]
    fn long_history_outweighs_the_table() {
        // A week of a VM using 0.3 cores and 300 MiB: the medium table's 2 vCPUs / 2 GiB shrink.
        let h = History {
            cpu_cores: vec![0.3; 2016],
            memory_kib: vec![300.0 * 1024.0; 2016],
        };
        let e =
            predict_explained(&req(Tier::Medium), Some(&h), None, &TierConfig::default()).unwrap();
        let p = &e.allocation.profile;
        assert_eq!(p.vcpus, Some(1));
        // 7/8 of 300 MiB + 5% and 1/8 of the table's 2 GiB.
        assert_eq!(p.memory_kib, Some(532 * 1024));
        assert!(
            e.allocation
                .provenance
                .sources
                .iter()
                .any(|s| s.starts_with("memory: 288 of 2016 history samples")),
            "{:?}",
            e.allocation.provenance.sources
        );
    }

    #[test]
    fn the_host_caps_predictions_and_refuses_pinned_values_above_it() {
        let host = HostFree {
            cpus: 1,
            memory_kib: GIB,
        };
        let e =
            predict_explained(&req(Tier::High), None, Some(host), &TierConfig::default()).unwrap();
        assert_eq!(e.allocation.profile.vcpus, Some(1));
        assert_eq!(e.allocation.profile.memory_kib, Some(GIB));
        assert!(
            e.evidence[0]
                .load_cut
                .as_deref()
                .unwrap()
                .contains("from 4 to")
        );
        assert!(e.allocation.provenance.reason.contains("cut from"));
        let mut r = req(Tier::Low);
        r.pinned.memory_kib = Some(4 * GIB);
        let err = predict_explained(&r, None, Some(host), &TierConfig::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pinned memory 4GiB exceeds the host's free 1GiB"
        );
    }

    #[test]
    fn pinned_values_are_kept_and_marked() {
        let mut r = req(Tier::Low);
        r.pinned.vcpus = Some(3);
        let h = History {
            cpu_cores: vec![0.1; 500],
            memory_kib: vec![],
        };
        let e = predict_explained(&r, Some(&h), None, &TierConfig::default()).unwrap();
        assert_eq!(e.allocation.profile.vcpus, Some(3));
        assert!(e.evidence[0].pinned && e.evidence[0].history.is_none());
    }
}

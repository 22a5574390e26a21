//! `prae status`: the host, its domains, what they are allocated against what they use, and
//! prae's recommendation for each. Built from a [`Hypervisor`] and the sampler's last usage,
//! by the daemon (`GET /v1/status`) or by the CLI directly when no daemon runs.

use super::{Policy, Usage, marks};
use crate::hypervisor::{DomainState, Hypervisor, XmlKind};
use crate::model::Allocation;
use crate::{Result, units};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    pub uri: String,
    pub cpus: u32,
    pub memory_kib: u64,
    pub free_memory_kib: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainStatus {
    pub name: String,
    pub state: DomainState,
    pub vcpus: u32,
    pub memory_kib: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores_used: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_kib: Option<u64>,
    /// rewritten, advised, opted-out, unhandled.
    pub prae: String,
    /// What prae would change, or why nothing.
    pub recommendation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub policy: Policy,
    pub hosts: Vec<HostStatus>,
    pub domains: Vec<DomainStatus>,
}

/// What prae recommends for a domain with `vcpus`/`memory_kib`, given its allocation and use.
pub fn recommend(
    m: &marks::Marks,
    vcpus: u32,
    memory_kib: u64,
    alloc: &Allocation,
    used: Option<&Usage>,
) -> String {
    if m.opted_out {
        return "opted out".into();
    }
    let mut r = Vec::new();
    if !m.handled {
        if let Some(v) = alloc.profile.vcpus.filter(|v| *v != vcpus) {
            r.push(format!("vcpus {vcpus} -> {v}"));
        }
        if let Some(k) = alloc.profile.memory_kib.filter(|k| *k != memory_kib) {
            r.push(format!(
                "memory {} -> {}",
                units::format_kib(memory_kib),
                units::format_kib(k)
            ));
        }
    }
    if let Some(u) = used.and_then(|u| u.memory_used_kib)
        && memory_kib > 0
        && u.saturating_mul(4) < memory_kib
    {
        r.push(format!(
            "uses {} of {}: could shrink",
            units::format_kib(u),
            units::format_kib(memory_kib)
        ));
    }
    if r.is_empty() {
        "none".into()
    } else {
        r.join(", ")
    }
}

/// Collects the status of the host `hv` is connected to.
pub fn collect(
    hv: &dyn Hypervisor,
    usage: &BTreeMap<String, Usage>,
    policy: Policy,
    alloc_for: impl Fn(&str) -> Result<Allocation>,
) -> Result<Status> {
    let cap = hv.node_capacity()?;
    let host = HostStatus {
        uri: hv.uri()?,
        cpus: cap.cpus,
        memory_kib: cap.memory_kib,
        free_memory_kib: cap.free_memory_kib,
    };
    let mut domains = Vec::new();
    for i in hv.list_domains()? {
        let m = match hv.domain_xml(&i.name, XmlKind::Inactive) {
            Ok(x) => marks::marks(&x).unwrap_or_default(),
            Err(crate::Error::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        let u = usage.get(&i.name);
        let alloc = alloc_for(&i.name)?;
        domains.push(DomainStatus {
            recommendation: recommend(&m, i.vcpus, i.max_memory_kib, &alloc, u),
            prae: m.label().into(),
            name: i.name,
            state: i.state,
            vcpus: i.vcpus,
            memory_kib: i.max_memory_kib,
            cpu_cores_used: u.and_then(|u| u.cpu_cores),
            memory_used_kib: u.and_then(|u| u.memory_used_kib),
        });
    }
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Status {
        policy,
        hosts: vec![host],
        domains,
    })
}

fn state_str(s: DomainState) -> &'static str {
    match s {
        DomainState::Running => "running",
        DomainState::Paused => "paused",
        DomainState::Shutoff => "shut off",
        DomainState::Crashed => "crashed",
        DomainState::Other => "other",
    }
}

fn table_of(rows: &[Vec<String>]) -> String {
    let n = rows.first().map_or(0, Vec::len);
    let w: Vec<usize> = (0..n)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = w[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The status as text tables: hosts, then domains.
pub fn table(s: &Status) -> String {
    let mut hosts = vec![vec![
        "HOST".to_string(),
        "CPUS".into(),
        "MEMORY".into(),
        "FREE".into(),
        "POLICY".into(),
    ]];
    for h in &s.hosts {
        hosts.push(vec![
            h.uri.clone(),
            h.cpus.to_string(),
            units::format_kib(h.memory_kib),
            units::format_kib(h.free_memory_kib),
            s.policy.to_string(),
        ]);
    }
    let mut doms = vec![vec![
        "DOMAIN".to_string(),
        "STATE".into(),
        "VCPUS".into(),
        "CPU USED".into(),
        "MEMORY".into(),
        "MEM USED".into(),
        "PRAE".into(),
        "RECOMMENDATION".into(),
    ]];
    for d in &s.domains {
        doms.push(vec![
            d.name.clone(),
            state_str(d.state).into(),
            d.vcpus.to_string(),
            d.cpu_cores_used.map_or("-".into(), |c| format!("{c:.2}")),
            units::format_kib(d.memory_kib),
            d.memory_used_kib.map_or("-".into(), units::format_kib),
            d.prae.clone(),
            d.recommendation.clone(),
        ]);
    }
    format!("{}\n{}", table_of(&hosts), table_of(&doms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceProfile;

    fn alloc(v: u32, m: u64) -> Allocation {
        Allocation {
            profile: ResourceProfile {
                vcpus: Some(v),
                memory_kib: Some(m),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn recommendations() {
        let none = marks::Marks::default();
        assert_eq!(
            recommend(&none, 1, 1024 * 1024, &alloc(2, 2 * 1024 * 1024), None),
            "vcpus 1 -> 2, memory 1GiB -> 2GiB"
        );
        let done = marks::Marks {
            handled: true,
            ..Default::default()
        };
        assert_eq!(recommend(&done, 1, 1024, &alloc(2, 2048), None), "none");
        let u = Usage {
            memory_used_kib: Some(100),
            ..Default::default()
        };
        assert!(recommend(&done, 1, 1024, &alloc(2, 2048), Some(&u)).contains("could shrink"));
        let out = marks::Marks {
            opted_out: true,
            ..Default::default()
        };
        assert_eq!(recommend(&out, 1, 1024, &alloc(2, 2048), None), "opted out");
    }
}

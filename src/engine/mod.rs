//! The engine: evidence -> [`Allocation`]. For now a documented per-tier table; the prediction
//! engine (history, application profiles, forecasts, host load, optimizer, overrides) replaces it.
//!
//! Invariants: pure (values in, values out); every allocation carries its provenance.
//!
//! - [`tiers`]: the tier config (TOML) mapping low/medium/high to a demand quantile and headroom.
//! - [`evidence`]: history (and a prior) -> the allocation for the next window, with its evidence.
//! - [`explain`]: [`predict`] plus history and host capacity, with the evidence of each number.

pub mod evidence;
pub mod explain;
pub mod tiers;

use crate::model::{
    Allocation, Bandwidth, DiskBus, IoTune, Provenance, ResourceProfile, StorageClass, Tier,
};
use crate::{Error, Result};

/// Operating systems prae knows how to build for and size.
pub const KNOWN_OS: &[&str] = &["debian12"];

/// Normalises an OS name (`debian12`, `debian-12`, `bookworm`) or names the ones known.
pub fn normalize_os(os: &str) -> Result<&'static str> {
    match os.to_ascii_lowercase().as_str() {
        "debian12" | "debian-12" | "bookworm" => Ok("debian12"),
        _ => Err(Error::Invalid(format!(
            "unknown OS '{os}' (known: {})",
            KNOWN_OS.join(", ")
        ))),
    }
}

/// The per-tier table. Numbers are starting points an operator can reason about, chosen so that
/// `low` still installs typical Debian packages (Packer's 1 vCPU / 512 MiB default does not).
///
/// | tier   | vCPUs | memory | storage | disk bus | disk limit        | network (each way) |
/// |--------|-------|--------|---------|----------|-------------------|--------------------|
/// | low    | 1     | 1 GiB  | hdd     | virtio   | 50 MB/s, 500 IOPS | 10 MiB/s           |
/// | medium | 2     | 2 GiB  | ssd     | virtio   | 200 MB/s, 2000 IOPS | 50 MiB/s         |
/// | high   | 4     | 4 GiB  | ssd     | virtio   | 500 MB/s, 8000 IOPS | 125 MiB/s        |
pub fn tier_profile(tier: Tier) -> ResourceProfile {
    let (vcpus, mem_gib, storage, bps, iops, net_kib) = match tier {
        Tier::Low => (1, 1, StorageClass::Hdd, 50_000_000, 500, 10 * 1024),
        Tier::Medium => (2, 2, StorageClass::Ssd, 200_000_000, 2000, 50 * 1024),
        Tier::High => (4, 4, StorageClass::Ssd, 500_000_000, 8000, 125 * 1024),
    };
    let mem_kib = mem_gib * 1024 * 1024;
    ResourceProfile {
        vcpus: Some(vcpus),
        max_vcpus: Some(vcpus),
        memory_kib: Some(mem_kib),
        current_memory_kib: Some(mem_kib),
        storage: Some(storage),
        disk_bus: Some(DiskBus::Virtio),
        disk_iotune: Some(IoTune {
            total_bytes_sec: Some(bps),
            total_iops_sec: Some(iops),
            ..IoTune::default()
        }),
        bandwidth: Some(Bandwidth::symmetric(net_kib)),
    }
}

/// What a request asks the engine for.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    pub package: Option<String>,
    pub os: Option<String>,
    /// `None`: only the pinned values when there are any, else [`DEFAULT_TIER`].
    pub tier: Option<Tier>,
    /// Values the operator pinned; they win over the prediction.
    pub pinned: ResourceProfile,
}

/// The tier used when a request names none.
pub const DEFAULT_TIER: Tier = Tier::Medium;

/// Answers a request: the tier table, then the operator's pinned values over it. With no tier
/// and some pinned values, only the pinned values (the operator's exact request, nothing else
/// changes). Validates the result so an impossible profile never reaches a domain.
pub fn predict(req: &PredictRequest) -> Result<Allocation> {
    if let Some(p) = &req.package {
        validate_package_name(p)?;
    }
    let os = req.os.as_deref().map(normalize_os).transpose()?;
    let operator_only = req.tier.is_none() && !req.pinned.is_empty();
    let tier = req.tier.unwrap_or(DEFAULT_TIER);
    let base = if operator_only {
        ResourceProfile::default()
    } else {
        tier_profile(tier)
    };
    let mut profile = req.pinned.over(&base);
    // Pinning only the boot value must not leave a current value above it (or below, silently).
    if req.pinned.vcpus.is_some() && req.pinned.max_vcpus.is_none() {
        profile.max_vcpus = profile.vcpus;
    }
    if req.pinned.max_vcpus.is_some() && req.pinned.vcpus.is_none() {
        profile.vcpus = profile.max_vcpus;
    }
    if req.pinned.memory_kib.is_some() && req.pinned.current_memory_kib.is_none() {
        profile.current_memory_kib = profile.memory_kib;
    }
    if req.pinned.current_memory_kib.is_some() && req.pinned.memory_kib.is_none() {
        profile.memory_kib = profile.current_memory_kib;
    }
    profile.validate()?;
    let pinned = pinned_fields(&req.pinned);
    let mut sources = Vec::new();
    let mut reason = if operator_only {
        "operator values".to_string()
    } else {
        sources.push(format!("tier table: {tier}"));
        format!("tier {tier} table")
    };
    if !pinned.is_empty() {
        sources.push(format!("operator: {}", pinned.join(", ")));
    }
    if let Some(p) = &req.package {
        reason.push_str(&format!(" for package {p}"));
    }
    if let Some(os) = os {
        reason.push_str(&format!(" on {os}"));
    }
    if !pinned.is_empty() && !operator_only {
        reason.push_str(&format!("; pinned by operator: {}", pinned.join(", ")));
    }
    if operator_only {
        reason.push_str(&format!(" ({})", pinned.join(", ")));
    }
    Ok(Allocation {
        profile,
        provenance: Provenance {
            reason,
            tier: (!operator_only).then_some(tier),
            sources,
        },
    })
}

fn pinned_fields(p: &ResourceProfile) -> Vec<&'static str> {
    let mut v = Vec::new();
    if p.vcpus.is_some() || p.max_vcpus.is_some() {
        v.push("vcpus");
    }
    if p.memory_kib.is_some() || p.current_memory_kib.is_some() {
        v.push("memory");
    }
    if p.storage.is_some() {
        v.push("storage");
    }
    if p.disk_bus.is_some() {
        v.push("disk bus");
    }
    if p.disk_iotune.is_some() {
        v.push("disk iotune");
    }
    if p.bandwidth.is_some() {
        v.push("bandwidth");
    }
    v
}

/// Debian package names: lower-case letters, digits, `+ - .`, at least two characters, starting
/// with a letter or digit (Debian Policy 5.6.1). Anything else, shell metacharacters included,
/// is refused here.
pub fn validate_package_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{name}' is not a valid Debian package name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn req(tier: Tier) -> PredictRequest {
        PredictRequest {
            package: Some("nginx".into()),
            os: Some("debian12".into()),
            tier: Some(tier),
            pinned: ResourceProfile::default(),
        }
    }

    #[test]
    fn operator_values_alone_change_nothing_else() {
        let mut r = req(Tier::Low);
        r.tier = None;
        r.pinned.memory_kib = Some(3 * 1024 * 1024);
        let a = predict(&r).unwrap();
        assert_eq!(a.profile.memory_kib, Some(3 * 1024 * 1024));
        assert_eq!(a.profile.current_memory_kib, Some(3 * 1024 * 1024));
        assert_eq!(a.profile.vcpus, None);
        assert_eq!(a.profile.disk_bus, None);
        assert_eq!(a.provenance.tier, None);
        // No tier and nothing pinned: the default tier.
        r.pinned = ResourceProfile::default();
        assert_eq!(predict(&r).unwrap().provenance.tier, Some(DEFAULT_TIER));
    }

    #[test]
    fn tiers_are_ordered() {
        let l = predict(&req(Tier::Low)).unwrap().profile;
        let m = predict(&req(Tier::Medium)).unwrap().profile;
        let h = predict(&req(Tier::High)).unwrap().profile;
        assert!(l.vcpus < m.vcpus && m.vcpus < h.vcpus);
        assert!(l.memory_kib < m.memory_kib && m.memory_kib < h.memory_kib);
    }

    #[test]
    fn pinned_values_win_and_are_named() {
        let mut r = req(Tier::Low);
        r.pinned.vcpus = Some(3);
        let a = predict(&r).unwrap();
        assert_eq!(a.profile.vcpus, Some(3));
        assert_eq!(a.profile.max_vcpus, Some(3));
        assert!(a.provenance.reason.contains("pinned by operator: vcpus"));
    }

    #[test]
    fn impossible_profiles_are_refused() {
        let mut r = req(Tier::Low);
        r.pinned.vcpus = Some(0);
        assert!(predict(&r).unwrap_err().to_string().contains("at least 1"));
        let mut r = req(Tier::Low);
        r.pinned.memory_kib = Some(1024);
        assert!(
            predict(&r)
                .unwrap_err()
                .to_string()
                .contains("below the floor")
        );
    }

    #[test]
    fn bad_package_and_os_are_refused() {
        let mut r = req(Tier::Low);
        r.package = Some("nginx; rm -rf /".into());
        assert!(predict(&r).is_err());
        let mut r = req(Tier::Low);
        r.os = Some("windows".into());
        assert!(predict(&r).unwrap_err().to_string().contains("unknown OS"));
    }
}

//! Plain data shared by every module: resource profiles, tiers, usage samples, host capacity.
//!
//! Nothing here does I/O or knows about libvirt; everything is `serde`-serializable so the same
//! types travel through the CLI, the (future) HTTP API, the store and the domain's prae metadata.
//!
//! Units follow libvirt's own: memory in KiB, disk throughput in bytes/s, network bandwidth in
//! KiB/s (libvirt's `<bandwidth average=...>` unit), CPU time in nanoseconds.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A performance tier: how much risk of running short the operator accepts.
///
/// Each tier maps to a demand quantile plus headroom (see `engine::TierTable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Low,
    Medium,
    High,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Low, Tier::Medium, Tier::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Low => "low",
            Tier::Medium => "medium",
            Tier::High => "high",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Tier::Low),
            "medium" => Ok(Tier::Medium),
            "high" => Ok(Tier::High),
            _ => Err(crate::Error::Invalid(format!(
                "unknown tier '{s}' (expected low, medium or high)"
            ))),
        }
    }
}

/// Where a disk lives: which storage pool class backs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageClass {
    Ssd,
    Hdd,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Ssd => "ssd",
            StorageClass::Hdd => "hdd",
        }
    }
    /// The `rotation_rate` libvirt advertises to the guest: 1 means "non-rotational" (SSD).
    pub fn rotation_rate(self) -> u32 {
        match self {
            StorageClass::Ssd => 1,
            StorageClass::Hdd => 7200,
        }
    }
}

impl fmt::Display for StorageClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StorageClass {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ssd" => Ok(StorageClass::Ssd),
            "hdd" => Ok(StorageClass::Hdd),
            _ => Err(crate::Error::Invalid(format!(
                "unknown storage class '{s}' (expected ssd or hdd)"
            ))),
        }
    }
}

/// The bus a disk is attached to (`<target bus=...>`). Only buses prae chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskBus {
    Virtio,
    Scsi,
    Sata,
}

impl DiskBus {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskBus::Virtio => "virtio",
            DiskBus::Scsi => "scsi",
            DiskBus::Sata => "sata",
        }
    }
    /// The device-name prefix libvirt expects for this bus (`vda`, `sda`).
    pub fn dev_prefix(self) -> &'static str {
        match self {
            DiskBus::Virtio => "vd",
            DiskBus::Scsi | DiskBus::Sata => "sd",
        }
    }
    /// Whether `<target rotation_rate=...>` is valid on this bus (QEMU: scsi, ide, sata only).
    pub fn allows_rotation_rate(self) -> bool {
        matches!(self, DiskBus::Scsi | DiskBus::Sata)
    }
}

impl fmt::Display for DiskBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DiskBus {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "virtio" => Ok(DiskBus::Virtio),
            "scsi" => Ok(DiskBus::Scsi),
            "sata" => Ok(DiskBus::Sata),
            _ => Err(crate::Error::Invalid(format!(
                "unknown disk bus '{s}' (expected virtio, scsi or sata)"
            ))),
        }
    }
}

/// Disk I/O limits, as libvirt's `<iotune>` element (bytes/s and operations/s). `None` = unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoTune {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bytes_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bytes_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_iops_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_iops_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_iops_sec: Option<u64>,
}

impl IoTune {
    pub fn is_empty(&self) -> bool {
        *self == IoTune::default()
    }
}

/// One direction of an interface's `<bandwidth>`: average and peak in KiB/s, burst in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthLimit {
    pub average: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

/// An interface's `<bandwidth>`: inbound and outbound limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbound: Option<BandwidthLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<BandwidthLimit>,
}

impl Bandwidth {
    /// Symmetric limit: `kib_per_sec` average each way, peak twice that, burst one second's worth.
    pub fn symmetric(kib_per_sec: u64) -> Self {
        let l = BandwidthLimit {
            average: kib_per_sec,
            peak: Some(kib_per_sec.saturating_mul(2)),
            burst: Some(kib_per_sec),
        };
        Bandwidth {
            inbound: Some(l),
            outbound: Some(l),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.inbound.is_none() && self.outbound.is_none()
    }
}

/// The smallest memory prae will ever give a domain (KiB): below this no supported guest boots.
pub const MIN_MEMORY_KIB: u64 = 64 * 1024;
/// The largest vCPU count prae accepts in a profile (QEMU's q35 limit is far higher; this is a
/// sanity bound against typos such as `--vcpus 40000`).
pub const MAX_VCPUS: u32 = 4096;

/// What prae allocates to a domain. Every field is optional: `None` means "leave the domain's
/// own value alone". A profile produced by the engine sets everything; an operator's
/// command-line flags may set only some.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceProfile {
    /// vCPUs online at boot (`<vcpu current=...>`, or `<vcpu>` when no hotplug headroom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    /// Maximum vCPUs (`<vcpu>`), >= `vcpus`; the headroom is available for live hotplug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vcpus: Option<u32>,
    /// Boot memory (`<memory>`), KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_kib: Option<u64>,
    /// Current (balloon) memory (`<currentMemory>`), KiB, <= `memory_kib`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_memory_kib: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageClass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bus: Option<DiskBus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_iotune: Option<IoTune>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
}

impl ResourceProfile {
    /// `self`'s fields where set, `base`'s otherwise.
    pub fn over(&self, base: &ResourceProfile) -> ResourceProfile {
        ResourceProfile {
            vcpus: self.vcpus.or(base.vcpus),
            max_vcpus: self.max_vcpus.or(base.max_vcpus),
            memory_kib: self.memory_kib.or(base.memory_kib),
            current_memory_kib: self.current_memory_kib.or(base.current_memory_kib),
            storage: self.storage.or(base.storage),
            disk_bus: self.disk_bus.or(base.disk_bus),
            disk_iotune: self.disk_iotune.or(base.disk_iotune),
            bandwidth: self.bandwidth.or(base.bandwidth),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == ResourceProfile::default()
    }

    /// Checks that the profile could describe a real domain: at least one vCPU, memory above
    /// [`MIN_MEMORY_KIB`], current values not above maximums, non-zero limits. The error names
    /// the offending value.
    pub fn validate(&self) -> Result<(), crate::Error> {
        use crate::Error::Invalid;
        for (name, v) in [("vcpus", self.vcpus), ("max_vcpus", self.max_vcpus)] {
            match v {
                Some(0) => return Err(Invalid(format!("{name} must be at least 1, got 0"))),
                Some(n) if n > MAX_VCPUS => {
                    return Err(Invalid(format!(
                        "{name} {n} exceeds the limit of {MAX_VCPUS}"
                    )));
                }
                _ => {}
            }
        }
        if let (Some(c), Some(m)) = (self.vcpus, self.max_vcpus)
            && c > m
        {
            return Err(Invalid(format!("vcpus {c} exceeds max_vcpus {m}")));
        }
        for (name, v) in [
            ("memory", self.memory_kib),
            ("current memory", self.current_memory_kib),
        ] {
            if let Some(kib) = v
                && kib < MIN_MEMORY_KIB
            {
                return Err(Invalid(format!(
                    "{name} {} is below the floor of {}",
                    crate::units::format_kib(kib),
                    crate::units::format_kib(MIN_MEMORY_KIB)
                )));
            }
        }
        if let (Some(c), Some(m)) = (self.current_memory_kib, self.memory_kib)
            && c > m
        {
            return Err(Invalid(format!(
                "current memory {} exceeds memory {}",
                crate::units::format_kib(c),
                crate::units::format_kib(m)
            )));
        }
        if let Some(io) = &self.disk_iotune {
            let all = [
                ("total_bytes_sec", io.total_bytes_sec),
                ("read_bytes_sec", io.read_bytes_sec),
                ("write_bytes_sec", io.write_bytes_sec),
                ("total_iops_sec", io.total_iops_sec),
                ("read_iops_sec", io.read_iops_sec),
                ("write_iops_sec", io.write_iops_sec),
            ];
            for (name, v) in all {
                if v == Some(0) {
                    return Err(Invalid(format!(
                        "disk {name} must be positive (omit it for no limit), got 0"
                    )));
                }
            }
            if io.total_bytes_sec.is_some()
                && (io.read_bytes_sec.is_some() || io.write_bytes_sec.is_some())
            {
                return Err(Invalid(
                    "disk total_bytes_sec cannot be combined with read/write_bytes_sec".into(),
                ));
            }
            if io.total_iops_sec.is_some()
                && (io.read_iops_sec.is_some() || io.write_iops_sec.is_some())
            {
                return Err(Invalid(
                    "disk total_iops_sec cannot be combined with read/write_iops_sec".into(),
                ));
            }
        }
        if let Some(bw) = &self.bandwidth {
            for (dir, l) in [("inbound", bw.inbound), ("outbound", bw.outbound)] {
                if let Some(l) = l {
                    if l.average == 0 {
                        return Err(Invalid(format!(
                            "{dir} bandwidth average must be positive, got 0"
                        )));
                    }
                    if let Some(p) = l.peak
                        && p < l.average
                    {
                        return Err(Invalid(format!(
                            "{dir} bandwidth peak {p} is below its average {}",
                            l.average
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Why a profile is what it is: the evidence and model behind it, carried with every decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// One line: what produced the profile (e.g. "tier table medium", "operator flags").
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// Which source set which field, in order of application.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// A profile with its provenance: what the engine hands to the rewriter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Allocation {
    pub profile: ResourceProfile,
    pub provenance: Provenance,
}

/// One usage sample of a domain, build or command: what it used during the `interval_s` seconds
/// that end at `timestamp`. Counters are per interval, not cumulative (a sampler reading
/// libvirt's cumulative counters stores the difference between two readings), so a gap or a
/// counter reset never invents usage. See `store` for how traces map onto these fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageSample {
    /// Unix time, seconds: the end of the interval.
    pub timestamp: i64,
    /// Length of the interval the sample covers, seconds (0: an instantaneous reading).
    #[serde(default)]
    pub interval_s: u32,
    /// Guest CPU time used during the interval, nanoseconds (all vCPUs together).
    pub cpu_time_ns: u64,
    /// CPU utilisation during the interval as a percentage of the subject's own CPU capacity,
    /// where the source reports that instead of CPU time (traces without a core count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Memory the guest uses, KiB.
    pub memory_used_kib: u64,
    /// Bytes read from disk during the interval.
    pub disk_read_bytes: u64,
    /// Bytes written to disk during the interval.
    pub disk_write_bytes: u64,
    /// Bytes received on the network during the interval.
    pub net_rx_bytes: u64,
    /// Bytes sent on the network during the interval.
    pub net_tx_bytes: u64,
}

/// What a host has, from libvirt's node info and node memory stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCapacity {
    pub cpus: u32,
    pub cpu_mhz: u32,
    pub memory_kib: u64,
    pub free_memory_kib: u64,
}

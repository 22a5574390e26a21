//! The libvirt boundary: the [`Hypervisor`] trait (what prae asks of a hypervisor) and its one
//! real implementation on the `virt` crate, [`Libvirt`].
//!
//! Invariants:
//! - This is the ONLY module that calls libvirt (safe `virt` API or raw `virt::sys`).
//! - Every `unsafe` block carries a `// SAFETY:` comment and is exercised by a test against a
//!   real libvirt (`test:///default` in-process, or the lab's `qemu:///system`).
//! - No connection is opened implicitly: callers open one with [`Libvirt::open`] and pass it on.
//! - Methods take and return plain values (XML strings, `model` types, the records below).

use crate::Result;
use crate::model::{Bandwidth, HostCapacity, IoTune};
use serde::{Deserialize, Serialize};

mod accel;
mod events;
mod libvirt;
mod params;
mod stats;
pub use libvirt::Libvirt;

/// The URI prae uses when none is given: libvirt's in-process test driver.
pub const DEFAULT_URI: &str = "test:///default";

/// Which version of a domain's XML to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlKind {
    /// The running definition (or the persistent one when the domain is not running).
    Live,
    /// The persistent definition that applies at next boot.
    Inactive,
}

/// Where a change applies: the persistent config, the running domain, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Config,
    Live,
    Both,
}

/// A domain's lifecycle state, reduced to what prae acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainState {
    Running,
    Paused,
    Shutoff,
    Crashed,
    Other,
}

/// Identity and basic state of one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainInfo {
    pub name: String,
    pub uuid: String,
    pub state: DomainState,
    pub persistent: bool,
    /// Current vCPUs and memory (KiB) as libvirt reports them.
    pub vcpus: u32,
    pub memory_kib: u64,
    pub max_memory_kib: u64,
}

/// The virtualization type a domain should use on this host (`<domain type=...>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VirtType {
    Kvm,
    Qemu,
}

impl VirtType {
    pub fn as_str(self) -> &'static str {
        match self {
            VirtType::Kvm => "kvm",
            VirtType::Qemu => "qemu",
        }
    }
}

/// The answer of KVM detection: which type to use and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccelChoice {
    pub virt_type: VirtType,
    pub reason: String,
}

/// Host CPU time counters (nanoseconds since boot), from `virNodeGetCPUStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCpuStats {
    pub kernel_ns: u64,
    pub user_ns: u64,
    pub idle_ns: u64,
    pub iowait_ns: u64,
}

/// Host memory (KiB), from `virNodeGetMemoryStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMemoryStats {
    pub total_kib: u64,
    pub free_kib: u64,
    pub buffers_kib: u64,
    pub cached_kib: u64,
}

/// One disk's counters from all-domain stats (`block.<n>.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    pub name: String,
    pub rd_bytes: u64,
    pub wr_bytes: u64,
    pub rd_reqs: u64,
    pub wr_reqs: u64,
    pub capacity: Option<u64>,
    pub allocation: Option<u64>,
}

/// One interface's counters from all-domain stats (`net.<n>.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStats {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// One domain's record from `virConnectGetAllDomainStats`, typed. Fields a driver does not
/// report are `None` (the test driver reports only `state.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainStats {
    pub name: String,
    /// `state.state` (virDomainState number).
    pub state: Option<i32>,
    /// `cpu.time`, ns.
    pub cpu_time_ns: Option<u64>,
    /// `vcpu.current` / `vcpu.maximum`.
    pub vcpu_current: Option<u32>,
    pub vcpu_maximum: Option<u32>,
    /// `balloon.current` / `balloon.maximum` / `balloon.available` / `balloon.unused` /
    /// `balloon.usable` / `balloon.rss`, KiB.
    pub balloon_current_kib: Option<u64>,
    pub balloon_maximum_kib: Option<u64>,
    pub balloon_available_kib: Option<u64>,
    pub balloon_unused_kib: Option<u64>,
    pub balloon_usable_kib: Option<u64>,
    pub balloon_rss_kib: Option<u64>,
    pub blocks: Vec<BlockStats>,
    pub nets: Vec<NetStats>,
}

/// A lifecycle event prae reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LifecycleKind {
    Defined,
    Undefined,
    Started,
    Stopped,
    /// Any other lifecycle event (suspended, resumed, crashed, ...): passed on, not acted on.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub domain: String,
    pub uuid: String,
    pub kind: LifecycleKind,
    /// libvirt's event and detail numbers, for logs.
    pub event: i32,
    pub detail: i32,
}

/// A stream of lifecycle events for async code. Dropping it deregisters the callback.
pub type EventStream = std::pin::Pin<Box<dyn futures_core::Stream<Item = LifecycleEvent> + Send>>;

/// Storage pool summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolInfo {
    pub name: String,
    pub active: bool,
    pub capacity: u64,
    pub allocation: u64,
    pub available: u64,
}

/// Storage volume summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeInfo {
    pub name: String,
    pub path: String,
    pub capacity: u64,
    pub allocation: u64,
}

/// What prae asks of a hypervisor. Implemented by [`Libvirt`]; unit tests of orchestration may
/// use a fake, but every method is also tested against a real libvirt.
///
/// Domains are named by name. Errors: [`crate::Error::NotFound`] for a missing domain, pool,
/// volume or snapshot; [`crate::Error::Libvirt`] with libvirt's message otherwise.
pub trait Hypervisor: Send + Sync {
    /// The URI of the open connection.
    fn uri(&self) -> Result<String>;

    // Lifecycle.
    /// Defines a persistent domain from XML (`virDomainDefineXML`); returns its name.
    fn define(&self, xml: &str) -> Result<String>;
    /// Creates and starts a transient domain (`virDomainCreateXML`); returns its name.
    fn create(&self, xml: &str) -> Result<String>;
    fn start(&self, name: &str) -> Result<()>;
    /// Asks the guest to shut down (ACPI or agent); returns at once.
    fn shutdown(&self, name: &str) -> Result<()>;
    /// Stops the domain at once (power off).
    fn destroy(&self, name: &str) -> Result<()>;
    /// Removes a persistent definition, with its snapshot metadata and NVRAM.
    fn undefine(&self, name: &str) -> Result<()>;
    fn list_domains(&self) -> Result<Vec<DomainInfo>>;
    fn domain_info(&self, name: &str) -> Result<DomainInfo>;
    fn domain_xml(&self, name: &str, kind: XmlKind) -> Result<String>;

    // Resources.
    fn set_vcpus(&self, name: &str, count: u32, scope: Scope) -> Result<()>;
    fn set_memory(&self, name: &str, kib: u64, scope: Scope) -> Result<()>;
    /// Sets `<iotune>` of the disk whose target is `disk` (e.g. `vda`) to exactly `iotune`:
    /// unset fields are cleared (no limit); each `*_max` burst value is set equal to its limit.
    fn set_disk_iotune(&self, name: &str, disk: &str, iotune: &IoTune, scope: Scope) -> Result<()>;
    /// Sets `<bandwidth>` of the interface `iface` (target dev or MAC address) to exactly
    /// `bandwidth`: a direction that is `None` is cleared. A host whose kernel cannot shape
    /// traffic (no `sch_sfq`) gives [`crate::Error::Unsupported`].
    fn set_interface_bandwidth(
        &self,
        name: &str,
        iface: &str,
        bandwidth: &Bandwidth,
        scope: Scope,
    ) -> Result<()>;

    // Host and load.
    fn node_capacity(&self) -> Result<HostCapacity>;
    fn node_cpu_stats(&self) -> Result<NodeCpuStats>;
    /// Host memory; drivers without `virNodeGetMemoryStats` (the test driver) report total and
    /// free from node info, with buffers and cache 0.
    fn node_memory_stats(&self) -> Result<NodeMemoryStats>;
    fn all_domain_stats(&self) -> Result<Vec<DomainStats>>;

    // Events.
    /// Subscribes to lifecycle events of all domains on this connection.
    fn lifecycle_events(&self) -> Result<EventStream>;

    // Snapshots.
    /// Creates a snapshot from `<domainsnapshot>` XML; returns its name.
    fn snapshot_create(&self, domain: &str, snapshot_xml: &str) -> Result<String>;
    fn snapshot_list(&self, domain: &str) -> Result<Vec<String>>;
    fn snapshot_revert(&self, domain: &str, snapshot: &str) -> Result<()>;
    fn snapshot_delete(&self, domain: &str, snapshot: &str) -> Result<()>;

    // Storage.
    fn pool_list(&self) -> Result<Vec<PoolInfo>>;
    /// Defines, builds (if needed) and starts a persistent pool from XML; returns its name.
    fn pool_define_start(&self, pool_xml: &str) -> Result<String>;
    fn pool_refresh(&self, pool: &str) -> Result<()>;
    /// Stops and undefines a pool (its volumes' files are left to the caller).
    fn pool_remove(&self, pool: &str) -> Result<()>;
    fn volume_list(&self, pool: &str) -> Result<Vec<VolumeInfo>>;
    fn volume_create(&self, pool: &str, volume_xml: &str) -> Result<VolumeInfo>;
    fn volume_delete(&self, pool: &str, volume: &str) -> Result<()>;

    // Guest agent.
    /// Sends one QEMU guest agent command (JSON) and returns the agent's JSON reply.
    fn agent_command(&self, domain: &str, command_json: &str, timeout_secs: i32) -> Result<String>;

    // Host facts.
    /// Which `<domain type>` works on this host: KVM if it really runs guest code, else TCG.
    /// `PRAE_VIRT_TYPE=kvm|qemu` forces the answer; the probe runs once per process.
    fn choose_virt_type(&self) -> AccelChoice;
}

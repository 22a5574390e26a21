//! [`Hypervisor`] on the `virt` crate.
//!
//! Safe `virt` calls where the crate has a wrapper that reports failures; raw `virt::sys` (in
//! [`super::params`], [`super::stats`], [`super::events`] and here) for iotune, interface
//! parameters, node stats, all-domain stats and events. Notes from the lab (libvirt 11.3):
//! `Domain::set_memory` and `Domain::attach_device` return `Ok` even when libvirt fails, so only
//! the `_flags` variants are used; `Domain::state` ignores errors, so state comes from
//! `virDomainGetInfo`.

use super::*;
use super::{accel, events, params::TypedParams, stats};
use crate::Error;
use std::ffi::{CString, c_uint};
use virt::connect::Connect;
use virt::domain::Domain;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

/// A libvirt connection. `Send + Sync`: `virt::connect::Connect` is (libvirt connections are
/// thread-safe), and so is everything else held here.
pub struct Libvirt {
    conn: Connect,
}

/// One-line text of a libvirt error: its message without the crate's `[code=..]` suffix.
fn msg(e: &virt::error::Error) -> String {
    let m = e.message().trim();
    let m = if m.is_empty() {
        "unknown libvirt error"
    } else {
        m
    };
    m.replace('\n', " ")
}

fn code(e: &virt::error::Error) -> u32 {
    e.code().to_raw()
}

fn is_unsupported(e: &virt::error::Error) -> bool {
    matches!(
        code(e),
        sys::VIR_ERR_NO_SUPPORT
            | sys::VIR_ERR_OPERATION_UNSUPPORTED
            | sys::VIR_ERR_ARGUMENT_UNSUPPORTED
    )
}

/// Maps a libvirt error: missing objects -> `NotFound(what)`, unsupported operations ->
/// `Unsupported`, anything else -> `Libvirt("cannot <doing>: <message>")`.
fn map_err(e: virt::error::Error, doing: &str, what: &str) -> Error {
    match code(&e) {
        sys::VIR_ERR_NO_DOMAIN
        | sys::VIR_ERR_NO_STORAGE_POOL
        | sys::VIR_ERR_NO_STORAGE_VOL
        | sys::VIR_ERR_NO_DOMAIN_SNAPSHOT => Error::NotFound(what.to_string()),
        _ if is_unsupported(&e) => Error::Unsupported(format!("cannot {doing}: {}", msg(&e))),
        _ => Error::Libvirt(format!("cannot {doing}: {}", msg(&e))),
    }
}

fn cstring(value: &str, what: &str) -> Result<CString> {
    CString::new(value).map_err(|_| Error::Invalid(format!("{what} '{value}' contains a NUL byte")))
}

fn impact(scope: Scope) -> c_uint {
    match scope {
        Scope::Config => sys::VIR_DOMAIN_AFFECT_CONFIG,
        Scope::Live => sys::VIR_DOMAIN_AFFECT_LIVE,
        Scope::Both => sys::VIR_DOMAIN_AFFECT_CONFIG | sys::VIR_DOMAIN_AFFECT_LIVE,
    }
}

/// Runs `set` with the scope's flags. Some drivers (libvirt's test driver for iotune and
/// interface parameters) refuse LIVE|CONFIG together as "mutually exclusive": then the change
/// is applied to the running domain first and to the config second.
fn apply_scoped(
    scope: Scope,
    mut set: impl FnMut(c_uint) -> std::result::Result<(), virt::error::Error>,
) -> std::result::Result<(), virt::error::Error> {
    match set(impact(scope)) {
        Err(e)
            if scope == Scope::Both
                && code(&e) == sys::VIR_ERR_INVALID_ARG
                && e.message().contains("mutually exclusive") =>
        {
            set(sys::VIR_DOMAIN_AFFECT_LIVE)?;
            set(sys::VIR_DOMAIN_AFFECT_CONFIG)
        }
        r => r,
    }
}

fn state_of(s: virt::domain::DomainStateEnum) -> DomainState {
    match s.to_raw() {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED => DomainState::Running,
        sys::VIR_DOMAIN_PAUSED => DomainState::Paused,
        sys::VIR_DOMAIN_SHUTOFF => DomainState::Shutoff,
        sys::VIR_DOMAIN_CRASHED => DomainState::Crashed,
        _ => DomainState::Other,
    }
}

impl Libvirt {
    /// Opens `uri` (`None`: libvirt's own default, as virsh without `-c`).
    ///
    /// Registers libvirt's event loop first (once per process), as events require.
    pub fn open(uri: Option<&str>) -> Result<Self> {
        if let Err(e) = events::init_event_loop() {
            // Without an event loop everything but lifecycle events still works.
            log::warn!("{e}; lifecycle events will be unavailable");
        }
        Self::open_without_events(uri)
    }

    /// Opens `uri` like [`Libvirt::open`] but without registering libvirt's event loop (no
    /// thread), for short-lived callers such as `prae-virsh define`: everything works except
    /// [`Hypervisor::lifecycle_events`], which then registers the loop itself, too late for
    /// this connection's events.
    pub fn open_without_events(uri: Option<&str>) -> Result<Self> {
        // libvirt's default error handler prints every error to stderr; prae reports errors
        // through its own `Error` (libvirt still records them for `virGetLastError`).
        static QUIET: std::sync::Once = std::sync::Once::new();
        QUIET.call_once(virt::error::clear_error_callback);
        if let Some(u) = uri {
            // `Connect::open` would panic on an interior NUL.
            cstring(u, "URI")?;
        }
        let conn = Connect::open(uri).map_err(|e| {
            Error::Libvirt(format!(
                "cannot connect to {}: {}",
                uri.unwrap_or("the default URI"),
                msg(&e)
            ))
        })?;
        Ok(Libvirt { conn })
    }

    fn domain(&self, name: &str) -> Result<Domain> {
        let what = format!("domain '{name}'");
        cstring(name, "domain name")?;
        self.conn
            .lookup_domain_by_name(name)
            .map_err(|e| map_err(e, &format!("look up {what}"), &what))
    }

    fn pool(&self, name: &str) -> Result<StoragePool> {
        let what = format!("storage pool '{name}'");
        cstring(name, "pool name")?;
        self.conn
            .lookup_storage_pool_by_name(name)
            .map_err(|e| map_err(e, &format!("look up {what}"), &what))
    }

    fn info_of(&self, dom: &Domain) -> std::result::Result<DomainInfo, virt::error::Error> {
        let info = dom.info()?;
        Ok(DomainInfo {
            name: dom.name()?,
            uuid: dom.uuid_string()?,
            state: state_of(info.state),
            persistent: dom.is_persistent()?,
            vcpus: info.nr_virt_cpu,
            memory_kib: info.memory,
            max_memory_kib: info.max_mem,
        })
    }

    /// Whether the URI names another machine (`driver+transport://host/...`).
    fn remote_host(&self) -> bool {
        let Ok(uri) = self.conn.uri() else {
            return false;
        };
        let Some((_, rest)) = uri.split_once("://") else {
            return false;
        };
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or("");
        let host = host.split(':').next().unwrap_or("");
        !(host.is_empty() || host == "localhost" || host == "127.0.0.1" || host == "::1")
    }
}

impl Hypervisor for Libvirt {
    fn uri(&self) -> Result<String> {
        self.conn
            .uri()
            .map_err(|e| Error::Libvirt(format!("cannot read the connection URI: {}", msg(&e))))
    }

    fn define(&self, xml: &str) -> Result<String> {
        let dom = self
            .conn
            .define_domain_xml(xml)
            .map_err(|e| map_err(e, "define domain", "domain"))?;
        dom.name()
            .map_err(|e| map_err(e, "read the defined domain's name", "domain"))
    }

    fn create(&self, xml: &str) -> Result<String> {
        let dom = self
            .conn
            .create_domain_xml(xml, 0)
            .map_err(|e| map_err(e, "create domain", "domain"))?;
        dom.name()
            .map_err(|e| map_err(e, "read the created domain's name", "domain"))
    }

    fn start(&self, name: &str) -> Result<()> {
        let what = format!("domain '{name}'");
        self.domain(name)?
            .create()
            .map(drop)
            .map_err(|e| map_err(e, &format!("start {what}"), &what))
    }

    fn shutdown(&self, name: &str) -> Result<()> {
        let what = format!("domain '{name}'");
        self.domain(name)?
            .shutdown()
            .map(drop)
            .map_err(|e| map_err(e, &format!("shut down {what}"), &what))
    }

    fn destroy(&self, name: &str) -> Result<()> {
        let what = format!("domain '{name}'");
        self.domain(name)?
            .destroy()
            .map(drop)
            .map_err(|e| map_err(e, &format!("destroy {what}"), &what))
    }

    fn undefine(&self, name: &str) -> Result<()> {
        let what = format!("domain '{name}'");
        let dom = self.domain(name)?;
        // Remove managed save, snapshot and checkpoint metadata and NVRAM with the definition.
        // Drivers refuse flags they do not know (the test driver takes only the first two), so
        // retry with fewer, down to a plain undefine.
        let base =
            sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
        let ladder = [
            base | sys::VIR_DOMAIN_UNDEFINE_NVRAM | sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA,
            base | sys::VIR_DOMAIN_UNDEFINE_NVRAM,
            base,
        ];
        for flags in ladder {
            match dom.undefine_flags(flags) {
                Ok(()) => return Ok(()),
                Err(e) if is_unsupported(&e) || code(&e) == sys::VIR_ERR_INVALID_ARG => {
                    log::debug!("undefine {what} with flags {flags:#x}: {}", msg(&e));
                }
                Err(e) => return Err(map_err(e, &format!("undefine {what}"), &what)),
            }
        }
        dom.undefine()
            .map_err(|e| map_err(e, &format!("undefine {what}"), &what))
    }

    fn list_domains(&self) -> Result<Vec<DomainInfo>> {
        let doms = self
            .conn
            .list_all_domains(0)
            .map_err(|e| map_err(e, "list domains", "domains"))?;
        let mut out = Vec::with_capacity(doms.len());
        for dom in &doms {
            match self.info_of(dom) {
                Ok(i) => out.push(i),
                // Undefined between listing and reading: not an error of the listing.
                Err(e) if code(&e) == sys::VIR_ERR_NO_DOMAIN => {}
                Err(e) => return Err(map_err(e, "read domain info", "domain")),
            }
        }
        Ok(out)
    }

    fn domain_info(&self, name: &str) -> Result<DomainInfo> {
        let what = format!("domain '{name}'");
        let dom = self.domain(name)?;
        self.info_of(&dom)
            .map_err(|e| map_err(e, &format!("read info of {what}"), &what))
    }

    fn domain_xml(&self, name: &str, kind: XmlKind) -> Result<String> {
        let what = format!("domain '{name}'");
        let flags = match kind {
            XmlKind::Live => 0,
            XmlKind::Inactive => sys::VIR_DOMAIN_XML_INACTIVE,
        };
        self.domain(name)?
            .xml_desc(flags)
            .map_err(|e| map_err(e, &format!("read the XML of {what}"), &what))
    }

    fn set_vcpus(&self, name: &str, count: u32, scope: Scope) -> Result<()> {
        let what = format!("domain '{name}'");
        if count == 0 {
            return Err(Error::Invalid(format!(
                "vcpus for {what} must be at least 1, got 0"
            )));
        }
        let dom = self.domain(name)?;
        if scope == Scope::Both {
            // Check the running maximum first, so a refused live change leaves the config alone.
            let live_max = dom
                .vcpus_flags(sys::VIR_DOMAIN_AFFECT_LIVE | sys::VIR_DOMAIN_VCPU_MAXIMUM)
                .map_err(|e| {
                    map_err(
                        e,
                        &format!("read the running maximum vCPUs of {what}"),
                        &what,
                    )
                })?;
            if count > live_max {
                return Err(Error::Invalid(format!(
                    "{count} vCPUs exceed the running maximum of {live_max} of {what}; \
                     the maximum changes only in the config (next boot)"
                )));
            }
        }
        if scope != Scope::Live {
            let max = dom
                .vcpus_flags(sys::VIR_DOMAIN_AFFECT_CONFIG | sys::VIR_DOMAIN_VCPU_MAXIMUM)
                .map_err(|e| map_err(e, &format!("read the maximum vCPUs of {what}"), &what))?;
            if count > max {
                dom.set_vcpus_flags(
                    count,
                    sys::VIR_DOMAIN_AFFECT_CONFIG | sys::VIR_DOMAIN_VCPU_MAXIMUM,
                )
                .map_err(|e| {
                    map_err(
                        e,
                        &format!("raise the maximum vCPUs of {what} to {count}"),
                        &what,
                    )
                })?;
            }
        }
        dom.set_vcpus_flags(count, impact(scope))
            .map_err(|e| map_err(e, &format!("set {count} vCPUs on {what}"), &what))
    }

    fn set_memory(&self, name: &str, kib: u64, scope: Scope) -> Result<()> {
        let what = format!("domain '{name}'");
        if kib == 0 {
            return Err(Error::Invalid(format!(
                "memory for {what} must be positive, got 0"
            )));
        }
        let dom = self.domain(name)?;
        if scope == Scope::Both {
            // Check the running maximum first, so a refused live change leaves the config alone.
            let live_max = dom
                .info()
                .map_err(|e| map_err(e, &format!("read info of {what}"), &what))?
                .max_mem;
            if kib > live_max {
                return Err(Error::Invalid(format!(
                    "{kib} KiB of memory exceed the running maximum of {live_max} KiB of {what}; \
                     the maximum changes only in the config (next boot)"
                )));
            }
        }
        if scope != Scope::Live {
            let xml = dom
                .xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
                .map_err(|e| map_err(e, &format!("read the XML of {what}"), &what))?;
            let max = crate::domain::parse(&xml)
                .map_err(|e| {
                    Error::Libvirt(format!("cannot read the maximum memory of {what}: {e}"))
                })?
                .memory_kib;
            if kib > max {
                dom.set_memory_flags(
                    kib,
                    sys::VIR_DOMAIN_AFFECT_CONFIG | sys::VIR_DOMAIN_MEM_MAXIMUM,
                )
                .map_err(|e| {
                    map_err(
                        e,
                        &format!("raise the maximum memory of {what} to {kib} KiB"),
                        &what,
                    )
                })?;
            }
        }
        dom.set_memory_flags(kib, impact(scope))
            .map_err(|e| map_err(e, &format!("set {kib} KiB of memory on {what}"), &what))
    }

    /// Sets the disk's limits to exactly `iotune`: unset fields become 0 (no limit). Each
    /// `*_max` (burst) value is set equal to its limit, so there is no burst above it; libvirt's
    /// test driver also requires `*_max >= value`.
    fn set_disk_iotune(&self, name: &str, disk: &str, iotune: &IoTune, scope: Scope) -> Result<()> {
        let what = format!("domain '{name}'");
        let dom = self.domain(name)?;
        let c_disk = cstring(disk, "disk")?;
        let fields: [(&std::ffi::CStr, &std::ffi::CStr, Option<u64>); 6] = [
            (
                sys::VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_BYTES_SEC,
                sys::VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_BYTES_SEC_MAX,
                iotune.total_bytes_sec,
            ),
            (
                sys::VIR_DOMAIN_BLOCK_IOTUNE_READ_BYTES_SEC,
                sys::VIR_DOMAIN_BLOCK_IOTUNE_READ_BYTES_SEC_MAX,
                iotune.read_bytes_sec,
            ),
            (
                sys::VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC,
                sys::VIR_DOMAIN_BLOCK_IOTUNE_WRITE_BYTES_SEC_MAX,
                iotune.write_bytes_sec,
            ),
            (
                sys::VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_IOPS_SEC,
                sys::VIR_DOMAIN_BLOCK_IOTUNE_TOTAL_IOPS_SEC_MAX,
                iotune.total_iops_sec,
            ),
            (
                sys::VIR_DOMAIN_BLOCK_IOTUNE_READ_IOPS_SEC,
                sys::VIR_DOMAIN_BLOCK_IOTUNE_READ_IOPS_SEC_MAX,
                iotune.read_iops_sec,
            ),
            (
                sys::VIR_DOMAIN_BLOCK_IOTUNE_WRITE_IOPS_SEC,
                sys::VIR_DOMAIN_BLOCK_IOTUNE_WRITE_IOPS_SEC_MAX,
                iotune.write_iops_sec,
            ),
        ];
        let doing = format!("set I/O limits of disk '{disk}' on {what}");
        let mut params = TypedParams::new();
        for (field, max_field, v) in fields {
            let v = v.unwrap_or(0);
            params
                .add_ullong(field, v)
                .and_then(|()| params.add_ullong(max_field, v))
                .map_err(|e| map_err(e, &doing, &what))?;
        }
        let (ptr, n) = params.raw();
        apply_scoped(scope, |flags| {
            // SAFETY: `dom` is a live domain handle; `c_disk` is NUL-terminated and outlives
            // the call; `ptr`/`n` describe the array `params` owns, which libvirt only reads.
            let rc = unsafe {
                sys::virDomainSetBlockIoTune(dom.as_ptr(), c_disk.as_ptr(), ptr, n, flags)
            };
            if rc < 0 {
                return Err(virt::error::Error::last_error());
            }
            Ok(())
        })
        .map_err(|e| map_err(e, &doing, &what))
    }

    /// Sets the interface's `<bandwidth>` to exactly `bandwidth`: a direction that is `None` is
    /// cleared (average 0), unset peak/burst become 0.
    fn set_interface_bandwidth(
        &self,
        name: &str,
        iface: &str,
        bandwidth: &Bandwidth,
        scope: Scope,
    ) -> Result<()> {
        let what = format!("domain '{name}'");
        let dom = self.domain(name)?;
        let c_iface = cstring(iface, "interface")?;
        let to_u32 = |v: u64, field: &str| {
            u32::try_from(v).map_err(|_| {
                Error::Invalid(format!(
                    "interface '{iface}' {field} {v} exceeds libvirt's limit of {}",
                    u32::MAX
                ))
            })
        };
        let doing = format!("set bandwidth of interface '{iface}' on {what}");
        let mut params = TypedParams::new();
        let dirs = [
            (
                bandwidth.inbound,
                "inbound",
                sys::VIR_DOMAIN_BANDWIDTH_IN_AVERAGE,
                sys::VIR_DOMAIN_BANDWIDTH_IN_PEAK,
                sys::VIR_DOMAIN_BANDWIDTH_IN_BURST,
            ),
            (
                bandwidth.outbound,
                "outbound",
                sys::VIR_DOMAIN_BANDWIDTH_OUT_AVERAGE,
                sys::VIR_DOMAIN_BANDWIDTH_OUT_PEAK,
                sys::VIR_DOMAIN_BANDWIDTH_OUT_BURST,
            ),
        ];
        for (limit, dir, avg, peak, burst) in dirs {
            let (a, p, b) = match limit {
                Some(l) => (l.average, l.peak.unwrap_or(0), l.burst.unwrap_or(0)),
                None => (0, 0, 0),
            };
            let a = to_u32(a, &format!("{dir} average"))?;
            let p = to_u32(p, &format!("{dir} peak"))?;
            let b = to_u32(b, &format!("{dir} burst"))?;
            params
                .add_uint(avg, a)
                .and_then(|()| params.add_uint(peak, p))
                .and_then(|()| params.add_uint(burst, b))
                .map_err(|e| map_err(e, &doing, &what))?;
        }
        let (ptr, n) = params.raw();
        apply_scoped(scope, |flags| {
            // SAFETY: `dom` is a live domain handle; `c_iface` is NUL-terminated and outlives
            // the call; `ptr`/`n` describe the array `params` owns, which libvirt only reads.
            let rc = unsafe {
                sys::virDomainSetInterfaceParameters(dom.as_ptr(), c_iface.as_ptr(), ptr, n, flags)
            };
            if rc < 0 {
                return Err(virt::error::Error::last_error());
            }
            Ok(())
        })
        .map_err(|e| {
            let m = msg(&e);
            // QEMU shapes traffic with tc; a kernel without the sfq qdisc makes tc fail.
            if m.contains("sfq") || (m.contains("tc") && m.contains("qdisc")) {
                Error::Unsupported(format!(
                    "interface bandwidth on {what}: this host's kernel cannot shape traffic \
                     (tc qdisc sfq is missing): {m}"
                ))
            } else {
                map_err(e, &doing, &what)
            }
        })
    }

    fn node_capacity(&self) -> Result<HostCapacity> {
        let info = self
            .conn
            .node_info()
            .map_err(|e| map_err(e, "read node info", "node"))?;
        let free = self
            .conn
            .free_memory()
            .map_err(|e| map_err(e, "read the node's free memory", "node"))?;
        Ok(HostCapacity {
            cpus: info.cpus,
            cpu_mhz: info.mhz,
            memory_kib: info.memory,
            free_memory_kib: free / 1024,
        })
    }

    fn node_cpu_stats(&self) -> Result<NodeCpuStats> {
        stats::node_cpu_stats(&self.conn).map_err(|e| map_err(e, "read node CPU stats", "node"))
    }

    /// Host memory. Drivers without `virNodeGetMemoryStats` (the test driver) get total and
    /// free from node info and free memory; buffers and cache are then 0.
    fn node_memory_stats(&self) -> Result<NodeMemoryStats> {
        match stats::node_memory_stats(&self.conn) {
            Ok(s) => Ok(s),
            Err(e) if is_unsupported(&e) => {
                log::debug!(
                    "node memory stats unsupported ({}); using node info",
                    msg(&e)
                );
                let cap = self.node_capacity()?;
                Ok(NodeMemoryStats {
                    total_kib: cap.memory_kib,
                    free_kib: cap.free_memory_kib,
                    buffers_kib: 0,
                    cached_kib: 0,
                })
            }
            Err(e) => Err(map_err(e, "read node memory stats", "node")),
        }
    }

    fn all_domain_stats(&self) -> Result<Vec<DomainStats>> {
        stats::all_domain_stats(&self.conn).map_err(|e| map_err(e, "read domain stats", "domain"))
    }

    fn lifecycle_events(&self) -> Result<EventStream> {
        events::init_event_loop().map_err(Error::Unsupported)?;
        events::subscribe(&self.conn)
            .map_err(|e| map_err(e, "subscribe to lifecycle events", "events"))
    }

    fn snapshot_create(&self, domain: &str, snapshot_xml: &str) -> Result<String> {
        let what = format!("domain '{domain}'");
        let dom = self.domain(domain)?;
        let snap = dom
            .create_snapshot_xml(snapshot_xml, 0)
            .map_err(|e| map_err(e, &format!("create a snapshot of {what}"), &what))?;
        snap.name()
            .map_err(|e| map_err(e, &format!("read the new snapshot's name on {what}"), &what))
    }

    fn snapshot_list(&self, domain: &str) -> Result<Vec<String>> {
        let what = format!("domain '{domain}'");
        let dom = self.domain(domain)?;
        let snaps = dom
            .list_all_snapshots(0)
            .map_err(|e| map_err(e, &format!("list snapshots of {what}"), &what))?;
        snaps
            .iter()
            .map(|s| {
                s.name()
                    .map_err(|e| map_err(e, &format!("read a snapshot name of {what}"), &what))
            })
            .collect()
    }

    fn snapshot_revert(&self, domain: &str, snapshot: &str) -> Result<()> {
        let what = format!("snapshot '{snapshot}' of domain '{domain}'");
        let dom = self.domain(domain)?;
        let snap = Domain::lookup_snapshot_by_name(&dom, snapshot, 0)
            .map_err(|e| map_err(e, &format!("look up {what}"), &what))?;
        snap.revert(0)
            .map_err(|e| map_err(e, &format!("revert to {what}"), &what))
    }

    fn snapshot_delete(&self, domain: &str, snapshot: &str) -> Result<()> {
        let what = format!("snapshot '{snapshot}' of domain '{domain}'");
        let dom = self.domain(domain)?;
        let snap = Domain::lookup_snapshot_by_name(&dom, snapshot, 0)
            .map_err(|e| map_err(e, &format!("look up {what}"), &what))?;
        snap.delete(0)
            .map_err(|e| map_err(e, &format!("delete {what}"), &what))
    }

    fn pool_list(&self) -> Result<Vec<PoolInfo>> {
        let pools = self
            .conn
            .list_all_storage_pools(0)
            .map_err(|e| map_err(e, "list storage pools", "storage pools"))?;
        let mut out = Vec::with_capacity(pools.len());
        for p in &pools {
            let read = || -> std::result::Result<PoolInfo, virt::error::Error> {
                let info = p.info()?;
                Ok(PoolInfo {
                    name: p.name()?,
                    active: p.is_active()?,
                    capacity: info.capacity,
                    allocation: info.allocation,
                    available: info.available,
                })
            };
            match read() {
                Ok(i) => out.push(i),
                Err(e) if code(&e) == sys::VIR_ERR_NO_STORAGE_POOL => {}
                Err(e) => return Err(map_err(e, "read storage pool info", "storage pool")),
            }
        }
        Ok(out)
    }

    fn pool_define_start(&self, pool_xml: &str) -> Result<String> {
        let pool = self
            .conn
            .define_storage_pool_xml(pool_xml, 0)
            .map_err(|e| map_err(e, "define storage pool", "storage pool"))?;
        let name = pool
            .name()
            .map_err(|e| map_err(e, "read the defined pool's name", "storage pool"))?;
        let what = format!("storage pool '{name}'");
        let started = match pool.build(0) {
            Ok(_) => Ok(()),
            // Pool types with nothing to build.
            Err(e) if is_unsupported(&e) => Ok(()),
            Err(e) => Err(map_err(e, &format!("build {what}"), &what)),
        }
        .and_then(|()| {
            pool.create(0)
                .map(drop)
                .map_err(|e| map_err(e, &format!("start {what}"), &what))
        });
        if let Err(err) = started {
            // Leave nothing behind: the definition goes again.
            if let Err(e) = pool.undefine() {
                log::warn!("cannot undefine {what} after a failed start: {}", msg(&e));
            }
            return Err(err);
        }
        Ok(name)
    }

    fn pool_refresh(&self, pool: &str) -> Result<()> {
        let what = format!("storage pool '{pool}'");
        self.pool(pool)?
            .refresh(0)
            .map(drop)
            .map_err(|e| map_err(e, &format!("refresh {what}"), &what))
    }

    fn pool_remove(&self, pool: &str) -> Result<()> {
        let what = format!("storage pool '{pool}'");
        let p = self.pool(pool)?;
        let active = p
            .is_active()
            .map_err(|e| map_err(e, &format!("read the state of {what}"), &what))?;
        if active {
            p.destroy()
                .map_err(|e| map_err(e, &format!("stop {what}"), &what))?;
        }
        p.undefine()
            .map_err(|e| map_err(e, &format!("undefine {what}"), &what))
    }

    fn volume_list(&self, pool: &str) -> Result<Vec<VolumeInfo>> {
        let what = format!("storage pool '{pool}'");
        let p = self.pool(pool)?;
        let vols = p
            .list_all_volumes(0)
            .map_err(|e| map_err(e, &format!("list volumes of {what}"), &what))?;
        let mut out = Vec::with_capacity(vols.len());
        for v in &vols {
            match volume_info(v) {
                Ok(i) => out.push(i),
                Err(e) if code(&e) == sys::VIR_ERR_NO_STORAGE_VOL => {}
                Err(e) => return Err(map_err(e, &format!("read a volume of {what}"), &what)),
            }
        }
        Ok(out)
    }

    fn volume_create(&self, pool: &str, volume_xml: &str) -> Result<VolumeInfo> {
        let what = format!("storage pool '{pool}'");
        let p = self.pool(pool)?;
        let vol = StorageVol::create_xml(&p, volume_xml, 0)
            .map_err(|e| map_err(e, &format!("create a volume in {what}"), &what))?;
        volume_info(&vol).map_err(|e| map_err(e, &format!("read the new volume in {what}"), &what))
    }

    fn volume_delete(&self, pool: &str, volume: &str) -> Result<()> {
        let what = format!("volume '{volume}' in storage pool '{pool}'");
        let p = self.pool(pool)?;
        cstring(volume, "volume name")?;
        let v = p
            .lookup_storage_vol_by_name(volume)
            .map_err(|e| map_err(e, &format!("look up {what}"), &what))?;
        v.delete(0)
            .map_err(|e| map_err(e, &format!("delete {what}"), &what))
    }

    fn agent_command(&self, domain: &str, command_json: &str, timeout_secs: i32) -> Result<String> {
        let what = format!("domain '{domain}'");
        let dom = self.domain(domain)?;
        cstring(command_json, "agent command")?;
        dom.qemu_agent_command(command_json, timeout_secs, 0)
            .map_err(|e| map_err(e, &format!("run a guest agent command on {what}"), &what))
    }

    fn choose_virt_type(&self) -> AccelChoice {
        let driver = self.conn.driver_type().unwrap_or_default();
        let caps = self.conn.capabilities().ok();
        let choice = accel::choose(&driver, self.remote_host(), caps.as_deref());
        match choice.virt_type {
            VirtType::Kvm => log::info!("using KVM: {}", choice.reason),
            VirtType::Qemu => log::info!("using TCG (type='qemu'): {}", choice.reason),
        }
        choice
    }
}

fn volume_info(v: &StorageVol) -> std::result::Result<VolumeInfo, virt::error::Error> {
    let info = v.info()?;
    Ok(VolumeInfo {
        name: v.name()?,
        path: v.path()?,
        capacity: info.capacity,
        allocation: info.allocation,
    })
}

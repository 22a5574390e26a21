//! Host and domain statistics through raw `virt::sys` calls the `virt` crate does not wrap:
//! `virNodeGetCPUStats`, `virNodeGetMemoryStats` and the records of
//! `virConnectGetAllDomainStats`.

use super::params::{Value, copy_params};
use super::{BlockStats, DomainStats, NetStats, NodeCpuStats, NodeMemoryStats};
use std::ffi::{CStr, c_int};
use std::ptr;
use virt::sys;

/// A `(field, value)` pair of `virNodeGetCPUStats` / `virNodeGetMemoryStats`.
fn field_name(field: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// All host CPUs' time counters (`VIR_NODE_CPU_STATS_ALL_CPUS`).
pub(super) fn node_cpu_stats(
    conn: &virt::connect::Connect,
) -> Result<NodeCpuStats, virt::error::Error> {
    let mut n: c_int = 0;
    // SAFETY: `conn` is an open connection (kept alive by the borrow); a null array with
    // `*nparams == 0` asks libvirt only for the number of fields.
    let rc = unsafe {
        sys::virNodeGetCPUStats(
            conn.as_ptr(),
            sys::VIR_NODE_CPU_STATS_ALL_CPUS,
            ptr::null_mut(),
            &mut n,
            0,
        )
    };
    if rc < 0 {
        return Err(virt::error::Error::last_error());
    }
    let mut buf: Vec<sys::virNodeCPUStats> = vec![
        sys::virNodeCPUStats {
            field: [0; 80],
            value: 0,
        };
        usize::try_from(n).unwrap_or(0)
    ];
    // SAFETY: `buf` holds exactly `n` elements and libvirt writes at most `n` of them (it
    // updates `n` to the number written).
    let rc = unsafe {
        sys::virNodeGetCPUStats(
            conn.as_ptr(),
            sys::VIR_NODE_CPU_STATS_ALL_CPUS,
            buf.as_mut_ptr(),
            &mut n,
            0,
        )
    };
    if rc < 0 {
        return Err(virt::error::Error::last_error());
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    let mut out = NodeCpuStats::default();
    for s in &buf {
        match field_name(&s.field).as_str() {
            "kernel" => out.kernel_ns = s.value,
            "user" => out.user_ns = s.value,
            "idle" => out.idle_ns = s.value,
            "iowait" => out.iowait_ns = s.value,
            _ => {}
        }
    }
    Ok(out)
}

/// All NUMA cells' memory (`VIR_NODE_MEMORY_STATS_ALL_CELLS`), KiB.
pub(super) fn node_memory_stats(
    conn: &virt::connect::Connect,
) -> Result<NodeMemoryStats, virt::error::Error> {
    let mut n: c_int = 0;
    // SAFETY: as in `node_cpu_stats`: open connection, null array asks for the field count.
    let rc = unsafe {
        sys::virNodeGetMemoryStats(
            conn.as_ptr(),
            sys::VIR_NODE_MEMORY_STATS_ALL_CELLS,
            ptr::null_mut(),
            &mut n,
            0,
        )
    };
    if rc < 0 {
        return Err(virt::error::Error::last_error());
    }
    let mut buf: Vec<sys::virNodeMemoryStats> = vec![
        sys::virNodeMemoryStats {
            field: [0; 80],
            value: 0,
        };
        usize::try_from(n).unwrap_or(0)
    ];
    // SAFETY: `buf` holds exactly `n` elements; libvirt writes at most `n` and updates `n`.
    let rc = unsafe {
        sys::virNodeGetMemoryStats(
            conn.as_ptr(),
            sys::VIR_NODE_MEMORY_STATS_ALL_CELLS,
            buf.as_mut_ptr(),
            &mut n,
            0,
        )
    };
    if rc < 0 {
        return Err(virt::error::Error::last_error());
    }
    buf.truncate(usize::try_from(n).unwrap_or(0));
    let mut out = NodeMemoryStats::default();
    for s in &buf {
        match field_name(&s.field).as_str() {
            "total" => out.total_kib = s.value,
            "free" => out.free_kib = s.value,
            "buffers" => out.buffers_kib = s.value,
            "cached" => out.cached_kib = s.value,
            _ => {}
        }
    }
    Ok(out)
}

/// The stats groups prae reads: state, CPU time, balloon, vCPUs, interfaces, block devices.
const STATS_GROUPS: u32 = sys::VIR_DOMAIN_STATS_STATE
    | sys::VIR_DOMAIN_STATS_CPU_TOTAL
    | sys::VIR_DOMAIN_STATS_BALLOON
    | sys::VIR_DOMAIN_STATS_VCPU
    | sys::VIR_DOMAIN_STATS_INTERFACE
    | sys::VIR_DOMAIN_STATS_BLOCK;

/// One record per domain from `virConnectGetAllDomainStats` (groups a driver does not support
/// are skipped, not an error). The record list is freed with `virDomainStatsRecordListFree`.
pub(super) fn all_domain_stats(
    conn: &virt::connect::Connect,
) -> Result<Vec<DomainStats>, virt::error::Error> {
    let mut records: *mut sys::virDomainStatsRecordPtr = ptr::null_mut();
    // SAFETY: `conn` is open; libvirt allocates a NULL-terminated record array into `records`.
    let n =
        unsafe { sys::virConnectGetAllDomainStats(conn.as_ptr(), STATS_GROUPS, &mut records, 0) };
    if n < 0 {
        return Err(virt::error::Error::last_error());
    }
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    if records.is_null() {
        return Ok(out);
    }
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: `records` has `n` non-null entries followed by a NULL terminator; each record
        // and its domain/params stay valid until the list is freed below.
        let (name, params) = unsafe {
            let rec = *records.add(i);
            if rec.is_null() {
                break;
            }
            let name_ptr = sys::virDomainGetName((*rec).dom);
            let name = if name_ptr.is_null() {
                String::new()
            } else {
                CStr::from_ptr(name_ptr).to_string_lossy().into_owned()
            };
            (name, copy_params((*rec).params, (*rec).nparams))
        };
        out.push(parse_domain_stats(name, &params));
    }
    // SAFETY: `records` came from `virConnectGetAllDomainStats` and is freed exactly once (this
    // also drops the domain references the records hold); nothing above kept a pointer into it.
    unsafe { sys::virDomainStatsRecordListFree(records) };
    Ok(out)
}

/// Turns one record's flat `(field, value)` list into [`DomainStats`]. Pure; unknown fields are
/// ignored. Balloon values are KiB, as libvirt reports them.
pub(super) fn parse_domain_stats(name: String, params: &[(String, Value)]) -> DomainStats {
    let mut s = DomainStats {
        name,
        ..DomainStats::default()
    };
    let mut blocks: Vec<BlockStats> = Vec::new();
    let mut nets: Vec<NetStats> = Vec::new();
    for (field, value) in params {
        let u = value.as_u64();
        match field.as_str() {
            "state.state" => {
                s.state = match value {
                    Value::Int(i) => i32::try_from(*i).ok(),
                    Value::UInt(u) => i32::try_from(*u).ok(),
                    _ => None,
                }
            }
            "cpu.time" => s.cpu_time_ns = u,
            "vcpu.current" => s.vcpu_current = u.and_then(|v| u32::try_from(v).ok()),
            "vcpu.maximum" => s.vcpu_maximum = u.and_then(|v| u32::try_from(v).ok()),
            "balloon.current" => s.balloon_current_kib = u,
            "balloon.maximum" => s.balloon_maximum_kib = u,
            "balloon.available" => s.balloon_available_kib = u,
            "balloon.unused" => s.balloon_unused_kib = u,
            "balloon.usable" => s.balloon_usable_kib = u,
            "balloon.rss" => s.balloon_rss_kib = u,
            f => {
                if let Some((idx, key)) = indexed(f, "block.") {
                    let b = slot(&mut blocks, idx);
                    match key {
                        "name" => b.name = value.as_str().unwrap_or_default().to_string(),
                        "rd.bytes" => b.rd_bytes = u.unwrap_or(0),
                        "wr.bytes" => b.wr_bytes = u.unwrap_or(0),
                        "rd.reqs" => b.rd_reqs = u.unwrap_or(0),
                        "wr.reqs" => b.wr_reqs = u.unwrap_or(0),
                        "capacity" => b.capacity = u,
                        "allocation" => b.allocation = u,
                        _ => {}
                    }
                } else if let Some((idx, key)) = indexed(f, "net.") {
                    let n = slot(&mut nets, idx);
                    match key {
                        "name" => n.name = value.as_str().unwrap_or_default().to_string(),
                        "rx.bytes" => n.rx_bytes = u.unwrap_or(0),
                        "tx.bytes" => n.tx_bytes = u.unwrap_or(0),
                        _ => {}
                    }
                }
            }
        }
    }
    s.blocks = blocks;
    s.nets = nets;
    s
}

/// `block.3.rd.bytes` with prefix `block.` -> `(3, "rd.bytes")`; `block.count` -> `None`.
fn indexed<'a>(field: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = field.strip_prefix(prefix)?;
    let (idx, key) = rest.split_once('.')?;
    // An index beyond any real device count is a malformed record, not an allocation request.
    let idx: usize = idx.parse().ok().filter(|&i| i < 4096)?;
    Some((idx, key))
}

fn slot<T: Default>(v: &mut Vec<T>, idx: usize) -> &mut T {
    if v.len() <= idx {
        v.resize_with(idx + 1, T::default);
    }
    &mut v[idx]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, v: Value) -> (String, Value) {
        (name.to_string(), v)
    }

    #[test]
    fn parses_a_qemu_record() {
        let params = vec![
            p("state.state", Value::Int(1)),
            p("state.reason", Value::Int(1)),
            p("cpu.time", Value::UInt(123_456)),
            p("balloon.current", Value::UInt(65536)),
            p("balloon.maximum", Value::UInt(65536)),
            p("balloon.rss", Value::UInt(40000)),
            p("vcpu.current", Value::UInt(2)),
            p("vcpu.maximum", Value::UInt(4)),
            p("vcpu.0.state", Value::Int(1)),
            p("net.count", Value::UInt(1)),
            p("net.0.name", Value::Str("vnet0".into())),
            p("net.0.rx.bytes", Value::UInt(10)),
            p("net.0.tx.bytes", Value::UInt(20)),
            p("block.count", Value::UInt(2)),
            p("block.1.name", Value::Str("vdb".into())),
            p("block.1.wr.bytes", Value::UInt(4096)),
            p("block.0.name", Value::Str("vda".into())),
            p("block.0.rd.bytes", Value::UInt(512)),
            p("block.0.capacity", Value::UInt(1 << 30)),
        ];
        let s = parse_domain_stats("g".into(), &params);
        assert_eq!(s.state, Some(1));
        assert_eq!(s.cpu_time_ns, Some(123_456));
        assert_eq!(s.balloon_rss_kib, Some(40000));
        assert_eq!(s.balloon_usable_kib, None);
        assert_eq!((s.vcpu_current, s.vcpu_maximum), (Some(2), Some(4)));
        assert_eq!(s.nets.len(), 1);
        assert_eq!(
            (
                s.nets[0].name.as_str(),
                s.nets[0].rx_bytes,
                s.nets[0].tx_bytes
            ),
            ("vnet0", 10, 20)
        );
        assert_eq!(s.blocks.len(), 2);
        assert_eq!(s.blocks[0].name, "vda");
        assert_eq!(s.blocks[0].rd_bytes, 512);
        assert_eq!(s.blocks[0].capacity, Some(1 << 30));
        assert_eq!(s.blocks[1].name, "vdb");
        assert_eq!(s.blocks[1].wr_bytes, 4096);
    }

    #[test]
    fn absurd_index_is_ignored() {
        let s = parse_domain_stats(
            "g".into(),
            &[p("block.99999999999.rd.bytes", Value::UInt(1))],
        );
        assert!(s.blocks.is_empty());
    }
}

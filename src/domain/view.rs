//! Finding a domain's resource elements in the index, and reading their values.

use super::xml::Doc;
use super::{DiskView, DomainView, InterfaceView, PRAE_NS};
use crate::model::{Bandwidth, BandwidthLimit, IoTune};
use crate::{Error, Result};
use std::borrow::Cow;

/// Where the resource elements of a domain are (element indices into [`Doc::elems`]).
#[derive(Debug, Default)]
pub(crate) struct Layout<'a> {
    pub domain_type: Cow<'a, str>,
    pub arch: Option<Cow<'a, str>>,
    pub machine: Option<Cow<'a, str>>,
    pub name: Option<usize>,
    /// The last of `<name>`, `<uuid>`, `<genid>`, `<title>`, `<description>`.
    pub last_id: Option<usize>,
    pub vcpu: Option<usize>,
    pub vcpus_list: Option<usize>,
    pub memory: Option<usize>,
    pub current_memory: Option<usize>,
    pub max_memory: Option<usize>,
    pub topology: Option<usize>,
    pub numa_cells: Vec<usize>,
    /// Highest vCPU id some element refers to (pinning, scheduling, NUMA), plus one.
    pub vcpu_ids_needed: u32,
    pub hugepage_kib: Option<u64>,
    pub devices: Option<usize>,
    pub disks: Vec<usize>,
    pub interfaces: Vec<usize>,
    pub mem_devices: Vec<usize>,
    pub metadata: Option<usize>,
    /// prae's own child of `<metadata>`.
    pub prae: Option<usize>,
    /// Indentation step of the document (the root's first child's indent), default two spaces.
    pub unit: &'a str,
}

/// A domain's vCPU counts and memory sizes, as [`Layout::check`] read them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values {
    pub max_vcpus: u32,
    pub vcpus: u32,
    pub memory_kib: u64,
    pub current_memory_kib: Option<u64>,
}

fn bad(what: &str, value: &str) -> Error {
    Error::NotADomain(format!("{what} '{value}' is not valid"))
}

/// Highest id in a libvirt cpuset string such as `0-3,^2,8`, if any.
pub(crate) fn cpuset_max(s: &str) -> Option<u32> {
    let mut max = None;
    for part in s.split(',') {
        let p = part.trim();
        if p.is_empty() || p.starts_with('^') {
            continue;
        }
        let hi = p.rsplit('-').next()?.trim().parse::<u32>().ok()?;
        max = Some(max.map_or(hi, |m: u32| m.max(hi)));
    }
    max
}

/// Bytes per libvirt unit; the common spellings without allocating, the rest via `units`.
pub(crate) fn unit_scale(unit: Option<&str>) -> Result<u64> {
    const K: u64 = 1024;
    Ok(match unit {
        None | Some("KiB" | "k" | "K" | "kib") => K,
        Some("MiB" | "M" | "m" | "mib") => K * K,
        Some("GiB" | "G" | "g" | "gib") => K * K * K,
        Some("TiB" | "T" | "t") => K * K * K * K,
        Some("b" | "B" | "bytes") => 1,
        Some("KB" | "kB") => 1000,
        Some("MB") => 1_000_000,
        Some("GB") => 1_000_000_000,
        Some(u) => crate::units::unit_bytes(u).map_err(|e| Error::NotADomain(e.to_string()))?,
    })
}

fn kib_of(n: u64, unit: Option<&str>, what: &str) -> Result<u64> {
    let scale = unit_scale(unit).map_err(|e| Error::NotADomain(format!("{what}: {e}")))?;
    let bytes = n.checked_mul(scale).ok_or_else(|| {
        Error::NotADomain(format!("{what} {n} {} overflows", unit.unwrap_or("KiB")))
    })?;
    Ok(bytes.div_ceil(1024))
}

/// A `scaledInteger` element's value in KiB (libvirt rounds up to whole KiB).
pub(crate) fn scaled_kib(doc: &Doc, i: usize, what: &str) -> Result<u64> {
    let text = doc.text(i).ok_or_else(|| bad(what, doc.outer(i)))?;
    let v: u64 = text.trim().parse().map_err(|_| bad(what, text.trim()))?;
    kib_of(v, doc.attr(i, "unit").as_deref(), what)
}

/// A size in an attribute (`memory='..' unit='..'`, `size='..' unit='..'`), in KiB.
pub(crate) fn attr_kib(doc: &Doc, i: usize, key: &str, what: &str) -> Result<Option<u64>> {
    let Some(v) = doc.attr(i, key) else {
        return Ok(None);
    };
    let n: u64 = v.trim().parse().map_err(|_| bad(what, &v))?;
    kib_of(n, doc.attr(i, "unit").as_deref(), what).map(Some)
}

fn is_prae(doc: &Doc, i: usize) -> bool {
    let name = doc.name(i);
    let prefix = name.split_once(':').map(|(p, _)| p);
    let tag = doc.open_tag(i);
    super::xml::scan_attrs(tag, name.len()).any(|a| {
        let key = &tag[a.key.clone()];
        let ns = &tag[a.val.clone()];
        ns == PRAE_NS
            && match prefix {
                Some(p) => key.strip_prefix("xmlns:") == Some(p),
                None => key == "xmlns",
            }
    })
}

impl<'a> Layout<'a> {
    pub fn find(doc: &Doc<'a>) -> Result<Layout<'a>> {
        let root = doc.root;
        if doc.name(root) != "domain" {
            return Err(Error::NotADomain(format!(
                "the root element is <{}>, not <domain>",
                doc.name(root)
            )));
        }
        let mut l = Layout {
            domain_type: doc.attr(root, "type").unwrap_or_default(),
            unit: "  ",
            ..Layout::default()
        };
        if let Some(first) = doc.children(root).next() {
            let ind = doc.indent_of(doc.el(first).start);
            if !ind.is_empty() {
                l.unit = ind;
            }
        }
        let mut need = 0u32;
        let mut note = |s: Option<std::borrow::Cow<str>>| {
            if let Some(m) = s.as_deref().and_then(cpuset_max) {
                need = need.max(m.saturating_add(1));
            }
        };
        for c in doc.children(root) {
            match doc.name(c) {
                "name" => {
                    l.name.get_or_insert(c);
                    l.last_id = Some(c);
                }
                "uuid" | "genid" | "title" | "description" => l.last_id = Some(c),
                "vcpu" => {
                    l.vcpu.get_or_insert(c);
                }
                "vcpus" => l.vcpus_list = Some(c),
                "memory" => {
                    l.memory.get_or_insert(c);
                }
                "currentMemory" => {
                    l.current_memory.get_or_insert(c);
                }
                "maxMemory" => {
                    l.max_memory.get_or_insert(c);
                }
                "metadata" => {
                    l.metadata.get_or_insert(c);
                    if l.prae.is_none() {
                        l.prae = doc.children(c).find(|&m| is_prae(doc, m));
                    }
                }
                "os" => {
                    if let Some(t) = doc.child(c, "type") {
                        l.arch = doc.attr(t, "arch");
                        l.machine = doc.attr(t, "machine");
                    }
                }
                "cpu" => {
                    l.topology = doc.child(c, "topology");
                    if let Some(numa) = doc.child(c, "numa") {
                        for cell in doc.children(numa).filter(|&x| doc.name(x) == "cell") {
                            note(doc.attr(cell, "cpus"));
                            l.numa_cells.push(cell);
                        }
                    }
                }
                "cputune" => {
                    for t in doc.children(c) {
                        match doc.name(t) {
                            "vcpupin" => note(doc.attr(t, "vcpu")),
                            "vcpusched" | "cachetune" | "memorytune" => note(doc.attr(t, "vcpus")),
                            _ => {}
                        }
                    }
                }
                "memoryBacking" => {
                    if let Some(hp) = doc.child(c, "hugepages") {
                        let mut kib = 0;
                        for p in doc.children(hp).filter(|&x| doc.name(x) == "page") {
                            kib = kib.max(attr_kib(doc, p, "size", "hugepage size")?.unwrap_or(0));
                        }
                        // Without explicit pages QEMU uses the host's default (2 MiB on x86).
                        l.hugepage_kib = Some(if kib == 0 { 2048 } else { kib });
                    }
                }
                "devices" => {
                    l.devices.get_or_insert(c);
                    for d in doc.children(c) {
                        match doc.name(d) {
                            "disk" => l.disks.push(d),
                            "interface" => l.interfaces.push(d),
                            "memory" => l.mem_devices.push(d),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        l.vcpu_ids_needed = need;
        if l.name.is_none() {
            return Err(Error::NotADomain("the domain has no <name>".into()));
        }
        Ok(l)
    }

    pub fn is_qemu(&self) -> bool {
        matches!(self.domain_type.as_ref(), "qemu" | "kvm")
    }

    /// (maximum, current) vCPUs.
    pub fn vcpus(&self, doc: &Doc) -> Result<(u32, u32)> {
        let Some(v) = self.vcpu else {
            return Ok((1, 1));
        };
        let text = doc.text(v).ok_or_else(|| bad("vcpu", doc.outer(v)))?;
        let max: u32 = text.trim().parse().map_err(|_| bad("vcpu", text.trim()))?;
        let cur = match doc.attr(v, "current") {
            Some(c) => c.trim().parse().map_err(|_| bad("vcpu current", &c))?,
            None => max,
        };
        Ok((max, cur))
    }

    pub fn memory_kib(&self, doc: &Doc) -> Result<u64> {
        match self.memory {
            Some(m) => scaled_kib(doc, m, "memory"),
            None => {
                let mut total = 0u64;
                for &c in &self.numa_cells {
                    total = total.saturating_add(
                        attr_kib(doc, c, "memory", "NUMA cell memory")?.unwrap_or(0),
                    );
                }
                if total == 0 {
                    return Err(Error::NotADomain(
                        "the domain has neither <memory> nor NUMA cell sizes".into(),
                    ));
                }
                Ok(total)
            }
        }
    }

    /// Rejects unparsable counts and sizes (the ones libvirt itself would refuse to read);
    /// returns the counts and sizes a rewrite starts from.
    pub fn check(&self, doc: &Doc) -> Result<Values> {
        let (max_vcpus, vcpus) = self.vcpus(doc)?;
        let memory_kib = self.memory_kib(doc)?;
        let current_memory_kib = self.current_memory_kib(doc)?;
        for &c in &self.numa_cells {
            attr_kib(doc, c, "memory", "NUMA cell memory")?;
        }
        if let Some(m) = self.max_memory {
            scaled_kib(doc, m, "maxMemory")?;
        }
        Ok(Values {
            max_vcpus,
            vcpus,
            memory_kib,
            current_memory_kib,
        })
    }

    pub fn current_memory_kib(&self, doc: &Doc) -> Result<Option<u64>> {
        self.current_memory
            .map(|c| scaled_kib(doc, c, "currentMemory"))
            .transpose()
    }
}

/// `<target bus>`, or the bus libvirt derives from the dev name's prefix.
pub(crate) fn disk_bus<'a>(doc: &Doc<'a>, disk: usize) -> Option<Cow<'a, str>> {
    let t = doc.child(disk, "target")?;
    if let Some(b) = doc.attr(t, "bus") {
        return Some(b);
    }
    let dev = doc.attr(t, "dev")?;
    let bus = if dev.starts_with("hd") {
        "ide"
    } else if dev.starts_with("sd") {
        "scsi"
    } else if dev.starts_with("vd") {
        "virtio"
    } else if dev.starts_with("xvd") {
        "xen"
    } else if dev.starts_with("fd") {
        "fdc"
    } else if dev.starts_with("ubd") {
        "uml"
    } else {
        return None;
    };
    Some(Cow::Borrowed(bus))
}

pub(crate) const IOTUNE_KEYS: [&str; 6] = [
    "total_bytes_sec",
    "read_bytes_sec",
    "write_bytes_sec",
    "total_iops_sec",
    "read_iops_sec",
    "write_iops_sec",
];

pub(crate) fn iotune_get(io: &IoTune, k: usize) -> Option<u64> {
    [
        io.total_bytes_sec,
        io.read_bytes_sec,
        io.write_bytes_sec,
        io.total_iops_sec,
        io.read_iops_sec,
        io.write_iops_sec,
    ][k]
}

pub(crate) fn iotune_set(io: &mut IoTune, k: usize, v: Option<u64>) {
    let slot = match k {
        0 => &mut io.total_bytes_sec,
        1 => &mut io.read_bytes_sec,
        2 => &mut io.write_bytes_sec,
        3 => &mut io.total_iops_sec,
        4 => &mut io.read_iops_sec,
        _ => &mut io.write_iops_sec,
    };
    *slot = v;
}

/// The prae-controlled limits of an `<iotune>` element.
pub(crate) fn read_iotune(doc: &Doc, io: usize) -> Result<IoTune> {
    let mut t = IoTune::default();
    for c in doc.children(io) {
        if let Some(k) = IOTUNE_KEYS.iter().position(|&k| k == doc.name(c)) {
            let text = doc.text(c).unwrap_or_default();
            let v: u64 = text
                .trim()
                .parse()
                .map_err(|_| bad(IOTUNE_KEYS[k], &text))?;
            iotune_set(&mut t, k, Some(v));
        }
    }
    Ok(t)
}

fn read_limit(doc: &Doc, i: usize) -> Result<Option<BandwidthLimit>> {
    let num = |k: &str| -> Result<Option<u64>> {
        doc.attr(i, k)
            .map(|v| v.trim().parse::<u64>().map_err(|_| bad(k, &v)))
            .transpose()
    };
    Ok(num("average")?.map(|average| BandwidthLimit {
        average,
        peak: num("peak").ok().flatten(),
        burst: num("burst").ok().flatten(),
    }))
}

pub(crate) fn read_bandwidth(doc: &Doc, bw: usize) -> Result<Bandwidth> {
    let mut b = Bandwidth::default();
    for c in doc.children(bw) {
        match doc.name(c) {
            "inbound" => b.inbound = read_limit(doc, c)?,
            "outbound" => b.outbound = read_limit(doc, c)?,
            _ => {}
        }
    }
    Ok(b)
}

pub(crate) fn view(doc: &Doc, l: &Layout) -> Result<DomainView> {
    l.check(doc)?;
    let (max_vcpus, vcpus) = l.vcpus(doc)?;
    let mut v = DomainView {
        name: l
            .name
            .and_then(|n| doc.text(n))
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        domain_type: l.domain_type.to_string(),
        arch: l.arch.as_deref().map(str::to_string),
        max_vcpus,
        vcpus,
        memory_kib: l.memory_kib(doc)?,
        current_memory_kib: l.current_memory_kib(doc)?,
        disks: Vec::with_capacity(l.disks.len()),
        interfaces: Vec::with_capacity(l.interfaces.len()),
        rewritten_by_prae: l.prae.is_some(),
    };
    for &d in &l.disks {
        let t = doc.child(d, "target");
        let rotation_rate = match t.and_then(|t| doc.attr(t, "rotation_rate")) {
            Some(r) => Some(r.trim().parse().map_err(|_| bad("rotation_rate", &r))?),
            None => None,
        };
        v.disks.push(DiskView {
            device: doc.attr(d, "device").unwrap_or("disk".into()).into_owned(),
            target: t
                .and_then(|t| doc.attr(t, "dev"))
                .unwrap_or_default()
                .into_owned(),
            bus: disk_bus(doc, d).map(Cow::into_owned),
            rotation_rate,
            iotune: doc
                .child(d, "iotune")
                .map(|io| read_iotune(doc, io))
                .transpose()?,
        });
    }
    for &i in &l.interfaces {
        v.interfaces.push(InterfaceView {
            kind: doc.attr(i, "type").unwrap_or_default().into_owned(),
            mac: doc
                .child(i, "mac")
                .and_then(|m| doc.attr(m, "address"))
                .map(|s| s.into_owned()),
            target: doc
                .child(i, "target")
                .and_then(|m| doc.attr(m, "dev"))
                .map(|s| s.into_owned()),
            bandwidth: doc
                .child(i, "bandwidth")
                .map(|b| read_bandwidth(doc, b))
                .transpose()?,
        });
    }
    Ok(v)
}

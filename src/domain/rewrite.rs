//! Applying a profile: decide each change, then express it as byte-span edits.

use super::view::{
    IOTUNE_KEYS, Layout, Values, attr_kib, iotune_get, read_bandwidth, read_iotune, scaled_kib,
};
use super::xml::{Doc, Edits, Gen, edit_tag_into, short_eq};
use super::{Change, ShortText, Skipped};
use crate::Result;
use crate::model::{Bandwidth, BandwidthLimit, DiskBus, IoTune, ResourceProfile};
use std::borrow::Cow;

/// Which element a record is about, written as a path (`vcpu`, `devices/disk[0]`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum At {
    Vcpu,
    Memory,
    CurrentMemory,
    Topology,
    NumaCell(usize),
    Disk(usize),
    Interface(usize),
    /// A path this version does not know (left alone on revert).
    Other(String),
}

impl At {
    const INDEXED: [&'static str; 3] = ["cpu/numa/cell[", "devices/disk[", "devices/interface["];

    pub fn parse(s: &str) -> At {
        match s {
            "vcpu" => return At::Vcpu,
            "memory" => return At::Memory,
            "currentMemory" => return At::CurrentMemory,
            "cpu/topology" => return At::Topology,
            _ => {}
        }
        for (k, prefix) in Self::INDEXED.iter().enumerate() {
            if let Some(i) = s
                .strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
            {
                return [At::NumaCell, At::Disk, At::Interface][k](i);
            }
        }
        At::Other(s.to_string())
    }

    /// Appends the path.
    pub fn push_to(&self, out: &mut String) {
        let (prefix, i) = match self {
            At::Vcpu => return out.push_str("vcpu"),
            At::Memory => return out.push_str("memory"),
            At::CurrentMemory => return out.push_str("currentMemory"),
            At::Topology => return out.push_str("cpu/topology"),
            At::Other(s) => return super::xml::push_escaped(out, s, true),
            At::NumaCell(i) => (Self::INDEXED[0], i),
            At::Disk(i) => (Self::INDEXED[1], i),
            At::Interface(i) => (Self::INDEXED[2], i),
        };
        out.push_str(prefix);
        push_u64(out, *i as u64);
        out.push(']');
    }
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Other(s) => f.write_str(s),
            _ => {
                let mut s = String::with_capacity(24);
                self.push_to(&mut s);
                f.write_str(&s)
            }
        }
    }
}

/// The original bytes of one element prae replaced (`None`: prae inserted it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub at: At,
    pub original: Option<Cow<'a, str>>,
}

pub(crate) struct Plan<'d, 'a> {
    pub doc: &'d Doc<'a>,
    pub l: &'d Layout<'a>,
    pub edits: Edits,
    pub records: Vec<Record<'a>>,
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
    /// Whether the document is indented (new elements go on their own lines).
    pub pretty: bool,
    /// The domain's counts and sizes before the rewrite.
    v: Values,
    /// The profile's disk limits as change records show them (the same for every disk).
    iotune_text: Option<ShortText>,
}

fn change(
    what: impl Into<ShortText>,
    from: impl Into<ShortText>,
    to: impl Into<ShortText>,
) -> Change {
    Change {
        what: what.into(),
        from: from.into(),
        to: to.into(),
    }
}

/// `disk <dev> <what>`, inline when short.
fn disk_what(dev: &str, what: &str) -> ShortText {
    ShortText::concat(&["disk ", dev, " ", what])
}

/// `kib` written in `unit` when that is exact.
fn in_unit(kib: u64, unit: &str) -> Option<u64> {
    let ub = super::view::unit_scale(Some(unit)).ok()?;
    let bytes = kib.checked_mul(1024)?;
    (bytes % ub == 0).then_some(bytes / ub)
}

/// The number and unit attribute to write for `kib`, keeping the element's unit when exact.
fn value_and_unit(old_unit: Option<&str>, kib: u64) -> (u64, Option<&str>) {
    match old_unit {
        None => (kib, None),
        Some(u) => match in_unit(kib, u) {
            Some(v) => (v, Some(u)),
            None => (kib, Some("KiB")),
        },
    }
}

fn round_up(v: u64, g: u64) -> u64 {
    if g <= 1 {
        v
    } else {
        v.div_ceil(g).saturating_mul(g)
    }
}

/// Appends libvirt's disk name suffix for an index: 0 -> a, 25 -> z, 26 -> aa.
fn push_disk_suffix(out: &mut String, mut i: usize) {
    let mut s = [0u8; 16];
    let mut n = 0;
    loop {
        s[n] = b'a' + (i % 26) as u8;
        n += 1;
        if i < 26 || n == s.len() {
            break;
        }
        i = i / 26 - 1;
    }
    for &c in s[..n].iter().rev() {
        out.push(char::from(c));
    }
}

fn fmt_iotune(io: &IoTune) -> ShortText {
    if (0..IOTUNE_KEYS.len()).all(|k| iotune_get(io, k).is_none()) {
        return ShortText::from("none");
    }
    let mut s = String::with_capacity(64);
    for (k, key) in IOTUNE_KEYS.iter().enumerate() {
        if let Some(v) = iotune_get(io, k) {
            if !s.is_empty() {
                s.push(',');
            }
            s.push_str(key);
            s.push('=');
            push_u64(&mut s, v);
        }
    }
    s.into()
}

/// Appends a number's decimal digits (no formatter machinery on the hot path).
pub(crate) fn push_u64(out: &mut String, mut v: u64) {
    let mut d = [0u8; 20];
    let mut n = 0;
    loop {
        d[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &c in d[..n].iter().rev() {
        out.push(char::from(c));
    }
}

fn num(v: u64) -> ShortText {
    ShortText::number(v, "")
}

/// Sizes as operators read them (`512MiB`, `3GiB`, `1536KiB`), like `units::format_kib`.
fn kib_str(kib: u64) -> ShortText {
    if kib != 0 && kib.is_multiple_of(1024 * 1024) {
        ShortText::number(kib / (1024 * 1024), "GiB")
    } else if kib != 0 && kib.is_multiple_of(1024) {
        ShortText::number(kib / 1024, "MiB")
    } else {
        ShortText::number(kib, "KiB")
    }
}

fn fmt_limit(l: &Option<BandwidthLimit>) -> String {
    match l {
        None => "none".into(),
        Some(l) => {
            let mut s = l.average.to_string();
            if let Some(p) = l.peak {
                s.push_str(&format!("/peak {p}"));
            }
            if let Some(b) = l.burst {
                s.push_str(&format!("/burst {b}"));
            }
            s
        }
    }
}

fn fmt_bandwidth(b: &Bandwidth) -> String {
    format!(
        "in {} out {}",
        fmt_limit(&b.inbound),
        fmt_limit(&b.outbound)
    )
}

/// The controller family whose drive addresses a bus uses (`None`: PCI-addressed, like virtio).
fn drive_family(bus: &str) -> Option<&'static str> {
    match bus {
        "scsi" => Some("scsi"),
        "sata" => Some("sata"),
        "ide" => Some("ide"),
        _ => None,
    }
}

/// libvirt's disk index of a dev name (`sda` -> 0, `sdaa` -> 26), as `virDiskNameToIndex`.
fn disk_index(dev: &str) -> Option<u32> {
    let letters = dev
        .strip_prefix("xvd")
        .or_else(|| dev.strip_prefix("ubd"))
        .or_else(|| dev.get(2..))?;
    let mut idx: u32 = 0;
    let mut n = 0;
    for c in letters.bytes().take_while(u8::is_ascii_lowercase) {
        idx = if n == 0 {
            0
        } else {
            idx.checked_add(1)?.checked_mul(26)?
        };
        idx = idx.checked_add(u32::from(c - b'a'))?;
        n += 1;
    }
    (n > 0).then_some(idx)
}

/// The drive addresses libvirt may derive from a disk index on a bus family (SCSI has a narrow
/// and a wide mapping, depending on the controller).
fn derived_addresses(family: &str, idx: u32) -> [[u32; 4]; 2] {
    match family {
        "sata" => [[idx / 6, 0, 0, idx % 6]; 2],
        "ide" => [[idx / 4, (idx % 4) / 2, 0, idx % 2]; 2],
        _ => {
            let wide = idx % 15;
            [
                [idx / 7, 0, 0, idx % 7],
                [idx / 15, 0, 0, if wide >= 7 { wide + 1 } else { wide }],
            ]
        }
    }
}

/// An explicit `<address type='drive'>` as (controller, bus, target, unit).
fn drive_address(doc: &Doc, a: usize) -> [u32; 4] {
    let n = |k: &str| {
        doc.attr(a, k)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0)
    };
    [n("controller"), n("bus"), n("target"), n("unit")]
}

/// The first child of each name a disk's rewrite looks at, found in one pass.
#[derive(Debug, Default, Clone, Copy)]
struct Kids {
    target: Option<usize>,
    address: Option<usize>,
    driver: Option<usize>,
    iotune: Option<usize>,
    throttlefilters: Option<usize>,
    vendor: Option<usize>,
    product: Option<usize>,
    wwn: Option<usize>,
    readonly: Option<usize>,
    acpi: Option<usize>,
    geometry: Option<usize>,
    transient: Option<usize>,
}

impl Kids {
    fn of(doc: &Doc, d: usize) -> Kids {
        let mut k = Kids::default();
        for c in doc.children(d) {
            let slot = match doc.name(c) {
                "target" => &mut k.target,
                "address" => &mut k.address,
                "driver" => &mut k.driver,
                "iotune" => &mut k.iotune,
                "throttlefilters" => &mut k.throttlefilters,
                "vendor" => &mut k.vendor,
                "product" => &mut k.product,
                "wwn" => &mut k.wwn,
                "readonly" => &mut k.readonly,
                "acpi" => &mut k.acpi,
                "geometry" => &mut k.geometry,
                "transient" => &mut k.transient,
                _ => continue,
            };
            slot.get_or_insert(c);
        }
        k
    }
}

/// One disk as the rewrite sees it.
struct Disk<'a> {
    el: usize,
    kids: Kids,
    device: Cow<'a, str>,
    bus: Option<Cow<'a, str>>,
    dev: Option<Cow<'a, str>>,
    /// The bus it moves to, or why it may not.
    mv: std::result::Result<Option<DiskBus>, String>,
}

/// `<target bus>`, or the bus libvirt derives from the dev name's prefix (as `disk_bus`).
fn target_bus<'a>(doc: &Doc<'a>, target: Option<usize>) -> Option<Cow<'a, str>> {
    let t = target?;
    if let Some(b) = doc.attr(t, "bus") {
        return Some(b);
    }
    let dev = doc.attr(t, "dev")?;
    let bus = [
        ("hd", "ide"),
        ("sd", "scsi"),
        ("vd", "virtio"),
        ("xvd", "xen"),
        ("fd", "fdc"),
        ("ubd", "uml"),
    ]
    .iter()
    .find(|(p, _)| dev.starts_with(p))?
    .1;
    Some(Cow::Borrowed(bus))
}

const VIRTIO_DRIVER_ATTRS: [&str; 9] = [
    "queues",
    "queue_size",
    "packed",
    "iothread",
    "page_per_vq",
    "ats",
    "iommu",
    "event_idx",
    "ioeventfd",
];

impl<'d, 'a> Plan<'d, 'a> {
    pub fn new(doc: &'d Doc<'a>, l: &'d Layout<'a>, v: Values) -> Self {
        let pretty = doc.children(doc.root).next().is_some_and(|c| {
            doc.src[doc.ws_before(doc.el(c).start)..doc.el(c).start].contains('\n')
        });
        // Room for the usual edits and the metadata (which quotes the replaced elements).
        let n = 8 + 4 * l.disks.len() + 2 * l.interfaces.len();
        Plan {
            doc,
            l,
            edits: Edits::with_capacity(n, 1024 + doc.src.len()),
            records: Vec::with_capacity(n),
            changes: Vec::with_capacity(n),
            skipped: Vec::new(),
            pretty,
            v,
            iotune_text: None,
        }
    }

    fn skip(&mut self, what: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Skipped {
            what: what.into(),
            reason: reason.into(),
        });
    }

    fn record(&mut self, at: At, el: Option<usize>) {
        self.records.push(Record {
            at,
            original: el.map(|e| Cow::Borrowed(self.doc.outer(e))),
        });
    }

    fn replace(&mut self, start: usize, end: usize, text: &str) {
        self.edits.replace(start, end, text);
    }

    /// Removes an element and the whitespace before it.
    fn remove(&mut self, el: usize) {
        let e = *self.doc.el(el);
        self.replace(self.doc.ws_before(e.start), e.end, "");
    }

    /// Inserts `text` (an element) after `sibling`, on its own line like the sibling.
    fn insert_after(&mut self, sibling: usize, text: &str) {
        let at = self.doc.el(sibling).end;
        let m = self.edits.mark();
        self.edits.buf.push_str(self.doc.sep_before(sibling));
        self.edits.buf.push_str(text);
        self.edits.commit(at, at, m);
    }

    /// Replaces the start tag of `el` with its attributes edited (see [`edit_tag_into`]).
    fn edit_start_tag(&mut self, el: usize, sets: &[(&str, Option<&str>)]) {
        let e = *self.doc.el(el);
        let m = self.edits.mark();
        edit_tag_into(
            &mut self.edits.buf,
            self.doc.open_tag(el),
            e.name_len as usize,
            sets,
        );
        self.edits.commit(e.start, e.open_end, m);
    }

    /// Replaces `<name ...>value</name>` with a new KiB value, keeping its unit when exact.
    fn replace_scaled(&mut self, el: usize, kib: u64) {
        let doc = self.doc;
        let e = *doc.el(el);
        let unit = doc.attr(el, "unit");
        let (v, u) = value_and_unit(unit.as_deref(), kib);
        let m = self.edits.mark();
        let buf = &mut self.edits.buf;
        if u == unit.as_deref() {
            buf.push_str(doc.open_tag(el));
        } else {
            edit_tag_into(buf, doc.open_tag(el), e.name_len as usize, &[("unit", u)]);
        }
        push_u64(buf, v);
        buf.push_str(&doc.src[e.close_start..e.end]);
        self.edits.commit(e.start, e.end, m);
    }

    pub fn vcpus(&mut self, prof: &ResourceProfile) -> Result<()> {
        let (old_max, old_cur) = (self.v.max_vcpus, self.v.vcpus);
        let (mut cur, mut max) = match (prof.vcpus, prof.max_vcpus) {
            (None, None) => return Ok(()),
            (Some(c), Some(m)) => (c, m.max(c)),
            (Some(c), None) => (c, old_max.max(c)),
            (None, Some(m)) => (old_cur.min(m), m),
        };
        if max == old_max && cur == old_cur {
            return Ok(());
        }
        // QEMU's x86 machines: isapc has one CPU; more than 255 needs an interrupt-remapping
        // IOMMU, which prae does not add (a domain already above 255 keeps its maximum).
        let x86 = matches!(self.l.arch.as_deref(), None | Some("x86_64" | "i686"));
        if self.l.is_qemu() && x86 {
            let isapc = self
                .l
                .machine
                .as_deref()
                .is_some_and(|m| m.contains("isapc"));
            let cap = if isapc { 1 } else { old_max.max(255) };
            if max > cap {
                self.skip(
                    "vcpu",
                    [
                        "maximum capped at ",
                        &num(cap.into()),
                        " for this x86 machine",
                    ]
                    .concat(),
                );
                max = cap;
                cur = cur.min(max);
            }
        }
        if self.l.vcpus_list.is_some() {
            self.skip(
                "vcpu",
                "the domain lists per-vCPU state in <vcpus>; prae leaves its vCPU counts alone",
            );
            return Ok(());
        }
        if !self.l.numa_cells.is_empty() && max != old_max {
            self.skip(
                "vcpu",
                format!("maximum stays {old_max}: NUMA cells assign the vCPU ids"),
            );
            max = old_max;
            cur = cur.min(max);
        } else if max < self.l.vcpu_ids_needed {
            let need = self.l.vcpu_ids_needed;
            self.skip(
                "vcpu",
                format!(
                    "maximum stays {need}, not {max}: vCPU ids up to {} are pinned or scheduled",
                    need - 1
                ),
            );
            max = need;
            cur = cur.min(max);
        }
        if max == old_max && cur == old_cur {
            return Ok(());
        }
        if max != old_max {
            self.changes
                .push(change("vcpu", num(old_max.into()), num(max.into())));
        }
        if cur != old_cur {
            self.changes
                .push(change("vcpu current", num(old_cur.into()), num(cur.into())));
        }
        let doc = self.doc;
        match self.l.vcpu {
            Some(v) => {
                self.record(At::Vcpu, Some(v));
                let e = *doc.el(v);
                let had = doc.attr(v, "current").is_some();
                let cur_s = num(cur.into());
                let cur_attr = (cur != max || had).then_some(cur_s.as_str());
                let m = self.edits.mark();
                let buf = &mut self.edits.buf;
                edit_tag_into(
                    buf,
                    doc.open_tag(v),
                    e.name_len as usize,
                    &[("current", cur_attr)],
                );
                push_u64(buf, max.into());
                buf.push_str(&doc.src[e.close_start..e.end]);
                self.edits.commit(e.start, e.end, m);
            }
            None => {
                self.record(At::Vcpu, None);
                let mut g = Gen::new();
                let cur_s = cur.to_string();
                let attrs: &[(&str, &str)] = if cur != max {
                    &[("current", &cur_s)]
                } else {
                    &[]
                };
                g.leaf("vcpu", attrs, &max.to_string());
                let text = g.finish();
                let anchor = self
                    .l
                    .current_memory
                    .or(self.l.memory)
                    .or(self.l.last_id)
                    .or(self.l.name);
                if let Some(a) = anchor {
                    self.insert_after(a, &text);
                }
            }
        }
        if max != old_max {
            self.topology(max);
        }
        Ok(())
    }

    fn topology(&mut self, max: u32) {
        let Some(t) = self.l.topology else { return };
        let doc = self.doc;
        let keys = ["sockets", "dies", "clusters", "cores", "threads"];
        let mut v = [1u32; 5];
        let mut present = [false; 5];
        for (k, key) in keys.iter().enumerate() {
            if let Some(s) = doc.attr(t, key) {
                match s.trim().parse::<u32>() {
                    Ok(n) if n > 0 => {
                        v[k] = n;
                        present[k] = true;
                    }
                    _ => {
                        self.skip("cpu topology", format!("{key}='{s}' is not a count"));
                        return;
                    }
                }
            }
        }
        let [_, d, cl, c, th] = v;
        let per = |x: &[u32]| x.iter().fold(1u64, |a, &b| a * b as u64);
        let m = max as u64;
        let new: [u32; 5] = if m.is_multiple_of(per(&[d, cl, c, th])) {
            [(m / per(&[d, cl, c, th])) as u32, d, cl, c, th]
        } else if m.is_multiple_of(per(&[c, th])) {
            [(m / per(&[c, th])) as u32, 1, 1, c, th]
        } else if m.is_multiple_of(th as u64) {
            [max / th, 1, 1, 1, th]
        } else {
            [max, 1, 1, 1, 1]
        };
        if new == v {
            return;
        }
        let strs: Vec<String> = new.iter().map(|n| n.to_string()).collect();
        let sets: Vec<(&str, Option<&str>)> = keys
            .iter()
            .enumerate()
            .filter(|&(k, _)| present[k] || new[k] != 1)
            .map(|(k, key)| (*key, Some(strs[k].as_str())))
            .collect();
        let fmt = |x: [u32; 5]| {
            x.iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join("/")
        };
        self.changes.push(change(
            "cpu topology (sockets/dies/clusters/cores/threads)",
            fmt(v),
            fmt(new),
        ));
        self.record(At::Topology, Some(t));
        self.edit_start_tag(t, &sets);
    }

    pub fn memory(&mut self, prof: &ResourceProfile) -> Result<()> {
        if prof.memory_kib.is_none() && prof.current_memory_kib.is_none() {
            return Ok(());
        }
        let doc = self.doc;
        let old_mem = self.v.memory_kib;
        let old_cur = self.v.current_memory_kib;
        let mut dimms = 0u64;
        for &m in &self.l.mem_devices {
            if let Some(size) = doc.child(m, "target").and_then(|t| doc.child(t, "size")) {
                dimms = dimms.saturating_add(scaled_kib(doc, size, "memory device size")?);
            }
        }
        let mut mem = old_mem;
        if let Some(want) = prof.memory_kib.filter(|&w| w != old_mem) {
            let numa = !self.l.numa_cells.is_empty();
            let mut g = self.l.hugepage_kib.unwrap_or(1);
            if numa {
                g = g.max(1024);
            }
            let want = round_up(want, g);
            let max_mem = self
                .l
                .max_memory
                .map(|m| scaled_kib(doc, m, "maxMemory"))
                .transpose()?;
            if want <= dimms {
                self.skip(
                    "memory",
                    format!(
                        "{} is not above the {} held by memory devices",
                        kib_str(want),
                        kib_str(dimms)
                    ),
                );
            } else if let Some(mx) = max_mem.filter(|&mx| want > mx) {
                self.skip(
                    "memory",
                    format!("{} exceeds <maxMemory> {}", kib_str(want), kib_str(mx)),
                );
            } else if numa {
                if let Some(total) = self.scale_cells(want - dimms, g)? {
                    mem = total + dimms;
                }
            } else {
                mem = want;
            }
        }
        if mem != old_mem {
            self.changes
                .push(change("memory", kib_str(old_mem), kib_str(mem)));
            match self.l.memory {
                Some(m) => {
                    self.record(At::Memory, Some(m));
                    self.replace_scaled(m, mem);
                }
                None => {
                    self.record(At::Memory, None);
                    let mut g = Gen::new();
                    g.leaf("memory", &[("unit", "KiB")], &mem.to_string());
                    let text = g.finish();
                    if let Some(a) = self.l.last_id.or(self.l.name) {
                        self.insert_after(a, &text);
                    }
                }
            }
        }
        // Current memory: never above the (new) maximum.
        let mut cur = prof.current_memory_kib.or(old_cur);
        if let Some(c) = cur.filter(|&c| c > mem) {
            if prof.current_memory_kib.is_some() {
                self.skip(
                    "currentMemory",
                    format!("{} capped at memory {}", kib_str(c), kib_str(mem)),
                );
            }
            cur = Some(mem);
        }
        let (Some(cur), changed) = (cur, cur != old_cur) else {
            return Ok(());
        };
        if !changed || (old_cur.is_none() && cur == mem) {
            return Ok(());
        }
        self.changes.push(change(
            "currentMemory",
            kib_str(old_cur.unwrap_or(old_mem)),
            kib_str(cur),
        ));
        match self.l.current_memory {
            Some(c) => {
                self.record(At::CurrentMemory, Some(c));
                self.replace_scaled(c, cur);
            }
            None => {
                self.record(At::CurrentMemory, None);
                let unit = self.l.memory.and_then(|m| doc.attr(m, "unit"));
                let (v, u) = value_and_unit(unit.as_deref(), cur);
                let vs = v.to_string();
                let mut g = Gen::new();
                match u {
                    Some(u) => g.leaf("currentMemory", &[("unit", u)], &vs),
                    None => g.leaf("currentMemory", &[], &vs),
                };
                let text = g.finish();
                if let Some(a) = self.l.memory.or(self.l.last_id).or(self.l.name) {
                    self.insert_after(a, &text);
                }
            }
        }
        Ok(())
    }

    /// Scales the NUMA cells' memory to sum to `target` KiB (multiples of `g`); returns the sum.
    fn scale_cells(&mut self, target: u64, g: u64) -> Result<Option<u64>> {
        let doc = self.doc;
        let mut sizes = Vec::with_capacity(self.l.numa_cells.len());
        for &c in &self.l.numa_cells {
            match attr_kib(doc, c, "memory", "NUMA cell memory")? {
                Some(k) => sizes.push(k),
                None => {
                    self.skip("memory", "a NUMA cell has no memory size");
                    return Ok(None);
                }
            }
        }
        let old_total: u64 = sizes.iter().sum();
        let n = sizes.len() as u64;
        if old_total == 0 || target < g.saturating_mul(n) {
            self.skip(
                "memory",
                format!("{} cannot be split over {n} NUMA cells", kib_str(target)),
            );
            return Ok(None);
        }
        let mut new: Vec<u64> = sizes
            .iter()
            .map(|&s| {
                let share = (s as u128 * target as u128 / old_total as u128) as u64;
                (share / g * g).max(g)
            })
            .collect();
        let sum: u64 = new.iter().sum();
        if sum > target {
            self.skip("memory", "NUMA cell sizes cannot be scaled evenly");
            return Ok(None);
        }
        new[0] += (target - sum) / g * g;
        let total: u64 = new.iter().sum();
        for (i, (&c, (&old, &kib))) in self
            .l
            .numa_cells
            .iter()
            .zip(sizes.iter().zip(new.iter()))
            .enumerate()
        {
            if old == kib {
                continue;
            }
            let unit = doc.attr(c, "unit");
            let (v, u) = value_and_unit(unit.as_deref(), kib);
            let vs = v.to_string();
            let mut sets = vec![("memory", Some(vs.as_str()))];
            if u != unit.as_deref() {
                sets.push(("unit", u));
            }
            self.changes.push(change(
                format!("NUMA cell {i} memory"),
                kib_str(old),
                kib_str(kib),
            ));
            self.record(At::NumaCell(i), Some(c));
            self.edit_start_tag(c, &sets);
        }
        Ok(Some(total))
    }

    /// Why QEMU would refuse `disk` on `new` (None: the move is fine).
    fn bus_refusal(
        &self,
        disk: usize,
        k: &Kids,
        old: Option<&str>,
        new: DiskBus,
    ) -> Option<String> {
        let doc = self.doc;
        let l = self.l;
        if !l.is_qemu() {
            return Some(format!("domain type '{}' is not QEMU/KVM", l.domain_type));
        }
        match l.arch.as_deref() {
            None | Some("x86_64") | Some("i686") => {}
            Some(a) => {
                return Some(format!(
                    "prae moves disk buses only on x86 guests, this one is {a}"
                ));
            }
        }
        if let Some(m) = l.machine.as_deref()
            && (m.contains("isapc") || m.contains("microvm"))
        {
            return Some(format!("machine type {m} has no PCI or AHCI bus"));
        }
        match old {
            Some("virtio" | "scsi" | "sata" | "ide") => {}
            Some(b) => return Some(format!("bus {b} is not one prae moves")),
            None => return Some("the disk's bus is unknown".into()),
        }
        if let Some(m) = doc.attr(disk, "model") {
            return Some(format!("model='{m}' is virtio-only"));
        }
        if let Some(t) = doc.attr(disk, "type")
            && (t == "vhostuser" || t == "vhostvdpa")
        {
            return Some(format!("a {t} disk is virtio-only"));
        }
        if let Some(d) = k.driver {
            let tag = doc.open_tag(d);
            let mut present = 0u16;
            for a in super::xml::scan_attrs(tag, doc.el(d).name_len as usize) {
                let key = &tag[a.key];
                if let Some(j) = VIRTIO_DRIVER_ATTRS.iter().position(|&x| x == key) {
                    present |= 1 << j;
                }
            }
            if present != 0 {
                let key = VIRTIO_DRIVER_ATTRS[present.trailing_zeros() as usize];
                return Some(format!("driver setting {key} is virtio-only"));
            }
            if doc.child(d, "iothreads").is_some() {
                return Some("driver <iothreads> are virtio-only".into());
            }
        }
        if let Some(a) = k.address {
            let t = doc.attr(a, "type").unwrap_or_default();
            if !matches!(t.as_ref(), "pci" | "drive" | "") {
                return Some(format!("address type '{t}' ties the disk to its bus"));
            }
        }
        if new != DiskBus::Scsi && (k.vendor.is_some() || k.product.is_some()) {
            return Some("vendor/product are SCSI-only".into());
        }
        if new != DiskBus::Scsi && k.wwn.is_some() {
            return Some(format!("wwn is not supported on {new}"));
        }
        if new != DiskBus::Scsi && k.target.is_some_and(|t| doc.attr(t, "removable").is_some()) {
            return Some(format!("removable is not supported on {new}"));
        }
        if new == DiskBus::Sata && k.readonly.is_some() {
            return Some("QEMU refuses read-only SATA disks".into());
        }
        if new != DiskBus::Virtio && k.acpi.is_some() {
            return Some("an ACPI index needs a PCI (virtio) disk".into());
        }
        if old == Some("ide") && k.geometry.is_some_and(|g| doc.attr(g, "trans").is_some()) {
            return Some("a CHS translation mode is IDE-only".into());
        }
        if new == DiskBus::Sata
            && k.transient
                .is_some_and(|t| doc.attr(t, "shareBacking").as_deref() == Some("yes"))
        {
            return Some("SATA cannot share a transient disk's backing image".into());
        }
        if k.throttlefilters.is_some() && new == DiskBus::Sata {
            return Some("throttle filters are kept on their bus".into());
        }
        None
    }

    pub fn disks(&mut self, prof: &ResourceProfile) -> Result<()> {
        if prof.disk_bus.is_none() && prof.storage.is_none() && prof.disk_iotune.is_none() {
            return Ok(());
        }
        let doc = self.doc;
        let l = self.l;
        // First decide which disks move (or why not), then which drive addresses stay taken.
        let mut disks: Vec<Disk<'a>> = Vec::with_capacity(l.disks.len());
        for &d in &l.disks {
            let kids = Kids::of(doc, d);
            let device = doc.attr(d, "device").unwrap_or(Cow::Borrowed("disk"));
            let bus = target_bus(doc, kids.target);
            let dev = kids.target.and_then(|t| doc.attr(t, "dev"));
            let mv = match prof.disk_bus {
                Some(b) if device == "disk" && bus.as_deref() != Some(b.as_str()) => {
                    match self.bus_refusal(d, &kids, bus.as_deref(), b) {
                        Some(reason) => Err(reason),
                        None => Ok(Some(b)),
                    }
                }
                Some(_) if device == "lun" => {
                    Err("a lun passes SCSI commands through; its bus stays".into())
                }
                _ => Ok(None),
            };
            disks.push(Disk {
                el: d,
                kids,
                device,
                bus,
                dev,
                mv,
            });
        }
        // The dev names in use, as a set (a handful of disks: a list is faster than a hash).
        let mut used: Vec<Cow<'a, str>> = Vec::with_capacity(disks.len() + 1);
        for dev in disks.iter().filter_map(|x| x.dev.as_ref()) {
            if !used.contains(dev) {
                used.push(dev.clone());
            }
        }
        let mut taken: Vec<(&'static str, [u32; 4])> = Vec::new();
        if disks.iter().any(|x| matches!(x.mv, Ok(Some(_)))) {
            for x in &disks {
                if matches!(x.mv, Ok(Some(_))) {
                    continue;
                }
                let Some(family) = x.bus.as_deref().and_then(drive_family) else {
                    continue;
                };
                match x.kids.address {
                    Some(a) if doc.attr(a, "type").as_deref() == Some("drive") => {
                        taken.push((family, drive_address(doc, a)));
                    }
                    Some(_) => {}
                    None => {
                        if let Some(idx) = x.dev.as_deref().and_then(disk_index) {
                            for a in derived_addresses(family, idx) {
                                taken.push((family, a));
                            }
                        }
                    }
                }
            }
            if let Some(devs) = l.devices {
                for h in doc.children(devs).filter(|&h| doc.name(h) == "hostdev") {
                    if let Some(a) = doc.child(h, "address")
                        && doc.attr(a, "type").as_deref() == Some("drive")
                    {
                        taken.push(("scsi", drive_address(doc, a)));
                    }
                }
            }
        }
        for (i, x) in disks.iter_mut().enumerate() {
            let d = x.el;
            let k = x.kids;
            let Some(target) = k.target else {
                continue;
            };
            let dev: &str = x.dev.as_deref().unwrap_or_default();
            let mv = match &mut x.mv {
                Ok(m) => *m,
                Err(reason) => {
                    self.skip(disk_what(dev, "bus"), std::mem::take(reason));
                    None
                }
            };
            if x.device != "disk" {
                continue;
            }
            let bus = x.bus.as_deref();
            let n_changes = self.changes.len();
            let n_edits = self.edits.len();
            // The target's attribute edits: bus, dev, rotation_rate.
            let mut set_bus = None;
            let mut set_dev = None;
            let mut set_rr: Option<Option<ShortText>> = None;
            let mut new_bus = bus;
            if let Some(b) = mv {
                self.changes.push(change(
                    disk_what(dev, "bus"),
                    bus.unwrap_or("none"),
                    b.as_str(),
                ));
                set_bus = Some(b.as_str());
                new_bus = Some(b.as_str());
                let family = drive_family(b.as_str());
                let free = |name: &str, used: &[Cow<str>], taken: &[(&str, [u32; 4])]| {
                    if used.iter().any(|u| short_eq(u.as_bytes(), name.as_bytes())) {
                        return false;
                    }
                    let (Some(f), Some(idx)) = (family, disk_index(name)) else {
                        return family.is_none();
                    };
                    derived_addresses(f, idx).iter().all(|a| {
                        !taken.iter().any(|(tf, ta)| {
                            ta[0] == a[0]
                                && ta[1] == a[1]
                                && ta[2] == a[2]
                                && ta[3] == a[3]
                                && short_eq(tf.as_bytes(), f.as_bytes())
                        })
                    })
                };
                if let Some(p) = used.iter().position(|u| u == dev) {
                    used.swap_remove(p);
                }
                let keep = dev.starts_with(b.dev_prefix()) && free(dev, &used, &taken);
                let name: Cow<'a, str> = if keep {
                    x.dev.clone().unwrap_or_default()
                } else {
                    let mut cand = String::with_capacity(8);
                    for n in 0..100_000 {
                        cand.clear();
                        cand.push_str(b.dev_prefix());
                        push_disk_suffix(&mut cand, n);
                        if free(&cand, &used, &taken) {
                            break;
                        }
                    }
                    Cow::Owned(cand)
                };
                if let (Some(f), Some(idx)) = (family, disk_index(&name)) {
                    for a in derived_addresses(f, idx) {
                        taken.push((f, a));
                    }
                }
                if name != dev {
                    self.changes
                        .push(change(disk_what(dev, "dev"), dev, name.as_ref()));
                    set_dev = Some(name.clone());
                }
                if !used.contains(&name) {
                    used.push(name);
                }
                if let Some(a) = k.address {
                    let t = doc.attr(a, "type").unwrap_or_default();
                    self.changes
                        .push(change(disk_what(dev, "address"), t, "assigned by libvirt"));
                    self.remove(a);
                }
            }
            let old_rr = doc.attr(target, "rotation_rate");
            let rr_ok = matches!(new_bus, Some("scsi" | "sata" | "ide"));
            if let Some(s) = prof.storage {
                if !l.is_qemu() {
                    self.skip(
                        disk_what(dev, "rotation_rate"),
                        format!("domain type '{}' is not QEMU/KVM", l.domain_type),
                    );
                } else if !rr_ok {
                    self.skip(
                        disk_what(dev, "rotation_rate"),
                        [
                            "bus ",
                            new_bus.unwrap_or("unknown"),
                            " has no rotation_rate",
                        ]
                        .concat(),
                    );
                } else {
                    let rr = num(s.rotation_rate().into());
                    if old_rr.as_deref() != Some(rr.as_str()) {
                        self.changes.push(change(
                            disk_what(dev, "rotation_rate"),
                            old_rr.as_deref().unwrap_or("none"),
                            rr.as_str(),
                        ));
                        set_rr = Some(Some(rr));
                    }
                }
            }
            if let Some(r) = old_rr.as_deref()
                && new_bus != bus
                && new_bus == Some("virtio")
            {
                self.changes
                    .push(change(disk_what(dev, "rotation_rate"), r, "none"));
                set_rr = Some(None);
            }
            let mut sets: [(&str, Option<&str>); 3] = [("", None); 3];
            let mut n = 0;
            if let Some(b) = set_bus {
                sets[n] = ("bus", Some(b));
                n += 1;
            }
            if let Some(name) = &set_dev {
                sets[n] = ("dev", Some(name.as_ref()));
                n += 1;
            }
            if let Some(rr) = &set_rr {
                sets[n] = ("rotation_rate", rr.as_deref());
                n += 1;
            }
            if n > 0 {
                self.edit_start_tag(target, &sets[..n]);
            }
            if let Some(io) = prof.disk_iotune {
                self.iotune(d, &k, bus, dev, &io)?;
            }
            if self.changes.len() != n_changes || self.edits.len() != n_edits {
                self.record(At::Disk(i), Some(d));
            }
        }
        Ok(())
    }

    fn iotune(
        &mut self,
        d: usize,
        k: &Kids,
        bus: Option<&str>,
        dev: &str,
        io: &IoTune,
    ) -> Result<()> {
        let Some(target) = k.target else {
            return Ok(());
        };
        let doc = self.doc;
        let what = disk_what(dev, "iotune");
        if !self.l.is_qemu() {
            self.skip(
                what,
                format!("domain type '{}' is not QEMU/KVM", self.l.domain_type),
            );
            return Ok(());
        }
        if k.throttlefilters.is_some() {
            self.skip(
                what,
                "the disk uses <throttlefilters>, which exclude <iotune>",
            );
            return Ok(());
        }
        if bus == Some("sd") {
            self.skip(what, "libvirt has no <iotune> for SD card disks");
            return Ok(());
        }
        if let Some(t) = doc
            .attr(d, "type")
            .filter(|t| t == "vhostuser" || t == "vhostvdpa")
        {
            self.skip(what, format!("QEMU cannot throttle a {t} disk"));
            return Ok(());
        }
        let existing = k.iotune;
        let old = existing
            .map(|e| read_iotune(doc, e))
            .transpose()?
            .unwrap_or_default();
        if old == *io {
            return Ok(());
        }
        // Children prae keeps: everything but its six limits, minus what would become invalid.
        let mut kept: Vec<usize> = Vec::new();
        if let Some(e) = existing {
            let has = |k: &str| {
                IOTUNE_KEYS
                    .iter()
                    .position(|&x| x == k)
                    .is_some_and(|i| iotune_get(io, i).is_some())
            };
            let names: Vec<&str> = doc.children(e).map(|c| doc.name(c)).collect();
            for c in doc.children(e) {
                let n = doc.name(c);
                if IOTUNE_KEYS.contains(&n) {
                    continue;
                }
                if let Some(base) = n.strip_suffix("_max_length") {
                    let max = format!("{base}_max");
                    if !has(base) || !names.contains(&max.as_str()) {
                        continue;
                    }
                } else if let Some(base) = n.strip_suffix("_max")
                    && !has(base)
                {
                    continue;
                }
                kept.push(c);
            }
        }
        let to = self
            .iotune_text
            .get_or_insert_with(|| fmt_iotune(io))
            .clone();
        self.changes.push(change(what, fmt_iotune(&old), to));
        let any = (0..6).any(|k| iotune_get(io, k).is_some()) || !kept.is_empty();
        if !any {
            if let Some(e) = existing {
                self.remove(e);
            }
            return Ok(());
        }
        let el_indent = doc.indent_of(doc.el(target).start);
        let unit = self.l.unit;
        let child_indent: (&str, &str) = match existing.and_then(|e| doc.children(e).next()) {
            Some(c) if !doc.indent_of(doc.el(c).start).is_empty() => {
                (doc.indent_of(doc.el(c).start), "")
            }
            _ => (el_indent, unit),
        };
        let pretty = self.pretty;
        let nl = |t: &mut String, ind: (&str, &str)| {
            if pretty {
                t.push('\n');
                t.push_str(ind.0);
                t.push_str(ind.1);
            }
        };
        let (at, end) = match existing {
            Some(e) => (doc.el(e).start, doc.el(e).end),
            None => (doc.el(target).end, doc.el(target).end),
        };
        let m = self.edits.mark();
        let text = &mut self.edits.buf;
        if existing.is_none() {
            text.push_str(doc.sep_before(target));
        }
        text.push_str("<iotune>");
        for (k, key) in IOTUNE_KEYS.iter().enumerate() {
            if let Some(v) = iotune_get(io, k) {
                nl(text, child_indent);
                text.push('<');
                text.push_str(key);
                text.push('>');
                push_u64(text, v);
                text.push_str("</");
                text.push_str(key);
                text.push('>');
            }
        }
        for &c in &kept {
            nl(text, child_indent);
            text.push_str(doc.outer(c));
        }
        nl(text, (el_indent, ""));
        text.push_str("</iotune>");
        self.edits.commit(at, end, m);
        Ok(())
    }

    pub fn interfaces(&mut self, prof: &ResourceProfile) -> Result<()> {
        let Some(bw) = prof.bandwidth else {
            return Ok(());
        };
        let doc = self.doc;
        let ifaces = self.l.interfaces.clone();
        for (i, &n) in ifaces.iter().enumerate() {
            let kind = doc.attr(n, "type").unwrap_or_default();
            let mac = doc
                .child(n, "mac")
                .and_then(|m| doc.attr(m, "address"))
                .map(|s| s.into_owned())
                .unwrap_or_else(|| format!("#{i}"));
            let what = ["interface ", mac.as_str(), " bandwidth"].concat();
            if !self.l.is_qemu() {
                self.skip(
                    what,
                    format!("domain type '{}' is not QEMU/KVM", self.l.domain_type),
                );
                continue;
            }
            if !matches!(kind.as_ref(), "network" | "bridge" | "direct" | "ethernet") {
                self.skip(
                    what,
                    format!("libvirt has no QoS for type '{kind}' interfaces"),
                );
                continue;
            }
            let existing = doc.child(n, "bandwidth");
            let old = existing
                .map(|b| read_bandwidth(doc, b))
                .transpose()?
                .unwrap_or_default();
            if old == bw {
                continue;
            }
            self.changes
                .push(change(what, fmt_bandwidth(&old), fmt_bandwidth(&bw)));
            self.record(At::Interface(i), Some(n));
            if bw.is_empty() {
                if let Some(e) = existing {
                    self.remove(e);
                }
                continue;
            }
            let floor = existing
                .and_then(|b| doc.child(b, "inbound"))
                .and_then(|ib| doc.attr(ib, "floor"));
            let Some(last) = doc.children(n).last() else {
                continue;
            };
            let el_indent = doc.indent_of(doc.el(last).start);
            let child_indent = [el_indent, self.l.unit].concat();
            let nl = |ind: &str| -> String {
                if self.pretty {
                    ["\n", ind].concat()
                } else {
                    String::new()
                }
            };
            let mut text = match existing {
                Some(b) if !doc.el(b).is_empty_tag() => doc.open_tag(b).to_string(),
                _ => {
                    let mut g = Gen::new();
                    g.open("bandwidth", &[], false);
                    g.finish()
                }
            };
            let mut g = Gen::new();
            for (name, lim) in [("inbound", bw.inbound), ("outbound", bw.outbound)] {
                let Some(lim) = lim else { continue };
                let avg = lim.average.to_string();
                let peak = lim.peak.map(|p| p.to_string());
                let burst = lim.burst.map(|p| p.to_string());
                let mut attrs: Vec<(&str, &str)> = vec![("average", &avg)];
                if let Some(p) = &peak {
                    attrs.push(("peak", p));
                }
                if name == "inbound"
                    && let Some(f) = &floor
                {
                    attrs.push(("floor", f));
                }
                if let Some(b) = &burst {
                    attrs.push(("burst", b));
                }
                g.raw_ws(&nl(&child_indent)).open(name, &attrs, true);
            }
            g.raw_ws(&nl(el_indent)).close("bandwidth");
            text.push_str(&g.finish());
            match existing {
                Some(b) => {
                    let e = *doc.el(b);
                    self.replace(e.start, e.end, &text);
                }
                None => self.insert_after(last, &text),
            }
        }
        Ok(())
    }
}

//! Domain XML: a typed view of a domain's resource elements, and a lossless rewrite that applies a
//! [`ResourceProfile`](crate::model::ResourceProfile) with quick-xml.
//!
//! Invariants:
//! - Pure: strings in, strings out; no libvirt, no files, no clock.
//! - A rewrite changes only resource elements (`<vcpu>`, `<memory>`, `<currentMemory>`, the
//!   CPU topology/NUMA sizes that must agree with them, disk `<target>`/`<address>`/`<iotune>`,
//!   interface `<bandwidth>`) and prae's own `<metadata>` child; every other byte is kept.
//! - A change the hypervisor would refuse is not made; it is reported as skipped, with why.
//! - `rewrite(rewrite(x, p), p) == rewrite(x, p)`; `revert(rewrite(x, p))` restores the original
//!   values recorded in prae's metadata.

use crate::Result;
use crate::model::{Allocation, Bandwidth, DiskBus, IoTune};
use serde::{Deserialize, Serialize};

pub mod template;

/// prae's XML namespace for its `<metadata>` child.
pub const PRAE_NS: &str = "urn:prae:allocation:1";
/// The prefix prae writes its metadata with.
pub const PRAE_PREFIX: &str = "prae";

/// A typed view of the resource elements of a domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainView {
    pub name: String,
    /// `<domain type=...>`: kvm, qemu, xen, lxc, test, ...
    pub domain_type: String,
    /// `<os><type arch=...>`, when given.
    pub arch: Option<String>,
    /// `<vcpu>`: maximum vCPUs.
    pub max_vcpus: u32,
    /// `<vcpu current=...>`, or the maximum when absent.
    pub vcpus: u32,
    /// `<memory>`, KiB.
    pub memory_kib: u64,
    /// `<currentMemory>`, KiB, when present.
    pub current_memory_kib: Option<u64>,
    pub disks: Vec<DiskView>,
    pub interfaces: Vec<InterfaceView>,
    /// Whether prae's metadata is present (the domain was rewritten by prae).
    pub rewritten_by_prae: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskView {
    /// `<disk device=...>`: disk, cdrom, floppy, lun.
    pub device: String,
    /// `<target dev=...>`.
    pub target: String,
    /// `<target bus=...>` as written (may be ide, usb, fdc, ...).
    pub bus: Option<String>,
    pub rotation_rate: Option<u32>,
    pub iotune: Option<IoTune>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InterfaceView {
    /// `<interface type=...>`.
    pub kind: String,
    pub mac: Option<String>,
    pub target: Option<String>,
    pub bandwidth: Option<Bandwidth>,
}

/// One change a rewrite made or declined to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What changed: `vcpu`, `memory`, `disk vda bus`, `interface 52:54:... bandwidth`, ...
    pub what: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub what: String,
    pub reason: String,
}

/// The result of a rewrite or revert: the new XML and what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewritten {
    pub xml: String,
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
}

/// Parses a domain's resource elements. Errors: not well-formed XML, or not a `<domain>`.
pub fn parse(xml: &str) -> Result<DomainView> {
    let _ = xml;
    Err(crate::Error::Unsupported(
        "domain::parse is not written yet".into(),
    ))
}

/// Applies `alloc.profile` to a domain's XML; records originals, new values and
/// `alloc.provenance` in prae's metadata.
pub fn rewrite(xml: &str, alloc: &Allocation) -> Result<Rewritten> {
    let _ = (xml, alloc);
    Err(crate::Error::Unsupported(
        "domain::rewrite is not written yet".into(),
    ))
}

/// Restores the original values recorded in prae's metadata and removes that metadata.
/// A domain prae never rewrote is returned unchanged, with no changes.
pub fn revert(xml: &str) -> Result<Rewritten> {
    let _ = xml;
    Err(crate::Error::Unsupported(
        "domain::revert is not written yet".into(),
    ))
}

#[allow(dead_code)]
fn _bus_used(_: DiskBus) {}

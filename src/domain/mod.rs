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
//!
//! How: one quick-xml pass indexes element byte spans (`xml::Doc`); the rewrite decides each
//! change, then replaces only the spans it changes (regenerated with quick-xml's writer,
//! indented like their siblings) and copies every other byte. prae's metadata
//! (`metadata.rs`) keeps the original bytes of each element it replaced as CDATA, so `revert`
//! puts them back exactly; a domain prae already rewrote is reverted first and rewritten from its
//! first originals. After libvirt has defined a rewritten domain, `revert` still restores the
//! recorded elements, but controllers libvirt added for a new bus (e.g. a SATA controller) stay.

use crate::Result;
use crate::model::{Allocation, Bandwidth, IoTune};
use rewrite::Plan;
use serde::{Deserialize, Serialize};
use view::Layout;
use xml::Doc;

mod metadata;
mod rewrite;
pub mod template;
mod text;
mod view;
mod xml;

/// prae's XML namespace for its `<metadata>` child.
pub const PRAE_NS: &str = "urn:prae:allocation:1";
pub use text::ShortText;

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
    pub what: ShortText,
    pub from: ShortText,
    pub to: ShortText,
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
    let doc = Doc::parse(xml)?;
    let layout = Layout::find(&doc)?;
    view::view(&doc, &layout)
}

/// Applies `alloc.profile` to a domain's XML; records originals, new values and
/// `alloc.provenance` in prae's metadata.
///
/// A domain prae already rewrote is first reverted to its recorded originals, so the very first
/// originals are kept and rewriting twice with the same allocation gives the same bytes. The
/// changes reported are relative to the XML given.
pub fn rewrite(xml: &str, alloc: &Allocation) -> Result<Rewritten> {
    alloc.profile.validate()?;
    let doc = Doc::parse(xml)?;
    let layout = Layout::find(&doc)?;
    let Some(p) = layout.prae else {
        return rewrite_fresh(&doc, &layout, alloc);
    };
    let prev = metadata::read(&doc, p)?;
    let mut skipped = Vec::new();
    let mut edits = metadata::revert_edits(&doc, &layout, p, &prev, &mut skipped);
    let base = edits.apply(xml)?;
    let base_doc = Doc::parse(&base)?;
    let base_layout = Layout::find(&base_doc)?;
    let mut out = rewrite_fresh(&base_doc, &base_layout, alloc)?;
    // Report changes relative to the previous rewrite, not to the originals.
    let mut changes = Vec::with_capacity(out.changes.len());
    let mut matched = vec![false; prev.changes.len()];
    for c in &out.changes {
        let hit = (0..prev.changes.len()).find(|&i| !matched[i] && prev.changes[i].what == c.what);
        match hit {
            Some(i) => {
                matched[i] = true;
                let p = &prev.changes[i];
                if p.to != c.to {
                    changes.push(Change {
                        what: c.what.clone(),
                        from: p.to.clone(),
                        to: c.to.clone(),
                    });
                }
            }
            None => changes.push(c.clone()),
        }
    }
    for (p, _) in prev.changes.iter().zip(&matched).filter(|(_, m)| !**m) {
        changes.push(Change {
            what: p.what.clone(),
            from: p.to.clone(),
            to: p.from.clone(),
        });
    }
    out.changes = changes;
    skipped.append(&mut out.skipped);
    out.skipped = skipped;
    Ok(out)
}

fn rewrite_fresh<'a>(doc: &Doc<'a>, layout: &Layout<'a>, alloc: &Allocation) -> Result<Rewritten> {
    // Unparsable counts and sizes are errors even when the profile leaves them alone.
    let values = layout.check(doc)?;
    let profile = &alloc.profile;
    let mut plan = Plan::new(doc, layout, values);
    plan.vcpus(profile)?;
    plan.memory(profile)?;
    plan.disks(profile)?;
    plan.interfaces(profile)?;
    plan.metadata(&alloc.provenance);
    let Plan {
        mut edits,
        changes,
        skipped,
        ..
    } = plan;
    Ok(Rewritten {
        xml: edits.apply(doc.src)?,
        changes,
        skipped,
    })
}

/// Restores the original values recorded in prae's metadata and removes that metadata.
/// A domain prae never rewrote is returned unchanged, with no changes.
pub fn revert(xml: &str) -> Result<Rewritten> {
    let doc = Doc::parse(xml)?;
    let layout = Layout::find(&doc)?;
    let Some(p) = layout.prae else {
        return Ok(Rewritten {
            xml: xml.to_string(),
            changes: Vec::new(),
            skipped: Vec::new(),
        });
    };
    let meta = metadata::read(&doc, p)?;
    let mut skipped = Vec::new();
    let mut edits = metadata::revert_edits(&doc, &layout, p, &meta, &mut skipped);
    let changes = meta
        .changes
        .iter()
        .map(|c| Change {
            what: c.what.clone(),
            from: c.to.clone(),
            to: c.from.clone(),
        })
        .collect();
    Ok(Rewritten {
        xml: edits.apply(xml)?,
        changes,
        skipped,
    })
}

#[cfg(test)]
mod tests;

//! prae's `<metadata>` child: why a domain was rewritten, what changed, and the original bytes of
//! every element prae replaced, so that [`revert`](super::revert) can restore them exactly.
//!
//! ```xml
//! <metadata>
//!   <prae:allocation xmlns:prae="urn:prae:allocation:1" reason="tier table" tier="medium">
//!     <prae:change what="vcpu" from="1" to="2"/>
//!     <prae:original at="vcpu"><![CDATA[<vcpu placement='static'>1</vcpu>]]></prae:original>
//!     <prae:original at="currentMemory" absent="yes"/>
//!   </prae:allocation>
//! </metadata>
//! ```
//! `metadata="created"` on the element says prae created `<metadata>` itself;
//! `metadata-was` holds the original bytes of an empty `<metadata/>` prae expanded.

use super::rewrite::{At, Plan, Record};
use super::view::Layout;
use super::xml::{Doc, Edits, push_escaped};
use super::{Change, PRAE_NS, Skipped};
use crate::model::Provenance;
use crate::{Error, Result};

#[cfg(test)]
const ELEMENT: &str = "allocation";
/// prae's qualified names, spelled out ([`PRAE_PREFIX`](super::PRAE_PREFIX) + local name; a test
/// checks they agree).
const Q_ALLOCATION: &str = "prae:allocation";
#[cfg(test)]
const Q_CHANGE: &str = "prae:change";
#[cfg(test)]
const Q_ORIGINAL: &str = "prae:original";
const XMLNS_PRAE: &str = "xmlns:prae";

/// What prae's metadata holds.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pub changes: Vec<Change>,
    pub records: Vec<Record<'static>>,
    pub created: bool,
    pub was: Option<String>,
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

/// Appends ` key="value"`, the value escaped.
fn push_attr(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push_str("=\"");
    push_escaped(out, value, true);
    out.push('"');
}

/// Appends `text` as CDATA sections (split where it contains `]]>`): exact bytes, no escaping.
fn push_cdata(out: &mut String, text: &str) {
    let mut rest = text;
    loop {
        // `contains` on bytes is a memchr: most originals hold no ']' at all.
        let cut = if rest.as_bytes().contains(&b']') {
            rest.find("]]>").map(|p| p + 2)
        } else {
            None
        };
        let (part, tail) = rest.split_at(cut.unwrap_or(rest.len()));
        out.push_str("<![CDATA[");
        out.push_str(part);
        out.push_str("]]>");
        if cut.is_none() {
            break;
        }
        rest = tail;
    }
}

impl Plan<'_, '_> {
    fn push_nl(&self, out: &mut String, ind: &str, unit: &str) {
        if self.pretty {
            out.push('\n');
            out.push_str(ind);
            out.push_str(unit);
        }
    }

    /// Appends prae's element to `out`, indented at `ind` + `unit`; `flag` is the
    /// metadata-origin attribute.
    fn prae_element(
        &self,
        out: &mut String,
        prov: &Provenance,
        ind: (&str, &str),
        flag: Option<(&str, &str)>,
    ) {
        let unit = self.l.unit;
        let inner_len = ind.0.len() + ind.1.len() + unit.len() + 1;
        out.reserve(
            200 + self
                .changes
                .iter()
                .map(|c| 40 + inner_len + c.what.len() + c.from.len() + c.to.len())
                .sum::<usize>()
                + self
                    .records
                    .iter()
                    .map(|r| 64 + inner_len + r.original.as_ref().map_or(0, |o| o.len()))
                    .sum::<usize>(),
        );
        out.push('<');
        out.push_str(Q_ALLOCATION);
        push_attr(out, XMLNS_PRAE, PRAE_NS);
        push_attr(out, "reason", &prov.reason);
        if let Some(t) = prov.tier {
            push_attr(out, "tier", t.as_str());
        }
        if let Some((k, v)) = flag {
            push_attr(out, k, v);
        }
        if self.changes.is_empty() && self.records.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        // The line break and indentation before each child, built once.
        let mut nl = [0u8; 64];
        let nl_len = 1 + ind.0.len() + ind.1.len() + unit.len();
        let long;
        let nl: &str = if !self.pretty {
            ""
        } else if nl_len <= nl.len() {
            nl[0] = b'\n';
            let mut p = 1;
            for part in [ind.0, ind.1, unit] {
                nl[p..p + part.len()].copy_from_slice(part.as_bytes());
                p += part.len();
            }
            std::str::from_utf8(&nl[..nl_len]).unwrap_or("\n")
        } else {
            long = ["\n", ind.0, ind.1, unit].concat();
            &long
        };
        // Whole runs of fixed text per push (the names are `Q_CHANGE` and `Q_ORIGINAL`).
        for c in &self.changes {
            out.push_str(nl);
            out.push_str("<prae:change what=\"");
            push_escaped(out, &c.what, true);
            out.push_str("\" from=\"");
            push_escaped(out, &c.from, true);
            out.push_str("\" to=\"");
            push_escaped(out, &c.to, true);
            out.push_str("\"/>");
        }
        for r in &self.records {
            out.push_str(nl);
            out.push_str("<prae:original at=\"");
            r.at.push_to(out);
            match &r.original {
                Some(o) => {
                    out.push_str("\">");
                    push_cdata(out, o);
                    out.push_str("</prae:original>");
                }
                None => out.push_str("\" absent=\"yes\"/>"),
            }
        }
        self.push_nl(out, ind.0, ind.1);
        out.push_str("</");
        out.push_str(Q_ALLOCATION);
        out.push('>');
    }

    /// Adds prae's metadata element (creating `<metadata>` when needed).
    pub fn metadata(&mut self, prov: &Provenance) {
        let doc = self.doc;
        let unit = self.l.unit;
        // Written straight into the edit buffer; `take` lends it to `&self` helpers.
        let mut text = std::mem::take(&mut self.edits.buf);
        let mark = text.len();
        let at = match self.l.metadata {
            Some(m) if !doc.el(m).is_empty_tag() => match doc.children(m).last() {
                Some(last) => {
                    let ind = doc.indent_of(doc.el(last).start);
                    text.push_str(doc.sep_before(last));
                    self.prae_element(&mut text, prov, (ind, ""), None);
                    doc.el(last).end..doc.el(last).end
                }
                None => {
                    let ind = doc.indent_of(doc.el(m).start);
                    self.push_nl(&mut text, ind, unit);
                    self.prae_element(&mut text, prov, (ind, unit), None);
                    doc.el(m).open_end..doc.el(m).open_end
                }
            },
            Some(m) => {
                let mi = doc.indent_of(doc.el(m).start);
                text.push_str("<metadata>");
                self.push_nl(&mut text, mi, unit);
                self.prae_element(
                    &mut text,
                    prov,
                    (mi, unit),
                    Some(("metadata-was", doc.outer(m))),
                );
                self.push_nl(&mut text, mi, "");
                text.push_str("</metadata>");
                doc.el(m).start..doc.el(m).end
            }
            None => {
                let Some(anchor) = self.l.last_id.or(self.l.name) else {
                    self.edits.buf = text;
                    return;
                };
                let mi = doc.indent_of(doc.el(anchor).start);
                text.push_str(doc.sep_before(anchor));
                text.push_str("<metadata>");
                self.push_nl(&mut text, mi, unit);
                self.prae_element(&mut text, prov, (mi, unit), Some(("metadata", "created")));
                self.push_nl(&mut text, mi, "");
                text.push_str("</metadata>");
                doc.el(anchor).end..doc.el(anchor).end
            }
        };
        self.edits.buf = text;
        self.edits.commit(at.start, at.end, mark);
    }
}

/// Reads prae's element `p`.
pub(crate) fn read(doc: &Doc, p: usize) -> Result<Meta> {
    let mut m = Meta {
        created: doc.attr(p, "metadata").as_deref() == Some("created"),
        was: doc.attr(p, "metadata-was").map(|s| s.into_owned()),
        ..Meta::default()
    };
    for c in doc.children(p) {
        match local(doc.name(c)) {
            "change" => m.changes.push(Change {
                what: doc.attr(c, "what").unwrap_or_default().into(),
                from: doc.attr(c, "from").unwrap_or_default().into(),
                to: doc.attr(c, "to").unwrap_or_default().into(),
            }),
            "original" => {
                let at = doc
                    .attr(c, "at")
                    .ok_or_else(|| Error::NotADomain("prae metadata lacks an 'at'".into()))?;
                let original = if doc.attr(c, "absent").as_deref() == Some("yes") {
                    None
                } else {
                    Some(
                        doc.text_or_cdata(c)
                            .ok_or_else(|| {
                                Error::NotADomain(format!("prae metadata for '{at}' is not text"))
                            })?
                            .into(),
                    )
                };
                m.records.push(Record {
                    at: At::parse(&at),
                    original,
                });
            }
            _ => {}
        }
    }
    Ok(m)
}

fn locate(l: &Layout, at: &At) -> Option<usize> {
    match *at {
        At::Vcpu => l.vcpu,
        At::Memory => l.memory,
        At::CurrentMemory => l.current_memory,
        At::Topology => l.topology,
        At::NumaCell(i) => l.numa_cells.get(i).copied(),
        At::Disk(i) => l.disks.get(i).copied(),
        At::Interface(i) => l.interfaces.get(i).copied(),
        At::Other(_) => None,
    }
}

/// The edits that restore the originals and drop prae's metadata.
pub(crate) fn revert_edits(
    doc: &Doc,
    l: &Layout,
    p: usize,
    meta: &Meta,
    skipped: &mut Vec<Skipped>,
) -> Edits {
    let text: usize = meta
        .records
        .iter()
        .map(|r| r.original.as_ref().map_or(0, |o| o.len()))
        .sum();
    let mut edits = Edits::with_capacity(meta.records.len() + 1, text);
    for r in &meta.records {
        match (locate(l, &r.at), &r.original) {
            (Some(e), Some(o)) => {
                let e = doc.el(e);
                edits.replace(e.start, e.end, o);
            }
            (Some(e), None) => {
                let e = doc.el(e);
                edits.replace(doc.ws_before(e.start), e.end, "");
            }
            (None, Some(_)) => skipped.push(Skipped {
                what: r.at.to_string(),
                reason: "the element is gone; its original was not restored".into(),
            }),
            (None, None) => {}
        }
    }
    let only_prae = l.metadata.is_some_and(|m| doc.children(m).all(|c| c == p));
    match (l.metadata, only_prae) {
        (Some(m), true) if meta.created => {
            let e = doc.el(m);
            edits.replace(doc.ws_before(e.start), e.end, "");
        }
        (Some(m), true) if meta.was.is_some() => {
            let e = doc.el(m);
            edits.replace(e.start, e.end, meta.was.as_deref().unwrap_or_default());
        }
        _ => {
            let e = doc.el(p);
            edits.replace(doc.ws_before(e.start), e.end, "");
        }
    }
    edits
}

#[cfg(test)]
mod tests {
    use super::super::PRAE_PREFIX;
    use super::*;

    #[test]
    fn qualified_names_use_the_prefix() {
        let q = |l: &str| format!("{PRAE_PREFIX}:{l}");
        assert_eq!(Q_ALLOCATION, q(ELEMENT));
        assert_eq!(Q_CHANGE, q("change"));
        assert_eq!(Q_ORIGINAL, q("original"));
        assert_eq!(XMLNS_PRAE, format!("xmlns:{PRAE_PREFIX}"));
        // prae_element writes whole runs of fixed text: they must agree with the names.
        let xml = "<domain type='kvm'><name>q</name><memory>1024</memory><vcpu>1</vcpu>\
                   <devices><disk type='file' device='disk'><target dev='vdb' bus='virtio'/>\
                   </disk></devices></domain>";
        let alloc = crate::model::Allocation {
            profile: crate::model::ResourceProfile {
                vcpus: Some(2),
                ..Default::default()
            },
            provenance: Provenance {
                reason: "q".into(),
                tier: None,
                sources: Vec::new(),
            },
        };
        let out = super::super::rewrite(xml, &alloc).unwrap().xml;
        for run in [
            format!("<{Q_ALLOCATION} {XMLNS_PRAE}=\"{PRAE_NS}\""),
            format!("<{Q_CHANGE} what=\"vcpu\" from=\"1\" to=\"2\"/>"),
            format!("<{Q_ORIGINAL} at=\"vcpu\"><![CDATA[<vcpu>1</vcpu>]]></{Q_ORIGINAL}>"),
            format!("</{Q_ALLOCATION}>"),
        ] {
            assert!(out.contains(&run), "{run} not in {out}");
        }
    }
}

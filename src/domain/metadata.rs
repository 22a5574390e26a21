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

use super::rewrite::{Plan, Record};
use super::view::Layout;
use super::xml::{Doc, Edit, Gen};
use super::{Change, PRAE_NS, PRAE_PREFIX, Skipped};
use crate::model::Provenance;
use crate::{Error, Result};

const ELEMENT: &str = "allocation";

/// What prae's metadata holds.
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pub changes: Vec<Change>,
    pub records: Vec<Record<'static>>,
    pub created: bool,
    pub was: Option<String>,
}

fn qname(local: &str) -> String {
    let mut s = String::with_capacity(PRAE_PREFIX.len() + 1 + local.len());
    s.push_str(PRAE_PREFIX);
    s.push(':');
    s.push_str(local);
    s
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

impl Plan<'_, '_> {
    fn push_nl(&self, out: &mut String, ind: &str, unit: &str) {
        if self.pretty {
            out.push('\n');
            out.push_str(ind);
            out.push_str(unit);
        }
    }

    /// Appends prae's element, indented at `ind` + `unit`; `flag` is the metadata-origin
    /// attribute.
    fn prae_element(
        &self,
        out: &mut String,
        prov: &Provenance,
        ind: (&str, &str),
        flag: Option<(&str, &str)>,
    ) {
        let unit = self.l.unit.as_str();
        out.reserve(
            200 + self.changes.len() * 120
                + self
                    .records
                    .iter()
                    .map(|r| 48 + r.original.as_ref().map_or(0, |o| o.len() + 12))
                    .sum::<usize>(),
        );
        let mut g = Gen::from_string(std::mem::take(out));
        let root = qname(ELEMENT);
        let ns_attr = ["xmlns:", PRAE_PREFIX].concat();
        let mut attrs: Vec<(&str, &str)> = vec![(&ns_attr, PRAE_NS), ("reason", &prov.reason)];
        if let Some(t) = prov.tier {
            attrs.push(("tier", t.as_str()));
        }
        if let Some(f) = flag {
            attrs.push(f);
        }
        let empty = self.changes.is_empty() && self.records.is_empty();
        g.open(&root, &attrs, empty);
        if !empty {
            let change_q = qname("change");
            let orig_q = qname("original");
            let inner = [ind.0, ind.1, unit].concat();
            for c in &self.changes {
                self.push_nl(g.buf(), &inner, "");
                g.open(
                    &change_q,
                    &[("what", &c.what), ("from", &c.from), ("to", &c.to)],
                    true,
                );
            }
            for r in &self.records {
                self.push_nl(g.buf(), &inner, "");
                match &r.original {
                    Some(o) => g
                        .open(&orig_q, &[("at", &r.at)], false)
                        .cdata(o)
                        .close(&orig_q),
                    None => g.open(&orig_q, &[("at", &r.at), ("absent", "yes")], true),
                };
            }
            self.push_nl(g.buf(), ind.0, ind.1);
            g.close(&root);
        }
        *out = g.finish();
    }

    /// Adds prae's metadata element (creating `<metadata>` when needed).
    pub fn metadata(&mut self, prov: &Provenance) {
        let doc = self.doc;
        let unit = self.l.unit.as_str();
        let mut text = String::new();
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
        self.edits.push(Edit {
            start: at.start,
            end: at.end,
            text,
        });
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
                what: doc.attr(c, "what").unwrap_or_default().into_owned(),
                from: doc.attr(c, "from").unwrap_or_default().into_owned(),
                to: doc.attr(c, "to").unwrap_or_default().into_owned(),
            }),
            "original" => {
                let at = doc
                    .attr(c, "at")
                    .ok_or_else(|| Error::NotADomain("prae metadata lacks an 'at'".into()))?
                    .into_owned();
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
                m.records.push(Record { at, original });
            }
            _ => {}
        }
    }
    Ok(m)
}

fn locate(doc: &Doc, l: &Layout, at: &str) -> Option<usize> {
    let indexed = |prefix: &str| -> Option<usize> {
        at.strip_prefix(prefix)?.strip_suffix(']')?.parse().ok()
    };
    match at {
        "vcpu" => l.vcpu,
        "memory" => l.memory,
        "currentMemory" => l.current_memory,
        "cpu/topology" => l.topology,
        _ => {
            if let Some(i) = indexed("cpu/numa/cell[") {
                l.numa_cells.get(i).copied()
            } else if let Some(i) = indexed("devices/disk[") {
                l.disks.get(i).copied()
            } else if let Some(i) = indexed("devices/interface[") {
                l.interfaces.get(i).copied()
            } else {
                let _ = doc;
                None
            }
        }
    }
}

/// The edits that restore the originals and drop prae's metadata.
pub(crate) fn revert_edits(
    doc: &Doc,
    l: &Layout,
    p: usize,
    meta: &Meta,
    skipped: &mut Vec<Skipped>,
) -> Vec<Edit> {
    let mut edits = Vec::with_capacity(meta.records.len() + 1);
    for r in &meta.records {
        match (locate(doc, l, &r.at), &r.original) {
            (Some(e), Some(o)) => {
                let e = doc.el(e);
                edits.push(Edit {
                    start: e.start,
                    end: e.end,
                    text: o.to_string(),
                });
            }
            (Some(e), None) => {
                let e = doc.el(e);
                edits.push(Edit {
                    start: doc.ws_before(e.start),
                    end: e.end,
                    text: String::new(),
                });
            }
            (None, Some(_)) => skipped.push(Skipped {
                what: r.at.clone(),
                reason: "the element is gone; its original was not restored".into(),
            }),
            (None, None) => {}
        }
    }
    let only_prae = l.metadata.is_some_and(|m| doc.children(m).all(|c| c == p));
    match (l.metadata, only_prae) {
        (Some(m), true) if meta.created => {
            let e = doc.el(m);
            edits.push(Edit {
                start: doc.ws_before(e.start),
                end: e.end,
                text: String::new(),
            });
        }
        (Some(m), true) if meta.was.is_some() => {
            let e = doc.el(m);
            edits.push(Edit {
                start: e.start,
                end: e.end,
                text: meta.was.clone().unwrap_or_default(),
            });
        }
        _ => {
            let e = doc.el(p);
            edits.push(Edit {
                start: doc.ws_before(e.start),
                end: e.end,
                text: String::new(),
            });
        }
    }
    edits
}

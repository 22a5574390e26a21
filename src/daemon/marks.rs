//! What a domain's `<metadata>` says about prae, and the advice note (policy `advise`). Pure:
//! strings in, strings out.
//!
//! - handled: prae's allocation element (namespace [`PRAE_NS`]) is present: prae rewrote it;
//! - advised: prae's advice element ([`ADVICE_NS`]) is present: prae recorded a recommendation;
//! - opted out: an element `<policy mode="off"/>` in [`POLICY_NS`], which an operator sets with
//!   `virsh metadata DOMAIN --uri urn:prae:policy:1 --key prae --set '<policy mode="off"/>' --config`.

use crate::domain::{Change, PRAE_NS};
use crate::model::Provenance;
use crate::{Error, Result};
use quick_xml::NsReader;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

/// The namespace of prae's advice note.
pub const ADVICE_NS: &str = "urn:prae:advice:1";
/// The namespace of the operator's per-domain policy (opt-out).
pub const POLICY_NS: &str = "urn:prae:policy:1";

/// What the metadata of a domain says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    pub handled: bool,
    pub advised: bool,
    pub opted_out: bool,
}

impl Marks {
    /// One word for tables and metrics.
    pub fn label(&self) -> &'static str {
        if self.opted_out {
            "opted-out"
        } else if self.handled {
            "rewritten"
        } else if self.advised {
            "advised"
        } else {
            "unhandled"
        }
    }
}

/// Where an advice element can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Before `</metadata>` (byte offset).
    BeforeMetadataEnd(usize),
    /// `<metadata/>` at this byte span.
    EmptyMetadata(usize, usize),
    /// No metadata: before `</domain>` (byte offset).
    BeforeDomainEnd(usize),
}

fn xml_err(e: impl std::fmt::Display, pos: u64) -> Error {
    Error::Xml(format!("at byte {pos}: {e}"))
}

fn in_ns(r: &ResolveResult, ns: &str) -> bool {
    matches!(r, ResolveResult::Bound(Namespace(n)) if *n == ns.as_bytes())
}

fn scan(xml: &str) -> Result<(Marks, Slot)> {
    let mut r = NsReader::from_str(xml);
    let mut marks = Marks::default();
    let mut depth = 0usize;
    let mut in_metadata = false;
    let mut slot = None;
    let mut saw_root = false;
    loop {
        let before = r.buffer_position() as usize;
        let (ns, ev) = match r.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(xml_err(e, before as u64)),
        };
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let empty = matches!(ev, Event::Empty(_));
                let local = s.local_name();
                if depth == 0 {
                    if local.as_ref() != b"domain" || saw_root {
                        return Err(Error::NotADomain(format!(
                            "the root element is <{}>, not <domain>",
                            String::from_utf8_lossy(s.name().as_ref())
                        )));
                    }
                    saw_root = true;
                } else if depth == 1 && local.as_ref() == b"metadata" {
                    if empty {
                        slot = Some(Slot::EmptyMetadata(before, r.buffer_position() as usize));
                    } else {
                        in_metadata = true;
                    }
                } else if depth == 2 && in_metadata {
                    if in_ns(&ns, PRAE_NS) {
                        marks.handled = true;
                    } else if in_ns(&ns, ADVICE_NS) {
                        marks.advised = true;
                    } else if in_ns(&ns, POLICY_NS) && local.as_ref() == b"policy" {
                        let off = s.attributes().flatten().any(|a| {
                            a.key.local_name().as_ref() == b"mode"
                                && a.unescape_value().is_ok_and(|v| v.trim() == "off")
                        });
                        marks.opted_out |= off;
                    }
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(ref e) => {
                depth = depth.saturating_sub(1);
                if depth == 1 && in_metadata && e.local_name().as_ref() == b"metadata" {
                    in_metadata = false;
                    slot = Some(Slot::BeforeMetadataEnd(before));
                } else if depth == 0 && slot.is_none() {
                    slot = Some(Slot::BeforeDomainEnd(before));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match slot {
        Some(s) if saw_root => Ok((marks, s)),
        _ => Err(Error::NotADomain("no <domain> element".into())),
    }
}

/// Reads prae's marks from a domain's XML.
pub fn marks(xml: &str) -> Result<Marks> {
    scan(xml).map(|(m, _)| m)
}

/// The advice element: the recommended changes and why, in [`ADVICE_NS`].
fn advice_element(prov: &Provenance, changes: &[Change]) -> Result<String> {
    let mut w = quick_xml::Writer::new(Vec::new());
    let wr = |e: std::io::Error| Error::Xml(format!("cannot write the advice element: {e}"));
    let mut start = BytesStart::new("prae:advice");
    start.push_attribute(("xmlns:prae", ADVICE_NS));
    start.push_attribute(("reason", prov.reason.as_str()));
    if let Some(t) = prov.tier {
        start.push_attribute(("tier", t.as_str()));
    }
    if changes.is_empty() {
        w.write_event(Event::Empty(start)).map_err(wr)?;
    } else {
        w.write_event(Event::Start(start)).map_err(wr)?;
        for c in changes {
            let mut e = BytesStart::new("prae:change");
            e.push_attribute(("what", c.what.as_str()));
            e.push_attribute(("from", c.from.as_str()));
            e.push_attribute(("to", c.to.as_str()));
            w.write_event(Event::Empty(e)).map_err(wr)?;
        }
        w.write_event(Event::End(BytesEnd::new("prae:advice")))
            .map_err(wr)?;
    }
    String::from_utf8(w.into_inner()).map_err(|e| Error::Xml(e.to_string()))
}

/// Adds prae's advice (recommended `changes`, and why) to the domain's `<metadata>`, creating
/// `<metadata>` when absent; every other byte is kept. A domain already advised is returned
/// unchanged.
pub fn annotate(xml: &str, prov: &Provenance, changes: &[Change]) -> Result<String> {
    let (m, slot) = scan(xml)?;
    if m.advised {
        return Ok(xml.to_string());
    }
    let el = advice_element(prov, changes)?;
    let mut out = String::with_capacity(xml.len() + el.len() + 32);
    match slot {
        Slot::BeforeMetadataEnd(at) => {
            out.push_str(&xml[..at]);
            out.push_str("  ");
            out.push_str(&el);
            out.push_str("\n  ");
            out.push_str(&xml[at..]);
        }
        Slot::EmptyMetadata(a, b) => {
            out.push_str(&xml[..a]);
            out.push_str("<metadata>");
            out.push_str(&el);
            out.push_str("</metadata>");
            out.push_str(&xml[b..]);
        }
        Slot::BeforeDomainEnd(at) => {
            out.push_str(&xml[..at]);
            out.push_str("  <metadata>");
            out.push_str(&el);
            out.push_str("</metadata>\n");
            out.push_str(&xml[at..]);
        }
    }
    Ok(out)
}

/// The `prepare` hook's verdict for a domain's XML under `policy`: `Err` with the reason when
/// the start must be refused (enforce, and prae neither rewrote it nor was told to skip it).
pub fn hook_verdict(xml: &str, policy: super::Policy) -> std::result::Result<(), String> {
    if policy != super::Policy::Enforce {
        return Ok(());
    }
    match marks(xml) {
        Ok(m) if m.handled || m.opted_out => Ok(()),
        Ok(_) => Err(
            "prae policy is enforce and prae has not rewritten this domain yet; \
             define it through prae (prae define, prae-virsh define) or wait for the daemon"
                .into(),
        ),
        Err(e) => Err(format!("cannot read the domain XML: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Policy;

    const BARE: &str =
        "<domain type='test'>\n  <name>d</name>\n  <memory>1024</memory>\n</domain>\n";

    fn prov() -> Provenance {
        Provenance {
            reason: "tier medium table & <more>".into(),
            tier: Some(crate::model::Tier::Medium),
            sources: vec![],
        }
    }

    fn change() -> Vec<Change> {
        vec![Change {
            what: "vcpu".into(),
            from: "1".into(),
            to: "2".into(),
        }]
    }

    #[test]
    fn annotate_adds_metadata_and_keeps_the_rest() {
        let out = annotate(BARE, &prov(), &change()).unwrap();
        let m = marks(&out).unwrap();
        assert!(m.advised && !m.handled && !m.opted_out);
        assert!(
            out.starts_with("<domain type='test'>\n  <name>d</name>\n  <memory>1024</memory>\n")
        );
        assert!(
            out.contains("reason=\"tier medium table &amp; &lt;more&gt;\""),
            "{out}"
        );
        assert!(
            out.contains("<prae:change what=\"vcpu\" from=\"1\" to=\"2\"/>"),
            "{out}"
        );
        // Idempotent.
        assert_eq!(annotate(&out, &prov(), &change()).unwrap(), out);
    }

    #[test]
    fn annotate_uses_existing_metadata() {
        let x = "<domain><name>d</name><metadata><a:x xmlns:a='urn:a'/></metadata></domain>";
        let out = annotate(x, &prov(), &[]).unwrap();
        assert!(
            out.contains("<a:x xmlns:a='urn:a'/>  <prae:advice"),
            "{out}"
        );
        assert_eq!(out.matches("<metadata>").count(), 1);
        let x = "<domain><name>d</name><metadata/></domain>";
        let out = annotate(x, &prov(), &[]).unwrap();
        assert!(out.contains("<metadata><prae:advice"), "{out}");
        assert!(marks(&out).unwrap().advised);
    }

    #[test]
    fn reads_marks() {
        let opt = "<domain><metadata><p:policy xmlns:p='urn:prae:policy:1' mode='off'/></metadata></domain>";
        assert!(marks(opt).unwrap().opted_out);
        let on = "<domain><metadata><p:policy xmlns:p='urn:prae:policy:1' mode='on'/></metadata></domain>";
        assert!(!marks(on).unwrap().opted_out);
        let done = "<domain><metadata><prae:allocation xmlns:prae='urn:prae:allocation:1'/></metadata></domain>";
        assert!(marks(done).unwrap().handled);
        // Elements elsewhere do not count.
        let deep = "<domain><devices><prae:allocation xmlns:prae='urn:prae:allocation:1'/></devices></domain>";
        assert_eq!(marks(deep).unwrap(), Marks::default());
        assert!(marks("<pool/>").unwrap_err().to_string().contains("<pool>"));
        assert!(marks("<domain>").is_err());
        assert!(marks("not xml").is_err());
    }

    #[test]
    fn hook_refuses_only_unhandled_domains_under_enforce() {
        assert!(hook_verdict(BARE, Policy::Advise).is_ok());
        assert!(hook_verdict(BARE, Policy::Off).is_ok());
        let e = hook_verdict(BARE, Policy::Enforce).unwrap_err();
        assert!(e.contains("enforce"), "{e}");
        let opt = "<domain><metadata><p:policy xmlns:p='urn:prae:policy:1' mode='off'/></metadata></domain>";
        assert!(hook_verdict(opt, Policy::Enforce).is_ok());
        let advised = annotate(BARE, &prov(), &[]).unwrap();
        assert!(hook_verdict(&advised, Policy::Enforce).is_err());
        assert!(hook_verdict("garbage", Policy::Enforce).is_err());
    }
}

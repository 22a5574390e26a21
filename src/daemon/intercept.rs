//! Interception of domains defined by other clients (virsh, virt-install, virt-manager).
//!
//! [`decide`] (pure) says what to do with a domain's persistent XML under a policy;
//! [`handle_domain`] reads the XML, decides and re-defines; [`supervise`] keeps a libvirt
//! connection: it connects (retrying every `reconnect_s`), rescans every domain so that no
//! DEFINED event missed while libvirt was away is lost, follows lifecycle events, and checks the
//! connection every `reconnect_s`; when it is lost it says so and reconnects, while the API
//! keeps serving predictions.
//!
//! The daemon's own re-define fires a DEFINED event; the domain then carries prae's allocation
//! or advice, so [`decide`] skips it and nothing loops.

use super::marks::{self, Marks};
use super::metrics::Metrics;
use super::{Daemon, Policy};
use crate::domain::{self, Change, Rewritten};
use crate::hypervisor::{DomainState, Hypervisor, LifecycleKind, Scope, XmlKind};
use crate::model::Allocation;
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_stream::StreamExt;

/// What to do with one domain.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Leave it: why.
    Skip(&'static str),
    /// Re-define it with this rewrite (enforce).
    Rewrite(Rewritten),
    /// Re-define it with the advice recorded (advise).
    Annotate { xml: String, changes: Vec<Change> },
}

/// Decides from a domain's persistent XML, the policy and the allocation prae would give it.
pub fn decide(xml: &str, policy: Policy, alloc: &Allocation) -> Result<Decision> {
    if policy == Policy::Off {
        return Ok(Decision::Skip("policy off"));
    }
    let m: Marks = marks::marks(xml)?;
    if m.opted_out {
        return Ok(Decision::Skip("opted out"));
    }
    if m.handled {
        return Ok(Decision::Skip("already rewritten by prae"));
    }
    let r = domain::rewrite(xml, alloc)?;
    match policy {
        Policy::Enforce => Ok(Decision::Rewrite(r)),
        _ if m.advised => Ok(Decision::Skip("already advised")),
        _ => Ok(Decision::Annotate {
            xml: marks::annotate(xml, &alloc.provenance, &r.changes)?,
            changes: r.changes,
        }),
    }
}

/// What [`handle_domain`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub domain: String,
    /// rewritten, annotated, skipped.
    pub action: &'static str,
    pub detail: String,
}

/// Reads `name`'s persistent XML, decides and re-defines (blocking). A running domain that is
/// rewritten is also resized live where its maximums allow, and that is reported.
pub fn handle_domain(d: &Daemon, hv: &dyn Hypervisor, name: &str) -> Result<Outcome> {
    let policy = d.config().policy;
    let out = |action, detail: String| Outcome {
        domain: name.to_string(),
        action,
        detail,
    };
    if policy == Policy::Off {
        return Ok(out("skipped", "policy off".into()));
    }
    if let Some(p) = &d.config().intercept_prefix
        && !name.starts_with(p.as_str())
    {
        return Ok(out(
            "skipped",
            format!("name outside intercept_prefix '{p}'"),
        ));
    }
    let info = hv.domain_info(name)?;
    if !info.persistent {
        return Ok(out("skipped", "transient domain".into()));
    }
    let xml = hv.domain_xml(name, XmlKind::Inactive)?;
    let alloc = d.domain_allocation(name)?;
    match decide(&xml, policy, &alloc)? {
        Decision::Skip(why) => Ok(out("skipped", why.into())),
        Decision::Annotate { xml, changes } => {
            hv.define(&xml)?;
            d.metrics.interception(policy.as_str(), "annotated");
            Ok(out("annotated", describe(&changes)))
        }
        Decision::Rewrite(r) => {
            hv.define(&r.xml)?;
            d.metrics.interception(policy.as_str(), "rewritten");
            let mut detail = describe(&r.changes);
            if info.state == DomainState::Running {
                detail.push_str("; ");
                detail.push_str(&adjust_live(d, hv, name, &alloc));
            }
            Ok(out("rewritten", detail))
        }
    }
}

fn describe(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no change needed".into();
    }
    changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.what, c.from, c.to))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resizes a running domain towards `alloc` within its live maximums; says what it did.
fn adjust_live(d: &Daemon, hv: &dyn Hypervisor, name: &str, alloc: &Allocation) -> String {
    let live = match hv
        .domain_xml(name, XmlKind::Live)
        .and_then(|x| domain::parse(&x))
    {
        Ok(v) => v,
        Err(e) => return format!("running: not adjusted live ({e})"),
    };
    let mut notes = Vec::new();
    if let Some(want) = alloc.profile.vcpus
        && want != live.vcpus
    {
        if want <= live.max_vcpus {
            match hv.set_vcpus(name, want, Scope::Live) {
                Ok(()) => {
                    Metrics::inc(&d.metrics.live_adjustments);
                    notes.push(format!("live vcpus {} -> {want}", live.vcpus));
                }
                Err(e) => notes.push(format!("live vcpus kept ({e})")),
            }
        } else {
            notes.push(format!(
                "live vcpus kept at {} (maximum {} < {want}; applies at next boot)",
                live.vcpus, live.max_vcpus
            ));
        }
    }
    if let Some(want) = alloc
        .profile
        .current_memory_kib
        .or(alloc.profile.memory_kib)
    {
        let cur = live.current_memory_kib.unwrap_or(live.memory_kib);
        if want != cur {
            if want <= live.memory_kib {
                match hv.set_memory(name, want, Scope::Live) {
                    Ok(()) => {
                        Metrics::inc(&d.metrics.live_adjustments);
                        notes.push(format!("live memory {cur} KiB -> {want} KiB"));
                    }
                    Err(e) => notes.push(format!("live memory kept ({e})")),
                }
            } else {
                notes.push(format!(
                    "live memory kept at {cur} KiB (maximum {} KiB < {want} KiB; applies at next boot)",
                    live.memory_kib
                ));
            }
        }
    }
    if notes.is_empty() {
        "running: live allocation already matches".into()
    } else {
        format!("running: {}", notes.join(", "))
    }
}

fn log_outcome(o: &Outcome) {
    match o.action {
        "skipped" => log::debug!("domain '{}': skipped ({})", o.domain, o.detail),
        a => log::info!("domain '{}': {a} ({})", o.domain, o.detail),
    }
}

/// Handles one domain in a blocking task, logging the outcome.
async fn handle(d: &Arc<Daemon>, hv: &Arc<dyn Hypervisor>, name: String) {
    let (d2, hv2) = (d.clone(), hv.clone());
    let policy = d.config().policy.as_str();
    let r = tokio::task::spawn_blocking(move || {
        handle_domain(&d2, hv2.as_ref(), &name).map_err(|e| (name, e))
    })
    .await;
    match r {
        Ok(Ok(o)) => log_outcome(&o),
        // A domain undefined between its event and our look-up is not a failure.
        Ok(Err((name, Error::NotFound(_)))) => log::debug!("domain '{name}' is gone"),
        Ok(Err((name, e))) => {
            d.metrics.interception(policy, "failed");
            log::warn!("domain '{name}': not handled: {e}");
        }
        Err(e) => log::warn!("interception task failed: {e}"),
    }
}

/// Rescans every domain (after each (re)connection).
async fn rescan(d: &Arc<Daemon>, hv: &Arc<dyn Hypervisor>) -> Result<()> {
    let h = hv.clone();
    let list = tokio::task::spawn_blocking(move || h.list_domains())
        .await
        .map_err(|e| Error::Libvirt(format!("list task failed: {e}")))??;
    for info in list {
        handle(d, hv, info.name).await;
    }
    Ok(())
}

async fn connect(d: &Arc<Daemon>) -> Result<Arc<dyn Hypervisor>> {
    let d2 = d.clone();
    tokio::task::spawn_blocking(move || (d2.connector)())
        .await
        .map_err(|e| Error::Libvirt(format!("connect task failed: {e}")))?
}

/// Keeps a libvirt connection and intercepts domains until shutdown.
pub(super) async fn supervise(d: Arc<Daemon>, mut stop: watch::Receiver<bool>) {
    let period = Duration::from_secs(d.config().reconnect_s);
    let uri = d.config().uri.clone();
    let mut failures = 0u64;
    loop {
        if *stop.borrow() {
            return;
        }
        let hv = match connect(&d).await {
            Ok(hv) => hv,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(30) {
                    log::warn!(
                        "cannot connect to libvirt {uri} (attempt {failures}): {e}; retrying every {period:?}"
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(period) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        if failures > 0 {
            log::warn!("reconnected to libvirt {uri} after {failures} failed attempt(s)");
        } else {
            log::info!("connected to libvirt {uri}");
        }
        failures = 0;
        // Subscribe first, then rescan: a domain defined in between is seen twice, never lost.
        let h = hv.clone();
        let mut events = match tokio::task::spawn_blocking(move || h.lifecycle_events()).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                log::warn!("no lifecycle events from {uri} ({e}); relying on rescans");
                None
            }
            Err(e) => {
                log::warn!("event subscription task failed: {e}");
                None
            }
        };
        d.set_hypervisor(Some(hv.clone()));
        if d.config().policy != Policy::Off
            && let Err(e) = rescan(&d, &hv).await
        {
            log::warn!("rescan of {uri} failed: {e}");
        }
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => {
                    d.set_hypervisor(None);
                    return;
                }
                ev = async {
                    match events.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    match ev {
                        Some(ev) if matches!(ev.kind, LifecycleKind::Defined | LifecycleKind::Started)
                            && d.config().policy != Policy::Off => {
                            handle(&d, &hv, ev.domain).await;
                        }
                        Some(_) => {}
                        None => {
                            log::warn!("lifecycle events of {uri} ended; reconnecting");
                            break;
                        }
                    }
                }
                _ = tick.tick() => {
                    let h = hv.clone();
                    let alive = tokio::task::spawn_blocking(move || h.list_domains()).await;
                    if let Ok(Err(e)) | Err(e) = alive.map_err(|e| Error::Libvirt(e.to_string())) {
                        log::error!("lost the connection to libvirt {uri}: {e}; predictions are still served, reconnecting");
                        break;
                    }
                }
            }
        }
        d.set_hypervisor(None);
        Metrics::inc(&d.metrics.disconnects);
        drop(events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{PredictRequest, predict};
    use crate::model::Tier;

    const XML: &str = "<domain type='test'>\n  <name>d</name>\n  <memory unit='KiB'>524288</memory>\n  <vcpu>1</vcpu>\n  <os><type>hvm</type></os>\n</domain>\n";

    fn alloc() -> Allocation {
        predict(&PredictRequest {
            package: None,
            os: None,
            tier: Some(Tier::Medium),
            pinned: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn enforce_rewrites_once() {
        let Decision::Rewrite(r) = decide(XML, Policy::Enforce, &alloc()).unwrap() else {
            panic!("not rewritten");
        };
        assert!(r.xml.contains("urn:prae:allocation:1"));
        assert_eq!(
            decide(&r.xml, Policy::Enforce, &alloc()).unwrap(),
            Decision::Skip("already rewritten by prae")
        );
    }

    #[test]
    fn advise_records_and_changes_no_resource() {
        let Decision::Annotate { xml, changes } = decide(XML, Policy::Advise, &alloc()).unwrap()
        else {
            panic!("not annotated");
        };
        assert!(changes.iter().any(|c| c.what == "vcpu"), "{changes:?}");
        let before = domain::parse(XML).unwrap();
        let after = domain::parse(&xml).unwrap();
        assert_eq!(
            (before.vcpus, before.memory_kib),
            (after.vcpus, after.memory_kib)
        );
        assert!(xml.contains(marks::ADVICE_NS));
        assert_eq!(
            decide(&xml, Policy::Advise, &alloc()).unwrap(),
            Decision::Skip("already advised")
        );
        // Enforce still rewrites an advised domain.
        assert!(matches!(
            decide(&xml, Policy::Enforce, &alloc()).unwrap(),
            Decision::Rewrite(_)
        ));
    }

    #[test]
    fn opt_out_and_off_are_left_alone() {
        let opt = XML.replace(
            "</domain>",
            "  <metadata><p:policy xmlns:p='urn:prae:policy:1' mode='off'/></metadata>\n</domain>",
        );
        assert_eq!(
            decide(&opt, Policy::Enforce, &alloc()).unwrap(),
            Decision::Skip("opted out")
        );
        assert_eq!(
            decide(XML, Policy::Off, &alloc()).unwrap(),
            Decision::Skip("policy off")
        );
        assert!(decide("<nope/>", Policy::Enforce, &alloc()).is_err());
    }
}

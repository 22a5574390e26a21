//! The sampling loop: every `sample_interval_s`, node stats and all-domain stats are read from
//! libvirt; two consecutive readings of a domain become one per-interval sample
//! ([`crate::store::live::sample_between`]). Batches go through a bounded [`SampleQueue`] to a
//! writer thread that owns the store writes: when the store is slow and the queue is full, the
//! oldest batch is dropped and counted (`prae_sample_batches_dropped_total`), so memory stays
//! bounded and the newest data wins.

use super::metrics::{DomainGauge, Metrics};
use super::{Daemon, Usage, lock};
use crate::hypervisor::{DomainStats, Hypervisor};
use crate::model::UsageSample;
use crate::store::trace::Fields;
use crate::store::{SubjectKind, live};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// One domain's sample.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSample {
    pub domain: String,
    pub sample: UsageSample,
    pub fields: Fields,
}

/// A bounded queue of batches; full means the oldest batch is dropped.
#[derive(Debug)]
pub struct SampleQueue {
    inner: Mutex<(VecDeque<Vec<DomainSample>>, bool)>,
    ready: Condvar,
    capacity: usize,
}

impl SampleQueue {
    pub fn new(capacity: usize) -> Self {
        SampleQueue {
            inner: Mutex::new((VecDeque::with_capacity(capacity), false)),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Adds a batch; returns how many old batches were dropped to make room.
    pub fn push(&self, batch: Vec<DomainSample>) -> u64 {
        let mut g = lock(&self.inner);
        let mut dropped = 0;
        while g.0.len() >= self.capacity {
            g.0.pop_front();
            dropped += 1;
        }
        g.0.push_back(batch);
        self.ready.notify_one();
        dropped
    }

    /// Waits for a batch; `None` once closed and empty.
    pub fn pop(&self) -> Option<Vec<DomainSample>> {
        let mut g = lock(&self.inner);
        loop {
            if let Some(b) = g.0.pop_front() {
                return Some(b);
            }
            if g.1 {
                return None;
            }
            g = self.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// No more batches: the writer drains what is queued and stops.
    pub fn close(&self) {
        lock(&self.inner).1 = true;
        self.ready.notify_all();
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Turns a reading into samples against the previous readings (updated in place).
pub fn samples_from(
    prev: &mut BTreeMap<String, (DomainStats, i64)>,
    cur: Vec<DomainStats>,
    at: i64,
) -> Vec<DomainSample> {
    let mut out = Vec::new();
    let mut next = BTreeMap::new();
    for st in cur {
        if let Some((p, p_at)) = prev.get(&st.name)
            && let Some((s, f)) = live::sample_between(p, *p_at, &st, at)
        {
            out.push(DomainSample {
                domain: st.name.clone(),
                sample: s,
                fields: f,
            });
        }
        next.insert(st.name.clone(), (st, at));
    }
    *prev = next;
    out
}

fn write_batches(d: Arc<Daemon>, q: Arc<SampleQueue>) {
    let store = d.store();
    while let Some(batch) = q.pop() {
        let mut s = lock(&store);
        for ds in batch {
            let r = s
                .subject(SubjectKind::Domain, &ds.domain)
                .and_then(|id| s.append_fields(id, &[ds.sample], ds.fields));
            match r {
                Ok(n) => {
                    d.metrics
                        .samples_written
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => {
                    Metrics::inc(&d.metrics.sample_errors);
                    log::warn!("cannot store a sample of '{}': {e}", ds.domain);
                }
            }
        }
    }
}

type Reading = (Vec<DomainStats>, Result<(), String>);

fn read(hv: &dyn Hypervisor) -> crate::Result<Reading> {
    // Node stats are read so a broken host shows up; their values feed `status`.
    let node = hv
        .node_cpu_stats()
        .and(hv.node_memory_stats())
        .map(|_| ())
        .map_err(|e| e.to_string());
    Ok((hv.all_domain_stats()?, node))
}

/// Samples until shutdown, then drains the queue into the store.
pub(super) async fn run(d: Arc<Daemon>, mut stop: watch::Receiver<bool>) {
    let secs = d.config().sample_interval_s;
    if secs == 0 {
        return;
    }
    let q = Arc::new(SampleQueue::new(d.config().sample_queue));
    let writer = {
        let (d, q) = (d.clone(), q.clone());
        std::thread::Builder::new()
            .name("prae-sample-writer".into())
            .spawn(move || write_batches(d, q))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            log::error!("cannot start the sample writer: {e}; sampling is off");
            return;
        }
    };
    let period = Duration::from_secs(secs);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut prev: BTreeMap<String, (DomainStats, i64)> = BTreeMap::new();
    loop {
        let due = tokio::select! {
            t = tick.tick() => t,
            _ = stop.changed() => break,
        };
        let Some(hv) = d.hypervisor() else {
            // Counters restart with a new connection (and libvirtd): start over.
            prev.clear();
            continue;
        };
        let r = tokio::task::spawn_blocking(move || read(hv.as_ref())).await;
        let (stats, node) = match r {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                Metrics::inc(&d.metrics.sample_errors);
                log::warn!("cannot read domain stats: {e}");
                continue;
            }
            Err(e) => {
                log::warn!("sampling task failed: {e}");
                continue;
            }
        };
        if let Err(e) = node {
            log::debug!("node stats: {e}");
        }
        let at = now_unix();
        let batch = samples_from(&mut prev, stats, at);
        {
            let mut u = lock(&d.usage);
            u.retain(|k, _| prev.contains_key(k));
            for s in &batch {
                let cores = s.fields.contains(Fields::CPU_TIME).then(|| {
                    s.sample.cpu_time_ns as f64 / 1e9 / f64::from(s.sample.interval_s.max(1))
                });
                let mem = s
                    .fields
                    .contains(Fields::MEMORY)
                    .then_some(s.sample.memory_used_kib);
                u.insert(
                    s.domain.clone(),
                    Usage {
                        at,
                        cpu_cores: cores,
                        memory_used_kib: mem,
                    },
                );
            }
        }
        if !batch.is_empty() {
            let dropped = q.push(batch);
            if dropped > 0 {
                d.metrics
                    .sample_batches_dropped
                    .fetch_add(dropped, Ordering::Relaxed);
                log::warn!("the store is slow: dropped {dropped} sample batch(es)");
            }
        }
        d.metrics
            .set_sampling_lag(Instant::now().duration_since(due.into_std()).as_secs_f64());
    }
    q.close();
    let _ = tokio::task::spawn_blocking(move || writer.join()).await;
}

/// Per-domain gauges from the last samples and the current allocation (for `/metrics`).
pub(super) fn gauges(d: &Daemon) -> Vec<DomainGauge> {
    let usage = lock(&d.usage).clone();
    let Some(hv) = d.hypervisor() else {
        return Vec::new();
    };
    let Ok(list) = hv.list_domains() else {
        return Vec::new();
    };
    list.into_iter()
        .map(|i| {
            let u = usage.get(&i.name).copied().unwrap_or_default();
            let marks = hv
                .domain_xml(&i.name, crate::hypervisor::XmlKind::Inactive)
                .ok()
                .and_then(|x| super::marks::marks(&x).ok())
                .map_or("unknown", |m| m.label());
            DomainGauge {
                name: i.name,
                vcpus: i.vcpus,
                memory_kib: i.memory_kib,
                memory_used_kib: u.memory_used_kib,
                cpu_cores_used: u.cpu_cores,
                marks,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Vec<DomainSample> {
        vec![
            DomainSample {
                domain: format!("d{n}"),
                sample: UsageSample::default(),
                fields: Fields::default(),
            };
            1
        ]
    }

    #[test]
    fn a_full_queue_drops_the_oldest() {
        let q = SampleQueue::new(2);
        assert_eq!(q.push(batch(1)), 0);
        assert_eq!(q.push(batch(2)), 0);
        assert_eq!(q.push(batch(3)), 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().unwrap()[0].domain, "d2");
        q.close();
        assert_eq!(q.pop().unwrap()[0].domain, "d3");
        assert!(q.pop().is_none());
    }

    #[test]
    fn samples_need_two_readings() {
        let st = |cpu| DomainStats {
            name: "a".into(),
            cpu_time_ns: Some(cpu),
            ..Default::default()
        };
        let mut prev = BTreeMap::new();
        assert!(samples_from(&mut prev, vec![st(1_000)], 10).is_empty());
        let s = samples_from(&mut prev, vec![st(3_000)], 12);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].sample.cpu_time_ns, 2_000);
        assert_eq!(s[0].sample.interval_s, 2);
        // A domain that vanished is forgotten.
        assert!(samples_from(&mut prev, vec![], 14).is_empty());
        assert!(prev.is_empty());
    }
}

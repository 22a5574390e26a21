//! Counters and gauges, rendered as Prometheus text (exposition format 0.0.4) at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The daemon's counters. Cheap to bump from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    pub predictions: AtomicU64,
    pub connected: AtomicU64,
    pub disconnects: AtomicU64,
    pub samples_written: AtomicU64,
    pub sample_batches_dropped: AtomicU64,
    pub sample_errors: AtomicU64,
    pub live_adjustments: AtomicU64,
    /// Seconds between the scheduled and the finished sample, as f64 bits.
    sampling_lag: AtomicU64,
    requests: Mutex<BTreeMap<u16, u64>>,
    /// (policy, action) -> count.
    interceptions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    pub fn request(&self, status: u16) {
        *lock(&self.requests).entry(status).or_default() += 1;
    }
    pub fn interception(&self, policy: &'static str, action: &'static str) {
        *lock(&self.interceptions)
            .entry((policy, action))
            .or_default() += 1;
    }
    pub fn interceptions(&self, policy: &'static str, action: &'static str) -> u64 {
        lock(&self.interceptions)
            .get(&(policy, action))
            .copied()
            .unwrap_or(0)
    }
    pub fn set_sampling_lag(&self, s: f64) {
        self.sampling_lag.store(s.to_bits(), Ordering::Relaxed);
    }
    pub fn sampling_lag(&self) -> f64 {
        f64::from_bits(self.sampling_lag.load(Ordering::Relaxed))
    }
}

/// Per-domain gauges for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DomainGauge {
    pub name: String,
    pub vcpus: u32,
    pub memory_kib: u64,
    pub memory_used_kib: Option<u64>,
    pub cpu_cores_used: Option<f64>,
    pub marks: &'static str,
}

/// Escapes a label value (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text.
pub fn render(
    m: &Metrics,
    policy: &str,
    builds: &BTreeMap<&'static str, u64>,
    domains: &[DomainGauge],
) -> String {
    let mut o = String::with_capacity(2048 + domains.len() * 400);
    let ld = |c: &AtomicU64| c.load(Ordering::Relaxed);
    family(&mut o, "prae_up", "gauge", "1 while the daemon serves.");
    let _ = writeln!(o, "prae_up{{policy=\"{}\"}} 1", label(policy));
    family(
        &mut o,
        "prae_libvirt_connected",
        "gauge",
        "1 while libvirt is connected.",
    );
    let _ = writeln!(o, "prae_libvirt_connected {}", ld(&m.connected));
    family(
        &mut o,
        "prae_libvirt_disconnects_total",
        "counter",
        "Connections to libvirt lost.",
    );
    let _ = writeln!(o, "prae_libvirt_disconnects_total {}", ld(&m.disconnects));
    family(
        &mut o,
        "prae_predictions_total",
        "counter",
        "Predictions served.",
    );
    let _ = writeln!(o, "prae_predictions_total {}", ld(&m.predictions));
    family(
        &mut o,
        "prae_requests_total",
        "counter",
        "API requests by HTTP status.",
    );
    for (s, n) in lock(&m.requests).iter() {
        let _ = writeln!(o, "prae_requests_total{{status=\"{s}\"}} {n}");
    }
    family(
        &mut o,
        "prae_interceptions_total",
        "counter",
        "Domains defined by other clients, by policy and what prae did.",
    );
    for ((p, a), n) in lock(&m.interceptions).iter() {
        let _ = writeln!(
            o,
            "prae_interceptions_total{{policy=\"{p}\",action=\"{a}\"}} {n}"
        );
    }
    family(
        &mut o,
        "prae_live_adjustments_total",
        "counter",
        "Running domains resized live.",
    );
    let _ = writeln!(o, "prae_live_adjustments_total {}", ld(&m.live_adjustments));
    family(
        &mut o,
        "prae_builds",
        "gauge",
        "Image builds requested through the API, by state.",
    );
    for (s, n) in builds {
        let _ = writeln!(o, "prae_builds{{state=\"{s}\"}} {n}");
    }
    family(
        &mut o,
        "prae_sampling_lag_seconds",
        "gauge",
        "Delay of the last sample after its tick.",
    );
    let _ = writeln!(o, "prae_sampling_lag_seconds {}", m.sampling_lag());
    family(
        &mut o,
        "prae_samples_written_total",
        "counter",
        "Domain samples written to the store.",
    );
    let _ = writeln!(o, "prae_samples_written_total {}", ld(&m.samples_written));
    family(
        &mut o,
        "prae_sample_batches_dropped_total",
        "counter",
        "Sample batches dropped (oldest first) because the store was slow.",
    );
    let _ = writeln!(
        o,
        "prae_sample_batches_dropped_total {}",
        ld(&m.sample_batches_dropped)
    );
    family(
        &mut o,
        "prae_sample_errors_total",
        "counter",
        "Failed stats readings or store writes.",
    );
    let _ = writeln!(o, "prae_sample_errors_total {}", ld(&m.sample_errors));
    family(
        &mut o,
        "prae_domain_vcpus",
        "gauge",
        "vCPUs allocated to a domain.",
    );
    for d in domains {
        let _ = writeln!(
            o,
            "prae_domain_vcpus{{domain=\"{}\",prae=\"{}\"}} {}",
            label(&d.name),
            d.marks,
            d.vcpus
        );
    }
    family(
        &mut o,
        "prae_domain_memory_kib",
        "gauge",
        "Memory allocated to a domain, KiB.",
    );
    for d in domains {
        let _ = writeln!(
            o,
            "prae_domain_memory_kib{{domain=\"{}\"}} {}",
            label(&d.name),
            d.memory_kib
        );
    }
    family(
        &mut o,
        "prae_domain_memory_used_kib",
        "gauge",
        "Memory a domain uses, KiB (last sample).",
    );
    for d in domains {
        if let Some(u) = d.memory_used_kib {
            let _ = writeln!(
                o,
                "prae_domain_memory_used_kib{{domain=\"{}\"}} {u}",
                label(&d.name)
            );
        }
    }
    family(
        &mut o,
        "prae_domain_cpu_cores_used",
        "gauge",
        "CPU cores a domain used (last sample).",
    );
    for d in domains {
        if let Some(u) = d.cpu_cores_used {
            let _ = writeln!(
                o,
                "prae_domain_cpu_cores_used{{domain=\"{}\"}} {u}",
                label(&d.name)
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_and_escapes_labels() {
        let m = Metrics::default();
        Metrics::inc(&m.predictions);
        m.request(200);
        m.interception("enforce", "rewritten");
        let mut b = BTreeMap::new();
        b.insert("running", 1);
        let d = DomainGauge {
            name: "a\"b".into(),
            vcpus: 2,
            memory_kib: 1024,
            memory_used_kib: Some(512),
            cpu_cores_used: None,
            marks: "rewritten",
        };
        let t = render(&m, "enforce", &b, &[d]);
        assert!(t.contains("prae_predictions_total 1\n"));
        assert!(t.contains("prae_requests_total{status=\"200\"} 1\n"));
        assert!(
            t.contains("prae_interceptions_total{policy=\"enforce\",action=\"rewritten\"} 1\n")
        );
        assert!(t.contains("prae_builds{state=\"running\"} 1\n"));
        assert!(t.contains("prae_domain_vcpus{domain=\"a\\\"b\",prae=\"rewritten\"} 2\n"));
        assert!(t.contains("prae_domain_memory_used_kib{domain=\"a\\\"b\"} 512\n"));
        assert!(!t.contains("prae_domain_cpu_cores_used{"));
        // Every sample line belongs to a declared family.
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(t.contains(&format!("# TYPE {name} ")), "{line}");
        }
    }
}

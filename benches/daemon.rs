//! Daemon benchmarks (a script-style harness, not criterion: both parts need side-by-side
//! rounds against a reference, measured in one run).
//!
//! 1. `predict`: predictions per second through the API (HTTP over the Unix socket, one
//!    connection per request, as `curl --unix-socket` does) with p50/p99 latency, from
//!    `CLIENTS` client threads; side by side with `engine::predict` called in process (the
//!    floor). Target: p99 under 10 ms on 2 cores. Always runs (test driver).
//! 2. `define`: `prae-virsh define` against plain `virsh define` of the same domains on the lab
//!    libvirtd (`qemu:///system`), interleaved one by one so both see the same load. Target:
//!    prae-virsh at most 1.2x virsh (median). Runs with `PRAE_LAB=1` and `PRAE_LAB_GUEST`.
//!
//! Run: `cargo bench --bench daemon` (`PRAE_BENCH_REQUESTS`, default 4000 per client).
//! Results are printed and written to `benches/results/daemon.json`.

#[path = "../tests/daemon/harness.rs"]
mod harness;

use prae::daemon::{Config, Policy, Request, api::PredictBody, client};
use prae::engine::{PredictRequest, predict};
use prae::model::Tier;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const CLIENTS: usize = 2;

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn bench_predict() -> serde_json::Value {
    let n: usize = std::env::var("PRAE_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let c = Config {
        policy: Policy::Off,
        sample_interval_s: 0,
        ..Config::default()
    };
    let d = harness::start(c, harness::test_driver(), None, false);
    let req = Request::Predict(PredictBody {
        package: Some("nginx".into()),
        os: Some("debian12".into()),
        tier: Some(Tier::Low),
        ..Default::default()
    });
    // Warm up.
    for _ in 0..200 {
        assert_eq!(client::call(&d.socket, &req).unwrap().status, 200);
    }
    let started = Instant::now();
    let lats: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (sock, req) = (d.socket.clone(), req.clone());
                s.spawn(move || {
                    let mut v = Vec::with_capacity(n);
                    for _ in 0..n {
                        let t = Instant::now();
                        let r = client::call(&sock, &req).unwrap();
                        v.push(t.elapsed());
                        assert_eq!(r.status, 200, "{}", r.body);
                    }
                    v
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut sorted = lats;
    sorted.sort();
    let total = sorted.len();
    // The floor: the engine in process, same request.
    let pr = PredictRequest {
        package: Some("nginx".into()),
        os: Some("debian12".into()),
        tier: Some(Tier::Low),
        pinned: Default::default(),
    };
    let t = Instant::now();
    for _ in 0..total {
        std::hint::black_box(predict(std::hint::black_box(&pr)).unwrap());
    }
    let direct = total as f64 / t.elapsed().as_secs_f64();
    let rps = total as f64 / wall;
    let (p50, p99) = (pct(&sorted, 0.50), pct(&sorted, 0.99));
    println!(
        "predict: {total} requests from {CLIENTS} clients in {wall:.2} s: {rps:.0} req/s, \
         p50 {p50:.3} ms, p99 {p99:.3} ms, max {:.3} ms (target p99 < 10 ms); \
         engine in process {direct:.0} /s (API is {:.0}x slower than the engine alone); load {}",
        sorted[total - 1].as_secs_f64() * 1e3,
        direct / rps,
        uptime()
    );
    d.stop().unwrap();
    serde_json::json!({"requests": total, "clients": CLIENTS, "requests_per_s": rps,
        "p50_ms": p50, "p99_ms": p99, "max_ms": sorted[total - 1].as_secs_f64() * 1e3,
        "engine_in_process_per_s": direct, "load": uptime()})
}

fn domain_xml(name: &str, guest: &Path) -> String {
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n  \
         <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n    \
         <kernel>{k}</kernel>\n    <initrd>{i}</initrd>\n    <cmdline>console=ttyS0</cmdline>\n  </os>\n  \
         <devices>\n    <serial type='pty'/>\n  </devices>\n</domain>\n",
        k = guest.join("vmlinuz").display(),
        i = guest.join("initrd.img").display(),
    )
}

fn timed(prog: &str, file: &Path) -> Duration {
    let t = Instant::now();
    let o = Command::new(prog)
        .args(["-q", "-c", "qemu:///system", "define"])
        .arg(file)
        .output()
        .unwrap();
    let e = t.elapsed();
    assert!(
        o.status.success(),
        "{prog}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    e
}

fn undefine(name: &str) {
    let _ = Command::new("virsh")
        .args(["-q", "-c", "qemu:///system", "undefine", name])
        .output();
}

fn bench_define() -> Option<serde_json::Value> {
    if std::env::var("PRAE_LAB").as_deref() != Ok("1") {
        println!("define: skipped (set PRAE_LAB=1 and PRAE_LAB_GUEST)");
        return None;
    }
    let guest = PathBuf::from(std::env::var_os("PRAE_LAB_GUEST").expect("PRAE_LAB_GUEST"));
    let rounds = 30;
    let dir = tempfile::tempdir().unwrap();
    let tag = std::process::id();
    let (mut plain, mut prae) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        for (who, out) in [("virsh", &mut plain), ("prae", &mut prae)] {
            let name = format!("prae-dmn-bench-{who}-{tag}-{i}");
            let f = dir.path().join(format!("{name}.xml"));
            std::fs::write(&f, domain_xml(&name, &guest)).unwrap();
            let prog = if who == "virsh" {
                "virsh".to_string()
            } else {
                env!("CARGO_BIN_EXE_prae-virsh").to_string()
            };
            out.push(timed(&prog, &f));
            undefine(&name);
        }
    }
    plain.sort();
    prae.sort();
    let med = |v: &[Duration]| v[v.len() / 2].as_secs_f64() * 1e3;
    let ratio = med(&prae) / med(&plain);
    println!(
        "define: {rounds} domains each, interleaved: virsh median {:.1} ms, prae-virsh median \
         {:.1} ms, ratio {ratio:.3} (target <= 1.2); load {}",
        med(&plain),
        med(&prae),
        uptime()
    );
    Some(
        serde_json::json!({"rounds": rounds, "virsh_median_ms": med(&plain),
        "prae_virsh_median_ms": med(&prae), "ratio": ratio, "load": uptime()}),
    )
}

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let p = bench_predict();
    let d = bench_define();
    let out = serde_json::json!({"predict": p, "define": d});
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results/daemon.json");
    if let Err(e) = std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap() + "\n") {
        eprintln!("cannot write {}: {e}", path.display());
    }
}

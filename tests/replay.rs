//! `prae replay`: the binary end to end on real calibration traces and on every bad input.

#[path = "common/bin.rs"]
mod bin;

use bin::{fails, prae, write};
use std::path::{Path, PathBuf};

fn traces() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration/traces")
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Rows of an output CSV: (series, step, allocation).
fn rows(path: &str) -> Vec<(String, usize, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("series,step,allocation"));
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            assert_eq!(c.len(), 3, "{l}");
            (
                c[0].to_string(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
            )
        })
        .collect()
}

fn nab_lines(n: usize) -> String {
    let mut s = String::from("timestamp,value\n");
    for i in 0..n {
        let (h, m) = (i / 12, (i % 12) * 5);
        s.push_str(&format!(
            "2014-02-{:02} {:02}:{m:02}:00,{}\n",
            14 + h / 24,
            h % 24,
            10 + (i * 7) % 13
        ));
    }
    s
}

#[test]
fn nab_cpu_one_row_per_step_after_the_warmup() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out.csv");
    let out = out.to_str().unwrap();
    let a = traces().join("nab-aws/ec2_cpu_utilization_24ae8d.csv");
    let b = traces().join("nab-aws/rds_cpu_utilization_e47b3b.csv");
    let o = prae(&[
        "replay",
        "--trace",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "nab",
        "--resource",
        "cpu",
        "--tier",
        "high",
        "--output",
        out,
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("relative slack") && err.contains("violation rate"),
        "{err}"
    );
    let r = rows(out);
    let len = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count() - 1;
    let (na, nb) = (len(&a), len(&b));
    assert_eq!(r.len(), (na - 288) + (nb - 288));
    assert_eq!(r[0].0, "ec2_cpu_utilization_24ae8d.csv");
    assert_eq!(r[0].1, 288);
    assert_eq!(r[na - 288 - 1].1, na - 1);
    assert_eq!(r[na - 288].0, "rds_cpu_utilization_e47b3b.csv");
    // Held for 12 steps (the default window), re-decided on the 13th.
    assert!(r[..12].iter().all(|x| x.2 == r[0].2));
    assert!(r.iter().all(|x| x.2.is_finite() && x.2 >= 0.0));
}

#[test]
fn bitbrains_memory_with_window_warmup_and_baselines() {
    let d = tempfile::tempdir().unwrap();
    let vm = traces().join("bitbrains-rnd/2013-7-vm1.csv.gz");
    let mut outs = Vec::new();
    for policy in ["prae", "static", "vpa", "bound"] {
        let out = d.path().join(format!("{policy}.csv"));
        let out = out.to_str().unwrap().to_string();
        let o = prae(&[
            "replay",
            "--trace",
            vm.to_str().unwrap(),
            "--format",
            "bitbrains",
            "--resource",
            "memory",
            "--tier",
            "low",
            "--window",
            "1",
            "--warmup",
            "7900",
            "--policy",
            policy,
            "--output",
            &out,
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = rows(&out);
        assert_eq!(r[0].1, 7900);
        outs.push(r);
    }
    assert!(outs.iter().all(|r| r.len() == outs[0].len()));
    // Static never changes; the bound at window 1 is the usage itself, which prae and VPA
    // do not copy.
    assert!(outs[1].iter().all(|x| x.2 == outs[1][0].2));
    assert!(outs[0].iter().zip(&outs[3]).any(|(p, b)| p.2 != b.2));
    assert!(outs[2].iter().zip(&outs[3]).any(|(v, b)| v.2 != b.2));
}

#[test]
fn tier_config_file_is_read_and_checked() {
    let d = tempfile::tempdir().unwrap();
    let trace = write(&d, "ec2_cpu_utilization_t.csv", &nab_lines(400));
    let out = d.path().join("o.csv");
    let out = out.to_str().unwrap();
    let args = |tiers: &str| -> Vec<String> {
        [
            "replay",
            "--trace",
            &trace,
            "--format",
            "nab",
            "--resource",
            "cpu",
            "--tier",
            "low",
            "--tiers",
            tiers,
            "--output",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |tiers: &str| prae(&strs(&args(tiers)));
    let loose = write(&d, "loose.toml", "[tiers.low]\nquantile = 0.5\n");
    assert!(run(&loose).status.success());
    let low_half: f64 = rows(out).iter().map(|r| r.2).sum();
    let tight = write(
        &d,
        "tight.toml",
        "[tiers.low]\nquantile = 0.9\nheadroom = 0.5\n",
    );
    assert!(run(&tight).status.success());
    let tight_sum: f64 = rows(out).iter().map(|r| r.2).sum();
    assert!(tight_sum > low_half, "{tight_sum} vs {low_half}");
    let bad = write(&d, "bad.toml", "[tiers.low]\nquantile = 2\n");
    let e = fails(&strs(&args(&bad)));
    assert!(e.contains("bad.toml: tier config: low quantile 2"), "{e}");
}

#[test]
fn bad_inputs_get_one_clear_line() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o.csv");
    let out = out.to_str().unwrap();
    let good = write(&d, "ec2_cpu_utilization_g.csv", &nab_lines(300));
    let base = |trace: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "replay",
            "--trace",
            trace,
            "--format",
            "nab",
            "--resource",
            "cpu",
            "--tier",
            "medium",
            "--output",
            out,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |args: Vec<String>| fails(&strs(&args));
    // Empty file, header only, malformed line.
    let empty = write(&d, "ec2_cpu_utilization_e.csv", "");
    assert!(run(base(&empty, &[])).ends_with("ec2_cpu_utilization_e.csv: no samples"));
    let header = write(&d, "ec2_cpu_utilization_h.csv", "timestamp,value\n");
    assert!(run(base(&header, &[])).ends_with(": no samples"));
    let bad = write(
        &d,
        "ec2_cpu_utilization_b.csv",
        "timestamp,value\n2014-02-14 00:00:00,1\n2014-02-14 00:05:00,lots\n",
    );
    let e = run(base(&bad, &[]));
    assert!(
        e.ends_with("ec2_cpu_utilization_b.csv:3: value 'lots' is not a non-negative number"),
        "{e}"
    );
    // Missing file.
    let e = run(base("/nonexistent/ec2_cpu_utilization_x.csv", &[]));
    assert!(e.contains("ec2_cpu_utilization_x.csv"), "{e}");
    // Window 0, warm-up 0, warm-up longer than the trace.
    assert!(run(base(&good, &["--window", "0"])).starts_with("prae: window 0"));
    assert!(run(base(&good, &["--warmup", "0"])).starts_with("prae: warmup 0"));
    let e = run(base(&good, &["--warmup", "300"]));
    assert!(
        e.contains("no trace is longer than the warm-up of 300 samples"),
        "{e}"
    );
    // A resource the format does not have, a NAB file that is not CPU.
    let mut a = base(&good, &[]);
    a[6] = "memory".into();
    assert!(run(a).contains("nab traces carry no memory usage"));
    let net = write(&d, "ec2_network_in_n.csv", &nab_lines(300));
    assert!(run(base(&net, &[])).contains("holds net_rx_bytes, not CPU usage"));
    // Nothing was written by any failure.
    assert!(!Path::new(out).exists());
}

#[test]
fn unknown_format_resource_and_tier_are_named() {
    for (flag, value, says) in [
        ("--format", "google", "unknown trace format 'google'"),
        ("--resource", "disk", "unknown resource 'disk'"),
        ("--tier", "extreme", "unknown tier 'extreme'"),
    ] {
        let mut args = vec![
            "replay",
            "--trace",
            "x.csv",
            "--format",
            "nab",
            "--resource",
            "cpu",
            "--tier",
            "low",
            "--output",
            "o.csv",
        ];
        let i = args.iter().position(|a| *a == flag).unwrap();
        args[i + 1] = value;
        let o = prae(&args);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.lines().next().unwrap().contains(says), "{err}");
    }
}

#[test]
fn a_short_trace_among_long_ones_is_named_and_skipped() {
    let d = tempfile::tempdir().unwrap();
    let long = write(&d, "ec2_cpu_utilization_l.csv", &nab_lines(320));
    let short = write(&d, "ec2_cpu_utilization_s.csv", &nab_lines(100));
    let out = d.path().join("o.csv");
    let o = prae(&[
        "replay",
        "--trace",
        &long,
        &short,
        "--format",
        "nab",
        "--resource",
        "cpu",
        "--tier",
        "low",
        "--output",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: ec2_cpu_utilization_s.csv is not longer than the warm-up"),
        "{err}"
    );
    let r = rows(out.to_str().unwrap());
    assert_eq!(r.len(), 32);
    assert!(r.iter().all(|x| x.0 == "ec2_cpu_utilization_l.csv"));
}

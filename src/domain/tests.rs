use super::*;
use crate::model::{BandwidthLimit, DiskBus, Provenance, ResourceProfile, StorageClass, Tier};

fn alloc(profile: ResourceProfile) -> Allocation {
    Allocation {
        profile,
        provenance: Provenance {
            reason: "test".into(),
            tier: Some(Tier::Medium),
            sources: Vec::new(),
        },
    }
}

fn full(bus: DiskBus) -> ResourceProfile {
    ResourceProfile {
        vcpus: Some(2),
        max_vcpus: Some(4),
        memory_kib: Some(2 * 1024 * 1024),
        current_memory_kib: Some(1024 * 1024),
        storage: Some(StorageClass::Ssd),
        disk_bus: Some(bus),
        disk_iotune: Some(IoTune {
            total_bytes_sec: Some(100_000_000),
            read_iops_sec: Some(2000),
            write_iops_sec: Some(1000),
            ..IoTune::default()
        }),
        bandwidth: Some(Bandwidth {
            inbound: Some(BandwidthLimit {
                average: 1000,
                peak: Some(2000),
                burst: Some(1000),
            }),
            outbound: None,
        }),
    }
}

/// Runs over the libvirt corpus when `PRAE_CORPUS` names its directory; with `PRAE_CORPUS_OUT`
/// set, writes each rewritten file there for external validation.
#[test]
#[ignore]
fn corpus_smoke() {
    let Ok(dir) = std::env::var("PRAE_CORPUS") else {
        return;
    };
    let out = std::env::var("PRAE_CORPUS_OUT").ok();
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let (mut parsed, mut rewritten, mut changed, mut errs) = (0, 0, 0, 0);
    let mut reasons = std::collections::BTreeMap::<String, usize>::new();
    for (n, f) in files.iter().enumerate() {
        let xml = std::fs::read_to_string(f).unwrap();
        if parse(&xml).is_ok() {
            parsed += 1;
        }
        let bus = [DiskBus::Virtio, DiskBus::Scsi, DiskBus::Sata][n % 3];
        let a = alloc(full(bus));
        match rewrite(&xml, &a) {
            Ok(r) => {
                rewritten += 1;
                if !r.changes.is_empty() {
                    changed += 1;
                }
                for s in &r.skipped {
                    *reasons.entry(s.reason.clone()).or_default() += 1;
                }
                let again = rewrite(&r.xml, &a).unwrap();
                assert_eq!(again.xml, r.xml, "not idempotent: {}", f.display());
                assert!(
                    again.changes.is_empty(),
                    "{}: {:?}",
                    f.display(),
                    again.changes
                );
                let back = revert(&r.xml).unwrap();
                assert_eq!(back.xml, xml, "revert differs: {}", f.display());
                parse(&r.xml).unwrap();
                if let Some(o) = &out {
                    let name = f.to_string_lossy().replace('/', "_");
                    std::fs::write(format!("{o}/{name}"), &r.xml).unwrap();
                }
            }
            Err(e) => {
                errs += 1;
                *reasons.entry(format!("ERROR {e}")).or_default() += 1;
            }
        }
    }
    eprintln!(
        "files {} parsed {parsed} rewritten {rewritten} changed {changed} errors {errs}",
        files.len()
    );
    for (r, n) in reasons {
        eprintln!("{n:5} {r}");
    }
}

/// Throughput against a plain quick-xml read-then-write pass (`PRAE_CORPUS`, release build).
#[test]
#[ignore]
fn corpus_speed() {
    let Ok(dir) = std::env::var("PRAE_CORPUS") else {
        return;
    };
    let mut docs = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                docs.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    let a = alloc(full(DiskBus::Virtio));
    let mut n = 0usize;
    let reps = 20;
    let time = |name: &str, f: &mut dyn FnMut(&str) -> usize| {
        let t = std::time::Instant::now();
        let mut n = 0;
        for _ in 0..reps {
            for d in &docs {
                n += f(d);
            }
        }
        let e = t.elapsed();
        eprintln!("{name:12} {e:?} ({n})");
        e
    };
    if std::env::var("PRAE_ONLY_REWRITE").is_ok() {
        time("rewrite", &mut |d| rewrite(d, &a).map(|r| r.xml.len()).unwrap_or(0));
        return;
    }
    let plain = time("plain", &mut |d| {
        let mut r = quick_xml::Reader::from_str(d);
        let mut w = quick_xml::Writer::new(Vec::with_capacity(d.len()));
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) | Err(_) => break,
                Ok(e) => w.write_event(e).unwrap(),
            }
        }
        w.into_inner().len()
    });
    time("index", &mut |d| xml::Doc::parse(d).map(|r| r.elems.len()).unwrap_or(0));
    time("layout", &mut |d| {
        xml::Doc::parse(d)
            .ok()
            .and_then(|x| view::Layout::find(&x).ok())
            .map(|l| l.disks.len())
            .unwrap_or(0)
    });
    time("parse", &mut |d| parse(d).map(|r| r.disks.len()).unwrap_or(0));
    let empty = alloc(ResourceProfile::default());
    time("rewrite0", &mut |d| rewrite(d, &empty).map(|r| r.xml.len()).unwrap_or(0));
    let ours = time("rewrite", &mut |d| rewrite(d, &a).map(|r| r.xml.len()).unwrap_or(0));
    n += 1;
    eprintln!("ratio {:.2} ({n})", ours.as_secs_f64() / plain.as_secs_f64());
}

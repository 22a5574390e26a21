//! The history store on real files: migrations and re-open, refusals (newer schema, foreign or
//! corrupt files), idempotent import of the calibration traces, gap reporting, CSV export round
//! trip, the `prae history` CLI, and a real SIGKILL in the middle of an import.
//!
//! Uses `calibration/traces/` (shipped with the repository). Where the shared trace collection
//! (`../shared/traces` beside the repository) is present, `shared_bitbrains_import_cleanly`
//! also imports its files; it says so when it skips them.

use prae::model::UsageSample;
use prae::store::{
    self, Field, Store, SubjectKind, TraceFormat, current_version, parse_export_line,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn traces(sub: &str) -> PathBuf {
    root().join("calibration/traces").join(sub)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with("LICENSE") && !n.ends_with(".md")
        })
        .collect();
    v.sort();
    v
}

fn prae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prae"))
        .args(args)
        .env_remove("PRAE_DB")
        .output()
        .expect("run prae")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Polls `cond` until it holds or `limit` passes; returns whether it held.
fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

#[test]
fn file_database_is_wal_and_migrates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/prae.db");
    {
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), current_version());
        let id = s.subject(SubjectKind::Domain, "web1").unwrap();
        s.append_samples(
            id,
            &[UsageSample {
                timestamp: 1,
                interval_s: 5,
                ..Default::default()
            }],
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    let mode: String = s
        .connection()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = s
        .connection()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 1, "synchronous=NORMAL between durable writes");
    assert_eq!(s.schema_version().unwrap(), current_version());
    assert_eq!(s.subjects().unwrap()[0].samples, 1);
    s.check_integrity().unwrap();
}

#[test]
fn newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prae.db");
    drop(Store::open(&path).unwrap());
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = Store::open(&path).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "store: {}: schema version 99 is newer than this prae supports ({}); use a newer \
             prae or another --db",
            path.display(),
            current_version()
        )
    );
    let c = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99);
}

#[test]
fn non_sqlite_foreign_and_corrupt_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "this is a text file, not a database\n").unwrap();
    let e = Store::open(&junk).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("store: {}: not an SQLite database", junk.display())
    );
    assert_eq!(
        std::fs::read_to_string(&junk).unwrap(),
        "this is a text file, not a database\n",
        "the file is left as it was"
    );

    let short = dir.path().join("short.db");
    std::fs::write(&short, "SQLite").unwrap();
    assert!(Store::open(&short).is_err());

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let e = Store::open(&foreign).unwrap_err().to_string();
    assert!(e.contains("another application"), "{e}");

    // A real prae database with its pages after the first overwritten.
    let bad = dir.path().join("corrupt.db");
    {
        let mut s = Store::open(&bad).unwrap();
        s.import_trace(
            TraceFormat::Nab,
            &traces("nab-aws/ec2_cpu_utilization_24ae8d.csv"),
        )
        .unwrap();
        s.connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let mut bytes = std::fs::read(&bad).unwrap();
    assert!(bytes.len() > 8192);
    for (i, b) in bytes[4096..].iter_mut().enumerate() {
        *b = (i * 7 + 3) as u8;
    }
    std::fs::write(&bad, &bytes).unwrap();
    let outcome = Store::open(&bad).and_then(|s| {
        s.check_integrity()?;
        s.subjects()
    });
    let e = outcome
        .expect_err("a corrupt database is reported")
        .to_string();
    assert!(e.starts_with(&format!("store: {}", bad.display())), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn bitbrains_imports_idempotently_with_its_gaps() {
    let mut s = Store::in_memory().unwrap();
    let vm1 = traces("bitbrains-rnd/2013-7-vm1.csv.gz");
    let r = s.import_trace(TraceFormat::Bitbrains, &vm1).unwrap();
    assert_eq!(r.subject, "bitbrains/2013-7-vm1.csv.gz");
    assert_eq!((r.rows, r.inserted, r.skipped), (8260, 8260, 0));
    assert_eq!(r.fields.len(), 7);
    let gaps: Vec<i64> = r.continuity.gaps.iter().map(|g| g.seconds()).collect();
    assert_eq!(gaps, [110_414, 600, 600, 3300]);
    assert_eq!(r.continuity.first, Some(1_372_629_804));
    assert_eq!((r.continuity.duplicates, r.continuity.out_of_order), (0, 0));

    let again = s.import_trace(TraceFormat::Bitbrains, &vm1).unwrap();
    assert_eq!((again.inserted, again.skipped), (0, 8260));
    assert_eq!(again.continuity, r.continuity);

    let id = s
        .find_subject(SubjectKind::Trace, "bitbrains/2013-7-vm1.csv.gz")
        .unwrap()
        .unwrap();
    assert_eq!(s.sample_count(id).unwrap(), 8260);
    // The first row: 87.78 MHz of 2 cores at 2926 MHz, 1034592.8 KB used, 1.5 %.
    let first = s.samples(id, ..1_372_629_805).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].memory_used_kib, 1_034_593);
    assert_eq!(first[0].cpu_percent, Some(1.5));
    let cores = s.series(id, Field::CpuCores).unwrap();
    assert_eq!(cores.len(), 8260);
    assert!((cores[0] - 87.7799835 / (5851.9989 / 2.0)).abs() < 1e-9);
    assert_eq!(s.series(id, Field::Memory).unwrap().len(), 8260);

    for f in files(&traces("bitbrains-rnd")) {
        let r = s.import_trace(TraceFormat::Bitbrains, &f).unwrap();
        assert!(r.rows > 8000, "{}: {} rows", f.display(), r.rows);
        let again = s.import_trace(TraceFormat::Bitbrains, &f).unwrap();
        assert_eq!(again.inserted, 0, "{}", f.display());
    }
    assert_eq!(s.subjects().unwrap().len(), 20);
}

#[test]
fn nab_imports_idempotently_into_the_named_field() {
    let mut s = Store::in_memory().unwrap();
    let all = files(&traces("nab-aws"));
    assert_eq!(all.len(), 17);
    for f in &all {
        let r = s.import_trace(TraceFormat::Nab, f).unwrap();
        assert_eq!(
            r.inserted + r.continuity.duplicates,
            r.rows,
            "{}",
            f.display()
        );
        let again = s.import_trace(TraceFormat::Nab, f).unwrap();
        assert_eq!(
            (again.inserted, again.skipped),
            (0, r.rows),
            "{}",
            f.display()
        );
    }
    let key = |n: &str| {
        s.find_subject(SubjectKind::Trace, &format!("nab/{n}"))
            .unwrap()
            .unwrap()
    };
    let cpu = key("ec2_cpu_utilization_24ae8d.csv");
    let v = s.series(cpu, Field::CpuPercent).unwrap();
    assert_eq!((v.len(), v[0], v[1]), (4032, 0.132, 0.134));
    assert!(s.series(cpu, Field::Memory).unwrap().is_empty());
    let disk = key("ec2_disk_write_bytes_1ef3de.csv");
    assert_eq!(s.series(disk, Field::DiskWrite).unwrap().len(), 4719);
    assert!(s.series(disk, Field::CpuPercent).unwrap().is_empty());
    let net = key("iio_us-east-1_i-a2eb1cd9_NetworkIn.csv");
    assert_eq!(s.series(net, Field::NetRx).unwrap().len(), 1243);

    // The daylight-saving relabelling: 12 rows stamped 03:00, the first kept, and the hour
    // reported as a gap; timestamps are never invented.
    let r = s
        .import_trace(
            TraceFormat::Nab,
            &traces("nab-aws/ec2_disk_write_bytes_1ef3de.csv"),
        )
        .unwrap();
    assert_eq!(r.continuity.duplicates, 11);
    let dst: Vec<(String, i64)> = r
        .continuity
        .gaps
        .iter()
        .map(|g| (store::trace::format_utc(g.after), g.seconds()))
        .collect();
    assert_eq!(dst, [("2014-03-09 01:59:00".to_string(), 3660)]);
    // Known 600-1200 s gaps.
    let r = s
        .import_trace(
            TraceFormat::Nab,
            &traces("nab-aws/ec2_cpu_utilization_ac20cd.csv"),
        )
        .unwrap();
    let gaps: Vec<i64> = r.continuity.gaps.iter().map(|g| g.seconds()).collect();
    assert_eq!(gaps, [900, 1200]);
    let r = s
        .import_trace(
            TraceFormat::Nab,
            &traces("nab-aws/elb_request_count_8c0756.csv"),
        )
        .unwrap();
    assert!(r.note.is_some(), "an unknown metric is noted");
}

#[test]
fn planetlab_imports_idempotently_from_its_day() {
    let mut s = Store::in_memory().unwrap();
    let all = files(&traces("planetlab/20110303"));
    assert_eq!(all.len(), 30);
    for f in &all {
        let r = s.import_trace(TraceFormat::Planetlab, f).unwrap();
        assert_eq!((r.rows, r.inserted), (288, 288), "{}", f.display());
        assert!(r.continuity.gaps.is_empty());
        assert_eq!(
            r.continuity.first,
            Some(store::trace::PLANETLAB_DEFAULT_EPOCH)
        );
        assert_eq!(
            r.continuity.last,
            Some(store::trace::PLANETLAB_DEFAULT_EPOCH + 287 * 300)
        );
        assert!(r.subject.starts_with("planetlab/20110303/"));
        let again = s.import_trace(TraceFormat::Planetlab, f).unwrap();
        assert_eq!(again.inserted, 0);
    }
    let first = &all[0];
    let id = s
        .find_subject(
            SubjectKind::Trace,
            &format!(
                "planetlab/20110303/{}",
                first.file_name().unwrap().to_string_lossy()
            ),
        )
        .unwrap()
        .unwrap();
    let want: Vec<f64> = std::fs::read_to_string(first)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(s.series(id, Field::CpuPercent).unwrap(), want);
}

#[test]
fn gaps_in_a_written_trace_are_reported_not_filled() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("vm.csv");
    let row = |t: i64| format!("{t};\t1;\t2000;\t500;\t25;\t1024;\t512;\t1;\t2;\t3;\t4\n");
    let mut body = String::from("Timestamp [ms];\tCPU cores;\t...\n");
    for t in [0, 300, 600, 1800, 2100, 2100, 2400] {
        body += &row(t);
    }
    std::fs::write(&f, body).unwrap();
    let mut s = Store::in_memory().unwrap();
    let r = s.import_trace(TraceFormat::Bitbrains, &f).unwrap();
    assert_eq!(
        r.continuity.gaps,
        [store::Gap {
            after: 600,
            before: 1800
        }]
    );
    assert_eq!((r.rows, r.inserted, r.skipped), (7, 6, 1));
    let id = s
        .find_subject(SubjectKind::Trace, "bitbrains/vm.csv")
        .unwrap()
        .unwrap();
    let ts: Vec<i64> = s
        .samples(id, ..)
        .unwrap()
        .iter()
        .map(|x| x.timestamp)
        .collect();
    assert_eq!(ts, [0, 300, 600, 1800, 2100, 2400]);
    // 500 MHz of one 2000 MHz core over 300 s = 75 s of CPU; 1 KB/s x 300 s = 307200 bytes.
    let x = s.samples(id, 0..=0).unwrap()[0];
    assert_eq!(
        (x.cpu_time_ns, x.disk_read_bytes, x.net_tx_bytes),
        (75_000_000_000, 307_200, 1_228_800)
    );
}

#[test]
fn a_bad_line_imports_nothing_and_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ec2_cpu_utilization_bad.csv");
    std::fs::write(
        &f,
        "timestamp,value\n2014-02-14 14:30:00,1.0\n2014-02-14 14:35:00,-3\n",
    )
    .unwrap();
    let mut s = Store::in_memory().unwrap();
    let e = s
        .import_trace(TraceFormat::Nab, &f)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("{}:3: value '-3' is not a non-negative number", f.display())
    );
    assert!(s.subjects().unwrap().is_empty());
    let e = s
        .import_trace(TraceFormat::Nab, &dir.path().join("missing.csv"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.csv"), "{e}");
    // A Bitbrains file given as PlanetLab fails on its first line.
    let e = s
        .import_trace(
            TraceFormat::Planetlab,
            &traces("bitbrains-rnd/2013-7-vm1.csv.gz"),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("2013-7-vm1.csv.gz:1: CPU 'Timestamp"), "{e}");
}

#[test]
fn export_round_trips_every_sample() {
    let mut s = Store::in_memory().unwrap();
    s.import_trace(
        TraceFormat::Bitbrains,
        &traces("bitbrains-rnd/2013-7-vm7.csv.gz"),
    )
    .unwrap();
    s.import_trace(
        TraceFormat::Nab,
        &traces("nab-aws/ec2_network_in_257a54.csv"),
    )
    .unwrap();
    let live = s
        .subject(SubjectKind::Command, "make -j4, \"all\"")
        .unwrap();
    s.append_samples(
        live,
        &[UsageSample {
            timestamp: 7,
            interval_s: 1,
            cpu_time_ns: 900_000_000,
            cpu_percent: Some(45.25),
            memory_used_kib: 12,
            disk_read_bytes: 1,
            disk_write_bytes: 2,
            net_rx_bytes: 3,
            net_tx_bytes: u64::try_from(i64::MAX).unwrap(),
        }],
    )
    .unwrap();

    let mut out = Vec::new();
    let n = s.export_csv(None, &mut out).unwrap();
    let csv = String::from_utf8(out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(store::export_header()));
    let mut back: std::collections::BTreeMap<(String, String), Vec<UsageSample>> =
        Default::default();
    for l in lines {
        let (kind, key, sample) = parse_export_line(l).unwrap();
        back.entry((kind.to_string(), key))
            .or_default()
            .push(sample);
    }
    assert_eq!(n as usize, back.values().map(Vec::len).sum::<usize>());
    assert_eq!(back.len(), 3);
    for subj in s.subjects().unwrap() {
        let want = s.samples(subj.id, ..).unwrap();
        let got = &back[&(subj.kind.to_string(), subj.key.clone())];
        assert_eq!(got, &want, "{}", subj.key);
    }

    // One subject only.
    let id = s
        .find_subject(SubjectKind::Command, "make -j4, \"all\"")
        .unwrap();
    let mut one = Vec::new();
    assert_eq!(s.export_csv(id, &mut one).unwrap(), 1);
    assert!(text(&one).contains("command,\"make -j4, \"\"all\"\"\",7,1,"));
}

#[test]
fn export_then_import_restores_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::in_memory().unwrap();
    a.import_trace(
        TraceFormat::Bitbrains,
        &traces("bitbrains-rnd/2013-7-vm11.csv.gz"),
    )
    .unwrap();
    a.import_trace(
        TraceFormat::Nab,
        &traces("nab-aws/ec2_network_in_257a54.csv"),
    )
    .unwrap();
    let cmd = a.subject(SubjectKind::Command, "tar -c \"a,b\"").unwrap();
    a.append_samples(
        cmd,
        &[UsageSample {
            timestamp: 3,
            interval_s: 2,
            cpu_time_ns: 1,
            cpu_percent: Some(0.1 + 0.2),
            ..Default::default()
        }],
    )
    .unwrap();
    let csv = dir.path().join("h.csv");
    let mut f = std::fs::File::create(&csv).unwrap();
    a.export_csv(None, &mut f).unwrap();
    drop(f);

    let mut b = Store::in_memory().unwrap();
    let reports = b.import_csv(&csv, 1000).unwrap();
    let got: Vec<(SubjectKind, &str, usize)> = reports
        .iter()
        .map(|r| (r.kind, r.subject.as_str(), r.inserted))
        .collect();
    assert_eq!(
        got,
        [
            (SubjectKind::Command, "tar -c \"a,b\"", 1),
            (SubjectKind::Trace, "bitbrains/2013-7-vm11.csv.gz", 8250),
            (SubjectKind::Trace, "nab/ec2_network_in_257a54.csv", 4032),
        ]
    );
    assert!(
        b.import_csv(&csv, 1000)
            .unwrap()
            .iter()
            .all(|r| r.inserted == 0)
    );
    for sa in a.subjects().unwrap() {
        let sb = b.find_subject(sa.kind, &sa.key).unwrap().unwrap();
        assert_eq!(a.samples(sa.id, ..).unwrap(), b.samples(sb, ..).unwrap());
        for field in Field::ALL {
            assert_eq!(
                a.series(sa.id, field).unwrap(),
                b.series(sb, field).unwrap(),
                "{} {}",
                sa.key,
                field.as_str()
            );
        }
    }

    std::fs::write(&csv, "timestamp,value\n").unwrap();
    let e = b.import_csv(&csv, 10).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:1: not a prae history export", csv.display())),
        "{e}"
    );
    std::fs::write(
        &csv,
        format!(
            "{}\ntrace,k,1,300,,,,,,,\ntrace,k,2,300,,x,,,,,\n",
            store::export_header()
        ),
    )
    .unwrap();
    let e = b.import_csv(&csv, 10).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("{}:3: cpu_percent 'x' is not a percentage", csv.display())
    );
    assert!(b.find_subject(SubjectKind::Trace, "k").unwrap().is_none());
}

#[test]
fn cli_imports_lists_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let db_s = db.to_str().unwrap();
    let vm = traces("bitbrains-rnd/2013-7-vm1.csv.gz");
    let vm_s = vm.to_str().unwrap();

    let o = prae(&[
        "history",
        "--db",
        db_s,
        "import",
        "--format",
        "bitbrains",
        vm_s,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with(&format!(
            "{vm_s}: 8260 samples imported, 0 already present, 4 gaps, \
             2013-06-30 22:03:24 to 2013-07-30 21:57:37 UTC"
        )),
        "{out}"
    );
    assert!(
        out.contains("  gap: 600 s after 2013-07-22 10:06:29 UTC\n"),
        "{out}"
    );

    // PRAE_DB names the database too; a second import adds nothing.
    let o = Command::new(env!("CARGO_BIN_EXE_prae"))
        .args(["history", "import", "--format", "bitbrains", vm_s])
        .env("PRAE_DB", &db)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains(": 0 samples imported, 8260 already present"),
        "{}",
        text(&o.stdout)
    );

    let dst = traces("nab-aws/ec2_disk_write_bytes_1ef3de.csv");
    for want in [
        "4719 samples imported, 0 already present",
        "0 samples imported, 4719 already present",
    ] {
        let o = prae(&[
            "history",
            "--db",
            db_s,
            "import",
            "--format",
            "nab",
            dst.to_str().unwrap(),
        ]);
        let out = text(&o.stdout);
        assert!(out.contains(want), "{out}");
        assert!(
            out.contains("  11 rows repeat an earlier timestamp (the first is kept)\n"),
            "{out}"
        );
    }

    let o = prae(&["history", "--db", db_s, "list"]);
    assert!(o.status.success());
    let list = text(&o.stdout);
    assert!(list.starts_with("KIND "), "{list}");
    assert!(list.contains("bitbrains/2013-7-vm1.csv.gz") && list.contains(" 8260 "));
    assert!(list.contains("nab/ec2_disk_write_bytes_1ef3de.csv") && list.contains(" 4719 "));

    let csv = dir.path().join("out/../h.csv");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let o = prae(&[
        "history",
        "--db",
        db_s,
        "export",
        "--subject",
        "bitbrains/2013-7-vm1.csv.gz",
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&csv).unwrap();
    let s = Store::open(&db).unwrap();
    let vm1 = s
        .find_subject(SubjectKind::Trace, "bitbrains/2013-7-vm1.csv.gz")
        .unwrap();
    let mut lib = Vec::new();
    s.export_csv(vm1, &mut lib).unwrap();
    assert!(
        written == text(&lib),
        "the CLI's CSV differs from the library's"
    );
    assert_eq!(written.lines().count(), 8261);

    let o = prae(&["history", "--db", db_s, "export", "--subject", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stderr), "prae: subject 'nope' not found\n");
    let o = prae(&["history", "--db", db_s, "import", "--format", "csv", vm_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr)
            .contains("unknown format 'csv' (expected bitbrains, nab, planetlab or prae)"),
        "{}",
        text(&o.stderr)
    );

    // Export everything, import it into a new database as `prae`, export again: same bytes.
    let all = dir.path().join("all.csv");
    let o = prae(&[
        "history",
        "--db",
        db_s,
        "export",
        "-o",
        all.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let db2 = dir.path().join("h2.db");
    let o = prae(&[
        "history",
        "--db",
        db2.to_str().unwrap(),
        "import",
        "--format",
        "prae",
        all.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("8260 samples imported") && out.contains("4719 samples imported"),
        "{out}"
    );
    let again = dir.path().join("again.csv");
    let o = prae(&[
        "history",
        "--db",
        db2.to_str().unwrap(),
        "export",
        "-o",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        std::fs::read(&all).unwrap() == std::fs::read(&again).unwrap(),
        "export -> import prae -> export changed the CSV"
    );

    // A failing file is reported and the others still import.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "12\n250\n").unwrap();
    let good = traces("planetlab/20110303");
    let good = files(&good).remove(0);
    let o = prae(&[
        "history",
        "--db",
        db_s,
        "import",
        "--format",
        "planetlab",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with(&format!(
            "prae: {}:2: CPU '250' is not an integer percentage 0-100\n",
            bad.display()
        )),
        "{err}"
    );
    assert!(err.contains("1 of 2 files not imported"), "{err}");
    assert!(text(&o.stdout).contains("288 samples imported"));

    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "not a database").unwrap();
    let o = prae(&["history", "--db", junk.to_str().unwrap(), "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!("prae: store: {}: not an SQLite database\n", junk.display())
    );
}

/// Kills `prae history import` with SIGKILL while it writes, then checks that the database is
/// sound, holds a whole number of committed batches, and that a re-run completes it.
#[test]
fn sigkill_mid_import_loses_at_most_the_batch_in_flight() {
    const ROWS: usize = 400_000;
    const BATCH: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("20110303");
    std::fs::create_dir(&day).unwrap();
    let trace = day.join("big");
    let body: String = (0..ROWS).map(|i| format!("{}\n", i % 100)).collect();
    std::fs::write(&trace, body).unwrap();
    let db = dir.path().join("h.db");
    drop(Store::open(&db).unwrap());

    let mut child = Command::new(env!("CARGO_BIN_EXE_prae"))
        .args(["history", "--db"])
        .arg(&db)
        .args(["import", "--format", "planetlab", "--batch-size"])
        .arg(BATCH.to_string())
        .arg(&trace)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prae");
    let watcher = Store::open(&db).unwrap();
    let count = || -> usize {
        watcher
            .connection()
            .query_row("SELECT count(*) FROM samples", [], |r| r.get::<_, i64>(0))
            .unwrap() as usize
    };
    let started = wait_until(Duration::from_secs(60), || count() >= 5 * BATCH);
    // Child::kill sends SIGKILL to the child's pid.
    child.kill().expect("SIGKILL prae");
    let status = child.wait().unwrap();
    assert!(started, "the import never committed 5 batches");
    drop(watcher);

    let mut s = Store::open(&db).unwrap();
    s.check_integrity().unwrap();
    let id = s
        .find_subject(SubjectKind::Trace, "planetlab/20110303/big")
        .unwrap()
        .unwrap();
    let kept = s.sample_count(id).unwrap() as usize;
    assert!(
        !status.success() && kept < ROWS,
        "the import finished before the kill ({kept} samples, {status}); use a larger trace"
    );
    assert_eq!(
        kept % BATCH,
        0,
        "{kept} samples is not a whole number of batches"
    );
    let ts: Vec<i64> = s
        .samples(id, ..)
        .unwrap()
        .iter()
        .map(|x| x.timestamp)
        .collect();
    let epoch = store::trace::PLANETLAB_DEFAULT_EPOCH;
    assert!(
        ts.iter()
            .enumerate()
            .all(|(i, &t)| t == epoch + 300 * i as i64),
        "the committed samples are the file's first {kept}"
    );

    let r = s.import_trace(TraceFormat::Planetlab, &trace).unwrap();
    assert_eq!((r.inserted, r.skipped), (ROWS - kept, kept));
    assert_eq!(s.sample_count(id).unwrap() as usize, ROWS);
    s.check_integrity().unwrap();
}

#[test]
fn shared_bitbrains_import_cleanly() {
    let shared = root().join("../shared/traces/bitbrains-rnd");
    if !shared.is_dir() {
        eprintln!("skipped: {} is not present", shared.display());
        return;
    }
    let mut s = Store::in_memory().unwrap();
    let all = files(&shared);
    assert!(!all.is_empty());
    for f in &all {
        let r = s.import_trace(TraceFormat::Bitbrains, f).unwrap();
        assert_eq!(
            r.inserted + r.continuity.duplicates,
            r.rows,
            "{}",
            f.display()
        );
    }
    // The shipped copies are byte-identical, so they import as the same subjects.
    for f in files(&traces("bitbrains-rnd")) {
        let r = s.import_trace(TraceFormat::Bitbrains, &f).unwrap();
        assert_eq!(r.inserted, 0, "{}", f.display());
    }
}

#[test]
fn concurrent_importers_share_one_database() {
    let dir = tempfile::tempdir().unwrap();
    // No database yet: the three processes race to create and migrate it.
    let db = dir.path().join("h.db");
    let spawn = |format: &str, dir: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_prae"));
        c.args(["history", "--db"])
            .arg(&db)
            .args(["import", "--batch-size", "100", "--format", format])
            .args(files(&traces(dir)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().expect("start prae")
    };
    let children = [
        spawn("nab", "nab-aws"),
        spawn("planetlab", "planetlab/20110303"),
        spawn("bitbrains", "bitbrains-rnd"),
    ];
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let s = Store::open(&db).unwrap();
    let subjects = s.subjects().unwrap();
    assert_eq!(subjects.len(), 17 + 30 + 20);
    s.check_integrity().unwrap();
    let imports = s
        .audit_log()
        .unwrap()
        .iter()
        .filter(|e| e.action == "history.import")
        .count();
    assert_eq!(imports, 67);
}

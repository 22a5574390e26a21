//! Unit tests of the store on in-memory databases (files are in `tests/store.rs`).

use super::*;
use crate::model::{Allocation, Provenance, ResourceProfile, Tier, UsageSample};

fn sample(t: i64) -> UsageSample {
    UsageSample {
        timestamp: t,
        interval_s: 10,
        cpu_time_ns: 5_000_000_000,
        cpu_percent: None,
        memory_used_kib: 1024,
        disk_read_bytes: 1,
        disk_write_bytes: 2,
        net_rx_bytes: 3,
        net_tx_bytes: 4,
    }
}

#[test]
fn empty_database_migrates_to_the_current_version() {
    let s = Store::in_memory().unwrap();
    assert_eq!(s.schema_version().unwrap(), current_version());
    let tables: Vec<String> = s
        .connection()
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "audit",
            "builds",
            "exec_queue",
            "overrides",
            "reservations",
            "samples",
            "subjects"
        ]
    );
    let app: i32 = s
        .connection()
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .unwrap();
    assert_eq!(app, APPLICATION_ID);
}

#[test]
fn migrations_are_forward_only_and_refuse_newer_databases() {
    let mut c = rusqlite::Connection::open_in_memory().unwrap();
    let mut two: Vec<&str> = MIGRATIONS.to_vec();
    two.push("CREATE TABLE later (x INTEGER);");
    let n = MIGRATIONS.len() as u32;
    assert_eq!(migrate(&mut c, MIGRATIONS, "db").unwrap(), n);
    assert_eq!(migrate(&mut c, &two, "db").unwrap(), n + 1);
    // Running again changes nothing.
    assert_eq!(migrate(&mut c, &two, "db").unwrap(), n + 1);
    let e = migrate(&mut c, MIGRATIONS, "db").unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "store: db: schema version {} is newer than this prae supports ({n}); use a newer \
             prae or another --db",
            n + 1
        )
    );
}

#[test]
fn a_failing_migration_leaves_the_previous_version() {
    let mut c = rusqlite::Connection::open_in_memory().unwrap();
    let bad = [MIGRATIONS[0], "CREATE TABLE half (x); THIS IS NOT SQL;"];
    let e = migrate(&mut c, &bad, "db").unwrap_err().to_string();
    assert!(e.starts_with("store: db: migration 2 failed: "), "{e}");
    let v: u32 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 1);
    let half: i64 = c
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0, "the failed migration's table was rolled back");
}

#[test]
fn subjects_are_unique_per_kind_and_key() {
    let mut s = Store::in_memory().unwrap();
    let a = s.subject(SubjectKind::Domain, "web1").unwrap();
    assert_eq!(s.subject(SubjectKind::Domain, "web1").unwrap(), a);
    let b = s.subject(SubjectKind::Command, "web1").unwrap();
    assert_ne!(a, b);
    assert_eq!(
        s.find_subject(SubjectKind::Domain, "web1").unwrap(),
        Some(a)
    );
    assert_eq!(s.find_subject(SubjectKind::Trace, "web1").unwrap(), None);
    assert_eq!(s.subjects_with_key("web1").unwrap().len(), 2);
    for bad in ["", "a\nb"] {
        let e = s.subject(SubjectKind::Domain, bad).unwrap_err().to_string();
        assert!(e.contains("subject key"), "{e}");
    }
    assert_eq!(
        package_key("nginx", "debian12"),
        "nginx/debian12".to_string()
    );
}

#[test]
fn samples_append_once_per_timestamp_and_read_back_in_range() {
    let mut s = Store::in_memory().unwrap();
    let id = s.subject(SubjectKind::Domain, "d").unwrap();
    let batch: Vec<_> = [30, 10, 20].into_iter().map(sample).collect();
    assert_eq!(s.append_samples(id, &batch).unwrap(), 3);
    assert_eq!(s.append_samples(id, &batch[..2]).unwrap(), 0);
    let all = s.samples(id, ..).unwrap();
    assert_eq!(
        all.iter().map(|x| x.timestamp).collect::<Vec<_>>(),
        [10, 20, 30]
    );
    assert_eq!(all[0], sample(10));
    assert_eq!(s.samples(id, 15..30).unwrap().len(), 1);
    assert_eq!(s.samples(id, 10..=30).unwrap().len(), 3);
    assert_eq!(s.sample_count(id).unwrap(), 3);
    let subj = &s.subjects().unwrap()[0];
    assert_eq!(
        (subj.samples, subj.first, subj.last),
        (3, Some(10), Some(30))
    );
}

#[test]
fn series_skip_unmeasured_fields_and_derive_cores() {
    let mut s = Store::in_memory().unwrap();
    let id = s.subject(SubjectKind::Trace, "t").unwrap();
    let mut a = sample(10);
    a.cpu_percent = Some(12.5);
    s.append_fields(id, &[a, sample(20)], Fields::CPU_PERCENT)
        .unwrap();
    assert_eq!(s.series(id, Field::CpuPercent).unwrap(), [12.5]);
    assert!(s.series(id, Field::Memory).unwrap().is_empty());
    assert!(s.series(id, Field::CpuCores).unwrap().is_empty());
    // Unmeasured fields read back as zero.
    assert_eq!(s.samples(id, ..).unwrap()[1].memory_used_kib, 0);

    let live = s.subject(SubjectKind::Domain, "d").unwrap();
    s.append_samples(live, &[sample(10), sample(20)]).unwrap();
    // 5 s of CPU in 10 s = half a core.
    assert_eq!(s.series(live, Field::CpuCores).unwrap(), [0.5, 0.5]);
    let mut pct = sample(30);
    pct.cpu_percent = Some(50.0);
    s.append_samples(live, &[pct]).unwrap();
    assert_eq!(s.samples(live, 30..).unwrap(), [pct]);
    assert_eq!(
        s.series_points(live, Field::Memory).unwrap(),
        [(10, 1024.0), (20, 1024.0), (30, 1024.0)]
    );
    assert_eq!(s.series(live, Field::CpuPercent).unwrap(), [50.0]);
    assert_eq!(
        s.cpu_series(id).unwrap(),
        Some((Field::CpuPercent, vec![(10, 12.5)]))
    );
    assert_eq!(s.cpu_series(live).unwrap().unwrap().0, Field::CpuCores);
    let none = s.subject(SubjectKind::Command, "idle").unwrap();
    assert_eq!(s.cpu_series(none).unwrap(), None);
    assert_eq!("cpu_cores".parse::<Field>().unwrap(), Field::CpuCores);
    assert!("cpu".parse::<Field>().is_err());
}

#[test]
fn values_beyond_sqlite_integers_are_refused() {
    let mut s = Store::in_memory().unwrap();
    let id = s.subject(SubjectKind::Domain, "d").unwrap();
    let mut x = sample(1);
    x.disk_read_bytes = u64::MAX;
    assert!(s.append_samples(id, &[sample(0), x]).is_err());
    assert_eq!(
        s.sample_count(id).unwrap(),
        0,
        "the batch is all or nothing"
    );
}

fn exact(vcpus: u32) -> OverrideSpec {
    OverrideSpec::Exact {
        profile: ResourceProfile {
            vcpus: Some(vcpus),
            memory_kib: Some(2 << 20),
            ..ResourceProfile::default()
        },
    }
}

#[test]
fn overrides_replace_remove_and_audit_in_one_transaction() {
    let mut s = Store::in_memory().unwrap();
    let scope = OverrideScope::Package {
        package: "postgresql".into(),
        os: Some("debian12".into()),
        tier: Some(Tier::High),
    };
    assert_eq!(scope.key(), "package:postgresql/debian12/high");
    let a = s
        .set_override(&scope, &exact(4), "pinned", "alice")
        .unwrap();
    let b = s.set_override(&scope, &exact(8), "more", "bob").unwrap();
    let active = s.list_overrides(false).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].id, &active[0].created_by),
        (b, &"bob".to_string())
    );
    assert_eq!(active[0].spec, exact(8));
    assert_eq!(s.active_override(&scope).unwrap().unwrap().id, b);
    assert_eq!(s.list_overrides(true).unwrap().len(), 2);

    let dom = OverrideScope::Domain {
        name: "web1".into(),
    };
    let c = s
        .set_override(
            &dom,
            &OverrideSpec::Bounds {
                min: ResourceProfile {
                    vcpus: Some(2),
                    ..Default::default()
                },
                max: ResourceProfile {
                    vcpus: Some(4),
                    ..Default::default()
                },
            },
            "",
            "carol",
        )
        .unwrap();
    s.remove_override(c, "carol").unwrap();
    let e = s.remove_override(c, "carol").unwrap_err().to_string();
    assert_eq!(e, format!("active override {} not found", c.0));
    assert!(s.active_override(&dom).unwrap().is_none());

    let log = s.audit_log().unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.who.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("alice", "override.set"),
            ("bob", "override.set"),
            ("carol", "override.set"),
            ("carol", "override.remove"),
        ]
    );
    assert_eq!(log[1].details["replaced"], a.0);
    assert_eq!(log[1].details["spec"]["profile"]["vcpus"], 8);
}

#[test]
fn bad_overrides_are_refused_and_leave_no_trace() {
    let mut s = Store::in_memory().unwrap();
    let dom = OverrideScope::Domain {
        name: "web1".into(),
    };
    let cases: [(OverrideScope, OverrideSpec, &str); 4] = [
        (dom.clone(), exact(0), "vcpus must be at least 1, got 0"),
        (
            dom.clone(),
            OverrideSpec::Exact {
                profile: ResourceProfile::default(),
            },
            "override sets no value",
        ),
        (
            dom.clone(),
            OverrideSpec::Bounds {
                min: ResourceProfile {
                    vcpus: Some(8),
                    ..Default::default()
                },
                max: ResourceProfile {
                    vcpus: Some(2),
                    ..Default::default()
                },
            },
            "override minimum vcpus 8 is above its maximum 2",
        ),
        (
            OverrideScope::Domain { name: " ".into() },
            exact(2),
            "override domain name \" \" is empty or has control characters",
        ),
    ];
    for (scope, spec, want) in cases {
        let e = s.set_override(&scope, &spec, "", "x").unwrap_err();
        assert_eq!(e.to_string(), want);
    }
    assert!(s.list_overrides(true).unwrap().is_empty());
    assert!(s.audit_log().unwrap().is_empty());
}

#[test]
fn builds_record_update_and_audit() {
    let mut s = Store::in_memory().unwrap();
    let alloc = Allocation {
        profile: ResourceProfile {
            vcpus: Some(2),
            ..Default::default()
        },
        provenance: Provenance {
            reason: "tier table medium".into(),
            ..Default::default()
        },
    };
    let id = s
        .record_build(
            &NewBuild {
                package: "nginx".into(),
                os: "debian12".into(),
                version: None,
                tier: Some(Tier::Medium),
                allocation: alloc.clone(),
                state: BuildState::Running,
                log_path: None,
            },
            "builder",
        )
        .unwrap();
    let b = s.build(id).unwrap();
    assert_eq!(
        (b.state, b.finished_at, &b.allocation),
        (BuildState::Running, None, &alloc)
    );
    assert_eq!(
        s.find_subject(SubjectKind::Package, "nginx/debian12")
            .unwrap(),
        Some(b.subject)
    );
    let measured = MeasuredUsage {
        peak_memory_kib: 300_000,
        duration_s: 41.5,
        ..Default::default()
    };
    s.update_build(
        id,
        &BuildUpdate {
            state: Some(BuildState::Succeeded),
            version: Some("1.22.1-9".into()),
            measured: Some(measured),
            ..Default::default()
        },
        "builder",
    )
    .unwrap();
    let b = s.build(id).unwrap();
    assert_eq!(b.state, BuildState::Succeeded);
    assert!(b.finished_at.is_some());
    assert_eq!(b.version.as_deref(), Some("1.22.1-9"));
    assert_eq!(b.measured, Some(measured));
    assert_eq!(s.builds().unwrap().len(), 1);
    let e = s
        .update_build(BuildId(99), &BuildUpdate::default(), "x")
        .unwrap_err();
    assert_eq!(e.to_string(), "build 99 not found");
    let actions: Vec<String> = s
        .audit_log()
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["build.record", "build.state"]);
}

#[test]
fn default_path_follows_root_and_xdg() {
    let p = |uid, xdg: Option<&str>, home: Option<&str>| {
        default_state_dir_for(uid, xdg.map(PathBuf::from), home.map(PathBuf::from))
            .map(|d| d.join("prae.db"))
    };
    assert_eq!(
        p(Some(0), Some("/x"), Some("/root")).unwrap(),
        PathBuf::from("/var/lib/prae/prae.db")
    );
    assert_eq!(
        p(Some(1000), Some("/s"), Some("/h")).unwrap(),
        PathBuf::from("/s/prae/prae.db")
    );
    assert_eq!(
        p(Some(1000), Some("relative"), Some("/h")).unwrap(),
        PathBuf::from("/h/.local/state/prae/prae.db")
    );
    assert!(p(Some(1000), None, None).is_err());
}

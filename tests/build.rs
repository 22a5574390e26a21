//! Image builds (`prae build`, `prae images`, `prae::build`).
//!
//! Always run: bad inputs (a package name with shell metacharacters, an unknown OS, an
//! unreachable libvirt) give one clear error and leave nothing behind, through the `prae` binary
//! and through the library against `test:///default`.
//!
//! With `PRAE_LAB=1` and `PRAE_LAB_DEBIAN` (the directory `tests/lab/build-debian.sh` printed) and
//! a libvirtd on `qemu:///system` (`tests/lab/start-libvirtd.sh`):
//! - an unknown package is refused when its repository is resolved, leaving nothing;
//! - `prae build --package hello` makes an image; a new overlay of that image boots and
//!   `dpkg -s hello` through the guest agent says it is installed;
//! - a build killed (SIGKILL) mid-install leaves a domain and volumes that the next `prae` start
//!   (`prae images list`) removes, and nothing else;
//! - with a fake host of 1 vCPU (`PRAE_BUILD_VCPUS=1` and a private ledger), two builds run one
//!   after the other instead of together;
//! - a build disk too small for the package (a base made from the Debian base's rootfs with
//!   16 MiB free, `--disk-size` pinned to it, nodejs's 106 MiB closure) fails with one line
//!   naming the full disk, its size and dpkg's `No space left on device`, and leaves no domain,
//!   overlay or image (whole or partial).
//!
//! Each lab test uses its own state directory, pools and ledger (a temporary directory; a
//! private ledger is a fake host) and removes what it created, also when it fails.
//!
//! Measured on the lab host (TCG, 2 cores at load average 11-15 from other work, so every guest
//! ran at a fraction of a core): `prae build hello` 137-325 s (agent 63-188 s after start,
//! install 13 s, flatten + sha256 of the ~370 MB image 20-30 s); the rebuilt image's agent 113 s;
//! the killed build's leftovers removed by the next start in 1.6-2.1 s; queue test 377 s (the
//! second build waited 235 s for the first's vCPU); agent-timeout test a few seconds; full-disk
//! test 303-305 s at load average 15-18 (making the tight base 15-20 s, agent 121 s, the
//! install failing 60-100 s later).
//! `cargo test --test build -- --test-threads=1` with all of them: about 25 min on that host.

#[path = "common/lab.rs"]
mod lab;

use lab::URI;
use prae::build::guest::Agent;
use prae::build::{self, BuildConfig, BuildRequest, NoProgress};
use prae::domain::template::{self, DiskImage, ImageFormat, TemplateValues};
use prae::hypervisor::{DomainState, Hypervisor, Libvirt, VirtType};
use prae::model::ResourceProfile;
use prae::store::Store;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const PRAE: &str = env!("CARGO_BIN_EXE_prae");

fn prae(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(PRAE);
    c.args(args).env_remove("PRAE_URI").env_remove("PRAE_DB");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run prae")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        }
        out.push(p);
    }
    out
}

#[test]
fn bad_inputs_give_clear_errors_and_leave_nothing() {
    let state = tempfile::tempdir().unwrap();
    let env = [
        ("PRAE_STATE_DIR", state.path()),
        ("PRAE_LEDGER_DIR", state.path()),
        ("PRAE_BASE_DIR", state.path()),
    ];
    let cases: &[(&[&str], &str)] = &[
        (
            &["build", "--package", "hello; rm -rf /"],
            "'hello; rm -rf /' is not a valid Debian package name",
        ),
        (
            &["build", "--package", "$(reboot)"],
            "'$(reboot)' is not a valid Debian package name",
        ),
        (
            &["build", "--package", "hello", "--os", "windows95"],
            "unknown OS 'windows95'",
        ),
        (
            &["build", "--package", "hello", "--vcpus", "0"],
            "vcpus must be at least 1",
        ),
        (
            &[
                "--uri",
                "qemu+tcp://127.0.0.1:1/system",
                "build",
                "--package",
                "hello",
            ],
            "cannot connect to qemu+tcp://127.0.0.1:1/system",
        ),
    ];
    for (args, want) in cases {
        let o = prae(args, &env);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err}"
        );
        assert!(
            files_under(state.path()).is_empty(),
            "{args:?} left {:?}",
            files_under(state.path())
        );
    }
    // A base directory without an image: named, nothing created.
    let o = prae(&["build", "--package", "hello"], &env);
    let err = stderr(&o);
    assert!(err.contains("has no base.qcow2"), "{err}");
    assert!(files_under(state.path()).is_empty());
}

#[test]
fn library_refuses_bad_requests_before_creating_anything() {
    let hv = Libvirt::open(Some("test:///default")).unwrap();
    let mut store = Store::in_memory().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = BuildConfig::new(state.path().to_path_buf()).unwrap();
    cfg.ledger_dir = state.path().to_path_buf();
    cfg.base_dir = Some(state.path().to_path_buf());
    let domains = hv.list_domains().unwrap().len();
    let pools = hv.pool_list().unwrap().len();
    for (package, os, want) in [
        ("nginx`id`", "debian12", "not a valid Debian package name"),
        ("a", "debian12", "not a valid Debian package name"),
        ("nginx", "freebsd", "unknown OS 'freebsd'"),
        ("nginx", "debian12", "has no base.qcow2"),
    ] {
        let req = BuildRequest {
            package: package.into(),
            os: os.into(),
            tier: None,
            overrides: ResourceProfile::default(),
            disk_bytes: None,
        };
        let err = build::request_image_build(&hv, &mut store, &cfg, &req, &NoProgress)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{package}/{os}: {err}");
    }
    assert_eq!(hv.list_domains().unwrap().len(), domains);
    assert_eq!(hv.pool_list().unwrap().len(), pools);
    assert!(store.builds().unwrap().is_empty());
    assert!(files_under(state.path()).is_empty());
}

// ---- the lab ------------------------------------------------------------------------------

struct Lab {
    debian: PathBuf,
    /// State directory and ledger of this test (a fake host of its own).
    state: tempfile::TempDir,
}

fn lab(test: &str) -> Option<Lab> {
    let skipped = format!("skipped {test}");
    if !lab::enabled(&skipped, " and PRAE_LAB_DEBIAN") {
        return None;
    }
    let debian = lab::debian_dir(&skipped, "build-debian.sh")?;
    let dir = lab::lab_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let state = tempfile::Builder::new()
        .prefix(&format!("prae-build-test-{test}."))
        .tempdir_in(dir)
        .unwrap();
    Some(Lab { debian, state })
}

impl Lab {
    /// Every pool name of this test is private: `<test>-builds`, `<test>-images`.
    fn pools(&self) -> (String, String) {
        let tag = self
            .state
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "-");
        (format!("{tag}-builds"), format!("{tag}-images"))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(PRAE);
        c.arg("--uri")
            .arg(URI)
            .args(args)
            .env_remove("PRAE_DB")
            .env("PRAE_BASE_DIR", &self.debian)
            .env("PRAE_STATE_DIR", self.state.path())
            .env("PRAE_LEDGER_DIR", self.state.path().join("ledger"))
            // Repositories are shared between tests (cached by package and base).
            .env(
                "PRAE_REPO_CACHE",
                self.state.path().parent().unwrap().join("prae-build-repos"),
            );
        c
    }
}

impl Lab {
    /// Build domains of this test (their serial log is in its state directory).
    fn domains(&self, hv: &Libvirt) -> Vec<String> {
        hv.list_domains()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                d.name.starts_with("prae-build-")
                    && hv
                        .domain_xml(&d.name, prae::hypervisor::XmlKind::Inactive)
                        .is_ok_and(|x| x.contains(self.state.path().to_str().unwrap()))
            })
            .map(|d| d.name)
            .collect()
    }
}

impl Drop for Lab {
    /// Removes this test's pools (and their volumes) from libvirt; the directory goes with
    /// the TempDir.
    fn drop(&mut self) {
        let Ok(hv) = Libvirt::open(Some(URI)) else {
            return;
        };
        let (b, i) = self.pools();
        for d in self.domains(&hv) {
            lab::remove_domain_quietly(&hv, &d);
        }
        for pool in [b, i] {
            for v in hv.volume_list(&pool).unwrap_or_default() {
                let _ = hv.volume_delete(&pool, &v.name);
            }
            let _ = hv.pool_remove(&pool);
        }
    }
}

/// One `prae --format json` process: its events as they came, with when they were read.
struct Run {
    events: Vec<(Instant, Value)>,
    manifest: Option<Value>,
    status: std::process::ExitStatus,
    stderr: String,
}

fn run_json(
    mut c: Command,
    mut on_event: impl FnMut(&Value, &mut std::process::Child) -> bool,
) -> Run {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prae");
    let stdout = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err_pipe, &mut s);
        s
    });
    let mut events = Vec::new();
    let mut manifest = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        if let Some(e) = v.get("event") {
            println!("  {} {}", e["step"], e["message"]);
            events.push((Instant::now(), e.clone()));
            if on_event(e, &mut child) {
                break;
            }
        } else if let Some(m) = v.get("manifest") {
            manifest = Some(m.clone());
        }
    }
    let status = child.wait().unwrap();
    Run {
        events,
        manifest,
        status,
        stderr: err_thread.join().unwrap(),
    }
}

fn build_args<'a>(lab: &'a Lab, pools: &'a (String, String), package: &'a str) -> Vec<String> {
    let _ = lab;
    vec![
        "build".into(),
        "--package".into(),
        package.into(),
        "--tier".into(),
        "low".into(),
        "--images-pool".into(),
        pools.1.clone(),
        "--builds-pool".into(),
        pools.0.clone(),
        "--format".into(),
        "json".into(),
    ]
}

#[test]
fn unknown_package_is_refused_and_leaves_nothing() {
    let Some(lab) = lab("unknown") else { return };
    let pools = lab.pools();
    let mut args = build_args(&lab, &pools, "prae-no-such-package");
    args.truncate(args.len() - 2);
    let o = lab
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("package 'prae-no-such-package' in the debian12 archive not found"),
        "{err}"
    );
    let hv = Libvirt::open(Some(URI)).unwrap();
    assert!(
        !hv.pool_list()
            .unwrap()
            .iter()
            .any(|p| p.name == pools.0 || p.name == pools.1)
    );
    assert!(
        !hv.list_domains()
            .unwrap()
            .iter()
            .any(|d| d.name.ends_with("-prae-no-such-package")),
        "a domain was left"
    );
    let cache = lab.state.path().parent().unwrap().join("prae-build-repos");
    for e in std::fs::read_dir(&cache).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        assert!(!n.starts_with("repo-build."), "work directory left: {n}");
    }
}

#[test]
fn built_image_boots_with_the_package_installed() {
    let Some(lab) = lab("image") else { return };
    let pools = lab.pools();
    let args = build_args(&lab, &pools, "hello");
    let t = Instant::now();
    let run = run_json(
        lab.command(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        |_, _| false,
    );
    assert!(run.status.success(), "prae build failed: {}", run.stderr);
    println!("prae build hello: {:?}", t.elapsed());
    let m = run.manifest.expect("a manifest line");
    assert_eq!(m["package"], "hello");
    assert!(m["version"].as_str().is_some_and(|v| !v.is_empty()), "{m}");
    assert!(m["measured"]["cpu_seconds"].as_f64().unwrap() > 0.0, "{m}");
    assert!(
        m["measured"]["peak_memory_kib"].as_u64().unwrap() > 0,
        "{m}"
    );
    assert!(
        m["measured"]["disk_write_bytes"].as_u64().unwrap() > 0,
        "{m}"
    );
    let img = &m["image"];
    let path = PathBuf::from(img["path"].as_str().unwrap());
    assert!(path.is_file());
    assert_eq!(img["sha256"].as_str().unwrap().len(), 64);
    assert!(
        path.with_extension("json").is_file(),
        "no manifest beside the image"
    );
    let steps: Vec<&str> = run
        .events
        .iter()
        .filter_map(|(_, e)| e["step"].as_str())
        .collect();
    for s in [
        "validate", "repo", "profile", "queue", "volumes", "define", "boot", "install", "shutdown",
        "flatten", "submit", "cleanup", "done",
    ] {
        assert!(steps.contains(&s), "no {s} event: {steps:?}");
    }
    let hv = Libvirt::open(Some(URI)).unwrap();
    let build_name = m["build"].as_str().unwrap();
    assert!(hv.domain_info(build_name).is_err(), "build domain left");
    assert!(
        hv.volume_list(&pools.0).unwrap().is_empty(),
        "overlays left"
    );

    // `prae images list` and `show` know it.
    let list = lab
        .command(&[
            "images",
            "--images-pool",
            &pools.1,
            "list",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["manifest"]["package"], "hello");

    // Boot the image again, on an overlay, and ask dpkg.
    let dir = tempfile::tempdir_in(lab.state.path()).unwrap();
    let overlay = dir.path().join("check.qcow2");
    let o = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&path)
        .arg(&overlay)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let name = format!("prae-build-test-check-{}", std::process::id());
    let mut v = TemplateValues::new(&name, VirtType::Qemu, 512 * 1024, 1);
    v.kernel = Some(lab.debian.join("vmlinuz"));
    v.initrd = Some(lab.debian.join("initrd.img"));
    v.disk = Some(DiskImage::new(&overlay, ImageFormat::Qcow2));
    v.serial_log = Some(dir.path().join("serial.log"));
    let xml = template::render("debian12", &v).unwrap();
    hv.define(&xml).unwrap();
    struct Undefine<'a>(&'a Libvirt, &'a str);
    impl Drop for Undefine<'_> {
        fn drop(&mut self) {
            if self
                .0
                .domain_info(self.1)
                .is_ok_and(|i| i.state != DomainState::Shutoff)
            {
                let _ = self.0.destroy(self.1);
            }
            let _ = self.0.undefine(self.1);
        }
    }
    let _guard = Undefine(&hv, &name);
    hv.start(&name).unwrap();
    let agent = Agent {
        hv: &hv,
        domain: &name,
    };
    let boot = agent
        .wait(Duration::from_secs(300))
        .expect("agent of the rebooted image");
    println!("rebooted image: agent after {boot:?}");
    let s = agent
        .run(
            "/usr/bin/dpkg",
            &["-s", "hello"],
            None,
            Duration::from_secs(120),
        )
        .expect("dpkg -s hello");
    assert!(
        s.stdout.contains("Status: install ok installed"),
        "{}",
        s.stdout
    );
    assert!(
        s.stdout
            .contains(&format!("Version: {}", m["version"].as_str().unwrap()))
    );
    let h = agent
        .run("/usr/bin/hello", &[], None, Duration::from_secs(60))
        .unwrap();
    assert_eq!(h.stdout.trim(), "Hello, world!");
    drop(_guard);

    // And `prae images remove` removes it with its manifest.
    let rm = lab
        .command(&[
            "images",
            "--images-pool",
            &pools.1,
            "remove",
            img["volume"].as_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(rm.status.success(), "{}", stderr(&rm));
    assert!(!path.exists() && !path.with_extension("json").exists());
}

#[test]
fn killed_build_leaves_nothing_after_the_next_start() {
    let Some(lab) = lab("killed") else { return };
    let pools = lab.pools();
    let args = build_args(&lab, &pools, "hello");
    let mut build_name = String::new();
    let run = run_json(
        lab.command(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        |e, child| {
            build_name = e["build"].as_str().unwrap_or_default().to_string();
            if e["step"] == "install" {
                // SIGKILL, by pid: no destructor, no cleanup of its own.
                child.kill().unwrap();
                return true;
            }
            false
        },
    );
    assert!(!run.status.success());
    assert!(
        run.events.iter().any(|(_, e)| e["step"] == "install"),
        "never got to install: {}",
        run.stderr
    );
    let hv = Libvirt::open(Some(URI)).unwrap();
    // The kill left the domain and its overlays...
    assert!(
        hv.domain_info(&build_name).is_ok(),
        "{build_name} not there after the kill"
    );
    let vols = hv.volume_list(&pools.0).unwrap();
    assert_eq!(vols.len(), 2, "{vols:?}");
    // ...and a foreign domain with a build-like name, no prae metadata, is never touched.
    let foreign = format!("prae-build-1.1.0-foreign{}", std::process::id());
    let mut v = TemplateValues::new(&foreign, VirtType::Qemu, 128 * 1024, 1);
    v.kernel = Some(lab.debian.join("vmlinuz"));
    v.initrd = Some(lab.debian.join("initrd.img"));
    v.disk = Some(DiskImage::new(
        lab.debian.join("base.qcow2"),
        ImageFormat::Qcow2,
    ));
    v.serial_log = Some(lab.state.path().join("foreign.log"));
    hv.define(&template::render("debian12", &v).unwrap())
        .unwrap();
    // Its volume (named like a build's) stays with it.
    let foreign_vol = format!("{foreign}-root.qcow2");
    hv.volume_create(
        &pools.0,
        &prae::build::image::volume_xml(&foreign_vol, 1 << 20, None).unwrap(),
    )
    .unwrap();

    let t = Instant::now();
    let o = lab
        .command(&[
            "images",
            "--images-pool",
            &pools.1,
            "--builds-pool",
            &pools.0,
            "list",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    let foreign_left = hv.domain_info(&foreign).is_ok();
    let _ = hv.undefine(&foreign);
    let foreign_vol_left = hv
        .volume_list(&pools.0)
        .unwrap()
        .iter()
        .any(|v| v.name == foreign_vol);
    let _ = hv.volume_delete(&pools.0, &foreign_vol);
    assert!(o.status.success(), "{err}");
    println!("next start removed leftovers in {:?}:\n{err}", t.elapsed());
    assert!(err.contains(&format!("domain {build_name}")), "{err}");
    assert!(
        hv.domain_info(&build_name).is_err(),
        "{build_name} still defined"
    );
    assert!(
        hv.volume_list(&pools.0).unwrap().is_empty(),
        "overlays left"
    );
    assert!(foreign_left, "a domain prae did not create was removed");
    assert!(
        foreign_vol_left,
        "the volume of a domain prae did not create was removed"
    );
    // The store says the build failed because prae was killed.
    let store = Store::open(lab.state.path().join("prae.db")).unwrap();
    let b = store.builds().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].state, prae::store::BuildState::Failed);
    assert!(b[0].error.as_deref().unwrap_or("").contains("killed"));
}

#[test]
fn builds_queue_instead_of_overcommitting() {
    let Some(lab) = lab("queue") else { return };
    let pools = lab.pools();
    let mut handles = Vec::new();
    for _ in 0..2 {
        let mut args = build_args(&lab, &pools, "hello");
        args.push("--no-image".into());
        let mut c = lab.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        c.env("PRAE_BUILD_VCPUS", "1");
        handles.push(std::thread::spawn(move || run_json(c, |_, _| false)));
    }
    let runs: Vec<Run> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // What is checked is the queueing; a build that failed (e.g. a guest that did not boot in
    // time on a loaded host) still released its reservation, and says so.
    for r in &runs {
        if !r.status.success() {
            println!("a build failed: {}", r.stderr);
        }
    }
    let at = |r: &Run, step: &str, text: &str| {
        r.events
            .iter()
            .find(|(_, e)| e["step"] == step && e["message"].as_str().unwrap_or("").contains(text))
            .map(|(t, _)| *t)
    };
    let queued: Vec<usize> = (0..2)
        .filter(|&i| at(&runs[i], "queue", "queued").is_some())
        .collect();
    assert_eq!(queued.len(), 1, "exactly one build should have waited");
    let (w, f) = (queued[0], 1 - queued[0]);
    let reserved = at(&runs[w], "queue", "reserved").unwrap();
    let first_done = at(&runs[f], "cleanup", "released").expect("the first build released");
    assert!(
        reserved >= first_done,
        "the waiting build got its vCPU before the first one released it"
    );
}

#[test]
fn agent_timeout_fails_the_build_and_leaves_nothing() {
    let Some(lab) = lab("timeout") else { return };
    let pools = lab.pools();
    let mut args = build_args(&lab, &pools, "hello");
    args.truncate(args.len() - 2);
    args.extend(["--agent-timeout".into(), "2".into()]);
    let o = lab
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("timed out: the guest agent of prae-build-") && err.contains("within 2 s"),
        "{err}"
    );
    let hv = Libvirt::open(Some(URI)).unwrap();
    assert!(lab.domains(&hv).is_empty(), "a domain was left");
    assert!(
        hv.volume_list(&pools.0).unwrap().is_empty(),
        "overlays left"
    );
    let store = Store::open(lab.state.path().join("prae.db")).unwrap();
    let b = store.builds().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].state, prae::store::BuildState::Failed);
    assert!(b[0].error.as_deref().unwrap_or("").contains("timed out"));
}

/// Runs a host tool (argument vector, no shell); its stdout, or a panic naming it.
fn tool(program: &str, args: &[&str]) -> String {
    let o = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program}: {e}");
        });
    assert!(
        o.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `Block count`, `Free blocks` and `Block size` of an ext4 image (`dumpe2fs -h`).
fn ext4_blocks(image: &str) -> (u64, u64, u64) {
    let out = tool("dumpe2fs", &["-h", image]);
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("dumpe2fs -h {image}: no {name}"))
    };
    (
        field("Block count:"),
        field("Free blocks:"),
        field("Block size:"),
    )
}

/// A Debian base like `debian`'s whose root file system (and disk) has only about `free_mib`
/// MiB free: `mkfs.ext4 -d` of the base's `rootfs/` as `build-debian.sh` makes `base.qcow2`
/// (no mount), into a file system sized so that the free space comes out at `free_mib`
/// (measured with `dumpe2fs`, resized until it does), converted to qcow2; the kernel and initrd
/// beside it. Returns the directory and the disk's size in bytes.
fn tight_base(debian: &Path, dir: &Path, free_mib: u64) -> (PathBuf, u64) {
    const MIB: u64 = 1 << 20;
    let base = dir.join("tight-base");
    std::fs::create_dir(&base).unwrap();
    for f in ["vmlinuz", "initrd.img"] {
        std::fs::copy(debian.join(f), base.join(f)).unwrap();
    }
    let raw = dir.join("tight.raw");
    let raw_s = raw.to_str().unwrap();
    let rootfs = debian.join("rootfs");
    let mut size = 512 * MIB;
    let mut free = 0;
    for _ in 0..4 {
        let _ = std::fs::remove_file(&raw);
        tool(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-d",
                rootfs.to_str().unwrap(),
                "-L",
                "root",
                raw_s,
                &format!("{}M", size / MIB),
            ],
        );
        let (count, free_blocks, bs) = ext4_blocks(raw_s);
        assert_eq!(count * bs, size, "file system and disk differ in size");
        free = free_blocks * bs / MIB;
        if free.abs_diff(free_mib) <= 2 {
            break;
        }
        size = (size / MIB + free_mib)
            .checked_sub(free)
            .expect("rootfs too large")
            * MIB;
    }
    assert!(
        free.abs_diff(free_mib) <= 2,
        "could not size a file system with {free_mib} MiB free (got {free} MiB)"
    );
    println!("tight base: {} MiB disk, {free} MiB free", size / MIB);
    let qcow = base.join("base.qcow2");
    tool(
        "qemu-img",
        &["convert", "-O", "qcow2", raw_s, qcow.to_str().unwrap()],
    );
    std::fs::remove_file(&raw).unwrap();
    (base, size)
}

#[test]
fn full_build_disk_fails_clearly_and_leaves_nothing() {
    let Some(lab) = lab("diskfull") else { return };
    let pools = lab.pools();
    // nodejs's closure installs about 106 MiB on the base (calibration/packages/). The disk
    // gets 16 MiB free; `apt-get update` frees the base's ~49 MiB of archive lists (the local
    // repository replaces the archive's sources), which still leaves about 40 MiB too little.
    let cache = lab.state.path().parent().unwrap().join("prae-build-repos");
    let repo = build::repo::prepare(&lab.debian, &cache, "nodejs", "debian12").unwrap();
    let need_mib = repo.installed_size_kib() / 1024;
    let (base, disk) = tight_base(&lab.debian, lab.state.path(), 16);
    assert!(need_mib > 100, "nodejs's closure is only {need_mib} MiB");
    let mut args = build_args(&lab, &pools, "nodejs");
    args.extend([
        "--base".into(),
        base.display().to_string(),
        "--repo".into(),
        repo.dir.display().to_string(),
        "--disk-size".into(),
        format!("{}MiB", disk >> 20),
    ]);
    let t = Instant::now();
    let run = run_json(
        lab.command(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        |_, _| false,
    );
    println!("failed build took {:?}", t.elapsed());
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let err = run.stderr.trim();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(
        err.contains("installing nodejs filled the build disk: no space left on its")
            && err.contains("-root.qcow2): ")
            && err.contains("No space left on device"),
        "{err}"
    );
    assert!(
        run.events.iter().any(|(_, e)| e["step"] == "install"),
        "never got to install"
    );
    assert!(run.manifest.is_none());
    let hv = Libvirt::open(Some(URI)).unwrap();
    assert!(lab.domains(&hv).is_empty(), "a domain was left");
    assert!(
        hv.volume_list(&pools.0).unwrap().is_empty(),
        "overlays left"
    );
    // No image, whole or partial: the images pool was never needed.
    let images = hv.volume_list(&pools.1).unwrap_or_default();
    assert!(images.is_empty(), "image volumes left: {images:?}");
    let store = Store::open(lab.state.path().join("prae.db")).unwrap();
    let b = store.builds().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].state, prae::store::BuildState::Failed);
    assert!(
        b[0].error
            .as_deref()
            .unwrap_or("")
            .contains("filled the build disk"),
        "{:?}",
        b[0].error
    );
}

//! The image-build guest end to end against a real libvirtd and QEMU (`qemu:///system`, TCG): a
//! Debian 12 guest boots from a qcow2 overlay of the lab's base image, its guest agent answers,
//! and a package is installed through the agent from an offline repository on a second disk.
//!
//! Runs only with `PRAE_LAB=1` and `PRAE_LAB_DEBIAN` set to the directory
//! `tests/lab/build-debian.sh` printed; otherwise it prints "skipped: ..." and passes. The
//! repository disk comes from `tests/lab/make-repo.sh` (run by the test; cached). libvirtd from
//! `tests/lab/start-libvirtd.sh`. See `tests/lab/README.md`.
//!
//! Everything the test creates (the domain `prae-lab-debian-<pid>`, the overlays in a temporary
//! directory `$PRAE_LAB_DIR/prae-lab-debian-<pid>.*`) is removed by a guard, also when the test
//! fails; what a killed run left is removed by the next run. The serial log in
//! `$PRAE_LAB_DIR/logs/` is kept only when the test fails.

#[path = "common/lab.rs"]
mod lab;

use lab::{DebianLab as Lab, URI};
use prae::build::guest::{base64_decode, base64_encode};
use prae::domain::template::{self, DiskImage, ImageFormat, TemplateValues};
use prae::hypervisor::{DomainState, DomainStats, Hypervisor, Libvirt, VirtType};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// From `start` to the agent's first `guest-ping` answer (measured under TCG: 15-20 s on an
/// idle host, 54 s with the host's two cores busy compiling).
const AGENT_DEADLINE: Duration = Duration::from_secs(120);
/// For one command run through `guest-exec`.
const EXEC_DEADLINE: Duration = Duration::from_secs(180);
/// From asking for a shutdown to the domain being shut off (per method tried).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);
/// How often stats are sampled while a command runs.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const MIB: u64 = 1024;
/// The guest's `PATH` for commands run through the agent (`guest-exec` with `env` replaces the
/// agent's environment).
const GUEST_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `Some(lab)` when `PRAE_LAB=1` and `PRAE_LAB_DEBIAN` is set; `None` (after printing why)
/// otherwise. Panics when they are set but the image directory is incomplete.
fn lab() -> Option<Lab> {
    let lab = lab::debian_lab()?;
    for f in ["base.qcow2", "vmlinuz", "initrd.img", "manifest"] {
        assert!(
            lab.debian.join(f).is_file(),
            "PRAE_LAB_DEBIAN={} has no {f}; run tests/lab/build-debian.sh",
            lab.debian.display()
        );
    }
    Some(lab)
}

/// Runs `tests/lab/make-repo.sh PKG...` (arguments passed as such, no shell) and returns the
/// directory it printed last.
fn make_repo(lab: &Lab, packages: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/make-repo.sh");
    let out = Command::new(&script)
        .args(packages)
        .env("PRAE_LAB_DEBIAN", &lab.debian)
        .env("PRAE_LAB_DIR", &lab.lab_dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "make-repo.sh {packages:?} failed ({}):\n{stdout}",
        out.status
    );
    let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        dir.join("repo.img").is_file(),
        "make-repo.sh printed {dir:?}, which has no repo.img"
    );
    dir
}

/// `qemu-img create -f qcow2 -F <backing_format> -b <backing> <overlay>`.
fn overlay(backing: &Path, backing_format: &str, overlay: &Path) {
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", backing_format, "-b"])
        .arg(backing)
        .arg(overlay)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "qemu-img create {}: {}",
        overlay.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The guest this test defined. Dropping it destroys and undefines the domain, then removes
/// its overlays (the temporary directory) and, unless the test is failing, its serial log.
struct Guest<'a> {
    hv: &'a Libvirt,
    name: String,
    log: PathBuf,
    _overlays: tempfile::TempDir,
}

impl Guest<'_> {
    fn state(&self) -> Option<DomainState> {
        self.hv.domain_info(&self.name).ok().map(|i| i.state)
    }

    /// The last `n` lines of the serial console, for failure messages.
    fn log_tail(&self, n: usize) -> String {
        lab::log_tail(&self.log, n)
    }

    /// One guest agent command; the reply's `return` value.
    fn agent(&self, command: &Value, timeout_secs: i32) -> Result<Value, String> {
        let reply = self
            .hv
            .agent_command(&self.name, &command.to_string(), timeout_secs)
            .map_err(|e| e.to_string())?;
        let v: Value =
            serde_json::from_str(&reply).map_err(|e| format!("agent reply {reply:?}: {e}"))?;
        v.get("return")
            .cloned()
            .ok_or_else(|| format!("agent reply without return: {reply}"))
    }

    /// Runs `path args...` in the guest through `guest-exec` (no shell), with `input` on its
    /// stdin, and polls `guest-exec-status` until it exits or `deadline` passes (then panics:
    /// the guard destroys the guest). `tick` runs between polls (stats sampling).
    fn exec(
        &self,
        path: &str,
        args: &[&str],
        input: Option<&[u8]>,
        deadline: Duration,
        mut tick: impl FnMut(),
    ) -> Exec {
        let mut arguments = json!({
            "path": path,
            "arg": args,
            "env": [GUEST_PATH, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"],
            "capture-output": true,
        });
        if let Some(input) = input {
            arguments["input-data"] = Value::from(base64_encode(input));
        }
        let started = Instant::now();
        let what = format!("{path} {}", args.join(" "));
        let pid = self
            .agent(
                &json!({"execute": "guest-exec", "arguments": arguments}),
                30,
            )
            .unwrap_or_else(|e| panic!("{}: guest-exec {what}: {e}", self.name))["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{}: guest-exec {what}: no pid", self.name));
        loop {
            tick();
            let status = self
                .agent(
                    &json!({"execute": "guest-exec-status", "arguments": {"pid": pid}}),
                    30,
                )
                .unwrap_or_else(|e| panic!("{}: guest-exec-status {what}: {e}", self.name));
            if status["exited"].as_bool() == Some(true) {
                let text = |key: &str| {
                    let b64 = status[key].as_str().unwrap_or("");
                    let bytes = base64_decode(b64)
                        .unwrap_or_else(|| panic!("{key} of {what} is not base64: {b64:?}"));
                    String::from_utf8_lossy(&bytes).into_owned()
                };
                let (stdout, stderr) = (text("out-data"), text("err-data"));
                return Exec {
                    what,
                    exit_code: status["exitcode"].as_i64(),
                    signal: status["signal"].as_i64(),
                    stdout,
                    stderr,
                    elapsed: started.elapsed(),
                };
            }
            assert!(
                started.elapsed() < deadline,
                "{}: {what} still running after {deadline:?}; serial log tail:\n{}",
                self.name,
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `exec` that must exit 0.
    fn run(&self, path: &str, args: &[&str], input: Option<&[u8]>, tick: impl FnMut()) -> Exec {
        let r = self.exec(path, args, input, EXEC_DEADLINE, tick);
        assert!(r.ok(), "{}: {r}", self.name);
        println!("{}: `{}` took {:?}", self.name, r.what, r.elapsed);
        r
    }

    /// Waits until the domain is shut off; `true` when it is within `deadline`.
    fn wait_shutoff(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if self.state() == Some(DomainState::Shutoff) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }
}

impl Drop for Guest<'_> {
    fn drop(&mut self) {
        // The overlays go when `_overlays` drops, after the domain.
        lab::remove_domain(self.hv, &self.name);
        if std::thread::panicking() {
            eprintln!("{}: serial log kept at {}", self.name, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// What a `guest-exec` returned.
struct Exec {
    what: String,
    exit_code: Option<i64>,
    signal: Option<i64>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Exec {
    fn ok(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none()
    }
}

impl std::fmt::Display for Exec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {:?} (signal {:?}) after {:?}\nstdout:\n{}\nstderr:\n{}",
            self.what, self.exit_code, self.signal, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Removes what killed or failed runs of this test left: domains `prae-lab-debian-<pid>`,
/// overlay directories `$PRAE_LAB_DIR/prae-lab-debian-<pid>.*` and serial logs
/// `$PRAE_LAB_DIR/logs/prae-lab-debian-<pid>.log` of processes that no longer exist. Runs of
/// live processes are left alone.
fn remove_leftovers(hv: &Libvirt, lab_dir: &Path) {
    let dead = |name: &str| {
        name.strip_prefix("prae-lab-debian-")
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    for d in hv.list_domains().expect("list domains") {
        if dead(&d.name) {
            eprintln!("removing the leftover domain {}", d.name);
            if d.state != DomainState::Shutoff {
                let _ = hv.destroy(&d.name);
            }
            let _ = hv.undefine(&d.name);
        }
    }
    for entry in std::fs::read_dir(lab_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains('.') && dead(&name) && entry.path().is_dir() {
            eprintln!("removing the leftover {}", entry.path().display());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    for entry in std::fs::read_dir(lab_dir.join("logs"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(domain) = name.strip_suffix(".log")
            && dead(domain)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The record of `name` in all-domain stats, if any.
fn stats_of(hv: &Libvirt, name: &str) -> Option<DomainStats> {
    hv.all_domain_stats()
        .expect("all_domain_stats")
        .into_iter()
        .find(|s| s.name == name)
}

fn block<'s>(s: &'s DomainStats, disk: &str) -> &'s prae::hypervisor::BlockStats {
    s.blocks
        .iter()
        .find(|b| b.name == disk)
        .unwrap_or_else(|| panic!("no block stats for {disk}: {s:?}"))
}

/// The Debian image-build guest: boot from an overlay, agent, offline install of `hello` from a
/// repository disk attached at define time, stats during the install, clean power-off.
#[test]
fn debian_guest_installs_a_package_offline() {
    let Some(lab) = lab() else { return };
    let t = Instant::now();
    let repo = make_repo(&lab, &["hello"]);
    println!("make-repo.sh hello: {:?}", t.elapsed());

    let hv = Libvirt::open(Some(URI))
        .unwrap_or_else(|e| panic!("{e}; is libvirtd running? (tests/lab/start-libvirtd.sh)"));
    let name = format!("prae-lab-debian-{}", std::process::id());
    let log_dir = lab.lab_dir.join("logs");
    std::fs::create_dir_all(&log_dir).expect("create the log directory");
    let log = log_dir.join(format!("{name}.log"));
    remove_leftovers(&hv, &lab.lab_dir);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .tempdir_in(&lab.lab_dir)
        .expect("temporary directory for the overlays");
    let root = dir.path().join("root.qcow2");
    let repo_disk = dir.path().join("repo.qcow2");
    overlay(&lab.debian.join("base.qcow2"), "qcow2", &root);
    // The cached repository image is never written: the guest gets an overlay of it too.
    overlay(&repo.join("repo.img"), "raw", &repo_disk);

    let mut v = TemplateValues::new(&name, VirtType::Qemu, 1024 * MIB, 2);
    v.kernel = Some(lab.debian.join("vmlinuz"));
    v.initrd = Some(lab.debian.join("initrd.img"));
    v.disk = Some(DiskImage::new(&root, ImageFormat::Qcow2));
    v.disk2 = Some(DiskImage::new(&repo_disk, ImageFormat::Qcow2));
    v.serial_log = Some(log.clone());
    let xml = template::render("debian12", &v).expect("render debian12");

    let defined = hv
        .define(&xml)
        .unwrap_or_else(|e| panic!("define {name}: {e}\n{xml}"));
    assert_eq!(defined, name);
    let guest = Guest {
        hv: &hv,
        name: name.clone(),
        log,
        _overlays: dir,
    };

    let started = Instant::now();
    hv.start(&name).expect("start");
    while let Err(last_err) = guest.agent(&json!({"execute": "guest-ping"}), 5) {
        assert!(
            started.elapsed() < AGENT_DEADLINE,
            "{name}: no guest-ping answer after {AGENT_DEADLINE:?} (last error: {last_err}); \
             serial log tail:\n{}",
            guest.log_tail(40)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let boot = started.elapsed();
    println!("{name}: guest agent answered {boot:?} after start");
    let info = guest
        .agent(&json!({"execute": "guest-info"}), 10)
        .expect("guest-info");
    println!("{name}: qemu-ga {}", info["version"]);
    // Boot jobs still run when the agent first answers; a build measures only its own work, so
    // it waits for the boot to finish (`running`, or `degraded` when some unit failed).
    let noop = || {};
    let state = guest.exec(
        "/usr/bin/systemctl",
        &["is-system-running", "--wait"],
        None,
        EXEC_DEADLINE,
        noop,
    );
    let state_name = state.stdout.trim();
    println!(
        "{name}: system {state_name} {:?} after start",
        started.elapsed()
    );
    if state_name != "running" {
        let failed = guest.exec(
            "/usr/bin/systemctl",
            &["--failed"],
            None,
            EXEC_DEADLINE,
            noop,
        );
        println!("{name}: {failed}");
    }
    assert!(
        matches!(state_name, "running" | "degraded"),
        "{name}: boot did not finish: {state}"
    );
    let analyze = guest.exec("/usr/bin/systemd-analyze", &[], None, EXEC_DEADLINE, noop);
    println!("{name}: {}", analyze.stdout.lines().next().unwrap_or(""));

    // The repository is the only package source.
    guest.run("/bin/mkdir", &["-p", "/mnt/repo"], None, noop);
    guest.run(
        "/bin/mount",
        &["-o", "ro", "/dev/vdb", "/mnt/repo"],
        None,
        noop,
    );
    guest.run(
        "/usr/bin/find",
        &["/etc/apt/sources.list.d", "-mindepth", "1", "-delete"],
        None,
        noop,
    );
    guest.run(
        "/usr/bin/tee",
        &["/etc/apt/sources.list"],
        Some(b"deb [trusted=yes] file:/mnt/repo ./\n"),
        noop,
    );

    let before = stats_of(&hv, &name).expect("stats of the running guest");
    let mut samples: Vec<(Duration, DomainStats)> = Vec::new();
    let mut last_sample = Instant::now() - SAMPLE_EVERY;
    let install_started = Instant::now();
    let mut sample = || {
        if last_sample.elapsed() >= SAMPLE_EVERY {
            last_sample = Instant::now();
            if let Some(s) = stats_of(&hv, &name) {
                samples.push((install_started.elapsed(), s));
            }
        }
    };
    let update = guest.run("/usr/bin/apt-get", &["update"], None, &mut sample);
    // Every source apt fetched from is the repository disk.
    let fetched: Vec<&str> = update
        .stdout
        .lines()
        .filter(|l| {
            ["Get:", "Hit:", "Ign:", "Err:"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(
        !fetched.is_empty() && fetched.iter().all(|l| l.contains("file:/mnt/repo")),
        "apt used another source:\n{update}"
    );
    guest.run(
        "/usr/bin/apt-get",
        &["install", "-y", "hello"],
        None,
        &mut sample,
    );
    let install_time = install_started.elapsed();
    let after = stats_of(&hv, &name).expect("stats after the install");
    println!(
        "{name}: apt-get update + install hello: {install_time:?} ({} stats samples)",
        samples.len()
    );

    let hello = guest.run("/usr/bin/hello", &[], None, noop);
    assert_eq!(hello.stdout.trim(), "Hello, world!", "{hello}");
    let status = guest.run("/usr/bin/dpkg", &["-s", "hello"], None, noop);
    assert!(
        status.stdout.contains("Status: install ok installed"),
        "{status}"
    );
    let version = status
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or("?");
    println!("{name}: hello {version} installed");

    // Stats moved during the install.
    let cpu = |s: &DomainStats| s.cpu_time_ns.expect("cpu.time");
    assert!(
        cpu(&after) > cpu(&before),
        "cpu.time did not grow: {before:?} -> {after:?}"
    );
    let (vda0, vda1) = (block(&before, "vda"), block(&after, "vda"));
    assert!(
        vda1.wr_bytes > vda0.wr_bytes,
        "no writes to vda during the install: {vda0:?} -> {vda1:?}"
    );
    let (vdb0, vdb1) = (block(&before, "vdb"), block(&after, "vdb"));
    assert!(
        vdb1.rd_bytes > vdb0.rd_bytes,
        "the repository disk was not read during the install: {vdb0:?} -> {vdb1:?}"
    );
    for s in [&before, &after] {
        assert!(
            s.balloon_rss_kib.is_some() && s.balloon_available_kib.is_some(),
            "balloon stats missing: {s:?}"
        );
    }
    assert!(!samples.is_empty(), "no stats sampled during the install");
    let usable: Vec<u64> = samples
        .iter()
        .filter_map(|(_, s)| s.balloon_usable_kib)
        .collect();
    println!(
        "{name}: during the install cpu.time +{:.2} s, vda +{} KiB written, vdb +{} KiB read, \
         balloon.usable {:?}..{:?} KiB, rss {:?} -> {:?} KiB",
        (cpu(&after) - cpu(&before)) as f64 / 1e9,
        (vda1.wr_bytes - vda0.wr_bytes) / 1024,
        (vdb1.rd_bytes - vdb0.rd_bytes) / 1024,
        usable.iter().min(),
        usable.iter().max(),
        before.balloon_rss_kib,
        after.balloon_rss_kib,
    );

    // Power off: the agent's guest-shutdown first (it sends no reply when it works), then
    // `systemctl poweroff` through guest-exec.
    let asked = Instant::now();
    let reply = guest.agent(&json!({"execute": "guest-shutdown"}), 10);
    let method = if guest.wait_shutoff(SHUTDOWN_DEADLINE) {
        "guest-shutdown"
    } else {
        println!("{name}: guest-shutdown ({reply:?}) did not power off; trying systemctl poweroff");
        let _ = guest.agent(
            &json!({"execute": "guest-exec", "arguments": {
                "path": "/usr/bin/systemctl", "arg": ["poweroff"], "env": [GUEST_PATH],
            }}),
            10,
        );
        assert!(
            guest.wait_shutoff(SHUTDOWN_DEADLINE),
            "{name}: still {:?} after guest-shutdown and systemctl poweroff; serial log tail:\n{}",
            guest.state(),
            guest.log_tail(30)
        );
        "systemctl poweroff"
    };
    println!(
        "{name}: shut off {:?} after {method} (agent reply: {reply:?})",
        asked.elapsed()
    );
    drop(guest);
    assert!(
        hv.domain_info(&name).is_err(),
        "{name} is still defined after cleanup"
    );
}

/// The base64 helpers against RFC 4648's test vectors (no lab needed).
#[test]
fn base64_round_trips() {
    let vectors = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in vectors {
        assert_eq!(base64_encode(plain.as_bytes()), encoded);
        assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
    }
    assert_eq!(base64_decode("Zm9v\nYmFy").as_deref(), Some(&b"foobar"[..]));
    assert_eq!(base64_decode("Zm9vY"), None);
    assert_eq!(base64_decode("Zm9*"), None);
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
}

//! Command orchestration against a real libvirtd and QEMU (`qemu:///system`, TCG) with the
//! Debian lab guest and its QEMU guest agent.
//!
//! Runs only with `PRAE_LAB=1` and `PRAE_LAB_DEBIAN` (the directory `tests/lab/build-debian.sh`
//! printed); otherwise it prints "skipped: ..." and passes. libvirtd from
//! `tests/lab/start-libvirtd.sh`.
//!
//! The guest (`prae-lab-exec-<pid>`) boots with 256 MiB of 1 GiB (balloon) and 1 of 2 vCPUs,
//! on a qcow2 overlay in a temporary directory under `$PRAE_LAB_DIR`; a guard destroys and
//! undefines it and removes the overlay, also when the test fails, and leftovers of killed runs
//! are removed by the next run.
//!
//! - `memory_is_added_before_a_300_mib_command` (acceptance): `dd bs=300M` (allocates and
//!   touches 300 MiB) is run twice side by side, first with the domain as it is (the guest's
//!   OOM killer ends it), then through the orchestrator, which balloons memory up before it
//!   starts; it completes, and the domain is back at 256 MiB afterwards.
//! - `vcpu_hotplug_speeds_up_a_parallel_command` (`#[ignore]`, a benchmark run by
//!   `benches/exec-vcpu.sh`): a CPU-bound `xargs -P 2` command without and with vCPU hotplug;
//!   prints the times and their ratio, asserts nothing about time.

#[path = "common/lab.rs"]
mod lab;

use lab::{DebianLab as Lab, URI};
use prae::build::guest::Agent;
use prae::domain::template::{self, DiskImage, ImageFormat, TemplateValues};
use prae::exec::{self, Orchestrator, Phase, Request};
use prae::hypervisor::{Hypervisor, Libvirt, VirtType};
use prae::model::Tier;
use prae::store::Store;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// From `start` to the agent's first answer (15-20 s idle, 54 s with the host busy, over
/// 300 s at a load average of 22 with two guests booting).
const AGENT_DEADLINE: Duration = Duration::from_secs(600);
const MIB: u64 = 1024;
const PREFIX: &str = "prae-lab-exec-";

/// The booted guest; dropping it destroys and undefines it, then removes its overlay.
struct Guest<'a> {
    hv: &'a Libvirt,
    name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Guest<'_> {
    fn drop(&mut self) {
        lab::remove_domain(self.hv, &self.name);
    }
}

/// Removes domains and overlay directories of this test's runs whose process is gone.
fn remove_leftovers(hv: &Libvirt, lab_dir: &Path) {
    let dead = |name: &str| {
        name.strip_prefix(PREFIX)
            .and_then(|rest| rest.split(['.', '-']).next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    for d in hv.list_domains().expect("list domains") {
        if dead(&d.name) {
            eprintln!("removing the leftover domain {}", d.name);
            lab::remove_domain_quietly(hv, &d.name);
        }
    }
    for entry in std::fs::read_dir(lab_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dead(&name) && entry.path().is_dir() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Defines and boots the Debian guest with `memory_mib` of 1 GiB and 1 of `max_vcpus` vCPUs;
/// returns when its agent answers and systemd finished booting.
fn boot<'a>(hv: &'a Libvirt, lab: &Lab, tag: &str, memory_mib: u64, max_vcpus: u32) -> Guest<'a> {
    remove_leftovers(hv, &lab.lab_dir);
    let name = format!("{PREFIX}{}-{tag}", std::process::id());
    let dir = tempfile::Builder::new()
        .prefix(&format!("{name}."))
        .tempdir_in(&lab.lab_dir)
        .expect("temporary directory for the overlay");
    let root = dir.path().join("root.qcow2");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(lab.debian.join("base.qcow2"))
        .arg(&root)
        .output()
        .expect("run qemu-img");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v = TemplateValues::new(&name, VirtType::Qemu, 1024 * MIB, 1);
    v.current_memory_kib = Some(memory_mib * MIB);
    v.max_vcpus = Some(max_vcpus);
    v.kernel = Some(lab.debian.join("vmlinuz"));
    v.initrd = Some(lab.debian.join("initrd.img"));
    v.disk = Some(DiskImage::new(&root, ImageFormat::Qcow2));
    v.serial_log = Some(dir.path().join("serial.log"));
    let xml = template::render("debian12", &v).expect("render debian12");
    hv.define(&xml)
        .unwrap_or_else(|e| panic!("define {name}: {e}"));
    let guest = Guest {
        hv,
        name: name.clone(),
        _dir: dir,
    };
    let t = Instant::now();
    hv.start(&name).expect("start");
    let agent = Agent { hv, domain: &name };
    agent.wait(AGENT_DEADLINE).expect("guest agent");
    // Balloon statistics every second (the template asks for 5), so short peaks are seen.
    let period = Command::new("virsh")
        .args(["-c", URI, "dommemstat", &name, "--period", "1", "--live"])
        .output()
        .expect("run virsh");
    assert!(
        period.status.success(),
        "{}",
        String::from_utf8_lossy(&period.stderr)
    );
    let _ = agent.exec(
        "/usr/bin/systemctl",
        &["is-system-running", "--wait"],
        None,
        Duration::from_secs(120),
        || {},
    );
    println!("{name}: booted in {:?}", t.elapsed());
    guest
}

/// Waits (up to 180 s) until the balloon has brought the guest's memory within 3% of
/// `kib` (libvirt reports what the balloon reached, which trails a change by seconds to
/// minutes under TCG); returns the last reading.
fn settle(hv: &Libvirt, name: &str, kib: u64) -> u64 {
    let t = Instant::now();
    loop {
        let now = hv.domain_info(name).unwrap().memory_kib;
        if now.abs_diff(kib) * 100 <= kib * 3 || t.elapsed() > Duration::from_secs(180) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn argv(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn orchestrator<'a>(hv: &'a Libvirt, store: &'a mut Store) -> Orchestrator<'a> {
    Orchestrator {
        hv,
        store,
        poll: Duration::from_millis(500),
        sample_every: Duration::from_millis(500),
    }
}

#[test]
fn memory_is_added_before_a_300_mib_command() {
    let Some(lab) = lab::debian_lab() else { return };
    let hv = Libvirt::open(Some(URI))
        .unwrap_or_else(|e| panic!("{e}; is libvirtd running? (tests/lab/start-libvirtd.sh)"));
    let guest = boot(&hv, &lab, "mem", 256, 1);
    let name = guest.name.clone();
    let mut store = Store::in_memory().unwrap();
    let model = exec::model(&store).unwrap();
    let cmd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"];
    let t = Instant::now();
    let settled = settle(&hv, &name, 256 * MIB);
    println!("{name}: balloon at {settled} KiB after {:?}", t.elapsed());

    let mut without = Request::new(&name, argv(&cmd));
    without.preallocate = false;
    without.timeout = Duration::from_secs(300);
    let r0 = orchestrator(&hv, &mut store).run(&without, &model).unwrap();
    println!(
        "without pre-allocation: exit {:?} signal {:?} in {:.1} s; stderr: {}",
        r0.exit_code,
        r0.signal,
        r0.used.duration_s,
        r0.stderr.trim()
    );
    assert!(!r0.ok(), "dd bs=300M completed in 256 MiB: {r0:?}");
    assert!(r0.changes.is_empty());

    let mut with = Request::new(&name, argv(&cmd));
    with.tier = Tier::Medium;
    with.timeout = Duration::from_secs(300);
    let r1 = orchestrator(&hv, &mut store).run(&with, &model).unwrap();
    for line in prae::cli::exec::summary(&r1, Tier::Medium) {
        println!("with pre-allocation: {line}");
    }
    assert!(r1.ok(), "dd bs=300M failed with pre-allocation: {r1:?}");
    let before = r1
        .changes
        .iter()
        .find(|c| c.phase == Phase::Before && c.what == "memory")
        .unwrap_or_else(|| panic!("no memory added before the command: {:?}", r1.changes));
    assert_eq!(
        before.from,
        prae::units::format_kib(r1.baseline.memory_kib),
        "{before:?}"
    );
    assert!(r1.baseline.memory_kib < 300 * MIB, "{:?}", r1.baseline);
    assert!(before.error.is_none(), "{before:?}");
    assert!(
        r1.plan.as_ref().unwrap().memory_kib >= 400 * MIB,
        "{:?}",
        r1.plan
    );
    assert!(
        r1.changes
            .iter()
            .any(|c| c.phase == Phase::After && c.what == "memory" && c.error.is_none()),
        "{:?}",
        r1.changes
    );
    let after = settle(&hv, &name, r1.baseline.memory_kib);
    assert!(
        after.abs_diff(r1.baseline.memory_kib) * 100 <= r1.baseline.memory_kib * 3,
        "the balloon is at {after} KiB, not back at {} KiB",
        r1.baseline.memory_kib
    );
    drop(guest);
    assert!(hv.domain_info(&name).is_err(), "{name} is still defined");
}

/// A benchmark, not a test: `benches/exec-vcpu.sh` runs it with `--ignored --nocapture`.
#[test]
#[ignore = "benchmark (benches/exec-vcpu.sh)"]
fn vcpu_hotplug_speeds_up_a_parallel_command() {
    let Some(lab) = lab::debian_lab() else { return };
    let hv = Libvirt::open(Some(URI)).expect("libvirtd");
    let guest = boot(&hv, &lab, "cpu", 512, 2);
    let name = guest.name.clone();
    let mut store = Store::in_memory().unwrap();
    let count = std::env::var("PRAE_BENCH_MIB").unwrap_or_else(|_| "48".into());
    let cmd = argv(&[
        "xargs",
        "-P",
        "2",
        "-I",
        "{}",
        "dd",
        "if=/dev/urandom",
        "of=/dev/null",
        "bs=1M",
        "count={}",
    ]);
    let input = format!("{count}\n{count}\n").into_bytes();
    let model = exec::model(&store).unwrap();
    let rounds: usize = std::env::var("PRAE_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, pre) in [false, true].into_iter().enumerate() {
            let mut r = Request::new(&name, cmd.clone());
            r.stdin = Some(input.clone());
            r.preallocate = pre;
            r.timeout = Duration::from_secs(600);
            let rep = orchestrator(&hv, &mut store).run(&r, &model).unwrap();
            assert!(rep.ok(), "{rep:?}");
            println!(
                "round {round} {}: {:.2} s, plan {:?}, changes {:?}",
                if pre { "with hotplug" } else { "1 vCPU" },
                rep.used.duration_s,
                rep.plan.as_ref().map(|p| p.vcpus),
                rep.changes
                    .iter()
                    .map(|c| format!("{:?} {} {}->{}", c.phase, c.what, c.from, c.to))
                    .collect::<Vec<_>>()
            );
            times[i].push(rep.used.duration_s);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut times[0]), median(&mut times[1]));
    println!(
        "RESULT xargs -P 2 dd urandom {count} MiB x2: 1 vCPU {a:.2} s, hotplugged {b:.2} s, \
         speed-up {:.2}x ({rounds} rounds, medians)",
        a / b
    );
    drop(guest);
}

/// Perl (the guest's perl-base): runs `@ARGV` as a child and prints its peak resident set.
const PEAK_RSS: &str = r#"
my $pid = fork() // die "fork: $!";
if (!$pid) { exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\n"; }
my $hwm = 0;
while (waitpid($pid, 1) == 0) {
    if (open(my $f, '<', "/proc/$pid/status")) {
        while (<$f>) { $hwm = $1 if /^VmHWM:\s+(\d+)/; }
    }
    select(undef, undef, undef, 0.01);
}
my $st = $?;
print STDERR "PRAE_HWM_KIB=$hwm\n";
exit($st >> 8);
"#;

/// Measures the calibration table (`calibration/commands/commands.tsv`): runs each command
/// twice in a guest with room to spare (1 GiB, 2 vCPUs, no pre-allocation) and prints one
/// table row per run, prefixed `ROW\t`. Run by `calibration/commands/measure.sh`.
#[test]
#[ignore = "measurement (calibration/commands/measure.sh)"]
fn calibrate_commands() {
    let Some(lab) = lab::debian_lab() else { return };
    let hv = Libvirt::open(Some(URI)).expect("libvirtd");
    let guest = boot(&hv, &lab, "cal", 1024, 2);
    let name = guest.name.clone();
    // Online the second vCPU: the guest starts with 1 of 2.
    hv.set_vcpus(&name, 2, prae::hypervisor::Scope::Live)
        .expect("plug vCPU 1");
    let agent = Agent {
        hv: &hv,
        domain: &name,
    };
    let _ = agent.call(
        &serde_json::json!({"execute": "guest-set-vcpus",
                            "arguments": {"vcpus": [{"logical-id": 1, "online": true}]}}),
        10,
    );
    let mut store = Store::in_memory().unwrap();
    let model = exec::Model::default();
    let xargs = |p: &'static str| {
        vec![
            "xargs",
            "-P",
            p,
            "-I",
            "{}",
            "dd",
            "if=/dev/urandom",
            "of=/dev/null",
            "bs=1M",
            "count={}",
        ]
    };
    let commands: Vec<(Vec<&str>, Option<&str>)> = vec![
        (
            vec!["dd", "if=/dev/zero", "of=/dev/null", "bs=50M", "count=1"],
            None,
        ),
        (
            vec!["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"],
            None,
        ),
        (
            vec!["dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"],
            None,
        ),
        (
            vec!["dd", "if=/dev/zero", "of=/dev/null", "bs=300M", "count=1"],
            None,
        ),
        (
            vec![
                "dd",
                "if=/dev/zero",
                "of=/var/tmp/z",
                "bs=1M",
                "count=64",
                "conv=fsync",
            ],
            None,
        ),
        (
            vec![
                "dd",
                "if=/dev/zero",
                "of=/var/tmp/z",
                "bs=1M",
                "count=128",
                "conv=fsync",
            ],
            None,
        ),
        (
            vec!["dd", "if=/dev/urandom", "of=/dev/null", "bs=1M", "count=32"],
            None,
        ),
        (vec!["sha256sum", "/var/tmp/z"], None),
        (vec!["gzip", "-1", "-k", "-f", "/var/tmp/z"], None),
        (
            vec![
                "tar",
                "-czf",
                "/var/tmp/lib.tgz",
                "/usr/lib/x86_64-linux-gnu/perl-base",
            ],
            None,
        ),
        (
            vec!["find", "/usr", "-xdev", "-type", "f", "-size", "+1M"],
            None,
        ),
        (xargs("1"), Some("24\n24\n")),
        (xargs("2"), Some("24\n24\n")),
    ];
    println!("ROW\t{}", exec::calibration::HEADER);
    for (cmd, input) in &commands {
        for _ in 0..2 {
            // The guest's perl-base runs the command (fork + exec of the argument vector, no
            // shell) and follows its peak resident set (VmHWM) every 10 ms: balloon statistics
            // (1 s) miss the peak of a command that runs for a second or two.
            let mut wrapped = argv(&["perl", "-e", PEAK_RSS, "--"]);
            wrapped.extend(argv(cmd));
            let mut r = Request::new(&name, wrapped);
            r.preallocate = false;
            r.stdin = input.map(|s| s.as_bytes().to_vec());
            r.timeout = Duration::from_secs(600);
            let rep = orchestrator(&hv, &mut store).run(&r, &model).unwrap();
            assert!(rep.ok(), "{rep:?}");
            let mut u = rep.used;
            u.memory_kib = rep
                .stderr
                .lines()
                .find_map(|l| l.strip_prefix("PRAE_HWM_KIB="))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no peak RSS from the wrapper: {rep:?}"));
            println!(
                "ROW\t{:.3}\t{:.0}\t{:.0}\t{:.0}\t{:.0}\t{:.2}\t{}",
                u.cpu_cores,
                u.memory_kib,
                u.disk_read_bytes,
                u.disk_write_bytes,
                u.net_bytes,
                u.duration_s,
                exec::analysis::join_key(&argv(cmd))
            );
        }
    }
    drop(guest);
}

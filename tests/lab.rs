//! Integration tests against a real libvirtd and QEMU guest (`qemu:///system`, TCG).
//!
//! They run only with `PRAE_LAB=1`; otherwise each prints "skipped: ..." and passes. With it set,
//! every failure is a real failure. The guest (kernel + busybox initramfs) comes from
//! `tests/lab/build-guest.sh`, whose last output line goes into `PRAE_LAB_GUEST`; the daemons
//! from `tests/lab/start-libvirtd.sh`. See `tests/lab/README.md` for the whole sequence.
//!
//! The guest reports on its serial console, which libvirt writes to a file; the tests read that
//! file, polling with a deadline (`wait_until`), never sleeping a fixed time.

#[path = "common/lab.rs"]
mod lab;

use lab::{connect, wait_until};
use prae::domain::template::{self, TemplateValues};
use prae::hypervisor::{Hypervisor, Libvirt, Scope, VirtType};
use prae::model::{Allocation, Provenance, ResourceProfile};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a guest may take from start to its first report (measured: about 3 s under TCG).
const BOOT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a live change may take to show in the guest (measured: under 1 s).
const CHANGE_DEADLINE: Duration = Duration::from_secs(30);
/// The guest powers itself off after this long, in case a test leaks it despite the guard.
const GUEST_POWEROFF_SECS: u32 = 300;
const MIB: u64 = 1024;

/// The lab, when enabled: where the guest is and where logs go.
struct Lab {
    guest: PathBuf,
    log_dir: PathBuf,
}

/// `Some(lab)` when `PRAE_LAB=1`; `None` (after printing why) otherwise. Panics when the lab is
/// enabled but misconfigured: then a skip would hide a broken setup.
fn lab() -> Option<Lab> {
    if !lab::enabled("skipped", "") {
        return None;
    }
    let guest = lab::guest_dir();
    for f in ["vmlinuz", "initrd.img"] {
        assert!(
            guest.join(f).is_file(),
            "PRAE_LAB_GUEST={} has no {f}; run tests/lab/build-guest.sh",
            guest.display()
        );
    }
    // Serial logs go under `PRAE_LAB_DIR`.
    let log_dir = lab::lab_dir().join("logs");
    std::fs::create_dir_all(&log_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_dir.display()));
    Some(Lab { guest, log_dir })
}

/// A domain this test defined. Dropping it destroys and undefines the domain and removes its
/// serial log, also when the test panicked.
struct LabDomain<'a> {
    hv: &'a Libvirt,
    name: String,
    log: PathBuf,
}

impl LabDomain<'_> {
    /// The guest's reports so far.
    fn reports(&self) -> Vec<Report> {
        reports(&self.log)
    }

    /// The last `n` lines of the serial log, for failure messages.
    fn log_tail(&self, n: usize) -> String {
        lab::log_tail(&self.log, n)
    }

    /// Waits until the guest's latest report satisfies `ok`; returns that report.
    fn wait_for_report(
        &self,
        deadline: Duration,
        what: &str,
        ok: impl Fn(&Report) -> bool,
    ) -> Report {
        wait_until(deadline, || {
            self.reports().last().filter(|r| ok(r)).cloned()
        })
        .unwrap_or_else(|waited| {
            panic!(
                "{}: no report with {what} after {waited:?}; reports: {:?}\nserial log tail:\n{}",
                self.name,
                self.reports(),
                self.log_tail(30)
            )
        })
    }
}

impl Drop for LabDomain<'_> {
    fn drop(&mut self) {
        lab::remove_domain(self.hv, &self.name);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Defines `xml` (whose name must be `name`) and returns its guard.
fn define<'a>(hv: &'a Libvirt, name: &str, log: PathBuf, xml: &str) -> LabDomain<'a> {
    // A domain of this name left by a killed earlier run of this same process id: remove it.
    let exists = hv
        .list_domains()
        .expect("list domains")
        .iter()
        .any(|d| d.name == name);
    if exists {
        drop(LabDomain {
            hv,
            name: name.to_string(),
            log: log.clone(),
        });
    }
    let defined = hv
        .define(xml)
        .unwrap_or_else(|e| panic!("define {name}: {e}\n{xml}"));
    assert_eq!(defined, name);
    LabDomain {
        hv,
        name: defined,
        log,
    }
}

/// One `PRAE nproc=N memtotal_kib=M ...` line of the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    nproc: u32,
    memtotal_kib: u64,
}

/// The guest's reports in the serial log at `path` (none when it does not exist yet).
fn reports(path: &Path) -> Vec<Report> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("PRAE ")?;
            let field = |key: &str| {
                rest.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            };
            Some(Report {
                nproc: field("nproc")?.parse().ok()?,
                memtotal_kib: field("memtotal_kib")?.parse().ok()?,
            })
        })
        .collect()
}

/// Values for the `lab-small` template: `vcpus` of `max_vcpus` online, `memory_kib` of memory.
fn lab_small(lab: &Lab, name: &str, vcpus: u32, max_vcpus: u32, memory_kib: u64) -> TemplateValues {
    let mut v = TemplateValues::new(name, VirtType::Qemu, memory_kib, vcpus);
    v.max_vcpus = Some(max_vcpus);
    v.kernel = Some(lab.guest.join("vmlinuz"));
    v.initrd = Some(lab.guest.join("initrd.img"));
    v.cmdline = format!("prae.poweroff={GUEST_POWEROFF_SECS}");
    v.serial_log = Some(lab.log_dir.join(format!("{name}.log")));
    v
}

fn domain_name(test: &str) -> String {
    format!("prae-lab-{test}-{}", std::process::id())
}

/// A domain rendered small (1 vCPU, 128 MiB), rewritten by prae to 2 vCPUs and 256 MiB, boots
/// with what prae gave it: the guest sees 2 CPUs and a MemTotal of about 256 MiB.
#[test]
fn rewritten_profile_reaches_the_guest() {
    let Some(lab) = lab() else { return };
    let hv = connect();
    let name = domain_name("profile");
    let values = lab_small(&lab, &name, 1, 1, 128 * MIB);
    let log = values.serial_log.clone().unwrap();
    let xml = template::render("lab-small", &values).expect("render lab-small");

    let alloc = Allocation {
        profile: ResourceProfile {
            vcpus: Some(2),
            memory_kib: Some(256 * MIB),
            ..Default::default()
        },
        provenance: Provenance {
            reason: "lab test".into(),
            ..Default::default()
        },
    };
    let rewritten = prae::domain::rewrite(&xml, &alloc).expect("rewrite the lab-small domain");
    assert!(
        rewritten.skipped.is_empty(),
        "rewrite skipped changes: {:?}",
        rewritten.skipped
    );

    let dom = define(&hv, &name, log, &rewritten.xml);
    let started = Instant::now();
    hv.start(&name).expect("start");
    let report = dom.wait_for_report(BOOT_DEADLINE, "any values", |_| true);
    println!(
        "{name}: first report after {:?}: {report:?}",
        started.elapsed()
    );

    assert_eq!(
        report.nproc,
        2,
        "guest sees {} CPUs; serial log:\n{}",
        report.nproc,
        dom.log_tail(30)
    );
    // The kernel keeps some memory for itself: with 256 MiB it reports about 218 MiB (measured:
    // 223352 KiB). With the template's 128 MiB it would report under 128 MiB.
    let mem = report.memtotal_kib;
    assert!(
        (200 * MIB..=256 * MIB).contains(&mem),
        "guest MemTotal {mem} KiB is not consistent with 256 MiB (expected 200-256 MiB)"
    );
    let info = hv.domain_info(&name).expect("domain_info");
    assert_eq!(info.vcpus, 2);
    assert_eq!(info.max_memory_kib, 256 * MIB);
}

/// A guest started with 1 of 2 vCPUs gets the second one live (`set_vcpus(.., Scope::Live)`)
/// and reports 2 CPUs online.
#[test]
fn live_vcpu_hotplug_reaches_the_guest() {
    let Some(lab) = lab() else { return };
    let hv = connect();
    let name = domain_name("hotplug");
    let values = lab_small(&lab, &name, 1, 2, 256 * MIB);
    let log = values.serial_log.clone().unwrap();
    let xml = template::render("lab-small", &values).expect("render lab-small");

    let dom = define(&hv, &name, log, &xml);
    hv.start(&name).expect("start");
    let report = dom.wait_for_report(BOOT_DEADLINE, "any values", |_| true);
    assert_eq!(
        report.nproc, 1,
        "guest booted with {report:?}, expected 1 CPU"
    );

    let plugged = Instant::now();
    hv.set_vcpus(&name, 2, Scope::Live)
        .expect("set_vcpus 2 --live");
    dom.wait_for_report(CHANGE_DEADLINE, "nproc=2", |r| r.nproc == 2);
    println!("{name}: nproc=2 {:?} after set_vcpus", plugged.elapsed());

    assert_eq!(hv.domain_info(&name).expect("domain_info").vcpus, 2);
    // Live only: the persistent definition still boots with 1.
    let inactive = hv
        .domain_xml(&name, prae::hypervisor::XmlKind::Inactive)
        .expect("inactive XML");
    let view = prae::domain::parse(&inactive).expect("parse inactive XML");
    assert_eq!((view.vcpus, view.max_vcpus), (1, 2));
}

/// A running guest's memory is lowered live through the balloon (`set_memory(.., Scope::Live)`):
/// the guest's balloon driver takes the difference out of MemTotal.
#[test]
fn live_balloon_reaches_the_guest() {
    let Some(lab) = lab() else { return };
    let hv = connect();
    let name = domain_name("balloon");
    let values = lab_small(&lab, &name, 1, 1, 256 * MIB);
    let log = values.serial_log.clone().unwrap();
    let xml = template::render("lab-small", &values).expect("render lab-small");

    let dom = define(&hv, &name, log, &xml);
    hv.start(&name).expect("start");
    let before = dom.wait_for_report(BOOT_DEADLINE, "any values", |_| true);

    let target = 192 * MIB;
    hv.set_memory(&name, target, Scope::Live)
        .expect("set_memory 192 MiB --live");
    let shrunk = 256 * MIB - target;
    // The balloon takes exactly the difference (measured: 64 MiB less, to the KiB); allow a
    // page of slack either way.
    let after = dom.wait_for_report(CHANGE_DEADLINE, "MemTotal lowered by 64 MiB", |r| {
        before.memtotal_kib.abs_diff(r.memtotal_kib + shrunk) <= 4
    });
    println!("{name}: MemTotal {before:?} -> {after:?}");
    // libvirt learns the balloon's size from QEMU's BALLOON_CHANGE events, which QEMU rate-limits
    // to one a second: its view lags the guest's.
    let seen = wait_until(CHANGE_DEADLINE, || {
        let kib = hv.domain_info(&name).expect("domain_info").memory_kib;
        (kib == target).then_some(kib)
    });
    assert_eq!(
        seen,
        Ok(target),
        "libvirt never reported {target} KiB: {:?}",
        hv.domain_info(&name)
    );
}

/// The image-build template is accepted by QEMU's driver as rendered (defined, not started:
/// the disk need not exist), with the guest agent channel and both disks.
#[test]
fn debian12_template_is_accepted_by_qemu() {
    let Some(lab) = lab() else { return };
    let hv = connect();
    let name = domain_name("debian12");
    let mut v = TemplateValues::new(&name, VirtType::Qemu, 1024 * MIB, 2);
    v.kernel = Some(lab.guest.join("vmlinuz"));
    v.initrd = Some(lab.guest.join("initrd.img"));
    v.disk = Some(template::DiskImage::new(
        lab.log_dir.join(format!("{name}.qcow2")),
        template::ImageFormat::Qcow2,
    ));
    v.disk2 = Some(template::DiskImage::new(
        lab.log_dir.join(format!("{name}-repo.img")),
        template::ImageFormat::Raw,
    ));
    v.serial_log = Some(lab.log_dir.join(format!("{name}.log")));
    let xml = template::render("debian12", &v).expect("render debian12");

    let dom = define(&hv, &name, v.serial_log.clone().unwrap(), &xml);
    let live = hv
        .domain_xml(&dom.name, prae::hypervisor::XmlKind::Inactive)
        .expect("domain XML");
    let view = prae::domain::parse(&live).expect("parse defined XML");
    assert_eq!(view.domain_type, "qemu");
    assert_eq!((view.vcpus, view.memory_kib), (2, 1024 * MIB));
    let targets: Vec<_> = view.disks.iter().map(|d| d.target.as_str()).collect();
    assert_eq!(targets, ["vda", "vdb"]);
    assert!(live.contains("org.qemu.guest_agent.0"), "{live}");
}

/// The report parser reads what the guest prints (no lab needed).
#[test]
fn serial_reports_are_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serial.log");
    assert!(reports(&log).is_empty());
    std::fs::write(
        &log,
        "[    1.0] boot noise PRAE nproc=9\r\n\
         PRAE ready kernel=6.1 balloon=1 poweroff=60\r\n\
         PRAE nproc=1 memtotal_kib=223352 uptime=2.01 seq=1\r\n\
         PRAE cpu-online id=1\r\n\
         PRAE nproc=2 memtotal_kib=223352 uptime=5.36 seq=2\r\n",
    )
    .unwrap();
    let r = reports(&log);
    assert_eq!(
        r,
        [
            Report {
                nproc: 1,
                memtotal_kib: 223352
            },
            Report {
                nproc: 2,
                memtotal_kib: 223352
            }
        ]
    );
    let waited = wait_until(Duration::from_millis(10), || None::<()>).unwrap_err();
    assert!(waited >= Duration::from_millis(10), "{waited:?}");
}

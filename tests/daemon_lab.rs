//! The daemon against the lab's real libvirtd (`qemu:///system`, QEMU TCG). Runs only with
//! `PRAE_LAB=1` (prints "skipped" and passes otherwise) and `PRAE_LAB_GUEST` (the direct-boot
//! kernel and initramfs `tests/lab/build-guest.sh` made).
//!
//! A plain `virsh define` while the daemon runs ends up rewritten (enforce) or annotated
//! (advise) before it is started; `prae-virsh define` is rewritten synchronously; an opted-out
//! domain is untouched. The daemon intercepts only `prae-dmn-lab-*` here
//! (`intercept_prefix`), so other domains on a shared libvirtd are never touched.

#[path = "daemon/harness.rs"]
mod harness;
#[path = "common/lab.rs"]
mod lab;

use harness::{start, wait_until};
use lab::URI;
use prae::daemon::{Config, Policy, marks};
use prae::domain;
use prae::hypervisor::{DomainState, Hypervisor, Libvirt, XmlKind};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const PREFIX: &str = "prae-dmn-lab-";
const WAIT: Duration = Duration::from_secs(30);

fn lab() -> Option<PathBuf> {
    if !lab::enabled("skipped", "") {
        return None;
    }
    let guest = lab::guest_dir();
    assert!(
        guest.join("vmlinuz").is_file(),
        "{} has no vmlinuz",
        guest.display()
    );
    Some(guest)
}

fn domain_xml(name: &str, guest: &Path, metadata: &str) -> String {
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n  \
         <vcpu placement='static'>1</vcpu>\n  <os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n    \
         <kernel>{k}</kernel>\n    <initrd>{i}</initrd>\n    <cmdline>console=ttyS0</cmdline>\n  </os>\n  \
         <devices>\n    <serial type='pty'/>\n  </devices>\n{metadata}</domain>\n",
        k = guest.join("vmlinuz").display(),
        i = guest.join("initrd.img").display(),
    )
}

/// Defines with plain virsh, as any other client would.
fn virsh_define(dir: &Path, name: &str, xml: &str) {
    let f = dir.join(format!("{name}.xml"));
    std::fs::write(&f, xml).unwrap();
    let o = Command::new("virsh")
        .args(["-q", "-c", URI, "define"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "virsh define: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Domains this test made; removed on drop, also after a panic.
struct Cleanup(Vec<String>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(hv) = Libvirt::open(Some(URI)) {
            for n in &self.0 {
                lab::remove_domain_quietly(&hv, n);
            }
        }
    }
}

fn marks_of(hv: &Libvirt, name: &str) -> marks::Marks {
    marks::marks(&hv.domain_xml(name, XmlKind::Inactive).unwrap()).unwrap()
}

fn lab_daemon(policy: Policy) -> harness::Running {
    let c = Config {
        uri: URI.into(),
        policy,
        intercept_prefix: Some(PREFIX.into()),
        sample_interval_s: 0,
        reconnect_s: 1,
        ..Config::default()
    };
    let connector: prae::daemon::Connector =
        Box::new(|| Libvirt::open(Some(URI)).map(|l| Arc::new(l) as Arc<dyn Hypervisor>));
    let d = start(c, connector, None, false);
    wait_until("libvirt connected", WAIT, || {
        d.daemon.hypervisor().is_some()
    });
    d
}

#[test]
fn virsh_defines_are_rewritten_or_annotated_before_start() {
    let Some(guest) = lab() else { return };
    let hv = Libvirt::open(Some(URI)).unwrap();
    let tag = std::process::id();
    let n = |s: &str| format!("{PREFIX}{s}-{tag}");
    let (enf, opt, pv, adv) = (n("enf"), n("opt"), n("pv"), n("adv"));
    let _c = Cleanup(vec![enf.clone(), opt.clone(), pv.clone(), adv.clone()]);
    let dir = tempfile::tempdir().unwrap();

    // enforce
    let d = lab_daemon(Policy::Enforce);
    virsh_define(
        dir.path(),
        &opt,
        &domain_xml(
            &opt,
            &guest,
            "  <metadata><p:policy xmlns:p='urn:prae:policy:1' mode='off'/></metadata>\n",
        ),
    );
    virsh_define(dir.path(), &enf, &domain_xml(&enf, &guest, ""));
    wait_until("the virsh-defined domain rewritten", WAIT, || {
        marks_of(&hv, &enf).handled
    });
    let v = domain::parse(&hv.domain_xml(&enf, XmlKind::Inactive).unwrap()).unwrap();
    assert_eq!((v.vcpus, v.memory_kib), (2, 2 * 1024 * 1024));
    // It starts with the rewritten allocation.
    hv.start(&enf).unwrap();
    let info = hv.domain_info(&enf).unwrap();
    assert_eq!((info.state, info.vcpus), (DomainState::Running, 2));
    hv.destroy(&enf).unwrap();
    // The opted-out one (defined first, so already looked at) is untouched.
    let o = hv.domain_xml(&opt, XmlKind::Inactive).unwrap();
    assert!(!marks::marks(&o).unwrap().handled && !marks::marks(&o).unwrap().advised);
    assert_eq!(domain::parse(&o).unwrap().vcpus, 1);
    // prae-virsh define: rewritten synchronously, before prae-virsh returns.
    let f = dir.path().join("pv.xml");
    std::fs::write(&f, domain_xml(&pv, &guest, "")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_prae-virsh"))
        .args(["-c", URI, "define"])
        .arg(&f)
        .env("PRAE_TIER", "low")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(marks_of(&hv, &pv).handled);
    d.stop().unwrap();

    // advise
    let d = lab_daemon(Policy::Advise);
    virsh_define(dir.path(), &adv, &domain_xml(&adv, &guest, ""));
    wait_until("the virsh-defined domain annotated", WAIT, || {
        marks_of(&hv, &adv).advised
    });
    let x = hv.domain_xml(&adv, XmlKind::Inactive).unwrap();
    let v = domain::parse(&x).unwrap();
    assert_eq!((v.vcpus, v.memory_kib), (1, 256 * 1024));
    assert!(
        x.contains("urn:prae:advice:1") && x.contains("what=\"vcpu\""),
        "{x}"
    );
    // Still untouched under advise: the opted-out one.
    assert!(!marks_of(&hv, &opt).advised);
    d.stop().unwrap();
}

/// A session libvirtd of its own, run as `nobody` on a private socket, so it can be killed
/// without disturbing the lab's shared one.
struct PrivateLibvirtd {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateLibvirtd {
    fn new() -> PrivateLibvirtd {
        let dir = tempfile::Builder::new()
            .prefix("prae-dmn-lv")
            .tempdir()
            .unwrap();
        std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
        let mut l = PrivateLibvirtd { dir, child: None };
        l.start();
        l
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/libvirt/libvirt-sock")
    }

    fn uri(&self) -> String {
        format!("qemu+unix:///session?socket={}", self.socket().display())
    }

    fn start(&mut self) {
        let d = self.dir.path();
        let child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["libvirtd", "--timeout", "0"])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", d)
            .env("XDG_RUNTIME_DIR", d.join("run"))
            .env("XDG_CONFIG_HOME", d.join("config"))
            .env("XDG_CACHE_HOME", d.join("cache"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("setpriv/libvirtd");
        self.child = Some(child);
        let uri = self.uri();
        wait_until("the private libvirtd answers", WAIT, || {
            Libvirt::open(Some(&uri)).is_ok()
        });
    }

    /// SIGKILL, by pid: libvirtd dies as in a crash.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

impl Drop for PrivateLibvirtd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn health(socket: &Path) -> serde_json::Value {
    prae::daemon::client::call(socket, &prae::daemon::Request::Health)
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn killing_libvirtd_is_reported_predictions_go_on_and_nothing_is_missed() {
    let Some(guest) = lab() else { return };
    let mut lv = PrivateLibvirtd::new();
    let uri = lv.uri();
    let c = Config {
        uri: uri.clone(),
        policy: Policy::Enforce,
        sample_interval_s: 0,
        reconnect_s: 3,
        ..Config::default()
    };
    let u2 = uri.clone();
    let connector: prae::daemon::Connector =
        Box::new(move || Libvirt::open(Some(&u2)).map(|l| Arc::new(l) as Arc<dyn Hypervisor>));
    let d = start(c, connector, None, false);
    wait_until("connected", WAIT, || {
        health(&d.socket)["libvirt"]["connected"] == true
    });
    let dir = tempfile::tempdir().unwrap();
    let define = |name: &str| {
        let f = dir.path().join(format!("{name}.xml"));
        std::fs::write(&f, domain_xml(name, &guest, "")).unwrap();
        let o = Command::new("virsh")
            .args(["-q", "-c", &uri, "define"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let marks_on = |name: &str| {
        let hv = Libvirt::open(Some(&uri)).unwrap();
        marks::marks(&hv.domain_xml(name, XmlKind::Inactive).unwrap()).unwrap()
    };
    define("prae-dmn-kill-before");
    wait_until("rewritten before the kill", WAIT, || {
        marks_on("prae-dmn-kill-before").handled
    });

    lv.kill();
    wait_until("the loss reported", WAIT, || {
        health(&d.socket)["libvirt"]["connected"] == false
    });
    let p = prae::daemon::client::call(
        &d.socket,
        &prae::daemon::Request::Predict(Default::default()),
    )
    .unwrap();
    assert_eq!(p.status, 200, "{}", p.body);

    // libvirtd back; a domain defined at once, most likely before the daemon reconnects (it
    // retries every 3 s): its DEFINED event is then lost and only the rescan can catch it.
    lv.start();
    define("prae-dmn-kill-after");
    let early = health(&d.socket)["libvirt"]["connected"] == false;
    wait_until("reconnected", WAIT, || {
        health(&d.socket)["libvirt"]["connected"] == true
    });
    wait_until("the domain defined meanwhile rewritten", WAIT, || {
        marks_on("prae-dmn-kill-after").handled
    });
    println!("defined before the daemon reconnected: {early} (true: caught by the rescan)");
    let m = prae::daemon::client::call(&d.socket, &prae::daemon::Request::Metrics)
        .unwrap()
        .body;
    assert!(m.contains("prae_libvirt_disconnects_total 1\n"), "{m}");
    d.stop().unwrap();
}

//! `Libvirt`'s raw-FFI paths against a real libvirtd and QEMU (`qemu:///system`).
//!
//! Run only with `PRAE_LAB=1` (each test prints `skipped: set PRAE_LAB=1` and passes otherwise);
//! libvirtd must be running (`tests/lab/start-libvirtd.sh`). The guest is a TCG domain with no
//! bootable device: it sits in its firmware, which is enough for stats, iotune and interface
//! parameters. Every domain is named `prae-lab-hv-*` and destroyed and undefined at the end.

#[path = "common/lab.rs"]
mod lab;

use lab::wait_until;
use prae::Error;
use prae::hypervisor::{Hypervisor, Libvirt, LifecycleKind, Scope, VirtType, XmlKind};
use prae::model::{Bandwidth, IoTune};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;

fn lab() -> Option<Libvirt> {
    if !lab::enabled("skipped", "") {
        return None;
    }
    Some(lab::connect())
}

/// A 16 MiB sparse raw disk in a private temporary directory.
fn scratch_disk(dir: &Path) -> PathBuf {
    let path = dir.join("disk.raw");
    let f = std::fs::File::create(&path).expect("create disk");
    f.set_len(16 << 20).expect("size disk");
    path
}

fn guest_xml(name: &str, disk: &Path, mac: &str) -> String {
    format!(
        "<domain type='qemu'>\
           <name>{name}</name>\
           <memory unit='KiB'>65536</memory>\
           <vcpu placement='static'>1</vcpu>\
           <os><type arch='x86_64' machine='q35'>hvm</type></os>\
           <devices>\
             <disk type='file' device='disk'>\
               <driver name='qemu' type='raw'/>\
               <source file='{}'/>\
               <target dev='vda' bus='virtio'/>\
             </disk>\
             <interface type='ethernet'>\
               <mac address='{mac}'/>\
               <model type='virtio'/>\
             </interface>\
           </devices>\
         </domain>",
        disk.display()
    )
}

/// Destroys and undefines the domain however the test ends.
struct Guest<'a> {
    hv: &'a Libvirt,
    name: String,
    _dir: tempfile::TempDir,
}

impl Drop for Guest<'_> {
    fn drop(&mut self) {
        lab::remove_domain_quietly(self.hv, &self.name);
    }
}

fn running_guest<'a>(hv: &'a Libvirt, name: &str, mac: &str) -> Guest<'a> {
    // A leftover from an interrupted run would make define fail.
    lab::remove_domain_quietly(hv, name);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = scratch_disk(dir.path());
    hv.define(&guest_xml(name, &disk, mac)).expect("define");
    let g = Guest {
        hv,
        name: name.to_string(),
        _dir: dir,
    };
    hv.start(name).expect("start");
    g
}

#[test]
fn all_domain_stats_of_a_running_guest() {
    let Some(hv) = lab() else { return };
    let name = "prae-lab-hv-stats";
    let _g = running_guest(&hv, name, "52:54:00:4c:00:01");
    let s = wait_until(Duration::from_secs(20), || {
        hv.all_domain_stats()
            .unwrap()
            .into_iter()
            .find(|s| s.name == name && s.cpu_time_ns.is_some_and(|t| t > 0))
    })
    .unwrap_or_else(|_| panic!("a stats record with cpu.time for the guest"));
    assert_eq!(s.state, Some(1), "{s:?}");
    assert_eq!(s.balloon_current_kib, Some(65536), "{s:?}");
    assert_eq!(s.balloon_maximum_kib, Some(65536), "{s:?}");
    assert!(s.balloon_rss_kib.is_some_and(|r| r > 0), "{s:?}");
    assert_eq!((s.vcpu_current, s.vcpu_maximum), (Some(1), Some(1)));
    assert_eq!(s.blocks.len(), 1, "{s:?}");
    assert_eq!(s.blocks[0].name, "vda");
    assert_eq!(s.blocks[0].capacity, Some(16 << 20), "{s:?}");
    assert_eq!(s.nets.len(), 1, "{s:?}");
    assert!(!s.nets[0].name.is_empty());
}

#[test]
fn node_stats_on_a_real_host() {
    let Some(hv) = lab() else { return };
    let cap = hv.node_capacity().unwrap();
    assert!(
        cap.cpus > 0 && cap.memory_kib > 0 && cap.free_memory_kib > 0,
        "{cap:?}"
    );
    let mem = hv.node_memory_stats().unwrap();
    assert!(mem.total_kib > 0 && mem.free_kib > 0 && mem.free_kib <= mem.total_kib);
    assert!(
        mem.cached_kib > 0,
        "a real kernel reports page cache: {mem:?}"
    );
    let cpu = hv.node_cpu_stats().unwrap();
    assert!(cpu.idle_ns > 0 && cpu.user_ns > 0, "{cpu:?}");
}

#[test]
fn iotune_live_on_a_running_guest() {
    let Some(hv) = lab() else { return };
    let name = "prae-lab-hv-iotune";
    let _g = running_guest(&hv, name, "52:54:00:4c:00:02");
    let io = IoTune {
        total_bytes_sec: Some(5_000_000),
        total_iops_sec: Some(300),
        ..IoTune::default()
    };
    hv.set_disk_iotune(name, "vda", &io, Scope::Live).unwrap();
    let live = hv.domain_xml(name, XmlKind::Live).unwrap();
    assert!(
        live.contains("<total_bytes_sec>5000000</total_bytes_sec>"),
        "{live}"
    );
    assert!(
        live.contains("<total_iops_sec>300</total_iops_sec>"),
        "{live}"
    );
    let inactive = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert!(!inactive.contains("<iotune>"), "live only: {inactive}");

    // Both scopes at once (QEMU accepts LIVE|CONFIG in one call), replacing the first limits.
    let io2 = IoTune {
        read_bytes_sec: Some(1_000_000),
        write_bytes_sec: Some(2_000_000),
        ..IoTune::default()
    };
    hv.set_disk_iotune(name, "vda", &io2, Scope::Both).unwrap();
    for kind in [XmlKind::Live, XmlKind::Inactive] {
        let xml = hv.domain_xml(name, kind).unwrap();
        assert!(
            xml.contains("<read_bytes_sec>1000000</read_bytes_sec>"),
            "{xml}"
        );
        assert!(
            xml.contains("<write_bytes_sec>2000000</write_bytes_sec>"),
            "{xml}"
        );
        assert!(!xml.contains("<total_bytes_sec>"), "{xml}");
    }
}

#[test]
fn interface_bandwidth_degrades_with_a_clear_error() {
    let Some(hv) = lab() else { return };
    let name = "prae-lab-hv-bandwidth";
    let mac = "52:54:00:4c:00:03";
    let _g = running_guest(&hv, name, mac);
    match hv.set_interface_bandwidth(name, mac, &Bandwidth::symmetric(1000), Scope::Live) {
        // A kernel with sch_sfq shapes traffic: the limit shows in the live XML.
        Ok(()) => {
            let live = hv.domain_xml(name, XmlKind::Live).unwrap();
            assert!(live.contains("<inbound average='1000'"), "{live}");
        }
        Err(e @ Error::Unsupported(_)) => {
            let text = e.to_string();
            assert!(text.contains("sfq"), "{text}");
            assert!(text.contains(name), "{text}");
            assert!(!text.contains('\n'), "{text}");
            println!("as expected on this kernel: {text}");
        }
        Err(e) => panic!("expected Ok or Unsupported, got {e:?}"),
    }
}

#[test]
fn vcpus_and_memory_config_on_qemu() {
    let Some(hv) = lab() else { return };
    let name = "prae-lab-hv-config";
    let g = running_guest(&hv, name, "52:54:00:4c:00:04");
    hv.destroy(name).unwrap();
    hv.set_vcpus(name, 2, Scope::Config).unwrap();
    hv.set_memory(name, 131072, Scope::Config).unwrap();
    let xml = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert!(xml.contains(">2</vcpu>"), "{xml}");
    assert!(xml.contains("<memory unit='KiB'>131072</memory>"), "{xml}");
    hv.start(name).unwrap();
    let info = hv.domain_info(name).unwrap();
    assert_eq!((info.vcpus, info.max_memory_kib), (2, 131072), "{info:?}");
    drop(g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_through_libvirtd() {
    let Some(hv) = lab() else { return };
    let name = "prae-lab-hv-events";
    let mut events = hv.lifecycle_events().unwrap();
    let g = running_guest(&hv, name, "52:54:00:4c:00:05");
    hv.destroy(name).unwrap();
    hv.undefine(name).unwrap();
    drop(g);
    let mut got = Vec::new();
    let collect = async {
        while let Some(ev) = events.next().await {
            if ev.domain == name && ev.kind != LifecycleKind::Other {
                got.push(ev.kind);
                if ev.kind == LifecycleKind::Undefined {
                    break;
                }
            }
        }
    };
    let done = tokio::time::timeout(Duration::from_secs(30), collect).await;
    assert!(
        done.is_ok(),
        "events did not all arrive within 30 s: {got:?}"
    );
    assert_eq!(
        got,
        [
            LifecycleKind::Defined,
            LifecycleKind::Started,
            LifecycleKind::Stopped,
            LifecycleKind::Undefined
        ]
    );
}

#[test]
fn agent_command_without_an_agent_is_a_clear_error() {
    let Some(hv) = lab() else { return };
    let name = "prae-lab-hv-agent";
    let _g = running_guest(&hv, name, "52:54:00:4c:00:06");
    let e = hv
        .agent_command(name, r#"{"execute":"guest-ping"}"#, 5)
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains(name), "{text}");
    assert!(text.contains("agent"), "{text}");
    println!("{text}");
}

#[test]
fn choose_virt_type_gives_a_reason() {
    let Some(hv) = lab() else { return };
    let c = hv.choose_virt_type();
    println!("{c:?}");
    assert!(!c.reason.is_empty());
    if std::env::var("PRAE_VIRT_TYPE").is_err() {
        match c.virt_type {
            VirtType::Kvm => assert!(c.reason.contains("KVM runs guest code"), "{}", c.reason),
            VirtType::Qemu => {}
        }
    }
    // Cached per process: a second answer is the same and immediate.
    let start = Instant::now();
    assert_eq!(hv.choose_virt_type(), c);
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// `agent_command` end to end. Needs, besides `PRAE_LAB=1`, a direct-kernel-boot pair whose
/// init starts `qemu-ga` on the `org.qemu.guest_agent.0` virtio port:
/// `PRAE_LAB_AGENT_KERNEL` and `PRAE_LAB_AGENT_INITRD` (the lab's busybox guest has no agent).
#[test]
fn agent_command_answers_guest_ping() {
    let Some(hv) = lab() else { return };
    let (Some(kernel), Some(initrd)) = (
        std::env::var_os("PRAE_LAB_AGENT_KERNEL"),
        std::env::var_os("PRAE_LAB_AGENT_INITRD"),
    ) else {
        println!("skipped: set PRAE_LAB_AGENT_KERNEL and PRAE_LAB_AGENT_INITRD");
        return;
    };
    let name = "prae-lab-hv-agent-ping";
    let _ = hv.destroy(name);
    let xml = format!(
        "<domain type='qemu'>\
           <name>{name}</name>\
           <memory unit='KiB'>262144</memory>\
           <vcpu>1</vcpu>\
           <os><type arch='x86_64' machine='q35'>hvm</type>\
             <kernel>{}</kernel><initrd>{}</initrd><cmdline>console=ttyS0</cmdline></os>\
           <devices>\
             <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
           </devices>\
         </domain>",
        Path::new(&kernel).display(),
        Path::new(&initrd).display()
    );
    assert_eq!(hv.create(&xml).unwrap(), name);
    struct Transient<'a>(&'a Libvirt, &'a str);
    impl Drop for Transient<'_> {
        fn drop(&mut self) {
            let _ = self.0.destroy(self.1);
        }
    }
    let _g = Transient(&hv, name);
    let mut last = String::new();
    let reply = wait_until(Duration::from_secs(90), || {
        match hv.agent_command(name, r#"{"execute":"guest-ping"}"#, 2) {
            Ok(r) => Some(r),
            Err(e) => {
                last = e.to_string();
                None
            }
        }
    })
    .unwrap_or_else(|_| panic!("no agent reply within 90 s; last error: {last}"));
    assert_eq!(reply.trim(), r#"{"return":{}}"#);
    let info = hv
        .agent_command(name, r#"{"execute":"guest-info"}"#, 10)
        .unwrap();
    assert!(info.contains("\"version\""), "{info}");
}

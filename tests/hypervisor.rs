//! `Libvirt` against libvirt's in-process test driver (`test:///default`).
//!
//! The driver's state is shared by every connection in this process while one is open, and
//! tests run in parallel, so each test uses its own domain/pool names and removes them again.
//! Waits poll with a deadline; nothing sleeps.

use prae::Error;
use prae::hypervisor::{DomainState, Hypervisor, Libvirt, LifecycleKind, Scope, VirtType, XmlKind};
use prae::model::{Bandwidth, BandwidthLimit, IoTune};
use std::time::Duration;
use tokio_stream::StreamExt;

const URI: &str = "test:///default";

fn open() -> Libvirt {
    Libvirt::open(Some(URI)).expect("test:///default opens")
}

/// A test-driver domain with one virtio disk `vda` and one interface (MAC below).
fn domain_xml(name: &str, mac: &str) -> String {
    format!(
        "<domain type='test'>\
           <name>{name}</name>\
           <memory unit='KiB'>262144</memory>\
           <currentMemory unit='KiB'>262144</currentMemory>\
           <vcpu placement='static'>2</vcpu>\
           <os><type arch='x86_64'>hvm</type></os>\
           <devices>\
             <disk type='file' device='disk'>\
               <source file='/guest/{name}.img'/>\
               <target dev='vda' bus='virtio'/>\
             </disk>\
             <interface type='network'>\
               <mac address='{mac}'/>\
               <source network='default'/>\
             </interface>\
           </devices>\
         </domain>"
    )
}

/// Removes the domain however the test ends.
struct Cleanup<'a>(&'a Libvirt, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.destroy(&self.1);
        let _ = self.0.undefine(&self.1);
    }
}

fn defined<'a>(hv: &'a Libvirt, name: &str, mac: &str) -> Cleanup<'a> {
    let got = hv.define(&domain_xml(name, mac)).expect("define");
    assert_eq!(got, name);
    Cleanup(hv, name.to_string())
}

/// The text of the first `<tag>` element in `xml` (plain substring search: the XML is
/// libvirt's own output).
fn element_text<'x>(xml: &'x str, tag: &str) -> Option<&'x str> {
    let open = format!("<{tag}");
    let start = xml.find(&open)?;
    let after = &xml[start..];
    let gt = after.find('>')?;
    let body = &after[gt + 1..];
    let end = body.find(&format!("</{tag}>"))?;
    Some(body[..end].trim())
}

#[test]
fn connection_is_send_sync_and_reports_its_uri() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Libvirt>();
    assert_eq!(open().uri().unwrap(), URI);
}

#[test]
fn bad_uri_names_the_uri() {
    let err = Libvirt::open(Some("bogus:///nowhere"))
        .err()
        .expect("must fail");
    let text = err.to_string();
    assert!(matches!(err, Error::Libvirt(_)), "{err:?}");
    assert!(
        text.contains("cannot connect to bogus:///nowhere"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    let e = Libvirt::open(Some("test:///de\0fault"))
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
}

#[test]
fn missing_objects_are_not_found() {
    let hv = open();
    let e = hv.domain_info("prae-no-such-domain").unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert_eq!(e.to_string(), "domain 'prae-no-such-domain' not found");
    assert!(matches!(
        hv.start("prae-no-such-domain"),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        hv.set_vcpus("prae-no-such-domain", 2, Scope::Config),
        Err(Error::NotFound(_))
    ));
    let e = hv.volume_list("prae-no-such-pool").unwrap_err();
    assert_eq!(e.to_string(), "storage pool 'prae-no-such-pool' not found");
    let e = hv.snapshot_list("prae-no-such-domain").unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
}

#[test]
fn define_start_destroy_undefine() {
    let hv = open();
    let name = "prae-hv-lifecycle";
    let guard = defined(&hv, name, "52:54:00:10:00:01");
    let info = hv.domain_info(name).unwrap();
    assert_eq!(info.state, DomainState::Shutoff);
    assert!(info.persistent);
    assert_eq!(info.memory_kib, 262144);
    assert_eq!(info.uuid.len(), 36);
    assert!(hv.list_domains().unwrap().iter().any(|d| d.name == name));

    hv.start(name).unwrap();
    assert_eq!(hv.domain_info(name).unwrap().state, DomainState::Running);
    hv.destroy(name).unwrap();
    assert_eq!(hv.domain_info(name).unwrap().state, DomainState::Shutoff);
    hv.undefine(name).unwrap();
    assert!(matches!(hv.domain_info(name), Err(Error::NotFound(_))));
    assert!(!hv.list_domains().unwrap().iter().any(|d| d.name == name));
    drop(guard);
}

#[test]
fn bad_domain_xml_is_a_libvirt_error() {
    let hv = open();
    let e = hv
        .define("<domain type='test'><name>x</name></domain")
        .unwrap_err();
    assert!(matches!(e, Error::Libvirt(_)), "{e:?}");
    assert!(
        e.to_string().starts_with("libvirt: cannot define domain:"),
        "{e}"
    );
}

#[test]
fn transient_create_then_destroy() {
    let hv = open();
    let name = "prae-hv-transient";
    let got = hv.create(&domain_xml(name, "52:54:00:10:00:02")).unwrap();
    assert_eq!(got, name);
    let info = hv.domain_info(name).unwrap();
    assert_eq!(info.state, DomainState::Running);
    assert!(!info.persistent);
    hv.destroy(name).unwrap();
    assert!(matches!(hv.domain_info(name), Err(Error::NotFound(_))));
}

#[test]
fn vcpus_config_raises_the_maximum_and_live_changes_only_live() {
    let hv = open();
    let name = "prae-hv-vcpus";
    let _g = defined(&hv, name, "52:54:00:10:00:03");
    hv.set_vcpus(name, 4, Scope::Config).unwrap();
    let xml = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert_eq!(element_text(&xml, "vcpu"), Some("4"), "{xml}");

    hv.start(name).unwrap();
    hv.set_vcpus(name, 3, Scope::Live).unwrap();
    let live = hv.domain_xml(name, XmlKind::Live).unwrap();
    assert!(live.contains("current='3'"), "{live}");
    let inactive = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert!(!inactive.contains("current='3'"), "{inactive}");
    assert_eq!(hv.domain_info(name).unwrap().vcpus, 3);

    assert!(matches!(
        hv.set_vcpus(name, 0, Scope::Live),
        Err(Error::Invalid(_))
    ));
    // Above the running maximum with Both: refused before anything changes.
    let before = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    let e = hv.set_vcpus(name, 8, Scope::Both).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(e.to_string().contains("running maximum of 4"), "{e}");
    assert_eq!(hv.domain_xml(name, XmlKind::Inactive).unwrap(), before);
}

#[test]
fn memory_config_raises_the_maximum_and_live_is_not_persisted() {
    let hv = open();
    let name = "prae-hv-memory";
    let _g = defined(&hv, name, "52:54:00:10:00:04");
    hv.set_memory(name, 524288, Scope::Config).unwrap();
    let xml = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert_eq!(element_text(&xml, "memory"), Some("524288"), "{xml}");
    assert_eq!(element_text(&xml, "currentMemory"), Some("524288"), "{xml}");

    hv.start(name).unwrap();
    hv.set_memory(name, 131072, Scope::Live).unwrap();
    let live = hv.domain_xml(name, XmlKind::Live).unwrap();
    assert_eq!(
        element_text(&live, "currentMemory"),
        Some("131072"),
        "{live}"
    );
    let inactive = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert_eq!(element_text(&inactive, "currentMemory"), Some("524288"));
    assert_eq!(hv.domain_info(name).unwrap().memory_kib, 131072);

    // Above the running maximum with Both: refused before anything changes.
    let e = hv.set_memory(name, 1048576, Scope::Both).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(
        e.to_string().contains("running maximum of 524288 KiB"),
        "{e}"
    );
    assert_eq!(hv.domain_xml(name, XmlKind::Inactive).unwrap(), inactive);
}

#[test]
fn disk_iotune_is_set_exactly_and_visible_in_xml() {
    let hv = open();
    let name = "prae-hv-iotune";
    let _g = defined(&hv, name, "52:54:00:10:00:05");
    hv.start(name).unwrap();
    let io = IoTune {
        total_bytes_sec: Some(10_000_000),
        total_iops_sec: Some(500),
        ..IoTune::default()
    };
    hv.set_disk_iotune(name, "vda", &io, Scope::Both).unwrap();
    for kind in [XmlKind::Live, XmlKind::Inactive] {
        let xml = hv.domain_xml(name, kind).unwrap();
        assert_eq!(
            element_text(&xml, "total_bytes_sec"),
            Some("10000000"),
            "{xml}"
        );
        assert_eq!(element_text(&xml, "total_iops_sec"), Some("500"), "{xml}");
    }
    // A second call replaces the limits: what is unset is cleared.
    let io2 = IoTune {
        read_bytes_sec: Some(2048),
        write_bytes_sec: Some(4096),
        ..IoTune::default()
    };
    hv.set_disk_iotune(name, "vda", &io2, Scope::Live).unwrap();
    let live = hv.domain_xml(name, XmlKind::Live).unwrap();
    assert_eq!(
        element_text(&live, "read_bytes_sec"),
        Some("2048"),
        "{live}"
    );
    assert_eq!(
        element_text(&live, "write_bytes_sec"),
        Some("4096"),
        "{live}"
    );
    assert_eq!(element_text(&live, "total_bytes_sec"), None, "{live}");
    let inactive = hv.domain_xml(name, XmlKind::Inactive).unwrap();
    assert_eq!(element_text(&inactive, "total_bytes_sec"), Some("10000000"));

    let e = hv
        .set_disk_iotune(name, "vdz", &io, Scope::Live)
        .unwrap_err();
    assert!(e.to_string().contains("disk 'vdz'"), "{e}");
}

#[test]
fn interface_bandwidth_is_set_and_visible_in_xml() {
    let hv = open();
    let name = "prae-hv-bandwidth";
    let mac = "52:54:00:10:00:06";
    let _g = defined(&hv, name, mac);
    hv.start(name).unwrap();
    hv.set_interface_bandwidth(name, mac, &Bandwidth::symmetric(1000), Scope::Both)
        .unwrap();
    for kind in [XmlKind::Live, XmlKind::Inactive] {
        let xml = hv.domain_xml(name, kind).unwrap();
        assert!(
            xml.contains("<inbound average='1000' peak='2000' burst='1000'/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<outbound average='1000' peak='2000' burst='1000'/>"),
            "{xml}"
        );
    }
    let only_out = Bandwidth {
        inbound: None,
        outbound: Some(BandwidthLimit {
            average: 64,
            peak: None,
            burst: None,
        }),
    };
    hv.set_interface_bandwidth(name, mac, &only_out, Scope::Live)
        .unwrap();
    let live = hv.domain_xml(name, XmlKind::Live).unwrap();
    assert!(!live.contains("<inbound"), "{live}");
    assert!(live.contains("<outbound average='64'/>"), "{live}");

    let too_big = Bandwidth::symmetric(u64::from(u32::MAX) + 1);
    let e = hv
        .set_interface_bandwidth(name, mac, &too_big, Scope::Live)
        .unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    let e = hv
        .set_interface_bandwidth(name, "52:54:00:ff:ff:ff", &only_out, Scope::Live)
        .unwrap_err();
    assert!(e.to_string().contains("52:54:00:ff:ff:ff"), "{e}");
}

#[test]
fn node_capacity_and_stats() {
    let hv = open();
    let cap = hv.node_capacity().unwrap();
    assert!(cap.cpus > 0 && cap.memory_kib > 0, "{cap:?}");
    assert!(cap.free_memory_kib <= cap.memory_kib, "{cap:?}");
    let cpu = hv.node_cpu_stats().unwrap();
    assert!(
        cpu.idle_ns > 0 && cpu.user_ns > 0 && cpu.kernel_ns > 0,
        "{cpu:?}"
    );
    // The test driver has no virNodeGetMemoryStats: total and free come from node info.
    let mem = hv.node_memory_stats().unwrap();
    assert_eq!(mem.total_kib, cap.memory_kib);
    assert_eq!(mem.free_kib, cap.free_memory_kib);
}

#[test]
fn all_domain_stats_reports_state() {
    let hv = open();
    let name = "prae-hv-stats";
    let _g = defined(&hv, name, "52:54:00:10:00:07");
    hv.start(name).unwrap();
    let stats = hv.all_domain_stats().unwrap();
    let s = stats
        .iter()
        .find(|s| s.name == name)
        .expect("record for the domain");
    assert_eq!(s.state, Some(1)); // VIR_DOMAIN_RUNNING
    // The test driver reports only state.*.
    assert_eq!(s.cpu_time_ns, None);
    assert!(s.blocks.is_empty());
    assert!(stats.iter().any(|s| s.name == "test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_arrive_in_order() {
    let hv = open();
    let name = "prae-hv-events";
    let mut events = hv.lifecycle_events().unwrap();
    let g = defined(&hv, name, "52:54:00:10:00:08");
    hv.start(name).unwrap();
    hv.destroy(name).unwrap();
    hv.undefine(name).unwrap();
    drop(g);

    let want = [
        LifecycleKind::Defined,
        LifecycleKind::Started,
        LifecycleKind::Stopped,
        LifecycleKind::Undefined,
    ];
    let mut got = Vec::new();
    let collect = async {
        while let Some(ev) = events.next().await {
            if ev.domain == name {
                assert_eq!(ev.uuid.len(), 36, "{ev:?}");
                got.push(ev.kind);
                if ev.kind == LifecycleKind::Undefined {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .unwrap_or_else(|_| panic!("events did not all arrive in 10 s; got so far: see below"));
    let relevant: Vec<_> = got
        .iter()
        .copied()
        .filter(|k| *k != LifecycleKind::Other)
        .collect();
    assert_eq!(relevant, want);
    // Dropping the stream deregisters the callback; a new subscription still works.
    drop(events);
    let again = hv.lifecycle_events().unwrap();
    drop(again);
}

#[test]
fn snapshots_create_list_revert_delete() {
    let hv = open();
    let name = "prae-hv-snap";
    let _g = defined(&hv, name, "52:54:00:10:00:09");
    hv.start(name).unwrap();
    let snap = hv
        .snapshot_create(name, "<domainsnapshot><name>before</name></domainsnapshot>")
        .unwrap();
    assert_eq!(snap, "before");
    assert_eq!(hv.snapshot_list(name).unwrap(), vec!["before".to_string()]);
    hv.snapshot_revert(name, "before").unwrap();
    let e = hv.snapshot_revert(name, "nope").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("snapshot 'nope' of domain '{name}' not found")
    );
    hv.snapshot_delete(name, "before").unwrap();
    assert!(hv.snapshot_list(name).unwrap().is_empty());
    // undefine (via the guard) also removes snapshot metadata: checked by a second snapshot.
    hv.snapshot_create(name, "<domainsnapshot><name>left</name></domainsnapshot>")
        .unwrap();
    hv.destroy(name).unwrap();
    hv.undefine(name).unwrap();
}

#[test]
fn pools_and_volumes() {
    let hv = open();
    let pool = "prae-hv-pool";
    let xml =
        format!("<pool type='dir'><name>{pool}</name><target><path>/{pool}</path></target></pool>");
    assert_eq!(hv.pool_define_start(&xml).unwrap(), pool);
    struct PoolGuard<'a>(&'a Libvirt, &'a str);
    impl Drop for PoolGuard<'_> {
        fn drop(&mut self) {
            let _ = self.0.pool_remove(self.1);
        }
    }
    let _g = PoolGuard(&hv, pool);
    let info = hv
        .pool_list()
        .unwrap()
        .into_iter()
        .find(|p| p.name == pool)
        .expect("pool listed");
    assert!(info.active);

    let vol = hv
        .volume_create(
            pool,
            "<volume><name>disk1.qcow2</name><capacity unit='MiB'>10</capacity></volume>",
        )
        .unwrap();
    assert_eq!(vol.name, "disk1.qcow2");
    assert_eq!(vol.capacity, 10 * 1024 * 1024);
    assert!(vol.path.ends_with("disk1.qcow2"), "{vol:?}");
    hv.pool_refresh(pool).unwrap();
    let vols = hv.volume_list(pool).unwrap();
    assert_eq!(vols, vec![vol.clone()]);
    hv.volume_delete(pool, "disk1.qcow2").unwrap();
    assert!(hv.volume_list(pool).unwrap().is_empty());
    let e = hv.volume_delete(pool, "disk1.qcow2").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("volume 'disk1.qcow2' in storage pool '{pool}' not found")
    );

    hv.pool_remove(pool).unwrap();
    assert!(!hv.pool_list().unwrap().iter().any(|p| p.name == pool));
    assert!(matches!(hv.pool_refresh(pool), Err(Error::NotFound(_))));
}

#[test]
fn pool_that_cannot_start_leaves_nothing_behind() {
    let hv = open();
    // The test driver cannot start a pool type it does not emulate; either way nothing stays.
    let pool = "prae-hv-badpool";
    let xml = format!(
        "<pool type='logical'><name>{pool}</name><source><name>none</name></source>\
         <target><path>/dev/none</path></target></pool>"
    );
    if hv.pool_define_start(&xml).is_ok() {
        hv.pool_remove(pool).unwrap();
    }
    assert!(!hv.pool_list().unwrap().iter().any(|p| p.name == pool));
}

#[test]
fn agent_command_is_unsupported_on_the_test_driver() {
    let hv = open();
    let e = hv
        .agent_command("test", r#"{"execute":"guest-ping"}"#, 5)
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
}

#[test]
fn test_driver_is_not_a_kvm_host() {
    if std::env::var("PRAE_VIRT_TYPE").is_ok() {
        eprintln!("skipped: PRAE_VIRT_TYPE overrides the choice");
        return;
    }
    let c = open().choose_virt_type();
    assert_eq!(c.virt_type, VirtType::Qemu);
    assert!(c.reason.contains("not a QEMU host"), "{}", c.reason);
}

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

const KVM: &str = r#"<?xml version="1.0"?>
<!-- a q35 guest -->
<domain type='kvm' xmlns:qemu="http://libvirt.org/schemas/domain/qemu/1.0">
  <name>guest1</name>
  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>
  <title>A &amp; B</title>
  <memory unit='GiB'>1</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <?prae-test keep me?>
  </os>
  <cpu mode='host-model'>
    <topology sockets="1" dies="1" cores="2" threads="1"/>
  </cpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/var/lib/libvirt/images/b.raw'/>
      <target dev='sda' bus='sata' rotation_rate='7200'/>
      <iotune>
        <read_bytes_sec>1000</read_bytes_sec>
        <read_bytes_sec_max>2000</read_bytes_sec_max>
        <group_name>g1</group_name>
      </iotune>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/iso/x.iso'/>
      <target dev='sdb' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:aa:bb:dd'/>
    </interface>
    <script><![CDATA[ if a < b ]]></script>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-x'/>
  </qemu:commandline>
</domain>
"#;

const NUMA: &str = r#"<domain type='qemu'>
  <name>numa</name>
  <metadata>
    <app:info xmlns:app="http://example.org/app/1">kept</app:info>
  </metadata>
  <memory unit='KiB'>4194304</memory>
  <vcpu placement='static' current='2'>4</vcpu>
  <cputune>
    <vcpupin vcpu='3' cpuset='1'/>
  </cputune>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <cpu>
    <topology sockets='2' cores='2' threads='1'/>
    <numa>
      <cell id='0' cpus='0-1' memory='2' unit='GiB'/>
      <cell id='1' cpus='2-3' memory='2097152' unit='KiB'/>
    </numa>
  </cpu>
  <devices>
    <disk type='block' device='lun'>
      <source dev='/dev/sdz'/>
      <target dev='sda' bus='scsi'/>
    </disk>
  </devices>
</domain>
"#;

const XEN: &str = "<domain type='xen'><name>x</name><memory>524288</memory><vcpu>1</vcpu>\
<devices><disk type='file' device='disk'><source file='/a'/><target dev='xvda' bus='xen'/></disk>\
<interface type='bridge'><source bridge='br0'/></interface></devices></domain>";

const S390: &str = "<domain type='kvm'>\n <name>s</name>\n <memory>524288</memory>\n \
<os><type arch='s390x' machine='s390-ccw-virtio'>hvm</type></os>\n <devices>\n  \
<disk type='file' device='disk'>\n   <source file='/a'/>\n   <target dev='vda' bus='virtio'/>\n   \
<address type='ccw' cssid='0xfe' ssid='0x0' devno='0x0000'/>\n  </disk>\n </devices>\n</domain>\n";

const FIXTURES: [&str; 4] = [KVM, NUMA, XEN, S390];

/// The XML without prae's metadata (which quotes the originals).
fn body(xml: &str) -> String {
    match (xml.find("<prae:allocation"), xml.find("</prae:allocation>")) {
        (Some(a), Some(b)) => format!("{}{}", &xml[..a], &xml[b..]),
        _ => xml.to_string(),
    }
}

fn has_change(r: &Rewritten, what: &str, from: &str, to: &str) -> bool {
    r.changes
        .iter()
        .any(|c| c.what == what && c.from == from && c.to == to)
}

fn skipped_has(r: &Rewritten, what: &str) -> bool {
    r.skipped.iter().any(|s| s.what.contains(what))
}

#[test]
fn parse_reads_the_resource_view() {
    let v = parse(KVM).unwrap();
    assert_eq!(v.name, "guest1");
    assert_eq!(v.domain_type, "kvm");
    assert_eq!(v.arch.as_deref(), Some("x86_64"));
    assert_eq!((v.max_vcpus, v.vcpus), (2, 2));
    assert_eq!(v.memory_kib, 1024 * 1024);
    assert_eq!(v.current_memory_kib, Some(1024 * 1024));
    assert_eq!(v.disks.len(), 3);
    assert_eq!(v.disks[1].bus.as_deref(), Some("sata"));
    assert_eq!(v.disks[1].rotation_rate, Some(7200));
    assert_eq!(v.disks[1].iotune.unwrap().read_bytes_sec, Some(1000));
    assert_eq!(v.disks[2].device, "cdrom");
    assert_eq!(v.interfaces[0].kind, "network");
    assert_eq!(v.interfaces[0].mac.as_deref(), Some("52:54:00:aa:bb:cc"));
    assert!(!v.rewritten_by_prae);
    let n = parse(NUMA).unwrap();
    assert_eq!((n.max_vcpus, n.vcpus), (4, 2));
}

#[test]
fn malformed_input_is_an_xml_error_with_position() {
    for bad in [
        "",
        "<domain>",
        "<domain><name>x</name>",
        "<domain><name>x</nam></domain>",
        "<domain type=kvm><name>x</name></domain>",
        "<domain type='a' type='b'><name>x</name></domain>",
        "<domain><name>x</name></domain><domain/>",
        "text<domain/>",
        "<domain a='<'/>",
    ] {
        match parse(bad) {
            Err(crate::Error::Xml(m)) => {
                assert!(m.contains("line"), "{bad}: {m}");
                assert!(!m.contains('\n'), "{bad}: {m}");
            }
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[test]
fn non_domains_and_bad_values_are_rejected() {
    for bad in [
        "<network><name>x</name></network>",
        "<domain type='kvm'><memory>1024</memory></domain>",
        "<domain type='kvm'><name>x</name><memory>1024</memory><vcpu>abc</vcpu></domain>",
        "<domain type='kvm'><name>x</name><memory unit='XB'>1</memory></domain>",
        "<domain type='kvm'><name>x</name><memory>-1</memory></domain>",
        "<domain type='kvm'><name>x</name></domain>",
    ] {
        assert!(
            matches!(parse(bad), Err(crate::Error::NotADomain(_))),
            "{bad}: {:?}",
            parse(bad)
        );
        let a = alloc(full(DiskBus::Virtio));
        assert!(rewrite(bad, &a).is_err(), "{bad}");
    }
}

#[test]
fn invalid_profiles_are_refused() {
    let p = ResourceProfile {
        vcpus: Some(0),
        ..ResourceProfile::default()
    };
    assert!(matches!(
        rewrite(KVM, &alloc(p)),
        Err(crate::Error::Invalid(_))
    ));
}

#[test]
fn vcpus_set_current_and_fit_the_topology() {
    let p = ResourceProfile {
        vcpus: Some(2),
        max_vcpus: Some(4),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(
        r.xml
            .contains("<vcpu placement='static' current='2'>4</vcpu>"),
        "{}",
        r.xml
    );
    assert!(
        r.xml
            .contains(r#"<topology sockets="2" dies="1" cores="2" threads="1"/>"#)
    );
    assert!(has_change(&r, "vcpu", "2", "4"));
    assert!(!r.changes.iter().any(|c| c.what == "vcpu current"));
    // An odd maximum cannot keep cores=2: one core per socket.
    let p = ResourceProfile {
        max_vcpus: Some(3),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(
        r.xml
            .contains(r#"<topology sockets="3" dies="1" cores="1" threads="1"/>"#)
    );
    assert!(
        r.xml
            .contains("<vcpu placement='static' current='2'>3</vcpu>")
    );
}

#[test]
fn equal_values_are_not_changes() {
    let p = ResourceProfile {
        vcpus: Some(2),
        max_vcpus: Some(2),
        memory_kib: Some(1024 * 1024),
        current_memory_kib: Some(1024 * 1024),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(r.changes.is_empty(), "{:?}", r.changes);
    assert_eq!(revert(&r.xml).unwrap().xml, KVM);
}

#[test]
fn memory_keeps_exact_units_and_inserts_current_memory() {
    let p = ResourceProfile {
        memory_kib: Some(2 * 1024 * 1024),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(r.xml.contains("<memory unit='GiB'>2</memory>"));
    // currentMemory stays (it is below the new maximum).
    assert!(
        r.xml
            .contains("<currentMemory unit='KiB'>1048576</currentMemory>")
    );
    let p = ResourceProfile {
        memory_kib: Some(1536 * 1024),
        current_memory_kib: Some(1024 * 1024 + 512),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(
        r.xml.contains("<memory unit='KiB'>1572864</memory>"),
        "{}",
        r.xml
    );
    assert!(
        r.xml
            .contains("<currentMemory unit='KiB'>1049088</currentMemory>")
    );
    // Shrinking memory below currentMemory lowers currentMemory too.
    let p = ResourceProfile {
        memory_kib: Some(512 * 1024),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(
        r.xml
            .contains("<currentMemory unit='KiB'>524288</currentMemory>")
    );
    // Absent currentMemory is inserted after <memory>, in <memory>'s unit style.
    let p = ResourceProfile {
        current_memory_kib: Some(262144),
        ..ResourceProfile::default()
    };
    let r = rewrite(XEN, &alloc(p)).unwrap();
    assert!(
        r.xml
            .contains("<memory>524288</memory><currentMemory>262144</currentMemory>"),
        "{}",
        r.xml
    );
    assert_eq!(revert(&r.xml).unwrap().xml, XEN);
}

#[test]
fn max_memory_bounds_memory() {
    let xml = "<domain type='kvm'><name>m</name><maxMemory slots='4' unit='GiB'>2</maxMemory>\
               <memory unit='GiB'>1</memory></domain>";
    let p = ResourceProfile {
        memory_kib: Some(4 * 1024 * 1024),
        ..ResourceProfile::default()
    };
    let r = rewrite(xml, &alloc(p)).unwrap();
    assert!(r.xml.contains("<memory unit='GiB'>1</memory>"));
    assert!(skipped_has(&r, "memory"));
}

#[test]
fn numa_cells_scale_and_keep_vcpu_ids() {
    let p = ResourceProfile {
        vcpus: Some(1),
        max_vcpus: Some(2),
        memory_kib: Some(8 * 1024 * 1024),
        ..ResourceProfile::default()
    };
    let r = rewrite(NUMA, &alloc(p)).unwrap();
    // Max stays 4 (NUMA cells and a pin name vCPU 3); only current drops.
    assert!(
        r.xml
            .contains("<vcpu placement='static' current='1'>4</vcpu>"),
        "{}",
        r.xml
    );
    assert!(skipped_has(&r, "vcpu"));
    assert!(
        r.xml
            .contains("<cell id='0' cpus='0-1' memory='4' unit='GiB'/>"),
        "{}",
        r.xml
    );
    assert!(
        r.xml
            .contains("<cell id='1' cpus='2-3' memory='4194304' unit='KiB'/>")
    );
    assert!(r.xml.contains("<memory unit='KiB'>8388608</memory>"));
    // Other namespaces' metadata is untouched; prae's goes after it.
    assert!(r.xml.contains(
        "<app:info xmlns:app=\"http://example.org/app/1\">kept</app:info>\n    <prae:allocation"
    ));
    assert_eq!(revert(&r.xml).unwrap().xml, NUMA);
    let v = parse(&r.xml).unwrap();
    assert_eq!(v.memory_kib, 8 * 1024 * 1024);
}

#[test]
fn bus_change_renames_and_drops_addresses() {
    let p = ResourceProfile {
        disk_bus: Some(DiskBus::Sata),
        storage: Some(StorageClass::Ssd),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    // vda moves to sata: sda is taken by the second disk and sdb by the cdrom, so sdc.
    assert!(
        r.xml
            .contains("<target dev='sdc' bus='sata' rotation_rate='1'/>"),
        "{}",
        r.xml
    );
    assert!(!body(&r.xml).contains("type='pci' domain='0x0000' bus='0x04'"));
    assert!(r.xml.contains("<boot order='1'/>"));
    // The sata disk keeps its bus and address; only rotation_rate changes.
    assert!(
        r.xml
            .contains("<target dev='sda' bus='sata' rotation_rate='1'/>")
    );
    assert!(
        r.xml
            .contains("<address type='drive' controller='0' bus='0' target='0' unit='0'/>")
    );
    // The cdrom is untouched.
    assert!(r.xml.contains("<target dev='sdb' bus='sata'/>"));
    assert!(has_change(&r, "disk vda dev", "vda", "sdc"));
    assert!(has_change(
        &r,
        "disk vda address",
        "pci",
        "assigned by libvirt"
    ));

    let p = ResourceProfile {
        disk_bus: Some(DiskBus::Virtio),
        storage: Some(StorageClass::Hdd),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(
        r.xml.contains("<target dev='vdb' bus='virtio'/>"),
        "{}",
        r.xml
    );
    assert!(!body(&r.xml).contains("type='drive'"));
    assert!(skipped_has(&r, "disk vda rotation_rate"));
    let v = parse(&r.xml).unwrap();
    assert_eq!(v.disks[1].rotation_rate, None);
    assert_eq!(revert(&r.xml).unwrap().xml, KVM);
}

#[test]
fn refused_bus_changes_are_skipped_with_reasons() {
    let p = ResourceProfile {
        disk_bus: Some(DiskBus::Scsi),
        ..ResourceProfile::default()
    };
    for (xml, what) in [
        (XEN, "disk xvda bus"),
        (S390, "disk vda bus"),
        (NUMA, "disk sda bus"),
    ] {
        let r = rewrite(xml, &alloc(p.clone())).unwrap();
        assert!(skipped_has(&r, what), "{what}: {:?}", r.skipped);
        assert!(r.changes.is_empty(), "{:?}", r.changes);
    }
    let queues = KVM.replace(
        "<driver name='qemu' type='qcow2'/>",
        "<driver name='qemu' type='qcow2' queues='4'/>",
    );
    let r = rewrite(&queues, &alloc(p)).unwrap();
    assert!(r.skipped.iter().any(|s| s.reason.contains("queues")));
    assert!(r.xml.contains("<target dev='vda' bus='virtio'/>"));
}

#[test]
fn iotune_replaces_prae_limits_and_keeps_valid_others() {
    let p = ResourceProfile {
        disk_iotune: Some(IoTune {
            total_bytes_sec: Some(5000),
            total_iops_sec: Some(100),
            ..IoTune::default()
        }),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(
        r.xml.contains(
            "      <iotune>\n        <total_bytes_sec>5000</total_bytes_sec>\n        \
         <total_iops_sec>100</total_iops_sec>\n        <group_name>g1</group_name>\n      </iotune>"
        ),
        "{}",
        r.xml
    );
    assert!(!body(&r.xml).contains("read_bytes_sec"));
    // The first disk gets a new <iotune> after its <target>; the cdrom none.
    assert!(
        r.xml
            .contains("<target dev='vda' bus='virtio'/>\n      <iotune>")
    );
    assert_eq!(body(&r.xml).matches("<iotune>").count(), 2);
    let skip = rewrite(
        XEN,
        &alloc(ResourceProfile {
            disk_iotune: Some(IoTune {
                total_iops_sec: Some(1),
                ..IoTune::default()
            }),
            ..ResourceProfile::default()
        }),
    )
    .unwrap();
    assert!(skipped_has(&skip, "iotune"));
}

#[test]
fn bandwidth_goes_to_qos_capable_interfaces_only() {
    let p = ResourceProfile {
        bandwidth: Some(Bandwidth::symmetric(1000)),
        ..ResourceProfile::default()
    };
    let r = rewrite(KVM, &alloc(p)).unwrap();
    assert!(r.xml.contains(
        "<model type='virtio'/>\n      <bandwidth>\n        \
         <inbound average=\"1000\" peak=\"2000\" burst=\"1000\"/>\n        \
         <outbound average=\"1000\" peak=\"2000\" burst=\"1000\"/>\n      </bandwidth>\n    </interface>"
    ), "{}", r.xml);
    assert!(skipped_has(&r, "interface 52:54:00:aa:bb:dd"));
    // An existing inbound floor is kept.
    let floor = KVM.replace(
        "<model type='virtio'/>",
        "<model type='virtio'/>\n      <bandwidth><inbound average='5' floor='3'/></bandwidth>",
    );
    let r = rewrite(
        &floor,
        &alloc(ResourceProfile {
            bandwidth: Some(Bandwidth::symmetric(1000)),
            ..ResourceProfile::default()
        }),
    )
    .unwrap();
    assert!(
        r.xml
            .contains("<inbound average=\"1000\" peak=\"2000\" floor=\"3\" burst=\"1000\"/>"),
        "{}",
        r.xml
    );
    assert_eq!(revert(&r.xml).unwrap().xml, floor);
}

#[test]
fn metadata_records_reason_changes_and_originals() {
    let r = rewrite(KVM, &alloc(full(DiskBus::Scsi))).unwrap();
    let v = parse(&r.xml).unwrap();
    assert!(v.rewritten_by_prae);
    // Created right after the last id element (<title>), in prae's namespace.
    assert!(r.xml.contains(
        "<title>A &amp; B</title>\n  <metadata>\n    <prae:allocation xmlns:prae=\"urn:prae:allocation:1\" reason=\"test\" tier=\"medium\" metadata=\"created\">"
    ), "{}", r.xml);
    assert!(
        r.xml
            .contains("<prae:change what=\"vcpu\" from=\"2\" to=\"4\"/>")
    );
    assert!(r.xml.contains(
        "<prae:original at=\"vcpu\"><![CDATA[<vcpu placement='static'>2</vcpu>]]></prae:original>"
    ));
    assert!(r.xml.contains(
        "<prae:original at=\"devices/disk[0]\"><![CDATA[<disk type='file' device='disk'>"
    ));
    // The CDATA inside the domain survives, and a record containing "]]>" is split safely.
    assert!(r.xml.contains("<script><![CDATA[ if a < b ]]></script>"));
}

#[test]
fn rewrite_is_idempotent_and_keeps_first_originals() {
    for xml in FIXTURES {
        for bus in [DiskBus::Virtio, DiskBus::Scsi, DiskBus::Sata] {
            let a = alloc(full(bus));
            let once = rewrite(xml, &a).unwrap();
            let twice = rewrite(&once.xml, &a).unwrap();
            assert_eq!(once.xml, twice.xml);
            assert!(twice.changes.is_empty(), "{:?}", twice.changes);
            // A different profile over a rewritten domain still reverts to the very first one.
            let other = alloc(ResourceProfile {
                vcpus: Some(1),
                memory_kib: Some(300 * 1024),
                disk_bus: Some(DiskBus::Virtio),
                ..ResourceProfile::default()
            });
            let again = rewrite(&once.xml, &other).unwrap();
            assert_eq!(revert(&again.xml).unwrap().xml, xml);
            assert_eq!(again.xml, rewrite(xml, &other).unwrap().xml);
        }
    }
}

#[test]
fn revert_of_an_untouched_domain_is_identity() {
    let r = revert(KVM).unwrap();
    assert_eq!(r.xml, KVM);
    assert!(r.changes.is_empty());
}

#[test]
fn revert_reports_inverse_changes() {
    let r = rewrite(KVM, &alloc(full(DiskBus::Virtio))).unwrap();
    let b = revert(&r.xml).unwrap();
    assert_eq!(b.xml, KVM);
    assert!(has_change(&b, "vcpu", "4", "2"));
}

#[test]
fn bytes_outside_resource_elements_survive() {
    let r = rewrite(KVM, &alloc(full(DiskBus::Sata))).unwrap();
    for keep in [
        "<?xml version=\"1.0\"?>\n<!-- a q35 guest -->\n<domain type='kvm' xmlns:qemu=\"http://libvirt.org/schemas/domain/qemu/1.0\">",
        "<?prae-test keep me?>",
        "<qemu:commandline>\n    <qemu:arg value='-x'/>\n  </qemu:commandline>",
        "<source file='/var/lib/libvirt/images/a.qcow2'/>",
        "<title>A &amp; B</title>",
    ] {
        assert!(r.xml.contains(keep), "{keep}");
    }
    assert_eq!(non_resource(&r.xml), non_resource(KVM));
}

/// The document's events outside resource elements and prae's metadata (whitespace-only text
/// dropped), for comparing what a rewrite must not touch.
fn non_resource(xml: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut skip_depth: Option<usize> = None;
    let mut out = Vec::new();
    let resource = |path: &[String], name: &str| -> bool {
        let p: Vec<&str> = path.iter().map(|s| s.as_str()).collect();
        match (p.as_slice(), name) {
            (["domain"], "vcpu" | "memory" | "currentMemory") => true,
            (["domain", "metadata"], n) if n.starts_with("prae:") => true,
            (["domain", "cpu"], "topology") => true,
            (["domain", "cpu", "numa"], "cell") => true,
            (["domain", "devices", "disk"], "target" | "address" | "iotune") => true,
            (["domain", "devices", "interface"], "bandwidth") => true,
            _ => false,
        }
    };
    loop {
        let ev = r.read_event().unwrap();
        let empty = matches!(ev, Event::Empty(_));
        match &ev {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if skip_depth.is_none() && resource(&path, &name) {
                    skip_depth = Some(path.len());
                }
                if skip_depth.is_none() {
                    out.push(format!("{}/{}", path.join("/"), String::from_utf8_lossy(e)));
                }
                if empty {
                    if skip_depth == Some(path.len()) {
                        skip_depth = None;
                    }
                } else {
                    path.push(name);
                }
            }
            Event::End(_) => {
                path.pop();
                if skip_depth == Some(path.len()) {
                    skip_depth = None;
                } else if skip_depth.is_none() {
                    out.push(format!("end {}", path.join("/")));
                }
            }
            Event::Text(t) if t.iter().all(|b| b.is_ascii_whitespace()) => {}
            other => {
                if skip_depth.is_none() {
                    out.push(format!("{}: {other:?}", path.join("/")));
                }
            }
        }
    }
    // <metadata> prae created is not part of the original tree.
    out.retain(|e| e != "domain/metadata" && e != "end domain");
    out
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn opt<T: std::fmt::Debug + Clone>(
        s: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Option<T>> {
        prop_oneof![Just(None), s.prop_map(Some)]
    }

    fn limit() -> impl Strategy<Value = BandwidthLimit> {
        (1u64..100_000, opt(0u64..100_000), opt(1u64..100_000)).prop_map(
            |(average, extra, burst)| BandwidthLimit {
                average,
                peak: extra.map(|e| average + e),
                burst,
            },
        )
    }

    fn profile() -> impl Strategy<Value = ResourceProfile> {
        let cpu = (opt(1u32..16), opt(1u32..16)).prop_map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => (Some(a.min(b)), Some(a.max(b))),
            x => x,
        });
        let mem = (
            opt(64u64 * 1024..16 * 1024 * 1024),
            opt(64u64 * 1024..16 * 1024 * 1024),
        )
            .prop_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) => (Some(a.max(b)), Some(a.min(b))),
                x => x,
            });
        let bus = opt(prop_oneof![
            Just(DiskBus::Virtio),
            Just(DiskBus::Scsi),
            Just(DiskBus::Sata)
        ]);
        let storage = opt(prop_oneof![
            Just(StorageClass::Ssd),
            Just(StorageClass::Hdd)
        ]);
        let io = opt(
            (any::<bool>(), 1u64..1_000_000_000, 1u64..100_000).prop_map(|(total, b, i)| {
                if total {
                    IoTune {
                        total_bytes_sec: Some(b),
                        total_iops_sec: Some(i),
                        ..IoTune::default()
                    }
                } else {
                    IoTune {
                        read_bytes_sec: Some(b),
                        write_iops_sec: Some(i),
                        ..IoTune::default()
                    }
                }
            }),
        );
        let bw = opt((opt(limit()), opt(limit()))
            .prop_map(|(inbound, outbound)| Bandwidth { inbound, outbound }));
        (cpu, mem, bus, storage, io, bw).prop_map(
            |(
                (vcpus, max_vcpus),
                (memory_kib, current_memory_kib),
                disk_bus,
                storage,
                disk_iotune,
                bandwidth,
            )| {
                ResourceProfile {
                    vcpus,
                    max_vcpus,
                    memory_kib,
                    current_memory_kib,
                    storage,
                    disk_bus,
                    disk_iotune,
                    bandwidth,
                }
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn rewrite_round_trips(p in profile(), f in 0usize..FIXTURES.len(), reason in "[ -~]{0,20}") {
            let xml = FIXTURES[f];
            let a = Allocation { profile: p.clone(), provenance: Provenance { reason, tier: None, sources: Vec::new() } };
            let once = rewrite(xml, &a).unwrap();
            // Idempotent, byte for byte.
            let twice = rewrite(&once.xml, &a).unwrap();
            prop_assert_eq!(&twice.xml, &once.xml);
            // Revert restores the original exactly.
            prop_assert_eq!(revert(&once.xml).unwrap().xml, xml);
            // Nothing outside the resource elements changed.
            prop_assert_eq!(non_resource(&once.xml), non_resource(xml));
            // What the view reports agrees with the profile where it was applied.
            let v = parse(&once.xml).unwrap();
            let orig = parse(xml).unwrap();
            if let Some(c) = p.vcpus
                && !once.skipped.iter().any(|s| s.what == "vcpu") {
                    prop_assert_eq!(v.vcpus, c);
                }
            prop_assert!(v.vcpus <= v.max_vcpus);
            if let Some(cur) = v.current_memory_kib {
                prop_assert!(cur <= v.memory_kib);
            }
            if p.memory_kib.is_none() && p.current_memory_kib.is_none() {
                prop_assert_eq!(v.memory_kib, orig.memory_kib);
            }
            // Disk names stay unique.
            let mut devs: Vec<&str> = v.disks.iter().map(|d| d.target.as_str()).collect();
            devs.sort();
            let n = devs.len();
            devs.dedup();
            prop_assert_eq!(devs.len(), n);
        }
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
    let reps: usize = std::env::var("PRAE_SPEED_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
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
    match std::env::var("PRAE_SPEED_MODE").as_deref() {
        Ok("rewrite") => {
            time("rewrite", &mut |d| {
                rewrite(d, &a).map(|r| r.xml.len()).unwrap_or(0)
            });
            return;
        }
        Ok("index") => {
            time("index", &mut |d| {
                xml::Doc::parse(d).map(|r| r.elems.len()).unwrap_or(0)
            });
            return;
        }
        Ok("plain") => {
            time("plain", &mut |d| {
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
            return;
        }
        Ok(_) => return,
        _ => {}
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
    time("index", &mut |d| {
        xml::Doc::parse(d).map(|r| r.elems.len()).unwrap_or(0)
    });
    time("layout", &mut |d| {
        xml::Doc::parse(d)
            .ok()
            .and_then(|x| view::Layout::find(&x).ok())
            .map(|l| l.disks.len())
            .unwrap_or(0)
    });
    time("parse", &mut |d| {
        parse(d).map(|r| r.disks.len()).unwrap_or(0)
    });
    let empty = alloc(ResourceProfile::default());
    time("rewrite0", &mut |d| {
        rewrite(d, &empty).map(|r| r.xml.len()).unwrap_or(0)
    });
    let ours = time("rewrite", &mut |d| {
        rewrite(d, &a).map(|r| r.xml.len()).unwrap_or(0)
    });
    n += 1;
    eprintln!(
        "ratio {:.2} ({n})",
        ours.as_secs_f64() / plain.as_secs_f64()
    );
}

#[test]
fn moved_disks_avoid_drive_addresses_libvirt_would_derive() {
    // libvirt derives a SCSI drive address from the dev name (sda -> unit 0); sdb already holds
    // unit 0 explicitly, so the moved disk must not be called sda.
    let xml = "<domain type='kvm'><name>d</name><memory>524288</memory><devices>\
               <disk type='file' device='disk'><source file='/a'/><target dev='sda' bus='virtio'/></disk>\
               <disk type='file' device='disk'><source file='/b'/><target dev='sdb' bus='scsi'/>\
               <address type='drive' controller='0' bus='0' target='0' unit='0'/></disk>\
               </devices></domain>";
    let p = ResourceProfile {
        disk_bus: Some(DiskBus::Scsi),
        ..ResourceProfile::default()
    };
    let r = rewrite(xml, &alloc(p)).unwrap();
    assert!(
        has_change(&r, "disk sda dev", "sda", "sdc"),
        "{:?}",
        r.changes
    );
    assert!(r.xml.contains("<target dev='sdc' bus='scsi'/>"));
}

#[test]
fn qemu_driver_limits_are_respected() {
    let disk = |extra: &str, bus: &str| {
        format!(
            "<domain type='kvm'><name>q</name><memory>524288</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
             <disk type='file' device='disk'><source file='/a'/><target dev='hda' bus='{bus}'/>{extra}</disk>\
             </devices></domain>"
        )
    };
    let bus = |b| ResourceProfile {
        disk_bus: Some(b),
        ..ResourceProfile::default()
    };
    // An ACPI index needs a PCI device; a CHS translation mode is IDE-only.
    let r = rewrite(
        &disk("<acpi index='3'/>", "virtio"),
        &alloc(bus(DiskBus::Sata)),
    )
    .unwrap();
    assert!(
        r.skipped.iter().any(|s| s.reason.contains("ACPI")),
        "{:?}",
        r.skipped
    );
    let geo = "<geometry cyls='16383' heads='16' secs='63' trans='lba'/>";
    let r = rewrite(&disk(geo, "ide"), &alloc(bus(DiskBus::Virtio))).unwrap();
    assert!(
        r.skipped.iter().any(|s| s.reason.contains("CHS")),
        "{:?}",
        r.skipped
    );
    // libvirt has no <iotune> for SD cards.
    let io = ResourceProfile {
        disk_iotune: Some(IoTune {
            total_iops_sec: Some(10),
            ..IoTune::default()
        }),
        ..ResourceProfile::default()
    };
    let r = rewrite(&disk("", "sd"), &alloc(io)).unwrap();
    assert!(skipped_has(&r, "iotune"));
    assert!(!body(&r.xml).contains("<iotune>"));
    // isapc has a single CPU; other x86 machines stop at 255 without an IOMMU.
    let cpus = |n| ResourceProfile {
        vcpus: Some(n),
        max_vcpus: Some(n),
        ..ResourceProfile::default()
    };
    let isapc = disk("", "ide").replace("machine='pc'", "machine='isapc'");
    let r = rewrite(&isapc, &alloc(cpus(4))).unwrap();
    assert!(
        r.changes.iter().all(|c| c.what != "vcpu"),
        "{:?}",
        r.changes
    );
    let r = rewrite(&disk("", "ide"), &alloc(cpus(300))).unwrap();
    assert!(has_change(&r, "vcpu", "1", "255"), "{:?}", r.changes);
}

/// Reverts the file `PRAE_REVERT_IN` into `PRAE_REVERT_OUT` (for checking libvirt-formatted XML).
#[test]
#[ignore]
fn revert_file() {
    let (Ok(i), Ok(o)) = (
        std::env::var("PRAE_REVERT_IN"),
        std::env::var("PRAE_REVERT_OUT"),
    ) else {
        return;
    };
    let xml = std::fs::read_to_string(i).unwrap();
    let r = revert(&xml).unwrap();
    std::fs::write(o, r.xml).unwrap();
    eprintln!("{:?}", r.skipped);
}

/// The fast scanner indexes exactly what quick-xml indexes, and leaves every malformed or
/// unusual input to quick-xml.
#[test]
fn fast_scan_agrees_with_quick_xml() {
    let spans = |d: &xml::Doc| -> Vec<(usize, usize, usize, usize, u32, u32, u32)> {
        d.elems
            .iter()
            .map(|e| {
                (
                    e.start,
                    e.open_end,
                    e.close_start,
                    e.end,
                    e.name_len,
                    e.first_child,
                    e.next_sibling,
                )
            })
            .collect()
    };
    let mut stack = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "xml") {
                continue;
            }
            let Ok(src) = std::fs::read_to_string(&p) else {
                continue;
            };
            let slow = xml::Doc::parse_quick_xml(&src);
            if let Some(fast) = xml::Doc::scan(&src) {
                let slow = slow.unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                assert_eq!(fast.root, slow.root, "{}", p.display());
                assert_eq!(spans(&fast), spans(&slow), "{}", p.display());
                n += 1;
            }
        }
    }
    assert!(n > 100, "{n}");
    for bad in [
        "<a>&amp</a>",
        "<a>x</b>",
        "<a><b></a></b>",
        "<a/><b/>",
        "x<a/>",
        "<a",
        "<a b='1>",
        "<!DOCTYPE a><a/>",
        "<a><![CDATA[x]]></a><![CDATA[y]]>",
    ] {
        let fast = xml::Doc::scan(bad);
        assert!(
            fast.is_none() || xml::Doc::parse_quick_xml(bad).is_ok(),
            "{bad}"
        );
    }
}

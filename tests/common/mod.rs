//! Shared by `tests/corpus.rs` and `benches/rewrite.rs`: where the libvirt domain corpus lives
//! and the fixed allocation the corpus checks rewrite with.
//!
//! Two corpora, both of libvirt 11.3.0's own test domains (`tests/*data/`):
//! - the shipped subset, `tests/corpus/libvirt-domains/` (always present);
//! - the full corpus, `../shared/corpus/libvirt-domains/` beside the repository (present in CI).

// Each test or bench target that includes this module uses a different part of it.
#![allow(dead_code)]

use prae::model::{
    Allocation, Bandwidth, DiskBus, IoTune, Provenance, ResourceProfile, StorageClass, Tier,
};
use std::path::{Path, PathBuf};

const GIB_KIB: u64 = 1024 * 1024;

/// The repository's root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The subset of libvirt's test domains shipped with prae.
pub fn shipped_dir() -> PathBuf {
    repo_root().join("tests/corpus/libvirt-domains")
}

/// prae's own deliberately invalid domain files (not from libvirt).
pub fn invalid_dir() -> PathBuf {
    repo_root().join("tests/corpus/invalid")
}

/// The full corpus beside the repository, when present.
pub fn full_dir() -> Option<PathBuf> {
    let d = repo_root().join("../shared/corpus/libvirt-domains");
    d.is_dir().then_some(d)
}

/// Every `*.xml` file under `dir`, recursively, sorted by path.
pub fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => panic!("cannot list {}: {e}", d.display()),
        };
        for entry in entries {
            let p = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "xml") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// `path` relative to `root`, with `/` separators, for messages.
pub fn rel(root: &Path, path: &Path) -> String {
    let r = path.strip_prefix(root).unwrap_or(path);
    r.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The fixed profile of the corpus checks: it changes every resource prae rewrites.
/// 3 vCPUs online of 6, 3 GiB memory with 2 GiB current, disks on `bus` with SSD storage,
/// disk I/O limits and a symmetric 10 MiB/s interface bandwidth.
pub fn profile(bus: DiskBus) -> ResourceProfile {
    ResourceProfile {
        vcpus: Some(3),
        max_vcpus: Some(6),
        memory_kib: Some(3 * GIB_KIB),
        current_memory_kib: Some(2 * GIB_KIB),
        storage: Some(StorageClass::Ssd),
        disk_bus: Some(bus),
        disk_iotune: Some(IoTune {
            total_bytes_sec: Some(200 * 1024 * 1024),
            read_iops_sec: Some(4000),
            write_iops_sec: Some(2000),
            ..IoTune::default()
        }),
        bandwidth: Some(Bandwidth::symmetric(10 * 1024)),
    }
}

/// [`profile`] with the provenance the corpus checks record.
pub fn allocation(bus: DiskBus) -> Allocation {
    Allocation {
        profile: profile(bus),
        provenance: Provenance {
            reason: "corpus acceptance profile".into(),
            tier: Some(Tier::Medium),
            sources: vec!["tests/common".into()],
        },
    }
}

//! The lab preamble shared by the tests against the real libvirtd (`qemu:///system`): whether
//! the lab is enabled (`PRAE_LAB=1`, otherwise the test prints "skipped: ..." and passes), where
//! its guests and files are (`PRAE_LAB_GUEST`, `PRAE_LAB_DEBIAN`, `PRAE_LAB_DIR`), removing a
//! domain a test made, and polling with a deadline.
//!
//! Included by the tests that need it with `#[path = "common/lab.rs"] mod lab;` (not through
//! `common/mod.rs`, which `benches/rewrite.rs` includes too).

// Each test target that includes this module uses a different part of it.
#![allow(dead_code)]

use prae::hypervisor::{DomainState, Hypervisor, Libvirt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const URI: &str = "qemu:///system";
/// Default of `PRAE_LAB_DIR` (as in the lab scripts).
pub const DEFAULT_LAB_DIR: &str = "/var/tmp/prae-lab";

/// `true` when `PRAE_LAB=1`; otherwise prints `{skipped}: set PRAE_LAB=1{also} (see tests/lab/)`
/// and returns `false`. `skipped` is "skipped" or names the test ("skipped image"); `also` names
/// what else the test needs (" and PRAE_LAB_DEBIAN") or is empty.
pub fn enabled(skipped: &str, also: &str) -> bool {
    if std::env::var("PRAE_LAB").as_deref() != Ok("1") {
        println!("{skipped}: set PRAE_LAB=1{also} (see tests/lab/)");
        return false;
    }
    true
}

/// `PRAE_LAB_GUEST`, the directory `tests/lab/build-guest.sh` printed. Panics when it is unset:
/// with the lab enabled, a skip would hide a broken setup. Callers check its files.
pub fn guest_dir() -> PathBuf {
    std::env::var_os("PRAE_LAB_GUEST")
        .map(PathBuf::from)
        .expect("PRAE_LAB=1 needs PRAE_LAB_GUEST: the directory tests/lab/build-guest.sh printed")
}

/// `PRAE_LAB_DEBIAN`, the directory `script` (tests/lab/build-debian.sh) printed; `None` after
/// printing `{skipped}: set PRAE_LAB_DEBIAN to the directory {script} printed` when unset.
pub fn debian_dir(skipped: &str, script: &str) -> Option<PathBuf> {
    let Some(debian) = std::env::var_os("PRAE_LAB_DEBIAN").map(PathBuf::from) else {
        println!("{skipped}: set PRAE_LAB_DEBIAN to the directory {script} printed");
        return None;
    };
    Some(debian)
}

/// `PRAE_LAB_DIR`, or [`DEFAULT_LAB_DIR`].
pub fn lab_dir() -> PathBuf {
    std::env::var_os("PRAE_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LAB_DIR))
}

/// The lab with its Debian image, when enabled.
pub struct DebianLab {
    /// The directory build-debian.sh printed.
    pub debian: PathBuf,
    pub lab_dir: PathBuf,
}

/// `Some(lab)` when `PRAE_LAB=1` and `PRAE_LAB_DEBIAN` is set; `None` (after printing why)
/// otherwise.
pub fn debian_lab() -> Option<DebianLab> {
    if !enabled("skipped", " and PRAE_LAB_DEBIAN") {
        return None;
    }
    let debian = debian_dir("skipped", "tests/lab/build-debian.sh")?;
    let lab_dir = lab_dir();
    Some(DebianLab { debian, lab_dir })
}

/// Connects to the lab's libvirtd; panics naming how to start it.
pub fn connect() -> Libvirt {
    Libvirt::open(Some(URI))
        .unwrap_or_else(|e| panic!("{e}; is libvirtd running? (tests/lab/start-libvirtd.sh)"))
}

/// The last `n` lines of the serial log at `log`, for failure messages.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(no serial log {}: {e})", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Destroys `name` (when it is not shut off) and undefines it, printing each error: for cleanup
/// guards, where errors are expected (not running, already gone) and what matters is that
/// nothing is left behind.
pub fn remove_domain(hv: &Libvirt, name: &str) {
    if hv
        .domain_info(name)
        .is_ok_and(|i| i.state != DomainState::Shutoff)
        && let Err(e) = hv.destroy(name)
    {
        eprintln!("cleanup: destroy {name}: {e}");
    }
    if let Err(e) = hv.undefine(name) {
        eprintln!("cleanup: undefine {name}: {e}");
    }
}

/// Destroys and undefines `name`, ignoring every error (for leftovers that may not exist).
pub fn remove_domain_quietly(hv: &Libvirt, name: &str) {
    let _ = hv.destroy(name);
    let _ = hv.undefine(name);
}

/// Polls `f` every 50 ms until it returns `Some` or `deadline` has passed; `Err` carries how
/// long it waited.
pub fn wait_until<T>(deadline: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T, Duration> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() >= deadline {
            return Err(start.elapsed());
        }
        // Poll interval, not a wait for something to happen.
        std::thread::sleep(Duration::from_millis(50));
    }
}

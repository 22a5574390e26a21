//! KVM detection: does a `type='kvm'` guest really run at hardware speed on this host?
//!
//! `/dev/kvm` existing, `KVM_CREATE_VM` succeeding and libvirt offering `<domain type='kvm'>`
//! are not proof: on a nested host with no hardware virtualization exposed, KVM can execute a
//! few instructions correctly (a one-instruction reset-vector probe exits fine) yet run guest code
//! about a thousand times slower than TCG, so a kernel never gets past decompression.
//! The probe therefore runs the same tiny firmware under `-accel kvm` and `-accel tcg`: a
//! reset-vector jump into a counted loop (`PROBE_LOOPS` iterations), then `out 0xf4` to QEMU's
//! `isa-debug-exit` device, which ends QEMU with status `(0x2a << 1) | 1 = 85`. KVM is chosen
//! only if it exits 85 and is not slower than TCG. TCG runs first, and KVM is given
//! [`kvm_budget`] (a few times TCG's time, at least one second), so a host with broken KVM
//! answers in about a second instead of waiting for a hung guest.
//!
//! The emulator is the one libvirt's capabilities name; it is spawned directly (no shell),
//! killed by its pid on timeout, and the probe file is removed afterwards.

use super::{AccelChoice, VirtType};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one probe run may take at most before QEMU is killed.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the KVM run may take, given the TCG run's time (if it succeeded): KVM that is much
/// slower than TCG is no use, so there is no point waiting longer.
pub(super) fn kvm_budget(tcg: Option<Duration>) -> Duration {
    match tcg {
        Some(t) => (t * 4).clamp(Duration::from_secs(1), PROBE_TIMEOUT),
        None => PROBE_TIMEOUT,
    }
}
/// Loop iterations in the probe: ~0.1 s under TCG, a few ms under working KVM.
const PROBE_LOOPS: u32 = 50_000_000;
/// The exit status QEMU reports after the firmware writes 0x2a to isa-debug-exit.
const PROBE_EXIT: i32 = (0x2a << 1) | 1;
/// Environment variable that forces the answer (`kvm` or `qemu`).
pub(super) const ENV_FORCE: &str = "PRAE_VIRT_TYPE";

/// The 64 KiB firmware image: code at offset 0 (`F000:0000`), a near jump to it at the reset
/// vector (offset 0xFFF0, `F000:FFF0`), `hlt` everywhere else.
pub(super) fn probe_image(loops: u32) -> Vec<u8> {
    let mut img = vec![0xF4u8; 64 * 1024]; // hlt
    let mut code = vec![0x66, 0xB9]; // mov ecx, imm32
    code.extend_from_slice(&loops.to_le_bytes());
    code.extend_from_slice(&[
        0x66, 0x49, // 1: dec ecx
        0x75, 0xFC, // jnz 1b
        0xB0, 0x2A, // mov al, 0x2a
        0xE6, 0xF4, // out 0xf4, al
        0xF4, // hlt
    ]);
    img[..code.len()].copy_from_slice(&code);
    // jmp near 0x0000 from 0xFFF0: rel16 = 0 - (0xFFF0 + 3) mod 2^16 = 0x000D.
    img[0xFFF0..0xFFF3].copy_from_slice(&[0xE9, 0x0D, 0x00]);
    img
}

/// What the capabilities XML says about x86_64 guests.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct X86Caps {
    /// The x86_64 guest's `<emulator>`.
    pub emulator: Option<String>,
    /// Whether `<domain type='kvm'>` is offered for x86_64.
    pub kvm: bool,
}

/// Reads the x86_64 `<guest>` of a capabilities document.
pub(super) fn parse_caps(xml: &str) -> X86Caps {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut r = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut in_x86 = false;
    let mut caps = X86Caps::default();
    let mut text_target = false;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                handle_open(&e, &name, &path, &mut in_x86, &mut caps);
                text_target =
                    in_x86 && name == "emulator" && path.last().is_some_and(|p| p == "arch");
                path.push(name);
            }
            Ok(Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                handle_open(&e, &name, &path, &mut in_x86, &mut caps);
                if name == "arch" && path.last().is_some_and(|p| p == "guest") {
                    in_x86 = false;
                }
            }
            Ok(Event::Text(t)) if text_target && caps.emulator.is_none() => {
                let s = t.decode().map(|s| s.trim().to_string()).unwrap_or_default();
                if !s.is_empty() {
                    caps.emulator = Some(s);
                }
            }
            Ok(Event::End(_)) => {
                text_target = false;
                if let Some(name) = path.pop()
                    && name == "arch"
                    && path.last().is_some_and(|p| p == "guest")
                {
                    in_x86 = false;
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    caps
}

fn handle_open(
    e: &quick_xml::events::BytesStart<'_>,
    name: &str,
    path: &[String],
    in_x86: &mut bool,
    caps: &mut X86Caps,
) {
    let attr = |key: &[u8]| {
        e.attributes()
            .flatten()
            .find(|a| a.key.as_ref() == key)
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
    };
    if name == "arch" && path.last().is_some_and(|p| p == "guest") {
        *in_x86 = attr(b"name").as_deref() == Some("x86_64");
    } else if *in_x86 && name == "domain" && attr(b"type").as_deref() == Some("kvm") {
        caps.kvm = true;
    }
}

/// One probe run: `Ok(elapsed)` if QEMU exited with [`PROBE_EXIT`], else why not.
fn run_probe(
    emulator: &str,
    accel: &str,
    bios: &Path,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut child = Command::new(emulator)
        .args(["-accel", accel, "-machine", "q35", "-display", "none"])
        .args(["-nodefaults", "-no-user-config", "-no-reboot", "-m", "16"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-bios")
        .arg(bios)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {emulator}: {e}"))?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() >= timeout => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for {emulator}: {e}")),
        }
    };
    let elapsed = start.elapsed();
    let Some(status) = status else {
        // `Child::kill` signals this child's own pid.
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "a {PROBE_LOOPS}-iteration loop did not finish within {} ms",
            timeout.as_millis()
        ));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    match status.code() {
        Some(PROBE_EXIT) => Ok(elapsed),
        code => {
            let last = stderr
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let code = code.map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
            Err(if last.is_empty() {
                format!("exited with {code}")
            } else {
                format!("exited with {code}: {last}")
            })
        }
    }
}

/// Writes the probe firmware to a private temporary file, removed on drop.
struct ProbeFile(PathBuf);

impl ProbeFile {
    fn create() -> Result<Self, String> {
        use std::io::Write;
        static SEQ: Mutex<u32> = Mutex::new(0);
        let seq = {
            let mut s = SEQ.lock().unwrap_or_else(|p| p.into_inner());
            *s += 1;
            *s
        };
        let path =
            std::env::temp_dir().join(format!("prae-kvm-probe-{}-{seq}.bin", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        f.write_all(&probe_image(PROBE_LOOPS))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(ProbeFile(path))
    }
}

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the KVM and TCG probes with `emulator`: `Ok(reason)` if KVM runs guest code at least
/// as fast as TCG, `Err(reason)` otherwise.
pub(super) fn probe_kvm(emulator: &str) -> Result<String, String> {
    let file = ProbeFile::create()?;
    let tcg = run_probe(emulator, "tcg", &file.0, PROBE_TIMEOUT);
    let kvm = run_probe(
        emulator,
        "kvm",
        &file.0,
        kvm_budget(tcg.as_ref().ok().copied()),
    );
    match (kvm, tcg) {
        (Err(k), Ok(t)) => Err(format!(
            "KVM does not run guest code at a usable speed: {k} (TCG: {} ms)",
            t.as_millis()
        )),
        (Err(k), Err(t)) => Err(format!(
            "KVM does not run guest code ({k}); the TCG probe failed too ({t})"
        )),
        (Ok(k), Ok(t)) if k > t => Err(format!(
            "KVM runs guest code slower than TCG ({} ms vs {} ms for the probe loop)",
            k.as_millis(),
            t.as_millis()
        )),
        (Ok(k), Ok(t)) => Ok(format!(
            "KVM runs guest code ({} ms vs {} ms under TCG for the probe loop)",
            k.as_millis(),
            t.as_millis()
        )),
        (Ok(k), Err(t)) => Ok(format!(
            "KVM runs guest code ({} ms for the probe loop; TCG probe failed: {t})",
            k.as_millis()
        )),
    }
}

/// A probe verdict: the emulator path and `probe_kvm`'s answer for it.
type Verdict = (String, Result<String, String>);

/// The probe's verdict per emulator path, once per process.
static PROBED: OnceLock<Mutex<Vec<Verdict>>> = OnceLock::new();

fn probe_cached(emulator: &str) -> Result<String, String> {
    let cache = PROBED.get_or_init(|| Mutex::new(Vec::new()));
    let mut guard = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, r)) = guard.iter().find(|(e, _)| e == emulator) {
        return r.clone();
    }
    let r = probe_kvm(emulator);
    guard.push((emulator.to_string(), r.clone()));
    r
}

/// The decision, from the environment override, the driver, the capabilities and the probe.
///
/// `driver` is `virConnectGetType` ("QEMU" for the QEMU driver), `remote_host` whether the URI
/// names another machine (the probe can only run locally), `caps_xml` the capabilities.
pub(super) fn choose(driver: &str, remote_host: bool, caps_xml: Option<&str>) -> AccelChoice {
    let choice = |virt_type, reason: String| AccelChoice { virt_type, reason };
    if let Ok(forced) = std::env::var(ENV_FORCE) {
        match forced.trim().to_ascii_lowercase().as_str() {
            "kvm" => return choice(VirtType::Kvm, format!("forced by {ENV_FORCE}=kvm")),
            "qemu" | "tcg" => {
                return choice(VirtType::Qemu, format!("forced by {ENV_FORCE}={forced}"));
            }
            _ => log::warn!("ignoring {ENV_FORCE}='{forced}' (expected kvm or qemu)"),
        }
    }
    if !driver.eq_ignore_ascii_case("qemu") {
        return choice(
            VirtType::Qemu,
            format!("not a QEMU host (driver {driver}): KVM does not apply"),
        );
    }
    let Some(xml) = caps_xml else {
        return choice(VirtType::Qemu, "cannot read the host's capabilities".into());
    };
    let caps = parse_caps(xml);
    if !caps.kvm {
        return choice(
            VirtType::Qemu,
            "libvirt offers no KVM domain type for x86_64 guests".into(),
        );
    }
    if remote_host {
        return choice(
            VirtType::Kvm,
            "libvirt offers KVM on the remote host (not probed locally)".into(),
        );
    }
    let emulator = caps
        .emulator
        .unwrap_or_else(|| "qemu-system-x86_64".to_string());
    match probe_cached(&emulator) {
        Ok(reason) => choice(VirtType::Kvm, reason),
        Err(reason) => choice(VirtType::Qemu, format!("{reason}; using TCG")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_layout() {
        let img = probe_image(5);
        assert_eq!(img.len(), 65536);
        assert_eq!(&img[..6], &[0x66, 0xB9, 5, 0, 0, 0]);
        assert_eq!(&img[0xFFF0..0xFFF3], &[0xE9, 0x0D, 0x00]);
        // The jump lands on offset 0: (0xFFF3 + 0x000D) mod 2^16 == 0.
        assert_eq!((0xFFF3u32 + 0x000D) & 0xFFFF, 0);
    }

    #[test]
    fn kvm_budget_bounds() {
        let ms = Duration::from_millis;
        assert_eq!(kvm_budget(Some(ms(100))), Duration::from_secs(1));
        assert_eq!(kvm_budget(Some(ms(500))), ms(2000));
        assert_eq!(kvm_budget(Some(Duration::from_secs(60))), PROBE_TIMEOUT);
        assert_eq!(kvm_budget(None), PROBE_TIMEOUT);
    }

    #[test]
    fn caps_offer_kvm_only_for_x86_64() {
        let xml = r#"<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
          <guest><os_type>hvm</os_type>
            <arch name='i686'><emulator>/usr/bin/qemu-system-i386</emulator>
              <domain type='qemu'/><domain type='kvm'/></arch></guest>
          <guest><os_type>hvm</os_type>
            <arch name='x86_64'><wordsize>64</wordsize>
              <emulator>/usr/bin/qemu-system-x86_64</emulator>
              <machine>pc</machine><domain type='qemu'/></arch></guest>
        </capabilities>"#;
        let c = parse_caps(xml);
        assert_eq!(c.emulator.as_deref(), Some("/usr/bin/qemu-system-x86_64"));
        assert!(!c.kvm);
        let with_kvm = xml.replace(
            "<machine>pc</machine><domain type='qemu'/>",
            "<machine>pc</machine><domain type='qemu'/><domain type='kvm'/>",
        );
        assert!(parse_caps(&with_kvm).kvm);
    }

    #[test]
    fn non_qemu_driver_is_tcg() {
        let c = choose("Test", false, None);
        if std::env::var(ENV_FORCE).is_err() {
            assert_eq!(c.virt_type, VirtType::Qemu);
            assert!(c.reason.contains("not a QEMU host"), "{}", c.reason);
        }
    }

    /// The probe is sound: under TCG it exits 85. Needs QEMU, so only with `PRAE_LAB=1`.
    #[test]
    fn tcg_probe_exits_85() {
        if std::env::var("PRAE_LAB").as_deref() != Ok("1") {
            println!("skipped: set PRAE_LAB=1");
            return;
        }
        let file = ProbeFile::create().unwrap();
        let t = run_probe("qemu-system-x86_64", "tcg", &file.0, PROBE_TIMEOUT).unwrap();
        assert!(t < PROBE_TIMEOUT);
        println!("TCG probe: {} ms", t.as_millis());
        let path = file.0.clone();
        drop(file);
        assert!(!path.exists(), "probe file removed");
    }
}

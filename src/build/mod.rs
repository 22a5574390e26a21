//! Image builds (`requestImageBuild`, DESIGN.md part 10): size a build VM from the engine's
//! prediction, install a package inside a real guest while sampling its usage into history,
//! flatten the result into a standalone image and submit it with a manifest.
//!
//! # The pipeline ([`request_image_build`])
//! 1. **validate**: package name (Debian policy), OS, overrides, base directory; nothing is
//!    created on bad input.
//! 2. **leftovers**: what dead prae processes left (see [`owner`]) is removed.
//! 3. **repo**: the package's offline repository disk ([`repo`]; cached).
//! 4. **profile**: [`engine::predict`] for package/OS/tier with the operator's overrides, plus
//!    the build disk: base used + 2 x the closure's `Installed-Size` + 512 MiB (a documented
//!    default of 1 GiB when the size is unknown), never below the base's own virtual size; or
//!    the size the operator pinned ([`BuildRequest::disk_bytes`], `--disk-size`).
//! 5. **queue**: the build's vCPUs and memory are reserved in the host-wide [`ledger`]; builds
//!    that do not fit wait.
//! 6. **volumes**: in the `prae-builds` dir pool (created when missing), a qcow2 overlay of
//!    `base.qcow2` with the build disk's size and a qcow2 overlay of the repository image (the
//!    cached repository is never written).
//! 7. **define/boot**: the `debian12` template rendered with the profile, the virtualization
//!    type from [`Hypervisor::choose_virt_type`], then [`domain::rewrite`] with the allocation
//!    (which records the profile, its reason and the build's name in prae's metadata); define,
//!    start, wait for the guest agent and for `systemctl is-system-running --wait`.
//! 8. **install**: the root file system grown to the build disk (`resize2fs`), the repository
//!    mounted as the only apt source, `apt-get update`, `apt-get install -y PKG` through
//!    `guest-exec`, sampling all-domain stats every second into the store (subject kind
//!    package, key `package/os`); `dpkg-query -W` for the version. A failed `apt-get` whose
//!    output says the disk was full, or after which the guest's kernel log shows an OOM kill,
//!    fails the build with an error saying so (disk and size, or memory and the killed
//!    process).
//! 9. **shutdown**: `guest-shutdown` (then `systemctl poweroff`).
//! 10. **flatten/submit**: `qemu-img convert -O qcow2` of the overlay into a temporary volume
//!     `prae-partial-<owner>-...` in the `images` pool, sha256, the manifest written beside it
//!     as `NAME.json`, then the image renamed to `NAME.qcow2` (a manifest without its image is
//!     never listed; a partial image of a dead owner is removed as a leftover).
//! 11. **cleanup**: the domain is undefined and the overlays deleted, on success and on every
//!     error (a guard); the reservation is released; the store's build row says how it ended.
//!
//! # Invariants
//! - libvirt only through the [`Hypervisor`] trait; the database only through [`Store`].
//!   Its files (the repository cache, the ledger, lock files, serial logs and the image
//!   manifests, which live beside their volumes) are read and written through
//!   [`store::files`]; libvirt and QEMU write the volumes and serial logs themselves.
//! - Nothing passes through a shell: every command is an argument vector.
//! - Everything a build creates is named after its owner process ([`owner`]); leftovers of dead
//!   owners are removed by the next build or `prae images list`, and nothing else is.

pub mod guest;
pub mod image;
pub mod ledger;
pub mod owner;
pub mod repo;

use crate::domain::{self, template};
use crate::engine::{self, PredictRequest};
use crate::hypervisor::{DomainState, DomainStats, Hypervisor};
use crate::model::{Allocation, ResourceProfile, Tier, UsageSample};
use crate::store::{self, BuildId, BuildState, BuildUpdate, MeasuredUsage, NewBuild, Store, files};
use crate::{Error, Result, units};
use guest::Agent;
use ledger::{Capacity, Ledger};
use owner::{BUILD_PREFIX, Owner, PARTIAL_PREFIX, owner_of};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The template builds use per OS.
pub fn template_for(os: &str) -> Result<&'static str> {
    match engine::normalize_os(os)? {
        "debian12" => Ok("debian12"),
        other => Err(Error::Unsupported(format!(
            "no build template for OS '{other}'"
        ))),
    }
}

/// Where builds find their inputs and put their outputs, and their limits.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// The base image directory: `base.qcow2`, `vmlinuz`, `initrd.img` (and `rootfs/` to
    /// prepare repositories), as `tests/lab/build-debian.sh` makes it.
    pub base_dir: Option<PathBuf>,
    /// A prepared repository directory (`repo.img` [+ `Packages`]) instead of preparing one.
    pub repo_dir: Option<PathBuf>,
    /// State: pools' directories, serial logs, the repository cache.
    pub state_dir: PathBuf,
    /// Where prepared repositories are cached (default: the state directory's `cache/`).
    pub repo_cache: Option<PathBuf>,
    pub builds_pool: String,
    pub images_pool: String,
    /// The host-wide capacity ledger's directory: every prae on the host must use the same
    /// one (`PRAE_LEDGER_DIR`; default `/run/prae` for root, `$XDG_RUNTIME_DIR/prae` otherwise,
    /// else the state directory). A private directory makes a separate (fake) host, for tests.
    pub ledger_dir: PathBuf,
    /// Caps on what builds may use on this host (below the node's capacity).
    pub max_memory_kib: Option<u64>,
    pub max_vcpus: Option<u32>,
    pub agent_timeout: Duration,
    pub install_timeout: Duration,
    pub shutdown_timeout: Duration,
    /// Flatten and submit the image (false: measure only, e.g. for calibration).
    pub keep_image: bool,
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Default state directory: `/var/lib/prae` for root, `$XDG_STATE_HOME/prae` otherwise.
pub fn default_state_dir() -> Result<PathBuf> {
    let db = store::default_db_path()?;
    Ok(db.parent().map(Path::to_path_buf).unwrap_or_default())
}

impl BuildConfig {
    /// Defaults, with `PRAE_BUILD_MEMORY` / `PRAE_BUILD_VCPUS` caps read from the environment.
    pub fn new(state_dir: PathBuf) -> Result<BuildConfig> {
        let max_memory_kib = match std::env::var("PRAE_BUILD_MEMORY") {
            Ok(s) if !s.is_empty() => Some(
                units::parse_size_kib(&s)
                    .map_err(|e| Error::Invalid(format!("PRAE_BUILD_MEMORY: {e}")))?,
            ),
            _ => None,
        };
        let max_vcpus =
            match std::env::var("PRAE_BUILD_VCPUS") {
                Ok(s) if !s.is_empty() => Some(s.parse().map_err(|_| {
                    Error::Invalid(format!("PRAE_BUILD_VCPUS '{s}' is not a number"))
                })?),
                _ => None,
            };
        let ledger_dir = match std::env::var_os("PRAE_LEDGER_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ if is_root() => PathBuf::from("/run/prae"),
            _ => std::env::var_os("XDG_RUNTIME_DIR")
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d).join("prae"))
                .unwrap_or_else(|| state_dir.clone()),
        };
        Ok(BuildConfig {
            ledger_dir,
            base_dir: None,
            repo_dir: None,
            repo_cache: None,
            state_dir,
            builds_pool: "prae-builds".into(),
            images_pool: "images".into(),
            max_memory_kib,
            max_vcpus,
            agent_timeout: Duration::from_secs(600),
            install_timeout: Duration::from_secs(1800),
            shutdown_timeout: Duration::from_secs(90),
            keep_image: true,
        })
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.repo_cache
            .clone()
            .unwrap_or_else(|| self.state_dir.join("cache"))
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
    pub fn builds_pool_dir(&self) -> PathBuf {
        self.state_dir.join("pools").join(&self.builds_pool)
    }
    pub fn images_pool_dir(&self) -> PathBuf {
        self.state_dir.join("pools").join(&self.images_pool)
    }
    pub fn ledger(&self) -> Ledger {
        Ledger::new(&self.ledger_dir)
    }
}

/// What to build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRequest {
    pub package: String,
    pub os: String,
    pub tier: Option<Tier>,
    /// Values the operator pinned (over the prediction).
    pub overrides: ResourceProfile,
    /// The build disk's size in bytes, pinned by the operator (`None`: computed from the
    /// package's installed size, see [`build_disk_size`]). Never below the base's own size.
    pub disk_bytes: Option<u64>,
}

/// A pipeline step, for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Validate,
    Leftovers,
    Repo,
    Profile,
    Queue,
    Volumes,
    Define,
    Boot,
    Install,
    Shutdown,
    Flatten,
    Submit,
    Cleanup,
    Done,
    Failed,
}

impl Step {
    /// The steps a build goes through, in order (for a progress bar).
    pub const ORDER: [Step; 13] = [
        Step::Validate,
        Step::Leftovers,
        Step::Repo,
        Step::Profile,
        Step::Queue,
        Step::Volumes,
        Step::Define,
        Step::Boot,
        Step::Install,
        Step::Shutdown,
        Step::Flatten,
        Step::Submit,
        Step::Cleanup,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::Leftovers => "leftovers",
            Step::Repo => "repo",
            Step::Profile => "profile",
            Step::Queue => "queue",
            Step::Volumes => "volumes",
            Step::Define => "define",
            Step::Boot => "boot",
            Step::Install => "install",
            Step::Shutdown => "shutdown",
            Step::Flatten => "flatten",
            Step::Submit => "submit",
            Step::Cleanup => "cleanup",
            Step::Done => "done",
            Step::Failed => "failed",
        }
    }
    pub fn index(self) -> usize {
        Step::ORDER
            .iter()
            .position(|s| *s == self)
            .unwrap_or(Step::ORDER.len())
    }
}

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The build's name (also its domain's name).
    pub build: String,
    pub package: String,
    pub step: Step,
    pub message: String,
    /// Seconds since the build started.
    pub elapsed_s: f64,
}

/// Receives progress events.
pub trait Progress {
    fn event(&self, e: &Event);
}

/// Discards events.
pub struct NoProgress;
impl Progress for NoProgress {
    fn event(&self, _: &Event) {}
}

/// Package metadata from the repository index.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageMeta {
    /// `Installed-Size` of the package itself, KiB.
    pub installed_size_kib: Option<u64>,
    /// Sum over the closure (package + dependencies not in the base), KiB.
    pub closure_installed_size_kib: Option<u64>,
    /// .debs in the closure, the package included.
    pub closure_debs: Option<usize>,
    /// Dependencies not in the base (closure minus the package itself).
    pub dependencies: Option<usize>,
    pub download_bytes: Option<u64>,
    pub section: Option<String>,
}

/// What a build measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub peak_memory_kib: u64,
    pub cpu_seconds: f64,
    pub peak_cpu_cores: f64,
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    /// `apt-get update` + `apt-get install`, seconds.
    pub install_seconds: f64,
    /// The whole build, seconds.
    pub duration_seconds: f64,
    pub samples: usize,
}

/// The image in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub pool: String,
    pub volume: String,
    pub path: String,
    pub format: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub virtual_size_bytes: u64,
}

/// The manifest submitted with an image (and returned for a measure-only build).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub build: String,
    pub store_build_id: Option<i64>,
    pub os: String,
    pub package: String,
    pub version: Option<String>,
    pub tier: Option<Tier>,
    /// The profile the build VM had, and why.
    pub allocation: Allocation,
    /// The build disk's virtual size, bytes, and how it was chosen.
    pub build_disk_bytes: u64,
    pub build_disk_reason: String,
    pub package_meta: PackageMeta,
    pub measured: Measured,
    /// Seconds per step.
    pub timings: Vec<(Step, f64)>,
    pub virt_type: String,
    /// Base image directory name (it is keyed by the script that made it).
    pub base: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub image: Option<ImageRecord>,
    pub log: Vec<String>,
}

/// What [`request_image_build`] returns.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub manifest: Manifest,
    pub store_build: Option<BuildId>,
    pub manifest_path: Option<PathBuf>,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The base image directory, checked (it has `base.qcow2`, `vmlinuz`, `initrd.img`).
pub fn check_base(cfg: &BuildConfig) -> Result<PathBuf> {
    let Some(base) = cfg.base_dir.clone() else {
        return Err(Error::Invalid(
            "no base image directory: give --base DIR or PRAE_BASE_DIR (the directory \
             tests/lab/build-debian.sh prints)"
                .into(),
        ));
    };
    for f in ["base.qcow2", "vmlinuz", "initrd.img"] {
        if !base.join(f).is_file() {
            return Err(Error::Invalid(format!(
                "base image directory {} has no {f}",
                base.display()
            )));
        }
    }
    Ok(base)
}

/// Bytes the base's root file system uses (from its manifest's `rootfs_bytes`, else 512 MiB).
fn base_used_bytes(base: &Path) -> u64 {
    files::read_optional(&base.join("manifest"))
        .ok()
        .flatten()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("rootfs_bytes=")?.trim().parse().ok())
        })
        .unwrap_or(512 << 20)
}

/// The build disk: base used + 2 x installed size + 512 MiB (1 GiB when the installed size is
/// unknown), rounded up to MiB, at least the base's virtual size.
pub fn build_disk_size(
    base_used: u64,
    base_virtual: u64,
    installed_kib: Option<u64>,
) -> (u64, String) {
    const MIB: u64 = 1 << 20;
    let (need, why) = match installed_kib {
        Some(k) => (
            base_used + 2 * k * 1024 + 512 * MIB,
            format!(
                "base used {} + 2 x installed size {} + 512 MiB",
                units::format_kib(base_used / 1024),
                units::format_kib(k)
            ),
        ),
        None => (
            base_used + 1024 * MIB,
            format!(
                "base used {} + 1 GiB (installed size unknown)",
                units::format_kib(base_used / 1024)
            ),
        ),
    };
    let need = need.div_ceil(MIB) * MIB;
    if need <= base_virtual {
        (
            base_virtual,
            format!(
                "{why}; the base's own size {} suffices",
                units::format_kib(base_virtual / 1024)
            ),
        )
    } else {
        (need, why)
    }
}

/// A build disk size the operator pinned: rounded up to MiB; refused below the base's own
/// virtual size (an overlay cannot be smaller than the file system it holds).
pub fn pinned_disk_size(bytes: u64, base_virtual: u64) -> Result<(u64, String)> {
    const MIB: u64 = 1 << 20;
    let d = bytes.div_ceil(MIB) * MIB;
    if d < base_virtual {
        return Err(Error::Invalid(format!(
            "build disk size {} is smaller than the base image ({})",
            units::format_kib(bytes / 1024),
            units::format_kib(base_virtual / 1024)
        )));
    }
    Ok((d, "pinned by the operator".into()))
}

/// Whether a command's output says the guest's file system was full.
pub fn disk_full(output: &str) -> bool {
    output.contains("No space left on device")
        || output.contains("You don't have enough free space")
}

/// The first OOM kill in a guest's kernel log, as "killed process N (NAME)".
pub fn oom_kill(kernel_log: &str) -> Option<String> {
    kernel_log.lines().find_map(|l| {
        let (_, rest) = l.split_once("Out of memory: Killed process ")?;
        let end = rest.find(')').map_or(rest.len(), |i| i + 1);
        Some(format!("killed process {}", &rest[..end]))
    })
}

/// Destroys, undefines and deletes what a build created, when dropped (success or error).
struct Guard<'a> {
    hv: &'a dyn Hypervisor,
    domain: Option<String>,
    /// (pool, volume)
    volumes: Vec<(String, String)>,
    files: Vec<PathBuf>,
}

impl Guard<'_> {
    fn clean(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(d) = self.domain.take() {
            if self
                .hv
                .domain_info(&d)
                .is_ok_and(|i| i.state != DomainState::Shutoff)
                && let Err(e) = self.hv.destroy(&d)
            {
                problems.push(format!("destroy {d}: {e}"));
            }
            if let Err(e) = self.hv.undefine(&d) {
                problems.push(format!("undefine {d}: {e}"));
            }
        }
        for (pool, vol) in self.volumes.drain(..) {
            if let Err(e) = self.hv.volume_delete(&pool, &vol)
                && !matches!(e, Error::NotFound(_))
            {
                problems.push(format!("delete volume {vol}: {e}"));
            }
        }
        for f in self.files.drain(..) {
            let _ = files::remove_file(&f);
        }
        problems
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        for p in self.clean() {
            log::warn!("cleanup: {p}");
        }
    }
}

/// Removes leftovers of builds whose prae process is gone: domains (named `prae-build-...` and
/// carrying prae's metadata naming the build), volumes in the builds pool, partial images in
/// the images pool, repository work directories; marks their store rows failed. Returns what
/// was removed.
pub fn remove_leftovers(
    hv: &dyn Hypervisor,
    cfg: &BuildConfig,
    store: Option<&mut Store>,
) -> Result<Vec<String>> {
    let dead = |name: &str, prefix: &str| owner_of(name, prefix).is_some_and(|o| !o.alive());
    let mut removed = Vec::new();
    // Domains named like builds that are not provably prae's: their volumes stay too.
    let mut kept: Vec<String> = Vec::new();
    for d in hv.list_domains()? {
        if !dead(&d.name, BUILD_PREFIX) {
            continue;
        }
        let Ok(xml) = hv.domain_xml(&d.name, crate::hypervisor::XmlKind::Inactive) else {
            continue;
        };
        let ours = domain::parse(&xml).is_ok_and(|v| v.rewritten_by_prae)
            && xml.contains(&build_marker(&d.name));
        if !ours {
            log::warn!(
                "{} looks like a prae build but has no prae build metadata; left alone",
                d.name
            );
            kept.push(format!("{}-", d.name));
            continue;
        }
        if d.state != DomainState::Shutoff {
            let _ = hv.destroy(&d.name);
        }
        hv.undefine(&d.name)?;
        removed.push(format!("domain {}", d.name));
    }
    let pools = hv.pool_list()?;
    for (pool, prefix) in [
        (&cfg.builds_pool, BUILD_PREFIX),
        (&cfg.images_pool, PARTIAL_PREFIX),
    ] {
        if !pools.iter().any(|p| &p.name == pool && p.active) {
            continue;
        }
        let _ = hv.pool_refresh(pool);
        for v in hv.volume_list(pool)? {
            if dead(&v.name, prefix) && !kept.iter().any(|k| v.name.starts_with(k.as_str())) {
                hv.volume_delete(pool, &v.name)?;
                removed.push(format!("volume {pool}/{}", v.name));
            }
        }
    }
    for p in repo::remove_leftovers(&cfg.cache_dir()) {
        removed.push(format!("directory {p}"));
    }
    // Serial logs of failed or killed builds are kept for a week, for diagnosis.
    for (name, path) in files::entries(&cfg.logs_dir()) {
        let old = files::age(&path).is_some_and(|age| age > Duration::from_secs(7 * 86_400));
        if old
            && name
                .strip_suffix(".log")
                .is_some_and(|b| dead(b, BUILD_PREFIX))
        {
            let _ = files::remove_file(&path);
        }
    }
    if let Some(store) = store {
        for b in store.builds()? {
            if b.state != BuildState::Running {
                continue;
            }
            let Some(name) = b
                .log_path
                .as_deref()
                .and_then(|p| Path::new(p).file_stem())
                .and_then(|s| s.to_str())
            else {
                continue;
            };
            if dead(name, BUILD_PREFIX) {
                store.update_build(
                    b.id,
                    &BuildUpdate {
                        state: Some(BuildState::Failed),
                        error: Some("prae was killed during the build".into()),
                        ..BuildUpdate::default()
                    },
                    &store::current_user(),
                )?;
                removed.push(format!("build {} marked failed", b.id.0));
            }
        }
    }
    Ok(removed)
}

/// The text in prae's metadata that marks a domain as the build `name`.
fn build_marker(name: &str) -> String {
    format!("build {name}")
}

/// Runs a build; see the module documentation. `progress` gets an event per step.
pub fn request_image_build(
    hv: &dyn Hypervisor,
    store: &mut Store,
    cfg: &BuildConfig,
    req: &BuildRequest,
    progress: &dyn Progress,
) -> Result<BuildResult> {
    // 1. Validate everything before anything is created.
    engine::validate_package_name(&req.package)?;
    let os = engine::normalize_os(&req.os)?;
    let template_name = template_for(os)?;
    req.overrides.validate()?;
    let base = check_base(cfg)?;
    if let Some(r) = &cfg.repo_dir {
        repo::external(r)?;
    }
    let owner = Owner::current();
    let name = format!("{BUILD_PREFIX}{}-{}", owner.token(), req.package);
    let mut b = Build {
        hv,
        cfg,
        req,
        os,
        name,
        started: Instant::now(),
        started_at: now_unix(),
        progress,
        log: Vec::new(),
        timings: Vec::new(),
        step_started: Instant::now(),
        step: Step::Validate,
    };
    b.emit(Step::Validate, format!("{} on {os}", req.package));
    let base_virtual = image::virtual_size(&base.join("base.qcow2"))?;

    // 2. Leftovers of dead builds.
    b.emit(
        Step::Leftovers,
        "removing leftovers of earlier builds".into(),
    );
    for r in remove_leftovers(hv, cfg, Some(store))? {
        b.emit(Step::Leftovers, format!("removed {r}"));
    }

    // 3. Repository.
    b.emit(Step::Repo, format!("repository for {}", req.package));
    let repo = match &cfg.repo_dir {
        Some(d) => repo::external(d)?,
        None => repo::prepare(&base, &cfg.cache_dir(), &req.package, os)?,
    };
    let meta = package_meta(&repo, &req.package);
    b.emit(
        Step::Repo,
        format!(
            "{} .deb(s), {} installed{}",
            repo.debs.len(),
            meta.closure_installed_size_kib
                .map_or("unknown".into(), units::format_kib),
            if repo.cached {
                " (cached)".to_string()
            } else {
                format!(" (prepared in {:.1} s)", repo.prepare_s)
            }
        ),
    );

    // 4. Profile.
    let mut alloc = engine::predict(&PredictRequest {
        package: Some(req.package.clone()),
        os: Some(os.to_string()),
        tier: req.tier,
        pinned: req.overrides.clone(),
    })?;
    let (disk_bytes, disk_reason) = match req.disk_bytes {
        Some(d) => pinned_disk_size(d, base_virtual)?,
        None => build_disk_size(
            base_used_bytes(&base),
            base_virtual,
            meta.closure_installed_size_kib.filter(|_| repo.indexed),
        ),
    };
    alloc.provenance.sources.push(format!(
        "build disk {}: {disk_reason}",
        units::format_kib(disk_bytes / 1024)
    ));
    alloc.provenance.sources.push(build_marker(&b.name));
    // A build VM needs concrete numbers even when only some were pinned.
    let tier_default = engine::tier_profile(req.tier.unwrap_or(engine::DEFAULT_TIER));
    let vcpus = alloc.profile.vcpus.or(tier_default.vcpus).unwrap_or(1);
    let max_vcpus = alloc.profile.max_vcpus.unwrap_or(vcpus).max(vcpus);
    let memory_kib = alloc
        .profile
        .memory_kib
        .or(tier_default.memory_kib)
        .unwrap_or(1 << 20);
    b.emit(
        Step::Profile,
        format!(
            "{vcpus} vCPU(s), {}, disk {} ({})",
            units::format_kib(memory_kib),
            units::format_kib(disk_bytes / 1024),
            alloc.provenance.reason
        ),
    );

    // 5. Capacity.
    let node = hv.node_capacity()?;
    let cap = Capacity {
        vcpus: cfg.max_vcpus.map_or(node.cpus, |c| c.min(node.cpus)),
        memory_kib: cfg
            .max_memory_kib
            .map_or(node.memory_kib, |c| c.min(node.memory_kib)),
    };
    b.emit(
        Step::Queue,
        format!(
            "reserving {max_vcpus} vCPU(s) and {} of {} vCPU(s) and {}",
            units::format_kib(memory_kib),
            cap.vcpus,
            units::format_kib(cap.memory_kib)
        ),
    );
    let reservation = {
        let name = b.name.clone();
        let pkg = req.package.clone();
        let started = b.started;
        cfg.ledger().reserve(
            &b.name,
            max_vcpus,
            memory_kib,
            cap,
            Duration::from_secs(1),
            |held| {
                progress.event(&Event {
                    build: name.clone(),
                    package: pkg.clone(),
                    step: Step::Queue,
                    message: format!(
                        "queued: {} build(s) hold {} vCPU(s) and {}",
                        held.len(),
                        held.iter().map(|e| e.vcpus).sum::<u32>(),
                        units::format_kib(held.iter().map(|e| e.memory_kib).sum())
                    ),
                    elapsed_s: started.elapsed().as_secs_f64(),
                })
            },
        )?
    };
    b.emit(
        Step::Queue,
        format!(
            "reserved after waiting {:.1} s",
            reservation.waited.as_secs_f64()
        ),
    );

    let log_path = cfg.logs_dir().join(format!("{}.log", b.name));
    let build_id = store.record_build(
        &NewBuild {
            package: req.package.clone(),
            os: os.to_string(),
            version: None,
            tier: req.tier,
            allocation: alloc.clone(),
            state: BuildState::Running,
            log_path: Some(log_path.display().to_string()),
        },
        &store::current_user(),
    )?;
    let mut guard = Guard {
        hv,
        domain: None,
        volumes: Vec::new(),
        files: Vec::new(),
    };
    let result = b.run(
        &mut guard,
        store,
        build_id,
        &base,
        &repo,
        meta,
        alloc,
        (vcpus, max_vcpus, memory_kib),
        (disk_bytes, disk_reason, base_virtual),
        template_name,
        &log_path,
    );
    let problems = guard.clean();
    drop(reservation);
    b.emit(
        Step::Cleanup,
        format!(
            "released {max_vcpus} vCPU(s) and {}",
            units::format_kib(memory_kib)
        ),
    );
    match result {
        Ok(mut r) => {
            let _ = files::remove_file(&log_path);
            for p in &problems {
                r.manifest.log.push(format!("cleanup: {p}"));
            }
            b.emit(
                Step::Done,
                format!("done in {:.1} s", b.started.elapsed().as_secs_f64()),
            );
            Ok(r)
        }
        Err(e) => {
            let _ = store.update_build(
                build_id,
                &BuildUpdate {
                    state: Some(BuildState::Failed),
                    error: Some(e.to_string()),
                    ..BuildUpdate::default()
                },
                &store::current_user(),
            );
            b.emit(Step::Failed, e.to_string());
            if log_path.is_file() {
                b.emit(
                    Step::Failed,
                    format!(
                        "the guest's serial console is kept in {}",
                        log_path.display()
                    ),
                );
            }
            Err(e)
        }
    }
}

fn package_meta(repo: &repo::Repo, package: &str) -> PackageMeta {
    if !repo.indexed {
        return PackageMeta::default();
    }
    let own = repo.deb(package);
    PackageMeta {
        installed_size_kib: own.map(|d| d.installed_size_kib),
        closure_installed_size_kib: Some(repo.installed_size_kib()),
        closure_debs: Some(repo.debs.len()),
        dependencies: Some(repo.debs.len().saturating_sub(usize::from(own.is_some()))),
        download_bytes: Some(repo.download_bytes()),
        section: own.and_then(|d| d.section.clone()),
    }
}

/// A build in progress: progress, log and timings.
struct Build<'a> {
    hv: &'a dyn Hypervisor,
    cfg: &'a BuildConfig,
    req: &'a BuildRequest,
    os: &'static str,
    name: String,
    started: Instant,
    started_at: i64,
    progress: &'a dyn Progress,
    log: Vec<String>,
    timings: Vec<(Step, f64)>,
    step_started: Instant,
    step: Step,
}

/// Cumulative counters of one stats reading.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    at: Option<Instant>,
    cpu_ns: u64,
    rd: u64,
    wr: u64,
    net_rx: u64,
    net_tx: u64,
}

fn counters(s: &DomainStats) -> Counters {
    Counters {
        at: Some(Instant::now()),
        cpu_ns: s.cpu_time_ns.unwrap_or(0),
        rd: s.blocks.iter().map(|b| b.rd_bytes).sum(),
        wr: s.blocks.iter().map(|b| b.wr_bytes).sum(),
        net_rx: s.nets.iter().map(|n| n.rx_bytes).sum(),
        net_tx: s.nets.iter().map(|n| n.tx_bytes).sum(),
    }
}

/// Guest memory in use, KiB: balloon available - usable (what the guest could not give back
/// without swapping), else the QEMU process's RSS.
fn memory_used(s: &DomainStats) -> Option<u64> {
    match (s.balloon_available_kib, s.balloon_usable_kib) {
        (Some(a), Some(u)) if a >= u => Some(a - u),
        _ => s.balloon_rss_kib,
    }
}

impl Build<'_> {
    /// The error of a failed `apt-get`: a full build disk or the guest kernel's OOM killer
    /// named as such (the latter from the guest's kernel log), else the command's own error.
    fn install_error(
        &self,
        agent: &Agent,
        out: &guest::Exec,
        what: &str,
        disk_bytes: u64,
        memory_kib: u64,
    ) -> Error {
        let text = format!("{}\n{}", out.stdout, out.stderr);
        if let Some(line) = text.lines().find(|l| disk_full(l)) {
            return Error::Invalid(format!(
                "{what} filled the build disk: no space left on its {} root disk \
                 ({}-root.qcow2): {}",
                units::format_kib(disk_bytes / 1024),
                self.name,
                line.trim()
            ));
        }
        let kernel_log = agent
            .run("/usr/bin/dmesg", &[], None, Duration::from_secs(60))
            .map(|o| o.stdout)
            .unwrap_or_default();
        if let Some(line) = oom_kill(&kernel_log) {
            return Error::Invalid(format!(
                "{what} ran out of memory in the build VM ({}): the guest kernel's OOM killer \
                 {line}",
                units::format_kib(memory_kib)
            ));
        }
        out.error(&self.name)
    }

    fn emit(&mut self, step: Step, message: String) {
        if step != self.step {
            self.timings
                .push((self.step, self.step_started.elapsed().as_secs_f64()));
            self.step = step;
            self.step_started = Instant::now();
        }
        let e = Event {
            build: self.name.clone(),
            package: self.req.package.clone(),
            step,
            message,
            elapsed_s: self.started.elapsed().as_secs_f64(),
        };
        self.log.push(format!(
            "{:7.1}s {:9} {}",
            e.elapsed_s,
            step.as_str(),
            e.message
        ));
        self.progress.event(&e);
    }

    fn stats(&self) -> Option<DomainStats> {
        self.hv
            .all_domain_stats()
            .ok()?
            .into_iter()
            .find(|s| s.name == self.name)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        guard: &mut Guard<'_>,
        store: &mut Store,
        build_id: BuildId,
        base: &Path,
        repo: &repo::Repo,
        meta: PackageMeta,
        alloc: Allocation,
        (vcpus, max_vcpus, memory_kib): (u32, u32, u64),
        (disk_bytes, disk_reason, base_virtual): (u64, String, u64),
        template_name: &str,
        log_path: &Path,
    ) -> Result<BuildResult> {
        let hv = self.hv;
        let cfg = self.cfg;
        let pkg = self.req.package.clone();

        // 6. Volumes.
        self.emit(
            Step::Volumes,
            format!("overlays in pool {}", cfg.builds_pool),
        );
        image::ensure_pool(hv, &cfg.builds_pool, &cfg.builds_pool_dir())?;
        let root_name = format!("{}-root.qcow2", self.name);
        let root = hv.volume_create(
            &cfg.builds_pool,
            &image::volume_xml(
                &root_name,
                disk_bytes,
                Some((&base.join("base.qcow2"), "qcow2")),
            )?,
        )?;
        guard.volumes.push((cfg.builds_pool.clone(), root_name));
        let repo_name = format!("{}-repo.qcow2", self.name);
        let repo_size = image::virtual_size(&repo.image)?;
        let repo_vol = hv.volume_create(
            &cfg.builds_pool,
            &image::volume_xml(&repo_name, repo_size, Some((&repo.image, "raw")))?,
        )?;
        guard.volumes.push((cfg.builds_pool.clone(), repo_name));

        // 7. Domain.
        let accel = hv.choose_virt_type();
        files::create_dir_all(&cfg.logs_dir())?;
        let mut v = template::TemplateValues::new(&self.name, accel.virt_type, memory_kib, vcpus);
        v.max_vcpus = Some(max_vcpus);
        v.kernel = Some(base.join("vmlinuz"));
        v.initrd = Some(base.join("initrd.img"));
        v.disk = Some(template::DiskImage::new(
            &root.path,
            template::ImageFormat::Qcow2,
        ));
        v.disk2 = Some(template::DiskImage::new(
            &repo_vol.path,
            template::ImageFormat::Qcow2,
        ));
        v.serial_log = Some(log_path.to_path_buf());
        let xml = template::render(template_name, &v)?;
        // prae's metadata in the domain names the build: the ownership marker cleanup checks.
        let mut marked = alloc.clone();
        marked.provenance.reason =
            format!("{}; {}", marked.provenance.reason, build_marker(&self.name));
        let rewritten = domain::rewrite(&xml, &marked)?;
        self.emit(
            Step::Define,
            format!(
                "{} ({}: {})",
                self.name,
                accel.virt_type.as_str(),
                accel.reason
            ),
        );
        let defined = hv.define(&rewritten.xml)?;
        guard.domain = Some(defined.clone());
        for s in &rewritten.skipped {
            self.log
                .push(format!("profile: {} kept ({})", s.what, s.reason));
        }

        // Boot.
        self.emit(Step::Boot, "starting; waiting for the guest agent".into());
        hv.start(&self.name)?;
        let agent = Agent {
            hv,
            domain: &defined,
        };
        let boot = agent.wait(cfg.agent_timeout)?;
        let ready = agent.exec(
            "/usr/bin/systemctl",
            &["is-system-running", "--wait"],
            None,
            Duration::from_secs(180),
            || {},
        )?;
        self.emit(
            Step::Boot,
            format!(
                "agent answered after {:.1} s; system {}",
                boot.as_secs_f64(),
                ready.stdout.trim()
            ),
        );

        // 8. Install.
        let long = cfg.install_timeout;
        let short = Duration::from_secs(120);
        if disk_bytes > base_virtual {
            agent.run("/sbin/resize2fs", &["/dev/vda"], None, short)?;
        }
        agent.run("/bin/mkdir", &["-p", "/mnt/repo"], None, short)?;
        agent.run(
            "/bin/mount",
            &["-o", "ro", "/dev/vdb", "/mnt/repo"],
            None,
            short,
        )?;
        agent.run(
            "/usr/bin/find",
            &["/etc/apt/sources.list.d", "-mindepth", "1", "-delete"],
            None,
            short,
        )?;
        agent.run(
            "/usr/bin/tee",
            &["/etc/apt/sources.list"],
            Some(b"deb [trusted=yes] file:/mnt/repo ./\n"),
            short,
        )?;
        self.emit(Step::Install, format!("apt-get install -y {pkg}"));
        let subject = store.subject(
            store::SubjectKind::Package,
            &store::package_key(&pkg, self.os),
        )?;
        let install_started = Instant::now();
        let first = self.stats().map(|s| counters(&s)).unwrap_or_default();
        let mut sampler = Sampler {
            prev: first,
            first,
            last: first,
            pending: Vec::new(),
            peak_mem: 0,
            peak_cores: 0.0,
            count: 0,
            error: None,
        };
        let name = self.name.clone();
        let mut last_tick = Instant::now();
        let mut tick = |store: &mut Store| {
            if last_tick.elapsed() < Duration::from_secs(1) {
                return;
            }
            last_tick = Instant::now();
            let s = hv
                .all_domain_stats()
                .ok()
                .and_then(|v| v.into_iter().find(|s| s.name == name));
            if let Some(s) = s {
                sampler.add(&s);
                if sampler.pending.len() >= 10 {
                    sampler.flush(store, subject);
                }
            }
        };
        let update = agent.exec("/usr/bin/apt-get", &["update"], None, long, || tick(store))?;
        if !update.ok() {
            return Err(self.install_error(
                &agent,
                &update,
                "apt-get update",
                disk_bytes,
                memory_kib,
            ));
        }
        let install = agent.exec(
            "/usr/bin/apt-get",
            &["install", "-y", &pkg],
            None,
            long,
            || tick(store),
        )?;
        let install_s = install_started.elapsed().as_secs_f64();
        if let Some(s) = self.stats() {
            sampler.add(&s);
        }
        sampler.flush(store, subject);
        for l in install.stdout.lines().chain(install.stderr.lines()) {
            self.log.push(format!("apt: {l}"));
        }
        if !install.ok() {
            let what = format!("installing {pkg}");
            return Err(self.install_error(&agent, &install, &what, disk_bytes, memory_kib));
        }
        let version = agent
            .run(
                "/usr/bin/dpkg-query",
                &["-W", "-f=${Version}", &pkg],
                None,
                short,
            )?
            .stdout
            .trim()
            .to_string();
        let measured_install = sampler.measured(install_s);
        self.emit(
            Step::Install,
            format!(
                "{pkg} {version} installed in {install_s:.1} s: peak memory {}, CPU {:.1} s, \
                 {} written",
                units::format_kib(measured_install.peak_memory_kib),
                measured_install.cpu_seconds,
                units::format_kib(measured_install.disk_write_bytes / 1024)
            ),
        );
        if let Some(e) = &sampler.error {
            self.log.push(format!("samples: {e}"));
        }

        // 9. Shutdown.
        self.emit(Step::Shutdown, "guest-shutdown".into());
        let how = match agent.shutdown(cfg.shutdown_timeout) {
            Ok(how) => how.to_string(),
            Err(e) => {
                self.log.push(format!("shutdown: {e}; powering off"));
                hv.destroy(&self.name)?;
                "destroy".into()
            }
        };
        self.emit(Step::Shutdown, format!("shut off ({how})"));

        // 10. Flatten and submit.
        let mut manifest = Manifest {
            manifest_version: 1,
            build: self.name.clone(),
            store_build_id: Some(build_id.0),
            os: self.os.to_string(),
            package: pkg.clone(),
            version: Some(version.clone()),
            tier: self.req.tier,
            allocation: alloc,
            build_disk_bytes: disk_bytes,
            build_disk_reason: disk_reason,
            package_meta: meta,
            measured: measured_install,
            timings: Vec::new(),
            virt_type: accel.virt_type.as_str().into(),
            base: base
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            started_at: self.started_at,
            finished_at: 0,
            image: None,
            log: Vec::new(),
        };
        let mut manifest_path = None;
        if cfg.keep_image {
            self.emit(
                Step::Flatten,
                format!("qemu-img convert into pool {}", cfg.images_pool),
            );
            image::ensure_pool(hv, &cfg.images_pool, &cfg.images_pool_dir())?;
            let stamp = chrono_stamp(self.started_at);
            let final_name = format!("{pkg}-{}-{stamp}-{}", self.os, std::process::id());
            let partial_name = format!(
                "{PARTIAL_PREFIX}{}.qcow2",
                self.name.strip_prefix(BUILD_PREFIX).unwrap_or(&self.name)
            );
            let partial = hv.volume_create(
                &cfg.images_pool,
                &image::volume_xml(&partial_name, 1 << 20, None)?,
            )?;
            guard.volumes.push((cfg.images_pool.clone(), partial_name));
            let partial_path = PathBuf::from(&partial.path);
            image::flatten(Path::new(&root.path), &partial_path)?;
            self.emit(Step::Submit, "sha256 and manifest".into());
            let sha = image::sha256_file(&partial_path)?;
            let size = files::size(&partial_path)?;
            let dir = partial_path
                .parent()
                .unwrap_or(Path::new("/"))
                .to_path_buf();
            let image_path = dir.join(format!("{final_name}.qcow2"));
            manifest.image = Some(ImageRecord {
                pool: cfg.images_pool.clone(),
                volume: format!("{final_name}.qcow2"),
                path: image_path.display().to_string(),
                format: "qcow2".into(),
                sha256: sha,
                size_bytes: size,
                virtual_size_bytes: disk_bytes,
            });
            manifest.measured.duration_seconds = self.started.elapsed().as_secs_f64();
            manifest.finished_at = now_unix();
            manifest.timings = self.timings.clone();
            manifest.log = self.log.clone();
            let mpath = image::manifest_path(&image_path);
            let tmp = dir.join(format!(".{final_name}.json.tmp"));
            let text = serde_json::to_string_pretty(&manifest)
                .map_err(|e| Error::Invalid(format!("cannot encode the manifest: {e}")))?;
            files::write_atomic(&mpath, &tmp, text.as_bytes(), false)?;
            guard.files.push(mpath.clone());
            // The image appears under its final name only once it and its manifest are whole.
            files::rename(&partial_path, &image_path)?;
            guard.volumes.retain(|(p, _)| p != &cfg.images_pool);
            guard.files.retain(|f| f != &mpath);
            hv.pool_refresh(&cfg.images_pool)?;
            manifest_path = Some(mpath);
            self.emit(
                Step::Submit,
                format!(
                    "image {final_name}.qcow2 ({})",
                    units::format_kib(size / 1024)
                ),
            );
        }
        self.emit(
            Step::Cleanup,
            "removing the build domain and overlays".into(),
        );
        manifest.measured.duration_seconds = self.started.elapsed().as_secs_f64();
        manifest.finished_at = now_unix();
        manifest.timings = self.timings.clone();
        manifest.log = self.log.clone();
        let m = &manifest.measured;
        store.update_build(
            build_id,
            &BuildUpdate {
                state: Some(BuildState::Succeeded),
                version: Some(version),
                measured: Some(MeasuredUsage {
                    peak_memory_kib: m.peak_memory_kib,
                    cpu_time_ns: (m.cpu_seconds * 1e9) as u64,
                    peak_cpu_cores: m.peak_cpu_cores,
                    disk_read_bytes: m.disk_read_bytes,
                    disk_write_bytes: m.disk_write_bytes,
                    net_rx_bytes: 0,
                    net_tx_bytes: 0,
                    duration_s: m.duration_seconds,
                }),
                ..BuildUpdate::default()
            },
            &store::current_user(),
        )?;
        Ok(BuildResult {
            manifest,
            store_build: Some(build_id),
            manifest_path,
        })
    }
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time (UTC).
fn chrono_stamp(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Turns cumulative stats into per-interval samples and totals.
struct Sampler {
    first: Counters,
    prev: Counters,
    last: Counters,
    pending: Vec<UsageSample>,
    peak_mem: u64,
    peak_cores: f64,
    count: usize,
    error: Option<String>,
}

impl Sampler {
    fn add(&mut self, s: &DomainStats) {
        let c = counters(s);
        let mem = memory_used(s).unwrap_or(0);
        self.peak_mem = self.peak_mem.max(mem);
        let secs = match (self.prev.at, c.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        let cpu = c.cpu_ns.saturating_sub(self.prev.cpu_ns);
        if secs > 0.0 {
            self.peak_cores = self.peak_cores.max(cpu as f64 / 1e9 / secs);
        }
        self.pending.push(UsageSample {
            timestamp: now_unix(),
            interval_s: secs.round() as u32,
            cpu_time_ns: cpu,
            cpu_percent: None,
            memory_used_kib: mem,
            disk_read_bytes: c.rd.saturating_sub(self.prev.rd),
            disk_write_bytes: c.wr.saturating_sub(self.prev.wr),
            net_rx_bytes: c.net_rx.saturating_sub(self.prev.net_rx),
            net_tx_bytes: c.net_tx.saturating_sub(self.prev.net_tx),
        });
        self.count += 1;
        self.prev = c;
        self.last = c;
    }

    fn flush(&mut self, store: &mut Store, subject: store::SubjectId) {
        if self.pending.is_empty() {
            return;
        }
        if let Err(e) = store.append_samples(subject, &self.pending) {
            self.error.get_or_insert(e.to_string());
        }
        self.pending.clear();
    }

    fn measured(&self, install_s: f64) -> Measured {
        Measured {
            peak_memory_kib: self.peak_mem,
            cpu_seconds: self.last.cpu_ns.saturating_sub(self.first.cpu_ns) as f64 / 1e9,
            peak_cpu_cores: self.peak_cores,
            disk_read_bytes: self.last.rd.saturating_sub(self.first.rd),
            disk_write_bytes: self.last.wr.saturating_sub(self.first.wr),
            install_seconds: install_s,
            duration_seconds: 0.0,
            samples: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_disk_grows_with_the_installed_size() {
        const MIB: u64 = 1 << 20;
        let (b, why) = build_disk_size(350 * MIB, 2048 * MIB, Some(100 * 1024));
        assert_eq!(b, 2048 * MIB, "{why}");
        let (b, why) = build_disk_size(350 * MIB, 2048 * MIB, Some(1024 * 1024));
        assert_eq!(b, 350 * MIB + 2048 * MIB + 512 * MIB, "{why}");
        assert!(why.contains("installed size"), "{why}");
        let (b, _) = build_disk_size(1800 * MIB, 2048 * MIB, None);
        assert_eq!(b, 2824 * MIB);
    }

    #[test]
    fn a_pinned_disk_is_never_below_the_base() {
        const MIB: u64 = 1 << 20;
        let (d, why) = pinned_disk_size(3000 * MIB + 1, 2048 * MIB).unwrap();
        assert_eq!(d, 3001 * MIB);
        assert_eq!(why, "pinned by the operator");
        assert_eq!(
            pinned_disk_size(2048 * MIB, 2048 * MIB).unwrap().0,
            2048 * MIB
        );
        let e = pinned_disk_size(1024 * MIB, 2048 * MIB)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("build disk size 1GiB is smaller than the base image (2GiB)"),
            "{e}"
        );
    }

    #[test]
    fn full_disks_and_oom_kills_are_recognized() {
        assert!(disk_full(
            "dpkg: error processing archive /mnt/repo/perl.deb (--unpack):\n cannot copy \
             extracted data for './usr/bin/perl' to '/usr/bin/perl.dpkg-new': failed to write \
             (No space left on device)"
        ));
        assert!(disk_full(
            "E: You don't have enough free space in /var/cache/apt/archives/."
        ));
        assert!(!disk_full("E: Unable to locate package nosuch"));
        let log = "[   1.0] virtio_balloon virtio3: ok\n\
                   [ 412.5] Out of memory: Killed process 2311 (mariadbd) total-vm:1234kB, \
                   anon-rss:400000kB\n[ 413.0] oom_reaper: reaped process 2311 (mariadbd)";
        assert_eq!(
            oom_kill(log).as_deref(),
            Some("killed process 2311 (mariadbd)")
        );
        assert_eq!(oom_kill("[ 1.0] nothing to see"), None);
    }

    #[test]
    fn stamps_are_utc() {
        assert_eq!(chrono_stamp(0), "19700101T000000Z");
        assert_eq!(chrono_stamp(1_700_000_000), "20231114T221320Z");
    }
}

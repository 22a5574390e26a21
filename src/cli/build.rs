//! `prae build`, `prae images list|show|remove`, `prae calibrate`.

use super::prae::{Format, ProfileArgs};
use crate::build::{self, BuildConfig, BuildRequest, Event, Manifest, Progress, Step, image};
use crate::hypervisor::Libvirt;
use crate::store::Store;
use crate::{Error, Result, units};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where builds find their base, keep their state and write history.
#[derive(Debug, Clone, Args)]
pub struct BuildEnvArgs {
    /// Base image directory (base.qcow2, vmlinuz, initrd.img, rootfs/), as
    /// tests/lab/build-debian.sh prints it.
    #[arg(long = "base", env = "PRAE_BASE_DIR")]
    pub base: Option<PathBuf>,
    /// A prepared repository directory (repo.img [+ Packages], e.g. from tests/lab/make-repo.sh)
    /// instead of preparing one from the base's rootfs.
    #[arg(long = "repo")]
    pub repo: Option<PathBuf>,
    /// State directory: storage pools' directories, the capacity ledger, logs, repository
    /// cache [default: /var/lib/prae for root, else $XDG_STATE_HOME/prae].
    #[arg(long, env = "PRAE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// History database [default: the state directory's prae.db].
    #[arg(long, env = "PRAE_DB")]
    pub db: Option<PathBuf>,
    /// Repository cache directory [default: the state directory's cache/].
    #[arg(long, env = "PRAE_REPO_CACHE")]
    pub repo_cache: Option<PathBuf>,
    /// Storage pool of the images (a dir pool, created when missing).
    #[arg(long, default_value = "images")]
    pub images_pool: String,
    /// Storage pool of the build overlays (a dir pool, created when missing).
    #[arg(long, default_value = "prae-builds")]
    pub builds_pool: String,
    /// Seconds to wait for the guest agent after start.
    #[arg(long, default_value_t = 600)]
    pub agent_timeout: u64,
    /// Seconds the install may take.
    #[arg(long, default_value_t = 1800)]
    pub install_timeout: u64,
}

impl BuildEnvArgs {
    pub fn config(&self) -> Result<BuildConfig> {
        // libvirt resolves paths itself (pool directories, backing files): relative ones are
        // made absolute here, against prae's working directory.
        let abs =
            |p: &Path| std::path::absolute(p).map_err(|e| Error::io(p.display().to_string(), e));
        let opt = |p: &Option<PathBuf>| p.as_deref().map(abs).transpose();
        let state = match &self.state_dir {
            Some(d) => abs(d)?,
            None => build::default_state_dir()?,
        };
        let mut cfg = BuildConfig::new(state)?;
        cfg.base_dir = opt(&self.base)?;
        cfg.repo_dir = opt(&self.repo)?;
        cfg.images_pool = self.images_pool.clone();
        cfg.builds_pool = self.builds_pool.clone();
        cfg.repo_cache = opt(&self.repo_cache)?;
        cfg.agent_timeout = Duration::from_secs(self.agent_timeout);
        cfg.install_timeout = Duration::from_secs(self.install_timeout);
        Ok(cfg)
    }

    pub fn store(&self, cfg: &BuildConfig) -> Result<Store> {
        Store::open(match &self.db {
            Some(p) => p.clone(),
            None => cfg.state_dir.join("prae.db"),
        })
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Debian package to install into the image.
    #[arg(long)]
    pub package: String,
    /// Operating system (debian12).
    #[arg(long, default_value = "debian12")]
    pub os: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Build disk size, in libvirt units (e.g. 3GiB), instead of the one computed from the
    /// package's installed size; at least the base image's size.
    #[arg(long, value_parser = parse_disk_size)]
    pub disk_size: Option<u64>,
    #[command(flatten)]
    pub env: BuildEnvArgs,
    /// Measure only: do not flatten and submit an image.
    #[arg(long)]
    pub no_image: bool,
    /// Output: progress and a summary (table), or JSON events and the manifest (json).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub env: BuildEnvArgs,
    #[command(subcommand)]
    pub command: ImagesCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// List images with their package, version and size (removes leftovers of killed builds).
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Print an image's manifest (JSON).
    Show { name: String },
    /// Remove an image and its manifest.
    Remove { name: String },
}

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Package list: one name a line; `#` starts a comment.
    #[arg(long)]
    pub packages: PathBuf,
    /// CSV file the measurements are appended to (created with a header when missing).
    #[arg(long)]
    pub output: PathBuf,
    /// Directory each build's manifest (JSON) is written to.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    #[arg(long, default_value = "debian12")]
    pub os: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
    #[command(flatten)]
    pub env: BuildEnvArgs,
    /// Also flatten and submit each image (default: measure only).
    #[arg(long)]
    pub keep_images: bool,
    /// Skip packages the CSV already has a successful row for.
    #[arg(long)]
    pub resume: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Progress on stderr: a bar on a terminal, plain lines otherwise; or JSON lines on stdout.
pub enum Reporter {
    Bar(ProgressBar),
    Lines,
    Json,
}

impl Reporter {
    pub fn new(format: Format) -> Reporter {
        match format {
            Format::Json => Reporter::Json,
            Format::Table if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::new(Step::ORDER.len() as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {bar:20} {prefix:9} {wide_msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                Reporter::Bar(bar)
            }
            Format::Table => Reporter::Lines,
        }
    }

    fn finish(&self) {
        if let Reporter::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn event(&self, e: &Event) {
        match self {
            Reporter::Json => {
                if let Ok(s) = serde_json::to_string(&serde_json::json!({"event": e})) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{s}");
                    let _ = out.flush();
                }
            }
            Reporter::Lines => {
                eprintln!(
                    "prae: [{:6.1}s] {:9} {}",
                    e.elapsed_s,
                    e.step.as_str(),
                    e.message
                );
            }
            Reporter::Bar(b) => {
                b.set_position(e.step.index() as u64);
                b.set_prefix(e.step.as_str());
                b.set_message(e.message.clone());
                if matches!(e.step, Step::Queue | Step::Done | Step::Failed)
                    || e.message.starts_with("removed")
                {
                    b.println(format!("{:9} {}", e.step.as_str(), e.message));
                }
            }
        }
    }
}

fn connect(uri: Option<&str>) -> Result<Libvirt> {
    Libvirt::open(Some(uri.unwrap_or(crate::hypervisor::DEFAULT_URI)))
}

fn request(package: &str, os: &str, profile: &ProfileArgs) -> BuildRequest {
    BuildRequest {
        package: package.to_string(),
        os: os.to_string(),
        tier: profile.tier,
        overrides: profile.pinned(),
        disk_bytes: None,
    }
}

/// A disk size in libvirt units, as bytes.
fn parse_disk_size(s: &str) -> std::result::Result<u64, String> {
    units::parse_size_kib(s)
        .map_err(|e| e.to_string())?
        .checked_mul(1024)
        .ok_or_else(|| format!("disk size '{s}' is too large"))
}

/// `prae build`.
pub fn run_build(uri: Option<&str>, a: &BuildArgs) -> Result<()> {
    let req = BuildRequest {
        disk_bytes: a.disk_size,
        ..request(&a.package, &a.os, &a.profile)
    };
    // Bad input fails before any connection or file is opened.
    crate::engine::validate_package_name(&req.package)?;
    crate::engine::normalize_os(&req.os)?;
    req.overrides.validate()?;
    let mut cfg = a.env.config()?;
    cfg.keep_image = !a.no_image;
    let hv = connect(uri)?;
    build::check_base(&cfg)?;
    let mut store = a.env.store(&cfg)?;
    let reporter = Reporter::new(a.format);
    let r = build::request_image_build(&hv, &mut store, &cfg, &req, &reporter);
    reporter.finish();
    let r = r?;
    match a.format {
        Format::Json => {
            let s = serde_json::to_string(&serde_json::json!({"manifest": r.manifest}))
                .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
            println!("{s}");
        }
        Format::Table => print!("{}", summary(&r.manifest)),
    }
    Ok(())
}

/// A build's manifest as a short table.
pub fn summary(m: &Manifest) -> String {
    let mut s = String::new();
    let mut row = |k: &str, v: String| s.push_str(&format!("{k:<16} {v}\n"));
    row(
        "package",
        format!("{} {}", m.package, m.version.as_deref().unwrap_or("?")),
    );
    row("os", m.os.clone());
    if let Some(i) = &m.image {
        row(
            "image",
            format!(
                "{}/{} ({})",
                i.pool,
                i.volume,
                units::format_kib(i.size_bytes / 1024)
            ),
        );
        row("sha256", i.sha256.clone());
    }
    let p = &m.allocation.profile;
    row(
        "profile",
        format!(
            "{} vCPU(s), {}, disk {}",
            p.vcpus.map_or("-".into(), |v| v.to_string()),
            p.memory_kib.map_or("-".into(), units::format_kib),
            units::format_kib(m.build_disk_bytes / 1024)
        ),
    );
    row("why", m.allocation.provenance.reason.clone());
    let u = &m.measured;
    row("peak memory", units::format_kib(u.peak_memory_kib));
    row(
        "cpu",
        format!(
            "{:.1} s (peak {:.2} cores)",
            u.cpu_seconds, u.peak_cpu_cores
        ),
    );
    row("disk written", units::format_kib(u.disk_write_bytes / 1024));
    row("install", format!("{:.1} s", u.install_seconds));
    row("duration", format!("{:.1} s", u.duration_seconds));
    s
}

/// `prae images ...`.
pub fn run_images(uri: Option<&str>, a: &ImagesArgs) -> Result<()> {
    let cfg = a.env.config()?;
    let hv = connect(uri)?;
    match &a.command {
        ImagesCommand::List { format } => {
            let mut store = a.env.store(&cfg).ok();
            for r in build::remove_leftovers(&hv, &cfg, store.as_mut())? {
                eprintln!("prae: removed the leftover {r}");
            }
            let imgs = image::list(&hv, &cfg.images_pool)?;
            match format {
                Format::Json => {
                    let s = serde_json::to_string_pretty(&imgs)
                        .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
                    println!("{s}");
                }
                Format::Table => {
                    println!(
                        "{:<48} {:<24} {:<24} {:>10}",
                        "IMAGE", "PACKAGE", "VERSION", "SIZE"
                    );
                    for i in imgs {
                        let (p, v) = i.manifest.as_ref().map_or(("-".into(), "-".into()), |m| {
                            (m.package.clone(), m.version.clone().unwrap_or_default())
                        });
                        println!(
                            "{:<48} {:<24} {:<24} {:>10}",
                            i.volume,
                            p,
                            v,
                            units::format_kib(i.size / 1024)
                        );
                    }
                }
            }
        }
        ImagesCommand::Show { name } => {
            let i = image::find(&hv, &cfg.images_pool, name)?;
            let m = i
                .manifest
                .ok_or_else(|| Error::NotFound(format!("manifest of image '{name}'")))?;
            let s = serde_json::to_string_pretty(&m)
                .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
            println!("{s}");
        }
        ImagesCommand::Remove { name } => {
            let i = image::remove(&hv, &cfg.images_pool, name)?;
            println!("Image '{}' removed", i.volume);
        }
    }
    Ok(())
}

/// The CSV header of calibration measurements.
pub const CSV_HEADER: &str = "package,version,section,installed_size_kib,closure_installed_size_kib,\
closure_debs,dependencies,download_bytes,peak_memory_kib,cpu_seconds,peak_cpu_cores,\
disk_read_bytes,disk_write_bytes,install_seconds,duration_seconds,samples,vcpus,memory_kib,\
build_disk_bytes,tier,virt_type,profile_reason,status,error";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(m: &Manifest) -> String {
    let o = |v: Option<String>| v.unwrap_or_default();
    let pm = &m.package_meta;
    let u = &m.measured;
    let p = &m.allocation.profile;
    [
        m.package.clone(),
        o(m.version.clone()),
        o(pm.section.clone()),
        o(pm.installed_size_kib.map(|v| v.to_string())),
        o(pm.closure_installed_size_kib.map(|v| v.to_string())),
        o(pm.closure_debs.map(|v| v.to_string())),
        o(pm.dependencies.map(|v| v.to_string())),
        o(pm.download_bytes.map(|v| v.to_string())),
        u.peak_memory_kib.to_string(),
        format!("{:.2}", u.cpu_seconds),
        format!("{:.2}", u.peak_cpu_cores),
        u.disk_read_bytes.to_string(),
        u.disk_write_bytes.to_string(),
        format!("{:.1}", u.install_seconds),
        format!("{:.1}", u.duration_seconds),
        u.samples.to_string(),
        o(p.vcpus.map(|v| v.to_string())),
        o(p.memory_kib.map(|v| v.to_string())),
        m.build_disk_bytes.to_string(),
        o(m.tier.map(|t| t.to_string())),
        m.virt_type.clone(),
        m.allocation.provenance.reason.clone(),
        "ok".into(),
        String::new(),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

/// Reads a package list: one name a line, `#` comments, blank lines ignored; names checked.
pub fn read_package_list(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        crate::engine::validate_package_name(name)
            .map_err(|e| Error::Invalid(format!("{}:{}: {e}", path.display(), i + 1)))?;
        out.push(name.to_string());
    }
    if out.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no package names",
            path.display()
        )));
    }
    Ok(out)
}

/// `prae calibrate`.
pub fn run_calibrate(uri: Option<&str>, a: &CalibrateArgs) -> Result<()> {
    let packages = read_package_list(&a.packages)?;
    crate::engine::normalize_os(&a.os)?;
    let mut cfg = a.env.config()?;
    cfg.keep_image = a.keep_images;
    let hv = connect(uri)?;
    let mut store = a.env.store(&cfg)?;
    let done: Vec<String> = if a.resume {
        std::fs::read_to_string(&a.output)
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter(|l| l.contains(",ok,"))
            .filter_map(|l| l.split(',').next().map(str::to_string))
            .collect()
    } else {
        Vec::new()
    };
    let new_file = !a.output.exists();
    let mut csv = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&a.output)
        .map_err(|e| Error::io(a.output.display().to_string(), e))?;
    if new_file {
        writeln!(csv, "{CSV_HEADER}").map_err(|e| Error::io(a.output.display().to_string(), e))?;
    }
    if let Some(d) = &a.manifests {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d.display().to_string(), e))?;
    }
    let (mut ok, mut failed) = (0, 0);
    for (i, pkg) in packages.iter().enumerate() {
        if done.contains(pkg) {
            continue;
        }
        eprintln!("prae: calibrate [{}/{}] {pkg}", i + 1, packages.len());
        let req = request(pkg, &a.os, &a.profile);
        let reporter: Box<dyn Progress> = match a.format {
            Format::Json => Box::new(Reporter::Json),
            Format::Table => Box::new(Reporter::Lines),
        };
        let line = match build::request_image_build(&hv, &mut store, &cfg, &req, reporter.as_ref())
        {
            Ok(r) => {
                ok += 1;
                if let Some(d) = &a.manifests {
                    let p = d.join(format!("{pkg}.json"));
                    let s = serde_json::to_string_pretty(&r.manifest)
                        .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
                    std::fs::write(&p, s).map_err(|e| Error::io(p.display().to_string(), e))?;
                }
                csv_row(&r.manifest)
            }
            Err(e) => {
                failed += 1;
                eprintln!("prae: calibrate {pkg}: {e}");
                let mut cols = vec![String::new(); CSV_HEADER.split(',').count()];
                cols[0] = pkg.clone();
                let n = cols.len();
                cols[n - 2] = "failed".into();
                cols[n - 1] = csv_field(&e.to_string());
                cols.join(",")
            }
        };
        writeln!(csv, "{line}")
            .and_then(|()| csv.flush())
            .map_err(|e| Error::io(a.output.display().to_string(), e))?;
    }
    eprintln!("prae: calibrate: {ok} measured, {failed} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_reach_libvirt_absolute() {
        let args = BuildEnvArgs {
            base: Some("base".into()),
            repo: Some("./repo".into()),
            state_dir: Some("state".into()),
            db: None,
            repo_cache: Some("cache".into()),
            images_pool: "images".into(),
            builds_pool: "prae-builds".into(),
            agent_timeout: 1,
            install_timeout: 1,
        };
        let cfg = args.config().unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(cfg.state_dir, cwd.join("state"));
        assert_eq!(cfg.base_dir, Some(cwd.join("base")));
        assert_eq!(cfg.repo_dir, Some(cwd.join("repo")));
        assert_eq!(cfg.repo_cache, Some(cwd.join("cache")));
        assert!(cfg.builds_pool_dir().is_absolute());
    }

    #[test]
    fn disk_sizes_are_bytes_and_bad_ones_are_named() {
        assert_eq!(parse_disk_size("3GiB"), Ok(3 << 30));
        assert_eq!(parse_disk_size("512MiB"), Ok(512 << 20));
        let e = parse_disk_size("lots").unwrap_err();
        assert!(e.contains("lots"), "{e}");
    }
}

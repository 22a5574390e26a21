//! `prae`: rewrite, define, revert and predict.

use crate::domain;
use crate::engine::{self, PredictRequest};
use crate::hypervisor::{DEFAULT_URI, Hypervisor, Libvirt, XmlKind};
use crate::model::{Allocation, Bandwidth, DiskBus, IoTune, ResourceProfile, StorageClass, Tier};
use crate::{Error, Result, units};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "prae",
    version,
    about = "Predictive resource allocation for libvirt",
    long_about = "prae predicts what a VM needs and rewrites the allocation in its domain XML \
                  (vCPUs, memory, disk bus and storage class, disk and network limits), \
                  recording the originals and the reason in the domain's <metadata>."
)]
pub struct Cli {
    /// libvirt connection URI (default: the in-process test driver, test:///default).
    #[arg(short = 'c', long = "uri", global = true, env = "PRAE_URI")]
    pub uri: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a domain XML file rewritten with a profile (nothing is defined).
    Rewrite(RewriteArgs),
    /// Rewrite a domain XML file, then define it in libvirt.
    Define(RewriteArgs),
    /// Restore a domain's original allocation from prae's metadata.
    Revert(RevertArgs),
    /// Show the profile prae would give a package build.
    Predict(PredictArgs),
    /// Import, export and list usage history (the embedded store).
    History(super::history::HistoryArgs),
    /// Build an image with a package installed, in a build VM sized by prediction.
    Build(super::build::BuildArgs),
    /// List, show and remove built images.
    Images(super::build::ImagesArgs),
    /// Build each package of a list and record its measured usage.
    Calibrate(super::build::CalibrateArgs),
    /// Fit an automatic ARIMA to a series file and forecast it, with prediction intervals.
    Forecast(super::forecast::ForecastArgs),
    /// Run the daemon in the foreground: API, interception, sampling, metrics.
    Daemon(super::daemon::DaemonArgs),
    /// Show hosts, domains, allocation against use and recommendations.
    Status(super::status::StatusArgs),
    /// libvirt's qemu hook (install as /etc/libvirt/hooks/qemu; see contrib/).
    #[command(hide = true)]
    Hook(super::daemon::HookArgs),
    /// Run a command in a running domain with predicted resources added first.
    Exec(super::exec::ExecArgs),
    /// Hold memory and vCPUs for a user and a time window.
    Reserve(super::exec::ReserveArgs),
    /// List the commands waiting for room and running.
    Queue(super::exec::QueueArgs),
    /// Replay usage traces step by step: each window's allocation from what came before.
    Replay(super::replay::ReplayArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// The allocation flags shared by `rewrite`, `define` and `predict`.
#[derive(Debug, Clone, Default, Args)]
pub struct ProfileArgs {
    /// Performance tier: low, medium or high (default medium, unless only explicit values are given).
    #[arg(long, value_parser = parse_tier)]
    pub tier: Option<Tier>,
    /// vCPUs at boot.
    #[arg(long)]
    pub vcpus: Option<u32>,
    /// Maximum vCPUs (hotplug headroom); defaults to --vcpus.
    #[arg(long)]
    pub max_vcpus: Option<u32>,
    /// Memory at boot, in libvirt units: 512MiB, 3GiB, 2G (a bare number is KiB).
    #[arg(long, value_parser = parse_size)]
    pub memory: Option<u64>,
    /// Current (balloon) memory; defaults to --memory.
    #[arg(long, value_parser = parse_size)]
    pub current_memory: Option<u64>,
    /// Storage class of the disks: ssd or hdd (sets rotation_rate where the bus allows it).
    #[arg(long, value_parser = parse_storage)]
    pub storage: Option<StorageClass>,
    /// Disk bus: virtio, scsi or sata.
    #[arg(long, value_parser = parse_bus)]
    pub disk_bus: Option<DiskBus>,
    /// Disk throughput limit, bytes per second (total of read and write).
    #[arg(long)]
    pub disk_bps: Option<u64>,
    /// Disk operations limit, per second (total of read and write).
    #[arg(long)]
    pub disk_iops: Option<u64>,
    /// Network limit each way, KiB/s average (peak twice that, burst one second's worth).
    #[arg(long)]
    pub net_kbps: Option<u64>,
}

impl ProfileArgs {
    /// The values the operator gave explicitly.
    pub fn pinned(&self) -> ResourceProfile {
        let iotune = if self.disk_bps.is_some() || self.disk_iops.is_some() {
            Some(IoTune {
                total_bytes_sec: self.disk_bps,
                total_iops_sec: self.disk_iops,
                ..IoTune::default()
            })
        } else {
            None
        };
        ResourceProfile {
            vcpus: self.vcpus,
            max_vcpus: self.max_vcpus,
            memory_kib: self.memory,
            current_memory_kib: self.current_memory,
            storage: self.storage,
            disk_bus: self.disk_bus,
            disk_iotune: iotune,
            bandwidth: self.net_kbps.map(Bandwidth::symmetric),
        }
    }

    pub fn request(&self, package: Option<String>, os: Option<String>) -> PredictRequest {
        PredictRequest {
            package,
            os,
            tier: self.tier,
            pinned: self.pinned(),
        }
    }
}

#[derive(Debug, Args)]
pub struct RewriteArgs {
    /// Domain XML file (`-` for standard input).
    pub file: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// Domain name (reverted in libvirt's persistent config).
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub domain: Option<String>,
    /// Revert a domain XML file instead and print the result.
    #[arg(long)]
    pub file: Option<String>,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Debian package to build.
    #[arg(long)]
    pub package: String,
    /// Operating system of the build (debian12).
    #[arg(long, default_value = "debian12")]
    pub os: String,
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// History database (usage of earlier builds) [default: the state directory's prae.db].
    #[arg(long, env = "PRAE_DB")]
    pub db: Option<std::path::PathBuf>,
    /// Tier config (TOML, see engine::tiers); default: the built-in tiers.
    #[arg(long)]
    pub tiers: Option<std::path::PathBuf>,
}

pub(super) fn parse_tier(s: &str) -> std::result::Result<Tier, String> {
    s.parse().map_err(|e: Error| e.to_string())
}
fn parse_storage(s: &str) -> std::result::Result<StorageClass, String> {
    s.parse().map_err(|e: Error| e.to_string())
}
fn parse_bus(s: &str) -> std::result::Result<DiskBus, String> {
    s.parse().map_err(|e: Error| e.to_string())
}
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    units::parse_size_kib(s).map_err(|e| e.to_string())
}

/// Runs `prae` with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    super::init_logging();
    let cli = Cli::parse();
    if let Command::Exec(a) = &cli.command {
        return super::exec::main(cli.uri.as_deref(), a);
    }
    match run(&cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("prae: {e}");
            1
        }
    }
}

/// Runs one parsed command, writing results to stdout and notes to stderr.
pub fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Rewrite(a) => {
            let (_, r) = rewrite_file(a)?;
            for line in super::describe(&r) {
                eprintln!("prae: {line}");
            }
            print!("{}", r.xml);
            Ok(())
        }
        Command::Define(a) => {
            let (alloc, r) = rewrite_file(a)?;
            let hv = connect(cli.uri.as_deref())?;
            let name = hv.define(&r.xml)?;
            let info = hv.domain_info(&name)?;
            println!(
                "Domain '{name}' defined with {} vCPU(s), {} ({})",
                info.vcpus,
                units::format_kib(info.max_memory_kib),
                alloc.provenance.reason
            );
            for line in super::describe(&r) {
                println!("  {line}");
            }
            note_ephemeral(&hv);
            Ok(())
        }
        Command::Revert(a) => revert(cli.uri.as_deref(), a),
        Command::History(a) => super::history::run(a),
        Command::Build(a) => super::build::run_build(cli.uri.as_deref(), a),
        Command::Images(a) => super::build::run_images(cli.uri.as_deref(), a),
        Command::Calibrate(a) => super::build::run_calibrate(cli.uri.as_deref(), a),
        Command::Forecast(a) => super::forecast::run(a),
        Command::Daemon(a) => super::daemon::run_daemon(cli.uri.as_deref(), a),
        Command::Status(a) => super::status::run(cli.uri.as_deref(), a),
        Command::Hook(a) => super::daemon::run_hook(a),
        Command::Exec(a) => super::exec::run(cli.uri.as_deref(), a).map(drop),
        Command::Reserve(a) => super::exec::run_reserve(a),
        Command::Queue(a) => super::exec::run_queue(a),
        Command::Replay(a) => super::replay::run(a),
        Command::Predict(a) => super::predict::run(a),
    }
}

fn rewrite_file(a: &RewriteArgs) -> Result<(Allocation, domain::Rewritten)> {
    // Validate the request before reading anything, so a bad flag never depends on the file.
    let alloc = engine::predict(&a.profile.request(None, None))?;
    let xml = super::read_input(&a.file)?;
    let r = domain::rewrite(&xml, &alloc).map_err(|e| match e {
        Error::Xml(m) => Error::Xml(format!("{}: {m}", a.file)),
        Error::NotADomain(m) => Error::NotADomain(format!("{}: {m}", a.file)),
        other => other,
    })?;
    Ok((alloc, r))
}

fn revert(uri: Option<&str>, a: &RevertArgs) -> Result<()> {
    if let Some(file) = &a.file {
        let xml = super::read_input(file)?;
        let r = domain::revert(&xml)?;
        for line in super::describe(&r) {
            eprintln!("prae: {line}");
        }
        print!("{}", r.xml);
        return Ok(());
    }
    let name = a.domain.as_deref().unwrap_or_default();
    let hv = connect(uri)?;
    let xml = hv.domain_xml(name, XmlKind::Inactive)?;
    let r = domain::revert(&xml)?;
    if r.changes.is_empty() {
        println!("Domain '{name}' has no prae allocation to revert");
        return Ok(());
    }
    hv.define(&r.xml)?;
    println!("Domain '{name}' reverted to its original allocation");
    for line in super::describe(&r) {
        println!("  {line}");
    }
    Ok(())
}

fn connect(uri: Option<&str>) -> Result<Libvirt> {
    Libvirt::open(Some(uri.unwrap_or(DEFAULT_URI)))
}

fn note_ephemeral(hv: &Libvirt) {
    if hv.uri().is_ok_and(|u| u.starts_with("test:///")) {
        eprintln!(
            "prae: note: {DEFAULT_URI} is libvirt's in-process test driver; \
             the definition ends with this command (use --uri qemu:///system for a real host)"
        );
    }
}

/// The profile as a two-column table, with its provenance.
pub fn profile_table(a: &Allocation) -> String {
    let p = &a.profile;
    let mut rows: Vec<(String, String)> = Vec::new();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    rows.push((
        "vcpus".into(),
        match (p.vcpus, p.max_vcpus) {
            (Some(c), Some(m)) if c != m => format!("{c} (max {m})"),
            (Some(c), _) => c.to_string(),
            (None, m) => opt(m.map(|m| m.to_string())),
        },
    ));
    rows.push((
        "memory".into(),
        match (p.current_memory_kib, p.memory_kib) {
            (Some(c), Some(m)) if c != m => {
                format!("{} (boot {})", units::format_kib(c), units::format_kib(m))
            }
            (_, m) => opt(m.map(units::format_kib)),
        },
    ));
    rows.push(("storage".into(), opt(p.storage.map(|s| s.to_string()))));
    rows.push(("disk bus".into(), opt(p.disk_bus.map(|b| b.to_string()))));
    let io = p.disk_iotune.unwrap_or_default();
    rows.push((
        "disk limit".into(),
        match (io.total_bytes_sec, io.total_iops_sec) {
            (None, None) => "-".into(),
            (b, i) => format!(
                "{} bytes/s, {} IOPS",
                opt(b.map(|b| b.to_string())),
                opt(i.map(|i| i.to_string()))
            ),
        },
    ));
    rows.push((
        "network".into(),
        opt(p
            .bandwidth
            .and_then(|b| b.inbound)
            .map(|l| format!("{} KiB/s each way", l.average))),
    ));
    rows.push(("reason".into(), a.provenance.reason.clone()));
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

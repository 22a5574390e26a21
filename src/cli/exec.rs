//! `prae exec` (run a command in a running domain with predicted resources), `prae reserve`
//! (hold resources for a user and a time window) and `prae queue` (what waits and runs).

use crate::exec::{self, Orchestrator, Phase, Report, Request, Usage};
use crate::hypervisor::{DEFAULT_URI, Libvirt};
use crate::model::Tier;
use crate::store::exec::{QueueState, Reservation};
use crate::store::{Store, current_user, default_db_path};
use crate::{Error, Result, units};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The running domain to run the command in (it needs the QEMU guest agent).
    #[arg(long)]
    pub domain: String,
    /// Priority: higher runs first when commands wait for room (waiting raises it by one a
    /// minute, so nothing waits forever).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub priority: i32,
    /// Performance tier: low (P50 of the prediction), medium (P90) or high (P99).
    #[arg(long, default_value = "medium", value_parser = parse_tier)]
    pub tier: Tier,
    /// Use the resources of this reservation (see `prae reserve`).
    #[arg(long = "reserve", value_name = "NAME")]
    pub reservation: Option<String>,
    /// The longest the command may run, seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// The longest the command may wait for room, seconds.
    #[arg(long, default_value_t = 3600)]
    pub queue_timeout: u64,
    /// Run with the domain as it is: no pre-allocation, no growth (for comparisons).
    #[arg(long)]
    pub no_preallocate: bool,
    /// Print the report as JSON on stdout after the command's output.
    #[arg(long)]
    pub json: bool,
    /// History database [default: the state directory's prae.db].
    #[arg(long, env = "PRAE_DB")]
    pub db: Option<PathBuf>,
    /// The command: program and arguments, passed to the guest agent as they are (no shell).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReserveArgs {
    /// History database [default: the state directory's prae.db].
    #[arg(long, env = "PRAE_DB", global = true)]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ReserveCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReserveCommand {
    /// Hold memory and vCPUs of this host for whoever names the reservation.
    Add(ReserveAddArgs),
    /// List reservations.
    List,
    /// Remove a reservation.
    Remove {
        /// The reservation's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct ReserveAddArgs {
    /// The reservation's name (what `prae exec --reserve` names).
    pub name: String,
    /// Memory to hold: 512MiB, 2GiB (a bare number is KiB).
    #[arg(long, value_parser = parse_size, default_value = "0")]
    pub memory: u64,
    /// vCPUs to hold.
    #[arg(long, default_value_t = 0)]
    pub vcpus: u32,
    /// Start of the window, Unix seconds [default: now].
    #[arg(long)]
    pub from: Option<i64>,
    /// Length of the window, seconds [default: until removed].
    #[arg(long = "for", value_name = "SECONDS")]
    pub duration: Option<u64>,
}

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// History database [default: the state directory's prae.db].
    #[arg(long, env = "PRAE_DB")]
    pub db: Option<PathBuf>,
    /// Include finished entries.
    #[arg(long)]
    pub all: bool,
}

fn parse_tier(s: &str) -> std::result::Result<Tier, String> {
    s.parse().map_err(|e: Error| e.to_string())
}
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    units::parse_size_kib(s).map_err(|e| e.to_string())
}

fn open(db: &Option<PathBuf>) -> Result<Store> {
    Store::open(match db {
        Some(p) => p.clone(),
        None => default_db_path()?,
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `prae exec`; returns the process exit code: the command's own (128 + signal when a
/// signal ended it), 1 when prae could not run it (the error on stderr).
pub fn main(uri: Option<&str>, a: &ExecArgs) -> i32 {
    match run(uri, a) {
        Ok(r) => match (r.exit_code, r.signal) {
            (_, Some(s)) => 128 + s.clamp(0, 127) as i32,
            (Some(c), None) => c.clamp(0, 255) as i32,
            (None, None) => 1,
        },
        Err(e) => {
            eprintln!("prae: {e}");
            1
        }
    }
}

/// Validates, runs the command, prints its output and the summary; the report.
pub fn run(uri: Option<&str>, a: &ExecArgs) -> Result<Report> {
    // Parse and validate before connecting to anything.
    exec::analyze(&a.command)?;
    if a.timeout == 0 {
        return Err(Error::Invalid("--timeout must be at least 1 second".into()));
    }
    let mut store = open(&a.db)?;
    let hv = Libvirt::open(Some(uri.unwrap_or(DEFAULT_URI)))?;
    let model = exec::model(&store)?;
    let req = Request {
        domain: a.domain.clone(),
        argv: a.command.clone(),
        priority: a.priority,
        tier: a.tier,
        reservation: a.reservation.clone(),
        user: current_user(),
        stdin: None,
        timeout: Duration::from_secs(a.timeout),
        queue_timeout: Duration::from_secs(a.queue_timeout),
        preallocate: !a.no_preallocate,
    };
    let report = Orchestrator {
        hv: &hv,
        store: &mut store,
        poll: Duration::from_secs(1),
        sample_every: Duration::from_secs(1),
    }
    .run(&req, &model)?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(report.stdout.as_bytes());
    let _ = std::io::stderr().write_all(report.stderr.as_bytes());
    if a.json {
        let s = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
        let _ = writeln!(out, "{s}");
    }
    for line in summary(&report, a.tier) {
        eprintln!("prae: {line}");
    }
    Ok(report)
}

fn usage_line(u: &Usage) -> String {
    format!(
        "cpu {:.2} cores, memory {}, disk read {} / write {}, network {}, {:.1} s",
        u.cpu_cores,
        units::format_kib(u.memory_kib.round() as u64),
        bytes(u.disk_read_bytes),
        bytes(u.disk_write_bytes),
        bytes(u.net_bytes),
        u.duration_s
    )
}

fn bytes(b: f64) -> String {
    units::format_kib((b / 1024.0).round() as u64)
}

/// The summary printed after the command: predicted vs used, changes made.
pub fn summary(r: &Report, tier: Tier) -> Vec<String> {
    let mut lines = vec![
        format!(
            "predicted: {} ({})",
            usage_line(&r.prediction.mean),
            r.prediction.reason
        ),
        format!("allocated for tier {tier}: {}", usage_line(&r.need)),
    ];
    if !r.prediction.dependencies.is_empty() {
        let deps: Vec<String> = r
            .prediction
            .dependencies
            .iter()
            .map(|d| format!("{d:?}"))
            .collect();
        lines.push(format!("dependencies: {}", deps.join(", ")));
    }
    match &r.plan {
        Some(p) => {
            lines.push(format!(
                "plan: {} vCPU(s), {} (baseline {} vCPU(s), {})",
                p.vcpus,
                units::format_kib(p.memory_kib),
                r.baseline.vcpus,
                units::format_kib(r.baseline.memory_kib)
            ));
            lines.extend(p.notes.iter().map(|n| format!("note: {n}")));
        }
        None => lines.push("plan: none (--no-preallocate)".into()),
    }
    for c in &r.changes {
        let phase = match c.phase {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        };
        let err = c
            .error
            .as_ref()
            .map_or(String::new(), |e| format!(" FAILED: {e}"));
        lines.push(format!("{phase}: {} {} -> {}{err}", c.what, c.from, c.to));
    }
    if r.measured {
        lines.push(format!("used: {}", usage_line(&r.used)));
    } else {
        lines.push("used: not measured (the hypervisor reports no domain statistics)".into());
    }
    lines.push(match (r.exit_code, r.signal) {
        (_, Some(s)) => format!("`{}` was killed by signal {s}", r.argv.join(" ")),
        (Some(c), None) => format!("`{}` exited with {c}", r.argv.join(" ")),
        (None, None) => format!("`{}` ended without an exit status", r.argv.join(" ")),
    });
    if r.waited_s >= 1.0 {
        lines.push(format!("waited {:.0} s in the queue", r.waited_s));
    }
    lines
}

/// Runs `prae reserve ...`.
pub fn run_reserve(a: &ReserveArgs) -> Result<()> {
    match &a.command {
        ReserveCommand::Add(r) => {
            if r.memory == 0 && r.vcpus == 0 {
                return Err(Error::Invalid(format!(
                    "reservation '{}' holds nothing; give --memory and/or --vcpus",
                    r.name
                )));
            }
            if r.duration == Some(0) {
                return Err(Error::Invalid("--for must be at least 1 second".into()));
            }
            let starts_at = r.from.unwrap_or_else(now);
            let res = Reservation {
                name: r.name.clone(),
                user: current_user(),
                vcpus: r.vcpus,
                memory_kib: r.memory,
                starts_at,
                ends_at: r
                    .duration
                    .map(|d| starts_at.saturating_add(i64::try_from(d).unwrap_or(i64::MAX))),
            };
            open(&a.db)?.reservation_add(&res)?;
            println!(
                "Reservation '{}' holds {} vCPU(s) and {}",
                res.name,
                res.vcpus,
                units::format_kib(res.memory_kib)
            );
            Ok(())
        }
        ReserveCommand::List => {
            let t = now();
            println!(
                "{:<20} {:<10} {:>5} {:>10}  window",
                "name", "user", "vcpus", "memory"
            );
            for r in open(&a.db)?.reservations()? {
                println!(
                    "{:<20} {:<10} {:>5} {:>10}  {}..{}{}",
                    r.name,
                    r.user,
                    r.vcpus,
                    units::format_kib(r.memory_kib),
                    r.starts_at,
                    r.ends_at.map_or("open".into(), |e| e.to_string()),
                    if r.active_at(t) { " (active)" } else { "" }
                );
            }
            Ok(())
        }
        ReserveCommand::Remove { name } => {
            open(&a.db)?.reservation_remove(name, &current_user())?;
            println!("Reservation '{name}' removed");
            Ok(())
        }
    }
}

/// Runs `prae queue`: waiting and running commands (with `--all`, finished ones too) in the
/// order they will run.
pub fn run_queue(a: &QueueArgs) -> Result<()> {
    let store = open(&a.db)?;
    let states: &[QueueState] = if a.all {
        &[]
    } else {
        &[QueueState::Waiting, QueueState::Running]
    };
    let entries = store.queue_list(states)?;
    let order = exec::plan::order(&entries, now());
    println!(
        "{:>5} {:<9} {:>8} {:<20} command",
        "id", "state", "priority", "domain"
    );
    let rank = |id: i64| order.iter().position(|&x| x == id).unwrap_or(usize::MAX);
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by_key(|q| (q.state != QueueState::Running, rank(q.id), q.id));
    for q in sorted {
        println!(
            "{:>5} {:<9} {:>8} {:<20} {}",
            q.id,
            q.state.as_str(),
            q.priority,
            q.domain,
            exec::analysis::join_key(&q.argv)
        );
    }
    Ok(())
}

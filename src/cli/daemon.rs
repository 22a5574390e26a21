//! `prae daemon` (run the daemon in the foreground) and `prae hook` (libvirt's `qemu` hook).

use crate::daemon::{self, Config, Daemon, Policy};
use crate::hypervisor::{Hypervisor, Libvirt};
use crate::store::{self, Store};
use crate::{Error, Result};
use clap::Args;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The configuration file read when none is given: `PRAE_CONFIG`, else this path if it exists.
pub const DEFAULT_CONFIG: &str = "/etc/prae/prae.toml";

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// TOML configuration file (default: $PRAE_CONFIG, else /etc/prae/prae.toml if present).
    #[arg(long, env = "PRAE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Unix socket to listen on (overrides the file).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Interception policy: off, advise or enforce (overrides the file).
    #[arg(long, value_parser = parse_policy)]
    pub policy: Option<Policy>,
    /// History database (overrides the file).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Seconds between samples, 0 for none (overrides the file).
    #[arg(long)]
    pub sample_interval: Option<u64>,
}

#[derive(Debug, Args)]
pub struct HookArgs {
    /// TOML configuration file, for the policy (default as for `prae daemon`).
    #[arg(long, env = "PRAE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The domain's name (libvirt's first hook argument).
    pub domain: String,
    /// The operation: prepare, start, started, stopped, release, ...
    pub operation: String,
    /// libvirt's sub-operation and extra argument (ignored).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

fn parse_policy(s: &str) -> std::result::Result<Policy, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Reads the configuration: the file given, else the default file if present, else defaults.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    let (path, must) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(t) => Config::from_toml(&t, &path.display().to_string()),
        Err(e) if !must && e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(Error::io(path.display().to_string(), e)),
    }
}

fn read_token(path: &Path) -> Result<String> {
    let t = std::fs::read_to_string(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    Ok(t.trim().to_string())
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run_daemon(uri: Option<&str>, a: &DaemonArgs) -> Result<()> {
    let mut c = load_config(a.config.as_deref())?;
    if let Some(u) = uri {
        c.uri = u.to_string();
    }
    if let Some(s) = &a.socket {
        c.socket = Some(s.clone());
    }
    if let Some(p) = a.policy {
        c.policy = p;
    }
    if let Some(d) = &a.db {
        c.db = Some(d.clone());
    }
    if let Some(i) = a.sample_interval {
        c.sample_interval_s = i;
    }
    c.validate()?;
    let db = match &c.db {
        Some(d) => d.clone(),
        None => store::default_db_path()?,
    };
    c.db = Some(db.clone());
    let store = Store::open(&db)?;
    let token = c.token_file.as_deref().map(read_token).transpose()?;
    let socket = c.socket_path()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the tokio runtime: {e}")))?;
    rt.block_on(async move {
        let unix = daemon::bind_unix(&socket, c.socket_group.as_deref())?;
        let tcp = match c.tcp {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::io(addr.to_string(), e))?,
            ),
            None => None,
        };
        let uri = c.uri.clone();
        let connector: daemon::Connector =
            Box::new(move || Libvirt::open(Some(&uri)).map(|l| Arc::new(l) as Arc<dyn Hypervisor>));
        eprintln!(
            "prae: daemon listening on {} (policy {}, libvirt {}{})",
            socket.display(),
            c.policy,
            c.uri,
            c.tcp.map_or(String::new(), |a| format!(", tcp {a}"))
        );
        let d = Daemon::new(c, connector, store, token)?;
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut t), Ok(mut i)) => {
                    tokio::select! { _ = t.recv() => {}, _ = i.recv() => {} }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            log::info!("shutting down");
        };
        let r = daemon::run(d, unix, tcp, shutdown).await;
        let _ = std::fs::remove_file(&socket);
        r
    })
}

/// libvirt's `qemu` hook: on `prepare`, refuses (exit 1, reason on stderr) to start a domain
/// prae has not handled when the policy is enforce. Never calls libvirt (libvirt forbids it in
/// hooks); reads only the configuration and the domain XML on standard input.
pub fn run_hook(a: &HookArgs) -> Result<()> {
    if a.operation != "prepare" {
        return Ok(());
    }
    let c = load_config(a.config.as_deref())?;
    if c.policy != Policy::Enforce {
        return Ok(());
    }
    let mut xml = String::new();
    std::io::stdin()
        .read_to_string(&mut xml)
        .map_err(|e| Error::io("standard input", e))?;
    daemon::marks::hook_verdict(&xml, c.policy)
        .map_err(|why| Error::Invalid(format!("domain '{}': {why}", a.domain)))
}

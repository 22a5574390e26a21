//! The embedded history store: usage samples, image builds, overrides and the audit log, in one
//! SQLite database. This is the only module that touches the database (and trace files).
//!
//! # Durability
//! - WAL journal (`journal_mode=WAL`): readers never block the writer, and a process killed
//!   mid-write leaves the last committed transaction intact; SQLite replays or discards the WAL
//!   on the next open. The database file itself is never left half-written.
//! - `synchronous=NORMAL` for samples: in WAL mode a crash of prae loses nothing committed, and a
//!   power loss can lose at most the last transactions (never the file), which is the right price
//!   for a high-rate sampler. Overrides, builds and audit rows are rare and are what an operator
//!   relies on, so their transactions switch to `synchronous=FULL` (fsync at commit).
//! - `busy_timeout` of 5 s: the daemon, the CLI and tests may open the same file at once.
//! - Samples are appended one transaction per batch ([`Store::append_samples`]); an import
//!   commits every [`DEFAULT_BATCH`] samples, so a kill loses at most the batch being written.
//!
//! # Samples
//! A sample is what a subject used during `interval_s` seconds ending at `timestamp`
//! ([`UsageSample`]); counters are per interval, not cumulative. A subject (what ran: a package
//! on an OS, a domain, a command, a trace file) has at most one sample per timestamp, so
//! re-importing a file changes nothing. Fields a source does not measure are NULL in the table
//! (read back as 0 / `None`) and absent from [`Store::series`]. CPU is carried as CPU time used
//! (`cpu_time_ns`, all vCPUs) where the source knows it and as `cpu_percent` of the subject's
//! own capacity where it reports only a utilisation (NAB, PlanetLab); Bitbrains has both. The
//! engine replays [`Field::CpuCores`] where present and [`Field::CpuPercent`] otherwise, and
//! [`Field::Memory`] in KiB. Trace mappings are in [`trace`]; live samples from libvirt's
//! cumulative counters are made by [`live::sample_between`].
//!
//! # Files
//! [`Store::import_trace`] reads Bitbrains, NAB and PlanetLab files; [`Store::export_csv`]
//! writes samples as CSV ([`export_header`]; unmeasured fields are empty cells) and
//! [`Store::import_csv`] reads that back, so export -> import -> export is byte-identical.

pub mod exec;
pub mod files;
mod import;
pub mod live;
pub mod replay;
mod schema;
pub mod trace;

pub use import::{DEFAULT_BATCH, ImportReport, export_header, parse_export_line, parse_export_row};
pub use schema::{APPLICATION_ID, MIGRATIONS, current_version, migrate};
pub use trace::{Continuity, Fields, Gap, TraceFormat};

use crate::model::{Allocation, ResourceProfile, Tier, UsageSample};
use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// How long a connection waits for another writer before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The database prae uses when neither `--db` nor `PRAE_DB` is given: `prae.db` in
/// [`default_state_dir`], i.e. `/var/lib/prae/prae.db` for root and
/// `$XDG_STATE_HOME/prae/prae.db` (default `~/.local/state/prae/prae.db`) for anyone else.
pub fn default_db_path() -> Result<PathBuf> {
    Ok(default_state_dir()?.join("prae.db"))
}

/// prae's state directory (database, and whatever else prae keeps between runs):
/// `/var/lib/prae` for root, `$XDG_STATE_HOME/prae` (default `~/.local/state/prae`) otherwise.
pub fn default_state_dir() -> Result<PathBuf> {
    default_state_dir_for(
        effective_uid(),
        std::env::var_os("XDG_STATE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// [`default_state_dir`] for given values of the user id, `XDG_STATE_HOME` and `HOME`.
pub fn default_state_dir_for(
    uid: Option<u32>,
    xdg_state_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<PathBuf> {
    if uid == Some(0) {
        return Ok(PathBuf::from("/var/lib/prae"));
    }
    // The XDG spec: a relative value is invalid and must be ignored.
    let state = match (xdg_state_home.filter(|p| p.is_absolute()), home) {
        (Some(s), _) => s,
        (None, Some(h)) if h.is_absolute() => h.join(".local/state"),
        _ => {
            return Err(Error::Invalid(
                "no state directory: HOME and XDG_STATE_HOME are unset; give --db or PRAE_DB"
                    .into(),
            ));
        }
    };
    Ok(state.join("prae"))
}

fn effective_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Who is acting, for audit rows: `$USER`, `$LOGNAME`, else `uid N`.
pub fn current_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(|| effective_uid().map(|u| format!("uid {u}")))
        .unwrap_or_else(|| "unknown".into())
}

/// What a subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A package build on an OS; key from [`package_key`].
    Package,
    /// A libvirt domain; key = its name.
    Domain,
    /// A command run in a guest; key = the command text.
    Command,
    /// An imported trace; key = `format/file name` (PlanetLab: `planetlab/day/file`).
    Trace,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 4] = [
        SubjectKind::Package,
        SubjectKind::Domain,
        SubjectKind::Command,
        SubjectKind::Trace,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Package => "package",
            SubjectKind::Domain => "domain",
            SubjectKind::Command => "command",
            SubjectKind::Trace => "trace",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubjectKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        SubjectKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown subject kind '{s}' (expected package, domain, command or trace)"
                ))
            })
    }
}

/// The subject key of a package built on an OS: `package/os`.
pub fn package_key(package: &str, os: &str) -> String {
    format!("{package}/{os}")
}

/// A subject's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubjectId(pub i64);

/// A subject with its sample count and time span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub id: SubjectId,
    pub kind: SubjectKind,
    pub key: String,
    pub samples: u64,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// A series the forecaster can ask for, with its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// CPU time used in the interval, ns.
    CpuTime,
    /// Cores busy on average during the interval (CPU time / interval).
    CpuCores,
    /// CPU utilisation, % of the subject's capacity.
    CpuPercent,
    /// Memory used, KiB.
    Memory,
    /// Bytes read from disk in the interval.
    DiskRead,
    /// Bytes written to disk in the interval.
    DiskWrite,
    /// Bytes received in the interval.
    NetRx,
    /// Bytes sent in the interval.
    NetTx,
}

impl Field {
    pub const ALL: [Field; 8] = [
        Field::CpuTime,
        Field::CpuCores,
        Field::CpuPercent,
        Field::Memory,
        Field::DiskRead,
        Field::DiskWrite,
        Field::NetRx,
        Field::NetTx,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Field::CpuTime => "cpu_time_ns",
            Field::CpuCores => "cpu_cores",
            Field::CpuPercent => "cpu_percent",
            Field::Memory => "memory_used_kib",
            Field::DiskRead => "disk_read_bytes",
            Field::DiskWrite => "disk_write_bytes",
            Field::NetRx => "net_rx_bytes",
            Field::NetTx => "net_tx_bytes",
        }
    }
    /// The SQL expression for the field's value (NULL where not measured).
    fn sql(self) -> &'static str {
        match self {
            Field::CpuTime => "cpu_time_ns",
            Field::CpuCores => "CASE WHEN interval_s > 0 THEN cpu_time_ns / (interval_s * 1e9) END",
            Field::CpuPercent => "cpu_percent",
            Field::Memory => "memory_used_kib",
            Field::DiskRead => "disk_read_bytes",
            Field::DiskWrite => "disk_write_bytes",
            Field::NetRx => "net_rx_bytes",
            Field::NetTx => "net_tx_bytes",
        }
    }
}

impl FromStr for Field {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Field::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Field::ALL.iter().map(|f| f.as_str()).collect();
                Error::Invalid(format!(
                    "unknown field '{s}' (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// A series with its timestamps: `(unix seconds, value)`, oldest first.
pub type Points = Vec<(i64, f64)>;

/// Where a build stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl BuildState {
    pub const ALL: [BuildState; 5] = [
        BuildState::Queued,
        BuildState::Running,
        BuildState::Succeeded,
        BuildState::Failed,
        BuildState::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Queued => "queued",
            BuildState::Running => "running",
            BuildState::Succeeded => "succeeded",
            BuildState::Failed => "failed",
            BuildState::Cancelled => "cancelled",
        }
    }
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            BuildState::Succeeded | BuildState::Failed | BuildState::Cancelled
        )
    }
}

impl FromStr for BuildState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BuildState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| Error::Store(format!("unknown build state '{s}'")))
    }
}

/// A build's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BuildId(pub i64);

/// What a build measured: peaks and totals over the whole build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasuredUsage {
    pub peak_memory_kib: u64,
    /// CPU time over the build, ns.
    pub cpu_time_ns: u64,
    /// Cores busy at the busiest sample.
    pub peak_cpu_cores: f64,
    pub disk_read_bytes: u64,
    pub disk_write_bytes: u64,
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub duration_s: f64,
}

/// A build about to start.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBuild {
    pub package: String,
    pub os: String,
    pub version: Option<String>,
    pub tier: Option<Tier>,
    /// The profile the build VM gets, and why.
    pub allocation: Allocation,
    pub state: BuildState,
    pub log_path: Option<String>,
}

/// Changes to a build; `None` leaves a column as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildUpdate {
    pub state: Option<BuildState>,
    pub version: Option<String>,
    pub measured: Option<MeasuredUsage>,
    pub log_path: Option<String>,
    pub error: Option<String>,
}

/// One build as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildRecord {
    pub id: BuildId,
    pub package: String,
    pub os: String,
    pub version: Option<String>,
    pub tier: Option<Tier>,
    pub allocation: Allocation,
    pub state: BuildState,
    pub started_at: i64,
    /// Set when the state becomes succeeded, failed or cancelled.
    pub finished_at: Option<i64>,
    pub measured: Option<MeasuredUsage>,
    pub log_path: Option<String>,
    pub error: Option<String>,
    /// The subject (`package/os`) the build's samples are recorded under.
    pub subject: SubjectId,
}

/// What an override applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum OverrideScope {
    /// Builds of a package; `os` and `tier` narrow it when given.
    Package {
        package: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        os: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tier: Option<Tier>,
    },
    /// One domain, by name.
    Domain { name: String },
}

impl OverrideScope {
    /// Canonical text, unique per scope: `package:P/OS/TIER` (`*` for any), `domain:NAME`.
    pub fn key(&self) -> String {
        match self {
            OverrideScope::Package { package, os, tier } => format!(
                "package:{package}/{}/{}",
                os.as_deref().unwrap_or("*"),
                tier.map_or("*", |t| t.as_str())
            ),
            OverrideScope::Domain { name } => format!("domain:{name}"),
        }
    }

    fn validate(&self) -> Result<()> {
        let (what, v) = match self {
            OverrideScope::Package { package, os, .. } => {
                if os.as_deref().is_some_and(|o| o.trim().is_empty()) {
                    return Err(Error::Invalid("override OS is empty".into()));
                }
                ("package", package)
            }
            OverrideScope::Domain { name } => ("domain", name),
        };
        if v.trim().is_empty() || v.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "override {what} name {v:?} is empty or has control characters"
            )));
        }
        Ok(())
    }
}

impl fmt::Display for OverrideScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

/// What an override pins: exact values, or bounds the prediction is clamped into.
// Few overrides exist at a time; boxing the bounds would only make them harder to build.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum OverrideSpec {
    Exact {
        profile: ResourceProfile,
    },
    Bounds {
        min: ResourceProfile,
        max: ResourceProfile,
    },
}

impl OverrideSpec {
    /// Checks the profiles and that each bound's minimum is not above its maximum.
    pub fn validate(&self) -> Result<()> {
        match self {
            OverrideSpec::Exact { profile } => {
                if profile.is_empty() {
                    return Err(Error::Invalid("override sets no value".into()));
                }
                profile.validate()
            }
            OverrideSpec::Bounds { min, max } => {
                if min.is_empty() && max.is_empty() {
                    return Err(Error::Invalid("override bounds set no value".into()));
                }
                // Bounds are checked field by field only; a lone minimum or maximum is fine.
                for (name, lo, hi) in [
                    ("vcpus", min.vcpus.map(u64::from), max.vcpus.map(u64::from)),
                    ("memory", min.memory_kib, max.memory_kib),
                ] {
                    if let (Some(lo), Some(hi)) = (lo, hi)
                        && lo > hi
                    {
                        return Err(Error::Invalid(format!(
                            "override minimum {name} {lo} is above its maximum {hi}"
                        )));
                    }
                }
                for (name, p) in [("minimum", min), ("maximum", max)] {
                    // Validate only the fields that make sense alone (current <= max checks
                    // do not apply across bounds).
                    let alone = ResourceProfile {
                        vcpus: p.vcpus,
                        memory_kib: p.memory_kib,
                        disk_iotune: p.disk_iotune,
                        bandwidth: p.bandwidth,
                        ..ResourceProfile::default()
                    };
                    alone
                        .validate()
                        .map_err(|e| Error::Invalid(format!("override {name}: {e}")))?;
                }
                Ok(())
            }
        }
    }
}

/// An override's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OverrideId(pub i64);

/// One override as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Override {
    pub id: OverrideId,
    pub scope: OverrideScope,
    pub spec: OverrideSpec,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub active: bool,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub who: String,
    /// Dotted verb: `override.set`, `override.remove`, `build.record`, `history.import`, ...
    pub action: String,
    pub details: serde_json::Value,
}

/// The history store: one SQLite connection.
pub struct Store {
    conn: Connection,
    /// How the database is named in errors (its path, or `:memory:`).
    name: String,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("db", &self.name).finish()
    }
}

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

pub(crate) fn open_error(what: &str, e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            Error::Store(format!("{what}: not an SQLite database"))
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::Store(format!(
            "{what}: the database is corrupt; restore it from a backup or move it aside"
        )),
        _ => Error::Store(format!("{what}: {e}")),
    }
}

impl Store {
    /// Opens (creating if needed, with its parent directory) the database at `path`, in WAL
    /// mode, migrated to the current schema. Refuses files that are not SQLite, SQLite
    /// databases of another application, and databases written by a newer prae.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref();
        let name = path.display().to_string();
        match std::fs::File::open(path) {
            Ok(mut f) => {
                use std::io::Read;
                let mut head = [0u8; 16];
                let mut n = 0;
                while n < head.len() {
                    match f.read(&mut head[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(Error::io(&name, e)),
                    }
                }
                if n > 0 && (n < head.len() || &head != SQLITE_MAGIC) {
                    return Err(Error::Store(format!("{name}: not an SQLite database")));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::io(dir.display().to_string(), e))?;
                }
            }
            Err(e) => return Err(Error::io(&name, e)),
        }
        let conn = Connection::open(path).map_err(|e| open_error(&name, e))?;
        Store::setup(conn, name, true)
    }

    /// A private in-memory database (for tests and dry runs).
    pub fn in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory().map_err(|e| open_error(":memory:", e))?;
        Store::setup(conn, ":memory:".into(), false)
    }

    fn setup(mut conn: Connection, name: String, file: bool) -> Result<Store> {
        let err = |e| open_error(&name, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        if file {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                .map_err(err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::Store(format!(
                    "{name}: cannot use a write-ahead log here (journal mode stays '{mode}')"
                )));
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        let app: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(err)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(err)?;
        if app != APPLICATION_ID && (app != 0 || version != 0 || tables != 0) {
            return Err(Error::Store(format!(
                "{name}: an SQLite database of another application (application_id {app:#x}), \
                 not prae's"
            )));
        }
        schema::migrate(&mut conn, MIGRATIONS, &name)?;
        Ok(Store { conn, name })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<u32> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// How the database is named in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw connection, for this module's tests and diagnostics (`PRAGMA integrity_check`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Store(format!("{}: {e}", self.name))
    }

    /// A write transaction; `durable` forces an fsync at commit (`synchronous=FULL`).
    fn write_tx(&mut self, durable: bool) -> Result<Transaction<'_>> {
        let name = self.name.clone();
        let level = if durable { "FULL" } else { "NORMAL" };
        self.conn
            .pragma_update(None, "synchronous", level)
            .map_err(|e| Error::Store(format!("{name}: {e}")))?;
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| Error::Store(format!("{name}: {e}")))
    }

    // ---- subjects and samples ------------------------------------------------------------

    /// The id of the subject `(kind, key)`, created if new.
    pub fn subject(&mut self, kind: SubjectKind, key: &str) -> Result<SubjectId> {
        validate_key(key)?;
        let name = self.name.clone();
        let tx = self.write_tx(false)?;
        let id = subject_in(&tx, kind, key).map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))?;
        Ok(id)
    }

    /// The id of an existing subject.
    pub fn find_subject(&self, kind: SubjectKind, key: &str) -> Result<Option<SubjectId>> {
        self.conn
            .query_row(
                "SELECT id FROM subjects WHERE kind = ?1 AND key = ?2",
                params![kind.as_str(), key],
                |r| r.get(0).map(SubjectId),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Subjects whose key is `key`, of any kind.
    pub fn subjects_with_key(&self, key: &str) -> Result<Vec<Subject>> {
        Ok(self
            .subjects()?
            .into_iter()
            .filter(|s| s.key == key)
            .collect())
    }

    /// Every subject with its sample count and span, by kind then key.
    pub fn subjects(&self) -> Result<Vec<Subject>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT s.id, s.kind, s.key, count(x.timestamp), min(x.timestamp), \
                 max(x.timestamp) FROM subjects s LEFT JOIN samples x ON x.subject_id = s.id \
                 GROUP BY s.id ORDER BY s.kind, s.key",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, key, n, first, last) = row.map_err(|e| self.err(e))?;
            out.push(Subject {
                id: SubjectId(id),
                kind: kind.parse().map_err(|_| {
                    Error::Store(format!("{}: unknown subject kind '{kind}'", self.name))
                })?,
                key,
                samples: n as u64,
                first,
                last,
            });
        }
        Ok(out)
    }

    /// Appends samples measured live (every field is a measurement; a `cpu_percent` of `None`
    /// is stored as NULL), in one transaction. A sample whose timestamp the subject already has
    /// is skipped. Returns how many were new.
    pub fn append_samples(&mut self, subject: SubjectId, samples: &[UsageSample]) -> Result<usize> {
        self.append_fields(subject, samples, Fields::ALL)
    }

    /// Appends samples of which only `fields` are measured (the rest stored as NULL), in one
    /// transaction; skips timestamps the subject already has. Returns how many were new.
    pub fn append_fields(
        &mut self,
        subject: SubjectId,
        samples: &[UsageSample],
        fields: Fields,
    ) -> Result<usize> {
        let name = self.name.clone();
        let tx = self.write_tx(false)?;
        let n = insert_samples(&tx, subject, samples, fields).map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))?;
        Ok(n)
    }

    /// The subject's samples with `range.contains(timestamp)`, oldest first. Fields the source
    /// does not measure read as 0 (`cpu_percent`: `None`).
    pub fn samples(
        &self,
        subject: SubjectId,
        range: impl RangeBounds<i64>,
    ) -> Result<Vec<UsageSample>> {
        let (lo, hi) = bounds(range);
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT timestamp, interval_s, cpu_time_ns, cpu_percent, memory_used_kib, \
                 disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes FROM samples \
                 WHERE subject_id = ?1 AND timestamp >= ?2 AND timestamp <= ?3 \
                 ORDER BY timestamp",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![subject.0, lo, hi], |r| {
                let u = |i: usize| -> rusqlite::Result<u64> {
                    Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
                };
                Ok(UsageSample {
                    timestamp: r.get(0)?,
                    interval_s: r.get(1)?,
                    cpu_time_ns: u(2)?,
                    cpu_percent: r.get(3)?,
                    memory_used_kib: u(4)?,
                    disk_read_bytes: u(5)?,
                    disk_write_bytes: u(6)?,
                    net_rx_bytes: u(7)?,
                    net_tx_bytes: u(8)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The subject's values of `field`, oldest first, only where measured.
    pub fn series(&self, subject: SubjectId, field: Field) -> Result<Vec<f64>> {
        Ok(self
            .series_points(subject, field)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    /// [`Store::series`] with each value's timestamp.
    pub fn series_points(&self, subject: SubjectId, field: Field) -> Result<Points> {
        let sql = format!(
            "SELECT timestamp, v FROM (SELECT timestamp, CAST({} AS REAL) AS v FROM samples \
             WHERE subject_id = ?1) WHERE v IS NOT NULL ORDER BY timestamp",
            field.sql()
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![subject.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The subject's CPU demand for replay: cores busy ([`Field::CpuCores`]) where CPU time
    /// is measured, else the utilisation ([`Field::CpuPercent`]); `None` without CPU samples.
    pub fn cpu_series(&self, subject: SubjectId) -> Result<Option<(Field, Points)>> {
        for f in [Field::CpuCores, Field::CpuPercent] {
            let v = self.series_points(subject, f)?;
            if !v.is_empty() {
                return Ok(Some((f, v)));
            }
        }
        Ok(None)
    }

    /// The number of samples of a subject.
    pub fn sample_count(&self, subject: SubjectId) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT count(*) FROM samples WHERE subject_id = ?1",
                params![subject.0],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    // ---- builds ----------------------------------------------------------------------------

    /// Records a build (state as given, started now) under its `package/os` subject; writes an
    /// audit row `build.record` in the same transaction.
    pub fn record_build(&mut self, b: &NewBuild, who: &str) -> Result<BuildId> {
        validate_key(&b.package)?;
        validate_key(&b.os)?;
        let allocation = to_json(&b.allocation)?;
        let now = now();
        let name = self.name.clone();
        let e = |e| self_err(&name, e);
        let tx = self.write_tx(true)?;
        let subject =
            subject_in(&tx, SubjectKind::Package, &package_key(&b.package, &b.os)).map_err(e)?;
        let finished = b.state.is_finished().then_some(now);
        tx.execute(
            "INSERT INTO builds (package, os, version, tier, allocation, state, started_at, \
             finished_at, log_path, subject_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                b.package,
                b.os,
                b.version,
                b.tier.map(|t| t.as_str()),
                allocation,
                b.state.as_str(),
                now,
                finished,
                b.log_path,
                subject.0
            ],
        )
        .map_err(e)?;
        let id = BuildId(tx.last_insert_rowid());
        audit_in(
            &tx,
            now,
            who,
            "build.record",
            &serde_json::json!({"build": id.0, "package": b.package, "os": b.os,
                                "state": b.state.as_str()}),
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(id)
    }

    /// Applies `u` to a build; a state change writes an audit row `build.state` in the same
    /// transaction, and a finished state sets `finished_at`.
    pub fn update_build(&mut self, id: BuildId, u: &BuildUpdate, who: &str) -> Result<()> {
        let measured = u.measured.as_ref().map(to_json).transpose()?;
        let now = now();
        let name = self.name.clone();
        let e = |e| self_err(&name, e);
        let tx = self.write_tx(true)?;
        let old: Option<String> = tx
            .query_row(
                "SELECT state FROM builds WHERE id = ?1",
                params![id.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        let Some(old) = old else {
            return Err(Error::NotFound(format!("build {}", id.0)));
        };
        tx.execute(
            "UPDATE builds SET state = coalesce(?2, state), version = coalesce(?3, version), \
             measured = coalesce(?4, measured), log_path = coalesce(?5, log_path), \
             error = coalesce(?6, error), finished_at = CASE WHEN ?7 THEN ?8 ELSE finished_at END \
             WHERE id = ?1",
            params![
                id.0,
                u.state.map(|s| s.as_str()),
                u.version,
                measured,
                u.log_path,
                u.error,
                u.state.is_some_and(|s| s.is_finished()),
                now
            ],
        )
        .map_err(e)?;
        if let Some(s) = u.state.filter(|s| s.as_str() != old) {
            let mut d = serde_json::json!({"build": id.0, "from": old, "to": s.as_str()});
            if let Some(err) = &u.error {
                d["error"] = err.clone().into();
            }
            audit_in(&tx, now, who, "build.state", &d).map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// One build.
    pub fn build(&self, id: BuildId) -> Result<BuildRecord> {
        self.builds_where("WHERE id = ?1", params![id.0])?
            .pop()
            .ok_or_else(|| Error::NotFound(format!("build {}", id.0)))
    }

    /// Every build, oldest first.
    pub fn builds(&self) -> Result<Vec<BuildRecord>> {
        self.builds_where("", [])
    }

    fn builds_where(&self, cond: &str, p: impl rusqlite::Params) -> Result<Vec<BuildRecord>> {
        let sql = format!(
            "SELECT id, package, os, version, tier, allocation, state, started_at, finished_at, \
             measured, log_path, error, subject_id FROM builds {cond} ORDER BY id"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(p, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<i64>>(12)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                package,
                os,
                version,
                tier,
                alloc,
                state,
                started,
                finished,
                measured,
                log,
                error,
                subj,
            ) = row.map_err(|e| self.err(e))?;
            out.push(BuildRecord {
                id: BuildId(id),
                package,
                os,
                version,
                tier: tier.map(|t| t.parse()).transpose()?,
                allocation: from_json(&self.name, "build allocation", &alloc)?,
                state: state.parse()?,
                started_at: started,
                finished_at: finished,
                measured: measured
                    .map(|m| from_json(&self.name, "build measurement", &m))
                    .transpose()?,
                log_path: log,
                error,
                subject: SubjectId(subj.unwrap_or(0)),
            });
        }
        Ok(out)
    }

    // ---- overrides and audit --------------------------------------------------------------

    /// Pins `spec` for `scope`, replacing the scope's active override if any; writes an audit
    /// row `override.set` in the same transaction.
    pub fn set_override(
        &mut self,
        scope: &OverrideScope,
        spec: &OverrideSpec,
        reason: &str,
        who: &str,
    ) -> Result<OverrideId> {
        scope.validate()?;
        spec.validate()?;
        let (scope_json, spec_json) = (to_json(scope)?, to_json(spec)?);
        let key = scope.key();
        let now = now();
        let name = self.name.clone();
        let e = |e| self_err(&name, e);
        let tx = self.write_tx(true)?;
        let replaced: Option<i64> = tx
            .query_row(
                "SELECT id FROM overrides WHERE scope_key = ?1 AND active = 1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        if let Some(old) = replaced {
            tx.execute(
                "UPDATE overrides SET active = 0 WHERE id = ?1",
                params![old],
            )
            .map_err(e)?;
        }
        tx.execute(
            "INSERT INTO overrides (scope, scope_key, spec, reason, created_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![scope_json, key, spec_json, reason, who, now],
        )
        .map_err(e)?;
        let id = tx.last_insert_rowid();
        audit_in(
            &tx,
            now,
            who,
            "override.set",
            &serde_json::json!({"override": id, "scope": scope, "spec": spec,
                                "reason": reason, "replaced": replaced}),
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(OverrideId(id))
    }

    /// Overrides, newest first; only active ones unless `include_inactive`.
    pub fn list_overrides(&self, include_inactive: bool) -> Result<Vec<Override>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, scope, spec, reason, created_by, created_at, active FROM overrides \
                 WHERE active = 1 OR ?1 ORDER BY id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map(params![include_inactive], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, bool>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, scope, spec, reason, by, at, active) = row.map_err(|e| self.err(e))?;
            out.push(Override {
                id: OverrideId(id),
                scope: from_json(&self.name, "override scope", &scope)?,
                spec: from_json(&self.name, "override", &spec)?,
                reason,
                created_by: by,
                created_at: at,
                active,
            });
        }
        Ok(out)
    }

    /// The active override of exactly `scope`, if any.
    pub fn active_override(&self, scope: &OverrideScope) -> Result<Option<Override>> {
        let key = scope.key();
        Ok(self
            .list_overrides(false)?
            .into_iter()
            .find(|o| o.scope.key() == key))
    }

    /// Deactivates an active override (it stays in the table, inactive); writes an audit row
    /// `override.remove` in the same transaction.
    pub fn remove_override(&mut self, id: OverrideId, who: &str) -> Result<()> {
        let now = now();
        let name = self.name.clone();
        let e = |e| self_err(&name, e);
        let tx = self.write_tx(true)?;
        let scope: Option<String> = tx
            .query_row(
                "SELECT scope_key FROM overrides WHERE id = ?1 AND active = 1",
                params![id.0],
                |r| r.get(0),
            )
            .optional()
            .map_err(e)?;
        let Some(scope) = scope else {
            return Err(Error::NotFound(format!("active override {}", id.0)));
        };
        tx.execute(
            "UPDATE overrides SET active = 0 WHERE id = ?1",
            params![id.0],
        )
        .map_err(e)?;
        audit_in(
            &tx,
            now,
            who,
            "override.remove",
            &serde_json::json!({"override": id.0, "scope": scope}),
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(())
    }

    /// Writes one audit row on its own.
    pub fn audit(&mut self, who: &str, action: &str, details: &serde_json::Value) -> Result<()> {
        let name = self.name.clone();
        let tx = self.write_tx(true)?;
        audit_in(&tx, now(), who, action, details).map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))
    }

    /// The audit log, oldest first.
    pub fn audit_log(&self) -> Result<Vec<AuditEntry>> {
        let mut st = self
            .conn
            .prepare("SELECT id, at, who, action, details FROM audit ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at, who, action, details) = row.map_err(|e| self.err(e))?;
            out.push(AuditEntry {
                id,
                at,
                who,
                action,
                details: from_json(&self.name, "audit details", &details)?,
            });
        }
        Ok(out)
    }

    /// `PRAGMA integrity_check`: `Ok` when the database is sound, else one line with the
    /// first problem and how many more there are.
    pub fn check_integrity(&self) -> Result<()> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err(e))?;
        let rows: Vec<String> = st
            .query_map([], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(|e| self.err(e))?;
        let problems: Vec<&str> = rows
            .iter()
            .flat_map(|r| r.lines())
            .map(str::trim)
            .filter(|l| !l.is_empty() && *l != "ok" && !l.starts_with("***"))
            .collect();
        match problems.as_slice() {
            [] => Ok(()),
            [one] => Err(Error::Store(format!(
                "{}: integrity check failed: {one}",
                self.name
            ))),
            [first, rest @ ..] => Err(Error::Store(format!(
                "{}: integrity check failed: {first} (and {} more problems)",
                self.name,
                rest.len()
            ))),
        }
    }
}

fn self_err(name: &str, e: rusqlite::Error) -> Error {
    Error::Store(format!("{name}: {e}"))
}

fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 4096 || key.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "subject key {key:?} must be 1-4096 characters without control characters"
        )));
    }
    Ok(())
}

fn subject_in(tx: &Transaction<'_>, kind: SubjectKind, key: &str) -> rusqlite::Result<SubjectId> {
    tx.execute(
        "INSERT OR IGNORE INTO subjects (kind, key, created_at) VALUES (?1, ?2, ?3)",
        params![kind.as_str(), key, now()],
    )?;
    tx.query_row(
        "SELECT id FROM subjects WHERE kind = ?1 AND key = ?2",
        params![kind.as_str(), key],
        |r| r.get(0).map(SubjectId),
    )
}

fn insert_samples(
    tx: &Transaction<'_>,
    subject: SubjectId,
    samples: &[UsageSample],
    fields: Fields,
) -> rusqlite::Result<usize> {
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO samples (subject_id, timestamp, interval_s, cpu_time_ns, \
         cpu_percent, memory_used_kib, disk_read_bytes, disk_write_bytes, net_rx_bytes, \
         net_tx_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    let int = |f: Fields, v: u64| -> rusqlite::Result<Option<i64>> {
        if !fields.contains(f) {
            return Ok(None);
        }
        i64::try_from(v)
            .map(Some)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    };
    let mut n = 0;
    for s in samples {
        let pct = if fields.contains(Fields::CPU_PERCENT) {
            s.cpu_percent.filter(|p| p.is_finite())
        } else {
            None
        };
        n += st.execute(params![
            subject.0,
            s.timestamp,
            s.interval_s,
            int(Fields::CPU_TIME, s.cpu_time_ns)?,
            pct,
            int(Fields::MEMORY, s.memory_used_kib)?,
            int(Fields::DISK_READ, s.disk_read_bytes)?,
            int(Fields::DISK_WRITE, s.disk_write_bytes)?,
            int(Fields::NET_RX, s.net_rx_bytes)?,
            int(Fields::NET_TX, s.net_tx_bytes)?,
        ])?;
    }
    Ok(n)
}

fn audit_in(
    tx: &Transaction<'_>,
    at: i64,
    who: &str,
    action: &str,
    details: &serde_json::Value,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit (at, who, action, details) VALUES (?1, ?2, ?3, ?4)",
        params![at, who, action, details.to_string()],
    )?;
    Ok(())
}

fn bounds(range: impl RangeBounds<i64>) -> (i64, i64) {
    let lo = match range.start_bound() {
        Bound::Included(&v) => v,
        Bound::Excluded(&v) => v.saturating_add(1),
        Bound::Unbounded => i64::MIN,
    };
    let hi = match range.end_bound() {
        Bound::Included(&v) => v,
        Bound::Excluded(&v) => v.saturating_sub(1),
        Bound::Unbounded => i64::MAX,
    };
    (lo, hi)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(db: &str, what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Store(format!("{db}: unreadable {what}: {e}")))
}

#[cfg(test)]
mod tests;

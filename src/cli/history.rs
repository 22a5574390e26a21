//! `prae history`: import real traces into the history store, export it as CSV, list subjects.

use crate::store::trace::format_utc;
use crate::store::{DEFAULT_BATCH, ImportReport, Store, SubjectKind, TraceFormat, default_db_path};
use crate::{Error, Result};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// History database [default: /var/lib/prae/prae.db for root, else
    /// $XDG_STATE_HOME/prae/prae.db, i.e. ~/.local/state/prae/prae.db].
    #[arg(long, env = "PRAE_DB", global = true)]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub command: HistoryCommand,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Import trace files (re-importing a file adds nothing).
    Import(ImportArgs),
    /// Write samples as CSV: one header line, one row per sample.
    Export(ExportArgs),
    /// List subjects with their sample counts and time spans.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Format: bitbrains (gzip'd or plain), nab, planetlab, or prae (a `prae history export`).
    #[arg(long, value_parser = parse_format)]
    pub format: ImportFormat,
    /// Trace files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Samples per transaction (a kill loses at most one batch).
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch_size: usize,
    /// One JSON report per file instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only this subject's samples (its key, as `prae history list` shows it).
    #[arg(long)]
    pub subject: Option<String>,
    /// The subject's kind, when the key names more than one: package, domain, command, trace.
    #[arg(long, requires = "subject", value_parser = parse_kind)]
    pub kind: Option<SubjectKind>,
    /// Write to FILE (replaced atomically) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// What `prae history import` reads: a trace format, or prae's own CSV export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Trace(TraceFormat),
    Prae,
}

fn parse_format(s: &str) -> std::result::Result<ImportFormat, String> {
    if s.eq_ignore_ascii_case("prae") {
        return Ok(ImportFormat::Prae);
    }
    s.parse::<TraceFormat>()
        .map(ImportFormat::Trace)
        .map_err(|_| format!("unknown format '{s}' (expected bitbrains, nab, planetlab or prae)"))
}
fn parse_kind(s: &str) -> std::result::Result<SubjectKind, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// The database path: `--db`/`PRAE_DB`, else [`default_db_path`].
pub fn db_path(a: &HistoryArgs) -> Result<PathBuf> {
    match &a.db {
        Some(p) => Ok(p.clone()),
        None => default_db_path(),
    }
}

/// Runs `prae history ...`.
pub fn run(a: &HistoryArgs) -> Result<()> {
    // Validate everything before touching the database.
    if let HistoryCommand::Import(i) = &a.command
        && i.batch_size == 0
    {
        return Err(Error::Invalid("--batch-size must be at least 1".into()));
    }
    let mut store = Store::open(db_path(a)?)?;
    let r = match &a.command {
        HistoryCommand::Import(i) => import(&mut store, i),
        HistoryCommand::Export(e) => export(&store, e),
        HistoryCommand::List(l) => list(&store, l),
    };
    match r {
        // A reader that stops early (`| head`) is not an error.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn import(store: &mut Store, a: &ImportArgs) -> Result<()> {
    let mut failed = Vec::new();
    let mut out = std::io::stdout().lock();
    let io = |e| Error::io("standard output", e);
    for path in &a.paths {
        let result = match a.format {
            ImportFormat::Trace(f) => store
                .import_trace_with(f, path, a.batch_size)
                .map(|r| vec![r]),
            ImportFormat::Prae => store.import_csv(path, a.batch_size),
        };
        match result {
            Ok(reports) => {
                for r in reports {
                    if a.json {
                        let s = serde_json::to_string(&r)
                            .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
                        writeln!(out, "{s}").map_err(io)?;
                    } else {
                        out.write_all(describe_import(path, &r).as_bytes())
                            .map_err(io)?;
                    }
                }
                out.flush().map_err(io)?;
            }
            Err(e) => {
                eprintln!("prae: {e}");
                failed.push(path.display().to_string());
            }
        }
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(Error::Invalid(format!(
            "{n} of {} files not imported: {}",
            a.paths.len(),
            failed.join(", ")
        ))),
    }
}

/// The text report of one import: a line for the counts, one per gap (at most 10) and notes.
pub fn describe_import(path: &Path, r: &ImportReport) -> String {
    let c = &r.continuity;
    let mut s = format!(
        "{}: {} samples imported, {} already present, {} gap{}",
        path.display(),
        r.inserted,
        r.skipped.saturating_sub(c.duplicates),
        c.gaps.len(),
        if c.gaps.len() == 1 { "" } else { "s" },
    );
    if let (Some(f), Some(l)) = (c.first, c.last) {
        s += &format!(
            ", {} to {} UTC ({})",
            format_utc(f),
            format_utc(l),
            span(l - f)
        );
    }
    s += &format!(
        " -> {} {} [{}]\n",
        r.kind.as_str(),
        r.subject,
        r.fields.join(", ")
    );
    for g in c.gaps.iter().take(10) {
        s += &format!(
            "  gap: {} s after {} UTC\n",
            g.seconds(),
            format_utc(g.after)
        );
    }
    if c.gaps.len() > 10 {
        s += &format!("  ... {} more gaps\n", c.gaps.len() - 10);
    }
    if c.duplicates > 0 {
        s += &format!(
            "  {} rows repeat an earlier timestamp (the first is kept)\n",
            c.duplicates
        );
    }
    if c.out_of_order > 0 {
        s += &format!("  {} rows step back in time\n", c.out_of_order);
    }
    if let Some(n) = &r.note {
        s += &format!("  note: {n}\n");
    }
    s
}

fn span(secs: i64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

fn export(store: &Store, a: &ExportArgs) -> Result<()> {
    let subject = match &a.subject {
        None => None,
        Some(key) => {
            let mut found = store.subjects_with_key(key)?;
            if let Some(k) = a.kind {
                found.retain(|s| s.kind == k);
            }
            match found.len() {
                0 => return Err(Error::NotFound(format!("subject '{key}'"))),
                1 => Some(found[0].id),
                _ => {
                    let kinds: Vec<&str> = found.iter().map(|s| s.kind.as_str()).collect();
                    return Err(Error::Invalid(format!(
                        "subject '{key}' exists as {}; choose one with --kind",
                        kinds.join(" and ")
                    )));
                }
            }
        }
    };
    match &a.output {
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            store.export_csv(subject, &mut out)?;
        }
        Some(path) => {
            let shown = path.display().to_string();
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(&shown, e))?;
            let mut out = std::io::BufWriter::new(tmp);
            let n = store.export_csv(subject, &mut out)?;
            let tmp = out
                .into_inner()
                .map_err(|e| Error::io(&shown, e.into_error()))?;
            tmp.as_file().sync_all().map_err(|e| Error::io(&shown, e))?;
            tmp.persist(path).map_err(|e| Error::io(&shown, e.error))?;
            eprintln!("prae: {n} samples written to {shown}");
        }
    }
    Ok(())
}

fn list(store: &Store, a: &ListArgs) -> Result<()> {
    let subjects = store.subjects()?;
    let mut out = std::io::stdout().lock();
    let io = |e| Error::io("standard output", e);
    if a.json {
        let s = serde_json::to_string_pretty(&subjects)
            .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
        writeln!(out, "{s}").map_err(io)?;
        return Ok(());
    }
    if subjects.is_empty() {
        writeln!(out, "no history in {}", store.name()).map_err(io)?;
        return Ok(());
    }
    let w = subjects
        .iter()
        .map(|s| s.key.len())
        .max()
        .unwrap_or(3)
        .max(3);
    writeln!(
        out,
        "{:<8}  {:<w$}  {:>8}  {:<19}  {:<19}",
        "KIND", "KEY", "SAMPLES", "FIRST (UTC)", "LAST (UTC)"
    )
    .map_err(io)?;
    for s in &subjects {
        let t = |v: Option<i64>| v.map_or_else(|| "-".into(), format_utc);
        writeln!(
            out,
            "{:<8}  {:<w$}  {:>8}  {:<19}  {:<19}",
            s.kind.as_str(),
            s.key,
            s.samples,
            t(s.first),
            t(s.last)
        )
        .map_err(io)?;
    }
    Ok(())
}

//! `prae predict`: the profile prae would give a package build, and the evidence behind it.
//!
//! History comes from the store (`--db`/`PRAE_DB`, else the default database) when it holds the
//! package on that OS; a database that does not exist means no history (it is not created).
//! The tiers come from `--tiers FILE` or the built-in defaults.

use super::prae::{Format, PredictArgs, profile_table};
use crate::engine::explain::{Explained, History, predict_explained};
use crate::engine::normalize_os;
use crate::store::{Field, Store, SubjectKind, default_db_path, package_key};
use crate::{Error, Result};
use std::path::Path;

/// Runs `prae predict`.
pub fn run(a: &PredictArgs) -> Result<()> {
    let req = a
        .profile
        .request(Some(a.package.clone()), Some(a.os.clone()));
    // Validate flags before touching any file.
    crate::engine::predict(&req)?;
    let cfg = super::replay::read_tiers(a.tiers.as_deref())?;
    let db = match &a.db {
        Some(p) => p.clone(),
        None => default_db_path()?,
    };
    let history = read_history(&db, &a.package, normalize_os(&a.os)?)?;
    let e = predict_explained(&req, history.as_ref(), None, &cfg)?;
    match a.format {
        Format::Json => {
            let s = serde_json::to_string_pretty(&e)
                .map_err(|e| Error::Invalid(format!("cannot encode JSON: {e}")))?;
            println!("{s}");
        }
        Format::Table => print!("{}", explained_table(&e)),
    }
    Ok(())
}

/// The package's history in the store at `db`; `None` when there is no database or no subject.
fn read_history(db: &Path, package: &str, os: &str) -> Result<Option<History>> {
    if !db.exists() {
        return Ok(None);
    }
    let store = Store::open(db)?;
    let Some(id) = store.find_subject(SubjectKind::Package, &package_key(package, os))? else {
        return Ok(None);
    };
    Ok(Some(History {
        cpu_cores: store.series(id, Field::CpuCores)?,
        memory_kib: store.series(id, Field::Memory)?,
    }))
}

/// The profile table, then one line of evidence per predicted field.
pub fn explained_table(e: &Explained) -> String {
    let mut out = profile_table(&e.allocation);
    out.push_str("evidence:\n");
    for f in &e.evidence {
        let why = match (&f.history, f.pinned) {
            (_, true) => "pinned by operator".to_string(),
            (Some(d), _) => d.evidence.describe(),
            (None, _) => "tier table".to_string(),
        };
        out.push_str(&format!("  {} {}: {why}", f.field, f.value));
        if let Some(c) = &f.load_cut {
            out.push_str(&format!("; load cut: {c}"));
        }
        out.push('\n');
        if let Some(d) = &f.history {
            for w in &d.evidence.warnings {
                out.push_str(&format!("  warning: {w}\n"));
            }
        }
    }
    out.push_str("  host load: not checked (prae predict does not query a host)\n");
    out
}

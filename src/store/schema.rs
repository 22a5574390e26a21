//! The database schema as numbered, forward-only migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each migration runs in its own
//! `BEGIN IMMEDIATE` transaction together with the `user_version` bump, so a crash leaves the
//! database at the previous version, never between two. A database whose version is higher than
//! [`MIGRATIONS`]`.len()` was written by a newer prae and is refused.
//!
//! Never edit a migration that has shipped; append a new one.

use crate::{Error, Result};
use rusqlite::Connection;

/// `PRAGMA application_id` of a prae database ("prae" in ASCII).
pub const APPLICATION_ID: i32 = 0x7072_6165;

/// Migration `i` (from 0) takes the database from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: subjects, samples, builds, overrides, audit.
    r#"
    CREATE TABLE subjects (
        id          INTEGER PRIMARY KEY,
        kind        TEXT    NOT NULL CHECK (kind IN ('package', 'domain', 'command', 'trace')),
        key         TEXT    NOT NULL CHECK (length(key) > 0),
        created_at  INTEGER NOT NULL,
        UNIQUE (kind, key)
    );
    -- One row per sample; NULL = the source does not measure that field.
    CREATE TABLE samples (
        subject_id        INTEGER NOT NULL REFERENCES subjects (id) ON DELETE CASCADE,
        timestamp         INTEGER NOT NULL,
        interval_s        INTEGER NOT NULL CHECK (interval_s >= 0),
        cpu_time_ns       INTEGER CHECK (cpu_time_ns >= 0),
        cpu_percent       REAL    CHECK (cpu_percent >= 0),
        memory_used_kib   INTEGER CHECK (memory_used_kib >= 0),
        disk_read_bytes   INTEGER CHECK (disk_read_bytes >= 0),
        disk_write_bytes  INTEGER CHECK (disk_write_bytes >= 0),
        net_rx_bytes      INTEGER CHECK (net_rx_bytes >= 0),
        net_tx_bytes      INTEGER CHECK (net_tx_bytes >= 0),
        PRIMARY KEY (subject_id, timestamp)
    ) WITHOUT ROWID;
    CREATE TABLE builds (
        id           INTEGER PRIMARY KEY,
        package      TEXT    NOT NULL,
        os           TEXT    NOT NULL,
        version      TEXT,
        tier         TEXT,
        allocation   TEXT    NOT NULL,  -- JSON model::Allocation: the profile used and why
        state        TEXT    NOT NULL
                     CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
        started_at   INTEGER NOT NULL,
        finished_at  INTEGER,
        measured     TEXT,              -- JSON store::MeasuredUsage
        log_path     TEXT,
        error        TEXT,
        subject_id   INTEGER REFERENCES subjects (id)
    );
    CREATE TABLE overrides (
        id          INTEGER PRIMARY KEY,
        scope       TEXT    NOT NULL,   -- JSON store::OverrideScope
        scope_key   TEXT    NOT NULL,   -- canonical text of the scope, for uniqueness
        spec        TEXT    NOT NULL,   -- JSON store::OverrideSpec
        reason      TEXT    NOT NULL DEFAULT '',
        created_by  TEXT    NOT NULL,
        created_at  INTEGER NOT NULL,
        active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
    );
    CREATE UNIQUE INDEX overrides_one_active ON overrides (scope_key) WHERE active = 1;
    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        who      TEXT    NOT NULL,
        action   TEXT    NOT NULL,
        details  TEXT    NOT NULL       -- JSON
    );
    "#,
    // 2: the command queue and reservations (see `store::exec`).
    super::exec::MIGRATION,
];

/// The schema version this build of prae writes.
pub fn current_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Brings `conn` up to `migrations.len()`; `what` names the database in errors.
pub fn migrate(conn: &mut Connection, migrations: &[&str], what: &str) -> Result<u32> {
    let err = |e: rusqlite::Error| Error::Store(format!("{what}: migration failed: {e}"));
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| super::open_error(what, e))?;
    let target = migrations.len() as u32;
    if version > target {
        return Err(Error::Store(format!(
            "{what}: schema version {version} is newer than this prae supports ({target}); \
             use a newer prae or another --db"
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
        let n = i as u32 + 1;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        // Another process may have migrated while we waited for the write lock.
        let now: u32 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if now >= n {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| Error::Store(format!("{what}: migration {n} failed: {e}")))?;
        tx.pragma_update(None, "user_version", n).map_err(err)?;
        if n == 1 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
    }
    Ok(target)
}

//! Command orchestration's persistent state: the command queue and reservations (schema
//! migration 2). Every change is one durable transaction, so a queue or a reservation survives a
//! crash or restart of whichever process (CLI or daemon) wrote it.

use super::{Store, now, self_err};
use crate::{Error, Result};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// Migration 2: the command queue and reservations.
pub const MIGRATION: &str = r#"
    CREATE TABLE exec_queue (
        id           INTEGER PRIMARY KEY,
        domain       TEXT    NOT NULL,
        command      TEXT    NOT NULL,   -- JSON array: the argument vector
        priority     INTEGER NOT NULL,
        user         TEXT    NOT NULL,
        reservation  TEXT,
        enqueued_at  INTEGER NOT NULL,
        state        TEXT    NOT NULL
                     CHECK (state IN ('waiting', 'running', 'done', 'failed', 'cancelled')),
        owner        TEXT,               -- build::owner token of the waiting process
        -- what the command holds while it runs, beyond the domain's baseline
        extra_vcpus  INTEGER NOT NULL DEFAULT 0,
        extra_memory_kib INTEGER NOT NULL DEFAULT 0,
        started_at   INTEGER,
        finished_at  INTEGER,
        result       TEXT                -- JSON summary, or the error
    );
    CREATE INDEX exec_queue_state ON exec_queue (state);
    CREATE TABLE reservations (
        id          INTEGER PRIMARY KEY,
        name        TEXT    NOT NULL UNIQUE CHECK (length(name) > 0),
        user        TEXT    NOT NULL,
        vcpus       INTEGER NOT NULL CHECK (vcpus >= 0),
        memory_kib  INTEGER NOT NULL CHECK (memory_kib >= 0),
        starts_at   INTEGER NOT NULL,
        ends_at     INTEGER,
        created_at  INTEGER NOT NULL
    );
"#;

/// Where a queued command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueState {
    Waiting,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Waiting => "waiting",
            QueueState::Running => "running",
            QueueState::Done => "done",
            QueueState::Failed => "failed",
            QueueState::Cancelled => "cancelled",
        }
    }
    fn parse(s: &str) -> Result<QueueState> {
        Ok(match s {
            "waiting" => QueueState::Waiting,
            "running" => QueueState::Running,
            "done" => QueueState::Done,
            "failed" => QueueState::Failed,
            "cancelled" => QueueState::Cancelled,
            _ => return Err(Error::Store(format!("unknown queue state '{s}'"))),
        })
    }
}

/// A command to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewQueued {
    pub domain: String,
    pub argv: Vec<String>,
    pub priority: i32,
    pub user: String,
    pub reservation: Option<String>,
    pub owner: Option<String>,
}

/// A queued (or finished) command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub id: i64,
    pub domain: String,
    pub argv: Vec<String>,
    pub priority: i32,
    pub user: String,
    pub reservation: Option<String>,
    pub enqueued_at: i64,
    pub state: QueueState,
    pub owner: Option<String>,
    pub extra_vcpus: u32,
    pub extra_memory_kib: u64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result: Option<String>,
}

/// Resources held for a user (and whoever names the reservation) in a time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub name: String,
    pub user: String,
    pub vcpus: u32,
    pub memory_kib: u64,
    /// Unix seconds; the window is `[starts_at, ends_at)`, open-ended when `ends_at` is `None`.
    pub starts_at: i64,
    pub ends_at: Option<i64>,
}

impl Reservation {
    /// Whether the reservation holds its resources at `t`.
    pub fn active_at(&self, t: i64) -> bool {
        self.starts_at <= t && self.ends_at.is_none_or(|e| t < e)
    }
}

const QUEUE_COLUMNS: &str = "id, domain, command, priority, user, reservation, enqueued_at, \
     state, owner, extra_vcpus, extra_memory_kib, started_at, finished_at, result";

fn queued_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Queued, String, String)> {
    Ok((
        Queued {
            id: r.get(0)?,
            domain: r.get(1)?,
            argv: Vec::new(),
            priority: r.get(3)?,
            user: r.get(4)?,
            reservation: r.get(5)?,
            enqueued_at: r.get(6)?,
            state: QueueState::Waiting,
            owner: r.get(8)?,
            extra_vcpus: r.get(9)?,
            extra_memory_kib: r.get::<_, i64>(10)?.max(0) as u64,
            started_at: r.get(11)?,
            finished_at: r.get(12)?,
            result: r.get(13)?,
        },
        r.get(2)?,
        r.get(7)?,
    ))
}

impl Store {
    /// Adds a command to the queue (state `waiting`, enqueued now); returns its id.
    pub fn queue_push(&mut self, q: &NewQueued) -> Result<i64> {
        if q.argv.is_empty() {
            return Err(Error::Invalid("cannot queue an empty command".into()));
        }
        let command = super::to_json(&q.argv)?;
        let name = self.name.clone();
        let tx = self.write_tx(true)?;
        tx.execute(
            "INSERT INTO exec_queue (domain, command, priority, user, reservation, enqueued_at, \
             state, owner) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'waiting', ?7)",
            params![
                q.domain,
                command,
                q.priority,
                q.user,
                q.reservation,
                now(),
                q.owner.clone()
            ],
        )
        .map_err(|e| self_err(&name, e))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(|e| self_err(&name, e))?;
        Ok(id)
    }

    /// Queue entries in `states` (all when empty), oldest first.
    pub fn queue_list(&self, states: &[QueueState]) -> Result<Vec<Queued>> {
        let sql = format!("SELECT {QUEUE_COLUMNS} FROM exec_queue ORDER BY id");
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = st.query_map([], queued_row).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (mut q, command, state) = row.map_err(|e| self.err(e))?;
            q.state = QueueState::parse(&state)?;
            if !states.is_empty() && !states.contains(&q.state) {
                continue;
            }
            q.argv = super::from_json(&self.name, "queued command", &command)?;
            out.push(q);
        }
        Ok(out)
    }

    /// One queue entry.
    pub fn queue_get(&self, id: i64) -> Result<Queued> {
        self.queue_list(&[])?
            .into_iter()
            .find(|q| q.id == id)
            .ok_or_else(|| Error::NotFound(format!("queue entry {id}")))
    }

    /// Moves an entry to `running`, holding `extra_vcpus` and `extra_memory_kib`, but only if
    /// it is still `waiting` (returns false otherwise: another process took or cancelled it).
    pub fn queue_start(
        &mut self,
        id: i64,
        extra_vcpus: u32,
        extra_memory_kib: u64,
    ) -> Result<bool> {
        let name = self.name.clone();
        let tx = self.write_tx(true)?;
        let n = tx
            .execute(
                "UPDATE exec_queue SET state = 'running', started_at = ?2, extra_vcpus = ?3, \
                 extra_memory_kib = ?4 WHERE id = ?1 AND state = 'waiting'",
                params![id, now(), extra_vcpus, extra_memory_kib as i64],
            )
            .map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))?;
        Ok(n == 1)
    }

    /// Updates what a running entry holds (the feedback loop grew it).
    pub fn queue_hold(&mut self, id: i64, extra_vcpus: u32, extra_memory_kib: u64) -> Result<()> {
        let name = self.name.clone();
        let tx = self.write_tx(false)?;
        tx.execute(
            "UPDATE exec_queue SET extra_vcpus = ?2, extra_memory_kib = ?3 WHERE id = ?1",
            params![id, extra_vcpus, extra_memory_kib as i64],
        )
        .map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))
    }

    /// Ends an entry (`done`, `failed` or `cancelled`) with its result text; it then holds
    /// nothing.
    pub fn queue_finish(&mut self, id: i64, state: QueueState, result: &str) -> Result<()> {
        if matches!(state, QueueState::Waiting | QueueState::Running) {
            return Err(Error::Invalid(format!(
                "queue entry {id} cannot finish as {}",
                state.as_str()
            )));
        }
        let name = self.name.clone();
        let tx = self.write_tx(true)?;
        let n = tx
            .execute(
                "UPDATE exec_queue SET state = ?2, finished_at = ?3, result = ?4, \
                 extra_vcpus = 0, extra_memory_kib = 0 WHERE id = ?1",
                params![id, state.as_str(), now(), result],
            )
            .map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))?;
        if n == 0 {
            return Err(Error::NotFound(format!("queue entry {id}")));
        }
        Ok(())
    }

    /// Adds a reservation; a name already in use is an error naming it.
    pub fn reservation_add(&mut self, r: &Reservation) -> Result<()> {
        if r.name.is_empty() || r.name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "reservation name {:?} must be non-empty without control characters",
                r.name
            )));
        }
        if let Some(end) = r.ends_at
            && end <= r.starts_at
        {
            return Err(Error::Invalid(format!(
                "reservation {} ends ({end}) before it starts ({})",
                r.name, r.starts_at
            )));
        }
        let name = self.name.clone();
        let tx = self.write_tx(true)?;
        let taken: Option<i64> = tx
            .query_row(
                "SELECT id FROM reservations WHERE name = ?1",
                params![r.name],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self_err(&name, e))?;
        if taken.is_some() {
            return Err(Error::Invalid(format!(
                "reservation '{}' already exists",
                r.name
            )));
        }
        tx.execute(
            "INSERT INTO reservations (name, user, vcpus, memory_kib, starts_at, ends_at, \
             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                r.name,
                r.user,
                r.vcpus,
                r.memory_kib as i64,
                r.starts_at,
                r.ends_at,
                now()
            ],
        )
        .map_err(|e| self_err(&name, e))?;
        super::audit_in(
            &tx,
            now(),
            &r.user,
            "reservation.add",
            &serde_json::to_value(r).unwrap_or_default(),
        )
        .map_err(|e| self_err(&name, e))?;
        tx.commit().map_err(|e| self_err(&name, e))
    }

    /// Every reservation, by name.
    pub fn reservations(&self) -> Result<Vec<Reservation>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT name, user, vcpus, memory_kib, starts_at, ends_at FROM reservations \
                 ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(Reservation {
                    name: r.get(0)?,
                    user: r.get(1)?,
                    vcpus: r.get(2)?,
                    memory_kib: r.get::<_, i64>(3)?.max(0) as u64,
                    starts_at: r.get(4)?,
                    ends_at: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// The reservation `name`, or [`Error::NotFound`] naming it.
    pub fn reservation(&self, name: &str) -> Result<Reservation> {
        self.reservations()?
            .into_iter()
            .find(|r| r.name == name)
            .ok_or_else(|| Error::NotFound(format!("reservation '{name}'")))
    }

    /// Removes the reservation `name`, or [`Error::NotFound`] naming it.
    pub fn reservation_remove(&mut self, name: &str, who: &str) -> Result<()> {
        let db = self.name.clone();
        let tx = self.write_tx(true)?;
        let n = tx
            .execute("DELETE FROM reservations WHERE name = ?1", params![name])
            .map_err(|e| self_err(&db, e))?;
        if n == 0 {
            return Err(Error::NotFound(format!("reservation '{name}'")));
        }
        super::audit_in(
            &tx,
            now(),
            who,
            "reservation.remove",
            &serde_json::json!({"name": name}),
        )
        .map_err(|e| self_err(&db, e))?;
        tx.commit().map_err(|e| self_err(&db, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(domain: &str, prio: i32) -> NewQueued {
        NewQueued {
            domain: domain.into(),
            argv: vec!["true".into()],
            priority: prio,
            user: "u".into(),
            reservation: None,
            owner: Some("1.2.3".into()),
        }
    }

    #[test]
    fn queue_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        let id = {
            let mut s = Store::open(&path).unwrap();
            let a = s.queue_push(&new("d", 1)).unwrap();
            s.queue_push(&new("d", 5)).unwrap();
            assert!(s.queue_start(a, 1, 1024).unwrap());
            assert!(!s.queue_start(a, 1, 1024).unwrap(), "started twice");
            a
        };
        let mut s = Store::open(&path).unwrap();
        let running = s.queue_list(&[QueueState::Running]).unwrap();
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].extra_memory_kib, 1024);
        assert_eq!(s.queue_list(&[QueueState::Waiting]).unwrap()[0].priority, 5);
        s.queue_finish(id, QueueState::Done, "{}").unwrap();
        let q = s.queue_get(id).unwrap();
        assert_eq!((q.state, q.extra_memory_kib), (QueueState::Done, 0));
        assert!(s.queue_finish(id, QueueState::Running, "").is_err());
        assert!(matches!(s.queue_get(99), Err(Error::NotFound(_))));
    }

    #[test]
    fn reservations_are_named_and_windowed() {
        let mut s = Store::in_memory().unwrap();
        let r = Reservation {
            name: "nightly".into(),
            user: "ops".into(),
            vcpus: 1,
            memory_kib: 512 * 1024,
            starts_at: 100,
            ends_at: Some(200),
        };
        s.reservation_add(&r).unwrap();
        let e = s.reservation_add(&r).unwrap_err().to_string();
        assert!(e.contains("'nightly' already exists"), "{e}");
        assert!(r.active_at(100) && r.active_at(199) && !r.active_at(200) && !r.active_at(99));
        assert_eq!(s.reservation("nightly").unwrap(), r);
        let e = s.reservation("nope").unwrap_err().to_string();
        assert_eq!(e, "reservation 'nope' not found");
        let bad = Reservation {
            ends_at: Some(50),
            name: "x".into(),
            ..r.clone()
        };
        assert!(
            s.reservation_add(&bad)
                .unwrap_err()
                .to_string()
                .contains("ends")
        );
        s.reservation_remove("nightly", "ops").unwrap();
        assert!(s.reservation_remove("nightly", "ops").is_err());
    }
}

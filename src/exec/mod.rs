//! Command orchestration (`allocateResources(command, domain)`): predict what a command needs,
//! make room on the running domain before it starts, run it through the guest agent, grow while
//! it runs, put the domain back and learn from what it used.
//!
//! - [`analysis`] (pure): features of an argument vector and the nearest-neighbours model.
//! - [`plan`] (pure): the allocation for a prediction, host room net of reservations and
//!   running commands, the feedback loop's growth step, the queue order (priority, then age,
//!   with aging so low priority never starves).
//! - [`run`]: the [`Orchestrator`] over the [`crate::hypervisor::Hypervisor`] trait and the
//!   [`crate::store::Store`] (queue, reservations and usage history live in the store, so they
//!   survive a restart).
//! - [`calibration`]: the cold-start table shipped in `calibration/commands/`.
//!
//! Invariants: the command is an argument vector handed to the guest agent's `guest-exec` as
//! `path` + `arg` (never a shell string, never a host shell); whatever the orchestrator changes
//! on the domain it restores when the command ends, also when it fails; every change is
//! reported.

pub mod analysis;
pub mod calibration;
pub mod plan;
pub mod run;

pub use analysis::{Features, Model, Observation, Prediction, Usage, analyze};
pub use run::{Change, Orchestrator, Phase, Report, Request};

use crate::Result;
use crate::store::{Store, SubjectKind};

/// Observations from the store's history: every sample of a `command` subject is one earlier
/// run (the orchestrator records one sample per run, covering it).
pub fn history(store: &Store) -> Result<Vec<Observation>> {
    let mut out = Vec::new();
    for s in store.subjects()? {
        if s.kind != SubjectKind::Command {
            continue;
        }
        let argv = analysis::split_key(&s.key);
        let Ok(features) = analyze(&argv) else {
            continue;
        };
        for x in store.samples(s.id, ..)? {
            let secs = f64::from(x.interval_s.max(1));
            out.push(Observation {
                features: features.clone(),
                usage: Usage {
                    cpu_cores: x.cpu_time_ns as f64 / 1e9 / secs,
                    memory_kib: x.memory_used_kib as f64,
                    disk_read_bytes: x.disk_read_bytes as f64,
                    disk_write_bytes: x.disk_write_bytes as f64,
                    net_bytes: (x.net_rx_bytes + x.net_tx_bytes) as f64,
                    duration_s: secs,
                },
                source: "history".into(),
            });
        }
    }
    Ok(out)
}

/// The model prae uses: the shipped calibration table plus the store's history.
pub fn model(store: &Store) -> Result<Model> {
    let mut obs = calibration::table()?;
    obs.extend(history(store)?);
    Ok(Model::new(obs))
}

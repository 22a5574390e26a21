//! Host capacity for builds: a ledger of what running builds hold, shared by every prae process
//! on the host.
//!
//! The ledger is a JSON file (`reservations.json` in the state directory) changed only while an
//! exclusive lock on `reservations.lock` is held ([`super::owner::LockFile`]: a file created
//! exclusively, so two builds in one process exclude each other exactly as two processes do). A build reserves its vCPUs
//! and memory before anything is created and releases them when it ends (the guard's `Drop`). A
//! reservation whose owner process is gone (a killed prae) is dropped by the next reader, so
//! capacity is never lost. A build that does not fit waits, polling once a second, until enough
//! is released; one that could never fit (it alone exceeds the host) is refused at once.
//!
//! Capacity is the hypervisor's node capacity, optionally capped (`PRAE_BUILD_MEMORY`,
//! `PRAE_BUILD_VCPUS`, or the config): memory and vCPUs are never committed beyond it.

use super::owner::Owner;
use crate::store::files;
use crate::{Error, Result, units};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the ledger may hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub vcpus: u32,
    pub memory_kib: u64,
}

/// One build's reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub build: String,
    pub pid: u32,
    pub start: u64,
    pub vcpus: u32,
    pub memory_kib: u64,
}

/// The ledger in a directory.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
}

/// A held reservation; dropping it releases it.
#[derive(Debug)]
pub struct Reservation {
    ledger: Ledger,
    build: String,
    /// How long the build waited for capacity.
    pub waited: Duration,
}

impl Ledger {
    pub fn new(dir: impl Into<PathBuf>) -> Ledger {
        Ledger { dir: dir.into() }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("reservations.json")
    }

    fn lock(&self) -> Result<super::owner::LockFile> {
        files::create_dir_all(&self.dir)?;
        super::owner::LockFile::acquire(&self.dir.join("reservations.lock"))
    }

    /// The live entries (dead owners dropped). Call with the lock held.
    fn read(&self) -> Result<Vec<Entry>> {
        let path = self.data();
        let Some(text) = files::read_optional(&path)? else {
            return Ok(Vec::new());
        };
        // An unreadable ledger (e.g. from a future format) is treated as empty rather than
        // blocking every build; its owners, if alive, re-check nothing, so say so.
        let entries: Vec<Entry> = serde_json::from_str(&text).unwrap_or_else(|e| {
            log::warn!(
                "{}: unreadable ({e}); starting an empty ledger",
                path.display()
            );
            Vec::new()
        });
        Ok(entries
            .into_iter()
            .filter(|e| {
                Owner {
                    pid: e.pid,
                    start: e.start,
                }
                .alive()
            })
            .collect())
    }

    /// Writes the entries (tmp file + rename). Call with the lock held.
    fn write(&self, entries: &[Entry]) -> Result<()> {
        let path = self.data();
        let tmp = self.dir.join("reservations.json.tmp");
        let text = serde_json::to_string_pretty(entries)
            .map_err(|e| Error::Invalid(format!("cannot encode the ledger: {e}")))?;
        files::write_atomic(&path, &tmp, text.as_bytes(), true)
    }

    /// What live builds hold now.
    pub fn held(&self) -> Result<Vec<Entry>> {
        let _lock = self.lock()?;
        self.read()
    }

    /// Reserves `vcpus` and `memory_kib` for `build` within `cap`, waiting (polling every
    /// `poll`) while other builds hold too much. `on_wait` is called once, with what is held,
    /// when the build has to wait. Refused at once when the request alone exceeds `cap`.
    pub fn reserve(
        &self,
        build: &str,
        vcpus: u32,
        memory_kib: u64,
        cap: Capacity,
        poll: Duration,
        mut on_wait: impl FnMut(&[Entry]),
    ) -> Result<Reservation> {
        if vcpus > cap.vcpus || memory_kib > cap.memory_kib {
            return Err(Error::Invalid(format!(
                "build {build} needs {vcpus} vCPU(s) and {} but builds may use at most {} vCPU(s) \
                 and {} on this host",
                units::format_kib(memory_kib),
                cap.vcpus,
                units::format_kib(cap.memory_kib)
            )));
        }
        let me = Owner::current();
        let started = Instant::now();
        let mut told = false;
        loop {
            {
                let _lock = self.lock()?;
                let mut entries = self.read()?;
                let used_v: u32 = entries.iter().map(|e| e.vcpus).sum();
                let used_m: u64 = entries.iter().map(|e| e.memory_kib).sum();
                if used_v + vcpus <= cap.vcpus && used_m + memory_kib <= cap.memory_kib {
                    entries.push(Entry {
                        build: build.to_string(),
                        pid: me.pid,
                        start: me.start,
                        vcpus,
                        memory_kib,
                    });
                    self.write(&entries)?;
                    return Ok(Reservation {
                        ledger: self.clone(),
                        build: build.to_string(),
                        waited: started.elapsed(),
                    });
                }
                if !told {
                    told = true;
                    on_wait(&entries);
                }
            }
            std::thread::sleep(poll);
        }
    }

    fn release(&self, build: &str) -> Result<()> {
        let _lock = self.lock()?;
        let mut entries = self.read()?;
        entries.retain(|e| e.build != build);
        self.write(&entries)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Err(e) = self.ledger.release(&self.build) {
            log::warn!("cannot release the reservation of {}: {e}", self.build);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};

    #[test]
    fn builds_queue_instead_of_overcommitting() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let cap = Capacity {
            vcpus: 2,
            memory_kib: 3 * 1024 * 1024,
        };
        let gib = 1024 * 1024;
        let poll = Duration::from_millis(10);
        // Two builds fill the host; the two that come next must wait, not overcommit.
        let a = ledger.reserve("a", 1, gib, cap, poll, |_| {}).unwrap();
        let b = ledger.reserve("b", 1, gib, cap, poll, |_| {}).unwrap();
        let running = Arc::new(AtomicU32::new(2));
        let peak = Arc::new(AtomicU32::new(2));
        let waited = Arc::new(Mutex::new(0));
        std::thread::scope(|s| {
            for i in 0..2 {
                let (ledger, running, peak, waited) = (&ledger, &running, &peak, &waited);
                s.spawn(move || {
                    let r = ledger
                        .reserve(&format!("q{i}"), 1, gib, cap, poll, |held| {
                            assert_eq!(held.len(), 2, "{held:?}");
                            *waited.lock().unwrap() += 1
                        })
                        .unwrap();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let held = ledger.held().unwrap();
                    assert!(held.iter().map(|e| e.vcpus).sum::<u32>() <= cap.vcpus);
                    running.fetch_sub(1, Ordering::SeqCst);
                    drop(r);
                });
            }
            // Both queued builds report that they wait, however slowly the threads start.
            let deadline = Instant::now() + Duration::from_secs(30);
            while *waited.lock().unwrap() < 2 {
                assert!(Instant::now() < deadline, "queued builds never waited");
                std::thread::sleep(poll);
            }
            assert_eq!(ledger.held().unwrap().len(), 2);
            assert_eq!(running.load(Ordering::SeqCst), 2);
            running.fetch_sub(2, Ordering::SeqCst);
            drop(a);
            drop(b);
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(*waited.lock().unwrap(), 2);
        assert!(ledger.held().unwrap().is_empty());
    }

    #[test]
    fn too_big_is_refused_and_dead_owners_release() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(dir.path());
        let cap = Capacity {
            vcpus: 1,
            memory_kib: 1024 * 1024,
        };
        let err = ledger
            .reserve("big", 2, 1024, cap, Duration::from_millis(1), |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("big") && err.contains("2 vCPU"), "{err}");
        // A reservation of a dead process is ignored.
        let dead = vec![Entry {
            build: "ghost".into(),
            pid: u32::MAX - 1,
            start: 1,
            vcpus: 1,
            memory_kib: 1024 * 1024,
        }];
        {
            let _l = ledger.lock().unwrap();
            ledger.write(&dead).unwrap();
        }
        let r = ledger
            .reserve("live", 1, 1024, cap, Duration::from_millis(1), |_| {
                panic!("waited for a dead owner")
            })
            .unwrap();
        assert_eq!(ledger.held().unwrap().len(), 1);
        drop(r);
    }
}

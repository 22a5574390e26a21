//! Who owns what a build creates, and how leftovers of dead builds are recognised.
//!
//! Every libvirt object and file a build creates carries its owner in its name:
//! `prae-build-<pid>.<start>.<seq>-<package>` for the domain, `<that>-root.qcow2` and
//! `<that>-repo.qcow2` for its volumes in the builds pool, `prae-partial-<pid>.<start>.<seq>-...`
//! for an image being written into the images pool, `repo-build.<pid>.<start>.<seq>` for a
//! repository being prepared. `<pid>` is the prae process, `<start>` its start time in clock ticks
//! since boot (field 22 of `/proc/<pid>/stat`), so a reused pid is not mistaken for the owner.
//!
//! A leftover is an object with one of these names whose owner process no longer exists; a
//! domain must in addition carry prae's metadata naming the build (written by `domain::rewrite`
//! as the provenance source `build <name>`). Nothing else is ever touched.

use crate::store::files;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of build domains and their volumes.
pub const BUILD_PREFIX: &str = "prae-build-";
/// Prefix of images being written into the images pool (renamed when complete).
pub const PARTIAL_PREFIX: &str = "prae-partial-";
/// Prefix of repositories being prepared in the cache directory.
pub const REPO_WORK_PREFIX: &str = "repo-build.";

/// A process that owns builds: its pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start: u64,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the process is still running (same pid and same start time).
    pub fn alive(self) -> bool {
        start_time(self.pid).is_some_and(|s| s == self.start)
    }

    /// A new token `<pid>.<start>.<seq>`, unique within this process.
    pub fn token(self) -> String {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        format!("{}.{}.{}", self.pid, self.start, seq)
    }
}

/// Parses the owner out of a token `<pid>.<start>.<seq>` at the start of `s` (up to `-` or end).
pub fn parse_token(s: &str) -> Option<Owner> {
    let token = s.split('-').next()?;
    let mut it = token.split('.');
    let pid = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    it.next()?.parse::<u32>().ok()?;
    it.next().is_none().then_some(Owner { pid, start })
}

/// The owner of a name with `prefix` followed by a token; `None` when it is not such a name.
pub fn owner_of(name: &str, prefix: &str) -> Option<Owner> {
    parse_token(name.strip_prefix(prefix)?)
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot).
fn start_time(pid: u32) -> Option<u64> {
    let stat = files::read_optional(Path::new(&format!("/proc/{pid}/stat")))
        .ok()
        .flatten()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// An exclusive lock between processes and threads: a file created with `O_EXCL` holding its
/// owner (`<pid> <start>`), removed when dropped. A lock whose owner process is gone (a killed
/// prae) is broken by the next process that wants it. (A tiny window remains in which two
/// waiters judge the same stale lock dead at once; it needs a kill and two waiters together.)
#[derive(Debug)]
pub struct LockFile {
    path: std::path::PathBuf,
}

impl LockFile {
    /// Waits (polling every 20 ms) until the lock at `path` is ours.
    pub fn acquire(path: &std::path::Path) -> crate::Result<LockFile> {
        let me = Owner::current();
        loop {
            match files::create_new(path, &format!("{} {}\n", me.pid, me.start))? {
                true => {
                    return Ok(LockFile {
                        path: path.to_path_buf(),
                    });
                }
                false => {
                    let text = files::read_optional(path)
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    let mut it = text.split_whitespace();
                    let holder = match (it.next().map(str::parse), it.next().map(str::parse)) {
                        (Some(Ok(pid)), Some(Ok(start))) => Some(Owner { pid, start }),
                        _ => None,
                    };
                    let stale = match holder {
                        Some(o) => !o.alive(),
                        // Being written, or damaged: stale once it is old.
                        None => files::age(path)
                            .is_some_and(|age| age > std::time::Duration::from_secs(10)),
                    };
                    if stale {
                        log::warn!("breaking the stale lock {} ({text:?})", path.display());
                        let _ = files::remove_file(path);
                        continue;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = files::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_this_process_is_alive() {
        let me = Owner::current();
        assert!(me.alive());
        assert!(me.start > 0);
        let t = me.token();
        assert_eq!(parse_token(&t), Some(me));
        let name = format!("{BUILD_PREFIX}{t}-hello");
        assert_eq!(owner_of(&name, BUILD_PREFIX), Some(me));
        assert_eq!(
            owner_of(&format!("{name}-root.qcow2"), BUILD_PREFIX),
            Some(me)
        );
        assert_ne!(me.token(), t);
    }

    #[test]
    fn foreign_names_have_no_owner() {
        for n in [
            "prae-build-",
            "prae-build-x.1.2-hello",
            "prae-build-1.2-hello",
            "prae-build-1.2.3.4-hello",
            "prae-lab-debian-123",
            "myvm",
        ] {
            assert_eq!(owner_of(n, BUILD_PREFIX), None, "{n}");
        }
        // A pid that exists with another start time is not the owner.
        let me = Owner::current();
        let other = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!other.alive());
    }

    #[test]
    fn lock_files_exclude_and_stale_ones_are_broken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        std::fs::write(&p, format!("{} 1\n", u32::MAX - 1)).unwrap();
        let l = LockFile::acquire(&p).unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _l2 = LockFile::acquire(&p).unwrap();
                n.store(2, std::sync::atomic::Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 0);
            drop(l);
        });
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(!p.exists());
    }
}

//! prae's own files beside the database: the build capacity ledger, image manifests, the
//! repository cache, lock files and build logs. Every read, write, rename and removal of them
//! goes through these functions, so `build/` decides what to keep and `store/` how it is kept.
//!
//! Each error names the path. Writes that others read while they happen (the ledger, the
//! manifests, a cache record) are atomic: a temporary file beside the target, optionally
//! synced, then renamed over it, so a reader or a killed writer never sees half a file.

use crate::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path.display().to_string(), e)
}

/// A file's text; `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path, e)),
    }
}

/// A file's bytes.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io(path, e))
}

/// Writes `bytes` to `path` (created or truncated).
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| io(path, e))
}

/// Writes `bytes` to `tmp`, syncs it when `sync`, then renames it to `path`: readers see the old
/// file or the new one, never a part.
pub fn write_atomic(path: &Path, tmp: &Path, bytes: &[u8], sync: bool) -> Result<()> {
    let mut f = std::fs::File::create(tmp).map_err(|e| io(tmp, e))?;
    f.write_all(bytes).map_err(|e| io(tmp, e))?;
    if sync {
        f.sync_all().map_err(|e| io(tmp, e))?;
    }
    drop(f);
    rename(tmp, path)
}

/// Creates `path` only if it does not exist, holding `text`; `false` when it already existed.
pub fn create_new(path: &Path, text: &str) -> Result<bool> {
    match std::fs::File::options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path, e)),
    }
}

pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io(path, e))
}

/// Creates one directory (its parent must exist; an existing one is an error).
pub fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir(path).map_err(|e| io(path, e))
}

pub fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| io(to, e))
}

pub fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).map(drop).map_err(|e| io(from, e))
}

/// Removes a file; one that is already gone is not an error.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, e)),
    }
}

/// Removes a directory tree.
pub fn remove_dir_all(path: &Path) -> Result<()> {
    std::fs::remove_dir_all(path).map_err(|e| io(path, e))
}

/// A file's size, bytes.
pub fn size(path: &Path) -> Result<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| io(path, e))
}

/// How long ago a file was last modified; `None` when that is unknown (or it is gone).
pub fn age(path: &Path) -> Option<Duration> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The entries of a directory (name and path); a missing or unreadable directory has none.
pub fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect()
}

/// The entries of a directory that must be readable.
pub fn entries_of(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    Ok(entries(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_errors_name_the_path() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ledger.json");
        assert_eq!(read_optional(&p).unwrap(), None);
        write_atomic(&p, &d.path().join("ledger.json.tmp"), b"[1]", true).unwrap();
        write_atomic(&p, &d.path().join("ledger.json.tmp"), b"[2]", false).unwrap();
        assert_eq!(read_optional(&p).unwrap().as_deref(), Some("[2]"));
        assert!(!d.path().join("ledger.json.tmp").exists());
        assert_eq!(size(&p).unwrap(), 3);
        assert!(age(&p).is_some());
        assert_eq!(
            sha256(&p).unwrap(),
            "038966de9f6b9a901b20b4c6ca8b2a46009feebe031babc842d43690c0bc222b"
        );
        let lock = d.path().join("x.lock");
        assert!(create_new(&lock, "1 2\n").unwrap());
        assert!(!create_new(&lock, "3 4\n").unwrap());
        assert_eq!(read_optional(&lock).unwrap().as_deref(), Some("1 2\n"));
        remove_file(&lock).unwrap();
        remove_file(&lock).unwrap();
        let names: Vec<String> = entries(d.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ledger.json"]);
        assert!(entries(&d.path().join("none")).is_empty());
        let e = entries_of(&d.path().join("none")).unwrap_err().to_string();
        assert!(e.contains("none"), "{e}");
        let e = create_dir(&d.path().join("a/b")).unwrap_err().to_string();
        assert!(e.contains("a/b"), "{e}");
    }
}

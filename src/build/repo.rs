//! The offline package repository a build installs from: an ext4 disk image holding the .debs
//! of a package's dependency closure relative to the base, plus a flat `Packages` index.
//!
//! Made here the way `tests/lab/make-repo.sh` makes it, with argument vectors only (no shell):
//! a throwaway copy of the base's `rootfs/` (`cp -a --reflink=auto`; the base is never
//! changed) gets the host's `resolv.conf`, `apt-get update` and
//! `apt-get install --download-only -y PKG` in a `chroot` (Recommends included, as the guest's
//! install wants them); the .debs in its archive cache, `dpkg-scanpackages . /dev/null`, and
//! `mkfs.ext4 -d REPO -L repo` (files + 25% + 16 MiB). Needs root and the Debian archive.
//!
//! Cached in `<cache>/repo-<sha256 of format, base and package>/` (`repo.img`, `Packages`,
//! `repo.json`); built in `<cache>/repo-build.<owner token>/` and renamed into place when
//! complete, so a killed build leaves no half repository (the next build removes the work
//! directory of a dead owner). Builds of repositories are serialized by a lock file.
//!
//! `--repo DIR` uses a directory made by `make-repo.sh` (or by this module) instead: it must
//! hold `repo.img`; its `Packages` (if any) gives the installed sizes.

use super::owner::{Owner, REPO_WORK_PREFIX, owner_of};
use crate::store::files;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bumped when the repository layout changes (part of the cache key).
const FORMAT: &str = "prae-repo-1";

/// One .deb in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deb {
    pub package: String,
    pub version: String,
    /// Size of the .deb, bytes.
    pub size: u64,
    /// `Installed-Size`, KiB.
    pub installed_size_kib: u64,
    #[serde(default)]
    pub section: Option<String>,
}

/// A repository disk and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repo {
    pub dir: PathBuf,
    pub image: PathBuf,
    /// The .debs (the package's dependency closure relative to the base); empty when the base
    /// already holds the package, or when an external repository has no `Packages` file.
    pub debs: Vec<Deb>,
    /// Whether `debs` is known (a `Packages` index was found).
    pub indexed: bool,
    /// Seconds spent preparing it (0 when cached).
    pub prepare_s: f64,
    pub cached: bool,
}

impl Repo {
    /// Sum of `Installed-Size` over the closure, KiB.
    pub fn installed_size_kib(&self) -> u64 {
        self.debs.iter().map(|d| d.installed_size_kib).sum()
    }
    pub fn download_bytes(&self) -> u64 {
        self.debs.iter().map(|d| d.size).sum()
    }
    /// The .deb of `package` itself, when the repository holds it.
    pub fn deb(&self, package: &str) -> Option<&Deb> {
        self.debs.iter().find(|d| d.package == package)
    }
}

/// Parses a `Packages` index (deb822 stanzas).
pub fn parse_packages(text: &str) -> Vec<Deb> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            })
        };
        let (Some(package), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        out.push(Deb {
            package,
            version,
            size: field("Size").and_then(|s| s.parse().ok()).unwrap_or(0),
            installed_size_kib: field("Installed-Size")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            section: field("Section"),
        });
    }
    out.sort_by(|a, b| a.package.cmp(&b.package));
    out
}

/// Opens a repository directory made elsewhere (`--repo`).
pub fn external(dir: &Path) -> Result<Repo> {
    let image = dir.join("repo.img");
    if !image.is_file() {
        return Err(Error::Invalid(format!(
            "repository directory {} has no repo.img",
            dir.display()
        )));
    }
    let (debs, indexed) = match files::read_optional(&dir.join("Packages")).ok().flatten() {
        Some(t) => (parse_packages(&t), true),
        None => (Vec::new(), false),
    };
    Ok(Repo {
        dir: dir.to_path_buf(),
        image,
        debs,
        indexed,
        prepare_s: 0.0,
        cached: true,
    })
}

/// Removes work directories of dead owners in `cache`; returns what was removed.
pub fn remove_leftovers(cache: &Path) -> Vec<String> {
    let mut removed = Vec::new();
    for (name, p) in files::entries(cache) {
        if owner_of(&name, REPO_WORK_PREFIX).is_some_and(|o| !o.alive()) {
            match files::remove_dir_all(&p) {
                Ok(()) => removed.push(p.display().to_string()),
                Err(e) => log::warn!("cannot remove the leftover {}: {e}", p.display()),
            }
        }
    }
    removed
}

/// Removes a directory tree when dropped (unless disarmed).
struct WorkDir(Option<PathBuf>);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = files::remove_dir_all(&p)
        {
            log::warn!("cannot remove it: {e}");
        }
    }
}

/// Runs a command (argument vector), naming it in the error with the last lines of its output.
fn run(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    let out = cmd
        .output()
        .map_err(|e| Error::Invalid(format!("cannot run {what}: {e}")))?;
    if out.status.success() {
        return Ok(out);
    }
    Err(Error::Invalid(format!(
        "{what} failed ({}): {}",
        out.status,
        last_lines(&out, 3)
    )))
}

/// The last `n` non-empty lines of a command's stderr, else stdout, joined with " | ".
pub fn last_lines(out: &std::process::Output, n: usize) -> String {
    let pick = |b: &[u8]| {
        let t = String::from_utf8_lossy(b);
        let lines: Vec<String> = t
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    };
    let e = pick(&out.stderr);
    if e.is_empty() { pick(&out.stdout) } else { e }
}

/// The repository for `package` on the base in `base`, from the cache or prepared now.
pub fn prepare(base: &Path, cache: &Path, package: &str, os: &str) -> Result<Repo> {
    crate::engine::validate_package_name(package)?;
    let rootfs = base.join("rootfs");
    if !rootfs.is_dir() {
        return Err(Error::Invalid(format!(
            "base directory {} has no rootfs/ to resolve {package}'s dependencies against \
             (give --repo DIR made by tests/lab/make-repo.sh)",
            base.display()
        )));
    }
    let base_name = base
        .canonicalize()
        .map_err(|e| Error::io(base.display().to_string(), e))?;
    let mut h = Sha256::new();
    h.update(FORMAT.as_bytes());
    h.update([0]);
    h.update(base_name.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(package.as_bytes());
    let key: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let out = cache.join(format!("repo-{key}"));
    let meta = out.join("repo.json");
    if let Some(r) = read_cached(&meta) {
        return Ok(r);
    }
    files::create_dir_all(cache)?;
    let _lock = super::owner::LockFile::acquire(&cache.join("repo.lock"))?;
    if let Some(r) = read_cached(&meta) {
        return Ok(r);
    }
    remove_leftovers(cache);
    let started = std::time::Instant::now();
    let work = cache.join(format!("{REPO_WORK_PREFIX}{}", Owner::current().token()));
    files::create_dir(&work)?;
    let _work_guard = WorkDir(Some(work.clone()));
    let root = work.join("rootfs");
    run(
        Command::new("cp")
            .arg("-a")
            .arg("--reflink=auto")
            .arg(&rootfs)
            .arg(&root),
        "cp -a of the base rootfs",
    )?;
    let resolv = root.join("etc/resolv.conf");
    let _ = files::remove_file(&resolv);
    let host_resolv = files::read(Path::new("/etc/resolv.conf")).unwrap_or_default();
    files::write(&resolv, &host_resolv)?;
    let chroot = |args: &[&str]| {
        let mut c = Command::new("chroot");
        c.arg(&root)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LC_ALL", "C");
        c
    };
    run(
        &mut chroot(&["apt-get", "clean"]),
        "apt-get clean in the base's chroot",
    )?;
    run(
        &mut chroot(&["apt-get", "update", "-qq"]),
        "apt-get update in the base's chroot",
    )?;
    let dl = chroot(&["apt-get", "install", "--download-only", "-y", "-q", package]).output();
    let dl = dl.map_err(|e| Error::Invalid(format!("cannot run chroot apt-get: {e}")))?;
    if !dl.status.success() {
        let text = String::from_utf8_lossy(&dl.stderr);
        if text.contains("Unable to locate package")
            || text.contains("has no installation candidate")
        {
            return Err(Error::NotFound(format!(
                "package '{package}' in the {os} archive"
            )));
        }
        return Err(Error::Invalid(format!(
            "cannot resolve {package} against the base: {}",
            last_lines(&dl, 3)
        )));
    }
    let repo = work.join("repo");
    files::create_dir(&repo)?;
    let archives = root.join("var/cache/apt/archives");
    for (name, p) in files::entries_of(&archives)? {
        if p.extension().is_some_and(|x| x == "deb") {
            files::rename(&p, &repo.join(name))?;
        }
    }
    let scan = run(
        Command::new("dpkg-scanpackages")
            .arg(".")
            .arg("/dev/null")
            .current_dir(&repo),
        "dpkg-scanpackages",
    )?;
    let packages = repo.join("Packages");
    files::write(&packages, &scan.stdout)?;
    let debs = parse_packages(&String::from_utf8_lossy(&scan.stdout));
    let bytes: u64 = debs.iter().map(|d| d.size).sum();
    let size_mib = bytes * 5 / 4 / (1024 * 1024) + 16;
    let done = work.join("out");
    files::create_dir(&done)?;
    run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&repo)
            .args(["-L", "repo"])
            .arg(done.join("repo.img"))
            .arg(format!("{size_mib}M")),
        "mkfs.ext4 of the repository disk",
    )?;
    files::copy(&packages, &done.join("Packages"))?;
    let r = Repo {
        dir: out.clone(),
        image: out.join("repo.img"),
        debs,
        indexed: true,
        prepare_s: started.elapsed().as_secs_f64(),
        cached: false,
    };
    let text = serde_json::to_string_pretty(&r)
        .map_err(|e| Error::Invalid(format!("cannot encode the repository record: {e}")))?;
    files::write(&done.join("repo.json"), text.as_bytes())?;
    if out.exists() {
        let _ = files::remove_dir_all(&out);
    }
    files::rename(&done, &out)?;
    Ok(r)
}

fn read_cached(meta: &Path) -> Option<Repo> {
    let text = files::read_optional(meta).ok().flatten()?;
    let mut r: Repo = serde_json::from_str(&text).ok()?;
    r.image.is_file().then(|| {
        r.cached = true;
        r.prepare_s = 0.0;
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_index_is_parsed() {
        let text = "Package: hello\nVersion: 2.10-3\nInstalled-Size: 280\nSize: 53080\n\
                    Section: devel\nDescription: x\n second line\n\n\
                    Package: libfoo1\nVersion: 1:1.0\nInstalled-Size: 12\nSize: 100\n";
        let debs = parse_packages(text);
        assert_eq!(debs.len(), 2);
        assert_eq!(debs[0].package, "hello");
        assert_eq!(debs[0].installed_size_kib, 280);
        assert_eq!(debs[0].section.as_deref(), Some("devel"));
        assert_eq!(debs[1].version, "1:1.0");
        assert!(parse_packages("").is_empty());
    }

    #[test]
    fn bad_names_are_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare(dir.path(), dir.path(), "hello;rm", "debian12").unwrap_err();
        assert!(err.to_string().contains("hello;rm"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

//! Running prae's binaries from integration tests and capturing what they print.
//!
//! Included by the tests that need it with `#[path = "common/bin.rs"] mod bin;` (not through
//! `common/mod.rs`, which `benches/rewrite.rs` includes too).

// Each test target that includes this module uses a different part of it.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Runs `prae args...` without `PRAE_URI` from the caller's environment.
pub fn prae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prae"))
        .args(args)
        .env_remove("PRAE_URI")
        .output()
        .expect("run prae")
}

/// Runs `prae-virsh args...` without `PRAE_TIER` from the caller's environment.
pub fn prae_virsh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prae-virsh"))
        .args(args)
        .env_remove("PRAE_TIER")
        .output()
        .expect("run prae-virsh")
}

/// Writes `text` to `name` in `dir`; returns the file's path.
pub fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Runs prae expecting failure; returns the `prae: ...` line of stderr, asserting it is the only
/// one and that nothing went to stdout (clap's own errors are checked separately).
pub fn fails(args: &[&str]) -> String {
    let o = prae(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{args:?} succeeded: {err}");
    assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {err}");
    assert!(lines[0].starts_with("prae: "), "{args:?}: {err}");
    lines[0].to_string()
}

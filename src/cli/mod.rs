//! Command-line front ends: `prae` ([`prae`]) and `prae-virsh` ([`virsh`]).
//!
//! Invariants: they parse and validate, then call the library; they never pass text through a
//! shell; every failure is one line on stderr (`prae: ...`) and a non-zero exit, with nothing
//! defined or changed.

pub mod build;
pub mod daemon;
pub mod exec;
pub mod forecast;
pub mod history;
pub mod prae;
pub mod predict;
pub mod replay;
pub mod status;
pub mod virsh;

use crate::domain::Rewritten;
use crate::{Error, Result};
use std::io::Read;

/// Reads a domain XML file (`-` = standard input), naming the path in the error.
pub fn read_input(path: &str) -> Result<String> {
    let mut s = String::new();
    if path == "-" {
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io("standard input", e))?;
        return Ok(s);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::Invalid(format!(
            "{path}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// One line per change and per skipped change, for stderr.
pub fn describe(r: &Rewritten) -> Vec<String> {
    let mut lines: Vec<String> = r
        .changes
        .iter()
        .map(|c| format!("{}: {} -> {}", c.what, c.from, c.to))
        .collect();
    lines.extend(
        r.skipped
            .iter()
            .map(|s| format!("{}: kept ({})", s.what, s.reason)),
    );
    lines
}

/// Sets up `log` output on stderr; `RUST_LOG` overrides the default level (warn).
pub fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .try_init();
}

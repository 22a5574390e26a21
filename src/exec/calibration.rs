//! The cold-start table: commands measured in the lab, shipped in
//! `calibration/commands/commands.tsv` (how they were measured: that directory's README).
//!
//! Format: `#` comments, a header line, then one row per run with tab-separated columns
//! `cpu_cores memory_kib disk_read_bytes disk_write_bytes net_bytes duration_s command`, the
//! command written as a history key ([`super::analysis::join_key`]).

use super::analysis::{Observation, Usage, analyze, split_key};
use crate::{Error, Result};

/// The shipped table's text.
pub const TABLE: &str = include_str!("../../calibration/commands/commands.tsv");

/// The header line of the table.
pub const HEADER: &str =
    "cpu_cores\tmemory_kib\tdisk_read_bytes\tdisk_write_bytes\tnet_bytes\tduration_s\tcommand";

/// The shipped table, parsed.
pub fn table() -> Result<Vec<Observation>> {
    parse(TABLE, "calibration")
}

/// Parses a table; errors name the line and the bad value.
pub fn parse(text: &str, source: &str) -> Result<Vec<Observation>> {
    let mut out = Vec::new();
    let mut header = false;
    for (n, line) in text.lines().enumerate() {
        let n = n + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !header {
            if line != HEADER {
                return Err(Error::Invalid(format!(
                    "command table line {n}: expected the header '{HEADER}'"
                )));
            }
            header = true;
            continue;
        }
        let cols: Vec<&str> = line.splitn(7, '\t').collect();
        if cols.len() != 7 {
            return Err(Error::Invalid(format!(
                "command table line {n}: expected 7 tab-separated columns, got {}",
                cols.len()
            )));
        }
        let mut v = [0.0; 6];
        for (i, c) in cols[..6].iter().enumerate() {
            v[i] = c
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "command table line {n}: {} '{c}' is not a non-negative number",
                        Usage::NAMES[i]
                    ))
                })?;
        }
        let features = analyze(&split_key(cols[6]))
            .map_err(|e| Error::Invalid(format!("command table line {n}: {e}")))?;
        out.push(Observation {
            features,
            usage: Usage {
                cpu_cores: v[0],
                memory_kib: v[1],
                disk_read_bytes: v[2],
                disk_write_bytes: v[3],
                net_bytes: v[4],
                duration_s: v[5],
            },
            source: source.into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses() {
        let t = table().unwrap();
        assert!(!t.is_empty());
        assert!(t.iter().any(|o| o.features.program == "dd"));
    }

    #[test]
    fn bad_rows_are_named() {
        let e = parse("nope\n", "t").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("header"), "{e}");
        let e = parse(&format!("{HEADER}\n1\t2\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("7 tab-separated"), "{e}");
        let e = parse(&format!("{HEADER}\n1\t-2\t0\t0\t0\t1\tdd\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory_kib '-2'"), "{e}");
        let e = parse(&format!("{HEADER}\n1\t2\t0\t0\t0\t1\t\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("no command"), "{e}");
    }
}

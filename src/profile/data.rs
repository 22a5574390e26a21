//! Calibration measurements: what installing a package really used, with the package's metadata.
//! Parsed from the CSV `prae calibrate` writes (`calibration/packages/measurements.csv`, embedded
//! as [`CALIBRATION_CSV`]); the columns are described in that directory's README.

use serde::{Deserialize, Serialize};

use super::{NEEDS, Need};
use crate::{Error, Result};

/// The calibration set shipped with prae: 30 Debian 12 packages installed in prae build VMs
/// (QEMU TCG, tier low), 2026-11-23. Provenance and caveats: `calibration/packages/README.md`.
pub const CALIBRATION_CSV: &str = include_str!("../../calibration/packages/measurements.csv");

/// Package metadata the model predicts from, as `apt-cache show` and a dependency resolution give
/// it. Every field may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PackageFeatures {
    /// The package's own `Installed-Size`, KiB.
    pub installed_size_kib: Option<f64>,
    /// `Installed-Size` summed over the .debs an install needs (the package and its dependencies
    /// not yet installed), KiB.
    pub closure_installed_size_kib: Option<f64>,
    /// .debs in that closure besides the package itself.
    pub dependencies: Option<f64>,
    /// Total size of those .debs, bytes: what the install downloads.
    pub download_bytes: Option<f64>,
    /// Debian section (`httpd`, `database`, ...). Kept for callers and reports; the model does
    /// not use it (about 15 sections over 30 packages is too few rows per section to learn from).
    pub section: Option<String>,
    /// Debian priority. Not in the calibration set yet, so not used by the model.
    pub priority: Option<String>,
}

impl PackageFeatures {
    /// Rejects negative or non-finite numbers, naming the field and the value.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("installed_size_kib", self.installed_size_kib),
            (
                "closure_installed_size_kib",
                self.closure_installed_size_kib,
            ),
            ("dependencies", self.dependencies),
            ("download_bytes", self.download_bytes),
        ] {
            if let Some(v) = v
                && (!v.is_finite() || v < 0.0)
            {
                return Err(Error::Invalid(format!(
                    "package feature {name} must be a finite non-negative number, got {v}"
                )));
            }
        }
        Ok(())
    }

    /// Whether no numeric metadata is known.
    pub fn is_empty(&self) -> bool {
        self.installed_size_kib.is_none()
            && self.closure_installed_size_kib.is_none()
            && self.dependencies.is_none()
            && self.download_bytes.is_none()
    }
}

/// What one install used, per [`Need`] (indexed by [`Need::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usage(pub [f64; NEEDS]);

impl Usage {
    pub fn get(&self, n: Need) -> f64 {
        self.0[n.index()]
    }
}

/// One calibration row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub package: String,
    pub features: PackageFeatures,
    pub usage: Usage,
}

/// Splits one CSV line into fields; double-quoted fields may hold commas and `""`.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out
}

/// The successful rows (`status` = `ok`) of a calibration CSV. Errors name the line and column
/// of the first bad value; a missing required column is an error naming it.
pub fn parse_measurements(csv: &str) -> Result<Vec<Measurement>> {
    let mut lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| Error::Invalid("calibration CSV is empty".into()))?;
    let header = split_csv(header.trim_end_matches('\r'));
    let col = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::Invalid(format!("calibration CSV has no column '{name}'")))
    };
    let package = col("package")?;
    let section = col("section")?;
    let status = header.iter().position(|h| h == "status");
    let feature_cols = [
        col("installed_size_kib")?,
        col("closure_installed_size_kib")?,
        col("dependencies")?,
        col("download_bytes")?,
    ];
    let need_cols: Vec<usize> = Need::ALL
        .iter()
        .map(|n| col(n.column()))
        .collect::<Result<_>>()?;
    let mut out = Vec::new();
    for (ln, line) in lines {
        let f = split_csv(line.trim_end_matches('\r'));
        let field = |c: usize| f.get(c).map(String::as_str).unwrap_or("");
        if let Some(s) = status
            && field(s) != "ok"
        {
            continue;
        }
        let num = |c: usize| -> Result<f64> {
            let text = field(c);
            match text.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                _ => Err(Error::Invalid(format!(
                    "calibration CSV line {}: column '{}' is '{text}', not a non-negative number",
                    ln + 1,
                    header[c]
                ))),
            }
        };
        let [inst, closure, deps, download] = feature_cols;
        let mut usage = [0.0; NEEDS];
        for (u, &c) in usage.iter_mut().zip(&need_cols) {
            *u = num(c)?;
        }
        out.push(Measurement {
            package: field(package).to_string(),
            features: PackageFeatures {
                installed_size_kib: Some(num(inst)?),
                closure_installed_size_kib: Some(num(closure)?),
                dependencies: Some(num(deps)?),
                download_bytes: Some(num(download)?),
                section: Some(field(section).to_string()).filter(|s| !s.is_empty()),
                priority: None,
            },
            usage: Usage(usage),
        });
    }
    Ok(out)
}

/// The embedded calibration set, parsed.
pub fn calibration() -> Result<Vec<Measurement>> {
    parse_measurements(CALIBRATION_CSV)
}

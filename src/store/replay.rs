//! Trace files as replay series: one usage column of one file, in the file's own unit.
//!
//! | format | `cpu` | `memory` | native unit (for VPA's histograms) |
//! |---|---|---|---|
//! | bitbrains | `CPU usage [MHz]` | `Memory usage [KB]` | cores = MHz / (capacity MHz / cores), the file's median; bytes = KB x 1024 |
//! | nab | `value` of `*cpu_utilization*` files (and unknown metrics, as import does) | refused | cores = % / 100 |
//! | planetlab | the CPU % | refused | cores = % / 100 |
//!
//! A NAB file of disk or network bytes is refused for `cpu`. Errors name the file (and line).

use super::import::read_text;
use super::trace::{self, NabField, TraceFormat};
use crate::replay::{Resource, Series};
use crate::{Error, Result};
use std::path::Path;

/// MHz per core assumed when a Bitbrains file gives no capacity.
pub const FALLBACK_MHZ_PER_CORE: f64 = 2000.0;

/// Reads one usage column of a trace file.
pub fn read_trace_series(format: TraceFormat, path: &Path, resource: Resource) -> Result<Series> {
    let shown = path.display().to_string();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::Invalid(format!("{shown}: not a file name")))?;
    // Refuse what the format cannot give before reading anything.
    match (format, resource) {
        (TraceFormat::Nab | TraceFormat::Planetlab, Resource::Memory) => {
            return Err(Error::Invalid(format!(
                "{shown}: {format} traces carry no memory usage (only bitbrains does)"
            )));
        }
        (TraceFormat::Nab, Resource::Cpu) => {
            let (field, _) = NabField::for_file_name(&name);
            if field != NabField::CpuPercent {
                return Err(Error::Invalid(format!(
                    "{shown}: the file holds {}, not CPU usage",
                    field.as_str()
                )));
            }
        }
        _ => {}
    }
    let text = read_text(path)?;
    let at = |n: usize, m: String| Error::Invalid(format!("{shown}:{}: {m}", n + 1));
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (mut timestamps, mut values) = (Vec::new(), Vec::new());
    let mut native_per_unit = 0.01;
    match format {
        TraceFormat::Bitbrains => {
            let mut per_core = Vec::new();
            for (n, l) in lines {
                if n == 0 && trace::is_bitbrains_header(l) {
                    continue;
                }
                let r = trace::parse_bitbrains_line(l).map_err(|m| at(n, m))?;
                timestamps.push(r.timestamp);
                values.push(match resource {
                    Resource::Cpu => r.usage_mhz,
                    Resource::Memory => r.memory_usage_kb,
                });
                if r.capacity_mhz > 0.0 && r.cores > 0.0 {
                    per_core.push(r.capacity_mhz / r.cores);
                }
            }
            native_per_unit = match resource {
                Resource::Memory => 1024.0,
                Resource::Cpu if per_core.is_empty() => 1.0 / FALLBACK_MHZ_PER_CORE,
                Resource::Cpu => {
                    per_core.sort_by(f64::total_cmp);
                    1.0 / per_core[per_core.len() / 2]
                }
            };
        }
        TraceFormat::Nab => {
            for (n, l) in lines {
                if n == 0 && trace::is_nab_header(l) {
                    continue;
                }
                let (ts, v) = trace::parse_nab_line(l).map_err(|m| at(n, m))?;
                timestamps.push(ts);
                values.push(v);
            }
        }
        TraceFormat::Planetlab => {
            let dir = path
                .parent()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let epoch = trace::planetlab_epoch(dir.as_deref());
            for (i, (n, l)) in lines.enumerate() {
                values.push(trace::parse_planetlab_line(l).map_err(|m| at(n, m))?);
                timestamps.push(trace::planetlab_sample(epoch, i, 0.0).timestamp);
            }
        }
    }
    if values.is_empty() {
        return Err(Error::Invalid(format!("{shown}: no samples")));
    }
    Series::new(name, resource, timestamps, values, native_per_unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    const BB: &str = "Timestamp [ms];\tCPU cores;\tx\n\
        1372629804;\t2;\t5000;\t100;\t2;\t8000000;\t1000000;\t0;\t0;\t0;\t0\n\
        1372630104;\t2;\t5000;\t300;\t6;\t8000000;\t1200000;\t0;\t0;\t0;\t0\n";

    #[test]
    fn bitbrains_columns_in_file_units() {
        let d = tempfile::tempdir().unwrap();
        let p = file(&d, "vm1.csv", BB);
        let cpu = read_trace_series(TraceFormat::Bitbrains, &p, Resource::Cpu).unwrap();
        assert_eq!(cpu.name, "vm1.csv");
        assert_eq!(cpu.values, vec![100.0, 300.0]);
        assert_eq!(cpu.timestamps, vec![1_372_629_804, 1_372_630_104]);
        assert!((cpu.native_per_unit - 1.0 / 2500.0).abs() < 1e-15);
        let mem = read_trace_series(TraceFormat::Bitbrains, &p, Resource::Memory).unwrap();
        assert_eq!(mem.values, vec![1_000_000.0, 1_200_000.0]);
        assert_eq!(mem.native_per_unit, 1024.0);
    }

    #[test]
    fn what_a_format_cannot_give_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = file(&d, "ec2_cpu_utilization_x.csv", "timestamp,value\n");
        let e = read_trace_series(TraceFormat::Nab, &p, Resource::Memory).unwrap_err();
        assert!(e.to_string().contains("nab traces carry no memory"), "{e}");
        let e = read_trace_series(TraceFormat::Nab, &p, Resource::Cpu).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("ec2_cpu_utilization_x.csv: no samples"),
            "{e}"
        );
        let q = file(&d, "ec2_network_in_1.csv", "timestamp,value\n");
        let e = read_trace_series(TraceFormat::Nab, &q, Resource::Cpu).unwrap_err();
        assert!(e.to_string().contains("holds net_rx_bytes, not CPU"), "{e}");
    }

    #[test]
    fn malformed_lines_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = file(&d, "vm", "12\n13\nx\n");
        let e = read_trace_series(TraceFormat::Planetlab, &p, Resource::Cpu).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("vm:3: CPU 'x' is not an integer percentage 0-100")
        );
        let ok = file(&d, "vm2", "12\n13\n");
        let s = read_trace_series(TraceFormat::Planetlab, &ok, Resource::Cpu).unwrap();
        assert_eq!(s.timestamps[1] - s.timestamps[0], 300);
        assert_eq!(s.native_per_unit, 0.01);
    }
}

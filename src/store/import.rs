//! Trace import from files and CSV export: the file side of the store.
//!
//! A file is read and parsed completely before anything is written, so a malformed line
//! (reported as `file:line: ...`) imports nothing. Samples are then written in batches of
//! [`DEFAULT_BATCH`], one transaction each; a kill loses at most the batch in flight, and a
//! re-run skips what is already there (one sample per subject and timestamp).

use super::trace::{self, Continuity, Fields, NabField, TraceFormat};
use super::{Store, SubjectId, SubjectKind, audit_in, insert_samples, self_err, subject_in};
use crate::model::UsageSample;
use crate::{Error, Result};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::Path;

/// Samples per transaction when importing.
pub const DEFAULT_BATCH: usize = 5000;

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// `bitbrains`, `nab`, `planetlab`, or `prae` (prae's own CSV export).
    pub format: &'static str,
    /// The kind of the subject the samples went to (`trace` for trace files).
    pub kind: SubjectKind,
    /// The subject's key.
    pub subject: String,
    /// Data rows in the file.
    pub rows: usize,
    /// Samples newly stored.
    pub inserted: usize,
    /// Rows not stored: samples the subject already had (a re-import) plus rows repeating a
    /// timestamp of the file (`continuity.duplicates`).
    pub skipped: usize,
    /// The fields the file measures.
    pub fields: Vec<&'static str>,
    /// Gaps, repeated and out-of-order timestamps, span; timestamps are kept as recorded.
    pub continuity: Continuity,
    /// Anything the operator should know (e.g. a NAB metric prae has no field for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Store {
    /// Imports one trace file (see [`super::trace`] for the mapping) in batches of
    /// [`DEFAULT_BATCH`] samples.
    pub fn import_trace(&mut self, format: TraceFormat, path: &Path) -> Result<ImportReport> {
        self.import_trace_with(format, path, DEFAULT_BATCH)
    }

    /// [`Store::import_trace`] with `batch` samples per transaction.
    pub fn import_trace_with(
        &mut self,
        format: TraceFormat,
        path: &Path,
        batch: usize,
    ) -> Result<ImportReport> {
        if batch == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        let shown = path.display().to_string();
        let text = read_text(path)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Invalid(format!("{shown}: not a file name")))?;
        let dir_name = path
            .parent()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        let parsed = parse_file(format, &text, &file_name, dir_name.as_deref(), &shown)?;
        let continuity = trace::continuity(
            parsed.samples.iter().map(|s| s.timestamp),
            format.period_s(),
        );
        let key = match format {
            TraceFormat::Planetlab => format!(
                "planetlab/{}/{file_name}",
                dir_name.as_deref().unwrap_or("-")
            ),
            _ => format!("{format}/{file_name}"),
        };
        super::validate_key(&key)?;

        let name = self.name.clone();
        let e = |e| self_err(&name, e);
        let tx = self.write_tx(false)?;
        let subject = subject_in(&tx, SubjectKind::Trace, &key).map_err(e)?;
        tx.commit().map_err(e)?;
        let mut inserted = 0;
        for chunk in parsed.samples.chunks(batch) {
            let tx = self.write_tx(false)?;
            inserted += insert_samples(&tx, subject, chunk, parsed.fields).map_err(e)?;
            tx.commit().map_err(e)?;
        }
        let report = ImportReport {
            format: format.as_str(),
            kind: SubjectKind::Trace,
            subject: key,
            rows: parsed.samples.len(),
            inserted,
            skipped: parsed.samples.len() - inserted,
            fields: field_names(parsed.fields),
            continuity,
            note: parsed.note,
        };
        let tx = self.write_tx(false)?;
        audit_in(
            &tx,
            super::now(),
            &super::current_user(),
            "history.import",
            &serde_json::json!({"subject": report.subject, "format": report.format,
                                "rows": report.rows, "inserted": report.inserted,
                                "gaps": report.continuity.gaps.len()}),
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(report)
    }

    /// Imports a file written by [`Store::export_csv`] (any number of subjects; empty cells
    /// stay unmeasured), `batch` samples per transaction; one report per subject, in file
    /// order. Re-importing adds nothing.
    pub fn import_csv(&mut self, path: &Path, batch: usize) -> Result<Vec<ImportReport>> {
        if batch == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        let shown = path.display().to_string();
        let text = read_text(path)?;
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim_end() == export_header() => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{shown}:1: not a prae history export (expected the header '{}')",
                    export_header()
                )));
            }
        }
        type Group = (SubjectKind, String, Vec<(UsageSample, Fields)>);
        let mut groups: Vec<Group> = Vec::new();
        for (n, l) in lines.filter(|(_, l)| !l.trim().is_empty()) {
            let (kind, key, sample, fields) = parse_export_row(l)
                .map_err(|m| Error::Invalid(format!("{shown}:{}: {m}", n + 1)))?;
            super::validate_key(&key)
                .map_err(|e| Error::Invalid(format!("{shown}:{}: {e}", n + 1)))?;
            match groups.last_mut() {
                Some((k, kk, v)) if *k == kind && *kk == key => v.push((sample, fields)),
                _ => groups.push((kind, key, vec![(sample, fields)])),
            }
        }
        let name = self.name.clone();
        let e = |e| self_err(&name, e);
        let mut reports = Vec::new();
        for (kind, key, rows) in groups {
            let period = rows
                .iter()
                .map(|(s, _)| s.interval_s)
                .filter(|&i| i > 0)
                .min()
                .unwrap_or(300);
            let continuity = trace::continuity(rows.iter().map(|(s, _)| s.timestamp), period);
            let tx = self.write_tx(false)?;
            let subject = subject_in(&tx, kind, &key).map_err(e)?;
            tx.commit().map_err(e)?;
            let mut inserted = 0;
            for chunk in rows.chunks(batch) {
                let tx = self.write_tx(false)?;
                for (s, f) in chunk {
                    inserted +=
                        insert_samples(&tx, subject, std::slice::from_ref(s), *f).map_err(e)?;
                }
                tx.commit().map_err(e)?;
            }
            let fields = rows
                .iter()
                .fold(Fields::default(), |acc, (_, f)| acc.union(*f));
            reports.push(ImportReport {
                format: "prae",
                kind,
                subject: key,
                rows: rows.len(),
                inserted,
                skipped: rows.len() - inserted,
                fields: field_names(fields),
                continuity,
                note: None,
            });
        }
        if reports.is_empty() {
            return Err(Error::Invalid(format!("{shown}: no samples")));
        }
        let tx = self.write_tx(false)?;
        audit_in(
            &tx,
            super::now(),
            &super::current_user(),
            "history.import",
            &serde_json::json!({"format": "prae", "subjects": reports.len(),
                                "rows": reports.iter().map(|r| r.rows).sum::<usize>(),
                                "inserted": reports.iter().map(|r| r.inserted).sum::<usize>()}),
        )
        .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(reports)
    }

    /// Writes the samples of one subject (or all) as CSV with [`export_header`]; NULL fields
    /// are empty cells. Returns the number of rows.
    pub fn export_csv(&self, subject: Option<SubjectId>, out: &mut dyn Write) -> Result<u64> {
        let io = |e| Error::io("CSV output", e);
        writeln!(out, "{}", export_header()).map_err(io)?;
        let mut st = self
            .conn
            .prepare(
                "SELECT s.kind, s.key, x.timestamp, x.interval_s, x.cpu_time_ns, x.cpu_percent, \
                 x.memory_used_kib, x.disk_read_bytes, x.disk_write_bytes, x.net_rx_bytes, \
                 x.net_tx_bytes FROM samples x JOIN subjects s ON s.id = x.subject_id \
                 WHERE ?1 IS NULL OR s.id = ?1 ORDER BY s.kind, s.key, x.timestamp",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st
            .query(rusqlite::params![subject.map(|s| s.0)])
            .map_err(|e| self.err(e))?;
        let mut n = 0;
        let mut line = String::new();
        while let Some(r) = rows.next().map_err(|e| self.err(e))? {
            let get = |i: usize| -> rusqlite::Result<String> {
                Ok(r.get::<_, Option<i64>>(i)?
                    .map(|v| v.to_string())
                    .unwrap_or_default())
            };
            let cells = (|| -> rusqlite::Result<Vec<String>> {
                Ok(vec![
                    r.get::<_, String>(0)?,
                    csv_quote(&r.get::<_, String>(1)?),
                    r.get::<_, i64>(2)?.to_string(),
                    r.get::<_, i64>(3)?.to_string(),
                    get(4)?,
                    r.get::<_, Option<f64>>(5)?
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                    get(6)?,
                    get(7)?,
                    get(8)?,
                    get(9)?,
                    get(10)?,
                ])
            })()
            .map_err(|e| self.err(e))?;
            line.clear();
            line.push_str(&cells.join(","));
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(io)?;
            n += 1;
        }
        out.flush().map_err(io)?;
        Ok(n)
    }
}

/// The header line of [`Store::export_csv`].
pub fn export_header() -> &'static str {
    "kind,key,timestamp,interval_s,cpu_time_ns,cpu_percent,memory_used_kib,disk_read_bytes,\
     disk_write_bytes,net_rx_bytes,net_tx_bytes"
}

/// Parses one data line of [`Store::export_csv`]: the subject's kind and key, and the sample
/// (empty cells read as 0 / `None`).
pub fn parse_export_line(
    line: &str,
) -> std::result::Result<(SubjectKind, String, UsageSample), String> {
    parse_export_row(line).map(|(k, key, s, _)| (k, key, s))
}

/// [`parse_export_line`] with the fields the row measures (its non-empty cells).
pub fn parse_export_row(
    line: &str,
) -> std::result::Result<(SubjectKind, String, UsageSample, Fields), String> {
    let cells = split_csv(line)?;
    if cells.len() != 11 {
        return Err(format!("expected 11 columns, found {}", cells.len()));
    }
    let kind: SubjectKind = cells[0].parse().map_err(|e: Error| e.to_string())?;
    const NAMES: [&str; 11] = [
        "kind",
        "key",
        "timestamp",
        "interval_s",
        "cpu_time_ns",
        "cpu_percent",
        "memory_used_kib",
        "disk_read_bytes",
        "disk_write_bytes",
        "net_rx_bytes",
        "net_tx_bytes",
    ];
    let mut fields = Fields::default();
    let mut int = |i: usize, f: Fields| -> std::result::Result<u64, String> {
        if cells[i].is_empty() {
            return Ok(0);
        }
        fields = fields.union(f);
        cells[i]
            .parse()
            .map_err(|_| format!("{} '{}' is not a count", NAMES[i], cells[i]))
    };
    let cpu_time_ns = int(4, Fields::CPU_TIME)?;
    let memory_used_kib = int(6, Fields::MEMORY)?;
    let disk_read_bytes = int(7, Fields::DISK_READ)?;
    let disk_write_bytes = int(8, Fields::DISK_WRITE)?;
    let net_rx_bytes = int(9, Fields::NET_RX)?;
    let net_tx_bytes = int(10, Fields::NET_TX)?;
    let cpu_percent = if cells[5].is_empty() {
        None
    } else {
        fields = fields.union(Fields::CPU_PERCENT);
        match cells[5].parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => return Err(format!("cpu_percent '{}' is not a percentage", cells[5])),
        }
    };
    let sample = UsageSample {
        timestamp: cells[2]
            .parse()
            .map_err(|_| format!("timestamp '{}' is not an integer", cells[2]))?,
        interval_s: cells[3]
            .parse()
            .map_err(|_| format!("interval_s '{}' is not an integer", cells[3]))?,
        cpu_time_ns,
        cpu_percent,
        memory_used_kib,
        disk_read_bytes,
        disk_write_bytes,
        net_rx_bytes,
        net_tx_bytes,
    };
    Ok((kind, cells[1].clone(), sample, fields))
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn split_csv(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => out.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted cell".into());
    }
    out.push(cur);
    Ok(out)
}

fn field_names(f: Fields) -> Vec<&'static str> {
    [
        (Fields::CPU_TIME, "cpu_time_ns"),
        (Fields::CPU_PERCENT, "cpu_percent"),
        (Fields::MEMORY, "memory_used_kib"),
        (Fields::DISK_READ, "disk_read_bytes"),
        (Fields::DISK_WRITE, "disk_write_bytes"),
        (Fields::NET_RX, "net_rx_bytes"),
        (Fields::NET_TX, "net_tx_bytes"),
    ]
    .into_iter()
    .filter(|(b, _)| f.contains(*b))
    .map(|(_, n)| n)
    .collect()
}

/// A file's text; gzip'd files (by their magic bytes) are decompressed.
pub(super) fn read_text(path: &Path) -> Result<String> {
    let shown = path.display().to_string();
    let raw = std::fs::read(path).map_err(|e| Error::io(&shown, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Invalid(format!("{shown}: not a readable gzip file ({e})")))?;
        out
    } else {
        raw
    };
    String::from_utf8(bytes).map_err(|e| {
        Error::Invalid(format!(
            "{shown}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

struct Parsed {
    samples: Vec<UsageSample>,
    fields: Fields,
    note: Option<String>,
}

/// Parses a whole file; errors name `shown:line`.
fn parse_file(
    format: TraceFormat,
    text: &str,
    file_name: &str,
    dir_name: Option<&str>,
    shown: &str,
) -> Result<Parsed> {
    let at = |n: usize, m: String| Error::Invalid(format!("{shown}:{}: {m}", n + 1));
    let period = format.period_s();
    let lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut samples = Vec::new();
    let mut note = None;
    let fields = match format {
        TraceFormat::Bitbrains => {
            for (n, l) in lines {
                if n == 0 && trace::is_bitbrains_header(l) {
                    continue;
                }
                let row = trace::parse_bitbrains_line(l).map_err(|m| at(n, m))?;
                samples.push(row.to_sample(period));
            }
            trace::BITBRAINS_FIELDS
        }
        TraceFormat::Nab => {
            let (field, known) = NabField::for_file_name(file_name);
            if !known {
                note = Some(format!(
                    "the file name names no metric prae stores; values taken as {}",
                    field.as_str()
                ));
            }
            for (n, l) in lines {
                if n == 0 && trace::is_nab_header(l) {
                    continue;
                }
                let (ts, v) = trace::parse_nab_line(l).map_err(|m| at(n, m))?;
                samples.push(field.to_sample(ts, v, period));
            }
            field.fields()
        }
        TraceFormat::Planetlab => {
            let epoch = trace::planetlab_epoch(dir_name);
            for (i, (n, l)) in lines.enumerate() {
                let v = trace::parse_planetlab_line(l).map_err(|m| at(n, m))?;
                samples.push(trace::planetlab_sample(epoch, i, v));
            }
            trace::PLANETLAB_FIELDS
        }
    };
    if samples.is_empty() {
        return Err(Error::Invalid(format!("{shown}: no samples")));
    }
    Ok(Parsed {
        samples,
        fields,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_file_names_the_line() {
        let e = parse_file(
            TraceFormat::Nab,
            "timestamp,value\n2014-02-14 14:30:00,1\n2014-02-14 14:35:00,x\n",
            "ec2_cpu_utilization_x.csv",
            None,
            "f.csv",
        )
        .err()
        .unwrap()
        .to_string();
        assert_eq!(e, "f.csv:3: value 'x' is not a non-negative number");
        let e = parse_file(TraceFormat::Planetlab, "\n\n", "vm", None, "vm")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(e, "vm: no samples");
    }

    #[test]
    fn unknown_nab_metric_is_noted() {
        let p = parse_file(
            TraceFormat::Nab,
            "timestamp,value\n2014-02-14 14:30:00,17\n",
            "elb_request_count_8c0756.csv",
            None,
            "f",
        )
        .unwrap();
        assert!(p.note.unwrap().contains("cpu_percent"));
        assert_eq!(p.samples[0].cpu_percent, Some(17.0));
    }

    #[test]
    fn csv_cells_round_trip() {
        for key in ["plain", "a,b", "say \"hi\"", ""] {
            let line = format!("trace,{},1,300,,,,,,,", csv_quote(key));
            let (_, k, s) = parse_export_line(&line).unwrap();
            assert_eq!(k, key);
            assert_eq!((s.timestamp, s.interval_s, s.cpu_percent), (1, 300, None));
        }
        assert!(parse_export_line("trace,\"open,1,300,,,,,,,").is_err());
        assert!(parse_export_line("trace,k,1,300").is_err());
    }
}

//! Trace formats: pure line parsers and the mapping of each format onto [`UsageSample`].
//!
//! Nothing here touches a file; `Store::import_trace` reads the files and hands lines over. Every
//! parser returns a one-line error without a location; the caller prefixes `file:line`.
//!
//! # How traces map onto samples
//! Every trace value is an aggregate over the format's sampling period ([`TraceFormat::period_s`],
//! 300 s for all three), so every sample gets `interval_s = 300` and its timestamp as recorded.
//! "KB" in Bitbrains is taken as KiB (1024 bytes), as in the VMware counters it comes from.
//!
//! | format | field in the file | sample field |
//! |---|---|---|
//! | bitbrains | `CPU usage [MHz]` / (`CPU capacity [MHz]` / `CPU cores`) = cores busy | `cpu_time_ns` = cores busy x 300 s |
//! | bitbrains | `CPU usage [%]` | `cpu_percent` |
//! | bitbrains | `Memory usage [KB]` | `memory_used_kib` |
//! | bitbrains | disk read/write, network received/transmitted (`KB/s`) | `disk_*_bytes`, `net_*_bytes` = rate x 1024 x 300 s |
//! | nab `*cpu_utilization*` (and any unknown name) | value (%) | `cpu_percent` |
//! | nab `*disk_write_bytes*` | value (bytes in the 5-minute period, CloudWatch's sum) | `disk_write_bytes` |
//! | nab `*network_in*` / `*NetworkIn*` | value (bytes in the period) | `net_rx_bytes` |
//! | planetlab | one integer CPU % per line | `cpu_percent` |
//!
//! Fields a format does not carry are stored as NULL (see [`Fields`]), never as zero, so a
//! series of an unmeasured field is empty rather than flat.
//!
//! Timestamps: Bitbrains gives Unix seconds (its header says ms; values above 10^11 are taken as
//! ms). NAB gives `YYYY-MM-DD HH:MM:SS` without a zone, read as UTC. PlanetLab has none: sample
//! `i` (from 0) is stamped `epoch + 300 i`, the epoch being midnight UTC of the day its directory
//! is named after (`20110303`), or 2011-03-03 when the directory name is not a date.

use crate::model::UsageSample;
use std::fmt;
use std::str::FromStr;

/// A trace file format `prae history import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceFormat {
    /// GWA-T-12 Bitbrains: `;`+tab separated CSV with a header, gzip'd or plain.
    Bitbrains,
    /// Numenta Anomaly Benchmark: `timestamp,value` CSV with a header.
    Nab,
    /// CoMon/PlanetLab (as shipped with CloudSim): one CPU % per line.
    Planetlab,
}

impl TraceFormat {
    pub const ALL: [TraceFormat; 3] = [
        TraceFormat::Bitbrains,
        TraceFormat::Nab,
        TraceFormat::Planetlab,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TraceFormat::Bitbrains => "bitbrains",
            TraceFormat::Nab => "nab",
            TraceFormat::Planetlab => "planetlab",
        }
    }

    /// The sampling period every value of the format aggregates over, seconds.
    pub fn period_s(self) -> u32 {
        300
    }
}

impl fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TraceFormat {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                crate::Error::Invalid(format!(
                    "unknown trace format '{s}' (expected bitbrains, nab or planetlab)"
                ))
            })
    }
}

/// Which sample fields a source measures; the others are stored as NULL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fields(u8);

impl Fields {
    pub const CPU_TIME: Fields = Fields(1);
    pub const CPU_PERCENT: Fields = Fields(1 << 1);
    pub const MEMORY: Fields = Fields(1 << 2);
    pub const DISK_READ: Fields = Fields(1 << 3);
    pub const DISK_WRITE: Fields = Fields(1 << 4);
    pub const NET_RX: Fields = Fields(1 << 5);
    pub const NET_TX: Fields = Fields(1 << 6);
    pub const ALL: Fields = Fields(0b111_1111);

    pub fn contains(self, other: Fields) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn union(self, other: Fields) -> Fields {
        Fields(self.0 | other.0)
    }
    pub fn without(self, other: Fields) -> Fields {
        Fields(self.0 & !other.0)
    }
}

/// One data row of a Bitbrains file, in the file's own units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BitbrainsRow {
    /// Unix seconds.
    pub timestamp: i64,
    pub cores: f64,
    pub capacity_mhz: f64,
    pub usage_mhz: f64,
    pub usage_percent: f64,
    pub memory_provisioned_kb: f64,
    pub memory_usage_kb: f64,
    pub disk_read_kbps: f64,
    pub disk_write_kbps: f64,
    pub net_rx_kbps: f64,
    pub net_tx_kbps: f64,
}

/// The fields a Bitbrains sample carries.
pub const BITBRAINS_FIELDS: Fields = Fields::ALL;

/// Whether a Bitbrains line is its header.
pub fn is_bitbrains_header(line: &str) -> bool {
    line.trim_start().starts_with("Timestamp")
}

/// Parses one Bitbrains data line (`;`+tab separated, 11 columns).
pub fn parse_bitbrains_line(line: &str) -> Result<BitbrainsRow, String> {
    let cols: Vec<&str> = line.split(';').map(str::trim).collect();
    if cols.len() != 11 {
        return Err(format!(
            "expected 11 ';'-separated columns, found {}",
            cols.len()
        ));
    }
    const NAMES: [&str; 11] = [
        "timestamp",
        "CPU cores",
        "CPU capacity",
        "CPU usage [MHz]",
        "CPU usage [%]",
        "memory provisioned",
        "memory usage",
        "disk read",
        "disk write",
        "network received",
        "network transmitted",
    ];
    let mut v = [0.0f64; 11];
    for (i, c) in cols.iter().enumerate() {
        v[i] = non_negative(c, NAMES[i])?;
    }
    let ts = if v[0] > 1e11 { v[0] / 1000.0 } else { v[0] };
    if ts.fract() != 0.0 || ts > 1e11 {
        return Err(format!("timestamp '{}' is not whole Unix seconds", cols[0]));
    }
    Ok(BitbrainsRow {
        timestamp: ts as i64,
        cores: v[1],
        capacity_mhz: v[2],
        usage_mhz: v[3],
        usage_percent: v[4],
        memory_provisioned_kb: v[5],
        memory_usage_kb: v[6],
        disk_read_kbps: v[7],
        disk_write_kbps: v[8],
        net_rx_kbps: v[9],
        net_tx_kbps: v[10],
    })
}

impl BitbrainsRow {
    /// Cores busy on average during the sample (MHz used over MHz per core; the percentage
    /// times the core count when the capacity is missing).
    pub fn cores_busy(&self) -> f64 {
        if self.capacity_mhz > 0.0 && self.cores > 0.0 {
            self.usage_mhz / (self.capacity_mhz / self.cores)
        } else {
            self.cores * self.usage_percent / 100.0
        }
    }

    /// The sample this row stands for, over an interval of `interval_s` seconds.
    pub fn to_sample(&self, interval_s: u32) -> UsageSample {
        let secs = f64::from(interval_s);
        let bytes = |kbps: f64| round_u64(kbps * 1024.0 * secs);
        UsageSample {
            timestamp: self.timestamp,
            interval_s,
            cpu_time_ns: round_u64(self.cores_busy() * secs * 1e9),
            cpu_percent: Some(self.usage_percent),
            memory_used_kib: round_u64(self.memory_usage_kb),
            disk_read_bytes: bytes(self.disk_read_kbps),
            disk_write_bytes: bytes(self.disk_write_kbps),
            net_rx_bytes: bytes(self.net_rx_kbps),
            net_tx_bytes: bytes(self.net_tx_kbps),
        }
    }
}

/// The sample field a NAB file's values go to, chosen by its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NabField {
    CpuPercent,
    DiskWriteBytes,
    NetRxBytes,
}

impl NabField {
    /// The field for a file name, and whether the name said so (`false`: unknown metric,
    /// stored as CPU %).
    pub fn for_file_name(name: &str) -> (NabField, bool) {
        let n = name.to_ascii_lowercase();
        if n.contains("cpu_utilization") {
            (NabField::CpuPercent, true)
        } else if n.contains("disk_write_bytes") {
            (NabField::DiskWriteBytes, true)
        } else if n.contains("network_in") || n.contains("networkin") {
            (NabField::NetRxBytes, true)
        } else {
            (NabField::CpuPercent, false)
        }
    }

    pub fn fields(self) -> Fields {
        match self {
            NabField::CpuPercent => Fields::CPU_PERCENT,
            NabField::DiskWriteBytes => Fields::DISK_WRITE,
            NabField::NetRxBytes => Fields::NET_RX,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NabField::CpuPercent => "cpu_percent",
            NabField::DiskWriteBytes => "disk_write_bytes",
            NabField::NetRxBytes => "net_rx_bytes",
        }
    }

    /// The sample for one `(timestamp, value)` row.
    pub fn to_sample(self, timestamp: i64, value: f64, interval_s: u32) -> UsageSample {
        let mut s = UsageSample {
            timestamp,
            interval_s,
            ..UsageSample::default()
        };
        match self {
            NabField::CpuPercent => s.cpu_percent = Some(value),
            NabField::DiskWriteBytes => s.disk_write_bytes = round_u64(value),
            NabField::NetRxBytes => s.net_rx_bytes = round_u64(value),
        }
        s
    }
}

/// Whether a NAB line is its header.
pub fn is_nab_header(line: &str) -> bool {
    line.trim_start().starts_with("timestamp")
}

/// Parses one NAB data line: `YYYY-MM-DD HH:MM:SS,value` (UTC).
pub fn parse_nab_line(line: &str) -> Result<(i64, f64), String> {
    let (ts, value) = line
        .trim()
        .split_once(',')
        .ok_or_else(|| format!("expected 'timestamp,value', found '{}'", line.trim()))?;
    Ok((
        parse_datetime(ts.trim())?,
        non_negative(value.trim(), "value")?,
    ))
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`) as Unix seconds, UTC.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("timestamp '{s}' is not YYYY-MM-DD HH:MM:SS");
    let (date, time) = s.split_once([' ', 'T']).ok_or_else(bad)?;
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 || d[0].len() != 4 {
        return Err(bad());
    }
    let num = |x: &str| -> Result<i64, String> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        x.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, da) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (h, mi, se) = (num(t[0])?, num(t[1])?, num(t[2])?);
    if !(1..=12).contains(&mo)
        || !(1..=days_in_month(y, mo)).contains(&da)
        || h > 23
        || mi > 59
        || se > 60
    {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60 + se)
}

/// The fields a PlanetLab sample carries.
pub const PLANETLAB_FIELDS: Fields = Fields::CPU_PERCENT;

/// The epoch of PlanetLab files whose directory is not named after a date: 2011-03-03 00:00 UTC.
pub const PLANETLAB_DEFAULT_EPOCH: i64 = 1_299_110_400;

/// The epoch of a PlanetLab file in a directory named `YYYYMMDD`: midnight UTC of that day.
pub fn planetlab_epoch(dir_name: Option<&str>) -> i64 {
    let Some(d) = dir_name.filter(|d| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit())) else {
        return PLANETLAB_DEFAULT_EPOCH;
    };
    let (y, m, day) = (
        d[..4].parse::<i64>().unwrap_or(0),
        d[4..6].parse::<i64>().unwrap_or(0),
        d[6..].parse::<i64>().unwrap_or(0),
    );
    if (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&day) {
        days_from_civil(y, m, day) * 86_400
    } else {
        PLANETLAB_DEFAULT_EPOCH
    }
}

/// Parses one PlanetLab line: an integer CPU percentage, 0 to 100.
pub fn parse_planetlab_line(line: &str) -> Result<f64, String> {
    let t = line.trim();
    match t.parse::<u32>() {
        Ok(v) if v <= 100 => Ok(f64::from(v)),
        _ => Err(format!("CPU '{t}' is not an integer percentage 0-100")),
    }
}

/// The PlanetLab sample for line `index` (from 0).
pub fn planetlab_sample(epoch: i64, index: usize, percent: f64) -> UsageSample {
    let period = TraceFormat::Planetlab.period_s();
    UsageSample {
        timestamp: epoch + i64::from(period) * index as i64,
        interval_s: period,
        cpu_percent: Some(percent),
        ..UsageSample::default()
    }
}

/// A stretch with no samples: consecutive timestamps further apart than 1.5 periods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Gap {
    /// The last timestamp before the gap.
    pub after: i64,
    /// The first timestamp after it.
    pub before: i64,
}

impl Gap {
    pub fn seconds(&self) -> i64 {
        self.before - self.after
    }
}

/// What a sequence of timestamps looks like: gaps, repeats, steps backwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Continuity {
    pub gaps: Vec<Gap>,
    /// Rows whose timestamp an earlier row already had (only the first is kept).
    pub duplicates: usize,
    /// Rows stamped earlier than the row before them.
    pub out_of_order: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

/// Checks timestamps in file order against a sampling period: steps above 1.5 periods are gaps.
pub fn continuity(timestamps: impl IntoIterator<Item = i64>, period_s: u32) -> Continuity {
    let mut c = Continuity::default();
    let mut seen = std::collections::HashSet::new();
    let mut prev: Option<i64> = None;
    let limit = i64::from(period_s) * 3 / 2;
    for t in timestamps {
        if !seen.insert(t) {
            c.duplicates += 1;
        }
        if let Some(p) = prev {
            if t < p {
                c.out_of_order += 1;
            } else if t - p > limit {
                c.gaps.push(Gap {
                    after: p,
                    before: t,
                });
            }
        }
        c.first = Some(c.first.map_or(t, |f| f.min(t)));
        c.last = Some(c.last.map_or(t, |l| l.max(t)));
        prev = Some(t);
    }
    c
}

fn non_negative(s: &str, what: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{what} '{s}' is not a non-negative number")),
    }
}

fn round_u64(v: f64) -> u64 {
    // Values are validated finite and non-negative; `as` saturates the absurdly large.
    v.round() as u64
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_utc(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BB: &str = "1372629804;\t2;\t5851.9989;\t87.7799835;\t1.5;\t8218624.0;\t1034592.8;\t160.86666666666667;\t21.733333333333334;\t0.26666666666666666;\t1.4666666666666666";

    #[test]
    fn bitbrains_line_parses_in_file_units() {
        let r = parse_bitbrains_line(BB).unwrap();
        assert_eq!(r.timestamp, 1_372_629_804);
        assert_eq!(r.cores, 2.0);
        assert!((r.usage_mhz - 87.7799835).abs() < 1e-9);
        assert!((r.memory_usage_kb - 1_034_592.8).abs() < 1e-6);
        assert!(is_bitbrains_header("Timestamp [ms];\tCPU cores;\t..."));
        assert!(!is_bitbrains_header(BB));
    }

    #[test]
    fn bitbrains_sample_converts_rates_over_the_interval() {
        let s = parse_bitbrains_line(BB).unwrap().to_sample(300);
        assert_eq!(s.interval_s, 300);
        // 87.78 MHz of 2 x 2926 MHz cores = 0.030 cores busy -> 0.030 x 300 s of CPU time.
        let cores: f64 = 87.7799835 / (5851.9989 / 2.0);
        assert_eq!(s.cpu_time_ns, (cores * 300.0 * 1e9).round() as u64);
        assert_eq!(s.cpu_percent, Some(1.5));
        assert_eq!(s.memory_used_kib, 1_034_593);
        assert_eq!(
            s.disk_read_bytes,
            (160.86666666666667f64 * 1024.0 * 300.0).round() as u64
        );
        assert_eq!(
            s.net_tx_bytes,
            (1.4666666666666666f64 * 1024.0 * 300.0).round() as u64
        );
    }

    #[test]
    fn bitbrains_ms_timestamps_and_bad_lines() {
        let ms = BB.replacen("1372629804", "1372629804000", 1);
        assert_eq!(parse_bitbrains_line(&ms).unwrap().timestamp, 1_372_629_804);
        let e = parse_bitbrains_line("1;\t2;\t3").unwrap_err();
        assert!(e.contains("found 3"), "{e}");
        let e = parse_bitbrains_line(&BB.replacen("87.7799835", "-1", 1)).unwrap_err();
        assert!(e.contains("CPU usage [MHz] '-1'"), "{e}");
        let e = parse_bitbrains_line(&BB.replacen("1.5", "NaN", 1)).unwrap_err();
        assert!(e.contains("'NaN'"), "{e}");
    }

    #[test]
    fn bitbrains_without_capacity_uses_the_percentage() {
        let mut r = parse_bitbrains_line(BB).unwrap();
        r.capacity_mhz = 0.0;
        assert!((r.cores_busy() - 0.03).abs() < 1e-12);
    }

    #[test]
    fn nab_lines_and_dates() {
        assert_eq!(
            parse_nab_line("2014-02-14 14:30:00,0.132").unwrap(),
            (1_392_388_200, 0.132)
        );
        assert_eq!(parse_datetime("1970-01-01 00:00:00").unwrap(), 0);
        assert_eq!(parse_datetime("2000-02-29T12:00:00").unwrap(), 951_825_600);
        assert!(parse_datetime("2014-02-30 00:00:00").is_err());
        assert!(parse_datetime("2014-02-14").is_err());
        assert!(parse_datetime("2014-02-14 25:00:00").is_err());
        assert!(parse_nab_line("2014-02-14 14:30:00").is_err());
        let e = parse_nab_line("2014-02-14 14:30:00,abc").unwrap_err();
        assert!(e.contains("value 'abc'"), "{e}");
        assert!(is_nab_header("timestamp,value"));
    }

    #[test]
    fn nab_field_follows_the_file_name() {
        use NabField::*;
        assert_eq!(
            NabField::for_file_name("ec2_cpu_utilization_24ae8d.csv"),
            (CpuPercent, true)
        );
        assert_eq!(
            NabField::for_file_name("rds_cpu_utilization_cc0c53.csv"),
            (CpuPercent, true)
        );
        assert_eq!(
            NabField::for_file_name("ec2_disk_write_bytes_1ef3de.csv"),
            (DiskWriteBytes, true)
        );
        assert_eq!(
            NabField::for_file_name("ec2_network_in_257a54.csv"),
            (NetRxBytes, true)
        );
        assert_eq!(
            NabField::for_file_name("iio_us-east-1_i-a2eb1cd9_NetworkIn.csv"),
            (NetRxBytes, true)
        );
        assert_eq!(
            NabField::for_file_name("elb_request_count_8c0756.csv"),
            (CpuPercent, false)
        );
        let s = DiskWriteBytes.to_sample(10, 2.5e8, 300);
        assert_eq!((s.disk_write_bytes, s.cpu_percent), (250_000_000, None));
    }

    #[test]
    fn planetlab_lines_and_epoch() {
        assert_eq!(parse_planetlab_line("42\n").unwrap(), 42.0);
        assert!(parse_planetlab_line("101").is_err());
        assert!(parse_planetlab_line("4.5").is_err());
        assert!(parse_planetlab_line("").is_err());
        assert_eq!(planetlab_epoch(Some("20110303")), PLANETLAB_DEFAULT_EPOCH);
        assert_eq!(
            planetlab_epoch(Some("20110304")),
            PLANETLAB_DEFAULT_EPOCH + 86_400
        );
        assert_eq!(planetlab_epoch(Some("planetlab")), PLANETLAB_DEFAULT_EPOCH);
        assert_eq!(planetlab_epoch(Some("20111399")), PLANETLAB_DEFAULT_EPOCH);
        let s = planetlab_sample(100, 2, 7.0);
        assert_eq!(
            (s.timestamp, s.interval_s, s.cpu_percent),
            (700, 300, Some(7.0))
        );
    }

    #[test]
    fn continuity_reports_gaps_duplicates_and_disorder() {
        let c = continuity([0, 300, 601, 1200, 1200, 1500, 1400, 2400], 300);
        assert_eq!(
            c.gaps,
            vec![
                Gap {
                    after: 601,
                    before: 1200
                },
                Gap {
                    after: 1400,
                    before: 2400
                },
            ]
        );
        assert_eq!(c.gaps[1].seconds(), 1000);
        assert_eq!(c.duplicates, 1);
        assert_eq!(c.out_of_order, 1);
        assert_eq!((c.first, c.last), (Some(0), Some(2400)));
        let none = continuity(std::iter::empty(), 300);
        assert_eq!(none, Continuity::default());
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2011, 3, 3), 15_036);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for d in [-1000, -1, 0, 15_036, 16_130, 100_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(format_utc(1_392_388_200), "2014-02-14 14:30:00");
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59");
    }
}

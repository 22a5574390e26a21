//! Command analysis: what a command line says about the resources it will use, and a model
//! that turns that, plus earlier runs of similar commands, into a prediction with uncertainty.
//!
//! Pure: argument vectors and observations in, features and predictions out.
//!
//! # Features
//! [`analyze`] reads an argument vector (never a shell string) into [`Features`]: the program's
//! base name, its subcommand (the first non-option word for programs that have one, e.g.
//! `make`, `apt-get`, `git`), the parallelism it asks for (`-j N`, `-jN`, `--jobs N`,
//! `--jobs=N`, `-P N` of xargs, `--cpu N` of stress), the largest size it names (`300M`,
//! `bs=1G`, `--vm-bytes=256MiB`; a size needs a unit suffix), paths (`/...`, `./...`) and
//! hosts (`host:port`, `scheme://host/...`, `user@host`).
//!
//! # Model
//! [`Model::predict`] is a weighted nearest-neighbours regression over observations (the
//! calibration table plus the history of earlier runs). The distance between two commands is 0
//! for the same program, subcommand, jobs and size, grows with the log-ratio of jobs and size,
//! and is large for another subcommand and larger for another program. Each neighbour's usage is
//! first *scaled* to the query: CPU by the ratio of jobs (one job where a neighbour names
//! none), memory and disk by the ratio of sizes
//! (when both name one). The prediction is the weighted mean of the scaled usages; its
//! uncertainty is their weighted standard deviation plus a term that grows with the distance to
//! the nearest neighbour (a command far from everything seen is uncertain). A program never seen
//! gets the table's all-commands prior with a wide standard deviation.
//!
//! A [`Tier`] turns a prediction into an amount to allocate: `mean + z * sd` with z = 0 (low,
//! P50), 1.2816 (medium, P90), 2.3263 (high, P99) under a normal approximation.

use crate::model::Tier;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What a command line says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// Base name of argv[0] (`/usr/bin/make` -> `make`).
    pub program: String,
    /// First non-option argument of programs with subcommands.
    pub subcommand: Option<String>,
    /// Parallelism asked for (`-j N`, `-P N`, `--jobs N`, `--cpu N`).
    pub jobs: Option<u32>,
    /// The largest size named (with a unit suffix), KiB.
    pub size_kib: Option<u64>,
    /// Absolute or explicitly relative paths among the arguments.
    pub paths: Vec<String>,
    /// Hosts the command names (URLs, `host:port`, `user@host`).
    pub hosts: Vec<String>,
    /// Number of arguments after the program.
    pub argc: usize,
}

/// Programs whose first non-option argument selects what they do.
const WITH_SUBCOMMAND: &[&str] = &[
    "apt",
    "apt-get",
    "cargo",
    "docker",
    "dpkg",
    "git",
    "go",
    "make",
    "npm",
    "pip",
    "pip3",
    "podman",
    "systemctl",
    "tar",
];

/// Reads an argument vector. Errors on an empty vector or an empty program.
pub fn analyze(argv: &[String]) -> Result<Features> {
    let Some(first) = argv.first() else {
        return Err(Error::Invalid(
            "no command given (expected -- PROGRAM ARGS...)".into(),
        ));
    };
    let program = first.rsplit('/').next().unwrap_or(first).to_string();
    if program.is_empty() || first.contains('\0') {
        return Err(Error::Invalid(format!("'{first}' is not a program name")));
    }
    let args = &argv[1..];
    if let Some(bad) = args.iter().find(|a| a.contains('\0')) {
        return Err(Error::Invalid(format!(
            "argument {bad:?} contains a NUL byte"
        )));
    }
    let subcommand = if WITH_SUBCOMMAND.contains(&program.as_str()) {
        args.iter()
            .find(|a| !a.starts_with('-') && !a.contains('='))
            .cloned()
    } else {
        None
    };
    let mut jobs = None;
    let mut size_kib: Option<u64> = None;
    let mut paths = Vec::new();
    let mut hosts = Vec::new();
    let jobs_flags: &[&str] = match program.as_str() {
        "xargs" | "parallel" => &["-P", "--max-procs", "-j", "--jobs"],
        "stress" | "stress-ng" => &["-c", "--cpu"],
        _ => &["-j", "--jobs"],
    };
    for (i, a) in args.iter().enumerate() {
        let next = args.get(i + 1);
        for flag in jobs_flags {
            let value = if a == flag {
                next.map(String::as_str)
            } else if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
                Some(v)
            } else if flag.len() == 2 && !flag.starts_with("--") {
                a.strip_prefix(flag).filter(|v| !v.is_empty())
            } else {
                None
            };
            if let Some(n) = value.and_then(|v| v.parse::<u32>().ok()).filter(|&n| n > 0) {
                jobs = Some(jobs.map_or(n, |j: u32| j.max(n)));
            }
        }
        // A size is the whole argument or what follows `=`.
        let tail = a.rsplit('=').next().unwrap_or(a);
        if let Some(kib) = parse_size(tail) {
            size_kib = Some(size_kib.map_or(kib, |s| s.max(kib)));
        }
        if let Some(h) = host_of(a) {
            hosts.push(h);
        } else if a.starts_with('/') || a.starts_with("./") || a.starts_with("../") {
            paths.push(a.clone());
        } else if let Some((_, p)) = a.split_once('=')
            && p.starts_with('/')
        {
            paths.push(p.to_string());
        }
    }
    Ok(Features {
        program,
        subcommand,
        jobs,
        size_kib,
        paths,
        hosts,
        argc: args.len(),
    })
}

/// `300M`, `1G`, `512KiB`, `2GB`, `64k` -> KiB. A bare number is not a size.
pub fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    if split == 0 {
        return None;
    }
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let lower = unit.to_ascii_lowercase();
    let (power, rest) = match lower.split_at(1) {
        ("k", r) => (1, r),
        ("m", r) => (2, r),
        ("g", r) => (3, r),
        ("t", r) => (4, r),
        _ => return None,
    };
    let base: u64 = match rest {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return None,
    };
    let bytes = n.checked_mul(base.checked_pow(power)?)?;
    Some(bytes.div_ceil(1024))
}

/// The host an argument names, if any: `scheme://host[:port]/...`, `user@host[:path]`,
/// `host:port`.
fn host_of(a: &str) -> Option<String> {
    if let Some((scheme, rest)) = a.split_once("://") {
        if scheme.is_empty() || scheme == "file" {
            return None;
        }
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = host.split(':').next().unwrap_or(host);
        return (!host.is_empty()).then(|| host.to_string());
    }
    if a.starts_with('-') || a.starts_with('/') || a.contains('=') {
        return None;
    }
    if let Some((user, rest)) = a.split_once('@')
        && !user.is_empty()
    {
        let host = rest.split(':').next().unwrap_or(rest);
        return is_hostname(host).then(|| host.to_string());
    }
    if let Some((host, port)) = a.split_once(':')
        && port.parse::<u16>().is_ok()
        && is_hostname(host)
    {
        return Some(host.to_string());
    }
    None
}

fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !h.starts_with('-')
        && h.chars().any(|c| c.is_ascii_alphabetic())
}

/// What a command used (or is predicted to use). CPU in cores busy on average; memory as the
/// peak the command added to the guest's use; disk and network in bytes over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub cpu_cores: f64,
    pub memory_kib: f64,
    pub disk_read_bytes: f64,
    pub disk_write_bytes: f64,
    pub net_bytes: f64,
    pub duration_s: f64,
}

impl Usage {
    fn fields(&self) -> [f64; 6] {
        [
            self.cpu_cores,
            self.memory_kib,
            self.disk_read_bytes,
            self.disk_write_bytes,
            self.net_bytes,
            self.duration_s,
        ]
    }
    fn from_fields(f: [f64; 6]) -> Usage {
        Usage {
            cpu_cores: f[0],
            memory_kib: f[1],
            disk_read_bytes: f[2],
            disk_write_bytes: f[3],
            net_bytes: f[4],
            duration_s: f[5],
        }
    }
    /// Names of the fields, in [`Usage`] order (for tables and benchmarks).
    pub const NAMES: [&'static str; 6] = [
        "cpu_cores",
        "memory_kib",
        "disk_read_bytes",
        "disk_write_bytes",
        "net_bytes",
        "duration_s",
    ];
    /// Field `i` in [`Usage::NAMES`] order.
    pub fn get(&self, i: usize) -> f64 {
        self.fields()[i]
    }
}

/// Something a command needs besides its own VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Dependency {
    /// Network access (the command names a host).
    Network(String),
    /// Another domain (named on the command line as a host that is a domain's name).
    Domain(String),
}

/// One earlier run: what the command was and what it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub features: Features,
    pub usage: Usage,
    /// Where it came from (`calibration`, `history`).
    pub source: String,
}

/// A prediction: mean and standard deviation per resource, and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub mean: Usage,
    pub sd: Usage,
    /// How many observations contributed, and the distance to the nearest.
    pub neighbours: usize,
    pub nearest_distance: f64,
    pub dependencies: Vec<Dependency>,
    /// One line: which evidence produced it.
    pub reason: String,
}

impl Prediction {
    /// What to allocate at `tier`: `mean + z * sd` per field, never negative.
    pub fn at_tier(&self, tier: Tier) -> Usage {
        let z = tier_z(tier);
        let m = self.mean.fields();
        let s = self.sd.fields();
        let mut out = [0.0; 6];
        for i in 0..6 {
            out[i] = (m[i] + z * s[i]).max(0.0);
        }
        Usage::from_fields(out)
    }
}

/// The standard normal quantile of a tier: P50, P90, P99.
pub fn tier_z(tier: Tier) -> f64 {
    match tier {
        Tier::Low => 0.0,
        Tier::Medium => 1.2816,
        Tier::High => 2.3263,
    }
}

/// Distance between two commands' features (see the module doc).
pub fn distance(a: &Features, b: &Features) -> f64 {
    let mut d = 0.0;
    if a.program != b.program {
        d += 10.0;
    }
    if a.subcommand != b.subcommand {
        d += 2.0;
    }
    let lr = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => (x.max(1.0).ln() - y.max(1.0).ln()).abs(),
        (None, None) => 0.0,
        _ => 1.0,
    };
    d += 0.5 * lr(a.jobs.map(f64::from), b.jobs.map(f64::from));
    d += 0.5 * lr(a.size_kib.map(|s| s as f64), b.size_kib.map(|s| s as f64));
    d
}

/// `u`, measured for `from`, scaled to `to`: CPU by jobs, memory and disk by size.
pub fn scale(u: &Usage, from: &Features, to: &Features) -> Usage {
    let mut s = *u;
    // A neighbour that names no parallelism ran one job.
    if let Some(b) = to.jobs {
        s.cpu_cores = u.cpu_cores * f64::from(b) / f64::from(from.jobs.unwrap_or(1));
    }
    if let (Some(a), Some(b)) = (from.size_kib, to.size_kib)
        && a > 0
    {
        let r = b as f64 / a as f64;
        s.memory_kib = u.memory_kib * r;
        s.disk_read_bytes = u.disk_read_bytes * r;
        s.disk_write_bytes = u.disk_write_bytes * r;
    }
    s
}

/// The nearest-neighbours model over observations.
#[derive(Debug, Clone, Default)]
pub struct Model {
    observations: Vec<Observation>,
}

/// How many neighbours a prediction uses at most.
pub const K: usize = 5;
/// Relative standard deviation added per unit of distance to the nearest neighbour.
const SD_PER_DISTANCE: f64 = 0.15;
/// Relative standard deviation of a single observation (run-to-run noise measured in the lab:
/// repeated runs of the same command differed by up to about 10%).
const SD_FLOOR: f64 = 0.10;

impl Model {
    pub fn new(observations: Vec<Observation>) -> Model {
        Model { observations }
    }

    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Adds one observation (a finished run).
    pub fn add(&mut self, o: Observation) {
        self.observations.push(o);
    }

    /// Predicts the usage of `f`. With no observations at all, a zero prediction with an
    /// explicit reason (the orchestrator then allocates nothing extra).
    pub fn predict(&self, f: &Features) -> Prediction {
        let dependencies = f
            .hosts
            .iter()
            .map(|h| Dependency::Network(h.clone()))
            .collect();
        let mut scored: Vec<(f64, &Observation)> = self
            .observations
            .iter()
            .map(|o| (distance(&o.features, f), o))
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        scored.truncate(K);
        let Some(&(nearest, _)) = scored.first() else {
            return Prediction {
                mean: Usage::default(),
                sd: Usage::default(),
                neighbours: 0,
                nearest_distance: f64::INFINITY,
                dependencies,
                reason: "no calibration or history: nothing predicted".into(),
            };
        };
        // Only neighbours about as near as the nearest count (same program beats any other).
        scored.retain(|(d, _)| *d <= nearest + 2.0);
        let weights: Vec<f64> = scored.iter().map(|(d, _)| 1.0 / (1.0 + d * d)).collect();
        let total: f64 = weights.iter().sum();
        let scaled: Vec<[f64; 6]> = scored
            .iter()
            .map(|(_, o)| scale(&o.usage, &o.features, f).fields())
            .collect();
        let mut mean = [0.0; 6];
        let mut sd = [0.0; 6];
        for i in 0..6 {
            mean[i] = scaled
                .iter()
                .zip(&weights)
                .map(|(s, w)| w * s[i])
                .sum::<f64>()
                / total;
            let var = scaled
                .iter()
                .zip(&weights)
                .map(|(s, w)| w * (s[i] - mean[i]).powi(2))
                .sum::<f64>()
                / total;
            sd[i] = var.sqrt() + mean[i].abs() * (SD_FLOOR + SD_PER_DISTANCE * nearest);
        }
        let sources: Vec<&str> = {
            let mut s: Vec<&str> = scored.iter().map(|(_, o)| o.source.as_str()).collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        let same_program = scored
            .iter()
            .filter(|(_, o)| o.features.program == f.program)
            .count();
        let reason = if same_program > 0 {
            format!(
                "{} nearest run(s) of {} ({}), distance {nearest:.2}",
                scored.len(),
                f.program,
                sources.join(", ")
            )
        } else {
            format!(
                "{} never seen: {} nearest other command(s) ({}), distance {nearest:.2}",
                f.program,
                scored.len(),
                sources.join(", ")
            )
        };
        Prediction {
            mean: Usage::from_fields(mean),
            sd: Usage::from_fields(sd),
            neighbours: scored.len(),
            nearest_distance: nearest,
            dependencies,
            reason,
        }
    }
}

/// The baseline a model must beat: each program's historical mean (the mean of all
/// observations of every program when the program is unknown).
pub fn program_mean(observations: &[Observation], f: &Features) -> Usage {
    let same: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.features.program == f.program)
        .collect();
    let pool: Vec<&Observation> = if same.is_empty() {
        observations.iter().collect()
    } else {
        same
    };
    if pool.is_empty() {
        return Usage::default();
    }
    let mut m = [0.0; 6];
    for o in &pool {
        for (i, v) in o.usage.fields().iter().enumerate() {
            m[i] += v / pool.len() as f64;
        }
    }
    Usage::from_fields(m)
}

/// Splits a command key as stored in history (words separated by spaces; a word with spaces,
/// quotes, backslashes or control characters is written in double quotes with `\"`, `\\`,
/// `\n`, `\t`, `\r` and `\u{HEX}` escapes) back into words.
pub fn split_key(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => match chars.next() {
                Some('n') => cur.push('\n'),
                Some('t') => cur.push('\t'),
                Some('r') => cur.push('\r'),
                Some('u') => {
                    let hex: String = chars
                        .by_ref()
                        .skip_while(|&c| c == '{')
                        .take_while(|&c| c != '}')
                        .collect();
                    if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        cur.push(c);
                    }
                }
                Some(n) => cur.push(n),
                None => {}
            },
            ' ' if !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// The history key of an argument vector: the inverse of [`split_key`]; it holds no control
/// characters.
pub fn join_key(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.is_empty() || a.contains([' ', '"', '\\']) || a.chars().any(char::is_control) {
                let mut esc = String::from('"');
                for c in a.chars() {
                    match c {
                        '\\' => esc.push_str("\\\\"),
                        '"' => esc.push_str("\\\""),
                        '\n' => esc.push_str("\\n"),
                        '\t' => esc.push_str("\\t"),
                        '\r' => esc.push_str("\\r"),
                        c if c.is_control() => esc.push_str(&format!("\\u{{{:x}}}", c as u32)),
                        c => esc.push(c),
                    }
                }
                esc.push('"');
                esc
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    fn obs(cmd: &[&str], cpu: f64, mem_mib: f64) -> Observation {
        Observation {
            features: analyze(&argv(cmd)).unwrap(),
            usage: Usage {
                cpu_cores: cpu,
                memory_kib: mem_mib * 1024.0,
                duration_s: 10.0,
                ..Usage::default()
            },
            source: "test".into(),
        }
    }

    #[test]
    fn features_of_typical_commands() {
        let f = analyze(&argv(&["/usr/bin/make", "-j4", "all"])).unwrap();
        assert_eq!(f.program, "make");
        assert_eq!(f.subcommand.as_deref(), Some("all"));
        assert_eq!(f.jobs, Some(4));
        let f = analyze(&argv(&["make", "--jobs", "8"])).unwrap();
        assert_eq!(f.jobs, Some(8));
        let f = analyze(&argv(&["make", "--jobs=3"])).unwrap();
        assert_eq!(f.jobs, Some(3));
        let f = analyze(&argv(&["xargs", "-P", "2", "-n", "1", "gzip"])).unwrap();
        assert_eq!(f.jobs, Some(2));
        assert_eq!(f.subcommand, None);
        let f = analyze(&argv(&[
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=300M",
            "count=1",
        ]))
        .unwrap();
        assert_eq!(f.size_kib, Some(300 * 1024));
        assert_eq!(f.paths, vec!["/dev/zero", "/dev/null"]);
        let f = analyze(&argv(&["stress", "--vm-bytes=1G", "--cpu", "2"])).unwrap();
        assert_eq!(f.size_kib, Some(1024 * 1024));
        assert_eq!(f.jobs, Some(2));
        let f = analyze(&argv(&[
            "curl",
            "-o",
            "/tmp/x",
            "https://deb.example.org:8443/a/b",
        ]))
        .unwrap();
        assert_eq!(f.hosts, vec!["deb.example.org"]);
        let f = analyze(&argv(&["rsync", "-a", "./src", "backup@store1:/srv/x"])).unwrap();
        assert_eq!(f.hosts, vec!["store1"]);
        assert_eq!(f.paths, vec!["./src"]);
        let f = analyze(&argv(&["nc", "db-2:5432"])).unwrap();
        assert_eq!(f.hosts, vec!["db-2"]);
        // A count is not a size; a time is not a host.
        let f = analyze(&argv(&["sleep", "10", "12:30"])).unwrap();
        assert_eq!(f.size_kib, None);
        assert!(f.hosts.is_empty());
    }

    #[test]
    fn sizes_need_a_unit() {
        assert_eq!(parse_size("300M"), Some(300 * 1024));
        assert_eq!(parse_size("2GB"), Some(1_953_125));
        assert_eq!(parse_size("512KiB"), Some(512));
        assert_eq!(parse_size("64k"), Some(64));
        assert_eq!(parse_size("300"), None);
        assert_eq!(parse_size("M300"), None);
        assert_eq!(parse_size("3Mx"), None);
        assert_eq!(parse_size("99999999999999999999T"), None);
    }

    #[test]
    fn bad_command_lines_are_named() {
        assert!(
            analyze(&[])
                .unwrap_err()
                .to_string()
                .contains("no command given")
        );
        let e = analyze(&argv(&[""])).unwrap_err().to_string();
        assert!(e.contains("'' is not a program name"), "{e}");
        let e = analyze(&argv(&["ls", "a\0b"])).unwrap_err().to_string();
        assert!(e.contains("NUL"), "{e}");
    }

    #[test]
    fn keys_round_trip() {
        let cases = [
            argv(&["dd", "bs=1M"]),
            argv(&["sh", "-c", "echo \"hi\" \\ there", ""]),
            argv(&["a b", "c"]),
            argv(&[
                "perl",
                "-e",
                "my $x = 1;\nprint \"$x\\n\";\t\u{7}",
                "--",
                "dd",
            ]),
        ];
        for a in cases {
            let key = join_key(&a);
            assert!(!key.chars().any(char::is_control), "{key:?}");
            assert_eq!(split_key(&key), a, "{key}");
        }
    }

    #[test]
    fn neighbours_scale_memory_by_size_and_cpu_by_jobs() {
        let m = Model::new(vec![
            obs(&["dd", "bs=100M", "count=1"], 1.0, 102.0),
            obs(&["make", "-j2"], 2.0, 200.0),
        ]);
        let p = m.predict(&analyze(&argv(&["dd", "bs=300M", "count=1"])).unwrap());
        assert!((p.mean.memory_kib / 1024.0 - 306.0).abs() < 1.0, "{p:?}");
        let p = m.predict(&analyze(&argv(&["make", "-j4"])).unwrap());
        assert!((p.mean.cpu_cores - 4.0).abs() < 1e-9, "{p:?}");
        assert!(p.reason.contains("make"), "{}", p.reason);
    }

    #[test]
    fn uncertainty_grows_with_distance_and_tiers_order() {
        let m = Model::new(vec![obs(&["gzip", "-9"], 1.0, 10.0)]);
        let near = m.predict(&analyze(&argv(&["gzip", "-9"])).unwrap());
        let far = m.predict(&analyze(&argv(&["bzip2", "-9"])).unwrap());
        assert!(far.sd.memory_kib > near.sd.memory_kib);
        assert!(far.reason.contains("never seen"), "{}", far.reason);
        let (l, md, h) = (
            near.at_tier(Tier::Low).memory_kib,
            near.at_tier(Tier::Medium).memory_kib,
            near.at_tier(Tier::High).memory_kib,
        );
        assert!(l < md && md < h, "{l} {md} {h}");
        assert!((l - near.mean.memory_kib).abs() < 1e-9);
    }

    #[test]
    fn empty_model_predicts_nothing_and_says_so() {
        let p = Model::default().predict(&analyze(&argv(&["curl", "http://mirror/x"])).unwrap());
        assert_eq!(p.mean, Usage::default());
        assert_eq!(p.neighbours, 0);
        assert!(p.reason.contains("nothing predicted"));
        assert_eq!(p.dependencies, vec![Dependency::Network("mirror".into())]);
    }

    #[test]
    fn history_beats_a_different_program() {
        // Two programs; the query's own program wins even when the other is closer in size.
        let m = Model::new(vec![
            obs(&["sort", "-S", "50M"], 1.0, 50.0),
            obs(&["dd", "bs=300M"], 1.0, 300.0),
        ]);
        let p = m.predict(&analyze(&argv(&["sort", "-S", "300M"])).unwrap());
        assert!((p.mean.memory_kib / 1024.0 - 300.0).abs() < 1.0, "{p:?}");
        assert_eq!(p.neighbours, 1);
    }

    #[test]
    fn program_mean_baseline() {
        let o = vec![
            obs(&["dd", "bs=100M"], 1.0, 100.0),
            obs(&["dd", "bs=300M"], 1.0, 300.0),
            obs(&["gzip"], 1.0, 4.0),
        ];
        let f = analyze(&argv(&["dd", "bs=50M"])).unwrap();
        assert!((program_mean(&o, &f).memory_kib / 1024.0 - 200.0).abs() < 1e-9);
        let f = analyze(&argv(&["xz"])).unwrap();
        assert!((program_mean(&o, &f).memory_kib / 1024.0 - 404.0 / 3.0).abs() < 1e-9);
    }
}

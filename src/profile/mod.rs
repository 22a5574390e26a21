//! Application profiles: what installing (building) a package will need, predicted from its
//! metadata, with uncertainty.
//!
//! Pure: measurements come in as values ([`Measurement`], parsed from the embedded
//! [`CALIBRATION_CSV`] by [`calibration`] or from any CSV text by [`parse_measurements`]), the
//! model and its estimates go out as values. No I/O, clock or randomness.
//!
//! # The model
//! For each [`Need`] (CPU seconds, peak CPU cores, peak memory, disk writes, network download),
//! a ridge regression of `ln(1 + need)` on the logs of the package's metadata
//! (`ln(1 + x)` of installed size, closure installed size, dependency count and download size;
//! for the network need the download size is the answer, not a feature). Features are
//! standardised; the penalty is chosen among a fixed grid by exact leave-one-out error (the hat
//! matrix, no refitting). The predictive distribution is log-normal: the regression's value as
//! the log-median, the root mean square of the leave-one-out residuals as the log-sd, so the
//! intervals are as wide as the model's own held-out error, not its training fit.
//!
//! One regression is fitted for every subset of the features, so a package with some metadata
//! missing is predicted from what is known ([`Source::Model`] names the features used). A
//! regression is kept only if its leave-one-out median absolute error beats the population
//! median's; otherwise that need is answered by the population ([`Source::Population`]) — on
//! the shipped set this is the case for peak CPU cores, which metadata does not explain.
//!
//! # Fallbacks
//! - No numeric metadata at all (an unknown package): every need gets the calibration
//!   population's empirical distribution ([`Source::Population`]) and
//!   [`ResourceEstimate::fallback`] is set with a one-line [`ResourceEstimate::warning`] the
//!   caller can show.
//! - The download size known: the network need is that number exactly ([`Source::Metadata`]).
//!
//! # Evidence it works
//! [`cross_validate`] holds each package out in turn, trains on the rest and scores the
//! held-out prediction against a baseline that predicts the population median (and the
//! population's 5-95% range as its interval); gradient-boosted stumps are scored beside ridge as
//! the non-linear challenger. `cargo bench --bench profile` prints the table; the numbers are in
//! `benches/results/profile.md`. Where a regression is used it is ridge: the stumps did not win
//! on any need.
//!
//! # Use (for the engine)
//! ```
//! use prae::profile::{calibration, Need, PackageFeatures, ProfileModel};
//! let model = ProfileModel::train(&calibration()?)?;
//! let est = model.predict(&PackageFeatures {
//!     installed_size_kib: Some(1331.0),
//!     closure_installed_size_kib: Some(9713.0),
//!     dependencies: Some(18.0),
//!     ..PackageFeatures::default()
//! })?;
//! let mem = est.need(Need::PeakMemoryKib);
//! assert!(mem.quantile(0.05) < mem.median && mem.median < mem.quantile(0.95));
//! if let Some(w) = &est.warning { eprintln!("warning: {w}"); }
//! # Ok::<(), prae::Error>(())
//! ```
//! Train once (it takes well under a millisecond per need on the shipped set) and keep the model.

mod data;
mod ridge;

pub use data::{
    CALIBRATION_CSV, Measurement, PackageFeatures, Usage, calibration, parse_measurements,
};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};
use ridge::{Ridge, Stumps};

/// Number of [`Need`]s.
pub const NEEDS: usize = 5;

/// What an install needs, in the calibration CSV's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// Guest CPU time of the install, seconds (TCG; see the calibration README's caveats).
    CpuSeconds,
    /// Busiest one-second interval, cores.
    PeakCpuCores,
    /// Highest guest memory in use, KiB.
    PeakMemoryKib,
    /// Bytes written to the guest's disks.
    DiskWriteBytes,
    /// Bytes the install downloads (network).
    DownloadBytes,
}

impl Need {
    pub const ALL: [Need; NEEDS] = [
        Need::CpuSeconds,
        Need::PeakCpuCores,
        Need::PeakMemoryKib,
        Need::DiskWriteBytes,
        Need::DownloadBytes,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The calibration CSV's column.
    pub fn column(self) -> &'static str {
        match self {
            Need::CpuSeconds => "cpu_seconds",
            Need::PeakCpuCores => "peak_cpu_cores",
            Need::PeakMemoryKib => "peak_memory_kib",
            Need::DiskWriteBytes => "disk_write_bytes",
            Need::DownloadBytes => "download_bytes",
        }
    }
}

/// Numeric features, in this order, by name.
const FEATURES: [&str; 4] = [
    "installed_size_kib",
    "closure_installed_size_kib",
    "dependencies",
    "download_bytes",
];

fn feature_values(f: &PackageFeatures) -> [Option<f64>; 4] {
    [
        f.installed_size_kib,
        f.closure_installed_size_kib,
        f.dependencies,
        f.download_bytes,
    ]
}

/// Features a need's regression may use (bit j: `FEATURES[j]`).
fn allowed(need: Need) -> u32 {
    match need {
        Need::DownloadBytes => 0b0111,
        _ => 0b1111,
    }
}

/// The log-scale transform of needs and features.
fn tr(v: f64) -> f64 {
    v.max(0.0).ln_1p()
}

fn untr(t: f64) -> f64 {
    t.exp_m1().max(0.0)
}

/// Where a [`NeedEstimate`] came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The regression on these features.
    Model { features: Vec<String> },
    /// The calibration population: no usable metadata (then [`ResourceEstimate::fallback`] is
    /// set), or the known metadata does not predict this need better than the population
    /// median does (leave-one-out, on the training set).
    Population,
    /// Given directly by the metadata.
    Metadata,
}

/// A predictive distribution of one need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distribution {
    /// `ln(1 + need)` is normal with this mean and sd.
    LogNormal { mu: f64, sd: f64 },
    /// Every value of the population equally likely (sorted).
    Empirical(Vec<f64>),
    /// Known exactly.
    Exact(f64),
}

impl Distribution {
    /// The `p` quantile (`p` clamped to [0, 1]); the empirical one interpolates linearly between
    /// order statistics and stays within the population's range.
    pub fn quantile(&self, p: f64) -> f64 {
        let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
        match self {
            Distribution::LogNormal { mu, sd } => {
                let z = if p <= 0.0 {
                    f64::NEG_INFINITY
                } else if p >= 1.0 {
                    f64::INFINITY
                } else {
                    normal_quantile(p)
                };
                untr(mu + sd * z)
            }
            Distribution::Empirical(v) => {
                if v.is_empty() {
                    return 0.0;
                }
                let h = p * (v.len() - 1) as f64;
                let lo = h.floor() as usize;
                let hi = (lo + 1).min(v.len() - 1);
                v[lo] + (h - lo as f64) * (v[hi] - v[lo])
            }
            Distribution::Exact(x) => *x,
        }
    }

    pub fn mean(&self) -> f64 {
        match self {
            Distribution::LogNormal { mu, sd } => untr(mu + 0.5 * sd * sd),
            Distribution::Empirical(v) => v.iter().sum::<f64>() / v.len().max(1) as f64,
            Distribution::Exact(x) => *x,
        }
    }
}

/// The estimate of one need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedEstimate {
    pub need: Need,
    pub mean: f64,
    pub median: f64,
    /// 5% and 95% quantiles: the 90% prediction interval.
    pub p05: f64,
    pub p95: f64,
    pub distribution: Distribution,
    pub source: Source,
}

impl NeedEstimate {
    fn new(need: Need, distribution: Distribution, source: Source) -> NeedEstimate {
        NeedEstimate {
            need,
            mean: distribution.mean(),
            median: distribution.quantile(0.5),
            p05: distribution.quantile(0.05),
            p95: distribution.quantile(0.95),
            distribution,
            source,
        }
    }

    /// Any quantile (a tier's P90 or P99, say).
    pub fn quantile(&self, p: f64) -> f64 {
        self.distribution.quantile(p)
    }
}

/// What a package will need, per [`Need`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceEstimate {
    /// Indexed by [`Need::index`].
    pub needs: Vec<NeedEstimate>,
    /// The population fallback was used (no usable metadata).
    pub fallback: bool,
    /// One line for the caller to show when the estimate is a fallback.
    pub warning: Option<String>,
}

impl ResourceEstimate {
    pub fn need(&self, n: Need) -> &NeedEstimate {
        &self.needs[n.index()]
    }
}

/// One need's regressions, one per subset of its features (index = bit mask; 0 = none); `None`
/// where the regression does not beat the population median in leave-one-out error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct NeedModel {
    by_mask: Vec<Option<Ridge>>,
    /// The population's values, sorted.
    population: Vec<f64>,
}

/// The trained application-profile model. See the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileModel {
    needs: Vec<NeedModel>,
    /// Packages trained on.
    pub trained_on: usize,
}

/// The rows of `data` as feature vectors restricted to `mask`.
fn rows(data: &[Measurement], mask: u32) -> Vec<Vec<f64>> {
    data.iter()
        .map(|m| select(&feature_values(&m.features), mask).unwrap_or_default())
        .collect()
}

/// The transformed features of `mask`, or `None` if one of them is unknown.
fn select(values: &[Option<f64>; 4], mask: u32) -> Option<Vec<f64>> {
    (0..FEATURES.len())
        .filter(|j| mask & (1 << j) != 0)
        .map(|j| values[j].map(tr))
        .collect()
}

impl ProfileModel {
    /// Trains on calibration measurements (at least 3, each with every numeric feature).
    pub fn train(data: &[Measurement]) -> Result<ProfileModel> {
        if data.len() < 3 {
            return Err(Error::Invalid(format!(
                "the profile model needs at least 3 measurements, got {}",
                data.len()
            )));
        }
        for m in data {
            m.features.validate().map_err(|e| {
                Error::Invalid(format!("measurement of package '{}': {e}", m.package))
            })?;
            if feature_values(&m.features).iter().any(Option::is_none) {
                return Err(Error::Invalid(format!(
                    "measurement of package '{}' lacks some numeric metadata",
                    m.package
                )));
            }
            if let Some(v) = m.usage.0.iter().find(|v| !v.is_finite() || **v < 0.0) {
                return Err(Error::Invalid(format!(
                    "measurement of package '{}' has usage {v}, not a finite non-negative number",
                    m.package
                )));
            }
        }
        let needs = Need::ALL
            .iter()
            .map(|&need| {
                let y: Vec<f64> = data.iter().map(|m| tr(m.usage.get(need))).collect();
                let baseline = loo_median_error(&y);
                let by_mask = (0..16u32)
                    .map(|mask| {
                        if mask == 0 || mask & !allowed(need) != 0 {
                            return None;
                        }
                        // kept only where it beats the population median out of sample
                        Ridge::fit(&rows(data, mask), &y)
                            .filter(|r| median(r.loo.iter().map(|e| e.abs()).collect()) < baseline)
                    })
                    .collect();
                let mut population: Vec<f64> = data.iter().map(|m| m.usage.get(need)).collect();
                population.sort_by(f64::total_cmp);
                NeedModel {
                    by_mask,
                    population,
                }
            })
            .collect();
        Ok(ProfileModel {
            needs,
            trained_on: data.len(),
        })
    }

    /// The estimate for a package with these features; errors only on invalid numbers.
    pub fn predict(&self, features: &PackageFeatures) -> Result<ResourceEstimate> {
        features.validate()?;
        let values = feature_values(features);
        let known: u32 = (0..FEATURES.len())
            .filter(|&j| values[j].is_some())
            .map(|j| 1 << j)
            .sum();
        let mut fallback = false;
        let needs = Need::ALL
            .iter()
            .zip(&self.needs)
            .map(|(&need, nm)| {
                if need == Need::DownloadBytes
                    && let Some(d) = features.download_bytes
                {
                    return NeedEstimate::new(need, Distribution::Exact(d), Source::Metadata);
                }
                let mask = known & allowed(need);
                if mask == 0 {
                    fallback = true;
                }
                match nm.by_mask.get(mask as usize).and_then(Option::as_ref) {
                    Some(r) => {
                        let x = select(&values, mask).unwrap_or_default();
                        let dist = Distribution::LogNormal {
                            mu: r.predict(&x),
                            sd: r.loo_rms(),
                        };
                        let names = (0..FEATURES.len())
                            .filter(|j| mask & (1 << j) != 0)
                            .map(|j| FEATURES[j].to_string())
                            .collect();
                        NeedEstimate::new(need, dist, Source::Model { features: names })
                    }
                    None => NeedEstimate::new(
                        need,
                        Distribution::Empirical(nm.population.clone()),
                        Source::Population,
                    ),
                }
            })
            .collect();
        let warning = fallback.then(|| {
            format!(
                "no package metadata to predict from: using the needs of all {} calibration packages",
                self.trained_on
            )
        });
        Ok(ResourceEstimate {
            needs,
            fallback,
            warning,
        })
    }
}

/// Leave-one-out scores of one predictor on one need.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Median over held-out packages of `|ln(1 + predicted median) - ln(1 + actual)|`.
    pub median_abs_log_error: f64,
    /// Share of held-out packages inside the 90% interval (NaN for point predictors).
    pub coverage90: f64,
    /// Median ratio of the interval's upper to lower end (NaN for point predictors).
    pub median_interval_ratio: f64,
}

/// [`cross_validate`]'s result for one need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NeedScores {
    pub need: Need,
    /// The model ([`ProfileModel`], all features).
    pub model: Score,
    /// The population median and the population's 5-95% range.
    pub baseline: Score,
    /// Gradient-boosted stumps on the same features (point prediction only).
    pub stumps: Score,
}

/// Median over `i` of `|y_i - median of the others|`: the population baseline's
/// leave-one-out error.
fn loo_median_error(y: &[f64]) -> f64 {
    let errors = (0..y.len())
        .map(|i| {
            let others: Vec<f64> = (0..y.len()).filter(|&k| k != i).map(|k| y[k]).collect();
            (y[i] - median(others)).abs()
        })
        .collect();
    median(errors)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Leave-one-out cross-validation of [`ProfileModel`] against the population-median baseline
/// and boosted stumps, per need. Needs at least 4 measurements.
pub fn cross_validate(data: &[Measurement]) -> Result<Vec<NeedScores>> {
    if data.len() < 4 {
        return Err(Error::Invalid(format!(
            "cross-validation needs at least 4 measurements, got {}",
            data.len()
        )));
    }
    #[derive(Default)]
    struct Acc {
        err: Vec<f64>,
        hit: usize,
        ratio: Vec<f64>,
    }
    let mut acc: Vec<[Acc; 3]> = (0..NEEDS).map(|_| Default::default()).collect();
    for (i, held) in data.iter().enumerate() {
        let train: Vec<Measurement> = data
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != i)
            .map(|(_, m)| m.clone())
            .collect();
        let model = ProfileModel::train(&train)?;
        // the held-out package's own download size would give its network need away
        let features = PackageFeatures {
            download_bytes: None,
            ..held.features.clone()
        };
        let with_download = model.predict(&held.features)?;
        let without_download = model.predict(&features)?;
        for need in Need::ALL {
            let est = if need == Need::DownloadBytes {
                without_download.need(need)
            } else {
                with_download.need(need)
            };
            let actual = held.usage.get(need);
            let a = &mut acc[need.index()];
            let mut score = |k: usize, med: f64, lo: f64, hi: f64| {
                a[k].err.push((tr(med) - tr(actual)).abs());
                if lo <= actual && actual <= hi {
                    a[k].hit += 1;
                }
                a[k].ratio.push(hi / lo.max(1e-12));
            };
            score(0, est.median, est.p05, est.p95);
            let pop = Distribution::Empirical(model.needs[need.index()].population.clone());
            score(1, pop.quantile(0.5), pop.quantile(0.05), pop.quantile(0.95));
            let mask = allowed(need);
            let y: Vec<f64> = train.iter().map(|m| tr(m.usage.get(need))).collect();
            let stumps = Stumps::fit(&rows(&train, mask), &y);
            let x = select(&feature_values(&held.features), mask).unwrap_or_default();
            a[2].err.push((stumps.predict(&x) - tr(actual)).abs());
        }
    }
    let n = data.len() as f64;
    Ok(Need::ALL
        .iter()
        .zip(acc)
        .map(|(&need, [m, b, s])| {
            let score = |a: Acc, interval: bool| Score {
                median_abs_log_error: median(a.err),
                coverage90: if interval { a.hit as f64 / n } else { f64::NAN },
                median_interval_ratio: if interval { median(a.ratio) } else { f64::NAN },
            };
            NeedScores {
                need,
                model: score(m, true),
                baseline: score(b, true),
                stumps: score(s, false),
            }
        })
        .collect())
}

/// Acklam's rational approximation of the standard normal quantile (relative error below
/// 1.2e-9), for `p` strictly between 0 and 1.
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests;

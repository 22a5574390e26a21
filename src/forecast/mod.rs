//! Forecasting: an auto-ARIMA that follows R's `forecast::auto.arima`, written on nalgebra.
//!
//! The module is pure: values in, values out. No I/O, no clock, no libvirt, no randomness (the
//! optimiser is deterministic), so the same series always gives the same model and forecast.
//!
//! # Use
//! ```
//! use prae::forecast::{AutoArima, Forecaster};
//!
//! let history: Vec<Option<f64>> = (0..120).map(|t| Some(10.0 + (t as f64 * 0.3).sin())).collect();
//! let model = AutoArima::new().fit(&history)?;          // order selection + ML fit
//! let fc = model.forecast(12, &[80.0, 95.0])?;          // mean and intervals, 12 steps
//! assert_eq!(fc.mean.len(), 12);
//! assert_eq!(fc.intervals[1].level, 95.0);
//! println!("{}: sigma2 {:.3}, AICc {:.2}", model.label(), model.sigma2(), model.aicc());
//! # Ok::<(), prae::Error>(())
//! ```
//! A fixed order is an [`ArimaSpec`]; [`AutoArima`] searches. Both implement [`Forecaster`],
//! whose `fit` returns a [`FittedArima`]; only a fitted model can forecast. [`fit_many`] and
//! [`forecast_many`] spread many series over cores with rayon and give the same answers as the
//! serial path.
//!
//! # Input
//! A series is `&[Option<f64>]`: `None` is a missing value (the Kalman filter skips it, as R
//! does with `NA`), and every `Some` must be finite: NaN or infinity is refused with an
//! [`Error::Invalid`] naming its position. A series needs at least [`MIN_OBSERVATIONS`]
//! non-missing values; shorter ones get a clear error. [`values`] converts a plain `&[f64]`.
//!
//! # What matches R
//! - The fit is R's `stats::arima` algorithm: regression with ARIMA errors (mean when
//!   `d + D = 0`, drift when `d + D = 1`, starting values by least squares on the differenced
//!   series, several regressors rotated by their SVD while optimising), state-space form with the
//!   differencing in the state (diffuse prior, `kappa = 1e6`), Gardner et al.'s initial
//!   covariance, conditional sum of squares and then exact Gaussian likelihood (`CSS-ML`),
//!   optimised with R's BFGS (`vmmin`, numerical gradient, `parscale`, `reltol`), AR parts kept
//!   stationary by the PACF transform, MA parts made invertible. `sigma2`, log-likelihood, AIC,
//!   AICc and BIC are computed as forecast's `Arima`/`auto.arima` report them (`sigma2` is
//!   forecast's bias-corrected value).
//! - The search is `auto.arima`'s: KPSS for `d`, STL seasonal strength > 0.64 for `D`, the
//!   stepwise Hyndman-Khandakar search with R's starting models and moves, CSS approximation
//!   when `n > 150` or `m > 12`, near-unit-root rejection, final refit by maximum likelihood.
//! - Forecasts are R's `predict.Arima`/`forecast.Arima`: Kalman predictions, variances scaled by
//!   `sigma2`, normal intervals.
//!
//! Checked in the tests: `auto.arima(WWWusage)` (ARIMA(1,1,1), coefficients, sigma^2, loglik,
//! AIC, AICc, BIC, the first forecast and its intervals), `auto.arima(log(AirPassengers))` (the
//! airline model, its coefficients, loglik, sigma^2), `arima(lh, c(1,0,0))`, `ndiffs`/`nsdiffs`
//! on both series; and against statsforecast's AutoARIMA (R's approximation rule) on the 67
//! benchmark series in `tests/fixtures/forecast/`.
//!
//! # Where it differs from R, on purpose
//! - Only the defaults' tests are implemented: KPSS for `d`, seasonal strength for `D`; the
//!   search is stepwise only (no exhaustive `stepwise = FALSE`), no Box-Cox.
//! - The coefficient R calls `intercept` is named `mean` (as forecast prints it).
//! - A Hessian is called singular after its diagonal is equilibrated, so a mean of 1e7 does not
//!   make a well-determined fit look singular (R rejects such fits).
//! - The Kalman filter stops updating the covariance once it has reached its steady state
//!   (gain and `M` unchanged to 1e-13 on two observations) until a gap needs it again; the CSS
//!   objective differences the series once instead of per evaluation. Both change results only
//!   in the last digits.
//! - Gaps are filled by linear interpolation before STL (forecast uses `na.interp`).
//! - At most [`MAX_ARMA_STATES`] ARMA states (`max(p + mP, q + mQ + 1)`): Gardner's
//!   algorithm needs memory growing with the fourth power of it.
//!
//! # Long seasonal periods
//! A daily cycle at 5-minute sampling is a period of 288. SARIMA at that period needs a state of
//! several hundred dimensions and is slow or infeasible (R caps the lag at 350; statsforecast
//! takes minutes). Periods above [`AutoArima::sarima_max_period`] (default 24) are handled as R's
//! `auto.arima(x, xreg = fourier(x, K))` does: `K` sine/cosine pairs of the period enter as
//! regressors and a non-seasonal ARIMA models the errors. `K` runs over `1..=max_harmonics`
//! (default 6, and below `period / 2`) and the model with the smallest AICc wins. The harmonics
//! extend into the future exactly, so forecasts carry the cycle; the regression coefficients are
//! named `fourier_s{k}` and `fourier_c{k}`.

mod arima;
mod auto;
mod kalman;
mod normal;
mod optim;
mod poly;
mod stl;
#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use auto::{AutoArimaOptions, InformationCriterion};

use crate::{Error, Result};
use auto::{Candidate, Xreg};
use poly::Arma;

/// The fewest non-missing observations a series must have.
pub const MIN_OBSERVATIONS: usize = 4;

/// The most ARMA states a model may have, `max(p + mP, q + mQ + 1)`.
pub const MAX_ARMA_STATES: usize = arima::MAX_STATE;

/// Converts plain values to a series, refusing NaN and infinities (use `Option` for gaps).
pub fn values(x: &[f64]) -> Result<Vec<Option<f64>>> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_finite() {
                Ok(Some(*v))
            } else {
                Err(non_finite(i, *v))
            }
        })
        .collect()
}

fn non_finite(i: usize, v: f64) -> Error {
    let what = if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    };
    Error::Invalid(format!(
        "value at position {i} is {what}; use a missing value for a gap"
    ))
}

/// Checks a series and returns it with NaN standing for missing values (the internal form).
fn prepare(y: &[Option<f64>]) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(y.len());
    for (i, v) in y.iter().enumerate() {
        match v {
            Some(v) if !v.is_finite() => return Err(non_finite(i, *v)),
            Some(v) => out.push(*v),
            None => out.push(f64::NAN),
        }
    }
    let n = out.iter().filter(|v| !v.is_nan()).count();
    if n < MIN_OBSERVATIONS {
        return Err(Error::Invalid(format!(
            "the series has {n} non-missing values; at least {MIN_OBSERVATIONS} are needed"
        )));
    }
    Ok(out)
}

/// Anything that fits a series into a [`FittedArima`].
pub trait Forecaster {
    /// Fits the model to `y` (`None` = missing).
    fn fit(&self, y: &[Option<f64>]) -> Result<FittedArima>;
}

/// An ARIMA(p,d,q)(P,D,Q)\[m\] with a fixed order (R's `forecast::Arima`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArimaSpec {
    /// `[p, d, q]`.
    pub order: [usize; 3],
    /// `[P, D, Q]`; ignored when `period <= 1`.
    pub seasonal: [usize; 3],
    /// Seasonal period `m`; 1 for none.
    pub period: usize,
    /// Include a mean (`d + D = 0`) or a drift (`d + D = 1`); ignored for more differences.
    pub constant: bool,
}

impl ArimaSpec {
    /// A non-seasonal ARIMA(p,d,q) with a constant where R's `Arima(include.constant = TRUE)`
    /// would put one.
    pub fn new(p: usize, d: usize, q: usize) -> ArimaSpec {
        ArimaSpec {
            order: [p, d, q],
            seasonal: [0, 0, 0],
            period: 1,
            constant: true,
        }
    }

    /// Adds a seasonal part (P,D,Q)\[period\].
    pub fn seasonal(mut self, sp: usize, sd: usize, sq: usize, period: usize) -> ArimaSpec {
        self.seasonal = [sp, sd, sq];
        self.period = period;
        self
    }

    /// Sets whether a mean or drift is included.
    pub fn constant(mut self, constant: bool) -> ArimaSpec {
        self.constant = constant;
        self
    }
}

impl Forecaster for ArimaSpec {
    fn fit(&self, y: &[Option<f64>]) -> Result<FittedArima> {
        let x = prepare(y)?;
        let m = self.period.max(1);
        let seasonal = if m > 1 { self.seasonal } else { [0, 0, 0] };
        let first = x.iter().position(|v| !v.is_nan()).unwrap_or(0);
        let xt = &x[first..];
        let c = auto::fit_and_score(
            xt,
            self.order,
            seasonal,
            m,
            self.constant && self.order[1] + seasonal[1] <= 1,
            InformationCriterion::Aicc,
            false,
            0.0,
            &Xreg::default(),
        )
        .map_err(|e| {
            Error::Invalid(format!(
                "ARIMA{}{} cannot be fitted to this series: {e}",
                fmt_order(self.order),
                if m > 1 {
                    format!("{}[{m}]", fmt_order(seasonal))
                } else {
                    String::new()
                }
            ))
        })?;
        Ok(FittedArima::from_candidate(c, x.len(), first, None))
    }
}

fn fmt_order(o: [usize; 3]) -> String {
    format!("({},{},{})", o[0], o[1], o[2])
}

/// How a seasonal period is modelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeasonalMethod {
    /// SARIMA up to [`AutoArima::sarima_max_period`], Fourier terms above.
    #[default]
    Auto,
    /// Seasonal ARIMA terms (R's `auto.arima(ts(x, frequency = m))`).
    Sarima,
    /// Fourier regressors plus non-seasonal ARIMA errors.
    Fourier,
}

/// Automatic model selection (R's `auto.arima`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoArima {
    /// Search settings; the defaults are R's.
    pub options: AutoArimaOptions,
    /// Seasonal period (samples per cycle); `None` or 1 for a non-seasonal search.
    pub period: Option<usize>,
    /// How the seasonal period is modelled.
    pub seasonal_method: SeasonalMethod,
    /// Longest period modelled as SARIMA under [`SeasonalMethod::Auto`].
    pub sarima_max_period: usize,
    /// Largest number of Fourier harmonic pairs tried.
    pub max_harmonics: usize,
}

impl Default for AutoArima {
    fn default() -> Self {
        AutoArima {
            options: AutoArimaOptions::default(),
            period: None,
            seasonal_method: SeasonalMethod::Auto,
            sarima_max_period: 24,
            max_harmonics: 6,
        }
    }
}

impl AutoArima {
    /// R's defaults, non-seasonal.
    pub fn new() -> AutoArima {
        AutoArima::default()
    }

    /// Sets the seasonal period.
    pub fn period(mut self, m: usize) -> AutoArima {
        self.period = Some(m);
        self
    }

    /// Sets how the seasonal period is modelled.
    pub fn seasonal_method(mut self, method: SeasonalMethod) -> AutoArima {
        self.seasonal_method = method;
        self
    }

    fn uses_fourier(&self, m: usize) -> bool {
        m > 1
            && match self.seasonal_method {
                SeasonalMethod::Fourier => true,
                SeasonalMethod::Sarima => false,
                SeasonalMethod::Auto => m > self.sarima_max_period,
            }
    }

    fn check(&self) -> Result<()> {
        let o = &self.options;
        if o.max_d > 2 || o.max_sd > 1 {
            return Err(Error::Invalid(format!(
                "max_d {} / max_sd {} exceed 2 / 1",
                o.max_d, o.max_sd
            )));
        }
        if let Some(m) = self.period
            && m >= arima::MAX_STATE
            && !self.uses_fourier(m)
        {
            return Err(Error::Invalid(format!(
                "seasonal period {m} is too long for SARIMA (below {}); use Fourier terms",
                arima::MAX_STATE
            )));
        }
        Ok(())
    }
}

impl Forecaster for AutoArima {
    fn fit(&self, y: &[Option<f64>]) -> Result<FittedArima> {
        self.check()?;
        let x = prepare(y)?;
        let m = self.period.unwrap_or(1).max(1);
        let first = x.iter().position(|v| !v.is_nan()).unwrap_or(0);
        if !self.uses_fourier(m) {
            let c = auto::auto_arima(&x, m, &Xreg::default(), &self.options)?;
            return Ok(FittedArima::from_candidate(c, x.len(), first, None));
        }
        // Fourier terms: choose K by AICc
        let kmax = self.max_harmonics.min((m - 1) / 2);
        if kmax == 0 {
            return Err(Error::Invalid(format!(
                "period {m} is too short for Fourier terms (at least 3 samples per cycle)"
            )));
        }
        let mut best: Option<(Candidate, usize)> = None;
        let mut last_err = None;
        for k in 1..=kmax {
            let xreg = fourier(0, x.len(), m, k);
            match auto::auto_arima(&x, 1, &xreg, &self.options) {
                Ok(c) => {
                    if best.as_ref().is_none_or(|(b, _)| c.aicc < b.aicc) {
                        best = Some((c, k));
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match best {
            Some((c, k)) => Ok(FittedArima::from_candidate(c, x.len(), first, Some((m, k)))),
            None => {
                Err(last_err.unwrap_or_else(|| Error::Invalid("no model could be fitted".into())))
            }
        }
    }
}

/// Fourier regressors `sin(2 pi k t / m)`, `cos(2 pi k t / m)` for `k = 1..=kmax` at times
/// `t = start + 1 ..= start + n` (R's `fourier`).
fn fourier(start: usize, n: usize, m: usize, kmax: usize) -> Xreg {
    let mut x = Xreg::default();
    for k in 1..=kmax {
        let w = 2.0 * std::f64::consts::PI * k as f64 / m as f64;
        x.cols
            .push((1..=n).map(|t| (w * (start + t) as f64).sin()).collect());
        x.names.push(format!("fourier_s{k}"));
        x.cols
            .push((1..=n).map(|t| (w * (start + t) as f64).cos()).collect());
        x.names.push(format!("fourier_c{k}"));
    }
    x
}

/// One prediction interval across the horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Coverage in percent (e.g. 95).
    pub level: f64,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// Point forecasts with their prediction intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Point forecasts for steps `1..=h`.
    pub mean: Vec<f64>,
    /// Standard errors of the forecasts.
    pub se: Vec<f64>,
    /// One interval per requested level, in the order asked.
    pub intervals: Vec<Interval>,
}

/// Fourier terms of a fitted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FourierTerms {
    /// Samples per cycle.
    pub period: usize,
    /// Number of sine/cosine pairs.
    pub harmonics: usize,
}

/// A plain, serializable description of a fitted model (for reports and JSON output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// R's label, e.g. `ARIMA(1,1,1) with drift`.
    pub label: String,
    /// `[p, d, q]`.
    pub order: [usize; 3],
    /// `[P, D, Q, m]`.
    pub seasonal_order: [usize; 4],
    /// A mean or drift term is included.
    pub constant: bool,
    /// A drift term is included.
    pub drift: bool,
    /// Coefficients by name (`ar1`, `ma1`, `sar1`, `sma1`, `mean`, `drift`, `fourier_s1`, ...).
    pub coefficients: std::collections::BTreeMap<String, f64>,
    pub sigma2: f64,
    pub loglik: f64,
    pub aic: f64,
    pub aicc: f64,
    pub bic: f64,
    /// Non-missing observations used.
    pub nobs: usize,
    /// The Fourier terms, when the cycle is modelled with them.
    pub fourier: Option<FourierTerms>,
}

/// A fitted ARIMA model: its order, estimates, criteria and filtered state.
#[derive(Debug, Clone)]
pub struct FittedArima {
    order: [usize; 3],
    seasonal: [usize; 3],
    period: usize,
    mean: bool,
    drift: bool,
    coefficients: Vec<(String, f64)>,
    sigma2: f64,
    loglik: f64,
    aic: f64,
    aicc: f64,
    bic: f64,
    residuals: Vec<f64>,
    n_obs: usize,
    /// Length of the series after dropping leading missing values (drift's time index).
    n_trimmed: usize,
    /// Length of the whole input (Fourier terms' time index).
    n_total: usize,
    fourier: Option<(usize, usize)>,
    model: kalman::StateSpace,
    arma: Arma,
}

impl FittedArima {
    fn from_candidate(
        c: Candidate,
        n_total: usize,
        first: usize,
        fourier: Option<(usize, usize)>,
    ) -> FittedArima {
        let names: Vec<String> = c
            .fit
            .names
            .iter()
            .map(|n| {
                if n == "intercept" {
                    "mean".to_string()
                } else {
                    n.clone()
                }
            })
            .collect();
        let mean = names.iter().any(|n| n == "mean");
        let drift = names.iter().any(|n| n == "drift");
        let mut residuals = vec![f64::NAN; first];
        residuals.extend(c.fit.residuals.iter().copied());
        FittedArima {
            order: c.order,
            seasonal: c.seasonal,
            period: c.period,
            mean,
            drift,
            coefficients: names.into_iter().zip(c.fit.coef.iter().copied()).collect(),
            sigma2: c.sigma2,
            loglik: c.fit.loglik,
            aic: c.aic,
            aicc: c.aicc,
            bic: c.bic,
            residuals,
            n_obs: c.fit.residuals.iter().filter(|v| !v.is_nan()).count(),
            n_trimmed: n_total - first,
            n_total,
            fourier,
            model: c.fit.model,
            arma: c.fit.arma,
        }
    }

    /// `[p, d, q]`.
    pub fn order(&self) -> [usize; 3] {
        self.order
    }

    /// `[P, D, Q, m]` (`m = 1` and zeros when non-seasonal).
    pub fn seasonal_order(&self) -> [usize; 4] {
        if self.seasonal == [0, 0, 0] {
            [0, 0, 0, 1]
        } else {
            [
                self.seasonal[0],
                self.seasonal[1],
                self.seasonal[2],
                self.period,
            ]
        }
    }

    /// `true` when the model has a mean or a drift term.
    pub fn constant(&self) -> bool {
        self.mean || self.drift
    }

    /// `true` when the model has a drift (linear trend) term.
    pub fn drift(&self) -> bool {
        self.drift
    }

    /// The Fourier terms as `(period, harmonics)`, when the cycle is modelled that way.
    pub fn fourier(&self) -> Option<(usize, usize)> {
        self.fourier
    }

    /// Coefficients by name, in R's order: `ar1..`, `ma1..`, `sar1..`, `sma1..`, `mean` or
    /// `drift`, `fourier_s1`, `fourier_c1`, ...
    pub fn coefficients(&self) -> &[(String, f64)] {
        &self.coefficients
    }

    /// One coefficient by name.
    pub fn coefficient(&self, name: &str) -> Option<f64> {
        self.coefficients
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Innovation variance, bias-corrected as forecast reports it.
    pub fn sigma2(&self) -> f64 {
        self.sigma2
    }

    /// Gaussian log-likelihood.
    pub fn loglik(&self) -> f64 {
        self.loglik
    }

    pub fn aic(&self) -> f64 {
        self.aic
    }

    pub fn aicc(&self) -> f64 {
        self.aicc
    }

    pub fn bic(&self) -> f64 {
        self.bic
    }

    /// Standardized one-step innovations, one per input value (NaN where missing).
    pub fn residuals(&self) -> &[f64] {
        &self.residuals
    }

    /// Number of non-missing observations used.
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// R's model label, e.g. `ARIMA(0,1,1)(0,1,1)[12]` or `ARIMA(1,1,1) with drift`.
    pub fn label(&self) -> String {
        let mut s = format!("ARIMA{}", fmt_order(self.order));
        if self.seasonal != [0, 0, 0] {
            s += &format!("{}[{}]", fmt_order(self.seasonal), self.period);
        }
        if let Some((m, k)) = self.fourier {
            s = format!("Regression on {k} Fourier pair(s) of period {m} with {s} errors");
        }
        if self.drift {
            s += " with drift";
        } else if self.mean {
            s += " with non-zero mean";
        } else if self.order[1] + self.seasonal[1] == 0 {
            s += " with zero mean";
        }
        s
    }

    /// The model as plain data.
    pub fn summary(&self) -> ModelSummary {
        ModelSummary {
            label: self.label(),
            order: self.order,
            seasonal_order: self.seasonal_order(),
            constant: self.constant(),
            drift: self.drift,
            coefficients: self.coefficients.iter().cloned().collect(),
            sigma2: self.sigma2,
            loglik: self.loglik,
            aic: self.aic,
            aicc: self.aicc,
            bic: self.bic,
            nobs: self.n_obs,
            fourier: self
                .fourier
                .map(|(period, harmonics)| FourierTerms { period, harmonics }),
        }
    }

    /// Forecasts `h` steps ahead with intervals at `levels` (percent, each in `(0, 100)`).
    pub fn forecast(&self, h: usize, levels: &[f64]) -> Result<Forecast> {
        for l in levels {
            if !(l.is_finite() && *l > 0.0 && *l < 100.0) {
                return Err(Error::Invalid(format!(
                    "prediction level {l} is not a percentage strictly between 0 and 100"
                )));
            }
        }
        let (pred, var) = self.model.forecast(h);
        let narma = self.arma.narma();
        let fourier = self
            .fourier
            .map(|(m, k)| fourier(self.n_total, h, m, k))
            .unwrap_or_default();
        let mut mean = pred;
        for (name, b) in self.coefficients.iter().skip(narma) {
            for (i, v) in mean.iter_mut().enumerate() {
                let x = if name == "mean" {
                    1.0
                } else if name == "drift" {
                    (self.n_trimmed + i + 1) as f64
                } else if let Some(j) = fourier.names.iter().position(|n| n == name) {
                    fourier.cols[j][i]
                } else {
                    0.0
                };
                *v += b * x;
            }
        }
        let se: Vec<f64> = var
            .iter()
            .map(|v| (v * self.sigma2).max(0.0).sqrt())
            .collect();
        let intervals = levels
            .iter()
            .map(|&level| {
                let z = normal::qnorm(0.5 + level / 200.0);
                Interval {
                    level,
                    lower: mean.iter().zip(&se).map(|(m, s)| m - z * s).collect(),
                    upper: mean.iter().zip(&se).map(|(m, s)| m + z * s).collect(),
                }
            })
            .collect();
        Ok(Forecast {
            mean,
            se,
            intervals,
        })
    }
}

/// Fits every series with `model`, in parallel over rayon's pool; the result at index `i`
/// belongs to `series[i]` and equals `model.fit(&series[i])`. Every series is its own task
/// (fits differ in cost by a factor of ten or more, so no worker is left holding a long
/// stretch of them), and a fit never uses rayon itself.
pub fn fit_many<S, F>(series: &[S], model: &F) -> Vec<Result<FittedArima>>
where
    S: AsRef<[Option<f64>]> + Sync,
    F: Forecaster + Sync,
{
    series
        .par_iter()
        .with_max_len(1)
        .map(|s| model.fit(s.as_ref()))
        .collect()
}

/// Fits and forecasts every series in parallel (see [`fit_many`]).
pub fn forecast_many<S, F>(
    series: &[S],
    model: &F,
    h: usize,
    levels: &[f64],
) -> Vec<Result<Forecast>>
where
    S: AsRef<[Option<f64>]> + Sync,
    F: Forecaster + Sync,
{
    series
        .par_iter()
        .with_max_len(1)
        .map(|s| model.fit(s.as_ref())?.forecast(h, levels))
        .collect()
}

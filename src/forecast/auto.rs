//! Automatic order selection after Hyndman and Khandakar (2008), as R's `forecast::auto.arima`
//! implements it with its defaults: KPSS test for `d` (`ndiffs`), seasonal strength for `D`
//! (`nsdiffs(test = "seas")`), the stepwise search from R's four starting models with its
//! neighbour moves and bounds, AICc, CSS approximation during the search when `n > 150` or
//! `m > 12`, and rejection of near-unit roots (`myarima`).

use super::arima::{ArimaFit, Method, arima, ols};
use super::poly::{Arma, min_root_modulus};
use super::stl::seasonal_strength;
use crate::{Error, Result};

/// Information criterion used to compare models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InformationCriterion {
    /// Akaike's criterion.
    Aic,
    /// Akaike's criterion with the small-sample correction (R's default).
    #[default]
    Aicc,
    /// Schwarz's Bayesian criterion.
    Bic,
}

/// Settings of the automatic search (R's `auto.arima` arguments).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AutoArimaOptions {
    pub max_p: usize,
    pub max_q: usize,
    pub max_sp: usize,
    pub max_sq: usize,
    pub max_d: usize,
    pub max_sd: usize,
    pub start_p: usize,
    pub start_q: usize,
    pub start_sp: usize,
    pub start_sq: usize,
    /// Fixed number of differences; `None` lets the KPSS test choose.
    pub d: Option<usize>,
    /// Fixed number of seasonal differences; `None` lets the seasonal-strength test choose.
    pub sd: Option<usize>,
    pub ic: InformationCriterion,
    /// CSS approximation during the search; `None` is R's rule (`n > 150` or `m > 12`).
    pub approximation: Option<bool>,
    pub allow_drift: bool,
    pub allow_mean: bool,
    /// Upper bound on the number of models the stepwise search fits.
    pub nmodels: usize,
}

impl Default for AutoArimaOptions {
    fn default() -> Self {
        AutoArimaOptions {
            max_p: 5,
            max_q: 5,
            max_sp: 2,
            max_sq: 2,
            max_d: 2,
            max_sd: 1,
            start_p: 2,
            start_q: 2,
            start_sp: 1,
            start_sq: 1,
            d: None,
            sd: None,
            ic: InformationCriterion::Aicc,
            approximation: None,
            allow_drift: true,
            allow_mean: true,
            nmodels: 94,
        }
    }
}

/// Named extra regressors (columns of the series' length).
#[derive(Debug, Clone, Default)]
pub(crate) struct Xreg {
    pub cols: Vec<Vec<f64>>,
    pub names: Vec<String>,
}

/// One fitted candidate with forecast's information criteria.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub fit: ArimaFit,
    pub order: [usize; 3],
    pub seasonal: [usize; 3],
    pub period: usize,
    pub aic: f64,
    pub aicc: f64,
    pub bic: f64,
    pub ic: f64,
    /// forecast's unbiased `sigma^2`.
    pub sigma2: f64,
}

pub(crate) fn is_constant(x: &[f64]) -> bool {
    match x.first() {
        None => true,
        Some(f) => x.iter().all(|v| v.to_bits() == f.to_bits() || v == f),
    }
}

fn diff(x: &[f64], lag: usize, times: usize) -> Vec<f64> {
    let mut v = x.to_vec();
    for _ in 0..times {
        if v.len() <= lag {
            return Vec::new();
        }
        v = (lag..v.len()).map(|i| v[i] - v[i - lag]).collect();
    }
    v
}

/// Number of non-missing values between the first and last non-missing ones.
fn interior_len(x: &[f64]) -> usize {
    let first = x.iter().position(|v| !v.is_nan());
    let last = x.iter().rposition(|v| !v.is_nan());
    match (first, last) {
        (Some(f), Some(l)) => x[f..=l].iter().filter(|v| !v.is_nan()).count(),
        _ => 0,
    }
}

/// The KPSS level-stationarity statistic with Bartlett weights up to `lag` (urca's `ur.kpss`,
/// `type = "mu"`).
pub(crate) fn kpss_statistic(x: &[f64], lag: usize) -> f64 {
    let n = x.len();
    let nf = n as f64;
    let mean = x.iter().sum::<f64>() / nf;
    let res: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let mut s = 0.0;
    let mut num = 0.0;
    for r in &res {
        s += r;
        num += s * s;
    }
    num /= nf * nf;
    let s2 = res.iter().map(|r| r * r).sum::<f64>() / nf;
    let mut denom = s2;
    if lag > 0 {
        let mut out = 0.0;
        for i in 1..=lag.min(n.saturating_sub(1)) {
            let cov: f64 = (i..n).map(|t| res[t] * res[t - i]).sum();
            out += (1.0 - i as f64 / (lag as f64 + 1.0)) * cov;
        }
        denom = s2 + 2.0 / nf * out;
    }
    num / denom
}

/// The p-value forecast reads off urca's critical values by linear interpolation (clamped).
fn kpss_pvalue(stat: f64) -> f64 {
    const CVAL: [f64; 4] = [0.347, 0.463, 0.574, 0.739];
    const P: [f64; 4] = [0.10, 0.05, 0.025, 0.01];
    if stat <= CVAL[0] {
        return P[0];
    }
    if stat >= CVAL[3] {
        return P[3];
    }
    for i in 0..3 {
        if stat <= CVAL[i + 1] {
            let t = (stat - CVAL[i]) / (CVAL[i + 1] - CVAL[i]);
            return P[i] + t * (P[i + 1] - P[i]);
        }
    }
    P[3]
}

/// `forecast::ndiffs(x, alpha = 0.05, test = "kpss", type = "level", max.d)`.
pub(crate) fn ndiffs(x: &[f64], max_d: usize) -> usize {
    let mut x: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut d = 0;
    if is_constant(&x) {
        return 0;
    }
    let test = |x: &[f64]| -> Option<bool> {
        if x.len() < 2 {
            return Some(false);
        }
        let lag = (3.0 * (x.len() as f64).sqrt() / 13.0).trunc() as usize;
        let stat = kpss_statistic(x, lag);
        if stat.is_nan() {
            return None;
        }
        Some(kpss_pvalue(stat) < 0.05)
    };
    let Some(mut dodiff) = test(&x) else {
        return d;
    };
    while dodiff && d < max_d {
        d += 1;
        x = diff(&x, 1, 1);
        if is_constant(&x) {
            return d;
        }
        match test(&x) {
            Some(v) => dodiff = v,
            None => return d - 1,
        }
    }
    d
}

/// `forecast::nsdiffs(x, test = "seas", max.D)`: difference seasonally while the STL seasonal
/// strength exceeds 0.64.
pub(crate) fn nsdiffs(x: &[f64], m: usize, max_sd: usize) -> usize {
    if is_constant(x) {
        return 0;
    }
    let test = |x: &[f64]| -> bool {
        let filled = interpolate_missing(x);
        match seasonal_strength(&filled, m) {
            Some(s) => s > 0.64,
            None => false,
        }
    };
    let mut x = x.to_vec();
    let mut sd = 0;
    let mut dodiff = test(&x);
    while dodiff && sd < max_sd {
        sd += 1;
        x = diff(&x, m, 1);
        if is_constant(&x) {
            return sd;
        }
        dodiff = test(&x);
    }
    sd
}

/// Linear interpolation of interior missing values, carrying the ends (a simple stand-in for
/// forecast's `na.interp` before STL).
fn interpolate_missing(x: &[f64]) -> Vec<f64> {
    let idx: Vec<usize> = (0..x.len()).filter(|&i| !x[i].is_nan()).collect();
    if idx.len() == x.len() || idx.is_empty() {
        return x.to_vec();
    }
    let mut out = x.to_vec();
    for i in 0..x.len() {
        if x[i].is_nan() {
            let after = idx.partition_point(|&j| j < i);
            out[i] = if after == 0 {
                x[idx[0]]
            } else if after == idx.len() {
                x[idx[idx.len() - 1]]
            } else {
                let (a, b) = (idx[after - 1], idx[after]);
                x[a] + (x[b] - x[a]) * (i - a) as f64 / (b - a) as f64
            };
        }
    }
    out
}

/// forecast's `myarima`: fit one model and score it; `None` stands for R's `list(ic = Inf)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn myarima(
    x: &[f64],
    order: [usize; 3],
    seasonal: [usize; 3],
    m: usize,
    constant: bool,
    ic: InformationCriterion,
    approximation: bool,
    offset: f64,
    xreg: &Xreg,
) -> Option<Candidate> {
    fit_and_score(
        x,
        order,
        seasonal,
        m,
        constant,
        ic,
        approximation,
        offset,
        xreg,
    )
    .ok()
}

/// [`myarima`] keeping the reason a fit failed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_and_score(
    x: &[f64],
    order: [usize; 3],
    seasonal: [usize; 3],
    m: usize,
    constant: bool,
    ic: InformationCriterion,
    approximation: bool,
    offset: f64,
    xreg: &Xreg,
) -> Result<Candidate> {
    let n = interior_len(x);
    let diffs = order[1] + seasonal[1];
    let method = if approximation {
        Method::Css
    } else {
        Method::CssMl
    };
    let arma = Arma {
        p: order[0],
        q: order[2],
        sp: seasonal[0],
        sq: seasonal[2],
        period: m,
        d: order[1],
        sd: seasonal[1],
    };
    let fit = if diffs == 1 && constant {
        let mut cols = vec![(1..=x.len()).map(|t| t as f64).collect::<Vec<f64>>()];
        cols.extend(xreg.cols.iter().cloned());
        let mut names = vec!["drift".to_string()];
        names.extend(xreg.names.iter().cloned());
        arima(x, arma, &cols, &names, true, method, None)
    } else {
        arima(x, arma, &xreg.cols, &xreg.names, constant, method, None)
    };
    score(fit?, n, order, seasonal, m, ic, approximation, offset)
        .ok_or_else(|| Error::Invalid("the model cannot be scored".into()))
}

#[allow(clippy::too_many_arguments)]
fn score(
    mut fit: ArimaFit,
    n: usize,
    order: [usize; 3],
    seasonal: [usize; 3],
    m: usize,
    ic: InformationCriterion,
    approximation: bool,
    offset: f64,
) -> Option<Candidate> {
    let nstar = n as f64 - order[1] as f64 - (seasonal[1] * m) as f64;
    let npar = fit.mask.iter().filter(|v| **v).count() as f64 + 1.0;
    let aic = if approximation {
        offset + nstar * fit.sigma2.ln() + 2.0 * npar
    } else {
        fit.aic.unwrap_or(f64::NAN)
    };
    let (aic, bic, aicc, mut icv) = if !aic.is_nan() {
        let bic = aic + npar * (nstar.ln() - 2.0);
        let aicc = aic + 2.0 * npar * (npar + 1.0) / (nstar - npar - 1.0);
        let icv = match ic {
            InformationCriterion::Aic => aic,
            InformationCriterion::Aicc => aicc,
            InformationCriterion::Bic => bic,
        };
        (aic, bic, aicc, icv)
    } else {
        (f64::INFINITY, f64::INFINITY, f64::INFINITY, f64::INFINITY)
    };
    let ssr: f64 = fit
        .residuals
        .iter()
        .filter(|v| !v.is_nan())
        .map(|v| v * v)
        .sum();
    let sigma2 = ssr / (nstar - npar + 1.0);
    let mut minroot: f64 = 2.0;
    if order[0] + seasonal[0] > 0 {
        match min_root_modulus(&fit.model.phi, -1.0) {
            Some(r) => minroot = minroot.min(r),
            None => icv = f64::INFINITY,
        }
    }
    if order[2] + seasonal[2] > 0 && icv < f64::INFINITY {
        match min_root_modulus(&fit.model.theta, 1.0) {
            Some(r) => minroot = minroot.min(r),
            None => icv = f64::INFINITY,
        }
    }
    let bad_var = fit
        .var_coef
        .as_ref()
        .is_some_and(|v| (0..v.nrows()).any(|i| v[(i, i)].is_nan() || v[(i, i)] < 0.0));
    if minroot < 1.0 + 1e-2 || bad_var {
        icv = f64::INFINITY;
    }
    fit.sigma2 = fit.sigma2.max(0.0);
    Some(Candidate {
        fit,
        order,
        seasonal,
        period: m,
        aic,
        aicc,
        bic,
        ic: icv,
        sigma2,
    })
}

/// A model with every coefficient fixed (forecast's `Arima(..., fixed = ...)`), used for constant
/// series and exactly polynomial differences.
fn fixed_model(
    x: &[f64],
    order: [usize; 3],
    seasonal: [usize; 3],
    m: usize,
    constant_value: Option<f64>,
    ic: InformationCriterion,
) -> Result<Candidate> {
    let n = interior_len(x);
    let arma = Arma {
        p: 0,
        q: 0,
        sp: 0,
        sq: 0,
        period: m,
        d: order[1],
        sd: seasonal[1],
    };
    let diffs = order[1] + seasonal[1];
    let fit = match constant_value {
        Some(c) if diffs == 1 => {
            let cols = vec![(1..=x.len()).map(|t| t as f64).collect::<Vec<f64>>()];
            arima(
                x,
                arma,
                &cols,
                &["drift".to_string()],
                true,
                Method::CssMl,
                Some(&[c]),
            )?
        }
        Some(c) => arima(x, arma, &[], &[], true, Method::CssMl, Some(&[c]))?,
        None => arima(x, arma, &[], &[], false, Method::CssMl, Some(&[]))?,
    };
    score(fit, n, order, seasonal, m, ic, false, 0.0)
        .ok_or_else(|| Error::Invalid("the model cannot be scored".into()))
}

/// R's `auto.arima(x, xreg = xreg)` for a series with seasonal period `m` (1 = none).
/// `x` holds NaN for missing values.
pub(crate) fn auto_arima(
    x_in: &[f64],
    m_in: usize,
    xreg_in: &Xreg,
    opts: &AutoArimaOptions,
) -> Result<Candidate> {
    let first = x_in
        .iter()
        .position(|v| !v.is_nan())
        .ok_or_else(|| Error::Invalid("all values are missing".into()))?;
    let x: Vec<f64> = x_in[first..].to_vec();
    let xreg = Xreg {
        cols: xreg_in.cols.iter().map(|c| c[first..].to_vec()).collect(),
        names: xreg_in.names.clone(),
    };
    let serieslength = interior_len(&x);
    let mut ic = opts.ic;
    if is_constant(&x) {
        let mean = x[0];
        let c = if opts.allow_mean { Some(mean) } else { None };
        return fixed_model(&x, [0, 0, 0], [0, 0, 0], 1, c, ic);
    }
    let m = m_in.max(1);
    let third = serieslength / 3;
    let mut max_p = opts.max_p.min(third);
    let mut max_q = opts.max_q.min(third);
    let mut max_sp = opts.max_sp.min(third / m);
    let mut max_sq = opts.max_sq.min(third / m);
    if serieslength <= 3 {
        ic = InformationCriterion::Aic;
    }
    let has_xreg = !xreg.cols.is_empty();
    let xx: Vec<f64> = if has_xreg {
        let mut cols = vec![vec![1.0; x.len()]];
        cols.extend(xreg.cols.iter().filter(|c| !is_constant(c)).cloned());
        let (beta, _) = ols(&x, &cols)?;
        (0..x.len())
            .map(|t| {
                if x[t].is_nan() {
                    f64::NAN
                } else {
                    x[t] - cols.iter().zip(&beta).map(|(c, b)| c[t] * b).sum::<f64>()
                }
            })
            .collect()
    } else {
        x.clone()
    };
    let col_constant_after = |lag: usize, times: usize, cols: &[Vec<f64>]| {
        cols.iter().any(|c| is_constant(&diff(c, lag, times)))
    };
    let mut sd = opts.sd.unwrap_or(0);
    if m == 1 {
        sd = 0;
        max_sp = 0;
        max_sq = 0;
    } else if opts.sd.is_none() && xx.len() <= 2 * m {
        sd = 0;
    } else if opts.sd.is_none() {
        sd = nsdiffs(&xx, m, opts.max_sd);
        if sd > 0 && has_xreg && col_constant_after(m, sd, &xreg.cols) {
            sd -= 1;
        }
        if sd > 0 && diff(&xx, m, sd).iter().all(|v| v.is_nan()) {
            sd -= 1;
        }
    }
    let dx = if sd > 0 { diff(&xx, m, sd) } else { xx.clone() };
    let diffxreg: Vec<Vec<f64>> = xreg.cols.iter().map(|c| diff(c, m, sd)).collect();
    let d = match opts.d {
        Some(d) => d,
        None => {
            let mut d = ndiffs(&dx, opts.max_d);
            if d > 0 && has_xreg && col_constant_after(1, d, &diffxreg) {
                d -= 1;
            }
            if d > 0 && diff(&dx, 1, d).iter().all(|v| v.is_nan()) {
                d -= 1;
            }
            d
        }
    };
    let dx = diff(&dx, 1, d);
    if dx.is_empty() {
        return Err(Error::Invalid(format!(
            "{serieslength} observations are not enough data after differencing"
        )));
    }
    if is_constant(&dx) && !has_xreg {
        let mean_dx = dx.iter().filter(|v| !v.is_nan()).sum::<f64>()
            / dx.iter().filter(|v| !v.is_nan()).count().max(1) as f64;
        return if sd > 0 && d == 0 {
            fixed_model(&x, [0, d, 0], [0, sd, 0], m, Some(mean_dx / m as f64), ic)
        } else if sd > 0 && d > 0 {
            fixed_model(&x, [0, d, 0], [0, sd, 0], m, None, ic)
        } else if d == 2 {
            fixed_model(&x, [0, d, 0], [0, 0, 0], m, None, ic)
        } else {
            fixed_model(&x, [0, d, 0], [0, 0, 0], m, Some(mean_dx), ic)
        };
    }
    if m > 1 {
        if max_sp > 0 {
            max_p = max_p.min(m - 1);
        }
        if max_sq > 0 {
            max_q = max_q.min(m - 1);
        }
    }
    let approximation = opts.approximation.unwrap_or(x.len() > 150 || m > 12);
    let offset = if approximation {
        let arma = Arma {
            p: 0,
            q: 0,
            sp: 0,
            sq: 0,
            period: m,
            d,
            sd,
        };
        match arima(&x, arma, &xreg.cols, &xreg.names, true, Method::CssMl, None) {
            Ok(f) => -2.0 * f.loglik - serieslength as f64 * f.sigma2.ln(),
            Err(_) => 0.0,
        }
    } else {
        0.0
    };
    let allow_drift = opts.allow_drift && d + sd == 1;
    let allow_mean = opts.allow_mean && d + sd == 0;
    let mut constant = allow_drift || allow_mean;

    let (mut start_p, mut start_q, mut start_sp, mut start_sq) =
        (opts.start_p, opts.start_q, opts.start_sp, opts.start_sq);
    if x.len() < 10 {
        start_p = start_p.min(1);
        start_q = start_q.min(1);
        start_sp = 0;
        start_sq = 0;
    }
    let mut p = start_p.min(max_p);
    let mut q = start_q.min(max_q);
    let mut sp = start_sp.min(max_sp);
    let mut sq = start_sq.min(max_sq);

    let nmodels = opts.nmodels.max(5);
    // (p, q, P, Q, constant, ic)
    let mut results: Vec<(usize, usize, usize, usize, bool, f64)> = Vec::new();
    let fit_one = |p: usize, q: usize, sp: usize, sq: usize, c: bool| {
        myarima(
            &x,
            [p, d, q],
            [sp, sd, sq],
            m,
            c,
            ic,
            approximation,
            offset,
            &xreg,
        )
    };
    let icof = |f: &Option<Candidate>| f.as_ref().map_or(f64::INFINITY, |c| c.ic);

    let mut best = fit_one(p, q, sp, sq, constant);
    results.push((p, q, sp, sq, constant, icof(&best)));
    let fit = fit_one(0, 0, 0, 0, constant);
    results.push((0, 0, 0, 0, constant, icof(&fit)));
    if icof(&fit) < icof(&best) {
        best = fit;
        p = 0;
        q = 0;
        sp = 0;
        sq = 0;
    }
    if max_p > 0 || max_sp > 0 {
        let (np_, nsp) = ((max_p > 0) as usize, (m > 1 && max_sp > 0) as usize);
        let fit = fit_one(np_, 0, nsp, 0, constant);
        results.push((np_, 0, nsp, 0, constant, icof(&fit)));
        if icof(&fit) < icof(&best) {
            best = fit;
            p = np_;
            sp = nsp;
            q = 0;
            sq = 0;
        }
    }
    if max_q > 0 || max_sq > 0 {
        let (nq, nsq) = ((max_q > 0) as usize, (m > 1 && max_sq > 0) as usize);
        let fit = fit_one(0, nq, 0, nsq, constant);
        results.push((0, nq, 0, nsq, constant, icof(&fit)));
        if icof(&fit) < icof(&best) {
            best = fit;
            p = 0;
            sp = 0;
            sq = nsq;
            q = nq;
        }
    }
    if constant {
        let fit = fit_one(0, 0, 0, 0, false);
        results.push((0, 0, 0, 0, false, icof(&fit)));
        if icof(&fit) < icof(&best) {
            best = fit;
            p = 0;
            q = 0;
            sp = 0;
            sq = 0;
        }
    }
    let is_new = |results: &[(usize, usize, usize, usize, bool, f64)],
                  p: usize,
                  q: usize,
                  sp: usize,
                  sq: usize,
                  c: bool| {
        !results
            .iter()
            .any(|r| r.0 == p && r.1 == q && r.2 == sp && r.3 == sq && r.4 == c)
    };
    // R's neighbour moves, tried in its order: first on (P, Q), then on (p, q); the first
    // move that improves the criterion is taken and the search restarts from there.
    const MOVES: [(isize, isize); 8] = [
        (-1, 0),
        (0, -1),
        (1, 0),
        (0, 1),
        (-1, -1),
        (-1, 1),
        (1, -1),
        (1, 1),
    ];
    let mut startk = 0;
    while startk < results.len() && results.len() < nmodels {
        startk = results.len();
        let mut moved = false;
        'parts: for seasonal_part in [true, false] {
            let (a, b, max_a, max_b) = if seasonal_part {
                (sp, sq, max_sp, max_sq)
            } else {
                (p, q, max_p, max_q)
            };
            for (da, db) in MOVES {
                let (Some(na), Some(nb)) = (a.checked_add_signed(da), b.checked_add_signed(db))
                else {
                    continue;
                };
                if na > max_a || nb > max_b {
                    continue;
                }
                let (np_, nq, nsp, nsq) = if seasonal_part {
                    (p, q, na, nb)
                } else {
                    (na, nb, sp, sq)
                };
                if !is_new(&results, np_, nq, nsp, nsq, constant) {
                    continue;
                }
                if results.len() >= nmodels {
                    break 'parts;
                }
                let fit = fit_one(np_, nq, nsp, nsq, constant);
                results.push((np_, nq, nsp, nsq, constant, icof(&fit)));
                if icof(&fit) < icof(&best) {
                    best = fit;
                    (p, q, sp, sq) = (np_, nq, nsp, nsq);
                    moved = true;
                    break 'parts;
                }
            }
        }
        if moved {
            continue;
        }
        if (allow_drift || allow_mean)
            && is_new(&results, p, q, sp, sq, !constant)
            && results.len() < nmodels
        {
            let fit = fit_one(p, q, sp, sq, !constant);
            results.push((p, q, sp, sq, !constant, icof(&fit)));
            if icof(&fit) < icof(&best) {
                best = fit;
                constant = !constant;
            }
        }
    }

    if approximation && best.is_some() {
        let mut idx: Vec<usize> = (0..results.len()).collect();
        idx.sort_by(|&a, &b| results[a].5.total_cmp(&results[b].5));
        best = None;
        for k in idx {
            let r = results[k];
            let fit = myarima(
                &x,
                [r.0, d, r.1],
                [r.2, sd, r.3],
                m,
                r.4,
                ic,
                false,
                0.0,
                &xreg,
            );
            if icof(&fit) < f64::INFINITY {
                best = fit;
                break;
            }
        }
    }
    match best {
        Some(b) if b.ic < f64::INFINITY => Ok(b),
        _ => Err(Error::Invalid("no suitable ARIMA model found".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::testdata::{AIRPASSENGERS, WWWUSAGE};

    #[test]
    fn kpss_pvalue_interpolates_urca_table() {
        assert!((kpss_pvalue(0.1) - 0.10).abs() < 1e-12);
        assert!((kpss_pvalue(0.463) - 0.05).abs() < 1e-12);
        assert!((kpss_pvalue(0.5185) - 0.0375).abs() < 1e-9);
        assert!((kpss_pvalue(2.0) - 0.01).abs() < 1e-12);
    }

    /// R: `ndiffs(WWWusage)` is 1; `nsdiffs(AirPassengers)` is 1.
    #[test]
    fn differencing_tests_match_r() {
        assert_eq!(ndiffs(&WWWUSAGE, 2), 1);
        let lx: Vec<f64> = AIRPASSENGERS.iter().map(|v| v.ln()).collect();
        assert_eq!(nsdiffs(&lx, 12, 1), 1);
        let sdiff = diff(&lx, 12, 1);
        assert_eq!(ndiffs(&sdiff, 2), 1);
    }

    /// R 4.x, forecast 8.x: `auto.arima(WWWusage)` gives ARIMA(1,1,1), ar1 0.6504, ma1 0.5256,
    /// sigma^2 9.995, log likelihood -254.15, AIC 514.3, AICc 514.55, BIC 522.08.
    #[test]
    fn wwwusage_auto_arima_matches_r() {
        let c = auto_arima(&WWWUSAGE, 1, &Xreg::default(), &AutoArimaOptions::default()).unwrap();
        assert_eq!(c.order, [1, 1, 1]);
        assert_eq!(c.fit.coef.len(), 2);
        assert!((c.fit.coef[0] - 0.6504).abs() < 0.005, "{:?}", c.fit.coef);
        assert!((c.fit.coef[1] - 0.5256).abs() < 0.005, "{:?}", c.fit.coef);
        assert!((c.sigma2 - 9.995).abs() < 0.05, "{}", c.sigma2);
        assert!((c.fit.loglik + 254.15).abs() < 0.01, "{}", c.fit.loglik);
        assert!((c.aicc - 514.55).abs() < 0.01, "{}", c.aicc);
        assert!((c.aic - 514.30).abs() < 0.01, "{}", c.aic);
        assert!((c.bic - 522.08).abs() < 0.01, "{}", c.bic);
    }
}

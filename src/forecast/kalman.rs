//! The ARIMA state-space form and its Kalman filter, as R's `stats::arima` builds and runs them.
//!
//! The state holds `r = max(p, q + 1)` ARMA states followed by `d` differencing states (the
//! coefficients of the differencing polynomial, `Delta`), so the filter runs on the undifferenced
//! series (R's `makeARIMA`). The ARMA block starts at the stationary covariance computed by
//! Gardner, Harvey and Phillips' algorithm (R's `getQ0`); the differencing states are diffuse with
//! variance `kappa`. Matrices are stored column-major in flat `Vec<f64>` (element `(i, j)` at
//! `i + rd * j`) and every buffer the filter needs is allocated once per model, never per step.

// Index loops mirror the reference C and Fortran code line by line, which keeps the port checkable.
#![allow(clippy::needless_range_loop)]

/// R's default variance for the diffuse differencing states.
pub(crate) const KAPPA: f64 = 1e6;

/// A state-space ARIMA model: coefficients, state and covariances.
#[derive(Debug, Clone)]
pub(crate) struct StateSpace {
    /// Expanded AR coefficients (seasonal part multiplied out).
    pub phi: Vec<f64>,
    /// Expanded MA coefficients, padded with zeros to `r - 1`.
    pub theta: Vec<f64>,
    /// Differencing polynomial coefficients (`-Delta[-1]` in R).
    pub delta: Vec<f64>,
    /// The non-zero entries of `delta` as `(index, value)`; adding the zero ones changes nothing.
    nzdelta: Vec<(usize, f64)>,
    /// Number of ARMA states.
    pub r: usize,
    /// Total number of states, `r + delta.len()`.
    pub rd: usize,
    /// Filtered state after the last run.
    pub a: Vec<f64>,
    /// Filtered state covariance after the last run.
    pub p: Vec<f64>,
    /// Predicted covariance; holds the initial covariance before a run.
    pub pn: Vec<f64>,
    /// Scratch: predicted state.
    anew: Vec<f64>,
    /// Scratch: `Pnew Z`.
    m: Vec<f64>,
    /// Scratch: `T P`.
    mm: Vec<f64>,
    /// Scratch: `M` of the previous observation (steady-state detection).
    mprev: Vec<f64>,
    /// Scratch for `getQ0`.
    q0: Q0Work,
}

/// The differencing polynomial `(1 - B)^d (1 - B^s)^D`, returned as R's `Delta` (signs flipped,
/// leading 1 dropped).
pub(crate) fn delta_poly(d: usize, sd: usize, period: usize) -> Vec<f64> {
    let mut poly = vec![1.0];
    for _ in 0..d {
        poly = convolve(&poly, &[1.0, -1.0]);
    }
    for _ in 0..sd {
        let mut s = vec![0.0; period + 1];
        s[0] = 1.0;
        s[period] = -1.0;
        poly = convolve(&poly, &s);
    }
    poly[1..].iter().map(|v| -v).collect()
}

fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            out[i + j] += x * y;
        }
    }
    out
}

impl StateSpace {
    /// R's `makeARIMA(phi, theta, Delta, kappa)` with Gardner's initial covariance.
    pub fn new(phi: &[f64], theta: &[f64], delta: &[f64], kappa: f64) -> StateSpace {
        let p = phi.len();
        let q = theta.len();
        let r = p.max(q + 1);
        let d = delta.len();
        let rd = r + d;
        let mut th = theta.to_vec();
        if th.len() < r - 1 {
            th.resize(r - 1, 0.0);
        }
        let mut ss = StateSpace {
            phi: phi.to_vec(),
            theta: th,
            delta: delta.to_vec(),
            nzdelta: delta
                .iter()
                .enumerate()
                .filter(|(_, v)| **v != 0.0)
                .map(|(k, v)| (k, *v))
                .collect(),
            r,
            rd,
            a: vec![0.0; rd],
            p: vec![0.0; rd * rd],
            pn: vec![0.0; rd * rd],
            anew: vec![0.0; rd],
            m: vec![0.0; rd],
            mm: vec![0.0; rd * rd],
            mprev: vec![0.0; rd],
            q0: Q0Work::new(r),
        };
        ss.reset_initial(kappa);
        ss
    }

    /// Replaces the ARMA coefficients (same lengths) and resets state and initial covariance,
    /// as R's `upARIMA` does before each likelihood evaluation.
    pub fn update(&mut self, phi: &[f64], theta: &[f64], kappa: f64) {
        self.phi.copy_from_slice(phi);
        self.theta[..theta.len()].copy_from_slice(theta);
        for t in &mut self.theta[theta.len()..] {
            *t = 0.0;
        }
        self.reset_initial(kappa);
    }

    fn reset_initial(&mut self, kappa: f64) {
        let (r, rd) = (self.r, self.rd);
        self.a.iter_mut().for_each(|v| *v = 0.0);
        self.pn.iter_mut().for_each(|v| *v = 0.0);
        if r > 1 {
            self.q0.compute(&self.phi, &self.theta);
            for j in 0..r {
                for i in 0..r {
                    self.pn[i + rd * j] = self.q0.res[i + r * j];
                }
            }
        } else {
            self.pn[0] = if self.phi.is_empty() {
                1.0
            } else {
                1.0 / (1.0 - self.phi[0] * self.phi[0])
            };
        }
        for i in r..rd {
            self.pn[i + rd * i] = kappa;
        }
    }

    /// R's `ARIMA_Like`: runs the filter over `y` (NaN = missing) from the initial state and
    /// returns `(ssq, sumlog, nu)`. With `resid`, writes standardized innovations (NaN where
    /// missing). Leaves the filtered state in `a` and `p`.
    ///
    /// One addition to R's code, for speed: once the gain and `M = Pnew Z'` stop changing (to
    /// 1e-13, relative, on two consecutive observations) the filter has reached its steady
    /// state and the covariance recursion is skipped until a missing value needs it again. The
    /// likelihood changes by far less than the precision the fit is checked to.
    pub fn like(&mut self, y: &[f64], mut resid: Option<&mut [f64]>) -> (f64, f64, usize) {
        let (r, rd) = (self.r, self.rd);
        let d = rd - r;
        let p = self.phi.len();
        let q = self.theta.len();
        let phi = &self.phi;
        let theta = &self.theta;
        let delta = &self.delta;
        let nzdelta = &self.nzdelta;
        let a = &mut self.a;
        let pm = &mut self.p;
        let pnew = &mut self.pn;
        let anew = &mut self.anew;
        let mv = &mut self.m;
        let mm = &mut self.mm;
        let mprev = &mut self.mprev;
        let mut frozen = false;
        let mut calm = 0u32;
        let mut gain = f64::NAN;
        let mut gain_prev = f64::NAN;
        let mut ssq = 0.0;
        let mut sumlog = 0.0;
        let mut nu = 0usize;
        for (l, &yl) in y.iter().enumerate() {
            for i in 0..r {
                let mut tmp = if i < r - 1 { a[i + 1] } else { 0.0 };
                if i < p {
                    tmp += phi[i] * a[0];
                }
                anew[i] = tmp;
            }
            if d > 0 {
                anew[(r + 1)..rd].copy_from_slice(&a[r..(rd - 1)]);
                let mut tmp = a[0];
                for i in 0..d {
                    tmp += delta[i] * a[r + i];
                }
                anew[r] = tmp;
            }
            if l > 0 && !frozen {
                if d == 0 {
                    for i in 0..r {
                        let vi = if i == 0 {
                            1.0
                        } else if i - 1 < q {
                            theta[i - 1]
                        } else {
                            0.0
                        };
                        for j in 0..r {
                            let mut tmp = if j == 0 {
                                vi
                            } else if j - 1 < q {
                                vi * theta[j - 1]
                            } else {
                                0.0
                            };
                            if i < p && j < p {
                                tmp += phi[i] * phi[j] * pm[0];
                            }
                            if i < r - 1 && j < r - 1 {
                                tmp += pm[i + 1 + r * (j + 1)];
                            }
                            if i < p && j < r - 1 {
                                tmp += phi[i] * pm[j + 1];
                            }
                            if j < p && i < r - 1 {
                                tmp += phi[j] * pm[i + 1];
                            }
                            pnew[i + r * j] = tmp;
                        }
                    }
                } else {
                    // mm = T P, column by column (T: companion rows, then Z, then a shift)
                    for j in 0..rd {
                        let pc = &pm[rd * j..rd * (j + 1)];
                        let mc = &mut mm[rd * j..rd * (j + 1)];
                        let p0 = pc[0];
                        for i in 0..r {
                            let mut tmp = 0.0;
                            if i < p {
                                tmp += phi[i] * p0;
                            }
                            if i < r - 1 {
                                tmp += pc[i + 1];
                            }
                            mc[i] = tmp;
                        }
                        let mut tmp = p0;
                        for &(k, dk) in nzdelta {
                            tmp += dk * pc[r + k];
                        }
                        mc[r] = tmp;
                        mc[r + 1..rd].copy_from_slice(&pc[r..rd - 1]);
                    }
                    // Pnew = mm T', column by column
                    {
                        let m0 = &mm[..rd];
                        for i in 0..r {
                            let pc = &mut pnew[rd * i..rd * (i + 1)];
                            let ph = if i < p { phi[i] } else { 0.0 };
                            if i < r - 1 {
                                let mi = &mm[rd * (i + 1)..rd * (i + 2)];
                                for ((o, a0), b) in pc.iter_mut().zip(m0).zip(mi) {
                                    *o = (0.0 + ph * a0) + b;
                                }
                            } else {
                                for (o, a0) in pc.iter_mut().zip(m0) {
                                    *o = 0.0 + ph * a0;
                                }
                            }
                        }
                        let pc = &mut pnew[rd * r..rd * (r + 1)];
                        pc.copy_from_slice(m0);
                        for &(k, dk) in nzdelta {
                            let mk = &mm[rd * (r + k)..rd * (r + k + 1)];
                            for (o, v) in pc.iter_mut().zip(mk) {
                                *o += dk * v;
                            }
                        }
                        pnew[rd * (r + 1)..rd * rd].copy_from_slice(&mm[rd * r..rd * (rd - 1)]);
                    }
                    let qq = q.min(r - 1);
                    for i in 0..=qq {
                        let vi = if i == 0 { 1.0 } else { theta[i - 1] };
                        for j in 0..=qq {
                            pnew[i + rd * j] += vi * if j == 0 { 1.0 } else { theta[j - 1] };
                        }
                    }
                }
            }
            if !yl.is_nan() {
                let mut res = yl - anew[0];
                for i in 0..d {
                    res -= delta[i] * anew[r + i];
                }
                if !frozen {
                    mv.copy_from_slice(&pnew[..rd]);
                    for &(k, dk) in nzdelta {
                        let col = &pnew[(r + k) * rd..(r + k + 1) * rd];
                        for (m, v) in mv.iter_mut().zip(col) {
                            *m += v * dk;
                        }
                    }
                    gain = mv[0];
                    for j in 0..d {
                        gain += delta[j] * mv[r + j];
                    }
                    let steady = l > 0
                        && (gain - gain_prev).abs() <= 1e-13 * gain.abs()
                        && mv
                            .iter()
                            .zip(mprev.iter())
                            .all(|(m, o)| (m - o).abs() <= 1e-13 * (1.0 + m.abs()));
                    calm = if steady { calm + 1 } else { 0 };
                    gain_prev = gain;
                    mprev.copy_from_slice(mv);
                }
                if gain < 1e4 {
                    nu += 1;
                    ssq += res * res / gain;
                    sumlog += gain.ln();
                }
                if let Some(rs) = resid.as_deref_mut() {
                    rs[l] = res / gain.sqrt();
                }
                for i in 0..rd {
                    a[i] = anew[i] + mv[i] * res / gain;
                }
                if !frozen {
                    for j in 0..rd {
                        let mj = mv[j];
                        let pc = &mut pm[j * rd..(j + 1) * rd];
                        let nc = &pnew[j * rd..(j + 1) * rd];
                        for ((o, n), mi) in pc.iter_mut().zip(nc).zip(mv.iter()) {
                            *o = n - mi * mj / gain;
                        }
                    }
                    frozen = calm >= 2;
                }
            } else {
                // a gap: the steady state no longer holds after it
                frozen = false;
                calm = 0;
                a.copy_from_slice(anew);
                pm.copy_from_slice(pnew);
                if let Some(rs) = resid.as_deref_mut() {
                    rs[l] = f64::NAN;
                }
            }
        }
        (ssq, sumlog, nu)
    }

    /// The full transition matrix `T` (column-major), for forecasting.
    fn transition(&self) -> Vec<f64> {
        let (r, rd) = (self.r, self.rd);
        let d = rd - r;
        let mut t = vec![0.0; rd * rd];
        for (i, ph) in self.phi.iter().enumerate() {
            t[i] = *ph;
        }
        for i in 1..r {
            t[(i - 1) + rd * i] = 1.0;
        }
        if d > 0 {
            // row r is Z = (1, 0.., 0, Delta)
            t[r] = 1.0;
            for (k, dl) in self.delta.iter().enumerate() {
                t[r + rd * (r + k)] = *dl;
            }
            for i in 1..d {
                t[(r + i) + rd * (r + i - 1)] = 1.0;
            }
        }
        t
    }

    /// R's `KalmanFore`: `h`-step predictions of the observation and their variances (in units
    /// of the innovation variance) from the current filtered state. Does not change `self`.
    pub fn forecast(&self, h: usize) -> (Vec<f64>, Vec<f64>) {
        let (r, rd) = (self.r, self.rd);
        let t = self.transition();
        let mut z = vec![0.0; rd];
        z[0] = 1.0;
        for (k, dl) in self.delta.iter().enumerate() {
            z[r + k] = *dl;
        }
        let mut rvec = vec![0.0; rd];
        rvec[0] = 1.0;
        for i in 1..r {
            rvec[i] = self.theta.get(i - 1).copied().unwrap_or(0.0);
        }
        let mut a = self.a.clone();
        let mut p = self.p.clone();
        let mut anew = vec![0.0; rd];
        let mut mm = vec![0.0; rd * rd];
        let mut means = Vec::with_capacity(h);
        let mut vars = Vec::with_capacity(h);
        for _ in 0..h {
            let mut fc = 0.0;
            for i in 0..rd {
                let mut tmp = 0.0;
                for k in 0..rd {
                    tmp += t[i + rd * k] * a[k];
                }
                anew[i] = tmp;
                fc += tmp * z[i];
            }
            a.copy_from_slice(&anew);
            means.push(fc);
            for i in 0..rd {
                for j in 0..rd {
                    let mut tmp = 0.0;
                    for k in 0..rd {
                        tmp += t[i + rd * k] * p[k + rd * j];
                    }
                    mm[i + rd * j] = tmp;
                }
            }
            let mut var = 0.0;
            for i in 0..rd {
                for j in 0..rd {
                    let mut tmp = rvec[i] * rvec[j];
                    for k in 0..rd {
                        tmp += mm[i + rd * k] * t[j + rd * k];
                    }
                    p[i + rd * j] = tmp;
                }
            }
            for i in 0..rd {
                for j in 0..rd {
                    var += z[i] * z[j] * p[i + rd * j];
                }
            }
            vars.push(var);
        }
        (means, vars)
    }
}

/// Workspace for Gardner et al.'s algorithm (AS 154), sized for `r` states.
#[derive(Debug, Clone)]
struct Q0Work {
    r: usize,
    xnext: Vec<f64>,
    xrow: Vec<f64>,
    rbar: Vec<f64>,
    thetab: Vec<f64>,
    v: Vec<f64>,
    pp: Vec<f64>,
    res: Vec<f64>,
}

impl Q0Work {
    fn new(r: usize) -> Q0Work {
        let np = r * (r + 1) / 2;
        let nrbar = np * np.saturating_sub(1) / 2;
        Q0Work {
            r,
            xnext: vec![0.0; np],
            xrow: vec![0.0; np],
            rbar: vec![0.0; nrbar.max(1)],
            thetab: vec![0.0; np],
            v: vec![0.0; np],
            pp: vec![0.0; np.max(r * r)],
            res: vec![0.0; r * r],
        }
    }

    /// R's `getQ0(phi, theta)`: the initial covariance of the ARMA states, result in `res`
    /// (`r x r`, column-major).
    fn compute(&mut self, phi: &[f64], theta: &[f64]) {
        let r = self.r;
        let p = phi.len();
        let q = theta.len();
        let np = r * (r + 1) / 2;
        let nrbar = np * (np - 1) / 2;
        let th = |i: usize| -> f64 {
            if i == 0 {
                1.0
            } else if i - 1 < q {
                theta[i - 1]
            } else {
                0.0
            }
        };
        let mut ind = 0;
        for j in 0..r {
            let vj = th(j);
            for i in j..r {
                self.v[ind] = th(i) * vj;
                ind += 1;
            }
        }
        let pp = &mut self.pp;
        if r == 1 {
            self.res[0] = if p == 0 {
                1.0
            } else {
                1.0 / (1.0 - phi[0] * phi[0])
            };
            return;
        }
        if p > 0 {
            let rbar = &mut self.rbar;
            let thetab = &mut self.thetab;
            let xnext = &mut self.xnext;
            let xrow = &mut self.xrow;
            rbar[..nrbar].iter_mut().for_each(|v| *v = 0.0);
            for i in 0..np {
                pp[i] = 0.0;
                thetab[i] = 0.0;
                xnext[i] = 0.0;
            }
            let mut ind: usize = 0;
            let mut ind1: isize = -1;
            let npr = np - r;
            let npr1 = npr + 1;
            let mut indj = npr;
            let mut ind2: isize = npr as isize - 1;
            for j in 0..r {
                let phij = if j < p { phi[j] } else { 0.0 };
                xnext[indj] = 0.0;
                indj += 1;
                let mut indi = npr1 + j;
                for i in j..r {
                    let ynext = self.v[ind];
                    ind += 1;
                    let phii = if i < p { phi[i] } else { 0.0 };
                    if j != r - 1 {
                        xnext[indj] = -phii;
                        if i != r - 1 {
                            xnext[indi] -= phij;
                            ind1 += 1;
                            xnext[ind1 as usize] = -1.0;
                        }
                    }
                    xnext[npr] = -phii * phij;
                    ind2 += 1;
                    if ind2 as usize >= np {
                        ind2 = 0;
                    }
                    xnext[ind2 as usize] += 1.0;
                    inclu2(np, xnext, xrow, ynext, pp, rbar, thetab);
                    xnext[ind2 as usize] = 0.0;
                    if i != r - 1 {
                        xnext[indi] = 0.0;
                        indi += 1;
                        xnext[ind1 as usize] = 0.0;
                    }
                }
            }
            let mut ithisr = nrbar as isize - 1;
            let mut im = np as isize - 1;
            for i in 0..np {
                let mut bi = thetab[im as usize];
                let mut jm = np as isize - 1;
                for _ in 0..i {
                    bi -= rbar[ithisr as usize] * pp[jm as usize];
                    ithisr -= 1;
                    jm -= 1;
                }
                pp[im as usize] = bi;
                im -= 1;
            }
            // re-order
            xnext[..r].copy_from_slice(&pp[npr..npr + r]);
            let mut ind = np as isize - 1;
            let mut ind1 = npr as isize - 1;
            for _ in 0..npr {
                pp[ind as usize] = pp[ind1 as usize];
                ind -= 1;
                ind1 -= 1;
            }
            pp[..r].copy_from_slice(&xnext[..r]);
        } else {
            let mut indn = np;
            let mut ind = np;
            for i in 0..r {
                for j in 0..=i {
                    ind -= 1;
                    pp[ind] = self.v[ind];
                    if j != 0 {
                        indn -= 1;
                        pp[ind] += pp[indn];
                    }
                }
            }
        }
        // unpack to a full matrix (in place in R; here from pp into res)
        let res = &mut self.res;
        res[..np].copy_from_slice(&pp[..np]);
        let mut ind = np;
        for i in (1..r).rev() {
            for j in (i..r).rev() {
                ind -= 1;
                res[r * i + j] = res[ind];
            }
        }
        for i in 0..r - 1 {
            for j in (i + 1)..r {
                res[i + r * j] = res[j + r * i];
            }
        }
    }
}

fn inclu2(
    np: usize,
    xnext: &[f64],
    xrow: &mut [f64],
    mut ynext: f64,
    d: &mut [f64],
    rbar: &mut [f64],
    thetab: &mut [f64],
) {
    xrow[..np].copy_from_slice(&xnext[..np]);
    let mut ithisr = 0usize;
    for i in 0..np {
        if xrow[i] != 0.0 {
            let xi = xrow[i];
            let di = d[i];
            let dpi = di + xi * xi;
            d[i] = dpi;
            let cbar = di / dpi;
            let sbar = xi / dpi;
            for k in (i + 1)..np {
                let xk = xrow[k];
                let rbthis = rbar[ithisr];
                xrow[k] = xk - xi * rbthis;
                rbar[ithisr] = cbar * rbthis + sbar * xk;
                ithisr += 1;
            }
            let xk = ynext;
            ynext = xk - xi * thetab[i];
            thetab[i] = cbar * thetab[i] + sbar * xk;
            if di == 0.0 {
                return;
            }
        } else {
            ithisr += np - i - 1;
        }
    }
}

/// Differences `w` in place as R's `ARIMA_CSS` does: `d` lag-1 passes, then `sd` seasonal ones.
/// The first `d + sd * period` values are left partly differenced; the recursion never reads
/// them.
pub(crate) fn difference_in_place(w: &mut [f64], d: usize, sd: usize, period: usize) {
    let n = w.len();
    for _ in 0..d {
        for l in (1..n).rev() {
            w[l] -= w[l - 1];
        }
    }
    for _ in 0..sd {
        for l in (period..n).rev() {
            w[l] -= w[l - period];
        }
    }
}

/// R's `ARIMA_CSS` on an already differenced series `w` (see [`difference_in_place`]):
/// conditional sum of squares of the ARMA recursion from `ncond` on. Returns `ssq / nu` and
/// leaves the residuals in `resid` (zeros for the first `ncond`).
pub(crate) fn css(w: &[f64], phi: &[f64], theta: &[f64], ncond: usize, resid: &mut [f64]) -> f64 {
    let n = w.len();
    let p = phi.len();
    let q = theta.len();
    let mut ssq = 0.0;
    let mut nu = 0usize;
    resid[..ncond.min(n)].iter_mut().for_each(|v| *v = 0.0);
    for l in ncond..n {
        let mut tmp = w[l];
        for (ph, wv) in phi.iter().zip(w[l - p..l].iter().rev()) {
            tmp -= ph * wv;
        }
        let jmax = (l - ncond).min(q);
        for (th, rv) in theta[..jmax].iter().zip(resid[l - jmax..l].iter().rev()) {
            tmp -= th * rv;
        }
        resid[l] = tmp;
        if !tmp.is_nan() {
            nu += 1;
            ssq += tmp * tmp;
        }
    }
    ssq / nu as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stationary covariance of the ARMA(1,1) state (x_t, theta e_t) in closed form:
    /// var(x) = (1 + 2 phi theta + theta^2) / (1 - phi^2), cov(x, theta e) = theta^2,
    /// var(theta e) = theta^2.
    #[test]
    fn gardner_q0_matches_closed_form_arma11() {
        let (phi, theta) = (0.6_f64, 0.4_f64);
        let mut w = Q0Work::new(2);
        w.compute(&[phi], &[theta]);
        let v11 = (1.0 + 2.0 * phi * theta + theta * theta) / (1.0 - phi * phi);
        assert!((w.res[0] - v11).abs() < 1e-12, "{:?}", w.res);
        assert!((w.res[1] - theta).abs() < 1e-12, "{:?}", w.res);
        assert!((w.res[2] - theta).abs() < 1e-12, "{:?}", w.res);
        assert!((w.res[3] - theta * theta).abs() < 1e-12, "{:?}", w.res);
    }

    /// Gardner's Q0 solves P = T P T' + R R' for a pure AR(2).
    #[test]
    fn gardner_q0_solves_lyapunov_ar2() {
        let phi = [0.5, -0.3];
        let mut w = Q0Work::new(2);
        w.compute(&phi, &[]);
        let p = &w.res;
        // T = [[phi1, 1], [phi2, 0]], R = (1, 0)
        let t = [phi[0], phi[1], 1.0, 0.0];
        for i in 0..2 {
            for j in 0..2 {
                let mut s = if i == 0 && j == 0 { 1.0 } else { 0.0 };
                for k in 0..2 {
                    for l in 0..2 {
                        s += t[i + 2 * k] * p[k + 2 * l] * t[j + 2 * l];
                    }
                }
                assert!((s - p[i + 2 * j]).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn delta_of_airline_differencing() {
        let d = delta_poly(1, 1, 12);
        assert_eq!(d.len(), 13);
        assert!((d[0] - 1.0).abs() < 1e-15);
        assert!((d[11] - 1.0).abs() < 1e-15);
        assert!((d[12] + 1.0).abs() < 1e-15);
    }
}

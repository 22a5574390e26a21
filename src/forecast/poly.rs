//! Parameter transforms and polynomial roots used by the ARIMA fit: R's `partrans`,
//! `invpartrans`, `ARIMA_transPars`, `ARIMA_Gradtrans`, `maInvert`, and `polyroot` (here through
//! the eigenvalues of the companion matrix, computed by nalgebra).

// Index loops mirror the reference C and Fortran code line by line, which keeps the port checkable.
#![allow(clippy::needless_range_loop)]

use nalgebra::{Complex, DMatrix};

/// The seven integers R keeps in `arma`: p, q, P, Q, period, d, D.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arma {
    pub p: usize,
    pub q: usize,
    pub sp: usize,
    pub sq: usize,
    pub period: usize,
    pub d: usize,
    pub sd: usize,
}

impl Arma {
    pub fn narma(&self) -> usize {
        self.p + self.q + self.sp + self.sq
    }
}

/// Maps unconstrained values to the coefficients of a stationary AR polynomial: `tanh` gives
/// partial autocorrelations, Durbin-Levinson turns them into AR coefficients (R's `partrans`).
pub(crate) fn partrans(raw: &[f64], out: &mut [f64]) {
    let p = raw.len();
    let mut work = [0.0f64; 64];
    let mut buf;
    let work: &mut [f64] = if p <= 64 {
        &mut work[..p]
    } else {
        buf = vec![0.0; p];
        &mut buf
    };
    for j in 0..p {
        out[j] = raw[j].tanh();
        work[j] = out[j];
    }
    for j in 1..p {
        let a = out[j];
        for k in 0..j {
            work[k] -= a * out[j - k - 1];
        }
        out[..j].copy_from_slice(&work[..j]);
    }
}

/// The inverse of [`partrans`] (R's `invpartrans`).
pub(crate) fn invpartrans(phi: &[f64], out: &mut [f64]) {
    let p = phi.len();
    let mut work = vec![0.0; p];
    out[..p].copy_from_slice(phi);
    work.copy_from_slice(phi);
    for j in (1..p).rev() {
        let a = out[j];
        for k in 0..j {
            work[k] = (out[k] + a * out[j - k - 1]) / (1.0 - a * a);
        }
        out[..j].copy_from_slice(&work[..j]);
    }
    for v in out.iter_mut().take(p) {
        *v = v.atanh();
    }
}

/// Applies [`partrans`] to the AR and seasonal AR blocks of a parameter vector (R's
/// `ARIMA_undoPars`).
pub(crate) fn undo_pars(par: &[f64], arma: &Arma) -> Vec<f64> {
    let mut out = par.to_vec();
    if arma.p > 0 {
        partrans(&par[..arma.p], &mut out[..arma.p]);
    }
    let v = arma.p + arma.q;
    if arma.sp > 0 {
        partrans(&par[v..v + arma.sp], &mut out[v..v + arma.sp]);
    }
    out
}

/// R's `ARIMA_Invtrans`.
pub(crate) fn inv_trans(par: &[f64], arma: &Arma) -> Vec<f64> {
    let mut out = par.to_vec();
    if arma.p > 0 {
        invpartrans(&par[..arma.p], &mut out[..arma.p]);
    }
    let v = arma.p + arma.q;
    if arma.sp > 0 {
        invpartrans(&par[v..v + arma.sp], &mut out[v..v + arma.sp]);
    }
    out
}

/// R's `ARIMA_transPars`: expands (transformed) parameters into the full `phi` and `theta`
/// of the multiplied-out seasonal model. `work` must hold `narma` values.
pub(crate) fn trans_pars(
    par: &[f64],
    arma: &Arma,
    trans: bool,
    work: &mut [f64],
    phi: &mut [f64],
    theta: &mut [f64],
) {
    let (mp, mq, msp, msq, ns) = (arma.p, arma.q, arma.sp, arma.sq, arma.period);
    let n = mp + mq + msp + msq;
    work[..n].copy_from_slice(&par[..n]);
    if trans {
        if mp > 0 {
            partrans(&par[..mp], &mut work[..mp]);
        }
        let v = mp + mq;
        if msp > 0 {
            partrans(&par[v..v + msp], &mut work[v..v + msp]);
        }
    }
    let params = &work[..n];
    let p = mp + ns * msp;
    let q = mq + ns * msq;
    if msp + msq > 0 {
        phi[..mp].copy_from_slice(&params[..mp]);
        theta[..mq].copy_from_slice(&params[mp..mp + mq]);
        phi[mp..p].iter_mut().for_each(|v| *v = 0.0);
        theta[mq..q].iter_mut().for_each(|v| *v = 0.0);
        for j in 0..msp {
            phi[(j + 1) * ns - 1] += params[j + mp + mq];
            for i in 0..mp {
                phi[(j + 1) * ns + i] -= params[i] * params[j + mp + mq];
            }
        }
        for j in 0..msq {
            theta[(j + 1) * ns - 1] += params[j + mp + mq + msp];
            for i in 0..mq {
                theta[(j + 1) * ns + i] += params[i + mp] * params[j + mp + mq + msp];
            }
        }
    } else {
        phi[..mp].copy_from_slice(&params[..mp]);
        theta[..mq].copy_from_slice(&params[mp..mp + mq]);
    }
}

/// R's `ARIMA_Gradtrans`: the Jacobian of [`undo_pars`] by forward differences (column-major,
/// `A[i + j*n]`).
pub(crate) fn grad_trans(par: &[f64], arma: &Arma) -> Vec<f64> {
    const EPS: f64 = 1e-3;
    let n = par.len();
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        a[i + i * n] = 1.0;
    }
    let mut block = |off: usize, len: usize| {
        let mut w1: Vec<f64> = par[off..off + len].to_vec();
        let mut w2 = vec![0.0; len];
        let mut w3 = vec![0.0; len];
        partrans(&w1, &mut w2);
        for i in 0..len {
            w1[i] += EPS;
            partrans(&w1, &mut w3);
            for j in 0..len {
                a[i + off + (j + off) * n] = (w3[j] - w2[j]) / EPS;
            }
            w1[i] -= EPS;
        }
    };
    if arma.p > 0 {
        block(0, arma.p);
    }
    if arma.sp > 0 {
        block(arma.p + arma.q, arma.sp);
    }
    a
}

/// Roots of `c[0] + c[1] z + ... + c[k] z^k` with `c[k] != 0` (R's `polyroot`), or `None` when
/// the eigenvalue iteration does not converge.
pub(crate) fn polyroot(c: &[f64]) -> Option<Vec<Complex<f64>>> {
    let k = c.len() - 1;
    if k == 0 {
        return Some(Vec::new());
    }
    let lead = c[k];
    if k == 1 {
        return Some(vec![Complex::new(-c[0] / lead, 0.0)]);
    }
    let mut m = DMatrix::<f64>::zeros(k, k);
    for i in 0..k {
        m[(0, i)] = -c[k - 1 - i] / lead;
    }
    for i in 1..k {
        m[(i, i - 1)] = 1.0;
    }
    let schur = nalgebra::linalg::Schur::try_new(m, f64::EPSILON, 10_000)?;
    Some(schur.complex_eigenvalues().iter().copied().collect())
}

/// The smallest root modulus of `1 + sign * (c[0] z + c[1] z^2 + ...)` after dropping trailing
/// coefficients below `1e-8` in absolute value (forecast's unit-root check). `2.0` when there is
/// nothing to check, `None` when the roots cannot be computed.
pub(crate) fn min_root_modulus(coefs: &[f64], sign: f64) -> Option<f64> {
    let last = coefs.iter().rposition(|v| v.abs() > 1e-8);
    let Some(last) = last else {
        return Some(2.0);
    };
    let mut c = Vec::with_capacity(last + 2);
    c.push(1.0);
    c.extend(coefs[..=last].iter().map(|v| sign * v));
    let roots = polyroot(&c)?;
    Some(roots.iter().map(|z| z.norm()).fold(2.0, f64::min))
}

/// `true` when the AR polynomial `1 - ar[0] z - ...` has all roots outside the unit circle
/// (R's `arCheck`).
pub(crate) fn ar_check(ar: &[f64]) -> bool {
    let last = ar.iter().rposition(|v| *v != 0.0);
    let Some(last) = last else {
        return true;
    };
    let mut c = vec![1.0];
    c.extend(ar[..=last].iter().map(|v| -v));
    match polyroot(&c) {
        Some(roots) => roots.iter().all(|z| z.norm() > 1.0),
        None => false,
    }
}

/// Reflects roots of the MA polynomial that lie inside the unit circle (R's `maInvert`).
pub(crate) fn ma_invert(ma: &[f64]) -> Vec<f64> {
    let q = ma.len();
    let Some(last) = ma.iter().rposition(|v| *v != 0.0) else {
        return ma.to_vec();
    };
    let q0 = last + 1;
    let mut c = vec![1.0];
    c.extend_from_slice(&ma[..q0]);
    let Some(mut roots) = polyroot(&c) else {
        return ma.to_vec();
    };
    if roots.iter().all(|z| z.norm() >= 1.0) {
        return ma.to_vec();
    }
    if q0 == 1 {
        let mut out = vec![0.0; q];
        out[0] = 1.0 / ma[0];
        return out;
    }
    for z in roots.iter_mut() {
        if z.norm() < 1.0 {
            *z = Complex::new(1.0, 0.0) / *z;
        }
    }
    // x <- 1; for (r in roots) x <- c(x, 0) - c(0, x)/r
    let mut x = vec![Complex::new(1.0, 0.0)];
    for r in &roots {
        let mut nx = vec![Complex::new(0.0, 0.0); x.len() + 1];
        for (i, v) in x.iter().enumerate() {
            nx[i] += *v;
            nx[i + 1] -= *v / *r;
        }
        x = nx;
    }
    let mut out: Vec<f64> = x[1..].iter().map(|z| z.re).collect();
    out.resize(q, 0.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partrans_round_trip() {
        let raw = [0.3, -1.2, 0.7, 2.0];
        let mut phi = [0.0; 4];
        partrans(&raw, &mut phi);
        assert!(ar_check(&phi), "transformed AR must be stationary: {phi:?}");
        let mut back = [0.0; 4];
        invpartrans(&phi, &mut back);
        for (a, b) in raw.iter().zip(back) {
            assert!((a - b).abs() < 1e-10, "{raw:?} vs {back:?}");
        }
    }

    #[test]
    fn partrans_ar1_is_tanh() {
        let mut phi = [0.0];
        partrans(&[0.5], &mut phi);
        assert!((phi[0] - 0.5f64.tanh()).abs() < 1e-15);
    }

    #[test]
    fn polyroot_quadratic() {
        // (1 - 2z)(1 - 4z) = 1 - 6z + 8z^2: roots 0.5 and 0.25
        let mut r: Vec<f64> = polyroot(&[1.0, -6.0, 8.0])
            .unwrap()
            .iter()
            .map(|z| z.re)
            .collect();
        r.sort_by(f64::total_cmp);
        assert!((r[0] - 0.25).abs() < 1e-12 && (r[1] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ma_invert_reflects_roots() {
        // theta = 2: root -0.5 inside the unit circle; invertible twin is 0.5
        assert!((ma_invert(&[2.0])[0] - 0.5).abs() < 1e-15);
        // (1 + 2z)(1 + 0.5z) = 1 + 2.5z + z^2 -> (1 + 0.5z)^2 = 1 + z + 0.25z^2
        let m = ma_invert(&[2.5, 1.0]);
        assert!(
            (m[0] - 1.0).abs() < 1e-10 && (m[1] - 0.25).abs() < 1e-10,
            "{m:?}"
        );
        let keep = ma_invert(&[0.3, 0.0]);
        assert_eq!(keep.len(), 2);
        assert!((keep[0] - 0.3).abs() < 1e-15);
    }

    #[test]
    fn seasonal_expansion() {
        let arma = Arma {
            p: 0,
            q: 1,
            sp: 0,
            sq: 1,
            period: 12,
            d: 1,
            sd: 1,
        };
        let mut work = [0.0; 2];
        let mut phi = [];
        let mut theta = [0.0; 13];
        trans_pars(&[-0.4, -0.5], &arma, false, &mut work, &mut phi, &mut theta);
        assert!((theta[0] + 0.4).abs() < 1e-15);
        assert!((theta[11] + 0.5).abs() < 1e-15);
        assert!((theta[12] - 0.2).abs() < 1e-15);
    }
}

//! R's `optim(method = "BFGS")`: the variable-metric minimiser `vmmin` (Nash's Algorithm 21)
//! with R's central-difference gradient (`ndeps = 1e-3` on the scaled parameters), `parscale`,
//! `reltol = sqrt(.Machine$double.eps)`, `maxit = 100`, and `optimhess` for the Hessian.
//! Deterministic: no randomness anywhere.

// Index loops mirror the reference C and Fortran code line by line, which keeps the port checkable.
#![allow(clippy::needless_range_loop)]

use crate::{Error, Result};

const STEPREDN: f64 = 0.2;
const ACCTOL: f64 = 0.0001;
const RELTEST: f64 = 10.0;
/// R's default `reltol`, `sqrt(.Machine$double.eps)`.
pub(crate) const RELTOL: f64 = 1.490_116_119_384_765_6e-8;
/// R's default finite-difference step.
const NDEPS: f64 = 1e-3;

/// What `optim` returns.
#[derive(Debug, Clone)]
pub(crate) struct OptimResult {
    /// Parameters at the minimum (unscaled).
    pub par: Vec<f64>,
    /// Function value there.
    pub value: f64,
    /// `true` when the iteration limit was reached (R's `convergence = 1`).
    pub maxit_reached: bool,
    /// Hessian at `par` (row-major, `n x n`), when asked for.
    pub hessian: Option<Vec<f64>>,
}

/// The scaled objective R's C code works with: `fn(p * parscale)`.
struct Scaled<'a, F: FnMut(&[f64]) -> f64> {
    f: &'a mut F,
    parscale: &'a [f64],
    x: Vec<f64>,
}

impl<F: FnMut(&[f64]) -> f64> Scaled<'_, F> {
    fn value(&mut self, p: &[f64]) -> f64 {
        for i in 0..p.len() {
            self.x[i] = p[i] * self.parscale[i];
        }
        (self.f)(&self.x)
    }

    fn grad(&mut self, p: &[f64], df: &mut [f64]) -> Result<()> {
        let n = p.len();
        for i in 0..n {
            self.x[i] = p[i] * self.parscale[i];
        }
        for i in 0..n {
            self.x[i] = (p[i] + NDEPS) * self.parscale[i];
            let v1 = (self.f)(&self.x);
            self.x[i] = (p[i] - NDEPS) * self.parscale[i];
            let v2 = (self.f)(&self.x);
            df[i] = (v1 - v2) / (2.0 * NDEPS);
            if !df[i].is_finite() {
                return Err(Error::Invalid(format!(
                    "non-finite finite-difference value for parameter {}",
                    i + 1
                )));
            }
            self.x[i] = p[i] * self.parscale[i];
        }
        Ok(())
    }
}

/// Minimises `f` from `init` as R's `optim(init, f, method = "BFGS", control =
/// list(parscale = parscale, maxit = maxit), hessian = hessian)` does.
pub(crate) fn bfgs<F: FnMut(&[f64]) -> f64>(
    f: &mut F,
    init: &[f64],
    parscale: &[f64],
    maxit: usize,
    hessian: bool,
) -> Result<OptimResult> {
    let n = init.len();
    let mut s = Scaled {
        f,
        parscale,
        x: vec![0.0; n],
    };
    let mut b: Vec<f64> = init.iter().zip(parscale).map(|(v, s)| v / s).collect();
    let (fmin, fail) = if maxit == 0 {
        (s.value(&b), false)
    } else {
        vmmin(&mut s, &mut b, maxit)?
    };
    let par: Vec<f64> = b.iter().zip(parscale).map(|(v, s)| v * s).collect();
    let hess = if hessian {
        Some(optimhess(&mut s, &b)?)
    } else {
        None
    };
    Ok(OptimResult {
        par,
        value: fmin,
        maxit_reached: fail,
        hessian: hess,
    })
}

fn vmmin<F: FnMut(&[f64]) -> f64>(
    s: &mut Scaled<'_, F>,
    b: &mut [f64],
    maxit: usize,
) -> Result<(f64, bool)> {
    let n = b.len();
    let mut f = s.value(b);
    if !f.is_finite() {
        return Err(Error::Invalid(
            "initial value in the optimiser is not finite".into(),
        ));
    }
    let mut fmin = f;
    let mut g = vec![0.0; n];
    s.grad(b, &mut g)?;
    let mut funcount = 1usize;
    let mut gradcount = 1usize;
    let mut iter = 1usize;
    let mut ilast = gradcount;
    let mut t = vec![0.0; n];
    let mut x = vec![0.0; n];
    let mut c = vec![0.0; n];
    // lower triangle of B, row-major: bm[i * n + j] for j <= i
    let mut bm = vec![0.0; n * n];
    let mut count;
    loop {
        if ilast == gradcount {
            for i in 0..n {
                for j in 0..i {
                    bm[i * n + j] = 0.0;
                }
                bm[i * n + i] = 1.0;
            }
        }
        x.copy_from_slice(b);
        c.copy_from_slice(&g);
        let mut gradproj = 0.0;
        for i in 0..n {
            let mut sum = 0.0;
            for j in 0..=i {
                sum -= bm[i * n + j] * g[j];
            }
            for j in (i + 1)..n {
                sum -= bm[j * n + i] * g[j];
            }
            t[i] = sum;
            gradproj += sum * g[i];
        }
        if gradproj < 0.0 {
            let mut steplength = 1.0;
            let mut accpoint = false;
            loop {
                count = 0;
                for i in 0..n {
                    b[i] = x[i] + steplength * t[i];
                    if RELTEST + x[i] == RELTEST + b[i] {
                        count += 1;
                    }
                }
                if count < n {
                    f = s.value(b);
                    funcount += 1;
                    accpoint = f.is_finite() && f <= fmin + gradproj * steplength * ACCTOL;
                    if !accpoint {
                        steplength *= STEPREDN;
                    }
                }
                if count == n || accpoint {
                    break;
                }
            }
            let enough = f > f64::NEG_INFINITY && (f - fmin).abs() > RELTOL * (fmin.abs() + RELTOL);
            if !enough {
                count = n;
                fmin = f;
            }
            if count < n {
                fmin = f;
                s.grad(b, &mut g)?;
                gradcount += 1;
                iter += 1;
                let mut d1 = 0.0;
                for i in 0..n {
                    t[i] *= steplength;
                    c[i] = g[i] - c[i];
                    d1 += t[i] * c[i];
                }
                if d1 > 0.0 {
                    let mut d2 = 0.0;
                    for i in 0..n {
                        let mut sum = 0.0;
                        for j in 0..=i {
                            sum += bm[i * n + j] * c[j];
                        }
                        for j in (i + 1)..n {
                            sum += bm[j * n + i] * c[j];
                        }
                        x[i] = sum;
                        d2 += sum * c[i];
                    }
                    d2 = 1.0 + d2 / d1;
                    for i in 0..n {
                        for j in 0..=i {
                            bm[i * n + j] += (d2 * t[i] * t[j] - x[i] * t[j] - t[i] * x[j]) / d1;
                        }
                    }
                } else {
                    ilast = gradcount;
                }
            } else if ilast < gradcount {
                count = 0;
                ilast = gradcount;
            }
        } else {
            count = 0;
            if ilast == gradcount {
                count = n;
            } else {
                ilast = gradcount;
            }
        }
        if iter >= maxit {
            break;
        }
        if gradcount - ilast > 2 * n {
            ilast = gradcount;
        }
        if count == n && ilast == gradcount {
            break;
        }
    }
    let _ = funcount;
    Ok((fmin, iter >= maxit))
}

/// R's `optimhess`: central differences of the numerical gradient, symmetrised; row-major.
fn optimhess<F: FnMut(&[f64]) -> f64>(s: &mut Scaled<'_, F>, b: &[f64]) -> Result<Vec<f64>> {
    let n = b.len();
    let mut dpar = b.to_vec();
    let mut df1 = vec![0.0; n];
    let mut df2 = vec![0.0; n];
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        let eps = NDEPS / s.parscale[i];
        dpar[i] += eps;
        s.grad(&dpar, &mut df1)?;
        dpar[i] -= 2.0 * eps;
        s.grad(&dpar, &mut df2)?;
        for j in 0..n {
            h[i * n + j] = (df1[j] - df2[j]) / (2.0 * eps * s.parscale[i] * s.parscale[j]);
        }
        dpar[i] += eps;
    }
    for i in 0..n {
        for j in 0..i {
            let tmp = 0.5 * (h[i * n + j] + h[j * n + i]);
            h[i * n + j] = tmp;
            h[j * n + i] = tmp;
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfgs_minimises_rosenbrock() {
        let mut f = |p: &[f64]| 100.0 * (p[1] - p[0] * p[0]).powi(2) + (1.0 - p[0]).powi(2);
        let r = bfgs(&mut f, &[-1.2, 1.0], &[1.0, 1.0], 1000, true).unwrap();
        assert!((r.par[0] - 1.0).abs() < 1e-3, "{:?}", r.par);
        assert!((r.par[1] - 1.0).abs() < 1e-3, "{:?}", r.par);
        let h = r.hessian.unwrap();
        // exact Hessian at (1, 1): [[802, -400], [-400, 200]]
        assert!((h[0] - 802.0).abs() < 1.0, "{h:?}");
        assert!((h[1] + 400.0).abs() < 1.0, "{h:?}");
    }

    #[test]
    fn bfgs_reports_non_finite_start() {
        let mut f = |_: &[f64]| f64::NAN;
        assert!(bfgs(&mut f, &[0.0], &[1.0], 100, false).is_err());
    }
}

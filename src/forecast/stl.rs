//! Seasonal-trend decomposition by loess (Cleveland, Cleveland, McRae and Terpenning, 1990), as
//! the Fortran behind R's `stats::stl` computes it, non-robust (`robust = FALSE`: two inner
//! passes, no outer ones), and the seasonal-strength measure of `forecast:::seas.heuristic`
//! (which calls `mstl`, i.e. `stl(x, s.window = 11)` for one seasonal period).

// Index loops mirror the reference C and Fortran code line by line, which keeps the port checkable.
#![allow(clippy::needless_range_loop)]

/// An STL decomposition.
#[derive(Debug, Clone)]
pub(crate) struct Stl {
    pub seasonal: Vec<f64>,
    #[allow(dead_code)] // part of the decomposition; the strength test only reads the others
    pub trend: Vec<f64>,
    pub remainder: Vec<f64>,
}

fn nextodd(x: usize) -> usize {
    if x.is_multiple_of(2) { x + 1 } else { x }
}

/// `stl(x, s.window)` with R's defaults for every other argument. `None` when the series has
/// two periods or fewer (R stops with an error there).
pub(crate) fn stl(x: &[f64], period: usize, s_window: usize) -> Option<Stl> {
    let n = x.len();
    if period < 2 || n <= 2 * period {
        return None;
    }
    let s_degree = 0;
    let t_degree = 1;
    let t_window = nextodd((1.5 * period as f64 / (1.0 - 1.5 / s_window as f64)).ceil() as usize);
    let l_window = nextodd(period);
    let l_degree = t_degree;
    let s_jump = s_window.div_ceil(10);
    let t_jump = t_window.div_ceil(10);
    let l_jump = l_window.div_ceil(10);
    // the Fortran driver's adjustments
    let ns = nextodd(s_window.max(3));
    let nt = nextodd(t_window.max(3));
    let nl = nextodd(l_window.max(3));
    let np = period.max(2);
    let mut season = vec![0.0; n];
    let mut trend = vec![0.0; n];
    let mut w1 = vec![0.0; n + 2 * np];
    let mut w2 = vec![0.0; n + 2 * np];
    let mut w3 = vec![0.0; n + 2 * np];
    let mut w4 = vec![0.0; n + 2 * np];
    let mut w5 = vec![0.0; n + 2 * np];
    for _ in 0..2 {
        for i in 0..n {
            w1[i] = x[i] - trend[i];
        }
        stlss(
            &w1[..n],
            np,
            ns,
            s_degree,
            s_jump,
            &mut w2,
            &mut w3,
            &mut w4,
            &mut w5,
        );
        stlfts(&w2[..n + 2 * np], np, &mut w3, &mut w1);
        stless(&w3[..n], nl, l_degree, l_jump, &mut w4, &mut w5);
        for i in 0..n {
            season[i] = w2[np + i] - w4[i];
        }
        for i in 0..n {
            w1[i] = x[i] - season[i];
        }
        stless(&w1[..n], nt, t_degree, t_jump, &mut trend, &mut w3);
    }
    let remainder = (0..n).map(|i| x[i] - season[i] - trend[i]).collect();
    Some(Stl {
        seasonal: season,
        trend,
        remainder,
    })
}

/// Seasonal strength `max(0, min(1, 1 - var(remainder) / var(remainder + seasonal)))` from
/// `stl(x, s.window = 11)`; `None` when STL cannot run.
pub(crate) fn seasonal_strength(x: &[f64], period: usize) -> Option<f64> {
    let d = stl(x, period, 11)?;
    let vare = variance(&d.remainder);
    let rs: Vec<f64> = d
        .remainder
        .iter()
        .zip(&d.seasonal)
        .map(|(r, s)| r + s)
        .collect();
    let v = 1.0 - vare / variance(&rs);
    if v.is_nan() {
        return None;
    }
    Some(v.clamp(0.0, 1.0))
}

fn variance(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0)
}

/// Loess estimate at `xs` (1-based abscissa) from `y[nleft-1..nright]` (R's `stlest`).
#[allow(clippy::too_many_arguments)]
fn stlest(
    y: &[f64],
    len: usize,
    ideg: usize,
    xs: f64,
    nleft: usize,
    nright: usize,
    w: &mut [f64],
) -> Option<f64> {
    let n = y.len();
    let range = n as f64 - 1.0;
    let mut h = (xs - nleft as f64).max(nright as f64 - xs);
    if len > n {
        h += ((len - n) / 2) as f64;
    }
    let h9 = 0.999 * h;
    let h1 = 0.001 * h;
    let mut a = 0.0;
    for j in nleft..=nright {
        w[j - 1] = 0.0;
        let r = (j as f64 - xs).abs();
        if r <= h9 {
            w[j - 1] = if r <= h1 {
                1.0
            } else {
                (1.0 - (r / h).powi(3)).powi(3)
            };
            a += w[j - 1];
        }
    }
    if a <= 0.0 {
        return None;
    }
    for j in nleft..=nright {
        w[j - 1] /= a;
    }
    if h > 0.0 && ideg > 0 {
        let mut a = 0.0;
        for j in nleft..=nright {
            a += w[j - 1] * j as f64;
        }
        let mut b = xs - a;
        let mut c = 0.0;
        for j in nleft..=nright {
            c += w[j - 1] * (j as f64 - a) * (j as f64 - a);
        }
        if c.sqrt() > 0.001 * range {
            b /= c;
            for j in nleft..=nright {
                w[j - 1] *= b * (j as f64 - a) + 1.0;
            }
        }
    }
    let mut ys = 0.0;
    for j in nleft..=nright {
        ys += w[j - 1] * y[j - 1];
    }
    Some(ys)
}

/// Loess smoothing of `y` with evaluation every `njump` points and linear interpolation in
/// between (R's `stless`); result in `ys[..n]`.
fn stless(y: &[f64], len: usize, ideg: usize, njump: usize, ys: &mut [f64], res: &mut [f64]) {
    let n = y.len();
    if n < 2 {
        ys[0] = y[0];
        return;
    }
    let newnj = njump.min(n - 1).max(1);
    let mut nleft = 1;
    let mut nright = n;
    if len >= n {
        nleft = 1;
        nright = n;
        let mut i = 1;
        while i <= n {
            ys[i - 1] = stlest(y, len, ideg, i as f64, nleft, nright, res).unwrap_or(y[i - 1]);
            i += newnj;
        }
    } else if newnj == 1 {
        let nsh = len.div_ceil(2);
        nleft = 1;
        nright = len;
        for i in 1..=n {
            if i > nsh && nright != n {
                nleft += 1;
                nright += 1;
            }
            ys[i - 1] = stlest(y, len, ideg, i as f64, nleft, nright, res).unwrap_or(y[i - 1]);
        }
    } else {
        let nsh = len.div_ceil(2);
        let mut i = 1;
        while i <= n {
            if i < nsh {
                nleft = 1;
                nright = len;
            } else if i > n - nsh {
                nleft = n - len + 1;
                nright = n;
            } else {
                nleft = i - nsh + 1;
                nright = len + i - nsh;
            }
            ys[i - 1] = stlest(y, len, ideg, i as f64, nleft, nright, res).unwrap_or(y[i - 1]);
            i += newnj;
        }
    }
    if newnj != 1 {
        let mut i = 1;
        while i <= n - newnj {
            let delta = (ys[i + newnj - 1] - ys[i - 1]) / newnj as f64;
            for j in (i + 1)..(i + newnj) {
                ys[j - 1] = ys[i - 1] + delta * (j - i) as f64;
            }
            i += newnj;
        }
        let k = ((n - 1) / newnj) * newnj + 1;
        if k != n {
            ys[n - 1] = stlest(y, len, ideg, n as f64, nleft, nright, res).unwrap_or(y[n - 1]);
            if k != n - 1 {
                let delta = (ys[n - 1] - ys[k - 1]) / (n - k) as f64;
                for j in (k + 1)..n {
                    ys[j - 1] = ys[k - 1] + delta * (j - k) as f64;
                }
            }
        }
    }
}

/// Smooths each cycle-subseries and extends it by one value at each end (R's `stlss`); result
/// in `season[..n + 2 * np]`.
#[allow(clippy::too_many_arguments)]
fn stlss(
    y: &[f64],
    np: usize,
    ns: usize,
    isdeg: usize,
    nsjump: usize,
    season: &mut [f64],
    work1: &mut [f64],
    work2: &mut [f64],
    work3: &mut [f64],
) {
    let n = y.len();
    for j in 1..=np {
        let k = (n - j) / np + 1;
        for i in 1..=k {
            work1[i - 1] = y[(i - 1) * np + j - 1];
        }
        // work2[1..=k] (1-based offset 1) holds the smoothed subseries
        {
            let (head, tail) = work2.split_at_mut(1);
            let _ = head;
            stless(&work1[..k], ns, isdeg, nsjump, tail, work3);
        }
        let nright = ns.min(k);
        work2[0] = stlest(&work1[..k], ns, isdeg, 0.0, 1, nright, work3).unwrap_or(work2[1]);
        let nleft = if k + 1 > ns { k - ns + 1 } else { 1 };
        work2[k + 1] =
            stlest(&work1[..k], ns, isdeg, (k + 1) as f64, nleft, k, work3).unwrap_or(work2[k]);
        for m in 1..=(k + 2) {
            season[(m - 1) * np + j - 1] = work2[m - 1];
        }
    }
}

/// Moving averages of lengths `np`, `np` and 3 (R's `stlfts`); result in `trend[..n - 2np]`.
fn stlfts(x: &[f64], np: usize, trend: &mut [f64], work: &mut [f64]) {
    let n = x.len();
    stlma(x, np, trend);
    stlma(&trend[..n - np + 1], np, work);
    stlma(&work[..n - 2 * np + 2], 3, trend);
}

fn stlma(x: &[f64], len: usize, ave: &mut [f64]) {
    let n = x.len();
    let newn = n - len + 1;
    let flen = len as f64;
    let mut v: f64 = x[..len].iter().sum();
    ave[0] = v / flen;
    if newn > 1 {
        let mut k = len;
        let mut m = 0;
        for j in 1..newn {
            k += 1;
            m += 1;
            v = v - x[m - 1] + x[k - 1];
            ave[j] = v / flen;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::testdata::AIRPASSENGERS;

    #[test]
    fn stl_components_add_up_and_find_the_season() {
        let x: Vec<f64> = AIRPASSENGERS.iter().map(|v| v.ln()).collect();
        let d = stl(&x, 12, 11).unwrap();
        for i in 0..x.len() {
            assert!((d.seasonal[i] + d.trend[i] + d.remainder[i] - x[i]).abs() < 1e-12);
        }
        // July peaks, November troughs in every year
        assert!(
            d.seasonal[6] > 0.15 && d.seasonal[10] < -0.1,
            "{:?}",
            &d.seasonal[..12]
        );
        let s = seasonal_strength(&x, 12).unwrap();
        assert!(s > 0.9, "{s}");
    }

    #[test]
    fn stl_needs_two_periods() {
        assert!(stl(&[1.0; 24], 12, 11).is_none());
    }
}

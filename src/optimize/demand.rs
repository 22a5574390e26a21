//! Demand distributions and the two expectations the objective needs: expected shortfall
//! `E[max(0, D - a)]` and expected excess (reserved but unused) `E[max(0, a - D)]` of an
//! allocation `a`. Both are computed once per candidate level when the problem is compiled, so
//! the optimizer itself only adds table entries.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What a request is expected to use of one resource, in the resource's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Demand {
    /// Known exactly.
    Fixed(f64),
    /// Empirical: every sample equally likely (usage history, or draws from a forecast).
    Samples(Vec<f64>),
    /// Normal with this mean and standard deviation (a forecast with intervals). The mass below
    /// zero is kept, so for a mean within about two standard deviations of zero prefer samples.
    Normal { mean: f64, sd: f64 },
}

impl Demand {
    /// Checks the distribution's parameters; `what` names it in the error.
    pub(crate) fn validate(&self, what: &str) -> Result<()> {
        match self {
            Demand::Fixed(v) if !v.is_finite() || *v < 0.0 => Err(Error::Invalid(format!(
                "{what}: demand must be a finite non-negative number, got {v}"
            ))),
            Demand::Samples(s) if s.is_empty() => {
                Err(Error::Invalid(format!("{what}: demand has no samples")))
            }
            Demand::Samples(s) => match s.iter().find(|v| !v.is_finite() || **v < 0.0) {
                Some(v) => Err(Error::Invalid(format!(
                    "{what}: demand sample {v} is not a finite non-negative number"
                ))),
                None => Ok(()),
            },
            Demand::Normal { mean, sd } if !mean.is_finite() || !sd.is_finite() || *sd < 0.0 => {
                Err(Error::Invalid(format!(
                    "{what}: normal demand needs a finite mean and sd >= 0, got mean {mean}, sd {sd}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// A form that answers [`Prepared::shortfall`] quickly for many levels.
    pub(crate) fn prepare(&self) -> Prepared {
        match self {
            Demand::Fixed(v) => Prepared::Normal { mean: *v, sd: 0.0 },
            Demand::Normal { mean, sd } => Prepared::Normal {
                mean: *mean,
                sd: *sd,
            },
            Demand::Samples(s) => {
                let mut sorted = s.clone();
                sorted.sort_by(f64::total_cmp);
                // suffix[i] = sum of sorted[i..]
                let mut suffix = vec![0.0; sorted.len() + 1];
                for i in (0..sorted.len()).rev() {
                    suffix[i] = suffix[i + 1] + sorted[i];
                }
                let mean = suffix[0] / sorted.len() as f64;
                Prepared::Samples {
                    sorted,
                    suffix,
                    mean,
                }
            }
        }
    }
}

/// A demand distribution ready for repeated expectations.
pub(crate) enum Prepared {
    Normal {
        mean: f64,
        sd: f64,
    },
    Samples {
        sorted: Vec<f64>,
        suffix: Vec<f64>,
        mean: f64,
    },
}

impl Prepared {
    pub(crate) fn mean(&self) -> f64 {
        match self {
            Prepared::Normal { mean, .. } | Prepared::Samples { mean, .. } => *mean,
        }
    }

    /// `E[max(0, D - a)]`.
    pub(crate) fn shortfall(&self, a: f64) -> f64 {
        match self {
            Prepared::Normal { mean, sd } => {
                if *sd == 0.0 {
                    return (mean - a).max(0.0);
                }
                let z = (a - mean) / sd;
                // sd * phi(z) + (mean - a) * (1 - Phi(z)) = sd * (phi(z) - z * Q(z))
                (sd * (std_normal_pdf(z) - z * std_normal_sf(z))).max(0.0)
            }
            Prepared::Samples { sorted, suffix, .. } => {
                let first_above = sorted.partition_point(|&x| x <= a);
                let n_above = (sorted.len() - first_above) as f64;
                ((suffix[first_above] - n_above * a) / sorted.len() as f64).max(0.0)
            }
        }
    }

    /// `E[max(0, a - D)]`, from the identity `E[(a-D)+] - E[(D-a)+] = a - E[D]`.
    pub(crate) fn excess(&self, a: f64) -> f64 {
        (a - self.mean() + self.shortfall(a)).max(0.0)
    }
}

fn std_normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// `P(Z > z)` for a standard normal `Z`.
fn std_normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, Chebyshev fit of Numerical Recipes (`erfcc`): relative
/// error below 1.2e-7 everywhere, which is far below any demand estimate's own error.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_match_direct_sums() {
        let s = vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let p = Demand::Samples(s.clone()).prepare();
        for a in [0.0, 1.0, 2.5, 4.0, 9.0, 12.0] {
            let short: f64 = s.iter().map(|d| (d - a).max(0.0)).sum::<f64>() / s.len() as f64;
            let exc: f64 = s.iter().map(|d| (a - d).max(0.0)).sum::<f64>() / s.len() as f64;
            assert!((p.shortfall(a) - short).abs() < 1e-12, "shortfall at {a}");
            assert!((p.excess(a) - exc).abs() < 1e-12, "excess at {a}");
        }
    }

    #[test]
    fn normal_matches_reference_values() {
        // E[(Z - 0)+] = phi(0) = 0.3989422804; E[(Z - 1)+] = phi(1) - Q(1) = 0.0833154706
        // (standard normal loss function, e.g. tables of L(z)).
        let p = Demand::Normal { mean: 0.0, sd: 1.0 }.prepare();
        assert!((p.shortfall(0.0) - 0.398_942_280_4).abs() < 1e-6);
        assert!((p.shortfall(1.0) - 0.083_315_470_6).abs() < 1e-6);
        assert!((p.excess(1.0) - 1.083_315_470_6).abs() < 1e-6);
        let q = Demand::Normal {
            mean: 10.0,
            sd: 2.0,
        }
        .prepare();
        assert!((q.shortfall(12.0) - 2.0 * 0.083_315_470_6).abs() < 1e-6);
        let f = Demand::Fixed(3.0).prepare();
        assert_eq!(f.shortfall(2.0), 1.0);
        assert_eq!(f.excess(5.0), 2.0);
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = Demand::Samples(vec![]).validate("r0 vcpus").unwrap_err();
        assert!(e.to_string().contains("r0 vcpus"), "{e}");
        assert!(Demand::Samples(vec![1.0, f64::NAN]).validate("x").is_err());
        assert!(
            Demand::Normal {
                mean: 1.0,
                sd: -1.0
            }
            .validate("x")
            .is_err()
        );
        assert!(Demand::Fixed(-1.0).validate("x").is_err());
    }
}

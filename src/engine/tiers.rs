//! Tiers as risk levels: each tier names the demand quantile an allocation must cover and the
//! headroom added on top. Parsed from TOML; parsing is pure (text in, value out), reading the file
//! is the caller's job.
//!
//! # File format and defaults
//! Every table and key is optional; what is left out keeps its default. Unknown keys are refused.
//! ```toml
//! # The share of future samples an allocation must cover (0 < quantile < 1), and the fraction
//! # added on top of that quantile (0 <= headroom <= 10).
//! [tiers.low]
//! quantile = 0.90
//! headroom = 0.0
//!
//! [tiers.medium]
//! quantile = 0.95
//! headroom = 0.05
//!
//! [tiers.high]
//! quantile = 0.99
//! headroom = 0.10
//!
//! # How history is used (see engine::evidence).
//! [evidence]
//! lookback = 288       # samples of recent history that count (1 day of 5-minute samples)
//! prior_strength = 288 # history samples worth as much as the prior (1 day)
//! ```
//! A tier is a risk level: `quantile` is the per-sample coverage the engine aims at, so
//! `1 - quantile` is the share of samples a tier accepts running short (low 10%, medium 5%, high
//! 1%). Higher tiers must not take more risk: a tier's quantile may not be below the one under it.

use crate::model::Tier;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What one tier asks of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierSpec {
    /// Share of future samples the allocation must cover, strictly between 0 and 1.
    pub quantile: f64,
    /// Fraction added on top of the covered quantile, 0 to 10.
    pub headroom: f64,
}

/// How much history counts (see [`super::evidence`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSettings {
    /// Most recent samples used; older ones are ignored (at least 2).
    pub lookback: usize,
    /// History samples worth as much as the prior: with `n` samples the history's weight is
    /// `n / (n + prior_strength)`. 0 means history alone decides as soon as there is any.
    pub prior_strength: usize,
}

impl Default for EvidenceSettings {
    fn default() -> Self {
        EvidenceSettings {
            lookback: 288,
            prior_strength: 288,
        }
    }
}

/// The tier table and evidence settings prae uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TierConfig {
    pub low: TierSpec,
    pub medium: TierSpec,
    pub high: TierSpec,
    pub evidence: EvidenceSettings,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            low: TierSpec {
                quantile: 0.90,
                headroom: 0.0,
            },
            medium: TierSpec {
                quantile: 0.95,
                headroom: 0.05,
            },
            high: TierSpec {
                quantile: 0.99,
                headroom: 0.10,
            },
            evidence: EvidenceSettings::default(),
        }
    }
}

/// The file's shape: everything optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tiers: RawTiers,
    evidence: Option<RawEvidence>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTiers {
    low: Option<RawSpec>,
    medium: Option<RawSpec>,
    high: Option<RawSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    quantile: Option<f64>,
    headroom: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvidence {
    lookback: Option<usize>,
    prior_strength: Option<usize>,
}

impl TierConfig {
    /// Parses a TOML tier file over the defaults and validates the result.
    pub fn from_toml(text: &str) -> Result<TierConfig> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message spans several lines (it quotes the input); keep the first.
            let msg = e.message().lines().next().unwrap_or("").to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}: ")
                })
                .unwrap_or_default();
            Error::Invalid(format!("tier config: {at}{msg}"))
        })?;
        let mut c = TierConfig::default();
        for (tier, spec) in [
            (Tier::Low, raw.tiers.low),
            (Tier::Medium, raw.tiers.medium),
            (Tier::High, raw.tiers.high),
        ] {
            if let Some(s) = spec {
                let t = c.spec_mut(tier);
                if let Some(q) = s.quantile {
                    t.quantile = q;
                }
                if let Some(h) = s.headroom {
                    t.headroom = h;
                }
            }
        }
        if let Some(e) = raw.evidence {
            if let Some(l) = e.lookback {
                c.evidence.lookback = l;
            }
            if let Some(p) = e.prior_strength {
                c.evidence.prior_strength = p;
            }
        }
        c.validate()?;
        Ok(c)
    }

    /// The spec of one tier.
    pub fn spec(&self, tier: Tier) -> TierSpec {
        match tier {
            Tier::Low => self.low,
            Tier::Medium => self.medium,
            Tier::High => self.high,
        }
    }

    fn spec_mut(&mut self, tier: Tier) -> &mut TierSpec {
        match tier {
            Tier::Low => &mut self.low,
            Tier::Medium => &mut self.medium,
            Tier::High => &mut self.high,
        }
    }

    /// Checks ranges and that higher tiers take no more risk than lower ones.
    pub fn validate(&self) -> Result<()> {
        for tier in Tier::ALL {
            self.spec(tier).validate(tier)?;
        }
        for (lo, hi) in [(Tier::Low, Tier::Medium), (Tier::Medium, Tier::High)] {
            let (a, b) = (self.spec(lo).quantile, self.spec(hi).quantile);
            if b < a {
                return Err(Error::Invalid(format!(
                    "tier config: {hi}'s quantile {b} is below {lo}'s {a} (a higher tier may not take more risk)"
                )));
            }
        }
        if self.evidence.lookback < 2 {
            return Err(Error::Invalid(format!(
                "tier config: evidence lookback {} must be at least 2 samples",
                self.evidence.lookback
            )));
        }
        Ok(())
    }
}

impl TierSpec {
    /// Checks the ranges, naming the tier and the value.
    pub fn validate(&self, tier: Tier) -> Result<()> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(Error::Invalid(format!(
                "tier config: {tier} quantile {} must be strictly between 0 and 1",
                self.quantile
            )));
        }
        if !(0.0..=10.0).contains(&self.headroom) {
            return Err(Error::Invalid(format!(
                "tier config: {tier} headroom {} must be between 0 and 10",
                self.headroom
            )));
        }
        Ok(())
    }

    /// A one-line description: `P95 + 5%`.
    pub fn describe(&self) -> String {
        format!(
            "P{} + {}%",
            trim_float(self.quantile * 100.0),
            trim_float(self.headroom * 100.0)
        )
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = TierConfig::from_toml("").unwrap();
        assert_eq!(c, TierConfig::default());
        assert_eq!(c.low.quantile, 0.90);
        assert_eq!(c.medium.describe(), "P95 + 5%");
        assert_eq!(c.high.describe(), "P99 + 10%");
        assert_eq!(c.evidence.lookback, 288);
    }

    #[test]
    fn the_module_doc_example_parses_to_the_defaults() {
        let doc = "[tiers.low]\nquantile = 0.90\nheadroom = 0.0\n[tiers.medium]\nquantile = 0.95\n\
                   headroom = 0.05\n[tiers.high]\nquantile = 0.99\nheadroom = 0.10\n[evidence]\n\
                   lookback = 288\nprior_strength = 288\n";
        assert_eq!(TierConfig::from_toml(doc).unwrap(), TierConfig::default());
    }

    #[test]
    fn partial_files_override_only_what_they_name() {
        let c = TierConfig::from_toml("[tiers.high]\nheadroom = 0.25\n").unwrap();
        assert_eq!(c.high.headroom, 0.25);
        assert_eq!(c.high.quantile, 0.99);
        assert_eq!(c.low, TierConfig::default().low);
    }

    #[test]
    fn bad_values_are_named() {
        let e = TierConfig::from_toml("[tiers.low]\nquantile = 1.0\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tier config: low quantile 1 must be strictly between 0 and 1"
        );
        let e = TierConfig::from_toml("[tiers.medium]\nheadroom = -0.1\n").unwrap_err();
        assert!(e.to_string().contains("medium headroom -0.1"), "{e}");
        let e = TierConfig::from_toml("[tiers.high]\nquantile = 0.5\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("high's quantile 0.5 is below medium's 0.95"),
            "{e}"
        );
        let e = TierConfig::from_toml("[evidence]\nlookback = 1\n").unwrap_err();
        assert!(e.to_string().contains("lookback 1"), "{e}");
    }

    #[test]
    fn malformed_and_unknown_keys_are_refused_on_one_line() {
        for bad in [
            "[tiers.low]\nquantil = 0.9\n",
            "[tiers.extreme]\nquantile = 0.9\n",
            "[tiers.low\n",
            "[tiers.low]\nquantile = \"high\"\n",
        ] {
            let e = TierConfig::from_toml(bad).unwrap_err().to_string();
            assert!(e.starts_with("tier config: line "), "{bad:?}: {e}");
            assert!(!e.contains('\n'), "{bad:?}: {e}");
        }
    }
}

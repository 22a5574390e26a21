//! The Kubernetes Vertical Pod Autoscaler's recommender, as its defaults configure it, written
//! from its documentation and source (`vertical-pod-autoscaler/pkg/recommender`: `util/histogram.go`,
//! `util/decaying_histogram.go`, `util/histogram_options.go`, `model/aggregations_config.go`,
//! `model/container.go`, `model/aggregate_container_state.go`, `logic/recommender.go`).
//!
//! - **Histograms**: exponential buckets, each 5% wider than the one before; the first bucket is
//!   0.001 core wide for CPU (up to 1000 cores) and 10^7 bytes for memory (up to 10^12 bytes);
//!   a bucket lighter than 10^-4 counts as empty. A percentile is the *end* of the bucket where
//!   the cumulative weight first reaches it (the start of the last bucket for the last one).
//! - **Decay**: a sample's weight is multiplied by `2^((t - ref) / half-life)`, half-life 24 h
//!   for both resources, so a day-old sample counts half as much as a fresh one.
//! - **CPU**: every sample (average cores over its interval) goes in, weighted by the container's
//!   request in cores at that time, at least 0.1 (so raising the request discounts the past).
//! - **Memory**: one sample per 24 h aggregation interval, the interval's peak: while the interval
//!   lasts a higher sample replaces the peak (the old one is subtracted), a sample past its end
//!   opens the next interval. Peaks are stamped with their interval's end. The recommender keeps
//!   8 intervals (8 days) of history; peaks older than that are subtracted here (a running VPA
//!   keeps them at a weight of at most 2^-8).
//! - **Target**: the P90 of each histogram, plus a 15% safety margin, and at least 25 millicores
//!   and 250 MiB.
//!
//! Left out: OOM-driven memory bumps (the replay has no OOM events: a violation is only counted)
//! and the lower/upper bounds, which drive the updater's evictions, not the target.

use super::{Resource, Series};

/// VPA's knobs; [`VpaParams::defaults`] is the recommender's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VpaParams {
    /// Target percentile, 0..1 (`--target-cpu-percentile`, `--target-memory-percentile`).
    pub percentile: f64,
    /// Safety margin fraction (`--recommendation-margin-fraction`).
    pub margin: f64,
    /// Histogram decay half-life, seconds.
    pub half_life_s: f64,
    /// Memory aggregation interval, seconds.
    pub memory_interval_s: i64,
    /// Memory aggregation intervals kept.
    pub memory_intervals: i64,
}

impl VpaParams {
    pub fn defaults() -> VpaParams {
        VpaParams {
            percentile: 0.9,
            margin: 0.15,
            half_life_s: 86_400.0,
            memory_interval_s: 86_400,
            memory_intervals: 8,
        }
    }
}

/// Bucket growth between consecutive buckets.
const RATIO: f64 = 1.05;
/// A bucket lighter than this is empty.
const EPSILON: f64 = 1e-4;
/// CPU: smallest sample weight, minimum recommendation (cores).
const MIN_CPU_WEIGHT: f64 = 0.1;
const MIN_CPU_CORES: f64 = 0.025;
/// Memory: minimum recommendation (bytes).
const MIN_MEMORY_BYTES: f64 = 250.0 * 1024.0 * 1024.0;
/// Decay exponents above this renormalise the histogram.
const MAX_DECAY_EXPONENT: f64 = 100.0;

/// VPA's decaying exponential histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    first: f64,
    weights: Vec<f64>,
    total: f64,
    min_bucket: usize,
    max_bucket: usize,
    half_life: f64,
    reference: Option<f64>,
}

impl Histogram {
    /// Buckets from 0 to at least `max`, the first `first` wide, each 5% wider.
    pub fn new(max: f64, first: f64, half_life_s: f64) -> Histogram {
        let n = ((max * (RATIO - 1.0) / first + 1.0).ln() / RATIO.ln()).ceil() as usize + 1;
        Histogram {
            first,
            weights: vec![0.0; n],
            total: 0.0,
            min_bucket: n - 1,
            max_bucket: 0,
            half_life: half_life_s,
            reference: None,
        }
    }

    pub fn cpu(half_life_s: f64) -> Histogram {
        Histogram::new(1000.0, 0.001, half_life_s)
    }

    pub fn memory(half_life_s: f64) -> Histogram {
        Histogram::new(1e12, 1e7, half_life_s)
    }

    fn buckets(&self) -> usize {
        self.weights.len()
    }

    pub fn find_bucket(&self, v: f64) -> usize {
        if v < self.first {
            return 0;
        }
        let b = ((v * (RATIO - 1.0) / self.first + 1.0).ln() / RATIO.ln()) as usize;
        b.min(self.buckets() - 1)
    }

    pub fn bucket_start(&self, b: usize) -> f64 {
        if b == 0 {
            0.0
        } else {
            self.first * (RATIO.powi(b as i32) - 1.0) / (RATIO - 1.0)
        }
    }

    fn decay_factor(&mut self, t: f64) -> f64 {
        let reference = match self.reference {
            Some(r) if t <= r + self.half_life * MAX_DECAY_EXPONENT => r,
            _ => {
                // Renormalise: move the reference to `t` (a whole number of half-lives) and
                // rescale what is there.
                let new = (t / self.half_life).round() * self.half_life;
                if let Some(old) = self.reference {
                    let exponent = ((old - new) / self.half_life).round();
                    self.scale(2f64.powf(exponent));
                }
                self.reference = Some(new);
                new
            }
        };
        ((t - reference) / self.half_life).exp2()
    }

    fn scale(&mut self, factor: f64) {
        for w in &mut self.weights[self.min_bucket.min(self.max_bucket)..=self.max_bucket] {
            *w *= factor;
        }
        self.total *= factor;
        self.update_min_max();
    }

    /// Adds `value` with `weight` at time `t` (seconds).
    pub fn add(&mut self, value: f64, weight: f64, t: f64) {
        let w = weight * self.decay_factor(t);
        let b = self.find_bucket(value);
        self.weights[b] += w;
        self.total += w;
        if b < self.min_bucket && self.weights[b] >= EPSILON {
            self.min_bucket = b;
        }
        if b > self.max_bucket && self.weights[b] >= EPSILON {
            self.max_bucket = b;
        }
    }

    /// Removes a sample added earlier with the same value, weight and time.
    pub fn subtract(&mut self, value: f64, weight: f64, t: f64) {
        let mut w = weight * self.decay_factor(t);
        let b = self.find_bucket(value);
        if w > self.weights[b] - EPSILON {
            w = self.weights[b];
        }
        self.total -= w;
        self.weights[b] -= w;
        self.update_min_max();
    }

    fn update_min_max(&mut self) {
        let last = self.buckets() - 1;
        while self.weights[self.min_bucket] < EPSILON && self.min_bucket < last {
            self.min_bucket += 1;
        }
        while self.weights[self.max_bucket] < EPSILON && self.max_bucket > 0 {
            self.max_bucket -= 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.weights[self.min_bucket] < EPSILON
    }

    /// The end of the bucket where the cumulative weight reaches `p` of the total; 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let threshold = p * self.total;
        let mut sum = 0.0;
        let mut b = self.min_bucket;
        while b < self.max_bucket {
            sum += self.weights[b];
            if sum >= threshold {
                break;
            }
            b += 1;
        }
        if b < self.buckets() - 1 {
            self.bucket_start(b + 1)
        } else {
            self.bucket_start(b)
        }
    }
}

/// The recommender's state for one container and one resource.
#[derive(Debug, Clone)]
pub struct Recommender {
    resource: Resource,
    params: VpaParams,
    hist: Histogram,
    /// Memory: the current interval's end and peak, and the peaks still kept.
    window_end: Option<i64>,
    peaks: Vec<(i64, f64)>,
}

impl Recommender {
    pub fn new(resource: Resource, params: VpaParams) -> Recommender {
        let hist = match resource {
            Resource::Cpu => Histogram::cpu(params.half_life_s),
            Resource::Memory => Histogram::memory(params.half_life_s),
        };
        Recommender {
            resource,
            params,
            hist,
            window_end: None,
            peaks: Vec::new(),
        }
    }

    /// Adds one usage sample in native units (cores or bytes) measured from `t`; `request` is
    /// the request in force then (native units; 0 for none).
    pub fn add(&mut self, t: i64, usage: f64, request: f64) {
        match self.resource {
            Resource::Cpu => self.hist.add(usage, request.max(MIN_CPU_WEIGHT), t as f64),
            Resource::Memory => self.add_memory(t, usage),
        }
    }

    fn add_memory(&mut self, t: i64, usage: f64) {
        let interval = self.params.memory_interval_s;
        let end = *self.window_end.get_or_insert(t);
        if t < end {
            let (pend, peak) = *self.peaks.last().expect("an open interval has a peak");
            if usage > peak {
                self.hist.subtract(peak, 1.0, pend as f64);
                self.hist.add(usage, 1.0, end as f64);
                *self.peaks.last_mut().expect("checked above") = (end, usage);
            }
            return;
        }
        let new_end = end + (t - end) / interval * interval + interval;
        self.window_end = Some(new_end);
        self.hist.add(usage, 1.0, new_end as f64);
        self.peaks.push((new_end, usage));
        // Keep the intervals of the aggregation window only.
        let oldest = new_end - self.params.memory_intervals * interval;
        let expired = self.peaks.iter().take_while(|(e, _)| *e <= oldest).count();
        for (e, v) in self.peaks.drain(..expired).collect::<Vec<_>>() {
            self.hist.subtract(v, 1.0, e as f64);
        }
    }

    /// The target recommendation in native units.
    pub fn target(&self) -> f64 {
        let min = match self.resource {
            Resource::Cpu => MIN_CPU_CORES,
            Resource::Memory => MIN_MEMORY_BYTES,
        };
        (self.hist.percentile(self.params.percentile) * (1.0 + self.params.margin)).max(min)
    }
}

/// VPA's allocations for the steps from `warmup` on, re-decided every `window` samples from the
/// samples before the decision; the request weighting CPU samples is VPA's own recommendation.
pub fn replay(series: &Series, params: &VpaParams, window: usize, warmup: usize) -> Vec<f64> {
    let n = series.values.len();
    let scale = series.native_per_unit;
    let mut rec = Recommender::new(series.resource, *params);
    let mut out = Vec::with_capacity(n.saturating_sub(warmup));
    let mut current = 0.0;
    for (j, (&t, &v)) in series.timestamps.iter().zip(&series.values).enumerate() {
        if j >= warmup {
            if (j - warmup).is_multiple_of(window) {
                current = rec.target() / scale;
            }
            out.push(current);
        }
        let request = if j >= warmup { current * scale } else { 0.0 };
        rec.add(t, v * scale, request);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_layout_matches_vpa() {
        let h = Histogram::cpu(86_400.0);
        // ceil(log_1.05(1000 * 0.05 / 0.001 + 1)) + 1
        assert_eq!(h.buckets(), 223);
        assert_eq!(h.find_bucket(0.0005), 0);
        assert_eq!(h.find_bucket(0.001), 1);
        assert!((h.bucket_start(2) - 0.00205).abs() < 1e-12);
        assert_eq!(h.find_bucket(0.00205 + 1e-9), 2);
        assert_eq!(h.find_bucket(1e9), 222);
        assert_eq!(Histogram::memory(86_400.0).buckets(), 176);
    }

    #[test]
    fn percentile_is_the_end_of_the_bucket() {
        let mut h = Histogram::cpu(86_400.0);
        assert_eq!(h.percentile(0.9), 0.0);
        for i in 1..=10 {
            h.add(f64::from(i), 1.0, 0.0);
        }
        let p = h.percentile(0.9);
        let b = h.find_bucket(9.0);
        assert_eq!(p, h.bucket_start(b + 1));
        assert!(p > 9.0 && p < 9.0 * 1.06);
    }

    #[test]
    fn a_day_old_sample_weighs_half() {
        let mut h = Histogram::cpu(86_400.0);
        // Two samples of 1 core a day ago against one of 2 cores now: equal weight, so the
        // median sits in the lower bucket and P60 in the upper.
        h.add(1.0, 1.0, 0.0);
        h.add(1.0, 1.0, 0.0);
        h.add(2.0, 1.0, 86_400.0);
        assert!(h.percentile(0.5) < 1.1);
        assert!(h.percentile(0.6) > 2.0);
        // Far in the future the reference moves and old weight vanishes, without overflow.
        h.add(3.0, 1.0, 86_400.0 * 500.0);
        assert!(h.percentile(0.1) > 3.0);
    }

    #[test]
    fn memory_keeps_one_peak_per_day_for_eight_days() {
        let mut r = Recommender::new(Resource::Memory, VpaParams::defaults());
        let gib = 1024.0 * 1024.0 * 1024.0;
        // Day 0: a 4 GiB peak among 1 GiB samples; days 1..9: 1 GiB only.
        for i in 0..288 {
            r.add(i * 300, if i == 100 { 4.0 * gib } else { gib }, 0.0);
        }
        assert_eq!(r.peaks.len(), 1);
        let day0 = r.target();
        assert!(day0 > 4.0 * gib * 1.15, "{day0}");
        for i in 288..(288 * 10) {
            r.add(i * 300, gib, 0.0);
        }
        assert!(r.peaks.len() <= 8);
        let later = r.target();
        assert!(later < 1.1 * gib * 1.15 && later > gib, "{later}");
    }

    #[test]
    fn minimums_apply() {
        let mut r = Recommender::new(Resource::Cpu, VpaParams::defaults());
        r.add(0, 0.001, 0.0);
        assert_eq!(r.target(), MIN_CPU_CORES);
        let r = Recommender::new(Resource::Memory, VpaParams::defaults());
        assert_eq!(r.target(), MIN_MEMORY_BYTES);
    }
}

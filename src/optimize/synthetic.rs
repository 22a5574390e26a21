//! Seeded random instances for tests and benchmarks: requests with a normal vCPU demand (a
//! forecast with intervals) and an empirical memory demand (history samples), optionally a
//! storage-class choice; hosts sized so that capacity binds.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Alternative, Amounts, Choice, Demand, Host, Problem, Request, Resource, TierWeights};
use crate::model::Tier;

const GIB_KIB: f64 = 1024.0 * 1024.0;

/// The shape of a synthetic instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    pub requests: usize,
    pub hosts: usize,
    /// Candidate levels per resource: vCPUs 1..=levels, memory 1..=levels GiB.
    pub levels: usize,
    /// Add a storage choice: SSD (scarce, no risk) or HDD (plenty, risk for I/O-heavy requests).
    pub storage: bool,
    /// Free capacity over the requests' mean demand, all hosts together (below 1: not everyone
    /// gets what they would like).
    pub capacity_ratio: f64,
}

impl Spec {
    /// 100 pending requests on 8 hosts, 8 levels per resource, a storage choice.
    pub fn bench() -> Spec {
        Spec {
            requests: 100,
            hosts: 8,
            levels: 8,
            storage: true,
            capacity_ratio: 1.1,
        }
    }
}

/// A random instance: the same `seed` and `spec` give the same problem.
pub fn instance(seed: u64, spec: &Spec) -> Problem {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut requests = Vec::with_capacity(spec.requests);
    let (mut cpu_sum, mut mem_sum, mut disk_sum) = (0.0, 0.0, 0.0);
    for i in 0..spec.requests {
        let tier = Tier::ALL[rng.random_range(0..3)];
        let top = spec.levels.max(1) as f64;
        let cpu_mean = rng.random_range(0.3..0.6) * top;
        let cpu_sd = cpu_mean * rng.random_range(0.1..0.5);
        let mem_base = rng.random_range(0.25..0.65) * top * GIB_KIB;
        let samples: Vec<f64> = (0..24)
            .map(|_| mem_base * rng.random_range(0.7..1.4))
            .collect();
        cpu_sum += cpu_mean;
        mem_sum += mem_base * 1.05;
        let mut choices = vec![
            Choice::Level {
                resource: Resource::Vcpus,
                demand: Demand::Normal {
                    mean: cpu_mean,
                    sd: cpu_sd,
                },
                levels: (1..=spec.levels).map(|v| v as f64).collect(),
            },
            Choice::Level {
                resource: Resource::MemoryKib,
                demand: Demand::Samples(samples),
                levels: (1..=spec.levels).map(|g| g as f64 * GIB_KIB).collect(),
            },
        ];
        if spec.storage {
            let disk = rng.random_range(10.0..40.0_f64).round();
            let io_heavy = rng.random_range(0.0..0.02);
            disk_sum += disk;
            choices.push(Choice::Option {
                name: "storage".into(),
                alternatives: vec![
                    Alternative {
                        label: "ssd".into(),
                        uses: Amounts::zero().with(Resource::SsdGib, disk),
                        waste: 0.01,
                        risk: 0.0,
                    },
                    Alternative {
                        label: "hdd".into(),
                        uses: Amounts::zero().with(Resource::HddGib, disk),
                        waste: 0.0,
                        risk: io_heavy,
                    },
                ],
            });
        }
        requests.push(Request {
            name: format!("r{i}"),
            tier,
            choices,
        });
    }
    let n = spec.hosts.max(1) as f64;
    let hosts = (0..spec.hosts)
        .map(|h| {
            let f = spec.capacity_ratio * rng.random_range(0.8..1.2) / n;
            let cpu = (cpu_sum * f).ceil().max(1.0);
            let mem = (mem_sum * f / GIB_KIB).ceil().max(1.0) * GIB_KIB;
            let reserved_cpu = if rng.random_bool(0.3) { 1.0 } else { 0.0 };
            Host {
                name: format!("h{h}"),
                capacity: Amounts::zero()
                    .with(Resource::Vcpus, cpu + reserved_cpu)
                    .with(Resource::MemoryKib, mem + GIB_KIB)
                    .with(Resource::SsdGib, (disk_sum * f * 0.5).ceil())
                    .with(Resource::HddGib, (disk_sum * f * 4.0).ceil()),
                reserved: Amounts::zero()
                    .with(Resource::Vcpus, reserved_cpu)
                    .with(Resource::MemoryKib, GIB_KIB),
            }
        })
        .collect();
    Problem {
        hosts,
        requests,
        weights: TierWeights::default(),
    }
}

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::synthetic::{self, Spec};
use super::*;
use crate::model::Tier;

const GIB: f64 = 1024.0 * 1024.0;

/// Every host within its free capacity, checked from the problem's own numbers.
fn assert_fits(p: &Problem, s: &Solution) {
    assert_eq!(s.assignments.len(), p.requests.len());
    let mut load = vec![Amounts::zero(); p.hosts.len()];
    for (i, a) in s.assignments.iter().enumerate() {
        let u = p.uses(i, a);
        for r in Resource::ALL {
            load[a.host][r] += u[r];
        }
    }
    for (h, host) in p.hosts.iter().enumerate() {
        for r in Resource::ALL {
            let free = (host.capacity[r] - host.reserved[r]).max(0.0);
            assert!(
                load[h][r] <= free * (1.0 + 1e-9) + 1e-9,
                "host {} {}: load {} over free {free}",
                host.name,
                r.as_str(),
                load[h][r]
            );
        }
    }
}

fn small_spec(rng: &mut ChaCha8Rng) -> Spec {
    Spec {
        requests: rng.random_range(2..=5),
        hosts: rng.random_range(2..=3),
        levels: rng.random_range(2..=4),
        storage: rng.random_bool(0.5),
        capacity_ratio: rng.random_range(0.7..1.3),
    }
}

fn quick(seed: u64, parallel: bool) -> GaOptions {
    GaOptions {
        seed,
        population: 100,
        max_generations: 300,
        stall_generations: 40,
        parallel,
        ..GaOptions::default()
    }
}

#[test]
fn ga_within_one_percent_of_exact_on_200_instances() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let (mut feasible, mut worst, mut worst_at, mut exact_hits) = (0, 0.0_f64, 0, 0);
    let n = 200;
    for k in 0..n {
        let spec = small_spec(&mut rng);
        let p = synthetic::instance(1000 + k, &spec);
        let ex = exact(&p, DEFAULT_EXACT_NODE_LIMIT).expect("small instance");
        let ga = solve(&p, &quick(k, false)).unwrap();
        assert_eq!(
            ga.is_feasible(),
            ex.is_feasible(),
            "instance {k} ({spec:?}): GA {:?}, exact {:?}",
            ga.feasibility,
            ex.feasibility
        );
        if !ex.is_feasible() {
            continue;
        }
        feasible += 1;
        assert_fits(&p, &ga);
        assert_fits(&p, &ex);
        assert!(
            ex.objective <= ga.objective + 1e-9,
            "instance {k}: exact {} above GA {}",
            ex.objective,
            ga.objective
        );
        let gap = (ga.objective - ex.objective) / ex.objective.max(1e-12);
        if gap <= 1e-9 {
            exact_hits += 1;
        }
        if gap > worst {
            (worst, worst_at) = (gap, k);
        }
    }
    println!(
        "GA vs exact: {n} instances, {feasible} feasible, {exact_hits} at the optimum, worst gap {:.4}% (instance {worst_at})",
        worst * 100.0
    );
    assert!(feasible >= n / 2, "only {feasible} feasible instances");
    assert!(worst <= 0.01, "worst gap {worst} on instance {worst_at}");
}

#[test]
fn serial_and_parallel_give_the_same_answer() {
    for seed in [1, 7] {
        let spec = Spec {
            requests: 30,
            hosts: 4,
            levels: 6,
            storage: true,
            capacity_ratio: 1.0,
        };
        let p = synthetic::instance(seed, &spec);
        let opts = GaOptions {
            population: 80,
            seed,
            ..GaOptions::default()
        };
        let s = solve(
            &p,
            &GaOptions {
                parallel: false,
                ..opts.clone()
            },
        )
        .unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let par = pool.install(|| {
            solve(
                &p,
                &GaOptions {
                    parallel: true,
                    ..opts.clone()
                },
            )
            .unwrap()
        });
        assert_eq!(s.assignments, par.assignments);
        assert_eq!(s.objective.to_bits(), par.objective.to_bits());
        assert_eq!(s.stats, par.stats);
        assert!(s.is_feasible());
        assert_fits(&p, &s);
        // and a replay with the same seed is the same run
        assert_eq!(
            s,
            solve(
                &p,
                &GaOptions {
                    parallel: false,
                    ..opts
                }
            )
            .unwrap()
        );
    }
}

#[test]
fn capacity_is_never_exceeded() {
    for seed in 0..6 {
        let spec = Spec {
            requests: 40,
            hosts: 5,
            levels: 8,
            storage: seed % 2 == 0,
            capacity_ratio: 0.8 + 0.1 * seed as f64,
        };
        let p = synthetic::instance(seed, &spec);
        let s = solve(&p, &quick(seed, false)).unwrap();
        assert!(s.is_feasible(), "seed {seed}: {:?}", s.feasibility);
        assert_eq!(s.overflow, 0.0);
        assert_fits(&p, &s);
    }
}

fn host(name: &str, vcpus: f64, mem_gib: f64) -> Host {
    Host {
        name: name.into(),
        capacity: Amounts::zero()
            .with(Resource::Vcpus, vcpus)
            .with(Resource::MemoryKib, mem_gib * GIB),
        reserved: Amounts::zero(),
    }
}

fn vcpu_request(name: &str, tier: Tier, demand: Demand, levels: &[f64]) -> Request {
    Request {
        name: name.into(),
        tier,
        choices: vec![Choice::Level {
            resource: Resource::Vcpus,
            demand,
            levels: levels.to_vec(),
        }],
    }
}

#[test]
fn an_infeasible_instance_says_why() {
    // one request needs at least 4 vCPUs, the only host has 2
    let p = Problem {
        hosts: vec![host("small", 2.0, 4.0)],
        requests: vec![vcpu_request(
            "big",
            Tier::Low,
            Demand::Fixed(5.0),
            &[4.0, 6.0],
        )],
        weights: TierWeights::default(),
    };
    let s = solve(&p, &quick(0, false)).unwrap();
    match &s.feasibility {
        Feasibility::NoneExists(why) => {
            assert!(why.contains("'big'") && why.contains("vcpus"), "{why}")
        }
        other => panic!("expected NoneExists, got {other:?}"),
    }
    assert!(s.overflow > 0.0);
    assert!(matches!(
        exact(&p, DEFAULT_EXACT_NODE_LIMIT).unwrap().feasibility,
        Feasibility::NoneExists(_)
    ));

    // total capacity suffices (6 = 3 x 2), but 2-vCPU requests do not pack into 3-vCPU hosts
    let p = Problem {
        hosts: vec![host("a", 3.0, 4.0), host("b", 3.0, 4.0)],
        requests: (0..3)
            .map(|i| vcpu_request(&format!("q{i}"), Tier::Medium, Demand::Fixed(2.0), &[2.0]))
            .collect(),
        weights: TierWeights::default(),
    };
    let s = solve(&p, &quick(0, true)).unwrap();
    assert_eq!(s.feasibility, Feasibility::NoneFound);
    match exact(&p, DEFAULT_EXACT_NODE_LIMIT).unwrap().feasibility {
        Feasibility::NoneExists(why) => assert!(why.contains("exhaustive"), "{why}"),
        other => panic!("expected NoneExists, got {other:?}"),
    }

    // no hosts at all
    let p = Problem { hosts: vec![], ..p };
    let s = solve(&p, &quick(0, true)).unwrap();
    assert!(matches!(&s.feasibility, Feasibility::NoneExists(w) if w.contains("no hosts")));
    assert!(s.assignments.is_empty());
}

#[test]
fn tier_weight_buys_headroom() {
    let demand = Demand::Normal { mean: 3.0, sd: 1.0 };
    let levels: Vec<f64> = (1..=8).map(f64::from).collect();
    // unconstrained: each tier gets about its quantile (P50 -> 3, P90 -> 4.28 -> 4, P99 -> 5.33 -> 5 or 6)
    let p = Problem {
        hosts: vec![host("roomy", 64.0, 64.0)],
        requests: Tier::ALL
            .iter()
            .map(|&t| vcpu_request(t.as_str(), t, demand.clone(), &levels))
            .collect(),
        weights: TierWeights::default(),
    };
    let s = solve(&p, &quick(3, true)).unwrap();
    let lv: Vec<f64> = s.assignments.iter().map(|a| levels[a.options[0]]).collect();
    assert!(lv[0] < lv[1] && lv[1] < lv[2], "levels by tier {lv:?}");
    assert_eq!(lv[0], 3.0);
    assert_eq!(
        s,
        exact(&p, DEFAULT_EXACT_NODE_LIMIT)
            .unwrap()
            .with_stats(s.stats)
    );

    // constrained: two equal demands, room for 8 vCPUs; the high-tier request gets more
    let p = Problem {
        hosts: vec![host("tight", 8.0, 64.0)],
        requests: vec![
            vcpu_request(
                "low",
                Tier::Low,
                Demand::Normal { mean: 4.0, sd: 1.5 },
                &levels,
            ),
            vcpu_request(
                "high",
                Tier::High,
                Demand::Normal { mean: 4.0, sd: 1.5 },
                &levels,
            ),
        ],
        weights: TierWeights::default(),
    };
    let s = solve(&p, &quick(5, false)).unwrap();
    let (low, high) = (
        levels[s.assignments[0].options[0]],
        levels[s.assignments[1].options[0]],
    );
    assert!(high > low, "high {high} should exceed low {low}");
    assert!(high + low <= 8.0);
    // with equal weights the split is even
    let p = Problem {
        weights: TierWeights {
            low: 99.0,
            medium: 9.0,
            high: 99.0,
        },
        ..p
    };
    let s = solve(&p, &quick(5, false)).unwrap();
    assert_eq!(s.assignments[0].options, s.assignments[1].options);
}

impl Solution {
    fn with_stats(mut self, stats: SearchStats) -> Self {
        self.stats = stats;
        self
    }
}

#[test]
fn bad_input_is_named_and_empty_input_is_an_answer() {
    let ok = Problem {
        hosts: vec![host("h", 4.0, 4.0)],
        requests: vec![],
        weights: TierWeights::default(),
    };
    let s = solve(&ok, &GaOptions::default()).unwrap();
    assert!(s.is_feasible() && s.assignments.is_empty() && s.objective == 0.0);
    assert!(exact(&ok, 10).unwrap().is_feasible());

    let mut p = ok.clone();
    p.hosts[0].capacity[Resource::MemoryKib] = f64::NAN;
    p.requests = vec![vcpu_request("r", Tier::Low, Demand::Fixed(1.0), &[1.0])];
    let e = solve(&p, &GaOptions::default()).unwrap_err().to_string();
    assert!(e.contains("host 'h'") && e.contains("memory_kib"), "{e}");

    let mut p = ok.clone();
    p.requests = vec![vcpu_request("nolevels", Tier::Low, Demand::Fixed(1.0), &[])];
    let e = solve(&p, &GaOptions::default()).unwrap_err().to_string();
    assert!(e.contains("'nolevels'") && e.contains("no options"), "{e}");

    let mut p = ok.clone();
    p.requests = vec![vcpu_request("neg", Tier::Low, Demand::Fixed(1.0), &[-1.0])];
    assert!(exact(&p, 10).unwrap_err().to_string().contains("-1"));

    let mut p = ok.clone();
    p.requests = vec![vcpu_request(
        "s",
        Tier::Low,
        Demand::Samples(vec![]),
        &[1.0],
    )];
    assert!(solve(&p, &GaOptions::default()).is_err());

    let r = vcpu_request("r", Tier::Low, Demand::Fixed(1.0), &[1.0]);
    let p = Problem {
        requests: vec![r],
        ..ok.clone()
    };
    for bad in [
        GaOptions {
            population: 1,
            ..GaOptions::default()
        },
        GaOptions {
            tournament: 0,
            ..GaOptions::default()
        },
        GaOptions {
            elites: 200,
            ..GaOptions::default()
        },
        GaOptions {
            mutation_rate: Some(1.5),
            ..GaOptions::default()
        },
    ] {
        assert!(solve(&p, &bad).is_err(), "{bad:?}");
    }
    assert!(TierWeights::from_quantiles(0.5, 0.9, 1.0).is_err());
    let w = TierWeights::from_quantiles(0.5, 0.9, 0.99).unwrap();
    assert!((w.medium - 9.0).abs() < 1e-9 && (w.high - 99.0).abs() < 1e-9);

    // zero capacity everywhere: a clear no, not a panic
    let p = Problem {
        hosts: vec![host("empty", 0.0, 0.0)],
        requests: vec![vcpu_request(
            "r",
            Tier::Low,
            Demand::Fixed(1.0),
            &[1.0, 2.0],
        )],
        weights: TierWeights::default(),
    };
    assert!(matches!(
        solve(&p, &GaOptions::default()).unwrap().feasibility,
        Feasibility::NoneExists(_)
    ));
}

#[test]
fn exact_refuses_instances_past_its_node_limit() {
    let p = synthetic::instance(3, &Spec::bench());
    let e = exact(&p, 1000).unwrap_err().to_string();
    assert!(e.contains("more than 1000 search nodes"), "{e}");
}

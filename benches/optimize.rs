//! The optimizer on 100 pending requests x 8 hosts (`synthetic::Spec::bench`): time to converge
//! with the serial evaluation (`iter`, one thread) and the parallel one (every thread of a local
//! rayon pool of 2 threads), the speed-up between them, and the GA's gap to the exact optimum on
//! 200 random instances small enough to enumerate.
//!
//! Run: `cargo bench --bench optimize` (criterion's timings, then a summary block).
//! Targets (issue 5): converge in under 100 ms; parallel speed-up at least 1.7x on 2 cores.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use prae::optimize::synthetic::{self, Spec};
use prae::optimize::{DEFAULT_EXACT_NODE_LIMIT, GaOptions, Problem, Solution, exact, solve};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::{ThreadPool, ThreadPoolBuilder};

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon pool")
}

fn run(pool: &ThreadPool, p: &Problem, parallel: bool, seed: u64) -> Solution {
    let opts = GaOptions {
        seed,
        parallel,
        ..GaOptions::default()
    };
    pool.install(|| solve(p, &opts).expect("valid problem"))
}

/// On-CPU time of the calling thread so far, ns (Linux `schedstat`); `None` elsewhere.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A serial run and the CPU time its thread spent in it, ms: what the run would take on an idle
/// core, whatever else the machine is doing.
fn run_cpu(pool: &ThreadPool, p: &Problem, seed: u64) -> (Solution, Option<f64>) {
    let opts = GaOptions {
        seed,
        parallel: false,
        ..GaOptions::default()
    };
    pool.install(|| {
        let before = thread_cpu_ns();
        let s = solve(p, &opts).expect("valid problem");
        let cpu = before
            .zip(thread_cpu_ns())
            .map(|(a, b)| (b - a) as f64 / 1e6);
        (s, cpu)
    })
}

fn bench_converge(c: &mut Criterion, p: &Problem, one: &ThreadPool, two: &ThreadPool) {
    let mut g = c.benchmark_group("ga_100x8");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("serial", |b| b.iter(|| run(one, black_box(p), false, 1)));
    g.bench_function("parallel_2_threads", |b| {
        b.iter(|| run(two, black_box(p), true, 1))
    });
    g.finish();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Alternating runs over several seeds, so every variant sees the same machine load: serial
/// (`iter`) on a pool of 1, parallel (`parallel: true`) on a pool of 1 (rayon's overhead alone)
/// and parallel on a pool of 2. Every run of a seed must give the same answer.
fn speedup(p: &Problem, one: &ThreadPool, two: &ThreadPool) {
    let (mut ts, mut t1, mut tp) = (vec![], vec![], vec![]);
    let mut gens = vec![];
    let time = |f: &dyn Fn() -> Solution| {
        let t = Instant::now();
        let s = f();
        (s, t.elapsed().as_secs_f64() * 1e3)
    };
    for round in 0..10 {
        for seed in 0..3 {
            let (s, a) = time(&|| run(one, p, false, seed));
            let (q1, b) = time(&|| run(one, p, true, seed));
            let (q2, c) = time(&|| run(two, p, true, seed));
            ts.push(a);
            t1.push(b);
            tp.push(c);
            assert_eq!(s, q1, "serial and parallel(1) differ for seed {seed}");
            assert_eq!(s, q2, "serial and parallel(2) differ for seed {seed}");
            assert!(s.is_feasible(), "seed {seed}: {:?}", s.feasibility);
            if round == 0 {
                gens.push((s.stats.generations, s.stats.evaluations, s.objective));
            }
        }
    }
    let cpu: Vec<f64> = (0..3)
        .flat_map(|seed| (0..3).map(move |_| seed))
        .filter_map(|seed| run_cpu(one, p, seed).1)
        .collect();
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (ms, m1, mp) = (median(ts.clone()), median(t1.clone()), median(tp.clone()));
    println!("100 requests x 8 hosts, population 200, seeds 0..3, 10 rounds:");
    for (seed, (g, e, obj)) in gens.iter().enumerate() {
        println!(
            "  seed {seed}: {g} generations, {e} evaluations, objective {obj:.4}, feasible, serial == parallel"
        );
    }
    println!(
        "  converge: serial median {ms:.1} ms (min {:.1}); parallel on 1 thread median {m1:.1} ms (min {:.1}); parallel on 2 threads median {mp:.1} ms (min {:.1})",
        min(&ts),
        min(&t1),
        min(&tp)
    );
    println!(
        "  speed-up of 2 threads over serial: {:.2}x (medians), {:.2}x (minima)",
        ms / mp,
        min(&ts) / min(&tp)
    );
    if !cpu.is_empty() {
        println!(
            "  serial CPU time per run (thread schedstat, independent of other load): median {:.1} ms (min {:.1})",
            median(cpu.clone()),
            min(&cpu)
        );
    }
}

/// The same population of instances as the unit test: 2-5 requests, 2-3 hosts, 2-4 levels.
fn gap_summary() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let n = 200;
    let (mut feasible, mut at_opt, mut worst, mut agree) = (0, 0, 0.0_f64, 0);
    let t = Instant::now();
    for k in 0..n {
        let spec = Spec {
            requests: rng.random_range(2..=5),
            hosts: rng.random_range(2..=3),
            levels: rng.random_range(2..=4),
            storage: rng.random_bool(0.5),
            capacity_ratio: rng.random_range(0.7..1.3),
        };
        let p = synthetic::instance(1000 + k, &spec);
        let ex = exact(&p, DEFAULT_EXACT_NODE_LIMIT).expect("small instance");
        let ga = solve(
            &p,
            &GaOptions {
                seed: k,
                population: 100,
                max_generations: 300,
                stall_generations: 40,
                parallel: false,
                ..GaOptions::default()
            },
        )
        .expect("valid problem");
        if ga.is_feasible() == ex.is_feasible() {
            agree += 1;
        }
        if ex.is_feasible() {
            feasible += 1;
            let gap = (ga.objective - ex.objective) / ex.objective.max(1e-12);
            if gap <= 1e-9 {
                at_opt += 1;
            }
            worst = worst.max(gap);
        }
    }
    println!(
        "GA vs exact: {n} instances ({feasible} feasible, feasibility agrees on {agree}), {at_opt} at the optimum, worst gap {:.4}% ({:.1} s)",
        worst * 100.0,
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let p = synthetic::instance(42, &Spec::bench());
    let (one, two) = (pool(1), pool(2));
    let mut c = Criterion::default().configure_from_args();
    bench_converge(&mut c, &p, &one, &two);
    c.final_summary();
    if args.iter().any(|a| a == "--test") {
        return; // `cargo test --benches`: criterion ran each bench once; skip the summary
    }
    println!("\n== summary ({} cores available)", num_cpus());
    speedup(&p, &one, &two);
    gap_summary();
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

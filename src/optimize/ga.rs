//! The genetic algorithm. Per generation: the population is sorted (best first), the elites are
//! kept, and every other slot gets a child built by one pure function of `(previous population,
//! seed, generation, slot)`: tournament selection, crossover, mutation, repair, evaluation. That
//! function is run over the slots by every thread of the current rayon pool (each takes the next
//! free slot; `rayon::broadcast`) or by the calling thread alone; each child draws from its own
//! ChaCha8 generator seeded from `(seed, generation, slot)`, so both give the same population,
//! bit for bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::tables::{Compiled, Fitness, Scratch};
use super::{Feasibility, Problem, SearchStats, Solution};
use crate::{Error, Result};

/// How two parents are combined; both work on whole requests (a request's host and options
/// travel together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crossover {
    /// Each request from either parent with probability 1/2.
    Uniform,
    /// Requests before a random cut from the first parent, the rest from the second.
    OnePoint,
}

/// Settings of [`solve`]. With the defaults, 100 requests x 8 hosts converge in about 70 ms of
/// one core's time (`benches/results/optimize.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GaOptions {
    pub seed: u64,
    pub population: usize,
    /// Hard cap on generations.
    pub max_generations: u32,
    /// Stop after this many generations without improvement of the best.
    pub stall_generations: u32,
    /// Tournament size.
    pub tournament: usize,
    pub crossover: Crossover,
    /// Probability that a child is a crossover of two parents (else a copy of one).
    pub crossover_rate: f64,
    /// Probability that a request of a child mutates (one of its genes); `None`: 1.5 / requests.
    pub mutation_rate: Option<f64>,
    /// Best individuals copied unchanged into the next generation.
    pub elites: usize,
    /// Build each generation on every thread of the current rayon pool instead of the calling
    /// thread alone. Same answer either way.
    pub parallel: bool,
    /// Finish with a first-improvement local search on the best individual.
    pub polish: bool,
}

impl Default for GaOptions {
    fn default() -> Self {
        GaOptions {
            seed: 0,
            population: 200,
            max_generations: 400,
            stall_generations: 25,
            tournament: 3,
            crossover: Crossover::Uniform,
            crossover_rate: 0.9,
            mutation_rate: None,
            elites: 2,
            parallel: true,
            polish: true,
        }
    }
}

impl GaOptions {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.population < 2 {
            return bad(format!(
                "population must be at least 2, got {}",
                self.population
            ));
        }
        if self.tournament == 0 {
            return bad("tournament size must be at least 1, got 0".into());
        }
        if self.elites >= self.population {
            return bad(format!(
                "elites ({}) must be fewer than the population ({})",
                self.elites, self.population
            ));
        }
        if !(0.0..=1.0).contains(&self.crossover_rate) {
            return bad(format!(
                "crossover rate must be within [0, 1], got {}",
                self.crossover_rate
            ));
        }
        if let Some(m) = self.mutation_rate
            && !(0.0..=1.0).contains(&m)
        {
            return bad(format!("mutation rate must be within [0, 1], got {m}"));
        }
        Ok(())
    }
}

/// SplitMix64's finaliser: decorrelates nearby integers.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn slot_rng(seed: u64, generation: u32, slot: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(
        mix(seed) ^ mix(((generation as u64) << 32) ^ slot as u64)
    ))
}

/// Calls `f(slot, genes, fitness, scratch)` for every slot of a flat population buffer
/// (`genes` holds `n` genes per slot), in parallel or not; every slot's result depends only on
/// its slot, so both fill the buffers identically. `scratch` is reused between the slots one
/// thread builds and never carries information from one slot to the next.
///
/// In parallel every thread of the pool takes the next free slot from a shared queue until none
/// is left. A child costs about 11 us, so a generation is only ~2 ms of work; rayon's split tree
/// (`par_chunks_mut` with at least 8 or 2 slots per task) gained less on 2 threads, measured side
/// by side in `benches/results/optimize.md`: taking one slot at a time keeps every thread busy to
/// the end of the generation.
fn for_each_slot<F>(genes: &mut [u32], fits: &mut [Fitness], n: usize, parallel: bool, f: F)
where
    F: Fn(usize, &mut [u32], &mut Fitness, &mut Scratch) + Sync + Send,
{
    if parallel {
        let mut slots: Vec<(usize, &mut [u32], &mut Fitness)> = genes
            .chunks_mut(n)
            .zip(fits.iter_mut())
            .enumerate()
            .map(|(k, (g, fit))| (k, g, fit))
            .collect();
        let queue = std::sync::Mutex::new(slots.iter_mut());
        rayon::broadcast(|_| {
            let mut s = Scratch::default();
            loop {
                // a poisoned lock means another thread panicked: that panic is re-raised
                let next = queue.lock().ok().and_then(|mut q| q.next());
                let Some((slot, g, fit)) = next else { break };
                f(*slot, g, fit, &mut s);
            }
        });
    } else {
        let mut s = Scratch::default();
        for (slot, (g, fit)) in genes.chunks_mut(n).zip(fits.iter_mut()).enumerate() {
            f(slot, g, fit, &mut s);
        }
    }
}

/// Slots sorted best first; equal fitness keeps slot order, so the order never depends on
/// timing.
fn rank(fits: &[Fitness], order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..fits.len());
    order.sort_by(|&a, &b| fits[a].cmp(&fits[b]));
}

/// Chooses a host and options for every request of `problem`: see the module documentation.
///
/// Errors only on invalid input (naming it). An instance with no feasible assignment is an
/// answer, not an error: its [`Solution::feasibility`] says so.
pub fn solve(problem: &Problem, opts: &GaOptions) -> Result<Solution> {
    problem.validate()?;
    opts.validate()?;
    let c = Compiled::new(problem);
    if c.n_req == 0 {
        return Ok(c.solution(&[], SearchStats::default(), || Feasibility::Feasible));
    }
    if c.n_hosts == 0 {
        let reason = c.impossible().unwrap_or_default();
        return Ok(Solution {
            assignments: vec![],
            objective: 0.0,
            waste: 0.0,
            shortfall: 0.0,
            overflow: 0.0,
            feasibility: Feasibility::NoneExists(reason),
            stats: SearchStats::default(),
        });
    }
    let mutation = opts
        .mutation_rate
        .unwrap_or((1.5 / c.n_req as f64).min(1.0));
    let n = c.n_genes();
    let size = opts.population;
    let zero = Fitness {
        overflow: 0.0,
        cost: 0.0,
    };

    let greedy = c.greedy();
    // the population: `size` slots of `n` genes, their fitness, and the slots ranked best first
    let mut genes = vec![0u32; size * n];
    let mut fits = vec![zero; size];
    for_each_slot(
        &mut genes,
        &mut fits,
        n,
        opts.parallel,
        |slot, g, fit, s| {
            if slot == 0 {
                g.copy_from_slice(&greedy);
            } else {
                let mut rng = slot_rng(opts.seed, 0, slot);
                random_individual(&c, &greedy, slot, &mut rng, g);
                c.repair(g, s);
            }
            *fit = c.evaluate(g, s);
        },
    );
    let mut order = Vec::with_capacity(size);
    rank(&fits, &mut order);
    let mut next_genes = vec![0u32; size * n];
    let mut next_fits = vec![zero; size];
    let mut evaluations = size as u64;
    let mut best = fits[order[0]];
    let mut stall = 0;
    let mut generations = 0;

    while generations < opts.max_generations && stall < opts.stall_generations {
        generations += 1;
        // elites first, in rank order, then the children
        for (e, &slot) in order.iter().take(opts.elites).enumerate() {
            next_genes[e * n..(e + 1) * n].copy_from_slice(&genes[slot * n..(slot + 1) * n]);
            next_fits[e] = fits[slot];
        }
        let (parents, ranked) = (&genes, &order);
        let parent = |rank: usize| {
            let slot = ranked[rank];
            &parents[slot * n..(slot + 1) * n]
        };
        let e = opts.elites;
        for_each_slot(
            &mut next_genes[e * n..],
            &mut next_fits[e..],
            n,
            opts.parallel,
            |k, child, fit, s| {
                let mut rng = slot_rng(opts.seed, generations, e + k);
                let a = tournament(size, opts.tournament, &mut rng);
                child.copy_from_slice(parent(a));
                if rng.random_bool(opts.crossover_rate) {
                    let b = tournament(size, opts.tournament, &mut rng);
                    crossover(&c, child, parent(b), opts.crossover, &mut rng);
                }
                mutate(&c, child, mutation, &mut rng);
                c.repair(child, s);
                *fit = c.evaluate_repaired(child, s);
            },
        );
        evaluations += (size - e) as u64;
        std::mem::swap(&mut genes, &mut next_genes);
        std::mem::swap(&mut fits, &mut next_fits);
        rank(&fits, &mut order);
        let top = fits[order[0]];
        if top.improves_on(&best) {
            stall = 0;
        } else {
            stall += 1;
        }
        best = top;
    }

    let slot = order[0];
    let mut genes = genes[slot * n..(slot + 1) * n].to_vec();
    if opts.polish {
        c.polish(&mut genes, &mut Scratch::default());
    }
    let stats = SearchStats {
        generations,
        evaluations,
    };
    Ok(c.solution(&genes, stats, || match c.impossible() {
        Some(reason) => Feasibility::NoneExists(reason),
        None => Feasibility::NoneFound,
    }))
}

/// Index of the winner of a tournament among `k` random slots of a population sorted best first:
/// the smallest index drawn.
fn tournament(n: usize, k: usize, rng: &mut ChaCha8Rng) -> usize {
    (0..k).map(|_| rng.random_range(0..n)).min().unwrap_or(0)
}

/// Overwrites part of `child` (a copy of the first parent) with `b`.
fn crossover(c: &Compiled, child: &mut [u32], b: &[u32], kind: Crossover, rng: &mut ChaCha8Rng) {
    match kind {
        Crossover::Uniform => {
            for i in 0..c.n_req {
                if rng.random_bool(0.5) {
                    let r = c.offset[i]..c.offset[i + 1];
                    child[r.clone()].copy_from_slice(&b[r]);
                }
            }
        }
        Crossover::OnePoint => {
            let cut = rng.random_range(0..=c.n_req);
            let from = c.offset[cut];
            child[from..].copy_from_slice(&b[from..]);
        }
    }
}

/// Each request mutates with probability `rate`: one of its genes changes, a host to another
/// host, an option to a neighbouring level (half the time) or any other option.
fn mutate(c: &Compiled, genes: &mut [u32], rate: f64, rng: &mut ChaCha8Rng) {
    for i in 0..c.n_req {
        if !rng.random_bool(rate) {
            continue;
        }
        let g = rng.random_range(c.offset[i]..c.offset[i + 1]);
        let n = c.card[g];
        if n < 2 {
            continue;
        }
        let cur = genes[g];
        genes[g] = if !c.is_host_gene(g) && rng.random_bool(0.5) {
            if cur == 0 {
                1
            } else if cur + 1 == n || rng.random_bool(0.5) {
                cur - 1
            } else {
                cur + 1
            }
        } else {
            // any value but the current one
            let v = rng.random_range(0..n - 1);
            if v >= cur { v + 1 } else { v }
        };
    }
}

/// Half the random individuals start from the greedy options with random hosts and a few
/// mutations; the other half are uniform over every gene. Written into `genes`.
fn random_individual(
    c: &Compiled,
    greedy: &[u32],
    slot: usize,
    rng: &mut ChaCha8Rng,
    genes: &mut [u32],
) {
    if slot % 2 == 1 {
        genes.copy_from_slice(greedy);
        for i in 0..c.n_req {
            genes[c.offset[i]] = rng.random_range(0..c.n_hosts as u32);
        }
        mutate(c, genes, 0.3, rng);
    } else {
        for (g, v) in genes.iter_mut().enumerate() {
            *v = rng.random_range(0..c.card[g]);
        }
    }
}

//! Exact solver for small instances: depth-first branch and bound over requests. For each request
//! every combination of its options is listed once with its cost and use, cheapest first; a branch
//! is cut when a host would go over its free capacity (uses are never negative, so it can only get
//! worse) or when its cost plus the cheapest cost of every remaining request cannot beat the best
//! found. Hosts that are interchangeable at a node (same free capacity, same load) are tried once.

use super::tables::{Compiled, Use, excess};
use super::{Feasibility, Problem, RESOURCES, SearchStats, Solution};
use crate::{Error, Result};

/// Search nodes [`exact`] visits before giving up, by default.
pub const DEFAULT_EXACT_NODE_LIMIT: u64 = 50_000_000;

/// Combinations of options listed per request at most.
const MAX_COMBOS: usize = 1 << 16;

struct Combo {
    cost: f64,
    uses: Use,
    options: Vec<u32>,
}

struct Search<'a> {
    c: &'a Compiled,
    order: Vec<usize>,
    combos: Vec<Vec<Combo>>,
    /// lower_bound[k]: least cost of the requests at positions k.. of `order`
    lower_bound: Vec<f64>,
    loads: Vec<Use>,
    chosen: Vec<(usize, usize)>,
    best: Option<(f64, Vec<(usize, usize)>)>,
    nodes: u64,
    limit: u64,
}

/// The optimum of `problem`, or an error when the search would visit more than `node_limit`
/// nodes (the error names the instance's size). With no feasible assignment the answer says so
/// ([`Feasibility::NoneExists`]) and carries the greedy, repaired assignment for reference.
pub fn exact(problem: &Problem, node_limit: u64) -> Result<Solution> {
    problem.validate()?;
    let c = Compiled::new(problem);
    if c.n_req == 0 {
        return Ok(c.solution(&[], SearchStats::default(), || Feasibility::Feasible));
    }
    if c.n_hosts == 0 {
        return Ok(Solution {
            assignments: vec![],
            objective: 0.0,
            waste: 0.0,
            shortfall: 0.0,
            overflow: 0.0,
            feasibility: Feasibility::NoneExists(c.impossible().unwrap_or_default()),
            stats: SearchStats::default(),
        });
    }
    let mut combos = Vec::with_capacity(c.n_req);
    for i in 0..c.n_req {
        combos.push(request_combos(&c, i).ok_or_else(|| {
            Error::Invalid(format!(
                "request {i} has more than {MAX_COMBOS} option combinations for the exact solver"
            ))
        })?);
    }
    // largest requests first: capacity cuts come early
    let size = |i: usize| -> f64 {
        let u = &combos[i][0].uses;
        (0..RESOURCES).map(|r| u[r] * c.inv_scale[r]).sum()
    };
    let mut order: Vec<usize> = (0..c.n_req).collect();
    order.sort_by(|&a, &b| size(b).total_cmp(&size(a)).then(a.cmp(&b)));
    let mut lower_bound = vec![0.0; c.n_req + 1];
    for k in (0..c.n_req).rev() {
        lower_bound[k] = lower_bound[k + 1] + combos[order[k]][0].cost;
    }
    let mut s = Search {
        c: &c,
        order,
        combos,
        lower_bound,
        loads: vec![[0.0; RESOURCES]; c.n_hosts],
        chosen: vec![(0, 0); c.n_req],
        best: None,
        nodes: 0,
        limit: node_limit,
    };
    if !s.dfs(0, 0.0) {
        return Err(Error::Invalid(format!(
            "instance too large for the exact solver: more than {node_limit} search nodes ({} requests, {} hosts)",
            c.n_req, c.n_hosts
        )));
    }
    let stats = SearchStats {
        generations: 0,
        evaluations: s.nodes,
    };
    match s.best {
        Some((_, chosen)) => {
            let mut genes = vec![0u32; c.n_genes()];
            for (i, &(h, k)) in chosen.iter().enumerate() {
                genes[c.offset[i]] = h as u32;
                genes[c.offset[i] + 1..c.offset[i + 1]].copy_from_slice(&s.combos[i][k].options);
            }
            Ok(c.solution(&genes, stats, || Feasibility::NoneFound))
        }
        None => {
            let reason = c.impossible().unwrap_or_else(|| {
                format!(
                    "no assignment of {} requests to {} hosts fits (exhaustive search)",
                    c.n_req, c.n_hosts
                )
            });
            let genes = c.greedy();
            Ok(c.solution(&genes, stats, || Feasibility::NoneExists(reason)))
        }
    }
}

/// Every combination of request `i`'s options, cheapest first; `None` when there are too many.
fn request_combos(c: &Compiled, i: usize) -> Option<Vec<Combo>> {
    let genes: Vec<usize> = (c.offset[i] + 1..c.offset[i + 1]).collect();
    let mut total: usize = 1;
    for &g in &genes {
        total = total.checked_mul(c.card[g] as usize)?;
        if total > MAX_COMBOS {
            return None;
        }
    }
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0u32; genes.len()];
    loop {
        let mut cost = 0.0;
        let mut uses = [0.0; RESOURCES];
        for (j, &g) in genes.iter().enumerate() {
            let o = c.base[g] + idx[j] as usize;
            cost += c.cost[o];
            for (r, u) in uses.iter_mut().enumerate() {
                *u += c.uses[o][r];
            }
        }
        out.push(Combo {
            cost,
            uses,
            options: idx.clone(),
        });
        // odometer
        let mut j = 0;
        loop {
            if j == genes.len() {
                out.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.options.cmp(&b.options)));
                return Some(out);
            }
            idx[j] += 1;
            if idx[j] < c.card[genes[j]] {
                break;
            }
            idx[j] = 0;
            j += 1;
        }
    }
}

impl Search<'_> {
    /// Returns false when the node limit was hit.
    fn dfs(&mut self, k: usize, cost: f64) -> bool {
        self.nodes += 1;
        if self.nodes > self.limit {
            return false;
        }
        if k == self.order.len() {
            if self.best.as_ref().is_none_or(|(b, _)| cost < *b) {
                self.best = Some((cost, self.chosen.clone()));
            }
            return true;
        }
        let i = self.order[k];
        let c = self.c;
        for ci in 0..self.combos[i].len() {
            let combo_cost = self.combos[i][ci].cost;
            let bound = cost + combo_cost + self.lower_bound[k + 1];
            if let Some((b, _)) = &self.best
                && bound >= *b
            {
                break; // combos are sorted by cost: the rest are no better
            }
            let u = self.combos[i][ci].uses;
            for h in 0..c.n_hosts {
                let same_as_earlier =
                    (0..h).any(|h0| c.free[h0] == c.free[h] && self.loads[h0] == self.loads[h]);
                if same_as_earlier {
                    continue;
                }
                let mut l = self.loads[h];
                let mut fits = true;
                for r in 0..RESOURCES {
                    l[r] += u[r];
                    if excess(l[r], c.free[h][r]) > 0.0 {
                        fits = false;
                    }
                }
                if !fits {
                    continue;
                }
                let saved = self.loads[h];
                self.loads[h] = l;
                self.chosen[i] = (h, ci);
                let ok = self.dfs(k + 1, cost + combo_cost);
                self.loads[h] = saved;
                if !ok {
                    return false;
                }
            }
        }
        true
    }
}

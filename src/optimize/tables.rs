//! The compiled problem: flat cost and use tables, the integer encoding, fitness, repair, the
//! greedy individual and the local search. Everything here is deterministic; randomness lives in
//! `ga.rs`.
//!
//! Encoding: one gene block per request, `[host, option of choice 0, option of choice 1, ...]`,
//! concatenated; `offset[i]..offset[i + 1]` is request `i`'s block.

use std::cmp::Ordering;

use super::{Amounts, Assignment, Choice, Feasibility, Problem, RESOURCES, SearchStats, Solution};

pub(crate) type Use = [f64; RESOURCES];

/// Combinations of one request's options the local search enumerates at most.
const MAX_RESPONSE_COMBOS: usize = 4096;

/// The local search tries host swaps between two requests only up to this many requests (the
/// pairs grow quadratically; on larger instances the GA's crossover does that work).
const MAX_SWAP_REQUESTS: usize = 24;

/// Lexicographic: overload first, then cost. Lower is better.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Fitness {
    pub overflow: f64,
    pub cost: f64,
}

impl Fitness {
    pub(crate) fn cmp(&self, other: &Fitness) -> Ordering {
        self.overflow
            .total_cmp(&other.overflow)
            .then(self.cost.total_cmp(&other.cost))
    }

    /// Better than `other` by more than rounding: what resets the GA's stall counter.
    pub(crate) fn improves_on(&self, other: &Fitness) -> bool {
        let tol = 1e-9 * (1.0 + other.cost.abs());
        self.overflow < other.overflow - 1e-12
            || (self.overflow <= other.overflow && self.cost < other.cost - tol)
    }
}

/// How much `load` exceeds `free`, with a relative tolerance for rounding.
#[inline]
pub(crate) fn excess(load: f64, free: f64) -> f64 {
    let d = load - free;
    if d > 1e-9 * free.max(1.0) { d } else { 0.0 }
}

/// Bit `r` set where `u[r]` is not zero.
#[inline]
fn resource_mask(u: &Use) -> u8 {
    (0..RESOURCES).fold(0, |m, r| if u[r] != 0.0 { m | 1 << r } else { m })
}

#[inline]
fn add(a: &mut Use, b: &Use) {
    for r in 0..RESOURCES {
        a[r] += b[r];
    }
}

#[inline]
fn sub(a: &mut Use, b: &Use) {
    for r in 0..RESOURCES {
        a[r] -= b[r];
    }
}

/// Working memory of repair, evaluation and local search, reused between individuals so that
/// building a child allocates nothing. Its contents never outlive one call.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Use per host.
    pub loads: Vec<Use>,
    /// Use per request.
    ru: Vec<Use>,
    /// Per request, while repair works on one host: found to fit on no other host. Moves only
    /// add load to the other hosts, so this stays true until the request's own use changes.
    stuck: Vec<bool>,
}

pub(crate) struct Compiled {
    pub n_req: usize,
    pub n_hosts: usize,
    /// Free capacity per host: capacity minus reservations, at least 0.
    pub free: Vec<Use>,
    /// 1 / (mean host capacity) per resource (1 where that mean is 0).
    pub inv_scale: Use,
    pub offset: Vec<usize>,
    /// Per gene: number of values it can take.
    pub card: Vec<u32>,
    /// Per gene: first entry of its options in the flat tables (host genes: unused).
    pub base: Vec<usize>,
    /// Per gene: its request.
    pub owner: Vec<usize>,
    /// Per gene: bit `r` set when some option uses resource `r` (host genes: 0).
    pub use_mask: Vec<u8>,
    /// Per gene: the option of least cost (host genes: 0).
    pub best_opt: Vec<u32>,
    pub cost: Vec<f64>,
    pub waste: Vec<f64>,
    pub short: Vec<f64>,
    pub uses: Vec<Use>,
    /// Per request: tier weight.
    pub weight: Vec<f64>,
    /// Per request: its combinations of options are `combo_start[i]..combo_start[i + 1]` in the
    /// `combo_*` tables, cheapest first (ties in enumeration order); none when it has more than
    /// [`MAX_RESPONSE_COMBOS`].
    combo_start: Vec<usize>,
    combo_cost: Vec<f64>,
    combo_use: Vec<Use>,
    /// Per request: where its combinations' options start in `combo_opts` (one option per
    /// choice, combination after combination).
    combo_opts_start: Vec<usize>,
    combo_opts: Vec<u32>,
    names: Vec<String>,
    host_names: Vec<String>,
}

impl Compiled {
    /// Compiles a validated problem.
    pub(crate) fn new(p: &Problem) -> Compiled {
        let n_hosts = p.hosts.len();
        let free: Vec<Use> = p
            .hosts
            .iter()
            .map(|h| std::array::from_fn(|r| (h.capacity.0[r] - h.reserved.0[r]).max(0.0)))
            .collect();
        let mut inv_scale = [1.0; RESOURCES];
        for (r, s) in inv_scale.iter_mut().enumerate() {
            let mean = p.hosts.iter().map(|h| h.capacity.0[r]).sum::<f64>() / n_hosts.max(1) as f64;
            if mean > 0.0 {
                *s = 1.0 / mean;
            }
        }
        let mut c = Compiled {
            n_req: p.requests.len(),
            n_hosts,
            free,
            inv_scale,
            offset: vec![0],
            card: vec![],
            base: vec![],
            owner: vec![],
            use_mask: vec![],
            best_opt: vec![],
            cost: vec![],
            waste: vec![],
            short: vec![],
            uses: vec![],
            weight: vec![],
            combo_start: vec![0],
            combo_cost: vec![],
            combo_use: vec![],
            combo_opts_start: vec![],
            combo_opts: vec![],
            names: p.requests.iter().map(|q| q.name.clone()).collect(),
            host_names: p.hosts.iter().map(|h| h.name.clone()).collect(),
        };
        for (i, q) in p.requests.iter().enumerate() {
            let w = p.weights.weight(q.tier);
            c.weight.push(w);
            c.card.push(n_hosts as u32);
            c.base.push(0);
            c.owner.push(i);
            c.use_mask.push(0);
            c.best_opt.push(0);
            for ch in &q.choices {
                let base = c.cost.len();
                match ch {
                    Choice::Level {
                        resource,
                        demand,
                        levels,
                    } => {
                        let d = demand.prepare();
                        let inv = c.inv_scale[resource.index()];
                        for &a in levels {
                            let waste = d.excess(a) * inv;
                            let short = w * d.shortfall(a) * inv;
                            c.waste.push(waste);
                            c.short.push(short);
                            c.cost.push(waste + short);
                            c.uses.push(Amounts::zero().with(*resource, a).0);
                        }
                    }
                    Choice::Option { alternatives, .. } => {
                        for a in alternatives {
                            c.waste.push(a.waste);
                            c.short.push(w * a.risk);
                            c.cost.push(a.waste + w * a.risk);
                            c.uses.push(a.uses.0);
                        }
                    }
                }
                let n = c.cost.len() - base;
                let best = (0..n)
                    .min_by(|&x, &y| c.cost[base + x].total_cmp(&c.cost[base + y]))
                    .unwrap_or(0);
                c.card.push(n as u32);
                c.base.push(base);
                c.owner.push(i);
                c.use_mask
                    .push(c.uses[base..].iter().fold(0u8, |m, u| m | resource_mask(u)));
                c.best_opt.push(best as u32);
            }
            c.offset.push(c.card.len());
        }
        for i in 0..c.n_req {
            c.add_combos(i);
        }
        c
    }

    /// Lists request `i`'s combinations of options in the combination tables, cheapest first.
    fn add_combos(&mut self, i: usize) {
        let genes = self.offset[i] + 1..self.offset[i + 1];
        self.combo_opts_start.push(self.combo_opts.len());
        let total = genes
            .clone()
            .try_fold(1usize, |t, g| t.checked_mul(self.card[g] as usize))
            .filter(|&t| t <= MAX_RESPONSE_COMBOS);
        let Some(total) = total else {
            self.combo_start.push(self.combo_cost.len());
            return;
        };
        let width = genes.len();
        // (cost, use) per combination, its options at `k * width..` in `opts`
        let mut list: Vec<(f64, Use)> = Vec::with_capacity(total);
        let mut opts: Vec<u32> = Vec::with_capacity(total * width);
        let mut idx = vec![0u32; width];
        'all: loop {
            let (mut cost, mut u) = (0.0, [0.0; RESOURCES]);
            for (j, g) in genes.clone().enumerate() {
                let o = self.base[g] + idx[j] as usize;
                cost += self.cost[o];
                add(&mut u, &self.uses[o]);
            }
            list.push((cost, u));
            opts.extend_from_slice(&idx);
            // odometer, first choice fastest
            for (j, g) in genes.clone().enumerate() {
                idx[j] += 1;
                if idx[j] < self.card[g] {
                    continue 'all;
                }
                idx[j] = 0;
            }
            break;
        }
        // stable: equal costs keep enumeration order
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by(|&a, &b| list[a].0.total_cmp(&list[b].0));
        for k in order {
            self.combo_cost.push(list[k].0);
            self.combo_use.push(list[k].1);
            self.combo_opts
                .extend_from_slice(&opts[k * width..(k + 1) * width]);
        }
        self.combo_start.push(self.combo_cost.len());
    }

    pub(crate) fn n_genes(&self) -> usize {
        self.card.len()
    }

    #[inline]
    pub(crate) fn is_host_gene(&self, g: usize) -> bool {
        self.offset[self.owner[g]] == g
    }

    #[inline]
    pub(crate) fn host_of(&self, genes: &[u32], i: usize) -> usize {
        genes[self.offset[i]] as usize
    }

    #[inline]
    fn opt(&self, genes: &[u32], g: usize) -> usize {
        self.base[g] + genes[g] as usize
    }

    /// What request `i` uses under `genes`.
    pub(crate) fn request_use(&self, genes: &[u32], i: usize) -> Use {
        let mut u = [0.0; RESOURCES];
        for g in self.offset[i] + 1..self.offset[i + 1] {
            add(&mut u, &self.uses[self.opt(genes, g)]);
        }
        u
    }

    /// Sum of costs; fills `loads` with the use per host.
    pub(crate) fn cost_and_loads(&self, genes: &[u32], loads: &mut Vec<Use>) -> f64 {
        loads.clear();
        loads.resize(self.n_hosts, [0.0; RESOURCES]);
        let mut cost = 0.0;
        for i in 0..self.n_req {
            let h = self.host_of(genes, i);
            let load = &mut loads[h];
            for g in self.offset[i] + 1..self.offset[i + 1] {
                let o = self.opt(genes, g);
                cost += self.cost[o];
                add(load, &self.uses[o]);
            }
        }
        cost
    }

    /// Normalised use above free capacity on host `h` if it carried `load`.
    #[inline]
    pub(crate) fn host_over(&self, h: usize, load: &Use) -> f64 {
        let mut o = 0.0;
        for ((&l, &f), &inv) in load.iter().zip(&self.free[h]).zip(&self.inv_scale) {
            o += excess(l, f) * inv;
        }
        o
    }

    pub(crate) fn overflow(&self, loads: &[Use]) -> f64 {
        loads
            .iter()
            .enumerate()
            .map(|(h, l)| self.host_over(h, l))
            .sum()
    }

    pub(crate) fn evaluate(&self, genes: &[u32], s: &mut Scratch) -> Fitness {
        let cost = self.cost_and_loads(genes, &mut s.loads);
        Fitness {
            overflow: self.overflow(&s.loads),
            cost,
        }
    }

    /// [`Compiled::evaluate`] right after [`Compiled::repair`], which left the loads in `s`: only
    /// the cost is summed.
    pub(crate) fn evaluate_repaired(&self, genes: &[u32], s: &Scratch) -> Fitness {
        let mut cost = 0.0;
        for (g, &v) in genes.iter().enumerate() {
            if !self.is_host_gene(g) {
                cost += self.cost[self.base[g] + v as usize];
            }
        }
        Fitness {
            overflow: self.overflow(&s.loads),
            cost,
        }
    }

    /// Slack left on `h` with `load`, normalised and summed (negative when over).
    fn slack(&self, h: usize, load: &Use) -> f64 {
        (0..RESOURCES)
            .map(|r| (self.free[h][r] - load[r]) * self.inv_scale[r])
            .sum()
    }

    /// Fills `s` for `genes`: use per request and per host.
    fn fill(&self, genes: &[u32], s: &mut Scratch) {
        s.loads.clear();
        s.loads.resize(self.n_hosts, [0.0; RESOURCES]);
        s.ru.clear();
        for i in 0..self.n_req {
            let u = self.request_use(genes, i);
            add(&mut s.loads[self.host_of(genes, i)], &u);
            s.ru.push(u);
        }
    }

    /// Makes `genes` fit the hosts if these moves can: first move requests off overloaded hosts
    /// to hosts where they fit (best fit), then lower the option whose cost rises least per unit
    /// of overload removed. Deterministic. Leaves `s.loads` matching `genes`.
    pub(crate) fn repair(&self, genes: &mut [u32], s: &mut Scratch) {
        self.fill(genes, s);
        let mut budget = 4 * genes.len() + 16;
        for h in 0..self.n_hosts {
            s.stuck.clear();
            s.stuck.resize(self.n_req, false);
            while budget > 0 && self.host_over(h, &s.loads[h]) > 0.0 {
                budget -= 1;
                if !self.try_move_off(genes, s, h) && !self.try_downgrade(genes, s, h) {
                    break;
                }
            }
        }
    }

    fn try_move_off(&self, genes: &mut [u32], s: &mut Scratch, h: usize) -> bool {
        let over = self.host_over(h, &s.loads[h]);
        // (reduction, -slack after) maximised; first found wins ties
        let mut best: Option<(f64, f64, usize, usize)> = None;
        for i in 0..self.n_req {
            if self.host_of(genes, i) != h {
                continue;
            }
            if s.stuck[i] {
                continue;
            }
            let u = &s.ru[i];
            let mut rest = s.loads[h];
            sub(&mut rest, u);
            let reduction = over - self.host_over(h, &rest);
            if reduction <= 0.0 || best.is_some_and(|(r, ..)| reduction < r) {
                continue;
            }
            let mut fits_somewhere = false;
            for (h2, load2) in s.loads.iter().enumerate() {
                if h2 == h {
                    continue;
                }
                let mut l2 = *load2;
                add(&mut l2, u);
                if self.host_over(h2, &l2) > 0.0 {
                    continue;
                }
                fits_somewhere = true;
                let slack = self.slack(h2, &l2);
                let better = match &best {
                    None => true,
                    Some((r, sl, ..)) => reduction > *r || (reduction == *r && slack < *sl),
                };
                if better {
                    best = Some((reduction, slack, i, h2));
                }
            }
            s.stuck[i] = !fits_somewhere;
        }
        match best {
            Some((_, _, i, h2)) => {
                genes[self.offset[i]] = h2 as u32;
                let u = s.ru[i];
                sub(&mut s.loads[h], &u);
                add(&mut s.loads[h2], &u);
                true
            }
            None => false,
        }
    }

    fn try_downgrade(&self, genes: &mut [u32], s: &mut Scratch, h: usize) -> bool {
        let over = self.host_over(h, &s.loads[h]);
        // only a gene using an overloaded resource can lower the overload
        let over_mask = (0..RESOURCES).fold(0u8, |m, r| {
            if excess(s.loads[h][r], self.free[h][r]) > 0.0 {
                m | 1 << r
            } else {
                m
            }
        });
        let mut best: Option<(f64, usize, u32)> = None;
        for i in 0..self.n_req {
            if self.host_of(genes, i) != h {
                continue;
            }
            for g in self.offset[i] + 1..self.offset[i + 1] {
                if self.use_mask[g] & over_mask == 0 {
                    continue;
                }
                let cur = self.opt(genes, g);
                let mut base = s.loads[h];
                sub(&mut base, &self.uses[cur]);
                for k in 0..self.card[g] {
                    let o = self.base[g] + k as usize;
                    if o == cur {
                        continue;
                    }
                    let mut l = base;
                    add(&mut l, &self.uses[o]);
                    let reduction = over - self.host_over(h, &l);
                    if reduction <= 1e-15 {
                        continue;
                    }
                    let ratio = (self.cost[o] - self.cost[cur]) / reduction;
                    if best.is_none_or(|(b, ..)| ratio < b) {
                        best = Some((ratio, g, k));
                    }
                }
            }
        }
        match best {
            Some((_, g, k)) => {
                let cur = self.opt(genes, g);
                genes[g] = k;
                let new = self.opt(genes, g);
                let i = self.owner[g];
                sub(&mut s.loads[h], &self.uses[cur]);
                add(&mut s.loads[h], &self.uses[new]);
                sub(&mut s.ru[i], &self.uses[cur]);
                add(&mut s.ru[i], &self.uses[new]);
                s.stuck[i] = false;
                true
            }
            None => false,
        }
    }

    /// Cost of request `i`'s options under `genes`.
    fn request_cost(&self, genes: &[u32], i: usize) -> f64 {
        (self.offset[i] + 1..self.offset[i + 1])
            .map(|g| self.cost[self.opt(genes, g)])
            .sum()
    }

    /// The cheapest combination of request `i`'s options that fits on host `h` already carrying
    /// `load` (an index into the combination tables): the first that fits in cost order. `None`
    /// when nothing fits or the request has more than [`MAX_RESPONSE_COMBOS`] combinations.
    fn best_combo(&self, i: usize, h: usize, load: &Use) -> Option<usize> {
        (self.combo_start[i]..self.combo_start[i + 1]).find(|&k| {
            let mut l = *load;
            add(&mut l, &self.combo_use[k]);
            self.host_over(h, &l) == 0.0
        })
    }

    /// Options of combination `k` of request `i`.
    fn combo_options(&self, i: usize, k: usize) -> &[u32] {
        let width = self.offset[i + 1] - self.offset[i] - 1;
        let at = self.combo_opts_start[i] + (k - self.combo_start[i]) * width;
        &self.combo_opts[at..at + width]
    }

    /// Gives request `i` host `h` and combination `k`, keeping `s` in step.
    fn set_request(&self, genes: &mut [u32], s: &mut Scratch, i: usize, h: usize, k: usize) {
        genes[self.offset[i]] = h as u32;
        genes[self.offset[i] + 1..self.offset[i + 1]].copy_from_slice(self.combo_options(i, k));
        s.ru[i] = self.combo_use[k];
    }

    /// Local search on a feasible individual, deterministic, until no move helps: (a) each
    /// request in turn gets its best options on its best host given everyone else; (b) when (a)
    /// finds nothing and there are at most [`MAX_SWAP_REQUESTS`] requests, two requests on
    /// different hosts swap hosts, each with its best options there. A move is kept when every
    /// host stays within capacity and the cost falls. Requests already at their cheapest
    /// combination are skipped in (a): nothing can improve them. Does nothing to an infeasible
    /// individual.
    pub(crate) fn polish(&self, genes: &mut [u32], s: &mut Scratch) {
        self.fill(genes, s);
        if self.overflow(&s.loads) > 0.0 {
            return;
        }
        let tol = |c: f64| 1e-12 * (1.0 + c.abs());
        for _pass in 0..50 {
            let mut improved = false;
            for i in 0..self.n_req {
                let (start, end) = (self.combo_start[i], self.combo_start[i + 1]);
                let cur = self.request_cost(genes, i);
                if start == end || cur <= self.combo_cost[start] + tol(cur) {
                    continue;
                }
                let h = self.host_of(genes, i);
                let u = s.ru[i];
                sub(&mut s.loads[h], &u);
                let mut best: Option<(f64, usize, usize)> = None;
                for (h2, load2) in s.loads.iter().enumerate() {
                    if let Some(k) = self.best_combo(i, h2, load2)
                        && best.is_none_or(|b| self.combo_cost[k] < b.0)
                    {
                        best = Some((self.combo_cost[k], h2, k));
                    }
                }
                match best {
                    Some((c, h2, k)) if c < cur - tol(cur) => {
                        self.set_request(genes, s, i, h2, k);
                        add(&mut s.loads[h2], &self.combo_use[k]);
                        improved = true;
                    }
                    _ => add(&mut s.loads[h], &u),
                }
            }
            if !improved && self.n_req <= MAX_SWAP_REQUESTS {
                improved = self.swap_once(genes, s, &tol);
            }
            if !improved {
                break;
            }
        }
        self.fill(genes, s);
    }

    /// The first pair of requests on different hosts whose host swap (each with its best
    /// options there) lowers the cost; applies it.
    fn swap_once(&self, genes: &mut [u32], s: &mut Scratch, tol: &dyn Fn(f64) -> f64) -> bool {
        for i in 0..self.n_req {
            for j in i + 1..self.n_req {
                let (hi, hj) = (self.host_of(genes, i), self.host_of(genes, j));
                if hi == hj {
                    continue;
                }
                let cur = self.request_cost(genes, i) + self.request_cost(genes, j);
                let mut li = s.loads[hi];
                sub(&mut li, &s.ru[i]);
                let mut lj = s.loads[hj];
                sub(&mut lj, &s.ru[j]);
                let (Some(ki), Some(kj)) =
                    (self.best_combo(i, hj, &lj), self.best_combo(j, hi, &li))
                else {
                    continue;
                };
                if self.combo_cost[ki] + self.combo_cost[kj] < cur - tol(cur) {
                    self.set_request(genes, s, i, hj, ki);
                    self.set_request(genes, s, j, hi, kj);
                    add(&mut lj, &self.combo_use[ki]);
                    add(&mut li, &self.combo_use[kj]);
                    s.loads[hi] = li;
                    s.loads[hj] = lj;
                    return true;
                }
            }
        }
        false
    }

    /// Cheapest options for every request, placed in order of tier weight (then size) on the
    /// host where they fit most tightly, then repaired (and polished, on small instances: on
    /// large ones the final polish does it).
    pub(crate) fn greedy(&self) -> Vec<u32> {
        let mut genes: Vec<u32> = self.best_opt.clone();
        let size: Vec<f64> = (0..self.n_req)
            .map(|i| {
                let u = self.request_use(&genes, i);
                (0..RESOURCES).map(|r| u[r] * self.inv_scale[r]).sum()
            })
            .collect();
        let mut order: Vec<usize> = (0..self.n_req).collect();
        order.sort_by(|&a, &b| {
            self.weight[b]
                .total_cmp(&self.weight[a])
                .then(size[b].total_cmp(&size[a]))
                .then(a.cmp(&b))
        });
        let mut loads = vec![[0.0; RESOURCES]; self.n_hosts];
        for i in order {
            let u = self.request_use(&genes, i);
            let mut best: Option<(bool, f64, usize)> = None;
            for (h, load) in loads.iter().enumerate() {
                let mut l = *load;
                add(&mut l, &u);
                let fits = self.host_over(h, &l) == 0.0;
                let slack = self.slack(h, &l);
                // fitting hosts first, tightest among them; else the roomiest
                let key_better = |b: &(bool, f64, usize)| match (fits, b.0) {
                    (true, false) => true,
                    (false, true) => false,
                    (true, true) => slack < b.1,
                    (false, false) => slack > b.1,
                };
                if best.as_ref().is_none_or(key_better) {
                    best = Some((fits, slack, h));
                }
            }
            let h = best.map(|b| b.2).unwrap_or(0);
            genes[self.offset[i]] = h as u32;
            add(&mut loads[h], &u);
        }
        let mut scratch = Scratch::default();
        self.repair(&mut genes, &mut scratch);
        if self.n_req <= MAX_SWAP_REQUESTS {
            self.polish(&mut genes, &mut scratch);
        }
        genes
    }

    /// A reason why no assignment can fit, when one of two simple bounds proves it: some request
    /// does not fit on any host even with its smallest options, or the requests' smallest total
    /// use of a resource exceeds the hosts' total free capacity.
    pub(crate) fn impossible(&self) -> Option<String> {
        if self.n_req > 0 && self.n_hosts == 0 {
            return Some(format!("no hosts for {} requests", self.n_req));
        }
        let mut total_min = [0.0; RESOURCES];
        for i in 0..self.n_req {
            let mut min_use = [0.0; RESOURCES];
            for g in self.offset[i] + 1..self.offset[i + 1] {
                for (r, m) in min_use.iter_mut().enumerate() {
                    *m += (0..self.card[g] as usize)
                        .map(|k| self.uses[self.base[g] + k][r])
                        .fold(f64::INFINITY, f64::min);
                }
            }
            add(&mut total_min, &min_use);
            let fits_somewhere = (0..self.n_hosts).any(|h| self.host_over(h, &min_use) == 0.0);
            if !fits_somewhere {
                let (h, r) = (0..self.n_hosts)
                    .flat_map(|h| (0..RESOURCES).map(move |r| (h, r)))
                    .find(|&(h, r)| excess(min_use[r], self.free[h][r]) > 0.0)
                    .unwrap_or((0, 0));
                return Some(format!(
                    "request '{}' fits on no host even at its smallest options (needs {} {}, host '{}' has {} free)",
                    self.names[i],
                    min_use[r],
                    super::Resource::ALL[r].as_str(),
                    self.host_names.get(h).map(String::as_str).unwrap_or(""),
                    self.free.get(h).map(|f| f[r]).unwrap_or(0.0)
                ));
            }
        }
        for r in 0..RESOURCES {
            let free: f64 = self.free.iter().map(|f| f[r]).sum();
            if excess(total_min[r], free) > 0.0 {
                return Some(format!(
                    "the requests need at least {} {} in total, the hosts have {} free",
                    total_min[r],
                    super::Resource::ALL[r].as_str(),
                    free
                ));
            }
        }
        None
    }

    /// The answer for `genes`; `proof` is used when it does not fit.
    pub(crate) fn solution(
        &self,
        genes: &[u32],
        stats: SearchStats,
        infeasible: impl FnOnce() -> Feasibility,
    ) -> Solution {
        let mut loads = Vec::new();
        self.cost_and_loads(genes, &mut loads);
        let overflow = self.overflow(&loads);
        let mut waste = 0.0;
        let mut short = 0.0;
        let mut assignments = Vec::with_capacity(self.n_req);
        for i in 0..self.n_req {
            let mut options = Vec::new();
            for g in self.offset[i] + 1..self.offset[i + 1] {
                let o = self.opt(genes, g);
                waste += self.waste[o];
                short += self.short[o];
                options.push(genes[g] as usize);
            }
            assignments.push(Assignment {
                host: self.host_of(genes, i),
                options,
            });
        }
        Solution {
            assignments,
            objective: waste + short,
            waste,
            shortfall: short,
            overflow,
            feasibility: if overflow == 0.0 {
                Feasibility::Feasible
            } else {
                infeasible()
            },
            stats,
        }
    }
}

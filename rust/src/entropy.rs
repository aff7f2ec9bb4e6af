//! Entropies of fingerprint sets.
//!
//! - [`Covariance`]: the dataset state (N, mean, scatter) of docs/method.md §3, its entropy
//!   H = log det Σ with Σ = scatter/N + εI (population covariance plus ε on the diagonal), the exact gain
//!   ΔH of adding a block of samples, streaming acceptance and budgeted greedy selection (exact or lazy).
//! - [`knn_distances`]: exact k-th nearest-neighbour distances of a point set (kd-tree on principal axes),
//!   the input of the Kozachenko–Leonenko entropy.
//! - [`local_entropy`]: S_loc of one configuration (docs/method.md §2) and its derivative w.r.t. the fingerprints.
//!
//! Samples are rows of `d` numbers; a block (one candidate structure) is `m` consecutive rows.
//! The gain is computed without forming Σ': with C = scatter/N = Q diag(λ) Qᵀ, a = N/(N+m),
//! M = aC + εI and the block centred on the old mean (Y), Σ' = M + Yᵀ G Y with
//! G = I/N' − 11ᵀ/N'² (N' = N + m), so ΔH = Σ_k ln((aλ_k+ε)/(λ_k+ε)) + log det(I + W Wᵀ),
//! W = G^½ Y M^-½ (m×d). One eigendecomposition per state serves every candidate; each candidate then
//! costs m·d² + min(m, d)³/3 flops.

use crate::linalg::{cholesky_logdet, eigh};
use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Running sums of a sample set in `d` dimensions (Chan et al.'s pairwise update: no cancellation).
#[derive(Clone, Debug)]
pub struct Covariance {
    pub d: usize,
    pub eps: f64,
    /// Number of samples.
    pub n: f64,
    /// (d,) mean of the samples (zeros when empty).
    pub mean: Vec<f64>,
    /// (d, d) scatter Σ (x − mean)(x − mean)ᵀ.
    pub scatter: Vec<f64>,
}

/// Rows `offsets[c]..offsets[c+1]` of `x` form candidate c.
pub struct Blocks<'a> {
    pub x: &'a [f64],
    pub offsets: &'a [usize],
    pub d: usize,
}

impl<'a> Blocks<'a> {
    pub fn new(x: &'a [f64], offsets: &'a [usize], d: usize) -> Result<Self, String> {
        if d == 0 {
            return Err("fingerprint dimension must be positive".into());
        }
        if x.len() % d != 0 {
            return Err(format!("{} numbers do not make rows of {d}", x.len()));
        }
        if offsets.first() != Some(&0) || *offsets.last().unwrap() != x.len() / d {
            return Err(format!("block offsets must run from 0 to the number of rows ({})", x.len() / d));
        }
        if let Some(c) = offsets.windows(2).position(|w| w[1] <= w[0]) {
            return Err(format!("candidate {c} has no rows"));
        }
        if let Some(r) = x.iter().position(|v| !v.is_finite()) {
            return Err(format!("row {} holds a non-finite value ({})", r / d, x[r]));
        }
        Ok(Blocks { x, offsets, d })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn rows(&self, c: usize) -> &'a [f64] {
        &self.x[self.offsets[c] * self.d..self.offsets[c + 1] * self.d]
    }
}

/// The eigendecomposition of the current covariance, shared by every gain evaluation of one state.
pub struct Basis {
    lambda: Vec<f64>,
    q: Vec<f64>,
}

impl Covariance {
    pub fn new(d: usize, eps: f64) -> Result<Self, String> {
        if d == 0 {
            return Err("fingerprint dimension must be positive".into());
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(format!("eps must be positive (it keeps Σ invertible); got {eps}"));
        }
        let dd = d.checked_mul(d).ok_or(format!("fingerprint dimension {d} is too large"))?;
        Ok(Covariance { d, eps, n: 0.0, mean: vec![0.0; d], scatter: vec![0.0; dd] })
    }

    /// Rebuild a saved state, checking shapes and values.
    pub fn from_parts(d: usize, eps: f64, n: f64, mean: Vec<f64>, scatter: Vec<f64>) -> Result<Self, String> {
        let mut c = Covariance::new(d, eps)?;
        if mean.len() != d || scatter.len() != d * d {
            return Err(format!("state of dimension {d} needs {d} means and {} scatter entries", d * d));
        }
        if !(n.is_finite() && n >= 0.0) || mean.iter().chain(&scatter).any(|v| !v.is_finite()) {
            return Err("state holds a negative count or non-finite sums".into());
        }
        c.n = n;
        c.mean = mean;
        c.scatter = scatter;
        c.try_logdet().ok_or("the saved covariance Σ + εI is not positive definite (a damaged or edited state)")?;
        Ok(c)
    }

    /// Σ = scatter/N + εI (row-major d×d); εI when empty.
    pub fn matrix(&self) -> Vec<f64> {
        let d = self.d;
        let inv = if self.n > 0.0 { 1.0 / self.n } else { 0.0 };
        let mut s: Vec<f64> = self.scatter.iter().map(|v| v * inv).collect();
        for k in 0..d {
            s[k * d + k] += self.eps;
        }
        s
    }

    /// H = log det Σ (nats).
    pub fn logdet(&self) -> f64 {
        self.try_logdet().expect("Σ + εI is positive definite")
    }

    /// H = log det Σ (nats), or None when rounding has left Σ not positive definite.
    pub fn try_logdet(&self) -> Option<f64> {
        cholesky_logdet(&mut self.matrix(), self.d)
    }

    /// Add the rows of `x` (m×d) to the state.
    pub fn add(&mut self, x: &[f64]) {
        let d = self.d;
        let m = (x.len() / d) as f64;
        if m == 0.0 {
            return;
        }
        let mut mu = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for (a, v) in mu.iter_mut().zip(row) {
                *a += v;
            }
        }
        mu.iter_mut().for_each(|a| *a /= m);
        let n1 = self.n + m;
        let delta: Vec<f64> = mu.iter().zip(&self.mean).map(|(a, b)| a - b).collect();
        let w = self.n * m / n1;
        let mut y = vec![0.0; d];
        for row in x.chunks_exact(d) {
            for k in 0..d {
                y[k] = row[k] - mu[k];
            }
            rank1(&mut self.scatter, &y, 1.0);
        }
        rank1(&mut self.scatter, &delta, w);
        for k in 0..d {
            self.mean[k] += delta[k] * m / n1;
        }
        self.n = n1;
    }

    /// Eigendecomposition of the population covariance (zero when empty).
    pub fn basis(&self) -> Basis {
        let inv = if self.n > 0.0 { 1.0 / self.n } else { 0.0 };
        let c: Vec<f64> = self.scatter.iter().map(|v| v * inv).collect();
        let (lambda, q) = eigh(&c, self.d, true);
        Basis { lambda: lambda.into_iter().map(|l| l.max(0.0)).collect(), q }
    }

    /// Exact ΔH = H(state ∪ rows) − H(state) for the m×d block `x`, given this state's basis.
    pub fn gain(&self, basis: &Basis, x: &[f64]) -> f64 {
        self.shared(basis, x.len() / self.d) + self.specific(basis, x)
    }

    /// The part of ΔH common to every block of m rows: Σ_k ln((aλ_k+ε)/(λ_k+ε)), a = N/(N+m) (≤ 0).
    pub fn shared(&self, basis: &Basis, m: usize) -> f64 {
        let shrink = m as f64 / (self.n + m as f64); // 1 − a
        basis.lambda.iter().map(|&l| (-shrink * l / (l + self.eps)).ln_1p()).sum()
    }

    /// The block's own part of ΔH: log det(I + W Wᵀ), W = G^½ Y M^-½ (≥ 0).
    pub fn specific(&self, basis: &Basis, x: &[f64]) -> f64 {
        let d = self.d;
        let m = x.len() / d;
        let n1 = self.n + m as f64;
        let a = self.n / n1;
        let scale: Vec<f64> = basis.lambda.iter().map(|&l| 1.0 / (a * l + self.eps).sqrt()).collect();
        // Z = Y M^-½ in the eigenbasis, then W = G^½ Z = (Z − c·1·colsum(Z)) / √N'
        let mut z = vec![0.0; m * d];
        let mut y = vec![0.0; d];
        let mut colsum = vec![0.0; d];
        for (row, zr) in x.chunks_exact(d).zip(z.chunks_exact_mut(d)) {
            for j in 0..d {
                y[j] = row[j] - self.mean[j];
            }
            for k in 0..d {
                let q = &basis.q[k * d..(k + 1) * d];
                zr[k] = dotn(q, &y) * scale[k];
                colsum[k] += zr[k];
            }
        }
        let c = 1.0 / (n1 * (1.0 + a.sqrt()));
        let s = 1.0 / n1.sqrt();
        for zr in z.chunks_exact_mut(d) {
            for k in 0..d {
                zr[k] = (zr[k] - c * colsum[k]) * s;
            }
        }
        logdet_identity_plus_gram(&z, m, d)
    }

    /// Gains of every candidate against this state (parallel over candidates).
    pub fn gains(&self, blocks: &Blocks) -> Vec<f64> {
        let basis = self.basis();
        (0..blocks.len()).into_par_iter().map(|c| self.gain(&basis, blocks.rows(c))).collect()
    }

    /// Streaming acceptance in order: a candidate joins the state at once when ΔH > h_min (and while
    /// the state holds fewer than two samples, whose covariance carries no spread). Returns (gains, accepted).
    pub fn stream(&mut self, blocks: &Blocks, h_min: f64, budget: usize) -> (Vec<f64>, Vec<bool>) {
        let mut basis = self.basis();
        let mut gains = Vec::with_capacity(blocks.len());
        let mut accepted = vec![false; blocks.len()];
        let mut taken = 0;
        for c in 0..blocks.len() {
            let g = self.gain(&basis, blocks.rows(c));
            gains.push(g);
            if taken < budget && (self.n < 2.0 || g > h_min) {
                self.add(blocks.rows(c));
                basis = self.basis();
                accepted[c] = true;
                taken += 1;
            }
        }
        (gains, accepted)
    }

    /// Budgeted greedy selection: repeatedly add the candidate of largest ΔH until `budget` are taken
    /// or the best gain is ≤ h_min. `lazy` keeps the block-specific parts of earlier gains in priority
    /// queues and re-evaluates only the top (exact whenever those parts never grow as the state grows,
    /// which holds in practice; compared with exact greedy in tests and benches). With an empty state and single-row candidates every gain is 0: the seed is
    /// the candidate farthest from the candidates' mean. Returns the picks in order with their gains.
    pub fn greedy(&mut self, blocks: &Blocks, budget: usize, h_min: f64, lazy: bool) -> Vec<(usize, f64)> {
        let mut picks = Vec::new();
        let mut taken = vec![false; blocks.len()];
        if blocks.is_empty() || budget == 0 {
            return picks;
        }
        if self.n == 0.0 && blocks.offsets.windows(2).all(|w| w[1] - w[0] == 1) {
            let seed = farthest_from_mean(blocks);
            self.add(blocks.rows(seed));
            taken[seed] = true;
            picks.push((seed, 0.0));
        }
        if lazy {
            self.lazy_greedy(blocks, budget, h_min, &mut taken, &mut picks);
        } else {
            while picks.len() < budget {
                let basis = self.basis();
                let best = (0..blocks.len())
                    .into_par_iter()
                    .filter(|&c| !taken[c])
                    .map(|c| Scored(self.gain(&basis, blocks.rows(c)), c, 0))
                    .max();
                match best {
                    Some(Scored(g, c, _)) if g > h_min => {
                        self.add(blocks.rows(c));
                        taken[c] = true;
                        picks.push((c, g));
                    }
                    _ => break,
                }
            }
        }
        picks
    }

    /// Lazy greedy with one priority queue per block size m. ΔH = shared(m) + specific; the shared part is
    /// recomputed every round. Queued keys bound the specific part from above, so the picks equal exact
    /// greedy's: for m > 1 the specific part itself (it shrinks as N grows, in practice); for m = 1 (with
    /// N > 0) a provable bound on the Mahalanobis term q of ln(1 + N/(N+1)² · q): adding a sample u makes
    /// M' ⪰ (N+1)/(N+2)·M and moves the mean by u/(N+1), so √q' ≤ α(√q + √q_u/(N+1)), α = √((N+2)/(N+1));
    /// these affine maps compose, and a key k = (√q − b_r)/a_r stays comparable across rounds.
    fn lazy_greedy(
        &mut self,
        blocks: &Blocks,
        budget: usize,
        h_min: f64,
        taken: &mut [bool],
        picks: &mut Vec<(usize, f64)>,
    ) {
        let mut basis = self.basis();
        let size = |c: usize| blocks.offsets[c + 1] - blocks.offsets[c];
        // single-row candidates only (every pick then updates the bound): the affine Mahalanobis bound
        let mahalanobis = self.n > 0.0 && blocks.offsets.windows(2).all(|w| w[1] - w[0] == 1);
        let (mut a, mut b) = (1.0f64, 0.0f64); // √q bound at this round = a·key + b
        let key = |me: &Self, s: f64, m: usize, a: f64, b: f64| {
            if m == 1 && mahalanobis {
                ((s.exp_m1() * (me.n + 1.0).powi(2) / me.n).sqrt() - b) / a
            } else {
                s
            }
        };
        let fresh: Vec<(usize, Scored)> = (0..blocks.len())
            .into_par_iter()
            .filter(|&c| !taken[c])
            .map(|c| (size(c), Scored(key(self, self.specific(&basis, blocks.rows(c)), size(c), a, b), c, 0)))
            .collect();
        let mut queues: Vec<(usize, BinaryHeap<Scored>)> = Vec::new();
        for (m, s) in fresh {
            match queues.iter_mut().find(|q| q.0 == m) {
                Some(q) => q.1.push(s),
                None => queues.push((m, BinaryHeap::from(vec![s]))),
            }
        }
        let mut round = 0usize;
        let mut shared: Vec<f64> = queues.iter().map(|(m, _)| self.shared(&basis, *m)).collect();
        while picks.len() < budget {
            let bound = |me: &Self, k: f64, m: usize| {
                if m == 1 && mahalanobis {
                    let root = (a * k + b).max(0.0);
                    (me.n / (me.n + 1.0).powi(2) * root * root).ln_1p()
                } else {
                    k
                }
            };
            let best = queues
                .iter()
                .enumerate()
                .filter_map(|(k, (m, q))| q.peek().map(|s| (k, shared[k] + bound(self, s.0, *m))))
                .max_by(|x, y| x.1.total_cmp(&y.1));
            let Some((k, g)) = best else { break };
            let m = queues[k].0;
            let Scored(_, c, stamp) = queues[k].1.pop().unwrap();
            if stamp != round {
                let fresh = key(self, self.specific(&basis, blocks.rows(c)), m, a, b);
                queues[k].1.push(Scored(fresh, c, round));
                continue;
            }
            if g <= h_min {
                break;
            }
            if m == 1 && mahalanobis {
                // the bound's update for this pick: q_u is the pick's own Mahalanobis term
                let n = self.n;
                let q_u = (g - shared[k]).exp_m1() * (n + 1.0).powi(2) / n;
                let alpha = ((n + 2.0) / (n + 1.0)).sqrt();
                (a, b) = (alpha * a, alpha * (b + q_u.max(0.0).sqrt() / (n + 1.0)));
            }
            self.add(blocks.rows(c));
            taken[c] = true;
            picks.push((c, g));
            round += 1;
            basis = self.basis();
            shared = queues.iter().map(|(m, _)| self.shared(&basis, *m)).collect();
        }
    }

    /// Entropy after adding the block `x` (m×d) and its derivative w.r.t. every row:
    /// ∂H'/∂x_j = (2/N') Σ'⁻¹ (x_j − μ'). Returns (H', (m×d) derivative).
    pub fn logdet_with(&self, x: &[f64]) -> (f64, Vec<f64>) {
        let d = self.d;
        let mut next = self.clone();
        next.add(x);
        let mut l = next.matrix();
        let h = cholesky_logdet(&mut l, d).expect("Σ + εI is positive definite");
        let two_over_n = 2.0 / next.n;
        let mut out = vec![0.0; x.len()];
        for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            for k in 0..d {
                o[k] = row[k] - next.mean[k];
            }
            cholesky_solve(&l, d, o);
            o.iter_mut().for_each(|v| *v *= two_over_n);
        }
        (h, out)
    }
}

/// A gain with its candidate and the round it was computed in; ordered by gain, then lower index.
#[derive(PartialEq)]
struct Scored(f64, usize, usize);

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then_with(|| other.1.cmp(&self.1))
    }
}

fn farthest_from_mean(blocks: &Blocks) -> usize {
    let d = blocks.d;
    let rows = blocks.x.len() / d;
    let mut mean = vec![0.0; d];
    for row in blocks.x.chunks_exact(d) {
        for (a, v) in mean.iter_mut().zip(row) {
            *a += v / rows as f64;
        }
    }
    (0..blocks.len())
        .map(|c| {
            let r = blocks.rows(c);
            Scored(r.iter().zip(&mean).map(|(a, b)| (a - b) * (a - b)).sum(), c, 0)
        })
        .max()
        .map(|s| s.1)
        .unwrap_or(0)
}

#[inline]
fn dotn(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// a += w · y yᵀ (row-major d×d).
fn rank1(a: &mut [f64], y: &[f64], w: f64) {
    let d = y.len();
    for r in 0..d {
        let wy = w * y[r];
        for (acc, v) in a[r * d..(r + 1) * d].iter_mut().zip(y) {
            *acc += wy * v;
        }
    }
}

/// log det(I + W Wᵀ) = log det(I + Wᵀ W) for W (m×d), via the smaller Gram matrix.
fn logdet_identity_plus_gram(w: &[f64], m: usize, d: usize) -> f64 {
    let k = m.min(d);
    let mut g = vec![0.0; k * k];
    if m <= d {
        for a in 0..m {
            for b in 0..=a {
                let v = dotn(&w[a * d..(a + 1) * d], &w[b * d..(b + 1) * d]);
                g[a * k + b] = v;
                g[b * k + a] = v;
            }
        }
    } else {
        for row in w.chunks_exact(d) {
            rank1(&mut g, row, 1.0);
        }
    }
    for a in 0..k {
        g[a * k + a] += 1.0;
    }
    cholesky_logdet(&mut g, k).expect("I + WWᵀ is positive definite")
}

/// Solve (L Lᵀ) x = b in place, L the lower triangle of `l` (row-major d×d) from `cholesky_logdet`.
fn cholesky_solve(l: &[f64], d: usize, b: &mut [f64]) {
    for i in 0..d {
        let s = b[i] - dotn(&l[i * d..i * d + i], &b[..i]);
        b[i] = s / l[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for k in i + 1..d {
            s -= l[k * d + i] * b[k];
        }
        b[i] = s / l[i * d + i];
    }
}

/// Local entropy of one configuration, S = (1/n) Σ_i ln(n·δ_i), δ_i = max(min_{j≠i} ‖fp_i − fp_j‖, floor),
/// and ∂S/∂fp (n×len). The nearest neighbour j*(i) is held fixed (piecewise smooth); a clamped δ_i
/// contributes no derivative. Needs n ≥ 2.
pub fn local_entropy(fp: &[f64], n: usize, len: usize, floor: f64) -> Result<(f64, Vec<f64>), String> {
    if n < 2 || fp.len() != n * len {
        return Err(format!("local entropy needs at least 2 atoms of {len} numbers each; got {} numbers", fp.len()));
    }
    let nearest: Vec<(usize, f64)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a = &fp[i * len..(i + 1) * len];
            let mut best = (usize::MAX, f64::INFINITY);
            for j in (0..n).filter(|&j| j != i) {
                let d2: f64 = a.iter().zip(&fp[j * len..(j + 1) * len]).map(|(x, y)| (x - y) * (x - y)).sum();
                if d2 < best.1 {
                    best = (j, d2);
                }
            }
            (best.0, best.1.sqrt())
        })
        .collect();
    let nf = n as f64;
    let mut s = 0.0;
    let mut grad = vec![0.0; n * len];
    for (i, &(j, delta)) in nearest.iter().enumerate() {
        s += (nf * delta.max(floor)).ln() / nf;
        if delta <= floor {
            continue;
        }
        let w = 1.0 / (nf * delta * delta);
        for k in 0..len {
            let g = w * (fp[i * len + k] - fp[j * len + k]);
            grad[i * len + k] += g;
            grad[j * len + k] -= g;
        }
    }
    Ok((s, grad))
}

/// Exact distances from every point of `x` (n×d) to its k-th nearest other point.
///
/// The points are rotated onto their principal axes (distances unchanged) and put in a kd-tree split at
/// the median of the widest axis; the search prunes with the incremental box distance of Arya & Mount.
/// Parallel over query points.
pub fn knn_distances(x: &[f64], n: usize, d: usize, k: usize) -> Result<Vec<f64>, String> {
    if d == 0 || x.len() != n * d {
        return Err(format!("expected {n} points of dimension {d}; got {} numbers", x.len()));
    }
    if k == 0 || k >= n {
        return Err(format!("k must be between 1 and n - 1 = {}; got {k}", n.saturating_sub(1)));
    }
    if let Some(r) = x.iter().position(|v| !v.is_finite()) {
        return Err(format!("point {} holds a non-finite value ({})", r / d, x[r]));
    }
    let tree = KdTree::build(&principal_axes(x, n, d), n, d);
    let mut out = vec![0.0; n];
    let found: Vec<(usize, f64)> = (0..n)
        .into_par_iter()
        .with_min_len(256)
        .map_init(
            || (vec![0.0; d], Vec::with_capacity(k + 1)),
            |(off, best), p| (tree.index[p], tree.kth(p, k, off, best)),
        )
        .collect();
    for (i, r) in found {
        out[i] = r;
    }
    Ok(out)
}

/// Centre the points and express them in the eigenbasis of their covariance.
fn principal_axes(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mean: Vec<f64> = (0..d).map(|k| x.iter().skip(k).step_by(d).sum::<f64>() / n as f64).collect();
    let scatter = x
        .par_chunks(d * 4096)
        .map(|chunk| {
            let mut s = vec![0.0; d * d];
            let mut y = vec![0.0; d];
            for row in chunk.chunks_exact(d) {
                for k in 0..d {
                    y[k] = row[k] - mean[k];
                }
                rank1(&mut s, &y, 1.0);
            }
            s
        })
        .reduce(|| vec![0.0; d * d], |a, b| a.iter().zip(&b).map(|(u, v)| u + v).collect());
    let (_, q) = eigh(&scatter, d, true);
    let mut out = vec![0.0; n * d];
    out.par_chunks_mut(d).zip(x.par_chunks(d)).for_each(|(o, row)| {
        let y: Vec<f64> = row.iter().zip(&mean).map(|(a, b)| a - b).collect();
        for k in 0..d {
            // largest variance first
            o[k] = dotn(&q[(d - 1 - k) * d..(d - k) * d], &y);
        }
    });
    out
}

const LEAF: usize = 12;

enum Node {
    Leaf { lo: usize, hi: usize },
    Split { dim: usize, at: f64, left: usize, right: usize },
}

/// kd-tree whose points are stored in tree order (`pts`, row-major), `index[p]` = original index.
struct KdTree {
    d: usize,
    pts: Vec<f64>,
    index: Vec<usize>,
    nodes: Vec<Node>,
}

impl KdTree {
    fn build(x: &[f64], n: usize, d: usize) -> Self {
        let mut index: Vec<usize> = (0..n).collect();
        let mut nodes = Vec::new();
        Self::split(x, d, &mut index, 0, &mut nodes);
        let mut pts = vec![0.0; n * d];
        pts.par_chunks_mut(d).zip(index.par_iter()).for_each(|(o, &i)| o.copy_from_slice(&x[i * d..(i + 1) * d]));
        KdTree { d, pts, index, nodes }
    }

    /// Build the subtree over `idx` (positions `lo..` of the index array); returns its node id.
    fn split(x: &[f64], d: usize, idx: &mut [usize], lo: usize, nodes: &mut Vec<Node>) -> usize {
        let id = nodes.len();
        nodes.push(Node::Leaf { lo, hi: lo + idx.len() });
        if idx.len() <= LEAF {
            return id;
        }
        let (mut dim, mut spread) = (0, 0.0);
        for k in 0..d {
            let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
            for &i in idx.iter() {
                a = a.min(x[i * d + k]);
                b = b.max(x[i * d + k]);
            }
            if b - a > spread {
                (dim, spread) = (k, b - a);
            }
        }
        if spread == 0.0 {
            return id; // all points equal: one leaf
        }
        let mid = idx.len() / 2;
        idx.select_nth_unstable_by(mid, |&a, &b| x[a * d + dim].total_cmp(&x[b * d + dim]));
        let at = x[idx[mid] * d + dim];
        let (l, r) = idx.split_at_mut(mid);
        let left = Self::split(x, d, l, lo, nodes);
        let right = Self::split(x, d, r, lo + mid, nodes);
        nodes[id] = Node::Split { dim, at, left, right };
        id
    }

    /// Distance from stored point p to its k-th nearest other point.
    fn kth(&self, p: usize, k: usize, off: &mut [f64], best: &mut Vec<f64>) -> f64 {
        off.iter_mut().for_each(|v| *v = 0.0);
        best.clear();
        best.resize(k, f64::INFINITY); // squared distances, ascending
        let q = &self.pts[p * self.d..(p + 1) * self.d];
        self.search(0, p, q, off, 0.0, best);
        best[k - 1].sqrt()
    }

    fn search(&self, node: usize, p: usize, q: &[f64], off: &mut [f64], rd: f64, best: &mut [f64]) {
        match self.nodes[node] {
            Node::Leaf { lo, hi } => {
                let d = self.d;
                for o in lo..hi {
                    let worst = best[best.len() - 1];
                    if worst == 0.0 {
                        return;
                    }
                    if o == p {
                        continue;
                    }
                    let r = &self.pts[o * d..(o + 1) * d];
                    let mut s = 0.0;
                    let mut k = 0;
                    while k < d {
                        let end = (k + 8).min(d);
                        for t in k..end {
                            let u = q[t] - r[t];
                            s += u * u;
                        }
                        if s >= worst {
                            break;
                        }
                        k = end;
                    }
                    if s < worst {
                        let mut at = best.len() - 1;
                        while at > 0 && best[at - 1] > s {
                            best[at] = best[at - 1];
                            at -= 1;
                        }
                        best[at] = s;
                    }
                }
            }
            Node::Split { dim, at, left, right } => {
                let diff = q[dim] - at;
                let (near, far) = if diff < 0.0 { (left, right) } else { (right, left) };
                self.search(near, p, q, off, rd, best);
                let old = off[dim];
                let far_rd = rd - old * old + diff * diff;
                if far_rd < best[best.len() - 1] {
                    off[dim] = diff;
                    self.search(far, p, q, off, far_rd, best);
                    off[dim] = old;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64) / ((1u64 << 53) as f64) - 0.5
    }

    #[test]
    fn gain_equals_recomputed_logdet() {
        let d = 5;
        let mut seed = 7;
        let data: Vec<f64> = (0..40 * d).map(|_| lcg(&mut seed)).collect();
        let mut state = Covariance::new(d, 1e-3).unwrap();
        state.add(&data[..30 * d]);
        let block = &data[30 * d..];
        let predicted = state.gain(&state.basis(), block);
        let before = state.logdet();
        let mut after = state.clone();
        after.add(block);
        assert!((after.logdet() - before - predicted).abs() < 1e-10 * predicted.abs().max(1.0));
    }

    /// `n` blocks of 1..=max_rows rows each (max_rows 1: single rows), random in [-0.5, 0.5)^d.
    fn random_blocks(n: usize, d: usize, max_rows: usize, seed: &mut u64) -> (Vec<f64>, Vec<usize>) {
        let mut offsets = vec![0];
        for _ in 0..n {
            let m = 1 + ((lcg(seed) + 0.5) * max_rows as f64) as usize % max_rows;
            offsets.push(offsets.last().unwrap() + m);
        }
        let x = (0..offsets[n] * d).map(|_| lcg(seed)).collect();
        (x, offsets)
    }

    #[test]
    fn lazy_greedy_picks_equal_exact_greedy() {
        let d = 4;
        for (max_rows, seeded, h_min) in
            [(1, false, f64::NEG_INFINITY), (1, true, f64::NEG_INFINITY), (3, true, f64::NEG_INFINITY), (1, true, 0.0)]
        {
            let case = format!("max_rows {max_rows}, seeded {seeded}, h_min {h_min}");
            let mut seed = 11 + max_rows as u64;
            let (x, offsets) = random_blocks(60, d, max_rows, &mut seed);
            let blocks = Blocks::new(&x, &offsets, d).unwrap();
            let mut start = Covariance::new(d, 1e-3).unwrap();
            if seeded {
                let data: Vec<f64> = (0..10 * d).map(|_| lcg(&mut seed)).collect();
                start.add(&data);
            }
            let (mut exact, mut lazy) = (start.clone(), start.clone());
            let a = exact.greedy(&blocks, 15, h_min, false);
            let b = lazy.greedy(&blocks, 15, h_min, true);
            assert!(if h_min.is_finite() { a.len() >= 2 } else { a.len() == 15 }, "{case}: {} picks", a.len());
            assert_eq!(a.iter().map(|p| p.0).collect::<Vec<_>>(), b.iter().map(|p| p.0).collect::<Vec<_>>(), "{case}");
            for ((_, ga), (_, gb)) in a.iter().zip(&b) {
                assert!((ga - gb).abs() < 1e-9 * ga.abs().max(1.0), "{case}: gains {ga} vs {gb}");
            }
            assert!((exact.logdet() - lazy.logdet()).abs() < 1e-9, "{case}");
            // each pick is the best remaining candidate: its gain is the largest recomputed one, above h_min
            let mut replay = start.clone();
            for (k, &(c, g)) in a.iter().enumerate() {
                if k == 0 && !seeded {
                    replay.add(blocks.rows(c)); // the seed of an empty state (every gain is 0)
                    continue;
                }
                let before = replay.logdet();
                let taken: Vec<usize> = a[..k].iter().map(|p| p.0).collect();
                let best = (0..blocks.len()).filter(|c| !taken.contains(c)).map(|c| {
                    let mut next = replay.clone();
                    next.add(blocks.rows(c));
                    next.logdet() - before
                });
                let best = best.fold(f64::NEG_INFINITY, f64::max);
                assert!((g - best).abs() < 1e-8 * best.abs().max(1.0), "{case}, pick {k}: gain {g}, best {best}");
                assert!(g > h_min, "{case}");
                replay.add(blocks.rows(c));
            }
        }
    }

    #[test]
    fn stream_accepts_by_recomputed_gains() {
        let d = 4;
        let mut seed = 5;
        let (x, offsets) = random_blocks(80, d, 2, &mut seed);
        let blocks = Blocks::new(&x, &offsets, d).unwrap();
        let (h_min, budget) = (0.02, 12);
        let mut state = Covariance::new(d, 1e-3).unwrap();
        let (gains, accepted) = state.stream(&blocks, h_min, budget);
        let mut replay = Covariance::new(d, 1e-3).unwrap();
        let mut taken = 0;
        for c in 0..blocks.len() {
            let mut next = replay.clone();
            next.add(blocks.rows(c));
            let recomputed = next.logdet() - replay.logdet();
            assert!((gains[c] - recomputed).abs() < 1e-8 * recomputed.abs().max(1.0), "candidate {c}");
            let accept = taken < budget && (replay.n < 2.0 || recomputed > h_min);
            assert_eq!(accepted[c], accept, "candidate {c}: gain {recomputed}");
            if accept {
                replay = next;
                taken += 1;
            }
        }
        assert!(taken == budget && accepted.iter().filter(|&&a| !a).count() > 0);
        assert!((state.logdet() - replay.logdet()).abs() < 1e-9 && state.n == replay.n);
    }

    #[test]
    fn knn_matches_brute_force() {
        let (n, d, k) = (500, 6, 3);
        let mut seed = 3;
        let x: Vec<f64> = (0..n * d).map(|_| lcg(&mut seed)).collect();
        let got = knn_distances(&x, n, d, k).unwrap();
        for i in 0..n {
            let mut ds: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (0..d).map(|t| (x[i * d + t] - x[j * d + t]).powi(2)).sum::<f64>().sqrt())
                .collect();
            ds.sort_by(f64::total_cmp);
            assert!((ds[k - 1] - got[i]).abs() < 1e-12);
        }
    }
}

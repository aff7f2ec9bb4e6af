//! Overlap-matrix fingerprints (OMFP; Zhu et al., J. Chem. Phys. 144, 034203 (2016)) as libfp 4.0.1
//! computes its "long" per-atom fingerprint, with exact analytic gradients.
//!
//! For centre atom i the sphere is every atom image within the cutoff, the centre included. Each sphere
//! atom carries a normalised Gaussian s orbital (and, for `sp`, three p orbitals) of width equal to its
//! covalent radius and an amplitude a = (1 − d²/r_c²)² (d: distance to the centre). The fingerprint is
//! the eigenvalues of A = diag(a) O diag(a), sorted descending and zero-padded to `natx` (`4·natx` for sp).
//! Gradients follow Hellmann–Feynman, ∂λ/∂r = vᵀ (∂A/∂r) v; images are summed onto their atom.

use crate::linalg::{dotv, Eigen};
use crate::neighbors::{neighbor_list, Frame, Pairs, Want};
use rayon::prelude::*;

/// Cutoff-function exponent of libfp (`NC`).
const NC: i32 = 2;

/// Covalent radii in Å by atomic number (libfp's table; index 0 unused). libfp returns 1.0 for Tb
/// through a typo (`z == 56` twice); the intended 1.68 is used here. Z > 112: 1.0, as in libfp.
const RCOV: [f64; 113] = [
    0.0, 0.37, 0.32, 1.34, 0.90, 0.82, 0.77, 0.75, 0.73, 0.71, 0.69, 1.54, 1.30, 1.18, 1.11, 1.06, 1.02,
    0.99, 0.97, 1.96, 1.74, 1.44, 1.36, 1.25, 1.27, 1.39, 1.25, 1.26, 1.21, 1.38, 1.31, 1.26, 1.22,
    1.19, 1.16, 1.14, 1.10, 2.11, 1.92, 1.62, 1.48, 1.37, 1.45, 1.56, 1.26, 1.35, 1.31, 1.53, 1.48,
    1.44, 1.41, 1.38, 1.35, 1.33, 1.30, 2.25, 1.98, 1.80, 1.63, 1.76, 1.74, 1.73, 1.72, 1.68, 1.69,
    1.68, 1.67, 1.66, 1.65, 1.64, 1.70, 1.60, 1.50, 1.38, 1.46, 1.59, 1.28, 1.37, 1.28, 1.44, 1.49,
    1.48, 1.47, 1.46, 1.45, 1.47, 1.42, 2.23, 2.01, 1.86, 1.75, 1.69, 1.70, 1.71, 1.72, 1.66, 1.66,
    1.68, 1.68, 1.65, 1.67, 1.73, 1.76, 1.61, 1.57, 1.49, 1.43, 1.41, 1.34, 1.29, 1.28, 1.21, 1.22,
];

/// Covalent radius (Å) of element `z`.
pub fn covalent_radius(z: i64) -> Result<f64, String> {
    match z {
        1..=112 => Ok(RCOV[z as usize]),
        113..=118 => Ok(1.0),
        _ => Err(format!("atomic number {z} has no covalent radius; use real elements (1..118)")),
    }
}

/// Orbitals per atom: `s` (1) or `sp` (4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orbital {
    S,
    Sp,
}

impl Orbital {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "s" => Ok(Orbital::S),
            "sp" => Ok(Orbital::Sp),
            _ => Err(format!("orbital must be \"s\" or \"sp\"; got {s:?}")),
        }
    }
    pub fn width(self) -> usize {
        match self {
            Orbital::S => 1,
            Orbital::Sp => 4,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Sphere radius r_c in Å.
    pub cutoff: f64,
    /// Largest sphere (atoms, centre included); 0 = the largest sphere of the batch.
    pub natx: usize,
    pub orbital: Orbital,
    pub gradients: bool,
    pub stress: bool,
}

/// Fingerprints of one structure. `len` = natx·orbital width.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// (n_atoms, len) eigenvalues, descending, zero-padded.
    pub fp: Vec<f64>,
    /// Sparse gradient entries (centre i, atom j): ∂fp_i/∂r_j, sorted by i then j.
    pub pairs: Vec<[i64; 2]>,
    /// (n_entries, 3, len) in 1/Å.
    pub grad: Vec<f64>,
    /// (n_atoms, 6, len) strain derivative ½ Σ_s [∂fp_i/∂r_{s,α} (r_s − r_i)_β + (α ↔ β)], Voigt xx yy zz yz xz
    /// xy, in ASE's convention (by the symmetric strain tensor: σ_αβ = (1/V) ∂E/∂ε_αβ).
    pub strain: Vec<f64>,
    /// Sphere size (atoms incl. the centre) of each atom.
    pub sphere: Vec<i64>,
}

/// One centre's sphere: relative positions (centre first, at the origin), atom indices, radii.
struct Sphere {
    x: Vec<[f64; 3]>,
    atom: Vec<usize>,
    rcov: Vec<f64>,
}

fn sphere_of(i: usize, pairs: &Pairs, start: usize, end: usize, rcov: &[f64]) -> Sphere {
    let n = end - start + 1;
    let mut s = Sphere { x: Vec::with_capacity(n), atom: Vec::with_capacity(n), rcov: Vec::with_capacity(n) };
    s.x.push([0.0; 3]);
    s.atom.push(i);
    s.rcov.push(rcov[i]);
    for p in start..end {
        let j = pairs.j[p] as usize;
        s.x.push(pairs.vector_of(p));
        s.atom.push(j);
        s.rcov.push(rcov[j]);
    }
    s
}

/// Upper triangle (column ≥ row) of diag(w) O diag(w) into `out` (row-major, row stride `stride`), O the
/// sphere's nid×nid overlap matrix in libfp's normalisation and w a weight per atom (the amplitudes, or
/// ones for O itself). Entries below the diagonal are left as they are, except inside the 4×4 diagonal
/// blocks of `sp`.
fn weighted_overlap(s: &Sphere, orbital: Orbital, weight: &[f64], out: &mut [f64], stride: usize) {
    let n = s.x.len();
    for j in 0..n {
        let (rj, xj, wj) = (s.rcov[j], s.x[j], weight[j]);
        if orbital == Orbital::S {
            // one branch-free pass over the row (it vectorises)
            let row = &mut out[j * stride + j..j * stride + n];
            for (o, ((xk, &rk), &wk)) in row.iter_mut().zip(s.x[j..].iter().zip(&s.rcov[j..]).zip(&weight[j..])) {
                let x = [xk[0] - xj[0], xk[1] - xj[1], xk[2] - xj[2]];
                *o = wj * wk * gaussian_overlap(x[0] * x[0] + x[1] * x[1] + x[2] * x[2], rj, rk).1;
            }
            continue;
        }
        for k in j..n {
            let rk = s.rcov[k];
            let x = [s.x[k][0] - xj[0], s.x[k][1] - xj[1], s.x[k][2] - xj[2]];
            let (r, sjk) = gaussian_overlap(x[0] * x[0] + x[1] * x[1] + x[2] * x[2], rj, rk);
            let wjk = wj * weight[k];
            let b = sp_block(x, r, rj, rk, sjk);
            for (a, row) in b.iter().enumerate() {
                let dst = &mut out[(4 * j + a) * stride + 4 * k..][..4];
                for (d, v) in dst.iter_mut().zip(row) {
                    *d = wjk * v;
                }
            }
        }
    }
}

/// Overlap of two normalised s Gaussians of widths rj, rk at squared distance d2 (libfp's `creat_om`),
/// and the exponent's coefficient r = 1 / (2 (rj² + rk²)): (r, (4 r rj rk)^{3/2} e^{−r d2}).
#[inline(always)]
fn gaussian_overlap(d2: f64, rj: f64, rk: f64) -> (f64, f64) {
    let r = 0.5 / (rj * rj + rk * rk);
    let norm = 4.0 * r * rj * rk;
    (r, norm * norm.sqrt() * (-d2 * r).exp())
}

/// Copy the upper triangle of a row-major n×n matrix onto its lower triangle.
fn mirror_upper(m: &mut [f64], n: usize) {
    for r in 1..n {
        for c in 0..r {
            m[r * n + c] = m[c * n + r];
        }
    }
}

/// 4×4 s/p overlap block between row atom j and column atom k, x = r_k − r_j (libfp's `creat_om`).
#[inline]
fn sp_block(x: [f64; 3], r: f64, rj: f64, rk: f64, sjk: f64) -> [[f64; 4]; 4] {
    let mut b = [[0.0; 4]; 4];
    b[0][0] = sjk;
    let c1 = 8f64.sqrt() * rk * r * sjk;
    let c2 = -(8f64.sqrt()) * rj * r * sjk;
    let c3 = -8.0 * rj * rk * r * r * sjk;
    for a in 0..3 {
        b[0][a + 1] = c1 * x[a];
        b[a + 1][0] = c2 * x[a];
        for c in 0..3 {
            let delta = if a == c { 0.5 / r } else { 0.0 };
            b[a + 1][c + 1] = c3 * (x[a] * x[c] - delta);
        }
    }
    b
}

/// ∂B/∂x_c of `sp_block` (x = r_k − r_j, so ∂/∂r_k = +, ∂/∂r_j = −), for c = 0..3.
#[inline]
fn sp_block_grad(x: [f64; 3], r: f64, rj: f64, rk: f64, sjk: f64) -> [[[f64; 4]; 4]; 3] {
    let mut g = [[[0.0; 4]; 4]; 3];
    let c1 = 8f64.sqrt() * rk * r * sjk;
    let c2 = -(8f64.sqrt()) * rj * r * sjk;
    let c3 = -8.0 * rj * rk * r * r * sjk;
    let dl = |a: usize, b: usize| if a == b { 1.0 } else { 0.0 };
    for c in 0..3 {
        g[c][0][0] = -2.0 * r * x[c] * sjk;
        for a in 0..3 {
            g[c][0][a + 1] = c1 * (dl(a, c) - 2.0 * r * x[a] * x[c]);
            g[c][a + 1][0] = c2 * (dl(a, c) - 2.0 * r * x[a] * x[c]);
            for b in 0..3 {
                g[c][a + 1][b + 1] = c3
                    * (dl(a, c) * x[b] + x[a] * dl(b, c) - 2.0 * r * x[c] * (x[a] * x[b] - dl(a, b) * 0.5 / r));
            }
        }
    }
    g
}

/// Per-thread buffers of `sphere_fp`, reused from sphere to sphere.
#[derive(Default)]
struct Scratch {
    /// Eigensolvers, holding A = diag(a) O diag(a) (two: values-only spheres are solved in pairs).
    eigen: Eigen,
    eigen2: Eigen,
    /// O, full (gradients only).
    o: Vec<f64>,
}

/// Amplitudes a = (1 − d²/r_c²)^NC of the sphere atoms (d: distance to the centre) and
/// (∂a/∂(d²))·2, so that ∂a/∂x = damp·x.
fn amplitudes(s: &Sphere, cutoff: f64) -> (Vec<f64>, Vec<f64>) {
    let fc = 1.0 / (cutoff * cutoff);
    s.x.iter()
        .map(|x| {
            let d2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2];
            let t = (1.0 - d2 * fc).powi(NC - 1);
            (t * (1.0 - d2 * fc), -2.0 * fc * NC as f64 * t)
        })
        .unzip()
}

/// Fill `eigen`'s matrix with the sphere's A = diag(a) O diag(a).
fn fill_matrix(s: &Sphere, orbital: Orbital, amp: &[f64], eigen: &mut Eigen) {
    let (a, stride) = eigen.matrix(orbital.width() * s.x.len());
    weighted_overlap(s, orbital, amp, a, stride);
}

/// Copy eigenvalues (ascending) into a fingerprint row, descending.
fn write_descending(values: &[f64], fp: &mut [f64]) {
    for (f, v) in fp.iter_mut().zip(values.iter().rev()) {
        *f = *v;
    }
}

/// Fingerprints of one or two spheres (values only) into consecutive rows of `fp`, `len` each; two
/// are solved together so that their eigenvalue iterations interleave.
fn sphere_values(spheres: &[Sphere], cutoff: f64, orbital: Orbital, ws: &mut Scratch, fp: &mut [f64], len: usize) {
    for (s, eigen) in spheres.iter().zip([&mut ws.eigen, &mut ws.eigen2]) {
        fill_matrix(s, orbital, &amplitudes(s, cutoff).0, eigen);
    }
    if spheres.len() == 2 {
        Eigen::solve_values_pair(&mut ws.eigen, &mut ws.eigen2);
    } else {
        ws.eigen.solve(false);
    }
    for (row, eigen) in fp.chunks_mut(len).zip([&ws.eigen, &ws.eigen2]) {
        write_descending(eigen.values(), row);
    }
}

/// Fingerprint of one sphere (eigenvalues, descending) into fp[..nid], and ∂λ/∂x_s for every sphere
/// atom s as grad[q][s] = [3] (q in descending order; length nid).
fn sphere_fp(s: &Sphere, cutoff: f64, orbital: Orbital, ws: &mut Scratch, fp: &mut [f64]) -> Vec<Vec<[f64; 3]>> {
    let n = s.x.len();
    let w = orbital.width();
    let nid = w * n;
    let (amp, damp) = amplitudes(s, cutoff);
    fill_matrix(s, orbital, &amp, &mut ws.eigen);
    ws.eigen.solve(true);
    write_descending(ws.eigen.values(), fp);
    ws.o.clear();
    ws.o.resize(nid * nid, 0.0);
    weighted_overlap(s, orbital, &vec![1.0; n], &mut ws.o, nid);
    mirror_upper(&mut ws.o, nid);
    let (o, vecs) = (&ws.o, ws.eigen.vectors());
    let mut grads = vec![vec![[0.0; 3]; n]; nid];
    let mut u = vec![0.0; nid];
    let mut ou = vec![0.0; nid];
    // s-only precomputation: G = −4 r O and G∘x_c
    let (mut gm, mut gx) = (vec![], vec![vec![]; 3]);
    if orbital == Orbital::S {
        gm = vec![0.0; n * n];
        for j in 0..n {
            for k in 0..n {
                let (rj, rk) = (s.rcov[j], s.rcov[k]);
                gm[j * n + k] = -2.0 / (rj * rj + rk * rk) * o[j * n + k];
            }
        }
        for (c, gxc) in gx.iter_mut().enumerate() {
            *gxc = (0..n * n).map(|jk| gm[jk] * s.x[jk % n][c]).collect();
        }
    }
    for (q, m) in (0..nid).rev().enumerate() {
        let v = &vecs[m * nid..(m + 1) * nid];
        for (idx, ui) in u.iter_mut().enumerate() {
            *ui = amp[idx / w] * v[idx];
        }
        for (idx, oui) in ou.iter_mut().enumerate() {
            *oui = dotv(&o[idx * nid..(idx + 1) * nid], &u);
        }
        let g = &mut grads[q];
        for p in 1..n {
            // amplitude term: 2 (∂a_p/∂x_p) Σ_orbitals v (O u)
            let vou: f64 = (0..w).map(|a| v[w * p + a] * ou[w * p + a]).sum();
            let coef = 2.0 * damp[p] * vou;
            let mut gp = [coef * s.x[p][0], coef * s.x[p][1], coef * s.x[p][2]];
            if orbital == Orbital::S {
                let row = p * n..(p + 1) * n;
                let s0 = dotv(&gm[row.clone()], &u);
                for c in 0..3 {
                    gp[c] += u[p] * (s.x[p][c] * s0 - dotv(&gx[c][row.clone()], &u));
                }
            } else {
                for k in 0..n {
                    if k == p {
                        continue;
                    }
                    let (rp, rk) = (s.rcov[p], s.rcov[k]);
                    let x = [s.x[k][0] - s.x[p][0], s.x[k][1] - s.x[p][1], s.x[k][2] - s.x[p][2]];
                    let (r, spk) = gaussian_overlap(x[0] * x[0] + x[1] * x[1] + x[2] * x[2], rp, rk);
                    let db = sp_block_grad(x, r, rp, rk, spk);
                    for c in 0..3 {
                        let mut acc = 0.0;
                        for a in 0..4 {
                            for b in 0..4 {
                                acc += u[4 * p + a] * db[c][a][b] * u[4 * k + b];
                            }
                        }
                        gp[c] -= 2.0 * acc;
                    }
                }
            }
            g[p] = gp;
        }
        // translation invariance: the centre moves opposite to the sum of the others
        let mut gc = [0.0; 3];
        for gp in &g[1..] {
            for c in 0..3 {
                gc[c] -= gp[c];
            }
        }
        g[0] = gc;
    }
    grads
}

/// Gradient entries of one centre: its atoms, (atoms, 3, len) ∂fp/∂r and (6, len) strain derivative.
type CentreGrad = (Vec<[i64; 2]>, Vec<f64>, Vec<f64>);

/// Fingerprints of one structure, given its neighbour pairs (sorted by i, with vectors).
fn structure_fp(
    frame: &Frame,
    pairs: &Pairs,
    rcov: &[f64],
    set: &Settings,
    natx: usize,
    parallel: bool,
) -> Output {
    let n = frame.positions.len();
    let len = natx * set.orbital.width();
    let mut starts = vec![0usize; n + 1];
    for &i in &pairs.i {
        starts[i as usize + 1] += 1;
    }
    for k in 0..n {
        starts[k + 1] += starts[k];
    }
    let sphere = |i: usize| sphere_of(i, pairs, starts[i], starts[i + 1], rcov);
    let mut out = Output {
        fp: vec![0.0; n * len],
        sphere: (0..n).map(|i| (starts[i + 1] - starts[i] + 1) as i64).collect(),
        ..Default::default()
    };
    let len = len.max(1);
    if !set.gradients {
        // rows of centres 2k and 2k+1, written in place
        let two = |ws: &mut Scratch, (k, rows): (usize, &mut [f64])| {
            let spheres: Vec<Sphere> = (2 * k..2 * k + rows.len() / len).map(sphere).collect();
            sphere_values(&spheres, set.cutoff, set.orbital, ws, rows, len);
        };
        if parallel {
            out.fp.par_chunks_mut(2 * len).enumerate().for_each_init(Scratch::default, two);
        } else {
            let mut ws = Scratch::default();
            out.fp.chunks_mut(2 * len).enumerate().for_each(|rows| two(&mut ws, rows));
        }
        return out;
    }
    // row of centre i (written in place) and its gradient entries
    let one = |ws: &mut Scratch, (i, fp): (usize, &mut [f64])| -> CentreGrad {
        let sphere = sphere(i);
        let grads = sphere_fp(&sphere, set.cutoff, set.orbital, ws, fp);
        centre_gradient(i, &sphere, &grads, len, set.stress)
    };
    let results: Vec<CentreGrad> = if parallel {
        out.fp.par_chunks_mut(len).enumerate().map_init(Scratch::default, one).collect()
    } else {
        let mut ws = Scratch::default();
        out.fp.chunks_mut(len).enumerate().map(|row| one(&mut ws, row)).collect()
    };
    for (entries, grad, strain) in results {
        out.pairs.extend_from_slice(&entries);
        out.grad.extend_from_slice(&grad);
        out.strain.extend_from_slice(&strain);
    }
    out
}

/// Sphere gradients summed onto their atoms (images of one atom add up), and the strain derivative.
fn centre_gradient(i: usize, sphere: &Sphere, grads: &[Vec<[f64; 3]>], len: usize, stress: bool) -> CentreGrad {
    let mut atoms = sphere.atom.clone();
    atoms.sort_unstable();
    atoms.dedup();
    let mut grad = vec![0.0; atoms.len() * 3 * len];
    let mut strain = vec![0.0; if stress { 6 * len } else { 0 }];
    const VOIGT: [(usize, usize); 6] = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)];
    for (s, &atom) in sphere.atom.iter().enumerate() {
        let slot = atoms.binary_search(&atom).unwrap();
        let x = sphere.x[s];
        for (q, gq) in grads.iter().enumerate() {
            let g = gq[s];
            for c in 0..3 {
                grad[(slot * 3 + c) * len + q] += g[c];
            }
            if stress {
                for (v, &(a, b)) in VOIGT.iter().enumerate() {
                    // ASE's convention: the derivative by the symmetric strain ε_ab = ε_ba (half the
                    // derivative by a move of both), so σ = (1/V)·∂E/∂ε with no factor for shears
                    let e = if a == b { g[a] * x[a] } else { 0.5 * (g[a] * x[b] + g[b] * x[a]) };
                    strain[v * len + q] += e;
                }
            }
        }
    }
    let entries = atoms.iter().map(|&j| [i as i64, j as i64]).collect();
    (entries, grad, strain)
}

/// Fingerprints of a batch on `threads` threads (the current rayon pool's when more than 1; 1 makes no
/// rayon calls). `numbers` gives Z per atom (same layout as the frames' positions). Returns the outputs
/// and the natx used (settings.natx, or the largest sphere when it is 0).
pub fn fingerprints(
    frames: &[Frame],
    numbers: &[&[i64]],
    set: &Settings,
    threads: usize,
) -> Result<(Vec<Output>, usize), String> {
    if !(set.cutoff.is_finite() && set.cutoff > 0.0) {
        return Err(format!("cutoff must be a positive distance in Å; got {}", set.cutoff));
    }
    if set.stress && !set.gradients {
        return Err("stress (strain derivatives) needs gradients=True".into());
    }
    // rayon over structures when there are enough of them, over atoms otherwise
    let by_structure = frames.len() >= 2 * threads;
    let (over_structures, over_atoms) = (threads > 1 && by_structure, threads > 1 && !by_structure);
    let want = Want { shift: false, distance: false, vector: true };
    let prepare = |k: usize| {
        let rcov = numbers[k].iter().map(|&z| covalent_radius(z)).collect::<Result<Vec<_>, _>>();
        let rcov = rcov.map_err(|e| format!("structure {k}: {e}"))?;
        let pairs = neighbor_list(&frames[k], set.cutoff, want, over_atoms).map_err(|e| format!("structure {k}: {e}"))?;
        Ok((pairs, rcov))
    };
    let prepared: Vec<(Pairs, Vec<f64>)> = if over_structures {
        (0..frames.len()).into_par_iter().map(prepare).collect::<Result<_, String>>()?
    } else {
        (0..frames.len()).map(prepare).collect::<Result<_, String>>()?
    };
    // largest sphere (atoms incl. the centre) and where it is
    let mut largest = (0usize, 0usize, 0usize);
    for (k, (pairs, _)) in prepared.iter().enumerate() {
        let mut count = vec![1usize; frames[k].positions.len()];
        for &i in &pairs.i {
            count[i as usize] += 1;
        }
        if let Some((i, &c)) = count.iter().enumerate().max_by_key(|(_, &c)| c) {
            if c > largest.0 {
                largest = (c, k, i);
            }
        }
    }
    let natx = if set.natx == 0 { largest.0.max(1) } else { set.natx };
    if largest.0 > natx {
        return Err(format!(
            "atom {} of structure {} has {} atoms within {} Å (centre included), more than natx = {}; \
             raise natx to at least {} or pass natx=None to size it to the largest sphere",
            largest.2, largest.1, largest.0, set.cutoff, natx, largest.0
        ));
    }
    let run = |(k, (pairs, rcov)): (usize, &(Pairs, Vec<f64>))| {
        structure_fp(&frames[k], pairs, rcov, set, natx, over_atoms)
    };
    let outputs = if over_structures {
        prepared.par_iter().enumerate().map(run).collect()
    } else {
        prepared.iter().enumerate().map(run).collect()
    };
    Ok((outputs, natx))
}

/// Chain rule through the fingerprints: given c = ∂F/∂fp (n_atoms×len) for a scalar F of one structure's
/// fingerprints, return ∂F/∂r (n_atoms×3, eV-free: units of F per Å) and the strain derivative ∂F/∂ε
/// (Voigt xx yy zz yz xz xy) from the sparse gradients (`pairs` local (centre, atom), `grad` (E,3,len))
/// and `strain` ((n_atoms, 6, len); empty to skip).
pub fn chain(
    coef: &[f64],
    len: usize,
    pairs: &[[i64; 2]],
    grad: &[f64],
    strain: &[f64],
) -> Result<(Vec<[f64; 3]>, [f64; 6]), String> {
    let n = coef.len() / len.max(1);
    if len == 0 || coef.len() != n * len || grad.len() != pairs.len() * 3 * len {
        return Err(format!(
            "chain rule: {} coefficients, {} gradient entries and {} numbers do not fit rows of {len}",
            coef.len(),
            pairs.len(),
            grad.len()
        ));
    }
    if !strain.is_empty() && strain.len() != n * 6 * len {
        return Err(format!("chain rule: strain derivative must hold {n}×6×{len} numbers"));
    }
    let mut out = vec![[0.0; 3]; n];
    for (e, &[c, a]) in pairs.iter().enumerate() {
        let (c, a) = (c as usize, a as usize);
        if c >= n || a >= n {
            return Err(format!("chain rule: gradient entry {e} refers to atom {} of {n}", c.max(a)));
        }
        let w = &coef[c * len..(c + 1) * len];
        for x in 0..3 {
            let g = &grad[(e * 3 + x) * len..(e * 3 + x + 1) * len];
            out[a][x] += g.iter().zip(w).map(|(p, q)| p * q).sum::<f64>();
        }
    }
    let mut virial = [0.0; 6];
    if !strain.is_empty() {
        for c in 0..n {
            let w = &coef[c * len..(c + 1) * len];
            for (v, acc) in virial.iter_mut().enumerate() {
                let g = &strain[(c * 6 + v) * len..(c * 6 + v + 1) * len];
                *acc += g.iter().zip(w).map(|(p, q)| p * q).sum::<f64>();
            }
        }
    }
    Ok((out, virial))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Sphere {
        Sphere {
            x: vec![[0.0; 3], [1.1, 0.3, -0.4], [-0.7, 1.5, 0.9], [0.2, -1.8, 1.2]],
            atom: vec![0, 1, 2, 3],
            rcov: vec![1.11, 0.77, 1.54, 0.99],
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for orbital in [Orbital::S, Orbital::Sp] {
            let s = cluster();
            let fp_of = |s: &Sphere| {
                let mut fp = vec![0.0; s.x.len() * orbital.width()];
                let g = sphere_fp(s, 4.0, orbital, &mut Scratch::default(), &mut fp);
                (fp, g)
            };
            let (fp, g) = fp_of(&s);
            let h = 1e-6;
            for p in 0..s.x.len() {
                for c in 0..3 {
                    let (mut plus, mut minus) = (cluster(), cluster());
                    plus.x[p][c] += h;
                    minus.x[p][c] -= h;
                    // keep the centre at the origin: shift everything (translation invariance)
                    if p == 0 {
                        for sph in [&mut plus, &mut minus] {
                            let o = sph.x[0];
                            for x in sph.x.iter_mut() {
                                for d in 0..3 {
                                    x[d] -= o[d];
                                }
                            }
                        }
                    }
                    let (fpp, _) = fp_of(&plus);
                    let (fpm, _) = fp_of(&minus);
                    for q in 0..fp.len() {
                        let fd = (fpp[q] - fpm[q]) / (2.0 * h);
                        assert!((fd - g[q][p][c]).abs() < 1e-6, "{orbital:?} q={q} p={p} c={c}: {fd} vs {}", g[q][p][c]);
                    }
                }
            }
        }
    }
}

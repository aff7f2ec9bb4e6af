//! Small dense linear algebra: 3-vectors, 3×3 matrices, a symmetric eigensolver and Cholesky.
//!
//! The eigensolver is Householder tridiagonalisation followed by the implicit QL algorithm
//! (EISPACK tred2/tql2 as in the public-domain JAMA package). Matrices are row-major `n×n` slices.

pub type Vec3 = [f64; 3];
pub type Mat3 = [[f64; 3]; 3];

#[inline]
pub fn dot(a: &Vec3, b: &Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
pub fn cross(a: &Vec3, b: &Vec3) -> Vec3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

#[inline]
pub fn norm(a: &Vec3) -> f64 {
    dot(a, a).sqrt()
}

pub fn det3(m: &Mat3) -> f64 {
    dot(&m[0], &cross(&m[1], &m[2]))
}

/// Inverse of a non-singular 3×3 matrix.
pub fn inv3(m: &Mat3) -> Mat3 {
    let det = det3(m);
    let c0 = cross(&m[1], &m[2]);
    let c1 = cross(&m[2], &m[0]);
    let c2 = cross(&m[0], &m[1]);
    let mut inv = [[0.0; 3]; 3];
    for r in 0..3 {
        inv[r] = [c0[r] / det, c1[r] / det, c2[r] / det];
    }
    inv
}

/// Eigen-decomposition of a symmetric matrix.
///
/// `a` (row-major n×n, only read) → eigenvalues in ascending order and, when `vectors` is true,
/// the eigenvectors as rows of a row-major n×n matrix (row m belongs to eigenvalue m).
pub fn eigh(a: &[f64], n: usize, vectors: bool) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(a.len(), n * n, "eigh: matrix is not n×n");
    let mut ws = Eigen::default();
    let (m, stride) = ws.matrix(n);
    for r in 0..n {
        m[r * stride..r * stride + n].copy_from_slice(&a[r * n..(r + 1) * n]);
    }
    ws.solve(vectors);
    (ws.values().to_vec(), ws.vectors().to_vec())
}

/// Reusable work space of the symmetric eigensolver: one per thread avoids allocating per matrix.
///
/// Fill `matrix`, then `solve`. Householder tridiagonalisation T = Qᵀ A Q (LAPACK's dsytd2 on the upper
/// triangle, one contiguous pass over the triangle per step, AVX2/FMA where available), then, for
/// eigenvalues only, the square-root-free QL of Pal, Walker and Kahan (as LAPACK's dsyev calls dsterf),
/// or, with eigenvectors, implicit QL with Wilkinson shifts (EISPACK tql2) rotating the rows of Qᵀ.
#[derive(Default)]
pub struct Eigen {
    n: usize,
    /// The matrix, row-major with row stride `stride(n)`: the padding columns stay zero, so that the
    /// row kernel may run whole 4-wide vectors past the end of a row.
    a: Vec<f64>,
    /// Diagonal of T, then the eigenvalues (ascending once sorted).
    d: Vec<f64>,
    /// Off-diagonal of T: e[k] = T[k][k+1].
    e: Vec<f64>,
    /// Householder scalars τ_k.
    tau: Vec<f64>,
    /// Scratch vectors of the reduction (p = τ B v and the pending w), `stride(n)` long, zero-padded.
    p: Vec<f64>,
    z: Vec<f64>,
    /// Qᵀ, then the eigenvectors as rows (row-major n×n; empty without vectors).
    w: Vec<f64>,
    /// Eigenvectors as rows, in the order of the sorted eigenvalues.
    sorted: Vec<f64>,
}

/// Row stride of an n×n matrix in `Eigen`: at least 4 zero columns after each row, a multiple of 4.
fn stride(n: usize) -> usize {
    n.div_ceil(4) * 4 + 4
}

impl Eigen {
    /// The zeroed n×n matrix to fill and its row stride: entry (r, c) is at r·stride + c. Only the upper
    /// triangle (c ≥ r) is read; the padding columns c ≥ n must stay zero.
    pub fn matrix(&mut self, n: usize) -> (&mut [f64], usize) {
        self.n = n;
        self.a.clear();
        self.a.resize(n * stride(n), 0.0);
        (&mut self.a, stride(n))
    }

    /// Eigenvalues and, if `vectors`, eigenvectors of the matrix filled through `matrix` (which this
    /// destroys). Read them with `values` and `vectors`.
    pub fn solve(&mut self, vectors: bool) {
        self.reduce(vectors);
        if !vectors {
            ql_values(&mut self.d, &mut self.e);
            self.d.sort_unstable_by(f64::total_cmp);
            return;
        }
        let n = self.n;
        tql2(&mut self.w, &mut self.d, &mut self.e, n);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&x, &y| self.d[x].total_cmp(&self.d[y]));
        self.sorted.reserve(n * n);
        for &k in &order {
            self.sorted.extend_from_slice(&self.w[k * n..(k + 1) * n]);
        }
        let values: Vec<f64> = order.iter().map(|&k| self.d[k]).collect();
        self.d.copy_from_slice(&values);
    }

    /// `solve(false)` of two work spaces at once: their eigenvalue iterations interleave.
    pub fn solve_values_pair(one: &mut Eigen, two: &mut Eigen) {
        one.reduce(false);
        two.reduce(false);
        ql_values_pair(&mut one.d, &mut one.e, &mut two.d, &mut two.e);
        one.d.sort_unstable_by(f64::total_cmp);
        two.d.sort_unstable_by(f64::total_cmp);
    }

    /// Tridiagonal T (and Qᵀ if `vectors`) of the filled matrix, oriented for the QL iterations.
    fn reduce(&mut self, vectors: bool) {
        let n = self.n;
        for buf in [&mut self.d, &mut self.e, &mut self.tau] {
            buf.clear();
            buf.resize(n, 0.0);
        }
        for buf in [&mut self.p, &mut self.z] {
            buf.clear();
            buf.resize(stride(n), 0.0);
        }
        self.w.clear();
        self.sorted.clear();
        if n == 0 {
            return;
        }
        tridiagonalize(&mut self.a, n, &mut self.d, &mut self.e, &mut self.tau, &mut self.p, &mut self.z);
        if vectors {
            self.w.resize(n * n, 0.0);
            householder_qt(&self.a, n, &self.tau, &mut self.w);
        }
        // As LAPACK's dsterf, chase from the end whose diagonal entry is smaller (it converges in far
        // fewer sweeps here): reverse T to J T J, which permutes the rows of Qᵀ the same way.
        if self.d[n - 1].abs() < self.d[0].abs() {
            self.d.reverse();
            self.e[..n - 1].reverse();
            if vectors {
                let (w, half) = (&mut self.w, n / 2);
                for r in 0..half {
                    let (top, bottom) = w.split_at_mut((n - 1 - r) * n);
                    top[r * n..(r + 1) * n].swap_with_slice(&mut bottom[..n]);
                }
            }
        }
    }

    /// Eigenvalues of the last `solve`, ascending.
    pub fn values(&self) -> &[f64] {
        &self.d
    }

    /// Eigenvectors of the last `solve` as rows (row m belongs to `values()[m]`); empty without vectors.
    pub fn vectors(&self) -> &[f64] {
        &self.sorted
    }
}

/// Dot product with four accumulators (lets the compiler vectorise the reduction).
#[inline]
pub fn dotv(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 4];
    let (a4, b4) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = a4.remainder().iter().zip(b4.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in a4.zip(b4) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// y ← y + α x.
#[inline]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Householder reflector H = I − τ v vᵀ with v[0] = 1 and H x = (β, 0, …, 0) (LAPACK's dlarfg).
/// Overwrites x with v and returns (τ, β); τ = 0 (H = I) when x[1..] is already zero.
fn reflector(x: &mut [f64]) -> (f64, f64) {
    let alpha = x[0];
    let scale = x[1..].iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 {
        x[0] = 1.0;
        return (0.0, alpha);
    }
    // scaled so that squares neither overflow nor underflow
    let scale = scale.max(alpha.abs());
    let inv = 1.0 / scale;
    let sigma: f64 = x[1..].iter().map(|v| (v * inv) * (v * inv)).sum();
    let a = alpha * inv;
    let b = -(a * a + sigma).sqrt().copysign(a);
    let tau = (b - a) / b;
    let f = inv / (a - b);
    for v in x[1..].iter_mut() {
        *v *= f;
    }
    x[0] = 1.0;
    (tau, b * scale)
}

/// The row operation at the heart of `tridiagonalize`, on slices that start at the diagonal column r
/// of row r: row ← row − u₀ z − z₀ u (the previous reflector's rank-2 update), then the symmetric
/// product with the new reflector v: returns row·v and adds v₀·row to p (the caller takes v₀·row[0]
/// back off p[0], which gets the returned dot instead). All five slices hold at least `len` rounded up
/// to a multiple of 4 elements, and u, z, v are zero past `len` (so that whole vectors may run past it).
trait RowKernel {
    fn fused_row(&self, row: &mut [f64], u: &[f64], z: &[f64], v: &[f64], p: &mut [f64], len: usize) -> f64;
}

/// Plain Rust, any CPU.
struct Portable;

impl RowKernel for Portable {
    #[inline(always)]
    fn fused_row(&self, row: &mut [f64], u: &[f64], z: &[f64], v: &[f64], p: &mut [f64], len: usize) -> f64 {
        let (row, u, z, v, p) = (&mut row[..len], &u[..len], &z[..len], &v[..len], &mut p[..len]);
        let (ur, zr, vr) = (u[0], z[0], v[0]);
        let mut dot = 0.0;
        for j in 0..len {
            let x = row[j] - ur * z[j] - zr * u[j];
            row[j] = x;
            dot += x * v[j];
            p[j] += vr * x;
        }
        dot
    }
}

/// 4-wide AVX2 vectors with fused multiply-adds; only made by `Avx2::detect` on a CPU that has both.
#[cfg(target_arch = "x86_64")]
struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    fn detect() -> Option<Self> {
        (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")).then_some(Avx2(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl RowKernel for Avx2 {
    #[inline(always)]
    fn fused_row(&self, row: &mut [f64], u: &[f64], z: &[f64], v: &[f64], p: &mut [f64], len: usize) -> f64 {
        let whole = len.div_ceil(4) * 4;
        assert!(len >= 1 && [row.len(), u.len(), z.len(), v.len(), p.len()].iter().all(|&l| l >= whole));
        // SAFETY: `self` exists, so the CPU has AVX2 and FMA; the lengths were just checked.
        unsafe { fused_row_avx2(row, u, z, v, p, whole) }
    }
}

/// `RowKernel::fused_row` with 4-wide AVX2 vectors and fused multiply-adds over `whole` elements.
///
/// # Safety
/// The CPU must support AVX2 and FMA; all five slices must hold at least `whole` (a multiple of 4,
/// at least 4) elements.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fused_row_avx2(row: &mut [f64], u: &[f64], z: &[f64], v: &[f64], p: &mut [f64], whole: usize) -> f64 {
    use std::arch::x86_64::*;
    let (mu, mz, mv) = (_mm256_set1_pd(-u[0]), _mm256_set1_pd(-z[0]), _mm256_set1_pd(v[0]));
    let (r, u, z, v, p) = (row.as_mut_ptr(), u.as_ptr(), z.as_ptr(), v.as_ptr(), p.as_mut_ptr());
    let mut acc = _mm256_setzero_pd();
    for j in (0..whole).step_by(4) {
        let x = _mm256_fmadd_pd(mu, _mm256_loadu_pd(z.add(j)), _mm256_loadu_pd(r.add(j)));
        let x = _mm256_fmadd_pd(mz, _mm256_loadu_pd(u.add(j)), x);
        _mm256_storeu_pd(r.add(j), x);
        acc = _mm256_fmadd_pd(x, _mm256_loadu_pd(v.add(j)), acc);
        _mm256_storeu_pd(p.add(j), _mm256_fmadd_pd(mv, x, _mm256_loadu_pd(p.add(j))));
    }
    let mut lanes = [0.0; 4];
    _mm256_storeu_pd(lanes.as_mut_ptr(), acc);
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// Householder reduction of a symmetric matrix (upper triangle of `a`, row stride `stride(n)`, padding
/// zero) to tridiagonal form: diagonal in d, off-diagonal in e[..n-1]. Reflector k (acting on indices
/// k+1..n) is left in row k, a[k][k+1..n] = v (v[0] = 1), with its τ in tau[k]. `p` and `w` are
/// `stride(n)` of zeroed scratch each.
///
/// Step k turns the trailing block B = a[k+1.., k+1..] into H B H with p = τ B v, w = p − (τ/2)(pᵀv) v,
/// B ← B − v wᵀ − w vᵀ. The rank-2 update of step k is applied lazily, row by row, in the same pass over
/// the triangle as the product B v of step k+1, so each step reads the triangle once.
fn tridiagonalize(a: &mut [f64], n: usize, d: &mut [f64], e: &mut [f64], tau: &mut [f64], p: &mut [f64], w: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if let Some(avx2) = Avx2::detect() {
        // SAFETY: `avx2` exists only when the CPU has AVX2 and FMA.
        return unsafe { tridiagonalize_avx2(&avx2, a, n, d, e, tau, p, w) };
    }
    tridiagonalize_with(&Portable, a, n, d, e, tau, p, w);
}

/// `tridiagonalize_with` compiled for AVX2/FMA, so that the kernel inlines.
///
/// # Safety
/// The CPU must support AVX2 and FMA (guaranteed by the `Avx2` token).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tridiagonalize_avx2(
    avx2: &Avx2,
    a: &mut [f64],
    n: usize,
    d: &mut [f64],
    e: &mut [f64],
    tau: &mut [f64],
    p: &mut [f64],
    w: &mut [f64],
) {
    tridiagonalize_with(avx2, a, n, d, e, tau, p, w);
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tridiagonalize_with<K: RowKernel>(
    kernel: &K,
    a: &mut [f64],
    n: usize,
    d: &mut [f64],
    e: &mut [f64],
    tau: &mut [f64],
    p: &mut [f64],
    w: &mut [f64],
) {
    let ld = stride(n);
    // the pending update (u, w), u = the previous reflector (row k-1); before the first step w = 0
    // and u = w (any finite u would do)
    for k in 0..n.saturating_sub(2) {
        let (done, rest) = a.split_at_mut(k * ld);
        let (rowk, below) = rest.split_at_mut(ld);
        let u: &[f64] = if k == 0 { w } else { &done[(k - 1) * ld..] };
        // row k: finish its update, then it defines the reflector
        for j in k..n {
            rowk[j] -= u[k] * w[j] + w[k] * u[j];
        }
        d[k] = rowk[k];
        let (t, beta) = reflector(&mut rowk[k + 1..n]);
        tau[k] = t;
        e[k] = beta;
        let v = &rowk[..];
        p[k + 1..n].fill(0.0);
        for r in k + 1..n {
            let row = &mut below[(r - k - 1) * ld + r..(r - k) * ld];
            let dot = kernel.fused_row(row, &u[r..], &w[r..], &v[r..], &mut p[r..], n - r);
            p[r] += dot - v[r] * row[0];
        }
        // w = τ p − (τ²/2)(pᵀv) v
        let (pk, vk) = (&mut p[k + 1..n], &v[k + 1..n]);
        for x in pk.iter_mut() {
            *x *= t;
        }
        let half = 0.5 * t * dotv(pk, vk);
        for (x, vi) in pk.iter_mut().zip(vk) {
            *x -= half * vi;
        }
        w[k + 1..n].copy_from_slice(pk);
        w[k] = 0.0;
    }
    // the last rows still owe the final pending update
    let k = n.saturating_sub(2);
    if k > 0 {
        let (done, rest) = a.split_at_mut(k * ld);
        let u = &done[(k - 1) * ld..];
        for r in k..n {
            for j in r..n {
                rest[(r - k) * ld + j] -= u[r] * w[j] + w[r] * u[j];
            }
        }
    }
    if n >= 2 {
        d[n - 2] = a[(n - 2) * ld + n - 2];
        e[n - 2] = a[(n - 2) * ld + n - 1];
    }
    d[n - 1] = a[(n - 1) * ld + n - 1];
    e[n - 1] = 0.0;
}

/// Qᵀ = H_{n-3} ⋯ H_0 into `w` (row-major n×n), from the reflectors that `tridiagonalize` left in `a`.
fn householder_qt(a: &[f64], n: usize, tau: &[f64], w: &mut [f64]) {
    let ld = stride(n);
    w.fill(0.0);
    for r in 0..n {
        w[r * n + r] = 1.0;
    }
    // W ← W H_k for k = n-3 … 0; only rows and columns k+1.. are touched
    for k in (0..n.saturating_sub(2)).rev() {
        let t = tau[k];
        if t == 0.0 {
            continue;
        }
        let v = &a[k * ld + k + 1..k * ld + n];
        for r in k + 1..n {
            let row = &mut w[r * n + k + 1..(r + 1) * n];
            let s = t * dotv(row, v);
            axpy(-s, v, row);
        }
    }
}

/// √(a² + b²) without libm's slow overflow-safe path when the squares cannot overflow or underflow.
#[inline]
fn hypot(a: f64, b: f64) -> f64 {
    let m = a.abs().max(b.abs());
    if m > 1e-150 && m < 1e150 {
        (a * a + b * b).sqrt()
    } else {
        a.hypot(b)
    }
}

/// Implicit QL iterations on the tridiagonal matrix (diagonal d, off-diagonal e[k] = T[k][k+1]);
/// the rotations are applied to the rows of `w`, which then hold the eigenvectors.
fn tql2(w: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n {
            if e[m].abs() <= eps * tst1 {
                break;
            }
            m += 1;
        }
        if m > l {
            let mut iter = 0;
            loop {
                iter += 1;
                    let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = hypot(p, 1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d[l + 2..n].iter_mut() {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = hypot(p, e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (lo, hi) = w.split_at_mut((i + 1) * n);
                    let wi = &mut lo[i * n..];
                    let wi1 = &mut hi[..n];
                    for k in 0..n {
                        let h = wi1[k];
                        wi1[k] = s * wi[k] + c * h;
                        wi[k] = c * wi[k] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * (e[l] / dl1);
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 || iter > 60 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

/// Eigenvalues of a symmetric tridiagonal matrix (diagonal d, off-diagonal e[k] = T[k][k+1], e[n-1]
/// ignored), unsorted, into d; e is destroyed. Square-root-free implicit QL of Pal, Walker and Kahan
/// (LAPACK dsterf's QL branch) on the squared off-diagonal, deflating when |e| ≤ ε‖T‖ (as tql2).
fn ql_values(d: &mut [f64], e: &mut [f64]) {
    if let Some(ql) = Ql::new(d, e) {
        ql.run();
    }
}

/// `ql_values` of two matrices at once: their sweeps advance in lockstep, one step of each per turn,
/// so that each step's chain of dependent divisions overlaps the other's.
fn ql_values_pair(d1: &mut [f64], e1: &mut [f64], d2: &mut [f64], e2: &mut [f64]) {
    let (mut q1, mut q2) = match (Ql::new(d1, e1), Ql::new(d2, e2)) {
        (Some(q1), Some(q2)) => (q1, q2),
        (Some(q), None) | (None, Some(q)) => return q.run(),
        (None, None) => return,
    };
    let (mut s1, mut s2) = (q1.next_sweep(), q2.next_sweep());
    while let (Some(a), Some(b)) = (&mut s1, &mut s2) {
        let (done1, done2) = (q1.step(a), q2.step(b));
        if done1 {
            s1 = q1.next_sweep();
        }
        if done2 {
            s2 = q2.next_sweep();
        }
    }
    q1.run_from(s1);
    q2.run_from(s2);
}

/// `ql_values` in progress on one matrix (scaled by a power of two, squared off-diagonal).
struct Ql<'a> {
    d: &'a mut [f64],
    e: &'a mut [f64],
    scale: f64,
    tol2: f64,
    /// The eigenvalue being converged, and the sweeps spent on it.
    l: usize,
    sweeps: usize,
}

/// One QL sweep, chasing from m down to l; `i` is the next index to reach (the sweep is done at l).
struct Sweep {
    i: usize,
    l: usize,
    m: usize,
    sigma: f64,
    c: f64,
    s: f64,
    gamma: f64,
    p: f64,
}

impl<'a> Ql<'a> {
    /// None when there is nothing to iterate (n < 2, a zero or non-finite matrix).
    fn new(d: &'a mut [f64], e: &'a mut [f64]) -> Option<Self> {
        let n = d.len();
        if n < 2 {
            return None;
        }
        let norm = (0..n).fold(0.0f64, |m, k| m.max(d[k].abs() + e[k].abs() + if k > 0 { e[k - 1].abs() } else { 0.0 }));
        if norm == 0.0 || !norm.is_finite() {
            return None;
        }
        // scale by a power of two (exact) so that squares neither overflow nor underflow
        let scale = 2f64.powi(-(norm.log2().ceil() as i32));
        for x in d.iter_mut() {
            *x *= scale;
        }
        for x in e[..n - 1].iter_mut() {
            *x *= scale;
            *x *= *x;
        }
        e[n - 1] = 0.0;
        let tol2 = (f64::EPSILON * norm * scale).powi(2);
        Some(Ql { d, e, scale, tol2, l: 0, sweeps: 0 })
    }

    /// The next sweep, with its Wilkinson-type shift from the leading 2×2 block; None when all converged.
    fn next_sweep(&mut self) -> Option<Sweep> {
        let (d, e) = (&mut *self.d, &*self.e);
        loop {
            let l = self.l;
            if l == d.len() {
                return None;
            }
            let mut m = l;
            while e[m] > self.tol2 {
                m += 1;
            }
            if m == l || self.sweeps == 60 {
                self.l += 1;
                self.sweeps = 0;
                continue;
            }
            self.sweeps += 1;
            let rte = e[l].sqrt();
            let t = (d[l + 1] - d[l]) / (2.0 * rte);
            let sigma = d[l] - rte / (t + hypot(t, 1.0).copysign(t));
            let gamma = d[m] - sigma;
            return Some(Sweep { i: m, l, m, sigma, c: 1.0, s: 0.0, gamma, p: gamma * gamma });
        }
    }

    /// One step of the sweep, in dsterf's quantities (c, s, γ, p) but with γ = N/r and
    /// p' = γ²/c = N²/(r p), N = p(α − σ) − b γ_old: one reciprocal and one division, off each other's
    /// path. True when the sweep is complete (and stored).
    #[inline(always)]
    fn step(&mut self, sw: &mut Sweep) -> bool {
        let (d, e) = (&mut *self.d, &mut *self.e);
        let i = sw.i - 1;
        let bb = e[i];
        let r = sw.p + bb;
        if i + 1 != sw.m {
            e[i + 1] = sw.s * r;
        }
        let alpha = d[i];
        let num = sw.p * (alpha - sw.sigma) - bb * sw.gamma;
        let rp = r * sw.p;
        let rinv = 1.0 / r;
        let c = sw.p * rinv;
        let oldgam = sw.gamma;
        sw.gamma = num * rinv;
        sw.s = bb * rinv;
        d[i + 1] = oldgam + (alpha - sw.gamma);
        sw.p = if rp != 0.0 { num * num / rp } else { sw.c * bb };
        sw.c = c;
        sw.i = i;
        if i > sw.l {
            return false;
        }
        e[i] = sw.s * sw.p;
        d[i] = sw.sigma + sw.gamma;
        true
    }

    /// All the sweeps, then undo the scaling.
    fn run(mut self) {
        let first = self.next_sweep();
        self.run_from(first);
    }

    /// The rest of the sweeps from `sweep` on, then undo the scaling.
    fn run_from(mut self, mut sweep: Option<Sweep>) {
        while let Some(s) = &mut sweep {
            if self.step(s) {
                sweep = self.next_sweep();
            }
        }
        for x in self.d.iter_mut() {
            *x /= self.scale;
        }
    }
}

/// In-place Cholesky factorisation A = L Lᵀ (lower triangle of `a` becomes L).
/// Returns log det A, or None when A is not positive definite.
pub fn cholesky_logdet(a: &mut [f64], n: usize) -> Option<f64> {
    let mut logdet = 0.0;
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= a[j * n + k] * a[j * n + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let ljj = s.sqrt();
        a[j * n + j] = ljj;
        logdet += 2.0 * ljj.ln();
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / ljj;
        }
    }
    Some(logdet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut a = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..=r {
                let v = next();
                a[r * n + c] = v;
                a[c * n + r] = v;
            }
        }
        a
    }

    #[test]
    fn eigh_reconstructs_and_values_agree_without_vectors() {
        for n in [1, 2, 3, 7, 40] {
            let a = random_symmetric(n, n as u64);
            let (vals, vecs) = eigh(&a, n, true);
            let (vals2, _) = eigh(&a, n, false);
            for m in 0..n {
                assert!((vals[m] - vals2[m]).abs() < 1e-12);
                // A v = λ v
                for r in 0..n {
                    let av: f64 = (0..n).map(|c| a[r * n + c] * vecs[m * n + c]).sum();
                    assert!((av - vals[m] * vecs[m * n + r]).abs() < 1e-11, "n={n} m={m}");
                }
            }
            assert!(vals.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    /// Q diag(λ) Qᵀ · scale with Q a Householder reflection of a pseudo-random vector.
    fn with_spectrum(lambda: &[f64], scale: f64, seed: u64) -> Vec<f64> {
        let n = lambda.len();
        let u: Vec<f64> = random_symmetric(n, seed)[..n].to_vec();
        let uu: f64 = u.iter().map(|x| x * x).sum();
        let q = |r: usize, c: usize| f64::from(u8::from(r == c)) - 2.0 * u[r] * u[c] / uu;
        let mut a = vec![0.0; n * n];
        for r in 0..n {
            for c in 0..n {
                a[r * n + c] = scale * (0..n).map(|k| q(r, k) * lambda[k] * q(c, k)).sum::<f64>();
            }
        }
        a
    }

    #[test]
    fn eigh_hard_spectra() {
        let repeated = [2.0, 1.0, 1.0, 1.0, 0.0, 0.0, -3.0, 1e-9, 1.0, 2.0];
        let graded: Vec<f64> = (0..30).map(|k| 0.5f64.powi(k)).collect();
        let spread: Vec<f64> = (0..50).map(|k| (k as f64 * 0.37).sin()).collect();
        for lambda in [&repeated[..], &graded, &spread, &[5.0; 6]] {
            for scale in [1e-200, 1.0, 1e200] {
                let n = lambda.len();
                let a = with_spectrum(lambda, scale, 3);
                let mut want = lambda.to_vec();
                want.sort_by(f64::total_cmp);
                for vectors in [false, true] {
                    let (vals, vecs) = eigh(&a, n, vectors);
                    for m in 0..n {
                        let err = (vals[m] / scale - want[m]).abs();
                        assert!(err < 1e-13, "n={n} scale={scale} vectors={vectors} m={m}: {} vs {}", vals[m], want[m]);
                        if vectors {
                            for r in 0..n {
                                let av: f64 = (0..n).map(|c| a[r * n + c] / scale * vecs[m * n + c]).sum();
                                assert!((av - vals[m] / scale * vecs[m * n + r]).abs() < 1e-12);
                            }
                        }
                    }
                }
            }
        }
        // the portable kernel (this machine may take the AVX2 one) gives the same tridiagonal form
        let n = 37;
        let a = random_symmetric(n, 11);
        let run = |portable: bool| {
            let ld = stride(n);
            let mut m = vec![0.0; n * ld];
            for r in 0..n {
                m[r * ld..r * ld + n].copy_from_slice(&a[r * n..(r + 1) * n]);
            }
            let (mut d, mut e, mut tau) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            let (mut p, mut w) = (vec![0.0; ld], vec![0.0; ld]);
            if portable {
                tridiagonalize_with(&Portable, &mut m, n, &mut d, &mut e, &mut tau, &mut p, &mut w);
            } else {
                tridiagonalize(&mut m, n, &mut d, &mut e, &mut tau, &mut p, &mut w);
            }
            (d, e)
        };
        let (fast, portable) = (run(false), run(true));
        for k in 0..n {
            assert!((fast.0[k] - portable.0[k]).abs() < 1e-13 && (fast.1[k] - portable.1[k]).abs() < 1e-13);
        }
        // already tridiagonal, already diagonal, zero
        let mut tri = vec![0.0; 25];
        for k in 0..5 {
            tri[k * 5 + k] = k as f64;
            if k < 4 {
                tri[k * 5 + k + 1] = 0.5;
                tri[(k + 1) * 5 + k] = 0.5;
            }
        }
        let (v1, _) = eigh(&tri, 5, false);
        let (v2, _) = eigh(&tri, 5, true);
        assert!(v1.iter().zip(&v2).all(|(a, b)| (a - b).abs() < 1e-14));
        let diag: Vec<f64> = (0..16).map(|k| if k % 5 == 0 { 4.0 - k as f64 } else { 0.0 }).collect();
        assert_eq!(eigh(&diag, 4, false).0, vec![-11.0, -6.0, -1.0, 4.0]);
        assert_eq!(eigh(&[0.0; 9], 3, true).0, vec![0.0; 3]);
    }

    #[test]
    fn pair_solve_matches_single() {
        let fill = |ws: &mut Eigen, a: &[f64], n: usize| {
            let (m, stride) = ws.matrix(n);
            for r in 0..n {
                m[r * stride..r * stride + n].copy_from_slice(&a[r * n..(r + 1) * n]);
            }
        };
        for (n1, n2) in [(29, 88), (40, 1), (0, 7), (5, 5)] {
            let (a1, a2) = (random_symmetric(n1, 5), if n2 == 5 { vec![0.0; 25] } else { random_symmetric(n2, 6) });
            let (mut one, mut two) = (Eigen::default(), Eigen::default());
            fill(&mut one, &a1, n1);
            fill(&mut two, &a2, n2);
            Eigen::solve_values_pair(&mut one, &mut two);
            assert_eq!(one.values(), eigh(&a1, n1, false).0.as_slice());
            assert_eq!(two.values(), eigh(&a2, n2, false).0.as_slice());
        }
    }

    #[test]
    fn cholesky_logdet_of_diagonal() {
        let mut a = vec![2.0, 0.0, 0.0, 3.0];
        assert!((cholesky_logdet(&mut a, 2).unwrap() - 6f64.ln()).abs() < 1e-14);
        let mut b = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_logdet(&mut b, 2).is_none());
    }
}

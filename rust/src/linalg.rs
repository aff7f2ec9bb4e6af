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
    if n == 0 {
        return (vec![], vec![]);
    }
    let mut v = a.to_vec();
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    tred2(&mut v, &mut d, &mut e, n, vectors);
    // tql2 rotates columns of V; keep V transposed (eigenvectors as rows) so those updates are contiguous.
    let mut w = if vectors { transpose(&v, n) } else { vec![] };
    tql2(&mut w, &mut d, &mut e, n, vectors);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| d[x].total_cmp(&d[y]));
    let values = order.iter().map(|&k| d[k]).collect();
    let mut vecs = vec![];
    if vectors {
        vecs.reserve(n * n);
        for &k in &order {
            vecs.extend_from_slice(&w[k * n..(k + 1) * n]);
        }
    }
    (values, vecs)
}

fn transpose(v: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * n];
    for r in 0..n {
        for c in 0..n {
            t[c * n + r] = v[r * n + c];
        }
    }
    t
}

/// Householder reduction to tridiagonal form (diagonal in d, sub-diagonal in e[1..]).
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize, accumulate: bool) {
    let at = |r: usize, c: usize| r * n + c;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for dk in d[..i].iter_mut() {
                *dk /= scale;
                h += *dk * *dk;
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for ej in e[..i].iter_mut() {
                *ej = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[at(j, i)] = f;
                g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    if !accumulate {
        for j in 0..n {
            d[j] = v[at(j, j)];
        }
        e[0] = 0.0;
        return;
    }
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
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

/// Implicit QL iterations on the tridiagonal matrix; `w` holds eigenvectors as rows.
fn tql2(w: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize, vectors: bool) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
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
                    if vectors {
                        let (lo, hi) = w.split_at_mut((i + 1) * n);
                        let wi = &mut lo[i * n..];
                        let wi1 = &mut hi[..n];
                        for k in 0..n {
                            let h = wi1[k];
                            wi1[k] = s * wi[k] + c * h;
                            wi[k] = c * wi[k] - s * h;
                        }
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
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

    #[test]
    fn cholesky_logdet_of_diagonal() {
        let mut a = vec![2.0, 0.0, 0.0, 3.0];
        assert!((cholesky_logdet(&mut a, 2).unwrap() - 6f64.ln()).abs() < 1e-14);
        let mut b = vec![1.0, 2.0, 2.0, 1.0];
        assert!(cholesky_logdet(&mut b, 2).is_none());
    }
}

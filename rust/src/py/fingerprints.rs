//! `fingerprints` (OMFP fingerprints of a batch) and `chain` (the chain rule through their gradients).

use super::arrays::{array, flat, put, read, Array};
use super::batch::{frames, read_batch};
use super::errors::{guard, value_error};
use super::threads::on_pool;
use crate::fingerprint::{self, Output};
use crate::recycle::concat;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// OMFP fingerprints of a batch (layout as for `neighbor_lists`, plus numbers: int64 (n_atoms,)).
///
/// natx: largest sphere allowed (0 = size to the largest sphere). orbital: "s" or "sp".
/// Returns a dict: natx (int), fp (n_atoms, len), sphere (n_atoms,) and, with gradients, pairs
/// (n_entries, 2) batch-global (centre, atom) indices, grad (n_entries, 3, len), counts (entries per
/// structure) and, with stress, strain (n_atoms, 6, len).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn fingerprints<'py>(
    py: Python<'py>,
    positions: &PyAny,
    numbers: &PyAny,
    cells: &PyAny,
    pbc: &PyAny,
    offsets: &PyAny,
    cutoff: f64,
    natx: usize,
    orbital: &str,
    gradients: bool,
    stress: bool,
    threads: usize,
) -> PyResult<&'py PyDict> {
    guard(|| {
        let set = fingerprint::Settings {
            cutoff,
            natx,
            orbital: fingerprint::Orbital::parse(orbital).map_err(value_error)?,
            gradients,
            stress,
        };
        let (positions, cells, pbc, offsets) = read_batch(py, positions, cells, pbc, offsets)?;
        let numbers = read::<i64>(py, numbers, "numbers")?;
        if numbers.len() != positions.len() {
            return Err(value_error(format!("{} numbers for {} positions", numbers.len(), positions.len())));
        }
        let frames = frames(&positions, &cells, &pbc, &offsets)?;
        let z: Vec<&[i64]> = offsets.windows(2).map(|w| &numbers[w[0] as usize..w[1] as usize]).collect();
        let (natx, fp, sphere, pairs, grad, strain, counts) = py
            .allow_threads(|| {
                on_pool(threads, |n| {
                    let (outs, natx) = fingerprint::fingerprints(&frames, &z, &set, n)?;
                    let parallel = n > 1;
                    let (pairs, counts) = global_pairs(&outs, &offsets, parallel);
                    let cat = |f: &dyn Fn(&Output) -> &[f64]| concat(outs.iter().map(f).collect(), parallel);
                    let sphere = concat(outs.iter().map(|o| o.sphere.as_slice()).collect(), parallel);
                    Ok::<_, String>((natx, cat(&|o| &o.fp), sphere, pairs, cat(&|o| &o.grad), cat(&|o| &o.strain), counts))
                })
            })
            .map_err(value_error)?;
        let out = PyDict::new(py);
        out.set_item("natx", natx)?;
        put(py, out, [("fp", fp.into()), ("sphere", sphere.into()), ("pairs", pairs.into())])?;
        put(py, out, [("grad", grad.into()), ("strain", strain.into()), ("counts", counts.into())])?;
        Ok(out)
    })
}

/// The (centre, atom) pairs of all structures, flat and shifted to batch-global atom indices, and the
/// number of pairs of each structure.
fn global_pairs(outs: &[Output], offsets: &[i64], parallel: bool) -> (Vec<i64>, Vec<i64>) {
    let mut pairs = concat(outs.iter().map(|o| flat(&o.pairs)).collect(), parallel);
    let counts: Vec<i64> = outs.iter().map(|o| o.pairs.len() as i64).collect();
    let mut start = 0usize;
    for (k, &c) in counts.iter().enumerate() {
        for e in &mut pairs[2 * start..2 * (start + c as usize)] {
            *e += offsets[k];
        }
        start += c as usize;
    }
    (pairs, counts)
}

/// Chain rule through one structure's fingerprint gradients: coef = ∂F/∂fp (n, len), pairs (E, 2) local,
/// grad (E, 3, len), strain (n, 6, len) or empty → (∂F/∂r (n, 3), ∂F/∂ε (6,) Voigt).
#[pyfunction]
pub fn chain(py: Python, coef: &PyAny, len: usize, pairs: &PyAny, grad: &PyAny, strain: &PyAny) -> PyResult<(Py<Array>, Py<Array>)> {
    guard(|| {
        let coef = read::<f64>(py, coef, "coef")?;
        let pairs = read::<i64>(py, pairs, "pairs")?;
        if pairs.len() % 2 != 0 {
            return Err(value_error("pairs must have shape (E, 2)".into()));
        }
        let pairs: Vec<[i64; 2]> = pairs.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
        let (grad, strain) = (read::<f64>(py, grad, "grad")?, read::<f64>(py, strain, "strain")?);
        let (f, v) = py
            .allow_threads(|| fingerprint::chain(&coef, len, &pairs, &grad, &strain))
            .map_err(value_error)?;
        Ok((array(py, flat(&f).to_vec())?, array(py, v.to_vec())?))
    })
}

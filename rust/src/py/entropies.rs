//! `knn_distances` and `local_entropy`: the entropy estimates that need no dataset state.

use super::arrays::{array, read, Array};
use super::errors::{guard, value_error};
use super::threads::pooled;
use crate::entropy;
use pyo3::prelude::*;

/// Distance of every row of x (n, d) to its k-th nearest other row (exact).
#[pyfunction]
pub fn knn_distances(py: Python, x: &PyAny, n: usize, d: usize, k: usize, threads: usize) -> PyResult<Py<Array>> {
    guard(|| {
        let x = read::<f64>(py, x, "x")?;
        let r = py.allow_threads(|| pooled(threads, || entropy::knn_distances(&x, n, d, k))).map_err(value_error)?;
        array(py, r)
    })
}

/// Local entropy of one structure's fingerprints fp (n, len) and ∂S/∂fp (n, len).
#[pyfunction]
pub fn local_entropy(py: Python, fp: &PyAny, n: usize, len: usize, floor: f64) -> PyResult<(f64, Py<Array>)> {
    guard(|| {
        let fp = read::<f64>(py, fp, "fp")?;
        let (s, g) = py.allow_threads(|| entropy::local_entropy(&fp, n, len, floor)).map_err(value_error)?;
        Ok((s, array(py, g)?))
    })
}

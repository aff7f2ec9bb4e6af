//! `eigh`: the symmetric eigensolver the entropies use, exposed for tests.

use super::arrays::{array, read, Array};
use super::errors::{guard, value_error};
use crate::linalg;
use pyo3::prelude::*;

/// Eigenvalues (ascending) and eigenvectors (rows) of a symmetric float64 (n, n) matrix.
#[pyfunction]
pub fn eigh(py: Python, a: &PyAny, n: usize, vectors: bool) -> PyResult<(Py<Array>, Py<Array>)> {
    guard(|| {
        let a = read::<f64>(py, a, "a")?;
        if a.len() != n * n {
            return Err(value_error(format!("a must be {n}×{n}; got {} numbers", a.len())));
        }
        let (vals, vecs) = py.allow_threads(|| linalg::eigh(&a, n, vectors));
        Ok((array(py, vals)?, array(py, vecs)?))
    })
}

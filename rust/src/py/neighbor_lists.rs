//! `neighbor_lists`: the neighbour lists of a batch of structures.

use super::arrays::put;
use super::batch::{frames, read_batch};
use super::errors::{guard, value_error};
use super::threads::on_pool;
use crate::neighbors;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Neighbour lists of a batch of structures.
///
/// positions: float64 (n_atoms, 3) Å; cells: float64 (n_struct, 3, 3) rows Å; pbc: int64 (n_struct, 3);
/// offsets: int64 (n_struct + 1,); cutoff Å; quantities: letters of "ijSdD"; threads: 0 = default.
/// Returns a dict of Arrays: i, j (int64, indices local to each structure), S (int64 (n, 3)),
/// d (float64), D (float64 (n, 3)), counts (int64 pairs per structure).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn neighbor_lists<'py>(
    py: Python<'py>,
    positions: &PyAny,
    cells: &PyAny,
    pbc: &PyAny,
    offsets: &PyAny,
    cutoff: f64,
    quantities: &str,
    threads: usize,
) -> PyResult<&'py PyDict> {
    guard(|| {
        let want = neighbors::Want::parse(quantities).map_err(value_error)?;
        let (positions, cells, pbc, offsets) = read_batch(py, positions, cells, pbc, offsets)?;
        let frames = frames(&positions, &cells, &pbc, &offsets)?;
        let (pairs, counts) = py
            .allow_threads(|| on_pool(threads, |n| neighbors::neighbor_lists(&frames, cutoff, want, n)))
            .map_err(value_error)?;
        let neighbors::Pairs { i, j, shift, distance, vector } = pairs;
        let out = PyDict::new(py);
        put(py, out, [("i", i.into()), ("j", j.into()), ("S", shift.into())])?;
        put(py, out, [("d", distance.into()), ("D", vector.into()), ("counts", counts.into())])?;
        Ok(out)
    })
}

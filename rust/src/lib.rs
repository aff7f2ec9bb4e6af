//! PyO3 glue only: every native function of `dael._core` is declared here.
//!
//! Arrays arrive through the buffer protocol (C-contiguous numpy arrays of the documented dtype)
//! and leave as `bytearray`s that the Python side views with `numpy.frombuffer`. All numeric work
//! runs with the GIL released, on a rayon pool of the requested size.

pub mod linalg;
pub mod neighbors;

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn value_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// Copy a C-contiguous buffer of element type `T` into a Vec; `name` is used in errors.
fn read<T: Element + Copy>(py: Python, obj: &PyAny, name: &str) -> PyResult<Vec<T>> {
    let buf = PyBuffer::<T>::get(obj)
        .map_err(|e| value_error(format!("{name}: expected a contiguous array of {}: {e}", std::any::type_name::<T>())))?;
    buf.to_vec(py)
}

/// A Vec of plain numbers as a bytearray (one copy, no per-element work).
fn bytes<'py, T: Copy>(py: Python<'py>, v: &[T]) -> &'py PyByteArray {
    // SAFETY: T is a plain-old-data numeric type (f64, i64, [i64; 3], [f64; 3]).
    let raw = unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) };
    PyByteArray::new(py, raw)
}

/// Run `f` on a rayon pool with `threads` workers (0 = the global pool: all cores or RAYON_NUM_THREADS).
fn on_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    if threads == 0 {
        return f();
    }
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pool = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(threads)
        .or_insert_with(|| Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()))
        .clone();
    pool.install(f)
}

/// Validate the flat batch layout and cut it into frames.
fn frames<'a>(
    positions: &'a [[f64; 3]],
    cells: &[f64],
    pbc: &[i64],
    offsets: &[i64],
) -> PyResult<Vec<neighbors::Frame<'a>>> {
    let n_struct = offsets.len().saturating_sub(1);
    if offsets.is_empty() || offsets[0] != 0 || *offsets.last().unwrap() as usize != positions.len() {
        return Err(value_error(format!(
            "offsets must start at 0 and end at the number of atoms ({}); got {} entries ending at {:?}",
            positions.len(),
            offsets.len(),
            offsets.last()
        )));
    }
    if let Some(k) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return Err(value_error(format!("offsets must not decrease (structure {k})")));
    }
    if cells.len() != 9 * n_struct || pbc.len() != 3 * n_struct {
        return Err(value_error(format!(
            "{n_struct} structures need {} cell entries and {} pbc entries; got {} and {}",
            9 * n_struct,
            3 * n_struct,
            cells.len(),
            pbc.len()
        )));
    }
    Ok((0..n_struct)
        .map(|k| {
            let c = &cells[9 * k..9 * k + 9];
            neighbors::Frame {
                positions: &positions[offsets[k] as usize..offsets[k + 1] as usize],
                cell: [[c[0], c[1], c[2]], [c[3], c[4], c[5]], [c[6], c[7], c[8]]],
                pbc: [pbc[3 * k] != 0, pbc[3 * k + 1] != 0, pbc[3 * k + 2] != 0],
            }
        })
        .collect())
}

fn as_vec3(flat: &[f64], name: &str) -> PyResult<Vec<[f64; 3]>> {
    if flat.len() % 3 != 0 {
        return Err(value_error(format!("{name} must have shape (n, 3); got {} numbers", flat.len())));
    }
    Ok(flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

/// Neighbour lists of a batch of structures.
///
/// positions: float64 (n_atoms, 3) Å; cells: float64 (n_struct, 3, 3) rows Å; pbc: int64 (n_struct, 3);
/// offsets: int64 (n_struct + 1,); cutoff Å; quantities: letters of "ijSdD"; threads: 0 = default.
/// Returns a dict of bytearrays: i, j (int64, indices local to each structure), S (int64 (n, 3)),
/// d (float64), D (float64 (n, 3)), counts (int64 pairs per structure).
#[pyfunction]
fn neighbor_lists<'py>(
    py: Python<'py>,
    positions: &PyAny,
    cells: &PyAny,
    pbc: &PyAny,
    offsets: &PyAny,
    cutoff: f64,
    quantities: &str,
    threads: usize,
) -> PyResult<&'py PyDict> {
    let want = neighbors::Want::parse(quantities).map_err(value_error)?;
    let positions = as_vec3(&read::<f64>(py, positions, "positions")?, "positions")?;
    let cells = read::<f64>(py, cells, "cells")?;
    let pbc = read::<i64>(py, pbc, "pbc")?;
    let offsets = read::<i64>(py, offsets, "offsets")?;
    let frames = frames(&positions, &cells, &pbc, &offsets)?;
    let lists = py
        .allow_threads(|| on_pool(threads, || neighbors::neighbor_lists(&frames, cutoff, want)))
        .map_err(value_error)?;
    let total: usize = lists.iter().map(|p| p.len()).sum();
    let mut all = neighbors::Pairs::default();
    let mut counts = Vec::with_capacity(lists.len());
    all.i.reserve(total);
    all.j.reserve(total);
    for p in lists {
        counts.push(p.len() as i64);
        all.i.extend_from_slice(&p.i);
        all.j.extend_from_slice(&p.j);
        all.shift.extend_from_slice(&p.shift);
        all.distance.extend_from_slice(&p.distance);
        all.vector.extend_from_slice(&p.vector);
    }
    let out = PyDict::new(py);
    out.set_item("i", bytes(py, &all.i))?;
    out.set_item("j", bytes(py, &all.j))?;
    out.set_item("S", bytes(py, &all.shift))?;
    out.set_item("d", bytes(py, &all.distance))?;
    out.set_item("D", bytes(py, &all.vector))?;
    out.set_item("counts", bytes(py, &counts))?;
    Ok(out)
}

/// Eigenvalues (ascending) and eigenvectors (rows) of a symmetric float64 (n, n) matrix.
#[pyfunction]
fn eigh<'py>(py: Python<'py>, a: &PyAny, n: usize, vectors: bool) -> PyResult<(&'py PyByteArray, &'py PyByteArray)> {
    let a = read::<f64>(py, a, "a")?;
    if a.len() != n * n {
        return Err(value_error(format!("a must be {n}×{n}; got {} numbers", a.len())));
    }
    let (vals, vecs) = py.allow_threads(|| linalg::eigh(&a, n, vectors));
    Ok((bytes(py, &vals), bytes(py, &vecs)))
}

#[pymodule]
fn _core(_py: Python, m: &PyModule) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(neighbor_lists, m)?)?;
    m.add_function(wrap_pyfunction!(eigh, m)?)?;
    Ok(())
}

//! The flat batch layout of `neighbor_lists` and `fingerprints`, read and checked before any work.

use super::arrays::read;
use super::errors::value_error;
use crate::neighbors::Frame;
use pyo3::prelude::*;

/// The flat batch arrays, copied out of their buffers: positions (n_atoms, 3), cells (n_struct × 9),
/// pbc (n_struct × 3), offsets (n_struct + 1).
pub type BatchArrays = (Vec<[f64; 3]>, Vec<f64>, Vec<i64>, Vec<i64>);

pub fn read_batch(py: Python, positions: &PyAny, cells: &PyAny, pbc: &PyAny, offsets: &PyAny) -> PyResult<BatchArrays> {
    Ok((
        as_vec3(&read::<f64>(py, positions, "positions")?, "positions")?,
        read::<f64>(py, cells, "cells")?,
        read::<i64>(py, pbc, "pbc")?,
        read::<i64>(py, offsets, "offsets")?,
    ))
}

fn as_vec3(flat: &[f64], name: &str) -> PyResult<Vec<[f64; 3]>> {
    if flat.len() % 3 != 0 {
        return Err(value_error(format!("{name} must have shape (n, 3); got {} numbers", flat.len())));
    }
    Ok(flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

/// Validate the flat batch layout and cut it into frames.
pub fn frames<'a>(positions: &'a [[f64; 3]], cells: &[f64], pbc: &[i64], offsets: &[i64]) -> PyResult<Vec<Frame<'a>>> {
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
            Frame {
                positions: &positions[offsets[k] as usize..offsets[k + 1] as usize],
                cell: [[c[0], c[1], c[2]], [c[3], c[4], c[5]], [c[6], c[7], c[8]]],
                pbc: [pbc[3 * k] != 0, pbc[3 * k + 1] != 0, pbc[3 * k + 2] != 0],
            }
        })
        .collect())
}

//! PyO3 glue only: every native function of `dael._core` is declared here.
//!
//! Arrays arrive through the buffer protocol (C-contiguous numpy arrays of the documented dtype)
//! and leave as `bytearray`s that the Python side views with `numpy.frombuffer`. All numeric work
//! runs with the GIL released, on a rayon pool of the requested size.

pub mod entropy;
pub mod fingerprint;
pub mod linalg;
pub mod neighbors;
pub mod recycle;

use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::{PyBufferError, PyMemoryError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::AsPyPointer;
use pyo3::types::PyDict;
use recycle::concat;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

fn value_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// Where the last panic happened (" at FILE:LINE"), recorded by the hook `quiet_panics` installs.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Record panics' locations instead of printing them: `guard` turns each into a Python error.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = place;
        }
    }));
}

/// Run `f`, turning a Rust panic (in it or in its rayon workers) into a Python MemoryError (allocation
/// failures) or ValueError instead of a PanicException, which `except Exception` does not catch.
fn guard<R>(f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let place = LAST_PANIC.lock().ok().and_then(|mut p| p.take()).unwrap_or_default();
        if msg.contains("capacity overflow") || msg.contains("memory allocation") {
            return Err(PyMemoryError::new_err(format!(
                "the input needs more memory than can be allocated ({msg}); give smaller inputs (cutoff, natx, chunk)"
            )));
        }
        Err(value_error(format!(
            "the native core cannot handle this input ({msg}{place}); check it for extreme or inconsistent values"
        )))
    })
}

/// Copy a C-contiguous buffer of element type `T` into a Vec; `name` is used in errors.
fn read<T: Element + Copy>(py: Python, obj: &PyAny, name: &str) -> PyResult<Vec<T>> {
    let buf = PyBuffer::<T>::get(obj)
        .map_err(|e| value_error(format!("{name}: expected a contiguous array of {}: {e}", std::any::type_name::<T>())))?;
    buf.to_vec(py)
}

/// An owned native array handed to Python without copying: it exposes its bytes through the buffer
/// protocol (writable), and `numpy.frombuffer(array, dtype)` views them.
#[pyclass(module = "dael._core")]
struct Array {
    data: Store,
}

enum Store {
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl Store {
    fn raw(&self) -> (*mut u8, usize) {
        match self {
            Store::F64(v) => (v.as_ptr() as *mut u8, std::mem::size_of_val(v.as_slice())),
            Store::I64(v) => (v.as_ptr() as *mut u8, std::mem::size_of_val(v.as_slice())),
        }
    }
}

impl Drop for Array {
    /// The memory goes to `recycle` for later outputs (large buffers only).
    fn drop(&mut self) {
        match std::mem::replace(&mut self.data, Store::I64(Vec::new())) {
            Store::F64(v) => recycle::give(v),
            Store::I64(v) => recycle::give(v),
        }
    }
}

#[pymethods]
impl Array {
    /// # Safety
    /// Called by CPython with a valid `Py_buffer`; the Vec is never touched after construction, so the
    /// pointer stays valid while the exporter (kept alive through `view.obj`) lives.
    unsafe fn __getbuffer__(slf: &PyCell<Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null buffer view"));
        }
        let (ptr, len) = slf.borrow().data.raw();
        (*view).obj = slf.as_ptr();
        ffi::Py_INCREF((*view).obj);
        (*view).buf = ptr as *mut c_void;
        (*view).len = len as isize;
        (*view).readonly = 0;
        (*view).itemsize = 1;
        (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
            CString::new("B").unwrap().into_raw()
        } else {
            std::ptr::null_mut()
        };
        (*view).ndim = 1;
        (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND { &mut (*view).len } else { std::ptr::null_mut() };
        (*view).strides =
            if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES { &mut (*view).itemsize } else { std::ptr::null_mut() };
        (*view).suboffsets = std::ptr::null_mut();
        (*view).internal = std::ptr::null_mut();
        Ok(())
    }

    /// # Safety
    /// Releases the format string allocated in `__getbuffer__`.
    unsafe fn __releasebuffer__(&self, view: *mut ffi::Py_buffer) {
        if !(*view).format.is_null() {
            drop(CString::from_raw((*view).format));
        }
    }
}

fn f64s(py: Python, v: Vec<f64>) -> PyResult<Py<Array>> {
    Py::new(py, Array { data: Store::F64(v) })
}

fn i64s(py: Python, v: Vec<i64>) -> PyResult<Py<Array>> {
    Py::new(py, Array { data: Store::I64(v) })
}

/// View a slice of `[T; K]` as a flat slice of T.
fn flat<T, const K: usize>(v: &[[T; K]]) -> &[T] {
    // SAFETY: [T; K] is K contiguous Ts with the alignment of T.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const T, v.len() * K) }
}

/// Run `f(n)` with `threads` native threads, n their number: 1 on the calling thread (the native code
/// then makes no rayon calls, which saves handing each call to a pool thread and back, ~15 µs), 0 on the
/// global rayon pool (all cores or RAYON_NUM_THREADS), more on a cached pool of that many workers.
fn on_pool<R: Send>(threads: usize, f: impl FnOnce(usize) -> R + Send) -> R {
    if threads <= 1 {
        return f(if threads == 1 { 1 } else { rayon::current_num_threads() });
    }
    pool_of(threads).install(|| f(threads))
}

/// Run `f` on a rayon pool of `threads` workers (0 = the global pool), for code that uses rayon directly
/// (so that threads = 1 means one thread, not the global pool).
fn pooled<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    if threads == 0 {
        return f();
    }
    pool_of(threads).install(f)
}

/// The cached rayon pool of `threads` workers.
fn pool_of(threads: usize) -> Arc<rayon::ThreadPool> {
    static POOLS: Mutex<Option<HashMap<usize, Arc<rayon::ThreadPool>>>> = Mutex::new(None);
    POOLS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(threads)
        .or_insert_with(|| Arc::new(rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()))
        .clone()
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

/// The flat batch arrays (see `neighbor_lists`), copied out of their buffers.
type BatchArrays = (Vec<[f64; 3]>, Vec<f64>, Vec<i64>, Vec<i64>);

fn read_batch(py: Python, positions: &PyAny, cells: &PyAny, pbc: &PyAny, offsets: &PyAny) -> PyResult<BatchArrays> {
    Ok((
        as_vec3(&read::<f64>(py, positions, "positions")?, "positions")?,
        read::<f64>(py, cells, "cells")?,
        read::<i64>(py, pbc, "pbc")?,
        read::<i64>(py, offsets, "offsets")?,
    ))
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
    guard(|| {
        let want = neighbors::Want::parse(quantities).map_err(value_error)?;
        let (positions, cells, pbc, offsets) = read_batch(py, positions, cells, pbc, offsets)?;
        let frames = frames(&positions, &cells, &pbc, &offsets)?;
        let (pairs, counts) = py
            .allow_threads(|| on_pool(threads, |n| neighbors::neighbor_lists(&frames, cutoff, want, n)))
            .map_err(value_error)?;
        let neighbors::Pairs { i, j, shift, distance, vector } = pairs;
        let out = PyDict::new(py);
        out.set_item("i", i64s(py, i)?)?;
        out.set_item("j", i64s(py, j)?)?;
        out.set_item("S", i64s(py, shift)?)?;
        out.set_item("d", f64s(py, distance)?)?;
        out.set_item("D", f64s(py, vector)?)?;
        out.set_item("counts", i64s(py, counts)?)?;
        Ok(out)
    })
}

/// OMFP fingerprints of a batch (layout as for `neighbor_lists`, plus numbers: int64 (n_atoms,)).
///
/// natx: largest sphere allowed (0 = size to the largest sphere). orbital: "s" or "sp".
/// Returns a dict: natx (int), fp (n_atoms, len), sphere (n_atoms,) and, with gradients, pairs
/// (n_entries, 2) batch-global (centre, atom) indices, grad (n_entries, 3, len), counts (entries per
/// structure) and, with stress, strain (n_atoms, 6, len).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn fingerprints<'py>(
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
                    let mut pairs = concat(outs.iter().map(|o| flat(&o.pairs)).collect(), parallel);
                    let counts: Vec<i64> = outs.iter().map(|o| o.pairs.len() as i64).collect();
                    let mut start = 0usize;
                    for (k, &c) in counts.iter().enumerate() {
                        for e in &mut pairs[2 * start..2 * (start + c as usize)] {
                            *e += offsets[k];
                        }
                        start += c as usize;
                    }
                    let cat = |f: &dyn Fn(&fingerprint::Output) -> &[f64]| concat(outs.iter().map(f).collect(), parallel);
                    let sphere = concat(outs.iter().map(|o| o.sphere.as_slice()).collect(), parallel);
                    Ok::<_, String>((natx, cat(&|o| &o.fp), sphere, pairs, cat(&|o| &o.grad), cat(&|o| &o.strain), counts))
                })
            })
            .map_err(value_error)?;
        let out = PyDict::new(py);
        out.set_item("natx", natx)?;
        out.set_item("fp", f64s(py, fp)?)?;
        out.set_item("sphere", i64s(py, sphere)?)?;
        out.set_item("pairs", i64s(py, pairs)?)?;
        out.set_item("grad", f64s(py, grad)?)?;
        out.set_item("strain", f64s(py, strain)?)?;
        out.set_item("counts", i64s(py, counts)?)?;
        Ok(out)
    })
}

/// Eigenvalues (ascending) and eigenvectors (rows) of a symmetric float64 (n, n) matrix.
#[pyfunction]
fn eigh(py: Python, a: &PyAny, n: usize, vectors: bool) -> PyResult<(Py<Array>, Py<Array>)> {
    guard(|| {
        let a = read::<f64>(py, a, "a")?;
        if a.len() != n * n {
            return Err(value_error(format!("a must be {n}×{n}; got {} numbers", a.len())));
        }
        let (vals, vecs) = py.allow_threads(|| linalg::eigh(&a, n, vectors));
        Ok((f64s(py, vals)?, f64s(py, vecs)?))
    })
}

/// Block offsets (int64, candidates + 1) as usize.
fn block_offsets(py: Python, offsets: &PyAny) -> PyResult<Vec<usize>> {
    let o = read::<i64>(py, offsets, "offsets")?;
    if o.iter().any(|&v| v < 0) {
        return Err(value_error("offsets must not be negative".into()));
    }
    Ok(o.into_iter().map(|v| v as usize).collect())
}

/// The dataset covariance state of `entropy::Covariance` (fingerprint rows of `d` numbers).
#[pyclass(module = "dael._core")]
#[derive(Clone)]
struct Covariance {
    inner: entropy::Covariance,
}

#[pymethods]
impl Covariance {
    /// A state of dimension d with diagonal shift eps; `n`, `mean` (d,), `scatter` (d, d) restore a saved one.
    #[new]
    fn new(py: Python, d: usize, eps: f64, n: f64, mean: Option<&PyAny>, scatter: Option<&PyAny>) -> PyResult<Self> {
        guard(|| {
            let inner = match (mean, scatter) {
                (Some(m), Some(s)) => {
                    entropy::Covariance::from_parts(d, eps, n, read(py, m, "mean")?, read(py, s, "scatter")?)
                }
                (None, None) if n == 0.0 => entropy::Covariance::new(d, eps),
                _ => Err("restore a state with n, mean and scatter together".into()),
            }
            .map_err(value_error)?;
            Ok(Covariance { inner })
        })
    }

    #[getter]
    fn d(&self) -> usize {
        self.inner.d
    }
    #[getter]
    fn eps(&self) -> f64 {
        self.inner.eps
    }
    #[getter]
    fn n(&self) -> f64 {
        self.inner.n
    }
    #[getter]
    fn mean(&self, py: Python) -> PyResult<Py<Array>> {
        f64s(py, self.inner.mean.clone())
    }
    #[getter]
    fn scatter(&self, py: Python) -> PyResult<Py<Array>> {
        f64s(py, self.inner.scatter.clone())
    }

    fn copy(&self) -> Self {
        self.clone()
    }

    /// H = log det(scatter/N + εI), nats.
    fn logdet(&self) -> PyResult<f64> {
        self.inner.try_logdet().ok_or_else(|| value_error("Σ + εI is not positive definite".into()))
    }

    /// Add rows x (m, d); rows that would leave Σ + εI not positive definite are refused (state unchanged).
    fn add(&mut self, py: Python, x: &PyAny) -> PyResult<()> {
        let x = read::<f64>(py, x, "x")?;
        let offsets = [0, x.len() / self.inner.d.max(1)];
        entropy::Blocks::new(&x, &offsets, self.inner.d).map_err(value_error)?;
        self.mutate(|inner| {
            inner.add(&x);
            inner.try_logdet().map(|_| ()).ok_or_else(|| {
                value_error("these rows would leave Σ + εI numerically singular (values far too large for ε)".into())
            })
        })
    }

    /// Exact gains ΔH of candidate blocks (rows x (total, d), offsets (candidates + 1,)).
    fn gains(&self, py: Python, x: &PyAny, offsets: &PyAny, threads: usize) -> PyResult<Py<Array>> {
        let (x, offsets) = (read::<f64>(py, x, "x")?, block_offsets(py, offsets)?);
        let blocks = entropy::Blocks::new(&x, &offsets, self.inner.d).map_err(value_error)?;
        let g = guard(|| Ok(py.allow_threads(|| pooled(threads, || self.inner.gains(&blocks)))))?;
        f64s(py, g)
    }

    /// Streaming acceptance in order (ΔH > h_min, at most `budget`): returns (gains, accepted as int64).
    fn stream(&mut self, py: Python, x: &PyAny, offsets: &PyAny, h_min: f64, budget: usize) -> PyResult<(Py<Array>, Py<Array>)> {
        let (x, offsets) = (read::<f64>(py, x, "x")?, block_offsets(py, offsets)?);
        let blocks = entropy::Blocks::new(&x, &offsets, self.inner.d).map_err(value_error)?;
        let (g, a) = self.mutate(|inner| Ok(py.allow_threads(|| inner.stream(&blocks, h_min, budget))))?;
        Ok((f64s(py, g)?, i64s(py, a.into_iter().map(i64::from).collect())?))
    }

    /// Greedy selection of up to `budget` candidates with ΔH > h_min: returns (picks int64, gains).
    #[allow(clippy::too_many_arguments)]
    fn greedy(
        &mut self,
        py: Python,
        x: &PyAny,
        offsets: &PyAny,
        budget: usize,
        h_min: f64,
        lazy: bool,
        threads: usize,
    ) -> PyResult<(Py<Array>, Py<Array>)> {
        let (x, offsets) = (read::<f64>(py, x, "x")?, block_offsets(py, offsets)?);
        let blocks = entropy::Blocks::new(&x, &offsets, self.inner.d).map_err(value_error)?;
        let picks =
            self.mutate(|inner| Ok(py.allow_threads(|| pooled(threads, || inner.greedy(&blocks, budget, h_min, lazy)))))?;
        Ok((i64s(py, picks.iter().map(|p| p.0 as i64).collect())?, f64s(py, picks.iter().map(|p| p.1).collect())?))
    }

    /// H after adding rows x (m, d), and ∂H/∂x (m, d).
    fn logdet_with(&self, py: Python, x: &PyAny) -> PyResult<(f64, Py<Array>)> {
        let x = read::<f64>(py, x, "x")?;
        let offsets = [0, x.len() / self.inner.d.max(1)];
        entropy::Blocks::new(&x, &offsets, self.inner.d).map_err(value_error)?;
        let (h, g) = guard(|| Ok(py.allow_threads(|| self.inner.logdet_with(&x))))?;
        Ok((h, f64s(py, g)?))
    }
}

impl Covariance {
    /// Run `f` on the state under `guard`; on an error (or a panic) the state is restored as it was, so a
    /// bad input never leaves it half-updated.
    fn mutate<R>(&mut self, f: impl FnOnce(&mut entropy::Covariance) -> PyResult<R>) -> PyResult<R> {
        let backup = self.inner.clone();
        let out = guard(|| f(&mut self.inner));
        if out.is_err() {
            self.inner = backup;
        }
        out
    }
}

/// Distance of every row of x (n, d) to its k-th nearest other row (exact).
#[pyfunction]
fn knn_distances(py: Python, x: &PyAny, n: usize, d: usize, k: usize, threads: usize) -> PyResult<Py<Array>> {
    guard(|| {
        let x = read::<f64>(py, x, "x")?;
        let r = py.allow_threads(|| pooled(threads, || entropy::knn_distances(&x, n, d, k))).map_err(value_error)?;
        f64s(py, r)
    })
}

/// Local entropy of one structure's fingerprints fp (n, len) and ∂S/∂fp (n, len).
#[pyfunction]
fn local_entropy(py: Python, fp: &PyAny, n: usize, len: usize, floor: f64) -> PyResult<(f64, Py<Array>)> {
    guard(|| {
        let fp = read::<f64>(py, fp, "fp")?;
        let (s, g) = py.allow_threads(|| entropy::local_entropy(&fp, n, len, floor)).map_err(value_error)?;
        Ok((s, f64s(py, g)?))
    })
}

/// Chain rule through one structure's fingerprint gradients: coef = ∂F/∂fp (n, len), pairs (E, 2) local,
/// grad (E, 3, len), strain (n, 6, len) or empty → (∂F/∂r (n, 3), ∂F/∂ε (6,) Voigt).
#[pyfunction]
fn chain(py: Python, coef: &PyAny, len: usize, pairs: &PyAny, grad: &PyAny, strain: &PyAny) -> PyResult<(Py<Array>, Py<Array>)> {
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
        Ok((f64s(py, flat(&f).to_vec())?, f64s(py, v.to_vec())?))
    })
}

#[pymodule]
fn _core(_py: Python, m: &PyModule) -> PyResult<()> {
    quiet_panics();
    m.add_function(wrap_pyfunction!(neighbor_lists, m)?)?;
    m.add_function(wrap_pyfunction!(eigh, m)?)?;
    m.add_function(wrap_pyfunction!(fingerprints, m)?)?;
    m.add_function(wrap_pyfunction!(knn_distances, m)?)?;
    m.add_function(wrap_pyfunction!(local_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(chain, m)?)?;
    m.add_class::<Array>()?;
    m.add_class::<Covariance>()?;
    Ok(())
}

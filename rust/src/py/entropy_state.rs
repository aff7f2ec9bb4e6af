//! `Covariance`: the dataset state of the global entropy, updated in place from Python.

use super::arrays::{array, read, Array};
use super::errors::{guard, value_error};
use super::threads::pooled;
use crate::entropy;
use pyo3::prelude::*;

/// The dataset covariance state of `entropy::Covariance` (fingerprint rows of `d` numbers).
#[pyclass(module = "dael._core")]
#[derive(Clone)]
pub struct Covariance {
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
        array(py, self.inner.mean.clone())
    }
    #[getter]
    fn scatter(&self, py: Python) -> PyResult<Py<Array>> {
        array(py, self.inner.scatter.clone())
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
        let x = self.rows(py, x)?;
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
        array(py, g)
    }

    /// Streaming acceptance in order (ΔH > h_min, at most `budget`): returns (gains, accepted as int64).
    fn stream(&mut self, py: Python, x: &PyAny, offsets: &PyAny, h_min: f64, budget: usize) -> PyResult<(Py<Array>, Py<Array>)> {
        let (x, offsets) = (read::<f64>(py, x, "x")?, block_offsets(py, offsets)?);
        let blocks = entropy::Blocks::new(&x, &offsets, self.inner.d).map_err(value_error)?;
        let (g, a) = self.mutate(|inner| Ok(py.allow_threads(|| inner.stream(&blocks, h_min, budget))))?;
        Ok((array(py, g)?, array(py, a.into_iter().map(i64::from).collect::<Vec<i64>>())?))
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
        let (index, gain): (Vec<i64>, Vec<f64>) = picks.into_iter().map(|(c, g)| (c as i64, g)).unzip();
        Ok((array(py, index)?, array(py, gain)?))
    }

    /// H after adding rows x (m, d), and ∂H/∂x (m, d).
    fn logdet_with(&self, py: Python, x: &PyAny) -> PyResult<(f64, Py<Array>)> {
        let x = self.rows(py, x)?;
        let (h, g) = guard(|| Ok(py.allow_threads(|| self.inner.logdet_with(&x))))?;
        Ok((h, array(py, g)?))
    }
}

impl Covariance {
    /// Rows x (m, d) of this state's dimension d, read and checked.
    fn rows(&self, py: Python, x: &PyAny) -> PyResult<Vec<f64>> {
        let x = read::<f64>(py, x, "x")?;
        entropy::Blocks::new(&x, &[0, x.len() / self.inner.d.max(1)], self.inner.d).map_err(value_error)?;
        Ok(x)
    }

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

/// Block offsets (int64, candidates + 1) as usize.
fn block_offsets(py: Python, offsets: &PyAny) -> PyResult<Vec<usize>> {
    let o = read::<i64>(py, offsets, "offsets")?;
    if o.iter().any(|&v| v < 0) {
        return Err(value_error("offsets must not be negative".into()));
    }
    Ok(o.into_iter().map(|v| v as usize).collect())
}

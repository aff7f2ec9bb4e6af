//! dael's native core: neighbour lists, OMFP fingerprints and entropies in pure Rust, and the Python
//! module `dael._core` over them (its PyO3 glue is in `py`).

pub mod entropy;
pub mod fingerprint;
pub mod linalg;
pub mod neighbors;
pub mod recycle;

mod py;

use pyo3::prelude::*;

#[pymodule]
fn _core(_py: Python, m: &PyModule) -> PyResult<()> {
    py::errors::quiet_panics();
    m.add_function(wrap_pyfunction!(py::neighbor_lists::neighbor_lists, m)?)?;
    m.add_function(wrap_pyfunction!(py::linalg::eigh, m)?)?;
    m.add_function(wrap_pyfunction!(py::fingerprints::fingerprints, m)?)?;
    m.add_function(wrap_pyfunction!(py::entropies::knn_distances, m)?)?;
    m.add_function(wrap_pyfunction!(py::entropies::local_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(py::fingerprints::chain, m)?)?;
    m.add_class::<py::arrays::Array>()?;
    m.add_class::<py::entropy_state::Covariance>()?;
    Ok(())
}

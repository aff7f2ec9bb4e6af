//! PyO3 glue: the functions and classes of `dael._core` (registered in `lib.rs`) over the pure-Rust core.
//!
//! Arrays arrive through the buffer protocol (C-contiguous numpy arrays of the documented dtype) and leave
//! as `arrays::Array`s that the Python side views with `numpy.frombuffer`. Numeric work runs with the GIL
//! released, on a rayon pool of the requested size (`threads`). Every entry point returns a `PyResult`,
//! checks sizes before allocating, and runs the numeric work under `errors::guard`: a Rust panic never crosses
//! into Python.

pub mod arrays;
pub mod batch;
pub mod entropies;
pub mod entropy_state;
pub mod errors;
pub mod fingerprints;
pub mod linalg;
pub mod neighbor_lists;
pub mod threads;

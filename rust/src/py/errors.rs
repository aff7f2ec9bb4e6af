//! Python errors from Rust ones: `ValueError`s for bad input, and panics caught before they reach Python.

use pyo3::exceptions::{PyMemoryError, PyValueError};
use pyo3::{PyErr, PyResult};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

pub fn value_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// Where the last panic happened (" at FILE:LINE"), recorded by the hook `quiet_panics` installs.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Record panics' locations instead of printing them: `guard` turns each into a Python error.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = place;
        }
    }));
}

/// Run `f`, turning a Rust panic (in it or in its rayon workers) into a Python MemoryError (allocation
/// failures) or ValueError instead of a PanicException, which `except Exception` does not catch.
pub fn guard<R>(f: impl FnOnce() -> PyResult<R>) -> PyResult<R> {
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

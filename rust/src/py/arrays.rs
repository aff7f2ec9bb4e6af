//! Arrays across the boundary: numpy buffers copied into Vecs, and native Vecs handed to Python without
//! copying, as `Array`s that export their memory through the (writable) buffer protocol.

use super::errors::value_error;
use crate::recycle;
use pyo3::buffer::{Element, PyBuffer};
use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::AsPyPointer;
use std::ffi::CString;
use std::os::raw::{c_int, c_void};

/// Copy a C-contiguous buffer of element type `T` into a Vec; `name` is used in errors.
pub fn read<T: Element + Copy>(py: Python, obj: &PyAny, name: &str) -> PyResult<Vec<T>> {
    let buf = PyBuffer::<T>::get(obj)
        .map_err(|e| value_error(format!("{name}: expected a contiguous array of {}: {e}", std::any::type_name::<T>())))?;
    buf.to_vec(py)
}

/// An owned native array handed to Python without copying: it exposes its bytes through the buffer
/// protocol (writable), and `numpy.frombuffer(array, dtype)` views them.
#[pyclass(module = "dael._core")]
pub struct Array {
    data: Store,
}

/// The elements of an `Array`: float64 or int64.
pub enum Store {
    F64(Vec<f64>),
    I64(Vec<i64>),
}

impl From<Vec<f64>> for Store {
    fn from(v: Vec<f64>) -> Self {
        Store::F64(v)
    }
}

impl From<Vec<i64>> for Store {
    fn from(v: Vec<i64>) -> Self {
        Store::I64(v)
    }
}

impl Store {
    /// The start and size in bytes of the elements, as a pointer that may be written through (taken from
    /// a mutable borrow of the owned Vec).
    fn bytes_mut(&mut self) -> (*mut u8, usize) {
        fn of<T>(v: &mut Vec<T>) -> (*mut u8, usize) {
            let size = std::mem::size_of_val(v.as_slice());
            (v.as_mut_ptr().cast(), size)
        }
        match self {
            Store::F64(v) => of(v),
            Store::I64(v) => of(v),
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
    /// Called by CPython with a valid `Py_buffer`. The pointer comes from a mutable borrow of the Vec,
    /// which is never resized or moved after construction (only dropped with the Array, which each view
    /// keeps alive through `view.obj`), so it stays valid, and writable, while any view lives.
    unsafe fn __getbuffer__(mut slf: PyRefMut<'_, Self>, view: *mut ffi::Py_buffer, flags: c_int) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("null buffer view"));
        }
        let (ptr, len) = slf.data.bytes_mut();
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

/// Hand `data` (a Vec of f64 or i64) to Python as an `Array`.
pub fn array(py: Python, data: impl Into<Store>) -> PyResult<Py<Array>> {
    Py::new(py, Array { data: data.into() })
}

/// Set each named array in the dict `out`.
pub fn put<const N: usize>(py: Python, out: &PyDict, items: [(&str, Store); N]) -> PyResult<()> {
    items.into_iter().try_for_each(|(name, data)| out.set_item(name, array(py, data)?))
}

/// View a slice of `[T; K]` as a flat slice of T.
pub fn flat<T, const K: usize>(v: &[[T; K]]) -> &[T] {
    // SAFETY: [T; K] is K contiguous Ts with the alignment of T.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const T, v.len() * K) }
}

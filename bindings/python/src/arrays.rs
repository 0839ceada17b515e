//! numpy arrays in, numpy arrays out: a 2-D float32 or float64 array, C or
//! Fortran order, read-only or a memory map, is borrowed without a copy as
//! the engine's [`DenseMatrix`]; results come back as new arrays.

use bpnet::Matrix;
use bpnet::data::preprocess::{DenseData, DenseMatrix, Layout};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// A borrowed 2-D numpy array of f32 or f64 (the borrow keeps it alive and
/// unmodified by other Rust code while the engine reads it).
pub enum Input<'py> {
    /// float32.
    F32(PyReadonlyArray2<'py, f32>),
    /// float64.
    F64(PyReadonlyArray2<'py, f64>),
}

impl<'py> Input<'py> {
    /// Borrows `x`, which must be a 2-D float32 or float64 ndarray (the
    /// Python layer converts everything else, or raises).
    pub fn new(x: &Bound<'py, PyAny>, what: &str) -> PyResult<Self> {
        if let Ok(a) = x.cast::<PyArray2<f32>>() {
            return Ok(Input::F32(a.try_readonly().map_err(borrow_error)?));
        }
        if let Ok(a) = x.cast::<PyArray2<f64>>() {
            return Ok(Input::F64(a.try_readonly().map_err(borrow_error)?));
        }
        Err(PyTypeError::new_err(format!(
            "{what} must be a 2-D numpy array of float32 or float64, got {}",
            x.get_type().name()?
        )))
    }

    /// The array as the engine's matrix, without a copy; an array that is
    /// neither C- nor Fortran-contiguous is an error (the Python layer
    /// makes such arrays contiguous first).
    pub fn dense(&self) -> PyResult<DenseMatrix<'_>> {
        let (rows, cols, c_order) = match self {
            Input::F32(a) => (a.shape()[0], a.shape()[1], a.is_c_contiguous()),
            Input::F64(a) => (a.shape()[0], a.shape()[1], a.is_c_contiguous()),
        };
        let not_contiguous = |_| PyValueError::new_err("the array is neither C- nor Fortran-contiguous");
        let data = match self {
            Input::F32(a) => DenseData::F32(a.as_slice().map_err(not_contiguous)?),
            Input::F64(a) => DenseData::F64(a.as_slice().map_err(not_contiguous)?),
        };
        let layout = if c_order { Layout::RowMajor } else { Layout::ColMajor };
        DenseMatrix::new(data, rows, cols, layout).map_err(crate::to_py)
    }
}

fn borrow_error(e: numpy::BorrowError) -> PyErr {
    PyValueError::new_err(format!("the array is being written elsewhere: {e}"))
}

/// An engine matrix as a new numpy array.
pub fn to_numpy<'py, T: numpy::Element + bpnet::Scalar>(
    py: Python<'py>,
    m: &Matrix<T>,
) -> PyResult<Bound<'py, PyArray2<T>>> {
    let a = Array2::from_shape_vec((m.rows(), m.cols()), m.as_slice().to_vec())
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(a.into_pyarray(py))
}

//! The native module `bpnet._bpnet` of the Python package `bpnet`: the
//! engine's training workflow, model files, inference and ONNX export for
//! numpy arrays. The scikit-learn estimators (python/bpnet) are thin
//! Python classes over [`model::NativeModel`].

mod arrays;
mod experiment;
mod members;
mod model;
mod onnx;
mod train;

use bpnet::Error;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

/// An engine error as the Python exception a user expects: bad values,
/// shapes, data and files are `ValueError`, missing files
/// `FileNotFoundError`, other I/O `OSError`, divergence `RuntimeError`.
pub(crate) fn to_py(e: Error) -> PyErr {
    let msg = python_words(target_location(e.to_string()));
    match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        Error::Io { .. } | Error::Output { .. } => PyOSError::new_err(msg),
        Error::Diverged { .. } | Error::State(_) => PyRuntimeError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

/// The engine's advice in Python's words: the estimators' parameters for
/// the command line's flags (a diverged fit said "Try a lower learning
/// rate (--lr) ... or --on-nan skip-batch"), and nothing about weights
/// kept (a fit that fails leaves the estimator unfitted).
fn python_words(msg: String) -> String {
    [
        (bpnet::error::DIVERGED_KEPT, ""),
        ("(--lr)", "(lr)"),
        ("(--batch-norm)", "(batch_norm=True)"),
        ("(--clip-grad-norm 1.0)", "(clip_grad_norm=1.0)"),
        ("--on-nan skip-batch", "on_nan='skip-batch'"),
        ("pass --overwrite", "pass overwrite=True"),
    ]
    .iter()
    .fold(msg, |m, (cli, py)| m.replace(cli, py))
}

/// An error about a target cell in array words: the engine reads `y` as a
/// CSV column and names the place `y: line 50, column 'col6'` (the line
/// 1-based, the column a headerless CSV's name for it, one past X's); X's
/// errors say `row 49`, 0-based. This gives `y: row 49` (`eval_set's y`
/// likewise), keeping a column name the user gave (a Series' name).
fn target_location(msg: String) -> String {
    let rewrite = |rest: &str, src: &str| -> Option<String> {
        let rest = rest.strip_prefix(": line ")?;
        let (line, rest) = rest.split_once(", column '")?;
        let row = line.parse::<u64>().ok()?.checked_sub(1)?;
        let (name, rest) = rest.split_once("': ")?;
        let auto = name
            .strip_prefix("col")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
        Some(match auto {
            true => format!("{src}: row {row}: {rest}"),
            false => format!("{src}: row {row}, column '{name}': {rest}"),
        })
    };
    ["eval_set's y", "y"]
        .iter()
        .find_map(|src| msg.strip_prefix(src).and_then(|rest| rewrite(rest, src)))
        .unwrap_or(msg)
}

/// A `RuntimeError` with `msg`.
pub(crate) fn state_err(msg: String) -> PyErr {
    PyRuntimeError::new_err(msg)
}

/// Lets bpnet use `n` threads (the caller included); returns the count in
/// effect. Results do not depend on it.
#[pyfunction]
fn set_threads(n: usize) -> usize {
    bpnet::set_threads(n)
}

/// The thread count in effect.
#[pyfunction]
fn threads() -> usize {
    bpnet::parallel::threads()
}

/// The cores this process may run on.
#[pyfunction]
fn available_cores() -> usize {
    bpnet::parallel::available()
}

/// In a child process after `os.fork()`: forgets the parent's thread team
/// (its workers do not exist in the child) and starts `n` threads afresh.
#[pyfunction]
fn restart_after_fork(n: usize) -> usize {
    bpnet::parallel::restart_after_fork(n)
}

/// The engine's version.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _bpnet(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<model::NativeModel>()?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads, m)?)?;
    m.add_function(wrap_pyfunction!(available_cores, m)?)?;
    m.add_function(wrap_pyfunction!(restart_after_fork, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(experiment::run_experiment, m)?)?;
    Ok(())
}

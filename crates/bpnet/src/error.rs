//! Typed errors. Every variant carries the context a user needs to act on it:
//! the file and line, the layer, the field or the shapes involved.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in bpnet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Two operands of an operation have incompatible shapes.
    #[error("shape mismatch in {op}: expected {expected}, got {got}")]
    Shape {
        /// The operation, e.g. `"dense forward"`.
        op: &'static str,
        /// The shape that was required.
        expected: String,
        /// The shape that was given.
        got: String,
    },
    /// Batch normalization in training mode needs more than one value per feature.
    #[error(
        "{layer}: batch normalization needs at least 2 rows per training batch, got {rows} \
         (use a larger batch, or drop/merge the last partial batch)"
    )]
    BatchTooSmall {
        /// Path of the layer, e.g. `layers.1`.
        layer: String,
        /// Rows in the offending batch.
        rows: usize,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid {field}: {reason}")]
    Config {
        /// The field or option, e.g. `dropout`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A class label is outside `0..classes`.
    #[error("label {label} in row {row} is out of range: the model has {classes} outputs")]
    Label {
        /// Row of the batch.
        row: usize,
        /// The label value.
        label: usize,
        /// Number of classes (output width).
        classes: usize,
    },
    /// Training produced a non-finite loss or gradient; `detail` ends with
    /// [`DIVERGED_KEPT`] when the trainer holds the weights from before the
    /// bad step (what `fit` does).
    #[error("training diverged at step {step}: {detail}. {}", diverged_advice(.detail))]
    Diverged {
        /// 1-based step at which it happened.
        step: usize,
        /// Where the first non-finite value appeared.
        detail: String,
    },
    /// An operation was called in a state that does not allow it.
    #[error("{0}")]
    State(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// An output of a command would replace one of its inputs, another of its
    /// outputs, or an existing file of another kind (see [`crate::io::OutputPlan`]).
    #[error("output {output} {problem}")]
    Output {
        /// The output as the user named it, e.g. `--out wine.csv`.
        output: String,
        /// What is wrong and what to do, e.g. `is the input --data wine.csv; choose another --out`.
        problem: String,
    },
    /// Ranks of a distributed run disagree, or their communication failed.
    #[error("distributed training: {0}")]
    Comm(String),
    /// A data file is malformed.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the byte offset, line or field where known.
        reason: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Config`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Shape`] from two displayable shapes.
    pub fn shape(op: &'static str, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            op,
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

/// What [`Error::Diverged`] advises: `--on-nan skip-batch` only to a run
/// that did not skip batches already (`detail` from `fit` says so), and
/// not where the last step's weights fail (no batch is left to skip).
fn diverged_advice(detail: &str) -> &'static str {
    match detail.contains("batches in a row skipped") || detail.contains("give non-finite outputs on") {
        true => {
            "Try a lower learning rate (--lr), batch normalization (--batch-norm) or gradient clipping \
             (--clip-grad-norm 1.0)"
        }
        false => {
            "Try a lower learning rate (--lr), batch normalization (--batch-norm), gradient clipping \
             (--clip-grad-norm 1.0), or --on-nan skip-batch"
        }
    }
}

/// The end of [`Error::Diverged`]'s detail from `fit`: the trainer holds
/// the weights from before the bad step (a caller that saves them, or not,
/// may say so instead).
pub const DIVERGED_KEPT: &str = "; the model keeps the weights from before this step";

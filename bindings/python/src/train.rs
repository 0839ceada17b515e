//! Training pieces shared by `fit` and `partial_fit`: targets from Python,
//! the column names a CSV of the same data would have, the network and
//! optimizer (as `bpnet train` builds them), and the training loop run with
//! the GIL released, checking for Ctrl-C after every epoch.

use crate::arrays::Input;
use crate::to_py;
use bpnet::data::preprocess::target_table;
use bpnet::data::{Dataset, Preprocessor, RawTable};
use bpnet::train::{Event, FitConfig, History, default_loss, fit};
use bpnet::workflow::{ArrayNames, Pipeline, Prepared, TrainConfig, model_spec, optimizer};
use bpnet::{Error, Loss, ModelSpec, Momentum, Optimizer, Sequential, Trainer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Targets as given from Python: class-label texts, or a float64 array of
/// values [rows, targets], each value written in its shortest round-trip
/// decimal form (what a CSV of the same numbers holds).
pub struct Targets(Vec<Vec<String>>);

impl Targets {
    /// Reads `y`: a list of strings (class labels) or a 2-D float64 array.
    pub fn new(y: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(labels) = y.extract::<Vec<String>>() {
            return Ok(Targets(labels.into_iter().map(|l| vec![l]).collect()));
        }
        let input = Input::new(y, "y")?;
        let dense = input.dense()?;
        let cells = (0..dense.rows())
            .map(|r| (0..dense.cols()).map(|c| cell_text(dense.get(r, c))).collect())
            .collect();
        Ok(Targets(cells))
    }

    fn width(&self) -> usize {
        self.0.first().map_or(1, Vec::len)
    }
}

/// `v` in its shortest round-trip form: with an exponent from 1e16 up
/// (`1.2573e299`, where the plain form wrote 300 digits, as an error
/// about the value showed them).
fn cell_text(v: f64) -> String {
    match v.abs() >= 1e16 {
        true => format!("{v:e}"),
        false => format!("{v}"),
    }
}

/// The names of the feature and target columns (`col0`... when
/// `feature_names` is None, as a headerless CSV), and the target table.
pub fn names_for(
    features: usize,
    feature_names: Option<Vec<String>>,
    target_names: Vec<String>,
    y: Targets,
) -> PyResult<(ArrayNames, RawTable)> {
    let width = y.width();
    let (names, targets) = match feature_names {
        Some(f) => (
            ArrayNames {
                features: f,
                header: true,
            },
            target_names,
        ),
        None => (
            ArrayNames::headerless(features),
            (features..features + width).map(|j| format!("col{j}")).collect(),
        ),
    };
    if targets.len() != width {
        return Err(PyValueError::new_err(format!(
            "{} target names for {width} target columns",
            targets.len()
        )));
    }
    let table = target_table(targets, y.0, names.header);
    Ok((names, table))
}

/// The evaluation set's target table, named like the training one.
pub fn eval_table(train: &RawTable, y: Targets) -> PyResult<RawTable> {
    same_width(&y, train.columns.len(), "eval_set's y")?;
    let mut table = target_table(train.columns.clone(), y.0, train.has_header);
    table.path = "eval_set's y".into();
    Ok(table)
}

/// A target table for new rows of a fitted model.
pub fn target_table_like(p: &Preprocessor, y: Targets) -> PyResult<RawTable> {
    same_width(&y, p.target_columns().len(), "y")?;
    Ok(target_table(p.target_columns().to_vec(), y.0, true))
}

/// `y` must have the `want` target columns the model was trained on (fewer
/// read past the end of a row; more were silently dropped).
fn same_width(y: &Targets, want: usize, what: &str) -> PyResult<()> {
    match y.width() == want {
        true => Ok(()),
        false => Err(PyValueError::new_err(format!(
            "{what} has {} target columns, but the model was trained on {want}",
            y.width()
        ))),
    }
}

/// The network and trainer of `bpnet train` for `data`, with batch
/// normalization's momentum and epsilon set.
pub fn build(
    cfg: &TrainConfig,
    data: &Prepared,
    bn_momentum: f64,
    bn_eps: f64,
) -> bpnet::Result<(ModelSpec, Trainer<f32>)> {
    let (opt, _) = optimizer(cfg)?;
    let mut spec = model_spec(cfg, data.train.features.cols(), data.train.outputs())?;
    spec.bn.momentum = Momentum::Torch(bn_momentum);
    spec.bn.eps = bn_eps;
    spec.validate()?;
    let model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
    let mut trainer = Trainer::new(model, Optimizer::new(opt)?, default_loss(&data.train));
    bpnet::workflow::apply_label_smoothing(&mut trainer, cfg)?;
    Ok((spec, trainer))
}

/// A trainer around a loaded model, with a fresh optimizer from `cfg`.
pub fn new_trainer(cfg: &TrainConfig, model: Sequential<f32>, pipeline: &Pipeline) -> bpnet::Result<Trainer<f32>> {
    let (opt, _) = optimizer(cfg)?;
    let loss = match pipeline {
        Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => Loss::Mse,
        _ => Loss::CrossEntropy,
    };
    let mut trainer = Trainer::new(model, Optimizer::new(opt)?, loss);
    bpnet::workflow::apply_label_smoothing(&mut trainer, cfg)?;
    Ok(trainer)
}

/// [`fit`] with the GIL released; a pending Ctrl-C (or other signal whose
/// handler raises) stops training after the current epoch and is raised.
pub fn fit_checked(
    py: Python<'_>,
    trainer: &mut Trainer<f32>,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
) -> PyResult<History> {
    fit_checked_named(py, trainer, train, val, cfg, |e| e)
}

/// [`fit_checked`], with `name` applied to a training error before it
/// becomes a Python exception (an ensemble member's divergence names it).
pub fn fit_checked_named(
    py: Python<'_>,
    trainer: &mut Trainer<f32>,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &FitConfig,
    name: impl FnOnce(Error) -> Error,
) -> PyResult<History> {
    let mut interrupt: Option<PyErr> = None;
    let result = py.detach(|| {
        let mut on_event = |e: Event<'_>| -> bpnet::Result<()> {
            if let Event::Epoch(..) = e
                && let Err(err) = Python::attach(|py| py.check_signals())
            {
                interrupt = Some(err);
                return Err(Error::State("interrupted".into()));
            }
            Ok(())
        };
        fit(trainer, train, val, cfg, &mut on_event)
    });
    if let Some(e) = interrupt {
        return Err(e);
    }
    result.map_err(|e| to_py(name(e)))
}

//! `NativeModel`: a trained network with its preprocessing, training
//! configuration and history, as the Python estimators hold it. Training
//! goes through the engine's workflow (the code `bpnet train` runs), so the
//! same data, options and seed give the same weights; prediction through the
//! fused inference network (as `bpnet eval` and `bpnet predict`).

use crate::arrays::{Input, to_numpy};
use crate::members::{combine_of, load_members, member_config, networks, train_others};
use crate::train::{Targets, fit_checked, names_for};
use crate::{state_err, to_py};
use bpnet::io::{ModelFile, blend_bytes, decode_model, load_model, member_specs, write_atomic};
use bpnet::layers::sigmoid;
use bpnet::train::{History, argmax};
use bpnet::workflow::{
    ArrayTable, Pipeline, TrainConfig, array_dataset, auto_ensemble, fit_config, load_arrays, load_arrays_increment,
    record_json,
};
use bpnet::{Combine, EnsembleNet, Error, Matrix, ModelSpec, Sequential, Trainer};
use numpy::PyArray2;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A trained bpnet network (or an ensemble of networks of one
/// architecture whose predictions are averaged), its preprocessing and its
/// history (member 0's).
#[pyclass(module = "bpnet._bpnet", name = "NativeModel")]
pub struct NativeModel {
    pub(crate) spec: ModelSpec,
    /// Member 0 (the only one for a single network).
    pub(crate) trainer: Trainer<f32>,
    /// Members 1..K of an ensemble (member k from seed `seed + k`).
    pub(crate) others: Vec<Trainer<f32>>,
    /// Their architectures (`spec` for each, unless the model was loaded
    /// from a blend, e.g. `bpnet tune`'s).
    pub(crate) other_specs: Vec<ModelSpec>,
    /// How the members' outputs are averaged.
    pub(crate) combine: Combine,
    pub(crate) pipeline: Pipeline,
    pub(crate) config: TrainConfig,
    pub(crate) history: History,
    pub(crate) notes: Vec<String>,
    /// Completed `partial_fit` calls (each shuffles with its own seed).
    pub(crate) increments: u64,
    /// The Python type of the class labels (`bool`, `int`, `float`, `str`)
    /// of a model trained from Python, kept in the file (`python_labels`)
    /// so that `bpnet.load` gives back the labels it was fitted on.
    pub(crate) label_kind: Option<String>,
    /// The number of dimensions of a Python regressor's `y` (1 or 2), kept
    /// in the file (`python_target_ndim`) so that a loaded model trained
    /// on y of shape (n, 1) still predicts (n, 1).
    pub(crate) target_ndim: Option<u8>,
    /// The fused inference networks, built at the first prediction and kept
    /// until training changes the weights (building them per call cost
    /// about 45 µs a network, most of a one-row prediction).
    pub(crate) net: OnceLock<EnsembleNet>,
}

impl NativeModel {
    /// The features of `x` through the stored preprocessing.
    fn features(&self, x: &bpnet::data::preprocess::DenseMatrix<'_>) -> bpnet::Result<Matrix<f32>> {
        let rows: Vec<usize> = (0..x.rows()).collect();
        match &self.pipeline {
            Pipeline::Table { preprocessor, .. } => preprocessor.transform_dense(x, &rows),
            Pipeline::Images { features } => {
                let mut m = raw_features(x, *features, "pixels")?;
                m.as_mut_slice().iter_mut().for_each(|v| *v /= 255.0);
                Ok(m)
            }
            Pipeline::Features { inputs, .. } => raw_features(x, *inputs, "input features"),
        }
    }

    /// Raw network outputs for `x` (logits, or standardized values); for
    /// an ensemble the averaged prediction as "logits" ([`EnsembleNet`]),
    /// as `bpnet predict` computes it.
    /// A row whose output is not finite is refused, naming it, as `bpnet
    /// predict` refuses it: an input far from its column's training
    /// values, scaled by their tiny spread, can grow past f32.
    fn outputs(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Matrix<f32>> {
        let input = Input::new(x, "X")?;
        let dense = input.dense()?;
        let out = py
            .detach(|| {
                let m = self.features(&dense)?;
                // In the groups `bpnet predict` runs a file in: the same bits.
                self.inference_net()?
                    .forward_in_groups(&m, bpnet::workflow::stream::GROUP)
            })
            .map_err(to_py)?;
        match bpnet::workflow::first_non_finite(&out) {
            Some((r, what)) => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "X: row {r}: {}",
                bpnet::workflow::non_finite_reason(what)
            ))),
            None => Ok(out),
        }
    }

    /// The cached inference networks (built on first use).
    fn inference_net(&self) -> bpnet::Result<&EnsembleNet> {
        if let Some(net) = self.net.get() {
            return Ok(net);
        }
        let net = EnsembleNet::of(self.networks(), self.combine)?;
        // Another thread may have built it meanwhile: either is the same.
        Ok(self.net.get_or_init(|| net))
    }

    /// Every member's network, member 0 first.
    pub(crate) fn networks(&self) -> impl Iterator<Item = &Sequential<f32>> {
        networks(&self.trainer, &self.others)
    }

    /// The model file's bytes; `what` names it in errors.
    fn file_bytes(&self, what: &Path) -> PyResult<Vec<u8>> {
        let specs = std::iter::once(&self.spec).chain(&self.other_specs);
        let members: Vec<(&ModelSpec, &Sequential<f32>)> = specs.zip(self.networks()).collect();
        blend_bytes(what, &members, self.combine, &self.metadata()?).map_err(to_py)
    }

    /// The model file's metadata sections.
    fn metadata(&self) -> PyResult<Map<String, Value>> {
        let mut m = Map::new();
        let h = &self.history;
        let v = |r: serde_json::Result<Value>| r.map_err(|e| state_err(e.to_string()));
        m.insert("preprocessing".into(), v(serde_json::to_value(&self.pipeline))?);
        m.insert("training".into(), v(serde_json::to_value(&self.config))?);
        m.insert(
            "history".into(),
            json!({"epochs": h.epochs.len(), "best_epoch": h.best_epoch, "stopped_early": h.stopped_early,
                   "final": h.epochs.last().map(record_json)}),
        );
        m.insert("history_records".into(), v(serde_json::to_value(&h.epochs))?);
        if let Some(kind) = &self.label_kind {
            m.insert("python_labels".into(), Value::String(kind.clone()));
        }
        if let Some(ndim) = self.target_ndim {
            m.insert("python_target_ndim".into(), json!(ndim));
        }
        Ok(m)
    }

    fn from_file(file: ModelFile, path: &Path) -> PyResult<Self> {
        let pipeline = Pipeline::of_model(&file, path).map_err(to_py)?;
        let config: TrainConfig = match file.metadata.get("training") {
            Some(t) => TrainConfig::from_recorded(t)
                .map_err(|e| state_err(format!("{}: invalid training section: {e}", path.display())))?,
            None => TrainConfig::default(),
        };
        let mut history = History::default();
        if let Some(records) = file.metadata.get("history_records") {
            history.epochs = serde_json::from_value(records.clone()).unwrap_or_default();
        }
        if let Some(best) = file
            .metadata
            .get("history")
            .and_then(|h| h.get("best_epoch"))
            .and_then(Value::as_u64)
        {
            history.best_epoch = best as usize;
        }
        let label_kind = file
            .metadata
            .get("python_labels")
            .and_then(Value::as_str)
            .map(str::to_string);
        let target_ndim = file
            .metadata
            .get("python_target_ndim")
            .and_then(Value::as_u64)
            .filter(|n| matches!(n, 1 | 2))
            .map(|n| n as u8);
        let (mut trainers, combine) = load_members(&file, path, &config, &pipeline).map_err(to_py)?;
        let others = trainers.split_off(1);
        let other_specs = member_specs(&file, path).map_err(to_py)?.split_off(1);
        let trainer = trainers
            .pop()
            .ok_or_else(|| state_err("a model file without a network".into()))?;
        Ok(NativeModel {
            spec: file.spec,
            trainer,
            others,
            other_specs,
            combine,
            pipeline,
            config,
            history,
            notes: Vec::new(),
            increments: 0,
            label_kind,
            target_ndim,
            net: OnceLock::new(),
        })
    }
}

/// A file at `path` that holds another kind of file than `kind` (a CSV
/// where a model would be saved) is replaced only with `overwrite`, as
/// `bpnet` replaces it only with `--overwrite`.
fn check_replaceable(path: &Path, kind: bpnet::io::Kind, overwrite: bool) -> PyResult<()> {
    match bpnet::io::kind_conflict(path, kind).filter(|_| !overwrite) {
        Some(why) => Err(pyo3::exceptions::PyFileExistsError::new_err(format!(
            "{} {why}; pass overwrite=True to replace it",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// The columns of `x` as f32 features, checked to be the `width` `what`
/// the model takes.
fn raw_features(x: &bpnet::data::preprocess::DenseMatrix<'_>, width: usize, what: &str) -> bpnet::Result<Matrix<f32>> {
    if x.cols() != width {
        return Err(Error::config(
            "X",
            format!("{} columns, but the model takes {width} {what}", x.cols()),
        ));
    }
    let mut data = Vec::with_capacity(x.rows() * x.cols());
    for r in 0..x.rows() {
        for c in 0..x.cols() {
            data.push(x.get(r, c) as f32);
        }
    }
    Matrix::from_vec(x.rows(), x.cols(), data)
}

fn config_from(json: &str) -> PyResult<TrainConfig> {
    serde_json::from_str(json).map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("invalid parameters: {e}")))
}

#[pymethods]
impl NativeModel {
    /// Trains a new model as `bpnet train` does: `config` is the training
    /// configuration as JSON (the keys of `bpnet train --print-config`),
    /// `x` a float32/float64 array [rows, features], `y` the targets (a list
    /// of class-label texts, or a float64 array [rows, targets]),
    /// `feature_names` the column names (None: headerless, `col0`...),
    /// `target_names` the target column names; `eval_x`/`eval_y` replace the
    /// validation split. `bn_momentum`/`bn_eps`: batch normalization's
    /// running-average momentum (PyTorch convention) and epsilon.
    #[staticmethod]
    #[pyo3(signature = (config, x, y, feature_names, target_names, eval_x=None, eval_y=None, bn_momentum=0.1, bn_eps=1e-5))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        py: Python<'_>,
        config: &str,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        feature_names: Option<Vec<String>>,
        target_names: Vec<String>,
        eval_x: Option<&Bound<'_, PyAny>>,
        eval_y: Option<&Bound<'_, PyAny>>,
        bn_momentum: f64,
        bn_eps: f64,
    ) -> PyResult<Self> {
        let mut cfg = config_from(config)?;
        cfg.data = "<arrays>".into();
        let input = Input::new(x, "X")?;
        let dense = input.dense()?;
        let (names, y_table) = names_for(dense.cols(), feature_names, target_names, Targets::new(y)?)?;
        let train = ArrayTable { x: dense, y: y_table };
        let eval_input = eval_x.map(|e| Input::new(e, "eval X")).transpose()?;
        let eval = match (&eval_input, eval_y) {
            (Some(ei), Some(ey)) => {
                let table = crate::train::eval_table(&train.y, Targets::new(ey)?)?;
                Some(ArrayTable {
                    x: ei.dense()?,
                    y: table,
                })
            }
            (None, None) => None,
            _ => return Err(pyo3::exceptions::PyValueError::new_err("give both eval X and eval y")),
        };
        let data = py
            .detach(|| load_arrays(&cfg, &train, &names, eval.as_ref()))
            .map_err(to_py)?;
        let (spec, mut trainer) = crate::train::build(&cfg, &data, bn_momentum, bn_eps).map_err(to_py)?;
        let (opt_full, has_val) = (bpnet::workflow::optimizer(&cfg).map_err(to_py)?.1, data.val.is_some());
        let fit_cfg = fit_config(&cfg, opt_full, has_val).map_err(to_py)?;
        let history = fit_checked(py, &mut trainer, &data.train, data.val.as_ref(), &fit_cfg)?;
        cfg.ensemble = auto_ensemble(cfg.ensemble, true, data.train.len(), true);
        let others = train_others(py, &cfg, cfg.ensemble, &data, (bn_momentum, bn_eps))?;
        let combine = combine_of(&trainer);
        let mut notes = data.notes;
        notes.extend(history.notes.iter().cloned());
        if cfg.ensemble > 1 {
            notes.push(ensemble_note(cfg.ensemble, combine));
        }
        Ok(NativeModel {
            other_specs: vec![spec.clone(); others.len()],
            spec,
            trainer,
            others,
            combine,
            pipeline: data.pipeline,
            config: cfg,
            history,
            notes,
            increments: 0,
            label_kind: None,
            target_ndim: None,
            net: OnceLock::new(),
        })
    }

    /// The first `partial_fit`: fits the preprocessing on these rows
    /// (classes from `classes` when given), builds the network and trains
    /// one epoch over them.
    #[staticmethod]
    #[pyo3(signature = (config, x, y, feature_names, target_names, classes=None, bn_momentum=0.1, bn_eps=1e-5))]
    #[allow(clippy::too_many_arguments)]
    fn start_partial(
        py: Python<'_>,
        config: &str,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        feature_names: Option<Vec<String>>,
        target_names: Vec<String>,
        classes: Option<Vec<String>>,
        bn_momentum: f64,
        bn_eps: f64,
    ) -> PyResult<Self> {
        let mut cfg = config_from(config)?;
        cfg.data = "<arrays>".into();
        let input = Input::new(x, "X")?;
        let dense = input.dense()?;
        let (names, y_table) = names_for(dense.cols(), feature_names, target_names, Targets::new(y)?)?;
        let train = ArrayTable { x: dense, y: y_table };
        let data = py
            .detach(|| load_arrays_increment(&cfg, &train, &names, classes.as_deref()))
            .map_err(to_py)?;
        // Rows arrive in parts, so the default (0) is one network here.
        cfg.ensemble = cfg.ensemble.max(1);
        let (spec, trainer) = crate::train::build(&cfg, &data, bn_momentum, bn_eps).map_err(to_py)?;
        let others = (1..cfg.ensemble)
            .map(|m| crate::train::build(&member_config(&cfg, m), &data, bn_momentum, bn_eps).map(|b| b.1))
            .collect::<bpnet::Result<Vec<_>>>()
            .map_err(to_py)?;
        let combine = combine_of(&trainer);
        let mut model = NativeModel {
            other_specs: vec![spec.clone(); others.len()],
            spec,
            trainer,
            others,
            combine,
            pipeline: data.pipeline,
            config: cfg,
            history: History::default(),
            notes: data.notes,
            increments: 0,
            label_kind: None,
            target_ndim: None,
            net: OnceLock::new(),
        };
        model.epoch_on(py, &data.train)?;
        Ok(model)
    }

    /// One more epoch over `x`, `y` (a later `partial_fit`), continuing the
    /// optimizer's state.
    fn partial_fit(&mut self, py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>) -> PyResult<()> {
        let input = Input::new(x, "X")?;
        let dense = input.dense()?;
        let Pipeline::Table { preprocessor, .. } = &self.pipeline else {
            return Err(state_err("partial_fit needs a model trained on a table".into()));
        };
        let table = crate::train::target_table_like(preprocessor, Targets::new(y)?)?;
        let rows: Vec<usize> = (0..dense.rows()).collect();
        let t = ArrayTable { x: dense, y: table };
        let data = py.detach(|| array_dataset(preprocessor, &t, &rows)).map_err(to_py)?;
        self.epoch_on(py, &data)
    }

    /// Raw outputs [rows, outputs] (float32): class logits, or the
    /// standardized regression values.
    fn decision_function<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        to_numpy(py, &self.outputs(py, x)?)
    }

    /// Class indices [rows] (the first highest logit, as `bpnet predict`).
    fn predict_classes(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Vec<usize>> {
        let out = self.outputs(py, x)?;
        Ok((0..out.rows()).map(|r| argmax(out.row(r))).collect())
    }

    /// Class probabilities [rows, classes] (float32): the softmax that
    /// `bpnet predict` prints, or the sigmoid for one output.
    fn predict_proba<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let z = self.outputs(py, x)?;
        let mut p = Vec::with_capacity(z.as_slice().len());
        for r in 0..z.rows() {
            let row = z.row(r);
            if row.len() == 1 {
                p.push(sigmoid(row[0]));
                continue;
            }
            let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let e: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            p.extend(e.iter().map(|v| v / sum));
        }
        to_numpy(py, &Matrix::from_vec(z.rows(), z.cols(), p).map_err(to_py)?)
    }

    /// Regression predictions [rows, targets] (float64) in the targets'
    /// units, as `bpnet predict` prints them.
    fn predict_values<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let out = self.outputs(py, x)?;
        let values = match &self.pipeline {
            Pipeline::Table { preprocessor, .. } => preprocessor.decode_targets(&out),
            Pipeline::Images { .. } | Pipeline::Features { .. } => out.cast(),
        };
        to_numpy(py, &values)
    }

    /// Writes the model file (the format `bpnet train` writes; an ensemble
    /// as `bpnet train --ensemble K` writes it).
    #[pyo3(signature = (path, overwrite=false))]
    fn save(&self, path: PathBuf, overwrite: bool) -> PyResult<()> {
        check_replaceable(&path, bpnet::io::Kind::Model, overwrite)?;
        write_atomic(&path, &self.file_bytes(&path)?).map_err(to_py)
    }

    /// Reads a model file written by `bpnet train` or by `save`.
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        let file = load_model(&path).map_err(to_py)?;
        Self::from_file(file, &path)
    }

    /// The model file as bytes (for pickling).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.file_bytes(Path::new("<pickle>"))?))
    }

    /// A model from `to_bytes`.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        let path = Path::new("<pickle>");
        let file = decode_model(data, path).map_err(to_py)?;
        Self::from_file(file, path)
    }

    /// Writes the model as ONNX (as `bpnet export`), preprocessing included;
    /// returns the notes on float32's precision that `bpnet export` prints.
    #[pyo3(signature = (path, probabilities=false, fold_bn=false, opset=None, input_f64=false, overwrite=false))]
    fn to_onnx(
        &self,
        path: PathBuf,
        probabilities: bool,
        fold_bn: bool,
        opset: Option<i64>,
        input_f64: bool,
        overwrite: bool,
    ) -> PyResult<Vec<String>> {
        check_replaceable(&path, bpnet::io::Kind::Onnx, overwrite)?;
        crate::onnx::export(self, &path, (probabilities, fold_bn), opset, input_f64).map_err(to_py)
    }

    /// Class names in output order (None for regression).
    #[getter]
    fn class_names(&self) -> Option<Vec<String>> {
        match &self.pipeline {
            Pipeline::Table { preprocessor, .. } => preprocessor.class_names().map(|c| c.to_vec()),
            p => p.class_names(),
        }
    }

    /// `classify` or `regress`.
    /// The Python type of the class labels, when trained from Python.
    #[getter]
    fn label_kind(&self) -> Option<String> {
        self.label_kind.clone()
    }

    #[setter]
    fn set_label_kind(&mut self, kind: Option<String>) {
        self.label_kind = kind;
    }

    /// The number of dimensions of the `y` a Python regressor was fitted
    /// on (1 or 2), when trained from Python.
    #[getter]
    fn target_ndim(&self) -> Option<u8> {
        self.target_ndim
    }

    #[setter]
    fn set_target_ndim(&mut self, ndim: Option<u8>) -> PyResult<()> {
        if !matches!(ndim, None | Some(1) | Some(2)) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "target_ndim must be 1, 2 or None",
            ));
        }
        self.target_ndim = ndim;
        Ok(())
    }

    /// Batch normalization's (momentum in PyTorch's convention, epsilon),
    /// as the model was built; momentum None when it is not PyTorch's.
    #[getter]
    fn bn_settings(&self) -> (Option<f64>, f64) {
        let bn = &self.spec.bn;
        let momentum = match bn.momentum {
            bpnet::Momentum::Torch(m) => Some(m),
            bpnet::Momentum::Keras(m) => Some(1.0 - m),
            bpnet::Momentum::Cumulative => None,
        };
        (momentum, bn.eps)
    }

    #[getter]
    fn task(&self) -> &'static str {
        match &self.pipeline {
            Pipeline::Table { preprocessor, .. } if preprocessor.class_names().is_none() => "regress",
            _ => "classify",
        }
    }

    /// Input column names (None for images or a headerless table).
    #[getter]
    fn feature_names(&self) -> Option<Vec<String>> {
        match &self.pipeline {
            Pipeline::Table {
                preprocessor,
                header: true,
                ..
            } => Some(preprocessor.features().iter().map(|f| f.name.clone()).collect()),
            _ => None,
        }
    }

    /// Target column names.
    #[getter]
    fn target_names(&self) -> Vec<String> {
        match &self.pipeline {
            Pipeline::Table { preprocessor, .. } => preprocessor.target_columns().to_vec(),
            Pipeline::Images { .. } => vec!["label".into()],
            Pipeline::Features { outputs, .. } => (0..*outputs).map(|i| format!("output_{i}")).collect(),
        }
    }

    /// Number of input columns the model takes.
    #[getter]
    fn n_features(&self) -> usize {
        match &self.pipeline {
            Pipeline::Table { preprocessor, .. } => preprocessor.features().len(),
            Pipeline::Images { features } => *features,
            Pipeline::Features { inputs, .. } => *inputs,
        }
    }

    /// The training configuration as JSON.
    #[getter]
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.config).map_err(|e| state_err(e.to_string()))
    }

    /// The per-epoch history as JSON (a list of records).
    #[getter]
    fn history_json(&self) -> String {
        Value::Array(self.history.epochs.iter().map(record_json).collect()).to_string()
    }

    /// The epoch whose weights the model holds; whether early stopping ended training.
    #[getter]
    fn best_epoch(&self) -> usize {
        self.history.best_epoch
    }

    /// True if early stopping ended training.
    #[getter]
    fn stopped_early(&self) -> bool {
        self.history.stopped_early
    }

    /// Notes from preprocessing and training (task detection, dropped batches...).
    #[getter]
    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    /// The architecture, one layer a line (every member has it).
    #[getter]
    fn summary(&self) -> String {
        self.trainer.model.summary()
    }

    /// Networks whose predictions are averaged (1: a single network).
    #[getter]
    fn members(&self) -> usize {
        1 + self.others.len()
    }

    /// Every trainable parameter by name, as float32 arrays: member 0's as
    /// `layers.0.weight`..., member k's as `ensemble.{k}.layers.0.weight`...
    /// (the names of the model file).
    fn tensors<'py>(&self, py: Python<'py>) -> PyResult<Vec<(String, Bound<'py, PyArray2<f32>>)>> {
        let mut out = Vec::new();
        for (k, net) in self.networks().enumerate() {
            let prefix = if k == 0 {
                String::new()
            } else {
                format!("ensemble.{k}.")
            };
            for layer in net.layers() {
                let mut err = None;
                layer.params(&mut |p| match to_numpy(py, &p.value) {
                    Ok(a) => out.push((format!("{prefix}{}", p.name), a)),
                    Err(e) => err = Some(e),
                });
                if let Some(e) = err {
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}

/// The note an ensemble's training leaves (what `bpnet train` prints).
fn ensemble_note(k: usize, combine: Combine) -> String {
    let what = match combine {
        Combine::Softmax => "softmax probabilities",
        Combine::Sigmoid => "sigmoid probabilities",
        Combine::Mean => "values",
    };
    format!("ensemble of {k} networks: predictions averaged ({what})")
}

impl NativeModel {
    /// One epoch over `data` for every member (a `partial_fit` call),
    /// member 0's appended to the history. Member k shuffles with seed
    /// `seed + k + calls so far`.
    fn epoch_on(&mut self, py: Python<'_>, data: &bpnet::data::Dataset) -> PyResult<()> {
        let mut cfg = self.config.clone();
        cfg.epochs = 1;
        cfg.steps = 0;
        cfg.patience = 0;
        cfg.seed = cfg.seed.wrapping_add(self.increments);
        let full = cfg.optimizer == "gd";
        let fit_cfg = fit_config(&cfg, full, false).map_err(to_py)?;
        // The weights change: the cached inference networks are stale.
        self.net = OnceLock::new();
        let h = fit_checked(py, &mut self.trainer, data, None, &fit_cfg)?;
        for (m, other) in self.others.iter_mut().enumerate() {
            let member_cfg = fit_config(&member_config(&cfg, m + 1), full, false).map_err(to_py)?;
            fit_checked(py, other, data, None, &member_cfg)?;
        }
        self.increments += 1;
        let done = self.history.epochs.last().map_or((0, 0), |r| (r.epoch, r.step));
        for mut r in h.epochs {
            r.epoch += done.0;
            r.step += done.1;
            self.history.epochs.push(r);
        }
        self.history.best_epoch = self.history.epochs.len();
        self.notes.extend(h.notes);
        Ok(())
    }
}

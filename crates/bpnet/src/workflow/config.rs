//! The training configuration: every option of `bpnet train`, with the
//! tool's defaults. The command-line tool reads it from TOML and flags; the
//! Python package from an estimator's parameters; both train through
//! [`super::train`], so the same configuration gives the same model.

use serde::{Deserialize, Serialize};

/// A fully resolved training configuration (the TOML file's schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// `mnist`, a CSV file, or a folder of MNIST-format IDX files.
    pub data: String,
    /// Target column(s) of a CSV, by name or 0-based index (default: the last column).
    pub target: Vec<String>,
    /// `auto`, `classify` or `regress`.
    pub task: String,
    /// The CSV has no header row.
    pub no_header: bool,
    /// The CSV's first line names the columns, whatever it holds (without
    /// this or `no_header` it is detected: a first line holding a number is
    /// read as data).
    pub header: bool,
    /// CSV field delimiter.
    pub delimiter: char,
    /// Fill missing numeric cells: `none`, `mean` or `median`.
    pub impute: String,
    /// Feature scaling: `auto` (z-score for CSV, none for images), `zscore`, `minmax`, `none`.
    pub scaling: String,
    /// Hidden layer widths, comma-separated.
    pub hidden: String,
    /// Hidden activation.
    pub activation: String,
    /// Batch normalization in every hidden block.
    pub batch_norm: bool,
    /// Put batch normalization after the activation instead of before it.
    pub bn_after: bool,
    /// Which normalization: `batch`, `renorm[:rmax[:dmax[:warmup[:rmax_steps[:dmax_steps]]]]]`,
    /// `ghost:N`, `layer` or `none` (`none`, like `batch_norm = false`, means
    /// no normalization layer; placement follows `bn_after`).
    pub norm: String,
    /// Dropout rate after each hidden block.
    pub dropout: f64,
    /// Label smoothing of the cross-entropy loss in training, in `[0, 1)`
    /// (0: none; classification only; see `Loss::forward_backward_smoothed`).
    pub label_smoothing: f64,
    /// Weight initialization.
    pub init: String,
    /// `gd` (full batch), `sgd`, `momentum`, `nesterov`, `adam`, `adamw`, `rmsprop`, `adagrad`.
    pub optimizer: String,
    /// Learning rate; 0 = the optimizer's default.
    pub lr: f64,
    /// Choose the learning rate with a learning-rate range test before
    /// training (`--lr auto`); the rate found is stored in `lr`.
    pub lr_auto: bool,
    /// Momentum for `momentum` and `nesterov`.
    pub momentum: f64,
    /// Weight decay (L2; decoupled for adamw), applied as it stands.
    pub weight_decay: f64,
    /// Marks a configuration recorded since adamw's decay is applied as it
    /// stands (always true when written now). A recorded one without it
    /// (a checkpoint or model file of an earlier build) trained adamw's 0
    /// as [`ADAMW_DECAY`]: [`TrainConfig::from_recorded`] reads it so.
    pub weight_decay_as_given: bool,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Passes over the training set.
    pub epochs: usize,
    /// Train for this many steps instead (0 = use epochs).
    pub steps: usize,
    /// Learning-rate schedule.
    pub schedule: String,
    /// Fraction of the training rows held out for validation (0 = none).
    pub val_split: f64,
    /// A separate labelled test file (CSV, or IDX folder); empty = none.
    pub test: String,
    /// Fraction held out for testing when no test file is given (0 = none).
    pub test_split: f64,
    /// Early-stopping patience in epochs (0 = off; needs validation).
    pub patience: usize,
    /// Smallest improvement that resets the patience.
    pub min_delta: f64,
    /// `val_loss` or `val_metric` (accuracy or R²).
    pub monitor: String,
    /// Use only the first N training rows (0 = all).
    pub limit: usize,
    /// Seed for splits, weights, shuffling and dropout.
    pub seed: u64,
    /// Model file to write.
    pub out: String,
    /// Write a resumable checkpoint (`NAME.ckpt.safetensors`) every N epochs (0 = never).
    pub checkpoint_every: usize,
    /// Also write one every N steps (0 = never).
    pub checkpoint_steps: usize,
    /// On a non-finite loss or gradient: `stop` or `skip-batch`.
    pub on_nan: String,
    /// Rescale gradients to this global L2 norm at most (0 = off).
    pub clip_grad_norm: f64,
    /// Train this many networks (seeds `seed`, `seed + 1`, ...) and average
    /// their predictions in one model file (1 = a single network; 0 = the
    /// default, chosen by [`auto_ensemble`]).
    pub ensemble: usize,
    /// Record per-layer diagnostics in the history (`--diagnostics`).
    pub diagnostics: bool,
    /// Draw the history as figures after training (`--plot`).
    pub plot: bool,
    /// Batch normalization across processes (`mpirun`): `global` statistics
    /// of the whole batch, or `local` ones of each process's rows.
    pub bn_sync: String,
    /// Read the data in chunks instead of all at once: `auto` (when it
    /// would not fit in memory), `on` or `off`.
    pub stream: String,
    /// Rows of the shuffle buffer when streaming (0: from the memory available).
    pub shuffle_buffer: usize,
}

impl TrainConfig {
    /// The CSV header setting: `Some(true)` with `header`, `Some(false)`
    /// with `no_header`, `None` (detect it) with neither; both are an error.
    pub fn header_option(&self) -> crate::Result<Option<bool>> {
        match (self.header, self.no_header) {
            (true, true) => Err(crate::Error::config(
                "--header",
                "contradicts --no-header (give one: the first line names the columns, or it is data)",
            )),
            (true, false) => Ok(Some(true)),
            (false, true) => Ok(Some(false)),
            (false, false) => Ok(None),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: "mnist".into(),
            target: Vec::new(),
            task: "auto".into(),
            no_header: false,
            header: false,
            delimiter: ',',
            impute: "none".into(),
            scaling: "auto".into(),
            hidden: "100,100".into(),
            activation: "relu".into(),
            batch_norm: true,
            bn_after: false,
            norm: "batch".into(),
            dropout: 0.0,
            label_smoothing: 0.0,
            init: "he_normal".into(),
            optimizer: "adam".into(),
            lr: 0.0,
            lr_auto: false,
            momentum: 0.9,
            weight_decay: 0.0,
            weight_decay_as_given: true,
            batch_size: 128,
            epochs: 100,
            steps: 0,
            schedule: "constant".into(),
            val_split: 0.1,
            test: String::new(),
            test_split: 0.0,
            patience: 20,
            min_delta: 0.0,
            monitor: "val_loss".into(),
            limit: 0,
            seed: 0,
            out: "model.safetensors".into(),
            checkpoint_every: 0,
            checkpoint_steps: 0,
            on_nan: "stop".into(),
            clip_grad_norm: 0.0,
            ensemble: 0,
            diagnostics: false,
            plot: false,
            bn_sync: "global".into(),
            stream: "auto".into(),
            shuffle_buffer: 0,
        }
    }
}

impl TrainConfig {
    /// A configuration recorded in a checkpoint or model file (its
    /// `training` section), as it trained: one written before
    /// `weight_decay_as_given` existed trained adamw's recorded 0 with
    /// [`ADAMW_DECAY`], and is read with that decay.
    pub fn from_recorded(section: &serde_json::Value) -> Result<TrainConfig, serde_json::Error> {
        let mut cfg: TrainConfig = serde_json::from_value(section.clone())?;
        if section.get("weight_decay_as_given").is_none() {
            if cfg.optimizer.trim() == "adamw" && cfg.weight_decay == 0.0 {
                cfg.weight_decay = ADAMW_DECAY;
            }
            cfg.weight_decay_as_given = true;
        }
        Ok(cfg)
    }
}

/// The weight decay the command line gives adamw when none is set (as
/// PyTorch's `AdamW` and [`crate::optim::OptimizerConfig::adamw`]); a
/// [`TrainConfig`]'s `weight_decay` is applied as it stands, 0 included.
pub const ADAMW_DECAY: f64 = 0.01;

/// Networks in an ensemble when `ensemble` is 0 (the default) for a table
/// held in memory with at most [`AUTO_ENSEMBLE_ROWS`] training rows.
pub const AUTO_ENSEMBLE: usize = 5;

/// The most networks an ensemble may have (`--ensemble`): a bound on an
/// absurd request, refused before anything trains (10^12 aborted
/// allocating their configurations after member 0 had trained).
pub const MAX_ENSEMBLE: usize = 1000;

/// The most training rows for which the default trains an ensemble.
pub const AUTO_ENSEMBLE_ROWS: usize = 50_000;

/// The members to train when `ensemble` is 0: [`AUTO_ENSEMBLE`] for a
/// table (`table`) of at most [`AUTO_ENSEMBLE_ROWS`] training rows trained
/// in one process (`plain`: no `mpirun`, no checkpoints, no `--resume`),
/// else 1. Chosen on the tabular benchmark's choice half (docs/TABULAR.md):
/// averaging 5 networks was at least as good as scikit-learn's MLP on all
/// 8 of its sets, one network on 4. Any other value is kept.
pub fn auto_ensemble(ensemble: usize, table: bool, train_rows: usize, plain: bool) -> usize {
    match ensemble {
        0 if table && plain && train_rows <= AUTO_ENSEMBLE_ROWS => AUTO_ENSEMBLE,
        0 => 1,
        k => k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ensemble_is_five_only_for_small_plain_tables() {
        assert_eq!(auto_ensemble(0, true, 1, true), AUTO_ENSEMBLE);
        assert_eq!(auto_ensemble(0, true, AUTO_ENSEMBLE_ROWS, true), AUTO_ENSEMBLE);
        assert_eq!(auto_ensemble(0, true, AUTO_ENSEMBLE_ROWS + 1, true), 1);
        assert_eq!(auto_ensemble(0, false, 100, true), 1);
        assert_eq!(auto_ensemble(0, true, 100, false), 1);
        for k in [1, 2, 7] {
            assert_eq!(auto_ensemble(k, true, 100, true), k);
            assert_eq!(auto_ensemble(k, false, 10_000_000, false), k);
        }
        assert_eq!(TrainConfig::default().ensemble, 0);
    }

    #[test]
    fn a_recorded_adamw_without_the_marker_trained_with_the_default_decay() {
        let mut old = serde_json::to_value(TrainConfig {
            optimizer: "adamw".into(),
            ..TrainConfig::default()
        })
        .unwrap();
        old.as_object_mut().unwrap().remove("weight_decay_as_given");
        assert_eq!(TrainConfig::from_recorded(&old).unwrap().weight_decay, ADAMW_DECAY);
        // Written now, 0 stands; other optimizers and set decays are kept.
        let now = serde_json::to_value(TrainConfig {
            optimizer: "adamw".into(),
            ..TrainConfig::default()
        })
        .unwrap();
        assert_eq!(TrainConfig::from_recorded(&now).unwrap().weight_decay, 0.0);
        for (optimizer, decay) in [("adam", 0.0), ("adamw", 1e-3)] {
            let mut old = serde_json::to_value(TrainConfig {
                optimizer: optimizer.into(),
                weight_decay: decay,
                ..TrainConfig::default()
            })
            .unwrap();
            old.as_object_mut().unwrap().remove("weight_decay_as_given");
            assert_eq!(TrainConfig::from_recorded(&old).unwrap().weight_decay, decay);
        }
    }
}

//! A training run as the command-line tool and the Python package do it:
//! a [`TrainConfig`] (every option of `bpnet train`, with its defaults),
//! the data it names loaded, split and preprocessed ([`load`], giving a
//! [`Prepared`] and the [`Pipeline`] stored in the model file), the network,
//! optimizer and loop built from it ([`model_spec`], [`optimizer`],
//! [`fit_config`]), test [`metrics`], and the model file's [`metadata`].
//! The same configuration, data and seed give the same model, bit for bit,
//! whichever front end runs it.

mod arrays;
mod config;
mod cv;
mod data;
mod features;
mod folds;
mod lr_auto;
mod metadata;
mod metrics;
mod run;
mod setup;
pub mod stream;
mod table;

pub use arrays::{ArrayNames, ArrayTable, array_dataset, load_arrays, load_arrays_increment};
pub use config::{ADAMW_DECAY, AUTO_ENSEMBLE, AUTO_ENSEMBLE_ROWS, MAX_ENSEMBLE, TrainConfig, auto_ensemble};
pub use cv::{CvReport, FoldScore, cross_validate, run_fold, run_fold_members, run_fold_with, table_folds};
pub use data::{Pipeline, Prepared, data_path, data_sha256, labelled, labelled_with, load, table_dataset, unlabelled};
pub use features::{feature_dataset, feature_matrix, missing_target};
pub use folds::{kfold, mean_sd};
pub use lr_auto::{auto_lr_rate, lr_range_test, resolve_lr_auto};
pub use metadata::{Metadata, metadata, record_json};
pub use metrics::{
    HeldOut, TestMetrics, check_finite_outputs, ensemble_metrics, ensemble_metrics_held_out, first_non_finite, metrics,
    metrics_held_out, metrics_split, non_finite_reason,
};
pub use run::{
    Trained, TrainedEnsemble, combine_for, member_config, name_member, train_each, train_ensemble,
    train_further_members, train_further_members_kept, train_prepared,
};
pub use setup::{apply_label_smoothing, fit_config, model_spec, optimizer, optimizer_config};
pub use table::{TableSource, open_table, prepare_rows};

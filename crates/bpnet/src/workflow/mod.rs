//! A training run as the command-line tool and the Python package do it:
//! a [`TrainConfig`] (every option of `bpnet train`, with its defaults),
//! the data it names loaded, split and preprocessed ([`load`], giving a
//! [`Prepared`] and the [`Pipeline`] stored in the model file), the network,
//! optimizer and loop built from it ([`model_spec`], [`optimizer`],
//! [`fit_config`]), test [`metrics`], and the model file's [`metadata`].
//! The same configuration, data and seed give the same model, bit for bit,
//! whichever front end runs it.

mod config;
mod data;
mod metadata;
mod metrics;
mod setup;

pub use config::TrainConfig;
pub use data::{Pipeline, Prepared, data_path, labelled, load, table_dataset, unlabelled};
pub use metadata::{Metadata, metadata, record_json};
pub use metrics::{TestMetrics, metrics, metrics_split};
pub use setup::{fit_config, model_spec, optimizer, optimizer_config};

//! The metadata sections a trained model file carries: the preprocessing,
//! the training configuration, a history summary and the test metrics.

use super::config::TrainConfig;
use super::data::Prepared;
use crate::train::{EpochRecord, History};
use serde_json::{Value, json};

/// One epoch as JSON.
pub fn record_json(r: &EpochRecord) -> Value {
    json!({
        "epoch": r.epoch, "step": r.step, "train_loss": r.train_loss, "val_loss": r.val_loss,
        "val_metric": r.val_metric, "lr": r.lr, "seconds": r.seconds,
    })
}

/// The model file's metadata sections, written straight to JSON (for a wide
/// table the preprocessing section is large).
#[derive(serde::Serialize)]
pub struct Metadata<'a> {
    /// How raw input becomes features.
    pub preprocessing: &'a super::data::Pipeline,
    /// The resolved configuration.
    pub training: &'a TrainConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Epochs, best epoch, early stop, the last epoch's record.
    pub history: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Every epoch's record (as `NAME.history.json` holds them), so that a
    /// model loaded elsewhere (Python's `history_`) keeps its history.
    pub history_records: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Metrics on the test rows.
    pub test_metrics: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// SHA-256 of the training data ([`super::data_sha256`]), in checkpoints:
    /// a resumed run must read the same bytes.
    pub data_sha256: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// A streamed run's shuffle buffer and chunk size, in checkpoints: what
    /// its batch order depends on beyond the seed, so that a resume under
    /// other memory or settings continues the same order.
    pub stream: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The diagnostics collected so far ([`crate::train::diagnostics::Diagnostics::saved`]),
    /// in checkpoints of a run with diagnostics: its resume continues them.
    pub diagnostics: Option<Value>,
}

impl<'a> Metadata<'a> {
    /// These sections with the training data's SHA-256, where known.
    pub fn with_data_sha256(self, sha: Option<&'a str>) -> Self {
        Metadata {
            data_sha256: sha,
            ..self
        }
    }

    /// These sections with a streamed run's settings.
    pub fn with_stream(self, stream: Option<Value>) -> Self {
        Metadata { stream, ..self }
    }

    /// These sections with the diagnostics collected so far.
    pub fn with_diagnostics(self, diagnostics: Option<Value>) -> Self {
        Metadata { diagnostics, ..self }
    }
}

/// The sections of a model trained with `cfg` on `data`.
pub fn metadata<'a>(
    cfg: &'a TrainConfig,
    data: &'a Prepared,
    history: Option<&History>,
    test: Option<&'a Value>,
) -> Metadata<'a> {
    Metadata {
        preprocessing: &data.pipeline,
        training: cfg,
        history: history.map(|h| {
            json!({
                "epochs": h.epochs.len(), "best_epoch": h.best_epoch, "stopped_early": h.stopped_early,
                "final": h.epochs.last().map(record_json),
            })
        }),
        history_records: history.and_then(|h| serde_json::to_value(&h.epochs).ok()),
        test_metrics: test,
        data_sha256: None,
        stream: None,
        diagnostics: None,
    }
}

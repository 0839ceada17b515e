//! One training run from a configuration and prepared data, without files:
//! what `bpnet train` does between loading and saving, for cross-validation,
//! ensembles and the tuner.

use super::config::TrainConfig;
use super::data::Prepared;
use super::setup::{fit_config, model_spec, optimizer};
use crate::train::{Event, History, default_loss, fit_resume};
use crate::{ModelSpec, Optimizer, Result, Sequential, Trainer};

/// A trained network: its architecture, the trainer (model, optimizer,
/// loss) and the history.
pub struct Trained {
    /// The architecture.
    pub spec: ModelSpec,
    /// The model (best epoch's weights under early stopping) and its optimizer.
    pub trainer: Trainer<f32>,
    /// Per-epoch records.
    pub history: History,
}

/// Builds the network of `cfg` (weights seeded by `cfg.seed`) and trains it
/// on `data.train`, validating on `data.val`; `on_event` sees every event.
pub fn train_prepared(
    cfg: &TrainConfig,
    data: &Prepared,
    on_event: &mut dyn FnMut(Event<'_>) -> Result<()>,
) -> Result<Trained> {
    let (opt, full_batch) = optimizer(cfg)?;
    let spec = model_spec(cfg, data.train.features.cols(), data.train.outputs())?;
    let model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
    let mut trainer = Trainer::new(model, Optimizer::new(opt)?, default_loss(&data.train));
    super::setup::apply_label_smoothing(&mut trainer, cfg)?;
    let fit_cfg = fit_config(cfg, full_batch, data.val.is_some())?;
    let history = fit_resume(&mut trainer, &data.train, data.val.as_ref(), &fit_cfg, None, on_event)?;
    Ok(Trained { spec, trainer, history })
}

//! Training checkpoints: a model file (loadable by [`load_model`] like any
//! other) that also carries everything needed to continue the run exactly —
//! the optimizer's buffers as `optimizer.{param}.{slot}` tensors, the best
//! weights under early stopping as `best.{tensor}` tensors, and, in the
//! `resume` metadata section, the training loop's state (step, epoch,
//! history, batch order and its random stream, early-stopping and plateau
//! state), the optimizer's step count and learning rate, and each dropout
//! layer's random stream.

use super::model_file::{ExtraTensor, ModelFile, load_model, save_sections};
use super::sections::section_texts;
use super::tensors::{Values, assign, model_layout, model_tensors};
use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::model::{ModelSpec, Sequential};
use crate::optim::Optimizer;
use crate::train::{FitState, Resume, Trainer};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The `resume` metadata section. Every number reads back bit for bit (see
/// [`crate::train::exact`]): counts as JSON integers, `f64`s as shortest
/// round-trip text.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeSection {
    state: FitState,
    optimizer_steps: u64,
    #[serde(with = "crate::train::exact")]
    lr: f64,
    dropout_rngs: Vec<Xoshiro256PlusPlus>,
    has_best: bool,
    /// The best model's batch-norm batch counts, in layer order: exact, where
    /// its `best.*.num_batches_tracked` tensors are F32 (exact only to 2^24,
    /// kept for older readers). Absent in older checkpoints.
    #[serde(default)]
    best_batches: Option<Vec<u64>>,
}

/// A checkpoint read back: the model file and what [`crate::train::fit_resume`] needs.
#[derive(Debug, Clone)]
pub struct RunCheckpoint {
    /// The model file (weights, running statistics, metadata).
    pub file: ModelFile,
    /// Loop state and best weights.
    pub resume: Resume,
    optimizer_steps: u64,
    lr: f64,
    /// The file it was read from (named in errors).
    path: std::path::PathBuf,
}

/// Writes a checkpoint of `trainer` (built from `spec`) at loop state `state`
/// to `path`, atomically, with the free-form `metadata` sections.
pub fn save_run<M: Serialize + ?Sized>(
    path: &Path,
    spec: &ModelSpec,
    trainer: &Trainer<f32>,
    state: &FitState,
    best: Option<&Sequential<f32>>,
    metadata: &M,
) -> Result<()> {
    let section = ResumeSection {
        state: state.clone(),
        optimizer_steps: trainer.optimizer.steps(),
        lr: trainer.optimizer.lr(),
        dropout_rngs: dropout_layers(&trainer.model).map(|d| d.rng().clone()).collect(),
        has_best: best.is_some(),
        best_batches: best.map(batch_counts),
    };
    let not_saved = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason: format!("not saved: {reason}"),
    };
    let mut sections = section_texts(metadata).map_err(not_saved)?;
    let resume = serde_json::to_string(&section).map_err(|e| not_saved(e.to_string()))?;
    sections.insert("resume".into(), resume);
    let mut extra: Vec<ExtraTensor> = trainer
        .optimizer
        .export_state(&trainer.model)
        .into_iter()
        .map(|t| ExtraTensor {
            name: format!("optimizer.{}", t.name),
            shape: vec![t.values.len()],
            values: t.values,
        })
        .collect();
    if let Some(b) = best {
        extra.extend(as_extra(b, "best."));
    }
    save_sections(path, spec, &trainer.model, sections, &extra)
}

/// Reads a checkpoint written by [`save_run`].
pub fn load_run(path: &Path) -> Result<RunCheckpoint> {
    let mut file = load_model(path)?;
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let raw = file.metadata.remove("resume").ok_or_else(|| {
        bad("a model file without training state: resume needs a checkpoint written with --checkpoint-every".into())
    })?;
    let section: ResumeSection =
        serde_json::from_value(raw).map_err(|e| bad(format!("invalid `resume` metadata: {e}")))?;
    section
        .state
        .batches
        .check()
        .map_err(|e| bad(format!("invalid `resume` metadata: {e}")))?;
    let mut rngs = section.dropout_rngs.into_iter();
    for layer in file.model.layers_mut() {
        if let Layer::Dropout(d) = layer {
            d.set_rng(
                rngs.next()
                    .ok_or_else(|| bad("fewer dropout streams than dropout layers".into()))?,
            );
        }
    }
    let best = match section.has_best {
        true => {
            let mut model = from_extra(&file.spec, &file.extra, "best.").map_err(bad)?;
            if let Some(counts) = &section.best_batches {
                set_batch_counts(&mut model, counts).map_err(bad)?;
            }
            Some(model)
        }
        false => None,
    };
    Ok(RunCheckpoint {
        file,
        resume: Resume {
            state: section.state,
            best,
        },
        optimizer_steps: section.optimizer_steps,
        lr: section.lr,
        path: path.to_path_buf(),
    })
}

impl RunCheckpoint {
    /// Restores the optimizer's buffers, step count and learning rate into
    /// `optimizer` (configured as for the original run) for `model`.
    pub fn restore_optimizer(&self, optimizer: &mut Optimizer<f32>, model: &mut Sequential<f32>) -> Result<()> {
        let state: HashMap<String, Vec<f32>> = self
            .file
            .extra
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("optimizer.")?.to_string(), v.clone())))
            .collect();
        optimizer
            .import_state(model, self.optimizer_steps, self.lr, &state)
            .map_err(|e| Error::Format {
                path: self.path.clone(),
                reason: match e {
                    Error::State(reason) => reason,
                    e => e.to_string(),
                },
            })
    }
}

/// The batch count of every batch-norm layer of `model`, in layer order.
fn batch_counts(model: &Sequential<f32>) -> Vec<u64> {
    model
        .layers()
        .iter()
        .filter_map(|l| match l {
            Layer::BatchNorm(bn) => Some(bn.running.batches),
            _ => None,
        })
        .collect()
}

/// Sets the batch counts read by [`batch_counts`].
fn set_batch_counts(model: &mut Sequential<f32>, counts: &[u64]) -> Result<(), String> {
    let mut it = counts.iter();
    for l in model.layers_mut() {
        if let Layer::BatchNorm(bn) = l {
            bn.running.batches = *it.next().ok_or("fewer best batch counts than batch-norm layers")?;
        }
    }
    match it.next() {
        Some(_) => Err("more best batch counts than batch-norm layers".into()),
        None => Ok(()),
    }
}

fn dropout_layers(model: &Sequential<f32>) -> impl Iterator<Item = &crate::layers::Dropout<f32>> {
    model.layers().iter().filter_map(|l| match l {
        Layer::Dropout(d) => Some(d),
        _ => None,
    })
}

/// The model's tensors as f32 extra tensors named `{prefix}{name}` (batch
/// counts as f32, exact below 2^24: the exact ones are in the `resume`
/// section's `best_batches`).
pub(super) fn as_extra(model: &Sequential<f32>, prefix: &str) -> Vec<ExtraTensor> {
    model_tensors(model)
        .into_iter()
        .map(|t| {
            let values = match t.dtype {
                safetensors::Dtype::I64 => {
                    vec![i64::from_le_bytes(t.bytes[..8].try_into().unwrap_or([0; 8])) as f32]
                }
                _ => t
                    .bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            };
            ExtraTensor {
                name: format!("{prefix}{}", t.name),
                shape: vec![values.len()],
                values,
            }
        })
        .collect()
}

/// Rebuilds a model of `spec` from `{prefix}{name}` extra tensors.
pub(super) fn from_extra(
    spec: &ModelSpec,
    extra: &HashMap<String, Vec<f32>>,
    prefix: &str,
) -> Result<Sequential<f32>, String> {
    let mut model = Sequential::<f32>::zeroed(spec).map_err(|e| e.to_string())?;
    for t in model_layout(&model) {
        let v = extra
            .get(&format!("{prefix}{}", t.name))
            .ok_or_else(|| format!("missing tensor `{prefix}{}`", t.name))?;
        let need: usize = t.shape.iter().product();
        if v.len() != need {
            return Err(format!(
                "tensor `{prefix}{}` has {} values, the model needs {need}",
                t.name,
                v.len()
            ));
        }
        let values = match t.dtype {
            safetensors::Dtype::I64 => Values::Count(v.first().copied().unwrap_or(0.0) as u64),
            _ => Values::F32(v.clone()),
        };
        assign(&mut model, &t.name, values)?;
    }
    Ok(model)
}

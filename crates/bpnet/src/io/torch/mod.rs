//! Importing a PyTorch MLP: an `nn.Sequential` of `Linear`, `BatchNorm1d`,
//! activation and dropout modules whose `state_dict()` was saved with
//! `safetensors.torch.save_file`, as a bpnet model.
//!
//! Names are `{prefix}{index}.{field}`, e.g. `0.weight` or
//! `layers.1.running_mean`. Index `i` holding a 2-D `weight` is a Linear
//! layer (weights `[out, in]`, bpnet's layout too); one holding running
//! statistics is a BatchNorm1d layer (with its weight and bias, or none:
//! every BN layer alike). Indices
//! without tensors are activations or dropout: their kinds come from
//! [`TorchImportOptions::modules`] (the whole module list) or, where the
//! positions make it unambiguous, from [`TorchImportOptions::activation`].
//!
//! Conventions: PyTorch's BN `momentum` (default 0.1) is bpnet's default
//! [`Momentum::Torch(0.1)`](crate::Momentum::Torch); `num_batches_tracked`
//! becomes the running statistics' batch count; eps and momentum are not in a
//! state dict and default to PyTorch's (1e-5, 0.1). A Linear bias right
//! before a BN layer (which bpnet's Dense layers there lack) is absorbed into
//! that BN's running mean, `running_mean - bias`, which leaves the function
//! unchanged in training and at inference.

mod modules;
mod state_dict;

pub use modules::{TorchModule, parse_modules};

use crate::error::{Error, Result};
use crate::init::Init;
use crate::layers::{Activation, BatchNormConfig, Layer};
use crate::model::{ModelSpec, Sequential};
use modules::{blocks, infer_modules};
use state_dict::{Group, StateDict, Values, read_state_dict};
use std::path::Path;

/// How to read a PyTorch state dict.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchImportOptions {
    /// Every module of the `nn.Sequential`, one per index (see
    /// [`parse_modules`]); `None` infers them from the tensors.
    pub modules: Option<Vec<TorchModule>>,
    /// The hidden activation, needed when inferring a network with hidden
    /// layers.
    pub activation: Option<Activation>,
    /// Dropout rate of an inferred dropout module (PyTorch's default 0.5);
    /// it matters only for further training.
    pub dropout: f64,
    /// Batch-norm eps and momentum (PyTorch's defaults).
    pub bn: BatchNormConfig,
}

impl Default for TorchImportOptions {
    fn default() -> Self {
        TorchImportOptions {
            modules: None,
            activation: None,
            dropout: 0.5,
            bn: BatchNormConfig::default(),
        }
    }
}

/// An imported network.
#[derive(Debug, Clone)]
pub struct TorchImport {
    /// Its architecture (the init field is PyTorch's Linear default; the
    /// weights are the imported ones).
    pub spec: ModelSpec,
    /// The network with the imported parameters and running statistics.
    pub model: Sequential<f32>,
    /// The PyTorch module list, as read or inferred.
    pub modules: Vec<TorchModule>,
    /// `(bpnet name, PyTorch name)` of every imported tensor.
    pub names: Vec<(String, String)>,
    /// What the import assumed or converted, for the user.
    pub notes: Vec<String>,
}

/// Imports the state dict in the safetensors file at `path`.
pub fn import_torch(path: &Path, options: &TorchImportOptions) -> Result<TorchImport> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let format = |reason| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    if matches!(
        super::sniff::sniff(path),
        super::sniff::Found::Model | super::sniff::Found::Checkpoint
    ) {
        // Its preprocessing would be dropped without a word.
        return Err(format(
            "a bpnet model file already (bpnet predict, eval and export read it as it is); import reads a PyTorch \
             state_dict saved with safetensors"
                .into(),
        ));
    }
    let sd = read_state_dict(&bytes).map_err(format)?;
    build(sd, options).map_err(|e| match e {
        Error::Config { field, reason } => format(format!("{field}: {reason}")),
        other => other,
    })
}

fn build(mut sd: StateDict, options: &TorchImportOptions) -> Result<TorchImport> {
    let len = sd.groups.keys().next_back().map_or(0, |&i| i + 1);
    let mut kinds = vec![None; len];
    for (&i, g) in &sd.groups {
        kinds[i] = Some(g.kind(i).map_err(|e| Error::config("state dict", e))?);
    }
    let modules = match &options.modules {
        Some(m) => {
            check_against_spec(m, &kinds, &sd.prefix)?;
            m.clone()
        }
        None => infer_modules(&kinds, options.activation, options.dropout)?,
    };
    let b = blocks(&modules)?;
    // Widths from the Linear weights, checked to chain.
    let mut dims = Vec::with_capacity(b.linears.len() + 1);
    for &i in &b.linears {
        let w = weight_of(&sd.groups, i)?;
        match dims.last() {
            None => dims.extend([w.shape[1], w.shape[0]]),
            Some(&prev) if prev == w.shape[1] => dims.push(w.shape[0]),
            Some(&prev) => {
                return Err(Error::config(
                    "state dict",
                    format!(
                        "`{}` has shape {:?} but the layer before outputs {prev} features",
                        w.name, w.shape
                    ),
                ));
            }
        }
    }
    let mut bn = options.bn.clone();
    bn.track_running_stats = true;
    bn.affine = bn_affine(&sd, &modules)?.unwrap_or(bn.affine);
    let spec = ModelSpec {
        dims,
        activation: b.activation,
        batch_norm: b.placement,
        bn,
        dropout: b.dropout,
        init: Init::TorchDefault,
    };
    let mut model = Sequential::<f32>::from_spec(&spec, 0)?;
    let mut notes = std::mem::take(&mut sd.notes);
    let names = assign_all(&mut model, &modules, &sd, &mut notes)?;
    if options.modules.is_none() && b.linears.len() > 1 {
        notes.push(format!(
            "modules inferred from the tensors: {}",
            modules.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(TorchImport {
        spec,
        model,
        modules,
        names,
        notes,
    })
}

/// Whether the BN modules have a weight and bias (`affine`), the same for
/// every one (bpnet's layers share one setting; the first one's decided
/// for all, and another's tensors were dropped silently); `None` without BN.
fn bn_affine(sd: &StateDict, modules: &[TorchModule]) -> Result<Option<bool>> {
    let mut first: Option<(usize, bool)> = None;
    for (i, m) in modules.iter().enumerate() {
        if *m != TorchModule::BatchNorm {
            continue;
        }
        let g = sd.groups.get(&i).cloned().unwrap_or_default();
        let affine = g.weight.is_some() || g.bias.is_some();
        match first {
            None => first = Some((i, affine)),
            Some((j, a)) if a != affine => {
                let has = |x: bool| {
                    if x {
                        "a weight and bias"
                    } else {
                        "no weight and bias (affine=False)"
                    }
                };
                return Err(Error::config(
                    "state dict",
                    format!(
                        "BatchNorm1d {j} has {} but BatchNorm1d {i} has {}; bpnet's batch-norm layers share one setting",
                        has(a),
                        has(affine)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(first.map(|(_, a)| a))
}

/// The spec's module kinds must match where the state dict has tensors.
fn check_against_spec(spec: &[TorchModule], kinds: &[Option<TorchModule>], prefix: &str) -> Result<()> {
    if kinds.len() > spec.len() {
        return Err(Error::config(
            "--spec",
            format!(
                "it lists {} modules but the state dict has tensors for `{prefix}{}`",
                spec.len(),
                kinds.len() - 1
            ),
        ));
    }
    for (i, m) in spec.iter().enumerate() {
        let found = kinds.get(i).copied().flatten();
        let ok = match found {
            Some(k) => k == *m,
            None => !m.has_tensors(),
        };
        if !ok {
            let what = found.map_or("no tensors".to_string(), |k| format!("the tensors of a {k:?}"));
            return Err(Error::config(
                "--spec",
                format!("module {i} is {m:?} in the spec but `{prefix}{i}.*` holds {what}"),
            ));
        }
    }
    Ok(())
}

fn weight_of(groups: &std::collections::BTreeMap<usize, Group>, i: usize) -> Result<&Values> {
    groups
        .get(&i)
        .and_then(|g| g.weight.as_ref())
        .ok_or_else(|| Error::config("state dict", format!("module {i} has no weight")))
}

/// Copies every tensor into `model`, whose Dense and BN layers come in the
/// same order as the Linear and BN modules. Returns the name pairs.
fn assign_all(
    model: &mut Sequential<f32>,
    modules: &[TorchModule],
    sd: &StateDict,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, String)>> {
    let torch: Vec<usize> = (0..modules.len()).filter(|&i| modules[i].has_tensors()).collect();
    let ours: Vec<usize> = (0..model.layers().len())
        .filter(|&i| matches!(model.layers()[i], Layer::Dense(_) | Layer::BatchNorm(_)))
        .collect();
    if torch.len() != ours.len() {
        return Err(Error::State(format!(
            "internal: {} modules with tensors but {} bpnet layers with parameters",
            torch.len(),
            ours.len()
        )));
    }
    let mut names = Vec::new();
    // A Linear bias that bpnet's Dense layer lacks, for the BN that follows.
    let mut carried: Option<Values> = None;
    for (&ti, &li) in torch.iter().zip(&ours) {
        let g = sd.groups.get(&ti).cloned().unwrap_or_default();
        let path = format!("layers.{li}");
        // A tensor must have the shape PyTorch's module gives it (as its
        // load_state_dict requires), not only as many values.
        let mut put = |field: &str, v: &Values, dst: &mut [f32], shape: &[usize]| -> Result<()> {
            if v.data.len() != dst.len() || v.shape != shape {
                return Err(Error::config(
                    "state dict",
                    format!(
                        "`{}` has shape {:?}; bpnet's `{path}.{field}` needs shape {shape:?}",
                        v.name, v.shape
                    ),
                ));
            }
            dst.copy_from_slice(&v.data);
            names.push((format!("{path}.{field}"), v.name.clone()));
            Ok(())
        };
        match &mut model.layers_mut()[li] {
            Layer::Dense(d) => {
                let w = g
                    .weight
                    .as_ref()
                    .ok_or_else(|| Error::config("state dict", format!("module {ti} has no weight")))?;
                let (out, inp) = (d.out_features(), d.in_features());
                put("weight", w, d.weight.value.as_mut_slice(), &[out, inp])?;
                match (&mut d.bias, g.bias) {
                    (Some(b), Some(v)) => put("bias", &v, b.value.as_mut_slice(), &[out])?,
                    (Some(b), None) => {
                        // `from_spec` drew a random bias: a bias-free Linear's is zero.
                        b.value.as_mut_slice().fill(0.0);
                        notes.push(format!("module {ti} has no bias: bpnet's `{path}.bias` is zero"))
                    }
                    (None, v) => carried = v,
                }
            }
            Layer::BatchNorm(bn) => {
                if let Some((gamma, beta)) = &mut bn.affine {
                    let (w, b) = match (&g.weight, &g.bias) {
                        (Some(w), Some(b)) => (w, b),
                        _ => {
                            return Err(Error::config(
                                "state dict",
                                format!("BatchNorm1d {ti} lacks weight or bias"),
                            ));
                        }
                    };
                    let f = [gamma.value.as_slice().len()];
                    put("weight", w, gamma.value.as_mut_slice(), &f)?;
                    put("bias", b, beta.value.as_mut_slice(), &f)?;
                }
                if bn.config().track_running_stats {
                    let (m, v) = match (&g.running_mean, &g.running_var) {
                        (Some(m), Some(v)) => (m, v),
                        _ => {
                            return Err(Error::config(
                                "state dict",
                                format!("BatchNorm1d {ti} lacks running stats"),
                            ));
                        }
                    };
                    let f = [bn.running.mean.len()];
                    put("running_mean", m, &mut bn.running.mean, &f)?;
                    put("running_var", v, &mut bn.running.var, &f)?;
                    if let Some(c) = g.num_batches_tracked.as_ref().and_then(|n| n.count) {
                        bn.running.batches = u64::try_from(c).unwrap_or(0);
                        names.push((
                            format!("{path}.num_batches_tracked"),
                            format!("{}{ti}.num_batches_tracked", sd.prefix),
                        ));
                    }
                }
                if let Some(b) = carried.take() {
                    absorb_bias(bn, &b, &path, notes)?;
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Folds a Linear bias into the running mean of the BN layer after it.
fn absorb_bias(bn: &mut crate::layers::BatchNorm<f32>, b: &Values, path: &str, notes: &mut Vec<String>) -> Result<()> {
    if b.shape != [bn.features()] {
        return Err(Error::config(
            "state dict",
            format!(
                "`{}` has shape {:?}; the BN after it needs [{}]",
                b.name,
                b.shape,
                bn.features()
            ),
        ));
    }
    // Every imported BN layer keeps running statistics (`Group::kind`).
    for (m, v) in bn.running.mean.iter_mut().zip(&b.data) {
        *m -= v;
    }
    notes.push(format!(
        "`{}`: bpnet has no bias before batch norm; absorbed into `{path}.running_mean` (running_mean - bias), \
         an identical function",
        b.name
    ));
    Ok(())
}

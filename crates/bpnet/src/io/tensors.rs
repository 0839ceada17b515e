//! The tensors of a [`Sequential`] model, named as PyTorch's `nn.Sequential`
//! state_dict under the attribute `layers`:
//!
//! | layer | tensor | dtype | shape |
//! |---|---|---|---|
//! | Dense | `layers.{i}.weight` | F32 | `[out, in]` |
//! | Dense with bias | `layers.{i}.bias` | F32 | `[out]` |
//! | BatchNorm, affine | `layers.{i}.weight` (gamma), `layers.{i}.bias` (beta) | F32 | `[F]` |
//! | LayerNorm, affine | `layers.{i}.weight` (gamma), `layers.{i}.bias` (beta) | F32 | `[F]` |
//! | BatchNorm, tracking running stats | `layers.{i}.running_mean`, `layers.{i}.running_var` | F32 | `[F]` |
//! | BatchNorm, tracking running stats | `layers.{i}.num_batches_tracked` | I64 | `[]` (or `[1]`) |
//!
//! Activation and dropout layers hold no tensors. Biases and the batch-norm
//! vectors are `[1, n]` matrices inside bpnet and 1-D `[n]` tensors in files.

use crate::layers::Layer;
use crate::model::Sequential;
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, View};
use std::borrow::Cow;

/// One named tensor, owning its little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    /// Path name, e.g. `layers.0.weight`.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Whether an optimizer trains it (false for running statistics).
    pub trainable: bool,
    /// Little-endian element bytes, row-major.
    pub bytes: Vec<u8>,
}

impl View for &Tensor {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

impl Tensor {
    pub(crate) fn f32(name: String, shape: Vec<usize>, trainable: bool, values: &[f32]) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Tensor {
            name,
            dtype: Dtype::F32,
            shape,
            trainable,
            bytes,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Every tensor of `model`, in layer order (weight, bias, running_mean,
/// running_var, num_batches_tracked within a layer).
pub(crate) fn model_tensors(model: &Sequential<f32>) -> Vec<Tensor> {
    tensors_of(model, true)
}

/// [`model_tensors`] without their values (`bytes` empty): the names, dtypes
/// and shapes a model of this architecture has, without copying its weights.
pub(crate) fn model_layout(model: &Sequential<f32>) -> Vec<Tensor> {
    tensors_of(model, false)
}

fn tensors_of(model: &Sequential<f32>, with_values: bool) -> Vec<Tensor> {
    fn keep(v: &[f32], with_values: bool) -> &[f32] {
        if with_values { v } else { &[] }
    }
    let values = |v| keep(v, with_values);
    let mut out = Vec::new();
    for (i, layer) in model.layers().iter().enumerate() {
        let path = format!("layers.{i}");
        match layer {
            Layer::Dense(d) => {
                let w = &d.weight.value;
                out.push(Tensor::f32(
                    format!("{path}.weight"),
                    w.shape().to_vec(),
                    true,
                    values(w.as_slice()),
                ));
                if let Some(b) = &d.bias {
                    let b = b.value.as_slice();
                    out.push(Tensor::f32(format!("{path}.bias"), vec![b.len()], true, values(b)));
                }
            }
            Layer::BatchNorm(bn) => {
                let f = bn.features();
                if let Some((gamma, beta)) = &bn.affine {
                    out.push(Tensor::f32(
                        format!("{path}.weight"),
                        vec![f],
                        true,
                        values(gamma.value.as_slice()),
                    ));
                    out.push(Tensor::f32(
                        format!("{path}.bias"),
                        vec![f],
                        true,
                        values(beta.value.as_slice()),
                    ));
                }
                if bn.config().track_running_stats {
                    let r = &bn.running;
                    out.push(Tensor::f32(
                        format!("{path}.running_mean"),
                        vec![f],
                        false,
                        values(&r.mean),
                    ));
                    out.push(Tensor::f32(
                        format!("{path}.running_var"),
                        vec![f],
                        false,
                        values(&r.var),
                    ));
                    // Counts beyond i64::MAX cannot occur in practice; saturate like a clamp.
                    let batches = i64::try_from(r.batches).unwrap_or(i64::MAX);
                    out.push(Tensor {
                        name: format!("{path}.num_batches_tracked"),
                        dtype: Dtype::I64,
                        shape: Vec::new(),
                        trainable: false,
                        bytes: if with_values {
                            batches.to_le_bytes().to_vec()
                        } else {
                            Vec::new()
                        },
                    });
                }
            }
            Layer::LayerNorm(n) => {
                if let Some((gamma, beta)) = &n.affine {
                    let f = n.features();
                    out.push(Tensor::f32(
                        format!("{path}.weight"),
                        vec![f],
                        true,
                        values(gamma.value.as_slice()),
                    ));
                    out.push(Tensor::f32(
                        format!("{path}.bias"),
                        vec![f],
                        true,
                        values(beta.value.as_slice()),
                    ));
                }
            }
            Layer::Activation(_) | Layer::Dropout(_) => {}
        }
    }
    out
}

/// Checks one tensor of a file against the expected one: dtype and shape
/// (a scalar may also be stored as `[1]`, as some writers do). Returns the
/// problem in words.
pub(crate) fn check_info(expected: &Tensor, found: &TensorInfo) -> Result<(), String> {
    let scalar_as_1 = expected.shape.is_empty() && found.shape == [1];
    if found.shape != expected.shape && !scalar_as_1 {
        return Err(format!(
            "tensor `{}` has shape {:?}, but the architecture implies {:?}",
            expected.name, found.shape, expected.shape
        ));
    }
    if found.dtype != expected.dtype {
        return Err(format!(
            "tensor `{}` has dtype {:?}, expected {:?}",
            expected.name, found.dtype, expected.dtype
        ));
    }
    Ok(())
}

/// Decodes and checks the values of tensor `name` (already checked for dtype
/// and shape): every F32 must be finite, running variances non-negative,
/// batch counts non-negative.
pub(crate) fn decode(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Values, String> {
    match dtype {
        Dtype::I64 => {
            let arr: [u8; 8] = bytes
                .try_into()
                .map_err(|_| format!("tensor `{name}` holds {} bytes, not one I64", bytes.len()))?;
            let v = i64::from_le_bytes(arr);
            u64::try_from(v)
                .map(Values::Count)
                .map_err(|_| format!("tensor `{name}` holds a negative count ({v})"))
        }
        _ => {
            let values: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some((k, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(format!(
                    "tensor `{name}` holds a non-finite value ({v}) at index {k}; \
                     was the model saved after training diverged?"
                ));
            }
            if name.ends_with(".running_var")
                && let Some((k, v)) = values.iter().enumerate().find(|(_, v)| **v < 0.0)
            {
                return Err(format!("tensor `{name}` holds a negative variance ({v}) at index {k}"));
            }
            Ok(Values::F32(values))
        }
    }
}

/// The decoded values of one tensor.
pub(crate) enum Values {
    /// F32 elements, row-major.
    F32(Vec<f32>),
    /// A batch count.
    Count(u64),
}

/// Overwrites the tensor `name` of `model` with `values`. The name, shape
/// and dtype must come from [`model_tensors`] of the same model.
pub(crate) fn assign(model: &mut Sequential<f32>, name: &str, values: Values) -> Result<(), String> {
    let unknown = || format!("internal: no tensor `{name}` in the rebuilt model");
    let (index, field) = name
        .strip_prefix("layers.")
        .and_then(|rest| rest.split_once('.'))
        .and_then(|(i, field)| Some((i.parse::<usize>().ok()?, field)))
        .ok_or_else(unknown)?;
    let layer = model.layers_mut().get_mut(index).ok_or_else(unknown)?;
    match (layer, values) {
        (Layer::BatchNorm(bn), Values::Count(n)) if field == "num_batches_tracked" => {
            bn.running.batches = n;
            Ok(())
        }
        (layer, Values::F32(v)) => copy(f32_slot(layer, field).ok_or_else(unknown)?, &v, name),
        _ => Err(unknown()),
    }
}

/// The F32 storage behind `layers.{i}.{field}`.
fn f32_slot<'a>(layer: &'a mut Layer<f32>, field: &str) -> Option<&'a mut [f32]> {
    match (layer, field) {
        (Layer::Dense(d), "weight") => Some(d.weight.value.as_mut_slice()),
        (Layer::Dense(d), "bias") => d.bias.as_mut().map(|b| b.value.as_mut_slice()),
        (Layer::BatchNorm(bn), "weight") => bn.affine.as_mut().map(|(g, _)| g.value.as_mut_slice()),
        (Layer::BatchNorm(bn), "bias") => bn.affine.as_mut().map(|(_, b)| b.value.as_mut_slice()),
        (Layer::BatchNorm(bn), "running_mean") => Some(&mut bn.running.mean),
        (Layer::BatchNorm(bn), "running_var") => Some(&mut bn.running.var),
        (Layer::LayerNorm(n), "weight") => n.affine.as_mut().map(|(g, _)| g.value.as_mut_slice()),
        (Layer::LayerNorm(n), "bias") => n.affine.as_mut().map(|(_, b)| b.value.as_mut_slice()),
        _ => None,
    }
}

fn copy(dst: &mut [f32], src: &[f32], name: &str) -> Result<(), String> {
    if dst.len() != src.len() {
        return Err(format!(
            "tensor `{name}` has {} values, the model needs {}",
            src.len(),
            dst.len()
        ));
    }
    dst.copy_from_slice(src);
    Ok(())
}

//! Reading a PyTorch `nn.Sequential` state dict saved with
//! `safetensors.torch.save_file(model.state_dict(), path)`: tensor names
//! `{prefix}{index}.{field}` grouped into Linear and BatchNorm1d modules.

use super::modules::TorchModule;
use crate::io::container::check_container;
use safetensors::{Dtype, SafeTensors};
use std::collections::BTreeMap;

/// The values of one tensor, converted to f32 (or a count).
#[derive(Debug, Clone)]
pub(crate) struct Values {
    /// The tensor's name in the file.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// F32 elements, row-major (empty for a count).
    pub data: Vec<f32>,
    /// The value of an integer scalar (`num_batches_tracked`).
    pub count: Option<i64>,
}

/// The tensors of one module index, by field.
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    pub weight: Option<Values>,
    pub bias: Option<Values>,
    pub running_mean: Option<Values>,
    pub running_var: Option<Values>,
    pub num_batches_tracked: Option<Values>,
}

impl Group {
    /// Linear (a 2-D weight) or BatchNorm1d (running statistics), or why
    /// neither. A 1-D weight without running statistics is refused: a
    /// BatchNorm1d with `track_running_stats=False` (it normalizes with each
    /// batch's statistics in eval mode too, which bpnet's fused inference,
    /// predict and export do not run), a LayerNorm or a PReLU.
    pub fn kind(&self, index: usize) -> Result<TorchModule, String> {
        let stats = self.running_mean.is_some() || self.running_var.is_some() || self.num_batches_tracked.is_some();
        match &self.weight {
            Some(w) if w.shape.len() == 2 && !stats => Ok(TorchModule::Linear),
            _ if stats => Ok(TorchModule::BatchNorm),
            Some(w) if w.shape.len() == 1 => Err(format!(
                "tensor `{}` is a 1-D weight without running statistics: a BatchNorm1d with \
                 track_running_stats=False, a LayerNorm or a PReLU; bpnet imports BatchNorm1d with running \
                 statistics (module {index})",
                w.name
            )),
            Some(w) => Err(format!(
                "tensor `{}` has shape {:?}; bpnet imports Linear (2-D weight) and BatchNorm1d (1-D) modules",
                w.name, w.shape
            )),
            None => Err(format!(
                "module {index} has a bias but no weight; bpnet imports Linear and BatchNorm1d modules"
            )),
        }
    }
}

/// The state dict: the common name prefix and the groups by module index.
#[derive(Debug, Clone)]
pub(crate) struct StateDict {
    /// The part of every name before the module index, e.g. `""` or `layers.`.
    pub prefix: String,
    /// Tensors by module index.
    pub groups: BTreeMap<usize, Group>,
    /// Notes on conversions (dtypes).
    pub notes: Vec<String>,
}

/// Parses the bytes of a safetensors file holding a `nn.Sequential` state
/// dict. Returns the problem in words.
pub(crate) fn read_state_dict(bytes: &[u8]) -> Result<StateDict, String> {
    check_container(bytes)?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a readable safetensors file: {e}"))?;
    let mut names: Vec<String> = st.names().into_iter().map(str::to_string).collect();
    names.sort();
    if names.is_empty() {
        return Err("the file holds no tensors".into());
    }
    let mut prefix: Option<String> = None;
    let mut groups: BTreeMap<usize, Group> = BTreeMap::new();
    let mut converted: BTreeMap<String, usize> = BTreeMap::new();
    for name in &names {
        let (module, field) = name.rsplit_once('.').ok_or_else(|| not_sequential(name))?;
        let (pre, index) = match module.rsplit_once('.') {
            Some((p, i)) => (format!("{p}."), i),
            None => (String::new(), module),
        };
        let index: usize = index.parse().map_err(|_| not_sequential(name))?;
        match &prefix {
            None => prefix = Some(pre),
            Some(p) if *p == pre => {}
            Some(p) => {
                return Err(format!(
                    "tensor names come from two module paths, `{p}` and `{pre}`; bpnet imports the state dict \
                     of one nn.Sequential (save that submodule's state_dict())"
                ));
            }
        }
        let view = st.tensor(name).map_err(|e| format!("tensor `{name}`: {e}"))?;
        let values = values(name, view.dtype(), view.shape(), view.data(), &mut converted)?;
        let group = groups.entry(index).or_default();
        let slot = match field {
            "weight" => &mut group.weight,
            "bias" => &mut group.bias,
            "running_mean" => &mut group.running_mean,
            "running_var" => &mut group.running_var,
            "num_batches_tracked" => &mut group.num_batches_tracked,
            _ => {
                return Err(format!(
                    "tensor `{name}`: unknown field `{field}` (bpnet imports Linear and BatchNorm1d modules: weight, \
                     bias, running_mean, running_var, num_batches_tracked)"
                ));
            }
        };
        *slot = Some(values);
    }
    let notes = converted
        .into_iter()
        .map(|(dtype, n)| format!("{n} tensor(s) stored as {dtype} were converted to F32"))
        .collect();
    Ok(StateDict {
        prefix: prefix.unwrap_or_default(),
        groups,
        notes,
    })
}

fn not_sequential(name: &str) -> String {
    format!(
        "tensor `{name}` is not named like an nn.Sequential entry `{{index}}.{{field}}` (e.g. `0.weight`, \
         `layers.1.running_mean`)"
    )
}

/// Decodes one tensor: floats of any common width to f32, and an integer
/// scalar as a count.
fn values(
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    data: &[u8],
    converted: &mut BTreeMap<String, usize>,
) -> Result<Values, String> {
    let mut v = Values {
        name: name.to_string(),
        shape: shape.to_vec(),
        data: Vec::new(),
        count: None,
    };
    let mut note = |d: &str| *converted.entry(d.to_string()).or_default() += 1;
    match dtype {
        Dtype::F32 => {
            v.data = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        Dtype::F64 => {
            note("F64");
            v.data = data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                .collect();
        }
        Dtype::BF16 => {
            note("BF16");
            v.data = data
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect();
        }
        Dtype::F16 => {
            note("F16");
            v.data = data
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect();
        }
        Dtype::I64 if name.ends_with(".num_batches_tracked") && shape.iter().product::<usize>() == 1 => {
            let b: [u8; 8] = data
                .try_into()
                .map_err(|_| format!("tensor `{name}` holds {} bytes", data.len()))?;
            v.count = Some(i64::from_le_bytes(b));
        }
        other => {
            return Err(format!(
                "tensor `{name}` has dtype {other:?}; bpnet imports F32, F64, F16 and BF16"
            ));
        }
    }
    if let Some((k, x)) = v.data.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(format!("tensor `{name}` holds a non-finite value ({x}) at index {k}"));
    }
    if name.ends_with(".running_var")
        && let Some((k, x)) = v.data.iter().enumerate().find(|(_, x)| **x < 0.0)
    {
        return Err(format!("tensor `{name}` holds a negative variance ({x}) at index {k}"));
    }
    Ok(v)
}

/// IEEE 754 half precision to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: f * 2^-24.
            let v = f as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}

//! The checks of a model file's header, before its tensors are read: the
//! format and version, the architecture, the size it implies against the
//! bytes present, and the tensor names, dtypes and shapes.

use super::model_file::{FORMAT_NAME, FORMAT_VERSION, is_extra};
use super::tensors::{Tensor, check_info};
use crate::model::ModelSpec;
use safetensors::tensor::TensorInfo;
use std::collections::HashMap;

/// Checks `format` and `format_version`; returns the version.
pub(super) fn check_format(header: &HashMap<String, String>) -> Result<u32, String> {
    match header.get("format") {
        Some(f) if f == FORMAT_NAME => {}
        Some(f) => {
            return Err(format!(
                "not a bpnet model: its metadata says format \"{f}\", not \"{FORMAT_NAME}\" \
                 (a safetensors file from another tool?)"
            ));
        }
        None => {
            return Err(
                "not a bpnet model: a safetensors file without `format: bpnet` in its metadata \
                        (written by another tool?)"
                    .into(),
            );
        }
    }
    let raw = header
        .get("format_version")
        .ok_or("bpnet model without a `format_version` in its metadata; the header is damaged")?;
    let version = raw.parse::<u32>().ok().filter(|&v| v > 0).ok_or_else(|| {
        format!("invalid format_version \"{raw}\" (expected a positive integer); the header is damaged")
    })?;
    if version > FORMAT_VERSION {
        return Err(format!(
            "written by a newer bpnet (format {version}); this build reads format {FORMAT_VERSION}: upgrade bpnet \
             to load it"
        ));
    }
    Ok(version)
}

/// Parses and validates the `architecture` entry.
pub(super) fn read_architecture(header: &HashMap<String, String>) -> Result<ModelSpec, String> {
    let raw = header
        .get("architecture")
        .ok_or("bpnet model without an `architecture` in its metadata; the header is damaged")?;
    let spec: ModelSpec = serde_json::from_str(raw)
        .map_err(|e| format!("invalid `architecture` metadata ({e}); the header is damaged"))?;
    spec.validate()
        .map_err(|e| format!("invalid `architecture` metadata: {e}"))?;
    Ok(spec)
}

/// Refuses an architecture whose weights alone would need more bytes than the
/// file's tensor data holds, before any of it is allocated.
pub(super) fn check_size(spec: &ModelSpec, data_len: usize) -> Result<(), String> {
    let weights = spec
        .dims
        .windows(2)
        .try_fold(0usize, |acc, w| w[0].checked_mul(w[1])?.checked_add(acc))
        .and_then(|n| n.checked_mul(4));
    match weights {
        Some(need) if need <= data_len => Ok(()),
        _ => Err(format!(
            "the architecture {} needs more than the {data_len} bytes of tensor data in the file; \
             the header is damaged or the tensors are missing",
            dims_text(spec)
        )),
    }
}

/// Every expected tensor present with its dtype and shape, and no other.
pub(super) fn check_names(
    spec: &ModelSpec,
    expected: &[Tensor],
    found: &HashMap<String, &TensorInfo>,
) -> Result<(), String> {
    for e in expected {
        let info = found.get(&e.name).ok_or_else(|| {
            format!(
                "missing tensor `{}` ({:?} {:?}) that the architecture {} implies",
                e.name,
                e.dtype,
                e.shape,
                dims_text(spec)
            )
        })?;
        check_info(e, info)?;
    }
    let mut extra: Vec<&String> = found
        .keys()
        .filter(|name| !expected.iter().any(|e| &e.name == *name) && !is_extra(name))
        .collect();
    extra.sort();
    match extra.first() {
        Some(name) => Err(format!(
            "unexpected tensor `{name}`: the architecture {} has no such parameter",
            dims_text(spec)
        )),
        None => Ok(()),
    }
}

/// Widths as `784-100-10`.
fn dims_text(spec: &ModelSpec) -> String {
    let dims: Vec<String> = spec.dims.iter().map(|d| d.to_string()).collect();
    dims.join("-")
}

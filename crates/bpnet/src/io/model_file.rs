//! One `.safetensors` file per model: the tensors named by path, plus the
//! format version, the architecture and free-form JSON sections in the
//! header's `__metadata__`. See the [module docs](super) for the layout.

use super::atomic::write_atomic;
use super::container::{PREFIX, check_container, check_prefix};
use super::digest::{CHECKSUM_KEY, content_digest};
use super::header::{check_format, check_names, check_size, read_architecture};
use super::sections::{header_metadata, read_sections, section_texts};
use super::tensors::{Tensor, assign, decode, model_layout, model_tensors};
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Sequential};
use safetensors::SafeTensors;
use safetensors::tensor::TensorInfo;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Newest version of the model file layout this build reads and writes;
/// files with a larger `format_version` are refused.
pub const FORMAT_VERSION: u32 = 2;

/// The version written for every file but a blend: builds from before
/// blends read it.
pub const BASE_FORMAT_VERSION: u32 = 1;

/// The version written for an ensemble of members of different
/// architectures (a blend, see [`super::ensemble`]).
pub const BLEND_FORMAT_VERSION: u32 = 2;

/// Value of the `format` metadata key that marks a bpnet model.
pub const FORMAT_NAME: &str = "bpnet";

/// Metadata keys bpnet itself writes; free-form sections may not use them.
pub const RESERVED_KEYS: [&str; 6] = [
    "format",
    "format_version",
    "bpnet_version",
    "architecture",
    "layers",
    CHECKSUM_KEY,
];

/// Name prefixes of the extra tensors a file carries besides the model's
/// own: a training checkpoint's optimizer state and best weights under
/// early stopping, and an ensemble's further members.
pub const CHECKPOINT_PREFIXES: [&str; 3] = ["optimizer.", "best.", "ensemble."];

/// An extra named f32 tensor of a checkpoint (see [`CHECKPOINT_PREFIXES`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtraTensor {
    /// Name, starting with one of [`CHECKPOINT_PREFIXES`].
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// A model read back from a file.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The architecture.
    pub spec: ModelSpec,
    /// The network with every parameter and running statistic restored.
    /// Dropout layers get fresh random streams (seed 0): masks are not saved.
    pub model: Sequential<f32>,
    /// Free-form sections (`"preprocessing"`, `"training"`, `"metrics"`, ...).
    pub metadata: Map<String, Value>,
    /// The file's `format_version` (at most [`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The bpnet version that wrote the file (`"unknown"` if not recorded).
    pub bpnet_version: String,
    /// Checkpoint tensors (optimizer state, best weights), by name.
    pub extra: HashMap<String, Vec<f32>>,
}

/// Saves `model` (built from `spec`) with the free-form `metadata` sections to
/// `path`, atomically: an existing file is replaced only once the new one is
/// complete on disk.
///
/// Refuses (writing nothing) a model whose tensors do not match `spec`, a
/// model holding non-finite values, and metadata sections named like a
/// [reserved key](RESERVED_KEYS).
pub fn save_model(path: &Path, spec: &ModelSpec, model: &Sequential<f32>, metadata: &Map<String, Value>) -> Result<()> {
    save_checkpoint(path, spec, model, metadata, &[])
}

/// [`save_model`] with the sections given as anything that serializes to a
/// JSON object (e.g. a struct with one field per section): each is written
/// straight to JSON text, without a [`Value`] tree in between, which for a
/// large section (the preprocessing of a table of 200,000 columns) is most
/// of the time and memory of saving.
pub fn save_model_with<M: Serialize + ?Sized>(
    path: &Path,
    spec: &ModelSpec,
    model: &Sequential<f32>,
    metadata: &M,
) -> Result<()> {
    save_checkpoint(path, spec, model, metadata, &[])
}

/// The bytes [`save_model_with`] would write (for a model kept in memory,
/// e.g. pickled by the Python package); `what` names it in errors.
pub fn model_bytes<M: Serialize + ?Sized>(
    what: &Path,
    spec: &ModelSpec,
    model: &Sequential<f32>,
    metadata: &M,
) -> Result<Vec<u8>> {
    let not_saved = |reason| Error::Format {
        path: what.to_path_buf(),
        reason: format!("not saved: {reason}"),
    };
    let sections = section_texts(metadata).map_err(not_saved)?;
    encode(spec, model, sections, &[], BASE_FORMAT_VERSION).map_err(not_saved)
}

/// [`save_model_with`] plus `extra` checkpoint tensors (names must start
/// with one of [`CHECKPOINT_PREFIXES`]); [`load_model`] returns them in
/// [`ModelFile::extra`].
pub fn save_checkpoint<M: Serialize + ?Sized>(
    path: &Path,
    spec: &ModelSpec,
    model: &Sequential<f32>,
    metadata: &M,
    extra: &[ExtraTensor],
) -> Result<()> {
    let not_saved = |reason| Error::Format {
        path: path.to_path_buf(),
        reason: format!("not saved: {reason}"),
    };
    let sections = section_texts(metadata).map_err(not_saved)?;
    save_sections(path, spec, model, sections, extra)
}

/// [`save_checkpoint`] with the sections already JSON text.
pub(crate) fn save_sections(
    path: &Path,
    spec: &ModelSpec,
    model: &Sequential<f32>,
    sections: BTreeMap<String, String>,
    extra: &[ExtraTensor],
) -> Result<()> {
    write_atomic(
        path,
        &encode_versioned(path, spec, model, sections, extra, BASE_FORMAT_VERSION)?,
    )
}

/// The bytes of a file of format `version`; `path` names the model in errors.
pub(crate) fn encode_versioned(
    path: &Path,
    spec: &ModelSpec,
    model: &Sequential<f32>,
    sections: BTreeMap<String, String>,
    extra: &[ExtraTensor],
    version: u32,
) -> Result<Vec<u8>> {
    encode(spec, model, sections, extra, version).map_err(|reason| Error::Format {
        path: path.to_path_buf(),
        reason: format!("not saved: {reason}"),
    })
}

/// Loads a model file written by [`save_model`] (or by any safetensors writer
/// following the same names and metadata). Every check happens before the
/// model is used; errors are one line naming the file, the problem and a hint.
pub fn load_model(path: &Path) -> Result<ModelFile> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let format = |reason| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    super::check_regular(path)?;
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    // Look at the length prefix first, so that a large file of another kind
    // is refused without being read.
    let mut first = Vec::with_capacity(PREFIX);
    (&mut file).take(PREFIX as u64).read_to_end(&mut first).map_err(io)?;
    check_prefix(&first, len).map_err(format)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(io)?;
    decode_file(&bytes, Checksum::Verify).map_err(format)
}

/// [`load_model`] on the bytes of a file already read; `path` names it in errors.
pub fn decode_model(bytes: &[u8], path: &Path) -> Result<ModelFile> {
    let len = bytes.len() as u64;
    let format = |reason| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    check_prefix(bytes.get(..PREFIX.min(bytes.len())).unwrap_or_default(), len).map_err(format)?;
    decode_file(bytes, Checksum::Verify).map_err(format)
}

/// [`decode_model`] without comparing the checksum: every other check, and
/// the building of the model, run as usual. For fuzzing only (`fuzz/`,
/// target `model_file_nochecksum`): random bytes almost never carry a
/// matching checksum, so the checked loader stops before the model-building
/// code a fuzzer should reach. Never use it to load files.
#[doc(hidden)]
pub fn decode_model_unchecked(bytes: &[u8], path: &Path) -> Result<ModelFile> {
    let format = |reason| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    check_prefix(
        bytes.get(..PREFIX.min(bytes.len())).unwrap_or_default(),
        bytes.len() as u64,
    )
    .map_err(format)?;
    decode_file(bytes, Checksum::Skip).map_err(format)
}

/// The whole file as bytes, or why it cannot be written.
fn encode(
    spec: &ModelSpec,
    model: &Sequential<f32>,
    sections: BTreeMap<String, String>,
    extra: &[ExtraTensor],
    version: u32,
) -> Result<Vec<u8>, String> {
    let reference = Sequential::<f32>::zeroed(spec).map_err(|e| e.to_string())?;
    let expected = model_layout(&reference);
    let mut tensors = model_tensors(model);
    let found: HashMap<&str, &Tensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    for e in &expected {
        let t = found
            .get(e.name.as_str())
            .ok_or_else(|| format!("the model has no tensor `{}` but its architecture implies one", e.name))?;
        if t.shape != e.shape || t.dtype != e.dtype {
            return Err(format!(
                "tensor `{}` has shape {:?} but the architecture implies {:?}",
                e.name, t.shape, e.shape
            ));
        }
    }
    if let Some(extra) = tensors.iter().find(|t| !expected.iter().any(|e| e.name == t.name)) {
        return Err(format!(
            "the model has a tensor `{}` its architecture does not imply",
            extra.name
        ));
    }
    // The file is rebuilt from `spec`: a model of the same shapes but another
    // activation, normalization or dropout would load as another network.
    let (ours, theirs) = (reference.layers(), model.layers());
    if ours.len() != theirs.len() {
        return Err(format!(
            "the model has {} layers but its architecture implies {}",
            theirs.len(),
            ours.len()
        ));
    }
    for (k, (a, b)) in ours.iter().zip(theirs).enumerate() {
        if a.describe() != b.describe() {
            return Err(format!(
                "layer {k} of the model is {} but its architecture implies {}",
                b.describe(),
                a.describe()
            ));
        }
    }
    for e in extra {
        if !CHECKPOINT_PREFIXES.iter().any(|p| e.name.starts_with(p)) || found.contains_key(e.name.as_str()) {
            return Err(format!(
                "extra tensor `{}` needs a name starting with optimizer., best. or ensemble.",
                e.name
            ));
        }
    }
    tensors.extend(
        extra
            .iter()
            .map(|e| Tensor::f32(e.name.clone(), e.shape.clone(), false, &e.values)),
    );
    for t in &tensors {
        decode(&t.name, t.dtype, &t.bytes)?;
    }
    let mut header = header_metadata(spec, model, sections, version)?;
    let digest = content_digest(
        tensors.iter().map(|t| {
            (
                t.name.as_str(),
                format!("{:?}", t.dtype),
                t.shape.as_slice(),
                t.bytes.as_slice(),
            )
        }),
        &header,
    );
    header.insert(CHECKSUM_KEY.to_string(), digest);
    safetensors::serialize(tensors.iter().map(|t| (t.name.clone(), t)), Some(header)).map_err(|e| e.to_string())
}

/// Parses and checks a whole file (the checksum too, with `verify`); the
/// error is the reason, without the path.
fn decode_file(bytes: &[u8], verify: Checksum) -> Result<ModelFile, String> {
    check_container(bytes)?;
    let (n, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| format!("corrupt safetensors header: {e}; the file is damaged"))?;
    let empty = HashMap::new();
    let header = meta.metadata().as_ref().unwrap_or(&empty);
    let format_version = check_format(header)?;
    let spec = read_architecture(header)?;
    let tensors = meta.tensors();
    check_size(&spec, meta.data_len())?;
    let mut model = Sequential::<f32>::zeroed(&spec).map_err(|e| format!("invalid architecture: {e}"))?;
    let expected = model_layout(&model);
    check_names(&spec, &expected, &tensors)?;
    let data = bytes.get(PREFIX + n..).unwrap_or_default();
    for e in &expected {
        let info = tensors
            .get(&e.name)
            .ok_or_else(|| format!("missing tensor `{}`", e.name))?;
        let (begin, end) = info.data_offsets;
        let raw = data
            .get(begin..end)
            .ok_or_else(|| format!("tensor `{}` lies outside the file", e.name))?;
        let values = decode(&e.name, info.dtype, raw)?;
        assign(&mut model, &e.name, values)?;
    }
    let mut extra = HashMap::new();
    for (name, info) in tensors.iter().filter(|(n, _)| is_extra(n)) {
        if info.dtype != safetensors::Dtype::F32 {
            return Err(format!("tensor `{name}` is {:?}; bpnet stores it as F32", info.dtype));
        }
        if info.shape.len() != 1 {
            // Written flat, `[values]`: another shape is an edit, and a
            // transposed weight would load as its transpose's values.
            return Err(format!(
                "tensor `{name}` has shape {:?}; bpnet stores it flat, as [values]",
                info.shape
            ));
        }
        let (begin, end) = info.data_offsets;
        let raw = data
            .get(begin..end)
            .ok_or_else(|| format!("tensor `{name}` lies outside the file"))?;
        match decode(name, info.dtype, raw)? {
            super::tensors::Values::F32(v) => extra.insert(name.clone(), v),
            _ => return Err(format!("checkpoint tensor `{name}` is not F32")),
        };
    }
    if verify == Checksum::Verify {
        verify_checksum(header, &tensors, data)?;
    }
    let metadata = read_sections(header);
    let bpnet_version = header.get("bpnet_version").cloned().unwrap_or_else(|| "unknown".into());
    Ok(ModelFile {
        spec,
        model,
        metadata,
        format_version,
        bpnet_version,
        extra,
    })
}

/// Whether [`decode_file`] compares the stored checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checksum {
    Verify,
    Skip,
}

pub(super) fn is_extra(name: &str) -> bool {
    CHECKPOINT_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Recomputes the content checksum and compares it with the stored one.
fn verify_checksum(
    header: &HashMap<String, String>,
    tensors: &HashMap<String, &TensorInfo>,
    data: &[u8],
) -> Result<(), String> {
    let stored = header
        .get(CHECKSUM_KEY)
        .ok_or("no `checksum` in the metadata, so its integrity cannot be verified; the header is damaged or the file was not written by bpnet")?;
    let items = tensors.iter().map(|(name, info)| {
        let (begin, end) = info.data_offsets;
        (
            name.as_str(),
            format!("{:?}", info.dtype),
            info.shape.as_slice(),
            data.get(begin..end).unwrap_or_default(),
        )
    });
    let actual = content_digest(items, header);
    if &actual != stored {
        return Err(
            "checksum mismatch: the contents were altered or damaged after writing (bit flip, partial copy?)".into(),
        );
    }
    Ok(())
}

/// A multi-line description for `bpnet inspect`: versions, architecture, one
/// line per layer, parameter counts per tensor and in total, and the metadata
/// sections pretty-printed.
pub fn describe(file: &ModelFile) -> String {
    let mut out = vec![
        format!(
            "bpnet model, format {}, written by bpnet {}",
            file.format_version, file.bpnet_version
        ),
        format!(
            "architecture: {}",
            serde_json::to_string(&file.spec).unwrap_or_else(|e| format!("({e})"))
        ),
        "layers:".to_string(),
    ];
    out.extend(file.model.summary().lines().map(|l| format!("  {l}")));
    let tensors = model_layout(&file.model);
    let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    let trainable: usize = tensors.iter().filter(|t| t.trainable).map(Tensor::numel).sum();
    let buffers: usize = tensors.iter().filter(|t| !t.trainable).map(Tensor::numel).sum();
    out.push(format!(
        "parameters: {trainable} trainable, {buffers} in running statistics"
    ));
    for t in &tensors {
        let kind = if t.trainable { "" } else { "  (running statistic)" };
        out.push(format!(
            "  {:width$}  {:?} {:<12} {:>10}{kind}",
            t.name,
            t.dtype,
            format!("{:?}", t.shape),
            t.numel()
        ));
    }
    if file.metadata.is_empty() {
        out.push("metadata: none".to_string());
    } else {
        out.push("metadata:".to_string());
        for (key, value) in &file.metadata {
            if let (true, Some(records)) = (key == "history_records", value.as_array()) {
                // One record per epoch: hundreds of lines of them buried the rest.
                out.push(format!(
                    "  {key}: {} epoch records (inspect --json lists them)",
                    records.len()
                ));
                continue;
            }
            let pretty = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("({e})"));
            out.push(format!("  {key}: {}", pretty.replace('\n', "\n  ")));
        }
    }
    out.join("\n")
}

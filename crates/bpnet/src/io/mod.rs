//! Model files: one `.safetensors` file per model, readable by any
//! safetensors reader (e.g. Python's `safetensors.numpy.load_file`).
//!
//! # Layout
//!
//! Tensors are named by path exactly as PyTorch's `nn.Sequential` state_dict
//! stored under the attribute `layers` (little-endian, row-major):
//!
//! - Dense: `layers.{i}.weight` F32 `[out, in]`, `layers.{i}.bias` F32 `[out]`
//!   (absent when batch normalization follows);
//! - BatchNorm: `layers.{i}.weight` (gamma) and `layers.{i}.bias` (beta) F32
//!   `[F]` when affine; `layers.{i}.running_mean`, `layers.{i}.running_var`
//!   F32 `[F]` and `layers.{i}.num_batches_tracked` I64 `[]` when tracking
//!   running statistics (Batch Renormalization and Ghost BN are BatchNorm
//!   layers: same tensors, their kind is in `architecture`);
//! - LayerNorm: `layers.{i}.weight` (gamma) and `layers.{i}.bias` (beta) F32
//!   `[F]` when affine;
//! - activations and dropout hold no tensors, but keep their index `i`.
//!
//! The header's `__metadata__` (string to string) holds:
//!
//! | key | value |
//! |---|---|
//! | `format` | `"bpnet"` |
//! | `format_version` | [`BASE_FORMAT_VERSION`] (1) as decimal text; [`BLEND_FORMAT_VERSION`] (2) for a blend of architectures (see [`save_blend`]) |
//! | `bpnet_version` | the writing crate's version |
//! | `architecture` | the [`ModelSpec`](crate::ModelSpec) as JSON |
//! | `layers` | JSON list of layer descriptions, e.g. `"Dense(784 -> 100, no bias)"` |
//! | any other key | one free-form section (`preprocessing`, `training`, `metrics`, ...) as JSON |
//!
//! Loading rebuilds the network from `architecture` and overwrites every
//! tensor, after checking the container (sizes against the file length,
//! before allocating), the format and version, and each tensor's presence,
//! dtype, shape and values.
//!
//! ```
//! use bpnet::io::{load_model, save_model};
//! use bpnet::{ModelSpec, Sequential};
//! let dir = std::env::temp_dir().join(format!("bpnet-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(|source| bpnet::Error::Io { path: dir.clone(), source })?;
//! let path = dir.join("model.safetensors");
//! let spec = ModelSpec { dims: vec![4, 8, 3], ..ModelSpec::paper_mnist(true, 0.1) };
//! let model = Sequential::<f32>::from_spec(&spec, 42)?;
//! let mut sections = serde_json::Map::new();
//! sections.insert("training".into(), serde_json::json!({ "epochs": 3 }));
//! save_model(&path, &spec, &model, &sections)?;
//! let file = load_model(&path)?;
//! assert_eq!(file.spec, spec);
//! assert_eq!(file.metadata["training"]["epochs"], 3);
//! # let _ = std::fs::remove_dir_all(&dir);
//! # Ok::<(), bpnet::Error>(())
//! ```

mod atomic;
mod checkpoint;
mod container;
mod digest;
mod ensemble;
mod guard;
mod header;
mod inputs;
mod model_file;
mod outputs;
mod sections;
mod sniff;
pub(crate) mod tensors;
mod torch;

pub use atomic::{AtomicWriter, write_atomic};
pub use checkpoint::{RunCheckpoint, load_run, save_run};
pub use digest::{CHECKSUM_KEY, content_digest, file_sha256, text_sha256};
pub use ensemble::{
    ENSEMBLE_KEY, EnsembleSection, Member, blend_bytes, ensemble_bytes, ensemble_members, member_specs, save_blend,
    save_ensemble,
};
pub use inputs::check_regular;
#[doc(hidden)]
pub use model_file::decode_model_unchecked;
pub use model_file::{
    BASE_FORMAT_VERSION, BLEND_FORMAT_VERSION, CHECKPOINT_PREFIXES, ExtraTensor, FORMAT_NAME, FORMAT_VERSION,
    ModelFile, RESERVED_KEYS, decode_model, describe, load_model, model_bytes, save_checkpoint, save_model,
    save_model_with,
};
pub use outputs::{Kind, OutputPlan, kind_conflict};
pub use torch::{TorchImport, TorchImportOptions, TorchModule, import_torch, parse_modules};

//! The content checksum stored in every model file (`checksum` metadata key):
//! SHA-256 over every tensor (sorted by name: name, dtype, shape, bytes) and
//! every other metadata entry (sorted by key), so that a truncated or altered
//! file is detected even where the damage leaves it well-formed.

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Metadata key of the checksum.
pub const CHECKSUM_KEY: &str = "checksum";

/// Hex SHA-256 of `tensors` (name, dtype name, shape, bytes) and `header`
/// (excluding [`CHECKSUM_KEY`]).
pub fn content_digest<'a>(
    tensors: impl IntoIterator<Item = (&'a str, String, &'a [usize], &'a [u8])>,
    header: &HashMap<String, String>,
) -> String {
    let mut h = Sha256::new();
    let mut items: Vec<_> = tensors.into_iter().collect();
    items.sort_by(|a, b| a.0.cmp(b.0));
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    for (name, dtype, shape, bytes) in items {
        field(name.as_bytes());
        field(dtype.as_bytes());
        let dims: Vec<u8> = shape.iter().flat_map(|d| (*d as u64).to_le_bytes()).collect();
        field(&dims);
        field(bytes);
    }
    let mut keys: Vec<&String> = header.keys().filter(|k| k.as_str() != CHECKSUM_KEY).collect();
    keys.sort();
    for k in keys {
        field(k.as_bytes());
        field(header[k].as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

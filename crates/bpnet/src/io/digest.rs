//! The content checksum stored in every model file (`checksum` metadata key):
//! SHA-256 over every tensor (sorted by name: name, dtype, shape, bytes) and
//! every other metadata entry (sorted by key), so that a truncated or altered
//! file is detected even where the damage leaves it well-formed.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key of the checksum.
pub const CHECKSUM_KEY: &str = "checksum";

/// Hex SHA-256 of the bytes of the file at `path`, read in blocks.
pub fn file_sha256(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut block = vec![0u8; 1 << 16];
    loop {
        let n = match std::io::Read::read(&mut file, &mut block) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            break;
        }
        h.update(&block[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Hex SHA-256 of `text`'s bytes.
pub fn text_sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

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
    hex(&h.finalize())
}

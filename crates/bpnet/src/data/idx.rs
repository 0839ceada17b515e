//! Reader for the IDX format of MNIST (plain or gzip-compressed).
//!
//! Layout, big-endian: two zero bytes, a type byte (0x08 = unsigned byte), the
//! number of dimensions `d`, then `d` u32 sizes, then the values. Every count
//! is checked against the bytes actually present before it is trusted; memory
//! grows with the data read, never with a declared size.

use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Largest number of values accepted in one IDX file (2^31).
const MAX_VALUES: u64 = 1 << 31;

/// The contents of an IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// Sizes of each dimension, e.g. `[60000, 28, 28]`.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with `expected_ndims` dimensions.
/// Gzip is detected from the content (magic `1f 8b`), not the name.
pub fn read_idx(path: &Path, expected_ndims: u8) -> Result<IdxArray> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = BufReader::new(File::open(path).map_err(io)?);
    let mut head = [0u8; 2];
    let n = read_full(&mut file, &mut head).map_err(io)?;
    let chained = std::io::Cursor::new(head[..n].to_vec()).chain(file);
    if n == 2 && head == [0x1f, 0x8b] {
        read_stream(path, GzDecoder::new(chained), expected_ndims)
    } else {
        read_stream(path, chained, expected_ndims)
    }
}

/// [`read_idx`] on bytes already in memory (gzip detected the same way);
/// `path` names them in errors.
pub fn parse_idx(bytes: &[u8], path: &Path, expected_ndims: u8) -> Result<IdxArray> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        read_stream(path, GzDecoder::new(bytes), expected_ndims)
    } else {
        read_stream(path, bytes, expected_ndims)
    }
}

/// Parses an uncompressed IDX stream; `path` names it in errors.
fn read_stream(path: &Path, mut r: impl Read, expected_ndims: u8) -> Result<IdxArray> {
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let io = |e: std::io::Error| bad(format!("cannot read IDX data: {e}"));
    let mut magic = [0u8; 4];
    if read_full(&mut r, &mut magic).map_err(io)? < 4 {
        return Err(bad("file too short for an IDX header (4 bytes)".into()));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(format!(
            "not an IDX file: magic number {:02x}{:02x}{:02x}{:02x}",
            magic[0], magic[1], magic[2], magic[3]
        )));
    }
    if magic[2] != 0x08 {
        return Err(bad(format!(
            "IDX value type 0x{:02x} is not supported (only 0x08, unsigned byte)",
            magic[2]
        )));
    }
    if magic[3] != expected_ndims {
        return Err(bad(format!(
            "IDX file has {} dimensions, expected {expected_ndims}",
            magic[3]
        )));
    }
    let mut dims = Vec::with_capacity(expected_ndims as usize);
    let mut total: u64 = 1;
    for i in 0..expected_ndims {
        let mut b = [0u8; 4];
        if read_full(&mut r, &mut b).map_err(io)? < 4 {
            return Err(bad(format!("truncated IDX header: size of dimension {i} missing")));
        }
        let d = u32::from_be_bytes(b) as u64;
        total = total.saturating_mul(d);
        dims.push(d as usize);
    }
    if total > MAX_VALUES {
        return Err(bad(format!(
            "IDX dimensions {dims:?} declare {total} values, more than the limit {MAX_VALUES}"
        )));
    }
    let mut data = Vec::new();
    r.take(total + 1).read_to_end(&mut data).map_err(io)?;
    match (data.len() as u64).cmp(&total) {
        std::cmp::Ordering::Less => Err(bad(format!(
            "truncated: dimensions {dims:?} need {total} bytes of values, found {}",
            data.len()
        ))),
        std::cmp::Ordering::Greater => Err(bad(format!(
            "trailing bytes after the {total} values declared by dimensions {dims:?}"
        ))),
        std::cmp::Ordering::Equal => Ok(IdxArray { dims, data }),
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Finds `stem` or `stem.gz` in `dir`.
pub fn find_in(dir: &Path, stem: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    [gz.clone(), plain]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Io {
            path: gz,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {stem} nor {stem}.gz found in this folder"),
            ),
        })
}

//! How much memory a run may use, and whether a data file would fit in it:
//! the basis of the automatic choice to stream.
//!
//! Available memory is the smallest of: `MemAvailable` (`/proc/meminfo`),
//! the cgroup's limit less its usage (v2 `memory.max` − `memory.current`,
//! or v1 `memory.limit_in_bytes` − `memory.usage_in_bytes`), and
//! `RLIMIT_AS` less the address space in use. The environment variable
//! `BPNET_MEMORY` (bytes, or with a `K`/`M`/`G` suffix) replaces them all.

use crate::data::table::ChunkReader;
use crate::{Error, Result};

/// A bound on the memory this process may still use.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Where the bound comes from (`MemAvailable`, `cgroup memory.max`, ...).
    pub source: String,
}

/// Peak memory of loading a table in memory, as a multiple of its `f32`
/// matrix (measured 2.35, docs/PERFORMANCE.md "Reading data").
pub const LOAD_PEAK: f64 = 2.5;

/// `20M`, `1.5G`, `512K`, `1048576` (bytes; suffixes are powers of 1024,
/// a trailing `B` or `iB` allowed).
pub fn parse_bytes(s: &str) -> Result<u64> {
    let t = s.trim().trim_end_matches(['B', 'b']).trim_end_matches('i');
    let (num, mul) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let mul = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => 0,
            };
            (&t[..i], mul)
        }
        _ => (t, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v >= 0.0 && v.is_finite() && mul > 0 => Ok((v * mul as f64) as u64),
        _ => Err(Error::config("memory", format!("'{s}' is not a size (e.g. 512M, 2G)"))),
    }
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `MemAvailable` in bytes.
fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The cgroup's limit less its usage, and its name.
fn cgroup() -> Option<(u64, &'static str)> {
    if let (Some(max), Some(cur)) = (
        read_u64("/sys/fs/cgroup/memory.max"),
        read_u64("/sys/fs/cgroup/memory.current"),
    ) {
        return Some((max.saturating_sub(cur), "cgroup memory.max"));
    }
    let limit = read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes")?;
    let used = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0);
    // v1 reports "no limit" as a huge number.
    (limit < 1 << 60).then(|| (limit.saturating_sub(used), "cgroup memory.limit_in_bytes"))
}

/// `RLIMIT_AS` less the address space in use.
fn address_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrlimit only writes into the struct we pass.
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
            return None;
        }
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let vm = status.lines().find(|l| l.starts_with("VmSize:"))?;
        let used: u64 = vm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024;
        Some((lim.rlim_cur as u64).saturating_sub(used))
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// The memory this process may still use (see the module docs); `None`
/// when nothing bounds it that can be read.
pub fn available_memory() -> Result<Option<MemoryLimit>> {
    if let Ok(v) = std::env::var("BPNET_MEMORY") {
        let bytes = parse_bytes(&v).map_err(|_| Error::config("BPNET_MEMORY", format!("'{v}' is not a size")))?;
        return Ok(Some(MemoryLimit {
            bytes,
            source: "BPNET_MEMORY".into(),
        }));
    }
    let mut all: Vec<(u64, String)> = Vec::new();
    all.extend(mem_available().map(|b| (b, "MemAvailable".to_string())));
    all.extend(cgroup().map(|(b, s)| (b, s.to_string())));
    all.extend(address_limit().map(|b| (b, "RLIMIT_AS".to_string())));
    Ok(all
        .into_iter()
        .min_by_key(|a| a.0)
        .map(|(bytes, source)| MemoryLimit { bytes, source }))
}

/// The size of a file's data in memory, estimated from its first chunk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Data rows (the file's size over the first chunk's bytes per row).
    pub rows: u64,
    /// Columns.
    pub cols: usize,
    /// The `f32` matrix: `rows · cols · 4` bytes (one-hot columns widen it).
    pub matrix_bytes: u64,
}

/// [`Estimate`] of the file `reader` has open.
pub fn estimate(reader: &ChunkReader) -> Estimate {
    let (rows, bytes) = reader.first_chunk_size();
    let per_row = (bytes as f64 / rows.max(1) as f64).max(1.0);
    let est = (reader.file_size() as f64 / per_row).ceil() as u64;
    let cols = reader.columns().len();
    Estimate {
        rows: est,
        cols,
        matrix_bytes: est.saturating_mul(cols as u64 * 4),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("512K").unwrap(), 512 << 10);
        assert_eq!(parse_bytes("6M").unwrap(), 6 << 20);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes(" 2gb ").unwrap(), 2 << 30);
        for bad in ["", "M", "-1M", "12Q", "lots"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}

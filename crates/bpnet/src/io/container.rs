//! Checks of the safetensors container itself, done on the raw bytes before
//! anything is allocated from the sizes they declare.
//!
//! A safetensors file is `N: u64 little-endian`, then `N` bytes of JSON header
//! (`{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets":
//! [begin, end]}, ...}`), then the tensor data; offsets are relative to the
//! end of the header and the last tensor ends at the end of the file.

use serde_json::Value;

/// Length of the header-size prefix.
pub(crate) const PREFIX: usize = 8;

/// Largest header the safetensors crate accepts.
const MAX_HEADER: u64 = 100_000_000;

/// Checks the first bytes of a file of `file_len` bytes (at most
/// [`PREFIX`] of them are read): not empty, long enough, and a declared
/// header length that fits in the file. Returns the header length.
pub(crate) fn check_prefix(first: &[u8], file_len: u64) -> Result<u64, String> {
    if file_len == 0 {
        return Err("empty file (0 bytes), not a bpnet model; was an earlier save interrupted?".into());
    }
    let prefix: [u8; PREFIX] = first.get(..PREFIX).and_then(|p| p.try_into().ok()).ok_or_else(|| {
        format!("not a safetensors file: {file_len} bytes is too short for the 8-byte header length (truncated?)")
    })?;
    let n = u64::from_le_bytes(prefix);
    if n > MAX_HEADER {
        let text = prefix.iter().all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        let looks = if text {
            "it starts like a text file"
        } else {
            "its first 8 bytes are no plausible header length"
        };
        return Err(format!("not a safetensors file ({looks}); is it a bpnet model file?"));
    }
    let after_prefix = file_len.saturating_sub(PREFIX as u64);
    if n > after_prefix {
        return Err(format!(
            "truncated or not a safetensors file: it declares a {n}-byte header but only {after_prefix} bytes \
             follow the length prefix (an interrupted copy or download?)"
        ));
    }
    Ok(n)
}

/// Checks that `bytes` is a complete safetensors file: the
/// [prefix](check_prefix), a UTF-8 JSON object header, and tensor data that
/// ends exactly at the end of the file. Returns the problem in words, with a
/// hint.
pub(crate) fn check_container(bytes: &[u8]) -> Result<(), String> {
    let len = bytes.len();
    let n = check_prefix(bytes, len as u64)?;
    let after_prefix = (len - PREFIX) as u64;
    // n <= after_prefix < len, so it fits in usize.
    let header_end = PREFIX + n as usize;
    let header = bytes.get(PREFIX..header_end).unwrap_or_default();
    let text = std::str::from_utf8(header)
        .map_err(|e| format!("not a safetensors file, or its header is corrupt: the header is not UTF-8 text ({e})"))?;
    let json: Value = serde_json::from_str(text)
        .map_err(|e| format!("not a safetensors file, or its header is corrupt: the header is not valid JSON ({e})"))?;
    let entries = json
        .as_object()
        .ok_or("not a safetensors file, or its header is corrupt: the header is not a JSON object")?;
    let data_end = entries
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let data_have = after_prefix - n;
    if data_end > data_have {
        return Err(format!(
            "truncated: the header declares {data_end} bytes of tensor data but only {data_have} are present \
             (file is {len} bytes, expected {}); an interrupted copy or download?",
            (header_end as u64).saturating_add(data_end)
        ));
    }
    if data_end < data_have {
        return Err(format!(
            "corrupt: {} unexpected bytes after the tensor data (the header accounts for {} bytes, the file has \
             {len})",
            data_have - data_end,
            header_end as u64 + data_end
        ));
    }
    Ok(())
}

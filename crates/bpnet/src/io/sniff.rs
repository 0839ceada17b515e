//! What an existing file holds, judged from its first bytes: enough to tell
//! a bpnet model from a checkpoint, an ONNX model, an image or a CSV file
//! before replacing it.

use super::container::{PREFIX, check_prefix};
use serde_json::Value;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes read from the start of a file to judge it.
const HEAD: u64 = 8192;

/// Largest safetensors header read to tell a bpnet model from another file.
const MAX_SNIFFED_HEADER: u64 = 16 << 20;

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What a file on disk holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Zero bytes: nothing to lose.
    Empty,
    /// A folder.
    Folder,
    /// A bpnet model file.
    Model,
    /// A bpnet training checkpoint.
    Checkpoint,
    /// A safetensors file that is not bpnet's.
    Safetensors,
    /// An ONNX model.
    Onnx,
    /// A PNG image.
    Png,
    /// An SVG image.
    Svg,
    /// An HTML page written by bpnet (its title starts with `bpnet`: the
    /// tune and experiment reports).
    Html,
    /// Another HTML page (a user's own, never replaced without `--overwrite`).
    OtherHtml,
    /// A JSON document, with the text read of it (its first 8 KB): whose
    /// it is shows in its keys.
    Json(String),
    /// Other UTF-8 text (CSV and the like), with its first line.
    Text(String),
    /// A readable Parquet file, with its column names.
    #[cfg_attr(not(feature = "columnar"), allow(dead_code))] // only read with the feature
    Parquet(Vec<String>),
    /// A device, pipe or socket.
    Special,
    /// Anything else.
    Binary,
    /// It could not be read (the reason).
    Unreadable(String),
}

impl Found {
    /// Words for error messages, e.g. `a CSV file with header 'a,b,y'`.
    pub(crate) fn describe(&self) -> String {
        match self {
            Found::Empty => "nothing".into(),
            Found::Folder => "a folder".into(),
            Found::Model => "a bpnet model".into(),
            Found::Checkpoint => "a bpnet training checkpoint".into(),
            Found::Safetensors => "a safetensors file that is not a bpnet model".into(),
            Found::Onnx => "an ONNX model".into(),
            Found::Png => "a PNG image".into(),
            Found::Svg => "an SVG image".into(),
            Found::Html => "an HTML report written by bpnet".into(),
            Found::OtherHtml => "an HTML page not written by bpnet".into(),
            Found::Json(_) => "a JSON document".into(),
            Found::Text(first) => {
                let shown: String = first.chars().take(60).collect();
                let more = if shown.len() < first.len() { "..." } else { "" };
                format!("a CSV or text file starting '{shown}{more}'")
            }
            Found::Parquet(columns) => {
                let columns = columns.join(",");
                let shown: String = columns.chars().take(60).collect();
                let more = if shown.len() < columns.len() { "..." } else { "" };
                format!("a Parquet file with columns '{shown}{more}'")
            }
            Found::Special => "a device, pipe or socket".into(),
            Found::Binary => "data of another kind".into(),
            Found::Unreadable(why) => format!("a file that cannot be read ({why})"),
        }
    }
}

/// Judges the file at `path` (following symlinks).
pub(crate) fn sniff(path: &Path) -> Found {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Found::Unreadable(e.to_string()),
    };
    if meta.is_dir() {
        return Found::Folder;
    }
    if !meta.is_file() {
        return Found::Special; // never opened: a pipe would block
    }
    if meta.len() == 0 {
        return Found::Empty;
    }
    let mut head = Vec::new();
    let read = File::open(path).and_then(|f| f.take(HEAD).read_to_end(&mut head));
    if let Err(e) = read {
        return Found::Unreadable(e.to_string());
    }
    if head.starts_with(PNG_MAGIC) {
        return Found::Png;
    }
    if head.starts_with(b"PAR1") {
        return parquet(path);
    }
    if let Some(found) = safetensors(path, &head, meta.len()) {
        return found;
    }
    if is_onnx(&head) {
        return Found::Onnx;
    }
    text(&head).unwrap_or(Found::Binary)
}

/// A file that starts as Parquet does: its columns when it reads as one
/// (through the guarded reader: a damaged file is data of another kind).
#[cfg(feature = "columnar")]
fn parquet(path: &Path) -> Found {
    match crate::data::table::parquet_columns(path) {
        Some(columns) => Found::Parquet(columns),
        None => Found::Binary,
    }
}

#[cfg(not(feature = "columnar"))]
fn parquet(_path: &Path) -> Found {
    Found::Binary
}

/// A safetensors file: bpnet's (model or checkpoint) or another.
fn safetensors(path: &Path, head: &[u8], len: u64) -> Option<Found> {
    let n = check_prefix(head, len).ok()?;
    if n > MAX_SNIFFED_HEADER {
        return None;
    }
    let end = PREFIX + n as usize;
    let header = match head.get(PREFIX..end) {
        Some(h) => h.to_vec(),
        None => {
            let mut f = File::open(path).ok()?;
            f.seek(SeekFrom::Start(PREFIX as u64)).ok()?;
            let mut h = Vec::new();
            f.take(n).read_to_end(&mut h).ok()?;
            h
        }
    };
    let json: Value = serde_json::from_slice(&header).ok()?;
    let meta = json.as_object()?.get("__metadata__");
    Some(match meta.and_then(|m| m.get("format")).and_then(Value::as_str) {
        Some(super::FORMAT_NAME) if meta.is_some_and(|m| m.get("resume").is_some()) => Found::Checkpoint,
        Some(super::FORMAT_NAME) => Found::Model,
        _ => Found::Safetensors,
    })
}

/// An ONNX `ModelProto`: field 1 (`ir_version`, a small varint) first, then
/// another of its fields (producer, domain, graph, opsets...).
fn is_onnx(head: &[u8]) -> bool {
    if head.first() != Some(&0x08) {
        return false;
    }
    let mut i = 1;
    let mut version = 0u64;
    while let Some(&b) = head.get(i) {
        version |= u64::from(b & 0x7f) << (7 * (i - 1));
        i += 1;
        if b & 0x80 == 0 || i > 4 {
            break;
        }
    }
    let Some(&tag) = head.get(i) else {
        return false;
    };
    (1..=64).contains(&version) && (2..=20).contains(&(tag >> 3)) && matches!(tag & 7, 0 | 2)
}

/// UTF-8 text without NUL bytes (a character cut off by the end of `head`
/// is fine), by its start.
fn text(head: &[u8]) -> Option<Found> {
    if head.contains(&0) {
        return None;
    }
    let s = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    let s = s.strip_prefix('\u{feff}').unwrap_or(s);
    let start = s.trim_start();
    let lower: String = start.chars().take(256).collect::<String>().to_ascii_lowercase();
    Some(
        if lower.starts_with("<svg") || (lower.starts_with("<?xml") && lower.contains("<svg")) {
            Found::Svg
        } else if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
            // bpnet's reports name themselves in their first lines.
            match lower.contains("<title>bpnet") {
                true => Found::Html,
                false => Found::OtherHtml,
            }
        } else if start.starts_with('{') || start.starts_with('[') {
            Found::Json(start.to_string())
        } else {
            Found::Text(s.lines().next().unwrap_or("").trim_end_matches('\r').to_string())
        },
    )
}

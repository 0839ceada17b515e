//! Inputs must be files (or folders): bpnet reads a table more than once
//! (its head to type the columns, then its rows; a streamed table once an
//! epoch) and a model file's length before its contents. A named pipe (a
//! shell's `<(...)` too) can be read once and blocks when opened again; a
//! device such as `/dev/zero` never ends. Such a path is refused before it
//! is opened: opening a pipe for reading waits for a writer.

use crate::error::{Error, Result};
use std::path::Path;

/// `Ok` when `path` is a regular file or a folder (after symlinks), or does
/// not exist (the reader then names the missing file); else an error naming
/// what it is.
pub fn check_regular(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    if meta.is_file() || meta.is_dir() {
        return Ok(());
    }
    Err(Error::Format {
        path: path.to_path_buf(),
        reason: format!(
            "{}, not a file: bpnet reads its inputs more than once (or to their end); save the data to a file first",
            kind(&meta)
        ),
    })
}

#[cfg(unix)]
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "a named pipe"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(not(unix))]
fn kind(_meta: &std::fs::Metadata) -> &'static str {
    "not a regular file"
}

//! Atomic file replacement: write a sibling temporary file, flush and sync it,
//! rename it over the target, then sync the directory. Readers see either the
//! old file or the complete new one, never a half-written target.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent saves within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically.
///
/// The data goes to `.{name}.tmp-{pid}-{n}` in the target's directory, is
/// flushed and `fsync`ed, then renamed over `path`; finally the directory is
/// synced so that the rename itself survives a crash. On any error the
/// temporary file is removed and an existing `path` is left untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().ok_or_else(|| Error::Format {
        path: path.to_path_buf(),
        reason: "not a file name to save to".into(),
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id()));
    let written = write_synced(&tmp, bytes).and_then(|()| {
        fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    });
    if let Err(e) = written {
        // Best effort: the temporary file may not exist if creating it failed.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Creates `tmp` (which must not exist), writes `bytes`, flushes and syncs.
fn write_synced(tmp: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: tmp.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new().write(true).create_new(true).open(tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.flush().map_err(io)?;
    file.sync_all().map_err(io)
}

/// Syncs a directory so that a rename inside it is durable (Unix only; other
/// systems have no portable way to open a directory).
fn sync_dir(dir: &Path) -> Result<()> {
    if cfg!(unix) {
        let io = |source| Error::Io {
            path: PathBuf::from(dir),
            source,
        };
        File::open(dir).map_err(io)?.sync_all().map_err(io)?;
    }
    Ok(())
}

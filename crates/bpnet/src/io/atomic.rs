//! Atomic file replacement: write a sibling temporary file, flush and sync it,
//! rename it over the target, then sync the directory. Readers see either the
//! old file or the complete new one, never a half-written target. Temporary
//! files left by a killed writer are removed by the next successful write of
//! the same file.

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
///
/// After a successful rename, other `.{name}.tmp-{pid}-{n}` files of the same
/// target whose process no longer runs (left by a killed write) are removed;
/// those of running processes are kept. A `path` that is an input registered
/// by [`OutputPlan::check`](super::OutputPlan::check) is refused.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    super::guard::refuse_protected(path)?;
    refuse_special(path)?;
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
    sync_dir(dir)?;
    remove_stale_temps(dir, &name.to_string_lossy());
    Ok(())
}

/// Removes `.{name}.tmp-{pid}-{n}` files in `dir` whose writer `pid` is
/// neither this process nor any running one (and that is not a protected
/// input). Best effort: a file that cannot be listed or removed is left alone.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let Some((pid, _)) = rest.split_once('-').filter(|(p, n)| digits(p) && digits(n)) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        let stale =
            pid != std::process::id() && !process_alive(pid) && super::guard::refuse_protected(&entry.path()).is_ok();
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (Unix: `kill(pid, 0)`; a process of another
/// user counts). Elsewhere every process is assumed alive.
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // No process has id 0 or one beyond pid_t: such a writer is gone.
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// A device, pipe or socket at `path` would itself be replaced by the
/// rename (e.g. `/dev/null` by a regular file): refused.
fn refuse_special(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if !(m.is_file() || m.is_dir() || m.file_type().is_symlink()) => Err(Error::Format {
            path: path.to_path_buf(),
            reason: "not a regular file (a device, pipe or socket); refusing to replace it".into(),
        }),
        _ => Ok(()),
    }
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

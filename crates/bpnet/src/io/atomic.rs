//! Atomic file replacement: write a sibling temporary file, flush and sync it,
//! rename it over the target, then sync the directory. Readers see either the
//! old file or the complete new one, never a half-written target. Temporary
//! files left by a killed writer are removed by the next successful write of
//! the same file. A target that is a symbolic link is written through: the
//! file it points to is replaced and the link stays (as `>` in a shell
//! would).

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
    let mut w = AtomicWriter::create(path)?;
    w.write(bytes)?;
    w.commit()
}

/// A file written piece by piece (e.g. predictions as they are computed)
/// and put in place as [`write_atomic`] does by [`AtomicWriter::commit`]:
/// until then only the temporary file exists, and an error or a drop
/// without commit removes it, leaving an existing target untouched.
pub struct AtomicWriter {
    /// What the user named (for messages).
    path: PathBuf,
    /// `path` after its symbolic links: the file the rename replaces.
    target: PathBuf,
    tmp: PathBuf,
    dir: PathBuf,
    name: String,
    file: Option<std::io::BufWriter<File>>,
}

impl AtomicWriter {
    /// Creates the temporary file for `path` (refusing a protected input
    /// or a device, as [`write_atomic`] does).
    pub fn create(path: &Path) -> Result<AtomicWriter> {
        super::guard::refuse_protected(path)?;
        let target = through_links(path);
        refuse_special(&target)?;
        let name = target.file_name().ok_or_else(|| Error::Format {
            path: path.to_path_buf(),
            reason: "not a file name to save to".into(),
        })?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = name.to_string_lossy().into_owned();
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AtomicWriter {
            path: path.to_path_buf(),
            target,
            tmp,
            dir,
            name,
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// An error of the temporary file, named by the target (what the user
    /// asked for).
    fn io(&self) -> impl Fn(std::io::Error) -> Error + '_ {
        |source| Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes out and syncs what was appended, so that a full disk shows
    /// here; [`AtomicWriter::commit`] then only renames. For outputs that
    /// belong together: prepare each, then commit them one after the other.
    pub fn prepare(&mut self) -> Result<()> {
        let r = match self.file.as_mut() {
            Some(f) => f.flush().and_then(|()| f.get_ref().sync_all()),
            None => Ok(()),
        };
        r.map_err(self.io())
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let r = match self.file.as_mut() {
            Some(f) => f.write_all(bytes),
            None => Ok(()),
        };
        r.map_err(self.io())
    }

    /// Flushes and syncs the temporary file, renames it over the target and
    /// syncs the directory; removes stale temporary files of the target.
    pub fn commit(mut self) -> Result<()> {
        let Some(file) = self.file.take() else { return Ok(()) };
        let done = file
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(self.io())
            .and_then(|()| {
                fs::rename(&self.tmp, &self.target).map_err(|source| Error::Io {
                    path: self.path.clone(),
                    source,
                })
            });
        if let Err(e) = done {
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        sync_dir(&self.dir)?;
        remove_stale_temps(&self.dir, &self.name);
        Ok(())
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            // Not committed: nothing half-written is left behind.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// `path` with its symbolic links followed, as far as they lead (a link
/// to a file not there yet names that file; a relative link is read
/// against its own folder). At most 40 links, as the kernel's limit, and
/// `path` itself where none is.
pub(crate) fn through_links(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&p) {
            Ok(to) if to.is_absolute() => p = to,
            Ok(to) => p = p.parent().unwrap_or(Path::new("")).join(to),
            Err(_) => return p,
        }
    }
    p
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

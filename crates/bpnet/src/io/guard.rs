//! Which file a path names once symlinks and `..` are resolved, and the
//! run's input files that [`write_atomic`](super::write_atomic) refuses to
//! replace (registered by [`OutputPlan::check`](super::OutputPlan::check)).

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Where a path leads: the absolute path with every symlink and `..`
/// resolved, and the device and inode of the file there when one exists (so
/// two hard links to one file are the same file too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// The resolved absolute path.
    pub(crate) path: PathBuf,
    /// `(device, inode)` of an existing file (Unix only).
    file: Option<(u64, u64)>,
}

impl Identity {
    /// True when both name the same file.
    pub(crate) fn same(&self, other: &Identity) -> bool {
        self.path == other.path || (self.file.is_some() && self.file == other.file)
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Resolves `path`. A path that does not exist yet (an output to be
/// created) is resolved through its nearest existing ancestor, the rest
/// applied lexically; a dangling symlink is followed to the file it names,
/// which is where [`write_atomic`](super::write_atomic) writes (two
/// outputs, one a dangling link to the other, had passed as different
/// files, and the second write replaced the first). Fails, with the reason
/// in words, when that ancestor is not a folder.
pub(crate) fn identify(path: &Path) -> std::result::Result<Identity, String> {
    let followed = super::atomic::through_links(path);
    let path = followed.as_path();
    if let Ok(real) = std::fs::canonicalize(path) {
        return Ok(Identity {
            file: file_id(&real),
            path: real,
        });
    }
    let abs = match path.is_absolute() {
        true => path.to_path_buf(),
        false => std::env::current_dir()
            .map_err(|e| format!("cannot be resolved: no current folder ({e})"))?
            .join(path),
    };
    let parts: Vec<Component<'_>> = abs.components().collect();
    for k in (0..parts.len()).rev() {
        let prefix: PathBuf = parts[..k].iter().collect();
        let Ok(mut real) = std::fs::canonicalize(&prefix) else {
            continue;
        };
        if !real.is_dir() {
            return Err(format!("cannot be written: {} is not a folder", prefix.display()));
        }
        for c in &parts[k..] {
            match c {
                Component::ParentDir => {
                    real.pop();
                }
                Component::Normal(name) => real.push(name),
                _ => {}
            }
        }
        return Ok(Identity { path: real, file: None });
    }
    Err("cannot be resolved to a file".into())
}

/// The inputs of this process's run, by label (e.g. `--data wine.csv`).
static PROTECTED: Mutex<Vec<(String, Identity)>> = Mutex::new(Vec::new());

/// Adds an input that no later write may replace.
pub(crate) fn protect(label: String, id: Identity) {
    let mut list = PROTECTED.lock().unwrap_or_else(|e| e.into_inner());
    if !list.iter().any(|(_, known)| known == &id) {
        list.push((label, id));
    }
}

/// Refuses a write to `path` when it is a protected input: the last line of
/// defence behind [`OutputPlan::check`](super::OutputPlan::check).
pub(crate) fn refuse_protected(path: &Path) -> Result<()> {
    let list = PROTECTED.lock().unwrap_or_else(|e| e.into_inner());
    if list.is_empty() {
        return Ok(());
    }
    let Ok(id) = identify(path) else {
        return Ok(()); // the write itself reports the path
    };
    match list.iter().find(|(_, input)| input.same(&id)) {
        Some((label, _)) => Err(Error::Output {
            output: path.display().to_string(),
            problem: format!("is the input {label}; refusing to replace it"),
        }),
        None => Ok(()),
    }
}

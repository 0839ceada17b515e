//! The `bpnet train` configuration file: every option of
//! [`bpnet::workflow::TrainConfig`] has a TOML key. Precedence: built-in
//! defaults < `--config FILE` < command-line flags. `--print-config` prints
//! the fully resolved configuration as TOML, which `--config` reads back, so
//! any run can be saved and repeated.

use bpnet::workflow::TrainConfig;
use bpnet::{Error, Result};
use std::path::Path;

/// Reading and writing [`TrainConfig`] as TOML.
pub trait TomlConfig: Sized {
    /// Reads a TOML file; unknown keys are errors naming the key.
    fn from_file(path: &Path) -> Result<Self>;
    /// The configuration as TOML.
    fn to_toml(&self) -> String;
}

impl TomlConfig for TrainConfig {
    fn from_file(path: &Path) -> Result<Self> {
        let text = read_capped(path)?;
        toml::from_str(&text).map_err(|e| {
            let at = e.span().map_or(String::new(), |s| {
                let before = text.get(..s.start.min(text.len())).unwrap_or("");
                let line = before.matches('\n').count() + 1;
                // In characters (not bytes), a byte-order mark not counted.
                let start = before.rfind('\n').map_or(0, |i| i + 1);
                let column = before[start..].trim_start_matches('\u{feff}').chars().count() + 1;
                format!("line {line}, column {column}: ")
            });
            Error::Format {
                path: path.to_path_buf(),
                reason: format!("{at}{}", e.message().trim()),
            }
        })
    }

    fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Whether the configuration file at `path` (if any) sets `key` itself
/// (not left to the default).
pub fn file_sets(path: Option<&Path>, key: &str) -> bool {
    let Some(path) = path else { return false };
    read_capped(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key(key))
}

/// `e` named by the configuration file when it is about an option that
/// `file` sets and the command line does not give: the option's flag alone
/// (`invalid --optimizer: ...`) pointed at a flag that was never given.
pub fn in_file(e: Error, file: Option<&Path>) -> Error {
    let (Error::Config { field, reason }, Some(path)) = (&e, file) else {
        return e;
    };
    // Library checks name the key (`dropout`) or the quantity (`learning
    // rate`), the command line the flag.
    let flag = key_of(field, path).replace('_', "-");
    let given = std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a.strip_prefix("--")
            .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
    });
    let key = flag.replace('-', "_");
    if given || !file_sets(Some(path), &key) {
        return e;
    }
    Error::config(format!("{key} in {}", path.display()), reason.clone())
}

/// The configuration key a check's field name stands for: the library's
/// checks name some options by what they are (`lr = -0.5` in a file was
/// refused as "invalid learning rate", naming neither file nor key).
fn key_of(field: &str, path: &Path) -> String {
    let key = match field {
        "learning rate" => "lr",
        "weight decay" => "weight_decay",
        "layer widths" => "hidden",
        "ghost batch size" => "norm",
        "batch size" => "batch_size",
        "epochs/steps" if file_sets(Some(path), "steps") => "steps",
        "epochs/steps" => "epochs",
        f => f.strip_prefix("--").unwrap_or(f),
    };
    key.replace('-', "_")
}

/// A count that must be at least 1 (`--steps`, `--limit`): 0 had meant
/// "not given" (a config file's `steps = 0` still does), so `--steps 0`
/// trained the default 100 epochs and `--limit 0` used every row.
pub fn count_value(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// `--impute`: none, mean or median (an empty value had been read as
/// none, silently).
pub fn impute_value(s: &str) -> Result<String, String> {
    match s.trim() {
        "none" | "mean" | "median" => Ok(s.trim().to_string()),
        _ => Err(format!("'{s}' is not one of none, mean, median")),
    }
}

/// A note on a batch size from the configuration file larger than the
/// `rows` training rows: as the flag's it is too large, but a printed
/// configuration (`--print-config` writes the default 128) must run on a
/// small table too, so the file's value takes every row, as the default
/// does, and says so (it trained one batch without a word).
pub fn batch_note(file: Option<&Path>, flag: Option<usize>, batch: usize, rows: usize) -> Option<String> {
    (flag.is_none() && batch > rows && file_sets(file, "batch_size")).then(|| {
        format!(
            "note: batch_size = {batch} in {} is larger than the {rows} training rows: one batch of {rows} per epoch",
            file.map_or(String::new(), |p| p.display().to_string())
        )
    })
}

/// Overwrites `cfg.field` with each command-line value that was given.
#[macro_export]
macro_rules! overlay {
    ($cfg:expr, $args:expr, [$($field:ident),* $(,)?]) => {
        $(if let Some(v) = $args.$field.clone() { $cfg.$field = v; })*
    };
}

/// The most bytes a configuration file may hold (one run's settings take a
/// few KB): a device such as `/dev/zero` is refused, not read without end.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The text of a configuration file, read once (a pipe will do), at most
/// [`MAX_CONFIG_BYTES`].
fn read_capped(path: &Path) -> Result<String> {
    use std::io::Read;
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::Format {
            path: path.to_path_buf(),
            reason: format!("more than {} MiB: not a configuration file", MAX_CONFIG_BYTES >> 20),
        });
    }
    String::from_utf8(bytes).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: format!("not UTF-8 text ({e})"),
    })
}

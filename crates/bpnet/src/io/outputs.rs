//! A run's inputs and planned outputs, checked before any work so that no
//! command ever replaces the files it reads.
//!
//! The rules are on [`OutputPlan`].

use super::guard::{Identity, identify, protect};
use super::sniff::{Found, sniff};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What a planned output file will hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A bpnet model file; its name must end in `.safetensors`.
    Model,
    /// A bpnet training checkpoint.
    Checkpoint,
    /// An ONNX model.
    Onnx,
    /// A PNG image.
    Png,
    /// An SVG image.
    Svg,
    /// An HTML page.
    Html,
    /// A JSON document; when `keys` are given, one of bpnet's that holds
    /// one of them (`"key":` among its first 8 KB: a user's own JSON of the
    /// same name is not replaced without `--overwrite`; any JSON was).
    Json(Vec<String>),
    /// A CSV file of `what` (e.g. `predictions`). An existing file is of this
    /// kind when its first line equals one of `headers`, or, for an entry
    /// ending in `,` or a space, starts with it, or when its fields match one
    /// of `patterns` ([`Kind::with_patterns`]); with neither, any text file
    /// is. A Parquet file's column names are its fields.
    Csv {
        /// What the rows are, for messages.
        what: String,
        /// Header lines (or first fields followed by `,`) of earlier versions.
        headers: Vec<String>,
        /// Field patterns: `prediction,p_*` is a first field `prediction`,
        /// then one or more fields starting with `p_` (a pattern ending in
        /// `*` is a prefix; the last repeats over the remaining fields).
        patterns: Vec<String>,
    },
    /// A Markdown file of `what`, known by its first line: equal to one of
    /// `titles`, or starting with one that ends in a space.
    Markdown {
        /// What it holds, for messages.
        what: String,
        /// Its possible first lines.
        titles: Vec<String>,
    },
}

impl Kind {
    /// A [`Kind::Json`] of bpnet's, known by one of `keys`.
    pub fn json(keys: &[&str]) -> Kind {
        Kind::Json(keys.iter().map(|k| k.to_string()).collect())
    }

    /// A [`Kind::Markdown`] of `what` recognised by the start of its first line.
    pub fn markdown(what: &str, titles: &[&str]) -> Kind {
        Kind::Markdown {
            what: what.into(),
            titles: titles.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// A [`Kind::Csv`] of `what` recognised by `headers`.
    pub fn csv(what: &str, headers: &[&str]) -> Kind {
        Kind::Csv {
            what: what.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            patterns: Vec::new(),
        }
    }

    /// This [`Kind::Csv`] also recognised by the field `patterns`.
    pub fn with_patterns(self, patterns: &[&str]) -> Kind {
        match self {
            Kind::Csv { what, headers, .. } => Kind::Csv {
                what,
                headers,
                patterns: patterns.iter().map(|p| p.to_string()).collect(),
            },
            other => other,
        }
    }

    fn accepts(&self, found: &Found) -> bool {
        let csv = |headers: &[String], patterns: &[String], line: &str, fields: &[String]| {
            (headers.is_empty() && patterns.is_empty())
                || headers.iter().any(|h| header_matches(h, line))
                || patterns.iter().any(|p| fields_match(p, fields))
        };
        match (self, found) {
            (_, Found::Empty) => true,
            (Kind::Csv { headers, patterns, .. }, Found::Text(first)) => {
                csv(headers, patterns, first, &csv_fields(first))
            }
            (Kind::Csv { headers, patterns, .. }, Found::Parquet(columns)) => {
                csv(headers, patterns, &columns.join(","), columns)
            }
            (Kind::Markdown { titles, .. }, Found::Text(first)) => titles.iter().any(|t| header_matches(t, first)),
            (Kind::Markdown { .. }, _) => false,
            (Kind::Model, f) => *f == Found::Model,
            (Kind::Checkpoint, f) => *f == Found::Checkpoint,
            (Kind::Onnx, f) => *f == Found::Onnx,
            (Kind::Png, f) => *f == Found::Png,
            (Kind::Svg, f) => *f == Found::Svg,
            (Kind::Html, f) => *f == Found::Html,
            (Kind::Json(keys), Found::Json(head)) => {
                keys.is_empty() || keys.iter().any(|k| head.contains(&format!("\"{k}\":")))
            }
            (Kind::Json(_), _) => false,
            (Kind::Csv { .. }, _) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Kind::Model => "a bpnet model".into(),
            Kind::Checkpoint => "a bpnet training checkpoint".into(),
            Kind::Onnx => "an ONNX model".into(),
            Kind::Png => "a PNG image".into(),
            Kind::Svg => "an SVG image".into(),
            Kind::Html => "an HTML report written by bpnet".into(),
            Kind::Json(keys) if keys.is_empty() => "a JSON document".into(),
            Kind::Json(_) => "a JSON document written by bpnet".into(),
            Kind::Csv { what, .. } => format!("{what} (CSV)"),
            Kind::Markdown { what, .. } => format!("{what} (Markdown)"),
        }
    }
}

/// Whether the fields of a header match the pattern `p` of
/// [`Kind::with_patterns`] (a field pattern ending in `*` is a prefix, the
/// last repeats over the remaining fields).
fn fields_match(p: &str, fields: &[String]) -> bool {
    let patterns: Vec<&str> = p.split(',').collect();
    fields.len() >= patterns.len()
        && fields.iter().enumerate().all(|(i, f)| {
            let p = patterns[i.min(patterns.len() - 1)];
            match p.strip_suffix('*') {
                Some(prefix) => f.starts_with(prefix),
                None => f == p,
            }
        })
}

/// Whether the header line `first` is the one an entry `h` of
/// [`Kind::Csv`]'s headers names: ending in `,` or a space, as a prefix of
/// the line; else the whole line (taken as it is: a target named `sales*`
/// is no pattern).
fn header_matches(h: &str, first: &str) -> bool {
    match h.ends_with([',', ' ']) {
        true => first.starts_with(h),
        false => first == h,
    }
}

/// The fields of the CSV line `line` (quotes read as RFC 4180).
fn csv_fields(line: &str) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    match reader.records().next() {
        Some(Ok(record)) => record.iter().map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

struct Input {
    flag: String,
    path: PathBuf,
    /// Read once from start to end: a pipe will do (see [`OutputPlan::input_once`]).
    once: bool,
}

struct Output {
    label: String,
    flag: String,
    path: PathBuf,
    kind: Kind,
    /// Inside an output folder the run creates.
    in_folder: bool,
}

struct Folder {
    label: String,
    flag: String,
    path: PathBuf,
}

/// A run's inputs and outputs.
///
/// Rules, checked by [`OutputPlan::check`] in this order:
///
/// 1. An output that resolves (after symlinks and `..`, or as a hard link)
///    to one of the run's inputs is refused, `--overwrite` or not. A folder
///    given as input counts as all the files directly in it.
/// 2. Two outputs that resolve to the same file are refused.
/// 3. An output file must be writable where it is: its folder exists (or is
///    an output folder the run creates), it is not itself a folder, a device,
///    a pipe or a socket, and an output folder is not an existing file. A
///    model file's name ends in `.safetensors`.
/// 4. Without `--overwrite` (`OutputPlan::new(true)`), an existing file is replaced only when it
///    already holds the same [`Kind`] (judged from its first bytes), e.g. a
///    model over an older model, predictions over older predictions; an
///    empty file may always be replaced.
///
/// Passing the check also registers the inputs with
/// [`write_atomic`](super::write_atomic), which then refuses to replace any
/// of them: the last line of defence behind the plan.
///
/// ```
/// use bpnet::io::{Kind, OutputPlan};
/// let dir = std::env::temp_dir().join(format!("bpnet-plan-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let data = dir.join("wine.csv");
/// std::fs::write(&data, "a,y\n1,2\n").unwrap();
/// let mut plan = OutputPlan::new(false);
/// plan.input("--data", &data);
/// plan.output("--out", &dir.join("sub/../wine.csv"), Kind::Model);
/// let err = plan.check().unwrap_err().to_string();
/// assert!(err.contains("is the input --data"), "{err}");
/// # let _ = std::fs::remove_dir_all(&dir);
/// ```
pub struct OutputPlan {
    overwrite: bool,
    inputs: Vec<Input>,
    outputs: Vec<Output>,
    folders: Vec<Folder>,
}

impl OutputPlan {
    /// An empty plan; `overwrite` lets outputs replace files of another kind.
    pub fn new(overwrite: bool) -> Self {
        OutputPlan {
            overwrite,
            inputs: Vec::new(),
            outputs: Vec::new(),
            folders: Vec::new(),
        }
    }

    /// An input file or folder named by `flag` (missing ones are left to the
    /// reader to report).
    pub fn input(&mut self, flag: &str, path: &Path) -> &mut Self {
        self.push_input(flag, path, false)
    }

    /// An input read once from start to end (a configuration file): unlike
    /// [`OutputPlan::input`], a named pipe or a shell's `<(...)` is allowed.
    pub fn input_once(&mut self, flag: &str, path: &Path) -> &mut Self {
        self.push_input(flag, path, true)
    }

    fn push_input(&mut self, flag: &str, path: &Path, once: bool) -> &mut Self {
        self.inputs.push(Input {
            flag: flag.into(),
            path: path.to_path_buf(),
            once,
        });
        self
    }

    /// An output file named by `flag`.
    pub fn output(&mut self, flag: &str, path: &Path, kind: Kind) -> &mut Self {
        let label = format!("{flag} {}", path.display());
        self.push(label, flag, path, kind, false)
    }

    /// An output file whose name derives from `flag`; `role` says how, e.g.
    /// `the history of --out m.safetensors`.
    pub fn derived(&mut self, flag: &str, path: &Path, role: &str, kind: Kind) -> &mut Self {
        let label = format!("{} ({role})", path.display());
        self.push(label, flag, path, kind, false)
    }

    /// An output folder (created by the run) and the files written into it;
    /// `role` as for [`derived`](Self::derived), or `None` when `flag` names
    /// the folder itself.
    pub fn folder(&mut self, flag: &str, dir: &Path, role: Option<&str>, files: &[(&str, Kind)]) -> &mut Self {
        let label = match role {
            Some(r) => format!("{} ({r})", dir.display()),
            None => format!("{flag} {}", dir.display()),
        };
        for (name, kind) in files {
            let path = dir.join(name);
            let file_label = format!("{} (in {label})", path.display());
            self.push(file_label, flag, &path, kind.clone(), true);
        }
        self.folders.push(Folder {
            label,
            flag: flag.into(),
            path: dir.to_path_buf(),
        });
        self
    }

    fn push(&mut self, label: String, flag: &str, path: &Path, kind: Kind, in_folder: bool) -> &mut Self {
        self.outputs.push(Output {
            label,
            flag: flag.into(),
            path: path.to_path_buf(),
            kind,
            in_folder,
        });
        self
    }

    /// Applies the rules; on success registers the inputs as protected.
    /// Errors are [`Error::Output`] (or [`Error::Config`] for a model file
    /// name without `.safetensors`), naming both files of a collision.
    pub fn check(&self) -> Result<()> {
        for input in self.inputs.iter().filter(|i| !i.once) {
            super::check_regular(&input.path)?;
        }
        if let Some(o) = self.outputs.iter().find(|o| o.path.as_os_str() == "-") {
            // It wrote a file named `-`, where `-` usually means stdout.
            let stdout = "is standard output, which this command does not write to; name a file";
            return Err(refuse(&o.label, format!("{stdout} for {}", o.flag)));
        }
        let inputs = self.resolve_inputs();
        self.check_folders(&inputs)?;
        let outputs = self
            .outputs
            .iter()
            .map(|o| identify(&o.path).map_err(|p| refuse(&o.label, p)))
            .collect::<Result<Vec<Identity>>>()?;
        for (o, id) in self.outputs.iter().zip(&outputs) {
            if let Some((label, input)) = inputs.iter().find(|(_, input)| input.same(id)) {
                // Name the file itself when the two were spelled differently.
                let shown = match label.ends_with(&format!(" {}", o.path.display())) {
                    true => String::new(),
                    false => format!(" (both are {})", input.path.display()),
                };
                let same = format!("is the input {label}{shown}; choose another {}", o.flag);
                return Err(refuse(&o.label, same));
            }
        }
        for (i, (o, id)) in self.outputs.iter().zip(&outputs).enumerate() {
            if let Some(first) = self.outputs[..i].iter().zip(&outputs).find(|(_, other)| other.same(id)) {
                let dup = format!("is also written as {}; choose another {}", first.0.label, o.flag);
                return Err(refuse(&o.label, dup));
            }
        }
        self.check_places()?;
        if !self.overwrite {
            self.check_kinds()?;
        }
        self.check_writable()?;
        for (label, id) in inputs {
            protect(label, id);
        }
        Ok(())
    }

    /// Every input file (those directly inside an input folder included)
    /// with its label.
    fn resolve_inputs(&self) -> Vec<(String, Identity)> {
        let mut out = Vec::new();
        for input in &self.inputs {
            let Ok(id) = identify(&input.path) else { continue };
            if input.path.is_dir() {
                let entries = std::fs::read_dir(&input.path).into_iter().flatten().flatten();
                for e in entries.filter(|e| e.path().is_file()) {
                    if let Ok(id) = identify(&e.path()) {
                        out.push((format!("{} {}", input.flag, e.path().display()), id));
                    }
                }
            } else if input.path.exists() {
                out.push((format!("{} {}", input.flag, input.path.display()), id));
            }
        }
        out
    }

    /// An output folder that exists is a folder (and not an input file).
    fn check_folders(&self, inputs: &[(String, Identity)]) -> Result<()> {
        let Some(f) = self.folders.iter().find(|f| f.path.exists() && !f.path.is_dir()) else {
            return Ok(());
        };
        let id = identify(&f.path).map_err(|p| refuse(&f.label, p))?;
        let problem = match inputs.iter().find(|(_, input)| input.same(&id)) {
            Some((label, _)) => format!("is the input {label}; choose another {}", f.flag),
            None => format!(
                "must be a folder but holds {}; choose another {}",
                sniff(&f.path).describe(),
                f.flag
            ),
        };
        Err(refuse(&f.label, problem))
    }

    /// Files are files in existing folders; model names end in `.safetensors`.
    fn check_places(&self) -> Result<()> {
        for o in &self.outputs {
            let Some(name) = o.path.file_name() else {
                return Err(refuse(
                    &o.label,
                    format!("is not a file name; choose another {}", o.flag),
                ));
            };
            if o.path.is_dir() {
                return Err(refuse(
                    &o.label,
                    format!("is a folder; choose a file name for {}", o.flag),
                ));
            }
            if o.path.exists() && !o.path.is_file() {
                // A rename would replace the device, pipe or socket itself.
                let problem = format!(
                    "is not a regular file (a device, pipe or socket); choose another {}",
                    o.flag
                );
                return Err(refuse(&o.label, problem));
            }
            // Where the file goes: through a symlink, dangling or not, as
            // `write_atomic` writes (a link into a missing folder was found
            // only when the result was saved, after the work).
            let target = super::atomic::through_links(&o.path);
            let parent = target.parent().filter(|p| !p.as_os_str().is_empty() && !o.in_folder);
            if let Some(parent) = parent.filter(|p| !p.is_dir()) {
                let p = parent.display();
                let via = match target == o.path {
                    true => String::new(),
                    false => format!(" (it is a link to {})", target.display()),
                };
                return Err(refuse(
                    &o.label,
                    format!("cannot be written{via}: the folder {p} does not exist"),
                ));
            }
            let ext = Path::new(name).extension().and_then(|e| e.to_str());
            if o.kind == Kind::Model && !ext.is_some_and(|e| e.eq_ignore_ascii_case("safetensors")) {
                return Err(Error::config(
                    o.flag.clone(),
                    format!(
                        "a model file name must end in .safetensors (NAME.safetensors; its history is \
                         NAME.history.csv), not '{}'",
                        o.path.display()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Each output's folder takes a new file (every output is written to a
    /// temporary file beside it, then renamed): a file is created there and
    /// removed, so that a folder without write permission is found before
    /// the work, not when its result is saved. For a folder the run
    /// creates, the nearest folder above it that exists.
    fn check_writable(&self) -> Result<()> {
        let mut seen: Vec<PathBuf> = Vec::new();
        for (i, o) in self.outputs.iter().enumerate() {
            let target = super::atomic::through_links(&o.path);
            let mut dir = target.parent().map_or_else(PathBuf::new, Path::to_path_buf);
            while !dir.as_os_str().is_empty() && !dir.is_dir() {
                dir = dir.parent().map_or_else(PathBuf::new, Path::to_path_buf);
            }
            if seen.contains(&dir) {
                continue;
            }
            let folder = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                &dir
            };
            let probe = folder.join(format!(".bpnet-write-check-{}-{i}", std::process::id()));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
                Ok(_) => {
                    let _ = std::fs::remove_file(&probe);
                }
                Err(e) => {
                    let problem = format!(
                        "cannot be written: no new file can be made in {} ({e})",
                        folder.display()
                    );
                    return Err(refuse(&o.label, problem));
                }
            }
            seen.push(dir);
        }
        Ok(())
    }

    /// Without `--overwrite`, existing files must hold the kind about to be written.
    fn check_kinds(&self) -> Result<()> {
        for o in &self.outputs {
            if !o.path.exists() {
                continue;
            }
            let found = sniff(&o.path);
            if !o.kind.accepts(&found) {
                return Err(refuse(
                    &o.label,
                    format!(
                        "exists and holds {}, not {}; pass --overwrite to replace it, or choose another {}",
                        found.describe(),
                        o.kind.describe(),
                        o.flag
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Why `path` may not be replaced by a file of `kind` without an explicit
/// overwrite: it exists and holds another kind of file (a CSV where a
/// model would go); `None` when it is absent or of that kind. For callers
/// without an [`OutputPlan`] (the Python package's `save` and `to_onnx`).
pub fn kind_conflict(path: &Path, kind: Kind) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    let found = sniff(path);
    (!kind.accepts(&found)).then(|| format!("exists and holds {}, not {}", found.describe(), kind.describe()))
}

fn refuse(label: &str, problem: impl Into<String>) -> Error {
    Error::Output {
        output: label.into(),
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(h: &str, first: &str) -> bool {
        let kind = match h.strip_prefix('~') {
            Some(p) => Kind::csv("x", &[]).with_patterns(&[p]),
            None => Kind::csv("x", &[h]),
        };
        kind.accepts(&Found::Text(first.into()))
    }

    #[test]
    fn field_patterns_match_field_by_field() {
        assert!(accepts("~prediction,p_*", "prediction,p_a,p_b"));
        assert!(accepts("~prediction,p_*", "prediction,\"p_x,1\",p_y"));
        assert!(!accepts("~prediction,p_*", "prediction"));
        assert!(!accepts("~prediction,p_*", "prediction,age"));
        assert!(!accepts("~prediction,p_*", "prediction,p_a,age"));
        assert!(accepts("~output_*", "output_0,output_1"));
        assert!(!accepts("~output_*", "output_0,age"));
        assert!(accepts("rank,", "rank,score"));
        assert!(!accepts("rank", "rank,score"));
        assert!(accepts("sales*", "sales*") && !accepts("sales*", "sales_2024"));
        // A Parquet file's column names are its fields, commas and all.
        let parquet = Found::Parquet(vec!["prediction".into(), "p_x,y".into(), "p_z".into()]);
        assert!(Kind::csv("x", &[]).with_patterns(&["prediction,p_*"]).accepts(&parquet));
    }
}

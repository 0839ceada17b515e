//! The tuner's journal: one JSON line per finished trial, appended as each
//! trial ends, read back on start so that an interrupted search resumes
//! where it stopped (finished trials are not run again).

use super::space::{Params, Space};
use bpnet::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// One finished trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Trial number, 0-based.
    pub trial: usize,
    /// The point tried.
    pub params: Params,
    /// Mean cross-validated score over the folds run (higher is better).
    pub score: f64,
    /// Each fold's score, in order (fewer than k when pruned).
    pub folds: Vec<f64>,
    /// Stopped early by the median rule.
    pub pruned: bool,
    /// Wall-clock seconds the trial took.
    pub seconds: f64,
    /// Why training failed (the score is then the floor), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Folds whose score fell below [`super::SCORE_FLOOR`] and count as it
    /// (an R² of -1e11 in a fold with an outlier): the score then is not the
    /// plain mean of the metric, and the outputs say so.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub floored: usize,
    /// The scores on a second, independent split into folds, with other
    /// training seeds, for the few best trials the search re-scores at its
    /// end (`confirm`); empty for the others. Never journaled: it is set
    /// after the search, and a resumed search re-scores again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confirm: Vec<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What makes a journaled trial not one the search wrote (an edited or
/// damaged line was used as it stood: a score of 0.99 beside folds of
/// 0.765, NaN from no folds, 7 folds of 3, a negative time that panicked
/// the time budget): `None` when it is consistent with `cv` folds.
fn inconsistent(r: &TrialRecord, cv: usize) -> Option<String> {
    if !(r.seconds.is_finite() && r.seconds >= 0.0) {
        return Some(format!("a time of {} seconds", r.seconds));
    }
    if r.folds.len() > cv || (r.complete() && r.folds.len() != cv) {
        return Some(format!("{} fold scores for --cv {cv}", r.folds.len()));
    }
    if r.floored > r.folds.len() {
        return Some(format!("{} floored folds of {}", r.floored, r.folds.len()));
    }
    if r.folds.iter().any(|f| !f.is_finite() || *f < super::SCORE_FLOOR) {
        return Some("a fold score that is not finite or below the floor".into());
    }
    let want = match (&r.failed, r.folds.is_empty()) {
        (Some(_), _) => super::SCORE_FLOOR,
        (None, true) => return Some("no fold scores".into()),
        (None, false) => bpnet::workflow::mean_sd(&r.folds).0,
    };
    let close = (r.score - want).abs() <= 1e-12 * want.abs().max(1.0);
    (!close).then(|| format!("a score of {} where its folds give {want}", r.score))
}

impl TrialRecord {
    /// Ran every fold of the search without failing.
    pub fn complete(&self) -> bool {
        !self.pruned && self.failed.is_none()
    }

    /// The mean over the search's folds and the re-scoring's, when the
    /// re-scoring ran all `k` folds (None otherwise).
    pub fn combined(&self, k: usize) -> Option<f64> {
        (self.complete() && self.confirm.len() == k && self.folds.len() == k)
            .then(|| self.folds.iter().chain(&self.confirm).sum::<f64>() / (2 * k) as f64)
    }
}

/// The first line of a journal: every option that changes a trial's score
/// (the others, `--trials`, `--time`, `--parallel`, `--threads`,
/// `--confirm` and the refit's, change which trials run or what follows
/// the search, not a trial's result), so that a journal of another search
/// is not resumed by mistake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// The training file.
    pub data: String,
    /// Hex SHA-256 of the training file's bytes, so that a file changed at
    /// the same path is another search: empty in a journal of a version
    /// that did not record it.
    #[serde(default)]
    pub data_sha256: String,
    /// Target columns, as given (empty: the default, the last column).
    pub target: Vec<String>,
    /// The target columns' indices in the file, as `target` resolved to (so
    /// that the default and the last column named are the same search):
    /// empty in a journal of a version that did not record them.
    #[serde(default)]
    pub target_columns: Vec<usize>,
    /// `classify` or `regress`, as `--task` (or its detection) decided:
    /// empty in a journal of a version that did not record it.
    #[serde(default)]
    pub task: String,
    /// `none`, `mean` or `median`: empty in a journal of a version that did
    /// not record it.
    #[serde(default)]
    pub impute: String,
    /// Folds.
    pub cv: usize,
    /// Seed.
    pub seed: u64,
    /// Epochs per trial.
    pub epochs: usize,
    /// How the file is read: `delimiter ',', header auto|yes|no` (a journal
    /// of a version without it read files by the defaults).
    #[serde(default = "default_reading")]
    pub reading: String,
}

/// The reading of a journal that did not record one: the defaults.
pub fn default_reading() -> String {
    reading(',', None)
}

/// [`JournalHeader::reading`] of a delimiter and a header choice (`None`:
/// detected).
pub fn reading(delimiter: char, header: Option<bool>) -> String {
    let header = match header {
        None => "auto",
        Some(true) => "yes",
        Some(false) => "no",
    };
    format!("delimiter '{delimiter}', header {header}")
}

impl JournalHeader {
    /// The first option in which `self` (this search) and `found` (the
    /// journal's) differ: `--name: VALUE in the journal, VALUE here`.
    pub fn difference(&self, found: &JournalHeader) -> Option<String> {
        let text = |v: &str| match v {
            "" => "not recorded".to_string(),
            v => v.to_string(),
        };
        let short = |v: &str| text(v.get(..12).unwrap_or(v));
        let target = |t: &[String]| match t {
            [] => "the last column".to_string(),
            t => t.join(","),
        };
        // Every field, by destructuring: a field added later must be named here.
        let JournalHeader {
            data,
            data_sha256,
            target: targets,
            target_columns,
            task,
            impute,
            cv,
            seed,
            epochs,
            reading,
        } = self;
        // The same bytes under another spelling of the path (`./d.csv`, an
        // absolute path) are the same data.
        let same_bytes = !data_sha256.is_empty() && *data_sha256 == found.data_sha256;
        let named = |d: &str| match same_bytes {
            true => "the same bytes".to_string(),
            false => text(d),
        };
        // The same columns named otherwise (`--target` left out, or by name
        // or number) are the same target.
        let same_columns = !target_columns.is_empty() && *target_columns == found.target_columns;
        let targeted = |t: &[String]| match same_columns {
            true => "the same columns".to_string(),
            false => target(t),
        };
        let options = [
            ("--data", named(&found.data), named(data)),
            (
                "--data's contents (SHA-256)",
                short(&found.data_sha256),
                short(data_sha256),
            ),
            ("--target", targeted(&found.target), targeted(targets)),
            ("--task", text(&found.task), text(task)),
            ("--impute", text(&found.impute), text(impute)),
            ("--cv", found.cv.to_string(), cv.to_string()),
            ("--seed", found.seed.to_string(), seed.to_string()),
            ("--epochs", found.epochs.to_string(), epochs.to_string()),
            ("--delimiter or --header", found.reading.clone(), reading.clone()),
        ];
        options
            .into_iter()
            .find(|(_, there, here)| there != here)
            .map(|(name, there, here)| format!("{name}: {there} in the journal, {here} here"))
    }
}

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// The journal, opened and locked for the search's length; trials are
    /// appended through it (a lock may bar other handles, on Windows).
    file: std::fs::File,
}

impl Journal {
    /// Opens the journal at `path`: the finished trials of an earlier run of
    /// the same search (`header`), or a new journal. A journal of another
    /// search, or a damaged one, is an error naming the file and line.
    pub fn open(path: &Path, header: &JournalHeader) -> Result<(Journal, Vec<TrialRecord>)> {
        let bad = |line: usize, reason: String| Error::Format {
            path: path.to_path_buf(),
            reason: format!("line {line}: {reason}"),
        };
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        // Held until the search ends (the lock goes with the file): two
        // runs with one --out had written every trial twice, and the
        // journal could not be resumed.
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::config(
                    "--out",
                    format!(
                        "{}: another bpnet tune is running this search (its journal is locked); wait for it to end or choose another --out",
                        path.display()
                    ),
                ));
            }
            // A file system without locks (some network mounts) runs unlocked.
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut text = String::new();
        // A journal that exists but cannot be read is not replaced.
        file.read_to_string(&mut text).map_err(io)?;
        let mut records = Vec::new();
        // A header cut short by a kill (no line ended yet; the start of
        // one) is written again; any other line is not a journal's.
        let start = "{\"data\":";
        let cut_header = !text.contains('\n')
            && (text.starts_with(start) || start.starts_with(text.as_str()))
            && serde_json::from_str::<JournalHeader>(text.trim()).is_err();
        if text.trim().is_empty() || cut_header {
            let first = serde_json::to_string(header).map_err(|e| Error::State(e.to_string()))? + "\n";
            file.set_len(0).map_err(io)?;
            file.rewind().map_err(io)?;
            file.write_all(first.as_bytes()).map_err(io)?;
        } else {
            let mut lines = text.split_inclusive('\n').enumerate();
            let (_, first) = lines.next().unwrap_or((0, ""));
            let found: JournalHeader = serde_json::from_str(first.trim_end())
                .map_err(|e| bad(1, format!("not a tune journal header ({e})")))?;
            if let Some(option) = header.difference(&found) {
                return Err(bad(
                    1,
                    format!("journal of another search ({option}); remove it or choose another --out"),
                ));
            }
            // Bytes up to the end of the last whole line read.
            let mut kept = first.len();
            for (i, line) in lines {
                if !line.trim().is_empty() {
                    let r: TrialRecord = match serde_json::from_str(line.trim_end()) {
                        Ok(r) => r,
                        // A last line cut short by an interruption is dropped.
                        Err(_) if !line.ends_with('\n') => break,
                        Err(e) => return Err(bad(i + 1, e.to_string())),
                    };
                    if !Space::contains(&r.params) || !r.score.is_finite() {
                        return Err(bad(i + 1, "parameters out of range or a non-finite score".into()));
                    }
                    if let Some(why) = inconsistent(&r, header.cv) {
                        return Err(bad(
                            i + 1,
                            format!("trial {}: {why}; remove the journal or choose another --out", r.trial),
                        ));
                    }
                    if records.iter().any(|o: &TrialRecord| o.trial == r.trial) {
                        return Err(bad(i + 1, format!("trial {} is journaled twice", r.trial)));
                    }
                    records.push(r);
                }
                kept += line.len();
            }
            // Cut a cut-short last line, and end the last whole one, in
            // place (the file holds the lock): a kill meanwhile leaves at
            // most that line to drop again.
            file.set_len(kept as u64).map_err(io)?;
            if !text[..kept].ends_with('\n') {
                file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
                file.write_all(b"\n").map_err(io)?;
            }
        }
        file.sync_data().map_err(io)?;
        records.sort_by_key(|r| r.trial);
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            records,
        ))
    }

    /// Appends one finished trial (flushed at once).
    pub fn append(&self, r: &TrialRecord) -> Result<()> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let line = serde_json::to_string(r).map_err(|e| Error::State(e.to_string()))? + "\n";
        let mut f = &self.file;
        f.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }
}

//! An ensemble in one model file: member 0 stored as the file's own model
//! (`layers.*`), members 1..K as extra tensors `ensemble.{k}.layers.*`, and
//! a metadata section `ensemble` = `{"members": K, "combine": ...}`.
//!
//! A file without the section is a single model (an ensemble of one), so
//! every older model file loads as before; a reader that predates
//! ensembles refuses an ensemble file (unexpected tensor `ensemble.1...`)
//! rather than silently using member 0 alone.

use super::checkpoint::{as_extra, from_extra};
use super::model_file::{ExtraTensor, ModelFile, encode_sections, save_sections};
use super::sections::section_texts;
use crate::ensemble::Combine;
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Sequential};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Name of the metadata section that marks an ensemble.
pub const ENSEMBLE_KEY: &str = "ensemble";

/// The `ensemble` metadata section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsembleSection {
    /// Number of members K (at least 2 in a file; 1 = no section).
    pub members: usize,
    /// How their outputs are averaged.
    pub combine: Combine,
}

/// Saves `members` (all built from `spec`) as one file with the free-form
/// `metadata` sections plus the `ensemble` section; with one member it is
/// an ordinary model file.
pub fn save_ensemble<M: Serialize + ?Sized>(
    path: &Path,
    spec: &ModelSpec,
    members: &[Sequential<f32>],
    combine: Combine,
    metadata: &M,
) -> Result<()> {
    let refs: Vec<&Sequential<f32>> = members.iter().collect();
    let (sections, extra) = ensemble_parts(path, &refs, combine, metadata)?;
    save_sections(path, spec, refs[0], sections, &extra)
}

/// The bytes [`save_ensemble`] would write, for members held apart (e.g. a
/// model kept in memory and pickled by the Python package); `what` names it
/// in errors.
pub fn ensemble_bytes<M: Serialize + ?Sized>(
    what: &Path,
    spec: &ModelSpec,
    members: &[&Sequential<f32>],
    combine: Combine,
    metadata: &M,
) -> Result<Vec<u8>> {
    let (sections, extra) = ensemble_parts(what, members, combine, metadata)?;
    encode_sections(what, spec, members[0], sections, &extra)
}

/// The metadata sections (the `ensemble` section added for two members or
/// more) and the further members' tensors; errors if `members` is empty.
fn ensemble_parts<M: Serialize + ?Sized>(
    path: &Path,
    members: &[&Sequential<f32>],
    combine: Combine,
    metadata: &M,
) -> Result<(BTreeMap<String, String>, Vec<ExtraTensor>)> {
    let not_saved = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason: format!("not saved: {reason}"),
    };
    if members.is_empty() {
        return Err(not_saved("an ensemble without members".into()));
    }
    let mut sections = section_texts(metadata).map_err(not_saved)?;
    let mut extra: Vec<ExtraTensor> = Vec::new();
    if members.len() > 1 {
        let section = EnsembleSection {
            members: members.len(),
            combine,
        };
        let text = serde_json::to_string(&section).map_err(|e| not_saved(e.to_string()))?;
        sections.insert(ENSEMBLE_KEY.into(), text);
        for (k, m) in members.iter().enumerate().skip(1) {
            extra.extend(as_extra(m, &format!("ensemble.{k}.")));
        }
    }
    Ok((sections, extra))
}

/// The members of a loaded model file (the file's model alone when it has
/// no `ensemble` section) and how to combine them; `combine` is the
/// averaging for a single model (unused for one member).
pub fn ensemble_members(file: &ModelFile, path: &Path, single: Combine) -> Result<(Vec<Sequential<f32>>, Combine)> {
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let Some(raw) = file.metadata.get(ENSEMBLE_KEY) else {
        return Ok((vec![file.model.clone()], single));
    };
    let section: EnsembleSection =
        serde_json::from_value(raw.clone()).map_err(|e| bad(format!("invalid `ensemble` metadata: {e}")))?;
    if section.members < 2 {
        return Err(bad(format!(
            "`ensemble` metadata says {} members; an ensemble has at least 2",
            section.members
        )));
    }
    let mut members = vec![file.model.clone()];
    for k in 1..section.members {
        members.push(from_extra(&file.spec, &file.extra, &format!("ensemble.{k}.")).map_err(&bad)?);
    }
    let prefix = format!("ensemble.{}.", section.members);
    if file.extra.keys().any(|n| n.starts_with(&prefix)) {
        return Err(bad(format!(
            "tensors `{prefix}*` beyond the {} members the metadata names",
            section.members
        )));
    }
    Ok((members, section.combine))
}

//! An ensemble in one model file: member 0 stored as the file's own model
//! (`layers.*`), members 1..K as extra tensors `ensemble.{k}.layers.*`, and
//! a metadata section `ensemble` = `{"members": K, "combine": ...}`.
//!
//! Members of different architectures (a *blend*, e.g. the several
//! settings `bpnet tune` averages) also store every member's architecture
//! in the section, `"specs": [spec_0, ..., spec_{K-1}]` (`spec_0` is the
//! file's `architecture`), and the file is written as format version 2, so
//! that a reader from before blends refuses it ("written by a newer bpnet")
//! instead of rebuilding every member with member 0's architecture. Every
//! other file stays version 1.
//!
//! A file without the section is a single model (an ensemble of one), so
//! every older model file loads as before; a reader that predates
//! ensembles refuses an ensemble file (unexpected tensor `ensemble.1...`)
//! rather than silently using member 0 alone.

use super::atomic::write_atomic;
use super::checkpoint::{as_extra, from_extra};
use super::model_file::{BASE_FORMAT_VERSION, BLEND_FORMAT_VERSION, ExtraTensor, ModelFile, encode_versioned};
use super::sections::section_texts;
use super::tensors::model_layout;
use crate::ensemble::Combine;
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Sequential};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Name of the metadata section that marks an ensemble.
pub const ENSEMBLE_KEY: &str = "ensemble";

/// The `ensemble` metadata section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSection {
    /// Number of members K (at least 2 in a file; 1 = no section).
    pub members: usize,
    /// How their outputs are averaged.
    pub combine: Combine,
    /// Every member's architecture, member 0 first, when they differ (a
    /// blend); absent when all members share the file's `architecture`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specs: Option<Vec<ModelSpec>>,
}

/// One member to save: its architecture and its network.
pub type Member<'a> = (&'a ModelSpec, &'a Sequential<f32>);

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
    let pairs: Vec<Member> = members.iter().map(|m| (spec, m)).collect();
    save_blend(path, &pairs, combine, metadata)
}

/// Saves `members`, each with its own architecture, as one file (see the
/// module docs: a blend of different architectures is format version 2).
pub fn save_blend<M: Serialize + ?Sized>(
    path: &Path,
    members: &[Member],
    combine: Combine,
    metadata: &M,
) -> Result<()> {
    write_atomic(path, &blend_bytes(path, members, combine, metadata)?)
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
    let pairs: Vec<Member> = members.iter().map(|m| (spec, *m)).collect();
    blend_bytes(what, &pairs, combine, metadata)
}

/// The bytes [`save_blend`] would write; `what` names the file in errors.
pub fn blend_bytes<M: Serialize + ?Sized>(
    what: &Path,
    members: &[Member],
    combine: Combine,
    metadata: &M,
) -> Result<Vec<u8>> {
    let (sections, extra, version) = ensemble_parts(what, members, combine, metadata)?;
    let (spec, first) = members[0];
    encode_versioned(what, spec, first, sections, &extra, version)
}

/// The metadata sections (the `ensemble` section added for two members or
/// more), the further members' tensors and the format version to write;
/// errors if `members` is empty or a member does not match its architecture.
fn ensemble_parts<M: Serialize + ?Sized>(
    path: &Path,
    members: &[Member],
    combine: Combine,
    metadata: &M,
) -> Result<(BTreeMap<String, String>, Vec<ExtraTensor>, u32)> {
    let not_saved = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason: format!("not saved: {reason}"),
    };
    let Some(&(spec0, _)) = members.first() else {
        return Err(not_saved("an ensemble without members".into()));
    };
    let mut sections = section_texts(metadata).map_err(not_saved)?;
    let mut extra: Vec<ExtraTensor> = Vec::new();
    let blend = members.iter().any(|(s, _)| *s != spec0);
    if members.len() > 1 {
        let section = EnsembleSection {
            members: members.len(),
            combine,
            specs: blend.then(|| members.iter().map(|(s, _)| (*s).clone()).collect()),
        };
        let text = serde_json::to_string(&section).map_err(|e| not_saved(e.to_string()))?;
        sections.insert(ENSEMBLE_KEY.into(), text);
        for (k, (s, m)) in members.iter().enumerate().skip(1) {
            check_member(s, m).map_err(|e| not_saved(format!("member {k}: {e}")))?;
            extra.extend(as_extra(m, &format!("ensemble.{k}.")));
        }
    }
    let version = if blend {
        BLEND_FORMAT_VERSION
    } else {
        BASE_FORMAT_VERSION
    };
    Ok((sections, extra, version))
}

/// Refuses a network whose tensors do not have the shapes `spec` implies
/// (member 0 is checked by the model encoder itself).
fn check_member(spec: &ModelSpec, m: &Sequential<f32>) -> std::result::Result<(), String> {
    let reference = Sequential::<f32>::zeroed(spec).map_err(|e| e.to_string())?;
    let want: Vec<(String, Vec<usize>)> = model_layout(&reference)
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    let have: Vec<(String, Vec<usize>)> = model_layout(m).into_iter().map(|t| (t.name, t.shape)).collect();
    if want == have {
        Ok(())
    } else {
        Err("its tensors do not match its architecture".into())
    }
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
        // Members without the section would be dropped silently.
        return match file.extra.keys().filter(|n| n.starts_with("ensemble.")).min() {
            Some(name) => Err(bad(format!(
                "tensor `{name}` of an ensemble member, but no `ensemble` metadata; the file is damaged"
            ))),
            None => Ok((vec![file.model.clone()], single)),
        };
    };
    let section = read_section(raw, file).map_err(&bad)?;
    let specs = member_specs_of(&section, file).map_err(&bad)?;
    let mut members = vec![file.model.clone()];
    for (k, spec) in specs.iter().enumerate().skip(1) {
        let prefix = format!("ensemble.{k}.");
        check_member_size(spec, &file.extra, &prefix).map_err(&bad)?;
        let member = from_extra(spec, &file.extra, &prefix).map_err(&bad)?;
        // A tensor under the member's prefix that its network does not
        // hold (`ensemble.2.layers.99.weight`) was ignored.
        let names: std::collections::HashSet<String> = model_layout(&member)
            .into_iter()
            .map(|t| format!("{prefix}{}", t.name))
            .collect();
        if let Some(stray) = file
            .extra
            .keys()
            .filter(|n| n.starts_with(&prefix) && !names.contains(*n))
            .min()
        {
            return Err(bad(format!(
                "tensor `{stray}` is not one of member {k}'s tensors; the file is damaged"
            )));
        }
        members.push(member);
    }
    if let Some(stray) = file.extra.keys().filter(|n| n.starts_with("ensemble.0.")).min() {
        return Err(bad(format!(
            "tensor `{stray}`: member 0 is the file's own network, stored without a prefix; the file is damaged"
        )));
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

/// Every member's architecture: the section's `specs` for a blend (checked:
/// one per member, each valid, member 0's the file's own), else the file's
/// architecture K times.
fn member_specs_of(section: &EnsembleSection, file: &ModelFile) -> std::result::Result<Vec<ModelSpec>, String> {
    let Some(specs) = &section.specs else {
        return Ok(vec![file.spec.clone(); section.members]);
    };
    if specs.len() != section.members {
        return Err(format!(
            "`ensemble` metadata gives {} architectures for {} members",
            specs.len(),
            section.members
        ));
    }
    if specs.first() != Some(&file.spec) {
        return Err("`ensemble` metadata gives member 0 another architecture than the file's".into());
    }
    for (k, s) in specs.iter().enumerate() {
        s.validate()
            .map_err(|e| format!("invalid architecture of ensemble member {k}: {e}"))?;
    }
    Ok(specs.clone())
}

/// Refuses, before building it, a member whose architecture needs more
/// weights than the file holds under its prefix (a damaged header must not
/// make the loader allocate a huge network).
fn check_member_size(
    spec: &ModelSpec,
    extra: &HashMap<String, Vec<f32>>,
    prefix: &str,
) -> std::result::Result<(), String> {
    let held: usize = extra
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, v)| v.len())
        .sum();
    let need = spec
        .dims
        .windows(2)
        .try_fold(0usize, |acc, w| w[0].checked_mul(w[1])?.checked_add(acc));
    match need {
        Some(n) if n <= held => Ok(()),
        _ => Err(format!(
            "ensemble member `{prefix}*` holds {held} values, fewer than its architecture's weights need; the file is damaged"
        )),
    }
}

/// Every member's architecture in a loaded model file, member 0 first (the
/// file's architecture alone when it has no `ensemble` section).
pub fn member_specs(file: &ModelFile, path: &Path) -> Result<Vec<ModelSpec>> {
    let Some(raw) = file.metadata.get(ENSEMBLE_KEY) else {
        return Ok(vec![file.spec.clone()]);
    };
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let section = read_section(raw, file).map_err(&bad)?;
    member_specs_of(&section, file).map_err(bad)
}

/// The `ensemble` section of `file`, its member count checked against the
/// members whose tensors the file holds (`ensemble.{k}.*` for k = 1..K)
/// before anything is allocated from it.
fn read_section(raw: &serde_json::Value, file: &ModelFile) -> std::result::Result<EnsembleSection, String> {
    let section: EnsembleSection =
        serde_json::from_value(raw.clone()).map_err(|e| format!("invalid `ensemble` metadata: {e}"))?;
    if section.members < 2 {
        return Err(format!(
            "`ensemble` metadata says {} members; an ensemble has at least 2",
            section.members
        ));
    }
    let held = member_indices(&file.extra);
    if let Some(k) = (1..section.members).find(|k| !held.contains(k)) {
        return Err(format!(
            "`ensemble` metadata says {} members, but the file holds no tensors of member {k} (`ensemble.{k}.*`); the file is damaged",
            section.members
        ));
    }
    Ok(section)
}

/// The member numbers `k` of the tensors `ensemble.{k}.*` among `extra`.
fn member_indices(extra: &HashMap<String, Vec<f32>>) -> std::collections::BTreeSet<usize> {
    extra
        .keys()
        .filter_map(|n| n.strip_prefix("ensemble.")?.split_once('.')?.0.parse().ok())
        .collect()
}

//! A model file's metadata sections: written as compact JSON text, one
//! header entry per section, and read back as JSON values.

use super::model_file::{FORMAT_NAME, RESERVED_KEYS};
use crate::model::{ModelSpec, Sequential};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Each top-level entry of `metadata`, which must serialize to a JSON
/// object, as its JSON text: serialized once, then split by a parse that
/// only delimits the entries (no [`Value`] tree is built).
pub(crate) fn section_texts<M: Serialize + ?Sized>(metadata: &M) -> Result<BTreeMap<String, String>, String> {
    let text = to_json(metadata)?;
    let entries: BTreeMap<String, Box<RawValue>> = serde_json::from_str(&text)
        .map_err(|e| format!("the metadata must serialize to a JSON object of sections ({e})"))?;
    Ok(entries
        .into_iter()
        .map(|(k, v)| (k, String::from(Box::<str>::from(v))))
        .collect())
}

/// The `__metadata__` map: bpnet's own keys (format `version`) plus each
/// section as JSON text.
pub(super) fn header_metadata(
    spec: &ModelSpec,
    model: &Sequential<f32>,
    sections: BTreeMap<String, String>,
    version: u32,
) -> Result<HashMap<String, String>, String> {
    let layers: Vec<String> = model.layers().iter().map(|l| l.describe()).collect();
    let mut header = HashMap::from([
        ("format".to_string(), FORMAT_NAME.to_string()),
        ("format_version".to_string(), version.to_string()),
        ("bpnet_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("architecture".to_string(), to_json(spec)?),
        ("layers".to_string(), to_json(&layers)?),
    ]);
    for (key, text) in sections {
        if RESERVED_KEYS.contains(&key.as_str()) {
            return Err(format!("metadata section `{key}` clashes with a key bpnet reserves"));
        }
        header.insert(key, text);
    }
    Ok(header)
}

/// Compact JSON text of a metadata value.
pub(super) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("cannot write metadata as JSON: {e}"))
}

/// The free-form sections: every non-reserved key, parsed as JSON (a value
/// that is not JSON, as other writers may store, is kept as a string).
pub(super) fn read_sections(header: &HashMap<String, String>) -> Map<String, Value> {
    header
        .iter()
        .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone())),
            )
        })
        .collect()
}

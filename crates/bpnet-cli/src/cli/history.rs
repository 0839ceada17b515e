//! The training history, written next to the model as `NAME.history.csv` and
//! `NAME.history.json` (one record per epoch).

use bpnet::io::write_atomic;
use bpnet::train::History;
use bpnet::workflow::record_json;
use bpnet::{Error, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The header line of `NAME.history.csv`.
pub const CSV_HEADER: &str = "epoch,step,train_loss,val_loss,val_metric,lr,seconds";

/// `NAME.history.csv` and `NAME.history.json` beside the model file `NAME.safetensors`.
pub fn paths(model: &Path) -> (PathBuf, PathBuf) {
    let stem = model.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    let dir = model.parent().unwrap_or(Path::new(""));
    (
        dir.join(format!("{stem}.history.csv")),
        dir.join(format!("{stem}.history.json")),
    )
}

/// Writes both files atomically; returns their paths.
pub fn write(model: &Path, h: &History) -> Result<(PathBuf, PathBuf)> {
    let (csv_path, json_path) = paths(model);
    let opt = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
    let mut csv = format!("{CSV_HEADER}\n");
    for r in &h.epochs {
        csv += &format!(
            "{},{},{},{},{},{},{}\n",
            r.epoch,
            r.step,
            r.train_loss,
            opt(r.val_loss),
            opt(r.val_metric),
            r.lr,
            r.seconds
        );
    }
    let doc = json!({
        "epochs": h.epochs.iter().map(record_json).collect::<Vec<_>>(),
        "best_epoch": h.best_epoch, "stopped_early": h.stopped_early, "notes": h.notes,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::State(e.to_string()))?;
    write_atomic(&csv_path, csv.as_bytes())?;
    write_atomic(&json_path, text.as_bytes())?;
    Ok((csv_path, json_path))
}

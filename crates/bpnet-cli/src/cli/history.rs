//! The training history, written next to the model as `NAME.history.csv` and
//! `NAME.history.json` (one record per epoch).

use bpnet::io::AtomicWriter;
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

/// Both files written to their temporary files and synced, not yet in
/// place: `bpnet train` commits them after the model is saved, so that a
/// failed save (a full disk) leaves the old history with the old model.
pub fn prepare(model: &Path, h: &History) -> Result<(AtomicWriter, AtomicWriter)> {
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
    let file = |path: &Path, bytes: &[u8]| -> Result<AtomicWriter> {
        let mut w = AtomicWriter::create(path)?;
        w.write(bytes)?;
        w.prepare()?;
        Ok(w)
    };
    Ok((file(&csv_path, csv.as_bytes())?, file(&json_path, text.as_bytes())?))
}

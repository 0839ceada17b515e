//! `bpnet train --diagnostics` and `--plot`: per-layer diagnostics collected
//! from the training events, added to the history (`NAME.history.json` gets a
//! `diagnostics` section; `NAME.diagnostics.csv` has one value per line),
//! warnings printed in plain words, and figures drawn at the end.

use bpnet::data::Dataset;
use bpnet::io::write_atomic;
use bpnet::train::Event;
use bpnet::train::diagnostics::{Diagnostics, EpochDiagnostics};
use bpnet::{Error, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Training rows on which diagnostics measure the training metric.
const TRAIN_SAMPLE: usize = 10_000;

/// What the two flags add to a training run.
pub struct TrainExtras {
    diagnostics: Option<Diagnostics>,
    plot: bool,
}

impl TrainExtras {
    /// Collects diagnostics if `diagnostics`; draws figures at the end if `plot`.
    pub fn new(diagnostics: bool, plot: bool, train: &Dataset) -> Self {
        TrainExtras {
            diagnostics: diagnostics.then(|| Diagnostics::new().with_train_sample(train.head(TRAIN_SAMPLE))),
            plot,
        }
    }

    /// Handles one training event.
    pub fn observe(&mut self, e: &Event<'_>) -> Result<()> {
        match &mut self.diagnostics {
            Some(d) => d.observe(e),
            None => Ok(()),
        }
    }

    /// The diagnostics collected so far, for a checkpoint (none without
    /// `--diagnostics`).
    pub fn saved(&self) -> Option<Value> {
        self.diagnostics.as_ref().map(Diagnostics::saved)
    }

    /// Continues the diagnostics `saved` in the checkpoint `ckpt` (its
    /// `diagnostics` section; a resumed run's start empty without one: a
    /// checkpoint of an earlier version, or of a run without `--diagnostics`).
    /// Returns a note when they start empty after `step` steps.
    pub fn resume(&mut self, saved: Option<&Value>, ckpt: &Path, step: usize) -> Result<Option<String>> {
        match (&mut self.diagnostics, saved) {
            (Some(d), Some(saved)) => d.restore(saved).map(|_| None).map_err(|e| Error::Format {
                path: ckpt.to_path_buf(),
                reason: e.to_string(),
            }),
            (Some(_), None) if step > 0 => Ok(Some(format!(
                "note: {} holds no diagnostics: they cover the steps after its {step}",
                ckpt.display()
            ))),
            _ => Ok(None),
        }
    }

    /// After the history was written next to the model file `model`: adds
    /// the diagnostics to it, prints the warnings, draws the figures.
    pub fn finish(&self, model: &Path, quiet: bool) -> Result<()> {
        let json_path = history_json(model);
        match &self.diagnostics {
            // No epoch ended in this run (a resume of a finished run whose
            // checkpoint holds none): "no vanishing ..." would rest on
            // nothing, and an empty section failed the figures after the
            // model was written.
            Some(d) if d.records().is_empty() && !quiet => {
                println!("diagnostics: none recorded (no epoch ended in this run)");
            }
            Some(d) if d.records().is_empty() => {}
            Some(d) => report(d, model, &json_path, quiet)?,
            None => {}
        }
        if self.plot {
            let dir = super::plot::default_dir(&json_path);
            let files = super::plot::plot_history(&json_path, &dir)?;
            if !quiet {
                let names: Vec<String> = files.iter().map(|f| f.png.display().to_string()).collect();
                println!("plots: {} (and SVG)", names.join(", "));
            }
        }
        self.note_stale(model);
        Ok(())
    }

    /// Names the diagnostics and figures beside `model` that an earlier run
    /// wrote and this one did not (they are kept, but they describe another
    /// model than the one now in the file).
    fn note_stale(&self, model: &Path) {
        let mut stale = Vec::new();
        let csv = csv_path(model);
        if self.diagnostics.is_none() && csv.is_file() {
            stale.push(csv);
        }
        let dir = super::plot::default_dir(&history_json(model));
        let ours = if self.plot {
            super::plot::figure_files(self.diagnostics.is_some())
        } else {
            Vec::new()
        };
        for (name, _) in super::plot::figure_files(true) {
            if !ours.iter().any(|(o, _)| *o == name) && dir.join(name).is_file() {
                stale.push(dir.join(name));
            }
        }
        if !stale.is_empty() {
            let names: Vec<String> = stale.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "note: {} {} from an earlier run, not this model's (kept; --diagnostics and --plot write them anew)",
                names.join(", "),
                if names.len() == 1 { "is" } else { "are" }
            );
        }
    }
}

/// Adds `d` to the history at `json_path` and writes the CSV beside
/// `model`; prints the warnings, or that there are none.
fn report(d: &Diagnostics, model: &Path, json_path: &Path, quiet: bool) -> Result<()> {
    let warnings = d.warnings();
    add_to_history(json_path, d)?;
    let csv = write_csv(model, d.records())?;
    if warnings.is_empty() {
        if !quiet {
            println!(
                "diagnostics: no vanishing or exploding gradients, saturated or dead units ({} and {})",
                json_path.display(),
                csv.display()
            );
        }
    } else {
        for w in &warnings {
            eprintln!("warning: {}", w.message);
        }
    }
    Ok(())
}

/// `NAME.history.json` beside the model file `NAME.safetensors` (the name
/// `super::history::prepare` writes it under).
fn history_json(model: &Path) -> PathBuf {
    super::history::paths(model).1
}

/// The header line of `NAME.diagnostics.csv`.
pub const CSV_HEADER: &str = "epoch,step,name,quantity,value";

/// `NAME.diagnostics.csv` beside the model file `NAME.safetensors`.
pub fn csv_path(model: &Path) -> PathBuf {
    let stem = model.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    model.with_file_name(format!("{stem}.diagnostics.csv"))
}

fn add_to_history(path: &Path, d: &Diagnostics) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let section = json!({
        "definitions": "per epoch, over its training steps: mean/std of each activation layer's outputs; saturated = fraction of sigmoid outputs outside [0.01, 0.99] or tanh outputs with |y| > 0.99; dead = fraction of ReLU units that output 0 for every row of the epoch; grad_norms = mean per-step L2 norm of each parameter's gradient; train_metric = accuracy or R² in evaluation mode on the first 10,000 training rows",
        "epochs": d.records(),
        "warnings": d.warnings(),
    });
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("diagnostics".into(), section);
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::State(e.to_string()))?;
    write_atomic(path, text.as_bytes())
}

/// `NAME.diagnostics.csv`: `epoch,step,name,quantity,value`, one value per line.
fn write_csv(model: &Path, records: &[EpochDiagnostics]) -> Result<PathBuf> {
    let path = csv_path(model);
    let mut s = format!("{CSV_HEADER}\n");
    for r in records {
        let mut line = |name: &str, q: &str, v: Option<f64>| {
            if let Some(v) = v {
                s += &format!("{},{},{name},{q},{v}\n", r.epoch, r.step);
            }
        };
        line("model", "train_metric", r.train_metric);
        for a in &r.activations {
            line(&a.layer, "activation_mean", Some(a.mean));
            line(&a.layer, "activation_std", Some(a.std));
            line(&a.layer, "saturated_fraction", a.saturated);
            line(&a.layer, "dead_fraction", a.dead);
        }
        for g in &r.grad_norms {
            line(&g.param, "grad_norm", Some(g.norm));
        }
    }
    write_atomic(&path, s.as_bytes())?;
    Ok(path)
}

//! `bpnet plot HISTORY`: loss and metric curves (train vs validation) from a
//! training history, and the per-layer diagnostics when the history has them
//! (`bpnet train --diagnostics`). `bpnet train --plot` calls the same code.

use bpnet::io::{Kind, OutputPlan};
use bpnet::{Error, Result};
use bpnet_lab::plot::{FOURTH, Figure, FigureFiles, Panel, Rgb, Series, THIRD};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Options of `bpnet plot`.
#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// A history written by `bpnet train`: NAME.history.json (or NAME.history.csv, without diagnostics).
    history: PathBuf,
    /// Output folder [default: NAME.plots beside the history].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Replace existing files in the folder even when they are not figures.
    #[arg(long)]
    overwrite: bool,
}

/// Runs `bpnet plot`.
pub fn run(a: &PlotArgs) -> Result<()> {
    let out = a.out.clone().unwrap_or_else(|| default_dir(&a.history));
    let mut plan = OutputPlan::new(a.overwrite);
    plan.input("history", &a.history);
    let role = format!("the plots folder of {}", a.history.display());
    let role = a.out.is_none().then_some(role.as_str());
    plan.folder("--out", &out, role, &figure_files(true));
    plan.check()?;
    let files = plot_history(&a.history, &out)?;
    for f in &files {
        println!("wrote {} and {}", f.png.display(), f.svg.display());
    }
    if files.len() == 1
        && let Some(note) = stale_diagnostics(&out)
    {
        println!("{note}");
    }
    Ok(())
}

/// A note on diagnostics figures left in `out` by an earlier history, when
/// this one has none (they were kept without a word, beside curves of
/// another run).
fn stale_diagnostics(out: &Path) -> Option<String> {
    let old: Vec<String> = ["diagnostics.png", "diagnostics.svg"]
        .iter()
        .map(|f| out.join(f))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    (!old.is_empty()).then(|| {
        format!(
            "note: {} {} from an earlier history (this one has no diagnostics; kept)",
            old.join(" and "),
            if old.len() == 1 { "is" } else { "are" }
        )
    })
}

/// The files [`plot_history`] may write into its folder: the curves, and the
/// diagnostics figure when `diagnostics`.
pub fn figure_files(diagnostics: bool) -> Vec<(&'static str, Kind)> {
    let mut files = vec![("curves.png", Kind::Png), ("curves.svg", Kind::Svg)];
    if diagnostics {
        files.extend([("diagnostics.png", Kind::Png), ("diagnostics.svg", Kind::Svg)]);
    }
    files
}

/// `dir/NAME.plots` for `dir/NAME.history.json`.
pub fn default_dir(history: &Path) -> PathBuf {
    let name = history
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let stem = name
        .strip_suffix(".history.json")
        .or_else(|| name.strip_suffix(".history.csv"))
        .or_else(|| name.rsplit_once('.').map(|p| p.0))
        .unwrap_or(&name);
    history.with_file_name(format!("{stem}.plots"))
}

/// One epoch of a history file.
#[derive(Debug, Clone, Default)]
struct Epoch {
    epoch: f64,
    train_loss: f64,
    val_loss: f64,
    val_metric: f64,
}

fn read_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads the epochs (and the diagnostics, from JSON) of a history file.
fn read(path: &Path) -> Result<(Vec<Epoch>, Option<Value>)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // A byte-order mark (as spreadsheet programs and editors write) is not
    // part of the content.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    if path.extension().is_some_and(|e| e == "csv") {
        return Ok((read_csv(path, text)?, None));
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        read_error(
            path,
            format!("not a history JSON file ({e}); bpnet train writes NAME.history.json"),
        )
    })?;
    let epochs = doc["epochs"]
        .as_array()
        .ok_or_else(|| read_error(path, "no \"epochs\" list: not a history written by bpnet train"))?;
    // A number, or null / absent (no validation): NaN, not drawn.
    let f = |k: usize, e: &Value, key: &str| match &e[key] {
        Value::Null => Ok(f64::NAN),
        v => v
            .as_f64()
            .ok_or_else(|| read_error(path, format!("epochs[{k}].{key} is {v}, not a number"))),
    };
    let rows = epochs
        .iter()
        .enumerate()
        .map(|(k, e)| {
            Ok(Epoch {
                epoch: f(k, e, "epoch")?,
                train_loss: f(k, e, "train_loss")?,
                val_loss: f(k, e, "val_loss")?,
                val_metric: f(k, e, "val_metric")?,
            })
        })
        .collect::<Result<Vec<Epoch>>>()?;
    let diag = doc.get("diagnostics").filter(|d| !d.is_null()).cloned();
    Ok((rows, diag))
}

fn read_csv(path: &Path, text: &str) -> Result<Vec<Epoch>> {
    // Lines end in `\n` (or CRLF), or in `\r` alone in a file without `\n`.
    let mut lines: Box<dyn Iterator<Item = &str>> = match text.contains('\n') {
        true => Box::new(text.lines()),
        false => Box::new(text.split('\r')),
    };
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| read_error(path, format!("no column '{name}' in the header")))
    };
    let (e, t, vl, vm) = (col("epoch")?, col("train_loss")?, col("val_loss")?, col("val_metric")?);
    let mut out = Vec::new();
    for (n, l) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let line = n + 2;
        let cells: Vec<&str> = l.split(',').collect();
        if cells.len() != header.len() {
            let found = cells.len();
            let want = header.len();
            return Err(read_error(
                path,
                format!("line {line}: {found} fields, the header has {want}"),
            ));
        }
        // An empty cell (no validation) is NaN, not drawn.
        let cell = |i: usize| match cells[i].trim() {
            "" => Ok(f64::NAN),
            c => c.parse::<f64>().map_err(|_| {
                read_error(
                    path,
                    format!("line {line}, column '{}': '{c}' is not a number", header[i]),
                )
            }),
        };
        out.push(Epoch {
            epoch: cell(e)?,
            train_loss: cell(t)?,
            val_loss: cell(vl)?,
            val_metric: cell(vm)?,
        });
    }
    Ok(out)
}

/// Draws `curves.{png,svg}` (and `diagnostics.{png,svg}` when present) from
/// the history at `path` into `out`; returns the files written.
pub fn plot_history(path: &Path, out: &Path) -> Result<Vec<FigureFiles>> {
    let (epochs, diag) = read(path)?;
    if epochs.is_empty() {
        return Err(read_error(path, "the history has no epochs to plot"));
    }
    let finite = |e: &Epoch| [e.train_loss, e.val_loss, e.val_metric].iter().any(|v| v.is_finite());
    if !epochs.iter().any(|e| e.epoch.is_finite() && finite(e)) {
        // A figure of empty axes, written with exit 0, said nothing was wrong.
        return Err(read_error(
            path,
            "no epoch has a finite epoch number and a finite loss or metric: nothing to plot",
        ));
    }
    if let Some(d) = &diag
        && !drawable(d)
    {
        // As for the curves: a figure of empty axes said nothing was wrong.
        return Err(read_error(
            path,
            "its \"diagnostics\" hold no epoch with a finite gradient norm or activation spread: nothing to plot \
             (bpnet train --diagnostics writes them)",
        ));
    }
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let train_metric = diag.as_ref().map(|d| per_epoch(d, |e| e["train_metric"].as_f64()));
    let mut files = vec![curves(&epochs, train_metric).save(out, "curves")?];
    if let Some(d) = diag {
        files.push(diagnostics_figure(&d).save(out, "diagnostics")?);
    }
    Ok(files)
}

fn series(label: &str, color: Rgb, xs: &[f64], ys: impl Iterator<Item = f64>) -> Option<Series> {
    let pts: Vec<(f64, f64)> = xs.iter().copied().zip(ys).collect();
    pts.iter()
        .any(|p| p.1.is_finite())
        .then(|| Series::new(label, color, pts).width(3))
}

fn curves(epochs: &[Epoch], train_metric: Option<Vec<(f64, f64)>>) -> Figure {
    let xs: Vec<f64> = epochs.iter().map(|e| e.epoch).collect();
    let mut loss = Panel::new("Loss", "epoch", "mean loss per example");
    loss.series.extend(series(
        "train (training mode, epoch mean)",
        FOURTH,
        &xs,
        epochs.iter().map(|e| e.train_loss),
    ));
    loss.series
        .extend(series("validation", THIRD, &xs, epochs.iter().map(|e| e.val_loss)));
    let mut metric = Panel::new("Metric", "epoch", "accuracy (classification) or R² (regression)");
    if let Some(tm) = train_metric.filter(|t| t.iter().any(|p| p.1.is_finite())) {
        metric
            .series
            .push(Series::new("train (evaluation mode, sample)", FOURTH, tm).width(3));
    }
    metric
        .series
        .extend(series("validation", THIRD, &xs, epochs.iter().map(|e| e.val_metric)));
    let mut panels = vec![loss];
    if !metric.series.is_empty() {
        panels.push(metric);
    }
    Figure::new("Training history", panels)
}

/// `(epoch, f(epoch record))` over the diagnostics' epochs.
fn per_epoch(d: &Value, f: impl Fn(&Value) -> Option<f64>) -> Vec<(f64, f64)> {
    d["epochs"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| (e["epoch"].as_f64().unwrap_or(f64::NAN), f(e).unwrap_or(f64::NAN)))
                .collect()
        })
        .unwrap_or_default()
}

/// Lines of one quantity per named item (`list` = `activations` or
/// `grad_norms`, `key` = the name field, `field` = the value).
fn lines(
    d: &Value,
    list: &str,
    key: &str,
    field: &str,
    keep: impl Fn(&Value) -> bool,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let first = &d["epochs"][0][list];
    let names: Vec<String> = first
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| keep(v))
                .filter_map(|v| v[key].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names
        .into_iter()
        .map(|name| {
            let pts = per_epoch(d, |e| {
                e[list]
                    .as_array()?
                    .iter()
                    .find(|v| v[key].as_str() == Some(name.as_str()))?[field]
                    .as_f64()
            });
            (name, pts)
        })
        .collect()
}

fn ramp_panel(title: &str, y: &str, data: Vec<(String, Vec<(f64, f64)>)>, log_y: bool) -> Panel {
    let mut p = Panel::new(title, "epoch", y);
    p.log_y = log_y;
    let n = data.len().max(2) - 1;
    for (i, (name, pts)) in data.into_iter().enumerate() {
        p.series
            .push(Series::new(name, Rgb::ramp(i as f64 / n as f64), pts).width(2));
    }
    p
}

/// Whether the diagnostics figure would draw a point: a finite weight
/// gradient norm or activation spread at some epoch.
fn drawable(d: &Value) -> bool {
    let grads = lines(d, "grad_norms", "param", "norm", |v| {
        v["weight"].as_bool() == Some(true)
    });
    let stds = lines(d, "activations", "layer", "std", |_| true);
    grads
        .iter()
        .chain(&stds)
        .any(|(_, pts)| pts.iter().any(|p| p.0.is_finite() && p.1.is_finite()))
}

fn diagnostics_figure(d: &Value) -> Figure {
    let grads = lines(d, "grad_norms", "param", "norm", |v| {
        v["weight"].as_bool() == Some(true)
    });
    let stds = lines(d, "activations", "layer", "std", |_| true);
    let sat = lines(d, "activations", "layer", "saturated", |v| v["saturated"].is_number());
    let dead = lines(d, "activations", "layer", "dead", |v| v["dead"].is_number());
    let mut panels = vec![
        ramp_panel(
            "Weight gradient norm per layer",
            "mean L2 norm per step (log scale)",
            grads,
            true,
        ),
        ramp_panel(
            "Activation spread per layer",
            "standard deviation of outputs",
            stds,
            false,
        ),
    ];
    if !sat.is_empty() || !dead.is_empty() {
        let mut p = ramp_panel(
            "Saturated or dead units",
            "fraction of outputs / units",
            [sat, dead].concat(),
            false,
        );
        p.y_range = Some((0.0, 1.0));
        panels.push(p);
    }
    Figure::new("Diagnostics (bpnet train --diagnostics)", panels)
}

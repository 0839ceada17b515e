//! The studies over several seeds: each seed's full run in its own folder
//! (`seed-S/`), then mean ± sample sd over seeds of every number the
//! studies report (`seeds.json`, `seeds.md`, `seeds.html`) and each
//! study's test-accuracy curves as mean lines with ± sd bands
//! (`{study}_bands.png` / `.svg`).

use super::report::{self, escape, para};
use super::{ExperimentConfig, Mnist, Study, StudyOutput, run};
use crate::plot::{FOURTH, Figure, Panel, Rgb, Series, THIRD, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::{Error, Result};
use bpnet::io::write_atomic;
use bpnet::workflow::mean_sd;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The files [`run_seeds`] writes into the output folder itself.
pub const SEEDS_FILES: [&str; 3] = ["seeds.json", "seeds.md", "seeds.html"];

/// The name of one seed's folder, `seed-S`.
pub fn seed_folder(seed: u64) -> String {
    format!("seed-{seed}")
}

/// The seed of a folder named by [`seed_folder`].
pub fn folder_seed(name: &str) -> Option<u64> {
    name.strip_prefix("seed-")?.parse().ok()
}

/// The folder of one seed's run.
pub fn seed_dir(out: &Path, seed: u64) -> PathBuf {
    out.join(seed_folder(seed))
}

/// The seeds of a run of `seeds` seeds from `first`: `first`,
/// `first + 1`, ... (wrapping past `u64::MAX`).
pub fn seed_list(first: u64, seeds: usize) -> Vec<u64> {
    (0..seeds as u64).map(|k| first.wrapping_add(k)).collect()
}

/// The band figure files [`run_seeds`] writes for `study` into the output
/// folder itself (none for a study without a curves file).
pub fn band_files(study: Study) -> Vec<String> {
    match curves_file(study) {
        Some(_) => ["png", "svg"].map(|e| format!("{}_bands.{e}", study.name())).to_vec(),
        None => Vec::new(),
    }
}

/// Mean, sd and the values over seeds of one reported number.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// Where the number sits in a study's summary, e.g.
    /// `paper/networks/1/first_step_97`.
    pub path: String,
    /// Its value for each seed (`None` where not reached / not a number).
    pub values: Vec<Option<f64>>,
    /// Mean over the seeds that have a value.
    pub mean: f64,
    /// Sample standard deviation over them.
    pub sd: f64,
}

/// Runs `studies` for seeds `cfg.seed`..`cfg.seed + seeds - 1` and writes the
/// aggregate files; returns every number's spread.
pub fn run_seeds(
    studies: &[Study],
    cfg: &ExperimentConfig,
    data: &Mnist,
    out: &Path,
    seeds: usize,
    command: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<Spread>> {
    let marker = data.writes().then(|| super::write_marker(out, command)).transpose()?;
    let mut runs: Vec<Vec<StudyOutput>> = Vec::new();
    let seed_list = seed_list(cfg.seed, seeds);
    for &seed in &seed_list {
        log(&format!("=== seed {seed}"));
        let c = ExperimentConfig { seed, ..cfg.clone() };
        runs.push(run(studies, &c, data, &seed_dir(out, seed), command, log)?);
    }
    let spreads = spreads(&runs);
    let Some(marker) = marker else {
        return Ok(spreads);
    };
    let mut figures = Vec::new();
    for &study in studies {
        if let Some(files) = band_figure(study, out, &seed_list)? {
            figures.push((study, files));
        }
    }
    write_outputs(out, &seed_list, &spreads, &figures, command)?;
    super::remove_marker(&marker)?;
    Ok(spreads)
}

/// Flattens each study's summary to numeric leaves and gathers them over runs.
fn spreads(runs: &[Vec<StudyOutput>]) -> Vec<Spread> {
    let mut by_path: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for (k, run) in runs.iter().enumerate() {
        let mut leaves = Vec::new();
        for o in run {
            flatten(o.study.name(), &o.summary, &mut leaves);
        }
        for (path, v) in leaves {
            let slot = by_path.entry(path).or_insert_with(|| vec![None; runs.len()]);
            slot[k] = v;
        }
    }
    let mut out: Vec<Spread> = by_path
        .into_iter()
        .map(|(path, values)| {
            let present: Vec<f64> = values.iter().flatten().copied().collect();
            let (mean, sd) = mean_sd(&present);
            Spread { path, values, mean, sd }
        })
        .collect();
    out.sort_by(|a, b| path_order(&a.path, &b.path));
    out
}

/// Paths compared part by part, numbers as numbers (`layers/2` before
/// `layers/10`, `accuracy_at/5000` before `accuracy_at/20000`).
fn path_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |p: &str| -> Vec<(u64, String)> {
        p.split('/')
            .map(|part| match part.parse::<u64>() {
                Ok(n) => (n, String::new()),
                Err(_) => (u64::MAX, part.to_string()),
            })
            .collect()
    };
    key(a).cmp(&key(b))
}

/// `v` with six significant-looking decimals where that shows it, else in
/// scientific notation (gradient norms of 1e-15 printed as 0.000000).
fn number(v: f64) -> String {
    match v.abs() {
        0.0 => "0".into(),
        a if (1e-3..1e6).contains(&a) => format!("{v:.6}"),
        _ => format!("{v:.4e}"),
    }
}

/// Numeric leaves of `v` (nulls kept as `None`; strings and booleans skipped).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Option<f64>)>) {
    match v {
        Value::Number(n) => out.push((prefix.to_string(), n.as_f64())),
        Value::Null => out.push((prefix.to_string(), None)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| flatten(&format!("{prefix}/{i}"), x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| flatten(&format!("{prefix}/{k}"), x, out)),
        _ => {}
    }
}

/// The curves CSV of a study (by training step), if it writes one; the
/// normalization studies report end points only (their own spread over
/// seeds is in their tables).
fn curves_file(study: Study) -> Option<&'static str> {
    match study {
        Study::Paper => Some("paper_curves.csv"),
        Study::LearningRate => Some("lr_curves.csv"),
        Study::Depth => Some("depth_curves.csv"),
        Study::Population => Some("population_curves.csv"),
        Study::BatchSize | Study::Placement | Study::DropoutBn | Study::LrRange => None,
    }
}

fn read_curves(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or("").split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(|c| c.parse::<f64>().unwrap_or(f64::NAN)).collect())
        .collect();
    Ok((header, rows))
}

/// Mean line and ± sd band over seeds of every accuracy column of a study's curves.
fn band_figure(study: Study, out: &Path, seeds: &[u64]) -> Result<Option<crate::plot::FigureFiles>> {
    let Some(curves) = curves_file(study) else {
        return Ok(None);
    };
    let mut all = Vec::new();
    for &s in seeds {
        all.push(read_curves(&seed_dir(out, s).join(curves))?);
    }
    let (header, first) = &all[0];
    let columns: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(i, h)| *i > 0 && (study == Study::Population || h.starts_with("test_accuracy")))
        .map(|(i, _)| i)
        .collect();
    if columns.is_empty() || first.is_empty() {
        return Ok(None);
    }
    let colors = [
        WITHOUT_BN,
        WITH_BN,
        THIRD,
        FOURTH,
        Rgb(0x66, 0x66, 0x66),
        Rgb(0xA6, 0x76, 0x1D),
    ];
    let mut panel = Panel::new(
        format!(
            "{} study: test accuracy over {} seeds (mean, band ± 1 sd)",
            study.name(),
            seeds.len()
        ),
        "training step",
        "test accuracy (%)",
    );
    panel.x_ticks = Ticks::Thousands;
    panel.y_ticks = Ticks::Percent;
    let runs: Vec<&[Vec<f64>]> = all.iter().map(|(_, rows)| rows.as_slice()).collect();
    for (k, &c) in columns.iter().enumerate() {
        let color = colors[k % colors.len()];
        let (mean, hi, lo) = band(&runs, c);
        let label = header[c].trim_start_matches("test_accuracy_").replace('_', " ");
        panel.series.push(Series::band(color, &hi, &lo));
        panel.series.push(Series::new(label, color, mean).width(2));
    }
    let fig = Figure::new("", vec![panel]);
    Ok(Some(fig.save(out, &format!("{}_bands", study.name()))?))
}

/// `(step, value)` points of a curve.
type Points = Vec<(f64, f64)>;

/// A band over seeds of column `c` of curves (`runs[seed][row]`, the step
/// in column 0): at each step of the first run, the mean, mean + sd and
/// mean - sd (sample sd) of the finite values the runs have at that row.
fn band(runs: &[&[Vec<f64>]], c: usize) -> (Points, Points, Points) {
    let (mut mean, mut hi, mut lo) = (Vec::new(), Vec::new(), Vec::new());
    for (r, row0) in runs[0].iter().enumerate() {
        let step = row0[0];
        let vals: Vec<f64> = runs
            .iter()
            .filter_map(|rows| rows.get(r).map(|row| row[c]))
            .filter(|v| v.is_finite())
            .collect();
        let (m, sd) = mean_sd(&vals);
        mean.push((step, m));
        hi.push((step, m + sd));
        lo.push((step, m - sd));
    }
    (mean, hi, lo)
}

fn cell(s: &Spread) -> String {
    let reached = s.values.iter().flatten().count();
    let n = s.values.len();
    let missing = if reached < n {
        format!(" ({reached} of {n} seeds)")
    } else {
        String::new()
    };
    if reached == 0 {
        return format!("none of {n} seeds");
    }
    format!("{} ± {}{missing}", number(s.mean), number(s.sd))
}

fn write_outputs(
    out: &Path,
    seeds: &[u64],
    spreads: &[Spread],
    figures: &[(Study, crate::plot::FigureFiles)],
    command: &str,
) -> Result<()> {
    let json_rows: Vec<Value> = spreads
        .iter()
        .map(|s| json!({"path": s.path, "mean": s.mean, "sd": s.sd, "values": s.values}))
        .collect();
    let mut doc = Map::new();
    doc.insert("seeds".into(), json!(seeds));
    doc.insert("command".into(), json!(command));
    doc.insert("numbers".into(), Value::Array(json_rows));
    let text = serde_json::to_string_pretty(&Value::Object(doc)).map_err(|e| Error::State(e.to_string()))?;
    write_atomic(&out.join("seeds.json"), text.as_bytes())?;
    let mut md = format!(
        "# Spread over seeds {}\n\nEach study was run once per seed (`seed-S/`); mean ± sample sd over the seeds of every number it reports.\n\n| number | mean ± sd | per seed |\n|---|---|---|\n",
        seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
    );
    let mut rows = Vec::new();
    for s in spreads
        .iter()
        .filter(|s| !s.path.ends_with("/lr") && !s.path.ends_with("/unit"))
    {
        let per: Vec<String> = s
            .values
            .iter()
            .map(|v| v.map_or("-".into(), |x| format!("{x}")))
            .collect();
        md += &format!("| `{}` | {} | {} |\n", s.path, cell(s), per.join(", "));
        rows.push(vec![s.path.clone(), cell(s), per.join(", ")]);
    }
    write_atomic(&out.join("seeds.md"), md.as_bytes())?;
    let mut html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>bpnet experiments over seeds</title></head><body><h1>bpnet experiments over {} seeds</h1>",
        seeds.len()
    );
    html += &para(&format!(
        "Command: {command}. Each seed's full report: {}.",
        seeds
            .iter()
            .map(|&s| format!("{}/report.html", seed_folder(s)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (study, files) in figures {
        html += &report::figure(
            files,
            &format!("{}: test accuracy, mean over seeds with a ± 1 sd band", study.name()),
        )?;
    }
    html += &report::table(&["number", "mean ± sd", "per seed"], &rows);
    html += &format!(
        "<p>{}</p></body></html>\n",
        escape("Generated by bpnet experiment --seeds.")
    );
    write_atomic(&out.join("seeds.html"), html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three seeds' curves, hand-computed: at step 0 the values 0.1, 0.2,
    /// 0.6 (mean 0.3, sample sd sqrt(0.07)); at step 10 a value missing
    /// (NaN) in one seed leaves the other two (0.5, 0.7: mean 0.6, sd
    /// sqrt(0.02)).
    #[test]
    fn a_band_is_the_mean_plus_and_minus_the_sample_sd_at_each_step() {
        let a = vec![vec![0.0, 0.1], vec![10.0, 0.5]];
        let b = vec![vec![0.0, 0.2], vec![10.0, f64::NAN]];
        let c = vec![vec![0.0, 0.6], vec![10.0, 0.7]];
        let (mean, hi, lo) = band(&[&a, &b, &c], 1);
        let close = |x: (f64, f64), y: (f64, f64)| (x.0 - y.0).abs() < 1e-12 && (x.1 - y.1).abs() < 1e-12;
        let (s0, s1) = (0.07f64.sqrt(), 0.02f64.sqrt());
        for (got, want) in [
            (mean[0], (0.0, 0.3)),
            (hi[0], (0.0, 0.3 + s0)),
            (lo[0], (0.0, 0.3 - s0)),
            (mean[1], (10.0, 0.6)),
            (hi[1], (10.0, 0.6 + s1)),
            (lo[1], (10.0, 0.6 - s1)),
        ] {
            assert!(close(got, want), "{got:?} against {want:?}");
        }
        assert_eq!(mean.len(), 2);
    }

    /// seeds.md showed gradient norms of 1e-15 as `0.000000 ± 0.000000`
    /// and put layer 10 between layers 1 and 2.
    #[test]
    fn small_numbers_keep_their_digits_and_paths_sort_as_numbers() {
        let spread = |mean, sd| Spread {
            path: "p".into(),
            values: vec![Some(mean), Some(mean)],
            mean,
            sd,
        };
        assert_eq!(cell(&spread(6.29e-15, 4.5e-15)), "6.2900e-15 ± 4.5000e-15");
        assert_eq!(cell(&spread(0.9781, 0.0023)), "0.978100 ± 0.002300");
        assert_eq!(cell(&spread(0.97, 0.0)), "0.970000 ± 0");
        let mut paths = vec!["d/n/10", "d/n/2", "d/n/1", "a/20000", "a/5000", "a/x"];
        paths.sort_by(|a, b| path_order(a, b));
        assert_eq!(paths, ["a/5000", "a/20000", "a/x", "d/n/1", "d/n/2", "d/n/10"]);
    }
}

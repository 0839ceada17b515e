//! `bpnet lr-find`: the learning-rate range test (Smith 2017; fastai's
//! `lr_find`) on the network and data `bpnet train` would use, with the
//! smoothed loss against the rate as a figure and two suggested rates; and
//! the `--lr auto` of `bpnet train`, which runs the same test first and
//! trains with its minimum / 10 suggestion.

use super::train::TrainArgs;
use bpnet::Result;
use bpnet::io::{Kind, OutputPlan, write_atomic};
use bpnet::train::lr_find::{LrFindConfig, LrFindResult};
use bpnet::workflow::{Prepared, TrainConfig, auto_lr_rate, data_path, load, lr_range_test};
use bpnet_lab::plot::{Figure, Panel, Rgb, Series};
use std::path::{Path, PathBuf};

/// A `--lr` value: a number or `auto`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrArg {
    /// A learning rate.
    Value(f64),
    /// Run the range test and use its suggestion.
    Auto,
}

/// Parses `--lr`: `auto` or a number.
pub fn parse_lr(s: &str) -> std::result::Result<LrArg, String> {
    if s.trim().eq_ignore_ascii_case("auto") {
        return Ok(LrArg::Auto);
    }
    s.trim()
        .parse::<f64>()
        .map(LrArg::Value)
        .map_err(|_| format!("'{s}' is neither a number nor 'auto'"))
}

/// Options of `bpnet lr-find`: those of `bpnet train` that describe the
/// data, the network and its training (data, network, optimizer, batch
/// size, seed; `--lr` is ignored; those that only a training run uses, such
/// as `--out` or `--epochs`, are refused) and the range.
#[derive(clap::Args, Debug)]
pub struct LrFindArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// First learning rate.
    #[arg(long, default_value_t = 1e-7)]
    start_lr: f64,
    /// Last learning rate.
    #[arg(long, default_value_t = 10.0)]
    end_lr: f64,
    /// Batches in the run (at most; it stops when the loss explodes).
    #[arg(long, default_value_t = 100)]
    iterations: usize,
    /// Where the figure and the table go: STEM.png, STEM.svg and STEM.csv (a
    /// folder, existing or ending in / and then created if missing:
    /// FOLDER/lr_find.png and so on).
    #[arg(long, default_value = "lr_find")]
    figure: PathBuf,
}

/// The `lr-find` subcommand without the options of `bpnet train` it
/// refuses in its `--help` (they are still parsed, to be refused by name).
pub fn hide_training_only(cmd: clap::Command) -> clap::Command {
    super::train::TRAINING_ONLY.iter().fold(cmd, |cmd, flag| {
        let id = flag.trim_start_matches("--").replace('-', "_");
        cmd.mut_arg(id, |a| a.hide(true))
    })
}

/// Runs `bpnet lr-find`.
pub fn run(a: &LrFindArgs) -> Result<()> {
    run_named(a).map_err(|e| super::config::in_file(e, a.train.config_file()))
}

fn run_named(a: &LrFindArgs) -> Result<()> {
    a.train.refuse_training_only()?;
    if a.iterations < 2 {
        // The library names it "lr-find steps", which is no flag.
        let why = format!("{} is below 2 (the test compares the loss across rates)", a.iterations);
        return Err(bpnet::Error::config("--iterations", why));
    }
    let cfg = super::train::resolve(&a.train)?;
    let (stem, folder) = figure_stem(&a.figure);
    let (png, svg, csv) = stem_paths(&stem);
    let table_kind = Kind::csv("an lr-find table", &[CSV_HEADER]);
    let mut plan = OutputPlan::new(a.train.overwrite_given());
    plan.input("--data", &data_path(&cfg.data));
    if !cfg.test.is_empty() {
        // A config file's `test`: unused here, but never to be replaced.
        plan.input("--test", &data_path(&cfg.test));
    }
    if let Some(c) = a.train.config_file() {
        plan.input_once("--config", c);
    }
    match &folder {
        // A folder the run creates when it is missing.
        Some(dir) => plan.folder(
            "--figure",
            dir,
            None,
            &[
                ("lr_find.png", Kind::Png),
                ("lr_find.svg", Kind::Svg),
                ("lr_find.csv", table_kind),
            ],
        ),
        None => plan
            .output("--figure", &png, Kind::Png)
            .output("--figure", &svg, Kind::Svg)
            .output("--figure", &csv, table_kind),
    };
    plan.check()?;
    let data = load(&cfg)?;
    let rows = data.train.len();
    if let Some(b) = a.train.batch_size_flag().filter(|&b| b > rows) {
        // As `bpnet train` refuses it: the run would take batches of every row.
        return Err(bpnet::Error::config(
            "--batch-size",
            format!("{b} is larger than the {rows} training rows"),
        ));
    }
    let range = LrFindConfig {
        start_lr: a.start_lr,
        end_lr: a.end_lr,
        steps: a.iterations,
        ..LrFindConfig::default()
    };
    let r = lr_range_test(&cfg, &data, range)?;
    print_result(&r);
    if let Some(dir) = &folder {
        std::fs::create_dir_all(dir).map_err(|source| bpnet::Error::Io {
            path: dir.clone(),
            source,
        })?;
    }
    write_atomic(&csv, table(&r).as_bytes())?;
    figure(&r, &format!("learning-rate range test ({})", cfg.data))
        .save(png.parent().unwrap_or(Path::new(".")), &stem_name(&stem))?;
    println!("wrote {}, {} and {}", png.display(), svg.display(), csv.display());
    Ok(())
}

/// `--lr auto`: the suggested rate, or an error naming what went wrong.
pub fn auto_lr(cfg: &TrainConfig, data: &Prepared, quiet: bool) -> Result<f64> {
    let r = lr_range_test(cfg, data, LrFindConfig::default())?;
    if !quiet {
        print_result(&r);
    }
    auto_lr_rate(&r)
}

fn print_result(r: &LrFindResult) {
    let show = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.3e}"));
    let end = r.lrs.last().copied().unwrap_or(f64::NAN);
    let why = if r.stopped_early {
        "the loss exploded"
    } else {
        "the last rate"
    };
    let few = match bpnet::train::lr_find::too_few_to_read(r.lrs.len()) {
        true => " (too few batches to read: the first tenth and the last five are left out; give more --iterations)",
        false => "",
    };
    println!(
        "lr-find: {} batches, stopped at lr {end:.3e} ({why}); suggestions: steepest descent {}, minimum/10 {}{few}",
        r.lrs.len(),
        show(r.steepest),
        show(r.min_div10)
    );
}

/// Header of the table `bpnet lr-find` writes.
pub const CSV_HEADER: &str = "step,lr,loss,smoothed_loss";

fn table(r: &LrFindResult) -> String {
    let mut s = format!("{CSV_HEADER}\n");
    for (i, ((lr, l), sm)) in r.lrs.iter().zip(&r.losses).zip(&r.smoothed).enumerate() {
        s.push_str(&format!("{i},{lr:e},{l},{sm}\n"));
    }
    s
}

/// Smoothed and raw loss against log10(rate), with the two suggestions as
/// vertical lines.
pub fn figure(r: &LrFindResult, title: &str) -> Figure {
    let pts = |v: &[f64]| r.lrs.iter().zip(v).map(|(lr, l)| (lr.log10(), *l)).collect::<Vec<_>>();
    let mut panel = Panel::new(title, "learning rate (log10)", "training loss");
    panel
        .series
        .push(Series::new("batch loss", Rgb(180, 180, 180), pts(&r.losses)).width(1));
    panel
        .series
        .push(Series::new("smoothed loss", Rgb(31, 119, 180), pts(&r.smoothed)));
    let (lo, hi) = r
        .smoothed
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let mut mark = |label: &str, lr: Option<f64>, color: Rgb| {
        if let Some(lr) = lr {
            let x = lr.log10();
            let s = Series::new(format!("{label} {lr:.2e}"), color, vec![(x, lo), (x, hi)]);
            panel.series.push(s.dashed());
        }
    };
    mark("steepest", r.steepest, Rgb(214, 39, 40));
    mark("minimum/10", r.min_div10, Rgb(44, 160, 44));
    let first = r.smoothed.first().copied().unwrap_or(hi);
    panel.y_range = Some((lo - 0.3 * (first - lo).abs(), first.max(lo) * 1.5 + 1e-9));
    Figure::new("", vec![panel])
}

/// `--figure` as a stem: a folder (one that exists, or a path ending in a
/// separator) takes `FOLDER/lr_find` (`--figure sub/` wrote `sub.png`
/// beside the folder).
/// The stem of `--figure`'s files, and the folder they go into when
/// `--figure` names one (existing, or ending in `/`: created if missing).
fn figure_stem(given: &Path) -> (PathBuf, Option<PathBuf>) {
    let text = given.as_os_str().to_string_lossy();
    let folder = given.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
    match folder {
        true => (given.join("lr_find"), Some(given.to_path_buf())),
        false => (given.to_path_buf(), None),
    }
}

fn stem_paths(stem: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let name = stem_name(stem);
    let at = |ext: &str| stem.with_file_name(format!("{name}.{ext}"));
    (at("png"), at("svg"), at("csv"))
}

fn stem_name(stem: &Path) -> String {
    stem.file_name()
        .map_or("lr_find".into(), |n| n.to_string_lossy().into_owned())
}

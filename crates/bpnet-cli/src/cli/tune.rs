//! `bpnet tune`: search network and training settings by k-fold
//! cross-validation (TPE sampling, median pruning, parallel trials,
//! resumable), then refit on the training rows (a tenth of them held out
//! for early stopping, as `bpnet train` splits them) the re-scored trials (2
//! networks per trial in all, shared out by greedy selection on their
//! out-of-fold predictions, every network's predictions averaged: a blend)
//! or, with
//! `--no-blend`, the best alone (as `bpnet train` would: an ensemble of 5
//! on a table of at most 50,000 training rows), leaving out a trial whose
//! refit diverges; and write the model, a leaderboard CSV and an HTML
//! report.

use super::tune_refit as refit;
use bpnet::io::{Kind, OutputPlan, write_atomic};
use bpnet::workflow::{AUTO_ENSEMBLE, TrainConfig, data_path, load, metadata};
use bpnet::{Error, Result};
use bpnet_lab::tune::{BLEND_MEMBERS, BlendRule, GROUP, SCORE_FLOOR, TuneOptions, TuneOutcome, report, tune};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Options of `bpnet tune`.
#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// Training data (CSV).
    #[arg(long)]
    data: String,
    /// Target column(s) by name or 0-based index [default: last column].
    #[arg(long, value_delimiter = ',')]
    target: Option<Vec<String>>,
    /// classify, regress or auto.
    #[arg(long, default_value = "auto")]
    task: String,
    /// The CSV has no header row.
    #[arg(long, conflicts_with = "header")]
    no_header: bool,
    /// The CSV's first line names the columns, even where it holds a number
    /// (detected otherwise: a first line with a number is read as data).
    #[arg(long)]
    header: bool,
    /// CSV field delimiter [default: ','].
    #[arg(long, default_value_t = ',')]
    delimiter: char,
    /// Fill missing numeric cells: none, mean, median.
    #[arg(long, default_value = "mean", value_parser = super::config::impute_value)]
    impute: String,
    /// Number of trials (default 20 unless --time is given).
    #[arg(long, value_parser = at_least_one)]
    trials: Option<usize>,
    /// End the search after this many seconds (trials still running are
    /// stopped and left out), keeping time for the re-scoring and the refit
    /// (estimated from the trials' durations, at most the last 30%).
    #[arg(long, value_parser = parse_seconds)]
    time: Option<f64>,
    /// Folds of the cross-validation.
    #[arg(long, default_value_t = 5)]
    cv: usize,
    /// Most epochs per training run (early stopping on a 10% validation split ends most sooner).
    #[arg(long, default_value_t = 100, value_parser = at_least_one)]
    epochs: usize,
    /// Best trials scored again, with the portfolio's, on a second split
    /// into folds at the end; the answer is the best mean over both splits
    /// (0: no re-scoring, the search's best).
    #[arg(long, default_value_t = 3)]
    confirm: usize,
    /// Refit the best trial alone (5 networks on a table of at most 50,000
    /// rows) instead of a blend of the re-scored trials (2 networks per
    /// trial in all, shared out by how much each trial's out-of-fold
    /// predictions improve the average), their predictions averaged.
    #[arg(long)]
    no_blend: bool,
    /// How the blend shares out its networks: `select` (greedy selection on
    /// the re-scored trials' out-of-fold predictions; a trial that does not
    /// help gets none), `equal` (every re-scored trial, 2 networks each) or
    /// `mixed` (one network each, the rest by greedy selection).
    #[arg(long, default_value = "select", value_parser = ["select", "equal", "mixed"])]
    blend_rule: String,
    /// Trials run at once [default: the --threads count; at most 4, the
    /// size of the groups TPE asks for]; with more than one, each trial
    /// trains on one thread; with 1, on all of --threads.
    #[arg(long, value_parser = at_least_one)]
    parallel: Option<usize>,
    /// Seed of the search, the folds and every training run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model file to write; NAME.leaderboard.csv, NAME.report.html and the
    /// journal NAME.tune.jsonl (read back to resume) go beside it.
    #[arg(long, default_value = "tuned.safetensors")]
    out: PathBuf,
    /// Replace existing outputs of another kind.
    #[arg(long)]
    overwrite: bool,
    /// Print only the result.
    #[arg(long)]
    quiet: bool,
    /// Print a JSON summary as the last line.
    #[arg(long)]
    json: bool,
}

/// `NAME.suffix` beside `--out NAME.safetensors` (a name that is not UTF-8
/// kept as it is: it had become `tuned.suffix`, shared by every such run).
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.file_stem().unwrap_or(std::ffi::OsStr::new("tuned")).to_os_string();
    name.push(format!(".{suffix}"));
    out.with_file_name(name)
}

/// Runs `bpnet tune`.
pub fn run(a: &TuneArgs) -> Result<()> {
    let (board, html, journal) = (
        beside(&a.out, "leaderboard.csv"),
        beside(&a.out, "report.html"),
        beside(&a.out, "tune.jsonl"),
    );
    let mut plan = OutputPlan::new(a.overwrite);
    plan.input("--data", &data_path(&a.data));
    plan.output("--out", &a.out, Kind::Model);
    plan.derived(
        "--out",
        &board,
        "the leaderboard",
        Kind::csv("a leaderboard", &["rank,"]),
    );
    plan.derived("--out", &html, "the report", Kind::Html);
    plan.check()?;
    let base = TrainConfig {
        data: a.data.clone(),
        target: a.target.clone().unwrap_or_default(),
        task: a.task.clone(),
        impute: a.impute.clone(),
        no_header: a.no_header,
        header: a.header,
        delimiter: a.delimiter,
        epochs: a.epochs,
        seed: a.seed,
        out: a.out.to_string_lossy().into_owned(),
        ..TrainConfig::default()
    };
    let threads = bpnet::parallel::threads();
    // Trials run in groups of GROUP (TPE asks a group at a time): more at
    // once never run, and the header said "500 trial(s) at once".
    let workers = a.parallel.unwrap_or(threads).clamp(1, GROUP);
    let opts = TuneOptions {
        base: base.clone(),
        trials: a.trials.or(a.time.is_none().then_some(20)),
        time: a.time,
        cv: a.cv,
        workers,
        confirm: a.confirm,
        refit: match a.no_blend {
            true => (false, AUTO_ENSEMBLE),
            false => (true, BLEND_MEMBERS),
        },
        journal: journal.clone(),
    };
    if !a.quiet {
        println!(
            "tuning on {} with {}-fold cross-validation, {} trial(s) at once, seed {}; journal {}",
            a.data,
            a.cv,
            workers,
            a.seed,
            journal.display()
        );
    }
    // Several trials at once run each on one engine thread (the products of
    // a table's small networks gain little from more); one at a time, the
    // trial may use every thread.
    if workers > 1 {
        bpnet::set_threads(1);
    }
    let bar = progress(a.quiet, opts.trials);
    let outcome = tune(&opts, &mut |r, n, from_journal| {
        let line = match r.combined(a.cv) {
            Some(both) => format!(
                "re-scored trial {:>3} on other folds: {:.4} (search {:.4}, mean of both {:.4})",
                r.trial,
                bpnet::workflow::mean_sd(&r.confirm).0,
                r.score,
                both
            ),
            None => match &r.failed {
                Some(e) => format!("trial {:>3}: failed: {e} ({:.1} s)", r.trial, r.seconds),
                None => format!(
                    "trial {:>3}: {:.4}{}{} ({:.1} s)",
                    r.trial,
                    r.score,
                    if r.pruned { " pruned" } else { "" },
                    match r.floored {
                        0 => String::new(),
                        n => format!(" ({n} fold(s) below {} counted as {})", SCORE_FLOOR, SCORE_FLOOR),
                    },
                    r.seconds
                ),
            },
        };
        // A trial read back ran in an earlier search: its time is not this run's.
        let line = match from_journal {
            true => format!("{line} from the journal"),
            false => line,
        };
        match &bar {
            Some(b) => {
                b.set_position(n as u64);
                b.println(line);
            }
            None if !a.quiet => println!("{line}"),
            None => {}
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if workers > 1 {
        bpnet::set_threads(threads);
    }
    let outcome = outcome?;
    finish(a, &base, outcome, [&board, &html, &journal])
}

fn progress(quiet: bool, trials: Option<usize>) -> Option<ProgressBar> {
    // The bar draws on stderr and prints the trial lines above itself.
    (!quiet && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(trials.unwrap_or(0) as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} trials  {elapsed}") {
            bar.set_style(style);
        }
        bar
    })
}

/// Refits the answer on all rows ([`refit::fit`]), writes the outputs,
/// prints the summary.
fn finish(a: &TuneArgs, base: &TrainConfig, mut o: TuneOutcome, [board, html, journal]: [&PathBuf; 3]) -> Result<()> {
    let data = load(base)?;
    // Hashed after the read: a file changed before or while it was read
    // differs from the one the trials were scored on.
    let now = bpnet::workflow::data_sha256(&base.data)?;
    if !o.data_sha256.is_empty() && now != o.data_sha256 {
        return Err(Error::config(
            "--data",
            format!(
                "{} changed during the search (SHA-256 {} when it began, {} now): the refit would train on other rows \
                 than the trials were scored on; nothing was written: remove {} (the old file's trials) and run \
                 bpnet tune again",
                a.data,
                &o.data_sha256[..12.min(o.data_sha256.len())],
                &now[..12.min(now.len())],
                journal.display()
            ),
        ));
    }
    let rule = match (a.no_blend, a.blend_rule.as_str()) {
        (true, _) => BlendRule::Alone,
        (false, "equal") => BlendRule::Equal,
        (false, "mixed") => BlendRule::Mixed,
        _ => BlendRule::Select,
    };
    let model = refit::fit(&mut o, base, &data, rule, a.quiet)?;
    let best = o.best();
    let mut meta = serde_json::to_value(metadata(&model.cfg, &data, Some(&model.history), None))
        .map_err(|e| Error::State(e.to_string()))?;
    if let Some(m) = meta.as_object_mut() {
        m.insert("tune".into(), refit::section(&o));
    }
    refit::save(&a.out, &model, &data, &meta)?;
    write_atomic(board, report::leaderboard_csv(&o).as_bytes())?;
    write_atomic(
        html,
        report::html(&o, &format!("bpnet tune: {}", a.data), rule).as_bytes(),
    )?;
    // The result, with --quiet too ("print only the result"; it printed
    // nothing, and without it the best score was in the report alone).
    println!("{}", best_line(&o, model.members.len()));
    println!("wrote {}, {}, {}", a.out.display(), board.display(), html.display());
    if a.json {
        let summary = json!({
            "model": a.out.to_string_lossy(), "leaderboard": board.to_string_lossy(), "report": html.to_string_lossy(),
            "journal": journal.to_string_lossy(),
            "trials": o.records.len(), "resumed": o.resumed, "pruned": o.records.iter().filter(|r| r.pruned).count(),
            "metric": o.metric, "best_trial": best.trial, "best_score": best.score, "best_folds": best.folds,
            "best_confirm": best.confirm, "best_combined": best.combined(o.cv),
            "best_params": refit::params_json(best),
            "blend": o.blended.iter().map(|&(i, _)| o.records[i].trial).collect::<Vec<_>>(),
            "blend_networks": o.blended.iter().map(|&(_, n)| n).collect::<Vec<_>>(),
            "networks": model.members.len(),
            "config": serde_json::to_value(&model.cfg).map_err(|e| Error::State(e.to_string()))?,
        });
        println!("{summary}");
    }
    Ok(())
}

/// `best: trial 7, accuracy 0.9533 (mean over 2 x 3 folds); the model
/// blends trials 7, 2 (5 networks)`.
fn best_line(o: &TuneOutcome, networks: usize) -> String {
    let best = o.best();
    let score = match best.combined(o.cv) {
        Some(both) => format!("{both:.4} (mean of its {k} folds and {k} re-scoring folds)", k = o.cv),
        None => format!("{:.4} (mean over {} folds)", best.score, o.cv),
    };
    let trials: Vec<String> = o.blended.iter().map(|&(i, _)| o.records[i].trial.to_string()).collect();
    let model = match trials.len() {
        0 | 1 => format!("the model: {networks} network{}", if networks == 1 { "" } else { "s" }),
        _ => format!("the model blends trials {} ({networks} networks)", trials.join(", ")),
    };
    let resumed = match o.resumed {
        0 => String::new(),
        n => format!("; {n} of {} trials read back from the journal", o.records.len()),
    };
    format!("best: trial {}, {} {score}; {model}{resumed}", best.trial, o.metric)
}

/// `--time`: a positive number of seconds.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t > 1e9 => Err(format!("'{s}' is more than 1e9 seconds (31 years)")),
        Ok(t) if t > 0.0 && t.is_finite() => Ok(t),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// `--trials`, `--epochs`: a whole number of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number of at least 1")),
    }
}

//! `bpnet experiment`: the batch-normalization experiments on MNIST (the
//! paper's Figure 1, learning rates, depth, inference statistics) and the
//! learning-rate / init-scale sweep that chose their defaults.

use bpnet::comm::Comm;
use bpnet::io::{Kind, OutputPlan};
use bpnet::{Error, Result};
use bpnet_lab::experiment::{self, ExperimentConfig, Mnist, Study, seeds};
use std::path::PathBuf;
use std::sync::Arc;

mod flags;

/// Options of `bpnet experiment`.
#[derive(clap::Args, Debug)]
pub struct ExperimentArgs {
    /// bn-mnist (the paper's Figure 1), lr, depth, population, all (the four), sweep; or the
    /// normalization studies batch-size, placement, dropout-bn, lr-range, norm (those four).
    #[arg(value_parser = ["bn-mnist", "lr", "depth", "population", "all", "sweep", "batch-size", "placement", "dropout-bn", "lr-range", "norm"])]
    which: String,
    /// A short run (5,000 steps, evaluated every 250) that still shows the effects.
    #[arg(long)]
    quick: bool,
    /// Output folder for CSV files, figures and report.html.
    #[arg(long, default_value = "bn-experiments")]
    out: PathBuf,
    /// Training steps per network [default: 50000, 5000 with --quick].
    #[arg(long)]
    steps: Option<usize>,
    /// Base learning rate of plain SGD [default: 0.5].
    #[arg(long)]
    lr: Option<f64>,
    /// Standard deviation of the Gaussian initial weights [default: 0.01].
    #[arg(long)]
    init_std: Option<f64>,
    /// Rows per mini-batch [default: 60, as in the paper].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Evaluate every N steps [default: 500, 250 with --quick].
    #[arg(long)]
    eval_every: Option<usize>,
    /// Seed of weights and batch order [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Unit of the last hidden layer whose sigmoid input is followed [default: 0].
    #[arg(long)]
    unit: Option<usize>,
    /// Test images in the fixed batch for the sigmoid-input percentiles [default: 1000].
    #[arg(long)]
    probe_rows: Option<usize>,
    /// Use only the first N training images (0: all).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Use only the first N test images (0: all).
    #[arg(long)]
    test_limit: Option<usize>,
    /// Learning-rate multipliers of the lr study [default: 1,5,30].
    #[arg(long, value_delimiter = ',')]
    lr_multipliers: Option<Vec<f64>>,
    /// Hidden layers of the depth study's network [default: 10].
    #[arg(long)]
    depth: Option<usize>,
    /// Training batches for the population statistics (0 = one pass over the training set).
    #[arg(long)]
    population_batches: Option<usize>,
    /// Batch sizes of the batch-size study [default: 2,4,8,16,32,60,256].
    #[arg(long, value_delimiter = ',')]
    batch_sizes: Option<Vec<usize>>,
    /// Epochs at every batch size in the batch-size study [default: 1].
    #[arg(long)]
    epochs: Option<usize>,
    /// Ghost BN's virtual batch size in the batch-size study [default: 16].
    #[arg(long)]
    ghost_size: Option<usize>,
    /// Dropout rate of the dropout-bn study [default: 0.5].
    #[arg(long)]
    dropout_rate: Option<f64>,
    /// Learning rates of the lr-range study [default: 0.01,0.03,0.1,0.3,1,3,10,30].
    #[arg(long, value_delimiter = ',')]
    lr_range: Option<Vec<f64>>,
    /// Folder with the MNIST IDX files [default: the bundled copy].
    #[arg(long)]
    mnist: Option<PathBuf>,
    /// Learning rates of the sweep [default: 0.05,0.1,0.5,1,2].
    #[arg(long, value_delimiter = ',')]
    sweep_lrs: Option<Vec<f64>>,
    /// Initial weight standard deviations of the sweep [default: 0.01,0.1,1].
    #[arg(long, value_delimiter = ',')]
    sweep_stds: Option<Vec<f64>>,
    /// Seeds. The four paper studies run whole over N seeds (seed, seed+1,
    /// ...): every seed's run in OUT/seed-S/, mean ± sd of every reported
    /// number in OUT/seeds.md, seeds.json and seeds.html, accuracy curves
    /// with ± sd bands [default: 1]. The normalization studies train N seeds
    /// per arm and report their mean ± sd themselves [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    seeds: Option<u64>,
    /// Print only the final summary.
    #[arg(long)]
    quiet: bool,
    /// Replace existing files in --out even when they hold something else.
    #[arg(long)]
    overwrite: bool,
}

/// The configuration: defaults (full or quick), then the flags.
pub fn config(a: &ExperimentArgs) -> ExperimentConfig {
    let mut c = if a.quick {
        ExperimentConfig::quick()
    } else {
        ExperimentConfig::default()
    };
    macro_rules! set {
        ($($f:ident),*) => { $(if let Some(v) = a.$f.clone() { c.$f = v; })* };
    }
    set!(
        steps,
        lr,
        init_std,
        batch_size,
        eval_every,
        seed,
        unit,
        probe_rows,
        train_limit,
        test_limit
    );
    set!(lr_multipliers, depth, population_batches);
    set!(batch_sizes, ghost_size, dropout_rate, lr_range);
    // The paper studies run whole over the seeds (1 unless --seeds): the
    // configuration records that, not the normalization studies' 3 per arm
    // (`"seeds": 3` beside one run).
    let norm = studies(&a.which).is_ok_and(|s| !s.is_empty() && s.iter().all(|x| Study::NORM.contains(x)));
    match (a.seeds, norm) {
        (Some(n), _) => c.seeds = n as usize,
        (None, false) => c.seeds = 1,
        (None, true) => {}
    }
    if let Some(e) = a.epochs {
        c.norm_epochs = e;
    }
    c.mnist_dir = a.mnist.clone();
    c
}

/// The training images against the batch sizes, before any file is
/// written (a batch larger than the images ran as one of every image while
/// the banner and config.json recorded the size asked for).
fn check_rows(cfg: &ExperimentConfig, studies: &[Study], rows: usize) -> Result<()> {
    if rows < 2 {
        return Err(Error::config(
            "--train-limit",
            format!("{rows} training image: batch normalization needs batches of at least 2"),
        ));
    }
    let study = studies.contains(&Study::BatchSize);
    let sizes = std::iter::once(("--batch-size", cfg.batch_size))
        .chain(cfg.batch_sizes.iter().filter(|_| study).map(|&b| ("--batch-sizes", b)));
    for (flag, b) in sizes {
        if b > rows {
            return Err(Error::config(
                flag,
                format!("{b} is larger than the {rows} training images"),
            ));
        }
    }
    Ok(())
}

/// Runs `bpnet experiment`.
///
/// Under `mpirun` every rank trains every network on its block of each
/// mini-batch (batch normalization synchronized over the global batch: the
/// networks of one process); rank 0 alone prints and writes.
pub fn run(a: &ExperimentArgs, comm: &Arc<dyn Comm>) -> Result<()> {
    // Each rank alone, its errors shared ([`super::dist::settle`]).
    let (cfg, studies) = super::dist::settle(&**comm, checked(a, comm))?;
    let quiet = a.quiet || comm.rank() != 0;
    let mut log = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    let sweep_grid = (flags::sweep_lrs(a), flags::sweep_stds(a));
    let settings = serde_json::to_vec(&(&cfg, &a.which, a.seeds, &sweep_grid))
        .map_err(|e| Error::State(format!("experiment settings: {e}")))?;
    bpnet::comm::agree(&**comm, "experiment settings", &settings)?;
    let data = super::dist::settle(
        &**comm,
        Mnist::load(&cfg).and_then(|d| check_rows(&cfg, &studies, d.train.len()).map(|_| d)),
    )?;
    let data = data.on_ranks(comm.clone())?;
    if comm.rank() != 0 {
        return run_quietly(a, &cfg, &studies, &data, &mut log);
    }
    log(&format!(
        "MNIST: {} training, {} test images; {}",
        data.train.len(),
        data.test.len(),
        flags::banner(a, &cfg)
    ));
    if a.which == "sweep" {
        return sweep(a, &cfg, &data, &mut log);
    }
    let command = command_line();
    if whole_runs(a, &studies) > 1 {
        run_seeds(a, &cfg, &studies, &data, &command, &mut log)
    } else {
        run_once(a, &cfg, &studies, &data, &command, &mut log)
    }
}

/// The settings of `a` and its studies, checked, and the outputs planned:
/// what each rank does alone before the first communication.
fn checked(a: &ExperimentArgs, comm: &Arc<dyn Comm>) -> Result<(ExperimentConfig, Vec<Study>)> {
    flags::refuse_unused(a)?;
    let cfg = config(a);
    cfg.validate()?;
    let studies = studies(&a.which)?;
    // The seeds run: seed..seed+N-1, N the whole runs of the paper studies
    // or each normalization arm's seeds (it panicked past 2^64).
    let norm = !studies.is_empty() && studies.iter().all(|s| Study::NORM.contains(s));
    let last = if norm { cfg.seeds } else { whole_runs(a, &studies) };
    if cfg.seed.checked_add(last.max(1) as u64 - 1).is_none() {
        return Err(Error::config(
            "--seed",
            format!(
                "{}: the seeds {}..{}+{} do not fit in 64 bits",
                cfg.seed,
                cfg.seed,
                cfg.seed,
                last - 1
            ),
        ));
    }
    if comm.size() > 1 && studies.contains(&Study::BatchSize) {
        return Err(Error::Comm(
            "the batch-size study trains Batch Renormalization and Ghost BN, which run in one process only; start it without mpirun".into(),
        ));
    }
    check_outputs(a, &cfg, &studies)?;
    Ok((cfg, studies))
}

/// One run of `studies`: its files, the timings, the paper's summary.
fn run_once(
    a: &ExperimentArgs,
    cfg: &ExperimentConfig,
    studies: &[Study],
    data: &Mnist,
    command: &str,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let outputs = experiment::run(studies, cfg, data, &a.out, command, log)?;
    for o in &outputs {
        println!("{}: {:.1} s", o.section.title, o.seconds);
    }
    let ours: Vec<String> = studies.iter().flat_map(|s| s.files()).collect();
    let ours = [ours, experiment::REPORT_FILES.map(String::from).to_vec()].concat();
    note_stale(&a.out, &ours, "config.json, results.json and report.html");
    if let Some(paper) = outputs.iter().find(|o| o.study == Study::Paper) {
        print_paper_summary(&paper.summary);
    }
    println!("wrote {}", a.out.join("report.html").display());
    Ok(())
}

/// Names the experiment outputs in `out` that this run did not write
/// (`ours`: file names, and `seed-S/` folders): another study's, a run
/// over seeds', or a seed folder beyond this run's seeds, from an earlier
/// run into the same folder. They are kept, but they are not this run's,
/// which the files named by `describes` describe.
fn note_stale(out: &std::path::Path, ours: &[String], describes: &str) {
    let studies = Study::ALL.iter().chain(&Study::NORM);
    let mut known: Vec<String> = studies.clone().flat_map(|s| s.files()).collect();
    known.extend(
        experiment::REPORT_FILES
            .iter()
            .chain(&seeds::SEEDS_FILES)
            .chain(&[experiment::SWEEP_FILE])
            .map(|f| f.to_string()),
    );
    known.extend(studies.flat_map(|&s| seeds::band_files(s)));
    let mut stale: Vec<String> = known
        .into_iter()
        .filter(|f| !ours.contains(f) && out.join(f).is_file())
        .collect();
    stale.extend(
        seed_folders(out)
            .into_iter()
            .filter(|d| !ours.contains(d))
            .map(|d| d + "/"),
    );
    if !stale.is_empty() {
        println!(
            "note: {} also holds {} from an earlier run, not this one's (its {describes} describe this run)",
            out.display(),
            stale.join(", ")
        );
    }
}

/// The `seed-S` folders in `out`, by seed.
fn seed_folders(out: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    let mut seeds: Vec<u64> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| seeds::folder_seed(e.file_name().to_str()?))
        .collect();
    seeds.sort_unstable();
    seeds.into_iter().map(seeds::seed_folder).collect()
}

/// The work of a rank other than 0: the same training, no output.
fn run_quietly(
    a: &ExperimentArgs,
    cfg: &ExperimentConfig,
    studies: &[Study],
    data: &Mnist,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    if a.which == "sweep" {
        experiment::sweep(cfg, data, &flags::sweep_lrs(a), &flags::sweep_stds(a), &a.out, log)?;
    } else if whole_runs(a, studies) > 1 {
        seeds::run_seeds(studies, cfg, data, &a.out, whole_runs(a, studies), "", log)?;
    } else {
        experiment::run(studies, cfg, data, &a.out, "", log)?;
    }
    Ok(())
}

/// `--seeds N`: the studies over N seeds and their spread.
fn run_seeds(
    a: &ExperimentArgs,
    cfg: &ExperimentConfig,
    studies: &[Study],
    data: &Mnist,
    command: &str,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let seeds = whole_runs(a, studies);
    let spreads = seeds::run_seeds(studies, cfg, data, &a.out, seeds, command, log)?;
    let mut ours: Vec<String> = seeds::SEEDS_FILES.map(String::from).to_vec();
    ours.extend(studies.iter().flat_map(|&s| seeds::band_files(s)));
    ours.extend(seeds::seed_list(cfg.seed, seeds).into_iter().map(seeds::seed_folder));
    note_stale(&a.out, &ours, "seeds.json, seeds.md and seeds.html");
    for s in spreads.iter().filter(|s| {
        s.path.starts_with("paper/networks/")
            && ["final_accuracy", "first_step_95", "first_step_97"]
                .iter()
                .any(|k| s.path.ends_with(k))
    }) {
        let reached = s.values.iter().flatten().count();
        match reached {
            0 => println!("{}: not reached with any of the {seeds} seeds", s.path),
            _ => println!(
                "{}: {:.4} ± {:.4} over {reached} of {seeds} seeds",
                s.path, s.mean, s.sd
            ),
        }
    }
    println!("wrote {}", a.out.join("seeds.html").display());
    Ok(())
}

/// How many whole runs `--seeds` asks of `studies`: N for the paper
/// studies, 1 for the normalization studies (which spread their own arms
/// over the seeds).
fn whole_runs(a: &ExperimentArgs, studies: &[Study]) -> usize {
    let norm = studies.iter().all(|s| Study::NORM.contains(s));
    match (a.seeds, norm) {
        (Some(n), false) => n as usize,
        _ => 1,
    }
}

/// The studies of `which` (none for `sweep`).
fn studies(which: &str) -> Result<Vec<Study>> {
    Ok(match which {
        "bn-mnist" => vec![Study::Paper],
        "lr" => vec![Study::LearningRate],
        "depth" => vec![Study::Depth],
        "population" => vec![Study::Population],
        "all" => Study::ALL.to_vec(),
        "batch-size" => vec![Study::BatchSize],
        "placement" => vec![Study::Placement],
        "dropout-bn" => vec![Study::DropoutBn],
        "lr-range" => vec![Study::LrRange],
        "norm" => Study::NORM.to_vec(),
        "sweep" => Vec::new(),
        other => return Err(Error::config("experiment", format!("unknown '{other}'"))),
    })
}

/// The MNIST folder in, the files of `--out` out (see `bpnet::io::OutputPlan`).
fn check_outputs(a: &ExperimentArgs, cfg: &ExperimentConfig, studies: &[Study]) -> Result<()> {
    let mnist = cfg.mnist_dir.clone().unwrap_or_else(bpnet::data::bundled_mnist_dir);
    if let Some(d) = cfg.mnist_dir.as_deref().filter(|d| !d.is_dir()) {
        // It said "... neither found in this folder" of a missing folder or a file.
        let what = if d.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        return Err(Error::config(
            "--mnist",
            format!("{} {what}: give the folder of the MNIST IDX files", d.display()),
        ));
    }
    let same = |x: &std::path::Path, y: &std::path::Path| matches!((x.canonicalize(), y.canonicalize()), (Ok(p), Ok(q)) if p == q);
    if same(&a.out, &mnist) {
        // Its outputs were written among the IDX files once; the rerun then
        // took them for inputs and refused, saying so.
        return Err(Error::config(
            "--out",
            format!(
                "{} is the MNIST folder (--mnist): the outputs would mix with the data; choose another folder",
                a.out.display()
            ),
        ));
    }
    let runs = whole_runs(a, studies) as u64;
    if runs > 1 {
        for k in 0..runs {
            check_folder(a, cfg, studies, &seeds::seed_dir(&a.out, cfg.seed + k), Vec::new())?;
        }
        let mut extra: Vec<String> = seeds::SEEDS_FILES.iter().map(|f| f.to_string()).collect();
        extra.extend(
            studies
                .iter()
                .flat_map(|s| [format!("{}_bands.png", s.name()), format!("{}_bands.svg", s.name())]),
        );
        return check_folder(a, cfg, &[], &a.out, extra);
    }
    check_folder(a, cfg, studies, &a.out, Vec::new())
}

/// The files of `studies` (and `extra`) in `dir`.
fn check_folder(
    a: &ExperimentArgs,
    cfg: &ExperimentConfig,
    studies: &[Study],
    dir: &std::path::Path,
    extra: Vec<String>,
) -> Result<()> {
    let mut names: Vec<String> = studies.iter().flat_map(|s| s.files()).collect();
    match (a.which.as_str(), extra.is_empty()) {
        (_, false) => names.extend(extra),
        ("sweep", _) => names.push(experiment::SWEEP_FILE.into()),
        _ => names.extend(experiment::REPORT_FILES.iter().map(|f| f.to_string())),
    }
    if a.which != "sweep" {
        names.push(experiment::MARKER.into());
    }
    let files: Vec<(&str, Kind)> = names.iter().map(|n| (n.as_str(), experiment::output_kind(n))).collect();
    let mut plan = OutputPlan::new(a.overwrite);
    plan.input(
        "--mnist",
        &cfg.mnist_dir.clone().unwrap_or_else(bpnet::data::bundled_mnist_dir),
    );
    plan.folder("--out", dir, None, &files);
    plan.check()
}

fn sweep(a: &ExperimentArgs, cfg: &ExperimentConfig, data: &Mnist, log: &mut dyn FnMut(&str)) -> Result<()> {
    let rows = experiment::sweep(cfg, data, &flags::sweep_lrs(a), &flags::sweep_stds(a), &a.out, log)?;
    println!("| init std | lr | without BN | with BN |");
    println!("|---|---|---|---|");
    for pair in rows.chunks(2) {
        let cell = |r: &experiment::SweepRow| {
            let reach = r
                .steps_to_95
                .map_or("95% not reached".into(), |s| format!("95% at {s}"));
            format!("{:.2}% ({reach})", 100.0 * r.final_accuracy)
        };
        if let [plain, bn] = pair {
            println!("| {} | {} | {} | {} |", plain.init_std, plain.lr, cell(plain), cell(bn));
        }
    }
    println!("wrote {}", a.out.join("sweep.csv").display());
    Ok(())
}

fn print_paper_summary(summary: &serde_json::Value) {
    let Some(nets) = summary["networks"].as_array() else {
        return;
    };
    for n in nets {
        let step = |k: &str| n[k].as_u64().map_or("not reached".into(), |s| s.to_string());
        println!(
            "{}: final test accuracy {:.2}%, 95% at step {}, 97% at step {}",
            n["label"].as_str().unwrap_or("?"),
            100.0 * n["final_accuracy"].as_f64().unwrap_or(f64::NAN),
            step("first_step_95"),
            step("first_step_97")
        );
    }
}

/// The command line as typed, with the program shown as `bpnet`.
fn command_line() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(first) = args.first_mut() {
        *first = "bpnet".into();
    }
    args.join(" ")
}

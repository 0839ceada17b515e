//! `bpnet train`: load data, build the network, train with validation, early
//! stopping and a schedule, evaluate on the test set, and write the model file
//! with its history.

use super::config::TomlConfig;
use super::progress::Progress;
use crate::overlay;
use bpnet::comm::Comm;
use bpnet::io::{load_model, load_run, save_model_with, save_run};
use bpnet::train::BnSyncMode;
use bpnet::train::{Event, History, default_loss, fit_resume};
use bpnet::workflow::{
    Pipeline, Prepared, TestMetrics, TrainConfig, auto_ensemble, fit_config, load, metadata, metrics_split, model_spec,
    optimizer, record_json,
};
use bpnet::{Error, ModelSpec, Optimizer, Result, Sequential, Trainer};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `bpnet train`; each (but `--cv` and the last five) overrides the same key of `--config`.
#[derive(clap::Args, Debug, Default)]
pub struct TrainArgs {
    /// `mnist` (bundled), a CSV file, or a folder of MNIST-format IDX files.
    #[arg(long)]
    data: Option<String>,
    /// Target column(s) of a CSV by name or 0-based index [default: last column].
    #[arg(long, value_delimiter = ',')]
    target: Option<Vec<String>>,
    /// classify, regress or auto.
    #[arg(long)]
    task: Option<String>,
    /// The CSV has no header row.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    no_header: Option<bool>,
    /// The CSV's first line names the columns, even where it holds a number
    /// (detected otherwise: a first line with a number is read as data).
    #[arg(long, num_args = 0, default_missing_value = "true")]
    header: Option<bool>,
    /// CSV field delimiter.
    #[arg(long)]
    delimiter: Option<char>,
    /// Fill missing numeric cells: none, mean, median.
    #[arg(long, value_parser = super::config::impute_value)]
    impute: Option<String>,
    /// Feature scaling: auto, zscore, minmax, none.
    #[arg(long)]
    scaling: Option<String>,
    /// Hidden layer widths, e.g. 100,100,100.
    #[arg(long)]
    hidden: Option<String>,
    /// sigmoid, tanh, relu, leaky_relu[:slope], elu[:alpha], gelu, softplus, identity.
    #[arg(long)]
    activation: Option<String>,
    /// Batch normalization in each hidden block (default).
    #[arg(long, num_args = 0, default_missing_value = "true", overrides_with = "no_batch_norm")]
    batch_norm: Option<bool>,
    /// No batch normalization.
    #[arg(long, num_args = 0, default_missing_value = "true", overrides_with = "batch_norm")]
    no_batch_norm: Option<bool>,
    /// Batch normalization after the activation instead of before it.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    bn_after: Option<bool>,
    /// Normalization: batch, renorm[:rmax[:dmax[:warmup[:rmax_steps[:dmax_steps]]]]], ghost:N, layer or none.
    #[arg(long)]
    norm: Option<String>,
    /// Dropout rate after each hidden block.
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f64>,
    /// Label smoothing of the cross-entropy loss, in [0, 1): each row's target is (1 - e) on its class plus e / classes on every class (classification; training loss only).
    #[arg(long, allow_negative_numbers = true)]
    label_smoothing: Option<f64>,
    /// normal[:std], xavier_uniform, xavier_normal, he_uniform, he_normal, torch.
    #[arg(long)]
    init: Option<String>,
    /// gd (full batch), sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad.
    #[arg(long)]
    optimizer: Option<String>,
    /// Learning rate, or `auto` (a learning-rate range test picks it) [default per optimizer: sgd/gd 0.5, momentum/nesterov 0.05, adam/adamw/rmsprop 0.001, adagrad 0.01].
    #[arg(long, value_parser = crate::cli::lr_find::parse_lr, allow_negative_numbers = true)]
    lr: Option<crate::cli::lr_find::LrArg>,
    /// Momentum for momentum and nesterov.
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f64>,
    /// Weight decay (L2; decoupled for adamw). Default 0, and 0.01 for adamw
    /// (PyTorch's AdamW default); 0 trains without decay.
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f64>,
    /// Rows per mini-batch.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Passes over the training set.
    #[arg(long)]
    epochs: Option<usize>,
    /// Train for this many optimizer steps instead (`--epochs` given alone
    /// clears a config file's or checkpoint's steps).
    #[arg(long, value_parser = super::config::count_value)]
    steps: Option<usize>,
    /// constant, step[:every[:gamma]], exponential[:gamma], cosine[:warmup_steps], plateau[:patience[:factor]].
    #[arg(long)]
    schedule: Option<String>,
    /// Fraction of training rows for validation (0 = none).
    #[arg(long, allow_negative_numbers = true)]
    val_split: Option<f64>,
    /// Labelled test data (CSV or IDX folder).
    #[arg(long)]
    test: Option<String>,
    /// Fraction of rows held out as test set when --test is not given.
    #[arg(long, allow_negative_numbers = true)]
    test_split: Option<f64>,
    /// Early-stopping patience (0 = off): epochs without improvement
    /// tolerated; the run stops at the end of the next one without.
    #[arg(long)]
    patience: Option<usize>,
    /// Smallest improvement of the monitored value that counts.
    #[arg(long, allow_negative_numbers = true)]
    min_delta: Option<f64>,
    /// val_loss or val_metric (accuracy, or R² for regression).
    #[arg(long)]
    monitor: Option<String>,
    /// Use only the first N training rows.
    #[arg(long, value_parser = super::config::count_value)]
    limit: Option<usize>,
    /// Seed for splits, weights, shuffling and dropout.
    #[arg(long)]
    seed: Option<u64>,
    /// Model file to write.
    #[arg(long)]
    out: Option<String>,
    /// Write a resumable checkpoint NAME.ckpt.safetensors every N epochs.
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Also write the checkpoint every N steps.
    #[arg(long)]
    checkpoint_steps: Option<usize>,
    /// On a non-finite loss or gradient: stop (keeping the last good weights) or skip-batch.
    #[arg(long)]
    on_nan: Option<String>,
    /// Rescale gradients to at most this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    clip_grad_norm: Option<f64>,
    /// Continue the run saved in this checkpoint (its configuration, data
    /// splits, weights, optimizer and loop state); flags such as --epochs override.
    #[arg(long)]
    pub(super) resume: Option<PathBuf>,
    /// Train K networks from seeds seed..seed+K-1 on the same data and average
    /// their predictions (probabilities, or values) in one model file. Default
    /// (0): 5 for a table of at most 50,000 training rows trained in one
    /// process without checkpoints, else 1.
    #[arg(long, value_name = "K")]
    ensemble: Option<usize>,
    /// Record per-layer diagnostics (activation statistics, saturated or dead units, gradient norms) in the history and warn about problems.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    diagnostics: Option<bool>,
    /// Draw the loss/metric curves (and diagnostics) as PNG and SVG into NAME.plots/ after training.
    #[arg(long, num_args = 0, default_missing_value = "true")]
    plot: Option<bool>,
    /// k-fold cross-validation (stratified for classification) before the final
    /// fit: each fold's score and their mean ± sd; the model is then refit on
    /// all training rows.
    #[arg(long, value_name = "K")]
    cv: Option<usize>,
    /// Under mpirun: batch normalization with the statistics of the whole
    /// global batch (global, the same model as one process) or of each
    /// process's rows (local, a different model); ignored in one process.
    #[arg(long)]
    bn_sync: Option<String>,
    /// Read the data file in chunks, for data larger than memory [default:
    /// only when its estimated size in memory exceeds the memory available].
    #[arg(long, num_args = 0, default_missing_value = "true", overrides_with = "no_stream")]
    stream: Option<bool>,
    /// Load the data in memory even when it seems not to fit.
    #[arg(long, num_args = 0, default_missing_value = "true", overrides_with = "stream")]
    no_stream: Option<bool>,
    /// Rows of the shuffle buffer while streaming [default: a quarter of the
    /// available memory, at most 1048576 rows]; when every training row fits,
    /// they are held and batched as in memory.
    #[arg(long, value_name = "ROWS")]
    shuffle_buffer: Option<usize>,
    /// TOML file with any of the options above (flags override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the resolved configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Replace existing output files even when they hold something else (an
    /// input file is never replaced).
    #[arg(long)]
    overwrite: bool,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
    /// Print a JSON summary as the last line of stdout.
    #[arg(long)]
    json: bool,
}

/// How a run starts: streamed (its checkpoint, if resumed, and the note
/// saying why), or in memory (BN synchronization, checkpoint, data).
enum Start {
    Stream(Box<Option<bpnet::io::RunCheckpoint>>, String),
    Memory(Box<(BnSyncMode, Option<bpnet::io::RunCheckpoint>, Prepared)>),
}

/// What each rank does alone before a run's first communication: the
/// checkpoint and the outputs checked, the mode chosen, the data loaded.
/// Its errors are shared between the ranks ([`super::dist::settle`]).
fn start(a: &TrainArgs, cfg: &mut TrainConfig, comm: &Arc<dyn Comm>) -> Result<Start> {
    let bn_sync: BnSyncMode = cfg.bn_sync.parse()?;
    // A file that is not a checkpoint is reported as such before its outputs are checked.
    let resumed = a.resume.as_deref().map(load_run).transpose()?;
    if comm.rank() == 0 {
        super::outputs::check_train(cfg, a.config.as_deref(), a.resume.as_deref(), a.overwrite)
            .map_err(super::dist::rank0_only)?;
    }
    super::read_progress::install(a.quiet || comm.rank() != 0);
    let choice = match &resumed {
        // A streamed run's batch order covers no rows of its own.
        Some(run) => bpnet::workflow::stream::resume_stream_choice(cfg, run.resume.state.batches.rows() == 0)?,
        None => bpnet::workflow::stream::stream_choice(cfg)?,
    };
    if let Some(note) = choice {
        cfg.ensemble = cfg.ensemble.max(1);
        // What a streamed run refuses (mpirun among it), refused here.
        super::stream_train::refuse(a, cfg, comm.size())?;
        return Ok(Start::Stream(Box::new(resumed), note));
    }
    if comm.size() > 1 && (cfg.ensemble > 1 || a.cv.is_some()) {
        return Err(Error::config(
            "mpirun",
            "--ensemble and --cv train in one process; start them without mpirun",
        ));
    }
    if a.cv.is_some() && a.resume.is_some() {
        return Err(Error::config("--cv", "cannot be combined with --resume"));
    }
    // The optimizer's settings, checked before the data is read.
    optimizer(cfg)?;
    let load_start = std::time::Instant::now();
    let data = load(cfg)?;
    let _ = LOAD_STATS.set((load_start.elapsed().as_secs_f64(), super::peak_memory_bytes()));
    // Before the folds, which can take minutes.
    if let Some(b) = a.batch_size.filter(|&b| b > data.train.len()) {
        return Err(Error::config(
            "--batch-size",
            format!("{b} is larger than the {} training rows", data.train.len()),
        ));
    }
    Ok(Start::Memory(Box::new((bn_sync, resumed, data))))
}

/// A `--patience` or `--monitor` flag with no validation rows to watch is
/// refused: the run had trained every epoch without a word. (A config
/// file's keys are not: `--print-config` writes every key, the default
/// patience included, which is off without validation rows.)
fn early_stopping_needs_validation(a: &TrainArgs, cfg: &TrainConfig) -> Result<()> {
    let asked = [
        ("--patience", a.patience.is_some_and(|p| p > 0)),
        ("--monitor", a.monitor.is_some()),
    ];
    match asked.iter().find(|(_, on)| *on) {
        Some((flag, _)) if cfg.val_split == 0.0 => Err(Error::config(
            *flag,
            format!(
                "early stopping watches the validation rows, and --val-split is 0: give --val-split (such as 0.1), \
                 or drop {flag}"
            ),
        )),
        _ => Ok(()),
    }
}

/// The options of `bpnet train` that only a training run uses: `bpnet
/// lr-find` refuses them, and its `--help` does not list them.
pub(super) const TRAINING_ONLY: [&str; 22] = [
    "--out",
    "--checkpoint-every",
    "--checkpoint-steps",
    "--resume",
    "--test",
    "--ensemble",
    "--cv",
    "--diagnostics",
    "--plot",
    "--stream",
    "--epochs",
    "--steps",
    "--patience",
    "--json",
    "--print-config",
    // The run's rates are --start-lr to --end-lr, and it stops when the
    // loss explodes.
    "--lr",
    "--schedule",
    "--monitor",
    "--min-delta",
    "--on-nan",
    "--shuffle-buffer",
    "--bn-sync",
];

impl TrainArgs {
    /// Whether the [`TRAINING_ONLY`] option `flag` was given.
    fn training_only_given(&self, flag: &str) -> bool {
        match flag {
            "--out" => self.out.is_some(),
            "--checkpoint-every" => self.checkpoint_every.is_some(),
            "--checkpoint-steps" => self.checkpoint_steps.is_some(),
            "--resume" => self.resume.is_some(),
            "--test" => self.test.is_some(),
            "--ensemble" => self.ensemble.is_some(),
            "--cv" => self.cv.is_some(),
            "--diagnostics" => self.diagnostics.is_some(),
            "--plot" => self.plot.is_some(),
            "--stream" => self.stream == Some(true),
            "--epochs" => self.epochs.is_some(),
            "--steps" => self.steps.is_some(),
            "--patience" => self.patience.is_some(),
            "--json" => self.json,
            "--print-config" => self.print_config,
            "--lr" => self.lr.is_some(),
            "--schedule" => self.schedule.is_some(),
            "--monitor" => self.monitor.is_some(),
            "--min-delta" => self.min_delta.is_some(),
            "--on-nan" => self.on_nan.is_some(),
            "--shuffle-buffer" => self.shuffle_buffer.is_some(),
            "--bn-sync" => self.bn_sync.is_some(),
            _ => false,
        }
    }

    /// For `bpnet lr-find`, which trains no model to keep: the first
    /// option given that only a training run uses, as an error (silently
    /// ignored, `--out` would promise a model that is never written).
    pub(super) fn refuse_training_only(&self) -> Result<()> {
        match TRAINING_ONLY.iter().find(|f| self.training_only_given(f)) {
            Some(name) => Err(Error::config(
                *name,
                "has no effect with bpnet lr-find, which trains no model to keep (its run is --iterations batches from --start-lr to --end-lr; it writes the --figure files)",
            )),
            None => Ok(()),
        }
    }

    /// `--overwrite`.
    pub(super) fn overwrite_given(&self) -> bool {
        self.overwrite
    }

    /// `--batch-size` as given on the command line.
    pub(super) fn batch_size_flag(&self) -> Option<usize> {
        self.batch_size
    }

    /// `--config`, an input that no output may replace.
    pub fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }
}

/// The resolved configuration: defaults, then the config file, then flags.
pub fn resolve(a: &TrainArgs) -> Result<TrainConfig> {
    let mut cfg = match (&a.resume, &a.config) {
        // The checkpoint holds its configuration (the file was ignored).
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "--config",
                "cannot be combined with --resume: the checkpoint holds its configuration; give what may change (such as --epochs) as flags",
            ));
        }
        (Some(ckpt), _) => config_of_checkpoint(ckpt)?,
        (None, Some(p)) => TrainConfig::from_file(p)?,
        (None, None) => TrainConfig::default(),
    };
    if let (Some(ckpt), Some(b)) = (&a.resume, a.batch_size) {
        check_resume_batch(ckpt, b, &cfg)?;
    }
    overlay!(
        cfg,
        a,
        [
            data,
            target,
            task,
            no_header,
            header,
            delimiter,
            impute,
            scaling,
            hidden,
            activation,
            batch_norm,
            bn_after,
            norm,
            dropout,
            label_smoothing,
            init,
            optimizer,
            momentum,
            weight_decay,
            batch_size,
            epochs,
            steps,
            schedule,
            val_split,
            test,
            test_split,
            patience,
            min_delta,
            monitor,
            limit,
            seed,
            out,
            checkpoint_every,
            checkpoint_steps,
            on_nan,
            clip_grad_norm,
            ensemble,
            diagnostics,
            plot,
            bn_sync,
            shuffle_buffer,
        ]
    );
    // A header flag given alone overrides the other setting of a config
    // file or checkpoint (both flags together are refused).
    match (a.header, a.no_header) {
        (Some(true), None | Some(false)) => cfg.no_header = false,
        (None | Some(false), Some(true)) => cfg.header = false,
        _ => {}
    }
    match (a.stream, a.no_stream) {
        (Some(true), _) => cfg.stream = "on".into(),
        (_, Some(true)) => cfg.stream = "off".into(),
        _ => {}
    }
    if a.no_batch_norm == Some(true) {
        cfg.batch_norm = false;
    }
    if a.epochs.is_some() && a.steps.is_none() {
        // `--epochs` overrides a step budget of a config file or checkpoint
        // (which took precedence and left --epochs without effect).
        cfg.steps = 0;
    }
    if cfg.optimizer.trim() == "adamw"
        && a.weight_decay.is_none()
        && a.resume.is_none()
        && !super::config::file_sets(a.config.as_deref(), "weight_decay")
    {
        // AdamW's default decay, recorded as the value trained with (a
        // checkpoint holds its own; a config file's value stands).
        cfg.weight_decay = bpnet::workflow::ADAMW_DECAY;
    }
    match a.lr {
        Some(crate::cli::lr_find::LrArg::Auto) => cfg.lr_auto = true,
        Some(crate::cli::lr_find::LrArg::Value(v)) => {
            cfg.lr = v;
            cfg.lr_auto = false;
        }
        None => {}
    }
    if let (None, Some(_)) = (&a.lr, a.config.as_deref())
        && cfg.lr_auto
        && cfg.lr != 0.0
    {
        // The range test would replace the file's rate without a word.
        return Err(Error::config(
            "lr_auto",
            format!(
                "lr_auto = true and lr = {}: the range test chooses the rate and would drop the file's; \
                 remove one of them",
                cfg.lr
            ),
        ));
    }
    early_stopping_needs_validation(a, &cfg)?;
    if let Some(n) = a.norm.as_deref().filter(|n| n.trim() != "none")
        && a.no_batch_norm == Some(true)
    {
        return Err(Error::config(
            "--no-batch-norm",
            format!("conflicts with --norm {n}: give one of them"),
        ));
    }
    if a.batch_norm == Some(true) && a.norm.as_deref().map(str::trim) == Some("none") {
        return Err(Error::config(
            "--batch-norm",
            "conflicts with --norm none: give one of them",
        ));
    }
    let file_norm = cfg.norm.trim();
    if a.batch_norm == Some(true) && a.norm.is_none() && !matches!(file_norm, "" | "batch" | "none") {
        return Err(Error::config(
            "--batch-norm",
            format!(
                "conflicts with norm = \"{file_norm}\" of the configuration: give --norm batch or --norm {file_norm}"
            ),
        ));
    }
    if let Some(n) = &a.norm
        && n.trim() != "none"
    {
        // `--norm KIND` asks for a normalization layer even where the config
        // file said batch_norm = false.
        cfg.batch_norm = true;
    }
    if a.batch_norm == Some(true) && a.norm.is_none() && cfg.norm.trim() == "none" {
        // `--batch-norm` asks for batch normalization even where the
        // config file said norm = "none" (it trained without one).
        cfg.norm = "batch".into();
    }
    Ok(cfg)
}

/// A run resumes with its checkpoint's batches (in memory its batch order
/// holds the size, streamed its reader): another `--batch-size` is refused,
/// as it was recorded and not applied. Full-batch gradient descent (`gd`)
/// takes every row whatever the flag says.
fn check_resume_batch(ckpt: &Path, flag: usize, held: &TrainConfig) -> Result<()> {
    if flag == held.batch_size || held.optimizer.trim() == "gd" {
        return Ok(());
    }
    Err(Error::config(
        "--batch-size",
        format!(
            "{flag} differs from the batch size {} that {} trains with: a run resumes with its batch size",
            held.batch_size,
            ckpt.display()
        ),
    ))
}

/// The resolved configuration stored in a checkpoint's `training` section.
fn config_of_checkpoint(path: &Path) -> Result<TrainConfig> {
    let file = load_model(path)?;
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let training = file
        .metadata
        .get("training")
        .ok_or_else(|| bad("no `training` section to resume from".into()))?;
    TrainConfig::from_recorded(training).map_err(|e| bad(format!("invalid `training` section: {e}")))
}

/// `NAME.ckpt.safetensors` beside the model file `NAME.safetensors`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    out.with_file_name(format!("{stem}.ckpt.safetensors"))
}

/// Seconds spent reading, splitting and preprocessing the data, and the
/// peak memory right after, for --json (bench/csv_ingest.sh).
static LOAD_STATS: std::sync::OnceLock<(f64, Option<u64>)> = std::sync::OnceLock::new();

/// Runs `bpnet train` as one rank of `comm` (alone: a world of one). Rank 0
/// alone prints and writes files.
pub fn run(a: &TrainArgs, comm: &Arc<dyn Comm>) -> Result<()> {
    let mut cfg = super::dist::settle(&**comm, resolve(a))?;
    let lead = comm.rank() == 0;
    if a.momentum.is_some() && !matches!(cfg.optimizer.as_str(), "momentum" | "nesterov") && lead && !a.quiet {
        eprintln!(
            "note: --momentum has no effect with --optimizer {} (it is the momentum of the momentum and nesterov optimizers)",
            cfg.optimizer
        );
    }
    // Every rank returns here or none: one that printed and left made the
    // others wait forever for it.
    bpnet::comm::agree(&**comm, "--print-config", &[u8::from(a.print_config)])?;
    if a.print_config {
        if lead {
            print!("{}", cfg.to_toml());
        }
        return Ok(());
    }
    let (bn_sync, resumed, data) = match super::dist::settle(&**comm, start(a, &mut cfg, comm))? {
        Start::Stream(resumed, note) => return super::stream_train::run(a, &cfg, *resumed, &note, comm.size()),
        Start::Memory(start) => *start,
    };
    let plain = comm.size() == 1 && a.resume.is_none() && cfg.checkpoint_every == 0 && cfg.checkpoint_steps == 0;
    let table = matches!(data.pipeline, Pipeline::Table { .. });
    let one_process = auto_ensemble(cfg.ensemble, table, data.train.len(), true);
    // Folds resolve the default ensemble and `--lr auto` on their own rows
    // (one network where this run trains one for its checkpoints).
    let mut fold_cfg = cfg.clone();
    cfg.ensemble = auto_ensemble(cfg.ensemble, table, data.train.len(), plain);
    if !plain {
        fold_cfg.ensemble = cfg.ensemble;
    }
    super::dist::agree_on_run(&**comm, &cfg, &data)?;
    super::dist::agree_on_resume(&**comm, a.resume.as_deref())?;
    let quiet = a.quiet || !lead;
    let say = |s: &str| {
        if !quiet {
            println!("{s}");
        }
    };
    data.notes.iter().for_each(|n| say(n));
    if one_process > cfg.ensemble {
        say(&format!(
            "note: training one network: the default ensemble of {one_process} is trained in one process \
             without checkpoints or --resume (--ensemble 1 asks for one network)"
        ));
    }
    let cv = match a.cv {
        Some(k) => {
            let classify = data.pipeline.class_names().is_some();
            Some(super::cv::run(&fold_cfg, k, classify, a.batch_size, a.quiet)?)
        }
        None => None,
    };
    if cfg.lr_auto && resumed.is_none() {
        // The range test runs on a copy of the network built below, so the
        // weights trained are the same as with a given rate.
        cfg.lr = super::lr_find::auto_lr(&cfg, &data, quiet)?;
        cfg.lr_auto = false;
        say(&format!("--lr auto: training with lr {:.3e}", cfg.lr));
    }
    let (opt, full_batch) = optimizer(&cfg)?;
    let fit_cfg = fit_config(&cfg, full_batch, data.val.is_some())?;
    // Refused before the network is built (its weights can be large).
    let widest = model_spec(&cfg, data.train.features.cols(), data.train.outputs())?
        .dims
        .into_iter()
        .max();
    fit_cfg.validate(data.train.len(), widest.unwrap_or(0))?;
    let loss = default_loss(&data.train);
    let data_sha = checkpoint_data_sha256(&cfg, a.resume.is_some())?;
    let saved_diagnostics = resumed
        .as_ref()
        .and_then(|r| r.file.metadata.get("diagnostics").cloned());
    let (spec, mut trainer, resume) = match (resumed, &a.resume) {
        (Some(run), Some(ckpt)) => {
            // The checkpoint keeps its network: flags (or a config) that
            // describe another one are an error, not silently dropped.
            check_resume(
                ckpt,
                &run.file.spec,
                &cfg,
                data.train.features.cols(),
                data.train.outputs(),
            )?;
            let held = (
                run.file.metadata.get("preprocessing"),
                run.file.bpnet_version.as_str(),
                0.0,
            );
            check_same_rows(ckpt, held, &data.pipeline, &cfg)?;
            check_same_data(ckpt, run.file.metadata.get("data_sha256"), data_sha.as_deref(), &cfg)?;
            let mut trainer = Trainer::new(run.file.model.clone(), Optimizer::new(opt)?, loss);
            run.restore_optimizer(&mut trainer.optimizer, &mut trainer.model)?;
            say(&format!(
                "resuming {} at step {}",
                ckpt.display(),
                run.resume.state.step
            ));
            (run.file.spec.clone(), trainer, Some(run.resume))
        }
        _ => {
            let spec = model_spec(&cfg, data.train.features.cols(), data.train.outputs())?;
            let model = Sequential::<f32>::from_spec(&spec, cfg.seed)?;
            (spec, Trainer::new(model, Optimizer::new(opt)?, loss), None)
        }
    };
    bpnet::workflow::apply_label_smoothing(&mut trainer, &cfg)?;
    trainer.set_comm(comm.clone(), bn_sync)?;
    if comm.size() > 1 {
        say(&format!(
            "data-parallel on {} processes ({}), batch normalization statistics: {}",
            comm.size(),
            comm.engine(),
            cfg.bn_sync
        ));
    }
    let rows = data.train.len();
    if bn_sync == BnSyncMode::Local && trainer.model.has_batch_norm() {
        let batch = fit_cfg.batch_size.unwrap_or(rows).min(rows);
        super::dist::check_local_blocks(rows, batch, comm.size())?;
    }
    if let Some(note) = super::config::batch_note(a.config.as_deref(), a.batch_size, cfg.batch_size, rows) {
        say(&note);
    }
    say(&format!("model:\n{}", trainer.model.summary()));
    say(&format!(
        "training on {} rows ({} validation, {} test)",
        data.train.len(),
        data.val.as_ref().map_or(0, |v| v.len()),
        data.test.as_ref().map_or(0, |t| t.len())
    ));
    let out = PathBuf::from(&cfg.out);
    let ckpt = checkpoint_path(&out);
    let mut progress = Progress::new(quiet);
    let mut extras = super::diagnostics::TrainExtras::new(cfg.diagnostics && lead, cfg.plot && lead, &data.train);
    if let (Some(ckpt), Some(r)) = (&a.resume, &resume) {
        let note = extras.resume(saved_diagnostics.as_ref(), ckpt, r.state.step)?;
        note.iter().for_each(|n| say(n));
    }
    // The epochs so far (a resumed run's earlier ones first), for the
    // history a diverged run leaves beside its model.
    let mut epochs: Vec<bpnet::train::EpochRecord> =
        resume.as_ref().map_or(Vec::new(), |r| r.state.history.epochs.clone());
    let mut on_event = |e: Event<'_>| -> Result<()> {
        if !lead {
            return Ok(());
        }
        if let Event::Epoch(record, _) = &e {
            epochs.push((*record).clone());
        }
        progress.event(&e);
        extras.observe(&e)?;
        if let Event::Checkpoint { trainer, state, best } = e {
            let meta = metadata(&cfg, &data, None, None)
                .with_data_sha256(data_sha.as_deref())
                .with_diagnostics(extras.saved());
            save_run(&ckpt, &spec, trainer, state, best, &meta)?;
        }
        Ok(())
    };
    let fitted = fit_resume(
        &mut trainer,
        &data.train,
        data.val.as_ref(),
        &fit_cfg,
        resume,
        &mut on_event,
    );
    progress.finish();
    let history = match fitted {
        Ok(h) => h,
        Err(e @ Error::Diverged { .. }) => {
            // The first member of an ensemble: named as a later member is,
            // and what is saved is said to be one network (the error named
            // no member, and the file was a single network unannounced).
            let (e, saved) = match cfg.ensemble {
                1 => (e, "the weights from before this step were saved".to_string()),
                k => (
                    bpnet::workflow::name_member(e, 0, k, cfg.seed),
                    format!(
                        "member 1's weights from before this step were saved as one network ({} not trained)",
                        match k {
                            2 => "member 2 was".to_string(),
                            k => format!("members 2-{k} were"),
                        }
                    ),
                ),
            };
            let e = weights_kept(e)?;
            let history = diverged_history(epochs, &e);
            let held = TrainConfig {
                ensemble: 1,
                ..cfg.clone()
            };
            let save = || {
                save_diverged(
                    &out,
                    &spec,
                    &trainer.model,
                    &metadata(&held, &data, Some(&history), None),
                    &history,
                )
            };
            return Err(after_divergence(e, &out, lead, &saved, save));
        }
        // Name the checkpoint and the data that do not belong together.
        Err(Error::Config { field, reason }) if field == "resume" => {
            let ckpt = a.resume.as_deref().unwrap_or(Path::new("")).display();
            return Err(Error::config(
                "--resume",
                format!("{ckpt} with --data {}: {reason}", cfg.data),
            ));
        }
        Err(e) => return Err(e),
    };
    history.notes.iter().for_each(|n| say(n));
    // Every rank evaluates its block of the test rows; rank 0 writes. An
    // ensemble (one process) is evaluated as a whole after its members train.
    let test = match (&data.test, cfg.ensemble) {
        (Some(t), 1) => Some(metrics_split(&trainer.model, trainer.loss, t, &data.pipeline, &**comm)?),
        _ => None,
    };
    if !lead {
        return Ok(());
    }
    let members = match super::ensemble::train_members(trainer.model, &cfg, &data, a.quiet) {
        (members, None) => members,
        (members, Some(e)) => return Err(after_member_failed(e, members, &cfg, &data, (&spec, &history))),
    };
    finish(a, &cfg, &data, &spec, &members, (&history, test), (cv, &extras))
}

impl TrainArgs {
    /// Whether `--cv` was given.
    pub(super) fn cv_given(&self) -> bool {
        self.cv.is_some()
    }

    /// `--quiet`.
    pub(super) fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// `--batch-size`, when given.
    pub(super) fn batch_size_given(&self) -> Option<usize> {
        self.batch_size
    }

    /// `--config`, when given.
    pub(super) fn config_given(&self) -> Option<&Path> {
        self.config.as_deref()
    }
}

/// After training: test metrics, history files, the model file, the summary.
pub(super) fn finish(
    a: &TrainArgs,
    cfg: &TrainConfig,
    data: &Prepared,
    spec: &ModelSpec,
    members: &[Sequential<f32>],
    (history, test): (&History, Option<TestMetrics>),
    (cv, extras): (Option<serde_json::Value>, &super::diagnostics::TrainExtras),
) -> Result<()> {
    let out = Path::new(&cfg.out);
    if history.stopped_early && !a.quiet {
        println!(
            "early stopping after epoch {}; restored the weights of epoch {}",
            history.epochs.len(),
            history.best_epoch
        );
    }
    let test = match (test, &data.test) {
        (Some(t), _) => Some(t),
        (None, Some(t)) => Some(super::ensemble::test_metrics(members, t, &data.pipeline)?),
        (None, None) => None,
    };
    if let (Some(t), false) = (&test, a.quiet) {
        println!("test: {}", t.summary);
    }
    // The history is written out first and put in place after the model,
    // so that a save that fails leaves the old model with its own history.
    let (csv, json) = super::history::prepare(out, history)?;
    let meta = metadata(cfg, data, Some(history), test.as_ref().map(|t| &t.json));
    super::ensemble::save(out, spec, members, &data.train, &meta)?;
    csv.commit()?;
    json.commit()?;
    let (hist_csv, hist_json) = super::history::paths(out);
    if !a.quiet {
        println!(
            "wrote {} (history: {}, {})",
            out.display(),
            hist_csv.display(),
            hist_json.display()
        );
    }
    if a.quiet && !a.json {
        if let Some(cv) = &cv {
            println!(
                "cv: {} {:.4} ± {:.4} over {} folds",
                cv["metric"].as_str().unwrap_or(""),
                cv["mean"].as_f64().unwrap_or(f64::NAN),
                cv["sd"].as_f64().unwrap_or(f64::NAN),
                cv["k"]
            );
        }
        println!(
            "{}",
            test.as_ref().map_or_else(
                || format!("wrote {}", out.display()),
                |t| format!("test: {}", t.summary)
            )
        );
    }
    // Diagnostics and plots before the summary: `--json` is the last line.
    extras.finish(out, a.quiet)?;
    if a.json {
        let summary = json!({
            "model": out, "history_csv": hist_csv, "history_json": hist_json,
            "epochs": history.epochs.len(), "best_epoch": history.best_epoch, "stopped_early": history.stopped_early,
            "final": history.epochs.last().map(record_json),
            "test": test.map(|t| t.json),
            "peak_memory_bytes": super::peak_memory_bytes(),
            "load_seconds": LOAD_STATS.get().map(|l| l.0),
            "load_peak_memory_bytes": LOAD_STATS.get().and_then(|l| l.1),
        });
        let mut summary = summary;
        if let Some(cv) = cv {
            summary["cv"] = cv;
        }
        println!("{summary}");
    }
    Ok(())
}

/// A checkpoint resumes on the rows it trained on: the preprocessing fitted
/// on the training rows now must be the one it holds (a data file changed
/// or shuffled since, or flags that split or read it otherwise, give other
/// statistics; the run would go on silently on other rows, no longer the
/// uninterrupted run). A checkpoint of an earlier version that did not
/// record how the columns were read is compared without that. `rel`: the
/// relative difference numbers may have (0 compares them exactly; a
/// streamed checkpoint of a version whose one-pass fit rounded otherwise is
/// compared within 1e-12).
pub(super) fn check_same_rows(
    ckpt: &Path,
    (held, version, rel): (Option<&serde_json::Value>, &str, f64),
    now: &Pipeline,
    cfg: &TrainConfig,
) -> Result<()> {
    let Some(held) = held else {
        return Ok(());
    };
    let mut now = serde_json::to_value(now).map_err(|e| Error::config("--resume", e.to_string()))?;
    let mut held = held.clone();
    // How a table's columns were read is recorded by runs of this version
    // (a streamed one where its chunks agreed): compared where both hold it.
    if held.pointer("/preprocessor/read_as").is_none() || now.pointer("/preprocessor/read_as").is_none() {
        for v in [&mut held, &mut now] {
            if let Some(p) = v.get_mut("preprocessor").and_then(|p| p.as_object_mut()) {
                p.remove("read_as");
            }
        }
    }
    if held == now || (rel > 0.0 && json_close(&held, &now, rel)) {
        return Ok(());
    }
    let other_version = match version == env!("CARGO_PKG_VERSION") {
        true => String::new(),
        false => format!(", or bpnet {version}, which wrote it, split or read it otherwise"),
    };
    Err(Error::config(
        "--resume",
        format!(
            "{} was trained on other rows than --data {} gives now (the preprocessing fitted on them differs: the file changed, or flags that split or read it did{other_version}): resume on the same data",
            ckpt.display(),
            cfg.data
        ),
    ))
}

/// `a` and `b` equal but for numbers within `rel` of each other (relative).
fn json_close(a: &serde_json::Value, b: &serde_json::Value, rel: f64) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= rel * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q, rel)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| json_close(p, q, rel)))
        }
        _ => a == b,
    }
}

/// The training data's SHA-256 for a run that writes or resumes
/// checkpoints (read once, before training), else `None`.
pub(super) fn checkpoint_data_sha256(cfg: &TrainConfig, resuming: bool) -> Result<Option<String>> {
    let writes = cfg.checkpoint_every > 0 || cfg.checkpoint_steps > 0;
    (writes || resuming)
        .then(|| bpnet::workflow::data_sha256(&cfg.data))
        .transpose()
}

/// A checkpoint resumes on the bytes it trained on: a checkpoint that
/// recorded its data's SHA-256 refuses data whose bytes differ (a shuffled
/// or edited file can leave the fitted preprocessing as it was, with
/// `--scaling none` and no validation split, so [`check_same_rows`] alone
/// would let it through). Older checkpoints recorded none.
pub(super) fn check_same_data(
    ckpt: &Path,
    held: Option<&serde_json::Value>,
    now: Option<&str>,
    cfg: &TrainConfig,
) -> Result<()> {
    let (Some(held), Some(now)) = (held.and_then(|h| h.as_str()), now) else {
        return Ok(());
    };
    if held == now {
        return Ok(());
    }
    Err(Error::config(
        "--resume",
        format!(
            "{} was trained on other data: the bytes of --data {} differ from those it trained on (SHA-256 {} against {}): resume on the same data",
            ckpt.display(),
            cfg.data,
            now.chars().take(12).collect::<String>(),
            held.chars().take(12).collect::<String>()
        ),
    ))
}

/// A checkpoint keeps its network: data whose inputs or outputs do not fit
/// it, or flags (or a config) that describe another network, are an error
/// naming what differs, not silently dropped.
pub(super) fn check_resume(
    ckpt: &Path,
    held: &ModelSpec,
    cfg: &TrainConfig,
    inputs: usize,
    outputs: usize,
) -> Result<()> {
    if held.dims.first() != Some(&inputs) || held.dims.last() != Some(&outputs) {
        return Err(Error::config(
            "--resume",
            format!(
                "{} holds a network of {} inputs and {} outputs; --data {} makes {inputs} and {outputs}: resume on the data it was trained on",
                ckpt.display(),
                held.dims.first().unwrap_or(&0),
                held.dims.last().unwrap_or(&0),
                cfg.data
            ),
        ));
    }
    let asked = model_spec(cfg, inputs, outputs)?;
    if asked != *held {
        return Err(Error::config(
            "--resume",
            format!(
                "{} holds another network than the flags describe ({}); a resumed run keeps its network: drop those flags",
                ckpt.display(),
                spec_changes(held, &asked)
            ),
        ));
    }
    Ok(())
}

/// An ensemble member failed: a divergence keeps the members that trained
/// as a smaller ensemble where no model is (as a single run keeps its last
/// good weights, [`after_divergence`]), its file recording how many it
/// holds; any other error is returned as it is.
///
/// The members kept are saved with the first member's history, as a
/// finished ensemble's are, with the divergence as a note (they were
/// saved without a history).
fn after_member_failed(
    e: Error,
    members: Vec<Sequential<f32>>,
    cfg: &TrainConfig,
    data: &Prepared,
    (spec, history): (&ModelSpec, &History),
) -> Error {
    if !matches!(e, Error::Diverged { .. }) {
        return e;
    }
    let kept = match members.len() {
        1 => format!("the one member of {} that trained was saved", cfg.ensemble),
        n => format!("the {n} members of {} that trained were saved", cfg.ensemble),
    };
    let held = TrainConfig {
        ensemble: members.len(),
        ..cfg.clone()
    };
    let mut history = history.clone();
    history.notes.push(e.to_string());
    let meta = metadata(&held, data, Some(&history), None);
    let out = PathBuf::from(&cfg.out);
    let save = || {
        let (csv, json) = super::history::prepare(&out, &history)?;
        super::ensemble::save(&out, spec, &members, &data.train, &meta)?;
        csv.commit()?;
        json.commit()
    };
    after_divergence(e, &out, true, &kept, save)
}

/// After a diverged run, on the rank that writes (`lead`): what is left
/// (the trainer's weights from before the bad step, or an ensemble's
/// members that did not diverge) is saved by `save` where `out` names no
/// file yet, and the error says so with `saved` ("... were saved") and the
/// path; an existing model is left as it was (a failed run must not replace
/// a good model with a worse one), and the error says that instead. A
/// single run's error without [`bpnet::error::DIVERGED_KEPT`] holds no
/// good weights (its last model gives non-finite outputs): see
/// [`weights_kept`].
pub(super) fn after_divergence(
    e: Error,
    out: &Path,
    lead: bool,
    saved: &str,
    save: impl FnOnce() -> Result<()>,
) -> Error {
    let Error::Diverged { step, detail } = e else {
        return e;
    };
    if !lead {
        return Error::Diverged { step, detail };
    }
    let outcome = if out.exists() {
        format!(
            "{} was left as it was (a diverged run replaces no model)",
            out.display()
        )
    } else {
        if let Err(err) = save() {
            return err;
        }
        format!("{saved} to {}", out.display())
    };
    let detail = detail.strip_suffix(bpnet::error::DIVERGED_KEPT).unwrap_or(&detail);
    Error::Diverged {
        step,
        detail: format!("{detail}; {outcome}"),
    }
}

/// The history of a run that diverged after `epochs`: its epochs (one
/// that ended on the bad step included), as `best_epoch` the last that
/// ended before the bad step (the model holds the weights from before
/// it: that epoch's, or a few steps past them), and the divergence as a
/// note.
pub(super) fn diverged_history(epochs: Vec<bpnet::train::EpochRecord>, e: &Error) -> History {
    let bad = match e {
        Error::Diverged { step, .. } => *step,
        _ => usize::MAX,
    };
    let best_epoch = epochs.iter().filter(|r| r.step < bad).count();
    History {
        epochs,
        best_epoch,
        stopped_early: false,
        notes: match e {
            Error::Diverged { step, detail } => vec![format!("training diverged at step {step}: {detail}")],
            other => vec![other.to_string()],
        },
    }
}

/// A diverged run's model and its history files (a history had not been
/// written: the epochs before the divergence could not be plotted).
pub(super) fn save_diverged(
    out: &Path,
    spec: &ModelSpec,
    model: &Sequential<f32>,
    meta: &bpnet::workflow::Metadata<'_>,
    history: &History,
) -> Result<()> {
    let (csv, json) = super::history::prepare(out, history)?;
    save_model_with(out, spec, model, meta)?;
    csv.commit()?;
    json.commit()
}

/// A single run's divergence `e` whose trainer holds no good weights
/// (the model left gives non-finite outputs), as its error, which says so:
/// `Err`, and nothing is saved; `Ok(e)` where the weights from before the
/// bad step are kept, for [`after_divergence`] to save.
pub(super) fn weights_kept(e: Error) -> std::result::Result<Error, Error> {
    match e {
        Error::Diverged { step, detail } if !detail.ends_with(bpnet::error::DIVERGED_KEPT) => Err(Error::Diverged {
            step,
            detail: format!("{detail}; no model was saved"),
        }),
        e => Ok(e),
    }
}

/// How `asked` differs from `held`, e.g. `layer widths 4-100-3 -> 4-5-3,
/// dropout 0 -> 0.2`.
fn spec_changes(held: &ModelSpec, asked: &ModelSpec) -> String {
    let dims = |s: &ModelSpec| s.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("-");
    let mut out = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name} {a} -> {b}"));
        }
    };
    field("layer widths", dims(held), dims(asked));
    field(
        "activation",
        format!("{:?}", held.activation),
        format!("{:?}", asked.activation),
    );
    field(
        "batch norm",
        format!("{:?}", held.batch_norm),
        format!("{:?}", asked.batch_norm),
    );
    field("normalization", format!("{:?}", held.bn), format!("{:?}", asked.bn));
    field("dropout", held.dropout.to_string(), asked.dropout.to_string());
    field("init", format!("{:?}", held.init), format!("{:?}", asked.init));
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::json_close;
    use serde_json::json;

    /// Numbers within the relative bound are equal; anything else must be.
    #[test]
    fn json_close_bounds_numbers_only() {
        let x = 0.969_729_178_099_842_9_f64;
        let a = json!({"scale": [x, 2.0], "name": "x", "n": 3});
        let b = json!({"scale": [x.next_up(), 2.0], "name": "x", "n": 3});
        assert!(json_close(&a, &b, 1e-12) && !json_close(&a, &b, 1e-17));
        assert!(!json_close(
            &a,
            &json!({"scale": [0.9697, 2.0], "name": "x", "n": 3}),
            1e-12
        ));
        assert!(!json_close(&a, &json!({"scale": [x, 2.0], "name": "y", "n": 3}), 1e-12));
        assert!(!json_close(&a, &json!({"scale": [x], "name": "x", "n": 3}), 1e-12));
        assert!(!json_close(&a, &json!({"scale": [x, 2.0], "name": "x"}), 1e-12));
    }
}

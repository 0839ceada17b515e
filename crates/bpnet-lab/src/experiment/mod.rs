//! Experiments that show what batch normalization does, on the bundled MNIST.
//!
//! - [`Study::Paper`]: Ioffe & Szegedy (2015), section 4.1 — the 784-100-100-100-10
//!   sigmoid network trained with and without BN on the same batches; test
//!   accuracy and the 15th/50th/85th percentiles of the input to one sigmoid
//!   of the last hidden layer over training (the paper's Figure 1).
//! - [`Study::LearningRate`]: the same networks at the base learning rate
//!   times 1, 5 and 30.
//! - [`Study::Depth`]: a deep sigmoid network with and without BN, with the
//!   gradient norm of every layer over training.
//! - [`Study::Population`]: the BN network evaluated with running averages
//!   (momentum 0.1), with cumulative averages, and with population statistics
//!   recomputed after training (the paper's Algorithm 2).
//!
//! - [`Study::BatchSize`], [`Study::Placement`], [`Study::DropoutBn`],
//!   [`Study::LrRange`]: where batch normalization breaks and what to use
//!   then (module `norm`), each arm from several seeds.
//!
//! The first four studies train their networks in lockstep ([`lockstep`]), writes its
//! curves as CSV and its figures as PNG and SVG, and adds a section to a
//! self-contained HTML report ([`report`]). The same configuration and seed
//! give the same numbers.

mod depth;
pub mod lockstep;
mod lr;
mod norm;
mod paper;
mod population;
pub mod report;
pub mod seeds;
mod sweep;

pub use sweep::{SweepRow, sweep};

use bpnet::comm::Comm;
use bpnet::data::{Dataset, bundled_mnist_dir, load_mnist};
use bpnet::error::{Error, Result};
use bpnet::init::Init;
use bpnet::model::{BnPlacement, ModelSpec};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Settings shared by all studies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentConfig {
    /// Training steps of every network.
    pub steps: usize,
    /// Rows per mini-batch (the paper: 60).
    pub batch_size: usize,
    /// Base learning rate of plain SGD.
    pub lr: f64,
    /// Standard deviation of the Gaussian initial weights.
    pub init_std: f64,
    /// Evaluate test accuracy every this many steps.
    pub eval_every: usize,
    /// Seed of the weights and of the batch order.
    pub seed: u64,
    /// Test images in the fixed batch whose sigmoid inputs are recorded.
    pub probe_rows: usize,
    /// Which unit of the last hidden layer is followed (0-based).
    pub unit: usize,
    /// Use only the first N training images (0 = all 60,000).
    pub train_limit: usize,
    /// Use only the first N test images (0 = all 10,000).
    pub test_limit: usize,
    /// Learning-rate multipliers of the learning-rate study.
    pub lr_multipliers: Vec<f64>,
    /// Hidden layers (of 100 sigmoid units) of the depth study's network.
    pub depth: usize,
    /// Training batches used to recompute population statistics (0 = one
    /// pass over the whole training set).
    pub population_batches: usize,
    /// Folder of the MNIST IDX files (`None` = the bundled copy).
    pub mnist_dir: Option<PathBuf>,
    /// Seeds per arm in the normalization studies (`seed`, `seed + 1`, ...).
    pub seeds: usize,
    /// Batch sizes of the batch-size study.
    pub batch_sizes: Vec<usize>,
    /// Epochs at every batch size in the batch-size study.
    pub norm_epochs: usize,
    /// Virtual batch size of Ghost BN in the batch-size study.
    pub ghost_size: usize,
    /// Dropout rate of the dropout study.
    pub dropout_rate: f64,
    /// Learning rates of the learning-rate range study.
    pub lr_range: Vec<f64>,
}

impl Default for ExperimentConfig {
    /// The full run: the paper's 50,000 steps of 60 images.
    fn default() -> Self {
        ExperimentConfig {
            steps: 50_000,
            batch_size: 60,
            lr: 0.5,
            init_std: 0.01,
            eval_every: 500,
            seed: 1,
            probe_rows: 1000,
            unit: 0,
            train_limit: 0,
            test_limit: 0,
            lr_multipliers: vec![1.0, 5.0, 30.0],
            depth: 10,
            population_batches: 0,
            mnist_dir: None,
            seeds: 3,
            batch_sizes: vec![2, 4, 8, 16, 32, 60, 256],
            norm_epochs: 1,
            ghost_size: 16,
            dropout_rate: 0.5,
            lr_range: vec![0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0],
        }
    }
}

/// Whether no two values are equal.
fn distinct(values: &[f64]) -> bool {
    values
        .iter()
        .enumerate()
        .all(|(i, a)| values[..i].iter().all(|b| a != b))
}

impl ExperimentConfig {
    /// The `--quick` run: 5,000 steps evaluated every 250.
    pub fn quick() -> Self {
        ExperimentConfig {
            steps: 5_000,
            eval_every: 250,
            ..Self::default()
        }
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let positive = |v: f64| v > 0.0 && v.is_finite();
        let checks = [
            (self.steps > 0, "steps", "must be at least 1"),
            (
                self.batch_size >= 2,
                "batch size",
                "must be at least 2 (batch normalization)",
            ),
            (positive(self.lr), "learning rate", "must be a positive number"),
            (positive(self.init_std), "init std", "must be a positive number"),
            (self.eval_every > 0, "eval-every", "must be at least 1"),
            (self.probe_rows >= 2, "probe rows", "must be at least 2"),
            (
                self.unit < 100,
                "unit",
                "must be below 100 (the last hidden layer has 100 units)",
            ),
            (self.depth >= 1, "depth", "must be at least 1 hidden layer"),
            // Refused before any output (a million was refused by the
            // network's size check once the study had begun).
            (self.depth <= 10_000, "depth", "must be at most 10000 hidden layers"),
            (
                !self.lr_multipliers.is_empty() && self.lr_multipliers.iter().all(|&m| positive(m)),
                "learning-rate multipliers",
                "must be positive numbers",
            ),
            (
                distinct(&self.lr_multipliers),
                "learning-rate multipliers",
                "must be distinct (each names a column of lr_curves.csv)",
            ),
            (self.seeds >= 1, "seeds", "must be at least 1"),
            (
                !self.batch_sizes.is_empty() && self.batch_sizes.iter().all(|&b| b >= 2),
                "batch sizes",
                "must be at least 2 (batch normalization)",
            ),
            (self.norm_epochs >= 1, "epochs", "must be at least 1"),
            (self.ghost_size >= 2, "ghost size", "must be at least 2"),
            (
                (0.0..1.0).contains(&self.dropout_rate),
                "dropout rate",
                "must be in [0, 1)",
            ),
            (
                !self.lr_range.is_empty() && self.lr_range.iter().all(|&m| positive(m)),
                "learning-rate range",
                "must be positive numbers",
            ),
            // Each names a row or column of the results, as the multipliers do.
            (distinct(&self.lr_range), "learning-rate range", "must be distinct"),
            (
                distinct(&self.batch_sizes.iter().map(|&b| b as f64).collect::<Vec<_>>()),
                "batch sizes",
                "must be distinct",
            ),
        ];
        match checks.iter().find(|c| !c.0) {
            Some((_, field, reason)) => Err(Error::config(*field, *reason)),
            None => Ok(()),
        }
    }

    /// The paper's network (784-100-100-100-10, sigmoid) with or without BN
    /// before each sigmoid, initialized from `N(0, init_std^2)`.
    pub fn paper_spec(&self, batch_norm: bool) -> ModelSpec {
        ModelSpec::paper_mnist(batch_norm, self.init_std)
    }

    /// The depth study's network: `depth` hidden layers of 100 sigmoid units.
    pub fn deep_spec(&self, batch_norm: bool) -> ModelSpec {
        let mut dims = vec![784];
        dims.extend(std::iter::repeat_n(100, self.depth));
        dims.push(10);
        ModelSpec {
            dims,
            batch_norm: if batch_norm {
                BnPlacement::BeforeActivation
            } else {
                BnPlacement::None
            },
            init: Init::Normal { std: self.init_std },
            ..ModelSpec::paper_mnist(batch_norm, self.init_std)
        }
    }

    /// The steps of the report's accuracy table: 1k, 5k, 10k, 20k, 50k (those
    /// not beyond `steps`) and `steps` itself.
    pub fn table_steps(&self) -> Vec<usize> {
        let mut s: Vec<usize> = [1_000, 5_000, 10_000, 20_000, 50_000]
            .into_iter()
            .filter(|&k| k < self.steps)
            .collect();
        s.push(self.steps);
        s
    }

    /// The lockstep plan of these settings.
    pub fn plan(&self) -> lockstep::Plan {
        lockstep::Plan {
            steps: self.steps,
            batch_size: self.batch_size,
            eval_every: self.eval_every,
            extra_evals: self.table_steps(),
            seed: self.seed,
        }
    }
}

/// One evaluation of one network.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalPoint {
    /// Training steps done.
    pub step: usize,
    /// Accuracy on the test set, evaluation mode.
    pub test_accuracy: f64,
    /// Mean training-batch loss since the previous evaluation.
    pub train_loss: f64,
}

/// What one network did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmResult {
    /// Name in tables and legends, e.g. `with BN`.
    pub label: String,
    /// Whether the network has batch normalization.
    pub batch_norm: bool,
    /// Its learning rate.
    pub lr: f64,
    /// The step whose loss was not finite, if any (training stopped there).
    pub diverged_at: Option<usize>,
    /// Every evaluation, in step order.
    pub curve: Vec<EvalPoint>,
}

impl ArmResult {
    /// The first evaluated step with test accuracy at least `threshold`.
    pub fn first_reaching(&self, threshold: f64) -> Option<usize> {
        self.curve.iter().find(|p| p.test_accuracy >= threshold).map(|p| p.step)
    }

    /// Test accuracy at `step`, if it was evaluated.
    pub fn accuracy_at(&self, step: usize) -> Option<f64> {
        self.curve.iter().find(|p| p.step == step).map(|p| p.test_accuracy)
    }

    /// Test accuracy at the last evaluation.
    pub fn final_accuracy(&self) -> f64 {
        self.curve.last().map_or(f64::NAN, |p| p.test_accuracy)
    }

    /// The best test accuracy seen.
    pub fn best_accuracy(&self) -> f64 {
        self.curve.iter().map(|p| p.test_accuracy).fold(f64::NAN, f64::max)
    }
}

/// MNIST, possibly cut to its first rows, and the processes that share
/// the studies' training.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// Training images.
    pub train: Dataset,
    /// Test images.
    pub test: Dataset,
    /// The ranks of a data-parallel run (one process by default): every
    /// rank trains every network on its block of each mini-batch, with
    /// gradients summed and batch normalization synchronized over the
    /// ranks (`BnSyncMode::Global`), so the networks are those of one
    /// process; test evaluation is split over the ranks. Rank 0 alone
    /// writes files.
    pub ranks: Arc<dyn Comm>,
}

impl Mnist {
    /// Loads MNIST from `cfg.mnist_dir` (or the bundled copy) and applies the
    /// row limits.
    pub fn load(cfg: &ExperimentConfig) -> Result<Self> {
        let dir = cfg.mnist_dir.clone().unwrap_or_else(bundled_mnist_dir);
        let (train, test) = load_mnist(&dir)?;
        let cut = |d: Dataset, n: usize| if n > 0 && n < d.len() { d.head(n) } else { d };
        Ok(Mnist {
            train: cut(train, cfg.train_limit),
            test: cut(test, cfg.test_limit),
            ranks: bpnet::comm::single(),
        })
    }

    /// Shares the studies' training between the ranks of `ranks`, after
    /// checking that every rank holds the same images and labels (one error
    /// line naming the ranks that differ otherwise).
    pub fn on_ranks(mut self, ranks: Arc<dyn Comm>) -> Result<Self> {
        let digest = |d: &Dataset| {
            let h = bpnet::train::digest_f32(bpnet::train::DIGEST_START, d.features.as_slice());
            let labels = d.labels().unwrap_or(&[]);
            labels
                .iter()
                .fold(h, |h, &l| (h ^ l as u64).wrapping_mul(0x0100_0000_01b3))
        };
        let bytes: Vec<u8> = [digest(&self.train), digest(&self.test)]
            .iter()
            .flat_map(|h| h.to_le_bytes())
            .collect();
        bpnet::comm::agree(&*ranks, "MNIST images and labels", &bytes)?;
        self.ranks = ranks;
        Ok(self)
    }

    /// Whether this process writes the studies' files (rank 0).
    pub fn writes(&self) -> bool {
        self.ranks.rank() == 0
    }
}

/// Saves `fig` as `stem.png` and `stem.svg` in `dir` on the rank that
/// writes (see [`Mnist::writes`]); names the files on every rank.
fn save(data: &Mnist, fig: &crate::plot::Figure, dir: &Path, stem: &str) -> Result<crate::plot::FigureFiles> {
    if data.writes() {
        return fig.save(dir, stem);
    }
    Ok(crate::plot::FigureFiles {
        png: dir.join(format!("{stem}.png")),
        svg: dir.join(format!("{stem}.svg")),
        written: false,
    })
}

/// One of the experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Study {
    /// The paper's Figure 1.
    Paper,
    /// Learning rates x1, x5, x30 with and without BN.
    LearningRate,
    /// A deep sigmoid network's per-layer gradient norms.
    Depth,
    /// Running, cumulative and population statistics at inference.
    Population,
    /// BN, Batch Renorm, Ghost BN, LayerNorm and none across batch sizes.
    BatchSize,
    /// BN before or after sigmoid, tanh and ReLU.
    Placement,
    /// Dropout before or after BN, and the variance shift.
    DropoutBn,
    /// Final accuracy over a sweep of learning rates, with and without BN.
    LrRange,
}

impl Study {
    /// All studies, in report order.
    pub const ALL: [Study; 4] = [Study::Paper, Study::LearningRate, Study::Depth, Study::Population];

    /// The normalization studies (`bpnet experiment norm`), in report order.
    pub const NORM: [Study; 4] = [Study::BatchSize, Study::Placement, Study::DropoutBn, Study::LrRange];

    /// Short name used in file names and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Study::Paper => "paper",
            Study::LearningRate => "lr",
            Study::Depth => "depth",
            Study::Population => "population",
            Study::BatchSize => "batch-size",
            Study::Placement => "placement",
            Study::DropoutBn => "dropout-bn",
            Study::LrRange => "lr-range",
        }
    }

    /// The files the study writes into the output folder (each figure as
    /// `.png` and `.svg`); [`run`] adds [`REPORT_FILES`].
    pub fn files(self) -> Vec<String> {
        let (csvs, figures): (&[&str], &[&str]) = match self {
            Study::Paper => (
                &["paper_curves.csv"],
                &[
                    "fig1a_test_accuracy",
                    "fig1b_sigmoid_input_without_bn",
                    "fig1c_sigmoid_input_with_bn",
                    "fig1_combined",
                ],
            ),
            Study::LearningRate => (&["lr_curves.csv"], &["lr_study"]),
            Study::Depth => (
                &["depth_curves.csv", "depth_grad_norms.csv"],
                &["depth_grad_norms", "depth_accuracy"],
            ),
            Study::Population => (&["population_curves.csv"], &["population"]),
            Study::BatchSize => (&["batch_size.csv"], &["batch_size"]),
            Study::Placement => (&["placement.csv"], &["placement"]),
            Study::DropoutBn => (&["dropout_bn.csv"], &["dropout_bn"]),
            Study::LrRange => (&["lr_range.csv"], &["lr_range"]),
        };
        let figures = figures.iter().flat_map(|f| [format!("{f}.png"), format!("{f}.svg")]);
        csvs.iter().map(|c| c.to_string()).chain(figures).collect()
    }
}

/// The files [`run`] writes after the studies' own.
pub const REPORT_FILES: [&str; 3] = ["config.json", "results.json", "report.html"];

/// The file [`sweep`] writes.
pub const SWEEP_FILE: &str = "sweep.csv";

/// What a study produced: a report section and a JSON summary.
#[derive(Debug, Clone)]
pub struct StudyOutput {
    /// The study.
    pub study: Study,
    /// Its part of the HTML report.
    pub section: report::Section,
    /// Its measured numbers.
    pub summary: serde_json::Value,
    /// Wall seconds it took.
    pub seconds: f64,
}

/// The marker of an unfinished run in its folder: written before the first
/// file of a run ([`run`], [`seeds::run_seeds`]) and removed after its
/// last, so a run interrupted or failed keeps it (nothing said that a
/// folder mixed a new run's curves with an earlier run's report).
pub const MARKER: &str = "INCOMPLETE.md";

/// The first line of [`MARKER`].
const MARKER_TITLE: &str = "# An unfinished bpnet experiment";

/// [`MARKER`] as an output kind (recognised by its first line).
pub fn marker_kind() -> bpnet::io::Kind {
    bpnet::io::Kind::markdown("an unfinished run's marker", &[MARKER_TITLE])
}

/// What the output file `name` of a run holds, as an existing file of that
/// name must hold to be replaced without `--overwrite`: JSON by its keys,
/// CSV by its first fields (a user's own `config.json`, or a `step,loss`
/// CSV, had been taken for bpnet's and replaced).
pub fn output_kind(name: &str) -> bpnet::io::Kind {
    use bpnet::io::Kind;
    match name.rsplit_once('.').map_or("", |p| p.1) {
        _ if name.ends_with(MARKER) => marker_kind(),
        "png" => Kind::Png,
        "svg" => Kind::Svg,
        "html" => Kind::Html,
        "json" if name.ends_with("config.json") => Kind::json(&["bpnet_version"]),
        "json" if name.ends_with("seeds.json") => Kind::json(&["numbers"]),
        "json" => Kind::Json(
            Study::ALL
                .iter()
                .chain(&Study::NORM)
                .map(|s| s.name().to_string())
                .collect(),
        ),
        "md" => Kind::markdown("a seeds table", &["# Spread over seeds "]),
        _ => Kind::csv("experiment results", &[]).with_patterns(&[
            "step,test_accuracy_*,*",
            "step,running_average,*",
            "network,step,layer,*",
            "network,lr,seed,*",
            "batch_size,norm,seed,*",
            "arm,seed,test_accuracy,*",
            "activation,placement,seed,*",
            "lr,init_std,batch_norm,*",
        ]),
    }
}

/// Writes [`MARKER`] into `out` (created if missing), naming `command`.
pub(crate) fn write_marker(out: &Path, command: &str) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let path = out.join(MARKER);
    let text = format!(
        "{MARKER_TITLE}\n\n`{command}` started writing into this folder and has not finished \
         (it is still running, or it was interrupted or failed). Until it finishes, the files here \
         may mix its outputs with an earlier run's: config.json, results.json, report.html and \
         seeds.md describe the last run that finished.\n"
    );
    bpnet::io::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Removes the marker `path` [`write_marker`] wrote.
pub(crate) fn remove_marker(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `studies` with `cfg` on `data`, writing every file into `out` (created
/// if missing): per study its CSV curves and figures, then `config.json`,
/// `results.json` and `report.html`, with [`MARKER`] there meanwhile.
/// `command` is recorded in the report.
pub fn run(
    studies: &[Study],
    cfg: &ExperimentConfig,
    data: &Mnist,
    out: &Path,
    command: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<StudyOutput>> {
    cfg.validate()?;
    // What the probe follows: the first `probe_rows` test images, or all of
    // fewer (config.json recorded the rows asked for, 1,000 of a 500-image
    // test set).
    let cfg = &ExperimentConfig {
        probe_rows: cfg.probe_rows.min(data.test.len()),
        ..cfg.clone()
    };
    let marker = data.writes().then(|| write_marker(out, command)).transpose()?;
    let mut outputs = Vec::new();
    for &study in studies {
        log(&format!("== {} study", study.name()));
        let start = std::time::Instant::now();
        let (section, summary) = match study {
            Study::Paper => paper::run(cfg, data, out, log)?,
            Study::LearningRate => lr::run(cfg, data, out, log)?,
            Study::Depth => depth::run(cfg, data, out, log)?,
            Study::Population => population::run(cfg, data, out, log)?,
            Study::BatchSize => norm::batch_size::run(cfg, data, out, log)?,
            Study::Placement => norm::placement::run(cfg, data, out, log)?,
            Study::DropoutBn => norm::dropout::run(cfg, data, out, log)?,
            Study::LrRange => norm::lr_range::run(cfg, data, out, log)?,
        };
        outputs.push(StudyOutput {
            study,
            section,
            summary,
            seconds: start.elapsed().as_secs_f64(),
        });
    }
    if let Some(marker) = marker {
        report::write_all(out, cfg, data, command, &outputs)?;
        remove_marker(&marker)?;
    }
    Ok(outputs)
}

//! The population-statistics study: what the BN network's test accuracy is
//! with each kind of inference statistics —
//! running averages with momentum 0.1 (PyTorch's default), cumulative
//! averages over all training batches (PyTorch's `momentum=None`), and the
//! paper's population statistics (Algorithm 2) recomputed with the weights
//! frozen over a pass of training mini-batches.
//!
//! Running statistics never influence training (training normalizes with
//! batch statistics), so the two trained networks have identical weights and
//! differ only in their running statistics; the study checks this.

use super::lockstep::{self, Arm, Probe};
use super::report::{self, Section, num, para, pct};
use super::{ExperimentConfig, Mnist, save};
use crate::plot::{Figure, Panel, Series, THIRD, Ticks, WITH_BN};
use bpnet::data::{Batches, Dataset, TargetBuf};
use bpnet::error::Result;
use bpnet::layers::{Layer, Mode, Momentum};
use bpnet::model::Sequential;
use bpnet::tensor::Matrix;
use bpnet::train::accuracy;
use serde_json::{Value, json};
use std::path::Path;

/// Replaces every BN layer's running statistics of `model` by population
/// statistics over `batches` training mini-batches (0 = one pass over
/// `train`) drawn with `seed`; returns the number of batches used.
pub fn recalibrate(
    model: &mut Sequential<f32>,
    train: &Dataset,
    batch: usize,
    batches: usize,
    seed: u64,
) -> Result<usize> {
    let mut order = Batches::new(train.len(), batch, 2, seed);
    let count = if batches == 0 { order.per_epoch() } else { batches };
    for l in model.layers_mut() {
        if let Layer::BatchNorm(bn) = l {
            bn.begin_recalibration();
        }
    }
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    for _ in 0..count {
        train.gather(order.next_batch(), &mut x, &mut y);
        model.forward(&x, Mode::Recalibrate)?;
    }
    for l in model.layers_mut() {
        if let Layer::BatchNorm(bn) = l {
            bn.finish_recalibration()?;
        }
    }
    Ok(count)
}

/// Legend and table name of the recomputed statistics.
const POPULATION: &str = "population statistics (Algorithm 2)";

struct PopulationProbe<'a> {
    train: &'a Dataset,
    test: &'a Dataset,
    batch: usize,
    batches: usize,
    seed: u64,
    /// `(step, population accuracy)` per evaluation.
    rows: Vec<(usize, f64)>,
    used: usize,
}

impl Probe for PopulationProbe<'_> {
    fn at_eval(&mut self, step: usize, arms: &mut [Arm]) -> Result<()> {
        // Each rank recomputes the statistics over all the batches alone
        // (the same numbers everywhere), not synchronized.
        let mut model = arms[0].model().clone();
        model.set_bn_sync(None)?;
        self.used = recalibrate(&mut model, self.train, self.batch, self.batches, self.seed)?;
        self.rows.push((step, accuracy(&mut model, self.test, 2000)?));
        Ok(())
    }
}

/// Whether two networks hold exactly the same trainable parameters.
fn same_weights(a: &Sequential<f32>, b: &Sequential<f32>) -> bool {
    let values = |m: &Sequential<f32>| -> Vec<Vec<f32>> {
        m.layers()
            .iter()
            .flat_map(bpnet::train::diagnostics::params)
            .map(|p| p.value.as_slice().to_vec())
            .collect()
    };
    values(a) == values(b)
}

/// Runs the study; writes `population_curves.csv` and `population.{png,svg}`.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut cumulative = cfg.paper_spec(true);
    cumulative.bn.momentum = Momentum::Cumulative;
    let mut arms = vec![
        Arm::new(
            "running average (momentum 0.1)",
            &cfg.paper_spec(true),
            cfg.lr,
            cfg.seed,
        )?,
        Arm::new("cumulative average", &cumulative, cfg.lr, cfg.seed)?,
    ];
    let mut probe = PopulationProbe {
        train: &data.train,
        test: &data.test,
        batch: cfg.batch_size,
        batches: cfg.population_batches,
        seed: cfg.seed.wrapping_add(17),
        rows: Vec::new(),
        used: 0,
    };
    lockstep::run(&mut arms, data, &cfg.plan(), &mut probe, log)?;
    let identical = same_weights(arms[0].model(), arms[1].model());
    if data.writes() {
        write_curves(out, &arms, &probe.rows)?;
    }
    let files = save(data, &figure(cfg, &arms, &probe.rows, POPULATION), out, "population")?;
    let html = section_html(cfg, &arms, &probe, identical, &files)?;
    let summary = json!({
        "identical_weights": identical,
        "population_batches": probe.used,
        "final_accuracy": {
            "running_average_momentum_0.1": arms[0].result.final_accuracy(),
            "cumulative_average": arms[1].result.final_accuracy(),
            "population": probe.rows.last().map_or(f64::NAN, |r| r.1),
        },
    });
    let section = Section {
        id: "population".into(),
        title: "Inference statistics: running, cumulative, population".into(),
        html,
    };
    Ok((section, summary))
}

fn section_html(
    cfg: &ExperimentConfig,
    arms: &[Arm],
    probe: &PopulationProbe<'_>,
    identical: bool,
    files: &crate::plot::FigureFiles,
) -> Result<String> {
    let final_pop = probe.rows.last().map_or(f64::NAN, |r| r.1);
    let table_rows = vec![
        vec![arms[0].result.label.clone(), pct(arms[0].result.final_accuracy())],
        vec![arms[1].result.label.clone(), pct(arms[1].result.final_accuracy())],
        vec![POPULATION.to_string(), pct(final_pop)],
    ];
    let mut html = para(&format!(
        "The paper's BN network ({} steps, learning rate {}) at inference with three kinds of statistics. Running statistics do not influence training, so both trained networks have {} weights. Population statistics: mean = average of batch means, variance = average of unbiased batch variances over {} training mini-batches of {}, weights frozen, recomputed at every evaluation.",
        cfg.steps,
        cfg.lr,
        if identical {
            "identical"
        } else {
            "DIFFERENT (unexpected)"
        },
        probe.used,
        cfg.batch_size
    ));
    html += &report::figure(
        files,
        "Test accuracy of the BN network with each kind of inference statistics.",
    )?;
    html += &report::table(
        &["inference statistics", &format!("test accuracy at step {}", cfg.steps)],
        &table_rows,
    );
    Ok(html)
}

/// `population_curves.csv`: test accuracy per evaluation with each kind of statistics.
fn write_curves(out: &Path, arms: &[Arm], pop: &[(usize, f64)]) -> Result<()> {
    let header: Vec<String> = ["step", "running_average", "cumulative_average", "population"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let rows: Vec<Vec<String>> = pop
        .iter()
        .enumerate()
        .map(|(i, &(step, pop))| {
            let at = |a: &Arm| num(a.result.curve.get(i).map_or(f64::NAN, |p| p.test_accuracy));
            vec![step.to_string(), at(&arms[0]), at(&arms[1]), num(pop)]
        })
        .collect();
    report::write_csv(&out.join("population_curves.csv"), &header, &rows)
}

fn figure(cfg: &ExperimentConfig, arms: &[Arm], pop: &[(usize, f64)], pop_label: &str) -> Figure {
    let mut p = Panel::new(
        "BN network: test accuracy by inference statistics",
        "training step",
        "test accuracy (%)",
    );
    p.x_ticks = Ticks::Thousands;
    p.y_ticks = Ticks::Percent;
    let results: Vec<_> = arms.iter().map(|a| &a.result).collect();
    p.y_range = Some((super::paper::accuracy_floor(&results, cfg.steps), 1.0));
    let curve = |a: &Arm| {
        a.result
            .curve
            .iter()
            .map(|q| (q.step as f64, q.test_accuracy))
            .collect()
    };
    p.series
        .push(Series::new(arms[0].result.label.clone(), WITH_BN, curve(&arms[0])).width(3));
    p.series
        .push(Series::new(arms[1].result.label.clone(), THIRD, curve(&arms[1])).width(3));
    let pts = pop.iter().map(|&(s, a)| (s as f64, a)).collect();
    p.series
        .push(Series::new(pop_label, WITH_BN.lighten(0.45), pts).width(2).dashed());
    Figure::new("", vec![p])
}

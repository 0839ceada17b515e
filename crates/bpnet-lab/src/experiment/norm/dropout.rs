//! Dropout with batch normalization (Li, Chen, Hu & Yang 2019, "Understanding
//! the Disharmony between Dropout and Batch Normalization by Variance Shift",
//! arXiv:1801.05134): dropout inside every hidden block, so that it feeds the
//! next block's BN ("before BN"), against dropout only after the last BN,
//! before the output layer ("after BN"), and no dropout; ReLU networks of the
//! paper's shape with BN before each activation.
//!
//! The variance shift of BN layer `k`: per unit, the variance of the layer's
//! input over the test images in evaluation mode (dropout off) divided by
//! the layer's running variance (what training with dropout taught it),
//! averaged over the units. 1 means no shift.

use super::{mean_sd, mean_with_bars, num_sd, pct_sd, train, train_eval_gap};
use crate::experiment::report::{self, Section, num, para};
use crate::experiment::{ExperimentConfig, Mnist};
use crate::plot::{Figure, Panel, Rgb, Series, THIRD, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::Result;
use bpnet::layers::{Activation, Dropout, Layer, Mode};
use bpnet::model::{BnPlacement, Sequential};
use serde_json::{Value, json};
use std::path::Path;

/// Where dropout goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    BeforeBn,
    AfterBn,
    None,
}

fn arms() -> [(&'static str, Where, Rgb); 3] {
    [
        ("dropout before BN", Where::BeforeBn, WITHOUT_BN),
        ("dropout after BN", Where::AfterBn, WITH_BN),
        ("no dropout", Where::None, THIRD),
    ]
}

fn network(cfg: &ExperimentConfig, w: Where, seed: u64) -> Result<Sequential<f32>> {
    let mut spec = cfg.paper_spec(true);
    spec.activation = Activation::Relu;
    spec.batch_norm = BnPlacement::BeforeActivation;
    spec.dropout = if w == Where::BeforeBn { cfg.dropout_rate } else { 0.0 };
    let model = Sequential::<f32>::from_spec(&spec, seed)?;
    if w != Where::AfterBn {
        return Ok(model);
    }
    let mut layers = model.layers().to_vec();
    let last = layers.len() - 1;
    layers.insert(last, Layer::Dropout(Dropout::new(cfg.dropout_rate, seed ^ 0xD50)?));
    Ok(Sequential::new(layers))
}

/// Per BN layer: mean over units of `eval-mode input variance / running variance`.
fn variance_shift(model: &Sequential<f32>, data: &Mnist) -> Result<Vec<f64>> {
    let mut m = model.clone();
    m.forward(&data.test.features, Mode::Eval)?;
    let layers = m.layers();
    let mut shifts = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let Layer::BatchNorm(bn) = l else { continue };
        let Some(prev) = i.checked_sub(1).map(|p| layers[p].output()) else {
            continue;
        };
        let (rows, f) = (prev.rows() as f64, prev.cols());
        let mut ratio = 0.0;
        for j in 0..f {
            let col = prev.as_slice().iter().skip(j).step_by(f).map(|&v| v as f64);
            let mean = col.clone().sum::<f64>() / rows;
            let var = col.map(|v| (v - mean) * (v - mean)).sum::<f64>() / (rows - 1.0);
            ratio += var / (bn.running.var[j] as f64).max(1e-12);
        }
        shifts.push(ratio / f as f64);
    }
    Ok(shifts)
}

/// Per arm, per seed: (final accuracy, train/eval gap, shift per BN layer).
type Outcome = Vec<Vec<(f64, f64, Vec<f64>)>>;

/// Runs the study; writes `dropout_bn.csv` and `dropout_bn.{png,svg}`.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut outcome: Outcome = Vec::new();
    let mut csv = Vec::new();
    for (name, w, _) in arms() {
        let mut per_seed = Vec::new();
        for s in 0..cfg.seeds as u64 {
            let seed = cfg.seed.wrapping_add(s);
            let r = train(network(cfg, w, seed)?, cfg.lr, cfg.batch_size, cfg.steps, seed, data, 1)?;
            let gap = train_eval_gap(&r.model, &data.test, cfg.batch_size)?;
            let shift = variance_shift(&r.model, data)?;
            let acc = r.final_accuracy();
            log(&format!(
                "{name} seed {seed}: test accuracy {acc:.4}, gap {gap:.4}, variance shift {shift:.3?}"
            ));
            let mut row = vec![name.to_string(), seed.to_string(), num(acc), num(gap)];
            row.extend(shift.iter().map(|v| num(*v)));
            csv.push(row);
            per_seed.push((acc, gap, shift));
        }
        outcome.push(per_seed);
    }
    let layers = outcome[0][0].2.len();
    let mut header: Vec<String> = ["arm", "seed", "test_accuracy", "train_eval_gap"]
        .map(String::from)
        .to_vec();
    header.extend((1..=layers).map(|k| format!("variance_shift_bn{k}")));
    if data.writes() {
        report::write_csv(&out.join("dropout_bn.csv"), &header, &csv)?;
    }
    let files = super::super::save(data, &figure(cfg, &outcome, layers), out, "dropout_bn")?;
    let mut html = para(&format!(
        "ReLU networks of the paper's shape (784-100-100-100-10) with BN before each ReLU and dropout of rate {} either inside every hidden block (after the ReLU, so the next block's BN normalizes dropped-out inputs in training but full inputs at inference) or only after the last BN (before the output layer), against no dropout; SGD at learning rate {}, batches of {}, {} steps, {} seeds. The variance shift of a BN layer is the variance of its input over the test images in evaluation mode divided by its running variance, averaged over its units (1 = no shift; the first BN layer sees no dropout in either arm). The gap is the train/eval total-variation distance of the outputs.",
        cfg.dropout_rate, cfg.lr, cfg.batch_size, cfg.steps, cfg.seeds
    ));
    html += &report::figure(
        &files,
        "Variance shift per BN layer (left) and final test accuracy (right), mean ± 1 sd over seeds.",
    )?;
    let mut head = vec!["arm".to_string(), "test accuracy".into(), "train/eval gap".into()];
    head.extend((1..=layers).map(|k| format!("variance shift, BN layer {k}")));
    let rows: Vec<Vec<String>> = arms()
        .iter()
        .zip(&outcome)
        .map(|((name, _, _), seeds)| {
            let mut row = vec![name.to_string()];
            row.push(pct_sd(&seeds.iter().map(|s| s.0).collect::<Vec<_>>()));
            row.push(num_sd(&seeds.iter().map(|s| s.1).collect::<Vec<_>>()));
            row.extend((0..layers).map(|k| num_sd(&seeds.iter().map(|s| s.2[k]).collect::<Vec<_>>())));
            row
        })
        .collect();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    html += &report::table(&head, &rows);
    let summary: Vec<Value> = arms()
        .iter()
        .zip(&outcome)
        .map(|((name, _, _), seeds)| {
            let accs: Vec<f64> = seeds.iter().map(|s| s.0).collect();
            let shift: Vec<Vec<f64>> = seeds.iter().map(|s| s.2.clone()).collect();
            json!({"arm": name, "test_accuracy": accs, "mean_accuracy": mean_sd(&accs).0,
                   "train_eval_gap": seeds.iter().map(|s| s.1).collect::<Vec<_>>(), "variance_shift": shift})
        })
        .collect();
    let section = Section {
        id: "dropout-bn".into(),
        title: "Dropout with BN: variance shift".into(),
        html,
    };
    Ok((
        section,
        json!({"dropout": cfg.dropout_rate, "steps": cfg.steps, "arms": summary}),
    ))
}

fn figure(cfg: &ExperimentConfig, outcome: &Outcome, layers: usize) -> Figure {
    let xs: Vec<f64> = (1..=layers).map(|k| k as f64).collect();
    let mut shift = Panel::new(
        "Variance shift per BN layer",
        "BN layer",
        "eval variance / running variance",
    );
    let mut acc = Panel::new(
        "Test accuracy",
        "arm (1 = before, 2 = after, 3 = none)",
        "test accuracy (%)",
    );
    acc.y_ticks = Ticks::Percent;
    for (i, ((name, _, color), seeds)) in arms().iter().zip(outcome).enumerate() {
        let groups: Vec<Vec<f64>> = (0..layers).map(|k| seeds.iter().map(|s| s.2[k]).collect()).collect();
        shift.series.extend(mean_with_bars(name, *color, &xs, &groups));
        // Each arm at x = 1, 2, 3: its mean as a short horizontal line, and a bar.
        let accs: Vec<f64> = seeds.iter().map(|s| s.0).collect();
        let (m, sd) = mean_sd(&accs);
        let x = (i + 1) as f64;
        acc.series
            .push(Series::new(*name, *color, vec![(x - 0.25, m), (x + 0.25, m)]).width(4));
        let bar = vec![(x, m - sd), (x, m + sd)];
        acc.series
            .push(Series::new(format!("{name}: ± 1 sd"), color.lighten(0.4), bar).width(2));
    }
    Figure::new(
        format!(
            "Dropout {} before or after BN: {} steps, {} seeds",
            cfg.dropout_rate, cfg.steps, cfg.seeds
        ),
        vec![shift, acc],
    )
}

//! The batch-size study: the paper's network (784-100-100-100-10, sigmoid)
//! with batch normalization, Batch Renormalization, Ghost BN, layer
//! normalization or none, trained for the same number of epochs at each
//! batch size; test accuracy and the gap between train-mode and eval-mode
//! outputs (total-variation distance of the softmax, test images in batches
//! of the training batch size).

use super::{mean_with_bars, num_sd, pct_sd, train, train_eval_gap};
use crate::experiment::report::{self, Section, num, para};
use crate::experiment::{ExperimentConfig, Mnist};
use crate::plot::{FOURTH, Figure, Panel, Rgb, THIRD, WITH_BN, WITHOUT_BN};
use bpnet::error::Result;
use bpnet::layers::{NormKind, RenormConfig};
use bpnet::model::{BnPlacement, ModelSpec, Sequential};
use serde_json::{Value, json};
use std::path::Path;

/// The compared normalizations: name, colour and kind for `steps` training
/// steps (`None` = no normalization).
fn arms(cfg: &ExperimentConfig, steps: usize) -> Vec<(&'static str, Rgb, Option<NormKind>)> {
    // The paper's schedule (5k warm-up, dmax at 25k, rmax at 40k) as
    // fractions of a 100k-step run, scaled to this run's steps.
    let at = |f: f64| (steps as f64 * f).round() as u64;
    let renorm = RenormConfig {
        warmup_steps: at(0.05),
        dmax_steps: at(0.25),
        rmax_steps: at(0.40),
        ..RenormConfig::default()
    };
    vec![
        ("BN", WITH_BN, Some(NormKind::Batch)),
        ("Batch Renorm", THIRD, Some(NormKind::Renorm(renorm))),
        ("Ghost BN", FOURTH, Some(NormKind::Ghost { size: cfg.ghost_size })),
        ("LayerNorm", Rgb(0x66, 0x66, 0x66), Some(NormKind::Layer)),
        ("none", WITHOUT_BN, None),
    ]
}

fn spec(cfg: &ExperimentConfig, kind: Option<NormKind>) -> ModelSpec {
    let mut s = cfg.paper_spec(kind.is_some());
    s.batch_norm = if kind.is_some() {
        BnPlacement::BeforeActivation
    } else {
        BnPlacement::None
    };
    s.bn.kind = kind.unwrap_or_default();
    s
}

/// Per arm, per batch size: the accuracies and gaps over the seeds.
type Grid = Vec<Vec<(Vec<f64>, Vec<f64>)>>;

/// Runs the study; writes `batch_size.csv` and `batch_size.{png,svg}`.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let names: Vec<_> = arms(cfg, 1).iter().map(|a| (a.0, a.1)).collect();
    let mut grid: Grid = vec![vec![(Vec::new(), Vec::new()); cfg.batch_sizes.len()]; names.len()];
    let mut csv = Vec::new();
    for (b, &batch) in cfg.batch_sizes.iter().enumerate() {
        let steps = (data.train.len() * cfg.norm_epochs).div_ceil(batch);
        for (a, (name, _, kind)) in arms(cfg, steps).into_iter().enumerate() {
            for s in 0..cfg.seeds as u64 {
                let seed = cfg.seed.wrapping_add(s);
                let model = Sequential::<f32>::from_spec(&spec(cfg, kind), seed)?;
                let r = train(model, cfg.lr, batch, steps, seed, data, 1)?;
                let gap = train_eval_gap(&r.model, &data.test, batch)?;
                let acc = r.final_accuracy();
                log(&format!(
                    "batch {batch:>3} {name:<12} seed {seed}: {steps} steps, test accuracy {acc:.4}, train/eval gap {gap:.4}"
                ));
                csv.push(vec![
                    batch.to_string(),
                    name.to_string(),
                    seed.to_string(),
                    steps.to_string(),
                    num(acc),
                    num(gap),
                    r.diverged_at.map_or(String::new(), |d| d.to_string()),
                ]);
                grid[a][b].0.push(acc);
                grid[a][b].1.push(gap);
            }
        }
    }
    let header: Vec<String> = [
        "batch_size",
        "norm",
        "seed",
        "steps",
        "test_accuracy",
        "train_eval_gap",
        "diverged_at",
    ]
    .map(String::from)
    .to_vec();
    if data.writes() {
        report::write_csv(&out.join("batch_size.csv"), &header, &csv)?;
    }
    let files = super::super::save(data, &figure(cfg, &names, &grid), out, "batch_size")?;
    let mut html = para(&format!(
        "The paper's network (784-100-100-100-10, sigmoid, normalization before each sigmoid, N(0, {}^2) weights) trained by SGD at learning rate {} for {} epoch(s) of {} images at every batch size, so smaller batches take more steps; {} seeds per cell (mean ± sample sd). Ghost BN normalizes over virtual batches of {} rows (the same as BN at batches up to {}). Batch Renormalization uses the paper's schedule scaled to each run (plain BN for the first 5% of the steps, dmax reaching 5 at 25% and rmax reaching 3 at 40%). The train/eval gap is the total-variation distance between the softmax outputs in training mode (batch statistics of test batches of the training size; dropout is off) and in evaluation mode, averaged over the test images: 0 means the two modes agree.",
        cfg.init_std,
        cfg.lr,
        cfg.norm_epochs,
        data.train.len(),
        cfg.seeds,
        cfg.ghost_size,
        cfg.ghost_size
    ));
    html += &report::figure(
        &files,
        "Test accuracy (left) and train/eval output gap (right) against the batch size (log scale), mean and ± 1 sd over seeds.",
    )?;
    let (head, rows) = table(cfg, &names, &grid);
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    html += &report::table(&head, &rows);
    let summary = summary(cfg, &names, &grid);
    let section = Section {
        id: "batch-size".into(),
        title: "Batch size: BN, Batch Renorm, Ghost BN, LayerNorm, none".into(),
        html,
    };
    Ok((section, summary))
}

fn figure(cfg: &ExperimentConfig, names: &[(&str, Rgb)], grid: &Grid) -> Figure {
    let xs: Vec<f64> = cfg.batch_sizes.iter().map(|&b| (b as f64).log2()).collect();
    let mut acc = Panel::new("Test accuracy", "batch size (log2)", "test accuracy (%)");
    acc.y_ticks = crate::plot::Ticks::Percent;
    let mut gap = Panel::new(
        "Train-mode vs eval-mode outputs",
        "batch size (log2)",
        "total-variation gap",
    );
    for ((name, color), cells) in names.iter().zip(grid) {
        let accs: Vec<Vec<f64>> = cells.iter().map(|c| c.0.clone()).collect();
        let gaps: Vec<Vec<f64>> = cells.iter().map(|c| c.1.clone()).collect();
        acc.series.extend(mean_with_bars(name, *color, &xs, &accs));
        gap.series.extend(mean_with_bars(name, *color, &xs, &gaps));
    }
    Figure::new(
        format!("Batch size: {} epoch(s), {} seeds", cfg.norm_epochs, cfg.seeds),
        vec![acc, gap],
    )
}

fn table(cfg: &ExperimentConfig, names: &[(&str, Rgb)], grid: &Grid) -> (Vec<String>, Vec<Vec<String>>) {
    let mut head = vec!["normalization".to_string()];
    head.extend(cfg.batch_sizes.iter().map(|b| format!("batch {b}: accuracy / gap")));
    let rows = names
        .iter()
        .zip(grid)
        .map(|((name, _), cells)| {
            let mut row = vec![name.to_string()];
            row.extend(cells.iter().map(|(a, g)| format!("{} / {}", pct_sd(a), num_sd(g))));
            row
        })
        .collect();
    (head, rows)
}

fn summary(cfg: &ExperimentConfig, names: &[(&str, Rgb)], grid: &Grid) -> Value {
    let arms: Vec<Value> = names
        .iter()
        .zip(grid)
        .map(|((name, _), cells)| {
            let per_batch: Vec<Value> = cfg
                .batch_sizes
                .iter()
                .zip(cells)
                .map(|(b, (a, g))| json!({"batch_size": b, "test_accuracy": a, "train_eval_gap": g}))
                .collect();
            json!({"norm": name, "cells": per_batch})
        })
        .collect();
    json!({"epochs": cfg.norm_epochs, "seeds": cfg.seeds, "ghost_size": cfg.ghost_size, "arms": arms})
}

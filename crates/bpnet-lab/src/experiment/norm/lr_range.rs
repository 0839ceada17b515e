//! The learning-rate range study: the paper's network with and without BN,
//! trained for a fixed number of steps at each rate of a sweep; the final
//! test accuracy over the rates shows the range each one tolerates. The
//! learning-rate range test (`bpnet lr-find`) is run on both networks, and
//! its suggestions are drawn on the figure.

use super::{mean_sd, mean_with_bars, pct_sd, train};
use crate::experiment::report::{self, Section, num, para};
use crate::experiment::{ExperimentConfig, Mnist};
use crate::plot::{Figure, Panel, Series, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::Result;
use bpnet::loss::Loss;
use bpnet::model::Sequential;
use bpnet::optim::OptimizerConfig;
use bpnet::train::lr_find::{LrFindConfig, LrFindResult, lr_find};
use serde_json::{Value, json};
use std::path::Path;

/// Per network (no BN, BN), per rate: final accuracies and divergences over the seeds.
type Grid = Vec<Vec<(Vec<f64>, usize)>>;

/// Runs the study; writes `lr_range.csv` and `lr_range.{png,svg}`.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut grid: Grid = Vec::new();
    let mut finds = Vec::new();
    let mut csv = Vec::new();
    for bn in [false, true] {
        let name = if bn { "with BN" } else { "without BN" };
        let mut per_lr = Vec::new();
        for &lr in &cfg.lr_range {
            let (mut accs, mut diverged) = (Vec::new(), 0);
            for s in 0..cfg.seeds as u64 {
                let seed = cfg.seed.wrapping_add(s);
                let model = Sequential::<f32>::from_spec(&cfg.paper_spec(bn), seed)?;
                let r = train(model, lr, cfg.batch_size, cfg.steps, seed, data, 1)?;
                let acc = r.final_accuracy();
                log(&format!("{name} lr {lr} seed {seed}: test accuracy {acc:.4}"));
                csv.push(vec![
                    name.into(),
                    lr.to_string(),
                    seed.to_string(),
                    num(acc),
                    r.diverged_at.map_or(String::new(), |d| d.to_string()),
                ]);
                diverged += usize::from(r.diverged_at.is_some());
                accs.push(acc);
            }
            per_lr.push((accs, diverged));
        }
        grid.push(per_lr);
        let model = Sequential::<f32>::from_spec(&cfg.paper_spec(bn), cfg.seed)?;
        let range = LrFindConfig {
            start_lr: 1e-4,
            end_lr: 1e3,
            batch_size: cfg.batch_size,
            seed: cfg.seed,
            ..LrFindConfig::default()
        };
        let f = lr_find(
            &model,
            &OptimizerConfig::sgd(0.1),
            Loss::CrossEntropy,
            &data.train,
            &range,
        )?;
        // As the report writes them (it printed `Some(6.4280731172843195)`).
        let rate = |r: Option<f64>| r.map_or("none".to_string(), |v| format!("{v:.3e}"));
        log(&format!(
            "{name}: lr-find steepest {}, minimum/10 {}",
            rate(f.steepest),
            rate(f.min_div10)
        ));
        finds.push(f);
    }
    let header: Vec<String> = ["network", "lr", "seed", "test_accuracy", "diverged_at"]
        .map(String::from)
        .to_vec();
    if data.writes() {
        report::write_csv(&out.join("lr_range.csv"), &header, &csv)?;
    }
    let files = super::super::save(data, &figure(cfg, &grid, &finds), out, "lr_range")?;
    let mut html = para(&format!(
        "The paper's network (784-100-100-100-10, sigmoid, N(0, {}^2) weights) with and without BN before each sigmoid, trained by SGD for {} steps of {} images at each learning rate, {} seeds per rate (mean ± sample sd of the final test accuracy; a run whose loss stops being finite stops there and counts as diverged). The dashed vertical lines are the suggestions of the learning-rate range test (bpnet lr-find: 100 batches, rates 1e-4 to 1e3) on each network: steepest descent of the smoothed loss.",
        cfg.init_std, cfg.steps, cfg.batch_size, cfg.seeds
    ));
    html += &report::figure(
        &files,
        "Final test accuracy against the learning rate (log scale), mean ± 1 sd over seeds.",
    )?;
    let mut head = vec!["network".to_string()];
    head.extend(cfg.lr_range.iter().map(|lr| format!("lr {lr}")));
    head.push("lr-find: steepest / minimum÷10".into());
    let rows: Vec<Vec<String>> = ["without BN", "with BN"]
        .iter()
        .zip(&grid)
        .zip(&finds)
        .map(|((name, cells), f)| {
            let mut row = vec![name.to_string()];
            row.extend(cells.iter().map(|(a, d)| match d {
                0 => pct_sd(a),
                d => format!("{} ({d} diverged)", pct_sd(a)),
            }));
            let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            row.push(format!("{} / {}", show(f.steepest), show(f.min_div10)));
            row
        })
        .collect();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    html += &report::table(&head, &rows);
    let summary: Vec<Value> = ["without BN", "with BN"]
        .iter()
        .zip(&grid)
        .zip(&finds)
        .map(|((name, cells), f)| {
            let per_lr: Vec<Value> = cfg
                .lr_range
                .iter()
                .zip(cells)
                .map(|(lr, (a, d))| json!({"lr": lr, "test_accuracy": a, "mean": mean_sd(a).0, "diverged": d}))
                .collect();
            json!({"network": name, "rates": per_lr, "lr_find_steepest": f.steepest, "lr_find_min_div10": f.min_div10})
        })
        .collect();
    let section = Section {
        id: "lr-range".into(),
        title: "Learning-rate range with and without BN".into(),
        html,
    };
    Ok((
        section,
        json!({"steps": cfg.steps, "seeds": cfg.seeds, "networks": summary}),
    ))
}

fn figure(cfg: &ExperimentConfig, grid: &Grid, finds: &[LrFindResult]) -> Figure {
    let xs: Vec<f64> = cfg.lr_range.iter().map(|lr| lr.log10()).collect();
    let mut p = Panel::new("Final test accuracy", "learning rate (log10)", "test accuracy (%)");
    p.y_ticks = Ticks::Percent;
    p.y_range = Some((0.0, 1.0));
    for ((name, color), (cells, f)) in [("without BN", WITHOUT_BN), ("with BN", WITH_BN)]
        .iter()
        .zip(grid.iter().zip(finds))
    {
        let groups: Vec<Vec<f64>> = cells.iter().map(|c| c.0.clone()).collect();
        p.series.extend(mean_with_bars(name, *color, &xs, &groups));
        if let Some(s) = f.steepest {
            let line = vec![(s.log10(), 0.0), (s.log10(), 1.0)];
            p.series
                .push(Series::new(format!("lr-find {name}: {s:.3}"), *color, line).dashed());
        }
    }
    Figure::new(
        format!("Learning-rate range: {} steps, {} seeds", cfg.steps, cfg.seeds),
        vec![p],
    )
}

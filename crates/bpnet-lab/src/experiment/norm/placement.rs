//! The placement study: batch normalization before the activation (the
//! paper's `g(BN(W u))`) or after it (`BN(g(W u + b))`), and no BN, for
//! sigmoid, tanh and ReLU networks of the paper's shape.

use super::{mean_sd, mean_with_bars, pct_sd, train};
use crate::experiment::report::{self, Section, num, para};
use crate::experiment::{ExperimentConfig, Mnist};
use crate::plot::{Figure, Panel, Rgb, THIRD, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::Result;
use bpnet::layers::Activation;
use bpnet::model::{BnPlacement, Sequential};
use serde_json::{Value, json};
use std::path::Path;

const ACTIVATIONS: [Activation; 3] = [Activation::Sigmoid, Activation::Tanh, Activation::Relu];

fn placements() -> [(&'static str, BnPlacement, Rgb); 3] {
    [
        ("BN before activation", BnPlacement::BeforeActivation, WITH_BN),
        ("BN after activation", BnPlacement::AfterActivation, THIRD),
        ("no BN", BnPlacement::None, WITHOUT_BN),
    ]
}

/// Per activation, per placement, per seed: the run's accuracy curve.
type Curves = Vec<Vec<Vec<Vec<(usize, f64)>>>>;

/// Runs the study; writes `placement.csv` and `placement.{png,svg}`.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut curves: Curves = Vec::new();
    let mut csv = Vec::new();
    for act in ACTIVATIONS {
        let mut per_place = Vec::new();
        for (name, placement, _) in placements() {
            let mut per_seed = Vec::new();
            for s in 0..cfg.seeds as u64 {
                let seed = cfg.seed.wrapping_add(s);
                let mut spec = cfg.paper_spec(placement != BnPlacement::None);
                spec.activation = act;
                spec.batch_norm = placement;
                let model = Sequential::<f32>::from_spec(&spec, seed)?;
                let r = train(model, cfg.lr, cfg.batch_size, cfg.steps, seed, data, 10)?;
                log(&format!(
                    "{} {name} seed {seed}: test accuracy {:.4}",
                    act.name(),
                    r.final_accuracy()
                ));
                for (step, acc) in &r.curve {
                    csv.push(vec![
                        act.name(),
                        name.to_string(),
                        seed.to_string(),
                        step.to_string(),
                        num(*acc),
                    ]);
                }
                per_seed.push(r.curve);
            }
            per_place.push(per_seed);
        }
        curves.push(per_place);
    }
    let header: Vec<String> = ["activation", "placement", "seed", "step", "test_accuracy"]
        .map(String::from)
        .to_vec();
    if data.writes() {
        report::write_csv(&out.join("placement.csv"), &header, &csv)?;
    }
    let files = super::super::save(data, &figure(cfg, &curves), out, "placement")?;
    let mut html = para(&format!(
        "Networks of the paper's shape (784-100-100-100-10, N(0, {}^2) weights) with sigmoid, tanh or ReLU units and BN before each activation (the Dense layer then has no bias), after it (Dense with bias), or no BN; SGD at learning rate {}, batches of {}, {} steps, {} seeds (mean ± sample sd of the final test accuracy).",
        cfg.init_std, cfg.lr, cfg.batch_size, cfg.steps, cfg.seeds
    ));
    html += &report::figure(
        &files,
        "Test accuracy over training (mean over seeds, bars ± 1 sd), one panel per activation.",
    )?;
    let mut rows = Vec::new();
    for (act, per_place) in ACTIVATIONS.iter().zip(&curves) {
        let mut row = vec![act.name()];
        row.extend(per_place.iter().map(|seeds| pct_sd(&finals(seeds))));
        rows.push(row);
    }
    let head: Vec<&str> = std::iter::once("activation")
        .chain(placements().iter().map(|p| p.0))
        .collect();
    html += &report::table(&head, &rows);
    let summary: Vec<Value> = ACTIVATIONS
        .iter()
        .zip(&curves)
        .map(|(act, per_place)| {
            let cells: Vec<Value> = placements()
                .iter()
                .zip(per_place)
                .map(|(p, seeds)| {
                    let f = finals(seeds);
                    let (m, s) = mean_sd(&f);
                    json!({"placement": p.0, "final_accuracy": f, "mean": m, "sd": s})
                })
                .collect();
            json!({"activation": act.name(), "placements": cells})
        })
        .collect();
    let section = Section {
        id: "placement".into(),
        title: "BN before or after the activation".into(),
        html,
    };
    Ok((
        section,
        json!({"steps": cfg.steps, "seeds": cfg.seeds, "activations": summary}),
    ))
}

fn finals(seeds: &[Vec<(usize, f64)>]) -> Vec<f64> {
    seeds.iter().filter_map(|c| c.last().map(|p| p.1)).collect()
}

fn figure(cfg: &ExperimentConfig, curves: &Curves) -> Figure {
    let panels = ACTIVATIONS
        .iter()
        .zip(curves)
        .map(|(act, per_place)| {
            let mut p = Panel::new(act.name(), "training step", "test accuracy (%)");
            p.x_ticks = Ticks::Thousands;
            p.y_ticks = Ticks::Percent;
            for ((name, _, color), seeds) in placements().iter().zip(per_place) {
                // Seeds share their evaluation steps unless one diverged.
                let steps: Vec<usize> = seeds.first().map_or(Vec::new(), |c| c.iter().map(|q| q.0).collect());
                let xs: Vec<f64> = steps.iter().map(|&s| s as f64).collect();
                let groups: Vec<Vec<f64>> = (0..steps.len())
                    .map(|i| seeds.iter().filter_map(|c| c.get(i).map(|q| q.1)).collect())
                    .collect();
                p.series.extend(mean_with_bars(name, *color, &xs, &groups));
            }
            p
        })
        .collect();
    Figure::new(
        format!("BN placement: {} steps, {} seeds", cfg.steps, cfg.seeds),
        panels,
    )
}

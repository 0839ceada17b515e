//! The depth study: a deep sigmoid network (`depth` hidden layers of 100)
//! with and without BN; the gradient norm of every Dense layer's weights over
//! training (vanishing gradients without BN), and test accuracy.

use super::lockstep::{self, Arm, Probe};
use super::report::{self, Section, num, para, pct, step_or_never};
use super::{ExperimentConfig, Mnist, save};
use crate::plot::{Figure, Panel, Rgb, Series, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::Result;
use bpnet::layers::Layer;
use bpnet::train::diagnostics::l2_norm;
use serde_json::{Value, json};
use std::path::Path;

/// Mean weight-gradient norm of every Dense layer between evaluations.
struct GradProbe {
    /// Per arm: running sums per Dense layer and the number of steps summed.
    sums: Vec<(Vec<f64>, usize)>,
    /// Per arm, per evaluation after step 0: `(step, norms per Dense layer)`.
    rows: Vec<Vec<(usize, Vec<f64>)>>,
}

fn weight_grad_norms(arm: &Arm) -> impl Iterator<Item = f64> + '_ {
    arm.model().layers().iter().filter_map(|l| match l {
        Layer::Dense(d) => Some(l2_norm(d.weight.grad.as_slice())),
        _ => None,
    })
}

impl Probe for GradProbe {
    fn after_step(&mut self, _step: usize, arms: &[Arm]) -> Result<()> {
        for (arm, (sums, n)) in arms.iter().zip(&mut self.sums) {
            if arm.result.diverged_at.is_some() {
                continue;
            }
            let norms: Vec<f64> = weight_grad_norms(arm).collect();
            sums.resize(norms.len(), 0.0);
            sums.iter_mut().zip(&norms).for_each(|(s, v)| *s += v);
            *n += 1;
        }
        Ok(())
    }

    fn at_eval(&mut self, step: usize, _arms: &mut [Arm]) -> Result<()> {
        for ((sums, n), rows) in self.sums.iter_mut().zip(&mut self.rows) {
            if *n > 0 {
                rows.push((step, sums.iter().map(|s| s / *n as f64).collect()));
                sums.iter_mut().for_each(|s| *s = 0.0);
                *n = 0;
            }
        }
        Ok(())
    }
}

/// `first / last` of a row of per-layer norms.
fn ratio(norms: &[f64]) -> f64 {
    match (norms.first(), norms.last()) {
        (Some(f), Some(l)) if *l > 0.0 => f / l,
        _ => f64::NAN,
    }
}

/// Runs the study; writes `depth_curves.csv`, `depth_grad_norms.csv` and the figures.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut arms = vec![
        Arm::new(
            format!("{} layers, without BN", cfg.depth),
            &cfg.deep_spec(false),
            cfg.lr,
            cfg.seed,
        )?,
        Arm::new(
            format!("{} layers, with BN", cfg.depth),
            &cfg.deep_spec(true),
            cfg.lr,
            cfg.seed,
        )?,
    ];
    let mut probe = GradProbe {
        sums: vec![(Vec::new(), 0); 2],
        rows: vec![Vec::new(); 2],
    };
    lockstep::run(&mut arms, data, &cfg.plan(), &mut probe, log)?;
    if data.writes() {
        write_csv(out, &arms, &probe)?;
    }
    let grads = save(data, &grad_figure(cfg, &arms, &probe), out, "depth_grad_norms")?;
    let acc = save(data, &accuracy_figure(cfg, &arms), out, "depth_accuracy")?;
    let mut html = para(&format!(
        "A deep network, 784-{}-10 with {} hidden sigmoid layers of 100 units, weights from N(0, {}^2), SGD at learning rate {}, {} steps, with and without BN before each sigmoid. The gradient norm of each Dense layer's weight matrix is averaged over the steps between evaluations (every {} steps).",
        vec!["100"; cfg.depth].join("-"),
        cfg.depth,
        cfg.init_std,
        cfg.lr,
        cfg.steps,
        cfg.eval_every
    ));
    html += &report::figure(
        &grads,
        "Gradient L2 norm of every Dense layer's weights (log scale; dark = first layer, yellow = output layer).",
    )?;
    html += &report::figure(&acc, "Test accuracy of the deep networks.")?;
    html += &table(&arms, &probe);
    let summary = summary(&arms, &probe);
    let section = Section {
        id: "depth".into(),
        title: "Depth and vanishing gradients".into(),
        html,
    };
    Ok((section, json!({ "depth": cfg.depth, "networks": summary })))
}

/// The study's table: accuracy and the first/last gradient-norm ratio.
fn table(arms: &[Arm], probe: &GradProbe) -> String {
    let first_last = |rows: &[(usize, Vec<f64>)], i: usize| rows.get(i).map_or(f64::NAN, |r| ratio(&r.1));
    let table_rows: Vec<Vec<String>> = arms
        .iter()
        .zip(&probe.rows)
        .map(|(a, rows)| {
            vec![
                a.result.label.clone(),
                pct(a.result.final_accuracy()),
                step_or_never(a.result.first_reaching(0.95)),
                format!("{:.2e}", first_last(rows, 0)),
                format!("{:.2e}", first_last(rows, rows.len().saturating_sub(1))),
            ]
        })
        .collect();
    let head = [
        "network",
        "final accuracy",
        "first step at 95%",
        "first/last layer gradient norm, first window",
        "same, last window",
    ];
    report::table(&head, &table_rows)
}

fn summary(arms: &[Arm], probe: &GradProbe) -> Vec<Value> {
    arms.iter()
        .zip(&probe.rows)
        .map(|(a, rows)| {
            json!({
                "label": a.result.label, "batch_norm": a.result.batch_norm,
                "final_accuracy": a.result.final_accuracy(), "first_step_95": a.result.first_reaching(0.95),
                "diverged_at": a.result.diverged_at,
                "grad_norms_first_window": rows.first().map(|r| &r.1),
                "grad_norms_last_window": rows.last().map(|r| &r.1),
            })
        })
        .collect()
}

fn write_csv(out: &Path, arms: &[Arm], probe: &GradProbe) -> Result<()> {
    let header: Vec<String> = [
        "step",
        "test_accuracy_no_bn",
        "train_loss_no_bn",
        "test_accuracy_bn",
        "train_loss_bn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows = report::curve_rows(arms);
    report::write_csv(&out.join("depth_curves.csv"), &header, &rows)?;
    let header: Vec<String> = ["network", "step", "layer", "grad_norm"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = Vec::new();
    for (a, arm_rows) in arms.iter().zip(&probe.rows) {
        for (step, norms) in arm_rows {
            for (layer, v) in norms.iter().enumerate() {
                let tag = if a.result.batch_norm { "bn" } else { "no_bn" };
                rows.push(vec![tag.to_string(), step.to_string(), layer.to_string(), num(*v)]);
            }
        }
    }
    report::write_csv(&out.join("depth_grad_norms.csv"), &header, &rows)
}

fn grad_figure(cfg: &ExperimentConfig, arms: &[Arm], probe: &GradProbe) -> Figure {
    let all = probe
        .rows
        .iter()
        .flatten()
        .flat_map(|r| r.1.iter().copied())
        .filter(|v| *v > 0.0 && v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let mut panels = Vec::new();
    for (arm, rows) in arms.iter().zip(&probe.rows) {
        let mut p = Panel::new(
            arm.result.label.clone(),
            "training step",
            "weight gradient L2 norm (log scale)",
        );
        p.x_ticks = Ticks::Thousands;
        p.log_y = true;
        p.y_range = lo.is_finite().then_some((lo / 2.0, hi * 2.0));
        let layers = rows.first().map_or(0, |r| r.1.len());
        for l in 0..layers {
            let pts = rows.iter().map(|r| (r.0 as f64, r.1[l])).collect();
            let name = if l + 1 == layers {
                "output layer".to_string()
            } else {
                format!("hidden layer {}", l + 1)
            };
            let show = l == 0 || l + 1 == layers || l + 2 == layers || l == layers / 2;
            let mut s = Series::new(
                if show { name } else { String::new() },
                Rgb::ramp(l as f64 / (layers.max(2) - 1) as f64),
                pts,
            );
            s.width = if show { 3 } else { 2 };
            p.series.push(s);
        }
        panels.push(p);
    }
    Figure::new(
        format!(
            "Gradient norms per layer, {} sigmoid layers: without BN (left), with BN (right)",
            cfg.depth
        ),
        panels,
    )
}

fn accuracy_figure(cfg: &ExperimentConfig, arms: &[Arm]) -> Figure {
    let mut p = Panel::new(
        format!("Test accuracy, {} hidden sigmoid layers", cfg.depth),
        "training step",
        "test accuracy (%)",
    );
    p.x_ticks = Ticks::Thousands;
    p.y_ticks = Ticks::Percent;
    p.y_range = Some((0.0, 1.0));
    for (arm, c) in arms.iter().zip([WITHOUT_BN, WITH_BN]) {
        let pts = arm
            .result
            .curve
            .iter()
            .map(|q| (q.step as f64, q.test_accuracy))
            .collect();
        p.series.push(Series::new(arm.result.label.clone(), c, pts).width(3));
    }
    Figure::new("", vec![p])
}

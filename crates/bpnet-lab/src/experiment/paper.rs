//! The paper's experiment (Ioffe & Szegedy 2015, section 4.1, Figure 1):
//! the 784-100-100-100-10 sigmoid network with and without BN; test accuracy,
//! and the 15th, 50th and 85th percentiles of the input to one sigmoid of the
//! last hidden layer over a fixed batch of test images.

use super::lockstep::{self, Arm, Probe, last_hidden_input};
use super::report::{self, Section, num, para};
use super::{ExperimentConfig, Mnist, save};
use crate::plot::{Figure, Panel, Series, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::{Error, Result};
use bpnet::tensor::Matrix;
use bpnet::train::diagnostics::percentiles;
use serde_json::{Value, json};
use std::path::Path;

/// The percentiles recorded, as in the paper.
pub const QUANTILES: [f64; 3] = [15.0, 50.0, 85.0];

/// Records the percentiles of one unit's input at every evaluation.
pub struct PercentileProbe {
    x: Matrix<f32>,
    unit: usize,
    /// Per arm, per evaluation: `(step, [p15, p50, p85])`.
    pub rows: Vec<Vec<(usize, [f64; 3])>>,
}

impl PercentileProbe {
    /// Follows `unit` of the last hidden layer over the first `rows` test images.
    pub fn new(test: &bpnet::data::Dataset, rows: usize, unit: usize, arms: usize) -> Self {
        let idx: Vec<usize> = (0..rows.min(test.len())).collect();
        PercentileProbe {
            x: test.subset(&idx).features,
            unit,
            rows: vec![Vec::new(); arms],
        }
    }
}

impl Probe for PercentileProbe {
    fn at_eval(&mut self, step: usize, arms: &mut [Arm]) -> Result<()> {
        for (arm, rows) in arms.iter_mut().zip(&mut self.rows) {
            let pre = last_hidden_input(&mut arm.trainer.model, &self.x)?;
            if self.unit >= pre.cols() {
                return Err(Error::config(
                    "unit",
                    format!("{} is not a unit of a last hidden layer of {}", self.unit, pre.cols()),
                ));
            }
            let col: Vec<f64> = (0..pre.rows()).map(|r| pre.get(r, self.unit) as f64).collect();
            let p = percentiles(&col, &QUANTILES).unwrap_or_else(|| vec![f64::NAN; 3]);
            rows.push((step, [p[0], p[1], p[2]]));
        }
        Ok(())
    }
}

/// Runs the study; writes `paper_curves.csv` and the figures.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut arms = vec![
        Arm::new("without BN", &cfg.paper_spec(false), cfg.lr, cfg.seed)?,
        Arm::new("with BN", &cfg.paper_spec(true), cfg.lr, cfg.seed)?,
    ];
    let mut probe = PercentileProbe::new(&data.test, cfg.probe_rows, cfg.unit, arms.len());
    lockstep::run(&mut arms, data, &cfg.plan(), &mut probe, log)?;
    if data.writes() {
        write_curves(out, &arms, &probe)?;
    }
    let figs = figures(cfg, &arms, &probe)?;
    let mut files = Vec::new();
    for (stem, fig) in &figs {
        files.push(save(data, fig, out, stem)?);
    }
    let steps = cfg.table_steps();
    let results: Vec<_> = arms.iter().map(|a| &a.result).collect();
    let table = report::table(
        &report::accuracy_head(&steps)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        &report::accuracy_rows(&results, &steps),
    );
    let mut html = para(&format!(
        "The paper's network: 784-100-100-100-10, sigmoid hidden units, softmax cross-entropy, weights from N(0, {}^2), plain SGD at learning rate {} on mini-batches of {}, {} steps. With BN, each hidden Dense layer (without bias) is followed by batch normalization before its sigmoid. Test accuracy in evaluation mode (BN with running statistics) every {} steps on {} test images.",
        cfg.init_std,
        cfg.lr,
        cfg.batch_size,
        cfg.steps,
        cfg.eval_every,
        data.test.len()
    ));
    html += &report::figure(
        &files[0],
        "Figure 1(a): test accuracy against training steps, with and without BN.",
    )?;
    html += &table;
    html += &para(&format!(
        "Figure 1(b, c): the 15th, 50th and 85th percentiles of the input to sigmoid unit {} of the last hidden layer, over a fixed batch of the first {} test images (network in evaluation mode).",
        cfg.unit,
        probe.x.rows()
    ));
    html += &report::figure(
        &files[1],
        "Figure 1(b): without BN, the sigmoid's input distribution drifts over training.",
    )?;
    html += &report::figure(&files[2], "Figure 1(c): with BN, it stays steady.")?;
    html += &report::figure(&files[3], "Figure 1 (a, b, c) side by side.")?;
    let summary = summary(cfg, &arms, &probe);
    Ok((
        Section {
            id: "paper".into(),
            title: "The paper's experiment (Figure 1)".into(),
            html,
        },
        summary,
    ))
}

fn summary(cfg: &ExperimentConfig, arms: &[Arm], probe: &PercentileProbe) -> Value {
    let per_arm: Vec<Value> = arms
        .iter()
        .zip(&probe.rows)
        .map(|(a, rows)| {
            let at: serde_json::Map<String, Value> = cfg
                .table_steps()
                .iter()
                .map(|&s| (s.to_string(), json!(a.result.accuracy_at(s))))
                .collect();
            let pcts = |i: usize| rows.get(i).map(|r| r.1);
            json!({
                "label": a.result.label, "batch_norm": a.result.batch_norm, "lr": a.result.lr,
                "accuracy_at": at, "final_accuracy": a.result.final_accuracy(),
                "first_step_95": a.result.first_reaching(0.95), "first_step_97": a.result.first_reaching(0.97),
                "diverged_at": a.result.diverged_at,
                "sigmoid_input_percentiles_15_50_85": { "start": pcts(0), "end": pcts(rows.len().saturating_sub(1)) },
            })
        })
        .collect();
    json!({ "unit": cfg.unit, "networks": per_arm })
}

fn write_curves(out: &Path, arms: &[Arm], probe: &PercentileProbe) -> Result<()> {
    let mut header = vec!["step".to_string()];
    for tag in ["no_bn", "bn"] {
        for col in ["test_accuracy", "train_loss", "p15", "p50", "p85"] {
            header.push(format!("{col}_{tag}"));
        }
    }
    let rows: Vec<Vec<String>> = (0..arms[0].result.curve.len())
        .map(|i| {
            let mut row = vec![arms[0].result.curve[i].step.to_string()];
            for (arm, pr) in arms.iter().zip(&probe.rows) {
                let p = arm.result.curve[i];
                row.push(num(p.test_accuracy));
                row.push(num(p.train_loss));
                row.extend(pr[i].1.iter().map(|&v| num(v)));
            }
            row
        })
        .collect();
    report::write_csv(&out.join("paper_curves.csv"), &header, &rows)
}

/// The lower end of an accuracy axis: 70% as in the paper, lower when a
/// network stays below it after the first tenth of training.
pub fn accuracy_floor(arms: &[&super::ArmResult], steps: usize) -> f64 {
    let low = arms
        .iter()
        .flat_map(|a| a.curve.iter().filter(|p| p.step * 10 >= steps).map(|p| p.test_accuracy))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::min);
    if low >= 0.7 { 0.7 } else { (low * 10.0).floor() / 10.0 }
}

fn figures(cfg: &ExperimentConfig, arms: &[Arm], probe: &PercentileProbe) -> Result<Vec<(&'static str, Figure)>> {
    let colors = [WITHOUT_BN, WITH_BN];
    let mut acc = Panel::new("(a) Test accuracy", "training step", "test accuracy (%)");
    acc.x_ticks = Ticks::Thousands;
    acc.y_ticks = Ticks::Percent;
    let results: Vec<_> = arms.iter().map(|a| &a.result).collect();
    acc.y_range = Some((accuracy_floor(&results, cfg.steps), 1.0));
    for (arm, &c) in arms.iter().zip(&colors) {
        let pts = arm
            .result
            .curve
            .iter()
            .map(|p| (p.step as f64, p.test_accuracy))
            .collect();
        acc.series.push(Series::new(arm.result.label.clone(), c, pts).width(3));
    }
    let all = probe.rows.iter().flatten().flat_map(|r| r.1).filter(|v| v.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let pad = ((hi - lo) * 0.08).max(0.1);
    let titles = ["(b) Sigmoid input without BN", "(c) Sigmoid input with BN"];
    let mut panels = Vec::new();
    for (rows, (&c, title)) in probe.rows.iter().zip(colors.iter().zip(titles)) {
        let mut p = Panel::new(title, "training step", format!("input to sigmoid unit {}", cfg.unit));
        p.x_ticks = Ticks::Thousands;
        p.y_range = lo.is_finite().then_some((lo - pad, hi + pad));
        for (k, name) in ["85th percentile", "50th percentile (median)", "15th percentile"]
            .iter()
            .enumerate()
        {
            let q = 2 - k;
            let pts = rows.iter().map(|r| (r.0 as f64, r.1[q])).collect();
            let s = Series::new(*name, c, pts);
            p.series.push(if q == 1 { s.width(3) } else { s.dashed() });
        }
        panels.push(p);
    }
    let title = "Figure 1 after Ioffe & Szegedy (2015): MNIST, 784-100-100-100-10 sigmoid network";
    let mut combined = Figure::new(title, vec![acc.clone(), panels[0].clone(), panels[1].clone()]);
    combined.panel_width = 660;
    Ok(vec![
        ("fig1a_test_accuracy", Figure::new("", vec![acc])),
        (
            "fig1b_sigmoid_input_without_bn",
            Figure::new("", vec![panels[0].clone()]),
        ),
        ("fig1c_sigmoid_input_with_bn", Figure::new("", vec![panels[1].clone()])),
        ("fig1_combined", combined),
    ])
}

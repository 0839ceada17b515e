//! The learning-rate study: the paper's network at the base learning rate
//! times each multiplier (1, 5, 30 by default), with and without BN, all on
//! the same batches. Without BN the larger rates stall or diverge; with BN
//! they still train (the paper's BN-x5 and BN-x30 idea, on MNIST).

use super::lockstep::{self, Arm, NoProbe};
use super::report::{self, Section, para, pct, step_or_never};
use super::{ExperimentConfig, Mnist, save};
use crate::plot::{Figure, Panel, Series, Ticks, WITH_BN, WITHOUT_BN};
use bpnet::error::Result;
use serde_json::{Value, json};
use std::path::Path;

/// Runs the study; writes `lr_curves.csv` and `lr_study.{png,svg}`.
pub fn run(cfg: &ExperimentConfig, data: &Mnist, out: &Path, log: &mut dyn FnMut(&str)) -> Result<(Section, Value)> {
    let mut arms = Vec::new();
    for &bn in &[false, true] {
        for &m in &cfg.lr_multipliers {
            let label = format!("{} x{m}", if bn { "BN" } else { "no BN" });
            arms.push(Arm::new(label, &cfg.paper_spec(bn), cfg.lr * m, cfg.seed)?);
        }
    }
    lockstep::run(&mut arms, data, &cfg.plan(), &mut NoProbe, log)?;
    if data.writes() {
        write_curves(out, &arms)?;
    }
    let files = save(data, &figure(cfg, &arms), out, "lr_study")?;
    let (head, rows) = table(&arms);
    let mut html = para(&format!(
        "The paper's network at the base learning rate {} times {}, with and without BN, {} steps each on the same batches. A network diverges when its training loss stops being finite (training stops there).",
        cfg.lr,
        cfg.lr_multipliers
            .iter()
            .map(|m| format!("{m}"))
            .collect::<Vec<_>>()
            .join(", "),
        cfg.steps
    ));
    html += &report::figure(
        &files,
        "Test accuracy at each learning rate, without BN (left) and with BN (right).",
    )?;
    html += &report::table(&head, &rows);
    let summary: Vec<Value> = arms.iter().map(|a| arm_summary(&a.result)).collect();
    let section = Section {
        id: "lr".into(),
        title: "Learning rates".into(),
        html,
    };
    Ok((section, json!({ "networks": summary })))
}

/// The study's table: head and one row per network.
fn table(arms: &[Arm]) -> ([&'static str; 7], Vec<Vec<String>>) {
    let rows: Vec<Vec<String>> = arms
        .iter()
        .map(|a| {
            let r = &a.result;
            vec![
                r.label.clone(),
                format!("{}", r.lr),
                pct(r.final_accuracy()),
                pct(r.best_accuracy()),
                step_or_never(r.first_reaching(0.95)),
                step_or_never(r.first_reaching(0.97)),
                r.diverged_at.map_or_else(|| "no".into(), |s| format!("at step {s}")),
            ]
        })
        .collect();
    let head = [
        "network",
        "learning rate",
        "final accuracy",
        "best accuracy",
        "first step at 95%",
        "first step at 97%",
        "diverged",
    ];
    (head, rows)
}

fn arm_summary(r: &super::ArmResult) -> Value {
    json!({
        "label": r.label, "batch_norm": r.batch_norm, "lr": r.lr,
        "final_accuracy": r.final_accuracy(), "best_accuracy": r.best_accuracy(),
        "first_step_95": r.first_reaching(0.95), "first_step_97": r.first_reaching(0.97),
        "diverged_at": r.diverged_at,
    })
}

fn write_curves(out: &Path, arms: &[Arm]) -> Result<()> {
    let mut header = vec!["step".to_string()];
    for a in arms {
        let tag = a.result.label.replace(' ', "_");
        header.push(format!("test_accuracy_{tag}"));
        header.push(format!("train_loss_{tag}"));
    }
    let rows = report::curve_rows(arms);
    report::write_csv(&out.join("lr_curves.csv"), &header, &rows)
}

fn figure(cfg: &ExperimentConfig, arms: &[Arm]) -> Figure {
    let mut panels = Vec::new();
    for (bn, base, title) in [(false, WITHOUT_BN, "Without BN"), (true, WITH_BN, "With BN")] {
        let mut p = Panel::new(title, "training step", "test accuracy (%)");
        p.x_ticks = Ticks::Thousands;
        p.y_ticks = Ticks::Percent;
        p.y_range = Some((0.0, 1.0));
        let group: Vec<&Arm> = arms.iter().filter(|a| a.result.batch_norm == bn).collect();
        let n = group.len().max(2) as f64 - 1.0;
        for (i, a) in group.iter().enumerate() {
            // Darkest for the base rate, lighter for larger multipliers.
            let color = base.darken(0.25).lighten(0.6 * i as f64 / n);
            let pts = a
                .result
                .curve
                .iter()
                .map(|p| (p.step as f64, p.test_accuracy))
                .collect();
            let mut label = format!(
                "lr {} (x{})",
                a.result.lr,
                cfg.lr_multipliers.get(i).copied().unwrap_or(1.0)
            );
            if let Some(s) = a.result.diverged_at {
                label += &format!(", diverged at step {s}");
            }
            let s = Series::new(label, color, pts).width(3);
            p.series.push(if i == 1 { s.dashed() } else { s });
        }
        panels.push(p);
    }
    let times: Vec<String> = cfg.lr_multipliers.iter().map(|m| format!("x{m}")).collect();
    Figure::new(
        format!("Learning rates {}: test accuracy without and with BN", times.join(", ")),
        panels,
    )
}

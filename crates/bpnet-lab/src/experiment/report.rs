//! The experiments' outputs: CSV files, HTML fragments (figures embedded as
//! base64 PNG, tables), and the self-contained `report.html` with
//! `config.json` and `results.json` beside it.

use super::{ArmResult, ExperimentConfig, Mnist, StudyOutput};
use crate::plot::FigureFiles;
use bpnet::error::{Error, Result};
use bpnet::io::write_atomic;
use serde_json::json;
use std::path::Path;

/// One study's part of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Anchor id, e.g. `paper`.
    pub id: String,
    /// Heading.
    pub title: String,
    /// Body HTML (paragraphs, figures, tables).
    pub html: String,
}

/// `s` with `& < > " '` escaped for HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, with `=` padding) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A `<figure>` embedding the PNG of `files` (read back from disk), with
/// `caption` and links to the PNG and SVG files (relative to the report);
/// empty for files this process did not write.
pub fn figure(files: &FigureFiles, caption: &str) -> Result<String> {
    if !files.written {
        return Ok(String::new());
    }
    let png = std::fs::read(&files.png).map_err(|source| Error::Io {
        path: files.png.clone(),
        source,
    })?;
    let name = |p: &Path| {
        p.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    };
    let (png_name, svg_name) = (escape(&name(&files.png)), escape(&name(&files.svg)));
    Ok(format!(
        "<figure>\n<img src=\"data:image/png;base64,{}\" alt=\"{}\">\n<figcaption>{} <span class=\"files\">(<a href=\"{png_name}\">PNG</a>, <a href=\"{svg_name}\">SVG</a>)</span></figcaption>\n</figure>\n",
        base64(&png),
        escape(caption),
        escape(caption),
    ))
}

/// An HTML table; cells are escaped.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table>\n<thead><tr>");
    for h in head {
        s += &format!("<th>{}</th>", escape(h));
    }
    s += "</tr></thead>\n<tbody>\n";
    for row in rows {
        s += "<tr>";
        for c in row {
            s += &format!("<td>{}</td>", escape(c));
        }
        s += "</tr>\n";
    }
    s + "</tbody>\n</table>\n"
}

/// A paragraph of escaped text.
pub fn para(text: &str) -> String {
    format!("<p>{}</p>\n", escape(text))
}

/// `0.9712` -> `97.12%`; NaN -> `-`.
pub fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", 100.0 * v)
    } else {
        "-".into()
    }
}

/// A step count, or `not reached`.
pub fn step_or_never(s: Option<usize>) -> String {
    s.map_or_else(|| "not reached".into(), |s| s.to_string())
}

/// Rows of the accuracy table: per arm, test accuracy at each of `steps`,
/// then the first evaluated step reaching 95% and 97%.
pub fn accuracy_rows(arms: &[&ArmResult], steps: &[usize]) -> Vec<Vec<String>> {
    arms.iter()
        .map(|a| {
            let mut row = vec![a.label.clone()];
            row.extend(steps.iter().map(|&s| a.accuracy_at(s).map_or("-".into(), pct)));
            row.push(step_or_never(a.first_reaching(0.95)));
            row.push(step_or_never(a.first_reaching(0.97)));
            row
        })
        .collect()
}

/// The head of [`accuracy_rows`]' table.
pub fn accuracy_head(steps: &[usize]) -> Vec<String> {
    let mut head = vec!["network".to_string()];
    head.extend(steps.iter().map(|s| format!("step {s}")));
    head.push("first step at 95%".into());
    head.push("first step at 97%".into());
    head
}

/// One row per evaluation step: the step, then each arm's test accuracy and
/// training loss (all arms share the evaluation steps of the first).
pub fn curve_rows(arms: &[super::lockstep::Arm]) -> Vec<Vec<String>> {
    let Some(first) = arms.first() else { return Vec::new() };
    (0..first.result.curve.len())
        .map(|i| {
            let mut row = vec![first.result.curve[i].step.to_string()];
            for a in arms {
                row.push(num(a.result.curve[i].test_accuracy));
                row.push(num(a.result.curve[i].train_loss));
            }
            row
        })
        .collect()
}

/// Writes a CSV file from a header line and rows of already formatted cells.
pub fn write_csv(path: &Path, header: &[String], rows: &[Vec<String>]) -> Result<()> {
    let mut s = header.join(",") + "\n";
    for r in rows {
        s += &r.join(",");
        s += "\n";
    }
    write_atomic(path, s.as_bytes())
}

/// A number for CSV: empty when not finite.
pub fn num(v: f64) -> String {
    if v.is_finite() { format!("{v}") } else { String::new() }
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}\
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.95em;color:#444}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:right}\
th:first-child,td:first-child{text-align:left}thead{background:#f0f0f0}pre{background:#f6f6f6;padding:.8em;overflow:auto}\
code{background:#f2f2f2;padding:0 .2em}";

/// Writes `config.json`, `results.json` and `report.html` into `out`.
pub fn write_all(
    out: &Path,
    cfg: &ExperimentConfig,
    data: &Mnist,
    command: &str,
    outputs: &[StudyOutput],
) -> Result<()> {
    let config = json!({
        "command": command,
        "bpnet_version": env!("CARGO_PKG_VERSION"),
        "config": cfg,
        "train_rows": data.train.len(),
        "test_rows": data.test.len(),
        "ranks": data.ranks.size(),
    });
    let results: serde_json::Map<String, serde_json::Value> = outputs
        .iter()
        .map(|o| (o.study.name().to_string(), o.summary.clone()))
        .collect();
    let text = |v: &serde_json::Value| serde_json::to_string_pretty(v).map_err(|e| Error::State(e.to_string()));
    let config_text = text(&config)?;
    write_atomic(&out.join("config.json"), config_text.as_bytes())?;
    write_atomic(
        &out.join("results.json"),
        text(&serde_json::Value::Object(results))?.as_bytes(),
    )?;
    let mut body = String::new();
    body += "<h1>What batch normalization does: MNIST experiments</h1>\n";
    body += &para(&format!(
        "Networks trained by bpnet {} on MNIST ({} training and {} test images), after Ioffe & Szegedy (2015), \"Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift\", section 4.1. Within each study the networks start from the same seed and see the same mini-batches in the same order. Rerunning the command below gives the same numbers.",
        env!("CARGO_PKG_VERSION"),
        data.train.len(),
        data.test.len()
    ));
    body += "<nav><ul>\n";
    for o in outputs {
        body += &format!(
            "<li><a href=\"#{}\">{}</a></li>\n",
            o.section.id,
            escape(&o.section.title)
        );
    }
    body += "<li><a href=\"#config\">Configuration and reproducibility</a></li>\n</ul></nav>\n";
    for o in outputs {
        body += &format!(
            "<section id=\"{}\">\n<h2>{}</h2>\n{}</section>\n",
            o.section.id,
            escape(&o.section.title),
            o.section.html
        );
    }
    body += &config_section(command, &config_text, outputs);
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>bpnet: batch normalization experiments</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    );
    write_atomic(&out.join("report.html"), page.as_bytes())
}

fn config_section(command: &str, config_text: &str, outputs: &[StudyOutput]) -> String {
    let mut s = String::from("<section id=\"config\">\n<h2>Configuration and reproducibility</h2>\n");
    s += &format!("<p>Command: <code>{}</code></p>\n", escape(command));
    s += &para(
        "The full configuration, including the seed (also in config.json; the measured numbers are in results.json):",
    );
    s += &format!("<pre>{}</pre>\n", escape(config_text));
    let rows: Vec<Vec<String>> = outputs
        .iter()
        .map(|o| vec![o.section.title.clone(), format!("{:.1} s", o.seconds)])
        .collect();
    s += &para(
        "Wall time of each study on the machine that ran it (this varies between runs; the other numbers do not):",
    );
    s += &table(&["study", "wall time"], &rows);
    s + "</section>\n"
}

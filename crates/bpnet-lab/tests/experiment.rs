//! The experiments end to end at a tiny size (every study, every file), the
//! HTML report's validity and references, reproducibility with a seed, and
//! the report helpers against hand-computed values.

use bpnet_lab::experiment::report::{accuracy_rows, base64, escape};
use bpnet_lab::experiment::{ArmResult, EvalPoint, ExperimentConfig, Mnist, Study, run};
use std::path::Path;
use std::sync::OnceLock;

/// A tiny configuration: 1,200 training and 300 test images, 60 steps.
fn tiny() -> ExperimentConfig {
    ExperimentConfig {
        steps: 60,
        eval_every: 20,
        probe_rows: 50,
        train_limit: 1200,
        test_limit: 300,
        depth: 4,
        population_batches: 5,
        ..ExperimentConfig::quick()
    }
}

fn data() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| Mnist::load(&tiny()).unwrap())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks that every element is closed in order (void elements excepted)
/// and returns the values of every `href` and `src` attribute.
fn check_html(html: &str) -> Vec<String> {
    const VOID: [&str; 6] = ["meta", "img", "br", "hr", "link", "input"];
    assert!(html.starts_with("<!DOCTYPE html>"));
    let mut stack: Vec<String> = Vec::new();
    let mut refs = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') {
            continue;
        }
        for attr in ["href=\"", "src=\""] {
            if let Some(i) = tag.find(attr) {
                let v = &tag[i + attr.len()..];
                refs.push(v[..v.find('"').expect("unterminated attribute")].to_string());
            }
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(closing) = tag.strip_prefix('/') {
            let top = stack
                .pop()
                .unwrap_or_else(|| panic!("</{closing}> without an open element"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
        } else if !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    refs
}

#[test]
fn every_study_runs_end_to_end_and_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let cfg = tiny();
    let outputs = run(
        &Study::ALL,
        &cfg,
        data(),
        out,
        "bpnet experiment all (test)",
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(outputs.len(), 4);
    let mut expected = vec!["report.html", "config.json", "results.json"];
    expected.extend([
        "paper_curves.csv",
        "lr_curves.csv",
        "depth_curves.csv",
        "depth_grad_norms.csv",
        "population_curves.csv",
    ]);
    let figures = [
        "fig1a_test_accuracy",
        "fig1b_sigmoid_input_without_bn",
        "fig1c_sigmoid_input_with_bn",
        "fig1_combined",
        "lr_study",
        "depth_grad_norms",
        "depth_accuracy",
        "population",
    ];
    let fig_files: Vec<String> = figures
        .iter()
        .flat_map(|f| [format!("{f}.png"), format!("{f}.svg")])
        .collect();
    for f in expected.iter().copied().chain(fig_files.iter().map(String::as_str)) {
        let p = out.join(f);
        assert!(p.is_file() && std::fs::metadata(&p).unwrap().len() > 0, "missing {f}");
    }
    // Evaluations at 0, 20, 40, 60: four rows under the header in each curve file.
    let curves = read(&out.join("paper_curves.csv"));
    let lines: Vec<&str> = curves.lines().collect();
    assert_eq!(
        lines[0],
        "step,test_accuracy_no_bn,train_loss_no_bn,p15_no_bn,p50_no_bn,p85_no_bn,test_accuracy_bn,train_loss_bn,p15_bn,p50_bn,p85_bn"
    );
    assert_eq!(lines.len(), 5);
    for line in &lines[1..] {
        let cells: Vec<f64> = line.split(',').skip(3).take(3).map(|c| c.parse().unwrap()).collect();
        assert!(
            cells[0] <= cells[1] && cells[1] <= cells[2],
            "percentiles out of order: {line}"
        );
    }
    assert_eq!(read(&out.join("lr_curves.csv")).lines().count(), 5);
    // Depth 4: five Dense layers per network, three windows after step 0.
    assert_eq!(read(&out.join("depth_grad_norms.csv")).lines().count(), 1 + 2 * 3 * 5);
    let results: serde_json::Value = serde_json::from_str(&read(&out.join("results.json"))).unwrap();
    assert_eq!(results["population"]["identical_weights"], true);
    assert_eq!(results["population"]["population_batches"], 5);
    let paper = &results["paper"]["networks"];
    assert_eq!(paper[1]["label"], "with BN");
    let acc = paper[1]["final_accuracy"].as_f64().unwrap();
    assert!(acc > 0.5, "60 steps with BN should be far above chance: {acc}");
    let config: serde_json::Value = serde_json::from_str(&read(&out.join("config.json"))).unwrap();
    assert_eq!(config["config"]["seed"], cfg.seed);
    assert_eq!(config["train_rows"], 1200);
}

#[test]
fn the_report_is_valid_html_and_references_existing_figures() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    run(
        &[Study::Paper],
        &tiny(),
        data(),
        out,
        "bpnet experiment bn-mnist --seed 1",
        &mut |_| {},
    )
    .unwrap();
    let html = read(&out.join("report.html"));
    let refs = check_html(&html);
    let (mut embedded, mut linked) = (0, 0);
    for r in &refs {
        if let Some(b64) = r.strip_prefix("data:image/png;base64,") {
            // base64 of the PNG signature \x89PNG\r\n\x1a\n.
            assert!(b64.starts_with("iVBORw0KGgo"), "not a PNG: {}", &b64[..20]);
            embedded += 1;
        } else if !r.starts_with('#') {
            assert!(out.join(r).is_file(), "report links to missing {r}");
            linked += 1;
        }
    }
    assert_eq!(
        embedded, 4,
        "Figure 1(a), (b), (c) and the combined figure are embedded"
    );
    assert_eq!(linked, 8, "each figure links its PNG and SVG");
    for text in [
        "first step at 95%",
        "step 60",
        "bpnet experiment bn-mnist --seed 1",
        "\"seed\": 1",
        "N(0, 0.01^2)",
    ] {
        assert!(html.contains(&escape(text)), "report lacks {text}");
    }
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    let cfg = ExperimentConfig {
        steps: 30,
        eval_every: 10,
        ..tiny()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for d in [&a, &b] {
        run(&[Study::Paper], &cfg, data(), d.path(), "test", &mut |_| {}).unwrap();
    }
    for f in ["paper_curves.csv", "results.json"] {
        assert_eq!(
            read(&a.path().join(f)),
            read(&b.path().join(f)),
            "{f} differs between identical runs"
        );
    }
    let c = tempfile::tempdir().unwrap();
    run(
        &[Study::Paper],
        &ExperimentConfig { seed: 2, ..cfg },
        data(),
        c.path(),
        "test",
        &mut |_| {},
    )
    .unwrap();
    assert_ne!(
        read(&a.path().join("paper_curves.csv")),
        read(&c.path().join("paper_curves.csv"))
    );
}

#[test]
fn base64_and_escaping_match_the_standards() {
    // RFC 4648 section 10 test vectors.
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
    assert_eq!(escape("a<b & \"c\" 'd'>"), "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
}

#[test]
fn accuracy_table_and_threshold_steps() {
    let pt = |step, acc| EvalPoint {
        step,
        test_accuracy: acc,
        train_loss: 0.1,
    };
    let arm = ArmResult {
        label: "with BN".into(),
        batch_norm: true,
        lr: 0.5,
        diverged_at: None,
        curve: vec![
            pt(0, 0.1),
            pt(500, 0.94),
            pt(1000, 0.955),
            pt(1500, 0.975),
            pt(2000, 0.97),
        ],
    };
    assert_eq!(arm.first_reaching(0.95), Some(1000));
    assert_eq!(arm.first_reaching(0.97), Some(1500));
    assert_eq!(arm.first_reaching(0.99), None);
    assert_eq!(arm.accuracy_at(1500), Some(0.975));
    assert_eq!(arm.final_accuracy(), 0.97);
    assert_eq!(arm.best_accuracy(), 0.975);
    let rows = accuracy_rows(&[&arm], &[1000, 2000, 5000]);
    assert_eq!(rows[0], ["with BN", "95.50%", "97.00%", "-", "1000", "1500"]);
}

#[test]
fn table_steps_and_validation() {
    let full = ExperimentConfig::default();
    assert_eq!(full.table_steps(), [1_000, 5_000, 10_000, 20_000, 50_000]);
    assert_eq!(ExperimentConfig::quick().table_steps(), [1_000, 5_000]);
    assert_eq!(tiny().table_steps(), [60]);
    for bad in [
        ExperimentConfig {
            batch_size: 1,
            ..tiny()
        },
        ExperimentConfig { lr: 0.0, ..tiny() },
        ExperimentConfig {
            lr_multipliers: vec![],
            ..tiny()
        },
    ] {
        assert!(bad.validate().is_err());
    }
    let dir = tempfile::tempdir().unwrap();
    let err = run(
        &[Study::Paper],
        &ExperimentConfig { unit: 100, ..tiny() },
        data(),
        dir.path(),
        "",
        &mut |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("unit"), "{err}");
}

#[test]
fn the_lr_figure_is_titled_by_the_multipliers_run() {
    // It said "x1, x5, x30" whatever --lr-multipliers gave.
    let dir = tempfile::tempdir().unwrap();
    let cfg = ExperimentConfig {
        lr_multipliers: vec![2.0, 3.5],
        ..tiny()
    };
    run(&[Study::LearningRate], &cfg, data(), dir.path(), "test", &mut |_| {}).unwrap();
    let svg = read(&dir.path().join("lr_study.svg"));
    assert!(
        svg.contains("Learning rates x2, x3.5: test accuracy"),
        "title not found"
    );
    assert!(!svg.contains("x30"));
}

/// config.json records the probe's rows as followed: all the test images
/// where fewer than `probe_rows` are loaded (it recorded the rows asked
/// for, 1,000 of 300), and the rows asked for where there are enough.
#[test]
fn config_json_records_the_probe_rows_followed() {
    for (asked, recorded) in [(1000, 300), (40, 40)] {
        let cfg = ExperimentConfig {
            steps: 10,
            eval_every: 10,
            probe_rows: asked,
            ..tiny()
        };
        let d = tempfile::tempdir().unwrap();
        run(&[Study::Paper], &cfg, data(), d.path(), "test", &mut |_| {}).unwrap();
        let config: serde_json::Value = serde_json::from_str(&read(&d.path().join("config.json"))).unwrap();
        assert_eq!(config["config"]["probe_rows"], recorded, "{config}");
        assert_eq!(config["test_rows"], 300);
    }
}

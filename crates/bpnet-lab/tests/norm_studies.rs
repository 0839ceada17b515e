//! The normalization studies end to end at a tiny size: every file written,
//! the report and results, and what must hold whatever the training does:
//! layer normalization and no normalization compute the same function in
//! training and evaluation mode (gap exactly 0), batch normalization does
//! not; without dropout there is no train/eval gap in the dropout study's
//! third arm either.

use bpnet_lab::experiment::{ExperimentConfig, Mnist, Study, run};
use serde_json::Value;

fn tiny() -> ExperimentConfig {
    ExperimentConfig {
        steps: 40,
        train_limit: 400,
        test_limit: 200,
        seeds: 2,
        batch_sizes: vec![2, 16],
        ghost_size: 4,
        lr_range: vec![0.1, 1.0, 1000.0],
        ..ExperimentConfig::quick()
    }
}

#[test]
fn normalization_studies_run_end_to_end() {
    let cfg = tiny();
    let data = Mnist::load(&cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outputs = run(&Study::NORM, &cfg, &data, dir.path(), "test", &mut |_| {}).unwrap();
    assert_eq!(outputs.len(), 4);
    for s in Study::NORM {
        for f in s.files() {
            let p = dir.path().join(&f);
            assert!(p.metadata().map(|m| m.len() > 50).unwrap_or(false), "{f} missing");
        }
    }
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for id in ["batch-size", "placement", "dropout-bn", "lr-range"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "section {id}");
    }
    let results: Value = serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();

    // Batch size: one cell per batch size and seed; LN and none have no gap.
    let arms = results["batch-size"]["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 5);
    for arm in arms {
        let name = arm["norm"].as_str().unwrap();
        for cell in arm["cells"].as_array().unwrap() {
            let gaps: Vec<f64> = serde_json::from_value(cell["train_eval_gap"].clone()).unwrap();
            let accs: Vec<f64> = serde_json::from_value(cell["test_accuracy"].clone()).unwrap();
            assert_eq!((gaps.len(), accs.len()), (2, 2));
            assert!(accs.iter().all(|a| (0.0..=1.0).contains(a)));
            match name {
                "LayerNorm" | "none" => assert!(gaps.iter().all(|g| *g == 0.0), "{name}: {gaps:?}"),
                "BN" => assert!(gaps.iter().all(|g| *g > 0.0), "{name}: {gaps:?}"),
                _ => {}
            }
        }
    }
    // Ghost BN of virtual batches of 4 at batch 2 (one virtual batch) is BN:
    // the same cell, the gap's bits included; at batch 16 (four) it is not.
    let arm = |norm: &str| arms.iter().find(|a| a["norm"] == norm).unwrap()["cells"].clone();
    let (bn, ghost) = (arm("BN"), arm("Ghost BN"));
    assert_eq!(bn[0], ghost[0], "batch 2");
    assert_ne!(bn[1]["train_eval_gap"], ghost[1]["train_eval_gap"], "batch 16");
    // Dropout: three BN layers measured; no dropout, no gap from dropout.
    let d = results["dropout-bn"]["arms"].as_array().unwrap();
    assert_eq!(d.len(), 3);
    let shift: Vec<Vec<f64>> = serde_json::from_value(d[0]["variance_shift"].clone()).unwrap();
    assert!(
        shift
            .iter()
            .all(|s| s.len() == 3 && s.iter().all(|v| v.is_finite() && *v > 0.0))
    );
    // Placement: three activations x three placements.
    let p = results["placement"]["activations"].as_array().unwrap();
    assert_eq!(p.len(), 3);
    assert!(p.iter().all(|a| a["placements"].as_array().unwrap().len() == 3));
    // Learning-rate range: every rate for both networks, lr-find inside its range.
    let nets = results["lr-range"]["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 2);
    for net in nets {
        let rates = net["rates"].as_array().unwrap();
        assert_eq!(rates.len(), 3);
        assert!(rates.iter().all(|r| r["diverged"].as_u64().unwrap() <= 2));
        if let Some(s) = net["lr_find_steepest"].as_f64() {
            assert!((1e-4..=1e3).contains(&s), "{s}");
        }
    }
}

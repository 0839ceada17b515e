//! `bpnet train --cv K` (fold scores, mean ± sd, final refit) and
//! `bpnet train --ensemble K` (one model file with K members, averaged by
//! predict, eval, inspect and export), run as the real binary.

mod common;
use common::{last_json, ok, run_in};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn iris() -> String {
    format!("{ROOT}/data/iris.csv")
}

#[test]
fn cv_reports_each_fold_and_the_mean_then_refits() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--data",
        &iris(),
        "--target",
        "species",
        "--cv",
        "3",
        "--epochs",
        "20",
        "--hidden",
        "8",
        "--seed",
        "2",
    ];
    let out = ok(dir.path(), &args);
    for fold in 1..=3 {
        assert!(out.contains(&format!("fold {fold}: score")), "{out}");
    }
    assert!(out.contains("cv: accuracy "), "{out}");
    assert!(out.contains(" ± "), "{out}");
    assert!(out.contains("refitting the final model on all training rows"), "{out}");
    assert!(dir.path().join("model.safetensors").exists());

    let mut json_args = args.to_vec();
    json_args.extend(["--json", "--quiet", "--out", "m2.safetensors"]);
    let j = last_json(&ok(dir.path(), &json_args));
    let cv = &j["cv"];
    assert_eq!(cv["k"], 3);
    assert_eq!(cv["metric"], "accuracy");
    let scores: Vec<f64> = cv["folds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 3);
    let mean = scores.iter().sum::<f64>() / 3.0;
    assert!((cv["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((cv["sd"].as_f64().unwrap() - sd).abs() < 1e-12);
    // The text run printed the same fold scores (same seed).
    assert!(out.contains(&format!("fold 1: score {:.4}", scores[0])), "{out}");
}

#[test]
fn cv_with_bad_fold_counts_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (k, needle) in [("1", "at least 2"), ("1000", "only")] {
        let out = run_in(dir.path(), &["train", "--data", &iris(), "--cv", k]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

/// Rows of `bpnet predict` output: the numeric cells (class name skipped for classifiers).
fn prediction_rows(csv: &str, skip_first: bool) -> Vec<Vec<f64>> {
    csv.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .skip(skip_first as usize)
                .map(|c| c.parse::<f64>().unwrap())
                .collect()
        })
        .collect()
}

/// Trains `--ensemble 3` and the three single networks with the same seeds
/// (no validation split, so every run sees the same rows) and checks that
/// the ensemble's predictions are the members' average.
fn ensemble_is_the_average(data: &str, extra: &[&str], classify: bool, tolerance: f64) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let common = [
        &[
            "train",
            "--data",
            data,
            "--val-split",
            "0",
            "--epochs",
            "6",
            "--hidden",
            "12",
            "--quiet",
        ][..],
        extra,
    ]
    .concat();
    let out = ok(
        d,
        &[
            &common[..],
            &["--seed", "5", "--ensemble", "3", "--out", "ens.safetensors"],
        ]
        .concat(),
    );
    assert!(out.contains("wrote ens.safetensors"), "{out}");
    let mut singles = Vec::new();
    for seed in ["5", "6", "7"] {
        let name = format!("s{seed}.safetensors");
        ok(
            d,
            &[&common[..], &["--seed", seed, "--ensemble", "1", "--out", &name]].concat(),
        );
        singles.push(prediction_rows(
            &ok(d, &["predict", "--model", &name, "--data", data]),
            classify,
        ));
    }
    let ens = prediction_rows(
        &ok(d, &["predict", "--model", "ens.safetensors", "--data", data]),
        classify,
    );
    assert_eq!(ens.len(), singles[0].len());
    let mut worst = 0.0f64;
    let mut spread = 0.0f64;
    for (r, row) in ens.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let mean = singles.iter().map(|s| s[r][c]).sum::<f64>() / 3.0;
            worst = worst.max((v - mean).abs() / mean.abs().max(1.0));
            spread = spread.max((singles[0][r][c] - singles[1][r][c]).abs());
        }
    }
    assert!(worst <= tolerance, "ensemble vs mean of members: {worst:e}");
    // The members differ, so the average is not trivially one of them.
    assert!(spread > 1e-3, "members agree to {spread:e}");
    // inspect names the ensemble; eval runs on it.
    let inspect = ok(d, &["inspect", "ens.safetensors"]);
    assert!(inspect.contains("ensemble of 3 networks"), "{inspect}");
    let eval = ok(d, &["eval", "--model", "ens.safetensors", "--data", data, "--json"]);
    assert!(last_json(&eval)["metrics"]["rows"].as_u64().unwrap() > 0);
}

#[test]
fn an_ensemble_classifier_averages_the_members_probabilities() {
    // predict prints probabilities with 6 decimals: 3 members' rounding plus the ensemble's.
    ensemble_is_the_average(&iris(), &["--target", "species"], true, 3e-6);
}

#[test]
fn an_ensemble_regressor_averages_the_members_values() {
    let diabetes = format!("{ROOT}/data/diabetes.csv");
    // Values printed in full f32 precision; averaging in standardized units
    // then mapping back differs from mapping then averaging by rounding only.
    ensemble_is_the_average(&diabetes, &[], false, 1e-5);
}

#[test]
fn bad_member_counts_fail_and_single_files_stay_single() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(
        d,
        &[
            "train",
            "--data",
            &iris(),
            "--epochs",
            "2",
            "--hidden",
            "4",
            "--ensemble",
            "2",
            "--quiet",
            "--out",
            "e.safetensors",
        ],
    );
    let out = run_in(d, &["train", "--data", &iris(), "--ensemble", "two"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ensemble"));
    // A single-model file loads as before (an ensemble of one).
    let short = ["train", "--data", &iris(), "--epochs", "2", "--hidden", "4", "--quiet"];
    ok(
        d,
        &[&short[..], &["--ensemble", "1", "--out", "one.safetensors"]].concat(),
    );
    let inspect = ok(d, &["inspect", "one.safetensors"]);
    assert!(!inspect.contains("ensemble of"), "{inspect}");
}

/// The default (`--ensemble 0`) averages 5 networks on a small table
/// trained in one process, and trains one network when checkpoints are
/// written (a run that may be resumed) or on images.
#[test]
fn the_default_is_an_ensemble_of_five_on_small_tables_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let short = ["train", "--data", &iris(), "--epochs", "2", "--hidden", "4", "--quiet"];
    for (extra, want) in [
        (&[][..], Some(5)),
        (&["--ensemble", "0"][..], Some(5)),
        (&["--ensemble", "3"][..], Some(3)),
        (&["--checkpoint-every", "1"][..], None),
    ] {
        ok(
            d,
            &[&short[..], extra, &["--out", "m.safetensors", "--overwrite"]].concat(),
        );
        let inspect = ok(d, &["inspect", "m.safetensors"]);
        match want {
            Some(k) => assert!(inspect.contains(&format!("ensemble of {k}")), "{extra:?}: {inspect}"),
            None => assert!(!inspect.contains("ensemble of"), "{extra:?}: {inspect}"),
        }
    }
    // `bench --inference` times one network: an ensemble is refused.
    ok(d, &[&short[..], &["--out", "e.safetensors"]].concat());
    let out = run_in(d, &["bench", "--inference", "--model", "e.safetensors"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is an ensemble"));
    let images = ["train", "--data", "mnist", "--limit", "600", "--steps", "3", "--quiet"];
    ok(d, &[&images[..], &["--out", "i.safetensors"]].concat());
    let inspect = ok(d, &["inspect", "i.safetensors"]);
    assert!(!inspect.contains("ensemble of"), "{inspect}");
}

//! `bpnet train --cv K` (fold scores, mean ± sd, final refit) and
//! `bpnet train --ensemble K` (one model file with K members, averaged by
//! predict, eval, inspect and export), run as the real binary.

mod common;
use common::{last_json, ok, run_in, text};

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
    // The model saved is the one `bpnet train` fits without --cv: the same
    // predictions, bit for bit.
    let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--cv" && *a != "3").collect();
    ok(dir.path(), &[&plain[..], &["--out", "plain.safetensors"]].concat());
    let predict = |model: &str, out: &str| {
        ok(
            dir.path(),
            &["predict", "--model", model, "--data", &iris(), "--output", out],
        );
        std::fs::read(dir.path().join(out)).unwrap()
    };
    assert_eq!(
        predict("model.safetensors", "cv.csv"),
        predict("plain.safetensors", "plain.csv")
    );
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

/// The header says whether folds are stratified (regression folds are
/// not: they had been called "stratified for classification"); a
/// `--batch-size` above a fold's training rows is noted on that fold (it
/// took them in one batch, silently), one at or below them is not; a
/// `--batch-size` the final fit refuses is refused before any fold runs.
#[test]
fn cv_names_its_folds_kind_and_notes_a_batch_larger_than_a_folds_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = |batch: &'static str| {
        let mut v = vec![
            "train", "--data", "IRIS", "--target", "species", "--cv", "3", "--epochs", "1",
        ];
        v.extend(["--ensemble", "1", "--batch-size", batch]);
        v
    };
    let with_iris = |v: Vec<&str>| -> Vec<String> {
        v.into_iter()
            .map(|a| if a == "IRIS" { iris() } else { a.to_string() })
            .collect()
    };
    let args = with_iris(base("91"));
    let out = ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.contains("cross-validation: 3 folds (stratified by class, seed 0)"),
        "{out}"
    );
    for fold in 1..=3 {
        assert!(
            out.contains(&format!(
                "note: --batch-size 91 is larger than fold {fold}'s 90 training rows (after its validation split): one batch of 90 per epoch"
            )),
            "{out}"
        );
    }
    let mut json_args = args.clone();
    json_args.extend([
        "--json".into(),
        "--quiet".into(),
        "--out".into(),
        "j.safetensors".into(),
    ]);
    let j = last_json(&ok(d, &json_args.iter().map(String::as_str).collect::<Vec<_>>()));
    for f in j["cv"]["folds"].as_array().unwrap() {
        assert_eq!(f["train_rows"], 100, "{f}");
        assert_eq!(f["fit_rows"], 90, "{f}");
    }

    let args = with_iris(base("90"));
    let out = ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("fold 3: score"), "{out}");
    assert!(!out.contains("note: --batch-size"), "{out}");

    let args = with_iris(base("136"));
    let r = run_in(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!r.status.success());
    assert!(!text(&r.stdout).contains("fold 1"), "{}", text(&r.stdout));
    assert_eq!(
        text(&r.stderr).trim(),
        "error: invalid --batch-size: 136 is larger than the 135 training rows"
    );

    let out = ok(
        d,
        &[
            "train",
            "--data",
            &format!("{ROOT}/data/diabetes.csv"),
            "--target",
            "progression",
            "--cv",
            "2",
            "--epochs",
            "1",
            "--ensemble",
            "1",
        ],
    );
    assert!(
        out.contains("cross-validation: 2 folds (not stratified: a regression target, seed 0)"),
        "{out}"
    );
}

/// Regression folds of one row had scored R² = 0 each ("r2 0.0000 ±
/// 0.0000" for any model, and every tune trial tied): refused, in train
/// and tune; folds of two rows run.
#[test]
fn regression_folds_of_one_row_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("x,y\n");
    for i in 0..9 {
        csv += &format!("{i},{}\n", 2 * i + i % 3);
    }
    std::fs::write(d.join("r.csv"), csv).unwrap();
    for cmd in [&["train"][..], &["tune", "--trials", "1"][..]] {
        let out = run_in(
            d,
            &[cmd, &["--data", "r.csv", "--target", "y", "--cv", "5", "--epochs", "1"]].concat(),
        );
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(
            err.contains("5 folds of 9 rows leave folds of one row") && err.contains("--cv 4 or fewer"),
            "{err}"
        );
    }
    let args = [
        "train", "--data", "r.csv", "--target", "y", "--cv", "4", "--epochs", "1", "--quiet",
    ];
    ok(d, &args);
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
    let ens_csv = ok(d, &["predict", "--model", "ens.safetensors", "--data", data]);
    let ens = prediction_rows(&ens_csv, classify);
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
    // eval scores the averaged prediction: its accuracy or R² is the one
    // of predict's output against the table's last column.
    let eval = ok(d, &["eval", "--model", "ens.safetensors", "--data", data, "--json"]);
    let metrics = &last_json(&eval)["metrics"];
    let (key, want) = score_of_predictions(data, &ens_csv, classify);
    let got = metrics[key].as_f64().unwrap();
    assert!((got - want).abs() < 1e-6, "eval {key} {got}, predict's {want}");
}

/// Accuracy (the predicted labels, predict's first column) or R² (its
/// only column) of predict's `csv` against the last column of `data`.
fn score_of_predictions(data: &str, csv: &str, classify: bool) -> (&'static str, f64) {
    let text = std::fs::read_to_string(data).unwrap();
    let truth: Vec<&str> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap()).collect();
    let first: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(first.len(), truth.len());
    if classify {
        let hits = first.iter().zip(&truth).filter(|(p, t)| p == t).count();
        return ("accuracy", hits as f64 / truth.len() as f64);
    }
    let y: Vec<f64> = truth.iter().map(|t| t.parse().unwrap()).collect();
    let p: Vec<f64> = first.iter().map(|t| t.parse().unwrap()).collect();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let sse: f64 = p.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum();
    let sst: f64 = y.iter().map(|b| (b - mean).powi(2)).sum();
    ("r2", 1.0 - sse / sst)
}

#[test]
fn an_ensemble_classifier_averages_the_members_probabilities() {
    // predict prints each probability's f32 exactly: the ensemble averages
    // in f32, the check in f64 (a few units of f32's last place at 1).
    ensemble_is_the_average(&iris(), &["--target", "species"], true, 1e-6);
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
/// written (a run that may be resumed), when the table is streamed, or on
/// images.
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
        (&["--checkpoint-steps", "4"][..], None),
        (&["--stream"][..], None),
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

/// Past 50,000 training rows (after the validation split) `bpnet train`
/// trains one network; `--cv` folds resolve the default on their own rows,
/// as `bpnet train` would on them: 56,000 rows make 50,400 training rows
/// (one network for the final model) and folds of 25,200 (5 members each).
#[test]
fn cv_folds_resolve_the_default_ensemble_on_their_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("a,b,y\n");
    for i in 0..56_000u64 {
        let (a, b) = (
            (i * 7919 % 1000) as f64 / 500.0 - 1.0,
            (i * 104_729 % 997) as f64 / 498.5 - 1.0,
        );
        csv += &format!("{a},{b},{}\n", if a + b > 0.0 { "p" } else { "n" });
    }
    std::fs::write(d.join("big.csv"), csv).unwrap();
    // Two folds of `data` with `extra` options: each fold's JSON.
    let folds = |data: &str, target: &str, extra: &[&str]| -> Vec<serde_json::Value> {
        let base = [
            "train", "--data", data, "--target", target, "--cv", "2", "--epochs", "1", "--json", "--quiet",
        ];
        let j = last_json(&ok(d, &[&base[..], extra].concat()));
        j["cv"]["folds"].as_array().unwrap().clone()
    };
    let big = folds("big.csv", "y", &["--hidden", "4"]);
    assert_eq!(big.len(), 2);
    for f in &big {
        assert_eq!(
            (f["members"].as_u64(), f["train_rows"].as_u64()),
            (Some(5), Some(28_000)),
            "{f}"
        );
    }
    let inspect = ok(d, &["inspect", "model.safetensors"]);
    assert!(!inspect.contains("ensemble of"), "{inspect}");
    // --ensemble given: every fold and the final model take it.
    let two = folds(
        "big.csv",
        "y",
        &["--hidden", "4", "--ensemble", "2", "--out", "two.safetensors"],
    );
    assert!(two.iter().all(|f| f["members"] == 2), "{two:?}");
    assert!(ok(d, &["inspect", "two.safetensors"]).contains("ensemble of 2"));
    // A run that writes checkpoints trains one network, and so do its folds.
    let kept = folds(
        &iris(),
        "species",
        &["--checkpoint-every", "1", "--out", "k.safetensors"],
    );
    assert!(kept.iter().all(|f| f["members"] == 1), "{kept:?}");
}

/// A category held by one row of the file can fall into the validation
/// rows or a cross-validation fold alone: those rows encode it as no
/// category (with a note) instead of stopping the run (4 of 10 seeds and
/// every `--cv 5` failed with "category ... was not seen in training").
/// Files read later by the model still refuse it.
#[test]
fn a_category_only_in_held_out_rows_does_not_stop_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 30 rows of a category of their own among 120: about 3 of them in the
    // 12 validation rows of each seed.
    let mut csv = String::from("x,city,y\n");
    for i in 0..120 {
        let x = ((i * 37) % 101) as f64 / 50.0 - 1.0;
        let city = if i % 4 == 0 {
            format!("u{i}")
        } else {
            format!("c{}", i % 4)
        };
        csv += &format!("{x:.3},{city},{}\n", if x > 0.0 { "P" } else { "N" });
    }
    std::fs::write(d.join("cities.csv"), csv).unwrap();
    let base = [
        "train",
        "--data",
        "cities.csv",
        "--epochs",
        "2",
        "--ensemble",
        "1",
        "--hidden",
        "4",
    ];
    let mut noted = 0;
    for seed in ["1", "2", "3"] {
        let run = [&base[..], &["--seed", seed, "--out", "m.safetensors", "--overwrite"]].concat();
        let out = run_in(d, &run);
        let err = text(&out.stderr);
        assert!(out.status.success(), "seed {seed}: {err}");
        noted += usize::from(text(&out.stdout).contains(
            "validation or held-out rows of cities.csv hold a category the training rows lack (column 'city': 'u",
        ));
        let out = run_in(d, &[&run[..], &["--stream"]].concat());
        assert!(out.status.success(), "seed {seed} streamed: {}", text(&out.stderr));
    }
    assert!(noted > 0, "no seed of 3 noted the held-out categories");
    let out = run_in(d, &[&base[..], &["--cv", "5", "--out", "cv.safetensors"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(d.join("new.csv"), "x,city\n0.5,elsewhere\n").unwrap();
    let out = run_in(d, &["predict", "--model", "cv.safetensors", "--data", "new.csv"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("category 'elsewhere' was not seen in training"), "{err}");
}

/// A text column with a category per row one-hot encodes to as many
/// features as rows: a feature matrix larger than the memory available is
/// refused in one line naming the column (it aborted allocating).
#[test]
fn an_identifier_column_too_wide_for_memory_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("x,id,y\n");
    for i in 0..3000 {
        csv += &format!("{},id{i},{}\n", i % 7, ["P", "N"][i % 2]);
    }
    std::fs::write(d.join("ids.csv"), csv).unwrap();
    for extra in [&[][..], &["--cv", "3"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(
                [
                    &[
                        "train",
                        "--data",
                        "ids.csv",
                        "--epochs",
                        "1",
                        "--quiet",
                        "--out",
                        "m.safetensors",
                    ][..],
                    extra,
                ]
                .concat(),
            )
            .current_dir(d)
            .env("BPNET_MEMORY", "8M")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.lines().count() == 1, "{extra:?}: {err}");
        assert!(
            err.contains("ids.csv: the features of 3000 rows need")
                && err.contains("column 'id' is one-hot encoded over"),
            "{err}"
        );
        assert!(!d.join("m.safetensors").exists());
    }
}

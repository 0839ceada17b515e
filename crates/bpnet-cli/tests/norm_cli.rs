//! `--norm`, `bpnet lr-find` and `--lr auto` through the real binary, on the
//! bundled iris table (tiny runs).

use serde_json::Value;
use std::path::Path;

mod common;
use common::{ok, run_in};

const IRIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");

fn train(dir: &Path, out: &str, extra: &[&str]) -> String {
    let base = [
        "train",
        "--data",
        IRIS,
        "--target",
        "species",
        "--hidden",
        "8,8",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--seed",
        "1",
        "--out",
        out,
    ];
    ok(dir, &[&base[..], extra].concat())
}

#[test]
fn every_norm_kind_trains_saves_and_inspects() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (norm, shows) in [
        ("batch", "BatchNorm(8"),
        ("renorm:2:1:4:10:8", "BatchRenorm(rmax 2, dmax 1, warm-up 4"),
        ("ghost:4", "GhostBatchNorm(virtual batch 4"),
        ("layer", "LayerNorm(8"),
    ] {
        let out = format!("{}.safetensors", norm.split(':').next().unwrap());
        train(d, &out, &["--norm", norm, "--quiet"]);
        let inspect = ok(d, &["inspect", &out]);
        assert!(inspect.contains(shows), "{norm}: {inspect}");
        let onnx = format!("{out}.onnx");
        ok(d, &["export", "--model", &out, "--onnx", &onnx]);
        ok(d, &["eval", "--model", &out, "--data", IRIS]);
    }
    train(d, "none.safetensors", &["--norm", "none", "--quiet"]);
    let inspect = ok(d, &["inspect", "none.safetensors"]);
    assert!(!inspect.contains("Norm("), "{inspect}");
    // The old flags keep working; --no-batch-norm beside --norm contradicts it.
    train(d, "old.safetensors", &["--no-batch-norm", "--quiet"]);
    assert!(!ok(d, &["inspect", "old.safetensors"]).contains("Norm("));
    let both = run_in(
        d,
        &[
            "train",
            "--data",
            IRIS,
            "--no-batch-norm",
            "--norm",
            "layer",
            "--out",
            "x.safetensors",
        ],
    );
    let err = common::text(&both.stderr);
    assert!(
        !both.status.success() && err.contains("conflicts with --norm layer"),
        "{err}"
    );
    assert!(!d.join("x.safetensors").exists());
    train(d, "after.safetensors", &["--bn-after", "--norm", "ghost:4", "--quiet"]);
    let inspect = ok(d, &["inspect", "after.safetensors"]);
    let act = inspect.find("Activation").unwrap();
    assert!(inspect[act..].contains("GhostBatchNorm"), "{inspect}");
    // The TOML config takes `norm` too.
    std::fs::write(d.join("run.toml"), "norm = \"layer\"\nhidden = \"8\"\n").unwrap();
    ok(
        d,
        &[
            "train",
            "--config",
            "run.toml",
            "--data",
            IRIS,
            "--target",
            "species",
            "--epochs",
            "1",
            "--out",
            "t.safetensors",
            "--quiet",
        ],
    );
    assert!(ok(d, &["inspect", "t.safetensors"]).contains("LayerNorm(8"));
}

#[test]
fn bad_norm_is_one_line_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["ghost:1", "ghost", "renorm:0.5", "group"] {
        let out = run_in(
            dir.path(),
            &["train", "--data", IRIS, "--target", "species", "--norm", bad],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert_eq!(err.trim().lines().count(), 1, "{bad}: {err}");
        assert!(
            err.contains("norm") || err.contains("ghost") || err.contains("renorm"),
            "{bad}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn lr_find_writes_the_figure_and_prints_both_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(
        d,
        &[
            "lr-find",
            "--data",
            IRIS,
            "--target",
            "species",
            "--hidden",
            "8",
            "--optimizer",
            "sgd",
            "--batch-size",
            "16",
            "--iterations",
            "60",
            "--start-lr",
            "1e-5",
            "--end-lr",
            "1e3",
            "--figure",
            "lr",
        ],
    );
    assert!(out.contains("steepest descent") && out.contains("minimum/10"), "{out}");
    for ext in ["png", "svg", "csv"] {
        let p = d.join(format!("lr.{ext}"));
        assert!(
            p.metadata().map(|m| m.len() > 100).unwrap_or(false),
            "{} missing",
            p.display()
        );
    }
    let csv = std::fs::read_to_string(d.join("lr.csv")).unwrap();
    assert!(csv.starts_with("step,lr,loss,smoothed_loss\n"), "{csv}");
    // SGD up to lr 1000 blows the loss up before the last rate.
    assert!(out.contains("the loss exploded"), "{out}");
    assert!(csv.lines().count() < 61, "ran every batch despite the explosion");
    // A folder as --figure, existing or ending in '/', takes lr_find.*
    // inside it (`--figure sub/` wrote sub.png beside the folder); one
    // ending in '/' is created when missing (it was refused).
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::create_dir(d.join("new")).unwrap();
    for (given, folder) in [("sub", "sub"), ("new/", "new"), ("made/deep/", "made/deep")] {
        let find = [
            "lr-find",
            "--data",
            IRIS,
            "--target",
            "species",
            "--iterations",
            "8",
            "--figure",
            given,
        ];
        let out = ok(d, &find);
        assert!(out.contains(&format!("wrote {folder}/lr_find.png")), "{out}");
        assert!(d.join(folder).join("lr_find.csv").exists() && !d.join(format!("{folder}.png")).exists());
    }
    // Too few iterations are named by the flag (it said "lr-find steps").
    let bad = run_in(d, &["lr-find", "--data", IRIS, "--figure", "x", "--iterations", "1"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.starts_with("error: invalid --iterations: 1 is below 2"), "{err}");
    // Options only a training run uses are refused in one line, nothing written.
    for (flag, value) in [
        ("--out", "m.safetensors"),
        ("--epochs", "5"),
        ("--cv", "3"),
        ("--ensemble", "2"),
        // These were accepted and did nothing.
        ("--lr", "5"),
        ("--schedule", "cosine"),
        ("--monitor", "val_metric"),
        ("--min-delta", "0.1"),
        ("--on-nan", "skip-batch"),
        ("--shuffle-buffer", "100"),
        ("--bn-sync", "local"),
    ] {
        let bad = run_in(d, &["lr-find", "--data", IRIS, "--figure", "x", flag, value]);
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            !bad.status.success() && err.contains(flag) && err.contains("no effect with bpnet lr-find"),
            "{err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!d.join("x.png").exists() && !d.join("m.safetensors").exists());
    }
    // --overwrite replaces figure files of another kind (it was ignored).
    std::fs::write(d.join("y.csv"), "not a table\n").unwrap();
    let refused = run_in(d, &["lr-find", "--data", IRIS, "--figure", "y", "--iterations", "12"]);
    assert!(!refused.status.success(), "replaced a file of another kind");
    ok(
        d,
        &[
            "lr-find",
            "--data",
            IRIS,
            "--figure",
            "y",
            "--iterations",
            "12",
            "--overwrite",
        ],
    );
    assert!(std::fs::read_to_string(d.join("y.csv")).unwrap().starts_with("step,lr"));
}

#[test]
fn train_lr_auto_records_the_rate_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = train(d, "auto.safetensors", &["--optimizer", "sgd", "--lr", "auto", "--json"]);
    assert!(out.contains("--lr auto: training with lr"), "{out}");
    let inspect = ok(d, &["inspect", "auto.safetensors", "--json"]);
    let v: Value = serde_json::from_str(inspect.lines().last().unwrap()).unwrap();
    let text = v.to_string();
    assert!(text.contains("\"lr_auto\":false"), "{text}");
    // The rate recorded is the rate printed (to its 4 printed digits).
    let printed: f64 = out
        .split("--lr auto: training with lr ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no rate printed: {out}"));
    let recorded = v["metadata"]["training"]["lr"]
        .as_f64()
        .unwrap_or_else(|| panic!("no training lr: {text}"));
    assert!(
        (recorded / printed - 1.0).abs() < 1e-3,
        "recorded {recorded}, printed {printed}"
    );
    // Trained as with that rate given: the same predictions, bit for bit.
    train(
        d,
        "given.safetensors",
        &["--optimizer", "sgd", "--lr", &format!("{recorded}")],
    );
    let predict = |model: &str, out: &str| {
        ok(d, &["predict", "--model", model, "--data", IRIS, "--out", out]);
        std::fs::read(d.join(out)).unwrap()
    };
    assert_eq!(
        predict("auto.safetensors", "a.csv"),
        predict("given.safetensors", "g.csv")
    );
    let bad = run_in(d, &["train", "--data", IRIS, "--target", "species", "--lr", "fast"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a number nor 'auto'"));
}

/// Layer normalization needs no batch statistics, so it trains with
/// batches of one row, where batch normalization refuses them in one line.
#[test]
fn layer_norm_trains_with_batches_of_one_row_where_batch_norm_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = [
        "train",
        "--data",
        IRIS,
        "--target",
        "species",
        "--batch-size",
        "1",
        "--epochs",
        "1",
    ];
    let run = |extra: &[&str]| run_in(d, &[&base[..], &["--ensemble", "1"], extra].concat());
    let ln = run(&["--norm", "layer", "--out", "ln.safetensors"]);
    assert!(ln.status.success(), "{}", String::from_utf8_lossy(&ln.stderr));
    assert!(d.join("ln.safetensors").exists());
    let bn = run(&["--out", "bn.safetensors"]);
    let stderr = String::from_utf8_lossy(&bn.stderr);
    assert!(
        !bn.status.success() && stderr.lines().count() == 1 && stderr.contains("at least 2 rows"),
        "{stderr}"
    );
}

//! The `bpnet` binary, run for real in temporary directories: training on
//! MNIST and on CSV files, eval / predict / inspect, the config file and its
//! precedence, the README walkthrough, and clean one-line errors.

use std::path::{Path, PathBuf};

mod common;
use common::{last_json, ok, run_in, text};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn data(name: &str) -> String {
    format!("{ROOT}/data/{name}")
}

/// Writes the first `n` data rows of a CSV (plus header) and the rest to two files.
fn split_csv(src: &str, n: usize, dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(src).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    // Interleave so both parts see every class.
    let (mut a, mut b) = (vec![header], vec![header]);
    for (i, r) in rows.iter().enumerate() {
        if i % 5 == 0 && b.len() <= n {
            b.push(r)
        } else {
            a.push(r)
        }
    }
    let (pa, pb) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&pa, a.join("\n") + "\n").unwrap();
    std::fs::write(&pb, b.join("\n") + "\n").unwrap();
    (pa, pb)
}

#[test]
fn trains_the_paper_network_on_a_subset_of_mnist() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!("{ROOT}/configs/paper-mnist.toml");
    let out = ok(
        dir.path(),
        &[
            "train", "--config", &cfg, "--limit", "3000", "--epochs", "2", "--lr", "1.0", "--json",
        ],
    );
    assert!(out.contains("layers.1  BatchNorm(100"), "{out}");
    let j = last_json(&out);
    let acc = j["test"]["accuracy"].as_f64().unwrap();
    // 100 steps of batch 60 on 3000 images: far above the 10% of chance.
    assert!(acc > 0.8, "accuracy {acc}\n{out}");
    assert_eq!(j["test"]["rows"], 10000);
    assert!(dir.path().join("paper-mnist.safetensors").is_file());
}

/// Peak memory of `bpnet train --data mnist` with its defaults (a 10%
/// stratified validation split held out of the 60,000 training images, the
/// 10,000 test images loaded too) stays under 1.5 x the data set's size in
/// memory (70,000 x 784 f32 = 219.5 MB): the validation rows are split off
/// without a second copy of the training set (`Dataset::partition`).
#[test]
fn default_mnist_training_peaks_under_one_and_a_half_times_the_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &["train", "--data", "mnist", "--steps", "200", "--quiet", "--json"],
    );
    let j = last_json(&out);
    let Some(peak) = j["peak_memory_bytes"].as_u64() else {
        // Linux always reports it; under CI (Linux) a skip is a failure.
        assert!(std::env::var_os("CI").is_none(), "no peak memory reported under CI");
        eprintln!("SKIP: this system reports no peak memory");
        return;
    };
    let dataset = 70_000 * 784 * 4;
    println!(
        "peak {:.1} MB = {:.2} x the data set",
        peak as f64 / 1e6,
        peak as f64 / dataset as f64
    );
    assert!(
        peak > dataset,
        "peak {peak} below the data it must hold: not measuring the process?"
    );
    assert!(2 * peak < 3 * dataset, "peak memory {peak} bytes >= 1.5 x {dataset}");
}

#[test]
fn csv_classification_train_eval_predict_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = split_csv(&data("iris.csv"), 30, dir.path());
    let (train, test) = (train.to_str().unwrap(), test.to_str().unwrap());
    let out = ok(
        dir.path(),
        &[
            "train",
            "--data",
            train,
            "--target",
            "species",
            "--test",
            test,
            "--out",
            "iris.safetensors",
            "--json",
        ],
    );
    assert!(out.contains("task: classify"), "{out}");
    let j = last_json(&out);
    let acc = j["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.9, "iris test accuracy {acc}");
    // Same data through a fresh process: bit-identical predictions, so identical metrics.
    let e = last_json(&ok(
        dir.path(),
        &["eval", "--model", "iris.safetensors", "--data", test, "--json"],
    ));
    assert_eq!(e["metrics"]["accuracy"], j["test"]["accuracy"]);
    assert_eq!(e["metrics"]["loss"], j["test"]["loss"]);
    let p1 = ok(dir.path(), &["predict", "--model", "iris.safetensors", "--data", test]);
    let p2 = ok(
        dir.path(),
        &[
            "predict",
            "--model",
            "iris.safetensors",
            "--data",
            test,
            "--output",
            "p.csv",
        ],
    );
    assert!(p2.contains("wrote 30 predictions"), "{p2}");
    assert_eq!(std::fs::read_to_string(dir.path().join("p.csv")).unwrap(), p1);
    assert!(p1.starts_with("prediction,p_setosa,p_versicolor,p_virginica\n"), "{p1}");
    assert_eq!(p1.lines().count(), 31);
    // A file of one class predicted right: macro F1 1 (the absent classes
    // have no F1; they had counted as 0, giving 0.3333).
    let iris = std::fs::read_to_string(data("iris.csv")).unwrap();
    let setosa: Vec<&str> = iris.lines().take(11).collect();
    std::fs::write(dir.path().join("setosa.csv"), setosa.join("\n") + "\n").unwrap();
    let e = last_json(&ok(
        dir.path(),
        &["eval", "--model", "iris.safetensors", "--data", "setosa.csv", "--json"],
    ));
    let m = &e["metrics"];
    let confusion: Vec<Vec<u64>> = serde_json::from_value(m["confusion"].clone()).unwrap();
    let f1s: Vec<f64> = serde_json::from_value(m["f1"].clone()).unwrap();
    let occurs = |c: usize| confusion[c].iter().sum::<u64>() + confusion.iter().map(|r| r[c]).sum::<u64>() > 0;
    let present: Vec<f64> = (0..3).filter(|&c| occurs(c)).map(|c| f1s[c]).collect();
    let want = present.iter().sum::<f64>() / present.len() as f64;
    assert!(present.len() < 3, "{m}");
    assert_eq!(m["macro_f1"].as_f64().unwrap(), want, "{m}");
    if m["accuracy"] == 1.0 {
        assert_eq!(want, 1.0);
    }
    let i = ok(dir.path(), &["inspect", "iris.safetensors", "--json"]);
    assert!(i.contains("format 1") && i.contains("layers.1.running_mean"), "{i}");
    assert_eq!(last_json(&i)["metadata"]["preprocessing"]["kind"], "table");
    assert!(dir.path().join("iris.history.csv").is_file() && dir.path().join("iris.history.json").is_file());
    // The model file carries every epoch's record, as its history file
    // (a model loaded in Python had an empty history_); inspect's text
    // counts them rather than print each.
    let history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("iris.history.json")).unwrap()).unwrap();
    let records = &last_json(&i)["metadata"]["history_records"];
    assert!(records.as_array().is_some_and(|r| !r.is_empty()), "{records}");
    assert_eq!(records, &history["epochs"]);
    let n = records.as_array().unwrap().len();
    assert!(
        i.contains(&format!(
            "  history_records: {n} epoch records (inspect --json lists them)\n"
        )),
        "{i}"
    );
    // One record in the text: the summary's last epoch ("final").
    assert_eq!(
        i.matches("\"train_loss\": ").count(),
        1,
        "the records are printed one by one: {i}"
    );
}

#[test]
fn csv_regression_reports_original_units() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &[
            "train",
            "--data",
            &data("diabetes.csv"),
            "--test-split",
            "0.2",
            "--json",
            "--quiet",
        ],
    );
    let j = last_json(&out);
    // 20% of 442 rows, not stratified by target value (every value is rare).
    assert_eq!(j["test"]["rows"], 88);
    let (rmse, r2) = (j["test"]["rmse"].as_f64().unwrap(), j["test"]["r2"].as_f64().unwrap());
    // Targets range 25..346 with std ~77: an RMSE in those units, and a useful fit.
    assert!(rmse > 20.0 && rmse < 77.0 && r2 > 0.2, "rmse {rmse} r2 {r2}");
    let p = ok(
        dir.path(),
        &[
            "predict",
            "--model",
            "model.safetensors",
            "--data",
            &data("diabetes.csv"),
        ],
    );
    assert!(p.starts_with("progression\n"), "{}", &p[..40]);
    let preds: Vec<f64> = p.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    let mean = preds.iter().sum::<f64>() / preds.len() as f64;
    assert!(
        (mean - 152.0).abs() < 25.0,
        "predictions are mapped back to the target scale: mean {mean}"
    );
    // One row, and rows of one target value, have no R²: 0 as scikit-learn
    // scores it, and said so (it read as a plain R² 0.0000).
    let text = std::fs::read_to_string(data("diabetes.csv")).unwrap();
    let head = text.lines().next().unwrap();
    let rows: Vec<&str> = text.lines().skip(1).take(10).collect();
    let constant: Vec<String> = rows
        .iter()
        .map(|l| format!("{},100", l.rsplit_once(',').unwrap().0))
        .collect();
    std::fs::write(dir.path().join("one.csv"), format!("{head}\n{}\n", rows[0])).unwrap();
    std::fs::write(
        dir.path().join("const.csv"),
        format!("{head}\n{}\n", constant.join("\n")),
    )
    .unwrap();
    std::fs::write(dir.path().join("ten.csv"), format!("{head}\n{}\n", rows.join("\n"))).unwrap();
    for (file, defined) in [("one.csv", false), ("const.csv", false), ("ten.csv", true)] {
        let e = ok(dir.path(), &["eval", "--model", "model.safetensors", "--data", file]);
        assert_eq!(
            e.contains("R² 0.0000 (undefined: the target is constant"),
            !defined,
            "{file}: {e}"
        );
        let j = last_json(&ok(
            dir.path(),
            &["eval", "--model", "model.safetensors", "--data", file, "--json"],
        ));
        assert_eq!(j["metrics"]["r2_defined"], defined, "{file}: {j}");
    }
}

/// With two targets, eval gives each one's metrics in its own units (the
/// pooled MSE mixed `s5`, about 0.1, with `progression`, about 3600),
/// named, in text and JSON, read in memory and streamed alike; each
/// equals the metric recomputed from `predict`'s output.
#[test]
fn eval_reports_each_target_of_a_multi_target_regression() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let diabetes = data("diabetes.csv");
    ok(
        d,
        &[
            "train",
            "--data",
            &diabetes,
            "--target",
            "s5,progression",
            "--epochs",
            "3",
            "--ensemble",
            "1",
            "--quiet",
        ],
    );
    ok(
        d,
        &[
            "predict",
            "--model",
            "model.safetensors",
            "--data",
            &diabetes,
            "--output",
            "p.csv",
        ],
    );
    let cells = |text: &str| -> Vec<Vec<f64>> {
        text.lines()
            .skip(1)
            .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
            .collect()
    };
    let pred = cells(&std::fs::read_to_string(d.join("p.csv")).unwrap());
    let truth: Vec<Vec<f64>> = cells(&std::fs::read_to_string(&diabetes).unwrap())
        .into_iter()
        .map(|r| vec![r[8], r[10]])
        .collect();
    for stream in ["--no-stream", "--stream"] {
        let out = ok(
            d,
            &["eval", "--model", "model.safetensors", "--data", &diabetes, stream],
        );
        assert!(out.contains("(pooled over the targets; each below)"), "{out}");
        assert!(
            out.lines().any(|l| l.trim_start().starts_with("progression  ")),
            "{out}"
        );
        let j = last_json(&ok(
            d,
            &[
                "eval",
                "--model",
                "model.safetensors",
                "--data",
                &diabetes,
                stream,
                "--json",
            ],
        ));
        let m = &j["metrics"];
        assert_eq!(m["loss_scale"], "standardized", "{m}");
        let targets = m["targets"].as_array().unwrap();
        assert_eq!(targets.len(), 2);
        let mut r2s = Vec::new();
        for (k, (t, name)) in targets.iter().zip(["s5", "progression"]).enumerate() {
            assert_eq!(t["target"], name);
            let n = truth.len() as f64;
            let mean = truth.iter().map(|r| r[k]).sum::<f64>() / n;
            let ss_tot: f64 = truth.iter().map(|r| (r[k] - mean).powi(2)).sum();
            let ss_res: f64 = truth.iter().zip(&pred).map(|(r, p)| (r[k] - p[k]).powi(2)).sum();
            let mae = truth.iter().zip(&pred).map(|(r, p)| (r[k] - p[k]).abs()).sum::<f64>() / n;
            let close = |key: &str, want: f64| {
                let got = t[key].as_f64().unwrap();
                // predict and eval batch the rows differently: f32 rounding.
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{stream} {name} {key}: {got} vs {want}"
                );
            };
            close("mse", ss_res / n);
            close("mae", mae);
            close("r2", 1.0 - ss_res / ss_tot);
            r2s.push(t["r2"].as_f64().unwrap());
        }
        let mean_r2 = (r2s[0] + r2s[1]) / 2.0;
        assert!((m["r2"].as_f64().unwrap() - mean_r2).abs() < 1e-12, "{m}");
    }
}

#[test]
fn config_file_flags_override_and_print_config_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        "lr = 0.5\nhidden = \"16,8\"\noptimizer = \"sgd\"\n",
    )
    .unwrap();
    let printed = ok(
        dir.path(),
        &["train", "--config", "run.toml", "--lr", "0.01", "--print-config"],
    );
    assert!(
        printed.contains("lr = 0.01")
            && printed.contains("hidden = \"16,8\"")
            && printed.contains("optimizer = \"sgd\""),
        "{printed}"
    );
    std::fs::write(dir.path().join("full.toml"), &printed).unwrap();
    assert_eq!(
        ok(dir.path(), &["train", "--config", "full.toml", "--print-config"]),
        printed
    );
    std::fs::write(dir.path().join("bad.toml"), "learning_rate = 3\n").unwrap();
    assert_clean_failure_in(
        dir.path(),
        &["train", "--config", "bad.toml"],
        "bad.toml: line 1, column 1: unknown field `learning_rate`",
    );
    // Columns count characters, after a byte-order mark (they counted
    // bytes: column 4 for a key at the start of a file with a BOM).
    std::fs::write(dir.path().join("bom.toml"), "\u{feff}learning_rate = 3\n").unwrap();
    assert_clean_failure_in(
        dir.path(),
        &["train", "--config", "bom.toml"],
        "bom.toml: line 1, column 1: unknown field",
    );
    std::fs::write(dir.path().join("wide.toml"), "seed = 1\ndata = \"ééé\"   epochs = 1\n").unwrap();
    assert_clean_failure_in(
        dir.path(),
        &["train", "--config", "wide.toml"],
        "wide.toml: line 2, column 16: ",
    );
    // A file's rate beside `lr_auto = true` was dropped for the range
    // test's without a word: refused, unless the command line chooses.
    std::fs::write(dir.path().join("auto.toml"), "lr_auto = true\nlr = 0.5\n").unwrap();
    assert_clean_failure_in(
        dir.path(),
        &["train", "--config", "auto.toml"],
        "invalid lr_auto in auto.toml: lr_auto = true and lr = 0.5: the range test chooses the rate",
    );
    let printed = ok(
        dir.path(),
        &["train", "--config", "auto.toml", "--lr", "0.01", "--print-config"],
    );
    assert!(printed.contains("lr = 0.01\nlr_auto = false"), "{printed}");
    std::fs::write(dir.path().join("auto0.toml"), "lr_auto = true\nlr = 0.0\n").unwrap();
    let printed = ok(dir.path(), &["train", "--config", "auto0.toml", "--print-config"]);
    assert!(printed.contains("lr_auto = true"), "{printed}");
}

#[test]
fn early_stopping_is_reported_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(
        dir.path(),
        &[
            "train",
            "--data",
            &data("wine.csv"),
            "--patience",
            "3",
            "--epochs",
            "300",
            "--lr",
            "0.01",
            "--json",
        ],
    );
    let j = last_json(&out);
    assert_eq!(j["stopped_early"], true, "{out}");
    let (epochs, best) = (j["epochs"].as_u64().unwrap(), j["best_epoch"].as_u64().unwrap());
    assert_eq!(epochs, best + 4, "stops patience+1 epochs after the best");
    assert!(out.contains(&format!("restored the weights of epoch {best}")), "{out}");
}

/// The commands of the README's "Your own data" section, run as written.
#[test]
fn readme_walkthrough_commands_work() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let section = readme
        .split("## Your own data")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let commands: Vec<&str> = section.lines().filter(|l| l.starts_with("bpnet ")).collect();
    assert!(commands.len() >= 4, "{commands:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(data("iris.csv"), dir.path().join("data/iris.csv")).unwrap();
    std::fs::write(
        dir.path().join("new.csv"),
        "sepal_length,sepal_width,petal_length,petal_width\n5.0,3.4,1.5,0.2\n6.7,3.0,5.2,2.3\n",
    )
    .unwrap();
    for c in commands {
        let args: Vec<&str> = c.split_whitespace().skip(1).collect();
        ok(dir.path(), &args);
    }
}

fn assert_clean_failure(args: &[&str], want: &str) {
    assert_clean_failure_in(tempfile::tempdir().unwrap().path(), args, want);
}

fn assert_clean_failure_in(dir: &Path, args: &[&str], want: &str) {
    let out = run_in(dir, args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(want),
        "{args:?}: '{stderr}' lacks '{want}'"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_options_give_one_clear_line() {
    assert_clean_failure(&["train", "--data", "/nonexistent/data.csv"], "/nonexistent/data.csv");
    assert_clean_failure(&["train", "--data", "/nonexistent/folder/"], "/nonexistent/folder/");
    let iris = data("iris.csv");
    for (flag, value, want) in [
        ("--batch-size", "0", "batch-size"),
        ("--activation", "swish", "unknown 'swish'"),
        ("--lr", "NaN", "learning rate"),
        ("--hidden", "100,x", "'x'"),
        ("--dropout", "1.0", "dropout"),
        ("--optimizer", "lbfgs", "unknown 'lbfgs'"),
        ("--target", "colour", "colour"),
        ("--val-split", "1.5", "val-split"),
        ("--schedule", "linear", "unknown 'linear'"),
        // A negative number is a value, not an unknown flag: the error is
        // the option's own check, not clap's "unexpected argument".
        ("--lr", "-1", "invalid learning rate"),
        ("--dropout", "-0.5", "invalid dropout"),
        ("--label-smoothing", "-0.2", "invalid label-smoothing"),
        ("--weight-decay", "-1", "invalid weight decay"),
        ("--val-split", "-0.1", "invalid val-split"),
        ("--min-delta", "-1", "invalid min-delta"),
        ("--clip-grad-norm", "-1", "invalid clip-grad-norm"),
    ] {
        assert_clean_failure(&["train", "--data", &iris, flag, value], want);
    }
}

#[test]
fn bad_data_and_model_files_give_one_clear_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("bad.csv"), "a,b,y\n1,2,x\n3,oops,y\n5,6,x\n").unwrap();
    assert_clean_failure_in(d, &["train", "--data", "bad.csv", "--out", "m.safetensors"], "line 3");
    assert!(!d.join("m.safetensors").exists(), "no model file after a failed run");
    let (train, _) = split_csv(&data("iris.csv"), 30, d);
    ok(
        d,
        &[
            "train",
            "--data",
            train.to_str().unwrap(),
            "--epochs",
            "3",
            "--out",
            "m.safetensors",
            "--quiet",
        ],
    );
    std::fs::write(d.join("narrow.csv"), "sepal_length,sepal_width,petal_length\n1,2,3\n").unwrap();
    assert_clean_failure_in(
        d,
        &["predict", "--model", "m.safetensors", "--data", "narrow.csv"],
        "petal_width",
    );
    std::fs::write(
        d.join("cats.csv"),
        "colour,size,y\nred,1,a\nblue,2,b\nred,3,a\nblue,1,b\nred,2,a\nblue,3,b\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "train",
            "--data",
            "cats.csv",
            "--epochs",
            "2",
            "--val-split",
            "0",
            "--out",
            "c.safetensors",
            "--quiet",
        ],
    );
    std::fs::write(d.join("green.csv"), "colour,size\ngreen,1\n").unwrap();
    assert_clean_failure_in(
        d,
        &["predict", "--model", "c.safetensors", "--data", "green.csv"],
        "green",
    );
    std::fs::write(d.join("not-a-model.safetensors"), "hello").unwrap();
    assert_clean_failure_in(d, &["inspect", "not-a-model.safetensors"], "not-a-model.safetensors");
    assert_clean_failure_in(
        d,
        &["eval", "--model", "missing.safetensors", "--data", "bad.csv"],
        "missing.safetensors",
    );
    assert_clean_failure_in(
        d,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "m.safetensors",
            "--output",
            "out.csv",
        ],
        "m.safetensors",
    );
    assert!(!d.join("out.csv").exists());
}

/// The benchmark harness works end to end at tiny size (no timing is checked:
/// benchmarks are measured by bench/compare.sh, never asserted in tests).
#[test]
fn bench_reports_json_for_training_inference_fused_and_gemm() {
    let dir = tempfile::tempdir().unwrap();
    let net = [
        "bench",
        "--dims",
        "20,16,16,4",
        "--batch-size",
        "8",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--json",
    ];
    let cases: [&[&str]; 4] = [
        &["--batch-norm", "--optimizer", "adam", "--threads", "1"],
        &["--activation", "relu", "--inference"],
        &["--batch-norm", "--inference", "--fused", "--threads", "2"],
        &["--gemm", "64"],
    ];
    for extra in cases {
        let args: Vec<&str> = match extra[0] {
            // --gemm times a product, not the network: it takes none of its options.
            "--gemm" => ["bench", "--steps", "3", "--warmup", "1", "--json"]
                .iter()
                .chain(extra)
                .copied()
                .collect(),
            _ => net.iter().chain(extra).copied().collect(),
        };
        let j = last_json(&ok(dir.path(), &args));
        for key in ["ms_per_step", "samples_per_s", "gflops"] {
            assert!(
                j[key].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0),
                "{key} in {j}"
            );
        }
        assert!(j["ms_per_step"].as_f64().unwrap() > 0.0, "{j}");
        assert!(j["threads"].as_u64().is_some_and(|t| t >= 1), "{j}");
    }
    // Training steps on one row need no BN (all were refused).
    ok(
        dir.path(),
        &["bench", "--dims", "20,4", "--batch-size", "1", "--steps", "2", "--json"],
    );
    // A model file's run reports its widths, not the flags' network (it
    // recorded the default sigmoid without BN for a ReLU+BN model).
    let d = dir.path();
    let train = [
        "train", "--data", "mnist", "--limit", "300", "--steps", "2", "--hidden", "16",
    ];
    ok(
        d,
        &[&train[..], &["--ensemble", "1", "--quiet", "--out", "m.safetensors"]].concat(),
    );
    let timed = [
        "bench",
        "--inference",
        "--model",
        "m.safetensors",
        "--batch-size",
        "4",
        "--steps",
        "2",
        "--json",
    ];
    let j = last_json(&ok(d, &timed));
    assert_eq!(j["dims"], "784,16,10", "{j}");
    for key in ["activation", "batch_norm", "optimizer"] {
        assert!(j.get(key).is_none(), "{key} in {j}");
    }
    assert_clean_failure(&["bench", "--fused"], "--inference");
    assert_clean_failure(&["bench", "--threads", "0"], "threads");
    // A product of 0 steps printed "inf ms each" with exit 0; options the
    // product does not read were ignored; a batch whose pool overflows
    // panicked (or aborted allocating); BN trains on 2 rows or more.
    assert_clean_failure(
        &["bench", "--gemm", "8", "--steps", "0"],
        "invalid --steps: must be at least 1",
    );
    assert_clean_failure(&["bench", "--gemm", "8", "--dims", "3,4"], "cannot be used with");
    assert_clean_failure(
        &["bench", "--dims", "784,10", "--batch-size", "30000000000000000"],
        "invalid --batch-size: 30000000000000000 rows x 784 units x 8 pooled batches exceeds",
    );
    assert_clean_failure(
        &["bench", "--batch-norm", "--batch-size", "1"],
        "need a batch of at least 2 rows",
    );
}

#[test]
fn label_smoothing_trains_is_recorded_and_is_refused_where_it_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let iris = data("iris.csv");
    let base = [
        "train",
        "--data",
        &iris,
        "--epochs",
        "3",
        "--ensemble",
        "1",
        "--quiet",
        "--json",
    ];
    let plain = last_json(&ok(dir.path(), &[&base[..], &["--out", "a.safetensors"]].concat()));
    let smooth = last_json(&ok(
        dir.path(),
        &[&base[..], &["--out", "b.safetensors", "--label-smoothing", "0.1"]].concat(),
    ));
    // Another objective: another training loss (and other weights).
    let last = |j: &serde_json::Value| j["final"]["train_loss"].as_f64().unwrap();
    assert_ne!(last(&smooth), last(&plain), "{smooth} against {plain}");
    let inspect = ok(dir.path(), &["inspect", "b.safetensors", "--json"]);
    assert!(inspect.contains("\"label_smoothing\":0.1"), "{inspect}");
    // Regression, out of range: one line, non-zero exit, no model file.
    let diabetes = data("diabetes.csv");
    for (file, value, want) in [
        (&diabetes, "0.1", "label-smoothing: applies to classification"),
        (&iris, "1", "label-smoothing: 1 is not in [0, 1)"),
    ] {
        let args = [
            "train",
            "--epochs",
            "1",
            "--out",
            "c.safetensors",
            "--data",
            file,
            "--label-smoothing",
            value,
        ];
        assert_clean_failure_in(dir.path(), &args, want);
        assert!(!dir.path().join("c.safetensors").exists());
    }
}

#[test]
fn momentum_given_to_an_optimizer_without_it_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let iris = data("iris.csv");
    let base = [
        "train",
        "--data",
        &iris,
        "--epochs",
        "1",
        "--ensemble",
        "1",
        "--momentum",
        "0.5",
    ];
    let out = run_in(dir.path(), &[&base[..], &["--out", "a.safetensors"]].concat());
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("--momentum has no effect with --optimizer adam"), "{err}");
    let out = run_in(
        dir.path(),
        &[&base[..], &["--optimizer", "nesterov", "--out", "b.safetensors"]].concat(),
    );
    assert!(out.status.success());
    assert!(!text(&out.stderr).contains("no effect"), "{}", text(&out.stderr));
}

/// A build without MPI started by a launcher as one of several processes
/// refuses in one line (each process trained alone and wrote the same
/// files); started as the only process it runs.
#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_refuses_to_run_as_one_of_several_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let iris = data("iris.csv");
    let args = [
        "train",
        "--data",
        &iris,
        "--epochs",
        "1",
        "--quiet",
        "--out",
        "m.safetensors",
    ];
    for var in ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(args)
            .current_dir(dir.path())
            .env(var, "2")
            .output()
            .unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.lines().count() == 1, "{var}: {err}");
        assert!(
            err.contains("one of 2 processes, but it was built without MPI"),
            "{err}"
        );
        assert!(!dir.path().join("m.safetensors").exists());
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args(args)
        .current_dir(dir.path())
        .env("OMPI_COMM_WORLD_SIZE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Commands that do not run on several ranks run as they would alone
    // (`srun -n4 bpnet predict` on shards).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args(["inspect", "m.safetensors"])
        .current_dir(dir.path())
        .env("PMI_SIZE", "4")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `train`'s config file and side outputs (found by an adversarial pass,
/// 2026-12-07): `--json` is the last line with `--diagnostics` and `--plot`
/// too; `--config` with `--resume` is refused (the file was ignored);
/// `--batch-norm` wins over `norm = "none"` in the file; a file's
/// `batch_size` above the training rows says so (it trained one batch
/// without a word; the flag is refused).
#[test]
fn train_config_file_and_side_outputs_keep_their_promises() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = format!("{}/../../data/iris.csv", env!("CARGO_MANIFEST_DIR"));
    let base = [
        "train",
        "--data",
        &iris,
        "--epochs",
        "2",
        "--hidden",
        "6",
        "--ensemble",
        "1",
    ];
    let with = |more: &[&'static str]| -> Vec<String> { base.iter().chain(more).map(|s| s.to_string()).collect() };
    let ok = |d: &Path, args: &[String]| ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let run_in = |d: &Path, args: &[String]| run_in(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let out = ok(
        d,
        &with(&["--out", "d.safetensors", "--diagnostics", "--plot", "--json"]),
    );
    let last = out.trim_end().lines().last().unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(last).is_ok(),
        "last line: {last}"
    );
    assert!(out.contains("plots: d.plots/"), "{out}");
    // --config beside --resume.
    ok(
        d,
        &with(&["--out", "r.safetensors", "--checkpoint-every", "1", "--quiet"]),
    );
    std::fs::write(d.join("e4.toml"), "epochs = 4\n").unwrap();
    let resume = [
        "train",
        "--resume",
        "r.ckpt.safetensors",
        "--config",
        "e4.toml",
        "--out",
        "r2.safetensors",
    ];
    let r = run_in(d, &resume.map(String::from));
    let err = text(&r.stderr);
    assert!(
        r.status.code() == Some(1) && err.contains("invalid --config: cannot be combined with --resume"),
        "{err}"
    );
    assert!(!d.join("r2.safetensors").exists());
    // --batch-norm over norm = "none".
    std::fs::write(d.join("nn.toml"), "norm = \"none\"\n").unwrap();
    let out = ok(
        d,
        &with(&["--config", "nn.toml", "--batch-norm", "--out", "n.safetensors"]),
    );
    assert!(out.contains("BatchNorm(6"), "{out}");
    // A file's batch size larger than the rows.
    std::fs::write(d.join("bs.toml"), "batch_size = 500\n").unwrap();
    let out = ok(d, &with(&["--config", "bs.toml", "--out", "b.safetensors"]));
    assert!(
        out.contains(
            "note: batch_size = 500 in bs.toml is larger than the 135 training rows: one batch of 135 per epoch"
        ),
        "{out}"
    );
    let r = run_in(
        d,
        &with(&["--batch-size", "500", "--out", "b.safetensors", "--overwrite"]),
    );
    assert!(text(&r.stderr).contains("invalid --batch-size: 500 is larger than the 135 training rows"));
}

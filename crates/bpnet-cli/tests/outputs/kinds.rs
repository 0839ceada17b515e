//! Existing files of another kind, misplaced outputs, and the outputs of
//! successful runs (see `tests/outputs.rs`).

use super::*;
use std::process::Command;

#[test]
fn replacing_another_kind_of_file_needs_overwrite() {
    let dir = setup();
    let d = dir.path();
    let csv = std::fs::read(d.join("wine.csv")).unwrap();
    // A model over a CSV that is not an input of this run.
    std::fs::write(d.join("x.safetensors"), &csv).unwrap();
    std::fs::copy(d.join("wine.csv"), d.join("train.csv")).unwrap();
    let args = train("train.csv", "x.safetensors");
    refused(d, &args, &["--out x.safetensors exists and holds a CSV", "--overwrite"]);
    ok(d, &with(args.clone(), &["--overwrite"]));
    bpnet::io::load_model(&d.join("x.safetensors")).unwrap();
    // Retraining over a model is the normal case.
    ok(d, &args);
    // ... but a history CSV over a data CSV is not.
    std::fs::write(d.join("y.history.csv"), &csv).unwrap();
    refused(
        d,
        &train("train.csv", "y.safetensors"),
        &["y.history.csv (the history", "a training history"],
    );
    // Predictions over predictions, not over a data CSV or a model.
    let predict = ["predict", "--model", "m.safetensors", "--data", "wine.csv", "--output"];
    ok(d, &with(predict.to_vec(), &["p.csv"]));
    ok(d, &with(predict.to_vec(), &["p.csv"]));
    std::fs::write(d.join("scratch.csv"), &csv).unwrap();
    refused(
        d,
        &with(predict.to_vec(), &["scratch.csv"]),
        &["holds a CSV", "not predictions"],
    );
    refused(d, &with(predict.to_vec(), &["x.safetensors"]), &["holds a bpnet model"]);
    // A classifier's predictions are predictions to any model: a regression
    // model's over them (it said "not predictions"); a regression model's
    // header is its target names, which only that model (or one of the
    // same targets) can tell from a data file's.
    let regress = [
        "train",
        "--data",
        "wine.csv",
        "--target",
        "proline",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        "r.safetensors",
    ];
    ok(d, &regress);
    let predict_r = [
        "predict",
        "--model",
        "r.safetensors",
        "--data",
        "wine.csv",
        "--output",
        "p.csv",
    ];
    ok(d, &predict_r);
    assert!(
        std::fs::read_to_string(d.join("p.csv"))
            .unwrap()
            .starts_with("proline\n")
    );
    ok(d, &predict_r);
    refused(
        d,
        &with(predict.to_vec(), &["p.csv"]),
        &["starting 'proline', not predictions"],
    );
    // A header of other target names cannot be told from data: refused,
    // saying what the model takes for predictions.
    std::fs::write(d.join("other.csv"), "t1,t2\n1,2\n").unwrap();
    refused(
        d,
        &with(predict_r[..6].to_vec(), &["other.csv"]),
        &["not predictions (this model's header 'proline', or prediction,... or output_0,...)"],
    );
    // A data file whose first column is named `prediction` is data (it was
    // replaced: the rule was a header starting with `prediction,`).
    std::fs::write(d.join("data.csv"), "prediction,age,p_x\n1,30,2\n").unwrap();
    refused(
        d,
        &with(predict.to_vec(), &["data.csv"]),
        &["starting 'prediction,age,p_x', not predictions"],
    );
    std::fs::write(d.join("data.csv"), "output_0,age\n1,30\n").unwrap();
    refused(d, &with(predict.to_vec(), &["data.csv"]), &["not predictions"]);
    ok(d, &with(predict.to_vec(), &["scratch.csv", "--overwrite"]));
    let p = std::fs::read_to_string(d.join("scratch.csv")).unwrap();
    assert!(p.starts_with("prediction,p_class_0") && p.lines().count() == 179, "{p}");
    // ONNX over ONNX, not over a model.
    let export = ["export", "--model", "m.safetensors", "--onnx"];
    ok(d, &with(export.to_vec(), &["m.onnx"]));
    ok(d, &with(export.to_vec(), &["m.onnx"]));
    refused(
        d,
        &with(export.to_vec(), &["x.safetensors"]),
        &["holds a bpnet model, not an ONNX model"],
    );
    // A model over a checkpoint, a figure over text.
    ok(
        d,
        &with(train("train.csv", "c.safetensors"), &["--checkpoint-every", "1"]),
    );
    refused(
        d,
        &train("train.csv", "c.ckpt.safetensors"),
        &["holds a bpnet training checkpoint"],
    );
    std::fs::create_dir(d.join("figs")).unwrap();
    std::fs::write(d.join("figs/curves.png"), "notes\n").unwrap();
    refused(
        d,
        &["plot", "m.history.json", "--out", "figs"],
        &["figs/curves.png", "not a PNG image"],
    );
    // An empty file holds nothing to lose.
    std::fs::write(d.join("e.safetensors"), "").unwrap();
    ok(d, &train("train.csv", "e.safetensors"));
}

#[test]
fn outputs_in_missing_folders_on_folders_or_on_pipes_are_refused() {
    let dir = setup();
    let d = dir.path();
    refused(
        d,
        &train("wine.csv", "nowhere/m.safetensors"),
        &["the folder nowhere does not exist"],
    );
    refused(
        d,
        &train("wine.csv", "wine.csv/m.safetensors"),
        &["wine.csv is not a folder"],
    );
    std::fs::create_dir(d.join("f.safetensors")).unwrap();
    refused(d, &train("wine.csv", "f.safetensors"), &["is a folder"]);
    // A rename over a pipe (or /dev/null) would replace the pipe itself.
    assert!(Command::new("mkfifo").arg(d.join("pipe")).status().unwrap().success());
    std::os::unix::fs::symlink("pipe", d.join("pipe-link")).unwrap();
    let predict = [
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        "wine.csv",
        "--overwrite",
        "--output",
    ];
    for name in ["pipe", "pipe-link"] {
        refused(d, &with(predict.to_vec(), &[name]), &["is not a regular file"]);
    }
    refused(
        d,
        &["plot", "m.history.json", "--out", "pipe"],
        &["must be a folder but holds a device, pipe"],
    );
    let err = bpnet::io::write_atomic(&d.join("pipe"), b"x").unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_successful_run_writes_correct_outputs() {
    let dir = setup();
    let d = dir.path();
    let args = with(
        train("wine.csv", "sub/w.safetensors"),
        &["--diagnostics", "--plot", "--checkpoint-every", "1"],
    );
    ok(d, &args);
    let sub = d.join("sub");
    bpnet::io::load_model(&sub.join("w.safetensors")).unwrap();
    bpnet::io::load_run(&sub.join("w.ckpt.safetensors")).unwrap();
    let history = std::fs::read_to_string(sub.join("w.history.csv")).unwrap();
    assert!(history.starts_with("epoch,step,train_loss") && history.lines().count() == 3);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sub.join("w.history.json")).unwrap()).unwrap();
    assert_eq!(json["epochs"].as_array().unwrap().len(), 2);
    assert!(json["diagnostics"].is_object());
    assert!(
        std::fs::read_to_string(sub.join("w.diagnostics.csv"))
            .unwrap()
            .starts_with("epoch,step,name")
    );
    for f in ["curves.png", "curves.svg", "diagnostics.png", "diagnostics.svg"] {
        assert!(sub.join("w.plots").join(f).is_file(), "{f}");
    }
    // Run again: every output is of its own kind, so no --overwrite is
    // needed; the temporary file a killed checkpoint write left is removed.
    let stale = sub.join(format!(".w.ckpt.safetensors.tmp-{}-0", dead_pid()));
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    ok(d, &args);
    assert!(!stale.exists(), "stale temporary file kept");
    bpnet::io::load_run(&sub.join("w.ckpt.safetensors")).unwrap();
}

/// The id of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn experiment_outputs_are_listed_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("notes.txt"), "mine\n").unwrap();
    let base = [
        "experiment",
        "bn-mnist",
        "--steps",
        "20",
        "--eval-every",
        "10",
        "--train-limit",
        "200",
        "--test-limit",
        "100",
        "--probe-rows",
        "20",
        "--quiet",
        "--out",
    ];
    refused(
        d,
        &with(base.to_vec(), &["notes.txt", "--overwrite"]),
        &["--out notes.txt must be a folder"],
    );
    ok(d, &with(base.to_vec(), &["run"]));
    let mut written: Vec<String> = std::fs::read_dir(d.join("run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut listed = bpnet_lab::experiment::Study::Paper.files();
    listed.extend(bpnet_lab::experiment::REPORT_FILES.iter().map(|f| f.to_string()));
    written.sort();
    listed.sort();
    assert_eq!(written, listed);
    std::fs::write(d.join("run/report.html"), "my own notes\n").unwrap();
    refused(
        d,
        &with(base.to_vec(), &["run"]),
        &["run/report.html (in --out run)", "not an HTML report written by bpnet"],
    );
    // A page of the user's own is not bpnet's report either (any HTML was
    // taken for one and replaced).
    std::fs::write(
        d.join("run/report.html"),
        "<!DOCTYPE html><html><title>Mine</title></html>\n",
    )
    .unwrap();
    refused(
        d,
        &with(base.to_vec(), &["run"]),
        &["holds an HTML page not written by bpnet, not an HTML report written by bpnet"],
    );
    // A user's own JSON or CSV of an output's name is not replaced either
    // (any JSON, and any CSV starting `step,`, had been taken for bpnet's);
    // the run's own are (the rerun with the report put back passes).
    ok(d, &with(base.to_vec(), &["run", "--overwrite"]));
    for (file, text, want) in [
        (
            "config.json",
            "{\"name\": \"my-project\", \"version\": \"1.0\"}\n",
            "not a JSON document written by bpnet",
        ),
        ("results.json", "[1, 2, 3]\n", "not a JSON document written by bpnet"),
        ("paper_curves.csv", "step,loss\n1,2.3\n", "not experiment results (CSV)"),
        // A Markdown output is called Markdown (it was "(CSV)").
        (
            "INCOMPLETE.md",
            "# My notes\n",
            "not an unfinished run's marker (Markdown)",
        ),
    ] {
        let mine = d.join("mine");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join(file), text).unwrap();
        refused(
            d,
            &with(base.to_vec(), &["mine"]),
            &[&format!("mine/{file} (in --out mine)"), want],
        );
        std::fs::remove_dir_all(&mine).unwrap();
    }
    ok(d, &with(base.to_vec(), &["run"]));
}

//! The binary's `experiment`, `plot` and `train --diagnostics --plot`
//! commands, run for real in temporary directories at a tiny size.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args(args)
        .current_dir(dir)
        .env("BPNET_DATA_DIR", format!("{ROOT}/data"))
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> (String, String) {
    let out = run_in(dir, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{args:?} failed:\n{stdout}{stderr}");
    (stdout, stderr)
}

fn assert_png(p: &Path) {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", p.display());
}

#[test]
fn experiment_bn_mnist_prints_its_settings_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "experiment",
        "bn-mnist",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--train-limit",
        "600",
        "--test-limit",
        "200",
        "--probe-rows",
        "50",
        "--lr",
        "0.8",
        "--init-std",
        "0.05",
        "--seed",
        "7",
        "--out",
        "run",
    ];
    let (out, _) = ok(dir.path(), &args);
    assert!(
        out.contains("learning rate 0.8, initial weights N(0, 0.05^2), batches of 60, 40 steps, seed 7"),
        "{out}"
    );
    assert!(out.contains("with BN: final test accuracy"), "{out}");
    let run = dir.path().join("run");
    for f in [
        "fig1a_test_accuracy.png",
        "fig1b_sigmoid_input_without_bn.png",
        "fig1c_sigmoid_input_with_bn.png",
    ] {
        assert_png(&run.join(f));
        assert!(run.join(f.replace(".png", ".svg")).is_file());
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["lr"], 0.8);
    assert_eq!(config["config"]["seed"], 7);
    // One whole run (it recorded the normalization studies' 3 per arm).
    assert_eq!(config["config"]["seeds"], 1);
    assert!(
        config["command"]
            .as_str()
            .unwrap()
            .starts_with("bpnet experiment bn-mnist --steps 40")
    );
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(report.contains("data:image/png;base64,") && report.contains("first step at 97%"));
    assert!(!run.join("INCOMPLETE.md").exists(), "a finished run removes its marker");
}

/// A run killed after it started writing leaves `INCOMPLETE.md` naming it
/// (the folder held curves of the new run beside the last finished run's
/// report, and nothing said so); a finished run into the folder removes it.
#[test]
fn an_interrupted_experiment_leaves_a_marker() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let size = [
        "--train-limit",
        "300",
        "--test-limit",
        "100",
        "--eval-every",
        "2",
        "--out",
        "run",
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args([&["experiment", "bn-mnist", "--steps", "100000"], &size[..]].concat())
        .current_dir(dir.path())
        .env("BPNET_DATA_DIR", format!("{ROOT}/data"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        if line.unwrap().starts_with("== ") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let marker = std::fs::read_to_string(dir.path().join("run/INCOMPLETE.md")).unwrap();
    assert!(
        marker.starts_with("# An unfinished bpnet experiment\n\n`bpnet experiment bn-mnist --steps 100000"),
        "{marker}"
    );
    assert!(!dir.path().join("run/report.html").exists());
    ok(
        dir.path(),
        &[&["experiment", "bn-mnist", "--steps", "4"], &size[..]].concat(),
    );
    assert!(dir.path().join("run/report.html").is_file());
    assert!(!dir.path().join("run/INCOMPLETE.md").exists());
}

#[test]
fn experiment_rejects_bad_options_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["experiment", "bn-mnist", "--batch-size", "1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("batch size"), "{err}");
}

/// An option a study does not read is refused in one line naming it (the
/// sweep ignored --seeds, --lr and --init-std while its banner printed
/// them; the batch-size study ignored --steps and --batch-size, placement
/// --eval-every); so are a sweep grid of zeros and a seed whose last seed
/// overflows (it panicked).
#[test]
fn experiment_refuses_options_its_study_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (
            &["sweep", "--seeds", "2"],
            "invalid --seeds: has no effect on `bpnet experiment sweep`",
        ),
        (&["sweep", "--lr", "2"], "invalid --lr: has no effect"),
        (&["sweep", "--init-std", "0.5"], "invalid --init-std: has no effect"),
        (
            &["batch-size", "--steps", "7"],
            "invalid --steps: has no effect on `bpnet experiment batch-size`",
        ),
        (&["batch-size", "--quick"], "invalid --quick: has no effect"),
        (
            &["placement", "--eval-every", "20"],
            "invalid --eval-every: has no effect",
        ),
        (
            &["bn-mnist", "--batch-sizes", "4"],
            "invalid --batch-sizes: has no effect",
        ),
        (
            &["sweep", "--sweep-stds", "0"],
            "invalid --sweep-stds: must be positive numbers",
        ),
        (
            &["bn-mnist", "--seed", "18446744073709551615", "--seeds", "2"],
            "invalid --seed: 18446744073709551615: the seeds 18446744073709551615..18446744073709551615+1 do not fit",
        ),
    ];
    for (args, want) in cases {
        let out = run_in(dir.path(), &[&["experiment"], args, &["--out", "x"]].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.trim().lines().count() == 1 && err.contains(want), "{args:?}: {err}");
        assert!(!dir.path().join("x").exists(), "{args:?}");
    }
    // A tiny run of `args` (they name the study and --out) that succeeds;
    // its standard output.
    let tiny = |args: &[&str]| {
        let size = [
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--train-limit",
            "300",
            "--test-limit",
            "100",
        ];
        let out = run_in(dir.path(), &[&["experiment"], args, &size].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // One run at the last seed is no overflow (it was refused, counting
    // the normalization studies' 3 seeds).
    tiny(&["lr", "--seed", "18446744073709551615", "--out", "last"]);
    // What a study reads is accepted: the sweep's grid and its steps.
    let said = tiny(&["sweep", "--sweep-lrs", "0.1", "--sweep-stds", "0.01", "--out", "sw"]);
    assert!(
        said.contains("plain SGD, learning rates 0.1 x initial weight sds 0.01, batches of 60, 4 steps, seed 1"),
        "{said}"
    );
    // A run into the same folder says the sweep's file is not its own.
    let said = tiny(&["lr", "--out", "sw"]);
    assert!(
        said.contains("note: sw also holds sweep.csv from an earlier run, not this one's"),
        "{said}"
    );
}

#[test]
fn train_with_diagnostics_and_plot_then_plot_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--data",
        "mnist",
        "--limit",
        "600",
        "--hidden",
        "64,64,64,64,64,64",
        "--activation",
        "sigmoid",
        "--no-batch-norm",
        "--init",
        "normal:0.1",
        "--optimizer",
        "sgd",
        "--lr",
        "0.5",
        "--batch-size",
        "60",
        "--epochs",
        "2",
        "--patience",
        "0",
        "--out",
        "deep.safetensors",
        "--diagnostics",
        "--plot",
        "--quiet",
    ];
    let (_, stderr) = ok(dir.path(), &args);
    assert!(stderr.contains("warning: vanishing gradients"), "{stderr}");
    let history: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("deep.history.json")).unwrap()).unwrap();
    let diag = &history["diagnostics"];
    assert_eq!(diag["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(diag["epochs"][0]["activations"].as_array().unwrap().len(), 6);
    assert_eq!(diag["epochs"][0]["grad_norms"][0]["param"], "layers.0.weight");
    assert_eq!(diag["warnings"][0]["kind"], "vanishing_gradients");
    assert_eq!(
        history["epochs"].as_array().unwrap().len(),
        2,
        "the history itself is kept"
    );
    let csv = std::fs::read_to_string(dir.path().join("deep.diagnostics.csv")).unwrap();
    assert!(
        csv.starts_with("epoch,step,name,quantity,value\n1,9,model,train_metric,"),
        "{csv}"
    );
    assert!(csv.contains(",layers.1,saturated_fraction,"));
    for f in ["curves.png", "diagnostics.png"] {
        assert_png(&dir.path().join("deep.plots").join(f));
    }
    let (out, _) = ok(dir.path(), &["plot", "deep.history.json", "--out", "again"]);
    assert!(out.contains("curves.png") && out.contains("diagnostics.svg"), "{out}");
    assert_png(&dir.path().join("again/diagnostics.png"));
    // Diagnostics with nothing to draw are refused, as curves without a
    // number are (they gave empty axes and exit 0), and no folder is made.
    for (name, bad) in [
        ("oops", Value::from("oops")),
        ("empty", serde_json::json!({"epochs": []})),
    ] {
        let mut h = history.clone();
        h["diagnostics"] = bad;
        let file = format!("{name}.history.json");
        std::fs::write(dir.path().join(&file), h.to_string()).unwrap();
        let out = run_in(dir.path(), &["plot", &file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.trim_end().lines().count() == 1, "{err}");
        assert!(err.contains(&file) && err.contains("nothing to plot"), "{err}");
        assert!(!dir.path().join(format!("{name}.plots")).exists());
    }
    // The CSV history has no diagnostics: loss and metric curves only.
    ok(dir.path(), &["plot", "deep.history.csv", "--out", "from-csv"]);
    assert_png(&dir.path().join("from-csv/curves.png"));
    assert!(!dir.path().join("from-csv/diagnostics.png").exists());
    let (out, _) = ok(dir.path(), &["plot", "deep.history.csv", "--out", "from-csv"]);
    assert!(!out.contains("note:"), "{out}");
    // Into a folder that holds another history's diagnostics: said, not
    // left beside the new curves without a word.
    let (out, _) = ok(dir.path(), &["plot", "deep.history.csv", "--out", "again"]);
    assert!(
        out.contains(
            "note: again/diagnostics.png and again/diagnostics.svg are from an earlier history (this one has no diagnostics; kept)"
        ),
        "{out}"
    );
    // A run over it without --diagnostics says what it left from this one.
    let again: Vec<&str> = args.iter().copied().filter(|a| *a != "--diagnostics").collect();
    let (_, stderr) = ok(dir.path(), &[&again[..], &["--overwrite"]].concat());
    assert!(
        stderr.contains(
            "note: deep.diagnostics.csv, deep.plots/diagnostics.png, deep.plots/diagnostics.svg are from an earlier run"
        ),
        "{stderr}"
    );
}

#[test]
fn plot_explains_a_file_that_is_not_a_history() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.json"), "{\"a\": 1}").unwrap();
    let out = run_in(dir.path(), &["plot", "x.json"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a history written by bpnet train"), "{err}");
}

/// Refused in one line before anything is written: a depth of a million
/// (refused mid-study with the widths in a 4 MB line, a folder left), a
/// repeated value in a list that names rows or columns of the results, a
/// --mnist that is no folder (the message spoke of "this folder"), and
/// --out the MNIST folder (it ran once, then took its outputs for inputs).
#[test]
fn experiment_refuses_bad_lists_and_folders_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mnist = format!("{ROOT}/data/mnist");
    std::fs::create_dir(d.join("copy")).unwrap();
    for f in std::fs::read_dir(&mnist).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), d.join("copy").join(f.file_name())).unwrap();
    }
    let cases: [(&[&str], &str); 8] = [
        (
            &["depth", "--depth", "1000000"],
            "invalid depth: must be at most 10000 hidden layers",
        ),
        (
            &["lr-range", "--lr-range", "0.1,0.1"],
            "invalid learning-rate range: must be distinct",
        ),
        (
            &["batch-size", "--batch-sizes", "4,4"],
            "invalid batch sizes: must be distinct",
        ),
        (
            &["sweep", "--sweep-lrs", "0.5,0.5"],
            "invalid --sweep-lrs: must be distinct",
        ),
        (
            &["sweep", "--sweep-stds", "0.1,0.1"],
            "invalid --sweep-stds: must be distinct",
        ),
        (
            &["bn-mnist", "--mnist", "nosuch"],
            "invalid --mnist: nosuch does not exist",
        ),
        (
            &["bn-mnist", "--mnist", "copy/t10k-labels-idx1-ubyte.gz"],
            "is not a folder",
        ),
        (
            &["bn-mnist", "--mnist", "copy", "--out", "copy"],
            "invalid --out: copy is the MNIST folder (--mnist)",
        ),
    ];
    for (args, want) in cases {
        let mut all = [&["experiment"][..], args].concat();
        if !args.contains(&"--out") {
            all.extend(["--out", "o"]);
        }
        let out = run_in(d, &all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want) && err.len() < 300, "{args:?}: {err}");
        assert!(!d.join("o").exists(), "{args:?} made its folder");
    }
}

//! Options that were recorded but not applied, or applied without a word:
//! adamw's default decay, `--batch-size` and `--epochs` with `--resume`,
//! a configuration file's bad values, lr-find's inputs and ranges, `--json`
//! on paths that are not UTF-8, `plot` on histories with nothing to draw,
//! and `experiment`'s row counts. Each through the real binary, on the
//! bundled iris table (tiny runs).

use std::path::Path;

mod common;
use common::{ok, run_in, text};

const IRIS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv");

const BASE: [&str; 11] = [
    "train",
    "--data",
    IRIS,
    "--target",
    "species",
    "--hidden",
    "8",
    "--seed",
    "3",
    "--ensemble",
    "1",
];

fn train(dir: &Path, extra: &[&str]) -> String {
    ok(dir, &[&BASE[..], extra].concat())
}

/// The refusal of `args`: stderr, after checking the exit status and one line.
fn refused(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded:\n{}", text(&out.stdout));
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn predictions(dir: &Path, model: &str) -> String {
    ok(dir, &["predict", "--model", model, "--data", IRIS, "--output", "-"])
}

#[test]
fn adamw_decays_by_default_and_not_with_weight_decay_0() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let printed = train(d, &["--optimizer", "adamw", "--print-config"]);
    assert!(printed.contains("weight_decay = 0.01"), "{printed}");
    let run = |out: &str, extra: &[&str]| {
        train(
            d,
            &[
                &["--optimizer", "adamw", "--epochs", "3", "--quiet", "--out", out][..],
                extra,
            ]
            .concat(),
        );
        predictions(d, out)
    };
    let default = run("default.safetensors", &[]);
    assert_eq!(default, run("explicit.safetensors", &["--weight-decay", "0.01"]));
    // 0 had been taken for "not given" and trained with 0.01.
    assert_ne!(default, run("none.safetensors", &["--weight-decay", "0"]));
    // A configuration file's value stands, 0 included.
    std::fs::write(d.join("run.toml"), "optimizer = \"adamw\"\nweight_decay = 0.0\n").unwrap();
    let printed = train(d, &["--config", "run.toml", "--print-config"]);
    assert!(printed.contains("weight_decay = 0.0\n"), "{printed}");
}

#[test]
fn resume_refuses_another_batch_size_and_takes_epochs_over_a_step_budget() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt_args = [
        "--batch-size",
        "16",
        "--steps",
        "4",
        "--checkpoint-steps",
        "2",
        "--out",
        "m.safetensors",
    ];
    train(d, &[&ckpt_args[..], &["--quiet"]].concat());
    let err = refused(
        d,
        &[
            "train",
            "--resume",
            "m.ckpt.safetensors",
            "--batch-size",
            "8",
            "--out",
            "r.safetensors",
        ],
    );
    assert!(
        err.contains("--batch-size") && err.contains("8 differs from the batch size 16"),
        "{err}"
    );
    assert!(!d.join("r.safetensors").exists());
    // The checkpoint's budget was 4 steps; --epochs 2 asks for 2 epochs of
    // ceil(135 / 16) = 9 batches (--epochs had been recorded and ignored).
    let out = ok(
        d,
        &[
            "train",
            "--resume",
            "m.ckpt.safetensors",
            "--epochs",
            "2",
            "--out",
            "r.safetensors",
            "--json",
        ],
    );
    let json = common::last_json(&out);
    let step = json["final"]["step"].as_u64().unwrap();
    assert_eq!(step, 18, "{out}");
    // Fewer steps than the checkpoint took are refused (it trained nothing,
    // said the checkpoint's epochs, exit 0); as many rewrite the model.
    let again = [
        "train",
        "--resume",
        "m.ckpt.safetensors",
        "--out",
        "r.safetensors",
        "--overwrite",
    ];
    let err = refused(d, &[&again[..], &["--steps", "3"]].concat());
    assert!(
        err.contains("the run to resume has taken 4 steps (1 epoch done), more than the 3 steps asked for"),
        "{err}"
    );
    ok(d, &[&again[..], &["--steps", "4", "--quiet"]].concat());
    // Full-batch gd takes every row whatever --batch-size says: the same
    // command resumes.
    let gd = [
        "--optimizer",
        "gd",
        "--batch-size",
        "64",
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
    ];
    train(d, &[&gd[..], &["--quiet", "--out", "g.safetensors"]].concat());
    train(
        d,
        &[
            &gd[..],
            &["--quiet", "--out", "g2.safetensors", "--resume", "g.ckpt.safetensors"],
        ]
        .concat(),
    );
    // Streamed runs too.
    let streamed = [
        "--stream",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
    ];
    train(d, &[&streamed[..], &["--quiet", "--out", "s.safetensors"]].concat());
    let resume = [
        "train",
        "--resume",
        "s.ckpt.safetensors",
        "--batch-size",
        "32",
        "--out",
        "s2.safetensors",
    ];
    let err = refused(d, &resume);
    assert!(err.contains("32 differs from the batch size 16"), "{err}");
}

#[test]
fn a_config_files_bad_value_is_named_by_its_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The library names some options by what they are ("learning rate"):
    // those named neither file nor key.
    let cases = [
        ("optimizer = \"sgdx\"", "optimizer"),
        ("dropout = 5.0", "dropout"),
        ("lr = -0.5", "lr"),
        ("weight_decay = -1.0", "weight_decay"),
        ("hidden = \"0\"", "hidden"),
        ("epochs = 0", "epochs"),
        ("norm = \"ghost:0\"", "norm"),
    ];
    for (line, key) in cases {
        std::fs::write(d.join("run.toml"), format!("{line}\n")).unwrap();
        // BASE's own --hidden would override the file's.
        let base: Vec<&str> = match key {
            "hidden" => BASE.iter().copied().filter(|a| *a != "--hidden" && *a != "8").collect(),
            _ => BASE.to_vec(),
        };
        let err = refused(
            d,
            &[&base[..], &["--config", "run.toml", "--out", "m.safetensors"]].concat(),
        );
        assert!(err.contains(&format!("invalid {key} in run.toml")), "{err}");
        // The same value given as a flag too is named by the flag.
        let (flag, value) = line.split_once(" = ").unwrap();
        let flag = format!("--{}={}", flag.replace('_', "-"), value.trim_matches('"'));
        let args = [&flag, "--config", "run.toml", "--out", "m.safetensors"];
        let err = refused(d, &[&base[..], &args[..]].concat());
        assert!(err.contains("error: invalid") && !err.contains("run.toml"), "{err}");
    }
}

/// A value with a newline, quoted back in an error, split the error over
/// two lines: it is written as an escape.
#[test]
fn a_value_with_a_newline_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("run.toml"), "task = \"x\\ny\"\n").unwrap();
    let err = refused(
        d,
        &[&BASE[..], &["--config", "run.toml", "--out", "m.safetensors"]].concat(),
    );
    assert!(err.contains("x\\ny") && err.contains("run.toml"), "{err}");
    std::fs::write(d.join("keys.toml"), "\"a\\nb\" = 1\n").unwrap();
    let err = refused(
        d,
        &[&BASE[..], &["--config", "keys.toml", "--out", "m.safetensors"]].concat(),
    );
    assert!(err.contains("a\\nb") && err.contains("keys.toml"), "{err}");
    let err = refused(
        d,
        &[&BASE[..], &["--norm", "ghost\n4", "--out", "m.safetensors"]].concat(),
    );
    assert!(err.contains("ghost\\n4"), "{err}");
    assert!(!d.join("m.safetensors").exists());
}

#[test]
fn batch_norm_over_a_files_other_norm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("run.toml"), "norm = \"layer\"\nbatch_norm = false\n").unwrap();
    let err = refused(
        d,
        &[
            &BASE[..],
            &["--config", "run.toml", "--batch-norm", "--out", "m.safetensors"],
        ]
        .concat(),
    );
    assert!(err.contains("conflicts with norm = \"layer\""), "{err}");
}

#[test]
fn lr_find_never_replaces_its_inputs_and_refuses_what_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let find = ["lr-find", "--data", IRIS, "--target", "species", "--iterations", "12"];
    std::fs::copy(IRIS, d.join("test.csv")).unwrap();
    let err = refused(
        d,
        &[&find[..], &["--test", "test.csv", "--figure", "test", "--overwrite"]].concat(),
    );
    assert!(
        err.contains("--test") && err.contains("no effect with bpnet lr-find"),
        "{err}"
    );
    std::fs::write(d.join("cfg.csv"), "hidden = \"8\"\n").unwrap();
    let err = refused(
        d,
        &[&find[..], &["--config", "cfg.csv", "--figure", "cfg", "--overwrite"]].concat(),
    );
    assert!(err.contains("is the input --config"), "{err}");
    assert_eq!(std::fs::read_to_string(d.join("cfg.csv")).unwrap(), "hidden = \"8\"\n");
    // A config file's test file is an input too.
    std::fs::write(d.join("t.toml"), "test = \"test.csv\"\n").unwrap();
    let err = refused(
        d,
        &[&find[..], &["--config", "t.toml", "--figure", "test", "--overwrite"]].concat(),
    );
    assert!(err.contains("is the input --test"), "{err}");
    assert_eq!(std::fs::read(d.join("test.csv")).unwrap(), std::fs::read(IRIS).unwrap());
    for (flag, value) in [("--start-lr", "1e-320"), ("--end-lr", "1.7e308")] {
        let err = refused(d, &[&find[..], &[flag, value, "--figure", "r"]].concat());
        assert!(err.contains("normal f32 values"), "{err}");
    }
    let err = refused(d, &[&find[..], &["--batch-size", "1000", "--figure", "b"]].concat());
    assert!(err.contains("1000 is larger than the 135 training rows"), "{err}");
    // Features near 1e30 unscaled: the first batch's loss is not finite.
    let mut csv = String::from("a,b,y\n");
    for i in 0..20 {
        csv.push_str(&format!("{}e29,{}e29,{}\n", i % 9 + 1, 9 - i % 9, f64::from(i) / 7.0));
    }
    std::fs::write(d.join("huge.csv"), csv).unwrap();
    let args = [
        "lr-find",
        "--data",
        "huge.csv",
        "--target",
        "y",
        "--scaling",
        "none",
        "--no-batch-norm",
    ];
    let err = refused(d, &[&args[..], &["--figure", "h"]].concat());
    assert!(err.contains("the loss of the first batch is"), "{err}");
    assert!(!d.join("h.csv").exists() && !d.join("h.png").exists());
}

/// lr-find refuses each option only a training run uses, naming it, and
/// its `--help` does not list them (it listed all of `bpnet train`'s,
/// `--out` as "Model file to write"); the options it takes are listed.
#[test]
fn lr_find_lists_only_the_options_it_takes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let find = ["lr-find", "--data", IRIS, "--target", "species", "--iterations", "12"];
    let refused_flags: [(&str, &[&str]); 22] = [
        ("--out", &["m.safetensors"]),
        ("--checkpoint-every", &["1"]),
        ("--checkpoint-steps", &["1"]),
        ("--resume", &["c.safetensors"]),
        ("--test", &[IRIS]),
        ("--ensemble", &["2"]),
        ("--cv", &["3"]),
        ("--diagnostics", &[]),
        ("--plot", &[]),
        ("--stream", &[]),
        ("--epochs", &["2"]),
        ("--steps", &["2"]),
        ("--patience", &["2"]),
        ("--json", &[]),
        ("--print-config", &[]),
        ("--lr", &["0.1"]),
        ("--schedule", &["cosine"]),
        ("--monitor", &["val_loss"]),
        ("--min-delta", &["0.1"]),
        ("--on-nan", &["stop"]),
        ("--shuffle-buffer", &["10"]),
        ("--bn-sync", &["global"]),
    ];
    let help = ok(d, &["lr-find", "--help"]);
    let listed = |flag: &str| help.lines().any(|l| l.split_whitespace().next() == Some(flag));
    for (flag, value) in refused_flags {
        let err = refused(d, &[&find[..], &[flag], value, &["--figure", "f"]].concat());
        assert!(
            err.contains(&format!("invalid {flag}: has no effect with bpnet lr-find")),
            "{err}"
        );
        assert!(!listed(flag), "{flag}:\n{help}");
    }
    for flag in [
        "--data",
        "--hidden",
        "--batch-size",
        "--no-stream",
        "--start-lr",
        "--figure",
        "--overwrite",
    ] {
        assert!(listed(flag), "{flag}:\n{help}");
    }
    assert!(std::fs::read_dir(d).unwrap().next().is_none(), "nothing written");
}

#[cfg(unix)]
#[test]
fn json_output_names_paths_that_are_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, &["--epochs", "1", "--quiet", "--out", "m.safetensors"]);
    let odd = OsStr::from_bytes(b"m\xff.safetensors");
    std::fs::copy(d.join("m.safetensors"), d.join(odd)).unwrap();
    let onnx = OsStr::from_bytes(b"m\xff.onnx");
    let commands: [Vec<&OsStr>; 3] = [
        vec!["inspect".as_ref(), odd, "--json".as_ref()],
        vec![
            "eval".as_ref(),
            "--model".as_ref(),
            odd,
            "--data".as_ref(),
            IRIS.as_ref(),
            "--json".as_ref(),
        ],
        vec![
            "export".as_ref(),
            "--model".as_ref(),
            odd,
            "--onnx".as_ref(),
            onnx,
            "--json".as_ref(),
        ],
    ];
    for args in commands {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(&args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let json = common::last_json(&text(&out.stdout));
        let named = json
            .get("model")
            .or_else(|| json.get("onnx"))
            .and_then(|v| v.as_str())
            .unwrap();
        assert!(named.starts_with('m') && named.contains('\u{fffd}'), "{json}");
    }
}

#[test]
fn plot_reads_a_byte_order_mark_and_refuses_a_history_without_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = "epoch,train_loss,val_loss,val_metric\n1,0.9,1.0,0.5\n2,0.7,0.8,0.6\n";
    std::fs::write(d.join("bom.history.csv"), format!("\u{feff}{csv}")).unwrap();
    ok(d, &["plot", "bom.history.csv"]);
    assert!(d.join("bom.plots/curves.png").exists());
    std::fs::write(d.join("cr.history.csv"), csv.replace('\n', "\r")).unwrap();
    ok(d, &["plot", "cr.history.csv"]);
    let json = r#"{"epochs": [{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_metric": 0.5}]}"#;
    std::fs::write(d.join("bom.history.json"), format!("\u{feff}{json}")).unwrap();
    ok(d, &["plot", "bom.history.json"]);
    std::fs::write(
        d.join("nan.history.csv"),
        "epoch,train_loss,val_loss,val_metric\n1,NaN,NaN,NaN\n2,inf,NaN,NaN\n",
    )
    .unwrap();
    let err = refused(d, &["plot", "nan.history.csv"]);
    assert!(err.contains("nothing to plot"), "{err}");
    assert!(!d.join("nan.plots").exists());
}

#[test]
fn experiment_refuses_batches_larger_than_its_images_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let study = [
        "experiment",
        "bn-mnist",
        "--quick",
        "--steps",
        "5",
        "--test-limit",
        "100",
    ];
    for (extra, says) in [
        (&["--train-limit", "1", "--out", "a"][..], "1 training image"),
        (
            &["--train-limit", "50", "--out", "b"][..],
            "60 is larger than the 50 training images",
        ),
        (
            &["--train-limit", "500", "--batch-size", "600", "--out", "c"][..],
            "600 is larger than the 500",
        ),
    ] {
        let err = refused(d, &[&study[..], extra].concat());
        assert!(err.contains(says), "{extra:?}: {err}");
        let out = extra.last().unwrap();
        assert!(!d.join(out).exists(), "{extra:?} left {out}");
    }
    let err = refused(
        d,
        &["experiment", "lr", "--quick", "--lr-multipliers", "1,1", "--out", "l"],
    );
    assert!(err.contains("must be distinct"), "{err}");
}

#[test]
fn errors_in_files_with_classic_mac_line_ends_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Line 4 holds the bad cell (line 3 is blank); every error had said "line 1".
    std::fs::write(d.join("cr.csv"), "a,b,y\r1,2,0\r\r3,x,1\r5,6,0\r7,8,1\r").unwrap();
    std::fs::write(d.join("ragged.csv"), "a,b,y\r1,2,0\r3,4,1\r5,6\r7,8,1").unwrap();
    for stream in [&[][..], &["--stream"][..]] {
        for (data, says) in [
            ("cr.csv", "cr.csv: line 4, column 'b'"),
            ("ragged.csv", "line 4: too few fields"),
        ] {
            let args = ["train", "--data", data, "--target", "y", "--out", "m.safetensors"];
            let err = refused(d, &[&args[..], stream].concat());
            assert!(err.contains(says), "{stream:?}: {err}");
        }
    }
    // CRLF and LF files count as before, as editors do: a lone CR in a
    // quoted cell or in `\r\r\n` line ends is not a line end there.
    for (name, text) in [
        ("crlf.csv", "a,b,y\r\n1,2,0\r\n\r\n3,x,1\r\n5,6,0\r\n7,8,1\r\n"),
        ("quoted.csv", "a,b,y\n\"1\r\",2,0\n\n3,x,1\n5,6,0\n7,8,1\n"),
        (
            "twice.csv",
            "a,b,y\r\r\n1,2,0\r\r\n\r\r\n3,x,1\r\r\n5,6,0\r\r\n7,8,1\r\r\n",
        ),
    ] {
        std::fs::write(d.join(name), text).unwrap();
        for stream in [&[][..], &["--stream"][..]] {
            let args = ["train", "--data", name, "--target", "y", "--out", "m.safetensors"];
            let err = refused(d, &[&args[..], stream].concat());
            assert!(err.contains("line 4, column 'b'"), "{name} {stream:?}: {err}");
        }
    }
}

/// Output names: a symlinked output is written through (the file it points
/// to gets the predictions and the link stays; it had replaced the link and
/// left its target stale), a link to a device is refused, `-` is refused
/// where it is not stdout (`export --onnx -` wrote a file named `-`), and
/// an extension of another format is refused (`p.json` got CSV text).
#[cfg(unix)]
#[test]
fn outputs_through_links_to_stdout_and_of_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, &["--epochs", "2", "--out", "m.safetensors", "--quiet"]);
    let predict = ["predict", "--model", "m.safetensors", "--data", IRIS];
    std::fs::create_dir(d.join("runs")).unwrap();
    std::fs::write(
        d.join("runs/real.csv"),
        "prediction,p_setosa,p_versicolor,p_virginica\nold,1,0,0\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("runs/real.csv", d.join("latest.csv")).unwrap();
    ok(d, &[&predict[..], &["--output", "latest.csv"]].concat());
    assert!(
        std::fs::symlink_metadata(d.join("latest.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let real = std::fs::read_to_string(d.join("runs/real.csv")).unwrap();
    assert_eq!(real.lines().count(), 151, "{real}");
    assert!(
        !std::fs::read_dir(d.join("runs"))
            .unwrap()
            .any(|e| e.unwrap().file_name() != "real.csv")
    );
    // A link to a file not there yet names that file.
    std::os::unix::fs::symlink("runs/new.csv", d.join("next.csv")).unwrap();
    ok(d, &[&predict[..], &["--output", "next.csv"]].concat());
    assert_eq!(std::fs::read_to_string(d.join("runs/new.csv")).unwrap(), real);
    std::os::unix::fs::symlink("/dev/null", d.join("null.csv")).unwrap();
    let err = refused(d, &[&predict[..], &["--output", "null.csv", "--overwrite"]].concat());
    assert!(err.contains("not a regular file"), "{err}");
    assert!(
        std::fs::symlink_metadata(d.join("null.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let err = refused(d, &["export", "--model", "m.safetensors", "--onnx", "-"]);
    assert!(err.contains("standard output"), "{err}");
    for name in ["p.json", "p.TSV", "p.xlsx", "p.arrow"] {
        let err = refused(d, &[&predict[..], &["--output", name]].concat());
        assert!(err.contains("predictions are written as CSV, or as Parquet"), "{err}");
    }
    assert!(!d.join("-").exists() && !d.join("p.json").exists());
}

/// Probabilities are written as the shortest text of their f32 value: a
/// small one is not rounded to 0 (6 decimals had written 3.4e-5 as
/// 0.000034 and anything under 5e-7 as 0), and each row still sums to 1.
#[test]
fn predicted_probabilities_keep_their_precision() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trained = [
        "--epochs",
        "60",
        "--batch-size",
        "16",
        "--lr",
        "0.02",
        "--out",
        "m.safetensors",
        "--quiet",
    ];
    train(d, &trained);
    ok(
        d,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            IRIS,
            "--output",
            "p.csv",
        ],
    );
    let text = std::fs::read_to_string(d.join("p.csv")).unwrap();
    let mut smallest = f64::INFINITY;
    for line in text.lines().skip(1) {
        let p: Vec<f64> = line.split(',').skip(1).map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{line}");
        smallest = p.iter().copied().fold(smallest, f64::min);
        assert!(p.iter().all(|&v| v > 0.0), "{line}");
    }
    // Under 5e-7, which 6 decimals wrote as 0.
    assert!(smallest < 5e-7, "no small probability to check: {smallest}");
}

/// A run whose last update overflows had exited 0 with a model that
/// predicted inf (and a classifier NaN probabilities): it is a divergence
/// that saves the weights from before that step where no model is; a run
/// with nothing finite left saves nothing and says so.
#[test]
fn a_last_step_that_overflows_is_a_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("r.csv"), common::linear_csv()).unwrap();
    let base = [
        "train",
        "--data",
        "r.csv",
        "--target",
        "y",
        "--hidden",
        "16,16",
        "--no-batch-norm",
        "--ensemble",
        "1",
        "--val-split",
        "0",
        "--optimizer",
        "gd",
        "--quiet",
    ];
    let err = refused(
        d,
        &[&base[..], &["--lr", "1e4", "--epochs", "2", "--out", "r.safetensors"]].concat(),
    );
    assert!(
        err.contains("diverged at step 2: the last step's weights give non-finite outputs"),
        "{err}"
    );
    assert!(
        err.contains("the weights from before this step were saved to r.safetensors"),
        "{err}"
    );
    ok(
        d,
        &[
            "predict",
            "--model",
            "r.safetensors",
            "--data",
            "r.csv",
            "--output",
            "p.csv",
        ],
    );
    let p = std::fs::read_to_string(d.join("p.csv")).unwrap();
    assert!(p.lines().skip(1).all(|v| v.parse::<f64>().unwrap().is_finite()), "{p}");
    // Its history is written beside it (there was none): both epochs (the
    // second ended on the bad step), epoch 1 as the one the model holds,
    // and the divergence as a note; the model file holds the same records.
    let h: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r.history.json")).unwrap()).unwrap();
    assert_eq!(h["epochs"].as_array().unwrap().len(), 2, "{h}");
    assert_eq!(h["best_epoch"], 1, "{h}");
    let note = h["notes"][0].as_str().unwrap();
    assert!(
        note.starts_with("training diverged at step 2: the last step's weights give non-finite outputs"),
        "{note}"
    );
    let csv = std::fs::read_to_string(d.join("r.history.csv")).unwrap();
    assert!(csv.starts_with("epoch,step,") && csv.lines().count() == 3, "{csv}");
    let inspected = ok(d, &["inspect", "r.safetensors", "--json"]);
    let meta = &common::last_json(&inspected)["metadata"];
    assert_eq!(meta["history_records"], h["epochs"]);
    let skip = [
        "--lr",
        "1e30",
        "--epochs",
        "3",
        "--on-nan",
        "skip-batch",
        "--out",
        "s.safetensors",
    ];
    let err = refused(d, &[&base[..], &skip].concat());
    assert!(
        err.contains("the trained weights give non-finite outputs") && err.contains("no model was saved"),
        "{err}"
    );
    assert!(!d.join("s.safetensors").exists());
}

/// `tune --out` with a name that is not UTF-8 writes its leaderboard,
/// report and journal beside it under the same stem (they had been
/// `tuned.*`, shared by every such run and read back as its journal).
#[cfg(unix)]
#[test]
fn tune_side_files_keep_a_stem_that_is_not_utf8() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args([
            "tune", "--data", IRIS, "--target", "species", "--trials", "2", "--cv", "2", "--epochs", "2", "--out",
        ])
        .arg(OsStr::from_bytes(b"m\xff.safetensors"))
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    for suffix in ["leaderboard.csv", "report.html", "tune.jsonl"] {
        let name = [b"m\xff.".as_slice(), suffix.as_bytes()].concat();
        assert!(d.join(OsStr::from_bytes(&name)).is_file(), "{suffix}");
        assert!(!d.join(format!("tuned.{suffix}")).exists(), "{suffix}");
    }
}

/// `--impute ''` is refused, in train and tune, as any value but none,
/// mean or median is (it was read as none, silently).
#[test]
fn an_empty_impute_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [&["train"][..], &["tune", "--trials", "1"][..]] {
        for bad in ["", " ", "foo"] {
            let out = run_in(dir.path(), &[cmd, &["--data", IRIS, "--impute", bad]].concat());
            let err = text(&out.stderr);
            assert!(
                !out.status.success() && err.trim().lines().count() == 1,
                "{cmd:?} {bad:?}: {err}"
            );
            assert!(
                err.contains(&format!("'{bad}' is not one of none, mean, median")),
                "{err}"
            );
        }
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

/// `--steps 0` and `--limit 0` are refused as `--epochs 0` is (0 meant
/// "not given": `--steps 0` trained the default 100 epochs, `--limit 0`
/// used every row).
#[test]
fn a_zero_step_count_or_row_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--steps", "--limit", "--epochs"] {
        let err = refused(dir.path(), &[&BASE[..], &[flag, "0"]].concat());
        assert!(err.contains("must be at least 1"), "{flag}: {err}");
        assert!(err.contains(&flag[2..]), "{flag}: {err}");
    }
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

/// `--patience` or `--monitor` with `--val-split 0` is refused: there is
/// nothing to watch (the run trained every epoch without a word). The
/// default patience, and a config file's keys (`--print-config` writes
/// them all), are not.
#[test]
fn early_stopping_without_validation_rows_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let none = ["--val-split", "0", "--epochs", "2"];
    for extra in [&["--patience", "3"][..], &["--monitor", "val_metric"][..]] {
        let err = refused(d, &[&BASE[..], &none, extra].concat());
        let want = format!(
            "error: invalid {}: early stopping watches the validation rows, and --val-split is 0",
            extra[0]
        );
        assert!(err.starts_with(&want), "{err}");
    }
    assert!(std::fs::read_dir(d).unwrap().next().is_none(), "nothing written");
    let printed = train(d, &[&none[..], &["--print-config"]].concat());
    std::fs::write(d.join("run.toml"), printed).unwrap();
    train(d, &["--config", "run.toml", "--quiet", "--out", "m.safetensors"]);
    train(
        d,
        &[
            &none[..],
            &["--patience", "0", "--quiet", "--out", "m.safetensors", "--overwrite"],
        ]
        .concat(),
    );
}

//! The `bpnet` binary, run for real in a temporary directory.

use std::process::{Command, Output};

fn bpnet(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args(args)
        .current_dir(dir.path())
        .env("BPNET_DATA_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/data"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn trains_the_paper_network_on_a_subset_of_mnist() {
    let out = bpnet(&[
        "train",
        "--data",
        "mnist",
        "--train-limit",
        "3000",
        "--epochs",
        "2",
        "--lr",
        "1.0",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("layers.1  BatchNorm(100"), "{stdout}");
    let acc: f64 = stdout
        .split("test accuracy ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    // 100 steps of batch 60 on 3000 images: far above the 10% of chance.
    assert!(acc > 80.0, "accuracy {acc}%\n{stdout}");
}

fn assert_clean_failure(args: &[&str], want: &str) {
    let out = bpnet(args);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(want),
        "{args:?}: '{stderr}' lacks '{want}'"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

#[test]
fn bad_input_gives_one_clear_line() {
    assert_clean_failure(
        &["train", "--data", "/nonexistent/folder"],
        "/nonexistent/folder/train-images-idx3-ubyte.gz",
    );
    assert_clean_failure(&["train", "--batch-size", "0", "--steps", "1"], "--batch-size");
    assert_clean_failure(&["train", "--activation", "swish", "--steps", "1"], "unknown 'swish'");
    assert_clean_failure(&["train", "--lr", "NaN", "--steps", "1"], "learning rate");
    assert_clean_failure(&["train", "--hidden", "100,x", "--steps", "1"], "'x'");
    assert_clean_failure(&["train", "--dropout", "1.0", "--steps", "1"], "dropout");
    assert_clean_failure(&["train", "--optimizer", "lbfgs", "--steps", "1"], "unknown 'lbfgs'");
}

#[test]
fn help_lists_the_train_options() {
    let out = bpnet(&["train", "--help"]);
    let s = text(&out.stdout);
    for opt in [
        "--hidden",
        "--activation",
        "--batch-norm",
        "--no-batch-norm",
        "--optimizer",
        "--lr",
        "--batch-size",
        "--epochs",
        "--seed",
    ] {
        assert!(s.contains(opt), "help lacks {opt}");
    }
}

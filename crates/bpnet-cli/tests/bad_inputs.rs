//! A corpus of bad inputs, each run through the real binary: every one must
//! end with a non-zero exit, exactly one line on stderr naming the problem
//! and where, no panic, no backtrace, no abort, and no output file left
//! behind.

mod common;
use common::run_in as bpnet;
use std::io::Write;
use std::path::Path;

use common::ROOT;

fn idx(kind: u8, dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    let _ = kind;
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(values);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An MNIST-format folder whose training images file is `images`.
fn idx_dir(root: &Path, name: &str, images: Vec<u8>, labels: Vec<u8>) {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), labels).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx(3, &[2, 2, 2], &[0; 8])).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(1, &[2], &[0, 1])).unwrap();
}

fn setup(d: &Path) {
    let good_images = idx(3, &[4, 2, 2], &[7; 16]);
    let good_labels = idx(1, &[4], &[0, 1, 0, 1]);
    idx_dir(
        d,
        "idx_truncated",
        good_images[..good_images.len() - 3].to_vec(),
        good_labels.clone(),
    );
    idx_dir(
        d,
        "idx_corrupt_gz",
        gz(&good_images)[..25].to_vec(),
        good_labels.clone(),
    );
    let mut magic = good_images.clone();
    magic[2] = 0x0b;
    idx_dir(d, "idx_magic", magic, good_labels.clone());
    idx_dir(d, "idx_counts", good_images.clone(), idx(1, &[3], &[0, 1, 0]));
    idx_dir(d, "idx_empty", Vec::new(), good_labels.clone());
    idx_dir(d, "idx_good", good_images.clone(), good_labels.clone());
    idx_dir(d, "idx_huge", idx(3, &[u32::MAX, 60000, 60000], &[]), good_labels);
    let files: &[(&str, &str)] = &[
        ("empty.csv", ""),
        ("header_only.csv", "a,b,y\n"),
        ("ragged.csv", "a,b,y\n1,2,x\n3,y\n5,6,x\n"),
        ("text_cell.csv", "a,b,y\n1,2,x\n3,four,y\n5,6,x\n7,8,y\n"),
        ("nan_cell.csv", "a,b,y\n1,2,x\n3,NaN,y\n5,6,x\n7,8,y\n"),
        ("neg_nan_cell.csv", "a,b,y\n1,2,x\n3,-nan,y\n5,6,x\n7,8,y\n"),
        // Identifiers past 2^53 as classes: one f64, two labels.
        (
            "id_labels.csv",
            "a,y\n1,9007199254740992\n2,9007199254740993\n3,7\n4,9007199254740992\n5,9007199254740993\n6,7\n",
        ),
        (
            "small_class.csv",
            "a,b,y\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n9,1,x\n2,3,y\n4,5,x\n6,7,y\n8,9,z\n",
        ),
        ("pos_nan_target.csv", "a,b,y\n1,2,1.5\n3,4,+NaN\n5,6,2.5\n7,8,3.5\n"),
        (
            "iris_neg_nan.csv",
            "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n5.0,-NaN,1.4,0.2\n",
        ),
        ("inf_cell.csv", "a,b,y\n1,2,x\n3,inf,y\n5,6,x\n7,8,y\n"),
        ("huge_cell.csv", "a,b,y\n1,2,x\n3,1e300,y\n5,6,x\n7,8,y\n"),
        ("one_class.csv", "a,b,y\n1,2,x\n3,4,x\n5,6,x\n7,8,x\n"),
        ("narrow.csv", "sepal_length,sepal_width,petal_length\n1,2,3\n"),
        (
            "cats.csv",
            "colour,size,y\nred,1,a\nblue,2,b\nred,3,a\nblue,1,b\nred,2,a\nblue,3,b\n",
        ),
        ("unseen.csv", "colour,size\ngreen,1\n"),
        // A quoted category holding a line break (the error split in two).
        ("unseen_break.csv", "colour,size\n\"gr\neen\",1\n"),
        ("run.toml", "learning_rate = 0.1\n"),
        (
            "text.history.csv",
            "epoch,step,train_loss,val_loss,val_metric,lr,seconds\n1,2,0.9,,,0.1,0.1\n2,4,abc,,,0.1,0.1\n",
        ),
        (
            "ragged.history.csv",
            "epoch,step,train_loss,val_loss,val_metric,lr,seconds\n1,2,0.9,,,0.1,0.1\n2,4,0.8,0.1\n",
        ),
        (
            "text.history.json",
            "{\"epochs\": [{\"epoch\": 1, \"train_loss\": \"abc\"}]}",
        ),
    ];
    for (name, text) in files {
        std::fs::write(d.join(name), text).unwrap();
    }
}

/// `bytes` with the first occurrence of `from` replaced by `to` (same length).
fn replace_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern in fixture");
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

/// Trains small models the model-file cases damage.
fn models(d: &Path) {
    let iris = format!("{ROOT}/data/iris.csv");
    for (out, data) in [("iris.safetensors", iris.as_str()), ("cats.safetensors", "cats.csv")] {
        let o = bpnet(
            d,
            &[
                "train",
                "--data",
                data,
                "--epochs",
                "2",
                "--val-split",
                "0",
                "--quiet",
                "--out",
                out,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = bpnet(
        d,
        &[
            "train",
            "--data",
            "idx_good",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--val-split",
            "0",
            "--quiet",
            "--out",
            "images.safetensors",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bpnet(
        d,
        &[
            "train",
            "--data",
            &iris,
            "--epochs",
            "1",
            "--checkpoint-every",
            "1",
            "--quiet",
            "--out",
            "c.safetensors",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&iris).unwrap();
    let first: String = text.lines().take(60).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("iris60.csv"), first).unwrap();
    let first: String = text.lines().take(121).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("iris120.csv"), first).unwrap();
    let good = std::fs::read(d.join("iris.safetensors")).unwrap();
    std::fs::write(d.join("truncated.safetensors"), &good[..good.len() / 2]).unwrap();
    let mut flipped = good.clone();
    let n = flipped.len();
    flipped[n - 100] ^= 0x10;
    std::fs::write(d.join("flipped.safetensors"), flipped).unwrap();
    let future = replace_bytes(&good, b"\"format_version\":\"1\"", b"\"format_version\":\"9\"");
    std::fs::write(d.join("future.safetensors"), future).unwrap();
    let reshaped = replace_bytes(&good, b"\"shape\":[100,4]", b"\"shape\":[4,100]");
    std::fs::write(d.join("reshaped.safetensors"), reshaped).unwrap();
}

#[test]
fn every_bad_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    models(d);
    let iris = format!("{ROOT}/data/iris.csv");
    let i = iris.as_str();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "--data", "idx_truncated"], "truncated"),
        (vec!["train", "--data", "idx_corrupt_gz"], "cannot read IDX data"),
        (vec!["train", "--data", "idx_magic"], "value type 0x0b"),
        (vec!["train", "--data", "idx_counts"], "3 labels but"),
        (vec!["train", "--data", "idx_empty"], "too short"),
        (vec!["train", "--data", "idx_huge"], "more than the limit"),
        (vec!["train", "--data", "empty.csv"], "empty.csv"),
        (vec!["train", "--data", "header_only.csv"], "header_only.csv"),
        (vec!["train", "--data", "ragged.csv"], "line 3"),
        (vec!["train", "--data", "text_cell.csv"], "line 3"),
        (vec!["train", "--data", "nan_cell.csv"], "line 3"),
        // Signed NaN spellings are missing values too, not numbers.
        (
            vec![
                "train",
                "--data",
                "id_labels.csv",
                "--task",
                "classify",
                "--val-split",
                "0",
            ],
            "line 3, column 'y': class labels '9007199254740992' and '9007199254740993' are different integers",
        ),
        // Streamed, word for word (the streamed fit merged them).
        (
            vec![
                "train",
                "--data",
                "id_labels.csv",
                "--task",
                "classify",
                "--val-split",
                "0",
                "--stream",
            ],
            "line 3, column 'y': class labels '9007199254740992' and '9007199254740993' are different integers",
        ),
        (
            vec!["train", "--data", "neg_nan_cell.csv"],
            "line 3, column 'b': missing value",
        ),
        (
            vec![
                "train",
                "--data",
                "pos_nan_target.csv",
                "--task",
                "regress",
                "--val-split",
                "0",
            ],
            "line 3",
        ),
        (
            vec!["predict", "--model", "iris.safetensors", "--data", "iris_neg_nan.csv"],
            "line 3, column 'sepal_width': missing value",
        ),
        (vec!["train", "--data", i, "--delimiter", "§"], "not an ASCII character"),
        // A class of one row: said before any fold trains.
        (
            vec!["train", "--data", "small_class.csv", "--cv", "3"],
            "3 folds, but class 'z' has one training row",
        ),
        (
            vec![
                "tune",
                "--data",
                "small_class.csv",
                "--cv",
                "3",
                "--trials",
                "4",
                "--out",
                "t.safetensors",
            ],
            "class 'z' has one training row",
        ),
        (
            vec!["train", "--data", i, "--header", "--no-header"],
            "contradicts --no-header",
        ),
        (vec!["train", "--data", "inf_cell.csv"], "line 3"),
        (vec!["train", "--data", "huge_cell.csv"], "line 3"),
        (vec!["train", "--data", i, "--target", "colour"], "colour"),
        (vec!["train", "--data", "one_class.csv"], "one class"),
        (
            vec![
                "predict",
                "--model",
                "iris.safetensors",
                "--data",
                "narrow.csv",
                "--output",
                "p.csv",
            ],
            "petal_width",
        ),
        (
            vec![
                "predict",
                "--model",
                "cats.safetensors",
                "--data",
                "unseen.csv",
                "--output",
                "p.csv",
            ],
            "green",
        ),
        (
            vec![
                "predict",
                "--model",
                "cats.safetensors",
                "--data",
                "unseen_break.csv",
                "--output",
                "p.csv",
            ],
            "category 'gr\\neen' was not seen in training",
        ),
        (vec!["inspect", "truncated.safetensors"], "truncated"),
        (
            vec![
                "predict",
                "--model",
                "flipped.safetensors",
                "--data",
                i,
                "--output",
                "p.csv",
            ],
            "flipped.safetensors",
        ),
        (vec!["inspect", "future.safetensors"], "newer bpnet"),
        (vec!["inspect", "reshaped.safetensors"], "layers.0.weight"),
        (vec!["eval", "--model", "empty.csv", "--data", i], "empty.csv"),
        (vec!["train", "--data", i, "--batch-size", "0"], "batch"),
        (vec!["train", "--data", i, "--batch-size", "100000"], "larger than"),
        (vec!["train", "--data", i, "--epochs", "0"], "epochs"),
        // Absurd ensembles aborted or panicked after member 0 had trained.
        (
            vec!["train", "--data", i, "--ensemble", "1001"],
            "1001 networks; at most 1000",
        ),
        (
            vec!["train", "--data", i, "--ensemble", "18446744073709551615"],
            "at most 1000",
        ),
        (vec!["train", "--data", i, "--hidden", "0"], "layer widths"),
        (vec!["train", "--data", i, "--hidden", "-5"], "-5"),
        (vec!["train", "--data", i, "--hidden", "1000000000000"], "1000000000000"),
        (vec!["train", "--data", i, "--hidden", "16777216,16777216"], "weights"),
        // 112 M weights (under the cap) but 135 x 16 M activations.
        (
            vec!["train", "--data", i, "--hidden", "16000000", "--batch-size", "135"],
            "activations per layer",
        ),
        (vec!["train", "--data", i, "--lr", "NaN"], "learning rate"),
        (vec!["train", "--data", i, "--lr=-1"], "learning rate"),
        (vec!["train", "--data", i, "--dropout", "2"], "dropout"),
        (vec!["train", "--data", i, "--val-split", "1"], "val-split"),
        (
            vec!["train", "--data", i, "--momentum", "1.5", "--optimizer", "momentum"],
            "momentum",
        ),
        (vec!["train", "--config", "run.toml"], "learning_rate"),
        (vec!["train", "--resume", "iris.safetensors"], "checkpoint"),
        (vec!["tune", "--data", i, "--epochs", "0"], "--epochs"),
        (vec!["tune", "--data", i, "--trials", "0"], "--trials"),
        (vec!["tune", "--data", i, "--parallel", "0"], "--parallel"),
        (vec!["tune", "--data", i, "--time", "nan"], "--time"),
        (vec!["train", "--data", i, "--init", "normal:-1"], "normal std -1"),
        (
            vec![
                "train",
                "--data",
                "iris60.csv",
                "--resume",
                "c.ckpt.safetensors",
                "--epochs",
                "3",
                "--out",
                "r.safetensors",
            ],
            "--data iris60.csv makes 4 and 2",
        ),
        (
            vec![
                "train",
                "--data",
                "iris120.csv",
                "--resume",
                "c.ckpt.safetensors",
                "--out",
                "r.safetensors",
            ],
            // Other rows: the preprocessing fitted on them differs (checked
            // before the batch order, which also differs).
            "c.ckpt.safetensors was trained on other rows than --data iris120.csv gives now",
        ),
        (
            vec![
                "train",
                "--resume",
                "c.ckpt.safetensors",
                "--hidden",
                "5",
                "--out",
                "r.safetensors",
            ],
            "(layer widths 4-100-100-3 -> 4-5-3)",
        ),
        (
            vec![
                "train",
                "--resume",
                "c.ckpt.safetensors",
                "--activation",
                "tanh",
                "--stream",
                "--out",
                "r.safetensors",
            ],
            "(activation Relu -> Tanh)",
        ),
        (
            vec!["plot", "text.history.csv"],
            "line 3, column 'train_loss': 'abc' is not a number",
        ),
        (vec!["plot", "ragged.history.csv"], "line 3: 4 fields, the header has 7"),
        (
            vec!["plot", "text.history.json"],
            "epochs[0].train_loss is \"abc\", not a number",
        ),
        (
            vec!["eval", "--model", "images.safetensors", "--data", i],
            "was trained on MNIST-format images",
        ),
        (
            vec!["predict", "--model", "iris.safetensors", "--data", "idx_good"],
            "was trained on a table",
        ),
        // Several targets mean regression: a column of labels among them
        // was blamed as "numeric".
        (
            vec![
                "train",
                "--data",
                "text_cell.csv",
                "--target",
                "a,y",
                "--val-split",
                "0",
            ],
            "'x' is not a number (2 target columns mean regression, whose targets are numbers; classify on one target column)",
        ),
        (
            vec!["train", "--data", "text_cell.csv", "--delimiter", "\""],
            "invalid --delimiter: '\"' cannot separate fields",
        ),
        // CSV text was written under the Arrow name.
        (
            vec![
                "predict",
                "--model",
                "iris.safetensors",
                "--data",
                i,
                "--output",
                "p.arrow",
            ],
            "p.arrow: predictions are written as CSV, or as Parquet",
        ),
    ];
    let mut failures = Vec::new();
    for (args, want) in &cases {
        let out = bpnet(d, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        let ok = matches!(code, Some(1) | Some(2))
            && stderr.lines().count() == 1
            && stderr.starts_with("error: ")
            && stderr.contains(want)
            && !stderr.contains("panicked")
            && !stderr.contains("backtrace")
            && !d.join("p.csv").exists()
            && !d.join("model.safetensors").exists();
        if !ok {
            failures.push(format!("{args:?} (exit {code:?}): {stderr}"));
        }
    }
    println!("{} bad inputs tried", cases.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Trains a small model on the bundled iris data into `dir/name` (one
/// network, 2 epochs, one thread).
fn iris_model(dir: &Path, name: &str) {
    let data = format!("{ROOT}/data/iris.csv");
    let out = bpnet(
        dir,
        &[
            "--threads",
            "1",
            "train",
            "--data",
            &data,
            "--epochs",
            "2",
            "--ensemble",
            "1",
            "--quiet",
            "--out",
            name,
        ],
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
}

/// Standard output on a full device (`> /dev/full`): one line, exit code 1,
/// no panic message, for commands that print (`inspect`, `predict`, `eval`).
#[cfg(target_os = "linux")]
#[test]
fn a_full_standard_output_is_one_line() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    iris_model(d.path(), "m.safetensors");
    for args in [
        vec!["inspect", "m.safetensors"],
        vec!["predict", "--model", "m.safetensors", "--data", &data],
        vec!["eval", "--model", "m.safetensors", "--data", &data],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(&args)
            .current_dir(d.path())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: standard output: ") && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
    }
}

/// A named pipe or a device as an input (`--data`, `--config`, a model
/// file): one line naming it, exit code 1, at once. Before, a pipe was read
/// once and then opened again (which waits for a writer forever) and
/// `/dev/zero` was read into memory without end.
#[cfg(unix)]
#[test]
fn pipes_and_devices_are_refused_as_inputs() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(d.path().join("p.csv"))
            .status()
            .unwrap()
            .success()
    );
    let model = "m.safetensors";
    iris_model(d.path(), model);
    let cases: [(&[&str], &str); 5] = [
        (
            &["train", "--data", "p.csv", "--out", "x.safetensors"],
            "p.csv: a named pipe",
        ),
        (
            &["train", "--data", "/dev/zero", "--out", "x.safetensors"],
            "/dev/zero: a character device",
        ),
        (&["eval", "--model", model, "--data", "p.csv"], "p.csv: a named pipe"),
        (
            &["predict", "--model", model, "--data", "/dev/zero"],
            "/dev/zero: a character device",
        ),
        (&["inspect", "p.csv"], "p.csv: a named pipe"),
    ];
    for (args, want) in cases {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(["--threads", "1"])
            .args(args)
            .current_dir(d.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{args:?} still runs after 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {want}, not a file")) && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
        assert!(!d.path().join("x.safetensors").exists());
    }
    // A configuration is read once, so a pipe will do; a device that never
    // ends is cut off.
    let out = bpnet(
        d.path(),
        &[
            "--threads",
            "1",
            "train",
            "--data",
            &data,
            "--config",
            "/dev/zero",
            "--out",
            "x.safetensors",
        ],
    );
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: /dev/zero: more than 1 MiB"), "{stderr}");
    let line = format!(
        "{} --threads 1 train --data {data} --config <(printf 'epochs = 1\\n') --ensemble 1 --quiet --out y.safetensors",
        env!("CARGO_BIN_EXE_bpnet")
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &line])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
}

/// An output folder where no file can be made (`/sys` refuses new files,
/// root or not) is refused before training, in one line; before, the run
/// trained to its end and then failed on the history's temporary file.
#[cfg(target_os = "linux")]
#[test]
fn an_unwritable_output_folder_is_refused_before_the_work() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    let out = bpnet(
        d.path(),
        &[
            "--threads",
            "1",
            "train",
            "--data",
            &data,
            "--epochs",
            "2",
            "--out",
            "/sys/m.safetensors",
        ],
    );
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: output --out /sys/m.safetensors cannot be written: no new file can be made in /sys")
            && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(common::text(&out.stdout).is_empty(), "it trained first");
}

/// A save that fails after training (here the model file is larger than
/// the process may write: `ulimit -f`, with SIGXFSZ ignored so that the
/// write fails with EFBIG) leaves the previous model and its history as
/// they were, one line naming the model file, and no temporary file. The
/// history used to be put in place before the model was written.
#[cfg(unix)]
#[test]
fn a_failed_save_leaves_the_old_model_and_its_history() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    let base = [
        "--threads",
        "1",
        "train",
        "--data",
        &data,
        "--ensemble",
        "1",
        "--out",
        "m.safetensors",
    ];
    let first = bpnet(
        d.path(),
        &[&base[..], &["--epochs", "2", "--hidden", "8", "--quiet"]].concat(),
    );
    assert!(first.status.success(), "{}", common::text(&first.stderr));
    let files = ["m.safetensors", "m.history.csv", "m.history.json"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(d.path().join(f)).unwrap()).collect();
    assert!(before[0].len() < 20 << 10);
    // 40 blocks: 20 or 40 KB by the shell's unit; the new model is ~160 KB.
    let line = format!(
        "trap '' XFSZ; ulimit -f 40; exec {} {} --epochs 3 --hidden 200,200",
        env!("CARGO_BIN_EXE_bpnet"),
        base.join(" ")
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &line])
        .current_dir(d.path())
        .output()
        .unwrap();
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: m.safetensors: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
    for (f, b) in files.iter().zip(&before) {
        assert!(std::fs::read(d.path().join(f)).unwrap() == *b, "{f} changed");
    }
    let left: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Model files whose checksum is right but whose preprocessing disagrees
/// with itself or with the network (as a hand edit or another tool might
/// write them): `eval`, `predict` and `export` end with one line naming the
/// file, no panic. Before, an out-of-range column index panicked in the
/// preprocessing and two class names for three outputs gave ragged CSV.
#[test]
fn inconsistent_preprocessing_in_a_model_file_is_one_line() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    iris_model(d.path(), "m.safetensors");
    let file = bpnet::io::load_model(&d.path().join("m.safetensors")).unwrap();
    type Edit = fn(&mut serde_json::Value);
    fn scale(p: &mut serde_json::Value, v: f64) {
        p["preprocessor"]["features"][1]["kind"]["numeric"]["scale"] = v.into()
    }
    let edits: [(&str, Edit); 10] = [
        ("feature index", |p| {
            p["preprocessor"]["features"][0]["index"] = 99.into()
        }),
        ("no columns", |p| p["preprocessor"]["columns"] = serde_json::json!([])),
        ("target index", |p| {
            p["preprocessor"]["target_indices"] = serde_json::json!([99])
        }),
        ("two classes", |p| {
            p["preprocessor"]["target"]["classes"]["names"] = serde_json::json!(["a", "b"])
        }),
        ("one feature fewer", |p| {
            p["preprocessor"]["features"].as_array_mut().unwrap().pop();
        }),
        // These predicted NaN or infinite probabilities, or mislabelled
        // them, with exit 0 (export alone refused some, naming no file).
        ("scale 0", |p| scale(p, 0.0)),
        ("scale 1e-320", |p| scale(p, 1e-320)),
        ("a class twice", |p| {
            p["preprocessor"]["target"]["classes"]["names"][2] = "setosa".into()
        }),
        ("task regress with classes", |p| {
            p["preprocessor"]["task"] = "regress".into()
        }),
        // Finite in f64, beyond any data (predict printed NaN, the f32
        // ONNX constant was infinite).
        ("center 1e300", |p| {
            p["preprocessor"]["features"][1]["kind"]["numeric"]["center"] = 1e300.into()
        }),
    ];
    for (what, edit) in edits {
        let mut meta = file.metadata.clone();
        edit(meta.get_mut("preprocessing").unwrap());
        let path = d.path().join("edited.safetensors");
        bpnet::io::save_model_with(&path, &file.spec, &file.model, &meta).unwrap();
        refused_as_inconsistent(d.path(), &data, what);
    }
}

/// `eval`, `predict` and `export` of `dir/edited.safetensors` (data `data`)
/// each refuse it in one line as inconsistent (`what`: the edit, for the
/// failure message).
fn refused_as_inconsistent(dir: &Path, data: &str, what: &str) {
    for args in [
        vec!["eval", "--model", "edited.safetensors", "--data", data],
        vec!["predict", "--model", "edited.safetensors", "--data", data],
        vec!["export", "--model", "edited.safetensors", "--onnx", "e.onnx"],
    ] {
        let out = bpnet(dir, &args);
        let stderr = common::text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}, {args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: edited.safetensors: inconsistent") && stderr.lines().count() == 1,
            "{what}, {args:?}: {stderr}"
        );
    }
}

/// An ensemble of 2 networks trained on iris with `extra` options into
/// `dir`, read back: the file, its members (read as averaging `combine`)
/// and its metadata without the ensemble section, to save edited.
fn iris_ensemble(
    dir: &Path,
    extra: &[&str],
    combine: bpnet::Combine,
) -> (
    bpnet::io::ModelFile,
    Vec<bpnet::Sequential<f32>>,
    serde_json::Map<String, serde_json::Value>,
) {
    let data = format!("{ROOT}/data/iris.csv");
    let train = [
        "train",
        "--data",
        &data,
        "--epochs",
        "2",
        "--ensemble",
        "2",
        "--quiet",
        "--out",
        "e.safetensors",
    ];
    let out = bpnet(dir, &[&train[..], extra].concat());
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let path = dir.join("e.safetensors");
    let file = bpnet::io::load_model(&path).unwrap();
    let (members, _) = bpnet::io::ensemble_members(&file, &path, combine).unwrap();
    let mut meta = file.metadata.clone();
    meta.remove("ensemble");
    (file, members, meta)
}

/// A regression ensemble whose file says its members average probabilities
/// (every prediction was the targets' mean, exit 0), or whose target
/// standard deviation is 0 (every prediction the mean): refused in one line
/// by eval, predict and export.
#[test]
fn a_regression_ensemble_with_inconsistent_metadata_is_one_line() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    let (file, members, meta) = iris_ensemble(d.path(), &["--target", "petal_width"], bpnet::Combine::Mean);
    let mut zero_std = meta.clone();
    zero_std.get_mut("preprocessing").unwrap()["preprocessor"]["target"]["values"]["std"] = serde_json::json!([0.0]);
    for (what, combine, meta) in [
        ("softmax", bpnet::Combine::Softmax, &meta),
        ("standard deviation 0", bpnet::Combine::Mean, &zero_std),
    ] {
        let edited = d.path().join("edited.safetensors");
        bpnet::io::save_ensemble(&edited, &file.spec, &members, combine, meta).unwrap();
        refused_as_inconsistent(d.path(), &data, what);
    }
}

/// A classifier ensemble of 3 outputs whose file says it averages sigmoids
/// (predict accepted it; the ONNX probabilities summed to 1.2): refused.
#[test]
fn a_sigmoid_ensemble_of_several_outputs_is_one_line() {
    let d = tempfile::tempdir().unwrap();
    let data = format!("{ROOT}/data/iris.csv");
    let (file, members, meta) = iris_ensemble(d.path(), &[], bpnet::Combine::Softmax);
    let edited = d.path().join("edited.safetensors");
    bpnet::io::save_ensemble(&edited, &file.spec, &members, bpnet::Combine::Sigmoid, &meta).unwrap();
    refused_as_inconsistent(d.path(), &data, "sigmoid over 3 outputs");
}

/// Exit codes: 2 for a command-line usage error (clap's), 1 for everything
/// else, both with one line.
#[test]
fn usage_errors_exit_2_and_other_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let iris = format!("{ROOT}/data/iris.csv");
    for (args, code) in [
        (vec!["train", "--data", iris.as_str(), "--no-such-flag"], 2),
        (vec!["train", "--data", iris.as_str(), "--epochs", "many"], 2),
        (vec!["frobnicate"], 2),
        (vec!["train", "--data", "missing.csv"], 1),
        (vec!["train", "--data", iris.as_str(), "--lr", "-1"], 1),
    ] {
        let out = bpnet(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
}

/// A cell of 1 MB named in an error (an unseen class, a category, a number
/// that is not one) is cut to its first 60 characters and its length: the
/// one line stays short.
#[test]
fn a_huge_cell_is_cut_in_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d, "iris.safetensors");
    let huge = "x".repeat(1 << 20);
    let header = "sepal_length,sepal_width,petal_length,petal_width,species";
    for (name, row) in [
        ("class.csv", format!("5.1,3.5,1.4,0.2,{huge}")),
        ("number.csv", format!("5.1,{huge},1.4,0.2,setosa")),
    ] {
        std::fs::write(d.join(name), format!("{header}\n{row}\n")).unwrap();
        let out = bpnet(d, &["eval", "--model", "iris.safetensors", "--data", name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}");
        assert!(
            err.len() < 400 && err.contains("(1048576 bytes)"),
            "{name}: {} bytes: {}",
            err.len(),
            &err[..err.len().min(300)]
        );
    }
}

/// An MNIST-format folder of training files alone trains with
/// `--test-split` (its `t10k-*` files are read only when they are the test
/// set); `eval` on it, which needs them, names the missing file in one line;
/// a `--test` folder of other image sizes is refused in one line.
#[test]
fn an_idx_folder_without_test_files_trains_with_a_test_split() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train_only = d.join("train_only");
    std::fs::create_dir_all(&train_only).unwrap();
    let pixels: Vec<u8> = (0..8 * 4).map(|i| (i * 37 % 256) as u8).collect();
    std::fs::write(train_only.join("train-images-idx3-ubyte"), idx(3, &[8, 2, 2], &pixels)).unwrap();
    std::fs::write(
        train_only.join("train-labels-idx1-ubyte"),
        idx(1, &[8], &[0, 1, 0, 1, 0, 1, 0, 1]),
    )
    .unwrap();
    let common = [
        "train",
        "--data",
        "train_only",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--hidden",
        "4",
    ];
    let out = bpnet(
        d,
        &[
            &common[..],
            &["--test-split", "0.25", "--val-split", "0", "--out", "m.safetensors"],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = bpnet(d, &["eval", "--model", "m.safetensors", "--data", "train_only"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("t10k-images-idx3-ubyte"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A --test folder of 3x3 images for a network of 2x2 ones.
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("t10k-images-idx3-ubyte"), idx(3, &[2, 3, 3], &[5; 18])).unwrap();
    std::fs::write(other.join("t10k-labels-idx1-ubyte"), idx(1, &[2], &[0, 1])).unwrap();
    let out = bpnet(
        d,
        &[&common[..], &["--test", "other", "--out", "n.safetensors"]].concat(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("test images have 9 pixels, the training images of train_only 4"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!d.join("n.safetensors").exists());
}

/// `predict` on new images needs no labels: a folder holding only
/// `t10k-images-idx3-ubyte` predicts (it asked for a labels file), where
/// `eval`, which scores, names the missing labels in one line; images of
/// another size are refused in one line.
#[test]
fn predict_on_images_needs_no_labels_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pixels: Vec<u8> = (0..8 * 4).map(|i| (i * 37 % 256) as u8).collect();
    idx_dir(
        d,
        "train",
        idx(3, &[8, 2, 2], &pixels),
        idx(1, &[8], &[0, 1, 2, 3, 0, 1, 2, 3]),
    );
    let train = [
        "train",
        "--data",
        "train",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--hidden",
        "4",
        "--val-split",
        "0",
        "--out",
        "m.safetensors",
    ];
    let out = bpnet(d, &train);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = d.join("new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::write(
        new.join("t10k-images-idx3-ubyte.gz"),
        gz(&idx(3, &[3, 2, 2], &pixels[..12])),
    )
    .unwrap();
    let predict = [
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        "new",
        "--output",
        "p.csv",
    ];
    let out = bpnet(d, &predict);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(d.join("p.csv")).unwrap();
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.starts_with("prediction,p_0,"), "{text}");
    let out = bpnet(d, &["eval", "--model", "m.safetensors", "--data", "new"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("t10k-labels-idx1-ubyte"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    std::fs::write(new.join("t10k-images-idx3-ubyte.gz"), gz(&idx(3, &[2, 3, 3], &[5; 18]))).unwrap();
    let out = bpnet(d, &[&predict[..], &["--overwrite"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(std::fs::read_to_string(d.join("p.csv")).unwrap(), text);
}

/// A value the reader takes (within ±1e30) in a column whose training
/// spread was tiny grows past f32 once scaled, and the network's output
/// is NaN: predict and eval, in memory and streamed, refuse it naming the
/// file and data row, and write nothing (predict had printed a class label
/// beside NaN probabilities, eval NaN metrics, with exit 0).
#[test]
fn a_row_whose_output_is_not_finite_is_refused_by_predict_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut train = String::from("tiny,x,label\n");
    for i in 0..200i32 {
        let (t, x) = ((i % 7 - 3) as f64 * 1e-9, i % 5 - 2);
        let label = if (i % 7 - 3) + x > 0 { "pos" } else { "neg" };
        train += &format!("{t},{x},{label}\n");
    }
    std::fs::write(d.join("train.csv"), train).unwrap();
    // One network, and an ensemble (whose softmax average had hidden a
    // member's infinite logits as an even split, exit 0).
    for (model, k) in [("model.safetensors", "1"), ("ens.safetensors", "3")] {
        let args = ["train", "--data", "train.csv", "--target", "label", "--epochs", "3"];
        let out = bpnet(d, &[&args[..], &["--ensemble", k, "--quiet", "--out", model]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::write(d.join("new.csv"), "tiny,x\n1e-9,0\n5e29,0\n").unwrap();
    std::fs::write(d.join("lab.csv"), "tiny,x,label\n1e-9,0,pos\n5e29,0,pos\n").unwrap();
    for (model, stream) in ["model.safetensors", "ens.safetensors"]
        .into_iter()
        .flat_map(|m| ["--no-stream", "--stream"].map(|s| (m, s)))
    {
        for (cmd, file, extra) in [
            ("predict", "new.csv", &["--output", "p.csv"][..]),
            ("predict", "new.csv", &[][..]),
            ("eval", "lab.csv", &[][..]),
        ] {
            let mut args = vec![cmd, "--model", model, "--data", file, stream];
            args.extend_from_slice(extra);
            let out = bpnet(d, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?}");
            let last = err.trim_end().lines().last().unwrap_or("");
            assert!(
                last.starts_with(&format!(
                    "error: {file}: data row 2: the network's output is NaN, so no prediction"
                )),
                "{args:?}: {err}"
            );
            assert!(!String::from_utf8_lossy(&out.stdout).contains("NaN"), "{args:?}");
            assert!(!d.join("p.csv").exists(), "{args:?}");
        }
    }
    // A value whose scaled feature is past f32 already is named by its cell.
    std::fs::write(d.join("far.csv"), "tiny,x\n1e-9,0\n1e30,0\n").unwrap();
    for stream in ["--no-stream", "--stream"] {
        let out = bpnet(
            d,
            &["predict", "--model", "model.safetensors", "--data", "far.csv", stream],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains("far.csv: line 3, column 'tiny': value 1e30 is too far from the column's training values"),
            "{err}"
        );
    }
    // A large value whose scaled feature stays small enough still predicts.
    std::fs::write(d.join("ok.csv"), "tiny,x\n1e-9,0\n1e20,0\n").unwrap();
    let out = bpnet(d, &["predict", "--model", "model.safetensors", "--data", "ok.csv"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

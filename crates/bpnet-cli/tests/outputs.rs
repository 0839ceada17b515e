//! No command replaces its own inputs: every output that resolves to an
//! input (directly, through a symlink, through `..`, or as a name derived
//! from `--out`) is refused before any work with one line naming both, and
//! `--overwrite` never changes that; an existing file of another kind is
//! replaced only with `--overwrite`. Every case runs the real binary in a
//! temporary folder and compares every file there before and after.

mod common;
use common::run_in as bpnet;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[path = "outputs/kinds.rs"]
mod kinds;

use common::ROOT;

/// Every file under `dir` (symlinks as their target text, pipes as a
/// marker) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let (p, t) = (e.path(), e.file_type().unwrap());
        if t.is_symlink() {
            out.insert(
                p.clone(),
                std::fs::read_link(&p).unwrap().into_os_string().into_encoded_bytes(),
            );
        } else if t.is_dir() {
            out.extend(snapshot(&p));
        } else if t.is_file() {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        } else {
            out.insert(p.clone(), b"(a pipe)".to_vec());
        }
    }
    out
}

/// Runs `args`, expects a refusal: exit 1, one line on stderr holding every
/// `want`, and no file in `dir` created, changed or removed.
fn refused(dir: &Path, args: &[&str], want: &[&str]) {
    let before = snapshot(dir);
    let out = bpnet(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail: {stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.lines().count() == 1,
        "{args:?}: {stderr}"
    );
    for w in want {
        assert!(stderr.contains(w), "{args:?}: '{w}' not in: {stderr}");
    }
    let after = snapshot(dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{args:?}: files created or removed"
    );
    assert!(before == after, "{args:?}: a file changed");
}

/// Runs `args`, expects success; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let out = bpnet(dir, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{args:?} failed: {stdout}{stderr}");
    stdout.into_owned()
}

/// A temp folder with wine.csv, a model trained on it (`m.safetensors` and
/// its history) and a sub-folder.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(format!("{ROOT}/data/wine.csv"), d.join("wine.csv")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    ok(d, &train("wine.csv", "m.safetensors"));
    dir
}

fn train<'a>(data: &'a str, out: &'a str) -> Vec<&'a str> {
    let t = ["--target", "cultivar", "--epochs", "2", "--quiet"];
    [&["train", "--data", data, "--out", out][..], &t].concat()
}

fn with<'a>(mut args: Vec<&'a str>, more: &[&'a str]) -> Vec<&'a str> {
    args.extend_from_slice(more);
    args
}

#[test]
fn train_never_writes_over_its_data() {
    let dir = setup();
    let d = dir.path();
    std::os::unix::fs::symlink("wine.csv", d.join("link.csv")).unwrap();
    let both = ["--out", "is the input --data wine.csv"];
    for out in ["wine.csv", "link.csv", "sub/../wine.csv", "./sub/../wine.csv"] {
        refused(d, &train("wine.csv", out), &both);
        refused(d, &with(train("wine.csv", out), &["--overwrite"]), &both);
    }
    // The data named through the symlink, the output named plainly.
    refused(d, &train("link.csv", "wine.csv"), &["is the input --data link.csv"]);
    // A --test file, a --config file and a model file as data are inputs too.
    std::fs::write(d.join("run.toml"), "epochs = 1\n").unwrap();
    refused(
        d,
        &with(train("wine.csv", "run.toml"), &["--config", "run.toml", "--overwrite"]),
        &["is the input --config run.toml"],
    );
    let args = with(train("wine.csv", "m2.safetensors"), &["--test", "m2.history.csv"]);
    std::fs::copy(d.join("wine.csv"), d.join("m2.history.csv")).unwrap();
    refused(
        d,
        &args,
        &["m2.history.csv (the history of --out m2.safetensors)", "--test"],
    );
}

#[test]
fn names_derived_from_out_never_hit_an_input() {
    let dir = setup();
    let d = dir.path();
    for name in ["foo.history.csv", "foo.history.json", "foo.diagnostics.csv"] {
        std::fs::copy(d.join("wine.csv"), d.join(name)).unwrap();
        let args = with(train(name, "foo.safetensors"), &["--diagnostics", "--overwrite"]);
        refused(
            d,
            &args,
            &[&format!("output {name} ("), &format!("is the input --data {name}")],
        );
    }
    // The plots folder's figures.
    std::fs::create_dir(d.join("foo.plots")).unwrap();
    std::fs::copy(d.join("wine.csv"), d.join("foo.plots/curves.svg")).unwrap();
    let args = with(train("foo.plots/curves.svg", "foo.safetensors"), &["--plot"]);
    refused(d, &args, &["foo.plots/curves.svg (in foo.plots", "is the input --data"]);
    // Resuming: the run's checkpoint would replace the one it resumes from.
    ok(
        d,
        &with(train("wine.csv", "c.safetensors"), &["--checkpoint-every", "1"]),
    );
    refused(
        d,
        &["train", "--resume", "c.ckpt.safetensors", "--epochs", "3", "--quiet"],
        &["c.ckpt.safetensors (the checkpoint of --out c.safetensors)", "--resume"],
    );
    let resumed = [
        "train",
        "--resume",
        "c.ckpt.safetensors",
        "--epochs",
        "3",
        "--out",
        "c2.safetensors",
    ];
    let before = std::fs::read(d.join("c.ckpt.safetensors")).unwrap();
    ok(d, &with(resumed.to_vec(), &["--quiet"]));
    assert_eq!(std::fs::read(d.join("c.ckpt.safetensors")).unwrap(), before);
    assert!(d.join("c2.ckpt.safetensors").exists());
}

#[test]
fn a_model_file_name_ends_in_safetensors() {
    let dir = setup();
    let d = dir.path();
    // `--out ok.history.csv` would have written ok.history.history.csv beside it.
    refused(
        d,
        &train("wine.csv", "ok.history.csv"),
        &["--out", "must end in .safetensors"],
    );
    refused(d, &train("wine.csv", "model"), &["--out", "must end in .safetensors"]);
    let torch = format!("{ROOT}/crates/bpnet/tests/fixtures/torch_import/leaky_no_bn.safetensors");
    let import = [
        "import",
        "--torch",
        &torch,
        "--activation",
        "leaky_relu:0.1",
        "--out",
        "n.bin",
    ];
    refused(d, &import, &["must end in .safetensors"]);
}

#[test]
fn predict_export_import_and_plot_never_write_over_inputs() {
    let dir = setup();
    let d = dir.path();
    let predict = |output: &'static str| {
        vec![
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "wine.csv",
            "--output",
            output,
        ]
    };
    refused(
        d,
        &predict("m.safetensors"),
        &["--output m.safetensors is the input --model"],
    );
    refused(
        d,
        &with(predict("wine.csv"), &["--overwrite"]),
        &["is the input --data wine.csv"],
    );
    refused(
        d,
        &with(predict("sub/../m.safetensors"), &["--overwrite"]),
        &["is the input --model"],
    );
    let export = |onnx: &'static str| vec!["export", "--model", "m.safetensors", "--onnx", onnx, "--overwrite"];
    refused(
        d,
        &export("m.safetensors"),
        &["--onnx m.safetensors is the input --model m.safetensors"],
    );
    std::fs::copy(
        format!("{ROOT}/crates/bpnet/tests/fixtures/torch_import/leaky_no_bn.safetensors"),
        d.join("torch.safetensors"),
    )
    .unwrap();
    let import = [
        "import",
        "--torch",
        "torch.safetensors",
        "--activation",
        "leaky_relu:0.1",
    ];
    refused(
        d,
        &with(import.to_vec(), &["--out", "torch.safetensors", "--overwrite"]),
        &["--out torch.safetensors is the input --torch torch.safetensors"],
    );
    ok(d, &with(import.to_vec(), &["--out", "imported.safetensors"]));
    // plot: the folder may hold the history; a figure may not be it.
    refused(
        d,
        &["plot", "m.history.json", "--out", "m.history.json"],
        &["is the input history"],
    );
    refused(
        d,
        &["plot", "m.history.json", "--out", "wine.csv"],
        &["must be a folder"],
    );
    std::fs::copy(d.join("m.history.json"), d.join("sub/curves.svg")).unwrap();
    refused(
        d,
        &["plot", "sub/curves.svg", "--out", "sub", "--overwrite"],
        &["sub/curves.svg (in --out sub)"],
    );
    let history = std::fs::read(d.join("m.history.json")).unwrap();
    ok(d, &["plot", "m.history.json", "--out", "."]);
    assert_eq!(std::fs::read(d.join("m.history.json")).unwrap(), history);
    assert!(std::fs::read(d.join("curves.png")).unwrap().starts_with(b"\x89PNG"));
}

#[test]
fn the_plan_refuses_duplicate_outputs_and_guards_writes() {
    use bpnet::io::{Kind, OutputPlan, write_atomic};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("a")).unwrap();
    let mut plan = OutputPlan::new(true);
    plan.output("--one", &d.join("x.csv"), Kind::csv("rows", &[]));
    plan.output("--two", &d.join("a/../x.csv"), Kind::csv("rows", &[]));
    let err = plan.check().unwrap_err().to_string();
    assert!(
        err.contains("--two") && err.contains("is also written as --one"),
        "{err}"
    );
    // Once checked, the inputs are protected from any write.
    let input = d.join("in.csv");
    std::fs::write(&input, "a\n1\n").unwrap();
    let mut plan = OutputPlan::new(false);
    plan.input("--data", &input)
        .output("--out", &d.join("out.csv"), Kind::csv("rows", &[]));
    plan.check().unwrap();
    let err = write_atomic(&d.join("a/../in.csv"), b"gone").unwrap_err().to_string();
    assert!(err.contains("is the input --data"), "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), b"a\n1\n");
    write_atomic(&d.join("out.csv"), b"a\n2\n").unwrap();
}

/// A dangling symbolic link at an output's name is written through, to
/// the file it names (`write_atomic` follows links), so the checks follow
/// it too. They resolved the link itself: two outputs, one a link to the
/// other, passed (exit 0, and `a.safetensors` held the history JSON; a
/// checkpoint link to the model lost the checkpoint), and a link into a
/// missing folder was found after the training, which was lost. Each is
/// refused before the work, in one line, with nothing changed; a link to
/// a file in an existing folder is written through.
#[test]
fn dangling_links_at_output_names_are_followed_by_the_checks() {
    let dir = setup();
    let d = dir.path();
    let link = |to: &str, at: &str| {
        let _ = std::fs::remove_file(d.join(at));
        std::os::unix::fs::symlink(to, d.join(at)).unwrap();
    };
    link("a.safetensors", "a.history.json");
    refused(
        d,
        &train("wine.csv", "a.safetensors"),
        &["a.history.json (the history of --out a.safetensors) is also written as --out a.safetensors"],
    );
    std::fs::remove_file(d.join("a.history.json")).unwrap();
    link("a.safetensors", "a.ckpt.safetensors");
    refused(
        d,
        &with(train("wine.csv", "a.safetensors"), &["--checkpoint-every", "1"]),
        &["a.ckpt.safetensors (the checkpoint of --out a.safetensors) is also written as --out a.safetensors"],
    );
    std::fs::remove_file(d.join("a.ckpt.safetensors")).unwrap();
    link("nothere/x.csv", "a.history.csv");
    refused(
        d,
        &with(train("wine.csv", "a.safetensors"), &["--overwrite"]),
        &[
            "a.history.csv",
            "(it is a link to ",
            "the folder ",
            "nothere does not exist",
        ],
    );
    refused(
        d,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "wine.csv",
            "--output",
            "a.history.csv",
        ],
        &["--output a.history.csv", "nothere does not exist"],
    );
    link("sub/h.csv", "a.history.csv");
    ok(d, &train("wine.csv", "a.safetensors"));
    let history = std::fs::read_to_string(d.join("sub/h.csv")).unwrap();
    assert!(history.starts_with("epoch,"), "{history}");
    assert!(
        std::fs::symlink_metadata(d.join("a.history.csv"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

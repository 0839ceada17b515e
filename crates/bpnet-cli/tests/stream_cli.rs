//! `bpnet train`, `predict` and `eval` streaming a CSV in chunks: with every
//! training row in the shuffle buffer the model is the in-memory one, bit
//! for bit; streamed predictions and metrics are byte for byte the
//! in-memory ones; errors name the file and line and leave nothing behind;
//! the automatic choice says why it streams.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn run_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpnet"));
    cmd.args(args).current_dir(dir).env_remove("BPNET_MEMORY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = run_env(dir, args, env);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn ok(dir: &Path, args: &[&str]) -> Output {
    ok_env(dir, args, &[])
}

fn data(name: &str) -> String {
    format!("{ROOT}/data/{name}")
}

/// A deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `rows` rows of 4 numeric features, a category and a 3-class label that
/// depends on them.
fn generated(path: &Path, rows: usize, seed: u64) {
    let mut g = Gen(seed | 1);
    let mut s = String::from("a,b,c,d,kind,label\n");
    for _ in 0..rows {
        let v: Vec<f64> = (0..4).map(|_| g.below(20_000) as f64 / 1000.0 - 10.0).collect();
        let kind = ["x", "y", "z"][g.below(3) as usize];
        let score = v[0] + 0.5 * v[1] - v[2] + if kind == "z" { 3.0 } else { 0.0 };
        let label = if score < -3.0 {
            "low"
        } else if score < 3.0 {
            "mid"
        } else {
            "high"
        };
        s += &format!("{:.3},{:.3},{:.3},{:.3},{kind},{label}\n", v[0], v[1], v[2], v[3]);
    }
    std::fs::write(path, s).unwrap();
}

/// The `preprocessing` metadata section of a model file.
fn preprocessing(path: &Path) -> serde_json::Value {
    let raw = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(raw[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&raw[8..8 + n]).unwrap();
    let text = header["__metadata__"]["preprocessing"].as_str().unwrap();
    let p: serde_json::Value = serde_json::from_str(text).unwrap();
    assert!(p.pointer("/preprocessor/read_as").is_some(), "{p}");
    p
}

/// Asserts that model files `a` and `b` in `d` hold the same tensors, bit
/// for bit.
fn same_tensors(d: &Path, a: &str, b: &str) {
    let (x, y) = (tensors(&d.join(a)), tensors(&d.join(b)));
    assert_eq!(x.len(), y.len());
    for ((name, p), (_, q)) in x.iter().zip(&y) {
        assert!(p == q, "tensor {name}: {b} differs from {a}");
    }
}

/// Resumes half.ckpt.safetensors to 4 epochs as resumed.safetensors.
const RESUME_HALF: [&str; 7] = [
    "train",
    "--resume",
    "half.ckpt.safetensors",
    "--epochs",
    "4",
    "--out",
    "resumed.safetensors",
];

/// Trains `base` for 4 epochs (full.safetensors) and for 2 with a
/// checkpoint every epoch (half.safetensors) under `env`, resumes the
/// checkpoint to 4 epochs under `resume_env` (resumed.safetensors, not
/// quiet: its output is returned), and asserts the resumed model is the
/// uninterrupted one.
fn full_half_resumed(d: &Path, base: &[&str], env: &[(&str, &str)], resume_env: &[(&str, &str)]) -> Output {
    ok_env(
        d,
        &[base, &["--epochs", "4", "--out", "full.safetensors"]].concat(),
        env,
    );
    let half = ["--epochs", "2", "--checkpoint-every", "1", "--out", "half.safetensors"];
    ok_env(d, &[base, &half].concat(), env);
    let out = ok_env(d, &RESUME_HALF, resume_env);
    same_tensors(d, "full.safetensors", "resumed.safetensors");
    out
}

/// The tensors of a safetensors file by name, as raw bytes.
fn tensors(path: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.data().to_vec()))
        .collect();
    out.sort();
    out
}

#[test]
fn with_every_row_in_the_buffer_streaming_trains_the_in_memory_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("gen.csv");
    generated(&csv, 3000, 3);
    let csv = csv.to_str().unwrap();
    // Min-max scaling and no validation split: the streamed fit's
    // statistics and the training rows are exactly the in-memory ones.
    let base = [
        "train",
        "--data",
        csv,
        "--val-split",
        "0",
        "--scaling",
        "minmax",
        "--epochs",
        "3",
        "--seed",
        "5",
        "--batch-size",
        "64",
        "--ensemble",
        "1",
        "--quiet",
    ];
    ok(d, &[&base[..], &["--out", "mem.safetensors"]].concat());
    let out = ok(
        d,
        &[
            &base[..],
            &["--stream", "--shuffle-buffer", "5000", "--out", "st.safetensors"],
        ]
        .concat(),
    );
    let (mem, st) = (tensors(&d.join("mem.safetensors")), tensors(&d.join("st.safetensors")));
    assert!(!mem.is_empty());
    assert_eq!(mem.len(), st.len());
    for ((na, a), (nb, b)) in mem.iter().zip(&st) {
        assert_eq!(na, nb);
        assert!(a == b, "tensor {na} differs between in-memory and streamed training");
    }
    let stdout = text(&out.stdout);
    assert!(stdout.contains("wrote st.safetensors"), "{stdout}");
    // The models also read other files alike: the streamed fit records how
    // its chunks held each column (`read_as`), as the in-memory fit does;
    // without it a file read against the streamed model took each column's
    // centre as its shift (last digits of values differed). The whole
    // preprocessing sections are equal.
    assert_eq!(
        preprocessing(&d.join("mem.safetensors")),
        preprocessing(&d.join("st.safetensors"))
    );
    // With label smoothing too: streamed equals in memory, and both differ
    // from the models trained without it.
    let ls = [&base[..], &["--label-smoothing", "0.1"]].concat();
    ok(d, &[&ls[..], &["--out", "mem-ls.safetensors"]].concat());
    ok(
        d,
        &[
            &ls[..],
            &["--stream", "--shuffle-buffer", "5000", "--out", "st-ls.safetensors"],
        ]
        .concat(),
    );
    let (mem_ls, st_ls) = (
        tensors(&d.join("mem-ls.safetensors")),
        tensors(&d.join("st-ls.safetensors")),
    );
    assert!(
        mem_ls == st_ls,
        "streamed training with label smoothing differs from in-memory"
    );
    assert!(mem_ls != mem, "label smoothing changed nothing");
    // A smaller buffer streams: a different batch order, a model as good.
    let small = ok(
        d,
        &[
            &base[..],
            &[
                "--stream",
                "--shuffle-buffer",
                "500",
                "--test-split",
                "0.2",
                "--json",
                "--out",
                "small.safetensors",
            ],
        ]
        .concat(),
    );
    let last = text(&small.stdout).lines().last().unwrap().to_string();
    let j: serde_json::Value = serde_json::from_str(&last).unwrap();
    let acc = j["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.85, "streamed model's test accuracy {acc}");
}

#[test]
fn streamed_predict_and_eval_print_what_in_memory_ones_print() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("gen.csv");
    generated(&csv, 2600, 11);
    let csv = csv.to_str().unwrap();
    ok(
        d,
        &[
            "train",
            "--data",
            csv,
            "--epochs",
            "2",
            "--out",
            "m.safetensors",
            "--quiet",
        ],
    );
    let diabetes = data("diabetes.csv");
    ok(
        d,
        &[
            "train",
            "--data",
            &diabetes,
            "--epochs",
            "2",
            "--out",
            "r.safetensors",
            "--quiet",
        ],
    );
    // 1030 rows: a last group of 6 rows (which ran through the one-row
    // kernel, its sums in another order, before small calls were padded to
    // 8 rows): the in-memory predict ran all rows in one call and printed
    // other last digits.
    let text_of = std::fs::read_to_string(&diabetes).unwrap();
    let (head, body) = text_of.split_once('\n').unwrap();
    let rows: Vec<&str> = body.lines().cycle().take(1030).collect();
    std::fs::write(d.join("dia1030.csv"), format!("{head}\n{}\n", rows.join("\n"))).unwrap();
    let dia1030 = d.join("dia1030.csv");
    // Small chunks: rows cross chunk and 1024-row group boundaries.
    let small = [("BPNET_STREAM_CHUNK", "8K")];
    for (model, file) in [
        ("m.safetensors", csv),
        ("r.safetensors", diabetes.as_str()),
        ("r.safetensors", dia1030.to_str().unwrap()),
    ] {
        let mem = ok(d, &["predict", "--model", model, "--data", file]);
        let st = ok_env(d, &["predict", "--model", model, "--data", file, "--stream"], &small);
        assert!(mem.stdout == st.stdout, "{model}: streamed predictions differ");
        assert!(text(&st.stderr).contains("note: streaming"), "{}", text(&st.stderr));
        let p = format!("p-{model}.csv");
        ok_env(
            d,
            &["predict", "--model", model, "--data", file, "--stream", "--output", &p],
            &small,
        );
        assert!(
            std::fs::read(d.join(&p)).unwrap() == mem.stdout,
            "{model}: --output differs"
        );
        let mem = ok(d, &["eval", "--model", model, "--data", file, "--json"]);
        let st = ok_env(
            d,
            &["eval", "--model", model, "--data", file, "--json", "--stream"],
            &small,
        );
        if model == "m.safetensors" {
            assert_eq!(text(&mem.stdout), text(&st.stdout), "{model}: eval");
        } else {
            // Regression: R² from Welford's sums, equal up to rounding.
            let (a, b) = (text(&mem.stdout), text(&st.stdout));
            assert_eq!(a.lines().next(), b.lines().next(), "{model}: eval summary");
            let json = |s: &str| -> serde_json::Value { serde_json::from_str(s.lines().last().unwrap()).unwrap() };
            let (ja, jb) = (json(&a), json(&b));
            let mut compared = 0;
            for key in ["r2", "mse", "mae", "rmse"] {
                if let (Some(x), Some(y)) = (find_number(&ja, key), find_number(&jb, key)) {
                    assert!(
                        (x - y).abs() <= 1e-9 * x.abs().max(1.0),
                        "{model}: {key} {x} against {y}"
                    );
                    compared += 1;
                }
            }
            assert!(compared >= 2, "{model}: no regression metrics in {a}");
        }
    }
}

/// Files in `dir` whose name starts with `.` (temporary files).
fn hidden(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect()
}

/// Validation rows that do not fit in the shuffle buffer are read by every
/// epoch's validation pass; one they cannot be read with (a missing cell
/// without `--impute`, a class no training row holds) stops the run before
/// training, in one line naming its line, with nothing written. It stopped
/// the run after the first epoch before.
#[test]
fn a_streamed_runs_unreadable_validation_rows_stop_it_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(&d.join("gen.csv"), 1200, 33);
    let good = std::fs::read_to_string(d.join("gen.csv")).unwrap();
    let split = bpnet::workflow::stream::RowSplit {
        test: 0.0,
        val: 0.1,
        seed: 5,
        limit: 0,
    };
    let role = |r: usize| split.role(r);
    let val: Vec<usize> = (0..1200)
        .filter(|&r| role(r) == bpnet::workflow::stream::Role::Val)
        .collect();
    assert!(val.len() > 60, "{}", val.len());
    // The last validation row: its line is past every training row but a few.
    let row = *val.last().unwrap();
    let line = row + 2;
    let edit = |f: &dyn Fn(&str) -> String| -> String {
        good.lines()
            .enumerate()
            .map(|(i, l)| if i == row + 1 { f(l) } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    std::fs::write(
        d.join("hole.csv"),
        edit(&|l| format!(",{}", l.split_once(',').unwrap().1)),
    )
    .unwrap();
    std::fs::write(
        d.join("class.csv"),
        edit(&|l| format!("{},rare", l.rsplit_once(',').unwrap().0)),
    )
    .unwrap();
    for (file, want) in [
        ("hole.csv", format!("hole.csv: line {line}, column 'a': missing value")),
        ("class.csv", format!("class.csv: line {line}")),
    ] {
        let args = [
            "train",
            "--data",
            file,
            "--target",
            "label",
            "--seed",
            "5",
            "--epochs",
            "3",
            "--ensemble",
            "1",
            "--stream",
            "--shuffle-buffer",
            "50",
            "--checkpoint-every",
            "1",
            "--out",
            "m.safetensors",
        ];
        let r = run_env(d, &args, &[]);
        let err = text(&r.stderr);
        assert!(!r.status.success(), "{args:?}");
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains(&want), "{err}");
        // "training on N rows" opens the training loop (the epoch lines
        // read "epoch    1").
        assert!(!err.contains("training on"), "stopped before training: {err}");
        assert!(!d.join("m.safetensors").exists() && !d.join("m.ckpt.safetensors").exists());
        assert!(!d.join("m.history.csv").exists());
    }
    // The same file with --impute trains (the validation row's cell filled).
    ok(
        d,
        &[
            "train",
            "--data",
            "hole.csv",
            "--target",
            "label",
            "--seed",
            "5",
            "--epochs",
            "1",
            "--ensemble",
            "1",
            "--stream",
            "--shuffle-buffer",
            "50",
            "--impute",
            "mean",
            "--quiet",
            "--out",
            "m.safetensors",
        ],
    );
}

/// A streamed run reads its test rows after training: a `--test` file with
/// an unseen category or a missing cell fails the scoring in one line that
/// says the trained model and its history were written, and they are (the
/// model predicts). They were lost before.
#[test]
fn a_streamed_runs_unreadable_test_rows_keep_the_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(&d.join("gen.csv"), 1200, 21);
    let good = std::fs::read_to_string(d.join("gen.csv")).unwrap();
    let head: Vec<&str> = good.lines().take(40).collect();
    let unseen: Vec<String> = head
        .iter()
        .enumerate()
        .map(|(i, l)| match i {
            5 => l.replace(",x,", ",w,").replace(",y,", ",w,").replace(",z,", ",w,"),
            _ => l.to_string(),
        })
        .collect();
    std::fs::write(d.join("unseen.csv"), unseen.join("\n") + "\n").unwrap();
    let hole: Vec<String> = head
        .iter()
        .enumerate()
        .map(|(i, l)| match i {
            7 => format!(",{}", l.split_once(',').unwrap().1),
            _ => l.to_string(),
        })
        .collect();
    std::fs::write(d.join("hole.csv"), hole.join("\n") + "\n").unwrap();
    for (test, out, want) in [
        (
            "unseen.csv",
            "a.safetensors",
            "unseen.csv: line 6, column 'kind': category 'w' was not seen in training",
        ),
        (
            "hole.csv",
            "b.safetensors",
            "hole.csv: line 8, column 'a': missing value",
        ),
    ] {
        let args = [
            "train",
            "--data",
            "gen.csv",
            "--test",
            test,
            "--epochs",
            "2",
            "--ensemble",
            "1",
            "--stream",
            "--quiet",
            "--out",
            out,
        ];
        let r = run_env(d, &args, &[]);
        let err = text(&r.stderr);
        assert!(!r.status.success(), "{args:?}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{err}");
        let written = format!("the trained model and its history were written to {out} without test metrics");
        assert!(err.contains(&written), "{err}");
        assert!(d.join(out).exists() && d.join(out.replace(".safetensors", ".history.csv")).exists());
        ok(
            d,
            &[
                "predict",
                "--model",
                out,
                "--data",
                "gen.csv",
                "--output",
                "p.csv",
                "--overwrite",
            ],
        );
    }
}

/// A `--test` file that lacks a column is refused before training, as in
/// memory: the header shows it (the streamed run trained, then failed).
#[test]
fn a_streamed_runs_test_file_without_a_column_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(&d.join("gen.csv"), 1200, 21);
    let good = std::fs::read_to_string(d.join("gen.csv")).unwrap();
    let cut: Vec<&str> = good.lines().take(40).map(|l| l.split_once(',').unwrap().1).collect();
    std::fs::write(d.join("cut.csv"), cut.join("\n") + "\n").unwrap();
    for mode in ["--stream", "--no-stream"] {
        let args = [
            "train",
            "--data",
            "gen.csv",
            "--test",
            "cut.csv",
            "--epochs",
            "2",
            "--ensemble",
            "1",
        ];
        let r = run_env(
            d,
            &[&args[..], &[mode, "--quiet", "--out", "m.safetensors"]].concat(),
            &[],
        );
        let err = text(&r.stderr);
        assert!(!r.status.success(), "{mode}");
        assert_eq!(err.trim().lines().count(), 1, "{mode}: {err}");
        assert!(err.contains("cut.csv: line 1, column 'a': missing"), "{mode}: {err}");
        assert!(!err.contains("written"), "{mode}: {err}");
        assert!(!text(&r.stdout).contains("epoch"), "{mode}: trained first");
        assert!(!d.join("m.safetensors").exists(), "{mode}");
    }
}

#[test]
fn streamed_errors_name_the_file_and_line_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("gen.csv");
    generated(&csv, 3000, 5);
    let good = std::fs::read_to_string(&csv).unwrap();
    let small = [("BPNET_STREAM_CHUNK", "8K")];
    // A ragged row deep in the file (line 2901, many chunks in).
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    lines[2900] += ",extra";
    let ragged = d.join("ragged.csv");
    std::fs::write(&ragged, lines.join("\n") + "\n").unwrap();
    let out = run_env(
        d,
        &[
            "train",
            "--data",
            ragged.to_str().unwrap(),
            "--stream",
            "--out",
            "x.safetensors",
        ],
        &small,
    );
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("ragged.csv") && err.contains("line 2901"), "{err}");
    assert!(err.contains("too many fields"), "{err}");
    assert!(!d.join("x.safetensors").exists());
    // An unseen category while predicting: no output, no temporary file.
    ok(
        d,
        &[
            "train",
            "--data",
            csv.to_str().unwrap(),
            "--epochs",
            "1",
            "--out",
            "m.safetensors",
            "--quiet",
        ],
    );
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    lines[2500] = lines[2500]
        .replace(",x,", ",w,")
        .replace(",y,", ",w,")
        .replace(",z,", ",w,");
    let unseen = d.join("unseen.csv");
    std::fs::write(&unseen, lines.join("\n") + "\n").unwrap();
    let args = [
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        unseen.to_str().unwrap(),
        "--stream",
        "--output",
        "p.csv",
    ];
    let out = run_env(d, &args, &small);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("unseen.csv") && err.contains("line 2501") && err.contains("'w'"),
        "{err}"
    );
    assert!(!d.join("p.csv").exists());
    assert!(hidden(d).is_empty(), "left behind: {:?}", hidden(d));
    // What streaming cannot do is refused by name.
    let out = run_env(
        d,
        &[
            "train",
            "--data",
            csv.to_str().unwrap(),
            "--stream",
            "--impute",
            "median",
        ],
        &[],
    );
    assert!(text(&out.stderr).contains("median"), "{}", text(&out.stderr));
    // Splits that hold out every row are named with the file and flags
    // (it said "invalid training data: has no rows").
    let few = d.join("few.csv");
    std::fs::write(&few, good.lines().take(34).collect::<Vec<_>>().join("\n") + "\n").unwrap();
    let args = [
        "train",
        "--data",
        few.to_str().unwrap(),
        "--stream",
        "--val-split",
        "0.999",
    ];
    let out = run_env(
        d,
        &[&args[..], &["--ensemble", "1", "--out", "v.safetensors"]].concat(),
        &[],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.trim_end().lines().count() <= 2, "{err}");
    assert!(
        err.contains("few.csv: every one of its 33 rows was held out (")
            && err.contains("no training rows are left; lower --val-split or --test-split"),
        "{err}"
    );
    assert!(!d.join("v.safetensors").exists());
}

/// The first line of a file without a header is data: a cell there that is
/// not a number fails as it does in memory, word for word (streamed, it was
/// stored as a missing value, so `--impute` filled in a header cell, a
/// header row got a prediction, and a model trained on '2020' as a value);
/// and the error says the first line was taken for data.
#[test]
fn a_first_line_taken_for_data_fails_streamed_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut g = Gen(11);
    let mut rows = String::new();
    for i in 0..60 {
        rows += &format!(
            "{},{}.{},{}\n",
            30 + g.below(30),
            g.below(3),
            g.below(10),
            ["P", "N"][i % 2]
        );
    }
    std::fs::write(d.join("train.csv"), &rows).unwrap();
    std::fs::write(d.join("named.csv"), format!("age,2020,y\n{rows}")).unwrap();
    std::fs::write(d.join("new.csv"), "a,b\n35,0.5\n40,2\n").unwrap();
    let fails = |args: &[&str]| {
        let out = run_env(d, args, &[]);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = text(&out.stderr);
        err.lines().last().unwrap_or("").to_string()
    };
    let quick = ["--epochs", "1", "--ensemble", "1", "--quiet"];
    ok(
        d,
        &[
            &[
                "train",
                "--data",
                "train.csv",
                "--no-header",
                "--impute",
                "mean",
                "--out",
                "m.safetensors",
            ],
            &quick[..],
        ]
        .concat(),
    );
    let predict = [
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        "new.csv",
        "--output",
        "p.csv",
    ];
    let in_memory = fails(&predict);
    assert!(
        in_memory.contains("new.csv: line 1, column 'col0': 'a' is not a number"),
        "{in_memory}"
    );
    assert_eq!(fails(&[&predict[..], &["--stream"]].concat()), in_memory);
    assert!(!d.join("p.csv").exists());
    for impute in [&[][..], &["--impute", "mean"]] {
        let train = [
            &["train", "--data", "named.csv", "--out", "x.safetensors"],
            &quick[..],
            impute,
        ]
        .concat();
        let in_memory = fails(&train);
        assert!(
            in_memory.ends_with(
                "named.csv: line 1, column 'col0': 'age' is not a number (the column is numeric) (the first line was read as data: give --header if it names the columns)"
            ),
            "{in_memory}"
        );
        assert_eq!(fails(&[&train[..], &["--stream"]].concat()), in_memory);
    }
    assert!(!d.join("x.safetensors").exists());
}

#[test]
fn a_file_that_would_not_fit_streams_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("gen.csv");
    generated(&csv, 3000, 9);
    let args = [
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--epochs",
        "1",
        "--out",
        "m.safetensors",
    ];
    let out = ok_env(d, &args, &[("BPNET_MEMORY", "100K")]);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("note: streaming") && stdout.contains("BPNET_MEMORY"),
        "{stdout}"
    );
    assert!(stdout.contains("shuffle buffer of"), "{stdout}");
    let out = ok_env(d, &[&args[..], &["--no-stream"]].concat(), &[("BPNET_MEMORY", "100K")]);
    assert!(!text(&out.stdout).contains("note: streaming"));
    let out = ok(d, &args);
    assert!(!text(&out.stdout).contains("note: streaming"));
}

#[test]
fn a_streamed_run_resumes_exactly_at_an_epoch_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("gen.csv");
    generated(&csv, 3000, 21);
    let small = [("BPNET_STREAM_CHUNK", "8K")];
    let base = [
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--stream",
        "--shuffle-buffer",
        "300",
        "--seed",
        "2",
        "--patience",
        "0",
        "--quiet",
    ];
    full_half_resumed(d, &base, &small, &small);
    // With every training row held (as --diagnostics needs), the
    // diagnostics continue across the resume (they restarted empty).
    let held = d.join("held");
    std::fs::create_dir(&held).unwrap();
    let diag = [&base[..10], &["--diagnostics", "--quiet"]].concat();
    let diag: Vec<&str> = diag.iter().map(|a| if *a == "300" { "5000" } else { a }).collect();
    full_half_resumed(&held, &diag, &small, &small);
    let read = |name: &str| std::fs::read_to_string(held.join(name)).unwrap();
    assert_eq!(read("resumed.diagnostics.csv"), read("full.diagnostics.csv"));
    assert!(read("full.diagnostics.csv").starts_with("epoch,step,name,quantity,value\n1,"));
    // `--steps` ending inside an epoch keeps the last boundary's
    // checkpoint (it wrote one at its last step, which could not resume).
    let history = std::fs::read_to_string(d.join("half.history.csv")).unwrap();
    let per_epoch: usize = history
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let part = (per_epoch + 3).to_string();
    let args = [
        &base[..],
        &["--steps", &part, "--checkpoint-every", "1", "--out", "part.safetensors"],
    ]
    .concat();
    ok_env(d, &args, &small);
    let more = (2 * per_epoch + 3).to_string();
    let resume = [
        "train",
        "--resume",
        "part.ckpt.safetensors",
        "--steps",
        &more,
        "--out",
        "more.safetensors",
    ];
    let out = ok_env(d, &resume, &small);
    let said = text(&out.stdout);
    assert!(said.contains(&format!("resuming at step {per_epoch}")), "{said}");
    // A checkpoint inside an epoch could not be resumed exactly: refused.
    let steps = [&base[..], &["--checkpoint-steps", "5", "--out", "s.safetensors"]].concat();
    let out = run_env(d, &steps, &small);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("epoch"), "{}", text(&out.stderr));
}

/// The default shuffle buffer follows the available memory: a checkpoint
/// records the buffer and the chunk size it trained with, and its resume
/// keeps them, so a resume with twice the memory and other chunks still
/// ends bit-identical to the uninterrupted run (without the record
/// the first layer's weights differed, silently).
#[test]
fn a_streamed_resume_keeps_the_checkpoints_buffer_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(&d.join("gen.csv"), 3000, 33);
    let run = [("BPNET_MEMORY", "100K"), ("BPNET_STREAM_CHUNK", "8K")];
    let base = [
        "train",
        "--data",
        "gen.csv",
        "--stream",
        "--seed",
        "4",
        "--patience",
        "0",
        "--quiet",
    ];
    let other = [("BPNET_MEMORY", "200K"), ("BPNET_STREAM_CHUNK", "16K")];
    let notes = text(&full_half_resumed(d, &base, &run, &other).stdout);
    assert!(
        notes.contains("(the checkpoint's)") && notes.contains("every epoch reads the file again"),
        "{notes}"
    );
    // A buffer asked for now that is not the checkpoint's is refused (it
    // would change the batch order; it was ignored silently).
    let other_buffer = [&RESUME_HALF[..], &["--shuffle-buffer", "999", "--overwrite"]].concat();
    let out = run_env(d, &other_buffer, &other);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("invalid --shuffle-buffer: 999: the checkpoint trained with a buffer of"),
        "{err}"
    );
    // The chunk setting is checked: a value that is not a size, or one that
    // would reserve a terabyte, is an error, not ignored or an abort.
    for bad in ["abc", "1T"] {
        let out = run_env(
            d,
            &[
                "predict",
                "--model",
                "full.safetensors",
                "--data",
                "gen.csv",
                "--stream",
            ],
            &[("BPNET_STREAM_CHUNK", bad)],
        );
        let err = text(&out.stderr);
        assert!(
            out.status.code() == Some(1)
                && err.contains("BPNET_STREAM_CHUNK")
                && err.lines().filter(|l| l.starts_with("error: ")).count() == 1
                && !err.contains("panicked"),
            "{bad}: {err}"
        );
    }
}

/// A resume keeps the mode its checkpoint trained in: a run that streamed
/// because memory was short resumes streamed where memory is plenty, and
/// an in-memory run resumes in memory where memory is short (the memory
/// of the moment had chosen the other mode, whose preprocessing differs,
/// and refused the checkpoint as "trained on other rows").
#[test]
fn a_resume_keeps_the_mode_its_checkpoint_trained_in() {
    let low = [("BPNET_MEMORY", "100K"), ("BPNET_STREAM_CHUNK", "8K")];
    let plenty = [("BPNET_STREAM_CHUNK", "8K")];
    for (train, resume) in [(&low[..], &plenty[..]), (&plenty[..], &low[..])] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        generated(&d.join("gen.csv"), 3000, 33);
        // One network: the in-memory default on a table is an ensemble.
        let base = [
            "train",
            "--data",
            "gen.csv",
            "--seed",
            "4",
            "--patience",
            "0",
            "--ensemble",
            "1",
            "--quiet",
        ];
        let notes = text(&full_half_resumed(d, &base, train, resume).stdout);
        let streamed = train == &low[..];
        assert_eq!(notes.contains("as its checkpoint was trained"), streamed, "{notes}");
    }
}

/// Validation rows that do not fit in the shuffle buffer are not held:
/// every epoch reads the file again for them. Each epoch's `val_loss` and
/// `val_metric` equal what `bpnet eval` prints for the model of that epoch
/// on a file of just those rows (the same groups of rows, the same fused
/// network: bit for bit).
#[test]
fn validation_rows_beyond_the_buffer_are_read_again_every_epoch() {
    use bpnet::workflow::stream::{Role, RowSplit};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut rows = Vec::new();
    for i in 0..6000u64 {
        let f = |k: u64| ((i * 7919 + k * 104_729) % 10_007) as f64 / 5003.5 - 1.0;
        let (a, b, c) = (f(1), f(2), f(3));
        let y = if a + 0.5 * b - c > 0.0 { "p" } else { "n" };
        rows.push(format!("{a:.4},{b:.4},{c:.4},{y}"));
    }
    std::fs::write(d.join("d.csv"), format!("a,b,c,y\n{}\n", rows.join("\n"))).unwrap();
    let split = RowSplit {
        test: 0.0,
        val: 0.1,
        seed: 7,
        limit: 0,
    };
    let val: Vec<&String> = (0..rows.len())
        .filter(|&r| split.role(r) == Role::Val)
        .map(|r| &rows[r])
        .collect();
    assert!(val.len() > 400, "{} validation rows", val.len());
    let lines = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n");
    std::fs::write(d.join("val.csv"), format!("a,b,c,y\n{}\n", lines(&val))).unwrap();
    let args = [
        "train",
        "--data",
        "d.csv",
        "--stream",
        "--shuffle-buffer",
        "400",
        "--val-split",
        "0.1",
        "--test-split",
        "0",
        "--seed",
        "7",
        "--patience",
        "0",
    ];
    for epochs in ["1", "2"] {
        let out = format!("m{epochs}.safetensors");
        let o = ok_env(d, &[&args[..], &["--epochs", epochs, "--out", &out]].concat(), &[]);
        let said = text(&o.stdout);
        assert!(
            said.contains("validation rows do not fit in the shuffle buffer"),
            "{said}"
        );
        let history = std::fs::read_to_string(d.join(format!("m{epochs}.history.csv"))).unwrap();
        let last: Vec<f64> = history
            .lines()
            .last()
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        let e = ok_env(d, &["eval", "--model", &out, "--data", "val.csv", "--json"], &[]);
        let json: serde_json::Value = serde_json::from_str(text(&e.stdout).lines().last().unwrap()).unwrap();
        assert_eq!(
            last[3],
            json["metrics"]["loss"].as_f64().unwrap(),
            "epoch {epochs}: val_loss"
        );
        assert_eq!(
            last[4],
            json["metrics"]["accuracy"].as_f64().unwrap(),
            "epoch {epochs}: val_metric"
        );
    }
}

/// What a streamed run cannot honour is refused before training, in one
/// line naming the option, and no model is written: an ensemble, `--cv`,
/// `--lr auto`, and (when the rows do not fit in the shuffle buffer) full
/// batches and diagnostics, which need every row in memory.
#[test]
fn options_a_streamed_run_cannot_honour_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wine = data("wine.csv");
    let base = [
        "train",
        "--data",
        wine.as_str(),
        "--stream",
        "--epochs",
        "1",
        "--out",
        "m.safetensors",
    ];
    let small = ["--shuffle-buffer", "20"];
    let cases: [(&[&str], &str); 5] = [
        (&["--ensemble", "3"], "--ensemble is not available while streaming"),
        (&["--cv", "3"], "--cv is not available while streaming"),
        (&["--lr", "auto"], "--lr auto is not available while streaming"),
        (
            &["--optimizer", "gd", small[0], small[1]],
            "--optimizer gd (full batch) needs every training row",
        ),
        (
            &["--diagnostics", small[0], small[1]],
            "--diagnostics needs every training row",
        ),
    ];
    for (extra, want) in cases {
        let args = [&base[..], extra].concat();
        let out = run_env(d, &args, &[]);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success() && stderr.lines().count() == 1 && stderr.contains(want),
            "{extra:?}: {stderr}"
        );
        assert!(!d.join("m.safetensors").exists(), "{extra:?} wrote a model");
    }
}

/// When every training row fits in the shuffle buffer a streamed run
/// checkpoints inside an epoch (`--checkpoint-steps`) and resumes from
/// there to the uninterrupted run's model, bit for bit: 10 steps an epoch,
/// the last checkpoint at step 14 of 20.
#[test]
fn a_resident_stream_resumes_from_inside_an_epoch_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wine = data("wine.csv");
    let base = [
        "train",
        "--data",
        wine.as_str(),
        "--stream",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--val-split",
        "0.1",
        "--patience",
        "0",
        "--checkpoint-steps",
        "7",
        "--quiet",
    ];
    ok(d, &[&base[..], &["--out", "full.safetensors"]].concat());
    std::fs::copy(d.join("full.ckpt.safetensors"), d.join("at14.safetensors")).unwrap();
    let run = bpnet::io::load_run(&d.join("at14.safetensors")).unwrap();
    assert_eq!(run.resume.state.step, 14, "the checkpoint is inside the second epoch");
    ok(
        d,
        &[
            &base[..],
            &["--resume", "at14.safetensors", "--out", "resumed.safetensors"],
        ]
        .concat(),
    );
    same_tensors(d, "full.safetensors", "resumed.safetensors");
}

/// `predict` and `eval` stream on their own when the file would not fit
/// in the memory available (`BPNET_MEMORY`), with a note, and print what
/// they print in memory; `--no-stream` keeps them in memory.
#[test]
fn predict_and_eval_stream_on_their_own_when_the_file_would_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("gen.csv");
    generated(&csv, 3000, 13);
    let csv = csv.to_str().unwrap();
    ok(
        d,
        &[
            "train",
            "--data",
            csv,
            "--epochs",
            "1",
            "--out",
            "m.safetensors",
            "--quiet",
        ],
    );
    let low = [("BPNET_MEMORY", "100K")];
    for cmd in ["predict", "eval"] {
        let args = [cmd, "--model", "m.safetensors", "--data", csv];
        let mem = ok(d, &args);
        let auto = ok_env(d, &args, &low);
        assert!(
            text(&auto.stderr).contains("note: streaming"),
            "{cmd}: {}",
            text(&auto.stderr)
        );
        assert_eq!(text(&mem.stdout), text(&auto.stdout), "{cmd}: streamed output differs");
        let kept = ok_env(d, &[&args[..], &["--no-stream"]].concat(), &low);
        assert!(
            !text(&kept.stderr).contains("note: streaming"),
            "{cmd}: {}",
            text(&kept.stderr)
        );
    }
}

/// The first number named `key` anywhere in `v`.
fn find_number(v: &serde_json::Value, key: &str) -> Option<f64> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .or_else(|| m.values().find_map(|x| find_number(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_number(x, key)),
        _ => None,
    }
}

/// A streamed run scores a separate `--test` file; its test metrics are
/// what `bpnet eval` computes for the saved model on that file.
#[test]
fn a_streamed_run_scores_a_test_file_as_eval_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wine = std::fs::read_to_string(data("wine.csv")).unwrap();
    let lines: Vec<&str> = wine.lines().collect();
    // Every fifth row is a test row (the file is sorted by class).
    let rows = |test: bool| -> Vec<&str> {
        let kept = lines[1..].iter().enumerate().filter(|(i, _)| (i % 5 == 0) == test);
        kept.map(|(_, r)| *r).collect()
    };
    let (test, train) = (rows(true), rows(false));
    let part = |rows: &[&str]| format!("{}\n{}\n", lines[0], rows.join("\n"));
    std::fs::write(d.join("train.csv"), part(&train)).unwrap();
    std::fs::write(d.join("test.csv"), part(&test)).unwrap();
    let args = [
        "train",
        "--data",
        "train.csv",
        "--test",
        "test.csv",
        "--stream",
        "--epochs",
        "3",
    ];
    let out = ok(
        d,
        &[&args[..], &["--quiet", "--json", "--out", "m.safetensors"]].concat(),
    );
    let last =
        |o: &Output| -> serde_json::Value { serde_json::from_str(text(&o.stdout).lines().last().unwrap()).unwrap() };
    let trained = last(&out)["test"].clone();
    let eval = last(&ok(
        d,
        &["eval", "--model", "m.safetensors", "--data", "test.csv", "--json"],
    ))["metrics"]
        .clone();
    assert_eq!(trained["rows"].as_u64(), Some(test.len() as u64), "{trained}");
    for key in ["rows", "accuracy", "confusion", "loss"] {
        assert_eq!(
            trained[key], eval[key],
            "{key}: train --test {trained} against eval {eval}"
        );
    }
}

/// A streamed run that diverges saves the weights from before the bad
/// step with its history, as a run in memory does (it wrote no history).
#[test]
fn a_streamed_run_that_diverges_leaves_its_history() {
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
        "--lr",
        "1e4",
        "--epochs",
        "2",
        "--stream",
        "--quiet",
    ];
    // Held in memory (full batch: diverges on step 2, after epoch 2's
    // record), and read through a shuffle buffer of 50 rows (mid-epoch 1).
    let runs: [(&[&str], &str, usize, u64); 2] = [
        (&["--optimizer", "gd", "--out", "a.safetensors"], "a", 2, 1),
        (
            &[
                "--optimizer",
                "sgd",
                "--batch-size",
                "20",
                "--shuffle-buffer",
                "50",
                "--out",
                "b.safetensors",
            ],
            "b",
            0,
            0,
        ),
    ];
    for (extra, name, epochs, best) in runs {
        let out = run_env(d, &[&base[..], extra].concat(), &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!(
                "the weights from before this step were saved to {name}.safetensors"
            )),
            "{err}"
        );
        let h: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(format!("{name}.history.json"))).unwrap()).unwrap();
        assert_eq!(
            (h["epochs"].as_array().unwrap().len(), h["best_epoch"].as_u64()),
            (epochs, Some(best)),
            "{h}"
        );
        assert!(
            h["notes"][0]
                .as_str()
                .unwrap()
                .starts_with("training diverged at step "),
            "{h}"
        );
        assert!(d.join(format!("{name}.history.csv")).is_file());
    }
}

/// A missing cell without `--impute` is named in the same words wherever
/// it is met: among the training rows or the validation rows, in memory
/// or streamed, and in rows given to a model trained without imputation.
/// A streamed run's validation row said "missing value (fit without
/// --impute)" where a training row said "missing value (use --impute
/// mean or --impute median)".
#[test]
fn a_missing_cell_is_named_alike_in_every_role_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generated(&d.join("gen.csv"), 1009, 41);
    let good = std::fs::read_to_string(d.join("gen.csv")).unwrap();
    let split = bpnet::workflow::stream::RowSplit {
        test: 0.0,
        val: 0.1,
        seed: 2,
        limit: 0,
    };
    let first = |role| (0..1009).find(|&r| split.role(r) == role).unwrap();
    let rows = [
        first(bpnet::workflow::stream::Role::Val),
        first(bpnet::workflow::stream::Role::Train),
    ];
    let want = "missing value (without --impute nothing is filled in: train with --impute mean or --impute median, or fill the cell)";
    for row in rows {
        let holed: String = good
            .lines()
            .enumerate()
            .map(|(i, l)| match i == row + 1 {
                true => format!(",{}\n", l.split_once(',').unwrap().1),
                false => format!("{l}\n"),
            })
            .collect();
        std::fs::write(d.join("hole.csv"), holed).unwrap();
        for mode in ["--stream", "--no-stream"] {
            let args = [
                "train",
                "--data",
                "hole.csv",
                "--target",
                "label",
                "--seed",
                "2",
                "--epochs",
                "1",
                "--ensemble",
                "1",
                mode,
                "--out",
                "h.safetensors",
            ];
            let r = run_env(d, &args, &[]);
            assert!(!r.status.success(), "{args:?}");
            let err = text(&r.stderr);
            let line = format!("hole.csv: line {}, column 'a': {want}", row + 2);
            assert!(err.contains(&line), "row {row} {mode}: {err}");
        }
    }
    // New rows for a model trained without --impute.
    ok(
        d,
        &[
            "train",
            "--data",
            "gen.csv",
            "--target",
            "label",
            "--epochs",
            "1",
            "--ensemble",
            "1",
            "--out",
            "g.safetensors",
        ],
    );
    for mode in ["--stream", "--no-stream"] {
        let r = run_env(
            d,
            &["predict", "--model", "g.safetensors", "--data", "hole.csv", mode],
            &[],
        );
        let err = text(&r.stderr);
        assert!(
            !r.status.success() && err.contains(&format!("column 'a': {want}")),
            "{mode}: {err}"
        );
    }
}

//! What `predict`, `eval` and `plot` write for awkward names and values:
//! class and column names holding commas and quotes stay whole in CSV
//! headers and rows and in Parquet column names, in memory and streamed; a
//! streamed prediction that fails prints nothing; regression metrics are
//! printed once; a history with a loss near `f64::MAX` is drawn.

mod common;
use bpnet::data::{CsvOptions, RawTable, parse_csv};
use common::{ok, run_in, text};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CLASS_X: &str = "x,1";
const CLASS_Z: &str = "z \"q\"";

/// `c.csv` (classes `x,1` and `z "q"`) and `r.csv` (target `y,val`) in
/// `d`, and a model trained on each: `c.safetensors`, `r.safetensors`.
fn models(d: &Path) {
    let mut c = String::from("a,b,y\n");
    let mut r = String::from("a,b,\"y,val\"\n");
    for i in 1..=6 {
        let class = if i % 2 == 1 { "\"x,1\"" } else { "\"z \"\"q\"\"\"" };
        c += &format!("{i},{},{class}\n", (i * 5) % 7);
        r += &format!("{i},{},{}\n", (i * 5) % 7, i + 2);
    }
    std::fs::write(d.join("c.csv"), c).unwrap();
    std::fs::write(d.join("r.csv"), r).unwrap();
    for m in ["c", "r"] {
        let (data, out) = (format!("{m}.csv"), format!("{m}.safetensors"));
        let args = [
            "train", "--data", &data, "--out", &out, "--epochs", "1", "--hidden", "4",
        ];
        ok(d, &[&args[..], &["--ensemble", "1", "--quiet"]].concat());
    }
}

/// `csv` parsed as a CSV file with a header; every row has the header's
/// number of fields.
fn parsed(csv: &str) -> RawTable {
    let opts = CsvOptions {
        header: Some(true),
        ..CsvOptions::default()
    };
    let t = parse_csv(csv.as_bytes(), Path::new("predictions.csv"), &opts).unwrap();
    for row in &t.rows {
        assert_eq!(row.len(), t.columns.len(), "{csv}");
    }
    t
}

/// `bpnet predict` of `model` on its own training file, to stdout or to
/// `output`, in memory or streamed; what it printed.
fn predict(d: &Path, model: &str, output: Option<&str>, stream: bool) -> String {
    let (model, data) = (format!("{model}.safetensors"), format!("{model}.csv"));
    let mut args = vec!["predict", "--model", &model, "--data", &data];
    args.push(if stream { "--stream" } else { "--no-stream" });
    if let Some(o) = output {
        args.extend(["--output", o]);
    }
    ok(d, &args)
}

#[test]
fn names_with_commas_and_quotes_stay_whole_in_csv_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    models(d);
    let printed = predict(d, "c", None, false);
    assert!(
        printed.starts_with("prediction,\"p_x,1\",\"p_z \"\"q\"\"\"\n"),
        "{printed}"
    );
    let t = parsed(&printed);
    assert_eq!(t.columns, ["prediction", "p_x,1", "p_z \"q\""]);
    assert_eq!(t.rows.len(), 6);
    assert!(t.rows.iter().all(|r| r[0] == CLASS_X || r[0] == CLASS_Z), "{printed}");
    let values = predict(d, "r", None, false);
    assert_eq!(parsed(&values).columns, ["y,val"]);
    assert_eq!(parsed(&values).rows.len(), 6);
    // Streamed, and into a file (written twice: the file of the first run
    // is known as predictions), the same bytes.
    for (model, want) in [("c", &printed), ("r", &values)] {
        assert_eq!(&predict(d, model, None, true), want, "{model} streamed");
        for stream in [false, true] {
            for _ in 0..2 {
                let file = format!("{model}-p.csv");
                predict(d, model, Some(&file), stream);
                let written = std::fs::read_to_string(d.join(&file)).unwrap();
                assert_eq!(&written, want, "{model} to a file");
            }
        }
    }
}

/// The column names and the rows of cells of a Parquet file.
#[cfg(feature = "columnar")]
fn parquet(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let t = bpnet::data::read_data(path, &CsvOptions::default(), None).unwrap();
    let rows = (0..t.len())
        .map(|r| (0..t.columns.len()).map(|c| t.cell_text(r, c).into_owned()).collect())
        .collect();
    (t.columns.clone(), rows)
}

#[cfg(feature = "columnar")]
#[test]
fn names_with_commas_and_quotes_stay_whole_in_parquet_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    models(d);
    for stream in [false, true] {
        predict(d, "c", Some("c.parquet"), stream);
        let (columns, rows) = parquet(&d.join("c.parquet"));
        assert_eq!(columns, ["prediction", "p_x,1", "p_z \"q\""], "stream {stream}");
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|r| r[0] == CLASS_X || r[0] == CLASS_Z), "{rows:?}");
        predict(d, "r", Some("r.parquet"), stream);
        let (columns, rows) = parquet(&d.join("r.parquet"));
        assert_eq!(columns, ["y,val"], "stream {stream}");
        assert_eq!(rows.len(), 6);
        // Written again: the file is known as this model's predictions.
        predict(d, "r", Some("r.parquet"), stream);
    }
}

#[test]
fn a_streamed_prediction_of_a_file_lacking_a_column_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    models(d);
    std::fs::write(d.join("lacking.csv"), "a,q\n1,2\n3,4\n").unwrap();
    for model in ["c.safetensors", "r.safetensors"] {
        let args = ["predict", "--model", model, "--data", "lacking.csv", "--stream"];
        let out = run_in(d, &args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(text(&out.stdout), "", "{model}");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with("error: lacking.csv") && last.contains("column 'b'"),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn eval_prints_each_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    models(d);
    for stream in ["--no-stream", "--stream"] {
        let out = ok(d, &["eval", "--model", "r.safetensors", "--data", "r.csv", stream]);
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("RMSE ") && out.contains("(6 rows)"), "{out}");
        let out = ok(d, &["eval", "--model", "c.safetensors", "--data", "c.csv", stream]);
        let summary = out.lines().next().unwrap();
        assert_eq!(out.lines().filter(|l| *l == summary).count(), 1, "{out}");
        assert!(summary.starts_with("accuracy ") && out.contains("precision"), "{out}");
        assert!(out.contains("confusion matrix"), "{out}");
    }
}

/// Runs `bpnet args` in `dir`; a run still going after a minute is killed
/// and fails the test.
fn within_a_minute(dir: &Path, args: &[&str]) -> std::process::Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::output_within(child, Duration::from_secs(60), &format!("bpnet {args:?}"))
}

#[test]
fn plot_draws_a_history_with_a_loss_near_the_largest_number() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let epoch = |e: u32, train: &str, val: &str| {
        format!(
            r#"{{"epoch":{e},"lr":0.001,"seconds":0.1,"step":{e},"train_loss":{train},"val_loss":{val},"val_metric":null}}"#
        )
    };
    let history = format!(
        r#"{{"best_epoch":1,"epochs":[{},{}],"notes":[],"stopped_early":false}}"#,
        epoch(1, "1.0", "2.0"),
        epoch(2, "1.7e308", "1.0")
    );
    std::fs::write(d.join("z.history.json"), history).unwrap();
    let out = within_a_minute(d, &["plot", "z.history.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in ["curves.png", "curves.svg"] {
        assert!(d.join("z.plots").join(f).is_file(), "{f}");
    }
}

/// A history of one epoch draws each curve's one point as a dot (a line of
/// one point drew nothing: axes and legend, no curve).
#[test]
fn plot_marks_a_curve_of_one_point() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let history = r#"{"best_epoch":1,"epochs":[{"epoch":1,"lr":0.001,"seconds":0.1,"step":3,"train_loss":1.2,"val_loss":1.1,"val_metric":0.6}],"notes":[],"stopped_early":false}"#;
    std::fs::write(d.join("one.history.json"), history).unwrap();
    let out = within_a_minute(d, &["plot", "one.history.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let svg = std::fs::read_to_string(d.join("one.plots/curves.svg")).unwrap();
    // Train loss, validation loss, validation metric.
    assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
}

/// With stdout a terminal and stderr redirected (`2>file`, as each rank's
/// streams are under `mpirun`) the epoch lines are printed on stdout: the
/// progress bar, drawn on the hidden stderr, swallowed them. Run under
/// `script`, which gives the command a terminal (util-linux, in every
/// Debian; the test is skipped where it is missing, failing under CI).
#[test]
fn epoch_lines_are_printed_when_stderr_is_redirected_from_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "`script` is missing under CI");
        eprintln!("SKIP: no `script` command to give the run a terminal");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let train = format!(
        "{} train --data {}/../../data/wine.csv --epochs 3 --ensemble 1 --out m.safetensors 2>err.txt",
        env!("CARGO_BIN_EXE_bpnet"),
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("script")
        .args(["-qec", &train, "/dev/null"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let epochs = stdout.lines().filter(|l| l.starts_with("epoch")).count();
    assert_eq!(epochs, 3, "{stdout}");
}

/// `predict --output -` prints to stdout (it wrote a file named `-`).
#[test]
fn predict_output_dash_is_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    models(d);
    let out = ok(
        d,
        &[
            "predict",
            "--model",
            "c.safetensors",
            "--data",
            "c.csv",
            "--output",
            "-",
        ],
    );
    assert!(out.starts_with("prediction,"), "{out}");
    assert!(!d.join("-").exists());
}

//! `bpnet train`, `eval` and `predict` on a Parquet file (made here from a
//! CSV with the engine's writer), and `predict --output x.parquet`: the
//! same model and predictions as from the CSV.
#![cfg(feature = "columnar")]

mod common;
use common::ok;

fn csv() -> String {
    let mut s = String::from("x1,x2,kind,label\n");
    for i in 0..240 {
        let (a, b) = ((i * 37 % 101) as f64 / 10.0, (i * 53 % 89) as f64 / 9.0);
        let kind = ["p", "q", "r"][i % 3];
        s += &format!("{a},{b},{kind},{}\n", if a + b > 10.0 { "big" } else { "small" });
    }
    s
}

#[test]
fn parquet_trains_evaluates_and_predicts_like_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.csv"), csv()).unwrap();
    let bytes = bpnet::data::table::csv_to_parquet(&csv(), &d.join("t.parquet")).unwrap();
    std::fs::write(d.join("t.parquet"), bytes).unwrap();
    let train = |data: &str, out: &str| ok(d, &["train", "--data", data, "--epochs", "3", "--out", out, "--quiet"]);
    train("t.csv", "a.safetensors");
    train("t.parquet", "b.safetensors");
    let eval = |m: &str, data: &str| ok(d, &["eval", "--model", m, "--data", data]);
    // The same data gives the same model: the same metrics on either file.
    let e = eval("a.safetensors", "t.csv");
    assert_eq!(e, eval("b.safetensors", "t.csv"));
    assert_eq!(e, eval("a.safetensors", "t.parquet"));
    let csv_preds = ok(d, &["predict", "--model", "a.safetensors", "--data", "t.parquet"]);
    assert_eq!(
        csv_preds,
        ok(d, &["predict", "--model", "a.safetensors", "--data", "t.csv"])
    );
    ok(
        d,
        &[
            "predict",
            "--model",
            "a.safetensors",
            "--data",
            "t.parquet",
            "--output",
            "p.parquet",
        ],
    );
    // An existing predictions file is recognized and replaced; a Parquet
    // file of other columns is not.
    let again = [
        "predict",
        "--model",
        "a.safetensors",
        "--data",
        "t.csv",
        "--output",
        "p.parquet",
    ];
    ok(d, &again);
    std::fs::copy(d.join("t.parquet"), d.join("other.parquet")).unwrap();
    let refused = common::run_in(
        d,
        &[
            "predict",
            "--model",
            "a.safetensors",
            "--data",
            "t.csv",
            "--output",
            "other.parquet",
        ],
    );
    assert!(!refused.status.success());
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("a Parquet file with columns 'x1,x2,kind,label'"), "{e}");
    let p = bpnet::data::read_data(&d.join("p.parquet"), &Default::default(), None).unwrap();
    assert!(p.is_columnar());
    assert_eq!(p.columns, ["prediction", "p_big", "p_small"]);
    assert_eq!(p.len(), 240);
    // The file holds what predict prints: class names and probabilities.
    let lines: Vec<&str> = csv_preds.lines().skip(1).collect();
    for (r, line) in lines.iter().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(p.cell_text(r, 0), cells[0]);
        let prob: f64 = cells[1].parse().unwrap();
        // Read back through f32 offsets: equal to f32 rounding.
        let back: f64 = p.cell_text(r, 1).parse().unwrap();
        assert!((back - prob).abs() <= 1e-6, "row {r}: {back} vs {prob}");
    }
}

/// `predict --stream --output x.parquet` (in chunks of 1 KiB of the CSV:
/// many chunks and row groups of predictions) writes the file the in-memory
/// command writes: the same columns and every cell the same, for a
/// classifier (class names and probabilities) and a regression model.
#[test]
fn streamed_parquet_predictions_equal_the_in_memory_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.csv"), csv()).unwrap();
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", "t.csv", "--epochs", "3", "--out", out, "--quiet"];
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    train("c.safetensors", &[]);
    train("r.safetensors", &["--target", "x2"]);
    for (model, columns) in [("c.safetensors", 3), ("r.safetensors", 1)] {
        let predict = |out: &str, stream: bool| {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"));
            c.args(["predict", "--model", model, "--data", "t.csv", "--output", out])
                .current_dir(d)
                .env("BPNET_STREAM_CHUNK", "1K");
            if stream {
                c.arg("--stream");
            }
            let o = c.output().unwrap();
            assert!(o.status.success(), "{model}: {}", String::from_utf8_lossy(&o.stderr));
            (
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        let (mem, streamed) = (format!("m-{model}.parquet"), format!("s-{model}.parquet"));
        predict(&mem, false);
        let (stdout, stderr) = predict(&streamed, true);
        assert!(stderr.contains("note: streaming"), "{stderr}");
        assert!(
            stdout.contains(&format!("wrote 240 predictions to {streamed}")),
            "{stdout}"
        );
        let m = bpnet::data::read_data(&d.join(&mem), &Default::default(), None).unwrap();
        let s = bpnet::data::read_data(&d.join(&streamed), &Default::default(), None).unwrap();
        assert_eq!(m.columns.len(), columns);
        assert_eq!(m.columns, s.columns);
        assert_eq!((m.len(), s.len()), (240, 240));
        for r in 0..240 {
            for c in 0..columns {
                assert_eq!(m.cell_text(r, c), s.cell_text(r, c), "{model}: row {r}, column {c}");
            }
        }
    }
}

/// [`csv`] as an Arrow IPC file of record batches of 80 rows.
fn write_arrow(path: &std::path::Path) {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use std::sync::Arc;
    let text = csv();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("x1", DataType::Float64, false),
        Field::new("x2", DataType::Float64, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let mut w = arrow_ipc::writer::FileWriter::try_new(std::fs::File::create(path).unwrap(), &schema).unwrap();
    for part in rows.chunks(80) {
        let num = |c: usize| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(
                part.iter().map(|r| r[c].parse::<f64>().unwrap()),
            ))
        };
        let txt = |c: usize| -> ArrayRef { Arc::new(StringArray::from_iter_values(part.iter().map(|r| r[c]))) };
        let batch = RecordBatch::try_new(schema.clone(), vec![num(0), num(1), txt(2), txt(3)]).unwrap();
        w.write(&batch).unwrap();
    }
    w.finish().unwrap();
}

/// An Arrow IPC file streams record batch by record batch: `predict` and
/// `eval --stream` print what the in-memory commands print, and training
/// streams it.
#[test]
fn an_arrow_file_streams_like_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_arrow(&d.join("t.arrow"));
    ok(
        d,
        &[
            "train",
            "--data",
            "t.arrow",
            "--epochs",
            "3",
            "--out",
            "a.safetensors",
            "--quiet",
        ],
    );
    let run = |args: &[&str]| {
        let o = common::run_in(d, args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let predict = ["predict", "--model", "a.safetensors", "--data", "t.arrow"];
    let (mem, _) = run(&predict);
    let (streamed, note) = run(&[&predict[..], &["--stream"]].concat());
    assert!(note.contains("note: streaming t.arrow"), "{note}");
    assert_eq!(mem.lines().count(), 241);
    assert_eq!(mem, streamed);
    let eval = ["eval", "--model", "a.safetensors", "--data", "t.arrow", "--json"];
    assert_eq!(run(&eval).0, run(&[&eval[..], &["--stream"]].concat()).0);
    let (out, err) = run(&[
        "train",
        "--data",
        "t.arrow",
        "--stream",
        "--epochs",
        "2",
        "--out",
        "s.safetensors",
    ]);
    assert!((out.clone() + &err).contains("streaming t.arrow"), "{out}{err}");
}

/// A Parquet file whose numbers would not fit in the memory allowed
/// (`BPNET_MEMORY`) is refused in memory before anything is allocated for
/// them, with one line that names the file and the sizes and points to
/// `--stream`.
#[test]
fn a_parquet_file_beyond_the_memory_allowed_is_a_one_line_error_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = bpnet::data::table::csv_to_parquet(&csv(), &d.join("t.parquet")).unwrap();
    std::fs::write(d.join("t.parquet"), bytes).unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(args)
            .current_dir(d)
            .env("BPNET_MEMORY", "1K")
            .output()
            .unwrap()
    };
    let out = run(&[
        "train",
        "--data",
        "t.parquet",
        "--no-stream",
        "--epochs",
        "1",
        "--quiet",
    ]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("t.parquet") && e.contains("metadata says 240 rows") && e.contains("--stream"),
        "{e}"
    );
    assert!(!d.join("model.safetensors").exists());
}

/// Files without a column (a schema with no fields; one of them with record
/// batches claiming 562,949,953,421,512 rows, found by the fuzzer) are a
/// one-line error for `train` (in memory and streamed), `eval` and
/// `predict`: no panic, no abort, no output file.
#[test]
fn files_without_columns_are_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bpnet/tests/fixtures/damaged");
    std::fs::write(d.join("t.csv"), csv()).unwrap();
    ok(
        d,
        &[
            "train",
            "--data",
            "t.csv",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            "m.safetensors",
        ],
    );
    for name in ["no_columns.arrow", "no_columns_huge_rows.arrow"] {
        let file = fixtures.join(name);
        let file = file.to_str().unwrap();
        for args in [
            vec!["train", "--data", file, "--quiet", "--out", "x.safetensors"],
            vec!["train", "--data", file, "--stream", "--quiet", "--out", "x.safetensors"],
            vec!["eval", "--model", "m.safetensors", "--data", file],
            vec![
                "predict",
                "--model",
                "m.safetensors",
                "--data",
                file,
                "--output",
                "p.csv",
            ],
        ] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
                .args(&args)
                .current_dir(d)
                .output()
                .unwrap();
            let e = String::from_utf8_lossy(&out.stderr);
            assert!(matches!(out.status.code(), Some(1 | 2)), "{args:?}: {e}");
            assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
            assert!(e.contains(name) && !e.contains("panicked"), "{args:?}: {e}");
        }
        assert!(!d.join("x.safetensors").exists() && !d.join("p.csv").exists());
    }
}

/// A column the model needs and a Parquet or Arrow file lacks is named
/// with the file's columns, in memory as streamed (in memory it listed
/// none: only the wanted columns had been read).
#[test]
fn a_missing_column_lists_the_columnar_files_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_extra: String = csv()
        .lines()
        .enumerate()
        .map(|(i, l)| match l.rsplit_once(',') {
            Some((head, label)) if i == 0 => format!("{head},extra,{label}\n"),
            Some((head, label)) => format!("{head},{},{label}\n", i % 7),
            None => String::new(),
        })
        .collect();
    std::fs::write(d.join("extra.csv"), with_extra).unwrap();
    ok(
        d,
        &[
            "train",
            "--data",
            "extra.csv",
            "--target",
            "label",
            "--epochs",
            "2",
            "--ensemble",
            "1",
            "--quiet",
        ],
    );
    write_arrow(&d.join("data.arrow"));
    ok(
        d,
        &[
            "predict",
            "--model",
            "model.safetensors",
            "--data",
            "extra.csv",
            "--output",
            "p.parquet",
        ],
    );
    for (file, columns) in [
        ("data.arrow", "'x1', 'x2', 'kind', 'label'"),
        ("p.parquet", "'prediction', 'p_big', 'p_small'"),
    ] {
        for stream in ["--no-stream", "--stream"] {
            for cmd in ["predict", "eval"] {
                let out = common::run_in(d, &[cmd, "--model", "model.safetensors", "--data", file, stream]);
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(!out.status.success(), "{cmd} {file} {stream}");
                let last = err.trim_end().lines().last().unwrap_or("");
                assert!(
                    last.ends_with(&format!("missing; the file's columns are {columns}")),
                    "{cmd} {file} {stream}: {err}"
                );
            }
        }
    }
}

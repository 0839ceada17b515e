//! How a CSV given to a model is read: a row's values, and so its
//! prediction, depend on that row alone (not on the other rows of the
//! file, in memory or streamed); and the header: detected, or given by
//! `--header` / `--no-header`.

mod common;
use common::{ROOT, ok};
use std::path::Path;

/// Row 1 predicted alone and with each of `others` after it, from files
/// of extension `ext` (`csv`, or `parquet` written from the CSV).
fn first_row_alone_and_with(d: &Path, (model, ext): (&str, &str), header: &str, rows: (&str, &[&str]), extra: &[&str]) {
    let (first, others) = rows;
    let write = |name: &str, rows: &[&str]| {
        let text = format!("{header}\n{}\n", rows.join("\n"));
        let path = d.join(format!("{name}.{ext}"));
        #[cfg(feature = "columnar")]
        if ext == "parquet" {
            std::fs::write(&path, bpnet::data::table::csv_to_parquet(&text, &path).unwrap()).unwrap();
            return;
        }
        std::fs::write(path, text).unwrap();
    };
    write("alone", &[first]);
    let predict = |name: &str| {
        let file = format!("{name}.{ext}");
        let out = ok(
            d,
            &[&["predict", "--model", model, "--data", &file][..], extra].concat(),
        );
        out.lines().nth(1).unwrap().to_string()
    };
    let alone = predict("alone");
    for other in others {
        write("two", &[first, other]);
        assert_eq!(
            predict("two"),
            alone,
            "{model} {ext} {extra:?}: with {other:?} after it"
        );
        write("three", &[first, other, other]);
        assert_eq!(
            predict("three"),
            alone,
            "{model} {ext} {extra:?}: with two {other:?} after it"
        );
    }
}

/// A numeric cell is stored as an offset from its column's shift; the
/// shift of a file read against a model is the model's, so a huge value in
/// another row (1e12 put a 2-row file's shift near 5e11, and the first
/// row's 0.2 moved by about 2,000: setosa became versicolor) changes
/// nothing, in memory or streamed, from CSV or Parquet.
#[test]
fn a_rows_prediction_does_not_depend_on_the_other_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = format!("{ROOT}/data/iris.csv");
    let diabetes = format!("{ROOT}/data/diabetes.csv");
    let quick = ["--epochs", "3", "--ensemble", "1", "--quiet"];
    ok(
        d,
        &[
            &[
                "train",
                "--data",
                &iris,
                "--target",
                "species",
                "--out",
                "iris.safetensors",
            ][..],
            &quick,
        ]
        .concat(),
    );
    ok(
        d,
        &[&["train", "--data", &diabetes, "--out", "dia.safetensors"][..], &quick].concat(),
    );
    let iris_header = "sepal_length,sepal_width,petal_length,petal_width";
    let outliers = ["5.1,3.5,1.4,1e12", "1e9,-1e9,1e12,1e-12", "5.9,3.0,5.1,1.8"];
    let dia_header = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6";
    let dia_first = "59,2,32.1,101.0,157,93.2,38.0,4.0,4.8598,87";
    let dia_others = ["59,2,32.1,101.0,1e8,93.2,38.0,4.0,4.8598,87", "1e12,1,1,1,1,1,1,1,1,1"];
    let formats: &[&str] = if cfg!(feature = "columnar") {
        &["csv", "parquet"]
    } else {
        &["csv"]
    };
    for ext in formats {
        for extra in [&[][..], &["--stream"][..]] {
            let iris_rows = ("5.1,3.5,1.4,0.2", &outliers[..]);
            first_row_alone_and_with(d, ("iris.safetensors", ext), iris_header, iris_rows, extra);
            first_row_alone_and_with(d, ("dia.safetensors", ext), dia_header, (dia_first, &dia_others), extra);
        }
    }
}

/// The same row gives the same printed prediction alone, among 9 and 14
/// rows, and as the 1,025th row of a file (run in groups of 1,024: a group
/// of one), in memory and streamed, for the default iris network and an
/// ensemble, on every CPU: a call of 1-7 rows took the one-row kernel,
/// whose sums run in another order, and printed other last digits (14 of
/// 300 rows predicted one file each differed at 6 decimals); without
/// AVX-512 the GEMM library's small-matrix kernel took up to 13 rows and
/// its blocked kernel 14 or more (`0.06311246` against `0.063112475`).
#[test]
fn a_row_alone_and_in_any_group_prints_the_same_prediction() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = format!("{ROOT}/data/iris.csv");
    let text = std::fs::read_to_string(&iris).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[0].rsplit_once(',').unwrap().0;
    let rows: Vec<&str> = lines[1..].iter().map(|l| l.rsplit_once(',').unwrap().0).collect();
    let write =
        |name: &str, rows: &[&str]| std::fs::write(d.join(name), format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    let mut many: Vec<&str> = (0..1024).map(|i| rows[(i * 7) % rows.len()]).collect();
    for (ensemble, model) in [("1", "one.safetensors"), ("3", "three.safetensors")] {
        let train = [
            "train",
            "--data",
            &iris,
            "--epochs",
            "3",
            "--ensemble",
            ensemble,
            "--quiet",
            "--out",
            model,
        ];
        ok(d, &train);
        for (k, row) in rows.iter().enumerate().step_by(13) {
            write("alone.csv", &[row]);
            let nine: Vec<&str> = std::iter::once(*row).chain(rows[..8].iter().copied()).collect();
            write("nine.csv", &nine);
            let fourteen: Vec<&str> = std::iter::once(*row).chain(rows[..13].iter().copied()).collect();
            write("fourteen.csv", &fourteen);
            many.truncate(1024);
            many.push(row);
            write("many.csv", &many);
            for extra in [&[][..], &["--stream"][..]] {
                let predict = |file: &str| {
                    let out = ok(d, &[&["predict", "--model", model, "--data", file][..], extra].concat());
                    out.lines().skip(1).map(str::to_string).collect::<Vec<_>>()
                };
                let alone = predict("alone.csv")[0].clone();
                assert_eq!(predict("nine.csv")[0], alone, "{model} row {k} {extra:?}: among 9");
                assert_eq!(predict("fourteen.csv")[0], alone, "{model} row {k} {extra:?}: among 14");
                assert_eq!(predict("many.csv")[1024], alone, "{model} row {k} {extra:?}: row 1,025");
            }
        }
    }
}

/// A header naming a column `2020` holds a number, so detection reads it
/// as data, with a note that says so; `--header` reads it as the header.
#[test]
fn a_header_with_a_number_is_detected_as_data_with_a_note_and_header_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("color,2020,label\n");
    for i in 0..30 {
        let colour = ["red", "blue"][i % 2];
        csv += &format!("{colour},{:.3},{}\n", (i as f64 * 0.37).sin(), ["yes", "no"][i % 3 % 2]);
    }
    std::fs::write(d.join("h.csv"), csv).unwrap();
    let common = ["train", "--data", "h.csv", "--epochs", "1", "--ensemble", "1"];
    let out = ok(d, &[&common[..], &["--out", "a.safetensors"]].concat());
    assert!(
        out.contains("note: the first line of h.csv (color,2020,label) was read as data") && out.contains("--header"),
        "{out}"
    );
    let out = ok(
        d,
        &[
            &common[..],
            &["--header", "--target", "label", "--out", "b.safetensors"],
        ]
        .concat(),
    );
    assert!(!out.contains("was read as data"), "{out}");
    assert!(out.contains("'label'"), "{out}");
    let inspect = ok(d, &["inspect", "b.safetensors", "--json"]);
    assert!(
        inspect.contains("\"2020\""),
        "the column named 2020 is a feature: {inspect}"
    );
    // --header overrides a config file's no_header (both flags together are refused).
    std::fs::write(d.join("c.toml"), "no_header = true\n").unwrap();
    ok(
        d,
        &[
            &common[..],
            &[
                "--config",
                "c.toml",
                "--header",
                "--target",
                "label",
                "--out",
                "c.safetensors",
            ],
        ]
        .concat(),
    );
    // The target by name without --header: the error says why it is missing.
    let bad = common::run_in(d, &[&common[..], &["--target", "label"]].concat());
    let err = common::text(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("no column 'label'") && err.contains("--header"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// A `--test` file is read as `eval` reads it (the training file's header
/// and shifts): its metrics at training equal `eval`'s on the same file,
/// bit for bit, with a huge value in one of its rows. Diabetes: columns of
/// many distinct values, read as numbers (a column of few values is read
/// as text, exactly, whatever its shift).
#[test]
fn a_test_file_scores_at_training_as_eval_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let diabetes = std::fs::read_to_string(format!("{ROOT}/data/diabetes.csv")).unwrap();
    let mut test: Vec<&str> = diabetes.lines().take(80).collect();
    test.push("59,2,32.1,101.0,1e12,93.2,38.0,4.0,4.8598,87,151");
    std::fs::write(d.join("t.csv"), test.join("\n") + "\n").unwrap();
    let data = format!("{ROOT}/data/diabetes.csv");
    let args = [
        "train",
        "--data",
        &data,
        "--test",
        "t.csv",
        "--epochs",
        "3",
        "--ensemble",
        "1",
    ];
    let train = ok(
        d,
        &[&args[..], &["--quiet", "--json", "--out", "m.safetensors"]].concat(),
    );
    let eval = ok(d, &["eval", "--model", "m.safetensors", "--data", "t.csv", "--json"]);
    let (t, e) = (common::last_json(&train), common::last_json(&eval));
    // The huge row's error dwarfs the others' in the sums: compare R² and MAE.
    for key in ["r2", "mae", "rmse"] {
        let (tv, ev) = (&t["test"][key], &e["metrics"][key]);
        assert!(!tv.is_null() && tv == ev, "{key}: --test {tv}, eval {ev}");
    }
}

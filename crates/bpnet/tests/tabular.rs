//! Tabular data: the CSV reader and target handling here, feature encoding in
//! tabular/features.rs, the split and the bundled iris/wine/diabetes files in
//! tabular/split.rs. Fixtures are in tests/fixtures/csv/; expected numbers
//! are worked out in the comments.

use bpnet::data::preprocess::Targets;
use bpnet::data::{
    ColumnRef, CsvOptions, FeatureKind, Impute, PreprocessSpec, Preprocessor, RawTable, Scaling, Task, parse_csv,
    read_csv, split,
};
use bpnet::{Matrix, Result};
use std::path::PathBuf;

#[path = "tabular/features.rs"]
mod features;
#[path = "tabular/split.rs"]
mod split_and_data;
#[path = "tabular/take.rs"]
mod take;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csv")
        .join(name)
}

fn read(name: &str) -> RawTable {
    read_csv(&fixture(name), &CsvOptions::default()).unwrap()
}

fn all(t: &RawTable) -> Vec<usize> {
    (0..t.len()).collect()
}

/// Asserts that `r` failed with a message containing every part.
fn assert_err<T: std::fmt::Debug>(r: Result<T>, parts: &[&str]) {
    let msg = r.unwrap_err().to_string();
    for p in parts {
        assert!(msg.contains(p), "error {msg:?} lacks {p:?}");
    }
    assert!(!msg.contains('\n'), "error is not one line: {msg:?}");
}

fn spec(scaling: Scaling) -> PreprocessSpec {
    PreprocessSpec {
        scaling,
        ..PreprocessSpec::default()
    }
}

fn close(a: &[f32], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((*x as f64 - y).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}

// ---- reading ---------------------------------------------------------------

#[test]
fn bom_and_crlf_are_handled() {
    let t = read("bom_crlf.csv");
    assert!(t.has_header);
    assert_eq!(t.columns, ["a", "b", "label"]);
    assert_eq!(t.rows[0], ["1.5", "2", "x"]);
    assert_eq!(t.rows[2], ["5", "6", "x"]);
    assert_eq!(t.lines, [2, 3, 4]);
    let t = read("crlf_quoted.csv");
    assert_eq!(t.rows, [["x\r\ny", "1"], ["z", "2"]]);
    assert_eq!(t.lines, [2, 4]);
}

#[test]
fn blank_lines_are_skipped_and_counted() {
    let t = read("blank_lines.csv");
    assert_eq!(t.rows, [["1", "2"], ["3", "4"], ["5", "6"]]);
    assert_eq!(t.lines, [4, 6, 8]);
}

#[test]
fn quoted_fields_keep_delimiters_quotes_and_newlines_and_lines_stay_right() {
    let t = read("quoted.csv");
    assert_eq!(t.columns, ["name", "x", "note", "label"]);
    assert_eq!(t.rows[0][0], "Smith, J");
    assert_eq!(t.rows[0][2], "line one\nline two");
    assert_eq!(t.rows[1][0], "O\"Brien");
    assert_eq!(t.rows[2][2], "a;b");
    assert_eq!(t.rows[3][2], "");
    // The first record spans lines 2-3, so the next starts on line 4.
    assert_eq!(t.lines, [2, 4, 5, 6]);
    let err = Preprocessor::fit(&read("quoted_bad.csv"), &[0, 1], &spec(Scaling::None));
    assert_err(
        err,
        &["quoted_bad.csv", "line 4", "column 'x'", "'oops' is not a number"],
    );
}

#[test]
fn header_is_detected_or_columns_are_numbered() {
    let t = read("no_header.csv");
    assert!(!t.has_header);
    assert_eq!(t.columns, ["col0", "col1", "col2"]);
    assert_eq!(t.len(), 4);
    assert_eq!(t.lines, [1, 2, 3, 4]);
    let forced = read_csv(
        &fixture("string_features.csv"),
        &CsvOptions {
            header: Some(false),
            delimiter: b',',
            ..CsvOptions::default()
        },
    );
    let forced = forced.unwrap();
    assert_eq!(forced.rows[0], ["color", "size", "shape", "label"]);
    assert_eq!(forced.len(), 7);
    // All text: a header when its cells do not recur below.
    let t = read("all_text.csv");
    assert!(t.has_header);
    assert_eq!((t.columns.len(), t.len()), (3, 3));
    let t = read("all_text_no_header.csv");
    assert!(!t.has_header);
    assert_eq!(t.len(), 3);
}

#[test]
fn semicolon_delimiter() {
    let t = read_csv(
        &fixture("semicolon.csv"),
        &CsvOptions {
            header: None,
            delimiter: b';',
            ..CsvOptions::default()
        },
    )
    .unwrap();
    assert_eq!(t.columns, ["f1", "f2", "label"]);
    assert_eq!(t.rows[1], ["2.5", "3", "y"]);
    // Read with commas, it is one text column: fitting says what to check.
    let one = read("semicolon.csv");
    assert_eq!(one.n_cols(), 1);
    assert_err(
        Preprocessor::fit(&one, &all(&one), &PreprocessSpec::default()),
        &["delimiter"],
    );
}

#[test]
fn malformed_files_are_clear_errors() {
    let opts = CsvOptions::default();
    assert_err(
        read_csv(&fixture("ragged.csv"), &opts),
        &["ragged.csv", "line 4", "expected 3", "found 2"],
    );
    assert_err(
        read_csv(&fixture("header_only.csv"), &opts),
        &["header_only.csv", "line 1", "no data rows"],
    );
    assert_err(read_csv(&fixture("empty.csv"), &opts), &["empty.csv", "empty file"]);
    assert_err(
        read_csv(&fixture("invalid_utf8.csv"), &opts),
        &["invalid_utf8.csv", "line 3", "column 'b'", "UTF-8"],
    );
    // Inside a quoted field that spans lines 2-3, the bad byte is on line 3.
    let err = read_csv(&fixture("invalid_utf8_multiline.csv"), &opts);
    assert_err(err, &["line 3", "column 'a'", "0xff"]);
    assert_err(
        read_csv(&fixture("duplicate_header.csv"), &opts),
        &["line 1", "column 'x'", "duplicate"],
    );
    assert_err(read_csv(&fixture("no_such_file.csv"), &opts), &["no_such_file.csv"]);
}

// ---- columns, task and targets ---------------------------------------------

#[test]
fn column_refs_parse_and_resolve() {
    let t = read("regress.csv");
    assert_eq!("2".parse::<ColumnRef>().unwrap(), ColumnRef::Index(2));
    assert_eq!("y1".parse::<ColumnRef>().unwrap(), ColumnRef::Name("y1".into()));
    assert_eq!(ColumnRef::Name("y2".into()).resolve(&t).unwrap(), 3);
    assert_err(
        ColumnRef::Name("nope".into()).resolve(&t),
        &["regress.csv", "'nope'", "'x1', 'x2', 'y1', 'y2'"],
    );
    assert_err(ColumnRef::Index(9).resolve(&t), &["index 9", "4 columns"]);
}

#[test]
fn task_detection_and_its_note() {
    let t = read("string_features.csv");
    let (p, notes) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.task(), Task::Classify);
    assert!(notes.contains(&"task: classify (target 'label' has 3 distinct string values)".to_string()));
    assert!(notes.iter().any(|n| n.contains("last column 'label'")), "{notes:?}");

    let t = read("int_labels.csv");
    let (p, notes) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.task(), Task::Classify);
    assert!(
        notes.iter().any(|n| n.contains("3 distinct integer values")),
        "{notes:?}"
    );

    let t = read("regress.csv");
    let s = PreprocessSpec {
        targets: vec!["y1".parse().unwrap()],
        ..PreprocessSpec::default()
    };
    let (p, notes) = Preprocessor::fit(&t, &all(&t), &s).unwrap();
    assert_eq!(p.task(), Task::Regress);
    assert!(
        notes
            .iter()
            .any(|n| n == "task: regress (target 'y1' has 5 distinct numeric values)"),
        "{notes:?}"
    );

    // 0/0/1/1 on four rows: two integer values, two rows each -> classes.
    let t = read("scale.csv");
    let (p, _) = Preprocessor::fit(&t, &[0, 1, 2, 3], &PreprocessSpec::default()).unwrap();
    assert_eq!(p.task(), Task::Classify);
    assert_eq!(p.class_names().unwrap(), ["0", "1"]);
}

#[test]
fn class_names_sorted_numerically_or_lexicographically() {
    let t = read("int_labels.csv");
    let (p, _) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["1", "2", "10"]);
    assert_eq!(
        p.transform_targets(&t, &all(&t)).unwrap(),
        Targets::Labels(vec![2, 1, 0, 2, 1, 0])
    );
    let t = read("string_features.csv");
    let (p, _) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["bird", "cat", "dog"]);
    assert_eq!(p.n_outputs(), 3);
    let err = p.transform_targets(&read("unseen_class.csv"), &[0, 1]);
    assert_err(err, &["unseen_class.csv", "line 3", "column 'label'", "class 'fish'"]);
}

#[test]
fn numeric_classes_match_by_value_and_names_resolve_together() {
    let parse = |text: &str| parse_csv(text.as_bytes(), "t.csv".as_ref(), &CsvOptions::default()).unwrap();
    let t = parse("x,y\n1,0\n2,10\n3,2\n4,0\n5,10\n6,2\n");
    let (p, _) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["0", "2", "10"]);
    // Written differently, the same values: -0 is 0, 1e1 is 10.
    let other = parse("x,y\n1,-0\n2,1e1\n3,2.0\n");
    assert_eq!(
        p.transform_targets(&other, &all(&other)).unwrap(),
        Targets::Labels(vec![0, 2, 1])
    );
    assert_err(
        p.transform_targets(&parse("x,y\n1,3\n"), &[0]),
        &["t.csv", "class '3'", "'0', '2', '10'"],
    );
    let refs = [
        ColumnRef::Name("y".into()),
        ColumnRef::Index(0),
        ColumnRef::Name("x".into()),
    ];
    assert_eq!(ColumnRef::resolve_all(&refs, &t).unwrap(), [1, 0, 0]);
    assert_err(
        ColumnRef::resolve_all(&[ColumnRef::Name("z".into())], &t),
        &["no column 'z'", "'x', 'y'"],
    );
    assert_err(
        parse_csv(b"a,b,c,b,a\n1,2,3,4,5\n", "d.csv".as_ref(), &CsvOptions::default()),
        &["d.csv", "line 1", "column 'b': duplicate column name (columns 2 and 4)"],
    );
}

#[test]
fn several_targets_only_for_regression_and_decode_round_trips() {
    let t = read("regress.csv");
    let targets = vec!["y1".parse().unwrap(), "3".parse().unwrap()];
    let s = PreprocessSpec {
        targets: targets.clone(),
        ..PreprocessSpec::default()
    };
    let (p, notes) = Preprocessor::fit(&t, &all(&t), &s).unwrap();
    assert_eq!(p.task(), Task::Regress);
    assert!(
        notes.iter().any(|n| n.contains("2 target columns 'y1', 'y2'")),
        "{notes:?}"
    );
    assert_eq!((p.n_features(), p.n_outputs()), (2, 2));
    let Targets::Values(v) = p.transform_targets(&t, &all(&t)).unwrap() else {
        panic!("values expected")
    };
    // y1 = 1.5, 2.5, 4, 3.5, 6.25: mean 3.55; squared deviations sum to 12.8,
    // population std sqrt(12.8 / 5) = 1.6 -> first (1.5 - 3.55) / 1.6 = -1.28125.
    assert!((v.get(0, 0) + 1.28125).abs() < 1e-6, "{}", v.get(0, 0));
    let back = p.decode_targets(&v);
    let want = [1.5, -3.0, 2.5, -1.0, 4.0, 0.5, 3.5, 2.0, 6.25, 4.0];
    for (a, b) in back.as_slice().iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{:?}", back.as_slice());
    }
    let s = PreprocessSpec {
        targets,
        task: Some(Task::Classify),
        ..PreprocessSpec::default()
    };
    assert_err(Preprocessor::fit(&t, &all(&t), &s), &["classification", "one target"]);
}

//! Tabular data: the CSV reader, preprocessing fitted on training rows, the
//! stratified split, and the bundled iris/wine/diabetes files. Fixtures are
//! in tests/fixtures/csv/; expected numbers are worked out in the comments.

use bpnet::data::preprocess::Targets;
use bpnet::data::{
    ColumnRef, CsvOptions, FeatureKind, Impute, PreprocessSpec, Preprocessor, RawTable, Scaling, Task, read_csv, split,
};
use bpnet::{Matrix, Result};
use std::path::PathBuf;

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
        },
    );
    let forced = forced.unwrap();
    assert_eq!(forced.rows[0], ["color", "size", "shape", "label"]);
    assert_eq!(forced.len(), 7);
}

#[test]
fn semicolon_delimiter() {
    let t = read_csv(
        &fixture("semicolon.csv"),
        &CsvOptions {
            header: None,
            delimiter: b';',
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
        &["invalid_utf8.csv", "line 3", "column 2", "UTF-8"],
    );
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

// ---- features ----------------------------------------------------------------

#[test]
fn one_hot_widths_and_values() {
    let t = read("string_features.csv");
    let (p, notes) = Preprocessor::fit(&t, &all(&t), &spec(Scaling::None)).unwrap();
    // color {blue, green, red} + size + shape {circle, square}.
    assert_eq!(p.n_features(), 6);
    assert_eq!(
        p.feature_names(),
        [
            "color=blue",
            "color=green",
            "color=red",
            "size",
            "shape=circle",
            "shape=square"
        ]
    );
    assert!(
        notes.iter().any(|n| n.contains("'color': categorical, one-hot over 3")),
        "{notes:?}"
    );
    let x = p.transform_features(&t, &[0, 1]).unwrap();
    assert_eq!(x.shape(), [2, 6]);
    assert_eq!(x.row(0), [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    assert_eq!(x.row(1), [0.0, 1.0, 0.0, 2.0, 0.0, 1.0]);
    let err = p.transform_features(&read("unseen.csv"), &[0, 1]);
    assert_err(
        err,
        &["unseen.csv", "line 3", "column 'color'", "'purple' was not seen"],
    );
}

#[test]
fn zscore_and_minmax_on_a_hand_computed_example() {
    let t = read("scale.csv");
    let train = [0, 1, 2, 3]; // x = 1, 2, 3, 4; row 4 (x = 100) is held out
    let (z, _) = Preprocessor::fit(&t, &train, &spec(Scaling::ZScore)).unwrap();
    // mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
    let s = 1.25f64.sqrt();
    let x = z.transform_features(&t, &all(&t)).unwrap();
    let col0: Vec<f32> = (0..5).map(|r| x.get(r, 0)).collect();
    close(&col0, &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s, 97.5 / s]);
    // The constant column c gets scale 1: all zeros, no NaN.
    assert!((0..5).all(|r| x.get(r, 1) == 0.0));
    match &z.features()[0].kind {
        FeatureKind::Numeric { center, scale, .. } => assert_eq!((*center, *scale), (2.5, s)),
        k => panic!("{k:?}"),
    }
    // mapminmax: center (1 + 4) / 2, half-range 1.5 -> [-1, 1] on the training rows.
    let (m, _) = Preprocessor::fit(&t, &train, &spec(Scaling::MinMax)).unwrap();
    let x = m.transform_features(&t, &all(&t)).unwrap();
    let col0: Vec<f32> = (0..5).map(|r| x.get(r, 0)).collect();
    close(&col0, &[-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0, 65.0]);
}

#[test]
fn scaling_is_fitted_on_the_training_rows_only() {
    let t = read("scale.csv");
    let mut changed = t.clone();
    changed.rows[4][0] = "-5000".into(); // the held-out row's extreme value
    let (a, _) = Preprocessor::fit(&t, &[0, 1, 2, 3], &PreprocessSpec::default()).unwrap();
    let (b, _) = Preprocessor::fit(&changed, &[0, 1, 2, 3], &PreprocessSpec::default()).unwrap();
    assert_eq!(a, b);
    let (c, _) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    assert_ne!(a, c, "including row 4 must change the fit");
}

#[test]
fn impute_mean_and_median() {
    let t = read("missing.csv");
    // x present: 1, 3, 5, 11 -> mean 5, median 4; y present: 10, 20, 100, 30 -> mean 40, median 25.
    let fit = |impute| {
        let s = PreprocessSpec {
            impute: Some(impute),
            scaling: Scaling::None,
            ..PreprocessSpec::default()
        };
        let (p, notes) = Preprocessor::fit(&t, &all(&t), &s).unwrap();
        (p.transform_features(&t, &all(&t)).unwrap(), notes)
    };
    let (x, notes) = fit(Impute::Mean);
    assert_eq!(
        x.as_slice(),
        [1.0, 10.0, 5.0, 20.0, 3.0, 40.0, 5.0, 100.0, 5.0, 40.0, 11.0, 30.0]
    );
    assert!(
        notes.iter().any(|n| n.contains("2 missing cells of 'x' filled with 5")),
        "{notes:?}"
    );
    let (x, _) = fit(Impute::Median);
    assert_eq!(
        x.as_slice(),
        [1.0, 10.0, 4.0, 20.0, 3.0, 25.0, 4.0, 100.0, 5.0, 25.0, 11.0, 30.0]
    );
    // Without imputation the first missing cell is an error.
    let err = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default());
    assert_err(
        err,
        &["missing.csv", "line 3", "column 'x'", "missing value", "--impute"],
    );
    // Imputing fills from the training rows only: rows 0, 2 have x = 1, 3.
    let s = PreprocessSpec {
        impute: Some(Impute::Mean),
        scaling: Scaling::None,
        ..PreprocessSpec::default()
    };
    let (p, _) = Preprocessor::fit(&t, &[0, 1, 2, 5], &s).unwrap();
    assert_eq!(p.transform_features(&t, &[3]).unwrap().as_slice(), [5.0, 100.0]);
}

#[test]
fn bad_numbers_name_file_line_and_column() {
    let t = read("bad_values.csv");
    let s = PreprocessSpec::default();
    assert_err(
        Preprocessor::fit(&t, &[0, 1], &s),
        &["bad_values.csv", "line 3", "column 'y'", "infinite"],
    );
    assert_err(
        Preprocessor::fit(&t, &[0, 2], &s),
        &["bad_values.csv", "line 4", "column 'y'", "1e30"],
    );
    assert_err(
        Preprocessor::fit(&t, &[0, 3], &s),
        &["bad_values.csv", "line 5", "column 'y'", "not a number"],
    );
    // Fitted on a clean row, the same cells fail in transform.
    let s = PreprocessSpec {
        targets: vec!["x".parse().unwrap()],
        ignore: vec!["label".parse().unwrap()],
        task: Some(Task::Regress),
        ..PreprocessSpec::default()
    };
    let (p, _) = Preprocessor::fit(&t, &[0], &s).unwrap();
    assert_eq!(p.feature_names(), ["y"]);
    assert_err(
        p.transform_features(&t, &[0, 1]),
        &["bad_values.csv", "line 3", "column 'y'", "infinite"],
    );
    assert_err(p.transform_features(&t, &[3]), &["line 5", "column 'y'", "'hello'"]);
}

// ---- other files -------------------------------------------------------------

#[test]
fn eval_and_predict_files_match_columns_by_name_or_position() {
    let t = read("string_features.csv");
    let (p, _) = Preprocessor::fit(&t, &all(&t), &spec(Scaling::None)).unwrap();
    // Reordered columns, no target: matched by name.
    let x = p.transform_features(&read("predict_reordered.csv"), &[0, 1]).unwrap();
    assert_eq!(x.row(0), [1.0, 0.0, 0.0, 7.0, 0.0, 1.0]);
    assert_eq!(x.row(1), [0.0, 0.0, 1.0, 0.5, 1.0, 0.0]);
    // A feature column missing from the header.
    let err = p.transform_features(&read("regress.csv"), &[0]);
    assert_err(err, &["regress.csv", "line 1", "column 'color'", "missing"]);
    // The target is required for transform_targets only.
    let err = p.transform_targets(&read("predict_reordered.csv"), &[0]);
    assert_err(err, &["predict_reordered.csv", "column 'label'", "missing"]);

    // Headerless: by position, with or without the target column.
    let t = read("no_header.csv");
    let (p, _) = Preprocessor::fit(&t, &all(&t), &spec(Scaling::None)).unwrap();
    let x = p.transform_features(&read("no_header_predict.csv"), &[0, 1]).unwrap();
    assert_eq!(x.as_slice(), [5.0, 9.0, 6.0, 11.0]);
    assert_eq!(p.transform_features(&t, &[1]).unwrap().as_slice(), [2.0, 3.0]);
    let err = p.transform_features(&read("one_column.csv"), &[0]);
    assert_err(err, &["one_column.csv", "line 1", "1 columns", "trained on 3"]);
}

#[test]
fn preprocessor_survives_json_and_describes_itself() {
    let t = read("string_features.csv");
    let (p, _) = Preprocessor::fit(&t, &all(&t), &PreprocessSpec::default()).unwrap();
    let json = serde_json::to_string(&p).unwrap();
    let q: Preprocessor = serde_json::from_str(&json).unwrap();
    assert_eq!(p, q);
    assert_eq!(
        p.transform_features(&t, &all(&t)).unwrap(),
        q.transform_features(&t, &all(&t)).unwrap()
    );
    let d = p.describe();
    assert!(d.contains("task: classify"), "{d}");
    assert!(d.contains("3 classes: bird, cat, dog"), "{d}");
    assert!(d.contains("categorical 'color': 3 categories"), "{d}");
    assert!(d.contains("-> 6 features"), "{d}");
    assert!(d.lines().count() <= 6, "{d}");
}

#[test]
fn option_names_parse() {
    assert_eq!("minmax".parse::<Scaling>().unwrap(), Scaling::MinMax);
    assert_eq!("Z-Score".parse::<Scaling>().unwrap(), Scaling::ZScore);
    assert_eq!("median".parse::<Impute>().unwrap(), Impute::Median);
    assert_eq!("regression".parse::<Task>().unwrap(), Task::Regress);
    assert!(
        "sideways"
            .parse::<Scaling>()
            .unwrap_err()
            .to_string()
            .contains("zscore")
    );
}

// ---- split -------------------------------------------------------------------

fn strata(counts: &[(&str, usize)]) -> Vec<String> {
    counts
        .iter()
        .flat_map(|(k, n)| std::iter::repeat_n(k.to_string(), *n))
        .collect()
}

#[test]
fn stratified_split_keeps_class_proportions() {
    let s = strata(&[("a", 60), ("b", 30), ("c", 10), ("d", 2), ("e", 1)]);
    let (kept, held) = split(s.len(), Some(&s), 0.2, 7).unwrap();
    let count = |rows: &[usize], k: &str| rows.iter().filter(|&&r| s[r] == k).count();
    let held_counts: Vec<usize> = ["a", "b", "c", "d", "e"].iter().map(|k| count(&held, k)).collect();
    // round(0.2 n), at least one for a class of two, none for a singleton.
    assert_eq!(held_counts, [12, 6, 2, 1, 0]);
    assert_eq!(kept.len() + held.len(), s.len());
    let mut both: Vec<usize> = kept.iter().chain(&held).copied().collect();
    both.sort();
    assert_eq!(both, (0..s.len()).collect::<Vec<_>>());
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn split_is_deterministic_in_the_seed() {
    let s = strata(&[("a", 50), ("b", 50)]);
    let a = split(100, Some(&s), 0.3, 1).unwrap();
    assert_eq!(a, split(100, Some(&s), 0.3, 1).unwrap());
    assert_ne!(a, split(100, Some(&s), 0.3, 2).unwrap());
    let (kept, held) = split(10, None, 0.3, 5).unwrap();
    assert_eq!((kept.len(), held.len()), (7, 3));
    assert_eq!(split(10, None, 0.3, 5).unwrap().1, held);
}

#[test]
fn split_rejects_bad_fractions() {
    for f in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
        assert_err(split(10, None, f, 0), &["between 0 and 1"]);
    }
    assert_err(split(3, None, 0.1, 0), &["0 held out"]);
    assert_err(split(1, None, 0.5, 0), &["at least one"]);
    let s = strata(&[("a", 1), ("b", 1)]);
    assert_err(split(2, Some(&s), 0.5, 0), &["0 held out"]);
    assert_err(split(3, Some(&s), 0.5, 0), &["split strata"]);
}

// ---- bundled datasets --------------------------------------------------------

fn dataset(name: &str) -> RawTable {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data").join(name);
    read_csv(&path, &CsvOptions::default()).unwrap()
}

#[test]
fn iris_and_wine_are_three_class_problems() {
    let iris = dataset("iris.csv");
    assert_eq!((iris.len(), iris.n_cols()), (150, 5));
    let species = iris.column_cells(4, &all(&iris));
    let (train, test) = split(iris.len(), Some(&species), 0.2, 42).unwrap();
    assert_eq!((train.len(), test.len()), (120, 30));
    let (p, notes) = Preprocessor::fit(&iris, &train, &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["setosa", "versicolor", "virginica"]);
    assert!(
        notes.iter().any(|n| n.contains("3 distinct string values")),
        "{notes:?}"
    );
    let x: Matrix<f32> = p.transform_features(&iris, &train).unwrap();
    assert_eq!(x.shape(), [120, 4]);
    let mean0 = (0..120).map(|r| x.get(r, 0) as f64).sum::<f64>() / 120.0;
    assert!(mean0.abs() < 1e-5, "training features are centered: {mean0}");

    let wine = dataset("wine.csv");
    assert_eq!((wine.len(), wine.n_cols()), (178, 14));
    let (p, _) = Preprocessor::fit(&wine, &all(&wine), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["class_0", "class_1", "class_2"]);
    assert_eq!(p.n_features(), 13);
}

#[test]
fn diabetes_is_detected_as_regression() {
    let d = dataset("diabetes.csv");
    assert_eq!((d.len(), d.n_cols()), (442, 11));
    let (p, notes) = Preprocessor::fit(&d, &all(&d), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.task(), Task::Regress);
    assert!(
        notes.iter().any(|n| n.contains("task: regress (target 'progression'")),
        "{notes:?}"
    );
    let Targets::Values(v) = p.transform_targets(&d, &[0]).unwrap() else {
        panic!("values expected")
    };
    assert!((p.decode_targets(&v).get(0, 0) - 151.0).abs() < 1e-3);
}

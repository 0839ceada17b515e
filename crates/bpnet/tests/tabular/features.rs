//! Feature encoding: one-hot, scaling fitted on training rows, imputation,
//! bad values, other files' columns, and the model-file round trip.

use super::*;

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
    // The fitted statistics; how the file held its columns (`read_as`: the
    // shifts its first rows chose, held-out rows included) is the file's.
    let fitted = |p: &Preprocessor| {
        let mut v = serde_json::to_value(p).unwrap();
        v.as_object_mut().unwrap().remove("read_as");
        v
    };
    assert_eq!(fitted(&a), fitted(&b));
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
    assert_eq!(q.check_consistent(), Ok(()));
    // Categories out of order are looked up by binary search in vain (every
    // row was refused), repeated ones are ambiguous: a file holding them is
    // inconsistent.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let cats = v["features"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find_map(|f| f["kind"].get_mut("categorical"))
        .unwrap();
    cats["categories"].as_array_mut().unwrap().reverse();
    let r: Preprocessor = serde_json::from_value(v).unwrap();
    let e = r.check_consistent().unwrap_err();
    assert!(e.contains("categories out of order or repeated"), "{e}");
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

//! Training data from arrays (workflow::load_arrays) against the same data
//! written as a CSV file and read by workflow::load: the same splits, the
//! same features and targets bit for bit, for f32 and f64, row- and
//! column-major, classification and regression; then a short training run on
//! each gives the same weights. Bad arrays give errors, not panics.

use bpnet::data::preprocess::{DenseData, DenseMatrix, Layout, target_table};
use bpnet::data::{Dataset, Targets};
use bpnet::train::{default_loss, fit};
use bpnet::workflow::{
    ArrayNames, ArrayTable, Prepared, TrainConfig, fit_config, load, load_arrays, model_spec, optimizer,
};
use bpnet::{Optimizer, Sequential, Trainer};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::fmt::Write;

/// Rows `[n, d]` of features with a few wide values, and a label in 0..3
/// that depends on them.
fn data(n: usize, d: usize, seed: u64) -> (Vec<f64>, Vec<String>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut x = Vec::with_capacity(n * d);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f64> = (0..d)
            .map(|j| rng.random::<f64>() * 10f64.powi(j as i32 - 1) - 0.3)
            .collect();
        y.push((((row[1] + 0.3) * 3.0) as usize).min(2).to_string());
        x.extend(row);
    }
    (x, y)
}

/// The CSV a user would write for the same data (shortest round-trip numbers).
fn csv(x: &[f64], y: &[String], d: usize) -> String {
    let mut s: String = (0..d).map(|j| format!("f{j},")).collect();
    s += "label\n";
    for (r, label) in y.iter().enumerate() {
        for v in &x[r * d..(r + 1) * d] {
            write!(s, "{v},").unwrap();
        }
        writeln!(s, "{label}").unwrap();
    }
    s
}

fn col_major(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    (0..d).flat_map(|c| (0..n).map(move |r| x[r * d + c])).collect()
}

fn same_dataset(a: &Dataset, b: &Dataset) {
    let bits = |m: &bpnet::Matrix<f32>| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.features), bits(&b.features));
    match (&a.targets, &b.targets) {
        (Targets::Values(p), Targets::Values(q)) => assert_eq!(bits(p), bits(q)),
        (p, q) => assert_eq!(format!("{p:?}"), format!("{q:?}")),
    }
}

fn same_prepared(a: &Prepared, b: &Prepared) {
    same_dataset(&a.train, &b.train);
    assert_eq!(a.val.is_some(), b.val.is_some());
    if let (Some(p), Some(q)) = (&a.val, &b.val) {
        same_dataset(p, q);
    }
    if let (Some(p), Some(q)) = (&a.test, &b.test) {
        same_dataset(p, q);
    }
}

fn names(d: usize) -> ArrayNames {
    ArrayNames {
        features: (0..d).map(|j| format!("f{j}")).collect(),
        header: true,
    }
}

fn weights(cfg: &TrainConfig, data: &Prepared) -> Vec<u32> {
    let (opt, full) = optimizer(cfg).unwrap();
    let spec = model_spec(cfg, data.train.features.cols(), data.train.outputs()).unwrap();
    let model = Sequential::<f32>::from_spec(&spec, cfg.seed).unwrap();
    let mut t = Trainer::new(model, Optimizer::new(opt).unwrap(), default_loss(&data.train));
    let fc = fit_config(cfg, full, data.val.is_some()).unwrap();
    fit(&mut t, &data.train, data.val.as_ref(), &fc, &mut |_| Ok(())).unwrap();
    let mut out = Vec::new();
    t.model
        .visit_params(&mut |p| out.extend(p.value.as_slice().iter().map(|v| v.to_bits())));
    out
}

#[test]
fn arrays_match_the_csv_file_bit_for_bit() {
    let (n, d) = (203, 4);
    let (x, y) = data(n, d, 7);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    std::fs::write(&path, csv(&x, &y, d)).unwrap();
    let cfg = TrainConfig {
        data: path.to_string_lossy().into_owned(),
        hidden: "8".into(),
        epochs: 3,
        test_split: 0.2,
        seed: 5,
        ..TrainConfig::default()
    };
    let from_csv = load(&cfg).unwrap();
    let cells: Vec<Vec<String>> = y.iter().map(|l| vec![l.clone()]).collect();
    let xc = col_major(&x, n, d);
    for (data, layout) in [(&x, Layout::RowMajor), (&xc, Layout::ColMajor)] {
        let t = ArrayTable {
            x: DenseMatrix::new(DenseData::F64(data), n, d, layout).unwrap(),
            y: target_table(vec!["label".into()], cells.clone(), true),
        };
        let from_arrays = load_arrays(&cfg, &t, &names(d), None).unwrap();
        same_prepared(&from_csv, &from_arrays);
        assert_eq!(weights(&cfg, &from_csv), weights(&cfg, &from_arrays));
    }
}

/// Short tables, where the CSV reader's sample holds fewer distinct values
/// than its class-like threshold (64): distinct numbers are still typed as
/// numbers (an offset from a shift), a column of few repeated values as
/// text; the array path must type each column alike. 1, 2, 33, 40 and 67
/// rows, with and without a header line (without one, the first record is
/// data but not in the sample).
#[test]
fn short_arrays_are_typed_as_their_csv_is() {
    for n in [2, 3, 33, 40, 67, 130] {
        for header in [true, false] {
            let d = 3;
            let (mut x, _) = data(n, d, n as u64);
            let y: Vec<String> = (0..n).map(|r| (r % 2).to_string()).collect();
            for r in 0..n {
                x[r * d + 2] = (r % 4) as f64 * 0.1 + 2.0; // class-like: 4 values, repeated
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.csv");
            let text = csv(&x, &y, d);
            let text = if header {
                text
            } else {
                text.split_once('\n').unwrap().1.to_string()
            };
            std::fs::write(&path, text).unwrap();
            let cfg = TrainConfig {
                data: path.to_string_lossy().into_owned(),
                hidden: "4".into(),
                epochs: 1,
                val_split: 0.0,
                seed: 2,
                ..TrainConfig::default()
            };
            let from_csv = load(&cfg).unwrap();
            let cells: Vec<Vec<String>> = y.iter().map(|l| vec![l.clone()]).collect();
            let t = ArrayTable {
                x: DenseMatrix::new(DenseData::F64(&x), n, d, Layout::RowMajor).unwrap(),
                y: target_table(vec!["label".into()], cells, header),
            };
            let names = if header { names(d) } else { ArrayNames::headerless(d) };
            let from_arrays = load_arrays(&cfg, &t, &names, None).unwrap();
            same_prepared(&from_csv, &from_arrays);
        }
    }
}

#[test]
fn f32_arrays_match_their_f64_values_and_regression_targets_match() {
    let (n, d) = (120, 3);
    let (x, _) = data(n, d, 11);
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let y: Vec<String> = (0..n)
        .map(|r| (x64[r * d] * 2.5 - x64[r * d + 1]).to_string())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    std::fs::write(&path, csv(&x64, &y, d)).unwrap();
    let cfg = TrainConfig {
        data: path.to_string_lossy().into_owned(),
        hidden: "6".into(),
        epochs: 2,
        task: "regress".into(),
        ..TrainConfig::default()
    };
    let from_csv = load(&cfg).unwrap();
    let cells: Vec<Vec<String>> = y.iter().map(|l| vec![l.clone()]).collect();
    let t = ArrayTable {
        x: DenseMatrix::new(DenseData::F32(&x32), n, d, Layout::RowMajor).unwrap(),
        y: target_table(vec!["label".into()], cells, true),
    };
    let from_arrays = load_arrays(&cfg, &t, &names(d), None).unwrap();
    assert!(matches!(from_arrays.train.targets, Targets::Values(_)));
    same_prepared(&from_csv, &from_arrays);
    assert_eq!(weights(&cfg, &from_csv), weights(&cfg, &from_arrays));
}

#[test]
fn bad_arrays_are_errors_naming_row_and_column() {
    let (n, d) = (20, 2);
    let (mut x, y) = data(n, d, 3);
    let cells: Vec<Vec<String>> = y.iter().map(|l| vec![l.clone()]).collect();
    let cfg = TrainConfig::default();
    let err = |x: &[f64], cells: Vec<Vec<String>>| {
        let t = ArrayTable {
            x: DenseMatrix::new(DenseData::F64(x), n, d, Layout::RowMajor).unwrap(),
            y: target_table(vec!["label".into()], cells, false),
        };
        load_arrays(&cfg, &t, &ArrayNames::headerless(d), None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    x[3 * d + 1] = f64::NAN;
    assert!(err(&x, cells.clone()).contains("row 3, column 'col1': missing value"));
    x[3 * d + 1] = f64::INFINITY;
    assert!(err(&x, cells.clone()).contains("row 3, column 'col1': infinite value"));
    x[3 * d + 1] = 0.5;
    assert!(err(&x, cells[..5].to_vec()).contains("5 rows, but X has 20 rows"));
    let mut missing = cells.clone();
    missing[4][0] = "nan".into();
    assert!(err(&x, missing).contains("missing target value"));
    assert!(DenseMatrix::new(DenseData::F64(&x), n, d + 1, Layout::RowMajor).is_err());
}

/// Every scaling and every fill against the CSV path, on columns that
/// stress the fit: missing cells (NaN, an empty CSV cell), a constant
/// column, a column of −0.0 and missing cells, a column with one value;
/// 37 columns (blocks of 16, 16 and 5), 101 rows, on 1 to 3 threads. The
/// fitted preprocessing (centers, scales, fills; compared through its
/// Debug text, which tells −0.0 from 0.0), the notes and the features
/// must be the CSV path's, bit for bit.
#[test]
fn every_scaling_and_fill_matches_the_csv_file_bit_for_bit() {
    let (n, d) = (101, 37);
    // Columns of five magnitudes (0.1 to 1e3), each a little apart.
    let (base, y) = data(n, 5, 13);
    let mut x: Vec<f64> = (0..n * d)
        .map(|i| base[i / d * 5 + i % d % 5] * (1.0 + (i % d) as f64 * 0.01))
        .collect();
    for r in 0..n {
        for c in 0..d {
            if (r * 7 + c * 3) % 23 == 0 {
                x[r * d + c] = f64::NAN;
            }
        }
        x[r * d + 5] = 4.25; // constant
        x[r * d + 20] = if r % 3 == 0 { f64::NAN } else { -0.0 };
        x[r * d + 36] = if r == 50 { 1.5e3 } else { f64::NAN };
    }
    let mut text: String = (0..d).map(|j| format!("f{j},")).collect();
    text += "label\n";
    for (r, label) in y.iter().enumerate() {
        for v in &x[r * d..(r + 1) * d] {
            if v.is_nan() {
                text += ",";
            } else {
                write!(text, "{v},").unwrap();
            }
        }
        writeln!(text, "{label}").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.csv");
    std::fs::write(&path, text).unwrap();
    let cells: Vec<Vec<String>> = y.iter().map(|l| vec![l.clone()]).collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    for scaling in ["zscore", "minmax", "none"] {
        for impute in ["mean", "median"] {
            let cfg = TrainConfig {
                data: path.to_string_lossy().into_owned(),
                hidden: "4".into(),
                epochs: 1,
                test_split: 0.2,
                scaling: scaling.into(),
                impute: impute.into(),
                seed: 3,
                ..TrainConfig::default()
            };
            let from_csv = load(&cfg).unwrap();
            for threads in [1, 3] {
                bpnet::set_threads(threads);
                let t = ArrayTable {
                    x: DenseMatrix::new(DenseData::F64(&x), n, d, Layout::RowMajor).unwrap(),
                    y: target_table(vec!["label".into()], cells.clone(), true),
                };
                let from_arrays = load_arrays(&cfg, &t, &names(d), None).unwrap();
                let what = format!("{scaling}, impute {impute}, {threads} threads");
                assert_eq!(
                    format!("{:?}", from_csv.pipeline),
                    format!("{:?}", from_arrays.pipeline),
                    "{what}"
                );
                // The CSV path also says which column is the target.
                let csv_notes: Vec<&String> = from_csv.notes.iter().filter(|n| !n.starts_with("target:")).collect();
                assert_eq!(csv_notes, from_arrays.notes.iter().collect::<Vec<_>>(), "{what}");
                same_prepared(&from_csv, &from_arrays);
            }
        }
    }
    // f32 input: the same as its f64 values.
    let x64: Vec<f64> = x32.iter().map(|&v| f64::from(v)).collect();
    let cfg = TrainConfig {
        impute: "mean".into(),
        ..TrainConfig::default()
    };
    let prep = |data: DenseData<'_>| {
        let t = ArrayTable {
            x: DenseMatrix::new(data, n, d, Layout::RowMajor).unwrap(),
            y: target_table(vec!["label".into()], cells.clone(), true),
        };
        load_arrays(&cfg, &t, &names(d), None).unwrap()
    };
    let (a, b) = (prep(DenseData::F32(&x32)), prep(DenseData::F64(&x64)));
    assert_eq!(format!("{:?}", a.pipeline), format!("{:?}", b.pipeline));
    same_prepared(&a, &b);
}

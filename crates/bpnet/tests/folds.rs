//! k-fold partitions: every row in exactly one fold, sizes within one,
//! classes spread in proportion, seeded; and the cross-validation of a
//! configuration on a table (scores per fold, mean and sd).

use bpnet::workflow::{TrainConfig, cross_validate, kfold, mean_sd};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn folds_partition_the_rows_with_balanced_sizes() {
    for (n, k) in [(10, 2), (11, 3), (150, 5), (7, 7)] {
        let folds = kfold(n, None::<&[&str]>, k, 3).unwrap();
        assert_eq!(folds.len(), k);
        let mut all: Vec<usize> = folds.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
        let (lo, hi) = (
            folds.iter().map(Vec::len).min().unwrap(),
            folds.iter().map(Vec::len).max().unwrap(),
        );
        assert!(hi - lo <= 1, "n {n} k {k}: sizes {lo}..{hi}");
    }
}

#[test]
fn stratified_folds_keep_class_proportions() {
    // Three unequal classes, interleaved.
    let strata: Vec<String> = (0..99)
        .map(|i| match (i % 11, i % 3) {
            (0, _) => "c",
            (_, 1) => "b",
            _ => "a",
        })
        .map(String::from)
        .collect();
    let count = |rows: &[usize], c: &str| rows.iter().filter(|&&r| strata[r] == c).count();
    let folds = kfold(strata.len(), Some(&strata), 3, 1).unwrap();
    for class in ["a", "b", "c"] {
        let total = count(&(0..99).collect::<Vec<_>>(), class);
        for f in &folds {
            let got = count(f, class) as f64;
            assert!(
                (got - total as f64 / 3.0).abs() <= 1.0,
                "class {class}: {got} of {total} in a fold"
            );
        }
    }
}

#[test]
fn folds_are_seeded() {
    assert_eq!(
        kfold(50, None::<&[&str]>, 5, 9).unwrap(),
        kfold(50, None::<&[&str]>, 5, 9).unwrap()
    );
    assert_ne!(
        kfold(50, None::<&[&str]>, 5, 9).unwrap(),
        kfold(50, None::<&[&str]>, 5, 10).unwrap()
    );
}

#[test]
fn bad_fold_counts_are_refused() {
    assert!(
        kfold(10, None::<&[&str]>, 1, 0)
            .unwrap_err()
            .to_string()
            .contains("at least 2")
    );
    assert!(
        kfold(3, None::<&[&str]>, 4, 0)
            .unwrap_err()
            .to_string()
            .contains("only 3 rows")
    );
}

#[test]
fn mean_and_sample_sd() {
    let (m, s) = mean_sd(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m, 2.5);
    assert!((s - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(mean_sd(&[2.0]), (2.0, 0.0));
}

#[test]
fn cross_validation_scores_every_fold_of_iris() {
    let cfg = TrainConfig {
        data: format!("{ROOT}/data/iris.csv"),
        target: vec!["species".into()],
        epochs: 30,
        hidden: "16".into(),
        seed: 4,
        ..TrainConfig::default()
    };
    let mut seen = Vec::new();
    let r = cross_validate(&cfg, 5, &mut |f| seen.push(f.fold)).unwrap();
    assert_eq!(seen, vec![1, 2, 3, 4, 5]);
    assert_eq!(r.metric, "accuracy");
    // Stratified 5 folds of 150 rows: 30 held out each, 120 trained on.
    assert!(r.folds.iter().all(|f| f.test_rows == 30 && f.train_rows == 120));
    let scores: Vec<f64> = r.folds.iter().map(|f| f.score).collect();
    assert_eq!((r.mean, r.sd), mean_sd(&scores));
    // Iris is easy: a small network should be well above chance (1/3) on every fold.
    assert!(scores.iter().all(|&s| s > 0.7), "{scores:?}");
    // The same seed gives the same scores.
    let again = cross_validate(&cfg, 5, &mut |_| {}).unwrap();
    assert_eq!(again.folds.iter().map(|f| f.score).collect::<Vec<_>>(), scores);
}

#[test]
fn cross_validation_of_a_regression_reports_r2() {
    let cfg = TrainConfig {
        data: format!("{ROOT}/data/diabetes.csv"),
        epochs: 10,
        hidden: "16".into(),
        ..TrainConfig::default()
    };
    let r = cross_validate(&cfg, 3, &mut |_| {}).unwrap();
    assert_eq!(r.metric, "r2");
    assert_eq!(r.folds.iter().map(|f| f.test_rows).sum::<usize>(), 442);
    assert!(r.folds.iter().all(|f| f.score.is_finite() && f.score < 1.0));
}

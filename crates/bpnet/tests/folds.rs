//! k-fold partitions: every row in exactly one fold, sizes within one,
//! classes spread in proportion, seeded; and the cross-validation of a
//! configuration on a table (scores per fold, mean and sd).

use bpnet::workflow::{
    TrainConfig, auto_lr_rate, cross_validate, kfold, load, lr_range_test, mean_sd, member_config, open_table,
    prepare_rows, run_fold_members, run_fold_with, table_folds,
};

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
        // Pinned (the mechanics are under test, not the defaults): 108
        // training rows per fold in batches of 32.
        batch_size: 32,
        patience: 10,
        seed: 4,
        // One network a fold (a fold's ensemble is checked below).
        ensemble: 1,
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
    // Each fold's held-out predictions: probabilities of the 3 classes,
    // whose argmax scores what the fold scored.
    for f in &r.folds {
        let h = &f.held_out;
        assert_eq!(
            (h.predictions.rows(), h.predictions.cols(), h.truth.rows()),
            (30, 3, 30)
        );
        assert_eq!(h.classes.as_ref().unwrap().len(), 3);
        let mut hits = 0;
        for row in 0..30 {
            let p = h.predictions.row(row);
            assert!(
                (p.iter().sum::<f64>() - 1.0).abs() < 1e-5 && p.iter().all(|&v| v >= 0.0),
                "{p:?}"
            );
            let arg = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            hits += usize::from(arg as f64 == h.truth.row(row)[0]);
        }
        assert_eq!(hits as f64 / 30.0, f.score);
        // Stratified: iris has 50 rows of each class, so 10 of each here.
        let per_class: Vec<usize> = (0..3)
            .map(|c| (0..30).filter(|&r| h.truth.row(r)[0] == c as f64).count())
            .collect();
        assert_eq!(per_class, vec![10, 10, 10], "fold {}", f.fold);
    }
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
    // Held-out predictions and truth in the target's units (diabetes
    // progression, 25 to 346): their R² is the fold's score.
    for f in &r.folds {
        let (p, y) = (f.held_out.predictions.as_slice(), f.held_out.truth.as_slice());
        assert_eq!(
            (p.len(), y.len(), f.held_out.classes.clone()),
            (f.test_rows, f.test_rows, None)
        );
        assert!(y.iter().all(|&v| (25.0..=346.0).contains(&v)), "{y:?}");
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let sse: f64 = p.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
        let sst: f64 = y.iter().map(|b| (b - mean).powi(2)).sum();
        assert!(
            (1.0 - sse / sst - f.score).abs() < 1e-6,
            "{} vs {}",
            1.0 - sse / sst,
            f.score
        );
    }
}

/// `bpnet train --cv` scores what `bpnet train` would save: on a small
/// table an ensemble, so each fold trains one. A fold's ensemble of 3 is
/// its 3 seeds' networks, each as it trains alone on the fold, averaged
/// (softmax probabilities, up to rounding), and `cross_validate` reports
/// its score.
#[test]
fn a_folds_ensemble_averages_its_members_trained_alone() {
    let cfg = TrainConfig {
        data: format!("{ROOT}/data/iris.csv"),
        target: vec!["species".into()],
        epochs: 8,
        hidden: "8".into(),
        batch_size: 16,
        // No validation rows: they are drawn by the seed, which differs
        // between members trained alone.
        val_split: 0.0,
        seed: 7,
        ensemble: 3,
        ..TrainConfig::default()
    };
    let src = open_table(&cfg).unwrap();
    let folds = table_folds(&src, 3, cfg.seed).unwrap();
    let together = run_fold_members(&cfg, &src, &folds, 1, 3, &mut |_| Ok(())).unwrap();
    let alone: Vec<_> = (0..3)
        .map(|m| run_fold_with(&member_config(&cfg, m), &src, &folds, 1, &mut |_| Ok(())).unwrap())
        .collect();
    let p = &together.held_out.predictions;
    assert_eq!((p.rows(), p.cols()), (50, 3));
    let mut spread = 0.0f64;
    for r in 0..p.rows() {
        for c in 0..3 {
            let members: Vec<f64> = alone.iter().map(|a| a.held_out.predictions.row(r)[c]).collect();
            let mean = members.iter().sum::<f64>() / 3.0;
            assert!(
                (p.row(r)[c] - mean).abs() < 1e-5,
                "row {r} class {c}: {} against {mean}",
                p.row(r)[c]
            );
            spread = spread.max(members.iter().map(|v| (v - mean).abs()).fold(0.0, f64::max));
        }
    }
    // The members differ, so the average is not one of them.
    assert!(spread > 1e-3, "the members agree to {spread}");
    let report = cross_validate(&cfg, 3, &mut |_| {}).unwrap();
    assert_eq!(report.folds[1].score, together.score);
    assert_eq!(report.folds[1].held_out, together.held_out);
}

/// `--lr auto` under `--cv`: each fold runs the range test on its own
/// training rows (after its validation split), as `bpnet train` would on
/// them, never on the held-out fold: a fold trains and scores as the same
/// fold with the rate found on its rows given, and the rates differ from
/// the one found on every row.
#[test]
fn lr_auto_runs_the_range_test_on_each_folds_training_rows() {
    let cfg = TrainConfig {
        data: format!("{ROOT}/data/diabetes.csv"),
        epochs: 6,
        hidden: "8".into(),
        optimizer: "sgd".into(),
        batch_size: 16,
        seed: 3,
        ensemble: 1,
        lr_auto: true,
        ..TrainConfig::default()
    };
    let src = open_table(&cfg).unwrap();
    let folds = table_folds(&src, 3, cfg.seed).unwrap();
    let report = cross_validate(&cfg, 3, &mut |_| {}).unwrap();
    let everything = auto_lr_rate(&lr_range_test(&cfg, &load(&cfg).unwrap(), Default::default()).unwrap()).unwrap();
    let mut rates = Vec::new();
    for (i, f) in report.folds.iter().enumerate() {
        let mut rows: Vec<usize> = (0..3).filter(|&j| j != i).flat_map(|j| folds[j].clone()).collect();
        rows.sort_unstable();
        let data = prepare_rows(&cfg, &src, &rows, Some(&folds[i])).unwrap();
        let rate = auto_lr_rate(&lr_range_test(&cfg, &data, Default::default()).unwrap()).unwrap();
        assert_eq!(f.lr, rate, "fold {}", f.fold);
        let given = TrainConfig {
            lr: rate,
            lr_auto: false,
            ..cfg.clone()
        };
        let alone = run_fold_with(&given, &src, &folds, i, &mut |_| Ok(())).unwrap();
        assert_eq!(
            (alone.score, &alone.held_out),
            (f.score, &f.held_out),
            "fold {}",
            f.fold
        );
        rates.push(rate);
    }
    assert!(rates.iter().any(|&r| r != everything), "{rates:?} against {everything}");
}

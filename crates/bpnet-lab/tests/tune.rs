//! The tuner's pieces: the search space (seeded asks, depth 0 is a linear
//! model, the batch size capped), the median pruning rule and the journal.

use bpnet::workflow::TrainConfig;
use bpnet_lab::tune::journal::{Journal, JournalHeader, TrialRecord};
use bpnet_lab::tune::space::{Params, Space};
use bpnet_lab::tune::{TuneOptions, tune};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

#[test]
fn asks_are_seeded_and_in_range() {
    let ask = |seed| {
        let mut s = Space::new().unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..20).map(|_| s.ask(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(ask(1), ask(1));
    assert_ne!(ask(1), ask(2));
    assert!(ask(3).iter().all(Space::contains));
}

#[test]
fn depth_zero_is_a_linear_model_and_batches_fit_the_rows() {
    let p = Params {
        raw: [0.2, 6.0, 1.5, 0.0, 0.0, -3.0, -5.0, 0.3, 4.5],
    };
    let cfg = p.apply(&TrainConfig::default(), 100);
    assert_eq!(cfg.hidden, "");
    assert!(!cfg.batch_norm);
    assert_eq!(cfg.dropout, 0.0);
    assert_eq!(cfg.batch_size, 100);
    assert!((cfg.lr - 1e-3).abs() < 1e-12);
    let deep = Params {
        raw: [2.7, 6.0, 2.2, 1.0, 1.0, -2.0, -5.0, 0.3, 1.0],
    };
    let cfg = deep.apply(&TrainConfig::default(), 1000);
    assert_eq!(cfg.hidden, "64,64");
    assert!(cfg.batch_norm && cfg.bn_after);
    assert_eq!(
        (cfg.activation.as_str(), cfg.optimizer.as_str(), cfg.batch_size),
        ("gelu", "adamw", 32)
    );
}

#[test]
fn the_journal_round_trips_and_refuses_other_searches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let header = JournalHeader {
        data: "d.csv".into(),
        target: vec![],
        cv: 3,
        seed: 1,
        epochs: 5,
    };
    let (j, done) = Journal::open(&path, &header).unwrap();
    assert!(done.is_empty());
    let r = TrialRecord {
        trial: 0,
        params: Params {
            raw: [1.0, 5.5, 0.0, 2.0, 3.0, -2.5, -6.0, 0.1, 2.0],
        },
        score: 0.9,
        folds: vec![0.85, 0.95],
        pruned: true,
        seconds: 0.5,
        failed: None,
    };
    j.append(&r).unwrap();
    assert_eq!(Journal::open(&path, &header).unwrap().1, vec![r]);
    let other = JournalHeader { seed: 2, ..header };
    let err = Journal::open(&path, &other).err().unwrap().to_string();
    assert!(err.contains("j.jsonl") && err.contains("line 1"), "{err}");
}

#[test]
fn the_median_rule_prunes_weak_trials_after_the_first_group() {
    let dir = tempfile::tempdir().unwrap();
    let opts = TuneOptions {
        base: TrainConfig {
            data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv").into(),
            epochs: 3,
            ..TrainConfig::default()
        },
        trials: Some(12),
        time: None,
        cv: 3,
        workers: 2,
        journal: dir.path().join("j.jsonl"),
    };
    let mut seen = 0;
    let o = tune(&opts, &mut |_, n| seen = n).unwrap();
    assert_eq!(seen, 12);
    // The first group has nothing to compare with: every fold runs.
    assert!(o.records[..4].iter().all(|r| !r.pruned && r.folds.len() == 3));
    // A pruned trial stopped before the last fold, below the median of the
    // earlier groups' running means at that fold.
    for r in o.records.iter().filter(|r| r.pruned) {
        assert!(r.folds.len() < 3);
        let j = r.folds.len();
        let mut earlier: Vec<f64> = o
            .records
            .iter()
            .filter(|e| e.trial / 4 < r.trial / 4 && e.folds.len() >= j)
            .map(|e| e.folds[..j].iter().sum::<f64>() / j as f64)
            .collect();
        earlier.sort_by(f64::total_cmp);
        let n = earlier.len();
        let median = if n % 2 == 1 {
            earlier[n / 2]
        } else {
            (earlier[n / 2 - 1] + earlier[n / 2]) / 2.0
        };
        assert!(r.score < median, "trial {} {} vs median {median}", r.trial, r.score);
    }
    assert!(!o.best().pruned);
    // This search does prune (4 of 12 trials on this machine's run), so
    // the loop above checked something.
    assert!(o.records.iter().any(|r| r.pruned));
}

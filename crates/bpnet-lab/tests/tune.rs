//! The tuner's pieces: the search space (seeded asks, depth 0 is a linear
//! model, the batch size capped, the portfolio tried first), the median
//! pruning rule and the journal.

use bpnet::workflow::TrainConfig;
use bpnet_lab::tune::journal::{Journal, JournalHeader, TrialRecord};
use bpnet_lab::tune::space::{PORTFOLIO, Params, Space, portfolio};
use bpnet_lab::tune::{TuneOptions, tune};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// A search on iris of `epochs` per training run and `cv` folds, two trials
/// at a time, journaled in `dir`; no bound on trials or time yet.
fn iris_search(dir: &std::path::Path, epochs: usize, cv: usize) -> TuneOptions {
    TuneOptions {
        base: TrainConfig {
            data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv").into(),
            epochs,
            ..TrainConfig::default()
        },
        trials: None,
        time: None,
        cv,
        workers: 2,
        confirm: 3,
        refit: (true, 2),
        journal: dir.join("j.jsonl"),
    }
}

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
fn the_portfolio_decodes_to_the_defaults_a_linear_model_and_two_variants() {
    assert!(portfolio().iter().all(Space::contains));
    let base = TrainConfig::default();
    let [defaults, linear, adamw, dropout] = portfolio().map(|p| p.apply(&base, 10_000));
    let shape = |c: &TrainConfig| {
        (
            c.hidden.clone(),
            c.batch_norm,
            c.bn_after,
            c.activation.clone(),
            c.optimizer.clone(),
            c.batch_size,
        )
    };
    assert_eq!(shape(&defaults), shape(&base));
    assert!((defaults.lr - 1e-3).abs() < 1e-15 && defaults.dropout == 0.0);
    assert!(defaults.weight_decay <= 1e-7 * (1.0 + 1e-12));
    assert_eq!(
        shape(&linear),
        ("".into(), false, false, "relu".into(), "adam".into(), 32)
    );
    assert!((linear.lr - 1e-2).abs() < 1e-15 && (linear.weight_decay - 1e-3).abs() < 1e-15);
    assert_eq!(adamw.optimizer, "adamw");
    assert_eq!(adamw.weight_decay as f32, 1e-2f32);
    assert_eq!((adamw.hidden.as_str(), adamw.dropout), ("100,100", 0.0));
    assert_eq!((dropout.optimizer.as_str(), dropout.dropout), ("adam", 0.2));
    assert_eq!(shape(&dropout), shape(&base));
}

#[test]
fn every_search_starts_with_the_portfolio_then_asks_tpe() {
    let dir = tempfile::tempdir().unwrap();
    let opts = TuneOptions {
        trials: Some(PORTFOLIO + 2),
        workers: 1,
        ..iris_search(dir.path(), 2, 2)
    };
    let o = tune(&opts, &mut |_, _, _| {}).unwrap();
    let tried: Vec<Params> = o.records.iter().map(|r| r.params.clone()).collect();
    assert_eq!(tried[..PORTFOLIO], portfolio());
    // The outcome keeps the journal locked for the refit that follows: a
    // second search on it is refused until the outcome is dropped.
    let again = || tune(&opts, &mut |_, _, _| {});
    let err = again().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("another bpnet tune is running this search"), "{err}");
    let records = o.records.clone();
    drop(o);
    let resumed = again().unwrap();
    assert_eq!(resumed.resumed, records.len());
    // After the portfolio, TPE's points: none of them is a portfolio point.
    assert!(tried[PORTFOLIO..].iter().all(|p| !portfolio().contains(p)));
    assert!(tried[PORTFOLIO..].iter().all(Space::contains));
}

#[test]
fn the_journal_round_trips_and_refuses_other_searches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    let header = JournalHeader {
        data: "d.csv".into(),
        data_sha256: "0123456789abcdef".into(),
        target: vec![],
        target_columns: vec![4],
        task: "classify".into(),
        impute: "mean".into(),
        cv: 3,
        seed: 1,
        epochs: 5,
        reading: bpnet_lab::tune::journal::reading(',', None),
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
        floored: 0,
        confirm: Vec::new(),
    };
    j.append(&r).unwrap();
    // The open journal is locked: a second search on it is refused, and
    // the journal is left whole (two at once had written every trial twice).
    let err = Journal::open(&path, &header).err().unwrap().to_string();
    assert!(
        err.contains("j.jsonl: another bpnet tune is running this search"),
        "{err}"
    );
    drop(j);
    assert_eq!(Journal::open(&path, &header).unwrap().1, vec![r.clone()]);
    // A last line cut short is dropped in place, and one left without its
    // newline is ended, so that the next trial gets a line of its own.
    let whole = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{whole}{{\"trial\":1,\"par")).unwrap();
    assert_eq!(Journal::open(&path, &header).unwrap().1, vec![r.clone()]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
    std::fs::write(&path, whole.trim_end()).unwrap();
    let (j, done) = Journal::open(&path, &header).unwrap();
    assert_eq!(done, vec![r.clone()]);
    j.append(&TrialRecord { trial: 1, ..r.clone() }).unwrap();
    drop(j);
    assert_eq!(Journal::open(&path, &header).unwrap().1.len(), 2);
    // A header cut short by a kill is written again; a line that is not
    // the start of one is refused, the file left as it was.
    let header_line = whole.lines().next().unwrap();
    std::fs::write(&path, &header_line[..20]).unwrap();
    assert!(Journal::open(&path, &header).unwrap().1.is_empty());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{header_line}\n"));
    std::fs::write(&path, "hello").unwrap();
    let err = Journal::open(&path, &header).err().unwrap().to_string();
    assert!(err.contains("not a tune journal header"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
    std::fs::write(&path, &whole).unwrap();
    let refusal = |other: &JournalHeader| {
        let before = std::fs::read(&path).unwrap();
        let err = Journal::open(&path, other).err().unwrap().to_string();
        assert!(
            err.contains("j.jsonl") && err.contains("line 1: journal of another search ("),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "left as it was");
        err
    };
    let others = [
        (
            JournalHeader {
                seed: 2,
                ..header.clone()
            },
            "(--seed: 1 in the journal, 2 here)",
        ),
        (
            JournalHeader {
                impute: "median".into(),
                ..header.clone()
            },
            "(--impute: mean in the journal, median here)",
        ),
        (
            JournalHeader {
                task: "regress".into(),
                ..header.clone()
            },
            "(--task: classify in the journal, regress here)",
        ),
        (
            JournalHeader {
                data_sha256: "fedcba9876543210".into(),
                ..header.clone()
            },
            "(--data's contents (SHA-256): 0123456789ab in the journal, fedcba987654 here)",
        ),
        (
            JournalHeader {
                reading: bpnet_lab::tune::journal::reading(';', Some(false)),
                ..header.clone()
            },
            "(--delimiter or --header: delimiter ',', header auto in the journal, delimiter ';', header no here)",
        ),
        (
            JournalHeader {
                target: vec!["a".into()],
                target_columns: vec![0],
                ..header.clone()
            },
            "(--target: the last column in the journal, a here)",
        ),
    ];
    for (other, says) in &others {
        let err = refusal(other);
        assert!(err.contains(says), "{err}");
    }
    // The same bytes under another spelling of the path resume.
    let spelled = JournalHeader {
        data: "./d.csv".into(),
        ..header.clone()
    };
    assert!(Journal::open(&path, &spelled).is_ok());
    // The default target and the last column named are the same search.
    let named = JournalHeader {
        target: vec!["species".into()],
        ..header.clone()
    };
    assert!(Journal::open(&path, &named).is_ok());
    // A journal of a version that did not record how it read the file read
    // it by the defaults: it resumes.
    let text = std::fs::read_to_string(&path).unwrap();
    let unrecorded = text.replacen(r#","reading":"delimiter ',', header auto""#, "", 1);
    assert_ne!(unrecorded, text);
    std::fs::write(&path, &unrecorded).unwrap();
    assert!(Journal::open(&path, &header).is_ok());
    // A journal of a version that recorded neither task nor impute.
    let old = text.replacen(r#""task":"classify","impute":"mean","#, "", 1);
    assert_ne!(old, text);
    std::fs::write(&path, old).unwrap();
    assert!(refusal(&header).contains("(--task: not recorded in the journal, classify here)"));
}

/// What a search decided for each trial (not how long it took).
fn decisions(records: &[TrialRecord]) -> Vec<(usize, Params, f64, Vec<f64>, bool)> {
    records
        .iter()
        .map(|r| (r.trial, r.params.clone(), r.score, r.folds.clone(), r.pruned))
        .collect()
}

#[test]
fn a_resumed_search_reads_its_journal_back_and_ends_as_an_uninterrupted_one() {
    // Stopped after 13 trials: the portfolio (group 0), two TPE groups read
    // back without asking TPE again (group 1 is asked and compared, group 2
    // is not) and one trial of group 3, whose other three are asked.
    let run = |dir: &std::path::Path, n: usize| {
        let opts = TuneOptions {
            trials: Some(n),
            confirm: 0,
            ..iris_search(dir, 2, 2)
        };
        tune(&opts, &mut |_, _, _| {}).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let whole = run(a.path(), 22);
    assert_eq!(run(b.path(), 13).records.len(), 13);
    let resumed = run(b.path(), 22);
    assert_eq!(resumed.resumed, 13);
    assert_eq!(decisions(&resumed.records), decisions(&whole.records));
    assert_eq!(resumed.best, whole.best);
}

#[test]
fn a_journal_whose_asked_points_differ_is_refused_naming_the_trial() {
    // Trial 5 is in the group of the first TPE trial, 12 in the group of
    // the last journaled one: both groups are asked again and compared.
    for tampered in [5, 12] {
        let dir = tempfile::tempdir().unwrap();
        let opts = TuneOptions {
            trials: Some(13),
            confirm: 0,
            ..iris_search(dir.path(), 2, 2)
        };
        tune(&opts, &mut |_, _, _| {}).unwrap();
        let text = std::fs::read_to_string(&opts.journal).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        for line in lines.iter_mut().skip(1) {
            let mut r: TrialRecord = serde_json::from_str(line).unwrap();
            if r.trial == tampered {
                r.params.raw[7] = (r.params.raw[7] + 0.25) % 0.5;
                *line = serde_json::to_string(&r).unwrap();
            }
        }
        std::fs::write(&opts.journal, lines.join("\n") + "\n").unwrap();
        let again = TuneOptions {
            trials: Some(16),
            ..opts.clone()
        };
        let err = tune(&again, &mut |_, _, _| {}).err().unwrap().to_string();
        assert!(
            err.contains("j.jsonl") && err.contains(&format!("trial {tampered} ")),
            "{err}"
        );
    }
}

#[test]
fn a_journal_that_cannot_be_read_is_an_error_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let opts = TuneOptions {
        trials: Some(4),
        ..iris_search(dir.path(), 2, 2)
    };
    let bytes = b"{\"data\": \"\xff\xfe not UTF-8\n".to_vec();
    std::fs::write(&opts.journal, &bytes).unwrap();
    let err = tune(&opts, &mut |_, _, _| {}).err().unwrap().to_string();
    assert!(err.contains("j.jsonl"), "{err}");
    assert_eq!(std::fs::read(&opts.journal).unwrap(), bytes);
}

/// Whether the median rule prunes `r` after `j` folds: `r`'s mean of its
/// first `j` folds is below the median of the same means of the trials of
/// earlier groups of 4 that ran `j` folds, once there are 4 such trials.
fn below_the_median(records: &[TrialRecord], r: &TrialRecord, j: usize) -> bool {
    let mean = |e: &TrialRecord| e.folds[..j].iter().sum::<f64>() / j as f64;
    let mut earlier: Vec<f64> = records
        .iter()
        .filter(|e| e.trial / 4 < r.trial / 4 && e.folds.len() >= j)
        .map(mean)
        .collect();
    if earlier.len() < 4 {
        return false;
    }
    earlier.sort_by(f64::total_cmp);
    let n = earlier.len();
    let median = match n % 2 {
        1 => earlier[n / 2],
        _ => (earlier[n / 2 - 1] + earlier[n / 2]) / 2.0,
    };
    mean(r) < median
}

#[test]
fn the_median_rule_prunes_exactly_the_trials_below_the_earlier_groups_median() {
    let dir = tempfile::tempdir().unwrap();
    let k = 3;
    let opts = TuneOptions {
        trials: Some(20),
        ..iris_search(dir.path(), 20, k)
    };
    let mut seen = 0;
    let o = tune(&opts, &mut |_, n, _| seen = n).unwrap();
    assert_eq!(seen, 20);
    // The first group has nothing to compare with: every fold runs.
    assert!(o.records[..4].iter().all(|r| !r.pruned && r.folds.len() == k));
    // Both ways: a trial is pruned after fold j (before the last) exactly
    // when its running mean falls below the median, and no sooner.
    let (mut pruned, mut kept) = (0, 0);
    for r in &o.records {
        let run = r.folds.len();
        // The folds after which the rule looked and let the trial go on.
        let passed = match (r.pruned, r.failed.is_some()) {
            (true, _) => run - 1,
            (false, true) => run.min(k - 1),
            (false, false) => k - 1,
        };
        for j in 1..=passed {
            assert!(
                !below_the_median(&o.records, r, j),
                "trial {} not pruned after fold {j}",
                r.trial
            );
            kept += usize::from(r.trial >= 4);
        }
        if r.pruned {
            // Stopped there, scored by the folds it ran.
            assert!(
                run < k && r.score == r.folds.iter().sum::<f64>() / run as f64,
                "trial {}",
                r.trial
            );
            assert!(
                below_the_median(&o.records, r, run),
                "trial {} pruned after fold {run}",
                r.trial
            );
            pruned += 1;
        }
    }
    assert!(!o.best().pruned);
    // This search does prune (7 of 20 trials on this machine's run; with
    // the portfolio first, shorter searches or fewer epochs pruned 0-1),
    // and lets later trials past the rule: both directions were checked.
    assert!(pruned > 0 && kept > 0, "{pruned} pruned, {kept} let go on");
}

#[test]
fn the_time_limit_stops_running_trials_and_leaves_them_out() {
    let dir = tempfile::tempdir().unwrap();
    // Trials that would train for a million epochs (no early stopping):
    // only the deadline can end them, so this search returning at all
    // shows the running trials were stopped.
    let mut opts = TuneOptions {
        time: Some(0.5),
        ..iris_search(dir.path(), 1_000_000, 2)
    };
    opts.base.patience = 0;
    let journal = opts.journal.clone();
    let mut seen = 0;
    let err = tune(&opts, &mut |_, n, _| seen = n).err().unwrap().to_string();
    assert!(err.contains("no trial ran every fold"), "{err}");
    assert_eq!(seen, 0);
    // The stopped trials were not journaled: the file holds its header only.
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert_eq!(lines, 1);
}

#[test]
fn the_best_few_are_rescored_on_other_folds_and_the_best_mean_of_both_wins() {
    // 8 trials of 8 epochs, 3 folds, with `workers` at once and `confirm`.
    let search = |workers: usize, confirm: usize| {
        let dir = tempfile::tempdir().unwrap();
        let opts = TuneOptions {
            trials: Some(8),
            workers,
            confirm,
            refit: (true, 2),
            ..iris_search(dir.path(), 8, 3)
        };
        tune(&opts, &mut |_, _, _| {}).unwrap()
    };
    let o = search(2, 3);
    let rescored: Vec<&TrialRecord> = o.records.iter().filter(|r| !r.confirm.is_empty()).collect();
    // They are the 3 complete trials with the best search scores and the
    // portfolio's complete trials.
    let mut complete: Vec<&TrialRecord> = o.records.iter().filter(|r| r.complete()).collect();
    complete.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.trial.cmp(&b.trial)));
    let mut top: Vec<usize> = complete[..3].iter().map(|r| r.trial).collect();
    top.extend(complete.iter().map(|r| r.trial).filter(|&t| t < PORTFOLIO));
    top.sort();
    top.dedup();
    assert!(top.len() > 3 && top.iter().any(|&t| t >= PORTFOLIO), "{top:?}");
    assert_eq!(rescored.iter().map(|r| r.trial).collect::<Vec<_>>(), top);
    // Another split with other seeds: not the search's fold scores again.
    assert!(rescored.iter().any(|r| r.confirm != r.folds), "{rescored:?}");
    assert!(rescored.iter().all(|r| r.confirm.len() == 3));
    // The best has the highest mean over both splits' 6 folds.
    let both = |r: &TrialRecord| r.folds.iter().chain(&r.confirm).sum::<f64>() / 6.0;
    let best = rescored.iter().map(|r| both(r)).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(o.best().combined(3), Some(best));
    // The same records with one trial at a time.
    let one = search(1, 3);
    let scores = |o: &bpnet_lab::tune::TuneOutcome| -> Vec<(f64, Vec<f64>)> {
        o.records.iter().map(|r| (r.score, r.confirm.clone())).collect()
    };
    assert_eq!(scores(&one), scores(&o));
    assert_eq!(one.best, o.best);
    // Without re-scoring, the best is the best search score.
    let plain = search(2, 0);
    assert!(plain.records.iter().all(|r| r.confirm.is_empty()));
    assert_eq!(plain.best().trial, complete[0].trial);
}

//! The experiments give the same numbers on any thread count: every study
//! (the paper's four and the four normalization studies) at a small size on
//! 1 and on 3 threads, every CSV file and `results.json` compared byte for
//! byte. The products, the normalization passes and the optimizer are split
//! over the threads by shape alone (`bpnet::parallel`); this checks what
//! the studies add on top (evaluation in lockstep, probes, gradient-norm
//! windows, recalibration, train/eval gaps, lr-find).

use bpnet::parallel;
use bpnet_lab::experiment::{ExperimentConfig, Mnist, Study, run};
use std::collections::BTreeMap;
use std::path::Path;

/// The CSV files and `results.json` of `dir`, by name.
fn numbers(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".csv") || name == "results.json" {
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

#[test]
fn every_study_gives_the_same_numbers_on_1_and_3_threads() {
    let cfg = ExperimentConfig {
        steps: 30,
        eval_every: 10,
        probe_rows: 50,
        train_limit: 600,
        test_limit: 200,
        depth: 4,
        population_batches: 3,
        seeds: 2,
        batch_sizes: vec![2, 61],
        ghost_size: 16,
        lr_range: vec![0.1, 1.0],
        ..ExperimentConfig::quick()
    };
    let data = Mnist::load(&cfg).unwrap();
    let studies: Vec<Study> = Study::ALL.into_iter().chain(Study::NORM).collect();
    let runs: Vec<BTreeMap<String, Vec<u8>>> = [1, 3]
        .into_iter()
        .map(|t| {
            assert_eq!(parallel::set_threads(t), t);
            let dir = tempfile::tempdir().unwrap();
            run(&studies, &cfg, &data, dir.path(), "test", &mut |_| {}).unwrap();
            parallel::set_threads(1);
            numbers(dir.path())
        })
        .collect();
    assert!(runs[0].len() >= 10, "files compared: {:?}", runs[0].keys());
    assert_eq!(runs[0].keys().collect::<Vec<_>>(), runs[1].keys().collect::<Vec<_>>());
    for (name, one) in &runs[0] {
        assert!(*one == runs[1][name], "{name}: 1 and 3 threads differ");
    }
}

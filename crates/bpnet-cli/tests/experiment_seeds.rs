//! `bpnet experiment ... --seeds N`: each seed's run in its own folder,
//! identical to a run with that seed alone; mean ± sd over seeds of every
//! reported number; band figures.

mod common;
use common::ok as bpnet;
use serde_json::Value;
use std::path::Path;

const TINY: [&str; 10] = [
    "--steps",
    "40",
    "--eval-every",
    "20",
    "--train-limit",
    "600",
    "--test-limit",
    "200",
    "--probe-rows",
    "50",
];

/// Every `final_accuracy` in a results.json, in order (the paper study's
/// two networks: without BN, with BN).
fn final_accuracies(results: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(results).unwrap();
    let text = serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap();
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\"final_accuracy\":") {
        rest = &rest[i + 17..];
        let end = rest.find([',', '}']).unwrap();
        found.push(rest[..end].trim().parse::<f64>().unwrap());
    }
    assert_eq!(found.len(), 2, "{text}");
    found
}

#[test]
fn seeds_runs_each_seed_and_reports_the_spread() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut args = vec![
        "experiment",
        "bn-mnist",
        "--quiet",
        "--seeds",
        "2",
        "--seed",
        "5",
        "--out",
        "multi",
    ];
    args.extend(TINY);
    let out = bpnet(d, &args);
    assert!(out.contains("paper/networks/1/final_accuracy: "), "{out}");
    for f in [
        "seeds.json",
        "seeds.md",
        "seeds.html",
        "paper_bands.png",
        "paper_bands.svg",
    ] {
        assert!(d.join("multi").join(f).exists(), "{f}");
    }
    // Seed 6's folder holds exactly what a run with --seed 6 alone gives.
    let mut single = vec!["experiment", "bn-mnist", "--quiet", "--seed", "6", "--out", "single"];
    single.extend(TINY);
    bpnet(d, &single);
    let (a, b) = (
        final_accuracies(&d.join("multi/seed-6/results.json")),
        final_accuracies(&d.join("single/results.json")),
    );
    assert_eq!(a, b);
    for f in ["results.json", "paper_curves.csv"] {
        let read = |dir: &str| std::fs::read(d.join(dir).join(f)).unwrap();
        assert!(read("multi/seed-6") == read("single"), "{f} differs");
    }
    // The spread is the mean and sample sd of the two seeds' numbers.
    let s5 = final_accuracies(&d.join("multi/seed-5/results.json"));
    let seeds: Value = serde_json::from_str(&std::fs::read_to_string(d.join("multi/seeds.json")).unwrap()).unwrap();
    let row = seeds["numbers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "paper/networks/1/final_accuracy")
        .unwrap();
    let (x, y) = (s5[1], a[1]);
    let mean = (x + y) / 2.0;
    let sd = ((x - mean).powi(2) + (y - mean).powi(2)).sqrt();
    assert!((row["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((row["sd"].as_f64().unwrap() - sd).abs() < 1e-12);
    let md = std::fs::read_to_string(d.join("multi/seeds.md")).unwrap();
    assert!(md.contains("| `paper/networks/1/final_accuracy` |"), "{md}");
    // The same command again replaces its own outputs (seeds.md was taken
    // for a foreign file: "pass --overwrite"), and notes nothing.
    let again = bpnet(d, &args);
    assert!(!again.contains("note:"), "{again}");
    // A single run into the folder notes what the run over seeds left
    // (the note had named seeds.json etc. but not the bands or folders).
    let mut one = vec!["experiment", "bn-mnist", "--quiet", "--seed", "5", "--out", "multi"];
    one.extend(TINY);
    let said = bpnet(d, &one);
    let left = "seeds.json, seeds.md, seeds.html, paper_bands.png, paper_bands.svg, seed-5/, seed-6/";
    assert!(
        said.contains(&format!("note: multi also holds {left} from an earlier run, not this one's (its config.json, results.json and report.html describe this run)")),
        "{said}"
    );
    // Seeds 6 and 7 note seed 5's folder and the single run's files.
    let shifted: Vec<&str> = args.iter().map(|&a| if a == "5" { "6" } else { a }).collect();
    let said = bpnet(d, &shifted);
    assert!(said.contains("note: multi also holds paper_curves.csv, "), "{said}");
    assert!(
        said.contains("config.json, results.json, report.html, seed-5/ from an earlier run, not this one's (its seeds.json, seeds.md and seeds.html describe this run)"),
        "{said}"
    );
}

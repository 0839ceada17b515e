//! `bpnet tune` at tiny size, as the real binary: the outputs (model,
//! leaderboard, report, journal), reproducibility for any number of trials
//! at once, resuming from the journal, and a journal of another search.

use serde_json::Value;
use std::path::Path;

mod common;
use common::{last_json, ok, run_in};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn iris() -> String {
    format!("{ROOT}/data/iris.csv")
}

/// A tiny search: 3 folds, 5 epochs per run.
fn tune(dir: &Path, trials: &str, parallel: &str) -> Value {
    tune_with(dir, trials, parallel, &[])
}

/// [`tune`] with `extra` arguments.
fn tune_with(dir: &Path, trials: &str, parallel: &str, extra: &[&str]) -> Value {
    let data = iris();
    let mut args = vec![
        "tune",
        "--data",
        &data,
        "--target",
        "species",
        "--trials",
        trials,
        "--cv",
        "3",
        "--epochs",
        "5",
        "--parallel",
        parallel,
        "--seed",
        "3",
        "--out",
        "t.safetensors",
        "--json",
    ];
    args.extend_from_slice(extra);
    last_json(&ok(dir, &args))
}

/// The leaderboard without its `seconds` column (wall-clock times differ).
fn board(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("t.leaderboard.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let secs = header.iter().position(|h| *h == "seconds").unwrap();
    text.lines()
        .map(|l| {
            let mut cells: Vec<&str> = l.split(',').collect();
            cells.remove(secs);
            cells.join(",")
        })
        .collect()
}

#[test]
fn tune_writes_the_model_leaderboard_report_and_journal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let j = tune(d, "6", "2");
    assert_eq!(j["trials"], 6);
    assert_eq!(j["metric"], "accuracy");
    let rows = board(d);
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert!(
        rows[0].starts_with("rank,trial,accuracy,sd,folds,pruned"),
        "{}",
        rows[0]
    );
    assert!(rows[1].starts_with(&format!("1,{},", j["best_trial"])), "{}", rows[1]);
    let header: Vec<&str> = rows[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let cell = |row: &str, c: usize| row.split(',').nth(c).unwrap().to_string();
    // The first four trials are the portfolio, named in the origin column.
    for (t, name) in ["defaults", "linear", "defaults+adamw", "defaults+dropout", "tpe", "tpe"]
        .iter()
        .enumerate()
    {
        let row = rows[1..]
            .iter()
            .find(|r| r.split(',').nth(1) == Some(&t.to_string()))
            .unwrap();
        assert_eq!(cell(row, col("origin")), *name, "trial {t}: {row}");
    }
    // The 3 best and the portfolio's trials were re-scored on other folds
    // (the default --confirm 3): they rank first, by the mean over both
    // splits, the chosen one first.
    let both: Vec<String> = rows[1..].iter().map(|r| cell(r, col("both"))).collect();
    let n = both.iter().take_while(|b| !b.is_empty()).count();
    assert!(
        (4..=7).contains(&n) && both[n..].iter().all(String::is_empty),
        "{both:?}"
    );
    let both: Vec<f64> = both[..n].iter().map(|b| b.parse().unwrap()).collect();
    assert!(both.windows(2).all(|w| w[0] >= w[1]), "{both:?}");
    assert!((j["best_combined"].as_f64().unwrap() - both[0]).abs() < 1e-6, "{j}");
    assert_eq!(j["best_confirm"].as_array().unwrap().len(), 3);
    let html = std::fs::read_to_string(d.join("t.report.html")).unwrap();
    assert!(html.contains("Score by trial") && html.contains("<svg") && html.contains("Parameter influence"));
    let line = format!(
        "the best is the highest mean over both splits: trial {} with",
        j["best_trial"]
    );
    assert!(html.contains(&line), "{html}");
    let journal = std::fs::read_to_string(d.join("t.tune.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 7, "header + 6 trials");
    // The refit model predicts.
    let p = ok(d, &["predict", "--model", "t.safetensors", "--data", &iris()]);
    assert_eq!(p.lines().count(), 151);
    // The model blends re-scored trials in ranking order, with 2 networks
    // per re-scored trial in all, shared out by the selection; the
    // leaderboard marks them and gives their networks.
    let blend: Vec<String> = j["blend"].as_array().unwrap().iter().map(|t| t.to_string()).collect();
    let networks: Vec<usize> = j["blend_networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let marked: Vec<(String, usize)> = rows[1..]
        .iter()
        .filter(|r| cell(r, col("in_model")) == "true")
        .map(|r| (cell(r, col("trial")), cell(r, col("networks")).parse().unwrap()))
        .collect();
    assert_eq!(
        marked,
        blend.iter().cloned().zip(networks.iter().copied()).collect::<Vec<_>>()
    );
    let rescored: Vec<String> = rows[1..=n].iter().map(|r| cell(r, col("trial"))).collect();
    let mut rest = rescored.iter();
    assert!(
        blend.iter().all(|t| rest.any(|r| r == t)),
        "{blend:?} in order within {rescored:?}"
    );
    assert!(
        rows[n + 1..].iter().all(|r| cell(r, col("networks")) == "0"),
        "not re-scored, not in the model"
    );
    // 2 per re-scored trial in all (no time limit, so no time budget).
    let total: usize = networks.iter().sum();
    assert!(networks.iter().all(|&k| k > 0) && total == 2 * n, "{networks:?}");
    assert_eq!(j["networks"], total);
    assert_eq!(rescored[0], j["best_trial"].to_string());
    let inspect = ok(d, &["inspect", "t.safetensors"]);
    assert!(inspect.contains("training"), "{inspect}");
    let sentence = "The model averages the predictions of networks of the re-scored trials";
    assert_eq!(html.contains(sentence), blend.len() > 1, "{blend:?}");
    let greedy = "the networks were shared out by greedy selection on the trials' predictions";
    assert_eq!(html.contains(greedy), blend.len() > 1, "{html}");
    let info = last_json(&ok(d, &["inspect", "t.safetensors", "--json"]));
    let archs = info["member_architectures"].as_array().unwrap();
    assert_eq!((info["networks"].clone(), archs.len()), (total.into(), total));
    assert_eq!(archs[0], info["architecture"]);
    // A blend of several architectures is format 2; of one, an ensemble.
    let distinct = (0..archs.len()).filter(|&i| !archs[..i].contains(&archs[i])).count();
    let (kind, format) = if distinct > 1 {
        ("blend of", "format 2")
    } else {
        ("ensemble of", "format 1")
    };
    assert!(
        inspect.contains(&format!("{kind} {total} networks")) && inspect.contains(format),
        "{distinct} architectures: {inspect}"
    );
    // The model's `tune` section names the blended trials and their scores.
    let section = &info["metadata"]["tune"];
    let trials: Vec<String> = section["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trial"].to_string())
        .collect();
    assert_eq!(trials, blend);
    let per: Vec<usize> = section["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["networks"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(per, networks);
    let both_of = |t: &str| {
        rows[1..=n]
            .iter()
            .find(|r| cell(r, col("trial")) == t)
            .map(|r| cell(r, col("both")))
    };
    let first_both = section["trials"][0]["both"].as_f64().unwrap();
    assert!((first_both - both_of(&blend[0]).unwrap().parse::<f64>().unwrap()).abs() < 1e-6);
    let onnx = ok(d, &["export", "--model", "t.safetensors", "--onnx", "t.onnx"]);
    assert!(onnx.contains("Mean"), "{onnx}");
    // --blend-rule equal, read back from the journal: every re-scored
    // trial, 2 networks each; the portfolio's linear trial is among them,
    // so the architectures differ (format 2).
    let equal = tune_with(d, "6", "2", &["--blend-rule", "equal", "--overwrite"]);
    let all: Vec<String> = equal["blend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(
        (all, equal["blend_networks"].clone()),
        (rescored.clone(), vec![2; n].into())
    );
    let info = last_json(&ok(d, &["inspect", "t.safetensors", "--json"]));
    let archs = info["member_architectures"].as_array().unwrap();
    assert!(archs.iter().any(|s| s["dims"].as_array().unwrap().len() == 2), "{info}");
    let inspect = ok(d, &["inspect", "t.safetensors"]);
    assert!(inspect.contains(&format!("blend of {} networks", 2 * n)) && inspect.contains("format 2"));
    // The report says how the networks were shared out, rule by rule.
    let report = std::fs::read_to_string(d.join("t.report.html")).unwrap();
    assert!(
        report.contains("every trial got the same number of networks") && !report.contains("greedy selection"),
        "{report}"
    );
    // --blend-rule mixed: every re-scored trial at least one network, at
    // most 2n in all, the rest where the selection put them.
    let mixed = tune_with(d, "6", "2", &["--blend-rule", "mixed", "--overwrite"]);
    let mixed_networks: Vec<u64> = mixed["blend_networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(mixed["blend"].as_array().unwrap().len(), n, "{mixed}");
    assert!(mixed_networks.iter().all(|&k| k >= 1), "{mixed}");
    assert_eq!(mixed_networks.iter().sum::<u64>(), 2 * n as u64);
    // With a time limit the selection spends no more refit time than the
    // equal share: Σ networks ⋅ search seconds ≤ 2 ⋅ Σ seconds (to the
    // leaderboard's rounding), with at most 2n networks.
    let timed = tune_with(d, "6", "2", &["--time", "600", "--overwrite"]);
    let text = std::fs::read_to_string(d.join("t.leaderboard.csv")).unwrap();
    let secs = |t: &str| -> f64 {
        let r = text.lines().find(|r| cell(r, 1) == t).unwrap();
        cell(r, 7).parse().unwrap()
    };
    assert!(text.starts_with("rank,trial,accuracy,sd,folds,pruned,failed,seconds,"));
    let list = |key: &str| -> Vec<String> { timed[key].as_array().unwrap().iter().map(|v| v.to_string()).collect() };
    let (blend, nets) = (list("blend"), list("blend_networks"));
    let spent: f64 = blend
        .iter()
        .zip(&nets)
        .map(|(t, k)| k.parse::<f64>().unwrap() * secs(t))
        .sum();
    let budget: f64 = 2.0 * rescored.iter().map(|t| secs(t)).sum::<f64>();
    assert!(spent <= budget + 0.001 * (2 * n) as f64, "{spent} > {budget}: {timed}");
    assert!(nets.iter().map(|k| k.parse::<usize>().unwrap()).sum::<usize>() <= 2 * n);
    // --no-blend: the best alone, refit as `bpnet train` would (iris is a
    // small table, so 5 networks); the search is read back from the journal.
    let alone = tune_with(d, "6", "2", &["--no-blend", "--overwrite"]);
    assert_eq!(
        (alone["resumed"].clone(), alone["networks"].clone()),
        (6.into(), 5.into())
    );
    assert_eq!(alone["best_trial"], j["best_trial"]);
    let inspect = ok(d, &["inspect", "t.safetensors"]);
    assert!(
        inspect.contains("ensemble of 5") && inspect.contains("format 1"),
        "{inspect}"
    );
}

#[test]
fn results_do_not_depend_on_trials_at_once_nor_on_resuming() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let ja = tune(a.path(), "8", "1");
    let jb = tune(b.path(), "8", "3");
    assert_eq!(board(a.path()), board(b.path()));
    assert_eq!(ja["best_params"], jb["best_params"]);
    // Interrupted after 4 trials (and a cut-short line), resumed to 8.
    tune(c.path(), "4", "2");
    let journal = c.path().join("t.tune.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("{\"trial\": 4, \"par");
    std::fs::write(&journal, text).unwrap();
    let jc = tune(c.path(), "8", "2");
    assert_eq!(jc["resumed"], 4);
    assert_eq!(board(a.path()), board(c.path()));
    assert_eq!(ja["best_score"], jc["best_score"]);
    // The refit blend's networks train at once over the threads: the same
    // model (predictions to the last printed digit) on 1 and 3 threads as
    // on the default count, and after a resume.
    let predict = |dir: &Path| ok(dir, &["predict", "--model", "t.safetensors", "--data", &iris()]);
    let want = predict(a.path());
    for other in [b.path(), c.path()] {
        assert_eq!(predict(other), want);
    }
    for threads in ["1", "3"] {
        let d = tempfile::tempdir().unwrap();
        let jd = tune_with(d.path(), "8", "1", &["--threads", threads]);
        assert_eq!(board(a.path()), board(d.path()));
        assert_eq!((&ja["blend"], &ja["networks"]), (&jd["blend"], &jd["networks"]));
        assert_eq!(predict(d.path()), want, "{threads} threads");
    }
}

/// Runs `bpnet tune` in `dir` on `data` with `args` (`--cv 3 --epochs 5
/// --seed 3` unless they give those), where it must be refused for a
/// journal of another search, naming `option`, in one line, with a
/// non-zero exit and the journal `t.tune.jsonl` left as it was.
fn refused(dir: &Path, data: &str, args: &[&str], option: &str) {
    let journal = dir.join("t.tune.jsonl");
    let before = std::fs::read(&journal).unwrap();
    let mut all = vec!["tune", "--data", data, "--trials", "4", "--out", "t.safetensors"];
    for (name, value) in [("--cv", "3"), ("--epochs", "5"), ("--seed", "3")] {
        if !args.contains(&name) {
            all.extend([name, value]);
        }
    }
    all.extend_from_slice(args);
    let out = run_in(dir, &all);
    assert!(!out.status.success(), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("t.tune.jsonl") && err.contains("another search") && err.contains(&format!("({option}: ")),
        "{args:?}: {err}"
    );
    assert_eq!(std::fs::read(&journal).unwrap(), before, "{args:?}");
}

#[test]
fn a_journal_of_another_search_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tune(d, "4", "2");
    let species = |option: &'static str, value: &'static str| ["--target", "species", option, value];
    refused(d, &iris(), &species("--seed", "4"), "--seed");
    refused(d, &iris(), &species("--epochs", "6"), "--epochs");
    refused(d, &iris(), &species("--cv", "4"), "--cv");
    // Options that change every trial's score, not only the bounds.
    refused(d, &iris(), &species("--impute", "median"), "--impute");
    refused(d, &iris(), &species("--impute", "none"), "--impute");
    refused(d, &iris(), &["--target", "petal_width"], "--target");
    // The same search with other bounds, trials at once or refit is resumed.
    let again = tune_with(
        d,
        "4",
        "1",
        &[
            "--confirm",
            "1",
            "--blend-rule",
            "equal",
            "--threads",
            "1",
            "--time",
            "600",
            "--overwrite",
        ],
    );
    assert_eq!(again["resumed"], 4);
    // A numeric target of two values: classified unless --task regress,
    // which scores R² on the same column; --task classify is the same search.
    let diabetes = format!("{ROOT}/data/diabetes.csv");
    let args = |extra: &[&'static str]| -> Vec<String> {
        let mut all = vec![
            "tune", "--data", &diabetes, "--target", "sex", "--trials", "4", "--cv", "3",
        ];
        all.extend(["--epochs", "5", "--seed", "3", "--out", "t.safetensors", "--json"]);
        all.extend_from_slice(extra);
        all.into_iter().map(String::from).collect()
    };
    let run = |dir: &Path, extra: &[&'static str]| {
        let all = args(extra);
        last_json(&ok(dir, &all.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    let other = tempfile::tempdir().unwrap();
    let o = other.path();
    assert_eq!(run(o, &[])["metric"], "accuracy");
    refused(o, &diabetes, &["--target", "sex", "--task", "regress"], "--task");
    let same = run(o, &["--task", "classify", "--overwrite"]);
    assert_eq!(
        (same["resumed"].clone(), same["metric"].clone()),
        (4.into(), "accuracy".into())
    );
    // The same path with other contents (one row more) is another search.
    let third = tempfile::tempdir().unwrap();
    let t = third.path();
    let copy = t.join("iris.csv");
    std::fs::copy(iris(), &copy).unwrap();
    let copy = copy.to_string_lossy().into_owned();
    let first = |extra: &[&str]| {
        let base = [
            "tune", "--data", &copy, "--target", "species", "--trials", "4", "--cv", "3",
        ];
        let rest = ["--epochs", "5", "--seed", "3", "--out", "t.safetensors", "--json"];
        last_json(&ok(t, &[&base[..], &rest[..], extra].concat()))
    };
    first(&[]);
    assert_eq!(first(&["--overwrite"])["resumed"], 4, "the unchanged file resumes");
    let mut text = std::fs::read_to_string(&copy).unwrap();
    text += "5.0,3.4,1.5,0.2,setosa\n";
    std::fs::write(&copy, text).unwrap();
    refused(t, &copy, &["--target", "species"], "--data's contents (SHA-256)");
}

/// A journaled trial that the search cannot have written is refused in one
/// line naming its line (an edited score, no folds, more folds than --cv, a
/// negative time and a repeated trial were used as they stood: the
/// leaderboard showed them, NaN, or the time budget panicked); the journal
/// is left as it was. A --time past 1e9 s is refused (1e19 s panicked).
#[test]
fn an_edited_journal_line_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tune(d, "4", "1");
    let path = d.join("t.tune.jsonl");
    let good = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let mut trial: Value = serde_json::from_str(lines[2]).unwrap();
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: [(&str, Edit); 5] = [
        (
            "a score of 0.99 where its folds give",
            Box::new(|t| t["score"] = 0.99.into()),
        ),
        (
            "0 fold scores for --cv 3",
            Box::new(|t| t["folds"] = serde_json::json!([])),
        ),
        (
            "4 fold scores for --cv 3",
            Box::new(|t| t["folds"].as_array_mut().unwrap().push(0.5.into())),
        ),
        ("a time of -5 seconds", Box::new(|t| t["seconds"] = (-5.0).into())),
        ("is journaled twice", Box::new(|t| t["trial"] = 0.into())),
    ];
    for (want, edit) in edits {
        let original = trial.clone();
        edit(&mut trial);
        let mut text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        text[2] = trial.to_string();
        trial = original;
        let text = text.join("\n") + "\n";
        std::fs::write(&path, &text).unwrap();
        let out = run_in(
            d,
            &[
                "tune",
                "--data",
                &iris(),
                "--target",
                "species",
                "--trials",
                "4",
                "--cv",
                "3",
                "--epochs",
                "5",
                "--seed",
                "3",
                "--out",
                "t.safetensors",
                "--overwrite",
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.trim().lines().count() == 1,
            "{want}: {err}"
        );
        assert!(
            err.contains("t.tune.jsonl: line 3: ") && err.contains(want),
            "{want}: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "{want}: the journal is kept"
        );
    }
    let out = run_in(
        d,
        &["tune", "--data", &iris(), "--time", "1e19", "--out", "u.safetensors"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("more than 1e9 seconds"), "{err}");
}

#[test]
fn confirm_1_rescores_the_best_with_the_portfolio_and_0_none() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 8 trials, then read back with --confirm 1 and --confirm 0.
    tune_with(d, "8", "2", &["--confirm", "1"]);
    let text = std::fs::read_to_string(d.join("t.leaderboard.csv")).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let col = |name: &str| rows[0].iter().position(|h| *h == name).unwrap();
    let (trial, score, pruned, failed, rescored) = (
        col("trial"),
        col("accuracy"),
        col("pruned"),
        col("failed"),
        col("rescored"),
    );
    let complete: Vec<&Vec<&str>> = rows[1..]
        .iter()
        .filter(|r| r[pruned] == "false" && r[failed].is_empty())
        .collect();
    let number = |r: &Vec<&str>| r[trial].parse::<usize>().unwrap();
    let top = complete
        .iter()
        .map(|r| r[score].parse::<f64>().unwrap())
        .fold(f64::NEG_INFINITY, f64::max);
    let again: Vec<&Vec<&str>> = rows[1..].iter().filter(|r| !r[rescored].is_empty()).collect();
    // The complete portfolio trials and at most one other, the best by the
    // search's score (when the best is not the portfolio's own).
    let mut portfolio: Vec<usize> = complete.iter().map(|r| number(r)).filter(|&t| t < 4).collect();
    portfolio.sort();
    let mut got: Vec<usize> = again.iter().map(|r| number(r)).collect();
    got.sort();
    let beyond: Vec<&&Vec<&str>> = again.iter().filter(|r| number(r) >= 4).collect();
    assert!(portfolio.len() >= 2 && beyond.len() <= 1, "{got:?}");
    assert_eq!(got.iter().filter(|&&t| t < 4).copied().collect::<Vec<_>>(), portfolio);
    let best_of = |rs: &[&Vec<&str>]| {
        rs.iter()
            .map(|r| r[score].parse::<f64>().unwrap())
            .fold(f64::NEG_INFINITY, f64::max)
    };
    match beyond.first() {
        Some(r) => assert_eq!(r[score].parse::<f64>().unwrap(), top, "{got:?}"),
        None => assert_eq!(best_of(&again), top, "{got:?}"),
    }
    // --confirm 0: none re-scored, and the best is the search's.
    let j = tune_with(d, "8", "2", &["--confirm", "0", "--overwrite"]);
    let text = std::fs::read_to_string(d.join("t.leaderboard.csv")).unwrap();
    assert!(
        text.lines().skip(1).all(|l| l.split(',').nth(rescored) == Some("")),
        "{text}"
    );
    assert!((j["best_score"].as_f64().unwrap() - top).abs() < 1e-6, "{j}");
    assert!(j["best_confirm"].as_array().unwrap().is_empty(), "{j}");
}

#[test]
fn a_rerun_with_fewer_trials_counts_only_the_trials_it_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(tune(d, "8", "2")["resumed"], 0);
    let j = tune_with(d, "4", "2", &["--overwrite"]);
    assert_eq!((j["trials"].clone(), j["resumed"].clone()), (4.into(), 4.into()), "{j}");
    let html = std::fs::read_to_string(d.join("t.report.html")).unwrap();
    assert!(
        html.contains("4 trials (") && html.contains(", 4 read back from the journal)"),
        "{html}"
    );
    // The journal keeps all 8 for a longer rerun.
    let journal = std::fs::read_to_string(d.join("t.tune.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 9, "header + 8 trials");
}

#[test]
fn a_search_bounded_by_time_alone_writes_consistent_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = iris();
    let args = [
        "tune",
        "--data",
        &data,
        "--target",
        "species",
        "--time",
        "5",
        "--cv",
        "3",
        "--epochs",
        "5",
        "--parallel",
        "2",
        "--out",
        "t.safetensors",
        "--json",
    ];
    let j = last_json(&ok(d, &args));
    let n = j["trials"].as_u64().unwrap() as usize;
    assert!(n >= 1 && j["resumed"] == 0, "{j}");
    // The leaderboard and the journal hold the same trials, every one run.
    let rows = board(d);
    assert_eq!(rows.len(), n + 1, "{rows:?}");
    let mut listed: Vec<u64> = rows[1..]
        .iter()
        .map(|r| r.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    listed.sort();
    let journal = std::fs::read_to_string(d.join("t.tune.jsonl")).unwrap();
    let mut journaled: Vec<u64> = journal
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["trial"].as_u64().unwrap())
        .collect();
    journaled.sort();
    assert_eq!(journaled, listed);
    assert!(rows[1].starts_with(&format!("1,{},", j["best_trial"])), "{}", rows[1]);
    let p = ok(d, &["predict", "--model", "t.safetensors", "--data", &data]);
    assert_eq!(p.lines().count(), 151);
}

#[test]
fn a_regression_search_scores_r2_and_predicts_in_the_targets_units() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = format!("{ROOT}/data/diabetes.csv");
    let args = [
        "tune",
        "--data",
        &data,
        "--trials",
        "6",
        "--cv",
        "3",
        "--epochs",
        "5",
        "--seed",
        "3",
        "--out",
        "t.safetensors",
        "--json",
    ];
    let printed = ok(d, &args);
    let j = last_json(&printed);
    assert_eq!((j["metric"].clone(), j["trials"].clone()), ("r2".into(), 6.into()));
    // The refit trains on 90% of the rows and stops early on the rest.
    assert!(
        printed.contains(" on all 442 rows (398 trained on, 44 for early stopping)"),
        "{printed}"
    );
    let rows = board(d);
    assert!(rows[0].starts_with("rank,trial,r2,sd,"), "{}", rows[0]);
    // The best trial's R² over both splits' folds is better than the mean's.
    assert!(j["best_combined"].as_f64().unwrap() > 0.0, "{j}");
    // Predictions in the target's units (disease progression, 25-346):
    // their mean near the target's, and R² on the rows above 0.
    let truth: Vec<f64> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let out = ok(d, &["predict", "--model", "t.safetensors", "--data", &data]);
    let predicted: Vec<f64> = out.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    assert_eq!(
        (out.lines().next(), predicted.len()),
        (Some("progression"), truth.len())
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let m = mean(&truth);
    assert!((mean(&predicted) - m).abs() < 0.1 * m, "{} vs {m}", mean(&predicted));
    let sse: f64 = predicted.iter().zip(&truth).map(|(p, t)| (p - t).powi(2)).sum();
    let sst: f64 = truth.iter().map(|t| (t - m).powi(2)).sum();
    assert!(1.0 - sse / sst > 0.0, "R² {}", 1.0 - sse / sst);
}

/// A fold's R² of -1e11 (one outlier in a held-out fold) counts as -10 in
/// the trial's score, and the outputs say so: the leaderboard's `floored`
/// column, the trial's line, the report. Where every trial fails alike (a
/// column with no value), the error is that failure's, not advice to give
/// more trials.
#[test]
fn floored_folds_and_failed_trials_are_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("a,b,y\n");
    for i in 0..40 {
        let a = (i % 13) as f64 / 13.0;
        let y = if i == 7 { 1e6 } else { a + 0.01 * (i % 5) as f64 };
        csv += &format!("{a},{},{y}\n", (i * 7 % 11) as f64);
    }
    std::fs::write(d.join("outlier.csv"), &csv).unwrap();
    let args = [
        "tune",
        "--data",
        "outlier.csv",
        "--trials",
        "2",
        "--cv",
        "2",
        "--epochs",
        "3",
        "--seed",
        "1",
        "--out",
        "o.safetensors",
    ];
    let said = ok(d, &args);
    assert!(said.contains("fold(s) below -10 counted as -10"), "{said}");
    let board = std::fs::read_to_string(d.join("o.leaderboard.csv")).unwrap();
    let header: Vec<&str> = board.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "floored").unwrap();
    let floored: Vec<usize> = board
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    assert!(floored.iter().any(|&n| n > 0), "{board}");
    let report = std::fs::read_to_string(d.join("o.report.html")).unwrap();
    assert!(
        report.contains("counts as -10 in a trial") && report.contains("n/a"),
        "no floor note"
    );
    // A column without a value fails on all rows: refused before the
    // search, naming it, with no journal.
    let with_e = |value_at: Option<usize>| -> String {
        csv.lines()
            .enumerate()
            .map(|(i, l)| match (i, value_at) {
                (0, _) => format!("{l},e\n"),
                (i, Some(at)) if i == at => format!("{l},1.5\n"),
                _ => format!("{l},\n"),
            })
            .collect()
    };
    std::fs::write(d.join("empty.csv"), with_e(None)).unwrap();
    let args = [
        "tune",
        "--data",
        "empty.csv",
        "--target",
        "y",
        "--trials",
        "2",
        "--cv",
        "2",
        "--epochs",
        "3",
        "--out",
        "e.safetensors",
    ];
    let out = run_in(d, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("empty.csv: line 2, column 'e': every training value is missing"),
        "{err}"
    );
    assert!(!d.join("e.tune.jsonl").exists());
    // One value: the fold that holds its row out has none to train on, so
    // every trial fails there (the rows as a whole do not).
    std::fs::write(d.join("empty.csv"), with_e(Some(5))).unwrap();
    let out = run_in(d, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.lines().count() == 1, "{err}");
    assert!(
        err.contains("every trial failed") && err.contains("the first with:") && err.contains("'e'"),
        "{err}"
    );
    // With --time the search stops once the portfolio's four trials failed
    // alike (it had started failing trials until the deadline: 720 in 5 s).
    let timed = [
        &args[..5],
        &["--time", "3600", "--cv", "2", "--epochs", "3", "--out", "t.safetensors"],
    ]
    .concat();
    let out = run_in(d, &timed);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("every trial failed (4)"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("t.tune.jsonl")).unwrap().lines().count(),
        5
    );
}

/// `tune` reads files as `train` does: `--delimiter`, `--header`,
/// `--no-header` (it had none of them; a `;` file failed on a class of one
/// row, its whole line read as one cell).
#[test]
fn tune_reads_other_delimiters_and_headerless_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(iris()).unwrap();
    std::fs::write(d.join("semi.csv"), text.replace(',', ";")).unwrap();
    let body: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("bare.csv"), body).unwrap();
    for (file, out, extra) in [
        ("semi.csv", "s.safetensors", ["--delimiter", ";"]),
        ("bare.csv", "b.safetensors", ["--no-header", "--quiet"]),
    ] {
        let head = [
            "tune", "--data", file, "--trials", "2", "--cv", "2", "--epochs", "3", "--out", out,
        ];
        ok(d, &[&head[..], &extra].concat());
        let p = ok(d, &["predict", "--model", out, "--data", file]);
        assert_eq!(p.lines().count(), 151, "{file}: {p}");
    }
}

/// What the data makes every trial fail on is refused before the search,
/// in one line, with no journal left (each trial had printed the failure
/// and the journal of failures was refused as another search's once the
/// file was mended); a lone missing label names its line (it read as a
/// class '' of one row, "class '' has one training row").
#[test]
fn data_every_trial_would_fail_on_is_refused_before_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(iris()).unwrap();
    let setosa: Vec<&str> = text.lines().take(31).collect();
    std::fs::write(d.join("one.csv"), setosa.join("\n") + "\n").unwrap();
    std::fs::write(d.join("gap.csv"), "x,y\n1,a\n2,\n3,b\n4,a\n5,b\n6,a\n7,b\n8,a\n").unwrap();
    for (file, want) in [
        ("one.csv", "one.csv: line 2, column 'species': only one class 'setosa'"),
        ("gap.csv", "gap.csv: line 3, column 'y': missing target value"),
    ] {
        let args = [
            "tune",
            "--data",
            file,
            "--trials",
            "4",
            "--cv",
            "2",
            "--epochs",
            "2",
            "--out",
            "m.safetensors",
        ];
        let out = run_in(d, &args);
        let err = common::text(&out.stderr);
        assert!(!out.status.success() && err.trim().lines().count() == 1, "{err}");
        assert!(err.contains(want), "{err}");
        let said = common::text(&out.stdout);
        assert!(
            !said.lines().any(|l| l.trim_start().starts_with("trial")),
            "a trial ran: {said}"
        );
        assert!(!d.join("m.tune.jsonl").exists(), "{file}: a journal was left");
    }
    // Mended, the same command runs.
    std::fs::copy(iris(), d.join("one.csv")).unwrap();
    ok(
        d,
        &[
            "tune",
            "--data",
            "one.csv",
            "--trials",
            "2",
            "--cv",
            "2",
            "--epochs",
            "2",
            "--out",
            "m.safetensors",
            "--quiet",
        ],
    );
}

/// A data file changed while the search runs is refused before the refit
/// (which read the file again and trained on other rows than the trials
/// were scored on, exit 0), and nothing is written.
#[test]
fn a_data_file_changed_during_the_search_is_refused_before_the_refit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(iris(), d.join("mid.csv")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args([
            "tune",
            "--data",
            "mid.csv",
            "--target",
            "species",
            "--trials",
            "30",
            "--cv",
            "3",
            "--epochs",
            "10",
            "--parallel",
            "1",
            "--out",
            "m.safetensors",
            "--quiet",
        ])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first trial is journaled (the search has read the file).
    let journal = d.join("m.tune.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&journal).map_or(0, |j| j.lines().count()) < 2 {
        assert!(start.elapsed().as_secs() < 300, "no trial journaled");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let text = std::fs::read_to_string(iris()).unwrap();
    let head: Vec<&str> = text.lines().take(61).collect();
    std::fs::write(d.join("mid.csv"), head.join("\n") + "\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = common::text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("invalid --data: mid.csv changed during the search (SHA-256 "),
        "{err}"
    );
    assert!(err.contains("remove m.tune.jsonl"), "{err}");
    for f in ["m.safetensors", "m.leaderboard.csv", "m.report.html"] {
        assert!(!d.join(f).exists(), "{f} was written");
    }
}

/// A page of the user's own at `NAME.report.html` is refused without
/// `--overwrite` (any HTML page had been taken for tune's report and
/// replaced); tune's own report from an earlier run is replaced.
#[test]
fn a_users_own_page_at_the_reports_name_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let page = "<!DOCTYPE html><html><head><title>My notes</title></head><body>mine</body></html>\n";
    std::fs::write(d.join("m.report.html"), page).unwrap();
    let data = iris();
    let args = [
        "tune",
        "--data",
        &data,
        "--trials",
        "2",
        "--cv",
        "2",
        "--epochs",
        "2",
        "--out",
        "m.safetensors",
        "--quiet",
    ];
    let out = run_in(d, &args);
    let err = common::text(&out.stderr);
    assert!(!out.status.success() && err.trim().lines().count() == 1, "{err}");
    assert!(
        err.contains("m.report.html (the report) exists and holds an HTML page not written by bpnet"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(d.join("m.report.html")).unwrap(), page);
    assert!(!d.join("m.tune.jsonl").exists());
    ok(d, &[&args[..], &["--overwrite"]].concat());
    assert!(
        std::fs::read_to_string(d.join("m.report.html"))
            .unwrap()
            .contains("<title>bpnet tune")
    );
    ok(d, &args);
}

/// The result is printed, with `--quiet` too (it printed nothing): the
/// best trial, its metric and score as the JSON summary gives them, and
/// the files; `--parallel` above a group of 4 says 4 at once (it said 500).
#[test]
fn the_result_is_printed_with_quiet_too_and_parallel_says_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = iris();
    let args = [
        "tune",
        "--data",
        &data,
        "--trials",
        "6",
        "--cv",
        "2",
        "--epochs",
        "3",
        "--out",
        "q.safetensors",
        "--seed",
        "2",
    ];
    let quiet = ok(d, &[&args[..], &["--quiet", "--parallel", "500"]].concat());
    let lines: Vec<&str> = quiet.lines().collect();
    assert_eq!(lines.len(), 2, "{quiet}");
    assert_eq!(lines[1], "wrote q.safetensors, q.leaderboard.csv, q.report.html");
    let loud = ok(d, &[&args[..], &["--parallel", "500", "--json"]].concat());
    assert!(loud.contains(", 4 trial(s) at once, seed 2;"), "{loud}");
    let j = last_json(&loud);
    let score = j["best_combined"].as_f64().or(j["best_score"].as_f64()).unwrap();
    let want = format!(
        "best: trial {}, accuracy {score:.4} (mean of its 2 folds",
        j["best_trial"]
    );
    assert!(lines[0].starts_with(&want), "{} vs {want}", lines[0]);
    // The rerun read every trial back from the journal, and says so.
    assert!(loud.contains("; 6 of 6 trials read back from the journal\n"), "{loud}");
    // Each trial read back is marked as such (they printed like trials run
    // now, with the earlier run's times); re-scoring runs anew.
    let trial_lines = |out: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with("trial ") && !l.contains("best epochs"))
            .map(str::to_string)
            .collect()
    };
    let read = trial_lines(&loud);
    assert_eq!(read.len(), 6, "{loud}");
    assert!(read.iter().all(|l| l.ends_with(" s) from the journal")), "{loud}");
    assert!(
        loud.lines()
            .filter(|l| l.starts_with("re-scored"))
            .all(|l| !l.contains("journal")),
        "{loud}"
    );
    let mut more = args.to_vec();
    more[4] = "8";
    let grown = ok(d, &more);
    let lines = trial_lines(&grown);
    let journal = |t: usize| {
        lines
            .iter()
            .any(|l| l.starts_with(&format!("trial {t:>3}: ")) && l.ends_with("from the journal"))
    };
    let fresh = |t: usize| {
        lines
            .iter()
            .any(|l| l.starts_with(&format!("trial {t:>3}: ")) && l.ends_with(" s)"))
    };
    assert!((0..6).all(journal) && (6..8).all(fresh), "{grown}");
    assert!(
        grown.contains("; 6 of 8 trials read back from the journal\n"),
        "{grown}"
    );
}

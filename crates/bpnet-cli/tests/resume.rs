//! Checkpoints and resume: a run killed with SIGKILL at random moments always
//! leaves a loadable checkpoint, and resuming from it ends bit-identical to
//! the uninterrupted run (weights, running statistics and counts, and the
//! history but for wall-clock seconds); the divergence guard stops (or skips)
//! cleanly. tests/resume_exact.rs checks every optimizer and every part of the
//! state after every step.

use bpnet::data::Dataset;
use bpnet::io::{load_model, load_run};
use bpnet::train::schedule::Schedule;
use bpnet::train::{FitConfig, Monitor, OnNan, fit};
use bpnet::{Error, Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Trainer};
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Dropout, BN, Adam, a plateau schedule, early stopping and diagnostics:
/// every kind of state a resume must carry (the diagnostics of the epochs
/// before the checkpoint were lost).
fn args(out: &str, epochs: &str) -> Vec<String> {
    let wine = format!("{ROOT}/data/wine.csv");
    [
        "train",
        "--data",
        &wine,
        "--hidden",
        "32,16",
        "--dropout",
        "0.2",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--schedule",
        "plateau:2:0.5",
        "--patience",
        "6",
        "--epochs",
        epochs,
        "--batch-size",
        "16",
        "--val-split",
        "0.2",
        "--seed",
        "3",
        "--checkpoint-steps",
        "3",
        "--checkpoint-every",
        "1",
        "--diagnostics",
        "--quiet",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn bpnet(dir: &Path, args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpnet"));
    c.args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn run_ok(dir: &Path, args: &[String]) {
    let out = bpnet(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every tensor of a model file as raw bits, by name.
fn bits(path: &Path) -> Vec<(String, Vec<u32>)> {
    let f = load_model(path).unwrap();
    let mut out = Vec::new();
    let mut m = f.model;
    m.visit_params(&mut |p| out.push((p.name.clone(), p.value.as_slice().iter().map(|v| v.to_bits()).collect())));
    for l in m.layers() {
        if let bpnet::Layer::BatchNorm(bn) = l {
            let mut v: Vec<u32> = bn
                .running
                .mean
                .iter()
                .chain(&bn.running.var)
                .map(|v| v.to_bits())
                .collect();
            let count = bn.running.batches;
            v.extend([count as u32, (count >> 32) as u32]);
            out.push((format!("{}.running", bn.path()), v));
        }
    }
    out
}

/// The history a run wrote next to its model, without the wall-clock seconds.
fn history(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for r in doc["epochs"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("seconds");
    }
    doc
}

fn kill_after(mut child: Child, delay: Duration) {
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL on unix
    child.wait().unwrap();
}

#[test]
fn killed_runs_leave_valid_checkpoints_and_resume_bit_identically() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let t0 = Instant::now();
    run_ok(d, &args("ref.safetensors", "60"));
    // Kill moments scale with how long a whole run takes on this machine.
    let mut whole = t0.elapsed().as_micros() as u64;
    let reference = bits(&d.join("ref.safetensors"));
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let final_step = load_run(&d.join("ref.ckpt.safetensors")).unwrap().resume.state.step;
    let (mut loaded, mut resumed, mut mid_run) = (0, 0, 0);
    for round in 0..20 {
        let ckpt = d.join("run.ckpt.safetensors");
        let _ = std::fs::remove_file(&ckpt);
        let _ = std::fs::remove_file(d.join("run.safetensors"));
        let child = bpnet(d, &args("run.safetensors", "60")).spawn().unwrap();
        let start = Instant::now();
        // Wait for a first checkpoint (or a little), then kill at a random moment.
        while !ckpt.exists() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(1));
        }
        kill_after(child, Duration::from_micros(rng.random_range(0..whole * 6 / 10)));
        if !ckpt.exists() {
            continue;
        }
        let run = load_run(&ckpt).unwrap_or_else(|e| panic!("round {round}: checkpoint does not load: {e}"));
        loaded += 1;
        // Every fifth round, and any round that stopped mid-run while fewer
        // than two such resumes have been checked (on a machine whose load
        // changes, the kill moments drawn from the first run's time can all
        // land after the end).
        let step = run.resume.state.step;
        if step == final_step {
            // The run ended before the kill: draw later kills earlier.
            whole = (whole * 3 / 4).max(1);
        }
        if round % 5 == 0 || (mid_run < 2 && step < final_step) {
            let mut resume = vec!["train".to_string(), "--resume".into(), "run.ckpt.safetensors".into()];
            resume.extend(["--out".into(), "resumed.safetensors".into(), "--quiet".into()]);
            run_ok(d, &resume);
            assert_eq!(
                bits(&d.join("resumed.safetensors")),
                reference,
                "round {round}: resumed at step {step}"
            );
            assert_eq!(
                history(&d.join("resumed.history.json")),
                history(&d.join("ref.history.json")),
                "round {round}: history resumed at step {step}"
            );
            let csv = |name: &str| std::fs::read(d.join(name)).unwrap();
            assert!(
                csv("resumed.diagnostics.csv") == csv("ref.diagnostics.csv"),
                "round {round}: diagnostics resumed at step {step}"
            );
            println!("round {round}: resumed at step {step} of {final_step}: bit-identical");
            resumed += 1;
            mid_run += usize::from(step < final_step);
        }
    }
    println!("{loaded} checkpoints loaded after SIGKILL, {resumed} resumed bit-identically");
    assert!(loaded >= 14, "only {loaded} of 20 killed runs had written a checkpoint");
    assert!(
        resumed >= 2 && mid_run >= 2,
        "{resumed} resumed, {mid_run} of them before the end"
    );
}

fn data_with_a_nan_row() -> Dataset {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(4);
    let mut x: Vec<f32> = (0..64 * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
    x[5 * 3] = f32::NAN;
    let y = (0..64).map(|i| i % 2).collect();
    Dataset::new(Matrix::from_vec(64, 3, x).unwrap(), y, 2).unwrap()
}

fn trainer() -> Trainer<f32> {
    let spec = ModelSpec {
        dims: vec![3, 8, 2],
        ..ModelSpec::paper_mnist(true, 0.5)
    };
    let model = Sequential::from_spec(&spec, 1).unwrap();
    Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::sgd(0.1)).unwrap(),
        Loss::CrossEntropy,
    )
}

fn config(on_nan: OnNan) -> FitConfig {
    FitConfig {
        epochs: 3,
        steps: None,
        batch_size: Some(8),
        schedule: Schedule::Constant,
        monitor: Monitor::ValLoss,
        early_stopping: None,
        seed: 2,
        on_nan,
        checkpoint_epochs: 0,
        checkpoint_steps: 0,
    }
}

fn all_finite(t: &mut Trainer<f32>) -> bool {
    let mut ok = true;
    t.model
        .visit_params(&mut |p| ok &= p.value.as_slice().iter().all(|v| v.is_finite()));
    let mut buf = Vec::new();
    t.model.save_running(&mut buf);
    ok && buf.iter().all(|v| v.is_finite())
}

#[test]
fn divergence_stops_with_the_step_and_layer_and_keeps_good_weights() {
    let data = data_with_a_nan_row();
    let mut t = trainer();
    let err = fit(&mut t, &data, None, &config(OnNan::Stop), &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { step, detail } = &err else {
        panic!("{err:?}")
    };
    assert!(
        *step >= 1 && *step <= 8,
        "the NaN row is in the first epoch: step {step}"
    );
    assert!(detail.contains("layers.0") && detail.contains("NaN"), "{detail}");
    // The NaN is the data's: the weights kept are not blamed.
    assert!(!detail.contains("from finite inputs"), "{detail}");
    assert!(err.to_string().contains("lower learning rate"), "{err}");
    assert!(
        all_finite(&mut t),
        "weights and running statistics from before the bad step"
    );
}

/// `skip-batch` skips at most 10 bad batches in a row: on data where every
/// batch holds a NaN, steps 1 to 10 are skipped and step 11 stops training
/// as `stop` would, saying so; the weights stay those from before.
#[test]
fn skip_batch_policy_stops_at_the_eleventh_bad_batch_in_a_row() {
    let mut data = data_with_a_nan_row();
    for r in 0..64 {
        data.features.row_mut(r)[r % 3] = f32::NAN;
    }
    let mut t = trainer();
    let mut before = Vec::new();
    t.model
        .visit_params(&mut |p| before.extend(p.value.as_slice().iter().map(|v| v.to_bits())));
    let err = fit(&mut t, &data, None, &config(OnNan::SkipBatch), &mut |_| Ok(())).unwrap_err();
    let Error::Diverged { step, detail } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*step, 11, "{detail}");
    assert!(detail.contains("(10 batches in a row skipped)"), "{detail}");
    // Its advice leaves out skip-batch, which the run used.
    let text = err.to_string();
    assert!(
        text.contains("gradient clipping") && !text.contains("skip-batch"),
        "{text}"
    );
    let other = Error::Diverged {
        step: 3,
        detail: "loss is NaN".into(),
    };
    assert!(other.to_string().ends_with("or --on-nan skip-batch"), "{other}");
    let mut after = Vec::new();
    t.model
        .visit_params(&mut |p| after.extend(p.value.as_slice().iter().map(|v| v.to_bits())));
    assert!(before == after, "a skipped batch changed the weights");
    assert!(all_finite(&mut t));
}

#[test]
fn skip_batch_policy_trains_past_a_bad_batch() {
    let data = data_with_a_nan_row();
    let mut t = trainer();
    let h = fit(&mut t, &data, None, &config(OnNan::SkipBatch), &mut |_| Ok(())).unwrap();
    let skipped = h.notes.iter().filter(|n| n.contains("skipped the batch")).count();
    assert_eq!(skipped, 3, "one bad batch per epoch: {:?}", h.notes);
    assert!(all_finite(&mut t));
    assert!(h.epochs.iter().all(|r| r.train_loss.is_finite()));
}

/// An ensemble whose second member diverges while its first trains: the
/// error names the member and its seed, the member that trained is saved
/// (the bits of the same seed trained alone), and an existing model is
/// left as it was. Divergence at learning rate 30 depends on the seed; the
/// test finds a seed pair (first trains, second diverges) by running them
/// alone first, so it does not depend on which seeds those are. No
/// validation rows: they are drawn by the run's seed, so a member (whose
/// rows are drawn by the ensemble's seed) would not train as its seed
/// alone does.
#[test]
fn an_ensemble_member_that_diverges_keeps_the_others_and_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let wine = format!("{ROOT}/data/wine.csv");
    let args = |seed: u64, k: usize, out: &str| -> Vec<String> {
        let a = [
            "train",
            "--data",
            &wine,
            "--no-batch-norm",
            "--optimizer",
            "sgd",
            "--lr",
            "30",
            "--val-split",
            "0",
        ];
        let k = k.to_string();
        let seed = seed.to_string();
        let b = [
            "--epochs",
            "5",
            "--quiet",
            "--ensemble",
            &k,
            "--seed",
            &seed,
            "--out",
            out,
        ];
        a.iter().chain(b.iter()).map(|s| s.to_string()).collect()
    };
    let trains = |seed: u64| {
        let out = format!("alone{seed}.safetensors");
        bpnet(dir.path(), &args(seed, 1, &out))
            .output()
            .unwrap()
            .status
            .success()
    };
    let alone: Vec<bool> = (0..10).map(trains).collect();
    let seed = (0..9)
        .find(|&s| alone[s] && !alone[s + 1])
        .unwrap_or_else(|| panic!("no seed trains with a next that diverges: {alone:?}")) as u64;
    let out = bpnet(dir.path(), &args(seed, 2, "model.safetensors")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.lines().count() == 1
            && stderr.contains("training diverged at step")
            && stderr.contains(&format!("ensemble member 2/2 (seed {}): ", seed + 1))
            && stderr.contains("the one member of 2 that trained was saved to model.safetensors"),
        "{stderr}"
    );
    let kept = load_model(&dir.path().join("model.safetensors")).unwrap();
    let single = load_model(&dir.path().join(format!("alone{seed}.safetensors"))).unwrap();
    let weights = |mut m: Sequential<f32>| {
        let mut bits = Vec::new();
        m.visit_params(&mut |p| bits.extend(p.value.as_slice().iter().map(|v| v.to_bits())));
        bits
    };
    assert!(
        weights(kept.model) == weights(single.model),
        "the kept member is not the seed's network"
    );
    // Saved with the first member's history, as a finished ensemble is,
    // the divergence a note (it was saved without a history).
    let json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (history, alone_history) = (json("model.history.json"), json(&format!("alone{seed}.history.json")));
    let losses = |h: &serde_json::Value| -> Vec<f64> {
        h["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["train_loss"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(losses(&history).len(), 5, "{history}");
    assert_eq!(losses(&history), losses(&alone_history));
    let notes = history["notes"].to_string();
    assert!(notes.contains("ensemble member 2/2 (seed "), "{notes}");
    assert!(dir.path().join("model.history.csv").exists());
    let before = std::fs::read(dir.path().join("model.safetensors")).unwrap();
    let out = bpnet(dir.path(), &args(seed, 2, "model.safetensors")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("; model.safetensors was left as it was"),
        "{stderr}"
    );
    assert!(std::fs::read(dir.path().join("model.safetensors")).unwrap() == before);
    // The first member diverging: named as a later one is, and what is
    // saved is said to be one network (the error named no member).
    let first = (0..10).find(|&s| !alone[s]).expect("a seed that diverges alone") as u64;
    let out = bpnet(dir.path(), &args(first, 2, "first.safetensors"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.lines().count() == 1
            && stderr.contains(&format!("ensemble member 1/2 (seed {first}): "))
            && stderr.contains(
                "member 1's weights from before this step were saved as one network (member 2 was not trained) to \
                 first.safetensors"
            ),
        "{stderr}"
    );
    let saved = load_model(&dir.path().join("first.safetensors")).unwrap();
    assert!(saved.metadata.get(bpnet::io::ENSEMBLE_KEY).is_none(), "one network");
    assert!(dir.path().join("first.history.json").exists());
}

#[test]
fn cli_divergence_writes_the_last_good_model_and_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let wine = format!("{ROOT}/data/wine.csv");
    let a: Vec<String> = [
        "train",
        "--data",
        &wine,
        "--no-batch-norm",
        "--optimizer",
        "sgd",
        "--lr",
        "1e30",
        "--epochs",
        "5",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = bpnet(dir.path(), &a).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // The default ensemble's first member diverges: named, and its kept
    // weights saved as one network.
    assert!(
        stderr.contains("training diverged at step")
            && stderr.contains("ensemble member 1/5 (seed 0): ")
            && stderr.contains("layers.")
            && stderr.contains(
                "member 1's weights from before this step were saved as one network (members 2-5 were not trained) \
                 to model.safetensors"
            ),
        "{stderr}"
    );
    // Finite data: the weights themselves overflow, and the error says the
    // ones kept already do (it called them the last good weights).
    assert!(
        stderr.contains(", from finite inputs: an earlier update went wrong, and the weights kept already give it;"),
        "{stderr}"
    );
    let f = load_model(&dir.path().join("model.safetensors")).unwrap();
    let mut m = f.model;
    let mut finite = true;
    m.visit_params(&mut |p| finite &= p.value.as_slice().iter().all(|v| v.is_finite()));
    assert!(finite);
    // Over an existing model (a good one, here trained first) a diverged
    // run writes nothing and says so.
    let mut good: Vec<String> = a.iter().filter(|s| *s != "1e30" && *s != "--lr").cloned().collect();
    let epochs = good.iter().position(|s| s == "--epochs").unwrap();
    good[epochs + 1] = "1".into();
    let out = bpnet(dir.path(), &good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = ["model.safetensors", "model.history.csv", "model.history.json"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
    // In memory and streamed alike.
    let streamed: Vec<String> = a.iter().cloned().chain(["--stream".to_string()]).collect();
    for args in [&a, &streamed] {
        let out = bpnet(dir.path(), args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.lines().count() == 1
                && stderr.contains("training diverged at step")
                && stderr.contains("; model.safetensors was left as it was"),
            "{args:?}: {stderr}"
        );
        for (f, b) in files.iter().zip(&before) {
            assert!(
                std::fs::read(dir.path().join(f)).unwrap() == *b,
                "{args:?}: {f} changed"
            );
        }
    }
}

/// SGD at 1e6 on iris: a batch's variance passes f32's range at step 3,
/// which batch normalization turns into finite outputs, so the loss and the
/// gradients stay finite while the running variance becomes inf. The run
/// trained to its end and then failed to save the model, writing nothing
/// (every member of the default ensemble alike). It is a divergence at that
/// step now, naming the running variance, with a loadable model kept.
#[test]
fn a_running_variance_past_f32_stops_the_run_and_keeps_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let iris = format!("{}/../../data/iris.csv", env!("CARGO_MANIFEST_DIR"));
    for (i, extra) in [&["--ensemble", "1"][..], &[], &["--ensemble", "1", "--stream"]]
        .iter()
        .enumerate()
    {
        let out_name = format!("m{i}.safetensors");
        let args: Vec<&str> = [
            "train",
            "--data",
            &iris,
            "--optimizer",
            "sgd",
            "--lr",
            "1e6",
            "--epochs",
            "3",
            "--quiet",
            "--out",
            &out_name,
        ]
        .iter()
        .chain(extra.iter())
        .copied()
        .collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = bpnet(dir.path(), &args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?}");
        assert!(
            stderr.contains("training diverged at step ") && stderr.contains(": the running variance of layers."),
            "{extra:?}: {stderr}"
        );
        assert!(!stderr.contains("not saved"), "{extra:?}: {stderr}");
        let f = load_model(&dir.path().join(&out_name)).unwrap();
        let mut running = Vec::new();
        f.model.save_running(&mut running);
        assert!(running.iter().all(|v| v.is_finite()), "{extra:?}");
    }
}

/// `bpnet train` on `data.csv` (iris) with a small network, `extra`, and
/// `stream` when given.
fn iris_args(extra: &[&str], stream: Option<&str>) -> Vec<String> {
    let base = [
        "train", "--data", "data.csv", "--target", "species", "--hidden", "8", "--quiet",
    ];
    base.iter()
        .chain(extra)
        .chain(stream.iter())
        .map(|s| s.to_string())
        .collect()
}

/// A checkpoint resumes on the rows it trained on: the same file resumes;
/// the file with its rows in another order (the same multiset) is refused
/// in one line, nothing written, where it went on silently on other rows.
#[test]
fn a_resume_on_changed_data_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(format!("{ROOT}/data/iris.csv")).unwrap();
    std::fs::write(d.join("data.csv"), &text).unwrap();
    let common = |extra: &[&str]| iris_args(extra, None);
    run_ok(
        d,
        &common(&["--epochs", "2", "--checkpoint-every", "1", "--out", "m.safetensors"]),
    );
    let ckpt = "m.ckpt.safetensors";
    assert!(d.join(ckpt).exists(), "no checkpoint");
    let before = std::fs::read(d.join(ckpt)).unwrap();
    // Rows reversed (the header kept first).
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(d.join("data.csv"), lines.join("\n") + "\n").unwrap();
    let out = bpnet(
        d,
        &common(&["--epochs", "4", "--resume", ckpt, "--out", "r.safetensors"]),
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("trained on other rows") && err.contains("resume on the same data"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!d.join("r.safetensors").exists());
    assert_eq!(std::fs::read(d.join(ckpt)).unwrap(), before);
    // The original rows resume.
    std::fs::write(d.join("data.csv"), &text).unwrap();
    run_ok(
        d,
        &common(&["--epochs", "4", "--resume", ckpt, "--out", "r.safetensors"]),
    );
}

/// A checkpoint records the SHA-256 of its data: rows in another order that
/// fit the very same preprocessing (no scaling, no validation split, the
/// first rows kept: the last two swapped) are refused in one line, in memory
/// and streamed, nothing written; the same bytes resume. Without the digest
/// these resumed silently on other batches.
#[test]
fn a_resume_on_rows_reordered_with_the_same_statistics_is_refused() {
    for stream in [None, Some("--stream")] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let text = std::fs::read_to_string(format!("{ROOT}/data/iris.csv")).unwrap();
        std::fs::write(d.join("data.csv"), &text).unwrap();
        let common = |extra: &[&str]| iris_args(extra, stream);
        let first = ["--scaling", "none", "--val-split", "0", "--epochs", "2"];
        let ckpt_args = ["--checkpoint-every", "1", "--out", "m.safetensors"];
        run_ok(d, &common(&[&first[..], &ckpt_args[..]].concat()));
        let ckpt = "m.ckpt.safetensors";
        let before = std::fs::read(d.join(ckpt)).unwrap();
        // `inspect` says what the file is (it read as a plain model file).
        let out = bpnet(d, &["inspect".to_string(), ckpt.to_string()])
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.starts_with("training checkpoint (bpnet train --resume continues it)"),
            "{said}"
        );
        let mut lines: Vec<&str> = text.lines().collect();
        let n = lines.len();
        lines.swap(n - 1, n - 2);
        std::fs::write(d.join("data.csv"), lines.join("\n") + "\n").unwrap();
        let resume = ["--epochs", "4", "--resume", ckpt, "--out", "r.safetensors"];
        let out = bpnet(d, &common(&resume)).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success()
                && err.contains("m.ckpt.safetensors was trained on other data: the bytes of --data data.csv differ")
                && err.contains("resume on the same data"),
            "{stream:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!d.join("r.safetensors").exists());
        assert_eq!(std::fs::read(d.join(ckpt)).unwrap(), before);
        std::fs::write(d.join("data.csv"), &text).unwrap();
        run_ok(d, &common(&resume));
    }
}

/// The checkpoint of an `--ensemble K` run is member 0's; `--resume`
/// continues it and trains members 1..K-1 from their seeds as the
/// uninterrupted run did, so the resumed ensemble is the uninterrupted one,
/// tensor for tensor. (It was refused: "--ensemble cannot be combined with
/// --resume", though no --ensemble was given.)
#[test]
fn an_ensemble_run_resumes_from_its_checkpoint_to_the_uninterrupted_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(format!("{ROOT}/data/iris.csv"), d.join("data.csv")).unwrap();
    let common = |extra: &[&str]| iris_args(&[&["--ensemble", "3"], extra].concat(), None);
    run_ok(d, &common(&["--epochs", "4", "--out", "full.safetensors"]));
    let half = ["--epochs", "2", "--checkpoint-every", "1", "--out", "half.safetensors"];
    run_ok(d, &common(&half));
    let resume = [
        "train",
        "--resume",
        "half.ckpt.safetensors",
        "--epochs",
        "4",
        "--quiet",
        "--out",
        "resumed.safetensors",
    ];
    run_ok(d, &resume.map(String::from));
    let tensors = |name: &str| {
        let bytes = std::fs::read(d.join(name)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut out: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
        out.sort();
        out
    };
    let full = tensors("full.safetensors");
    assert!(
        full.iter().any(|(n, _)| n.starts_with("ensemble.2.")),
        "not an ensemble of 3"
    );
    assert_eq!(tensors("resumed.safetensors"), full);
}

/// A resume with `--diagnostics` from a checkpoint that holds none (its
/// run had none): with no epoch left it says none were recorded and its
/// figures are the curves (it claimed "no vanishing or exploding
/// gradients" of no data, and the figures failed after the model was
/// written); with epochs left it says what the diagnostics cover.
#[test]
fn a_resume_adding_diagnostics_says_what_they_cover() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(format!("{ROOT}/data/iris.csv"), d.join("data.csv")).unwrap();
    let first = iris_args(
        &["--epochs", "2", "--checkpoint-every", "1", "--out", "m.safetensors"],
        None,
    );
    run_ok(d, &first);
    let resume = |epochs: &str, out: &str| {
        let args = [
            "train",
            "--resume",
            "m.ckpt.safetensors",
            "--epochs",
            epochs,
            "--diagnostics",
            "--plot",
            "--out",
            out,
        ];
        let out = Command::new(env!("CARGO_BIN_EXE_bpnet"))
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = resume("2", "same.safetensors");
    assert!(
        said.contains("diagnostics: none recorded (no epoch ended in this run)"),
        "{said}"
    );
    assert!(!said.contains("no vanishing"), "{said}");
    assert!(d.join("same.plots/curves.png").is_file() && !d.join("same.diagnostics.csv").exists());
    let said = resume("3", "more.safetensors");
    assert!(
        said.contains("note: m.ckpt.safetensors holds no diagnostics: they cover the steps after its "),
        "{said}"
    );
    let csv = std::fs::read_to_string(d.join("more.diagnostics.csv")).unwrap();
    assert!(csv.lines().skip(1).all(|l| l.starts_with("3,")), "{csv}");
}

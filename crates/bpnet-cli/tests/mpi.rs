//! `bpnet train` under `mpirun` (cargo feature `mpi`; OpenMPI's `mpirun` on
//! the PATH): 2 and 3 ranks against one process, disagreeing ranks, a rank
//! killed mid-run and its checkpoint resumed on 1 and 2 processes; `bpnet
//! experiment` on 2 ranks against one process.
//!
//! Equivalence bound: after 20 steps every tensor (parameters and running
//! statistics) of the N-rank model is within 1e-5 of the one-process model,
//! relative to the tensor's largest value (f32; the ranks' sums are added in
//! another order, so bit identity is not expected). The ranks themselves are
//! checked bit-identical by the training loop at every epoch's end and at the
//! end of training. The kill test's runs are 1,500 steps: the same 1e-5
//! bound holds there (measured: at most 4.0e-6).
#![cfg(feature = "mpi")]

mod common;
use bpnet::io::{load_model, load_run};
use common::{output_within, wait_with_limit};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const BIN: &str = env!("CARGO_BIN_EXE_bpnet");
/// Steps of the killed runs: enough that the run outlives the latest kill
/// moment (step 550) by far, whatever the machine's load.
const KILL_RUN_STEPS: usize = 1500;

fn train_args(out: &str, steps: usize, extra: &[&str]) -> Vec<String> {
    let wine = format!("{ROOT}/data/wine.csv");
    let steps = steps.to_string();
    let mut a: Vec<&str> = vec![
        "--threads",
        "1",
        "train",
        "--data",
        &wine,
        "--hidden",
        "24,16",
        "--dropout",
        "0.1",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--batch-size",
        "16",
        "--val-split",
        "0.2",
        "--test-split",
        "0.1",
        "--seed",
        "3",
        "--steps",
        &steps,
        "--checkpoint-steps",
        "5",
        // No early stopping: every run goes the whole way (the kill test
        // needs the run to outlive its kill moments).
        "--patience",
        "0",
        "--quiet",
        "--out",
        out,
    ];
    a.extend_from_slice(extra);
    a.iter().map(|s| s.to_string()).collect()
}

fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--allow-run-as-root",
        "--oversubscribe",
        "--bind-to",
        "none",
        "-np",
        &np.to_string(),
    ]);
    c
}

fn run(mut c: Command, dir: &Path) -> Output {
    c.current_dir(dir)
        .output()
        .expect("mpirun or bpnet could not be started")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every parameter and running statistic of a model file, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut m = load_model(path).unwrap().model;
    let mut out = Vec::new();
    m.visit_params(&mut |p| out.push((p.name.clone(), p.value.as_slice().to_vec())));
    for l in m.layers() {
        if let bpnet::Layer::BatchNorm(b) = l {
            out.push((format!("{}.running_mean", b.path()), b.running.mean.clone()));
            out.push((format!("{}.running_var", b.path()), b.running.var.clone()));
        }
    }
    out
}

/// Largest per-tensor `max|a - b| / max|b|`, with the tensor's name.
fn max_rel_diff(a: &Path, b: &Path) -> (f64, String) {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(a.len(), b.len());
    let mut worst = (0.0, String::new());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64)).max(1e-30);
        let d = x.iter().zip(y).fold(0.0f64, |m, (p, q)| m.max((p - q).abs() as f64));
        if d / scale > worst.0 {
            worst = (d / scale, name.clone());
        }
    }
    worst
}

/// The `test` object of a `--json` run's last line.
fn test_metrics(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v["test"].clone()
}

/// The models agree within the bound; the test metrics, computed with the
/// test rows split over the ranks, are those of all 18 test rows (the
/// same confusion matrix, the loss within 1e-4).
#[test]
fn two_and_three_ranks_make_the_one_process_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut one = Command::new(BIN);
    one.args(train_args("one.safetensors", 20, &["--json"]));
    let o = run(one, d);
    assert_ok(&o, "one process");
    let reference = test_metrics(&o);
    assert_eq!(reference["rows"].as_u64(), Some(18), "{reference}");
    for np in [2, 3] {
        let out = format!("np{np}.safetensors");
        let mut c = mpirun(np);
        c.arg(BIN).args(train_args(&out, 20, &["--json"]));
        let o = run(c, d);
        assert_ok(&o, &format!("mpirun -np {np}"));
        let test = test_metrics(&o);
        assert_eq!(
            (&test["rows"], &test["confusion"]),
            (&reference["rows"], &reference["confusion"]),
            "np {np}"
        );
        let (a, b) = (test["loss"].as_f64().unwrap(), reference["loss"].as_f64().unwrap());
        assert!((a - b).abs() <= 1e-4 * b.abs(), "np {np}: test loss {a} against {b}");
        let (diff, name) = max_rel_diff(&d.join(&out), &d.join("one.safetensors"));
        eprintln!("np {np}: largest relative difference {diff:e} ({name})");
        assert!(diff <= 1e-5, "np {np}: {name} differs by {diff:e} (relative)");
        // Local statistics are a different model, but it trains.
        let local = format!("local{np}.safetensors");
        let mut c = mpirun(np);
        c.arg(BIN).args(train_args(&local, 20, &["--bn-sync", "local"]));
        assert_ok(&run(c, d), &format!("mpirun -np {np} --bn-sync local"));
        assert!(max_rel_diff(&d.join(&local), &d.join("one.safetensors")).0 > 1e-4);
    }
}

/// Without checkpoints one process trains the default ensemble of 5 on
/// this small table; `mpirun` trains one network, says so on stdout, and
/// makes the one-process model of `--ensemble 1`.
#[test]
fn mpirun_trains_one_network_where_one_process_trains_the_default_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let plain = |out: &str, extra: &[&str]| -> Vec<String> {
        let a = train_args(out, 20, extra);
        let drop = |i: usize| {
            let prev = i.checked_sub(1).map(|p| a[p].as_str());
            a[i] == "--quiet" || a[i] == "--checkpoint-steps" || prev == Some("--checkpoint-steps")
        };
        (0..a.len()).filter(|&i| !drop(i)).map(|i| a[i].clone()).collect()
    };
    let mut five = Command::new(BIN);
    five.args(plain("five.safetensors", &[]));
    assert_ok(&run(five, d), "one process, default ensemble");
    let file = load_model(&d.join("five.safetensors")).unwrap();
    assert_eq!(
        file.metadata["ensemble"]["members"].as_u64(),
        Some(5),
        "{:?}",
        file.metadata
    );
    let mut one = Command::new(BIN);
    one.args(plain("one.safetensors", &["--ensemble", "1"]));
    assert_ok(&run(one, d), "one process, one network");
    let mut c = mpirun(2);
    c.arg(BIN).args(plain("np2.safetensors", &[]));
    let o = run(c, d);
    assert_ok(&o, "mpirun -np 2");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        stdout
            .matches("note: training one network: the default ensemble of 5")
            .count(),
        1,
        "{stdout}"
    );
    let (diff, name) = max_rel_diff(&d.join("np2.safetensors"), &d.join("one.safetensors"));
    assert!(diff <= 1e-5, "np 2: {name} differs by {diff:e} (relative)");
}

#[test]
fn label_smoothing_on_two_ranks_makes_the_one_process_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let smooth = ["--label-smoothing", "0.2"];
    for (out, extra) in [("plain.safetensors", &[][..]), ("one.safetensors", &smooth[..])] {
        let mut one = Command::new(BIN);
        one.args(train_args(out, 20, extra));
        assert_ok(&run(one, d), out);
    }
    let mut c = mpirun(2);
    c.arg(BIN).args(train_args("np2.safetensors", 20, &smooth));
    assert_ok(&run(c, d), "mpirun -np 2 --label-smoothing 0.2");
    let (diff, name) = max_rel_diff(&d.join("np2.safetensors"), &d.join("one.safetensors"));
    eprintln!("label smoothing, np 2: largest relative difference {diff:e} ({name})");
    assert!(diff <= 1e-5, "np 2: {name} differs by {diff:e} (relative)");
    // The smoothing is applied: the model is not the plain one.
    assert!(max_rel_diff(&d.join("one.safetensors"), &d.join("plain.safetensors")).0 > 1e-4);
}

/// `args` with the values of some flags replaced.
fn with_values(mut args: Vec<String>, values: &[(&str, &str)]) -> Vec<String> {
    for (flag, value) in values {
        let at = args.iter().position(|a| a == flag).unwrap() + 1;
        args[at] = value.to_string();
    }
    args
}

/// A hidden layer of 2800 units gives a 24 x 2800 weight gradient, large
/// enough to be summed on its own (`bpnet::train::OWN_SUM`, into a spare
/// that takes its place) while the others go through the flat buffer.
/// Momentum, not Adam: in this wide network Adam turns the rounding noise
/// of the directions BN removes into steps of the learning rate's size, and
/// 20 f32 steps on 2 ranks end 1.2e-5 to 4e-5 from one process (the same
/// before and after large gradients were summed on their own).
#[test]
fn a_wide_network_on_two_and_three_ranks_makes_the_one_process_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wide = |out: &str| {
        with_values(
            train_args(out, 20, &[]),
            &[("--hidden", "24,2800"), ("--optimizer", "momentum")],
        )
    };
    let mut one = Command::new(BIN);
    one.args(wide("one.safetensors"));
    assert_ok(&run(one, d), "one process");
    for np in [2, 3] {
        let out = format!("np{np}.safetensors");
        let mut c = mpirun(np);
        c.arg(BIN).args(wide(&out));
        assert_ok(&run(c, d), &format!("mpirun -np {np}"));
        let (diff, name) = max_rel_diff(&d.join(&out), &d.join("one.safetensors"));
        eprintln!("wide, np {np}: largest relative difference {diff:e} ({name})");
        assert!(diff <= 1e-5, "wide, np {np}: {name} differs by {diff:e} (relative)");
    }
}

#[test]
fn ranks_with_different_settings_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = mpirun(1);
    c.arg(BIN)
        .args(train_args("a.safetensors", 20, &["--weight-decay", "0"]));
    c.args([":", "-np", "1", BIN])
        .args(train_args("a.safetensors", 20, &["--weight-decay", "0.001"]));
    let o = run(c, dir.path());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines,
        [
            "error: distributed training: configuration (flags and --config): rank 1 disagrees with rank 0 (reported by rank 0)"
        ],
        "{err}"
    );
    assert!(!dir.path().join("a.safetensors").exists());
}

/// `mpirun` of two ranks, rank 0 working in folder `a` and rank 1 in `b`,
/// both training on the `d.csv` of their folder.
fn in_two_folders(a: &Path, b: &Path) -> Command {
    let args = with_values(train_args("m.safetensors", 20, &[]), &[("--data", "d.csv")]);
    let mut c = mpirun(1);
    c.arg("-wdir").arg(a).arg(BIN).args(&args);
    c.args([":", "-np", "1", "-wdir"]).arg(b).arg(BIN).args(&args);
    c
}

#[test]
fn ranks_reading_different_data_fail_before_training() {
    // The same command in two folders whose d.csv differ in one value.
    let dir = tempfile::tempdir().unwrap();
    let wine = std::fs::read_to_string(format!("{ROOT}/data/wine.csv")).unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for (folder, text) in [(&a, wine.clone()), (&b, wine.replacen("14.23", "14.24", 1))] {
        std::fs::create_dir(folder).unwrap();
        std::fs::write(folder.join("d.csv"), text).unwrap();
    }
    let o = run(in_two_folders(&a, &b), dir.path());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines,
        [
            "error: distributed training: training data (digest of the prepared rows): rank 1 disagrees with rank 0 (reported by rank 0)"
        ],
        "{err}"
    );
    assert!(!a.join("m.safetensors").exists() && !b.join("m.safetensors").exists());
}

/// Ranks resuming from copies of one run at different steps (a second
/// machine without a shared disk) fail before training: they summed the
/// gradients of different steps and wrote a checkpoint mixing them. A rank
/// asked to print its configuration while the other trains fails too (it
/// left, and the other waited for it forever).
#[test]
fn ranks_resuming_from_different_checkpoints_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for folder in [&a, &b] {
        std::fs::create_dir(folder).unwrap();
        std::fs::copy(format!("{ROOT}/data/wine.csv"), folder.join("d.csv")).unwrap();
    }
    let args =
        |steps: usize, extra: &[&str]| with_values(train_args("m.safetensors", steps, extra), &[("--data", "d.csv")]);
    for (steps, folder) in [(20, &a), (10, &b)] {
        let mut one = Command::new(BIN);
        one.args(args(steps, &[]));
        let o = run(one, folder);
        assert_ok(&o, "a run to resume");
        std::fs::rename(folder.join("m.ckpt.safetensors"), folder.join("k.ckpt")).unwrap();
        std::fs::remove_file(folder.join("m.safetensors")).unwrap();
    }
    let resume = args(60, &["--resume", "k.ckpt", "--overwrite"]);
    let mut c = mpirun(1);
    c.arg("-wdir").arg(&a).arg(BIN).args(&resume);
    c.args([":", "-np", "1", "-wdir"]).arg(&b).arg(BIN).args(&resume);
    let o = run(c, dir.path());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines,
        [
            "error: distributed training: --resume checkpoint (SHA-256 of the file, or none): rank 1 disagrees with rank 0 (reported by rank 0)"
        ],
        "{err}"
    );
    assert!(!a.join("m.ckpt.safetensors").exists() && !a.join("m.safetensors").exists());
    let mut c = mpirun(1);
    c.arg(BIN).args(train_args("p.safetensors", 20, &[]));
    c.args([":", "-np", "1", BIN])
        .args(train_args("p.safetensors", 20, &["--print-config"]));
    let o = run(c, dir.path());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("error: distributed training: --print-config: rank 1 disagrees with rank 0"),
        "{err}"
    );
}

/// Pids of the rank processes `mpirun` (pid `parent`) started.
fn ranks_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{parent}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        pids.extend(children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    pids
}

/// The step of the checkpoint at `ckpt`, read when the file changed since
/// `seen` (it is replaced atomically, so a read sees a whole file).
fn checkpoint_step(ckpt: &Path, seen: &mut Option<std::time::SystemTime>) -> Option<usize> {
    let modified = std::fs::metadata(ckpt).and_then(|m| m.modified()).ok()?;
    if *seen == Some(modified) {
        return None;
    }
    *seen = Some(modified);
    load_run(ckpt).ok().map(|r| r.resume.state.step)
}

/// Sends `sig` to `pid`.
fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) on a pid this test's mpirun started.
    unsafe { libc::kill(pid as i32, sig) == 0 }
}

/// Freezes the job once its checkpoint reaches `step` (SIGSTOP to every
/// rank: the moment follows the run's own progress, not a delay), then
/// SIGKILLs rank `victim` and lets the other run on. `false` if the job
/// ended before it could be frozen.
fn kill_at_step(job: &mut Child, ckpt: &Path, step: usize, victim: usize) -> bool {
    let (start, mut seen) = (Instant::now(), None);
    while start.elapsed() < Duration::from_secs(120) {
        if job.try_wait().unwrap().is_some() {
            return false;
        }
        if checkpoint_step(ckpt, &mut seen).is_some_and(|s| s >= step) {
            let ranks = ranks_of(job.id());
            assert_eq!(ranks.len(), 2, "rank pids {ranks:?}");
            if !ranks.iter().all(|&r| signal(r, libc::SIGSTOP)) || job.try_wait().unwrap().is_some() {
                return false;
            }
            assert!(signal(ranks[victim], libc::SIGKILL));
            for (i, &r) in ranks.iter().enumerate() {
                if i != victim {
                    signal(r, libc::SIGCONT);
                }
            }
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no checkpoint at step {step} within 120 s");
}

#[test]
fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes_on_fewer_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let steps = KILL_RUN_STEPS;
    let mut one = Command::new(BIN);
    one.args(train_args("ref.safetensors", steps, &[]));
    assert_ok(&run(one, d), "reference");
    let ckpt = d.join("run.ckpt.safetensors");
    // Five moments in the run's own steps, from the first checkpoint to past
    // the middle; either rank.
    for (round, (at_step, victim)) in [(5, 1), (100, 0), (250, 1), (400, 0), (550, 1)].into_iter().enumerate() {
        let _ = std::fs::remove_file(&ckpt);
        let mut c = mpirun(2);
        c.arg(BIN)
            .args(train_args("run.safetensors", steps, &[]))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut job = c.spawn().unwrap();
        let killed = kill_at_step(&mut job, &ckpt, at_step, victim);
        assert!(
            killed,
            "round {round}: the run ended before its checkpoint reached step {at_step}"
        );
        // A generous limit against a hang, not a timing assertion.
        let killed = Instant::now();
        let status = wait_with_limit(&mut job, Duration::from_secs(120));
        eprintln!(
            "round {round}: the job ended {:.2} s after rank {victim} was killed",
            killed.elapsed().as_secs_f64()
        );
        let Some(status) = status else {
            let _ = job.kill();
            panic!("round {round}: the job did not end after a rank was killed");
        };
        assert!(
            !status.success(),
            "round {round}: the job succeeded after a rank was killed"
        );
        let mut err = String::new();
        std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut err).unwrap();
        // OpenMPI's report names the rank: "mpirun noticed that process rank 1
        // with PID ... exited on signal 9 (Killed)."
        let named = format!("process rank {victim} with PID");
        assert!(
            err.contains(&named) && err.contains("exited on signal 9"),
            "round {round}: {err}"
        );
        // The last checkpoint loads; resuming on 1 and on 2 processes ends
        // with the uninterrupted run's model (the same f32 bound).
        let state = load_run(&ckpt).unwrap().resume.state;
        assert!(
            state.step >= at_step && state.step < steps,
            "round {round}: step {}",
            state.step
        );
        for np in [1, 2] {
            let out = format!("resumed{np}.safetensors");
            let args = train_args(&out, steps, &["--resume", ckpt.to_str().unwrap()]);
            let resumed = if np == 1 {
                let mut c = Command::new(BIN);
                c.args(args);
                run(c, d)
            } else {
                let mut c = mpirun(np);
                c.arg(BIN).args(args);
                run(c, d)
            };
            assert_ok(&resumed, &format!("round {round}: resume on {np}"));
            let (diff, name) = max_rel_diff(&d.join(&out), &d.join("ref.safetensors"));
            eprintln!(
                "round {round}: killed rank {victim} at step {}, resumed on {np}: {diff:e} ({name})",
                state.step
            );
            assert!(
                diff <= 1e-5,
                "round {round}, resumed on {np}: {name} differs by {diff:e}"
            );
        }
    }
}

fn experiment_args(which: &str, out: &str) -> Vec<String> {
    [
        "--threads",
        "1",
        "experiment",
        which,
        "--steps",
        "300",
        "--eval-every",
        "100",
        "--train-limit",
        "3000",
        "--test-limit",
        "1000",
        "--probe-rows",
        "200",
        "--out",
        out,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The cells of a CSV file (header row first).
fn csv_cells(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The paper study on 2 ranks trains the one-process networks: the same
/// files, one report printed, and curves within 1e-4 (test accuracy over
/// 1,000 images, i.e. the same count of correct images; training loss and
/// the sigmoid-input percentiles, relative to max(1, |value|)).
#[test]
fn an_experiment_on_two_ranks_trains_the_one_process_networks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut one = Command::new(BIN);
    one.args(experiment_args("bn-mnist", "one"));
    assert_ok(&run(one, d), "one process");
    let mut c = mpirun(2);
    c.arg(BIN).args(experiment_args("bn-mnist", "two"));
    let out = run(c, d);
    assert_ok(&out, "mpirun -np 2 bpnet experiment");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("wrote ").count(), 1, "{stdout}");
    assert_eq!(file_names(&d.join("one")), file_names(&d.join("two")));
    // config.json records the number of ranks.
    let ranks = |dir: &str| -> Option<u64> {
        let text = std::fs::read_to_string(d.join(dir).join("config.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["ranks"].as_u64()
    };
    assert_eq!((ranks("one"), ranks("two")), (Some(1), Some(2)));
    let (a, b) = (
        csv_cells(&d.join("one/paper_curves.csv")),
        csv_cells(&d.join("two/paper_curves.csv")),
    );
    assert_eq!(a[0], b[0]);
    assert_eq!(a.len(), b.len());
    for (ra, rb) in a[1..].iter().zip(&b[1..]) {
        for ((name, x), y) in a[0].iter().zip(ra).zip(rb) {
            if x.is_empty() || y.is_empty() {
                assert_eq!(x, y, "{name} at step {}", ra[0]);
                continue;
            }
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            let diff = (x - y).abs() / x.abs().max(1.0);
            assert!(
                diff <= 1e-4,
                "{name} at step {}: {x} (one process) vs {y} (2 ranks)",
                ra[0]
            );
        }
    }
}

#[test]
fn the_batch_size_study_refuses_several_ranks_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = mpirun(2);
    // Options the batch-size study reads (others are refused before this).
    let args = [
        "--threads",
        "1",
        "experiment",
        "batch-size",
        "--batch-sizes",
        "4",
        "--train-limit",
        "3000",
        "--out",
        "bs",
    ];
    c.arg(BIN).args(args);
    let out = run(c, dir.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("batch-size study trains Batch Renormalization and Ghost BN"),
        "{stderr}"
    );
    assert!(!dir.path().join("bs").exists());
}

/// An error that one rank meets alone (here its data file is missing) is
/// printed with that rank and ends the whole job: a non-zero exit within a
/// minute, not a rank waiting forever for the other.
#[test]
fn an_error_on_one_rank_alone_names_the_rank_and_ends_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    std::fs::copy(format!("{ROOT}/data/wine.csv"), a.join("d.csv")).unwrap();
    let mut c = in_two_folders(&a, &b);
    let child = c
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = output_within(child, Duration::from_secs(60), "the job after one rank's error");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: rank 1 of 2: ") && lines[0].contains("d.csv"),
        "{err}"
    );
    assert!(!a.join("m.safetensors").exists() && !b.join("m.safetensors").exists());
}

/// An error every rank meets alike (a bad flag value, a missing file, a
/// bad cell, what mpirun cannot run) is printed once, by rank 0, without a
/// rank, and the job exits 1 (2 for usage errors) without `MPI_Abort`; it
/// was printed by every rank, each aborting. Help and the version print once.
#[test]
fn an_error_every_rank_meets_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.csv"), "a,b,y\n1,2,0\n3,x,1\n4,5,0\n6,7,1\n").unwrap();
    std::fs::write(dir.path().join("taken.safetensors"), "a,b\n1,2\n").unwrap();
    let iris = format!("{ROOT}/data/iris.csv");
    let cases: [(&[&str], &str, i32); 9] = [
        // Checked by rank 0 alone, which writes the outputs: it said
        // `error: rank 0 of 3: output ...`, as if the others had found it fine.
        (
            &["train", "--data", &iris, "--out", "taken.safetensors"],
            "error: output --out taken.safetensors exists and holds a CSV",
            1,
        ),
        (
            &["train", "--data", &iris, "--lr", "-1"],
            "error: invalid learning rate: -1 is out of range",
            1,
        ),
        (&["train", "--data", "missing.csv"], "error: missing.csv: ", 1),
        (
            &["train", "--data", "bad.csv", "--val-split", "0"],
            "error: bad.csv: line 3, column 'b': 'x' is not a number",
            1,
        ),
        (
            &["train", "--data", &iris, "--ensemble", "3"],
            "error: invalid mpirun: --ensemble and --cv train in one process",
            1,
        ),
        (
            &["train", "--data", &iris, "--stream"],
            "error: invalid --stream: mpirun (data-parallel training)",
            1,
        ),
        (
            &["train", "--data", &iris, "--ensemble", "1", "--batch-size", "1000"],
            "error: invalid --batch-size: 1000 is larger",
            1,
        ),
        (
            &["bench", "--batch-norm", "--batch-size", "1", "--steps", "2"],
            "error: invalid --batch-size: need a batch of at least 2",
            1,
        ),
        (&["train", "--bogus"], "error: unexpected argument '--bogus' found", 2),
    ];
    for (args, want, code) in cases {
        let mut c = mpirun(3);
        c.arg(BIN).args(["--threads", "1"]).args(args);
        let child = c
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let o = output_within(child, Duration::from_secs(60), "the job after an error on every rank");
        let err = String::from_utf8_lossy(&o.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
        assert!(lines.len() == 1 && lines[0].starts_with(want), "{args:?}: {err}");
        assert!(!err.contains("MPI_ABORT"), "{args:?}: {err}");
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    }
    for flag in ["--version", "--help"] {
        let mut c = mpirun(2);
        c.arg(BIN).arg(flag);
        let o = run(c, dir.path());
        assert_ok(&o, flag);
        let text = String::from_utf8_lossy(&o.stdout);
        let once = if flag == "--version" { "bpnet " } else { "Usage:" };
        assert_eq!(text.matches(once).count(), 1, "{flag}: {text}");
    }
    assert!(!dir.path().join("model.safetensors").exists());
    assert_eq!(
        std::fs::read(dir.path().join("taken.safetensors")).unwrap(),
        b"a,b\n1,2\n"
    );
}

//! Helpers shared by the command-line tests: run the `bpnet` binary in a
//! folder and read what it printed.
#![allow(dead_code)] // each test file uses its own subset

pub mod measure;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

/// The repository root.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Runs `bpnet args` in `dir`, with the bundled data folder for `--data mnist`.
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpnet"))
        .args(args)
        .current_dir(dir)
        .env("BPNET_DATA_DIR", format!("{ROOT}/data"))
        .output()
        .unwrap()
}

/// Bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// [`run_in`], which must succeed; its standard output.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run_in(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The last line of `stdout` as JSON (`--json` output).
pub fn last_json(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

/// The exit status of `child` once it ends, or `None` while it still runs
/// after `limit`.
pub fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The output of `child` (its stdout and stderr piped) once it ends; one
/// still running after `limit` is killed and fails the test (`what` says
/// which).
pub fn output_within(mut child: Child, limit: Duration, what: &str) -> Output {
    if wait_with_limit(&mut child, limit).is_none() {
        child.kill().unwrap();
        panic!("{what}: still running after {limit:?}");
    }
    child.wait_with_output().unwrap()
}

/// 200 rows `a,b,c,y` of a linear target `y = a + 2b + 3c`, the inputs
/// spread over [-1, 1): a regression that a huge learning rate diverges on.
pub fn linear_csv() -> String {
    let mut csv = String::from("a,b,c,y\n");
    for i in 0..200 {
        let v = |k: usize| ((i * 3 + k) * 7919 % 1000) as f64 / 500.0 - 1.0;
        csv += &format!("{},{},{},{}\n", v(0), v(1), v(2), v(0) + 2.0 * v(1) + 3.0 * v(2));
    }
    csv
}

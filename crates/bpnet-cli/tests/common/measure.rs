//! A child process's own peak memory, and generated data for the memory
//! tests.

use std::path::Path;
use std::process::{Command, Stdio};

/// A deterministic generator (xorshift).
pub struct Gen(pub u64);

impl Gen {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs `bpnet` to the end; its stdout and its peak resident set in bytes.
pub fn run_measured(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, u64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bpnet"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("BPNET_MEMORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The child is reaped by `wait4` below (for its own resource usage).
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes the status and the usage into our locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let (stdout, stderr) = (reader.join().unwrap(), err_reader.join().unwrap());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{args:?} failed:\n{stdout}{stderr}"
    );
    (stdout, usage.ru_maxrss as u64 * 1024)
}

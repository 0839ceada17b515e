//! A write killed before its rename leaves `.NAME.tmp-PID-N` behind; the
//! next successful write of NAME removes such files of processes that have
//! ended, and keeps those of running ones (a concurrent writer's).

use bpnet::io::write_atomic;
use std::path::Path;
use std::process::{Child, Command};

/// The id of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A process that runs until killed.
fn live() -> Child {
    Command::new("sleep").arg("60").spawn().unwrap()
}

fn temp(dir: &Path, name: &str, pid: u32, n: u32) -> std::path::PathBuf {
    let p = dir.join(format!(".{name}.tmp-{pid}-{n}"));
    std::fs::write(&p, b"partial").unwrap();
    p
}

#[test]
fn stale_temporary_files_of_dead_writers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dead = dead_pid();
    let mut running = live();
    let stale = [
        temp(d, "m.safetensors", dead, 0),
        temp(d, "m.safetensors", dead, 7),
        temp(d, "m.safetensors", 0, 1),        // no process has id 0
        temp(d, "m.safetensors", u32::MAX, 1), // nor one beyond pid_t
    ];
    let kept = [
        temp(d, "m.safetensors", running.id(), 0),    // a concurrent writer
        temp(d, "other.safetensors", dead, 0),        // another file's
        temp(d, "m.safetensors.bak", dead, 0),        // a longer name's
        d.join(format!(".m.safetensors.tmp-{dead}")), // not a temp name
    ];
    std::fs::write(&kept[3], b"x").unwrap();
    // A failed write (a folder stands where the file should go) removes
    // only its own temporary file.
    std::fs::create_dir(d.join("m.safetensors")).unwrap();
    assert!(write_atomic(&d.join("m.safetensors"), b"model").is_err());
    assert!(
        stale.iter().all(|p| p.exists()),
        "cleanup runs only after a successful write"
    );
    assert_eq!(std::fs::read_dir(d).unwrap().count(), stale.len() + kept.len() + 1);
    std::fs::remove_dir(d.join("m.safetensors")).unwrap();
    write_atomic(&d.join("m.safetensors"), b"model").unwrap();
    running.kill().unwrap();
    running.wait().unwrap();
    for p in &stale {
        assert!(!p.exists(), "{} kept", p.display());
    }
    for p in &kept {
        assert!(p.exists(), "{} removed", p.display());
    }
    assert_eq!(std::fs::read(d.join("m.safetensors")).unwrap(), b"model");
}

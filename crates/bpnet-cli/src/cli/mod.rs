//! Subcommands of the `bpnet` binary and the option parsing they share.

pub mod bench;
pub mod config;
pub mod cv;
pub mod diagnostics;
pub mod dist;
pub mod ensemble;
pub mod eval;
pub mod experiment;
pub mod export;
pub mod history;
pub mod import;
pub mod inspect;
pub mod lr_find;
pub mod outputs;
pub mod plot;
pub mod predict;
pub mod progress;
pub mod read_progress;
pub mod stream_eval;
pub mod stream_train;
pub mod train;
pub mod tune;
mod tune_refit;

/// The process's peak resident memory so far, or `None` where the system
/// does not say. Linux: `VmHWM` of `/proc/self/status`, the high-water mark
/// of this program's own memory. Not `ru_maxrss`: that also counts what the
/// process held before `exec`, i.e. its parent's memory at the fork, so
/// `bpnet` started from a 430 MB Python process reported a 430 MB peak for
/// a 206 MB load (found by `bench/csv_ingest.py`).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm(&status)
}

/// The `VmHWM:` line of a `/proc/PID/status` text, in bytes.
fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::vm_hwm;

    #[test]
    fn the_high_water_mark_is_read_from_the_status_text() {
        let status = "Name:\tbpnet\nVmPeak:\t  300000 kB\nVmHWM:\t   206756 kB\nVmRSS:\t  1000 kB\n";
        assert_eq!(vm_hwm(status), Some(206_756 * 1024));
        assert_eq!(vm_hwm("VmRSS:\t 5 kB\n"), None);
        assert_eq!(vm_hwm("VmHWM:\t five kB\n"), None);
        #[cfg(target_os = "linux")]
        assert!(super::peak_memory_bytes().is_some_and(|b| b > 0));
    }
}

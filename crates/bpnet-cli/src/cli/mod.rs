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

/// The process's peak resident memory so far (Linux `ru_maxrss`, reported in
/// KiB), or `None` where the system does not say.
pub fn peak_memory_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getrusage only writes into the zeroed struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            return u64::try_from(usage.ru_maxrss).ok().map(|kib| kib * 1024);
        }
    }
    None
}

//! Running under `mpirun`: the world of processes, the checks that every
//! rank runs the same command on the same data, and how errors end the job.
//! Without the cargo feature `mpi` the world is this process alone.

use super::config::TomlConfig;
use bpnet::comm::{Comm, agree};
use bpnet::train::{DIGEST_START, digest_f32};
use bpnet::workflow::{Prepared, TrainConfig};
use bpnet::{Error, Result};
use std::process::ExitCode;
use std::sync::Arc;

/// The ranks started together (`mpirun -np N`), or this process alone.
/// A process that no MPI launcher started does not initialize MPI: a
/// singleton `MPI_Init` costs about 0.3 s of start on every command
/// (measured: `bpnet inspect` 0.31-0.34 s against 0.00 s). `ranked`: the
/// command runs on several ranks (train, bench, experiment); a build
/// without MPI refuses to run one as one of several launched processes.
pub fn world(ranked: bool) -> Result<Arc<dyn Comm>> {
    #[cfg(feature = "mpi")]
    {
        let _ = ranked;
        if !launched_by_mpi() {
            return Ok(bpnet::comm::single());
        }
        Ok(Arc::new(bpnet::comm::mpi::MpiComm::init()?))
    }
    #[cfg(not(feature = "mpi"))]
    {
        // Started as one of several ranks, each process would train alone,
        // the same run, and write the same files. Other commands (predict
        // on shards, say) run as they would alone.
        match launched_size() {
            Some(n) if n > 1 && ranked => Err(Error::Comm(format!(
                "an MPI launcher started this bpnet as one of {n} processes, but it was built without MPI \
                 (the cargo feature `mpi`): each would train alone and write the same files; \
                 build it with --features mpi, or start it without mpirun"
            ))),
            _ => Ok(bpnet::comm::single()),
        }
    }
}

/// The number of processes an MPI launcher started, when one did
/// (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`).
#[cfg(not(feature = "mpi"))]
fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// Whether an MPI launcher started this process: OpenMPI's `mpirun` sets
/// `OMPI_COMM_WORLD_SIZE`, PMIx launchers `PMIX_RANK`, PMI ones (MPICH's
/// hydra, Slurm's `srun --mpi=pmi2`) `PMI_RANK` and `PMI_SIZE`.
#[cfg(feature = "mpi")]
fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// This process's rank when an MPI launcher started it, from the
/// launcher's environment (OpenMPI's `OMPI_COMM_WORLD_RANK`, PMIx's
/// `PMIX_RANK`, PMI's `PMI_RANK`), without starting MPI: for what runs
/// before the world exists (parsing the command line).
pub fn launched_rank() -> Option<usize> {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// Fails on every rank, before training, when a rank's resolved
/// configuration or prepared data differs from rank 0's (rank 0's are
/// broadcast and compared; the data by a digest of every value).
pub fn agree_on_run(comm: &dyn Comm, cfg: &TrainConfig, data: &Prepared) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    agree(comm, "configuration (flags and --config)", cfg.to_toml().as_bytes())?;
    let mut h = DIGEST_START;
    for d in [Some(&data.train), data.val.as_ref(), data.test.as_ref()] {
        let Some(d) = d else {
            h = digest_f32(h, &[f32::NAN]);
            continue;
        };
        h = digest_f32(h, d.features.as_slice());
        h = match &d.targets {
            bpnet::data::Targets::Classes { labels, .. } => {
                let as_f32: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
                digest_f32(h, &as_f32)
            }
            bpnet::data::Targets::Values(v) => digest_f32(h, v.as_slice()),
        };
    }
    agree(comm, "training data (digest of the prepared rows)", &h.to_le_bytes())
}

/// Fails on every rank, before training, unless all resume from the same
/// checkpoint (by the SHA-256 of its bytes) or none does: ranks resumed
/// from copies of a run at different steps summed gradients of different
/// steps, wrote a checkpoint mixing them, and failed only at the end of the
/// epoch (or died in MPI with a truncated message).
pub fn agree_on_resume(comm: &dyn Comm, resume: Option<&std::path::Path>) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let digest = match resume {
        Some(p) => bpnet::io::file_sha256(p)?,
        None => "none".to_string(),
    };
    agree(
        comm,
        "--resume checkpoint (SHA-256 of the file, or none)",
        digest.as_bytes(),
    )
}

/// With `--bn-sync local` each rank normalizes its own block of a batch, so
/// every block of every batch trained (`batch` rows, and the last of `rows
/// % batch` when it is trained: 2 rows or more) needs 2 rows. Checked before
/// training on every rank alike (it failed at the first short batch, an
/// epoch and a checkpoint in).
pub fn check_local_blocks(rows: usize, batch: usize, ranks: usize) -> Result<()> {
    if ranks < 2 || batch == 0 {
        return Ok(());
    }
    let last = rows % batch;
    let sizes = std::iter::once(batch).chain((last >= 2).then_some(last));
    match sizes.map(|b| (b, b / ranks)).find(|&(_, least)| least < 2) {
        Some((b, least)) => Err(Error::Comm(format!(
            "--bn-sync local: a batch of {b} rows over {ranks} ranks leaves a rank {least} row{}, and batch \
             normalization on each rank's rows needs 2 ({rows} training rows in batches of {batch}); use --bn-sync \
             global, or a batch size that leaves every rank 2 rows of each batch",
            if least == 1 { "" } else { "s" }
        ))),
        None => Ok(()),
    }
}

/// How [`report`] ends a run whose error [`settle`] shared between the
/// ranks: 0 not shared; [`PLAIN`] rank 0 prints it once (every rank met
/// the same error); [`PREFIXED`] this rank prints it with its rank (ranks
/// failed differently); [`SILENT`] another rank prints. None aborts: every
/// rank knows the outcome and exits 1.
static SETTLED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
const PLAIN: u8 = 1;
const PREFIXED: u8 = 2;
const SILENT: u8 = 3;

/// Shares the outcome of a part of a command that every rank runs alone
/// (flags, files, data: no communication), at the same point on every
/// rank: all succeeded, or each rank returns an error that [`report`]
/// prints once. An error every rank met alike (a bad flag, a missing file,
/// a bad cell) had been printed by every rank, each ending the job with
/// `MPI_Abort`; one that some ranks met is printed by those, with their
/// rank, and the others exit 1 quietly.
///
/// An error of a check only rank 0 makes ([`rank0_only`]: the outputs,
/// which rank 0 alone writes) counts as met by every rank that passed, so
/// it is printed once without a rank (it read `error: rank 0 of 2: output
/// ...`, as if the other ranks had found the file fine).
pub fn settle<T>(comm: &dyn Comm, outcome: Result<T>) -> Result<T> {
    let root_only = ROOT_ONLY.swap(false, std::sync::atomic::Ordering::Relaxed);
    if comm.size() == 1 {
        return outcome;
    }
    let mine = match &outcome {
        Ok(_) => Vec::new(),
        Err(e) => format!("{}{e}", if root_only { 'R' } else { 'E' }).into_bytes(),
    };
    let mut first = mine.clone();
    comm.broadcast(0, &mut first)?;
    // Per rank: failed, and failed with rank 0's error (or passed, where
    // rank 0's error is of a check that only rank 0 makes).
    let alike = match mine.is_empty() {
        true => first.first() == Some(&b'R'),
        false => mine == first,
    };
    let mut flags = vec![0.0f64; 2 * comm.size()];
    flags[2 * comm.rank()] = f64::from(u8::from(!mine.is_empty()));
    flags[2 * comm.rank() + 1] = f64::from(u8::from(alike));
    comm.all_reduce_f64(&mut flags)?;
    let failed: Vec<usize> = (0..comm.size()).filter(|&r| flags[2 * r] > 0.0).collect();
    if failed.is_empty() {
        return outcome;
    }
    let alike = (0..comm.size()).all(|r| flags[2 * r + 1] > 0.0);
    let how = match (alike, outcome.is_err()) {
        (true, _) if comm.rank() == 0 => PLAIN,
        (false, true) => PREFIXED,
        _ => SILENT,
    };
    SETTLED.store(how, std::sync::atomic::Ordering::Relaxed);
    outcome.and_then(|_| {
        let ranks: Vec<String> = failed.iter().map(|r| r.to_string()).collect();
        Err(Error::Comm(format!(
            "rank {} failed (its error is above)",
            ranks.join(", ")
        )))
    })
}

/// Set by [`rank0_only`] for the next [`settle`].
static ROOT_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks `e` as the failure of a check only rank 0 makes, for the next
/// [`settle`]; returns it.
pub fn rank0_only(e: Error) -> Error {
    ROOT_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
    e
}

/// Writes `line` to stderr in one write: `eprintln!` writes the pieces of
/// its format one by one (stderr is unbuffered), and mpirun interleaved the
/// ranks' pieces ("error: rank error: rank 1 of 3: ...").
fn say_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Reports a failed command and picks the exit code. Alone: `error: ...`.
/// Under mpirun, errors every rank meets together (disagreement, divergence,
/// a too-small batch, and what [`settle`] shared) are printed once, by rank
/// 0, or by the ranks that failed; any other error is printed with its rank
/// and ends the whole job (`MPI_Abort`), so no rank waits forever for one
/// that stopped.
pub fn report(comm: &dyn Comm, e: &Error) -> ExitCode {
    let agreed = matches!(e, Error::Comm(_) | Error::Diverged { .. } | Error::BatchTooSmall { .. });
    let e = one_line(&e.to_string());
    if comm.size() == 1 {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match SETTLED.load(std::sync::atomic::Ordering::Relaxed) {
        PLAIN => say_line(&format!("error: {e}")),
        PREFIXED => say_line(&format!("error: rank {} of {}: {e}", comm.rank(), comm.size())),
        SILENT => {}
        _ if agreed => {
            if comm.rank() == 0 {
                say_line(&format!("error: {e}"));
            }
        }
        _ => {
            say_line(&format!("error: rank {} of {}: {e}", comm.rank(), comm.size()));
            comm.abort(1);
        }
    }
    ExitCode::FAILURE
}

/// `text` on one line: control characters (a newline in a value quoted
/// back, `task = "x\ny"`) written as escapes, so that an error is one line.
pub fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod local_block_tests {
    use super::check_local_blocks;

    #[test]
    fn every_rank_needs_two_rows_of_every_batch_trained() {
        // 164 rows in batches of 16 on 3 ranks: the last batch of 4 gives a
        // rank 1 row (it failed an epoch in).
        let e = check_local_blocks(164, 16, 3).unwrap_err().to_string();
        assert!(e.contains("a batch of 4 rows over 3 ranks leaves a rank 1 row"), "{e}");
        assert!(check_local_blocks(166, 16, 3).is_ok(), "a last batch of 6: 2 each");
        assert!(
            check_local_blocks(161, 16, 3).is_ok(),
            "a last batch of 1 is not trained"
        );
        assert!(check_local_blocks(160, 5, 3).is_err(), "5 rows over 3: a rank gets 1");
        assert!(check_local_blocks(160, 5, 1).is_ok(), "one process: nothing to check");
    }
}

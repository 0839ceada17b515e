//! Communication between the processes (ranks) of a data-parallel run,
//! behind a small interface: element-wise sum all-reduce over `f32` and `f64`
//! slices, broadcast of bytes, barrier, rank and size.
//!
//! [`Single`] (a world of one rank, every operation a no-op) is the default,
//! so training code written against [`Comm`] runs unchanged in one process.
//! [`ThreadGroup`] runs several ranks as threads of one process (used by the
//! tests, and usable without MPI); `MpiComm` (cargo feature `mpi`) runs them
//! as MPI processes. Another engine only has to implement [`Comm`].
//!
//! Every rank must call the same collective operations in the same order with
//! buffers of the same length; a collective returns the same values, bit for
//! bit, on every rank (each implementation here guarantees it).

mod threads;

#[cfg(feature = "mpi")]
pub mod mpi;

pub use threads::ThreadGroup;

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use std::fmt::Debug;
use std::sync::Arc;

/// A group of ranks that sum, broadcast and synchronize together.
pub trait Comm: Send + Sync + Debug {
    /// This process's rank, `0..size`.
    fn rank(&self) -> usize;
    /// Number of ranks.
    fn size(&self) -> usize;
    /// `buf[i] = sum over ranks of buf[i]` on every rank (same length everywhere).
    fn all_reduce_f32(&self, buf: &mut [f32]) -> Result<()>;
    /// `buf[i] = sum over ranks of buf[i]` on every rank, in `f64`.
    fn all_reduce_f64(&self, buf: &mut [f64]) -> Result<()>;
    /// `recv[i] = sum over ranks of send[i]` on every rank (`send` and `recv`
    /// of one length, the same on every rank). An engine that sums from one
    /// buffer into another (MPI) saves the copy [`Comm::all_reduce_f32`]
    /// makes; the default copies and sums in place.
    fn all_reduce_into_f32(&self, send: &[f32], recv: &mut [f32]) -> Result<()> {
        same_len(send.len(), recv.len())?;
        recv.copy_from_slice(send);
        self.all_reduce_f32(recv)
    }
    /// [`Comm::all_reduce_into_f32`] in `f64`.
    fn all_reduce_into_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<()> {
        same_len(send.len(), recv.len())?;
        recv.copy_from_slice(send);
        self.all_reduce_f64(recv)
    }
    /// Replaces `bytes` on every rank by `root`'s `bytes` (any length).
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// Short name of the engine, e.g. `single`, `threads`, `mpi`.
    fn engine(&self) -> &'static str;
    /// Ends every rank of the group at once with exit code `code` (MPI:
    /// `MPI_Abort`), so that no rank waits forever for one that failed.
    /// Implementations for one process do nothing and return.
    fn abort(&self, code: i32) {
        let _ = code;
    }
}

/// The world of one process: rank 0 of 1; collectives leave buffers as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Single;

impl Comm for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_f32(&self, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn all_reduce_f64(&self, _: &mut [f64]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, root: usize, _: &mut Vec<u8>) -> Result<()> {
        check_root(root, 1)
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn engine(&self) -> &'static str {
        "single"
    }
}

/// The default communicator: one process.
pub fn single() -> Arc<dyn Comm> {
    Arc::new(Single)
}

pub(crate) fn same_len(send: usize, recv: usize) -> Result<()> {
    if send != recv {
        return Err(Error::Comm(format!("all-reduce from {send} values into {recv}")));
    }
    Ok(())
}

pub(crate) fn check_root(root: usize, size: usize) -> Result<()> {
    if root >= size {
        return Err(Error::Comm(format!("broadcast root {root} is not a rank of {size}")));
    }
    Ok(())
}

/// Element types that can be summed across ranks (`f32`, `f64`).
pub trait Reduce: Scalar {
    /// Sums `buf` element-wise over the ranks of `comm`.
    fn all_reduce(comm: &dyn Comm, buf: &mut [Self]) -> Result<()>;
    /// Sums `send` element-wise over the ranks of `comm` into `recv`.
    fn all_reduce_into(comm: &dyn Comm, send: &[Self], recv: &mut [Self]) -> Result<()>;
}

impl Reduce for f32 {
    fn all_reduce(comm: &dyn Comm, buf: &mut [f32]) -> Result<()> {
        comm.all_reduce_f32(buf)
    }
    fn all_reduce_into(comm: &dyn Comm, send: &[f32], recv: &mut [f32]) -> Result<()> {
        comm.all_reduce_into_f32(send, recv)
    }
}

impl Reduce for f64 {
    fn all_reduce(comm: &dyn Comm, buf: &mut [f64]) -> Result<()> {
        comm.all_reduce_f64(buf)
    }
    fn all_reduce_into(comm: &dyn Comm, send: &[f64], recv: &mut [f64]) -> Result<()> {
        comm.all_reduce_into_f64(send, recv)
    }
}

/// The contiguous block of a global batch of `rows` rows that `rank` of
/// `size` ranks takes: `(start, end)`. The first `rows % size` ranks take
/// `rows / size + 1` rows, the others `rows / size` (possibly 0).
pub fn block(rows: usize, rank: usize, size: usize) -> (usize, usize) {
    let size = size.max(1);
    let (base, extra) = (rows / size, rows % size);
    let start = rank * base + rank.min(extra);
    let len = base + usize::from(rank < extra);
    (start.min(rows), (start + len).min(rows))
}

/// Checks that every rank holds the same `bytes` (e.g. a configuration or a
/// checksum): rank 0's are broadcast and compared; all ranks learn how many
/// differ and fail together. `what` names the thing compared in the error.
pub fn agree(comm: &dyn Comm, what: &str, bytes: &[u8]) -> Result<()> {
    if comm.size() == 1 {
        return Ok(());
    }
    let mut root = bytes.to_vec();
    comm.broadcast(0, &mut root)?;
    let mine_differs = root != bytes;
    let mut flags = vec![0.0f64; comm.size()];
    flags[comm.rank()] = f64::from(u8::from(mine_differs));
    comm.all_reduce_f64(&mut flags)?;
    let differing: Vec<String> = (0..flags.len())
        .filter(|&r| flags[r] != 0.0)
        .map(|r| r.to_string())
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    let who = match differing.len() {
        1 => format!("rank {} disagrees", differing[0]),
        _ => format!("ranks {} disagree", differing.join(", ")),
    };
    Err(Error::Comm(format!(
        "{what}: {who} with rank 0 (reported by rank {})",
        comm.rank()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_the_batch_in_order() {
        for rows in 0..20 {
            for size in 1..6 {
                let mut next = 0;
                for rank in 0..size {
                    let (s, e) = block(rows, rank, size);
                    assert_eq!(s, next, "rows {rows} size {size} rank {rank}");
                    assert!(e - s == rows / size || e - s == rows / size + 1);
                    next = e;
                }
                assert_eq!(next, rows);
            }
        }
        assert_eq!(block(2, 2, 3), (2, 2));
    }
}

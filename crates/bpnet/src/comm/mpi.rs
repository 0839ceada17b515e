//! [`Comm`] over MPI (rsmpi; cargo feature `mpi`). Started under `mpirun -np N`
//! each process is one rank of `MPI_COMM_WORLD`; started alone it is a world
//! of one. MPI's errors are fatal (its default handler): a failed collective
//! ends the job instead of returning.

use super::{Comm, check_root, same_len};
use crate::error::{Error, Result};
use mpi::Threading;
use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use std::sync::{Mutex, PoisonError};

/// The world communicator. MPI is initialized with
/// `MPI_THREAD_SERIALIZED`; this type serializes its own calls with a mutex,
/// so it may be shared between threads.
pub struct MpiComm {
    world: Mutex<World>,
    rank: usize,
    size: usize,
}

/// The communicator and the universe that finalizes MPI when dropped (after
/// the communicator: fields drop in order).
struct World {
    comm: SimpleCommunicator,
    /// The send buffer of [`sum`], in f64 units so that it is aligned for
    /// f32 and f64 alike (a `Vec<u8>` promises 1-byte alignment only).
    send: Vec<f64>,
    _universe: Universe,
}

// SAFETY: MPI is initialized with at least MPI_THREAD_SERIALIZED (checked in
// `init`), which allows calls from any thread as long as no two run at once;
// every call goes through the `world` mutex.
unsafe impl Send for World {}

impl std::fmt::Debug for MpiComm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MpiComm(rank {} of {})", self.rank, self.size)
    }
}

impl MpiComm {
    /// Initializes MPI (once per process) and returns the world.
    pub fn init() -> Result<MpiComm> {
        let (universe, level) = mpi::initialize_with_threading(Threading::Serialized)
            .ok_or_else(|| Error::Comm("MPI is already initialized".into()))?;
        if level < Threading::Serialized {
            return Err(Error::Comm(format!(
                "the MPI library grants thread level {level:?}; bpnet needs Serialized"
            )));
        }
        let comm = universe.world();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        Ok(MpiComm {
            world: Mutex::new(World {
                comm,
                send: Vec::new(),
                _universe: universe,
            }),
            rank,
            size,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// `recv = sum over ranks of send`, straight from one buffer into the other.
    fn sum_into<T: Copy + mpi::datatype::Equivalence>(&self, send: &[T], recv: &mut [T]) -> Result<()> {
        same_len(send.len(), recv.len())?;
        if self.size > 1 {
            self.with(|w| w.comm.all_reduce_into(send, recv, SystemOperation::sum()));
        } else {
            recv.copy_from_slice(send);
        }
        Ok(())
    }
}

/// Sums `buf` over the ranks of `w`: rsmpi has no in-place all-reduce, so
/// `buf` is copied into a reused send buffer first.
fn sum<T: Copy + mpi::datatype::Equivalence>(w: &mut World, buf: &mut [T]) {
    assert!(
        std::mem::align_of::<T>() <= std::mem::align_of::<f64>(),
        "the send buffer is aligned for f32 and f64"
    );
    let bytes = std::mem::size_of_val(buf);
    w.send.clear();
    w.send.resize(bytes.div_ceil(std::mem::size_of::<f64>()), 0.0);
    // SAFETY: `send` holds at least `bytes` bytes, at the alignment of f64
    // (its pointer is a `Vec<f64>`'s, dangling but aligned when empty),
    // which is at least T's (asserted); T is a plain float type (f32 or
    // f64) with no invalid bit patterns; `send` is not otherwise borrowed
    // while the slice lives.
    let send: &mut [T] = unsafe { std::slice::from_raw_parts_mut(w.send.as_mut_ptr().cast::<T>(), buf.len()) };
    send.copy_from_slice(buf);
    w.comm.all_reduce_into(&*send, buf, SystemOperation::sum());
}

impl Comm for MpiComm {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_f32(&self, buf: &mut [f32]) -> Result<()> {
        if self.size > 1 {
            self.with(|w| sum(w, buf));
        }
        Ok(())
    }

    fn all_reduce_f64(&self, buf: &mut [f64]) -> Result<()> {
        if self.size > 1 {
            self.with(|w| sum(w, buf));
        }
        Ok(())
    }

    fn all_reduce_into_f32(&self, send: &[f32], recv: &mut [f32]) -> Result<()> {
        self.sum_into(send, recv)
    }

    fn all_reduce_into_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<()> {
        self.sum_into(send, recv)
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<()> {
        check_root(root, self.size)?;
        if self.size == 1 {
            return Ok(());
        }
        self.with(|w| {
            let process = w.comm.process_at_rank(root as i32);
            let mut len = bytes.len() as u64;
            process.broadcast_into(&mut len);
            bytes.resize(len as usize, 0);
            // An empty slice's buffer is a dangling pointer, which
            // OpenMPI refuses (MPI_ERR_ARG) even for a count of 0.
            if len > 0 {
                process.broadcast_into(&mut bytes[..]);
            }
        });
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.with(|w| w.comm.barrier());
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "mpi"
    }

    fn abort(&self, code: i32) {
        if self.size > 1 {
            // No unlock: abort never returns; a poisoned lock is still usable.
            let w = self.world.lock().unwrap_or_else(PoisonError::into_inner);
            w.comm.abort(code);
        }
    }
}

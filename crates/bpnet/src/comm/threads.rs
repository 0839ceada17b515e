//! Ranks as threads of one process: a [`Comm`] for tests and for trying
//! data-parallel code without MPI. Sums are taken in rank order (0, 1, ...)
//! by every rank, so all ranks get the same bits.

use super::{Comm, check_root};
use crate::error::{Error, Result};
use std::sync::{Arc, Barrier, Mutex, PoisonError};

#[derive(Debug)]
struct Shared {
    size: usize,
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
    bytes: Mutex<Vec<u8>>,
}

/// One rank of a group of threads created by [`ThreadGroup::new`]; give each
/// rank to its own thread.
#[derive(Debug, Clone)]
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

impl ThreadGroup {
    /// The `size` ranks of a new group, rank `r` at index `r`.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            size,
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![Vec::new(); size]),
            bytes: Mutex::new(Vec::new()),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Deposits `values`, waits for every rank, then calls `combine` on all
    /// ranks' deposits (rank order) and waits again before slots are reused.
    fn exchange(&self, values: Vec<f64>, combine: &mut dyn FnMut(&[Vec<f64>]) -> Result<()>) -> Result<()> {
        lock(&self.shared.slots)[self.rank] = values;
        self.shared.barrier.wait();
        let result = combine(&lock(&self.shared.slots));
        self.shared.barrier.wait();
        result
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn same_lengths(slots: &[Vec<f64>], len: usize) -> Result<()> {
    match slots.iter().position(|s| s.len() != len) {
        Some(r) => Err(Error::Comm(format!(
            "all-reduce of {len} values, but rank {r} gave {}",
            slots[r].len()
        ))),
        None => Ok(()),
    }
}

impl Comm for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn all_reduce_f32(&self, buf: &mut [f32]) -> Result<()> {
        let mine = buf.iter().map(|&v| f64::from(v)).collect();
        self.exchange(mine, &mut |slots| {
            same_lengths(slots, buf.len())?;
            for (i, b) in buf.iter_mut().enumerate() {
                // f32 -> f64 -> f32 is exact; the sum is taken in f32.
                let mut acc = slots[0][i] as f32;
                slots[1..].iter().for_each(|s| acc += s[i] as f32);
                *b = acc;
            }
            Ok(())
        })
    }

    fn all_reduce_f64(&self, buf: &mut [f64]) -> Result<()> {
        self.exchange(buf.to_vec(), &mut |slots| {
            same_lengths(slots, buf.len())?;
            for (i, b) in buf.iter_mut().enumerate() {
                let mut acc = slots[0][i];
                slots[1..].iter().for_each(|s| acc += s[i]);
                *b = acc;
            }
            Ok(())
        })
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<()> {
        check_root(root, self.shared.size)?;
        if self.rank == root {
            *lock(&self.shared.bytes) = bytes.clone();
        }
        self.shared.barrier.wait();
        if self.rank != root {
            bytes.clone_from(&lock(&self.shared.bytes));
        }
        self.shared.barrier.wait();
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.shared.barrier.wait();
        Ok(())
    }

    fn engine(&self) -> &'static str {
        "threads"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_broadcasts_and_agrees() {
        let handles: Vec<_> = ThreadGroup::new(3)
            .into_iter()
            .map(|c| {
                std::thread::spawn(move || {
                    let r = c.rank() as f32;
                    let mut a = vec![r, 1.0, 0.1 * r];
                    c.all_reduce_f32(&mut a).unwrap();
                    let mut b = vec![r as f64 * 0.5];
                    c.all_reduce_f64(&mut b).unwrap();
                    let mut bytes = if c.rank() == 1 { b"hello".to_vec() } else { vec![] };
                    c.broadcast(1, &mut bytes).unwrap();
                    let same = crate::comm::agree(&c, "config", b"x").is_ok();
                    let differs = crate::comm::agree(&c, "config", &[c.rank() as u8 % 2]);
                    (a, b, bytes, same, differs.map_err(|e| e.to_string()))
                })
            })
            .collect();
        for h in handles {
            let (a, b, bytes, same, differs) = h.join().unwrap();
            assert_eq!(a, vec![3.0, 3.0, (0.0f32 + 0.1) + 0.2]);
            assert_eq!(b, vec![1.5]);
            assert_eq!(bytes, b"hello");
            assert!(same);
            let e = differs.unwrap_err();
            assert!(e.contains("config: rank 1 disagrees with rank 0"), "{e}");
        }
    }
}

//! Data work split over the threads of [`crate::parallel`]: `0..n` cut into
//! one contiguous range per thread, results returned in range order (so a
//! caller that takes the first error, or appends notes in order, gets what
//! a single thread would).

use std::ops::Range;
use std::sync::Mutex;

/// Work (items x cost) below which everything runs on the calling thread.
const MIN_WORK: usize = 1 << 16;

/// `f` over contiguous ranges covering `0..n`, one per thread when `work`
/// is large enough, in order.
pub(crate) fn in_parts<T: Send>(n: usize, work: usize, f: impl Fn(Range<usize>) -> T + Sync) -> Vec<T> {
    let parts = if work < MIN_WORK {
        1
    } else {
        crate::parallel::threads().min(n).max(1)
    };
    if parts == 1 {
        return vec![f(0..n)];
    }
    let slots: Vec<Mutex<Option<T>>> = (0..parts).map(|_| Mutex::new(None)).collect();
    crate::parallel::run(parts, &|i| {
        let out = f(n * i / parts..n * (i + 1) / parts);
        if let Ok(mut slot) = slots[i].lock() {
            *slot = Some(out);
        }
    });
    // A part whose slot was poisoned runs again here (a panic is re-raised
    // by `run` before this point, so this does not happen in practice).
    slots
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| f(n * i / parts..n * (i + 1) / parts))
        })
        .collect()
}

/// Fills `out` (`[n, width]`, row-major) by `f(rows, out_rows)` over
/// contiguous row ranges, one per thread when `n * width` is large enough;
/// the first error in row order.
pub(crate) fn fill_rows<E: Send>(
    out: &mut [f32],
    n: usize,
    width: usize,
    f: impl Fn(Range<usize>, &mut [f32]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let parts = if n * width < MIN_WORK {
        1
    } else {
        crate::parallel::threads().min(n).max(1)
    };
    let per = n.div_ceil(parts).max(1);
    let chunks: Vec<Mutex<(usize, &mut [f32])>> = out
        .chunks_mut((per * width).max(1))
        .enumerate()
        .map(|(i, c)| Mutex::new((i, c)))
        .collect();
    let results: Vec<Mutex<Result<(), E>>> = chunks.iter().map(|_| Mutex::new(Ok(()))).collect();
    crate::parallel::run(chunks.len(), &|i| {
        if let Ok(mut chunk) = chunks[i].lock() {
            let (k, rows) = &mut *chunk;
            let range = *k * per..(*k * per + per).min(n);
            let r = f(range, rows);
            if let Ok(mut slot) = results[i].lock() {
                *slot = r;
            }
        }
    });
    for r in results {
        if let Ok(Err(e)) = r.into_inner() {
            return Err(e);
        }
    }
    Ok(())
}

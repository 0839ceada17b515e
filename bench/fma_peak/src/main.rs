//! One core's f32 fused multiply-add peak: 16 independent accumulator
//! chains of `acc = acc * a + b` kept in registers (enough to cover the
//! FMA latency on two pipes), with the widest vectors the CPU offers
//! (AVX-512, else AVX2 + FMA). Prints GFLOP/s for 1 thread and for every
//! core at once (one chain set per thread), best of 5 runs each; counts
//! 2 FLOP per lane per FMA, as the GEMM figures do.

use std::time::Instant;

#[cfg(target_arch = "x86_64")]
mod kernels {
    use std::arch::x86_64::*;

    /// `iters` rounds of 16 FMAs on 16-lane vectors; returns a sum so that
    /// nothing is optimized away.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(iters: u64) -> f32 {
        let mut acc = [_mm512_set1_ps(0.0); 16];
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let s = acc.iter().fold(_mm512_set1_ps(0.0), |s, &v| _mm512_add_ps(s, v));
        _mm512_reduce_add_ps(s)
    }

    /// The same with 8-lane vectors.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(iters: u64) -> f32 {
        let mut acc = [_mm256_set1_ps(0.0); 16];
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut out = [0f32; 8];
        let s = acc.iter().fold(_mm256_set1_ps(0.0), |s, &v| _mm256_add_ps(s, v));
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }
}

/// (name, lanes, kernel) for the widest vectors this CPU runs.
#[cfg(target_arch = "x86_64")]
fn widest() -> Option<(&'static str, u64, fn(u64) -> f32)> {
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected at run time.
        Some(("AVX-512", 16, |n| unsafe { kernels::avx512(n) }))
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA were detected at run time.
        Some(("AVX2+FMA", 8, |n| unsafe { kernels::avx2(n) }))
    } else {
        None
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn widest() -> Option<(&'static str, u64, fn(u64) -> f32)> {
    None
}

fn main() {
    let Some((name, lanes, kernel)) = widest() else {
        eprintln!("fma_peak: needs an x86-64 CPU with AVX2+FMA or AVX-512");
        std::process::exit(1);
    };
    let iters = 100_000_000u64;
    let flop = (iters * 16 * lanes * 2) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores] {
        let mut best = 0f64;
        for _ in 0..5 {
            let t = Instant::now();
            let sums: Vec<f32> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads).map(|_| s.spawn(move || kernel(iters))).collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let secs = t.elapsed().as_secs_f64();
            assert!(sums.iter().all(|x| x.is_finite()));
            best = best.max(flop * threads as f64 / secs / 1e9);
        }
        println!("{name} f32 FMA peak, {threads} thread(s): {best:.1} GFLOP/s");
        if cores == 1 {
            break;
        }
    }
}

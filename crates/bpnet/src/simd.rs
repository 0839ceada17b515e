//! Runtime selection of wider vector instructions for element-wise loops.
//!
//! The crate is compiled for the baseline x86-64 target (SSE2, 4 lanes of
//! f32), so that one binary runs on any x86-64 machine. A function declared
//! with [`vectorized!`] is compiled three times, for AVX-512, for AVX2 + FMA
//! and for the baseline, and each call runs the widest one this CPU
//! supports; its loops are then vectorized 16 or 8 lanes wide. Results do not
//! change: Rust never fuses a multiply and an add on its own, so each element
//! goes through the same IEEE operations whatever the vector width (tested
//! in `tests/simd.rs` against [`set_baseline_only`]).

use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not yet detected, 1: baseline, 2: AVX2 + FMA, 3: AVX-512.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The vector extension [`vectorized!`] functions use: 3 AVX-512, 2 AVX2, 1 baseline.
#[inline(always)]
pub fn level() -> u8 {
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let l = detect();
            LEVEL.store(l, Ordering::Relaxed);
            l
        }
        l => l,
    }
}

fn detect() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        // Level 3 kernels are compiled with avx512f, avx2 and fma: all three
        // (a CPU with AVX-512F has the others, a virtual one may mask them).
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return 3;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return 2;
        }
    }
    1
}

/// Whether this CPU has AVX-512F, whatever [`set_baseline_only`] says: the
/// precondition of kernels written with AVX-512 intrinsics, which callers
/// choose by [`level`] but which stay sound if the level is lowered while
/// they run.
pub(crate) fn has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Serializes the library's unit tests that lower the level
/// ([`set_baseline_only`]) with those that compare the bits of two calls
/// whose path depends on it (inference picks its kernels by [`level`]): the
/// level is one global, and the test harness runs tests on several threads.
#[cfg(test)]
pub(crate) fn level_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes [`vectorized!`] functions run their baseline version (`true`) or
/// the widest again (`false`); for tests that compare the two.
pub fn set_baseline_only(on: bool) {
    LEVEL.store(if on { 1 } else { detect() }, Ordering::Relaxed);
}

/// Declares `fn name<T: Scalar>(args) { body }` (or `fn name(args) { body
/// }`) compiled for AVX-512, AVX2 and the baseline, dispatching at run time
/// (see the module docs). The body should call only `#[inline(always)]`
/// code so that all of it is widened.
#[macro_export]
#[doc(hidden)]
macro_rules! vectorized {
    ($(#[$m:meta])* $vis:vis fn $name:ident<$T:ident: Scalar>($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name<$T: $crate::scalar::Scalar>($($a: $t),*) {
            #[inline(always)]
            fn body<$T: $crate::scalar::Scalar>($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn wide512<$T: $crate::scalar::Scalar>($($a: $t),*) { body($($a),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn wide256<$T: $crate::scalar::Scalar>($($a: $t),*) { body($($a),*) }
            match $crate::simd::level() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: level 3 means the CPU has AVX-512F, AVX2 and FMA.
                3 => unsafe { wide512($($a),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: level 2 means the CPU has AVX2 and FMA.
                2 => unsafe { wide256($($a),*) },
                _ => body($($a),*),
            }
        }
    };
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) {
            #[inline(always)]
            fn body($($a: $t),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn wide512($($a: $t),*) { body($($a),*) }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn wide256($($a: $t),*) { body($($a),*) }
            match $crate::simd::level() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: level 3 means the CPU has AVX-512F, AVX2 and FMA.
                3 => unsafe { wide512($($a),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: level 2 means the CPU has AVX2 and FMA.
                2 => unsafe { wide256($($a),*) },
                _ => body($($a),*),
            }
        }
    };
}

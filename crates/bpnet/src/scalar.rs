//! The floating-point element type. Training runs in `f32`; gradient checks
//! run the very same layer code in `f64`. Matrix products go through faer's
//! `matmul` (see `docs/GEMM.md` for the measurements behind that choice).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point type the network can be computed in (`f32` or `f64`).
///
/// Besides arithmetic it provides the elementary functions the layers need and
/// the strided GEMM kernel of the chosen GEMM crate.
pub trait Scalar:
    Copy
    + Default
    + PartialOrd
    + Debug
    + Display
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Name used in messages (`"f32"`).
    const NAME: &'static str;
    /// Converts from `f64` (rounding to nearest).
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` (exact).
    fn to_f64(self) -> f64;
    /// e^self.
    fn exp(self) -> Self;
    /// e^self in a branch-free form the compiler can vectorize: for `f32` a
    /// polynomial (Cephes' `expf`, relative error below 3e-7, checked against
    /// f64 in the tests), saturating to ~1.2e-38 below -87.3 and ~2.2e38 above
    /// 88.3; for `f64` (the gradient checks) the exact libm `exp`.
    fn exp_vec(self) -> Self;
    /// tanh in a branch-free form the compiler can vectorize: for `f32`
    /// Cephes' `tanhf` (relative error below 2e-7, see [`crate::vecmath`]);
    /// for `f64` libm's `tanh`.
    fn tanh_vec(self) -> Self;
    /// e^self - 1, branch-free for `f32` (relative error below 2e-7); libm's
    /// `expm1` for `f64`.
    fn exp_m1_vec(self) -> Self;
    /// The complementary error function, branch-free for `f32` (relative
    /// error below 1.5e-6 for `x < 3`, 1e-5 while the result is above
    /// 1e-30); libm's `erfc` for `f64`.
    fn erfc_vec(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + self), accurate near 0.
    fn ln_1p(self) -> Self;
    /// e^self - 1, accurate near 0.
    fn exp_m1(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// The error function.
    fn erf(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Larger of two values.
    fn max(self, other: Self) -> Self;
    /// Smaller of two values.
    fn min(self, other: Self) -> Self;
    /// Integer power.
    fn powi(self, n: i32) -> Self;
    /// Neither NaN nor infinite.
    fn is_finite(self) -> bool;

    /// `C = alpha * A * B` (or `C += alpha * A * B` with `accumulate`) on raw
    /// strided storage given as (pointer, row stride, column stride); `A` is
    /// `m x k`, `B` is `k x n`, `C` is `m x n`.
    ///
    /// # Safety
    /// Each pointer with its strides must address valid storage of the stated
    /// shape, and `C` must not overlap `A` or `B`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: (*const Self, isize, isize),
        b: (*const Self, isize, isize),
        accumulate: bool,
        c: (*mut Self, isize, isize),
    );
}

macro_rules! impl_scalar {
    ($t:ty, $name:literal, $erf:path, $exp_vec:path, $tanh_vec:path, $exp_m1_vec:path, $erfc_vec:path) => {
        impl Scalar for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAME: &'static str = $name;
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn exp_vec(self) -> Self {
                $exp_vec(self)
            }
            #[inline(always)]
            fn tanh_vec(self) -> Self {
                $tanh_vec(self)
            }
            #[inline(always)]
            fn exp_m1_vec(self) -> Self {
                $exp_m1_vec(self)
            }
            #[inline(always)]
            fn erfc_vec(self) -> Self {
                $erfc_vec(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn max(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
            #[inline]
            fn min(self, other: Self) -> Self {
                <$t>::min(self, other)
            }
            #[inline]
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
            #[inline]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: (*const Self, isize, isize),
                b: (*const Self, isize, isize),
                accumulate: bool,
                c: (*mut Self, isize, isize),
            ) {
                // SAFETY: forwarded from the caller's contract.
                let (a, b, c) = unsafe {
                    (
                        MatRef::from_raw_parts(a.0, m, k, a.1, a.2),
                        MatRef::from_raw_parts(b.0, k, n, b.1, b.2),
                        MatMut::from_raw_parts_mut(c.0, m, n, c.1, c.2),
                    )
                };
                let accum = if accumulate { Accum::Add } else { Accum::Replace };
                matmul(c, accum, a, b, alpha, Par::Seq);
                clear_upper_vector_state();
            }
        }
    };
}

impl_scalar!(
    f32,
    "f32",
    libm::erff,
    exp_poly_f32,
    crate::vecmath::tanh_poly_f32,
    crate::vecmath::expm1_poly_f32,
    crate::vecmath::erfc_poly_f32
);
impl_scalar!(f64, "f64", libm::erf, f64::exp, f64::tanh, f64::exp_m1, libm::erfc);

/// Branch-free `e^x` for `f32`: `x = n ln2 + r` with `n = round(x / ln2)`
/// (by the 1.5 * 2^23 rounding trick, which also leaves `n` in the low
/// mantissa bits), `|r| <= ln2 / 2`, Cephes' degree-7 polynomial for `e^r`,
/// and `2^n` built from its exponent bits. The input is clamped to
/// [-87.3, 88.3] so that `n` stays in the normal exponent range.
#[inline(always)]
pub(crate) fn exp_poly_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const SHIFT: f32 = 12_582_912.0; // 1.5 * 2^23
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // Low mantissa bits of t hold n (two's complement within 2^22).
    let n_bits = t.to_bits().wrapping_sub(SHIFT.to_bits()) as i32;
    e_r * f32::from_bits(((n_bits + 127) as u32) << 23)
}

/// Executes `vzeroupper` after a GEMM call when AVX is available. faer's
/// AVX-512 kernels return with the upper vector-register halves dirty; the
/// SSE-encoded element-wise code that follows then runs about twice as slow
/// (measured on the paper's network, batch 60: 0.61 ms per training step
/// without this, 0.35-0.42 ms with it; perf showed `__expf_fma` and the
/// batch-norm loops taking twice the cycles).
#[inline]
fn clear_upper_vector_state() {
    // Not under Miri, which cannot interpret the instruction (it has no
    // effect on values: only on speed).
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: AVX support was checked at run time; vzeroupper only clears
        // the upper halves of vector registers, which hold no live values
        // across this call boundary.
        unsafe { avx_zeroupper() }
    }
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[target_feature(enable = "avx")]
unsafe fn avx_zeroupper() {
    std::arch::x86_64::_mm256_zeroupper();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomial_exp_is_accurate_over_the_whole_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = exp_poly_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_37;
        }
        println!("polynomial exp: worst relative error {worst:e} over [-87, 88]");
        assert!(worst < 3e-7, "worst relative error {worst:e}");
    }

    #[test]
    fn polynomial_exp_saturates_and_keeps_nan() {
        assert!(exp_poly_f32(-1e30) > 0.0 && exp_poly_f32(-1e30) < 2e-38);
        assert!(exp_poly_f32(1e30).is_finite() && exp_poly_f32(1e30) > 1e38);
        assert!(exp_poly_f32(f32::NEG_INFINITY) >= 0.0);
        assert!(exp_poly_f32(f32::NAN).is_nan());
        assert_eq!(exp_poly_f32(0.0), 1.0);
    }
}

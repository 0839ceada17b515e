//! Branch-free `f32` forms of `tanh`, `e^x - 1` and `erfc`, so that the loops
//! of the tanh, ELU and GELU activations vectorize (through libm they run one
//! value at a time, 5x the time of a ReLU network on a table; see
//! docs/PERFORMANCE.md). Each computes every piece and selects, so NaN
//! passes through. `f64` (the gradient checks) keeps libm's exact functions.
//!
//! | function | method | worst error, tested over the f32 range |
//! |---|---|---|
//! | `tanh` | Cephes' `tanhf`: odd polynomial for `|x| < 0.625`, else `1 - 2 / (e^{2|x|} + 1)` | relative 2e-7 |
//! | `e^x - 1` | Taylor to `x^8` for `|x| < 0.5`, else `e^x - 1` | relative 2e-7 |
//! | `erfc` | Numerical Recipes' `erfcc` (Chebyshev fit, fractional error < 1.2e-7) | relative 1.5e-6 for `x < 3`, 1e-5 up to 8.2 (where `erfc = 1e-30`; the f32 rounding of `x^2` in the exponent) |

use crate::scalar::exp_poly_f32;

/// `tanh x` (Cephes' `tanhf` coefficients).
#[inline(always)]
pub(crate) fn tanh_poly_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = -5.704_988_7e-3_f32;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    let big = (1.0 - 2.0 / (exp_poly_f32(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 { small } else { big }
}

/// `e^x - 1`, accurate near 0.
#[inline(always)]
pub(crate) fn expm1_poly_f32(x: f32) -> f32 {
    // x + x^2/2! + ... + x^8/8! (the next term is below 1.4e-8 relative at 0.5).
    let p = 1.0 / 40_320.0_f32;
    let p = p * x + 1.0 / 5_040.0;
    let p = p * x + 1.0 / 720.0;
    let p = p * x + 1.0 / 120.0;
    let p = p * x + 1.0 / 24.0;
    let p = p * x + 1.0 / 6.0;
    let p = p * x + 0.5;
    let small = p * x * x + x;
    let big = exp_poly_f32(x) - 1.0;
    if x.abs() < 0.5 { small } else { big }
}

/// `erfc x = 1 - erf x`, with a small relative error also where it is tiny
/// (large `x`), which `1 - erf x` loses: Numerical Recipes' `erfcc`,
/// `erfc z = t exp(-z^2 + P(t))` with `t = 1 / (1 + z/2)` for `z = |x|`, and
/// `2 - erfc |x|` for negative `x`.
#[inline(always)]
pub(crate) fn erfc_poly_f32(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = 0.170_872_77_f32;
    let p = p * t - 0.822_152_23;
    let p = p * t + 1.488_515_9;
    let p = p * t - 1.135_204;
    let p = p * t + 0.278_868_07;
    let p = p * t - 0.186_288_06;
    let p = p * t + 0.096_784_18;
    let p = p * t + 0.374_091_96;
    let p = p * t + 1.000_023_7;
    let p = p * t - 1.265_512_2;
    let e = t * exp_poly_f32(p - z * z);
    // exp_poly_f32 saturates at ~1.2e-38 instead of reaching 0 (the test
    // is written so that NaN keeps `e`).
    let e = if z >= 9.2 { 0.0 } else { e };
    if x >= 0.0 { e } else { 2.0 - e }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst error of `f` against `want` (in f64) over `[lo, hi]`, relative
    /// where `|want| >= floor`, else absolute scaled by `floor`.
    fn worst(f: impl Fn(f32) -> f32, want: impl Fn(f64) -> f64, lo: f32, hi: f32, floor: f64) -> (f64, f32) {
        let (mut w, mut at) = (0.0f64, lo);
        let mut x = lo;
        let step = (hi - lo) / 2_000_003.0;
        while x <= hi {
            let (g, e) = (f(x) as f64, want(x as f64));
            let err = (g - e).abs() / e.abs().max(floor);
            if err > w {
                (w, at) = (err, x);
            }
            x += step;
        }
        (w, at)
    }

    #[test]
    fn tanh_is_accurate_over_the_range() {
        let (w, at) = worst(tanh_poly_f32, f64::tanh, -20.0, 20.0, 1e-30);
        println!("tanh: worst relative error {w:e} at {at}");
        assert!(w < 2e-7, "{w:e} at {at}");
        // Tiny inputs, where tanh x = x in f32.
        for x in [1e-30f32, -3e-20, 1e-8, 2e-4] {
            assert!(
                ((tanh_poly_f32(x) as f64 - (x as f64).tanh()) / x as f64).abs() < 1e-7,
                "{x}"
            );
        }
        assert_eq!(tanh_poly_f32(1e30), 1.0);
        assert_eq!(tanh_poly_f32(-1e30), -1.0);
        assert_eq!(tanh_poly_f32(0.0), 0.0);
    }

    #[test]
    fn expm1_is_accurate_over_the_range() {
        let (w, at) = worst(expm1_poly_f32, f64::exp_m1, -90.0, 10.0, 1e-30);
        println!("expm1: worst relative error {w:e} at {at}");
        assert!(w < 2e-7, "{w:e} at {at}");
        let (w, at) = worst(expm1_poly_f32, f64::exp_m1, -1e-3, 1e-3, 1e-30);
        assert!(w < 2e-7, "near 0: {w:e} at {at}");
        assert_eq!(expm1_poly_f32(-1e30), -1.0);
    }

    #[test]
    fn erfc_is_accurate_over_the_range() {
        // Relative where erfc > 1e-30 (x < 8.2), absolute below.
        let (w, at) = worst(erfc_poly_f32, libm::erfc, -10.0, 3.0, 1e-30);
        println!("erfc: worst relative error {w:e} at {at} below 3");
        assert!(w < 1.5e-6, "{w:e} at {at}");
        let (w, at) = worst(erfc_poly_f32, libm::erfc, 3.0, 8.2, 1e-30);
        println!("erfc: worst relative error {w:e} at {at} from 3 to 8.2");
        assert!(w < 1e-5, "from 3: {w:e} at {at}");
        let (w, at) = worst(erfc_poly_f32, libm::erfc, 8.2, 12.0, 1e-30);
        assert!(w < 1e-5, "above 8.2 (absolute, scaled by 1e-30): {w:e} at {at}");
        assert_eq!(erfc_poly_f32(1e30), 0.0);
        assert_eq!(erfc_poly_f32(-1e30), 2.0);
    }

    #[test]
    fn nan_passes_through() {
        assert!(tanh_poly_f32(f32::NAN).is_nan());
        assert!(expm1_poly_f32(f32::NAN).is_nan());
        assert!(erfc_poly_f32(f32::NAN).is_nan());
    }
}

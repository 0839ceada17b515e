//! Inverted dropout: in training each value is kept with probability `1 - p`
//! and scaled by `1 / (1 - p)`, so the expected output equals the input; in
//! evaluation it is the identity. Shapes: `x, y: [batch, features]`.
//!
//! **The masks.** Each training forward draws one 64-bit key from the
//! layer's seeded stream (xoshiro256++, the state a checkpoint saves). Mask
//! element `i` (row-major over the batch) is then dropped iff
//! `u_i < p`, where `u_i = (z_i >> 11) / 2^53` and `z_i` is output number `i`
//! of SplitMix64 (Steele, Lea & Flood 2014) started from that key: a
//! counter-based draw, so the elements are computed independently, 8 or 16
//! at a time, and a data-parallel rank computes only its own rows' part.

use super::Mode;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Matrix;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// SplitMix64's increment (2^64 divided by the golden ratio, odd).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 53-bit uniform draw of mask element `i` under `key`: SplitMix64's
/// output number `i` (counting from 0) from state `key`, top 53 bits.
#[inline(always)]
fn draw(key: u64, i: u64) -> u64 {
    let mut z = key.wrapping_add(i.wrapping_add(1).wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >> 11
}

/// The integer cut of rate `p` in `[0, 1)`: for a 53-bit integer `u`,
/// `u / 2^53 < p` exactly when `u < cut(p)` (`p * 2^53` is exact).
fn cut(p: f64) -> u64 {
    (p * (1u64 << 53) as f64).ceil() as u64
}

crate::vectorized! {
    /// `mask[j] = 0` if element `first + j` is dropped, else `keep`;
    /// `out[j] = x[j] * mask[j]`. All three slices have one length.
    fn mask_kernel<T: Scalar>(x: &[T], mask: &mut [T], out: &mut [T], key: u64, first: u64, cut: u64, keep: T) {
        for (j, ((y, m), &v)) in out.iter_mut().zip(mask.iter_mut()).zip(x).enumerate() {
            let d = if draw(key, first + j as u64) < cut { T::ZERO } else { keep };
            *m = d;
            *y = v * d;
        }
    }
}

/// A dropout layer with its own seeded random stream.
#[derive(Debug, Clone)]
pub struct Dropout<T> {
    /// Probability of dropping a value, in `[0, 1)`.
    pub p: f64,
    rng: Xoshiro256PlusPlus,
    // 0 or 1/(1-p) per element of the last training forward; empty otherwise.
    mask: Matrix<T>,
    out: Matrix<T>,
    dx: Matrix<T>,
    /// Data-parallel training: this rank's rows start at this row of the
    /// global batch (see [`Dropout::set_window`]).
    window: Option<usize>,
}

impl<T: Scalar> Dropout<T> {
    /// Dropout with rate `p` in `[0, 1)`, its mask stream seeded by `seed`.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::config("dropout", format!("{p} is not in [0, 1)")));
        }
        Ok(Dropout {
            p,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            mask: Matrix::default(),
            out: Matrix::default(),
            dx: Matrix::default(),
            window: None,
        })
    }

    /// Training: `y = x * mask`; otherwise `y = x`.
    pub fn forward(&mut self, x: &Matrix<T>, mode: Mode) -> Result<()> {
        self.out.resize(x.rows(), x.cols());
        if mode != Mode::Train || self.p == 0.0 {
            self.mask.resize(0, x.cols());
            self.out.as_mut_slice().copy_from_slice(x.as_slice());
            return Ok(());
        }
        self.mask.resize(x.rows(), x.cols());
        let keep = T::from_f64(1.0 / (1.0 - self.p));
        let start = self.window.take().unwrap_or(0);
        let key = self.rng.next_u64();
        let first = (start * x.cols()) as u64;
        mask_kernel(
            x.as_slice(),
            self.mask.as_mut_slice(),
            self.out.as_mut_slice(),
            key,
            first,
            cut(self.p),
            keep,
        );
        Ok(())
    }

    /// In data-parallel training, the next training forward's `x` holds rows
    /// `start..start + x.rows()` of a global batch of `rows` rows: every rank
    /// draws the same key and computes its rows' part of the global batch's
    /// mask, so N ranks drop exactly what one process with the global batch
    /// drops. Applies to that one forward only. (`rows` is not needed by the
    /// counter-based masks; debug builds only check `start <= rows`.)
    pub fn set_window(&mut self, start: usize, rows: usize) {
        debug_assert!(start <= rows, "window start {start} past a global batch of {rows}");
        self.window = Some(start);
    }

    /// `dx = dy * mask` (or `dy` after a non-training forward).
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        if dy.shape() != x.shape() {
            return Err(Error::shape("dropout backward", x, dy));
        }
        if need_dx {
            self.dx.resize(x.rows(), x.cols());
            if self.mask.rows() == 0 {
                self.dx.as_mut_slice().copy_from_slice(dy.as_slice());
            } else {
                for ((d, &g), &m) in self
                    .dx
                    .as_mut_slice()
                    .iter_mut()
                    .zip(dy.as_slice())
                    .zip(self.mask.as_slice())
                {
                    *d = g * m;
                }
            }
        }
        Ok(())
    }

    /// The last forward's output.
    pub fn output(&self) -> &Matrix<T> {
        &self.out
    }

    /// The last backward's input gradient.
    pub fn input_grad(&self) -> &Matrix<T> {
        &self.dx
    }

    /// The state of the mask stream (saved in checkpoints so that a resumed
    /// run draws the same masks).
    pub fn rng(&self) -> &Xoshiro256PlusPlus {
        &self.rng
    }

    /// Replaces the mask stream's state.
    pub fn set_rng(&mut self, rng: Xoshiro256PlusPlus) {
        self.rng = rng;
    }

    /// E.g. `Dropout(0.5)`.
    pub fn describe(&self) -> String {
        format!("Dropout({})", self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(rows: usize, cols: usize) -> Matrix<f64> {
        Matrix::from_vec(rows, cols, vec![1.0; rows * cols]).unwrap()
    }

    /// The mask of one training forward, as dropped (true) or kept.
    fn dropped(d: &mut Dropout<f64>, x: &Matrix<f64>) -> Vec<bool> {
        d.forward(x, Mode::Train).unwrap();
        d.output().as_slice().iter().map(|&v| v == 0.0).collect()
    }

    #[test]
    fn the_integer_cut_is_the_float_comparison() {
        for p in [0.0, 1e-17, 0.1, 0.3, 0.5, 2.0 / 3.0, 0.9, 1.0 - f64::EPSILON / 2.0] {
            let c = cut(p);
            let u = |v: u64| v as f64 / (1u64 << 53) as f64;
            if c > 0 {
                assert!(u(c - 1) < p, "p {p}: {} is below it", c - 1);
            }
            assert!(u(c) >= p, "p {p}: {c} is not below it");
        }
    }

    #[test]
    fn the_drop_rate_is_p_and_kept_values_are_scaled() {
        // Shapes: one value, one row of a prime width, 33 rows of 7.
        for (rows, cols, forwards) in [(1, 1, 20_000), (1, 997, 20), (33, 7, 90)] {
            for p in [0.1, 0.5, 0.9] {
                let mut d = Dropout::<f64>::new(p, 7).unwrap();
                let x = ones(rows, cols);
                let mut n = 0.0;
                let mut drops = 0.0;
                for _ in 0..forwards {
                    d.forward(&x, Mode::Train).unwrap();
                    for &v in d.output().as_slice() {
                        assert!(v == 0.0 || v == 1.0 / (1.0 - p), "value {v}");
                        drops += (v == 0.0) as u8 as f64;
                        n += 1.0;
                    }
                }
                // Within 5 binomial standard deviations.
                let sd = (n * p * (1.0 - p)).sqrt();
                assert!((drops - n * p).abs() < 5.0 * sd, "{rows}x{cols} p {p}: {drops} of {n}");
            }
        }
    }

    #[test]
    fn neighbouring_values_and_forwards_are_independent() {
        // Joint drops of horizontal and vertical neighbours and of the same
        // element in consecutive forwards, against p^2 (5 sd).
        let (p, rows, cols) = (0.5, 33, 61);
        let mut d = Dropout::<f64>::new(p, 3).unwrap();
        let x = ones(rows, cols);
        let mut prev = dropped(&mut d, &x);
        let (mut pairs, mut right, mut below, mut again) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..200 {
            let m = dropped(&mut d, &x);
            for r in 0..rows - 1 {
                for c in 0..cols - 1 {
                    let i = r * cols + c;
                    pairs += 1.0;
                    right += (m[i] && m[i + 1]) as u8 as f64;
                    below += (m[i] && m[i + cols]) as u8 as f64;
                    again += (m[i] && prev[i]) as u8 as f64;
                }
            }
            prev = m;
        }
        let q = p * p;
        let sd = (pairs * q * (1.0 - q)).sqrt();
        for (what, k) in [("right", right), ("below", below), ("next forward", again)] {
            assert!((k - pairs * q).abs() < 5.0 * sd, "{what}: {k} of {pairs}");
        }
    }

    #[test]
    fn a_window_gives_its_rows_of_the_global_mask() {
        let (rows, cols) = (33, 5);
        let global = dropped(&mut Dropout::<f64>::new(0.4, 11).unwrap(), &ones(rows, cols));
        for (start, n) in [(0, 11), (11, 11), (22, 11), (5, 1), (32, 1), (0, 33)] {
            let mut d = Dropout::<f64>::new(0.4, 11).unwrap();
            d.set_window(start, rows);
            let part = dropped(&mut d, &ones(n, cols));
            assert_eq!(
                part,
                global[start * cols..(start + n) * cols],
                "rows {start}..{}",
                start + n
            );
        }
    }

    #[test]
    fn masks_follow_the_seed_and_change_between_forwards() {
        let x = ones(4, 16);
        let (mut a, mut b) = (
            Dropout::<f64>::new(0.5, 1).unwrap(),
            Dropout::<f64>::new(0.5, 1).unwrap(),
        );
        let first = dropped(&mut a, &x);
        assert_eq!(first, dropped(&mut b, &x));
        assert_ne!(first, dropped(&mut a, &x));
        assert_ne!(first, dropped(&mut Dropout::<f64>::new(0.5, 2).unwrap(), &x));
        // Evaluation and p = 0 draw nothing: the stream stays where it was.
        let mut c = Dropout::<f64>::new(0.5, 1).unwrap();
        c.forward(&x, Mode::Eval).unwrap();
        assert_eq!(c.output().as_slice(), x.as_slice());
        assert_eq!(dropped(&mut c, &x), first);
    }
}

//! Inverted dropout: in training each value is kept with probability `1 - p`
//! and scaled by `1 / (1 - p)`, so the expected output equals the input; in
//! evaluation it is the identity. Shapes: `x, y: [batch, features]`.

use super::Mode;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Matrix;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

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
    /// Data-parallel training: this rank's rows start at row `.0` of a
    /// global batch of `.1` rows (see [`Dropout::set_window`]).
    window: Option<(usize, usize)>,
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
        let (skip_before, skip_after) = match self.window.take() {
            Some((start, rows)) => (start, rows.saturating_sub(start + x.rows())),
            None => (0, 0),
        };
        self.skip(skip_before * x.cols());
        for ((y, m), &v) in self
            .out
            .as_mut_slice()
            .iter_mut()
            .zip(self.mask.as_mut_slice())
            .zip(x.as_slice())
        {
            *m = if self.rng.random::<f64>() < self.p {
                T::ZERO
            } else {
                keep
            };
            *y = v * *m;
        }
        self.skip(skip_after * x.cols());
        Ok(())
    }

    /// In data-parallel training, the next training forward's `x` holds rows
    /// `start..start + x.rows()` of a global batch of `rows` rows: the mask
    /// stream advances over the whole global batch and this rank uses its
    /// rows' part, so N ranks drop exactly what one process with the global
    /// batch drops. Applies to that one forward only.
    pub fn set_window(&mut self, start: usize, rows: usize) {
        self.window = Some((start, rows));
    }

    /// Draws and discards `n` mask values.
    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            let _ = self.rng.random::<f64>();
        }
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

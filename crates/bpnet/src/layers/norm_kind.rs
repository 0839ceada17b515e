//! Which normalization a network's normalization layers compute: batch
//! normalization and two variants of it for small batches (Batch
//! Renormalization, Ghost batch normalization), or layer normalization.
//!
//! Batch Renormalization and Ghost BN differ from batch normalization only in
//! training: at inference all three are the same affine map of the running
//! statistics, so they share the [`super::BatchNorm`] layer (its parameters,
//! running statistics, model-file tensors, folding and ONNX form); their
//! training forward and backward live in `batch_renorm.rs` and
//! `ghost_batch_norm.rs`. Layer normalization is its own layer
//! ([`super::LayerNorm`]).

use crate::error::{Error, Result};

/// The normalization computed by the normalization layers of a network.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// Batch normalization (Ioffe & Szegedy 2015).
    #[default]
    Batch,
    /// Batch Renormalization (Ioffe 2017, arXiv:1702.03275).
    Renorm(RenormConfig),
    /// Ghost batch normalization (Hoffer et al. 2017, arXiv:1705.08741):
    /// statistics over virtual batches of `size` rows.
    Ghost {
        /// Rows per virtual ("ghost") batch, at least 2.
        size: usize,
    },
    /// Layer normalization (Ba et al. 2016, arXiv:1607.06450): statistics
    /// over the features of each row.
    Layer,
}

impl NormKind {
    /// True for plain batch normalization (the default, not written to files).
    pub fn is_batch(&self) -> bool {
        *self == NormKind::Batch
    }

    /// True for the kinds that normalize with batch statistics in training
    /// (batch, renorm, ghost) and so need batches of at least two rows.
    pub fn uses_batch_statistics(&self) -> bool {
        !matches!(self, NormKind::Layer)
    }

    /// Parses `batch`, `renorm[:rmax[:dmax[:warmup[:rmax_steps[:dmax_steps]]]]]`,
    /// `ghost:N` or `layer` (`none` is handled by the caller: it is no layer).
    pub fn parse(s: &str) -> Result<Self> {
        let mut parts = s.trim().split(':');
        let name = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let bad = |why: String| Error::config("--norm", format!("'{s}': {why}"));
        let kind = match (name, rest.as_slice()) {
            ("batch" | "bn", []) => NormKind::Batch,
            ("layer" | "ln", []) => NormKind::Layer,
            ("ghost", [n]) => NormKind::Ghost {
                size: n
                    .parse()
                    .map_err(|_| bad(format!("ghost batch size '{n}' is not an integer")))?,
            },
            ("renorm", args) if args.len() <= 5 => {
                let mut c = RenormConfig::default();
                let num = |i: usize| -> Result<Option<f64>> {
                    args.get(i)
                        .map(|v| v.parse::<f64>().map_err(|_| bad(format!("'{v}' is not a number"))))
                        .transpose()
                };
                let step = |i: usize| -> Result<Option<u64>> {
                    args.get(i)
                        .map(|v| v.parse::<u64>().map_err(|_| bad(format!("'{v}' is not a step count"))))
                        .transpose()
                };
                c.rmax = num(0)?.unwrap_or(c.rmax);
                c.dmax = num(1)?.unwrap_or(c.dmax);
                c.warmup_steps = step(2)?.unwrap_or(c.warmup_steps);
                c.rmax_steps = step(3)?.unwrap_or(c.rmax_steps);
                c.dmax_steps = step(4)?.unwrap_or(c.dmax_steps);
                NormKind::Renorm(c)
            }
            _ => {
                return Err(bad(
                    "expected batch, renorm[:rmax[:dmax[:warmup[:rmax_steps[:dmax_steps]]]]], ghost:N, layer or none"
                        .into(),
                ));
            }
        };
        kind.validate()?;
        Ok(kind)
    }

    /// Checks the kind's settings.
    pub fn validate(&self) -> Result<()> {
        match self {
            NormKind::Renorm(c) => c.validate(),
            NormKind::Ghost { size } if *size < 2 => Err(Error::config(
                "ghost batch size",
                format!("{size} is below 2 (a virtual batch needs two rows for a variance)"),
            )),
            _ => Ok(()),
        }
    }

    /// Short name for reports: `batch`, `renorm`, `ghost:N`, `layer`.
    pub fn name(&self) -> String {
        match self {
            NormKind::Batch => "batch".into(),
            NormKind::Renorm(_) => "renorm".into(),
            NormKind::Ghost { size } => format!("ghost:{size}"),
            NormKind::Layer => "layer".into(),
        }
    }
}

/// Batch Renormalization settings: the clipping limits of the corrections
/// `r` (to `[1/rmax_t, rmax_t]`) and `d` (to `[-dmax_t, dmax_t]`) and their
/// warm-up schedule. The defaults are the paper's (sec. 4.1): plain batch
/// normalization (`rmax_t = 1`, `dmax_t = 0`) for 5,000 steps, then `rmax_t`
/// grows linearly to 3 at step 40,000 and `dmax_t` to 5 at step 25,000.
/// Steps count the layer's training batches (`num_batches_tracked`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenormConfig {
    /// Final limit of `r` (>= 1).
    pub rmax: f64,
    /// Final limit of `|d|` (>= 0).
    pub dmax: f64,
    /// Steps of plain batch normalization before the limits start to relax.
    pub warmup_steps: u64,
    /// Step at which `rmax_t` reaches `rmax` (at or after the warm-up).
    pub rmax_steps: u64,
    /// Step at which `dmax_t` reaches `dmax` (at or after the warm-up).
    pub dmax_steps: u64,
}

impl Default for RenormConfig {
    fn default() -> Self {
        RenormConfig {
            rmax: 3.0,
            dmax: 5.0,
            warmup_steps: 5_000,
            rmax_steps: 40_000,
            dmax_steps: 25_000,
        }
    }
}

impl RenormConfig {
    /// Checks `rmax >= 1`, `dmax >= 0` (finite) and that the ramps end at or
    /// after the warm-up.
    pub fn validate(&self) -> Result<()> {
        if !(self.rmax >= 1.0 && self.rmax.is_finite()) {
            return Err(Error::config(
                "renorm rmax",
                format!("{} is not a number >= 1", self.rmax),
            ));
        }
        if !(self.dmax >= 0.0 && self.dmax.is_finite()) {
            return Err(Error::config(
                "renorm dmax",
                format!("{} is not a number >= 0", self.dmax),
            ));
        }
        if self.rmax_steps < self.warmup_steps || self.dmax_steps < self.warmup_steps {
            return Err(Error::config(
                "renorm schedule",
                format!(
                    "rmax_steps {} and dmax_steps {} must not be before warmup_steps {}",
                    self.rmax_steps, self.dmax_steps, self.warmup_steps
                ),
            ));
        }
        Ok(())
    }

    /// The limits `(rmax_t, dmax_t)` for training step `t` (1-based): `(1, 0)`
    /// through the warm-up, then linear ramps to `(rmax, dmax)`.
    pub fn limits(&self, t: u64) -> (f64, f64) {
        let ramp = |end: u64, full: f64, start: f64| {
            if t <= self.warmup_steps {
                start
            } else if t >= end {
                full
            } else {
                let frac = (t - self.warmup_steps) as f64 / (end - self.warmup_steps) as f64;
                start + (full - start) * frac
            }
        };
        (
            ramp(self.rmax_steps, self.rmax, 1.0),
            ramp(self.dmax_steps, self.dmax, 0.0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_every_kind() {
        assert_eq!(NormKind::parse("batch").unwrap(), NormKind::Batch);
        assert_eq!(NormKind::parse("layer").unwrap(), NormKind::Layer);
        assert_eq!(NormKind::parse("ghost:16").unwrap(), NormKind::Ghost { size: 16 });
        let NormKind::Renorm(c) = NormKind::parse("renorm:2:1:10:20:30").unwrap() else {
            panic!("not renorm")
        };
        assert_eq!(
            (c.rmax, c.dmax, c.warmup_steps, c.rmax_steps, c.dmax_steps),
            (2.0, 1.0, 10, 20, 30)
        );
        assert_eq!(
            NormKind::parse("renorm").unwrap(),
            NormKind::Renorm(RenormConfig::default())
        );
        for bad in [
            "ghost:1",
            "ghost",
            "ghost:x",
            "renorm:0.5",
            "renorm:3:-1",
            "group",
            "renorm:3:5:10:5",
        ] {
            assert!(NormKind::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn schedule_ramps_linearly_after_warmup() {
        let c = RenormConfig {
            rmax: 3.0,
            dmax: 5.0,
            warmup_steps: 10,
            rmax_steps: 30,
            dmax_steps: 20,
        };
        assert_eq!(c.limits(1), (1.0, 0.0));
        assert_eq!(c.limits(10), (1.0, 0.0));
        assert_eq!(c.limits(20), (2.0, 5.0));
        assert_eq!(c.limits(25), (2.5, 5.0));
        assert_eq!(c.limits(1000), (3.0, 5.0));
    }
}

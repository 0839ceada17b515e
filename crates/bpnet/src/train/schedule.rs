//! Learning-rate schedules.
//!
//! `Constant`, `Step` and `Exponential` change the rate per epoch; `Cosine`
//! per step (with a linear warm-up); `Plateau` reacts to the monitored
//! validation metric at the end of each epoch.

use crate::error::{Error, Result};

/// A learning-rate schedule relative to the base rate `lr0`.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `lr = lr0`.
    Constant,
    /// `lr = lr0 * gamma^floor(epoch / every)`.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// `lr = lr0 * gamma^epoch`.
    Exponential {
        /// Decay factor per epoch.
        gamma: f64,
    },
    /// Linear warm-up from `lr0 / warmup` to `lr0` over `warmup` steps, then
    /// cosine decay towards `lr0 * min_ratio`, reached one step after the
    /// last (as PyTorch's `CosineAnnealingLR` with `T_max` the steps: the
    /// last step's rate is just above it).
    Cosine {
        /// Warm-up steps.
        warmup: usize,
        /// Final rate as a fraction of `lr0`.
        min_ratio: f64,
    },
    /// Multiply the rate by `factor` when the monitored validation metric has
    /// not improved for `patience` epochs (Keras/PyTorch ReduceLROnPlateau).
    Plateau {
        /// Multiplier (< 1).
        factor: f64,
        /// Epochs without improvement before reducing.
        patience: usize,
    },
}

impl Schedule {
    /// Parses `constant`, `step[:every[:gamma]]` (default 10, 0.5),
    /// `exponential[:gamma]` (0.95), `cosine[:warmup_steps]` (0),
    /// `plateau[:patience[:factor]]` (3, 0.5).
    pub fn parse(s: &str) -> Result<Self> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let nums: Vec<&str> = parts.collect();
        let num = |i: usize, default: f64| -> Result<f64> {
            nums.get(i).map_or(Ok(default), |v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| Error::config("schedule", format!("bad number '{v}' in '{s}'")))
            })
        };
        let sched = match name.as_str() {
            "constant" => Schedule::Constant,
            "step" => Schedule::Step {
                every: num(0, 10.0)? as usize,
                gamma: num(1, 0.5)?,
            },
            "exponential" | "exp" => Schedule::Exponential { gamma: num(0, 0.95)? },
            "cosine" => Schedule::Cosine {
                warmup: num(0, 0.0)? as usize,
                min_ratio: 0.0,
            },
            "plateau" => Schedule::Plateau {
                patience: num(0, 3.0)? as usize,
                factor: num(1, 0.5)?,
            },
            _ => {
                return Err(Error::config(
                    "schedule",
                    format!(
                        "unknown '{s}' (expected constant, step[:every[:gamma]], exponential[:gamma], cosine[:warmup], plateau[:patience[:factor]])"
                    ),
                ));
            }
        };
        sched.validate()?;
        Ok(sched)
    }

    /// Checks factors are in (0, 1] (a cosine's final fraction in [0, 1]:
    /// a negative one trained uphill) and periods positive.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::config("schedule", what.to_string()));
        match *self {
            Schedule::Step { every, gamma } if every == 0 || !(gamma > 0.0 && gamma <= 1.0) => {
                bad("step needs every >= 1 and gamma in (0, 1]")
            }
            Schedule::Exponential { gamma } if !(gamma > 0.0 && gamma <= 1.0) => bad("gamma must be in (0, 1]"),
            Schedule::Plateau { factor, .. } if !(factor > 0.0 && factor < 1.0) => {
                bad("plateau factor must be in (0, 1)")
            }
            Schedule::Cosine { min_ratio, .. } if !(0.0..=1.0).contains(&min_ratio) => {
                bad("cosine's final rate must be a fraction of the rate in [0, 1]")
            }
            _ => Ok(()),
        }
    }

    /// The rate for `step` (0-based, of `total_steps`) in `epoch` (0-based);
    /// `plateau_scale` is the product of plateau reductions so far.
    pub fn lr(&self, lr0: f64, step: usize, total_steps: usize, epoch: usize, plateau_scale: f64) -> f64 {
        match *self {
            Schedule::Constant => lr0,
            Schedule::Step { every, gamma } => lr0 * gamma.powi((epoch / every.max(1)) as i32),
            Schedule::Exponential { gamma } => lr0 * gamma.powi(epoch as i32),
            Schedule::Cosine { warmup, min_ratio } => {
                if step < warmup {
                    return lr0 * (step + 1) as f64 / warmup as f64;
                }
                let span = total_steps.saturating_sub(warmup).max(1) as f64;
                let t = ((step - warmup) as f64 / span).min(1.0);
                lr0 * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
            }
            Schedule::Plateau { .. } => lr0 * plateau_scale,
        }
    }

    /// The name as parsed back by [`Schedule::parse`].
    pub fn name(&self) -> String {
        match self {
            Schedule::Constant => "constant".into(),
            Schedule::Step { every, gamma } => format!("step:{every}:{gamma}"),
            Schedule::Exponential { gamma } => format!("exponential:{gamma}"),
            Schedule::Cosine { warmup, .. } => format!("cosine:{warmup}"),
            Schedule::Plateau { factor, patience } => format!("plateau:{patience}:{factor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas() {
        let s = Schedule::parse("step:2:0.1").unwrap();
        assert_eq!(
            [0, 1, 2, 4].map(|e| s.lr(1.0, 0, 10, e, 1.0)),
            [1.0, 1.0, 0.1, 0.1f64.powi(2)]
        );
        let e = Schedule::parse("exponential:0.5").unwrap();
        assert_eq!(e.lr(2.0, 0, 10, 3, 1.0), 0.25);
        let c = Schedule::parse("cosine:2").unwrap();
        assert_eq!(c.lr(1.0, 0, 12, 0, 1.0), 0.5);
        assert_eq!(c.lr(1.0, 1, 12, 0, 1.0), 1.0);
        assert!((c.lr(1.0, 7, 12, 0, 1.0) - 0.5).abs() < 1e-12);
        assert!(c.lr(1.0, 12, 12, 0, 1.0).abs() < 1e-12);
        let p = Schedule::parse("plateau:3:0.5").unwrap();
        assert_eq!(p.lr(1.0, 0, 1, 0, 0.25), 0.25);
        assert_eq!(Schedule::parse(&p.name()).unwrap(), p);
    }

    #[test]
    fn rejects_bad_schedules() {
        for s in ["linear", "step:0", "exponential:2", "plateau:3:1.5", "step:x"] {
            assert!(Schedule::parse(s).is_err(), "{s}");
        }
        // Built in code: a negative final fraction trained at negative rates.
        for min_ratio in [-1.0, f64::NAN, 5.0] {
            let c = Schedule::Cosine { warmup: 0, min_ratio };
            assert!(c.validate().is_err(), "{min_ratio}");
        }
        for min_ratio in [0.0, 0.1, 1.0] {
            assert!(Schedule::Cosine { warmup: 0, min_ratio }.validate().is_ok());
        }
    }
}

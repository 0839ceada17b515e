//! Optimizers. The [`Optimizer`] owns one state per parameter (allocated on
//! the first step, reused afterwards); each update is a function of
//! `(param, grad, state, t)` written after PyTorch's single-tensor code path,
//! so that results agree with `torch.optim` to rounding.
//!
//! Only [`Param`]s are visited: batch-norm running statistics are never seen
//! by an optimizer. Full-batch gradient descent is [`Method::Sgd`] with one
//! batch holding the whole training set.

mod adagrad;
mod adam;
mod rmsprop;
mod sgd;
mod state;

pub use state::StateTensor;

use crate::error::{Error, Result};
use crate::layers::{Param, ParamKind};
use crate::model::Sequential;
use crate::scalar::Scalar;

/// An update rule and its hyperparameters (PyTorch names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Gradient descent, optionally with (Nesterov) momentum:
    /// `b = mu b + (1 - dampening) g` (`b = g` at the first step),
    /// `p -= lr (g + mu b)` with Nesterov, else `p -= lr b`.
    Sgd {
        /// Momentum `mu` (0 = plain SGD).
        momentum: f64,
        /// Dampening of the gradient added to the momentum buffer.
        dampening: f64,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// Adam (Kingma & Ba 2015); `decoupled` makes it AdamW (Loshchilov &
    /// Hutter 2019): weight decay `p *= 1 - lr wd` instead of `g += wd p`.
    Adam {
        /// First-moment decay (0.9).
        beta1: f64,
        /// Second-moment decay (0.999).
        beta2: f64,
        /// Added to the denominator (1e-8).
        eps: f64,
        /// AdamW's decoupled weight decay.
        decoupled: bool,
    },
    /// RMSProp: `v = alpha v + (1 - alpha) g^2`, `p -= lr g / (sqrt v + eps)`,
    /// optionally centered and with momentum.
    RmsProp {
        /// Smoothing constant (0.99).
        alpha: f64,
        /// Added to the denominator (1e-8).
        eps: f64,
        /// Momentum (0).
        momentum: f64,
        /// Divide by the estimated variance instead of the raw second moment.
        centered: bool,
    },
    /// Adagrad: `s += g^2`, `p -= lr_t g / (sqrt s + eps)`,
    /// `lr_t = lr / (1 + (t - 1) lr_decay)`.
    Adagrad {
        /// Learning-rate decay (0).
        lr_decay: f64,
        /// Added to the denominator (1e-10).
        eps: f64,
        /// Starting value of `s` (0).
        initial_accumulator: f64,
    },
}

/// A complete optimizer configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerConfig {
    /// Update rule.
    pub method: Method,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay: L2 added to the gradient (coupled), or decoupled for AdamW.
    pub weight_decay: f64,
    /// Apply weight decay to Dense weights only, exempting biases and the
    /// batch-norm scale and shift.
    pub decay_exempt: bool,
    /// Rescale all gradients so their global L2 norm is at most this.
    pub clip_grad_norm: Option<f64>,
}

impl OptimizerConfig {
    fn with(method: Method, lr: f64) -> Self {
        OptimizerConfig {
            method,
            lr,
            weight_decay: 0.0,
            decay_exempt: false,
            clip_grad_norm: None,
        }
    }

    /// Plain (mini-batch or full-batch) gradient descent.
    pub fn sgd(lr: f64) -> Self {
        Self::with(
            Method::Sgd {
                momentum: 0.0,
                dampening: 0.0,
                nesterov: false,
            },
            lr,
        )
    }

    /// SGD with momentum `mu`, `nesterov` or classical.
    pub fn momentum(lr: f64, mu: f64, nesterov: bool) -> Self {
        Self::with(
            Method::Sgd {
                momentum: mu,
                dampening: 0.0,
                nesterov,
            },
            lr,
        )
    }

    /// Adam with PyTorch's defaults.
    pub fn adam(lr: f64) -> Self {
        Self::with(
            Method::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                decoupled: false,
            },
            lr,
        )
    }

    /// AdamW with PyTorch's defaults (weight decay 0.01).
    pub fn adamw(lr: f64) -> Self {
        OptimizerConfig {
            weight_decay: 0.01,
            ..Self::with(
                Method::Adam {
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    decoupled: true,
                },
                lr,
            )
        }
    }

    /// RMSProp with PyTorch's defaults.
    pub fn rmsprop(lr: f64) -> Self {
        Self::with(
            Method::RmsProp {
                alpha: 0.99,
                eps: 1e-8,
                momentum: 0.0,
                centered: false,
            },
            lr,
        )
    }

    /// Adagrad with PyTorch's defaults.
    pub fn adagrad(lr: f64) -> Self {
        Self::with(
            Method::Adagrad {
                lr_decay: 0.0,
                eps: 1e-10,
                initial_accumulator: 0.0,
            },
            lr,
        )
    }

    /// Checks every number is finite and in range.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, v: f64, ok: bool| {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err(Error::config(name, format!("{v} is out of range")))
            }
        };
        check("learning rate", self.lr, self.lr > 0.0)?;
        check("weight decay", self.weight_decay, self.weight_decay >= 0.0)?;
        if let Some(c) = self.clip_grad_norm {
            check("clip-grad-norm", c, c > 0.0)?;
        }
        match self.method {
            Method::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                check("momentum", momentum, (0.0..1.0).contains(&momentum))?;
                check("dampening", dampening, (0.0..=1.0).contains(&dampening))?;
                if nesterov && (momentum == 0.0 || dampening != 0.0) {
                    return Err(Error::config("nesterov", "needs momentum > 0 and dampening 0"));
                }
            }
            Method::Adam { beta1, beta2, eps, .. } => {
                check("beta1", beta1, (0.0..1.0).contains(&beta1))?;
                check("beta2", beta2, (0.0..1.0).contains(&beta2))?;
                check("eps", eps, eps >= 0.0)?;
            }
            Method::RmsProp {
                alpha, eps, momentum, ..
            } => {
                check("alpha", alpha, (0.0..=1.0).contains(&alpha))?;
                check("eps", eps, eps >= 0.0)?;
                check("momentum", momentum, (0.0..1.0).contains(&momentum))?;
            }
            Method::Adagrad {
                lr_decay,
                eps,
                initial_accumulator,
            } => {
                check("lr decay", lr_decay, lr_decay >= 0.0)?;
                check("eps", eps, eps >= 0.0)?;
                check("initial accumulator", initial_accumulator, initial_accumulator >= 0.0)?;
            }
        }
        Ok(())
    }
}

/// Per-parameter optimizer state.
#[derive(Debug, Clone)]
enum State<T> {
    Sgd(sgd::SgdState<T>),
    Adam(adam::AdamState<T>),
    RmsProp(rmsprop::RmsPropState<T>),
    Adagrad(adagrad::AdagradState<T>),
}

/// Hyperparameters resolved for one parameter at one step.
#[derive(Debug, Clone, Copy)]
struct StepCtx {
    lr: f64,
    weight_decay: f64,
    t: u64,
}

/// An optimizer bound to one model's parameter order.
#[derive(Debug, Clone)]
pub struct Optimizer<T> {
    config: OptimizerConfig,
    lr: f64,
    t: u64,
    states: Vec<State<T>>,
}

impl<T: Scalar> Optimizer<T> {
    /// An optimizer with validated `config`; state is created on the first step.
    pub fn new(config: OptimizerConfig) -> Result<Self> {
        config.validate()?;
        Ok(Optimizer {
            lr: config.lr,
            config,
            t: 0,
            states: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The current learning rate (schedules change it).
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate for the following steps.
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Applies one update to every parameter of `model` from its accumulated
    /// gradients (after clipping them, if configured). Returns the global
    /// gradient norm before clipping when clipping is on.
    pub fn step(&mut self, model: &mut Sequential<T>) -> Result<Option<f64>> {
        let norm = self.config.clip_grad_norm.map(|max| clip_grad_norm(model, max));
        self.t += 1;
        let (config, states) = (&self.config, &mut self.states);
        let (lr, t) = (self.lr, self.t);
        let mut index = 0;
        let mut mismatch = None;
        model.visit_params(&mut |p| {
            if states.len() == index {
                states.push(State::new(&config.method, p));
            }
            let decays = !config.decay_exempt || p.kind == ParamKind::Weight;
            let ctx = StepCtx {
                lr,
                weight_decay: if decays { config.weight_decay } else { 0.0 },
                t,
            };
            if !states[index].update(&config.method, p, ctx) {
                mismatch.get_or_insert_with(|| p.name.clone());
            }
            index += 1;
        });
        match mismatch {
            Some(name) => Err(Error::State(format!(
                "optimizer state does not fit parameter {name}: use one optimizer per model"
            ))),
            None => Ok(norm),
        }
    }
}

impl<T: Scalar> State<T> {
    fn new(method: &Method, p: &Param<T>) -> Self {
        let n = p.value.as_slice().len();
        match *method {
            Method::Sgd { .. } => State::Sgd(sgd::SgdState::new()),
            Method::Adam { .. } => State::Adam(adam::AdamState::new(n)),
            Method::RmsProp { centered, momentum, .. } => {
                State::RmsProp(rmsprop::RmsPropState::new(n, centered, momentum > 0.0))
            }
            Method::Adagrad {
                initial_accumulator, ..
            } => State::Adagrad(adagrad::AdagradState::new(n, initial_accumulator)),
        }
    }

    /// Updates `p`; false if this state was made for another shape or method.
    fn update(&mut self, method: &Method, p: &mut Param<T>, ctx: StepCtx) -> bool {
        match (self, method) {
            (
                State::Sgd(s),
                &Method::Sgd {
                    momentum,
                    dampening,
                    nesterov,
                },
            ) => s.update(p, ctx, momentum, dampening, nesterov),
            (
                State::Adam(s),
                &Method::Adam {
                    beta1,
                    beta2,
                    eps,
                    decoupled,
                },
            ) => s.update(p, ctx, [beta1, beta2, eps], decoupled),
            (
                State::RmsProp(s),
                &Method::RmsProp {
                    alpha, eps, momentum, ..
                },
            ) => s.update(p, ctx, alpha, eps, momentum),
            (State::Adagrad(s), &Method::Adagrad { lr_decay, eps, .. }) => s.update(p, ctx, lr_decay, eps),
            _ => false,
        }
    }
}

/// Rescales every gradient of `model` by `min(1, max_norm / (norm + 1e-6))`,
/// where `norm` is the L2 norm of all gradients together (PyTorch's
/// `clip_grad_norm_`). Returns `norm`.
pub fn clip_grad_norm<T: Scalar>(model: &mut Sequential<T>, max_norm: f64) -> f64 {
    let mut sq = 0.0f64;
    model.visit_params(&mut |p| {
        sq += p.grad.as_slice().iter().map(|g| g.to_f64() * g.to_f64()).sum::<f64>();
    });
    let norm = sq.sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        let c = T::from_f64(coef);
        model.visit_params(&mut |p| p.grad.as_mut_slice().iter_mut().for_each(|g| *g *= c));
    }
    norm
}

/// `g + wd * p` for element `i` (coupled L2 decay), without touching `p.grad`.
#[inline]
fn decayed_grad<T: Scalar>(p: &Param<T>, i: usize, wd: T) -> T {
    let g = p.grad.as_slice()[i];
    if wd == T::ZERO {
        g
    } else {
        g + wd * p.value.as_slice()[i]
    }
}

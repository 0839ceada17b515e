//! Optimizer state in and out, for checkpoints: every per-parameter buffer as
//! a named vector (`{param}.{slot}`, slots named as in PyTorch's optimizer
//! state: `momentum_buffer`, `exp_avg`, `exp_avg_sq`, `square_avg`,
//! `grad_avg`, `sum`) plus the step count and the current learning rate.

use super::{Optimizer, State};
use crate::error::{Error, Result};
use crate::model::Sequential;
use crate::scalar::Scalar;
use std::collections::HashMap;

/// One buffer of one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct StateTensor<T> {
    /// `{param}.{slot}`, e.g. `layers.0.weight.exp_avg`.
    pub name: String,
    /// The values, shaped like the parameter.
    pub values: Vec<T>,
}

impl<T: Scalar> State<T> {
    /// The non-empty buffers with their slot names.
    fn slots(&self) -> Vec<(&'static str, &Vec<T>)> {
        let all = match self {
            State::Sgd(s) => vec![("momentum_buffer", &s.buf)],
            State::Adam(s) => vec![("exp_avg", &s.m), ("exp_avg_sq", &s.v)],
            State::RmsProp(s) => vec![
                ("square_avg", &s.square_avg),
                ("grad_avg", &s.grad_avg),
                ("momentum_buffer", &s.buf),
            ],
            State::Adagrad(s) => vec![("sum", &s.sum)],
        };
        all.into_iter().filter(|(_, v)| !v.is_empty()).collect()
    }

    fn slots_mut(&mut self) -> Vec<(&'static str, &mut Vec<T>)> {
        match self {
            State::Sgd(s) => vec![("momentum_buffer", &mut s.buf)],
            State::Adam(s) => vec![("exp_avg", &mut s.m), ("exp_avg_sq", &mut s.v)],
            State::RmsProp(s) => {
                vec![
                    ("square_avg", &mut s.square_avg),
                    ("grad_avg", &mut s.grad_avg),
                    ("momentum_buffer", &mut s.buf),
                ]
            }
            State::Adagrad(s) => vec![("sum", &mut s.sum)],
        }
    }
}

impl<T: Scalar> Optimizer<T> {
    /// Every state buffer, named by `model`'s parameter names.
    pub fn export_state(&self, model: &Sequential<T>) -> Vec<StateTensor<T>> {
        let names = model.param_names();
        let mut out = Vec::new();
        for (state, param) in self.states.iter().zip(&names) {
            for (slot, values) in state.slots() {
                out.push(StateTensor {
                    name: format!("{param}.{slot}"),
                    values: values.clone(),
                });
            }
        }
        out
    }

    /// Restores a state exported by [`Optimizer::export_state`] after `steps`
    /// steps at learning rate `lr`; `tensors` maps `{param}.{slot}` to values.
    pub fn import_state(
        &mut self,
        model: &mut Sequential<T>,
        steps: u64,
        lr: f64,
        tensors: &HashMap<String, Vec<T>>,
    ) -> Result<()> {
        self.t = steps;
        self.lr = lr;
        self.states.clear();
        if steps == 0 {
            return Ok(());
        }
        let method = self.config.method.clone();
        let mut states = Vec::new();
        model.visit_params(&mut |p| states.push((p.name.clone(), p.value.as_slice().len(), State::new(&method, p))));
        for (name, len, state) in &mut states {
            for (slot, buf) in state.slots_mut() {
                match tensors.get(&format!("{name}.{slot}")) {
                    Some(v) if v.len() == *len => {
                        // Squares and their sums are never negative; a
                        // negative one would train NaN weights (sqrt).
                        let squares = ["exp_avg_sq", "square_avg", "sum"].contains(&slot);
                        if let Some(k) = v.iter().position(|x| !x.is_finite() || (squares && *x < T::ZERO)) {
                            return Err(Error::State(format!(
                                "optimizer state {name}.{slot} holds {} at index {k}",
                                v[k].to_f64()
                            )));
                        }
                        *buf = v.clone()
                    }
                    Some(v) => {
                        return Err(Error::State(format!(
                            "optimizer state {name}.{slot} has {} values, the parameter {len}",
                            v.len()
                        )));
                    }
                    // Unused slots and SGD's lazily created momentum buffer are empty.
                    None if buf.is_empty() => {}
                    None => return Err(Error::State(format!("optimizer state {name}.{slot} is missing"))),
                }
            }
        }
        self.states = states.into_iter().map(|(_, _, s)| s).collect();
        Ok(())
    }
}

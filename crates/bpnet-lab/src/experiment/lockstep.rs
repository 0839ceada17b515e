//! Several networks ("arms") trained in lockstep: every arm takes the same
//! mini-batch at every step, so differences between arms come from the arms
//! alone (batch normalization, learning rate, depth), never from the data
//! order. Test accuracy and the mean training loss are recorded at fixed
//! evaluation steps; a [`Probe`] can record more.

use super::{ArmResult, EvalPoint, Mnist};
use bpnet::comm::{Comm, block};
use bpnet::data::{Batches, Dataset, TargetBuf};
use bpnet::error::{Error, Result};
use bpnet::layers::Mode;
use bpnet::loss::Loss;
use bpnet::model::{BnPlacement, ModelSpec, Sequential};
use bpnet::optim::{Optimizer, OptimizerConfig};
use bpnet::tensor::Matrix;
use bpnet::train::{BnSyncMode, Trainer, accuracy, evaluate_split};

/// One network of a lockstep run, with its optimizer and record.
#[derive(Debug, Clone)]
pub struct Arm {
    /// The network, optimizer (plain SGD) and loss.
    pub trainer: Trainer<f32>,
    /// What is recorded about it.
    pub result: ArmResult,
    loss_sum: f64,
    loss_count: usize,
}

impl Arm {
    /// The network of `spec` with weights from `seed`, trained by SGD at `lr`
    /// with softmax cross-entropy.
    pub fn new(label: impl Into<String>, spec: &ModelSpec, lr: f64, seed: u64) -> Result<Self> {
        let model = Sequential::<f32>::from_spec(spec, seed)?;
        let opt = Optimizer::new(OptimizerConfig::sgd(lr))?;
        Ok(Arm {
            trainer: Trainer::new(model, opt, Loss::CrossEntropy),
            result: ArmResult {
                label: label.into(),
                batch_norm: spec.batch_norm != BnPlacement::None,
                lr,
                diverged_at: None,
                curve: Vec::new(),
            },
            loss_sum: 0.0,
            loss_count: 0,
        })
    }

    /// The network.
    pub fn model(&self) -> &Sequential<f32> {
        &self.trainer.model
    }

    /// One SGD step unless the arm has diverged (its loss was not finite at
    /// an earlier step; it then stops training). `(x, y)` are rows
    /// `start..` of a mini-batch of `rows` rows: the whole batch in one
    /// process, this rank's block of it when several share the step.
    fn step(&mut self, x: &Matrix<f32>, y: &TargetBuf, step: usize, start: usize, rows: usize) -> Result<()> {
        if self.result.diverged_at.is_some() {
            return Ok(());
        }
        let loss = if self.trainer.comm().size() == 1 {
            self.trainer.step(x, y.target())?
        } else {
            let loss = self.trainer.compute_gradients_part(x, y.target(), start, rows)?;
            self.trainer.optimizer.step(&mut self.trainer.model)?;
            loss
        } as f64;
        if loss.is_finite() {
            self.loss_sum += loss;
            self.loss_count += 1;
        } else {
            self.result.diverged_at = Some(step);
        }
        Ok(())
    }

    /// Test accuracy (evaluation mode) and the mean training loss since the
    /// previous evaluation (NaN when no finite loss was seen).
    fn evaluate(&mut self, step: usize, test: &Dataset) -> Result<EvalPoint> {
        let comm = self.trainer.comm().clone();
        let test_accuracy = test_accuracy(&mut self.trainer.model, test, 2000, &*comm)?;
        let train_loss = if self.loss_count > 0 {
            self.loss_sum / self.loss_count as f64
        } else {
            f64::NAN
        };
        self.loss_sum = 0.0;
        self.loss_count = 0;
        let p = EvalPoint {
            step,
            test_accuracy,
            train_loss,
        };
        self.result.curve.push(p);
        Ok(p)
    }
}

/// Extra measurements during a lockstep run.
pub trait Probe {
    /// After every step (the arms' gradients and layer outputs are those of
    /// this step's batch).
    fn after_step(&mut self, _step: usize, _arms: &[Arm]) -> Result<()> {
        Ok(())
    }

    /// At every evaluation step, after test accuracy was recorded (step 0 is
    /// before any training).
    fn at_eval(&mut self, step: usize, arms: &mut [Arm]) -> Result<()>;
}

/// A probe that records nothing more.
pub struct NoProbe;

impl Probe for NoProbe {
    fn at_eval(&mut self, _step: usize, _arms: &mut [Arm]) -> Result<()> {
        Ok(())
    }
}

/// When a lockstep run evaluates and how it draws batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Training steps.
    pub steps: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Evaluate every this many steps (and at step 0, at `extra_evals` and at
    /// the last step).
    pub eval_every: usize,
    /// Further steps to evaluate at (e.g. the report's table columns).
    pub extra_evals: Vec<usize>,
    /// Seed of the batch order.
    pub seed: u64,
}

impl Plan {
    /// Whether `step` is an evaluation step.
    pub fn is_eval(&self, step: usize) -> bool {
        step == 0
            || step == self.steps
            || step.is_multiple_of(self.eval_every.max(1))
            || self.extra_evals.contains(&step)
    }
}

/// Test accuracy of `model` (evaluation mode, `chunk` rows at a time), the
/// rows split over the ranks of `comm` when there are several.
pub fn test_accuracy(model: &mut Sequential<f32>, test: &Dataset, chunk: usize, comm: &dyn Comm) -> Result<f64> {
    if comm.size() == 1 {
        return accuracy(model, test, chunk);
    }
    let Some(labels) = test.labels() else { return Ok(0.0) };
    evaluate_split(model, test, Loss::CrossEntropy, chunk, comm)?.accuracy(labels)
}

/// Trains `arms` in lockstep on `data.train` per `plan`, evaluating on
/// `data.test`, shared between `data.ranks`; `log` receives one line per
/// evaluation.
pub fn run(
    arms: &mut [Arm],
    data: &Mnist,
    plan: &Plan,
    probe: &mut dyn Probe,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let (train, test, ranks) = (&data.train, &data.test, &data.ranks);
    if plan.steps == 0 || plan.batch_size < 2 || train.len() < 2 {
        return Err(Error::config(
            "experiment",
            format!(
                "needs at least 1 step, batches of at least 2 rows and 2 training rows (got {} steps, batch {}, {} rows)",
                plan.steps,
                plan.batch_size,
                train.len()
            ),
        ));
    }
    for arm in arms.iter_mut() {
        arm.trainer.set_comm(ranks.clone(), BnSyncMode::Global)?;
    }
    let mut batches = Batches::new(train.len(), plan.batch_size, 2, plan.seed);
    let (mut x, mut y) = (Matrix::default(), TargetBuf::default());
    evaluate_all(arms, 0, plan, test, probe, log)?;
    for step in 1..=plan.steps {
        let batch = batches.next_batch();
        let (lo, hi) = block(batch.len(), ranks.rank(), ranks.size());
        train.gather(&batch[lo..hi], &mut x, &mut y);
        for arm in arms.iter_mut() {
            arm.step(&x, &y, step, lo, batch.len())?;
        }
        probe.after_step(step, arms)?;
        if plan.is_eval(step) {
            evaluate_all(arms, step, plan, test, probe, log)?;
        }
    }
    Ok(())
}

fn evaluate_all(
    arms: &mut [Arm],
    step: usize,
    plan: &Plan,
    test: &Dataset,
    probe: &mut dyn Probe,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let mut line = format!("step {step:>6}/{}:", plan.steps);
    for arm in arms.iter_mut() {
        let p = arm.evaluate(step, test)?;
        line += &format!("  {} {:.2}%", arm.result.label, 100.0 * p.test_accuracy);
        if arm.result.diverged_at.is_some() {
            line += " (diverged)";
        }
    }
    probe.at_eval(step, arms)?;
    log(&line);
    Ok(())
}

/// Runs `model` in evaluation mode on `x` and returns the input of its last
/// activation layer (the pre-activations of the last hidden layer),
/// `[rows, units]`.
pub fn last_hidden_input(model: &mut Sequential<f32>, x: &Matrix<f32>) -> Result<Matrix<f32>> {
    model.forward(x, Mode::Eval)?;
    let layers = model.layers();
    let idx = layers
        .iter()
        .rposition(|l| matches!(l, bpnet::layers::Layer::Activation(_)))
        .filter(|&i| i > 0)
        .ok_or_else(|| Error::State("the network has no hidden activation layer".into()))?;
    Ok(layers[idx - 1].output().clone())
}

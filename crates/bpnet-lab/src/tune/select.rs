//! Greedy ensemble selection (Caruana et al. 2004, "Ensemble selection from
//! libraries of models"), with replacement: how many of a blend's networks
//! each trial gets.
//!
//! Each candidate's out-of-fold predictions `P_i: [rows, outputs]` come from
//! the re-scoring split (every candidate trained on the same folds, each row
//! predicted by the network that did not see it). Starting from nothing
//! (or from `start` picks of each), each round adds the candidate whose
//! addition gives the mean `P̄ = (Σ_j c_j P_j) / Σ_j c_j` the lowest loss,
//! until the picks number `total`; candidate `i` then has `c_i`. Its share
//! of the blend is `c_i / total`, realised as `c_i` networks of it, so
//! that the plain mean over all networks is the weighted mean (and a weak
//! candidate gets none, unless it had a start).
//!
//! Loss: for classifiers, the mean negative log-likelihood of the true
//! class, `-(1/n) Σ_r ln max(P̄[r, y_r], 1e-15)` (one output: `P̄` is
//! P(class 1)). Smooth, unlike accuracy, so that rounds are not decided by
//! ties between a few rows. For regression, `Σ_c SSE_c / Σ_r (y_rc - ȳ_c)²`,
//! the sum over targets of `1 - R²_c`. Ties go to the earlier candidate.

use bpnet::workflow::HeldOut;

/// Smallest probability taken into a logarithm.
const P_MIN: f64 = 1e-15;

/// Picks per candidate, `total` in all, by greedy selection on their
/// out-of-fold predictions (all with the same rows, truth and width; None
/// otherwise, or with no candidate), starting from `start` picks of each
/// (0: from nothing; 1: the rounds add to an equal mix of them). A
/// candidate with a prediction that is not finite gets none, nor a start.
pub fn select(preds: &[&HeldOut], start: usize, total: usize) -> Option<Vec<usize>> {
    select_within(preds, &vec![0.0; preds.len()], start, total, f64::INFINITY)
}

/// [`select`] within a budget: a pick of candidate `i` costs `costs[i]`
/// (its refit's time, say), the starts included, and a round takes only
/// candidates whose cost fits in what is left of `budget`; the selection
/// ends early when none does.
pub fn select_within(preds: &[&HeldOut], costs: &[f64], start: usize, total: usize, budget: f64) -> Option<Vec<usize>> {
    let first = preds.first()?;
    if costs.len() != preds.len() {
        return None;
    }
    let (rows, width) = (first.predictions.rows(), first.predictions.cols());
    let same = |p: &&HeldOut| {
        p.predictions.rows() == rows
            && p.predictions.cols() == width
            && p.truth == first.truth
            && p.classes == first.classes
    };
    if rows == 0 || !preds.iter().all(same) {
        return None;
    }
    let finite: Vec<bool> = preds
        .iter()
        .map(|p| p.predictions.as_slice().iter().all(|v| v.is_finite()))
        .collect();
    if !finite.contains(&true) {
        return None;
    }
    let loss = Loss::new(first);
    let mut picks: Vec<usize> = finite.iter().map(|&f| if f { start } else { 0 }).collect();
    let mut sum = vec![0.0f64; rows * width];
    for (p, &c) in preds.iter().zip(&picks).filter(|(_, c)| **c > 0) {
        for (s, v) in sum.iter_mut().zip(p.predictions.as_slice()) {
            *s += c as f64 * v;
        }
    }
    let mut left = budget - picks.iter().zip(costs).map(|(&c, k)| c as f64 * k).sum::<f64>();
    let mut trial = vec![0.0f64; rows * width];
    for round in picks.iter().sum::<usize>()..total {
        let m = (round + 1) as f64;
        let mut best: Option<(usize, f64)> = None;
        // (With a little slack for the rounding of the sums.)
        let fits = |i: &usize| finite[*i] && costs[*i] <= left + 1e-9 * budget;
        for (i, p) in preds.iter().enumerate().filter(|(i, _)| fits(i)) {
            for ((t, s), v) in trial.iter_mut().zip(&sum).zip(p.predictions.as_slice()) {
                *t = (s + v) / m;
            }
            let l = loss.of(&trial);
            if best.is_none_or(|(_, b)| l < b) {
                best = Some((i, l));
            }
        }
        let Some((i, _)) = best else {
            break;
        };
        sum.iter_mut()
            .zip(preds[i].predictions.as_slice())
            .for_each(|(s, v)| *s += v);
        picks[i] += 1;
        left -= costs[i];
    }
    Some(picks)
}

/// The selection's loss of a mean prediction.
enum Loss<'a> {
    /// True class index per row; outputs per row.
    Classes(Vec<usize>, usize),
    /// Truth `[rows, targets]` and each target's sum of squares about its mean.
    Values(&'a [f64], Vec<f64>),
}

impl<'a> Loss<'a> {
    fn new(h: &'a HeldOut) -> Self {
        let width = h.predictions.cols();
        match h.classes {
            Some(_) => Loss::Classes(h.truth.as_slice().iter().map(|&y| y as usize).collect(), width),
            None => {
                let (rows, t) = (h.truth.rows(), h.truth.as_slice());
                let scale = (0..width)
                    .map(|c| {
                        let mean = (0..rows).map(|r| t[r * width + c]).sum::<f64>() / rows as f64;
                        let ss: f64 = (0..rows).map(|r| (t[r * width + c] - mean).powi(2)).sum();
                        if ss > 0.0 { ss } else { 1.0 }
                    })
                    .collect();
                Loss::Values(t, scale)
            }
        }
    }

    fn of(&self, p: &[f64]) -> f64 {
        match self {
            Loss::Classes(y, width) => {
                let nll: f64 = y
                    .iter()
                    .enumerate()
                    .map(|(r, &c)| {
                        let q = match *width {
                            1 if c == 1 => p[r],
                            1 => 1.0 - p[r],
                            w => p[r * w + c.min(w - 1)],
                        };
                        -q.max(P_MIN).ln()
                    })
                    .sum();
                nll / y.len() as f64
            }
            Loss::Values(t, scale) => {
                let w = scale.len();
                p.iter()
                    .zip(t.iter())
                    .enumerate()
                    .map(|(k, (a, b))| (a - b).powi(2) / scale[k % w])
                    .sum()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpnet::Matrix;

    fn held(p: &[f64], width: usize, truth: &[f64], classes: bool) -> HeldOut {
        HeldOut {
            predictions: Matrix::from_vec(p.len() / width, width, p.to_vec()).unwrap(),
            truth: Matrix::from_vec(truth.len(), 1, truth.to_vec()).unwrap(),
            classes: classes.then(|| vec!["a".into(), "b".into()]),
        }
    }

    #[test]
    fn a_candidate_that_only_adds_error_gets_no_networks() {
        // Truth 1, 2, 3, 4. A is exact but for +1 on the first two rows, B
        // for -1 on them (their mean is exact); C is far off everywhere.
        let y = [1.0, 2.0, 3.0, 4.0];
        let a = held(&[2.0, 3.0, 3.0, 4.0], 1, &y, false);
        let b = held(&[0.0, 1.0, 3.0, 4.0], 1, &y, false);
        let c = held(&[9.0, 9.0, 9.0, 9.0], 1, &y, false);
        // Round 1: A and B tie (A first); round 2: B makes the mean exact;
        // then A and B alternate. C is never taken.
        assert_eq!(select(&[&a, &b, &c], 0, 4), Some(vec![2, 2, 0]));
        assert_eq!(select(&[&c, &a, &b], 0, 1), Some(vec![0, 1, 0]));
        assert_eq!(select(&[&a, &b, &c], 0, 0), Some(vec![0, 0, 0]));
    }

    #[test]
    fn rounds_started_from_an_equal_mix_add_to_it() {
        // Truth 0, 0; A = (1, 1), B = (-1, -3), C = (4, 4); loss = SSE.
        // From nothing: A (2) beats B (10) and C (32); then B (the mean
        // (0, -1): 1); then A ((1, -1)/3: 0.22, against C's 2.2). C is never
        // taken. From one of each (mean (4, 2)/3), a second B gives
        // (0.75, -0.25): 0.625, against 2.125 for A and 6.25 for C.
        let y = [0.0, 0.0];
        let a = held(&[1.0, 1.0], 1, &y, false);
        let b = held(&[-1.0, -3.0], 1, &y, false);
        let c = held(&[4.0, 4.0], 1, &y, false);
        assert_eq!(select(&[&a, &b, &c], 0, 3), Some(vec![2, 1, 0]));
        assert_eq!(select(&[&a, &b, &c], 1, 3), Some(vec![1, 1, 1]));
        assert_eq!(select(&[&a, &b, &c], 1, 4), Some(vec![1, 2, 1]));
    }

    #[test]
    fn a_budget_leaves_out_the_candidates_it_cannot_pay_for() {
        // The SSE example above: from nothing, A, B, A. With A costing 3,
        // B 1, C 0.5 and 5 to spend: A (2 left), B (1 left), then A does
        // not fit and C's (4, 2)/3 beats B's (-1, -5)/3 (0.5 left); asked
        // for more, C once more (nothing left), then nothing fits.
        let y = [0.0, 0.0];
        let a = held(&[1.0, 1.0], 1, &y, false);
        let b = held(&[-1.0, -3.0], 1, &y, false);
        let c = held(&[4.0, 4.0], 1, &y, false);
        let (all, costs) = ([&a, &b, &c], [3.0, 1.0, 0.5]);
        assert_eq!(select_within(&all, &costs, 0, 3, 5.0), Some(vec![1, 1, 1]));
        assert_eq!(select_within(&all, &costs, 0, 9, 5.0), Some(vec![1, 1, 2]));
        // Enough for all: as without a budget.
        assert_eq!(select_within(&all, &costs, 0, 3, 7.0), select(&all, 0, 3));
        // Starts are paid first: one of each is 4.5, C alone fits after.
        assert_eq!(select_within(&all, &costs, 1, 5, 5.0), Some(vec![1, 1, 2]));
        // Costs of another length: no selection.
        assert_eq!(select_within(&all, &[1.0], 0, 3, 5.0), None);
    }

    #[test]
    fn classifiers_are_chosen_by_log_likelihood_of_the_true_class() {
        // Two rows of class 1 (second column), one of class 0. Both sure
        // models are right on two rows; P's miss is confident (p = 0.0001),
        // Q's is not (0.4): Q first, and P never.
        let y = [1.0, 1.0, 0.0];
        let p = held(&[0.0, 1.0, 0.9999, 0.0001, 1.0, 0.0], 2, &y, true);
        let q = held(&[0.0, 1.0, 0.0, 1.0, 0.4, 0.6], 2, &y, true);
        assert_eq!(select(&[&p, &q], 0, 1), Some(vec![0, 1]));
        // One output: P(class 1) per row, the same models.
        let p1 = held(&[1.0, 0.0001, 0.0], 1, &y, true);
        let q1 = held(&[1.0, 1.0, 0.6], 1, &y, true);
        assert_eq!(select(&[&p1, &q1], 0, 1), Some(vec![0, 1]));
    }

    #[test]
    fn a_candidate_with_predictions_that_are_not_finite_is_never_taken() {
        // Regression: NaN makes the squared error NaN. First in the list, it
        // would win every comparison that NaN loses; in the mix it would
        // make every mean NaN.
        let y = [1.0, 2.0, 3.0];
        let bad = held(&[f64::NAN, 2.0, 3.0], 1, &y, false);
        let inf = held(&[1.0, f64::INFINITY, 3.0], 1, &y, false);
        let good = held(&[1.5, 2.0, 3.0], 1, &y, false);
        assert_eq!(select(&[&bad, &good], 0, 3), Some(vec![0, 3]));
        assert_eq!(select(&[&bad, &inf, &good], 1, 3), Some(vec![0, 0, 3]));
        // Classifiers: NaN would count as the smallest probability.
        let yc = [1.0, 0.0];
        let nan = held(&[f64::NAN, f64::NAN, 1.0, 0.0], 2, &yc, true);
        let fair = held(&[0.5, 0.5, 0.5, 0.5], 2, &yc, true);
        assert_eq!(select(&[&nan, &fair], 0, 2), Some(vec![0, 2]));
        // None finite: no selection.
        assert_eq!(select(&[&bad, &inf], 0, 2), None);
        assert_eq!(select(&[&bad, &inf], 1, 2), None);
    }

    #[test]
    fn candidates_of_other_rows_or_truth_are_not_weighed() {
        let a = held(&[1.0, 2.0], 1, &[1.0, 2.0], false);
        let b = held(&[1.0, 2.0], 1, &[2.0, 1.0], false);
        let c = held(&[1.0, 2.0, 3.0], 1, &[1.0, 2.0, 3.0], false);
        assert_eq!(select(&[&a, &b], 0, 2), None);
        assert_eq!(select(&[&a, &c], 0, 2), None);
        assert_eq!(select(&[], 0, 2), None);
    }
}

//! The refit of a search's answer as a blend: the re-scored trials refit
//! on all rows, each with the number of networks its out-of-fold
//! predictions earned ([`select`](super::select)), and all the networks'
//! predictions averaged.
//!
//! Why: the re-scoring shows how close the best few trials are (in 19 of
//! 48 benchmark searches the best 3 scored within 0.001 of each other) and
//! how much of the winner's lead is luck of the split; averaging the
//! candidates, the portfolio's fixed points among them, keeps what each
//! got right. On the benchmark's choice half, the re-scored trials
//! averaged with 2 networks each scored 0.7609 in the mean of the per-set
//! medians, the chosen trial alone with 5 networks 0.7572
//! (`docs/TABULAR.md`, seventh round). Weighting them by greedy selection
//! on the re-scoring's out-of-fold predictions, which leaves out the weak
//! points an equal average keeps, beat the equal share in 15 of 24
//! choice-half searches and lost in 7 (mean +0.003); on the held-out half
//! the two were even (eighth round).

use super::TuneOutcome;
use super::journal::TrialRecord;
use super::select::select_within;
use bpnet::{Error, Result};

/// What the refit holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlendRule {
    /// The best trial alone.
    Alone,
    /// Every re-scored trial with the same number of networks.
    Equal,
    /// The re-scored trials' networks shared out by greedy selection
    /// ([`TuneOutcome::blend_networks`]).
    Select,
    /// One network for each re-scored trial, the rest shared out by greedy
    /// selection starting from that equal mix.
    Mixed,
}

/// Refits the given trials at once, each with its number of networks: one
/// result per trial, in order.
pub type RefitTrials<'a, T> = dyn FnMut(&[(&TrialRecord, usize)]) -> Result<Vec<Result<T>>> + 'a;

impl TuneOutcome {
    /// The trials a blend may hold, in [`Self::ranked`] order: every trial
    /// re-scored on all folds of both splits (none of them failed); the
    /// best alone when none was.
    pub fn blend(&self) -> Vec<usize> {
        let rescored: Vec<usize> = self
            .ranked()
            .into_iter()
            .filter(|&i| self.records[i].combined(self.cv).is_some())
            .collect();
        match rescored.is_empty() {
            true => vec![self.best],
            false => rescored,
        }
    }

    /// The trials `rule` refits with their networks, in ranking order: the
    /// best alone, every [`Self::blend`] trial with `per_trial`, or
    /// [`Self::blend_networks`] (starting from nothing, or from one network
    /// each for [`BlendRule::Mixed`]).
    pub fn chosen(&self, rule: BlendRule, per_trial: usize) -> Vec<(usize, usize)> {
        match rule {
            BlendRule::Alone => vec![(self.best, per_trial)],
            BlendRule::Equal => self.blend().into_iter().map(|i| (i, per_trial)).collect(),
            BlendRule::Select => self.blend_networks(per_trial, 0),
            BlendRule::Mixed => self.blend_networks(per_trial, 1.min(per_trial)),
        }
    }

    /// The blend's trials with their networks, in ranking order: up to
    /// `per_trial ⋅` [`Self::blend`]`.len()` networks, `start` of them for
    /// each candidate and the rest shared out by greedy selection on the
    /// re-scoring's out-of-fold predictions ([`Self::held_out`]), trials
    /// that got none left out. A trial without such predictions is not a
    /// candidate; when no trial has them, `per_trial` each.
    ///
    /// When the search had a time limit ([`Self::timed`]), the refit
    /// costs no more than the equal blend's: a network of trial `i` is
    /// taken to cost its search duration `s_i` (its refit takes about `s_i
    /// / (k-1)`), and the selection spends at most `per_trial ⋅ Σ s_i` over
    /// the blend's trials, so that it cannot pile the networks onto the
    /// slowest trial and outrun the time [`super::tune`] kept for the
    /// refit. (Durations vary from run to run; so does a timed search.)
    pub fn blend_networks(&self, per_trial: usize, start: usize) -> Vec<(usize, usize)> {
        let trials = self.blend();
        let with: Vec<(usize, &bpnet::workflow::HeldOut)> = trials
            .iter()
            .filter_map(|&i| self.held_out.iter().find(|(j, _)| *j == i).map(|(_, h)| (i, h)))
            .collect();
        let preds: Vec<_> = with.iter().map(|(_, h)| *h).collect();
        let seconds = |i: usize| self.records[i].seconds.max(0.0);
        let costs: Vec<f64> = with.iter().map(|&(i, _)| seconds(i)).collect();
        let budget = match self.timed {
            true => per_trial as f64 * trials.iter().map(|&i| seconds(i)).sum::<f64>(),
            false => f64::INFINITY,
        };
        match select_within(&preds, &costs, start, per_trial * trials.len(), budget) {
            Some(picks) if picks.iter().sum::<usize>() > 0 => with
                .iter()
                .zip(picks)
                .filter(|(_, c)| *c > 0)
                .map(|((i, _), c)| (*i, c))
                .collect(),
            _ => trials.into_iter().map(|i| (i, per_trial)).collect(),
        }
    }

    /// Refits what `rule` says: the [`Self::blend_networks`], every
    /// [`Self::blend`] trial with `per_trial` networks, or the best trial
    /// alone with `per_trial` networks. `fit` gets all its trials at once
    /// and returns one result per trial. A trial whose refit diverged is
    /// marked failed and left out (and `diverged` called with it); when
    /// the best was, the first trial left becomes [`Self::best`] (a best
    /// the selection gave no network stays the best). When every one diverged,
    /// the next complete trial in the ranking is refit alone with
    /// `per_trial` networks, and so on ([`Self::fit_best`]). Any other
    /// error is returned. Sets [`Self::blended`]; returns the fitted
    /// trials' indices with their results, in ranking order.
    pub fn fit_blend<T>(
        &mut self,
        rule: BlendRule,
        per_trial: usize,
        fit: &mut RefitTrials<'_, T>,
        diverged: &mut dyn FnMut(&TrialRecord),
    ) -> Result<Vec<(usize, T)>> {
        let chosen = self.chosen(rule, per_trial);
        let records: Vec<(&TrialRecord, usize)> = chosen.iter().map(|&(i, n)| (&self.records[i], n)).collect();
        let results = fit(&records)?;
        if results.len() != chosen.len() {
            return Err(Error::State(format!(
                "the refit returned {} results for {} trials",
                results.len(),
                chosen.len()
            )));
        }
        let mut fitted = Vec::new();
        let mut last = None;
        for ((i, n), r) in chosen.into_iter().zip(results) {
            match r {
                Ok(t) => fitted.push((i, n, t)),
                Err(Error::Diverged { step, detail }) => {
                    self.records[i].failed = Some(format!("the refit on all rows diverged at step {step}"));
                    diverged(&self.records[i]);
                    last = Some(Error::Diverged { step, detail });
                }
                Err(e) => return Err(e),
            }
        }
        if fitted.is_empty() {
            let err = last.unwrap_or_else(|| Error::State("the refit fitted no trial".into()));
            let Some(next) = self.ranked().into_iter().find(|&i| self.records[i].complete()) else {
                return Err(err);
            };
            self.best = next;
            let t = self.fit_best(
                &mut |r| {
                    fit(&[(r, per_trial)])?
                        .pop()
                        .unwrap_or_else(|| Err(Error::State("no refit result".into())))
                },
                &mut |failed, _| diverged(failed),
            )?;
            fitted.push((self.best, per_trial, t));
        }
        if self.records[self.best].failed.is_some() {
            self.best = fitted[0].0;
        }
        self.blended = fitted.iter().map(|(i, n, _)| (*i, *n)).collect();
        Ok(fitted.into_iter().map(|(i, _, t)| (i, t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::space;
    use bpnet::Matrix;
    use bpnet::workflow::HeldOut;

    fn record(trial: usize, folds: &[f64], confirm: &[f64]) -> TrialRecord {
        TrialRecord {
            trial,
            params: space::portfolio()[0].clone(),
            score: folds.iter().sum::<f64>() / folds.len() as f64,
            folds: folds.to_vec(),
            pruned: false,
            seconds: 0.0,
            failed: None,
            floored: 0,
            confirm: confirm.to_vec(),
        }
    }

    /// Trials 1 (0.8 over both), 3 (0.75) and 0 (0.7) re-scored; 2 was cut
    /// during its re-scoring, 4 was not re-scored.
    fn outcome() -> TuneOutcome {
        let records = vec![
            record(0, &[0.7, 0.7], &[0.7, 0.7]),
            record(1, &[0.8, 0.8], &[0.8, 0.8]),
            record(2, &[0.95, 0.95], &[0.9]),
            record(3, &[0.9, 0.9], &[0.6, 0.6]),
            record(4, &[0.6, 0.6], &[]),
        ];
        TuneOutcome {
            best: 1,
            records,
            metric: "accuracy",
            cv: 2,
            resumed: 0,
            blended: Vec::new(),
            held_out: Vec::new(),
            timed: false,
            journal: None,
            data_sha256: String::new(),
        }
    }

    fn diverge(step: usize) -> Error {
        Error::Diverged {
            step,
            detail: "inf".into(),
        }
    }

    #[test]
    fn the_blend_holds_every_trial_rescored_on_all_folds_in_ranking_order() {
        let mut o = outcome();
        assert_eq!(o.blend(), vec![1, 3, 0]);
        let mut asked = Vec::new();
        let fitted = o
            .fit_blend(
                BlendRule::Select,
                2,
                &mut |rs| {
                    asked.push(rs.iter().map(|(r, _)| r.trial).collect::<Vec<_>>());
                    Ok(rs.iter().map(|(r, n)| Ok(r.trial * 10 + n)).collect())
                },
                &mut |_| panic!("nothing diverged"),
            )
            .unwrap();
        assert_eq!(asked, vec![vec![1, 3, 0]]);
        assert_eq!(fitted, vec![(1, 12), (3, 32), (0, 2)]);
        assert_eq!((o.best, o.blended.clone()), (1, vec![(1, 2), (3, 2), (0, 2)]));
        // Alone: the best only.
        let mut o = outcome();
        let fitted = o.fit_blend(
            BlendRule::Alone,
            5,
            &mut |rs| Ok(rs.iter().map(|(r, n)| Ok(r.trial * 10 + n)).collect()),
            &mut |_| {},
        );
        assert_eq!(fitted.unwrap(), vec![(1, 15)]);
        assert_eq!(o.blended, vec![(1, 5)]);
        // Nothing re-scored on every fold: the best alone.
        let mut o = outcome();
        for r in &mut o.records {
            r.confirm.clear();
        }
        assert_eq!(o.blend(), vec![1]);
    }

    #[test]
    fn the_networks_go_where_the_out_of_fold_predictions_earn_them() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let h = |p: [f64; 4]| HeldOut {
            predictions: Matrix::from_vec(4, 1, p.to_vec()).unwrap(),
            truth: Matrix::from_vec(4, 1, y.to_vec()).unwrap(),
            classes: None,
        };
        // Blend [1, 3, 0]: trial 1 is +1 on the first two rows, trial 0 -1
        // (their mean is exact), trial 3 far off: 6 networks, 3 and 3.
        let mut o = outcome();
        o.held_out = vec![
            (3, h([9.0; 4])),
            (0, h([0.0, 1.0, 3.0, 4.0])),
            (1, h([2.0, 3.0, 3.0, 4.0])),
        ];
        assert_eq!(o.blend_networks(2, 0), vec![(1, 3), (0, 3)]);
        assert_eq!(o.chosen(BlendRule::Select, 2), vec![(1, 3), (0, 3)]);
        // Mixed: one each, then 3 rounds from their mean (11, 13, 15, 17) / 3,
        // which trial 3 pulls up: trial 0's low predictions every time.
        assert_eq!(o.chosen(BlendRule::Mixed, 2), vec![(1, 1), (3, 1), (0, 4)]);
        assert_eq!(o.chosen(BlendRule::Mixed, 1), vec![(1, 1), (3, 1), (0, 1)]);
        // Trial 1 ten times as slow as the others: the equal blend's cost,
        // 2 ⋅ (10 + 1 + 1), pays for 2 of its networks, not 3 (A, B, A, B,
        // then trial 0 twice more).
        let mut slow = o.clone();
        slow.timed = true;
        for (r, s) in slow.records.iter_mut().zip([1.0, 10.0, 1.0, 1.0, 1.0]) {
            r.seconds = s;
        }
        assert_eq!(slow.blend_networks(2, 0), vec![(1, 2), (0, 4)]);
        // Without a time limit, durations do not count.
        slow.timed = false;
        assert_eq!(slow.blend_networks(2, 0), vec![(1, 3), (0, 3)]);
        let fitted = o
            .fit_blend(
                BlendRule::Select,
                2,
                &mut |rs| Ok(rs.iter().map(|&(r, n)| Ok((r.trial, n))).collect()),
                &mut |_| panic!("nothing diverged"),
            )
            .unwrap();
        assert_eq!(fitted, vec![(1, (1, 3)), (0, (0, 3))]);
        assert_eq!(o.blended, vec![(1, 3), (0, 3)]);
        // The equal rule ignores the predictions: 2 networks each.
        let mut equal = o.clone();
        equal
            .fit_blend(
                BlendRule::Equal,
                2,
                &mut |rs| Ok(rs.iter().map(|_| Ok(())).collect()),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(equal.blended, vec![(1, 2), (3, 2), (0, 2)]);
        // The best (trial 1) far off instead: it gets no network, and stays
        // the best of the ranking.
        o.held_out[2].1 = h([9.0; 4]);
        o.held_out[0].1 = h([2.0, 3.0, 3.0, 4.0]);
        assert_eq!(o.blend_networks(2, 0), vec![(3, 3), (0, 3)]);
        o.fit_blend(
            BlendRule::Select,
            2,
            &mut |rs| Ok(rs.iter().map(|_| Ok(())).collect()),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!((o.best, o.blended.clone()), (1, vec![(3, 3), (0, 3)]));
        // Only trial 0 has predictions: every network is its; none has: 2 each.
        o.held_out.retain(|(i, _)| *i == 0);
        assert_eq!(o.blend_networks(2, 0), vec![(0, 6)]);
        assert_eq!(o.blend_networks(2, 1), vec![(0, 6)]);
        o.held_out.clear();
        assert_eq!(o.blend_networks(1, 0), vec![(1, 1), (3, 1), (0, 1)]);
    }

    #[test]
    fn a_trial_whose_refit_diverges_is_left_out_and_the_next_leads() {
        let mut o = outcome();
        let mut left_out = Vec::new();
        let fitted = o
            .fit_blend(
                BlendRule::Select,
                2,
                &mut |rs| {
                    Ok(rs
                        .iter()
                        .map(|(r, _)| if r.trial == 1 { Err(diverge(4)) } else { Ok(r.trial) })
                        .collect())
                },
                &mut |r| left_out.push(r.trial),
            )
            .unwrap();
        assert_eq!(fitted, vec![(3, 3), (0, 0)]);
        assert_eq!(left_out, vec![1]);
        assert_eq!((o.best().trial, o.blended.clone()), (3, vec![(3, 2), (0, 2)]));
        assert!(o.records[1].failed.as_deref().unwrap().contains("diverged at step 4"));
        assert_eq!(o.ranked()[..2], [3, 0]);
    }

    #[test]
    fn when_the_whole_blend_diverges_the_next_complete_trials_are_tried_alone() {
        // Trials 1, 3 and 0 diverge; trial 2 (complete, its re-scoring cut)
        // diverges alone too; trial 4 is fitted.
        let mut o = outcome();
        let mut calls = Vec::new();
        let mut left_out = Vec::new();
        let fitted = o
            .fit_blend(
                BlendRule::Select,
                2,
                &mut |rs| {
                    calls.push(rs.iter().map(|(r, _)| r.trial).collect::<Vec<_>>());
                    Ok(rs
                        .iter()
                        .map(|(r, _)| if r.trial == 4 { Ok(r.trial) } else { Err(diverge(2)) })
                        .collect())
                },
                &mut |r| left_out.push(r.trial),
            )
            .unwrap();
        assert_eq!(fitted, vec![(4, 4)]);
        assert_eq!(calls, vec![vec![1, 3, 0], vec![2], vec![4]]);
        assert_eq!(left_out, vec![1, 3, 0, 2]);
        assert_eq!((o.best().trial, o.blended.clone()), (4, vec![(4, 2)]));
        // Every trial diverges: the divergence is the error; another error
        // is returned at once; a result count that does not match is refused.
        let mut o = outcome();
        let all = o.fit_blend(
            BlendRule::Select,
            2,
            &mut |rs| Ok(rs.iter().map(|_| Err::<(), _>(diverge(9))).collect()),
            &mut |_| {},
        );
        assert!(matches!(all, Err(Error::Diverged { step: 9, .. })), "{all:?}");
        let mut o = outcome();
        let other = o.fit_blend(
            BlendRule::Select,
            2,
            &mut |rs| Ok(rs.iter().map(|_| Err::<(), _>(Error::State("disk".into()))).collect()),
            &mut |_| {},
        );
        assert!(matches!(other, Err(Error::State(_))), "{other:?}");
        let mut o = outcome();
        let short = o.fit_blend(BlendRule::Select, 2, &mut |_| Ok(vec![Ok(())]), &mut |_| {});
        assert!(short.unwrap_err().to_string().contains("1 results for 3 trials"));
    }
}

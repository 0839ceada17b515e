//! `bpnet tune`: a seeded, resumable, k-fold cross-validated search over
//! network, optimizer and regularization settings with TPE sampling (the
//! `tpe` crate), the median pruning rule, and trials run in parallel.
//!
//! The first trials are the fixed [`space::portfolio`]. Reproducibility:
//! trials are asked in groups of [`GROUP`]; trial `t` (past the portfolio)
//! is asked with a random stream seeded by `(seed, t)` from samplers told
//! every trial of the earlier groups (in trial order), and pruned against
//! the trials of the earlier groups only. Each trial trains with its own
//! seed-determined folds and weights, and a training run gives the same
//! bits on any thread count, so the trials, their scores and the best
//! model do not depend on how many trials run at once, nor on an
//! interruption and resume ([`journal`]). Only `--time` makes the number
//! of trials depend on the machine: at that deadline the trials still
//! running are stopped and left out (neither scored nor journaled, so a
//! resumed search runs them again) and the search ends.
//!
//! At the end the [`TuneOptions::confirm`] best complete trials and the
//! complete trials of the portfolio are scored again on a second,
//! independent split into folds with other training seeds, and the best is
//! the one with the highest mean over both splits' folds. Of thousands of
//! trials, the one with the best cross-validated score is partly the
//! luckiest on that split; its second score is free of that selection, and
//! the portfolio's points, fixed before the search, were not selected.
//! With `--time`, the search stops early enough to leave the re-scoring
//! and the refit their time, estimated from the candidates' own durations
//! ([`reserve`], at most [`RESERVE_SHARE`] of the time); a candidate the
//! limit cuts is left out of the choice (and when none finished, the
//! search's best is kept).
//!
//! The model is then refit on the training rows (as `bpnet train` fits:
//! a tenth of them held out for early stopping): by default a blend of the
//! re-scored trials, [`BLEND_MEMBERS`] networks per trial in all, shared
//! out by greedy selection on their out-of-fold predictions of the second
//! split ([`select`], [`TuneOutcome::fit_blend`]), every network's
//! predictions averaged; or the best alone.

mod blend;
pub use blend::{BlendRule, RefitTrials};
pub mod journal;
pub mod report;
pub mod select;
pub mod space;

use bpnet::train::Event;
use bpnet::workflow::{HeldOut, TableSource, TrainConfig, mean_sd, open_table, run_fold_with, table_folds};
use bpnet::{Error, Result};
use journal::{Journal, JournalHeader, TrialRecord};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use space::{Params, Space};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Trials asked together (before any of them is told back).
pub const GROUP: usize = 4;

/// Trials that must have finished a fold before the median rule prunes at it.
pub const PRUNE_AFTER: usize = 4;

/// Most of `--time` kept for re-scoring the best trials and the refit.
pub const RESERVE_SHARE: f64 = 0.3;

/// Networks per re-scored trial, on average, when the refit blends them.
pub const BLEND_MEMBERS: usize = 2;

/// Mixed into the seed for the re-scoring's folds and training runs.
const CONFIRM_SEED: u64 = 0x5EC0_0D5F_01D5;

/// Lowest score recorded for a fold (a failed trial's, or an R² below it:
/// one runaway fold, -1e11 with an outlier, would otherwise decide a
/// trial's place and swamp the sampler); a trial records how many of its
/// folds it floored, and the outputs say so.
pub const SCORE_FLOOR: f64 = -10.0;

/// What to search.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// Data, target, seed, epochs, patience... of every trial.
    pub base: TrainConfig,
    /// Stop after this many trials.
    pub trials: Option<usize>,
    /// End the search after this many seconds: trials still running then
    /// are stopped and left out.
    pub time: Option<f64>,
    /// Folds.
    pub cv: usize,
    /// Trials run at once (each on one engine thread when more than one).
    pub workers: usize,
    /// Best complete trials scored again on a second split into folds,
    /// with the portfolio's complete trials (0: none; the search's best is
    /// the answer).
    pub confirm: usize,
    /// Whether the refit will blend the re-scored trials (else the best
    /// alone), and how many networks it trains per trial (for a blend, on
    /// average over the re-scored trials): what [`reserve`] keeps time for.
    pub refit: (bool, usize),
    /// The journal file.
    pub journal: PathBuf,
}

/// The result of a search.
#[derive(Debug, Clone)]
pub struct TuneOutcome {
    /// Every finished trial, in trial order.
    pub records: Vec<TrialRecord>,
    /// `accuracy` or `r2`.
    pub metric: &'static str,
    /// Index into `records` of the best trial: of those re-scored on every
    /// fold, the highest mean over both splits; when none was, the best
    /// cross-validated score of the trials that ran every fold.
    pub best: usize,
    /// Folds per split.
    pub cv: usize,
    /// Trials read back from the journal rather than run (those this
    /// search used: a rerun with a smaller `--trials` reads back no more).
    pub resumed: usize,
    /// Indices into `records` of the trials the refit model holds, with
    /// each one's networks, in ranking order (set by [`Self::fit_blend`];
    /// empty before).
    pub blended: Vec<(usize, usize)>,
    /// Index into `records` and out-of-fold predictions on the second
    /// split of each trial re-scored on all its folds without failing
    /// (rows in the folds' order, the same for all).
    pub held_out: Vec<(usize, HeldOut)>,
    /// Whether the search had a time limit: then the blend's refit is
    /// kept within the time the equal blend's would take
    /// ([`Self::blend_networks`]), by wall-clock durations; without one the
    /// model depends on nothing but the seed.
    pub timed: bool,
    /// The search's journal, still open and locked: held while the outcome
    /// lives, so that the refit and its files are written under the lock
    /// (a second `bpnet tune` on the same `--out` had found the journal
    /// free during the refit and refit and written the same files again).
    /// `None` where no journal was opened (tests).
    pub journal: Option<std::sync::Arc<Journal>>,
    /// SHA-256 of the data file the search read (as its journal records
    /// it): the refit must read the same bytes.
    pub data_sha256: String,
}

impl TuneOutcome {
    /// The best trial.
    pub fn best(&self) -> &TrialRecord {
        &self.records[self.best]
    }

    /// Calls `fit` with the best trial; each time it returns
    /// [`Error::Diverged`] (settings that trained on every fold can still
    /// blow up on all rows), marks that trial failed, makes the next
    /// complete trial in the [`Self::ranked`] order the best, calls
    /// `diverged(failed, next)` and tries again. Other errors, or a
    /// divergence with no complete trial left, are returned.
    pub fn fit_best<T>(
        &mut self,
        fit: &mut dyn FnMut(&TrialRecord) -> Result<T>,
        diverged: &mut dyn FnMut(&TrialRecord, &TrialRecord),
    ) -> Result<T> {
        loop {
            match fit(self.best()) {
                Err(Error::Diverged { step, detail }) => {
                    let failed = self.best;
                    self.records[failed].failed = Some(format!("the refit on all rows diverged at step {step}"));
                    let Some(next) = self.ranked().into_iter().find(|&i| self.records[i].complete()) else {
                        return Err(Error::Diverged { step, detail });
                    };
                    self.best = next;
                    diverged(&self.records[failed], &self.records[next]);
                }
                other => return other,
            }
        }
    }

    /// Indices into `records`: [`Self::best`] first, then the re-scored
    /// trials by their mean over both splits, the other complete ones by
    /// score, then pruned and failed ones (ties to the earlier trial).
    pub fn ranked(&self) -> Vec<usize> {
        let r = &self.records;
        let both = |x: &TrialRecord| x.combined(self.cv).unwrap_or(f64::NEG_INFINITY);
        let key = |i: usize| (i == self.best, r[i].combined(self.cv).is_some(), r[i].complete());
        let mut idx: Vec<usize> = (0..r.len()).collect();
        idx.sort_by(|&i, &j| {
            let (a, b) = (&r[i], &r[j]);
            key(j)
                .cmp(&key(i))
                .then(both(b).total_cmp(&both(a)))
                .then(b.score.total_cmp(&a.score))
                .then(a.trial.cmp(&b.trial))
        });
        idx
    }
}

/// What the search tells its caller of each trial: the record, how many
/// trials have finished so far, and whether the record was read back from
/// the journal (run by an earlier, interrupted search) rather than run now.
pub type OnTrial<'a> = dyn FnMut(&TrialRecord, usize, bool) + 'a;

/// Runs the search; `on_trial(record, finished_so_far, from_journal)` is
/// called on the calling thread as each trial finishes (resumed ones
/// included, with `from_journal`; re-scoring always runs anew).
pub fn tune(opts: &TuneOptions, on_trial: &mut OnTrial) -> Result<TuneOutcome> {
    if opts.trials.is_none() && opts.time.is_none() {
        return Err(Error::config("tune", "give --trials or --time"));
    }
    let src = open_table(&opts.base)?;
    let folds = table_folds(&src, opts.cv, opts.base.seed)?;
    // What the data makes every trial and the refit fail on (one class, a
    // word in a number column, a missing cell without --impute) fails
    // here, in one line and before the journal is written: each trial had
    // printed it as a failure and left a journal of failures, which a
    // rerun on the mended file refused as another search's.
    bpnet::workflow::prepare_rows(&opts.base, &src, &src.rows, None)?;
    let header = header(opts, &src)?;
    let (journal, done) = Journal::open(&opts.journal, &header)?;
    let mut resumed = 0;
    // A journaled trial is read back without asking TPE for its point
    // again, except in the group of the first TPE trial and in the group of
    // the last journaled trial, whose asks are compared with the journal
    // (so that a journal of another version of the search is refused).
    // Skipping the others changes no later point: a trial's random stream
    // is its own (`trial_rng`), and an ask leaves the samplers' state as
    // the next ask would make it anyway (it only sorts what they were told,
    // by a stable sort, so ties stay in the order told). Asking every
    // journaled trial again made a resume cost as much sampling time as the
    // search had spent: 46 s for 10,140 trials on a 249-row table.
    let journaled: HashMap<usize, &TrialRecord> = done.iter().map(|r| (r.trial, r)).collect();
    let last_journaled = done.iter().map(|r| r.trial).max();
    let checked = |g: usize| g == space::PORTFOLIO / GROUP || last_journaled.is_some_and(|t| t / GROUP == g);
    let mut space = Space::new()?;
    let mut records: Vec<TrialRecord> = Vec::new();
    let start = Instant::now();
    let limit = opts.trials.unwrap_or(usize::MAX);
    let train_rows = src.rows.len() * (opts.cv - 1) / opts.cv;
    // A budget past what an Instant can hold is no deadline (1e19 s panicked).
    let end = opts.time.and_then(|t| start.checked_add(seconds(t)));
    let mut ctx = Ctx {
        src: &src,
        folds: &folds,
        opts,
        train_rows,
        seed: opts.base.seed,
        deadline: end,
    };
    for group in 0.. {
        let first = group * GROUP;
        ctx.deadline = end.map(|e| e - reserve(&records, opts));
        let out_of_time = ctx.past_deadline();
        if first >= limit || (out_of_time && last_journaled.is_none_or(|t| t < first)) {
            break;
        }
        let trials: Vec<usize> = (first..(first + GROUP).min(limit)).collect();
        let mut asked: Vec<Params> = Vec::with_capacity(trials.len());
        let mut finished: Vec<Option<TrialRecord>> = vec![None; trials.len()];
        for (i, &t) in trials.iter().enumerate() {
            let read = journaled.get(&t).copied();
            let p = match (space::portfolio().get(t), read) {
                (Some(p), _) => p.clone(),
                (None, Some(r)) if !checked(group) => r.params.clone(),
                (None, _) => space.ask(&mut trial_rng(opts.base.seed, t)),
            };
            if let Some(r) = read {
                if r.params != p {
                    return Err(Error::Format {
                        path: opts.journal.clone(),
                        reason: format!("trial {t} in the journal has other parameters than this search asks"),
                    });
                }
                on_trial(r, records.len() + i + 1, true);
                finished[i] = Some(r.clone());
                resumed += 1;
            }
            asked.push(p);
        }
        let pending: Vec<(usize, usize, Params)> = finished
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_none())
            .map(|(i, _)| (i, trials[i], asked[i].clone()))
            .collect();
        let medians = fold_medians(&records, opts.cv);
        let mut count = records.len() + finished.iter().flatten().count();
        ctx.run_group(&pending, &medians, &mut |i, r, _| {
            journal.append(&r)?;
            count += 1;
            on_trial(&r, count, false);
            finished[i] = Some(r);
            Ok(())
        })?;
        let cut = finished.iter().any(Option::is_none);
        for (p, r) in asked.iter().zip(finished) {
            if let Some(r) = r {
                space.tell(p, -r.score);
                records.push(r);
            }
        }
        if cut {
            break;
        }
        if data_fails_every_trial(&records) {
            // Four different settings failed alike without diverging: the
            // data or the options do, and every later trial would too (a
            // missing target cell had spent all of --time on 720 failures).
            return Err(no_complete_trial(&records));
        }
    }
    let again = table_folds(&src, opts.cv, opts.base.seed ^ CONFIRM_SEED)?;
    let confirm = Ctx {
        folds: &again,
        seed: opts.base.seed ^ CONFIRM_SEED,
        deadline: end,
        ..ctx
    };
    let held_out = confirm.rescore(&mut records, on_trial)?;
    let best = choose(&records, opts.cv).ok_or_else(|| no_complete_trial(&records))?;
    Ok(TuneOutcome {
        records,
        metric: if src.is_classification() { "accuracy" } else { "r2" },
        best,
        cv: opts.cv,
        resumed,
        blended: Vec::new(),
        held_out,
        timed: opts.time.is_some(),
        journal: Some(std::sync::Arc::new(journal)),
        data_sha256: header.data_sha256,
    })
}

/// Whether the [`space::portfolio`]'s trials have all run and all failed
/// with an error other than a divergence (which depends on the settings).
fn data_fails_every_trial(records: &[TrialRecord]) -> bool {
    let portfolio: Vec<&TrialRecord> = records.iter().filter(|r| r.trial < space::PORTFOLIO).collect();
    // `Error::Diverged`'s text (the only error a trial's settings cause).
    let other_error = |r: &&TrialRecord| r.failed.as_deref().is_some_and(|f| !f.starts_with("training diverged"));
    portfolio.len() == space::PORTFOLIO && portfolio.iter().all(other_error)
}

/// When the deadline cut the re-scoring of the `top` trials (`finished`
/// of them ended), none of it is used: the trials it finished are the
/// fast ones, not the best (a linear trial 0.09 behind had won so), and
/// [`choose`] falls back to the search's best.
fn discard_if_cut(records: &mut [TrialRecord], top: &[usize], finished: usize, held_out: &mut Vec<(usize, HeldOut)>) {
    if finished < top.len() {
        for &i in top {
            records[i].confirm.clear();
        }
        held_out.clear();
    }
}

/// The error of a search where no trial ran every fold: when trials
/// failed, the first failure's own error (bad data or options fail every
/// trial alike: an all-missing column, a missing target), not advice to
/// give more trials.
fn no_complete_trial(records: &[TrialRecord]) -> Error {
    let failed: Vec<&TrialRecord> = records.iter().filter(|r| r.failed.is_some()).collect();
    match failed.first() {
        Some(first) if failed.len() == records.len() => Error::config(
            "tune",
            format!(
                "every trial failed ({}), the first with: {}",
                records.len(),
                first.failed.as_deref().unwrap_or("")
            ),
        ),
        _ => Error::config("tune", "no trial ran every fold; give more trials or time"),
    }
}

/// What the journal records of the search `opts` on `src`: every option
/// that changes a trial's score, the task as decided (so that `--task auto`
/// and the task it detects are the same search).
fn header(opts: &TuneOptions, src: &TableSource) -> Result<JournalHeader> {
    let base = &opts.base;
    Ok(JournalHeader {
        data: base.data.clone(),
        data_sha256: bpnet::io::file_sha256(&bpnet::workflow::data_path(&base.data))?,
        target: base.target.clone(),
        target_columns: src.target_columns().to_vec(),
        task: if src.is_classification() { "classify" } else { "regress" }.into(),
        impute: if base.impute.is_empty() { "none" } else { &base.impute }.into(),
        cv: opts.cv,
        seed: base.seed,
        epochs: base.epochs,
        reading: journal::reading(base.delimiter, base.header_option()?),
    })
}

/// The time a search with `--time` keeps for what follows it, estimated
/// before each group from the current candidates' durations `s_i` (each
/// over the `k` folds of `(k-1)/k` of the rows): re-scoring the [`leaders`]
/// takes about `Σ s_i`, and refitting a trial on all rows with `n`
/// networks about `n ⋅ s_i / (k-1)` (the leaders for a blend, the best
/// alone otherwise). The reserve is 1.25 ⋅ (that sum / the trials run at
/// once + the longest `s_i`), at most [`RESERVE_SHARE`] of the time (and
/// that share while no trial has finished).
fn reserve(records: &[TrialRecord], opts: &TuneOptions) -> Duration {
    let cap = opts.time.unwrap_or(0.0).max(0.0) * RESERVE_SHARE;
    let lead = leaders(records, opts.confirm);
    let top = match lead.is_empty() {
        true => leaders(records, 2).into_iter().take(1).collect(),
        false => lead.clone(),
    };
    let Some(&first) = top.first() else {
        return seconds(cap);
    };
    let secs = |idx: &[usize]| idx.iter().map(|&i| records[i].seconds).sum::<f64>();
    let (blend, networks) = opts.refit;
    let refit_of = if blend { secs(&top) } else { records[first].seconds };
    let work = secs(&lead) + refit_of * networks as f64 / (opts.cv.max(2) - 1) as f64;
    let longest = top.iter().map(|&i| records[i].seconds).fold(0.0, f64::max);
    let estimate = 1.25 * (work / opts.workers.max(1) as f64 + longest);
    seconds(estimate.min(cap))
}

/// `s` seconds as a duration: none for a negative or NaN `s`, the longest
/// duration for one too large (`Duration::from_secs_f64` panics on both).
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::MAX)
}

/// The best trial's index: of those with a [`TrialRecord::combined`]
/// score, the highest; when there are none, the complete trial with the
/// highest score (ties to the earlier trial).
fn choose(records: &[TrialRecord], k: usize) -> Option<usize> {
    let best_by = |key: &dyn Fn(&TrialRecord) -> Option<f64>| {
        records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| key(r).map(|s| (i, s)))
            .max_by(|(i, a), (j, b)| a.total_cmp(b).then(j.cmp(i)))
            .map(|(i, _)| i)
    };
    best_by(&|r| r.combined(k)).or_else(|| best_by(&|r| r.complete().then_some(r.score)))
}

/// The trials to re-score, best search score first: the `n` complete
/// trials with the highest scores, and the complete trials of the
/// portfolio (none when `n` is 0). The portfolio's points were fixed
/// before the search, so their scores carry no selection; TPE's best few
/// are often near copies of one point. With `n` = 1 the search's best is
/// weighed against the portfolio's points on the second split: the
/// comparison in which its lead is most likely luck.
fn leaders(records: &[TrialRecord], n: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    // Called before every group of a search of up to thousands of trials:
    // a selection of the n best, not a sort of them all.
    let better = |i: &usize, j: &usize| records[*j].score.total_cmp(&records[*i].score).then(i.cmp(j));
    let mut idx: Vec<usize> = (0..records.len()).filter(|&i| records[i].complete()).collect();
    if idx.len() > n {
        idx.select_nth_unstable_by(n - 1, better);
    }
    let mut top = idx[..n.min(idx.len())].to_vec();
    let portfolio = idx[top.len()..]
        .iter()
        .filter(|&&i| records[i].trial < space::PORTFOLIO);
    top.extend(portfolio.copied());
    top.sort_by(better);
    top
}

/// The random stream trial `t` is asked with.
fn trial_rng(seed: u64, t: usize) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// For each fold count j (1..k-1), the median over `records` that ran at
/// least j folds of their mean score after j folds (None with fewer than
/// [`PRUNE_AFTER`] such records).
fn fold_medians(records: &[TrialRecord], k: usize) -> Vec<Option<f64>> {
    (1..k)
        .map(|j| {
            let mut means: Vec<f64> = records
                .iter()
                .filter(|r| r.folds.len() >= j)
                .map(|r| r.folds[..j].iter().sum::<f64>() / j as f64)
                .collect();
            (means.len() >= PRUNE_AFTER).then(|| {
                means.sort_by(f64::total_cmp);
                let n = means.len();
                if n % 2 == 1 {
                    means[n / 2]
                } else {
                    (means[n / 2 - 1] + means[n / 2]) / 2.0
                }
            })
        })
        .collect()
}

struct Ctx<'a> {
    src: &'a TableSource,
    folds: &'a [Vec<usize>],
    opts: &'a TuneOptions,
    train_rows: usize,
    /// Seed of every training run (the search's, or the re-scoring's).
    seed: u64,
    /// When running trials are stopped (`--time`).
    deadline: Option<Instant>,
}

impl Ctx<'_> {
    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs one trial: fold after fold, pruned when its running mean falls
    /// below the median of earlier trials at the same fold; None when the
    /// deadline came first (checked after every training step). With it,
    /// the folds' held-out predictions, in fold order.
    fn trial(&self, t: usize, p: &Params, medians: &[Option<f64>]) -> Option<(TrialRecord, Vec<HeldOut>)> {
        let began = Instant::now();
        let mut cfg = p.apply(&self.opts.base, self.train_rows);
        cfg.seed = self.seed;
        let mut folds = Vec::new();
        let mut floored = 0;
        let mut held = Vec::new();
        let mut pruned = false;
        let mut failed = None;
        let mut stop = |e: Event<'_>| match e {
            Event::Step { .. } if self.past_deadline() => Err(Error::State("the search's time is up".into())),
            _ => Ok(()),
        };
        for i in 0..self.folds.len() {
            if self.past_deadline() {
                return None;
            }
            match run_fold_with(&cfg, self.src, self.folds, i, &mut stop) {
                Ok(f) => {
                    floored += usize::from(f.score.is_nan() || f.score < SCORE_FLOOR);
                    folds.push(f.score.max(SCORE_FLOOR));
                    held.push(f.held_out);
                }
                Err(_) if self.past_deadline() => return None,
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
            let mean = mean_sd(&folds).0;
            if i + 1 < self.folds.len() && medians.get(i).copied().flatten().is_some_and(|m| mean < m) {
                pruned = true;
                break;
            }
        }
        let score = match failed {
            Some(_) => SCORE_FLOOR,
            None => mean_sd(&folds).0,
        };
        let record = TrialRecord {
            trial: t,
            params: p.clone(),
            score,
            folds,
            pruned,
            seconds: began.elapsed().as_secs_f64(),
            failed,
            floored,
            confirm: Vec::new(),
        };
        Some((record, held))
    }

    /// Scores the [`leaders`] of `records` on this
    /// context's folds (no pruning), storing each one's fold scores in its
    /// `confirm` (the floor on every fold when training failed) and calling
    /// `on_trial` with it; one the deadline cuts keeps an empty `confirm`.
    /// With fewer than 2 complete trials there is nothing to choose between.
    /// Returns the out-of-fold predictions of each trial that ran every
    /// fold (by index into `records`, in the order they finished).
    fn rescore(&self, records: &mut [TrialRecord], on_trial: &mut OnTrial) -> Result<Vec<(usize, HeldOut)>> {
        let top = leaders(records, self.opts.confirm);
        let mut held_out = Vec::new();
        if top.len() < 2 {
            return Ok(held_out);
        }
        let pending: Vec<(usize, usize, Params)> = top
            .iter()
            .map(|&i| (i, records[i].trial, records[i].params.clone()))
            .collect();
        let n = records.len();
        let mut finished = 0;
        self.run_group(&pending, &[], &mut |i, again, held| {
            finished += 1;
            let r = &mut records[i];
            r.confirm = match again.failed {
                Some(_) => vec![SCORE_FLOOR; self.folds.len()],
                None => again.folds,
            };
            if again.failed.is_none()
                && held.len() == self.folds.len()
                && let Ok(h) = HeldOut::concat(&held)
            {
                held_out.push((i, h));
            }
            on_trial(r, n, false);
            Ok(())
        })?;
        discard_if_cut(records, &top, finished, &mut held_out);
        Ok(held_out)
    }

    /// Runs `pending` (index in group, trial, params) on up to `workers`
    /// threads; `done(index, record, held-out predictions)` runs on the
    /// calling thread as each ends (not for a trial the deadline stopped).
    fn run_group(
        &self,
        pending: &[(usize, usize, Params)],
        medians: &[Option<f64>],
        done: &mut dyn FnMut(usize, TrialRecord, Vec<HeldOut>) -> Result<()>,
    ) -> Result<()> {
        let workers = self.opts.workers.clamp(1, pending.len().max(1));
        if workers == 1 {
            for (i, t, p) in pending {
                if let Some((r, h)) = self.trial(*t, p, medians) {
                    done(*i, r, h)?;
                }
            }
            return Ok(());
        }
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::channel();
        let failure = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..workers {
                let tx = tx.clone();
                let next = &next;
                s.spawn(move || {
                    while let Some((i, t, p)) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let Some((r, h)) = self.trial(*t, p, medians) else {
                            continue;
                        };
                        if tx.send((*i, r, h)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, r, h) in rx {
                if let Err(e) = done(i, r, h) {
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                }
            }
        });
        match failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(trial: usize, folds: &[f64], confirm: &[f64], pruned: bool) -> TrialRecord {
        TrialRecord {
            trial,
            params: space::portfolio()[0].clone(),
            score: folds.iter().sum::<f64>() / folds.len() as f64,
            folds: folds.to_vec(),
            pruned,
            seconds: 0.0,
            failed: None,
            floored: 0,
            confirm: confirm.to_vec(),
        }
    }

    /// A re-scoring the deadline cut is not used: the two fast trials it
    /// finished had become the answer over the search's best.
    #[test]
    fn a_cut_rescoring_leaves_the_search_best() {
        let mut records = vec![
            record(0, &[0.9, 0.9], &[0.6, 0.6], false),
            record(1, &[0.8, 0.8], &[0.8, 0.8], false),
            record(2, &[0.85, 0.85], &[], false),
        ];
        let held = |i| {
            let m = bpnet::Matrix::from_vec(1, 1, vec![0.5]).unwrap();
            let h = HeldOut {
                predictions: m.clone(),
                truth: m,
                classes: None,
            };
            (i, h)
        };
        let mut held_out = vec![held(0), held(1)];
        discard_if_cut(&mut records, &[0, 2, 1], 3, &mut held_out);
        assert_eq!((choose(&records, 2), held_out.len()), (Some(1), 2));
        discard_if_cut(&mut records, &[0, 2, 1], 2, &mut held_out);
        assert!(records.iter().all(|r| r.confirm.is_empty()) && held_out.is_empty());
        assert_eq!(choose(&records, 2), Some(0));
    }

    #[test]
    fn the_choice_takes_the_best_mean_of_both_splits_and_leaves_out_cut_ones() {
        // Trial 0 led the search but fell on the other split; trial 2's
        // re-scoring was cut (empty); trial 3 was pruned.
        let records = [
            record(0, &[0.9, 0.9], &[0.6, 0.6], false),
            record(1, &[0.8, 0.8], &[0.8, 0.8], false),
            record(2, &[0.85, 0.85], &[], false),
            record(3, &[0.95], &[], true),
        ];
        assert_eq!(choose(&records, 2), Some(1));
        // Trials 0-3 are the portfolio's: every complete one is re-scored,
        // for any n but 0.
        assert_eq!(leaders(&records, 2), vec![0, 2, 1]);
        assert_eq!(leaders(&records, 1), vec![0, 2, 1]);
        assert_eq!(leaders(&records, 0), Vec::<usize>::new());
        // Past the portfolio: the n best complete trials, then the
        // portfolio's (trial 7, pruned, is neither).
        let tpe = [
            record(0, &[0.7, 0.7], &[], false),
            record(5, &[0.8, 0.8], &[], false),
            record(6, &[0.9, 0.9], &[], false),
            record(7, &[0.95], &[], true),
        ];
        assert_eq!(leaders(&tpe, 1), vec![2, 0]);
        assert_eq!(leaders(&tpe, 2), vec![2, 1, 0]);
        // No trial re-scored on every fold: the search's best complete trial.
        let plain: Vec<TrialRecord> = records
            .iter()
            .map(|r| TrialRecord {
                confirm: vec![0.7],
                ..r.clone()
            })
            .collect();
        assert_eq!(choose(&plain, 2), Some(0));
        assert_eq!(choose(&records[3..], 2), None);
        // Ties go to the earlier trial (records are in trial order).
        let tie = [
            record(2, &[0.5, 0.5], &[0.5, 0.5], false),
            record(4, &[0.5, 0.5], &[0.5, 0.5], false),
        ];
        assert_eq!(choose(&tie, 2), Some(0));
    }

    #[test]
    fn the_median_after_a_fold_needs_4_trials_that_ran_it() {
        let records = [
            record(0, &[0.5, 0.5, 0.5], &[], false),
            record(1, &[0.75, 0.25, 0.5], &[], false),
            record(2, &[1.0, 1.0, 1.0], &[], false),
            record(3, &[0.25], &[], true),
            record(4, &[0.875], &[], true),
        ];
        // After fold 1, five means (0.25 0.5 0.75 0.875 1): 0.75; after
        // fold 2, three trials ran it: no median, no pruning there.
        assert_eq!(fold_medians(&records, 3), vec![Some(0.75), None]);
        // Four after fold 1: the mean of the middle two (0.5, 0.75).
        assert_eq!(fold_medians(&records[..4], 3), vec![Some(0.625), None]);
        assert_eq!(fold_medians(&records[..3], 3), vec![None, None]);
        // A fourth trial past fold 2: its running means 0.5 0.5 1 0.75.
        let mut more = records.to_vec();
        more.push(record(5, &[0.5, 1.0, 0.5], &[], false));
        assert_eq!(fold_medians(&more, 3), vec![Some(0.625), Some(0.625)]);
    }

    #[test]
    fn the_reserve_follows_the_candidates_durations_up_to_its_share() {
        let mut opts = TuneOptions {
            base: TrainConfig::default(),
            trials: None,
            time: Some(100.0),
            cv: 3,
            workers: 2,
            confirm: 2,
            refit: (true, 2),
            journal: "j".into(),
        };
        let mut records = vec![
            record(0, &[0.7, 0.7, 0.7], &[], false),
            record(5, &[0.8, 0.8, 0.8], &[], false),
            record(6, &[0.9, 0.9, 0.9], &[], false),
            record(7, &[0.95], &[], true),
        ];
        for (r, s) in records.iter_mut().zip([1.0, 2.0, 3.0, 100.0]) {
            r.seconds = s;
        }
        let secs = |o: &TuneOptions, r: &[TrialRecord]| reserve(r, o).as_secs_f64();
        // Leaders: trials 6, 5 and 0 (the portfolio's), 6 s in all: the
        // re-scoring 6 s, a blend's refit 6 ⋅ 2 networks / (3 - 1) folds;
        // over 2 workers, plus the longest (3 s), times 1.25.
        assert!((secs(&opts, &records) - 1.25 * (12.0 / 2.0 + 3.0)).abs() < 1e-9);
        // The best alone with 5 networks: 3 ⋅ 5 / 2 for the refit.
        opts.refit = (false, 5);
        assert!((secs(&opts, &records) - 1.25 * ((6.0 + 7.5) / 2.0 + 3.0)).abs() < 1e-9);
        // The best and the portfolio's (trials 6 and 0, 4 s) re-scored.
        opts.confirm = 1;
        assert!((secs(&opts, &records) - 1.25 * ((4.0 + 7.5) / 2.0 + 3.0)).abs() < 1e-9);
        // No re-scoring: the refit of the search's best alone.
        opts.confirm = 0;
        assert!((secs(&opts, &records) - 1.25 * (7.5 / 2.0 + 3.0)).abs() < 1e-9);
        // Nothing known yet: the whole share; longer trials: capped there.
        opts.confirm = 2;
        assert_eq!(reserve(&[], &opts), Duration::from_secs(30));
        records[2].seconds = 30.0;
        assert_eq!(reserve(&records, &opts), Duration::from_secs(30));
    }

    #[test]
    fn a_refit_that_diverges_falls_to_the_next_complete_trial() {
        let records = vec![
            record(0, &[0.7, 0.7], &[], false),
            record(1, &[0.8, 0.8], &[0.8, 0.8], false),
            record(2, &[0.95], &[], true),
            record(3, &[0.9, 0.9], &[0.6, 0.6], false),
            record(4, &[0.6, 0.6], &[], false),
        ];
        let mut o = TuneOutcome {
            best: choose(&records, 2).unwrap(),
            records,
            metric: "accuracy",
            cv: 2,
            resumed: 0,
            blended: Vec::new(),
            held_out: Vec::new(),
            timed: false,
            journal: None,
            data_sha256: String::new(),
        };
        assert_eq!(o.best().trial, 1);
        assert_eq!(o.ranked(), vec![1, 3, 0, 4, 2]);
        let diverge = |step| Error::Diverged {
            step,
            detail: "inf".into(),
        };
        // Trials 1 and 3 diverge on the refit: trial 0 is fitted.
        let (mut tried, mut moves) = (vec![], vec![]);
        let fitted = o.fit_best(
            &mut |r| {
                tried.push(r.trial);
                if r.trial == 0 { Ok(r.trial) } else { Err(diverge(7)) }
            },
            &mut |a, b| moves.push((a.trial, b.trial)),
        );
        assert_eq!(fitted.unwrap(), 0);
        assert_eq!((tried, moves), (vec![1, 3, 0], vec![(1, 3), (3, 0)]));
        assert_eq!(o.best().trial, 0);
        assert_eq!(o.ranked()[0], 0);
        assert!(o.records[1].failed.as_deref().unwrap().contains("diverged at step 7"));
        // Every complete trial diverges: the divergence is the error;
        // another error is returned at once.
        let all = o.fit_best(&mut |_| Err::<(), _>(diverge(3)), &mut |_, _| {});
        assert!(matches!(all, Err(Error::Diverged { step: 3, .. })), "{all:?}");
        let mut o2 = o.clone();
        o2.records[0].failed = None;
        o2.best = 0;
        let other = o2.fit_best(&mut |_| Err::<(), _>(Error::State("disk".into())), &mut |_, _| {});
        assert!(matches!(other, Err(Error::State(_))));
    }
}

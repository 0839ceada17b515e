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

pub mod journal;
pub mod report;
pub mod space;

use bpnet::train::Event;
use bpnet::workflow::{TableSource, TrainConfig, mean_sd, open_table, run_fold_with, table_folds};
use bpnet::{Error, Result};
use journal::{Journal, JournalHeader, TrialRecord};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use space::{Params, Space};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Trials asked together (before any of them is told back).
pub const GROUP: usize = 4;

/// Trials that must have finished a fold before the median rule prunes at it.
pub const PRUNE_AFTER: usize = 4;

/// Lowest score recorded (a failed trial, or an R² below it).
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
    /// Index into `records` of the best trial that ran every fold.
    pub best: usize,
    /// Trials read back from the journal rather than run.
    pub resumed: usize,
}

impl TuneOutcome {
    /// The best trial.
    pub fn best(&self) -> &TrialRecord {
        &self.records[self.best]
    }
}

/// Runs the search; `on_trial(record, finished_so_far)` is called on the
/// calling thread as each trial finishes (resumed ones included).
pub fn tune(opts: &TuneOptions, on_trial: &mut dyn FnMut(&TrialRecord, usize)) -> Result<TuneOutcome> {
    if opts.trials.is_none() && opts.time.is_none() {
        return Err(Error::config("tune", "give --trials or --time"));
    }
    let src = open_table(&opts.base)?;
    let folds = table_folds(&src, opts.cv, opts.base.seed)?;
    let header = JournalHeader {
        data: opts.base.data.clone(),
        target: opts.base.target.clone(),
        cv: opts.cv,
        seed: opts.base.seed,
        epochs: opts.base.epochs,
    };
    let (journal, done) = Journal::open(&opts.journal, &header)?;
    let resumed = done.len();
    let mut space = Space::new()?;
    let mut records: Vec<TrialRecord> = Vec::new();
    let start = Instant::now();
    let limit = opts.trials.unwrap_or(usize::MAX);
    let train_rows = src.rows.len() * (opts.cv - 1) / opts.cv;
    let ctx = Ctx {
        src: &src,
        folds: &folds,
        opts,
        train_rows,
        deadline: opts.time.map(|t| start + Duration::from_secs_f64(t.max(0.0))),
    };
    for group in 0.. {
        let first = group * GROUP;
        let out_of_time = opts.time.is_some_and(|t| start.elapsed().as_secs_f64() >= t);
        if first >= limit || (out_of_time && !done.iter().any(|r| r.trial >= first)) {
            break;
        }
        let trials: Vec<usize> = (first..(first + GROUP).min(limit)).collect();
        let asked: Vec<Params> = trials
            .iter()
            .map(|&t| match space::portfolio().get(t) {
                Some(p) => p.clone(),
                None => space.ask(&mut trial_rng(opts.base.seed, t)),
            })
            .collect();
        let mut finished: Vec<Option<TrialRecord>> = vec![None; trials.len()];
        for (i, &t) in trials.iter().enumerate() {
            if let Some(r) = done.iter().find(|r| r.trial == t) {
                if r.params != asked[i] {
                    return Err(Error::Format {
                        path: opts.journal.clone(),
                        reason: format!("trial {t} in the journal has other parameters than this search asks"),
                    });
                }
                on_trial(r, records.len() + i + 1);
                finished[i] = Some(r.clone());
            }
        }
        let pending: Vec<(usize, usize, Params)> = finished
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_none())
            .map(|(i, _)| (i, trials[i], asked[i].clone()))
            .collect();
        let medians = fold_medians(&records, opts.cv);
        let mut count = records.len() + finished.iter().flatten().count();
        ctx.run_group(&pending, &medians, &mut |i, r| {
            journal.append(&r)?;
            count += 1;
            on_trial(&r, count);
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
    }
    let best = records
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.pruned && r.failed.is_none())
        .max_by(|(i, a), (j, b)| a.score.total_cmp(&b.score).then(j.cmp(i)))
        .map(|(i, _)| i)
        .ok_or_else(|| Error::config("tune", "no trial ran every fold; give more trials or time"))?;
    Ok(TuneOutcome {
        records,
        metric: if src.is_classification() { "accuracy" } else { "r2" },
        best,
        resumed,
    })
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
    /// When running trials are stopped (`--time`).
    deadline: Option<Instant>,
}

impl Ctx<'_> {
    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs one trial: fold after fold, pruned when its running mean falls
    /// below the median of earlier trials at the same fold; None when the
    /// deadline came first (checked after every training step).
    fn trial(&self, t: usize, p: &Params, medians: &[Option<f64>]) -> Option<TrialRecord> {
        let began = Instant::now();
        let cfg = p.apply(&self.opts.base, self.train_rows);
        let mut folds = Vec::new();
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
                Ok(f) => folds.push(f.score.max(SCORE_FLOOR)),
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
        Some(TrialRecord {
            trial: t,
            params: p.clone(),
            score,
            folds,
            pruned,
            seconds: began.elapsed().as_secs_f64(),
            failed,
        })
    }

    /// Runs `pending` (index in group, trial, params) on up to `workers`
    /// threads; `done(index, record)` runs on the calling thread as each
    /// ends (not for a trial the deadline stopped).
    fn run_group(
        &self,
        pending: &[(usize, usize, Params)],
        medians: &[Option<f64>],
        done: &mut dyn FnMut(usize, TrialRecord) -> Result<()>,
    ) -> Result<()> {
        let workers = self.opts.workers.clamp(1, pending.len().max(1));
        if workers == 1 {
            for (i, t, p) in pending {
                if let Some(r) = self.trial(*t, p, medians) {
                    done(*i, r)?;
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
                        let Some(r) = self.trial(*t, p, medians) else { continue };
                        if tx.send((*i, r)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (i, r) in rx {
                if let Err(e) = done(i, r) {
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

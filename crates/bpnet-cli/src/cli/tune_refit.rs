//! The refit of `bpnet tune`'s answer on the training rows (a tenth of them
//! held out for early stopping, as `bpnet train` splits them): the re-scored
//! trials with [`BLEND_MEMBERS`] networks per trial in all, shared out by
//! greedy selection on their out-of-fold predictions (a blend), or the best
//! trial alone as `bpnet train` would fit it; all the networks train at
//! once over the threads, and one model file holds them.

use bpnet::io::save_blend;
use bpnet::train::History;
use bpnet::workflow::{
    Pipeline, Prepared, TrainConfig, Trained, auto_ensemble, combine_for, member_config, train_each,
};
use bpnet::{Error, ModelSpec, Result, Sequential};
use bpnet_lab::tune::journal::TrialRecord;
use bpnet_lab::tune::{BLEND_MEMBERS, BlendRule, TuneOutcome, space};
use serde::Serialize;
use serde_json::{Value, json};
use std::path::Path;

/// The refit model.
pub struct Refit {
    /// The first trial's settings (member 0's), with its number of
    /// networks as `ensemble`.
    pub cfg: TrainConfig,
    /// Member 0's training history.
    pub history: History,
    /// Every network with its architecture: each blended trial's in turn
    /// ([`TuneOutcome::blended`] gives how many per trial).
    pub members: Vec<(ModelSpec, Sequential<f32>)>,
}

/// Refits `o`'s blend by `rule` (or, with [`BlendRule::Alone`] or one
/// re-scored trial, its best alone with `bpnet train`'s ensemble) on
/// `data`; a trial whose refit diverges is left out
/// ([`TuneOutcome::fit_blend`]).
pub fn fit(o: &mut TuneOutcome, base: &TrainConfig, data: &Prepared, rule: BlendRule, quiet: bool) -> Result<Refit> {
    let table = matches!(data.pipeline, Pipeline::Table { .. });
    let rows = data.train.len();
    let single = auto_ensemble(0, table, rows, true);
    let rule = if o.blend().len() < 2 { BlendRule::Alone } else { rule };
    let n = match rule {
        BlendRule::Alone => single,
        _ => BLEND_MEMBERS.min(single),
    };
    // Trial settings as `bpnet train` takes them, `ensemble` = its networks.
    let settings = |r: &TrialRecord, networks: usize| TrainConfig {
        ensemble: networks,
        ..r.params.apply(base, rows)
    };
    if !quiet {
        let shown = o.chosen(rule, n);
        let trials: Vec<String> = shown
            .iter()
            .map(|&(i, k)| format!("{} ({k} network{})", o.records[i].trial, if k > 1 { "s" } else { "" }))
            .collect();
        println!(
            "refitting trial{} {} on all {} rows ({rows} trained on, {} for early stopping)",
            if trials.len() > 1 { "s" } else { "" },
            trials.join(", "),
            rows + data.val.as_ref().map_or(0, |v| v.len()),
            data.val.as_ref().map_or(0, |v| v.len()),
        );
    }
    let fitted = o.fit_blend(
        rule,
        n,
        &mut |records| {
            let cfgs: Vec<TrainConfig> = records
                .iter()
                .flat_map(|&(r, k)| {
                    let cfg = settings(r, k);
                    (0..k).map(move |m| member_config(&cfg, m))
                })
                .collect();
            let mut results = train_each(&cfgs, data).into_iter();
            Ok(records
                .iter()
                .map(|&(_, k)| results.by_ref().take(k).collect::<Result<Vec<Trained>>>())
                .collect())
        },
        &mut |failed| {
            if !quiet {
                println!("the refit of trial {} diverged on all rows; left out", failed.trial);
            }
        },
    )?;
    let mut members = Vec::new();
    let mut first = None;
    for (i, trained) in fitted {
        if !quiet {
            let epochs: Vec<String> = trained.iter().map(|t| t.history.best_epoch.to_string()).collect();
            println!("trial {}: best epochs {}", o.records[i].trial, epochs.join(", "));
        }
        let k = trained.len();
        for t in trained {
            if first.is_none() {
                first = Some((settings(&o.records[i], k), t.history));
            }
            members.push((t.spec, t.trainer.model));
        }
    }
    let (cfg, history) = first.ok_or_else(|| Error::State("the refit trained no network".into()))?;
    Ok(Refit { cfg, history, members })
}

/// A trial's settings by name, as the JSON summary and the `tune` section give them.
pub fn params_json(r: &TrialRecord) -> serde_json::Map<String, Value> {
    space::NAMES
        .iter()
        .zip(r.params.values())
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

/// The model file's `tune` section: the trials the model holds, each with
/// its settings, scores and number of networks (members in the file's
/// order: each trial's in turn).
pub fn section(o: &TuneOutcome) -> Value {
    let trials: Vec<Value> = o
        .blended
        .iter()
        .map(|&(i, networks)| {
            let r = &o.records[i];
            json!({"trial": r.trial, "networks": networks, "search": r.score, "both": r.combined(o.cv),
                   "params": params_json(r)})
        })
        .collect();
    json!({"metric": o.metric, "trials": trials})
}

/// Writes the refit model as one file (format version 2 when the trials'
/// architectures differ).
pub fn save<M: Serialize + ?Sized>(out: &Path, model: &Refit, data: &Prepared, meta: &M) -> Result<()> {
    let pairs: Vec<(&ModelSpec, &Sequential<f32>)> = model.members.iter().map(|(s, m)| (s, m)).collect();
    let combine = combine_for(&data.train, &model.members[0].1);
    save_blend(out, &pairs, combine, meta)
}

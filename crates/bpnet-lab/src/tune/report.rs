//! The tuner's outputs besides the model: a leaderboard CSV (every trial,
//! best first) and a self-contained HTML report with the score of each
//! trial and the influence of each parameter (SVG drawn inline).

use super::journal::TrialRecord;
use super::space::{CATEGORICAL, NAMES, origin};
use super::{BlendRule, TuneOutcome};
use std::fmt::Write;

fn ranked(o: &TuneOutcome) -> Vec<&TrialRecord> {
    o.ranked().into_iter().map(|i| &o.records[i]).collect()
}

/// The leaderboard: `rank,trial,score,sd,folds,pruned,failed,seconds,`,
/// every parameter, `origin` (a portfolio point's name, or `tpe`), then
/// `rescored` and `both` (the mean on the second split into folds and over
/// both splits; empty for trials not re-scored), `in_model` (`true` for
/// the trials the refit model holds, [`TuneOutcome::blended`]),
/// `networks` (how many of the model's networks are the trial's; 0 when
/// none) and `floored` (folds whose score fell below
/// [`super::SCORE_FLOOR`] and counted as it). A failed trial has no score
/// or sd; its error is quoted as CSV quotes a field.
pub fn leaderboard_csv(o: &TuneOutcome) -> String {
    let mut s = format!(
        "rank,trial,{},sd,folds,pruned,failed,seconds,{},origin,rescored,both,in_model,networks,floored\n",
        o.metric,
        NAMES.join(",")
    );
    for (rank, r) in ranked(o).into_iter().enumerate() {
        let sd = bpnet::workflow::mean_sd(&r.folds).1;
        let failed = csv_field(r.failed.as_deref().unwrap_or(""));
        let (score, sd) = match r.failed {
            Some(_) => (String::new(), String::new()),
            None => (format!("{:.6}", r.score), format!("{sd:.6}")),
        };
        let networks: usize = o
            .blended
            .iter()
            .filter(|&&(i, _)| o.records[i].trial == r.trial)
            .map(|&(_, n)| n)
            .sum();
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{:.3},{},{},{},{},{},{},{}",
            rank + 1,
            r.trial,
            score,
            sd,
            r.folds.len(),
            r.pruned,
            failed,
            r.seconds,
            r.params.values().join(","),
            origin(r.trial),
            opt6(r.combined(o.cv).map(|_| bpnet::workflow::mean_sd(&r.confirm).0)),
            opt6(r.combined(o.cv)),
            networks > 0,
            networks,
            r.floored
        );
    }
    s
}

/// `field` as one CSV field (RFC 4180): quoted, its quotes doubled, when
/// it holds a comma, a quote or a line break.
fn csv_field(field: &str) -> String {
    match field.contains([',', '"', '\n', '\r']) {
        true => format!("\"{}\"", field.replace('"', "\"\"")),
        false => field.to_string(),
    }
}

fn opt6(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.6}"))
}

/// Share of the score variance of the complete trials that parameter `p`
/// explains: between-group variance over total, grouping by category (or
/// by quartile for numeric parameters). 0 when fewer than 4 trials, or
/// when they all scored the same (then the mean's rounding alone would make
/// a variance to share out).
pub fn influence(o: &TuneOutcome, p: usize) -> f64 {
    let full: Vec<&TrialRecord> = o.records.iter().filter(|r| !r.pruned && r.failed.is_none()).collect();
    if full.len() < 4 || full.iter().all(|r| r.score == full[0].score) {
        return 0.0;
    }
    let key = |r: &TrialRecord| -> usize {
        if CATEGORICAL[p] {
            r.params.values()[p].parse::<usize>().unwrap_or_else(|_| {
                // Named categories: group by the raw sampler cell.
                r.params.raw[p].max(0.0) as usize
            })
        } else {
            let mut v: Vec<f64> = full.iter().map(|x| x.params.raw[p]).collect();
            v.sort_by(f64::total_cmp);
            v.iter().take_while(|&&x| x < r.params.raw[p]).count() * 4 / v.len()
        }
    };
    let mean = full.iter().map(|r| r.score).sum::<f64>() / full.len() as f64;
    let total: f64 = full.iter().map(|r| (r.score - mean).powi(2)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
    for r in &full {
        groups.entry(key(r)).or_default().push(r.score);
    }
    let between: f64 = groups
        .values()
        .map(|g| g.len() as f64 * (g.iter().sum::<f64>() / g.len() as f64 - mean).powi(2))
        .sum();
    between / total
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Scatter of score by trial (pruned grey, failed red) with the best-so-far line.
fn score_svg(o: &TuneOutcome) -> String {
    let (w, h, m) = (640.0, 260.0, 40.0);
    let n = o.records.len().max(1) as f64;
    // The axis spans the trials that ran (a failed trial's floor would
    // squash them); failed ones sit on its bottom edge.
    let scores: Vec<f64> = o
        .records
        .iter()
        .filter(|r| r.failed.is_none())
        .map(|r| r.score)
        .collect();
    let lo = scores.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = match (lo.is_finite(), hi > lo) {
        (false, _) => (-0.5, 0.5),
        (true, true) => (lo, hi),
        (true, false) => (lo - 0.5, hi + 0.5),
    };
    let x = |t: f64| m + (w - 2.0 * m) * (t + 0.5) / n;
    let y = |s: f64| h - m - (h - 2.0 * m) * (s - lo) / (hi - lo);
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-size="11">"#);
    let _ = write!(
        svg,
        r##"<rect x="{m}" y="{m}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        w - 2.0 * m,
        h - 2.0 * m
    );
    let _ = write!(
        svg,
        r#"<text x="{m}" y="{}">{hi:.4}</text><text x="{m}" y="{}">{lo:.4}</text>"#,
        m - 5.0,
        h - m + 14.0
    );
    let _ = write!(svg, r#"<text x="{}" y="{}">trial</text>"#, w / 2.0, h - 8.0);
    let mut best = f64::NEG_INFINITY;
    let mut line = String::new();
    for (i, r) in o.records.iter().enumerate() {
        let color = match (r.failed.is_some(), r.pruned) {
            (true, _) => "#c33",
            (_, true) => "#bbb",
            _ => "#2a6",
        };
        let (at, title) = match &r.failed {
            Some(e) => (lo, format!("trial {}: failed: {}", r.trial, esc(e))),
            None => (r.score, format!("trial {}: {:.4}", r.trial, r.score)),
        };
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{title}</title></circle>"#,
            x(i as f64),
            y(at)
        );
        if !r.pruned && r.failed.is_none() {
            best = best.max(r.score);
        }
        if best.is_finite() {
            let _ = write!(line, "{:.1},{:.1} ", x(i as f64), y(best));
        }
    }
    let _ = write!(svg, r##"<polyline points="{line}" fill="none" stroke="#26a"/></svg>"##);
    svg
}

/// How the refit shared out its networks among the trials
/// [`TuneOutcome::blended`] holds, by `rule` (the one given to
/// [`TuneOutcome::fit_blend`]); None when it holds one trial.
pub fn sharing(o: &TuneOutcome, rule: BlendRule) -> Option<String> {
    if o.blended.len() < 2 {
        return None;
    }
    // Greedy selection ran when a held trial had out-of-fold predictions
    // to select on (else every trial got the same number).
    let selected = o.blended.iter().any(|(i, _)| o.held_out.iter().any(|(j, _)| j == i));
    let greedy = "shared out by greedy selection on the trials' predictions of the second split's held-out folds";
    let within = match o.timed {
        true => ", within the time the equal share's refit would take",
        false => "",
    };
    Some(match (rule, selected) {
        (BlendRule::Select, true) => format!("the networks were {greedy}{within}"),
        (BlendRule::Mixed, true) => format!("each trial got one network and the rest were {greedy}{within}"),
        _ => "every trial got the same number of networks".into(),
    })
}

/// The HTML report; `rule` is how the refit shared out its networks.
pub fn html(o: &TuneOutcome, title: &str, rule: BlendRule) -> String {
    let best = o.best();
    let mut s = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title>\
         <style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}td,th{{padding:2px 8px;text-align:right}}\
         .bar{{background:#26a;height:10px;display:inline-block}}</style></head><body><h1>{t}</h1>",
        t = esc(title)
    );
    let pruned = o.records.iter().filter(|r| r.pruned).count();
    let _ = write!(
        s,
        "<p>{} trials ({} pruned by the median rule, {} read back from the journal). Best: trial {} with \
         cross-validated {} {:.4} ± {:.4} over {} folds.</p>",
        o.records.len(),
        pruned,
        o.resumed,
        best.trial,
        o.metric,
        best.score,
        bpnet::workflow::mean_sd(&best.folds).1,
        best.folds.len()
    );
    let rescored = o.records.iter().filter(|r| r.combined(o.cv).is_some()).count();
    if let Some(both) = best.combined(o.cv) {
        let _ = write!(
            s,
            "<p>{rescored} trials (the best of the search and the portfolio's) were scored again on a second, \
             independent split into folds with other training seeds; the best is the highest mean over both splits: trial {} with {:.4} on the second split, \
             {:.4} over both.</p>",
            best.trial,
            bpnet::workflow::mean_sd(&best.confirm).0,
            both
        );
    }
    if let Some(how) = sharing(o, rule) {
        let trials: Vec<String> = o
            .blended
            .iter()
            .map(|&(i, n)| format!("{} ({n} network{})", o.records[i].trial, if n > 1 { "s" } else { "" }))
            .collect();
        let _ = write!(
            s,
            "<p>The model averages the predictions of networks of the re-scored trials {}, each refit on the \
             training rows less a validation split for early stopping; {how}.</p>",
            trials.join(", ")
        );
    }
    if let [(i, n)] = o.blended[..]
        && o.records[i].trial != best.trial
    {
        // Selection gave every network to another trial than the best: the
        // report said "Best: trial 1" of a model holding none of it.
        let _ = write!(
            s,
            "<p>The model holds {n} network{} of trial {} alone, refit on the training rows less a validation \
             split for early stopping: greedy selection on the trials' predictions of the second split's \
             held-out folds gave the best trial ({}) none.</p>",
            if n > 1 { "s" } else { "" },
            o.records[i].trial,
            best.trial
        );
    }
    let floored: Vec<String> = o
        .records
        .iter()
        .filter(|r| r.floored > 0)
        .map(|r| r.trial.to_string())
        .collect();
    if !floored.is_empty() {
        let _ = write!(
            s,
            "<p>A fold whose {} fell below {} counts as {} in a trial's score (one runaway fold would otherwise \
             decide its place): trials {} had such folds, so their scores are not the plain mean of the {}.</p>",
            o.metric,
            super::SCORE_FLOOR,
            super::SCORE_FLOOR,
            floored.join(", "),
            o.metric
        );
    }
    s += "<h2>Score by trial</h2><p>Green: every fold run; grey: pruned (mean of the folds run); red: failed (on the bottom edge). Line: best complete trial so far.</p>";
    s += &score_svg(o);
    s += "<h2>Parameter influence</h2><p>Share of the score variance of the complete trials explained by each parameter \
          (grouped by value, numeric ones by quartile); high values mean the parameter mattered in this search.</p><table>";
    let complete = o.records.iter().filter(|r| r.complete()).count();
    for (p, name) in NAMES.iter().enumerate() {
        let v = influence(o, p);
        // Fewer than 4 complete trials leave nothing to share out.
        let share = match complete >= 4 {
            true => format!("{v:.3}"),
            false => "n/a".to_string(),
        };
        let _ = write!(
            s,
            "<tr><th>{name}</th><td>{share}</td><td style=\"text-align:left\"><span class=\"bar\" style=\"width:{:.0}px\"></span></td><td>best: {}</td></tr>",
            v * 300.0,
            esc(&best.params.values()[p])
        );
    }
    s += "</table><h2>Leaderboard (top 20)</h2><table><tr><th>rank</th><th>trial</th><th>score</th><th>folds</th>";
    for n in NAMES {
        let _ = write!(s, "<th>{n}</th>");
    }
    s += "</tr>";
    for (rank, r) in ranked(o).into_iter().take(20).enumerate() {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td>",
            rank + 1,
            r.trial,
            match r.failed {
                Some(_) => "failed".to_string(),
                None => format!("{:.4}", r.score),
            },
            r.folds.len(),
            if r.pruned { " (pruned)" } else { "" }
        );
        for v in r.params.values() {
            let _ = write!(s, "<td>{}</td>", esc(&v));
        }
        s += "</tr>";
    }
    s += "</table></body></html>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::space::portfolio;
    use bpnet::Matrix;
    use bpnet::workflow::HeldOut;

    const DEPTH: usize = 0;
    const OPTIMIZER: usize = 4;
    const LR: usize = 5;

    /// A complete trial at `depth` (0-3), `optimizer` (0-3) and raw `lr`.
    fn trial(t: usize, depth: usize, optimizer: usize, lr: f64, score: f64) -> TrialRecord {
        let mut params = portfolio()[0].clone();
        params.raw[DEPTH] = depth as f64 + 0.5;
        params.raw[OPTIMIZER] = optimizer as f64 + 0.5;
        params.raw[LR] = lr;
        TrialRecord {
            trial: t,
            params,
            score,
            folds: vec![score; 2],
            pruned: false,
            seconds: 1.0,
            failed: None,
            floored: 0,
            confirm: vec![score; 2],
        }
    }

    fn outcome(records: Vec<TrialRecord>) -> TuneOutcome {
        TuneOutcome {
            records,
            metric: "accuracy",
            best: 0,
            cv: 2,
            resumed: 0,
            blended: Vec::new(),
            held_out: Vec::new(),
            timed: false,
            journal: None,
            data_sha256: String::new(),
        }
    }

    /// 16 complete trials, every depth in every lr quartile, the optimizer
    /// alternating by quartile; the score a function of the depth alone.
    fn by_depth() -> Vec<TrialRecord> {
        let mut records = Vec::new();
        for q in 0..4 {
            for depth in 0..4 {
                let t = records.len();
                let lr = -3.5 + 0.1 * (q * 4 + depth) as f64;
                records.push(trial(t, depth, q % 2, lr, 0.5 + 0.1 * depth as f64));
            }
        }
        records
    }

    #[test]
    fn influence_is_the_share_of_the_score_variance_a_parameter_explains() {
        let o = outcome(by_depth());
        let share = |o: &TuneOutcome, p: usize| influence(o, p);
        assert!((share(&o, DEPTH) - 1.0).abs() < 1e-12, "{}", share(&o, DEPTH));
        // The optimizer and the lr quartiles each hold every depth equally.
        assert!(share(&o, OPTIMIZER).abs() < 1e-12, "{}", share(&o, OPTIMIZER));
        assert!(share(&o, LR).abs() < 1e-12, "{}", share(&o, LR));
        // A score that follows the lr's quartile instead: its share is 1.
        let mut by_lr = by_depth();
        for (i, r) in by_lr.iter_mut().enumerate() {
            r.score = (i / 4) as f64;
        }
        assert!((share(&outcome(by_lr), LR) - 1.0).abs() < 1e-12);
        // Pruned and failed trials do not count: one far off at depth 1
        // would take the depth's share below 1 and give the optimizer one.
        let mut records = by_depth();
        let mut pruned = trial(16, 1, 0, -2.0, 9.0);
        pruned.pruned = true;
        let mut failed = trial(17, 1, 0, -2.0, -9.0);
        failed.failed = Some("diverged".into());
        records.extend([pruned, failed]);
        let o = outcome(records);
        assert!((share(&o, DEPTH) - 1.0).abs() < 1e-12);
        assert!(share(&o, OPTIMIZER).abs() < 1e-12);
        let mut counted = o.clone();
        counted.records[16].pruned = false;
        assert!(share(&counted, DEPTH) < 0.9, "{}", share(&counted, DEPTH));
        // Fewer than 4 complete trials, or one score for all (whose mean
        // can round off it, 0.7 here): 0.
        let few = outcome(by_depth().into_iter().take(3).collect());
        assert_eq!(share(&few, DEPTH), 0.0);
        let four = outcome(by_depth().into_iter().take(4).collect());
        assert!((share(&four, DEPTH) - 1.0).abs() < 1e-12);
        let mut flat = by_depth();
        flat.iter_mut().for_each(|r| r.score = 0.7);
        assert_eq!(share(&outcome(flat), DEPTH), 0.0);
    }

    #[test]
    fn the_report_says_how_the_networks_were_shared_out() {
        let mut o = outcome(by_depth());
        o.blended = vec![(0, 3), (1, 1)];
        let held = HeldOut {
            predictions: Matrix::from_vec(2, 1, vec![0.2, 0.8]).unwrap(),
            truth: Matrix::from_vec(2, 1, vec![0.0, 1.0]).unwrap(),
            classes: None,
        };
        o.held_out = vec![(0, held.clone()), (1, held)];
        let greedy = "the networks were shared out by greedy selection";
        let same = "every trial got the same number of networks";
        let one_each = "each trial got one network and the rest were shared out by greedy selection";
        let said = |o: &TuneOutcome, rule| sharing(o, rule).unwrap_or_default();
        assert!(
            said(&o, BlendRule::Select).starts_with(greedy),
            "{}",
            said(&o, BlendRule::Select)
        );
        assert!(said(&o, BlendRule::Mixed).starts_with(one_each));
        assert_eq!(said(&o, BlendRule::Equal), same);
        for (rule, sentence) in [(BlendRule::Select, greedy), (BlendRule::Equal, same)] {
            let page = html(&o, "t", rule);
            assert!(page.contains(sentence), "{rule:?}: {page}");
            let other = if sentence == greedy { same } else { greedy };
            assert!(!page.contains(other), "{rule:?}: {page}");
        }
        // With a time limit the selection kept to the equal share's time.
        o.timed = true;
        assert!(said(&o, BlendRule::Select).ends_with("within the time the equal share's refit would take"));
        assert_eq!(said(&o, BlendRule::Equal), same);
        // No out-of-fold predictions to select on: the same number each.
        o.held_out.clear();
        assert_eq!(said(&o, BlendRule::Select), same);
        // One trial held: nothing to say, unless it is not the best one.
        let best = o.records.iter().position(|r| r.trial == o.best().trial).unwrap();
        o.blended = vec![(best, 5)];
        assert_eq!(sharing(&o, BlendRule::Select), None);
        let page = html(&o, "t", BlendRule::Select);
        assert!(!page.contains("The model averages") && !page.contains("The model holds"));
        let other = (best + 1) % o.records.len();
        o.blended = vec![(other, 8)];
        let page = html(&o, "t", BlendRule::Select);
        let said = format!("The model holds 8 networks of trial {} alone", o.records[other].trial);
        assert!(page.contains(&said), "{page}");
    }
}

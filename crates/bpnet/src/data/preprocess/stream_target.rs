//! The target's statistics gathered chunk by chunk for [`super::StreamFit`]:
//! the task's detection (distinct values, integers, text), the class names
//! in order of first appearance, or each regression target's moments.

use std::collections::HashSet;

use super::columns::{MAX_AUTO_CLASSES, Scaling, Task, numeric_cell};
use super::stream::{Moments, Place};
use super::targets::{TargetMap, merged_integers, merged_integers_error};
use crate::data::csv::{is_number, quoted_list};
use crate::data::table::{Column, Table};
use crate::error::{Error, Result};

/// Most distinct class names kept while streaming (beyond: an error for
/// classification; regression needs none).
pub const MAX_STREAM_CLASSES: usize = 1 << 16;

/// Statistics of the target column(s) over the training rows seen so far.
pub(super) struct TargetStats {
    /// Target columns of the file.
    pub(super) cols: Vec<usize>,
    names: Vec<String>,
    /// The task when given (else detected at the end).
    task: Option<Task>,
    /// First missing cell of the first target (classification's error).
    missing: Option<Error>,
    /// Present cells of the first target.
    present: u64,
    /// A present cell of the first target that is not a number.
    text: bool,
    /// Up to `MAX_AUTO_CLASSES + 1` distinct numeric values (by `==`).
    values: Vec<f64>,
    integers: bool,
    /// Distinct label texts in order of first appearance, and where each
    /// first appears (`Table::place`), for errors that name a label's row.
    labels: Vec<String>,
    label_places: Vec<String>,
    seen: HashSet<String>,
    seen_bits: HashSet<u64>,
    too_many: bool,
    /// Per target column: moments and the first bad cell (regression).
    moments: Vec<(Moments, Option<Error>)>,
}

impl TargetStats {
    pub(super) fn new(cols: Vec<usize>, names: Vec<String>, task: Option<Task>) -> Self {
        let k = cols.len();
        TargetStats {
            cols,
            names,
            task,
            missing: None,
            present: 0,
            text: false,
            values: Vec::new(),
            integers: true,
            labels: Vec::new(),
            label_places: Vec::new(),
            seen: HashSet::new(),
            seen_bits: HashSet::new(),
            too_many: false,
            moments: (0..k).map(|_| (Moments::default(), None)).collect(),
        }
    }

    /// Adds the target cells of `rows` of a chunk.
    pub(super) fn add(&mut self, table: &Table, rows: &[usize]) {
        if self.task != Some(Task::Regress) && self.cols.len() == 1 {
            self.add_labels(table, rows);
        }
        if self.task != Some(Task::Classify) {
            for (j, &c) in self.cols.iter().enumerate() {
                let (m, err) = &mut self.moments[j];
                for &r in rows {
                    match numeric_cell(table, r, c) {
                        Ok(Some(v)) => m.push(v),
                        Ok(None) if err.is_none() => *err = Some(table.cell_error(r, c, "missing target value")),
                        Err(e) if err.is_none() => *err = Some(super::targets::several_targets(e, self.cols.len())),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Detection counts and the distinct labels of the single target.
    fn add_labels(&mut self, table: &Table, rows: &[usize]) {
        let c = self.cols[0];
        for &r in rows {
            if table.is_missing(r, c) {
                if self.missing.is_none() {
                    self.missing = Some(table.cell_error(r, c, "missing target value"));
                }
                continue;
            }
            self.present += 1;
            let value = match &table.cols[c] {
                Column::Num { shift, values } => {
                    let v = shift + f64::from(values[r]);
                    if self.seen_bits.insert(v.to_bits()) {
                        self.label(v.to_string(), table.place(r));
                    }
                    Some(v)
                }
                Column::Text { dict, codes } => {
                    let s = &dict[codes[r] as usize];
                    if !self.seen.contains(s.as_str()) {
                        self.label(s.clone(), table.place(r));
                    }
                    if is_number(s) { s.parse::<f64>().ok() } else { None }
                }
            };
            match value {
                Some(v) => self.value(v),
                None => self.text = true,
            }
        }
    }

    fn label(&mut self, s: String, place: String) {
        if self.labels.len() >= MAX_STREAM_CLASSES {
            self.too_many = true;
        } else if self.seen.insert(s.clone()) {
            self.labels.push(s);
            self.label_places.push(place);
        }
    }

    fn value(&mut self, v: f64) {
        self.integers &= v.fract() == 0.0;
        if self.values.len() <= MAX_AUTO_CLASSES && !self.values.contains(&v) {
            self.values.push(v);
        }
    }

    /// The task (given, or detected as [`super::detect_task`] does, with
    /// its note).
    pub(super) fn task(&self) -> (Task, Option<String>) {
        if let Some(t) = self.task {
            return (t, None);
        }
        if self.cols.len() != 1 {
            let note = format!(
                "task: regress ({} target columns {})",
                self.cols.len(),
                quoted_list(&self.names)
            );
            return (Task::Regress, Some(note));
        }
        let name = &self.names[0];
        if self.text {
            let n = self.labels.len();
            let note = format!("task: classify (target '{name}' has {n} distinct string values)");
            return (Task::Classify, Some(note));
        }
        let n = self.values.len();
        if self.integers && n <= MAX_AUTO_CLASSES && 2 * n as u64 <= self.present {
            let why = format!("target '{name}' has {n} distinct integer values; use --task regress to override");
            return (Task::Classify, Some(format!("task: classify ({why})")));
        }
        let kind = if self.integers { "integer" } else { "numeric" };
        let count = match n > MAX_AUTO_CLASSES {
            true => format!("more than {MAX_AUTO_CLASSES}"),
            false => n.to_string(),
        };
        let note = format!("task: regress (target '{name}' has {count} distinct {kind} values)");
        (Task::Regress, Some(note))
    }

    /// The fitted target encoding, as `fit_target` gives it on the same rows.
    pub(super) fn finish(self, task: Task, first: &Place) -> Result<TargetMap> {
        match (task, self.cols.len()) {
            (Task::Classify, 1) => {
                if let Some(e) = self.missing {
                    return Err(e);
                }
                if self.too_many {
                    return Err(first.error(
                        &self.names[0],
                        format!("more than {MAX_STREAM_CLASSES} classes; streaming keeps at most that many"),
                    ));
                }
                let mut labels = self.labels;
                let numeric = labels.iter().all(|l| is_number(l));
                if let Some((a, b)) = merged_integers(&labels).filter(|_| numeric) {
                    // Where `b` first appears (the labels are still in that order).
                    let k = labels.iter().position(|l| l == b).unwrap_or(0);
                    let place = first.at(self.label_places[k].clone());
                    return Err(place.error(&self.names[0], merged_integers_error(a, b)));
                }
                if numeric {
                    let value = |s: &String| s.parse::<f64>().unwrap_or(f64::NAN);
                    labels.sort_by(|a, b| value(a).total_cmp(&value(b)));
                    labels.dedup_by(|a, b| value(a) == value(b));
                } else {
                    labels.sort();
                    labels.dedup();
                }
                if labels.len() < 2 {
                    let only = labels.first().map_or("", String::as_str);
                    let what =
                        format!("only one class '{only}' in the training rows; classification needs two or more");
                    return Err(first.error(&self.names[0], what));
                }
                Ok(TargetMap::Classes { names: labels, numeric })
            }
            (Task::Classify, _) => Err(Error::config(
                "task",
                "classification takes one target column; several need regression",
            )),
            (Task::Regress, _) => {
                let (mut mean, mut std) = (Vec::new(), Vec::new());
                for (m, err) in self.moments {
                    if let Some(e) = err {
                        return Err(e);
                    }
                    let (c, s) = m.fit(Scaling::ZScore);
                    mean.push(c);
                    std.push(s);
                }
                Ok(TargetMap::Values { mean, std })
            }
        }
    }
}

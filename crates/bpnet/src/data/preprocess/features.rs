//! Feature columns: how each input column becomes features (numeric scaling
//! or one-hot), fitted on the training rows and applied to any table.

use serde::{Deserialize, Serialize};

use super::PreprocessSpec;
use super::columns::numeric_cell;
use crate::data::csv::{RawTable, is_missing, is_number, quoted_list};
use crate::error::Result;

/// How one input column becomes features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// One feature `(x - center) / scale`; a missing cell takes `fill`.
    Numeric {
        /// Subtracted first.
        center: f64,
        /// Divided by next; never zero (1 for a constant column).
        scale: f64,
        /// The training mean or median when imputing.
        fill: Option<f64>,
    },
    /// One-hot over `categories` (sorted); a missing cell takes `fill`.
    Categorical {
        /// The categories seen in the training rows, sorted.
        categories: Vec<String>,
        /// The most frequent training category when imputing.
        fill: Option<String>,
    },
}

/// One input column of the training table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// Column name in the training file.
    pub name: String,
    /// Column index in the training file.
    pub index: usize,
    /// Its encoding.
    pub kind: FeatureKind,
}

impl Feature {
    /// Number of features it becomes: 1, or its number of categories.
    pub fn width(&self) -> usize {
        match &self.kind {
            FeatureKind::Numeric { .. } => 1,
            FeatureKind::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// Appends the features of cell `(r, c)` to `out`.
pub(crate) fn encode(table: &RawTable, r: usize, c: usize, kind: &FeatureKind, out: &mut Vec<f32>) -> Result<()> {
    match kind {
        FeatureKind::Numeric { center, scale, fill } => {
            let v = match (numeric_cell(table, r, c)?, fill) {
                (Some(v), _) => v,
                (None, Some(f)) => *f,
                (None, None) => return Err(table.cell_error(r, c, "missing value (fit without --impute)")),
            };
            out.push(((v - center) / scale) as f32);
        }
        FeatureKind::Categorical { categories, fill } => {
            let cell = &table.rows[r][c];
            let cell = match (is_missing(cell), fill) {
                (false, _) => cell,
                (true, Some(f)) => f,
                (true, None) => return Err(table.cell_error(r, c, "missing value (fit without --impute)")),
            };
            let k = categories.binary_search(cell).map_err(|_| {
                let known = quoted_list(categories);
                table.cell_error(
                    r,
                    c,
                    format!("category '{cell}' was not seen in training (known: {known})"),
                )
            })?;
            let start = out.len();
            out.resize(start + categories.len(), 0.0);
            out[start + k] = 1.0;
        }
    }
    Ok(())
}

/// Fits the encoding of feature column `c` on the training rows.
pub(crate) fn fit_feature(
    table: &RawTable,
    c: usize,
    rows: &[usize],
    spec: &PreprocessSpec,
    notes: &mut Vec<String>,
) -> Result<Feature> {
    let name = table.columns[c].clone();
    let present: Vec<&str> = rows
        .iter()
        .map(|&r| table.rows[r][c].as_str())
        .filter(|s| !is_missing(s))
        .collect();
    let missing = rows.len() - present.len();
    if present.is_empty() {
        return Err(table.cell_error(rows[0], c, "every training value is missing"));
    }
    if missing > 0 && spec.impute.is_none() {
        let r = rows
            .iter()
            .copied()
            .find(|&r| is_missing(&table.rows[r][c]))
            .unwrap_or(rows[0]);
        return Err(table.cell_error(r, c, "missing value (use --impute mean or --impute median)"));
    }
    let numbers = present.iter().filter(|s| is_number(s)).count();
    let kind = if 2 * numbers >= present.len() {
        let mut values = Vec::with_capacity(present.len());
        for &r in rows {
            values.extend(numeric_cell(table, r, c)?);
        }
        let (center, scale) = spec.scaling.fit(&values);
        let fill = spec.impute.map(|i| i.fill(&mut values));
        if let (Some(f), true) = (fill, missing > 0) {
            notes.push(format!("impute: {missing} missing cells of '{name}' filled with {f}"));
        }
        FeatureKind::Numeric { center, scale, fill }
    } else {
        let mut categories: Vec<String> = present.iter().map(|s| s.to_string()).collect();
        categories.sort();
        let fill = spec.impute.map(|_| most_frequent(&categories));
        categories.dedup();
        notes.push(format!(
            "column '{name}': categorical, one-hot over {} categories",
            categories.len()
        ));
        if categories.len() > 50 {
            notes.push(format!(
                "column '{name}' has many categories; if it is an identifier, ignore it"
            ));
        }
        FeatureKind::Categorical { categories, fill }
    };
    Ok(Feature { name, index: c, kind })
}

/// The most frequent value of a sorted list (the first one on ties).
fn most_frequent(sorted: &[String]) -> String {
    let mut best = (0, "");
    let mut i = 0;
    while i < sorted.len() {
        let run = sorted[i..].iter().take_while(|s| **s == sorted[i]).count();
        if run > best.0 {
            best = (run, sorted[i].as_str());
        }
        i += run;
    }
    best.1.to_string()
}

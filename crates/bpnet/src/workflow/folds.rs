//! Seeded k-fold partitions of row indices, stratified by class when strata
//! are given.

use crate::{Error, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;
use std::collections::BTreeMap;

/// Splits rows `0..n` into `k` disjoint folds (each sorted ascending) whose
/// union is every row; fold sizes differ by at most one.
///
/// With `strata` (one string per row, e.g. the raw class cells), the rows of
/// each stratum are shuffled and dealt to the folds in turn, continuing where
/// the previous stratum stopped, so every fold holds each class in about its
/// overall proportion. Without, the rows are shuffled and dealt. The same
/// `seed` gives the same folds.
///
/// Errors: `k < 2`, `k > n`, or `strata` of the wrong length.
pub fn kfold<S: AsRef<str>>(n: usize, strata: Option<&[S]>, k: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    if k < 2 {
        return Err(Error::config("cv", format!("{k} folds: need at least 2")));
    }
    if k > n {
        return Err(Error::config("cv", format!("{k} folds but only {n} rows")));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let order: Vec<usize> = match strata {
        Some(s) if s.len() != n => return Err(Error::shape("cv strata", n, s.len())),
        Some(s) => {
            let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for (i, key) in s.iter().enumerate() {
                groups.entry(key.as_ref()).or_default().push(i);
            }
            let mut order = Vec::with_capacity(n);
            for rows in groups.values_mut() {
                rows.shuffle(&mut rng);
                order.extend_from_slice(rows);
            }
            order
        }
        None => {
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut rng);
            rows
        }
    };
    let mut folds = vec![Vec::with_capacity(n / k + 1); k];
    for (i, row) in order.into_iter().enumerate() {
        folds[i % k].push(row);
    }
    folds.iter_mut().for_each(|f| f.sort_unstable());
    Ok(folds)
}

/// Mean and sample standard deviation (n - 1; 0 for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = match n {
        1 => 0.0,
        _ => values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64,
    };
    (mean, var.sqrt())
}

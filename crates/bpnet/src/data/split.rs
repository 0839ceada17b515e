//! Seeded train/held-out splits of row indices, optionally stratified by class.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::error::{Error, Result};

/// Splits rows `0..n` into `(kept, held_out)`, each sorted ascending, with
/// about `fraction * n` rows held out.
///
/// With `strata` (one string per row, e.g. the raw target cells), each
/// stratum is split on its own: it holds out `round(fraction * size)` rows,
/// at least one and at most `size - 1` when it has two rows or more, none when
/// it has one. Without, the rows are shuffled and `round(fraction * n)` held
/// out. The same `seed` gives the same split.
///
/// Errors: `fraction` outside `(0, 1)`, a `strata` of the wrong length, or a
/// split that would leave either side empty.
pub fn split(n: usize, strata: Option<&[String]>, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    split_by(n, strata, fraction, seed)
}

/// [`split`] with strata of any string type (e.g. `&str` borrowed from a
/// [`crate::data::Table`]'s dictionary).
pub fn split_by<S: AsRef<str>>(
    n: usize,
    strata: Option<&[S]>,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if let Some(s) = strata.filter(|s| s.len() != n) {
        return Err(Error::shape("split strata", n, s.len()));
    }
    split_with(n, strata.map(|s| move |i: usize| s[i].as_ref()), fraction, seed)
}

/// [`split`] with the stratum of row `i` given by `key(i)` (strata are
/// taken in the keys' order, as [`split`] takes them in string order), so
/// no per-row string need be made.
pub fn split_with<'k, K: Ord + 'k>(
    n: usize,
    key: Option<impl Fn(usize) -> K>,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::config(
            "split fraction",
            format!("{fraction} is not strictly between 0 and 1"),
        ));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let (mut kept, mut held) = (Vec::new(), Vec::<usize>::new());
    match key {
        Some(key) => {
            let mut groups: BTreeMap<K, Vec<usize>> = BTreeMap::new();
            for i in 0..n {
                groups.entry(key(i)).or_default().push(i);
            }
            for rows in groups.values_mut() {
                let size = rows.len();
                let take = if size < 2 {
                    0
                } else {
                    ((fraction * size as f64).round() as usize).clamp(1, size - 1)
                };
                rows.shuffle(&mut rng);
                held.extend_from_slice(&rows[..take]);
                kept.extend_from_slice(&rows[take..]);
            }
        }
        None => {
            let mut rows: Vec<usize> = (0..n).collect();
            rows.shuffle(&mut rng);
            let take = ((fraction * n as f64).round() as usize).min(n);
            held.extend_from_slice(&rows[..take]);
            kept.extend_from_slice(&rows[take..]);
        }
    }
    if kept.is_empty() || held.is_empty() {
        return Err(Error::config(
            "split fraction",
            format!(
                "holding out {fraction} of {n} rows leaves {} kept and {} held out; both need at least one",
                kept.len(),
                held.len()
            ),
        ));
    }
    // Every row is on one side: both sides in ascending order by one pass
    // over a mask (rather than sorting each), made at their final sizes.
    drop(kept);
    let mut is_held = vec![false; n];
    held.iter().for_each(|&i| is_held[i] = true);
    let (mut kept, mut sorted) = (Vec::with_capacity(n - held.len()), Vec::with_capacity(held.len()));
    for (i, &h) in is_held.iter().enumerate() {
        if h { sorted.push(i) } else { kept.push(i) }
    }
    Ok((kept, sorted))
}

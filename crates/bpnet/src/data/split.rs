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
/// stratum is split on its own, its share of the `round(fraction * n)` rows
/// held out in proportion to its size ([`quotas`]: largest remainder, never
/// every row of a stratum, so a one-row stratum stays kept). Without, the rows are shuffled and `round(fraction * n)` held
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
    check_fraction(fraction)?;
    let groups = key.map(|key| {
        let mut groups: BTreeMap<K, Vec<usize>> = BTreeMap::new();
        for i in 0..n {
            groups.entry(key(i)).or_default().push(i);
        }
        groups.into_values().collect()
    });
    split_groups(n, groups, fraction, seed)
}

/// [`split_with`] with the stratum of row `i` given by its rank `ranks[i]`
/// (strata in rank order): grouped by counting, without a map.
pub(crate) fn split_ranked(ranks: &[u32], fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    check_fraction(fraction)?;
    // Rows as u32 where they fit: half the memory to fill and shuffle (the
    // shuffle's draws depend only on each group's length).
    match u32::try_from(ranks.len()) {
        Ok(_) => split_groups(ranks.len(), Some(ranked_groups::<u32>(ranks)), fraction, seed),
        Err(_) => split_groups(ranks.len(), Some(ranked_groups::<usize>(ranks)), fraction, seed),
    }
}

/// The rows of each rank that some row has, ascending, in rank order.
fn ranked_groups<I: Row>(ranks: &[u32]) -> Vec<Vec<I>> {
    let strata = ranks.iter().max().map_or(0, |&m| m as usize + 1);
    let mut count = vec![0usize; strata];
    ranks.iter().for_each(|&r| count[r as usize] += 1);
    let mut groups: Vec<Vec<I>> = count
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| Vec::with_capacity(c))
        .collect();
    // Rank to group, skipping ranks no row has.
    let mut group = vec![0usize; strata];
    let mut g = 0;
    for (r, &c) in count.iter().enumerate() {
        group[r] = g;
        g += usize::from(c > 0);
    }
    for (i, &r) in ranks.iter().enumerate() {
        groups[group[r as usize]].push(I::of(i));
    }
    groups
}

/// The first `take` of rows `0..n` shuffled by `rng`.
fn shuffled_head<I: Row>(n: usize, take: usize, rng: &mut Xoshiro256PlusPlus) -> Vec<usize> {
    let mut rows: Vec<I> = (0..n).map(I::of).collect();
    rows.shuffle(rng);
    rows[..take].iter().map(|r| r.at()).collect()
}

/// A row index as stored in a group: `usize`, or `u32` where every row fits.
trait Row: Copy {
    /// Row `i` (which fits).
    fn of(i: usize) -> Self;
    fn at(self) -> usize;
}

impl Row for usize {
    fn of(i: usize) -> Self {
        i
    }
    fn at(self) -> usize {
        self
    }
}

impl Row for u32 {
    fn of(i: usize) -> Self {
        i as u32
    }
    fn at(self) -> usize {
        self as usize
    }
}

fn check_fraction(fraction: f64) -> Result<()> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::config(
            "split fraction",
            format!("{fraction} is not strictly between 0 and 1"),
        ));
    }
    Ok(())
}

/// Rows each stratum of `sizes` holds out: `round(fraction * n)` in all
/// (at least 1 and at most `n - 1` when `n >= 2`), shared out in proportion
/// to the sizes by largest remainder (each stratum the floor of its quota
/// `fraction * size`, then one more each to the largest remainders, the
/// earlier stratum first on a tie), so each between the floor and the
/// ceiling of its quota and never every row of a stratum; fewer in all
/// when those bounds leave no room (one-row strata stay kept). So the
/// fraction held out is the one asked whatever the number of classes
/// (holding out at least one row of every class put a third of the rows of
/// 20 classes of 3 rows into a 10% validation split), and no stratum gives
/// more than its share.
fn quotas(sizes: &[usize], fraction: f64) -> Vec<usize> {
    let n: usize = sizes.iter().sum();
    let total = match n {
        0 | 1 => 0,
        n => ((fraction * n as f64).round() as usize).clamp(1, n - 1),
    };
    let cap = |s: usize| s.saturating_sub(1);
    let mut take: Vec<usize> = sizes
        .iter()
        .map(|&s| ((fraction * s as f64) as usize).min(cap(s)))
        .collect();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    let remainder = |i: usize| fraction * sizes[i] as f64 - (fraction * sizes[i] as f64).floor();
    order.sort_by(|&a, &b| remainder(b).total_cmp(&remainder(a)).then(a.cmp(&b)));
    // One more row each, largest remainder first, to strata with room: a
    // stratum holds out at most the ceiling of its quota.
    let mut left = total.saturating_sub(take.iter().sum());
    for &i in &order {
        if left == 0 {
            break;
        }
        if take[i] < cap(sizes[i]) && remainder(i) > 0.0 {
            take[i] += 1;
            left -= 1;
        }
    }
    take
}

/// Splits rows `0..n`: each of `groups` (rows ascending) on its own, in
/// order, or without groups all rows at once.
fn split_groups<I: Row>(
    n: usize,
    groups: Option<Vec<Vec<I>>>,
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    // The held-out rows in the order drawn, and how many rows are kept.
    let (mut kept, mut held) = (0usize, Vec::<usize>::new());
    let singles = groups.as_ref().is_some_and(|g| g.iter().all(|rows| rows.len() <= 1));
    match groups {
        Some(mut groups) => {
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            for (rows, take) in groups.iter_mut().zip(quotas(&sizes, fraction)) {
                let size = rows.len();
                rows.shuffle(&mut rng);
                held.extend(rows[..take].iter().map(|r| r.at()));
                kept += size - take;
            }
        }
        None => {
            let take = ((fraction * n as f64).round() as usize).min(n);
            held = match u32::try_from(n) {
                Ok(_) => shuffled_head::<u32>(n, take, &mut rng),
                Err(_) => shuffled_head::<usize>(n, take, &mut rng),
            };
            kept += n - take;
        }
    }
    if kept == 0 || held.is_empty() {
        let why = match (held.is_empty(), singles) {
            (true, true) if n >= 2 => " (every class has one row, which stays on the kept side)".to_string(),
            (true, false) if n >= 1 => format!(" ({fraction} of {n} rows rounds to none)"),
            _ => String::new(),
        };
        return Err(Error::config(
            "split fraction",
            format!(
                "holding out {fraction} of {n} rows leaves {kept} kept and {} held out{why}; both sides need at least one row",
                held.len()
            ),
        ));
    }
    // Every row is on one side: both sides in ascending order by one pass
    // over a mask (rather than sorting each), made at their final sizes.
    let mut is_held = vec![false; n];
    held.iter().for_each(|&i| is_held[i] = true);
    let (mut kept, mut sorted) = (Vec::with_capacity(n - held.len()), Vec::with_capacity(held.len()));
    for (i, &h) in is_held.iter().enumerate() {
        if h { sorted.push(i) } else { kept.push(i) }
    }
    Ok((kept, sorted))
}

/// A split's error named by the option that asked for it (`--val-split`),
/// where it said "split fraction".
pub fn for_option(e: Error, option: &str) -> Error {
    match e {
        Error::Config { field, reason } if field == "split fraction" => Error::Config {
            field: option.to_string(),
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {

    /// A split that holds out nothing says why: the fraction of the rows
    /// rounds to none, or (stratified) every class has one row; named by
    /// the option that asked for it. Unstratified splits said "every class
    /// has one row" too.
    #[test]
    fn an_empty_split_says_why_and_names_its_option() {
        let e = split(2, None, 0.1, 0).unwrap_err();
        let text = for_option(e, "--val-split").to_string();
        assert!(
            text.starts_with("invalid --val-split: ") && text.contains("0.1 of 2 rows rounds to none"),
            "{text}"
        );
        let e = split(2, Some(&["a".to_string(), "b".to_string()]), 0.1, 0).unwrap_err();
        assert!(e.to_string().contains("every class has one row"), "{e}");
    }
    use super::*;

    /// The held-out rows total `round(fraction * n)` whatever the number of
    /// strata, shared by largest remainder, never a whole stratum.
    #[test]
    fn quotas_hold_out_the_fraction_asked_in_proportion() {
        assert_eq!(quotas(&[50, 50, 50], 0.1), vec![5, 5, 5]);
        // 20 classes of 3 rows at 10%: 6 rows, not one of each (20).
        let twenty = quotas(&[3; 20], 0.1);
        assert_eq!(
            (twenty.iter().sum::<usize>(), twenty.iter().filter(|&&t| t == 1).count()),
            (6, 6)
        );
        // Quotas 3.5 and 1.5: floors 3 and 1, the last row to the first on the tie.
        assert_eq!(quotas(&[7, 3], 0.5), vec![4, 1]);
        // 0.9 of 4 rows is 4 (at most 3), but each class of 2 keeps one.
        assert_eq!(quotas(&[2, 2], 0.9), vec![1, 1]);
        // Classes of one row stay kept: nothing can be held out.
        assert_eq!(quotas(&[1, 1], 0.5), vec![0, 0]);
        assert_eq!(quotas(&[1, 4], 0.2), vec![0, 1]);
        assert_eq!(quotas(&[], 0.2), Vec::<usize>::new());
        // Small fractions still hold out one row.
        assert_eq!(quotas(&[10, 10], 0.01), vec![1, 0]);
        // Many one-row classes beside a large one: the large one gives its
        // share (10 of 100), not the one-row classes' (1,000 rows' 10%).
        let mut sizes = vec![1; 1000];
        sizes.push(100);
        assert_eq!(quotas(&sizes, 0.1).iter().sum::<usize>(), 10);
        let mut sizes = vec![1; 50];
        sizes.extend([20, 20]);
        assert_eq!(quotas(&sizes, 0.1)[50..], [2, 2]);
        // Every stratum within the floor and ceiling of its quota, never whole.
        for sizes in [vec![3, 7, 11], vec![2; 9], vec![1, 2, 3, 4, 5, 97], vec![55, 45]] {
            for fraction in [0.05, 0.1, 0.25, 0.5, 0.9] {
                for (&s, &t) in sizes.iter().zip(&quotas(&sizes, fraction)) {
                    let q = fraction * s as f64;
                    assert!(
                        t as f64 >= q.floor().min((s.max(1) - 1) as f64) && t as f64 <= q.ceil(),
                        "{sizes:?} {fraction}"
                    );
                    assert!(t < s.max(1), "{sizes:?} {fraction}: a whole stratum");
                }
            }
        }
        let err = split_ranked(&[0, 1], 0.5, 0).unwrap_err().to_string();
        assert!(err.contains("every class has one row"), "{err}");
    }

    /// Grouping by counting splits exactly as grouping in a map: for one,
    /// 33 and prime row counts, ranks with gaps, one-row strata, and
    /// several fractions and seeds.
    #[test]
    fn ranked_split_equals_the_keyed_split() {
        for n in [2usize, 3, 33, 97, 1009] {
            for strata in [1u32, 2, 5, 13] {
                // Every third rank unused; rank 0 on a single row.
                let ranks: Vec<u32> = (0..n)
                    .map(|i| {
                        if i == n / 2 {
                            0
                        } else {
                            1 + 3 * ((i * 7 + i / 3) as u32 % strata)
                        }
                    })
                    .collect();
                for fraction in [0.1, 0.5, 0.9] {
                    for seed in [0u64, 42] {
                        let keyed = split_with(n, Some(|i: usize| ranks[i]), fraction, seed);
                        let ranked = split_ranked(&ranks, fraction, seed);
                        match (keyed, ranked) {
                            (Ok(a), Ok(b)) => assert_eq!(a, b, "n {n} strata {strata} fraction {fraction}"),
                            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                            (a, b) => panic!("n {n}: {a:?} against {b:?}"),
                        }
                    }
                }
            }
        }
        assert!(split_ranked(&[0, 1], 1.5, 0).is_err());
    }
}

//! Looking up columns by name in time linear in the number of columns: one
//! hash map built per table ([`ColumnIndex`]), one hash-set insertion per
//! header name for the duplicate check, never a search of the name list per
//! column.
//!
//! Every name comparison, insertion or look-up is counted per thread
//! ([`name_probes`]), so a test can check that loading a table 4 times as
//! wide costs 4 times as many (`tests/wide_columns.rs`), without timing.

use std::cell::Cell;
use std::collections::HashMap;

thread_local! {
    static PROBES: Cell<u64> = const { Cell::new(0) };
}

/// Adds `n` name operations to this thread's count.
pub(crate) fn probe(n: usize) {
    PROBES.with(|c| c.set(c.get().saturating_add(n as u64)));
}

/// Name comparisons, insertions and look-ups made by this thread so far
/// while matching columns: a deterministic measure of the work, for tests.
#[doc(hidden)]
pub fn name_probes() -> u64 {
    PROBES.with(Cell::get)
}

/// Column names mapped to their indices, built once per table so that each
/// look-up takes constant time (see [`crate::data::RawTable::column_indices`]).
#[derive(Debug, Clone, Default)]
pub struct ColumnIndex<'a> {
    map: HashMap<&'a str, usize>,
}

impl<'a> ColumnIndex<'a> {
    /// Indexes `names`; a name that repeats maps to its first index.
    pub fn new(names: &'a [String]) -> Self {
        probe(names.len());
        let mut map = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            map.entry(n.as_str()).or_insert(i);
        }
        ColumnIndex { map }
    }

    /// The index of the column called `name`.
    pub fn get(&self, name: &str) -> Option<usize> {
        probe(1);
        self.map.get(name).copied()
    }
}

/// Whether `a` and `b` are the same names in the same order (one
/// comparison per name).
pub(crate) fn same_names(a: &[String], b: &[String]) -> bool {
    probe(a.len().min(b.len()));
    a == b
}

/// The first name of `names` that repeats an earlier one, as `(first index,
/// repeated index)`; one hash-set insertion per name.
pub(crate) fn first_duplicate(names: &[String]) -> Option<(usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(names.len());
    for (j, n) in names.iter().enumerate() {
        probe(1);
        if let Some(&k) = seen.get(n.as_str()) {
            return Some((k, j));
        }
        seen.insert(n, j);
    }
    None
}

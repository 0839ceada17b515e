//! The distinct cells of one column over some rows, each named once: a
//! code per row and the text of each code, as [`Table::cell_text`] gives it.
//!
//! Class labels and strata are compared by their text; a numeric column
//! formats a number per row for that (`to_string` on a million rows is
//! most of a stratified split). Here a text column's codes are its
//! dictionary's, and a numeric column's values are coded by their bits
//! (`shift + value` as `f64`, whose text is a function of its bits; every
//! NaN is the one missing code, text ""), so each distinct text is made
//! once.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Column, Table};

/// Distinct values looked up in a list up to this many, then in a map.
const LIST: usize = 32;

/// The cells of one column over some rows: `codes[i]` is row `i`'s, and
/// `texts[code]` its text.
pub(crate) struct CellGroups<'a> {
    /// One code per row.
    pub codes: Vec<u32>,
    /// The text of each code; distinct codes have distinct texts.
    pub texts: Vec<Cow<'a, str>>,
}

impl<'a> CellGroups<'a> {
    /// The groups of column `c` over `rows` (each below `table.len()`).
    pub(crate) fn of(table: &'a Table, c: usize, rows: &[usize]) -> CellGroups<'a> {
        match &table.cols[c] {
            Column::Text { dict, codes } => CellGroups {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                texts: dict.iter().map(|s| Cow::Borrowed(s.as_str())).collect(),
            },
            Column::Num { shift, values } => numbers(*shift, values, rows),
        }
    }

    /// Each code's rank among the texts in `str` order (equal texts, equal
    /// rank): keys that order the groups as their texts order.
    pub(crate) fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<usize> = (0..self.texts.len()).collect();
        order.sort_by(|&a, &b| self.texts[a].cmp(&self.texts[b]));
        let mut rank = vec![0u32; self.texts.len()];
        let mut r = 0u32;
        for (i, w) in order.iter().enumerate() {
            if i > 0 && self.texts[order[i - 1]] != self.texts[*w] {
                r += 1;
            }
            rank[*w] = r;
        }
        rank
    }
}

/// The groups of a numeric column: codes in order of first appearance.
fn numbers<'a>(shift: f64, values: &[f32], rows: &[usize]) -> CellGroups<'a> {
    // The bits of each distinct `shift + value` (NaN as one key) by code.
    let mut seen: Vec<u64> = Vec::new();
    let mut map: HashMap<u64, u32> = HashMap::new();
    let mut codes = Vec::with_capacity(rows.len());
    let mut last: Option<(u32, u32)> = None;
    for &r in rows {
        let v = values[r];
        let code = match last {
            Some((bits, code)) if bits == v.to_bits() => code,
            _ => {
                let key = if v.is_nan() {
                    u64::MAX
                } else {
                    (shift + f64::from(v)).to_bits()
                };
                let code = match seen.len() <= LIST {
                    true => seen.iter().position(|&k| k == key).map(|p| p as u32),
                    false => map.get(&key).copied(),
                };
                let code = code.unwrap_or_else(|| {
                    seen.push(key);
                    let code = (seen.len() - 1) as u32;
                    if seen.len() > LIST {
                        if map.is_empty() {
                            map.extend(seen.iter().enumerate().map(|(i, &k)| (k, i as u32)));
                        } else {
                            map.insert(key, code);
                        }
                    }
                    code
                });
                last = Some((v.to_bits(), code));
                code
            }
        };
        codes.push(code);
    }
    let texts = seen
        .iter()
        .map(|&k| match k {
            u64::MAX => Cow::Borrowed(""),
            k => Cow::Owned(f64::from_bits(k).to_string()),
        })
        .collect();
    CellGroups { codes, texts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::{CsvOptions, parse_csv};

    fn table(cells: &[String]) -> Table {
        let csv = format!("x,t\n{}", cells.iter().map(|c| format!("{c},a\n")).collect::<String>());
        let raw = parse_csv(csv.as_bytes(), "t.csv".as_ref(), &CsvOptions::default()).unwrap();
        Table::from_raw(&raw)
    }

    /// Codes and texts agree with `cell_text`, row by row, and ranks order
    /// as the texts do: for few and many distinct values, missing cells,
    /// signed zeros, text columns.
    #[test]
    fn groups_name_each_cell_as_its_text() {
        let few: Vec<String> = (0..97)
            .map(|r| ["3", "1", "-0", "0", "", "2.5", "10"][r % 7].to_string())
            .collect();
        let many: Vec<String> = (0..1009).map(|r| format!("{}", (r * 37) % 101)).collect();
        let text: Vec<String> = (0..33)
            .map(|r| ["b", "a", "NA", "c10", "c9"][r % 5].to_string())
            .collect();
        let one = vec!["7".to_string()];
        for cells in [few, many, text, one] {
            let t = table(&cells);
            let rows: Vec<usize> = (0..t.len()).rev().filter(|r| r % 3 != 1 || t.len() == 1).collect();
            let g = CellGroups::of(&t, 0, &rows);
            let rank = g.ranks();
            for (i, &r) in rows.iter().enumerate() {
                assert_eq!(g.texts[g.codes[i] as usize], t.cell_text(r, 0), "row {r}");
                for (j, &s) in rows.iter().enumerate().step_by(7) {
                    let want = t.cell_text(r, 0).cmp(&t.cell_text(s, 0));
                    assert_eq!(rank[g.codes[i] as usize].cmp(&rank[g.codes[j] as usize]), want);
                }
            }
        }
    }
}

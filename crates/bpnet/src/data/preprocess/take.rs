//! Feature matrices and targets built from a table while the table is
//! released ([`Preprocessor::take_sets`]): the table's rows and the matrices'
//! rows are never both alive in full, so the peak is about one copy of the
//! data instead of two.

use super::{Preprocessor, Targets, check_rows};
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::tensor::Matrix;

/// At most this many blocks of rows, each built and then released: the
/// peak exceeds one copy of the data by about one block (1/32 of it).
const BLOCKS: usize = 32;

/// Rows in a block at the least (fewer, larger blocks on small tables).
const MIN_BLOCK: usize = 4096;

/// Rows released at a time from a table of `rows` rows.
fn block_rows(rows: usize) -> usize {
    rows.div_ceil(BLOCKS).max(MIN_BLOCK)
}

impl Preprocessor {
    /// The feature matrix `[part.len(), n_features()]` and the targets of
    /// each of `parts` (disjoint sets of `table`'s rows, each ascending),
    /// built from the end of the table backwards, block by block, each
    /// block's rows released from `table` once encoded: afterwards `table`
    /// has no rows. Rows in no part are released unread.
    ///
    /// Results and errors are those of [`Preprocessor::transform_features`]
    /// and [`Preprocessor::transform_targets`] on each part in turn (the
    /// first error in part order, features before targets, the first in
    /// row order within each). A part that is not ascending is encoded
    /// whole, as those functions do, before anything is released.
    pub fn take_sets(&self, table: &mut Table, parts: &[&[usize]]) -> Result<Vec<(Matrix<f32>, Targets)>> {
        let block = block_rows(table.len());
        self.take_sets_by(table, parts, block)
    }

    /// The feature matrix of `table`'s `rows` (ascending), built while the
    /// table is released as [`Preprocessor::take_sets`] does; the result
    /// and errors of [`Preprocessor::transform_features`].
    pub fn take_features(&self, table: &mut Table, rows: &[usize]) -> Result<Matrix<f32>> {
        let cols = self.checked_columns(table, &[rows])?;
        let block = block_rows(table.len());
        let mut x = self.take_encoded(table, &cols, &[rows], block);
        x.pop().unwrap_or_else(|| Err(table.error("no rows")))
    }

    /// [`Preprocessor::take_sets`] releasing `block` rows at a time.
    fn take_sets_by(&self, table: &mut Table, parts: &[&[usize]], block: usize) -> Result<Vec<(Matrix<f32>, Targets)>> {
        let cols = self.checked_columns(table, parts)?;
        // Targets first: they need only the target columns, read whole.
        let targets: Vec<Result<Targets>> = parts.iter().map(|rows| self.targets_table(table, rows)).collect();
        let features = self.take_encoded(table, &cols, parts, block);
        // The first error in part order, features before targets.
        features.into_iter().zip(targets).map(|(x, y)| Ok((x?, y?))).collect()
    }

    /// The column of `table` each feature reads, after checking that every
    /// row of `parts` is in `table`.
    fn checked_columns(&self, table: &Table, parts: &[&[usize]]) -> Result<Vec<usize>> {
        let cols = self.feature_columns(table)?;
        for rows in parts {
            check_rows(table, rows)?;
        }
        Ok(cols)
    }

    /// The feature matrix of each of `parts`, or its first error, built
    /// block by block from the table's end; afterwards `table` has no rows.
    fn take_encoded(
        &self,
        table: &mut Table,
        cols: &[usize],
        parts: &[&[usize]],
        block: usize,
    ) -> Vec<Result<Matrix<f32>>> {
        let width = self.n_features();
        let mut data: Vec<Vec<f32>> = parts.iter().map(|rows| vec![0.0f32; rows.len() * width]).collect();
        let mut errors: Vec<Option<Error>> = parts.iter().map(|_| None).collect();
        if parts.iter().all(|rows| rows.is_sorted()) {
            self.encode_backwards(table, cols, parts, block, &mut data, &mut errors);
        } else {
            for ((rows, out), err) in parts.iter().zip(&mut data).zip(&mut errors) {
                *err = self.encode_rows(table, cols, rows, out).err();
            }
        }
        table.release_rows_from(0);
        let matrices = parts.iter().zip(data).zip(errors);
        matrices
            .map(|((rows, out), err)| match err {
                Some(e) => Err(e),
                None => Matrix::from_vec(rows.len(), width, out),
            })
            .collect()
    }

    /// Encodes ascending `parts` block by block from the table's end,
    /// releasing each block's rows afterwards. A part's error is the one of
    /// its earliest failing block (blocks run backwards, so the last found),
    /// the first in row order within it.
    fn encode_backwards(
        &self,
        table: &mut Table,
        cols: &[usize],
        parts: &[&[usize]],
        block: usize,
        data: &mut [Vec<f32>],
        errors: &mut [Option<Error>],
    ) {
        let width = self.n_features();
        let block = block.max(1);
        let mut hi = table.len();
        while hi > 0 {
            let lo = hi.saturating_sub(block);
            for ((rows, out), err) in parts.iter().zip(data.iter_mut()).zip(errors.iter_mut()) {
                let (a, b) = (rows.partition_point(|&r| r < lo), rows.partition_point(|&r| r < hi));
                if let Err(e) = self.encode_rows(table, cols, &rows[a..b], &mut out[a * width..b * width]) {
                    *err = Some(e);
                }
            }
            table.release_rows_from(lo);
            hi = lo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::csv::{CsvOptions, parse_csv};
    use crate::data::preprocess::{Impute, PreprocessSpec};

    /// A table of `n` rows: a numeric column with missing cells, a
    /// categorical one, an integer one and a class label; `bad` rows get
    /// text in the numeric column (an error unless fitted on as a category).
    fn table(n: usize, bad: &[usize], extra_class: Option<usize>) -> Table {
        let mut csv = String::from("x,colour,count,label\n");
        for r in 0..n {
            let x = if bad.contains(&r) {
                "oops".to_string()
            } else if r % 11 == 3 {
                String::new()
            } else {
                format!("{:.3}", (r as f64 * 0.37).sin() * 10.0)
            };
            let colour = ["red", "green", "blue"][r % 3];
            let label = match extra_class == Some(r) {
                true => "unseen",
                false => ["a", "b"][r % 2],
            };
            csv += &format!("{x},{colour},{},{label}\n", r % 13);
        }
        let raw = parse_csv(csv.as_bytes(), "t.csv".as_ref(), &CsvOptions::default()).unwrap();
        Table::from_raw(&raw)
    }

    fn spec() -> PreprocessSpec {
        PreprocessSpec {
            impute: Some(Impute::Mean),
            ..PreprocessSpec::default()
        }
    }

    /// Regression on the integer column.
    fn regress() -> PreprocessSpec {
        PreprocessSpec {
            targets: vec!["count".parse().unwrap()],
            ..spec()
        }
    }

    /// Rows `0..n` dealt into three ascending parts, every fifth row in none.
    fn parts(n: usize) -> [Vec<usize>; 3] {
        let mut p: [Vec<usize>; 3] = Default::default();
        for r in (0..n).filter(|r| r % 5 != 4) {
            p[(r * 31 / 7) % 3].push(r);
        }
        p
    }

    fn per_part(pre: &Preprocessor, t: &Table, parts: &[&[usize]]) -> Result<Vec<(Matrix<f32>, Targets)>> {
        parts
            .iter()
            .map(|rows| Ok((pre.transform_features(t, rows)?, pre.transform_targets(t, rows)?)))
            .collect()
    }

    #[test]
    fn sets_equal_the_per_part_transforms_for_any_block() {
        for n in [1, 2, 5, 33, 97, 1009] {
            let t = table(n, &[], None);
            let p = parts(n);
            let refs: Vec<&[usize]> = p.iter().map(Vec::as_slice).collect();
            let all: Vec<usize> = (0..n).collect();
            let specs = if n > 1 {
                vec![spec(), regress()]
            } else {
                vec![regress()]
            };
            for spec in specs {
                let (pre, _) = Preprocessor::fit(&t, &all, &spec).unwrap();
                let want = per_part(&pre, &t, &refs).unwrap();
                for block in [1, 7, 33, 4096] {
                    let mut owned = t.clone();
                    let got = pre.take_sets_by(&mut owned, &refs, block).unwrap();
                    assert_eq!(got, want, "{n} rows, blocks of {block}, {:?}", spec.targets);
                    assert_eq!(owned.len(), 0, "the table keeps rows");
                    assert!(owned.cols.iter().all(|c| match c {
                        crate::data::table::Column::Num { values, .. } => values.is_empty(),
                        crate::data::table::Column::Text { codes, .. } => codes.is_empty(),
                    }));
                }
            }
        }
    }

    #[test]
    fn parts_out_of_order_are_encoded_whole_with_the_same_result() {
        let t = table(97, &[], None);
        let p = parts(97);
        let mut reversed = p[1].clone();
        reversed.reverse();
        let refs: Vec<&[usize]> = vec![&p[0], &reversed, &p[2]];
        let (pre, _) = Preprocessor::fit(&t, &p[0], &spec()).unwrap();
        let want = per_part(&pre, &t, &refs).unwrap();
        assert_eq!(pre.take_sets_by(&mut t.clone(), &refs, 7).unwrap(), want);
    }

    #[test]
    fn the_first_error_in_part_and_row_order_is_the_one_reported() {
        let n = 200;
        let p = parts(n);
        // Bad cells in part 1 at rows in different blocks, and an unseen
        // class in part 1 and a bad cell in part 2: the features error of
        // part 1's earliest bad row comes first.
        let in_part = |k: usize, i: usize| p[k][i];
        let bad = [in_part(1, 50), in_part(1, 3), in_part(2, 5)];
        let t = table(n, &bad, Some(in_part(1, 1)));
        let refs: Vec<&[usize]> = p.iter().map(Vec::as_slice).collect();
        let (pre, _) = Preprocessor::fit(&t, &p[0], &spec()).unwrap();
        let want = per_part(&pre, &t, &refs).unwrap_err().to_string();
        assert!(want.contains(&format!("line {}", in_part(1, 3) + 2)), "{want}");
        for block in [1, 7, 64, 1000] {
            let got = pre.take_sets_by(&mut t.clone(), &refs, block).unwrap_err().to_string();
            assert_eq!(got, want, "blocks of {block}");
        }
        // Without the bad cells of part 1, its unseen class is the error.
        let t = table(n, &[in_part(2, 5)], Some(in_part(1, 1)));
        let want = per_part(&pre, &t, &refs).unwrap_err().to_string();
        assert!(want.contains("unseen"), "{want}");
        assert_eq!(
            pre.take_sets_by(&mut t.clone(), &refs, 7).unwrap_err().to_string(),
            want
        );
    }

    #[test]
    fn features_alone_equal_transform_features_without_a_target_column() {
        let t = table(97, &[], None);
        let all: Vec<usize> = (0..97).collect();
        let (pre, _) = Preprocessor::fit(&t, &all, &spec()).unwrap();
        let mut csv = String::from("count,colour,x\n");
        for r in 0..41 {
            csv += &format!("{},{},{}\n", r % 5, ["blue", "red"][r % 2], r as f32 * 0.5);
        }
        let raw = parse_csv(csv.as_bytes(), "p.csv".as_ref(), &CsvOptions::default()).unwrap();
        let unlabelled = Table::from_raw(&raw);
        let rows: Vec<usize> = (0..41).collect();
        let want = pre.transform_features(&unlabelled, &rows).unwrap();
        let mut owned = unlabelled.clone();
        assert_eq!(pre.take_features(&mut owned, &rows).unwrap(), want);
        assert_eq!(owned.len(), 0);
        for block in [1, 6] {
            let mut owned = unlabelled.clone();
            let cols = pre.checked_columns(&owned, &[&rows]).unwrap();
            let got = pre.take_encoded(&mut owned, &cols, &[&rows], block);
            assert_eq!(got.into_iter().next().unwrap().unwrap(), want);
        }
    }
}

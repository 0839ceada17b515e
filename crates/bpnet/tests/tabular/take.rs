//! `Preprocessor::take_sets` (the matrices built while the table is
//! released) gives what encoding each set whole gives, on 1 to 4 threads,
//! with blocks wide enough that each block's rows are encoded in parallel.

use super::*;
use bpnet::data::table::Table;

/// `rows` rows of 40 numbers (some missing), a 3-category column and a
/// 3-class label: 45 features, so a block's rows of one set exceed the
/// work below which encoding stays on one thread.
fn wide(rows: usize) -> Table {
    let mut csv: String = (0..40).map(|j| format!("x{j},")).collect();
    csv += "colour,label\n";
    for r in 0..rows {
        for j in 0..40 {
            match (r * 7 + j) % 53 {
                0 => csv += ",",
                k => csv += &format!("{:.3},", (k as f64 * 0.61 + r as f64 * 0.013).sin() * 5.0),
            }
        }
        csv += &format!("{},c{}\n", ["red", "green", "blue"][r % 3], (r * 5 / 3) % 3);
    }
    Table::from_raw(&parse_csv(csv.as_bytes(), "wide.csv".as_ref(), &CsvOptions::default()).unwrap())
}

#[test]
fn take_sets_equals_encoding_each_set_whole_on_1_to_4_threads() {
    // 12,007 rows: 3 blocks of at most 4,096 rows, the last one partial.
    let n = 12_007;
    let table = wide(n);
    let mut parts: [Vec<usize>; 3] = Default::default();
    for r in (0..n).filter(|r| r % 17 != 5) {
        parts[[0, 0, 0, 1, 2][r % 5]].push(r);
    }
    let refs: Vec<&[usize]> = parts.iter().map(Vec::as_slice).collect();
    let spec = PreprocessSpec {
        impute: Some(Impute::Mean),
        ..PreprocessSpec::default()
    };
    let (pre, _) = Preprocessor::fit(&table, refs[0], &spec).unwrap();
    assert_eq!(pre.n_features(), 43);
    bpnet::set_threads(1);
    let want: Vec<(Matrix<f32>, Targets)> = refs
        .iter()
        .map(|rows| {
            (
                pre.transform_features(&table, rows).unwrap(),
                pre.transform_targets(&table, rows).unwrap(),
            )
        })
        .collect();
    for threads in 1..=4 {
        bpnet::set_threads(threads);
        let mut owned = table.clone();
        let got = pre.take_sets(&mut owned, &refs).unwrap();
        assert!(got == want, "{threads} threads: the sets differ");
        assert!(owned.is_empty());
    }
    bpnet::set_threads(1);
}

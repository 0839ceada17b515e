//! `Dataset::partition` and `Matrix::retain_rows` give exactly what
//! `Dataset::subset` gives, for adversarial sizes and splits.

use bpnet::data::Dataset;
use bpnet::data::split::split;
use bpnet::tensor::Matrix;

fn numbered(rows: usize, cols: usize) -> Matrix<f32> {
    let data = (0..rows * cols).map(|v| v as f32).collect();
    Matrix::from_vec(rows, cols, data).unwrap()
}

#[test]
fn partition_equals_two_subsets() {
    for rows in [2usize, 3, 7, 33, 61, 100] {
        for cols in [1usize, 3, 17] {
            for fraction in [0.01, 0.1, 0.5, 0.9] {
                let labels: Vec<usize> = (0..rows).map(|i| (i * 7) % 3).collect();
                let data = Dataset::new(numbered(rows, cols), labels, 3).unwrap();
                let strata: Vec<String> = data.labels().unwrap().iter().map(|l| l.to_string()).collect();
                let Ok((keep, out)) = split(rows, Some(&strata), fraction, 5) else {
                    continue; // too few rows to hold any out: split says so
                };
                let (want_keep, want_out) = (data.subset(&keep), data.subset(&out));
                let (kept, held) = data.partition(&keep, &out);
                assert_eq!(
                    kept.features.as_slice(),
                    want_keep.features.as_slice(),
                    "{rows}x{cols} {fraction}"
                );
                assert_eq!(kept.labels(), want_keep.labels());
                assert_eq!(held.features.as_slice(), want_out.features.as_slice());
                assert_eq!(held.labels(), want_out.labels());
                assert_eq!(kept.features.shape(), [keep.len(), cols]);
            }
        }
    }
}

#[test]
fn partition_of_regression_targets() {
    let x = numbered(13, 4);
    let y = numbered(13, 2);
    let data = Dataset::regression(x, y).unwrap();
    let (keep, out) = split(13, None, 0.3, 1).unwrap();
    let (want_keep, want_out) = (data.subset(&keep), data.subset(&out));
    let (kept, held) = data.partition(&keep, &out);
    assert_eq!(kept.features.as_slice(), want_keep.features.as_slice());
    assert_eq!(held.features.as_slice(), want_out.features.as_slice());
    assert_eq!(format!("{:?}", kept.targets), format!("{:?}", want_keep.targets));
    assert_eq!(format!("{:?}", held.targets), format!("{:?}", want_out.targets));
}

#[test]
fn retain_rows_edge_cases() {
    let mut m = numbered(5, 2);
    m.retain_rows(&[0, 1, 2, 3, 4]);
    assert_eq!(m.as_slice(), numbered(5, 2).as_slice());
    m.retain_rows(&[4]);
    assert_eq!(m.as_slice(), &[8.0, 9.0]);
    m.retain_rows(&[]);
    assert_eq!(m.shape(), [0, 2]);
}

#[test]
#[should_panic(expected = "indices must increase")]
fn retain_rows_rejects_unordered_indices() {
    numbered(5, 2).retain_rows(&[3, 1]);
}

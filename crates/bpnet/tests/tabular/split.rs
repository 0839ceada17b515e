//! The seeded, stratified split and the bundled iris, wine and diabetes files.

use super::*;

// ---- split -------------------------------------------------------------------

fn strata(counts: &[(&str, usize)]) -> Vec<String> {
    counts
        .iter()
        .flat_map(|(k, n)| std::iter::repeat_n(k.to_string(), *n))
        .collect()
}

#[test]
fn stratified_split_keeps_class_proportions() {
    let s = strata(&[("a", 60), ("b", 30), ("c", 10), ("d", 2), ("e", 1)]);
    let (kept, held) = split(s.len(), Some(&s), 0.2, 7).unwrap();
    let count = |rows: &[usize], k: &str| rows.iter().filter(|&&r| s[r] == k).count();
    let held_counts: Vec<usize> = ["a", "b", "c", "d", "e"].iter().map(|k| count(&held, k)).collect();
    // round(0.2 n), at least one for a class of two, none for a singleton.
    assert_eq!(held_counts, [12, 6, 2, 1, 0]);
    assert_eq!(kept.len() + held.len(), s.len());
    let mut both: Vec<usize> = kept.iter().chain(&held).copied().collect();
    both.sort();
    assert_eq!(both, (0..s.len()).collect::<Vec<_>>());
    assert!(kept.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn split_is_deterministic_in_the_seed() {
    let s = strata(&[("a", 50), ("b", 50)]);
    let a = split(100, Some(&s), 0.3, 1).unwrap();
    assert_eq!(a, split(100, Some(&s), 0.3, 1).unwrap());
    assert_ne!(a, split(100, Some(&s), 0.3, 2).unwrap());
    let (kept, held) = split(10, None, 0.3, 5).unwrap();
    assert_eq!((kept.len(), held.len()), (7, 3));
    assert_eq!(split(10, None, 0.3, 5).unwrap().1, held);
}

#[test]
fn split_rejects_bad_fractions() {
    for f in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
        assert_err(split(10, None, f, 0), &["between 0 and 1"]);
    }
    assert_err(split(3, None, 0.1, 0), &["0 held out"]);
    assert_err(split(1, None, 0.5, 0), &["at least one"]);
    let s = strata(&[("a", 1), ("b", 1)]);
    assert_err(split(2, Some(&s), 0.5, 0), &["0 held out"]);
    assert_err(split(3, Some(&s), 0.5, 0), &["split strata"]);
}

// ---- bundled datasets --------------------------------------------------------

fn dataset(name: &str) -> RawTable {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data")).join(name);
    read_csv(&path, &CsvOptions::default()).unwrap()
}

#[test]
fn iris_and_wine_are_three_class_problems() {
    let iris = dataset("iris.csv");
    assert_eq!((iris.len(), iris.n_cols()), (150, 5));
    let species = iris.column_cells(4, &all(&iris));
    let (train, test) = split(iris.len(), Some(&species), 0.2, 42).unwrap();
    assert_eq!((train.len(), test.len()), (120, 30));
    let (p, notes) = Preprocessor::fit(&iris, &train, &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["setosa", "versicolor", "virginica"]);
    assert!(
        notes.iter().any(|n| n.contains("3 distinct string values")),
        "{notes:?}"
    );
    let x: Matrix<f32> = p.transform_features(&iris, &train).unwrap();
    assert_eq!(x.shape(), [120, 4]);
    let mean0 = (0..120).map(|r| x.get(r, 0) as f64).sum::<f64>() / 120.0;
    assert!(mean0.abs() < 1e-5, "training features are centered: {mean0}");

    let wine = dataset("wine.csv");
    assert_eq!((wine.len(), wine.n_cols()), (178, 14));
    let (p, _) = Preprocessor::fit(&wine, &all(&wine), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.class_names().unwrap(), ["class_0", "class_1", "class_2"]);
    assert_eq!(p.n_features(), 13);
}

#[test]
fn diabetes_is_detected_as_regression() {
    let d = dataset("diabetes.csv");
    assert_eq!((d.len(), d.n_cols()), (442, 11));
    let (p, notes) = Preprocessor::fit(&d, &all(&d), &PreprocessSpec::default()).unwrap();
    assert_eq!(p.task(), Task::Regress);
    assert!(
        notes.iter().any(|n| n.contains("task: regress (target 'progression'")),
        "{notes:?}"
    );
    let Targets::Values(v) = p.transform_targets(&d, &[0]).unwrap() else {
        panic!("values expected")
    };
    assert!((p.decode_targets(&v).get(0, 0) - 151.0).abs() < 1e-3);
}

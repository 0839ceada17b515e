//! Wide tables (gene expression: tens of thousands of columns) cost work
//! linear in the number of columns on the whole path CSV -> preprocessing ->
//! model -> model file -> another file's columns matched by name. Measured
//! without timing: the column-name operations counted by the library
//! ([`bpnet::data::names::name_probes`], per thread) and the model file's
//! size, each at `n` and `4n` columns. A name search per column (the old
//! `locate` and duplicate-header check) makes the count grow 16-fold.
//! Times for 20,000 to 200,000 columns are in docs/PERFORMANCE.md
//! (`bench/wide_csv.sh`).

use bpnet::data::names::name_probes;
use bpnet::data::preprocess::Targets;
use bpnet::data::{ColumnRef, CsvOptions, PreprocessSpec, Preprocessor, parse_csv};
use bpnet::io::{load_model, save_model};
use bpnet::loss::{Loss, Target};
use bpnet::{Activation, BnPlacement, Mode, ModelSpec, Optimizer, OptimizerConfig, Sequential, Trainer};
use std::path::Path;

const ROWS: usize = 6;

/// A CSV with `n` numeric columns `g0..`, a text column and a class label;
/// with `reversed`, the columns come in the opposite order.
fn wide_csv(n: usize, header: bool, reversed: bool) -> Vec<u8> {
    let mut names: Vec<String> = (0..n).map(|j| format!("g{j}")).collect();
    names.extend(["tissue".to_string(), "label".to_string()]);
    let mut rows: Vec<Vec<String>> = (0..ROWS)
        .map(|r| {
            let mut cells: Vec<String> = (0..n).map(|j| format!("{}", (r * 7 + j * 3) % 11)).collect();
            cells.push(["liver", "lung", "skin"][r % 3].to_string());
            cells.push(["a", "b"][r % 2].to_string());
            cells
        })
        .collect();
    if reversed {
        names.reverse();
        rows.iter_mut().for_each(|r| r.reverse());
    }
    let mut text = String::new();
    if header {
        text += &names.join(",");
        text.push('\n');
    }
    for r in rows {
        text += &r.join(",");
        text.push('\n');
    }
    text.into_bytes()
}

/// Name operations and model file size for a table of `n` feature columns.
fn pipeline(n: usize, dir: &Path) -> (u64, u64) {
    let before = name_probes();
    let opts = CsvOptions::default();
    let train = parse_csv(&wide_csv(n, true, false), Path::new("train.csv"), &opts).unwrap();
    // Targets and ignored columns by name: every 7th gene is left out.
    let spec = PreprocessSpec {
        targets: vec![ColumnRef::Name("label".into())],
        ignore: (0..n).step_by(7).map(|j| ColumnRef::Name(format!("g{j}"))).collect(),
        ..PreprocessSpec::default()
    };
    let rows: Vec<usize> = (0..ROWS).collect();
    let (pre, _) = Preprocessor::fit(&train, &rows, &spec).unwrap();
    let x = pre.transform_features(&train, &rows).unwrap();
    let Targets::Labels(y) = pre.transform_targets(&train, &rows).unwrap() else {
        panic!("classification expected")
    };
    // Another file with the columns in reverse order: matched by name.
    let other = parse_csv(&wide_csv(n, true, true), Path::new("other.csv"), &opts).unwrap();
    assert_eq!(pre.transform_features(&other, &rows).unwrap(), x);
    // Without a header and without the target: matched by position.
    let mut bare = parse_csv(&wide_csv(n, false, false), Path::new("bare.csv"), &opts).unwrap();
    bare.columns.pop();
    bare.rows.iter_mut().for_each(|r| {
        r.pop();
    });
    let bare_pre = Preprocessor::fit(&train, &rows, &PreprocessSpec::default()).unwrap().0;
    assert_eq!(bare_pre.transform_features(&bare, &rows).unwrap().rows(), ROWS);
    let probes = name_probes() - before;

    let model_spec = ModelSpec {
        dims: vec![pre.n_features(), 4, pre.n_outputs()],
        activation: Activation::Relu,
        batch_norm: BnPlacement::BeforeActivation,
        ..ModelSpec::paper_mnist(true, 0.1)
    };
    let model = Sequential::<f32>::from_spec(&model_spec, 1).unwrap();
    let mut trainer = Trainer::new(
        model,
        Optimizer::new(OptimizerConfig::adam(1e-3)).unwrap(),
        Loss::CrossEntropy,
    );
    trainer.step(&x, Target::Labels(&y)).unwrap();
    let path = dir.join(format!("wide{n}.safetensors"));
    let mut sections = serde_json::Map::new();
    sections.insert("preprocessing".into(), serde_json::to_value(&pre).unwrap());
    save_model(&path, &model_spec, &trainer.model, &sections).unwrap();
    let mut file = load_model(&path).unwrap();
    let back: Preprocessor = serde_json::from_value(file.metadata["preprocessing"].clone()).unwrap();
    assert_eq!(back, pre);
    assert_eq!(file.model.forward(&x, Mode::Eval).unwrap().rows(), ROWS);
    (probes, std::fs::metadata(&path).unwrap().len())
}

#[test]
fn wide_tables_cost_work_linear_in_columns() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2000;
    let (probes_1, size_1) = pipeline(n, dir.path());
    let (probes_4, size_4) = pipeline(4 * n, dir.path());
    println!("{n} columns: {probes_1} name operations, {size_1} bytes; 4x: {probes_4}, {size_4} bytes");
    // A constant number of name operations per column...
    assert!(probes_1 <= 16 * n as u64, "{probes_1} name operations for {n} columns");
    // ... at any width: 4 times the columns, 4 times the work (16 when
    // quadratic), give or take the fixed look-ups.
    assert!(
        probes_4 <= 4 * probes_1 + 64,
        "name operations grew from {probes_1} to {probes_4} for 4x the columns"
    );
    assert!(
        size_4 * 10 <= size_1 * 41,
        "model file grew from {size_1} to {size_4} bytes for 4x the columns"
    );
}

#[test]
fn errors_about_a_wide_tables_columns_stay_short() {
    let table = parse_csv(
        &wide_csv(5000, true, false),
        Path::new("wide.csv"),
        &CsvOptions::default(),
    )
    .unwrap();
    let err = ColumnRef::Name("gene".into()).resolve(&table).unwrap_err().to_string();
    assert!(err.contains("no column 'gene'") && err.contains("'g0', 'g1'"), "{err}");
    assert!(err.contains("... and 4982 more"), "{err}");
    assert!(err.len() < 400, "{} characters: {err}", err.len());
}

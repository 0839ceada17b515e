//! PyTorch import: state dicts saved by `tools/torch_import_fixture.py`
//! (`bash tools/gen_torch_import.sh`, PyTorch 2.15) in
//! `tests/fixtures/torch_import/` become bpnet models whose eval output equals
//! PyTorch's, that continue training exactly like PyTorch for one SGD step
//! (with PyTorch's BN momentum, and with `momentum=None` and another eps:
//! `--bn-momentum none --bn-eps`), whose loss goes down when trained
//! further, and which `bpnet predict` and `bpnet eval --target` run on the
//! feature matrix as it is. No Python at test time.
//!
//! Bound: `max |bpnet - torch| <= 1e-5` on outputs of magnitude up to about
//! 5 (both sides compute in f32 in different orders); printed by each test.

mod common;
use bpnet::io::{TorchImport, TorchImportOptions, TorchModule, import_torch, load_model, parse_modules};
use bpnet::loss::{Loss, Target};
use bpnet::{Activation, BatchNormConfig, Layer, Matrix, Mode, Momentum, Optimizer, OptimizerConfig, Trainer};
use common::run_in as bpnet;
use serde_json::Value;
use std::path::{Path, PathBuf};

const BOUND: f64 = 1e-5;
const CASES: [&str; 4] = ["mlp_bn_relu", "net_tanh_bn_after", "leaky_no_bn", "bn_eps_cumulative"];

/// The BN settings a fixture was made with: `bn_eps` and `bn_momentum`
/// (`"none"`: the cumulative average) where it records them, else
/// PyTorch's defaults.
fn bn_config(f: &Value) -> BatchNormConfig {
    let mut bn = BatchNormConfig::default();
    if let Some(eps) = f["bn_eps"].as_f64() {
        bn.eps = eps;
    }
    if f["bn_momentum"].as_str() == Some("none") {
        bn.momentum = Momentum::Cumulative;
    }
    bn
}

fn fixture(name: &str) -> (PathBuf, Value) {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bpnet/tests/fixtures/torch_import"
    ));
    let json = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    (
        dir.join(format!("{name}.safetensors")),
        serde_json::from_str(&json).unwrap(),
    )
}

fn matrix(v: &Value) -> Matrix<f32> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v.clone()).unwrap();
    Matrix::from_vec(rows.len(), rows[0].len(), rows.concat()).unwrap()
}

fn labels(v: &Value) -> Vec<usize> {
    serde_json::from_value(v.clone()).unwrap()
}

fn max_diff(a: &Matrix<f32>, b: &Matrix<f32>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max)
}

fn import_with_spec(name: &str) -> (TorchImport, Value) {
    let (path, f) = fixture(name);
    let options = TorchImportOptions {
        modules: Some(parse_modules(f["spec"].as_str().unwrap()).unwrap()),
        bn: bn_config(&f),
        ..TorchImportOptions::default()
    };
    (import_torch(&path, &options).unwrap(), f)
}

#[test]
fn eval_output_equals_pytorch() {
    for name in CASES {
        let (mut imported, f) = import_with_spec(name);
        let y = imported.model.forward(&matrix(&f["x"]), Mode::Eval).unwrap().clone();
        let d = max_diff(&y, &matrix(&f["eval_output"]));
        println!("{name}: max |bpnet - torch| = {d:.2e} (bound {BOUND:e})");
        assert!(d <= BOUND, "{name}: {d:e}");
    }
}

#[test]
fn inferring_the_modules_needs_only_the_activation() {
    for name in CASES {
        let (path, f) = fixture(name);
        let options = TorchImportOptions {
            activation: Some(f["activation"].as_str().unwrap().parse::<Activation>().unwrap()),
            dropout: 0.1,
            bn: bn_config(&f),
            ..TorchImportOptions::default()
        };
        let inferred = import_torch(&path, &options).unwrap();
        let (with_spec, _) = import_with_spec(name);
        assert_eq!(inferred.modules, with_spec.modules, "{name}");
        assert_eq!(inferred.spec, with_spec.spec, "{name}");
    }
    // Without an activation the error says what to give.
    let (path, _) = fixture("mlp_bn_relu");
    let err = import_torch(&path, &TorchImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("--activation") && err.contains("index 2"), "{err}");
}

#[test]
fn architecture_names_and_bias_absorption() {
    let (imported, _) = import_with_spec("mlp_bn_relu");
    let s = &imported.spec;
    assert_eq!(s.dims, [6, 16, 16, 3]);
    assert_eq!(
        (s.activation, s.batch_norm, s.dropout),
        (Activation::Relu, bpnet::BnPlacement::BeforeActivation, 0.1)
    );
    assert!(
        imported
            .names
            .contains(&("layers.4.weight".to_string(), "4.weight".to_string()))
    );
    assert!(imported.names.contains(&(
        "layers.1.num_batches_tracked".to_string(),
        "1.num_batches_tracked".to_string()
    )));
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.contains("`0.bias`") && n.contains("running_mean")),
        "{:?}",
        imported.notes
    );
    let Layer::BatchNorm(bn) = &imported.model.layers()[1] else {
        panic!("layer 1 is not BN")
    };
    assert_eq!(
        bn.running.batches, 30,
        "num_batches_tracked: 30 Adam steps in the fixture"
    );
    let (wrapped, _) = import_with_spec("net_tanh_bn_after");
    assert_eq!(wrapped.spec.batch_norm, bpnet::BnPlacement::AfterActivation);
    assert!(
        wrapped
            .names
            .contains(&("layers.2.running_var".to_string(), "net.2.running_var".to_string()))
    );
}

/// One SGD step from the imported state: with PyTorch's momentum 0.1, and
/// with eps 1e-3 and the cumulative average (momentum None), whose running
/// means depend on the imported num_batches_tracked.
#[test]
fn one_sgd_step_matches_pytorch() {
    for name in ["net_tanh_bn_after", "bn_eps_cumulative"] {
        one_sgd_step(name);
    }
}

fn one_sgd_step(name: &str) {
    let (imported, f) = import_with_spec(name);
    let step = &f["step"];
    let opt = Optimizer::new(OptimizerConfig::sgd(step["lr"].as_f64().unwrap())).unwrap();
    let mut trainer = Trainer::new(imported.model, opt, Loss::CrossEntropy);
    let loss = trainer
        .step(&matrix(&step["x"]), Target::Labels(&labels(&step["labels"])))
        .unwrap();
    let dl = (loss as f64 - step["loss"].as_f64().unwrap()).abs();
    let y = trainer.model.forward(&matrix(&f["x"]), Mode::Eval).unwrap().clone();
    let d = max_diff(&y, &matrix(&step["eval_output"]));
    let mut dm: f64 = 0.0;
    for (torch_name, want) in step["running_mean"].as_object().unwrap() {
        let index: usize = torch_name.rsplit('.').nth(1).unwrap().parse().unwrap();
        let Layer::BatchNorm(bn) = &trainer.model.layers()[index] else {
            panic!("{torch_name}")
        };
        let want: Vec<f32> = serde_json::from_value(want.clone()).unwrap();
        // bpnet holds a BN's running mean less the bias of a Linear just
        // before it (absorbed on import: its Dense layers there have none).
        let absorbed = absorbed_bias(name, &f, torch_name, index).unwrap_or(vec![0.0; want.len()]);
        dm = bn
            .running
            .mean
            .iter()
            .zip(&absorbed)
            .zip(&want)
            .map(|((a, b), w)| (a + b - w).abs() as f64)
            .fold(dm, f64::max);
    }
    println!("{name}, one SGD step: |loss diff| {dl:.2e}, max |eval diff| {d:.2e}, max |running_mean diff| {dm:.2e}");
    assert!(dl <= BOUND && d <= BOUND && dm <= BOUND, "{name}");
}

#[test]
fn training_further_lowers_the_loss() {
    let (imported, f) = import_with_spec("mlp_bn_relu");
    let (x, y) = (matrix(&f["train_x"]), labels(&f["train_labels"]));
    let opt = Optimizer::new(OptimizerConfig::adam(0.01)).unwrap();
    let mut trainer = Trainer::new(imported.model, opt, Loss::CrossEntropy);
    let mut grad = Matrix::default();
    let mut eval_loss = |t: &mut Trainer<f32>| {
        let out = t.model.forward(&x, Mode::Eval).unwrap();
        Loss::CrossEntropy
            .forward_backward(out, Target::Labels(&y), &mut grad)
            .unwrap()
    };
    let before = eval_loss(&mut trainer);
    for epoch in 0..10 {
        for start in (0..x.rows()).step_by(16) {
            let rows: Vec<f32> = (start..start + 16).flat_map(|r| x.row(r % x.rows()).to_vec()).collect();
            let batch = Matrix::from_vec(16, x.cols(), rows).unwrap();
            let target: Vec<usize> = (start..start + 16).map(|r| y[r % y.len()]).collect();
            trainer
                .step(&batch, Target::Labels(&target))
                .unwrap_or_else(|e| panic!("epoch {epoch}: {e}"));
        }
    }
    let after = eval_loss(&mut trainer);
    println!("training the imported model 60 Adam steps: eval loss {before:.4} -> {after:.4}");
    assert!(after < 0.9 * before, "{before} -> {after}");
}

#[test]
fn spec_mismatches_and_unsupported_layouts_are_clear_errors() {
    let (path, _) = fixture("mlp_bn_relu");
    let with = |spec: &str| {
        let options = TorchImportOptions {
            modules: Some(parse_modules(spec).unwrap()),
            ..TorchImportOptions::default()
        };
        import_torch(&path, &options).unwrap_err().to_string()
    };
    let err = with("linear,relu,bn,linear,bn,relu,linear,relu,linear");
    assert!(err.contains("module 1") && err.contains("BatchNorm"), "{err}");
    let err = with("linear,bn,relu,dropout,linear,bn,relu,dropout,linear,relu");
    assert!(err.contains("output layer") && err.contains("relu"), "{err}");
    let err = with("linear,bn,relu");
    assert!(err.contains("lists 3 modules"), "{err}");
    assert!(
        parse_modules("linear,conv2d")
            .unwrap_err()
            .to_string()
            .contains("conv2d")
    );
    assert_eq!(
        parse_modules("LeakyReLU:0.2,ELU,Dropout").unwrap()[..2],
        [
            TorchModule::Activation(Activation::LeakyRelu(0.2)),
            TorchModule::Activation(Activation::Elu(1.0)),
        ]
    );
}

#[test]
fn cli_import_inspect_and_export() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, f) = fixture("mlp_bn_relu");
    let spec = f["spec"].as_str().unwrap();
    let out = bpnet(
        tmp.path(),
        &[
            "import",
            "--torch",
            path.to_str().unwrap(),
            "--spec",
            spec,
            "--out",
            "m.safetensors",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("note:") && stdout.contains("wrote m.safetensors"),
        "{stdout}"
    );
    let mut file = load_model(&tmp.path().join("m.safetensors")).unwrap();
    assert!(file.metadata["imported"]["tensors"].as_array().unwrap().len() >= 14);
    let y = file.model.forward(&matrix(&f["x"]), Mode::Eval).unwrap().clone();
    assert!(max_diff(&y, &matrix(&f["eval_output"])) <= BOUND);
    let out = bpnet(
        tmp.path(),
        &["export", "--model", "m.safetensors", "--onnx", "m.onnx", "--fold-bn"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("preprocessed feature matrix"));
    // A bpnet model file given as the state dict is refused (it imported,
    // dropping the file's preprocessing without a word).
    let out = bpnet(
        tmp.path(),
        &[
            "import",
            "--torch",
            "m.safetensors",
            "--spec",
            spec,
            "--out",
            "again.safetensors",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.trim()
                == "error: m.safetensors: a bpnet model file already (bpnet predict, eval and export read it as it is); import reads a PyTorch state_dict saved with safetensors",
        "{stderr}"
    );
    assert!(!tmp.path().join("again.safetensors").exists());
    // No activation given: one line naming the option, non-zero exit, no file.
    let out = bpnet(
        tmp.path(),
        &["import", "--torch", path.to_str().unwrap(), "--out", "n.safetensors"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("--activation") && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(!tmp.path().join("n.safetensors").exists());
}

/// The bias of the Linear module just before the BN module `index` (named
/// `torch_name`, e.g. `1.running_mean`) of fixture `name`, as PyTorch
/// saved it; `None` where the module before is not a Linear.
fn absorbed_bias(name: &str, f: &Value, torch_name: &str, index: usize) -> Option<Vec<f32>> {
    let modules: Vec<&str> = f["spec"].as_str().unwrap().split(',').collect();
    if index == 0 || modules[index - 1] != "linear" {
        return None;
    }
    let prefix = torch_name.strip_suffix(&format!("{index}.running_mean")).unwrap();
    let bytes = std::fs::read(fixture(name).0).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(&format!("{prefix}{}.bias", index - 1)).unwrap();
    Some(
        t.data()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

/// `--bn-eps` and `--bn-momentum none` through the binary: the model file
/// holds them, its eval output is PyTorch's, and without them (PyTorch's
/// defaults, not those the network was trained with) it is not.
#[test]
fn cli_import_with_bn_eps_and_cumulative_momentum() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, f) = fixture("bn_eps_cumulative");
    let run = |extra: &[&str], out: &str| {
        let mut args = vec![
            "import",
            "--torch",
            path.to_str().unwrap(),
            "--spec",
            "linear,bn,relu,linear",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--out", out]);
        let o = bpnet(tmp.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        load_model(&tmp.path().join(out)).unwrap()
    };
    let mut file = run(&["--bn-eps", "0.001", "--bn-momentum", "none"], "m.safetensors");
    assert_eq!((file.spec.bn.eps, file.spec.bn.momentum), (1e-3, Momentum::Cumulative));
    let y = file.model.forward(&matrix(&f["x"]), Mode::Eval).unwrap().clone();
    let d = max_diff(&y, &matrix(&f["eval_output"]));
    assert!(d <= BOUND, "{d:e}");
    let mut plain = run(&[], "p.safetensors");
    let y = plain.model.forward(&matrix(&f["x"]), Mode::Eval).unwrap().clone();
    assert!(max_diff(&y, &matrix(&f["eval_output"])) > 100.0 * BOUND);
}

/// Writes a safetensors file of `(name, dtype, shape, little-endian bytes)`.
fn write_state(dir: &Path, file: &str, tensors: &[(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> PathBuf {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.to_string(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let path = dir.join(file);
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    path
}

/// Import options that infer the modules with ReLU between layers.
fn relu() -> TorchImportOptions {
    TorchImportOptions {
        activation: Some(Activation::Relu),
        ..TorchImportOptions::default()
    }
}

/// The error of importing `path` with [`relu`]'s options.
fn err(path: PathBuf) -> String {
    import_torch(&path, &relu()).unwrap_err().to_string()
}

fn f32s(n: usize, scale: f32) -> Vec<u8> {
    (0..n).flat_map(|i| ((i as f32 - 2.0) * scale).to_le_bytes()).collect()
}

#[test]
fn state_dict_layouts_and_dtypes() {
    use safetensors::Dtype::{F32, F64};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // F64 tensors are converted, with a note.
    let w64: Vec<u8> = (0..6).flat_map(|i| (i as f64 * 0.25 - 0.5).to_le_bytes()).collect();
    let ok = write_state(
        dir,
        "f64.safetensors",
        &[
            ("0.weight", F64, vec![2, 3], w64),
            ("0.bias", F32, vec![2], f32s(2, 0.5)),
        ],
    );
    let imported = import_torch(&ok, &relu()).unwrap();
    assert_eq!(imported.spec.dims, [3, 2]);
    assert!(imported.notes.iter().any(|n| n.contains("F64")), "{:?}", imported.notes);
    let Layer::Dense(d) = &imported.model.layers()[0] else {
        panic!()
    };
    assert_eq!(d.weight.value.as_slice(), [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75]);
    let two = write_state(
        dir,
        "two.safetensors",
        &[
            ("a.0.weight", F32, vec![2, 3], f32s(6, 0.1)),
            ("b.2.weight", F32, vec![1, 2], f32s(2, 0.1)),
        ],
    );
    assert!(err(two).contains("two module paths"));
    let conv = write_state(
        dir,
        "conv.safetensors",
        &[("0.weight", F32, vec![2, 1, 3, 3], f32s(18, 0.1))],
    );
    assert!(err(conv).contains("[2, 1, 3, 3]"));
    let field = write_state(
        dir,
        "field.safetensors",
        &[("0.weight_orig", F32, vec![2, 3], f32s(6, 0.1))],
    );
    assert!(err(field).contains("unknown field `weight_orig`"));
    let chain = write_state(
        dir,
        "chain.safetensors",
        &[
            ("0.weight", F32, vec![4, 3], f32s(12, 0.1)),
            ("2.weight", F32, vec![1, 5], f32s(5, 0.1)),
        ],
    );
    let e = err(chain);
    assert!(
        e.contains("`2.weight` has shape [1, 5] but the layer before outputs 4"),
        "{e}"
    );
    let flat = write_state(dir, "flat.safetensors", &[("weight", F32, vec![2, 3], f32s(6, 0.1))]);
    assert!(err(flat).contains("not named like an nn.Sequential entry"));
}

/// Bound on `bpnet predict` of an imported model against PyTorch's eval
/// output: [`BOUND`] plus the fused network's rounding (batch
/// normalization folded into the Dense layers, ≤ 2e-6 relative on outputs
/// up to about 2).
const PREDICT_BOUND: f64 = 2e-5;

/// `rows` as CSV lines, each value as the fixture's JSON holds it.
fn csv_rows(rows: &Value, extra: &[String]) -> String {
    let rows = rows.as_array().unwrap();
    rows.iter()
        .enumerate()
        .map(|(r, row)| {
            let mut cells: Vec<String> = row.as_array().unwrap().iter().map(Value::to_string).collect();
            cells.extend(extra.get(r).cloned());
            cells.join(",") + "\n"
        })
        .collect()
}

/// The values of a predictions CSV after its header, which must be `header`.
fn read_outputs(csv: &str, header: &str) -> Matrix<f32> {
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(header), "{csv}");
    let rows: Vec<Vec<f32>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    Matrix::from_vec(rows.len(), rows[0].len(), rows.concat()).unwrap()
}

/// Imports fixture `name` with its module list as `m.safetensors` in `dir`.
fn cli_import(dir: &Path, name: &str) -> Value {
    let (path, f) = fixture(name);
    let args = [
        "import",
        "--torch",
        path.to_str().unwrap(),
        "--spec",
        f["spec"].as_str().unwrap(),
        "--out",
        "m.safetensors",
    ];
    common::ok(dir, &args);
    f
}

/// The one line of an error run: non-zero exit, one line of stderr.
fn one_line_error(dir: &Path, args: &[&str]) -> String {
    let out = bpnet(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && stderr.lines().count() == 1,
        "{args:?}: {stderr}"
    );
    stderr
}

/// `bpnet predict` of an imported model: the CSV's columns are the
/// feature matrix (with a header or without), the output its raw outputs
/// `output_0,...`, equal to PyTorch's eval output and to the library's
/// forward pass of the model file; a CSV of another width is a one-line
/// error naming the file and both counts.
#[test]
fn cli_predict_of_an_imported_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let f = cli_import(dir, "mlp_bn_relu");
    let body = csv_rows(&f["x"], &[]);
    std::fs::write(dir.join("x.csv"), &body).unwrap();
    std::fs::write(dir.join("h.csv"), format!("a,b,c,d,e,f\n{body}")).unwrap();
    let mut file = load_model(&dir.join("m.safetensors")).unwrap();
    let forward = file.model.forward(&matrix(&f["x"]), Mode::Eval).unwrap().clone();
    for data in ["x.csv", "h.csv"] {
        let stdout = common::ok(dir, &["predict", "--model", "m.safetensors", "--data", data]);
        let y = read_outputs(&stdout, "output_0,output_1,output_2");
        let (d_torch, d_lib) = (max_diff(&y, &matrix(&f["eval_output"])), max_diff(&y, &forward));
        println!(
            "predict {data}: max |bpnet - torch| = {d_torch:.2e}, max |predict - forward| = {d_lib:.2e} (bound {PREDICT_BOUND:e})"
        );
        assert!(d_torch <= PREDICT_BOUND && d_lib <= PREDICT_BOUND, "{data}");
    }
    let narrow: String = body
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    std::fs::write(dir.join("narrow.csv"), narrow).unwrap();
    let args = [
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        "narrow.csv",
        "--output",
        "p.csv",
    ];
    let err = one_line_error(dir, &args);
    assert!(
        err.contains("narrow.csv") && err.contains("5 columns") && err.contains("takes 6 input features"),
        "{err}"
    );
    assert!(!dir.join("p.csv").exists());
    let first = body.lines().next().unwrap();
    let mut cells: Vec<&str> = first.split(',').collect();
    cells[1] = "abc";
    std::fs::write(dir.join("text.csv"), body.replacen(first, &cells.join(","), 1)).unwrap();
    let err = one_line_error(dir, &["predict", "--model", "m.safetensors", "--data", "text.csv"]);
    assert!(
        err.contains("text.csv: line 1, column 'col1'") && err.contains("not a finite number"),
        "{err}"
    );
}

/// `bpnet eval` of an imported model: `--target` names the label column
/// (class indices) or one value column per output; the rest are the
/// features. Metrics equal the library's on the same rows; without
/// `--target`, or with `--target` on a model that has preprocessing, a
/// one-line error.
#[test]
fn cli_eval_of_an_imported_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let f = cli_import(dir, "mlp_bn_relu");
    let (x, y) = (matrix(&f["train_x"]), labels(&f["train_labels"]));
    let label_cells: Vec<String> = y.iter().map(|l| l.to_string()).collect();
    let body = csv_rows(&f["train_x"], &label_cells);
    std::fs::write(dir.join("t.csv"), format!("a,b,c,d,e,f,label\n{body}")).unwrap();
    let mut file = load_model(&dir.join("m.safetensors")).unwrap();
    let out = file.model.forward(&x, Mode::Eval).unwrap().clone();
    let hits = (0..out.rows())
        .filter(|&r| bpnet::train::argmax(out.row(r)) == y[r])
        .count();
    let loss = Loss::CrossEntropy.value(&out, Target::Labels(&y)).unwrap() as f64;
    let args = [
        "eval",
        "--model",
        "m.safetensors",
        "--data",
        "t.csv",
        "--target",
        "label",
        "--json",
    ];
    let m = common::last_json(&common::ok(dir, &args))["metrics"].clone();
    println!(
        "eval: accuracy {}, loss {} (library: {hits}/{} rows, loss {loss})",
        m["accuracy"],
        m["loss"],
        y.len()
    );
    assert_eq!(m["accuracy"].as_f64().unwrap(), hits as f64 / y.len() as f64);
    assert!((m["loss"].as_f64().unwrap() - loss).abs() <= 1e-5, "{m}");
    // Regression against the PyTorch outputs as value columns: MSE ~ 0.
    let targets: Vec<String> = csv_rows(&f["eval_output"], &[]).lines().map(String::from).collect();
    std::fs::write(dir.join("v.csv"), csv_rows(&f["x"], &targets)).unwrap();
    let args = [
        "eval",
        "--model",
        "m.safetensors",
        "--data",
        "v.csv",
        "--target",
        "6,7,8",
        "--json",
    ];
    let m = common::last_json(&common::ok(dir, &args))["metrics"].clone();
    assert!(m["rmse"].as_f64().unwrap() <= PREDICT_BOUND, "{m}");
    let err = one_line_error(dir, &["eval", "--model", "m.safetensors", "--data", "t.csv"]);
    assert!(err.contains("--target") && err.contains("m.safetensors"), "{err}");
    let args = ["eval", "--model", "m.safetensors", "--data", "t.csv", "--target", "a"];
    let err = one_line_error(dir, &args);
    assert!(
        err.contains("t.csv: line 2, column 'a'") && err.contains("not a class index"),
        "{err}"
    );
    let args = [
        "eval",
        "--model",
        "m.safetensors",
        "--data",
        "t.csv",
        "--target",
        "label",
        "--stream",
    ];
    assert!(one_line_error(dir, &args).contains("--stream"));
    let trained = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bpnet/tests/fixtures/model_before_norm_kinds.safetensors"
    );
    let err = one_line_error(
        dir,
        &["eval", "--model", trained, "--data", "t.csv", "--target", "label"],
    );
    assert!(err.contains("--target") && err.contains("preprocessing"), "{err}");
}

/// A Parquet file of the feature matrix predicts as its CSV does.
#[cfg(feature = "columnar")]
#[test]
fn cli_predict_of_an_imported_model_from_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let f = cli_import(dir, "leaky_no_bn");
    let csv = format!("a,b,c,d\n{}", csv_rows(&f["x"], &[]));
    let path = dir.join("x.parquet");
    std::fs::write(&path, bpnet::data::table::csv_to_parquet(&csv, &path).unwrap()).unwrap();
    let stdout = common::ok(dir, &["predict", "--model", "m.safetensors", "--data", "x.parquet"]);
    let d = max_diff(&read_outputs(&stdout, "output_0,output_1"), &matrix(&f["eval_output"]));
    println!("predict x.parquet: max |bpnet - torch| = {d:.2e}");
    assert!(d <= PREDICT_BOUND, "{d:e}");
}

/// State dicts that imported with exit 0 into another function than
/// PyTorch's, or whose refusal named the wrong thing (found by an
/// adversarial pass, 2026-12-07).
#[test]
fn state_dicts_that_imported_wrongly_are_imported_right_or_refused() {
    use safetensors::Dtype::{F32, I64};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A Linear with bias=False got the random bias `from_spec` drew (the
    // note said it was zero).
    let nobias = write_state(
        dir,
        "nobias.safetensors",
        &[("0.weight", F32, vec![2, 3], f32s(6, 0.1))],
    );
    let imported = import_torch(&nobias, &relu()).unwrap();
    let Layer::Dense(d) = &imported.model.layers()[0] else {
        panic!()
    };
    assert_eq!(d.bias.as_ref().unwrap().value.as_slice(), [0.0, 0.0]);
    // BN modules of different settings: the first one's was taken for all
    // and the other's weight and bias dropped.
    type Owned = (String, safetensors::Dtype, Vec<usize>, Vec<u8>);
    let ones: Vec<u8> = (0..4).flat_map(|_| 1.0f32.to_le_bytes()).collect();
    let bn = |i: usize, affine: bool| {
        let mut t: Vec<Owned> = vec![
            (format!("{i}.running_mean"), F32, vec![4], f32s(4, 0.1)),
            (format!("{i}.running_var"), F32, vec![4], ones.clone()),
        ];
        if affine {
            t.push((format!("{i}.weight"), F32, vec![4], f32s(4, 0.3)));
            t.push((format!("{i}.bias"), F32, vec![4], f32s(4, 0.2)));
        }
        t
    };
    let mut mixed: Vec<Owned> = vec![("0.weight".to_string(), F32, vec![4, 3], f32s(12, 0.1))];
    mixed.extend(bn(1, false));
    mixed.push(("3.weight".into(), F32, vec![4, 4], f32s(16, 0.1)));
    mixed.extend(bn(4, true));
    mixed.push(("6.weight".into(), F32, vec![2, 4], f32s(8, 0.1)));
    mixed.push(("6.bias".into(), F32, vec![2], f32s(2, 0.1)));
    fn named(t: &[Owned]) -> Vec<(&str, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
        t.iter()
            .map(|(n, d, s, b)| (n.as_str(), *d, s.clone(), b.clone()))
            .collect()
    }
    let e = err(write_state(dir, "mixed.safetensors", &named(&mixed)));
    assert!(
        e.contains("BatchNorm1d 1 has no weight and bias (affine=False) but BatchNorm1d 4 has a weight and bias"),
        "{e}"
    );
    // Without running statistics a 1-D weight is a BN that normalizes with
    // batch statistics in eval mode, a LayerNorm or a PReLU: it imported as
    // a BN that predict and export then refused.
    let ln = write_state(
        dir,
        "ln.safetensors",
        &[
            ("0.weight", F32, vec![4, 3], f32s(12, 0.1)),
            ("0.bias", F32, vec![4], f32s(4, 0.1)),
            ("1.weight", F32, vec![4], f32s(4, 0.3)),
            ("1.bias", F32, vec![4], f32s(4, 0.2)),
            ("3.weight", F32, vec![2, 4], f32s(8, 0.1)),
        ],
    );
    let e = err(ln);
    assert!(
        e.contains("`1.weight` is a 1-D weight without running statistics") && e.contains("ln.safetensors"),
        "{e}"
    );
    // A tensor of another shape with as many values (PyTorch's
    // load_state_dict refuses it).
    let reshaped = write_state(
        dir,
        "reshaped.safetensors",
        &[
            ("0.weight", F32, vec![2, 3], f32s(6, 0.1)),
            ("0.bias", F32, vec![2, 1], f32s(2, 0.1)),
        ],
    );
    assert!(err(reshaped).contains("`0.bias` has shape [2, 1]; bpnet's `layers.0.bias` needs shape [2]"));
    // A negative running variance named the output file at save time.
    let mut neg = mixed.clone();
    neg.retain(|t| !t.0.starts_with("4.weight") && !t.0.starts_with("4.bias"));
    neg[2].3 = (0..4).flat_map(|_| (-1.5f32).to_le_bytes()).collect();
    let e = err(write_state(dir, "neg.safetensors", &named(&neg)));
    assert!(
        e.contains("neg.safetensors") && e.contains("`1.running_var` holds a negative variance (-1.5)"),
        "{e}"
    );
    // An integer weight of one value read as a batch count.
    let int = write_state(
        dir,
        "int.safetensors",
        &[("0.weight", I64, vec![1, 1], 3i64.to_le_bytes().to_vec())],
    );
    assert!(err(int).contains("`0.weight` has dtype I64"));
}

/// `--spec` gives every module: `--activation` and `--dropout` (for
/// inferred modules) beside it were ignored without a word.
#[test]
fn cli_import_refuses_inference_options_beside_a_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, _) = fixture("mlp_bn_relu");
    for extra in [["--activation", "tanh"], ["--dropout", "0.3"]] {
        let torch = path.to_str().unwrap();
        let args = [
            &["import", "--torch", torch, "--spec", "linear,bn,relu,linear"][..],
            &extra,
            &["--out", "m.safetensors"],
        ]
        .concat();
        let out = bpnet(tmp.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("cannot be used with") && err.contains(extra[0]), "{err}");
        assert!(!tmp.path().join("m.safetensors").exists());
    }
}

//! Cross-entropy with label smoothing against PyTorch's
//! `nn.CrossEntropyLoss(label_smoothing=eps)` (mean reduction, autograd),
//! numbers from `tools/torch_label_smoothing.py` (run by
//! `tools/gen_fixtures.sh`): loss and gradient with respect to the logits,
//! in f64 (to 1e-12) and f32 (to 2e-6 relative). One row, two classes, 33
//! rows, large logits.

use bpnet::Matrix;
use bpnet::loss::{Loss, Target};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/label_smoothing.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn matrix(v: &Value) -> Matrix<f64> {
    let rows: Vec<Vec<f64>> = serde_json::from_value(v.clone()).expect("rows");
    let cols = rows[0].len();
    Matrix::from_vec(rows.len(), cols, rows.concat()).expect("matrix")
}

#[test]
fn loss_and_gradient_match_pytorch_in_f64_and_f32() {
    let data = fixture();
    let cases = data["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 5);
    for c in cases {
        let name = c["name"].as_str().expect("name");
        let eps = c["eps"].as_f64().expect("eps");
        let z = matrix(&c["logits"]);
        let want_grad = matrix(&c["grad"]);
        let want = c["loss"].as_f64().expect("loss");
        let labels: Vec<usize> = serde_json::from_value(c["labels"].clone()).expect("labels");
        let mut g = Matrix::default();
        let l = Loss::CrossEntropy
            .forward_backward_smoothed(&z, Target::Labels(&labels), &mut g, z.rows(), eps)
            .expect("loss");
        assert!(
            (l - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{name}: loss {l} against {want}"
        );
        for (a, b) in g.as_slice().iter().zip(want_grad.as_slice()) {
            assert!((a - b).abs() <= 1e-12, "{name}: gradient {a} against {b}");
        }
        let z32 = z.cast::<f32>();
        let mut g32 = Matrix::default();
        let l32 = Loss::CrossEntropy
            .forward_backward_smoothed(&z32, Target::Labels(&labels), &mut g32, z.rows(), eps)
            .expect("loss f32");
        let scale = want.abs().max(1.0);
        assert!(
            (f64::from(l32) - want).abs() <= 2e-6 * scale,
            "{name}: f32 loss {l32} against {want}"
        );
        for (a, b) in g32.as_slice().iter().zip(want_grad.as_slice()) {
            assert!(
                (f64::from(*a) - b).abs() <= 2e-6,
                "{name}: f32 gradient {a} against {b}"
            );
        }
    }
}

#[test]
fn without_smoothing_pytorch_plain_loss_differs() {
    // The fixture's smoothing matters: the plain loss misses it on every case.
    for c in fixture()["cases"].as_array().expect("cases") {
        let z = matrix(&c["logits"]);
        let labels: Vec<usize> = serde_json::from_value(c["labels"].clone()).expect("labels");
        let plain = Loss::CrossEntropy.value(&z, Target::Labels(&labels)).expect("loss");
        let want = c["loss"].as_f64().expect("loss");
        assert!(
            (plain - want).abs() > 1e-6,
            "{}: smoothing made no difference",
            c["name"]
        );
    }
}

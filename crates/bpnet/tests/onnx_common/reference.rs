//! The reference side of the ONNX Runtime test: raw inputs around known
//! feature scalings, and bpnet's predictions for them computed the way the
//! CSV pipeline and `bpnet predict` do.

use super::uniform;
use bpnet::onnx::{ExportOptions, Head, InputScaling};
use bpnet::{Matrix, Mode, Scalar, Sequential};
use serde_json::{Value, json};

/// A matrix as JSON rows; NaN becomes null (a missing value).
pub trait Rows {
    fn rows_json(&self) -> Value;
}

impl<T: Scalar> Rows for Matrix<T> {
    fn rows_json(&self) -> Value {
        let row = |r: usize| -> Vec<Option<f64>> {
            self.row(r)
                .iter()
                .map(|v| Some(v.to_f64()).filter(|v| !v.is_nan()))
                .collect()
        };
        json!((0..self.rows()).map(row).collect::<Vec<_>>())
    }
}

/// Raw rows around the scaling's centers, and the scaling.
pub fn raw_inputs(features: usize, rows: usize, seed: u64) -> (Matrix<f32>, InputScaling) {
    let z = uniform::<f64>(rows, features, -2.0, 2.0, seed);
    let params = uniform::<f64>(2, features, 0.0, 1.0, seed + 1);
    let center: Vec<f64> = params.row(0).iter().map(|u| (u - 0.5) * 100.0).collect();
    let scale: Vec<f64> = params.row(1).iter().map(|u| 0.2 + 5.0 * u).collect();
    let data = (0..rows * features)
        .map(|i| (center[i % features] + scale[i % features] * z.as_slice()[i]) as f32)
        .collect();
    let names = (0..features).map(|i| format!("f{i}")).collect();
    let fill = vec![f64::NAN; features];
    (
        Matrix::from_vec(rows, features, data).unwrap(),
        InputScaling {
            center,
            scale,
            fill,
            names,
        },
    )
}

/// bpnet's prediction for raw rows: scaling in f64 (as the CSV pipeline
/// does), eval forward in f32, then output scaling and head in f64.
pub fn bpnet_outputs(model: &mut Sequential<f32>, raw: &Matrix<f32>, o: &ExportOptions) -> Matrix<f64> {
    let mut x = raw.clone();
    if let Some(s) = &o.input_scaling {
        for (i, v) in x.as_mut_slice().iter_mut().enumerate() {
            let c = i % s.len();
            let r = if v.is_nan() { s.fill[c] } else { *v as f64 };
            *v = ((r - s.center[c]) / s.scale[c]) as f32;
        }
    }
    let mut y = model.forward(&x, Mode::Eval).unwrap().cast::<f64>();
    let cols = y.cols();
    for r in 0..y.rows() {
        let row = y.row_mut(r);
        if let Some(s) = &o.output_scaling {
            row.iter_mut()
                .enumerate()
                .for_each(|(c, v)| *v = *v * s.scale[c] + s.center[c]);
        }
        match o.head {
            Head::Raw => {}
            Head::Sigmoid => row.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
            Head::Softmax => {
                let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
                row.iter_mut().for_each(|v| *v = (*v - max).exp() / sum);
            }
        }
        assert_eq!(row.len(), cols);
    }
    y
}

//! The model-file loader: any bytes give a model or an error, never a panic;
//! a model that loads also evaluates.
#![no_main]

use bpnet::Mode;
use bpnet::io::decode_model;
use bpnet::tensor::Matrix;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut f) = decode_model(data, Path::new("fuzz.safetensors")) {
        if let Some(n) = f.model.in_features().filter(|&n| n <= 4096) {
            let x = Matrix::zeros(2, n);
            let _ = f.model.forward(&x, Mode::Eval);
        }
    }
});

//! The CSV reader and the preprocessing fitted on what it reads: any bytes
//! give a table or an error, never a panic.
#![no_main]

use bpnet::data::preprocess::{PreprocessSpec, Preprocessor};
use bpnet::data::{CsvOptions, parse_csv};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let (delimiter, bytes) = match data.split_first() {
        Some((&d, rest)) if d == b';' || d == b'\t' => (d, rest),
        _ => (b',', data),
    };
    let opts = CsvOptions { header: None, delimiter };
    if let Ok(table) = parse_csv(bytes, Path::new("fuzz.csv"), &opts) {
        let rows: Vec<usize> = (0..table.len()).collect();
        if let Ok((p, _)) = Preprocessor::fit(&table, &rows, &PreprocessSpec::default()) {
            let _ = p.transform_features(&table, &rows);
            let _ = p.transform_targets(&table, &rows);
        }
    }
});

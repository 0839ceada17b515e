//! The IDX reader (plain and gzip): any bytes give an array or an error,
//! never a panic or an allocation sized from an unchecked header.
#![no_main]

use bpnet::data::idx::parse_idx;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    for ndims in [1, 3] {
        if let Ok(a) = parse_idx(data, Path::new("fuzz-idx"), ndims) {
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }
});

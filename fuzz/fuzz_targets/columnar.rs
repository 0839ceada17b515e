//! The Parquet and Arrow IPC readers (whole, and chunk by chunk as
//! streaming reads them) and the preprocessing fitted on what they read:
//! any bytes give a table or an error, never a panic or an abort. The first byte picks the format (even: Parquet, odd: Arrow IPC);
//! the rest is the file, written to a temporary file per process (the
//! readers take paths). Two threads, so that the whole-file Parquet read
//! runs its jobs in parallel: a column each, or, for a file of one column,
//! ranges of its row groups.
#![no_main]

use bpnet::data::preprocess::{PreprocessSpec, Preprocessor};
use bpnet::data::table::{CHUNK, ChunkReader};
use bpnet::data::{CsvOptions, Impute, read_data};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path(ext: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("bpnet-fuzz-columnar-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    dir.join(format!("input.{ext}"))
}

fuzz_target!(|data: &[u8]| {
    static THREADS: std::sync::Once = std::sync::Once::new();
    THREADS.call_once(|| {
        bpnet::set_threads(2);
    });
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let path = path(if kind % 2 == 0 { "parquet" } else { "arrow" });
    std::fs::write(&path, bytes).unwrap();
    if let Ok(table) = read_data(&path, &CsvOptions::default(), None) {
        let rows: Vec<usize> = (0..table.len()).collect();
        let spec = PreprocessSpec {
            impute: Some(Impute::Mean),
            ..PreprocessSpec::default()
        };
        if let Ok((p, _)) = Preprocessor::fit(&table, &rows, &spec) {
            let _ = p.transform_features(&table, &rows);
            let _ = p.transform_targets(&table, &rows);
        }
    }
    if let Ok(mut chunks) = ChunkReader::open(&path, &CsvOptions::default(), CHUNK) {
        while let Ok(Some(_)) = chunks.next_chunk() {}
    }
});

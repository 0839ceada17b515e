//! Whether a command streams its data, and the streamed training file of a
//! [`TrainConfig`].

use super::memory::{LOAD_PEAK, available_memory, estimate};
use super::{RowSplit, StreamFile};
use crate::data::csv::CsvOptions;
use crate::data::table::{CHUNK, ChunkReader, Format};
use crate::workflow::TrainConfig;
use crate::workflow::data::{csv_options, is_image_source, preprocess_spec};
use crate::{Error, Result};
use std::path::Path;

/// Most rows of the default shuffle buffer.
pub const MAX_BUFFER: usize = 1 << 20;

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

/// Whether to stream the data file `data` under `mode` (`on`, `off` or
/// `auto`): `Some(note)` saying why, `None` to load it in memory. `auto`
/// streams a CSV file whose estimated load peak ([`LOAD_PEAK`] times its
/// `f32` matrix) exceeds the available memory.
pub fn choose_stream(data: &str, mode: &str, opts: &CsvOptions) -> Result<Option<String>> {
    let forced = match mode {
        "auto" | "" => false,
        "on" | "true" => true,
        "off" | "false" => return Ok(None),
        o => {
            return Err(Error::config(
                "stream",
                format!("unknown '{o}' (expected auto, on, off)"),
            ));
        }
    };
    let path = Path::new(data);
    let streamable = match Format::of(path) {
        Format::Csv => true,
        Format::Parquet => cfg!(feature = "columnar"),
        Format::Ipc => cfg!(feature = "columnar"),
    };
    if is_image_source(data) || !streamable {
        return match forced {
            true => Err(Error::config(
                "--stream",
                format!("'{data}' is not a CSV, Parquet or Arrow IPC file: streaming reads those only"),
            )),
            false => Ok(None),
        };
    }
    if forced {
        return Ok(Some(format!("note: streaming {data} in chunks (--stream)")));
    }
    if !path.is_file() {
        return Ok(None); // the in-memory reader names the problem
    }
    let Some(limit) = available_memory()? else {
        return Ok(None);
    };
    // A file the chunked reader cannot open is left to the in-memory
    // reader, whose errors are the reference.
    let Ok(reader) = ChunkReader::open(path, opts, chunk_bytes()?) else {
        return Ok(None);
    };
    let est = estimate(&reader);
    let peak = (est.matrix_bytes as f64 * LOAD_PEAK) as u64;
    Ok((peak > limit.bytes).then(|| {
        format!(
            "note: streaming {data} in chunks: its f32 matrix would take about {} (about {} rows x {} columns, \
             one-hot columns not counted) and loading it about {}, more than the {} available ({}); \
             --no-stream loads it anyway",
            mb(est.matrix_bytes),
            est.rows,
            est.cols,
            mb(peak),
            mb(limit.bytes),
            limit.source
        )
    }))
}

/// Bytes of text per chunk: [`CHUNK`], or `BPNET_STREAM_CHUNK` (a size
/// such as `256K`) when set, e.g. to bound memory further or in tests.
/// A value that is not a size, or outside 1 KiB..=1 GiB, is an error (it
/// was ignored, and `1T` aborted on reserving a terabyte).
pub fn chunk_bytes() -> Result<usize> {
    let Ok(v) = std::env::var("BPNET_STREAM_CHUNK") else {
        return Ok(CHUNK);
    };
    let bad = |why: &str| Error::config("BPNET_STREAM_CHUNK", format!("'{v}' {why}"));
    let bytes = super::parse_bytes(&v).map_err(|_| bad("is not a size (e.g. 256K, 4M)"))?;
    match bytes {
        1024..=0x4000_0000 => Ok(bytes as usize),
        _ => Err(bad("is outside 1K..=1G")),
    }
}

/// Whether `bpnet train` with `cfg` streams its data (see [`choose_stream`]).
pub fn stream_choice(cfg: &TrainConfig) -> Result<Option<String>> {
    choose_stream(&cfg.data, &cfg.stream, &csv_options(cfg)?)
}

/// [`stream_choice`] for a resumed run: with `auto`, the mode its
/// checkpoint trained in (`streamed`), not the memory available now,
/// which had chosen the other mode and refused the checkpoint as one of
/// other rows; `on` and `off` as given.
pub fn resume_stream_choice(cfg: &TrainConfig, streamed: bool) -> Result<Option<String>> {
    match (cfg.stream.as_str(), streamed) {
        ("auto" | "", true) => Ok(Some(format!(
            "note: streaming {} in chunks, as its checkpoint was trained",
            cfg.data
        ))),
        ("auto" | "", false) => Ok(None),
        _ => stream_choice(cfg),
    }
}

/// The training file of `cfg` opened for streaming, its preprocessing
/// fitted on the training rows (`--limit`, `--test-split` and
/// `--val-split` by [`RowSplit`]); chunks of `chunk` bytes.
pub fn open_train_stream(cfg: &TrainConfig, chunk: usize) -> Result<StreamFile> {
    crate::workflow::data::check_fraction("val-split", cfg.val_split)?;
    crate::workflow::data::check_fraction("test-split", cfg.test_split)?;
    let split = RowSplit {
        test: if cfg.test.is_empty() { cfg.test_split } else { 0.0 },
        val: cfg.val_split,
        seed: cfg.seed,
        limit: cfg.limit,
    };
    let spec = preprocess_spec(cfg)?;
    StreamFile::fit(Path::new(&cfg.data), &csv_options(cfg)?, &spec, split, chunk)
}

/// The shuffle buffer's rows: `asked` when not 0, else as many rows of
/// `width` features (and `targets` values) as a quarter of the available
/// memory holds, at most [`MAX_BUFFER`]; with the reason, for a note.
pub fn buffer_rows(asked: usize, width: usize, targets: usize) -> Result<(usize, String)> {
    if asked > 0 {
        return Ok((asked, "--shuffle-buffer".into()));
    }
    let row = (4 * (width + targets) + 8) as u64;
    Ok(match available_memory()? {
        Some(l) => {
            let rows = (l.bytes / 4 / row).clamp(1, MAX_BUFFER as u64) as usize;
            (
                rows,
                format!(
                    "a quarter of the {} available ({}), at most {MAX_BUFFER} rows",
                    mb(l.bytes),
                    l.source
                ),
            )
        }
        None => (MAX_BUFFER, "the default".into()),
    })
}

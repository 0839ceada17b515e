//! A progress bar while a large CSV is read (bytes, rows, rows/s), on
//! stderr when it is a terminal; nothing otherwise or with `--quiet`. The
//! engine reports through [`bpnet::data::table::set_read_progress`].

use bpnet::data::table::{ReadProgress, set_read_progress};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Files smaller than this are read without a bar.
const MIN_BYTES: u64 = 32 << 20;

/// Shows a bar for each large file read from now on (unless `quiet` or
/// stderr is not a terminal).
pub fn install(quiet: bool) {
    if quiet || !std::io::stderr().is_terminal() {
        return;
    }
    let state: Mutex<Option<(ProgressBar, Instant)>> = Mutex::new(None);
    set_read_progress(Some(Arc::new(move |p: &ReadProgress| {
        if p.total < MIN_BYTES {
            return;
        }
        let Ok(mut state) = state.lock() else {
            return;
        };
        let (bar, start) = state.get_or_insert_with(|| {
            let bar = ProgressBar::new(p.total);
            let style =
                ProgressStyle::with_template("reading {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            (bar, Instant::now())
        });
        bar.set_position(p.bytes.min(p.total));
        let secs = start.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("{} rows, {:.0} rows/s", p.rows, p.rows as f64 / secs));
        if p.done {
            bar.finish_and_clear();
            *state = None;
        }
    })));
}

//! Times `bpnet::workflow::load` alone (read, validation split,
//! preprocessing fit and encoding) on a table, `REPS` times in one process,
//! on all cores: the data path without training, for a profiler.
//!
//!   cargo run --release -p bpnet --features columnar --example load_profile -- FILE [REPS]
//!
//! Not a comparison with other readers: `bench/csv_ingest.sh` is.
fn main() {
    let mut args = std::env::args().skip(1);
    let Some(data) = args.next() else {
        eprintln!("usage: load_profile FILE [REPS]");
        std::process::exit(2);
    };
    let reps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    bpnet::parallel::set_threads(bpnet::parallel::available());
    let cfg = bpnet::workflow::TrainConfig {
        data,
        ..Default::default()
    };
    for _ in 0..reps {
        let t = std::time::Instant::now();
        match bpnet::workflow::load(&cfg) {
            Ok(d) => println!("{:.3} s, {} training rows", t.elapsed().as_secs_f64(), d.train.len()),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}

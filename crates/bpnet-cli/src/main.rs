//! The `bpnet` command-line tool: a thin shell over the library.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Backpropagation networks with batch normalization.
#[derive(Parser, Debug)]
#[command(name = "bpnet", version, about, long_about = None)]
struct Cli {
    /// Threads for matrix products and updates (default and most: every core).
    /// Only work big enough to profit is split; results are bit-identical for
    /// any count on one machine.
    #[arg(long, global = true, value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a network on a CSV file or MNIST and write a model file.
    ///
    /// Examples:
    ///   bpnet train --data data/iris.csv --target species --out iris.safetensors
    ///   bpnet train --data mnist --hidden 100,100,100 --activation sigmoid --epochs 1
    ///   bpnet train --config run.toml --lr 0.01     (flags override the file)
    ///   bpnet train --data houses.csv --target price --print-config > run.toml
    #[command(verbatim_doc_comment)]
    Train(Box<cli::train::TrainArgs>),
    /// Search network and training settings by k-fold cross-validation (TPE), refit the best.
    ///
    /// Example: bpnet tune --data houses.csv --target price --trials 40 --cv 5 --out houses.safetensors
    #[command(verbatim_doc_comment)]
    Tune(cli::tune::TuneArgs),
    /// Metrics of a model file on labelled data.
    ///
    /// Example: bpnet eval --model iris.safetensors --data data/iris.csv
    #[command(verbatim_doc_comment)]
    Eval(cli::eval::EvalArgs),
    /// Predictions of a model file for new rows, as CSV.
    ///
    /// Example: bpnet predict --model iris.safetensors --data new.csv --output predictions.csv
    #[command(verbatim_doc_comment)]
    Predict(cli::predict::PredictArgs),
    /// Architecture, parameters, preprocessing and training config of a model file.
    ///
    /// Example: bpnet inspect iris.safetensors
    #[command(verbatim_doc_comment)]
    Inspect(cli::inspect::InspectArgs),
    /// Write a model file as an ONNX model (preprocessing, layers, optional probabilities).
    ///
    /// Example: bpnet export --model iris.safetensors --onnx iris.onnx --fold-bn --probabilities
    #[command(verbatim_doc_comment)]
    Export(cli::export::ExportArgs),
    /// Make a bpnet model file from a PyTorch nn.Sequential state dict saved with safetensors.
    ///
    /// Example: bpnet import --torch mlp.safetensors --spec linear,bn,relu,linear --out mlp-bpnet.safetensors
    #[command(verbatim_doc_comment)]
    Import(cli::import::ImportArgs),
    /// Learning-rate range test: loss against an exponentially growing rate, and two suggested rates.
    ///
    /// Example: bpnet lr-find --data mnist --hidden 100,100 --optimizer sgd --figure lr_find
    #[command(verbatim_doc_comment)]
    LrFind(Box<cli::lr_find::LrFindArgs>),
    /// Time training steps (or inference) on random data.
    ///
    /// Example: bpnet bench --dims 784,100,100,100,10 --activation sigmoid --batch-norm --batch-size 60 --steps 2000 --json
    #[command(verbatim_doc_comment)]
    Bench(cli::bench::BenchArgs),
    /// What batch normalization does: the paper's MNIST experiment and beyond.
    ///
    /// Examples:
    ///   bpnet experiment bn-mnist --quick          (seconds; Figure 1 of the paper)
    ///   bpnet experiment all --out docs/experiments (the full run, every study)
    ///   bpnet experiment sweep --steps 5000        (learning rate x init std grid)
    #[command(verbatim_doc_comment)]
    Experiment(Box<cli::experiment::ExperimentArgs>),
    /// Loss and metric curves (and diagnostics) of a training history, as PNG and SVG.
    ///
    /// Example: bpnet plot model.history.json        (writes model.plots/curves.png, ...)
    #[command(verbatim_doc_comment)]
    Plot(cli::plot::PlotArgs),
}

fn main() -> ExitCode {
    restore_sigpipe();
    report_output_errors();
    tune_allocator();
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    bpnet::set_threads(thread_count(cli.threads));
    let ranked = matches!(
        cli.command,
        Command::Train(_) | Command::Bench(_) | Command::Experiment(_)
    );
    let comm = match cli::dist::world(ranked) {
        Ok(c) => c,
        Err(e) => return cli::dist::report(&bpnet::comm::Single, &e),
    };
    if comm.size() > 1 && !ranked {
        let e = bpnet::Error::Comm(
            "only `bpnet train`, `bpnet experiment` and `bpnet bench` run on several processes; start other commands without mpirun".into(),
        );
        return cli::dist::report(&*comm, &e);
    }
    let result = match cli.command {
        Command::Train(args) => cli::train::run(&args, &comm).map_err(|e| cli::config::in_file(e, args.config_file())),
        Command::Tune(args) => cli::tune::run(&args),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Predict(args) => cli::predict::run(&args),
        Command::Inspect(args) => cli::inspect::run(&args),
        Command::Bench(args) => cli::bench::run(&args, &comm),
        Command::LrFind(args) => cli::lr_find::run(&args),
        Command::Export(args) => cli::export::run(&args),
        Command::Import(args) => cli::import::run(&args),
        Command::Experiment(args) => cli::experiment::run(&args, &comm),
        Command::Plot(args) => cli::plot::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::dist::report(&*comm, &e),
    }
}

/// The command line, parsed (`lr-find --help` lists only the options it takes).
fn parse() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let cmd = Cli::command().mut_subcommand("lr-find", cli::lr_find::hide_training_only);
    Cli::from_arg_matches(&cmd.try_get_matches()?)
}

/// `--threads`, at most the cores this process may use (more would only
/// spin against each other; the library allows it, the tool does not).
fn thread_count(asked: Option<u32>) -> usize {
    let cores = bpnet::parallel::available();
    match asked.map(|t| t as usize) {
        Some(t) if t > cores => {
            eprintln!("note: --threads {t} is more than the {cores} cores available; using {cores}");
            cores
        }
        Some(t) => t,
        None => cores,
    }
}

/// Help and version go to stdout as usual; a usage mistake is one line on
/// stderr (clap's first line plus a pointer to --help) and exit code 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    // Under mpirun every rank parses the same command line: rank 0 alone
    // prints (help, the version and each usage error came once per rank).
    let quiet = cli::dist::launched_rank().is_some_and(|r| r != 0);
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        if !quiet {
            let _ = e.print();
        }
        return ExitCode::SUCCESS;
    }
    // clap's message up to its usage block, on one line (some messages put
    // the argument names on the lines after a colon).
    let text = e.to_string();
    let message = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ");
    let message = if message.is_empty() {
        "invalid arguments"
    } else {
        &message
    };
    if !quiet {
        eprintln!("error: {} (see bpnet --help)", message.trim_start_matches("error: "));
    }
    ExitCode::from(2)
}

/// Keeps memory that glibc's allocator frees for reuse instead of handing
/// it back to the system at once: blocks below 32 MiB come from its heaps
/// (not from a mapping of their own, unmapped when freed), and the heaps
/// shrink only past 256 MiB of free space. Each page handed back and
/// asked for again costs a page fault; loading a 1,000,000 x 21 Parquet
/// file took 0.95x the time this way (docs/PERFORMANCE.md). The data path
/// still hands released table rows back itself (`malloc_trim`), so the
/// peak memory of a load stays within a few MB of what it was.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called once at start-up before any thread exists; mallopt
    // takes two integers and only sets the allocator's parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

/// Standard output that cannot be written (a redirect to a full disk):
/// `println!` panics then; this makes it one line on stderr and exit code 1
/// instead of a panic message. Other panics keep the default report.
fn report_output_errors() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let message = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied());
        match message.and_then(|m| m.strip_prefix("failed printing to stdout: ")) {
            Some(reason) => {
                eprintln!("error: standard output: {reason}");
                std::process::exit(1);
            }
            None => default(info),
        }
    }));
}

/// Lets `bpnet ... | head` end quietly: Rust ignores SIGPIPE, which turns a
/// closed pipe into a panic in `println!`; the default action ends the process.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called once at start-up before any thread exists; SIG_DFL is a
    // valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

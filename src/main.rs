//! The `bpnet` command-line tool: a thin shell over the library.

mod cli;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Backpropagation networks with batch normalization.
#[derive(Parser, Debug)]
#[command(name = "bpnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a network on MNIST and report test accuracy.
    ///
    /// Example: bpnet train --data mnist --hidden 100,100,100 --activation sigmoid --epochs 1
    Train(cli::train::TrainArgs),
    /// Time training steps (or inference) on random data.
    ///
    /// Example: bpnet bench --dims 784,100,100,100,10 --activation sigmoid --batch-norm --batch-size 60 --steps 2000 --json
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => cli::train::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

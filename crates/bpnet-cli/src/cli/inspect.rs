//! `bpnet inspect`: what a model file holds.

use bpnet::Result;
use bpnet::io::{describe, load_model};
use serde_json::json;
use std::path::PathBuf;

/// Options of `bpnet inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Model file.
    model: PathBuf,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Runs `bpnet inspect`.
pub fn run(a: &InspectArgs) -> Result<()> {
    let mut file = load_model(&a.model)?;
    let (members, combine) = super::ensemble::members_of(&file, &a.model)?;
    if members.len() > 1 {
        println!(
            "ensemble of {} networks of the architecture below, predictions averaged ({combine:?}); \
             the layers and parameter counts below are one member's",
            members.len()
        );
    }
    println!("{}", describe(&file));
    if a.json {
        let params = file.model.num_params() * members.len();
        println!(
            "{}",
            json!({"model": a.model, "parameters": params, "architecture": serde_json::to_value(&file.spec).ok(), "metadata": file.metadata})
        );
    }
    Ok(())
}

//! `bpnet inspect`: what a model file holds.

use bpnet::Result;
use bpnet::io::{describe, load_model, member_specs};
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
    let file = load_model(&a.model)?;
    let specs = member_specs(&file, &a.model)?;
    let (mut members, combine) = super::ensemble::members_of(&file, &a.model)?;
    if members.len() > 1 && specs.iter().all(|s| *s == file.spec) {
        println!(
            "ensemble of {} networks of the architecture below, predictions averaged ({combine:?}); \
             the layers and parameter counts below are one member's",
            members.len()
        );
    } else if members.len() > 1 {
        println!(
            "blend of {} networks, predictions averaged ({combine:?}); the layers and parameter counts below are member 0's",
            members.len()
        );
        for (k, (spec, m)) in specs.iter().zip(members.iter_mut()).enumerate() {
            println!(
                "member {k}: {} {:?}, batch norm {:?}, dropout {}, {} parameters",
                spec.dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("-"),
                spec.activation,
                spec.batch_norm,
                spec.dropout,
                m.num_params()
            );
        }
    }
    if file.metadata.contains_key("resume") {
        // A checkpoint is a model file too; say what else it holds.
        let values: usize = file.extra.values().map(Vec::len).sum();
        println!(
            "training checkpoint (bpnet train --resume continues it): besides the model, {} tensors of optimizer \
             buffers and best weights ({values} values) and the loop's state",
            file.extra.len()
        );
    }
    println!("{}", describe(&file));
    if a.json {
        let params: usize = members.iter_mut().map(|m| m.num_params()).sum();
        println!(
            "{}",
            json!({"model": a.model.to_string_lossy(), "parameters": params, "networks": members.len(),
                   "architecture": serde_json::to_value(&file.spec).ok(),
                   "member_architectures": serde_json::to_value(&specs).ok(), "metadata": file.metadata})
        );
    }
    Ok(())
}

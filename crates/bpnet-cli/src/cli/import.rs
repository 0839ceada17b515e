//! `bpnet import`: a PyTorch `nn.Sequential` state dict (safetensors) as a
//! bpnet model file.

use bpnet::io::{Kind, OutputPlan, TorchImportOptions, import_torch, parse_modules, save_model};
use bpnet::{Activation, BatchNormConfig, Error, Momentum, Result};
use serde_json::{Map, json};
use std::path::PathBuf;

/// Options of `bpnet import`.
#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// safetensors file written by `safetensors.torch.save_file(model.state_dict(), path)`.
    #[arg(long)]
    torch: PathBuf,
    /// Every module of the nn.Sequential in order, e.g. linear,bn,relu,dropout:0.2,linear
    /// [default: inferred from the tensors, with --activation].
    #[arg(long)]
    spec: Option<String>,
    /// Hidden activation when inferring the modules: relu, sigmoid, tanh, gelu, softplus, leaky_relu[:slope], elu[:alpha], identity.
    #[arg(long, conflicts_with = "spec")]
    activation: Option<String>,
    /// Rate of inferred dropout modules (affects only further training) [default: 0.5].
    #[arg(long, conflicts_with = "spec")]
    dropout: Option<f64>,
    /// BatchNorm1d eps (not stored in a state dict).
    #[arg(long, default_value_t = 1e-5)]
    bn_eps: f64,
    /// BatchNorm1d momentum in PyTorch's convention (running = (1-m) running + m batch), or `none` for a cumulative average.
    #[arg(long, default_value = "0.1")]
    bn_momentum: String,
    /// bpnet model file to write.
    #[arg(long)]
    out: PathBuf,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Replace an existing --out file even when it is not a bpnet model (the
    /// --torch file is never replaced).
    #[arg(long)]
    overwrite: bool,
}

/// Runs `bpnet import`.
pub fn run(a: &ImportArgs) -> Result<()> {
    let mut plan = OutputPlan::new(a.overwrite);
    plan.input("--torch", &a.torch).output("--out", &a.out, Kind::Model);
    plan.check()?;
    let momentum = match a.bn_momentum.to_ascii_lowercase().as_str() {
        "none" | "cumulative" => Momentum::Cumulative,
        m => Momentum::Torch(
            m.parse::<f64>()
                .map_err(|_| Error::config("--bn-momentum", format!("'{m}' is not a number or `none`")))?,
        ),
    };
    let bn = BatchNormConfig {
        eps: a.bn_eps,
        momentum,
        ..BatchNormConfig::default()
    };
    bn.validate()?;
    let dropout = a.dropout.unwrap_or(0.5);
    if !(0.0..1.0).contains(&dropout) {
        return Err(Error::config("--dropout", format!("{dropout} is not in [0, 1)")));
    }
    let options = TorchImportOptions {
        modules: a.spec.as_deref().map(parse_modules).transpose()?,
        activation: a.activation.as_deref().map(str::parse::<Activation>).transpose()?,
        dropout,
        bn,
    };
    let imported = import_torch(&a.torch, &options)?;
    let source = a
        .torch
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let mut sections = Map::new();
    sections.insert(
        "imported".into(),
        json!({
            "from": "pytorch nn.Sequential state_dict (safetensors)",
            "file": source,
            "modules": imported.modules.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>(),
            "tensors": imported.names.iter().map(|(ours, theirs)| json!([ours, theirs])).collect::<Vec<_>>(),
            "notes": imported.notes,
        }),
    );
    save_model(&a.out, &imported.spec, &imported.model, &sections)?;
    for note in &imported.notes {
        println!("note: {note}");
    }
    println!("{}", imported.model.summary());
    println!(
        "wrote {} ({} tensors imported from {})",
        a.out.display(),
        imported.names.len(),
        a.torch.display()
    );
    if a.json {
        println!(
            "{}",
            json!({"out": a.out.to_string_lossy(), "architecture": serde_json::to_value(&imported.spec).ok(),
                   "tensors": imported.names.len(), "notes": imported.notes})
        );
    }
    Ok(())
}

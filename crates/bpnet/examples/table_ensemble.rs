//! A table to a saved model and predictions, from Rust, with the defaults
//! of `bpnet train`: the bundled iris table, 20% held out for testing, an
//! ensemble of 5 networks (the default on small tables), its test metrics,
//! one model file (which `bpnet predict` and the Python package read), and
//! the file loaded back to predict the first test rows.
//!
//!     cargo run --release -p bpnet --example table_ensemble

use bpnet::io::{ensemble_members, load_model, save_ensemble};
use bpnet::workflow::{TrainConfig, ensemble_metrics, load, metadata, train_ensemble};
use bpnet::{Combine, EnsembleNet, Result, train::argmax, train::default_loss};

fn main() -> Result<()> {
    let cfg = TrainConfig {
        data: concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/iris.csv").into(),
        test_split: 0.2,
        ..TrainConfig::default()
    };
    let data = load(&cfg)?;
    let trained = train_ensemble(&cfg, &data, &mut |_| Ok(()))?;
    println!(
        "{} networks, member 0 trained {} epochs (best {})",
        trained.members.len(),
        trained.history.epochs.len(),
        trained.history.best_epoch
    );
    let test = data.test.as_ref().expect("a test split");
    let net = EnsembleNet::new(&trained.members, trained.combine)?;
    let metrics = ensemble_metrics(&net, default_loss(test), test, &data.pipeline)?;
    println!("test: {}", metrics.summary);

    let dir = std::env::temp_dir().join(format!("bpnet-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| bpnet::Error::State(e.to_string()))?;
    let path = dir.join("iris.safetensors");
    let trained_cfg = TrainConfig {
        ensemble: trained.members.len(),
        ..cfg.clone()
    };
    let meta = metadata(&trained_cfg, &data, Some(&trained.history), Some(&metrics.json));
    save_ensemble(&path, &trained.spec, &trained.members, trained.combine, &meta)?;

    let file = load_model(&path)?;
    let (members, combine) = ensemble_members(&file, &path, Combine::Mean)?;
    let again = EnsembleNet::new(&members, combine)?;
    let names = data.pipeline.class_names().unwrap_or_default();
    let out = again.forward(&test.features)?;
    for r in 0..out.rows().min(5) {
        println!(
            "test row {r}: {}",
            names.get(argmax(out.row(r))).map_or("?", String::as_str)
        );
    }
    println!("wrote {}", path.display());
    Ok(())
}

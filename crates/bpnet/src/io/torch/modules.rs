//! The modules of a PyTorch `nn.Sequential`: parsed from a spec string,
//! or inferred from which indices hold tensors, and mapped onto a bpnet
//! [`ModelSpec`] block pattern.

use crate::error::{Error, Result};
use crate::layers::Activation;
use crate::model::BnPlacement;

/// One module of a PyTorch `nn.Sequential`, in the terms bpnet can import.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TorchModule {
    /// `nn.Linear`.
    Linear,
    /// `nn.BatchNorm1d`.
    BatchNorm,
    /// An element-wise activation module (`nn.ReLU`, `nn.Sigmoid`, ...).
    Activation(Activation),
    /// `nn.Dropout(p)`.
    Dropout(f64),
}

impl TorchModule {
    /// Whether the module has entries in a state dict.
    pub fn has_tensors(self) -> bool {
        matches!(self, TorchModule::Linear | TorchModule::BatchNorm)
    }

    fn name(self) -> String {
        match self {
            TorchModule::Linear => "Linear".into(),
            TorchModule::BatchNorm => "BatchNorm1d".into(),
            TorchModule::Activation(a) => a.name(),
            TorchModule::Dropout(p) => format!("Dropout({p})"),
        }
    }
}

/// Parses a comma-separated module list, one entry per index of the
/// `nn.Sequential`, e.g. `linear,bn,relu,dropout:0.2,linear`.
///
/// Entries (case-insensitive): `linear`; `bn`, `batchnorm` or `batchnorm1d`;
/// `dropout[:p]` (PyTorch's default p = 0.5); any activation bpnet knows by
/// its bpnet or PyTorch name: `relu`, `sigmoid`, `tanh`, `gelu`, `softplus`,
/// `identity`, `leaky_relu[:slope]` / `leakyrelu[:slope]` (default 0.01),
/// `elu[:alpha]` (default 1).
pub fn parse_modules(spec: &str) -> Result<Vec<TorchModule>> {
    spec.split(',')
        .map(|item| {
            let item = item.trim();
            let (name, param) = item.split_once(':').unwrap_or((item, ""));
            let name = name.to_ascii_lowercase().replace(['-', '_'], "");
            match name.as_str() {
                "linear" if param.is_empty() => Ok(TorchModule::Linear),
                "bn" | "batchnorm" | "batchnorm1d" if param.is_empty() => Ok(TorchModule::BatchNorm),
                "dropout" => {
                    let p = if param.is_empty() {
                        Ok(0.5)
                    } else {
                        param.parse::<f64>()
                    };
                    match p {
                        Ok(p) if (0.0..1.0).contains(&p) => Ok(TorchModule::Dropout(p)),
                        _ => Err(Error::config(
                            "--spec",
                            format!("dropout rate in '{item}' is not in [0, 1)"),
                        )),
                    }
                }
                _ => {
                    // PyTorch's LeakyReLU is bpnet's leaky_relu.
                    let name = if name == "leakyrelu" {
                        "leaky_relu".to_string()
                    } else {
                        name
                    };
                    let canonical = if param.is_empty() {
                        name
                    } else {
                        format!("{name}:{param}")
                    };
                    canonical
                        .parse::<Activation>()
                        .map(TorchModule::Activation)
                        .map_err(|_| {
                            Error::config(
                                "--spec",
                                format!(
                                    "unknown module '{item}' (expected linear, bn, dropout[:p], or an activation: \
                                 relu, sigmoid, tanh, gelu, softplus, identity, leaky_relu[:slope], elu[:alpha])"
                                ),
                            )
                        })
                }
            }
        })
        .collect()
}

/// Infers the module list from the indices that hold tensors: `kinds[i]` is
/// `Some(Linear | BatchNorm)` for an index with tensors and `None` for one
/// without. A run of tensor-less indices is read from its context: between
/// a Linear (or a BN right after it) and the next Linear, one index is the
/// activation and a second one dropout; between a Linear and a BN, one index
/// is the activation (BN after the activation); between such a BN and the
/// next Linear, one index is dropout. Anything else is ambiguous.
pub fn infer_modules(
    kinds: &[Option<TorchModule>],
    activation: Option<Activation>,
    dropout: f64,
) -> Result<Vec<TorchModule>> {
    let ambiguous = |i: usize, why: &str| {
        Error::config(
            "architecture",
            format!("cannot infer the module at index {i} of the nn.Sequential: {why}; give the modules with --spec"),
        )
    };
    let mut out = Vec::with_capacity(kinds.len());
    let mut i = 0;
    while i < kinds.len() {
        let Some(kind) = kinds[i] else {
            let start = i;
            while i < kinds.len() && kinds[i].is_none() {
                i += 1;
            }
            let gap = i - start;
            let prev = out.last().copied();
            let next = kinds.get(i).copied().flatten();
            let act = || {
                activation.map(TorchModule::Activation).ok_or_else(|| {
                    Error::config(
                        "--activation",
                        format!(
                            "index {start} of the nn.Sequential holds no tensors, so it is an activation (or \
                             dropout) whose kind a state dict does not record; say which with --activation \
                             (e.g. relu) or give every module with --spec"
                        ),
                    )
                })
            };
            let after_bn_after_act = prev == Some(TorchModule::BatchNorm)
                && out.len() >= 2
                && matches!(out[out.len() - 2], TorchModule::Activation(_));
            match (prev, next, gap) {
                (None, _, _) => return Err(ambiguous(start, "tensor-less modules come before the first Linear")),
                (Some(_), None, _) => {} // after the last Linear: an output module bpnet leaves to its loss
                (Some(_), Some(TorchModule::Linear), 1) if after_bn_after_act => {
                    out.push(TorchModule::Dropout(dropout))
                }
                (Some(_), Some(TorchModule::Linear), 1) => out.push(act()?),
                (Some(_), Some(TorchModule::Linear), 2) if !after_bn_after_act => {
                    out.push(act()?);
                    out.push(TorchModule::Dropout(dropout));
                }
                (Some(TorchModule::Linear), Some(TorchModule::BatchNorm), 1) => out.push(act()?),
                _ => {
                    return Err(ambiguous(
                        start,
                        &format!("{gap} modules without tensors in a row here"),
                    ));
                }
            }
            continue;
        };
        out.push(kind);
        i += 1;
    }
    Ok(out)
}

/// The bpnet block pattern of a module list.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocks {
    /// Index (into the module list) of every Linear module.
    pub linears: Vec<usize>,
    /// Batch-norm placement in the hidden blocks.
    pub placement: BnPlacement,
    /// The hidden activation (identity when there is none).
    pub activation: Activation,
    /// Dropout rate of the hidden blocks (0 = none).
    pub dropout: f64,
}

/// Checks that `modules` is `Linear [BN] act [BN] [Dropout]` repeated with
/// the same pattern and ending in a Linear, as bpnet's
/// [`ModelSpec`](crate::ModelSpec) builds it.
pub fn blocks(modules: &[TorchModule]) -> Result<Blocks> {
    let linears: Vec<usize> = (0..modules.len())
        .filter(|&i| modules[i] == TorchModule::Linear)
        .collect();
    let describe = |m: &[TorchModule]| m.iter().map(|x| x.name()).collect::<Vec<_>>().join(", ");
    let (&first, &last) = match (linears.first(), linears.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(Error::config("architecture", "the model has no Linear layer")),
    };
    if first != 0 {
        return Err(Error::config(
            "architecture",
            format!(
                "bpnet networks start with a Linear layer, this one with {}",
                describe(&modules[..first])
            ),
        ));
    }
    if last + 1 != modules.len() {
        return Err(Error::config(
            "architecture",
            format!(
                "bpnet's output layer is a Linear layer (its loss applies softmax or sigmoid), but {} follow the \
                 last Linear; leave them out of --spec (the imported model then outputs the last Linear's values)",
                describe(&modules[last + 1..])
            ),
        ));
    }
    let mut pattern: Option<(BnPlacement, Activation, f64)> = None;
    for pair in linears.windows(2) {
        let inner = &modules[pair[0] + 1..pair[1]];
        let this = block_pattern(inner).ok_or_else(|| {
            Error::config(
                "architecture",
                format!(
                    "the modules between Linear layers at {} and {} ({}) are not one of bpnet's hidden blocks: \
                     [BN] activation [BN] [Dropout], with at most one BN",
                    pair[0],
                    pair[1],
                    describe(inner)
                ),
            )
        })?;
        match pattern {
            None => pattern = Some(this),
            Some(p) if p == this => {}
            Some(p) => {
                return Err(Error::config(
                    "architecture",
                    format!(
                        "bpnet uses one pattern for every hidden block, but the block after index {} differs \
                         ({:?}, {}, dropout {}) from the first ({:?}, {}, dropout {})",
                        pair[0],
                        this.0,
                        this.1.name(),
                        this.2,
                        p.0,
                        p.1.name(),
                        p.2
                    ),
                ));
            }
        }
    }
    let (placement, activation, dropout) = pattern.unwrap_or((BnPlacement::None, Activation::Identity, 0.0));
    Ok(Blocks {
        linears,
        placement,
        activation,
        dropout,
    })
}

/// `(placement, activation, dropout)` of the modules between two Linear
/// layers, if they form a bpnet hidden block.
fn block_pattern(inner: &[TorchModule]) -> Option<(BnPlacement, Activation, f64)> {
    let (inner, dropout) = match inner.split_last() {
        Some((TorchModule::Dropout(p), rest)) => (rest, *p),
        _ => (inner, 0.0),
    };
    use TorchModule::{Activation as Act, BatchNorm as Bn};
    match inner {
        [] => Some((BnPlacement::None, Activation::Identity, dropout)),
        [Act(a)] => Some((BnPlacement::None, *a, dropout)),
        [Bn] => Some((BnPlacement::BeforeActivation, Activation::Identity, dropout)),
        [Bn, Act(a)] => Some((BnPlacement::BeforeActivation, *a, dropout)),
        [Act(a), Bn] => Some((BnPlacement::AfterActivation, *a, dropout)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TorchModule::{BatchNorm as Bn, Dropout, Linear};

    const RELU: TorchModule = TorchModule::Activation(Activation::Relu);

    fn infer(kinds: &[Option<TorchModule>]) -> Result<Vec<TorchModule>> {
        infer_modules(kinds, Some(Activation::Relu), 0.5)
    }

    #[test]
    fn gaps_are_read_from_their_context() {
        // Linear, act, BN, dropout, Linear: BN after the activation.
        let m = infer(&[Some(Linear), None, Some(Bn), None, Some(Linear)]).unwrap();
        assert_eq!(m, [Linear, RELU, Bn, Dropout(0.5), Linear]);
        assert_eq!(blocks(&m).unwrap().placement, BnPlacement::AfterActivation);
        // Linear, BN, act, dropout, Linear: BN before the activation.
        let m = infer(&[Some(Linear), Some(Bn), None, None, Some(Linear)]).unwrap();
        assert_eq!(m, [Linear, Bn, RELU, Dropout(0.5), Linear]);
        // Adjacent Linear layers: no activation between them.
        let m = infer(&[Some(Linear), Some(Linear)]).unwrap();
        assert_eq!(blocks(&m).unwrap().activation, Activation::Identity);
    }

    #[test]
    fn ambiguous_layouts_are_refused() {
        let three = infer(&[Some(Linear), None, None, None, Some(Linear)])
            .unwrap_err()
            .to_string();
        assert!(three.contains("index 1") && three.contains("--spec"), "{three}");
        let leading = infer(&[None, Some(Linear)]).unwrap_err().to_string();
        assert!(leading.contains("before the first Linear"), "{leading}");
        let no_act = infer_modules(&[Some(Linear), None, Some(Linear)], None, 0.5)
            .unwrap_err()
            .to_string();
        assert!(no_act.contains("--activation"), "{no_act}");
    }

    #[test]
    fn blocks_must_share_one_pattern() {
        let mixed = [Linear, Bn, RELU, Linear, RELU, Linear];
        assert!(blocks(&mixed).unwrap_err().to_string().contains("one pattern"));
        let two_bn = [Linear, Bn, RELU, Bn, Linear];
        assert!(
            blocks(&two_bn)
                .unwrap_err()
                .to_string()
                .contains("not one of bpnet's hidden blocks")
        );
        let m = parse_modules("linear, BatchNorm1d, GELU, Dropout:0.2, linear").unwrap();
        let b = blocks(&m).unwrap();
        assert_eq!(
            (b.placement, b.activation, b.dropout),
            (BnPlacement::BeforeActivation, Activation::Gelu, 0.2)
        );
        assert!(parse_modules("dropout:1.5").is_err());
    }
}

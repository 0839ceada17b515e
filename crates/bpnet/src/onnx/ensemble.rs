//! ONNX export of an ensemble: the preprocessing once, one subgraph per
//! member (constants named `m{k}.layers.*`), the members' probabilities
//! (classifiers) or values (regression) averaged by a `Mean` node, then the
//! output scaling. Without a probability head a classifier's output is the
//! averaged prediction as "logits", as [`crate::EnsembleNet`] computes it:
//! `Log(p̄)` (softmax) or `Log(p̄ / (1 - p̄))` (sigmoid), `p̄` clamped as
//! there (`Max`, and `Min` for the sigmoid).

use super::export::{ExportOptions, Head, OnnxModel, export_onnx, finish, graph_input, layers, plan};
use super::graph::{Graph, attr_int};
use crate::ensemble::{Combine, P_MAX, P_MIN};
use crate::error::{Error, Result};
use crate::model::Sequential;

/// Exports the averaged predictor of `members` (of one architecture, or of
/// several with equal input and output widths: a blend) combined by
/// `combine`; one member exports exactly as [`export_onnx`]. Without an
/// explicit opset, the export uses the highest any member needs.
pub fn export_onnx_ensemble(
    members: &[Sequential<f32>],
    combine: Combine,
    options: &ExportOptions,
) -> Result<OnnxModel> {
    let first = members
        .first()
        .ok_or_else(|| Error::config("onnx export", "an ensemble without members"))?;
    if members.len() == 1 {
        return export_onnx(first, options);
    }
    if options.fold_bn {
        let folded = members.iter().map(crate::fold_batch_norm).collect::<Result<Vec<_>>>()?;
        let unfolded = ExportOptions {
            fold_bn: false,
            ..options.clone()
        };
        return export_onnx_ensemble(&folded, combine, &with_meta(&unfolded, "bpnet_fold_bn", "true"));
    }
    // Members of a blend may differ in layers: the opset must suit them all.
    let (mut opset, inputs, outputs) = plan(first, options)?;
    for m in &members[1..] {
        let (o, i, out) = plan(m, options)?;
        if (i, out) != (inputs, outputs) {
            return Err(Error::config("onnx export", "ensemble members of different widths"));
        }
        opset = opset.max(o);
    }
    if combine != Combine::Mean && options.output_scaling.is_some() {
        return Err(Error::config(
            "onnx export",
            "a classifier ensemble with output scaling makes no sense",
        ));
    }
    let mut g = Graph::default();
    let x = graph_input(&mut g, options);
    let mut outs = Vec::with_capacity(members.len());
    for (k, m) in members.iter().enumerate() {
        let prefix = format!("m{k}.");
        let y = layers(&mut g, m, &prefix, &x, opset)?;
        outs.push(match combine {
            Combine::Mean => y,
            Combine::Softmax => g.node(
                "Softmax",
                &format!("{prefix}softmax"),
                &[&y],
                &format!("{prefix}probabilities"),
                vec![attr_int("axis", -1)],
            ),
            Combine::Sigmoid => g.node(
                "Sigmoid",
                &format!("{prefix}sigmoid"),
                &[&y],
                &format!("{prefix}probabilities"),
                Vec::new(),
            ),
        });
    }
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let mean = g.node("Mean", "ensemble/mean", &refs, "ensemble.mean", Vec::new());
    let head = match (combine, options.head) {
        (Combine::Mean, _) => "values",
        (_, Head::Raw) => "raw",
        (Combine::Softmax, _) => "softmax",
        (Combine::Sigmoid, _) => "sigmoid",
    };
    // The averaged probability clamped as `EnsembleNet` clamps it before
    // the logarithm (a class every member gives probability 0 was -inf).
    let out = match (combine, options.head) {
        (Combine::Softmax, Head::Raw) => {
            let low = g.constant("ensemble.p_min", &[], &[P_MIN]);
            let p = g.node("Max", "ensemble/p_min", &[&mean, &low], "ensemble.p", Vec::new());
            g.node("Log", "ensemble/log", &[&p], "ensemble.log", Vec::new())
        }
        (Combine::Sigmoid, Head::Raw) => {
            let (low, high) = (
                g.constant("ensemble.p_min", &[], &[P_MIN]),
                g.constant("ensemble.p_max", &[], &[P_MAX]),
            );
            let p = g.node("Max", "ensemble/p_min", &[&mean, &low], "ensemble.p_low", Vec::new());
            let mean = g.node("Min", "ensemble/p_max", &[&p, &high], "ensemble.p", Vec::new());
            let one = g.constant("ensemble.one", &[], &[1.0]);
            let rest = g.node("Sub", "ensemble/sub", &[&one, &mean], "ensemble.rest", Vec::new());
            let odds = g.node("Div", "ensemble/div", &[&mean, &rest], "ensemble.odds", Vec::new());
            g.node("Log", "ensemble/log", &[&odds], "ensemble.logit", Vec::new())
        }
        _ => mean,
    };
    // The head is part of the graph already; `finish` adds output scaling only.
    let rest = with_meta(
        &ExportOptions {
            head: Head::Raw,
            ..options.clone()
        },
        "bpnet_ensemble",
        &format!(
            "{{\"members\":{},\"combine\":\"{}\"}}",
            members.len(),
            combine_name(combine)
        ),
    );
    let rest = with_meta(&rest, "bpnet_head", head);
    finish(g, first, &rest, out, opset, inputs, outputs)
}

fn combine_name(c: Combine) -> &'static str {
    match c {
        Combine::Softmax => "softmax",
        Combine::Sigmoid => "sigmoid",
        Combine::Mean => "mean",
    }
}

/// `o` with the metadata entry `key` = `value` added (unless `o` sets it).
fn with_meta(o: &ExportOptions, key: &str, value: &str) -> ExportOptions {
    let mut o = o.clone();
    if !o.metadata.iter().any(|(k, _)| k == key) {
        o.metadata.insert(0, (key.to_string(), value.to_string()));
    }
    o
}

//! Where an exported model's f32 input or output holds values coarsely:
//! raw columns (or targets) far from zero against the spread the model was
//! trained on lose precision in f32, which an f64 input keeps. `bpnet
//! export` and Python's `to_onnx` both say so.

use super::{InputScaling, OutputScaling};

/// The spacing of f32 at |`center`| + 4 `scale`, as a fraction of `scale`:
/// how coarsely an f32 holds values of that spread.
fn f32_step(center: f64, scale: f64) -> f64 {
    let top = (center.abs() + 4.0 * scale) as f32;
    f64::from(top.next_up() - top) / scale
}

/// Above this fraction of a scale the rounding of an f32 moves the
/// standardized input (or output) by more than about 5e-6, which a network's
/// gain can make more than the 1e-5 the exported model is tested to (a
/// column of 100 ± 0.1 at 7.6e-5 gave 2e-4); heights of 170 ± 10 cm, at
/// 1.5e-6, are not named.
pub const COARSE: f64 = 1e-5;

/// The targets whose values an f32 output holds only to steps above
/// [`COARSE`] of their spread (targets far from zero): the first, with its
/// steps, and how many more (`None` when none is).
pub fn coarse_outputs(s: &OutputScaling) -> Option<String> {
    let spread = |j: usize| (s.names[j].as_str(), s.center[j], s.scale[j]);
    coarse_list((0..s.center.len()).map(spread), "spread")
}

/// The columns whose raw values an f32 input holds only to steps above
/// [`COARSE`] of their scale (the spacing of f32 at |centre| + 4 scales):
/// e.g. a column near 1e6 that varies by 0.01 is held to steps of 0.0625,
/// 6 of its scales. As [`coarse_outputs`].
pub fn coarse_inputs(s: &InputScaling) -> Option<String> {
    let scale = |j: usize| (s.names[j].as_str(), s.center[j], s.scale[j]);
    coarse_list((0..s.len()).map(scale), "scale")
}

fn coarse_list<'a>(values: impl Iterator<Item = (&'a str, f64, f64)>, of: &str) -> Option<String> {
    let coarse: Vec<String> = values
        .filter_map(|(name, center, scale)| {
            let step = f32_step(center, scale);
            (step > COARSE).then(|| format!("{name} (steps of {:.3e}, {step:.1e} of its {of})", step * scale))
        })
        .collect();
    let more = match coarse.len() {
        0 | 1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    coarse.first().map(|first| format!("{first}{more}"))
}

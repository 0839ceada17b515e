//! The affine pre- and post-processing an exported model carries: feature
//! scaling of raw inputs (with optional filling of missing values) and the
//! mapping of standardized regression outputs back to the targets' units.

use crate::data::preprocess::{FeatureKind, Preprocessor, Task};
use crate::error::{Error, Result};

/// Per-feature input preprocessing `x' = (x - center) / scale`, applied to
/// the raw feature matrix `[batch, features]` before the first layer.
#[derive(Debug, Clone, PartialEq)]
pub struct InputScaling {
    /// Subtracted first, `[features]`.
    pub center: Vec<f64>,
    /// Divided by next, `[features]`; never zero.
    pub scale: Vec<f64>,
    /// Replacement for a missing (NaN) raw value, `[features]`; NaN where a
    /// feature has none (a NaN input then stays NaN).
    pub fill: Vec<f64>,
    /// Name of each feature, `[features]`, recorded in the exported model.
    pub names: Vec<String>,
}

impl InputScaling {
    /// MNIST-style images: raw pixel values 0..=255 divided by 255.
    pub fn images(features: usize) -> Self {
        InputScaling {
            center: vec![0.0; features],
            scale: vec![255.0; features],
            fill: vec![f64::NAN; features],
            names: (0..features).map(|i| format!("pixel{i}")).collect(),
        }
    }

    /// The feature scaling of a fitted CSV [`Preprocessor`]. The exported
    /// model's input is the feature matrix in [`Preprocessor::feature_names`]
    /// order: a numeric column's raw value (NaN for missing when the
    /// preprocessor imputes), and each categorical column already one-hot
    /// encoded (1 for its category, 0 for the others), which passes through
    /// unchanged.
    pub fn from_preprocessor(p: &Preprocessor) -> Self {
        let n = p.n_features();
        let (mut center, mut scale, mut fill) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for f in p.features() {
            match &f.kind {
                FeatureKind::Numeric {
                    center: c,
                    scale: s,
                    fill: v,
                } => {
                    center.push(*c);
                    scale.push(*s);
                    fill.push(v.unwrap_or(f64::NAN));
                }
                FeatureKind::Categorical { categories, .. } => {
                    center.extend(std::iter::repeat_n(0.0, categories.len()));
                    scale.extend(std::iter::repeat_n(1.0, categories.len()));
                    fill.extend(std::iter::repeat_n(f64::NAN, categories.len()));
                }
            }
        }
        InputScaling {
            center,
            scale,
            fill,
            names: p.feature_names(),
        }
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.center.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.center.is_empty()
    }

    /// Whether any feature has a fill value for missing inputs.
    pub(crate) fn has_fill(&self) -> bool {
        self.fill.iter().any(|v| !v.is_nan())
    }

    /// Checks lengths and values.
    pub(crate) fn validate(&self) -> Result<()> {
        let n = self.center.len();
        if self.scale.len() != n || self.fill.len() != n || self.names.len() != n {
            return Err(Error::config(
                "input scaling",
                format!(
                    "{n} centers but {} scales, {} fill values and {} names",
                    self.scale.len(),
                    self.fill.len(),
                    self.names.len()
                ),
            ));
        }
        if let Some((k, s)) = self
            .scale
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s != 0.0))
        {
            return Err(Error::config(
                "input scaling",
                format!("scale {s} of feature {k} is not finite and non-zero"),
            ));
        }
        if let Some((k, c)) = self.center.iter().enumerate().find(|(_, c)| !c.is_finite()) {
            return Err(Error::config(
                "input scaling",
                format!("center {c} of feature {k} is not finite"),
            ));
        }
        Ok(())
    }
}

/// Per-output postprocessing `y = z * scale + center`: standardized
/// regression outputs back in the targets' units.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputScaling {
    /// Added last (the training targets' mean), `[outputs]`.
    pub center: Vec<f64>,
    /// Multiplied first (the training targets' standard deviation), `[outputs]`.
    pub scale: Vec<f64>,
    /// Name of each output (the target columns), `[outputs]`.
    pub names: Vec<String>,
}

impl OutputScaling {
    /// The target de-standardization of a regression [`Preprocessor`]
    /// (exactly what [`Preprocessor::decode_targets`] does); `None` for
    /// classification.
    pub fn from_preprocessor(p: &Preprocessor) -> Result<Option<Self>> {
        if p.task() != Task::Regress {
            return Ok(None);
        }
        // The target statistics are read from the preprocessor's serialized
        // form, which is the model-file format and therefore stable.
        let bad = |what: &str| Error::State(format!("regression preprocessing without {what} for its targets"));
        let json = serde_json::to_value(p).map_err(|e| Error::State(e.to_string()))?;
        let values = &json["target"]["values"];
        let numbers = |key: &str| -> Result<Vec<f64>> {
            values[key]
                .as_array()
                .ok_or_else(|| bad(key))?
                .iter()
                .map(|v| v.as_f64().ok_or_else(|| bad(key)))
                .collect()
        };
        let (center, scale) = (numbers("mean")?, numbers("std")?);
        let names = p.target_columns().to_vec();
        if center.len() != scale.len() || center.len() != names.len() {
            return Err(bad("one mean and one std"));
        }
        Ok(Some(OutputScaling { center, scale, names }))
    }

    /// Checks lengths and values.
    pub(crate) fn validate(&self) -> Result<()> {
        let n = self.center.len();
        if self.scale.len() != n || self.names.len() != n {
            return Err(Error::config(
                "output scaling",
                format!(
                    "{n} centers but {} scales and {} names",
                    self.scale.len(),
                    self.names.len()
                ),
            ));
        }
        if self.center.iter().chain(&self.scale).any(|v| !v.is_finite()) {
            return Err(Error::config("output scaling", "centers and scales must be finite"));
        }
        Ok(())
    }
}

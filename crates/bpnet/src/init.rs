//! Weight initializers, all driven by a seeded random stream.
//!
//! For a Dense layer with weight `[out, in]`: `fan_in = in`, `fan_out = out`.

use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Matrix;
use rand::RngExt;
use rand_distr::StandardNormal;
use rand_xoshiro::Xoshiro256PlusPlus;

/// How a Dense layer's weights (and bias) start.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// `W ~ N(0, std^2)`, bias 0: the "small random Gaussian" of the BN
    /// paper's MNIST experiment.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// Glorot/Xavier uniform: `U(-a, a)`, `a = sqrt(6 / (fan_in + fan_out))`, bias 0.
    XavierUniform,
    /// Glorot/Xavier normal: `N(0, 2 / (fan_in + fan_out))`, bias 0.
    XavierNormal,
    /// He/Kaiming uniform for ReLU: `U(-a, a)`, `a = sqrt(6 / fan_in)`, bias 0.
    HeUniform,
    /// He/Kaiming normal for ReLU: `N(0, 2 / fan_in)`, bias 0.
    HeNormal,
    /// PyTorch's `nn.Linear` default: weight and bias `U(-a, a)`,
    /// `a = 1 / sqrt(fan_in)` (kaiming_uniform with `a = sqrt 5`).
    TorchDefault,
}

impl Init {
    /// Draws a weight `[out, in]` and a bias `[1, out]`.
    pub fn sample<T: Scalar>(self, out: usize, inp: usize, rng: &mut Xoshiro256PlusPlus) -> (Matrix<T>, Matrix<T>) {
        let (fi, fo) = (inp as f64, out as f64);
        let mut w = Matrix::zeros(out, inp);
        let mut b = Matrix::zeros(1, out);
        match self {
            Init::Normal { std } => fill_normal(&mut w, std, rng),
            Init::XavierUniform => fill_uniform(&mut w, (6.0 / (fi + fo)).sqrt(), rng),
            Init::XavierNormal => fill_normal(&mut w, (2.0 / (fi + fo)).sqrt(), rng),
            Init::HeUniform => fill_uniform(&mut w, (6.0 / fi).sqrt(), rng),
            Init::HeNormal => fill_normal(&mut w, (2.0 / fi).sqrt(), rng),
            Init::TorchDefault => {
                let a = 1.0 / fi.sqrt();
                fill_uniform(&mut w, a, rng);
                fill_uniform(&mut b, a, rng);
            }
        }
        (w, b)
    }

    /// Checks a Normal init has a finite, non-negative std.
    pub fn validate(self) -> Result<()> {
        match self {
            Init::Normal { std } if !(std >= 0.0 && std.is_finite()) => Err(Error::config(
                "init",
                format!("normal std {std} is not a non-negative number"),
            )),
            _ => Ok(()),
        }
    }

    /// The name used on the command line and in model files.
    pub fn name(self) -> String {
        match self {
            Init::Normal { std } => format!("normal:{std}"),
            Init::XavierUniform => "xavier_uniform".into(),
            Init::XavierNormal => "xavier_normal".into(),
            Init::HeUniform => "he_uniform".into(),
            Init::HeNormal => "he_normal".into(),
            Init::TorchDefault => "torch".into(),
        }
    }
}

impl std::str::FromStr for Init {
    type Err = Error;

    /// Parses `normal[:std]` (default 0.01), `xavier_uniform`, `xavier_normal`,
    /// `he_uniform`, `he_normal`, `torch`.
    fn from_str(s: &str) -> Result<Self> {
        // Names may use '-' for '_'; the std after ':' is kept as written.
        let (name, std) = match s.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (s, None),
        };
        let lower = name.to_ascii_lowercase().replace('-', "_");
        let init = match (lower.as_str(), std) {
            ("normal", Some(std)) => Init::Normal {
                std: std
                    .trim()
                    .parse()
                    .map_err(|_| Error::config("init", format!("bad std '{std}' in '{s}'")))?,
            },
            (_, Some(_)) => {
                return Err(Error::config(
                    "init",
                    format!("unknown '{s}' (only normal takes a value: normal:STD)"),
                ));
            }
            ("normal", None) => Init::Normal { std: 0.01 },
            ("xavier_uniform" | "glorot_uniform", None) => Init::XavierUniform,
            ("xavier_normal" | "glorot_normal", None) => Init::XavierNormal,
            ("he_uniform" | "kaiming_uniform", None) => Init::HeUniform,
            ("he_normal" | "kaiming_normal", None) => Init::HeNormal,
            ("torch" | "pytorch", None) => Init::TorchDefault,
            _ => {
                return Err(Error::config(
                    "init",
                    format!(
                        "unknown '{s}' (expected normal[:std], xavier_uniform, xavier_normal, he_uniform, he_normal, torch)"
                    ),
                ));
            }
        };
        init.validate()?;
        Ok(init)
    }
}

fn fill_normal<T: Scalar>(m: &mut Matrix<T>, std: f64, rng: &mut Xoshiro256PlusPlus) {
    for v in m.as_mut_slice() {
        let z: f64 = rng.sample(StandardNormal);
        *v = T::from_f64(std * z);
    }
}

fn fill_uniform<T: Scalar>(m: &mut Matrix<T>, a: f64, rng: &mut Xoshiro256PlusPlus) {
    for v in m.as_mut_slice() {
        *v = T::from_f64(rng.random_range(-a..a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn moments(m: &Matrix<f64>) -> (f64, f64, f64) {
        let v = m.as_slice();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        (mean, var.sqrt(), max)
    }

    #[test]
    fn scales_match_their_formulas() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let (out, inp) = (200, 300);
        let cases = [
            (Init::Normal { std: 0.05 }, 0.05),
            (Init::XavierNormal, (2.0 / 500.0f64).sqrt()),
            (Init::HeNormal, (2.0 / 300.0f64).sqrt()),
            (Init::XavierUniform, (6.0 / 500.0f64).sqrt() / 3f64.sqrt()),
            (Init::HeUniform, (6.0 / 300.0f64).sqrt() / 3f64.sqrt()),
            (Init::TorchDefault, 1.0 / 300f64.sqrt() / 3f64.sqrt()),
        ];
        for (init, want_std) in cases {
            let (w, _) = init.sample::<f64>(out, inp, &mut rng);
            let (mean, std, _) = moments(&w);
            assert!(mean.abs() < 0.05 * want_std * 10.0, "{init:?} mean {mean}");
            assert!(
                (std / want_std - 1.0).abs() < 0.02,
                "{init:?} std {std} want {want_std}"
            );
        }
        let (w, b) = Init::TorchDefault.sample::<f64>(out, inp, &mut rng);
        let bound = 1.0 / 300f64.sqrt();
        assert!(moments(&w).2 <= bound && moments(&b).2 <= bound && moments(&b).2 > 0.0);
    }

    #[test]
    fn names_parse_and_a_bad_std_is_quoted_as_written() {
        let ok = |s: &str| s.parse::<Init>().unwrap();
        assert_eq!(ok("normal"), Init::Normal { std: 0.01 });
        assert_eq!(ok("Normal:0.05"), Init::Normal { std: 0.05 });
        assert_eq!(ok("he-normal"), Init::HeNormal);
        assert_eq!(ok("GLOROT_UNIFORM"), Init::XavierUniform);
        let err = |s: &str| s.parse::<Init>().unwrap_err().to_string();
        assert!(
            err("normal:-1").contains("normal std -1 is not"),
            "{}",
            err("normal:-1")
        );
        assert!(err("normal:1e-x").contains("'1e-x'"), "{}", err("normal:1e-x"));
        assert!(err("xavier_uniform:3").contains("only normal takes a value"));
        assert!(err("lecun").contains("unknown 'lecun'"));
    }

    #[test]
    fn same_seed_same_weights() {
        let draw = |seed| {
            Init::XavierUniform
                .sample::<f32>(3, 4, &mut Xoshiro256PlusPlus::seed_from_u64(seed))
                .0
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}

//! Element-wise nonlinearities `y = f(x)`, `dx = f'(x) * dy`, in numerically
//! stable forms. Shapes: `x, y, dy, dx: [batch, features]`.

use super::Mode;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use crate::tensor::Matrix;

/// An activation function.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `f(x) = x`.
    Identity,
    /// `f(x) = 1 / (1 + e^-x)`.
    Sigmoid,
    /// `f(x) = tanh x`.
    Tanh,
    /// `f(x) = max(x, 0)` (derivative 0 at 0, as PyTorch).
    Relu,
    /// `f(x) = x` for `x > 0`, else `slope * x`.
    LeakyRelu(f64),
    /// `f(x) = x` for `x > 0`, else `alpha (e^x - 1)`.
    Elu(f64),
    /// Exact GELU `f(x) = x Phi(x) = x/2 (1 + erf(x / sqrt 2))`.
    Gelu,
    /// `f(x) = ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)`.
    Softplus,
}

impl Activation {
    /// `f(x)`.
    #[inline]
    pub fn apply<T: Scalar>(self, x: T) -> T {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh(),
            Activation::Relu => x.max(T::ZERO),
            Activation::LeakyRelu(s) => {
                if x > T::ZERO {
                    x
                } else {
                    T::from_f64(s) * x
                }
            }
            Activation::Elu(a) => {
                if x > T::ZERO {
                    x
                } else {
                    T::from_f64(a) * x.exp_m1()
                }
            }
            Activation::Gelu => x * std_normal_cdf(x),
            Activation::Softplus => x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
        }
    }

    /// `f'(x)`, given both the input `x` and the output `y = f(x)`.
    #[inline]
    pub fn derivative<T: Scalar>(self, x: T, y: T) -> T {
        match self {
            Activation::Identity => T::ONE,
            Activation::Sigmoid => y * (T::ONE - y),
            Activation::Tanh => T::ONE - y * y,
            Activation::Relu => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::ZERO
                }
            }
            Activation::LeakyRelu(s) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(s)
                }
            }
            Activation::Elu(a) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    y + T::from_f64(a)
                }
            }
            Activation::Gelu => {
                let pdf = (T::from_f64(-0.5) * x * x).exp() * T::from_f64(0.398_942_280_401_432_7);
                std_normal_cdf(x) + x * pdf
            }
            Activation::Softplus => sigmoid(x),
        }
    }

    /// Checks the parameter of LeakyReLU / ELU is finite.
    pub fn validate(self) -> Result<()> {
        match self {
            Activation::LeakyRelu(p) | Activation::Elu(p) if !p.is_finite() => {
                Err(Error::config("activation parameter", format!("{p} is not finite")))
            }
            _ => Ok(()),
        }
    }

    /// The name used on the command line and in model files.
    pub fn name(self) -> String {
        match self {
            Activation::Identity => "identity".into(),
            Activation::Sigmoid => "sigmoid".into(),
            Activation::Tanh => "tanh".into(),
            Activation::Relu => "relu".into(),
            Activation::LeakyRelu(s) => format!("leaky_relu:{s}"),
            Activation::Elu(a) => format!("elu:{a}"),
            Activation::Gelu => "gelu".into(),
            Activation::Softplus => "softplus".into(),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = Error;

    /// Parses `sigmoid`, `tanh`, `relu`, `leaky_relu[:slope]` (default 0.01),
    /// `elu[:alpha]` (default 1), `gelu`, `softplus`, `identity`.
    fn from_str(s: &str) -> Result<Self> {
        let (name, param) = match s.split_once(':') {
            Some((n, p)) => {
                let v = p
                    .parse::<f64>()
                    .map_err(|_| Error::config("activation", format!("bad parameter '{p}' in '{s}'")))?;
                (n, Some(v))
            }
            None => (s, None),
        };
        let a = match (name.to_ascii_lowercase().replace('-', "_").as_str(), param) {
            ("identity" | "linear", None) => Activation::Identity,
            ("sigmoid" | "logistic", None) => Activation::Sigmoid,
            ("tanh", None) => Activation::Tanh,
            ("relu", None) => Activation::Relu,
            ("leaky_relu", p) => Activation::LeakyRelu(p.unwrap_or(0.01)),
            ("elu", p) => Activation::Elu(p.unwrap_or(1.0)),
            ("gelu", None) => Activation::Gelu,
            ("softplus", None) => Activation::Softplus,
            _ => {
                return Err(Error::config(
                    "activation",
                    format!(
                        "unknown '{s}' (expected identity, sigmoid, tanh, relu, leaky_relu[:slope], elu[:alpha], gelu, softplus)"
                    ),
                ));
            }
        };
        a.validate()?;
        Ok(a)
    }
}

/// Logistic sigmoid without overflow for large `|x|`.
#[inline]
pub fn sigmoid<T: Scalar>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

/// Standard normal CDF `Phi(x) = (1 + erf(x / sqrt 2)) / 2`.
#[inline]
fn std_normal_cdf<T: Scalar>(x: T) -> T {
    T::from_f64(0.5) * (T::ONE + (x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erf())
}

/// A layer applying an [`Activation`] element-wise.
#[derive(Debug, Clone)]
pub struct ActivationLayer<T> {
    /// The function.
    pub kind: Activation,
    out: Matrix<T>,
    dx: Matrix<T>,
}

impl<T: Scalar> ActivationLayer<T> {
    /// A layer applying `kind`.
    pub fn new(kind: Activation) -> Result<Self> {
        kind.validate()?;
        Ok(ActivationLayer {
            kind,
            out: Matrix::default(),
            dx: Matrix::default(),
        })
    }

    /// `y = f(x)`.
    pub fn forward(&mut self, x: &Matrix<T>, _mode: Mode) -> Result<()> {
        self.out.resize(x.rows(), x.cols());
        let kind = self.kind;
        for (y, &v) in self.out.as_mut_slice().iter_mut().zip(x.as_slice()) {
            *y = kind.apply(v);
        }
        Ok(())
    }

    /// `dx = f'(x) * dy`.
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        if dy.shape() != x.shape() || self.out.shape() != x.shape() {
            return Err(Error::shape("activation backward", x, dy));
        }
        if need_dx {
            self.dx.resize(x.rows(), x.cols());
            let kind = self.kind;
            let xs = x.as_slice().iter().zip(self.out.as_slice());
            for ((d, &g), (&v, &y)) in self.dx.as_mut_slice().iter_mut().zip(dy.as_slice()).zip(xs) {
                *d = g * kind.derivative(v, y);
            }
        }
        Ok(())
    }

    /// The last forward's output.
    pub fn output(&self) -> &Matrix<T> {
        &self.out
    }

    /// The last backward's input gradient.
    pub fn input_grad(&self) -> &Matrix<T> {
        &self.dx
    }

    /// E.g. `Activation(sigmoid)`.
    pub fn describe(&self) -> String {
        format!("Activation({})", self.kind.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_forms_do_not_overflow() {
        for x in [-1000.0f32, -50.0, 0.0, 50.0, 1000.0] {
            assert!(sigmoid(x).is_finite());
            assert!(Activation::Softplus.apply(x).is_finite());
        }
        assert_eq!(sigmoid(-1000.0f64), 0.0);
        assert_eq!(Activation::Softplus.apply(1000.0f64), 1000.0);
        assert!((Activation::Softplus.apply(0.0f64) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn parses_names_and_parameters() {
        assert_eq!(
            "leaky_relu:0.2".parse::<Activation>().unwrap(),
            Activation::LeakyRelu(0.2)
        );
        assert_eq!("ELU".parse::<Activation>().unwrap(), Activation::Elu(1.0));
        assert_eq!("leaky-relu".parse::<Activation>().unwrap(), Activation::LeakyRelu(0.01));
        assert!("swish".parse::<Activation>().is_err());
        assert!("elu:nan".parse::<Activation>().is_err());
    }

    #[test]
    fn gelu_matches_known_values() {
        // GELU(1) = Phi(1) = 0.8413447460685429.
        assert!((Activation::Gelu.apply(1.0f64) - 0.841_344_746_068_542_9).abs() < 1e-12);
        assert!((Activation::Gelu.apply(-1.0f64) + 0.158_655_253_931_457_1).abs() < 1e-12);
    }
}

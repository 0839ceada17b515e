//! Element-wise nonlinearities `y = f(x)`, `dx = f'(x) * dy`, in numerically
//! stable forms. Shapes: `x, y, dy, dx: [batch, features]`.

use super::Mode;
use crate::error::{Error, Result};
use crate::parallel::split::{SharedMut, for_ranges};
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
    /// `f(x) = max(x, 0)`, NaN for NaN (derivative 0 at 0 and 1 at NaN, as
    /// PyTorch).
    Relu,
    /// `f(x) = x` for `x > 0`, else `slope * x`.
    LeakyRelu(f64),
    /// `f(x) = x` for `x > 0`, else `alpha (e^x - 1)`.
    Elu(f64),
    /// Exact GELU `f(x) = x Phi(x) = x/2 (1 + erf(x / sqrt 2))`.
    Gelu,
    /// `f(x) = ln(1 + e^x)`, computed as `max(x, 0) + ln(1 + e^-|x|)`; as
    /// PyTorch's `nn.Softplus()` (beta 1), `f(x) = x` and `f'(x) = 1` exactly
    /// above [`SOFTPLUS_THRESHOLD`].
    Softplus,
}

/// Above this input softplus is the identity (PyTorch's default threshold).
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;

impl Activation {
    /// `f(x)`. Tanh, ELU and GELU use the branch-free `f32` forms of
    /// [`crate::vecmath`] (libm's functions in `f64`).
    #[inline]
    pub fn apply<T: Scalar>(self, x: T) -> T {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Tanh => x.tanh_vec(),
            Activation::Relu => relu(x),
            Activation::LeakyRelu(s) => leaky(s)(x),
            Activation::Elu(a) => elu(a)(x),
            Activation::Gelu => gelu(x),
            Activation::Softplus if x > T::from_f64(SOFTPLUS_THRESHOLD) => x,
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
                if x <= T::ZERO {
                    T::ZERO
                } else {
                    T::ONE
                }
            }
            Activation::LeakyRelu(s) => {
                if x > T::ZERO {
                    T::ONE
                } else {
                    T::from_f64(s)
                }
            }
            Activation::Elu(a) => elu_derivative(a)(x, y),
            Activation::Gelu => gelu_derivative(x),
            Activation::Softplus if x > T::from_f64(SOFTPLUS_THRESHOLD) => T::ONE,
            Activation::Softplus => sigmoid(x),
        }
    }

    /// `y = f(x)` element-wise. Every function but softplus runs as a
    /// branch-free loop the compiler vectorizes, with the operations of
    /// [`Activation::apply`] (so the same bits); softplus calls it.
    #[inline(always)]
    pub fn apply_slice<T: Scalar>(self, x: &[T], y: &mut [T]) {
        match self {
            Activation::Sigmoid => map(x, y, sigmoid),
            Activation::Relu => map(x, y, relu),
            Activation::LeakyRelu(s) => map(x, y, leaky(s)),
            Activation::Tanh => map(x, y, T::tanh_vec),
            Activation::Elu(a) => map(x, y, elu(a)),
            Activation::Gelu => map(x, y, gelu),
            Activation::Identity => y.copy_from_slice(x),
            k => map(x, y, |v| k.apply(v)),
        }
    }

    /// `y[i] = f(y[i] + b[i])`: a bias add fused with the activation.
    #[inline(always)]
    pub fn bias_apply<T: Scalar>(self, y: &mut [T], b: &[T]) {
        match self {
            Activation::Sigmoid => update(y, b, |v, c| sigmoid(v + c)),
            Activation::Relu => update(y, b, |v, c| relu(v + c)),
            Activation::LeakyRelu(s) => {
                let f = leaky(s);
                update(y, b, |v, c| f(v + c))
            }
            Activation::Tanh => update(y, b, |v, c| (v + c).tanh_vec()),
            Activation::Elu(a) => {
                let f = elu(a);
                update(y, b, |v, c| f(v + c))
            }
            Activation::Gelu => update(y, b, |v, c| gelu(v + c)),
            Activation::Identity => update(y, b, |v, c| v + c),
            k => update(y, b, |v, c| k.apply(v + c)),
        }
    }

    /// `y[i] = f(y[i])`.
    #[inline(always)]
    pub fn apply_in_place<T: Scalar>(self, y: &mut [T]) {
        match self {
            Activation::Sigmoid => y.iter_mut().for_each(|v| *v = sigmoid(*v)),
            Activation::Relu => y.iter_mut().for_each(|v| *v = relu(*v)),
            Activation::LeakyRelu(s) => {
                let f = leaky(s);
                y.iter_mut().for_each(|v| *v = f(*v))
            }
            Activation::Tanh => y.iter_mut().for_each(|v| *v = v.tanh_vec()),
            Activation::Elu(a) => {
                let f = elu(a);
                y.iter_mut().for_each(|v| *v = f(*v))
            }
            Activation::Gelu => y.iter_mut().for_each(|v| *v = gelu(*v)),
            Activation::Identity => {}
            k => y.iter_mut().for_each(|v| *v = k.apply(*v)),
        }
    }

    /// `dx = f'(x) dy` element-wise, given `x`, `y = f(x)` and `dy`.
    #[inline(always)]
    pub fn backward_slice<T: Scalar>(self, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
        match self {
            Activation::Sigmoid => {
                for ((d, &g), &s) in dx.iter_mut().zip(dy).zip(y) {
                    *d = g * (s * (T::ONE - s));
                }
            }
            Activation::Relu => {
                for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
                    *d = g * if v <= T::ZERO { T::ZERO } else { T::ONE };
                }
            }
            Activation::LeakyRelu(s) => {
                let s = T::from_f64(s);
                for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
                    *d = g * if v > T::ZERO { T::ONE } else { s };
                }
            }
            Activation::Tanh => {
                for ((d, &g), &t) in dx.iter_mut().zip(dy).zip(y) {
                    *d = g * (T::ONE - t * t);
                }
            }
            Activation::Elu(a) => {
                let f = elu_derivative(a);
                for ((d, &g), (&v, &s)) in dx.iter_mut().zip(dy).zip(x.iter().zip(y)) {
                    *d = g * f(v, s);
                }
            }
            Activation::Gelu => {
                for ((d, &g), &v) in dx.iter_mut().zip(dy).zip(x) {
                    *d = g * gelu_derivative(v);
                }
            }
            k => {
                for ((d, &g), (&v, &s)) in dx.iter_mut().zip(dy).zip(x.iter().zip(y)) {
                    *d = g * k.derivative(v, s);
                }
            }
        }
    }

    /// Checks the parameter of LeakyReLU / ELU is finite.
    pub fn validate(self) -> Result<()> {
        match self {
            Activation::LeakyRelu(p) | Activation::Elu(p) if !p.is_finite() => {
                Err(Error::config("activation parameter", format!("{p} is not finite")))
            }
            // Applied in f32 (and written as an f32 ONNX attribute): 1e40
            // was infinite there, and training saved NaN-predicting weights.
            Activation::LeakyRelu(p) | Activation::Elu(p) if p.abs() > f64::from(f32::MAX) => Err(Error::config(
                "activation parameter",
                format!("{p} is beyond the f32 range the network computes in"),
            )),
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

    /// Parses `sigmoid`, `tanh`, `relu`, `leaky_relu[:slope]` (default 0.01;
    /// also `leakyrelu`),
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
            // `leakyrelu`: PyTorch's LeakyReLU, as `import --spec` spells it.
            ("leaky_relu" | "leakyrelu", p) => Activation::LeakyRelu(p.unwrap_or(0.01)),
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

/// Logistic sigmoid `1 / (1 + e^-x)`, branch-free through
/// [`Scalar::exp_vec`] so that loops over it vectorize. No overflow: for
/// very negative `x`, `e^-x` saturates (f32) or is infinite (f64) and the
/// quotient goes to 0.
#[inline(always)]
pub fn sigmoid<T: Scalar>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp_vec())
}

/// Leaky ReLU with slope `s` below 0, as [`Activation::apply`] computes it
/// (the slope converted once, not per value).
#[inline(always)]
fn leaky<T: Scalar>(s: f64) -> impl Fn(T) -> T {
    let s = T::from_f64(s);
    move |v| if v > T::ZERO { v } else { s * v }
}

/// `y[i] = f(y[i], b[i])`.
#[inline(always)]
fn update<T: Scalar>(y: &mut [T], b: &[T], f: impl Fn(T, T) -> T) {
    for (o, &c) in y.iter_mut().zip(b) {
        *o = f(*o, c);
    }
}

/// `y[i] = f(x[i])`.
#[inline(always)]
fn map<T: Scalar>(x: &[T], y: &mut [T], f: impl Fn(T) -> T) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f(v);
    }
}

/// ELU with scale `a` below 0.
#[inline(always)]
fn elu<T: Scalar>(a: f64) -> impl Fn(T) -> T {
    let a = T::from_f64(a);
    move |v| if v > T::ZERO { v } else { a * v.exp_m1_vec() }
}

/// `max(x, 0)` that keeps a NaN (as PyTorch's `relu`; `f32::max` returns
/// the other operand, so a NaN input or weight gave 0: a finite loss over
/// NaN weights, a confident prediction for a NaN row). A compare and a
/// select, vectorized like `max`.
#[inline(always)]
fn relu<T: Scalar>(x: T) -> T {
    if x <= T::ZERO { T::ZERO } else { x }
}

/// ELU's derivative from the input `v` and output `y`: 1 above 0, else `y + a`.
#[inline(always)]
fn elu_derivative<T: Scalar>(a: f64) -> impl Fn(T, T) -> T {
    let a = T::from_f64(a);
    move |v, y| if v > T::ZERO { T::ONE } else { y + a }
}

/// Exact GELU `x Phi(x)`.
#[inline(always)]
fn gelu<T: Scalar>(x: T) -> T {
    x * std_normal_cdf(x)
}

/// GELU's derivative `Phi(x) + x phi(x)`.
#[inline(always)]
fn gelu_derivative<T: Scalar>(x: T) -> T {
    let pdf = (T::from_f64(-0.5) * x * x).exp_vec() * T::from_f64(0.398_942_280_401_432_7);
    std_normal_cdf(x) + x * pdf
}

/// Standard normal CDF `Phi(x) = erfc(-x / sqrt 2) / 2`: as
/// `(1 + erf(x / sqrt 2)) / 2`, without its cancellation for negative `x`.
#[inline(always)]
fn std_normal_cdf<T: Scalar>(x: T) -> T {
    T::from_f64(0.5) * (-x * T::from_f64(std::f64::consts::FRAC_1_SQRT_2)).erfc_vec()
}

crate::vectorized! {
    /// [`Activation::apply_slice`], widened.
    pub(crate) fn forward_kernel<T: Scalar>(kind: Activation, x: &[T], y: &mut [T]) {
        kind.apply_slice(x, y)
    }
}

crate::vectorized! {
    /// [`Activation::backward_slice`], widened.
    pub(crate) fn backward_kernel<T: Scalar>(kind: Activation, x: &[T], y: &[T], dy: &[T], dx: &mut [T]) {
        kind.backward_slice(x, y, dy, dx)
    }
}

crate::vectorized! {
    /// `y[n, j] = f(y[n, j] + b[n])` for every row of `y: [b.len(), _]`,
    /// widened: [`bias_act_kernel`] for the feature-major layout (a row per
    /// feature), each value computed as there (`f(v + b)`).
    pub(crate) fn bias_act_rows_kernel<T: Scalar>(acts: &[Activation], y: &mut [T], b: &[T]) {
        if b.is_empty() || y.is_empty() {
            return;
        }
        for (row, &c) in y.chunks_exact_mut(y.len() / b.len()).zip(b) {
            row.iter_mut().for_each(|v| *v += c);
        }
        for a in acts {
            a.apply_in_place(y);
        }
    }
}

crate::vectorized! {
    /// `y[r, j] = f(y[r, j] + b[j])` for every row of `y: [_, b.len()]`, widened.
    pub(crate) fn bias_act_kernel<T: Scalar>(acts: &[Activation], y: &mut [T], b: &[T]) {
        for row in y.chunks_exact_mut(b.len()) {
            match acts {
                [] => row.iter_mut().zip(b).for_each(|(v, &c)| *v += c),
                [a, rest @ ..] => {
                    a.bias_apply(row, b);
                    for k in rest {
                        k.apply_in_place(row);
                    }
                }
            }
        }
    }
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
        let (xs, kind) = (x.as_slice(), self.kind);
        let ys = SharedMut::new(self.out.as_mut_slice());
        for_ranges(xs.len(), &|r| {
            // SAFETY: `for_ranges` hands out disjoint ranges.
            let ys = unsafe { ys.range(r.clone()) };
            forward_kernel(kind, &xs[r], ys);
        });
        Ok(())
    }

    /// `dx = f'(x) * dy`.
    pub fn backward(&mut self, x: &Matrix<T>, dy: &Matrix<T>, need_dx: bool) -> Result<()> {
        if dy.shape() != x.shape() || self.out.shape() != x.shape() {
            return Err(Error::shape("activation backward", x, dy));
        }
        if need_dx {
            self.dx.resize(x.rows(), x.cols());
            let (xs, ys, gs, kind) = (x.as_slice(), self.out.as_slice(), dy.as_slice(), self.kind);
            let dx = SharedMut::new(self.dx.as_mut_slice());
            for_ranges(xs.len(), &|r| {
                // SAFETY: `for_ranges` hands out disjoint ranges.
                let dx = unsafe { dx.range(r.clone()) };
                backward_kernel(kind, &xs[r.clone()], &ys[r.clone()], &gs[r], dx);
            });
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

    /// ReLU gave 0 for NaN (`f32::max`): a NaN row got a confident
    /// prediction and NaN weights trained on with a finite loss. Every form
    /// keeps it now, as PyTorch's `relu` does, and still gives 0 below 0.
    #[test]
    fn relu_keeps_a_nan_in_every_form() {
        let r = Activation::Relu;
        let x = [f32::NAN, -1.5, 0.0, 2.5];
        let want = |y: &[f32]| y[0].is_nan() && y[1..] == [0.0, 0.0, 2.5];
        assert!(want(&x.map(|v| r.apply(v))));
        let mut y = [0.0f32; 4];
        r.apply_slice(&x, &mut y);
        assert!(want(&y));
        let mut z = x;
        r.apply_in_place(&mut z);
        assert!(want(&z));
        let mut b = [0.0f32; 4];
        r.bias_apply(&mut b, &x);
        assert!(want(&b));
        assert!(r.apply(f64::NAN).is_nan());
        // The gradient passes a NaN input's gradient on, as PyTorch's
        // threshold_backward (`x <= 0 ? 0 : g`).
        let mut dx = [0.0f32; 4];
        r.backward_slice(&x, &y, &[1.0; 4], &mut dx);
        assert_eq!(dx, [1.0, 0.0, 0.0, 1.0]);
        assert_eq!(r.derivative(f32::NAN, f32::NAN), 1.0);
    }

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
    fn softplus_is_the_identity_above_the_threshold_as_in_pytorch() {
        // f64 shows the difference: sigmoid(20.5) = 1 - 1.25e-9, and
        // 20.5 + ln(1 + e^-20.5) != 20.5.
        for x in [20.000_000_1f64, 20.5, 35.0, 1e10] {
            assert_eq!(Activation::Softplus.apply(x), x);
            assert_eq!(Activation::Softplus.derivative(x, x), 1.0);
            let mut dx = [0.0f64];
            Activation::Softplus.backward_slice(&[x], &[x], &[0.75], &mut dx);
            assert_eq!(dx[0], 0.75);
        }
        // At and below it, the smooth form (PyTorch: x * beta > threshold).
        let at = Activation::Softplus.apply(20.0f64);
        assert!(at > 20.0 && at - 20.0 < 3e-9, "{at}");
        assert!(Activation::Softplus.derivative(20.0f64, at) < 1.0);
        assert_eq!(Activation::Softplus.apply(20.5f32), 20.5);
        assert_eq!(Activation::Softplus.derivative(21.0f32, 21.0), 1.0);
    }

    #[test]
    fn parses_names_and_parameters() {
        assert_eq!(
            "leaky_relu:0.2".parse::<Activation>().unwrap(),
            Activation::LeakyRelu(0.2)
        );
        assert_eq!("ELU".parse::<Activation>().unwrap(), Activation::Elu(1.0));
        assert_eq!("leaky-relu".parse::<Activation>().unwrap(), Activation::LeakyRelu(0.01));
        assert_eq!(
            "LeakyReLU:0.1".parse::<Activation>().unwrap(),
            Activation::LeakyRelu(0.1)
        );
        assert!("swish".parse::<Activation>().is_err());
        assert!("elu:nan".parse::<Activation>().is_err());
        // Finite in f64, infinite in the f32 the network computes in.
        assert!(
            "elu:1e40"
                .parse::<Activation>()
                .unwrap_err()
                .to_string()
                .contains("beyond the f32 range")
        );
        assert!("leaky_relu:-1e39".parse::<Activation>().is_err());
    }

    #[test]
    fn gelu_matches_known_values() {
        // GELU(1) = Phi(1) = 0.8413447460685429.
        assert!((Activation::Gelu.apply(1.0f64) - 0.841_344_746_068_542_9).abs() < 1e-12);
        assert!((Activation::Gelu.apply(-1.0f64) + 0.158_655_253_931_457_1).abs() < 1e-12);
    }
}

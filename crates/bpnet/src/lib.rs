//! bpnet: backpropagation networks with batch normalization.
//!
//! Fully connected networks trained by backpropagation and gradient descent,
//! with batch normalization (Ioffe & Szegedy 2015) as a first-class layer.
//! The same layer code runs in `f32` for training and in `f64` for gradient
//! checks.
//!
//! ```
//! use bpnet::{Loss, Matrix, ModelSpec, Optimizer, OptimizerConfig, Sequential, Target, Trainer};
//! let spec = ModelSpec { dims: vec![4, 8, 3], ..ModelSpec::paper_mnist(true, 0.1) };
//! let model = Sequential::<f32>::from_spec(&spec, 42)?;
//! let opt = Optimizer::new(OptimizerConfig::sgd(0.1))?;
//! let mut trainer = Trainer::new(model, opt, Loss::CrossEntropy);
//! let x = Matrix::from_vec(2, 4, vec![0.1, 0.2, 0.3, 0.4, -0.1, 0.0, 0.5, 1.0])?;
//! let loss = trainer.step(&x, Target::Labels(&[0, 2]))?;
//! assert!(loss.is_finite());
//! # Ok::<(), bpnet::Error>(())
//! ```
#![warn(missing_docs)]

pub mod comm;
pub mod data;
pub mod ensemble;
pub mod error;
pub mod fold;
pub mod infer;
pub mod init;
pub mod io;
pub mod layers;
pub mod loss;
pub mod model;
pub mod onnx;
pub mod optim;
pub mod parallel;
pub mod scalar;
#[macro_use]
pub mod simd;
pub mod tensor;
pub mod train;
pub mod vecmath;
pub mod workflow;

pub use ensemble::{Combine, EnsembleNet};
pub use error::{Error, Result};
pub use fold::fold_batch_norm;
pub use infer::InferenceNet;
pub use init::Init;
pub use layers::{Activation, BatchNormConfig, Layer, Mode, Momentum, Param};
pub use loss::{Loss, Target};
pub use model::{BnPlacement, ModelSpec, Sequential};
pub use optim::{Method, Optimizer, OptimizerConfig};
pub use parallel::set_threads;
pub use scalar::Scalar;
pub use tensor::Matrix;
pub use train::Trainer;

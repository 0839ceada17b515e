//! bpnet-lab: what batch normalization does, shown on the bundled MNIST.
//!
//! The experiments of [`experiment`] reproduce section 4.1 of Ioffe &
//! Szegedy (2015) and go beyond it (learning rates, depth, inference
//! statistics, a learning-rate x init-scale sweep); [`plot`] draws their
//! figures and training histories as PNG and SVG in pure Rust. The engine,
//! [`bpnet`], does not depend on this crate: a program that only trains or
//! serves networks does not compile plotting code.
#![warn(missing_docs)]

pub mod experiment;
pub mod plot;
pub mod tune;

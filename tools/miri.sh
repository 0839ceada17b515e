#!/usr/bin/env bash
# Runs the library's unsafe code and its thread team under Miri, the Rust
# interpreter that reports undefined behaviour: out-of-bounds or overlapping
# slices, data races between threads (with weak-memory effects), use of
# uninitialized memory. A development check, not part of .ci/run: it needs a
# nightly toolchain with the miri component, which a CI machine cannot fetch
# (`rustup toolchain install nightly --component miri` where rustup can).
#
# What runs (11 minutes on the 2-core development machine, 2026-12-06):
#   1. tests/team.rs: every part of every job once, concurrent callers,
#      thread counts changed under running jobs, a panicking part (2-8
#      threads; fewer rounds under Miri).
#   2. tests/miri.rs: training steps and fused inference at the split
#      thresholds (64 times lower under Miri) on 1-3 threads: products split
#      by blocks, normalization / activation passes by rows and columns,
#      optimizer updates by ranges, inference parts by rows.
#   3. the unit tests of the split normalization kernels, the thread
#      communicator and the split helpers.
#   4. fused inference from 2, the split normalization kernels from 3 and
#      the unit tests of the inference kernels, compiled with AVX-512, AVX2
#      and FMA enabled (a
#      separate target folder), so that the dispatched wide code, the
#      feature-major panel kernel, its transposition and the one-row kernel
#      (AVX-512 intrinsics, masked loads) run too. Without those flags Miri
#      reports no vector extensions and the baseline code runs. Training is
#      left out of this step: with AVX-512 the GEMM library's kernels are
#      inline assembly, which Miri cannot interpret.
#
# -Zmiri-deterministic-floats: Miri otherwise perturbs the last bits of
# operations such as powi (Rust does not specify their precision), which
# the bit-identity assertions would report as a difference between runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Flags given in MIRIFLAGS are added to it.
export MIRIFLAGS="-Zmiri-deterministic-floats ${MIRIFLAGS:-}"
miri() { echo "== [${SECONDS}s] cargo +nightly miri test $*"; cargo +nightly miri test -q "$@"; }

miri -p bpnet --test team
miri -p bpnet --test miri
miri -p bpnet --lib -- layers::bn_kernels comm::threads parallel::split

export RUSTFLAGS="-C target-feature=+avx512f,+avx2,+fma"
export CARGO_TARGET_DIR=target/miri-wide
miri -p bpnet --test miri -- fused_inference
miri -p bpnet --lib -- layers::bn_kernels infer::
echo "== [${SECONDS}s] Miri found no undefined behaviour"

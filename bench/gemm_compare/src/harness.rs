//! Shared benchmark harness: problem shapes, data, timing, verification and
//! the worker loop. Included by `src/main.rs` and by the binaries in
//! `variants/*` (via `#[path]`), so every candidate runs the same code.
//!
//! Layout conventions (the ones bpnet uses): row-major matrices, a Dense
//! layer's weight W stored PyTorch-style as [out, in]. With batch b,
//! in-width i and out-width o:
//!
//! * fwd: `Y[b,o]  = X[b,i] · W^T`   (W read transposed through strides)
//! * dW:  `dW[o,i] += dY^T · X`      (dY read transposed, beta = 1)
//! * dX:  `dX[b,i] = dY[b,o] · W`
//! * sq:  `C[n,n]  = A · B`          (plain square product)

#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Element type of a product (f32 or f64).
pub trait Elem: Copy + Default + PartialEq + Send + Sync + 'static {
    const NAME: &'static str;
    const EPS: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    const EPS: f64 = f32::EPSILON as f64;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    const EPS: f64 = f64::EPSILON;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// One strided product `C[m,n] (= or +=) A[m,k] · B[k,n]`.
/// Strides are in elements: element (r, c) of A is at `a + r*rsa + c*csa`.
pub struct Call<T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: *const T,
    pub rsa: isize,
    pub csa: isize,
    pub b: *const T,
    pub rsb: isize,
    pub csb: isize,
    pub c: *mut T,
    pub rsc: isize,
    pub csc: isize,
    /// false: C = A·B (beta = 0); true: C += A·B (beta = 1)
    pub accumulate: bool,
}

/// A candidate GEMM implementation in one threading configuration.
pub trait Backend {
    /// Configuration name, e.g. `faer-par2`.
    fn name(&self) -> &'static str;
    /// Number of threads this configuration is meant to use.
    fn threads(&self) -> usize;
    /// # Safety
    /// The pointers and strides in `c` must describe valid, non-aliasing matrices.
    unsafe fn f32(&self, c: &Call<f32>);
    /// # Safety
    /// As for `f32`.
    unsafe fn f64(&self, c: &Call<f64>);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Fwd,
    DW,
    DX,
    Sq,
}

impl Op {
    pub fn label(self) -> &'static str {
        match self {
            Op::Fwd => "fwd",
            Op::DW => "bwd-dW",
            Op::DX => "bwd-dX",
            Op::Sq => "A·B",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    pub fn label(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }
}

/// One measured product. For `Op::Sq`, b = i = o = n.
#[derive(Clone, Debug)]
pub struct Job {
    pub group: &'static str,
    pub dtype: DType,
    pub op: Op,
    pub b: usize,
    pub i: usize,
    pub o: usize,
}

impl Job {
    pub fn shape_label(&self) -> String {
        match self.op {
            Op::Sq => format!("n={}", self.b),
            _ => format!("({},{},{})", self.b, self.i, self.o),
        }
    }

    /// (m, n, k) of the product C[m,n] = A[m,k]·B[k,n].
    pub fn mnk(&self) -> (usize, usize, usize) {
        let (b, i, o) = (self.b, self.i, self.o);
        match self.op {
            Op::Fwd => (b, o, i),
            Op::DW => (o, i, b),
            Op::DX => (b, i, o),
            Op::Sq => (b, b, b),
        }
    }

    pub fn flops(&self) -> f64 {
        let (m, n, k) = self.mnk();
        2.0 * m as f64 * n as f64 * k as f64
    }
}

/// Dense-layer shapes (b, i, o) measured with fwd, dW and dX.
pub const LAYER_SHAPES: [(usize, usize, usize); 5] = [
    (60, 784, 100),
    (60, 100, 100),
    (60, 100, 10),
    (256, 784, 1024),
    (256, 1024, 1024),
];
/// Dense-layer shapes measured with fwd only (evaluation batch).
pub const FWD_ONLY_SHAPES: [(usize, usize, usize); 1] = [(1000, 784, 100)];
pub const SQUARE_N: [usize; 3] = [512, 1024, 2048];
/// Extra dense-layer shapes between (60,784,100) and (1000,784,100), used
/// only to locate where 2 threads start to pay (fwd, dW and dX each).
pub const CROSSOVER_SHAPES: [(usize, usize, usize); 6] = [
    (120, 784, 100),
    (250, 784, 100),
    (500, 784, 100),
    (60, 784, 200),
    (60, 784, 400),
    (60, 784, 800),
];

/// The full job list. f64 jobs are only run single-threaded.
pub fn jobs(threads: usize) -> Vec<Job> {
    let mut v = Vec::new();
    for &(b, i, o) in &LAYER_SHAPES {
        for op in [Op::Fwd, Op::DW, Op::DX] {
            v.push(Job { group: "layer", dtype: DType::F32, op, b, i, o });
        }
    }
    for &(b, i, o) in &FWD_ONLY_SHAPES {
        v.push(Job { group: "layer", dtype: DType::F32, op: Op::Fwd, b, i, o });
    }
    for &(b, i, o) in &CROSSOVER_SHAPES {
        for op in [Op::Fwd, Op::DW, Op::DX] {
            v.push(Job { group: "crossover", dtype: DType::F32, op, b, i, o });
        }
    }
    for &n in &SQUARE_N {
        v.push(Job { group: "square", dtype: DType::F32, op: Op::Sq, b: n, i: n, o: n });
    }
    if threads == 1 {
        let (b, i, o) = LAYER_SHAPES[0];
        for op in [Op::Fwd, Op::DW, Op::DX] {
            v.push(Job { group: "f64", dtype: DType::F64, op, b, i, o });
        }
        v.push(Job { group: "f64", dtype: DType::F64, op: Op::Sq, b: 1024, i: 1024, o: 1024 });
    }
    v
}

/// xorshift64* generator; values uniform in [-1, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (r >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    pub fn fill<T: Elem>(&mut self, len: usize) -> Vec<T> {
        (0..len).map(|_| T::from_f64(self.next_f64())).collect()
    }
}

/// Operands of one job, with the strides bpnet would pass.
pub struct Problem<T> {
    pub a: Vec<T>,
    pub b: Vec<T>,
    pub c: Vec<T>,
    pub c0: Vec<T>,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub rsa: isize,
    pub csa: isize,
    pub rsb: isize,
    pub csb: isize,
    pub rsc: isize,
    pub csc: isize,
    pub accumulate: bool,
}

impl<T: Elem> Problem<T> {
    pub fn new(job: &Job) -> Self {
        let (b, i, o) = (job.b, job.i, job.o);
        let mut rng = Rng::new((b * 1_000_003 + i * 1009 + o) as u64 ^ job.op as u64);
        let (m, n, k) = job.mnk();
        let s = |x: usize| x as isize;
        match job.op {
            // A = X [b,i] row-major; B = W^T: W is [o,i] row-major, so
            // B(kk, j) = W[j*i + kk]: rsb = 1, csb = i. C = Y [b,o].
            Op::Fwd => Problem {
                a: rng.fill(b * i),
                b: rng.fill(o * i),
                c: vec![T::default(); b * o],
                c0: vec![T::default(); b * o],
                m, n, k,
                rsa: s(i), csa: 1,
                rsb: 1, csb: s(i),
                rsc: s(o), csc: 1,
                accumulate: false,
            },
            // A = dY^T: dY is [b,o] row-major, A(r, kk) = dY[kk*o + r]:
            // rsa = 1, csa = o. B = X [b,i]. C = dW [o,i], accumulated.
            Op::DW => {
                let c0: Vec<T> = rng.fill(o * i);
                Problem {
                    a: rng.fill(b * o),
                    b: rng.fill(b * i),
                    c: c0.clone(),
                    c0,
                    m, n, k,
                    rsa: 1, csa: s(o),
                    rsb: s(i), csb: 1,
                    rsc: s(i), csc: 1,
                    accumulate: true,
                }
            }
            // A = dY [b,o]; B = W [o,i]; C = dX [b,i].
            Op::DX => Problem {
                a: rng.fill(b * o),
                b: rng.fill(o * i),
                c: vec![T::default(); b * i],
                c0: vec![T::default(); b * i],
                m, n, k,
                rsa: s(o), csa: 1,
                rsb: s(i), csb: 1,
                rsc: s(i), csc: 1,
                accumulate: false,
            },
            Op::Sq => Problem {
                a: rng.fill(m * k),
                b: rng.fill(k * n),
                c: vec![T::default(); m * n],
                c0: vec![T::default(); m * n],
                m, n, k,
                rsa: s(k), csa: 1,
                rsb: s(n), csb: 1,
                rsc: s(n), csc: 1,
                accumulate: false,
            },
        }
    }

    pub fn call(&mut self) -> Call<T> {
        Call {
            m: self.m,
            n: self.n,
            k: self.k,
            a: self.a.as_ptr(),
            rsa: self.rsa,
            csa: self.csa,
            b: self.b.as_ptr(),
            rsb: self.rsb,
            csb: self.csb,
            c: self.c.as_mut_ptr(),
            rsc: self.rsc,
            csc: self.csc,
            accumulate: self.accumulate,
        }
    }

    pub fn reset_c(&mut self) {
        self.c.copy_from_slice(&self.c0);
    }
}

/// Naive reference, written from the mathematical definitions of the
/// products (never from the strides passed to the candidates), accumulated
/// in f64. The result is laid out like the candidate's C buffer.
pub fn reference<T: Elem>(job: &Job, p: &Problem<T>) -> Vec<f64> {
    let (b, i, o) = (job.b, job.i, job.o);
    let f = |v: &[T]| v.iter().map(|x| x.to_f64()).collect::<Vec<f64>>();
    let (a, bm) = (f(&p.a), f(&p.b));
    match job.op {
        Op::Fwd => {
            // Y[bb,oo] = sum_p X[bb,p] * W[oo,p]
            let (x, w) = (a, bm);
            let mut y = vec![0.0; b * o];
            for bb in 0..b {
                for oo in 0..o {
                    let mut s = 0.0;
                    for q in 0..i {
                        s += x[bb * i + q] * w[oo * i + q];
                    }
                    y[bb * o + oo] = s;
                }
            }
            y
        }
        Op::DW => {
            // dW[oo,q] = dW0[oo,q] + sum_bb dY[bb,oo] * X[bb,q]
            let (dy, x) = (a, bm);
            let mut dw = f(&p.c0);
            for bb in 0..b {
                for oo in 0..o {
                    let g = dy[bb * o + oo];
                    for q in 0..i {
                        dw[oo * i + q] += g * x[bb * i + q];
                    }
                }
            }
            dw
        }
        Op::DX => {
            // dX[bb,q] = sum_oo dY[bb,oo] * W[oo,q]
            let (dy, w) = (a, bm);
            let mut dx = vec![0.0; b * i];
            for bb in 0..b {
                for oo in 0..o {
                    let g = dy[bb * o + oo];
                    for q in 0..i {
                        dx[bb * i + q] += g * w[oo * i + q];
                    }
                }
            }
            dx
        }
        Op::Sq => {
            let n = b;
            let mut c = vec![0.0; n * n];
            for r in 0..n {
                for q in 0..n {
                    let s = a[r * n + q];
                    for j in 0..n {
                        c[r * n + j] += s * bm[q * n + j];
                    }
                }
            }
            c
        }
    }
}

unsafe fn dispatch<T: Elem>(be: &dyn Backend, c: &Call<T>) {
    // Call<T> has the same layout for both element types; pick the entry point.
    unsafe {
        if T::NAME == "f32" {
            be.f32(&*(c as *const Call<T> as *const Call<f32>))
        } else {
            be.f64(&*(c as *const Call<T> as *const Call<f64>))
        }
    }
}

/// Runs the candidate once from C = C0 and returns (max |diff|, tolerance).
pub fn verify_one<T: Elem>(be: &dyn Backend, job: &Job, p: &mut Problem<T>, refv: &[f64]) -> (f64, f64) {
    p.reset_c();
    // Poison the output of non-accumulating products so that a candidate
    // that skips elements cannot pass.
    if !p.accumulate {
        for x in p.c.iter_mut() {
            *x = T::from_f64(f64::NAN);
        }
    }
    let call = p.call();
    unsafe { dispatch(be, &call) };
    let mut maxd: f64 = 0.0;
    for (x, r) in p.c.iter().zip(refv) {
        let d = (x.to_f64() - r).abs();
        // a NaN (e.g. an element never written) counts as an infinite error
        maxd = maxd.max(if d.is_nan() { f64::INFINITY } else { d });
    }
    let (_, _, k) = job.mnk();
    // Loose enough for any summation order, far below what a stride or
    // transpose mistake produces (errors of order sqrt(k)/3 here).
    let tol = 8.0 * k as f64 * T::EPS * 4.0;
    (maxd, tol)
}

/// Median seconds per call. Warm-up (>= 1 call and >= 10 ms), then samples
/// of `batch` calls each (batch chosen so one sample takes >= 0.5 ms), until
/// >= 50 ms have been spent and >= 3 samples were taken.
pub fn time_calls(mut f: impl FnMut()) -> (f64, usize) {
    let t0 = Instant::now();
    let mut w = 0usize;
    while w < 1 || t0.elapsed() < Duration::from_millis(10) {
        f();
        w += 1;
    }
    let per = t0.elapsed().as_secs_f64() / w as f64;
    let batch = ((5e-4 / per).ceil() as usize).max(1);
    let mut samples = Vec::new();
    let mut calls = 0usize;
    let start = Instant::now();
    while samples.len() < 3 || start.elapsed() < Duration::from_millis(50) {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed().as_secs_f64() / batch as f64);
        calls += batch;
    }
    (median(&mut samples), calls)
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn bench_job<T: Elem>(be: &dyn Backend, job: &Job) {
    let mut p = Problem::<T>::new(job);
    let call = p.call();
    let (sec, calls) = time_calls(|| unsafe {
        dispatch(be, &call);
        std::hint::black_box(call.c);
    });
    let (m, n, k) = job.mnk();
    println!(
        "RES\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:e}\t{}",
        be.name(),
        T::NAME,
        job.group,
        job.shape_label(),
        job.op.label(),
        m,
        n,
        k,
        sec,
        calls
    );
}

fn verify_job<T: Elem>(bes: &[&dyn Backend], job: &Job) {
    let mut p = Problem::<T>::new(job);
    let refv = reference(job, &p);
    for be in bes {
        let (d, tol) = verify_one(*be, job, &mut p, &refv);
        println!(
            "VER\t{}\t{}\t{}\t{}\t{:e}\t{:e}\t{}",
            be.name(),
            T::NAME,
            job.shape_label(),
            job.op.label(),
            d,
            tol,
            if d <= tol { "ok" } else { "FAIL" }
        );
    }
}

/// Worker entry point. `args` are the arguments after `worker`:
///
/// * `run <config>` — time every job for that configuration, print `RES` lines;
/// * `verify <config>...` — check each configuration against the naive
///   reference once per job, print `VER` lines.
pub fn worker(backends: &[&dyn Backend], args: &[String]) {
    let find = |name: &str| -> &dyn Backend {
        *backends
            .iter()
            .find(|b| b.name() == name)
            .unwrap_or_else(|| panic!("unknown configuration {name}"))
    };
    match args.first().map(String::as_str) {
        Some("run") => {
            let be = find(&args[1]);
            for job in jobs(be.threads()) {
                match job.dtype {
                    DType::F32 => bench_job::<f32>(be, &job),
                    DType::F64 => bench_job::<f64>(be, &job),
                }
            }
        }
        Some("verify") => {
            let bes: Vec<&dyn Backend> = args[1..].iter().map(|n| find(n)).collect();
            let min_threads = bes.iter().map(|b| b.threads()).min().unwrap_or(1);
            for job in jobs(min_threads) {
                // f64 jobs exist only for single-threaded configurations.
                let sel: Vec<&dyn Backend> = bes
                    .iter()
                    .copied()
                    .filter(|b| job.dtype == DType::F32 || b.threads() == 1)
                    .collect();
                match job.dtype {
                    DType::F32 => verify_job::<f32>(&sel, &job),
                    DType::F64 => verify_job::<f64>(&sel, &job),
                }
            }
        }
        _ => panic!("usage: worker run <config> | worker verify <config>..."),
    }
}

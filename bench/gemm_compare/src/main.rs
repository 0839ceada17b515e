//! GEMM crate comparison for bpnet's matrix products.
//!
//!     cd bench/gemm_compare && cargo run --release [-- --rounds N]
//!
//! The orchestrator (this binary without arguments):
//! 1. builds the variant binaries in variants/* into target/variants;
//! 2. verifies every configuration once per shape against a naive triple loop;
//! 3. runs N rounds (default 7); in each round every configuration runs all
//!    shapes in its own process, the order of configurations rotating from
//!    round to round, so that background load spreads over all of them;
//! 4. prints median GFLOP/s and min–max across rounds (Markdown), and writes
//!    target/gemm_compare_report.md and target/gemm_compare_raw.tsv.
//!
//! Each process is a worker (`<binary> worker run <config>`); see harness.rs.

mod b_faer;
mod b_gemm;
mod b_mm;
mod harness;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// A worker run counts as quiet when other processes used less than this
/// many CPU cores (averaged) while it ran.
const QUIET_CORES: f64 = 0.25;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bin {
    Main,
    MmPlain,
    GemmV4,
}

struct Cfg {
    name: &'static str,
    bin: Bin,
    /// MATMUL_NUM_THREADS for the worker process
    mm_threads: &'static str,
    threads: usize,
    desc: &'static str,
}

const CFGS: &[Cfg] = &[
    Cfg { name: "mm", bin: Bin::MmPlain, mm_threads: "1", threads: 1,
          desc: "matrixmultiply 0.3.11, default features (no threading)" },
    Cfg { name: "mm-thr1", bin: Bin::Main, mm_threads: "1", threads: 1,
          desc: "matrixmultiply 0.3.11 + `threading`, MATMUL_NUM_THREADS=1" },
    Cfg { name: "mm-thr2", bin: Bin::Main, mm_threads: "2", threads: 2,
          desc: "matrixmultiply 0.3.11 + `threading`, MATMUL_NUM_THREADS=2" },
    Cfg { name: "gemm-seq", bin: Bin::Main, mm_threads: "1", threads: 1,
          desc: "gemm 0.19.0, default features, Parallelism::None" },
    Cfg { name: "gemm-par2", bin: Bin::Main, mm_threads: "1", threads: 2,
          desc: "gemm 0.19.0, default features, Parallelism::Rayon(2)" },
    Cfg { name: "gemm_v4-seq", bin: Bin::GemmV4, mm_threads: "1", threads: 1,
          desc: "gemm 0.19.0 + `x86-v4` (AVX-512 kernels), Parallelism::None" },
    Cfg { name: "gemm_v4-par2", bin: Bin::GemmV4, mm_threads: "1", threads: 2,
          desc: "gemm 0.19.0 + `x86-v4` (AVX-512 kernels), Parallelism::Rayon(2)" },
    Cfg { name: "faer-seq", bin: Bin::Main, mm_threads: "1", threads: 1,
          desc: "faer 0.24.4, default features, Par::Seq" },
    Cfg { name: "faer-par2", bin: Bin::Main, mm_threads: "1", threads: 2,
          desc: "faer 0.24.4, default features, Par::rayon(2)" },
];

const ONE_THREAD: &[&str] = &["mm", "mm-thr1", "gemm-seq", "gemm_v4-seq", "faer-seq"];
const TWO_THREADS: &[&str] = &["mm-thr2", "gemm-par2", "gemm_v4-par2", "faer-par2"];
/// (2-thread config, its 1-thread counterpart)
const PAIRS: &[(&str, &str)] = &[
    ("mm-thr2", "mm"),
    ("gemm-par2", "gemm-seq"),
    ("gemm_v4-par2", "gemm_v4-seq"),
    ("faer-par2", "faer-seq"),
];

fn worker_main(args: &[String]) {
    let two = args.iter().any(|a| a.ends_with("par2"));
    if two {
        rayon::ThreadPoolBuilder::new().num_threads(2).build_global().unwrap();
    }
    let mm1 = b_mm::Mm { name: "mm-thr1", threads: 1 };
    let mm2 = b_mm::Mm { name: "mm-thr2", threads: 2 };
    let g1 = b_gemm::Gemm { name: "gemm-seq", par: gemm::Parallelism::None, threads: 1 };
    let g2 = b_gemm::Gemm { name: "gemm-par2", par: gemm::Parallelism::Rayon(2), threads: 2 };
    let f1 = b_faer::Faer { name: "faer-seq", par: faer::Par::Seq, threads: 1 };
    let f2 = b_faer::Faer { name: "faer-par2", par: faer::Par::rayon(2), threads: 2 };
    harness::worker(&[&mm1, &mm2, &g1, &g2, &f1, &f2], args);
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn build_variants() -> (PathBuf, PathBuf) {
    let root = Path::new(MANIFEST_DIR);
    let tdir = root.join("target").join("variants");
    for v in ["mm_plain", "gemm_v4"] {
        eprintln!("[gemm_compare] building variants/{v} ...");
        let st = Command::new(cargo())
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("variants").join(v).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&tdir)
            .status()
            .expect("cargo build of a variant");
        assert!(st.success(), "building variants/{v} failed");
    }
    let rel = tdir.join("release");
    (rel.join("gemm_compare_mm_plain"), rel.join("gemm_compare_gemm_v4"))
}

struct Bins {
    main: PathBuf,
    mm_plain: PathBuf,
    gemm_v4: PathBuf,
}

impl Bins {
    fn path(&self, b: Bin) -> &Path {
        match b {
            Bin::Main => &self.main,
            Bin::MmPlain => &self.mm_plain,
            Bin::GemmV4 => &self.gemm_v4,
        }
    }
}

fn run_worker(bins: &Bins, bin: Bin, mm_threads: &str, args: &[&str]) -> String {
    let out = Command::new(bins.path(bin))
        .arg("worker")
        .args(args)
        .env("MATMUL_NUM_THREADS", mm_threads)
        .output()
        .expect("start worker");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("worker {:?} failed", args);
    }
    String::from_utf8(out.stdout).unwrap()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// (busy, steal) jiffies of the whole machine, from /proc/stat.
fn machine_jiffies() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = s
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return (0, 0);
    }
    // user nice system idle iowait irq softirq steal
    (v[0] + v[1] + v[2] + v[5] + v[6], v[7])
}

/// CPU jiffies used by this process's finished children (cutime + cstime).
fn children_jiffies() -> u64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the ")" of the command name, from field 4 (ppid) on;
    // cutime and cstime are fields 16 and 17
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest.split_whitespace().skip(1).map(|x| x.parse().unwrap_or(0)).collect();
    if f.len() < 14 { 0 } else { f[12] + f[13] }
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let isa: Vec<&str> = ["avx2", "fma", "avx512f"].into_iter().filter(|f| has(f)).collect();
    format!(
        "{model}, {} logical CPUs, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        isa.join("+")
    )
}

/// key: (config, dtype, shape, op) -> GFLOP/s per round (indexed by round)
type Key = (String, String, String, String);

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut w: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    let lo = w.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (harness::median(&mut w), lo, hi)
}

/// Which rounds of a configuration count: `keep(config, round)`.
type Keep<'a> = &'a dyn Fn(&str, usize) -> bool;

/// Values of one configuration (indexed by round) that `keep` accepts.
fn kept(cfg: &str, v: Option<&Vec<f64>>, keep: Keep) -> Vec<f64> {
    v.map(|v| v.iter().enumerate().filter(|(r, _)| keep(cfg, *r)).map(|(_, x)| *x).collect())
        .unwrap_or_default()
}

fn cell(v: &[f64], show_n: bool) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let (m, lo, hi) = stats(v);
    if show_n {
        format!("{m:.1} ({lo:.0}–{hi:.0}) n={}", v.len())
    } else {
        format!("{m:.1} ({lo:.0}–{hi:.0})")
    }
}

/// Rows of (dtype, shape, op) in job order.
fn rows(group: &str, dtype: harness::DType) -> Vec<(String, String, String, f64)> {
    harness::jobs(1)
        .into_iter()
        .filter(|j| j.group == group && j.dtype == dtype)
        .map(|j| (j.dtype.label().to_string(), j.shape_label(), j.op.label().to_string(), j.flops()))
        .collect()
}

fn table(
    out: &mut String,
    title: &str,
    rows: &[(String, String, String, f64)],
    cols: &[&str],
    res: &BTreeMap<Key, Vec<f64>>,
    keep: Keep,
    show_n: bool,
) {
    let _ = writeln!(out, "\n### {title}\n");
    let _ = write!(out, "| shape (b,i,o) | op | MFLOP |");
    for c in cols {
        let _ = write!(out, " {c} |");
    }
    let _ = writeln!(out, " best |");
    let _ = write!(out, "|---|---|---:|");
    for _ in cols {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out, "---|");
    for (dt, shape, op, flops) in rows {
        let _ = write!(out, "| {shape} | {op} | {:.1} |", flops / 1e6);
        let mut best = ("", 0.0);
        for c in cols {
            let v = kept(c, res.get(&(c.to_string(), dt.clone(), shape.clone(), op.clone())), keep);
            if !v.is_empty() {
                let (m, _, _) = stats(&v);
                if m > best.1 {
                    best = (c, m);
                }
            }
            let _ = write!(out, " {} |", cell(&v, show_n));
        }
        let _ = writeln!(out, " {} |", best.0);
    }
}

fn speedup_table(
    out: &mut String,
    rows: &[(String, String, String, f64)],
    res: &BTreeMap<Key, Vec<f64>>,
    keep: Keep,
    show_n: bool,
) {
    let _ = write!(out, "| shape | op | MFLOP |");
    for (two, one) in PAIRS {
        let _ = write!(out, " {two} / {one} |");
    }
    let _ = writeln!(out);
    let _ = write!(out, "|---|---|---:|");
    for _ in PAIRS {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
    for (dt, shape, op, flops) in rows {
        let _ = write!(out, "| {shape} | {op} | {:.1} |", flops / 1e6);
        for (two, one) in PAIRS {
            let a = res.get(&(two.to_string(), dt.clone(), shape.clone(), op.clone()));
            let b = res.get(&(one.to_string(), dt.clone(), shape.clone(), op.clone()));
            match (a, b) {
                (Some(a), Some(b)) => {
                    // paired per round: both ran in the same round
                    let r: Vec<f64> = a
                        .iter()
                        .zip(b)
                        .enumerate()
                        .filter(|(r, _)| keep(two, *r) && keep(one, *r))
                        .map(|(_, (x, y))| x / y)
                        .collect();
                    if r.is_empty() {
                        let _ = write!(out, " – |");
                    } else {
                        let (m, lo, hi) = stats(&r);
                        let n = if show_n { format!(" n={}", r.len()) } else { String::new() };
                        let _ = write!(out, " {m:.2} ({lo:.2}–{hi:.2}){n} |");
                    }
                }
                _ => {
                    let _ = write!(out, " – |");
                }
            }
        }
        let _ = writeln!(out);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        worker_main(&args[1..]);
        return;
    }
    let mut rounds = 7usize;
    let mut only: Option<Vec<String>> = None;
    let mut skip_verify = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().and_then(|s| s.parse().ok()).expect("--rounds N"),
            "--only" => only = Some(it.next().expect("--only a,b").split(',').map(String::from).collect()),
            "--skip-verify" => skip_verify = true,
            _ => panic!("usage: gemm_compare [--rounds N] [--only cfg,cfg] [--skip-verify]"),
        }
    }
    let (mm_plain, gemm_v4) = build_variants();
    let bins = Bins { main: std::env::current_exe().unwrap(), mm_plain, gemm_v4 };
    let active: Vec<&Cfg> = CFGS
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
        .collect();

    let mut report = String::new();
    let _ = writeln!(report, "Machine: {}", cpu_model());
    let _ = writeln!(report, "Rounds: {rounds}; load average at start: {}", loadavg());
    let _ = writeln!(report, "\nConfigurations:\n");
    for c in &active {
        let _ = writeln!(report, "- `{}` ({} thread{}): {}", c.name, c.threads, if c.threads == 1 { "" } else { "s" }, c.desc);
    }
    eprint!("{report}");

    // ---- verification --------------------------------------------------
    let mut ver = String::new();
    let mut failures = 0;
    if !skip_verify {
        // group configurations by (binary, MATMUL_NUM_THREADS): one process each
        let mut groups: Vec<((Bin, &str), Vec<&str>)> = Vec::new();
        for c in &active {
            let key = (c.bin, c.mm_threads);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(c.name),
                None => groups.push((key, vec![c.name])),
            }
        }
        // worst diff/tolerance per configuration
        let mut worst: BTreeMap<String, (f64, f64, String)> = BTreeMap::new();
        for ((bin, mmt), names) in &groups {
            eprintln!("[gemm_compare] verifying {names:?} ...");
            let mut a = vec!["verify"];
            a.extend(names.iter().copied());
            let out = run_worker(&bins, *bin, mmt, &a);
            for l in out.lines().filter(|l| l.starts_with("VER\t")) {
                let f: Vec<&str> = l.split('\t').collect();
                let (name, dt, shape, op) = (f[1], f[2], f[3], f[4]);
                let d: f64 = f[5].parse().unwrap();
                let tol: f64 = f[6].parse().unwrap();
                if f[7] != "ok" {
                    failures += 1;
                    eprintln!("VERIFY FAILED: {l}");
                }
                let e = worst.entry(name.to_string()).or_insert((0.0, 0.0, String::new()));
                if d / tol >= e.0 / e.1.max(1e-300) {
                    *e = (d, tol, format!("{dt} {shape} {op}"));
                }
            }
        }
        let _ = writeln!(
            ver,
            "\nVerification against the naive f64-accumulated triple loop (every shape and op, once):\n"
        );
        let _ = writeln!(ver, "| config | result | largest max\\|diff\\| / tolerance | at |");
        let _ = writeln!(ver, "|---|---|---|---|");
        for c in &active {
            if let Some((d, tol, at)) = worst.get(c.name) {
                let _ = writeln!(
                    ver,
                    "| {} | {} | {:.2e} / {:.2e} | {} |",
                    c.name,
                    if d <= tol { "all ok" } else { "FAIL" },
                    d,
                    tol,
                    at
                );
            }
        }
        eprint!("{ver}");
    }

    // ---- timing rounds -------------------------------------------------
    let mut res: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    let mut raw = String::from("round\tconfig\tdtype\tgroup\tshape\top\tm\tn\tk\tsec_per_call\tcalls\tgflops\tbackground_cores\n");
    let mut loads = Vec::new();
    // (config, round) -> CPU cores used by other processes while that worker ran
    let mut bg: BTreeMap<(String, usize), f64> = BTreeMap::new();
    let tick = 100.0; // USER_HZ on Linux
    for r in 0..rounds {
        let la = loadavg();
        let (busy0, steal0) = machine_jiffies();
        let own0 = children_jiffies();
        let t0 = std::time::Instant::now();
        let n = active.len();
        for j in 0..n {
            let c = active[(j + r) % n];
            let (wb0, _) = machine_jiffies();
            let wo0 = children_jiffies();
            let wt0 = std::time::Instant::now();
            let out = run_worker(&bins, c.bin, c.mm_threads, &["run", c.name]);
            let wwall = wt0.elapsed().as_secs_f64();
            let (wb1, _) = machine_jiffies();
            let wown = (children_jiffies() - wo0) as f64 / tick;
            let wother = (((wb1 - wb0) as f64 / tick - wown) / wwall).max(0.0);
            bg.insert((c.name.to_string(), r), wother);
            for l in out.lines().filter(|l| l.starts_with("RES\t")) {
                let f: Vec<&str> = l.split('\t').collect();
                let (m, nn, k): (f64, f64, f64) =
                    (f[6].parse().unwrap(), f[7].parse().unwrap(), f[8].parse().unwrap());
                let sec: f64 = f[9].parse().unwrap();
                let gf = 2.0 * m * nn * k / sec / 1e9;
                res.entry((f[1].into(), f[2].into(), f[4].into(), f[5].into()))
                    .or_default()
                    .push(gf);
                let _ = writeln!(raw, "{r}\t{}\t{gf:.3}\t{wother:.3}", &l[4..]);
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let (busy1, steal1) = machine_jiffies();
        let own = (children_jiffies() - own0) as f64 / tick;
        let busy = (busy1 - busy0) as f64 / tick;
        let other = ((busy - own) / wall).max(0.0);
        let steal = (steal1 - steal0) as f64 / tick / wall;
        let line = format!(
            "round {}: {wall:.0} s, loadavg at start {la}, CPU used by other processes {other:.2} cores, steal {steal:.2} cores",
            r + 1
        );
        eprintln!("[gemm_compare] {line}");
        loads.push(line);
    }

    // ---- report --------------------------------------------------------
    let _ = writeln!(report, "\nBackground load per round (machine busy time from /proc/stat minus this benchmark's own CPU time, averaged over the round):\n");
    for l in &loads {
        let _ = writeln!(report, "- {l}");
    }
    report.push_str(&ver);
    let _ = writeln!(report, "\nGFLOP/s = 2·m·n·k / median time per call; cells: median across rounds (min–max).");
    let f32l = rows("layer", harness::DType::F32);
    let f32s = rows("square", harness::DType::F32);
    let f64r = rows("f64", harness::DType::F64);
    let xr = rows("crossover", harness::DType::F32);
    let all_rounds = |_: &str, _: usize| true;
    let quiet = |c: &str, r: usize| bg.get(&(c.to_string(), r)).is_some_and(|&x| x < QUIET_CORES);
    let (a, q): (Keep, Keep) = (&all_rounds, &quiet);
    table(&mut report, "Dense-layer products, f32, 1 thread", &f32l, ONE_THREAD, &res, a, false);
    table(&mut report, "Dense-layer products, f32, 2 threads", &f32l, TWO_THREADS, &res, a, false);
    table(&mut report, "Square A·B, f32, 1 thread", &f32s, ONE_THREAD, &res, a, false);
    table(&mut report, "Square A·B, f32, 2 threads", &f32s, TWO_THREADS, &res, a, false);
    table(&mut report, "f64, 1 thread", &f64r, ONE_THREAD, &res, a, false);
    table(&mut report, "Crossover sweep (extra dense-layer shapes), f32, 1 thread", &xr, ONE_THREAD, &res, a, false);
    table(&mut report, "Crossover sweep (extra dense-layer shapes), f32, 2 threads", &xr, TWO_THREADS, &res, a, false);
    let _ = writeln!(report, "\n### Threading speed-up (2 threads / 1 thread, paired per round: median (min–max))\n");
    // sorted by work so that the crossover is visible
    let mut all = f32l.clone();
    all.extend(xr.iter().cloned());
    all.extend(f32s.iter().cloned());
    all.sort_by(|a, b| a.3.partial_cmp(&b.3).unwrap());
    speedup_table(&mut report, &all, &res, a, false);
    let _ = writeln!(
        report,
        "\n### Quiet runs only (other processes used < {QUIET_CORES} cores while the worker ran)\n\n\
         n = number of rounds kept. A 2-thread run shares the 2 cores with any background load,\n\
         so these are the numbers to expect on an otherwise idle machine."
    );
    let mut all2 = f32l.clone();
    all2.extend(f32s.iter().cloned());
    table(&mut report, "f32, 1 thread, quiet runs", &all2, ONE_THREAD, &res, q, true);
    table(&mut report, "f32, 2 threads, quiet runs", &all2, TWO_THREADS, &res, q, true);
    let _ = writeln!(report, "\n### Threading speed-up, quiet runs (both runs of the pair quiet)\n");
    speedup_table(&mut report, &all, &res, q, true);

    println!("{report}");
    let tdir = Path::new(MANIFEST_DIR).join("target");
    let _ = std::fs::write(tdir.join("gemm_compare_report.md"), &report);
    let _ = std::fs::write(tdir.join("gemm_compare_raw.tsv"), &raw);
    eprintln!("[gemm_compare] wrote target/gemm_compare_report.md and target/gemm_compare_raw.tsv");
    if failures > 0 {
        eprintln!("[gemm_compare] {failures} verification failure(s)");
        std::process::exit(1);
    }
}

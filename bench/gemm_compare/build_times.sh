#!/usr/bin/env bash
# Clean release build time and dependency count of each GEMM candidate alone.
#
#   cd bench/gemm_compare && ./build_times.sh [REPEATS]      (default 3)
#
# For each candidate a tiny crate depending only on it (and calling its
# f32 product once) is generated under target/buildtime/<name>/. Each repeat
# does `cargo clean` + `cargo build --release --offline` and records wall,
# user and system seconds; candidates are interleaved within every repeat.
# The tiny crates use Cargo's default release profile (as bpnet's root
# Cargo.toml does); set BT_LTO=1 to use lto = "fat", codegen-units = 1.
# BT_ONLY='regex' keeps only the candidates whose name matches.
# Results: target/buildtime/results.tsv (results_lto.tsv with BT_LTO=1) and a
# Markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")"
REPEATS="${1:-3}"
ROOT="$PWD/target/buildtime"
mkdir -p "$ROOT"

if [[ "${BT_LTO:-0}" == "1" ]]; then
  export CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
  PROFILE_DESC='release, lto = "fat", codegen-units = 1'
  RES_NAME=results_lto.tsv
else
  RES_NAME=results.tsv
  PROFILE_DESC='release (Cargo defaults: no LTO, codegen-units = 16)'
fi

MM_CALL='unsafe { matrixmultiply::sgemm(2, 2, 2, 1.0, a.as_ptr(), 2, 1, b.as_ptr(), 2, 1, 0.0, c.as_mut_ptr(), 2, 1) }'
GEMM_CALL='unsafe { gemm::gemm(2, 2, 2, c.as_mut_ptr(), 1, 2, false, a.as_ptr(), 1, 2, b.as_ptr(), 1, 2, 0.0, 1.0, false, false, false, gemm::Parallelism::None) }'
FAER_CALL='{ let (ma, mb) = (faer::MatRef::from_row_major_slice(&a, 2, 2), faer::MatRef::from_row_major_slice(&b, 2, 2)); faer::linalg::matmul::matmul(faer::MatMut::from_row_major_slice_mut(&mut c, 2, 2), faer::Accum::Replace, ma, mb, 1.0f32, faer::Par::Seq) }'

# name | dependency line | call
CANDIDATES=(
  "matrixmultiply|matrixmultiply = \"0.3.11\"|$MM_CALL"
  "matrixmultiply+threading|matrixmultiply = { version = \"0.3.11\", features = [\"threading\"] }|$MM_CALL"
  "gemm|gemm = \"0.19.0\"|$GEMM_CALL"
  "gemm+x86-v4|gemm = { version = \"0.19.0\", features = [\"x86-v4\"] }|$GEMM_CALL"
  "faer|faer = \"0.24.4\"|$FAER_CALL"
  "faer(std,rayon)|faer = { version = \"0.24.4\", default-features = false, features = [\"std\", \"rayon\"] }|$FAER_CALL"
  "faer(std)|faer = { version = \"0.24.4\", default-features = false, features = [\"std\"] }|$FAER_CALL"
)

# busy jiffies (user nice system irq softirq) of the whole machine
busy_jiffies() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }

if [[ -n "${BT_ONLY:-}" ]]; then
  kept=()
  for c in "${CANDIDATES[@]}"; do
    [[ "${c%%|*}" =~ $BT_ONLY ]] && kept+=("$c")
  done
  CANDIDATES=("${kept[@]}")
fi

dir_of() { echo "$ROOT/$(echo "$1" | tr -c 'A-Za-z0-9_\n-' '_')"; }

for c in "${CANDIDATES[@]}"; do
  IFS='|' read -r name dep call <<<"$c"
  d="$(dir_of "$name")"
  mkdir -p "$d/src"
  cat >"$d/Cargo.toml" <<TOML
[package]
name = "bt"
version = "0.1.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
$dep
TOML
  cat >"$d/src/main.rs" <<RS
fn main() {
    let x = std::env::args().count() as f32;
    let (a, b) = ([x, 2.0, 3.0, 4.0], [5.0, x, 7.0, 8.0]);
    let mut c = [0.0f32; 4];
    $call;
    println!("{:?}", c);
}
RS
  (cd "$d" && cargo fetch -q)
done

RES="$ROOT/$RES_NAME"
echo -e "repeat\tcandidate\twall_s\tuser_s\tsys_s\tloadavg\tbackground_cores" >"$RES"
n=${#CANDIDATES[@]}
for ((r = 0; r < REPEATS; r++)); do
  for ((j = 0; j < n; j++)); do
    IFS='|' read -r name dep call <<<"${CANDIDATES[$(((j + r) % n))]}"
    d="$(dir_of "$name")"
    (cd "$d" && cargo clean -q)
    la="$(cut -d' ' -f1-3 /proc/loadavg)"
    b0="$(busy_jiffies)"
    (cd "$d" && /usr/bin/time -f '%e %U %S' cargo build --release --offline -q >/dev/null 2>"$d/build.log")
    b1="$(busy_jiffies)"
    read -r wall user sys <<<"$(tail -n1 "$d/build.log")"
    # CPU used by other processes while this build ran (USER_HZ = 100)
    bg="$(awk -v b0="$b0" -v b1="$b1" -v u="$user" -v s="$sys" -v w="$wall" \
      'BEGIN { x = ((b1 - b0) / 100 - u - s) / w; if (x < 0) x = 0; printf "%.2f", x }')"
    echo -e "$r\t$name\t$wall\t$user\t$sys\t$la\t$bg" | tee -a "$RES" >&2
  done
done

echo "Profile: $PROFILE_DESC; $REPEATS repeats, interleaved; $(nproc) CPUs"
echo
echo "| candidate | crates compiled (deps, excl. the tiny crate) | wall s: median (min–max) | user+sys CPU s: median | background cores: max |"
echo "|---|---:|---:|---:|---:|"
for c in "${CANDIDATES[@]}"; do
  IFS='|' read -r name dep call <<<"$c"
  d="$(dir_of "$name")"
  ndeps=$(cd "$d" && cargo tree -q --offline -e normal,build --prefix none | sed 's/ (\*)$//; s/ (proc-macro)$//' | sort -u | wc -l)
  ndeps=$((ndeps - 1))
  awk -F'\t' -v n="$name" -v nd="$ndeps" '
    $2 == n { w[++k] = $3; cpu[k] = $4 + $5; if ($7 > bgmax) bgmax = $7 }
    function med(a, m,   i, j, t) { for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                   return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
    END { lo = w[1]; hi = w[1]; for (i = 1; i <= k; i++) { if (w[i] < lo) lo = w[i]; if (w[i] > hi) hi = w[i] }
          printf "| %s | %d | %.1f (%.1f–%.1f) | %.1f | %.2f |\n", n, nd, med(w, k), lo, hi, med(cpu, k), bgmax }' "$RES"
done

//! Evaluation metrics. Classification: accuracy, per-class precision, recall
//! and F1, confusion matrix. Regression: MSE, RMSE, MAE, R² (per output,
//! averaged), all in the targets' original units.

use crate::tensor::Matrix;

/// Classification results over `classes` classes.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassMetrics {
    /// Fraction of rows predicted correctly.
    pub accuracy: f64,
    /// `confusion[true][predicted]` counts, `[classes, classes]`.
    pub confusion: Vec<Vec<u64>>,
    /// Per class: precision = TP / (TP + FP) (0 when nothing was predicted).
    pub precision: Vec<f64>,
    /// Per class: recall = TP / (TP + FN) (0 when the class is absent).
    pub recall: Vec<f64>,
    /// Per class: harmonic mean of precision and recall (0 when both are 0).
    pub f1: Vec<f64>,
}

impl ClassMetrics {
    /// Metrics of `predicted` against `truth` (equal lengths, values < classes).
    pub fn new(truth: &[usize], predicted: &[usize], classes: usize) -> Self {
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            confusion[t][p] += 1;
        }
        Self::from_confusion(confusion)
    }

    /// The metrics of a confusion matrix `[classes, classes]` (rows: true
    /// class, columns: predicted), e.g. counted chunk by chunk.
    pub fn from_confusion(confusion: Vec<Vec<u64>>) -> Self {
        let classes = confusion.len();
        let total: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..classes).map(|c| confusion[c][c]).sum();
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let mut precision = Vec::with_capacity(classes);
        let mut recall = Vec::with_capacity(classes);
        let mut f1 = Vec::with_capacity(classes);
        for (c, row) in confusion.iter().enumerate() {
            let tp = row[c];
            let predicted_c: u64 = confusion.iter().map(|r| r[c]).sum();
            let actual_c: u64 = row.iter().sum();
            let (p, r) = (ratio(tp, predicted_c), ratio(tp, actual_c));
            precision.push(p);
            recall.push(r);
            f1.push(if p + r == 0.0 { 0.0 } else { 2.0 * p * r / (p + r) });
        }
        ClassMetrics {
            accuracy: ratio(correct, total),
            confusion,
            precision,
            recall,
            f1,
        }
    }

    /// Unweighted mean of the per-class F1 scores over the classes that
    /// occur in the truth or the predictions (scikit-learn's `f1_score(...,
    /// average='macro')`): a class with neither has no F1, where counting
    /// it as 0 gave 0.3333 for a perfect prediction of a file holding one
    /// of three classes. 0 with no rows.
    pub fn macro_f1(&self) -> f64 {
        let occurs =
            |c: usize| self.confusion[c].iter().sum::<u64>() + self.confusion.iter().map(|r| r[c]).sum::<u64>() > 0;
        let present: Vec<f64> = (0..self.f1.len()).filter(|&c| occurs(c)).map(|c| self.f1[c]).collect();
        present.iter().fold(0.0, |a, f| a + f) / present.len().max(1) as f64
    }

    /// A text table: per-class precision/recall/F1 and the confusion matrix,
    /// classes labelled by `names`.
    pub fn report(&self, names: &[String]) -> String {
        let width = names.iter().map(|n| n.len()).max().unwrap_or(5).max(5);
        let mut s = format!("{:>width$}  precision  recall  f1      support\n", "class");
        for (c, name) in names.iter().enumerate() {
            let support: u64 = self.confusion[c].iter().sum();
            s += &format!(
                "{name:>width$}  {:<9.4}  {:<6.4}  {:<6.4}  {support}\n",
                self.precision[c], self.recall[c], self.f1[c]
            );
        }
        s += &format!(
            "confusion matrix (rows: true class, columns: predicted), order {}\n",
            names.join(", ")
        );
        for row in &self.confusion {
            s += &row.iter().map(|v| format!("{v:>6}")).collect::<String>();
            s.push('\n');
        }
        s
    }
}

/// Regression results: pooled over outputs (MSE, RMSE, MAE), R² averaged
/// over outputs, and each output's own.
#[derive(Debug, Clone, PartialEq)]
pub struct RegressionMetrics {
    /// Mean squared error over every cell `[rows, outputs]` (with several
    /// outputs, in their mixed units: see `targets`).
    pub mse: f64,
    /// Square root of the MSE.
    pub rmse: f64,
    /// Mean absolute error over every cell.
    pub mae: f64,
    /// Coefficient of determination `1 - SS_res / SS_tot`, averaged over
    /// outputs. An output whose truth is constant (its standard deviation
    /// at most 1e-13 of its mean's size: the rounding of targets scaled and
    /// mapped back) has none and is skipped; when every output is, `r2` is
    /// 0, as scikit-learn's `r2_score` gives for an imperfect prediction.
    pub r2: f64,
    /// Whether some output's truth was not constant, so that `r2` is a
    /// coefficient of determination (false: `r2` is the 0 above; a file
    /// of one row, or of one target value).
    pub r2_defined: bool,
    /// Each output's metrics, in output order (scikit-learn's
    /// `multioutput="raw_values"`).
    pub targets: Vec<TargetMetrics>,
}

/// One output's regression metrics, in its own units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetMetrics {
    /// Mean squared error.
    pub mse: f64,
    /// Square root of the MSE.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// `1 - SS_res / SS_tot`; 0 when the truth is constant.
    pub r2: f64,
    /// Whether the truth was not constant (see [`RegressionMetrics::r2`]).
    pub r2_defined: bool,
}

/// One output's sums: rows, mean of the truth, `SS_tot`, `SS_res`, sum of
/// absolute errors.
#[derive(Debug, Clone, Copy, Default)]
struct OutputSums {
    n: f64,
    mean: f64,
    ss_tot: f64,
    ss_res: f64,
    ae: f64,
}

impl OutputSums {
    /// Whether the truth varies (beyond the rounding of scaled targets).
    fn defined(&self) -> bool {
        self.ss_tot > self.n * (1e-13 * self.mean).powi(2)
    }

    fn metrics(&self) -> TargetMetrics {
        let n = self.n.max(1.0);
        let mse = self.ss_res / n;
        let r2_defined = self.defined();
        TargetMetrics {
            mse,
            rmse: mse.sqrt(),
            mae: self.ae / n,
            r2: if r2_defined {
                1.0 - self.ss_res / self.ss_tot
            } else {
                0.0
            },
            r2_defined,
        }
    }
}

impl RegressionMetrics {
    /// Metrics of `predicted` against `truth`, both `[rows, outputs]`.
    pub fn new(truth: &Matrix<f64>, predicted: &Matrix<f64>) -> Self {
        let (n, k) = (truth.rows(), truth.cols());
        let count = (n * k).max(1) as f64;
        let mut se = 0.0;
        let mut ae = 0.0;
        for (t, p) in truth.as_slice().iter().zip(predicted.as_slice()) {
            se += (t - p) * (t - p);
            ae += (t - p).abs();
        }
        let outputs: Vec<OutputSums> = (0..k)
            .map(|j| {
                let col = || (0..n).map(|i| truth.get(i, j));
                let ss_res: f64 = (0..n).map(|i| (truth.get(i, j) - predicted.get(i, j)).powi(2)).sum();
                let ae: f64 = (0..n).map(|i| (truth.get(i, j) - predicted.get(i, j)).abs()).sum();
                let first = truth.as_slice().get(j).copied().unwrap_or(0.0);
                let rows = n as f64;
                if col().all(|t| t == first) {
                    // Constant: no R² (the sum's rounding made SS_tot about
                    // 1e-28, and R² about -1e31, over 20,000 equal values).
                    return OutputSums {
                        n: rows,
                        mean: first,
                        ss_tot: 0.0,
                        ss_res,
                        ae,
                    };
                }
                let rough = col().sum::<f64>() / rows.max(1.0);
                // One correction pass: the mean to the last bits, whatever n.
                let mean = rough + col().map(|t| t - rough).sum::<f64>() / rows.max(1.0);
                let ss_tot: f64 = col().map(|t| (t - mean).powi(2)).sum();
                OutputSums {
                    n: rows,
                    mean,
                    ss_tot,
                    ss_res,
                    ae,
                }
            })
            .collect();
        Self::from_sums(se / count, ae / count, &outputs)
    }

    fn from_sums(mse: f64, mae: f64, outputs: &[OutputSums]) -> Self {
        let targets: Vec<TargetMetrics> = outputs.iter().map(OutputSums::metrics).collect();
        let defined: Vec<f64> = targets.iter().filter(|t| t.r2_defined).map(|t| t.r2).collect();
        RegressionMetrics {
            mse,
            rmse: mse.sqrt(),
            mae,
            // From +0.0: an empty `sum` of f64 is -0.0 (printed "-0.0000").
            r2: defined.iter().fold(0.0, |a, r| a + r) / defined.len().max(1) as f64,
            r2_defined: !defined.is_empty(),
            targets,
        }
    }

    /// One line per output, named by `names` (numbered where they run
    /// out): RMSE, MAE, R², MSE in the output's units; empty for one output.
    pub fn report(&self, names: &[String]) -> String {
        if self.targets.len() < 2 {
            return String::new();
        }
        let label = |j: usize| names.get(j).cloned().unwrap_or_else(|| format!("output {j}"));
        let width = (0..self.targets.len())
            .map(|j| label(j).chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut s = format!(
            "{:>width$}  {:<10}  {:<10}  {:<8}  mse\n",
            "target", "rmse", "mae", "r2"
        );
        for (j, t) in self.targets.iter().enumerate() {
            let r2 = match t.r2_defined {
                true => format!("{:<8.4}", t.r2),
                false => format!("{:<8}", "(const)"),
            };
            s += &format!(
                "{:>width$}  {:<10.4}  {:<10.4}  {r2}  {:.4}\n",
                label(j),
                t.rmse,
                t.mae,
                t.mse
            );
        }
        s
    }
}

/// [`RegressionMetrics`] accumulated row by row, for data streamed in
/// chunks: squared and absolute errors summed in row order (the same sums
/// as [`RegressionMetrics::new`]); each output's `SS_tot` by Welford's
/// update (equal to the two-pass sum up to rounding).
#[derive(Debug, Clone, Default)]
pub struct RegressionSums {
    se: f64,
    ae: f64,
    count: usize,
    outputs: Vec<OutputSums>,
}

impl RegressionSums {
    /// Adds rows `truth`, `predicted` (`[rows, k]`, original units).
    pub fn push(&mut self, truth: &Matrix<f64>, predicted: &Matrix<f64>) {
        let k = truth.cols();
        self.outputs.resize(k, OutputSums::default());
        for (t, p) in truth.as_slice().iter().zip(predicted.as_slice()) {
            self.se += (t - p) * (t - p);
            self.ae += (t - p).abs();
        }
        self.count += truth.rows() * k;
        for i in 0..truth.rows() {
            for (j, o) in self.outputs.iter_mut().enumerate() {
                let (t, p) = (truth.get(i, j), predicted.get(i, j));
                o.n += 1.0;
                let d = t - o.mean;
                o.mean += d / o.n;
                o.ss_tot += d * (t - o.mean);
                o.ss_res += (t - p).powi(2);
                o.ae += (t - p).abs();
            }
        }
    }

    /// The metrics of the rows pushed.
    pub fn finish(&self) -> RegressionMetrics {
        let count = self.count.max(1) as f64;
        RegressionMetrics::from_sums(self.se / count, self.ae / count, &self.outputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_f1_averages_the_classes_that_occur() {
        // Only class 0 in truth and predictions (of 3): a perfect 1.0.
        let m = ClassMetrics::new(&[0, 0, 0], &[0, 0, 0], 3);
        assert_eq!((m.accuracy, m.macro_f1()), (1.0, 1.0));
        // Class 2 predicted but never true: it counts (F1 0), class 1 not.
        let m = ClassMetrics::new(&[0, 0, 0], &[0, 0, 2], 3);
        let f0 = 2.0 * 1.0 * (2.0 / 3.0) / (1.0 + 2.0 / 3.0);
        assert!((m.macro_f1() - f0 / 2.0).abs() < 1e-12, "{}", m.macro_f1());
        // No rows.
        assert_eq!(ClassMetrics::new(&[], &[], 3).macro_f1().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn class_metrics_by_hand() {
        // truth 0 0 1 1 2, predicted 0 1 1 1 0
        let m = ClassMetrics::new(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(m.confusion, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        assert_eq!(m.precision, vec![0.5, 2.0 / 3.0, 0.0]);
        assert_eq!(m.recall, vec![0.5, 1.0, 0.0]);
        assert!((m.f1[1] - 0.8).abs() < 1e-12 && m.f1[2] == 0.0);
        assert!(
            m.report(&["a".into(), "b".into(), "c".into()])
                .contains("confusion matrix")
        );
    }

    #[test]
    fn regression_metrics_by_hand() {
        let t = Matrix::from_vec(4, 1, vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let p = Matrix::from_vec(4, 1, vec![1.0, 2.0, 3.0, 6.0]).unwrap();
        let m = RegressionMetrics::new(&t, &p);
        assert!((m.mse - 1.0).abs() < 1e-12 && (m.rmse - 1.0).abs() < 1e-12 && (m.mae - 0.5).abs() < 1e-12);
        // SS_tot = 5, SS_res = 4
        assert!((m.r2 - 0.2).abs() < 1e-12 && m.r2_defined);
    }

    /// Each output's own metrics, as scikit-learn's `raw_values` give
    /// them; the pooled MSE is their mean (equal rows per output), and the
    /// streamed sums give the same up to rounding.
    #[test]
    fn per_target_metrics_by_hand_and_streamed() {
        // Output 0: truth 1 2 3 4, predicted 1 2 3 6 (as above). Output 1:
        // truth 10 10 10 10 (constant), predicted 11 9 10 14.
        let t = Matrix::from_vec(4, 2, vec![1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 4.0, 10.0]).unwrap();
        let p = Matrix::from_vec(4, 2, vec![1.0, 11.0, 2.0, 9.0, 3.0, 10.0, 6.0, 14.0]).unwrap();
        let m = RegressionMetrics::new(&t, &p);
        let [a, b] = [m.targets[0], m.targets[1]];
        assert_eq!(m.targets.len(), 2);
        assert!((a.mse - 1.0).abs() < 1e-12 && (a.mae - 0.5).abs() < 1e-12 && (a.r2 - 0.2).abs() < 1e-12);
        assert!(a.r2_defined && !b.r2_defined && b.r2 == 0.0);
        // No output with a defined R²: +0, not the -0 an empty f64 sum gives.
        let none = RegressionMetrics::from_sums(0.0, 0.0, &[OutputSums::default()]);
        assert_eq!(none.r2.to_bits(), 0.0f64.to_bits());
        assert!(!none.r2_defined);
        // 1 + 1 + 0 + 16 over 4 rows; |errors| 1 1 0 4.
        assert!((b.mse - 4.5).abs() < 1e-12 && (b.rmse - 4.5f64.sqrt()).abs() < 1e-12 && (b.mae - 1.5).abs() < 1e-12);
        assert!((m.mse - (a.mse + b.mse) / 2.0).abs() < 1e-12);
        assert!((m.mae - (a.mae + b.mae) / 2.0).abs() < 1e-12);
        assert_eq!(m.r2, a.r2, "the constant output is left out of the mean");
        let report = m.report(&["x".into()]);
        assert!(
            report.contains("     x  1.0000") && report.contains("output 1") && report.contains("(const)"),
            "{report}"
        );
        // Streamed in chunks of 1 and 3 rows.
        let mut sums = RegressionSums::default();
        let rows = |r: std::ops::Range<usize>, m: &Matrix<f64>| {
            Matrix::from_vec(r.len(), 2, m.as_slice()[r.start * 2..r.end * 2].to_vec()).unwrap()
        };
        sums.push(&rows(0..1, &t), &rows(0..1, &p));
        sums.push(&rows(1..4, &t), &rows(1..4, &p));
        let s = sums.finish();
        for (x, y) in s.targets.iter().zip(&m.targets) {
            assert!((x.mse - y.mse).abs() < 1e-12 && (x.mae - y.mae).abs() < 1e-12 && (x.r2 - y.r2).abs() < 1e-12);
            assert_eq!(x.r2_defined, y.r2_defined);
        }
        // One output: no per-target report (the summary says it all).
        let col = |m: &Matrix<f64>| Matrix::from_vec(4, 1, m.as_slice().iter().step_by(2).copied().collect()).unwrap();
        let one = RegressionMetrics::new(&col(&t), &col(&p));
        assert_eq!(one.targets, vec![a]);
        assert!(one.report(&["x".into()]).is_empty());
    }

    #[test]
    fn constant_truth_has_no_r2_even_after_rounding() {
        // 100 scaled by a standard deviation and mapped back is 100 give or
        // take an ulp: SS_tot about 1e-28 made R² about -1e31.
        let mut truth = vec![100.0; 12];
        truth[3] = 100.0 + 1.4210854715202004e-14;
        truth[7] = 100.0 - 1.4210854715202004e-14;
        let t = Matrix::from_vec(12, 1, truth.clone()).unwrap();
        let p = Matrix::from_vec(12, 1, vec![99.0; 12]).unwrap();
        assert_eq!(RegressionMetrics::new(&t, &p).r2, 0.0);
        assert!(!RegressionMetrics::new(&t, &p).r2_defined);
        let mut sums = RegressionSums::default();
        sums.push(&t, &p);
        assert_eq!(sums.finish().r2, 0.0);
        assert!(!sums.finish().r2_defined);
        // Exactly equal values of any count: the mean of 20,011 copies of
        // one value is off by some ulps, which gave SS_tot > 0.
        for v in [100.0, 123.456_789_012_345, 1e7 + 0.1] {
            let t = Matrix::from_vec(20_011, 1, vec![v; 20_011]).unwrap();
            let p = Matrix::from_vec(20_011, 1, vec![v + 1.0; 20_011]).unwrap();
            assert_eq!(RegressionMetrics::new(&t, &p).r2, 0.0, "{v}");
        }
        // Beside a varying output it is skipped, not averaged in.
        let two: Vec<f64> = truth.iter().enumerate().flat_map(|(i, &c)| [c, i as f64]).collect();
        let pred: Vec<f64> = (0..12).flat_map(|i| [99.0, i as f64]).collect();
        let (t, p) = (
            Matrix::from_vec(12, 2, two).unwrap(),
            Matrix::from_vec(12, 2, pred).unwrap(),
        );
        assert_eq!(RegressionMetrics::new(&t, &p).r2, 1.0);
        // A real spread far from zero still counts: sd 1e-6 at mean 1e6.
        let t = Matrix::from_vec(4, 1, vec![1e6, 1e6 + 1e-6, 1e6 - 1e-6, 1e6]).unwrap();
        let m = RegressionMetrics::new(&t, &t);
        assert_eq!(m.r2, 1.0);
    }
}

//! Axis ranges and tick positions that stay finite and few whatever the
//! data: huge, tiny, equal or non-finite values never make a range that
//! overflows or a tick loop that does not end.

/// The largest magnitude an axis end may have, so that the span and every
/// tick step computed from it stay finite.
const LIMIT: f64 = f64::MAX / 8.0;

/// The smallest span of an axis relative to the magnitude of its ends, so
/// that ticks one step apart are distinct numbers.
const MIN_RELATIVE_SPAN: f64 = 1e-9;

/// `(lo, hi)` made drawable: finite, within `±LIMIT`, `lo < hi`, and wide
/// enough relative to its magnitude. Non-finite or reversed ends give
/// `(0, 1)`; a span too narrow is widened around its middle.
pub(super) fn axis_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) || lo > hi {
        return (0.0, 1.0);
    }
    let (lo, hi) = (lo.clamp(-LIMIT, LIMIT), hi.clamp(-LIMIT, LIMIT));
    let magnitude = lo.abs().max(hi.abs());
    if hi - lo > magnitude * MIN_RELATIVE_SPAN {
        return (lo, hi);
    }
    let half = (magnitude * 1e-6).max(1.0);
    let mid = (lo / 2.0 + hi / 2.0).clamp(half - LIMIT, LIMIT - half);
    (mid - half, mid + half)
}

/// At most `max` "nice" tick positions (multiples of 1, 2 or 5 times a power
/// of ten) within the range; empty when `range` is not drawable (see
/// [`axis_range`]) or `max < 2`. The loop runs at most `max` times.
pub(super) fn ticks((lo, hi): (f64, f64), max: usize) -> Vec<f64> {
    if max < 2 || axis_range(lo, hi) != (lo, hi) {
        return Vec::new();
    }
    let step = nice_step((hi - lo) / (max - 1) as f64);
    if !(step.is_finite() && step > 0.0) {
        return Vec::new();
    }
    // Multiples of `step`, allowing for rounding (-0.3 / 0.1 = -2.9999...).
    let slack = 1e-9;
    let first = (lo / step - slack).ceil();
    let mut out = Vec::with_capacity(max);
    for k in 0..max {
        let v = (first + k as f64) * step;
        if v > hi + step * slack {
            break;
        }
        out.push(v.clamp(lo, hi));
    }
    out
}

/// The smallest of 1, 2, 5 or 10 times a power of ten that is at least
/// `raw` (a positive, finite number).
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: f64 = f64::MAX;
    const AWKWARD: [(f64, f64); 14] = [
        (1.0, 1.7e308),
        (-BIG, BIG),
        (BIG * 0.9, BIG),
        (-BIG, -BIG * 0.99),
        (f64::NEG_INFINITY, f64::INFINITY),
        (0.0, f64::INFINITY),
        (f64::NAN, 1.0),
        (1.0, f64::NAN),
        (5.0, 5.0),
        (0.0, 0.0),
        (1e-300, 2e-300),
        (0.0, 1e-300),
        (1e10, 1e10 + 1e-5),
        (3.0, 2.0),
    ];

    fn drawable((lo, hi): (f64, f64)) -> bool {
        let span = hi - lo;
        lo.is_finite() && hi.is_finite() && span.is_finite() && span > lo.abs().max(hi.abs()) * 1e-10
    }

    #[test]
    fn ranges_are_always_drawable() {
        for (lo, hi) in AWKWARD {
            let r = axis_range(lo, hi);
            assert!(drawable(r), "({lo:e}, {hi:e}) -> {r:?}");
            assert_eq!(axis_range(r.0, r.1), r, "a drawable range is kept");
        }
        assert_eq!(axis_range(1e-300, 2e-300), (1e-300, 2e-300));
        assert_eq!(axis_range(f64::NAN, 1.0), (0.0, 1.0));
        assert_eq!(axis_range(5.0, 5.0), (4.0, 6.0));
    }

    #[test]
    fn ticks_are_few_distinct_and_inside() {
        for (lo, hi) in AWKWARD {
            let r = axis_range(lo, hi);
            for max in [8, 80] {
                let t = ticks(r, max);
                assert!((2..=max).contains(&t.len()), "{r:?}, max {max}: {t:?}");
                assert!(
                    t.iter().all(|v| v.is_finite() && *v >= r.0 && *v <= r.1),
                    "{r:?}: {t:?}"
                );
                assert!(t.windows(2).all(|w| w[0] < w[1]), "{r:?}: {t:?}");
            }
        }
    }

    #[test]
    fn ticks_are_round_numbers() {
        // Equal up to rounding, relative to the largest tick.
        let near = |got: Vec<f64>, want: &[f64]| {
            let tol = 1e-12 * want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() <= tol)
        };
        assert!(near(ticks((0.0, 1.0), 8), &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]));
        assert!(near(ticks((-0.3, 0.25), 8), &[-0.3, -0.2, -0.1, 0.0, 0.1, 0.2]));
        assert!(near(ticks((1.0, 1000.0), 8), &[200.0, 400.0, 600.0, 800.0, 1000.0]));
        assert!(near(
            ticks((0.0, 1e-300), 8),
            &[0.0, 2e-301, 4e-301, 6e-301, 8e-301, 1e-300]
        ));
    }

    #[test]
    fn unusable_input_gives_no_ticks() {
        assert!(ticks((f64::NAN, 1.0), 8).is_empty());
        assert!(ticks((0.0, f64::INFINITY), 8).is_empty());
        assert!(ticks((1.0, 1.0), 8).is_empty());
        assert!(ticks((0.0, 1.0), 1).is_empty());
        assert!(ticks((0.0, 5e-324), 8).is_empty());
    }
}

//! Cutting lines to a y band, so that a fixed axis range never lets a line
//! run outside the plotting area.

/// Splits a polyline into the pieces that lie within `lo <= y <= hi`,
/// cutting segments where they cross the band's edges (linear
/// interpolation). Non-finite points break the line.
pub fn clip_to_band(points: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let ok = |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let inside = |p: &(f64, f64)| ok(p) && p.1 >= lo && p.1 <= hi;
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    if points.len() == 1 && inside(&points[0]) {
        pieces.push(vec![points[0]]);
    }
    // Whether the last piece ends at the start of the current segment.
    let mut open = false;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let Some((t0, t1)) = (ok(&a) && ok(&b)).then(|| segment_in_band(a.1, b.1, lo, hi)).flatten() else {
            open = false;
            continue;
        };
        let at = |t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        match pieces.last_mut() {
            Some(piece) if open && t0 == 0.0 => piece.push(at(t1)),
            _ => pieces.push(vec![at(t0), at(t1)]),
        }
        open = t1 == 1.0;
    }
    pieces
}

/// The parameter interval `[t0, t1]` of the segment from `ya` to `yb` that
/// lies in `[lo, hi]`, if any.
fn segment_in_band(ya: f64, yb: f64, lo: f64, hi: f64) -> Option<(f64, f64)> {
    if ya == yb {
        return (ya >= lo && ya <= hi).then_some((0.0, 1.0));
    }
    let t_lo = (lo - ya) / (yb - ya);
    let t_hi = (hi - ya) / (yb - ya);
    let t0 = t_lo.min(t_hi).max(0.0);
    let t1 = t_lo.max(t_hi).min(1.0);
    (t0 <= t1).then_some((t0, t1))
}

//! Figures: line clipping, PNG and SVG output with embedded-font text.

use bpnet_lab::plot::{Figure, Legend, Panel, Series, Ticks, WITH_BN, WITHOUT_BN, clip_to_band};

#[test]
fn clipping_cuts_lines_at_the_band_edges() {
    // Inside throughout: one piece, unchanged.
    let pts = [(0.0, 0.5), (1.0, 0.6), (2.0, 0.7)];
    assert_eq!(clip_to_band(&pts, 0.0, 1.0), vec![pts.to_vec()]);
    // Leaves through the top at x = 1.5 and comes back at x = 2.5.
    let pts = [(0.0, 0.5), (1.0, 0.5), (2.0, 1.5), (3.0, 0.5)];
    assert_eq!(
        clip_to_band(&pts, 0.0, 1.0),
        vec![vec![(0.0, 0.5), (1.0, 0.5), (1.5, 1.0)], vec![(2.5, 1.0), (3.0, 0.5)]]
    );
    // Entirely below: nothing; a NaN breaks the line.
    assert!(clip_to_band(&[(0.0, -1.0), (1.0, -2.0)], 0.0, 1.0).is_empty());
    let pts = [(0.0, 0.2), (1.0, 0.4), (2.0, f64::NAN), (3.0, 0.4), (4.0, 0.2)];
    assert_eq!(
        clip_to_band(&pts, 0.0, 1.0),
        vec![vec![(0.0, 0.2), (1.0, 0.4)], vec![(3.0, 0.4), (4.0, 0.2)]]
    );
    // Crossing the whole band in one segment keeps its middle.
    assert_eq!(
        clip_to_band(&[(0.0, -1.0), (4.0, 3.0)], 0.0, 2.0),
        vec![vec![(1.0, 0.0), (3.0, 2.0)]]
    );
}

fn sample_figure() -> Figure {
    let mut acc = Panel::new("(a) Test accuracy", "training step", "test accuracy (%)");
    acc.x_ticks = Ticks::Thousands;
    acc.y_ticks = Ticks::Percent;
    acc.y_range = Some((0.7, 1.0));
    acc.legend = Legend::LowerRight;
    let curve = |k: f64| {
        (0..=50)
            .map(|i| (i as f64 * 1000.0, 1.0 - 0.3 * (-(i as f64) / k).exp()))
            .collect()
    };
    acc.series.push(Series::new("without BN", WITHOUT_BN, curve(12.0)));
    acc.series.push(Series::new("with BN", WITH_BN, curve(3.0)));
    let mut grads = Panel::new("(b) Gradient norms", "training step", "gradient L2 norm (log scale)");
    grads.log_y = true;
    grads
        .series
        .push(Series::new("layers.0.weight", WITH_BN, vec![(0.0, 1e-4), (10.0, 1e-2)]).dashed());
    grads.series.push(Series::new(
        "layers.9.weight",
        WITHOUT_BN,
        vec![(0.0, 1.0), (10.0, 0.1)],
    ));
    Figure::new("A sample figure", vec![acc, grads])
}

#[test]
fn figures_render_as_png_and_svg_with_text() {
    let fig = sample_figure();
    let png = fig.render_png().unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height big-endian at bytes 16..24.
    let (w, h) = fig.size();
    assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), w);
    assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), h);
    let svg = fig.render_svg().unwrap();
    assert!(svg.starts_with("<svg"));
    for text in [
        "A sample figure",
        "(a) Test accuracy",
        "without BN",
        "with BN",
        "test accuracy (%)",
        "20k",
        "90%",
    ] {
        assert!(svg.contains(text), "SVG lacks '{text}'");
    }
    if let Some(dir) = std::env::var_os("BPNET_PLOT_SAMPLE_DIR") {
        fig.save(std::path::Path::new(&dir), "sample").unwrap();
    }
}

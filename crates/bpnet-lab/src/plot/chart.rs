//! Drawing a [`Figure`] on any plotters backend (bitmap or SVG).

use super::axis::{axis_range, ticks};
use super::clip::clip_to_band;
use super::{Figure, Legend, LineStyle, Panel, Series, Ticks};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};
use std::sync::OnceLock;

type Drawn = std::result::Result<(), String>;

fn msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Registers DejaVu Sans (regular and bold) as plotters' `sans-serif`, once.
fn fonts() -> Drawn {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let ok = *LOADED.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded DejaVu Sans font could not be loaded".into())
    }
}

/// Draws `fig` into `rgb: [height * width * 3]`.
pub(super) fn render_bitmap(fig: &Figure, rgb: &mut [u8]) -> Drawn {
    fonts()?;
    let root = BitMapBackend::with_buffer(rgb, fig.size()).into_drawing_area();
    draw(&root, fig)?;
    root.present().map_err(msg)
}

/// Draws `fig` as an SVG document into `out`.
pub(super) fn render_svg(fig: &Figure, out: &mut String) -> Drawn {
    fonts()?;
    let root = SVGBackend::with_string(out, fig.size()).into_drawing_area();
    draw(&root, fig)?;
    root.present().map_err(msg)
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, fig: &Figure) -> Drawn {
    root.fill(&WHITE).map_err(msg)?;
    let body = if fig.title.is_empty() {
        root.clone()
    } else {
        let style = ("sans-serif", 24).into_font().style(FontStyle::Bold);
        root.titled(&fig.title, style).map_err(msg)?
    };
    let areas = body.split_evenly((1, fig.panels.len().max(1)));
    for (area, panel) in areas.iter().zip(&fig.panels) {
        draw_panel(area, panel)?;
    }
    Ok(())
}

/// The lines of a panel in drawing coordinates (log10 of y on a log axis),
/// clipped to the y range, and that range.
type Prepared<'a> = (Vec<(&'a Series, Vec<Vec<(f64, f64)>>)>, (f64, f64), (f64, f64));

fn prepare(p: &Panel) -> Prepared<'_> {
    let ty = |y: f64| {
        if p.log_y {
            if y > 0.0 { y.log10() } else { f64::NAN }
        } else {
            y
        }
    };
    let moved: Vec<Vec<(f64, f64)>> = p
        .series
        .iter()
        .map(|s| s.points.iter().map(|&(x, y)| (x, ty(y))).collect())
        .collect();
    let finite = || moved.iter().flatten().filter(|(x, y)| x.is_finite() && y.is_finite());
    let x = padded(finite().map(|q| q.0), 0.0);
    let fixed = p.y_range.map(|(lo, hi)| (ty(lo), ty(hi)));
    let y = match fixed {
        Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
        _ => padded(finite().map(|q| q.1), 0.05),
    };
    let (x, y) = (axis_range(x.0, x.1), axis_range(y.0, y.1));
    let lines = p
        .series
        .iter()
        .zip(moved)
        .map(|(s, pts)| (s, clip_to_band(&pts, y.0, y.1)))
        .collect();
    (lines, x, y)
}

/// The extent of `values`, widened by `pad` of its length on each side
/// (by 1 when all values are equal; `(0, 1)` when there are none), never
/// beyond the finite numbers.
fn padded(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        return (lo - 1.0, hi + 1.0);
    }
    // Halves first: `hi - lo` overflows when the ends are huge and apart.
    let d = (hi / 2.0 - lo / 2.0) * (2.0 * pad);
    ((lo - d).max(-f64::MAX), (hi + d).min(f64::MAX))
}

fn style_of(series: &Series) -> ShapeStyle {
    let c = series.color;
    ShapeStyle {
        color: RGBColor(c.0, c.1, c.2).to_rgba(),
        filled: false,
        stroke_width: series.width,
    }
}

/// A 26-pixel sample of a line starting at `(x, y)`, with a gap if dashed.
fn line_sample<'a, DB: DrawingBackend + 'a>(
    x: i32,
    y: i32,
    style: ShapeStyle,
    dashed: bool,
) -> DynElement<'a, DB, (i32, i32)> {
    let gap = if dashed { 6 } else { 0 };
    (EmptyElement::at((x, y))
        + PathElement::new(vec![(0, 0), (12 - gap / 2, 0)], style)
        + PathElement::new(vec![(12 + gap / 2, 0), (26, 0)], style))
    .into_dyn()
}

const LEGEND_FONT: (&str, i32) = ("sans-serif", 15);
const LEGEND_ROW: i32 = 24;
/// Left edge of the plotting area within a panel (margin + y label area).
const PLOT_LEFT: i32 = 16 + 84;

/// The legend entries of `p` laid out in rows below the chart: per entry its
/// series and its `(x, row)` position, plus the number of rows.
fn legend_layout<'a, DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &'a Panel,
) -> (Vec<(&'a Series, i32, i32)>, i32) {
    let width = area.dim_in_pixel().0 as i32 - 16;
    let (mut x, mut row) = (PLOT_LEFT, 0);
    let mut out = Vec::new();
    for s in p.series.iter().filter(|s| !s.label.is_empty()) {
        let text = area
            .estimate_text_size(&s.label, &LEGEND_FONT.into_text_style(area))
            .map_or(8 * s.label.len() as u32, |t| t.0);
        let w = 26 + 8 + text as i32 + 28;
        if x + w > width && x > PLOT_LEFT {
            x = PLOT_LEFT;
            row += 1;
        }
        out.push((s, x, row));
        x += w;
    }
    let rows = if out.is_empty() { 0 } else { row + 1 };
    (out, rows)
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Drawn {
    if p.legend != Legend::Below {
        return draw_chart(area, p);
    }
    let (entries, rows) = legend_layout(area, p);
    if rows == 0 {
        return draw_chart(area, p);
    }
    let height = area.dim_in_pixel().1 as i32;
    let (top, bottom) = area.split_vertically(height - rows * LEGEND_ROW - 10);
    draw_chart(&top, p)?;
    for (s, x, row) in entries {
        let y = row * LEGEND_ROW + LEGEND_ROW / 2;
        bottom
            .draw(&line_sample::<DB>(x, y, style_of(s), s.style == LineStyle::Dashed))
            .map_err(msg)?;
        let font = TextStyle::from(LEGEND_FONT.into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        bottom
            .draw(&Text::new(s.label.as_str(), (x + 34, y), font))
            .map_err(msg)?;
    }
    Ok(())
}

fn draw_chart<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Drawn {
    let (lines, (x0, x1), (y0, y1)) = prepare(p);
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(with_ticks(x0, x1), with_ticks(y0, y1))
        .map_err(msg)?;
    let xf = |v: &f64| tick_label(p.x_ticks, *v, false);
    let yf = |v: &f64| tick_label(p.y_ticks, *v, p.log_y);
    chart
        .configure_mesh()
        .x_desc(p.x_label.as_str())
        .y_desc(p.y_label.as_str())
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .bold_line_style(RGBColor(214, 214, 214))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(msg)?;
    let inside = legend_position(p.legend);
    for band in p.series.iter().filter(|s| s.style == LineStyle::Band) {
        let c = band.color;
        let fill = RGBColor(c.0, c.1, c.2).mix(0.2).filled();
        let points: Vec<(f64, f64)> = band.points.iter().map(|&(x, y)| (x, y.clamp(y0, y1))).collect();
        chart
            .draw_series(std::iter::once(Polygon::new(points, fill)))
            .map_err(msg)?;
    }
    for (series, pieces) in lines.into_iter().filter(|(s, _)| s.style != LineStyle::Band) {
        let style = style_of(series);
        let pieces = if pieces.is_empty() { vec![Vec::new()] } else { pieces };
        for (i, piece) in pieces.into_iter().enumerate() {
            // A piece of one point is a line of no length, drawn as nothing
            // (a history of one epoch): it is marked by a dot instead.
            if let [point] = piece[..] {
                chart
                    .draw_series(std::iter::once(Circle::new(point, 4, style.filled())))
                    .map_err(msg)?;
            }
            let anno = match series.style {
                LineStyle::Solid => chart.draw_series(LineSeries::new(piece, style)),
                LineStyle::Dashed | LineStyle::Band => chart.draw_series(DashedLineSeries::new(piece, 10, 6, style)),
            }
            .map_err(msg)?;
            if i == 0 && inside.is_some() && !series.label.is_empty() {
                let dashed = series.style == LineStyle::Dashed;
                anno.label(series.label.as_str()).legend(move |(x, y)| {
                    let gap = if dashed { 6 } else { 0 };
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (12 - gap / 2, 0)], style)
                        + PathElement::new(vec![(12 + gap / 2, 0), (26, 0)], style)
                });
            }
        }
    }
    if let Some(pos) = inside {
        chart
            .configure_series_labels()
            .position(pos)
            .margin(10)
            .legend_area_size(34)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(170, 170, 170))
            .label_font(LEGEND_FONT)
            .draw()
            .map_err(msg)?;
    }
    Ok(())
}

/// Labelled ticks per axis, and lighter grid lines.
const TICKS: usize = 8;
const LIGHT_TICKS: usize = 80;

/// An `f64` axis with ticks of our own: plotters' tick search can loop
/// forever on huge spans.
struct Ticked {
    coord: RangedCoordf64,
    bold: Vec<f64>,
    light: Vec<f64>,
}

/// The axis from `lo` to `hi` (a range from [`prepare`]).
fn with_ticks(lo: f64, hi: f64) -> Ticked {
    Ticked {
        coord: (lo..hi).into(),
        bold: ticks((lo, hi), TICKS),
        light: ticks((lo, hi), LIGHT_TICKS),
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.coord.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let all = if hint.weight().allow_light_points() {
            &self.light
        } else {
            &self.bold
        };
        all.iter().take(hint.max_num_points()).copied().collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.coord.range()
    }
}

fn legend_position(l: Legend) -> Option<SeriesLabelPosition> {
    match l {
        Legend::UpperLeft => Some(SeriesLabelPosition::UpperLeft),
        Legend::UpperRight => Some(SeriesLabelPosition::UpperRight),
        Legend::LowerLeft => Some(SeriesLabelPosition::LowerLeft),
        Legend::LowerRight => Some(SeriesLabelPosition::LowerRight),
        Legend::Below | Legend::Hidden => None,
    }
}

/// A tick label for the value `v` (`log10` of the value on a log axis).
fn tick_label(ticks: Ticks, v: f64, log: bool) -> String {
    let v = if log { 10f64.powf(v) } else { v };
    if log {
        return format!("{v:.0e}");
    }
    if v.abs() >= 1e9 {
        return format!("{v:.2e}");
    }
    match ticks {
        Ticks::Plain => trim(format!("{v:.4}")),
        Ticks::Thousands if v.abs() >= 1000.0 => format!("{}k", trim(format!("{:.1}", v / 1000.0))),
        Ticks::Thousands => trim(format!("{v:.0}")),
        Ticks::Percent => format!("{}%", trim(format!("{:.1}", v * 100.0))),
    }
}

/// `"0.2500"` -> `"0.25"`, `"3.0"` -> `"3"`, `"-0"` -> `"0"`.
fn trim(s: String) -> String {
    let t = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if t == "-0" { "0".into() } else { t.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(Ticks::Thousands, 20000.0, false), "20k");
        assert_eq!(tick_label(Ticks::Thousands, 2500.0, false), "2.5k");
        assert_eq!(tick_label(Ticks::Thousands, 500.0, false), "500");
        assert_eq!(tick_label(Ticks::Percent, 0.975, false), "97.5%");
        assert_eq!(tick_label(Ticks::Percent, 0.9, false), "90%");
        assert_eq!(tick_label(Ticks::Plain, 0.25, false), "0.25");
        assert_eq!(tick_label(Ticks::Plain, -0.00001, false), "0");
        assert_eq!(tick_label(Ticks::Plain, -3.0, true), "1e-3");
        assert_eq!(tick_label(Ticks::Plain, 1.7e308, false), "1.70e308");
        assert_eq!(tick_label(Ticks::Thousands, -2.5e12, false), "-2.50e12");
    }

    #[test]
    fn padded_extent() {
        assert_eq!(padded([1.0, 3.0].into_iter(), 0.5), (0.0, 4.0));
        assert_eq!(padded([2.0].into_iter(), 0.1), (1.0, 3.0));
        assert_eq!(padded(std::iter::empty(), 0.1), (0.0, 1.0));
        assert_eq!(padded([-f64::MAX, f64::MAX].into_iter(), 0.05), (-f64::MAX, f64::MAX));
        assert_eq!(padded([-f64::MAX, f64::MAX].into_iter(), 0.0), (-f64::MAX, f64::MAX));
    }

    /// Panels whose data would make plotters' own tick search spin forever
    /// or its range checks panic.
    fn awkward_panels() -> Vec<Panel> {
        let data: [&[(f64, f64)]; 7] = [
            &[(1.0, 1.0), (2.0, 1.7e308)],
            &[(1.0, -f64::MAX), (2.0, f64::MAX), (3.0, f64::NAN), (4.0, f64::INFINITY)],
            &[(-f64::MAX, 1.0), (f64::MAX, 2.0), (f64::NEG_INFINITY, 3.0)],
            &[(1.0, 5.0), (2.0, 5.0)],
            &[(1.0, 1e-300), (2.0, 2e-300), (3.0, f64::NAN)],
            &[(0.0, 0.0), (1e-300, 1e-300)],
            &[(f64::NAN, f64::NAN), (f64::INFINITY, f64::NEG_INFINITY)],
        ];
        let mut panels: Vec<Panel> = data
            .iter()
            .map(|pts| {
                let mut p = Panel::new("awkward", "x", "y");
                p.series.push(Series::new("line", super::super::THIRD, pts.to_vec()));
                p
            })
            .collect();
        let mut fixed = panels[0].clone();
        fixed.y_range = Some((0.0, f64::INFINITY));
        let mut log = panels[1].clone();
        log.log_y = true;
        panels.extend([fixed, log]);
        panels
    }

    #[test]
    fn prepared_ranges_are_drawable() {
        for p in awkward_panels() {
            let (_, x, y) = prepare(&p);
            for r in [x, y] {
                assert_eq!(axis_range(r.0, r.1), r, "{:?}", p.series[0].points);
                assert!(!ticks(r, TICKS).is_empty(), "{r:?}");
            }
        }
    }

    #[test]
    fn huge_tiny_and_non_finite_values_are_drawn() {
        for p in awkward_panels() {
            let fig = Figure::new("awkward", vec![p]);
            let mut svg = String::new();
            render_svg(&fig, &mut svg).unwrap();
            assert!(svg.contains("</svg>"));
        }
    }
}

//! Figures as PNG and SVG, drawn in pure Rust with plotters.
//!
//! Text is set in DejaVu Sans, compiled into the binary from the `dejavu`
//! crate and rasterized by plotters' `ab_glyph` backend, so drawing needs no
//! system font, fontconfig or graphics library. A [`Figure`] is one or more
//! [`Panel`]s side by side, each a line chart of [`Series`]; it is saved as
//! `STEM.png` (raster, for reports) and `STEM.svg` (vector).
//!
//! ```
//! use bpnet_lab::plot::{Figure, Panel, Series, WITH_BN};
//! let mut panel = Panel::new("loss", "step", "loss");
//! panel.series.push(Series::new("with BN", WITH_BN, vec![(0.0, 2.3), (100.0, 0.4)]));
//! let fig = Figure::new("Training", vec![panel]);
//! let png = fig.render_png()?;
//! assert_eq!(&png[1..4], b"PNG");
//! # Ok::<(), bpnet::Error>(())
//! ```

mod axis;
mod chart;
mod clip;
mod encode;

pub use clip::clip_to_band;

use bpnet::error::{Error, Result};
use bpnet::io::write_atomic;
use std::path::{Path, PathBuf};

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The colour of networks without batch normalization (orange).
pub const WITHOUT_BN: Rgb = Rgb(0xD9, 0x5F, 0x02);
/// The colour of networks with batch normalization (blue).
pub const WITH_BN: Rgb = Rgb(0x1F, 0x5F, 0xB4);
/// A neutral third colour (green), e.g. for validation curves.
pub const THIRD: Rgb = Rgb(0x1B, 0x9E, 0x77);
/// A fourth colour (purple).
pub const FOURTH: Rgb = Rgb(0x75, 0x70, 0xB3);

impl Rgb {
    /// Blends towards white by `t` in [0, 1] (0 = unchanged).
    pub fn lighten(self, t: f64) -> Rgb {
        let mix = |c: u8| (c as f64 + (255.0 - c as f64) * t.clamp(0.0, 1.0)).round() as u8;
        Rgb(mix(self.0), mix(self.1), mix(self.2))
    }

    /// Blends towards black by `t` in [0, 1].
    pub fn darken(self, t: f64) -> Rgb {
        let mix = |c: u8| (c as f64 * (1.0 - t.clamp(0.0, 1.0))).round() as u8;
        Rgb(mix(self.0), mix(self.1), mix(self.2))
    }

    /// A colour of the viridis-like ramp at `t` in [0, 1] (dark purple to
    /// yellow), for many ordered lines such as the layers of a deep network.
    pub fn ramp(t: f64) -> Rgb {
        const STOPS: [(f64, f64, f64); 5] = [
            (68.0, 1.0, 84.0),
            (59.0, 82.0, 139.0),
            (33.0, 145.0, 140.0),
            (94.0, 201.0, 98.0),
            (220.0, 200.0, 30.0),
        ];
        let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
        let i = (x.floor() as usize).min(STOPS.len() - 2);
        let f = x - i as f64;
        let (a, b) = (STOPS[i], STOPS[i + 1]);
        let lerp = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
        Rgb(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
    }
}

/// How a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    /// A continuous line.
    Solid,
    /// Dashes.
    Dashed,
    /// A filled translucent area: `points` run along the upper edge and back
    /// along the lower edge (a closed polygon), e.g. mean ± sd over seeds.
    Band,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Line colour.
    pub color: Rgb,
    /// Solid or dashed.
    pub style: LineStyle,
    /// Stroke width in pixels.
    pub width: u32,
    /// `(x, y)` points in drawing order; non-finite points break the line.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A solid line, 2 pixels wide.
    pub fn new(label: impl Into<String>, color: Rgb, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            color,
            style: LineStyle::Solid,
            width: 2,
            points,
        }
    }

    /// A band (see [`LineStyle::Band`]) between `upper` and `lower`, both in
    /// increasing x; non-finite points are left out. No legend entry.
    pub fn band(color: Rgb, upper: &[(f64, f64)], lower: &[(f64, f64)]) -> Self {
        let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
        let mut points: Vec<(f64, f64)> = upper.iter().filter(finite).copied().collect();
        points.extend(lower.iter().rev().filter(finite).copied());
        Series {
            label: String::new(),
            color,
            style: LineStyle::Band,
            width: 1,
            points,
        }
    }

    /// The same line, dashed.
    pub fn dashed(mut self) -> Self {
        self.style = LineStyle::Dashed;
        self
    }

    /// The same line with stroke `width`.
    pub fn width(mut self, width: u32) -> Self {
        self.width = width;
        self
    }
}

/// Where a panel's legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    /// In rows below the chart, where it never hides a line (the default).
    Below,
    /// Top left corner of the plotting area.
    UpperLeft,
    /// Top right corner.
    UpperRight,
    /// Bottom left corner.
    LowerLeft,
    /// Bottom right corner.
    LowerRight,
    /// No legend.
    Hidden,
}

/// How numbers on an axis are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    /// Plain numbers (`0.25`, `1200`).
    Plain,
    /// Thousands as `k` (`20k`), for step counts.
    Thousands,
    /// Fractions as percent (`0.97` -> `97%`).
    Percent,
}

/// One line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Title above the chart.
    pub title: String,
    /// X-axis description, with its unit.
    pub x_label: String,
    /// Y-axis description, with its unit.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed y range (in data units, before any log transform); lines are
    /// clipped to it. `None` = fit the data.
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic y axis (non-positive values are dropped).
    pub log_y: bool,
    /// How x tick labels are written.
    pub x_ticks: Ticks,
    /// How y tick labels are written.
    pub y_ticks: Ticks,
    /// Legend position.
    pub legend: Legend,
}

impl Panel {
    /// An empty chart with a title and axis descriptions.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
            y_range: None,
            log_y: false,
            x_ticks: Ticks::Plain,
            y_ticks: Ticks::Plain,
            legend: Legend::Below,
        }
    }
}

/// Panels side by side under a common title.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// Title over all panels (empty = none).
    pub title: String,
    /// The charts, left to right.
    pub panels: Vec<Panel>,
    /// Width of each panel in pixels.
    pub panel_width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// The two files a figure is saved as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureFiles {
    /// `STEM.png`.
    pub png: PathBuf,
    /// `STEM.svg`.
    pub svg: PathBuf,
    /// Whether the files were written (not by the ranks other than 0 of a
    /// distributed experiment, which only name them).
    pub written: bool,
}

impl Figure {
    /// A figure of `panels`, 860 x 540 pixels per panel.
    pub fn new(title: impl Into<String>, panels: Vec<Panel>) -> Self {
        Figure {
            title: title.into(),
            panels,
            panel_width: 860,
            height: 540,
        }
    }

    /// Total `(width, height)` in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.panel_width * self.panels.len().max(1) as u32, self.height)
    }

    /// The figure as PNG bytes.
    pub fn render_png(&self) -> Result<Vec<u8>> {
        let (w, h) = self.size();
        let mut rgb = vec![255u8; w as usize * h as usize * 3];
        chart::render_bitmap(self, &mut rgb).map_err(|e| self.error(e))?;
        encode::png_rgb(w, h, &rgb)
    }

    /// The figure as an SVG document.
    pub fn render_svg(&self) -> Result<String> {
        let mut svg = String::new();
        chart::render_svg(self, &mut svg).map_err(|e| self.error(e))?;
        Ok(svg)
    }

    /// Writes `dir/STEM.png` and `dir/STEM.svg` (atomically each).
    pub fn save(&self, dir: &Path, stem: &str) -> Result<FigureFiles> {
        let files = FigureFiles {
            png: dir.join(format!("{stem}.png")),
            svg: dir.join(format!("{stem}.svg")),
            written: true,
        };
        write_atomic(&files.png, &self.render_png()?)?;
        write_atomic(&files.svg, self.render_svg()?.as_bytes())?;
        Ok(files)
    }

    fn error(&self, e: String) -> Error {
        Error::State(format!("drawing figure '{}': {e}", self.title))
    }
}

//! Pictures: line plots (training curves, sweeps, the learning-rate range test, paths between
//! solutions), heat maps (per-layer statistics over steps) and surfaces with contour lines
//! (loss landscapes, [`Surface`]), drawn with the `plotters` crate as SVG or PNG, chosen
//! by the output file's extension. Every command that draws goes through [`write`].
//!
//! A logarithmic axis is drawn as a linear axis of log₁₀ values whose tick labels show the
//! values themselves; values that are not positive (or not finite) cannot be placed on it
//! and are left out, which [`Drawn::dropped`] counts. PNG text is set in DejaVu Sans,
//! which the binary carries (`assets/fonts`, Bitstream Vera license), so a picture looks the
//! same on every machine. Files are written atomically (`files::write_atomic`).

mod contour;
mod surface;

pub use surface::Surface;

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

/// The most cells a heat map draws per row: longer rows are averaged in runs of
/// consecutive values (a cell per pixel or two; an SVG of 10,000 steps stays small).
const MAX_CELLS: usize = 480;
/// Width and height of every picture, in pixels.
const SIZE: (u32, u32) = (960, 600);
/// The ten colours of the series, in order (matplotlib's `tab10`, readable on white).
const COLOURS: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// One curve: `(x, y)` points in drawing order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Curves on shared axes, with a legend.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lines {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub log_x: bool,
    pub log_y: bool,
}

/// A value per row and x (`values[row][i]` at `x[i]`), drawn as coloured cells with a colour
/// bar: per-layer statistics over steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Heat {
    pub title: String,
    pub x_label: String,
    pub value_label: String,
    pub rows: Vec<String>,
    pub x: Vec<f64>,
    pub values: Vec<Vec<f64>>,
    /// Colour by log₁₀ of the value.
    pub log: bool,
}

/// A picture to draw.
pub enum Figure {
    Lines(Lines),
    Heat(Heat),
    Surface(Surface),
}

/// What was drawn: the points placed, and those left out (not finite, or not positive on a
/// logarithmic axis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drawn {
    pub points: usize,
    pub dropped: usize,
}

/// Draws `fig` into `path`: SVG for `.svg`, PNG for `.png`.
pub fn write(path: &Path, fig: &Figure) -> Result<Drawn, String> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let (bytes, drawn) = match ext.as_str() {
        "svg" => {
            let mut text = String::new();
            let drawn = draw(SVGBackend::with_string(&mut text, SIZE).into_drawing_area(), fig)?;
            (text.into_bytes(), drawn)
        }
        "png" => {
            let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            let area = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            let drawn = draw(area, fig)?;
            (png(&rgb)?, drawn)
        }
        _ => return Err(format!("{}: a picture is .svg or .png", path.display())),
    };
    crate::files::write_atomic(path, &bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(drawn)
}

/// The PNG encoding of an RGB picture of [`SIZE`].
fn png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = ::png::Encoder::new(&mut out, SIZE.0, SIZE.1);
    enc.set_color(::png::ColorType::Rgb);
    enc.set_depth(::png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| e.to_string())?;
    w.write_image_data(rgb).map_err(|e| e.to_string())?;
    w.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, fig: &Figure) -> Result<Drawn, String> {
    // Registering the same font again replaces it: harmless.
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| "the built-in font cannot be read".to_string())?;
    let fail = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("cannot draw: {e}");
    root.fill(&WHITE).map_err(fail)?;
    let drawn = match fig {
        Figure::Lines(l) => lines(&root, l).map_err(fail)?,
        Figure::Heat(h) => heat(&root, h).map_err(fail)?,
        Figure::Surface(s) => surface::draw(&root, s).map_err(fail)?,
    };
    root.present().map_err(fail)?;
    Ok(drawn)
}

/// An axis' coordinate of `v`: log₁₀ on a logarithmic axis; `None` where it has none.
fn coord(v: f64, log: bool) -> Option<f64> {
    let c = if log { v.log10() } else { v };
    (c.is_finite() && (!log || v > 0.0)).then_some(c)
}

/// A tick label: the value at coordinate `c`, in about 4 significant digits; on a
/// logarithmic axis only the powers of ten are labelled.
fn tick(c: f64, log: bool) -> String {
    if log && (c - c.round()).abs() > 1e-9 {
        return String::new();
    }
    let v = if log { 10f64.powf(c.round()) } else { c };
    let a = v.abs();
    if v == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        // `1e-7`, `3.16e-4`: the mantissa without trailing zeros.
        let text = format!("{v:.2e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        return format!("{}e{exp}", mantissa.trim_end_matches('0').trim_end_matches('.'));
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// The range covering `values` with a margin (a unit range around a single value).
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) =
        values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi > lo { (hi - lo) * 0.04 } else { 0.5 };
    (lo - pad)..(hi + pad)
}

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = COLOURS[i % COLOURS.len()];
    RGBColor(r, g, b)
}

fn lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    l: &Lines,
) -> Result<Drawn, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut drawn = Drawn::default();
    let placed: Vec<Vec<(f64, f64)>> = l
        .series
        .iter()
        .map(|s| {
            let p: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|&(x, y)| Some((coord(x, l.log_x)?, coord(y, l.log_y)?)))
                .collect();
            drawn.points += p.len();
            drawn.dropped += s.points.len() - p.len();
            p
        })
        .collect();
    let xs = range(placed.iter().flatten().map(|p| p.0));
    let ys = range(placed.iter().flatten().map(|p| p.1));
    let mut chart = ChartBuilder::on(root)
        .caption(&l.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(xs, ys)?;
    let (log_x, log_y) = (l.log_x, l.log_y);
    chart
        .configure_mesh()
        .x_desc(&l.x_label)
        .y_desc(&l.y_label)
        .x_label_formatter(&|c| tick(*c, log_x))
        .y_label_formatter(&|c| tick(*c, log_y))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    for (i, (s, p)) in l.series.iter().zip(placed).enumerate() {
        let c = colour(i);
        // Thick lines join with mitres, which spike at the sharp turns of a noisy curve.
        let width = if p.len() > 200 { 1 } else { 2 };
        chart
            .draw_series(LineSeries::new(p, c.stroke_width(width)))?
            .label(s.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
    }
    if l.series.len() > 1 || l.series.iter().any(|s| !s.label.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    Ok(drawn)
}

fn heat<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &Heat,
) -> Result<Drawn, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut drawn = Drawn::default();
    let coords: Vec<Vec<Option<f64>>> =
        h.values.iter().map(|r| r.iter().map(|&v| coord(v, h.log)).collect()).collect();
    for c in coords.iter().flatten() {
        match c {
            Some(_) => drawn.points += 1,
            None => drawn.dropped += 1,
        }
    }
    // Runs of `per` values become one cell: the mean of their coordinates, at the first x.
    let per = h.x.len().div_ceil(MAX_CELLS).max(1);
    let mean = |run: &[Option<f64>]| {
        let placed: Vec<f64> = run.iter().flatten().copied().collect();
        (!placed.is_empty()).then(|| placed.iter().sum::<f64>() / placed.len() as f64)
    };
    let cells: Vec<Vec<Option<f64>>> =
        coords.iter().map(|r| r.chunks(per).map(mean).collect()).collect();
    let x: Vec<f64> = h.x.iter().step_by(per).copied().collect();
    let vs = range(cells.iter().flatten().flatten().copied());
    let (lo, hi) = (vs.start, vs.end);
    let (main, bar) = root.split_horizontally(SIZE.0 - 130);
    // Each value spans from its x to the next (the last as wide as the one before it).
    let n = x.len();
    let width = |i: usize| match (i + 1 < n, n > 1) {
        (true, _) => x[i + 1] - x[i],
        (false, true) => x[n - 1] - x[n - 2],
        (false, false) => 1.0,
    };
    let xs = range(x.iter().copied().chain(n.checked_sub(1).map(|l| x[l] + width(l))));
    let rows = h.rows.len() as f64;
    let mut chart = ChartBuilder::on(&main)
        .caption(&h.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(150)
        .build_cartesian_2d(xs.clone(), 0.0..rows)?;
    let names = h.rows.clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&h.x_label)
        .x_label_formatter(&|c| tick(*c, false))
        .y_labels(h.rows.len().max(1) * 2 + 1)
        .y_label_formatter(&|c| {
            // A name at the middle of its row; nothing at the borders.
            let i = c.floor() as usize;
            let mid = (c - c.floor() - 0.5).abs() < 1e-6;
            match (mid, names.len().checked_sub(i + 1)) {
                (true, Some(j)) => names[j].clone(),
                _ => String::new(),
            }
        })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    for (r, row) in cells.iter().enumerate() {
        let top = rows - r as f64;
        chart.draw_series(row.iter().enumerate().filter_map(|(i, v)| {
            let c = ViridisRGB::get_color_normalized(v.as_ref()?.to_owned(), lo, hi);
            Some(Rectangle::new([(x[i], top - 1.0), (x[i] + width(i), top)], c.filled()))
        }))?;
    }
    colour_bar(&bar, lo..hi, &h.value_label, h.log)?;
    Ok(drawn)
}

/// The colour bar beside a heat map or a surface: 100 bands of the viridis colours from `lo`
/// to `hi` (coordinates: log₁₀ values when `log`), labelled with the values.
fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    range: std::ops::Range<f64>,
    label: &str,
    log: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lo, hi) = (range.start, range.end);
    let mut scale = ChartBuilder::on(area)
        .margin_top(60)
        .margin_bottom(64)
        .margin_right(8)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    scale
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .y_label_formatter(&|c| tick(*c, log))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .draw()?;
    let steps = 100;
    scale.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        let c = ViridisRGB::get_color_normalized(a, lo, hi);
        Rectangle::new([(0.0, a), (1.0, b)], c.filled())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_as_the_values() {
        assert_eq!(tick(2.0, true), "100");
        assert_eq!(tick(-3.0, true), "0.001");
        assert_eq!(tick(-2.5, true), "");
        assert_eq!(tick(0.25, false), "0.25");
        assert_eq!(tick(1234.5678, false), "1235");
        assert_eq!(tick(1e-7, false), "1e-7");
        assert_eq!(tick(3.16e-4, false), "3.16e-4");
        assert_eq!(tick(0.0, false), "0");
    }

    #[test]
    fn long_heat_map_rows_are_averaged_into_at_most_max_cells() {
        let n = 1000;
        let h = Heat {
            rows: vec!["a".into(), "b".into()],
            x: (1..=n).map(|i| i as f64).collect(),
            values: vec![
                vec![1.0; n],
                (0..n).map(|i| if i == 7 { f64::NAN } else { 2.0 }).collect(),
            ],
            log: true,
            ..Default::default()
        };
        let path = std::env::temp_dir().join(format!("nnc-heat-{}.svg", std::process::id()));
        let drawn = write(&path, &Figure::Heat(h)).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(drawn, Drawn { points: 2 * n - 1, dropped: 1 });
        // 1000 values in runs of 3: 334 cells a row, and the colour bar's 100 bands.
        let filled = svg.matches("<rect").count() - svg.matches("fill=\"#FFFFFF\"").count();
        assert_eq!(filled, 2 * 1000usize.div_ceil(3) + 100, "MAX_CELLS = {MAX_CELLS}");
    }

    #[test]
    fn a_log_axis_leaves_out_what_it_cannot_place() {
        assert_eq!(coord(100.0, true), Some(2.0));
        assert_eq!(coord(0.0, true), None);
        assert_eq!(coord(-1.0, false), Some(-1.0));
        assert_eq!(coord(f64::NAN, false), None);
    }
}

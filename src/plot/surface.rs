//! A surface over a plane (`nnc landscape --2d`): filled cells coloured by value, contour
//! lines at evenly spaced levels ([`super::contour`]), an optional path drawn over them (the
//! training trajectory on PCA directions), and a colour bar.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::{contour, coord, range, tick, Drawn, Series, SIZE};

/// `z[j][i]` at `(x[i], y[j])`, on a log colour scale if `log`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Surface {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub value_label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub z: Vec<Vec<f64>>,
    pub log: bool,
    /// Contour lines at this many levels, evenly spaced between the least and the greatest
    /// value (on the colour scale).
    pub levels: usize,
    /// Drawn over the surface, with its points marked.
    pub path: Option<Series>,
}

/// `v`, or 0 when it is 0 but for rounding (a tick at the centre of `-1..1`).
fn snap(v: f64, axis: &[f64]) -> f64 {
    let span = axis.last().copied().unwrap_or(1.0) - axis.first().copied().unwrap_or(0.0);
    if v.abs() < 1e-9 * span.abs() {
        0.0
    } else {
        v
    }
}

pub(super) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Surface,
) -> Result<Drawn, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut drawn = Drawn::default();
    let c: Vec<Vec<f64>> =
        s.z.iter()
            .map(|row| row.iter().map(|&v| coord(v, s.log).unwrap_or(f64::NAN)).collect())
            .collect();
    for v in c.iter().flatten() {
        match v.is_finite() {
            true => drawn.points += 1,
            false => drawn.dropped += 1,
        }
    }
    let vs = range(c.iter().flatten().copied().filter(|v| v.is_finite()));
    let (lo, hi) = (vs.start, vs.end);
    // Each sample is the centre of its cell; the grid is evenly spaced.
    let half = |v: &[f64]| if v.len() > 1 { (v[1] - v[0]) / 2.0 } else { 0.5 };
    let (hx, hy) = (half(&s.x), half(&s.y));
    let span = |v: &[f64], h: f64| (v[0] - h)..(v[v.len() - 1] + h);
    let (main, bar) = root.split_horizontally(SIZE.0 - 130);
    let mut chart = ChartBuilder::on(&main)
        .caption(&s.title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(span(&s.x, hx), span(&s.y, hy))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(&s.x_label)
        .y_desc(&s.y_label)
        .x_label_formatter(&|v| tick(snap(*v, &s.x), false))
        .y_label_formatter(&|v| tick(snap(*v, &s.y), false))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    for (j, row) in c.iter().enumerate() {
        chart.draw_series(row.iter().enumerate().filter(|(_, v)| v.is_finite()).map(
            |(i, v)| {
                let (x, y) = (s.x[i], s.y[j]);
                let colour = ViridisRGB::get_color_normalized(*v, lo, hi);
                Rectangle::new([(x - hx, y - hy), (x + hx, y + hy)], colour.filled())
            },
        ))?;
    }
    for k in 1..=s.levels {
        let level = lo + (hi - lo) * k as f64 / (s.levels + 1) as f64;
        let lines = contour::segments(&s.x, &s.y, &c, level);
        chart.draw_series(
            lines
                .into_iter()
                .map(|(p, q)| PathElement::new(vec![p, q], WHITE.mix(0.8).stroke_width(1))),
        )?;
    }
    if let Some(p) = &s.path {
        let red = RGBColor(214, 39, 40);
        chart.draw_series(LineSeries::new(p.points.iter().copied(), red.stroke_width(2)))?;
        chart.draw_series(p.points.iter().map(|&q| Circle::new(q, 3, red.filled())))?;
    }
    super::colour_bar(&bar, lo..hi, &s.value_label, s.log)?;
    Ok(drawn)
}

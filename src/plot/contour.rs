//! Contour lines of a surface sampled on a grid, by marching squares: each grid cell whose
//! corners lie on both sides of a level holds one segment of that level's line (two at a
//! saddle, told apart by the cell's mean), its ends placed on the cell's edges by linear
//! interpolation. Cells with a corner that is not finite hold none.

/// A point of the plane.
pub type Pt = (f64, f64);

/// The segments of the line `z = level` of `z[j][i]` sampled at `(x[i], y[j])`.
pub fn segments(x: &[f64], y: &[f64], z: &[Vec<f64>], level: f64) -> Vec<(Pt, Pt)> {
    let mut out = Vec::new();
    for j in 0..y.len().saturating_sub(1) {
        for i in 0..x.len().saturating_sub(1) {
            // Corners counter-clockwise from the lower left, and the edge between corner
            // k and k + 1.
            let c = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)];
            let v = c.map(|(a, b)| z[b][a]);
            if v.iter().any(|v| !v.is_finite()) {
                continue;
            }
            let edge = |k: usize| -> Pt {
                let (p, q) = (c[k], c[(k + 1) % 4]);
                let (vp, vq) = (v[k], v[(k + 1) % 4]);
                let s = (level - vp) / (vq - vp);
                (x[p.0] + s * (x[q.0] - x[p.0]), y[p.1] + s * (y[q.1] - y[p.1]))
            };
            let above = v.map(|v| v > level);
            let crossed: Vec<usize> = (0..4).filter(|&k| above[k] != above[(k + 1) % 4]).collect();
            match crossed.len() {
                2 => out.push((edge(crossed[0]), edge(crossed[1]))),
                4 => {
                    // A saddle: the mean decides which opposite corners the line separates.
                    let mean = v.iter().sum::<f64>() / 4.0;
                    let pairs = if (mean > level) == above[0] {
                        [(0, 1), (2, 3)]
                    } else {
                        [(3, 0), (1, 2)]
                    };
                    for (a, b) in pairs {
                        out.push((edge(a), edge(b)));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contours_of_a_paraboloid_are_circles() {
        let g: Vec<f64> = (0..41).map(|i| -1.0 + i as f64 / 20.0).collect();
        let z: Vec<Vec<f64>> =
            g.iter().map(|y| g.iter().map(|x| x * x + y * y).collect()).collect();
        let segs = segments(&g, &g, &z, 0.25);
        assert!(segs.len() > 40, "{}", segs.len());
        for (p, q) in segs {
            for (a, b) in [p, q] {
                let r = (a * a + b * b).sqrt();
                assert!((r - 0.5).abs() < 2e-3, "({a}, {b}) at radius {r}");
            }
        }
        assert!(segments(&g, &g, &z, 5.0).is_empty(), "no line above the surface");
        let mut holed = z.clone();
        holed[20][20] = f64::NAN;
        assert_eq!(segments(&g, &g, &holed, 1e-3).len(), 0, "the cells round the hole hold none");
    }
}

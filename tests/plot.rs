//! `nnc plot`: the pictures parse (SVG with roxmltree, PNG with png) and hold the series
//! drawn: one polyline per curve with one vertex per logged value, the legend's names, one
//! cell per layer and step of a heat map; and bad requests are refused before drawing.

mod common;
use common::{nnc, polylines, scratch};
use std::path::Path;

/// The colours of the first series (`plot::COLOURS`).
const BLUE: &str = "#1F77B4";
const ORANGE: &str = "#FF7F0E";

/// Trains iris for 40 steps with `sets`, logging to `dir/name.csv` (and its layers).
fn log(dir: &Path, name: &str, sets: &[&str]) -> String {
    let path = dir.join(format!("{name}.csv"));
    let p = path.to_str().unwrap();
    let mut args = vec!["train", "examples/iris.nn", "--steps", "40", "--log", p, "--log-layers"];
    args.extend(sets.iter().flat_map(|s| ["--set", s]));
    let (code, _, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    p.to_string()
}

fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

#[test]
fn curves_of_several_runs_are_overlaid_with_a_legend() {
    let dir = scratch("plot-curves");
    let (a, b) = (log(&dir, "a", &[]), log(&dir, "b", &["optimizer.lr=0.01"]));
    let out = dir.join("c.svg");
    let (code, said, err) = nnc(&["plot", &a, &b, "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // 40 training losses per run; a validation loss at the end of each of the 5 epochs.
    assert!(said.contains("4 curves, 90 points"), "{said}");
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_eq!(polylines(&svg, Some(BLUE))[0], 40, "a loss");
    assert_eq!(polylines(&svg, Some(ORANGE))[0], 5, "a val_loss");
    let t = texts(&svg);
    for label in ["a loss", "a val_loss", "b loss", "b val_loss", "step"] {
        assert!(t.iter().any(|s| s == label), "{label} not in {t:?}");
    }
    // One column of one run, on a log axis, as PNG.
    let png = dir.join("c.png");
    let args = ["plot", &a, "--y", "val_accuracy", "--log-y", "--out", png.to_str().unwrap()];
    let (code, said, err) = nnc(&args);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("1 curves, 5 points"), "{said}");
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 600));
    let blue = buf[..info.buffer_size()].chunks(3).filter(|p| p == &[31, 119, 180]).count();
    assert!(blue > 100, "{blue} pixels of the curve's colour");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_layers_log_is_a_heat_map_of_one_statistic() {
    let dir = scratch("plot-heat");
    log(&dir, "run", &[]);
    let layers = dir.join("run.layers.csv");
    let out = dir.join("heat.svg");
    let (code, said, err) = nnc(&[
        "plot",
        layers.to_str().unwrap(),
        "--y",
        "weight_norm",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("4 layers, 160 points"), "{said}");
    let svg = std::fs::read_to_string(&out).unwrap();
    let t = texts(&svg);
    for row in ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "weight_norm"] {
        assert!(t.iter().any(|s| s == row), "{row} not in {t:?}");
    }
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let cells = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") != Some("#FFFFFF"))
        .count();
    // 4 rows of 40 steps, and the colour bar's 100 bands.
    assert_eq!(cells, 160 + 100);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_requests_are_refused_before_drawing() {
    let dir = scratch("plot-refused");
    let a = log(&dir, "a", &[]);
    let svg = dir.join("x.svg");
    let s = svg.to_str().unwrap();
    let refused: [(&[&str], &str); 4] = [
        (&["plot", &a, "--y", "nope", "--out", s], "no column `nope` (columns: step, epoch, loss"),
        (&["plot", &a, "--out", &a], "--out"),
        (&["plot", &a, "--out", "x.txt"], ".svg or .png"),
        (&["plot", "no/such.csv", "--out", s], "no/such.csv"),
    ];
    for (args, says) in refused {
        let (code, _, err) = nnc(args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!svg.exists() && !Path::new("x.txt").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_x_column_a_log_x_axis_and_the_title_are_the_users() {
    let dir = scratch("plot-x");
    let a = log(&dir, "a", &[]);
    let out = dir.join("x.svg");
    let args = ["plot", &a, "--x", "epoch", "--log-x", "--title", "iris by epoch"];
    let (code, said, err) = nnc(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(said.contains("2 curves, 45 points"), "{said}");
    let svg = std::fs::read_to_string(&out).unwrap();
    let t = texts(&svg);
    assert!(t.iter().any(|s| s == "iris by epoch") && t.iter().any(|s| s == "epoch"), "{t:?}");
    // Epochs 1..5 on a log axis: the decades are labelled, the vertices all drawn.
    assert!(t.iter().any(|s| s == "1"), "{t:?}");
    assert_eq!(polylines(&svg, Some(BLUE))[0], 40);
    std::fs::remove_dir_all(&dir).ok();
}

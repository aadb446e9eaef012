//! `nnc landscape`: the centre of the picture is the loss of the weights (`nnc eval`), the
//! directions are filter-normalized and reproducible from their seed, and the files hold one
//! point per grid point (the surface's cells and contour lines).

mod common;
use common::{csv_table, digits_weights, nnc, polylines, scratch};

fn landscape(w: &str, extra: &[&str]) -> (String, Vec<String>, Vec<Vec<String>>) {
    let args = ["landscape", "examples/digits_mlp.nn", "--weights", w];
    let (code, said, err) = nnc(&[&args[..], extra].concat());
    assert_eq!(code, 0, "{err}");
    let out = extra.iter().position(|a| *a == "--out").map(|i| extra[i + 1]).unwrap();
    let (head, rows) = csv_table(&std::fs::read_to_string(out).unwrap());
    (said, head, rows)
}

#[test]
fn the_centre_is_the_weights_and_the_directions_are_seeded() {
    let dir = scratch("landscape");
    let w = digits_weights(&dir, "1");
    let csv = dir.join("l.csv");
    let c = csv.to_str().unwrap();
    let (said, head, rows) = landscape(&w, &["--grid", "5", "--out", c]);
    assert_eq!(
        head,
        ["a", "train_loss", "train_accuracy", "validation_loss", "validation_accuracy"]
    );
    let a: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(a, ["-1.0", "-0.5", "0.0", "0.5", "1.0"]);
    // The centre is `nnc eval` of the weights (the interpreter, 6 digits).
    let (code, eval, err) = nnc(&["eval", "examples/digits_mlp.nn", "--weights", &w]);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = eval.split_whitespace().collect();
    let want: Vec<f64> = (0..words.len())
        .filter(|&i| ["loss", "accuracy"].contains(&words[i]))
        .map(|i| words[i + 1].parse().unwrap())
        .collect();
    for (got, want) in rows[2][1..].iter().map(|v| v.parse::<f64>().unwrap()).zip(want) {
        assert!((got - want).abs() <= 2e-5 * want.abs().max(1e-3), "{got} vs eval's {want}");
    }
    // Filter normalization: every row of each weight, and each bias, has θ's norm, so the
    // direction's norm is the weights'.
    let norms: Vec<&str> = said.lines().filter(|l| l.contains("‖d1‖")).collect();
    let parts: Vec<&str> = norms[0].split(|c| c == '=' || c == ')').collect();
    assert_eq!(parts[1].split_whitespace().next(), parts[2].split_whitespace().next(), "{said}");
    // Away from the centre the loss is higher, and the same seed draws the same direction.
    let centre: f64 = rows[2][1].parse().unwrap();
    assert!(rows.iter().all(|r| r[1].parse::<f64>().unwrap() >= centre), "{rows:?}");
    let again = dir.join("again.csv");
    let (_, _, same) = landscape(&w, &["--grid", "5", "--out", again.to_str().unwrap()]);
    assert_eq!(same, rows);
    let other = dir.join("other.csv");
    let (_, _, moved) =
        landscape(&w, &["--grid", "5", "--dir-seed", "9", "--out", other.to_str().unwrap()]);
    assert_eq!(moved[2], rows[2], "the centre does not move");
    assert_ne!(moved[0], rows[0], "another direction");
}

#[test]
fn a_2d_surface_holds_every_point_with_contour_lines() {
    let dir = scratch("landscape-2d");
    let w = digits_weights(&dir, "1");
    let (csv, svg) = (dir.join("s.csv"), dir.join("s.svg"));
    let (c, s) = (csv.to_str().unwrap(), svg.to_str().unwrap());
    let extra = ["--2d", "--grid", "7", "--range", "-0.6:0.6", "--ignore", "bias-bn", "--out", c];
    let (said, head, rows) = landscape(&w, &[&extra[..], &["--plot", s]].concat());
    assert!(said.contains("2 random direction(s)") && said.contains("none for biases"), "{said}");
    assert_eq!(head[..3], ["a", "b", "train_loss"]);
    assert_eq!(rows.len(), 49);
    // a varies fastest; the centre is row 24.
    assert_eq!((rows[1][0].as_str(), rows[1][1].as_str()), ("-0.4", "-0.6"));
    assert_eq!((rows[24][0].as_str(), rows[24][1].as_str()), ("0.0", "0.0"));
    let text = std::fs::read_to_string(&svg).unwrap();
    let filled = text.matches("<rect").count() - text.matches("fill=\"#FFFFFF\"").count();
    assert_eq!(filled, 49 + 100, "a cell per point and the colour bar's bands");
    // Contour lines are white segments (the axes are black).
    assert!(polylines(&text, Some("#FFFFFF")).len() > 20, "contour lines");
}

#[test]
fn bad_ranges_are_refused() {
    for (r, says) in [("1:-1", "FROM < TO"), ("x", "FROM:TO")] {
        let (code, _, err) =
            nnc(&["landscape", "examples/digits_mlp.nn", "--weights", "w", "--range", r]);
        assert_eq!(code, 2, "{r}: {err}");
        assert!(err.contains(says), "{r}: {err}");
    }
}

/// `nnc train --trajectory` keeps the weights every so often (the last snapshot is the saved
/// weights), and `nnc landscape --dirs pca` draws the trajectory on its principal plane.
#[test]
fn a_trajectory_on_its_pca_plane() {
    let dir = scratch("landscape-pca");
    let (traj, w) = (dir.join("traj"), dir.join("w.safetensors"));
    let (t, ws) = (traj.to_str().unwrap(), w.to_str().unwrap());
    let train = ["train", "examples/digits_mlp.nn", "--steps", "30", "--quiet", "--save", ws];
    let (code, _, err) =
        nnc(&[&train[..], &["--trajectory", t, "--trajectory-every", "10"]].concat());
    assert_eq!(code, 0, "{err}");
    let mut files: Vec<String> = std::fs::read_dir(&traj)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let want: Vec<String> =
        [0, 10, 20, 30].iter().map(|s| format!("step-{s:07}.safetensors")).collect();
    assert_eq!(files, want);
    let load = |p: &std::path::Path| nnc::train::weights::load(p).unwrap();
    assert_eq!(load(&traj.join(&want[3])), load(&w), "the last snapshot is the saved weights");
    let (code, _, err) = nnc(&[&train[..], &["--trajectory", t]].concat());
    assert!(code == 1 && err.contains("not empty"), "{err}");
    let (csv, svg) = (dir.join("p.csv"), dir.join("p.svg"));
    let extra = ["--dirs", "pca", "--trajectory", t, "--2d", "--grid", "5", "--out"];
    let (said, head, rows) = landscape(
        ws,
        &[&extra[..], &[csv.to_str().unwrap(), "--plot", svg.to_str().unwrap()]].concat(),
    );
    assert!(said.contains("2 PCA direction(s) of the 4 snapshots"), "{said}");
    assert_eq!((head[0].as_str(), head[1].as_str(), rows.len()), ("a", "b", 25));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(polylines(&text, Some("#D62728")), [4], "the trajectory's four snapshots");
    let (code, _, err) =
        nnc(&["landscape", "examples/digits_mlp.nn", "--weights", ws, "--dirs", "pca"]);
    assert!(code == 2 && err.contains("--trajectory"), "{err}");
}

//! Helpers shared by the integration tests: running the `nnc` binary, listing programs.
// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

pub mod conv;
pub mod differential;
pub mod models;

use std::path::PathBuf;
use std::process::Command;

/// Runs `nnc args…`: (exit code, stdout, stderr).
pub fn nnc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every `.nn` file of `examples/` and `tests/cases/ok/`, sorted within each folder.
pub fn programs() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/cases/ok"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "nn"))
            .collect();
        v.sort();
        files.extend(v);
    }
    files
}

/// A fresh folder for one test's files: `<temp>/nnc-<name>-<pid>`, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nnc-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// digits_mlp after 30 steps of seed `seed`, saved as `dir/w<seed>.safetensors`: solutions
/// for the research tools' tests. Returns the file's path.
pub fn digits_weights(dir: &std::path::Path, seed: &str) -> String {
    let w = dir.join(format!("w{seed}.safetensors")).to_str().unwrap().to_string();
    let args = ["train", "examples/digits_mlp.nn", "--steps", "30", "--quiet", "--seed", seed];
    let (code, _, err) = nnc(&[&args[..], &["--save", &w]].concat());
    assert_eq!(code, 0, "{err}");
    w
}

/// Parses CSV text with a header: (column names, rows of cells).
pub fn csv_table(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").split(',').map(String::from).collect();
    let rows = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    (header, rows)
}

/// The vertex count of every polyline of the SVG text `svg` drawn in `colour` (any colour
/// for `None`), longest first.
pub fn polylines(svg: &str, colour: Option<&str>) -> Vec<usize> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses");
    let mut v: Vec<usize> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| colour.is_none() || n.attribute("stroke") == colour)
        .map(|n| n.attribute("points").unwrap_or("").split_whitespace().count())
        .collect();
    v.sort_by(|a, b| b.cmp(a));
    v
}

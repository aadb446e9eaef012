//! Every file in `tests/cases/errors/` holds one deliberate mistake. Its rendered diagnostic
//! is snapshot-tested, and the `nnc` binary must exit with status 1 (never panic) and print
//! a located diagnostic (`--> file:line:col`).

use std::path::PathBuf;
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("tests/cases/errors")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nn"))
        .collect();
    v.sort();
    v
}

#[test]
fn rendered_diagnostics() {
    let files = cases();
    assert!(files.len() >= 15, "expected at least 15 error cases, found {}", files.len());
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let diags = match nnc::pipeline::compile(&src) {
            Ok(_) => panic!("{name} compiled without error"),
            Err(d) => d,
        };
        let text = nnc::diagnostic::render_all(&diags, &name, &src);
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true, description => src.clone() }, {
            insta::assert_snapshot!(format!("error__{stem}"), text);
        });
    }
}

#[test]
fn cli_exits_1_with_located_diagnostic() {
    for path in cases() {
        let out = Command::new(env!("CARGO_BIN_EXE_nnc")).arg("check").arg(&path).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(stderr.contains("error"), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(&format!("{}:", path.display())),
            "no location for {}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", path.display());
    }
}

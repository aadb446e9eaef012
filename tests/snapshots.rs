//! Snapshot tests of every IR stage for every example and every `tests/cases/ok/*.nn`:
//! the printed text of each stage is compared with the reviewed snapshot in
//! `tests/snapshots/`. Every graph stage is verified before it is printed. The CLIF stage,
//! thousands of lines per program and beyond review, is kept for two small programs only;
//! `tests/jit.rs` checks what the JIT computes for all of them.

use std::path::Path;

use nnc::graph::verify::verify;
use nnc::pipeline::{self, Stage};

mod common;
use common::programs;

/// The programs whose Cranelift IR is snapshotted: small enough to read in review.
const CLIF_PROGRAMS: [&str; 2] = ["examples/linear_regression.nn", "examples/xor.nn"];

fn snapshot_name(path: &Path, stage: &str) -> String {
    let dir = path.parent().unwrap().to_string_lossy().replace(['/', '\\'], "_");
    let stem = path.file_stem().unwrap().to_string_lossy();
    format!("{dir}__{stem}__{stage}")
}

#[test]
fn every_stage_of_every_program() {
    let files = programs();
    assert!(files.len() >= 6, "expected the examples and ok cases, found {files:?}");
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let c = pipeline::compile(&src).unwrap_or_else(|d| {
            panic!("{}", nnc::diagnostic::render_all(&d, &path.display().to_string(), &src))
        });
        for (name, g) in
            [("graph", &c.lowered), ("grad", &c.grad), ("step", &c.step), ("opt", &c.opt)]
        {
            if let Err(errs) = verify(g) {
                panic!("{} stage {name} fails verification:\n{}", path.display(), errs.join("\n"));
            }
        }
        for (name, stage) in Stage::ALL {
            if stage == Stage::Clif && !CLIF_PROGRAMS.iter().any(|p| path == Path::new(p)) {
                continue;
            }
            let text = pipeline::ir(&src, stage, 1).unwrap();
            insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false, omit_expression => true, description => path.display().to_string() }, {
                insta::assert_snapshot!(snapshot_name(&path, name), text);
            });
        }
    }
}

//! `nnc list` prints the registry tables, and the README's reference tables say the same:
//! every optimizer, schedule and clip appears in README.md with its exact signature.

use nnc::check::registry::{self, Builtin, CLIPS, OPTIMIZERS, SCHEDULES};
use std::process::Command;

fn nnc(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// A builtin as a user writes it: its signature, or its bare name without parameters.
fn written(b: &Builtin) -> String {
    if b.params.is_empty() {
        b.name.to_string()
    } else {
        b.signature()
    }
}

#[test]
fn list_optimizers_names_every_method_with_defaults() {
    let (code, out, err) = nnc(&["list", "optimizers"]);
    assert_eq!(code, Some(0), "{err}");
    for name in [
        "sgd",
        "heavy_ball",
        "adagrad",
        "rmsprop",
        "adadelta",
        "adam",
        "amsgrad",
        "adamw",
        "nadam",
        "radam",
        "adamax",
        "adabound",
        "padam",
        "lars",
        "lamb",
    ] {
        let b = registry::find(OPTIMIZERS, name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(out.contains(&format!("  {}\n", written(b))), "{name}:\n{out}");
    }
    assert!(out.contains("group"), "{out}");
}

#[test]
fn list_schedules_and_every_table() {
    let (code, out, _) = nnc(&["list", "schedules"]);
    assert_eq!(code, Some(0));
    for name in [
        "constant",
        "step",
        "multistep",
        "exponential",
        "inverse_time",
        "inv_sqrt",
        "polynomial",
        "cosine",
        "sgdr",
        "cyclic",
        "one_cycle",
        "warmup",
    ] {
        let b = registry::find(SCHEDULES, name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(out.contains(&format!("  {}\n", written(b))), "{name}:\n{out}");
    }
    let (code, all, _) = nnc(&["list"]);
    assert_eq!(code, Some(0));
    for word in registry::list_words() {
        let (title, table) = registry::list(word).unwrap();
        assert!(all.contains(&format!("{title}:\n")), "{title}");
        let (_, one, _) = nnc(&["list", word]);
        assert_eq!(one, registry::render(title, table));
        for b in table {
            assert!(all.contains(&written(b)), "{}", b.name);
        }
    }
    let (code, _, err) = nnc(&["list", "optimisers"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn readme_documents_every_optimizer_schedule_and_clip() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for table in [OPTIMIZERS, SCHEDULES, CLIPS] {
        for b in table {
            let w = format!("`{}`", written(b));
            assert!(readme.contains(&w), "README.md does not document {w}");
        }
    }
}

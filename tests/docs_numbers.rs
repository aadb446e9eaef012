//! The documented numbers are tests. Every command of README.md's code blocks is run, as a
//! reader of a fresh clone would run it (from a folder where `examples/` is the
//! repository's), and where the README shows its output, the output must read the same:
//! line by line (`...` stands for any lines), the same text, and every number within
//! [`REL`] of the written one (or [`ABS`] for numbers near 0); a thread count, which is the
//! machine's, is not compared. The results table of
//! examples/README.md is checked the same way: each row's file is trained as the table's
//! heading says, and every number of its "measured" cell, outside parentheses (which hold
//! references and other runs), must be one the run prints (a percentage as a fraction).
//!
//! A code change that moves a documented number fails here until the docs say the new one.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::scratch;

/// Documented and measured numbers agree to 1% ...
const REL: f64 = 0.01;
/// ... or to 0.001.
const ABS: f64 = 1e-3;

fn close(doc: f64, got: f64) -> bool {
    (doc - got).abs() <= (REL * doc.abs()).max(ABS)
}

fn number() -> regex::Regex {
    regex::Regex::new(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?").unwrap()
}

/// A line's text with every number replaced by `#`, and the numbers, except the count of
/// threads (`up to 2 threads`), which is the machine's.
fn masked(line: &str) -> (String, Vec<f64>) {
    let re = number();
    let nums = re
        .find_iter(line)
        .filter(|m| !line[m.end()..].starts_with(" thread"))
        .map(|m| m.as_str().parse().unwrap())
        .collect();
    let text = re.replace_all(line.trim_end(), "#");
    (text.split_whitespace().collect::<Vec<_>>().join(" "), nums)
}

/// Runs `args` of `nnc` in `dir`: (exit code, stderr then stdout).
fn nnc_in(dir: &Path, args: &[String]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).args(args).current_dir(dir).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (out.status.code().unwrap_or(-1), text)
}

/// Splits a shell command line at spaces, keeping single- and double-quoted words whole.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quote, mut any) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, any) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') if any => {
                out.push(std::mem::take(&mut cur));
                any = false;
            }
            (None, ' ') => {}
            _ => (cur.push(c), any = true).1,
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A command of the README: its arguments to `nnc`, and the output it shows (none in `sh`
/// blocks, which only list commands).
struct Example {
    line: usize,
    args: Vec<String>,
    shown: Option<Vec<String>>,
}

/// Every `nnc` command of `text`'s code blocks, in order: `$ nnc ...` lines (with the
/// output under them) and, in `sh` blocks, lines that start with `nnc`,
/// `target/release/nnc` or `cargo run --release --` (a trailing `# comment` removed).
fn examples(text: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut block: Option<&str> = None;
    // The last `$` command is in this block: the lines that follow are its output.
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        if let Some(lang) = line.strip_prefix("```") {
            block = if block.is_some() { None } else { Some(lang.trim()) };
            open = false;
            continue;
        }
        let Some(lang) = block else { continue };
        let command = |l: &str| {
            let l = l.split(" # ").next().unwrap().trim();
            ["nnc ", "target/release/nnc ", "cargo run --release -- "]
                .iter()
                .find_map(|p| l.strip_prefix(p))
                .map(words)
        };
        if let Some(args) = line.strip_prefix("$ ").and_then(command) {
            out.push(Example { line: i + 1, args, shown: Some(Vec::new()) });
            open = true;
        } else if lang == "sh" {
            if let Some(args) = command(line) {
                out.push(Example { line: i + 1, args, shown: None });
            }
        } else if let (true, Some(Example { shown: Some(shown), .. })) = (open, out.last_mut()) {
            shown.push(line.to_string());
        }
    }
    out
}

/// Compares `shown` (the README's output, `...` for any lines) with `got`; `Err` says where
/// they part.
fn same_output(shown: &[String], got: &str) -> Result<(), String> {
    let got: Vec<&str> = got.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut j = 0;
    let mut skipping = false;
    for want in shown.iter().filter(|l| !l.trim().is_empty()) {
        if want.trim() == "..." {
            skipping = true;
            continue;
        }
        let (text, nums) = masked(want);
        loop {
            let Some(line) = got.get(j) else {
                return Err(format!("no line like `{want}` in the output"));
            };
            j += 1;
            let (t, n) = masked(line);
            let off = nums.iter().zip(&n).find(|(a, b)| !close(**a, **b));
            match (t == text, off, skipping) {
                (true, None, _) => break,
                // After `...`, the first line that reads the same.
                (_, _, true) => {}
                (true, Some((a, b)), false) => {
                    return Err(format!("`{want}`: {a} is now {b} (`{line}`)"));
                }
                (false, _, false) => return Err(format!("expected `{want}`, found `{line}`")),
            }
        }
        skipping = false;
    }
    match (skipping, got.get(j)) {
        (false, Some(extra)) => Err(format!("the output goes on: `{extra}`")),
        _ => Ok(()),
    }
}

fn workspace(name: &str) -> PathBuf {
    let dir = scratch(name);
    let examples = Path::new("examples").canonicalize().unwrap();
    std::os::unix::fs::symlink(examples, dir.join("examples")).unwrap();
    dir
}

#[test]
fn every_readme_command_runs_and_prints_what_the_readme_shows() {
    let dir = workspace("docs-readme");
    let text = std::fs::read_to_string("README.md").unwrap();
    let all = examples(&text);
    assert!(all.len() >= 10, "{} commands found", all.len());
    let mut failures = Vec::new();
    for e in &all {
        let (code, out) = nnc_in(&dir, &e.args);
        let said = format!("README.md:{}: nnc {}", e.line, e.args.join(" "));
        if code != 0 {
            failures.push(format!("{said}: exit {code}\n{out}"));
        } else if let Some(shown) = &e.shown {
            if let Err(why) = same_output(shown, &out) {
                failures.push(format!("{said}: {why}\n--- output:\n{out}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    std::fs::remove_dir_all(&dir).ok();
}

/// The numbers of a results cell outside parentheses, percentages as fractions.
fn measured(cell: &str) -> Vec<f64> {
    let mut depth = 0;
    let outside: String = cell
        .chars()
        .map(|c| {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth > 0 || c == ')' {
                ' '
            } else {
                c
            }
        })
        .collect();
    let re = regex::Regex::new(r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)(%?)").unwrap();
    re.captures_iter(&outside)
        .map(|c| {
            let v: f64 = c[1].parse().unwrap();
            if &c[2] == "%" {
                v / 100.0
            } else {
                v
            }
        })
        .collect()
}

#[test]
fn the_examples_results_table_is_what_the_examples_print() {
    let text = std::fs::read_to_string("examples/README.md").unwrap();
    let table = text.split("## Results").nth(1).unwrap().split("\n## ").next().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let file = cells[1].trim_matches('`');
        let path = Path::new("examples").join(file);
        if !path.is_file() {
            continue;
        }
        let (code, out) =
            nnc_in(Path::new("."), &["train".into(), path.display().to_string(), "--quiet".into()]);
        assert_eq!(code, 0, "{file}: {out}");
        let printed: Vec<f64> =
            number().find_iter(&out).map(|m| m.as_str().parse().unwrap()).collect();
        for v in measured(cells[3]) {
            if !printed.iter().any(|p| close(v, *p)) {
                failures.push(format!("{file}: {v} is not printed by the run:\n{out}"));
            }
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked} rows checked");
    assert!(failures.is_empty(), "examples/README.md is out of date:\n{}", failures.join("\n"));
}

#[test]
fn the_comparison_catches_a_changed_number() {
    let shown: Vec<String> =
        ["epoch    1  loss 1.9506", "...", "validation  loss 0.106473  accuracy 0.975000"]
            .map(String::from)
            .to_vec();
    let got =
        "epoch    1  loss 1.9506\nepoch    2  loss 1.1\nvalidation  loss 0.1065  accuracy 0.9750\n";
    assert_eq!(same_output(&shown, got), Ok(()));
    let moved = got.replace("0.9750", "0.9500");
    assert!(same_output(&shown, &moved).unwrap_err().contains("no line like `validation"));
    let moved = got.replace("1.9506", "1.9706");
    assert!(same_output(&shown, &moved).unwrap_err().contains("1.9506 is now 1.9706"));
    assert!(same_output(&shown, &(got.to_string() + "one more\n")).is_err());
    assert_eq!(measured("800 steps: accuracy 86.7% (lstsq: 0.0358686)"), [800.0, 0.867]);
    assert_eq!(
        words("--set 'optimizer=adam(lr = 1e-3)' x"),
        ["--set", "optimizer=adam(lr = 1e-3)", "x"]
    );
}

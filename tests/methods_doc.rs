//! `docs/methods.md` against `nnc list`, so that the method reference and the registry
//! (`src/check/registry.rs`) cannot drift apart. The built binary's `nnc list` output is
//! parsed into its tables; the document into its `##` sections and their `###` headings
//! (fenced code blocks skipped). Required:
//! - every table has a `## TITLE` section, and the sections come in `nnc list`'s order;
//! - every name has a `### NAME` heading in its table's section, in `nnc list`'s order;
//! - each name's section shows its signature exactly as `nnc list` prints it, in backticks,
//!   and mentions every parameter again, as a whole word, outside that signature;
//! - no `###` heading names something its table does not have, none is repeated, and no
//!   other `##` section has `###` headings;
//! - every link into the document (`methods.md#NAME` in a `.rs`, `.nn` or `.md` file of the
//!   repository, `](#NAME)` inside it) names one of its headings' GitHub anchors.

use std::path::{Path, PathBuf};
use std::process::Command;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/methods.md");

/// One builtin as `nnc list` prints it: its name, its head line (the signature, or the bare
/// name) and its parameter names.
#[derive(Debug)]
struct Entry {
    name: String,
    head: String,
    params: Vec<String>,
}

/// One table of `nnc list`: its title (`optimizers`, `data sets`) and entries.
#[derive(Debug)]
struct Table {
    title: String,
    entries: Vec<Entry>,
}

/// One `##` section of the document: its title and its `###` subsections (heading, body).
#[derive(Debug)]
struct Section {
    title: String,
    subs: Vec<(String, String)>,
}

/// The output of the built binary's `nnc list` (every table).
fn nnc_list() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc")).arg("list").output().unwrap();
    assert!(out.status.success(), "nnc list failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The tables of `nnc list`'s output: a title line `TITLE:`, then per entry a head line
/// indented by two spaces followed by its description indented by six; other two-space
/// lines (the notes after a table) are not entries.
fn parse_list(text: &str) -> Vec<Table> {
    let lines: Vec<&str> = text.lines().collect();
    let mut tables: Vec<Table> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') && line.ends_with(':') {
            let title = line.trim_end_matches(':').to_string();
            tables.push(Table { title, entries: Vec::new() });
            continue;
        }
        let is_head = line.starts_with("  ") && !line.starts_with("   ");
        let described = lines.get(i + 1).is_some_and(|next| next.starts_with("      "));
        if let (true, true, Some(t)) = (is_head, described, tables.last_mut()) {
            let head = line.trim().to_string();
            let name = head.split('(').next().unwrap_or(&head).trim().to_string();
            t.entries.push(Entry { name, params: params_of(&head), head });
        }
    }
    tables
}

/// The parameter names of a head line `name(p1, p2 = default, ...)`: the arguments split at
/// commas outside brackets and quotes, each cut before ` = `.
fn params_of(head: &str) -> Vec<String> {
    let Some(open) = head.find('(') else { return Vec::new() };
    let inner = head[open + 1..].strip_suffix(')').expect("a signature ends with `)`");
    let (mut parts, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0, false);
    for c in inner.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.iter().map(|p| p.split(" = ").next().unwrap().trim().to_string()).collect()
}

/// The `##` sections of the document with their `###` subsections; text before the first
/// `##` and inside fenced code blocks is not parsed for headings.
fn parse_doc(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced {
            if let Some(title) = line.strip_prefix("## ") {
                sections.push(Section { title: title.trim().to_string(), subs: Vec::new() });
                continue;
            }
            if let Some(name) = line.strip_prefix("### ") {
                let Some(s) = sections.last_mut() else {
                    panic!("heading `{line}` comes before any `##` section")
                };
                s.subs.push((name.trim().to_string(), String::new()));
                continue;
            }
        }
        if let Some((_, body)) = sections.last_mut().and_then(|s| s.subs.last_mut()) {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections
}

/// Whether `word` occurs in `text` not as part of a longer identifier.
fn has_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let starts = !word.starts_with(ident) || !before.is_some_and(ident);
        let ends = !word.ends_with(ident) || !after.is_some_and(ident);
        starts && ends
    })
}

fn load() -> (Vec<Table>, Vec<Section>) {
    let tables = parse_list(&nnc_list());
    let entries: usize = tables.iter().map(|t| t.entries.len()).sum();
    assert!(tables.len() >= 10 && entries >= 100, "nnc list parsed to {tables:#?}");
    let doc = std::fs::read_to_string(DOC).unwrap_or_else(|e| panic!("{DOC}: {e}"));
    (tables, parse_doc(&doc))
}

fn report(what: &str, problems: Vec<String>) {
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

#[test]
fn every_listed_name_has_its_heading_signature_and_parameters() {
    let (tables, sections) = load();
    let mut problems = Vec::new();
    let doc_titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
    let ordered: Vec<&str> =
        doc_titles.iter().copied().filter(|t| tables.iter().any(|x| x.title == *t)).collect();
    let listed: Vec<&str> = tables.iter().map(|t| t.title.as_str()).collect();
    if ordered != listed {
        problems.push(format!("table sections {ordered:?}, nnc list prints {listed:?}"));
    }
    for table in &tables {
        let Some(section) = sections.iter().find(|s| s.title == table.title) else {
            problems.push(format!("no section `## {}`", table.title));
            continue;
        };
        let headings: Vec<&str> = section.subs.iter().map(|(n, _)| n.as_str()).collect();
        let names: Vec<&str> = table.entries.iter().map(|e| e.name.as_str()).collect();
        let known: Vec<&str> = headings.iter().copied().filter(|h| names.contains(h)).collect();
        if known != names {
            problems.push(format!("## {}: headings {known:?}, nnc list {names:?}", table.title));
        }
        for e in &table.entries {
            let Some((_, body)) = section.subs.iter().find(|(n, _)| *n == e.name) else {
                problems.push(format!("## {}: no heading `### {}`", table.title, e.name));
                continue;
            };
            let signature = format!("`{}`", e.head);
            if !body.contains(&signature) {
                problems.push(format!("### {}: signature {signature} missing", e.name));
            }
            let prose = body.replace(&signature, "");
            for p in &e.params {
                if !has_word(&prose, p) {
                    problems.push(format!("### {}: parameter `{p}` not described", e.name));
                }
            }
        }
    }
    report(&format!("{DOC} and `nnc list` disagree"), problems);
}

#[test]
fn the_doc_has_no_heading_nnc_list_does_not_know() {
    let (tables, sections) = load();
    let mut problems = Vec::new();
    for section in &sections {
        let Some(table) = tables.iter().find(|t| t.title == section.title) else {
            for (name, _) in &section.subs {
                problems.push(format!("### {name} under `## {}`, not a table", section.title));
            }
            continue;
        };
        if sections.iter().filter(|s| s.title == section.title).count() > 1 {
            problems.push(format!("section `## {}` is repeated", section.title));
        }
        for (i, (name, _)) in section.subs.iter().enumerate() {
            if !table.entries.iter().any(|e| e.name == *name) {
                problems.push(format!("### {name}: not in nnc list's {}", table.title));
            }
            if section.subs[..i].iter().any(|(n, _)| n == name) {
                problems.push(format!("### {name}: repeated in `## {}`", section.title));
            }
        }
    }
    report(&format!("{DOC} and `nnc list` disagree"), problems);
}

/// The GitHub anchors of the document's headings (outside code fences): lower case, every
/// character but letters, digits, `_`, `-` and spaces dropped, spaces made `-`; a repeated
/// anchor gets `-1`, `-2`, ... in order.
fn anchors(text: &str) -> Vec<String> {
    let (mut slugs, mut out): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if fenced || hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let slug: String = line[hashes..]
            .trim()
            .to_lowercase()
            .chars()
            .filter(|&c| c.is_alphanumeric() || c == '_' || c == '-' || c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = slugs.iter().filter(|s| **s == slug).count();
        out.push(if n == 0 { slug.clone() } else { format!("{slug}-{n}") });
        slugs.push(slug);
    }
    out
}

/// The `.rs`, `.nn` and `.md` files under `dir`, skipping `target` and hidden folders.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                sources(&path, out);
            }
        } else if ["rs", "nn", "md"].iter().any(|e| path.extension().is_some_and(|x| x == *e)) {
            out.push(path);
        }
    }
}

/// The anchors `text` links to after `marker` (`methods.md#` or `](#`).
fn links<'t>(text: &'t str, marker: &str) -> Vec<&'t str> {
    let anchor = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(marker)
        .map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            &rest[..rest.find(|c: char| !anchor(c)).unwrap_or(rest.len())]
        })
        .collect()
}

#[test]
fn every_link_into_the_doc_resolves() {
    let doc = std::fs::read_to_string(DOC).unwrap();
    let known = anchors(&doc);
    assert!(known.len() >= 100, "only {} headings in {DOC}", known.len());
    let mut files = Vec::new();
    sources(Path::new(env!("CARGO_MANIFEST_DIR")), &mut files);
    let mut problems = Vec::new();
    let mut count = 0;
    for file in files {
        // This file's markers are patterns, not links.
        if file.ends_with("tests/methods_doc.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        let mut found = links(&text, "methods.md#");
        if file.ends_with("docs/methods.md") {
            found.extend(links(&text, "](#"));
        }
        for a in found {
            count += 1;
            if !known.iter().any(|k| k == a) {
                problems.push(format!("{}: no heading for `#{a}`", file.display()));
            }
        }
    }
    assert!(count >= 30, "only {count} links found");
    report(&format!("links into {DOC} that name no heading"), problems);
}

/// The parsers on the awkward cases: defaults with commas, brackets and quotes; notes that
/// are not entries; headings inside code fences; word boundaries.
#[test]
fn parsers_read_signatures_notes_fences_and_words() {
    let head = r#"adamw(lr = 1e-3, betas = (0.9, 0.999), mode = "a, b", in -> out, x...)"#;
    assert_eq!(params_of(head), ["lr", "betas", "mode", "in -> out", "x..."]);
    assert!(params_of("inv_sqrt").is_empty());
    let list = "schedules:\n  constant\n      the lr\n  step(step_size, gamma = 0.1)\n      \
                decay\n  join phases with `then`\n\nclips:\n  value(c)\n      clamp\n";
    let t = parse_list(list);
    assert_eq!(t.len(), 2);
    let names: Vec<&str> = t[0].entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["constant", "step"]);
    assert_eq!(t[0].entries[1].params, ["step_size", "gamma"]);
    assert_eq!((t[1].title.as_str(), t[1].entries[0].head.as_str()), ("clips", "value(c)"));
    let doc = "# T\n## a\ntext\n### x\nbody `x(c)`\n```\n### not a heading\n```\n### y\n";
    let s = parse_doc(doc);
    assert_eq!(s.len(), 1);
    let subs: Vec<&str> = s[0].subs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(subs, ["x", "y"]);
    assert!(s[0].subs[0].1.contains("### not a heading"));
    assert!(has_word("g·c/(n + eps)", "c") && has_word("`T0`", "T0"));
    assert!(!has_word("cos(πt/T0)", "T") && !has_word("eps_min", "eps"));
    assert!(has_word("`in -> out`: sizes", "in -> out"));
    let heads = "# Method reference\n## data sets\n### x\n```\n### y\n```\n### x\n### x\n";
    assert_eq!(anchors(heads), ["method-reference", "data-sets", "x", "x-1", "x-2"]);
    assert_eq!(links("see methods.md#he_normal, and ](#x-1).", "methods.md#"), ["he_normal"]);
}

//! The editor grammar (`editors/vscode/syntaxes/nn.tmLanguage.json`) against the language.
//!
//! Owns: a small TextMate tokenizer (top-level `patterns`, `include` of `#repository` entries,
//! `match` with `name`/`captures`, `begin`/`end` regions with their captures and `patterns`;
//! line by line, at each position the earliest match wins, ties go to a region's `end` and
//! then to the first pattern listed), and the checks that the grammar agrees with the lexer
//! (src/syntax/lexer.rs) and the builtin registry (`nnc list`): every `.nn` file of the
//! repository is highlighted without an `invalid.*` scope up to its first lexical error and
//! with one at that error, every reserved word is a keyword, and the builtin-name rules list
//! exactly the registry's names.

use nnc::syntax::lexer::Lexer;
use regex::Regex;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

const GRAMMAR: &str = "editors/vscode/syntaxes/nn.tmLanguage.json";

/// The scope each table of `nnc list` gets from the grammar's `builtins` rules.
const TABLE_SCOPES: &[(&str, &str)] = &[
    ("layers", "support.class.layer.nn"),
    ("activations", "support.function.builtin.nn"),
    ("math", "support.function.builtin.nn"),
    ("shapes", "support.function.builtin.nn"),
    ("reductions", "support.function.builtin.nn"),
    ("losses", "support.function.builtin.nn"),
    ("penalties", "support.function.builtin.nn"),
    ("metrics", "support.function.builtin.nn"),
    ("initializers", "support.constant.initializer.nn"),
    ("optimizers", "support.function.optimizer.nn"),
    ("schedules", "support.function.schedule.nn"),
    ("clips", "support.function.clip.nn"),
    ("data sets", "support.function.dataset.nn"),
    ("train settings", "support.variable.setting.nn"),
];

/// An entry of a `patterns` list.
enum Pat {
    Include(String),
    Rule(usize),
}

type Captures = Vec<(usize, String)>;

enum Rule {
    Match {
        re: Regex,
        name: Option<String>,
        captures: Captures,
    },
    Region {
        begin: Regex,
        end: Regex,
        name: Option<String>,
        begin_captures: Captures,
        end_captures: Captures,
        patterns: Vec<Pat>,
    },
    Group(Vec<Pat>),
}

struct Grammar {
    rules: Vec<Rule>,
    repository: HashMap<String, usize>,
    top: Vec<Pat>,
    /// Every `include` as (where, repository entry), checked once all entries are read.
    includes: Vec<(String, String)>,
    /// The JSON, for reading the keyword and builtin rules' word lists.
    json: Value,
}

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn compile(pattern: &Value, at: &str) -> Regex {
    let text = pattern.as_str().unwrap_or_else(|| panic!("{at}: pattern is not a string"));
    Regex::new(text).unwrap_or_else(|e| panic!("{at}: `{text}` does not compile: {e}"))
}

fn captures(v: &Value, at: &str) -> Captures {
    let Some(map) = v.as_object() else { return Vec::new() };
    let mut out = Vec::new();
    for (k, c) in map {
        let i = k.parse().unwrap_or_else(|_| panic!("{at}: capture key `{k}`"));
        let keys: Vec<&String> = c.as_object().expect("capture is an object").keys().collect();
        assert_eq!(keys, ["name"], "{at}: capture {k} may only have a name");
        out.push((i, c["name"].as_str().expect("capture name").to_string()));
    }
    out
}

impl Grammar {
    fn load() -> Grammar {
        let text = std::fs::read_to_string(root(GRAMMAR)).expect("the grammar file");
        let json: Value = serde_json::from_str(&text).expect("the grammar is JSON");
        assert_eq!(json["scopeName"], "source.nn");
        let mut g = Grammar {
            rules: Vec::new(),
            repository: HashMap::new(),
            top: Vec::new(),
            includes: Vec::new(),
            json,
        };
        let repo = g.json["repository"].as_object().expect("a repository").clone();
        for (key, v) in &repo {
            match g.rule(v, key) {
                Pat::Rule(i) => g.repository.insert(key.clone(), i),
                Pat::Include(_) => panic!("repository entry {key} is a bare include"),
            };
        }
        let top = g.json["patterns"].clone();
        g.top = g.patterns(&top, "top level");
        for (at, name) in &g.includes {
            assert!(g.repository.contains_key(name), "{at}: include of unknown #{name}");
        }
        g
    }

    fn patterns(&mut self, v: &Value, at: &str) -> Vec<Pat> {
        let list = v.as_array().unwrap_or_else(|| panic!("{at}: patterns is not a list"));
        list.iter().enumerate().map(|(i, p)| self.rule(p, &format!("{at}[{i}]"))).collect()
    }

    /// Reads one rule, refusing any key this tokenizer does not implement.
    fn rule(&mut self, v: &Value, at: &str) -> Pat {
        let obj = v.as_object().unwrap_or_else(|| panic!("{at}: a rule is an object"));
        const KNOWN: &[&str] = &[
            "name",
            "comment",
            "match",
            "captures",
            "begin",
            "end",
            "beginCaptures",
            "endCaptures",
            "patterns",
            "include",
        ];
        for k in obj.keys() {
            assert!(KNOWN.contains(&k.as_str()), "{at}: key `{k}` is not supported by the test");
        }
        let name = v["name"].as_str().map(String::from);
        let rule = if let Some(inc) = v["include"].as_str() {
            let target = inc.strip_prefix('#').unwrap_or_else(|| panic!("{at}: include {inc}"));
            self.includes.push((at.to_string(), target.to_string()));
            return Pat::Include(target.to_string());
        } else if !v["match"].is_null() {
            let re = compile(&v["match"], at);
            Rule::Match { re, name, captures: captures(&v["captures"], at) }
        } else if !v["begin"].is_null() {
            assert!(v["captures"].is_null(), "{at}: use beginCaptures/endCaptures");
            let patterns = if v["patterns"].is_null() {
                Vec::new()
            } else {
                self.patterns(&v["patterns"], at)
            };
            Rule::Region {
                begin: compile(&v["begin"], at),
                end: compile(&v["end"], at),
                name,
                begin_captures: captures(&v["beginCaptures"], at),
                end_captures: captures(&v["endCaptures"], at),
                patterns,
            }
        } else {
            assert!(name.is_none(), "{at}: a named group of patterns");
            Rule::Group(self.patterns(&v["patterns"], at))
        };
        self.rules.push(rule);
        Pat::Rule(self.rules.len() - 1)
    }

    /// The `match` and `begin` rules of a pattern list in order, includes and groups expanded.
    fn flatten(&self, pats: &[Pat], out: &mut Vec<usize>, depth: usize) {
        assert!(depth < 32, "include cycle");
        for p in pats {
            let id = match p {
                Pat::Include(name) => self.repository[name],
                Pat::Rule(id) => *id,
            };
            match &self.rules[id] {
                Rule::Group(inner) => self.flatten(inner, out, depth + 1),
                _ => out.push(id),
            }
        }
    }

    /// The scope stack of every byte of `src` (the root scope `source.nn` left out).
    fn tokenize(&self, src: &str) -> Vec<Vec<String>> {
        let mut out = vec![Vec::new(); src.len()];
        let mut stack: Vec<usize> = Vec::new();
        let mut offset = 0;
        for line in src.split('\n') {
            self.line(line, &mut stack, &mut out[offset..offset + line.len()]);
            offset += line.len() + 1;
        }
        out
    }

    fn line(&self, line: &str, stack: &mut Vec<usize>, out: &mut [Vec<String>]) {
        let mut pos = 0;
        while pos < line.len() {
            let base: Vec<String> = stack.iter().filter_map(|&r| self.name(r).clone()).collect();
            let (end, pats) = match stack.last().map(|&r| &self.rules[r]) {
                Some(Rule::Region { end, patterns, .. }) => (Some(end), patterns),
                _ => (None, &self.top),
            };
            let mut candidates = Vec::new();
            self.flatten(pats, &mut candidates, 0);
            // (start, rule); `None` is the region's end, which wins ties.
            let mut best: Option<(usize, Option<usize>)> =
                end.and_then(|e| e.find_at(line, pos)).map(|m| (m.start(), None));
            for id in candidates {
                let re = match &self.rules[id] {
                    Rule::Match { re, .. } => re,
                    Rule::Region { begin, .. } => begin,
                    Rule::Group(_) => unreachable!(),
                };
                if let Some(m) = re.find_at(line, pos) {
                    if best.is_none_or(|(s, _)| m.start() < s) {
                        best = Some((m.start(), Some(id)));
                    }
                }
            }
            let Some((start, hit)) = best else { break };
            fill(&mut out[pos..start], &base);
            let (re, extra, caps) = match hit.map(|id| (id, &self.rules[id])) {
                None => match &self.rules[stack.pop().unwrap()] {
                    Rule::Region { end, end_captures, .. } => (end, None, end_captures),
                    _ => unreachable!(),
                },
                Some((_, Rule::Match { re, name, captures })) => (re, name.clone(), captures),
                Some((id, Rule::Region { begin, name, begin_captures, .. })) => {
                    stack.push(id);
                    (begin, name.clone(), begin_captures)
                }
                Some((_, Rule::Group(_))) => unreachable!(),
            };
            let c = re.captures_at(line, pos).expect("the match found above");
            let whole = c.get(0).unwrap();
            assert!(!whole.is_empty(), "`{re}` matched empty text in {line:?}");
            // A region's end is scoped by the region's name, its begin by the new one's.
            let mut scope = base.clone();
            scope.extend(extra);
            fill(&mut out[whole.range()], &scope);
            for (i, cap_name) in caps {
                if let Some(m) = c.get(*i) {
                    let mut s = scope.clone();
                    s.push(cap_name.clone());
                    fill(&mut out[m.range()], &s);
                }
            }
            pos = whole.end();
        }
        let base: Vec<String> = stack.iter().filter_map(|&r| self.name(r).clone()).collect();
        fill(&mut out[pos..], &base);
    }

    fn name(&self, id: usize) -> &Option<String> {
        match &self.rules[id] {
            Rule::Match { name, .. } | Rule::Region { name, .. } => name,
            Rule::Group(_) => &None,
        }
    }

    /// `(scope, word)` for each word of the `\b(?:a|b|c)\b` rules of repository entry `key`.
    fn words(&self, key: &str) -> Vec<(String, String)> {
        let shape = Regex::new(r"^\\b\(\?:([A-Za-z0-9_|]+)\)\\b$").unwrap();
        let mut out = Vec::new();
        for rule in self.json["repository"][key]["patterns"].as_array().expect("a group") {
            let pattern = rule["match"].as_str().expect("a match rule");
            let words = shape
                .captures(pattern)
                .unwrap_or_else(|| panic!("{key}: `{pattern}` is not \\b(?:a|b)\\b"));
            let scope = rule["name"].as_str().expect("a named rule");
            out.extend(words[1].split('|').map(|w| (scope.to_string(), w.to_string())));
        }
        out
    }
}

fn fill(bytes: &mut [Vec<String>], scope: &[String]) {
    for b in bytes {
        *b = scope.to_vec();
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\u{c}')
}

/// Why the character at each byte of `src[..upto]` is not properly highlighted, if it is not:
/// no scope, an `invalid.*` scope, or only the `meta.*` scope of an enclosing region.
fn problems(src: &str, scopes: &[Vec<String>], upto: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (i, c) in src[..upto].char_indices().filter(|(_, c)| !is_space(*c)) {
        let s = &scopes[i];
        let bad = match s.last() {
            None => "no scope",
            Some(_) if s.iter().any(|n| n.starts_with("invalid")) => "invalid",
            Some(last) if last.starts_with("meta.") => "only a meta scope",
            Some(_) => continue,
        };
        let line = src[..i].matches('\n').count() + 1;
        out.push(format!("line {line}: `{c}` has {bad} ({s:?})"));
    }
    out
}

/// The scope of the whole text when `word` alone is tokenized (one token, or `None`).
fn single_scope(g: &Grammar, word: &str) -> Option<String> {
    let scopes = g.tokenize(word);
    let first = scopes.first()?.clone();
    scopes.iter().all(|s| *s == first).then(|| first.last().cloned()).flatten()
}

fn nn_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            nn_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "nn") {
            out.push(path);
        }
    }
}

#[test]
fn every_nn_file_is_highlighted_like_the_lexer_reads_it() {
    let g = Grammar::load();
    let mut files = Vec::new();
    nn_files(&root("examples"), &mut files);
    nn_files(&root("tests"), &mut files);
    files.sort();
    assert!(files.len() >= 20, "only {} .nn files found", files.len());
    let (mut failures, mut lexical_errors_checked) = (Vec::new(), 0);
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let scopes = g.tokenize(&src);
        let error = Lexer::new(&src).find_map(|t| t.err());
        let upto = error.as_ref().map_or(src.len(), |d| d.primary.span.start as usize);
        let shown = path.strip_prefix(root("")).unwrap().display();
        failures.extend(problems(&src, &scopes, upto).into_iter().map(|p| format!("{shown}: {p}")));
        let Some(d) = error else { continue };
        let lexical = ["unexpected character", "unterminated string", "unknown escape"];
        if lexical.iter().any(|m| d.message.starts_with(m)) {
            lexical_errors_checked += 1;
            if !scopes[upto].iter().any(|s| s.starts_with("invalid.illegal")) {
                failures.push(format!(
                    "{shown}: `{}` not marked invalid: {:?}",
                    d.message, scopes[upto]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(lexical_errors_checked > 0, "no file with a lexical error was checked");
}

#[test]
fn highlighting_of_a_sample() {
    let g = Grammar::load();
    let src = "model M {\n  input x: class[B] of 3\n  fc = Dense(4 -> 16, init = he_normal, label = \"a\\n\") /* c\n */ y = fc.weight @ 1e-3 // end\n}";
    let scopes = g.tokenize(src);
    let at = |needle: &str| scopes[src.find(needle).unwrap()].last().cloned().unwrap_or_default();
    let expect = [
        ("model", "keyword.other.declaration.nn"),
        ("M {", "entity.name.type.nn"),
        ("input", "keyword.other.statement.nn"),
        ("class", "keyword.other.type.nn"),
        ("[B", "punctuation.definition.shape.begin.nn"),
        ("B]", "variable.other.dimension.nn"),
        ("of", "keyword.other.type.nn"),
        ("Dense", "support.class.layer.nn"),
        ("->", "keyword.operator.arrow.nn"),
        ("init", "variable.parameter.nn"),
        ("he_normal", "support.constant.initializer.nn"),
        ("label", "variable.parameter.nn"),
        ("\\n", "constant.character.escape.nn"),
        ("/*", "punctuation.definition.comment.begin.nn"),
        ("*/", "punctuation.definition.comment.end.nn"),
        ("y =", "variable.other.nn"),
        ("weight", "variable.other.property.nn"),
        ("@", "keyword.operator.arithmetic.nn"),
        ("1e-3", "constant.numeric.float.nn"),
        ("// end", "punctuation.definition.comment.nn"),
        ("end", "comment.line.double-slash.nn"),
    ];
    for (needle, scope) in expect {
        assert_eq!(at(needle), scope, "scope of `{needle}`");
    }
    assert!(scopes[src.find(" c\n").unwrap() + 1].contains(&"comment.block.nn".to_string()));
    assert_eq!(problems(src, &scopes, src.len()), Vec::<String>::new());
}

#[test]
fn characters_the_lexer_rejects_are_invalid() {
    let g = Grammar::load();
    for (src, bad) in [
        ("x = 1 § 2", "§"),
        ("x = a; y = b", ";"),
        ("x = 'a'", "'"),
        ("# note", "#"),
        ("s = \"abc", "\"abc"),
        ("s = \"a\\qb\"", "\\q"),
    ] {
        let error = Lexer::new(src).find_map(|t| t.err()).expect("the lexer rejects it");
        let at = src.find(bad).unwrap();
        assert_eq!(error.primary.span.start as usize, at, "{src}");
        let scopes = g.tokenize(src);
        assert!(
            scopes[at].iter().any(|s| s.starts_with("invalid.illegal")),
            "{src}: {:?}",
            scopes[at]
        );
        assert!(!problems(src, &scopes, src.len()).is_empty());
    }
    // What the lexer accepts, the grammar does too.
    let ok =
        "model modelx _a1 of then -> - = {}()[],:.@*/+ 64 0.5 1. 1e-3 2.5E+4 3e2 007 \"é\\\"\"";
    assert!(Lexer::new(ok).all(|t| t.is_ok()));
    assert_eq!(problems(ok, &g.tokenize(ok), ok.len()), Vec::<String>::new());
}

#[test]
fn every_reserved_word_of_the_lexer_is_a_keyword() {
    let g = Grammar::load();
    let lexer_src = std::fs::read_to_string(root("src/syntax/lexer.rs")).unwrap();
    let token = Regex::new(r#"#\[token\("([A-Za-z_][A-Za-z0-9_]*)"\)\]"#).unwrap();
    let reserved: BTreeSet<String> =
        token.captures_iter(&lexer_src).map(|c| c[1].to_string()).collect();
    assert!(reserved.contains("model") && reserved.contains("repeat"), "{reserved:?}");
    let keyword_rules = g.words("keywords");
    let in_grammar: BTreeSet<String> = keyword_rules.iter().map(|(_, w)| w.clone()).collect();
    for word in reserved.iter().chain(&in_grammar) {
        let toks: Vec<_> = Lexer::new(word).collect::<Result<_, _>>().unwrap();
        assert!(toks.len() == 1 && toks[0].1.is_keyword(), "`{word}` is not reserved by the lexer");
    }
    assert_eq!(reserved, in_grammar, "the grammar's keywords differ from the lexer's");
    let scopes: BTreeSet<&String> = keyword_rules.iter().map(|(s, _)| s).collect();
    for s in &scopes {
        assert!(s.starts_with("keyword.") || s.starts_with("constant.language."), "{s}");
    }
    for word in &reserved {
        let scope = single_scope(&g, word);
        assert!(
            scope.as_ref().is_some_and(|s| scopes.contains(s)),
            "`{word}` is highlighted as {scope:?}"
        );
    }
}

#[test]
fn the_builtin_rules_list_exactly_the_registry() {
    let g = Grammar::load();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnc")).arg("list").output().unwrap();
    assert!(out.status.success(), "nnc list failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // `title:`, then per builtin `  name(params)` or `  name`, and `      description`.
    let (mut title, mut listed) = ("", BTreeSet::new());
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(' ') && line.ends_with(':') {
            title = line.trim_end_matches(':');
        } else if line.starts_with("  ")
            && !line.starts_with("   ")
            && lines.get(i + 1).is_some_and(|n| n.starts_with("      "))
        {
            let head = line.trim();
            let name: String =
                head.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(
                head == name || head[name.len()..].starts_with('('),
                "unexpected line `{line}`"
            );
            let scope = TABLE_SCOPES.iter().find(|(t, _)| *t == title);
            let scope =
                scope.unwrap_or_else(|| panic!("table `{title}` has no scope in TABLE_SCOPES"));
            listed.insert((scope.1.to_string(), name));
        }
    }
    assert!(listed.len() > 50, "parsed only {} builtins from `nnc list`", listed.len());
    let in_grammar: BTreeSet<(String, String)> = g.words("builtins").into_iter().collect();
    let missing: Vec<_> = listed.difference(&in_grammar).collect();
    let extra: Vec<_> = in_grammar.difference(&listed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing from the grammar: {missing:?}\nnot in the registry: {extra:?}"
    );
    for (_, name) in &listed {
        let scope = single_scope(&g, name);
        assert!(
            scope.as_ref().is_some_and(|s| s.starts_with("support.")),
            "`{name}` is highlighted as {scope:?}"
        );
    }
}

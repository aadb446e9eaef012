//! The syntax stage: `.nn` source text to [`ast::File`], or diagnostics.
//!
//! Owns: the entry point [`parse`], the lalrpop-generated parser (from `grammar/nn.lalrpop`,
//! fed by the logos lexer in [`lexer`]), and the translation of parse errors into messages in
//! the user's vocabulary: "expected `)` or `,`, found `=`", "unexpected end of file".
//!
//! Invariants:
//! - `parse` never panics and never recurses deeper than the lexer's nesting guard allows,
//!   whatever the input (see `tests.rs`: truncated programs and random byte soup).
//! - It stops at the first error: `Err` holds exactly one diagnostic, whose primary span is the
//!   offending token (or the point where the file ended too early).
//! - No meaning is attached here: names are not resolved, numbers not range-checked.

pub mod ast;
pub mod lexer;
pub mod print;
pub mod set;

#[cfg(test)]
mod tests;

use crate::diagnostic::{Diagnostic, Result, Span};
use lalrpop_util::ParseError;
use lexer::Token;
use logos::Logos;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused_parens, unused_imports)]
    grammar,
    "/nn.rs"
);

/// Parses one `.nn` file.
pub fn parse(src: &str) -> Result<ast::File> {
    if src.len() >= u32::MAX as usize {
        let d = Diagnostic::error(Span::default(), "source file too large (4 GiB or more)");
        return Err(vec![d]);
    }
    // A UTF-8 byte-order mark (editors on Windows write one) reads as three spaces, so every
    // span still indexes `src` as given.
    let spaced;
    let src = match src.strip_prefix('\u{feff}') {
        Some(rest) => {
            spaced = format!("   {rest}");
            spaced.as_str()
        }
        None => src,
    };
    grammar::FileParser::new().parse(lexer::Lexer::new(src)).map_err(|e| vec![syntax_error(src, e)])
}

/// Parses one `.nn` file and applies command-line overrides ([`set`]) to it. Spans point
/// into `set::combined(src, sets)`.
pub fn parse_with(src: &str, sets: &[String]) -> Result<ast::File> {
    let mut file = parse(src)?;
    set::apply(&mut file, src.len(), sets)?;
    Ok(file)
}

/// Small constructors the grammar's actions call.
pub(crate) mod build {
    use super::ast::{BinOp, Expr, ExprKind};
    use crate::diagnostic::{Diagnostic, Span};

    pub fn expr(kind: ExprKind, l: usize, r: usize) -> Expr {
        Expr { kind, span: Span::new(l, r) }
    }

    pub fn binary(op: BinOp, lhs: Expr, rhs: Expr, l: usize, r: usize) -> Expr {
        expr(ExprKind::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }, l, r)
    }

    /// `(x,)`: tuples have two or more elements.
    pub fn one_tuple(l: usize, r: usize) -> Diagnostic {
        Diagnostic::error(Span::new(l, r), "a tuple needs at least two elements")
            .label("one-element tuple")
            .note("write `(x)` for a parenthesized expression or `(a, b)` for a tuple")
    }
}

/// How each grammar terminal is named in "expected ..." lists, in the order they are listed.
const TERMINALS: &[(&str, &str)] = &[
    (r#"")""#, "`)`"),
    (r#""]""#, "`]`"),
    (r#""}""#, "`}`"),
    (r#"",""#, "`,`"),
    (r#""=""#, "`=`"),
    (r#"":""#, "`:`"),
    (r#""->""#, "`->`"),
    (r#""(""#, "`(`"),
    (r#""[""#, "`[`"),
    (r#""{""#, "`{`"),
    ("IDENT", "a name"),
    ("INT", "an integer"),
    ("FLOAT", "a number"),
    ("STRING", "a string"),
    (r#""model""#, "`model`"),
    (r#""layer""#, "`layer`"),
    (r#""optimizer""#, "`optimizer`"),
    (r#""schedule""#, "`schedule`"),
    (r#""clip""#, "`clip`"),
    (r#""train""#, "`train`"),
    (r#""input""#, "`input`"),
    (r#""label""#, "`label`"),
    (r#""param""#, "`param`"),
    (r#""metric""#, "`metric`"),
    (r#""forward""#, "`forward`"),
    (r#""return""#, "`return`"),
    (r#""class""#, "`class`"),
    (r#""of""#, "`of`"),
    (r#""then""#, "`then`"),
    (r#""repeat""#, "`repeat`"),
    (r#""true""#, "`true`"),
    (r#""false""#, "`false`"),
    (r#""+""#, "`+`"),
    (r#""-""#, "`-`"),
    (r#""*""#, "`*`"),
    (r#""/""#, "`/`"),
    (r#""@""#, "`@`"),
    (r#"".""#, "`.`"),
];

/// A set of expected terminals shown as one phrase when all `required` ones are expected;
/// the `optional` ones are then dropped too. `None` drops the group from the list, unless
/// nothing else is expected, in which case `fallback` is shown.
struct Group {
    required: &'static [&'static str],
    optional: &'static [&'static str],
    phrase: Option<&'static str>,
    fallback: Option<&'static str>,
}

/// Groups, applied in order. Keywords are accepted as keyword-argument names
/// (`label = "y"`), which nobody needs to be told. The operators that could continue an
/// expression are noise too (the mistake is almost never a missing `+`).
const GROUPS: &[Group] = &[
    Group {
        required: &[
            r#""model""#,
            r#""layer""#,
            r#""input""#,
            r#""label""#,
            r#""param""#,
            r#""metric""#,
            r#""forward""#,
            r#""return""#,
            r#""optimizer""#,
            r#""schedule""#,
            r#""clip""#,
            r#""train""#,
            r#""then""#,
            r#""class""#,
            r#""of""#,
        ],
        optional: &[],
        phrase: None,
        fallback: None,
    },
    Group {
        required: &[
            "IDENT",
            "INT",
            "FLOAT",
            "STRING",
            r#""(""#,
            r#""[""#,
            r#""true""#,
            r#""false""#,
            r#""repeat""#,
        ],
        optional: &[r#""-""#],
        phrase: Some("an expression"),
        fallback: None,
    },
    Group {
        required: &[
            "IDENT",
            r#""input""#,
            r#""label""#,
            r#""param""#,
            r#""metric""#,
            r#""forward""#,
        ],
        optional: &[],
        phrase: Some("a statement"),
        fallback: None,
    },
    Group {
        required: &[
            r#""model""#,
            r#""layer""#,
            r#""optimizer""#,
            r#""schedule""#,
            r#""clip""#,
            r#""train""#,
        ],
        optional: &[],
        phrase: Some("an item"),
        fallback: None,
    },
    Group {
        required: &[r#""+""#, r#""-""#, r#""*""#, r#""/""#, r#""@""#, r#"".""#],
        optional: &[r#""(""#],
        phrase: None,
        fallback: Some("an operator"),
    },
];

/// The most alternatives an "expected ..." list shows.
const MAX_EXPECTED: usize = 6;

/// Turns lalrpop's expected-terminal names into a readable, deduplicated, capped phrase:
/// "`)` or `,`", "an expression", "a statement or `}`".
fn expected_phrase(expected: &[String]) -> String {
    let mut left: Vec<&str> = expected.iter().map(String::as_str).collect();
    let mut phrases: Vec<String> = Vec::new();
    let mut fallback = None;
    for g in GROUPS {
        if g.required.iter().all(|t| left.contains(t)) {
            left.retain(|t| !g.required.contains(t) && !g.optional.contains(t));
            match g.phrase {
                Some(p) => phrases.push(p.to_string()),
                None => fallback = fallback.or(g.fallback),
            }
        }
    }
    let mut named: Vec<(usize, String)> = left
        .iter()
        .map(|t| match TERMINALS.iter().position(|(n, _)| n == t) {
            Some(i) => (i, TERMINALS[i].1.to_string()),
            None => (TERMINALS.len(), format!("`{}`", t.trim_matches('"'))),
        })
        .collect();
    named.sort();
    named.dedup();
    // Group phrases come first: "a statement or `}`" reads better than "`}` or a statement".
    phrases.extend(named.into_iter().map(|(_, s)| s));
    if phrases.is_empty() {
        phrases.extend(fallback.map(String::from));
    }
    join_alternatives(&phrases)
}

/// "a", "a or b", "a, b or c"; more than [`MAX_EXPECTED`] become "one of a, b, ...".
fn join_alternatives(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        _ if items.len() > MAX_EXPECTED => {
            format!("one of {}, ...", items[..MAX_EXPECTED - 1].join(", "))
        }
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

/// The diagnostic for a parse error.
fn syntax_error(src: &str, err: ParseError<usize, Token<'_>, Diagnostic>) -> Diagnostic {
    match err {
        ParseError::User { error } => error,
        ParseError::UnrecognizedToken { token: (l, tok, r), expected } => {
            unexpected_token(src, l, &tok, r, &expected)
        }
        ParseError::ExtraToken { token: (l, tok, r) } => unexpected_token(src, l, &tok, r, &[]),
        ParseError::UnrecognizedEof { location, expected } => {
            let d = Diagnostic::error(Span::new(location, location), "unexpected end of file");
            let d = match expected_phrase(&expected) {
                e if e.is_empty() => d.label("the file ends here"),
                e => d.label(format!("expected {e} after this")),
            };
            with_unclosed_bracket(d, src, location, &expected)
        }
        ParseError::InvalidToken { location } => {
            Diagnostic::error(Span::new(location, location), "invalid token")
                .label("not part of any token")
        }
    }
}

/// "expected `)` or `,`, found `=`", labelled with what was found, plus a hint for the
/// mistakes that have a likely cause.
fn unexpected_token(
    src: &str,
    l: usize,
    tok: &Token<'_>,
    r: usize,
    expected: &[String],
) -> Diagnostic {
    let text = src.get(l..r).unwrap_or("");
    let found = tok.describe(text);
    let wanted = expected_phrase(expected);
    let message = if wanted.is_empty() {
        format!("unexpected {found}")
    } else {
        format!("expected {wanted}, found {found}")
    };
    let d = Diagnostic::error(Span::new(l, r), message).label(format!("unexpected {found}"));
    // A stray closing bracket is the mistake itself, not a sign of an unclosed one.
    let stray_closer = matches!(tok, Token::RParen | Token::RBracket | Token::RBrace);
    let d = if stray_closer { d } else { with_unclosed_bracket(d, src, l, expected) };
    let wants_name = expected.iter().any(|t| t == "IDENT");
    let before = src.get(..l).unwrap_or("").trim_end();
    let prev_word = before.rsplit(|c: char| !c.is_ascii_alphanumeric() && c != '_').next();
    let prev_keyword = prev_word.filter(|w| {
        let mut toks = Token::lexer(w);
        matches!((toks.next(), toks.next()), (Some(Ok(t)), None) if t.is_keyword())
    });
    if wants_name && tok.is_keyword() {
        d.note(format!("`{text}` is a keyword and cannot be used as a name"))
    } else if let (Some(kw), true) =
        (prev_keyword, wants_name && *tok == Token::Eq || wanted == "`=`")
    {
        d.note(format!("`{kw}` is a keyword and cannot be used as a name"))
    } else if before.ends_with('.') && matches!(tok, Token::Int(_) | Token::Float(_)) {
        d.note("fields are names, like `fc1.weight`; copies made by `repeat` cannot be indexed")
    } else if wanted == "an item" {
        d.note(
            "the items of a file are `model`, `layer`, `optimizer`, `schedule`, `clip` and `train`",
        )
    } else {
        d
    }
}

/// When the parser wanted a closing bracket and the innermost bracket still open at byte
/// `at` is of that kind and on an earlier line, points at it: the likely missing `)`.
fn with_unclosed_bracket(d: Diagnostic, src: &str, at: usize, expected: &[String]) -> Diagnostic {
    let mut open: Vec<(Token<'_>, Span)> = Vec::new();
    let mut tokens = Token::lexer(src.get(..at).unwrap_or("")).spanned();
    while let Some((Ok(tok), range)) = tokens.next() {
        match tok {
            Token::LParen | Token::LBracket | Token::LBrace => {
                open.push((tok, Span::new(range.start, range.end)))
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                open.pop();
            }
            _ => {}
        }
    }
    let Some((tok, span)) = open.pop() else { return d };
    let (opener, closer) = match tok {
        Token::LParen => ("(", r#"")""#),
        Token::LBracket => ("[", r#""]""#),
        _ => ("{", r#""}""#),
    };
    let here = Span::new(at, at);
    if expected.iter().any(|t| t == closer) && span.line(src) < here.line(src) {
        d.secondary(span, format!("this `{opener}` is never closed"))
    } else {
        d
    }
}

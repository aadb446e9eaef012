//! The `.nn` lexer: a `logos` token enum and the adapter that feeds lalrpop.
//!
//! Owns: what a token is (identifiers, numbers, strings with escapes, keywords, punctuation),
//! what is skipped (whitespace, `// line` and `/* block */` comments), and the lexical
//! diagnostics ("unexpected character `$`", "unterminated string", ...).
//!
//! Invariants:
//! - Every item [`Lexer`] yields is `Ok((start, token, end))` with `start <= end` byte offsets
//!   on char boundaries of the source, or one `Err(Diagnostic)` whose span lies in the source.
//! - Numbers are already parsed and finite: `Int` fits an `i64`, `Float` is a finite `f64`.
//! - Strings hold their processed text (`\"`, `\\`, `\n`, `\t` resolved) and never span lines.
//! - The adapter refuses input whose expressions would nest deeper than [`MAX_DEPTH`] (an
//!   upper estimate, see [`DepthGuard`]), so the parser, printer and checker, which recurse
//!   over expressions, never exhaust the stack whatever the input.

use crate::diagnostic::{Diagnostic, Span};
use logos::{FilterResult, Logos};

/// A token of the `.nn` language. Keywords are reserved: they are never identifiers.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = LexError)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\n]*", allow_greedy = true))]
pub enum Token<'s> {
    #[token("model")]
    Model,
    #[token("layer")]
    Layer,
    #[token("input")]
    Input,
    #[token("label")]
    Label,
    #[token("param")]
    Param,
    #[token("metric")]
    Metric,
    #[token("forward")]
    Forward,
    #[token("return")]
    Return,
    #[token("optimizer")]
    Optimizer,
    #[token("schedule")]
    Schedule,
    #[token("clip")]
    Clip,
    #[token("train")]
    Train,
    #[token("repeat")]
    Repeat,
    #[token("then")]
    Then,
    #[token("class")]
    Class,
    #[token("of")]
    Of,
    #[token("true")]
    True,
    #[token("false")]
    False,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice())]
    Ident(&'s str),
    /// `64`: no `.` and no exponent.
    #[regex(r"[0-9]+", lex_int)]
    Int(i64),
    /// `0.5`, `1.`, `1e-3`, `2.5E+4`.
    #[regex(r"[0-9]+\.[0-9]*([eE][+-]?[0-9]+)?", lex_float)]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+", lex_float)]
    Float(f64),
    /// `"text"` with escapes processed.
    #[token("\"", lex_string)]
    Str(String),

    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token("=")]
    Eq,
    #[token("->")]
    Arrow,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("@")]
    At,
    #[token(".")]
    Dot,

    /// `/* ... */`, skipped; only here so an unterminated one is reported.
    #[token("/*", block_comment)]
    BlockComment,
}

impl Token<'_> {
    /// True for the reserved words (`model`, `layer`, ..., `true`, `false`).
    pub fn is_keyword(&self) -> bool {
        use Token::*;
        matches!(
            self,
            Model
                | Layer
                | Input
                | Label
                | Param
                | Metric
                | Forward
                | Return
                | Optimizer
                | Schedule
                | Clip
                | Train
                | Repeat
                | Then
                | Class
                | Of
                | True
                | False
        )
    }

    /// How a diagnostic names this token, given its source text: "`=`", "`fc1`",
    /// "keyword `model`", "a string".
    pub fn describe(&self, text: &str) -> String {
        match self {
            Token::Str(_) => "a string".to_string(),
            t if t.is_keyword() => format!("keyword `{text}`"),
            _ => format!("`{text}`"),
        }
    }
}

/// A lexical error: the diagnostic a callback built, or `None` when no token matched
/// (the adapter then reports the unexpected character, which it can see in the source).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LexError(pub Option<Box<Diagnostic>>);

impl From<Diagnostic> for LexError {
    fn from(d: Diagnostic) -> LexError {
        LexError(Some(Box::new(d)))
    }
}

/// The diagnostic for input no token matches, at byte `start` of `src`.
fn unexpected_character(src: &str, start: usize) -> Diagnostic {
    let c = src.get(start..).and_then(|s| s.chars().next()).unwrap_or('\u{fffd}');
    let span = Span::new(start, start + c.len_utf8());
    let d = Diagnostic::error(span, format!("unexpected character `{}`", c.escape_debug()))
        .label("not part of any token");
    match c {
        ';' => d.note("statements need no separator: remove the `;`"),
        '\'' => d.note("strings use double quotes: \"like this\""),
        '#' => d.note("comments start with `//` or are written `/* like this */`"),
        _ => d,
    }
}

fn number_error<'s>(lex: &logos::Lexer<'s, Token<'s>>) -> LexError {
    let span = lex.span();
    let d = Diagnostic::error(
        Span::new(span.start, span.end),
        format!("number `{}` is too large", lex.slice()),
    );
    d.label("out of range").into()
}

fn lex_int<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Result<i64, LexError> {
    lex.slice().parse::<i64>().map_err(|_| number_error(lex))
}

fn lex_float<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Result<f64, LexError> {
    match lex.slice().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(number_error(lex)),
    }
}

/// Scans the rest of a string after its opening `"`: escapes `\" \\ \n \t`; a newline or the
/// end of input before the closing quote is an unterminated string.
fn lex_string<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> Result<String, LexError> {
    let start = lex.span().start;
    let rest = lex.remainder();
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                lex.bump(i + 1);
                return Ok(out);
            }
            '\n' => break,
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((j, e)) if e != '\n' => {
                    let at = lex.span().end + i;
                    lex.bump(j + e.len_utf8());
                    return Err(Diagnostic::error(
                        Span::new(at, at + 1 + e.len_utf8()),
                        format!("unknown escape `\\{}` in string", e.escape_debug()),
                    )
                    .label("unknown escape")
                    .note("the escapes are \\\" \\\\ \\n \\t")
                    .into());
                }
                _ => break,
            },
            c => out.push(c),
        }
    }
    let line_len = rest.find('\n').unwrap_or(rest.len());
    lex.bump(line_len);
    Err(Diagnostic::error(Span::new(start, start + 1 + line_len), "unterminated string")
        .label("this string has no closing `\"`")
        .note("strings end on the line they start")
        .into())
}

/// Skips a `/* ... */` comment (not nested), or reports it unterminated.
fn block_comment<'s>(lex: &mut logos::Lexer<'s, Token<'s>>) -> FilterResult<(), LexError> {
    match lex.remainder().find("*/") {
        Some(i) => {
            lex.bump(i + 2);
            FilterResult::Skip
        }
        None => {
            let span = lex.span();
            lex.bump(lex.remainder().len());
            FilterResult::Error(
                Diagnostic::error(Span::new(span.start, span.end), "unterminated block comment")
                    .label("this comment has no closing `*/`")
                    .into(),
            )
        }
    }
}

/// The deepest expression nesting accepted (an upper estimate of the AST depth).
pub const MAX_DEPTH: usize = 256;

/// Bounds the depth of any expression tree from the token stream alone, without parsing.
///
/// An expression's tree depth is at most, summed over its enclosing brackets, the operators
/// (`+ - * / @ . repeat`) in the current flat segment of each bracket level, plus two per
/// level (a call and its argument). Separators (`, = -> : then of` and the keywords that start
/// statements and items) end an expression or one child of a node, whose depth is the max,
/// not the sum, of its children's, so they start a new segment. The estimate
/// `Σ_levels (ops_in_segment + 2)` only ever overestimates.
#[derive(Default)]
pub struct DepthGuard {
    /// Operator count of the current segment, one entry per open bracket (plus the top level).
    levels: Vec<usize>,
    total: usize,
}

impl DepthGuard {
    /// Accounts for one token; `Err` when the estimate passes [`MAX_DEPTH`].
    pub fn push(&mut self, tok: &Token<'_>, span: Span) -> Result<(), Diagnostic> {
        use Token::*;
        if self.levels.is_empty() {
            self.levels.push(0);
            self.total = 2;
        }
        match tok {
            LParen | LBracket | LBrace => {
                self.levels.push(0);
                self.total += 2;
            }
            RParen | RBracket | RBrace if self.levels.len() > 1 => {
                let ops = self.levels.pop().unwrap_or(0);
                self.total -= ops + 2;
            }
            Plus | Minus | Star | Slash | At | Dot | Repeat => {
                if let Some(top) = self.levels.last_mut() {
                    *top += 1;
                    self.total += 1;
                }
            }
            Model | Layer | Input | Label | Param | Metric | Forward | Return | Optimizer
            | Schedule | Clip | Train | Then | Of | Comma | Eq | Arrow | Colon => {
                if let Some(top) = self.levels.last_mut() {
                    self.total -= *top;
                    *top = 0;
                }
            }
            _ => {}
        }
        if self.total > MAX_DEPTH {
            return Err(Diagnostic::error(span, "expression nested too deeply")
                .label("nesting limit reached here")
                .note(format!("expressions may nest at most about {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }
}

/// The adapter lalrpop consumes: `(start, token, end)` triples, or the first lexical error.
pub struct Lexer<'s> {
    src: &'s str,
    tokens: logos::SpannedIter<'s, Token<'s>>,
    guard: DepthGuard,
    failed: bool,
}

impl<'s> Lexer<'s> {
    pub fn new(src: &'s str) -> Lexer<'s> {
        Lexer {
            src,
            tokens: Token::lexer(src).spanned(),
            guard: DepthGuard::default(),
            failed: false,
        }
    }
}

/// One lexed token with its byte range, as lalrpop's external-lexer interface wants it.
pub type Spanned<'s> = Result<(usize, Token<'s>, usize), Diagnostic>;

impl<'s> Iterator for Lexer<'s> {
    type Item = Spanned<'s>;

    fn next(&mut self) -> Option<Spanned<'s>> {
        if self.failed {
            return None;
        }
        let (result, range) = self.tokens.next()?;
        let result = result.map_err(|LexError(d)| match d {
            Some(d) => *d,
            None => unexpected_character(self.src, range.start),
        });
        let checked = result.and_then(|tok| {
            self.guard.push(&tok, Span::new(range.start, range.end))?;
            Ok((range.start, tok, range.end))
        });
        self.failed = checked.is_err();
        Some(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Token<'_>> {
        Lexer::new(src).map(|t| t.map(|(_, t, _)| t)).collect::<Result<_, _>>().unwrap()
    }

    fn err(src: &str) -> Diagnostic {
        Lexer::new(src).find_map(|t| t.err()).expect("a lexical error")
    }

    #[test]
    fn keywords_identifiers_and_punctuation() {
        use Token::*;
        assert_eq!(
            toks("model modelx _a1 of then -> - = {}()[],:.@*/+"),
            vec![
                Model,
                Ident("modelx"),
                Ident("_a1"),
                Of,
                Then,
                Arrow,
                Minus,
                Eq,
                LBrace,
                RBrace,
                LParen,
                RParen,
                LBracket,
                RBracket,
                Comma,
                Colon,
                Dot,
                At,
                Star,
                Slash,
                Plus
            ]
        );
    }

    #[test]
    fn numbers() {
        use Token::*;
        assert_eq!(
            toks("64 0.5 1. 1e-3 2.5E+4 3e2 007"),
            vec![Int(64), Float(0.5), Float(1.0), Float(1e-3), Float(2.5e4), Float(300.0), Int(7)]
        );
        // `fc1.weight` is a field access, `a-1` a subtraction.
        assert_eq!(toks("fc1.weight"), vec![Ident("fc1"), Dot, Ident("weight")]);
        assert_eq!(toks("a-1"), vec![Ident("a"), Minus, Int(1)]);
    }

    #[test]
    fn strings_and_comments() {
        use Token::*;
        assert_eq!(
            toks(
                r#""a\"b\\c\nd" // line "x"
                /* block
                   "y" */ "é""#
            ),
            vec![Str("a\"b\\c\nd".into()), Str("é".into())]
        );
    }

    #[test]
    fn lexical_errors() {
        let d = err("x = $y");
        assert_eq!(d.message, "unexpected character `$`");
        assert_eq!(d.primary.span, Span::new(4, 5));
        let d = err("data = csv(\"digits.csv)\nbatch = 3");
        assert_eq!(d.message, "unterminated string");
        assert_eq!(d.primary.span, Span::new(11, 23));
        let d = err(r#"x = "a\qb""#);
        assert_eq!(d.message, "unknown escape `\\q` in string");
        assert_eq!(d.primary.span, Span::new(6, 8));
        assert_eq!(err("a /* b").message, "unterminated block comment");
        assert_eq!(
            err("n = 99999999999999999999").message,
            "number `99999999999999999999` is too large"
        );
        assert_eq!(err("1e999").message, "number `1e999` is too large");
        assert!(err("x;").notes[0].contains("no separator"));
    }

    #[test]
    fn depth_guard_stops_deep_nesting_but_not_real_code() {
        let deep = format!("x = {}1", "-".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep).message, "expression nested too deeply");
        let parens = format!("x = {}1{}", "(".repeat(200), ")".repeat(200));
        assert_eq!(err(&parens).message, "expression nested too deeply");
        // Long files of shallow statements are fine: segments reset at `=` and `,`.
        let long = "h = relu(fc(x)) + a * b @ c.weight\n".repeat(500);
        assert_eq!(Lexer::new(&long).filter(|t| t.is_err()).count(), 0);
    }
}

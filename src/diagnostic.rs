//! Source spans and diagnostics: typed values produced by every front-end stage and
//! rendered only at the edge (the CLI and the tests) with `codespan-reporting`.
//!
//! A [`Span`] is a byte range into the one source file being compiled. A [`Diagnostic`]
//! carries a message in the user's vocabulary, a primary label on a span, optional secondary
//! labels and notes. Rendering never panics, whatever the spans (they are clamped).

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

/// A half-open byte range `[start, end)` in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }
    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
    /// 1-based line number of the span start in `src`.
    pub fn line(self, src: &str) -> usize {
        let s = (self.start as usize).min(src.len());
        src[..s].bytes().filter(|&b| b == b'\n').count() + 1
    }
}

/// One labelled span inside a diagnostic.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// A user-facing error: what went wrong, where, and (in notes) what would fix it.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            primary: Label { span, message: String::new() },
            secondary: Vec::new(),
            notes: Vec::new(),
        }
    }
    /// Text shown under the primary span.
    pub fn label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.secondary.push(Label { span, message: message.into() });
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Renders as `error: ...` with the quoted source line(s) and carets, no colour.
    pub fn render(&self, file_name: &str, src: &str) -> String {
        render_all(std::slice::from_ref(self), file_name, src)
    }
}

/// Renders several diagnostics, in order, as plain text.
pub fn render_all(diags: &[Diagnostic], file_name: &str, src: &str) -> String {
    // Control characters of the source are shown as `?`, one per byte, so that spans still
    // index the text and nothing in a file can drive the user's terminal.
    let shown = printable(src);
    let src = shown.as_str();
    let file = SimpleFile::new(file_name, src);
    let clamp = |s: Span| {
        let n = src.len();
        let a = (s.start as usize).min(n);
        let b = (s.end as usize).clamp(a, n);
        a..b
    };
    let config = term::Config::default();
    let mut out = String::new();
    for d in diags {
        let mut labels =
            vec![cs::Label::primary((), clamp(d.primary.span)).with_message(&d.primary.message)];
        for l in &d.secondary {
            labels.push(cs::Label::secondary((), clamp(l.span)).with_message(&l.message));
        }
        let diag = cs::Diagnostic::error()
            .with_message(&d.message)
            .with_labels(labels)
            .with_notes(d.notes.clone());
        let mut buf = String::new();
        if term::emit_to_string(&mut buf, &config, &file, &diag).is_err() {
            buf = format!("error: {}\n", d.message);
        }
        out.push_str(&buf);
    }
    out
}

/// The result type of the front-end stages: all diagnostics found, not just the first.
pub type Result<T> = std::result::Result<T, Vec<Diagnostic>>;

/// `text` with every control character but newline and tab replaced by `?` (one per byte
/// of its UTF-8 encoding, so byte offsets are kept).
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let bad = c.is_control() && c != '\n' && c != '\t' && c != '\r';
            let n = if bad { c.len_utf8() } else { 0 };
            std::iter::repeat_n('?', n).chain((!bad).then_some(c))
        })
        .collect()
}

/// `text` made [`printable`] and cut to at most `max` characters, `…` marking the cut.
pub fn shorten(text: &str, max: usize) -> String {
    let shown = printable(text);
    if shown.chars().count() <= max {
        return shown;
    }
    let mut cut: String = shown.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod printable_tests {
    use super::*;

    /// A terminal escape in the source is shown as `?`s, and the span still points at the
    /// right text.
    #[test]
    fn control_characters_are_not_echoed() {
        let src = "model M {\n  x = \u{1b}[31mred\u{7}\n}\n";
        let at = src.find("red").unwrap() as u32;
        let d = Diagnostic::error(Span { start: at, end: at + 3 }, "unknown `red`");
        let text = render_all(&[d], "t.nn", src);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
        assert!(text.contains("?[31mred?"), "{text}");
        assert_eq!(printable("a\u{85}b\tc\n").len(), "a\u{85}b\tc\n".len());
    }
}

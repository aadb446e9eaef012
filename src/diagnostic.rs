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

/// The line numbers of one source's byte offsets, by binary search over its line starts
/// (for printers that ask for many: [`Span::line`] counts from the start every time).
pub struct LineIndex(Vec<usize>);

impl LineIndex {
    pub fn new(src: &str) -> LineIndex {
        LineIndex(src.bytes().enumerate().filter(|&(_, b)| b == b'\n').map(|(i, _)| i).collect())
    }
    /// 1-based line number of `span`'s start, as [`Span::line`] gives it.
    pub fn line(&self, span: Span) -> usize {
        self.0.partition_point(|&nl| nl < span.start as usize) + 1
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
    render_all_with(diags, file_name, src, "")
}

/// [`render_all`] for a compilation with command-line overrides: spans past `src` (and the
/// newline after it) point into `flags`, the overrides' text (`syntax::set::text`), which a
/// diagnostic about an override shows as the command line. Labels on the other text than
/// the primary one's are left out.
pub fn render_all_with(diags: &[Diagnostic], file_name: &str, src: &str, flags: &str) -> String {
    let config = term::Config::default();
    let mut out = String::new();
    for d in diags {
        let on_flags = !flags.is_empty() && d.primary.span.start as usize > src.len();
        let (name, original, offset) = match on_flags {
            true => ("command line", flags, src.len() + 1),
            false => (file_name, src, 0),
        };
        let here = |s: Span| (s.start as usize > src.len()) == on_flags;
        let local = |s: Span| Span::new(s.start as usize - offset, s.end as usize - offset);
        let secondary: Vec<&Label> = d.secondary.iter().filter(|l| here(l.span)).collect();
        let spans: Vec<Span> = std::iter::once(d.primary.span)
            .chain(secondary.iter().map(|l| l.span))
            .map(local)
            .collect();
        let (shown, map) = shown_source(original, &spans);
        let src = shown.as_str();
        let file = SimpleFile::new(name, src);
        let clamp = |s: Span| {
            let s = local(s);
            let a = map(s.start as usize);
            a..map(s.end as usize).max(a)
        };
        let mut labels =
            vec![cs::Label::primary((), clamp(d.primary.span)).with_message(&d.primary.message)];
        for l in secondary {
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
        // The location in the header is the shown text's: a cut line moves its columns.
        let at = local(d.primary.span).start as usize;
        let (shown_col, real_col) = (column(src, map(at)), column(original, at));
        if shown_col != real_col {
            let line = Span::new(at, at).line(original);
            let (was, is) = (format!(":{line}:{shown_col}\n"), format!(":{line}:{real_col}\n"));
            buf = buf.replacen(&was, &is, 1);
        }
        out.push_str(&buf);
    }
    out
}

/// Lines longer than this many bytes are shown cut around the spans on them.
const MAX_LINE: usize = 160;
/// Bytes of context kept on each side of a span on a long line.
const CONTEXT: usize = 40;

/// The source as a message shows it, and where an offset of `src` is in it. Control
/// characters become `?` (one per byte, so that offsets are kept and nothing in a file can
/// drive the user's terminal); each line longer than [`MAX_LINE`] keeps only [`CONTEXT`]
/// bytes around the starts and ends of the `spans` on it, `…` standing for each cut.
fn shown_source(src: &str, spans: &[Span]) -> (String, impl Fn(usize) -> usize) {
    let text = printable(src);
    // (offset in `src`, offset in the shown text) at the start of every kept piece, and
    // the end of the text.
    let mut marks: Vec<(usize, usize)> = Vec::new();
    let mut shown = String::with_capacity(text.len().min(1 << 16));
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let mut keep: Vec<(usize, usize)> = Vec::new();
        if line.len() > MAX_LINE {
            for s in spans {
                for at in [s.start as usize, s.end as usize] {
                    if (start..=end).contains(&at) {
                        keep.push((at.saturating_sub(CONTEXT).max(start), (at + CONTEXT).min(end)));
                    }
                }
            }
            keep.sort();
            keep.dedup();
        } else {
            keep.push((start, end));
        }
        let mut last = start;
        for (a, b) in keep {
            let a = floor_char(&text, a.max(last));
            let b = floor_char(&text, b);
            if b <= a {
                continue;
            }
            if a > last {
                shown.push('…');
            }
            marks.push((a, shown.len()));
            shown.push_str(&text[a..b]);
            last = b;
        }
        if last < end {
            shown.push('…');
            if line.ends_with('\n') {
                shown.push('\n');
            }
        }
        start = end;
    }
    marks.push((text.len(), shown.len()));
    let map = move |at: usize| {
        let i = marks.partition_point(|&(o, _)| o <= at).saturating_sub(1);
        let (o, n) = marks[i];
        let next = marks.get(i + 1).map_or(usize::MAX, |m| m.1);
        (n + at.saturating_sub(o)).min(next)
    };
    (shown, map)
}

/// The 1-based column, in characters, of byte offset `at` of `src`.
fn column(src: &str, at: usize) -> usize {
    let at = floor_char(src, at);
    let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
    src[start..at].chars().count() + 1
}

/// The largest char boundary of `s` at or before `at`.
fn floor_char(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
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

    /// A very long line is shown cut around the span, which still points at its text.
    #[test]
    fn long_lines_are_cut_around_the_span() {
        let filler = "x + ".repeat(20_000);
        let src = format!("model M {{\n  y = {filler}oops + {filler}1\n}}\n");
        let at = src.find("oops").unwrap() as u32;
        let d = Diagnostic::error(Span { start: at, end: at + 4 }, "unknown `oops`");
        let text = render_all(&[d], "t.nn", &src);
        assert!(text.len() < 1000, "{} bytes", text.len());
        assert!(text.contains("2 │ …x + ") && text.contains("x + oops + x"), "{text}");
        assert!(text.contains("+ x…\n") && text.contains("^^^^"), "{text}");
        let col = at as usize - src.find("  y").unwrap() + 1;
        assert!(text.contains(&format!("t.nn:2:{col}\n")), "{text}");
        // Short lines are unchanged, and a span at the very end still renders.
        let src = "model M {\n  y = oops\n}";
        let at = src.find("oops").unwrap() as u32;
        let d = Diagnostic::error(Span { start: at, end: src.len() as u32 + 5 }, "m");
        assert!(render_all(&[d], "t.nn", src).contains("y = oops"));
    }
}

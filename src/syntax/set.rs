//! `--set KEY=VALUE`: command-line overrides of a file's settings, applied to its syntax tree
//! before checking, so that a value given on the command line is checked exactly like one
//! written in the file.
//!
//! The flags are laid out as a text after the source, one `--set KEY=VALUE` line each
//! ([`combined`]); every span of an override points into that text, so a diagnostic about an
//! override shows the flag (`diagnostic::render_all_with`).
//!
//! Keys:
//! - `optimizer.NAME`, `clip.NAME`, `train.NAME`: set one argument, replacing the file's or
//!   adding it;
//! - `schedule.NAME`: set NAME in the schedule parts that give it (by keyword or position),
//!   else in the last part;
//! - `optimizer`, `schedule`, `clip` alone: replace the whole call, or add it to a file
//!   without one (`--set 'optimizer=adam(lr = 1e-3)'`; the optimizer's parameter groups are
//!   kept).

use super::ast::{Arg, Expr, ExprKind, File, Ident, Item};
use crate::diagnostic::{Diagnostic, Result, Span};

/// The items a key may name.
const ITEMS: [&str; 4] = ["optimizer", "schedule", "clip", "train"];

/// The text the flags are shown as: one `--set KEY=VALUE` line per flag.
pub fn text(sets: &[String]) -> String {
    sets.iter().map(|s| format!("--set {s}\n")).collect()
}

/// The source followed by the flags' [`text`] (the source alone when there are none): the
/// text every span of a compilation with overrides points into.
pub fn combined(src: &str, sets: &[String]) -> String {
    match sets.is_empty() {
        true => src.to_string(),
        false => format!("{src}\n{}", text(sets)),
    }
}

/// Applies `sets` to `file`, parsed from a source of `src_len` bytes.
pub fn apply(file: &mut File, src_len: usize, sets: &[String]) -> Result<()> {
    let mut diags = Vec::new();
    let mut at = src_len + 1;
    for flag in sets {
        let start = at + "--set ".len();
        at += text(std::slice::from_ref(flag)).len();
        if let Err(d) = apply_one(file, flag, start) {
            diags.push(d);
        }
    }
    match diags.is_empty() {
        true => Ok(()),
        false => Err(diags),
    }
}

/// One `KEY=VALUE` whose text starts at offset `start` of the combined text.
fn apply_one(file: &mut File, flag: &str, start: usize) -> std::result::Result<(), Diagnostic> {
    let whole = Span::new(start, start + flag.len());
    let Some((key, value)) = flag.split_once('=') else {
        return Err(Diagnostic::error(whole, "expected KEY=VALUE")
            .label("no `=`")
            .note("e.g. `--set optimizer.lr=0.1`, `--set train.batch=64`"));
    };
    let key_span = Span::new(start, start + key.len());
    let (item, name) = match key.trim().split_once('.') {
        Some((item, name)) => (item, Some(name)),
        None => (key.trim(), None),
    };
    if !ITEMS.contains(&item) || name.is_some_and(|n| n.is_empty() || n.contains('.')) {
        return Err(Diagnostic::error(key_span, format!("cannot set `{key}`"))
            .label("not a setting of the file")
            .note("keys are `optimizer.NAME`, `schedule.NAME`, `clip.NAME`, `train.NAME`, or `optimizer`, `schedule`, `clip` for the whole call"));
    }
    let at = start + key.len() + 1;
    if (item, name) == ("schedule", None) {
        // `warmup(8) then cosine(T = 56)`: phases, not one expression.
        let parts = parse_schedule(value, at)?;
        match file.items.iter_mut().find(|i| matches!(i, Item::Schedule { .. })) {
            Some(Item::Schedule { parts: old, .. }) => *old = parts,
            _ => file.items.push(Item::Schedule { parts, span: whole }),
        }
        return Ok(());
    }
    let value = parse_value(value, at)?;
    let name = name.map(|n| Ident { name: n.to_string(), span: key_span });
    let arg = |name: Ident| Arg { name: Some(name), value: value.clone(), span: whole };
    let found = file.items.iter_mut().find(|i| item_name(i) == Some(item));
    match (item, name, found) {
        ("train", None, _) => {
            return Err(Diagnostic::error(key_span, "`train` is a block, not a call")
                .label("set one of its settings")
                .note("e.g. `--set train.batch=64`"));
        }
        ("train", Some(n), None) => {
            file.items.push(Item::Train { settings: vec![arg(n)], span: whole });
        }
        (_, Some(n), Some(Item::Train { settings, .. })) => set_arg(settings, arg(n)),
        ("optimizer", None, Some(Item::Optimizer { spec, .. }))
        | ("clip", None, Some(Item::Clip { spec, .. })) => *spec = value,
        ("optimizer", None, None) => {
            file.items.push(Item::Optimizer { spec: value, groups: Vec::new(), span: whole })
        }
        ("clip", None, None) => file.items.push(Item::Clip { spec: value, span: whole }),
        (_, Some(n), Some(Item::Optimizer { spec, .. } | Item::Clip { spec, .. })) => {
            set_call_arg(spec, arg(n), key_span, item)?
        }
        (_, Some(n), Some(Item::Schedule { parts, .. })) => {
            let writes = |p: &Expr| written(p, &n.name).is_some();
            let which: Vec<usize> = (0..parts.len()).filter(|&i| writes(&parts[i])).collect();
            let which = if which.is_empty() { vec![parts.len() - 1] } else { which };
            for i in which {
                match (written(&parts[i], &n.name), &mut parts[i].kind) {
                    // Given by position: the value takes its place.
                    (Some(at), ExprKind::Call { args, .. }) if args[at].name.is_none() => {
                        args[at].value = value.clone();
                    }
                    _ => set_call_arg(&mut parts[i], arg(n.clone()), key_span, item)?,
                }
            }
        }
        (_, Some(_), None) => {
            return Err(Diagnostic::error(key_span, format!("this file has no `{item}`"))
                .label(format!("nothing to set `{}` in", key.trim()))
                .note(format!("give the whole call: `--set '{item}=...'`")));
        }
        _ => unreachable!("every item of ITEMS is matched above"),
    }
    Ok(())
}

/// Parses an override's value as an expression whose spans start at `at`: the text is the
/// value preceded by spaces and a settings block opening (as `parse` reads a byte-order mark
/// as spaces), so every offset is the combined text's.
fn parse_value(value: &str, at: usize) -> std::result::Result<Expr, Diagnostic> {
    const OPEN: &str = "train{v=";
    if value.trim().is_empty() {
        return Err(Diagnostic::error(Span::new(at, at), "no value after `=`").label("here"));
    }
    let text = format!("{}{OPEN}{value}}}", " ".repeat(at.saturating_sub(OPEN.len())));
    let file = super::parse(&text).map_err(|mut d| in_flag_terms(d.remove(0)))?;
    match file.items.into_iter().next() {
        Some(Item::Train { mut settings, .. }) if settings.len() == 1 && at >= OPEN.len() => {
            Ok(settings.remove(0).value)
        }
        _ => Err(Diagnostic::error(Span::new(at, at + value.len()), "expected one value")
            .label("after `=`")),
    }
}

/// A parse error of a value in the words of a flag: the `}` that closes the settings block
/// the value is parsed in is the end of the value.
fn in_flag_terms(mut d: Diagnostic) -> Diagnostic {
    let reword = |m: &str| m.replace("`}` or `,`", "`}`").replace("`}`", "the end of the value");
    d.message = reword(&d.message);
    d.primary.message = reword(&d.primary.message);
    d
}

/// Parses a whole schedule (`warmup(8) then cosine(T = 56)`) whose spans start at `at`,
/// as [`parse_value`] parses a value.
fn parse_schedule(value: &str, at: usize) -> std::result::Result<Vec<Expr>, Diagnostic> {
    const OPEN: &str = "schedule ";
    let text = format!("{}{OPEN}{value}", " ".repeat(at.saturating_sub(OPEN.len())));
    let file = super::parse(&text).map_err(|mut d| d.remove(0))?;
    match file.items.into_iter().next() {
        Some(Item::Schedule { parts, .. }) if at >= OPEN.len() => Ok(parts),
        _ => Err(Diagnostic::error(Span::new(at, at + value.len()), "expected a schedule")
            .label("after `=`")),
    }
}

fn item_name(item: &Item) -> Option<&'static str> {
    match item {
        Item::Optimizer { .. } => Some("optimizer"),
        Item::Schedule { .. } => Some("schedule"),
        Item::Clip { .. } => Some("clip"),
        Item::Train { .. } => Some("train"),
        Item::Model(_) | Item::Layer(_) => None,
    }
}

fn position(args: &[Arg], name: &str) -> Option<usize> {
    args.iter().position(|a| a.name.as_ref().is_some_and(|n| n.name == name))
}

/// Replaces the argument of `arg`'s name, or appends `arg`.
fn set_arg(args: &mut Vec<Arg>, arg: Arg) {
    let name = &arg.name.as_ref().expect("a named argument").name;
    match position(args, name) {
        Some(i) => args[i] = arg,
        None => args.push(arg),
    }
}

/// Where the schedule call `e` gives `name`: by keyword, or by position (`warmup(32)` gives
/// `steps`), as the built-in schedule's parameter order says.
fn written(e: &Expr, name: &str) -> Option<usize> {
    let ExprKind::Call { callee, args } = &e.kind else { return None };
    position(args, name).or_else(|| {
        let b = crate::check::registry::find(crate::check::registry::SCHEDULES, &callee.name)?;
        let at = b.params.iter().position(|p| p.name == name)?;
        args.get(at).filter(|a| a.name.is_none()).map(|_| at)
    })
}

fn set_call_arg(
    e: &mut Expr,
    arg: Arg,
    key: Span,
    item: &str,
) -> std::result::Result<(), Diagnostic> {
    match &mut e.kind {
        ExprKind::Call { args, .. } => {
            set_arg(args, arg);
            Ok(())
        }
        _ => Err(Diagnostic::error(key, format!("the file's `{item}` is not a call"))
            .label("cannot set an argument")
            .secondary(e.span, "this")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::print::print;

    const SRC: &str = "model M {\n    input x: [B, 2]\n    label y: [B, 1]\n    fc = Dense(2 -> 1)\n    loss = mse(fc(x), y)\n}\noptimizer sgd(lr = 0.1)\nschedule warmup(steps = 5) then cosine(T = 100)\n";

    fn with(sets: &[&str]) -> Result<String> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        crate::syntax::parse_with(SRC, &sets).map(|f| print(&f))
    }

    #[test]
    fn arguments_are_replaced_or_added_and_items_added() {
        let out = with(&["optimizer.lr=0.01", "optimizer.momentum=0.9", "train.batch=64"]).unwrap();
        assert!(out.contains("(call sgd lr=0.01 momentum=0.9)"), "{out}");
        assert!(out.contains("(train\n  batch=64)"), "{out}");
    }

    #[test]
    fn a_schedule_argument_goes_to_the_part_that_writes_it_else_the_last() {
        let out = with(&["schedule.T=50", "schedule.eta_min=0.001"]).unwrap();
        assert!(out.contains("(call warmup steps=5) (call cosine T=50 eta_min=0.001)"), "{out}");
        let out = with(&["schedule.steps=7"]).unwrap();
        assert!(out.contains("(call warmup steps=7) (call cosine T=100)"), "{out}");
        let out = with(&["schedule=warmup(8) then cosine(T = 56)", "schedule.steps=9"]).unwrap();
        assert!(out.contains("(schedule (call warmup 9) (call cosine T=56))"), "{out}");
    }

    #[test]
    fn spans_point_into_the_flags_text() {
        let flags = ["optimizer.lr=oops(", "clip.max_norm=1", "nonsense"];
        let d = with(&flags).unwrap_err();
        let text = combined(SRC, &flags.map(String::from));
        let shown: Vec<&str> = d
            .iter()
            .map(|d| &text[d.primary.span.start as usize..d.primary.span.end as usize])
            .collect();
        // The parse error at the end of the first value, no clip to set, no `=`.
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(shown[0].is_empty() || text[d[0].primary.span.start as usize..].starts_with('\n'));
        assert_eq!(shown[1], "clip.max_norm");
        assert_eq!(shown[2], "nonsense");
    }

    #[test]
    fn a_bad_value_is_described_in_the_flags_terms() {
        let d = with(&["optimizer.lr=1)"]).unwrap_err();
        assert_eq!(d[0].message, "expected the end of the value, found `)`");
        let d = with(&["optimizer.lr= "]).unwrap_err();
        assert_eq!(d[0].message, "no value after `=`");
    }
}

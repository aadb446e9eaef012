//! Binding call arguments to parameter lists, and reading literal argument values.
//!
//! Binding follows Python: positional arguments fill parameters in order, keyword arguments
//! name them, no positional argument after a keyword one, none given twice, every required
//! one present. [`Args`] then reads typed values (numbers with range rules, integers,
//! booleans, strings, pairs) with the builtin's defaults, collecting one diagnostic per bad
//! value so that a call with several mistakes reports them all.

use super::registry::Builtin;
use super::suggest::did_you_mean;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{Arg, BinOp, Expr, ExprKind};

/// One parameter of a call signature: its name and whether it must be given.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'s> {
    pub name: &'s str,
    pub required: bool,
}

/// Binds `args` to `params` of `callee`; `slots[i]` is the argument given for `params[i]`.
/// `signature` is shown in notes. Reports every binding mistake; `None` if there was one.
pub fn bind<'e>(
    callee: &str,
    signature: &str,
    params: &[Slot],
    args: &'e [Arg],
    call: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Option<&'e Arg>>> {
    let before = diags.len();
    if let Some(d) = arrow_spelled_apart(callee, params, args) {
        diags.push(d);
        return None;
    }
    let mut slots: Vec<Option<&'e Arg>> = vec![None; params.len()];
    let mut seen_keyword: Option<Span> = None;
    let mut next = 0;
    for arg in args {
        let index = match &arg.name {
            None => {
                if let Some(k) = seen_keyword {
                    diags.push(
                        Diagnostic::error(arg.span, "positional argument after keyword arguments")
                            .label("write this as `name = value`")
                            .secondary(k, "keyword argument given here"),
                    );
                    continue;
                }
                if next >= params.len() {
                    diags.push(too_many(callee, signature, params.len(), args.len(), arg.span));
                    break;
                }
                next += 1;
                next - 1
            }
            Some(k) => {
                seen_keyword.get_or_insert(arg.span);
                match params.iter().position(|p| p.name == k.name) {
                    Some(i) => i,
                    None => {
                        let mut d = Diagnostic::error(
                            k.span,
                            format!("{callee} has no parameter `{}`", k.name),
                        )
                        .label("unknown parameter");
                        if let Some(s) = did_you_mean(&k.name, params.iter().map(|p| p.name)) {
                            d = d.note(s);
                        }
                        diags.push(d.note(format!("usage: {signature}")));
                        continue;
                    }
                }
            }
        };
        if let Some(first) = slots[index] {
            let mut d =
                Diagnostic::error(arg.span, format!("`{}` given twice", params[index].name))
                    .label("given again here")
                    .secondary(first.span, "first given here");
            if first.name.is_none() {
                d = d.note(format!(
                    "a positional argument fills the parameters in order; this one is `{}`: \
                     {signature}",
                    params[index].name
                ));
            }
            diags.push(d);
            continue;
        }
        slots[index] = Some(arg);
    }
    for (p, s) in params.iter().zip(&slots) {
        if p.required && s.is_none() && diags.len() == before {
            diags.push(
                Diagnostic::error(call, format!("missing required `{}` for {callee}", p.name))
                    .label(format!("`{}` is not given", p.name))
                    .note(format!("usage: {signature}")),
            );
        }
    }
    (diags.len() == before).then_some(slots)
}

/// `Dense(10, 64)` for `Dense(10 -> 64)`: a callee whose first parameter is an arrow
/// (`in -> out`) given two positional numbers instead.
fn arrow_spelled_apart(callee: &str, params: &[Slot], args: &[Arg]) -> Option<Diagnostic> {
    let arrow = params.first()?.name;
    let (a, b) = match args {
        [a, b, ..] if a.name.is_none() && b.name.is_none() => (a, b),
        _ => return None,
    };
    let plain = |e: &Expr| !matches!(e.kind, ExprKind::Arrow { .. });
    if !arrow.contains("->") || !plain(&a.value) || !plain(&b.value) {
        return None;
    }
    let span = Span::new(a.span.start as usize, b.span.end as usize);
    let example = match (&a.value.kind, &b.value.kind) {
        (ExprKind::Number { value: x, .. }, ExprKind::Number { value: y, .. }) => {
            format!("{callee}({x} -> {y})")
        }
        _ => format!("{callee}(a -> b)"),
    };
    Some(
        Diagnostic::error(span, format!("{callee} takes its sizes as `{arrow}`"))
            .label("found two arguments")
            .note(format!("write `{example}`")),
    )
}

fn too_many(callee: &str, sig: &str, max: usize, given: usize, span: Span) -> Diagnostic {
    let noun = if max == 1 { "argument" } else { "arguments" };
    Diagnostic::error(span, format!("{callee} takes {max} {noun} but {given} were given"))
        .label("unexpected argument")
        .note(format!("usage: {sig}"))
}

/// A range a numeric hyper-parameter must lie in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Any finite number.
    Finite,
    /// `v > 0`
    Positive,
    /// `v >= 0`
    NonNegative,
    /// `0 <= v < 1`
    UnitOpen,
    /// `0 <= v <= 1`
    Unit,
}

impl Rule {
    pub fn holds(self, v: f64) -> bool {
        v.is_finite()
            && match self {
                Rule::Finite => true,
                Rule::Positive => v > 0.0,
                Rule::NonNegative => v >= 0.0,
                Rule::UnitOpen => (0.0..1.0).contains(&v),
                Rule::Unit => (0.0..=1.0).contains(&v),
            }
    }
    pub fn describe(self) -> &'static str {
        match self {
            Rule::Finite => "a finite number",
            Rule::Positive => "positive",
            Rule::NonNegative => "non-negative",
            Rule::UnitOpen => "in [0, 1)",
            Rule::Unit => "in [0, 1]",
        }
    }
}

/// A number as written: its value and whether it was written as an integer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num {
    pub value: f64,
    pub int: bool,
}

impl Num {
    /// As the user would write it: `32`, `32.0`, `1e-8`.
    pub fn show(self) -> String {
        if self.int && self.value.abs() < 1e15 {
            format!("{}", self.value as i64)
        } else {
            format!("{:?}", self.value)
        }
    }
}

/// A short description of an expression for "found ..." messages.
pub fn describe(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Number { value, int } => Num { value: *value, int: *int }.show(),
        ExprKind::Str(s) => format!("the string \"{s}\""),
        ExprKind::Bool(b) => format!("`{b}`"),
        ExprKind::Name(n) => format!("the name `{n}`"),
        ExprKind::Field { field, .. } => format!("the field `.{}`", field.name),
        ExprKind::Call { callee, .. } => format!("a call of `{}`", callee.name),
        ExprKind::Neg(_) | ExprKind::Binary { .. } => "an expression".to_string(),
        ExprKind::Tuple(_) => "a tuple".to_string(),
        ExprKind::List(_) => "a list".to_string(),
        ExprKind::Arrow { .. } => "an arrow `a -> b`".to_string(),
        ExprKind::Repeat { .. } => "a `repeat`".to_string(),
    }
}

/// Evaluates a constant numeric expression: literals, `-`, `+ - * /`. Integer-ness is kept
/// through `+ - *` and exact `/`.
pub fn number(e: &Expr) -> Option<Num> {
    match &e.kind {
        ExprKind::Number { value, int } => Some(Num { value: *value, int: *int }),
        ExprKind::Neg(x) => number(x).map(|n| Num { value: -n.value, int: n.int }),
        ExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (number(lhs)?, number(rhs)?);
            let int = a.int && b.int;
            let v = match op {
                BinOp::Add => a.value + b.value,
                BinOp::Sub => a.value - b.value,
                BinOp::Mul => a.value * b.value,
                BinOp::Div => a.value / b.value,
                BinOp::MatMul => return None,
            };
            Some(Num { value: v, int: int && v.fract() == 0.0 && v.is_finite() })
        }
        _ => None,
    }
}

/// Arguments bound to a builtin's parameters, read as typed values with its defaults.
/// Every bad value adds to `errors`; the caller moves them to its diagnostics.
pub struct Args<'e> {
    builtin: &'static Builtin,
    slots: Vec<Option<&'e Arg>>,
    pub errors: Vec<Diagnostic>,
}

impl<'e> Args<'e> {
    /// No arguments at all, required ones included (each reads as its default): for tests
    /// that walk a registry table.
    #[cfg(test)]
    pub fn none(builtin: &'static Builtin) -> Args<'e> {
        Args { builtin, slots: vec![None; builtin.params.len()], errors: Vec::new() }
    }

    /// Binds `args` to `builtin`'s parameters; `None` after reporting a binding mistake.
    pub fn bind(
        builtin: &'static Builtin,
        args: &'e [Arg],
        call: Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Args<'e>> {
        let params: Vec<Slot> = builtin
            .params
            .iter()
            .map(|p| Slot { name: p.name, required: p.default.is_none() })
            .collect();
        let slots = bind(builtin.name, &builtin.signature(), &params, args, call, diags)?;
        Some(Args { builtin, slots, errors: Vec::new() })
    }

    /// Like [`Args::bind`] but every parameter is optional: for overrides of values already
    /// given elsewhere (an optimizer's parameter groups).
    pub fn bind_overrides(
        builtin: &'static Builtin,
        args: &'e [Arg],
        call: Span,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Args<'e>> {
        let params: Vec<Slot> =
            builtin.params.iter().map(|p| Slot { name: p.name, required: false }).collect();
        let slots = bind(builtin.name, &builtin.signature(), &params, args, call, diags)?;
        Some(Args { builtin, slots, errors: Vec::new() })
    }

    /// The argument given for parameter `name`.
    pub fn get(&self, name: &str) -> Option<&'e Arg> {
        self.builtin.param_index(name).and_then(|i| self.slots[i])
    }

    fn fail(&mut self, span: Span, message: String, label: &str) {
        self.errors.push(Diagnostic::error(span, message).label(label));
    }

    /// A number in `rule`'s range, or `default` when not given.
    pub fn num(&mut self, name: &str, default: f64, rule: Rule) -> f64 {
        let Some(arg) = self.get(name) else { return default };
        match number(&arg.value) {
            Some(n) if rule.holds(n.value) => n.value,
            Some(n) => {
                let msg = format!("{name} must be {}, found {}", rule.describe(), n.show());
                self.fail(arg.value.span, msg, "out of range");
                default
            }
            None => {
                let msg = format!("{name} must be a number, found {}", describe(&arg.value));
                self.fail(arg.value.span, msg, "expected a number");
                default
            }
        }
    }

    /// An integer `>= min`, or `default` when not given.
    pub fn int(&mut self, name: &str, default: u64, min: u64) -> u64 {
        let Some(arg) = self.get(name) else { return default };
        let what = if min == 0 { "a non-negative integer" } else { "a positive integer" };
        match number(&arg.value) {
            Some(n) if n.int && n.value >= min as f64 && n.value < 9.0e15 => n.value as u64,
            Some(n) => {
                let msg = format!("{name} must be {what}, found {}", n.show());
                self.fail(
                    arg.value.span,
                    msg,
                    if n.int { "out of range" } else { "not an integer" },
                );
                default
            }
            None => {
                let msg = format!("{name} must be {what}, found {}", describe(&arg.value));
                self.fail(arg.value.span, msg, "expected an integer");
                default
            }
        }
    }

    /// `true` or `false`, or `default` when not given.
    pub fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(arg) = self.get(name) else { return default };
        if let ExprKind::Bool(b) = arg.value.kind {
            return b;
        }
        let msg = format!("{name} must be `true` or `false`, found {}", describe(&arg.value));
        self.fail(arg.value.span, msg, "expected `true` or `false`");
        default
    }

    /// A string literal, or `default` when not given (`None` and no error if neither).
    pub fn string(&mut self, name: &str, default: Option<&str>) -> Option<String> {
        let Some(arg) = self.get(name) else { return default.map(str::to_string) };
        if let ExprKind::Str(s) = &arg.value.kind {
            return Some(s.clone());
        }
        let msg = format!("{name} must be a string, found {}", describe(&arg.value));
        self.fail(arg.value.span, msg, "expected a string like \"file.csv\"");
        None
    }

    /// A pair `(a, b)` of numbers each in `rule`'s range, or `default` when not given.
    pub fn pair(&mut self, name: &str, default: (f64, f64), rule: Rule) -> (f64, f64) {
        let Some(arg) = self.get(name) else { return default };
        let items = match &arg.value.kind {
            ExprKind::Tuple(items) if items.len() == 2 => items,
            _ => {
                let msg =
                    format!("{name} must be a pair of numbers, found {}", describe(&arg.value));
                self.fail(arg.value.span, msg, "expected `(a, b)`");
                return default;
            }
        };
        let mut out = [default.0, default.1];
        for (i, item) in items.iter().enumerate() {
            match number(item) {
                Some(n) if rule.holds(n.value) => out[i] = n.value,
                Some(n) => {
                    let msg = format!("{name} must be {}, found {}", rule.describe(), n.show());
                    self.fail(item.span, msg, "out of range");
                }
                None => {
                    let msg = format!("{name} must be numbers, found {}", describe(item));
                    self.fail(item.span, msg, "expected a number");
                }
            }
        }
        (out[0], out[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f64, at: usize) -> Expr {
        Expr {
            kind: ExprKind::Number { value: v, int: v.fract() == 0.0 },
            span: Span::new(at, at + 1),
        }
    }
    fn pos(v: f64, at: usize) -> Arg {
        Arg { name: None, value: num(v, at), span: Span::new(at, at + 1) }
    }
    fn kw(name: &str, v: f64, at: usize) -> Arg {
        let ident = crate::syntax::ast::Ident { name: name.into(), span: Span::new(at, at + 1) };
        Arg { name: Some(ident), value: num(v, at + 2), span: Span::new(at, at + 3) }
    }
    const SGD: &[Slot] =
        &[Slot { name: "lr", required: true }, Slot { name: "momentum", required: false }];

    #[test]
    fn binds_positional_then_keyword() {
        let mut d = Vec::new();
        let args = [pos(0.1, 0), kw("momentum", 0.9, 5)];
        let slots = bind("sgd", "sgd(lr, momentum = 0)", SGD, &args, Span::new(0, 9), &mut d);
        assert!(d.is_empty());
        let slots = slots.unwrap();
        assert_eq!(slots[0].unwrap().span, args[0].span);
        assert_eq!(slots[1].unwrap().span, args[1].span);
    }

    #[test]
    fn reports_each_binding_mistake() {
        let sig = "sgd(lr, momentum = 0)";
        let mut d = Vec::new();
        let args = [kw("momentun", 0.9, 0)];
        assert!(bind("sgd", sig, SGD, &args, Span::new(0, 9), &mut d).is_none());
        assert_eq!(d[0].message, "sgd has no parameter `momentun`");
        assert_eq!(d[0].notes[0], "did you mean `momentum`?");

        let mut d = Vec::new();
        let args = [pos(0.1, 0), kw("lr", 0.2, 5)];
        assert!(bind("sgd", sig, SGD, &args, Span::new(0, 9), &mut d).is_none());
        assert_eq!(d[0].message, "`lr` given twice");
        assert_eq!(d[0].secondary[0].span, args[0].span);

        let mut d = Vec::new();
        assert!(bind("sgd", sig, SGD, &[], Span::new(0, 9), &mut d).is_none());
        assert_eq!(d[0].message, "missing required `lr` for sgd");

        let mut d = Vec::new();
        let args = [pos(0.1, 0), pos(0.9, 2), pos(1.0, 4)];
        assert!(bind("sgd", sig, SGD, &args, Span::new(0, 9), &mut d).is_none());
        assert_eq!(d[0].message, "sgd takes 2 arguments but 3 were given");
        assert_eq!(d[0].primary.span, args[2].span);
    }

    #[test]
    fn evaluates_constant_numbers() {
        let e = Expr {
            kind: ExprKind::Binary {
                op: BinOp::Div,
                lhs: Box::new(num(1.0, 0)),
                rhs: Box::new(num(4.0, 2)),
            },
            span: Span::new(0, 3),
        };
        assert_eq!(number(&e), Some(Num { value: 0.25, int: false }));
        let neg = Expr { kind: ExprKind::Neg(Box::new(num(3.0, 1))), span: Span::new(0, 2) };
        assert_eq!(number(&neg), Some(Num { value: -3.0, int: true }));
        assert_eq!(Num { value: 32.0, int: false }.show(), "32.0");
        assert_eq!(Num { value: 1e-8, int: false }.show(), "1e-8");
    }

    #[test]
    fn rules_reject_out_of_range_and_non_finite() {
        assert!(Rule::UnitOpen.holds(0.0) && !Rule::UnitOpen.holds(1.0));
        assert!(!Rule::Positive.holds(0.0) && Rule::NonNegative.holds(0.0));
        assert!(!Rule::Finite.holds(f64::INFINITY));
    }
}

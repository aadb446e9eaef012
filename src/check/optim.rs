//! The `optimizer` item: its method, its hyper-parameters and its parameter groups.
//!
//! Defaults are the texts of the method's registry entry (`registry::OPTIMIZERS`), parsed
//! here, so `nnc list optimizers`, the README and the checker cannot disagree. A group
//! (`group "*.bias", "norm*" (weight_decay = 0, clip = value(1))`) starts from the
//! optimizer's values and overrides any of them; it may also clip its own gradients.
//! Groups are matched against parameter names after elaboration ([`resolve_groups`]): a
//! parameter belongs to the first group with a matching pattern, and a pattern that matches
//! nothing is an error at the pattern.
//!
//! | hyper-parameter | rule (as PyTorch checks it) |
//! |-----------------|------------------------------|
//! | lr, eps, final_lr, gamma, trust_coefficient | > 0 |
//! | momentum, alpha, betas | in [0, 1) |
//! | dampening, rho | in [0, 1] |
//! | weight_decay, lr_decay, initial_accumulator_value, momentum_decay | >= 0 |
//! | partial | in (0, 1/2] |
//! | nesterov (sgd) | needs momentum > 0 and dampening = 0 |
//! | clamp = (lo, hi) (every method, every group) | finite, lo < hi |
//! | max_iter, max_eval, history_size (lbfgs) | integers >= 1; max_eval defaults to max_iter * 5 / 4 (integer division, as torch) |
//! | tolerance_grad, tolerance_change (lbfgs) | >= 0 |
//! | line_search (lbfgs) | `"strong_wolfe"` or `"none"` (quoted or bare) |
//! | lbfgs | no parameter groups, no `clamp`, no `clip` (see [`host_driven_conflicts`]) |
//!
//! `clamp` belongs to no method's registry entry: it is split off the arguments before
//! they are bound ([`take_clamp`]), and a group inherits the optimizer's unless it gives its
//! own.
//!
//! L-BFGS is driven from the host over the whole training set (`train::lbfgs`): it keeps
//! one curvature history over all parameters (torch.optim.LBFGS refuses parameter groups),
//! and its line search needs the gradient of the loss it measures, so clipping and
//! projection, which would change one without the other, are errors.

use super::args::{describe, Args, Rule};
use super::hyper::{clip, done, lookup, spec};
use super::model::{Clip, Hyper, LineSearch, Method, Optimizer, ParamDef, ParamGroup};
use super::registry::{Builtin, Param, OPTIMIZERS};
use super::suggest::did_you_mean;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{Arg, Expr, ExprKind, Group};

/// How a hyper-parameter is written, the range it must lie in, and the field of [`Hyper`]
/// it sets: a name in [`KINDS`] cannot be without its setter.
#[derive(Clone, Copy)]
enum Kind {
    Num(Rule, fn(&mut Hyper, f64)),
    /// An integer at least this.
    Int(u64, fn(&mut Hyper, u64)),
    Bool(fn(&mut Hyper, bool)),
    Pair(Rule, fn(&mut Hyper, (f64, f64))),
    /// `"strong_wolfe"` or `"none"`.
    LineSearch(fn(&mut Hyper, LineSearch)),
}

/// Every hyper-parameter name used in `OPTIMIZERS`, with its kind, rule and field (a test
/// checks that every registry name is here).
const KINDS: &[(&str, Kind)] = &[
    ("lr", Kind::Num(Rule::Positive, |h, x| h.lr = x)),
    ("momentum", Kind::Num(Rule::UnitOpen, |h, x| h.momentum = x)),
    ("dampening", Kind::Num(Rule::Unit, |h, x| h.dampening = x)),
    ("nesterov", Kind::Bool(|h, b| h.nesterov = b)),
    ("weight_decay", Kind::Num(Rule::NonNegative, |h, x| h.weight_decay = x)),
    ("betas", Kind::Pair(Rule::UnitOpen, |h, (a, b)| (h.beta1, h.beta2) = (a, b))),
    ("eps", Kind::Num(Rule::Positive, |h, x| h.eps = x)),
    ("amsgrad", Kind::Bool(|h, b| h.amsgrad = b)),
    ("alpha", Kind::Num(Rule::UnitOpen, |h, x| h.alpha = x)),
    ("centered", Kind::Bool(|h, b| h.centered = b)),
    ("rho", Kind::Num(Rule::Unit, |h, x| h.rho = x)),
    ("lr_decay", Kind::Num(Rule::NonNegative, |h, x| h.lr_decay = x)),
    (
        "initial_accumulator_value",
        Kind::Num(Rule::NonNegative, |h, x| h.initial_accumulator_value = x),
    ),
    ("momentum_decay", Kind::Num(Rule::NonNegative, |h, x| h.momentum_decay = x)),
    ("final_lr", Kind::Num(Rule::Positive, |h, x| h.final_lr = x)),
    ("gamma", Kind::Num(Rule::Positive, |h, x| h.gamma = x)),
    // Also at most 1/2: see `cross_check`.
    ("partial", Kind::Num(Rule::Positive, |h, x| h.partial = x)),
    ("trust_coefficient", Kind::Num(Rule::Positive, |h, x| h.trust_coefficient = x)),
    ("max_iter", Kind::Int(1, |h, n| h.max_iter = n)),
    ("max_eval", Kind::Int(1, |h, n| h.max_eval = n)),
    ("tolerance_grad", Kind::Num(Rule::NonNegative, |h, x| h.tolerance_grad = x)),
    ("tolerance_change", Kind::Num(Rule::NonNegative, |h, x| h.tolerance_change = x)),
    ("history_size", Kind::Int(1, |h, n| h.history_size = n)),
    ("line_search", Kind::LineSearch(|h, l| h.line_search = l)),
];

fn kind(name: &str) -> Option<Kind> {
    KINDS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

fn method(name: &str) -> Option<Method> {
    Some(match name {
        "sgd" => Method::Sgd,
        "heavy_ball" => Method::HeavyBall,
        "adagrad" => Method::Adagrad,
        "rmsprop" => Method::Rmsprop,
        "adadelta" => Method::Adadelta,
        "adam" | "amsgrad" => Method::Adam,
        "adamw" => Method::AdamW,
        "nadam" => Method::NAdam,
        "radam" => Method::RAdam,
        "adamax" => Method::Adamax,
        "adabound" => Method::AdaBound,
        "padam" => Method::Padam,
        "lars" => Method::Lars,
        "lamb" => Method::Lamb,
        "lbfgs" => Method::Lbfgs,
        _ => return None,
    })
}

/// Sets the field of `kind` from a registry default text (`1e-3`, `20`, `false`,
/// `(0.9, 0.999)`, `"strong_wolfe"`); `None` if the text is not a value of that kind (a
/// derived default such as `max_iter * 5 / 4`).
fn set_default(h: &mut Hyper, kind: Kind, text: &str) -> Option<()> {
    match kind {
        Kind::Num(_, set) => set(h, text.parse().ok()?),
        Kind::Int(_, set) => set(h, text.parse().ok()?),
        Kind::Bool(set) => set(h, text.parse().ok()?),
        Kind::Pair(_, set) => {
            let inner = text.strip_prefix('(')?.strip_suffix(')')?;
            let (a, b) = inner.split_once(',')?;
            set(h, (a.trim().parse().ok()?, b.trim().parse().ok()?))
        }
        Kind::LineSearch(set) => {
            set(h, LineSearch::from_name(text.strip_prefix('"')?.strip_suffix('"')?)?)
        }
    }
    Some(())
}

/// The defaults of optimizer `b` (`amsgrad` is `adam` with `amsgrad = true`).
fn defaults(b: &Builtin) -> Hyper {
    let mut h = Hyper::default();
    for p in b.params {
        if let (Some(text), Some(k)) = (p.default, kind(p.name)) {
            set_default(&mut h, k, text);
        }
    }
    if b.name == "amsgrad" {
        h.amsgrad = true;
    }
    h
}

/// Reads every argument given in `a` into `h`, each with its rule.
fn read(b: &Builtin, a: &mut Args, h: &mut Hyper) {
    for p in b.params {
        if a.get(p.name).is_none() {
            continue;
        }
        match kind(p.name) {
            Some(Kind::Num(rule, set)) => set(h, a.num(p.name, 0.0, rule)),
            Some(Kind::Int(min, set)) => set(h, a.int(p.name, min, min)),
            Some(Kind::Bool(set)) => set(h, a.boolean(p.name, false)),
            Some(Kind::LineSearch(set)) => {
                if let Some(l) = line_search(a, p.name) {
                    set(h, l)
                }
            }
            Some(Kind::Pair(rule, set)) => set(h, a.pair(p.name, (h.beta1, h.beta2), rule)),
            None => {}
        }
    }
}

/// `line_search = "strong_wolfe"` (or the bare name); a located error otherwise.
fn line_search(a: &mut Args, name: &str) -> Option<LineSearch> {
    let arg = a.get(name)?;
    let text = match &arg.value.kind {
        ExprKind::Str(s) | ExprKind::Name(s) => Some(s.as_str()),
        _ => None,
    };
    if let Some(l) = text.and_then(LineSearch::from_name) {
        return Some(l);
    }
    let mut d = Diagnostic::error(
        arg.value.span,
        format!("{name} must be \"strong_wolfe\" or \"none\", found {}", describe(&arg.value)),
    )
    .label("no such line search");
    if let Some(s) = text.and_then(|t| did_you_mean(t, LineSearch::NAMES.iter().map(|n| n.0))) {
        d = d.note(s);
    }
    let note = "torch.optim.LBFGS: line_search_fn=\"strong_wolfe\", or None for a fixed step lr";
    a.errors.push(d.note(note));
    None
}

/// Fills in the defaults computed from other hyper-parameters (their registry text is not
/// a value) when not given in `a`: lbfgs's `max_eval = max_iter * 5 / 4`, as torch.
fn derive(h: &mut Hyper, a: &Args) {
    if a.get("max_eval").is_none() {
        h.max_eval = h.max_iter * 5 / 4;
    }
}

/// Rules between parameters, blamed on the named parameter where it was given in `a`, else
/// on `call`.
fn cross_check(method: Method, h: &Hyper, a: &mut Args, call: Span) {
    let at = |a: &Args, p: &str| a.get(p).map_or(call, |arg| arg.value.span);
    if method == Method::Sgd && h.nesterov && (h.momentum <= 0.0 || h.dampening != 0.0) {
        let span = at(a, "nesterov");
        a.errors.push(
            Diagnostic::error(span, "nesterov needs momentum > 0 and dampening = 0")
                .label(format!("momentum is {}, dampening {}", h.momentum, h.dampening))
                .note(
                    "as in torch.optim.SGD; e.g. `sgd(lr = 0.1, momentum = 0.9, nesterov = true)`",
                ),
        );
    }
    if method == Method::Padam && h.partial > 0.5 {
        let span = at(a, "partial");
        a.errors.push(
            Diagnostic::error(span, format!("partial must be in (0, 0.5], found {}", h.partial))
                .label("out of range")
                .note("partial = 0.5 is Adam (AMSGrad); smaller is closer to SGD with momentum"),
        );
    }
}

/// The signature `clamp` is bound against, for its messages.
static CLAMP: Builtin = Builtin {
    name: "clamp",
    params: &[Param { name: "clamp", default: None }],
    doc: "project every parameter onto [lo, hi] after the update",
};

/// `clamp`'s bounds if given; `Err(())` once its mistake is reported.
type Bounds = Result<Option<(f64, f64)>, ()>;

/// Splits `clamp = (lo, hi)` off `args`: the bounds, if given, and the other arguments. The
/// bounds are `Err(())` after a reported mistake (not a pair of finite numbers, `lo >= hi`,
/// given twice).
fn take_clamp(args: &[Arg], diags: &mut Vec<Diagnostic>) -> (Bounds, Vec<Arg>) {
    let (mine, rest): (Vec<&Arg>, Vec<&Arg>) =
        args.iter().partition(|a| a.name.as_ref().is_some_and(|n| n.name == "clamp"));
    let rest = rest.into_iter().cloned().collect();
    let Some(&first) = mine.first() else { return (Ok(None), rest) };
    if let Some(again) = mine.get(1) {
        diags.push(
            Diagnostic::error(again.span, "`clamp` given twice")
                .label("given again here")
                .secondary(first.span, "first given here"),
        );
        return (Err(()), rest);
    }
    let Some(mut a) = Args::bind(&CLAMP, std::slice::from_ref(first), first.span, diags) else {
        return (Err(()), rest);
    };
    let (lo, hi) = a.pair("clamp", (0.0, 0.0), Rule::Finite);
    if a.errors.is_empty() && lo >= hi {
        a.errors.push(
            Diagnostic::error(first.value.span, format!("clamp needs lo < hi, found ({lo}, {hi})"))
                .label("an empty box")
                .note("`clamp = (lo, hi)` projects every parameter element onto [lo, hi] after the update"),
        );
    }
    (done(a, (lo, hi), diags).map(Some).ok_or(()), rest)
}

/// The `optimizer` item with its `{ group ... }` list. Groups are checked even when the
/// optimizer's own arguments have mistakes, so that all of them are reported.
pub(crate) fn optimizer(
    e: &Expr,
    groups: &[Group],
    diags: &mut Vec<Diagnostic>,
) -> Option<Optimizer> {
    let (name, span, args) = spec(e, "an optimizer", "optimizer sgd(lr = 0.1)", diags)?;
    let b = lookup(OPTIMIZERS, "optimizer", name, span, diags)?;
    let method = method(name)?;
    // lbfgs's groups are an error by themselves: not checked further.
    let host_ok = method != Method::Lbfgs || host_driven_ok(args, groups, diags);
    let groups = if method == Method::Lbfgs { &[][..] } else { groups };
    let (clamp, args) = take_clamp(args, diags);
    let mut a = Args::bind(b, &args, e.span, diags)?;
    let mut hyper = defaults(b);
    read(b, &mut a, &mut hyper);
    derive(&mut hyper, &a);
    hyper.clamp = clamp.unwrap_or(None);
    cross_check(method, &hyper, &mut a, e.span);
    let base_ok = a.errors.is_empty();
    let groups: Vec<Option<ParamGroup>> =
        groups.iter().map(|g| group(b, method, &hyper, base_ok, g, diags)).collect();
    let hyper = done(a, hyper, diags)?;
    let groups = groups.into_iter().collect::<Option<Vec<_>>>()?;
    clamp.ok()?;
    host_ok.then_some(())?;
    Some(Optimizer { method, hyper, groups })
}

/// The optimizer of a model checked without one ([`super::Purpose::Evaluate`]): plain SGD
/// with its defaults and learning rate 0, never run.
pub(crate) fn stand_in() -> Optimizer {
    let b = OPTIMIZERS.iter().find(|b| b.name == "sgd").expect("sgd is built in");
    let mut hyper = defaults(b);
    hyper.lr = 0.0;
    Optimizer { method: Method::Sgd, hyper, groups: Vec::new() }
}

/// lbfgs takes no parameter groups and no `clamp`: reports each (false if any).
fn host_driven_ok(args: &[Arg], groups: &[Group], diags: &mut Vec<Diagnostic>) -> bool {
    let before = diags.len();
    if let Some(g) = groups.first() {
        diags.push(
            Diagnostic::error(g.span, "lbfgs takes no parameter groups")
                .label("a parameter group")
                .note("L-BFGS keeps one curvature history over all the parameters; torch.optim.LBFGS also refuses per-parameter options"),
        );
    }
    for arg in args.iter().filter(|a| a.name.as_ref().is_some_and(|n| n.name == "clamp")) {
        diags.push(
            Diagnostic::error(arg.span, "lbfgs takes no `clamp`")
                .label("a projection after the update")
                .note(
                    "the line search and the curvature pairs assume the step is taken as computed",
                ),
        );
    }
    diags.len() == before
}

/// The host-driven optimizer (lbfgs) with a global `clip`: an error at the clip. Its line
/// search compares losses with the gradient's prediction, so the gradient must be the
/// loss's own.
pub(crate) fn host_driven_conflicts(
    opt: &Optimizer,
    opt_expr: &Expr,
    clip: Option<&Expr>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(c) = clip else { return };
    if opt.method == Method::Lbfgs {
        diags.push(
            Diagnostic::error(c.span, "lbfgs cannot clip gradients")
                .label("gradient clipping")
                .secondary(opt_expr.span, "L-BFGS chosen here")
                .note("the line search needs the loss's own gradient: remove the `clip` item"),
        );
    }
}

/// One `group "pattern", ... (name = value, ..., clip = rule)`.
fn group(
    b: &'static Builtin,
    method: Method,
    base: &Hyper,
    base_ok: bool,
    g: &Group,
    diags: &mut Vec<Diagnostic>,
) -> Option<ParamGroup> {
    let before = diags.len();
    let mut group_clip: Option<(Clip, Span)> = None;
    let mut rest: Vec<Arg> = Vec::new();
    let (clamp, args) = take_clamp(&g.args, diags);
    for arg in &args {
        if arg.name.as_ref().is_some_and(|n| n.name == "clip") {
            if let Some((_, first)) = group_clip {
                diags.push(
                    Diagnostic::error(arg.span, "`clip` given twice")
                        .label("given again here")
                        .secondary(first, "first given here"),
                );
            } else if let Some(c) = clip(&arg.value, diags) {
                group_clip = Some((c, arg.span));
            }
        } else {
            rest.push(arg.clone());
        }
    }
    let mut a = Args::bind_overrides(b, &rest, g.span, diags)?;
    let mut hyper = base.clone();
    read(b, &mut a, &mut hyper);
    if let Ok(Some(bounds)) = clamp {
        hyper.clamp = Some(bounds);
    }
    if base_ok {
        cross_check(method, &hyper, &mut a, g.span);
    }
    let hyper = done(a, hyper, diags)?;
    (diags.len() == before).then(|| ParamGroup {
        patterns: g.patterns.iter().map(|p| p.text.clone()).collect(),
        hyper,
        clip: group_clip.map(|(c, _)| c),
        params: Vec::new(),
        span: g.span,
    })
}

/// `*` matches any run of characters (dots included); every other character itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // matched[j]: the pattern so far matches the first j characters of the name.
    let mut matched = vec![false; n.len() + 1];
    matched[0] = true;
    for &c in &p {
        if c == '*' {
            for j in 1..=n.len() {
                matched[j] = matched[j] || matched[j - 1];
            }
        } else {
            for j in (1..=n.len()).rev() {
                matched[j] = matched[j - 1] && n[j - 1] == c;
            }
            matched[0] = false;
        }
    }
    matched[n.len()]
}

/// Gives every group its parameters (first matching group wins). `decls` are the groups as
/// written, in the same order as `opt.groups`.
pub(crate) fn resolve_groups(
    opt: &mut Optimizer,
    decls: &[Group],
    params: &[ParamDef],
    diags: &mut Vec<Diagnostic>,
) {
    let mut owner: Vec<Option<usize>> = vec![None; params.len()];
    for (k, decl) in decls.iter().enumerate() {
        let mut matched_any = false;
        for p in &decl.patterns {
            let hits: Vec<usize> =
                (0..params.len()).filter(|&i| glob(&p.text, &params[i].name)).collect();
            if hits.is_empty() {
                diags.push(no_match(&p.text, p.span, params));
            }
            matched_any |= !hits.is_empty();
            for i in hits {
                owner[i].get_or_insert(k);
            }
        }
        let mine: Vec<u32> =
            (0..params.len()).filter(|&i| owner[i] == Some(k)).map(|i| i as u32).collect();
        if matched_any && mine.is_empty() {
            let earlier = (0..params.len())
                .find(|&i| decl.patterns.iter().any(|p| glob(&p.text, &params[i].name)))
                .and_then(|i| owner[i])
                .map_or(decl.span, |j| decls[j].span);
            diags.push(
                Diagnostic::error(decl.span, "this group gets no parameters")
                    .label("every parameter it matches belongs to an earlier group")
                    .secondary(earlier, "the first matching group wins")
                    .note("reorder the groups or make the earlier patterns narrower"),
            );
        }
        if let Some(g) = opt.groups.get_mut(k) {
            g.params = mine;
        }
    }
}

fn no_match(pattern: &str, span: Span, params: &[ParamDef]) -> Diagnostic {
    let names = params.iter().map(|p| p.name.as_str());
    let mut d = Diagnostic::error(span, format!("no parameter matches \"{pattern}\""))
        .label("matches no parameter")
        .note("patterns match whole names; `*` matches any characters, e.g. \"*.bias\"");
    if let Some(s) = did_you_mean(pattern, names.clone()) {
        d = d.note(s);
    }
    let shown: Vec<&str> = names.take(8).collect();
    let more = if params.len() > 8 { ", ..." } else { "" };
    d.note(format!("parameters: {}{more}", shown.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Registry defaults that are formulas, filled in by [`derive`].
    const DERIVED: &[&str] = &["max_eval"];

    #[test]
    fn glob_matches_whole_names() {
        assert!(glob("*.bias", "fc1.bias"));
        assert!(glob("*.bias", "blocks.0.fc1.bias"));
        assert!(!glob("*.bias", "fc1.bias_g"));
        assert!(glob("norm*", "norm1.weight"));
        assert!(!glob("norm*", "fc.norm.weight"));
        assert!(glob("*norm*", "blocks.2.norm.weight"));
        assert!(glob("fc1.weight", "fc1.weight"));
        assert!(!glob("fc1", "fc1.weight"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc") && !glob("a*b*c", "aXcYb"));
    }

    #[test]
    fn every_registry_hyper_parameter_has_a_kind_and_a_parsable_default() {
        for b in OPTIMIZERS {
            assert!(method(b.name).is_some(), "{} has no method", b.name);
            for p in b.params {
                assert!(kind(p.name).is_some(), "{}: {} has no kind", b.name, p.name);
                if DERIVED.contains(&p.name) {
                    continue;
                }
                if let (Some(d), Some(k)) = (p.default, kind(p.name)) {
                    let parsed = set_default(&mut Hyper::default(), k, d).is_some();
                    assert!(parsed, "{}: default {d} does not parse", b.name);
                }
            }
        }
    }

    #[test]
    fn defaults_come_from_the_registry_text() {
        let adamw = defaults(super::super::registry::find(OPTIMIZERS, "adamw").unwrap());
        assert_eq!((adamw.lr, adamw.beta1, adamw.beta2), (1e-3, 0.9, 0.999));
        assert_eq!((adamw.eps, adamw.weight_decay, adamw.amsgrad), (1e-8, 0.01, false));
        let ams = defaults(super::super::registry::find(OPTIMIZERS, "amsgrad").unwrap());
        assert!(ams.amsgrad);
        let nadam = defaults(super::super::registry::find(OPTIMIZERS, "nadam").unwrap());
        assert_eq!((nadam.lr, nadam.momentum_decay), (2e-3, 4e-3));
        let lbfgs = defaults(super::super::registry::find(OPTIMIZERS, "lbfgs").unwrap());
        assert_eq!((lbfgs.lr, lbfgs.max_iter, lbfgs.history_size), (1.0, 20, 10));
        assert_eq!((lbfgs.tolerance_grad, lbfgs.tolerance_change), (1e-7, 1e-9));
        assert_eq!(lbfgs.line_search, LineSearch::StrongWolfe);
    }
}

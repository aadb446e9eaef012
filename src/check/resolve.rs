//! Name resolution: every name used in the model and in every layer (used or not) refers to
//! something in scope, of the right kind, defined before use; no name is defined twice.
//!
//! Scopes: the model's statements define names in order (`input`, `label`, `param`, layer
//! instances, bindings); a binding is visible from the next statement on. A layer's
//! constructor parameters, sub-layers and `param`s are visible everywhere in the layer; its
//! `forward` adds its arguments and then its bindings in order. Calls resolve to a layer
//! instance in scope first, then to a builtin function. This pass knows no shapes or
//! values; `elaborate` relies on it having succeeded.

use super::registry;
use super::suggest::did_you_mean;
use super::Items;
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{
    Arg, DimExpr, Expr, ExprKind, Ident, LayerDecl, ModelDecl, Stmt, TypeExpr,
};
use std::collections::HashMap;

/// What a right-hand side `name = ...` builds: a layer instance or a value.
pub(crate) enum Ctor<'e> {
    /// `Dense(...)` or `Residual(...)`: the constructor name and its arguments.
    Layer { callee: &'e Ident, args: &'e [Arg] },
    /// `repeat N L(...)`
    Repeat { count: &'e Expr, layer: &'e Expr },
}

/// The constructor an expression is, if it builds a layer (`Dense(..)`, a user layer's
/// name called, or `repeat`); `None` for value expressions.
pub(crate) fn constructor<'e>(items: &Items, e: &'e Expr) -> Option<Ctor<'e>> {
    match &e.kind {
        ExprKind::Call { callee, args } if is_layer_type(items, &callee.name) => {
            Some(Ctor::Layer { callee, args })
        }
        ExprKind::Repeat { count, layer } => Some(Ctor::Repeat { count, layer }),
        _ => None,
    }
}

/// True for `Dense` and user-defined layer names.
pub(crate) fn is_layer_type(items: &Items, name: &str) -> bool {
    registry::find(registry::LAYERS, name).is_some() || items.layer(name).is_some()
}

/// The `forward` of a layer (the first one, if several were written).
pub(crate) fn forward_of(l: &LayerDecl) -> Option<(&[Ident], &[Stmt], &Expr, Span)> {
    l.body.iter().find_map(|s| match s {
        Stmt::Forward { args, body, result, span } => Some((&args[..], &body[..], result, *span)),
        _ => None,
    })
}

/// Reports every name-resolution mistake in the model and all layers.
pub(crate) fn resolve(items: &Items, diags: &mut Vec<Diagnostic>) {
    let mut r = Resolver { items, diags, model_names: Vec::new() };
    if let Some(m) = items.model {
        r.model_names = m.body.iter().filter_map(defined_name).map(|n| n.name.clone()).collect();
    }
    for l in &items.layers {
        r.layer(l);
    }
    if let Some(m) = items.model {
        r.model(m);
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// A tensor: input, label, param, binding, forward argument.
    Value,
    /// A layer instance.
    Layer,
    /// A layer constructor parameter (an integer).
    Int,
}

#[derive(Clone, Default)]
struct Scope {
    defs: HashMap<String, (Kind, Span)>,
    /// Names this scope defines further down, for "used before it is defined".
    later: HashMap<String, Span>,
    /// The batch symbols of the model's inputs (model scope only).
    batch: Vec<String>,
    /// In a layer: the names the model defines, which the layer cannot see.
    model_names: Vec<String>,
}

impl Scope {
    fn names_of(&self, kinds: &[Kind]) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .defs
            .iter()
            .filter(|(_, d)| kinds.contains(&d.0))
            .map(|(n, _)| n.as_str())
            .collect();
        v.sort_unstable();
        v
    }
}

struct Resolver<'a, 'd> {
    items: &'a Items<'a>,
    diags: &'d mut Vec<Diagnostic>,
    /// Names the model defines (for a hint when a layer uses one).
    model_names: Vec<String>,
}

impl Resolver<'_, '_> {
    fn define(&mut self, scope: &mut Scope, name: &Ident, kind: Kind) {
        if let Some((_, first)) = scope.defs.get(&name.name) {
            self.diags.push(
                Diagnostic::error(name.span, format!("`{}` is defined twice", name.name))
                    .label("defined again here")
                    .secondary(*first, "first defined here"),
            );
        }
        // The later definition wins, so that its uses are not reported a second time.
        scope.defs.insert(name.name.clone(), (kind, name.span));
    }

    fn model(&mut self, m: &ModelDecl) {
        let mut scope = Scope::default();
        for s in &m.body {
            if let Some(name) = defined_name(s) {
                scope.later.entry(name.name.clone()).or_insert(name.span);
            }
            if let Stmt::Input { ty, .. } | Stmt::Label { ty, .. } = s {
                if let Some(DimExpr::Name(b)) = type_dims(ty).first() {
                    scope.batch.push(b.name.clone());
                }
            }
        }
        for s in &m.body {
            match s {
                Stmt::Input { name, .. } | Stmt::Label { name, .. } => {
                    self.define(&mut scope, name, Kind::Value)
                }
                Stmt::Param { name, shape, .. } => {
                    self.dims(&scope, shape);
                    self.define(&mut scope, name, Kind::Value);
                }
                Stmt::Let { name, value, .. } => self.binding(&mut scope, name, value),
                Stmt::Metric { value, .. } => self.expr(&scope, value),
                Stmt::Forward { span, .. } => self.diags.push(
                    Diagnostic::error(*span, "`forward` is only allowed inside a `layer`")
                        .label("the model's computation is written as bindings")
                        .note("write `h = ...` bindings and `loss = ...` directly in the model"),
                ),
            }
        }
        match scope.defs.get("loss") {
            None => self.diags.push(
                Diagnostic::error(m.name.span, format!("model `{}` has no `loss`", m.name.name))
                    .label("this model defines no `loss = ...`")
                    .note("the value to minimize is written `loss = ...`, e.g. `loss = cross_entropy(logits, y)`"),
            ),
            Some((Kind::Layer, span)) => self.diags.push(
                Diagnostic::error(*span, "`loss` must be a value, not a layer")
                    .label("this is a layer")
                    .note("`loss = ...` is the scalar to minimize, e.g. `loss = mse(pred, t)`"),
            ),
            _ => {}
        }
    }

    /// `name = value` in a model or a `forward`: a layer instance or a value.
    fn binding(&mut self, scope: &mut Scope, name: &Ident, value: &Expr) {
        let kind = match constructor(self.items, value) {
            Some(ctor) => {
                self.ctor(scope, ctor);
                Kind::Layer
            }
            None => {
                if let ExprKind::Call { callee, args } = &value.kind {
                    if self.unknown_layer(scope, callee) {
                        // Its keyword arguments (initializers, flags) mean nothing without
                        // the layer: only the positional ones are values of this scope.
                        let positional: Vec<Arg> =
                            args.iter().filter(|a| a.name.is_none()).cloned().collect();
                        self.call_args(scope, &positional);
                        self.define(scope, name, Kind::Layer);
                        return;
                    }
                }
                self.expr(scope, value);
                Kind::Value
            }
        };
        self.define(scope, name, kind);
    }

    /// `Dens(...)` on a right-hand side: an unknown capitalized callee is reported as an
    /// unknown layer. True if it was.
    fn unknown_layer(&mut self, scope: &Scope, callee: &Ident) -> bool {
        let name = &callee.name;
        let capital = name.chars().next().is_some_and(|c| c.is_uppercase());
        if !capital || scope.defs.contains_key(name) || registry::function(name).is_some() {
            return false;
        }
        let mut d = Diagnostic::error(callee.span, format!("unknown layer `{name}`"))
            .label("no layer with this name");
        if let Some(s) = did_you_mean(name, self.items.layer_names()) {
            d = d.note(s);
        }
        self.diags.push(d);
        true
    }

    fn ctor(&mut self, scope: &Scope, ctor: Ctor) {
        match ctor {
            Ctor::Layer { callee, args } => {
                let builtin = registry::find(registry::LAYERS, &callee.name).is_some();
                for a in args {
                    match (&a.name, &a.value.kind) {
                        // Built-in layers' keyword arguments are initializers, numbers and
                        // flags, read later.
                        (Some(_), _) if builtin => {}
                        (_, ExprKind::Arrow { from, to }) => {
                            self.int_expr(scope, from);
                            self.int_expr(scope, to);
                        }
                        _ => self.int_expr(scope, &a.value),
                    }
                }
            }
            Ctor::Repeat { count, layer } => {
                self.int_expr(scope, count);
                match constructor(self.items, layer) {
                    Some(inner) => self.ctor(scope, inner),
                    None => {
                        let mut d = Diagnostic::error(layer.span, "`repeat` needs a layer to copy")
                            .label("this does not build a layer")
                            .note("write e.g. `blocks = repeat 4 Residual(64)`");
                        if let ExprKind::Call { callee, .. } = &layer.kind {
                            if let Some(s) = did_you_mean(&callee.name, self.items.layer_names()) {
                                d = d.note(s);
                            }
                        }
                        self.diags.push(d);
                    }
                }
            }
        }
    }

    /// Names in a size expression must be constructor parameters.
    fn int_expr(&mut self, scope: &Scope, e: &Expr) {
        match &e.kind {
            ExprKind::Name(n) => match scope.defs.get(n) {
                Some((Kind::Int, _)) => {}
                Some((kind, def)) => {
                    let what = if *kind == Kind::Layer { "a layer" } else { "a tensor" };
                    self.diags.push(
                        Diagnostic::error(e.span, format!("`{n}` is {what}, not an integer"))
                            .label("sizes must be integers")
                            .secondary(*def, format!("`{n}` is defined here")),
                    );
                }
                None => self.undefined(scope, n, e.span, &[Kind::Int]),
            },
            ExprKind::Neg(x) => self.int_expr(scope, x),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.int_expr(scope, lhs);
                self.int_expr(scope, rhs);
            }
            _ => {}
        }
    }

    fn dims(&mut self, scope: &Scope, dims: &[DimExpr]) {
        for d in dims {
            let DimExpr::Name(n) = d else { continue };
            if scope.defs.get(&n.name).is_some_and(|d| d.0 == Kind::Int) {
                continue;
            }
            if scope.batch.contains(&n.name) {
                self.diags.push(
                    Diagnostic::error(n.span, "a parameter's shape cannot contain the batch size")
                        .label(format!("`{}` is the batch dimension", n.name))
                        .note("parameters have fixed sizes, e.g. `param w: [64, 10]`"),
                );
            } else {
                self.undefined(scope, &n.name, n.span, &[Kind::Int]);
            }
        }
    }

    fn call_args(&mut self, scope: &Scope, args: &[Arg]) {
        for a in args {
            self.expr(scope, &a.value);
        }
    }

    /// A value expression.
    fn expr(&mut self, scope: &Scope, e: &Expr) {
        match &e.kind {
            ExprKind::Name(n) => self.value_name(scope, n, e.span),
            ExprKind::Field { base, .. } => self.layer_ref(scope, base),
            ExprKind::Call { callee, args } => {
                self.callee(scope, callee);
                if registry::is_penalty(&callee.name) && !scope.defs.contains_key(&callee.name) {
                    // Penalties take layers too: `l2_penalty(fc1, lambda = 1e-4)`.
                    let layer = |a: &&Arg| match &a.value.kind {
                        ExprKind::Name(n) => scope.defs.get(n).is_some_and(|d| d.0 == Kind::Layer),
                        _ => false,
                    };
                    args.iter().filter(|a| !layer(a)).for_each(|a| self.expr(scope, &a.value));
                } else {
                    self.call_args(scope, args);
                }
            }
            ExprKind::Neg(x) => self.expr(scope, x),
            ExprKind::Binary { lhs, rhs, .. } | ExprKind::Arrow { from: lhs, to: rhs } => {
                self.expr(scope, lhs);
                self.expr(scope, rhs);
            }
            ExprKind::Tuple(xs) | ExprKind::List(xs) => xs.iter().for_each(|x| self.expr(scope, x)),
            ExprKind::Repeat { .. } => self.diags.push(
                Diagnostic::error(e.span, "`repeat` builds a layer; it cannot be used as a value")
                    .label(
                        "name it first: `blocks = repeat 4 Residual(64)`, then call `blocks(h)`",
                    ),
            ),
            ExprKind::Number { .. } | ExprKind::Str(_) | ExprKind::Bool(_) => {}
        }
    }

    fn value_name(&mut self, scope: &Scope, n: &str, span: Span) {
        match scope.defs.get(n) {
            Some((Kind::Value | Kind::Int, _)) => {}
            Some((Kind::Layer, def)) => self.diags.push(
                Diagnostic::error(span, format!("`{n}` is a layer, not a value"))
                    .label(format!("call it on a tensor: `{n}(...)`"))
                    .secondary(*def, format!("`{n}` is defined here")),
            ),
            None if registry::function(n).is_some() => self.diags.push(
                Diagnostic::error(span, format!("`{n}` is a function, not a value"))
                    .label(format!("call it: `{n}(...)`")),
            ),
            None if is_layer_type(self.items, n) => self.diags.push(
                Diagnostic::error(span, format!("`{n}` is a layer type, not a value"))
                    .label(format!("create an instance first: `l = {n}(...)`, then call `l(x)`")),
            ),
            None => self.undefined(scope, n, span, &[Kind::Value, Kind::Int]),
        }
    }

    /// The base of `base.field` must be a layer instance (or a field that is one).
    fn layer_ref(&mut self, scope: &Scope, base: &Expr) {
        match &base.kind {
            ExprKind::Name(n) => match scope.defs.get(n) {
                Some((Kind::Layer, _)) => {}
                Some((_, def)) => self.diags.push(
                    Diagnostic::error(
                        base.span,
                        format!("`{n}` is not a layer, so it has no fields"),
                    )
                    .label("only layers have fields, like `fc1.weight`")
                    .secondary(*def, format!("`{n}` is defined here")),
                ),
                None => self.undefined(scope, n, base.span, &[Kind::Layer]),
            },
            ExprKind::Field { base, .. } => self.layer_ref(scope, base),
            _ => self.diags.push(
                Diagnostic::error(base.span, "only layers have fields")
                    .label("this is not a layer name")
                    .note("fields name a layer's parameters, like `fc1.weight`"),
            ),
        }
    }

    fn callee(&mut self, scope: &Scope, callee: &Ident) {
        let n = &callee.name;
        match scope.defs.get(n) {
            Some((Kind::Layer, _)) => return,
            Some((_, def)) => {
                self.diags.push(
                    Diagnostic::error(callee.span, format!("`{n}` is not a function or a layer"))
                        .label("called here")
                        .secondary(*def, format!("`{n}` is a value defined here")),
                );
                return;
            }
            None => {}
        }
        if registry::function(n).is_some() {
            return;
        }
        if is_layer_type(self.items, n) {
            self.diags.push(
                Diagnostic::error(callee.span, format!("`{n}(...)` creates a layer, not a value"))
                    .label("a layer must be named before it is called")
                    .note(format!("write `l = {n}(...)` on its own line, then call `l(x)`")),
            );
            return;
        }
        if let Some(def) = scope.later.get(n) {
            self.diags.push(before_definition(n, callee.span, *def));
            return;
        }
        let capital = n.chars().next().is_some_and(|c| c.is_uppercase());
        let (msg, label) = if capital {
            (format!("unknown layer `{n}`"), "no layer with this name")
        } else {
            (format!("unknown function `{n}`"), "no function or layer with this name")
        };
        let mut d = Diagnostic::error(callee.span, msg).label(label);
        let layers = scope.names_of(&[Kind::Layer]);
        let mut candidates: Vec<&str> = Vec::new();
        if capital {
            candidates.extend(self.items.layer_names());
        }
        candidates.extend(layers);
        if !capital {
            candidates.extend(registry::function_names().map(|s| -> &str { s }));
        }
        let suggestion = did_you_mean(n, candidates);
        if let Some(s) = suggestion {
            d = d.note(s);
        }
        self.diags.push(d);
    }

    /// `n` is not in scope: used before its definition, or not defined at all.
    fn undefined(&mut self, scope: &Scope, n: &str, span: Span, kinds: &[Kind]) {
        if let Some(def) = scope.later.get(n) {
            self.diags.push(before_definition(n, span, *def));
            return;
        }
        let mut d = Diagnostic::error(span, format!("`{n}` is not defined")).label("not found");
        if scope.model_names.iter().any(|m| m == n) {
            self.diags.push(d.note(format!(
                "`{n}` belongs to the model; a layer sees only its constructor parameters, \
                 sub-layers, `param`s and `forward` arguments"
            )));
            return;
        }
        let mut candidates = scope.names_of(kinds);
        candidates.extend(scope.names_of(&[Kind::Value, Kind::Layer, Kind::Int]));
        if kinds.contains(&Kind::Value) {
            candidates.extend(registry::function_names().map(|s| -> &str { s }));
        }
        if let Some(s) = did_you_mean(n, candidates) {
            d = d.note(s);
        } else if kinds == [Kind::Int] {
            d = d.note("sizes are integers or the enclosing layer's constructor parameters");
        }
        self.diags.push(d);
    }

    fn layer(&mut self, l: &LayerDecl) {
        let mut scope = Scope { model_names: self.model_names.clone(), ..Scope::default() };
        for p in &l.params {
            self.define(&mut scope, p, Kind::Int);
        }
        let mut forward: Option<Span> = None;
        for s in &l.body {
            match s {
                Stmt::Let { name, value, .. } => self.layer_member(&mut scope, name, value),
                Stmt::Param { name, shape, .. } => {
                    self.dims(&scope, shape);
                    self.define(&mut scope, name, Kind::Value);
                }
                Stmt::Forward { span, .. } => match forward {
                    Some(first) => self.diags.push(
                        Diagnostic::error(
                            *span,
                            format!("layer `{}` has two `forward`s", l.name.name),
                        )
                        .label("second `forward`")
                        .secondary(first, "first `forward`"),
                    ),
                    None => forward = Some(*span),
                },
                Stmt::Input { span, .. } | Stmt::Label { span, .. } | Stmt::Metric { span, .. } => {
                    self.diags.push(model_only(s, *span))
                }
            }
        }
        match forward_of(l) {
            Some((args, body, result, _)) => self.forward(&scope, args, body, result),
            None => self.diags.push(
                Diagnostic::error(l.name.span, format!("layer `{}` has no `forward`", l.name.name))
                    .label("this layer does not say what it computes")
                    .note("add e.g. `forward(x) = fc1(x)`"),
            ),
        }
    }

    /// `name = ...` in a layer body (outside `forward`): must be a sub-layer.
    fn layer_member(&mut self, scope: &mut Scope, name: &Ident, value: &Expr) {
        if let Some(ctor) = constructor(self.items, value) {
            self.ctor(scope, ctor);
            self.define(scope, name, Kind::Layer);
            return;
        }
        if let ExprKind::Call { callee, .. } = &value.kind {
            if self.unknown_layer(scope, callee) {
                self.define(scope, name, Kind::Layer);
                return;
            }
        }
        self.diags.push(
            Diagnostic::error(value.span, format!("`{}` is not a layer", name.name))
                .label("only sub-layers, `param`s and `forward` go in a layer body")
                .note("compute values inside `forward(...)`"),
        );
        self.define(scope, name, Kind::Value);
    }

    fn forward(&mut self, layer: &Scope, args: &[Ident], body: &[Stmt], result: &Expr) {
        let mut scope = layer.clone();
        for a in args {
            self.define(&mut scope, a, Kind::Value);
        }
        for s in body {
            if let Some(name) = defined_name(s) {
                scope.later.entry(name.name.clone()).or_insert(name.span);
            }
        }
        for s in body {
            match s {
                Stmt::Let { name, value, .. } => {
                    if constructor(self.items, value).is_some() {
                        self.diags.push(
                            Diagnostic::error(
                                value.span,
                                "layers cannot be created inside `forward`",
                            )
                            .label("this builds a layer")
                            .note(
                                "declare it in the layer body, next to `forward`, and call it here",
                            ),
                        );
                        self.define(&mut scope, name, Kind::Layer);
                    } else {
                        self.expr(&scope, value);
                        self.define(&mut scope, name, Kind::Value);
                    }
                }
                other => {
                    let span = stmt_span(other);
                    self.diags.push(
                        Diagnostic::error(
                            span,
                            "only bindings `name = ...` may appear in `forward`",
                        )
                        .label("not allowed here"),
                    );
                }
            }
        }
        self.expr(&scope, result);
    }
}

fn before_definition(n: &str, span: Span, def: Span) -> Diagnostic {
    Diagnostic::error(span, format!("`{n}` is used before it is defined"))
        .label("used here")
        .secondary(def, "defined later here")
        .note("bindings are visible from the next line on; move the definition up")
}

fn model_only(s: &Stmt, span: Span) -> Diagnostic {
    let what = match s {
        Stmt::Input { .. } => "input",
        Stmt::Label { .. } => "label",
        _ => "metric",
    };
    Diagnostic::error(span, format!("`{what}` belongs in the `model`, not in a layer"))
        .label("not allowed in a layer")
        .note("a layer receives its tensors as `forward` arguments")
}

/// The name a statement defines, if any.
pub(crate) fn defined_name(s: &Stmt) -> Option<&Ident> {
    match s {
        Stmt::Input { name, .. }
        | Stmt::Label { name, .. }
        | Stmt::Param { name, .. }
        | Stmt::Let { name, .. } => Some(name),
        Stmt::Metric { .. } | Stmt::Forward { .. } => None,
    }
}

pub(crate) fn stmt_span(s: &Stmt) -> Span {
    match s {
        Stmt::Input { span, .. }
        | Stmt::Label { span, .. }
        | Stmt::Param { span, .. }
        | Stmt::Let { span, .. }
        | Stmt::Metric { span, .. }
        | Stmt::Forward { span, .. } => *span,
    }
}

pub(crate) fn type_dims(ty: &TypeExpr) -> &[DimExpr] {
    match ty {
        TypeExpr::Tensor { dims, .. } | TypeExpr::Class { dims, .. } => dims,
    }
}

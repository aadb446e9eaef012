//! Penalties on chosen parameters, written in the loss:
//!
//! ```text
//! loss = cross_entropy(z, y) + l2_penalty(fc1.weight, fc2.weight, lambda = 1e-4)
//! l2_penalty(θ₁, …, lambda = λ) = λ/2 · Σ_k Σ θ_k²
//! l1_penalty(θ₁, …, lambda = λ) = λ · Σ_k Σ |θ_k|
//! ```
//!
//! Each positional argument is a parameter (`fc1.weight`, a model `param`, a user layer's
//! `r.fc.bias`) or a layer (`fc1`, `blocks`, `r.fc`: every parameter it owns, sub-layers and
//! `repeat` copies included). The set of parameters is taken once each, in declaration order,
//! so naming a parameter twice (`fc1, fc1.weight`) does not count it twice. `lambda` is a
//! required keyword, a non-negative number.
//!
//! A penalty is sugar: it becomes `λ' · (sum(square(θ₁)) + …)` (or `abs`) in the value
//! arena, so lowering and autodiff need nothing new.

use std::collections::BTreeSet;

use super::args::{describe, number, Rule};
use super::elaborate::{Elab, Entry, Inst, InstId, Scope, Tv};
use super::model::{ArithOp, ReduceFn, UnaryFn, ValueKind};
use super::registry::Builtin;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::Shape;
use crate::syntax::ast::{Arg, Expr, ExprKind};

impl Elab<'_, '_> {
    /// `l2_penalty(...)` or `l1_penalty(...)` as a scalar value.
    pub(super) fn penalty(
        &mut self,
        scope: &Scope,
        b: &'static Builtin,
        args: &[Arg],
        span: Span,
    ) -> Option<Tv> {
        let usage = format!("usage: {}(fc1.weight, fc2, ..., lambda = 1e-4)", b.name);
        let mut lambda: Option<&Arg> = None;
        let mut params = BTreeSet::new();
        let mut ok = true;
        for a in args {
            match &a.name {
                Some(k) if k.name == "lambda" => match lambda {
                    Some(first) => {
                        ok = false;
                        self.report(
                            Diagnostic::error(a.span, "`lambda` given twice")
                                .label("given again here")
                                .secondary(first.span, "first given here"),
                        );
                    }
                    None => lambda = Some(a),
                },
                Some(k) => {
                    ok = false;
                    self.report(
                        Diagnostic::error(
                            k.span,
                            format!("{} has no parameter `{}`", b.name, k.name),
                        )
                        .label("unknown parameter")
                        .note(usage.clone()),
                    );
                }
                None => match self.penalty_target(scope, b.name, &a.value) {
                    Some(ps) => params.extend(ps),
                    None => ok = false,
                },
            }
        }
        let Some(lambda) = lambda else {
            self.report(
                Diagnostic::error(span, format!("missing required `lambda` for {}", b.name))
                    .label("`lambda` is not given")
                    .note(usage),
            );
            return None;
        };
        let value = match number(&lambda.value) {
            Some(n) if Rule::NonNegative.holds(n.value) => n.value,
            found => {
                let found = found.map_or_else(|| describe(&lambda.value), |n| n.show());
                self.report(
                    Diagnostic::error(
                        lambda.value.span,
                        format!("lambda must be a non-negative number, found {found}"),
                    )
                    .label("invalid penalty weight"),
                );
                return None;
            }
        };
        if !ok {
            return None;
        }
        if params.is_empty() {
            self.report(
                Diagnostic::error(
                    span,
                    format!("{} needs at least one parameter or layer", b.name),
                )
                .label("nothing to penalize")
                .note(usage),
            );
            return None;
        }
        let (f, scale) = match b.name {
            "l1_penalty" => (UnaryFn::Abs, value),
            _ => (UnaryFn::Square, value / 2.0),
        };
        Some(self.penalty_value(&params, f, scale, span))
    }

    /// `scale · Σ_i sum(f(θ_i))`.
    fn penalty_value(&mut self, params: &BTreeSet<u32>, f: UnaryFn, scale: f64, span: Span) -> Tv {
        let mut total = None;
        for &i in params {
            let p = self.param_value(i).id;
            let shape = self.shape(p).clone();
            let t = self.push(ValueKind::Unary(f, p), shape, span);
            let reduce = ValueKind::Reduce { op: ReduceFn::Sum, x: t, axis: None };
            let s = self.push(reduce, Shape::scalar(), span);
            total = Some(match total {
                None => s,
                Some(acc) => {
                    self.push(ValueKind::Arith(ArithOp::Add, acc, s), Shape::scalar(), span)
                }
            });
        }
        let k = self.push(ValueKind::Const(scale), Shape::scalar(), span);
        let sum = total.unwrap_or(k);
        let id = self.push(ValueKind::Arith(ArithOp::Mul, k, sum), Shape::scalar(), span);
        Tv { id, from: None }
    }

    /// The parameters one argument of a penalty names.
    fn penalty_target(&mut self, scope: &Scope, name: &str, e: &Expr) -> Option<Vec<u32>> {
        let entry = match &e.kind {
            ExprKind::Name(n) => scope.get(n).cloned(),
            ExprKind::Field { .. } => Some(self.field(scope, e)?),
            _ => None,
        };
        let param_value = |tv: &Tv| match self.value(tv.id).kind {
            ValueKind::Param(i) => Some(i),
            _ => None,
        };
        match entry {
            Some(Entry::Param(i)) => return Some(vec![i]),
            Some(Entry::Inst(id)) => return Some(self.inst_params(id)),
            Some(Entry::Value(tv)) if param_value(&tv).is_some() => {
                return param_value(&tv).map(|i| vec![i])
            }
            Some(Entry::Poison) => return None,
            _ => {}
        }
        let found = match (&e.kind, entry) {
            (ExprKind::Name(n), Some(Entry::Value(_))) => format!("`{n}` is a computed value"),
            _ => format!("found {}", describe(e)),
        };
        self.report(
            Diagnostic::error(e.span, format!("{name} takes parameters or layers, but {found}"))
                .label("not a parameter or a layer")
                .note(format!(
                    "penalties apply to parameters, e.g. `{name}(fc1.weight, fc2, lambda = 1e-4)`"
                )),
        );
        None
    }

    /// Every parameter layer instance `id` owns, sub-layers and copies included.
    fn inst_params(&self, id: InstId) -> Vec<u32> {
        match &self.insts[id] {
            Inst::Dense { weight, bias, g, .. } => {
                [Some(*weight), *bias, *g].into_iter().flatten().collect()
            }
            Inst::Norm { weight, bias, .. } => [*weight, *bias].into_iter().flatten().collect(),
            Inst::Embedding { weight, .. } => vec![*weight],
            Inst::Conv2d { weight, bias, .. } => {
                [Some(*weight), *bias].into_iter().flatten().collect()
            }
            Inst::Pool { .. } => vec![],
            Inst::User { scope, .. } => scope
                .values()
                .flat_map(|e| match e {
                    Entry::Param(i) => vec![*i],
                    Entry::Inst(j) => self.inst_params(*j),
                    _ => vec![],
                })
                .collect(),
            Inst::Repeat { copies, .. } => {
                copies.iter().flat_map(|&c| self.inst_params(c)).collect()
            }
        }
    }
}

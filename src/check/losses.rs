//! Targets of losses and metrics: `mse`, `logistic`, `bce_with_logits`, `hinge`, `huber` and
//! `l1` take a real-valued target of the prediction's shape; `cross_entropy` and `accuracy` take logits `[N, C]` and
//! class labels `class[N] of C`. Messages name the label and point at the offending
//! argument, with the label's declaration as the second place.

use super::elaborate::{Elab, Scope, Tv};
use super::exprs::Arg1;
use super::model::{LossKind, ValueKind};
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, Shape};
use crate::syntax::ast::Arg;

impl Elab<'_, '_> {
    pub(super) fn loss(
        &mut self,
        scope: &Scope,
        kind: LossKind,
        name: &str,
        pred: &Arg,
        target: &Arg,
        span: Span,
    ) -> Option<Tv> {
        let p = self.operand(scope, &pred.value);
        let t = self.expr(scope, &target.value).map(|t| (t, target.value.span));
        let (p, t) = (p?, t?);
        if matches!(kind, LossKind::CrossEntropy { .. }) {
            self.class_target(name, &p, &t)?;
        } else {
            self.real_target(name, &p, &t)?;
        }
        let v = ValueKind::Loss { kind, pred: p.0.id, target: t.0.id };
        Some(Tv { id: self.push(v, Shape::scalar(), span), from: None })
    }

    /// mse/logistic/bce_with_logits: a real-valued target of the prediction's shape.
    fn real_target(&mut self, name: &str, p: &Arg1, t: &Arg1) -> Option<()> {
        if let Some(i) = self.class_input(&t.0) {
            let input = &self.inputs[i as usize];
            let (yn, at) = (input.name.clone(), input.span);
            self.report(
                Diagnostic::error(
                    t.1,
                    format!("{name} needs a real-valued target, but `{yn}` holds class labels"),
                )
                .label("class labels")
                .secondary(at, format!("`{yn}` declared here"))
                .note(format!("for class labels use `cross_entropy(logits, {yn})`")),
            );
            return None;
        }
        let (sp, st) = (self.shape(p.0.id).clone(), self.shape(t.0.id).clone());
        if sp != st {
            let (a, b) = (self.show(&sp), self.show(&st));
            self.report(
                Diagnostic::error(t.1, format!("{name}: prediction {a} and target {b} differ"))
                    .label(format!("target {b}"))
                    .secondary(p.1, format!("prediction {a}"))
                    .note("the prediction and the target must have the same shape"),
            );
            return None;
        }
        Some(())
    }

    /// cross_entropy/accuracy: logits `[N, C]` and class labels `class[N] of C`.
    pub(super) fn class_target(&mut self, name: &str, p: &Arg1, t: &Arg1) -> Option<()> {
        // The same logits and labels checked twice (loss and metric): one report.
        if !self.class_pairs.insert((p.0.id, t.0.id)) {
            return self.class_ok.contains(&(p.0.id, t.0.id)).then_some(());
        }
        let ok = self.class_target_once(name, p, t);
        if ok.is_some() {
            self.class_ok.insert((p.0.id, t.0.id));
        }
        ok
    }

    fn class_target_once(&mut self, name: &str, p: &Arg1, t: &Arg1) -> Option<()> {
        let sp = self.shape(p.0.id).clone();
        let b = self.batch_name();
        if sp.rank() != 2 {
            let s = self.show(&sp);
            self.report(
                Diagnostic::error(p.1, format!("{name} expects logits [{b},C] but receives {s}"))
                    .label(format!("this is {s}"))
                    .note("one row of class scores per example"),
            );
            return None;
        }
        let c = match sp.0[1] {
            Dim::Fixed(c) => c.to_string(),
            Dim::Batch => "C".to_string(),
        };
        let Some(i) = self.class_input(&t.0) else {
            let st = self.show(self.shape(t.0.id));
            let mut d = match self.value(t.0.id).kind {
                ValueKind::Input(i) => {
                    let input = &self.inputs[i as usize];
                    Diagnostic::error(
                        t.1,
                        format!("{name} expects class labels `class[{b}] of {c}`, but `{}` is real-valued {st}", input.name),
                    )
                    .secondary(input.span, format!("`{}` declared here", input.name))
                }
                _ => Diagnostic::error(
                    t.1,
                    format!("{name} expects class labels `class[{b}] of {c}`, but its target is real-valued {st}"),
                ),
            };
            d = d.label("not class labels").note(format!(
                "declare the label as `class[{b}] of {c}`, or use mse or bce_with_logits for real-valued targets"
            ));
            self.report(d);
            return None;
        };
        let (yn, classes) = (self.inputs[i as usize].name.clone(), self.classes(i));
        if sp.0[1] != Dim::Fixed(classes) {
            let at = self.class_spans.get(&i).copied().unwrap_or(self.inputs[i as usize].span);
            self.report(
                Diagnostic::error(
                    p.1,
                    format!("{name}: logits have {c} classes but `{yn}` has {classes}"),
                )
                .label(format!("{c} classes"))
                .secondary(at, format!("{classes} classes")),
            );
            return None;
        }
        let st = self.shape(t.0.id).clone();
        if sp.0[0] != st.0[0] {
            let (a, l) = (self.show(&sp), self.show(&st));
            self.report(
                Diagnostic::error(
                    p.1,
                    format!("{name}: logits {a} and labels {l} have different batch sizes"),
                )
                .label(format!("this is {a}")),
            );
            return None;
        }
        Some(())
    }
}

//! Expressions into values: names, fields, arithmetic with broadcasting, `@`, builtin
//! functions, losses and metrics, and calls of layer instances (a Dense becomes one value,
//! a user layer's `forward` is inlined with that instance's parameters, a `repeat` applies
//! its copies in sequence).
//!
//! Every shape rule is checked where the value is built, and a violation is reported at
//! the most specific span (the offending argument), in the user's words: which layer or
//! input a tensor came from, shapes written with the user's batch name. Class labels are
//! indices, not numbers: they may only be the target of `cross_entropy` or `accuracy`.

use super::args::{describe, number, Args, Rule};
use super::elaborate::{Elab, Entry, Inst, InstId, Scope, Tv, MAX_NESTING, MAX_VALUES};
use super::model::{ArithOp, LossKind, ReduceFn, UnaryFn, ValueId, ValueKind};
use super::registry::{self, Builtin};
use super::resolve::forward_of;
use super::shapes::{self, DenseError, MatMulError};
use super::suggest::did_you_mean;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, InputKind, Shape};
use crate::syntax::ast::{Arg, BinOp, Expr, ExprKind, Ident, LayerDecl};

/// What each built-in function of the registry (`registry::FUNCTION_TABLES`) is: one
/// entry per name (a test checks both ways), dispatched by exhaustive matches, so that a
/// new kind of built-in cannot compile without its implementation.
const CALLS: &[(&str, Call)] = &[
    ("identity", Call::Tensor(TensorFn::Unary(UnaryFn::Identity))),
    ("relu", Call::Tensor(TensorFn::Unary(UnaryFn::Relu))),
    ("leaky_relu", Call::Tensor(TensorFn::LeakyRelu)),
    ("tanh", Call::Tensor(TensorFn::Unary(UnaryFn::Tanh))),
    ("sigmoid", Call::Tensor(TensorFn::Unary(UnaryFn::Sigmoid))),
    ("softplus", Call::Tensor(TensorFn::Unary(UnaryFn::Softplus))),
    ("gelu", Call::Tensor(TensorFn::Gelu)),
    ("elu", Call::Tensor(TensorFn::Elu)),
    ("silu", Call::Tensor(TensorFn::Unary(UnaryFn::Silu))),
    ("dropout", Call::Tensor(TensorFn::Dropout)),
    ("exp", Call::Tensor(TensorFn::Unary(UnaryFn::Exp))),
    ("log", Call::Tensor(TensorFn::Unary(UnaryFn::Log))),
    ("sqrt", Call::Tensor(TensorFn::Unary(UnaryFn::Sqrt))),
    ("abs", Call::Tensor(TensorFn::Unary(UnaryFn::Abs))),
    ("square", Call::Tensor(TensorFn::Unary(UnaryFn::Square))),
    ("softmax", Call::Tensor(TensorFn::Softmax)),
    ("log_softmax", Call::Tensor(TensorFn::LogSoftmax)),
    ("flatten", Call::Tensor(TensorFn::Flatten)),
    ("sum", Call::Tensor(TensorFn::Reduce(ReduceFn::Sum))),
    ("mean", Call::Tensor(TensorFn::Reduce(ReduceFn::Mean))),
    ("concat", Call::Concat),
    ("reshape", Call::Reshape),
    ("avg_pool2d", Call::AvgPool),
    ("global_avg_pool", Call::GlobalAvgPool),
    ("mse", Call::Loss(LossKind::Mse)),
    ("cross_entropy", Call::Loss(LossKind::CrossEntropy { label_smoothing: 0.0 })),
    ("logistic", Call::Loss(LossKind::Logistic)),
    ("bce_with_logits", Call::Loss(LossKind::BceWithLogits)),
    ("hinge", Call::Loss(LossKind::Hinge)),
    ("huber", Call::Loss(LossKind::Huber(1.0))),
    ("l1", Call::Loss(LossKind::L1)),
    ("l2_penalty", Call::Penalty),
    ("l1_penalty", Call::Penalty),
    ("accuracy", Call::Accuracy),
];

/// A built-in function, by how it is checked.
#[derive(Clone, Copy, Debug)]
enum Call {
    /// A function of one tensor.
    Tensor(TensorFn),
    Concat,
    Reshape,
    AvgPool,
    GlobalAvgPool,
    /// A loss with its default options (read from the call by [`loss_kind`]).
    Loss(LossKind),
    Penalty,
    Accuracy,
}

/// A built-in function of one tensor (its options read from the call).
#[derive(Clone, Copy, Debug)]
enum TensorFn {
    Unary(UnaryFn),
    /// `slope`.
    LeakyRelu,
    /// `alpha`.
    Elu,
    /// `approximate`.
    Gelu,
    /// `p`.
    Dropout,
    Softmax,
    LogSoftmax,
    /// `axis`.
    Reduce(ReduceFn),
    Flatten,
}

/// The loss `kind` with the options given in the call: cross_entropy's
/// `label_smoothing` in [0, 1], huber's `delta > 0`.
fn loss_kind(kind: LossKind, a: &mut Args) -> LossKind {
    match kind {
        LossKind::CrossEntropy { .. } => {
            LossKind::CrossEntropy { label_smoothing: a.num("label_smoothing", 0.0, Rule::Unit) }
        }
        LossKind::Huber(_) => LossKind::Huber(a.num("delta", 1.0, Rule::Positive)),
        k => k,
    }
}

/// A tensor argument and its span.
pub(super) type Arg1 = (Tv, Span);

impl<'a> Elab<'a, '_> {
    /// The value of expression `e`; `None` after reporting why it has none.
    pub fn expr(&mut self, scope: &Scope, e: &Expr) -> Option<Tv> {
        if self.depth >= MAX_NESTING {
            self.limit(
                e.span,
                &format!(
                    "expressions nest more than {MAX_NESTING} levels deep once layers are inlined"
                ),
            );
            return None;
        }
        self.depth += 1;
        let r = self.expr_at(scope, e);
        self.depth -= 1;
        r
    }

    fn expr_at(&mut self, scope: &Scope, e: &Expr) -> Option<Tv> {
        match &e.kind {
            ExprKind::Number { value, .. } => Some(self.constant(*value, e.span)),
            ExprKind::Name(n) => self.name(scope, n, e.span),
            ExprKind::Field { .. } => match self.field(scope, e)? {
                Entry::Param(i) => Some(self.param_value(i)),
                _ => {
                    self.report(
                        Diagnostic::error(e.span, "this is a layer, not a tensor")
                            .label("name one of its parameters, like `.weight`"),
                    );
                    None
                }
            },
            ExprKind::Call { callee, args } => self.call(scope, callee, args, e.span),
            ExprKind::Neg(x) if number(x).is_some() => {
                Some(self.constant(-number(x).map_or(0.0, |n| n.value), e.span))
            }
            ExprKind::Neg(x) => {
                let x = self.operand(scope, x)?;
                let shape = self.shape(x.0.id).clone();
                let id = self.push(ValueKind::Unary(UnaryFn::Neg, x.0.id), shape, e.span);
                Some(Tv { id, from: x.0.from })
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(scope, *op, lhs, rhs, e.span),
            _ => {
                self.report(
                    Diagnostic::error(e.span, format!("expected a tensor, found {}", describe(e)))
                        .label("not a tensor"),
                );
                None
            }
        }
    }

    fn constant(&mut self, v: f64, span: Span) -> Tv {
        Tv { id: self.push(ValueKind::Const(v), Shape::scalar(), span), from: None }
    }

    /// A tensor operand: any value except class labels.
    pub(super) fn operand(&mut self, scope: &Scope, e: &Expr) -> Option<Arg1> {
        let tv = self.expr(scope, e)?;
        if let Some(i) = self.class_input(&tv) {
            let input = &self.inputs[i as usize];
            let (name, at, c) = (input.name.clone(), input.span, self.classes(i));
            let b = self.batch_name();
            if !input.is_label {
                let ty = format!("class{} of {c}", self.show(&input.shape));
                self.report(
                    Diagnostic::error(e.span, format!("`{name}` holds ids, not numbers"))
                        .label(format!("`{name}` is `{ty}`"))
                        .secondary(at, format!("`{name}` declared here"))
                        .note("ids can only be looked up by an Embedding layer, e.g. `emb(tok)`"),
                );
                return None;
            }
            self.report(
                Diagnostic::error(e.span, format!("`{name}` holds class labels, not numbers"))
                    .label(format!("`{name}` is `class[{b}] of {c}`"))
                    .secondary(at, format!("`{name}` declared here"))
                    .note("class labels can only be the target of cross_entropy or accuracy"),
            );
            return None;
        }
        Some((tv, e.span))
    }

    /// The input index if `tv` is a class-label input.
    pub(super) fn class_input(&self, tv: &Tv) -> Option<u32> {
        match self.value(tv.id).kind {
            ValueKind::Input(i)
                if matches!(self.inputs[i as usize].kind, InputKind::Classes(_)) =>
            {
                Some(i)
            }
            _ => None,
        }
    }

    pub(super) fn classes(&self, input: u32) -> u32 {
        match self.inputs[input as usize].kind {
            InputKind::Classes(c) => c,
            _ => 0,
        }
    }

    fn name(&mut self, scope: &Scope, n: &str, span: Span) -> Option<Tv> {
        match scope.get(n) {
            Some(Entry::Value(tv)) => Some(tv.clone()),
            Some(Entry::Param(i)) => Some(self.param_value(*i)),
            Some(Entry::Int(v)) => Some(self.constant(*v as f64, span)),
            Some(Entry::Poison) => None,
            Some(Entry::Inst(_)) | None => {
                self.report(Diagnostic::error(
                    span,
                    format!("internal error: `{n}` is not a value"),
                ));
                None
            }
        }
    }

    /// `base.field`: a parameter or a sub-layer of a layer instance.
    pub(super) fn field(&mut self, scope: &Scope, e: &Expr) -> Option<Entry> {
        let ExprKind::Field { base, field } = &e.kind else { return None };
        let base_entry = match &base.kind {
            ExprKind::Name(n) => scope.get(n).cloned(),
            ExprKind::Field { .. } => Some(self.field(scope, base)?),
            _ => None,
        };
        match base_entry {
            Some(Entry::Inst(id)) => self.member(id, field),
            Some(Entry::Poison) => None,
            _ => {
                self.report(
                    Diagnostic::error(base.span, "only layers have fields").label("not a layer"),
                );
                None
            }
        }
    }

    fn member(&mut self, id: InstId, field: &Ident) -> Option<Entry> {
        let f = field.name.as_str();
        let (msg, candidates, note) = match &self.insts[id] {
            Inst::Dense { g: Some(g), weight, bias, name, .. } => {
                match (f, bias) {
                    ("weight_g", _) => return Some(Entry::Param(*g)),
                    ("weight_v", _) => return Some(Entry::Param(*weight)),
                    ("bias", Some(b)) => return Some(Entry::Param(*b)),
                    _ => {}
                }
                // `weight` is not stored: suggest by the note, not by spelling.
                let fields = match f {
                    "weight" => vec![],
                    _ => vec!["weight_g".to_string(), "weight_v".to_string(), "bias".to_string()],
                };
                (
                    format!("`{name}` has no field `{f}`"),
                    fields,
                    format!(
                        "with `weight_norm = true` the weight is weight_g·weight_v/‖weight_v‖: \
                         the fields are `{name}.weight_g`, `{name}.weight_v` and `{name}.bias`"
                    ),
                )
            }
            Inst::Norm { weight: Some(w), .. } if f == "weight" => return Some(Entry::Param(*w)),
            Inst::Norm { bias: Some(b), .. } if f == "bias" => return Some(Entry::Param(*b)),
            Inst::Norm { name, weight, .. } => {
                let (fields, note) = match weight {
                    Some(_) => (
                        vec!["weight".to_string(), "bias".to_string()],
                        "a normalization layer has the fields `weight` and `bias`; its running \
                         statistics are not values",
                    ),
                    None => (vec![], "declared with `affine = false`, it has no parameters"),
                };
                (format!("`{name}` has no field `{f}`"), fields, note.to_string())
            }
            Inst::Dense { bias: None, name, .. } | Inst::Conv2d { bias: None, name, .. }
                if f == "bias" =>
            {
                let msg = format!("`{name}` has no bias");
                let d = Diagnostic::error(field.span, msg).label("declared with `bias = false`");
                self.report(d);
                return None;
            }
            Inst::Dense { weight, .. } if f == "weight" => return Some(Entry::Param(*weight)),
            Inst::Dense { bias: Some(b), .. } if f == "bias" => return Some(Entry::Param(*b)),
            Inst::Dense { name, .. } => (
                format!("`{name}` has no field `{f}`"),
                vec!["weight".to_string(), "bias".to_string()],
                "a Dense layer has the fields `weight` and `bias`".to_string(),
            ),
            Inst::User { scope, name, decl, .. } => {
                if let Some(e @ (Entry::Param(_) | Entry::Inst(_) | Entry::Poison)) = scope.get(f) {
                    return Some(e.clone());
                }
                let mut fields: Vec<String> = scope
                    .iter()
                    .filter(|(_, e)| matches!(e, Entry::Param(_) | Entry::Inst(_)))
                    .map(|(n, _)| n.clone())
                    .collect();
                fields.sort();
                let note = format!("the fields of {} are: {}", decl.name.name, fields.join(", "));
                (format!("`{name}` ({}) has no field `{f}`", decl.name.name), fields, note)
            }
            Inst::Conv2d { weight, .. } if f == "weight" => return Some(Entry::Param(*weight)),
            Inst::Conv2d { bias: Some(b), .. } if f == "bias" => return Some(Entry::Param(*b)),
            Inst::Conv2d { name, .. } => (
                format!("`{name}` has no field `{f}`"),
                vec!["weight".to_string(), "bias".to_string()],
                "a Conv2d layer has the fields `weight` and `bias`".to_string(),
            ),
            Inst::Pool { name, .. } => (
                format!("`{name}` has no field `{f}`"),
                vec![],
                "a pooling layer has no parameters".to_string(),
            ),
            Inst::Embedding { weight, .. } if f == "weight" => return Some(Entry::Param(*weight)),
            Inst::Embedding { name, .. } => (
                format!("`{name}` has no field `{f}`"),
                vec!["weight".to_string()],
                "an Embedding has the field `weight`".to_string(),
            ),
            Inst::Repeat { name, layer, copies, .. } => (
                format!(
                    "`{name}` is a stack of {} {layer} layers; its parts have no names",
                    copies.len()
                ),
                vec![],
                "`repeat` layers are used whole, e.g. `blocks(h)`".to_string(),
            ),
        };
        let mut d = Diagnostic::error(field.span, msg).label("unknown field");
        if let Some(s) = did_you_mean(f, candidates.iter().map(String::as_str)) {
            d = d.note(s);
        }
        self.report(d.note(note));
        None
    }

    fn call(&mut self, scope: &Scope, callee: &Ident, args: &[Arg], span: Span) -> Option<Tv> {
        match scope.get(&callee.name) {
            // Ids may reach an Embedding directly or through a user layer's argument (a
            // use as a number inside the layer is reported there).
            Some(Entry::Inst(id))
                if matches!(self.insts[*id], Inst::Embedding { .. } | Inst::User { .. }) =>
            {
                let id = *id;
                let args = self.id_args(scope, args)?;
                self.apply(id, args, span)
            }
            Some(Entry::Inst(id)) => {
                let id = *id;
                let args = self.layer_args(scope, args)?;
                self.apply(id, args, span)
            }
            Some(Entry::Poison) => None,
            _ => match registry::function(&callee.name) {
                Some(b) => self.builtin(scope, b, args, span),
                None => {
                    let msg = format!("internal error: `{}` is not callable", callee.name);
                    self.report(Diagnostic::error(callee.span, msg));
                    None
                }
            },
        }
    }

    /// Arguments of an Embedding call: values that may be ids (checked by `embed`).
    fn id_args(&mut self, scope: &Scope, args: &[Arg]) -> Option<Vec<Arg1>> {
        let mut out = Vec::new();
        for a in args {
            if let Some(k) = &a.name {
                self.report(
                    Diagnostic::error(k.span, "layers take their tensors as positional arguments")
                        .label("remove `name =`"),
                );
                return None;
            }
            out.push((self.expr(scope, &a.value)?, a.value.span));
        }
        Some(out)
    }

    /// Arguments of a layer call: tensors, positional only.
    fn layer_args(&mut self, scope: &Scope, args: &[Arg]) -> Option<Vec<Arg1>> {
        let mut out = Vec::new();
        let mut ok = true;
        for a in args {
            if let Some(k) = &a.name {
                self.report(
                    Diagnostic::error(k.span, "layers take their tensors as positional arguments")
                        .label("remove `name =`"),
                );
                ok = false;
                continue;
            }
            match self.operand(scope, &a.value) {
                Some(tv) => out.push(tv),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Applies layer instance `id` to `args` at `call`.
    pub fn apply(&mut self, id: InstId, args: Vec<Arg1>, call: Span) -> Option<Tv> {
        match self.insts[id].clone() {
            Inst::Dense { name, path, inputs, outputs, weight, bias, g, in_span } => {
                let [x] = self.arity::<1>(&name, args, call)?;
                let shape = self.shape(x.0.id).clone();
                match shapes::dense(&shape, inputs, outputs) {
                    Ok(out) => {
                        let kind = match g {
                            Some(g) => ValueKind::WeightNormDense { x: x.0.id, g, v: weight, bias },
                            None => ValueKind::Dense { x: x.0.id, weight, bias },
                        };
                        let id = self.push_in(kind, out, call, Some(path));
                        Some(Tv { id, from: Some(name) })
                    }
                    Err(e) => {
                        self.dense_error(e, &name, inputs, in_span, &x, &shape);
                        None
                    }
                }
            }
            Inst::Norm { name, path, norm, d, weight, bias, d_span, images } => {
                let [x] = self.arity::<1>(&name, args, call)?;
                let shape = self.norm_shape(&name, (&norm, images), d, d_span, &x)?;
                let kind = ValueKind::Norm { norm, x: x.0.id, weight, bias };
                let id = self.push_in(kind, shape, call, Some(path));
                Some(Tv { id, from: Some(name) })
            }
            Inst::User { decl, name, path, scope } => {
                self.inline(decl, name, path, scope, args, call)
            }
            inst @ (Inst::Conv2d { .. } | Inst::Pool { .. }) => {
                let (Inst::Conv2d { name, .. } | Inst::Pool { name, .. }) = &inst else {
                    return None;
                };
                let [x] = self.arity::<1>(name, args, call)?;
                self.apply_window(&inst, x, call)
            }
            inst @ Inst::Embedding { .. } => {
                let Inst::Embedding { name, .. } = &inst else { return None };
                let [x] = self.arity::<1>(name, args, call)?;
                self.embed(&inst, x, call)
            }
            Inst::Repeat { name, layer, copies, span } => {
                let [x] = self.arity::<1>(&name, args, call)?;
                let input = self.shape(x.0.id).clone();
                let mut cur = x;
                for (i, &copy) in copies.iter().enumerate() {
                    let out = self.apply(copy, vec![cur], call)?;
                    let shape = self.shape(out.id).clone();
                    if i == 0 && shape != input {
                        let (a, b) = (self.show(&input), self.show(&shape));
                        self.report(
                            Diagnostic::error(call, format!("repeat needs {layer} to keep the shape: {a} becomes {b}"))
                                .label(format!("the first copy maps {a} to {b}"))
                                .secondary(span, format!("`{name}` repeats {layer} here"))
                                .note("each copy feeds the next, so the output shape must equal the input shape"),
                        );
                        return None;
                    }
                    cur = (out, call);
                }
                Some(Tv { id: cur.0.id, from: Some(name) })
            }
        }
    }

    /// Exactly `N` tensor arguments for layer `name`.
    fn arity<const N: usize>(
        &mut self,
        name: &str,
        args: Vec<Arg1>,
        call: Span,
    ) -> Option<[Arg1; N]> {
        let n = args.len();
        match <[Arg1; N]>::try_from(args) {
            Ok(a) => Some(a),
            Err(_) => {
                let noun = if N == 1 { "tensor" } else { "tensors" };
                self.report(
                    Diagnostic::error(call, format!("`{name}` takes {N} {noun} but receives {n}"))
                        .label(format!("called with {n}")),
                );
                None
            }
        }
    }

    fn dense_error(
        &mut self,
        e: DenseError,
        name: &str,
        inputs: usize,
        in_span: Span,
        x: &Arg1,
        shape: &Shape,
    ) {
        let s = self.show(shape);
        let b = self.batch_name();
        let from = x.0.from.as_ref().map_or(String::new(), |f| format!(" from {f}"));
        let msg = match e {
            DenseError::Rank => {
                format!("{name} expects a matrix [{b},{inputs}] but receives {s}{from}")
            }
            DenseError::Features(d) => {
                let d = self.show(&Shape(vec![d]));
                let d = d.trim_matches(|c| c == '[' || c == ']');
                let parts = self.flattened(x.0.id).unwrap_or_default();
                format!("{name} expects {inputs} input features but receives {d}{parts}{from}")
            }
        };
        self.report(
            Diagnostic::error(x.1, msg)
                .label(format!("this is {s}"))
                .secondary(in_span, format!("`{name}` is declared with {inputs} inputs here")),
        );
    }

    /// For a value that flattens images or other tensors of rank 3 or more, its size as the
    /// product of their dimensions: ` = 16 x 6 x 6`.
    fn flattened(&self, id: ValueId) -> Option<String> {
        let ValueKind::Reshape(src) = self.value(id).kind else { return None };
        let dims = &self.shape(src).dims()[1..];
        let sizes: Vec<String> = dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => Some(n.to_string()),
                Dim::Batch => None,
            })
            .collect::<Option<_>>()?;
        (sizes.len() >= 2).then(|| format!(" = {}", sizes.join(" x ")))
    }

    /// Inlines a user layer's `forward` with this instance's parameters.
    fn inline(
        &mut self,
        decl: &'a LayerDecl,
        name: String,
        path: String,
        mut scope: Scope,
        args: Vec<Arg1>,
        call: Span,
    ) -> Option<Tv> {
        let (params, body, result, fspan) = forward_of(decl)?;
        if params.len() != args.len() {
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            let noun = if params.len() == 1 { "tensor" } else { "tensors" };
            self.report(
                Diagnostic::error(
                    call,
                    format!(
                        "`{name}` takes {} {noun} ({}) but receives {}",
                        params.len(),
                        names.join(", "),
                        args.len()
                    ),
                )
                .label(format!("called with {}", args.len()))
                .secondary(fspan, format!("{}'s `forward` is declared here", decl.name.name)),
            );
            return None;
        }
        if self.values.len() > MAX_VALUES {
            self.limit(call, &format!("more than {MAX_VALUES} values after inlining layers"));
            return None;
        }
        for (p, (tv, _)) in params.iter().zip(args) {
            scope.insert(p.name.clone(), Entry::Value(tv));
        }
        self.calls.push((call, name.clone()));
        let saved = self.path.replace(path);
        for s in body {
            if let crate::syntax::ast::Stmt::Let { name, value, .. } = s {
                let v = self.expr(&scope, value);
                scope.insert(name.name.clone(), v.map_or(Entry::Poison, Entry::Value));
            }
        }
        let r = self.expr(&scope, result);
        self.path = saved;
        self.calls.pop();
        r.map(|tv| Tv { id: tv.id, from: Some(name) })
    }

    fn binary(
        &mut self,
        scope: &Scope,
        op: BinOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Option<Tv> {
        let a = self.operand(scope, lhs);
        let b = self.operand(scope, rhs);
        let (a, b) = (a?, b?);
        let (sa, sb) = (self.shape(a.0.id).clone(), self.shape(b.0.id).clone());
        let (va, vb) = (self.show(&sa), self.show(&sb));
        let arith = match op {
            BinOp::Add => ArithOp::Add,
            BinOp::Sub => ArithOp::Sub,
            BinOp::Mul => ArithOp::Mul,
            BinOp::Div => ArithOp::Div,
            BinOp::MatMul => {
                return match shapes::matmul(&sa, &sb) {
                    Ok(s) => Some(Tv {
                        id: self.push(ValueKind::MatMul(a.0.id, b.0.id), s, span),
                        from: None,
                    }),
                    Err(MatMulError::Rank { left }) => {
                        let (side, at, v) =
                            if left { ("left", a.1, va) } else { ("right", b.1, vb) };
                        self.report(
                            Diagnostic::error(
                                at,
                                format!("`@` multiplies matrices, but its {side} side is {v}"),
                            )
                            .label("not a matrix (rank 2)"),
                        );
                        None
                    }
                    Err(MatMulError::Inner) => {
                        self.report(
                            Diagnostic::error(
                                b.1,
                                format!("`@` needs the inner dimensions to agree: {va} @ {vb}"),
                            )
                            .label(format!("this is {vb}"))
                            .secondary(a.1, format!("this is {va}"))
                            .note("[m, k] @ [k, n] gives [m, n]"),
                        );
                        None
                    }
                };
            }
        };
        match shapes::broadcast(&sa, &sb) {
            Some(s) => Some(Tv {
                id: self.push(ValueKind::Arith(arith, a.0.id, b.0.id), s, span),
                from: None,
            }),
            None => {
                let verb = ["add", "subtract", "multiply", "divide"][arith as usize];
                self.report(
                    Diagnostic::error(b.1, format!("cannot {verb} {va} and {vb}: shapes do not broadcast"))
                        .label(format!("this is {vb}"))
                        .secondary(a.1, format!("this is {va}"))
                        .note("shapes are compared from the last dimension: each pair must be equal, or one of them 1"),
                );
                None
            }
        }
    }

    fn builtin(
        &mut self,
        scope: &Scope,
        b: &'static Builtin,
        args: &[Arg],
        span: Span,
    ) -> Option<Tv> {
        let Some(&(_, call)) = CALLS.iter().find(|c| c.0 == b.name) else {
            let msg = format!("internal error: `{}` is not implemented", b.name);
            self.report(Diagnostic::error(span, msg));
            return None;
        };
        match call {
            Call::Penalty => self.penalty(scope, b, args, span),
            Call::Concat => self.concat(scope, args, span),
            Call::AvgPool => {
                let a = Args::bind(b, args, span, self.diags)?;
                let (x, k) = (a.get("x")?, a.get("kernel")?);
                let x = self.operand(scope, &x.value)?;
                self.avg_pool2d(scope, x, &k.value, span)
            }
            Call::GlobalAvgPool => {
                let a = Args::bind(b, args, span, self.diags)?;
                let x = self.operand(scope, &a.get("x")?.value)?;
                self.global_avg_pool(x, span)
            }
            Call::Reshape => {
                let a = Args::bind(b, args, span, self.diags)?;
                let (x, shape) = (a.get("x")?, a.get("shape")?);
                let x = self.operand(scope, &x.value)?;
                self.reshape(scope, x, &shape.value, span)
            }
            Call::Loss(kind) => {
                let mut a = Args::bind(b, args, span, self.diags)?;
                let (first, target) = (a.get(b.params[0].name)?, a.get(b.params[1].name)?);
                let kind = loss_kind(kind, &mut a);
                let errors = std::mem::take(&mut a.errors);
                if !errors.is_empty() {
                    errors.into_iter().for_each(|d| self.report(d));
                    return None;
                }
                self.loss(scope, kind, b.name, first, target, span)
            }
            Call::Accuracy => {
                let a = Args::bind(b, args, span, self.diags)?;
                let (first, target) = (a.get(b.params[0].name)?, a.get(b.params[1].name)?);
                let pred = self.operand(scope, &first.value);
                let target = self.expr(scope, &target.value).map(|t| (t, target.value.span));
                let (pred, target) = (pred?, target?);
                self.class_target("accuracy", &pred, &target)?;
                let kind = ValueKind::Accuracy { pred: pred.0.id, target: target.0.id };
                Some(Tv { id: self.push(kind, Shape::scalar(), span), from: None })
            }
            Call::Tensor(f) => self.tensor_fn(scope, b, f, args, span),
        }
    }

    /// A built-in function of one tensor.
    fn tensor_fn(
        &mut self,
        scope: &Scope,
        b: &'static Builtin,
        f: TensorFn,
        args: &[Arg],
        span: Span,
    ) -> Option<Tv> {
        let mut a = Args::bind(b, args, span, self.diags)?;
        let first = a.get(b.params[0].name)?;
        let x = self.operand(scope, &first.value);
        // The options, read before the operand's errors stop us, so all are reported.
        let slope = matches!(f, TensorFn::LeakyRelu).then(|| a.num("slope", 0.01, Rule::Finite));
        let alpha = matches!(f, TensorFn::Elu).then(|| a.num("alpha", 1.0, Rule::Finite));
        let gelu = matches!(f, TensorFn::Gelu).then(|| gelu_form(&mut a));
        let drop_p = matches!(f, TensorFn::Dropout).then(|| a.num("p", 0.5, Rule::UnitOpen));
        let axis = a.get("axis");
        let errors = std::mem::take(&mut a.errors);
        let failed = !errors.is_empty();
        errors.into_iter().for_each(|d| self.report(d));
        let x = x?;
        if failed {
            return None;
        }
        let shape = self.shape(x.0.id).clone();
        let id = x.0.id;
        let kind = match f {
            TensorFn::Unary(u) => ValueKind::Unary(u, id),
            TensorFn::LeakyRelu => ValueKind::Unary(UnaryFn::LeakyRelu(slope.unwrap_or(0.01)), id),
            TensorFn::Elu => ValueKind::Unary(UnaryFn::Elu(alpha.unwrap_or(1.0)), id),
            TensorFn::Gelu => ValueKind::Unary(gelu.unwrap_or(UnaryFn::Gelu), id),
            TensorFn::Dropout => ValueKind::Dropout { x: id, p: drop_p.unwrap_or(0.5) },
            TensorFn::Softmax => ValueKind::Softmax(self.not_scalar(b.name, &x)?),
            TensorFn::LogSoftmax => ValueKind::LogSoftmax(self.not_scalar(b.name, &x)?),
            TensorFn::Reduce(op) => return self.reduce(op, b.name, x, axis, span),
            TensorFn::Flatten => return self.flatten(x, span),
        };
        Some(Tv { id: self.push(kind, shape, span), from: x.0.from })
    }

    /// `x`'s value if it has at least one dimension (softmax's rule); else reports why not.
    fn not_scalar(&mut self, name: &str, x: &Arg1) -> Option<super::model::ValueId> {
        if self.shape(x.0.id).rank() == 0 {
            self.report(
                Diagnostic::error(x.1, format!("{name} needs at least one dimension"))
                    .label("this is a scalar"),
            );
            return None;
        }
        Some(x.0.id)
    }

    fn reduce(
        &mut self,
        op: ReduceFn,
        name: &str,
        x: Arg1,
        axis: Option<&Arg>,
        span: Span,
    ) -> Option<Tv> {
        let shape = self.shape(x.0.id).clone();
        let axis = match axis {
            None => None,
            Some(arg) => {
                let rank = shape.rank();
                match number(&arg.value) {
                    Some(n) if n.int && n.value >= 0.0 && n.value < rank as f64 => {
                        Some(n.value as usize)
                    }
                    found => {
                        let s = self.show(&shape);
                        let found = found.map_or_else(|| describe(&arg.value), |n| n.show());
                        let msg = match rank {
                            0 => format!("{name} of a scalar has no axis, found axis {found}"),
                            r => format!(
                                "axis must be an integer from 0 to {} for {s}, found {found}",
                                r - 1
                            ),
                        };
                        self.report(
                            Diagnostic::error(arg.value.span, msg)
                                .label("invalid axis")
                                .secondary(x.1, format!("this is {s}")),
                        );
                        return None;
                    }
                }
            }
        };
        let out = shapes::reduce(&shape, axis);
        Some(Tv { id: self.push(ValueKind::Reduce { op, x: x.0.id, axis }, out, span), from: None })
    }
}

/// gelu's `approximate`: `"none"` (the erf form, the default) or `"tanh"`, as PyTorch's.
fn gelu_form(a: &mut Args) -> UnaryFn {
    let Some(arg) = a.get("approximate") else { return UnaryFn::Gelu };
    match a.string("approximate", None).as_deref() {
        Some("none") => UnaryFn::Gelu,
        Some("tanh") => UnaryFn::GeluTanh,
        Some(other) => {
            a.errors.push(
                Diagnostic::error(
                    arg.value.span,
                    format!("approximate must be \"none\" or \"tanh\", found \"{other}\""),
                )
                .label("unknown approximation"),
            );
            UnaryFn::Gelu
        }
        None => UnaryFn::Gelu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CALLS` and the registry's function tables name the same functions.
    #[test]
    fn every_builtin_function_is_implemented() {
        let names: Vec<&str> = registry::function_names().collect();
        for name in &names {
            assert!(CALLS.iter().any(|c| c.0 == *name), "{name} has no entry in CALLS");
        }
        for (name, _) in CALLS {
            assert!(names.contains(name), "{name} is in CALLS but not in the registry");
        }
        for b in registry::LOSSES {
            assert!(matches!(CALLS.iter().find(|c| c.0 == b.name), Some((_, Call::Loss(_)))));
        }
        for b in registry::PENALTIES {
            assert!(matches!(CALLS.iter().find(|c| c.0 == b.name), Some((_, Call::Penalty))));
        }
    }
}

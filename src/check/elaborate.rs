//! Elaboration: builds the model's inputs, its parameters (with PyTorch `state_dict` names,
//! shapes, fans and initializers) and its layer instances, then evaluates the model's
//! bindings into the value arena, inlining user layers per call. `declare` builds the
//! declarations, `exprs` the values, `losses` checks loss and metric targets.
//!
//! Runs only after `resolve` succeeded, so every name refers to something of the right kind;
//! where that assumption would fail it reports an internal error instead of panicking.
//! Parameter order is PyTorch's `named_parameters()` order: a module's own `param`s first,
//! then its sub-layers' in declaration order (the model is the root module).
//! A mistake makes the affected name "poisoned": later uses stay silent instead of
//! reporting consequences of the first error.

use super::model::{
    BufferDef, MetricDef, ModelInput, Norm, ParamDef, Pool, Value, ValueId, ValueKind,
};
use super::resolve::constructor;
use super::shapes::show;
use super::Items;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Shape, Window};
use crate::syntax::ast::{Expr, ExprKind, LayerDecl, ModelDecl, Stmt};
use std::collections::{HashMap, HashSet};

/// Limits on the inlined program (see also `declare`'s limits on parameters and layers).
pub(super) const MAX_VALUES: usize = 2_000_000;
/// Deepest nesting of expressions, counted through inlined layers (bounds the recursion).
pub(super) const MAX_NESTING: usize = 512;

/// The model-dependent parts of a checked [`super::Model`].
pub(crate) struct Parts {
    pub name: String,
    pub inputs: Vec<ModelInput>,
    pub params: Vec<ParamDef>,
    pub buffers: Vec<BufferDef>,
    pub values: Vec<Value>,
    pub loss: ValueId,
    pub metrics: Vec<MetricDef>,
    /// The user's name for the batch dimension, for messages.
    pub batch: String,
}

/// A tensor value and a description of where it came from (`fc1`, `` `x` ``), used in
/// messages like "fc2 expects 128 input features but receives 64 from fc1".
#[derive(Clone, Debug)]
pub(crate) struct Tv {
    pub id: ValueId,
    pub from: Option<String>,
}

pub(crate) type InstId = usize;

/// What a name means during elaboration.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    Value(Tv),
    Param(u32),
    Inst(InstId),
    /// A layer constructor parameter.
    Int(i64),
    /// Its definition failed (already reported).
    Poison,
}

pub(crate) type Scope = HashMap<String, Entry>;

/// A layer instance. `name` is the local name (for messages), `path` the state_dict prefix.
#[derive(Clone, Debug)]
pub(crate) enum Inst<'a> {
    Dense {
        name: String,
        path: String,
        inputs: usize,
        outputs: usize,
        /// The weight, or with weight normalization its direction `weight_v`.
        weight: u32,
        bias: Option<u32>,
        /// With `weight_norm = true`: the magnitude `weight_g` (`[out, 1]`).
        g: Option<u32>,
        /// Where the input size is written.
        in_span: Span,
    },
    /// LayerNorm, BatchNorm or GroupNorm over `d` features (the last axis).
    Norm {
        name: String,
        path: String,
        norm: Norm,
        d: usize,
        weight: Option<u32>,
        bias: Option<u32>,
        /// Where `d` is written.
        d_span: Span,
        /// Takes images `[N, d, H, W]` (BatchNorm2d); GroupNorm takes both ranks.
        images: bool,
    },
    User {
        decl: &'a LayerDecl,
        name: String,
        path: String,
        scope: Scope,
    },
    Repeat {
        name: String,
        layer: String,
        copies: Vec<InstId>,
        span: Span,
    },
    /// A 2-D convolution of `inputs` channels: parameters `weight [out, in/g, kh, kw]` and
    /// `bias [out]`.
    Conv2d {
        name: String,
        path: String,
        inputs: usize,
        win: Window,
        weight: u32,
        bias: Option<u32>,
        /// Where the input channel count is written.
        in_span: Span,
        /// Where the kernel size is written.
        kernel_span: Span,
    },
    /// A max or average pooling layer (no parameters).
    Pool {
        name: String,
        pool: Pool,
        win: Window,
        kernel_span: Span,
    },
    /// An Embedding of `num` ids into `dim` features: parameter `weight [num, dim]`.
    Embedding {
        name: String,
        path: String,
        num: usize,
        dim: usize,
        weight: u32,
        /// Where `num` is written.
        num_span: Span,
    },
}

/// The elaboration state: the arenas being built and the inlining context.
pub(crate) struct Elab<'a, 'd> {
    pub items: &'a Items<'a>,
    pub diags: &'d mut Vec<Diagnostic>,
    pub inputs: Vec<ModelInput>,
    /// Span of each class label's `of C`, by input index.
    pub class_spans: HashMap<u32, Span>,
    pub params: Vec<ParamDef>,
    pub buffers: Vec<BufferDef>,
    pub values: Vec<Value>,
    pub param_values: HashMap<u32, ValueId>,
    pub insts: Vec<Inst<'a>>,
    /// Call sites of the user layers being inlined, outermost first, with the callee name.
    pub calls: Vec<(Span, String)>,
    /// State-dict path of the layer instance being inlined (`Value::layer`).
    pub path: Option<String>,
    /// The batch symbol and where it was first written.
    pub batch: Option<(String, Span)>,
    /// User layers being instantiated (to refuse a layer that contains itself).
    pub building: Vec<String>,
    pub too_big: bool,
    /// Current expression nesting, through inlined layers.
    pub depth: usize,
    /// Number of trainable scalars so far.
    pub total_elems: u128,
    /// (logits, labels) pairs checked by cross_entropy/accuracy, and those that passed.
    pub class_pairs: HashSet<(ValueId, ValueId)>,
    pub class_ok: HashSet<(ValueId, ValueId)>,
}

pub(crate) fn elaborate(
    items: &Items,
    decl: &ModelDecl,
    diags: &mut Vec<Diagnostic>,
) -> Option<Parts> {
    let before = diags.len();
    let mut e = Elab {
        items,
        diags,
        inputs: Vec::new(),
        class_spans: HashMap::new(),
        params: Vec::new(),
        buffers: Vec::new(),
        values: Vec::new(),
        param_values: HashMap::new(),
        insts: Vec::new(),
        calls: Vec::new(),
        path: None,
        batch: None,
        building: Vec::new(),
        too_big: false,
        depth: 0,
        total_elems: 0,
        class_pairs: HashSet::new(),
        class_ok: HashSet::new(),
    };
    let mut scope = Scope::new();
    e.declarations(decl, &mut scope);
    let (loss, metrics) = e.computation(decl, &mut scope);
    let failed = e.diags.len() > before;
    let loss = loss?;
    if failed {
        return None;
    }
    Some(Parts {
        name: decl.name.name.clone(),
        inputs: e.inputs,
        params: e.params,
        buffers: e.buffers,
        values: e.values,
        loss,
        metrics,
        batch: e.batch.map_or_else(|| "B".to_string(), |b| b.0),
    })
}

impl<'a> Elab<'a, '_> {
    /// Inputs and labels, then the model's own params, then its layer instances.
    fn declarations(&mut self, decl: &'a ModelDecl, scope: &mut Scope) {
        for s in &decl.body {
            if let Stmt::Input { name, ty, span } | Stmt::Label { name, ty, span } = s {
                let is_label = matches!(s, Stmt::Label { .. });
                let entry =
                    self.input(name, ty, is_label, *span).map_or(Entry::Poison, Entry::Value);
                scope.insert(name.name.clone(), entry);
            }
        }
        for s in &decl.body {
            if let Stmt::Param { name, shape, init, span } = s {
                let p = self.param(scope, name.name.clone(), shape, init.as_ref(), *span);
                scope.insert(name.name.clone(), p.map_or(Entry::Poison, Entry::Param));
            }
        }
        for s in &decl.body {
            if let Stmt::Let { name, value, .. } = s {
                if constructor(self.items, value).is_some() {
                    let id = self.instantiate(scope, value, &name.name, name.name.clone());
                    scope.insert(name.name.clone(), id.map_or(Entry::Poison, Entry::Inst));
                }
            }
        }
    }

    /// The model's bindings and metrics in order; returns the loss and the metrics.
    fn computation(
        &mut self,
        decl: &ModelDecl,
        scope: &mut Scope,
    ) -> (Option<ValueId>, Vec<MetricDef>) {
        let mut loss = None;
        let mut metrics = Vec::new();
        for s in &decl.body {
            match s {
                Stmt::Let { name, value, .. } if constructor(self.items, value).is_none() => {
                    let tv = self.expr(scope, value);
                    if name.name == "loss" {
                        loss = tv.as_ref().and_then(|tv| self.check_loss(tv.id, value.span));
                    }
                    scope.insert(name.name.clone(), tv.map_or(Entry::Poison, Entry::Value));
                }
                Stmt::Metric { value, span } => metrics.extend(self.metric(scope, value, *span)),
                _ => {}
            }
        }
        (loss, metrics)
    }

    fn check_loss(&mut self, id: ValueId, span: Span) -> Option<ValueId> {
        let shape = self.shape(id).clone();
        if shape.rank() != 0 {
            let s = self.show(&shape);
            self.report(
                Diagnostic::error(span, format!("the loss must be a scalar, but it has shape {s}"))
                    .label(format!("this is {s}"))
                    .note("reduce it, e.g. `loss = mean(...)`, or use a loss function such as `mse(pred, t)`"),
            );
            return None;
        }
        if let Some(acc) = self
            .reachable(id)
            .into_iter()
            .find(|v| matches!(self.value(*v).kind, ValueKind::Accuracy { .. }))
        {
            let at = self.value(acc).span;
            self.report(
                Diagnostic::error(at, "the loss cannot depend on accuracy: it has no gradient")
                    .label("accuracy is used here")
                    .note("report it as `metric accuracy(logits, y)` instead"),
            );
            return None;
        }
        Some(id)
    }

    fn metric(&mut self, scope: &Scope, value: &Expr, span: Span) -> Option<MetricDef> {
        let tv = self.expr(scope, value)?;
        let shape = self.shape(tv.id).clone();
        if shape.rank() != 0 {
            let s = self.show(&shape);
            self.report(
                Diagnostic::error(
                    value.span,
                    format!("a metric must be a scalar, but this has shape {s}"),
                )
                .label(format!("this is {s}"))
                .note("reduce it, e.g. `metric mean(...)`"),
            );
            return None;
        }
        let name = match &value.kind {
            ExprKind::Call { callee, .. } => callee.name.clone(),
            ExprKind::Name(n) => n.clone(),
            _ => "metric".to_string(),
        };
        Some(MetricDef { name, value: tv.id, span })
    }

    // ---- the value arena ----------------------------------------------------------------

    /// Appends a value. Inside inlined layers the span is the outermost call site.
    pub fn push(&mut self, kind: ValueKind, shape: Shape, span: Span) -> ValueId {
        self.push_in(kind, shape, span, self.path.clone())
    }

    pub fn push_in(
        &mut self,
        kind: ValueKind,
        shape: Shape,
        span: Span,
        layer: Option<String>,
    ) -> ValueId {
        let span = self.calls.first().map_or(span, |c| c.0);
        self.values.push(Value { kind, shape, span, layer });
        ValueId(self.values.len() as u32 - 1)
    }

    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0 as usize]
    }

    pub fn shape(&self, id: ValueId) -> &Shape {
        &self.value(id).shape
    }

    /// The value of parameter `i` (one per parameter, created at its first use).
    pub fn param_value(&mut self, i: u32) -> Tv {
        let p = &self.params[i as usize];
        let from = Some(format!("`{}`", p.name));
        if let Some(&id) = self.param_values.get(&i) {
            return Tv { id, from };
        }
        let owner = p.name.rsplit_once('.').map(|(o, _)| o.to_string());
        let (shape, span) = (Shape::fixed(&p.shape), p.span);
        let id = self.push_in(ValueKind::Param(i), shape, span, owner);
        self.param_values.insert(i, id);
        Tv { id, from }
    }

    /// Every value `id` depends on, itself included.
    fn reachable(&self, id: ValueId) -> Vec<ValueId> {
        let mut seen = vec![false; self.values.len()];
        let mut stack = vec![id];
        let mut out = Vec::new();
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v.0 as usize], true) {
                continue;
            }
            out.push(v);
            stack.extend(operands(&self.value(v).kind));
        }
        out
    }

    // ---- messages -----------------------------------------------------------------------

    pub fn batch_name(&self) -> String {
        self.batch.as_ref().map_or_else(|| "B".to_string(), |b| b.0.clone())
    }

    /// A shape with the user's batch name.
    pub fn show(&self, s: &Shape) -> String {
        show(s, &self.batch_name())
    }

    /// Records a diagnostic, noting the layer calls being inlined when it was found.
    pub fn report(&mut self, mut d: Diagnostic) {
        for (span, name) in self.calls.iter().rev() {
            d = d.secondary(*span, format!("in this call of `{name}`"));
        }
        self.diags.push(d);
    }
}

/// The operands of a value.
pub(crate) fn operands(kind: &ValueKind) -> Vec<ValueId> {
    match *kind {
        ValueKind::Input(_) | ValueKind::Param(_) | ValueKind::Const(_) => vec![],
        ValueKind::Unary(_, x)
        | ValueKind::Dense { x, .. }
        | ValueKind::WeightNormDense { x, .. }
        | ValueKind::Norm { x, .. }
        | ValueKind::Reduce { x, .. }
        | ValueKind::Softmax(x)
        | ValueKind::LogSoftmax(x)
        | ValueKind::Reshape(x)
        | ValueKind::Embedding { ids: x, .. }
        | ValueKind::Conv2d { x, .. }
        | ValueKind::Pool { x, .. }
        | ValueKind::Dropout { x, .. } => vec![x],
        ValueKind::Arith(_, a, b)
        | ValueKind::MatMul(a, b)
        | ValueKind::Loss { pred: a, target: b, .. }
        | ValueKind::Accuracy { pred: a, target: b }
        | ValueKind::Concat { a, b, .. } => vec![a, b],
    }
}

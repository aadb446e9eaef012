//! Declarations: the model's `input`s and `label`s (shapes with the batch symbol first),
//! `param`s (shape, initializer, PyTorch fans), and layer instances: `Dense` (weight
//! `[out, in]`, bias `[out]`), user layers (constructor integers bound, own params then
//! sub-layers, named `path.name`) and `repeat` (copies named `path.0`, `path.1`, ...).
//!
//! Sizes are integer expressions over constructor parameters (`d`, `2 * d`, `d / 2` when
//! exact). Limits on sizes, counts and nesting keep a hostile program from exhausting memory
//! or the stack; each is reported once.

use super::args::{bind, describe, Args, Num, Slot};
use super::elaborate::{Elab, Entry, Inst, InstId, Scope, Tv};
use super::init::{fits, init_spec};
use super::model::{Init, ModelInput, ParamDef, Pool, ValueKind};
use super::registry::{self, LAYERS};
use super::resolve::{constructor, forward_of, Ctor};
use super::shapes::fans;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, InputKind, Shape};
use crate::syntax::ast::{Arg, BinOp, DimExpr, Expr, ExprKind, Ident, LayerDecl, Stmt, TypeExpr};

/// Largest size of one dimension.
const MAX_DIM: i64 = i32::MAX as i64;
/// Largest number of elements of one parameter, and of all parameters together.
const MAX_PARAM_ELEMS: u128 = 1 << 31;
const MAX_TOTAL_ELEMS: u128 = 1 << 32;
/// Limits that keep a `repeat` of a `repeat` from exhausting memory.
const MAX_PARAMS: usize = 100_000;
const MAX_INSTANCES: usize = 200_000;
const MAX_REPEAT: i64 = 10_000;
/// Deepest nesting of user layers inside user layers.
const MAX_DEPTH: usize = 32;

impl<'a> Elab<'a, '_> {
    // ---- inputs -------------------------------------------------------------------------

    pub(super) fn input(
        &mut self,
        name: &Ident,
        ty: &TypeExpr,
        is_label: bool,
        span: Span,
    ) -> Option<Tv> {
        let (dims, classes, ty_span) = match ty {
            TypeExpr::Tensor { dims, span } => (dims, None, *span),
            TypeExpr::Class { dims, classes, span } => (dims, Some(classes), *span),
        };
        let shape = self.input_shape(name, dims, ty_span)?;
        let kind = match classes {
            None if is_label => InputKind::Targets,
            None => InputKind::Features,
            // An `input` of class type holds integer ids for an Embedding (any rank).
            Some(c) => InputKind::Classes(self.class_count(name, &shape, c, ty_span, is_label)?),
        };
        let index = self.inputs.len() as u32;
        if let Some(c) = classes {
            self.class_spans.insert(index, c.span);
        }
        self.inputs.push(ModelInput {
            name: name.name.clone(),
            shape: shape.clone(),
            kind,
            is_label,
            span,
        });
        let id = self.push(ValueKind::Input(index), shape, span);
        Some(Tv { id, from: Some(format!("`{}`", name.name)) })
    }

    fn class_count(
        &mut self,
        name: &Ident,
        shape: &Shape,
        c: &Expr,
        ty_span: Span,
        is_label: bool,
    ) -> Option<u32> {
        if is_label && shape.rank() != 1 {
            let b = self.batch_name();
            self.report(
                Diagnostic::error(ty_span, "class labels have one dimension, the batch")
                    .label(format!("one class index per example: `class[{b}] of C`"))
                    .note(format!("`{}` is {}", name.name, self.show(shape))),
            );
            return None;
        }
        let n = self.int_expr(&Scope::new(), c, "the number of classes")?;
        let min = if is_label { 2 } else { 1 };
        if !(min..=MAX_DIM).contains(&n) {
            let msg = match is_label {
                true => format!("a class label needs at least 2 classes, found {n}"),
                false => format!("ids need a range of at least 1, found {n}"),
            };
            self.report(Diagnostic::error(c.span, msg).label("not a valid number of classes"));
            return None;
        }
        Some(n as u32)
    }

    /// `[B, 64]`: the batch symbol first, then positive sizes.
    fn input_shape(&mut self, name: &Ident, dims: &[DimExpr], ty_span: Span) -> Option<Shape> {
        let Some(first) = dims.first() else {
            self.report(
                Diagnostic::error(
                    ty_span,
                    format!("`{}` needs at least the batch dimension", name.name),
                )
                .label("empty shape")
                .note("inputs are batches of examples, e.g. `[B, 64]`"),
            );
            return None;
        };
        let mut ok = self.batch_dim(name, first);
        let mut out = vec![Dim::Batch];
        for d in &dims[1..] {
            match d {
                DimExpr::Int { value, span } => match self.size(*value, *span, "a dimension") {
                    Some(n) => out.push(Dim::Fixed(n)),
                    None => ok = false,
                },
                DimExpr::Name(n) => {
                    ok = false;
                    let msg = if self.batch.as_ref().is_some_and(|b| b.0 == n.name) {
                        format!("only the first dimension can be the batch `{}`", n.name)
                    } else {
                        format!("`{}` is not a size", n.name)
                    };
                    self.report(
                        Diagnostic::error(n.span, msg)
                            .label("dimensions after the batch are numbers")
                            .note("e.g. `input x: [B, 64]`"),
                    );
                }
            }
        }
        ok.then_some(Shape(out))
    }

    fn batch_dim(&mut self, name: &Ident, first: &DimExpr) -> bool {
        match first {
            DimExpr::Name(b) => match &self.batch {
                None => {
                    self.batch = Some((b.name.clone(), b.span));
                    true
                }
                Some((sym, _)) if *sym == b.name => true,
                Some((sym, at)) => {
                    let (sym, at) = (sym.clone(), *at);
                    self.report(
                        Diagnostic::error(
                            b.span,
                            format!("the batch dimension is called `{sym}`, not `{}`", b.name),
                        )
                        .label("a different batch name")
                        .secondary(at, format!("`{sym}` is first used here")),
                    );
                    false
                }
            },
            DimExpr::Int { value, span } => {
                self.report(
                    Diagnostic::error(*span, format!("the first dimension of `{}` must be the batch", name.name))
                        .label("this is a fixed size")
                        .note(format!(
                            "inputs and labels are batches of examples: write `[B, {value}]`, where `B` stands for the batch size"
                        )),
                );
                false
            }
        }
    }

    // ---- integers and sizes -----------------------------------------------------------

    /// A constant integer expression over constructor parameters.
    pub fn int_expr(&mut self, scope: &Scope, e: &Expr, what: &str) -> Option<i64> {
        let bad =
            |msg: String, label: &str| Diagnostic::error(e.span, msg).label(label.to_string());
        let r = match &e.kind {
            ExprKind::Number { value, int } if *int && value.abs() <= 9.0e15 => Ok(*value as i64),
            ExprKind::Number { value, int } => Err(bad(
                format!(
                    "{what} must be a whole number, found {}",
                    Num { value: *value, int: *int }.show()
                ),
                "not an integer",
            )),
            ExprKind::Name(n) => match scope.get(n) {
                Some(Entry::Int(v)) => Ok(*v),
                Some(Entry::Poison) => return None,
                _ => Err(bad(format!("{what} must be an integer; `{n}` is not"), "not an integer")),
            },
            ExprKind::Neg(x) => return self.int_expr(scope, x, what).map(|v| v.saturating_neg()),
            ExprKind::Binary { op, lhs, rhs } => {
                let (a, b) = (self.int_expr(scope, lhs, what), self.int_expr(scope, rhs, what));
                int_arith(*op, a?, b?)
                    .map_err(|m| bad(format!("{what}: {m}"), "cannot compute this size"))
            }
            _ => Err(bad(
                format!("{what} must be an integer, found {}", describe(e)),
                "not an integer",
            )),
        };
        r.map_err(|d| self.report(d)).ok()
    }

    /// `v` as a dimension size: positive and not absurdly large.
    fn size(&mut self, v: i64, span: Span, what: &str) -> Option<u32> {
        if (1..=MAX_DIM).contains(&v) {
            return Some(v as u32);
        }
        let msg = if v < 1 {
            format!("{what} must be positive, found {v}")
        } else {
            format!("{what} is too large: {v} (at most {MAX_DIM})")
        };
        self.report(Diagnostic::error(span, msg).label("invalid size"));
        None
    }

    /// The two sides of a layer's `a -> b` size argument, or a located error naming the
    /// layer (`form` like `in -> out`, `example` a correct call).
    pub(super) fn arrow<'e>(
        &mut self,
        sizes: &'e Expr,
        layer: &str,
        form: &str,
        example: &str,
    ) -> Option<(&'e Expr, &'e Expr)> {
        let ExprKind::Arrow { from, to } = &sizes.kind else {
            self.report(
                Diagnostic::error(sizes.span, format!("{layer} takes its sizes as `{form}`"))
                    .label(format!("found {}", describe(sizes)))
                    .note(example.to_string()),
            );
            return None;
        };
        Some((from, to))
    }

    pub(super) fn size_expr(&mut self, scope: &Scope, e: &Expr, what: &str) -> Option<u32> {
        let v = self.int_expr(scope, e, what)?;
        self.size(v, e.span, what)
    }

    // ---- parameters ---------------------------------------------------------------------

    /// A `param` statement of the model or of a layer instance; `path` is its full name.
    pub(super) fn param(
        &mut self,
        scope: &Scope,
        path: String,
        dims: &[DimExpr],
        init: Option<&Expr>,
        span: Span,
    ) -> Option<u32> {
        let mut shape = Vec::new();
        for d in dims {
            let n = match d {
                DimExpr::Int { value, span } => self.size(*value, *span, "a parameter dimension"),
                DimExpr::Name(n) => match scope.get(&n.name) {
                    Some(Entry::Int(v)) => {
                        let what = format!("parameter dimension `{}`", n.name);
                        self.size(*v, n.span, &what)
                    }
                    _ => {
                        let msg =
                            format!("internal error: `{}` is not a constructor parameter", n.name);
                        self.report(Diagnostic::error(n.span, msg));
                        None
                    }
                },
            };
            shape.push(n? as usize);
        }
        let init = match init {
            Some(e) => {
                let i = init_spec(e, self.diags)?;
                self.init_fits(&i, &shape, e.span, &path)?;
                if i == Init::Lsuv {
                    self.report(lsuv_misplaced(e.span, "a `param`"));
                    return None;
                }
                i
            }
            None => Init::Default,
        };
        let (fan_in, fan_out) = fans(&shape);
        self.add_param(ParamDef { name: path, shape, init, fan_in, fan_out, span })
    }

    pub(super) fn init_fits(
        &mut self,
        init: &Init,
        shape: &[usize],
        span: Span,
        path: &str,
    ) -> Option<()> {
        if let Err(why) = fits(init, shape) {
            self.report(
                Diagnostic::error(span, why)
                    .label(format!("`{path}` has shape {}", Shape::fixed(shape))),
            );
            return None;
        }
        Some(())
    }

    pub(super) fn add_param(&mut self, p: ParamDef) -> Option<u32> {
        let elems: u128 = p.shape.iter().map(|&d| d as u128).product();
        if elems > MAX_PARAM_ELEMS {
            self.report(
                Diagnostic::error(
                    p.span,
                    format!("parameter `{}` is too large: {elems} elements", p.name),
                )
                .label(format!("shape {}", Shape::fixed(&p.shape)))
                .note(format!("at most {MAX_PARAM_ELEMS} elements per parameter are supported")),
            );
            return None;
        }
        if self.params.len() >= MAX_PARAMS {
            self.limit(p.span, &format!("more than {MAX_PARAMS} parameter tensors"));
            return None;
        }
        if self.total_elems + elems > MAX_TOTAL_ELEMS {
            self.limit(p.span, &format!("more than {MAX_TOTAL_ELEMS} trainable numbers"));
            return None;
        }
        self.total_elems += elems;
        self.params.push(p);
        Some(self.params.len() as u32 - 1)
    }

    /// Reports a size limit once.
    pub fn limit(&mut self, span: Span, what: &str) {
        if !self.too_big {
            self.too_big = true;
            self.report(
                Diagnostic::error(span, format!("the model is too large: {what}"))
                    .label("while building this"),
            );
        }
    }

    // ---- layer instances ----------------------------------------------------------------

    /// Builds the layer `e` constructs; `name` is the local name, `path` the state_dict prefix.
    pub(super) fn instantiate(
        &mut self,
        scope: &Scope,
        e: &Expr,
        name: &str,
        path: String,
    ) -> Option<InstId> {
        if self.insts.len() >= MAX_INSTANCES {
            self.limit(e.span, &format!("more than {MAX_INSTANCES} layer instances"));
            return None;
        }
        let inst = match constructor(self.items, e) {
            Some(Ctor::Layer { callee, args }) if callee.name == "Dense" => {
                self.dense(scope, args, e.span, name, path)?
            }
            Some(Ctor::Layer { callee, args }) if callee.name == "Embedding" => {
                self.embedding(scope, args, e.span, name, path)?
            }
            Some(Ctor::Layer { callee, args }) if callee.name == "Conv2d" => {
                self.conv2d(scope, args, e.span, name, path)?
            }
            Some(Ctor::Layer { callee, args }) if callee.name == "MaxPool2d" => {
                self.pool_layer(scope, Pool::Max, args, e.span, name)?
            }
            Some(Ctor::Layer { callee, args }) if callee.name == "AvgPool2d" => {
                self.pool_layer(scope, Pool::Avg, args, e.span, name)?
            }
            Some(Ctor::Layer { callee, args })
                if registry::find(LAYERS, &callee.name).is_some() =>
            {
                self.norm_layer(scope, &callee.name, args, e.span, name, path)?
            }
            Some(Ctor::Layer { callee, args }) => {
                let decl = self.items.layer(&callee.name)?;
                self.user(scope, decl, callee, args, e.span, name, path)?
            }
            Some(Ctor::Repeat { count, layer }) => {
                self.repeat(scope, count, layer, e.span, name, path)?
            }
            None => {
                self.report(Diagnostic::error(
                    e.span,
                    "internal error: expected a layer constructor",
                ));
                return None;
            }
        };
        self.insts.push(inst);
        Some(self.insts.len() - 1)
    }

    fn dense(
        &mut self,
        scope: &Scope,
        args: &[Arg],
        span: Span,
        name: &str,
        path: String,
    ) -> Option<Inst<'a>> {
        let b = registry::find(LAYERS, "Dense")?;
        let mut a = Args::bind(b, args, span, self.diags)?;
        let sizes = a.get("in -> out")?;
        let example = "e.g. `fc1 = Dense(64 -> 128)`";
        let (from, to) = self.arrow(&sizes.value, "Dense", "in -> out", example)?;
        let inputs = self.size_expr(scope, from, "Dense's input size");
        let outputs = self.size_expr(scope, to, "Dense's output size");
        let bias = a.boolean("bias", true);
        let weight_norm = a.boolean("weight_norm", false);
        let errors = std::mem::take(&mut a.errors);
        self.diags.extend(errors);
        let init = a.get("init").map(|x| init_spec(&x.value, self.diags));
        let bias_init = a.get("bias_init").map(|x| init_spec(&x.value, self.diags));
        self.bias_init_needs_bias(&a, bias)?;
        let (inputs, outputs) = (inputs? as usize, outputs? as usize);
        let (init, bias_init) =
            (init.unwrap_or(Some(Init::Default))?, bias_init.unwrap_or(Some(Init::Default))?);
        let bpath = format!("{path}.bias");
        if let Some(x) = a.get("bias_init") {
            self.init_fits(&bias_init, &[outputs], x.value.span, &bpath)?;
            if bias_init == Init::Lsuv {
                self.report(lsuv_misplaced(x.value.span, "a bias"));
                return None;
            }
        }
        if let (true, Init::Lsuv, Some(x)) = (weight_norm, &init, a.get("init")) {
            self.report(lsuv_misplaced(x.value.span, "a weight-normalized layer"));
            return None;
        }
        let sizes = (inputs, outputs);
        let bias_init = bias.then_some(bias_init);
        let (weight, bias, g) =
            self.dense_params(&path, sizes, init, bias_init, weight_norm, span)?;
        let in_span = from.span;
        Some(Inst::Dense {
            name: name.to_string(),
            path,
            inputs,
            outputs,
            weight,
            bias,
            g,
            in_span,
        })
    }

    /// Reports a `bias_init` given to a layer declared with `bias = false` (Dense, Conv2d).
    pub(super) fn bias_init_needs_bias(&mut self, a: &Args, bias: bool) -> Option<()> {
        if let (false, Some(x)) = (bias, a.get("bias_init")) {
            self.report(
                Diagnostic::error(x.span, "`bias_init` given for a layer without bias")
                    .label("this has no effect")
                    .note("remove it, or remove `bias = false`"),
            );
            return None;
        }
        Some(())
    }

    /// A Dense layer's parameters `(weight or weight_v, bias, weight_g)`. Without weight
    /// normalization: `weight [out, in]`, `bias [out]`. With it, in PyTorch's order (its
    /// `weight_norm` re-registers the weight after the bias): `bias`, `weight_g [out, 1]`
    /// (initialized to the row norms of `weight_v`, so `w = v` at the start), `weight_v`.
    fn dense_params(
        &mut self,
        path: &str,
        (inputs, outputs): (usize, usize),
        init: Init,
        bias_init: Option<Init>,
        weight_norm: bool,
        span: Span,
    ) -> Option<(u32, Option<u32>, Option<u32>)> {
        let def = |name: String, shape: Vec<usize>, init: Init| ParamDef {
            name: format!("{path}.{name}"),
            shape,
            init,
            fan_in: inputs,
            fan_out: outputs,
            span,
        };
        if !weight_norm {
            let weight = self.add_param(def("weight".into(), vec![outputs, inputs], init))?;
            let bias = match bias_init {
                Some(b) => Some(self.add_param(def("bias".into(), vec![outputs], b))?),
                None => None,
            };
            return Some((weight, bias, None));
        }
        let bias = match bias_init {
            Some(b) => Some(self.add_param(def("bias".into(), vec![outputs], b))?),
            None => None,
        };
        let v_index = self.params.len() as u32 + 1;
        let g_init = Init::RowNormOf { param: v_index };
        let g = self.add_param(def("weight_g".into(), vec![outputs, 1], g_init))?;
        let v = self.add_param(def("weight_v".into(), vec![outputs, inputs], init))?;
        Some((v, bias, Some(g)))
    }

    #[allow(clippy::too_many_arguments)]
    fn user(
        &mut self,
        scope: &Scope,
        decl: &'a LayerDecl,
        callee: &Ident,
        args: &[Arg],
        span: Span,
        name: &str,
        path: String,
    ) -> Option<Inst<'a>> {
        if self.building.contains(&decl.name.name) {
            self.report(
                Diagnostic::error(
                    callee.span,
                    format!("layer `{}` contains itself", decl.name.name),
                )
                .label("building this would never end")
                .secondary(decl.name.span, format!("`{}` is defined here", decl.name.name)),
            );
            return None;
        }
        if self.building.len() >= MAX_DEPTH {
            let chain = self.building.join(" > ");
            self.report(
                Diagnostic::error(
                    callee.span,
                    format!("user layers nest more than {MAX_DEPTH} levels deep"),
                )
                .label(format!("`{}` inside {chain}", decl.name.name))
                .note("flatten the nesting, or use `repeat` for a stack of the same layer"),
            );
            return None;
        }
        let slots: Vec<Slot> =
            decl.params.iter().map(|p| Slot { name: &p.name, required: true }).collect();
        let names: Vec<&str> = decl.params.iter().map(|p| p.name.as_str()).collect();
        let sig = format!("{}({})", decl.name.name, names.join(", "));
        let bound = bind(&decl.name.name, &sig, &slots, args, span, self.diags)?;
        let mut inner = Scope::new();
        let mut ok = true;
        for (p, arg) in decl.params.iter().zip(bound) {
            let what = format!("`{}` of {}", p.name, decl.name.name);
            match arg.and_then(|arg| self.int_expr(scope, &arg.value, &what)) {
                Some(v) => {
                    inner.insert(p.name.clone(), Entry::Int(v));
                }
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        self.building.push(decl.name.name.clone());
        for s in &decl.body {
            if let Stmt::Param { name: pn, shape, init, span } = s {
                let p =
                    self.param(&inner, format!("{path}.{}", pn.name), shape, init.as_ref(), *span);
                inner.insert(pn.name.clone(), p.map_or(Entry::Poison, Entry::Param));
            }
        }
        for s in &decl.body {
            if let Stmt::Let { name: sub, value, .. } = s {
                let id = self.instantiate(&inner, value, &sub.name, format!("{path}.{}", sub.name));
                inner.insert(sub.name.clone(), id.map_or(Entry::Poison, Entry::Inst));
            }
        }
        self.building.pop();
        Some(Inst::User { decl, name: name.to_string(), path, scope: inner })
    }

    fn repeat(
        &mut self,
        scope: &Scope,
        count: &Expr,
        layer: &Expr,
        span: Span,
        name: &str,
        path: String,
    ) -> Option<Inst<'a>> {
        let n = self.int_expr(scope, count, "the repeat count")?;
        if !(1..=MAX_REPEAT).contains(&n) {
            let msg = if n < 1 {
                format!("`repeat` needs at least one copy, found {n}")
            } else {
                format!("`repeat` makes at most {MAX_REPEAT} copies, found {n}")
            };
            self.report(Diagnostic::error(count.span, msg).label("invalid count"));
            return None;
        }
        let layer_name = match &layer.kind {
            ExprKind::Call { callee, .. } => callee.name.clone(),
            _ => "the layer".to_string(),
        };
        if let Some((decl, (args, _, _, fspan))) =
            self.items.layer(&layer_name).and_then(|d| Some((d, forward_of(d)?)))
        {
            if args.len() != 1 {
                self.report(
                    Diagnostic::error(
                        layer.span,
                        format!("`repeat` chains copies, so {layer_name} must take one tensor"),
                    )
                    .label(format!("{} takes {}", decl.name.name, args.len()))
                    .secondary(fspan, "its `forward` is declared here"),
                );
                return None;
            }
        }
        let mut copies = Vec::new();
        for i in 0..n {
            copies.push(self.instantiate(scope, layer, name, format!("{path}.{i}"))?);
        }
        Some(Inst::Repeat { name: name.to_string(), layer: layer_name, copies, span })
    }
}

/// `init = lsuv` where it cannot apply: LSUV rescales a Dense or Conv2d layer's weight by the
/// variance of that layer's output.
pub(super) fn lsuv_misplaced(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error(span, format!("lsuv cannot initialize {what}"))
        .label("lsuv is data-dependent: it rescales a layer's weight by the layer's output variance")
        .note("use it as a Dense or Conv2d layer's weight initializer: `Dense(64 -> 64, init = lsuv)`")
}

/// `a op b` on integers, refusing overflow and inexact division.
fn int_arith(op: BinOp, a: i64, b: i64) -> Result<i64, String> {
    let r = match op {
        BinOp::Add => a.checked_add(b),
        BinOp::Sub => a.checked_sub(b),
        BinOp::Mul => a.checked_mul(b),
        BinOp::Div if b == 0 => return Err(format!("{a} / 0 divides by zero")),
        BinOp::Div if a % b != 0 => return Err(format!("{a} / {b} is not a whole number")),
        BinOp::Div => a.checked_div(b),
        BinOp::MatMul => return Err("`@` is not integer arithmetic".to_string()),
    };
    r.ok_or_else(|| format!("{a} {} {b} overflows", op.symbol()))
}

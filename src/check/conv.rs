//! Convolution and pooling layers on images `[N, C, H, W]` (NCHW, as PyTorch): their
//! declaration and the shape rule of a call.
//!
//! ```text
//! Conv2d(in -> out, kernel, stride = 1, padding = 0, dilation = 1, groups = 1, bias = true)
//!     [N, in, H, W] -> [N, out, Ho, Wo]; `weight` [out, in/groups, kh, kw], `bias` [out]
//! MaxPool2d(kernel, stride = kernel, padding = 0)     [N, C, H, W] -> [N, C, Ho, Wo]
//! AvgPool2d(kernel, stride = kernel, padding = 0)     (padding counted in the mean, as PyTorch)
//! Ho = ⌊(H + 2·padding − dilation·(kh − 1) − 1) / stride⌋ + 1
//! ```
//!
//! Sizes are an integer or a pair `(along H, along W)`. `padding = "same"` keeps `H × W` at
//! stride 1 (PyTorch's rule), which with symmetric padding needs `dilation·(k − 1)` even.
//! The initializers see PyTorch's fans of the weight: `fan_in = in/groups·kh·kw`,
//! `fan_out = out·kh·kw`; the default is PyTorch's (`U(±1/√fan_in)` for both tensors).
//! Invariants: `groups` divides both channel counts; a pooling window's padding is at most
//! half of it, so every window holds a position of the image.

use super::args::{describe, Args};
use super::declare::lsuv_misplaced;
use super::elaborate::{Elab, Inst, Scope, Tv};
use super::exprs::Arg1;
use super::init::init_spec;
use super::model::{Init, ParamDef, Pool, ValueKind};
use super::registry::{self, LAYERS};
use super::shapes::fans;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, Shape, Window};
use crate::syntax::ast::{Arg, Expr, ExprKind};

/// The largest kernel, stride, padding or dilation.
const MAX_WINDOW: i64 = 1 << 12;

impl<'a> Elab<'a, '_> {
    /// Declares `name = Conv2d(...)` with parameters `path.weight` and `path.bias`.
    pub(super) fn conv2d(
        &mut self,
        scope: &Scope,
        args: &[Arg],
        span: Span,
        name: &str,
        path: String,
    ) -> Option<Inst<'a>> {
        let b = registry::find(LAYERS, "Conv2d")?;
        let mut a = Args::bind(b, args, span, self.diags)?;
        let sizes = a.get("in -> out")?;
        let example = "e.g. `conv1 = Conv2d(1 -> 6, 5)`: 1 channel in, 6 out, 5x5 kernel";
        let (from, to) = self.arrow(&sizes.value, "Conv2d", "in -> out", example)?;
        let inputs = self.size_expr(scope, from, "Conv2d's input channels");
        let outputs = self.size_expr(scope, to, "Conv2d's output channels");
        let kernel = self.window_pair(scope, &a, "kernel", None, 1);
        let stride = self.window_pair(scope, &a, "stride", Some([1, 1]), 1);
        let dilation = self.window_pair(scope, &a, "dilation", Some([1, 1]), 1);
        let groups = a.get("groups").map(|g| self.size_expr(scope, &g.value, "groups"));
        let bias = a.boolean("bias", true);
        let errors = std::mem::take(&mut a.errors);
        self.diags.extend(errors);
        let init = a.get("init").map(|x| (init_spec(&x.value, self.diags), x.value.span));
        let bias_init = a.get("bias_init").map(|x| (init_spec(&x.value, self.diags), x.value.span));
        let (inputs, outputs) = (inputs? as usize, outputs? as usize);
        let (kernel, stride, dilation) = (kernel?, stride?, dilation?);
        let groups = groups.unwrap_or(Some(1))? as usize;
        let pad = self.padding(scope, &a, kernel, stride, dilation)?;
        for (n, what) in [(inputs, "input"), (outputs, "output")] {
            if !n.is_multiple_of(groups) {
                let at = a.get("groups").map_or(span, |g| g.value.span);
                self.report(
                    Diagnostic::error(
                        at,
                        format!("groups = {groups} does not divide the {n} {what} channels"),
                    )
                    .label("each group needs a whole number of input and output channels")
                    .secondary(sizes.value.span, format!("{inputs} -> {outputs} channels")),
                );
                return None;
            }
        }
        self.bias_init_needs_bias(&a, bias)?;
        let win = Window { kernel, stride, pad, dilation, groups: groups as u16 };
        let wshape = vec![outputs, inputs / groups, kernel[0] as usize, kernel[1] as usize];
        let (fan_in, fan_out) = fans(&wshape);
        let mut def = |pname: &str, shape: Vec<usize>, init: Option<(Option<Init>, Span)>| {
            let pname = format!("{path}.{pname}");
            let init = match init {
                None => Init::Default,
                Some((i, at)) => {
                    let i = i?;
                    self.init_fits(&i, &shape, at, &pname)?;
                    if i == Init::Lsuv && shape.len() == 1 {
                        self.report(lsuv_misplaced(at, "a bias"));
                        return None;
                    }
                    i
                }
            };
            self.add_param(ParamDef { name: pname, shape, init, fan_in, fan_out, span })
        };
        let weight = def("weight", wshape, init)?;
        let bias = match bias {
            true => Some(def("bias", vec![outputs], bias_init)?),
            false => None,
        };
        let (in_span, kernel_span) = (from.span, a.get("kernel").map_or(span, |k| k.value.span));
        Some(Inst::Conv2d {
            name: name.to_string(),
            path,
            inputs,
            win,
            weight,
            bias,
            in_span,
            kernel_span,
        })
    }

    /// Declares `name = MaxPool2d(...)` or `AvgPool2d(...)`: no parameters.
    pub(super) fn pool_layer(
        &mut self,
        scope: &Scope,
        pool: Pool,
        args: &[Arg],
        span: Span,
        name: &str,
    ) -> Option<Inst<'a>> {
        let layer = match pool {
            Pool::Max => "MaxPool2d",
            Pool::Avg => "AvgPool2d",
        };
        let b = registry::find(LAYERS, layer)?;
        let a = Args::bind(b, args, span, self.diags)?;
        let kernel = self.window_pair(scope, &a, "kernel", None, 1)?;
        let stride = self.window_pair(scope, &a, "stride", Some(kernel), 1)?;
        let pad = self.window_pair(scope, &a, "padding", Some([0, 0]), 0)?;
        if (0..2).any(|i| 2 * pad[i] > kernel[i]) {
            let at = a.get("padding").map_or(span, |p| p.value.span);
            self.report(
                Diagnostic::error(at, format!("{layer}'s padding is more than half its kernel"))
                    .label("at most half the kernel on each side")
                    .note("PyTorch's rule: every window must hold a position of the image"),
            );
            return None;
        }
        let win = Window { kernel, stride, pad, dilation: [1, 1], groups: 1 };
        let kernel_span = a.get("kernel").map_or(span, |k| k.value.span);
        Some(Inst::Pool { name: name.to_string(), pool, win, kernel_span })
    }

    /// A size argument: an integer or a pair `(h, w)`, each at least `min`; `default` when
    /// not given (`None`: required).
    fn window_pair(
        &mut self,
        scope: &Scope,
        a: &Args,
        name: &str,
        default: Option<[u16; 2]>,
        min: i64,
    ) -> Option<[u16; 2]> {
        let Some(arg) = a.get(name) else { return default };
        let e = &arg.value;
        let items: Vec<&Expr> = match &e.kind {
            ExprKind::Tuple(items) if items.len() == 2 => items.iter().collect(),
            ExprKind::Tuple(_) | ExprKind::List(_) => {
                let msg =
                    format!("{name} must be an integer or a pair (h, w), found {}", describe(e));
                self.report(Diagnostic::error(e.span, msg).label("expected `3` or `(3, 5)`"));
                return None;
            }
            _ => vec![e],
        };
        let mut out = [0u16; 2];
        for (k, item) in items.iter().enumerate() {
            let v = self.int_expr(scope, item, name)?;
            if !(min..=MAX_WINDOW).contains(&v) {
                let range = if min == 0 { "non-negative" } else { "positive" };
                let msg = format!("{name} must be {range} and at most {MAX_WINDOW}, found {v}");
                self.report(Diagnostic::error(item.span, msg).label("out of range"));
                return None;
            }
            out[k] = v as u16;
        }
        if items.len() == 1 {
            out[1] = out[0];
        }
        Some(out)
    }

    /// A convolution's padding: a size, or `"same"` (stride 1, `dilation·(k − 1)` even).
    fn padding(
        &mut self,
        scope: &Scope,
        a: &Args,
        kernel: [u16; 2],
        stride: [u16; 2],
        dilation: [u16; 2],
    ) -> Option<[u16; 2]> {
        let Some(arg) = a.get("padding") else { return Some([0, 0]) };
        let ExprKind::Str(s) = &arg.value.kind else {
            return self.window_pair(scope, a, "padding", Some([0, 0]), 0);
        };
        let at = arg.value.span;
        let bad = |msg: String, label: &str| Diagnostic::error(at, msg).label(label.to_string());
        match s.as_str() {
            "valid" => return Some([0, 0]),
            "same" => {}
            other => {
                let msg =
                    format!("padding must be a size, \"same\" or \"valid\", found \"{other}\"");
                self.report(bad(msg, "unknown padding"));
                return None;
            }
        }
        if stride != [1, 1] {
            self.report(
                bad("padding = \"same\" needs stride 1".into(), "with this stride")
                    .note("PyTorch's rule: with a stride, give the padding as a size"),
            );
            return None;
        }
        let reach = [0, 1].map(|i| dilation[i] as u32 * (kernel[i] as u32 - 1));
        if reach.iter().any(|r| r % 2 == 1) {
            self.report(
                bad(
                    "padding = \"same\" with an even kernel needs more padding on one side".into(),
                    "asymmetric",
                )
                .note(
                    "nnc pads both sides equally: use an odd kernel, or give the padding as a size",
                ),
            );
            return None;
        }
        Some(reach.map(|r| (r / 2) as u16))
    }

    /// Conv2d or pooling instance `inst` applied to `x`: `[N, C, H, W]` with the channels
    /// the layer expects and a window that fits.
    pub(super) fn apply_window(&mut self, inst: &Inst, x: Arg1, call: Span) -> Option<Tv> {
        let (name, path, win, kernel_span) = match inst {
            Inst::Conv2d { name, path, win, kernel_span, .. } => {
                (name, Some(path.clone()), *win, *kernel_span)
            }
            Inst::Pool { name, win, kernel_span, .. } => (name, None, *win, *kernel_span),
            _ => return None,
        };
        let shape = self.shape(x.0.id).clone();
        let shown = self.show(&shape);
        let from = x.0.from.as_ref().map_or(String::new(), |f| format!(" from {f}"));
        let b = self.batch_name();
        let [Dim::Batch, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] = shape.dims()[..] else {
            self.report(
                Diagnostic::error(
                    x.1,
                    format!("{name} expects images [{b},C,H,W] but receives {shown}{from}"),
                )
                .label(format!("this is {shown}"))
                .note("rows of pixels become images with `reshape`, e.g. `reshape(x, [1, 8, 8])`"),
            );
            return None;
        };
        let channels = match inst {
            Inst::Conv2d { inputs, in_span, .. } if *inputs != c as usize => {
                self.report(
                    Diagnostic::error(
                        x.1,
                        format!("{name} expects {inputs} input channels but receives {c}{from}"),
                    )
                    .label(format!("this is {shown}"))
                    .secondary(
                        *in_span,
                        format!("`{name}` is declared with {inputs} input channels here"),
                    ),
                );
                return None;
            }
            Inst::Conv2d { weight, .. } => self.params[*weight as usize].shape[0] as u32,
            _ => c,
        };
        let Some((ho, wo)) = win.out_hw((h as usize, w as usize)) else {
            let [ph, pw] = win.pad;
            let reach = [0, 1].map(|i| win.dilation[i] as u32 * (win.kernel[i] as u32 - 1) + 1);
            let padded = format!("{}x{}", h + 2 * ph as u32, w + 2 * pw as u32);
            self.report(
                Diagnostic::error(
                    x.1,
                    format!(
                        "{name}'s window spans {}x{} but its input is {padded} after padding",
                        reach[0], reach[1]
                    ),
                )
                .label(format!("this is {shown}{from}"))
                .secondary(kernel_span, format!("`{name}`'s kernel is declared here")),
            );
            return None;
        };
        let out = Shape(vec![
            Dim::Batch,
            Dim::Fixed(channels),
            Dim::Fixed(ho as u32),
            Dim::Fixed(wo as u32),
        ]);
        let kind = match inst {
            Inst::Conv2d { weight, bias, .. } => {
                ValueKind::Conv2d { x: x.0.id, weight: *weight, bias: *bias, win }
            }
            Inst::Pool { pool, .. } => ValueKind::Pool { x: x.0.id, pool: *pool, win },
            _ => return None,
        };
        let id = self.push_in(kind, out, call, path);
        Some(Tv { id, from: Some(name.clone()) })
    }
}

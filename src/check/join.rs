//! The shape functions `concat`, `flatten`, `reshape`, `avg_pool2d` and `global_avg_pool`
//! (registry table `shapes`):
//!
//! ```text
//! concat(x₁, …, xₙ, axis = -1)   equal shapes except on `axis` (fixed) -> sizes summed there
//! flatten(x)                     [N, d₁, d₂, …] -> [N, d₁·d₂·…]  (rank ≥ 2, d_k fixed)
//! reshape(x, [e₁, …])            [N, d₁, …] -> [N, e₁, …]  (∏e = ∏d)
//! avg_pool2d(x, k)               [N, C, H, W] -> [N, C, H/k, W/k]  (k | H, k | W)
//! global_avg_pool(x)             [N, C, H, W] -> [N, C]
//! ```
//!
//! The pooling functions are compositions of these values: a reshape to windows and means
//! over axes, which the JIT and the interpreter already run.
//!
//! `axis` counts from the end when negative, as in torch.cat. A concatenation of `n`
//! tensors becomes a left-nested chain of `n − 1` two-operand [`ValueKind::Concat`] values.
//! Shape mistakes are reported at the tensor that does not fit, with the first tensor's
//! shape as the reference.

use super::args::{describe, number};
use super::elaborate::{Elab, Scope, Tv};
use super::exprs::Arg1;
use super::model::{ReduceFn, ValueKind};
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, Shape};
use crate::syntax::ast::{Arg, Expr, ExprKind};

const USAGE: &str = "usage: concat(a, b, ..., axis = -1)";

impl Elab<'_, '_> {
    /// `concat(...)`: binds the tensors and `axis`, checks the shapes, builds the chain.
    pub(super) fn concat(&mut self, scope: &Scope, args: &[Arg], span: Span) -> Option<Tv> {
        let mut axis: Option<&Arg> = None;
        let mut parts: Vec<Arg1> = Vec::new();
        let mut ok = true;
        for a in args {
            match &a.name {
                Some(k) if k.name == "axis" && axis.is_none() => axis = Some(a),
                Some(k) => {
                    ok = false;
                    let msg = match k.name.as_str() {
                        "axis" => "`axis` given twice".to_string(),
                        n => format!("concat has no parameter `{n}`"),
                    };
                    self.report(
                        Diagnostic::error(k.span, msg).label("not allowed here").note(USAGE),
                    );
                }
                None => match self.operand(scope, &a.value) {
                    Some(x) => parts.push(x),
                    None => ok = false,
                },
            }
        }
        if !ok {
            return None;
        }
        let Some(first) = parts.first().cloned() else {
            let d = Diagnostic::error(span, "concat needs at least one tensor").label("empty");
            self.report(d.note(USAGE));
            return None;
        };
        let s0 = self.shape(first.0.id).clone();
        let k = self.concat_axis(&first, axis)?;
        for p in &parts[1..] {
            self.concat_fits(&first, p, k)?;
        }
        if s0.0[k] == Dim::Batch {
            let b = self.batch_name();
            let at = axis.map_or(span, |a| a.value.span);
            self.report(
                Diagnostic::error(at, format!("concat cannot join along the batch axis `{b}`"))
                    .label(format!("axis {k} of {} is the batch", self.show(&s0)))
                    .note("join the examples' features instead, e.g. `concat(x, h, axis = -1)`"),
            );
            return None;
        }
        let mut acc = first.0;
        for p in &parts[1..] {
            let (sa, sb) = (self.shape(acc.id).clone(), self.shape(p.0.id).clone());
            let shape = crate::graph::indexing::concat_shape(&sa, &sb, k)?;
            let id = self.push(ValueKind::Concat { a: acc.id, b: p.0.id, axis: k }, shape, span);
            acc = Tv { id, from: None };
        }
        Some(acc)
    }

    /// The axis `concat` joins, from `axis = k` (default −1), as an index into `first`'s
    /// dims; reports a scalar first tensor or an axis out of range.
    fn concat_axis(&mut self, first: &Arg1, axis: Option<&Arg>) -> Option<usize> {
        let s = self.shape(first.0.id).clone();
        let shown = self.show(&s);
        let rank = s.rank() as i64;
        if rank == 0 {
            self.report(
                Diagnostic::error(
                    first.1,
                    "concat joins tensors along an axis, but this is a scalar",
                )
                .label("this is []")
                .note("give the axis by name: `concat(a, b, axis = 1)`"),
            );
            return None;
        }
        let Some(arg) = axis else { return Some(s.rank() - 1) };
        match number(&arg.value) {
            Some(n) if n.int && n.value >= -(rank as f64) && n.value < rank as f64 => {
                let v = n.value as i64;
                Some(if v < 0 { (v + rank) as usize } else { v as usize })
            }
            found => {
                let found = found.map_or_else(|| describe(&arg.value), |n| n.show());
                self.report(
                    Diagnostic::error(
                        arg.value.span,
                        format!(
                            "axis must be an integer from {} to {} for {shown}, found {found}",
                            -rank,
                            rank - 1
                        ),
                    )
                    .label("invalid axis")
                    .secondary(first.1, format!("this is {shown}")),
                );
                None
            }
        }
    }

    /// `p` has `first`'s rank and dims except on axis `k`.
    fn concat_fits(&mut self, first: &Arg1, p: &Arg1, k: usize) -> Option<()> {
        let (s0, s) = (self.shape(first.0.id).clone(), self.shape(p.0.id).clone());
        let (v0, v) = (self.show(&s0), self.show(&s));
        let msg = if s.rank() != s0.rank() {
            format!("concat needs tensors of the same rank, but {v0} and {v} differ")
        } else if let Some(j) = (0..s.rank()).find(|&j| j != k && s.0[j] != s0.0[j]) {
            format!("concat along axis {k} needs equal sizes on the other axes: {v0} and {v} differ on axis {j}")
        } else {
            return Some(());
        };
        self.report(
            Diagnostic::error(p.1, msg)
                .label(format!("this is {v}"))
                .secondary(first.1, format!("this is {v0}"))
                .note(format!("only axis {k} may differ: [a, n] and [a, m] give [a, n+m]")),
        );
        None
    }

    /// `flatten(x)`: `[N, d₁, …]` to `[N, ∏d]`.
    pub(super) fn flatten(&mut self, x: Arg1, span: Span) -> Option<Tv> {
        let s = self.shape(x.0.id).clone();
        let shown = self.show(&s);
        let rest = s.0.get(1..).unwrap_or(&[]);
        let size = rest.iter().try_fold(1u64, |acc, d| match d {
            Dim::Fixed(n) => acc.checked_mul(*n as u64).filter(|&p| p <= i32::MAX as u64),
            Dim::Batch => None,
        });
        let problem = match size {
            _ if s.rank() < 2 => "flatten needs at least two dimensions",
            None if rest.contains(&Dim::Batch) => {
                "flatten keeps the first axis: the batch must come first"
            }
            None => "flatten would make an axis too large",
            Some(_) => "",
        };
        if !problem.is_empty() {
            self.report(
                Diagnostic::error(x.1, format!("{problem}, but this is {shown}"))
                    .label(format!("this is {shown}"))
                    .note("flatten(x) turns [N, d1, d2, ...] into [N, d1 * d2 * ...]"),
            );
            return None;
        }
        let shape = Shape(vec![s.0[0], Dim::Fixed(size.unwrap_or(1) as u32)]);
        Some(Tv { id: self.push(ValueKind::Reshape(x.0.id), shape, span), from: x.0.from })
    }

    /// The image input of a pooling function: `[N, C, H, W]`, or `None` after saying why.
    fn image(&mut self, name: &str, x: &Arg1) -> Option<[u32; 3]> {
        let s = self.shape(x.0.id).clone();
        match s.0.as_slice() {
            [Dim::Batch, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] => Some([*c, *h, *w]),
            _ => {
                let shown = self.show(&s);
                self.report(
                    Diagnostic::error(
                        x.1,
                        format!("{name} takes images [N, C, H, W], but this is {shown}"),
                    )
                    .label(format!("this is {shown}"))
                    .note("reshape(x, [C, H, W]) makes images of feature rows"),
                );
                None
            }
        }
    }

    /// The mean over axis `axis` of `x` (removed), as `mean(x, axis = …)` makes it.
    fn mean_over(&mut self, x: Tv, axis: usize, span: Span) -> Tv {
        let out = super::shapes::reduce(&self.shape(x.id).clone(), Some(axis));
        let kind = ValueKind::Reduce { op: ReduceFn::Mean, x: x.id, axis: Some(axis) };
        Tv { id: self.push(kind, out, span), from: None }
    }

    /// `avg_pool2d(x, k)`: `[N, C, H, W]` viewed as `[N, C, H/k, k, W/k, k]`, averaged over
    /// its axes 5 and 3: the mean of each k×k window at stride k.
    pub(super) fn avg_pool2d(
        &mut self,
        scope: &Scope,
        x: Arg1,
        k: &Expr,
        span: Span,
    ) -> Option<Tv> {
        let [c, h, w] = self.image("avg_pool2d", &x)?;
        let k_span = k.span;
        let k = self.size_expr(scope, k, "a pooling kernel")?;
        if h % k != 0 || w % k != 0 {
            let shown = self.show(&self.shape(x.0.id).clone());
            self.report(
                Diagnostic::error(k_span, format!("a {k}x{k} pooling window does not tile {h}x{w} images"))
                    .label("kernel (and stride)")
                    .secondary(x.1, format!("this is {shown}"))
                    .note("avg_pool2d pools at stride = kernel without padding: H and W must be multiples of the kernel"),
            );
            return None;
        }
        let windows = Shape(
            [
                Dim::Batch,
                Dim::Fixed(c),
                Dim::Fixed(h / k),
                Dim::Fixed(k),
                Dim::Fixed(w / k),
                Dim::Fixed(k),
            ]
            .to_vec(),
        );
        let v = Tv { id: self.push(ValueKind::Reshape(x.0.id), windows, span), from: x.0.from };
        let v = self.mean_over(v, 5, span);
        Some(self.mean_over(v, 3, span))
    }

    /// `global_avg_pool(x)`: `[N, C, H, W]` averaged over W, then H: `[N, C]`.
    pub(super) fn global_avg_pool(&mut self, x: Arg1, span: Span) -> Option<Tv> {
        self.image("global_avg_pool", &x)?;
        let v = self.mean_over(x.0, 3, span);
        Some(self.mean_over(v, 2, span))
    }

    /// `reshape(x, [d₁, …])`: `[N, …]` to `[N, d₁, …]`, the same number of values per example.
    pub(super) fn reshape(
        &mut self,
        scope: &Scope,
        x: Arg1,
        dims: &Expr,
        span: Span,
    ) -> Option<Tv> {
        let s = self.shape(x.0.id).clone();
        let shown = self.show(&s);
        let ExprKind::List(items) = &dims.kind else {
            let d = Diagnostic::error(dims.span, "reshape takes the per-example shape as a list")
                .label(format!("found {}", describe(dims)))
                .note("e.g. reshape(x, [1, 8, 8]) turns [N, 64] into [N, 1, 8, 8]");
            self.report(d);
            return None;
        };
        let mut new = Vec::with_capacity(items.len());
        for e in items {
            new.push(self.size_expr(scope, e, "a reshape size")?);
        }
        let per = |d: &[Dim]| {
            d.iter().try_fold(1u64, |acc, d| match d {
                Dim::Fixed(n) => acc.checked_mul(*n as u64),
                Dim::Batch => None,
            })
        };
        let have = (s.rank() >= 1 && s.0[0] == Dim::Batch).then(|| per(&s.0[1..])).flatten();
        let want = new.iter().try_fold(1u64, |acc, &n| acc.checked_mul(n as u64));
        if have.is_none() || have != want {
            let msg = match have {
                None => format!("reshape keeps the batch axis first, but this is {shown}"),
                Some(h) => format!(
                    "reshape to {} needs {} values per example, but {shown} has {h}",
                    self.show(&Shape(
                        [vec![Dim::Batch], new.iter().map(|&n| Dim::Fixed(n)).collect()].concat()
                    )),
                    want.map_or("too many".into(), |w| w.to_string()),
                ),
            };
            self.report(
                Diagnostic::error(dims.span, msg)
                    .label("this shape")
                    .secondary(x.1, format!("this is {shown}")),
            );
            return None;
        }
        let shape = Shape([vec![Dim::Batch], new.into_iter().map(Dim::Fixed).collect()].concat());
        Some(Tv { id: self.push(ValueKind::Reshape(x.0.id), shape, span), from: x.0.from })
    }
}

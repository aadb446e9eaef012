//! Normalization layers: their declaration (`LayerNorm(d)`, `BatchNorm(d)`,
//! `GroupNorm(groups, d)`: sizes, `eps`, `momentum`, `affine`, PyTorch's parameter and buffer
//! names) and the shape rule of a call.
//!
//! | layer     | input        | parameters (affine)            | buffers                                          |
//! |-----------|--------------|--------------------------------|--------------------------------------------------|
//! | LayerNorm | `[..., d]`   | `weight` [d] = 1, `bias` [d] = 0 | none                                           |
//! | BatchNorm | `[N, d]`     | `weight` [d] = 1, `bias` [d] = 0 | `running_mean` [d] = 0, `running_var` [d] = 1, `num_batches_tracked` [] = 0 |
//! | GroupNorm | `[N, d]`     | `weight` [d] = 1, `bias` [d] = 0 | none                                           |
//!
//! Invariants: `eps > 0`, `0 <= momentum <= 1`, `groups` divides `d`; a BatchNorm's three
//! buffers are consecutive in [`Model::buffers`](super::Model::buffers), in that order.

use super::args::{Args, Rule};
use super::elaborate::{Elab, Inst, Scope};
use super::exprs::Arg1;
use super::model::{BufferDef, Init, Norm, ParamDef};
use super::registry::{self, LAYERS};
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, Shape};
use crate::syntax::ast::Arg;

/// Most elements of all buffers together (running statistics are allocated at run time).
const MAX_BUFFER_ELEMS: usize = 1 << 31;

impl<'a> Elab<'a, '_> {
    /// Declares the normalization layer `kind` called with `args`.
    pub(super) fn norm_layer(
        &mut self,
        scope: &Scope,
        kind: &str,
        args: &[Arg],
        span: Span,
        name: &str,
        path: String,
    ) -> Option<Inst<'a>> {
        let b = registry::find(LAYERS, kind)?;
        let mut a = Args::bind(b, args, span, self.diags)?;
        let d_arg = a.get("d")?;
        let d = self.size_expr(scope, &d_arg.value, &format!("{kind}'s feature count"));
        let groups =
            a.get("groups").map(|g| self.size_expr(scope, &g.value, "the number of groups"));
        let eps = a.num("eps", 1e-5, Rule::Positive);
        let momentum = a.num("momentum", 0.1, Rule::Unit);
        let affine = a.boolean("affine", true);
        let failed = !a.errors.is_empty();
        let errors = std::mem::take(&mut a.errors);
        self.diags.extend(errors);
        let d = d? as usize;
        if failed {
            return None;
        }
        let norm = match (kind, groups) {
            ("LayerNorm", _) => Norm::Layer { eps },
            ("BatchNorm" | "BatchNorm2d", _) => {
                Norm::Batch { eps, momentum, buffer: self.buffers.len() as u32 }
            }
            (_, Some(groups)) => {
                let groups = groups?;
                if !d.is_multiple_of(groups as usize) {
                    let at = a.get("groups").map_or(span, |g| g.value.span);
                    self.report(
                        Diagnostic::error(
                            at,
                            format!("{d} features do not split into {groups} equal groups"),
                        )
                        .label("the number of groups must divide the feature count")
                        .secondary(d_arg.value.span, format!("{d} features")),
                    );
                    return None;
                }
                Norm::Group { groups, eps }
            }
            _ => return None,
        };
        let (weight, bias) = match affine {
            true => {
                let w = self.norm_param(&path, "weight", d, Init::Ones, span)?;
                (Some(w), Some(self.norm_param(&path, "bias", d, Init::Zeros, span)?))
            }
            false => (None, None),
        };
        if let Norm::Batch { .. } = norm {
            self.add_buffer(&path, "running_mean", vec![d], 0.0, span)?;
            self.add_buffer(&path, "running_var", vec![d], 1.0, span)?;
            self.add_buffer(&path, "num_batches_tracked", vec![], 0.0, span)?;
        }
        let d_span = d_arg.value.span;
        let (name, images) = (name.to_string(), kind == "BatchNorm2d");
        Some(Inst::Norm { name, path, norm, d, weight, bias, d_span, images })
    }

    fn norm_param(&mut self, path: &str, p: &str, d: usize, init: Init, span: Span) -> Option<u32> {
        let name = format!("{path}.{p}");
        self.add_param(ParamDef { name, shape: vec![d], init, fan_in: d, fan_out: d, span })
    }

    fn add_buffer(
        &mut self,
        path: &str,
        b: &str,
        shape: Vec<usize>,
        init: f64,
        span: Span,
    ) -> Option<()> {
        let total: usize = self.buffers.iter().map(|b| b.shape.iter().product::<usize>()).sum();
        if total + shape.iter().product::<usize>() > MAX_BUFFER_ELEMS {
            self.limit(span, &format!("more than {MAX_BUFFER_ELEMS} running statistics"));
            return None;
        }
        self.buffers.push(BufferDef { name: format!("{path}.{b}"), shape, init, span });
        Some(())
    }

    /// The output shape of normalization layer `name` (`norm` over `d` features) applied to
    /// `x`, which must be `[N, d]` (`[..., d]` for LayerNorm, `[N, d, H, W]` with `images`,
    /// either for GroupNorm); reports the mismatch.
    pub(super) fn norm_shape(
        &mut self,
        name: &str,
        (norm, images): (&Norm, bool),
        d: usize,
        d_span: Span,
        x: &Arg1,
    ) -> Option<Shape> {
        let shape = self.shape(x.0.id).clone();
        let channels = shape.0.get(1) == Some(&Dim::Fixed(d as u32));
        let fits = match norm {
            Norm::Layer { .. } => shape.0.last() == Some(&Dim::Fixed(d as u32)),
            Norm::Group { .. } => channels && matches!(shape.rank(), 2 | 4),
            Norm::Batch { .. } => channels && shape.rank() == if images { 4 } else { 2 },
        };
        if fits {
            return Some(shape);
        }
        let b = self.batch_name();
        let want = match norm {
            Norm::Layer { .. } => format!("a last dimension of {d}"),
            Norm::Group { .. } => format!("[{b},{d}] or [{b},{d},H,W]"),
            Norm::Batch { .. } if images => format!("[{b},{d},H,W]"),
            Norm::Batch { .. } => format!("[{b},{d}]"),
        };
        let s = self.show(&shape);
        let from = x.0.from.as_ref().map_or(String::new(), |f| format!(" from {f}"));
        let mut e = Diagnostic::error(x.1, format!("{name} expects {want} but receives {s}{from}"))
            .label(format!("this is {s}"))
            .secondary(d_span, format!("`{name}` is declared with {d} features here"));
        let c = shape.0.get(1).map_or(String::new(), |c| c.to_string());
        match (norm, images, shape.rank()) {
            (Norm::Batch { .. }, false, 4) => {
                e = e.note(format!("images [N, C, H, W] take `BatchNorm2d({c})`"));
            }
            (Norm::Batch { .. }, true, 2) => {
                e = e.note(format!("feature rows [N, d] take `BatchNorm({c})`"));
            }
            _ => {}
        }
        self.report(e);
        None
    }
}

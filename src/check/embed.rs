//! The `Embedding(num -> dim, init = normal(0, 1))` layer [torch.nn.Embedding]: its
//! declaration (parameter `weight [num, dim]`, initialized `N(0, 1)` like PyTorch unless
//! `init =` says otherwise) and its application to integer ids:
//!
//! ```text
//! input tok: class[B, T] of V          ids, V <= num
//! emb(tok): [B, T, dim]                emb(tok)[b, t, :] = weight[tok[b, t], :]
//! ```
//!
//! Ids are inputs declared with a class type (`class[B] of V`, `class[B, T] of V`): only an
//! Embedding may read them as numbers. Invariant: the ids' range `V` fits the table, so an
//! id the data loader accepted (an integer in `0..V`) is always a row of the table.

use super::args::Args;
use super::declare::lsuv_misplaced;
use super::elaborate::{Elab, Inst, Scope, Tv};
use super::exprs::Arg1;
use super::init::init_spec;
use super::model::{Init, ParamDef, ValueKind};
use super::registry::{self, LAYERS};
use super::shapes::fans;
use crate::diagnostic::{Diagnostic, Span};
use crate::graph::{Dim, InputKind};
use crate::syntax::ast::Arg;

impl<'a> Elab<'a, '_> {
    /// Declares `name = Embedding(...)` with parameter `path.weight`.
    pub(super) fn embedding(
        &mut self,
        scope: &Scope,
        args: &[Arg],
        span: Span,
        name: &str,
        path: String,
    ) -> Option<Inst<'a>> {
        let b = registry::find(LAYERS, "Embedding")?;
        let a = Args::bind(b, args, span, self.diags)?;
        let sizes = a.get("num -> dim")?;
        let example = "e.g. `emb = Embedding(50 -> 8)`: 50 ids, each a vector of 8";
        let (from, to) = self.arrow(&sizes.value, "Embedding", "num -> dim", example)?;
        let num = self.size_expr(scope, from, "Embedding's number of ids");
        let dim = self.size_expr(scope, to, "Embedding's dimension");
        let init = a.get("init").map(|x| (init_spec(&x.value, self.diags), x.value.span));
        let (num, dim) = (num? as usize, dim? as usize);
        let wpath = format!("{path}.weight");
        let init = match init {
            None => Init::Normal { mean: 0.0, std: 1.0 },
            Some((i, at)) => {
                let i = i?;
                self.init_fits(&i, &[num, dim], at, &wpath)?;
                if i == Init::Lsuv {
                    self.report(lsuv_misplaced(at, "an Embedding"));
                    return None;
                }
                i
            }
        };
        let (fan_in, fan_out) = fans(&[num, dim]);
        let def = ParamDef { name: wpath, shape: vec![num, dim], init, fan_in, fan_out, span };
        let weight = self.add_param(def)?;
        let (name, num_span) = (name.to_string(), from.span);
        Some(Inst::Embedding { name, path, num, dim, weight, num_span })
    }

    /// Embedding instance `inst` applied to `x`, which must be ids `class[N...] of V` with
    /// `V <= num`: `[N..., dim]`.
    pub(super) fn embed(&mut self, inst: &Inst, x: Arg1, call: Span) -> Option<Tv> {
        let Inst::Embedding { name, path, num, dim, weight, num_span, .. } = inst else {
            return None;
        };
        let shape = self.shape(x.0.id).clone();
        let shown = self.show(&shape);
        let Some(input) = self.class_input(&x.0) else {
            let from = x.0.from.as_ref().map_or(String::new(), |f| format!(" from {f}"));
            let b = self.batch_name();
            self.report(
                Diagnostic::error(
                    x.1,
                    format!("{name} looks up integer ids, but receives real values {shown}{from}"),
                )
                .label(format!("this is {shown}, not ids"))
                .note(format!(
                    "declare the ids as an input of class type, e.g. `input tok: class[{b}, 4] of {num}`"
                )),
            );
            return None;
        };
        let v = match self.inputs[input as usize].kind {
            InputKind::Classes(v) => v as usize,
            _ => 0,
        };
        if v > *num {
            let at = self.inputs[input as usize].span;
            let iname = self.inputs[input as usize].name.clone();
            self.report(
                Diagnostic::error(
                    x.1,
                    format!("{name} has {num} rows but `{iname}` holds ids up to {}", v - 1),
                )
                .label(format!("ids in 0..{v}"))
                .secondary(*num_span, format!("`{name}` is declared with {num} ids here"))
                .secondary(at, format!("`{iname}` declared here")),
            );
            return None;
        }
        let mut out = shape.clone();
        out.0.push(Dim::Fixed(*dim as u32));
        let kind = ValueKind::Embedding { ids: x.0.id, weight: *weight };
        let id = self.push_in(kind, out, call, Some(path.clone()));
        Some(Tv { id, from: Some(name.clone()) })
    }
}

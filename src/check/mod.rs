//! `check`: from the syntax tree to a typed, resolved, shape-checked [`Model`].
//!
//! ```text
//! ast::File ─ items (one model, layers by name, at most one optimizer/schedule/clip/train)
//!           ─ resolve (names in scope order, duplicates, kinds of names; no shapes)
//!           ─ hyper (optimizer, schedule, clip, train settings, data spec)
//!           ─ elaborate (instances and their parameters, inlined layers, shapes, loss)
//!           ─ data fit (the data set matches the model's input and label)
//! ```
//!
//! Every stage reports all the independent mistakes it finds; elaboration runs only on a
//! program whose names resolve, so it never reports an error twice. The result is either a
//! complete [`Model`] or a non-empty list of diagnostics, deduplicated and in source order.
//! No input makes `check` panic.
pub mod model;
pub mod registry;
pub mod resolve;
pub mod shapes;
pub use model::*;

mod args;
mod conv;
mod declare;
mod elaborate;
mod embed;
mod exprs;
mod hyper;
mod init;
mod join;
mod losses;
mod norms;
mod optim;
mod penalty;
mod sched;
mod suggest;
#[cfg(test)]
mod tests;

use crate::diagnostic::{Diagnostic, Result, Span};
use crate::syntax::ast::{self, Arg, Expr, Item, LayerDecl, ModelDecl};
use std::collections::HashSet;

/// What the checked model is for: training needs an `optimizer`; evaluating, predicting and
/// computing gradients do not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Purpose {
    #[default]
    Train,
    /// A file without an `optimizer` is accepted: its model gets a stand-in (plain SGD with
    /// learning rate 0, [`optim::stand_in`]) so that every stage can be built, and commands of
    /// this purpose never use its update (`nnc line` runs the step for batch norm's statistics
    /// and sets the parameters back).
    Evaluate,
}

/// Checks a parsed file for training: names, layers, shapes and hyper-parameters.
pub fn check(file: &ast::File) -> Result<Model> {
    check_for(file, Purpose::Train)
}

/// [`check`] for `purpose`.
pub fn check_for(file: &ast::File, purpose: Purpose) -> Result<Model> {
    let mut diags = Vec::new();
    let items = Items::collect(file, purpose, &mut diags);
    let before_resolve = diags.len();
    resolve::resolve(&items, &mut diags);
    let names_ok = diags.len() == before_resolve;
    let mut hyper = hyper::check_hyper(&items, &mut diags);
    if items.optimizer.is_none() && purpose == Purpose::Evaluate {
        hyper.optimizer = Some(optim::stand_in());
    }
    let mut model = None;
    if let (Some(decl), true) = (items.model, names_ok) {
        if let Some(parts) = elaborate::elaborate(&items, decl, &mut diags) {
            if let Some(data) = &hyper.train.data {
                hyper::check_data_fit(data, &parts.inputs, &parts.batch, &mut diags);
            }
            if let Some(o) = hyper.optimizer.as_mut() {
                optim::resolve_groups(o, items.groups, &parts.params, &mut diags);
            }
            model = Some(parts);
        }
    }
    match (model, hyper.optimizer) {
        (Some(m), Some(optimizer)) if diags.is_empty() => Ok(Model {
            name: m.name,
            inputs: m.inputs,
            params: m.params,
            buffers: m.buffers,
            values: m.values,
            loss: m.loss,
            metrics: m.metrics,
            optimizer,
            schedule: hyper.schedule,
            clip: hyper.clip,
            train: hyper.train,
        }),
        _ => Err(finish(diags)),
    }
}

/// Deduplicates (inlined layer bodies may report the same mistake per copy) and sorts by
/// position. Never empty: a failed check always says why.
fn finish(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::new();
    let mut out: Vec<Diagnostic> =
        diags.into_iter().filter(|d| seen.insert(format!("{d:?}"))).collect();
    out.sort_by_key(|d| d.primary.span.start);
    if out.is_empty() {
        out.push(Diagnostic::error(Span::default(), "the model could not be checked"));
    }
    out
}

/// The top-level items of a file, sorted by kind. Duplicates are reported and dropped (the
/// first one wins), so later stages see at most one of each.
pub(crate) struct Items<'a> {
    pub model: Option<&'a ModelDecl>,
    pub layers: Vec<&'a LayerDecl>,
    pub optimizer: Option<&'a Expr>,
    /// The optimizer's parameter groups, as written (empty without an optimizer).
    pub groups: &'a [ast::Group],
    pub schedule: Option<(&'a [Expr], Span)>,
    pub clip: Option<&'a Expr>,
    pub train: Option<(&'a [Arg], Span)>,
}

impl<'a> Items<'a> {
    fn collect(file: &'a ast::File, purpose: Purpose, diags: &mut Vec<Diagnostic>) -> Items<'a> {
        let mut items = Items {
            model: None,
            layers: Vec::new(),
            optimizer: None,
            groups: &[],
            schedule: None,
            clip: None,
            train: None,
        };
        let mut firsts: [Option<Span>; 5] = [None; 5];
        for item in &file.items {
            let (slot, what, span) = match item {
                Item::Model(m) => (0, "model", m.name.span),
                Item::Optimizer { span, .. } => (1, "optimizer", *span),
                Item::Schedule { span, .. } => (2, "schedule", *span),
                Item::Clip { span, .. } => (3, "clip", *span),
                Item::Train { span, .. } => (4, "train", *span),
                Item::Layer(l) => {
                    items.add_layer(l, diags);
                    continue;
                }
            };
            if let Some(first) = firsts[slot] {
                diags.push(
                    Diagnostic::error(span, format!("more than one `{what}` in this file"))
                        .label("second one here")
                        .secondary(first, "first one here")
                        .note(if slot == 0 {
                            "a file describes exactly one model".to_string()
                        } else {
                            format!("a file has at most one `{what}`, which applies to its model")
                        }),
                );
                continue;
            }
            firsts[slot] = Some(span);
            match item {
                Item::Model(m) => items.model = Some(m),
                Item::Optimizer { spec, groups, .. } => {
                    items.optimizer = Some(spec);
                    items.groups = groups;
                }
                Item::Schedule { parts, span } => items.schedule = Some((parts, *span)),
                Item::Clip { spec, .. } => items.clip = Some(spec),
                Item::Train { settings, span } => items.train = Some((settings, *span)),
                Item::Layer(_) => {}
            }
        }
        if items.model.is_none() {
            diags.push(
                Diagnostic::error(Span::default(), "this file has no `model`")
                    .note("declare one: `model Name { input x: [B, 2] ... loss = ... }`"),
            );
        }
        if items.optimizer.is_none() && items.model.is_some() && purpose == Purpose::Train {
            let at = items.model.map_or(Span::default(), |m| m.name.span);
            diags.push(
                Diagnostic::error(at, "no `optimizer` for this model")
                    .label("this model needs an optimizer to train")
                    .note("add one, e.g. `optimizer sgd(lr = 0.1)` or `optimizer adam(lr = 1e-3)`"),
            );
        }
        items
    }

    fn add_layer(&mut self, l: &'a LayerDecl, diags: &mut Vec<Diagnostic>) {
        if registry::find(registry::LAYERS, &l.name.name).is_some() {
            diags.push(
                Diagnostic::error(l.name.span, format!("`{}` is a built-in layer", l.name.name))
                    .label("choose another name for this layer"),
            );
        } else if let Some(first) = self.layer(&l.name.name) {
            diags.push(
                Diagnostic::error(l.name.span, format!("layer `{}` is defined twice", l.name.name))
                    .label("second definition")
                    .secondary(first.name.span, "first defined here"),
            );
        } else {
            self.layers.push(l);
        }
    }

    /// The user-defined layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&'a LayerDecl> {
        self.layers.iter().copied().find(|l| l.name.name == name)
    }

    /// Every layer name in scope: the built-in ones, then the user's.
    pub fn layer_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = registry::names(registry::LAYERS).collect();
        v.extend(self.layers.iter().map(|l| l.name.name.as_str()));
        v
    }
}

//! Probes: extra scalar outputs of the training step that show, every step, how each layer
//! behaves — the direct view of exploding and vanishing gradients (`nnc train --log-layers`).
//!
//! | output                 | value                                        | added by                 |
//! |------------------------|----------------------------------------------|--------------------------|
//! | `act_mean.<layer>`     | mean of the layer's output over the batch     | [`Activations`] (lower)  |
//! | `act_var.<layer>`      | its variance (biased, over all elements)      | [`Activations`] (lower)  |
//! | `grad_norm.<param>`    | `‖∇θ‖₂` of the loss, before clipping          | [`add_param_norms`]      |
//! | `weight_norm.<param>`  | `‖θ‖₂` at the start of the step               | [`add_param_norms`]      |
//!
//! Layers are the outputs of `Dense` and normalization layers, named by their `state_dict`
//! path (`fc1`, `blocks.3.fc2`); a layer applied twice is recorded at its first application.
//!
//! Invariants: probes are only ever added after the graph's other outputs (`loss`, the
//! metrics), so a step's outputs are `loss`, the metrics, then the probes, and a graph
//! compiled without probes is exactly the one compiled before they existed: normal training
//! pays nothing. No probe name starts with `grad.`, so `update::step` keeps them.

use std::collections::HashSet;

use crate::check::{Value, ValueKind};
use crate::graph::{Graph, Meta, NodeId, Role, UnaryOp};

/// The prefixes of probe output names, in the order their columns are written.
pub const PREFIXES: [&str; 4] = ["act_mean.", "act_var.", "grad_norm.", "weight_norm."];

/// True if the output called `name` is a probe.
pub fn is_probe(name: &str) -> bool {
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Activation statistics collected while lowering, added as outputs at the end.
#[derive(Debug, Default)]
pub struct Activations {
    seen: HashSet<String>,
    outputs: Vec<(String, NodeId)>,
}

impl Activations {
    /// Records the statistics of `node` (the lowering of `v`) if `v` is a layer's output.
    pub fn record(&mut self, g: &mut Graph, v: &Value, node: NodeId) {
        let layer_output = matches!(
            v.kind,
            ValueKind::Dense { .. }
                | ValueKind::WeightNormDense { .. }
                | ValueKind::Conv2d { .. }
                | ValueKind::Norm { .. }
        );
        let Some(layer) = v.layer.as_ref().filter(|_| layer_output) else { return };
        if !self.seen.insert(layer.clone()) {
            return;
        }
        // mean = Σx/n, var = Σ(x − mean)²/n over every element
        let shape = g.shape(node).clone();
        let mean = g.mean_all(node);
        let mb = g.broadcast(mean, &shape);
        let centered = g.sub(node, mb);
        let sq = g.unary(UnaryOp::Square, centered);
        let var = g.mean_all(sq);
        self.outputs.push((format!("act_mean.{layer}"), mean));
        self.outputs.push((format!("act_var.{layer}"), var));
    }

    /// Adds the recorded statistics as outputs, in forward order.
    pub fn add_outputs(self, g: &mut Graph) {
        for (name, node) in self.outputs {
            g.add_output_as(Role::Probe, name, node);
        }
    }
}

/// Adds `grad_norm.<p>` (from the gradient outputs of `autodiff::backward`) and
/// `weight_norm.<p>` outputs for every parameter, in parameter order.
pub fn add_param_norms(g: &mut Graph) {
    let saved = std::mem::take(&mut g.origin);
    let names: Vec<String> = g.params.iter().map(|p| p.name.clone()).collect();
    let mut norms = Vec::new();
    for (i, name) in names.iter().enumerate() {
        g.origin = Meta { note: Some(format!("probe {name}").into()), ..Meta::default() };
        if let Some(k) = g.output_of(Role::Grad(i as u32)) {
            let d = g.outputs[k].node;
            norms.push((format!("grad_norm.{name}"), norm(g, d)));
        }
        let theta = g.param(i as u32);
        norms.push((format!("weight_norm.{name}"), norm(g, theta)));
    }
    norms.sort_by_key(|(n, _)| !n.starts_with("grad_norm."));
    for (name, node) in norms {
        g.add_output_as(Role::Probe, name, node);
    }
    g.origin = saved;
}

/// `√(Σ x²)`, a scalar.
fn norm(g: &mut Graph, x: NodeId) -> NodeId {
    let sq = g.unary(UnaryOp::Square, x);
    let s = g.sum_all(sq);
    g.unary(UnaryOp::Sqrt, s)
}

//! IR optimization passes: constant folding ([`fold`]), algebraic simplification
//! ([`simplify`]) and numerically stable rewrites ([`stabilize`]), run to a fixpoint by
//! [`optimize`]. Dead-code and common-subexpression elimination are not passes of their own:
//! every pass rebuilds the graph with [`Graph::rebuild`], which drops dead nodes and interns
//! identical ones, and [`Graph::compact`] is the identity rebuild.
//!
//! Each pass is a table of named [`Rule`]s, one line per rule with its math in `doc`. While
//! rebuilding, every live node is offered to the rules in table order with its operands already
//! mapped (and rewritten) into the new graph, so a rule inspects `g.node(arg).op` to match
//! multi-node patterns. The first rule returning `Some` replaces the node; otherwise the node
//! is copied unchanged.
//!
//! Invariants every rule keeps (the first is checked):
//! - the replacement has exactly the shape of the node it replaces;
//! - it computes the same values in real arithmetic (floating-point rounding may differ;
//!   the one documented exception is `x·0 → 0`, which assumes a finite `x`, as every ML
//!   compiler does);
//! - it never increases the number of rule matches forever: [`optimize`] is bounded anyway.
//!
//! A pass applies its rules once per node: a node a rule creates is not offered to the rules
//! again in the same pass. [`optimize`] repeats the passes until none fires. The public pass
//! functions compact their result (a rule may leave the nodes it bypassed dead).

pub mod fold;
pub mod simplify;
pub mod stabilize;

use crate::graph::{BinaryOp, Graph, Node, NodeId, Op, UnaryOp};

/// One named rewrite. `apply(g, node, args)` sees the old `node` (its op and shape) and its
/// operands `args`, which are already nodes of the new graph `g`; it returns a node of `g`
/// with `node`'s shape standing for it, or `None` if the rule does not match.
pub struct Rule {
    /// Short kebab-case name, unique across all passes (shown by `nnc ir --stage opt`).
    pub name: &'static str,
    /// The rewrite in math, e.g. `x + 0 → x`.
    pub doc: &'static str,
    pub apply: fn(&mut Graph, &Node, &[NodeId]) -> Option<NodeId>,
}

/// How many times each rule fired, as `(rule name, count)` in order of first firing.
pub type Fired = Vec<(&'static str, usize)>;

/// Most rounds [`optimize`] runs; each round is fold, simplify, stabilize.
pub const MAX_ROUNDS: usize = 8;

/// Every pass, in the order [`optimize`] runs them, with its rule table.
pub const PASSES: &[(&str, &[Rule])] =
    &[("fold", fold::FOLD), ("simplify", simplify::SIMPLIFY), ("stabilize", stabilize::STABILIZE)];

/// Constant folding: see [`fold::FOLD`].
pub fn fold(g: &Graph) -> Graph {
    rewrite(g, fold::FOLD, &mut Fired::new()).compact()
}

/// Algebraic simplification: see [`simplify::SIMPLIFY`].
pub fn simplify(g: &Graph) -> Graph {
    rewrite(g, simplify::SIMPLIFY, &mut Fired::new()).compact()
}

/// Numerically stable rewrites: see [`stabilize::STABILIZE`].
pub fn stabilize(g: &Graph) -> Graph {
    rewrite(g, stabilize::STABILIZE, &mut Fired::new()).compact()
}

/// All passes to a fixpoint (at most [`MAX_ROUNDS`] rounds), then compacted.
pub fn optimize(g: &Graph) -> Graph {
    optimize_with_log(g).0
}

/// [`optimize`], also returning how often each rule fired over all rounds.
/// Does not reorder or fuse nodes into kernels (that is the backend's job).
pub fn optimize_with_log(g: &Graph) -> (Graph, Fired) {
    let mut fired = Fired::new();
    // Every rewrite rebuilds, so the input needs no compaction of its own; a round where
    // no rule fired leaves nothing dead, so only a round cut short needs one after.
    let mut g = std::borrow::Cow::Borrowed(g);
    for _ in 0..MAX_ROUNDS {
        let before: usize = fired.iter().map(|f| f.1).sum();
        for (_, rules) in PASSES {
            g = std::borrow::Cow::Owned(rewrite(&g, rules, &mut fired));
        }
        if fired.iter().map(|f| f.1).sum::<usize>() == before {
            return (g.into_owned(), fired);
        }
    }
    (g.compact(), fired)
}

/// Rebuilds `g`, offering each live node to `rules` in order and counting firings in `fired`.
/// Panics if a rule changes a node's shape (a compiler bug).
pub fn rewrite(g: &Graph, rules: &[Rule], fired: &mut Fired) -> Graph {
    g.rebuild(|new, node, args| {
        for rule in rules {
            if let Some(id) = (rule.apply)(new, node, &args) {
                assert_eq!(new.shape(id), &node.shape, "rule {} changed a shape", rule.name);
                record(fired, rule.name);
                return id;
            }
        }
        new.add(node.op, args, node.shape.clone())
    })
}

/// The rule called `name`, in any pass.
pub fn find_rule(name: &str) -> Option<&'static Rule> {
    PASSES.iter().flat_map(|p| p.1.iter()).find(|r| r.name == name)
}

/// One line per fired rule, `name ×count: doc`, in the order of `fired`.
pub fn log_text(fired: &Fired) -> String {
    let doc = |name: &str| find_rule(name).map_or("", |r| r.doc);
    fired.iter().map(|(name, n)| format!("{name} ×{n}: {}\n", doc(name))).collect()
}

fn record(fired: &mut Fired, name: &'static str) {
    match fired.iter_mut().find(|f| f.0 == name) {
        Some(f) => f.1 += 1,
        None => fired.push((name, 1)),
    }
}

// ---- pattern helpers shared by the rule tables ----------------------------------------

/// The value of a `Const` node.
pub(crate) fn constant(g: &Graph, id: NodeId) -> Option<f64> {
    match g.node(id).op {
        Op::Const(c) => Some(c.get()),
        _ => None,
    }
}

/// True if `id` is a `Const` node holding exactly `v`.
pub(crate) fn is_const(g: &Graph, id: NodeId, v: f64) -> bool {
    constant(g, id) == Some(v)
}

/// The operand of `id` if `id` is `op(x)` for a single-operand `op`.
pub(crate) fn arg_if(g: &Graph, id: NodeId, op: Op) -> Option<NodeId> {
    let n = g.node(id);
    (n.op == op).then(|| n.args[0])
}

/// The operand of `id` if `id` is the elementwise `op(x)`.
pub(crate) fn unary_arg(g: &Graph, id: NodeId, op: UnaryOp) -> Option<NodeId> {
    arg_if(g, id, Op::Unary(op))
}

/// The operands of `id` if `id` is the elementwise `op(a, b)`.
pub(crate) fn binary_args(g: &Graph, id: NodeId, op: BinaryOp) -> Option<(NodeId, NodeId)> {
    let n = g.node(id);
    (n.op == Op::Binary(op)).then(|| (n.args[0], n.args[1]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{InputKind, Shape};

    #[test]
    fn rule_names_are_unique_and_documented() {
        let all: Vec<&Rule> = PASSES.iter().flat_map(|p| p.1.iter()).collect();
        for (i, r) in all.iter().enumerate() {
            assert!(!r.doc.is_empty() && r.doc.contains('→'), "{}", r.name);
            assert!(all[..i].iter().all(|q| q.name != r.name), "duplicate rule {}", r.name);
        }
    }

    #[test]
    fn optimize_cascades_across_passes_and_logs() {
        // ((x + 0) · 2) · 3 with 2 = broadcast(2) → x · 6
        let mut g = Graph::new();
        let s = Shape::fixed(&[2, 3]);
        let x = g.add_input("x", s.clone(), InputKind::Features);
        let zero = g.constant(0.0, s.clone());
        let a = g.add2(x, zero);
        let two0 = g.constant(2.0, Shape::fixed(&[3]));
        let two = g.broadcast(two0, &s);
        let b = g.mul(a, two);
        let c = g.scale(b, 3.0);
        g.add_output("y", c);
        let (o, fired) = optimize_with_log(&g);
        let y = o.node(o.output("y").unwrap()).clone();
        assert_eq!(y.op, Op::Binary(BinaryOp::Mul));
        assert_eq!(o.node(y.args[0]).op, Op::Input(0));
        assert_eq!(constant(&o, y.args[1]), Some(6.0));
        assert_eq!(o.len(), 3);
        let names: Vec<&str> = fired.iter().map(|f| f.0).collect();
        assert!(names.contains(&"add-zero") && names.contains(&"mul-const-const"), "{names:?}");
        assert!(names.contains(&"fold-layout"), "{names:?}");
        let text = log_text(&fired);
        assert!(text.contains("add-zero ×1: x + 0 → x\n"), "{text}");
    }

    #[test]
    fn optimize_of_an_optimal_graph_changes_nothing() {
        let mut g = Graph::new();
        let x = g.add_input("x", Shape::fixed(&[4]), InputKind::Features);
        let y = g.unary(UnaryOp::Tanh, x);
        g.add_output("y", y);
        let (o, fired) = optimize_with_log(&g);
        assert!(fired.is_empty());
        assert_eq!(o.len(), 2);
    }
}

//! The stable text form of a graph: the single source of truth for `nnc ir` and for
//! snapshots. Deterministic (arena order, registry order, no hash-map iteration) and dense
//! (ids are the arena indices). Every node is printed, live or dead.
//!
//! ```text
//! input x: [B,2] features
//! param fc.weight: [3,2]
//! state fc.weight.momentum_buffer: [3,2] init 0
//!
//!   %0 = input x : [B,2]                  // line 2
//!   %1 = param fc.weight : [3,2]          // fc, line 3
//!   %4 = matmul %0, %1ᵀ : [B,3]           // fc, line 4
//!   %8 = matmul %7ᵀ, %0 : [3,2]           // dmean, grad of %4
//!  %15 = sub %1, %14 : [3,2]              // sgd
//!
//! output loss = %6
//! update fc.weight := %15
//! ```
//!
//! The interface comes first (inputs with their kind, parameters, optimizer states with
//! their initial value), then one node a line, `%id = op operands : shape` (ids right-aligned;
//! `ᵀ` marks a transposed matmul operand; attributes in brackets: `reduce_sum[0,1]`,
//! `one_hot[10]`), then the roots. The comment holds what the node's `Meta` knows: its note,
//! its source line, and for backward nodes the forward node it differentiates.
//!
//! Comments are aligned in one column (lines longer than [`COMMENT_COLUMN_MAX`] push only
//! their own comment). Source lines are shown only when the source text is given. The
//! printer never panics, even on a graph that fails `verify` (bad indices print as `param#i`).

use std::fmt::Write;

use crate::diagnostic::LineIndex;
use crate::graph::{Axes, BinaryOp, Graph, InputKind, NodeId, Op, Target, UnaryOp};

/// The widest code part that still sets the comment column.
pub const COMMENT_COLUMN_MAX: usize = 60;

/// The whole graph as text, ending with a newline. `src` is the source text the spans of the
/// graph's provenance point into; with it, comments show source line numbers.
pub fn print(g: &Graph, src: Option<&str>) -> String {
    let sections = [interface(g), nodes(g, src), roots(g)];
    let non_empty: Vec<String> = sections.into_iter().filter(|s| !s.is_empty()).collect();
    non_empty.join("\n")
}

/// `%5 = matmul %0, %1ᵀ : [B,8]`: one node without its comment (also used by `verify`).
pub fn node_line(g: &Graph, id: NodeId) -> String {
    let node = g.node(id);
    format!("%{} = {} : {}", id.0, op_text(g, &node.op, &node.args), node.shape)
}

/// A number as printed: integers without a fraction (`0`, `-3`), others in Rust's shortest
/// round-trip form (`0.5`, `1e-8`, `inf`, `NaN`).
pub fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

// ---- sections ---------------------------------------------------------------------------

fn interface(g: &Graph) -> String {
    let mut s = String::new();
    for x in &g.inputs {
        let kind = match x.kind {
            InputKind::Features => "features".to_string(),
            InputKind::Classes(n) => format!("class of {n}"),
            InputKind::Targets => "targets".to_string(),
        };
        let _ = writeln!(s, "input {}: {} {kind}", x.name, x.shape);
    }
    for p in &g.params {
        let _ = writeln!(s, "param {}: {}", p.name, p.shape);
    }
    for st in &g.states {
        let _ = writeln!(s, "state {}: {} init {}", st.name, st.shape, num(st.init));
    }
    s
}

fn nodes(g: &Graph, src: Option<&str>) -> String {
    let id_width = format!("%{}", g.len().saturating_sub(1)).len();
    let line = |id: NodeId| {
        let node = g.node(id);
        let (op, shape) = (op_text(g, &node.op, &node.args), &node.shape);
        format!("  {:>id_width$} = {op} : {shape}", format!("%{}", id.0))
    };
    let index = src.map(LineIndex::new);
    let lines: Vec<(String, String)> =
        g.ids().map(|id| (line(id), comment(g, id, index.as_ref()))).collect();
    let width = |code: &String| code.chars().count();
    let column = lines
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(code, _)| width(code))
        .filter(|&w| w <= COMMENT_COLUMN_MAX)
        .max()
        .unwrap_or(0);
    let mut s = String::new();
    for (code, c) in &lines {
        s.push_str(code);
        if !c.is_empty() {
            let pad = column.saturating_sub(width(code)) + 2;
            let _ = write!(s, "{:pad$}// {c}", "");
        }
        s.push('\n');
    }
    s
}

fn roots(g: &Graph) -> String {
    let mut s = String::new();
    for o in &g.outputs {
        let _ = writeln!(s, "output {} = %{}", o.name, o.node.0);
    }
    for u in &g.updates {
        let _ = writeln!(s, "update {} := %{}", target_name(g, u.target), u.node.0);
    }
    s
}

/// `fc1, line 7, grad of %5`: note, source line, differentiated node (each if known).
pub fn comment(g: &Graph, id: NodeId, lines: Option<&LineIndex>) -> String {
    let meta = g.meta(id);
    let mut parts = Vec::new();
    if let Some(note) = &meta.note {
        parts.push(note.to_string());
    }
    if let (Some(span), Some(lines)) = (meta.span, lines) {
        parts.push(format!("line {}", lines.line(span)));
    }
    if let Some(f) = meta.grad_of {
        parts.push(format!("grad of %{}", f.0));
    }
    parts.join(", ")
}

/// The name of an update's target, `param#i`/`state#i` if out of range.
pub fn target_name(g: &Graph, t: Target) -> String {
    match t {
        Target::Param(i) => name_or(g.params.get(i as usize).map(|p| &p.name), "param", i),
        Target::State(i) => name_or(g.states.get(i as usize).map(|s| &s.name), "state", i),
    }
}

fn name_or(name: Option<&String>, kind: &str, i: u32) -> String {
    name.cloned().unwrap_or_else(|| format!("{kind}#{i}"))
}

// ---- ops --------------------------------------------------------------------------------

/// `matmul %0, %1ᵀ`, `const 0.5`, `param fc1.weight`, `reduce_sum[1] %7`, ...
fn op_text(g: &Graph, op: &Op, args: &[NodeId]) -> String {
    let arg = |i: usize, t: bool| match args.get(i) {
        Some(a) if t => format!("%{}ᵀ", a.0),
        Some(a) => format!("%{}", a.0),
        None => "?".to_string(),
    };
    let list = || (0..args.len()).map(|i| arg(i, false)).collect::<Vec<_>>().join(", ");
    match op {
        Op::Input(i) => {
            format!("input {}", name_or(g.inputs.get(*i as usize).map(|x| &x.name), "input", *i))
        }
        Op::Param(i) => format!("param {}", target_name(g, Target::Param(*i))),
        Op::State(i) => format!("state {}", target_name(g, Target::State(*i))),
        Op::Scalar(a) => format!("scalar {a}"),
        Op::Const(v) => format!("const {}", num(v.get())),
        Op::MatMul { ta, tb } => format!("matmul {}, {}", arg(0, *ta), arg(1, *tb)),
        Op::ReduceSum(ax) => format!("reduce_sum{} {}", axes(*ax), list()),
        Op::ReduceMean(ax) => format!("reduce_mean{} {}", axes(*ax), list()),
        Op::ReduceMax(ax) => format!("reduce_max{} {}", axes(*ax), list()),
        Op::OneHot(c) => format!("one_hot[{c}] {}", list()),
        Op::Concat { axis } => format!("concat[{axis}] {}", list()),
        Op::Slice { axis, start, len } => {
            format!("slice[{axis}, {start}..{}] {}", *start as u64 + *len as u64, list())
        }
        Op::ScatterAdd(v) => format!("scatter_add[{v}] {}", list()),
        Op::DropMask { keep, salt } => {
            format!("drop_mask[keep {}, salt {salt:#010x}] {}", num(keep.get()), list())
        }
        Op::Conv(w)
        | Op::ConvGradInput(w)
        | Op::ConvGradKernel(w)
        | Op::PoolPick(w)
        | Op::PoolRoute(w) => format!("{}[{w}] {}", mnemonic(op), list()),
        _ => format!("{} {}", mnemonic(op), list()),
    }
}

/// The name of an op without attributes.
pub fn mnemonic(op: &Op) -> &'static str {
    match op {
        Op::Input(_) => "input",
        Op::Param(_) => "param",
        Op::State(_) => "state",
        Op::Scalar(_) => "scalar",
        Op::Const(_) => "const",
        Op::Unary(u) => unary_name(*u),
        Op::Binary(b) => binary_name(*b),
        Op::Select => "select",
        Op::Broadcast => "broadcast",
        Op::Reshape => "reshape",
        Op::Transpose => "transpose",
        Op::ReduceSum(_) => "reduce_sum",
        Op::ReduceMean(_) => "reduce_mean",
        Op::ReduceMax(_) => "reduce_max",
        Op::MatMul { .. } => "matmul",
        Op::Softmax => "softmax",
        Op::LogSoftmax => "log_softmax",
        Op::SoftmaxCrossEntropy => "softmax_xent",
        Op::OneHot(_) => "one_hot",
        Op::ArgMax => "argmax",
        Op::Concat { .. } => "concat",
        Op::Slice { .. } => "slice",
        Op::Gather => "gather",
        Op::ScatterAdd(_) => "scatter_add",
        Op::DropMask { .. } => "drop_mask",
        Op::Conv(_) => "conv",
        Op::ConvGradInput(_) => "conv_grad_input",
        Op::ConvGradKernel(_) => "conv_grad_kernel",
        Op::PoolPick(_) => "pool_pick",
        Op::PoolRoute(_) => "pool_route",
    }
}

fn unary_name(u: UnaryOp) -> &'static str {
    match u {
        UnaryOp::Neg => "neg",
        UnaryOp::Exp => "exp",
        UnaryOp::Log => "log",
        UnaryOp::Log1p => "log1p",
        UnaryOp::Sqrt => "sqrt",
        UnaryOp::Recip => "recip",
        UnaryOp::Abs => "abs",
        UnaryOp::Sign => "sign",
        UnaryOp::Square => "square",
        UnaryOp::Tanh => "tanh",
        UnaryOp::Sigmoid => "sigmoid",
        UnaryOp::Relu => "relu",
        UnaryOp::Step => "step",
        UnaryOp::Softplus => "softplus",
        UnaryOp::Erf => "erf",
    }
}

fn binary_name(b: BinaryOp) -> &'static str {
    match b {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Max => "max",
        BinaryOp::Min => "min",
        BinaryOp::Pow => "pow",
        BinaryOp::Gt => "gt",
        BinaryOp::Ge => "ge",
        BinaryOp::Eq => "eq",
    }
}

/// `[0,1]`
fn axes(a: Axes) -> String {
    let v: Vec<String> = a.iter().map(|k| k.to_string()).collect();
    format!("[{}]", v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Span;
    use crate::graph::{Dim, Meta, Reduce, ScalarArg, Shape, Update};

    const SRC: &str =
        "model M {\n  input x: [B, 2]\n  fc = Dense(2 -> 3)\n  loss = mean(fc(x))\n}\n";

    /// The span of the first occurrence of `s` in [`SRC`].
    fn at(s: &str) -> Option<Span> {
        SRC.find(s).map(|i| Span::new(i, i + s.len()))
    }

    /// A small training step: a dense layer, a mean loss, one hand-written gradient node
    /// and an SGD-with-momentum update, with provenance on most nodes.
    fn small() -> Graph {
        let mut g = Graph::new();
        let bx = Shape(vec![Dim::Batch, Dim::Fixed(3)]);
        g.origin = Meta { span: at("input x"), ..Meta::default() };
        let x = g.add_input("x", Shape(vec![Dim::Batch, Dim::Fixed(2)]), InputKind::Features);
        g.add_input("y", Shape(vec![Dim::Batch]), InputKind::Classes(3));
        g.origin = Meta { span: at("fc ="), note: Some("fc".into()), ..Meta::default() };
        let w = g.add_param("fc.weight", Shape::fixed(&[3, 2]));
        g.add_state("fc.weight.momentum_buffer", Shape::fixed(&[3, 2]), 0.0);
        g.origin = Meta { span: at("fc(x)"), note: Some("fc".into()), ..Meta::default() };
        let h = g.matmul(x, w, false, true);
        g.origin = Meta { span: at("mean"), ..Meta::default() };
        let r = g.reduce(Reduce::Mean, h, crate::graph::Axes::of(&[0, 1]));
        let loss = g.reshape(r, &Shape::scalar());
        g.origin = Meta { grad_of: Some(h), note: Some("dmean".into()), ..Meta::default() };
        let dh = g.constant(1.0 / 6.0, bx);
        let dw = g.matmul(dh, x, true, false);
        g.origin = Meta { note: Some("sgd".into()), ..Meta::default() };
        let b = g.state(0);
        let m = g.scale(b, 0.9);
        let b2 = g.add2(m, dw);
        let lr = g.scalar(ScalarArg::Lr);
        let lrb = g.broadcast(lr, &Shape::fixed(&[3, 2]));
        let step = g.mul(lrb, b2);
        let w2 = g.sub(w, step);
        g.origin = Meta::default();
        g.add_output("loss", loss);
        g.updates.push(Update { target: Target::Param(0), node: w2 });
        g.updates.push(Update { target: Target::State(0), node: b2 });
        g
    }

    #[test]
    fn prints_interface_nodes_with_comments_and_roots() {
        let want = "\
input x: [B,2] features
input y: [B] class of 3
param fc.weight: [3,2]
state fc.weight.momentum_buffer: [3,2] init 0

   %0 = input x : [B,2]                          // line 2
   %1 = input y : [B]                            // line 2
   %2 = param fc.weight : [3,2]                  // fc, line 3
   %3 = state fc.weight.momentum_buffer : [3,2]  // fc, line 3
   %4 = matmul %0, %2ᵀ : [B,3]                   // fc, line 4
   %5 = reduce_mean[0,1] %4 : [1,1]              // line 4
   %6 = reshape %5 : []                          // line 4
   %7 = const 0.16666666666666666 : [B,3]        // dmean, grad of %4
   %8 = matmul %7ᵀ, %0 : [3,2]                   // dmean, grad of %4
   %9 = const 0.9 : [3,2]                        // sgd
  %10 = mul %3, %9 : [3,2]                       // sgd
  %11 = add %10, %8 : [3,2]                      // sgd
  %12 = scalar lr : []                           // sgd
  %13 = broadcast %12 : [3,2]                    // sgd
  %14 = mul %13, %11 : [3,2]                     // sgd
  %15 = sub %2, %14 : [3,2]                      // sgd

output loss = %6
update fc.weight := %15
update fc.weight.momentum_buffer := %11
";
        assert_eq!(print(&small(), Some(SRC)), want);
    }

    #[test]
    fn without_source_no_line_numbers_and_no_trailing_spaces() {
        let text = print(&small(), None);
        assert!(!text.contains("line "), "{text}");
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text}");
        assert!(text.contains("   %0 = input x : [B,2]\n"), "{text}");
        assert!(text
            .contains("   %8 = matmul %7ᵀ, %0 : [3,2]                   // dmean, grad of %4\n"));
        assert_eq!(text, print(&small(), None), "deterministic");
    }

    #[test]
    fn every_op_has_a_notation() {
        use crate::graph::{BinaryOp as B, UnaryOp as U};
        let mut g = Graph::new();
        let z = g.add_input("z", Shape::fixed(&[2, 3]), InputKind::Targets);
        let y = g.add_input("y", Shape::fixed(&[2]), InputKind::Classes(3));
        let mut lines = Vec::new();
        let mut show = |g: &Graph, id: NodeId| lines.push(node_line(g, id));
        let n = g.unary(U::Softplus, z);
        show(&g, n);
        let n = g.binary(B::Ge, z, n);
        show(&g, n);
        let n = g.select(n, z, z);
        show(&g, n);
        let n = g.transpose(z);
        show(&g, n);
        let n = g.reduce(Reduce::Sum, z, crate::graph::Axes::of(&[1]));
        show(&g, n);
        let n = g.reduce(Reduce::Max, z, crate::graph::Axes::of(&[0]));
        show(&g, n);
        for (op, shape) in [
            (Op::Softmax, Shape::fixed(&[2, 3])),
            (Op::LogSoftmax, Shape::fixed(&[2, 3])),
            (Op::ArgMax, Shape::fixed(&[2])),
        ] {
            let n = g.add(op, vec![z], shape);
            show(&g, n);
        }
        let n = g.add(Op::SoftmaxCrossEntropy, vec![z, y], Shape::fixed(&[2]));
        show(&g, n);
        let n = g.add(Op::OneHot(3), vec![y], Shape::fixed(&[2, 3]));
        show(&g, n);
        let n = g.scalar(ScalarArg::Step);
        show(&g, n);
        let n = g.constant(-0.0, Shape::scalar());
        show(&g, n);
        let n = g.constant(1e-8, Shape::scalar());
        show(&g, n);
        let n = g.constant(-2.5, Shape::scalar());
        show(&g, n);
        let want = [
            "%2 = softplus %0 : [2,3]",
            "%3 = ge %0, %2 : [2,3]",
            "%4 = select %3, %0, %0 : [2,3]",
            "%5 = transpose %0 : [3,2]",
            "%6 = reduce_sum[1] %0 : [2,1]",
            "%7 = reduce_max[0] %0 : [1,3]",
            "%8 = softmax %0 : [2,3]",
            "%9 = log_softmax %0 : [2,3]",
            "%10 = argmax %0 : [2]",
            "%11 = softmax_xent %0, %1 : [2]",
            "%12 = one_hot[3] %1 : [2,3]",
            "%13 = scalar step : []",
            "%14 = const 0 : []",
            "%15 = const 1e-8 : []",
            "%16 = const -2.5 : []",
        ];
        assert_eq!(lines, want);
        assert!(print(&g, None).starts_with("input z: [2,3] targets\ninput y: [2] class of 3\n\n"));
    }

    #[test]
    fn names_and_mnemonics_cover_every_unary_and_binary_op() {
        use crate::graph::{BinaryOp as B, UnaryOp as U};
        let unary = [
            U::Neg,
            U::Exp,
            U::Log,
            U::Log1p,
            U::Sqrt,
            U::Recip,
            U::Abs,
            U::Sign,
            U::Square,
            U::Tanh,
            U::Sigmoid,
            U::Relu,
            U::Step,
            U::Softplus,
            U::Erf,
        ];
        let names: Vec<&str> = unary.iter().map(|&u| mnemonic(&Op::Unary(u))).collect();
        assert_eq!(
            names.join(" "),
            "neg exp log log1p sqrt recip abs sign square tanh sigmoid relu step softplus erf"
        );
        let binary = [B::Add, B::Sub, B::Mul, B::Div, B::Max, B::Min, B::Pow, B::Gt, B::Ge, B::Eq];
        let names: Vec<&str> = binary.iter().map(|&b| mnemonic(&Op::Binary(b))).collect();
        assert_eq!(names.join(" "), "add sub mul div max min pow gt ge eq");
    }

    #[test]
    fn out_of_range_indices_print_without_panicking() {
        let mut g = small();
        g.params.clear();
        g.states.clear();
        let text = print(&g, None);
        assert!(text.contains("   %2 = param param#0 : [3,2]"), "{text}");
        assert!(text.contains("update param#0 := %15\nupdate state#0 := %11\n"), "{text}");
    }

    #[test]
    fn an_overlong_line_pushes_only_its_own_comment() {
        let mut g = Graph::new();
        g.origin.note = Some("n".into());
        let long = "a".repeat(70);
        g.add_param(&long, Shape::fixed(&[1]));
        g.add_param("b", Shape::fixed(&[1]));
        let text = print(&g, None);
        let want = format!("  %0 = param {long} : [1]  // n\n  %1 = param b : [1]  // n\n");
        assert!(text.ends_with(&want), "{text}");
        assert_eq!(print(&Graph::new(), None), "");
    }
}

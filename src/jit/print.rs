//! Text of the JIT stages, for `nnc ir --stage kernels|clif` and snapshots. Deterministic:
//! kernels, temporaries and values are numbered in program order.
//!
//! `kernels` prints each program (the training step, then the forward pass): every kernel
//! with the graph nodes it computes and their source lines, a loop kernel's program (one
//! value a line with its level) and sinks; then the memory plan: arena sizes and each
//! temporary's size, place and lifetime (first and last kernel).
//!
//! `clif` prints the Cranelift IR of every function (the training step's, then the forward
//! pass's) as generated (before Cranelift's own optimizations), each under a comment naming
//! its kernel, the graph nodes and the source lines it came from.
//!
//! Both print what a compiled [`Jit`] runs: its own programs and plan, for the threads it
//! was compiled with.

use std::fmt::Write;

use super::fuse::{self, Buf, KOp, Kernel, Level, LoopKernel, Pat, Program, RKind, SinkKind};
use super::plan::{self, Plan, Slot};
use super::Jit;
use crate::graph::print::mnemonic;
use crate::graph::{Graph, NodeId, Op};

/// The kernels and memory plan of `jit`, compiled from `step` and `forward`: what it runs.
pub fn kernels(jit: &Jit, step: &Graph, forward: &Graph, src: Option<&str>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "memory: {}", arenas(step, &jit.plan));
    let programs = [("step", step, &jit.step.program), ("forward", forward, &jit.forward.program)];
    for (i, (name, g, p)) in programs.into_iter().enumerate() {
        out.push('\n');
        program(&mut out, name, g, p, &jit.plan, i, src);
    }
    out
}

/// The Cranelift IR `code` of `jit`'s functions (as an [`crate::observe::Capture`] of its
/// compilation holds them), each under a comment naming its kernel, the graph nodes and the
/// source lines it came from.
pub fn clif(
    jit: &Jit,
    step: &Graph,
    forward: &Graph,
    code: &[(String, String)],
    src: Option<&str>,
) -> String {
    let mut out = String::new();
    for (name, text) in code {
        let kernel = name.rsplit_once("_k").and_then(|(p, k)| Some((p, k.parse::<usize>().ok()?)));
        if let Some((prog, k)) = kernel {
            let (g, p) = match prog {
                "step" => (step, &jit.step.program),
                _ => (forward, &jit.forward.program),
            };
            let _ = writeln!(out, "; {prog} kernel k{k}: {}", headline(g, p, &p.kernels[k], src));
        }
        out.push_str(text);
        out.push('\n');
    }
    out
}

fn arenas(g: &Graph, plan: &Plan) -> String {
    let params: usize = g.params.iter().map(|p| p.shape.numel(0)).sum();
    let states: usize = g.states.iter().map(|s| s.shape.numel(0)).sum();
    format!(
        "fixed arena {} floats (parameters {params}, optimizer state {states}, temporaries from {}), \
         batch arena {}·B̂ floats (B̂ = B rounded up to {})",
        plan.fixed_len,
        plan.temp_base,
        plan.batch_units,
        plan::ALIGN
    )
}

fn program(
    out: &mut String,
    name: &str,
    g: &Graph,
    p: &Program,
    plan: &Plan,
    which: usize,
    src: Option<&str>,
) {
    let gemms = p.kernels.iter().filter(|k| matches!(k, Kernel::Gemm(_))).count();
    let _ = writeln!(
        out,
        "program {name}: {} kernels ({gemms} gemm), {} temporaries",
        p.kernels.len(),
        p.temps.len()
    );
    for (i, k) in p.kernels.iter().enumerate() {
        let _ = writeln!(out, "k{i} {}", headline(g, p, k, src));
        if let Kernel::Loop(l) = k {
            loop_body(out, g, p, l);
        }
    }
    for o in &p.outputs {
        let _ = writeln!(out, "output {} = {}", o.name, buf_name(g, p, o.buf));
    }
    let _ = writeln!(out, "temporaries:");
    for (t, temp) in p.temps.iter().enumerate() {
        let place = match plan.temps[which][t] {
            Slot::Fixed(o) => format!("fixed @{o}"),
            Slot::Batch(u) => format!("batch @{u}·B̂"),
        };
        let end = if temp.live.1 >= p.kernels.len() {
            "end".to_string()
        } else {
            format!("k{}", temp.live.1)
        };
        let _ = writeln!(
            out,
            "  t{t} = %{} {}: {} floats, {place}, live k{}..{end}",
            temp.node.0,
            g.shape(temp.node),
            temp.size,
            temp.live.0
        );
    }
}

/// The kernels of `p` (compiled from `g`) by the wall time they took: `ns[k]` nanoseconds
/// summed over `runs` runs.
pub fn profile(g: &Graph, p: &Program, ns: &[u64], runs: u64, src: Option<&str>) -> String {
    let total: u64 = ns.iter().sum();
    let per_run = |t: u64| t as f64 / runs.max(1) as f64 / 1e3;
    let mut out = format!(
        "kernel time per step over {runs} steps: {:.2} µs in {} kernels\n",
        per_run(total),
        ns.len()
    );
    let mut order: Vec<usize> = (0..ns.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(ns[k]));
    for k in order {
        let share = 100.0 * ns[k] as f64 / total.max(1) as f64;
        let line = headline(g, p, &p.kernels[k], src);
        let _ = writeln!(out, "  k{k:<3} {:>10.2} µs {share:>5.1}%  {line}", per_run(ns[k]));
    }
    out
}

/// `loop B×10, 3 passes ← %14 %15 … (fc2, line 12)` and the like.
fn headline(g: &Graph, p: &Program, k: &Kernel, src: Option<&str>) -> String {
    let b = |x: Buf| buf_name(g, p, x);
    let what = match k {
        Kernel::Loop(l) => {
            let shape = if l.flat {
                format!("{} flat", (l.dom.rows * l.dom.cols))
            } else {
                format!("{}×{}", l.dom.rows, l.dom.cols)
            };
            let passes = l.passes();
            let passes = if passes > 1 { format!(", {passes} passes") } else { String::new() };
            format!("{} {shape}{passes}", l.what)
        }
        Kernel::Gemm(m) => {
            let t = |x: bool| if x { "ᵀ" } else { "" };
            format!(
                "gemm {} = {}{}·{}{}  [{}×{}]·[{}×{}]",
                b(m.out),
                b(m.a),
                t(m.ta),
                b(m.b),
                t(m.tb),
                m.m,
                m.k,
                m.k,
                m.n
            )
        }
        Kernel::Gather(x) => {
            format!("gather {} = {} strides {:?}", b(x.out), b(x.src), syms(&x.strides))
        }
        Kernel::Reduce(x) => format!("reduce {} = {} over {:?}", b(x.out), b(x.src), syms(&x.dims)),
        Kernel::Index(x) => index_headline(x, &b),
        Kernel::Window(x) => {
            let what = crate::graph::print::mnemonic(&g.node(x.node).op);
            let g = &x.geom;
            format!(
                "{what} {} = {}, {}  [{}×{}×{}×{} → {}×{}×{}]",
                b(x.out),
                b(x.srcs[0]),
                b(x.srcs[1]),
                x.n,
                g.c,
                g.h,
                g.w,
                g.o,
                g.ho,
                g.wo
            )
        }
    };
    format!("{what}  ← {}", provenance(g, &k.nodes(), src))
}

/// `gather t3 = fc.weight[ids]  [B×4 rows of 8, 50 rows]` and the like.
fn index_headline(x: &fuse::IndexKernel, b: &dyn Fn(Buf) -> String) -> String {
    let (out, s) = (b(x.out), &x.srcs);
    match x.op {
        fuse::IndexOp::Concat { outer, ra, rb } => {
            format!("concat {out} = {} ++ {}  [{outer} rows of {ra} + {rb}]", b(s[0]), b(s[1]))
        }
        fuse::IndexOp::Slice { outer, row, from, len } => {
            format!("slice {out} = {}  [{outer} rows of {row}, {len} at {from}]", b(s[0]))
        }
        fuse::IndexOp::Gather { count, v, d } => {
            format!("gather {out} = {}[{}]  [{count} rows of {d}, {v} rows]", b(s[0]), b(s[1]))
        }
        fuse::IndexOp::ScatterAdd { count, v, d } => {
            format!("scatter_add {out}[{}] += {}  [{count} rows of {d} into {v}]", b(s[0]), b(s[1]))
        }
    }
}

fn syms(s: &[fuse::Sym]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

/// `%9 %10 %11 (fc1, line 12)`: the nodes, their notes and source lines.
fn provenance(g: &Graph, nodes: &[NodeId], src: Option<&str>) -> String {
    let ids: Vec<String> = nodes.iter().map(|n| format!("%{}", n.0)).collect();
    let mut notes: Vec<&str> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    for &n in nodes {
        let m = g.meta(n);
        if let Some(note) = &m.note {
            if !notes.contains(&&**note) {
                notes.push(note);
            }
        }
        if let (Some(span), Some(src)) = (m.span, src) {
            lines.push(span.line(src));
        }
    }
    lines.sort();
    lines.dedup();
    let mut extra: Vec<String> = notes.into_iter().map(String::from).collect();
    if !lines.is_empty() {
        let l: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        extra.push(format!("line{} {}", if l.len() > 1 { "s" } else { "" }, l.join(", ")));
    }
    let ids = if ids.is_empty() { "-".to_string() } else { ids.join(" ") };
    if extra.is_empty() {
        ids
    } else {
        format!("{ids} ({})", extra.join(", "))
    }
}

fn buf_name(g: &Graph, _p: &Program, b: Buf) -> String {
    match b {
        Buf::Input(i) => g.inputs[i as usize].name.clone(),
        Buf::Param(i) => g.params[i as usize].name.clone(),
        Buf::State(i) => g.states[i as usize].name.clone(),
        Buf::Temp(t) => format!("t{t}"),
    }
}

fn level(l: Level) -> &'static str {
    match l {
        Level::Inv => "inv",
        Level::Row => "row",
        Level::Col => "col",
        Level::Elem => "elem",
    }
}

fn rkind(k: RKind) -> &'static str {
    match k {
        RKind::Sum => "sum",
        RKind::Max => "max",
        RKind::MaxNum => "maxnum",
        RKind::Min => "min",
    }
}

fn loop_body(out: &mut String, g: &Graph, p: &Program, l: &LoopKernel) {
    let avail = l.avail();
    for (v, op) in l.ops.iter().enumerate() {
        let text = match *op {
            KOp::Load(b, pat) => {
                let at = match pat {
                    Pat::Full if l.flat => "[e]".to_string(),
                    Pat::Full => "[i,j]".to_string(),
                    Pat::Row => "[i]".to_string(),
                    Pat::RowMap(m) => {
                        let div = if m.div > 1 { format!("i/{}", m.div) } else { "i".into() };
                        match m.modulo {
                            Some(c) => format!("[{div}%{c}]"),
                            None => format!("[{div}]"),
                        }
                    }
                    Pat::Col => "[j]".to_string(),
                    Pat::Scalar => "[0]".to_string(),
                };
                format!("load {}{at}", buf_name(g, p, b))
            }
            KOp::Const(bits) => format!("const {}", f32::from_bits(bits)),
            KOp::Arg(a) => format!("arg {a}"),
            KOp::Count(s) => format!("count {s}"),
            KOp::Iota => "iota j".to_string(),
            KOp::Unary(u, x) => format!("{} v{}", mnemonic(&Op::Unary(u)), x.0),
            KOp::Binary(b, x, y) => format!("{} v{}, v{}", mnemonic(&Op::Binary(b)), x.0, y.0),
            KOp::Select(c, x, y) => format!("select v{}, v{}, v{}", c.0, x.0, y.0),
            KOp::RowReduce(k, x) => format!("row_{} v{}", rkind(k), x.0),
            KOp::DropKey { salt, step } => format!("drop_key[salt {salt:#010x}] v{}", step.0),
            KOp::DropMask { threshold, scale, key } => {
                format!("drop_mask[below {threshold}, scale {}] v{}", f32::from_bits(scale), key.0)
            }
        };
        let pass = if l.levels[v] == Level::Row && avail[v] > 0 {
            format!(" after pass {}", avail[v] - 1)
        } else {
            String::new()
        };
        let _ = writeln!(out, "    v{v} = {text} : {}{pass}", level(l.levels[v]));
    }
    for s in &l.sinks {
        let name = buf_name(g, p, s.buf);
        let mean = s.mean.map(|m| format!(" / {m}")).unwrap_or_default();
        let text = match s.kind {
            SinkKind::Store(lv) => {
                let at = match lv {
                    Level::Elem if l.flat => "[e]",
                    Level::Elem => "[i,j]",
                    Level::Row => "[i]",
                    Level::Col => "[j]",
                    Level::Inv => "[0]",
                };
                format!("store {name}{at} = v{}", s.value.0)
            }
            SinkKind::ColReduce(k) => format!("{name}[j] = col_{} v{}{mean}", rkind(k), s.value.0),
            SinkKind::FullReduce(k) => format!("{name}[0] = all_{} v{}{mean}", rkind(k), s.value.0),
        };
        let _ = writeln!(out, "    {text}  (%{})", s.node.0);
    }
}

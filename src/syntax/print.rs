//! The AST printer behind `nnc ir --stage ast`: a stable S-expression rendering.
//!
//! Every node kind appears with all its fields (spans omitted, so the output does not change
//! when only whitespace or comments do). Items and statements each start a line; an
//! expression stays on one line when it fits in [`WIDTH`] columns and otherwise breaks one
//! child per line, indented by two. Operators are written prefix, so how an expression was
//! parsed is explicit: `a + b * c` prints as `(+ a (* b c))`.
//!
//! Forms: `(model N stmt...)`, `(layer N (params) stmt...)`, `(optimizer e)`,
//! `(schedule e...)`, `(clip e)`, `(train arg...)`; `(input x type)`, `(label y type)`,
//! `(param g [dims] init?)`, `(let x e)`, `(metric e)`, `(forward (args) let... (return e))`;
//! types `(tensor [B, 2])`, `(class [B] e)`; expressions `64` (integer literal), `64.0`,
//! `"s"`, `true`, `x`, `(. e field)`, `(call f arg...)` with keyword args as `name=e`,
//! `(neg e)`, `(+ a b)`, `(tuple e...)`, `(list e...)`, `(-> a b)`, `(repeat n e)`.

use super::ast::*;

/// The column budget for a one-line node.
const WIDTH: usize = 96;

/// A rendered node: an atom, or a parenthesized head with children.
enum Doc {
    Atom(String),
    /// `prefix(head child...)`; `broken` forces one child per line (items, blocks). The
    /// prefix is a keyword argument's `name=`.
    List {
        prefix: String,
        head: String,
        children: Vec<Doc>,
        broken: bool,
    },
}

fn atom(s: impl Into<String>) -> Doc {
    Doc::Atom(s.into())
}

fn list(head: impl Into<String>, children: Vec<Doc>) -> Doc {
    Doc::List { prefix: String::new(), head: head.into(), children, broken: false }
}

fn block(head: impl Into<String>, children: Vec<Doc>) -> Doc {
    Doc::List { prefix: String::new(), head: head.into(), children, broken: true }
}

/// Renders a whole file: one top-level form per item, in source order.
pub fn print(file: &File) -> String {
    let mut out = String::new();
    for item in &file.items {
        layout(&item_doc(item), 0, &mut out);
        out.push('\n');
    }
    out
}

fn item_doc(item: &Item) -> Doc {
    match item {
        Item::Model(m) => block(format!("model {}", m.name.name), stmts(&m.body)),
        Item::Layer(l) => {
            let params = l.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(" ");
            block(format!("layer {} ({params})", l.name.name), stmts(&l.body))
        }
        Item::Optimizer { spec, groups, .. } => {
            let mut children = vec![expr_doc(spec)];
            children.extend(groups.iter().map(group_doc));
            list("optimizer", children)
        }
        Item::Schedule { parts, .. } => list("schedule", parts.iter().map(expr_doc).collect()),
        Item::Clip { spec, .. } => list("clip", vec![expr_doc(spec)]),
        Item::Train { settings, .. } => block("train", settings.iter().map(arg_doc).collect()),
    }
}

/// `(group "*.bias" "norm*" weight_decay=0)`
fn group_doc(g: &Group) -> Doc {
    let mut children: Vec<Doc> = g.patterns.iter().map(|p| atom(format!("{:?}", p.text))).collect();
    children.extend(g.args.iter().map(arg_doc));
    list("group", children)
}

fn stmts(body: &[Stmt]) -> Vec<Doc> {
    body.iter().map(stmt_doc).collect()
}

fn stmt_doc(stmt: &Stmt) -> Doc {
    match stmt {
        Stmt::Input { name, ty, .. } => list(format!("input {}", name.name), vec![type_doc(ty)]),
        Stmt::Label { name, ty, .. } => list(format!("label {}", name.name), vec![type_doc(ty)]),
        Stmt::Param { name, shape, init, .. } => {
            let mut children = vec![atom(dims(shape))];
            children.extend(init.iter().map(expr_doc));
            list(format!("param {}", name.name), children)
        }
        Stmt::Let { name, value, .. } => list(format!("let {}", name.name), vec![expr_doc(value)]),
        Stmt::Metric { value, .. } => list("metric", vec![expr_doc(value)]),
        Stmt::Forward { args, body, result, .. } => {
            let args = args.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(" ");
            let mut children = stmts(body);
            children.push(list("return", vec![expr_doc(result)]));
            let head = format!("forward ({args})");
            if body.is_empty() {
                list(head, children)
            } else {
                block(head, children)
            }
        }
    }
}

fn type_doc(ty: &TypeExpr) -> Doc {
    match ty {
        TypeExpr::Tensor { dims: d, .. } => list("tensor", vec![atom(dims(d))]),
        TypeExpr::Class { dims: d, classes, .. } => {
            list("class", vec![atom(dims(d)), expr_doc(classes)])
        }
    }
}

/// `[B, 64]`
fn dims(dims: &[DimExpr]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| match d {
            DimExpr::Int { value, .. } => value.to_string(),
            DimExpr::Name(n) => n.name.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn arg_doc(arg: &Arg) -> Doc {
    let value = expr_doc(&arg.value);
    match &arg.name {
        None => value,
        Some(name) => match value {
            Doc::Atom(s) => atom(format!("{}={s}", name.name)),
            Doc::List { head, children, broken, .. } => {
                Doc::List { prefix: format!("{}=", name.name), head, children, broken }
            }
        },
    }
}

fn expr_doc(e: &Expr) -> Doc {
    match &e.kind {
        ExprKind::Number { value, int: true } => atom(format!("{value}")),
        // `{:?}` always shows a `.` or an exponent, so floats never look like integers.
        ExprKind::Number { value, int: false } => atom(format!("{value:?}")),
        ExprKind::Str(s) => atom(format!("{s:?}")),
        ExprKind::Bool(b) => atom(b.to_string()),
        ExprKind::Name(n) => atom(n.clone()),
        ExprKind::Field { base, field } => list(".", vec![expr_doc(base), atom(&field.name)]),
        ExprKind::Call { callee, args } => {
            list(format!("call {}", callee.name), args.iter().map(arg_doc).collect())
        }
        ExprKind::Neg(x) => list("neg", vec![expr_doc(x)]),
        ExprKind::Binary { op, lhs, rhs } => list(op.symbol(), vec![expr_doc(lhs), expr_doc(rhs)]),
        ExprKind::Tuple(items) => list("tuple", items.iter().map(expr_doc).collect()),
        ExprKind::List(items) => list("list", items.iter().map(expr_doc).collect()),
        ExprKind::Arrow { from, to } => list("->", vec![expr_doc(from), expr_doc(to)]),
        ExprKind::Repeat { count, layer } => list("repeat", vec![expr_doc(count), expr_doc(layer)]),
    }
}

/// The one-line text of a doc.
fn flat(doc: &Doc) -> String {
    match doc {
        Doc::Atom(s) => s.clone(),
        Doc::List { prefix, head, children, .. } => {
            let mut s = format!("{prefix}({head}");
            for c in children {
                s.push(' ');
                s.push_str(&flat(c));
            }
            s.push(')');
            s
        }
    }
}

/// Writes `doc` at column `indent` (the caller has already indented the first line).
fn layout(doc: &Doc, indent: usize, out: &mut String) {
    match doc {
        Doc::List { prefix, head, children, broken } => {
            let one_line = flat(doc);
            if !broken && indent + one_line.len() <= WIDTH {
                out.push_str(&one_line);
                return;
            }
            out.push_str(prefix);
            out.push('(');
            out.push_str(head);
            for c in children {
                out.push('\n');
                out.push_str(&" ".repeat(indent + 2));
                layout(c, indent + 2, out);
            }
            out.push(')');
        }
        Doc::Atom(s) => out.push_str(s),
    }
}

//! The `schedule` item: one or more phases joined by `then`, each read against its
//! registry entry (`registry::SCHEDULES`, whose default texts are the defaults), and the
//! `scale_lr` train setting (the linear scaling rule).
//!
//! Every phase but the last must end: `warmup(steps)`, `cosine(T)`, `polynomial(total)` and
//! `one_cycle(total_steps)` last that many steps; the others run forever.
//!
//! | phase | rules |
//! |-------|-------|
//! | step, cosine, polynomial, sgdr, cyclic, one_cycle, warmup | step counts are integers >= 1 |
//! | multistep | milestones: a list of increasing integers >= 1 |
//! | gammas, k, power, max_lr, div factors | > 0 |
//! | eta_min, end, base_lr | >= 0 |
//! | one_cycle | 0 < pct_start < 1 (< 1/2 with three_phase), pct_start·total_steps > 1 |
//! | warmup | from in [0, 1] |

use super::args::{describe, number, Args, Rule};
use super::hyper::{done, lookup, spec};
use super::model::{Anneal, CyclicMode, LrScale, Phase, Schedule};
use super::registry::{Builtin, SCHEDULES};
use crate::diagnostic::{Diagnostic, Span};
use crate::syntax::ast::{BinOp, Expr, ExprKind};

/// The schedule `parts` (joined by `then`); the default constant schedule after a mistake
/// (which is reported).
pub(crate) fn schedule(parts: &[Expr], diags: &mut Vec<Diagnostic>) -> Schedule {
    let before = diags.len();
    let mut phases = Vec::new();
    for (i, e) in parts.iter().enumerate() {
        let Some(p) = part(e, diags) else { continue };
        if i + 1 < parts.len() && p.length().is_none() {
            diags.push(never_ends(&p, e, &parts[i + 1]));
        }
        phases.push(p);
    }
    if diags.len() > before || phases.is_empty() {
        return Schedule::default();
    }
    Schedule { phases }
}

fn never_ends(p: &Phase, e: &Expr, next: &Expr) -> Diagnostic {
    let name = match &e.kind {
        ExprKind::Call { callee, .. } => callee.name.as_str(),
        ExprKind::Name(n) => n.as_str(),
        _ => "this schedule",
    };
    let msg = if *p == Phase::Constant {
        "nothing can follow `constant`".to_string()
    } else {
        format!("nothing can follow `{name}`: it never ends")
    };
    Diagnostic::error(e.span, msg)
        .label("this schedule runs to the end of training")
        .secondary(next.span, "so this part would never start")
        .note("parts that end: warmup(steps), cosine(T), polynomial(total), one_cycle(total_steps)")
}

fn part(e: &Expr, diags: &mut Vec<Diagnostic>) -> Option<Phase> {
    let (name, span, args) =
        spec(e, "a schedule", "schedule warmup(100) then cosine(T = 1000)", diags)?;
    let b = lookup(SCHEDULES, "schedule", name, span, diags)?;
    let mut a = Args::bind(b, args, e.span, diags)?;
    let Some(p) = phase(b, &mut a, e.span) else {
        let msg = format!("internal error: schedule `{name}` is not implemented");
        diags.push(Diagnostic::error(span, msg));
        return None;
    };
    done(a, p, diags)
}

/// The default of `b`'s parameter `name` as a number (its registry text).
fn dflt(b: &Builtin, name: &str) -> f64 {
    b.params
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.default)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

/// The phase registry schedule `b` describes; `None` for a name without one (a test checks
/// that every registry schedule has one: none silently becomes constant).
fn phase(b: &Builtin, a: &mut Args, call: Span) -> Option<Phase> {
    let num = |a: &mut Args, n: &str, rule| a.num(n, dflt(b, n), rule);
    let int = |a: &mut Args, n: &str| a.int(n, dflt(b, n).max(1.0) as u64, 1);
    Some(match b.name {
        "constant" => Phase::Constant,
        "step" => {
            Phase::Step { step_size: int(a, "step_size"), gamma: num(a, "gamma", Rule::Positive) }
        }
        "multistep" => {
            Phase::MultiStep { milestones: milestones(a), gamma: num(a, "gamma", Rule::Positive) }
        }
        "exponential" => Phase::Exponential { gamma: num(a, "gamma", Rule::Positive) },
        "inverse_time" => Phase::InverseTime {
            k: num(a, "k", Rule::Positive),
            power: num(a, "power", Rule::Positive),
        },
        "inv_sqrt" => Phase::InvSqrt,
        "polynomial" => Phase::Polynomial {
            total: int(a, "total"),
            power: num(a, "power", Rule::Positive),
            end: num(a, "end", Rule::NonNegative),
        },
        "cosine" => {
            Phase::Cosine { t_max: int(a, "T"), eta_min: num(a, "eta_min", Rule::NonNegative) }
        }
        "sgdr" => Phase::Sgdr {
            t0: int(a, "T0"),
            t_mult: int(a, "T_mult"),
            eta_min: num(a, "eta_min", Rule::NonNegative),
        },
        "cyclic" => cyclic(a, num, int),
        "one_cycle" => one_cycle(a, call),
        "warmup" => Phase::Warmup { steps: int(a, "steps"), from: num(a, "from", Rule::Unit) },
        _ => return None,
    })
}

fn cyclic(
    a: &mut Args,
    num: impl Fn(&mut Args, &str, Rule) -> f64,
    int: impl Fn(&mut Args, &str) -> u64,
) -> Phase {
    let up = int(a, "step_size");
    let down = if a.get("step_size_down").is_some() { a.int("step_size_down", up, 1) } else { up };
    let modes = [
        ("triangular", CyclicMode::Triangular),
        ("triangular2", CyclicMode::Triangular2),
        ("exp_range", CyclicMode::ExpRange),
    ];
    Phase::Cyclic {
        base_lr: num(a, "base_lr", Rule::NonNegative),
        max_lr: num(a, "max_lr", Rule::Positive),
        up,
        down,
        mode: word(a, "mode", &modes, CyclicMode::Triangular),
        gamma: num(a, "gamma", Rule::Positive),
    }
}

fn one_cycle(a: &mut Args, call: Span) -> Phase {
    let b = super::registry::find(SCHEDULES, "one_cycle").expect("one_cycle is in the registry");
    let max_lr = a.num("max_lr", 0.0, Rule::Positive);
    let total_steps = a.int("total_steps", 1, 1);
    let pct_start = a.num("pct_start", dflt(b, "pct_start"), Rule::UnitOpen);
    let div_factor = a.num("div_factor", dflt(b, "div_factor"), Rule::Positive);
    let final_div_factor = a.num("final_div_factor", dflt(b, "final_div_factor"), Rule::Positive);
    let anneal =
        word(a, "anneal", &[("cos", Anneal::Cos), ("linear", Anneal::Linear)], Anneal::Cos);
    let three_phase = a.boolean("three_phase", false);
    let limit = if three_phase { 0.5 } else { 1.0 };
    if pct_start * total_steps as f64 <= 1.0 || pct_start >= limit {
        let at = a.get("pct_start").map_or(call, |arg| arg.value.span);
        a.errors.push(
            Diagnostic::error(
                at,
                format!(
                    "pct_start {pct_start} leaves no room for both phases of {total_steps} steps"
                ),
            )
            .label("the warm-up phase needs more than one step")
            .note(format!("need pct_start * total_steps > 1 and pct_start < {limit}")),
        );
    }
    Phase::OneCycle {
        max_lr,
        total_steps,
        pct_start,
        div_factor,
        final_div_factor,
        anneal,
        three_phase,
    }
}

/// A bare word (or string) among `choices`, or `default` when not given.
fn word<T: Copy>(a: &mut Args, name: &str, choices: &[(&str, T)], default: T) -> T {
    let Some(arg) = a.get(name) else { return default };
    let text = match &arg.value.kind {
        ExprKind::Name(n) | ExprKind::Str(n) => Some(n.as_str()),
        _ => None,
    };
    if let Some(v) = choices.iter().find(|(w, _)| Some(*w) == text).map(|(_, v)| *v) {
        return v;
    }
    let all: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
    a.errors.push(
        Diagnostic::error(
            arg.value.span,
            format!("{name} must be one of {}, found {}", all.join(", "), describe(&arg.value)),
        )
        .label("unknown choice"),
    );
    default
}

/// `milestones = [30, 60, 90]`: increasing integers >= 1.
fn milestones(a: &mut Args) -> Vec<u64> {
    let Some(arg) = a.get("milestones") else { return Vec::new() };
    let ExprKind::List(items) = &arg.value.kind else {
        a.errors.push(
            Diagnostic::error(
                arg.value.span,
                format!("milestones must be a list of steps, found {}", describe(&arg.value)),
            )
            .label("expected e.g. `[30, 60, 90]`"),
        );
        return Vec::new();
    };
    let mut out: Vec<u64> = Vec::new();
    for item in items {
        match number(item) {
            Some(n)
                if n.int && n.value >= 1.0 && !out.last().is_some_and(|&l| n.value <= l as f64) =>
            {
                out.push(n.value as u64)
            }
            _ => a.errors.push(
                Diagnostic::error(
                    item.span,
                    format!(
                        "milestones must be increasing integers >= 1, found {}",
                        describe(item)
                    ),
                )
                .label("not a later step"),
            ),
        }
    }
    if items.is_empty() {
        a.errors.push(
            Diagnostic::error(arg.value.span, "milestones is empty")
                .label("give at least one step"),
        );
    }
    out
}

/// `scale_lr = 2`, `scale_lr = batch / 256` or `scale_lr = sqrt(batch / 256)`.
pub(crate) fn scale_lr(e: &Expr, errors: &mut Vec<Diagnostic>) -> Option<LrScale> {
    if let Some(n) = number(e) {
        if n.value > 0.0 && n.value.is_finite() {
            return Some(LrScale::Factor(n.value));
        }
    }
    let (inner, sqrt) = match &e.kind {
        ExprKind::Call { callee, args }
            if callee.name == "sqrt" && args.len() == 1 && args[0].name.is_none() =>
        {
            (&args[0].value, true)
        }
        _ => (e, false),
    };
    if let ExprKind::Binary { op: BinOp::Div, lhs, rhs } = &inner.kind {
        if let (ExprKind::Name(n), Some(r)) = (&lhs.kind, number(rhs)) {
            if n == "batch" && r.value > 0.0 && r.value.is_finite() {
                return Some(LrScale::Batch { reference: r.value, sqrt });
            }
        }
    }
    errors.push(
        Diagnostic::error(
            e.span,
            format!(
                "scale_lr must be a positive number, `batch / N` or `sqrt(batch / N)`, found {}",
                describe(e)
            ),
        )
        .label("not a learning-rate scale")
        .note("`scale_lr = batch / 256` is the linear scaling rule: lr times batch/256"),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schedule of the registry has its phase: none falls back to a constant rate.
    #[test]
    fn every_registry_schedule_has_a_phase() {
        for b in SCHEDULES {
            let mut a = Args::none(b);
            assert!(phase(b, &mut a, Span::default()).is_some(), "{}", b.name);
        }
    }
}

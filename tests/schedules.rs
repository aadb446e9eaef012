//! Learning-rate schedules against their formulas. Each schedule drives SGD on a small model
//! for at least 20 steps, compared after every step with `θ −= lr_t·g` where `lr_t` is
//! computed here from the definition (PyTorch's scheduler stepped once per optimizer step:
//! the rate of step `t` is its rate after `t − 1` `scheduler.step()` calls, `e = t − 1`).
//! The host-side rates are also compared with the definitions over a longer horizon, so
//! warm restarts, cycle boundaries and warmup ends are all crossed.

mod harness;

use harness::{check, compiled, first_error, sgd_with, TWO};
use std::f64::consts::PI;

const STEPS: usize = 25;
const LR: f64 = 0.1;

/// Checks `items` (with `optimizer sgd(lr = 0.1)` and a train block) against `lr(t)`:
/// the rates over 300 steps, then the training step over STEPS steps.
fn case(items: &str, lr: impl Fn(usize) -> f64 + Copy) {
    let full = format!("optimizer sgd(lr = {LR})\n{items}");
    let c = compiled(TWO, &full);
    for t in 1..=300usize {
        let got = nnc::schedule::lr_at(&c.model, &c.model.train, t as u64);
        let want = lr(t);
        assert!(
            (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
            "{items} step {t}: {got} vs {want}"
        );
    }
    check(TWO, &full, STEPS, &mut sgd_with(lr));
}

fn e(t: usize) -> f64 {
    (t - 1) as f64
}

#[test]
fn constant() {
    case("schedule constant", |_| LR);
    case("", |_| LR);
}

#[test]
fn step_decay() {
    // StepLR(step_size=3, gamma=0.5).
    case("schedule step(3, gamma = 0.5)", |t| LR * 0.5f64.powi(((t - 1) / 3) as i32));
}

#[test]
fn multistep_decay() {
    // MultiStepLR(milestones=[3, 7, 12], gamma=0.3): decays once e reaches each milestone.
    case("schedule multistep([3, 7, 12], gamma = 0.3)", |t| {
        let k = [3, 7, 12].iter().filter(|&&m| t > m).count();
        LR * 0.3f64.powi(k as i32)
    });
}

#[test]
fn exponential_decay() {
    case("schedule exponential(0.9)", |t| LR * 0.9f64.powf(e(t)));
}

#[test]
fn inverse_time_and_inv_sqrt() {
    case("schedule inverse_time(k = 0.2, power = 0.75)", |t| LR / (1.0 + 0.2 * e(t)).powf(0.75));
    case("schedule inverse_time(0.5)", |t| LR / (1.0 + 0.5 * e(t)));
    case("schedule inv_sqrt", |t| LR / (t as f64).sqrt());
}

#[test]
fn polynomial_decay_to_end() {
    // PolynomialLR(total_iters=15, power=2) shifted to end at 0.01, then held.
    case("schedule polynomial(total = 15, power = 2, end = 0.01)", |t| {
        let f = 1.0 - e(t).min(15.0) / 15.0;
        (LR - 0.01) * f * f + 0.01
    });
}

#[test]
fn cosine_annealing_past_its_period() {
    // CosineAnnealingLR(T_max=10, eta_min=0.01): periodic past T_max, as PyTorch.
    case("schedule cosine(T = 10, eta_min = 0.01)", |t| {
        0.01 + (LR - 0.01) * (1.0 + (PI * e(t) / 10.0).cos()) / 2.0
    });
}

/// CosineAnnealingWarmRestarts, by stepping its counters as PyTorch's `step()` does.
fn sgdr(t0: usize, mult: usize, eta_min: f64) -> impl Fn(usize) -> f64 + Copy {
    move |t| {
        let (mut cur, mut period) = (0, t0);
        for _ in 1..t {
            cur += 1;
            if cur >= period {
                cur -= period;
                period *= mult;
            }
        }
        eta_min + (LR - eta_min) * (1.0 + (PI * cur as f64 / period as f64).cos()) / 2.0
    }
}

#[test]
fn sgdr_warm_restarts() {
    // Restarts at e = 3, 9, 21 (periods 3, 6, 12): inside the 25 steps.
    case("schedule sgdr(T0 = 3, T_mult = 2, eta_min = 0.005)", sgdr(3, 2, 0.005));
    case("schedule sgdr(5)", sgdr(5, 1, 0.0));
    let f = sgdr(3, 2, 0.0);
    assert_eq!((f(4), f(10), f(22)), (LR, LR, LR));
}

/// CyclicLR as PyTorch's `get_lr` computes it.
fn cyclic(
    base: f64,
    max: f64,
    up: usize,
    down: usize,
    mode: &'static str,
    gamma: f64,
) -> impl Fn(usize) -> f64 + Copy {
    move |t| {
        let it = e(t);
        let total = (up + down) as f64;
        let ratio = up as f64 / total;
        let cycle = (1.0 + it / total).floor();
        let x = 1.0 + it / total - cycle;
        let s = if x <= ratio { x / ratio } else { (x - 1.0) / (ratio - 1.0) };
        let scale = match mode {
            "triangular" => 1.0,
            "triangular2" => 1.0 / 2f64.powf(cycle - 1.0),
            _ => gamma.powf(it),
        };
        base + (max - base) * s * scale
    }
}

#[test]
fn cyclic_modes_across_cycle_boundaries() {
    case(
        "schedule cyclic(base_lr = 0.01, max_lr = 0.1, step_size = 3)",
        cyclic(0.01, 0.1, 3, 3, "triangular", 1.0),
    );
    case(
        "schedule cyclic(0.01, 0.1, step_size = 3, step_size_down = 2, mode = triangular2)",
        cyclic(0.01, 0.1, 3, 2, "triangular2", 1.0),
    );
    case(
        "schedule cyclic(0.01, 0.1, step_size = 4, mode = exp_range, gamma = 0.95)",
        cyclic(0.01, 0.1, 4, 4, "exp_range", 0.95),
    );
    // Cycle boundaries: the base rate at e = 0, 6, 12; the peak at e = 3, 9.
    let f = cyclic(0.01, 0.1, 3, 3, "triangular", 1.0);
    assert_eq!((f(1), f(4), f(7), f(10), f(13)), (0.01, 0.1, 0.01, 0.1, 0.01));
}

/// OneCycleLR's `get_lr`, held at its last value past total_steps.
fn one_cycle(
    max: f64,
    total: usize,
    pct: f64,
    div: f64,
    fdiv: f64,
    cos: bool,
    three: bool,
) -> impl Fn(usize) -> f64 + Copy {
    move |t| {
        let initial = max / div;
        let min = initial / fdiv;
        let tt = total as f64;
        let phases: Vec<(f64, f64, f64)> = if three {
            vec![
                (pct * tt - 1.0, initial, max),
                (2.0 * pct * tt - 2.0, max, initial),
                (tt - 1.0, initial, min),
            ]
        } else {
            vec![(pct * tt - 1.0, initial, max), (tt - 1.0, max, min)]
        };
        let step = e(t).min(tt - 1.0);
        let mut start = 0.0;
        for (i, (end, a, b)) in phases.iter().enumerate() {
            if step <= *end || i == phases.len() - 1 {
                let p = (step - start) / (end - start);
                return if cos {
                    b + (a - b) / 2.0 * ((PI * p).cos() + 1.0)
                } else {
                    (b - a) * p + a
                };
            }
            start = *end;
        }
        unreachable!()
    }
}

#[test]
fn one_cycle_policy() {
    case(
        "schedule one_cycle(max_lr = 0.2, total_steps = 20)",
        one_cycle(0.2, 20, 0.3, 25.0, 1e4, true, false),
    );
    case(
        "schedule one_cycle(0.2, 24, pct_start = 0.25, div_factor = 10, final_div_factor = 100, anneal = linear, three_phase = true)",
        one_cycle(0.2, 24, 0.25, 10.0, 100.0, false, true),
    );
    // The peak is at e = pct·T − 1.
    let f = one_cycle(0.2, 20, 0.3, 25.0, 1e4, true, false);
    assert!((f(6) - 0.2).abs() < 1e-15 && (f(1) - 0.2 / 25.0).abs() < 1e-15);
}

#[test]
fn linear_warmup() {
    // LinearLR(start_factor=0, total_iters=5) (starts at 0), then the base rate.
    case("schedule warmup(5)", |t| LR * e(t).min(5.0) / 5.0);
    case("schedule warmup(4, from = 0.25)", |t| LR * (0.25 + 0.75 * e(t).min(4.0) / 4.0));
}

#[test]
fn warmup_then_cosine_then_constant() {
    // SequentialLR([LinearLR, CosineAnnealingLR, ConstantLR(factor=1)], milestones=[6, 16]).
    case("schedule warmup(6) then cosine(T = 10, eta_min = 0.02) then constant", |t| {
        if t <= 6 {
            LR * e(t) / 6.0
        } else if t <= 16 {
            0.02 + (LR - 0.02) * (1.0 + (PI * (t - 7) as f64 / 10.0).cos()) / 2.0
        } else {
            LR
        }
    });
    case("schedule warmup(3, from = 0.1) then step(4, 0.5)", |t| {
        if t <= 3 {
            LR * (0.1 + 0.9 * e(t) / 3.0)
        } else {
            LR * 0.5f64.powi(((t - 4) / 4) as i32)
        }
    });
    case("schedule polynomial(total = 8) then sgdr(T0 = 4)", |t| {
        if t <= 8 {
            LR * (1.0 - e(t) / 8.0)
        } else {
            sgdr(4, 1, 0.0)(t - 8)
        }
    });
}

#[test]
fn linear_scaling_rule() {
    // The harness's batches hold 4 examples; `batch = 4` says so.
    case("schedule warmup(5)\ntrain { batch = 4, scale_lr = batch / 2 }", |t| {
        2.0 * LR * e(t).min(5.0) / 5.0
    });
    case("schedule cosine(T = 20)\ntrain { batch = 4, scale_lr = sqrt(batch / 16) }", |t| {
        0.5 * LR * (1.0 + (PI * e(t) / 20.0).cos()) / 2.0
    });
    case("train { scale_lr = 3 }", |_| 3.0 * LR);
    // `--batch` changes the factor: the rule follows the run's batch size.
    let c = compiled(TWO, "optimizer sgd(lr = 0.1)\ntrain { batch = 32, scale_lr = batch / 256 }");
    let mut spec = c.model.train.clone();
    spec.batch = 1024;
    assert!((nnc::schedule::lr_at(&c.model, &spec, 1) - 0.4).abs() < 1e-15);
}

#[test]
fn schedule_mistakes_point_at_their_place() {
    let e = |items: &str| first_error(TWO, &format!("optimizer sgd(lr = 0.1)\n{items}"));
    assert_eq!(
        e("schedule step(3) then cosine(T = 5)"),
        ("nothing can follow `step`: it never ends".into(), "step(3)".into())
    );
    assert_eq!(
        e("schedule constant then warmup(3)"),
        ("nothing can follow `constant`".into(), "constant".into())
    );
    assert_eq!(
        e("schedule multistep([5, 3])"),
        ("milestones must be increasing integers >= 1, found 3".into(), "3".into())
    );
    assert_eq!(
        e("schedule cyclic(0.01, 0.1, mode = sawtooth)"),
        (
            "mode must be one of triangular, triangular2, exp_range, found the name `sawtooth`"
                .into(),
            "sawtooth".into()
        )
    );
    assert_eq!(
        e("schedule warmup(0)"),
        ("steps must be a positive integer, found 0".into(), "0".into())
    );
    assert_eq!(e("schedule cosine(eta_min = 0.1)").0, "missing required `T` for cosine");
    assert_eq!(
        e("schedule one_cycle(0.1, total_steps = 20, pct_start = 0.05)"),
        ("pct_start 0.05 leaves no room for both phases of 20 steps".into(), "0.05".into())
    );
    assert_eq!(
        e("train { scale_lr = batch * 2 }"),
        (
            "scale_lr must be a positive number, `batch / N` or `sqrt(batch / N)`, found an expression".into(),
            "batch * 2".into()
        )
    );
}

//! Learning-rate schedules, evaluated on the host in `f64` from the step count: the compiled
//! step receives the rate as a runtime scalar (`ScalarArg::Lr`), so a schedule never
//! changes or recompiles the graph.
//!
//! `t` counts optimizer steps from 1 and `e = t − 1`. Each PyTorch scheduler's value at step
//! `t` is its learning rate after `t − 1` calls of `scheduler.step()` (one per optimizer
//! step, its `last_epoch = e`), in the closed form:
//!
//! | phase | lr at step t (base rate `lr`) | length |
//! |-------|--------------------------------|--------|
//! | constant | `lr` | - |
//! | step(s, γ) | `lr·γ^⌊e/s⌋` | - |
//! | multistep(M, γ) | `lr·γ^#{m ∈ M : m ≤ e}` | - |
//! | exponential(γ) | `lr·γ^e` | - |
//! | inverse_time(k, p) | `lr/(1 + k·e)^p` | - |
//! | inv_sqrt | `lr/√t` | - |
//! | polynomial(T, p, end) | `(lr − end)(1 − min(e, T)/T)^p + end` | T |
//! | cosine(T, η) | `η + (lr − η)(1 + cos(π·e/T))/2` (periodic past T, as PyTorch) | T |
//! | sgdr(T₀, m, η) | cosine with `e` since the last restart, period `T₀·mⁱ` | - |
//! | cyclic(b, M, up, down, mode, γ) | CyclicLR (momentum is not cycled) | - |
//! | one_cycle(M, T, ...) | OneCycleLR (momentum is not cycled); held at its final value after T | T |
//! | warmup(N, f) | `lr·(f + (1 − f)·min(e, N)/N)` | N |
//!
//! Phases joined by `then` run in sequence: a phase with length `n` covers `n` steps and the
//! next phase starts at its own `t = 1` (PyTorch's SequentialLR with milestones at the sums
//! of the lengths). `scale_lr` multiplies the result ([`lr_at`]).

use crate::check::{Anneal, CyclicMode, LrScale, Model, Phase, Schedule, TrainSpec};
use std::f64::consts::PI;

impl Schedule {
    /// The learning rate for optimizer step `t` (from 1) given the base rate `base`.
    pub fn lr(&self, base: f64, t: u64) -> f64 {
        let t = t.max(1);
        let mut start = 0;
        for (i, p) in self.phases.iter().enumerate() {
            match p.length() {
                Some(n) if i + 1 < self.phases.len() && t > start + n => start += n,
                _ => return p.lr(base, t - start),
            }
        }
        base
    }
}

impl Phase {
    /// How many steps the phase lasts when another follows it (`None`: it never ends).
    pub fn length(&self) -> Option<u64> {
        match self {
            Phase::Polynomial { total, .. } => Some(*total),
            Phase::Cosine { t_max, .. } => Some(*t_max),
            Phase::OneCycle { total_steps, .. } => Some(*total_steps),
            Phase::Warmup { steps, .. } => Some(*steps),
            _ => None,
        }
    }

    /// The rate at the phase's own step `t` (from 1).
    pub fn lr(&self, base: f64, t: u64) -> f64 {
        let e = t.saturating_sub(1);
        let ef = e as f64;
        match self {
            Phase::Constant => base,
            Phase::Step { step_size, gamma } => base * gamma.powf((e / step_size) as f64),
            Phase::MultiStep { milestones, gamma } => {
                base * gamma.powf(milestones.iter().filter(|&&m| m <= e).count() as f64)
            }
            Phase::Exponential { gamma } => base * gamma.powf(ef),
            Phase::InverseTime { k, power } => base / (1.0 + k * ef).powf(*power),
            Phase::InvSqrt => base / (t as f64).sqrt(),
            Phase::Polynomial { total, power, end } => {
                let left = 1.0 - e.min(*total) as f64 / *total as f64;
                (base - end) * left.powf(*power) + end
            }
            Phase::Cosine { t_max, eta_min } => cosine(base, *eta_min, ef, *t_max as f64),
            Phase::Sgdr { t0, t_mult, eta_min } => {
                let (cur, period) = restart(e, *t0, *t_mult);
                cosine(base, *eta_min, cur as f64, period as f64)
            }
            Phase::Cyclic { base_lr, max_lr, up, down, mode, gamma } => {
                cyclic(*base_lr, *max_lr, *up, *down, *mode, *gamma, e)
            }
            Phase::OneCycle { .. } => one_cycle(self, e),
            Phase::Warmup { steps, from } => {
                base * (from + (1.0 - from) * e.min(*steps) as f64 / *steps as f64)
            }
        }
    }
}

/// `η + (lr − η)(1 + cos(π·cur/period))/2`
fn cosine(base: f64, eta_min: f64, cur: f64, period: f64) -> f64 {
    eta_min + (base - eta_min) * (1.0 + (PI * cur / period).cos()) / 2.0
}

/// CosineAnnealingWarmRestarts' `(T_cur, T_i)` after `e` steps: periods `T₀, T₀·m, T₀·m², ...`.
fn restart(e: u64, t0: u64, t_mult: u64) -> (u64, u64) {
    if t_mult == 1 {
        return (e % t0, t0);
    }
    let (mut cur, mut period) = (e, t0);
    while cur >= period {
        cur -= period;
        period = period.saturating_mul(t_mult);
    }
    (cur, period)
}

/// CyclicLR: `cycle = ⌊1 + e/(up+down)⌋`, `x = 1 + e/(up+down) − cycle`, the triangle's
/// height `x/r` rising (`r = up/(up+down)`) or `(x−1)/(r−1)` falling, times the mode's scale.
fn cyclic(base: f64, max: f64, up: u64, down: u64, mode: CyclicMode, gamma: f64, e: u64) -> f64 {
    let total = (up + down) as f64;
    let ratio = up as f64 / total;
    let cycle = (1.0 + e as f64 / total).floor();
    let x = 1.0 + e as f64 / total - cycle;
    let height = if x <= ratio { x / ratio } else { (x - 1.0) / (ratio - 1.0) };
    let scale = match mode {
        CyclicMode::Triangular => 1.0,
        CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
        CyclicMode::ExpRange => gamma.powf(e as f64),
    };
    base + (max - base) * height * scale
}

/// OneCycleLR: phases end at `pct·T − 1` (and `2·pct·T − 2` with three phases) and `T − 1`;
/// within a phase the rate anneals from its start to its end value.
fn one_cycle(p: &Phase, e: u64) -> f64 {
    let Phase::OneCycle {
        max_lr,
        total_steps,
        pct_start,
        div_factor,
        final_div_factor,
        anneal,
        three_phase,
    } = *p
    else {
        return 0.0;
    };
    let initial = max_lr / div_factor;
    let min = initial / final_div_factor;
    let t = total_steps as f64;
    let phases: Vec<(f64, f64, f64)> = if three_phase {
        vec![
            (pct_start * t - 1.0, initial, max_lr),
            (2.0 * pct_start * t - 2.0, max_lr, initial),
            (t - 1.0, initial, min),
        ]
    } else {
        vec![(pct_start * t - 1.0, initial, max_lr), (t - 1.0, max_lr, min)]
    };
    // PyTorch refuses steps past total_steps; here the rate stays at its final value.
    let step = e.min(total_steps - 1) as f64;
    let mut start = 0.0;
    for (i, &(end, from, to)) in phases.iter().enumerate() {
        if step <= end || i + 1 == phases.len() {
            let pct = (step - start) / (end - start);
            return match anneal {
                Anneal::Cos => to + (from - to) / 2.0 * ((PI * pct).cos() + 1.0),
                Anneal::Linear => (to - from) * pct + from,
            };
        }
        start = end;
    }
    min
}

impl LrScale {
    /// The factor for batch size `batch`.
    pub fn factor(&self, batch: usize) -> f64 {
        match *self {
            LrScale::Factor(f) => f,
            LrScale::Batch { reference, sqrt: false } => batch as f64 / reference,
            LrScale::Batch { reference, sqrt: true } => (batch as f64 / reference).sqrt(),
        }
    }
}

/// The learning rate a run uses at step `t`: the schedule of the optimizer's base rate, times
/// `scale_lr` for the run's batch size (`spec` has the command line's overrides applied).
pub fn lr_at(model: &Model, spec: &TrainSpec, t: u64) -> f64 {
    let scale = spec.scale_lr.map_or(1.0, |s| s.factor(spec.batch));
    scale * model.schedule.lr(model.optimizer.lr(), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }

    #[test]
    fn step_indexing_matches_pytorch_last_epoch() {
        // StepLR(step_size=2, gamma=0.5): 1, 1, .5, .5, .25 for last_epoch 0..4.
        let p = Phase::Step { step_size: 2, gamma: 0.5 };
        let got: Vec<f64> = (1..=5).map(|t| p.lr(1.0, t)).collect();
        assert_eq!(got, [1.0, 1.0, 0.5, 0.5, 0.25]);
        // LinearLR(start_factor=0.25, total_iters=3): .25, .5, .75, 1, 1.
        let w = Phase::Warmup { steps: 3, from: 0.25 };
        let got: Vec<f64> = (1..=5).map(|t| w.lr(2.0, t)).collect();
        assert_eq!(got, [0.5, 1.0, 1.5, 2.0, 2.0]);
    }

    #[test]
    fn restarts_follow_the_periods() {
        assert_eq!(restart(0, 3, 2), (0, 3));
        assert_eq!(restart(2, 3, 2), (2, 3));
        assert_eq!(restart(3, 3, 2), (0, 6));
        assert_eq!(restart(8, 3, 2), (5, 6));
        assert_eq!(restart(9, 3, 2), (0, 12));
        assert_eq!(restart(7, 3, 1), (1, 3));
    }

    #[test]
    fn sequence_starts_each_phase_at_its_own_step_one() {
        let s = Schedule {
            phases: vec![
                Phase::Warmup { steps: 4, from: 0.0 },
                Phase::Cosine { t_max: 10, eta_min: 0.0 },
            ],
        };
        close(s.lr(1.0, 1), 0.0);
        close(s.lr(1.0, 4), 0.75);
        close(s.lr(1.0, 5), 1.0);
        close(s.lr(1.0, 10), (1.0 + (PI * 5.0 / 10.0).cos()) / 2.0);
    }

    #[test]
    fn cyclic_and_one_cycle_turning_points() {
        let tri = |e| cyclic(0.1, 1.0, 2, 2, CyclicMode::Triangular2, 1.0, e);
        let got: Vec<f64> = (0..9).map(tri).collect();
        let want = [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1];
        for (g, w) in got.iter().zip(want) {
            close(*g, w);
        }
        let p = Phase::OneCycle {
            max_lr: 1.0,
            total_steps: 10,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            anneal: Anneal::Linear,
            three_phase: false,
        };
        close(p.lr(1.0, 1), 0.04);
        close(p.lr(1.0, 3), 1.0);
        close(p.lr(1.0, 10), 0.04 / 1e4);
        close(p.lr(1.0, 50), 0.04 / 1e4);
    }
}

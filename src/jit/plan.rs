//! The static memory plan: where every buffer of the compiled programs lives.
//!
//! Two arenas, allocated by the runtime, never per step:
//! - the *fixed* arena (floats): parameters, then optimizer state, then the temporaries
//!   whose size does not depend on the batch size;
//! - the *batch* arena: temporaries of `c·B` elements, at offsets `o·B̂` where `B̂` is the
//!   batch size rounded up to a multiple of 16 ([`batch_pad`]), so every buffer starts on a
//!   64-byte boundary and one plan serves every batch size. The runtime grows this arena
//!   when a larger batch arrives.
//!
//! Temporaries are placed by liveness: each has an interval of kernels `[first, last]` in
//! which it is written or read; two temporaries share memory only when their intervals are
//! disjoint (a kernel never writes a buffer that overlaps one it reads). Placement is first
//! fit in order of first use, deterministic. The step and forward programs never run at the
//! same time, so their temporaries start at the same offsets.

use super::fuse::{Buf, Program, Sym, Temp};
use crate::graph::{Graph, ScalarArg};

/// Buffers start on multiples of this many floats (64 bytes).
pub const ALIGN: usize = 16;

/// The batch size rounded up to a multiple of [`ALIGN`] (at least one block).
pub fn batch_pad(batch: usize) -> usize {
    batch.max(1).div_ceil(ALIGN) * ALIGN
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Where a buffer lives in the arenas (a temporary, or a parameter or state: `Fixed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Offset in floats in the fixed arena.
    Fixed(usize),
    /// Offset in units of `B̂` floats in the batch arena.
    Batch(usize),
}

/// The plan of one compiled model.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Offset of each parameter in the fixed arena.
    pub params: Vec<usize>,
    /// Offset of each optimizer state tensor in the fixed arena.
    pub states: Vec<usize>,
    /// Where the temporaries start in the fixed arena.
    pub temp_base: usize,
    /// Size of the fixed arena in floats.
    pub fixed_len: usize,
    /// Size of the batch arena in units of `B̂` floats.
    pub batch_units: usize,
    /// Per program (in the order given to [`plan`]), the slot of each temporary.
    pub temps: Vec<Vec<Slot>>,
    /// The runtime scalars of all programs, sorted: the context's `args` array holds their
    /// values in this order.
    pub args: Vec<ScalarArg>,
}

impl Plan {
    /// Floats of the batch arena for batch size `batch`.
    pub fn batch_len(&self, batch: usize) -> usize {
        self.batch_units * batch_pad(batch)
    }

    /// Where buffer `buf` of program `prog` lives.
    pub fn place(&self, prog: usize, buf: Buf) -> Place {
        match buf {
            Buf::Input(i) => Place::Input(i),
            Buf::Param(i) => Place::Arena(Slot::Fixed(self.params[i as usize])),
            Buf::State(i) => Place::Arena(Slot::Fixed(self.states[i as usize])),
            Buf::Temp(t) => Place::Arena(self.temps[prog][t as usize]),
        }
    }
}

/// Where any buffer lives: a [`Slot`] of an arena, or a caller's input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// In an arena.
    Arena(Slot),
    /// Graph input `i`.
    Input(u32),
}

/// Plans the arenas for `g`'s parameters and states and the temporaries of `programs`.
pub fn plan(g: &Graph, programs: &[&Program]) -> Plan {
    let mut off = 0;
    let mut place = |numel: usize| {
        let o = off;
        off += align(numel);
        o
    };
    let params = g.params.iter().map(|p| place(p.shape.numel(0))).collect();
    let states = g.states.iter().map(|s| place(s.shape.numel(0))).collect();
    let temp_base = off;
    let (mut fixed_top, mut batch_units) = (0, 0);
    let mut temps = Vec::new();
    for p in programs {
        let (slots, f, b) = place_temps(&p.temps);
        fixed_top = fixed_top.max(f);
        batch_units = batch_units.max(b);
        temps.push(
            slots
                .into_iter()
                .map(|s| match s {
                    Slot::Fixed(o) => Slot::Fixed(temp_base + o),
                    b => b,
                })
                .collect(),
        );
    }
    let mut args: Vec<ScalarArg> = programs.iter().flat_map(|p| p.args.iter().copied()).collect();
    args.sort();
    args.dedup();
    Plan { params, states, temp_base, fixed_len: temp_base + fixed_top, batch_units, temps, args }
}

/// First-fit placement by liveness; returns the slots (fixed offsets relative to the
/// temporaries' base) and the sizes used in each arena. In order of first use, each
/// temporary takes the lowest offset where it overlaps no temporary still live (one whose
/// last use is at or after its first); an [`Arena`] keeps the free gaps between the live
/// ones, so that the placement costs time linear in the number of temporaries for the usual
/// shapes of liveness (a long chain keeps thousands live at once).
fn place_temps(temps: &[Temp]) -> (Vec<Slot>, usize, usize) {
    let size = |t: &Temp| -> usize {
        match t.size {
            Sym { c, e: 0 } => align(c as usize),
            Sym { c, .. } => c as usize,
        }
    };
    let mut order: Vec<usize> = (0..temps.len()).collect();
    order.sort_by_key(|&i| (temps[i].live.0, i));
    let mut slots = vec![Slot::Fixed(0); temps.len()];
    let (mut fixed, mut batch) = (Arena::default(), Arena::default());
    // Live temporaries by last use, earliest first: (last use, batch?, offset, size).
    let mut live = std::collections::BinaryHeap::new();
    for i in order {
        let start = temps[i].live.0;
        while let Some(&std::cmp::Reverse((end, in_batch, at, n))) = live.peek() {
            if end >= start {
                break;
            }
            live.pop();
            if in_batch { &mut batch } else { &mut fixed }.free(at, n);
        }
        let in_batch = temps[i].size.has_batch();
        let want = size(&temps[i]);
        let at = if in_batch { &mut batch } else { &mut fixed }.take(want);
        slots[i] = if in_batch { Slot::Batch(at) } else { Slot::Fixed(at) };
        live.push(std::cmp::Reverse((temps[i].live.1, in_batch, at, want)));
    }
    (slots, fixed.top, batch.top)
}

/// One arena's free space while placing: the gaps below `end` (sorted, disjoint, never
/// adjacent), the end of the highest live temporary, and the most ever used.
#[derive(Default)]
struct Arena {
    gaps: Vec<(usize, usize)>,
    end: usize,
    top: usize,
}

impl Arena {
    /// The lowest offset with `n` free units.
    fn take(&mut self, n: usize) -> usize {
        if let Some(k) = self.gaps.iter().position(|&(_, len)| len >= n) {
            let (at, len) = self.gaps[k];
            if len == n {
                self.gaps.remove(k);
            } else {
                self.gaps[k] = (at + n, len - n);
            }
            return at;
        }
        let at = self.end;
        self.end += n;
        self.top = self.top.max(self.end);
        at
    }

    /// Returns `n` units at `at` (taken before).
    fn free(&mut self, at: usize, n: usize) {
        let k = self.gaps.partition_point(|&(o, _)| o < at);
        self.gaps.insert(k, (at, n));
        // Merge with the next gap, then with the previous one.
        if k + 1 < self.gaps.len() && at + n == self.gaps[k + 1].0 {
            self.gaps[k].1 += self.gaps.remove(k + 1).1;
        }
        let k = if k > 0 && self.gaps[k - 1].0 + self.gaps[k - 1].1 == at {
            self.gaps[k - 1].1 += self.gaps.remove(k).1;
            k - 1
        } else {
            k
        };
        // A gap reaching the end is no gap.
        if k + 1 == self.gaps.len() && self.gaps[k].0 + self.gaps[k].1 == self.end {
            self.end = self.gaps.pop().map_or(self.end, |g| g.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::NodeId;

    fn t(size: Sym, live: (usize, usize)) -> Temp {
        Temp { node: NodeId(0), size, live }
    }

    #[test]
    fn disjoint_lifetimes_share_memory_and_overlapping_ones_do_not() {
        let b = |c| Sym { c, e: 1 };
        let temps =
            [t(b(64), (0, 2)), t(b(32), (1, 3)), t(b(64), (3, 4)), t(Sym::fixed(10), (0, 9))];
        let (slots, fixed, batch) = place_temps(&temps);
        assert_eq!(slots, vec![Slot::Batch(0), Slot::Batch(64), Slot::Batch(0), Slot::Fixed(0)]);
        // Temp 2 starts where temp 0 ended; temp 1 is still live, so 64 + 32 units in all.
        assert_eq!((fixed, batch), (16, 96));
    }

    #[test]
    fn batch_is_padded_to_sixteen() {
        assert_eq!((batch_pad(1), batch_pad(16), batch_pad(17)), (16, 16, 32));
    }
}

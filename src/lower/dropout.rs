//! Dropout, lowered by mode:
//!
//! | mode  | `dropout(x, p)`                                                             |
//! |-------|-----------------------------------------------------------------------------|
//! | train | `x · m`, `m = drop_mask[keep 1 − p, salt](step)`: 0 or `1/(1 − p)` per element |
//! | eval  | `x`                                                                         |
//!
//! `p = 0` is `x` in both modes. Each dropout of the model is a *site*, numbered in the order
//! of the model's values (every site counts, whatever its `p` or the mode, so a site's number
//! never depends on another's settings); its salt is `graph::dropout::salt(seed, site)` with
//! the run's seed, so sites and seeds draw different masks, and the runtime `step` scalar
//! gives a new mask every step. The backward pass multiplies by the same mask node.

use super::{Lowering, Mode};
use crate::graph::{dropout, Graph, NodeId, Op, ScalarArg, F64};

/// `dropout(x, p)` at the next site of `cx`.
pub(super) fn dropout(g: &mut Graph, cx: &mut Lowering, x: NodeId, p: f64) -> NodeId {
    let site = cx.dropouts;
    cx.dropouts += 1;
    if cx.mode == Mode::Eval || p == 0.0 {
        return x;
    }
    let step = g.scalar(ScalarArg::Step);
    let op = Op::DropMask { keep: F64::new(1.0 - p), salt: dropout::salt(cx.seed, site) };
    let mask = g.add(op, vec![step], g.shape(x).clone());
    g.mul(x, mask)
}

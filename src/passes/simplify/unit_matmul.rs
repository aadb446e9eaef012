//! `matmul-unit`: a matrix product with a dimension of size 1 is an outer product or a
//! matrix–vector product, which elementwise code does as well as a GEMM call and fuses with
//! its neighbours (a regression head `[B, h]·[h, 1]`, its gradients `[B, 1]·[1, h]` and
//! `[1, B]·[B, h]`). With `C = op(A)·op(B)`, `op(A)` of shape `[m, k]`, `op(B)` `[k, n]`:
//!
//! ```text
//! k = 1:  C = bc(A as [m,1]) · bc(B as [1,n])
//! n = 1:  C = Σ_axis1 A · bc(B as [k])                  (A stored [m,k])
//!         C = (Σ_axis0 A · bc(B as [k,1])) as [m,1]     (A stored [k,m])
//! m = 1:  C = Σ_axis0 bc(A as [k,1]) · B                (B stored [k,n])
//!         C = (Σ_axis1 B · bc(A as [k])) as [1,n]       (B stored [n,k])
//! ```
//! A vector operand (size 1 in one dimension) has the same elements in either orientation,
//! so its transpose is a reshape. Each `C` element sums the same products as the GEMM.

use crate::graph::{Axes, Dim, Graph, Node, NodeId, Op, Reduce, Shape};

pub fn matmul_unit(g: &mut Graph, n: &Node, a: &[NodeId]) -> Option<NodeId> {
    let Op::MatMul { ta, tb } = n.op else { return None };
    let (x, y) = (a[0], a[1]);
    let (sa, sb) = (g.shape(x).dims().to_vec(), g.shape(y).dims().to_vec());
    let (m, k) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
    let cols = if tb { sb[0] } else { sb[1] };
    let one = Dim::Fixed(1);
    let out = n.shape.clone();
    let sum = |g: &mut Graph, v: NodeId, axis: usize| g.reduce(Reduce::Sum, v, Axes::of(&[axis]));
    if k == one {
        let av = g.reshape(x, &Shape(vec![m, one]));
        let bv = g.reshape(y, &Shape(vec![one, cols]));
        let (ab, bb) = (g.broadcast(av, &out), g.broadcast(bv, &out));
        return Some(g.mul(ab, bb));
    }
    if cols == one {
        if ta {
            let bv = g.reshape(y, &Shape(vec![k, one]));
            let bb = g.broadcast(bv, &Shape(vec![k, m]));
            let p = g.mul(x, bb);
            let s = sum(g, p, 0);
            return Some(g.reshape(s, &out));
        }
        let bv = g.reshape(y, &Shape(vec![k]));
        let bb = g.broadcast(bv, &Shape(vec![m, k]));
        let p = g.mul(x, bb);
        return Some(sum(g, p, 1));
    }
    if m == one {
        if tb {
            let av = g.reshape(x, &Shape(vec![k]));
            let ab = g.broadcast(av, &Shape(vec![cols, k]));
            let p = g.mul(y, ab);
            let s = sum(g, p, 1);
            return Some(g.reshape(s, &out));
        }
        let av = g.reshape(x, &Shape(vec![k, one]));
        let ab = g.broadcast(av, &Shape(vec![k, cols]));
        let p = g.mul(ab, y);
        return Some(sum(g, p, 0));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::eval::{eval, Env};
    use crate::graph::InputKind;
    use crate::tensor::Tensor;

    /// Every transpose combination and unit dimension, against the GEMM's values.
    #[test]
    fn agrees_with_the_product() {
        for (m, k, n) in [(5, 1, 3), (5, 4, 1), (1, 4, 3), (1, 4, 1), (1, 1, 1), (5, 1, 1)] {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut g = Graph::new();
                let sa = if ta { [k, m] } else { [m, k] };
                let sb = if tb { [n, k] } else { [k, n] };
                let x = g.add_input("x", Shape::fixed(&sa), InputKind::Features);
                let y = g.add_input("y", Shape::fixed(&sb), InputKind::Features);
                let c = g.matmul(x, y, ta, tb);
                g.add_output("c", c);
                let node = g.node(c).clone();
                let mut h = g.clone();
                let r = matmul_unit(&mut h, &node, &[x, y]).expect("a unit dimension");
                assert_eq!(h.shape(r), &node.shape);
                h.outputs[0].node = r;
                let data = |s: &[usize], o: f64| {
                    let len = s.iter().product();
                    Tensor::new(s.to_vec(), (0..len).map(|i| (i as f64 * 0.7 + o).sin()).collect())
                };
                let inputs = [data(&sa, 0.1), data(&sb, 2.0)];
                let env = Env { inputs: &inputs, params: &[], states: &[], lr: 0.0, step: 1.0 };
                let (want, got) = (eval(&g, &env).unwrap(), eval(&h, &env).unwrap());
                for (w, v) in want.outputs[0].data.iter().zip(&got.outputs[0].data) {
                    assert!((w - v).abs() < 1e-12, "m{m} k{k} n{n} ta{ta} tb{tb}: {w} vs {v}");
                }
            }
        }
    }
}

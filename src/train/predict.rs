//! Predictions (`nnc predict`): the model's per-example output on a data set, in data order,
//! read the way its loss reads it ([`Model::prediction`]): class probabilities and the most
//! probable class for a cross-entropy, the probability of class 1 and the class for a binary
//! cross-entropy, the score and its sign for the ±1 losses (logistic, hinge), the values for
//! the regression losses. The evaluation-mode graph (running statistics, no dropout) with the
//! extra `prediction` output runs on the interpreter; probabilities are computed from its
//! outputs in f64.

use crate::check::{LossKind, Model};
use crate::error::{Error, Result};
use crate::graph::eval::{eval, Env};
use crate::graph::Role;
use crate::lower::{self, LowerOptions, Mode};
use crate::passes;
use crate::tensor::Tensor;

use super::data::{self, Dataset};
use super::session::inputs_for;
use super::state::Weights;

/// One row per example: `index` (its position in the data), the prediction's columns, then
/// the label when the data has one.
#[derive(Clone, Debug, PartialEq)]
pub struct Predictions {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// A value of a prediction table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// An example index or a class.
    Int(i64),
    /// A probability, score or value, rounded to the f32 the model computes in.
    Real(f32),
}

impl Cell {
    /// The CSV text: integers as integers, reals in shortest round-trip form.
    pub fn text(self) -> String {
        match self {
            Cell::Int(i) => i.to_string(),
            Cell::Real(v) => super::report::csv_f32(v),
        }
    }
}

impl Predictions {
    /// The table as CSV text, header first.
    pub fn csv(&self) -> String {
        let mut out = self.header.join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|c| c.text()).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }
}

/// Predicts every example of `ds` with weights `w`, in batches of `batch`. `labelled`: the
/// data's labels were read (they become the last column).
pub fn predict(
    model: &Model,
    w: &Weights,
    ds: &Dataset,
    labelled: bool,
    batch: usize,
) -> Result<Predictions> {
    let (_, kind) = model.prediction().ok_or(Error::Settings("the model has no loss".into()))?;
    let o = LowerOptions { mode: Mode::Eval, probes: false, prediction: true };
    let g = passes::optimize(&lower::lower_with(model, o));
    let at = g.outputs.iter().position(|o| o.role == Role::Prediction);
    let at = at.ok_or(Error::Internal("the prediction graph has no prediction".into()))?;
    let n = ds.len();
    let mut rows = Vec::with_capacity(n);
    let mut width = 0;
    for start in (0..n).step_by(batch.max(1)) {
        let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
        let (x, y) = data::batch(ds, &idx);
        let inputs = inputs_for(model, x, y);
        let env =
            Env { inputs: &inputs, params: &w.params, states: &w.buffers, lr: 0.0, step: 0.0 };
        let z: &Tensor<f32> = &eval(&g, &env)?.outputs[at];
        width = z.data.len() / idx.len();
        for (k, &i) in idx.iter().enumerate() {
            let mut row = vec![Cell::Int(i as i64)];
            row.extend(read(kind, &z.data[k * width..(k + 1) * width]));
            if labelled {
                row.extend(label_cells(&ds.y, i));
            }
            rows.push(row);
        }
    }
    let mut header = vec!["index".to_string()];
    header.extend(columns(kind, width));
    if labelled {
        header.extend(label_columns(&ds.y));
    }
    Ok(Predictions { header, rows })
}

/// The column names of one example's prediction of `width` values.
fn columns(kind: LossKind, width: usize) -> Vec<String> {
    let numbered = |stem: &str| match width {
        1 => vec![stem.to_string()],
        _ => (0..width).map(|j| format!("{stem}_{j}")).collect(),
    };
    match kind {
        LossKind::CrossEntropy { .. } => [numbered("prob"), vec!["class".into()]].concat(),
        LossKind::BceWithLogits => [numbered("prob"), numbered("class")].concat(),
        LossKind::Logistic | LossKind::Hinge => [numbered("score"), numbered("class")].concat(),
        LossKind::Mse | LossKind::Huber(_) | LossKind::L1 => numbered("value"),
    }
}

/// One example's prediction cells from the model's outputs `z`.
fn read(kind: LossKind, z: &[f32]) -> Vec<Cell> {
    let z: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    let reals = |v: &[f64]| v.iter().map(|&p| Cell::Real(p as f32)).collect::<Vec<_>>();
    match kind {
        LossKind::CrossEntropy { .. } => {
            let max = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            let p: Vec<f64> = e.iter().map(|v| v / sum).collect();
            // The first of equal maxima, as torch.argmax.
            let class = (0..z.len()).fold(0, |best, j| if z[j] > z[best] { j } else { best });
            [reals(&p), vec![Cell::Int(class as i64)]].concat()
        }
        LossKind::BceWithLogits => {
            let p: Vec<f64> = z.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
            let class = z.iter().map(|&v| Cell::Int((v > 0.0) as i64));
            [reals(&p), class.collect()].concat()
        }
        LossKind::Logistic | LossKind::Hinge => {
            let class = z.iter().map(|&v| Cell::Int(if v >= 0.0 { 1 } else { -1 }));
            [reals(&z), class.collect()].concat()
        }
        LossKind::Mse | LossKind::Huber(_) | LossKind::L1 => reals(&z),
    }
}

/// The label columns: `label` for one value per example, else `label_0`, `label_1`, ...
fn label_columns(y: &Tensor<f32>) -> Vec<String> {
    match y.shape.iter().skip(1).product::<usize>() {
        1 => vec!["label".into()],
        t => (0..t).map(|j| format!("label_{j}")).collect(),
    }
}

/// Example `i`'s label cells: a class index (`y: [N]`) or its targets.
fn label_cells(y: &Tensor<f32>, i: usize) -> Vec<Cell> {
    match y.shape.len() {
        1 => vec![Cell::Int(y.data[i] as i64)],
        _ => {
            let t = y.shape.iter().skip(1).product::<usize>();
            y.data[i * t..(i + 1) * t].iter().map(|&v| Cell::Real(v)).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_the_class_is_the_first_maximum() {
        let cells = read(LossKind::CrossEntropy { label_smoothing: 0.0 }, &[1.0, 3.0, 3.0]);
        let p: Vec<f64> = cells[..3]
            .iter()
            .map(|c| match c {
                Cell::Real(v) => *v as f64,
                Cell::Int(_) => panic!("a probability"),
            })
            .collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(p[1] == p[2] && p[0] < p[1]);
        assert_eq!(cells[3], Cell::Int(1));
    }

    #[test]
    fn binary_and_signed_losses_read_the_sign() {
        let bce = read(LossKind::BceWithLogits, &[0.0, -2.0]);
        assert_eq!(bce[0], Cell::Real(0.5));
        assert_eq!(&bce[2..], &[Cell::Int(0), Cell::Int(0)]);
        let hinge = read(LossKind::Hinge, &[0.5, -0.5]);
        assert_eq!(&hinge[2..], &[Cell::Int(1), Cell::Int(-1)]);
        assert_eq!(columns(LossKind::Hinge, 2), ["score_0", "score_1", "class_0", "class_1"]);
    }
}

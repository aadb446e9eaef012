//! A plain dense row-major tensor on the host: the currency between the runtime, the data
//! loaders, weight files and `graph::eval`. No strides, no views, no broadcasting here.

/// A row-major tensor of concrete shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T = f32> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T: Copy> Tensor<T> {
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Tensor<T> {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "tensor shape {shape:?}");
        Tensor { shape, data }
    }
    pub fn full(shape: Vec<usize>, v: T) -> Tensor<T> {
        let n = shape.iter().product();
        Tensor { shape, data: vec![v; n] }
    }
    pub fn numel(&self) -> usize {
        self.data.len()
    }
    /// Rows `[start, end)` along the first dimension.
    pub fn rows(&self, start: usize, end: usize) -> Tensor<T> {
        let row: usize = self.shape[1..].iter().product();
        let mut shape = self.shape.clone();
        shape[0] = end - start;
        Tensor { shape, data: self.data[start * row..end * row].to_vec() }
    }
    /// The rows at `idx`, in that order.
    pub fn gather_rows(&self, idx: &[usize]) -> Tensor<T> {
        let row: usize = self.shape[1..].iter().product();
        let mut data = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            data.extend_from_slice(&self.data[i * row..(i + 1) * row]);
        }
        let mut shape = self.shape.clone();
        shape[0] = idx.len();
        Tensor { shape, data }
    }
    pub fn map<U: Copy>(&self, f: impl Fn(T) -> U) -> Tensor<U> {
        Tensor { shape: self.shape.clone(), data: self.data.iter().map(|&x| f(x)).collect() }
    }
}

impl Tensor<f32> {
    pub fn to_f64(&self) -> Tensor<f64> {
        self.map(|x| x as f64)
    }
}

impl Tensor<f64> {
    pub fn to_f32(&self) -> Tensor<f32> {
        self.map(|x| x as f32)
    }
}

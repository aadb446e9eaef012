//! The runtime's data and weights layer, end to end through files: CSV, `.npy`/`.npz` and
//! safetensors loading (and their error messages, as rendered text), the synthetic sets,
//! the validation split and mini-batch order.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use nnc::check::model::{DataSpec, Synthetic};
use nnc::diagnostic::Span;
use nnc::tensor::Tensor;
use nnc::train::data::{
    self, batch, epoch_order, split, Batches, DataError, DataShape, Dataset, LabelSpec,
};
use nnc::train::synthetic::generate;
use nnc::train::weights::{self, WeightsError};
use npyz::WriterBuilder;

// ---------------------------------------------------------------------------------------
// helpers

/// A fresh, empty directory under the system temp dir, unique to this process and call,
/// removed when dropped.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(tag: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nnc-runtime-{}-{tag}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn shape(features: &[usize], label: LabelSpec) -> DataShape {
    DataShape { features: features.to_vec(), label }
}

fn csv_spec(path: &str, label: &str) -> DataSpec {
    DataSpec::Csv { path: path.into(), label: label.into(), span: Span::default() }
}

/// Loads CSV text written to a temp file `d.csv`, returning the error text or the data.
fn load_csv_text(text: &str, label: &str, want: &DataShape) -> Result<Dataset, String> {
    let dir = temp_dir("csv");
    fs::write(dir.join("d.csv"), text).unwrap();
    let r = data::load(&csv_spec("d.csv", label), &dir, want, 0);
    // Messages name the file as resolved; strip the temp directory for stable text.
    r.map_err(|e| e.to_string().replace(&format!("{}/", dir.display()), ""))
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------
// CSV

#[test]
fn digits_csv_loads_1797_examples_of_64_features() {
    let want = shape(&[64], LabelSpec::Classes(10));
    let ds =
        data::load(&csv_spec("examples/data/digits.csv", "label"), manifest(), &want, 0).unwrap();
    assert_eq!(ds.x.shape, vec![1797, 64]);
    assert_eq!(ds.y.shape, vec![1797]);
    // The first data line: 0,0,5,13,9,1,0,0,... label 0; the second's label is 1.
    assert_eq!(&ds.x.data[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
    assert_eq!(&ds.y.data[..2], &[0.0, 1.0]);
    let mut counts = [0usize; 10];
    for &y in &ds.y.data {
        assert!(y.fract() == 0.0 && (0.0..10.0).contains(&y));
        counts[y as usize] += 1;
    }
    assert!(counts.iter().all(|&c| (170..=190).contains(&c)), "{counts:?}");
    assert!(ds.x.data.iter().all(|&v| (0.0..=16.0).contains(&v)));
}

#[test]
fn digits_reshape_to_images_and_iris_loads() {
    let want = shape(&[1, 8, 8], LabelSpec::Classes(10));
    let ds =
        data::load(&csv_spec("examples/data/digits.csv", "label"), manifest(), &want, 0).unwrap();
    assert_eq!(ds.x.shape, vec![1797, 1, 8, 8]);
    let want = shape(&[4], LabelSpec::Classes(3));
    let ds =
        data::load(&csv_spec("examples/data/iris.csv", "species"), manifest(), &want, 0).unwrap();
    assert_eq!((ds.x.shape.clone(), ds.y.shape.clone()), (vec![150, 4], vec![150]));
    assert_eq!(&ds.x.data[..4], &[5.1, 3.5, 1.4, 0.2]);
    assert_eq!(ds.y.data[149], 2.0);
}

#[test]
fn csv_label_column_may_sit_anywhere_and_targets_get_a_column_axis() {
    let text = "y, a ,b\n0.5, 1, 2\n-1.5,3,4\n";
    let ds = load_csv_text(text, "y", &shape(&[2], LabelSpec::Targets(1))).unwrap();
    assert_eq!(ds.x, Tensor::new(vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    assert_eq!(ds.y, Tensor::new(vec![2, 1], vec![0.5, -1.5]));
}

#[test]
fn csv_errors_name_the_file_the_place_and_the_problem() {
    let c3 = shape(&[2], LabelSpec::Classes(10));
    let cases: &[(&str, &str, DataShape, &str)] = &[
        (
            "a,b,label\n1,2,3\n",
            "lbl",
            c3.clone(),
            "\"d.csv\" has no label column \"lbl\"; did you mean \"label\"? (columns: a, b, label)",
        ),
        (
            "a,b,label\n1,2,3\n4,abc,5\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 3, column \"b\": \"abc\" is not a number",
        ),
        (
            "a,b,label\n1,,3\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 2, column \"b\": empty cell, expected a number",
        ),
        (
            "a,b,label\n1,2,3\n1,2,12\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 3, column \"label\": label 12 out of range for 10 classes (0..=9)",
        ),
        (
            "a,b,label\n1,2,-1\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 2, column \"label\": label -1 out of range for 10 classes (0..=9)",
        ),
        (
            "a,b,label\n1,2,2.5\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 2, column \"label\": class label 2.5 is not an integer",
        ),
        (
            "a,b,label\n1,nan,2\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 2, column \"b\": value NaN is not finite",
        ),
        (
            "a,b,label\n1,\u{1b}[2J,2\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 2, column \"b\": \"\\u{1b}[2J\" is not a number",
        ),
        (
            "a,b,label\n1,1e39,2\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 2, column \"b\": value 1e39 overflows f32 (whose largest is 3.4028235e38)",
        ),
        (
            "a,b,label\n1,2,3\n",
            "label",
            shape(&[3], LabelSpec::Classes(10)),
            "\"d.csv\": feature count 2 but the model's input wants 3",
        ),
        (
            "a,b,label\n1,2,3\n1,2\n",
            "label",
            c3.clone(),
            "\"d.csv\", line 3: row has 2 cells but the header has 3 columns",
        ),
        ("a,b,label\n", "label", c3.clone(), "\"d.csv\" holds no examples"),
        (
            "a,b,y\n1,2,3\n",
            "y",
            shape(&[2], LabelSpec::Targets(2)),
            "\"d.csv\": a CSV file has one label column (\"y\") but the model's label wants 2 \
             targets per example; use .npy or .npz for several targets",
        ),
    ];
    for (text, label, want, message) in cases {
        assert_eq!(load_csv_text(text, label, want).unwrap_err(), *message, "for {text:?}");
    }
}

#[test]
fn missing_file_is_reported_as_not_found() {
    let dir = temp_dir("missing");
    let err = data::load(&csv_spec("nope.csv", "y"), &dir, &shape(&[1], LabelSpec::Targets(1)), 0)
        .unwrap_err();
    assert_eq!(err, DataError::NotFound { path: dir.join("nope.csv") });
    assert!(err.to_string().ends_with("nope.csv\" not found"), "{err}");
}

// ---------------------------------------------------------------------------------------
// NumPy

fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) {
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(fs::File::create(path).unwrap())
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

fn npy_spec(x: &str, y: &str) -> DataSpec {
    DataSpec::Npy { x: x.into(), y: y.into(), span: Span::default() }
}

#[test]
fn npy_round_trip_converts_dtypes() {
    let dir = temp_dir("npy");
    let xs: Vec<f64> = (0..15).map(|i| i as f64 * 0.5).collect();
    write_npy(&dir.join("x.npy"), &[5, 3], &xs);
    write_npy(&dir.join("y.npy"), &[5], &[0i64, 2, 1, 2, 0]);
    let ds = data::load(&npy_spec("x.npy", "y.npy"), &dir, &shape(&[3], LabelSpec::Classes(3)), 0)
        .unwrap();
    assert_eq!(ds.x, Tensor::new(vec![5, 3], xs.iter().map(|&v| v as f32).collect()));
    assert_eq!(ds.y, Tensor::new(vec![5], vec![0.0, 2.0, 1.0, 2.0, 0.0]));

    // uint8 images [N, 2, 2] flattened for a [4] input; int32 labels as [N, 1].
    write_npy(&dir.join("u.npy"), &[2, 2, 2], &[0u8, 1, 2, 3, 252, 253, 254, 255]);
    write_npy(&dir.join("l.npy"), &[2, 1], &[1i32, 0]);
    let ds = data::load(&npy_spec("u.npy", "l.npy"), &dir, &shape(&[4], LabelSpec::Classes(2)), 0)
        .unwrap();
    assert_eq!(ds.x.shape, vec![2, 4]);
    assert_eq!(ds.x.data, vec![0.0, 1.0, 2.0, 3.0, 252.0, 253.0, 254.0, 255.0]);
    assert_eq!(ds.y, Tensor::new(vec![2], vec![1.0, 0.0]));

    // float32 regression targets [N, 2].
    write_npy(&dir.join("t.npy"), &[2, 2], &[0.25f32, -1.0, 3.0, 4.5]);
    let ds = data::load(&npy_spec("l.npy", "t.npy"), &dir, &shape(&[1], LabelSpec::Targets(2)), 0)
        .unwrap();
    assert_eq!(ds.x, Tensor::new(vec![2, 1], vec![1.0, 0.0]));
    assert_eq!(ds.y, Tensor::new(vec![2, 2], vec![0.25, -1.0, 3.0, 4.5]));
}

#[test]
fn npy_fortran_order_and_big_endian_are_read_as_numpy_means_them() {
    let dir = temp_dir("fortran");
    // The 2x3 matrix [[0, 1, 2], [3, 4, 5]] as big-endian float64 stored column by column.
    let dtype = npyz::DType::new_scalar(">f8".parse().unwrap());
    let mut w = npyz::WriteOptions::new()
        .dtype(dtype)
        .shape(&[2, 3])
        .order(npyz::Order::Fortran)
        .writer(fs::File::create(dir.join("x.npy")).unwrap())
        .begin_nd()
        .unwrap();
    w.extend([0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0]).unwrap();
    w.finish().unwrap();
    write_npy(&dir.join("y.npy"), &[2], &[1.0f32, 0.0]);
    let ds = data::load(&npy_spec("x.npy", "y.npy"), &dir, &shape(&[3], LabelSpec::Classes(2)), 0)
        .unwrap();
    assert_eq!(ds.x.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}

#[test]
fn npy_errors() {
    let dir = temp_dir("npyerr");
    write_npy(&dir.join("x.npy"), &[3, 2], &[1.0f32; 6]);
    write_npy(&dir.join("y.npy"), &[3], &[0.0f64, 1.0, 1.5]);
    write_npy(&dir.join("y4.npy"), &[4], &[0i64; 4]);
    write_npy(&dir.join("y32.npy"), &[3, 2], &[0i64; 6]);
    write_npy(&dir.join("x16.npy"), &[3, 2], &[1i16; 6]);
    write_npy(&dir.join("big.npy"), &[3], &[0i64, 1, 1 << 40]);
    fs::write(dir.join("junk.npy"), "not numpy").unwrap();
    // A header whose shape's product overflows (in either order), and no data.
    for (name, order) in [("huge_c.npy", "False"), ("huge_f.npy", "True")] {
        let dims = "(4294967296, 4294967296, 2)";
        let header = format!("{{'descr': '<f4', 'fortran_order': {order}, 'shape': {dims}, }}");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 64 - (10 + header.len() + 1) % 64;
        let header = format!("{header}{}\n", " ".repeat(pad));
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        fs::write(dir.join(name), bytes).unwrap();
    }
    let c2 = shape(&[2], LabelSpec::Classes(2));
    let err = |x: &str, y: &str, want: &DataShape| {
        let e = data::load(&npy_spec(x, y), &dir, want, 0).unwrap_err();
        e.to_string().replace(&format!("{}/", dir.display()), "")
    };
    assert_eq!(err("x.npy", "y.npy", &c2), "\"y.npy\", y[2]: class label 1.5 is not an integer");
    assert_eq!(
        err("x.npy", "big.npy", &c2),
        "\"big.npy\", y[2]: label 1099511627776 out of range for 2 classes (0..=1)"
    );
    assert_eq!(
        err("x.npy", "y4.npy", &c2),
        "\"y4.npy\": \"x\" has 3 examples but \"y\" has shape [4]"
    );
    assert_eq!(
        err("x.npy", "y32.npy", &c2),
        "\"y32.npy\": \"y\" has shape [3, 2] but the model's label wants [3] (one class index per example)"
    );
    assert_eq!(
        err("x.npy", "y.npy", &shape(&[3], LabelSpec::Classes(2))),
        "\"x.npy\": feature count 2 but the model's input wants 3"
    );
    assert_eq!(
        err("x16.npy", "y.npy", &c2),
        "\"x16.npy\": array \"x\" has dtype '<i2', which is not supported \
         (use float32, float64, int32, int64 or uint8)"
    );
    assert!(err("junk.npy", "y.npy", &c2)
        .starts_with("cannot read \"junk.npy\": array \"x\" is not a valid NumPy array"));
    for name in ["huge_c.npy", "huge_f.npy"] {
        let e = err(name, "y.npy", &c2);
        assert!(e.contains("has more elements than fit in memory"), "{name}: {e}");
    }
    assert!(matches!(
        data::load(&npy_spec("none.npy", "y.npy"), &dir, &c2, 0),
        Err(DataError::NotFound { .. })
    ));
}

#[test]
fn npz_round_trip_and_missing_array() {
    let dir = temp_dir("npz");
    let path = dir.join("d.npz");
    {
        let mut npz = npyz::npz::NpzWriter::create(&path).unwrap();
        let opts = || npyz::zip::write::FileOptions::default();
        let mut w = npz
            .array::<f32>("features", opts())
            .unwrap()
            .default_dtype()
            .shape(&[3, 2])
            .begin_nd()
            .unwrap();
        w.extend([1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        w.finish().unwrap();
        let mut w = npz
            .array::<i64>("labels", opts())
            .unwrap()
            .default_dtype()
            .shape(&[3])
            .begin_nd()
            .unwrap();
        w.extend([2i64, 0, 1]).unwrap();
        w.finish().unwrap();
    }
    let spec = |x: &str, y: &str| DataSpec::Npz {
        path: "d.npz".into(),
        x: x.into(),
        y: y.into(),
        span: Span::default(),
    };
    let want = shape(&[2], LabelSpec::Classes(3));
    let ds = data::load(&spec("features", "labels"), &dir, &want, 0).unwrap();
    assert_eq!(ds.x, Tensor::new(vec![3, 2], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    assert_eq!(ds.y, Tensor::new(vec![3], vec![2.0, 0.0, 1.0]));

    let err = data::load(&spec("features", "label"), &dir, &want, 0).unwrap_err();
    assert!(matches!(err, DataError::ArrayMissing { ref name, .. } if name == "label"));
    let text = err.to_string().replace(&format!("{}/", dir.display()), "");
    assert_eq!(
        text,
        "\"d.npz\" has no array \"label\"; did you mean \"labels\"? (arrays: features, labels)"
    );
}

// ---------------------------------------------------------------------------------------
// safetensors

fn fc1() -> (Tensor<f32>, Tensor<f32>) {
    (
        Tensor::new(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-8, -7.25]),
        Tensor::new(vec![2], vec![0.5, -0.5]),
    )
}

#[test]
fn safetensors_round_trip_in_model_order() {
    let dir = temp_dir("st");
    let path = dir.join("w.safetensors");
    let (w, b) = fc1();
    weights::save(&path, &[("fc1.weight".into(), &w), ("fc1.bias".into(), &b)]).unwrap();
    let all = weights::load(&path).unwrap();
    assert_eq!(
        all,
        vec![("fc1.bias".to_string(), b.clone()), ("fc1.weight".to_string(), w.clone())]
    );
    let wanted = [("fc1.weight".to_string(), vec![2, 3]), ("fc1.bias".to_string(), vec![2])];
    assert_eq!(weights::load_into(&path, &wanted).unwrap().tensors, vec![w.clone(), b.clone()]);

    // Saving again replaces the file atomically and leaves no temporary file behind.
    let w2 = w.map(|v| v * 2.0);
    weights::save(&path, &[("fc1.weight".into(), &w2), ("fc1.bias".into(), &b)]).unwrap();
    assert_eq!(weights::load_into(&path, &wanted).unwrap().tensors[0], w2);
    let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("w.safetensors")]);
}

#[test]
fn safetensors_save_failures_leave_nothing() {
    let dir = temp_dir("stfail");
    let (w, _) = fc1();
    assert!(weights::save(&dir.join("no/such/dir/w.safetensors"), &[("a".into(), &w)]).is_err());
    let dup = weights::save(&dir.join("w.safetensors"), &[("a".into(), &w), ("a".into(), &w)]);
    assert_eq!(dup.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn safetensors_converts_f64_and_f16() {
    use safetensors::tensor::{Dtype, TensorView};
    let dir = temp_dir("stconv");
    let path = dir.join("w.safetensors");
    let f64s: Vec<u8> = [1.5f64, -0.25].iter().flat_map(|v| v.to_le_bytes()).collect();
    let f16s: Vec<u8> = [0x3c00u16, 0xc000].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        ("a", TensorView::new(Dtype::F64, vec![2], &f64s).unwrap()),
        ("b", TensorView::new(Dtype::F16, vec![1, 2], &f16s).unwrap()),
    ];
    fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
    let got = weights::load(&path).unwrap();
    assert_eq!(got[0], ("a".to_string(), Tensor::new(vec![2], vec![1.5, -0.25])));
    assert_eq!(got[1], ("b".to_string(), Tensor::new(vec![1, 2], vec![1.0, -2.0])));
}

#[test]
fn safetensors_errors() {
    let dir = temp_dir("sterr");
    let path = dir.join("w.safetensors");
    let (w, b) = fc1();
    let counter = Tensor::new(vec![], vec![3.0]);
    weights::save(
        &path,
        &[
            ("fc1.weight".into(), &w),
            ("fc1.bias".into(), &b),
            ("bn.num_batches_tracked".into(), &counter),
        ],
    )
    .unwrap();
    let text = |e: WeightsError| e.to_string().replace(&format!("{}/", dir.display()), "");
    let load = |names: &[(&str, &[usize])]| {
        let names: Vec<(String, Vec<usize>)> =
            names.iter().map(|(n, s)| (n.to_string(), s.to_vec())).collect();
        weights::load_into(&path, &names)
    };
    // PyTorch's batch-norm counter is ignored; absent, it loads as 0 and is named.
    assert!(load(&[("fc1.weight", &[2, 3]), ("fc1.bias", &[2])]).is_ok());
    let got = load(&[("fc1.weight", &[2, 3]), ("fc1.bias", &[2]), ("bn.num_batches_tracked", &[])]);
    let got = got.unwrap();
    assert_eq!(got.tensors[2].data, vec![3.0]);
    assert!(got.defaulted.is_empty());
    let got =
        load(&[("fc1.weight", &[2, 3]), ("fc1.bias", &[2]), ("bn2.num_batches_tracked", &[])]);
    let got = got.unwrap();
    assert_eq!((got.tensors[2].shape.clone(), got.tensors[2].data.clone()), (vec![], vec![0.0]));
    assert_eq!(got.defaulted, vec!["bn2.num_batches_tracked".to_string()]);
    assert_eq!(
        text(load(&[("fc1.weight", &[2, 3]), ("fc1.bias", &[2]), ("fc2.bias", &[2])]).unwrap_err()),
        "weights file \"w.safetensors\" lacks `fc2.bias`"
    );
    assert_eq!(
        text(load(&[("fc1.weight", &[2, 3]), ("fc.bias", &[2])]).unwrap_err()),
        "weights file \"w.safetensors\" lacks `fc.bias`; the file has `fc1.bias`"
    );
    assert_eq!(
        text(load(&[("fc1.weight", &[2, 2]), ("fc1.bias", &[2])]).unwrap_err()),
        "\"w.safetensors\": `fc1.weight` has shape [2, 3] in the file but the model wants [2, 2]"
    );
    assert_eq!(
        text(load(&[("fc1.weight", &[2, 3])]).unwrap_err()),
        "\"w.safetensors\": unexpected tensor `fc1.bias` in the file"
    );
    fs::write(dir.join("bad.safetensors"), b"\x08\0\0\0\0\0\0\0{}").unwrap();
    let e = weights::load(&dir.join("bad.safetensors")).unwrap_err();
    assert!(matches!(e, WeightsError::Format { .. }), "{e}");
    let e = weights::load(&dir.join("none.safetensors")).unwrap_err();
    assert!(matches!(e, WeightsError::NotFound { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------
// synthetic sets

fn class_counts(ds: &Dataset, c: usize) -> Vec<usize> {
    let mut counts = vec![0; c];
    for &y in &ds.y.data {
        assert!(y.fract() == 0.0 && y >= 0.0 && (y as usize) < c, "label {y}");
        counts[y as usize] += 1;
    }
    counts
}

#[test]
fn synthetic_sets_have_the_wanted_shapes_balanced_labels_and_are_deterministic() {
    let cases = [
        (Synthetic::Xor, shape(&[2], LabelSpec::Classes(2))),
        (Synthetic::Spirals, shape(&[2], LabelSpec::Classes(3))),
        (Synthetic::Moons, shape(&[2], LabelSpec::Classes(2))),
        (Synthetic::Blobs, shape(&[5], LabelSpec::Classes(4))),
    ];
    for (kind, want) in cases {
        let LabelSpec::Classes(c) = want.label else { unreachable!() };
        let ds = generate(kind, 101, 0.1, &want, 7).unwrap();
        assert_eq!(ds.x.shape, [vec![101], want.features.clone()].concat(), "{kind:?}");
        assert_eq!(ds.y.shape, vec![101], "{kind:?}");
        let counts = class_counts(&ds, c);
        assert!(counts.iter().all(|&k| k == 101 / c || k == 101 / c + 1), "{kind:?} {counts:?}");
        assert_eq!(ds, generate(kind, 101, 0.1, &want, 7).unwrap(), "{kind:?}");
        assert_ne!(ds, generate(kind, 101, 0.1, &want, 8).unwrap(), "{kind:?}");
        // Shuffled: not sorted by class.
        assert!(ds.y.data.windows(2).any(|w| w[0] > w[1]), "{kind:?}");
    }
}

#[test]
fn xor_without_noise_is_the_four_corners() {
    let ds = generate(Synthetic::Xor, 40, 0.0, &shape(&[2], LabelSpec::Targets(1)), 1).unwrap();
    assert_eq!(ds.y.shape, vec![40, 1]);
    for (x, y) in ds.x.data.chunks(2).zip(&ds.y.data) {
        assert!(x[0].abs() == 1.0 && x[1].abs() == 1.0);
        assert_eq!(*y, f32::from(u8::from((x[0] > 0.0) != (x[1] > 0.0))));
    }
}

#[test]
fn moons_without_noise_lie_on_their_half_circles() {
    let ds = generate(Synthetic::Moons, 50, 0.0, &shape(&[2], LabelSpec::Classes(2)), 1).unwrap();
    for (x, &y) in ds.x.data.chunks(2).zip(&ds.y.data) {
        let (cx, cy) = if y == 0.0 { (0.0, 0.0) } else { (1.0, 0.5) };
        let r = ((x[0] - cx).powi(2) + (x[1] - cy).powi(2)).sqrt();
        assert!((r - 1.0).abs() < 1e-5, "radius {r}");
        assert!(if y == 0.0 { x[1] >= -1e-6 } else { x[1] <= 0.5 + 1e-6 });
    }
}

#[test]
fn spirals_without_noise_wind_outward() {
    let ds =
        generate(Synthetic::Spirals, 300, 0.0, &shape(&[2], LabelSpec::Classes(3)), 1).unwrap();
    let r_max = ds.x.data.chunks(2).map(|x| (x[0] * x[0] + x[1] * x[1]).sqrt()).fold(0.0, f32::max);
    assert!((r_max - 1.0).abs() < 1e-6);
    // Points of arm j at radius r sit at angle t = 4j + 4r: (r sin t, r cos t).
    for (x, &y) in ds.x.data.chunks(2).zip(&ds.y.data) {
        let r = (x[0] * x[0] + x[1] * x[1]).sqrt() as f64;
        let t = 4.0 * y as f64 + 4.0 * r;
        assert!(
            (r * t.sin() - x[0] as f64).abs() < 1e-5 && (r * t.cos() - x[1] as f64).abs() < 1e-5
        );
    }
}

#[test]
fn blobs_cluster_around_centres_in_the_box() {
    let ds = generate(Synthetic::Blobs, 4000, 0.0, &shape(&[3], LabelSpec::Classes(2)), 5).unwrap();
    for c in 0..2 {
        let rows: Vec<&[f32]> =
            ds.x.data
                .chunks(3)
                .zip(&ds.y.data)
                .filter(|(_, &y)| y == c as f32)
                .map(|(x, _)| x)
                .collect();
        for f in 0..3 {
            let mean = rows.iter().map(|x| x[f] as f64).sum::<f64>() / rows.len() as f64;
            let var =
                rows.iter().map(|x| (x[f] as f64 - mean).powi(2)).sum::<f64>() / rows.len() as f64;
            assert!((-5.2..5.2).contains(&mean), "centre {mean}");
            assert!((var - 1.0).abs() < 0.1, "variance {var}");
        }
    }
}

#[test]
fn teacher_targets_come_from_one_fixed_teacher() {
    let want = shape(&[10], LabelSpec::Targets(3));
    let ds = generate(Synthetic::Teacher, 20, 0.0, &want, 3).unwrap();
    assert_eq!((ds.x.shape.clone(), ds.y.shape.clone()), (vec![20, 10], vec![20, 3]));
    // The teacher is drawn first: a longer set extends a shorter one.
    let more = generate(Synthetic::Teacher, 40, 0.0, &want, 3).unwrap();
    assert_eq!(more.x.rows(0, 20), ds.x);
    assert_eq!(more.y.rows(0, 20), ds.y);
    // Targets vary, are bounded by the tanh layer, and noise changes them.
    assert!(ds.y.data.iter().all(|v| v.abs() < 10.0));
    assert!(ds.y.data.windows(2).any(|w| w[0] != w[1]));
    let noisy = generate(Synthetic::Teacher, 20, 0.5, &want, 3).unwrap();
    assert_eq!(noisy.x, ds.x);
    assert_ne!(noisy.y, ds.y);
}

#[test]
fn synthetic_sets_reject_shapes_they_cannot_make() {
    let err = |kind, n, want: DataShape| generate(kind, n, 0.1, &want, 0).unwrap_err().to_string();
    assert_eq!(
        err(Synthetic::Xor, 10, shape(&[3], LabelSpec::Classes(2))),
        "synthetic data set xor: has 2 features but the model's input wants 3"
    );
    assert_eq!(
        err(Synthetic::Moons, 10, shape(&[2], LabelSpec::Classes(3))),
        "synthetic data set moons: has 2 classes (or one 0/1 target) but the model's label wants 3 classes"
    );
    assert_eq!(
        err(Synthetic::Teacher, 10, shape(&[2], LabelSpec::Classes(3))),
        "synthetic data set teacher: has real targets but the model's label wants 3 classes"
    );
    assert_eq!(
        err(Synthetic::Blobs, 10, shape(&[2], LabelSpec::Targets(1))),
        "synthetic data set blobs: has class labels but the model's label wants 1 targets"
    );
    assert_eq!(
        err(Synthetic::Spirals, 0, shape(&[2], LabelSpec::Classes(3))),
        "synthetic data set spirals: needs at least one example (n >= 1)"
    );
}

#[test]
fn synthetic_spec_goes_through_load() {
    let spec =
        DataSpec::Synthetic { kind: Synthetic::Spirals, n: 30, noise: 0.2, span: Span::default() };
    let want = shape(&[2], LabelSpec::Classes(3));
    let ds = data::load(&spec, Path::new("."), &want, 9).unwrap();
    assert_eq!(ds, generate(Synthetic::Spirals, 30, 0.2, &want, 9).unwrap());
}

// ---------------------------------------------------------------------------------------
// split and batches

/// `n` examples whose feature is their own index.
fn indexed(n: usize) -> Dataset {
    let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
    Dataset { x: Tensor::new(vec![n, 1], v.clone()), y: Tensor::new(vec![n], v) }
}

#[test]
fn split_holds_out_a_seeded_ceil_fraction_in_file_order() {
    let (train, val) = split(indexed(101), 0.2, 5);
    let val = val.unwrap();
    assert_eq!((train.len(), val.len()), (80, 21));
    let mut all: Vec<f32> = train.x.data.iter().chain(&val.x.data).copied().collect();
    assert!(train.x.data.windows(2).all(|w| w[0] < w[1]));
    assert!(val.x.data.windows(2).all(|w| w[0] < w[1]));
    all.sort_by(f32::total_cmp);
    assert_eq!(all, indexed(101).x.data);
    assert_eq!(train.y, Tensor::new(vec![80], train.x.data.clone()));
    // Deterministic in the seed; not simply the last rows.
    assert_eq!(split(indexed(101), 0.2, 5).1.unwrap(), val);
    assert_ne!(split(indexed(101), 0.2, 6).1.unwrap(), val);
    assert_ne!(val.x.data[0], 80.0);
    // Nothing held out at 0; at least one training example is kept.
    assert_eq!(split(indexed(10), 0.0, 5), (indexed(10), None));
    assert_eq!(split(indexed(3), 0.99, 5).0.len(), 1);
}

#[test]
fn epoch_order_is_seeded_per_epoch_and_identity_without_shuffle() {
    assert_eq!(epoch_order(5, false, 1, 3), vec![0, 1, 2, 3, 4]);
    let e0 = epoch_order(50, true, 1, 0);
    let mut sorted = e0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    assert_ne!(e0, sorted);
    assert_eq!(e0, epoch_order(50, true, 1, 0));
    assert_ne!(e0, epoch_order(50, true, 1, 1));
    assert_ne!(e0, epoch_order(50, true, 2, 0));
}

#[test]
fn batches_cover_each_epoch_once_with_a_short_last_batch() {
    let got: Vec<_> = Batches::new(10, 4, false, 0).take(4).collect();
    let rows: Vec<Vec<usize>> = got.iter().map(|b| b.rows.clone()).collect();
    assert_eq!(rows, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9], vec![0, 1, 2, 3]]);
    assert_eq!(
        got.iter().map(|b| (b.epoch, b.index)).collect::<Vec<_>>(),
        [(0, 0), (0, 1), (0, 2), (1, 0)]
    );
    assert_eq!(Batches::new(10, 4, false, 0).per_epoch(), 3);

    let shuffled: Vec<_> = Batches::new(10, 3, true, 7).take(8).collect();
    for epoch in 0..2 {
        let flat: Vec<usize> =
            shuffled.iter().filter(|b| b.epoch == epoch).flat_map(|b| b.rows.clone()).collect();
        assert_eq!(flat, epoch_order(10, true, 7, epoch));
    }
    assert_eq!(Batches::new(0, 3, true, 7).next(), None);

    let ds = indexed(6);
    let (x, y) = batch(&ds, &[4, 1]);
    assert_eq!(
        (x, y),
        (Tensor::new(vec![2, 1], vec![4.0, 1.0]), Tensor::new(vec![2], vec![4.0, 1.0]))
    );
}

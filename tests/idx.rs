//! IDX data (MNIST's format) end to end: a model file names `idx(images, labels)`, gzipped or
//! not; `nnc check` reads and checks the files, `nnc train` trains on them, and a file of
//! the wrong size is refused with both shapes named.

mod common;
use common::{nnc, scratch};
use std::io::Write;

/// An IDX file of uint8 elements with `shape`.
fn idx(shape: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, shape.len() as u8];
    shape.iter().for_each(|d| v.extend(d.to_be_bytes()));
    v.extend(data);
    v
}

#[test]
fn a_model_trains_on_idx_images() {
    let dir = scratch("idx");
    // 40 images of 3x4 pixels: the label is whether the left half is the brighter.
    let n = 40;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let left = i % 2 == 0;
        for p in 0..12u8 {
            let bright = (p % 4 < 2) == left;
            pixels.push(if bright { 200 + (i as u8 % 50) } else { 10 + p });
        }
        labels.push(left as u8);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&idx(&[n, 3, 4], &pixels)).unwrap();
    std::fs::write(dir.join("images.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(dir.join("labels"), idx(&[n], &labels)).unwrap();
    let model = dir.join("m.nn");
    // [N, 3, 4] uint8 images read as [B, 1, 3, 4], as a CNN would take them.
    let src = "model M {\n    input x: [B, 1, 3, 4]\n    label y: class[B] of 2\n    fc = Dense(12 -> 2)\n    logits = fc(flatten(x / 255))\n    loss = cross_entropy(logits, y)\n    metric accuracy(logits, y)\n}\noptimizer sgd(lr = 0.5)\ntrain { data = idx(\"images.gz\", \"labels\"), batch = 8, epochs = 30 }\n";
    std::fs::write(&model, src).unwrap();
    let m = model.to_str().unwrap();
    let (code, out, err) = nnc(&["check", m]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("data: 40 training examples, 0 validation, 12 features each"), "{out}");
    let (code, out, err) = nnc(&["train", m, "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accuracy 1.000000"), "{out}");
    // Images of another size are refused before training, naming both shapes.
    std::fs::write(
        &model,
        src.replace("[B, 1, 3, 4]", "[B, 1, 4, 4]").replace("12 -> 2", "16 -> 2"),
    )
    .unwrap();
    let (code, _, err) = nnc(&["train", m]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("images.gz") && err.contains("[3, 4]") && err.contains("[1, 4, 4]"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

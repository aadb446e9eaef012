//! IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.): two zero bytes, the
//! element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E
//! float64), the number of dimensions, each dimension as a big-endian u32, then the elements,
//! big-endian, in C order. A gzipped file (MNIST's `.gz` downloads, recognised by the gzip
//! magic bytes, whatever its name) is decompressed first. Images `[N, H, W]` (or any
//! `[N, ...]`) and labels `[N]` then go through the checks of NumPy arrays
//! (`numpy::assemble`): example counts, the model's feature count, finite values, labels in
//! range.

use std::io::Read;
use std::path::Path;

use super::numpy::{assemble, Array, Values};
use super::{DataError, DataShape, Dataset};

pub(super) fn load_idx(
    images: &Path,
    labels: &Path,
    want: &DataShape,
    ids: Option<usize>,
) -> Result<Dataset, DataError> {
    assemble(read_idx(images, "images")?, read_idx(labels, "labels")?, want, ids)
}

/// The file's bytes, decompressed if gzipped; at most the memory available.
fn bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let limit = crate::files::available_memory();
    let mut raw = Vec::new();
    crate::files::open_bounded(path, limit)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(|e| DataError::io(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| bad(path, format!("a gzipped file that does not decompress: {e}")))?;
    Ok(out)
}

fn bad(path: &Path, message: String) -> DataError {
    DataError::Io { path: path.to_path_buf(), message: format!("not an IDX file: {message}") }
}

pub(super) fn read_idx(path: &Path, name: &str) -> Result<Array, DataError> {
    let b = bytes(path)?;
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(bad(path, "it does not start with two zero bytes and a type".into()));
    }
    let (kind, rank) = (b[2], b[3] as usize);
    let dims_end = 4 + 4 * rank;
    let header = b.get(4..dims_end).ok_or_else(|| bad(path, "its header is cut short".into()))?;
    let shape: Vec<usize> = be(header).map(|b| u32::from_be_bytes(b) as usize).collect();
    let width = match kind {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        _ => {
            let (path, array) = (path.to_path_buf(), name.to_string());
            return Err(DataError::UnsupportedDtype {
                path,
                array,
                dtype: format!("IDX type 0x{kind:02X}"),
            });
        }
    };
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let data = &b[dims_end..];
    if count.and_then(|n| n.checked_mul(width)) != Some(data.len()) {
        let message = format!(
            "its header says {shape:?} elements of {width} byte(s), but {} bytes follow",
            data.len()
        );
        return Err(bad(path, message));
    }
    // Every element `N` bytes wide, in order (the length was checked above).
    fn be<const N: usize>(data: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        data.chunks_exact(N).map(|c| c.try_into().expect("N bytes"))
    }
    let values = match kind {
        0x08 => Values::U8(data.to_vec()),
        0x09 => Values::I32(data.iter().map(|&v| v as i8 as i32).collect()),
        0x0B => Values::I32(be(data).map(|b| i16::from_be_bytes(b) as i32).collect()),
        0x0C => Values::I32(be(data).map(i32::from_be_bytes).collect()),
        0x0D => Values::F32(be(data).map(f32::from_be_bytes).collect()),
        _ => Values::F64(be(data).map(f64::from_be_bytes).collect()),
    };
    Ok(Array { path: path.to_path_buf(), name: name.to_string(), shape, values })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::data::LabelSpec;
    use std::io::Write;

    /// An IDX file of `kind` with `shape` and the big-endian `data`.
    fn idx(kind: u8, shape: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, kind, shape.len() as u8];
        shape.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(data);
        v
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("nnc-idx-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn images_and_labels_load_gzipped_or_not() {
        let pixels: Vec<u8> = (0..2 * 2 * 3).collect();
        let images = write("images", &idx(0x08, &[2, 2, 3], &pixels));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(0x08, &[2], &[7, 3])).unwrap();
        let labels = write("labels.gz", &gz.finish().unwrap());
        let want = DataShape { features: vec![1, 2, 3], label: LabelSpec::Classes(10) };
        let ds = load_idx(&images, &labels, &want, None).unwrap();
        assert_eq!(ds.x.shape, [2, 1, 2, 3]);
        assert_eq!(ds.x.data[7], 7.0);
        assert_eq!(ds.y.data, [7.0, 3.0]);
        // A label out of range names the file.
        let few = DataShape { label: LabelSpec::Classes(5), ..want.clone() };
        let e = load_idx(&images, &labels, &few, None).unwrap_err();
        assert!(matches!(e, DataError::LabelOutOfRange { .. }), "{e:?}");
        // Images of another size: the error names both shapes.
        let wrong = DataShape { features: vec![1, 3, 3], ..want };
        let e = load_idx(&images, &labels, &wrong, None).unwrap_err();
        assert!(
            matches!(e, DataError::FeatureCount { ref found, .. } if found == &[2, 3]),
            "{e:?}"
        );
        for p in [images, labels] {
            std::fs::remove_file(p).ok();
        }
    }

    #[test]
    fn wider_types_are_big_endian_and_bad_files_are_refused() {
        let f = write("f32", &idx(0x0D, &[2], &[0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0]));
        let a = read_idx(&f, "x").unwrap();
        assert!(matches!(a.values, Values::F32(ref v) if v == &[1.0, -2.0]));
        let short = write("short", &idx(0x08, &[3], &[1, 2]));
        let e = read_idx(&short, "x").err().unwrap();
        assert!(format!("{e:?}").contains("but 2 bytes follow"), "{e:?}");
        let csv = write("csv", b"a,b\n1,2\n");
        let e = read_idx(&csv, "x").err().unwrap();
        assert!(format!("{e:?}").contains("not an IDX file"), "{e:?}");
        for p in [f, short, csv] {
            std::fs::remove_file(p).ok();
        }
    }
}

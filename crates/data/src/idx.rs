//! IDX files, the format MNIST and Fashion-MNIST come in: a big-endian header (two zero bytes,
//! a type byte, the number of dimensions, then each dimension as a `u32`) followed by the
//! values. Images are `u8` in three dimensions (count, rows, columns), labels `u8` in one.
//! A file may be gzip-compressed (told by its first two bytes, whatever its name); a file that
//! is too short, has another type or shape, or does not match its labels is refused with an
//! error naming the file and what was expected.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::DataError;

/// The type byte of unsigned bytes.
const UBYTE: u8 = 0x08;
/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Largest file this reader accepts, after decompression (the MNIST training images are 47 MB).
const MAX_BYTES: u64 = 1 << 30;

/// Images of one IDX file: `count` images of `rows x columns` pixels, row-major, 0..=255.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Pixel rows per image.
    pub rows: usize,
    /// Pixel columns per image.
    pub columns: usize,
    /// All pixels, image after image.
    pub pixels: Vec<u8>,
}

impl Images {
    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.columns;
        &self.pixels[i * n..(i + 1) * n]
    }
}

fn error(path: &Path, reason: impl Into<String>) -> DataError {
    DataError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The bytes of `path`, decompressed when it is gzip.
fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut file =
        std::fs::File::open(path).map_err(|e| error(path, format!("cannot be read: {e}")))?;
    let mut raw = Vec::new();
    (&mut file)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| error(path, format!("cannot be read: {e}")))?;
    if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| {
                error(
                    path,
                    format!(
                        "is gzip-compressed but cannot be decompressed ({e}): truncated or damaged"
                    ),
                )
            })?;
        raw = out;
    }
    if raw.len() as u64 > MAX_BYTES {
        return Err(error(path, format!("is larger than {MAX_BYTES} bytes")));
    }
    Ok(raw)
}

/// The dimensions and the values of an IDX file of unsigned bytes with `dims` dimensions.
fn read_ubyte(path: &Path, dims: usize, what: &str) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bytes = read_bytes(path)?;
    let header = 4 + 4 * dims;
    if bytes.len() < 4 {
        return Err(error(
            path,
            format!("holds {} bytes: not an IDX file ({what})", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(error(
            path,
            format!("does not start with the IDX magic (two zero bytes): not an IDX file ({what})"),
        ));
    }
    if bytes[2] != UBYTE || usize::from(bytes[3]) != dims {
        return Err(error(
            path,
            format!(
                "is an IDX file of type 0x{:02x} with {} dimensions; {what} are type 0x08 (unsigned bytes) with {dims}",
                bytes[2], bytes[3]
            ),
        ));
    }
    if bytes.len() < header {
        return Err(error(
            path,
            format!("is truncated inside its header ({what})"),
        ));
    }
    let shape: Vec<usize> = (0..dims)
        .map(|d| {
            let at = 4 + 4 * d;
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        })
        .collect();
    let values = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let Some(values) = values.filter(|&v| v as u64 <= MAX_BYTES) else {
        return Err(error(path, format!("states an impossible shape {shape:?}")));
    };
    let have = bytes.len() - header;
    if have != values {
        return Err(error(
            path,
            format!(
                "states shape {shape:?} ({values} values) but holds {have}: {}",
                if have < values {
                    "truncated"
                } else {
                    "trailing bytes"
                }
            ),
        ));
    }
    Ok((shape, bytes[header..].to_vec()))
}

/// Reads an IDX file of images (`idx3-ubyte`).
pub fn read_images(path: &Path) -> Result<Images, DataError> {
    let (shape, pixels) = read_ubyte(path, 3, "images")?;
    Ok(Images {
        count: shape[0],
        rows: shape[1],
        columns: shape[2],
        pixels,
    })
}

/// Reads an IDX file of labels (`idx1-ubyte`); every label must be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, DataError> {
    let (_, labels) = read_ubyte(path, 1, "labels")?;
    if let Some((i, l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        return Err(error(
            path,
            format!("label {i} is {l}; labels are 0..{classes}"),
        ));
    }
    Ok(labels)
}

/// The file of `stem` in `dir`: `stem` itself or `stem.gz`, whichever exists.
pub fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(error(
        &dir.join(stem),
        format!(
            "is missing (looked for {stem} and {stem}.gz in {})",
            dir.display()
        ),
    ))
}

/// Reads a pair of image and label files that belong together: as many labels as images.
pub fn read_pair(
    images: &Path,
    labels: &Path,
    classes: usize,
) -> Result<(Images, Vec<u8>), DataError> {
    let im = read_images(images)?;
    let lb = read_labels(labels, classes)?;
    if im.count != lb.len() {
        return Err(error(
            labels,
            format!(
                "holds {} labels, but {} holds {} images; the two files must belong together",
                lb.len(),
                images.display(),
                im.count
            ),
        ));
    }
    Ok((im, lb))
}

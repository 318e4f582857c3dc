//! Atomic figure output, as PNG or SVG by the destination's extension. A
//! figure is rendered into a hidden temporary file next to its destination
//! and then renamed over it; a rename within one directory replaces the old
//! file in one step, so readers see either the old figure or the new one,
//! never a truncated one.
//!
//! SVG keeps its text as text (in the `sans-serif` family, laid out with the
//! embedded font's metrics), so a figure can be edited and its labels
//! searched in a paper's source.

use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::{
    BitMapBackend, DrawingArea, DrawingAreaErrorKind, DrawingBackend, IntoDrawingArea, SVGBackend,
    WHITE,
};

use crate::backend::PngBackend;
use crate::{PlotError, font};

/// A figure that can draw itself on any plotters backend.
pub(crate) trait Figure {
    /// Width and height in pixels (SVG: user units).
    fn size(&self) -> (u32, u32);

    /// Draws the figure on `canvas`; `path` is only for error messages.
    fn draw<DB: DrawingBackend>(
        &self,
        canvas: &DrawingArea<DB, Shift>,
        path: &Path,
    ) -> Result<(), PlotError>;
}

/// The file formats a figure can be written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format of `path`, which must name a file.
    fn of_named(path: &Path) -> Result<Self, PlotError> {
        if path.file_name().is_none() {
            return Err(PlotError::InvalidPath {
                path: path.to_path_buf(),
            });
        }
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(PlotError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Svg => "svg",
        }
    }
}

/// The part of `canvas` below a title and a smaller, muted subtitle (each
/// left out when empty).
pub(crate) fn below_titles<DB: DrawingBackend>(
    canvas: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
    path: &Path,
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    let err = render_error(path);
    let mut body = canvas.margin(10, 0, 0, 0);
    if !title.trim().is_empty() {
        body = canvas
            .margin(14, 0, 0, 0)
            .titled(title, crate::style::title())
            .map_err(&err)?;
    }
    if !subtitle.trim().is_empty() {
        body = body
            .titled(subtitle, crate::style::subtitle())
            .map_err(&err)?;
    }
    Ok(body)
}

/// Turns a plotters error into [`PlotError::Render`] for `path`.
pub(crate) fn render_error<E: std::error::Error + Send + Sync>(
    path: &Path,
) -> impl Fn(DrawingAreaErrorKind<E>) -> PlotError + '_ {
    move |e| PlotError::Render {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Renders `figure` as a PNG or SVG (by the extension of `path`) and moves it
/// to `path` only once it is complete.
///
/// The figure is drawn and encoded in memory and only then written, so that a
/// failing write (a full disk, say) is reported as what it is, an I/O error on
/// `path`, rather than from inside the encoder.
pub(crate) fn write_figure(path: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    let format = Format::of_named(path)?;
    let font = font::dejavu_sans()?;
    // Created first, beside the figure, so that a missing directory or a read-only location is
    // reported before any drawing; removed again when anything fails.
    let mut temp = temp_file_for(path, format)?;

    let size = figure.size();
    let bytes = match format {
        Format::Png => {
            let (w, h) = (size.0 as usize, size.1 as usize);
            let mut pixels = vec![0u8; w * h * 3];
            render(
                path,
                PngBackend::new(BitMapBackend::with_buffer(&mut pixels, size), font)
                    .into_drawing_area(),
                figure,
            )?;
            encode_png(&pixels, size).map_err(|e| PlotError::Render {
                path: path.to_path_buf(),
                message: format!("PNG encoding failed: {e}"),
            })?
        }
        Format::Svg => {
            let mut text = String::new();
            render(
                path,
                SVGBackend::with_string(&mut text, size).into_drawing_area(),
                figure,
            )?;
            text.into_bytes()
        }
    };
    write_synced(temp.as_file_mut(), &bytes, path)?;
    temp.persist(path).map_err(|e| io_error(path, e.error))?;
    Ok(())
}

/// Writes `bytes` to `file` and waits until they are on disk; a failure is an I/O error of the
/// figure at `path`.
fn write_synced(file: &mut std::fs::File, bytes: &[u8], path: &Path) -> Result<(), PlotError> {
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_error(path, source))
}

/// 8-bit RGB `pixels` (rows top to bottom) of an image of `size` as PNG bytes.
fn encode_png(pixels: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Each row filtered the way that compresses it best: figures are mostly flat colour.
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(bytes)
}

fn render<DB: DrawingBackend>(
    path: &Path,
    canvas: DrawingArea<DB, Shift>,
    figure: &impl Figure,
) -> Result<(), PlotError> {
    canvas.fill(&WHITE).map_err(render_error(path))?;
    figure.draw(&canvas, path)?;
    canvas.present().map_err(render_error(path))
}

/// A hidden, uniquely named file in the destination's directory
/// (`.fig.png.a8Xk2Q.tmp.png`), ending in the format's extension like the figure.
fn temp_file_for(path: &Path, format: Format) -> Result<tempfile::NamedTempFile, PlotError> {
    let name = path.file_name().ok_or_else(|| PlotError::InvalidPath {
        path: path.to_path_buf(),
    })?;
    let directory = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !directory.is_dir() {
        return Err(PlotError::MissingDirectory {
            path: path.to_path_buf(),
            directory,
        });
    }
    let prefix = format!(".{}.", name.to_string_lossy());
    let suffix = format!(".tmp.{}", format.extension());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(&suffix);
    // Readable like any figure the user writes, not private like a temporary file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder
        .tempfile_in(&directory)
        .map_err(|source| io_error(path, source))
}

fn io_error(path: &Path, source: std::io::Error) -> PlotError {
    PlotError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_file_sits_next_to_the_destination() {
        let dir = std::env::temp_dir();
        let temp = temp_file_for(&dir.join("fig.png"), Format::Png).expect("temp dir exists");
        let temp = temp.path().to_path_buf();
        assert_eq!(temp.parent(), Some(dir.as_path()));
        let name = temp.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        assert!(name.starts_with(".fig.png."), "{name}");
        assert!(name.ends_with(".tmp.png"), "{name}");
    }

    #[test]
    fn bare_file_name_goes_into_the_current_directory() {
        let temp = temp_file_for(Path::new("fig.png"), Format::Png).expect("cwd exists");
        let temp = temp.path().to_path_buf();
        let cwd = std::env::current_dir().expect("cwd");
        let parent = temp.parent().expect("parent");
        assert!(
            parent == Path::new(".") || parent == cwd,
            "{} is not in the current directory",
            temp.display()
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_an_io_error_of_the_figure() {
        // Writes to /dev/full fail as on a full disk.
        let mut full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full exists on Linux");
        let err = write_synced(&mut full, &[0; 64], Path::new("out/fig.png"))
            .expect_err("/dev/full takes nothing");
        assert!(matches!(err, PlotError::Io { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("cannot write `out/fig.png`: No space left on device"),
            "{message}"
        );
    }

    #[test]
    fn root_is_not_a_file() {
        assert!(matches!(
            temp_file_for(Path::new("/"), Format::Png),
            Err(PlotError::InvalidPath { .. })
        ));
    }
}

//! Atomic figure output, as PNG or SVG by the destination's extension. A
//! figure is rendered into a hidden temporary file next to its destination
//! and then renamed over it; a rename within one directory replaces the old
//! file in one step, so readers see either the old figure or the new one,
//! never a truncated one.
//!
//! SVG keeps its text as text (in the `sans-serif` family, laid out with the
//! embedded font's metrics), so a figure can be edited and its labels
//! searched in a paper's source.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
    fn of(path: &Path) -> Result<Self, PlotError> {
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
pub(crate) fn write_figure(path: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    if path.file_name().is_none() {
        return Err(PlotError::InvalidPath {
            path: path.to_path_buf(),
        });
    }
    let format = Format::of(path)?;
    let font = font::dejavu_sans()?;
    let temp = temp_path_for(path, format)?;

    // Creating the file ourselves first turns a missing directory or a
    // read-only location into a clear I/O error instead of an encoder message.
    if let Err(source) = File::create(&temp) {
        return Err(io_error(path, source));
    }

    let size = figure.size();
    let rendered = match format {
        Format::Png => render(
            path,
            PngBackend::new(BitMapBackend::new(&temp, size), font).into_drawing_area(),
            figure,
        ),
        Format::Svg => render(
            path,
            SVGBackend::new(&temp, size).into_drawing_area(),
            figure,
        ),
    };
    let result = rendered.and_then(|()| {
        File::open(&temp)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&temp, path))
            .map_err(|source| io_error(path, source))
    });
    if result.is_err() {
        // Best effort: the temporary file is hidden and uniquely named, so a
        // leftover one is harmless, but there is no reason to keep it.
        let _ = std::fs::remove_file(&temp);
    }
    result
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

/// A hidden file in the destination's directory whose name is unique within
/// this process and across processes. It ends in the format's extension
/// because the PNG encoder picks the image format from it.
fn temp_path_for(path: &Path, format: Format) -> Result<PathBuf, PlotError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let Some(name) = path.file_name() else {
        return Err(PlotError::InvalidPath {
            path: path.to_path_buf(),
        });
    };
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
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp_name = format!(
        ".{}.{}-{unique}.tmp.{}",
        name.to_string_lossy(),
        std::process::id(),
        format.extension()
    );
    Ok(directory.join(temp_name))
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
        let temp = temp_path_for(&dir.join("fig.png"), Format::Png).expect("temp dir exists");
        assert_eq!(temp.parent(), Some(dir.as_path()));
        let name = temp.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        assert!(name.starts_with(".fig.png."), "{name}");
        assert!(name.ends_with(".tmp.png"), "{name}");
    }

    #[test]
    fn bare_file_name_goes_into_the_current_directory() {
        let temp = temp_path_for(Path::new("fig.png"), Format::Png).expect("cwd exists");
        assert_eq!(temp.parent(), Some(Path::new(".")));
    }

    #[test]
    fn root_is_not_a_file() {
        assert!(matches!(
            temp_path_for(Path::new("/"), Format::Png),
            Err(PlotError::InvalidPath { .. })
        ));
    }
}

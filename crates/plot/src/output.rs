//! Atomic PNG output. A figure is rendered into a hidden temporary file next
//! to its destination and then renamed over it; a rename within one directory
//! replaces the old file in one step, so readers see either the old figure or
//! the new one, never a truncated PNG.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingAreaErrorKind, IntoDrawingArea, WHITE};

use crate::backend::PngBackend;
use crate::{PlotError, font};

/// The drawing surface handed to a figure's drawing code.
pub(crate) type Canvas<'a> = DrawingArea<PngBackend<'a>, Shift>;

/// Turns a plotters error into [`PlotError::Render`] for `path`.
pub(crate) fn render_error<E: std::error::Error + Send + Sync>(
    path: &Path,
) -> impl Fn(DrawingAreaErrorKind<E>) -> PlotError + '_ {
    move |e| PlotError::Render {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Renders a `size` (width, height in pixels) PNG with `draw` and moves it to
/// `path` only once it is complete.
pub(crate) fn write_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&Canvas<'_>) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    let font = font::dejavu_sans()?;
    let temp = temp_path_for(path)?;

    // Creating the file ourselves first turns a missing directory or a
    // read-only location into a clear I/O error instead of an encoder message.
    if let Err(source) = File::create(&temp) {
        return Err(io_error(path, source));
    }

    let rendered = render(path, &temp, size, font, draw);
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

fn render(
    path: &Path,
    temp: &Path,
    size: (u32, u32),
    font: &'static ab_glyph::FontRef<'static>,
    draw: impl FnOnce(&Canvas<'_>) -> Result<(), PlotError>,
) -> Result<(), PlotError> {
    let canvas = PngBackend::new(BitMapBackend::new(temp, size), font).into_drawing_area();
    canvas.fill(&WHITE).map_err(render_error(path))?;
    draw(&canvas)?;
    canvas.present().map_err(render_error(path))
}

/// A hidden file in the destination's directory whose name is unique within
/// this process and across processes. It ends in `.png` because the encoder
/// picks the image format from the extension.
fn temp_path_for(path: &Path) -> Result<PathBuf, PlotError> {
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
        ".{}.{}-{unique}.tmp.png",
        name.to_string_lossy(),
        std::process::id()
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
        let temp = temp_path_for(&dir.join("fig.png")).expect("temp dir exists");
        assert_eq!(temp.parent(), Some(dir.as_path()));
        let name = temp.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        assert!(name.starts_with(".fig.png."), "{name}");
        assert!(name.ends_with(".tmp.png"), "{name}");
    }

    #[test]
    fn bare_file_name_goes_into_the_current_directory() {
        let temp = temp_path_for(Path::new("fig.png")).expect("cwd exists");
        assert_eq!(temp.parent(), Some(Path::new(".")));
    }

    #[test]
    fn root_is_not_a_file() {
        assert!(matches!(
            temp_path_for(Path::new("/")),
            Err(PlotError::InvalidPath { .. })
        ));
    }
}

//! File writing that never leaves a half-written file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::TrainError;

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so a reader
/// (or a crash) sees either the old file or the complete new one.
pub fn write_atomic(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), TrainError> {
    let io_err = |source| TrainError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = PathBuf::from(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tmp.set_file_name(format!(".{name}.tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(io_err)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err)
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(
    path: &Path,
    value: &T,
    what: &'static str,
) -> Result<(), TrainError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| {
        TrainError::Model(format!("could not serialise for {}: {e}", path.display()))
    })?;
    write_atomic(path, text.as_bytes(), what)
}

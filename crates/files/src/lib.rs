//! The files spikeloop writes (models, checkpoints, calibrations, reports) and how: written
//! atomically, so that a reader or a crash sees the old file or the complete new one, never
//! half of one; and, for documents a later run trusts, sealed with a checksum of their content,
//! so that a changed digit is refused on reading instead of being believed.

use std::io::Write;
use std::path::Path;

use std::path::PathBuf;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The operating system refused (a full disk, a missing directory, no permission).
    #[error("could not {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A directory could not be made because a file stands where it or a parent would be.
    #[error("could not create the directory {}: {} is a file", dir.display(), file.display())]
    FileInTheWay {
        /// The directory asked for.
        dir: PathBuf,
        /// The file at its place or at a parent's.
        file: PathBuf,
    },
    /// A document could not be serialised.
    #[error("could not serialise {what}: {message}")]
    Serialise {
        /// What was being serialised.
        what: String,
        /// Why not.
        message: String,
    },
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so a reader
/// (or a crash) sees either the old file or the complete new one. A failed write (a full disk,
/// a vanished directory) removes its temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), FileError> {
    let io_err = |source| FileError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = temp_prefix(&name);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // Readable like any file the user writes, not private like a temporary file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    let mut file = builder.tempfile_in(dir).map_err(io_err)?;
    // Through the file itself, so that an error names the target, not the temporary name.
    file.as_file_mut().write_all(bytes).map_err(io_err)?;
    file.as_file().sync_all().map_err(io_err)?;
    file.persist(path).map_err(|e| io_err(e.error))?;
    Ok(())
}

/// Creates the directory `dir` and its missing parents (nothing where it exists). A file that
/// stands where the directory or a parent would be is named as such.
pub fn create_dir(dir: &Path) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(|source| match dir.ancestors().find(|a| a.is_file()) {
        Some(file) => FileError::FileInTheWay {
            dir: dir.to_path_buf(),
            file: file.to_path_buf(),
        },
        None => FileError::Io {
            what: "create the directory",
            path: dir.to_path_buf(),
            source,
        },
    })
}

/// Temporary files of [`write_atomic`] for `name` start with this (`.checkpoint.json.tmp`).
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Removes the temporary files [`write_atomic`] left in `dir` for the files named in `names`
/// when a process was killed between writing and renaming (`.checkpoint.json.tmpa8Xk2Q`).
pub fn remove_stale_temporaries(dir: &Path, names: &[&str]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        let stale = names.iter().any(|n| {
            file.strip_prefix(&temp_prefix(n)).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            })
        });
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Serialises `value` as pretty JSON and writes it atomically.
pub fn write_json_atomic<T: serde::Serialize>(
    path: &Path,
    value: &T,
    what: &'static str,
) -> Result<(), FileError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| FileError::Serialise {
        what: path.display().to_string(),
        message: e.to_string(),
    })?;
    write_atomic(path, text.as_bytes(), what)
}

/// A document whose `checksum` field covers the rest of its content: written sealed, refused on
/// reading when anything in it changed.
pub trait Checksummed: serde::Serialize + Clone {
    /// The document's checksum field.
    fn checksum_mut(&mut self) -> &mut Option<String>;
}

/// The CRC-64/XZ (16 hex digits) of the compact JSON of `doc` without its checksum. The JSON
/// of a document is fixed by its fields' order and Rust's shortest round-trip float printing,
/// so the value does not depend on how the file was formatted, only on what it holds.
fn checksum_of<T: Checksummed>(doc: &T) -> Result<String, FileError> {
    let mut bare = doc.clone();
    *bare.checksum_mut() = None;
    fingerprint(&bare)
}

/// The CRC-64/XZ (16 hex digits) of the compact JSON of `value`: a fingerprint of what it holds.
pub fn fingerprint<T: serde::Serialize>(value: &T) -> Result<String, FileError> {
    let text = serde_json::to_vec(value).map_err(|e| FileError::Serialise {
        what: "a value for its fingerprint".into(),
        message: e.to_string(),
    })?;
    Ok(format!(
        "{:016x}",
        crc::Crc::<u64>::new(&crc::CRC_64_XZ).checksum(&text)
    ))
}

/// `doc` with its checksum set.
pub fn seal<T: Checksummed>(doc: &T) -> Result<T, FileError> {
    let mut sealed = doc.clone();
    *sealed.checksum_mut() = Some(checksum_of(doc)?);
    Ok(sealed)
}

/// Checks the checksum `doc` carries: `Ok(true)` when it matches, `Ok(false)` when it carries
/// none, and an error naming both values when it does not match.
pub fn verify_seal<T: Checksummed>(doc: &T) -> Result<bool, String> {
    let Some(stated) = doc.clone().checksum_mut().clone() else {
        return Ok(false);
    };
    let actual = checksum_of(doc).map_err(|e| e.to_string())?;
    if stated == actual {
        Ok(true)
    } else {
        Err(format!(
            "its checksum {stated} does not match its content (checksum {actual}): the file was changed after it was written (a flipped digit, a hand edit, a damaged disk)"
        ))
    }
}

/// The two fields every spikeloop file opens with, read before the rest so that another kind of
/// file, or another version, is named as such instead of failing on its first unexpected field.
#[derive(serde::Deserialize)]
pub struct Kind {
    /// The document's `format`, if it names one.
    pub format: Option<String>,
    /// The document's `version`, if it has one.
    pub version: Option<u64>,
}

/// Why a file is not the kind asked for.
pub enum KindMismatch {
    /// It is another kind of spikeloop file (its format is named).
    Other(String),
    /// It names no kind, or another version.
    Invalid(String),
}

/// Checks that a file is a `want` file of `version`; another spikeloop file is named as what it
/// is.
pub fn check_kind(doc: &Kind, want: &str, version: u32, noun: &str) -> Result<(), KindMismatch> {
    match doc.format.as_deref() {
        Some(f) if f == want => {}
        Some(f) => return Err(KindMismatch::Other(f.to_string())),
        None => {
            return Err(KindMismatch::Invalid(format!(
                "not a {noun} file (no \"format\": \"{want}\" field)"
            )));
        }
    }
    let v = doc.version;
    if v != Some(u64::from(version)) {
        return Err(KindMismatch::Invalid(format!(
            "{noun} file version {} is not supported; this build reads version {version}{}",
            v.map_or_else(|| "(missing)".to_string(), |v| v.to_string()),
            if v.is_some_and(|v| v < u64::from(version)) {
                " (written by an earlier spikeloop; train it again with this one)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// Now, as an RFC 3339 UTC timestamp to the second (`2026-12-03T13:20:15Z`): when a file was
/// written.
pub fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::{FileError, create_dir};

    #[test]
    fn a_file_in_the_way_of_a_directory_is_named() {
        let scratch = tempfile::tempdir().expect("temp dir");
        let file = scratch.path().join("run");
        std::fs::write(&file, "not a directory").expect("write");
        for dir in [file.clone(), file.join("inner")] {
            match create_dir(&dir) {
                Err(e @ FileError::FileInTheWay { .. }) => {
                    assert!(
                        e.to_string()
                            .ends_with(&format!("{} is a file", file.display()))
                    );
                }
                other => panic!("{}: {other:?}", dir.display()),
            }
        }
        assert_eq!(
            std::fs::read_to_string(&file).expect("read"),
            "not a directory"
        );
        let made = scratch.path().join("a").join("b");
        create_dir(&made).expect("create");
        create_dir(&made).expect("exists already");
        assert!(made.is_dir());
    }
}

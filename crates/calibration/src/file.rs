//! Calibration files: a finished [`Calibration`] as a versioned, sealed JSON document that a
//! later run loads and writes back onto the chip it was taken on.
//!
//! The format is documented in `calibration/README.md`. A file names the chip it belongs to
//! ([`Backend::chip_id`]); applying it to another chip is refused unless the caller asks for it
//! on purpose (a stale-calibration experiment). Every file carries a CRC-64 of its content, so a
//! changed digit, a truncated write or a hand edit is refused on loading instead of being
//! believed. Values that could not be measured (a circuit no drive made fire) are written as
//! `null`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use spikeloop_backend::analog::CODE_MAX;
use spikeloop_backend::{Backend, BackendError, NeuronCodes};

use crate::{Calibration, Options, ParameterReport, Targets};

/// The `format` of every calibration file.
pub const CALIBRATION_FORMAT: &str = "spikeloop-calibration";
/// The version of the format this build writes and reads.
pub const CALIBRATION_VERSION: u32 = 1;

/// One circuit's calibrated codes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitCodes {
    /// The circuit (as [`Backend::circuits`] numbers them).
    pub circuit: usize,
    /// Its six codes.
    pub codes: NeuronCodes,
}

/// A calibration as it is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    /// Always [`CALIBRATION_FORMAT`].
    pub format: String,
    /// Always [`CALIBRATION_VERSION`] for files this build writes.
    pub version: u32,
    /// The spikeloop version that calibrated.
    pub spikeloop_version: String,
    /// When the calibration finished (RFC 3339, UTC).
    pub created: String,
    /// The chip calibrated ([`Backend::chip_id`]).
    pub chip_id: String,
    /// What every circuit was calibrated to.
    pub targets: Targets,
    /// How it was measured (the search seed, recordings averaged).
    pub options: Options,
    /// Every circuit's codes.
    pub codes: Vec<CircuitCodes>,
    /// Every calibrated parameter: spreads before and after, each circuit's achieved value,
    /// the failed circuits.
    pub parameters: Vec<ParameterReport>,
    /// Membrane recordings made.
    pub recordings: usize,
    /// Parameter-code writes made.
    pub writes: usize,
    /// What the calibration takes on the chip, seconds.
    pub hardware_time_s: f64,
    /// What it took here, seconds.
    pub wall_time_s: f64,
    /// CRC-64/XZ of the rest of the file ([`spikeloop_files::seal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl spikeloop_files::Checksummed for CalibrationFile {
    fn checksum_mut(&mut self) -> &mut Option<String> {
        &mut self.checksum
    }
}

/// Why a calibration file could not be read, written or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationFileError {
    /// The file could not be read.
    #[error("could not read the calibration {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid calibration.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The calibration belongs to another chip.
    #[error(
        "the calibration {} is for {file_chip}, but the backend is {backend_chip}: a calibration holds one chip's codes and would mis-set another's (calibrate this chip with `spikeloop calibrate`, or leave out --calibration)",
        path.display()
    )]
    OtherChip {
        /// The file.
        path: std::path::PathBuf,
        /// The chip the file is for.
        file_chip: String,
        /// The chip the backend reports.
        backend_chip: String,
    },
    /// Writing the file failed.
    #[error(transparent)]
    Write(#[from] spikeloop_files::FileError),
    /// The backend refused the codes.
    #[error("could not apply the calibration: {0}")]
    Backend(#[from] BackendError),
}

/// Whether [`CalibrationFile::apply`] checks that the backend is the calibrated chip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChipCheck {
    /// Refuse another chip (the normal case).
    SameChip,
    /// Apply to whatever chip the backend is (a stale-calibration experiment).
    AnyChip,
}

impl CalibrationFile {
    /// The file of a finished calibration, taken through a backend named `backend` (named in
    /// the chip identity of a backend that has none). The file is the same through whatever
    /// path the chip was reached (in process, or over a serial line).
    pub fn new(
        calibration: &Calibration,
        backend: &str,
        targets: &Targets,
        options: &Options,
    ) -> Self {
        CalibrationFile {
            format: CALIBRATION_FORMAT.into(),
            version: CALIBRATION_VERSION,
            spikeloop_version: env!("CARGO_PKG_VERSION").into(),
            created: spikeloop_files::now_utc(),
            chip_id: calibration
                .chip_id
                .clone()
                .unwrap_or_else(|| format!("{backend} (no chip identity)")),
            targets: targets.clone(),
            options: options.clone(),
            codes: calibration
                .codes
                .iter()
                .map(|&(circuit, codes)| CircuitCodes { circuit, codes })
                .collect(),
            parameters: calibration.parameters.clone(),
            recordings: calibration.recordings,
            writes: calibration.writes,
            hardware_time_s: calibration.hardware_time_us * 1e-6,
            wall_time_s: calibration.wall_time.as_secs_f64(),
            checksum: None,
        }
    }

    /// Writes the file atomically, sealed with its checksum.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationFileError> {
        Ok(spikeloop_files::write_json_atomic(
            path,
            &spikeloop_files::seal(self)?,
            "write the calibration",
        )?)
    }

    /// Reads and checks a calibration file: its format and version, its checksum, and that
    /// its codes and targets are in range.
    pub fn load(path: &Path) -> Result<Self, CalibrationFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|message| CalibrationFileError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Reads and checks a calibration from the text of a calibration file.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let head: spikeloop_files::Kind = serde_json::from_str(text).map_err(|e| {
            format!(
                "not a calibration file: not JSON ({e}); a calibration is the file `spikeloop calibrate` writes"
            )
        })?;
        spikeloop_files::check_kind(&head, CALIBRATION_FORMAT, CALIBRATION_VERSION, "calibration")
            .map_err(|e| match e {
                spikeloop_files::KindMismatch::Other(found) => format!(
                    "not a calibration file: its format is \"{found}\" (a calibration is the file `spikeloop calibrate` writes)"
                ),
                spikeloop_files::KindMismatch::Invalid(m) => m,
            })?;
        let file: Self =
            serde_json::from_str(text).map_err(|e| format!("not a valid calibration file: {e}"))?;
        match spikeloop_files::verify_seal(&file) {
            Ok(true) => {}
            Ok(false) => {
                return Err(
                    "it carries no checksum, so it cannot be told intact; every calibration spikeloop writes has one".into(),
                );
            }
            Err(e) => return Err(e),
        }
        file.validate()?;
        Ok(file)
    }

    /// Checks what the checksum cannot: codes within the 10-bit range, each circuit once,
    /// finite positive targets.
    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.codes {
            if let Err((p, code)) = c.codes.validate() {
                return Err(format!(
                    "circuit {}: {} code {code} is out of range (codes are 0..={CODE_MAX})",
                    c.circuit,
                    p.name()
                ));
            }
            if !seen.insert(c.circuit) {
                return Err(format!("circuit {} is listed twice", c.circuit));
            }
        }
        if self.codes.is_empty() {
            return Err("it holds no circuits".into());
        }
        self.targets.check()
    }

    /// A fingerprint of what the calibration sets, the chip and every circuit's codes (not
    /// when or how fast it was taken): the same calibration made again has the same one.
    pub fn codes_fingerprint(&self) -> String {
        spikeloop_files::fingerprint(&(&self.chip_id, &self.codes))
            .unwrap_or_else(|_| "unknown".into())
    }

    /// Every circuit's codes as the writes [`Backend::set_parameter_codes`] takes.
    pub fn writes(&self) -> Vec<(usize, Option<NeuronCodes>)> {
        self.codes
            .iter()
            .map(|c| (c.circuit, Some(c.codes)))
            .collect()
    }

    /// Writes the calibrated codes onto `backend` (they stay across later configurations).
    /// With [`ChipCheck::SameChip`] a backend that reports another chip is refused; `path`
    /// names the file in errors.
    pub fn apply(
        &self,
        backend: &mut dyn Backend,
        check: ChipCheck,
        path: &Path,
    ) -> Result<(), CalibrationFileError> {
        let name = backend.capabilities().name.clone();
        if !backend.capabilities().features.parameter_codes {
            return Err(CalibrationFileError::Backend(BackendError::Unsupported {
                backend: name,
                feature: "parameter codes (a calibration needs a chip)",
            }));
        }
        if check == ChipCheck::SameChip {
            let chip = backend.chip_id();
            if chip.as_deref() != Some(self.chip_id.as_str()) {
                return Err(CalibrationFileError::OtherChip {
                    path: path.to_path_buf(),
                    file_chip: self.chip_id.clone(),
                    backend_chip: chip.unwrap_or_else(|| format!("{name} (no chip identity)")),
                });
            }
        }
        backend.set_parameter_codes(&self.writes())?;
        Ok(())
    }

    /// The file with what differs between two calibrations of the same chip with the same
    /// seeds left out (when and how fast it was taken), for comparing them.
    pub fn without_timing(&self) -> Self {
        CalibrationFile {
            created: String::new(),
            wall_time_s: 0.0,
            checksum: None,
            ..self.clone()
        }
    }
}

/// Reading back what serde_json writes for a value that could not be measured (NaN or an
/// infinity become `null`): `null` is read as NaN.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer};

    /// A number, or `null` as NaN.
    pub fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// A list of numbers, each `null` as NaN.
    pub fn numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|v| v.unwrap_or(f64::NAN))
            .collect())
    }
}

//! Writes the golden frames of `firmware-interface/golden/` (one `.hex` file per frame).
//!
//! ```sh
//! cargo run -p spikeloop-transport --example golden            # into firmware-interface/golden
//! cargo run -p spikeloop-transport --example golden -- DIR     # somewhere else
//! ```
//!
//! Run it only after a deliberate protocol change; the `golden` test fails until the files match
//! the code again.

use std::path::PathBuf;

use spikeloop_transport::conformance::golden::golden_frames;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../firmware-interface/golden"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    for old in std::fs::read_dir(&dir)? {
        let path = old?.path();
        if path.extension().is_some_and(|e| e == "hex") {
            std::fs::remove_file(path)?;
        }
    }
    for frame in golden_frames() {
        let path = dir.join(format!("{}.hex", frame.name));
        std::fs::write(&path, frame.to_hex_file()?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

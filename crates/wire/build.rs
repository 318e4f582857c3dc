//! Compiles the protocol's `.proto` files (in the workspace's `proto/` directory) into Rust
//! types with prost, using the protoc binary shipped in `protoc-bin-vendored`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let files = [
        "spikeloop/v1/handshake.proto",
        "spikeloop/v1/configure.proto",
        "spikeloop/v1/run.proto",
        "spikeloop/v1/membrane.proto",
        "spikeloop/v1/device.proto",
        "spikeloop/v1/error.proto",
        "spikeloop/v1/calibration.proto",
    ];
    let paths: Vec<PathBuf> = files.iter().map(|f| proto_root.join(f)).collect();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    prost_build::Config::new()
        .protoc_executable(protoc)
        .compile_protos(&paths, &[proto_root])?;
    Ok(())
}

//! Compiles `proto/ssdit/v1/*.proto` (package `ssdit.v1`) into Rust types, gRPC clients and
//! servers, and a file descriptor set for gRPC reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it is compiled: a build cache
    // shared by checkouts at other paths may hold a script compiled in one
    // of them (CI points every clone at one target directory).
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let package_dir = root.join("ssdit/v1");
    let mut protos: Vec<PathBuf> = std::fs::read_dir(&package_dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    protos.retain(|p| p.extension().is_some_and(|ext| ext == "proto"));
    protos.sort();
    if protos.is_empty() {
        return Err(format!("no .proto files in {}", package_dir.display()).into());
    }
    println!("cargo:rerun-if-changed={}", package_dir.display());

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .bytes(".ssdit.v1")
        .file_descriptor_set_path(out_dir.join("ssdit_v1_descriptor.bin"))
        .compile_protos(&protos, std::slice::from_ref(&root))?;
    Ok(())
}

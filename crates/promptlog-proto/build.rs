//! Compiles `proto/promptlog/**/*.proto` (at the workspace root) with protox, a protobuf compiler
//! written in Rust, and generates prost messages, plus tonic services with the `grpc` feature.

use std::path::PathBuf;

/// The protos this crate exposes, relative to the proto root.
const PROTOS: &[&str] = &["promptlog/feedback/v1/feedback.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(proto).display());
    }
    let fds = protox::compile(PROTOS, [&root])?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure().build_server(grpc).build_client(grpc).build_transport(grpc).compile_fds(fds)?;
    Ok(())
}

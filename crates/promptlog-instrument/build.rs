//! With the `feedback-client` feature: generates the tonic client of promptlog's FeedbackService from
//! the repository's one copy of the proto (`proto/promptlog/feedback/v1/feedback.proto`), with protox
//! (a protobuf compiler in Rust; no `protoc`). Without the feature: nothing.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "feedback-client")]
    feedback_client()?;
    Ok(())
}

#[cfg(feature = "feedback-client")]
fn feedback_client() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "promptlog/feedback/v1/feedback.proto";
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let file = root.join(PROTO);
    println!("cargo:rerun-if-changed={}", file.display());
    if !file.exists() {
        return Err(format!(
            "{} is missing: the feedback-client feature needs the feedback API's proto",
            file.display()
        )
        .into());
    }
    let fds = protox::compile([PROTO], [&root])?;
    // The server too: the crate's tests answer the client in process.
    tonic_prost_build::configure().build_client(true).build_server(true).build_transport(true).compile_fds(fds)?;
    Ok(())
}

//! promptlog's own gRPC APIs, generated from `proto/` at build time (see `build.rs`).
//!
//! - [`feedback::v1`]: `promptlog.feedback.v1.FeedbackService`: scores (ratings, annotations,
//!   evaluations) attached to LLM calls. With the `grpc` feature it also holds the tonic
//!   `feedback_service_client::FeedbackServiceClient` and `feedback_service_server::FeedbackServiceServer`.

/// `promptlog.feedback.*`.
pub mod feedback {
    /// `promptlog.feedback.v1`.
    pub mod v1 {
        // Generated code: its items carry the .proto comments as docs, and some have none.
        #![allow(missing_docs, clippy::all)]
        include!(concat!(env!("OUT_DIR"), "/promptlog.feedback.v1.rs"));
    }
}

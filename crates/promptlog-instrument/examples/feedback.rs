//! Feedback from Rust: record a call, then send the user's verdict on it as a `gen_ai.evaluation.result`
//! event parented to the call's span (and carrying its response id). promptlog stores it as a score
//! joined to the call.
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//! cargo run -p promptlog-instrument --example feedback
//! ```
//!
//! Prints `CALL <trace id> <span id> <response id>` so a test can find the call and its score.

use promptlog_instrument::{Message, Response, Usage};

#[tokio::main]
async fn main() -> Result<(), promptlog_instrument::Error> {
    let _guard = promptlog_instrument::init()?;
    let call = promptlog_instrument::chat("openai", "gpt-4o")
        .input_messages(vec![Message::user("Summarise the release notes.")])
        .start();
    let done = call.finish(Response {
        id: Some("chatcmpl-promptlog-feedback-0001".into()),
        model: Some("gpt-4o-2024-08-06".into()),
        finish_reasons: vec!["stop".into()],
        output: vec![Message::assistant("Faster ingest, fewer bugs.").with_finish_reason("stop")],
        usage: Usage::openai(11, 7, 0, 0),
        ..Response::default()
    });

    // Later, when the user clicks thumbs-up (here: right away).
    promptlog_instrument::evaluation("user_feedback")
        .score(1.0)
        .label("thumbs_up")
        .explanation("the summary was accurate")
        .for_call(&done)
        .emit()?;
    println!(
        "CALL {} {} {}",
        done.span_context.trace_id(),
        done.span_context.span_id(),
        done.response_id.as_deref().unwrap_or_default()
    );
    Ok(())
}

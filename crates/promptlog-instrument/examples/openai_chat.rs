//! async-openai, instrumented: a plain call (system + user message, temperature 0.2, max_tokens 50), a
//! streamed call, and a call that fails, each under an app `tracing` span, exported to the collector
//! named by `OTEL_EXPORTER_OTLP_ENDPOINT` (`OTEL_EXPORTER_OTLP_PROTOCOL` = `grpc` or `http/protobuf`).
//!
//! ```sh
//! OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=sk-… \
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//! OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only \
//! cargo run -p promptlog-instrument --features async-openai --example openai_chat
//! ```
//!
//! Exits non-zero unless the first two calls succeed and the third fails.

use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
};
use futures::StreamExt as _;
use promptlog_instrument::openai::InstrumentedClient;
use tracing::Instrument as _;

/// The model the failing call asks for: one the server does not serve.
const UNAVAILABLE_MODEL: &str = "gpt-promptlog-unavailable";

fn request(model: &str, system: &str, user: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        model: model.to_owned(),
        messages: vec![
            ChatCompletionRequestSystemMessage::from(system).into(),
            ChatCompletionRequestUserMessage::from(user).into(),
        ],
        ..CreateChatCompletionRequest::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = promptlog_instrument::init()?;
    // OPENAI_BASE_URL and OPENAI_API_KEY, as the OpenAI SDKs read them.
    let client = InstrumentedClient::new(async_openai::Client::with_config(OpenAIConfig::new()));

    let mut plain = request(
        "gpt-4o-mini",
        "You are PromptlogBot, the assistant of the Rust example.",
        "Name the three primary colours, Rust plain call.",
    );
    plain.temperature = Some(0.2);
    #[allow(deprecated, reason = "max_tokens is what most OpenAI-compatible servers still read")]
    {
        plain.max_tokens = Some(50);
    }
    let answer = client.chat().create(plain).instrument(tracing::info_span!("plain call")).await?;
    println!("plain: {}", answer.choices[0].message.content.as_deref().unwrap_or_default());

    let streamed = async {
        let mut stream = client
            .chat()
            .create_stream(request(
                "gpt-4o",
                "You are PromptlogBot, the streaming assistant of the Rust example.",
                "Count from one to three in words, Rust stream call.",
            ))
            .await?;
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            for choice in chunk?.choices {
                text.push_str(choice.delta.content.as_deref().unwrap_or_default());
            }
        }
        Ok::<_, async_openai::error::OpenAIError>(text)
    }
    .instrument(tracing::info_span!("streamed call"))
    .await?;
    println!("stream: {streamed}");

    let failing = request(UNAVAILABLE_MODEL, "You are PromptlogBot (Rust error call).", "This Rust call must fail.");
    match client.chat().create(failing).instrument(tracing::info_span!("failing call")).await {
        Ok(_) => return Err(format!("{UNAVAILABLE_MODEL} answered; the failing call should fail").into()),
        Err(e) => println!("failing call failed as it should: {e}"),
    }
    Ok(())
}

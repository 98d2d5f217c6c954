//! Recording calls by hand, for a client this crate does not wrap: a chat call to Anthropic with a
//! tool call, the tool's execution, and the follow-up call, all under one app `tracing` span. No
//! model server is needed; the spans go to the collector named by `OTEL_EXPORTER_OTLP_ENDPOINT`.
//!
//! ```sh
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only \
//! cargo run -p promptlog-instrument --example manual
//! ```

use promptlog_instrument::{Message, Part, Response, Usage};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), promptlog_instrument::Error> {
    let _guard = promptlog_instrument::init()?;
    let request = tracing::info_span!("weather_question", user = "user-42");
    let _entered = request.enter();

    let question = Message::user("What is the weather in Oslo?");
    let mut call = promptlog_instrument::chat("anthropic", "claude-sonnet-4-20250514")
        .server("api.anthropic.com", 443)
        .temperature(0.2)
        .max_tokens(512)
        .stream(true)
        .conversation_id("conversation-7")
        .user_id("user-42")
        .tags(["manual-example"])
        .system_instructions(vec![Part::text("You answer weather questions with the get_weather tool.")])
        .input_messages(vec![question.clone()])
        .start();
    call.first_chunk(); // when the first streamed chunk arrives
    let asked =
        Part::ToolCall { id: Some("toolu_01".into()), name: "get_weather".into(), arguments: json!({"city": "Oslo"}) };
    call.finish(Response {
        id: Some("msg_01".into()),
        model: Some("claude-sonnet-4-20250514".into()),
        finish_reasons: vec!["tool_use".into()],
        output: vec![Message {
            role: "assistant".into(),
            parts: vec![asked.clone()],
            name: None,
            finish_reason: Some("tool_use".into()),
        }],
        // Anthropic's input count excludes the cache: 5 fresh + 128955 read + 1253 written = 130213.
        usage: Usage::anthropic(5, 42, 128_955, 1_253),
        ..Response::default()
    });

    let tool = promptlog_instrument::execute_tool("get_weather")
        .tool_call_id("toolu_01")
        .tool_type("function")
        .tool_arguments(json!({"city": "Oslo"}))
        .start();
    let weather = json!({"temperature_c": -3, "sky": "snow"});
    tool.finish(Response { tool_result: Some(weather.clone()), ..Response::default() });

    let answer = promptlog_instrument::chat("anthropic", "claude-sonnet-4-20250514")
        .input_messages(vec![
            question,
            Message { role: "assistant".into(), parts: vec![asked], name: None, finish_reason: None },
            Message {
                role: "tool".into(),
                parts: vec![Part::ToolCallResponse { id: Some("toolu_01".into()), response: weather }],
                name: None,
                finish_reason: None,
            },
        ])
        .start();
    answer.finish(Response {
        id: Some("msg_02".into()),
        model: Some("claude-sonnet-4-20250514".into()),
        finish_reasons: vec!["end_turn".into()],
        output: vec![Message::assistant("It is -3 °C and snowing in Oslo.").with_finish_reason("end_turn")],
        usage: Usage::anthropic(60, 14, 130_208, 0),
        ..Response::default()
    });
    println!("recorded 3 spans under weather_question");
    Ok(())
}

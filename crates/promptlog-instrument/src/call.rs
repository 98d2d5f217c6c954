//! Recording one GenAI operation: a builder for its request side, a [`Call`] for its life (first
//! chunk, finish or fail), and what is left afterwards ([`CallRef`]) to attach evaluations to.

use std::time::{Instant, SystemTime};

use opentelemetry::logs::{LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::logs::SdkLogger;
use serde_json::Value as Json;

use crate::attributes as attr;
use crate::capture::Capture;
use crate::message::{Message, Part, truncate_messages, truncate_parts};
use crate::usage::Usage;
use crate::{Instrument, json_to_any};

/// The operations this crate records (`gen_ai.operation.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Chat completion.
    Chat,
    /// Legacy text completion.
    TextCompletion,
    /// Embeddings.
    Embeddings,
    /// A tool run by the app on the model's behalf.
    ExecuteTool,
}

impl Operation {
    /// The convention's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::TextCompletion => "text_completion",
            Operation::Embeddings => "embeddings",
            Operation::ExecuteTool => "execute_tool",
        }
    }
}

/// The request side of a call, before it starts. Made by [`Instrument::chat`] and friends.
#[must_use = "a call is recorded only once started"]
pub struct CallBuilder {
    instrument: Instrument,
    operation: Operation,
    /// Model (or tool name, for `execute_tool`): the second word of the span name.
    subject: String,
    attributes: Vec<KeyValue>,
    input: Option<Vec<Message>>,
    system: Option<Vec<Part>>,
    tool_arguments: Option<Json>,
}

impl CallBuilder {
    pub(crate) fn new(instrument: Instrument, operation: Operation, provider: Option<&str>, subject: &str) -> Self {
        let mut attributes = vec![KeyValue::new(attr::OPERATION_NAME, operation.as_str())];
        if let Some(p) = provider {
            attributes.push(KeyValue::new(attr::PROVIDER_NAME, p.to_owned()));
        }
        if operation == Operation::ExecuteTool {
            attributes.push(KeyValue::new(attr::TOOL_NAME, subject.to_owned()));
        } else {
            attributes.push(KeyValue::new(attr::REQUEST_MODEL, subject.to_owned()));
        }
        CallBuilder {
            instrument,
            operation,
            subject: subject.to_owned(),
            attributes,
            input: None,
            system: None,
            tool_arguments: None,
        }
    }

    /// Any attribute (a provider-specific one, say).
    pub fn attribute(mut self, kv: KeyValue) -> Self {
        self.attributes.push(kv);
        self
    }

    /// `server.address` and `server.port` of the model server.
    pub fn server(self, address: impl Into<String>, port: u16) -> Self {
        self.attribute(KeyValue::new(attr::SERVER_ADDRESS, address.into()))
            .attribute(KeyValue::new(attr::SERVER_PORT, i64::from(port)))
    }

    /// `gen_ai.request.temperature`.
    pub fn temperature(self, t: f64) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_TEMPERATURE, t))
    }

    /// `gen_ai.request.max_tokens`.
    pub fn max_tokens(self, n: u32) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_MAX_TOKENS, i64::from(n)))
    }

    /// `gen_ai.request.top_p`.
    pub fn top_p(self, p: f64) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_TOP_P, p))
    }

    /// `gen_ai.request.top_k`.
    pub fn top_k(self, k: f64) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_TOP_K, k))
    }

    /// `gen_ai.request.frequency_penalty`.
    pub fn frequency_penalty(self, p: f64) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_FREQUENCY_PENALTY, p))
    }

    /// `gen_ai.request.presence_penalty`.
    pub fn presence_penalty(self, p: f64) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_PRESENCE_PENALTY, p))
    }

    /// `gen_ai.request.stop_sequences`.
    pub fn stop_sequences<S: Into<String>>(self, stops: impl IntoIterator<Item = S>) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_STOP_SEQUENCES, string_array(stops)))
    }

    /// `gen_ai.request.seed`.
    pub fn seed(self, seed: i64) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_SEED, seed))
    }

    /// `gen_ai.request.choice.count`, recorded only when not 1 (as the conventions ask).
    pub fn choice_count(self, n: u32) -> Self {
        if n == 1 { self } else { self.attribute(KeyValue::new(attr::REQUEST_CHOICE_COUNT, i64::from(n))) }
    }

    /// `gen_ai.request.stream`, recorded only for streamed calls.
    pub fn stream(self, stream: bool) -> Self {
        if stream { self.attribute(KeyValue::new(attr::REQUEST_STREAM, true)) } else { self }
    }

    /// `gen_ai.output.type` (`text`, `json`, …).
    pub fn output_type(self, t: impl Into<String>) -> Self {
        self.attribute(KeyValue::new(attr::OUTPUT_TYPE, t.into()))
    }

    /// `gen_ai.request.encoding_formats` (embeddings).
    pub fn encoding_formats<S: Into<String>>(self, formats: impl IntoIterator<Item = S>) -> Self {
        self.attribute(KeyValue::new(attr::REQUEST_ENCODING_FORMATS, string_array(formats)))
    }

    /// `gen_ai.conversation.id`.
    pub fn conversation_id(self, id: impl Into<String>) -> Self {
        self.attribute(KeyValue::new(attr::CONVERSATION_ID, id.into()))
    }

    /// `user.id`.
    pub fn user_id(self, id: impl Into<String>) -> Self {
        self.attribute(KeyValue::new(attr::USER_ID, id.into()))
    }

    /// Tags (`tag.tags`).
    pub fn tags<S: Into<String>>(self, tags: impl IntoIterator<Item = S>) -> Self {
        self.attribute(KeyValue::new(attr::TAGS, string_array(tags)))
    }

    /// `gen_ai.tool.call.id` (execute_tool).
    pub fn tool_call_id(self, id: impl Into<String>) -> Self {
        self.attribute(KeyValue::new(attr::TOOL_CALL_ID, id.into()))
    }

    /// `gen_ai.tool.type` (execute_tool).
    pub fn tool_type(self, t: impl Into<String>) -> Self {
        self.attribute(KeyValue::new(attr::TOOL_TYPE, t.into()))
    }

    /// The tool's arguments (content: recorded only when capture is on).
    pub fn tool_arguments(mut self, args: Json) -> Self {
        self.tool_arguments = Some(args);
        self
    }

    /// The conversation sent (content: recorded only when capture is on).
    pub fn input_messages(mut self, messages: Vec<Message>) -> Self {
        self.input = Some(messages);
        self
    }

    /// System instructions given apart from the messages (content: recorded only when capture is on).
    pub fn system_instructions(mut self, parts: Vec<Part>) -> Self {
        self.system = Some(parts);
        self
    }

    /// Starts the span (a child of the current context, so of the entered `tracing` span).
    pub fn start(self) -> Call {
        let CallBuilder { instrument, operation, subject, mut attributes, mut input, mut system, tool_arguments } =
            self;
        let capture = instrument.capture();
        let mut truncated = false;
        if capture.mode.on_span() {
            if let Some(m) = input.as_mut() {
                truncated |= truncate_messages(m, &mut capture.max_bytes.clone());
                attributes.push(KeyValue::new(attr::INPUT_MESSAGES, to_json(m)));
            }
            if let Some(p) = system.as_mut() {
                truncated |= truncate_parts(p, &mut capture.max_bytes.clone());
                attributes.push(KeyValue::new(attr::SYSTEM_INSTRUCTIONS, to_json(p)));
            }
            if let Some(a) = &tool_arguments {
                attributes
                    .push(KeyValue::new(attr::TOOL_CALL_ARGUMENTS, capped(a.to_string(), capture, &mut truncated)));
            }
        }
        let kind = if operation == Operation::ExecuteTool { SpanKind::Internal } else { SpanKind::Client };
        let tracer = instrument.tracer();
        let span = tracer
            .span_builder(format!("{} {subject}", operation.as_str()))
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, &Context::current());
        let mut call = Call {
            span: Some(span),
            started: Instant::now(),
            first_chunk_seen: false,
            capture,
            logger: instrument.logger().cloned(),
            operation,
            subject,
            input: capture.mode.on_event().then_some(input).flatten(),
            system: capture.mode.on_event().then_some(system).flatten(),
        };
        if truncated {
            call.set_attribute(KeyValue::new(attr::CONTENT_TRUNCATED, true));
        }
        call
    }
}

/// What a finished call answered.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// `gen_ai.response.id`.
    pub id: Option<String>,
    /// `gen_ai.response.model`.
    pub model: Option<String>,
    /// `gen_ai.response.finish_reasons`, one per choice.
    pub finish_reasons: Vec<String>,
    /// The choices (content: recorded only when capture is on).
    pub output: Vec<Message>,
    /// Token usage, inclusive (see [`Usage`]'s constructors).
    pub usage: Usage,
    /// A tool's result (execute_tool; content).
    pub tool_result: Option<Json>,
    /// Anything else (`openai.response.service_tier`, embeddings dimension count, …).
    pub attributes: Vec<KeyValue>,
}

/// A started call. Finish it with [`Call::finish`] or [`Call::fail`]; dropped unfinished, it ends as
/// an error (`error.type` `_OTHER`) so an abandoned request still shows up.
pub struct Call {
    span: Option<opentelemetry_sdk::trace::Span>,
    started: Instant,
    first_chunk_seen: bool,
    capture: Capture,
    logger: Option<SdkLogger>,
    operation: Operation,
    subject: String,
    /// Kept for the details event only.
    input: Option<Vec<Message>>,
    system: Option<Vec<Part>>,
}

/// What remains of a finished call: where to attach an evaluation.
#[derive(Debug, Clone)]
pub struct CallRef {
    /// The call's span.
    pub span_context: SpanContext,
    /// The provider's response id, when there was one.
    pub response_id: Option<String>,
}

impl Call {
    /// The call's span context (trace id, span id).
    pub fn span_context(&self) -> SpanContext {
        self.span.as_ref().map(|s| s.span_context().clone()).unwrap_or_else(SpanContext::empty_context)
    }

    /// A context with this call's span current, to parent further spans under it.
    pub fn context(&self) -> Context {
        Context::current().with_remote_span_context(self.span_context())
    }

    /// Adds an attribute to the span.
    pub fn set_attribute(&mut self, kv: KeyValue) {
        if let Some(s) = self.span.as_mut() {
            s.set_attribute(kv);
        }
    }

    /// Records the first streamed chunk: `gen_ai.response.time_to_first_chunk`, once.
    pub fn first_chunk(&mut self) {
        if !self.first_chunk_seen {
            self.first_chunk_seen = true;
            let secs = self.started.elapsed().as_secs_f64();
            self.set_attribute(KeyValue::new(attr::RESPONSE_TIME_TO_FIRST_CHUNK, secs));
        }
    }

    /// Ends the call successfully with its response.
    pub fn finish(mut self, response: Response) -> CallRef {
        self.end_ok(response)
    }

    /// Ends the call as failed: `error.type` (the error's class, e.g. `RateLimitError`, or `_OTHER`)
    /// and an error status with `message`.
    pub fn fail(mut self, error_type: &str, message: impl std::fmt::Display) -> CallRef {
        self.end_err(error_type, message.to_string())
    }

    pub(crate) fn end_ok(&mut self, r: Response) -> CallRef {
        let mut kvs = r.attributes;
        if let Some(id) = &r.id {
            kvs.push(KeyValue::new(attr::RESPONSE_ID, id.clone()));
        }
        if let Some(m) = &r.model {
            kvs.push(KeyValue::new(attr::RESPONSE_MODEL, m.clone()));
        }
        if !r.finish_reasons.is_empty() {
            kvs.push(KeyValue::new(attr::RESPONSE_FINISH_REASONS, string_array(r.finish_reasons.clone())));
        }
        let u = r.usage;
        for (key, v) in [
            (attr::USAGE_INPUT_TOKENS, u.input_tokens),
            (attr::USAGE_OUTPUT_TOKENS, u.output_tokens),
            (attr::USAGE_CACHE_READ_INPUT_TOKENS, u.cache_read_input_tokens),
            (attr::USAGE_CACHE_CREATION_INPUT_TOKENS, u.cache_creation_input_tokens),
            (attr::USAGE_REASONING_OUTPUT_TOKENS, u.reasoning_output_tokens),
        ] {
            if let Some(v) = v {
                kvs.push(KeyValue::new(key, i64::try_from(v).unwrap_or(i64::MAX)));
            }
        }
        let mut output = r.output;
        let mut truncated = false;
        if self.capture.mode.on_span() {
            if !output.is_empty() {
                truncated |= truncate_messages(&mut output, &mut self.capture.max_bytes.clone());
                kvs.push(KeyValue::new(attr::OUTPUT_MESSAGES, to_json(&output)));
            }
            if let Some(t) = &r.tool_result {
                kvs.push(KeyValue::new(attr::TOOL_CALL_RESULT, capped(t.to_string(), self.capture, &mut truncated)));
            }
        }
        if truncated {
            kvs.push(KeyValue::new(attr::CONTENT_TRUNCATED, true));
        }
        // Status stays Unset: the specification leaves Ok to the application, not to instrumentation.
        if let Some(s) = self.span.as_mut() {
            s.set_attributes(kvs);
        }
        self.emit_details(r.id.as_deref(), r.model.as_deref(), Some(output));
        self.end(r.id)
    }

    pub(crate) fn end_err(&mut self, error_type: &str, message: String) -> CallRef {
        let error_type = if error_type.is_empty() { attr::ERROR_TYPE_OTHER } else { error_type };
        if let Some(s) = self.span.as_mut() {
            s.set_attribute(KeyValue::new(attr::ERROR_TYPE, error_type.to_owned()));
            s.set_status(Status::error(message));
        }
        self.emit_details(None, None, None);
        self.end(None)
    }

    fn end(&mut self, response_id: Option<String>) -> CallRef {
        let span_context = self.span_context();
        if let Some(mut s) = self.span.take() {
            s.end();
        }
        CallRef { span_context, response_id }
    }

    /// The `gen_ai.client.inference.operation.details` event (capture modes with an event): content
    /// as structured values, parented to the call's span.
    fn emit_details(&mut self, response_id: Option<&str>, response_model: Option<&str>, output: Option<Vec<Message>>) {
        if !self.capture.mode.on_event() {
            return;
        }
        let Some(logger) = &self.logger else { return };
        let mut rec = logger.create_log_record();
        rec.set_event_name(attr::EVENT_INFERENCE_DETAILS);
        rec.set_severity_number(Severity::Info);
        rec.set_timestamp(SystemTime::now());
        let sc = self.span_context();
        rec.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        rec.add_attribute(attr::OPERATION_NAME, self.operation.as_str());
        let subject_key = if self.operation == Operation::ExecuteTool { attr::TOOL_NAME } else { attr::REQUEST_MODEL };
        rec.add_attribute(subject_key, self.subject.clone());
        if let Some(id) = response_id {
            rec.add_attribute(attr::RESPONSE_ID, id.to_owned());
        }
        if let Some(m) = response_model {
            rec.add_attribute(attr::RESPONSE_MODEL, m.to_owned());
        }
        let cap = self.capture.max_bytes;
        if let Some(mut m) = self.input.take() {
            truncate_messages(&mut m, &mut cap.clone());
            rec.add_attribute(attr::INPUT_MESSAGES, json_to_any(serde_json::to_value(&m).unwrap_or_default()));
        }
        if let Some(mut p) = self.system.take() {
            truncate_parts(&mut p, &mut cap.clone());
            rec.add_attribute(attr::SYSTEM_INSTRUCTIONS, json_to_any(serde_json::to_value(&p).unwrap_or_default()));
        }
        if let Some(mut m) = output.filter(|o| !o.is_empty()) {
            truncate_messages(&mut m, &mut cap.clone());
            rec.add_attribute(attr::OUTPUT_MESSAGES, json_to_any(serde_json::to_value(&m).unwrap_or_default()));
        }
        logger.emit(rec);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if self.span.is_some() {
            self.end_err(attr::ERROR_TYPE_OTHER, "the call was dropped before it finished".to_owned());
        }
    }
}

fn string_array<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(Array::String(items.into_iter().map(|s| StringValue::from(s.into())).collect()))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    // Serialising our own plain structs cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// `text` cut to the byte cap (on a char boundary); sets `truncated` when cut.
fn capped(mut text: String, capture: Capture, truncated: &mut bool) -> String {
    if text.len() > capture.max_bytes {
        let mut end = capture.max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        *truncated = true;
    }
    text
}

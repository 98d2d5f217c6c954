//! `async-openai` chat completions, instrumented (feature `async-openai`): wrap the client once, then
//! call `chat().create(..)` / `chat().create_stream(..)` as before.
//!
//! Recorded: every request parameter the conventions name, input and output messages (when capture
//! is on), response id and model, finish reasons, usage with cached and reasoning tokens (OpenAI's
//! `prompt_tokens` already include the cached ones), the service tier and system fingerprint, time to
//! first chunk of streams (usage is asked for with `stream_options.include_usage` unless the caller
//! turned it off), errors by the OpenAI SDKs' class names, and the provider from the base URL.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionResponseStream, ChatCompletionStreamOptions, CompletionUsage, CreateChatCompletionRequest,
    CreateChatCompletionResponse, CreateChatCompletionStreamResponse, StopConfiguration,
};
use futures::Stream;
use opentelemetry::KeyValue;
use serde_json::Value as Json;

use crate::attributes as attr;
use crate::{Call, Instrument, Message, Part, Response, Usage};

/// An `async_openai::Client` whose chat calls are recorded.
pub struct InstrumentedClient<C: Config> {
    client: async_openai::Client<C>,
    instrument: Option<Instrument>,
    provider: String,
    server: Option<(String, u16)>,
}

impl<C: Config> InstrumentedClient<C> {
    /// Wraps `client`; the provider and server come from its base URL.
    pub fn new(client: async_openai::Client<C>) -> Self {
        let base = client.config().api_base().to_owned();
        InstrumentedClient {
            provider: provider_of(&base).to_owned(),
            server: server_of(&base),
            client,
            instrument: None,
        }
    }

    /// Records on `instrument` instead of the global one.
    pub fn with_instrument(mut self, instrument: Instrument) -> Self {
        self.instrument = Some(instrument);
        self
    }

    /// Overrides `gen_ai.provider.name` (an OpenAI-compatible server the URL does not reveal).
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = provider.into();
        self
    }

    /// The wrapped client, for everything not instrumented here.
    pub fn inner(&self) -> &async_openai::Client<C> {
        &self.client
    }

    /// The chat completions API, instrumented.
    pub fn chat(&self) -> InstrumentedChat<'_, C> {
        InstrumentedChat { client: self }
    }
}

/// [`InstrumentedClient::chat`].
pub struct InstrumentedChat<'c, C: Config> {
    client: &'c InstrumentedClient<C>,
}

impl<C: Config> InstrumentedChat<'_, C> {
    /// `chat().create(request)`, recorded as one `chat {model}` span.
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        let call = self.start(&request, false);
        match self.client.client.chat().create(request).await {
            Ok(response) => {
                call.finish(response_of(&response));
                Ok(response)
            }
            Err(e) => {
                call.fail(error_type(&e), &e);
                Err(e)
            }
        }
    }

    /// `chat().create_stream(request)`: the returned stream records the first chunk's time and ends
    /// the span on the usage chunk, at the end of the stream, on an error, or when dropped early.
    pub async fn create_stream(
        &self,
        mut request: CreateChatCompletionRequest,
    ) -> Result<InstrumentedStream, OpenAIError> {
        let options = request.stream_options.get_or_insert_with(ChatCompletionStreamOptions::default);
        let include_usage = *options.include_usage.get_or_insert(true);
        let call = self.start(&request, true);
        match self.client.client.chat().create_stream(request).await {
            Ok(inner) => Ok(InstrumentedStream { inner, call: Some(call), include_usage, acc: Accumulated::default() }),
            Err(e) => {
                call.fail(error_type(&e), &e);
                Err(e)
            }
        }
    }

    fn start(&self, r: &CreateChatCompletionRequest, stream: bool) -> Call {
        let c = self.client;
        let instrument = c.instrument.clone().unwrap_or_else(Instrument::global);
        let mut b = instrument.chat(&c.provider, &r.model).stream(stream);
        if let Some((host, port)) = &c.server {
            b = b.server(host.clone(), *port);
        }
        if let Some(t) = r.temperature {
            b = b.temperature(f32_to_f64(t));
        }
        #[allow(deprecated, reason = "max_tokens is deprecated by OpenAI but still sent by many apps")]
        if let Some(n) = r.max_completion_tokens.or(r.max_tokens) {
            b = b.max_tokens(n);
        }
        if let Some(p) = r.top_p {
            b = b.top_p(f32_to_f64(p));
        }
        if let Some(p) = r.frequency_penalty {
            b = b.frequency_penalty(f32_to_f64(p));
        }
        if let Some(p) = r.presence_penalty {
            b = b.presence_penalty(f32_to_f64(p));
        }
        #[allow(deprecated, reason = "OpenAI deprecated seed but still honours it; the conventions record it")]
        if let Some(s) = r.seed {
            b = b.seed(s);
        }
        if let Some(n) = r.n {
            b = b.choice_count(u32::from(n));
        }
        match &r.stop {
            Some(StopConfiguration::String(s)) => b = b.stop_sequences([s.clone()]),
            Some(StopConfiguration::StringArray(v)) => b = b.stop_sequences(v.clone()),
            None => {}
        }
        if let Some(t) = r.service_tier.as_ref().and_then(enum_str) {
            b = b.attribute(KeyValue::new("openai.request.service_tier", t));
        }
        if instrument.capture().mode != crate::CaptureMode::None {
            let messages = serde_json::to_value(&r.messages).unwrap_or_default();
            b = b
                .input_messages(messages.as_array().map(|m| m.iter().map(input_message).collect()).unwrap_or_default());
        }
        b.start()
    }
}

/// A chat completion stream that records the call as it is read.
pub struct InstrumentedStream {
    inner: ChatCompletionResponseStream,
    call: Option<Call>,
    include_usage: bool,
    acc: Accumulated,
}

/// What the chunks said so far.
#[derive(Default)]
struct Accumulated {
    id: Option<String>,
    model: Option<String>,
    service_tier: Option<String>,
    fingerprint: Option<String>,
    /// Per choice index.
    choices: Vec<StreamedChoice>,
    usage: Option<CompletionUsage>,
}

/// One choice of a stream so far: text, finish reason, tool calls.
type StreamedChoice = (String, Option<String>, Vec<StreamedToolCall>);
/// One streamed tool call: id, name, arguments text.
type StreamedToolCall = (Option<String>, String, String);

impl Accumulated {
    fn add(&mut self, chunk: &CreateChatCompletionStreamResponse) {
        self.id.get_or_insert_with(|| chunk.id.clone());
        self.model.get_or_insert_with(|| chunk.model.clone());
        if self.service_tier.is_none() {
            self.service_tier = chunk.service_tier.as_ref().and_then(enum_str);
        }
        #[allow(deprecated, reason = "OpenAI deprecated system_fingerprint but still sends it")]
        if self.fingerprint.is_none() {
            self.fingerprint.clone_from(&chunk.system_fingerprint);
        }
        for ch in &chunk.choices {
            let i = ch.index as usize;
            if self.choices.len() <= i {
                self.choices.resize_with(i + 1, Default::default);
            }
            let slot = &mut self.choices[i];
            if let Some(t) = &ch.delta.content {
                slot.0.push_str(t);
            }
            if let Some(fr) = ch.finish_reason.as_ref().and_then(enum_str) {
                slot.1 = Some(fr);
            }
            for tc in ch.delta.tool_calls.iter().flatten() {
                let j = tc.index as usize;
                if slot.2.len() <= j {
                    slot.2.resize_with(j + 1, Default::default);
                }
                let call = &mut slot.2[j];
                if tc.id.is_some() {
                    call.0.clone_from(&tc.id);
                }
                if let Some(f) = &tc.function {
                    if let Some(n) = &f.name {
                        call.1.push_str(n);
                    }
                    if let Some(a) = &f.arguments {
                        call.2.push_str(a);
                    }
                }
            }
        }
        if chunk.usage.is_some() {
            self.usage.clone_from(&chunk.usage);
        }
    }

    fn response(&mut self) -> Response {
        let mut r = Response { id: self.id.take(), model: self.model.take(), ..Response::default() };
        for (text, finish, tools) in std::mem::take(&mut self.choices) {
            let mut parts = Vec::new();
            if !text.is_empty() {
                parts.push(Part::text(text));
            }
            parts.extend(tools.into_iter().map(|(id, name, args)| tool_call(id, name, &args)));
            r.finish_reasons.extend(finish.clone());
            r.output.push(Message { role: "assistant".into(), parts, name: None, finish_reason: finish });
        }
        r.usage = self.usage.as_ref().map(usage_of).unwrap_or_default();
        extras(&mut r, self.service_tier.take(), self.fingerprint.take());
        r
    }
}

impl Stream for InstrumentedStream {
    type Item = Result<CreateChatCompletionStreamResponse, OpenAIError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = std::task::ready!(this.inner.as_mut().poll_next(cx));
        match &item {
            Some(Ok(chunk)) => {
                if let Some(call) = this.call.as_mut() {
                    call.first_chunk();
                }
                this.acc.add(chunk);
                // With usage asked for, the usage chunk is the last one: the call is complete.
                if this.include_usage && chunk.usage.is_some() {
                    this.finish();
                }
            }
            Some(Err(e)) => {
                if let Some(call) = this.call.take() {
                    call.fail(error_type(e), e);
                }
            }
            None => this.finish(),
        }
        Poll::Ready(item)
    }
}

impl InstrumentedStream {
    fn finish(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(self.acc.response());
        }
    }
}

fn response_of(r: &CreateChatCompletionResponse) -> Response {
    let mut out = Response { id: Some(r.id.clone()), model: Some(r.model.clone()), ..Response::default() };
    for ch in &r.choices {
        let finish = ch.finish_reason.as_ref().and_then(enum_str);
        out.finish_reasons.extend(finish.clone());
        let mut parts = Vec::new();
        if let Some(t) = &ch.message.content {
            parts.push(Part::text(t.clone()));
        }
        parts.extend(tool_calls_of(&serde_json::to_value(&ch.message).unwrap_or_default()));
        out.output.push(Message { role: "assistant".into(), parts, name: None, finish_reason: finish });
    }
    out.usage = r.usage.as_ref().map(usage_of).unwrap_or_default();
    #[allow(deprecated, reason = "OpenAI deprecated system_fingerprint but still sends it")]
    let fingerprint = r.system_fingerprint.clone();
    extras(&mut out, r.service_tier.as_ref().and_then(enum_str), fingerprint);
    out
}

fn extras(r: &mut Response, service_tier: Option<String>, fingerprint: Option<String>) {
    if let Some(t) = service_tier {
        r.attributes.push(KeyValue::new(attr::OPENAI_RESPONSE_SERVICE_TIER, t));
    }
    if let Some(f) = fingerprint {
        r.attributes.push(KeyValue::new(attr::OPENAI_RESPONSE_SYSTEM_FINGERPRINT, f));
    }
}

/// OpenAI's counts are already inclusive: cached tokens are part of the prompt, reasoning part of
/// the completion.
fn usage_of(u: &CompletionUsage) -> Usage {
    Usage {
        input_tokens: Some(u64::from(u.prompt_tokens)),
        output_tokens: Some(u64::from(u.completion_tokens)),
        cache_read_input_tokens: u.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).map(u64::from),
        cache_creation_input_tokens: None,
        reasoning_output_tokens: u.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).map(u64::from),
    }
}

fn tool_call(id: Option<String>, name: String, arguments: &str) -> Part {
    let arguments = serde_json::from_str(arguments).unwrap_or_else(|_| Json::String(arguments.to_owned()));
    Part::ToolCall { id, name, arguments }
}

/// The `tool_calls` of an OpenAI message (request or response JSON) as parts.
fn tool_calls_of(message: &Json) -> impl Iterator<Item = Part> + '_ {
    message["tool_calls"].as_array().into_iter().flatten().map(|tc| {
        let f = &tc["function"];
        tool_call(
            tc["id"].as_str().map(str::to_owned),
            f["name"].as_str().unwrap_or_default().to_owned(),
            f["arguments"].as_str().unwrap_or_default(),
        )
    })
}

/// One request message (OpenAI JSON) in the conventions' shape.
fn input_message(m: &Json) -> Message {
    let role = m["role"].as_str().unwrap_or("user").to_owned();
    let mut parts = Vec::new();
    let text = match &m["content"] {
        Json::String(s) => Some(s.clone()),
        Json::Array(items) => {
            Some(items.iter().filter_map(|p| p["text"].as_str().or(p["refusal"].as_str())).collect::<String>())
        }
        _ => None,
    };
    if role == "tool" {
        let id = m["tool_call_id"].as_str().map(str::to_owned);
        parts.push(Part::ToolCallResponse { id, response: Json::String(text.unwrap_or_default()) });
    } else if let Some(t) = text {
        parts.push(Part::text(t));
    }
    parts.extend(tool_calls_of(m));
    Message { role, parts, name: m["name"].as_str().map(str::to_owned), finish_reason: None }
}

/// The error's class, named as the OpenAI SDKs (Python, JavaScript) name it, so Rust and Python
/// apps report the same `error.type`.
pub fn error_type(e: &OpenAIError) -> &'static str {
    match e {
        OpenAIError::ApiError(r) => match r.status_code.as_u16() {
            400 => "BadRequestError",
            401 => "AuthenticationError",
            403 => "PermissionDeniedError",
            404 => "NotFoundError",
            409 => "ConflictError",
            422 => "UnprocessableEntityError",
            429 => "RateLimitError",
            500..=599 => "InternalServerError",
            _ => "APIStatusError",
        },
        OpenAIError::Reqwest(r) if r.is_timeout() => "APITimeoutError",
        OpenAIError::Reqwest(_) => "APIConnectionError",
        OpenAIError::JSONDeserialize(..) => "APIResponseValidationError",
        _ => attr::ERROR_TYPE_OTHER,
    }
}

/// A serde enum's wire string (`stop`, `tool_calls`, `default`, …).
fn enum_str<T: serde::Serialize>(v: &T) -> Option<String> {
    serde_json::to_value(v).ok()?.as_str().map(str::to_owned)
}

/// async-openai keeps parameters as `f32`; widening directly would record 0.2 as 0.20000000298….
fn f32_to_f64(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(f64::from(v))
}

/// Host suffixes of OpenAI-compatible APIs and the `gen_ai.provider.name` each stands for.
const PROVIDER_HOSTS: &[(&str, &str)] = &[
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".inference.ai.azure.com", "azure.ai.inference"),
    (".groq.com", "groq"),
    (".deepseek.com", "deepseek"),
    (".mistral.ai", "mistral_ai"),
    (".x.ai", "x_ai"),
    (".perplexity.ai", "perplexity"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
];

/// `gen_ai.provider.name` from the base URL; OpenAI-compatible servers the URL does not reveal count
/// as `openai`, as the official instrumentations do.
pub fn provider_of(base_url: &str) -> &'static str {
    let host = server_of(base_url).map(|(h, _)| h).unwrap_or_default();
    let ends = |suffix: &str| host == suffix.trim_start_matches('.') || host.ends_with(suffix);
    PROVIDER_HOSTS.iter().find(|(suffix, _)| ends(suffix)).map_or("openai", |(_, provider)| provider)
}

/// `server.address` and `server.port` of a base URL (`https://h/v1` → `h`, 443).
pub fn server_of(base_url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = base_url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => match p.parse() {
            Ok(p) => (h, p),
            Err(_) => (authority, 0),
        },
        _ => (authority, 0),
    };
    let port = if port != 0 {
        port
    } else if scheme == "https" {
        443
    } else {
        80
    };
    (!host.is_empty()).then(|| (host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;

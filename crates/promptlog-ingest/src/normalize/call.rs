//! The convention-independent part of an `llm_calls` row: ids, times, status, identity, maps, and the
//! vocabulary every convention normaliser maps into (operations, providers, conventions).

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::attrs::{Attrs, hex_id};
use super::messages::Content;
use super::raw::{ResourceCtx, status_code_name};
use crate::process::redact::REDACTIONS_ATTRIBUTE;
use crate::process::redact::content::is_content_key;
use crate::rows::{AttrMap, LlmCallRow};

/// Which encoding an LLM call came from (the `Convention` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// OTel GenAI ≥ v1.37 with content in span attributes.
    OtelGenAiAttributes,
    /// OTel GenAI ≥ v1.37 with content in a `gen_ai.client.inference.operation.details` log record.
    OtelGenAiDetailsEvent,
    /// OTel GenAI v1.28–1.36 per-message log records (`gen_ai.user.message`, `gen_ai.choice`, ...).
    OtelGenAiMessageEvents,
    /// OTel GenAI v1.26–1.27 span events `gen_ai.content.prompt` / `gen_ai.content.completion`.
    OtelGenAiSpanEvents,
    /// OTel GenAI attributes with no content captured.
    OtelGenAi,
    /// OpenInference (Arize Phoenix).
    OpenInference,
    /// OpenLLMetry (Traceloop).
    OpenLlmetry,
    /// OpenLIT.
    OpenLit,
    /// Logfire / Pydantic AI.
    Logfire,
    /// Vercel AI SDK ≤ v6 `ai.*` spans.
    VercelAi,
    /// Langfuse SDK `langfuse.*` attributes.
    Langfuse,
}

impl Convention {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Convention::OtelGenAiAttributes => "otel_genai_attributes",
            Convention::OtelGenAiDetailsEvent => "otel_genai_details_event",
            Convention::OtelGenAiMessageEvents => "otel_genai_message_events",
            Convention::OtelGenAiSpanEvents => "otel_genai_span_events",
            Convention::OtelGenAi => "otel_genai",
            Convention::OpenInference => "openinference",
            Convention::OpenLlmetry => "openllmetry",
            Convention::OpenLit => "openlit",
            Convention::Logfire => "logfire",
            Convention::VercelAi => "vercel_ai",
            Convention::Langfuse => "langfuse",
        }
    }
}

/// An `llm_calls` row still being assembled: content is rendered into the row only once it is final,
/// because log records may add to it after the span arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedCall {
    /// Every column except the content ones.
    pub row: LlmCallRow,
    /// Prompt, completion, system instructions and tools gathered so far.
    pub content: Content,
    /// Whether content may still arrive in log records (an inference call seen without content).
    pub awaits_content: bool,
}

impl NormalizedCall {
    /// Renders the content columns and returns the finished row.
    pub fn finish(mut self) -> LlmCallRow {
        self.content.render_into(&mut self.row);
        self.row.redactions += self.content.redactions;
        self.row
    }

    /// Merges content from log records and records the convention it came from.
    pub fn add_log_content(&mut self, content: Content, convention: Convention) {
        if self.content.is_empty() && !content.is_empty() {
            self.row.convention = convention.as_str().to_owned();
        }
        self.content.merge_missing(content);
    }
}

/// Sets `field` from `value` unless an earlier (higher-precedence) source already set it.
pub fn fill_if_empty(field: &mut String, value: Option<String>) {
    if field.is_empty()
        && let Some(v) = value
    {
        *field = v;
    }
}

/// Sets a count from `value` unless an earlier (higher-precedence) source already set it.
pub fn fill_if_zero(field: &mut u64, value: Option<u64>) {
    if *field == 0
        && let Some(v) = value
    {
        *field = v;
    }
}

/// Sets `TotalTokens`, unless already set, from the convention's own total, else input + output.
pub fn fill_total(row: &mut LlmCallRow, total: Option<u64>) {
    if row.total_tokens == 0 {
        row.total_tokens = total.unwrap_or(row.input_tokens + row.output_tokens);
    }
}

/// Seconds from the span's start to its first event whose name satisfies `is_marker` (streaming
/// SDKs mark the first token or chunk with an event).
pub fn delay_to_event(span: &Span, is_marker: impl Fn(&str) -> bool) -> Option<f64> {
    let event = span.events.iter().find(|e| is_marker(&e.name))?;
    let delta = event.time_unix_nano.checked_sub(span.start_time_unix_nano)?;
    Some(delta as f64 / 1e9)
}

/// Operations whose spans wrap other calls and repeat their usage (summed only via leaf calls).
pub fn is_rollup(operation: &str) -> bool {
    matches!(operation, "invoke_agent" | "invoke_workflow" | "agent_step" | "create_agent")
}

/// Operations that produce prompt/completion content (others never wait for log records).
pub fn is_inference(operation: &str) -> bool {
    matches!(operation, "chat" | "text_completion" | "generate_content" | "completion")
}

/// Maps the many spellings of a provider to the current `gen_ai.provider.name` registry value.
pub fn normalize_provider(raw: &str) -> String {
    let lower = raw.trim().to_ascii_lowercase();
    let mapped = match lower.as_str() {
        "az.ai.openai" | "azure" | "azure_openai" | "azure.openai" | "azureopenai" => "azure.ai.openai",
        "az.ai.inference" | "azure_ai_inference" => "azure.ai.inference",
        "xai" | "x.ai" => "x_ai",
        "vertex_ai" | "vertexai" | "google_vertex" | "vertex" => "gcp.vertex_ai",
        "gemini" | "google" | "google_genai" => "gcp.gemini",
        "mistralai" | "mistral" => "mistral_ai",
        "aws" | "amazon" | "bedrock" | "aws_bedrock" => "aws.bedrock",
        "watsonx" | "ibm" | "ibm.watson.ai" => "ibm.watsonx.ai",
        _ => return lower,
    };
    mapped.to_owned()
}

/// Builds the common columns of a call from a validated span.
pub fn base_row(
    span: &Span,
    res: &ResourceCtx,
    scope: Option<&InstrumentationScope>,
    span_attributes: &AttrMap,
) -> LlmCallRow {
    let a = Attrs(&span.attributes);
    let mut row = LlmCallRow {
        timestamp: span.start_time_unix_nano as i64,
        duration: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano),
        trace_id: hex_id(&span.trace_id),
        span_id: hex_id(&span.span_id),
        parent_span_id: hex_id(&span.parent_span_id),
        span_name: span.name.clone(),
        service_name: res.service_name.clone(),
        environment: res.environment.clone(),
        scope_name: scope.map(|s| s.name.clone()).unwrap_or_default(),
        status_code: status_code_name(span).to_owned(),
        error_message: span.status.as_ref().map(|s| s.message.clone()).unwrap_or_default(),
        // Content once per table: the prompt and completion attributes are in the content columns
        // (and, as sent, in otel_traces), so the call's copy of the span attributes leaves them out.
        span_attributes: span_attributes.iter().filter(|(k, _)| !is_content_key(k)).cloned().collect(),
        resource_attributes: res.attributes.clone(),
        ..LlmCallRow::default()
    };
    row.redactions = a.u64(REDACTIONS_ATTRIBUTE).unwrap_or(0);
    if row.environment.is_empty() {
        row.environment =
            a.str("deployment.environment.name").or_else(|| a.str("deployment.environment")).unwrap_or_default();
    }
    if let Some(error_type) = a.str("error.type") {
        row.error_type = error_type;
        // The conventions require status Error alongside error.type; some SDKs set only the attribute.
        row.status_code = "Error".to_owned();
    }
    if row.status_code == "Error" {
        let (kind, message) = exception(span);
        if row.error_message.is_empty() {
            row.error_message = message.or_else(|| kind.clone()).unwrap_or_default();
        }
        // Some SDKs (Vercel AI, OpenInference, Logfire) record the error class only on the event.
        if row.error_type.is_empty() {
            row.error_type = kind.unwrap_or_default();
        }
    }
    row
}

/// `exception.type` and `exception.message` of the span's last `exception` event.
fn exception(span: &Span) -> (Option<String>, Option<String>) {
    match span.events.iter().rev().find(|e| e.name == "exception") {
        Some(e) => {
            let a = Attrs(&e.attributes);
            (a.str("exception.type"), a.str("exception.message"))
        }
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_aliases_map_to_registry_values() {
        let cases = [
            ("openai", "openai"),
            ("OpenAI", "openai"),
            ("az.ai.openai", "azure.ai.openai"),
            ("Azure", "azure.ai.openai"),
            ("az.ai.inference", "azure.ai.inference"),
            ("xai", "x_ai"),
            ("vertex_ai", "gcp.vertex_ai"),
            ("gemini", "gcp.gemini"),
            ("MistralAI", "mistral_ai"),
            ("AWS", "aws.bedrock"),
            ("Anthropic", "anthropic"),
            ("gcp.vertex_ai", "gcp.vertex_ai"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_provider(raw), want, "{raw}");
        }
    }
}

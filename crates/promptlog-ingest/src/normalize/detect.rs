//! Which convention a span is in, from what it carries. One place, so precedence is explicit:
//! the most specific vendor marker wins; plain official GenAI attributes come last.

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;

use super::attrs::Attrs;
use super::call::Convention;
use super::{openinference, otel_genai, vercel};

/// The convention of an LLM-operation span, or `None` when the span is not one.
pub fn family(a: Attrs<'_>, scope: Option<&InstrumentationScope>) -> Option<Convention> {
    let scope_name = scope.map_or("", |s| s.name.as_str());
    let genai = otel_genai::is_genai_span(a);
    if let Some(kind) = a.str_ref("openinference.span.kind") {
        // CHAIN and other glue kinds are not calls, unless they also carry the official attributes.
        return (openinference::operation(kind).is_some() || genai).then_some(Convention::OpenInference);
    }
    if a.str_ref("ai.operationId").and_then(vercel::operation).is_some() {
        return Some(Convention::VercelAi);
    }
    if a.get("logfire.span_type").is_some() || a.get("request_data").is_some() || scope_name.starts_with("pydantic-ai")
    {
        return genai.then_some(Convention::Logfire);
    }
    if scope_name.starts_with("openlit") || a.str_ref("telemetry.sdk.name") == Some("openlit") {
        return genai.then_some(Convention::OpenLit);
    }
    let traceloop = a.get("llm.request.type").is_some()
        || scope_name.starts_with("opentelemetry.instrumentation.openai.v1")
        || scope_name.contains("traceloop")
        || a.0.iter().any(|kv| kv.key.starts_with("traceloop.") || kv.key.starts_with("gen_ai.prompt.0."));
    if traceloop && (genai || a.get("llm.request.type").is_some()) {
        return Some(Convention::OpenLlmetry);
    }
    if a.0.iter().any(|kv| kv.key.starts_with("langfuse.observation.")) {
        return Some(Convention::Langfuse);
    }
    genai.then_some(Convention::OtelGenAi)
}

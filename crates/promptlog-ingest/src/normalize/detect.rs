//! Which convention a span is in, from what it carries. One place, so precedence is explicit:
//! the most specific vendor marker wins; plain official GenAI attributes come last.

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;

use super::attrs::Attrs;
use super::call::Convention;
use super::{openinference, openllmetry, otel_genai, vercel};

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
        || openllmetry::SCOPES.contains(&scope_name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_otlp::kv;

    #[test]
    fn scope_and_markers_pick_the_convention() {
        let genai = || vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.provider.name", "anthropic")];
        let cases: &[(&str, Option<Convention>)] = &[
            // OpenLLMetry's Anthropic package: official attributes only, told apart by its scope.
            ("opentelemetry.instrumentation.anthropic", Some(Convention::OpenLlmetry)),
            // The official instrumentation and the SDK's own tracing are plain OTel GenAI.
            ("opentelemetry.instrumentation.genai.anthropic", Some(Convention::OtelGenAi)),
            ("com.anthropic.sdk.python", Some(Convention::OtelGenAi)),
            ("opentelemetry.instrumentation.google_genai", Some(Convention::OtelGenAi)),
        ];
        for (scope_name, want) in cases {
            let scope = InstrumentationScope { name: (*scope_name).to_owned(), ..InstrumentationScope::default() };
            let attrs = genai();
            assert_eq!(family(Attrs(&attrs), Some(&scope)), *want, "{scope_name}");
        }
    }
}

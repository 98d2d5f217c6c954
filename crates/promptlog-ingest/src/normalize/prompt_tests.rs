//! Prompt identity from each convention, through the whole normaliser (detection included).

use opentelemetry_proto::tonic::common::v1::KeyValue;
use promptlog_otlp::{kv, kv_i64, resource, span, traces_request};

use crate::normalize::{Limits, normalize};
use crate::request::Request;
use crate::rows::LlmCallRow;

fn row_of(attrs: Vec<KeyValue>) -> LlmCallRow {
    let req = traces_request(resource("svc", "prod"), vec![span("chat m", 1_700_000_000_000_000_000, 1500, attrs)]);
    let (mut out, _) = normalize(&Request::Traces(req), Limits { max_attribute_value_bytes: 1 << 20 }, 0);
    assert_eq!(out.calls.len(), 1, "expected one LLM call");
    out.calls.remove(0).finish()
}

/// Recorded: the attributes openinference-instrumentation-openai 0.1.66 (openinference-instrumentation
/// 0.1.72) set on a chat span inside `using_prompt_template(template=…, variables=…, version="v1.0")`
/// (tests/clients/record_openinference_prompt.py).
const RECORDED_OPENINFERENCE: &str = r#"{"llm.prompt_template.template": "Describe the weather in {city} on {date}", "llm.prompt_template.variables": "{\"city\": \"Johannesburg\", \"date\": \"July 11\"}", "llm.prompt_template.version": "v1.0", "openinference.span.kind": "LLM"}"#;

#[test]
fn recorded_openinference_prompt_template() {
    let recorded: serde_json::Map<String, serde_json::Value> = serde_json::from_str(RECORDED_OPENINFERENCE).unwrap();
    let attrs = recorded.iter().map(|(k, v)| kv(k, v.as_str().unwrap())).collect();
    let row = row_of(attrs);
    assert_eq!((row.prompt_name.as_str(), row.prompt_version.as_str()), ("", "v1.0"));
    assert_eq!(row.prompt_template, "Describe the weather in {city} on {date}");
    let vars = [("city", "Johannesburg"), ("date", "July 11")].map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(row.prompt_variables, vars.to_vec());
}

type Want = (&'static str, &'static str, &'static str, &'static [(&'static str, &'static str)]);

#[test]
fn prompt_identity_from_every_convention() {
    let chat = || vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "gpt-4o")];
    let with = |extra: Vec<KeyValue>| chat().into_iter().chain(extra).collect::<Vec<_>>();
    let cases: Vec<(&str, Vec<KeyValue>, Want)> = vec![
        (
            "openinference using_prompt_template",
            vec![
                kv("openinference.span.kind", "LLM"),
                kv("llm.model_name", "gpt-4o"),
                kv("llm.prompt_template.template", "Describe the weather in {city} on {date}"),
                kv("llm.prompt_template.version", "v1.0"),
                kv("llm.prompt_template.variables", r#"{"city": "Johannesburg", "date": "July 11", "days": 3}"#),
            ],
            (
                "",
                "v1.0",
                "Describe the weather in {city} on {date}",
                &[("city", "Johannesburg"), ("date", "July 11"), ("days", "3")],
            ),
        ),
        (
            "openinference vendor prompt id",
            vec![
                kv("openinference.span.kind", "LLM"),
                kv("prompt.vendor", "phoenix"),
                kv("prompt.id", "weather-prompt"),
                kv("llm.prompt_template.version", "3"),
            ],
            ("weather-prompt", "3", "", &[]),
        ),
        (
            "langfuse linked prompt (int version)",
            with(vec![
                kv("langfuse.observation.type", "generation"),
                kv("langfuse.observation.prompt.name", "support-answer"),
                kv_i64("langfuse.observation.prompt.version", 7),
            ]),
            ("support-answer", "7", "", &[]),
        ),
        (
            "traceloop managed prompt, flattened variables",
            with(vec![
                kv("llm.request.type", "chat"),
                kv("traceloop.prompt.managed", "true"),
                kv("traceloop.prompt.key", "joke_generator"),
                kv_i64("traceloop.prompt.version", 2),
                kv("traceloop.prompt.version_name", "funnier"),
                kv("traceloop.prompt.template", "Tell me a joke about {{ topic }}"),
                kv("traceloop.prompt.template_variables.topic", "OpenTelemetry"),
                kv_i64("traceloop.prompt.template_variables.n", 2),
            ]),
            ("joke_generator", "2", "Tell me a joke about {{ topic }}", &[("topic", "OpenTelemetry"), ("n", "2")]),
        ),
        (
            "traceloop version name only, JSON variables",
            with(vec![
                kv("llm.request.type", "chat"),
                kv("traceloop.prompt.key", "joke_generator"),
                kv("traceloop.prompt.version_name", "funnier"),
                kv("traceloop.prompt.template_variables", r#"{"topic": "bees"}"#),
            ]),
            ("joke_generator", "funnier", "", &[("topic", "bees")]),
        ),
        ("otel genai registry name", with(vec![kv("gen_ai.prompt.name", "triage")]), ("triage", "", "", &[])),
        (
            "langfuse wins over gen_ai.prompt.name",
            with(vec![kv("gen_ai.prompt.name", "otel-name"), kv("langfuse.observation.prompt.name", "lf-name")]),
            ("lf-name", "", "", &[]),
        ),
        ("no prompt attributes", chat(), ("", "", "", &[])),
        (
            "variables that are not an object",
            with(vec![kv("llm.prompt_template.variables", "[1, 2]")]),
            ("", "", "", &[]),
        ),
    ];
    for (name, attrs, (pname, version, template, vars)) in cases {
        let row = row_of(attrs);
        assert_eq!(row.prompt_name, pname, "{name}: PromptName");
        assert_eq!(row.prompt_version, version, "{name}: PromptVersion");
        assert_eq!(row.prompt_template, template, "{name}: PromptTemplate");
        let want: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert_eq!(row.prompt_variables, want, "{name}: PromptVariables");
    }
}

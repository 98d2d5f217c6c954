//! The read side against the chDB-backed ClickHouse, with calls sent through a real collector:
//! the query layer (`promptlog::explore`) directly, and the `promptlog calls / show / session /
//! tail / export` commands run as subprocesses of the built binary.

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use promptlog::explore::{CallFilter, Reader, Status};
use promptlog_otlp::{chat_attrs, kv, now_ns, resource, span, traces_request};

use crate::support::sdk::Enc;
use crate::support::stack::Stack;

/// One call to send.
#[derive(Clone)]
struct Call {
    service: &'static str,
    environment: &'static str,
    model: &'static str,
    user: &'static str,
    session: &'static str,
    error: bool,
    prompt: (&'static str, &'static str),
    question: String,
    answer: String,
    /// Seconds before now the call started.
    ago_s: u64,
}

impl Default for Call {
    fn default() -> Self {
        Call {
            service: "shop",
            environment: "prod",
            model: "gpt-4o",
            user: "alice",
            session: "",
            error: false,
            prompt: ("", ""),
            question: "Hello?".into(),
            answer: "Hi.".into(),
            ago_s: 60,
        }
    }
}

impl Call {
    fn span(&self) -> Span {
        let mut a = chat_attrs("openai", self.model, 10, 5);
        let input = serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": self.question}]}]);
        let output = serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": self.answer}], "finish_reason": "stop"}]);
        a.push(kv("gen_ai.input.messages", input.to_string()));
        a.push(kv("gen_ai.output.messages", output.to_string()));
        a.push(kv("gen_ai.system_instructions", r#"[{"type":"text","content":"Be brief."}]"#));
        a.push(kv("user.id", self.user));
        if !self.session.is_empty() {
            a.push(kv("session.id", self.session));
        }
        if !self.prompt.0.is_empty() {
            a.push(kv("langfuse.observation.prompt.name", self.prompt.0));
            a.push(kv("langfuse.observation.prompt.version", self.prompt.1));
        }
        let mut s = span(&format!("chat {}", self.model), now_ns() - self.ago_s * 1_000_000_000, 120, a);
        if self.error {
            s.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
                code: StatusCode::Error as i32,
                message: "rate limited".into(),
            });
        }
        s
    }
}

/// Sends `calls` (one request per service/environment) and waits until all are stored; returns
/// their span ids (hex) in order.
async fn send(stack: &Stack, calls: &[Call]) -> Vec<String> {
    let before = stack.count("llm_calls").await;
    let mut ids = Vec::new();
    for c in calls {
        let s = c.span();
        ids.push(const_hex::encode(&s.span_id));
        let body = Enc::Proto.encode(&traces_request(resource(c.service, c.environment), vec![s]));
        let (status, _, reply) = stack.post_otlp("/v1/traces", Enc::Proto.content_type(), body, false).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    }
    stack.wait_for_count("llm_calls", before + calls.len() as u64).await;
    ids
}

fn ids(page: &[promptlog::explore::CallSummary]) -> Vec<String> {
    page.iter().map(|c| c.span_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_layer_filters_pages_and_reads_calls_and_sessions() {
    let stack = Stack::start().await;
    let calls = vec![
        Call { session: "s-1", question: "Where is my order 50%_off?".into(), ago_s: 50, ..Default::default() },
        Call { session: "s-1", question: "And the invoice?".into(), ago_s: 40, ..Default::default() },
        Call {
            service: "support",
            environment: "staging",
            model: "claude-sonnet-4",
            user: "bob",
            ago_s: 30,
            ..Default::default()
        },
        Call {
            error: true,
            prompt: ("greeter", "3"),
            answer: "Quota exceeded".into(),
            ago_s: 20,
            ..Default::default()
        },
    ];
    let sent = send(&stack, &calls).await;
    let reader = Reader::new(&stack.config).unwrap();
    let list = |f: CallFilter| {
        let reader = reader.clone();
        async move { ids(&reader.calls(&f).await.unwrap().calls) }
    };
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(list(CallFilter::default()).await, newest_first);
    assert_eq!(list(CallFilter { service: Some("support".into()), ..Default::default() }).await, [sent[2].clone()]);
    assert_eq!(list(CallFilter { status: Some(Status::Error), ..Default::default() }).await, [sent[3].clone()]);
    assert_eq!(list(CallFilter { search: Some("50%_OFF".into()), ..Default::default() }).await, [sent[0].clone()]);
    assert_eq!(list(CallFilter { search: Some("50%_ON".into()), ..Default::default() }).await, Vec::<String>::new());

    let detail = reader.call(&sent[0], None).await.unwrap().expect("call 0");
    assert_eq!(detail.system_prompt, "Be brief.");
    assert_eq!(detail.input_messages[0].text, "Where is my order 50%_off?");
    let session = reader.session("s-1").await.unwrap().expect("session");
    assert_eq!(session.turns.len(), 2);
    assert_eq!(session.turns[1].user_text, "And the invoice?");
}

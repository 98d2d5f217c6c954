//! Helpers of the `explore_cli` suite: calls to send through the collector, and the `promptlog`
//! binary run as a subprocess on a config file pointing at the stack's database.

use std::path::{Path, PathBuf};
use std::process::Output;

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use promptlog_otlp::{chat_attrs, kv, now_ns, resource, span, traces_request};
use serde_json::Value;

use crate::support::sdk::{self, Enc};
use crate::support::stack::Stack;

/// One call to send.
#[derive(Clone)]
pub struct Call {
    pub service: &'static str,
    pub environment: &'static str,
    pub model: &'static str,
    pub user: &'static str,
    pub session: &'static str,
    pub error: bool,
    pub prompt: (&'static str, &'static str),
    pub question: String,
    pub answer: String,
    /// A tool call and its result before the answer.
    pub tool: bool,
    /// Seconds before now the call started.
    pub ago_s: u64,
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
            tool: false,
            ago_s: 60,
        }
    }
}

impl Call {
    pub fn span(&self) -> Span {
        let mut a = chat_attrs("openai", self.model, 10, 5);
        let mut input =
            vec![serde_json::json!({"role": "user", "parts": [{"type": "text", "content": self.question}]})];
        if self.tool {
            input.push(serde_json::json!({"role": "assistant", "parts": [{"type": "tool_call", "id": "call-1", "name": "weather", "arguments": {"city": "Paris"}}]}));
            input.push(serde_json::json!({"role": "tool", "parts": [{"type": "tool_call_response", "id": "call-1", "response": "18C and sunny"}]}));
        }
        let input = serde_json::Value::Array(input);
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

/// Sends `spans` of `service` in one OTLP/HTTP request (with `key` as bearer token, if any).
pub async fn post_spans(stack: &Stack, service: &str, environment: &str, spans: Vec<Span>, key: Option<&str>) {
    let body = Enc::Proto.encode(&traces_request(resource(service, environment), spans));
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", Enc::Proto.content_type())];
    if let Some(a) = &auth {
        headers.push(("authorization", a));
    }
    let reply = sdk::post(&stack.otlp_http_url(), "/v1/traces", &headers, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// Sends `calls` (one request each) and waits until all are stored; returns their span ids (hex)
/// in order.
pub async fn send(stack: &Stack, calls: &[Call]) -> Vec<String> {
    send_with_key(stack, calls, None).await
}

/// [`send`] with an API key.
pub async fn send_with_key(stack: &Stack, calls: &[Call], key: Option<&str>) -> Vec<String> {
    let before = stack.count("llm_calls").await;
    let mut ids = Vec::new();
    for c in calls {
        let s = c.span();
        ids.push(const_hex::encode(&s.span_id));
        post_spans(stack, c.service, c.environment, vec![s], key).await;
    }
    stack.wait_for_count("llm_calls", before + calls.len() as u64).await;
    ids
}

/// The `promptlog` binary with a config file (`clickhouse` of `stack`, plus `extra` YAML).
pub struct Cli {
    pub config: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Cli {
    /// A config file for `stack`'s database; `extra` is appended (top-level YAML sections).
    pub fn new(stack: &Stack, extra: &str) -> Cli {
        let ch = &stack.config.clickhouse;
        Cli::with_yaml(&format!("clickhouse:\n  url: {}\n  database: {}\n{extra}", ch.url, ch.database))
    }

    /// A config file of exactly `yaml`.
    pub fn with_yaml(yaml: &str) -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("promptlog.yaml");
        std::fs::write(&config, yaml).unwrap();
        Cli { config, dir }
    }

    /// The command, with a clean environment (only `PATH`) and `PROMPTLOG_CONFIG` set.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_promptlog"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PROMPTLOG_CONFIG", &self.config)
            .kill_on_drop(true);
        c
    }

    /// Runs `promptlog args...` to the end.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.expect("run promptlog")
    }

    /// Runs it, asserts success and returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.status.success(), "promptlog {args:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs it, asserts it exits with `code`, returns stderr.
    pub async fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "promptlog {args:?}: {stderr}");
        stderr
    }

    /// Span ids of `promptlog calls --format json args...`, in output order.
    pub async fn spans(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["calls", "--format", "json"];
        all.extend_from_slice(args);
        let page: Value = serde_json::from_str(&self.ok(&all).await).unwrap();
        page["calls"].as_array().unwrap().iter().map(|c| c["span_id"].as_str().unwrap().to_owned()).collect()
    }
}

/// Files in `dir` whose names contain `part`.
pub fn files_in(dir: &Path, part: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(part)))
        .collect()
}

/// A TCP proxy in front of ClickHouse that misbehaves: it stalls every answer, or cuts every
/// connection after `cut_after` bytes of answer (a server or network failing mid-export).
pub struct BadProxy {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl BadProxy {
    /// `cut_after: None`: forwards requests but never answers.
    pub async fn start(upstream: &str, cut_after: Option<usize>) -> BadProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream = upstream.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    });
                    let Some(limit) = cut_after else {
                        let _ = requests.await;
                        return;
                    };
                    let (mut sent, mut buf) = (0usize, vec![0u8; 4096]);
                    while sent < limit {
                        let Ok(n) = server_read.read(&mut buf).await else { break };
                        if n == 0 {
                            break;
                        }
                        let n = n.min(limit - sent);
                        if client_write.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n;
                    }
                    requests.abort();
                });
            }
        });
        BadProxy { url, task }
    }
}

impl Drop for BadProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! OTLP/HTTP: `POST /v1/traces|logs|metrics` in protobuf or JSON, optionally gzip-compressed, and
//! `GET /health`; the feedback API's `POST /v1/scores` and `DELETE /v1/scores/{id}` ([`scores`]). Bodies are capped before and after decompression; errors are `google.rpc.Status`
//! in the request's encoding, as the OTLP spec asks. `GET /metrics` is promptlog's own Prometheus
//! exposition ([`crate::selfstats`]). Connections are served by [`conn`], which bounds how long a
//! client may take to send a request.

pub mod conn;
mod scores;

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use futures::StreamExt;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use promptlog_ingest::{ExportRequest, Table};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::budget::Reservation;
use super::{RETRY_AFTER, ReceiveError, Receiver};
use crate::auth::{Identity, Refusal, Scope, presented_key};
use crate::runtime::blocking;
use crate::telemetry::Stats;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
struct AppState {
    receiver: Receiver,
    stats: Arc<Stats>,
}

/// Request body encodings OTLP/HTTP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the body of every OTLP/HTTP error response.
#[derive(Clone, PartialEq, Message, Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// Builds the router.
fn router(receiver: Receiver, stats: Arc<Stats>) -> Router {
    Router::new()
        .route("/v1/traces", post(export::<ExportTraceServiceRequest>))
        .route("/v1/logs", post(export::<ExportLogsServiceRequest>))
        .route("/v1/metrics", post(export::<ExportMetricsServiceRequest>))
        .route("/v1/scores", post(scores::submit))
        .route("/v1/scores/{id}", delete(scores::delete))
        .route("/health", get(health))
        .route("/metrics", get(prometheus))
        .with_state(AppState { receiver, stats })
}

/// Serves OTLP/HTTP on `listener` (over TLS when `tls` is set) until `shutdown` is cancelled, then
/// finishes in-flight requests.
pub(crate) async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    stats: Arc<Stats>,
    tls: Option<crate::tls::Acceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    conn::serve_with_tls(listener, router(receiver, stats), conn::Timeouts::default(), tls, shutdown).await
}

/// Prometheus scrape endpoint: the counters of [`Stats`] in text exposition format 0.0.4.
async fn prometheus(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, crate::selfstats::PROMETHEUS_CONTENT_TYPE)], crate::selfstats::render(&s.stats))
        .into_response()
}

/// Authenticates a request for `scope` before its body is read.
fn authenticate(s: &AppState, headers: &HeaderMap, scope: Scope) -> Result<Identity, Refusal> {
    s.receiver.auth.check(presented(headers), scope)
}

/// The API key an HTTP request presents (`Authorization: Bearer` or `x-api-key`); the explorer's
/// endpoints read it the same way.
pub(crate) fn presented(headers: &HeaderMap) -> Option<&str> {
    presented_key(
        headers.get(header::AUTHORIZATION).map(HeaderValue::as_bytes),
        headers.get(X_API_KEY).map(HeaderValue::as_bytes),
    )
}

/// The 401/403 of a refused request, in its encoding (protobuf when that is unknown). Its body is
/// read (bounded) and dropped unparsed first, so the answer reaches the client (see [`read_capped`]).
async fn refuse(refusal: Refusal, headers: &HeaderMap, body: Body) -> Response {
    drain(body).await;
    error_response(ReceiveError::Auth(refusal), request_encoding(headers).unwrap_or(Encoding::Protobuf))
}

/// The alternative to `Authorization: Bearer`.
const X_API_KEY: &str = "x-api-key";

/// Reads and drops at most [`DRAIN_MAX_BYTES`] of a refused request's body.
async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let mut drained = 0;
    while drained < DRAIN_MAX_BYTES {
        match stream.next().await {
            Some(Ok(chunk)) => drained += chunk.len(),
            _ => break,
        }
    }
}

/// The one HTTP export path, for every signal.
async fn export<R: ExportRequest>(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let identity = match authenticate(&s, &headers, Scope::Ingest) {
        Ok(identity) => identity,
        Err(refusal) => return refuse(refusal, &headers, body).await,
    };
    let encoding = match request_encoding(&headers) {
        Ok(e) => e,
        Err(e) => return error_response(e, Encoding::Protobuf),
    };
    let result = async {
        let (req, protobuf, _reservation) =
            decode::<R>(&headers, body, encoding, &s.receiver, R::SIGNAL.name()).await?;
        s.receiver.export(&identity, req, protobuf).await
    }
    .await;
    respond(result, encoding)
}

/// Health: 200 while the pipeline runs; `degraded` when ClickHouse is failing. `spool` tells how much
/// accepted data waits on disk for ClickHouse (bytes, records, oldest age, backlog); `auth` whether
/// API keys are required (`on`) or every request is project `default` (`off`). Needs no key, and
/// neither does `/metrics`: both tell nothing about any project's data.
async fn health(State(s): State<AppState>) -> Response {
    let up = s.stats.clickhouse_up();
    let tables: serde_json::Map<String, serde_json::Value> = Table::ALL
        .iter()
        .map(|t| (t.name().to_owned(), serde_json::to_value(s.stats.snapshot(*t)).unwrap_or_default()))
        .collect();
    let body = serde_json::json!({
        "status": if up { "ok" } else { "degraded" },
        "clickhouse": if up { "up" } else { "down" },
        "refused_busy": s.stats.refused_busy.load(std::sync::atomic::Ordering::Relaxed),
        // "off": no API key configured, every request is accepted as project "default".
        "auth": if s.receiver.auth.enabled() { "on" } else { "off" },
        "api_keys": s.receiver.auth.key_count(),
        "spool": s.stats.spool.snapshot(),
        "tables": tables,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn request_encoding(headers: &HeaderMap) -> Result<Encoding, ReceiveError> {
    let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ReceiveError::ContentType(raw.to_owned())),
    }
}

/// Reads, decompresses and decodes the body; the CPU-heavy part runs on a blocking thread. Also
/// returns the decompressed body when it is protobuf, so it can be spooled without encoding it again,
/// and the request's reservation against the memory budget, to hold until the request is answered.
async fn decode<T>(
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
    receiver: &Receiver,
    what: &'static str,
) -> Result<(T, Option<Vec<u8>>, Reservation), ReceiveError>
where
    T: Message + Default + DeserializeOwned + Send + 'static,
{
    read_then(headers, body, receiver, move |bytes, reservation| match encoding {
        Encoding::Protobuf => match T::decode(bytes.as_slice()) {
            Ok(message) => Ok((message, Some(bytes), reservation)),
            Err(e) => Err(ReceiveError::Decode { what, detail: e.to_string() }),
        },
        Encoding::Json => serde_json::from_slice(&bytes)
            .map(|message| (message, None, reservation))
            .map_err(|e| ReceiveError::Decode { what, detail: e.to_string() }),
    })
    .await
}

/// Reads the body (capped), then on one blocking thread decompresses it (capped), reserves its bytes
/// against the memory budget and hands both to `then`.
async fn read_then<R: Send + 'static>(
    headers: &HeaderMap,
    body: Body,
    receiver: &Receiver,
    then: impl FnOnce(Vec<u8>, Reservation) -> Result<R, ReceiveError> + Send + 'static,
) -> Result<R, ReceiveError> {
    let gzip = gzip_encoded(headers)?;
    let limit = receiver.max_request_bytes;
    let budget = receiver.budget.clone();
    let raw = read_capped(body, limit).await?;
    blocking(move || {
        let bytes = if gzip { gunzip_capped(&raw, limit)? } else { raw };
        let reservation = budget.try_reserve(bytes.len())?;
        then(bytes, reservation)
    })
    .await
}

/// Whether `Content-Encoding` says gzip (identity or none: false; anything else is refused).
fn gzip_encoded(headers: &HeaderMap) -> Result<bool, ReceiveError> {
    match headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("") | Some("identity") => Ok(false),
        Some(e) if e.eq_ignore_ascii_case("gzip") => Ok(true),
        Some(other) => Err(ReceiveError::ContentEncoding(other.to_owned())),
    }
}

/// Reads and decompresses a body under the same caps as [`decode`], without decoding it (for bodies
/// that are not OTLP messages), and reserves its bytes against the memory budget.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    receiver: &Receiver,
) -> Result<(Vec<u8>, Reservation), ReceiveError> {
    read_then(headers, body, receiver, |bytes, reservation| Ok((bytes, reservation))).await
}

/// After refusing an oversized body, at most this much more of it is read and discarded.
const DRAIN_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Collects the body, refusing once it passes `limit` bytes.
async fn read_capped(body: Body, limit: usize) -> Result<Vec<u8>, ReceiveError> {
    // Room for the whole body at once when its length is declared (and allowed): growing the
    // buffer chunk by chunk copied it again at every doubling, into fresh pages.
    let declared = axum::body::HttpBody::size_hint(&body).exact().and_then(|n| usize::try_from(n).ok());
    let mut out = Vec::with_capacity(declared.filter(|&n| n <= limit).unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ReceiveError::Decode { what: "request body", detail: e.to_string() })?;
        if out.len() + chunk.len() > limit {
            // Answering before the client has finished sending makes the connection reset, and the
            // client then sees a network error, which OTLP exporters retry forever. Reading (and
            // dropping) a bounded remainder lets the 413 reach it; memory use stays at one chunk.
            drop(out);
            let mut drained = chunk.len();
            while drained < DRAIN_MAX_BYTES {
                match stream.next().await {
                    Some(Ok(more)) => drained += more.len(),
                    _ => break,
                }
            }
            return Err(ReceiveError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Inflates gzip, refusing output beyond `limit` bytes (a gzip bomb stops at the cap).
fn gunzip_capped(data: &[u8], limit: usize) -> Result<Vec<u8>, ReceiveError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(data).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(|e| ReceiveError::Decode { what: "gzip body", detail: e.to_string() })?;
    if out.len() > limit {
        return Err(ReceiveError::TooLarge { limit });
    }
    Ok(out)
}

fn respond<R: Message + Serialize>(result: Result<R, ReceiveError>, encoding: Encoding) -> Response {
    match result {
        Ok(response) => encode(StatusCode::OK, &response, encoding),
        Err(e) => error_response(e, encoding),
    }
}

fn error_response(e: ReceiveError, encoding: Encoding) -> Response {
    let (status, code) = match &e {
        ReceiveError::Decode { .. } => (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument),
        ReceiveError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::ResourceExhausted),
        ReceiveError::ContentType(_) | ReceiveError::ContentEncoding(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, tonic::Code::InvalidArgument)
        }
        ReceiveError::Unavailable(_) | ReceiveError::Overloaded { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable)
        }
        ReceiveError::Auth(r) if r.is_forbidden() => (StatusCode::FORBIDDEN, tonic::Code::PermissionDenied),
        ReceiveError::Auth(_) => (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated),
    };
    let mut response = encode(status, &RpcStatus { code: code as i32, message: e.to_string() }, encoding);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER.as_secs()));
    }
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn encode<M: Message + Serialize>(status: StatusCode, message: &M, encoding: Encoding) -> Response {
    let (content_type, body) = match encoding {
        Encoding::Protobuf => ("application/x-protobuf", message.encode_to_vec()),
        Encoding::Json => ("application/json", serde_json::to_vec(message).unwrap_or_default()),
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

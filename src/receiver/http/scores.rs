//! `POST /v1/scores` and `DELETE /v1/scores/{id}`: the feedback API as JSON (or the protobuf
//! `SubmitScoresRequest`), authenticated with the `feedback` scope.
//!
//! The body is one score object or `{"scores": [...]}`. Field names are the proto's, in snake_case;
//! the target is flat: `trace_id` + `span_id` (a span), `trace_id` alone (a trace), `session_id` or
//! `response_id`, exactly one of them. Enums are strings (`"data_type": "boolean"`,
//! `"source": "end_user"`); `value` may also be `true` / `false`; the time is `time_unix_nano` or
//! `time` (RFC 3339). Each score is parsed and checked on its own: the response lists the accepted
//! ones with their ids and each rejected one with its reason (200, like OTLP `partial_success`;
//! 400 when none was accepted).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use promptlog_ingest::scores::proto::{Score, ScoreError, SpanTarget, SubmitScoresRequest, score::Target};
use promptlog_ingest::scores::{self, parse_data_type, parse_source};
use prost::Message;
use serde::{Deserialize, Serialize};

use super::{AppState, Encoding, ReceiveError, authenticate, error_response, read_body, refuse, request_encoding};
use crate::auth::Scope;

/// One score as JSON (see the module docs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreJson {
    #[serde(default)]
    id: String,
    trace_id: Option<String>,
    span_id: Option<String>,
    session_id: Option<String>,
    response_id: Option<String>,
    #[serde(default)]
    name: String,
    data_type: Option<String>,
    value: Option<ValueJson>,
    #[serde(default)]
    label: String,
    #[serde(default)]
    comment: String,
    source: Option<String>,
    #[serde(default)]
    author: String,
    time_unix_nano: Option<u64>,
    time: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
    #[serde(default)]
    environment: String,
}

/// A score value: a number, or a boolean (1 / 0).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ValueJson {
    Number(f64),
    Bool(bool),
}

impl ScoreJson {
    fn into_score(self) -> Result<Score, String> {
        let target = match (self.trace_id, self.span_id, self.session_id, self.response_id) {
            (Some(trace_id), Some(span_id), None, None) => Target::Span(SpanTarget { trace_id, span_id }),
            (None, Some(_), None, None) => return Err("span_id needs the trace_id of its trace".to_owned()),
            (Some(trace_id), None, None, None) => Target::TraceId(trace_id),
            (None, None, Some(session), None) => Target::SessionId(session),
            (None, None, None, Some(response)) => Target::ResponseId(response),
            (None, None, None, None) => {
                return Err("no target: set trace_id + span_id, trace_id, session_id or response_id".to_owned());
            }
            _ => {
                return Err("more than one target: set exactly one of trace_id + span_id, trace_id, session_id or \
                            response_id"
                    .to_owned());
            }
        };
        let time_unix_nano = match (self.time_unix_nano, self.time) {
            (Some(_), Some(_)) => return Err("set time_unix_nano or time, not both".to_owned()),
            (Some(ns), None) => ns,
            (None, Some(text)) => {
                let at = humantime::parse_rfc3339(&text).map_err(|e| format!("time {text:?} is not RFC 3339: {e}"))?;
                let ns =
                    at.duration_since(std::time::UNIX_EPOCH).map_err(|_| format!("time {text:?} is before 1970"))?;
                u64::try_from(ns.as_nanos()).map_err(|_| format!("time {text:?} is too far in the future"))?
            }
            (None, None) => 0,
        };
        let mut score = Score {
            id: self.id,
            target: Some(target),
            name: self.name,
            value: self.value.map(|v| match v {
                ValueJson::Number(n) => n,
                ValueJson::Bool(b) => f64::from(u8::from(b)),
            }),
            label: self.label,
            comment: self.comment,
            author: self.author,
            time_unix_nano,
            metadata: self.metadata,
            environment: self.environment,
            ..Score::default()
        };
        if let Some(t) = self.data_type {
            score.set_data_type(parse_data_type(&t)?);
        }
        if let Some(s) = self.source {
            score.set_source(parse_source(&s)?);
        }
        Ok(score)
    }
}

/// The JSON response (the proto's `SubmitScoresResponse`).
#[derive(Debug, Serialize)]
struct SubmitJson {
    accepted: Vec<AcceptedJson>,
    rejected_scores: i64,
    errors: Vec<ErrorJson>,
}

#[derive(Debug, Serialize)]
struct AcceptedJson {
    index: u32,
    id: String,
}

#[derive(Debug, Serialize)]
struct ErrorJson {
    index: u32,
    id: String,
    message: String,
}

/// A body's scores that parsed, by index, and the errors of those that did not.
type Parsed = (Vec<(u32, Score)>, Vec<ScoreError>);

/// Splits a JSON body into its scores, each parsed on its own (a bad field fails its score only).
fn parse_json(body: serde_json::Value) -> Result<Parsed, String> {
    let items = match body {
        serde_json::Value::Object(mut map) if map.contains_key("scores") => match map.remove("scores") {
            Some(serde_json::Value::Array(items)) if map.is_empty() => items,
            Some(serde_json::Value::Array(_)) => {
                return Err(format!("unexpected fields next to \"scores\": {:?}", map.keys().collect::<Vec<_>>()));
            }
            _ => return Err("\"scores\" must be an array of score objects".to_owned()),
        },
        object @ serde_json::Value::Object(_) => vec![object],
        _ => return Err("expected a score object or {\"scores\": [...]}".to_owned()),
    };
    let (mut ok, mut errors) = (Vec::new(), Vec::new());
    for (index, item) in items.into_iter().enumerate() {
        let id = item.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let name = item.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let parsed =
            serde_json::from_value::<ScoreJson>(item).map_err(|e| e.to_string()).and_then(ScoreJson::into_score);
        match parsed {
            Ok(score) => ok.push((index as u32, score)),
            Err(why) => {
                let named = Score { name, ..Score::default() };
                errors.push(ScoreError { index: index as u32, id, message: scores::describe(index, &named, &why) });
            }
        }
    }
    Ok((ok, errors))
}

/// `POST /v1/scores`.
pub(super) async fn submit(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let identity = match authenticate(&s, &headers, Scope::Feedback) {
        Ok(identity) => identity,
        Err(refusal) => return refuse(refusal, &headers, body).await,
    };
    let encoding = match request_encoding(&headers) {
        Ok(e) => e,
        Err(e) => return error_response(e, Encoding::Json),
    };
    let result = async {
        // Held until the batch is spooled: the body's bytes count against the memory budget.
        let (bytes, _reservation) = read_body(&headers, body, &s.receiver).await?;
        let (scores, errors) = match encoding {
            Encoding::Json => {
                let value = serde_json::from_slice(&bytes)
                    .map_err(|e| ReceiveError::Decode { what: "scores JSON", detail: e.to_string() })?;
                parse_json(value).map_err(|detail| ReceiveError::Decode { what: "scores JSON", detail })?
            }
            Encoding::Protobuf => {
                let request = SubmitScoresRequest::decode(bytes.as_slice())
                    .map_err(|e| ReceiveError::Decode { what: "SubmitScoresRequest", detail: e.to_string() })?;
                (request.scores.into_iter().enumerate().map(|(i, s)| (i as u32, s)).collect(), Vec::new())
            }
        };
        s.receiver.submit_scores(&identity, scores, errors).await
    }
    .await;
    match result {
        Ok(response) => {
            let status = if response.accepted.is_empty() && !response.errors.is_empty() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            match encoding {
                Encoding::Protobuf => {
                    (status, [(header::CONTENT_TYPE, "application/x-protobuf")], response.encode_to_vec())
                        .into_response()
                }
                Encoding::Json => {
                    let body = SubmitJson {
                        accepted: response
                            .accepted
                            .into_iter()
                            .map(|a| AcceptedJson { index: a.index, id: a.id })
                            .collect(),
                        rejected_scores: response.rejected_scores,
                        errors: response
                            .errors
                            .into_iter()
                            .map(|e| ErrorJson { index: e.index, id: e.id, message: e.message })
                            .collect(),
                    };
                    (status, axum::Json(body)).into_response()
                }
            }
        }
        Err(e) => error_response(e, encoding),
    }
}

/// `DELETE /v1/scores/{id}`.
pub(super) async fn delete(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let identity = match authenticate(&s, &headers, Scope::Feedback) {
        Ok(identity) => identity,
        Err(refusal) => return refuse(refusal, &headers, Body::empty()).await,
    };
    match s.receiver.delete_score(&identity, id.clone()).await {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({ "deleted": id }))).into_response(),
        Err(e) => error_response(e, Encoding::Json),
    }
}

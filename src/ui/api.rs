//! The explorer's JSON endpoints. Reads go through [`crate::explore`] (the one query layer, shared
//! with the `promptlog calls / show / session` commands), scoped to the key's project; thumbs go
//! through the feedback API's submit path ([`Receiver::submit_scores`]).
//!
//! - `GET /api/info`: whether keys are needed (no key needed for this one).
//! - `GET /api/calls?…filters…&limit&offset`, `GET /api/calls/{trace_id}/{span_id}`,
//!   `GET /api/sessions/{id}`: `read` scope.
//! - `POST /api/calls/{trace_id}/{span_id}/feedback` `{"value": true|false, "comment": "…"}`:
//!   `feedback` scope; stored as a boolean `user_rating` score from `end_user` on that span.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use promptlog_ingest::scores::proto::{Score, ScoreDataType, ScoreSource, SpanTarget, score::Target};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::UiState;
use crate::auth::{Identity, Refusal, Scope};
use crate::explore::{CallFilter, Cursor, ExploreError, Reader, Status};
use crate::receiver::ReceiveError;

/// The score name of a thumbs up / down (the name the README's feedback examples use).
pub(super) const THUMBS_SCORE_NAME: &str = "user_rating";
/// Longest comment accepted with a thumbs up / down.
const MAX_COMMENT_BYTES: usize = 4000;
/// Largest JSON body of a feedback request.
const MAX_FEEDBACK_BODY_BYTES: usize = 16 * 1024;

/// Why a JSON request failed; the body is `{"error": "…"}`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ApiError {
    /// No usable key (401) or one without the scope (403).
    #[error(transparent)]
    Auth(#[from] Refusal),
    /// A bad parameter or body (400).
    #[error("{0}")]
    BadRequest(String),
    /// The read failed: a bad filter (400), another project (403), nothing found (404), ClickHouse (502).
    #[error(transparent)]
    Read(#[from] ExploreError),
    /// The feedback could not be stored (503, retry) or was refused.
    #[error(transparent)]
    Receive(#[from] ReceiveError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Auth(r) if r.is_forbidden() => StatusCode::FORBIDDEN,
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Read(ExploreError::Refused(r)) if r.is_forbidden() => StatusCode::FORBIDDEN,
            ApiError::Read(ExploreError::Refused(_)) => StatusCode::UNAUTHORIZED,
            ApiError::Read(ExploreError::ProjectNotAllowed { .. }) => StatusCode::FORBIDDEN,
            ApiError::Read(ExploreError::BadFilter { .. } | ExploreError::BadCursor(_)) => StatusCode::BAD_REQUEST,
            ApiError::Read(ExploreError::CallNotFound(_) | ExploreError::SessionNotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Read(ExploreError::Query(_) | ExploreError::Decode(_)) => StatusCode::BAD_GATEWAY,
            ApiError::Read(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Receive(ReceiveError::Auth(r)) if r.is_forbidden() => StatusCode::FORBIDDEN,
            ApiError::Receive(ReceiveError::Auth(_)) => StatusCode::UNAUTHORIZED,
            ApiError::Receive(ReceiveError::Unavailable(_) | ReceiveError::Overloaded { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Receive(_) => StatusCode::BAD_REQUEST,
        };
        let mut response = (status, axum::Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The JSON routes.
pub(super) fn routes(state: UiState) -> Router {
    Router::new()
        .route("/api/info", get(info))
        .route("/api/calls", get(calls))
        .route("/api/calls/{trace_id}/{span_id}", get(call))
        .route("/api/sessions/{id}", get(session))
        .route("/api/calls/{trace_id}/{span_id}/feedback", post(feedback))
        .with_state(state)
}

/// The reader for this request: restricted to the project of its `read`-scope key (with auth off,
/// project `default`, as at ingest).
fn reader(state: &UiState, headers: &HeaderMap) -> Result<Reader, ApiError> {
    Ok(state.reader.for_key(&state.auth, crate::receiver::http::presented(headers))?)
}

/// The call list's query string (the page's filter form). Empty values mean "no filter".
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ListQuery {
    /// A duration back from now (`24h`, `7d`) or an RFC 3339 time.
    since: String,
    /// Same forms; calls before it.
    until: String,
    project: String,
    service: String,
    environment: String,
    model: String,
    user: String,
    session: String,
    status: String,
    prompt_name: String,
    prompt_version: String,
    /// Text searched in the prompt and the completion.
    q: String,
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: String,
}

/// `24h` (that long before `now_ns`) or an RFC 3339 time, as ns since the epoch (the commands'
/// `--since` / `--until` parser).
fn parse_time(field: &'static str, text: &str, now_ns: i64) -> Result<Option<i64>, ApiError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    crate::pricing::reprice::parse_time(text, now_ns)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

impl ListQuery {
    fn filter(self, now_ns: i64) -> Result<CallFilter, ApiError> {
        let some = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(CallFilter {
            since_ns: parse_time("since", &self.since, now_ns)?,
            until_ns: parse_time("until", &self.until, now_ns)?,
            project: some(self.project),
            service: some(self.service),
            environment: some(self.environment),
            model: some(self.model),
            user: some(self.user),
            session: some(self.session),
            status: some(self.status).map(|s| Status::parse(&s)).transpose()?,
            prompt_name: some(self.prompt_name),
            prompt_version: some(self.prompt_version),
            search: some(self.q),
            limit: self.limit,
            cursor: some(self.cursor).map(|c| Cursor::parse(&c)).transpose()?,
            ..CallFilter::default()
        })
    }
}

/// `GET /api/calls`: a page of the call list (`calls`, `next_cursor`).
async fn calls(
    State(state): State<UiState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let page = reader.calls(&query.filter(crate::runtime::now_ns())?).await?;
    Ok(axum::Json(page).into_response())
}

/// `GET /api/calls/{trace_id}/{span_id}`: the whole call (`call`) and its Grafana trace link.
async fn call(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path((trace_id, span_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers)?;
    let call = reader.call(&span_id, Some(&trace_id)).await?.ok_or(ExploreError::CallNotFound(span_id))?;
    let grafana_trace_url = super::grafana::trace_url(&state.grafana_url, &call.summary.trace_id);
    Ok(axum::Json(serde_json::json!({ "call": call, "grafana_trace_url": grafana_trace_url })).into_response())
}

/// `GET /api/sessions/{id}`: the session turn by turn, with totals and scores.
async fn session(
    State(state): State<UiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let reader = reader(&state, &headers)?;
    let session = reader.session(&id).await?.ok_or(ExploreError::SessionNotFound(id))?;
    Ok(axum::Json(session).into_response())
}

/// Authenticates the request's key for `scope`.
fn authorize(state: &UiState, headers: &HeaderMap, scope: Scope) -> Result<Identity, ApiError> {
    Ok(state.auth.check(crate::receiver::http::presented(headers), scope)?)
}

/// `GET /api/info`.
async fn info(State(state): State<UiState>) -> Response {
    axum::Json(serde_json::json!({
        "auth": state.auth.enabled(),
        "grafana": !state.grafana_url.is_empty(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// A thumbs up / down.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackJson {
    /// Thumbs up (`true`) or down.
    value: bool,
    /// Why (optional).
    #[serde(default)]
    comment: String,
}

/// `POST /api/calls/{trace_id}/{span_id}/feedback`.
async fn feedback(
    State(state): State<UiState>,
    Path((trace_id, span_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let identity = authorize(&state, &headers, Scope::Feedback)?;
    // A cross-site form cannot send this type, so a page elsewhere cannot rate calls (auth off).
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::BadRequest("send the feedback as application/json".into()));
    }
    if body.len() > MAX_FEEDBACK_BODY_BYTES {
        return Err(ApiError::BadRequest(format!("feedback body is larger than {MAX_FEEDBACK_BODY_BYTES} bytes")));
    }
    let FeedbackJson { value, comment } = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("feedback must be {{\"value\": true|false, \"comment\": \"…\"}}: {e}"))
    })?;
    if comment.len() > MAX_COMMENT_BYTES {
        return Err(ApiError::BadRequest(format!("comment is longer than {MAX_COMMENT_BYTES} bytes")));
    }
    let score = thumbs_score(&identity, trace_id, span_id, value, comment);
    let reply = state.receiver.submit_scores(&identity, vec![(0, score)], Vec::new()).await?;
    match (reply.accepted.first(), reply.errors.first()) {
        (Some(accepted), _) => Ok(axum::Json(serde_json::json!({ "id": accepted.id })).into_response()),
        (None, Some(error)) => Err(ApiError::BadRequest(error.message.clone())),
        (None, None) => Err(ApiError::BadRequest("the score was not accepted".into())),
    }
}

/// The score of a thumbs up / down on a span. Its id is derived from the span and the key, so
/// rating the same call again with the same key replaces the earlier rating instead of adding one.
fn thumbs_score(identity: &Identity, trace_id: String, span_id: String, up: bool, comment: String) -> Score {
    let mut hash = Sha256::new();
    for part in [identity.project.as_str(), identity.key_id.as_str(), trace_id.as_str(), span_id.as_str()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let id = format!("ui-{}", const_hex::encode(&hash.finalize()[..16]));
    let mut score = Score {
        id,
        target: Some(Target::Span(SpanTarget { trace_id, span_id })),
        name: THUMBS_SCORE_NAME.to_owned(),
        value: Some(if up { 1.0 } else { 0.0 }),
        comment,
        author: identity.key_id.clone(),
        metadata: [("ui".to_owned(), "explorer".to_owned())].into(),
        ..Score::default()
    };
    score.set_data_type(ScoreDataType::Boolean);
    score.set_source(ScoreSource::EndUser);
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbs_score_is_a_valid_boolean_end_user_rating_replaced_per_call_and_key() {
        let who = Identity { project: "p".into(), key_id: "k1".into() };
        let (trace, span) = ("0af7651916cd43dd8448eb211c80319c".to_owned(), "b7ad6b7169203331".to_owned());
        let down = thumbs_score(&who, trace.clone(), span.clone(), false, "wrong".into());
        promptlog_ingest::scores::validate(&down).unwrap();
        assert_eq!(
            (down.value, down.data_type(), down.source()),
            (Some(0.0), ScoreDataType::Boolean, ScoreSource::EndUser)
        );
        let up = thumbs_score(&who, trace.clone(), span.clone(), true, String::new());
        assert_eq!(up.id, down.id, "the same key rating the same call again replaces its rating");
        let other = Identity { key_id: "k2".into(), ..who };
        assert_ne!(thumbs_score(&other, trace, span, true, String::new()).id, down.id);
        assert!(
            promptlog_ingest::scores::validate(&thumbs_score(&other, "zz".into(), "1".into(), true, String::new()))
                .is_err()
        );
    }
}

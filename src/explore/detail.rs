//! One call with everything stored about it and its scores, and a session turn by turn.

use std::collections::BTreeMap;

use clickhouse::Row;
use promptlog_ingest::Table;
use serde::Deserialize;

use super::ExploreError;
use super::filter::Conditions;
use super::model::{
    CallDetail, CallSummary, Cost, Identity, Message, Score, Session, SessionTotals, SessionTurn, Usage, rfc3339,
    system_text,
};
use super::reader::{Reader, SummaryRow, summary_columns};

/// Most turns a session view reads.
pub const MAX_SESSION_TURNS: u32 = 10_000;

/// The detail columns after the summary ones, in [`DetailRow`] order.
const DETAIL_COLUMNS: &str = "ParentSpanId AS parent_span_id, toString(SpanName) AS span_name, \
    toString(Provider) AS provider, toString(RequestModel) AS request_model, toString(ResponseModel) AS response_model, \
    SystemInstructions AS system_instructions, InputMessages AS input_messages, OutputMessages AS output_messages, \
    ToolDefinitions AS tool_definitions, InputText AS input_text, OutputText AS output_text, \
    toJSONString(RequestParams) AS parameters, CacheReadInputTokens AS cache_read, \
    CacheWriteInputTokens AS cache_write, ReasoningOutputTokens AS reasoning, InputCostUsd AS input_cost_usd, \
    OutputCostUsd AS output_cost_usd, toString(CostSource) AS cost_source, toString(PriceModel) AS price_model, \
    TimeToFirstToken AS ttft, CAST(FinishReasons, 'Array(String)') AS finish_reasons, ResponseId AS response_id, \
    toString(ErrorType) AS error_type, ErrorMessage AS error_message, Tags AS tags, toJSONString(Metadata) AS metadata, \
    toString(PromptName) AS prompt_name, toString(PromptVersion) AS prompt_version, \
    PromptTemplate AS prompt_template, toJSONString(PromptVariables) AS prompt_variables, \
    toString(Convention) AS convention, Redactions AS redactions, DuplicateOf AS duplicate_of, \
    toJSONString(SpanAttributes) AS span_attributes, toJSONString(ResourceAttributes) AS resource_attributes";

/// Read as JSON (`fetch_json`): the typed RowBinary path cannot nest the summary row.
#[derive(Debug, Deserialize)]
struct DetailRow {
    #[serde(flatten)]
    summary: SummaryRow,
    parent_span_id: String,
    span_name: String,
    provider: String,
    request_model: String,
    response_model: String,
    system_instructions: String,
    input_messages: String,
    output_messages: String,
    tool_definitions: String,
    input_text: String,
    output_text: String,
    parameters: String,
    cache_read: u64,
    cache_write: u64,
    reasoning: u64,
    input_cost_usd: Option<f64>,
    output_cost_usd: Option<f64>,
    cost_source: String,
    price_model: String,
    ttft: Option<f64>,
    finish_reasons: Vec<String>,
    response_id: String,
    error_type: String,
    error_message: String,
    tags: Vec<String>,
    metadata: String,
    prompt_name: String,
    prompt_version: String,
    prompt_template: String,
    prompt_variables: String,
    convention: String,
    redactions: u64,
    duplicate_of: String,
    span_attributes: String,
    resource_attributes: String,
}

/// Runs `query` as JSONEachRow (64-bit integers as numbers) and parses each line.
async fn fetch_json<T: serde::de::DeserializeOwned>(query: clickhouse::query::Query) -> Result<Vec<T>, ExploreError> {
    let mut cursor = query.with_setting("output_format_json_quote_64bit_integers", "0").fetch_bytes("JSONEachRow")?;
    let body = cursor.collect().await?;
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).map_err(|e| ExploreError::Decode(e.to_string())))
        .collect()
}

/// A `toJSONString(Map(String, String))` value as a map (a broken one reads as empty).
fn map(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

impl DetailRow {
    fn into_detail(self) -> CallDetail {
        let summary = CallSummary::from(self.summary);
        let usage = Usage {
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
            total_tokens: summary.total_tokens,
            cache_read_input_tokens: self.cache_read,
            cache_write_input_tokens: self.cache_write,
            reasoning_output_tokens: self.reasoning,
        };
        let cost = Cost {
            total_usd: summary.cost_usd,
            input_usd: self.input_cost_usd,
            output_usd: self.output_cost_usd,
            source: self.cost_source,
            price_model: self.price_model,
        };
        let identity = Identity {
            project: summary.project.clone(),
            service: summary.service.clone(),
            environment: summary.environment.clone(),
            session: summary.session.clone(),
            user: summary.user.clone(),
            tags: self.tags,
            metadata: map(&self.metadata),
        };
        CallDetail {
            summary,
            parent_span_id: self.parent_span_id,
            span_name: self.span_name,
            provider: self.provider,
            request_model: self.request_model,
            response_model: self.response_model,
            system_prompt: system_text(&self.system_instructions),
            input_messages: Message::parse_list(&self.input_messages),
            output_messages: Message::parse_list(&self.output_messages),
            tool_definitions: serde_json::from_str(&self.tool_definitions).ok(),
            input_text: self.input_text,
            output_text: self.output_text,
            parameters: map(&self.parameters),
            usage,
            cost,
            time_to_first_token_s: self.ttft,
            finish_reasons: self.finish_reasons,
            response_id: self.response_id,
            error_type: self.error_type,
            error_message: self.error_message,
            identity,
            prompt_name: self.prompt_name,
            prompt_version: self.prompt_version,
            prompt_template: self.prompt_template,
            prompt_variables: map(&self.prompt_variables),
            convention: self.convention,
            redactions: self.redactions,
            duplicate_of: self.duplicate_of,
            span_attributes: map(&self.span_attributes),
            resource_attributes: map(&self.resource_attributes),
            scores: Vec::new(),
        }
    }
}

#[derive(Debug, Row, Deserialize)]
struct ScoreRow {
    id: String,
    timestamp_ns: i64,
    target: String,
    name: String,
    data_type: String,
    value: Option<f64>,
    label: String,
    comment: String,
    source: String,
    author: String,
}

/// What scores to read: those on these spans (`trace:span`), traces, responses or session.
#[derive(Debug, Default)]
struct ScoreTargets {
    projects: Vec<String>,
    spans: Vec<String>,
    traces: Vec<String>,
    responses: Vec<String>,
    session: String,
}

#[derive(Debug, Deserialize)]
struct TurnRow {
    #[serde(flatten)]
    summary: SummaryRow,
    input_messages: String,
    input_text: String,
    output_text: String,
    output_messages: String,
    error_message: String,
    response_id: String,
}

/// The text of the last user message in `input_messages`, else `input_text`.
fn last_user_text(input_messages: &str, input_text: &str) -> String {
    Message::parse_list(input_messages)
        .into_iter()
        .rev()
        .find(|m| m.role == "user" && !m.text.is_empty())
        .map(|m| m.text)
        .unwrap_or_else(|| input_text.to_owned())
}

impl Reader {
    /// The call with span id `span_id` (in trace `trace_id`, when given: faster, and exact if two
    /// traces reuse a span id), with its scores; `None` if this reader sees no such call. The row
    /// that counts the call is preferred over a duplicate recording of it.
    pub async fn call(&self, span_id: &str, trace_id: Option<&str>) -> Result<Option<CallDetail>, ExploreError> {
        let mut c = Conditions::default();
        c.eq_str("SpanId", "span_id", span_id);
        if let Some(t) = trace_id {
            c.eq_str("TraceId", "trace_id", t);
        }
        self.restrict(&mut c, None)?;
        let sql = format!(
            "SELECT {}, {DETAIL_COLUMNS} FROM {} {} ORDER BY IsRollup, Timestamp DESC LIMIT 1",
            summary_columns(),
            Table::LlmCalls.name(),
            c.where_clause()
        );
        let Some(row) = fetch_json::<DetailRow>(c.bind(self.client().query(&sql))).await?.pop() else {
            return Ok(None);
        };
        let mut detail = row.into_detail();
        let s = &detail.summary;
        let targets = ScoreTargets {
            projects: vec![s.project.clone()],
            spans: vec![format!("{}:{}", s.trace_id, s.span_id)],
            traces: vec![s.trace_id.clone()],
            responses: [detail.response_id.clone()].into_iter().filter(|r| !r.is_empty()).collect(),
            session: s.session.clone(),
        };
        detail.scores = self.scores(&targets).await?;
        Ok(Some(detail))
    }

    /// Session `id` turn by turn (at most [`MAX_SESSION_TURNS`]), with totals and every score on the
    /// session or its calls; `None` if this reader sees no call in it.
    pub async fn session(&self, id: &str) -> Result<Option<Session>, ExploreError> {
        if id.is_empty() {
            return Ok(None);
        }
        let mut c = Conditions::default();
        c.raw("NOT IsRollup");
        c.eq_str("SessionId", "session_id", id);
        self.restrict(&mut c, None)?;
        let sql = format!(
            "SELECT {}, InputMessages AS input_messages, InputText AS input_text, OutputText AS output_text, \
             OutputMessages AS output_messages, ErrorMessage AS error_message, ResponseId AS response_id FROM {} {} \
             ORDER BY Timestamp, TraceId, SpanId LIMIT {MAX_SESSION_TURNS}",
            summary_columns(),
            Table::LlmCalls.name(),
            c.where_clause()
        );
        let rows: Vec<TurnRow> = fetch_json(c.bind(self.client().query(&sql))).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut targets = ScoreTargets { session: id.to_owned(), ..Default::default() };
        let (mut totals, mut users) = (SessionTotals::default(), Vec::<String>::new());
        let (mut first_ns, mut last_end_ns) = (i64::MAX, i64::MIN);
        let mut turns = Vec::with_capacity(rows.len());
        for (i, r) in rows.into_iter().enumerate() {
            let user_text = last_user_text(&r.input_messages, &r.input_text);
            let call = CallSummary::from(r.summary);
            totals.calls += 1;
            totals.errors += u64::from(call.status == "Error");
            totals.input_tokens += call.input_tokens;
            totals.output_tokens += call.output_tokens;
            totals.cost_usd += call.cost_usd.unwrap_or(0.0);
            totals.latency_ms += call.latency_ms;
            first_ns = first_ns.min(call.timestamp_ns);
            last_end_ns = last_end_ns.max(call.timestamp_ns + (call.latency_ms * 1e6) as i64);
            if !call.user.is_empty() && !users.contains(&call.user) {
                users.push(call.user.clone());
            }
            if !targets.projects.contains(&call.project) {
                targets.projects.push(call.project.clone());
            }
            targets.spans.push(format!("{}:{}", call.trace_id, call.span_id));
            if !targets.traces.contains(&call.trace_id) {
                targets.traces.push(call.trace_id.clone());
            }
            if !r.response_id.is_empty() {
                targets.responses.push(r.response_id);
            }
            let turn = u32::try_from(i + 1).unwrap_or(u32::MAX);
            turns.push(SessionTurn {
                turn,
                call,
                user_text,
                completion: r.output_text,
                output_messages: Message::parse_list(&r.output_messages),
                error_message: r.error_message,
            });
        }
        totals.duration_s = (last_end_ns - first_ns) as f64 / 1e9;
        let scores = self.scores(&targets).await?;
        Ok(Some(Session { id: id.to_owned(), users, turns, totals, scores }))
    }

    /// The live scores (latest version, deletions dropped: `FINAL`) on `targets`, oldest first.
    async fn scores(&self, targets: &ScoreTargets) -> Result<Vec<Score>, ExploreError> {
        let sql = format!(
            "SELECT ScoreId AS id, toUnixTimestamp64Nano(Timestamp) AS timestamp_ns, toString(TargetKind) AS target, \
             toString(Name) AS name, toString(DataType) AS data_type, Value AS value, Label AS label, \
             Comment AS comment, toString(Source) AS source, Author AS author FROM {} FINAL \
             WHERE ProjectId IN {{projects:Array(String)}} AND ( \
             (TargetKind = 'span' AND concat(TraceId, ':', SpanId) IN {{spans:Array(String)}}) \
             OR (TargetKind = 'trace' AND TraceId IN {{traces:Array(String)}}) \
             OR (TargetKind = 'response' AND ResponseId IN {{responses:Array(String)}}) \
             OR (TargetKind = 'session' AND SessionId != '' AND SessionId = {{session:String}})) \
             ORDER BY Timestamp, ScoreId",
            Table::Scores.name(),
        );
        let query = self
            .client()
            .query(&sql)
            .param("projects", &targets.projects)
            .param("spans", &targets.spans)
            .param("traces", &targets.traces)
            .param("responses", &targets.responses)
            .param("session", &targets.session);
        let rows: Vec<ScoreRow> = query.fetch_all().await?;
        Ok(rows
            .into_iter()
            .map(|r| Score {
                id: r.id,
                time: rfc3339(r.timestamp_ns),
                timestamp_ns: r.timestamp_ns,
                target: r.target,
                name: r.name,
                data_type: r.data_type,
                value: r.value,
                label: r.label,
                comment: r.comment,
                source: r.source,
                author: r.author,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_shows_what_its_user_asked_last() {
        let input = r#"[{"role":"system","parts":[{"type":"text","content":"sys"}]},
            {"role":"user","parts":[{"type":"text","content":"first"}]},
            {"role":"assistant","parts":[{"type":"text","content":"a"}]},
            {"role":"user","parts":[{"type":"text","content":"second"}]}]"#;
        assert_eq!(last_user_text(input, "all"), "second");
        assert_eq!(last_user_text("", "all"), "all");
    }
}

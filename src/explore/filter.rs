//! What to read: [`CallFilter`] (every filter the call list, `tail` and `export` take), the keyset
//! [`Cursor`] for paging newest-first, and their translation into a `WHERE` clause whose every value
//! is a ClickHouse query parameter (`{name:Type}`, sent as `param_name`), never spliced into the SQL.

use serde::{Deserialize, Serialize};

use super::ExploreError;

/// Calls per page when the filter names no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// Most calls one page may hold.
pub const MAX_LIMIT: u32 = 1_000;

/// A call's status (`StatusCode` of its span).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The span said it succeeded.
    Ok,
    /// The call failed.
    Error,
    /// The span set no status (most instrumentations on success).
    Unset,
}

impl Status {
    /// The `StatusCode` column's value.
    pub const fn column_value(self) -> &'static str {
        match self {
            Status::Ok => "Ok",
            Status::Error => "Error",
            Status::Unset => "Unset",
        }
    }

    /// `ok`, `error` or `unset`, in any case.
    pub fn parse(text: &str) -> Result<Status, ExploreError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "ok" => Ok(Status::Ok),
            "error" => Ok(Status::Error),
            "unset" => Ok(Status::Unset),
            _ => {
                Err(ExploreError::BadFilter { field: "status", reason: format!("{text:?} is not ok, error or unset") })
            }
        }
    }
}

/// Where a page of the newest-first list ends: the sort key of its last call. The next page holds
/// the calls strictly after it in `(Timestamp, TraceId, SpanId)` descending order, so paging neither
/// repeats nor skips a call however many share a timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Start of the call, ns since the epoch.
    pub timestamp_ns: i64,
    /// Its trace id (hex).
    pub trace_id: String,
    /// Its span id (hex).
    pub span_id: String,
}

impl Cursor {
    /// The opaque text form (`<ns>-<trace id>-<span id>`) used by `--cursor` and the UI's URLs.
    pub fn token(&self) -> String {
        format!("{}-{}-{}", self.timestamp_ns, self.trace_id, self.span_id)
    }

    /// Parses [`Cursor::token`]'s form.
    pub fn parse(token: &str) -> Result<Cursor, ExploreError> {
        let bad = || ExploreError::BadCursor(token.chars().take(100).collect());
        let mut parts = token.trim().splitn(3, '-');
        let (Some(ts), Some(trace_id), Some(span_id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let hex = |s: &str| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(trace_id) || !hex(span_id) {
            return Err(bad());
        }
        let timestamp_ns = ts.parse().map_err(|_| bad())?;
        Ok(Cursor { timestamp_ns, trace_id: trace_id.to_owned(), span_id: span_id.to_owned() })
    }
}

impl Serialize for Cursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.token())
    }
}

impl<'de> Deserialize<'de> for Cursor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cursor, D::Error> {
        let text = String::deserialize(d)?;
        Cursor::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Which calls to read. Every `None` / empty field matches everything; fields combine with AND.
/// Rows recorded twice (`IsRollup`, e.g. the second instrumentation of one call) are left out unless
/// `include_duplicates`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallFilter {
    /// First call start included, ns since the epoch.
    pub since_ns: Option<i64>,
    /// First call start excluded, ns since the epoch.
    pub until_ns: Option<i64>,
    /// `ProjectId`. A reader restricted to one project refuses any other.
    pub project: Option<String>,
    /// `ServiceName`.
    pub service: Option<String>,
    /// `Environment` (`deployment.environment[.name]`).
    pub environment: Option<String>,
    /// Requested or response model (either matches).
    pub model: Option<String>,
    /// `Operation` (`chat`, `embeddings`, `execute_tool`, ...).
    pub operation: Option<String>,
    /// `UserId`.
    pub user: Option<String>,
    /// `SessionId`.
    pub session: Option<String>,
    /// The call's status.
    pub status: Option<Status>,
    /// `PromptName` of a managed prompt.
    pub prompt_name: Option<String>,
    /// `PromptVersion` of a managed prompt.
    pub prompt_version: Option<String>,
    /// Text searched, case-insensitively (ASCII case), in the prompt and the completion.
    pub search: Option<String>,
    /// Calls per page (list) or at most (export); list default [`DEFAULT_LIMIT`].
    pub limit: Option<u32>,
    /// Continue after this call (newest-first order).
    pub cursor: Option<Cursor>,
    /// Also rows that record a call already recorded by another row.
    pub include_duplicates: bool,
}

/// One query parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Str(String),
    Int(i64),
}

/// A `WHERE` clause and the parameters it references.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Conditions {
    parts: Vec<String>,
    pub(crate) params: Vec<(String, Param)>,
}

impl Conditions {
    /// Adds `sql`, which references `{name:String}`.
    pub(crate) fn eq_str(&mut self, column: &str, name: &str, value: &str) {
        self.push(format!("{column} = {{{name}:String}}"), name, Param::Str(value.to_owned()));
    }

    /// Adds a condition referencing parameter `name`.
    pub(crate) fn push(&mut self, sql: String, name: &str, value: Param) {
        self.parts.push(sql);
        self.params.push((name.to_owned(), value));
    }

    /// Adds `(Timestamp, TraceId, SpanId) <op> cursor`, with parameters `<prefix>_ns`, `_trace`, `_span`.
    pub(crate) fn keyset(&mut self, op: &str, prefix: &str, cursor: &Cursor) {
        self.parts.push(format!(
            "(Timestamp, TraceId, SpanId) {op} (fromUnixTimestamp64Nano({{{prefix}_ns:Int64}}), \
             {{{prefix}_trace:String}}, {{{prefix}_span:String}})"
        ));
        self.params.push((format!("{prefix}_ns"), Param::Int(cursor.timestamp_ns)));
        self.params.push((format!("{prefix}_trace"), Param::Str(cursor.trace_id.clone())));
        self.params.push((format!("{prefix}_span"), Param::Str(cursor.span_id.clone())));
    }

    /// Adds a condition without parameters.
    pub(crate) fn raw(&mut self, sql: &str) {
        self.parts.push(sql.to_owned());
    }

    /// `WHERE a AND b ...`, or empty.
    pub(crate) fn where_clause(&self) -> String {
        if self.parts.is_empty() { String::new() } else { format!("WHERE {}", self.parts.join(" AND ")) }
    }

    /// Binds every parameter to `query`.
    pub(crate) fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        for (name, value) in &self.params {
            query = match value {
                Param::Str(s) => query.param(name, s),
                Param::Int(i) => query.param(name, i),
            };
        }
        query
    }
}

/// `%text%` for LIKE, with LIKE's own wildcards and escape character in `text` escaped, so the
/// search is for the literal text.
fn like_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

impl CallFilter {
    /// The page size: the limit, [`DEFAULT_LIMIT`] when none, at most [`MAX_LIMIT`].
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// Checks values SQL parameters cannot refuse but that make no sense.
    pub(crate) fn validate(&self) -> Result<(), ExploreError> {
        if let (Some(since), Some(until)) = (self.since_ns, self.until_ns)
            && since >= until
        {
            return Err(ExploreError::BadFilter { field: "since", reason: "must be before until".into() });
        }
        if self.limit == Some(0) {
            return Err(ExploreError::BadFilter { field: "limit", reason: "must be at least 1".into() });
        }
        Ok(())
    }

    /// The conditions of this filter on `llm_calls` (the project condition comes from the reader).
    pub(crate) fn conditions(&self) -> Conditions {
        let mut c = Conditions::default();
        if !self.include_duplicates {
            c.raw("NOT IsRollup");
        }
        if let Some(since) = self.since_ns {
            c.push("Timestamp >= fromUnixTimestamp64Nano({since_ns:Int64})".into(), "since_ns", Param::Int(since));
        }
        if let Some(until) = self.until_ns {
            c.push("Timestamp < fromUnixTimestamp64Nano({until_ns:Int64})".into(), "until_ns", Param::Int(until));
        }
        let columns = [
            ("ServiceName", "service", &self.service),
            ("Environment", "environment", &self.environment),
            ("Operation", "operation", &self.operation),
            ("UserId", "user_id", &self.user),
            ("SessionId", "session_id", &self.session),
            ("PromptName", "prompt_name", &self.prompt_name),
            ("PromptVersion", "prompt_version", &self.prompt_version),
        ];
        for (column, name, value) in columns {
            if let Some(v) = value {
                c.eq_str(column, name, v);
            }
        }
        if let Some(model) = &self.model {
            let sql = "(RequestModel = {model:String} OR ResponseModel = {model:String})".to_owned();
            c.push(sql, "model", Param::Str(model.clone()));
        }
        if let Some(status) = self.status {
            c.eq_str("StatusCode", "status", status.column_value());
        }
        if let Some(search) = self.search.as_deref().filter(|s| !s.is_empty()) {
            // lower() on both sides, as the ngram skip indexes on lower(InputText/OutputText) are built.
            let sql = "(lower(InputText) LIKE lower({search:String}) OR lower(OutputText) LIKE lower({search:String}) \
                       OR lower(SystemInstructions) LIKE lower({search:String}))"
                .to_owned();
            c.push(sql, "search", Param::Str(like_pattern(search)));
        }
        if let Some(cursor) = &self.cursor {
            c.keyset("<", "cursor", cursor);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_tokens_round_trip_and_refuse_garbage() {
        let c = Cursor { timestamp_ns: 1_764_547_200_123_456_789, trace_id: "ab12".into(), span_id: "cd".into() };
        assert_eq!(Cursor::parse(&c.token()).unwrap(), c);
        for bad in ["", "1", "1-ab", "x-ab-cd", "1-a'b-cd", "1-ab-cd' OR 1=1"] {
            assert!(matches!(Cursor::parse(bad), Err(ExploreError::BadCursor(_))), "{bad}");
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Cursor>(&json).unwrap(), c);
    }

    #[test]
    fn every_value_is_a_parameter_never_sql() {
        let hostile = "x' OR 1=1 --\\";
        let f = CallFilter {
            since_ns: Some(1),
            until_ns: Some(2),
            service: Some(hostile.into()),
            environment: Some(hostile.into()),
            model: Some(hostile.into()),
            operation: Some(hostile.into()),
            user: Some(hostile.into()),
            session: Some(hostile.into()),
            status: Some(Status::Error),
            prompt_name: Some(hostile.into()),
            prompt_version: Some(hostile.into()),
            search: Some(hostile.into()),
            cursor: Some(Cursor { timestamp_ns: 3, trace_id: "a".into(), span_id: "b".into() }),
            ..Default::default()
        };
        let c = f.conditions();
        let sql = c.where_clause();
        assert!(!sql.contains("OR 1=1") && !sql.contains('?'), "{sql}");
        // Every parameter the SQL references is bound, and every bound one is referenced.
        for (name, _) in &c.params {
            assert!(sql.contains(&format!("{{{name}:")), "{name} unused in {sql}");
        }
        assert_eq!(
            sql.matches(":String}").count() + sql.matches(":Int64}").count(),
            c.params.len() + 3,
            "model is used twice, search three times"
        );
        assert!(c.params.contains(&("search".into(), Param::Str("%x' OR 1=1 --\\\\%".into()))));
    }

    #[test]
    fn like_wildcards_in_the_search_text_are_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn validation_and_page_size() {
        assert!(CallFilter { since_ns: Some(5), until_ns: Some(5), ..Default::default() }.validate().is_err());
        assert!(CallFilter { limit: Some(0), ..Default::default() }.validate().is_err());
        assert_eq!(CallFilter::default().page_size(), DEFAULT_LIMIT);
        assert_eq!(CallFilter { limit: Some(1_000_000), ..Default::default() }.page_size(), MAX_LIMIT);
        assert_eq!(Status::parse(" ERROR ").unwrap(), Status::Error);
        assert!(Status::parse("failed").is_err());
    }
}

//! [`Reader`]: the read client. It connects with the least-privileged account the config has for the
//! job and, when a `read`-scope API key is given, restricts every query to the key's project.
//!
//! Which ClickHouse account reads:
//! 1. restricted to a project that has an `access.project_readers` entry: that user, whose row
//!    policies ClickHouse itself enforces (the `ProjectId` condition is added as well);
//! 2. otherwise, when `access.reader_password` is set: `access.reader_user` (the read-only role);
//! 3. otherwise the collector's own `clickhouse.user` (a single-user setup, e.g. the demo).

use std::collections::HashMap;
use std::sync::Arc;

use clickhouse::{Client, Row};
use promptlog_ingest::Table;
use serde::Deserialize;

use super::ExploreError;
use super::filter::{CallFilter, Conditions};
use super::model::{CallPage, CallSummary, PROMPT_START_CHARS, rfc3339};
use crate::auth::{Auth, Scope};
use crate::config::{ClickHouseConfig, Config};
use crate::storage::clickhouse::Store;

/// The read client. Cheap to clone.
#[derive(Clone)]
pub struct Reader {
    client: Client,
    /// The ClickHouse user `client` logs in as.
    account: String,
    /// Every query is restricted to this project.
    project: Option<String>,
    shared: Arc<Shared>,
}

/// What every restriction of a reader shares: the unrestricted client and the per-project ones.
struct Shared {
    all: (Client, String),
    per_project: HashMap<String, (Client, String)>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader").field("account", &self.account).field("project", &self.project).finish()
    }
}

fn client_as(base: &ClickHouseConfig, user: &str, password: &str) -> Result<(Client, String), ExploreError> {
    let mut cfg = base.clone();
    cfg.user = user.to_owned();
    cfg.password = password.into();
    Ok((Store::try_new(&cfg)?.client().clone(), user.to_owned()))
}

/// The summary columns, in [`SummaryRow`] order.
pub(crate) fn summary_columns() -> String {
    format!(
        "toUnixTimestamp64Nano(Timestamp) AS timestamp_ns, TraceId AS trace_id, SpanId AS span_id, \
         toString(ProjectId) AS project, toString(ServiceName) AS service, toString(Environment) AS environment, \
         toString(Operation) AS operation, toString(if(ResponseModel != '', ResponseModel, RequestModel)) AS model, \
         toString(StatusCode) AS status, Duration AS duration_ns, InputTokens AS input_tokens, \
         OutputTokens AS output_tokens, TotalTokens AS total_tokens, CostUsd AS cost_usd, SessionId AS session, \
         UserId AS user, leftUTF8(InputText, {PROMPT_START_CHARS}) AS prompt_start"
    )
}

/// A call list row as read.
#[derive(Debug, Row, Deserialize)]
pub(crate) struct SummaryRow {
    timestamp_ns: i64,
    trace_id: String,
    span_id: String,
    project: String,
    service: String,
    environment: String,
    operation: String,
    model: String,
    status: String,
    duration_ns: u64,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    cost_usd: Option<f64>,
    session: String,
    user: String,
    prompt_start: String,
}

impl From<SummaryRow> for CallSummary {
    fn from(r: SummaryRow) -> CallSummary {
        CallSummary {
            time: rfc3339(r.timestamp_ns),
            timestamp_ns: r.timestamp_ns,
            trace_id: r.trace_id,
            span_id: r.span_id,
            project: r.project,
            service: r.service,
            environment: r.environment,
            operation: r.operation,
            model: r.model,
            status: r.status,
            latency_ms: r.duration_ns as f64 / 1e6,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            total_tokens: r.total_tokens,
            cost_usd: r.cost_usd,
            session: r.session,
            user: r.user,
            prompt_start: r.prompt_start,
        }
    }
}

impl Reader {
    /// A reader of every project the account may see (use [`Reader::for_project`] or
    /// [`Reader::for_key`] to restrict it). Builds the clients; no network I/O yet.
    pub fn new(config: &Config) -> Result<Reader, ExploreError> {
        let ch = &config.clickhouse;
        let access = &config.access;
        let all = if !access.reader_user.is_empty() && !access.reader_password.expose().is_empty() {
            client_as(ch, &access.reader_user, access.reader_password.expose())?
        } else {
            client_as(ch, &ch.user, ch.password.expose())?
        };
        let mut per_project = HashMap::new();
        for p in &access.project_readers {
            per_project.insert(p.project.clone(), client_as(ch, &p.user, p.password.expose())?);
        }
        let (client, account) = all.clone();
        Ok(Reader { client, account, project: None, shared: Arc::new(Shared { all, per_project }) })
    }

    /// The reader for the CLI: `api_key` given, restricted to its project (it must hold the `read`
    /// scope, checked against the configured keys); none, every project.
    pub fn from_config(config: &Config, api_key: Option<&str>) -> Result<Reader, ExploreError> {
        let reader = Reader::new(config)?;
        match api_key {
            None => Ok(reader),
            Some(key) => {
                let auth = Auth::new(&config.auth, crate::telemetry::Stats::new())?;
                if !auth.enabled() {
                    return Err(ExploreError::AuthOff);
                }
                reader.for_key(&auth, Some(key))
            }
        }
    }

    /// This reader restricted to the project of `presented` (a key with the `read` scope). With
    /// auth off every request is project `default`, as at ingest.
    pub fn for_key(&self, auth: &Auth, presented: Option<&str>) -> Result<Reader, ExploreError> {
        let identity = auth.check(presented, Scope::Read)?;
        Ok(self.for_project(&identity.project))
    }

    /// This reader restricted to `project`, with that project's own ClickHouse account if one is
    /// configured.
    pub fn for_project(&self, project: &str) -> Reader {
        let (client, account) = self.shared.per_project.get(project).unwrap_or(&self.shared.all).clone();
        Reader { client, account, project: Some(project.to_owned()), shared: self.shared.clone() }
    }

    /// The project every query is restricted to, if any.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    /// The ClickHouse user this reader logs in as.
    pub fn account(&self) -> &str {
        &self.account
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// `filter`'s conditions plus the project restriction; a filter naming another project than the
    /// reader's is refused.
    pub(crate) fn conditions(&self, filter: &CallFilter) -> Result<Conditions, ExploreError> {
        filter.validate()?;
        let mut c = filter.conditions();
        self.restrict(&mut c, filter.project.as_deref())?;
        Ok(c)
    }

    /// Adds the project condition: the reader's project, else the one asked for.
    pub(crate) fn restrict(&self, c: &mut Conditions, asked: Option<&str>) -> Result<(), ExploreError> {
        let project = match (&self.project, asked) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(ExploreError::ProjectNotAllowed { allowed: own.clone(), requested: asked.to_owned() });
            }
            (Some(own), _) => Some(own.as_str()),
            (None, asked) => asked,
        };
        if let Some(p) = project {
            c.eq_str("ProjectId", "project", p);
        }
        Ok(())
    }

    /// A page of calls matching `filter`, newest first (after `filter.cursor` when set).
    pub async fn calls(&self, filter: &CallFilter) -> Result<CallPage, ExploreError> {
        let c = self.conditions(filter)?;
        let limit = filter.page_size();
        let sql = format!(
            "SELECT {} FROM {} {} ORDER BY Timestamp DESC, TraceId DESC, SpanId DESC LIMIT {limit}",
            summary_columns(),
            Table::LlmCalls.name(),
            c.where_clause(),
        );
        let rows: Vec<SummaryRow> = c.bind(self.client.query(&sql)).fetch_all().await?;
        let calls: Vec<CallSummary> = rows.into_iter().map(CallSummary::from).collect();
        let next_cursor = (calls.len() == limit as usize).then(|| calls.last().map(CallSummary::cursor)).flatten();
        Ok(CallPage { calls, next_cursor })
    }

    /// Calls matching `filter` in ascending `(Timestamp, TraceId, SpanId)` order, after `after`
    /// (exclusive) when given, at most `limit`: the building block of [`Tail`](super::Tail).
    pub(crate) async fn calls_ascending(
        &self,
        filter: &CallFilter,
        after: Option<&super::Cursor>,
        limit: u32,
    ) -> Result<Vec<CallSummary>, ExploreError> {
        let mut c = self.conditions(&CallFilter { cursor: None, ..filter.clone() })?;
        if let Some(a) = after {
            c.keyset(">", "after", a);
        }
        let sql = format!(
            "SELECT {} FROM {} {} ORDER BY Timestamp, TraceId, SpanId LIMIT {limit}",
            summary_columns(),
            Table::LlmCalls.name(),
            c.where_clause(),
        );
        let rows: Vec<SummaryRow> = c.bind(self.client.query(&sql)).fetch_all().await?;
        Ok(rows.into_iter().map(CallSummary::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProjectReader, Secret};

    #[test]
    fn the_least_privileged_configured_account_reads() {
        let mut config = Config::default();
        config.clickhouse.user = "collector".into();
        assert_eq!(Reader::new(&config).unwrap().account(), "collector", "no reader password: the collector's user");
        config.access.reader_password = Secret("r".into());
        let acme = ProjectReader { project: "acme".into(), user: "reader_acme".into(), password: Secret("a".into()) };
        config.access.project_readers = vec![acme];
        let reader = Reader::new(&config).unwrap();
        assert_eq!((reader.account(), reader.project()), ("promptlog_grafana", None));
        let acme = reader.for_project("acme");
        assert_eq!((acme.account(), acme.project()), ("reader_acme", Some("acme")));
        let other = acme.for_project("beta");
        assert_eq!((other.account(), other.project()), ("promptlog_grafana", Some("beta")));
        let mut c = Conditions::default();
        assert!(matches!(other.restrict(&mut c, Some("acme")), Err(ExploreError::ProjectNotAllowed { .. })));
        other.restrict(&mut c, Some("beta")).unwrap();
        assert_eq!(c.where_clause(), "WHERE ProjectId = {project:String}");
    }
}

//! `scores`: one row per score version (see `crate::scores`). A `ReplacingMergeTree(Version, IsDeleted)`
//! ordered by `(ProjectId, ScoreId)`: a resubmission (a later `Version`) replaces, a delete is a
//! tombstone row (`IsDeleted = 1`), and a replayed spool record writes the very same row again, which
//! the replay check skips (and `FINAL` would collapse anyway).

use serde::Serialize;

use super::{AttrMap, Keyed, RowKey};

/// One row of `scores`. Field order = column order of the migration.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "clickhouse", derive(clickhouse::Row))]
#[serde(rename_all = "PascalCase")]
pub struct ScoreRow {
    /// The project of the key the score arrived with.
    pub project_id: String,
    /// The score's id (client-chosen idempotency key, or assigned by the collector).
    pub score_id: String,
    /// When the collector received the request that wrote this version (ns): the later one wins.
    pub version: u64,
    /// 1 on a delete's tombstone row (every other column but the ids is then empty).
    pub is_deleted: u8,
    /// When the score was given (ns; the receive time when the client sent none).
    pub timestamp: i64,
    /// `span`, `trace`, `session` or `response`.
    pub target_kind: String,
    /// Lower-case hex; set for span and trace targets (and OTLP evaluations with a trace context).
    pub trace_id: String,
    /// Lower-case hex; set for span targets.
    pub span_id: String,
    pub session_id: String,
    /// `gen_ai.response.id` of the call it rates.
    pub response_id: String,
    /// `gen_ai.evaluation.name`.
    pub name: String,
    /// `numeric`, `boolean`, `categorical` or `text`.
    pub data_type: String,
    pub value: Option<f64>,
    pub label: String,
    pub comment: String,
    /// `end_user`, `annotator`, `llm`, `code` or `unspecified`.
    pub source: String,
    pub author: String,
    pub environment: String,
    pub metadata: AttrMap,
    /// The API key id it was sent with (empty with auth off).
    pub key_id: String,
}

impl Keyed for ScoreRow {
    /// A score version is `(ProjectId, Version, ScoreId, IsDeleted)`: a replayed record's row has the
    /// same version as the one written before the crash; a later resubmission does not.
    const KEY_SQL: [&'static str; 5] = ["ProjectId", "toInt64(Version)", "ScoreId", "''", "toUInt64(IsDeleted)"];
    fn key(&self) -> RowKey {
        RowKey {
            project: self.project_id.clone(),
            ts: i64::try_from(self.version).unwrap_or(i64::MAX),
            trace_id: self.score_id.clone(),
            span_id: String::new(),
            body_hash: u64::from(self.is_deleted),
        }
    }
    fn timestamp_ns(&self) -> i64 {
        self.timestamp
    }
}

//! The read side: what the `promptlog calls / show / session / tail / export` commands and the
//! built-in explorer read from ClickHouse, and how.
//!
//! - [`CallFilter`] (time range, project, service, environment, model, operation, user, session,
//!   status, prompt name and version, text search, limit, [`Cursor`]) becomes a `WHERE` clause whose
//!   every value is a ClickHouse query parameter (`{name:Type}`, sent as `param_name`); no value is
//!   ever spliced into SQL.
//! - [`Reader`] reads with the least-privileged account configured and, given a `read`-scope API
//!   key ([`Reader::for_key`]) or a project ([`Reader::for_project`]), only that project's rows.
//!   [`Reader::calls`] pages the call list newest first; [`Reader::call`] returns one call with its
//!   messages, tool calls, usage, cost, identity, raw attributes and scores; [`Reader::session`] a
//!   session turn by turn with totals.
//! - [`Tail`] returns the calls that land after it started, each once.
//! - [`Reader::export_file`] streams the matching rows in a format ClickHouse produces (JSON lines,
//!   CSV, Parquet) to a file that appears only when complete.
//! - [`cli`]: the commands, on top of the above.

pub mod cli;
mod cli_text;
mod detail;
mod export;
mod filter;
mod model;
mod reader;
mod tail;

pub use detail::MAX_SESSION_TURNS;
pub use export::{DEFAULT_EXPORT_BUFFER_BYTES, ExportFormat, ExportStats};
pub use filter::{CallFilter, Cursor, DEFAULT_LIMIT, MAX_LIMIT, Status};
pub use model::{
    CallDetail, CallPage, CallSummary, Cost, Identity, Message, PROMPT_START_CHARS, Score, Session, SessionTotals,
    SessionTurn, ToolCall, ToolResult, Usage, rfc3339,
};
pub use reader::Reader;
pub use tail::{DEFAULT_TAIL_LOOKBACK, Tail};

use crate::auth::{KeyFileError, Refusal};
use crate::config::ConfigError;
use crate::storage::clickhouse::StoreError;
use crate::tls::TlsError;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// The configuration (file or environment) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The ClickHouse TLS settings cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The API key file cannot be loaded.
    #[error("API keys: {0}")]
    KeyFile(#[from] KeyFileError),
    /// The read key was refused.
    #[error("read key refused: {0}")]
    Refused(#[from] Refusal),
    /// An API key was given but none is configured to check it against.
    #[error(
        "an API key was given but no key is configured (auth.keys_file or PROMPTLOG_API_KEYS), so it cannot be checked"
    )]
    AuthOff,
    /// A filter names a project the reader may not read.
    #[error("this reader is restricted to project {allowed:?} and cannot read project {requested:?}")]
    ProjectNotAllowed { allowed: String, requested: String },
    /// A filter value makes no sense.
    #[error("{field}: {reason}")]
    BadFilter { field: &'static str, reason: String },
    /// A cursor that no page produced.
    #[error("invalid cursor {0:?} (use the next_cursor a page returned)")]
    BadCursor(String),
    /// ClickHouse failed or refused the query.
    #[error("reading from ClickHouse: {0}")]
    Query(#[from] StoreError),
    /// ClickHouse sent something the reader cannot decode.
    #[error("cannot decode ClickHouse's answer: {0}")]
    Decode(String),
    /// Writing a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: std::path::PathBuf, source: std::io::Error },
    /// No call with that span id (among those the reader may see).
    #[error("no call with span id {0:?}")]
    CallNotFound(String),
    /// No call in that session (among those the reader may see).
    #[error("no call in session {0:?}")]
    SessionNotFound(String),
    /// Ctrl-C (or SIGTERM) stopped the command.
    #[error("interrupted")]
    Interrupted,
}

impl From<clickhouse::error::Error> for ExploreError {
    fn from(e: clickhouse::error::Error) -> Self {
        ExploreError::Query(StoreError::from(e))
    }
}

//! The read commands of the `promptlog` binary: `calls`, `show`, `session`, `tail`, `export`.
//! They read the same config file and `PROMPTLOG_*` environment as `serve`; `--api-key` (env
//! `PROMPTLOG_API_KEY`), a key with the `read` scope, restricts them to its project.
//!
//! Exit codes ([`ExploreError::exit_code`]): 0 done (also `tail` stopped by Ctrl-C), 1 failure,
//! 2 bad arguments, 3 no such call or session, 4 key refused or project not allowed, 130 an export
//! interrupted by Ctrl-C (no file is left).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use super::cli_text;
use super::{
    CallFilter, Cursor, DEFAULT_EXPORT_BUFFER_BYTES, DEFAULT_TAIL_LOOKBACK, ExploreError, ExportFormat, Reader, Status,
    Tail,
};
use crate::config::Config;
use crate::pricing::reprice::parse_time;

/// Pause between two polls of `tail`, by default.
pub const DEFAULT_TAIL_INTERVAL: Duration = Duration::from_secs(1);

/// The read commands (flattened into the binary's command list).
/// Boxed: the filter arguments would make every command of the binary's enum as large.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List stored LLM calls, newest first (filters combine with AND).
    Calls(Box<CallsArgs>),
    /// Show one call: system prompt, messages with roles, tool calls and results, completion,
    /// parameters, usage, cost, identity, attributes and scores.
    Show(Box<ShowArgs>),
    /// Show a session turn by turn, with per-turn cost and latency and totals.
    Session(Box<SessionArgs>),
    /// Print new calls as they are stored, one line each, until Ctrl-C.
    Tail(Box<TailArgs>),
    /// Write the matching calls (every column) to a JSON-lines, CSV or Parquet file.
    Export(Box<ExportArgs>),
}

/// Where to read from, and as whom.
#[derive(Debug, Args)]
pub struct Source {
    /// YAML config file (as for `serve`); environment overrides apply on top.
    #[arg(long, env = "PROMPTLOG_CONFIG")]
    config: Option<PathBuf>,
    /// An API key with the `read` scope: only its project's calls are read.
    #[arg(long, env = "PROMPTLOG_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// Which calls.
#[derive(Debug, Args, Default)]
pub struct FilterArgs {
    /// Calls that started at or after: RFC 3339 (2026-11-30T00:00:00Z) or a duration ago (24h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Calls that started before, same forms.
    #[arg(long)]
    until: Option<String>,
    /// Project (ProjectId).
    #[arg(long)]
    project: Option<String>,
    /// Service (service.name).
    #[arg(long)]
    service: Option<String>,
    /// Deployment environment.
    #[arg(long)]
    environment: Option<String>,
    /// Requested or response model.
    #[arg(long)]
    model: Option<String>,
    /// Operation (chat, embeddings, execute_tool, ...).
    #[arg(long)]
    operation: Option<String>,
    /// User id.
    #[arg(long)]
    user: Option<String>,
    /// Session id.
    #[arg(long)]
    session: Option<String>,
    /// ok, error or unset.
    #[arg(long)]
    status: Option<String>,
    /// Managed prompt name.
    #[arg(long)]
    prompt: Option<String>,
    /// Managed prompt version.
    #[arg(long)]
    prompt_version: Option<String>,
    /// Text in the prompt, system prompt or completion (case-insensitive for ASCII letters).
    #[arg(long)]
    search: Option<String>,
    /// Also rows that record a call already recorded by another row (duplicate instrumentation).
    #[arg(long)]
    include_duplicates: bool,
}

impl FilterArgs {
    fn filter(&self) -> Result<CallFilter, ExploreError> {
        let now = now_ns();
        let time = |field: &'static str, v: &Option<String>| {
            v.as_deref()
                .map(|t| parse_time(t, now).map_err(|reason| ExploreError::BadFilter { field, reason }))
                .transpose()
        };
        Ok(CallFilter {
            since_ns: time("--since", &self.since)?,
            until_ns: time("--until", &self.until)?,
            project: self.project.clone(),
            service: self.service.clone(),
            environment: self.environment.clone(),
            model: self.model.clone(),
            operation: self.operation.clone(),
            user: self.user.clone(),
            session: self.session.clone(),
            status: self.status.as_deref().map(Status::parse).transpose()?,
            prompt_name: self.prompt.clone(),
            prompt_version: self.prompt_version.clone(),
            search: self.search.clone(),
            include_duplicates: self.include_duplicates,
            ..CallFilter::default()
        })
    }
}

/// Output for people or for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned text (control characters in stored text are replaced).
    #[value(alias = "text")]
    Table,
    /// JSON (`tail`: one object per line).
    Json,
}

/// `promptlog calls`.
#[derive(Debug, Args)]
pub struct CallsArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    filter: FilterArgs,
    /// Calls per page (at most 1000).
    #[arg(long, default_value_t = super::DEFAULT_LIMIT)]
    limit: u32,
    /// Continue after a previous page (its `next_cursor`, also printed after a full table).
    #[arg(long)]
    cursor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// `promptlog show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    source: Source,
    /// Span id of the call (hex, as `calls` prints it).
    span_id: String,
    /// Its trace id: faster, and exact should two traces reuse a span id.
    #[arg(long)]
    trace: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// `promptlog session`.
#[derive(Debug, Args)]
pub struct SessionArgs {
    #[command(flatten)]
    source: Source,
    /// Session id.
    session_id: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// `promptlog tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    filter: FilterArgs,
    /// Pause between polls.
    #[arg(long, default_value_t = DEFAULT_TAIL_INTERVAL.into())]
    interval: humantime::Duration,
    /// How late (after the newest call seen started) a call may land and still be shown.
    #[arg(long, default_value_t = DEFAULT_TAIL_LOOKBACK.into())]
    lookback: humantime::Duration,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// `promptlog export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    filter: FilterArgs,
    /// At most this many calls (oldest first).
    #[arg(long)]
    limit: Option<u32>,
    /// jsonl, csv or parquet.
    #[arg(long)]
    format: String,
    /// The file to write; it appears only once complete.
    #[arg(long, short)]
    output: PathBuf,
    /// Bytes buffered between writes (memory use stays about this plus one network chunk).
    #[arg(long, env = "PROMPTLOG_EXPORT_BUFFER_BYTES", default_value_t = DEFAULT_EXPORT_BUFFER_BYTES)]
    buffer_bytes: usize,
    /// No progress line, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

fn now_ns() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

impl Source {
    fn reader(&self) -> Result<Reader, ExploreError> {
        let config = Config::load(self.config.as_deref())?;
        Reader::from_config(&config, self.api_key.as_deref())
    }
}

impl ExploreError {
    /// The process exit code for this error (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExploreError::BadFilter { .. } | ExploreError::BadCursor(_) => 2,
            ExploreError::CallNotFound(_) | ExploreError::SessionNotFound(_) => 3,
            ExploreError::Refused(_) | ExploreError::ProjectNotAllowed { .. } | ExploreError::AuthOff => 4,
            ExploreError::Interrupted => 130,
            _ => 1,
        }
    }
}

/// Writes `text` to stdout; a closed pipe (`| head`) ends the output quietly.
fn print(text: &str) -> Result<(), ExploreError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(ExploreError::Io { path: PathBuf::from("<stdout>"), source: e })
        }
        _ => Ok(()),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

impl Command {
    /// Runs the command.
    pub async fn run(self) -> Result<(), ExploreError> {
        match self {
            Command::Calls(a) => calls(*a).await,
            Command::Show(a) => show(*a).await,
            Command::Session(a) => session(*a).await,
            Command::Tail(a) => tail(*a).await,
            Command::Export(a) => export(*a).await,
        }
    }
}

async fn calls(a: CallsArgs) -> Result<(), ExploreError> {
    let reader = a.source.reader()?;
    let cursor = a.cursor.as_deref().map(Cursor::parse).transpose()?;
    let filter = CallFilter { limit: Some(a.limit), cursor, ..a.filter.filter()? };
    let page = reader.calls(&filter).await?;
    match a.format {
        Format::Json => print(&json(&page)),
        Format::Table => {
            let mut text = cli_text::table(&page.calls);
            if let Some(next) = &page.next_cursor {
                text.push_str(&format!("(more: --cursor {})\n", next.token()));
            }
            print(&text)
        }
    }
}

async fn show(a: ShowArgs) -> Result<(), ExploreError> {
    let reader = a.source.reader()?;
    let detail = reader
        .call(&a.span_id, a.trace.as_deref())
        .await?
        .ok_or_else(|| ExploreError::CallNotFound(a.span_id.clone()))?;
    print(&match a.format {
        Format::Json => json(&detail),
        Format::Table => cli_text::call(&detail),
    })
}

async fn session(a: SessionArgs) -> Result<(), ExploreError> {
    let reader = a.source.reader()?;
    let s = reader.session(&a.session_id).await?.ok_or_else(|| ExploreError::SessionNotFound(a.session_id.clone()))?;
    print(&match a.format {
        Format::Json => json(&s),
        Format::Table => cli_text::session(&s),
    })
}

async fn tail(a: TailArgs) -> Result<(), ExploreError> {
    let reader = a.source.reader()?;
    let mut tail = Tail::new(reader, a.filter.filter()?, *a.lookback);
    // The first poll fails loudly (bad config, no ClickHouse); later failures are retried.
    tail.poll().await?;
    eprintln!("waiting for new calls (Ctrl-C to stop)");
    let stop = interrupted();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(*a.interval) => {}
        }
        let polled = tokio::select! {
            _ = &mut stop => return Ok(()),
            polled = tail.poll() => polled,
        };
        match polled {
            Ok(calls) => {
                let mut text = String::new();
                for c in &calls {
                    text.push_str(&match a.format {
                        Format::Json => serde_json::to_string(c).unwrap_or_default(),
                        Format::Table => cli_text::line(c),
                    });
                    text.push('\n');
                }
                print(&text)?;
            }
            Err(e) => eprintln!("warning: {e} (retrying)"),
        }
    }
}

async fn export(a: ExportArgs) -> Result<(), ExploreError> {
    let format = ExportFormat::parse(&a.format)?;
    let reader = a.source.reader()?;
    // A fixed end, so that the count and the rows cover the same calls.
    let mut filter = CallFilter { limit: a.limit, ..a.filter.filter()? };
    filter.until_ns.get_or_insert_with(now_ns);
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} written ({bytes_per_sec}, {elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(format!("exporting to {}:", a.output.display()));
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let progress = |bytes: u64| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    };
    let result = tokio::select! {
        r = reader.export_file(&filter, format, &a.output, a.buffer_bytes, progress) => r,
        _ = interrupted() => Err(ExploreError::Interrupted),
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let stats = result?;
    eprintln!(
        "exported {} call(s), {} bytes in {} chunk(s) (largest {} bytes) and {} write(s) (at most {} bytes buffered), to {}",
        stats.rows,
        stats.bytes,
        stats.chunks,
        stats.largest_chunk,
        stats.writes,
        stats.peak_buffered,
        a.output.display()
    );
    Ok(())
}

//! `serve`: wires config → store → spool → pipeline → receivers, and shuts them down in order.

use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use promptlog_ingest::process::project::StampProject;
use promptlog_ingest::{Ingestor, Limits, Processors};
use promptlog_spool::{RecordId, Spool, SpoolError, SpoolOptions};

use crate::auth::{Auth, KeyFileError};
use crate::config::Config;
use crate::pipeline;
use crate::receiver::{Receiver, grpc, http};
use crate::runtime::blocking;
use crate::storage::clickhouse::{Store, retry, schema};
use crate::telemetry::Stats;

/// The spool's directory inside `data_dir`.
const SPOOL_DIR: &str = "spool";

/// Already-bound listeners (tests bind port 0).
pub struct Listeners {
    /// OTLP/gRPC.
    pub grpc: TcpListener,
    /// OTLP/HTTP and `/health`.
    pub http: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        Ok(Listeners {
            grpc: TcpListener::bind(&config.receivers.grpc_endpoint).await?,
            http: TcpListener::bind(&config.receivers.http_endpoint).await?,
        })
    }
}

/// Why serving stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The gRPC server failed.
    #[error("OTLP/gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    /// The HTTP server failed.
    #[error("OTLP/HTTP server: {0}")]
    Http(#[from] std::io::Error),
    /// The spool could not be opened (locked by another instance, unreadable, or corrupt).
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    /// The API key file could not be loaded.
    #[error("API keys: {0}")]
    Auth(#[from] KeyFileError),
}

/// Runs the collector until `shutdown` is cancelled, then stops accepting, flushes and returns.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), ServeError> {
    let stats = Stats::new();
    // Before anything listens: a bad key file must stop the start, not open the door.
    let auth = Auth::new(&config.auth, stats.clone())?;
    if auth.enabled() {
        tracing::info!(keys = auth.key_count(), file = ?config.auth.keys_file, "API keys required.");
    } else {
        tracing::warn!(
            "No API key configured (auth.keys_file, PROMPTLOG_API_KEYS): accepting every request as project \"default\"."
        );
    }
    let key_watcher = auth.watch(config.auth.reload_interval, shutdown.clone());
    let store = Store::new(&config.clickhouse);
    // Stops on `shutdown`; never waited for, since a stats row lost at exit costs nothing.
    crate::selfstats::spawn_writer(store.clone(), stats.clone(), crate::selfstats::STATS_INTERVAL, shutdown.clone());
    // Migrate before listening so tables exist once clients see the collector up; if ClickHouse is
    // down, start anyway (degraded) and keep trying in the background.
    let migrations = match schema::migrate(&store).await {
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "ClickHouse is not ready; starting degraded and retrying migrations.");
            stats.set_clickhouse_up(false);
            Some(tokio::spawn(migrate_until_done(store.clone(), stats.clone(), shutdown.clone())))
        }
    };
    let (spool, replay) = open_spool(&config.data_dir.join(SPOOL_DIR), config.spool.options()).await?;
    let limits = Limits { max_attribute_value_bytes: config.receivers.max_attribute_value_bytes };
    // Every step (project stamping, then redaction and pricing) is added to this list, and nowhere else.
    let ingestor = Ingestor::new(limits, Processors::new().then(StampProject));
    let parts = pipeline::Parts { store, stats: stats.clone(), spool, replay, ingestor };
    let (ingest, pipeline) = pipeline::start(&config, parts);
    let receiver = Receiver::new(ingest, auth, config.receivers.max_request_bytes, config.receivers.max_inflight_bytes);
    tracing::info!(
        grpc = %listeners.grpc.local_addr()?, http = %listeners.http.local_addr()?,
        clickhouse = %config.clickhouse.url, database = %config.clickhouse.database,
        "promptlog is serving OTLP."
    );
    let grpc = tokio::spawn(grpc::serve(listeners.grpc, receiver.clone(), shutdown.clone()));
    let http = tokio::spawn(http::serve(listeners.http, receiver, stats, shutdown.clone()));
    let aborts = [grpc.abort_handle(), http.abort_handle()];
    // The receivers own the last `Ingest` handles: once both return, the pipeline sees its input close.
    let receivers = async { tokio::join!(grpc, http) };
    tokio::pin!(receivers);
    let stopped_early = tokio::select! {
        done = &mut receivers => Some(done),
        _ = shutdown.cancelled() => None,
    };
    // One deadline for the whole shutdown, counted from the signal: whatever is not written by then
    // stays in the spool for the next start.
    let stop_at = Instant::now() + config.pipeline.shutdown_timeout;
    let (grpc, http) = match stopped_early {
        Some(done) => done,
        None => match tokio::time::timeout_at(stop_at, &mut receivers).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!("Receivers still busy at the shutdown deadline; closing their connections.");
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
                receivers.await
            }
        },
    };
    shutdown.cancel();
    tracing::info!("Receivers stopped; flushing the pipeline.");
    pipeline.shutdown(stop_at).await;
    if let Some(migrations) = migrations {
        migrations.abort();
    }
    if let Some(watcher) = key_watcher {
        watcher.abort();
    }
    for result in [grpc.map(|r| r.map_err(ServeError::from)), http.map(|r| r.map_err(ServeError::from))] {
        match result {
            Ok(served) => served?,
            Err(e) if e.is_cancelled() => {}
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    tracing::info!("promptlog stopped.");
    Ok(())
}

/// Opens (and recovers) the spool off the async threads; returns the ids of the records still to
/// write. Recovery reads every unacked payload once (see the README's known gaps); they are dropped
/// here and read back one by one when the pipeline has room.
async fn open_spool(dir: &Path, options: SpoolOptions) -> Result<(Spool, Vec<RecordId>), SpoolError> {
    let dir = dir.to_owned();
    let (spool, replay) = blocking(move || Spool::open(&dir, options)).await?;
    Ok((spool, replay.into_iter().map(|r| r.id).collect()))
}

/// Applies migrations, retrying while ClickHouse is unreachable (inserts retry meanwhile, and
/// `/health` reports `degraded`).
async fn migrate_until_done(store: Store, stats: Arc<Stats>, shutdown: CancellationToken) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match schema::migrate(&store).await {
            Ok(_) => {
                stats.set_clickhouse_up(true);
                tracing::info!("Migrations applied; ClickHouse is back.");
                return;
            }
            Err(e) => {
                stats.set_clickhouse_up(false);
                let delay = retry::backoff(attempt, 1.0);
                tracing::warn!(error = %e, ?delay, "Cannot apply migrations yet; retrying.");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

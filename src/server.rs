//! `serve`: wires config → store → pipeline → receivers, and shuts them down in order.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::normalize::Limits;
use crate::pipeline;
use crate::receiver::{Receiver, grpc, http};
use crate::storage::clickhouse::{Store, retry, schema};
use crate::telemetry::Stats;

/// How long shutdown waits for in-flight batches to reach ClickHouse.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

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
}

/// Runs the collector until `shutdown` is cancelled, then stops accepting, flushes and returns.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), ServeError> {
    let stats = Stats::new();
    let store = Store::new(&config.clickhouse);
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
    let (ingest, pipeline) = pipeline::start(&config.pipeline, store, stats.clone(), config.data_dir.clone());
    let limits = Limits { max_attribute_value_bytes: config.receivers.max_attribute_value_bytes };
    let receiver = Receiver::new(ingest, limits, config.receivers.max_request_bytes);
    tracing::info!(
        grpc = %listeners.grpc.local_addr()?, http = %listeners.http.local_addr()?,
        clickhouse = %config.clickhouse.url, database = %config.clickhouse.database,
        "promptlog is serving OTLP."
    );
    let grpc = tokio::spawn(grpc::serve(listeners.grpc, receiver.clone(), shutdown.clone()));
    let http = tokio::spawn(http::serve(listeners.http, receiver, stats, shutdown.clone()));
    // The receivers own the last `Ingest` handles: once both return, the pipeline sees its input close.
    let (grpc, http) = tokio::join!(grpc, http);
    shutdown.cancel();
    tracing::info!("Receivers stopped; flushing the pipeline.");
    pipeline.shutdown(SHUTDOWN_DEADLINE).await;
    if let Some(migrations) = migrations {
        migrations.abort();
    }
    grpc.expect("gRPC server task panicked")?;
    http.expect("HTTP server task panicked")?;
    tracing::info!("promptlog stopped.");
    Ok(())
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

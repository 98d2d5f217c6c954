//! `serve`: wires config → store → spool → pipeline → receivers, and shuts them down in order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use promptlog_ingest::process::price::Pricer;
use promptlog_ingest::process::project::StampProject;
use promptlog_ingest::process::redact::Redactor;
use promptlog_ingest::seal::{self, Purpose};
use promptlog_ingest::{Ingestor, KeyRing, Limits, Processors};
use promptlog_spool::{RecordId, Spool, SpoolError, SpoolOptions};

use crate::auth::{Auth, KeyFileError as ApiKeyFileError};
use crate::config::{Config, ConfigError, KeyFileError};
use crate::pipeline;
use crate::receiver::{Receiver, grpc, http};
use crate::runtime::blocking;
use crate::storage::clickhouse::{Store, retry, schema};
use crate::telemetry::Stats;
use crate::tls::{Protocol, ServerTls, TlsError, spawn_reloader};

/// The spool's directory inside `data_dir`.
const SPOOL_DIR: &str = "spool";

/// Already-bound listeners (tests bind port 0).
pub struct Listeners {
    /// OTLP/gRPC.
    pub grpc: TcpListener,
    /// OTLP/HTTP and `/health`.
    pub http: TcpListener,
    /// The call explorer (`ui.endpoint`); `None`: not served.
    pub ui: Option<TcpListener>,
}

impl Listeners {
    /// Binds the configured addresses (the explorer's only when `ui.enabled`).
    pub async fn bind(config: &Config) -> std::io::Result<Listeners> {
        Ok(Listeners {
            grpc: TcpListener::bind(&config.receivers.grpc_endpoint).await?,
            http: TcpListener::bind(&config.receivers.http_endpoint).await?,
            ui: match config.ui.enabled {
                // Named, since `main` reports every bind failure as the OTLP listeners'.
                true => Some(TcpListener::bind(&config.ui.endpoint).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("explorer (ui.endpoint {}): {e}", config.ui.endpoint))
                })?),
                false => None,
            },
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
    /// The explorer's server failed.
    #[error("explorer: {0}")]
    Ui(std::io::Error),
    /// The explorer's ClickHouse reader cannot be built.
    #[error("explorer: {0}")]
    Explorer(#[from] crate::explore::ExploreError),
    /// The spool could not be opened (locked by another instance, unreadable, or corrupt).
    #[error("spool: {0}")]
    Spool(#[from] SpoolError),
    /// The spool encryption key file is missing or invalid.
    #[error("{0}")]
    Keys(#[from] KeyFileError),
    /// A TLS file of the receivers or of ClickHouse cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    /// A part of the configuration only checked at start-up (the redaction hash key file) is unusable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The API key file could not be loaded.
    #[error("API keys: {0}")]
    Auth(#[from] ApiKeyFileError),
}

/// Runs the collector until `shutdown` is cancelled, then stops accepting, flushes and returns.
pub async fn serve(config: Config, listeners: Listeners, shutdown: CancellationToken) -> Result<(), ServeError> {
    // First: a bad key file refuses the start before anything is touched.
    let keys = config.spool.encryption_keys()?;
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
    let store = Store::try_new(&config.clickhouse)?;
    // The explorer's read client, built before anything starts so a bad one refuses the start.
    let ui = match listeners.ui {
        Some(listener) if config.ui.enabled => Some((listener, crate::explore::Reader::new(&config)?)),
        _ => None,
    };
    let tls = ServerTls::load(&config.receivers.tls, stats.clone())?;
    if let Some(tls) = &tls {
        spawn_reloader(tls.clone(), config.receivers.tls.reload_interval, shutdown.clone());
    }
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
    let (spool, replay) = open_spool(&config.data_dir.join(SPOOL_DIR), config.spool.options(), keys.clone()).await?;
    let limits = Limits { max_attribute_value_bytes: config.receivers.max_attribute_value_bytes };
    // Every step (project stamping, redaction, pricing) is added in `processors`, and nowhere else.
    let (processors, pricer) = processors(&config, &stats)?;
    let price_watcher = match (&pricer, &config.pricing.data_file) {
        (Some(pricer), Some(file)) => Some(crate::pricing::spawn_reloader(
            pricer.data().clone(),
            file.clone(),
            config.pricing.reload_interval,
            stats.clone(),
            shutdown.clone(),
        )),
        _ => None,
    };
    let mut ingestor = Ingestor::new(limits, processors);
    if let Some(keys) = keys {
        tracing::info!(current_key = keys.current(), key_ids = ?keys.ids(), "Spool encryption at rest is on.");
        ingestor = ingestor.sealing_with(keys);
    }
    let parts = pipeline::Parts { store, stats: stats.clone(), spool, replay, ingestor };
    let (ingest, pipeline) = pipeline::start(&config, parts);
    let receiver = Receiver::new(ingest, auth, config.receivers.max_request_bytes, config.receivers.max_inflight_bytes);
    let tls_mode = match &tls {
        None => "off",
        Some(t) if t.mutual() => "mtls",
        Some(_) => "on",
    };
    tracing::info!(
        grpc = %listeners.grpc.local_addr()?, http = %listeners.http.local_addr()?, tls = tls_mode,
        clickhouse = %config.clickhouse.url, database = %config.clickhouse.database,
        "promptlog is serving OTLP."
    );
    let acceptor = |p| tls.as_ref().map(|t| t.acceptor(p));
    let ui = spawn_ui(&config, ui, &receiver, shutdown.clone())?;
    let grpc = tokio::spawn(grpc::serve(listeners.grpc, receiver.clone(), acceptor(Protocol::Grpc), shutdown.clone()));
    let http = tokio::spawn(http::serve(listeners.http, receiver, stats, acceptor(Protocol::Http), shutdown.clone()));
    let aborts = [grpc.abort_handle(), http.abort_handle(), ui.abort_handle()];
    // The receivers (and the explorer, which submits thumbs) own the last `Ingest` handles: once all
    // return, the pipeline sees its input close.
    let receivers = async { tokio::join!(grpc, http, ui) };
    tokio::pin!(receivers);
    let stopped_early = tokio::select! {
        done = &mut receivers => Some(done),
        _ = shutdown.cancelled() => None,
    };
    // One deadline for the whole shutdown, counted from the signal: whatever is not written by then
    // stays in the spool for the next start.
    let stop_at = Instant::now() + config.pipeline.shutdown_timeout;
    let (grpc, http, ui) = match stopped_early {
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
    for watcher in [key_watcher, price_watcher].into_iter().flatten() {
        watcher.abort();
    }
    let results = [
        grpc.map(|r| r.map_err(ServeError::from)),
        http.map(|r| r.map_err(ServeError::from)),
        ui.map(|r| r.map_err(ServeError::Ui)),
    ];
    for result in results {
        match result {
            Ok(served) => served?,
            Err(e) if e.is_cancelled() => {}
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    tracing::info!("promptlog stopped.");
    Ok(())
}

/// Starts the explorer on its listener with its reader, when it is served; otherwise a task that is
/// already done.
fn spawn_ui(
    config: &Config,
    ui: Option<(TcpListener, crate::explore::Reader)>,
    receiver: &Receiver,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>, ServeError> {
    let Some((listener, reader)) = ui else {
        return Ok(tokio::spawn(async { Ok(()) }));
    };
    tracing::info!(url = %format!("http://{}", listener.local_addr().map_err(ServeError::Ui)?), "Call explorer.");
    let state = crate::ui::UiState {
        reader,
        auth: receiver.auth.clone(),
        receiver: receiver.clone(),
        grafana_url: config.ui.grafana_url.clone(),
    };
    Ok(tokio::spawn(crate::ui::serve(listener, state, shutdown)))
}

/// The processors, in order: project stamping (rows, from the request's key), redaction (the
/// request, before the spool and again on replay) and pricing (rows; returned too, for its data
/// file watcher).
fn processors(config: &Config, stats: &Stats) -> Result<(Processors, Option<Pricer>), ConfigError> {
    // The project comes only from the request's key (its context), never from the data.
    let mut processors = Processors::new().then(StampProject);
    if config.redaction.enabled() {
        let spec = config.redaction.spec()?;
        let rules: Vec<String> = spec.rules.iter().map(|r| format!("{}:{}", r.name, r.action.name())).collect();
        let redactor = Redactor::new(spec).map_err(|e| ConfigError::Invalid {
            key: "redaction",
            value: String::new(),
            reason: e.to_string(),
        })?;
        tracing::info!(?rules, content_capture = %config.redaction.content_capture, "PII redaction is on.");
        stats.set_redaction_counters(redactor.counters());
        processors = processors.then(redactor);
    }
    if !config.pricing.enabled {
        tracing::info!("Pricing is off: CostUsd is only what clients send.");
        return Ok((processors, None));
    }
    // A bad data file refuses the start (on reload it is only logged).
    let pricer = config.pricing.pricer()?;
    tracing::info!(
        data = ?config.pricing.data_file.as_deref().map_or("bundled".into(), |p| p.display().to_string()),
        overrides = config.pricing.overrides.len(),
        "Pricing calls at ingest."
    );
    stats.set_unpriced(pricer.unpriced());
    Ok((processors.then(pricer.clone()), Some(pricer)))
}

/// Opens (and recovers) the spool off the async threads; returns the ids of the records still to
/// write. Recovery reads every unacked payload once (see the README's known gaps); they are checked
/// against the encryption keys, dropped here and read back one by one when the pipeline has room.
async fn open_spool(
    dir: &Path,
    options: SpoolOptions,
    keys: Option<KeyRing>,
) -> Result<(Spool, Vec<RecordId>), SpoolError> {
    let dir = dir.to_owned();
    let (spool, replay) = blocking(move || Spool::open(&dir, options)).await?;
    report_sealing(replay.iter().map(|r| r.payload.as_ref()), keys.as_ref());
    Ok((spool, replay.into_iter().map(|r| r.id).collect()))
}

/// Spooled records by how they are sealed.
#[derive(Debug, Default, PartialEq)]
struct SealCensus {
    /// Sealed with a key the ring does not hold (or with no ring at all): records per key id.
    missing: BTreeMap<seal::KeyId, u64>,
    /// Plaintext (written while encryption was off).
    plaintext: u64,
}

fn seal_census<'a>(records: impl Iterator<Item = &'a [u8]>, keys: Option<&KeyRing>) -> SealCensus {
    let mut census = SealCensus::default();
    for record in records {
        match seal::envelope_key(Purpose::SpoolRecord, record) {
            Ok(id) if !keys.is_some_and(|k| k.holds(id)) => *census.missing.entry(id).or_default() += 1,
            Ok(_) => {}
            Err(_) if !seal::is_sealed(record) => census.plaintext += 1,
            Err(_) => {} // a damaged envelope: reported when read
        }
    }
    census
}

/// Says at start-up, once, which spooled records the keys cannot open (each is also reported and
/// counted `unreadable` when its turn comes) and how many are plaintext from before encryption.
fn report_sealing<'a>(records: impl Iterator<Item = &'a [u8]>, keys: Option<&KeyRing>) {
    let SealCensus { missing, plaintext } = seal_census(records, keys);
    if !missing.is_empty() {
        tracing::error!(
            records_by_key_id = ?missing,
            "Spooled records are sealed with keys the encryption key file does not hold (or encryption is off):              they cannot be read, and are dropped and counted as unreadable. Keep old keys in the key file \
             until no record sealed with them is left."
        );
    }
    if keys.is_some() && plaintext > 0 {
        tracing::info!(
            records = plaintext,
            "Spooled records written before encryption was on are plaintext; they are delivered as usual."
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_explorer_listener_is_bound_only_when_the_explorer_is_on() {
        let mut config = Config::default();
        config.receivers.grpc_endpoint = "127.0.0.1:0".into();
        config.receivers.http_endpoint = "127.0.0.1:0".into();
        config.ui.endpoint = "127.0.0.1:0".into();
        assert!(Listeners::bind(&config).await.unwrap().ui.is_some());
        config.ui.enabled = false;
        assert!(Listeners::bind(&config).await.unwrap().ui.is_none());
        // A taken port is refused naming the explorer's key, not taken for an OTLP listener's.
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.ui = crate::config::UiConfig { endpoint: taken.local_addr().unwrap().to_string(), ..Default::default() };
        let err = Listeners::bind(&config).await.err().expect("the port is taken").to_string();
        assert!(err.contains("ui.endpoint"), "{err}");
    }

    #[test]
    fn the_start_up_census_finds_records_no_key_opens_and_plaintext_ones() {
        let ring = |current: u32, ids: &[u32]| KeyRing::new(current, ids.iter().map(|&i| (i, [i as u8; 32]))).unwrap();
        let (k1, k3) = (ring(1, &[1]).seal(Purpose::SpoolRecord, b"r"), ring(3, &[3]).seal(Purpose::SpoolRecord, b"r"));
        let plain = promptlog_ingest::record::encode(
            &promptlog_ingest::RequestContext::new(promptlog_ingest::Signal::Traces, 0),
            b"",
        );
        let records = [&k1[..], &k3[..], &k3[..], &plain[..], &[0xFE, 9][..]];
        let rotated = ring(2, &[1, 2]);
        let census = seal_census(records.iter().copied(), Some(&rotated));
        assert_eq!(census, SealCensus { missing: BTreeMap::from([(3, 2)]), plaintext: 1 });
        let off = seal_census(records.iter().copied(), None);
        assert_eq!(off, SealCensus { missing: BTreeMap::from([(1, 1), (3, 2)]), plaintext: 1 });
    }
}

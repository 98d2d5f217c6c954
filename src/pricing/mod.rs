//! Cost at ingest, the collector's side: the data file watcher (the pricing step itself is
//! `promptlog_ingest::process::price`) and `promptlog reprice`.

pub mod reprice;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use promptlog_ingest::process::price::PriceData;

use crate::telemetry::Stats;

/// The file's modification time and length (a change in either is a change).
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Checks `path` every `interval` and swaps it in when its modification time or size changed; a file
/// that cannot be loaded is logged (once per change) and counted, and the data in use stays.
pub fn spawn_reloader(
    data: PriceData,
    path: PathBuf,
    interval: Duration,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = stamp(&path);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let (data, file) = (data.clone(), path.clone());
            match crate::runtime::blocking(move || data.load(&file)).await {
                Ok(()) => {
                    stats.pricing.reloads.fetch_add(1, Relaxed);
                    tracing::info!(file = %path.display(), "Price data reloaded; new calls are priced with it.");
                }
                Err(e) => {
                    stats.pricing.reload_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "Cannot reload the price data file; still pricing with the previous data.");
                }
            }
        }
    })
}

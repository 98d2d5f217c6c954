//! Re-reading the certificate, key and client CA: every `reload_interval`, and on SIGHUP.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::ServerTls;

/// Re-reads the TLS files every `interval` (never when zero) and on SIGHUP, until `shutdown`. A
/// change that loads is used by new connections from then on; one that does not is logged once as
/// a warning (and counted), and the previous certificate stays in use. The SIGHUP handler is
/// installed before this returns (so a SIGHUP right after start-up cannot kill the process).
pub fn spawn_reloader(tls: ServerTls, interval: Duration, shutdown: CancellationToken) -> JoinHandle<()> {
    let mut hangup = hangup();
    tokio::spawn(async move {
        let mut tick = (!interval.is_zero()).then(|| {
            let mut t = tokio::time::interval(interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut last_error: Option<String> = None;
        loop {
            let trigger = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = async { tick.as_mut().expect("guarded").tick().await }, if tick.is_some() => "timer",
                Some(()) = async { hangup.as_mut()?.recv().await }, if hangup.is_some() => "SIGHUP",
            };
            let counters = &tls.0.stats.tls;
            match tls.reload() {
                Ok(true) => {
                    counters.reloads.fetch_add(1, Relaxed);
                    last_error = None;
                    tracing::info!(
                        trigger,
                        "TLS files reloaded (certificate, key, client CA); new connections use them."
                    );
                }
                Ok(false) => tracing::trace!(trigger, "TLS files unchanged."),
                Err(e) => {
                    let message = e.to_string();
                    if last_error.as_ref() != Some(&message) {
                        counters.reload_failures.fetch_add(1, Relaxed);
                        tracing::warn!(trigger, error = %message, "Cannot reload TLS files; still serving the previous certificate.");
                        last_error = Some(message);
                    }
                }
            }
        }
    })
}

#[cfg(unix)]
fn hangup() -> Option<tokio::signal::unix::Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGHUP; TLS files are re-read on the timer only.");
            None
        }
    }
}

#[cfg(not(unix))]
struct NoSignal;

#[cfg(not(unix))]
impl NoSignal {
    async fn recv(&mut self) -> Option<()> {
        None
    }
}

#[cfg(not(unix))]
fn hangup() -> Option<NoSignal> {
    None
}

//! Small runtime helpers shared by the receivers, the pipeline and `serve`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Runs CPU-bound or blocking work off the async worker threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        // A panic in normalisation is a bug; surface it rather than answer as if nothing happened.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Nanoseconds since the epoch, saturating.
pub(crate) fn now_ns() -> i64 {
    let ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    i64::try_from(ns).unwrap_or(i64::MAX)
}

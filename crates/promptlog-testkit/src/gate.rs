//! Tests that must run alone in the test process, beside tests that may share it.
//!
//! All suites are one test binary, so the harness runs tests of different suites at the same time.
//! A test that starts and kills processes and checks timings (the fault suite) takes [`exclusive`];
//! anything that runs a collector takes [`shared`] (the harness's `Stack` holds one). Shared holders
//! never wait for a queued exclusive one (a test may hold two stacks at once), so the exclusive tests
//! run once no shared holder is left, one at a time.

use std::sync::Mutex;

use tokio::sync::Notify;

/// (shared holders, whether an exclusive holder runs).
static STATE: Mutex<(usize, bool)> = Mutex::new((0, false));
static CHANGED: Notify = Notify::const_new();

/// Held while a test shares the process with others.
#[must_use]
pub struct Shared(());

/// Held while a test runs alone.
#[must_use]
pub struct Exclusive(());

/// Waits until `enter` accepts the state (and updates it).
async fn enter(mut enter: impl FnMut(&mut (usize, bool)) -> bool) {
    loop {
        let mut notified = std::pin::pin!(CHANGED.notified());
        notified.as_mut().enable();
        if enter(&mut STATE.lock().unwrap_or_else(|e| e.into_inner())) {
            return;
        }
        notified.await;
    }
}

fn leave(leave: impl FnOnce(&mut (usize, bool))) {
    leave(&mut STATE.lock().unwrap_or_else(|e| e.into_inner()));
    CHANGED.notify_waiters();
}

/// Waits while an exclusive test runs; then shares the process until the guard drops.
pub async fn shared() -> Shared {
    enter(|s| {
        let ok = !s.1;
        if ok {
            s.0 += 1;
        }
        ok
    })
    .await;
    Shared(())
}

/// Waits until no other test holds the process; then holds it alone until the guard drops.
pub async fn exclusive() -> Exclusive {
    enter(|s| {
        let ok = s.0 == 0 && !s.1;
        if ok {
            s.1 = true;
        }
        ok
    })
    .await;
    Exclusive(())
}

impl Drop for Shared {
    fn drop(&mut self) {
        leave(|s| s.0 -= 1);
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        leave(|s| s.1 = false);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn exclusive_waits_for_every_shared_holder_and_shared_ones_never_wait_for_it() {
        let (a, b) = (shared().await, shared().await);
        let mut alone = tokio::spawn(exclusive());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!alone.is_finished(), "exclusive while shared holders run");
        // A queued exclusive holder does not block a new shared one (a test may hold two stacks).
        let c = tokio::time::timeout(Duration::from_secs(1), shared()).await.expect("shared beside a queued exclusive");
        drop((a, b));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!alone.is_finished(), "exclusive while one shared holder runs");
        drop(c);
        let guard =
            tokio::time::timeout(Duration::from_secs(1), &mut alone).await.expect("exclusive once alone").unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), shared()).await.is_err(), "shared while exclusive");
        drop(guard);
        drop(tokio::time::timeout(Duration::from_secs(1), shared()).await.expect("shared again"));
    }
}

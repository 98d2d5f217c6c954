//! A memory budget for requests being decoded and normalised: each request reserves an estimate of
//! what its decoded form costs before the work starts, and is refused with UNAVAILABLE / 503 +
//! Retry-After when the budget is spent, instead of the collector growing until it is killed.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::ReceiveError;

/// Decoded OTLP (prost structs, attribute strings, rows) takes several times its wire size: a
/// 16 MB request of small attributes peaked near 13× in the hostile-input suite; 8× is the
/// typical case, and what each request reserves.
pub const EXPANSION: usize = 8;

/// Budget accounting unit: permits are KiB, so a u32 semaphore covers terabytes.
const UNIT: usize = 1024;

/// The shared budget. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
}

/// A request's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Reservation(#[allow(dead_code)] OwnedSemaphorePermit); // Held only for its Drop.

impl MemoryBudget {
    /// A budget of `max_bytes` for all requests in flight.
    pub fn new(max_bytes: usize) -> Self {
        let total_units =
            u32::try_from((max_bytes / UNIT).max(1)).unwrap_or(u32::MAX).min(Semaphore::MAX_PERMITS as u32);
        Self { permits: Arc::new(Semaphore::new(total_units as usize)), total_units }
    }

    /// Reserves room for a request whose decompressed body is `body_bytes` long. A request bigger
    /// than the whole budget reserves all of it, so it runs alone rather than never.
    pub fn try_reserve(&self, body_bytes: usize) -> Result<Reservation, ReceiveError> {
        self.try_take(body_bytes.saturating_mul(EXPANSION))
            .ok_or(ReceiveError::Overloaded { budget: self.total_units as usize * UNIT })
    }

    /// Reserves `bytes` if there is room now (all of the budget for more than all of it).
    pub fn try_take(&self, bytes: usize) -> Option<Reservation> {
        self.permits.clone().try_acquire_many_owned(self.units(bytes)).ok().map(Reservation)
    }

    /// Reserves `bytes`, waiting until there is room.
    pub async fn take(&self, bytes: usize) -> Reservation {
        let permit = self.permits.clone().acquire_many_owned(self.units(bytes)).await;
        Reservation(permit.expect("the budget's semaphore is never closed"))
    }

    fn units(&self, bytes: usize) -> u32 {
        u32::try_from((bytes / UNIT).max(1)).unwrap_or(u32::MAX).min(self.total_units)
    }

    /// Bytes currently reserved.
    #[cfg(test)]
    fn in_use(&self) -> usize {
        (self.total_units as usize - self.permits.available_permits()) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let budget = MemoryBudget::new(64 * UNIT * EXPANSION);
        let a = budget.try_reserve(40 * UNIT).unwrap();
        assert_eq!(budget.in_use(), 40 * UNIT * EXPANSION);
        assert!(matches!(budget.try_reserve(30 * UNIT), Err(ReceiveError::Overloaded { .. })));
        drop(a);
        assert_eq!(budget.in_use(), 0);
        // Larger than everything: takes the whole budget instead of waiting forever.
        let huge = budget.try_reserve(10_000 * UNIT).unwrap();
        assert_eq!(budget.in_use(), 64 * UNIT * EXPANSION);
        assert!(budget.try_reserve(1).is_err());
        drop(huge);
        assert!(budget.try_reserve(1).is_ok());
    }

    #[tokio::test]
    async fn take_waits_for_room() {
        let budget = MemoryBudget::new(10 * UNIT);
        let first = budget.take(8 * UNIT).await;
        assert!(budget.try_take(4 * UNIT).is_none());
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.take(4 * UNIT).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        let second = waiting.await.unwrap();
        assert_eq!(budget.in_use(), 4 * UNIT);
        drop(second);
        assert_eq!(budget.in_use(), 0);
    }
}

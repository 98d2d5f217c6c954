//! A synchronous batcher: rows go in, a batch comes out when it is full or old enough. It has no
//! runtime and no timer; the pipeline loop asks [`Batcher::should_flush`] on its own tick.

use std::time::{Duration, Instant};

/// Rows waiting to be written to one table.
#[derive(Debug)]
pub struct Batcher<T> {
    rows: Vec<T>,
    max_rows: usize,
    max_delay: Duration,
    oldest: Option<Instant>,
}

impl<T> Batcher<T> {
    /// A batcher that flushes at `max_rows` rows or when its oldest row is `max_delay` old.
    pub fn new(max_rows: usize, max_delay: Duration) -> Self {
        Self { rows: Vec::new(), max_rows: max_rows.max(1), max_delay, oldest: None }
    }

    /// Adds rows; returns full batches (each at most `max_rows` long) ready to write now.
    pub fn offer(&mut self, rows: impl IntoIterator<Item = T>, now: Instant) -> Vec<Vec<T>> {
        let mut full = Vec::new();
        for row in rows {
            if self.rows.is_empty() {
                self.oldest = Some(now);
            }
            self.rows.push(row);
            if self.rows.len() >= self.max_rows {
                full.push(self.take());
            }
        }
        full
    }

    /// True when the oldest row has waited `max_delay`.
    pub fn should_flush(&self, now: Instant) -> bool {
        self.oldest.is_some_and(|t| now.duration_since(t) >= self.max_delay)
    }

    /// Takes whatever is buffered.
    pub fn take(&mut self) -> Vec<T> {
        self.oldest = None;
        std::mem::take(&mut self.rows)
    }

    /// Rows buffered.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_secs(1);

    #[test]
    fn flushes_by_size_in_max_sized_chunks() {
        let mut b = Batcher::new(3, DELAY);
        let now = Instant::now();
        let full = b.offer(0..7, now);
        assert_eq!(full, vec![vec![0, 1, 2], vec![3, 4, 5]]);
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn flushes_by_age_of_the_oldest_row() {
        let mut b = Batcher::new(100, DELAY);
        let t0 = Instant::now();
        assert!(!b.should_flush(t0));
        b.offer([1], t0);
        b.offer([2], t0 + Duration::from_millis(900));
        assert!(!b.should_flush(t0 + Duration::from_millis(999)));
        assert!(b.should_flush(t0 + DELAY));
        assert_eq!(b.take(), vec![1, 2]);
        assert!(!b.should_flush(t0 + DELAY * 5), "empty batcher never asks to flush");
    }

    #[test]
    fn age_restarts_after_a_size_flush() {
        let mut b = Batcher::new(2, DELAY);
        let t0 = Instant::now();
        assert_eq!(b.offer([1, 2], t0).len(), 1);
        b.offer([3], t0 + DELAY);
        assert!(!b.should_flush(t0 + DELAY + Duration::from_millis(10)));
    }
}

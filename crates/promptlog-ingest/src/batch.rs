//! A synchronous batcher: rows go in, a batch comes out when it is full or old enough. It has no
//! runtime and no timer; the pipeline loop asks [`Batcher::should_flush`] on its own tick.

use std::time::{Duration, Instant};

/// Rows waiting to be written to one table.
#[derive(Debug)]
pub struct Batcher<T> {
    rows: Vec<T>,
    max_rows: usize,
    /// Estimated bytes a batch may reach ([`Batcher::max_bytes`]), and what the rows held take.
    max_bytes: usize,
    bytes: usize,
    size: fn(&T) -> usize,
    max_delay: Duration,
    oldest: Option<Instant>,
    /// Rows in the last batch taken: the next batch starts with room for as many, so a batch of
    /// big row structs is not grown by repeated reallocation (each a copy into fresh, zeroed pages).
    last_len: usize,
}

impl<T> Batcher<T> {
    /// A batcher that flushes at `max_rows` rows or when its oldest row is `max_delay` old.
    pub fn new(max_rows: usize, max_delay: Duration) -> Self {
        let max_rows = max_rows.max(1);
        Self {
            rows: Vec::new(),
            max_rows,
            max_bytes: usize::MAX,
            bytes: 0,
            size: |_| 0,
            max_delay,
            oldest: None,
            last_len: 0,
        }
    }

    /// Also flushes once the rows held reach `max_bytes`, each row counting `size(row)` (an estimate
    /// of its heap bytes): rows with long prompts make big batches long before `max_rows`.
    pub fn max_bytes(mut self, max_bytes: usize, size: fn(&T) -> usize) -> Self {
        (self.max_bytes, self.size) = (max_bytes.max(1), size);
        self
    }

    /// Adds rows; returns full batches (each at most `max_rows` long, and at most `max_bytes` unless
    /// one row alone is bigger) ready to write now.
    pub fn offer(&mut self, rows: impl IntoIterator<Item = T>, now: Instant) -> Vec<Vec<T>> {
        let mut full = Vec::new();
        for row in rows {
            let size = (self.size)(&row);
            if !self.rows.is_empty() && self.bytes + size > self.max_bytes {
                full.push(self.take());
            }
            if self.rows.is_empty() {
                self.oldest = Some(now);
                self.rows.reserve(self.last_len);
            }
            self.bytes += size;
            self.rows.push(row);
            if self.rows.len() >= self.max_rows || self.bytes >= self.max_bytes {
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
        self.bytes = 0;
        self.last_len = self.rows.len().min(self.max_rows);
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
    fn flushes_by_estimated_bytes_before_the_row_count() {
        // Each row counts its own value in bytes; batches stay at or under 10 bytes.
        let mut b = Batcher::new(100, DELAY).max_bytes(10, |n: &usize| *n);
        let now = Instant::now();
        let full = b.offer([4, 4, 4, 6, 3, 20, 1], now);
        // 4+4 (+4 would pass 10), 4+6 reaches 10, 3 (+20 would pass), 20 alone is over.
        assert_eq!(full, vec![vec![4, 4], vec![4, 6], vec![3], vec![20]]);
        assert_eq!((b.len(), b.take()), (1, vec![1]));
        // Taking resets the count: a fresh batch may hold 10 bytes again.
        assert!(b.offer([5, 4], now).is_empty());
    }

    #[test]
    fn a_new_batch_starts_with_room_for_as_many_rows_as_the_last() {
        let mut b = Batcher::new(1000, DELAY);
        let now = Instant::now();
        b.offer(0..300, now);
        assert_eq!(b.take().len(), 300);
        b.offer([1], now);
        assert!(b.rows.capacity() >= 300, "capacity {}", b.rows.capacity());
        // An empty take (a timer flush with nothing buffered) forgets the hint.
        b.take();
        b.take();
        b.offer([1], now);
        assert!(b.rows.capacity() < 300, "capacity {}", b.rows.capacity());
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

//! [`Tail`]: the calls that land after it started, each once.
//!
//! A call's `Timestamp` is when it started, not when it was written: the collector holds a call for
//! the join window and batches it, and a spool replay writes calls late. So "rows after the newest
//! one seen" would skip calls that land late with an earlier start. Instead every poll reads the
//! calls that started in the last `lookback` before the newest start seen (in ascending key order,
//! paged, so a burst larger than a page is read whole) and drops the ones already shown, remembered
//! by key for as long as they are inside that window. A call that lands more than `lookback` after
//! the newest call seen started is not shown (`promptlog calls` still lists it).

use std::collections::HashSet;
use std::time::Duration;

use super::filter::{CallFilter, Cursor};
use super::model::CallSummary;
use super::{ExploreError, Reader};

/// How far back each poll looks by default (well beyond the default join window and batch delay).
pub const DEFAULT_TAIL_LOOKBACK: Duration = Duration::from_secs(300);
/// Calls read per query while catching up.
const TAIL_PAGE: u32 = 1_000;

/// New calls matching a filter, as they land. See the module docs.
#[derive(Debug)]
pub struct Tail {
    reader: Reader,
    filter: CallFilter,
    lookback_ns: i64,
    /// Keys of the calls inside the window already returned (or present at the start).
    seen: HashSet<(i64, String, String)>,
    /// The newest start seen (or the start time of the tail).
    newest_ns: i64,
    primed: bool,
}

fn now_ns() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}

impl Tail {
    /// A tail of the calls matching `filter` (its time range, limit and cursor are ignored) that
    /// land from now on; the calls already stored are not returned.
    pub fn new(reader: Reader, filter: CallFilter, lookback: Duration) -> Tail {
        let filter = CallFilter { since_ns: None, until_ns: None, limit: None, cursor: None, ..filter };
        let lookback_ns = i64::try_from(lookback.as_nanos()).unwrap_or(i64::MAX);
        Tail { reader, filter, lookback_ns, seen: HashSet::new(), newest_ns: now_ns(), primed: false }
    }

    /// The calls that landed since the last poll, oldest first. The first poll only records what is
    /// already there and returns nothing.
    pub async fn poll(&mut self) -> Result<Vec<CallSummary>, ExploreError> {
        let from = self.newest_ns.saturating_sub(self.lookback_ns);
        let window = CallFilter { since_ns: Some(from), ..self.filter.clone() };
        let mut fresh = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = self.reader.calls_ascending(&window, after.as_ref(), TAIL_PAGE).await?;
            let full = page.len() == TAIL_PAGE as usize;
            after = page.last().map(CallSummary::cursor);
            for call in page {
                if self.seen.insert((call.timestamp_ns, call.trace_id.clone(), call.span_id.clone())) {
                    fresh.push(call);
                }
            }
            if !full {
                break;
            }
        }
        if let Some(newest) = fresh.iter().map(|c| c.timestamp_ns).max() {
            self.newest_ns = self.newest_ns.max(newest);
        }
        // What starts before the next poll's window can never be returned again.
        let next_from = self.newest_ns.saturating_sub(self.lookback_ns);
        self.seen.retain(|(ts, _, _)| *ts >= next_from);
        if !self.primed {
            self.primed = true;
            return Ok(Vec::new());
        }
        Ok(fresh)
    }
}

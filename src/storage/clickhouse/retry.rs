//! Which ClickHouse failures are worth retrying, and how long to wait: pure functions, table-tested.

use std::time::Duration;

/// First retry delay.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Longest delay between attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What to do after a failed insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Transient (network, timeout, overload): try the same batch again later.
    Retryable,
    /// The batch itself is refused (type mismatch, unknown column, bad data): retrying cannot help.
    Permanent,
}

/// Classifies a ClickHouse exception code (`None` when the failure never reached the server, or the
/// response carried no code, which is treated as transient).
pub(crate) fn classify(code: Option<u32>) -> Retry {
    let Some(code) = code else { return Retry::Retryable };
    match code {
        // Data or schema errors: the same rows will always fail.
        6 | 16 | 17 | 20 | 26 | 27 | 32 | 33 | 38 | 41 | 42 | 44 | 47 | 49 | 53 | 62 | 69 | 70 | 72 | 73 | 76 | 111
        | 117 | 130 | 131 | 167 | 190 | 191 | 349 | 352 | 386 | 394 | 395 | 489 | 492 | 497 | 516 | 1001 => {
            Retry::Permanent
        }
        // Unknown table/database can be fixed by running migrations; keep retrying (and alerting).
        // TOO_MANY_PARTS (252), MEMORY_LIMIT_EXCEEDED (241), TIMEOUT_EXCEEDED (159), NETWORK (210),
        // TOO_MANY_SIMULTANEOUS_QUERIES (202), READONLY (164) and anything unknown are transient.
        _ => Retry::Retryable,
    }
}

/// Extracts `N` from a ClickHouse error text `Code: N. DB::Exception: ...`.
pub(crate) fn exception_code(message: &str) -> Option<u32> {
    let start = message.find("Code: ")? + "Code: ".len();
    let digits: String = message[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Capped exponential backoff with full jitter: attempt 1 waits up to 200 ms, doubling to 30 s.
/// `jitter` is a number in `[0, 1)` supplied by the caller so this stays deterministic in tests.
pub(crate) fn backoff(attempt: u32, jitter: f64) -> Duration {
    let exp = INITIAL_BACKOFF.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let capped = exp.min(MAX_BACKOFF);
    // Half fixed, half random: spreads retries of many collectors without ever waiting ~0.
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases = [
            (None, Retry::Retryable),
            (Some(53), Retry::Permanent),  // TYPE_MISMATCH
            (Some(16), Retry::Permanent),  // NO_SUCH_COLUMN_IN_TABLE
            (Some(117), Retry::Permanent), // INCORRECT_DATA
            (Some(252), Retry::Retryable), // TOO_MANY_PARTS
            (Some(241), Retry::Retryable), // MEMORY_LIMIT_EXCEEDED
            (Some(159), Retry::Retryable), // TIMEOUT_EXCEEDED
            (Some(60), Retry::Retryable),  // UNKNOWN_TABLE: fixable by migrating
            (Some(999_999), Retry::Retryable),
        ];
        for (code, want) in cases {
            assert_eq!(classify(code), want, "{code:?}");
        }
    }

    #[test]
    fn exception_codes_are_parsed() {
        assert_eq!(exception_code("Code: 53. DB::Exception: Type mismatch"), Some(53));
        assert_eq!(exception_code("bad response: Code: 252. DB::Exception: Too many parts"), Some(252));
        assert_eq!(exception_code("connection refused"), None);
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1, 1.0), INITIAL_BACKOFF);
        assert_eq!(backoff(2, 1.0), INITIAL_BACKOFF * 2);
        assert_eq!(backoff(30, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(30, 0.0), MAX_BACKOFF / 2);
        assert!(backoff(3, 0.5) < backoff(3, 1.0));
    }
}

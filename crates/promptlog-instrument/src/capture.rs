//! Whether prompts and completions are recorded, and where: off unless
//! `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` says so, with the values of the official Python
//! instrumentation (`span_only`, `event_only`, `span_and_event`, case-insensitive).

use crate::Error;

/// The environment variable that turns content capture on.
pub const CAPTURE_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
/// The environment variable that sets [`Capture::max_bytes`].
pub const MAX_BYTES_ENV: &str = "PROMPTLOG_INSTRUMENT_CONTENT_MAX_BYTES";
/// Default cap on the text bytes of one content attribute (input messages, output messages, system
/// instructions each): large prompts must not make spans the exporter or collector refuses.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

/// Where captured content goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// No content at all (the default).
    #[default]
    None,
    /// JSON string attributes on the span.
    SpanOnly,
    /// Structured attributes on a `gen_ai.client.inference.operation.details` log event.
    EventOnly,
    /// Both.
    SpanAndEvent,
}

impl CaptureMode {
    /// True when content goes on the span.
    pub fn on_span(self) -> bool {
        matches!(self, CaptureMode::SpanOnly | CaptureMode::SpanAndEvent)
    }

    /// True when content goes on the details event.
    pub fn on_event(self) -> bool {
        matches!(self, CaptureMode::EventOnly | CaptureMode::SpanAndEvent)
    }

    /// Parses a value of [`CAPTURE_ENV`]. `false`/`no_content`/empty mean none; anything unknown is an
    /// error rather than silently capturing (or dropping) prompts.
    pub fn parse(value: &str) -> Result<CaptureMode, Error> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "false" | "no_content" | "none" => Ok(CaptureMode::None),
            "span_only" => Ok(CaptureMode::SpanOnly),
            "event_only" => Ok(CaptureMode::EventOnly),
            "span_and_event" => Ok(CaptureMode::SpanAndEvent),
            _ => Err(Error::Env {
                var: CAPTURE_ENV,
                value: value.to_owned(),
                expected: "span_only, event_only, span_and_event or no_content",
            }),
        }
    }
}

/// Content capture settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// Where content goes.
    pub mode: CaptureMode,
    /// Cap on the text bytes of each content attribute; longer text is cut and the span marked.
    pub max_bytes: usize,
}

impl Default for Capture {
    fn default() -> Capture {
        Capture { mode: CaptureMode::None, max_bytes: DEFAULT_MAX_BYTES }
    }
}

impl Capture {
    /// Reads [`CAPTURE_ENV`] and [`MAX_BYTES_ENV`]; an unparsable value is an error.
    pub fn from_env() -> Result<Capture, Error> {
        Capture::from_lookup(|k| std::env::var(k).ok())
    }

    /// [`Capture::from_env`] over any variable lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Capture, Error> {
        let mode = get(CAPTURE_ENV).map(|v| CaptureMode::parse(&v)).transpose()?.unwrap_or_default();
        let max_bytes = match get(MAX_BYTES_ENV) {
            Some(v) => v.trim().parse().map_err(|_| Error::Env {
                var: MAX_BYTES_ENV,
                value: v.clone(),
                expected: "a number of bytes",
            })?,
            None => DEFAULT_MAX_BYTES,
        };
        Ok(Capture { mode, max_bytes })
    }

    /// Capture in `mode` with the default cap.
    pub fn with_mode(mode: CaptureMode) -> Capture {
        Capture { mode, ..Capture::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn capture_is_off_unless_the_variable_says_so() {
        assert_eq!(Capture::from_lookup(env(&[])).unwrap().mode, CaptureMode::None);
        for (value, mode) in [
            ("SPAN_ONLY", CaptureMode::SpanOnly),
            ("event_only", CaptureMode::EventOnly),
            ("Span_And_Event", CaptureMode::SpanAndEvent),
            ("no_content", CaptureMode::None),
        ] {
            assert_eq!(Capture::from_lookup(env(&[(CAPTURE_ENV, value)])).unwrap().mode, mode, "{value}");
        }
    }

    #[test]
    fn unknown_values_are_errors() {
        let e = Capture::from_lookup(env(&[(CAPTURE_ENV, "yes please")])).unwrap_err();
        assert!(e.to_string().contains(CAPTURE_ENV), "{e}");
        assert!(Capture::from_lookup(env(&[(MAX_BYTES_ENV, "lots")])).is_err());
        assert_eq!(Capture::from_lookup(env(&[(MAX_BYTES_ENV, "10")])).unwrap().max_bytes, 10);
    }
}

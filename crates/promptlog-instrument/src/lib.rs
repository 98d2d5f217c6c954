//! GenAI telemetry for Rust apps, on the current OpenTelemetry crates (0.33): spans that follow the
//! OpenTelemetry GenAI semantic conventions, content capture as the official Python instrumentation
//! does it, inclusive token counts per provider, and `gen_ai.evaluation.result` events for feedback.
//!
//! ```no_run
//! # async fn run() -> Result<(), promptlog_instrument::Error> {
//! use promptlog_instrument::{Message, Response, Usage};
//! let _guard = promptlog_instrument::init()?; // OTEL_* environment; flushes on drop
//! let call = promptlog_instrument::chat("openai", "gpt-4o")
//!     .temperature(0.2)
//!     .input_messages(vec![Message::user("Hello")])
//!     .start();
//! let done = call.finish(Response { usage: Usage::openai(11, 7, 0, 0), ..Response::default() });
//! promptlog_instrument::evaluation("thumbs").score(1.0).for_call(&done).emit()?;
//! # Ok(()) }
//! ```
//!
//! Layout: [`setup`] (exporters from the environment, the `tracing` layer, the flush guard), [`call`]
//! (the call builder and its life), [`message`] (the messages JSON shape), [`usage`] (token arithmetic),
//! [`capture`] (content gating), [`evaluation`](mod@evaluation) (feedback events), [`attributes`] (every name), and
//! with the `async-openai` feature `openai`, with `feedback-client` `feedback_client`.

pub mod attributes;
pub mod call;
pub mod capture;
pub mod evaluation;
#[cfg(feature = "feedback-client")]
pub mod feedback_client;
pub mod message;
#[cfg(feature = "async-openai")]
pub mod openai;
pub mod setup;
pub mod usage;

#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock, RwLock};

use opentelemetry::logs::{AnyValue, LoggerProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

pub use call::{Call, CallBuilder, CallRef, Operation, Response};
pub use capture::{Capture, CaptureMode};
pub use evaluation::Evaluation;
pub use message::{Message, Part};
pub use setup::{Guard, Settings, init, init_with};
pub use usage::Usage;

/// What can go wrong here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable holds a value this crate cannot use.
    #[error("{var}={value:?}: expected {expected}")]
    Env {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// The certificate file named by `OTEL_EXPORTER_OTLP_CERTIFICATE` cannot be used.
    #[error("certificate {path}: {reason}")]
    Certificate {
        /// The file.
        path: String,
        /// Why not.
        reason: String,
    },
    /// An OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The global `tracing` subscriber was already set by someone else.
    #[error("tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    /// An evaluation event cannot be emitted: no logger provider (call [`init`] or
    /// [`Instrument::new`] with one).
    #[error("no logger provider: evaluation events need init() or Instrument::new(.., Some(logger_provider), ..)")]
    NoLogger,
    /// [`init`] ran outside a Tokio runtime (the exporters' connections need one).
    #[error("init() must run inside a Tokio runtime")]
    NoRuntime,
    /// The FeedbackService answered with an error (feature `feedback-client`).
    #[cfg(feature = "feedback-client")]
    #[error("feedback service: {0}")]
    Feedback(#[from] tonic::Status),
    /// The FeedbackService endpoint cannot be reached (feature `feedback-client`).
    #[cfg(feature = "feedback-client")]
    #[error("feedback service connection: {0}")]
    FeedbackTransport(#[from] tonic::transport::Error),
    /// An evaluation needs a score value or a label.
    #[error("evaluation {0:?} has neither a score value nor a label")]
    EmptyEvaluation(String),
}

/// Where calls and evaluations are recorded: a tracer, an optional logger (for content and evaluation
/// events) and the capture settings. [`init`] installs one globally; tests build their own.
#[derive(Clone)]
pub struct Instrument {
    inner: Arc<Inner>,
}

struct Inner {
    tracer: SdkTracer,
    logger: Option<SdkLogger>,
    capture: Capture,
}

/// The scope every span and log record carries: the collector can tell our inclusive counts apart.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(attributes::SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .with_schema_url(attributes::SCHEMA_URL)
        .build()
}

static GLOBAL: RwLock<Option<Instrument>> = RwLock::new(None);

impl Instrument {
    /// An instrument on the given providers.
    pub fn new(
        tracer_provider: &SdkTracerProvider,
        logger_provider: Option<&SdkLoggerProvider>,
        capture: Capture,
    ) -> Self {
        let inner = Inner {
            tracer: tracer_provider.tracer_with_scope(scope()),
            logger: logger_provider.map(|lp| lp.logger_with_scope(scope())),
            capture,
        };
        Instrument { inner: Arc::new(inner) }
    }

    /// The instrument [`init`] (or [`Instrument::install`]) set; before that, one that records nothing.
    pub fn global() -> Instrument {
        if let Some(i) = GLOBAL.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return i.clone();
        }
        static NOOP: OnceLock<Instrument> = OnceLock::new();
        NOOP.get_or_init(|| Instrument::new(&SdkTracerProvider::builder().build(), None, Capture::default())).clone()
    }

    /// Makes this the instrument of the free functions ([`chat()`], [`evaluation()`], …).
    pub fn install(&self) {
        *GLOBAL.write().unwrap_or_else(|p| p.into_inner()) = Some(self.clone());
    }

    /// A chat call to `model` at `provider` (`gen_ai.provider.name`, e.g. `openai`).
    pub fn chat(&self, provider: &str, model: &str) -> CallBuilder {
        CallBuilder::new(self.clone(), Operation::Chat, Some(provider), model)
    }

    /// A text completion call.
    pub fn text_completion(&self, provider: &str, model: &str) -> CallBuilder {
        CallBuilder::new(self.clone(), Operation::TextCompletion, Some(provider), model)
    }

    /// An embeddings call.
    pub fn embeddings(&self, provider: &str, model: &str) -> CallBuilder {
        CallBuilder::new(self.clone(), Operation::Embeddings, Some(provider), model)
    }

    /// A tool executed by the app (`execute_tool {tool}`, an INTERNAL span).
    pub fn execute_tool(&self, tool: &str) -> CallBuilder {
        CallBuilder::new(self.clone(), Operation::ExecuteTool, None, tool)
    }

    /// An evaluation of a call (emit it with [`Evaluation::emit`]).
    pub fn evaluation(&self, name: &str) -> Evaluation {
        Evaluation::new(self.inner.logger.clone(), name)
    }

    /// The capture settings.
    pub fn capture(&self) -> Capture {
        self.inner.capture
    }

    pub(crate) fn tracer(&self) -> &SdkTracer {
        &self.inner.tracer
    }

    pub(crate) fn logger(&self) -> Option<&SdkLogger> {
        self.inner.logger.as_ref()
    }
}

/// [`Instrument::chat`] on the global instrument.
pub fn chat(provider: &str, model: &str) -> CallBuilder {
    Instrument::global().chat(provider, model)
}

/// [`Instrument::text_completion`] on the global instrument.
pub fn text_completion(provider: &str, model: &str) -> CallBuilder {
    Instrument::global().text_completion(provider, model)
}

/// [`Instrument::embeddings`] on the global instrument.
pub fn embeddings(provider: &str, model: &str) -> CallBuilder {
    Instrument::global().embeddings(provider, model)
}

/// [`Instrument::execute_tool`] on the global instrument.
pub fn execute_tool(tool: &str) -> CallBuilder {
    Instrument::global().execute_tool(tool)
}

/// [`Instrument::evaluation`] on the global instrument.
pub fn evaluation(name: &str) -> Evaluation {
    Instrument::global().evaluation(name)
}

/// JSON as a structured log attribute value (events must carry content structured, not as strings).
pub(crate) fn json_to_any(v: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    match v {
        J::Null => AnyValue::String("".into()),
        J::Bool(b) => AnyValue::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => AnyValue::Int(i),
            None => AnyValue::Double(n.as_f64().unwrap_or_default()),
        },
        J::String(s) => AnyValue::String(s.into()),
        J::Array(a) => AnyValue::ListAny(Box::new(a.into_iter().map(json_to_any).collect())),
        J::Object(o) => AnyValue::Map(Box::new(o.into_iter().map(|(k, v)| (Key::from(k), json_to_any(v))).collect())),
    }
}

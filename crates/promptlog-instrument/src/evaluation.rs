//! Feedback from Rust: a `gen_ai.evaluation.result` log event, parented to the evaluated call's span
//! (and carrying its `gen_ai.response.id`), as the conventions ask. promptlog turns it into a score
//! joined to the call.

use std::time::SystemTime;

use opentelemetry::Context;
use opentelemetry::logs::{LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_sdk::logs::SdkLogger;

use crate::attributes as attr;
use crate::{CallRef, Error};

/// An evaluation of one call, before it is emitted.
#[must_use = "an evaluation is sent only by emit()"]
pub struct Evaluation {
    logger: Option<SdkLogger>,
    name: String,
    score: Option<f64>,
    label: Option<String>,
    explanation: Option<String>,
    response_id: Option<String>,
    target: Option<SpanContext>,
}

impl Evaluation {
    pub(crate) fn new(logger: Option<SdkLogger>, name: &str) -> Evaluation {
        Evaluation {
            logger,
            name: name.to_owned(),
            score: None,
            label: None,
            explanation: None,
            response_id: None,
            target: None,
        }
    }

    /// `gen_ai.evaluation.score.value`.
    pub fn score(mut self, value: f64) -> Self {
        self.score = Some(value);
        self
    }

    /// `gen_ai.evaluation.score.label`.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// `gen_ai.evaluation.explanation`.
    pub fn explanation(mut self, text: impl Into<String>) -> Self {
        self.explanation = Some(text.into());
        self
    }

    /// `gen_ai.response.id` of the evaluated call (when its span is not at hand).
    pub fn response_id(mut self, id: impl Into<String>) -> Self {
        self.response_id = Some(id.into());
        self
    }

    /// Evaluates this call: the event is parented to its span and carries its response id.
    pub fn for_call(mut self, call: &CallRef) -> Self {
        self.target = Some(call.span_context.clone());
        if self.response_id.is_none() {
            self.response_id.clone_from(&call.response_id);
        }
        self
    }

    /// Evaluates the call whose span context this is.
    pub fn for_span(mut self, span: SpanContext) -> Self {
        self.target = Some(span);
        self
    }

    /// Emits the event. Without [`Evaluation::for_call`] it is parented to the current span, if any.
    pub fn emit(self) -> Result<(), Error> {
        if self.score.is_none() && self.label.is_none() {
            return Err(Error::EmptyEvaluation(self.name));
        }
        let logger = self.logger.as_ref().ok_or(Error::NoLogger)?;
        let mut rec = logger.create_log_record();
        rec.set_event_name(attr::EVENT_EVALUATION_RESULT);
        rec.set_severity_number(Severity::Info);
        rec.set_timestamp(SystemTime::now());
        let target = self.target.clone().unwrap_or_else(|| Context::current().span().span_context().clone());
        if target.is_valid() {
            rec.set_trace_context(target.trace_id(), target.span_id(), Some(target.trace_flags()));
        }
        rec.add_attribute(attr::EVALUATION_NAME, self.name.clone());
        if let Some(v) = self.score {
            rec.add_attribute(attr::EVALUATION_SCORE_VALUE, v);
        }
        if let Some(l) = self.label {
            rec.add_attribute(attr::EVALUATION_SCORE_LABEL, l);
        }
        if let Some(e) = self.explanation {
            rec.add_attribute(attr::EVALUATION_EXPLANATION, e);
        }
        if let Some(id) = self.response_id {
            rec.add_attribute(attr::RESPONSE_ID, id);
        }
        logger.emit(rec);
        Ok(())
    }
}

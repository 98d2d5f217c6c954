//! The processor stage of the seam: an ordered list of steps that every request goes through, live
//! or replayed, in the same order: [`project::StampProject`] (the project on every row),
//! [`redact`] (PII redaction and content capture), and [`price`] (cost).
//!
//! A step may act at two points (see [`crate::Ingestor`]):
//! - [`Processor::request`], on the decoded OTLP request **before it is spooled** — what a step that
//!   must keep data off the disk (redaction) uses. It runs again on replay, so it must be idempotent
//!   (running it on its own output changes nothing);
//! - [`Processor::rows`], on the normalised rows, before they reach the pipeline.

pub mod price;
pub mod project;
pub mod redact;

use crate::Submission;
use crate::request::{Request, RequestContext};
use crate::rows::LlmCallRow;

/// One processing step.
pub trait Processor: Send + Sync {
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;

    /// Changes the request before it is spooled and normalised; returns whether it changed anything
    /// (an unchanged protobuf body is spooled as received, without encoding it again).
    fn request(&self, ctx: &RequestContext, request: &mut Request) -> bool {
        let _ = (ctx, request);
        false
    }

    /// Changes the rows normalised from the request.
    fn rows(&self, ctx: &RequestContext, rows: &mut Submission) {
        let _ = (ctx, rows);
    }

    /// Changes a call after the join merged other recordings of it into it (its models and token
    /// counts may have changed): a step whose values derive from them computes them again.
    fn merged(&self, row: &mut LlmCallRow) {
        let _ = row;
    }
}

/// The configured steps, in order.
#[derive(Default)]
pub struct Processors {
    steps: Vec<Box<dyn Processor>>,
}

impl std::fmt::Debug for Processors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.steps.iter().map(|s| s.name())).finish()
    }
}

impl Processors {
    /// No steps.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a step; steps run in the order they were added.
    pub fn then(mut self, step: impl Processor + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    /// Runs every step's [`Processor::request`]; true if any changed the request.
    pub(crate) fn request(&self, ctx: &RequestContext, request: &mut Request) -> bool {
        self.steps.iter().fold(false, |changed, step| step.request(ctx, request) | changed)
    }

    /// Runs every step's [`Processor::rows`].
    pub(crate) fn rows(&self, ctx: &RequestContext, rows: &mut Submission) {
        for step in &self.steps {
            step.rows(ctx, rows);
        }
    }

    /// Runs every step's [`Processor::merged`].
    pub fn merged(&self, row: &mut LlmCallRow) {
        for step in &self.steps {
            step.merged(row);
        }
    }
}

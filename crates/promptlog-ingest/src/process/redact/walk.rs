//! The walk over a decoded OTLP request: every stored string goes through the engine, content
//! values through the policy, and each redacted record gets its count.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, Metric, metric::Data};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::REDACTIONS_ATTRIBUTE;
use super::content::{self, Applied, ContentPolicy};
use super::text::{Engine, Outcome, Tally};
use crate::scores::ScoreBatch;

/// What replaces a span or event name that a `drop` rule matched (a name cannot be removed).
const DROPPED_NAME: &str = "[REDACTED]";

/// A `drop` rule matched inside a value: its whole attribute (or body) goes.
struct Dropped;

/// One request's walk.
pub struct Walk<'a> {
    engine: &'a Engine,
    policy: ContentPolicy,
    /// Everything found in the request.
    pub total: Tally,
}

impl<'a> Walk<'a> {
    pub fn new(engine: &'a Engine, policy: ContentPolicy) -> Self {
        Walk { engine, policy, total: Tally::default() }
    }

    pub fn traces(&mut self, r: &mut ExportTraceServiceRequest) -> bool {
        let mut changed = false;
        for rs in &mut r.resource_spans {
            let res = self.resource(rs.resource.as_mut(), &mut changed);
            for ss in &mut rs.scope_spans {
                let scope = self.scope(ss.scope.as_mut(), &mut changed);
                for span in &mut ss.spans {
                    let mut t = Tally::default();
                    changed |= self.span(span, &mut t);
                    changed |= self.count(&mut span.attributes, &t, res + scope);
                }
            }
        }
        changed
    }

    pub fn logs(&mut self, r: &mut ExportLogsServiceRequest) -> bool {
        let mut changed = false;
        for rl in &mut r.resource_logs {
            let res = self.resource(rl.resource.as_mut(), &mut changed);
            for sl in &mut rl.scope_logs {
                let scope = self.scope(sl.scope.as_mut(), &mut changed);
                for log in &mut sl.log_records {
                    let mut t = Tally::default();
                    changed |= self.log(log, &mut t);
                    changed |= self.count(&mut log.attributes, &t, res + scope);
                }
            }
        }
        changed
    }

    /// Metrics: each data point is a record (its attributes and exemplars' attributes are scanned, and
    /// it gets the count); the metric's description counts towards each of its points.
    pub fn metrics(&mut self, r: &mut ExportMetricsServiceRequest) -> bool {
        let mut changed = false;
        for rm in &mut r.resource_metrics {
            let res = self.resource(rm.resource.as_mut(), &mut changed);
            for sm in &mut rm.scope_metrics {
                let scope = self.scope(sm.scope.as_mut(), &mut changed);
                for metric in &mut sm.metrics {
                    changed |= self.metric(metric, res + scope);
                }
            }
        }
        changed
    }

    /// Feedback scores: the free text people type (comment, label, author, metadata values) is
    /// scanned like any stored string; a `drop` match empties the field. Content policies do not
    /// apply (a comment is not captured prompt or completion).
    pub fn scores(&mut self, batch: &mut ScoreBatch) -> bool {
        let mut changed = false;
        let mut t = Tally::default();
        for s in &mut batch.scores {
            for field in [&mut s.comment, &mut s.label, &mut s.author].into_iter().chain(s.metadata.values_mut()) {
                changed |= self.text(field, &mut t);
            }
        }
        self.total.absorb(&t);
        changed
    }

    /// Redacts one string field in place (emptied on a `drop` match); true if it changed.
    fn text(&self, s: &mut String, t: &mut Tally) -> bool {
        match self.engine.redact(s, t) {
            Outcome::Unchanged => false,
            Outcome::Changed(new) => {
                *s = new;
                true
            }
            Outcome::Drop => {
                s.clear();
                true
            }
        }
    }

    fn metric(&mut self, metric: &mut Metric, inherited: u64) -> bool {
        let mut desc = Tally::default();
        let mut changed = self.text(&mut metric.description, &mut desc);
        self.total.absorb(&desc);
        let inherited = inherited + desc.total();
        macro_rules! points {
            ($points:expr) => {
                for p in $points {
                    let mut t = Tally::default();
                    changed |= self.attrs(&mut p.attributes, &mut t);
                    changed |= self.exemplars(&mut p.exemplars, &mut t);
                    changed |= self.count(&mut p.attributes, &t, inherited);
                }
            };
        }
        match &mut metric.data {
            Some(Data::Gauge(g)) => points!(&mut g.data_points),
            Some(Data::Sum(s)) => points!(&mut s.data_points),
            Some(Data::Histogram(h)) => points!(&mut h.data_points),
            Some(Data::ExponentialHistogram(e)) => points!(&mut e.data_points),
            Some(Data::Summary(s)) => {
                for p in &mut s.data_points {
                    let mut t = Tally::default();
                    changed |= self.attrs(&mut p.attributes, &mut t);
                    changed |= self.count(&mut p.attributes, &t, inherited);
                }
            }
            None => {}
        }
        changed
    }

    fn exemplars(&self, exemplars: &mut [Exemplar], t: &mut Tally) -> bool {
        exemplars.iter_mut().fold(false, |changed, e| self.attrs(&mut e.filtered_attributes, t) | changed)
    }

    /// Redacts resource attributes; returns how many findings every record under it inherits.
    fn resource(&mut self, resource: Option<&mut Resource>, changed: &mut bool) -> u64 {
        let Some(resource) = resource else { return 0 };
        let mut t = Tally::default();
        *changed |= self.attrs(&mut resource.attributes, &mut t);
        self.total.absorb(&t);
        t.total()
    }

    fn scope(&mut self, scope: Option<&mut InstrumentationScope>, changed: &mut bool) -> u64 {
        let Some(scope) = scope else { return 0 };
        let mut t = Tally::default();
        *changed |= self.attrs(&mut scope.attributes, &mut t);
        self.total.absorb(&t);
        t.total()
    }

    /// Adds the record's own findings to the total and its count (own + inherited) to its attributes.
    fn count(&mut self, attrs: &mut Vec<KeyValue>, own: &Tally, inherited: u64) -> bool {
        self.total.absorb(own);
        let n = own.total() + inherited;
        if n == 0 {
            return false;
        }
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let existing = attrs.iter_mut().find(|kv| kv.key == REDACTIONS_ATTRIBUTE).and_then(|kv| kv.value.as_mut());
        match existing {
            Some(AnyValue { value: Some(any_value::Value::IntValue(v)) }) => *v = v.saturating_add(n),
            _ => {
                attrs.retain(|kv| kv.key != REDACTIONS_ATTRIBUTE);
                attrs.push(KeyValue {
                    key: REDACTIONS_ATTRIBUTE.to_owned(),
                    value: Some(AnyValue { value: Some(any_value::Value::IntValue(n)) }),
                    ..KeyValue::default()
                });
            }
        }
        true
    }

    fn span(&self, span: &mut Span, t: &mut Tally) -> bool {
        let mut changed = self.name(&mut span.name, t);
        if let Some(status) = &mut span.status {
            changed |= self.text(&mut status.message, t);
        }
        changed |= self.attrs(&mut span.attributes, t);
        for event in &mut span.events {
            changed |= self.name(&mut event.name, t);
            changed |= self.attrs(&mut event.attributes, t);
        }
        for link in &mut span.links {
            changed |= self.attrs(&mut link.attributes, t);
        }
        changed
    }

    fn name(&self, name: &mut String, t: &mut Tally) -> bool {
        match self.engine.redact(name, t) {
            Outcome::Unchanged => false,
            Outcome::Changed(s) => {
                *name = s;
                true
            }
            Outcome::Drop => {
                *name = DROPPED_NAME.to_owned();
                true
            }
        }
    }

    fn log(&self, log: &mut LogRecord, t: &mut Tally) -> bool {
        let event = if log.event_name.is_empty() {
            log.attributes.iter().find(|kv| kv.key == "event.name").and_then(|kv| match &kv.value {
                Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => Some(s.as_str()),
                _ => None,
            })
        } else {
            Some(log.event_name.as_str())
        };
        let is_content = event.is_some_and(|e| content::CONTENT_EVENTS.contains(&e));
        let mut changed = false;
        if let Some(body) = &mut log.body {
            let remove = if is_content && self.policy == ContentPolicy::Drop {
                t.content += 1;
                true
            } else {
                match self.any(body, t) {
                    Err(Dropped) => true,
                    Ok(c) => {
                        changed |= c;
                        match is_content.then(|| self.content(body, t)) {
                            Some(Applied::Remove) => true,
                            Some(Applied::Changed) => {
                                changed = true;
                                false
                            }
                            _ => false,
                        }
                    }
                }
            };
            if remove {
                log.body = None;
                changed = true;
            }
        }
        changed | self.attrs(&mut log.attributes, t)
    }

    /// Applies the content policy to a content value, counting a change.
    fn content(&self, value: &mut AnyValue, t: &mut Tally) -> Applied {
        let applied = content::apply(self.policy, value, self.engine.key.as_ref());
        if applied != Applied::Kept {
            t.content += 1;
        }
        applied
    }

    /// Redacts a list of attributes in place (removing dropped ones); true if anything changed.
    fn attrs(&self, kvs: &mut Vec<KeyValue>, t: &mut Tally) -> bool {
        let mut changed = false;
        kvs.retain_mut(|kv| {
            let Some(value) = kv.value.as_mut() else { return true };
            let is_content = content::is_content_key(&kv.key);
            if is_content && self.policy == ContentPolicy::Drop {
                t.content += 1;
                changed = true;
                return false;
            }
            match self.any(value, t) {
                Err(Dropped) => {
                    changed = true;
                    return false;
                }
                Ok(c) => changed |= c,
            }
            let applied = if is_content {
                self.content(value, t)
            } else if let Some(fields) = content::content_fields(&kv.key) {
                let applied = content::apply_fields(self.policy, value, fields, self.engine.key.as_ref());
                if applied != Applied::Kept {
                    t.content += 1;
                }
                applied
            } else {
                Applied::Kept
            };
            changed |= applied != Applied::Kept;
            applied != Applied::Remove
        });
        changed
    }

    /// Redacts every string inside `v`.
    fn any(&self, v: &mut AnyValue, t: &mut Tally) -> Result<bool, Dropped> {
        match &mut v.value {
            Some(any_value::Value::StringValue(s)) => match self.engine.redact(s, t) {
                Outcome::Unchanged => Ok(false),
                Outcome::Changed(new) => {
                    *s = new;
                    Ok(true)
                }
                Outcome::Drop => Err(Dropped),
            },
            Some(any_value::Value::ArrayValue(a)) => {
                let mut changed = false;
                for item in &mut a.values {
                    changed |= self.any(item, t)?;
                }
                Ok(changed)
            }
            Some(any_value::Value::KvlistValue(l)) => {
                let mut changed = false;
                for item in l.values.iter_mut().filter_map(|kv| kv.value.as_mut()) {
                    changed |= self.any(item, t)?;
                }
                Ok(changed)
            }
            _ => Ok(false),
        }
    }
}

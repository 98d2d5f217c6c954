//! Scores (feedback API, `promptlog.feedback.v1`): what is spooled for them, how each is checked,
//! and the `scores` rows they become.
//!
//! A score request is spooled as a [`ScoreBatch`]: the submitted scores, with every id filled in (the
//! receiver assigns missing ones before spooling, so a replay writes the same ids), and the ids of
//! deleted scores. Its field 1 is wire-compatible with `SubmitScoresRequest`. The request's receive
//! time (in the spool record's header) is each row's `Version`: replaying a record writes the very same
//! rows, a later submission of the same id replaces, and a delete's tombstone outranks the rows before it.

use promptlog_proto::feedback::v1::{Score, ScoreDataType, ScoreSource, score::Target};

use crate::normalize::Report;
use crate::rows::{AttrMap, ScoreRow};

pub use promptlog_proto::feedback::v1 as proto;

/// What the spool holds for one feedback request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScoreBatch {
    /// Submitted scores (ids filled in).
    #[prost(message, repeated, tag = "1")]
    pub scores: Vec<Score>,
    /// Ids of scores to delete.
    #[prost(string, repeated, tag = "2")]
    pub deleted: Vec<String>,
}

/// Longest score id accepted.
pub const MAX_ID_BYTES: usize = 128;
/// Longest score name accepted.
pub const MAX_NAME_BYTES: usize = 256;
/// Hex digits of a trace id.
const TRACE_ID_HEX: usize = 32;
/// Hex digits of a span id.
const SPAN_ID_HEX: usize = 16;

/// The JSON / column spelling of a data type (`numeric`, ...); `unspecified` for 0.
pub fn data_type_name(t: ScoreDataType) -> &'static str {
    match t {
        ScoreDataType::Unspecified => "unspecified",
        ScoreDataType::Numeric => "numeric",
        ScoreDataType::Boolean => "boolean",
        ScoreDataType::Categorical => "categorical",
        ScoreDataType::Text => "text",
    }
}

/// The JSON / column spelling of a source (`end_user`, ...); `unspecified` for 0.
pub fn source_name(s: ScoreSource) -> &'static str {
    match s {
        ScoreSource::Unspecified => "unspecified",
        ScoreSource::EndUser => "end_user",
        ScoreSource::Annotator => "annotator",
        ScoreSource::Llm => "llm",
        ScoreSource::Code => "code",
    }
}

/// The data type spelled `name` (as [`data_type_name`] spells it).
pub fn parse_data_type(name: &str) -> Result<ScoreDataType, String> {
    const ALL: [ScoreDataType; 5] = [
        ScoreDataType::Unspecified,
        ScoreDataType::Numeric,
        ScoreDataType::Boolean,
        ScoreDataType::Categorical,
        ScoreDataType::Text,
    ];
    ALL.into_iter()
        .find(|t| data_type_name(*t) == name)
        .ok_or_else(|| format!("unknown data_type {name:?}; expected numeric, boolean, categorical or text"))
}

/// The source spelled `name` (as [`source_name`] spells it).
pub fn parse_source(name: &str) -> Result<ScoreSource, String> {
    const ALL: [ScoreSource; 5] =
        [ScoreSource::Unspecified, ScoreSource::EndUser, ScoreSource::Annotator, ScoreSource::Llm, ScoreSource::Code];
    ALL.into_iter()
        .find(|s| source_name(*s) == name)
        .ok_or_else(|| format!("unknown source {name:?}; expected end_user, annotator, llm or code"))
}

fn check_hex(what: &str, id: &str, digits: usize) -> Result<(), String> {
    if id.len() != digits || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{what} must be {digits} hex digits, got {id:?}"));
    }
    if id.bytes().all(|b| b == b'0') {
        return Err(format!("{what} is all zeros (invalid)"));
    }
    Ok(())
}

/// Checks a score id (for submissions with an id, and deletes).
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".to_owned());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("id of {} bytes is longer than {MAX_ID_BYTES}", id.len()));
    }
    Ok(())
}

/// The data type a score is stored with: its own, or, when unspecified, the one its fields imply.
pub fn effective_data_type(score: &Score) -> ScoreDataType {
    match score.data_type() {
        ScoreDataType::Unspecified if score.value.is_some() => ScoreDataType::Numeric,
        ScoreDataType::Unspecified if !score.label.is_empty() => ScoreDataType::Categorical,
        ScoreDataType::Unspecified if !score.comment.is_empty() => ScoreDataType::Text,
        t => t,
    }
}

/// Why `score` cannot be stored, naming the field; `Ok` when it can. An empty id is allowed here
/// (the receiver assigns one); the seam refuses it.
pub fn validate(score: &Score) -> Result<(), String> {
    if !score.id.is_empty() {
        check_id(&score.id)?;
    }
    match &score.target {
        None => {
            return Err("no target: set exactly one of span (trace_id + span_id), trace_id, session_id or response_id"
                .to_owned());
        }
        Some(Target::Span(span)) => {
            check_hex("span target trace_id", &span.trace_id, TRACE_ID_HEX)?;
            check_hex("span target span_id", &span.span_id, SPAN_ID_HEX)?;
        }
        Some(Target::TraceId(id)) => check_hex("trace_id", id, TRACE_ID_HEX)?,
        Some(Target::SessionId(id)) if id.is_empty() => return Err("session_id is empty".to_owned()),
        Some(Target::ResponseId(id)) if id.is_empty() => return Err("response_id is empty".to_owned()),
        Some(_) => {}
    }
    if score.name.trim().is_empty() {
        return Err("name is empty (e.g. \"user_rating\")".to_owned());
    }
    if score.name.len() > MAX_NAME_BYTES {
        return Err(format!("name of {} bytes is longer than {MAX_NAME_BYTES}", score.name.len()));
    }
    if ScoreDataType::try_from(score.data_type).is_err() {
        return Err(format!("unknown data_type {}", score.data_type));
    }
    if ScoreSource::try_from(score.source).is_err() {
        return Err(format!("unknown source {}", score.source));
    }
    if let Some(v) = score.value
        && !v.is_finite()
    {
        return Err(format!("value must be a finite number, got {v}"));
    }
    match effective_data_type(score) {
        ScoreDataType::Unspecified => {
            Err("data_type is unspecified and there is no value, label or comment".to_owned())
        }
        ScoreDataType::Numeric if score.value.is_none() => Err("numeric score needs a value".to_owned()),
        ScoreDataType::Boolean => match score.value {
            Some(v) if v == 0.0 || v == 1.0 => Ok(()),
            Some(v) => Err(format!("boolean value must be 0 or 1, got {v}")),
            None => Err("boolean score needs a value (0 or 1)".to_owned()),
        },
        ScoreDataType::Categorical if score.label.is_empty() => Err("categorical score needs a label".to_owned()),
        ScoreDataType::Text if score.comment.is_empty() && score.label.is_empty() => {
            Err("text score needs a comment (or a label)".to_owned())
        }
        _ => Ok(()),
    }
}

/// The client-facing message for score `index` of a batch.
pub fn describe(index: usize, score: &Score, why: &str) -> String {
    if score.name.is_empty() {
        format!("score {index}: {why}")
    } else {
        format!("score {index} ({:?}): {why}", score.name)
    }
}

/// The row of a valid score with an id, received at `received_ns`.
pub fn row(score: &Score, received_ns: i64) -> ScoreRow {
    let (kind, trace_id, span_id, session_id, response_id) = match &score.target {
        Some(Target::Span(s)) => ("span", s.trace_id.to_ascii_lowercase(), s.span_id.to_ascii_lowercase(), "", ""),
        Some(Target::TraceId(t)) => ("trace", t.to_ascii_lowercase(), String::new(), "", ""),
        Some(Target::SessionId(s)) => ("session", String::new(), String::new(), s.as_str(), ""),
        Some(Target::ResponseId(r)) => ("response", String::new(), String::new(), "", r.as_str()),
        None => ("", String::new(), String::new(), "", ""),
    };
    let mut metadata: AttrMap = score.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    // A map's order is not kept on the wire; sorting makes the row the same on every replay.
    metadata.sort();
    let time = i64::try_from(score.time_unix_nano).unwrap_or(i64::MAX);
    ScoreRow {
        project_id: String::new(),
        score_id: score.id.clone(),
        version: u64::try_from(received_ns).unwrap_or(0),
        is_deleted: 0,
        timestamp: if time == 0 { received_ns } else { time },
        target_kind: kind.to_owned(),
        trace_id,
        span_id,
        session_id: session_id.to_owned(),
        response_id: response_id.to_owned(),
        name: score.name.trim().to_owned(),
        data_type: data_type_name(effective_data_type(score)).to_owned(),
        value: score.value,
        label: score.label.clone(),
        comment: score.comment.clone(),
        source: source_name(score.source()).to_owned(),
        author: score.author.clone(),
        environment: score.environment.clone(),
        metadata,
        key_id: String::new(),
    }
}

/// A delete's tombstone row.
pub fn tombstone(id: &str, received_ns: i64) -> ScoreRow {
    ScoreRow {
        score_id: id.to_owned(),
        version: u64::try_from(received_ns).unwrap_or(0),
        is_deleted: 1,
        timestamp: received_ns,
        ..ScoreRow::default()
    }
}

/// The rows of a spooled batch: valid scores and tombstones; invalid ones are counted in `report`.
pub(crate) fn add_rows(batch: &ScoreBatch, received_ns: i64, out: &mut Vec<ScoreRow>, report: &mut Report) {
    for (index, score) in batch.scores.iter().enumerate() {
        let checked = validate(score).and_then(|()| check_id(&score.id));
        match checked {
            Ok(()) => out.push(row(score, received_ns)),
            Err(why) => report.reject(|| describe(index, score, &why)),
        }
    }
    for id in &batch.deleted {
        match check_id(id) {
            Ok(()) => out.push(tombstone(id, received_ns)),
            Err(why) => report.reject(|| format!("delete: {why}")),
        }
    }
}

#[cfg(test)]
mod tests;

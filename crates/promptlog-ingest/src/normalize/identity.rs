//! Session, user, tags, metadata and environment from every convention, in one precedence order
//! (after Langfuse's ingestion rules): explicit Langfuse keys, then OTel / OpenInference
//! (`session.id`, `user.id`, `gen_ai.conversation.id`, `enduser.id`, also when copied from baggage),
//! then Traceloop association properties, then Vercel telemetry metadata.

use serde_json::Value as Json;

use super::attrs::{Attrs, value_to_string};
use super::call::fill_if_empty;
use crate::rows::LlmCallRow;

const SESSION_KEYS: &[&str] = &[
    "langfuse.session.id",
    "gen_ai.conversation.id",
    "session.id",
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.sessionId",
    "ai.telemetry.metadata.sessionId",
    "ai.telemetry.metadata.session_id",
];

const USER_KEYS: &[&str] = &[
    "langfuse.user.id",
    "user.id",
    "enduser.id",
    "traceloop.association.properties.user_id",
    "traceloop.association.properties.userId",
    "ai.telemetry.metadata.userId",
    "ai.telemetry.metadata.user_id",
];

const TAG_KEYS: &[&str] =
    &["langfuse.trace.tags", "langfuse.tags", "tag.tags", "logfire.tags", "ai.telemetry.metadata.tags"];

/// Prefixes whose entries become `Metadata` (minus the keys used for session and user).
const METADATA_PREFIXES: &[&str] = &[
    "traceloop.association.properties.",
    "ai.telemetry.metadata.",
    "langfuse.trace.metadata.",
    "langfuse.observation.metadata.",
];

/// Fills session, user, tags, metadata and environment.
pub fn fill(row: &mut LlmCallRow, a: Attrs<'_>) {
    let langfuse_session = a.str("langfuse.session.id");
    if langfuse_session.is_some() {
        row.session_id.clear();
    }
    fill_if_empty(&mut row.session_id, SESSION_KEYS.iter().find_map(|k| a.str(k)));
    if a.get("langfuse.user.id").is_some() {
        row.user_id.clear();
    }
    fill_if_empty(&mut row.user_id, USER_KEYS.iter().find_map(|k| a.str(k)));
    if row.tags.is_empty() {
        row.tags = TAG_KEYS.iter().find_map(|k| tags(a, k)).unwrap_or_default();
    }
    if let Some(Json::Object(meta)) = a.json("metadata") {
        for (k, v) in meta {
            let v = match v {
                Json::String(s) => s,
                other => other.to_string(),
            };
            push_unique(&mut row.metadata, k, v);
        }
    }
    for kv in a.0 {
        let Some(key) = METADATA_PREFIXES.iter().find_map(|p| kv.key.strip_prefix(p)) else { continue };
        if matches!(key, "session_id" | "sessionId" | "user_id" | "userId" | "tags") {
            continue;
        }
        if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            push_unique(&mut row.metadata, key.to_owned(), value_to_string(v));
        }
    }
    fill_if_empty(&mut row.environment, a.str("langfuse.environment"));
}

fn push_unique(map: &mut Vec<(String, String)>, key: String, value: String) {
    if !map.iter().any(|(k, _)| *k == key) {
        map.push((key, value));
    }
}

/// Tags as an array, a JSON-array string, or a comma-separated string.
fn tags(a: Attrs<'_>, key: &str) -> Option<Vec<String>> {
    let list = a.str_list(key)?;
    let list: Vec<String> = if list.len() == 1 && list[0].contains(',') && !list[0].starts_with('[') {
        list[0].split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
    } else {
        list
    };
    (!list.is_empty()).then_some(list)
}

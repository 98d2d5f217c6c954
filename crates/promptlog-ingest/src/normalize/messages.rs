//! The OTel GenAI message model (`role` + `parts`) and conversions into it from every other encoding:
//! OpenAI-style `{role, content, tool_calls}` messages, legacy per-message event bodies, and
//! `gen_ai.choice` bodies. Content is kept as `serde_json::Value` because it is free-form by spec.

use serde_json::{Map, Value as Json, json};

use crate::rows::LlmCallRow;

/// The content of one LLM call, gathered from the span and/or its log records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    /// `gen_ai.system_instructions`: an array of parts.
    pub system: Option<Json>,
    /// Input messages in order.
    pub input: Messages,
    /// Output messages, one per choice.
    pub output: Messages,
    /// `gen_ai.tool.definitions`.
    pub tools: Option<Json>,
    /// Output messages (choices) the request asked for (`n` / `choice.count`); 0 means 1. The join
    /// waits for all of them before releasing a call.
    pub expected_outputs: usize,
    /// Redactions in the records this content came from (the `promptlog.redactions` attribute of
    /// log records; the span's own count is on the row).
    pub redactions: u64,
}

impl Content {
    /// True when neither prompt nor completion is known (the call may get them from log records).
    pub fn is_empty(&self) -> bool {
        self.system.is_none() && self.input.is_empty() && self.output.is_empty()
    }

    /// True when both sides of the exchange are known: input, and every requested choice.
    pub fn is_complete(&self) -> bool {
        !self.input.is_empty() && self.output.len() >= self.expected_outputs.max(1)
    }

    /// Adds what `other` knows and `self` does not (span content wins over log content).
    pub fn merge_missing(&mut self, other: Content) {
        self.redactions += other.redactions;
        if self.system.is_none() {
            self.system = other.system;
        }
        if self.input.is_empty() {
            self.input = other.input;
        }
        if self.output.is_empty() {
            self.output = other.output;
        }
        if self.tools.is_none() {
            self.tools = other.tools;
        }
    }

    /// Writes the JSON and text columns of `row`.
    pub fn render_into(&self, row: &mut LlmCallRow) {
        let system = self.system.clone().or_else(|| system_parts_from_input(&self.input));
        row.system_instructions = system.as_ref().map(Json::to_string).unwrap_or_default();
        row.input_messages = self.input.render();
        row.output_messages = self.output.render();
        row.tool_definitions = self.tools.as_ref().map(Json::to_string).unwrap_or_default();
        row.input_text = join_text(self.input.iter().filter(|m| !is_system(m)));
        row.output_text = join_text(self.output.iter());
        if row.finish_reasons.is_empty() {
            row.finish_reasons = self
                .output
                .iter()
                .filter_map(|m| m.get("finish_reason").and_then(Json::as_str))
                .map(str::to_owned)
                .collect();
        }
    }
}

/// A list of messages, with the text it was parsed from for as long as that text still says exactly
/// what the list holds (it arrived in the OTel shape, and nothing has changed it since): rendering
/// the column then copies that text instead of serialising the list again, which was the largest
/// single cost of a chat span (`serde_json`'s string escaping alone, 6 % of the collector's
/// instructions under callgrind). Every mutable access forgets the text, so it cannot go stale.
#[derive(Debug, Clone, Default)]
pub struct Messages {
    items: Vec<Json>,
    text: Option<String>,
}

impl Messages {
    /// The messages of a `gen_ai.input.messages`-style value parsed from `text`: kept with the text
    /// when every item already is an OTel message (`role` + `parts`), converted otherwise.
    pub fn parsed(value: Json, text: &str) -> Self {
        match value {
            Json::Array(items) if !items.is_empty() && items.iter().all(is_otel_message) => {
                Messages { items, text: Some(text.to_owned()) }
            }
            other => messages_from_json(other).into(),
        }
    }

    /// The JSON column: the text as received when it is still current, else the list serialised.
    pub fn render(&self) -> String {
        match &self.text {
            Some(text) => text.clone(),
            None => json_array_or_empty(&self.items),
        }
    }

    /// Bytes of the text kept beside the list (for the join's memory estimate).
    pub fn text_len(&self) -> usize {
        self.text.as_ref().map_or(0, String::len)
    }
}

fn is_otel_message(message: &Json) -> bool {
    message.as_object().is_some_and(|m| m.contains_key("role") && m.get("parts").is_some_and(Json::is_array))
}

impl From<Vec<Json>> for Messages {
    fn from(items: Vec<Json>) -> Self {
        Messages { items, text: None }
    }
}

impl std::ops::Deref for Messages {
    type Target = Vec<Json>;
    fn deref(&self) -> &Vec<Json> {
        &self.items
    }
}

impl std::ops::DerefMut for Messages {
    fn deref_mut(&mut self) -> &mut Vec<Json> {
        // The caller may change the list: the text would no longer match it.
        self.text = None;
        &mut self.items
    }
}

impl IntoIterator for Messages {
    type Item = Json;
    type IntoIter = std::vec::IntoIter<Json>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = &'a Json;
    type IntoIter = std::slice::Iter<'a, Json>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl FromIterator<Json> for Messages {
    fn from_iter<I: IntoIterator<Item = Json>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

/// Equal when the messages are: how they arrived does not matter.
impl PartialEq for Messages {
    fn eq(&self, other: &Self) -> bool {
        self.items == other.items
    }
}

impl PartialEq<Vec<Json>> for Messages {
    fn eq(&self, other: &Vec<Json>) -> bool {
        &self.items == other
    }
}

fn json_array_or_empty(items: &[Json]) -> String {
    // Serialise the slice in place: building a `Json::Array` would deep-copy every message first.
    if items.is_empty() { String::new() } else { serde_json::to_string(items).unwrap_or_default() }
}

fn is_system(message: &Json) -> bool {
    matches!(message.get("role").and_then(Json::as_str), Some("system" | "developer"))
}

fn system_parts_from_input(input: &[Json]) -> Option<Json> {
    let parts: Vec<Json> = input
        .iter()
        .filter(|m| is_system(m))
        .filter_map(|m| m.get("parts").and_then(Json::as_array))
        .flatten()
        .cloned()
        .collect();
    (!parts.is_empty()).then_some(Json::Array(parts))
}

fn join_text<'a>(messages: impl Iterator<Item = &'a Json>) -> String {
    let mut out = String::new();
    for message in messages {
        for part in message.get("parts").and_then(Json::as_array).into_iter().flatten() {
            if let Some(text) = part_text(part) {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(text);
            }
        }
    }
    out
}

/// The text of a `text` part (`content`, or `text` as some SDKs spell it).
fn part_text(part: &Json) -> Option<&str> {
    match part.get("type").and_then(Json::as_str) {
        Some("text") | None => part.get("content").or_else(|| part.get("text")).and_then(Json::as_str),
        _ => None,
    }
}

/// Normalises a list that should be OTel messages but may be OpenAI-style; non-arrays become one
/// user text message. Used for `gen_ai.input.messages` / `gen_ai.output.messages` values.
pub fn messages_from_json(value: Json) -> Vec<Json> {
    match value {
        Json::Array(items) => items.into_iter().map(to_otel_message).collect(),
        Json::Null => Vec::new(),
        Json::String(s) if s.is_empty() => Vec::new(),
        Json::String(s) => vec![text_message("user", &s)],
        other @ Json::Object(_) => vec![to_otel_message(other)],
        other => vec![text_message("user", &other.to_string())],
    }
}

/// Any value as messages: lists of messages are converted, anything else becomes one text
/// message with `role` (tool inputs, retriever queries, framework payloads).
pub fn any_as_messages(value: Json, role: &str) -> Vec<Json> {
    let is_messages = |items: &[Json]| items.iter().all(|m| m.get("role").is_some() || m.get("parts").is_some());
    match value {
        Json::Array(items) if !items.is_empty() && is_messages(&items) => messages_from_json(Json::Array(items)),
        Json::Object(m) if m.contains_key("role") => messages_from_json(Json::Object(m)),
        Json::Null => Vec::new(),
        Json::String(s) if s.is_empty() => Vec::new(),
        Json::String(s) => vec![text_message(role, &s)],
        other => vec![text_message(role, &other.to_string())],
    }
}

/// A JSON-encoded string (tool arguments, schemas, Vercel `ai.*` arrays) parsed into JSON; anything
/// else, including a string that is not JSON, is returned as is.
pub fn parse_json_string(value: Json) -> Json {
    match value {
        Json::String(s) => serde_json::from_str(&s).unwrap_or(Json::String(s)),
        other => other,
    }
}

/// A message with one text part.
pub fn text_message(role: &str, text: &str) -> Json {
    json!({"role": role, "parts": [{"type": "text", "content": text}]})
}

/// Converts one message into the OTel shape. Messages that already have `parts` pass unchanged.
pub fn to_otel_message(message: Json) -> Json {
    let Json::Object(mut m) = message else {
        return text_message("user", &json_to_text(&message));
    };
    if m.contains_key("parts") {
        return Json::Object(m);
    }
    let role = m.remove("role").and_then(|r| r.as_str().map(str::to_owned)).unwrap_or_else(|| "user".into());
    let mut parts = Vec::new();
    if role == "tool" && !matches!(m.get("content"), Some(Json::Array(_))) {
        let id = m.remove("tool_call_id").or_else(|| m.remove("id")).unwrap_or(Json::Null);
        let response = m.remove("content").unwrap_or(Json::Null);
        parts.push(json!({"type": "tool_call_response", "id": id, "response": response}));
    } else {
        push_content_parts(m.remove("content"), &mut parts);
        push_tool_calls(m.remove("tool_calls"), &mut parts);
    }
    let mut out = Map::new();
    out.insert("role".into(), Json::String(role));
    out.insert("parts".into(), Json::Array(parts));
    if let Some(name) = m.remove("name").filter(|n| !n.is_null()) {
        out.insert("name".into(), name);
    }
    if let Some(reason) = m.remove("finish_reason").filter(|r| !r.is_null()) {
        out.insert("finish_reason".into(), reason);
    }
    Json::Object(out)
}

fn json_to_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// OpenAI `content`: a string, or an array of `{type: text, text}` / image / other parts.
fn push_content_parts(content: Option<Json>, parts: &mut Vec<Json>) {
    match content {
        None | Some(Json::Null) => {}
        Some(Json::String(s)) => parts.push(json!({"type": "text", "content": s})),
        Some(Json::Array(items)) => {
            for item in items {
                match item.get("type").and_then(Json::as_str) {
                    Some("text") | Some("input_text") | Some("output_text") => {
                        let text = item.get("text").or_else(|| item.get("content")).cloned().unwrap_or(Json::Null);
                        parts.push(json!({"type": "text", "content": text}));
                    }
                    // Vercel AI SDK part shapes.
                    Some("tool-call") => {
                        let args = item.get("args").or_else(|| item.get("input")).cloned().unwrap_or(Json::Null);
                        parts.push(json!({"type": "tool_call", "id": item.get("toolCallId"), "name": item.get("toolName"), "arguments": args}));
                    }
                    Some("tool-result") => {
                        let result = item.get("result").or_else(|| item.get("output")).cloned().unwrap_or(Json::Null);
                        parts.push(
                            json!({"type": "tool_call_response", "id": item.get("toolCallId"), "response": result}),
                        );
                    }
                    Some("image_url") => {
                        let uri = item.pointer("/image_url/url").cloned().unwrap_or(Json::Null);
                        parts.push(json!({"type": "uri", "modality": "image", "uri": uri}));
                    }
                    Some(_) => parts.push(item),
                    None => parts.push(json!({"type": "text", "content": json_to_text(&item)})),
                }
            }
        }
        Some(other) => parts.push(json!({"type": "text", "content": json_to_text(&other)})),
    }
}

/// OpenAI `tool_calls: [{id, type, function: {name, arguments}}]` → `tool_call` parts.
fn push_tool_calls(tool_calls: Option<Json>, parts: &mut Vec<Json>) {
    let Some(Json::Array(calls)) = tool_calls else { return };
    for call in calls {
        let name = call.pointer("/function/name").or_else(|| call.get("name")).cloned().unwrap_or(Json::Null);
        let raw_args = call.pointer("/function/arguments").or_else(|| call.get("arguments")).cloned();
        // Arguments arrive as a JSON-encoded string; keep them structured when they parse.
        let arguments = raw_args.map(parse_json_string).unwrap_or(Json::Null);
        let id = call.get("id").cloned().unwrap_or(Json::Null);
        parts.push(json!({"type": "tool_call", "id": id, "name": name, "arguments": arguments}));
    }
}

/// Converts a v1.28–1.36 per-message event body into an input message. `role_from_name` is the role
/// implied by the event name (`gen_ai.user.message` → `user`).
pub fn message_from_event_body(role_from_name: &str, body: Option<Json>) -> Json {
    let mut m = match body {
        Some(Json::Object(m)) => m,
        Some(Json::Null) | None => Map::new(),
        Some(other) => {
            let mut m = Map::new();
            m.insert("content".into(), other);
            m
        }
    };
    m.entry("role").or_insert_with(|| Json::String(role_from_name.to_owned()));
    to_otel_message(Json::Object(m))
}

/// Converts a `gen_ai.choice` body `{index, finish_reason, message: {content, role}, tool_calls}`.
pub fn output_from_choice_body(body: Option<Json>) -> Json {
    let mut body = match body {
        Some(Json::Object(m)) => m,
        _ => Map::new(),
    };
    let mut message = match body.remove("message") {
        Some(Json::Object(m)) => m,
        _ => Map::new(),
    };
    message.entry("role").or_insert_with(|| Json::String("assistant".into()));
    if let Some(calls) = body.remove("tool_calls") {
        message.entry("tool_calls").or_insert(calls);
    }
    if let Some(reason) = body.remove("finish_reason") {
        message.insert("finish_reason".into(), reason);
    }
    to_otel_message(Json::Object(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_style_messages_become_otel_parts() {
        let cases = [
            (
                json!({"role": "user", "content": "hi"}),
                json!({"role": "user", "parts": [{"type": "text", "content": "hi"}]}),
            ),
            (
                json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
                json!({"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}]}),
            ),
            (
                json!({"role": "tool", "tool_call_id": "c1", "content": "sunny"}),
                json!({"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]}),
            ),
            (
                json!({"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "http://x/i.png"}}]}),
                json!({"role": "user", "parts": [{"type": "text", "content": "look"}, {"type": "uri", "modality": "image", "uri": "http://x/i.png"}]}),
            ),
            (
                json!({"role": "system", "parts": [{"type": "text", "content": "kept"}]}),
                json!({"role": "system", "parts": [{"type": "text", "content": "kept"}]}),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(to_otel_message(input), want);
        }
    }

    #[test]
    fn otel_shaped_text_is_stored_as_received_until_the_list_changes() {
        // Spaces and key order as a Python client sends them: kept, not re-serialised.
        let text = r#"[{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]"#;
        let mut messages = Messages::parsed(serde_json::from_str(text).unwrap(), text);
        assert_eq!(messages.render(), text);
        assert_eq!(messages, vec![text_message("user", "hi")]);
        // Any mutable access (redaction, a join appending log content) renders the list instead.
        messages.push(text_message("user", "again"));
        assert_eq!(messages.render(), serde_json::to_string(&*messages).unwrap());
        assert!(messages.render().starts_with(r#"[{"parts""#));

        // OpenAI-style items are converted, so the text is not theirs to keep.
        let openai = r#"[{"role": "user", "content": "hi"}]"#;
        let converted = Messages::parsed(serde_json::from_str(openai).unwrap(), openai);
        assert_eq!(converted, vec![text_message("user", "hi")]);
        assert_eq!(converted.render(), r#"[{"parts":[{"content":"hi","type":"text"}],"role":"user"}]"#);
        assert_eq!(Messages::parsed(json!([]), "[]").render(), "");
    }

    #[test]
    fn legacy_event_bodies_convert() {
        assert_eq!(
            message_from_event_body("system", Some(json!({"content": "be brief"}))),
            json!({"role": "system", "parts": [{"type": "text", "content": "be brief"}]})
        );
        assert_eq!(
            output_from_choice_body(Some(json!({"index": 0, "finish_reason": "stop", "message": {"content": "ok"}}))),
            json!({"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "stop"})
        );
        // Content capture off: the choice event still arrives, without content.
        assert_eq!(
            output_from_choice_body(Some(json!({"index": 0, "finish_reason": "stop", "message": {}}))),
            json!({"role": "assistant", "parts": [], "finish_reason": "stop"})
        );
    }

    #[test]
    fn render_derives_system_prompt_text_and_finish_reasons() {
        let content = Content {
            system: None,
            input: vec![text_message("system", "sys"), text_message("user", "q1"), text_message("user", "q2")].into(),
            output: vec![output_from_choice_body(Some(json!({"finish_reason": "stop", "message": {"content": "a"}})))]
                .into(),
            ..Content::default()
        };
        let mut row = LlmCallRow::default();
        content.render_into(&mut row);
        assert_eq!(row.system_instructions, r#"[{"content":"sys","type":"text"}]"#);
        assert_eq!(row.input_text, "q1\nq2");
        assert_eq!(row.output_text, "a");
        assert_eq!(row.finish_reasons, vec!["stop"]);
        assert!(row.input_messages.starts_with(r#"[{"parts""#));
    }
}

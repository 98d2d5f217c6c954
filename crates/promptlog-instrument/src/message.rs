//! Messages in the OpenTelemetry GenAI JSON shape (`gen-ai-input-messages.json`,
//! `gen-ai-output-messages.json`): `{role, parts: [{type: "text", content} | {type: "tool_call", …}],
//! name?, finish_reason?}`.

use serde::Serialize;
use serde_json::Value;

/// One message of a conversation (input) or one choice (output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, or the provider's own role.
    pub role: String,
    /// The message's content, in order.
    pub parts: Vec<Part>,
    /// Participant name, when the provider has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why the choice ended (output messages only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
}

/// One part of a message, discriminated by `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        content: String,
    },
    /// Reasoning / thinking text.
    Reasoning {
        /// The text.
        content: String,
    },
    /// A tool call the model asked for.
    ToolCall {
        /// Call id.
        id: Option<String>,
        /// Tool name.
        name: String,
        /// Arguments (JSON; a string when the provider sent unparsable text).
        arguments: Value,
    },
    /// The result of a tool call, sent back to the model.
    ToolCallResponse {
        /// Call id.
        id: Option<String>,
        /// The result.
        response: Value,
    },
}

impl Part {
    /// A text part.
    pub fn text(content: impl Into<String>) -> Part {
        Part::Text { content: content.into() }
    }
}

impl Message {
    /// A message of one text part.
    pub fn new(role: impl Into<String>, text: impl Into<String>) -> Message {
        Message { role: role.into(), parts: vec![Part::text(text)], name: None, finish_reason: None }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Message {
        Message::new("system", text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Message {
        Message::new("user", text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message::new("assistant", text)
    }

    /// Sets the finish reason (output messages).
    pub fn with_finish_reason(mut self, reason: impl Into<String>) -> Message {
        self.finish_reason = Some(reason.into());
        self
    }
}

/// Cuts text contents so that their bytes add up to at most `cap`; true when something was cut.
/// Structure (roles, tool calls) is kept, so the result is still valid messages JSON.
pub(crate) fn truncate_messages(messages: &mut [Message], budget: &mut usize) -> bool {
    let mut cut = false;
    for m in messages {
        cut |= truncate_parts(&mut m.parts, budget);
    }
    cut
}

/// [`truncate_messages`] for a list of parts (system instructions).
pub(crate) fn truncate_parts(parts: &mut [Part], budget: &mut usize) -> bool {
    let mut cut = false;
    for part in parts {
        if let Part::Text { content } | Part::Reasoning { content } = part {
            if content.len() > *budget {
                let mut end = *budget;
                while !content.is_char_boundary(end) {
                    end -= 1;
                }
                content.truncate(end);
                cut = true;
            }
            *budget -= content.len();
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_serialize_in_the_otel_shape() {
        let m = vec![
            Message::user("hi"),
            Message {
                role: "assistant".into(),
                parts: vec![Part::ToolCall {
                    id: Some("c1".into()),
                    name: "get_weather".into(),
                    arguments: serde_json::json!({"city": "Oslo"}),
                }],
                name: None,
                finish_reason: Some("tool_call".into()),
            },
        ];
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!([
                {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather",
                    "arguments": {"city": "Oslo"}}], "finish_reason": "tool_call"}
            ])
        );
    }

    #[test]
    fn truncation_keeps_char_boundaries_and_the_total_under_the_cap() {
        let mut m = vec![Message::user("héllo"), Message::assistant("world")];
        // "é" is two bytes: a cap of 2 cannot end inside it.
        let mut budget = 2;
        assert!(truncate_messages(&mut m, &mut budget));
        assert_eq!(m[0].parts, vec![Part::text("h")]);
        assert_eq!(m[1].parts, vec![Part::text("w")]);
        let mut roomy = vec![Message::user("héllo")];
        assert!(!truncate_messages(&mut roomy, &mut 100));
    }
}

//! `RequestParams` under one set of names: the single table of parameter aliases, the framework noise
//! keys that are not request parameters, and `"null"` as absent. Applied once per call, after every
//! convention has filled its parameters ([`canonicalize`]); the conventions only turn their own
//! attribute keys into parameter names (`gen_ai.request.max_tokens` → `max_tokens`,
//! `ai.settings.maxOutputTokens` → `max_output_tokens`) and leave renames to this table.
//!
//! Why the original key is not kept next to the canonical one: a user filters and groups by
//! `RequestParams['max_tokens']` whatever the SDK called it, and a second copy under
//! `max_completion_tokens` would only make every query check two keys. The key as sent is still in
//! `SpanAttributes` (e.g. inside `llm.invocation_parameters`), which is where provenance questions go.

use crate::rows::AttrMap;

/// `(alias, canonical short name)`. The canonical names are the `gen_ai.request.*` suffixes of the
/// official conventions (`max_tokens`, `stop_sequences`, `choice_count`, `top_k`, …).
pub const ALIASES: &[(&str, &str)] = &[
    // OpenAI chat: `max_tokens` is deprecated for `max_completion_tokens` (langchain-openai 1.x sends only it).
    ("max_completion_tokens", "max_tokens"),
    // OpenAI Responses API, Google Gemini (`generation_config.max_output_tokens`), Vercel AI SDK
    // `maxOutputTokens` (snake-cased by vercel.rs).
    ("max_output_tokens", "max_tokens"),
    ("maxOutputTokens", "max_tokens"),
    ("maxTokens", "max_tokens"),
    ("max_tokens_to_sample", "max_tokens"),
    ("max_new_tokens", "max_tokens"),
    ("stop", "stop_sequences"),
    ("stopSequences", "stop_sequences"),
    ("stop_sequence", "stop_sequences"),
    ("n", "choice_count"),
    ("candidate_count", "choice_count"),
    ("candidateCount", "choice_count"),
    ("topP", "top_p"),
    ("topK", "top_k"),
    ("frequencyPenalty", "frequency_penalty"),
    ("presencePenalty", "presence_penalty"),
];

/// Keys that frameworks put among the request parameters but that are not settings of the model call.
/// They stay in `SpanAttributes`.
pub const NOISE: &[&str] = &[
    // LangChain's serialisation tag (`"openai-chat"`) and its copy of the model name (the model has its
    // own column).
    "_type",
    "model_name",
    // Client-side retry and timeout policy, not sent to the model.
    "max_retries",
    "maxRetries",
    "request_timeout",
    "timeout",
];

/// Whether a parameter value means "not set": the string `null` (how JSON `null` reaches us once
/// stringified) or nothing at all.
pub fn is_absent(value: &str) -> bool {
    matches!(value.trim(), "" | "null")
}

/// The canonical name of a parameter key, or `None` when the key is noise.
pub fn canonical(key: &str) -> Option<&str> {
    if NOISE.contains(&key) {
        return None;
    }
    Some(ALIASES.iter().find(|(alias, _)| *alias == key).map_or(key, |(_, canonical)| canonical))
}

/// Renames aliases, drops noise keys and absent values. Precedence when two entries end on one name:
/// an entry already under the canonical name beats any alias; otherwise the first one wins (the
/// conventions fill in precedence order, official attributes first).
pub fn canonicalize(params: &mut AttrMap) {
    let entries = std::mem::take(params);
    let mut aliased = Vec::new();
    for (key, value) in entries {
        if is_absent(&value) {
            continue;
        }
        let Some(name) = canonical(&key) else { continue };
        if name != key {
            aliased.push((name.to_owned(), value));
        } else if !params.iter().any(|(k, _)| *k == key) {
            params.push((key, value));
        }
    }
    for (name, value) in aliased {
        if !params.iter().any(|(k, _)| *k == name) {
            params.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn map(pairs: Pairs<'_>) -> AttrMap {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn canonicalize_table() {
        // (what the conventions filled, what RequestParams holds)
        #[rustfmt::skip]
        let cases: &[(Pairs<'_>, Pairs<'_>)] = &[
            // langchain-openai 1.x invocation parameters (OpenInference), as recorded.
            (&[("model_name", "gpt-4o"), ("stream", "false"), ("seed", "535353"), ("stop", "[\"<<END>>\"]"),
               ("max_completion_tokens", "444"), ("_type", "openai-chat")],
             &[("stream", "false"), ("seed", "535353"), ("stop_sequences", "[\"<<END>>\"]"), ("max_tokens", "444")]),
            // JSON null and the string "null" are absent.
            (&[("stop", "null"), ("temperature", "0.2"), ("user", ""), ("seed", " null ")], &[("temperature", "0.2")]),
            // Every alias of max_tokens.
            (&[("max_output_tokens", "9")], &[("max_tokens", "9")]),
            (&[("maxOutputTokens", "9")], &[("max_tokens", "9")]),
            (&[("maxTokens", "9")], &[("max_tokens", "9")]),
            (&[("max_tokens_to_sample", "9")], &[("max_tokens", "9")]),
            (&[("max_new_tokens", "9")], &[("max_tokens", "9")]),
            // The canonical key beats an alias, in either order.
            (&[("max_completion_tokens", "1"), ("max_tokens", "2")], &[("max_tokens", "2")]),
            (&[("max_tokens", "2"), ("max_completion_tokens", "1")], &[("max_tokens", "2")]),
            // Two aliases: the first one filled wins.
            (&[("max_output_tokens", "3"), ("max_completion_tokens", "4")], &[("max_tokens", "3")]),
            // An absent canonical value does not shadow a present alias.
            (&[("max_tokens", "null"), ("max_completion_tokens", "5")], &[("max_tokens", "5")]),
            (&[("stopSequences", "[\"x\"]"), ("stop_sequence", "y")], &[("stop_sequences", "[\"x\"]")]),
            (&[("n", "2"), ("candidateCount", "3")], &[("choice_count", "2")]),
            (&[("candidate_count", "3")], &[("choice_count", "3")]),
            (&[("topP", "0.5"), ("topK", "40"), ("frequencyPenalty", "0.1"), ("presencePenalty", "0.2")],
             &[("top_p", "0.5"), ("top_k", "40"), ("frequency_penalty", "0.1"), ("presence_penalty", "0.2")]),
            // Noise keys go, whatever their value.
            (&[("max_retries", "0"), ("maxRetries", "2"), ("request_timeout", "30"), ("timeout", "30"),
               ("reasoning_effort", "low")],
             &[("reasoning_effort", "low")]),
            // Unknown keys are kept as they are; duplicates keep the first.
            (&[("logit_bias", "{}"), ("logit_bias", "{\"1\":2}")], &[("logit_bias", "{}")]),
        ];
        for (i, (input, want)) in cases.iter().enumerate() {
            let mut got = map(input);
            canonicalize(&mut got);
            assert_eq!(got, map(want), "case {i}: {input:?}");
        }
    }

    #[test]
    fn every_alias_names_a_canonical_key_that_is_not_itself_an_alias_or_noise() {
        for (alias, name) in ALIASES {
            assert_ne!(alias, name);
            assert_eq!(canonical(name), Some(*name), "{alias} -> {name}");
            assert!(!NOISE.contains(alias), "{alias} is both an alias and noise");
        }
    }
}

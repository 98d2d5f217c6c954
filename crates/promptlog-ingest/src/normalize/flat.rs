//! Reassembles flattened, indexed attributes (`prefix.{i}.a.b`) into JSON, e.g. OpenInference's
//! `llm.input_messages.0.message.role` or OpenLLMetry's `gen_ai.prompt.0.content`.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde_json::{Map, Value as Json};

use super::attrs::value_to_json;

/// Most entries one indexed list may have (hostile-input guard: an index of 10^9 must not allocate).
const MAX_INDEX: usize = 10_000;

/// Builds the JSON tree of every attribute under `prefix.`; objects whose keys are all indices become
/// arrays in index order. `None` when no attribute has the prefix.
pub fn unflatten(attrs: &[KeyValue], prefix: &str) -> Option<Json> {
    let mut root = Map::new();
    let mut found = false;
    for kv in attrs {
        let Some(rest) = kv.key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else { continue };
        let Some(value) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else { continue };
        if rest.split('.').any(|seg| seg.parse::<usize>().is_ok_and(|i| i > MAX_INDEX)) {
            continue;
        }
        found = true;
        insert(&mut root, rest, value_to_json(value, 0));
    }
    found.then(|| arrays(Json::Object(root)))
}

fn insert(node: &mut Map<String, Json>, path: &str, value: Json) {
    match path.split_once('.') {
        None => {
            node.insert(path.to_owned(), value);
        }
        Some((head, tail)) => {
            let child = node.entry(head.to_owned()).or_insert_with(|| Json::Object(Map::new()));
            if !child.is_object() {
                // `a.b = x` and `a.b.c = y` both present: keep the scalar under an empty key.
                let scalar = std::mem::replace(child, Json::Object(Map::new()));
                child.as_object_mut().expect("just set").insert(String::new(), scalar);
            }
            insert(child.as_object_mut().expect("object"), tail, value);
        }
    }
}

/// Turns `{"0": .., "1": ..}` objects into arrays, recursively.
fn arrays(node: Json) -> Json {
    match node {
        Json::Object(map) => {
            let all_indices = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if all_indices {
                let mut items: Vec<(usize, Json)> =
                    map.into_iter().map(|(k, v)| (k.parse().unwrap_or(0), arrays(v))).collect();
                items.sort_by_key(|(i, _)| *i);
                Json::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Json::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptlog_otlp::kv;
    use serde_json::json;

    #[test]
    fn indexed_keys_become_ordered_arrays() {
        let attrs = vec![
            kv("llm.input_messages.1.message.role", "user"),
            kv("llm.input_messages.0.message.role", "system"),
            kv("llm.input_messages.1.message.tool_calls.0.tool_call.function.name", "f"),
            kv("llm.input_messages.10.message.role", "tool"),
            kv("llm.model_name", "m"),
        ];
        assert_eq!(
            unflatten(&attrs, "llm.input_messages").unwrap(),
            json!([
                {"message": {"role": "system"}},
                {"message": {"role": "user", "tool_calls": [{"tool_call": {"function": {"name": "f"}}}]}},
                {"message": {"role": "tool"}},
            ])
        );
        assert_eq!(unflatten(&attrs, "llm.output_messages"), None);
    }

    #[test]
    fn huge_indices_are_ignored() {
        let attrs = vec![kv("p.999999999.role", "user"), kv("p.0.role", "system")];
        assert_eq!(unflatten(&attrs, "p").unwrap(), json!([{"role": "system"}]));
    }
}

//! Which managed prompt a call used: `PromptName`, `PromptVersion`, `PromptTemplate`, `PromptVariables`,
//! from every convention that carries them, each column from the first key that holds a value:
//!
//! | column   | Langfuse                              | OpenLLMetry (Traceloop)                     | OpenInference                   | OTel GenAI           |
//! |----------|---------------------------------------|---------------------------------------------|---------------------------------|----------------------|
//! | name     | `langfuse.observation.prompt.name`    | `traceloop.prompt.key`                      | `prompt.id` (vendor prompt id)  | `gen_ai.prompt.name` |
//! | version  | `langfuse.observation.prompt.version` | `traceloop.prompt.version`, `…version_name` | `llm.prompt_template.version`   | —                    |
//! | template | —                                     | `traceloop.prompt.template`                 | `llm.prompt_template.template`  | —                    |
//! | variables| —                                     | `traceloop.prompt.template_variables[.<k>]` | `llm.prompt_template.variables` | —                    |
//!
//! The GenAI registry has only `gen_ai.prompt.name` (no version, template or variables). Variables are a
//! JSON object (or a key-value list), or, as the Traceloop SDK sends them, one attribute per variable under
//! `traceloop.prompt.template_variables.`; non-string values are kept as JSON.

use serde_json::Value as Json;

use super::attrs::{Attrs, value_to_string};
use super::call::fill_if_empty;
use crate::rows::LlmCallRow;

const NAME_KEYS: &[&str] =
    &["langfuse.observation.prompt.name", "traceloop.prompt.key", "gen_ai.prompt.name", "prompt.id"];
const VERSION_KEYS: &[&str] = &[
    "langfuse.observation.prompt.version",
    "traceloop.prompt.version",
    "traceloop.prompt.version_name",
    "llm.prompt_template.version",
];
const TEMPLATE_KEYS: &[&str] = &["traceloop.prompt.template", "llm.prompt_template.template"];
const VARIABLES_KEYS: &[&str] = &["traceloop.prompt.template_variables", "llm.prompt_template.variables"];
const VARIABLE_PREFIX: &str = "traceloop.prompt.template_variables.";

/// Fills the prompt columns that are still empty.
pub fn fill(row: &mut LlmCallRow, a: Attrs<'_>) {
    fill_if_empty(&mut row.prompt_name, NAME_KEYS.iter().find_map(|k| a.str(k)));
    fill_if_empty(&mut row.prompt_version, VERSION_KEYS.iter().find_map(|k| a.str(k)));
    fill_if_empty(&mut row.prompt_template, TEMPLATE_KEYS.iter().find_map(|k| a.str(k)));
    if row.prompt_variables.is_empty() {
        row.prompt_variables = VARIABLES_KEYS.iter().find_map(|k| variables(a, k)).unwrap_or_default();
    }
    if row.prompt_variables.is_empty() {
        for kv in a.0 {
            let Some(name) = kv.key.strip_prefix(VARIABLE_PREFIX) else { continue };
            if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref())
                && !row.prompt_variables.iter().any(|(k, _)| k == name)
            {
                row.prompt_variables.push((name.to_owned(), value_to_string(v)));
            }
        }
    }
}

/// A JSON object (string or key-value list) as variable name → value.
fn variables(a: Attrs<'_>, key: &str) -> Option<Vec<(String, String)>> {
    let Json::Object(map) = a.json(key)? else { return None };
    let vars: Vec<(String, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Json::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    (!vars.is_empty()).then_some(vars)
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;

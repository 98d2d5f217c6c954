//! Readers of ClickHouse `JSONEachRow` rows: one cell at a time ([`cell`], [`try_cell`]) by the cell's
//! Rust type ([`FromCell`]), or a whole `llm_calls` row back into an [`LlmCallRow`] ([`llm_call`]).

use std::collections::BTreeMap;

use promptlog_ingest::rows::{AttrMap, LlmCallRow};
use serde_json::{Map, Value};

/// One row of a `JSONEachRow` answer.
pub type Row = Map<String, Value>;

/// A Rust value one ClickHouse cell in `JSONEachRow` reads as. `value` is `None` when the row has no
/// such column (only `Option` types accept that).
pub trait FromCell<'a>: Sized {
    fn from_cell(col: &str, value: Option<&'a Value>) -> Result<Self, String>;
}

fn present<'a>(col: &str, value: Option<&'a Value>) -> Result<&'a Value, String> {
    value.ok_or_else(|| format!("column {col} missing"))
}

/// The cell `col` of `row` as a `T`, or why it is not one.
pub fn try_cell<'a, T: FromCell<'a>>(row: &'a Row, col: &str) -> Result<T, String> {
    T::from_cell(col, row.get(col))
}

/// The cell `col` of `row` as a `T`; panics when it is not one.
pub fn cell<'a, T: FromCell<'a>>(row: &'a Row, col: &str) -> T {
    try_cell(row, col).unwrap_or_else(|e| panic!("{e}"))
}

/// A number cell: a JSON number, or a quoted one (ClickHouse quotes 64-bit integers by default).
fn number<T>(col: &str, value: Option<&Value>, ty: &str, of: fn(&serde_json::Number) -> Option<T>) -> Result<T, String>
where
    T: std::str::FromStr<Err: std::fmt::Display>,
{
    match present(col, value)? {
        Value::String(s) => s.parse().map_err(|e| format!("{col} = {s:?} is not {ty}: {e}")),
        Value::Number(n) => of(n).ok_or_else(|| format!("{col} = {n} is not {ty}")),
        other => Err(format!("{col}: expected {ty}, got {other}")),
    }
}

/// UInt64 (also UInt8..UInt32).
impl FromCell<'_> for u64 {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        number(col, value, "a UInt64", serde_json::Number::as_u64)
    }
}

/// Int64 (also Int8..Int32).
impl FromCell<'_> for i64 {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        number(col, value, "an Int64", serde_json::Number::as_i64)
    }
}

/// Float64.
impl FromCell<'_> for f64 {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        number(col, value, "a Float64", serde_json::Number::as_f64)
    }
}

/// Nullable(Float64): null or an absent column is `None`.
impl FromCell<'_> for Option<f64> {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(_) => f64::from_cell(col, value).map(Some),
        }
    }
}

/// Bool (`true`/`false`, or 0/1 from older servers).
impl FromCell<'_> for bool {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        match present(col, value)? {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => Ok(n.as_u64() == Some(1)),
            other => Err(format!("{col}: expected a Bool, got {other}")),
        }
    }
}

/// String, borrowed from the row.
impl<'a> FromCell<'a> for &'a str {
    fn from_cell(col: &str, value: Option<&'a Value>) -> Result<Self, String> {
        match present(col, value)? {
            Value::String(s) => Ok(s),
            other => Err(format!("{col}: expected a String, got {other}")),
        }
    }
}

impl FromCell<'_> for String {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        <&str>::from_cell(col, value).map(str::to_owned)
    }
}

fn items<'a>(col: &str, value: Option<&'a Value>, what: &str) -> Result<&'a [Value], String> {
    match present(col, value)? {
        Value::Array(items) => Ok(items),
        other => Err(format!("{col}: expected an {what}, got {other}")),
    }
}

/// Array(String).
impl FromCell<'_> for Vec<String> {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        items(col, value, "Array(String)")?.iter().map(|v| String::from_cell(col, Some(v))).collect()
    }
}

fn pairs<'a>(
    col: &str,
    value: Option<&'a Value>,
) -> Result<impl Iterator<Item = Result<(String, String), String>> + 'a, String> {
    let col = col.to_owned();
    match present(&col, value)? {
        Value::Object(m) => Ok(m.iter().map(move |(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(format!("{col}.{k}: non-string value {other}")),
        })),
        other => Err(format!("{col}: expected a Map(String, String), got {other}")),
    }
}

/// Map(String, String), by key.
impl FromCell<'_> for BTreeMap<String, String> {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        pairs(col, value)?.collect()
    }
}

/// Map(String, String), in the server's order (the rows' [`AttrMap`]).
impl FromCell<'_> for AttrMap {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        pairs(col, value)?.collect()
    }
}

/// Array(Map(String, String)).
impl FromCell<'_> for Vec<BTreeMap<String, String>> {
    fn from_cell(col: &str, value: Option<&Value>) -> Result<Self, String> {
        items(col, value, "Array(Map(String, String))")?.iter().map(|m| BTreeMap::from_cell(col, Some(m))).collect()
    }
}

/// A String cell holding JSON: `None` when empty, an error when it is not JSON.
pub fn json_text(col: &str, text: &str) -> Result<Option<Value>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|e| format!("{col} is not JSON ({e}): {text:?}"))
}

/// What to `SELECT` from `llm_calls` for [`llm_call`]: every column, and the timestamp in nanoseconds
/// (`Timestamp` itself is DateTime64(9) text in the server's time zone).
pub const LLM_CALL_COLUMNS: &str = "*, toUnixTimestamp64Nano(Timestamp) AS TimestampNs";

/// A row taken apart column by column; what is left are the columns nobody asked for.
struct Cells(Row);

impl Cells {
    fn take<T: for<'a> FromCell<'a>>(&mut self, col: &str) -> Result<T, String> {
        let v = self.0.remove(col).ok_or_else(|| format!("column {col} missing"))?;
        T::from_cell(col, Some(&v))
    }
}

/// Rebuilds an [`LlmCallRow`] from a `SELECT` of [`LLM_CALL_COLUMNS`] in `JSONEachRow`. Strict both
/// ways: a column the struct lacks, or a field the row lacks, is an error.
pub fn llm_call(json: Row) -> Result<LlmCallRow, String> {
    let mut c = Cells(json);
    let timestamp = c.take("TimestampNs")?;
    // DateTime64(9) as text, in the server's time zone: TimestampNs instead.
    c.0.remove("Timestamp").ok_or("column Timestamp missing")?;
    let row = LlmCallRow {
        project_id: c.take("ProjectId")?,
        timestamp,
        duration: c.take("Duration")?,
        trace_id: c.take("TraceId")?,
        span_id: c.take("SpanId")?,
        parent_span_id: c.take("ParentSpanId")?,
        span_name: c.take("SpanName")?,
        service_name: c.take("ServiceName")?,
        environment: c.take("Environment")?,
        scope_name: c.take("ScopeName")?,
        operation: c.take("Operation")?,
        provider: c.take("Provider")?,
        request_model: c.take("RequestModel")?,
        response_model: c.take("ResponseModel")?,
        request_params: c.take("RequestParams")?,
        input_tokens: c.take("InputTokens")?,
        output_tokens: c.take("OutputTokens")?,
        total_tokens: c.take("TotalTokens")?,
        cache_read_input_tokens: c.take("CacheReadInputTokens")?,
        cache_write_input_tokens: c.take("CacheWriteInputTokens")?,
        reasoning_output_tokens: c.take("ReasoningOutputTokens")?,
        cost_usd: c.take("CostUsd")?,
        is_rollup: c.take("IsRollup")?,
        finish_reasons: c.take("FinishReasons")?,
        response_id: c.take("ResponseId")?,
        status_code: c.take("StatusCode")?,
        error_type: c.take("ErrorType")?,
        error_message: c.take("ErrorMessage")?,
        session_id: c.take("SessionId")?,
        user_id: c.take("UserId")?,
        tags: c.take("Tags")?,
        metadata: c.take("Metadata")?,
        system_instructions: c.take("SystemInstructions")?,
        input_messages: c.take("InputMessages")?,
        output_messages: c.take("OutputMessages")?,
        tool_definitions: c.take("ToolDefinitions")?,
        input_text: c.take("InputText")?,
        output_text: c.take("OutputText")?,
        time_to_first_token: c.take("TimeToFirstToken")?,
        convention: c.take("Convention")?,
        redactions: c.take("Redactions")?,
        duplicate_of: c.take("DuplicateOf")?,
        input_cost_usd: c.take("InputCostUsd")?,
        output_cost_usd: c.take("OutputCostUsd")?,
        cost_source: c.take("CostSource")?,
        price_model: c.take("PriceModel")?,
        prompt_name: c.take("PromptName")?,
        prompt_version: c.take("PromptVersion")?,
        prompt_template: c.take("PromptTemplate")?,
        prompt_variables: c.take("PromptVariables")?,
        span_attributes: c.take("SpanAttributes")?,
        resource_attributes: c.take::<AttrMap>("ResourceAttributes")?.into(),
    };
    if !c.0.is_empty() {
        return Err(format!("columns LlmCallRow does not have: {:?}", c.0.keys().collect::<Vec<_>>()));
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn cells_read_quoted_and_plain_numbers_nulls_and_maps() {
        let r = row(r#"{"n":"18446744073709551615","i":"-3","f":1.5,"q":"2.5","z":null,"b":1,
            "s":"x","a":["p","q"],"m":{"k":"v"},"am":[{"a":"1"},{}]}"#);
        assert_eq!(cell::<u64>(&r, "n"), u64::MAX);
        assert_eq!(cell::<i64>(&r, "i"), -3);
        assert_eq!((cell::<f64>(&r, "f"), cell::<f64>(&r, "q")), (1.5, 2.5));
        assert_eq!((cell::<Option<f64>>(&r, "z"), cell::<Option<f64>>(&r, "absent")), (None, None));
        assert!(cell::<bool>(&r, "b"));
        assert_eq!(cell::<&str>(&r, "s"), "x");
        assert_eq!(cell::<Vec<String>>(&r, "a"), ["p", "q"]);
        assert_eq!(cell::<AttrMap>(&r, "m"), [("k".to_owned(), "v".to_owned())]);
        assert_eq!(cell::<Vec<BTreeMap<String, String>>>(&r, "am").len(), 2);
        assert!(try_cell::<u64>(&r, "s").is_err());
        assert_eq!(try_cell::<String>(&r, "absent"), Err("column absent missing".to_owned()));
    }

    #[test]
    fn json_text_is_none_when_empty_and_an_error_when_not_json() {
        assert_eq!(json_text("c", ""), Ok(None));
        assert_eq!(json_text("c", "[1]"), Ok(Some(serde_json::json!([1]))));
        assert!(json_text("c", "{").is_err());
    }

    /// A row as `SELECT {LLM_CALL_COLUMNS}` answers in JSONEachRow: maps as objects, 64-bit integers quoted.
    fn as_selected(call: &LlmCallRow) -> Row {
        let mut json = serde_json::to_value(call).unwrap().as_object().cloned().unwrap();
        let ts = json.remove("Timestamp").unwrap();
        for (col, v) in json.iter_mut() {
            if ["RequestParams", "Metadata", "PromptVariables", "SpanAttributes", "ResourceAttributes"]
                .contains(&col.as_str())
            {
                let pairs = v.as_array().unwrap().clone();
                *v = Value::Object(pairs.iter().map(|p| (p[0].as_str().unwrap().into(), p[1].clone())).collect());
            } else if let Some(n) = v.as_u64() {
                *v = Value::String(n.to_string());
            }
        }
        json.insert("TimestampNs".into(), Value::String(ts.to_string()));
        json.insert("Timestamp".into(), "2026-12-01 10:00:00.000000000".into());
        json
    }

    #[test]
    fn llm_call_rows_are_read_back_strictly() {
        let call = LlmCallRow {
            timestamp: 1_700_000_000_000_000_001,
            duration: 5,
            span_id: "s".into(),
            request_params: vec![("temperature".into(), "0.2".into())],
            cost_usd: Some(0.5),
            input_cost_usd: Some(0.25),
            cost_source: "price_table".into(),
            price_model: "openai/gpt-4o".into(),
            is_rollup: true,
            finish_reasons: vec!["stop".into()],
            prompt_name: "support-answer".into(),
            prompt_variables: vec![("city".into(), "Oslo".into())],
            ..LlmCallRow::default()
        };
        assert_eq!(llm_call(as_selected(&call)), Ok(call.clone()));
        let mut extra = as_selected(&call);
        extra.insert("Surprise".into(), "x".into());
        assert!(llm_call(extra).unwrap_err().contains("Surprise"));
        let mut short = as_selected(&call);
        short.remove("UserId");
        assert_eq!(llm_call(short), Err("column UserId missing".to_owned()));
    }
}

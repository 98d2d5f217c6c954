//! How the commands print calls for people: a table, one tail line, a call, a session. Stored text
//! is untrusted (prompts, completions, attributes come from applications and their users), so every
//! control character, terminal escape sequences included, is replaced before it reaches the
//! terminal; only newlines and tabs survive, and only in multi-line blocks.

use std::fmt::Write as _;

use super::model::{CallDetail, CallSummary, Message, Score, Session};

/// Prompt characters shown in a table row.
const PROMPT_COLUMN_CHARS: usize = 60;
/// Widest service or model column.
const NAME_COLUMN_CHARS: usize = 24;

/// `text` on one line: control characters (newlines included) become spaces or U+FFFD.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// `text` as a block: newlines and tabs kept, every other control character replaced.
pub(crate) fn block(text: &str) -> String {
    text.chars().map(|c| if c.is_control() && c != '\n' && c != '\t' { '\u{FFFD}' } else { c }).collect()
}

fn clip(text: &str, max: usize) -> String {
    let text = one_line(text);
    if text.chars().count() <= max {
        return text;
    }
    let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn cost(c: Option<f64>) -> String {
    match c {
        None => "-".into(),
        Some(c) if c > 0.0 && c < 0.000_001 => "<$0.000001".into(),
        Some(c) => format!("${c:.6}"),
    }
}

/// `2026-12-01 18:40:01.123` (UTC, milliseconds).
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..23).unwrap_or(rfc3339).replace('T', " ")
}

fn cells(c: &CallSummary) -> [String; 9] {
    [
        short_time(&c.time),
        c.span_id.clone(),
        clip(&c.service, NAME_COLUMN_CHARS),
        clip(&c.model, NAME_COLUMN_CHARS),
        c.status.clone(),
        format!("{:.0} ms", c.latency_ms),
        format!("{}/{}", c.input_tokens, c.output_tokens),
        cost(c.cost_usd),
        clip(&c.prompt_start, PROMPT_COLUMN_CHARS),
    ]
}

const HEADER: [&str; 9] = ["TIME (UTC)", "SPAN", "SERVICE", "MODEL", "STATUS", "LATENCY", "TOKENS", "COST", "PROMPT"];

/// The call list as an aligned table with a header.
pub(crate) fn table(calls: &[CallSummary]) -> String {
    let rows: Vec<[String; 9]> = calls.iter().map(cells).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// One call on one line (for `tail`).
pub(crate) fn line(c: &CallSummary) -> String {
    let [time, span, service, model, status, latency, tokens, cost, prompt] = cells(c);
    format!("{time}  {span}  {service}  {model}  {status}  {latency}  {tokens} tok  {cost}  {prompt}")
        .trim_end()
        .to_owned()
}

fn message(out: &mut String, m: &Message) {
    let finish = m.finish_reason.as_deref().map(|f| format!(", finish: {}", one_line(f))).unwrap_or_default();
    let _ = writeln!(out, "── {}{finish} ──", one_line(if m.role.is_empty() { "message" } else { &m.role }));
    if !m.text.is_empty() {
        let _ = writeln!(out, "{}", block(&m.text));
    }
    for t in &m.tool_calls {
        let _ = writeln!(
            out,
            "[tool call {} id={}] {}",
            one_line(&t.name),
            one_line(&t.id),
            one_line(&t.arguments.to_string())
        );
    }
    for t in &m.tool_results {
        let _ = writeln!(out, "[tool result id={}] {}", one_line(&t.id), block(&json_text(&t.response)));
    }
}

fn json_text(v: &serde_json::Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn score(out: &mut String, s: &Score) {
    let value = s.value.map(|v| v.to_string()).unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} {} on {}: {}{}{} ({}, {}){}",
        short_time(&s.time),
        one_line(&s.name),
        s.target,
        value,
        if s.label.is_empty() { String::new() } else { format!(" {}", one_line(&s.label)) },
        if s.comment.is_empty() { String::new() } else { format!(" — {}", one_line(&s.comment)) },
        one_line(&s.source),
        one_line(&s.author),
        if s.data_type.is_empty() { String::new() } else { format!(" [{}]", s.data_type) },
    );
}

fn pairs<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    map.into_iter().map(|(k, v)| format!("{}={}", one_line(k), one_line(v))).collect::<Vec<_>>().join(" ")
}

/// A whole call for `show`.
pub(crate) fn call(d: &CallDetail) -> String {
    let s = &d.summary;
    let mut o = String::new();
    let _ = writeln!(o, "call {}  trace {}", s.span_id, s.trace_id);
    let _ = writeln!(o, "time        {}", s.time);
    let _ = writeln!(
        o,
        "project     {}   service {}   environment {}",
        one_line(&s.project),
        one_line(&s.service),
        one_line(&s.environment)
    );
    let _ = writeln!(
        o,
        "model       {} -> {} ({}, {})",
        one_line(&d.request_model),
        one_line(&d.response_model),
        one_line(&d.provider),
        one_line(&s.operation)
    );
    let ttft = d.time_to_first_token_s.map(|t| format!("   time to first token {:.0} ms", t * 1e3)).unwrap_or_default();
    let _ = writeln!(o, "status      {}   latency {:.0} ms{ttft}", s.status, s.latency_ms);
    let u = &d.usage;
    let _ = writeln!(
        o,
        "tokens      {} in / {} out / {} total (cache read {}, cache write {}, reasoning {})",
        u.input_tokens,
        u.output_tokens,
        u.total_tokens,
        u.cache_read_input_tokens,
        u.cache_write_input_tokens,
        u.reasoning_output_tokens
    );
    let _ = writeln!(
        o,
        "cost        {} (input {}, output {}; {} {})",
        cost(d.cost.total_usd),
        cost(d.cost.input_usd),
        cost(d.cost.output_usd),
        one_line(&d.cost.source),
        one_line(&d.cost.price_model)
    );
    let i = &d.identity;
    if !i.session.is_empty() || !i.user.is_empty() {
        let _ = writeln!(o, "session     {}   user {}", one_line(&i.session), one_line(&i.user));
    }
    if !i.tags.is_empty() || !i.metadata.is_empty() {
        let _ = writeln!(o, "tags        {}   metadata {}", one_line(&i.tags.join(",")), pairs(&i.metadata));
    }
    if !d.prompt_name.is_empty() {
        let _ = writeln!(o, "prompt      {} v{}", one_line(&d.prompt_name), one_line(&d.prompt_version));
    }
    if !d.parameters.is_empty() {
        let _ = writeln!(o, "parameters  {}", pairs(&d.parameters));
    }
    if !d.finish_reasons.is_empty() {
        let _ = writeln!(o, "finish      {}", one_line(&d.finish_reasons.join(",")));
    }
    if !d.error_type.is_empty() || !d.error_message.is_empty() {
        let _ = writeln!(o, "error       {}: {}", one_line(&d.error_type), one_line(&d.error_message));
    }
    if !d.duplicate_of.is_empty() {
        let _ = writeln!(o, "duplicate   of span {}", one_line(&d.duplicate_of));
    }
    if !d.system_prompt.is_empty() {
        let _ = writeln!(o, "\n── system ──\n{}", block(&d.system_prompt));
    }
    for (title, messages) in [("", &d.input_messages), ("\n═══ completion ═══", &d.output_messages)] {
        if !messages.is_empty() {
            let _ = writeln!(o, "{title}");
        }
        for m in messages {
            message(&mut o, m);
        }
    }
    if d.input_messages.is_empty() && !d.input_text.is_empty() {
        let _ = writeln!(o, "── prompt ──\n{}", block(&d.input_text));
    }
    if d.output_messages.is_empty() && !d.output_text.is_empty() {
        let _ = writeln!(o, "── completion ──\n{}", block(&d.output_text));
    }
    if !d.scores.is_empty() {
        let _ = writeln!(o, "\nscores");
        for s in &d.scores {
            score(&mut o, s);
        }
    }
    let _ = writeln!(o, "\nspan attributes      {}", pairs(&d.span_attributes));
    let _ = writeln!(o, "resource attributes  {}", pairs(&d.resource_attributes));
    o
}

/// A session turn by turn for `session`.
pub(crate) fn session(s: &Session) -> String {
    let t = &s.totals;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "session {}: {} turn(s), {} error(s), users {}, {} in / {} out tokens, cost ${:.6}, {:.0} ms in calls over {:.1} s",
        one_line(&s.id),
        t.calls,
        t.errors,
        one_line(&s.users.join(",")),
        t.input_tokens,
        t.output_tokens,
        t.cost_usd,
        t.latency_ms,
        t.duration_s
    );
    for turn in &s.turns {
        let c = &turn.call;
        let _ = writeln!(
            o,
            "\n#{} {}  {}  {}  {:.0} ms  {}/{} tok  {}  span {}",
            turn.turn,
            short_time(&c.time),
            one_line(&c.model),
            c.status,
            c.latency_ms,
            c.input_tokens,
            c.output_tokens,
            cost(c.cost_usd),
            c.span_id
        );
        let _ = writeln!(o, "user: {}", block(&turn.user_text));
        if !turn.completion.is_empty() {
            let _ = writeln!(o, "assistant: {}", block(&turn.completion));
        }
        if !turn.error_message.is_empty() {
            let _ = writeln!(o, "error: {}", one_line(&turn.error_message));
        }
    }
    if !s.scores.is_empty() {
        let _ = writeln!(o, "\nscores");
        for sc in &s.scores {
            score(&mut o, sc);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_never_reach_the_terminal() {
        let hostile = "a\u{1b}]0;owned\u{7}b\u{1b}[2Jc\r\nd\u{9b}e";
        for shown in [one_line(hostile), block(hostile), clip(hostile, 100)] {
            assert!(!shown.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{shown:?}");
        }
        assert_eq!(block("x\ny\tz"), "x\ny\tz");
        assert_eq!(one_line("x\ny"), "x y");
    }

    #[test]
    fn clipping_counts_characters_not_bytes() {
        assert_eq!(clip("ééééé", 3), "éé…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn tiny_costs_do_not_read_as_free() {
        assert_eq!(
            (cost(Some(1.8e-7)), cost(Some(0.000225)), cost(Some(0.0)), cost(None)),
            ("<$0.000001".to_owned(), "$0.000225".to_owned(), "$0.000000".to_owned(), "-".to_owned())
        );
    }
}

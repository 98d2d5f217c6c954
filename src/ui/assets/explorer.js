// promptlog explorer. No dependencies, no build step.
//
// Safety rule of this file: every value that comes from the API (prompts, completions, attributes,
// names) reaches the page only as a text node (`text()` / `textContent`) or as an attribute this
// file builds itself; HTML is never parsed from data. The server's Content-Security-Policy allows
// only this script, so an injected <script> could not run even if it were parsed.
"use strict";

(function () {
  const KEY_STORAGE = "promptlog.key";
  const PAGE_SIZE = 50;
  const FILTERS = ["since", "until", "project", "service", "environment", "model", "user", "session", "status",
    "prompt_name", "prompt_version", "q"];
  const FILTER_LABELS = {
    since: "Time range", until: "Until", project: "Project", service: "Service", environment: "Environment",
    model: "Model", user: "User", session: "Session", status: "Status", prompt_name: "Prompt",
    prompt_version: "Version", q: "Search prompt and completion",
  };
  const RANGES = [["15m", "last 15 minutes"], ["1h", "last hour"], ["24h", "last 24 hours"], ["7d", "last 7 days"],
    ["30d", "last 30 days"], ["", "all time"]];
  let info = { auth: false };

  // ---- DOM helpers: text only ----

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name in node && typeof value !== "string") node[name] = value;
      else node.setAttribute(name, String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // A link inside the explorer; parts are URI-encoded, so data never becomes markup or another URL.
  function hashLink(label, parts, props) {
    const href = "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
    return el("a", Object.assign({ href }, props || {}), label);
  }

  // ---- formatting ----

  function fmtTime(iso) {
    return iso ? iso.replace("T", " ").replace(/(\.\d{3})\d*/, "$1").replace("Z", "") : "";
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return "";
    return ms >= 10000 ? (ms / 1000).toFixed(1) + " s" : Math.round(ms) + " ms";
  }
  function fmtCost(usd) {
    if (usd === null || usd === undefined) return "–";
    if (usd > 0 && usd < 0.000001) return "<$0.000001";
    return "$" + (usd >= 0.01 ? usd.toFixed(4) : usd.toFixed(6));
  }
  function fmtInt(n) {
    return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US");
  }
  function clip(text, n) {
    const t = (text || "").replace(/\s+/g, " ").trim();
    return t.length > n ? t.slice(0, n - 1) + "…" : t;
  }

  // ---- API ----

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, options) {
    const headers = { accept: "application/json" };
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.authorization = "Bearer " + key;
    const init = Object.assign({ headers, credentials: "omit", cache: "no-store" }, options || {});
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(path, init);
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : { error: await response.text() };
    if (!response.ok) throw new ApiError(response.status, body.error || body.message || response.statusText);
    return body;
  }

  function showLogin(message) {
    document.getElementById("login").hidden = false;
    clear(document.getElementById("view"));
    document.getElementById("login-error").textContent = message || "";
    document.getElementById("login-key").focus();
  }

  function failed(view, error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403) && info.auth) {
      showLogin(error.message);
      return;
    }
    clear(view).appendChild(el("p", { class: "error", role: "alert", text: error.message }));
  }

  // ---- list ----

  function currentParams() {
    const hash = location.hash.replace(/^#\/?/, "");
    const query = hash.startsWith("?") ? hash.slice(1) : "";
    const params = new URLSearchParams(query);
    if (!params.has("since")) params.set("since", "24h");
    return params;
  }

  function filterForm(params) {
    const fields = FILTERS.map((name) => {
      let input;
      if (name === "since") {
        input = el("select", { name, id: "filter-since" },
          RANGES.map(([value, label]) => el("option", { value, selected: params.get("since") === value, text: label })));
      } else if (name === "status") {
        input = el("select", { name, id: "filter-status" },
          [["", "any"], ["Ok", "Ok"], ["Error", "Error"], ["Unset", "Unset"]].map(([value, label]) =>
            el("option", { value, selected: (params.get("status") || "") === value, text: label })));
      } else {
        input = el("input", {
          name, id: name === "q" ? "search" : "filter-" + name, value: params.get(name) || "",
          type: name === "q" ? "search" : "text", spellcheck: "false", autocomplete: "off",
          placeholder: name === "until" ? "e.g. 1h or 2026-01-31T18:00:00Z" : "",
        });
      }
      return el("label", { class: "filter filter-" + name }, el("span", { text: FILTER_LABELS[name] }), input);
    });
    const form = el("form", { id: "filters", class: "filters", role: "search" }, fields,
      el("div", { class: "filter-buttons" },
        el("button", { type: "submit", text: "Apply" }),
        el("button", { type: "button", id: "filters-clear", text: "Clear", onclick: () => { location.hash = "#/"; } })));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const [name, value] of new FormData(form).entries()) {
        if (String(value).trim() !== "" || name === "since") next.set(name, String(value).trim());
      }
      location.hash = "#/?" + next.toString();
    });
    return form;
  }

  async function renderList(view) {
    const params = currentParams();
    const cursor = params.get("cursor") || "";
    const query = new URLSearchParams();
    for (const name of FILTERS) if (params.get(name)) query.set(name, params.get(name));
    // `limit` in the URL changes the page size (the server caps it).
    query.set("limit", params.get("limit") || String(PAGE_SIZE));
    if (cursor) query.set("cursor", cursor);
    document.title = "Calls · promptlog explorer";
    clear(view).appendChild(el("h1", { text: "Calls" }));
    view.appendChild(filterForm(params));
    const status = view.appendChild(el("p", { class: "muted", id: "list-status", text: "Loading…" }));
    let data;
    try {
      data = await api("/api/calls?" + query.toString());
    } catch (error) {
      failed(status, error);
      return;
    }
    status.textContent = data.calls.length
      ? `${data.calls.length} calls${cursor ? " (older page)" : ""}, newest first` : "No call matches these filters.";
    const head = el("tr", {}, ["Time", "Service", "Model", "Latency", "Tokens in / out", "Cost", "Status", "Prompt"]
      .map((h) => el("th", { scope: "col", text: h })));
    const rows = data.calls.map((c) => {
      const row = el("tr", {
        class: "call-row" + (c.status === "Error" ? " is-error" : ""), tabindex: "0",
        "data-trace-id": c.trace_id, "data-span-id": c.span_id,
      },
      el("td", { class: "nowrap", text: fmtTime(c.time) }),
      el("td", { class: "nowrap", text: c.service }),
      el("td", { class: "nowrap", text: c.model }),
      el("td", { class: "num", text: fmtMs(c.latency_ms) }),
      el("td", { class: "num", text: `${fmtInt(c.input_tokens)} / ${fmtInt(c.output_tokens)}` }),
      el("td", { class: "num", text: fmtCost(c.cost_usd) }),
      el("td", { class: "status status-" + String(c.status).toLowerCase(), text: c.status }),
      el("td", { class: "prompt" }, hashLink(clip(c.prompt_start, 120) || `(${c.operation || "call"}: no prompt text)`, ["call", c.trace_id, c.span_id],
        { tabindex: "-1" })));
      row.addEventListener("click", (event) => {
        if (event.target.tagName !== "A") openCall(c);
      });
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") openCall(c);
      });
      return row;
    });
    view.appendChild(el("table", { id: "calls", class: "calls" }, el("thead", {}, head), el("tbody", {}, rows)));
    const page = (to) => {
      const next = new URLSearchParams(params);
      if (to) next.set("cursor", to);
      else next.delete("cursor");
      return "#/?" + next.toString();
    };
    view.appendChild(el("nav", { class: "pager" },
      cursor ? el("a", { href: page(""), id: "newest", text: "← Newest" }) : el("span"),
      data.next_cursor ? el("a", { href: page(data.next_cursor), id: "older", text: "Older →" }) : null));
    const first = view.querySelector("tr.call-row");
    if (first && document.activeElement === document.body) first.focus();
  }

  function openCall(c) {
    location.hash = "#/call/" + encodeURIComponent(c.trace_id) + "/" + encodeURIComponent(c.span_id);
  }

  // ---- one call ----

  // A message part, as stored (OTel GenAI: text, tool_call, tool_call_response, or anything else).
  function renderPart(part) {
    if (typeof part === "string") return el("pre", { class: "text", text: part });
    if (!part || typeof part !== "object") return el("pre", { class: "text", text: JSON.stringify(part) });
    const type = part.type || "";
    if (type === "text" || type === "thinking" || type === "reasoning") {
      return el("pre", { class: "text" + (type === "text" ? "" : " thinking"), text: String(part.content ?? "") });
    }
    if (type === "tool_call") {
      return el("div", { class: "tool-call" },
        el("div", { class: "part-head" }, "Tool call ", el("code", { text: part.name || "" }),
          part.id ? el("span", { class: "muted", text: " " + part.id }) : null),
        el("pre", { class: "json", text: pretty(part.arguments) }));
    }
    if (type === "tool_call_response") {
      return el("div", { class: "tool-result" },
        el("div", { class: "part-head" }, "Tool result", part.id ? el("span", { class: "muted", text: " " + part.id }) : null),
        el("pre", { class: "json", text: pretty(part.response ?? part.result) }));
    }
    return el("div", { class: "part-other" }, el("div", { class: "part-head", text: type || "part" }),
      el("pre", { class: "json", text: pretty(part) }));
  }

  function pretty(value) {
    if (typeof value === "string") {
      try {
        return JSON.stringify(JSON.parse(value), null, 2);
      } catch (_) {
        return value;
      }
    }
    return JSON.stringify(value, null, 2) ?? "";
  }

  // A message as the API returns it (role, text, tool_calls, tool_results, finish_reason, and the
  // stored message as `raw`): its stored parts when it has them, so no part kind is lost.
  function renderMessage(message) {
    const role = String(message.role || "unknown");
    const raw = message.raw;
    const parts = raw && Array.isArray(raw.parts) ? raw.parts : [
      ...(message.text ? [{ type: "text", content: message.text }] : []),
      ...(message.tool_calls || []).map((t) => ({ type: "tool_call", id: t.id, name: t.name, arguments: t.arguments })),
      ...(message.tool_results || []).map((t) => ({ type: "tool_call_response", id: t.id, response: t.response })),
    ];
    return el("article", { class: "message role-" + role.replace(/[^a-z_]/gi, "") },
      el("header", {}, el("span", { class: "role", text: role }),
        message.finish_reason ? el("span", { class: "muted", text: " · finish: " + message.finish_reason }) : null,
        raw && raw.name ? el("span", { class: "muted", text: " · " + raw.name }) : null),
      parts.map(renderPart));
  }

  function kvTable(id, entries) {
    const rows = entries.filter(([, v]) => v !== "" && v !== null && v !== undefined)
      .map(([k, v]) => el("tr", {}, el("th", { scope: "row", text: k }),
        el("td", {}, typeof v === "object" && !(v instanceof Node) ? el("pre", { class: "json", text: pretty(v) }) : v)));
    return rows.length ? el("table", { class: "kv", id }, el("tbody", {}, rows)) : el("p", { class: "muted", text: "none" });
  }

  function mapEntries(map) {
    return Object.entries(map || {}).sort(([a], [b]) => a.localeCompare(b));
  }

  function section(title, id, ...body) {
    return el("section", { class: "block", id }, el("h2", { text: title }), body);
  }

  async function renderCall(view, traceId, spanId) {
    clear(view).appendChild(el("p", { class: "muted", text: "Loading…" }));
    let data;
    try {
      data = await api("/api/calls/" + encodeURIComponent(traceId) + "/" + encodeURIComponent(spanId));
    } catch (error) {
      failed(view, error);
      return;
    }
    const d = data.call;
    const c = d.summary;
    const who = d.identity || {};
    const usage = d.usage || {};
    const cost = d.cost || {};
    document.title = "Call " + c.span_id + " · promptlog explorer";
    clear(view);
    view.appendChild(el("nav", { class: "crumbs" }, el("a", { href: "#/", id: "back", text: "← Calls" }),
      c.session ? [" · ", hashLink("Session " + c.session, ["session", c.session], { id: "session-link" })] : null,
      data.grafana_trace_url && /^https?:\/\//.test(data.grafana_trace_url)
        ? [" · ", el("a", { href: data.grafana_trace_url, id: "grafana-link", target: "_blank", rel: "noopener noreferrer",
          text: "Trace in Grafana" })] : null));
    view.appendChild(el("h1", {}, el("span", { text: c.model || c.operation || "call" }),
      el("span", { class: "status status-" + String(c.status).toLowerCase(), text: " " + c.status })));
    view.appendChild(el("p", { class: "summary" },
      `${fmtTime(c.time)} · ${c.service} · ${fmtMs(c.latency_ms)} · ${fmtInt(c.input_tokens)} in / ` +
      `${fmtInt(c.output_tokens)} out · ${fmtCost(c.cost_usd)}`));
    if (d.error_type || d.error_message) {
      view.appendChild(section("Error", "error", el("p", { class: "error" },
        el("strong", { text: d.error_type || "error" }), d.error_message ? ": " + d.error_message : "")));
    }
    view.appendChild(feedbackBox(c));
    if (d.system_prompt) {
      view.appendChild(section("System prompt", "system", el("article", { class: "message role-system" },
        el("pre", { class: "text", text: d.system_prompt }))));
    }
    view.appendChild(section("Messages", "messages", (d.input_messages || []).length
      ? d.input_messages.map(renderMessage) : el("pre", { class: "text", text: d.input_text || "(no input recorded)" })));
    view.appendChild(section("Completion", "completion", (d.output_messages || []).length
      ? d.output_messages.map(renderMessage) : el("pre", { class: "text", text: d.output_text || "(no output recorded)" })));
    if (d.tool_definitions) {
      view.appendChild(section("Tools offered", "tools", el("pre", { class: "json", text: pretty(d.tool_definitions) })));
    }
    view.appendChild(section("Usage and cost", "usage", kvTable("usage-table", [
      ["Input tokens", fmtInt(usage.input_tokens)], ["Output tokens", fmtInt(usage.output_tokens)],
      ["Total tokens", fmtInt(usage.total_tokens)], ["Cache read tokens", fmtInt(usage.cache_read_input_tokens)],
      ["Cache write tokens", fmtInt(usage.cache_write_input_tokens)],
      ["Reasoning tokens", fmtInt(usage.reasoning_output_tokens)],
      ["Cost", fmtCost(cost.total_usd)], ["Input cost", cost.input_usd == null ? "" : fmtCost(cost.input_usd)],
      ["Output cost", cost.output_usd == null ? "" : fmtCost(cost.output_usd)], ["Cost source", cost.source],
      ["Price entry", cost.price_model], ["Latency", fmtMs(c.latency_ms)],
      ["Time to first token", d.time_to_first_token_s == null ? "" : fmtMs(d.time_to_first_token_s * 1000)],
      ["Finish reasons", (d.finish_reasons || []).join(", ")],
    ])));
    view.appendChild(section("Parameters", "params", kvTable("params-table", mapEntries(d.parameters))));
    if (d.prompt_name || d.prompt_template) {
      view.appendChild(section("Managed prompt", "prompt", kvTable("prompt-table", [
        ["Name", d.prompt_name], ["Version", d.prompt_version],
        ["Template", d.prompt_template ? el("pre", { class: "text", text: d.prompt_template }) : ""],
        ...mapEntries(d.prompt_variables).map(([k, v]) => ["{" + k + "}", v]),
      ])));
    }
    view.appendChild(section("Identity", "identity", kvTable("identity-table", [
      ["Project", who.project], ["Service", who.service], ["Environment", who.environment], ["User", who.user],
      ["Session", who.session ? hashLink(who.session, ["session", who.session]) : ""],
      ["Provider", d.provider], ["Operation", c.operation], ["Request model", d.request_model],
      ["Response model", d.response_model], ["Response id", d.response_id], ["Trace id", c.trace_id],
      ["Span id", c.span_id], ["Parent span", d.parent_span_id], ["Span name", d.span_name],
      ["Convention", d.convention], ["Redactions", d.redactions ? String(d.redactions) : ""],
      ["Duplicate of", d.duplicate_of], ["Tags", (who.tags || []).join(", ")],
      ...mapEntries(who.metadata).map(([k, v]) => ["metadata." + k, v]),
    ])));
    view.appendChild(section("Scores", "scores", scoresTable(d.scores || [])));
    view.appendChild(section("Span attributes", "span-attributes",
      kvTable("span-attributes-table", mapEntries(d.span_attributes))));
    view.appendChild(section("Resource attributes", "resource-attributes",
      kvTable("resource-attributes-table", mapEntries(d.resource_attributes))));
    document.getElementById("back").focus();
  }

  function scoresTable(scores) {
    if (!scores.length) return el("p", { class: "muted", id: "no-scores", text: "No score yet." });
    return el("table", { class: "calls", id: "scores-table" },
      el("thead", {}, el("tr", {}, ["Time", "Name", "Value", "Label", "Comment", "Source", "Author"]
        .map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, scores.map((s) => el("tr", { class: "score-row" },
        el("td", { class: "nowrap", text: fmtTime(s.time) }), el("td", { text: s.name }),
        el("td", { class: "num", text: s.value == null ? "" : String(s.value) }), el("td", { text: s.label }),
        el("td", { text: s.comment }), el("td", { text: s.source }), el("td", { text: s.author })))));
  }

  function feedbackBox(c) {
    const comment = el("textarea", { id: "feedback-comment", rows: "2", placeholder: "Comment (optional)", maxlength: "4000" });
    const status = el("span", { id: "feedback-status", class: "muted", role: "status" });
    const send = async (value) => {
      status.textContent = "Sending…";
      try {
        const reply = await api("/api/calls/" + encodeURIComponent(c.trace_id) + "/" + encodeURIComponent(c.span_id) +
          "/feedback", { method: "POST", body: JSON.stringify({ value, comment: comment.value }) });
        status.textContent = (value ? "Thumbs up" : "Thumbs down") + " saved (score " + reply.id + ").";
        status.className = "ok";
      } catch (error) {
        status.textContent = "Not saved: " + error.message;
        status.className = "error";
      }
    };
    return el("section", { class: "block feedback", id: "feedback" }, el("h2", { text: "Rate this answer" }),
      el("div", { class: "feedback-row" },
        el("button", { type: "button", id: "thumbs-up", title: "Good answer", onclick: () => send(true) }, "▲ Thumbs up"),
        el("button", { type: "button", id: "thumbs-down", title: "Bad answer", onclick: () => send(false) }, "▼ Thumbs down"),
        comment, status));
  }

  // ---- session ----

  async function renderSession(view, sessionId) {
    clear(view).appendChild(el("p", { class: "muted", text: "Loading…" }));
    let data;
    try {
      data = await api("/api/sessions/" + encodeURIComponent(sessionId));
    } catch (error) {
      failed(view, error);
      return;
    }
    document.title = "Session " + sessionId + " · promptlog explorer";
    clear(view);
    const t = data.totals;
    view.appendChild(el("nav", { class: "crumbs" }, el("a", { href: "#/", id: "back", text: "← Calls" })));
    view.appendChild(el("h1", {}, "Session ", el("code", { text: sessionId })));
    view.appendChild(el("p", { class: "summary", id: "session-totals" },
      `${fmtInt(t.calls)} calls · ${fmtInt(t.errors)} failed · ${fmtInt(t.input_tokens)} in / ` +
      `${fmtInt(t.output_tokens)} out tokens · ${fmtCost(t.cost_usd)} · ${fmtMs(t.latency_ms)} total latency · ` +
      `${Number(t.duration_s).toFixed(1)} s from first to last` +
      ((data.users || []).length ? " · users: " + data.users.join(", ") : "")));
    const turns = data.turns.map((turn) => {
      const c = turn.call;
      const outputs = turn.output_messages || [];
      const open = (event) => {
        if (event.key === "Enter" && event.target === event.currentTarget) openCall(c);
      };
      return el("article", { class: "turn", tabindex: "0", "data-span-id": c.span_id, onkeydown: open },
        el("header", {}, el("strong", { text: "Turn " + turn.turn }),
          el("span", { class: "muted", text: ` · ${fmtTime(c.time)} · ${c.model} · ${fmtMs(c.latency_ms)} · ` +
            `${fmtInt(c.input_tokens)} in / ${fmtInt(c.output_tokens)} out · ${fmtCost(c.cost_usd)} · ` }),
          hashLink("open call", ["call", c.trace_id, c.span_id], { class: "open-call" })),
        turn.user_text ? renderMessage({ role: "user", text: turn.user_text }) : null,
        outputs.length ? outputs.map(renderMessage)
          : renderMessage({ role: "assistant", text: turn.completion || "(no completion text: open the call)" }),
        turn.error_message ? el("p", { class: "error", text: turn.error_message }) : null);
    });
    view.appendChild(el("div", { id: "turns" }, turns));
    if ((data.scores || []).length) view.appendChild(section("Scores", "scores", scoresTable(data.scores)));
    const first = view.querySelector(".turn");
    if (first) first.focus();
  }


  // ---- routing and keys ----

  function route() {
    const view = document.getElementById("view");
    document.getElementById("login").hidden = true;
    const hash = location.hash.replace(/^#\/?/, "");
    const [path] = hash.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "call" && parts.length === 3) return renderCall(view, parts[1], parts[2]);
    if (parts[0] === "session" && parts.length === 2) return renderSession(view, parts[1]);
    return renderList(view);
  }

  function moveFocus(step) {
    const items = Array.from(document.querySelectorAll("tr.call-row, article.turn"));
    if (!items.length) return;
    const at = items.indexOf(document.activeElement);
    const next = items[Math.min(items.length - 1, Math.max(0, at < 0 ? 0 : at + step))];
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName);
    if (event.key === "Escape") {
      if (typing) event.target.blur();
      else if (location.hash.startsWith("#/call") || location.hash.startsWith("#/session")) history.back();
      return;
    }
    if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      const search = document.getElementById("search");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    } else if (event.key === "j" || event.key === "ArrowDown") {
      event.preventDefault();
      moveFocus(1);
    } else if (event.key === "k" || event.key === "ArrowUp") {
      event.preventDefault();
      moveFocus(-1);
    }
  });

  // A bug in a view shows up on the page instead of leaving it half drawn without a word.
  function showBug(error) {
    const view = document.getElementById("view");
    view.appendChild(el("p", { class: "error", role: "alert", text: "Explorer error: " + (error && error.message || error) }));
  }
  window.addEventListener("error", (event) => showBug(event.error || event.message));
  window.addEventListener("unhandledrejection", (event) => showBug(event.reason));

  async function start() {
    document.getElementById("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, document.getElementById("login-key").value.trim());
      document.getElementById("login-key").value = "";
      updateWho();
      route();
    });
    document.getElementById("logout").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORAGE);
      updateWho();
      showLogin("");
    });
    try {
      info = await api("/api/info");
    } catch (error) {
      failed(document.getElementById("view"), error);
      return;
    }
    updateWho();
    window.addEventListener("hashchange", route);
    if (info.auth && !sessionStorage.getItem(KEY_STORAGE)) showLogin("");
    else route();
  }

  function updateWho() {
    const has = Boolean(sessionStorage.getItem(KEY_STORAGE));
    document.getElementById("logout").hidden = !has;
    document.getElementById("whoami").textContent = info.auth
      ? (has ? "key set (this tab)" : "API keys on") : "API keys off";
  }

  start();
})();

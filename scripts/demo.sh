#!/usr/bin/env bash
# The main job on one machine, no Docker: an embedded ClickHouse engine (chDB behind a
# ClickHouse-compatible HTTP server), `promptlog serve`, and demo LLM traffic in every official
# OpenTelemetry GenAI encoding. Prints the llm_calls rows as they land, then keeps serving
# (OTLP on 4317/4318) until Ctrl-C, with the call explorer at http://127.0.0.1:4319/ to read, search
# and rate the demo's conversations in a browser. `--once` exits after the first rows are shown.
#
# Ports: PROMPTLOG_OTLP_GRPC_ENDPOINT / PROMPTLOG_OTLP_HTTP_ENDPOINT (default 0.0.0.0:4317 / :4318),
# PROMPTLOG_UI_ENDPOINT (the explorer, default 127.0.0.1:4319).
# Data: .data/ (ClickHouse files and the collector's data dir), kept between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ONCE=0; [[ "${1:-}" == "--once" ]] && ONCE=1

scripts/setup.sh --no-clients
echo "[demo] building promptlog (release)…" >&2
cargo build --release --quiet
BIN=target/release/promptlog

mkdir -p .data
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

# Embedded ClickHouse: prints "READY <url>" once it serves.
coproc CH { exec .venv/bin/python tests/chdb_server/server.py --host 127.0.0.1 --port 0 --data-dir .data/clickhouse --parent-pid $$; }
pids+=("$CH_PID")
read -r ready url <&"${CH[0]}" || { echo "[demo] ClickHouse engine failed to start" >&2; exit 1; }
echo "[demo] ClickHouse engine (chDB) at $url" >&2

export PROMPTLOG_CLICKHOUSE_URL="$url" PROMPTLOG_DATA_DIR=.data/collector
export PROMPTLOG_BATCH_MAX_DELAY=${PROMPTLOG_BATCH_MAX_DELAY:-500ms} PROMPTLOG_JOIN_WINDOW=${PROMPTLOG_JOIN_WINDOW:-3s}
HTTP_ENDPOINT=${PROMPTLOG_OTLP_HTTP_ENDPOINT:-0.0.0.0:4318}
GRPC_ENDPOINT=${PROMPTLOG_OTLP_GRPC_ENDPOINT:-0.0.0.0:4317}
UI_ENDPOINT=${PROMPTLOG_UI_ENDPOINT:-127.0.0.1:4319}
UI_URL="http://127.0.0.1:${UI_ENDPOINT##*:}/"
"$BIN" serve --config collector-config/promptlog.yaml &
pids+=("$!")

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:${HTTP_ENDPOINT##*:}/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:${HTTP_ENDPOINT##*:}/health" >/dev/null || { echo "[demo] collector did not start" >&2; exit 1; }

q() { curl -fsS "$url/?database=promptlog" --data-binary "$1"; }
before=$(q "SELECT count() FROM llm_calls")
"$BIN" demo --endpoint "http://127.0.0.1:${GRPC_ENDPOINT##*:}" --rounds 2
want=$((before + 12))
for _ in $(seq 100); do
  [[ $(q "SELECT count() FROM llm_calls") -ge $want ]] && break
  sleep 0.2
done
echo
echo "LLM calls in ClickHouse (promptlog.llm_calls), newest first:"
q "SELECT formatDateTime(Timestamp, '%T') AS time, ServiceName AS service, Convention, Provider, RequestModel AS model,
          InputTokens AS in_tok, OutputTokens AS out_tok, round(CostUsd, 6) AS cost_usd, StatusCode AS status, round(Duration/1e6) AS ms,
          substring(InputText, 1, 28) AS prompt, substring(OutputText, 1, 28) AS completion
   FROM llm_calls WHERE NOT IsRollup ORDER BY Timestamp DESC LIMIT 12 FORMAT PrettyCompactMonoBlock"
if curl -fsS "${UI_URL}api/info" >/dev/null 2>&1; then
  echo "Explorer (read, search and rate these calls in a browser): $UI_URL"
else
  echo "[demo] the explorer is not answering at $UI_URL (ui.enabled false?)" >&2
fi
q "SELECT 'rows: otel_traces=' || toString((SELECT count() FROM otel_traces)) || ' otel_logs=' || toString((SELECT count() FROM otel_logs)) || ' llm_calls=' || toString((SELECT count() FROM llm_calls))"
[[ $(q "SELECT count() FROM llm_calls") -ge $want ]] || { echo "[demo] expected $want llm_calls rows" >&2; exit 1; }
[[ $ONCE == 1 ]] && exit 0

echo
echo "[demo] promptlog is serving OTLP on grpc $GRPC_ENDPOINT and http $HTTP_ENDPOINT; ClickHouse HTTP at $url (database promptlog)."
echo "[demo] Explorer: $UI_URL"
echo "[demo] Point any OTel SDK at it (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:${HTTP_ENDPOINT##*:}). Ctrl-C to stop."
while sleep 10; do echo "[demo] llm_calls rows: $(q 'SELECT count() FROM llm_calls')"; done

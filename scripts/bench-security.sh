#!/usr/bin/env bash
# The cost of security, in one run: the same OTLP/HTTP load (examples/http_ingest_bench.rs: chat
# spans whose prompts carry an e-mail address and a card number) against the release collector
# twice, on the chDB test server:
#   plain   : http, no API keys, no redaction
#   secure  : TLS (certificate made here with openssl), PROMPTLOG_API_KEYS, PROMPTLOG_REDACT=all
# and one table: spans/s acknowledged, mean request latency, collector CPU per span (utime+stime
# from /proc/PID/stat, from after start-up until every acknowledged span is in ClickHouse), peak RSS
# (VmHWM), and the llm_calls rows still holding the e-mail address (plain: all, secure: none).
#
# Usage: scripts/bench-security.sh [CLIENTS] [SECONDS]   (defaults 4 and 10)
# Needs .venv (scripts/setup.sh --no-clients) and openssl. Honours CARGO_TARGET_DIR. Listens on
# 127.0.0.1 only; everything it starts is stopped, and its files removed, when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-4}
DURATION=${2:-10}
TARGET=${CARGO_TARGET_DIR:-target}
SPANS_PER_REQUEST=50
log() { printf '[bench] %s\n' "$*" >&2; }

[[ -x .venv/bin/python ]] || { log ".venv missing: run scripts/setup.sh --no-clients"; exit 1; }
command -v openssl >/dev/null || { log "openssl not found"; exit 1; }
# Only this script configures the collectors.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PROMPTLOG_' || true)

log "building promptlog and the load generator (release)…"
cargo build --release --quiet --bin promptlog --example http_ingest_bench
BIN=$TARGET/release/promptlog
LOAD=$TARGET/release/examples/http_ingest_bench

WORK=$(mktemp -d /tmp/promptlog-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# The ClickHouse engine: prints "READY <url>" once it serves.
coproc CH { exec .venv/bin/python tests/chdb_server/server.py --host 127.0.0.1 --port 0 --data-dir "$WORK/clickhouse" --parent-pid $$; }
pids+=("$CH_PID")
read -r _ CH_URL <&"${CH[0]}" || { log "the chDB server failed to start"; exit 1; }
log "ClickHouse engine (chDB) at $CH_URL"

# A CA and a server certificate for 127.0.0.1 (P-256), valid for a day.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=promptlog bench CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
  > "$WORK/server.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 1 \
  -extfile "$WORK/server.ext" -out "$WORK/server.crt" 2>/dev/null
API_KEY="pl_bench_$(openssl rand -hex 16)"

free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
q() { curl -fsS "$CH_URL/?database=$1" --data-binary "$2"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

ROWS=()
# run NAME SCHEME [VAR=VALUE…]: one collector, the load, the figures.
run() {
  local name=$1 scheme=$2; shift 2
  local db="bench_$name" http grpc curl_tls=() load_tls=()
  http=$(free_port); grpc=$(free_port)
  if [[ $scheme == https ]]; then curl_tls=(--cacert "$WORK/ca.crt"); load_tls=(--ca-file "$WORK/ca.crt" --api-key "$API_KEY"); fi
  env PROMPTLOG_CLICKHOUSE_URL="$CH_URL" PROMPTLOG_CLICKHOUSE_DATABASE="$db" PROMPTLOG_DATA_DIR="$WORK/$name" \
    PROMPTLOG_OTLP_HTTP_ENDPOINT="127.0.0.1:$http" PROMPTLOG_OTLP_GRPC_ENDPOINT="127.0.0.1:$grpc" "$@" \
    "$BIN" serve --config collector-config/promptlog.yaml > "$WORK/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local health="$scheme://127.0.0.1:$http/health"
  for _ in $(seq 100); do
    curl -fsS "${curl_tls[@]}" "$health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "${curl_tls[@]}" "$health" >/dev/null || { log "$name: the collector did not start"; tail "$WORK/$name.log" >&2; exit 1; }
  log "$name: up, $(curl -fsS "${curl_tls[@]}" "$health" | grep -oE '"auth":"[a-z]+"')"

  local before out ok spans
  before=$(cpu_ticks "$pid")
  out=$(timeout $((DURATION + 60)) "$LOAD" "${load_tls[@]}" "$scheme://127.0.0.1:$http" "$CLIENTS" "$DURATION")
  log "$name: $out"
  ok=$(grep -oE '[0-9]+ requests OK' <<<"$out" | cut -d' ' -f1)
  spans=$((ok * SPANS_PER_REQUEST))
  # Every acknowledged span written to both tables, so the CPU figure covers the whole pipeline.
  local deadline=$((SECONDS + 180))
  until [[ $(q "$db" "SELECT least((SELECT count() FROM otel_traces), (SELECT count() FROM llm_calls))") -ge $spans ]]; do
    (( SECONDS < deadline )) || { log "$name: rows still missing after 180 s"; break; }
    sleep 0.5
  done
  local ticks rss pii
  ticks=$(( $(cpu_ticks "$pid") - before ))
  rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
  pii=$(q "$db" "SELECT countIf(position(InputText, 'jane.doe@example.com') > 0) FROM llm_calls")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  ROWS+=("$(awk -v n="$name" -v o="$out" -v t="$ticks" -v hz="$TICKS" -v s="$spans" -v r="$rss" -v p="$pii" 'BEGIN {
    match(o, /[0-9]+ spans\/s/); sps = substr(o, RSTART, RLENGTH - 8)
    match(o, /latency [0-9.]+ ms/); lat = substr(o, RSTART + 8, RLENGTH - 11)
    printf "| %-7s | %9s | %10s ms | %11.2f | %6.0f MiB | %21s |", n, sps, lat, t / hz / (s > 0 ? s : 1) * 1e6, r / 1024, p " / " s
  }')")
}

run plain http
run secure https PROMPTLOG_TLS_CERT_FILE="$WORK/server.crt" PROMPTLOG_TLS_KEY_FILE="$WORK/server.key" \
  PROMPTLOG_API_KEYS="bench:$API_KEY" PROMPTLOG_REDACT=all

echo
echo "$CLIENTS clients x $DURATION s, $SPANS_PER_REQUEST chat spans/request over OTLP/HTTP protobuf, $(nproc) cores"
echo "| config  |   spans/s |  mean latency | CPU µs/span |   peak RSS | rows with PII / spans |"
echo "|---------|-----------|---------------|-------------|------------|-----------------------|"
printf '%s\n' "${ROWS[@]}"

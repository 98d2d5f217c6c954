#!/usr/bin/env bash
# The cost of security, in one run: the same OTLP/HTTP load (examples/ingest_bench.rs: chat spans
# whose prompts carry an e-mail address and a card number) against the release collector twice, on
# the chDB test server:
#   plain   : http, no API keys, no redaction
#   secure  : TLS (certificate made here with openssl), PROMPTLOG_API_KEYS, PROMPTLOG_REDACT=all
# and one table: spans/s acknowledged, mean request latency, collector CPU per span (utime+stime
# from /proc/PID/stat, from after start-up until every acknowledged span is in ClickHouse), peak RSS
# (VmHWM), and the llm_calls rows still holding the e-mail address (plain: all, secure: none).
#
# Usage: scripts/bench-security.sh [CLIENTS] [SECONDS]   (defaults 4 and 10; 50 spans per request)
# Needs .venv (scripts/setup.sh --no-clients) and openssl. Honours CARGO_TARGET_DIR. Listens on
# 127.0.0.1 only; everything it starts is stopped, and its files removed, when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-4}
DURATION=${2:-10}
TARGET=${CARGO_TARGET_DIR:-target}
SPANS_PER_REQUEST=50
WORK=$(mktemp -d /tmp/promptlog-bench.XXXXXX)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
trap bench_cleanup EXIT INT TERM
command -v openssl >/dev/null || { log "openssl not found"; exit 1; }

bench_build ingest_bench
bench_start_ch

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

ROWS=()
# run NAME SCHEME [VAR=VALUE…]: one collector, the load, the figures.
run() {
  local name=$1 scheme=$2; shift 2
  local db="bench_$name" load_tls=()
  CURL_TLS=()
  if [[ $scheme == https ]]; then CURL_TLS=(--cacert "$WORK/ca.crt"); load_tls=(--ca-file "$WORK/ca.crt" --api-key "$API_KEY"); fi
  bench_start_collector "$name" "$scheme" "$@"
  log "$name: up, $(curl -fsS "${CURL_TLS[@]}" "$scheme://127.0.0.1:$HTTP_PORT/health" | grep -oE '"auth":"[a-z]+"')"

  local before out spans
  before=$(cpu_ticks "$PID")
  out=$(timeout $((DURATION + 60)) "$LOAD" "${load_tls[@]}" --clients "$CLIENTS" --seconds "$DURATION" \
    --spans "$SPANS_PER_REQUEST" "$scheme://127.0.0.1:$HTTP_PORT")
  log "$name: $(head -1 <<<"$out")"
  spans=$(result spans "$out")
  # Every acknowledged span written to both tables, so the CPU figure covers the whole pipeline.
  bench_wait_rows "$db" "$spans" otel_traces llm_calls || true
  local ticks rss pii
  ticks=$(( $(cpu_ticks "$PID") - before ))
  rss=$(peak_rss_kib "$PID")
  pii=$(q "$db" "SELECT countIf(position(InputText, 'jane.doe@example.com') > 0) FROM llm_calls")
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  ROWS+=("$(awk -v n="$name" -v sps="$(result spans_per_s "$out")" -v lat="$(result mean_ms "$out")" -v t="$ticks" \
    -v hz="$TICKS" -v s="$spans" -v r="$rss" -v p="$pii" 'BEGIN {
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

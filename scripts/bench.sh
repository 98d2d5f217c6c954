#!/usr/bin/env bash
# The performance benchmark of issue 13, in one command: a release collector (spool fsync on, the
# default config) against the chDB test server, driven by examples/ingest_bench.rs, once per row:
#   http     2 clients, 500 chat spans (~1.5 KB: system prompt, user message, answer, usage and
#            parameters) per OTLP/HTTP protobuf request, as fast as the collector accepts them
#   grpc     the same over OTLP/gRPC
#   json     the same over OTLP/HTTP JSON
#   plain    the same over OTLP/HTTP protobuf with plain HTTP server spans (no LLM call)
#   latency  chat spans at 10,000 spans/s; ingest→queryable p50/p99 (request sent → all its spans
#            visible to a SELECT) in otel_traces and llm_calls
#   burst    16 clients, 40 requests each (320,000 chat spans) at once: more than ClickHouse absorbs
# For each: spans/s acknowledged, collector CPU (utime+stime from /proc/PID/stat, from before the
# load until every acknowledged span is in otel_traces and, for chat spans, in llm_calls) per span,
# peak RSS (VmHWM), refusals (503 / UNAVAILABLE). Then bytes on disk per LLM call per table and per
# llm_calls column (system.parts / system.columns, after OPTIMIZE FINAL), from the http run.
#
# Usage: scripts/bench.sh [SECONDS]   (default 10; each row runs that long, the burst until done)
# Needs .venv (scripts/setup.sh --no-clients). Honours CARGO_TARGET_DIR. Listens on 127.0.0.1 only;
# everything it starts is stopped, and its files removed, when it ends. Prints figures, asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/promptlog-bench.XXXXXX)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
trap bench_cleanup EXIT INT TERM

bench_build ingest_bench
bench_start_ch

ROWS=()
# run NAME PROTOCOL KIND [LOAD OPTIONS…] [-- VAR=VALUE…]: one collector, the load, one table row.
run() {
  local name=$1 protocol=$2 kind=$3; shift 3
  local opts=() envs=()
  while (($#)); do [[ $1 == -- ]] && { shift; envs=("$@"); break; }; opts+=("$1"); shift; done
  bench_start_collector "$name" http ${envs[@]+"${envs[@]}"}
  local url="http://127.0.0.1:$HTTP_PORT" db="bench_$name" tables=(otel_traces)
  [[ $protocol == grpc ]] && url="http://127.0.0.1:$GRPC_PORT"
  [[ $kind == chat ]] && tables+=(llm_calls)
  local before out spans ticks
  before=$(cpu_ticks "$PID")
  out=$(timeout $((DURATION + 400)) "$LOAD" --protocol "$protocol" --kind "$kind" --seconds "$DURATION" "${opts[@]}" "$url")
  log "$name: $(head -1 <<<"$out")"
  spans=$(result spans "$out")
  bench_wait_rows "$db" "$spans" "${tables[@]}" || true
  ticks=$(( $(cpu_ticks "$PID") - before ))
  local rss
  rss=$(peak_rss_kib "$PID")
  kill "$PID"; wait "$PID" 2>/dev/null || true
  ROWS+=("$(awk -v n="$name" -v p="$protocol" -v k="$kind" -v t="$ticks" -v hz="$TICKS" -v s="$spans" -v r="$rss" \
    -v sps="$(result spans_per_s "$out")" -v ref="$(result refused "$out")" \
    -v t50="$(result traces_p50_ms "$out")" -v t99="$(result traces_p99_ms "$out")" \
    -v c50="$(result calls_p50_ms "$out")" -v c99="$(result calls_p99_ms "$out")" -v lat="${LATENCY:-0}" 'BEGIN {
      l = lat ? sprintf("%s / %s ms", t50, t99) : "–"; c = (lat && k == "chat") ? sprintf("%s / %s ms", c50, c99) : "–"
      printf "| %-8s | %-5s | %-5s | %9d | %8s | %11.1f | %7.0f MiB | %8s | %-17s | %-17s |",
        n, p, k, s, sps, t / hz / (s > 0 ? s : 1) * 1e6, r / 1024, ref, l, c }')")
}

run http http chat
run grpc grpc chat
run json json chat
run plain http plain
LATENCY=1 run latency http chat --rate 10000 --probe "$CH_URL" bench_latency
burst_s=$((DURATION * 30))
run burst http chat --clients 16 --requests 40 --seconds "$burst_s"

echo
echo "$DURATION s per row, 500 spans/request, 2 clients unless noted, $(nproc) cores; CPU per span is the collector's"
echo "| run      | proto | spans | acked     | spans/s  | CPU µs/span | peak RSS    | refused  | traces p50 / p99  | llm_calls p50 / p99 |"
echo "|----------|-------|-------|-----------|----------|-------------|-------------|----------|-------------------|---------------------|"
printf '%s\n' "${ROWS[@]}"

# Bytes on disk, from the http run's database, merged as ClickHouse eventually merges them.
db=bench_http
for t in otel_traces llm_calls; do q "$db" "OPTIMIZE TABLE $t FINAL" >/dev/null; done
calls=$(q "$db" "SELECT count() FROM llm_calls WHERE NOT IsRollup")
echo
echo "Bytes on disk per LLM call ($calls calls, after OPTIMIZE FINAL), per table:"
q "$db" "SELECT table, sum(rows) AS total_rows, formatReadableSize(sum(bytes_on_disk)) AS on_disk,
  round(sum(bytes_on_disk) / $calls) AS bytes_per_call, round(sum(data_uncompressed_bytes) / $calls) AS uncompressed_per_call
  FROM system.parts WHERE database = '$db' AND active GROUP BY table HAVING total_rows > 0 ORDER BY sum(bytes_on_disk) DESC FORMAT PrettyCompactMonoBlock"
echo "Columns over 10 bytes per call (content is in otel_traces.SpanAttributes as sent, and in llm_calls' content columns):"
q "$db" "SELECT table, name, round(data_compressed_bytes / $calls) AS bytes_per_call, round(data_uncompressed_bytes / $calls) AS uncompressed_per_call,
  compression_codec FROM system.columns WHERE database = '$db' AND table IN ('llm_calls', 'otel_traces')
  AND (data_compressed_bytes > 10 * $calls OR name = 'SpanAttributes') ORDER BY table, data_compressed_bytes DESC FORMAT PrettyCompactMonoBlock"

# Shared by the benchmark scripts (sourced, not run): the chDB server, one release collector per
# configuration, and the figures read from /proc. Callers set WORK (a temp dir) and TARGET, and
# must `set -euo pipefail`. Everything listens on 127.0.0.1 only; `bench_cleanup` stops it all.

pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
log() { printf '[bench] %s\n' "$*" >&2; }
TICKS=$(getconf CLK_TCK)

# Only the scripts configure the collectors.
while read -r var; do unset "$var"; done < <(compgen -e | grep '^PROMPTLOG_' || true)

# bench_build EXAMPLE: the release collector and a load generator, as $BIN and $LOAD.
bench_build() {
  [[ -x .venv/bin/python ]] || { log ".venv missing: run scripts/setup.sh --no-clients"; exit 1; }
  log "building promptlog and the load generator (release)…"
  cargo build --release --quiet --bin promptlog --example "$1"
  BIN=$TARGET/release/promptlog
  LOAD=$TARGET/release/examples/$1
}

# bench_start_ch: the ClickHouse engine (chDB behind its HTTP server), as $CH_URL.
bench_start_ch() {
  coproc CH { exec .venv/bin/python tests/chdb_server/server.py --host 127.0.0.1 --port 0 --data-dir "$WORK/clickhouse" --parent-pid $$; }
  pids+=("$CH_PID")
  read -r _ CH_URL <&"${CH[0]}" || { log "the chDB server failed to start"; exit 1; }
  log "ClickHouse engine (chDB) at $CH_URL"
}

free_port() { .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
q() { curl -fsS "$CH_URL/?database=$1" --data-binary "$2"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
peak_rss_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# bench_start_collector NAME SCHEME [VAR=VALUE…]: a collector writing to database bench_NAME, as
# $PID (with $HTTP_PORT, $GRPC_PORT); SCHEME https needs CURL_TLS set to curl's TLS options.
bench_start_collector() {
  local name=$1 scheme=$2; shift 2
  HTTP_PORT=$(free_port); GRPC_PORT=$(free_port)
  env PROMPTLOG_CLICKHOUSE_URL="$CH_URL" PROMPTLOG_CLICKHOUSE_DATABASE="bench_$name" PROMPTLOG_DATA_DIR="$WORK/$name" \
    PROMPTLOG_OTLP_HTTP_ENDPOINT="127.0.0.1:$HTTP_PORT" PROMPTLOG_OTLP_GRPC_ENDPOINT="127.0.0.1:$GRPC_PORT" \
    PROMPTLOG_UI_ENABLED=false "$@" \
    "$BIN" serve --config collector-config/promptlog.yaml > "$WORK/$name.log" 2>&1 &
  PID=$!
  pids+=("$PID")
  local health="$scheme://127.0.0.1:$HTTP_PORT/health"
  for _ in $(seq 150); do
    curl -fsS ${CURL_TLS[@]+"${CURL_TLS[@]}"} "$health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  log "$name: the collector did not start"; tail "$WORK/$name.log" >&2; exit 1
}

# bench_wait_rows DB N TABLE…: until every table holds at least N rows (at most 300 s).
bench_wait_rows() {
  local db=$1 n=$2; shift 2
  local counts least
  counts=$(printf ', (SELECT count() FROM %s)' "$@")
  least="arrayMin([${counts#, }])"
  local deadline=$((SECONDS + 300))
  until [[ $(q "$db" "SELECT $least") -ge $n ]]; do
    (( SECONDS < deadline )) || { log "$db: rows still missing after 300 s"; return 1; }
    sleep 0.5
  done
}

# result KEY OUTPUT: a value from the load generator's `RESULT key=value …` line.
result() { grep '^RESULT' <<<"$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

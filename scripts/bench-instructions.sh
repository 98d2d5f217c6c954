#!/usr/bin/env bash
# Instructions per chat span, counted by valgrind (callgrind): the same figure for the same binary
# and load whatever else the machine is doing, so a change of a few per cent shows, which CPU time on
# the shared 2-core machine (±15 % between runs) cannot. The release collector (default config,
# spool fsync on) runs under callgrind against the chDB test server twice, for 2 clients × SMALL and
# 2 clients × LARGE requests of 500 chat spans (examples/ingest_bench.rs, HTTP protobuf); the
# difference divided by the extra spans is the per-span cost without start-up and shutdown.
# User-space instructions only: the kernel's share (page faults, sockets, fsync) is not counted.
#
# Usage: scripts/bench-instructions.sh [SMALL [LARGE]]   (default 10 and 40; about 2 minutes)
# Needs .venv (scripts/setup.sh --no-clients) and valgrind. Honours CARGO_TARGET_DIR. Listens on
# 127.0.0.1 only; everything it starts is stopped, and its files removed, when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${1:-10}
LARGE=${2:-40}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/promptlog-instr.XXXXXX)
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
trap bench_cleanup EXIT INT TERM
command -v valgrind >/dev/null || { log "valgrind is not installed (Debian package valgrind)"; exit 1; }

bench_build ingest_bench
REAL_BIN=$BIN
# The collector under callgrind: bench_start_collector runs $BIN, so point it at a wrapper.
cat >"$WORK/collector" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="\$CALLGRIND_OUT" --dump-instr=no "$REAL_BIN" "\$@"
EOF
chmod +x "$WORK/collector"
BIN=$WORK/collector
bench_start_ch

# count REQUESTS: total instructions of one collector run with 2 clients × REQUESTS requests.
count() {
  local n=$1 out spans
  bench_start_collector "n$n" http CALLGRIND_OUT="$WORK/callgrind.$n"
  out=$("$LOAD" --protocol http --kind chat --seconds 900 --requests "$n" "http://127.0.0.1:$HTTP_PORT")
  spans=$(result spans "$out")
  bench_wait_rows "bench_n$n" "$spans" otel_traces llm_calls || true
  kill "$PID"; wait "$PID" 2>/dev/null || true
  awk '/^(summary|totals):/ { print $2; exit }' "$WORK/callgrind.$n"
}
small=$(count "$SMALL")
large=$(count "$LARGE")
spans=$(( (LARGE - SMALL) * 2 * 500 ))
awk -v s="$small" -v l="$large" -v n="$spans" -v a="$SMALL" -v b="$LARGE" 'BEGIN {
  printf "instructions: %d requests %.3f G, %d requests %.3f G; %.1f k instructions per chat span\n",
    a, s / 1e9, b, l / 1e9, (l - s) / n / 1e3 }'

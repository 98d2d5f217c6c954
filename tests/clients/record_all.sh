#!/usr/bin/env bash
# Re-record tests/fixtures/otlp/<instrumentation>[-<mode>]/ : runs every client
# (all scenarios, OTLP over HTTP/protobuf; the Node client over gRPC, see below) against
# recorder.py + fake_openai.py.
#
#   tests/clients/record_all.sh                  # all folders
#   tests/clients/record_all.sh openlit logfire-v1   # only these folders
#   tests/clients/record_all.sh --grpc-smoke     # no recording: run every client over
#                                                # gRPC into a temp recorder, check traces arrive
#
# Needs the venvs and tests/clients/node/node_modules (tests/clients/setup.sh; it is run
# first, a no-op when up to date).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENVS="${PROMPTLOG_VENVS:-$REPO/.venvs}"
FIX="$REPO/tests/fixtures/otlp"

# folder  venv  script  mode  [record protocol, default http]
# venv "node" = `node tests/clients/node/<script>`. The Node client is recorded over gRPC:
# the official OTel JS HTTP exporter sends its body `Transfer-Encoding: chunked` (no
# Content-Length), which recorder.py does not read (it records an empty request).
RUNS=(
  "otel-latest-span_only       otel-latest   otel_latest.py           span_only"
  "otel-latest-event_only      otel-latest   otel_latest.py           event_only"
  "otel-latest-span_and_event  otel-latest   otel_latest.py           span_and_event"
  "otel-legacy-content         otel-legacy   otel_legacy.py           content"
  "otel-legacy-no_content      otel-legacy   otel_legacy.py           no_content"
  "openinference-default       openinference openinference_client.py  default"
  "openinference-genai_semconv openinference openinference_client.py  genai_semconv"
  "openllmetry-attributes      openllmetry   openllmetry_client.py    attributes"
  "openllmetry-events          openllmetry   openllmetry_client.py    events"
  "openlit                     openlit       openlit_client.py        -"
  "logfire-v2                  logfire       logfire_client.py        v2"
  "logfire-v1                  logfire       logfire_client.py        v1"
  "vercel-ai-v6                node          vercel_ai.mjs            -   grpc"
  "langchain-openinference        langchain langchain_client.py default"
  "langchain-openinference-double langchain langchain_client.py double"
  "otel-js-openai                 node      otel_openai.mjs     -   grpc"
)

GRPC_SMOKE=0
WANT=()
for a in "$@"; do
  case "$a" in
    --grpc-smoke) GRPC_SMOKE=1 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) WANT+=("$a") ;;
  esac
done

"$HERE/setup.sh" >/dev/null
REC_PY="$VENVS/otel-latest/bin/python"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_ready() {  # file -> first READY line
  for _ in $(seq 1 100); do
    if grep -q '^READY' "$1" 2>/dev/null; then grep -m1 '^READY' "$1"; return 0; fi
    sleep 0.1
  done
  echo "record_all.sh: no READY line in $1" >&2; cat "$1" >&2; return 1
}

python3 "$HERE/fake_openai.py" --port 0 --ignore-stdin --parent-pid $$ >"$TMP/fake.out" 2>&1 &
PIDS+=($!)
BASE_URL="$(wait_ready "$TMP/fake.out" | awk '{print $2}')"
echo "record_all.sh: fake OpenAI at $BASE_URL"

fail=0
for run in "${RUNS[@]}"; do
  read -r folder venv script mode rec_proto <<<"$run"
  if [ "${#WANT[@]}" -gt 0 ] && [[ ! " ${WANT[*]} " == *" $folder "* ]]; then continue; fi
  modearg=(); [ "$mode" != "-" ] && modearg=(--mode "$mode")
  if [ "$GRPC_SMOKE" = 1 ]; then
    out="$TMP/grpc-$folder"; proto=grpc
  else
    out="$FIX/$folder"; proto="${rec_proto:-http}"; rm -rf "$out"
  fi
  "$REC_PY" "$HERE/recorder.py" --out "$out" --http-port 0 --grpc-port 0 --drop-metrics --quiet \
      --parent-pid $$ >"$TMP/rec-$folder.out" 2>&1 &
  rec_pid=$!; PIDS+=($rec_pid)
  ready="$(wait_ready "$TMP/rec-$folder.out")"
  if [ "$proto" = grpc ]; then port="${ready##*grpc=}"; else port="$(sed 's/.*http=\([0-9]*\).*/\1/' <<<"$ready")"; fi
  t0=$SECONDS
  if [ "$venv" = node ]; then client=(node "$HERE/node/$script"); else client=("$VENVS/$venv/bin/python" "$HERE/$script"); fi
  if "${client[@]}" --otlp-endpoint "http://127.0.0.1:$port" --protocol "$proto" \
       --openai-base-url "$BASE_URL" --scenario all "${modearg[@]}" >"$TMP/client-$folder.out" 2>&1; then
    sleep 0.3
    kill "$rec_pid" 2>/dev/null || true; wait "$rec_pid" 2>/dev/null || true
    n_tr=$(find "$out" -name 'traces-*.pb' | wc -l); n_lg=$(find "$out" -name 'logs-*.pb' | wc -l)
    echo "record_all.sh: $folder ($proto) ok in $((SECONDS - t0))s: $n_tr traces + $n_lg logs requests"
    if [ "$n_tr" -eq 0 ]; then echo "record_all.sh: $folder sent no traces" >&2; fail=1; fi
  else
    kill "$rec_pid" 2>/dev/null || true
    echo "record_all.sh: $folder FAILED; client output:" >&2; cat "$TMP/client-$folder.out" >&2; fail=1
  fi
done
exit $fail

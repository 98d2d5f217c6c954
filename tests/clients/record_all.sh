#!/usr/bin/env bash
# Re-record tests/fixtures/otlp/<instrumentation>[-<mode>]/ : runs every client
# (all scenarios, OTLP over HTTP/protobuf; the Node client over gRPC, see below) against
# recorder.py + fake_openai.py (RUNS), or the other providers' clients against their fake server
# (PROVIDER_RUNS: fake_anthropic.py, fake_gemini.py; clients get --base-url).
#
#   tests/clients/record_all.sh                  # all folders
#   tests/clients/record_all.sh openlit logfire-v1   # only these folders
#   tests/clients/record_all.sh --grpc-smoke     # no recording: run every client over
#                                                # gRPC into a temp recorder, check traces arrive
#
# Needs the venvs and tests/clients/node/node_modules (tests/clients/setup.sh; it is run
# first for the venvs of the folders asked for, a no-op when up to date).
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

# Non-OpenAI providers: folder venv script mode fake-server (fake_<fake>.py, scenarios-<...>.json);
# the client gets `--base-url <the fake's URL>`. Recorded over HTTP.
PROVIDER_RUNS=(
  "anthropic-sdk               anthropic-sdk            anthropic_client.py  sdk            anthropic"
  "anthropic-sdk_metadata      anthropic-sdk            anthropic_client.py  sdk_metadata   anthropic"
  "anthropic-openllmetry       anthropic-openllmetry    anthropic_client.py  openllmetry    anthropic"
  "anthropic-openinference     anthropic-openinference  anthropic_client.py  openinference  anthropic"
  "anthropic-otel              anthropic-otel           anthropic_client.py  otel           anthropic"
  "google-genai-span_only      google-genai             google_genai_client.py span_only gemini"
)

declare -A FAKE_URLS=()
fake_url() {  # fake name -> base URL (started on first use)
  if [ -z "${FAKE_URLS[$1]:-}" ]; then
    python3 "$HERE/fake_$1.py" --port 0 --ignore-stdin --parent-pid $$ >"$TMP/fake-$1.out" 2>&1 &
    PIDS+=($!)
    FAKE_URLS[$1]="$(wait_ready "$TMP/fake-$1.out" | awk '{print $2}')"
    echo "record_all.sh: fake $1 at ${FAKE_URLS[$1]}" >&2
  fi
}

# record_one folder venv script mode proto client-args...
record_one() {
  local folder="$1" venv="$2" script="$3" mode="$4" rec_proto="$5"; shift 5
  local modearg=() out proto port ready rec_pid t0 client n_tr n_lg
  [ "$mode" != "-" ] && modearg=(--mode "$mode")
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
       "$@" --scenario all "${modearg[@]}" >"$TMP/client-$folder.out" 2>&1; then
    sleep 0.3
    kill "$rec_pid" 2>/dev/null || true; wait "$rec_pid" 2>/dev/null || true
    n_tr=$(find "$out" -name 'traces-*.pb' | wc -l); n_lg=$(find "$out" -name 'logs-*.pb' | wc -l)
    echo "record_all.sh: $folder ($proto) ok in $((SECONDS - t0))s: $n_tr traces + $n_lg logs requests"
    if [ "$n_tr" -eq 0 ]; then echo "record_all.sh: $folder sent no traces" >&2; fail=1; fi
  else
    kill "$rec_pid" 2>/dev/null || true
    echo "record_all.sh: $folder FAILED; client output:" >&2; cat "$TMP/client-$folder.out" >&2; fail=1
  fi
}

wanted() { [ "${#WANT[@]}" -eq 0 ] || [[ " ${WANT[*]} " == *" $1 "* ]]; }

# Set up (a no-op when up to date) only the venvs of the folders to record, plus otel-latest (recorder).
NEED=(otel-latest)
for run in "${RUNS[@]}" "${PROVIDER_RUNS[@]}"; do
  read -r folder venv _ <<<"$run"
  if wanted "$folder" && [[ ! " ${NEED[*]} " == *" $venv "* ]]; then NEED+=("$venv"); fi
done
"$HERE/setup.sh" "${NEED[@]}" >/dev/null

fail=0
for run in "${RUNS[@]}"; do
  read -r folder venv script mode rec_proto <<<"$run"
  wanted "$folder" || continue
  record_one "$folder" "$venv" "$script" "$mode" "${rec_proto:-}" --openai-base-url "$BASE_URL"
done
for run in "${PROVIDER_RUNS[@]}"; do
  read -r folder venv script mode fake <<<"$run"
  wanted "$folder" || continue
  fake_url "$fake"
  record_one "$folder" "$venv" "$script" "$mode" http --base-url "${FAKE_URLS[$fake]}"
done
exit $fail

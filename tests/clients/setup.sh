#!/usr/bin/env bash
# Create one virtualenv per instrumentation under <repo>/.venvs/<name> from the
# pinned tests/clients/requirements-<name>.txt. Idempotent: a venv whose stamp
# file (.venvs/<name>/.promptlog-stamp) holds the sha256 of its requirements
# file + python version is left alone, so re-runs take a second or two.
# "node": the Node client's deps, `npm ci` from tests/clients/node/package-lock.json
# into tests/clients/node/node_modules (stamp node_modules/.promptlog-stamp = sha256
# of package.json + package-lock.json + node version); needs node >= 20.6 and npm.
#
#   tests/clients/setup.sh                 # all venvs + node
#   tests/clients/setup.sh otel-latest     # only some
#   tests/clients/setup.sh node            # only the Node client
#   PROMPTLOG_SETUP_JOBS=1 tests/clients/setup.sh   # install sequentially
#   PROMPTLOG_VENVS=/some/dir tests/clients/setup.sh  # other venv root
#
# Exit status: 0 when every requested venv is ready, 1 otherwise (logs in
# .venvs/<name>.setup.log).
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENVS="${PROMPTLOG_VENVS:-$REPO/.venvs}"
PY="${PYTHON:-python3}"
JOBS="${PROMPTLOG_SETUP_JOBS:-3}"
ALL=(otel-latest otel-legacy openinference openllmetry openlit logfire langchain node
     anthropic-sdk anthropic-openllmetry anthropic-openinference anthropic-otel google-genai)
NODE_DIR="$HERE/node"

if [ "$#" -gt 0 ]; then NAMES=("$@"); else NAMES=("${ALL[@]}"); fi
mkdir -p "$VENVS"

pyver="$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" || {
  echo "setup.sh: $PY not found" >&2; exit 1; }

stamp_of() {  # requirements hash + python version
  { sha256sum "$HERE/requirements-$1.txt" | cut -d' ' -f1; echo "python $pyver"; } | sha256sum | cut -d' ' -f1
}

setup_one() {
  local name="$1" req="$HERE/requirements-$1.txt" dir="$VENVS/$1" log="$VENVS/$1.setup.log"
  local want; want="$(stamp_of "$name")"
  if [ -f "$dir/.promptlog-stamp" ] && [ "$(cat "$dir/.promptlog-stamp")" = "$want" ] \
     && [ -x "$dir/bin/python" ]; then
    echo "setup.sh: $name up to date"
    return 0
  fi
  echo "setup.sh: building $name (log: $log)"
  local t0=$SECONDS
  rm -rf "$dir"
  {
    "$PY" -m venv "$dir" &&
    "$dir/bin/python" -m pip install --disable-pip-version-check --no-input \
        --progress-bar off -r "$req"
  } >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "setup.sh: FAILED $name (rc=$rc); tail of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  "$dir/bin/python" -m pip freeze --all >"$dir/.promptlog-freeze.txt" 2>/dev/null
  echo "$want" >"$dir/.promptlog-stamp"
  echo "setup.sh: $name ready in $((SECONDS - t0))s"
}

setup_node() {  # npm ci into tests/clients/node/node_modules, skipped when the stamp matches
  local log="$VENVS/node.setup.log" stamp="$NODE_DIR/node_modules/.promptlog-stamp"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup.sh: FAILED node: 'node' and 'npm' must be on PATH (Node.js >= 20.6) for tests/clients/node" >&2
    return 1
  fi
  local nodever; nodever="$(node -p 'process.versions.node')" || return 1
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=6)?0:1)'; then
    echo "setup.sh: FAILED node: Node.js $nodever is too old, tests/clients/node needs >= 20.6" >&2
    return 1
  fi
  local want
  want="$({ sha256sum "$NODE_DIR/package.json" "$NODE_DIR/package-lock.json" | cut -d' ' -f1; echo "node $nodever"; } \
          | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "setup.sh: node up to date"
    return 0
  fi
  echo "setup.sh: installing node deps (log: $log)"
  local t0=$SECONDS
  # --ignore-scripts: every dependency is plain JavaScript; nothing needs an install script.
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts) >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    echo "setup.sh: FAILED node (rc=$rc); tail of $log:" >&2
    tail -n 20 "$log" >&2
    return 1
  fi
  (cd "$NODE_DIR" && npm ls --all >"$NODE_DIR/node_modules/.promptlog-tree.txt" 2>&1)
  echo "$want" >"$stamp"
  echo "setup.sh: node ready in $((SECONDS - t0))s (node $nodever)"
}

for n in "${NAMES[@]}"; do
  [ "$n" = node ] && continue
  if [ ! -f "$HERE/requirements-$n.txt" ]; then
    echo "setup.sh: unknown venv '$n' (known: ${ALL[*]})" >&2; exit 1
  fi
done

t_start=$SECONDS
pids=(); names=(); fail=0
for n in "${NAMES[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
  if [ "$n" = node ]; then setup_node & else setup_one "$n" & fi
  pids+=($!); names+=("$n")
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { fail=1; echo "setup.sh: ${names[$i]} not ready" >&2; }
done
echo "setup.sh: done in $((SECONDS - t_start))s (venvs in $VENVS, node deps in $NODE_DIR/node_modules)"
exit $fail

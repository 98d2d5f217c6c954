#!/usr/bin/env bash
# Create one virtualenv per instrumentation under <repo>/.venvs/<name> from the
# pinned tests/clients/requirements-<name>.txt. Idempotent: a venv whose stamp
# file (.venvs/<name>/.promptlog-stamp) holds the sha256 of its requirements
# file + python version is left alone, so re-runs take a second or two.
#
#   tests/clients/setup.sh                 # all venvs
#   tests/clients/setup.sh otel-latest     # only some
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
ALL=(otel-latest otel-legacy openinference openllmetry openlit logfire)

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

for n in "${NAMES[@]}"; do
  if [ ! -f "$HERE/requirements-$n.txt" ]; then
    echo "setup.sh: unknown venv '$n' (known: ${ALL[*]})" >&2; exit 1
  fi
done

t_start=$SECONDS
pids=(); names=(); fail=0
for n in "${NAMES[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 0.2; done
  setup_one "$n" & pids+=($!); names+=("$n")
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { fail=1; echo "setup.sh: ${names[$i]} not ready" >&2; }
done
echo "setup.sh: done in $((SECONDS - t_start))s (venvs in $VENVS)"
exit $fail

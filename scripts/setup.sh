#!/usr/bin/env bash
# Installs everything promptlog's demo and tests need, idempotently (re-runs take seconds):
#   - the Rust toolchain must already exist (cargo); nothing else is assumed,
#   - .venv/: Python venv with chDB (the real ClickHouse engine, in process) for the test server,
#   - .venvs/<name>/: one venv per real-instrumentation client (tests/clients/setup.sh),
#   - Debian's chromium, which the explorer's browser test (tests/it/explorer_ui.rs) drives headless,
# Usage: scripts/setup.sh [--no-clients]
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust (rustup) first"; exit 1; }
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || { log "python3 not found"; exit 1; }
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  log "installing python3-venv (Debian)"
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq python3-venv) >&2
  else
    log "python3 lacks venv/ensurepip and apt-get is unavailable"; exit 1
  fi
fi

# The explorer's browser test drives Debian's chromium headless (over CDP, no network at run time).
# PROMPTLOG_CHROMIUM names another binary; then nothing is installed.
if [[ -z "${PROMPTLOG_CHROMIUM:-}" ]] && ! command -v chromium >/dev/null; then
  log "installing chromium (Debian) for the explorer's browser test"
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >&2
  else
    log "chromium is missing and apt-get is unavailable: install chromium or set PROMPTLOG_CHROMIUM"; exit 1
  fi
fi

# Base venv for the chDB-backed ClickHouse test server; skipped when the requirements are unchanged.
REQ=tests/chdb_server/requirements.txt
STAMP=.venv/.requirements.sha256
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $STAMP || $(cat "$STAMP") != "$want" ]]; then
  log "creating .venv from $REQ"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQ"
  echo "$want" > "$STAMP"
else
  log ".venv up to date"
fi

if [[ "${1:-}" != "--no-clients" && -x tests/clients/setup.sh ]]; then
  tests/clients/setup.sh
fi
log "done"

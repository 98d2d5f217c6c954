#!/usr/bin/env bash
# Every check the project has, from a fresh clone: set-up (idempotent), format, lints, the chDB
# test-server self-test, and all Rust tests (unit, integration against the chDB-backed ClickHouse,
# real-client suites, Grafana queries). Set PROMPTLOG_TEST_CLICKHOUSE_URL to use a real ClickHouse.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "[test] cargo fmt --check" >&2
cargo fmt --check
echo "[test] cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --all-targets --quiet -- -D warnings
echo "[test] chDB test server self-test" >&2
.venv/bin/python tests/chdb_server/selftest.py
echo "[test] cargo test" >&2
cargo test --all-targets

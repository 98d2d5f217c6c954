#!/usr/bin/env bash
# Every check the project has, from a fresh clone: set-up (idempotent), format, lints (all targets,
# benches and examples included), the Docker build-context check, the chDB test-server self-test,
# and all Rust tests of every workspace crate (unit,
# integration against the chDB-backed ClickHouse, real-client suites, Grafana queries, fault tests).
# Set PROMPTLOG_TEST_CLICKHOUSE_URL to run the storage tests against a real ClickHouse instead.
# Ends with one line summing every test runner: "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "[test] cargo fmt --check" >&2
cargo fmt --check
echo "[test] cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --all-targets --quiet -- -D warnings
echo "[test] promptlog-instrument with its async-openai and feedback-client features: clippy, docs without warnings" >&2
cargo clippy -p promptlog-instrument --all-targets --features async-openai,feedback-client --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc -p promptlog-instrument --no-deps --features async-openai,feedback-client --quiet
echo "[test] the Docker image's build stage builds from exactly what the Dockerfile copies" >&2
scripts/check-docker-context.sh
# ... and the check can fail: without the workspace crates the build must not work.
broken=$(mktemp)
grep -v '^COPY crates' Dockerfile >"$broken"
if scripts/check-docker-context.sh "$broken" >/dev/null 2>&1; then
  echo "[test] check-docker-context.sh passed a Dockerfile that does not copy crates/" >&2
  exit 1
fi
rm -f "$broken"
echo "[test] chDB test server self-test" >&2
.venv/bin/python tests/chdb_server/selftest.py
echo "[test] fuzz the OTLP decode + normalise path briefly" >&2
scripts/fuzz.sh "${PROMPTLOG_CI_FUZZ_SECONDS:-20}"
echo "[test] cargo test" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test 2>&1 | tee "$log" || status=$?
# The instrumentation crate again with its optional features (the async-openai wrapper, the
# FeedbackService client); counted in the summary as a run of its own.
cargo test -p promptlog-instrument --features async-openai,feedback-client 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

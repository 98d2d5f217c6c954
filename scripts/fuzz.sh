#!/usr/bin/env bash
# Fuzzes the OTLP decode + normalise path (fuzz/fuzz_targets/otlp_decode.rs) for N seconds
# (default 60). With cargo-fuzz and a nightly toolchain: libFuzzer, coverage-guided, with
# AddressSanitizer; new interesting inputs go to a scratch directory, crashes to
# fuzz/artifacts/otlp_decode/. Without them: the stable corpus-mutation test (tests/it/fuzz_corpus.rs)
# for the same time.
#
#   scripts/fuzz.sh        # 60 s
#   scripts/fuzz.sh 600    # 10 min
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
[[ $budget =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds]" >&2; exit 2; }

# cargo-fuzz comes from crates.io; install it (once) when a nightly toolchain is there to use it.
if rustup toolchain list 2>/dev/null | grep -q '^nightly' && ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz" >&2
  cargo install --locked --quiet cargo-fuzz --version 0.13.2 >&2 || echo "[fuzz] cargo-fuzz install failed" >&2
fi
if command -v cargo-fuzz >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  # libFuzzer writes new inputs into its first corpus directory: keep them out of the repository.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  echo "[fuzz] cargo fuzz (libFuzzer, nightly) for ${budget} s" >&2
  cargo +nightly fuzz run otlp_decode "$scratch" fuzz/corpus/otlp_decode -- \
    -max_total_time="$budget" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1
else
  echo "[fuzz] cargo-fuzz or nightly missing; running the stable corpus-mutation test for ${budget} s" >&2
  PROMPTLOG_FUZZ_SECONDS="$budget" cargo test --test it fuzz_corpus:: -- --nocapture
fi

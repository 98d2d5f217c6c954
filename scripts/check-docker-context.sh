#!/usr/bin/env bash
# Proves the production image's build stage works without Docker: copies exactly what the
# Dockerfile's build stage COPYs (nothing else) into a fresh directory laid out like its WORKDIR,
# checks that every file the runtime stage COPYs from the context exists, and runs the stage's
# `cargo build` there. Fails when the build needs a file the Dockerfile does not copy.
#
# By default the cargo command runs without `--release` and with this checkout's target directory,
# so the already-built dependencies are reused (the manifest, lock file, workspace members and
# target list are resolved exactly as in the image); PROMPTLOG_DOCKER_CHECK_FULL=1 runs the
# Dockerfile's command verbatim, in a target directory of its own.
# Usage: scripts/check-docker-context.sh [Dockerfile]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
dockerfile=${1:-Dockerfile}
log() { printf '[docker-context] %s\n' "$*" >&2; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

stage=0 run=""
while IFS= read -r line; do
  # Instructions only; comments and blank lines are skipped. No line continuations are used.
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  read -r instr rest <<<"$line"
  case "${instr^^}" in
    FROM) stage=$((stage + 1)) ;;
    COPY)
      [[ $rest == --from=* ]] && continue
      # shellcheck disable=SC2206 # word splitting is the COPY syntax here (no spaces in paths)
      args=($rest)
      dest=${args[-1]}
      unset 'args[-1]'
      for src in "${args[@]}"; do
        [[ -e $repo/$src ]] || { log "COPY source '$src' does not exist (stage $stage)"; exit 1; }
        if ((stage == 1)); then
          if [[ $dest == */ || ${#args[@]} -gt 1 ]]; then
            mkdir -p "$ctx/$dest"
            cp -a "$repo/$src" "$ctx/$dest/"
          else
            mkdir -p "$(dirname "$ctx/$dest")"
            cp -a "$repo/$src" "$ctx/$dest"
          fi
        fi
      done
      ;;
    RUN) ((stage == 1)) && [[ $rest == cargo* ]] && run=$rest ;;
  esac
done <"$dockerfile"

[[ -n $run ]] || { log "no 'RUN cargo …' found in the build stage of $dockerfile"; exit 1; }
cd "$ctx"
if [[ ${PROMPTLOG_DOCKER_CHECK_FULL:-0} == 1 ]]; then
  log "running '$run' in a copy of the build context"
  eval "$run"
else
  cmd=${run/ --release/}
  log "running '$cmd' in a copy of the build context (target dir: $repo/target)"
  CARGO_TARGET_DIR="$repo/target" eval "$cmd"
fi
log "the image's build stage builds from exactly what the Dockerfile copies"

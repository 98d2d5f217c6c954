# Production image of the collector, used by compose.yaml (`docker compose up`).
# scripts/check-docker-context.sh copies exactly what the build stage COPYs into an empty directory
# and runs its cargo command there, so a file the build needs but this file forgets fails CI.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY crates ./crates
# The manifest declares `[[bench]]` targets (normalize, redact): cargo refuses a manifest whose targets are missing.
COPY benches ./benches
COPY proto ./proto
COPY collector-config ./collector-config
# The explorer links traces exactly as the dashboards do: src/ui/grafana.rs embeds the Overview dashboard.
COPY grafana/dashboards ./grafana/dashboards
RUN cargo build --release --locked --bin promptlog

FROM debian:bookworm-slim
# bash: the compose healthcheck probes /health through /dev/tcp.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates bash && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/promptlog /usr/local/bin/promptlog
COPY collector-config/promptlog.yaml /etc/promptlog/promptlog.yaml
ENV PROMPTLOG_DATA_DIR=/var/lib/promptlog
VOLUME /var/lib/promptlog
EXPOSE 4317 4318
ENTRYPOINT ["promptlog"]
CMD ["serve", "--config", "/etc/promptlog/promptlog.yaml"]

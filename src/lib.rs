//! promptlog: an OpenTelemetry-native collector that stores every LLM call in ClickHouse.
//!
//! # Layout
//! The pure parts live in workspace crates: `promptlog-ingest` (request → processors → rows, the
//! join, the batcher, the spool record format), `promptlog-spool` (the durable queue) and
//! `promptlog-otlp` (OTLP builders and sample traffic). This crate is the collector around them:
//! - [`auth`]: API keys (hashed, scoped, reloaded on change) and the project each request belongs to.
//! - [`config`]: the YAML config, its defaults and `PROMPTLOG_*` overrides.
//! - `receiver`: OTLP in — gRPC (4317) and HTTP (4318, also `/health` and `/metrics`), one generic
//!   path per transport for every signal.
//! - `pipeline`: the live side of the ingest seam (spool append, then the bounded queue), the
//!   on-disk backlog and replay (the same seam), one batching lane and writer per table, spool acks.
//! - [`dead_letter`]: batches ClickHouse refused for good, as JSON lines (sealed when encryption at
//!   rest is on).
//! - [`storage`]: ClickHouse schema migrations (with the migration lock, and their cluster-mode
//!   rewrite in `storage::clickhouse::cluster`), inserts and retry classification.
//! - [`telemetry`]: promptlog's own counters; `selfstats`: them as Prometheus text and as
//!   `collector_stats` rows.
//! - [`tls`]: TLS and mTLS on both receivers (reloaded without dropping connections) and TLS to
//!   ClickHouse, with rustls and the ring provider.
//! - [`server`]: [`serve`] wires the above together on already-bound listeners.
//! - `ui`: the built-in call explorer (its own listener, `ui.endpoint`), on top of `explore`.
//! - [`demo`]: `promptlog demo`, which sends `promptlog_otlp`'s sample traffic.
//! - [`explore`]: the read side (filters → parameterised SQL, typed calls, sessions, tail, export)
//!   and the `calls / show / session / tail / export` commands.

pub mod auth;
pub mod config;
pub mod dead_letter;
pub mod demo;
pub mod explore;
mod pipeline;
pub mod pricing;
pub mod receiver;
mod runtime;
pub mod selfstats;
pub mod server;
pub mod storage;
pub mod telemetry;
pub mod tls;
mod ui;

pub use server::{Listeners, serve};

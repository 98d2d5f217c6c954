//! promptlog: an OpenTelemetry-native collector that stores every LLM call in ClickHouse.
//!
//! # Layout
//! - [`config`]: the YAML config, its defaults and `PROMPTLOG_*` overrides.
//! - [`receiver`]: OTLP in — [`receiver::grpc`] (4317) and [`receiver::http`] (4318, also `/health`).
//! - [`normalize`]: pure functions from OTLP requests to rows; one file per convention.
//! - [`pipeline`]: bounded queue and on-disk backlog, span/log join, batching, per-table writers, spool acks.
//! - [`spool`]: the durable on-disk queue every accepted request is written to before it is acknowledged.
//! - [`storage::clickhouse`]: schema migrations, inserts and retry classification.
//! - [`rows`]: the row structs, i.e. every table's column list.
//! - [`telemetry`]: promptlog's own counters.
//! - [`selfstats`]: those counters as Prometheus `/metrics` and as `collector_stats` rows.
//! - [`server`]: [`serve`] wires the above together on already-bound listeners.
//! - [`demo`]: sample LLM traffic in each convention, for `promptlog demo`.

pub mod config;
pub mod demo;
pub mod normalize;
pub mod pipeline;
pub mod receiver;
pub mod rows;
pub mod selfstats;
pub mod server;
pub mod spool;
pub mod storage;
pub mod telemetry;

pub use server::{Listeners, serve};

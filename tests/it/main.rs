//! promptlog's integration tests, one binary: a module per suite, the shared support under
//! [`support`] (built on the `promptlog-testkit` crate). Run one suite with a filter, e.g.
//! `cargo test --test it grafana::`.
//!
//! Every suite of this binary shares one ClickHouse (`promptlog_testkit::shared_clickhouse_url`;
//! each collector stack writes to its own fresh database), except the fault suite, which owns the
//! ClickHouse servers it stops and restarts.

mod support;

mod access_control;
mod auth;
mod bad_input;
mod cluster;
mod cluster_compose;
mod conventions;
mod duplicates;
mod e2e_sdk;
mod explore_cli;
mod explorer_ui;
mod faults;
mod feedback;
mod fuzz_corpus;
mod grafana;
mod hostile;
mod instrument;
mod many_collectors;
mod metrics;
mod pricing;
mod privilege;
mod projects;
mod real_clients;
mod real_providers;
mod redaction;
mod secure;
mod selfstats;
mod spool_encryption;
mod tls;

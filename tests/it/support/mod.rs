//! Support of the suites that needs the `promptlog` crate or is specific to a suite; what does not is
//! in the `promptlog-testkit` crate.

/// Headless chromium over CDP, for the explorer's browser test (`explorer_ui`).
pub mod browser;
/// The recorded-payload capability table and checker shared by `conventions` and `real_clients`.
pub mod conventions;
/// The generic expected-values checker of the provider suites (`real_providers`).
pub mod expect;
/// Calls to send and the `promptlog` binary as a subprocess, for `explore_cli`.
pub mod explore;
/// Grafana's and the ClickHouse plugin's query rewriting, alert evaluation and seed traffic.
pub mod grafana;
/// Raw protobuf wire encoding and clients that report every outcome, for `hostile`.
pub mod hostile;
/// The key file (hashed normal, expired and read-only keys) and plaintext keys, for `auth` and `secure`.
pub mod keys;
/// A round-robin TCP load balancer in front of several collectors: [`proxy::RoundRobin`].
pub mod proxy;
/// Every convention's recorded requests carrying PII, and scans of tables and files for it.
pub mod redaction;
/// Hand-built OTLP requests over each transport, and the OTLP/HTTP client every suite uses.
pub mod sdk;
/// ClickHouse plus an in-process collector: [`stack::Stack`].
pub mod stack;
/// A throw-away PKI (rcgen), raw rustls clients, the env-configured Python exporter and chDB over
/// HTTPS, for `tls` and `secure`.
pub mod tls;

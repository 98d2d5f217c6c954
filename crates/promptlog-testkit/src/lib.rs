//! Test support for promptlog's integration tests, written once: where the repository and its Python
//! venv are, a real ClickHouse engine to test against (the chDB-backed server in
//! `tests/chdb_server/`, or the server named by [`EXTERNAL_URL_VAR`]) with an SQL-over-HTTP client,
//! a raw-bytes gRPC codec for bodies no protobuf encoder would produce, and readers of ClickHouse
//! `JSONEachRow` rows.
//!
//! Nothing here depends on the `promptlog` crate itself: the in-process collector harness lives with
//! the integration tests (`tests/it/support/stack.rs`).

pub mod clickhouse;
pub mod gate;
pub mod grpc;
pub mod rows;

use std::path::{Path, PathBuf};

pub use clickhouse::{ChServer, EXTERNAL_URL_VAR, Sql, shared_clickhouse_url};
pub use grpc::{LOGS_EXPORT, RawCodec, RpcStatus, TRACES_EXPORT, grpc_raw};
pub use rows::{FromCell, LLM_CALL_COLUMNS, Row, cell, json_text, llm_call, try_cell};

/// The repository's root (two levels above this crate's manifest, `crates/promptlog-testkit`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .expect("crates/promptlog-testkit sits two levels below the root")
        .to_owned()
}

/// The Python interpreter of the project's venv (made by `scripts/setup.sh`), or `PROMPTLOG_PYTHON`.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PROMPTLOG_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh first", p.display());
    p
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The last `lines` lines of a log file (empty when it cannot be read), for failure messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_root_is_the_workspace_root() {
        let manifest = std::fs::read_to_string(super::repo_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]") && manifest.contains("name = \"promptlog\""));
    }
}

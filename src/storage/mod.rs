//! Where rows end up. Only ClickHouse today.

pub mod clickhouse;

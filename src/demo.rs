//! `promptlog demo`: sends the sample LLM traffic of [`promptlog_otlp::round`] to a running
//! collector over OTLP/gRPC.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use promptlog_otlp::round;

/// Why the demo could not send its calls.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The collector could not be reached.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect { endpoint: String, source: tonic::transport::Error },
    /// The collector refused an export.
    #[error("the collector refused the demo export: {0}")]
    Export(#[from] tonic::Status),
}

/// Sends `rounds` demo rounds over gRPC; returns the number of LLM calls sent.
pub async fn send(endpoint: &str, rounds: u32) -> Result<u32, DemoError> {
    let connect = |source| DemoError::Connect { endpoint: endpoint.to_owned(), source };
    let mut traces = TraceServiceClient::connect(endpoint.to_owned()).await.map_err(connect)?;
    let mut logs = LogsServiceClient::connect(endpoint.to_owned()).await.map_err(connect)?;
    for i in 0..rounds {
        let (t, l) = round(i);
        logs.export(l).await?;
        traces.export(t).await?;
    }
    Ok(rounds * 6)
}

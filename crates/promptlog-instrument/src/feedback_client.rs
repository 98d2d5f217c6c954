//! A gRPC client for promptlog's `FeedbackService` (feature `feedback-client`), generated at build
//! time from `proto/promptlog/feedback/v1/feedback.proto`: scores submitted directly to the collector,
//! with per-score errors, as an alternative to [`crate::evaluation()`]'s OTLP events.
//!
//! ```no_run
//! # async fn run(call: promptlog_instrument::CallRef) -> Result<(), promptlog_instrument::Error> {
//! use promptlog_instrument::feedback_client::{FeedbackClient, proto::ScoreDataType, score_for_call};
//! let mut client = FeedbackClient::connect("http://127.0.0.1:4317", Some("plk_…")).await?;
//! let mut score = score_for_call(&call, "user_feedback");
//! score.data_type = ScoreDataType::Boolean as i32;
//! score.value = Some(1.0);
//! let reply = client.submit(vec![score]).await?;
//! # Ok(()) }
//! ```

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::{CallRef, Error};

/// The generated `promptlog.feedback.v1` messages, client and server.
pub mod proto {
    // Generated code: its items carry the .proto comments as docs, and some have none.
    #![allow(missing_docs, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/promptlog.feedback.v1.rs"));
}

use proto::feedback_service_client::FeedbackServiceClient;

/// A connected FeedbackService client, authenticating with an API key (scope `feedback`).
#[derive(Clone)]
pub struct FeedbackClient {
    inner: FeedbackServiceClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl FeedbackClient {
    /// Connects to the collector's gRPC port (`https://` uses the web roots).
    pub async fn connect(endpoint: &str, api_key: Option<&str>) -> Result<FeedbackClient, Error> {
        let mut e = Endpoint::from_shared(endpoint.to_owned())?;
        if endpoint.starts_with("https://") {
            e = e.tls_config(ClientTlsConfig::new().with_webpki_roots())?;
        }
        let authorization = api_key
            .map(|k| {
                format!("Bearer {k}").parse().map_err(|_| {
                    Error::Feedback(tonic::Status::invalid_argument("the API key is not a valid header value"))
                })
            })
            .transpose()?;
        Ok(FeedbackClient { inner: FeedbackServiceClient::new(e.connect().await?), authorization })
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        if let Some(a) = &self.authorization {
            r.metadata_mut().insert("authorization", a.clone());
        }
        r
    }

    /// Submits a batch: valid scores are kept even when others are rejected (see the response's
    /// `errors`).
    pub async fn submit(&mut self, scores: Vec<proto::Score>) -> Result<proto::SubmitScoresResponse, Error> {
        let request = self.request(proto::SubmitScoresRequest { scores });
        Ok(self.inner.submit_scores(request).await?.into_inner())
    }

    /// Deletes a score by id.
    pub async fn delete(&mut self, id: &str) -> Result<(), Error> {
        let request = self.request(proto::DeleteScoreRequest { id: id.to_owned() });
        self.inner.delete_score(request).await?;
        Ok(())
    }
}

/// A score named `name` about this call's span (lower-case hex ids, as the collector stores them).
/// Set its data type and value or label before submitting.
pub fn score_for_call(call: &CallRef, name: &str) -> proto::Score {
    let sc = &call.span_context;
    proto::Score {
        name: name.to_owned(),
        target: Some(proto::score::Target::Span(proto::SpanTarget {
            trace_id: sc.trace_id().to_string(),
            span_id: sc.span_id().to_string(),
        })),
        ..proto::Score::default()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use proto::feedback_service_server::{FeedbackService, FeedbackServiceServer};

    use super::*;

    /// One submitted score with the `authorization` it came with.
    type Seen = (Option<String>, proto::Score);

    /// Records what arrives (the collector's real service is tested in the collector's own suites).
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<Seen>>>);

    #[tonic::async_trait]
    impl FeedbackService for Recorder {
        async fn submit_scores(
            &self,
            request: tonic::Request<proto::SubmitScoresRequest>,
        ) -> Result<tonic::Response<proto::SubmitScoresResponse>, tonic::Status> {
            let auth = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut seen = self.0.lock().unwrap();
            let accepted = request
                .into_inner()
                .scores
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    seen.push((auth.clone(), s));
                    proto::AcceptedScore { index: i as u32, id: format!("id-{i}") }
                })
                .collect();
            Ok(tonic::Response::new(proto::SubmitScoresResponse { accepted, ..Default::default() }))
        }

        async fn delete_score(
            &self,
            _: tonic::Request<proto::DeleteScoreRequest>,
        ) -> Result<tonic::Response<proto::DeleteScoreResponse>, tonic::Status> {
            Err(tonic::Status::not_found("no such score"))
        }
    }

    #[tokio::test]
    async fn a_call_score_reaches_the_service_with_its_span_and_key() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let recorder = Recorder::default();
        let server = tonic::transport::Server::builder()
            .add_service(FeedbackServiceServer::new(recorder.clone()))
            .serve(([127, 0, 0, 1], port).into());
        tokio::spawn(server);
        let url = format!("http://127.0.0.1:{port}");
        let mut client = loop {
            match FeedbackClient::connect(&url, Some("plk_test")).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        let spans = opentelemetry_sdk::trace::InMemorySpanExporter::default();
        let tp = opentelemetry_sdk::trace::SdkTracerProvider::builder().with_simple_exporter(spans).build();
        let call = crate::Instrument::new(&tp, None, crate::Capture::default())
            .chat("openai", "gpt-4o")
            .start()
            .finish(crate::Response::default());
        let mut score = score_for_call(&call, "user_feedback");
        score.data_type = proto::ScoreDataType::Boolean as i32;
        score.value = Some(1.0);
        let reply = client.submit(vec![score]).await.unwrap();
        assert_eq!(reply.accepted.len(), 1);
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let (auth, s) = &seen[0];
        assert_eq!(auth.as_deref(), Some("Bearer plk_test"));
        let Some(proto::score::Target::Span(t)) = &s.target else { panic!("{s:?}") };
        assert_eq!(t.trace_id, call.span_context.trace_id().to_string());
        assert_eq!(t.span_id, call.span_context.span_id().to_string());
        assert_eq!((s.name.as_str(), s.value), ("user_feedback", Some(1.0)));
        let err = client.delete("nope").await.unwrap_err();
        assert!(matches!(err, Error::Feedback(ref st) if st.code() == tonic::Code::NotFound), "{err}");
    }
}

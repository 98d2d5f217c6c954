//! `promptlog.feedback.v1.FeedbackService` on the gRPC port: a thin adapter over the shared score
//! paths in `receiver::scores` (authenticated with the `feedback` scope by the service's interceptor).

use promptlog_proto::feedback::v1::feedback_service_server::FeedbackService;
use promptlog_proto::feedback::v1::{
    DeleteScoreRequest, DeleteScoreResponse, SubmitScoresRequest, SubmitScoresResponse,
};
use prost::Message;
use tonic::{Request, Response, Status};

use super::super::Receiver;
use crate::auth::Identity;

fn identity<T>(request: &Request<T>) -> Result<Identity, Status> {
    // Set by `Authenticate`, which the service is wrapped in; absent would be a wiring bug.
    request.extensions().get::<Identity>().cloned().ok_or_else(|| Status::unauthenticated("no API key checked"))
}

#[tonic::async_trait]
impl FeedbackService for Receiver {
    async fn submit_scores(
        &self,
        request: Request<SubmitScoresRequest>,
    ) -> Result<Response<SubmitScoresResponse>, Status> {
        let identity = identity(&request)?;
        // tonic has decoded it already; reserve what it costs while it is checked and spooled.
        let _reservation = self.budget.try_reserve(request.get_ref().encoded_len())?;
        let scores = request.into_inner().scores.into_iter().enumerate().map(|(i, s)| (i as u32, s)).collect();
        Ok(Response::new(self.submit_scores(&identity, scores, Vec::new()).await?))
    }

    async fn delete_score(
        &self,
        request: Request<DeleteScoreRequest>,
    ) -> Result<Response<DeleteScoreResponse>, Status> {
        let identity = identity(&request)?;
        self.delete_score(&identity, request.into_inner().id).await?;
        Ok(Response::new(DeleteScoreResponse {}))
    }
}

//! The feedback API's one submit path and one delete path, shared by gRPC
//! (`promptlog.feedback.v1.FeedbackService`) and HTTP (`POST /v1/scores`, `DELETE /v1/scores/{id}`).
//!
//! Each score is checked on its own ([`promptlog_ingest::scores::validate`], the same check the seam
//! applies): the valid ones get an id when they have none and are spooled together as one
//! [`ScoreBatch`] through [`Ingest::accept`](crate::pipeline::Ingest::accept), exactly like an OTLP
//! request; the invalid ones are answered one by one. The response comes once the batch is fsynced.

use promptlog_ingest::scores::proto::{AcceptedScore, Score, ScoreError, SubmitScoresResponse};
use promptlog_ingest::scores::{self, ScoreBatch};
use promptlog_ingest::{Request, RequestContext, Signal, Table};

use super::{ReceiveError, Receiver};
use crate::auth::Identity;
use crate::runtime::now_ns;

/// Bytes of randomness in a collector-assigned score id (hex-encoded: 32 characters).
const ASSIGNED_ID_BYTES: usize = 16;

/// A fresh score id for a score submitted without one. Random (not derived from the request), since
/// the id is fixed before the batch is spooled and a replay reads it back from the spool.
fn assign_id() -> Result<String, ReceiveError> {
    let mut bytes = [0u8; ASSIGNED_ID_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| ReceiveError::Decode { what: "score id", detail: format!("cannot draw a random id: {e}") })?;
    Ok(const_hex::encode(bytes))
}

impl Receiver {
    fn scores_context(&self, identity: &Identity) -> Result<RequestContext, ReceiveError> {
        RequestContext::new(Signal::Scores, now_ns())
            .with_identity(&identity.project, &identity.key_id)
            .map_err(|e| ReceiveError::Decode { what: "API key identity", detail: e.to_string() })
    }

    /// Submits `submitted` (already decoded) and tells which were accepted (with their ids) and why the
    /// others were not. `errors` are problems found before this point (HTTP JSON fields that did not
    /// parse), by index; they count as rejected too.
    pub(crate) async fn submit_scores(
        &self,
        identity: &Identity,
        submitted: Vec<(u32, Score)>,
        mut errors: Vec<ScoreError>,
    ) -> Result<SubmitScoresResponse, ReceiveError> {
        let mut accepted = Vec::new();
        let mut keep = Vec::new();
        for (index, mut score) in submitted {
            match scores::validate(&score) {
                Ok(()) => {
                    if score.id.is_empty() {
                        score.id = assign_id()?;
                    }
                    accepted.push(AcceptedScore { index, id: score.id.clone() });
                    keep.push(score);
                }
                Err(why) => errors.push(ScoreError {
                    index,
                    id: score.id.clone(),
                    message: scores::describe(index as usize, &score, &why),
                }),
            }
        }
        errors.sort_by_key(|e| e.index);
        self.ingest.count_rejected(Table::Scores, errors.len() as u64);
        if !keep.is_empty() {
            let batch = ScoreBatch { scores: keep, deleted: Vec::new() };
            let outcome = self.ingest.accept(self.scores_context(identity)?, Request::Scores(batch), None).await?;
            // Every score was checked above with the seam's own check: the seam rejects none.
            debug_assert_eq!(outcome.rejected, 0, "{}", outcome.message);
        }
        accepted.sort_by_key(|a| a.index);
        Ok(SubmitScoresResponse { accepted, rejected_scores: errors.len() as i64, errors })
    }

    /// Deletes score `id` of the identity's project: spools a tombstone (answered once fsynced).
    pub(crate) async fn delete_score(&self, identity: &Identity, id: String) -> Result<(), ReceiveError> {
        scores::check_id(&id).map_err(|detail| ReceiveError::Decode { what: "score id", detail })?;
        let batch = ScoreBatch { scores: Vec::new(), deleted: vec![id] };
        self.ingest.accept(self.scores_context(identity)?, Request::Scores(batch), None).await?;
        Ok(())
    }
}

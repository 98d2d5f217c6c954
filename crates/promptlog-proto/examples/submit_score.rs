//! The README's Rust feedback snippet, compiled by `cargo test` so it stays true:
//! `cargo run -p promptlog-proto --features grpc --example submit_score -- http://localhost:4317 KEY RESPONSE_ID`
//! sends a thumbs-up for the call with that `gen_ai.response.id`.

use promptlog_proto::feedback::v1::{feedback_service_client::FeedbackServiceClient, score::Target, *};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(endpoint), Some(key), Some(response_id)) = (args.next(), args.next(), args.next()) else {
        return Err("usage: submit_score ENDPOINT KEY RESPONSE_ID".into());
    };
    let mut client = FeedbackServiceClient::connect(endpoint).await?;
    let mut request = tonic::Request::new(SubmitScoresRequest {
        scores: vec![Score {
            target: Some(Target::ResponseId(response_id)),
            name: "user_rating".into(),
            data_type: ScoreDataType::Boolean as i32,
            value: Some(1.0),
            source: ScoreSource::EndUser as i32,
            ..Default::default()
        }],
    });
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse()?);
    let reply = client.submit_scores(request).await?.into_inner();
    println!("accepted {:?}, errors {:?}", reply.accepted, reply.errors);
    Ok(())
}

//! OTLP status codes for the errors tonic raises itself, before a handler runs.
//!
//! tonic answers a request message over `max_decoding_message_size` with OUT_OF_RANGE, which the
//! OTLP spec lists as retryable: exporters would resend the same oversized request forever. The
//! spec wants RESOURCE_EXHAUSTED (not retried without RetryInfo). tonic answers an undecodable
//! message (garbage, truncation, invalid UTF-8, nesting beyond prost's recursion limit) with
//! INTERNAL, where the spec wants INVALID_ARGUMENT for data that can never be accepted.
//!
//! tonic has no option for either, and its codec is fixed when the service is generated, so
//! [`OtlpStatus`] wraps each generated service and rewrites `grpc-status` in "trailers-only"
//! responses, i.e. errors returned before any response message, which is where both decode errors
//! land. Handlers never return OUT_OF_RANGE or INTERNAL themselves (`From<ReceiveError> for Status`
//! uses neither), so only tonic's own decode errors are rewritten.

use std::task::{Context, Poll};

use futures::TryFutureExt;
use futures::future::MapOk;
use tonic::Code;
use tonic::codegen::Service;
use tonic::codegen::http::{HeaderMap, HeaderValue, Request, Response};
use tonic::server::NamedService;

/// The gRPC status header (in a trailers-only response it travels with the headers).
const GRPC_STATUS: &str = "grpc-status";

/// A generated tonic service whose pre-handler errors carry OTLP's status codes.
#[derive(Debug, Clone)]
pub struct OtlpStatus<S>(pub S);

impl<S: NamedService> NamedService for OtlpStatus<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for OtlpStatus<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(Response<ResBody>) -> Response<ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        self.0.call(request).map_ok(remap_response as fn(Response<ResBody>) -> Response<ResBody>)
    }
}

fn remap_response<B>(mut response: Response<B>) -> Response<B> {
    remap(response.headers_mut());
    response
}

/// Rewrites tonic's decode-error codes to the ones OTLP asks for; leaves every other code alone.
fn remap(headers: &mut HeaderMap) {
    let Some(code) = headers.get(GRPC_STATUS).map(|v| Code::from_bytes(v.as_bytes())) else { return };
    let otlp = match code {
        Code::OutOfRange => Code::ResourceExhausted,
        Code::Internal => Code::InvalidArgument,
        _ => return,
    };
    headers.insert(GRPC_STATUS, HeaderValue::from(otlp as i32));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_after_remap(code: Code) -> Code {
        let mut headers = HeaderMap::new();
        headers.insert(GRPC_STATUS, HeaderValue::from(code as i32));
        remap(&mut headers);
        Code::from_bytes(headers[GRPC_STATUS].as_bytes())
    }

    #[test]
    fn only_decoder_codes_change() {
        assert_eq!(status_after_remap(Code::OutOfRange), Code::ResourceExhausted);
        assert_eq!(status_after_remap(Code::Internal), Code::InvalidArgument);
        for code in [Code::Ok, Code::Unavailable, Code::ResourceExhausted, Code::InvalidArgument] {
            assert_eq!(status_after_remap(code), code);
        }
        let mut none = HeaderMap::new();
        remap(&mut none);
        assert!(none.is_empty());
    }
}

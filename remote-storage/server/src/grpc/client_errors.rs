//! A tower layer on the gRPC server that reports a request the client got wrong as the
//! client's error, with the status the OTLP specification gives it.
//!
//! tonic answers a request body it cannot decode (bad protobuf, bad framing, bad gzip, a body
//! cut short) with `INTERNAL`, and one over the size limit with `OUT_OF_RANGE`. For an OTLP
//! exporter the first looks like a server fault and pollutes error-rate alerts; the second is
//! one of the codes it retries, so it resends the same oversized request until its retry
//! budget runs out. Here they become `INVALID_ARGUMENT` and `RESOURCE_EXHAUSTED` (not retried
//! without retry information), on every service, in the status of a trailers-only answer and
//! in the trailers of a streamed one. The message is kept.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// How tonic words a request it could not decode (all `INTERNAL`).
const UNDECODABLE: &[&str] = &[
    "failed to decode Protobuf message",
    "protocol error: received message with",
    "Error decompressing:",
    "Unexpected EOF decoding stream",
];

/// How tonic words a request message over the size limit (`OUT_OF_RANGE`).
const TOO_LARGE: &str = "Error, decoded message length too large";

/// The status a client's mistake should have had, when `status` is tonic's for one.
pub(crate) fn client_code(status: &Status) -> Option<Code> {
    let message = status.message();
    match status.code() {
        Code::Internal if UNDECODABLE.iter().any(|prefix| message.starts_with(prefix)) => {
            Some(Code::InvalidArgument)
        }
        Code::OutOfRange if message.starts_with(TOO_LARGE) => Some(Code::ResourceExhausted),
        _ => None,
    }
}

/// Rewrites the status in `headers` (a trailers-only answer, or trailers) when it is one of
/// tonic's for a client's mistake.
fn reclassify(headers: &mut HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    if let Some(code) = client_code(&status) {
        // Writing a status already read from these headers cannot fail.
        let _ = Status::new(code, status.message()).add_header(headers);
    }
}

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientErrorLayer;

impl<S> Layer<S> for ClientErrorLayer {
    type Service = ClientErrorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientErrorService { inner }
    }
}

/// See [`ClientErrorLayer`].
#[derive(Debug, Clone)]
pub(crate) struct ClientErrorService<S> {
    inner: S,
}

impl<S, RequestBody> Service<http::Request<RequestBody>> for ClientErrorService<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let (mut parts, body) = response.await?.into_parts();
            if parts.headers.contains_key("grpc-status") {
                // Trailers-only: the call failed before any message.
                reclassify(&mut parts.headers);
                return Ok(http::Response::from_parts(parts, body));
            }
            Ok(http::Response::from_parts(
                parts,
                Body::new(ReclassifiedBody { inner: body }),
            ))
        })
    }
}

/// A response body whose trailers are reclassified as they go by.
struct ReclassifiedBody {
    inner: Body,
}

impl HttpBody for ReclassifiedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_trailers() {
                Ok(mut trailers) => {
                    reclassify(&mut trailers);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            }))),
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_s_words_for_client_mistakes_get_the_client_s_codes() {
        let cases = [
            (
                Status::internal("failed to decode Protobuf message: invalid wire type"),
                Some(Code::InvalidArgument),
            ),
            (
                Status::internal("Error decompressing: invalid gzip header, while sending request"),
                Some(Code::InvalidArgument),
            ),
            (
                Status::internal("Unexpected EOF decoding stream."),
                Some(Code::InvalidArgument),
            ),
            (
                Status::out_of_range(
                    "Error, decoded message length too large: found 73400320 bytes, the limit \
                     is: 67108864 bytes",
                ),
                Some(Code::ResourceExhausted),
            ),
            (Status::internal("lsm store failure"), None),
            (Status::out_of_range("something else"), None),
            (
                Status::unavailable("failed to decode Protobuf message"),
                None,
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(client_code(&status), expected, "{status:?}");
        }
    }

    #[test]
    fn headers_are_rewritten_keeping_the_message() {
        let mut headers = HeaderMap::new();
        Status::internal("failed to decode Protobuf message: buffer underflow")
            .add_header(&mut headers)
            .unwrap();
        reclassify(&mut headers);
        let status = Status::from_header_map(&headers).unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "failed to decode Protobuf message: buffer underflow"
        );
        let mut untouched = HeaderMap::new();
        Status::internal("backend failure")
            .add_header(&mut untouched)
            .unwrap();
        reclassify(&mut untouched);
        assert_eq!(
            Status::from_header_map(&untouched).unwrap().code(),
            Code::Internal
        );
    }
}

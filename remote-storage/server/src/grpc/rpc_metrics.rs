//! A tower layer on the gRPC server that counts every RPC by method and status code and times
//! it until its last response byte.
//!
//! The status of a failed call is in the response headers (trailers-only response); the status
//! of a call that sent messages is in the trailers at the end of the body, so the body is
//! wrapped and observed. A body dropped before its trailers (client gone) counts as
//! `CANCELLED`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::metrics::ServerMetrics;

/// Methods counted under their own label; anything else counts as `unknown`, so a client
/// cannot inflate label cardinality with made-up paths.
const KNOWN_METHODS: &[&str] = &[
    "jaeger.storage.v2.TraceReader/GetTraces",
    "jaeger.storage.v2.TraceReader/GetServices",
    "jaeger.storage.v2.TraceReader/GetOperations",
    "jaeger.storage.v2.TraceReader/FindTraces",
    "jaeger.storage.v2.TraceReader/FindTraceIDs",
    "jaeger.storage.v2.TraceReader/FindTraceSummaries",
    "jaeger.storage.v2.DependencyReader/GetDependencies",
    "jaeger.storage.v2.Capabilities/GetCapabilities",
    "opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "jaeger.storage.v1.SpanWriterPlugin/WriteSpan",
    "jaeger.storage.v1.SpanWriterPlugin/Close",
    "jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream",
    "jaeger.storage.v1.SpanReaderPlugin/GetTrace",
    "jaeger.storage.v1.SpanReaderPlugin/GetServices",
    "jaeger.storage.v1.SpanReaderPlugin/GetOperations",
    "jaeger.storage.v1.SpanReaderPlugin/FindTraces",
    "jaeger.storage.v1.SpanReaderPlugin/FindTraceIDs",
    "jaeger.storage.v1.DependenciesReaderPlugin/GetDependencies",
    "jaeger.storage.v1.PluginCapabilities/Capabilities",
    "jaeger.storage.v1.ArchiveSpanWriterPlugin/WriteArchiveSpan",
    "jaeger.storage.v1.ArchiveSpanReaderPlugin/GetArchiveTrace",
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

fn method_label(path: &str) -> &'static str {
    let method = path.strip_prefix('/').unwrap_or(path);
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("unknown")
}

fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn status_code(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// Adds RPC metrics to the services below it.
#[derive(Debug, Clone)]
pub(crate) struct RpcMetricsLayer {
    metrics: Arc<ServerMetrics>,
}

impl RpcMetricsLayer {
    pub(crate) fn new(metrics: Arc<ServerMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetricsService {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub(crate) struct RpcMetricsService<S> {
    inner: S,
    metrics: Arc<ServerMetrics>,
}

impl<S, RequestBody> Service<http::Request<RequestBody>> for RpcMetricsService<S>
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
        let recorder = RpcRecorder {
            metrics: Arc::clone(&self.metrics),
            method: method_label(request.uri().path()),
            started: Instant::now(),
            finished: false,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let (parts, body) = response.await?.into_parts();
            if let Some(code) = status_code(&parts.headers) {
                // Trailers-only response: the call already failed (or ended) here.
                recorder.finish(code);
                return Ok(http::Response::from_parts(parts, body));
            }
            let metered = MeteredBody {
                inner: body,
                recorder: Some(recorder),
            };
            Ok(http::Response::from_parts(parts, Body::new(metered)))
        })
    }
}

/// Records one RPC exactly once: when finished, or as `CANCELLED` when dropped unfinished.
struct RpcRecorder {
    metrics: Arc<ServerMetrics>,
    method: &'static str,
    started: Instant,
    finished: bool,
}

impl RpcRecorder {
    fn finish(mut self, code: Code) {
        self.record(code);
    }

    fn record(&mut self, code: Code) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.metrics
            .rpc_finished(self.method, code_label(code), self.started.elapsed());
    }
}

impl Drop for RpcRecorder {
    fn drop(&mut self) {
        self.record(Code::Cancelled);
    }
}

/// A response body that records the RPC when its trailers (or its end) go by.
struct MeteredBody {
    inner: Body,
    recorder: Option<RpcRecorder>,
}

impl MeteredBody {
    fn finish(&mut self, code: Code) {
        if let Some(recorder) = self.recorder.take() {
            recorder.finish(code);
        }
    }
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.finish(status_code(trailers).unwrap_or(Code::Ok));
                }
            }
            Poll::Ready(Some(Err(status))) => this.finish(status.code()),
            Poll::Ready(None) => this.finish(Code::Ok),
            Poll::Pending => {}
        }
        polled
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
    fn only_known_methods_get_their_own_label() {
        assert_eq!(
            method_label("/jaeger.storage.v2.TraceReader/GetTraces"),
            "jaeger.storage.v2.TraceReader/GetTraces"
        );
        assert_eq!(method_label("/evil/path-123"), "unknown");
    }

    #[test]
    fn status_headers_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(status_code(&headers), None);
        headers.insert("grpc-status", "3".parse().unwrap());
        assert_eq!(status_code(&headers), Some(Code::InvalidArgument));
        assert_eq!(code_label(Code::InvalidArgument), "INVALID_ARGUMENT");
    }
}

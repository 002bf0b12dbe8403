//! Backpressure: a bound on the work the gRPC listeners hold at once, shared by the main and
//! writer listeners, so a flood is turned away quickly instead of queued without limit.
//!
//! - **Write calls** (OTLP Export, v1 `WriteSpan`, v1 `WriteSpanStream`) take one of
//!   `max_concurrent_writes` slots for their whole life.
//! - **Their request bytes** are counted as they arrive against `max_inflight_bytes`, and held
//!   until the answer is sent: the decoded spans of an admitted request live that long. (A
//!   stream's messages are stored one by one, so a stream counts its slot, not its bytes.)
//! - **Reads** (every other call but health, reflection and capabilities, which are cheap and
//!   probed) take one of `max_concurrent_reads` slots until their answer stream ends.
//!
//! Over a bound the call is answered at once with `UNAVAILABLE` carrying `RetryInfo`: the
//! OTLP specification's throttling answer, which every OTLP exporter retries after the given
//! delay. Nothing is queued: a queue would only move the unbounded memory elsewhere.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer, Service};

use crate::config::ServerLimits;
use crate::metrics::ServerMetrics;

/// Unary write methods: their request bytes are counted.
const UNARY_WRITES: &[&str] = &[
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/jaeger.storage.v1.SpanWriterPlugin/WriteSpan",
];
/// Streaming write methods: one slot each, for the stream's life.
const STREAMING_WRITES: &[&str] = &["/jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream"];
/// Services never throttled: probes, reflection and capability answers cost nothing.
const OPEN_SERVICES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/jaeger.storage.v2.Capabilities/",
    "/jaeger.storage.v1.PluginCapabilities/",
];

/// What a call is, for admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    UnaryWrite,
    StreamingWrite,
    Read,
    Open,
}

fn call_kind(path: &str) -> CallKind {
    if UNARY_WRITES.contains(&path) {
        CallKind::UnaryWrite
    } else if STREAMING_WRITES.contains(&path) {
        CallKind::StreamingWrite
    } else if OPEN_SERVICES.iter().any(|prefix| path.starts_with(prefix)) {
        CallKind::Open
    } else {
        CallKind::Read
    }
}

/// Which bound turned a call away (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttled {
    /// `max_concurrent_writes`.
    Writes,
    /// `max_inflight_bytes`.
    Bytes,
    /// `max_concurrent_reads`.
    Reads,
}

impl Throttled {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Writes => "concurrent_writes",
            Self::Bytes => "inflight_bytes",
            Self::Reads => "concurrent_reads",
        }
    }
}

/// The shared bounds. What the byte budget holds is derived from its semaphore.
#[derive(Debug)]
pub(crate) struct Admission {
    writes: Arc<Semaphore>,
    reads: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    max_bytes: usize,
    retry_delay: Duration,
    metrics: Arc<ServerMetrics>,
}

impl Admission {
    pub(crate) fn new(limits: &ServerLimits, metrics: Arc<ServerMetrics>) -> Arc<Self> {
        Arc::new(Self {
            writes: Arc::new(Semaphore::new(limits.max_concurrent_writes.get())),
            reads: Arc::new(Semaphore::new(limits.max_concurrent_reads.get())),
            bytes: Arc::new(Semaphore::new(limits.max_inflight_bytes.get())),
            max_bytes: limits.max_inflight_bytes.get(),
            retry_delay: limits.throttle_retry_delay,
            metrics,
        })
    }

    /// The answer to a throttled call.
    fn throttled(&self, bound: Throttled) -> Status {
        self.metrics.record_throttled(bound.as_str());
        let message = match bound {
            Throttled::Writes => "server busy: too many write calls in flight; retry later",
            Throttled::Bytes => {
                "server busy: too many request bytes in flight (--max-inflight-bytes); retry later"
            }
            Throttled::Reads => "server busy: too many read calls in flight; retry later",
        };
        Status::with_error_details(
            tonic::Code::Unavailable,
            message,
            ErrorDetails::with_retry_info(Some(self.retry_delay)),
        )
    }

    /// Publishes the request bytes held now (the budget minus what is left of it).
    fn publish_held_bytes(&self) {
        self.metrics
            .set_inflight_bytes(self.max_bytes - self.bytes.available_permits());
    }
}

/// What an admitted call holds until its answer has been sent (or dropped): its slot, and the
/// budget bytes its request took, as one permit grown frame by frame.
struct Holdings {
    admission: Arc<Admission>,
    _slot: OwnedSemaphorePermit,
    bytes: Option<OwnedSemaphorePermit>,
}

impl Holdings {
    /// Takes `count` more bytes of the budget; `false` when they do not fit now.
    fn take_bytes(&mut self, count: u32) -> bool {
        let Ok(permit) = Arc::clone(&self.admission.bytes).try_acquire_many_owned(count) else {
            return false;
        };
        match &mut self.bytes {
            Some(held) => held.merge(permit),
            None => self.bytes = Some(permit),
        }
        self.admission.publish_held_bytes();
        true
    }
}

impl Drop for Holdings {
    fn drop(&mut self) {
        if self.bytes.take().is_some() {
            self.admission.publish_held_bytes();
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct AdmissionLayer {
    admission: Arc<Admission>,
}

impl AdmissionLayer {
    pub(crate) fn new(admission: Arc<Admission>) -> Self {
        Self { admission }
    }
}

impl<S> Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            admission: Arc::clone(&self.admission),
        }
    }
}

/// See [`AdmissionLayer`].
#[derive(Debug, Clone)]
pub(crate) struct AdmissionService<S> {
    inner: S,
    admission: Arc<Admission>,
}

impl<S> Service<http::Request<Body>> for AdmissionService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let admission = &self.admission;
        let kind = call_kind(request.uri().path());
        let (semaphore, bound) = match kind {
            CallKind::Open => return Box::pin(self.inner.call(request)),
            CallKind::UnaryWrite | CallKind::StreamingWrite => {
                (&admission.writes, Throttled::Writes)
            }
            CallKind::Read => (&admission.reads, Throttled::Reads),
        };
        let Ok(slot) = Arc::clone(semaphore).try_acquire_owned() else {
            return reject(admission.throttled(bound));
        };
        let holdings = Arc::new(Mutex::new(Holdings {
            admission: Arc::clone(admission),
            _slot: slot,
            bytes: None,
        }));
        let request = if kind == CallKind::UnaryWrite {
            request.map(|body| {
                Body::new(CountedBody {
                    inner: body,
                    holdings: Arc::clone(&holdings),
                })
            })
        } else {
            request
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(HoldingBody {
                    inner: body,
                    _holdings: holdings,
                })
            }))
        })
    }
}

fn reject<E: Send + 'static>(
    status: Status,
) -> BoxFuture<'static, Result<http::Response<Body>, E>> {
    Box::pin(async move { Ok(status.into_http()) })
}

/// A request body that takes budget bytes for each frame as it arrives; when they do not fit,
/// it ends with the throttling status (which the call answers with).
struct CountedBody {
    inner: Body,
    holdings: Arc<Mutex<Holdings>>,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            // A frame is at most the HTTP/2 frame size, far below u32::MAX; saturate anyway.
            let count = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let mut holdings = this
                .holdings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !holdings.take_bytes(count) {
                let status = holdings.admission.throttled(Throttled::Bytes);
                return Poll::Ready(Some(Err(status)));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps the call's slot and bytes until it is done or dropped.
struct HoldingBody {
    inner: Body,
    _holdings: Arc<Mutex<Holdings>>,
}

impl HttpBody for HoldingBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
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
    fn calls_are_sorted_by_what_they_cost() {
        assert_eq!(
            call_kind("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
            CallKind::UnaryWrite
        );
        assert_eq!(
            call_kind("/jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream"),
            CallKind::StreamingWrite
        );
        assert_eq!(call_kind("/grpc.health.v1.Health/Watch"), CallKind::Open);
        assert_eq!(
            call_kind("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            CallKind::Open
        );
        assert_eq!(
            call_kind("/jaeger.storage.v2.TraceReader/FindTraces"),
            CallKind::Read
        );
        assert_eq!(
            call_kind("/jaeger.storage.v1.SpanReaderPlugin/GetTrace"),
            CallKind::Read
        );
    }
}

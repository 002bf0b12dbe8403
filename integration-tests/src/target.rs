//! What the suite runs against: [`SuiteTarget`], implemented in-process over a
//! [`remote_storage_core::Backend`] ([`crate::InProcessTarget`]) and over gRPC
//! ([`crate::GrpcTarget`]). Every answer comes back in OTLP form so that comparison is uniform.

use anyhow::Context as _;
use async_trait::async_trait;
use jaeger_remote_proto::otlp::common::AnyValue;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, Span as OtlpSpan};
use jaeger_remote_proto::storage::v2 as proto;
use prost_types::{Duration as ProtoDuration, Timestamp};
use remote_storage_core::time::GO_ZERO_TIME_SECONDS;
use remote_storage_core::{Operation, UnixNanos};

/// All spans of one trace, grouped as OTLP `ResourceSpans` (grouping carries no meaning).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OtlpTrace {
    /// The trace's resource groups.
    pub resource_spans: Vec<ResourceSpans>,
}

impl OtlpTrace {
    /// Wraps resource groups.
    pub fn new(resource_spans: Vec<ResourceSpans>) -> Self {
        Self { resource_spans }
    }

    /// Every span, in storage order.
    pub fn spans(&self) -> impl Iterator<Item = &OtlpSpan> {
        self.resource_spans
            .iter()
            .flat_map(|group| group.scope_spans.iter())
            .flat_map(|scope| scope.spans.iter())
    }

    /// Number of spans.
    pub fn span_count(&self) -> usize {
        self.spans().count()
    }

    /// The trace ID of the first span (Jaeger's convention), `None` for an empty trace.
    pub fn trace_id(&self) -> Option<&[u8]> {
        self.spans().next().map(|span| span.trace_id.as_slice())
    }

    /// The trace ID of the first span as lower-case hex (`"<empty>"` for an empty trace).
    pub fn trace_id_hex(&self) -> String {
        self.trace_id()
            .map_or_else(|| "<empty>".to_owned(), hex::encode)
    }
}

/// A trace search, with Jaeger's `TraceQueryParams` fields. Attribute values are typed; the
/// via-Jaeger wire mode sends them as strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSearch {
    /// Resource `service.name`; empty means any service.
    pub service_name: String,
    /// Span name; empty means any.
    pub operation_name: String,
    /// `key = value` conditions, in order.
    pub attributes: Vec<(String, AnyValue)>,
    /// Inclusive lower bound on span start.
    pub start_time_min: Option<UnixNanos>,
    /// Inclusive upper bound on span start.
    pub start_time_max: Option<UnixNanos>,
    /// Inclusive lower bound on span duration, in nanoseconds.
    pub duration_min: Option<u64>,
    /// Inclusive upper bound on span duration, in nanoseconds.
    pub duration_max: Option<u64>,
    /// Maximum number of traces.
    pub search_depth: i32,
    /// A structured filter (`TraceQueryParameters.filter`), sent as is; it replaces service,
    /// operation, attributes and duration bounds (the server refuses a mix).
    pub filter: Option<jaeger_remote_proto::expression::v1::Call>,
}

/// How attribute values of a search go on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeEncoding {
    /// As typed values (Jaeger's direct suite).
    Typed,
    /// As strings (everything that comes through Jaeger's query service).
    Strings,
}

impl TraceSearch {
    /// The request parameters exactly as Jaeger's Go client encodes them: every timestamp and
    /// duration present, unset ones as Go's zero values.
    pub fn to_proto(&self, encoding: AttributeEncoding) -> proto::TraceQueryParameters {
        proto::TraceQueryParameters {
            service_name: self.service_name.clone(),
            operation_name: self.operation_name.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|(key, value)| proto::KeyValue {
                    key: key.clone(),
                    value: match encoding {
                        AttributeEncoding::Typed => {
                            remote_storage_core::attribute::otlp_value_to_query(value)
                        }
                        AttributeEncoding::Strings => Some(proto::AnyValue {
                            value: Some(proto::any_value::Value::StringValue(
                                remote_storage_core::attribute::any_value_text(Some(value))
                                    .into_owned(),
                            )),
                        }),
                    },
                })
                .collect(),
            start_time_min: Some(go_timestamp(self.start_time_min)),
            start_time_max: Some(go_timestamp(self.start_time_max)),
            duration_min: Some(go_duration(self.duration_min)),
            duration_max: Some(go_duration(self.duration_max)),
            search_depth: self.search_depth,
            filter: self.filter.clone(),
        }
    }
}

/// A timestamp as the Go client sends it: unset is 0001-01-01T00:00:00Z.
pub fn go_timestamp(time: Option<UnixNanos>) -> Timestamp {
    match time {
        Some(time) => time.to_proto(),
        None => Timestamp {
            seconds: GO_ZERO_TIME_SECONDS,
            nanos: 0,
        },
    }
}

/// A duration as the Go client sends it: unset is zero.
pub fn go_duration(nanos: Option<u64>) -> ProtoDuration {
    let nanos = nanos.unwrap_or(0);
    ProtoDuration {
        seconds: i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
        nanos: i32::try_from(nanos % 1_000_000_000).unwrap_or(0),
    }
}

/// A dependency link as GetDependencies returns it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DependencyInfo {
    /// Calling service.
    pub parent: String,
    /// Called service.
    pub child: String,
    /// Number of calls.
    pub call_count: u64,
    /// Source field (`""` for links derived from spans).
    pub source: String,
}

impl From<proto::Dependency> for DependencyInfo {
    fn from(link: proto::Dependency) -> Self {
        Self {
            parent: link.parent,
            child: link.child,
            call_count: link.call_count,
            source: link.source,
        }
    }
}

impl From<jaeger_remote_proto::api_v2::DependencyLink> for DependencyInfo {
    fn from(link: jaeger_remote_proto::api_v2::DependencyLink) -> Self {
        Self {
            parent: link.parent,
            child: link.child,
            call_count: link.call_count,
            source: link.source,
        }
    }
}

/// One operation of a service.
pub type OperationInfo = Operation;

/// Everything the suite needs from a storage, whatever the transport.
///
/// Methods answer with plain values; errors are reported verbatim in failure messages, so they
/// should say what was attempted.
#[async_trait]
pub trait SuiteTarget: Send + Sync + 'static {
    /// A short description for logs, e.g. `in-process memory` or `grpc localhost:17271`.
    fn describe(&self) -> String;

    /// Writes the spans of one batch (Jaeger's `writeTrace`: one whole trace per call).
    async fn write_traces(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()>;

    /// Fetches traces by ID; unknown IDs are absent from the answer. Consecutive chunks of one
    /// trace are merged, as Jaeger's query service does.
    async fn get_traces(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>>;

    /// Every stored service name, in any order.
    async fn get_services(&self) -> anyhow::Result<Vec<String>>;

    /// Operations of a service; `span_kind` empty means all kinds.
    async fn get_operations(
        &self,
        service: &str,
        span_kind: &str,
    ) -> anyhow::Result<Vec<OperationInfo>>;

    /// Whole traces matching a search, consecutive chunks of one trace merged.
    async fn find_traces(&self, search: &TraceSearch) -> anyhow::Result<Vec<OtlpTrace>>;

    /// Native trace summaries, or `None` when the storage declines the call (UNIMPLEMENTED
    /// before any chunk); the suite then computes them as Jaeger's query service does.
    async fn find_trace_summaries(
        &self,
        search: &TraceSearch,
    ) -> anyhow::Result<Option<Vec<proto::TraceSummary>>>;

    /// Search capabilities, or `None` when the storage does not serve them.
    async fn capabilities(&self) -> anyhow::Result<Option<proto::SearchCapabilities>>;

    /// Dependency links of a time window.
    async fn get_dependencies(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<DependencyInfo>>;

    /// Deletes everything; returns once the storage is empty.
    async fn purge(&self) -> anyhow::Result<()>;

    /// What reading back `written` yields through this target, when its model cannot carry
    /// everything OTLP can (Jaeger's v1 model); the suite compares answers with this. The
    /// default is `written` itself.
    fn expected_back(&self, written: &OtlpTrace) -> anyhow::Result<OtlpTrace> {
        Ok(written.clone())
    }
}

/// Merges consecutive chunks of one trace as Jaeger's `jptrace.AggregateTraces` does: a chunk
/// belongs to the trace of its first span; a new trace ID starts a new trace.
///
/// Unlike Jaeger's aggregator, chunks that break the protocol (empty, or mixing traces) are
/// reported as errors: `trace_storage.proto` forbids both.
pub fn aggregate_chunks(
    chunks: impl IntoIterator<Item = Vec<ResourceSpans>>,
) -> anyhow::Result<Vec<OtlpTrace>> {
    let mut traces: Vec<OtlpTrace> = Vec::new();
    for (index, chunk) in chunks.into_iter().enumerate() {
        let chunk = OtlpTrace::new(chunk);
        let Some(first_id) = chunk.trace_id().map(<[u8]>::to_vec) else {
            anyhow::bail!(
                "stream chunk #{index} holds no span (trace_storage.proto: no chunk may be empty)"
            );
        };
        if let Some(other) = chunk.spans().find(|span| span.trace_id != first_id) {
            anyhow::bail!(
                "stream chunk #{index} mixes traces {} and {} (trace_storage.proto: a chunk must \
                 hold spans of one trace only)",
                hex::encode(&first_id),
                hex::encode(&other.trace_id)
            );
        }
        match traces.last_mut() {
            Some(last) if last.trace_id() == Some(first_id.as_slice()) => {
                last.resource_spans.extend(chunk.resource_spans);
            }
            _ => traces.push(chunk),
        }
    }
    Ok(traces)
}

/// Converts a 16-byte slice into a trace ID array.
pub fn trace_id_array(bytes: &[u8]) -> anyhow::Result<[u8; 16]> {
    bytes
        .try_into()
        .with_context(|| format!("trace ID {} is not 16 bytes", hex::encode(bytes)))
}

/// Whether a target call failed with `INVALID_ARGUMENT`: a gRPC status, or a store error of that
/// kind in process.
pub fn is_invalid_argument(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<crate::connection::RpcFailure>()
            .is_some_and(|failure| failure.code == tonic::Code::InvalidArgument)
            || cause
                .downcast_ref::<remote_storage_core::StoreError>()
                .is_some_and(|error| {
                    error.kind() == remote_storage_core::ErrorKind::InvalidArgument
                })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::common::any_value;
    use jaeger_remote_proto::otlp::trace::ScopeSpans;

    fn chunk(trace_bytes: &[u8]) -> Vec<ResourceSpans> {
        vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: trace_bytes
                    .iter()
                    .map(|byte| OtlpSpan {
                        trace_id: vec![*byte; 16],
                        span_id: vec![1; 8],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn consecutive_chunks_of_one_trace_merge_and_others_do_not() {
        let traces = aggregate_chunks([chunk(&[1, 1]), chunk(&[1]), chunk(&[2]), chunk(&[1])])
            .expect("valid chunks");
        let shape: Vec<(String, usize)> = traces
            .iter()
            .map(|trace| (trace.trace_id_hex(), trace.span_count()))
            .collect();
        assert_eq!(
            shape,
            [
                ("01".repeat(16), 3),
                ("02".repeat(16), 1),
                // Not consecutive: a second trace, as in Jaeger's aggregator.
                ("01".repeat(16), 1),
            ]
        );
    }

    #[test]
    fn empty_and_mixed_chunks_are_protocol_errors() {
        let empty = aggregate_chunks([chunk(&[1]), Vec::new()]).unwrap_err();
        assert!(
            empty.to_string().contains("chunk #1 holds no span"),
            "{empty}"
        );
        let mixed = aggregate_chunks([chunk(&[1, 2])]).unwrap_err();
        assert!(mixed.to_string().contains("mixes traces"), "{mixed}");
    }

    #[test]
    fn searches_encode_like_the_go_client() {
        let search = TraceSearch {
            service_name: "svc".into(),
            attributes: vec![(
                "n".into(),
                AnyValue {
                    value: Some(any_value::Value::DoubleValue(72.5)),
                },
            )],
            start_time_max: Some(UnixNanos(1_500_000_000_000_000_123)),
            duration_max: Some(2_000),
            search_depth: 1000,
            ..TraceSearch::default()
        };
        let typed = search.to_proto(AttributeEncoding::Typed);
        assert_eq!(
            typed.start_time_min,
            Some(Timestamp {
                seconds: GO_ZERO_TIME_SECONDS,
                nanos: 0
            })
        );
        assert_eq!(
            typed.start_time_max,
            Some(Timestamp {
                seconds: 1_500_000_000,
                nanos: 123
            })
        );
        assert_eq!(typed.duration_min, Some(ProtoDuration::default()));
        assert_eq!(
            typed.duration_max,
            Some(ProtoDuration {
                seconds: 0,
                nanos: 2_000
            })
        );
        assert_eq!(
            typed.attributes[0].value,
            Some(proto::AnyValue {
                value: Some(proto::any_value::Value::DoubleValue(72.5))
            })
        );
        let strings = search.to_proto(AttributeEncoding::Strings);
        assert_eq!(
            strings.attributes[0].value,
            Some(proto::AnyValue {
                value: Some(proto::any_value::Value::StringValue("72.5".into()))
            })
        );
    }
}

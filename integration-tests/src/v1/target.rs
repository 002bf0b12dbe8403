//! The suite over Jaeger's v1 remote-storage API, shaped as Jaeger v1's gRPC storage client
//! calls it: writes through `WriteSpanStream` (one span per message) or `WriteSpan`, reads
//! through `SpanReaderPlugin` and `DependenciesReaderPlugin`, a 4 MiB receive limit, and an
//! unknown trace recognised only by `NOT_FOUND` "trace not found". Spans go through the v1
//! model both ways (the OTLP fixtures as a v1 client would send them, the answers back to OTLP
//! for comparison).

use async_trait::async_trait;
use jaeger_remote_proto::api_v2 as v1;
use jaeger_remote_proto::otlp::trace::ResourceSpans;
use jaeger_remote_proto::storage::v1 as proto;
use jaeger_remote_proto::storage::v1::dependencies_reader_plugin_client::DependenciesReaderPluginClient;
use jaeger_remote_proto::storage::v1::span_reader_plugin_client::SpanReaderPluginClient;
use jaeger_remote_proto::storage::v1::span_writer_plugin_client::SpanWriterPluginClient;
use jaeger_remote_proto::storage::v1::streaming_span_writer_plugin_client::StreamingSpanWriterPluginClient;
use jaeger_remote_proto::storage::v2 as proto_v2;
use remote_storage_core::UnixNanos;
use remote_storage_core::v1::from_otlp::resource_spans_to_v1;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

use super::fixtures::trace_through_v1;
use super::wire::{traces_from_chunks, v1_query};
use crate::connection::{Connections, status_error};
use crate::grpc::GrpcTargetConfig;
use crate::target::{
    DependencyInfo, OperationInfo, OtlpTrace, SuiteTarget, TraceSearch, go_timestamp,
};

/// The Go client's receive limit (gRPC's default): every chunk must fit.
const GO_CLIENT_MAX_RECV: usize = 4 * 1024 * 1024;

/// The message Jaeger's v1 client takes for "no such trace".
const TRACE_NOT_FOUND: &str = "trace not found";

/// How v1 writes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum V1Writer {
    /// `StreamingSpanWriterPlugin.WriteSpanStream`, one span per message (what Jaeger's
    /// collector uses when `Capabilities` declares streaming).
    #[default]
    Stream,
    /// `SpanWriterPlugin.WriteSpan`, one call per span.
    Unary,
}

impl V1Writer {
    /// `stream` or `unary`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stream => "stream",
            Self::Unary => "unary",
        }
    }
}

/// A [`SuiteTarget`] over the v1 API; see the module docs.
#[derive(Debug, Clone)]
pub struct V1GrpcTarget {
    endpoint: String,
    writer: V1Writer,
    connections: Connections,
}

impl V1GrpcTarget {
    /// Builds the target (the config's wire mode is not used: v1 has one shape). Connections
    /// open lazily; must be called inside a Tokio runtime.
    pub fn new(config: &GrpcTargetConfig, writer: V1Writer) -> anyhow::Result<Self> {
        Ok(Self {
            endpoint: config.endpoint.clone(),
            writer,
            connections: Connections::open(config)?,
        })
    }

    fn reader(&self) -> SpanReaderPluginClient<Channel> {
        SpanReaderPluginClient::new(self.connections.reader.clone())
            .max_decoding_message_size(GO_CLIENT_MAX_RECV)
    }

    async fn collect_chunks(
        mut stream: Streaming<proto::SpansResponseChunk>,
    ) -> Result<Vec<Vec<v1::Span>>, tonic::Status> {
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.message().await? {
            chunks.push(chunk.spans);
        }
        Ok(chunks)
    }

    async fn write_stream(&self, spans: Vec<v1::Span>) -> anyhow::Result<()> {
        let mut client = StreamingSpanWriterPluginClient::new(self.connections.writer.clone())
            .max_encoding_message_size(usize::MAX);
        let messages = tokio_stream::iter(
            spans
                .into_iter()
                .map(|span| proto::WriteSpanRequest { span: Some(span) }),
        );
        client
            .write_span_stream(self.connections.request(messages))
            .await
            .map_err(|status| status_error("WriteSpanStream", status))?;
        Ok(())
    }

    async fn write_unary(&self, spans: Vec<v1::Span>) -> anyhow::Result<()> {
        let mut client = SpanWriterPluginClient::new(self.connections.writer.clone())
            .max_encoding_message_size(usize::MAX);
        for span in spans {
            client
                .write_span(
                    self.connections
                        .request(proto::WriteSpanRequest { span: Some(span) }),
                )
                .await
                .map_err(|status| status_error("WriteSpan", status))?;
        }
        Ok(())
    }

    async fn get_trace(&self, trace_id: [u8; 16]) -> anyhow::Result<Option<OtlpTrace>> {
        let request = proto::GetTraceRequest {
            trace_id: trace_id.to_vec(),
            start_time: Some(go_timestamp(None)),
            end_time: Some(go_timestamp(None)),
        };
        let call = "GetTrace";
        let chunks = match self
            .reader()
            .get_trace(self.connections.request(request))
            .await
        {
            Ok(response) => Self::collect_chunks(response.into_inner()).await,
            Err(status) => Err(status),
        };
        let chunks = match chunks {
            Ok(chunks) => chunks,
            Err(status) if status.message() == TRACE_NOT_FOUND => return Ok(None),
            Err(status) if status.code() == Code::NotFound => anyhow::bail!(
                "GetTrace answered NOT_FOUND with {:?}: Jaeger's v1 client recognises an \
                 unknown trace only by the message {TRACE_NOT_FOUND:?} and reports this one \
                 as an error",
                status.message()
            ),
            Err(status) => return Err(status_error(call, status)),
        };
        let mut traces = traces_from_chunks(call, chunks)?;
        anyhow::ensure!(
            traces.len() <= 1,
            "GetTrace of one trace ID streamed {} traces",
            traces.len()
        );
        let Some(trace) = traces.pop() else {
            return Ok(None);
        };
        anyhow::ensure!(
            trace.trace_id() == Some(trace_id.as_slice()),
            "GetTrace({}) streamed trace {}",
            hex::encode(trace_id),
            trace.trace_id_hex()
        );
        Ok(Some(trace))
    }
}

#[async_trait]
impl SuiteTarget for V1GrpcTarget {
    fn describe(&self) -> String {
        format!("grpc v1 {} ({} writer)", self.endpoint, self.writer.name())
    }

    async fn write_traces(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()> {
        let spans = resource_spans_to_v1(&resource_spans);
        match self.writer {
            V1Writer::Stream => self.write_stream(spans).await,
            V1Writer::Unary => self.write_unary(spans).await,
        }
    }

    async fn get_traces(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>> {
        // v1 has no multi-trace read: one GetTrace per ID.
        let mut traces = Vec::new();
        for trace_id in trace_ids {
            traces.extend(self.get_trace(*trace_id).await?);
        }
        Ok(traces)
    }

    async fn get_services(&self) -> anyhow::Result<Vec<String>> {
        let response = self
            .reader()
            .get_services(self.connections.request(proto::GetServicesRequest {}))
            .await
            .map_err(|status| status_error("GetServices", status))?;
        Ok(response.into_inner().services)
    }

    async fn get_operations(
        &self,
        service: &str,
        span_kind: &str,
    ) -> anyhow::Result<Vec<OperationInfo>> {
        let response = self
            .reader()
            .get_operations(self.connections.request(proto::GetOperationsRequest {
                service: service.to_owned(),
                span_kind: span_kind.to_owned(),
            }))
            .await
            .map_err(|status| status_error("GetOperations", status))?
            .into_inner();
        // As Jaeger's client: the typed list, or the deprecated names only when it is empty.
        if response.operations.is_empty() {
            return Ok(response
                .operation_names
                .into_iter()
                .map(|name| OperationInfo {
                    name,
                    span_kind: String::new(),
                })
                .collect());
        }
        Ok(response
            .operations
            .into_iter()
            .map(|operation| OperationInfo {
                name: operation.name,
                span_kind: operation.span_kind,
            })
            .collect())
    }

    async fn find_traces(&self, search: &TraceSearch) -> anyhow::Result<Vec<OtlpTrace>> {
        let call = "FindTraces";
        anyhow::ensure!(
            search.filter.is_none(),
            "{call}: the v1 API carries no structured filter"
        );
        let stream = self
            .reader()
            .find_traces(self.connections.request(proto::FindTracesRequest {
                query: Some(v1_query(search)),
            }))
            .await
            .map_err(|status| status_error(call, status))?
            .into_inner();
        let chunks = Self::collect_chunks(stream)
            .await
            .map_err(|status| status_error(call, status))?;
        traces_from_chunks(call, chunks)
    }

    async fn find_trace_summaries(
        &self,
        _search: &TraceSearch,
    ) -> anyhow::Result<Option<Vec<proto_v2::TraceSummary>>> {
        // v1 has no summaries: the suite computes them from FindTraces.
        Ok(None)
    }

    async fn capabilities(&self) -> anyhow::Result<Option<proto_v2::SearchCapabilities>> {
        Ok(None)
    }

    async fn get_dependencies(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<DependencyInfo>> {
        let mut client = DependenciesReaderPluginClient::new(self.connections.reader.clone());
        let response = client
            .get_dependencies(self.connections.request(proto::GetDependenciesRequest {
                start_time: Some(start.to_proto()),
                end_time: Some(end.to_proto()),
            }))
            .await
            .map_err(|status| status_error("GetDependencies", status))?;
        Ok(response
            .into_inner()
            .dependencies
            .into_iter()
            .map(DependencyInfo::from)
            .collect())
    }

    async fn purge(&self) -> anyhow::Result<()> {
        self.connections.purge().await
    }

    /// Each trace after one pass through the v1 model, both ways.
    fn expected_back(&self, written: &OtlpTrace) -> anyhow::Result<OtlpTrace> {
        trace_through_v1(written)
    }
}

//! Modes 2 and 3: the suite talks to a remote-storage server over gRPC, as Jaeger does.
//!
//! - [`WireMode::Direct`] behaves like Jaeger's direct integration suite (Jaeger's Go storage
//!   client called directly): typed attribute values, Go zero timestamps for unset times, one
//!   Export call per written trace.
//! - [`WireMode::ViaJaeger`] behaves like Jaeger's end-to-end suite seen from the storage: tag
//!   values arrive as strings, writes arrive as Export calls of at most 5 spans that copy only
//!   the resource attributes and the scope, each trace is fetched with its own GetTraces call,
//!   searches without a service name need `Capabilities.search.without_service_name`, and
//!   FindTraceSummaries may be declined with UNIMPLEMENTED (Jaeger then computes summaries
//!   itself).

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::collector::trace_service_client::TraceServiceClient;
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, TracesData};
use jaeger_remote_proto::storage::v2 as proto;
use jaeger_remote_proto::storage::v2::capabilities_client::CapabilitiesClient;
use jaeger_remote_proto::storage::v2::dependency_reader_client::DependencyReaderClient;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use remote_storage_core::UnixNanos;
use tonic::{Code, Request, Streaming};

use crate::connection::{Connections, status_error};

use crate::target::{
    AttributeEncoding, DependencyInfo, OperationInfo, OtlpTrace, SuiteTarget, TraceSearch,
    aggregate_chunks, go_timestamp,
};

/// Spans per Export call in [`WireMode::ViaJaeger`] (Jaeger's e2e writer `MaxChunkSize`).
pub const VIA_JAEGER_CHUNK_SPANS: usize = 5;

/// Which of Jaeger's two grpc suites the target imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireMode {
    /// Jaeger's direct suite: the Go storage client called by the test itself.
    Direct,
    /// Jaeger's e2e suite: requests shaped as Jaeger's collector and query service send them.
    ViaJaeger,
}

impl WireMode {
    /// `direct` or `via-jaeger`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::ViaJaeger => "via-jaeger",
        }
    }
}

/// TLS settings for both connections.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// PEM CA certificate(s) to trust; without one the public web PKI roots are used.
    pub ca_pem: Option<Vec<u8>>,
    /// Server name to verify, when it differs from the endpoint's host.
    pub domain: Option<String>,
}

/// Where and how to reach a server.
#[derive(Debug, Clone)]
pub struct GrpcTargetConfig {
    /// Reader endpoint, `host:port` (as in Jaeger's config) or a full `http(s)://` URI.
    pub endpoint: String,
    /// Endpoint serving OTLP `Export`, when it is not the reader endpoint.
    pub writer_endpoint: Option<String>,
    /// Full URL of the purger (`POST`, must answer 200), e.g. `http://localhost:9231/purge`.
    pub purger_url: Option<String>,
    /// TLS for both connections; `None` is plaintext HTTP/2.
    pub tls: Option<TlsSettings>,
    /// Tenant header name and value sent with every call (e.g. `x-tenant: acme`).
    pub tenant: Option<(String, String)>,
    /// Which suite's request shapes to use.
    pub mode: WireMode,
    /// Deadline of each call.
    pub call_timeout: Duration,
}

impl GrpcTargetConfig {
    /// Plaintext, no tenant, direct mode, 60 s per call.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            writer_endpoint: None,
            purger_url: None,
            tls: None,
            tenant: None,
            mode: WireMode::Direct,
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// A [`SuiteTarget`] over gRPC; see the module docs for the two modes.
#[derive(Debug, Clone)]
pub struct GrpcTarget {
    config: GrpcTargetConfig,
    connections: Connections,
}

impl GrpcTarget {
    /// Whether the server declares structured filters in GetCapabilities
    /// (`search.filter` naming at least one level and one operator); `false` for a server
    /// without the Capabilities service, which Jaeger treats as declaring nothing.
    pub async fn declares_structured_filters(&self) -> anyhow::Result<bool> {
        Ok(self.capabilities().await?.is_some_and(|search| {
            search
                .filter
                .is_some_and(|filter| !filter.levels.is_empty() && !filter.operators.is_empty())
        }))
    }

    /// Builds the target; connections are opened lazily. Must be called inside a Tokio runtime.
    pub fn new(config: GrpcTargetConfig) -> anyhow::Result<Self> {
        let connections = Connections::open(&config)?;
        Ok(Self {
            config,
            connections,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GrpcTargetConfig {
        &self.config
    }

    fn request<T>(&self, message: T) -> Request<T> {
        self.connections.request(message)
    }

    fn encoding(&self) -> AttributeEncoding {
        match self.config.mode {
            WireMode::Direct => AttributeEncoding::Typed,
            WireMode::ViaJaeger => AttributeEncoding::Strings,
        }
    }

    async fn export(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()> {
        let mut client = TraceServiceClient::new(self.connections.writer.clone());
        client
            .export(self.request(ExportTraceServiceRequest { resource_spans }))
            .await
            .map_err(|status| status_error("Export", status))?;
        Ok(())
    }

    async fn collect_chunks(
        call: &str,
        mut stream: Streaming<TracesData>,
    ) -> anyhow::Result<Vec<Vec<ResourceSpans>>> {
        let mut chunks = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|status| status_error(call, status))?
        {
            chunks.push(chunk.resource_spans);
        }
        Ok(chunks)
    }

    async fn get_traces_call(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>> {
        let request = proto::GetTracesRequest {
            query: trace_ids
                .iter()
                .map(|trace_id| proto::GetTraceParams {
                    trace_id: trace_id.to_vec(),
                    start_time: Some(go_timestamp(None)),
                    end_time: Some(go_timestamp(None)),
                })
                .collect(),
        };
        let mut client = TraceReaderClient::new(self.connections.reader.clone());
        let stream = client
            .get_traces(self.request(request))
            .await
            .map_err(|status| status_error("GetTraces", status))?
            .into_inner();
        aggregate_chunks(Self::collect_chunks("GetTraces", stream).await?)
            .context("GetTraces stream")
    }

    async fn require_search_without_service(&self) -> anyhow::Result<()> {
        // Jaeger's query service answers its own client INVALID_ARGUMENT.
        let refusal = |reason: &str| {
            status_error(
                "FindTraces",
                tonic::Status::invalid_argument(format!(
                    "Jaeger's query service refuses a search without service name: {reason}"
                )),
            )
        };
        match self.capabilities().await? {
            Some(search) if search.without_service_name => Ok(()),
            Some(_) => Err(refusal(
                "GetCapabilities answers search.without_service_name = false",
            )),
            None => Err(refusal(
                "the server does not serve jaeger.storage.v2.Capabilities (UNIMPLEMENTED)",
            )),
        }
    }
}

/// Splits traces into Export batches of at most `max_spans` spans the way Jaeger's e2e test
/// writer does: a new resource group whenever the source resource changes (copying only its
/// attributes), a new scope group whenever the source scope changes (copying the scope).
pub fn split_like_jaeger_writer(
    resource_spans: &[ResourceSpans],
    max_spans: usize,
) -> Vec<Vec<ResourceSpans>> {
    let mut batches = Vec::new();
    let mut current: Vec<ResourceSpans> = Vec::new();
    let mut span_count = 0;
    let mut current_resource = None;
    let mut current_scope = None;
    for (resource_index, group) in resource_spans.iter().enumerate() {
        for (scope_index, scope_group) in group.scope_spans.iter().enumerate() {
            for span in &scope_group.spans {
                if span_count == max_spans {
                    batches.push(std::mem::take(&mut current));
                    span_count = 0;
                    current_resource = None;
                    current_scope = None;
                }
                if current_resource != Some(resource_index) {
                    current_resource = Some(resource_index);
                    current_scope = None;
                    current.push(ResourceSpans {
                        resource: Some(Resource {
                            attributes: group
                                .resource
                                .as_ref()
                                .map(|resource| resource.attributes.clone())
                                .unwrap_or_default(),
                            ..Default::default()
                        }),
                        scope_spans: Vec::new(),
                        schema_url: String::new(),
                    });
                }
                if current_scope != Some(scope_index) {
                    current_scope = Some(scope_index);
                    if let Some(last) = current.last_mut() {
                        last.scope_spans.push(ScopeSpans {
                            scope: scope_group.scope.clone(),
                            spans: Vec::new(),
                            schema_url: String::new(),
                        });
                    }
                }
                if let Some(scope) = current
                    .last_mut()
                    .and_then(|last| last.scope_spans.last_mut())
                {
                    scope.spans.push(span.clone());
                }
                span_count += 1;
            }
        }
    }
    if span_count > 0 {
        batches.push(current);
    }
    batches
}

#[async_trait]
impl SuiteTarget for GrpcTarget {
    fn describe(&self) -> String {
        format!(
            "grpc {} ({} mode{})",
            self.config.endpoint,
            self.config.mode.name(),
            self.config
                .writer_endpoint
                .as_ref()
                .map(|writer| format!(", writer {writer}"))
                .unwrap_or_default()
        )
    }

    async fn write_traces(&self, resource_spans: Vec<ResourceSpans>) -> anyhow::Result<()> {
        match self.config.mode {
            WireMode::Direct => self.export(resource_spans).await,
            WireMode::ViaJaeger => {
                for batch in split_like_jaeger_writer(&resource_spans, VIA_JAEGER_CHUNK_SPANS) {
                    self.export(batch).await?;
                }
                Ok(())
            }
        }
    }

    async fn get_traces(&self, trace_ids: &[[u8; 16]]) -> anyhow::Result<Vec<OtlpTrace>> {
        match self.config.mode {
            WireMode::Direct => self.get_traces_call(trace_ids).await,
            WireMode::ViaJaeger => {
                // api_v3 GetTrace: one storage call per trace.
                let mut traces = Vec::new();
                for trace_id in trace_ids {
                    traces.extend(self.get_traces_call(std::slice::from_ref(trace_id)).await?);
                }
                Ok(traces)
            }
        }
    }

    async fn get_services(&self) -> anyhow::Result<Vec<String>> {
        let mut client = TraceReaderClient::new(self.connections.reader.clone());
        let response = client
            .get_services(self.request(proto::GetServicesRequest {}))
            .await
            .map_err(|status| status_error("GetServices", status))?;
        Ok(response.into_inner().services)
    }

    async fn get_operations(
        &self,
        service: &str,
        span_kind: &str,
    ) -> anyhow::Result<Vec<OperationInfo>> {
        let mut client = TraceReaderClient::new(self.connections.reader.clone());
        let response = client
            .get_operations(self.request(proto::GetOperationsRequest {
                service: service.to_owned(),
                span_kind: span_kind.to_owned(),
            }))
            .await
            .map_err(|status| status_error("GetOperations", status))?;
        Ok(response
            .into_inner()
            .operations
            .into_iter()
            .map(|operation| OperationInfo {
                name: operation.name,
                span_kind: operation.span_kind,
            })
            .collect())
    }

    async fn find_traces(&self, search: &TraceSearch) -> anyhow::Result<Vec<OtlpTrace>> {
        if self.config.mode == WireMode::ViaJaeger && search.service_name.is_empty() {
            self.require_search_without_service().await?;
        }
        let mut client = TraceReaderClient::new(self.connections.reader.clone());
        let stream = client
            .find_traces(self.request(proto::FindTracesRequest {
                query: Some(search.to_proto(self.encoding())),
            }))
            .await
            .map_err(|status| status_error("FindTraces", status))?
            .into_inner();
        aggregate_chunks(Self::collect_chunks("FindTraces", stream).await?)
            .context("FindTraces stream")
    }

    async fn find_trace_summaries(
        &self,
        search: &TraceSearch,
    ) -> anyhow::Result<Option<Vec<proto::TraceSummary>>> {
        if self.config.mode == WireMode::ViaJaeger && search.service_name.is_empty() {
            self.require_search_without_service().await?;
        }
        let mut client = TraceReaderClient::new(self.connections.reader.clone());
        let mut stream = match client
            .find_trace_summaries(self.request(proto::FindTraceSummariesRequest {
                query: Some(search.to_proto(self.encoding())),
            }))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == Code::Unimplemented => return Ok(None),
            Err(status) => return Err(status_error("FindTraceSummaries", status)),
        };
        let mut summaries = Vec::new();
        let mut chunks = 0_usize;
        loop {
            match stream.message().await {
                Ok(Some(chunk)) => {
                    chunks += 1;
                    summaries.extend(chunk.summaries);
                }
                Ok(None) => return Ok(Some(summaries)),
                Err(status) if status.code() == Code::Unimplemented && chunks == 0 => {
                    return Ok(None);
                }
                Err(status) if status.code() == Code::Unimplemented => anyhow::bail!(
                    "FindTraceSummaries answered UNIMPLEMENTED after {chunks} chunk(s); a \
                     server must decline before sending any chunk, or Jaeger's fallback \
                     duplicates results"
                ),
                Err(status) => return Err(status_error("FindTraceSummaries", status)),
            }
        }
    }

    async fn capabilities(&self) -> anyhow::Result<Option<proto::SearchCapabilities>> {
        let mut client = CapabilitiesClient::new(self.connections.reader.clone());
        match client
            .get_capabilities(self.request(proto::GetCapabilitiesRequest {}))
            .await
        {
            Ok(response) => Ok(Some(response.into_inner().search.unwrap_or_default())),
            Err(status) if status.code() == Code::Unimplemented => Ok(None),
            Err(status) => Err(status_error("GetCapabilities", status)),
        }
    }

    async fn get_dependencies(
        &self,
        start: UnixNanos,
        end: UnixNanos,
    ) -> anyhow::Result<Vec<DependencyInfo>> {
        let mut client = DependencyReaderClient::new(self.connections.reader.clone());
        let response = client
            .get_dependencies(self.request(proto::GetDependenciesRequest {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use jaeger_remote_proto::otlp::common::{InstrumentationScope, KeyValue};
    use jaeger_remote_proto::otlp::trace::Span;

    fn group(service: &str, scopes: &[(&str, usize)]) -> ResourceSpans {
        ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(jaeger_remote_proto::otlp::common::AnyValue {
                        value: Some(
                            jaeger_remote_proto::otlp::common::any_value::Value::StringValue(
                                service.into(),
                            ),
                        ),
                    }),
                    ..Default::default()
                }],
                dropped_attributes_count: 3,
                ..Default::default()
            }),
            scope_spans: scopes
                .iter()
                .map(|(name, count)| ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: (*name).into(),
                        ..Default::default()
                    }),
                    spans: (0..*count).map(|_| Span::default()).collect(),
                    schema_url: "https://scope".into(),
                })
                .collect(),
            schema_url: "https://resource".into(),
        }
    }

    #[test]
    fn splits_into_five_span_batches_copying_resource_attributes_and_scope() {
        let input = vec![
            group("a", &[("s1", 3), ("s2", 4)]),
            group("b", &[("s3", 2)]),
        ];
        let batches = split_like_jaeger_writer(&input, 5);
        let sizes: Vec<usize> = batches
            .iter()
            .map(|batch| OtlpTrace::new(batch.clone()).span_count())
            .collect();
        assert_eq!(sizes, [5, 4]);
        // First batch: resource a with scopes s1 (3) and s2 (2).
        assert_eq!(batches[0].len(), 1);
        assert_eq!(batches[0][0].scope_spans.len(), 2);
        // Second batch: a/s2 (2 more), then b/s3 (2).
        assert_eq!(batches[1].len(), 2);
        assert_eq!(
            batches[1][0].scope_spans[0].scope.as_ref().unwrap().name,
            "s2"
        );
        let resource = batches[0][0].resource.as_ref().unwrap();
        assert_eq!(resource.dropped_attributes_count, 0);
        assert_eq!(resource.attributes.len(), 1);
        assert!(batches[0][0].schema_url.is_empty());
        assert!(batches[0][0].scope_spans[0].schema_url.is_empty());
    }
}

//! The deprecated v1 archive services: registered only to refuse clearly. Jaeger ≤ 1.65 calls
//! them only when `Capabilities` declares archive support, which this server never does.

use jaeger_remote_proto::storage::v1::archive_span_reader_plugin_server::ArchiveSpanReaderPlugin;
use jaeger_remote_proto::storage::v1::archive_span_writer_plugin_server::ArchiveSpanWriterPlugin;
use jaeger_remote_proto::storage::v1::{
    GetTraceRequest, SpansResponseChunk, WriteSpanRequest, WriteSpanResponse,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

const NOT_SERVED: &str = "the v1 archive API is deprecated and not served: archive spans with \
                          Jaeger v2's archive storage, or write them through SpanWriterPlugin";

/// `ArchiveSpanWriterPlugin`: always UNIMPLEMENTED.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ArchiveWriterService;

/// `ArchiveSpanReaderPlugin`: always UNIMPLEMENTED, before any chunk.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ArchiveReaderService;

#[tonic::async_trait]
impl ArchiveSpanWriterPlugin for ArchiveWriterService {
    async fn write_archive_span(
        &self,
        _request: Request<WriteSpanRequest>,
    ) -> Result<Response<WriteSpanResponse>, Status> {
        Err(Status::unimplemented(NOT_SERVED))
    }
}

#[tonic::async_trait]
impl ArchiveSpanReaderPlugin for ArchiveReaderService {
    type GetArchiveTraceStream = ReceiverStream<Result<SpansResponseChunk, Status>>;

    async fn get_archive_trace(
        &self,
        _request: Request<GetTraceRequest>,
    ) -> Result<Response<Self::GetArchiveTraceStream>, Status> {
        Err(Status::unimplemented(NOT_SERVED))
    }
}

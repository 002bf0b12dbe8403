//! An OTLP `TraceService/Export` client that sends already-encoded request bytes.
//!
//! The request side of [`RawExportCodec`] copies the pre-encoded `ExportTraceServiceRequest`
//! bytes into the gRPC frame as they are, so the timed loop never runs prost's encoder.

use bytes::{BufMut as _, Bytes};
use http::uri::PathAndQuery;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceResponse;
use prost::Message as _;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Status, client::Grpc};

use crate::conn::{MAX_MESSAGE_BYTES, Tenant};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends [`Bytes`] verbatim; decodes `ExportTraceServiceResponse`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawExportCodec;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawEncoder;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ResponseDecoder;

impl Codec for RawExportCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(format!("cannot decode ExportTraceServiceResponse: {e}")))
    }
}

/// A cheap-to-clone Export client over one channel.
#[derive(Debug, Clone)]
pub(crate) struct ExportClient {
    grpc: Grpc<Channel>,
    tenant: Tenant,
}

impl ExportClient {
    pub(crate) fn new(channel: Channel, gzip: bool, tenant: Tenant) -> Self {
        let mut grpc = Grpc::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        if gzip {
            grpc = grpc
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        Self { grpc, tenant }
    }

    /// Sends one pre-encoded `ExportTraceServiceRequest`.
    pub(crate) async fn export(
        &mut self,
        body: Bytes,
    ) -> Result<ExportTraceServiceResponse, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))?;
        let req = self.tenant.request(body);
        self.grpc
            .unary(req, PathAndQuery::from_static(EXPORT_PATH), RawExportCodec)
            .await
            .map(tonic::Response::into_inner)
    }
}

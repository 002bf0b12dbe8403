//! A gRPC client that sends already-encoded request messages, unary or client-streaming, and
//! can read a server stream without decoding it.
//!
//! The request side of [`RawCodec`] copies pre-encoded message bytes into the gRPC frame as
//! they are, so the timed loop never runs prost's encoder; the response is decoded with prost.
//! [`ByteCountCodec`] only counts each response message's bytes, so a read is timed without the
//! client's own decoding (about as much CPU as the server's work for a large trace).

use std::marker::PhantomData;

use bytes::{Buf as _, BufMut as _, Bytes};
use futures::Stream;
use http::uri::PathAndQuery;
use jaeger_remote_proto::otlp::collector::ExportTraceServiceResponse;
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Status, client::Grpc};

use crate::conn::{MAX_MESSAGE_BYTES, Tenant};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends [`Bytes`] verbatim; decodes a `R` response.
#[derive(Debug)]
pub(crate) struct RawCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RawEncoder;

#[derive(Debug)]
pub(crate) struct ResponseDecoder<R>(PhantomData<fn() -> R>);

impl<R: Message + Default + Send + 'static> Codec for RawCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder<R>;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ResponseDecoder(PhantomData)
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

impl<R: Message + Default> Decoder for ResponseDecoder<R> {
    type Item = R;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<R>, Status> {
        R::decode(src).map(Some).map_err(|e| {
            Status::internal(format!("cannot decode {}: {e}", std::any::type_name::<R>()))
        })
    }
}

/// Sends [`Bytes`] verbatim; reads each response message as its length in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ByteCountCodec;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ByteCountDecoder;

impl Codec for ByteCountCodec {
    type Encode = Bytes;
    type Decode = usize;
    type Encoder = RawEncoder;
    type Decoder = ByteCountDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        RawEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ByteCountDecoder
    }
}

impl Decoder for ByteCountDecoder {
    type Item = usize;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<usize>, Status> {
        let len = src.remaining();
        src.advance(len);
        Ok(Some(len))
    }
}

/// A cheap-to-clone client over one channel that sends pre-encoded messages with the tenant
/// header.
#[derive(Debug, Clone)]
pub(crate) struct RawClient {
    grpc: Grpc<Channel>,
    tenant: Tenant,
}

impl RawClient {
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

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("channel not ready: {e}")))
    }

    /// Sends one pre-encoded `ExportTraceServiceRequest`.
    pub(crate) async fn export(
        &mut self,
        body: Bytes,
    ) -> Result<ExportTraceServiceResponse, Status> {
        self.unary(EXPORT_PATH, body).await
    }

    /// Calls the unary method `path` (`/package.Service/Method`) with one pre-encoded message.
    pub(crate) async fn unary<R: Message + Default + Send + Sync + 'static>(
        &mut self,
        path: &'static str,
        body: Bytes,
    ) -> Result<R, Status> {
        self.ready().await?;
        let req = self.tenant.request(body);
        self.grpc
            .unary(req, PathAndQuery::from_static(path), RawCodec::default())
            .await
            .map(tonic::Response::into_inner)
    }

    /// Calls the server-streaming method `path` with one pre-encoded message; returns the
    /// number of response messages and their total bytes, without decoding them.
    pub(crate) async fn server_streaming_bytes(
        &mut self,
        path: &'static str,
        body: Bytes,
    ) -> Result<(u64, u64), Status> {
        self.ready().await?;
        let req = self.tenant.request(body);
        let mut stream = self
            .grpc
            .server_streaming(req, PathAndQuery::from_static(path), ByteCountCodec)
            .await?
            .into_inner();
        let (mut messages, mut bytes) = (0u64, 0u64);
        while let Some(len) = stream.message().await? {
            messages += 1;
            bytes += len as u64;
        }
        Ok((messages, bytes))
    }

    /// Calls the client-streaming method `path` with pre-encoded messages, pulled from
    /// `messages` as the connection's flow control allows; returns the single response, which
    /// arrives after `messages` ends.
    pub(crate) async fn client_streaming<R, S>(
        &mut self,
        path: &'static str,
        messages: S,
    ) -> Result<R, Status>
    where
        R: Message + Default + Send + Sync + 'static,
        S: Stream<Item = Bytes> + Send + 'static,
    {
        self.ready().await?;
        let req = self.tenant.request(messages);
        self.grpc
            .client_streaming(req, PathAndQuery::from_static(path), RawCodec::default())
            .await
            .map(tonic::Response::into_inner)
    }
}

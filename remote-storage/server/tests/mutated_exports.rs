//! A bounded mutation test: thousands of corrupted OTLP Export bodies (bytes flipped, cut,
//! repeated, inserted) sent to a running server on the memory backend. Every answer must be
//! `OK` (the mutation still decodes; bad fields go to `partial_success`), `INVALID_ARGUMENT`
//! or `RESOURCE_EXHAUSTED`, never `INTERNAL` or anything else, and the server must still serve
//! afterwards. The mutations come from a fixed seed, so a failure reproduces.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use jaeger_remote_proto::otlp::common::{AnyValue, KeyValue, any_value};
use jaeger_remote_proto::otlp::resource::Resource;
use jaeger_remote_proto::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status as SpanStatus};
use jaeger_remote_proto::storage::v2::GetServicesRequest;
use jaeger_remote_proto::storage::v2::trace_reader_client::TraceReaderClient;
use prost::Message as _;
use prost::bytes::{Buf as _, BufMut as _};
use remote_storage::{RunningServer, ServerConfig};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Mutated bodies sent.
const MUTATIONS: u64 = 3_000;

/// Sends and receives messages as raw bytes, so any bytes can be sent as a request.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// xorshift64*: a fixed, dependency-free sequence.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap()).unwrap()
    }

    /// One to four edits of `valid`.
    fn mutate(&mut self, valid: &[u8]) -> Vec<u8> {
        let mut bytes = valid.to_vec();
        for _ in 0..=self.below(4) {
            if bytes.is_empty() {
                bytes.push(0);
            }
            let at = self.below(bytes.len());
            match self.below(6) {
                0 => bytes[at] ^= 1 << self.below(8),
                1 => bytes[at] = self.next().to_le_bytes()[0],
                2 => bytes.truncate(at),
                3 => bytes.insert(at, self.next().to_le_bytes()[0]),
                4 => {
                    // A varint that claims a huge length.
                    bytes.splice(at..at, [0xff, 0xff, 0xff, 0xff, 0x0f]);
                }
                _ => {
                    let end = (at + self.below(32)).min(bytes.len());
                    let repeated: Vec<u8> = bytes[at..end].to_vec();
                    bytes.splice(at..at, repeated);
                }
            }
        }
        bytes
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn valid_request() -> Vec<u8> {
    let now = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap();
    let spans = (0..4u8)
        .map(|index| Span {
            trace_id: vec![7; 16],
            span_id: vec![0, 0, 0, 0, 0, 0, 0, index + 1],
            parent_span_id: if index == 0 {
                Vec::new()
            } else {
                vec![0, 0, 0, 0, 0, 0, 0, 1]
            },
            name: format!("op-{index}"),
            kind: 2,
            start_time_unix_nano: now + u64::from(index),
            end_time_unix_nano: now + 1_000_000,
            attributes: vec![string_kv("http.method", "GET")],
            status: Some(SpanStatus {
                code: 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", "mutant")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn corrupted_exports_get_ok_or_a_client_error_and_the_server_keeps_serving() {
    let backend = backend_memory::open(backend_memory::MemoryConfig::default());
    let server = RunningServer::start(ServerConfig::for_tests(), backend)
        .await
        .unwrap();
    let mut client = tonic::client::Grpc::new(channel(server.grpc_addr).await);
    let path =
        PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    let valid = valid_request();
    let mut mutator = Mutator(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..MUTATIONS {
        let body = mutator.mutate(&valid);
        client.ready().await.unwrap();
        let answer = client
            .unary(tonic::Request::new(body.clone()), path.clone(), RawCodec)
            .await;
        match answer {
            Ok(_) => accepted += 1,
            Err(status)
                if matches!(
                    status.code(),
                    Code::InvalidArgument | Code::ResourceExhausted
                ) =>
            {
                refused += 1;
            }
            Err(status) => panic!(
                "mutation {round} ({} bytes: {}) answered {status:?}",
                body.len(),
                body.iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<String>()
            ),
        }
    }
    assert!(
        accepted > 0 && refused > 0,
        "{accepted} accepted, {refused} refused"
    );
    let services = TraceReaderClient::new(channel(server.grpc_addr).await)
        .get_services(GetServicesRequest {})
        .await
        .expect("the server still serves");
    assert!(!services.into_inner().services.is_empty());
    server.stop().await.unwrap();
}

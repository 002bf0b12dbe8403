//! criterion micro-benchmarks of the server's hot paths on loadgen's tracegen-like workload:
//!
//! - `decode`: prost decode of a 1,000-span Export request (the reference: what any Rust
//!   OTLP receiver pays), then decode plus conversion to the model, as the Export handler does.
//! - `convert`: `spans_from_resource_spans` alone, on an already decoded request.
//! - `matcher`: `SpanMatcher::matches` over 10,000 spans for the query benchmark's queries.
//! - `chunking`: splitting a 10,000-span trace into streamed `TracesData` chunks and encoding
//!   them, as GetTraces does.
//! - `elasticsearch`: encoding 1,000 spans into the Elasticsearch backend's `_bulk` body (span
//!   and service documents), then the same plus the fastest gzip the client sends it with.
//!
//! Throughput is reported per span, with mimalloc as the server uses it.
//! `cargo bench -p bench-micro [-- FILTER]`.

use std::hint::black_box;
use std::num::NonZeroUsize;

use bench_micro::{export_request, large_trace, model_spans};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jaeger_remote_proto::otlp::collector::ExportTraceServiceRequest;
use prost::Message as _;
use remote_storage_core::convert::spans_from_resource_spans;
use remote_storage_core::matcher::SpanMatcher;
use remote_storage_core::query::AttributeFilter;
use remote_storage_core::{Span, TraceQuery};

/// The server's allocator, so the figures match what `jaeger-remote-storage` pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH_SPANS: usize = 1000;

fn decode(c: &mut Criterion) {
    let encoded = export_request(0, BATCH_SPANS).encode_to_vec();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(BATCH_SPANS as u64));
    group.bench_function("prost_export_1000_spans", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(encoded.as_slice())).unwrap());
    });
    group.bench_function("prost_and_convert_1000_spans", |b| {
        b.iter(|| {
            let request = ExportTraceServiceRequest::decode(black_box(encoded.as_slice())).unwrap();
            spans_from_resource_spans(request.resource_spans)
        });
    });
    group.finish();
}

fn convert(c: &mut Criterion) {
    let request = export_request(0, BATCH_SPANS);
    let mut group = c.benchmark_group("convert");
    group.throughput(Throughput::Elements(BATCH_SPANS as u64));
    group.bench_function("spans_from_resource_spans_1000", |b| {
        b.iter_batched(
            || request.resource_spans.clone(),
            spans_from_resource_spans,
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn query(service: Option<&str>, operation: Option<&str>, tag: Option<(&str, &str)>) -> TraceQuery {
    let mut query = TraceQuery::all(NonZeroUsize::new(20).unwrap());
    query.service_name = service.map(str::to_owned);
    query.operation_name = operation.map(str::to_owned);
    query.attributes = tag
        .map(|(key, value)| AttributeFilter {
            key: key.to_owned(),
            value: value.to_owned(),
        })
        .into_iter()
        .collect();
    query
}

fn matcher(c: &mut Criterion) {
    let spans = model_spans(10, BATCH_SPANS);
    // Parameters taken from the data, as loadgen's query benchmark does.
    let sample = &spans[0];
    let service = sample.service_name().to_owned();
    let tag = sample
        .otlp()
        .attributes
        .first()
        .map(|kv| {
            let value = remote_storage_core::attribute::any_value_text(kv.value.as_ref());
            (kv.key.clone(), value.into_owned())
        })
        .unwrap();
    let queries = [
        ("service", query(Some(&service), None, None)),
        (
            "service+operation",
            query(Some(&service), Some(&sample.otlp().name), None),
        ),
        (
            "service+tag",
            query(Some(&service), None, Some((&tag.0, &tag.1))),
        ),
        ("tag_no_service", query(None, None, Some((&tag.0, &tag.1)))),
        (
            "tag_miss_no_service",
            query(None, None, Some(("no.such.key", "x"))),
        ),
    ];
    let mut group = c.benchmark_group("matcher");
    group.throughput(Throughput::Elements(spans.len() as u64));
    for (name, query) in &queries {
        let matcher = SpanMatcher::new(query);
        group.bench_function(*name, |b| {
            b.iter(|| count_matches(&matcher, black_box(&spans)));
        });
    }
    group.finish();
}

fn count_matches(matcher: &SpanMatcher, spans: &[Span]) -> usize {
    spans.iter().filter(|span| matcher.matches(span)).count()
}

fn chunking(c: &mut Criterion) {
    let trace = large_trace(10_000);
    let mut group = c.benchmark_group("chunking");
    group.throughput(Throughput::Elements(trace.spans.len() as u64));
    group.bench_function("trace_10000_spans_chunk_and_encode", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for chunk in remote_storage::trace_chunks(
                black_box(&trace),
                remote_storage::DEFAULT_MAX_CHUNK_SPANS,
                remote_storage::DEFAULT_MAX_CHUNK_BYTES,
            ) {
                bytes += chunk.encode_to_vec().len();
            }
            bytes
        });
    });
    group.finish();
}

fn elasticsearch(c: &mut Criterion) {
    use backend_elasticsearch::{bulk_body, compress_bulk_body};
    let spans = model_spans(1, BATCH_SPANS);
    let tenant = remote_storage_core::Tenant::default();
    let body = bulk_body(&tenant, &spans, "bench", 1);
    // The wire cost, printed once: what the bulk request carries per span.
    eprintln!(
        "elasticsearch bulk body: {} bytes per span, {} gzipped",
        body.len() / BATCH_SPANS,
        compress_bulk_body(&body).unwrap().len() / BATCH_SPANS
    );
    let mut group = c.benchmark_group("elasticsearch");
    group.throughput(Throughput::Elements(BATCH_SPANS as u64));
    group.bench_function("bulk_body_1000_spans", |b| {
        b.iter(|| bulk_body(&tenant, black_box(&spans), "bench", 1));
    });
    group.bench_function("bulk_body_and_gzip_1000_spans", |b| {
        b.iter(|| compress_bulk_body(&bulk_body(&tenant, black_box(&spans), "bench", 1)).unwrap());
    });
    group.finish();
}

criterion_group!(benches, decode, convert, matcher, chunking, elasticsearch);
criterion_main!(benches);

//! Restart and retention on real directories.

use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend_lsm::{LsmConfig, LsmStore, SyncPolicy};
use futures::TryStreamExt as _;
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value::Value};
use remote_storage_core::testing::resource;
use remote_storage_core::{
    Backend, Scope, Span, Tenant, Trace, TraceId, TraceLookup, TraceQuery, TraceSummary, UnixNanos,
};

const SECOND: u64 = 1_000_000_000;

/// Bytes allocated on disk under `path`, journals excluded: fjall preallocates its journal
/// and recycles it on its own (bounded by its journal size limit), so tables are what
/// retention has to free.
fn table_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => table_bytes(&entry.path()),
            Ok(_) if entry.path().extension().is_some_and(|ext| ext == "jnl") => 0,
            Ok(metadata) => metadata.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Hex text that does not compress, so tables take real room.
fn noise(seed: u64, length: usize) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut text = String::with_capacity(length);
    while text.len() < length {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(&format!("{state:016x}"));
    }
    text
}

/// A span of `trace` with a payload attribute, so data takes visible room on disk.
fn payload_span(trace: u32, index: u32, service: &str, start: u64) -> Span {
    let mut trace_id = [7u8; 16];
    trace_id[..4].copy_from_slice(&trace.to_be_bytes());
    let mut span_id = [1u8; 8];
    span_id[4..].copy_from_slice(&index.to_be_bytes());
    let parent = (index > 0).then(|| {
        let mut parent = [1u8; 8];
        parent[4..].copy_from_slice(&(index - 1).to_be_bytes());
        parent.to_vec()
    });
    let otlp = remote_storage_core::proto::otlp::trace::Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent.unwrap_or_default(),
        name: format!("op-{}", index % 3),
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000 + u64::from(index),
        attributes: vec![KeyValue {
            key: "payload".into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(noise(
                    u64::from(trace) << 32 | u64::from(index),
                    512,
                ))),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    Span::new(resource(service), Arc::new(Scope::default()), otlp).unwrap()
}

fn trace_id(trace: u32) -> TraceId {
    let mut id = [7u8; 16];
    id[..4].copy_from_slice(&trace.to_be_bytes());
    TraceId(id)
}

async fn get(backend: &Backend, tenant: &Tenant, trace: u32) -> Vec<Trace> {
    backend
        .traces
        .get_traces(
            tenant,
            vec![TraceLookup {
                trace_id: trace_id(trace),
                start: None,
                end: None,
            }],
        )
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

async fn find_all(backend: &Backend, tenant: &Tenant) -> Vec<Trace> {
    backend
        .traces
        .find_traces(tenant, TraceQuery::all(NonZeroUsize::new(1_000).unwrap()))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_serves_everything_without_a_rebuild() {
    let directory = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        retention: Duration::ZERO,
        partition_span: Some(Duration::from_secs(3600)),
        sync: SyncPolicy::Periodic(Duration::from_millis(20)),
        ..LsmConfig::in_directory(directory.path())
    };
    let tenants = [Tenant::default(), Tenant::new("other")];
    let base = UnixNanos::now().0 - 2 * 3600 * SECOND;
    let (expected_traces, expected_summaries, expected_stats) = {
        let store = LsmStore::open(config.clone()).unwrap().into_backend();
        for (position, tenant) in tenants.iter().enumerate() {
            for batch in 0..10u32 {
                // Each trace spans two partitions (an hour apart) and several writes.
                let spans = (0..100u32)
                    .map(|index| {
                        let trace = index % 20;
                        let start = base
                            + u64::from(index % 2) * 3600 * SECOND
                            + u64::from(batch * 100 + index);
                        payload_span(
                            trace,
                            batch * 100 + index,
                            &format!("svc-{position}-{}", trace % 3),
                            start,
                        )
                    })
                    .collect();
                store.traces.write_spans(tenant, spans).await.unwrap();
            }
        }
        let mut traces = Vec::new();
        let mut summaries = Vec::new();
        for tenant in &tenants {
            let found = find_all(&store, tenant).await;
            assert_eq!(found.len(), 20);
            summaries.push(
                found
                    .iter()
                    .map(TraceSummary::from_trace)
                    .collect::<Vec<_>>(),
            );
            traces.push(found);
        }
        let stats = store.lifecycle.stats().unwrap();
        assert_eq!(stats.spans, 2_000);
        store.lifecycle.close().await.unwrap();
        (traces, summaries, stats)
    };

    let started = Instant::now();
    let store = LsmStore::open(config).unwrap().into_backend();
    // Start-up time is a benchmark figure (scripts/bench.sh, loadgen), not an assertion here.
    eprintln!("reopened in {:?}", started.elapsed());
    assert_eq!(store.lifecycle.stats().unwrap(), expected_stats);
    for (position, tenant) in tenants.iter().enumerate() {
        let found = find_all(&store, tenant).await;
        let shape = |traces: &[Trace]| -> Vec<(TraceId, Vec<Vec<u8>>)> {
            traces
                .iter()
                .map(|trace| {
                    let mut spans: Vec<Vec<u8>> = trace
                        .spans
                        .iter()
                        .map(|span| prost::Message::encode_to_vec(span.otlp()))
                        .collect();
                    spans.sort();
                    (trace.trace_id, spans)
                })
                .collect()
        };
        assert_eq!(shape(&found), shape(&expected_traces[position]));
        let summaries: Vec<TraceSummary> = store
            .traces
            .find_trace_summaries(tenant, TraceQuery::all(NonZeroUsize::new(1_000).unwrap()))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(summaries, expected_summaries[position]);
        let mut services = store.traces.get_services(tenant).await.unwrap();
        services.sort();
        assert_eq!(services.len(), 3);
        assert_eq!(get(&store, tenant, 3).await[0].spans.len(), 50);
    }
    // Writes continue where they left off.
    store
        .traces
        .write_spans(&tenants[0], vec![payload_span(99, 0, "late", base)])
        .await
        .unwrap();
    assert_eq!(get(&store, &tenants[0], 99).await.len(), 1);
    store.lifecycle.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_drops_old_partitions_and_frees_their_disk() {
    let directory = tempfile::tempdir().unwrap();
    let store = LsmStore::open(LsmConfig {
        retention: Duration::from_secs(120),
        partition_span: Some(Duration::from_secs(60)),
        // Run the pass by hand below.
        expiry_interval: Duration::from_secs(3600),
        ..LsmConfig::in_directory(directory.path())
    })
    .unwrap();
    let store = Arc::new(store);
    let backend = Backend::from_store(
        backend_lsm::NAME,
        backend_lsm::CAPABILITIES,
        Arc::clone(&store),
    );
    let tenant = Tenant::default();
    let now = UnixNanos::now().0;
    let old_start = now - 3600 * SECOND;
    for batch in 0..20u32 {
        let spans = (0..200u32)
            .map(|index| payload_span(batch, index, "old-svc", old_start + u64::from(index)))
            .collect();
        backend.traces.write_spans(&tenant, spans).await.unwrap();
    }
    backend
        .traces
        .write_spans(
            &tenant,
            (0..10)
                .map(|index| payload_span(1_000, index, "new-svc", now))
                .collect(),
        )
        .await
        .unwrap();
    store.flush_memtables().await.unwrap();
    assert_eq!(store.partition_count(), 2);
    let size_before = table_bytes(directory.path());
    let fjall_before = store.disk_space().await.unwrap();

    let dropped = store.expire(UnixNanos::now()).await.unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(store.partition_count(), 1);

    // Folders go once the last handle is released; allow background work a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut size_after = table_bytes(directory.path());
    while size_after * 2 > size_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        size_after = table_bytes(directory.path());
    }
    let fjall_after = store.disk_space().await.unwrap();
    eprintln!(
        "tables {size_before} -> {size_after} bytes; fjall disk_space {fjall_before} -> {fjall_after}"
    );
    assert!(
        size_after * 2 <= size_before,
        "directory {size_before} -> {size_after} bytes"
    );
    assert!(
        fjall_after < fjall_before,
        "fjall disk_space {fjall_before} -> {fjall_after}"
    );

    // Old data and its service are gone; new data is intact.
    assert!(get(&backend, &tenant, 3).await.is_empty());
    assert_eq!(
        backend.traces.get_services(&tenant).await.unwrap(),
        ["new-svc"]
    );
    assert_eq!(get(&backend, &tenant, 1_000).await[0].spans.len(), 10);
    assert_eq!(find_all(&backend, &tenant).await.len(), 1);
    let stats = backend.lifecycle.stats().unwrap();
    assert_eq!(stats.spans, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_task_expires_partitions_on_its_own() {
    let store = LsmStore::open(LsmConfig {
        retention: Duration::from_secs(60),
        partition_span: Some(Duration::from_secs(10)),
        expiry_interval: Duration::from_millis(20),
        ..LsmConfig::ephemeral()
    })
    .unwrap();
    let store = Arc::new(store);
    let backend = Backend::from_store(
        backend_lsm::NAME,
        backend_lsm::CAPABILITIES,
        Arc::clone(&store),
    );
    let tenant = Tenant::default();
    let now = UnixNanos::now().0;
    backend
        .traces
        .write_spans(
            &tenant,
            vec![
                payload_span(1, 0, "old", now - 600 * SECOND),
                payload_span(2, 0, "new", now),
            ],
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.partition_count() > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.partition_count(), 1);
    assert_eq!(backend.traces.get_services(&tenant).await.unwrap(), ["new"]);
    backend.lifecycle.close().await.unwrap();
}

/// Rough figures, not a benchmark: `cargo test --release -p backend-lsm --test durability --
/// --ignored --nocapture throughput`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run by hand in release mode"]
async fn throughput() {
    use remote_storage_core::model::Resource;
    use remote_storage_core::proto::otlp::resource::Resource as OtlpResource;
    use remote_storage_core::query::AttributeFilter;

    let directory = tempfile::tempdir().unwrap();
    let store = LsmStore::open(LsmConfig::in_directory(directory.path()))
        .unwrap()
        .into_backend();
    let tenant = Tenant::default();
    let text = |value: &str| {
        Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        })
    };
    let resources: Vec<Arc<Resource>> = (0..20)
        .map(|index| {
            let attributes = [
                ("service.name", format!("svc-{}", index % 5)),
                ("host.name", format!("host-{index}")),
                ("telemetry.sdk.language", "rust".into()),
                ("telemetry.sdk.version", "1.0".into()),
                ("deployment.environment", "prod".into()),
            ]
            .into_iter()
            .map(|(key, value)| KeyValue {
                key: key.into(),
                value: text(&value),
                ..Default::default()
            })
            .collect();
            Arc::new(Resource::new(
                OtlpResource {
                    attributes,
                    ..Default::default()
                },
                String::new(),
            ))
        })
        .collect();
    let scope = Arc::new(Scope::default());
    let now = UnixNanos::now().0 - 3600 * SECOND;
    let total: u32 = 100_000;
    let batch_size: u32 = 1_000;
    let started = Instant::now();
    for batch in 0..total / batch_size {
        let spans: Vec<Span> = (0..batch_size)
            .map(|index| {
                let number = batch * batch_size + index;
                let trace = number / 10;
                let mut trace_id = [3u8; 16];
                trace_id[..4].copy_from_slice(&trace.to_be_bytes());
                let mut span_id = [1u8; 8];
                span_id[4..].copy_from_slice(&number.to_be_bytes());
                let attributes = (0..10)
                    .map(|attribute| KeyValue {
                        key: format!("attr.{attribute}"),
                        value: if attribute < 6 {
                            text(&format!("value-{}", (number + attribute) % 100))
                        } else {
                            Some(AnyValue {
                                value: Some(Value::IntValue(i64::from(number % 1_000))),
                            })
                        },
                        ..Default::default()
                    })
                    .collect();
                let otlp = remote_storage_core::proto::otlp::trace::Span {
                    trace_id: trace_id.to_vec(),
                    span_id: span_id.to_vec(),
                    name: format!("op-{}", number % 20),
                    kind: 2,
                    start_time_unix_nano: now + u64::from(number) * 1_000_000,
                    end_time_unix_nano: now
                        + u64::from(number) * 1_000_000
                        + u64::from(number % 5_000) * 1_000,
                    attributes,
                    ..Default::default()
                };
                let resource = &resources[usize::try_from(trace % 20).unwrap()];
                Span::new(Arc::clone(resource), Arc::clone(&scope), otlp).unwrap()
            })
            .collect();
        store.traces.write_spans(&tenant, spans).await.unwrap();
    }
    let write_elapsed = started.elapsed();
    eprintln!(
        "write: {total} spans in {write_elapsed:?} = {:.0} spans/s (batches of {batch_size}, sync=batch)",
        f64::from(total) / write_elapsed.as_secs_f64()
    );
    let depth = NonZeroUsize::new(20).unwrap();
    let mut queries = Vec::new();
    let mut by_operation = TraceQuery::all(depth);
    by_operation.service_name = Some("svc-1".into());
    by_operation.operation_name = Some("op-3".into());
    queries.push(("service+operation", by_operation));
    let mut by_attribute = TraceQuery::all(depth);
    by_attribute.attributes.push(AttributeFilter {
        key: "attr.7".into(),
        value: "123".into(),
    });
    queries.push(("attribute, no service", by_attribute));
    queries.push(("no condition", TraceQuery::all(depth)));
    let mut by_duration = TraceQuery::all(depth);
    by_duration.service_name = Some("svc-2".into());
    by_duration.duration_min = Some(4_990_000);
    queries.push(("service+duration_min", by_duration));
    let mut rare = TraceQuery::all(depth);
    rare.attributes.push(AttributeFilter {
        key: "span.kind".into(),
        value: "consumer".into(),
    });
    rare.start_time_min = Some(UnixNanos(now));
    rare.start_time_max = Some(UnixNanos(now + 10_000 * 1_000_000));
    queries.push(("unindexed, 10k-span window, no match", rare));
    for (label, query) in queries {
        let started = Instant::now();
        let traces = find_all_with(&store, &tenant, query).await;
        eprintln!(
            "find {label}: {} traces in {:?}",
            traces.len(),
            started.elapsed()
        );
    }
    let started = Instant::now();
    for trace in 0..100u32 {
        let mut trace_id = [3u8; 16];
        trace_id[..4].copy_from_slice(&(trace * 97).to_be_bytes());
        let found: Vec<Trace> = store
            .traces
            .get_traces(
                &tenant,
                vec![TraceLookup {
                    trace_id: TraceId(trace_id),
                    start: None,
                    end: None,
                }],
            )
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(found[0].spans.len(), 10);
    }
    eprintln!("get_traces: 100 lookups in {:?}", started.elapsed());
    store.lifecycle.close().await.unwrap();
    drop(store);
    let started = Instant::now();
    let reopened = LsmStore::open(LsmConfig::in_directory(directory.path())).unwrap();
    eprintln!(
        "reopen after {total} spans: {:?}, {} bytes of tables",
        started.elapsed(),
        table_bytes(directory.path())
    );
    drop(reopened);
}

async fn find_all_with(backend: &Backend, tenant: &Tenant, query: TraceQuery) -> Vec<Trace> {
    backend
        .traces
        .find_traces(tenant, query)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

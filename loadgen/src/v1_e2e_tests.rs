//! End-to-end tests of the v1 mode against the real server (memory backend), in-process.

use std::collections::HashMap;
use std::time::Duration;

use remote_storage::{BackendConfig, RunningServer, ServerConfig, TenancyConfig, open_backend};
use tonic::transport::Channel;

use crate::cli::{Api, V1Writer};
use crate::codec::RawClient;
use crate::conn::{self, Tenant};
use crate::large_trace;
use crate::queries;
use crate::run::{LoadConfig, LoadResult};
use crate::test_support::{query_config, recent_workload};
use crate::v1_workload::{self, V1Template};
use crate::v1_writer;
use crate::verify;
use crate::workload::{self, Workload};

async fn server(tenancy: TenancyConfig) -> (RunningServer, Channel) {
    let backend = open_backend(&BackendConfig::Memory(Default::default()))
        .await
        .unwrap();
    let config = ServerConfig {
        tenancy,
        ..ServerConfig::for_tests()
    };
    let server = RunningServer::start(config, backend).await.unwrap();
    let channel = conn::connect(&server.grpc_addr.to_string()).await.unwrap();
    (server, channel)
}

fn v1_workload(total: u64) -> Workload<V1Template> {
    v1_workload::build(&recent_workload(21, 100, total)).unwrap()
}

fn load_config(concurrency: usize, prefix: [u8; 8]) -> LoadConfig {
    LoadConfig {
        concurrency,
        duration: None,
        rate: None,
        prefix,
        progress: None,
    }
}

/// Writes `total` spans with `writer`, then verifies them as `--verify` does: every trace
/// through v2 GetTraces, the first through v1 GetTrace.
async fn load_and_verify(
    channel: &Channel,
    total: u64,
    writer: V1Writer,
    concurrency: usize,
) -> LoadResult {
    let workload = v1_workload(total);
    let prefix = workload::run_prefix(17);
    let first_trace = v1_workload::sent_trace(&workload, prefix, 0).unwrap();
    let clients = vec![RawClient::new(channel.clone(), false, Tenant::default())];
    if writer == V1Writer::Stream {
        v1_writer::check_streaming(channel.clone(), &Tenant::default())
            .await
            .unwrap();
    }
    let result = v1_writer::run(workload, clients, load_config(concurrency, prefix), writer)
        .await
        .unwrap();
    assert!(
        result.errors.is_empty(),
        "{:?} {:?}",
        result.errors,
        result.error_examples
    );
    let ids: Vec<_> = (0..total / 10)
        .map(|t| workload::trace_id(prefix, t))
        .collect();
    let counted = verify::verify(
        channel,
        &Tenant::default(),
        &ids,
        result.spans_accepted,
        2,
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert!(counted.ok, "{counted:?}");
    let check = verify::check_v1_trace(channel, &Tenant::default(), first_trace).await;
    assert_eq!(check.difference, None, "{check:?}");
    assert_eq!(check.read_spans, 10);
    result
}

#[tokio::test]
async fn streams_write_every_span_once_and_read_back_through_v1_and_v2() {
    let (server, channel) = server(TenancyConfig::default()).await;
    let result = load_and_verify(&channel, 2_340, V1Writer::Stream, 3).await;
    assert_eq!(result.spans_sent, 2_340);
    assert_eq!(result.spans_accepted, 2_340);
    // One request per stream, and no per-message latency.
    assert_eq!(result.requests_sent, 3);
    assert_eq!(result.requests_ok, 3);
    assert!(result.latency_us.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn unary_writes_one_call_per_span() {
    let (server, channel) = server(TenancyConfig::default()).await;
    let result = load_and_verify(&channel, 300, V1Writer::Unary, 4).await;
    assert_eq!(result.spans_accepted, 300);
    assert_eq!(result.requests_sent, 300);
    assert_eq!(result.latency_us.len(), 300);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_refused_stream_counts_its_spans_as_errors() {
    let tenancy = TenancyConfig {
        enabled: true,
        ..TenancyConfig::default()
    };
    let (server, channel) = server(tenancy).await;
    // No tenant header: every stream is refused, and the run still ends.
    let clients = vec![RawClient::new(channel.clone(), false, Tenant::default())];
    let result = v1_writer::run(
        v1_workload(1_000),
        clients,
        load_config(2, workload::run_prefix(2)),
        V1Writer::Stream,
    )
    .await
    .unwrap();
    assert_eq!(result.spans_accepted, 0);
    assert_eq!(result.requests_ok, 0);
    assert!(result.errors.contains_key("Unauthenticated"), "{result:?}");
    assert!(
        v1_writer::check_streaming(channel.clone(), &Tenant::default())
            .await
            .is_err()
    );
    let tenant = Tenant::new("x-tenant", Some("acme")).unwrap();
    v1_writer::check_streaming(channel, &tenant).await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_query_mode_times_the_v1_reads() {
    let (server, channel) = server(TenancyConfig::default()).await;
    load_and_verify(&channel, 2_000, V1Writer::Stream, 2).await;
    let large = large_trace::write(channel.clone(), &Tenant::default(), 1_500, 5)
        .await
        .unwrap();
    let (target, results) = queries::run(
        channel,
        Tenant::default(),
        query_config(2, Some(large)),
        Api::V1,
    )
    .await
    .unwrap();
    assert_eq!(target.service, workload::service_name(0));
    let by_name: HashMap<_, _> = results.iter().map(|r| (r.name.as_str(), r)).collect();
    assert_eq!(results.len(), 7, "{:?}", by_name.keys());
    for result in &results {
        assert_eq!(result.ok, 2, "{result:?}");
    }
    let by_service = by_name["v1 FindTraces service"];
    assert!((1..=20).contains(&by_service.traces), "{by_service:?}");
    assert_eq!(by_service.spans, by_service.traces * 10);
    assert!(by_name["v1 FindTraces service+tag"].traces >= 1);
    assert_eq!(by_name["v1 GetServices"].items, 11);
    assert!(by_name["v1 GetOperations"].items >= 2);
    assert_eq!(by_name["v1 GetTrace one trace"].spans, 10);
    assert_eq!(by_name["v1 GetTrace large trace"].spans, 1_500);
    assert_eq!(by_name["GetTraces large trace (v2)"].spans, 1_500);
    server.stop().await.unwrap();
}

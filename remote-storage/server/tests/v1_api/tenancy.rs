//! The tenancy guard on every v1 RPC, and tenants across the APIs.

use crate::harness::*;

/// Calls every v1 RPC once with `tenant` (or no tenant header) and returns each outcome.
async fn every_v1_rpc(
    addr: SocketAddr,
    tenant: Option<&'static str>,
) -> Vec<(&'static str, Result<(), Status>)> {
    let start = recent_start();
    let span = || v1_span(0x91, 1, "probe", "probe", start);
    let query = || Some(window(start));
    let mut writer = span_writer(addr).await;
    let mut streamer = stream_writer(addr).await;
    let mut reader = span_reader(addr).await;
    let mut dependencies = DependenciesReaderPluginClient::new(channel(addr).await);
    let mut capabilities = PluginCapabilitiesClient::new(channel(addr).await);
    let (start_time, end_time) = v2_window(start);
    vec![
        (
            "WriteSpan",
            writer
                .write_span(request(write_request(span()), tenant))
                .await
                .map(|_| ()),
        ),
        (
            "Close",
            writer
                .close(request(CloseWriterRequest {}, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "WriteSpanStream",
            streamer
                .write_span_stream(request(tokio_stream::iter([write_request(span())]), tenant))
                .await
                .map(|_| ()),
        ),
        (
            "GetTrace",
            reader
                .get_trace(request(
                    GetTraceRequest {
                        trace_id: trace_id(0x91),
                        ..Default::default()
                    },
                    tenant,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "GetServices",
            reader
                .get_services(request(GetServicesRequest {}, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "GetOperations",
            reader
                .get_operations(request(
                    GetOperationsRequest {
                        service: "probe".into(),
                        span_kind: String::new(),
                    },
                    tenant,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "FindTraces",
            reader
                .find_traces(request(FindTracesRequest { query: query() }, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "FindTraceIDs",
            reader
                .find_trace_i_ds(request(FindTraceIDsRequest { query: query() }, tenant))
                .await
                .map(|_| ()),
        ),
        (
            "GetDependencies",
            dependencies
                .get_dependencies(request(
                    GetDependenciesRequest {
                        start_time,
                        end_time,
                    },
                    tenant,
                ))
                .await
                .map(|_| ()),
        ),
        (
            "Capabilities",
            capabilities
                .capabilities(request(CapabilitiesRequest {}, tenant))
                .await
                .map(|_| ()),
        ),
    ]
}

#[tokio::test]
async fn the_tenancy_guard_covers_every_v1_rpc() {
    let server = start_with(tenancy_config()).await;
    // tonic, like grpc-go, always sends `user-agent`, so a request without the tenant header
    // still has metadata: Jaeger's answer for that is UNAUTHENTICATED (PERMISSION_DENIED is for
    // no metadata at all, which only a hand-made request can produce; see tenancy.rs).
    for (rpc, outcome) in every_v1_rpc(server.grpc_addr, None).await {
        let status = outcome.expect_err(rpc);
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc}");
        assert_eq!(status.message(), "missing tenant header", "{rpc}");
    }
    for (rpc, outcome) in every_v1_rpc(server.grpc_addr, Some("mallory")).await {
        let status = outcome.expect_err(rpc);
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}");
        assert_eq!(status.message(), "unknown tenant", "{rpc}");
    }
    // An allowed tenant passes the guard everywhere (the probe trace exists by the time
    // GetTrace runs, since WriteSpan came first).
    for (rpc, outcome) in every_v1_rpc(server.grpc_addr, Some("acme")).await {
        outcome.unwrap_or_else(|status| panic!("{rpc}: {status:?}"));
    }
    // Two tenant headers.
    let mut twice = request(GetServicesRequest {}, Some("acme"));
    twice
        .metadata_mut()
        .append("x-tenant", MetadataValue::from_static("globex"));
    assert_refused(
        span_reader(server.grpc_addr)
            .await
            .get_services(twice)
            .await,
        Code::PermissionDenied,
        &["extra tenant header"],
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn capabilities_without_a_tenant_are_refused_so_jaeger_falls_back_to_unary_writes() {
    // Jaeger's client asks Capabilities once, with no tenant. Refusing it is the desired
    // answer: the client then writes one WriteSpan per span, each with its own tenant, instead
    // of pooling streams, and its stream pool ignores tenants (a stream opened for one tenant
    // would carry the next tenant's spans under the first one's name).
    let server = start_with(tenancy_config()).await;
    let mut client = PluginCapabilitiesClient::new(channel(server.grpc_addr).await);
    assert_refused(
        client.capabilities(CapabilitiesRequest {}).await,
        Code::Unauthenticated,
        &["missing tenant header"],
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn v1_and_v2_share_each_tenants_data_and_nothing_else() {
    let server = start_with(tenancy_config()).await;
    let start = recent_start();
    let addr = server.grpc_addr;

    // v1 write as acme → v2 read as acme only.
    span_writer(addr)
        .await
        .write_span(request(
            write_request(v1_span(0x92, 1, "acme-v1", "op", start)),
            Some("acme"),
        ))
        .await
        .unwrap();
    assert_eq!(
        otlp_spans(&v2_get_trace(addr, trace_id(0x92), Some("acme")).await).len(),
        1
    );
    assert!(
        v2_get_trace(addr, trace_id(0x92), Some("globex"))
            .await
            .is_empty()
    );

    // v2 (OTLP) write as globex → v1 read as globex only.
    export(
        addr,
        vec![resource_group(
            "globex-otlp",
            vec![otlp_span(0x93, 1, None, "op", start)],
        )],
        Some("globex"),
    )
    .await;
    let mut reader = span_reader(addr).await;
    let as_globex = GetTraceRequest {
        trace_id: trace_id(0x93),
        ..Default::default()
    };
    let chunks = collect(
        reader
            .get_trace(request(as_globex.clone(), Some("globex")))
            .await
            .unwrap()
            .into_inner(),
    )
    .await
    .unwrap();
    assert_eq!(joined(chunks).len(), 1);
    let hidden = reader
        .get_trace(request(as_globex, Some("acme")))
        .await
        .map(|_| ());
    assert_refused(hidden, Code::NotFound, &["trace not found"]);

    // A stream opened as acme stores under acme.
    let stream = OpenStream::open(addr, Some("acme")).await;
    stream
        .send_span(v1_span(0x94, 1, "acme-stream", "op", start))
        .await;
    stream.finish().await.unwrap();

    for (tenant, expected) in [
        ("acme", vec!["acme-stream", "acme-v1"]),
        ("globex", vec!["globex-otlp"]),
    ] {
        let mut services = reader
            .get_services(request(GetServicesRequest {}, Some(tenant)))
            .await
            .unwrap()
            .into_inner()
            .services;
        services.sort();
        assert_eq!(services, expected, "{tenant}");
    }
    server.stop().await.unwrap();
}

//! Metrics, health and what the writer port serves.

use crate::harness::*;

#[tokio::test]
async fn metrics_count_v1_rpcs_and_spans() {
    let server = start().await;
    let start = recent_start();
    let addr = server.grpc_addr;
    // 2 spans stored, 1 refused through WriteSpan; 3 received and 1 refused through a stream.
    write_spans(
        addr,
        [
            v1_span(0xB1, 1, "metered", "a", start),
            v1_span(0xB1, 2, "metered", "b", start),
        ],
    )
    .await;
    let mut bad = v1_span(0xB1, 3, "metered", "bad", start);
    bad.span_id = vec![3; 5];
    assert_refused(
        span_writer(addr)
            .await
            .write_span(write_request(bad.clone()))
            .await,
        Code::InvalidArgument,
        &[],
    );
    let stream = OpenStream::open(addr, None).await;
    stream
        .send_span(v1_span(0xB2, 1, "metered", "c", start))
        .await;
    stream.send_span(bad).await;
    stream
        .send_span(v1_span(0xB2, 2, "metered", "d", start))
        .await;
    assert_refused(stream.finish().await, Code::InvalidArgument, &[]);
    let mut reader = span_reader(addr).await;
    get_trace(&mut reader, trace_id(0xB1)).await.unwrap();
    assert_refused(
        get_trace(&mut reader, trace_id(0xB9)).await,
        Code::NotFound,
        &[],
    );
    find_traces(&mut reader, window(start)).await;

    let (status, text) = http_get(server.admin_addr.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    for expected in [
        "jaeger_remote_storage_spans_received_total{backend=\"memory\"} 6",
        "jaeger_remote_storage_spans_rejected_total{backend=\"memory\",reason=\"invalid\"} 2",
        "jaeger_remote_storage_stored_spans{backend=\"memory\"} 4",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanWriterPlugin/WriteSpan\",code=\"OK\"} 2",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanWriterPlugin/WriteSpan\",code=\"INVALID_ARGUMENT\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.StreamingSpanWriterPlugin/WriteSpanStream\",code=\"INVALID_ARGUMENT\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanReaderPlugin/GetTrace\",code=\"OK\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanReaderPlugin/GetTrace\",code=\"NOT_FOUND\"} 1",
        "jaeger_remote_storage_grpc_requests_total{method=\"jaeger.storage.v1.SpanReaderPlugin/FindTraces\",code=\"OK\"} 1",
        "jaeger_remote_storage_grpc_request_duration_seconds_count{method=\"jaeger.storage.v1.SpanReaderPlugin/GetTrace\"} 2",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_reports_the_v1_services_serving() {
    let server = start().await;
    for service in [
        "jaeger.storage.v1.SpanWriterPlugin",
        "jaeger.storage.v1.StreamingSpanWriterPlugin",
        "jaeger.storage.v1.SpanReaderPlugin",
        "jaeger.storage.v1.DependenciesReaderPlugin",
        "jaeger.storage.v1.PluginCapabilities",
    ] {
        assert_eq!(
            health_status(server.grpc_addr, service).await,
            ServingStatus::Serving,
            "{service}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_writer_port_serves_v1_writers_and_capabilities_but_no_reader() {
    let server = start().await;
    let writer_addr = server.writer_addr.unwrap();
    let start = recent_start();
    write_spans(
        writer_addr,
        [v1_span(0xB3, 1, "via-writer", "unary", start)],
    )
    .await;
    let stream = OpenStream::open(writer_addr, None).await;
    stream
        .send_span(v1_span(0xB3, 2, "via-writer", "streamed", start))
        .await;
    stream.finish().await.unwrap();
    let answer = PluginCapabilitiesClient::new(channel(writer_addr).await)
        .capabilities(CapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(answer.streaming_span_writer);

    // Readers live on the main port only.
    let mut writer_port_reader = span_reader(writer_addr).await;
    assert_refused(
        writer_port_reader.get_services(GetServicesRequest {}).await,
        Code::Unimplemented,
        &[],
    );
    assert_refused(
        get_trace(&mut writer_port_reader, trace_id(0xB3)).await,
        Code::Unimplemented,
        &[],
    );
    let (start_time, end_time) = v2_window(start);
    assert_refused(
        DependenciesReaderPluginClient::new(channel(writer_addr).await)
            .get_dependencies(GetDependenciesRequest {
                start_time,
                end_time,
            })
            .await,
        Code::Unimplemented,
        &[],
    );

    // What the writer port took is readable on the main port.
    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0xB3)).await.unwrap());
    assert_eq!(spans.len(), 2);
    server.stop().await.unwrap();
}

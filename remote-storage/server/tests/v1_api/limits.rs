//! Message size limits and compression.

use crate::harness::*;

#[tokio::test]
async fn oversized_v1_writes_are_refused_and_the_server_keeps_serving() {
    let mut config = ServerConfig::for_tests();
    config.limits.max_recv_bytes = 64 * 1024;
    let server = start_with(config).await;
    let start = recent_start();
    let mut huge = v1_span(0xA1, 1, "huge-svc", "huge", start);
    huge.tags = vec![str_tag("blob", &"x".repeat(100_000))];
    assert!(write_request(huge.clone()).encoded_len() > 64 * 1024);

    let mut writer = span_writer(server.grpc_addr).await;
    assert_too_large(writer.write_span(write_request(huge.clone())).await);

    // In a stream, what arrived before the oversized message is stored.
    let stream = OpenStream::open(server.grpc_addr, None).await;
    stream
        .send_span(v1_span(0xA2, 1, "small-svc", "before", start))
        .await;
    stream.send_span(huge).await;
    assert_too_large(stream.finish().await);

    // Same connection, next request: served.
    writer
        .write_span(write_request(v1_span(0xA2, 2, "small-svc", "after", start)))
        .await
        .unwrap();
    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0xA2)).await.unwrap());
    let names: BTreeSet<&str> = spans
        .iter()
        .map(|span| span.operation_name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["before", "after"]));
    assert_eq!(v1_services(server.grpc_addr).await, ["small-svc"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn gzip_compressed_v1_requests_are_accepted() {
    let server = start().await;
    let start = recent_start();
    // Compressible, so that the compressed frame is really different.
    let mut unary = v1_span(0xA3, 1, "gzip-svc", "unary", start);
    unary.tags = vec![str_tag("text", &"abc".repeat(10_000))];
    span_writer(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .write_span(write_request(unary))
        .await
        .unwrap();
    let client = stream_writer(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let stream = OpenStream::open_with(client, None);
    stream
        .send_span(v1_span(0xA3, 2, "gzip-svc", "streamed", start))
        .await;
    stream.finish().await.unwrap();

    let mut reader = span_reader(server.grpc_addr)
        .await
        .send_compressed(CompressionEncoding::Gzip);
    let spans = joined(get_trace(&mut reader, trace_id(0xA3)).await.unwrap());
    assert_eq!(spans.len(), 2);
    assert_eq!(find_span(&spans, 1).tags[0].v_str.len(), 30_000);
    server.stop().await.unwrap();
}

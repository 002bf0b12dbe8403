//! PluginCapabilities, the archive services and Close.

use crate::harness::*;

#[tokio::test]
async fn capabilities_offer_streaming_and_no_archive() {
    let server = start().await;
    let mut client = PluginCapabilitiesClient::new(channel(server.grpc_addr).await);
    let answer = client
        .capabilities(CapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(answer.streaming_span_writer);
    #[allow(deprecated)]
    let archive = (answer.archive_span_reader, answer.archive_span_writer);
    assert_eq!(archive, (false, false));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn archive_rpcs_are_unimplemented() {
    let server = start().await;
    let start = recent_start();
    let mut writer = ArchiveSpanWriterPluginClient::new(channel(server.grpc_addr).await);
    assert_refused(
        writer
            .write_archive_span(write_request(v1_span(0x81, 1, "svc", "op", start)))
            .await,
        Code::Unimplemented,
        &["archive"],
    );
    let mut reader = ArchiveSpanReaderPluginClient::new(channel(server.grpc_addr).await);
    assert_refused(
        reader
            .get_archive_trace(GetTraceRequest {
                trace_id: trace_id(0x81),
                ..Default::default()
            })
            .await,
        Code::Unimplemented,
        &["archive"],
    );
    // Nothing reached the store.
    assert!(v1_services(server.grpc_addr).await.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test]
async fn close_answers_ok_and_affects_no_other_writer() {
    let server = start().await;
    let start = recent_start();
    let mut closing = span_writer(server.grpc_addr).await;
    closing
        .write_span(write_request(v1_span(0x82, 1, "svc", "before", start)))
        .await
        .unwrap();
    closing.close(CloseWriterRequest {}).await.unwrap();

    // Another connection (and an open stream) keep writing.
    let stream = OpenStream::open(server.grpc_addr, None).await;
    write_spans(server.grpc_addr, [v1_span(0x82, 2, "svc", "after", start)]).await;
    stream
        .send_span(v1_span(0x82, 3, "svc", "streamed", start))
        .await;
    stream.finish().await.unwrap();

    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x82)).await.unwrap());
    let names: BTreeSet<&str> = spans
        .iter()
        .map(|span| span.operation_name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["before", "after", "streamed"]));
    server.stop().await.unwrap();
}

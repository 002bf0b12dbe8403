//! WriteSpan, WriteSpanStream and bad input: what is stored and what is refused.

use crate::harness::*;

#[tokio::test]
async fn a_written_span_reads_back_exactly_with_every_field() {
    let server = start().await;
    let start = recent_start();
    let written = model::Span {
        trace_id: trace_id(0x11),
        span_id: span_id(2),
        operation_name: "load-cart".into(),
        references: vec![reference(0x11, 1, model::SpanRefType::ChildOf)],
        flags: 1,
        start_time: Some(timestamp(start + 7)),
        duration: Some(prost_types::Duration {
            seconds: 1,
            nanos: 7,
        }),
        // Tags in the order they read back: attributes first, then `span.kind`.
        tags: vec![
            str_tag("http.method", "GET"),
            bool_tag("cache.hit", true),
            int_tag("retries", -3),
            float_tag("ratio", 0.25),
            binary_tag("payload", &[0, 1, 2, 255]),
            str_tag("span.kind", "server"),
        ],
        logs: vec![model::Log {
            timestamp: Some(timestamp(start + 5_001)),
            fields: vec![str_tag("event", "retry"), int_tag("attempt", 2)],
        }],
        process: Some(model::Process {
            service_name: "checkout".into(),
            tags: vec![str_tag("region", "eu-west"), int_tag("pid", 4242)],
        }),
        process_id: String::new(),
        warnings: vec!["clock skew adjusted".into()],
    };
    let parent = v1_span(0x11, 1, "frontend", "GET /cart", start);
    write_spans(server.grpc_addr, [parent.clone(), written.clone()]).await;

    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x11)).await.unwrap());
    assert_eq!(spans.len(), 2);
    assert_eq!(find_span(&spans, 2), &written);
    assert_eq!(find_span(&spans, 1), &parent);

    // The time window is only a hint: a window around the trace finds it too.
    let hinted = GetTraceRequest {
        trace_id: trace_id(0x11),
        start_time: Some(timestamp(start - HOUR)),
        end_time: Some(timestamp(start + HOUR)),
    };
    let chunks = collect(reader.get_trace(hinted).await.unwrap().into_inner())
        .await
        .unwrap();
    assert_eq!(joined(chunks).len(), 2);
    // Go's zero times mean "no hint".
    let unset = GetTraceRequest {
        trace_id: trace_id(0x11),
        start_time: Some(go_zero_time()),
        end_time: Some(go_zero_time()),
    };
    let chunks = collect(reader.get_trace(unset).await.unwrap().into_inner())
        .await
        .unwrap();
    assert_eq!(joined(chunks).len(), 2);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn services_and_operations_fill_both_the_typed_and_the_deprecated_lists() {
    let server = start().await;
    let start = recent_start();
    write_spans(
        server.grpc_addr,
        [
            with_kind(v1_span(0x12, 1, "checkout", "GET /cart", start), "server"),
            with_kind(v1_span(0x12, 2, "checkout", "GET /cart", start), "client"),
            with_kind(v1_span(0x12, 3, "checkout", "db.query", start), "client"),
            v1_span(0x12, 4, "checkout", "warm-up", start),
            with_kind(v1_span(0x13, 1, "payments", "charge", start), "server"),
        ],
    )
    .await;
    let mut reader = span_reader(server.grpc_addr).await;

    assert_eq!(
        v1_services(server.grpc_addr).await,
        ["checkout", "payments"]
    );

    // Jaeger reads `operations` (kinds as lower-case words, "" for none); older clients read
    // `operationNames`, where each name appears once even when it has several kinds.
    let (typed, names) = operations(&mut reader, "checkout", "").await;
    assert_eq!(
        typed,
        pairs(&[
            ("GET /cart", "client"),
            ("GET /cart", "server"),
            ("db.query", "client"),
            ("warm-up", ""),
        ])
    );
    assert_eq!(names, ["GET /cart", "db.query", "warm-up"]);

    let (clients, client_names) = operations(&mut reader, "checkout", "client").await;
    assert_eq!(
        clients,
        pairs(&[("GET /cart", "client"), ("db.query", "client")])
    );
    assert_eq!(client_names, ["GET /cart", "db.query"]);

    let (unknown, unknown_names) = operations(&mut reader, "nobody", "").await;
    assert!(unknown.is_empty() && unknown_names.is_empty());
    assert_refused(
        reader.get_operations(GetOperationsRequest::default()).await,
        Code::InvalidArgument,
        &[],
    );
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. WriteSpanStream

#[tokio::test]
async fn spans_of_an_open_stream_are_readable_before_it_closes() {
    let server = start().await;
    let start = recent_start();
    let stream = OpenStream::open(server.grpc_addr, None).await;
    stream
        .send_span(v1_span(0x21, 1, "streamer", "root", start))
        .await;
    stream
        .send_span(child_span(0x21, 2, 1, "streamer", "child", start + 10))
        .await;

    let reader = span_reader(server.grpc_addr).await;
    let read_v1 = |expected: usize| {
        let mut reader = reader.clone();
        async move {
            let spans = joined(get_trace(&mut reader, trace_id(0x21)).await.ok()?);
            (spans.len() == expected).then_some(spans)
        }
    };
    let spans = eventually("two spans through v1 GetTrace", || read_v1(2)).await;
    assert!(stream.is_open(), "the stream must still be open");
    assert_eq!(find_span(&spans, 2).references.len(), 1);

    let chunks = v2_get_trace(server.grpc_addr, trace_id(0x21), None).await;
    let names: BTreeSet<&str> = otlp_spans(&chunks)
        .into_iter()
        .map(|(_, _, span)| span.name.as_str())
        .collect();
    assert_eq!(names, BTreeSet::from(["root", "child"]));
    assert!(stream.is_open(), "the stream must still be open");

    // The same stream keeps writing after the reads.
    stream
        .send_span(child_span(0x21, 3, 1, "streamer", "late", start + 20))
        .await;
    eventually("the third span", || read_v1(3)).await;
    assert!(stream.is_open());

    // Half-close: an empty OK answer.
    stream.finish().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_malformed_span_in_a_stream_is_reported_at_half_close_and_the_rest_is_stored() {
    let server = start().await;
    let start = recent_start();
    let stream = OpenStream::open(server.grpc_addr, None).await;
    // Enough valid spans first that the refusal may land in a later batch than the first
    // one: the message index it reports counts from the start of the stream.
    for id in 1..=150 {
        stream
            .send_span(v1_span(0x22, id, "streamer", "good", start))
            .await;
    }
    let mut short_span_id = v1_span(0x22, 151, "streamer", "bad", start);
    short_span_id.span_id = vec![2; 5];
    stream.send_span(short_span_id).await;
    stream
        .send_span(v1_span(0x22, 152, "streamer", "good-after", start))
        .await;
    // A message without a span: refused too, but only the first refusal is described.
    stream.send(WriteSpanRequest { span: None }).await;

    assert_refused(
        stream.finish().await,
        Code::InvalidArgument,
        &[
            "2 of 153 span(s) refused",
            "message #150",
            "span.span_id must be 8 bytes, got 5 bytes",
        ],
    );
    let mut reader = span_reader(server.grpc_addr).await;
    let spans = joined(get_trace(&mut reader, trace_id(0x22)).await.unwrap());
    assert_eq!(spans.len(), 151);
    assert!(spans.iter().all(|span| span.operation_name != "bad"));
    find_span(&spans, 152);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 3. WriteSpan with bad input

#[tokio::test]
async fn malformed_write_span_requests_name_the_field_and_lose_nothing() {
    let server = start().await;
    let start = recent_start();
    let mut writer = span_writer(server.grpc_addr).await;
    writer
        .write_span(write_request(v1_span(0x31, 1, "good-svc", "kept", start)))
        .await
        .unwrap();

    assert_refused(
        writer.write_span(WriteSpanRequest { span: None }).await,
        Code::InvalidArgument,
        &["span is required"],
    );
    let mut bad_trace_id = v1_span(0x32, 1, "bad-svc", "bad", start);
    bad_trace_id.trace_id = vec![1; 12];
    assert_refused(
        writer.write_span(write_request(bad_trace_id)).await,
        Code::InvalidArgument,
        &["span.trace_id", "got 12 bytes"],
    );
    let mut negative = v1_span(0x32, 2, "bad-svc", "bad", start);
    negative.duration = Some(prost_types::Duration {
        seconds: -1,
        nanos: 0,
    });
    assert_refused(
        writer.write_span(write_request(negative)).await,
        Code::InvalidArgument,
        &["span.duration must not be negative"],
    );
    let mut bad_reference = child_span(0x32, 3, 1, "bad-svc", "bad", start);
    bad_reference.references[0].span_id = vec![1; 3];
    assert_refused(
        writer.write_span(write_request(bad_reference)).await,
        Code::InvalidArgument,
        &["span.references[0].span_id"],
    );

    let mut reader = span_reader(server.grpc_addr).await;
    let kept = joined(get_trace(&mut reader, trace_id(0x31)).await.unwrap());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].operation_name, "kept");
    assert_eq!(v1_services(server.grpc_addr).await, ["good-svc"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_8_byte_trace_id_is_stored_as_16_bytes_with_leading_zeros() {
    let server = start().await;
    let start = recent_start();
    let short_id = vec![0xAB; 8];
    let mut padded = vec![0; 8];
    padded.extend_from_slice(&short_id);
    let mut root = v1_span(0, 1, "legacy", "root", start);
    root.trace_id.clone_from(&short_id);
    let mut child = child_span(0, 2, 1, "legacy", "child", start + 5);
    child.trace_id.clone_from(&short_id);
    child.references[0].trace_id.clone_from(&short_id);
    write_spans(server.grpc_addr, [root, child]).await;

    // v2 sees the 16-byte ID, and the 8-byte reference still made span 1 the parent.
    let chunks = v2_get_trace(server.grpc_addr, padded.clone(), None).await;
    let spans = otlp_spans(&chunks);
    assert_eq!(spans.len(), 2);
    for (_, _, span) in &spans {
        assert_eq!(span.trace_id, padded);
    }
    let (_, _, child) = spans
        .iter()
        .find(|(_, _, span)| span.name == "child")
        .unwrap();
    assert_eq!(child.parent_span_id, span_id(1));

    // v1 finds it by either form of the ID and answers with 16 bytes.
    let mut reader = span_reader(server.grpc_addr).await;
    for id in [short_id, padded.clone()] {
        let spans = joined(get_trace(&mut reader, id).await.unwrap());
        assert_eq!(spans.len(), 2);
        assert!(spans.iter().all(|span| span.trace_id == padded));
    }
    server.stop().await.unwrap();
}

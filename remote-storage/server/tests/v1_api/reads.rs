//! GetTrace, FindTraces and FindTraceIDs: not-found answers, large traces, chunking, searches.

use crate::harness::*;

#[tokio::test]
async fn an_unknown_trace_is_not_found_before_any_chunk_and_no_match_is_an_empty_stream() {
    let server = start().await;
    let start = recent_start();
    write_spans(server.grpc_addr, [v1_span(0x41, 1, "svc", "op", start)]).await;
    let mut reader = span_reader(server.grpc_addr).await;

    // An error from the call itself (not from the stream) means no chunk came first. Jaeger's
    // client recognises an unknown trace only by this exact message.
    let unknown = reader
        .get_trace(GetTraceRequest {
            trace_id: trace_id(0x49),
            ..Default::default()
        })
        .await
        .map(|_| ());
    let status = unknown.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "trace not found");

    assert_refused(
        get_trace(&mut reader, vec![1; 5]).await,
        Code::InvalidArgument,
        &["trace_id"],
    );

    let nothing = find_traces(
        &mut reader,
        TraceQueryParameters {
            service_name: "nobody".into(),
            ..window(start)
        },
    )
    .await;
    assert!(nothing.is_empty());
    let no_ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(TraceQueryParameters {
                service_name: "nobody".into(),
                ..window(start)
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert!(no_ids.is_empty());
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 5. Large traces

#[tokio::test]
async fn a_10008_span_trace_written_through_a_stream_reads_back_in_go_sized_chunks() {
    const SPANS: u64 = 10_008;
    let server = start().await;
    let start = recent_start();
    let stream = OpenStream::open(server.grpc_addr, None).await;
    for id in 1..=SPANS {
        let mut span = if id == 1 {
            v1_span(0x51, id, "big-svc", "root", start)
        } else {
            child_span(0x51, id, 1, "big-svc", "step", start + id)
        };
        span.process.as_mut().unwrap().tags = vec![int_tag("pid", 7)];
        span.tags = vec![int_tag("index", i64::try_from(id).unwrap())];
        stream.send_span(span).await;
    }
    stream.finish().await.unwrap();

    let mut reader = span_reader(server.grpc_addr).await;
    let chunks = get_trace(&mut reader, trace_id(0x51)).await.unwrap();
    assert!(chunks.len() >= 11, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert!(!chunk.spans.is_empty());
        assert!(
            chunk.spans.len() <= JAEGER_CHUNK_SPANS,
            "{}",
            chunk.spans.len()
        );
        assert!(chunk.encoded_len() < GO_CLIENT_MAX_RECV);
    }
    let spans = joined(chunks);
    assert_eq!(spans.len(), 10_008);
    let ids: BTreeSet<&Vec<u8>> = spans.iter().map(|span| &span.span_id).collect();
    assert_eq!(ids.len(), 10_008);
    for span in &spans {
        let process = span
            .process
            .as_ref()
            .expect("every span carries its process");
        assert_eq!(process.service_name, "big-svc");
        assert_eq!(process.tags, [int_tag("pid", 7)]);
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_trace_of_fat_spans_stays_under_4_mib_per_chunk() {
    let server = start().await;
    let start = recent_start();
    let fat = "f".repeat(300_000);
    // 16 spans of 300 KB: about 4.8 MB in all, more than one Go-sized message.
    let spans: Vec<model::Span> = (1..=16)
        .map(|id| {
            let mut span = v1_span(0x52, id, "fat-svc", "fat", start);
            span.tags = vec![str_tag("blob", &fat)];
            span
        })
        .collect();
    write_spans(server.grpc_addr, spans).await;

    let mut reader = span_reader(server.grpc_addr).await;
    let chunks = get_trace(&mut reader, trace_id(0x52)).await.unwrap();
    assert!(chunks.len() > 1, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert!(
            chunk.encoded_len() < GO_CLIENT_MAX_RECV,
            "{}",
            chunk.encoded_len()
        );
    }
    let spans = joined(chunks);
    assert_eq!(spans.len(), 16);
    assert!(spans.iter().all(|span| span.tags[0].v_str.len() == 300_000));
    server.stop().await.unwrap();
}

#[tokio::test]
async fn spans_sharing_a_span_id_are_all_kept() {
    // Jaeger's GetTraceWithDuplicateSpans: clients may send distinct spans with one ID, and
    // all of them must come back.
    let server = start().await;
    let start = recent_start();
    let spans: Vec<model::Span> = (1..=40)
        .map(|index| {
            let id = if index % 20 == 0 { index - 1 } else { index };
            v1_span(0x53, id, "dup-svc", &format!("op-{index}"), start + index)
        })
        .collect();
    write_spans(server.grpc_addr, spans).await;
    let mut reader = span_reader(server.grpc_addr).await;
    let read = joined(get_trace(&mut reader, trace_id(0x53)).await.unwrap());
    assert_eq!(read.len(), 40);
    let names: BTreeSet<&str> = read
        .iter()
        .map(|span| span.operation_name.as_str())
        .collect();
    assert_eq!(names.len(), 40);
    server.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 6. FindTraces and FindTraceIDs

/// Five traces of service `shop`, three spans each, exported through OTLP with their spans
/// interleaved across resource groups. One span of each trace carries what a search can match:
/// `0x61` an int, `0x62` a double, `0x63` a bool and an ERROR status, `0x64` bytes, `0x65` the
/// only SERVER kind.
fn searchable_traces(start: u64) -> Vec<ResourceSpans> {
    let marks: [(u8, Option<OtlpKeyValue>); 5] = [
        (
            0x61,
            Some(otlp_kv("retries", any_value::Value::IntValue(123))),
        ),
        (
            0x62,
            Some(otlp_kv("cpu", any_value::Value::DoubleValue(72.5))),
        ),
        (
            0x63,
            Some(otlp_kv("cached", any_value::Value::BoolValue(true))),
        ),
        (
            0x64,
            Some(otlp_kv("blob", any_value::Value::BytesValue(vec![1, 2, 3]))),
        ),
        (0x65, None),
    ];
    let mut roots = Vec::new();
    let mut children = Vec::new();
    for (offset, (trace, mark)) in (0u64..).zip(marks) {
        let mut root = otlp_span(trace, 1, None, "checkout", start + offset);
        root.attributes.extend(mark);
        match trace {
            0x63 => {
                root.status = Some(OtlpStatus {
                    code: StatusCode::Error.into(),
                    message: "out of stock".into(),
                });
            }
            0x65 => root.kind = SpanKind::Server.into(),
            _ => {}
        }
        roots.push(root);
        children.push(otlp_span(trace, 2, Some(1), "reserve", start + offset + 1));
        children.push(otlp_span(trace, 3, Some(1), "pay", start + offset + 2));
    }
    vec![
        resource_group("shop", roots),
        resource_group("shop", children),
    ]
}

#[tokio::test]
async fn find_traces_streams_whole_contiguous_traces_and_matches_tags_by_text() {
    let mut config = ServerConfig::for_tests();
    // Two spans per chunk, so that every three-span trace crosses a chunk boundary.
    config.limits.max_chunk_spans = NonZeroUsize::new(2).unwrap();
    let server = start_with(config).await;
    let start = recent_start();
    export(server.grpc_addr, searchable_traces(start), None).await;
    let mut reader = span_reader(server.grpc_addr).await;
    let shop = || TraceQueryParameters {
        service_name: "shop".into(),
        ..window(start)
    };

    let all = find_traces(&mut reader, shop()).await;
    assert!(all.iter().all(|chunk| chunk.spans.len() <= 2));
    let traces = traces_in(&all);
    assert_eq!(traces.len(), 5);
    assert!(traces.iter().all(|(_, count)| *count == 3), "{traces:?}");

    let ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(shop()),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert!(ids.iter().all(|id| id.len() == 16));
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), trace_ids_of(&all));

    // `num_traces` limits the traces, not the spans.
    let limited = find_traces(
        &mut reader,
        TraceQueryParameters {
            num_traces: 2,
            ..shop()
        },
    )
    .await;
    let traces = traces_in(&limited);
    assert_eq!(traces.len(), 2);
    assert!(traces.iter().all(|(_, count)| *count == 3));
    let limited_ids = reader
        .find_trace_i_ds(FindTraceIDsRequest {
            query: Some(TraceQueryParameters {
                num_traces: 2,
                ..shop()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .trace_ids;
    assert_eq!(limited_ids.len(), 2);

    // v1 tags are strings: they match typed attributes by their text, and `error` and
    // `span.kind` match the status and the kind.
    for (key, value, expected) in [
        ("retries", "123", 0x61),
        ("cpu", "72.5", 0x62),
        ("cached", "true", 0x63),
        ("blob", "AQID", 0x64),
        ("error", "true", 0x63),
        ("span.kind", "server", 0x65),
    ] {
        let query = TraceQueryParameters {
            tags: [(key.to_owned(), value.to_owned())].into(),
            ..shop()
        };
        let found = find_traces(&mut reader, query.clone()).await;
        assert_eq!(
            traces_in(&found),
            [(trace_id(expected), 3)],
            "{key}={value}"
        );
        let ids = reader
            .find_trace_i_ds(FindTraceIDsRequest { query: Some(query) })
            .await
            .unwrap()
            .into_inner()
            .trace_ids;
        assert_eq!(ids, [trace_id(expected)], "{key}={value}");
    }
    // A wrong text matches nothing.
    let nothing = TraceQueryParameters {
        tags: [("retries".to_owned(), "124".to_owned())].into(),
        ..shop()
    };
    assert!(find_traces(&mut reader, nothing).await.is_empty());
    server.stop().await.unwrap();
}

//! `write_spans` and `get_traces`: appends, duplicates, re-sends, request order, streams.

use anyhow::Context as _;
use futures::TryStreamExt as _;
use remote_storage_core::testing::span;
use remote_storage_core::{Backend, Span, Tenant, TraceId, TraceQuery};

use super::{
    CheckContext, SpanOrder, depth, ensure_eq, find, get, get_ids, ids, recent_base, seed, write,
};

/// Writes a root span of trace 1, then a batch of `children` (plus `extra`) sharing span ID 2:
/// one, one with other content, an identical copy. Returns the batch of children.
async fn root_then_children(
    backend: &Backend,
    tenant: &Tenant,
    t: u64,
    extra: Option<Span>,
) -> anyhow::Result<Vec<Span>> {
    let root = span(1, 1, None, "a", "root", t + 10, t + 20, false);
    write(backend, tenant, vec![root]).await?;
    let mut children = vec![
        span(1, 2, Some(1), "b", "child", t + 11, t + 12, false),
        // Same span ID, other content (Jaeger's GetTraceWithDuplicateSpans).
        span(1, 2, Some(1), "b", "child", t + 11, t + 13, false),
        // Identical copy inside one batch: kept too.
        span(1, 2, Some(1), "b", "child", t + 11, t + 12, false),
    ];
    children.extend(extra);
    write(backend, tenant, children.clone()).await?;
    Ok(children)
}

/// Spans of a trace append across writes; spans sharing a span ID (identical copies in one
/// batch, or other content) are all kept; unknown IDs are skipped.
pub async fn append_across_writes(backend: &Backend, context: &CheckContext) -> anyhow::Result<()> {
    let tenant = Tenant::default();
    let t = recent_base();
    let other = span(1, 2, Some(1), "b", "child", t + 13, t + 14, false);
    root_then_children(backend, &tenant, t, Some(other)).await?;
    let traces = get(backend, &tenant, 1).await?;
    ensure_eq!(traces.len(), 1, "get_traces: traces");
    ensure_eq!(traces[0].spans.len(), 5, "get_traces: spans of the trace");
    let mut names: Vec<&str> = traces[0].spans.iter().map(Span::name).collect();
    if context.span_order() == SpanOrder::Any {
        names.sort_unstable_by_key(|name| *name != "root");
    }
    ensure_eq!(
        names,
        ["root", "child", "child", "child", "child"],
        "span names in storage order"
    );
    ensure_eq!(
        get(backend, &tenant, 9).await?.len(),
        0,
        "get_traces of an unknown ID (skipped)"
    );
    let found = find(backend, &tenant, TraceQuery::all(depth(10))).await?;
    ensure_eq!(found.len(), 1, "find_traces: traces");
    ensure_eq!(found[0].spans.len(), 5, "find_traces: spans of the trace");
    Ok(())
}

/// A re-sent batch (an Export retry: same spans, same grouping) adds nothing, however often it
/// comes; identical copies inside one batch stay distinct spans.
pub async fn idempotent_rewrite(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let tenant = Tenant::default();
    let t = recent_base();
    let second_batch = root_then_children(backend, &tenant, t, None).await?;
    ensure_eq!(
        get(backend, &tenant, 1).await?[0].spans.len(),
        4,
        "spans before the re-send"
    );
    write(backend, &tenant, second_batch).await?;
    ensure_eq!(
        get(backend, &tenant, 1).await?[0].spans.len(),
        4,
        "spans after re-sending the second batch"
    );

    let batch = vec![
        span(2, 1, None, "a", "root", t + 10, t + 20, false),
        span(2, 2, Some(1), "a", "child", t + 11, t + 12, false),
        span(2, 2, Some(1), "a", "child", t + 11, t + 12, false),
    ];
    for _ in 0..3 {
        write(backend, &tenant, batch.clone()).await?;
    }
    ensure_eq!(
        get(backend, &tenant, 2).await?[0].spans.len(),
        3,
        "a batch sent three times: retries add nothing, in-batch copies kept"
    );
    Ok(())
}

/// Without idempotent writes (the memory backend, like Jaeger's reference store), a re-sent
/// Export is stored again: every copy is kept and read back.
pub async fn rewrite_keeps_copies(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let tenant = Tenant::default();
    let t = recent_base();
    let second_batch = root_then_children(backend, &tenant, t, None).await?;
    let before = get(backend, &tenant, 1).await?[0].spans.len();
    let resent = second_batch.len();
    write(backend, &tenant, second_batch).await?;
    ensure_eq!(
        get(backend, &tenant, 1).await?[0].spans.len(),
        before + resent,
        "spans after re-sending the second batch"
    );
    let batch = vec![
        span(2, 1, None, "a", "root", t + 10, t + 20, false),
        span(2, 2, Some(1), "a", "child", t + 11, t + 12, false),
    ];
    for _ in 0..3 {
        write(backend, &tenant, batch.clone()).await?;
    }
    ensure_eq!(
        get(backend, &tenant, 2).await?[0].spans.len(),
        6,
        "a batch sent three times keeps all three copies"
    );
    Ok(())
}

/// `get_traces` answers in request order and skips unknown IDs.
pub async fn get_traces_in_request_order(
    backend: &Backend,
    _: &CheckContext,
) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = seed(
        backend,
        vec![
            span(1, 1, None, "a", "x", t + 10, t + 20, false),
            span(2, 1, None, "a", "x", t + 10, t + 20, false),
        ],
    )
    .await?;
    let traces = get_ids(backend, &tenant, [2u8, 7, 1].map(|id| TraceId([id; 16]))).await?;
    ensure_eq!(ids(&traces), [2, 1], "get_traces of [2, 7, 1]");
    Ok(())
}

/// `get_encoded_traces` (what GetTraces sends) streams exactly what `get_traces` does: traces
/// in request order, unknown IDs skipped, spans of several writes and resources, each span's
/// bytes decoding to the span `get_traces` returns.
pub async fn encoded_traces_equal_traces(
    backend: &Backend,
    _: &CheckContext,
) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = seed(
        backend,
        vec![
            span(1, 1, None, "a", "root", t + 10, t + 90, false),
            span(1, 2, Some(1), "b", "child", t + 20, t + 30, true),
            span(2, 1, None, "a", "other", t + 10, t + 20, false),
        ],
    )
    .await?;
    write(
        backend,
        &tenant,
        vec![
            span(1, 3, Some(2), "c", "late", t + 40, t + 50, false),
            span(1, 4, Some(1), "a", "again", t + 60, t + 70, false),
        ],
    )
    .await?;
    let requested = [2u8, 7, 1].map(|id| TraceId([id; 16]));
    super::encoded_equal_decoded(backend, &tenant, &requested).await
}

/// A consumer may drop a result stream after the first item; the backend stays usable.
pub async fn streams_may_stop_early(backend: &Backend, _: &CheckContext) -> anyhow::Result<()> {
    let tenant = Tenant::default();
    let t = recent_base();
    let spans: Vec<Span> = (1..=50u8)
        .map(|trace| {
            span(
                trace,
                1,
                None,
                "svc",
                "op",
                t + u64::from(trace),
                t + 100,
                false,
            )
        })
        .collect();
    write(backend, &tenant, spans).await?;
    let mut stream = backend
        .traces
        .find_traces(&tenant, TraceQuery::all(depth(50)))
        .await
        .context("find_traces failed")?;
    let first = stream
        .try_next()
        .await
        .context("find_traces stream")?
        .context("find_traces streamed nothing")?;
    ensure_eq!(first.trace_id, TraceId([50; 16]), "first trace found");
    drop(stream);
    // The producer noticed and stopped.
    ensure_eq!(
        get(backend, &tenant, 3).await?.len(),
        1,
        "get_traces after dropping a stream"
    );
    Ok(())
}

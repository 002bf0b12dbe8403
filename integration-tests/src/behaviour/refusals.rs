//! What a backend does not declare it refuses: a search without a service name, a structured
//! filter, or GetOperations filtered by span kind, is answered `INVALID_ARGUMENT`, never with an
//! empty or partial result, while the declared shapes keep working on the same data.

use anyhow::Context as _;
use remote_storage_core::proto::expression::v1::expression::Term;
use remote_storage_core::proto::expression::v1::{Call, Expression, FieldReference};
use remote_storage_core::proto::otlp::trace::span::SpanKind;
use remote_storage_core::testing::span;
use remote_storage_core::{Backend, ErrorKind, Filter, OperationQuery, StoreResult, TraceQuery};

use super::{CheckContext, depth, ensure_eq, find, in_service, operations, recent_base, seed};

/// Fails unless `outcome` is an `INVALID_ARGUMENT` refusal.
fn ensure_refused<T: std::fmt::Debug>(outcome: StoreResult<T>, call: &str) -> anyhow::Result<()> {
    match outcome {
        Err(error) if error.kind() == ErrorKind::InvalidArgument => Ok(()),
        Err(error) => anyhow::bail!("{call}: expected INVALID_ARGUMENT, got {error:?}"),
        Ok(answer) => anyhow::bail!(
            "{call}: expected INVALID_ARGUMENT for an undeclared query shape, got an answer: \
             {answer:?}"
        ),
    }
}

/// Each undeclared shape is refused by every call that takes it; the declared form of the
/// same question is answered.
pub async fn refuses_undeclared_queries(
    backend: &Backend,
    context: &CheckContext,
) -> anyhow::Result<()> {
    let t = recent_base();
    let tenant = seed(
        backend,
        vec![span(1, 1, None, "svc", "op", t + 10, t + 20, false)],
    )
    .await?;
    let declared = context.capabilities;
    if !declared.without_service_name {
        let anywhere = TraceQuery::all(depth(10));
        let traces = &backend.traces;
        ensure_refused(
            traces.find_trace_ids(&tenant, anywhere.clone()).await,
            "find_trace_ids without a service",
        )?;
        ensure_refused(
            traces
                .find_traces(&tenant, anywhere.clone())
                .await
                .map(|_| ()),
            "find_traces without a service",
        )?;
        ensure_refused(
            traces
                .find_trace_summaries(&tenant, anywhere.clone())
                .await
                .map(|_| ()),
            "find_trace_summaries without a service",
        )?;
        let found = find(backend, &tenant, in_service(anywhere, "svc")).await?;
        ensure_eq!(found.len(), 1, "find_traces in the service");
    }
    if !declared.structured_filters {
        let filter = Filter::from_proto(
            &Call {
                op: "exists".into(),
                args: vec![Expression {
                    term: Some(Term::Field(FieldReference {
                        name: "name".into(),
                        level: "span".into(),
                    })),
                }],
            },
            "query.filter",
        )
        .context("a valid filter")?;
        let filtered = TraceQuery {
            filter: Some(filter),
            ..in_service(TraceQuery::all(depth(10)), "svc")
        };
        let traces = &backend.traces;
        ensure_refused(
            traces.find_trace_ids(&tenant, filtered.clone()).await,
            "find_trace_ids with a filter",
        )?;
        ensure_refused(
            traces
                .find_traces(&tenant, filtered.clone())
                .await
                .map(|_| ()),
            "find_traces with a filter",
        )?;
        ensure_refused(
            traces
                .find_trace_summaries(&tenant, filtered)
                .await
                .map(|_| ()),
            "find_trace_summaries with a filter",
        )?;
    }
    if !declared.operation_span_kinds {
        let by_kind = OperationQuery {
            service: "svc".to_owned(),
            span_kind: Some(SpanKind::Server),
        };
        ensure_refused(
            backend.traces.get_operations(&tenant, by_kind).await,
            "get_operations by span kind",
        )?;
        let names: Vec<String> = operations(backend, &tenant, "svc", None)
            .await?
            .into_iter()
            .map(|operation| operation.name)
            .collect();
        ensure_eq!(names, ["op"], "get_operations of the service");
    }
    Ok(())
}

//! Tests of the suite itself: a real memory backend wrapped in a decorator that breaks one rule
//! must make the suite FAIL, with a message naming the test and the field.

use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use libtest_mimic::{Arguments, Failed, Trial};
use remote_storage_core::model::{Resource, Span};
use remote_storage_core::proto::otlp::common::{AnyValue, KeyValue, any_value};
use remote_storage_core::store::{FoundTraceId, SummaryStream, TraceStream};
use remote_storage_core::{
    Backend, Operation, OperationQuery, StoreResult, Tenant, Trace, TraceLookup, TraceQuery,
    TraceStore,
};
use storage_conformance::{
    FixtureSet, InProcessTarget, Outcome, SuiteOptions, SuiteRun, WaitPolicy, run_suite,
};

/// One way to break a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Reads lose every event attribute.
    DropEventAttributes,
    /// Reads keep only the first span per span ID.
    DedupeSpanIds,
    /// Writes store int attributes (span, resource) as strings.
    IntAttributesAsStrings,
    /// Searches ignore the operation name.
    IgnoreOperationFilter,
    /// Searches treat the maximum duration as exclusive.
    ExclusiveMaxDuration,
    /// GetOperations loses span kinds.
    DropSpanKinds,
}

struct BrokenStore {
    inner: Arc<dyn TraceStore>,
    fault: Fault,
}

fn stringify(attributes: &mut [KeyValue]) {
    for attribute in attributes {
        if let Some(AnyValue {
            value: Some(any_value::Value::IntValue(number)),
        }) = attribute.value
        {
            attribute.value = Some(AnyValue {
                value: Some(any_value::Value::StringValue(number.to_string())),
            });
        }
    }
}

fn rebuild(
    span: &Span,
    resource: Option<Arc<Resource>>,
    edit: impl FnOnce(&mut remote_storage_core::proto::otlp::trace::Span),
) -> Span {
    let mut otlp = span.otlp().clone();
    edit(&mut otlp);
    let resource = resource.unwrap_or_else(|| Arc::clone(span.resource()));
    Span::new(resource, Arc::clone(span.scope()), otlp).expect("edited span stays valid")
}

impl BrokenStore {
    fn on_write(&self, spans: Vec<Span>) -> Vec<Span> {
        if self.fault != Fault::IntAttributesAsStrings {
            return spans;
        }
        spans
            .iter()
            .map(|span| {
                let mut resource = span.resource().otlp().clone();
                stringify(&mut resource.attributes);
                let resource = Arc::new(Resource::new(resource, String::new()));
                rebuild(span, Some(resource), |otlp| stringify(&mut otlp.attributes))
            })
            .collect()
    }

    fn on_read(fault: Fault, trace: Trace) -> Trace {
        match fault {
            Fault::DropEventAttributes => Trace {
                trace_id: trace.trace_id,
                spans: trace
                    .spans
                    .iter()
                    .map(|span| {
                        rebuild(span, None, |otlp| {
                            for event in &mut otlp.events {
                                event.attributes.clear();
                            }
                        })
                    })
                    .collect(),
            },
            Fault::DedupeSpanIds => {
                let mut seen = std::collections::HashSet::new();
                Trace {
                    trace_id: trace.trace_id,
                    spans: trace
                        .spans
                        .into_iter()
                        .filter(|span| seen.insert(span.span_id()))
                        .collect(),
                }
            }
            _ => trace,
        }
    }

    fn on_query(&self, mut query: TraceQuery) -> TraceQuery {
        match self.fault {
            Fault::IgnoreOperationFilter => query.operation_name = None,
            Fault::ExclusiveMaxDuration => {
                query.duration_max = query.duration_max.map(|max| max.saturating_sub(1));
            }
            _ => {}
        }
        query
    }

    fn wrap(&self, stream: TraceStream) -> TraceStream {
        let fault = self.fault;
        stream
            .map(move |trace| trace.map(|trace| Self::on_read(fault, trace)))
            .boxed()
    }
}

#[async_trait]
impl TraceStore for BrokenStore {
    async fn write_spans(&self, tenant: &Tenant, spans: Vec<Span>) -> StoreResult<()> {
        self.inner.write_spans(tenant, self.on_write(spans)).await
    }

    async fn get_traces(
        &self,
        tenant: &Tenant,
        lookups: Vec<TraceLookup>,
    ) -> StoreResult<TraceStream> {
        Ok(self.wrap(self.inner.get_traces(tenant, lookups).await?))
    }

    async fn get_services(&self, tenant: &Tenant) -> StoreResult<Vec<String>> {
        self.inner.get_services(tenant).await
    }

    async fn get_operations(
        &self,
        tenant: &Tenant,
        query: OperationQuery,
    ) -> StoreResult<Vec<Operation>> {
        let mut operations = self.inner.get_operations(tenant, query).await?;
        if self.fault == Fault::DropSpanKinds {
            for operation in &mut operations {
                operation.span_kind.clear();
            }
        }
        Ok(operations)
    }

    async fn find_trace_ids(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<Vec<FoundTraceId>> {
        self.inner
            .find_trace_ids(tenant, self.on_query(query))
            .await
    }

    async fn find_traces(&self, tenant: &Tenant, query: TraceQuery) -> StoreResult<TraceStream> {
        Ok(self.wrap(self.inner.find_traces(tenant, self.on_query(query)).await?))
    }

    async fn find_trace_summaries(
        &self,
        tenant: &Tenant,
        query: TraceQuery,
    ) -> StoreResult<SummaryStream> {
        self.inner
            .find_trace_summaries(tenant, self.on_query(query))
            .await
    }
}

fn broken_backend(fault: Fault) -> Backend {
    let max_traces = NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN);
    let real = backend_memory::open(backend_memory::MemoryConfig { max_traces });
    Backend {
        traces: Arc::new(BrokenStore {
            inner: Arc::clone(&real.traces),
            fault,
        }),
        ..real
    }
}

/// Runs the cases whose names contain `test` against a backend with `fault` and checks that
/// they fail with a message containing every `expected` fragment.
fn expect_failure(
    fault: Fault,
    test: &'static str,
    expected: &'static [&'static str],
) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let run = SuiteRun {
            name: String::new(),
            target: Arc::new(InProcessTarget::new(broken_backend(fault))),
            fixtures: Arc::new(FixtureSet::own()?),
            options: SuiteOptions::declared(backend_memory::CAPABILITIES).with_wait(WaitPolicy {
                iterations: 3,
                interval: Duration::from_millis(5),
            }),
        };
        let report = run_suite(&run, &|name| name == test, &mut |_| {}).await;
        let [result] = report.results.as_slice() else {
            return Err(format!("expected exactly one case named {test}, ran {}", report.results.len()).into());
        };
        let Outcome::Failed(message) = &result.outcome else {
            return Err(format!("{test} should fail with {fault:?}, but: {:?}", result.outcome).into());
        };
        for fragment in std::iter::once(&test).chain(expected) {
            if !message.contains(fragment) {
                return Err(format!("the failure of {test} under {fault:?} does not mention {fragment:?}:\n{message}").into());
            }
        }
        Ok(())
    })
}

fn main() -> ExitCode {
    let cases: Vec<(&'static str, Fault, &'static str, &'static [&'static str])> = vec![
        (
            "dropped_event_attributes_fail_find_traces",
            Fault::DropEventAttributes,
            "FindTraces/Tags_in_one_spot_-_Logs",
            &[
                "span 0002000000000001 \"intake\"",
                "events[1].attributes[\"q.count\"]: missing (expected Int(42))",
            ],
        ),
        (
            "deduplicated_span_ids_fail_duplicate_spans",
            Fault::DedupeSpanIds,
            "GetTraceWithDuplicateSpans",
            &[
                "at least 200 span(s)",
                "last observed: one trace with 191 span(s)",
            ],
        ),
        (
            "ints_stored_as_strings_fail_typed_comparison",
            Fault::IntAttributesAsStrings,
            "FindTraces/Tags_in_one_spot_-_Tags",
            &[
                "span 0001000000000002 \"intake.validate\"",
                "attributes[\"q.count\"]: expected Int(42), got Str(\"42\")",
            ],
        ),
        (
            "ints_stored_as_strings_fail_resource_comparison",
            Fault::IntAttributesAsStrings,
            "FindTraces/Tags_in_one_spot_-_Process",
            &["resource.attributes[\"q.count\"]: expected Int(42), got Str(\"42\")"],
        ),
        (
            "ignored_operation_filter_returns_the_decoy",
            Fault::IgnoreOperationFilter,
            "FindTraces/Operation_name",
            &["operation_other, a decoy this query must NOT return"],
        ),
        (
            "exclusive_max_duration_misses_the_boundary",
            Fault::ExclusiveMaxDuration,
            "FindTraces/max_Duration",
            &["max_duration_exact", "last observed: 0 trace(s)"],
        ),
        (
            "missing_span_kinds_fail_get_operations",
            Fault::DropSpanKinds,
            "GetOperations",
            &["shop-frontend", "(\"GET /checkout\", \"server\")"],
        ),
    ];
    let trials = cases
        .into_iter()
        .map(|(name, fault, test, expected)| {
            Trial::test(name, move || expect_failure(fault, test, expected))
        })
        .collect();
    libtest_mimic::run(&Arguments::from_args(), trials).exit_code()
}

//! `GetServices` and `GetOperations` (with `Span_kind_filter`): the services of the example
//! trace, and the operations of its service with the most of them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context as _;
use jaeger_remote_proto::otlp::trace::span::SpanKind;
use remote_storage_core::model::span_kind_name;

use super::executor::Executor;
use super::otlp::service_name;
use crate::options::{Poll, wait_for};
use crate::target::{OtlpTrace, is_invalid_argument};

impl Executor {
    // ------------------------------------------------------------------ GetServices

    pub(super) async fn get_services(&self) -> anyhow::Result<()> {
        let expected: Vec<String> = services_of(self.expected()?.example_trace()?)
            .into_iter()
            .collect();
        let target = Arc::clone(&self.target);
        let expected_for_poll = expected.clone();
        wait_for(
            self.options.wait,
            &format!("GetServices to return exactly {expected:?}"),
            move || {
                let target = Arc::clone(&target);
                let expected = expected_for_poll.clone();
                async move {
                    let services = target.get_services().await.map(|mut services| {
                        services.sort();
                        services
                    });
                    Ok(Poll::settled(services, &expected))
                }
            },
        )
        .await
    }

    // ------------------------------------------------------------------ GetOperations

    fn expected_operations(&self) -> anyhow::Result<(String, Vec<(String, String)>)> {
        let example = self.expected()?.example_trace()?;
        let mut by_service: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for group in &example.resource_spans {
            let service = service_name(group.resource.as_ref());
            for scope in &group.scope_spans {
                for span in &scope.spans {
                    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
                    by_service
                        .entry(service.clone())
                        .or_default()
                        .insert((span.name.clone(), span_kind_name(kind).to_owned()));
                }
            }
        }
        // The service with the most operations (Jaeger's `example-service-1`); ties go to
        // the smallest name.
        let mut best: Option<(&String, &BTreeSet<(String, String)>)> = None;
        for (service, operations) in &by_service {
            if best.is_none_or(|(_, current)| operations.len() > current.len()) {
                best = Some((service, operations));
            }
        }
        let (service, operations) = best.context("the example trace has no span")?;
        let mut expected: Vec<(String, String)> = operations.iter().cloned().collect();
        if !self.options.capabilities.operation_span_kinds {
            expected = expected
                .into_iter()
                .map(|(name, _)| (name, String::new()))
                .collect();
            expected.dedup();
        }
        Ok((service.clone(), expected))
    }

    async fn poll_operations(
        &self,
        service: String,
        span_kind: String,
        expected: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        let names_only = !self.options.capabilities.operation_span_kinds;
        let target = Arc::clone(&self.target);
        let expectation = format!(
            "GetOperations(service={service:?}, span_kind={span_kind:?}) to return exactly \
             {expected:?} (name, span_kind)"
        );
        wait_for(self.options.wait, &expectation, move || {
            let target = Arc::clone(&target);
            let service = service.clone();
            let span_kind = span_kind.clone();
            let expected = expected.clone();
            async move {
                let operations =
                    target
                        .get_operations(&service, &span_kind)
                        .await
                        .map(|operations| {
                            let mut got: Vec<(String, String)> = operations
                                .into_iter()
                                .map(|operation| {
                                    if names_only {
                                        (operation.name, String::new())
                                    } else {
                                        (operation.name, operation.span_kind)
                                    }
                                })
                                .collect();
                            got.sort();
                            if names_only {
                                got.dedup();
                            }
                            got
                        });
                Ok(Poll::settled(operations, &expected))
            }
        })
        .await
    }

    pub(super) async fn get_operations(&self) -> anyhow::Result<()> {
        let (service, expected) = self.expected_operations()?;
        self.poll_operations(service, String::new(), expected).await
    }

    pub(super) async fn get_operations_kind_filter(&self) -> anyhow::Result<()> {
        if !self.options.capabilities.operation_span_kinds {
            return self.kind_filter_refused().await;
        }
        let (service, all) = self.expected_operations()?;
        let kinds: BTreeSet<&String> = all
            .iter()
            .map(|(_, kind)| kind)
            .filter(|kind| !kind.is_empty())
            .collect();
        anyhow::ensure!(
            !kinds.is_empty(),
            "the example trace's service {service} has no span with a kind"
        );
        for kind in kinds {
            let expected: Vec<(String, String)> = all
                .iter()
                .filter(|(_, operation_kind)| operation_kind == kind)
                .cloned()
                .collect();
            self.poll_operations(service.clone(), kind.clone(), expected)
                .await?;
        }
        Ok(())
    }
}

fn services_of(trace: &OtlpTrace) -> BTreeSet<String> {
    trace
        .resource_spans
        .iter()
        .map(|group| service_name(group.resource.as_ref()))
        .filter(|service| !service.is_empty())
        .collect()
}

impl Executor {
    /// A storage that declares no span kinds for operations refuses a kind filter with
    /// `INVALID_ARGUMENT` rather than answering it wrongly or empty.
    async fn kind_filter_refused(&self) -> anyhow::Result<()> {
        let example = self.expected()?.example_trace()?;
        let service = services_of(example)
            .into_iter()
            .next()
            .context("the example trace has no service")?;
        let kind = span_kind_name(SpanKind::Server);
        match self.target.get_operations(&service, kind).await {
            Err(error) if is_invalid_argument(&error) => Ok(()),
            Err(error) => Err(error.context(format!(
                "GetOperations(service={service:?}, span_kind={kind:?}) on a storage without \
                 operation span kinds: expected INVALID_ARGUMENT"
            ))),
            Ok(operations) => anyhow::bail!(
                "GetOperations(service={service:?}, span_kind={kind:?}) on a storage without \
                 operation span kinds: expected INVALID_ARGUMENT, got {} operation(s)",
                operations.len()
            ),
        }
    }
}

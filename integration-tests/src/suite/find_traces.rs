//! `FindTraces` (one case per query of the fixture set, against the query fixtures) and
//! `FindTracesWithoutServiceName` (a search across services).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context as _;
use remote_storage_core::UnixNanos;

use super::executor::Executor;
use super::otlp::{
    describe_traces, plain_span, resource_spans, service_name, string_attribute, string_value,
};
use crate::compare::compare_trace_slices;
use crate::options::{Poll, wait_for};
use crate::target::{OtlpTrace, TraceSearch, is_invalid_argument};

impl Executor {
    // ------------------------------------------------------------------ FindTraces

    fn fixture_names_by_trace_id(&self) -> BTreeMap<String, String> {
        let mut names = BTreeMap::new();
        for name in self.fixtures.query_fixture_names() {
            if let Ok(trace) = self.fixtures.trace(name) {
                names.insert(trace.trace_id_hex(), name.to_owned());
            }
        }
        names
    }

    pub(super) async fn find_traces(&self, index: usize) -> anyhow::Result<()> {
        let case = self
            .fixtures
            .queries()
            .get(index)
            .context("query case out of range")?;
        let mut expected = Vec::new();
        for name in &case.expected_fixtures {
            expected.push(self.expected()?.trace(name)?.clone());
        }
        let expected_traces = expected.len();
        let expected_spans: usize = expected.iter().map(OtlpTrace::span_count).sum();
        let names = Arc::new(self.fixture_names_by_trace_id());
        let decoys: BTreeSet<String> = case.decoy_fixtures.iter().cloned().collect();
        let target = Arc::clone(&self.target);
        let search = case.search.clone();
        let expectation = format!(
            "FindTraces to return {expected_traces} trace(s) with {expected_spans} span(s) in \
             total ({})",
            case.expected_fixtures.join(", ")
        );
        let names_for_poll = Arc::clone(&names);
        let actual = wait_for(self.options.wait, &expectation, move || {
            let target = Arc::clone(&target);
            let search = search.clone();
            let names = Arc::clone(&names_for_poll);
            let decoys = decoys.clone();
            async move {
                let traces = target.find_traces(&search).await.context("FindTraces")?;
                let spans: usize = traces.iter().map(OtlpTrace::span_count).sum();
                if traces.len() == expected_traces && spans == expected_spans {
                    return Ok(Poll::Ready(traces));
                }
                Ok(Poll::Pending(format!(
                    "{} trace(s) with {spans} span(s): {}",
                    traces.len(),
                    describe_traces(&traces, Some((&names, &decoys)))
                )))
            }
        })
        .await?;
        compare_trace_slices(&expected, &actual).map_err(|diff| anyhow::anyhow!(diff))
    }

    // ------------------------------------------------------------------ cross-service search

    pub(super) async fn find_traces_without_service_name(&self) -> anyhow::Result<()> {
        const KEY: &str = "lantern.cross_service";
        let now = UnixNanos::now();
        let services = ["lantern-anywhere-east", "lantern-anywhere-west"];
        for (index, service) in services.iter().enumerate() {
            let marker = u8::try_from(index + 1).unwrap_or(u8::MAX);
            let mut trace_id = [0x5e_u8; 16];
            trace_id[0] = 0xc5;
            trace_id[15] = marker;
            let mut span = plain_span(
                trace_id,
                [0xc5, 0, 0, 0, 0, 0, 0, marker],
                "anywhere.op",
                now,
            );
            span.end_time_unix_nano = now.saturating_add(1_000_000).0;
            span.attributes.push(string_attribute(KEY, "yes"));
            self.target
                .write_traces(vec![resource_spans(service, vec![span])])
                .await
                .with_context(|| format!("writing the {service} trace"))?;
        }
        let hour = 3_600_000_000_000;
        let search = TraceSearch {
            attributes: vec![(KEY.to_owned(), string_value("yes"))],
            start_time_min: Some(now.saturating_sub(hour)),
            start_time_max: Some(now.saturating_add(hour)),
            search_depth: 10,
            ..TraceSearch::default()
        };
        if !self.options.capabilities.without_service_name {
            // Undeclared: the search must be refused, never answered empty or partially.
            return match self.target.find_traces(&search).await {
                Err(error) if is_invalid_argument(&error) => Ok(()),
                Err(error) => Err(error.context(
                    "FindTraces without service name on a storage that does not declare it: \
                     expected INVALID_ARGUMENT",
                )),
                Ok(traces) => anyhow::bail!(
                    "FindTraces without service name on a storage that does not declare it: \
                     expected INVALID_ARGUMENT, got {} trace(s)",
                    traces.len()
                ),
            };
        }
        let target = Arc::clone(&self.target);
        let traces = wait_for(
            self.options.wait,
            "FindTraces without service name to return 2 traces with 2 spans",
            move || {
                let target = Arc::clone(&target);
                let search = search.clone();
                async move {
                    let traces = target.find_traces(&search).await.context("FindTraces")?;
                    let spans: usize = traces.iter().map(OtlpTrace::span_count).sum();
                    if traces.len() == 2 && spans == 2 {
                        return Ok(Poll::Ready(traces));
                    }
                    Ok(Poll::Pending(format!(
                        "{} trace(s) with {spans} span(s): {}",
                        traces.len(),
                        describe_traces(&traces, None)
                    )))
                }
            },
        )
        .await?;
        let mut found: Vec<String> = traces
            .iter()
            .flat_map(|trace| trace.resource_spans.iter())
            .map(|group| service_name(group.resource.as_ref()))
            .collect();
        found.sort();
        anyhow::ensure!(
            found == services,
            "services of the results: expected {services:?}, got {found:?}"
        );
        Ok(())
    }
}

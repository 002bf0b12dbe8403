//! `GetDependencies`: the links derived from a written trace in which two services call each
//! other.

use std::sync::Arc;

use anyhow::Context as _;
use remote_storage_core::UnixNanos;

use super::executor::Executor;
use super::otlp::{plain_span, resource_spans};
use crate::options::{Poll, wait_for};

impl Executor {
    pub(super) async fn get_dependencies(&self) -> anyhow::Result<()> {
        const FRONTEND: &str = "lantern-deps-frontend";
        const BACKEND: &str = "lantern-deps-backend";
        let now = UnixNanos::now();
        let millis = |count: u64| now.saturating_add(count * 1_000_000);
        let mut trace_id = [0xde_u8; 16];
        trace_id[0] = 0xd3;
        let span_id = |number: u8| [0xd3, 0, 0, 0, 0, 0, 0, number];
        let mut frontend_spans = Vec::new();
        let mut root = plain_span(trace_id, span_id(1), "checkout", millis(0));
        root.end_time_unix_nano = millis(50).0;
        frontend_spans.push(root);
        let mut call = plain_span(trace_id, span_id(2), "price", millis(1));
        call.parent_span_id = span_id(1).to_vec();
        // The backend calls the frontend back three times.
        for number in 3..=5 {
            let mut callback = plain_span(trace_id, span_id(number), "quote", millis(2));
            callback.parent_span_id = span_id(2).to_vec();
            frontend_spans.push(callback);
        }
        self.target
            .write_traces(vec![
                resource_spans(FRONTEND, frontend_spans),
                resource_spans(BACKEND, vec![call]),
            ])
            .await
            .context("writing the dependency trace")?;
        let source = self.options.capabilities.dependency_source;
        let expected = vec![
            (
                BACKEND.to_owned(),
                FRONTEND.to_owned(),
                3_u64,
                source.to_owned(),
            ),
            (
                FRONTEND.to_owned(),
                BACKEND.to_owned(),
                1_u64,
                source.to_owned(),
            ),
        ];
        let start = now.saturating_sub(60_000_000_000);
        let end = now.saturating_add(300_000_000_000);
        let target = Arc::clone(&self.target);
        let expectation = format!(
            "GetDependencies to return exactly {expected:?} (parent, child, call_count, source)"
        );
        wait_for(self.options.wait, &expectation, move || {
            let target = Arc::clone(&target);
            let expected = expected.clone();
            async move {
                let links = target.get_dependencies(start, end).await.map(|links| {
                    let mut got: Vec<(String, String, u64, String)> = links
                        .into_iter()
                        .map(|link| (link.parent, link.child, link.call_count, link.source))
                        .collect();
                    got.sort();
                    got
                });
                Ok(Poll::settled(links, &expected))
            }
        })
        .await
    }
}

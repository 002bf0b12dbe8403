#![doc = include_str!("../README.md")]

use std::time::Duration;

use remote_storage_core::{
    Backend, Capabilities, Rewrites, Span, SpanOrder, StoreResult, Tenant, Visibility,
};

#[cfg(feature = "cli")]
mod args;
mod buffers;
mod bulk;
mod client;
mod config;
mod document;
mod error;
mod filter_clauses;
#[cfg(test)]
mod golden_tests;
mod indices;
mod requests;
mod store;
mod version;

#[cfg(feature = "cli")]
pub use args::ElasticsearchArgs;
pub use config::{Credentials, ElasticsearchConfig, IndexRotation, RefreshPolicy, TlsConfig};
pub use error::EsError;
pub use store::ElasticsearchStore;
pub use version::{Distribution, EngineVersion, VersionLine};

/// Backend name used in logs and metrics.
pub const NAME: &str = "elasticsearch";

/// What the backend declares with `refresh`: every query shape (attribute terms of every level
/// on each span document, so conditions hold on one span natively; searches need no service),
/// operations with their span kind, links derived from stored spans. A re-sent batch adds
/// nothing (deterministic document IDs); spans of a trace come back in the order they were
/// written (by each writing process's clock across writes, by position within one). With
/// `--es.refresh wait_for` an acknowledged write is searchable at once; with `none`, within the
/// templates' refresh interval (plus a second of slack for a loaded engine).
pub fn capabilities(refresh: RefreshPolicy) -> Capabilities {
    Capabilities {
        without_service_name: true,
        same_span_conjunction: true,
        // Every candidate of a filter search is decided by the shared evaluator.
        structured_filters: true,
        operation_span_kinds: true,
        dependency_source: "",
        rewrites: Rewrites::Idempotent,
        visibility: match refresh {
            RefreshPolicy::WaitFor => Visibility::OnReturn,
            RefreshPolicy::None => Visibility::WithinRefresh(
                ElasticsearchConfig::REFRESH_INTERVAL.saturating_add(Duration::from_secs(1)),
            ),
        },
        span_order: SpanOrder::AsWritten,
    }
}

/// The `_bulk` body (before gzip) that one write of `spans` sends, with `batch` as the write's
/// sequence number: built as the store builds it, for the micro-benchmarks (`bench/micro`).
pub fn bulk_body(tenant: &Tenant, spans: &[Span], index_prefix: &str, batch: u64) -> Vec<u8> {
    let names = indices::IndexNames::new(index_prefix, IndexRotation::Day);
    bulk::encode_write(tenant, spans, &names, batch, usize::MAX, Vec::new)
        .into_iter()
        .next()
        .map(|chunk| chunk.body)
        .unwrap_or_default()
}

/// A `_bulk` body compressed as the store sends it (gzip, fastest level), for the
/// micro-benchmarks.
pub fn compress_bulk_body(body: &[u8]) -> std::io::Result<Vec<u8>> {
    client::gzip(body)
}

/// Connects to the cluster (refusing an unsupported engine version with a message naming it),
/// installs the index templates unless `create_templates` is off, deletes expired indices and
/// starts the retention task. An unreachable cluster is an `Unavailable` error.
pub async fn open(config: ElasticsearchConfig) -> StoreResult<Backend> {
    let declared = capabilities(config.refresh);
    let store = ElasticsearchStore::open(config).await?;
    Ok(Backend::from_store(NAME, declared, store))
}

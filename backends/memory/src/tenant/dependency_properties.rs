//! The rollups always equal the links counted from the stored spans, for any window: whatever
//! the order spans arrive in (children before parents, across writes), duplicated span IDs,
//! and traces evicted meanwhile.

use std::num::NonZeroUsize;

use proptest::collection::vec;
use proptest::prelude::*;
use remote_storage_core::testing::span;
use remote_storage_core::{DependencyQuery, UnixNanos};

use super::TenantStore;
use crate::rollups::{BUCKET_NANOS, KeptCalls};

const BASE: u64 = 1_700_000_000 * 1_000_000_000;

/// (trace, span ID, parent ID or 0, service, start offset in seconds).
type SpanShape = (u8, u8, u8, usize, u64);

fn window() -> impl Strategy<Value = DependencyQuery> {
    (0..400u64, 0..400u64).prop_map(|(a, b)| {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        // Second-grained edges, off the minute, plus whole-minute ones.
        DependencyQuery {
            start: UnixNanos(BASE + low * 1_000_000_000 + 7),
            end: UnixNanos(BASE + high * 1_000_000_000 + 500_000_007),
        }
    })
}

proptest! {
    #[test]
    fn rollups_equal_the_links_counted_from_spans(
        writes in vec(vec((1..6u8, 1..8u8, 0..8u8, 0..3usize, 0..360u64), 1..12), 1..10),
        max_traces in 2..6usize,
        windows in vec(window(), 1..6),
        // Nothing kept between writes, some traces, all of them.
        kept_spans in prop_oneof![Just(0usize), Just(6), Just(usize::MAX)],
    ) {
        let mut store = TenantStore::new(NonZeroUsize::new(max_traces).expect("non-zero"));
        store.kept_calls = KeptCalls::with_limit(kept_spans);
        let services = ["frontend", "backend", "db"];
        for write in &writes {
            let spans: Vec<_> = write
                .iter()
                .map(|&(trace, id, parent, service, offset): &SpanShape| {
                    let start = BASE + offset * 1_000_000_000;
                    span(
                        trace,
                        id,
                        (parent != 0).then_some(parent),
                        services[service],
                        "op",
                        start,
                        start + 1_000,
                        false,
                    )
                })
                .collect();
            store.write(&spans).expect("stored");
            let everything = DependencyQuery {
                start: UnixNanos(0),
                end: UnixNanos(u64::MAX),
            };
            prop_assert_eq!(store.dependencies(&everything), store.dependencies_from_spans(&everything));
            for window in &windows {
                prop_assert_eq!(store.dependencies(window), store.dependencies_from_spans(window));
            }
        }
        // Windows of whole minutes read only rollups.
        let minutes = DependencyQuery {
            start: UnixNanos(BASE - BASE % BUCKET_NANOS),
            end: UnixNanos(BASE - BASE % BUCKET_NANOS + 10 * BUCKET_NANOS - 1),
        };
        prop_assert_eq!(store.dependencies(&minutes), store.dependencies_from_spans(&minutes));
    }
}
